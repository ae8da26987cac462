/* Kernel benchmarks (lgpu/bench.h): weights of any type and the timed
 * matmul, matmul_backward and gemm ops behind `lgpu bench-ops`. */
#include "lgpu/bench.h"

#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "quant/quant.h"

struct lgpu_bench_weights {
    int type;
    uint32_t N, K;
    size_t bytes;
    uint8_t *data;
};

static uint64_t next(uint64_t *z) {
    *z ^= *z << 13, *z ^= *z >> 7, *z ^= *z << 17;
    return *z;
}

static float unit(uint64_t *z) { return (float)(next(z) >> 40) / (float)(1 << 24) * 2.0f - 1.0f; }

int lgpu_bench_weights_create(int type, uint32_t N, uint32_t K, lgpu_bench_weights **out) {
    *out = NULL;
    size_t rb = lgpu_type_row_bytes(type, K);
    if (type == LGPU_TYPE_I32 || !rb || !N)
        return lgpu_set_error(LGPU_EINVAL, "bench weights: type %d (%s) with rows of %u, %u rows", type,
                              lgpu_type_name(type) ? lgpu_type_name(type) : "?", K, N);
    lgpu_bench_weights *b = calloc(1, sizeof *b);
    size_t n = (size_t)N * rb;
    uint8_t *w = b ? malloc(n) : NULL;
    if (!w) {
        free(b);
        return lgpu_set_error(LGPU_ENOMEM, "bench weights: %zu bytes", n);
    }
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
        for (size_t blk = 0; blk < n / bb; blk++) {
            lgpu_f16 d = lgpu_f32_to_f16(unit(&z) * 0.01f);
            memcpy(w + blk * bb + (type == LGPU_TYPE_Q6_K ? 208 : 0), &d, 2);
            if (type == LGPU_TYPE_Q4_K) memcpy(w + blk * bb + 2, &d, 2);
        }
    }
    *b = (lgpu_bench_weights){.type = type, .N = N, .K = K, .bytes = n, .data = w};
    *out = b;
    return 0;
}

void lgpu_bench_weights_destroy(lgpu_bench_weights *w) {
    if (!w) return;
    free(w->data);
    free(w);
}

size_t lgpu_bench_weights_bytes(const lgpu_bench_weights *w) { return w ? w->bytes : 0; }

int lgpu_bench_matmul(lgpu_dev *dev, const lgpu_bench_weights *w, uint32_t M, int reps, double *s_per_op) {
    if (!dev || !w || !M || reps <= 0 || !s_per_op)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_bench_matmul: M %u, reps %d", M, reps);
    const int type = w->type;
    const uint32_t N = w->N, K = w->K;
    size_t rb = lgpu_type_row_bytes(type, K);
    size_t xb = (size_t)M * K * 4, yb = (size_t)M * N * 4;
    lgpu_buf *bw = NULL, *bx = NULL, *by = NULL;
    lgpu_exec *ex = NULL;
    int st;
    float *x = malloc(xb);
    if (!x) return lgpu_set_error(LGPU_ENOMEM, "lgpu_bench_matmul: x of %zu bytes", xb);
    uint64_t z = 12345;
    for (size_t i = 0; i < xb / 4; i++) x[i] = unit(&z);
    /* the host path times Q4_0 in the layout models are loaded in (repacked) */
    const bool x8 = lgpu_dev_kind_of(dev) == LGPU_DEV_CPU && lgpu_repack_q4_0_x8_wanted(type, N);
    if ((st = lgpu_buf_create(dev, w->bytes, rb, &bw)) || (st = lgpu_buf_create(dev, xb, 4, &bx)) ||
        (st = lgpu_buf_create(dev, yb, 4, &by)) || (st = lgpu_buf_write(bx, 0, x, xb)) ||
        (st = lgpu_exec_create(dev, &ex)))
        goto done;
    st = x8 ? lgpu_repack_q4_0_x8(w->data, lgpu_buf_host_ptr(bw, 0), N, K) : lgpu_buf_write(bw, 0, w->data, w->bytes);
    if (st) goto done;
    lgpu_matmul_params p = {M, N, K, K, N, 0, (uint32_t)type, 0, x8};
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
    *s_per_op = (lgpu_now_s() - t0) / reps;
done:
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(bw), lgpu_buf_destroy(bx), lgpu_buf_destroy(by);
    free(x);
    return st;
}

/* ---- training ops: operands built, then one warm-up and `reps` timed ops */

typedef int (*record_fn)(void *ctx, lgpu_exec *ex);

