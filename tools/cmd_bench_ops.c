/* lgpu bench-ops: the matmul op on LLaMA-7B shapes, for every weight type,
 * on the selected Vulkan device and on the host C path in the same run.
 *   matvec 4096x4096 and 11008x4096 (N x K, M = 1): GB/s of weights read
 *   matmul M x 4096x4096 (M = 512, --quick 64): GFLOP/s = 2*M*N*K / time
 * Each case is warmed up once (pipeline creation), then `reps` ops are
 * recorded into one exec and submitted together; the table shows the wall
 * time of that submit divided by reps. Weights are random blocks with small
 * scales (not quantized from floats: only the bytes' layout matters here). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "lgpu/lgpu.h"
#include "ops/ops.h"
#include "quant/quant.h"

static uint64_t next(uint64_t *z) {
    *z ^= *z << 13, *z ^= *z >> 7, *z ^= *z << 17;
    return *z;
}

static float unit(uint64_t *z) { return (float)(next(z) >> 40) / (float)(1 << 24) * 2.0f - 1.0f; }

/* N rows of K weights of `type`: plain types get uniform [-1, 1) values;
 * block types random bytes with every f16 scale set to a small value. */
static uint8_t *make_weights(int type, uint32_t N, uint32_t K, size_t *bytes) {
    size_t rb = lgpu_type_row_bytes(type, K), n = (size_t)N * rb;
    uint8_t *w = malloc(n);
    if (!w) return NULL;
    uint64_t z = 0x9e3779b97f4a7c15ull ^ (uint64_t)type;
    if (type == LGPU_TYPE_F32) {
        for (size_t i = 0; i < n / 4; i++) ((float *)w)[i] = unit(&z);
    } else if (type == LGPU_TYPE_F16 || type == LGPU_TYPE_BF16) {
        for (size_t i = 0; i < n / 2; i++)
            ((uint16_t *)w)[i] = type == LGPU_TYPE_F16 ? lgpu_f32_to_f16(unit(&z)) : lgpu_f32_to_bf16(unit(&z));
    } else {
        for (size_t i = 0; i + 8 <= n; i += 8) {
            uint64_t v = next(&z);
            memcpy(w + i, &v, 8);
        }
        size_t bb = lgpu_type_block_bytes(type);
        for (size_t b = 0; b < n / bb; b++) {
            lgpu_f16 d = lgpu_f32_to_f16(unit(&z) * 0.01f);
            memcpy(w + b * bb + (type == LGPU_TYPE_Q6_K ? 208 : 0), &d, 2);
            if (type == LGPU_TYPE_Q4_K) memcpy(w + b * bb + 2, &d, 2);
        }
    }
    *bytes = n;
    return w;
}

typedef struct {
    const char *name;
    uint32_t M, N, K;
} shape;

/* Seconds per op, or a negative status. */
static double run_case(lgpu_dev *dev, int type, const shape *s, const uint8_t *w, size_t wb, int reps) {
    size_t rb = lgpu_type_row_bytes(type, s->K);
    size_t xb = (size_t)s->M * s->K * 4, yb = (size_t)s->M * s->N * 4;
    lgpu_buf *bw = NULL, *bx = NULL, *by = NULL;
    lgpu_exec *ex = NULL;
    double t = -1;
    int st;
    float *x = malloc(xb);
    if (!x) return LGPU_ENOMEM;
    uint64_t z = 12345;
    for (size_t i = 0; i < xb / 4; i++) x[i] = unit(&z);
    /* the host path times Q4_0 in the layout models are loaded in (repacked) */
    const bool x8 = lgpu_dev_kind_of(dev) == LGPU_DEV_CPU && lgpu_repack_q4_0_x8_wanted(type, s->N);
    if ((st = lgpu_buf_create(dev, wb, rb, &bw)) || (st = lgpu_buf_create(dev, xb, 4, &bx)) ||
        (st = lgpu_buf_create(dev, yb, 4, &by)) || (st = lgpu_buf_write(bx, 0, x, xb)) ||
        (st = lgpu_exec_create(dev, &ex)))
        goto done;
    st = x8 ? lgpu_repack_q4_0_x8(w, lgpu_buf_host_ptr(bw, 0), s->N, s->K) : lgpu_buf_write(bw, 0, w, wb);
    if (st) goto done;
    lgpu_matmul_params p = {s->M, s->N, s->K, s->K, s->N, 0, (uint32_t)type, 0, x8};
    /* warm-up: pipeline creation, first-touch of the memory */
    if ((st = lgpu_exec_begin(ex)) || (st = lgpu_op_matmul(ex, &p, lgpu_ref_at(bw, 0), lgpu_ref_at(bx, 0),
                                                           lgpu_ref_at(by, 0))) ||
        (st = lgpu_exec_submit(ex)))
        goto done;
    double t0 = lgpu_now_s();
    if ((st = lgpu_exec_begin(ex))) goto done;
    for (int r = 0; r < reps; r++)
        if ((st = lgpu_op_matmul(ex, &p, lgpu_ref_at(bw, 0), lgpu_ref_at(bx, 0), lgpu_ref_at(by, 0)))) goto done;
    if ((st = lgpu_exec_submit(ex))) goto done;
    t = (lgpu_now_s() - t0) / reps;
done:
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(bw), lgpu_buf_destroy(bx), lgpu_buf_destroy(by);
    free(x);
    return st ? st : t;
}

