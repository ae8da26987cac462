/* lgpu bench-ops: the matmul op on LLaMA-7B shapes, for every weight type,
 * on the selected Vulkan device and on the host C path in the same run.
 *   matvec 4096x4096 and 11008x4096 (N x K, M = 1): GB/s of weights read
 *   matmul M x 4096x4096 (M = 512, --quick 64): GFLOP/s = 2*M*N*K / time
 *   matmul_backward M x 4096x4096 and M x 11008x4096 (dx = dy W, N x K of W;
 *                   same M): GFLOP/s and GB/s of weights read
 *   gemm (F32, LoRA rank 16), M x N x K: NT 4096x16x4096 (x A^T), NT
 *                   2048x4096x16 ((x A^T) B^T), TN 16x4096x2048 (dA = dh^T x):
 *                   GFLOP/s and GB/s of a, b and c moved
 * --ops picks among matmul, matmul_backward and gemm.
 * Each case is warmed up once (pipeline creation), then `reps` ops are
 * recorded into one exec and submitted together; the table shows the wall
 * time of that submit divided by reps. Weights are random blocks with small
 * scales (not quantized from floats: only the bytes' layout matters here).
 * The engine builds the operands and times the ops (lgpu/bench.h); this file
 * parses the options and prints the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lgpu/bench.h"
#include "lgpu/device.h"
#include "lgpu/lgpu.h"

typedef struct {
    const char *name;
    uint32_t M, N, K;
} shape;

static void usage(FILE *f) {
    fprintf(f, "usage: lgpu bench-ops [--device SEL] [--reps N] [--m M] [--types t1,t2,...] [--ops o1,o2,...]\n"
               "                      [--quick] [--no-cpu]\n"
               "  matmul and matmul_backward on LLaMA-7B shapes for each weight type, and the F32 gemm on LoRA\n"
               "  shapes, on the Vulkan device SEL (default: automatic) and on the host C path. --reps: ops per\n"
               "  timed submit (default 10 for matvec, 2 otherwise); --m: rows of the matmul and matmul_backward\n"
               "  cases (default 512); --quick: reps 3 / 1 and M = 64; --types: subset of\n"
               "  f32,f16,bf16,q8_0,q4_0,q4_k,q6_k; --ops: subset of matmul,matmul_backward,gemm (default all);\n"
               "  --no-cpu: skip the host path.\n");
}

/* Whether the comma-separated list has `name`. */
static bool op_on(const char *ops, const char *name) {
    size_t n = strlen(name);
    for (const char *q = ops; (q = strstr(q, name)); q += n)
        if ((q == ops || q[-1] == ',') && (q[n] == ',' || q[n] == 0)) return true;
    return false;
}

static const char *dev_kind(lgpu_dev *d) { return lgpu_dev_kind_of(d) == LGPU_DEV_CPU ? "cpu" : "vulkan"; }