static int time_op(lgpu_dev *dev, record_fn rec, void *ctx, int reps, double *s_per_op) {
    lgpu_exec *ex = NULL;
    int st;
    if ((st = lgpu_exec_create(dev, &ex))) return st;
    if ((st = lgpu_exec_begin(ex)) || (st = rec(ctx, ex)) || (st = lgpu_exec_submit(ex))) goto done;
    double t0 = lgpu_now_s();
    if ((st = lgpu_exec_begin(ex))) goto done;
    for (int r = 0; r < reps; r++)
        if ((st = rec(ctx, ex))) goto done;
    if ((st = lgpu_exec_submit(ex))) goto done;
    *s_per_op = (lgpu_now_s() - t0) / reps;
done:
    lgpu_exec_destroy(ex);
    return st;
}

/* A device buffer of n uniform [-1, 1) floats. */
static int float_buf(lgpu_dev *dev, size_t n, uint64_t seed, lgpu_buf **out) {
    float *v = malloc(n * sizeof *v + 4);
    if (!v) return lgpu_set_error(LGPU_ENOMEM, "bench: %zu floats", n);
    uint64_t z = seed | 1;
    for (size_t i = 0; i < n; i++) v[i] = unit(&z);
    int st = lgpu_buf_create(dev, n * sizeof *v + 4, 4, out);
    if (!st) st = lgpu_buf_write(*out, 0, v, n * sizeof *v);
    free(v);
    return st;
}

typedef struct {
    lgpu_matmul_backward_params p;
    lgpu_buf *w, *dy, *dx;
} mmb_bench;

static int mmb_record(void *ctx, lgpu_exec *ex) {
    mmb_bench *b = ctx;
    return lgpu_op_matmul_backward(ex, &b->p, lgpu_ref_at(b->w, 0), lgpu_ref_at(b->dy, 0), lgpu_ref_at(b->dx, 0));
}

int lgpu_bench_matmul_backward(lgpu_dev *dev, const lgpu_bench_weights *w, uint32_t M, int reps, double *s_per_op) {
    if (!dev || !w || !M || reps <= 0 || !s_per_op)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_bench_matmul_backward: M %u, reps %d", M, reps);
    const uint32_t N = w->N, K = w->K;
    /* the host path reads Q4_0 in the layout models are loaded in (repacked) */
    const bool x8 = lgpu_dev_kind_of(dev) == LGPU_DEV_CPU && lgpu_repack_q4_0_x8_wanted(w->type, N);
    mmb_bench b = {{M, N, K, N, K, 0, (uint32_t)w->type, 0, x8}, NULL, NULL, NULL};
    int st;
    if ((st = lgpu_buf_create(dev, w->bytes, lgpu_type_row_bytes(w->type, K), &b.w)) ||
        (st = float_buf(dev, (size_t)M * N, 777, &b.dy)) || (st = lgpu_buf_create(dev, (size_t)M * K * 4, 4, &b.dx)))
        goto done;
    st = x8 ? lgpu_repack_q4_0_x8(w->data, lgpu_buf_host_ptr(b.w, 0), N, K) : lgpu_buf_write(b.w, 0, w->data, w->bytes);
    if (!st) st = time_op(dev, mmb_record, &b, reps, s_per_op);
done:
    lgpu_buf_destroy(b.w), lgpu_buf_destroy(b.dy), lgpu_buf_destroy(b.dx);
    return st;
}

typedef struct {
    lgpu_gemm_params p;
    lgpu_buf *a, *b, *c;
} gemm_bench;

static int gemm_record(void *ctx, lgpu_exec *ex) {
    gemm_bench *g = ctx;
    return lgpu_op_gemm(ex, &g->p, lgpu_ref_at(g->a, 0), lgpu_ref_at(g->b, 0), lgpu_ref_at(g->c, 0));
}

int lgpu_bench_gemm(lgpu_dev *dev, uint32_t M, uint32_t N, uint32_t K, bool trans_a, bool trans_b, int reps,
                    double *s_per_op) {
    if (!dev || !M || !N || reps <= 0 || !s_per_op)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_bench_gemm: %u x %u x %u, reps %d", M, N, K, reps);
    gemm_bench g = {{M, N, K, 0, 0, 0, trans_a, trans_b, 0, 1.0f}, NULL, NULL, NULL};
    int st;
    if ((st = float_buf(dev, (size_t)M * K, 11, &g.a)) || (st = float_buf(dev, (size_t)K * N, 13, &g.b)) ||
        (st = lgpu_buf_create(dev, (size_t)M * N * 4, 4, &g.c)))
        goto done;
    st = time_op(dev, gemm_record, &g, reps, s_per_op);
done:
    lgpu_buf_destroy(g.a), lgpu_buf_destroy(g.b), lgpu_buf_destroy(g.c);
    return st;
}