static void usage(FILE *f) {
    fprintf(f, "usage: lgpu bench-ops [--device SEL] [--reps N] [--m M] [--types t1,t2,...] [--quick] [--no-cpu]\n"
               "  matmul on LLaMA-7B shapes for each weight type, on the Vulkan device SEL (default: automatic)\n"
               "  and on the host C path. --reps: ops per timed submit (default 10 for matvec, 2 for matmul);\n"
               "  --m: rows of the matmul case (default 512); --quick: reps 3 / 1 and M = 64;\n"
               "  --types: subset of f32,f16,bf16,q8_0,q4_0,q4_k,q6_k; --no-cpu: skip the host path.\n");
}

int lgpu_cmd_bench_ops(int argc, char **argv) {
    const char *sel = NULL, *types_arg = "f32,f16,bf16,q8_0,q4_0,q4_k,q6_k";
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
    printf("\n%-6s %-14s %-11s %-9s %11s %9s %10s\n", "type", "op", "N x K", "device", "ms/op", "GB/s", "GFLOP/s");
    int rc = 0;
    for (int ti = 0; ti < nt; ti++) {
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            const shape *s = &shapes[si];
            size_t wb;
            uint8_t *w = make_weights(types[ti], s->N, s->K, &wb);
            if (!w) {
                fprintf(stderr, "lgpu bench-ops: out of memory\n");
                rc = 1;
                goto out;
            }
            for (int d = 0; d < nd; d++) {
                int r = reps ? reps : s->M == 1 ? (quick ? 3 : 10) : (quick ? 1 : 2);
                double t = run_case(devs[d], types[ti], s, w, wb, r);
                char nk[24];
                snprintf(nk, sizeof nk, "%ux%u", s->N, s->K);
                const char *dn = lgpu_dev_kind_of(devs[d]) == LGPU_DEV_CPU ? "cpu" : "vulkan";
                if (t < 0) {
                    printf("%-6s %-14s %-11s %-9s failed: %s\n", lgpu_type_name(types[ti]), s->name, nk, dn,
                           lgpu_last_error());
                    rc = 1;
                    continue;
                }
                double gflops = 2.0 * s->M * s->N * s->K / t * 1e-9;
                if (s->M == 1)
                    printf("%-6s %-14s %-11s %-9s %11.3f %9.2f %10.2f\n", lgpu_type_name(types[ti]), s->name, nk, dn,
                           t * 1e3, wb / t * 1e-9, gflops);
                else
                    printf("%-6s %-14s %-11s %-9s %11.3f %9s %10.2f\n", lgpu_type_name(types[ti]), s->name, nk, dn,
                           t * 1e3, "-", gflops);
                fflush(stdout);
            }
            free(w);
        }
    }
out:
    for (int d = nd - 1; d >= 0; d--) lgpu_dev_destroy(devs[d]);
    return rc;
}