int lgpu_cmd_bench_ops(int argc, char **argv) {
    const char *sel = NULL, *types_arg = "f32,f16,bf16,q8_0,q4_0,q4_k,q6_k", *ops = "matmul,matmul_backward,gemm";
    int reps = 0, m = 512;
    bool quick = false, cpu = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc)
            sel = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--m") && i + 1 < argc)
            m = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--types") && i + 1 < argc)
            types_arg = argv[++i];
        else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
            ops = argv[++i];
        else if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--no-cpu"))
            cpu = false;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "lgpu bench-ops: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (quick && m == 512) m = 64;
    if (reps < 0 || m <= 0) {
        fprintf(stderr, "lgpu bench-ops: --reps and --m must be positive\n");
        return 2;
    }
    int types[16], nt = 0;
    char tbuf[256];
    snprintf(tbuf, sizeof tbuf, "%s", types_arg);
    for (char *tok = strtok(tbuf, ","); tok && nt < 16; tok = strtok(NULL, ",")) {
        int t = lgpu_type_from_name(tok);
        if (t < 0 || t == LGPU_TYPE_I32) {
            fprintf(stderr, "lgpu bench-ops: unknown weight type '%s'\n", tok);
            return 2;
        }
        types[nt++] = t;
    }

    for (const char *q = ops; *q;) {
        size_t n = strcspn(q, ",");
        if (!((n == 6 && !strncmp(q, "matmul", 6)) || (n == 15 && !strncmp(q, "matmul_backward", 15)) ||
              (n == 4 && !strncmp(q, "gemm", 4)))) {
            fprintf(stderr, "lgpu bench-ops: unknown op '%.*s' (matmul, matmul_backward, gemm)\n", (int)n, q);
            return 2;
        }
        q += n + (q[n] == ',');
    }

    lgpu_dev *devs[2] = {NULL, NULL};
    int nd = 0, st;
    if ((st = lgpu_dev_create(sel, &devs[0]))) {
        fprintf(stderr, "lgpu bench-ops: %s: %s\n", lgpu_strerror(st), lgpu_last_error());
        return 1;
    }
    nd = 1;
    if (cpu && lgpu_dev_kind_of(devs[0]) != LGPU_DEV_CPU) {
        if ((st = lgpu_dev_create("cpu", &devs[1]))) {
            fprintf(stderr, "lgpu bench-ops: host device: %s\n", lgpu_last_error());
            lgpu_dev_destroy(devs[0]);
            return 1;
        }
        nd = 2;
    }
    for (int d = 0; d < nd; d++)
        printf("device %d: %s%s\n", d, lgpu_dev_name(devs[d]),
               lgpu_dev_kind_of(devs[d]) == LGPU_DEV_CPU ? " (host C path)" : "");

    char mm_name[32];
    snprintf(mm_name, sizeof mm_name, "matmul M=%d", m);
    const shape shapes[] = {
        {"matvec", 1, 4096, 4096},
        {"matvec", 1, 11008, 4096},
        {mm_name, (uint32_t)m, 4096, 4096},
    };
    printf("\n%-6s %-14s %-13s %-9s %11s %9s %10s\n", "type", "op", "shape", "device", "ms/op", "GB/s", "GFLOP/s");
    int rc = 0;
    for (int ti = 0; ti < nt && op_on(ops, "matmul"); ti++) {
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            const shape *s = &shapes[si];
            lgpu_bench_weights *w;
            if (lgpu_bench_weights_create(types[ti], s->N, s->K, &w)) {
                fprintf(stderr, "lgpu bench-ops: out of memory\n");
                rc = 1;
                goto out;
            }
            size_t wb = lgpu_bench_weights_bytes(w);
            for (int d = 0; d < nd; d++) {
                int r = reps ? reps : s->M == 1 ? (quick ? 3 : 10) : (quick ? 1 : 2);
                double t = 0;
                int cst = lgpu_bench_matmul(devs[d], w, s->M, r, &t);
                char nk[24];
                snprintf(nk, sizeof nk, "%ux%u", s->N, s->K);
                const char *dn = lgpu_dev_kind_of(devs[d]) == LGPU_DEV_CPU ? "cpu" : "vulkan";
                if (cst) {
                    printf("%-6s %-14s %-13s %-9s failed: %s\n", lgpu_type_name(types[ti]), s->name, nk, dn,
                           lgpu_last_error());
                    rc = 1;
                    continue;
                }
                double gflops = 2.0 * s->M * s->N * s->K / t * 1e-9;
                if (s->M == 1)
                    printf("%-6s %-14s %-13s %-9s %11.3f %9.2f %10.2f\n", lgpu_type_name(types[ti]), s->name, nk, dn,
                           t * 1e3, wb / t * 1e-9, gflops);
                else
                    printf("%-6s %-14s %-13s %-9s %11.3f %9s %10.2f\n", lgpu_type_name(types[ti]), s->name, nk, dn,
                           t * 1e3, "-", gflops);
                fflush(stdout);
            }
            lgpu_bench_weights_destroy(w);
        }
    }

    /* dx = dy W through the frozen weight: the 7B attention and FFN-down shapes */
    const shape bshapes[] = {{"mm_backward", (uint32_t)m, 4096, 4096}, {"mm_backward", (uint32_t)m, 11008, 4096}};
    for (int ti = 0; ti < nt && op_on(ops, "matmul_backward"); ti++) {
        for (size_t si = 0; si < sizeof bshapes / sizeof bshapes[0]; si++) {
            const shape *s = &bshapes[si];
            lgpu_bench_weights *w;
            if (lgpu_bench_weights_create(types[ti], s->N, s->K, &w)) {
                fprintf(stderr, "lgpu bench-ops: out of memory\n");
                rc = 1;
                goto out;
            }
            size_t wb = lgpu_bench_weights_bytes(w);
            for (int d = 0; d < nd; d++) {
                double t = 0;
                int cst = lgpu_bench_matmul_backward(devs[d], w, s->M, reps ? reps : quick ? 1 : 2, &t);
                char nk[24];
                snprintf(nk, sizeof nk, "%ux%u", s->N, s->K);
                if (cst) {
                    printf("%-6s %-14s %-13s %-9s failed: %s\n", lgpu_type_name(types[ti]), s->name, nk,
                           dev_kind(devs[d]), lgpu_last_error());
                    rc = 1;
                    continue;
                }
                printf("%-6s %-14s %-13s %-9s %11.3f %9.2f %10.2f\n", lgpu_type_name(types[ti]), s->name, nk,
                       dev_kind(devs[d]), t * 1e3, wb / t * 1e-9, 2.0 * s->M * s->N * s->K / t * 1e-9);
                fflush(stdout);
            }
            lgpu_bench_weights_destroy(w);
        }
    }

    /* F32 gemm on LoRA rank-16 shapes, M x N x K */
    const struct { const char *name; uint32_t M, N, K; bool ta, tb; } gshapes[] = {
        {"gemm NT", 4096, 16, 4096, false, true},  /* x A^T */
        {"gemm NT", 2048, 4096, 16, false, true},  /* (x A^T) B^T */
        {"gemm TN", 16, 4096, 2048, true, false},  /* dA = dh^T x */
    };
    for (size_t si = 0; op_on(ops, "gemm") && si < sizeof gshapes / sizeof gshapes[0]; si++) {
        const uint32_t M = gshapes[si].M, N = gshapes[si].N, K = gshapes[si].K;
        for (int d = 0; d < nd; d++) {
            double t = 0;
            int cst = lgpu_bench_gemm(devs[d], M, N, K, gshapes[si].ta, gshapes[si].tb, reps ? reps : quick ? 1 : 2, &t);
            char mnk[32];
            snprintf(mnk, sizeof mnk, "%ux%ux%u", M, N, K);
            if (cst) {
                printf("%-6s %-14s %-13s %-9s failed: %s\n", "f32", gshapes[si].name, mnk, dev_kind(devs[d]),
                       lgpu_last_error());
                rc = 1;
                continue;
            }
            double bytes = 4.0 * ((double)M * K + (double)K * N + (double)M * N);
            printf("%-6s %-14s %-13s %-9s %11.3f %9.2f %10.2f\n", "f32", gshapes[si].name, mnk, dev_kind(devs[d]),
                   t * 1e3, bytes / t * 1e-9, 2.0 * M * N * K / t * 1e-9);
            fflush(stdout);
        }
    }
out:
    for (int d = nd - 1; d >= 0; d--) lgpu_dev_destroy(devs[d]);
    return rc;
}
