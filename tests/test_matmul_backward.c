/* matmul_backward (dx (+)= dy W through a frozen weight of every matmul
 * type). The C twin first, on its own:
 *   - against an explicit double-precision dy W with W dequantized by the
 *     quant module (odd M, N, K; accumulate; strides; 1, 2 and 5 threads
 *     and the AVX2 and baseline kernels bit-identical);
 *   - against the forward twin lgpu_ref_matmul_exact through the adjoint
 *     identity sum(dx x) = sum(dy (x W^T)), for every type;
 *   - against central finite differences of the forward objective
 *     sum(dy (x W^T)) computed in double (F32 and Q4_K);
 *   - reading Q4_0 repacked in 8-row groups (w_x8, the host's layout): the
 *     same bits as the file layout.
 * Then the op on the selected device (lavapipe in CI) against the double
 * oracle and the twin: every type, odd shapes spanning several tiles,
 * accumulate and strides, N = 0, W over several buffer segments (binding
 * limit lowered), a hand-computed case and the parameter errors. Each device
 * case runs 3 times and must be bit-identical. NF4 (both types, compute
 * types F16/BF16 too, K not a multiple of 64) takes part in the twin,
 * identity, finite-difference, device, tile and segment cases, with a hand
 * case of its own.
 *
 * Tolerance (a bound per element): the twin and the shader sum the N
 * products in float in increasing n, then add dx, so each is within
 * (N + 2) u (sum_n |dy W| + |dx0|) of the exact value (u = 2^-24). The
 * checks allow (N + 4 + segments) u: two more roundings for a device that
 * fuses a multiply-add inside a dequantization (d * q - m), one per extra
 * W segment (each dispatch adds its partial sum to dx). The worst error is
 * logged as a fraction of the bound; the count of elements bit-equal to the
 * twin too. */
#include <math.h>

#include "ops_harness.h"
#include "quant/quant.h"
#include "ref/ref_matmul.h"

#define U 0x1p-24

/* N rows of K weights: uniform [-1, 1) floats converted / quantized. */
static uint8_t *make_w(int type, uint32_t N, uint32_t K, tu_rng *r) {
    size_t rb = lgpu_type_row_bytes(type, K);
    uint8_t *w = oh_alloc((size_t)N * rb);
    float *row = oh_alloc((size_t)K * 4);
    for (uint32_t n = 0; n < N; n++) {
        tu_fill_uniform(r, row, K, -1, 1);
        TU_OK(lgpu_quantize_row(type, row, w + (size_t)n * rb, K));
    }
    free(row);
    return w;
}

static float *dequant(int type, const uint8_t *w, uint32_t N, uint32_t K) {
    float *wd = oh_alloc((size_t)N * K * 4 + 4);
    if (N) TU_OK(lgpu_dequantize_rows(type, w, 0, N, K, wd));
    return wd;
}

/* want = dy W (+ dx0) in double over the M x K window of dx (stride dxs),
 * bound = (N + extra) u (sum_n |dy W| + |dx0|). */
static void oracle(const lgpu_matmul_backward_params *p, const float *wd, const float *dy, const float *dx0,
                   double *want, double *bound, uint32_t extra) {
    for (uint32_t m = 0; m < p->M; m++)
        for (uint32_t k = 0; k < p->K; k++) {
            double s = 0, sa = 0;
            for (uint32_t n = 0; n < p->N; n++) {
                double t = (double)dy[(size_t)m * p->dy_stride + n] * wd[(size_t)n * p->K + k];
                s += t, sa += fabs(t);
            }
            size_t o = (size_t)m * p->dx_stride + k;
            double c = p->accumulate ? dx0[o] : 0;
            want[o] = s + c;
            bound[o] = (p->N + extra) * U * (sa + fabs(c));
        }
}

static void check_bound(const char *what, const lgpu_matmul_backward_params *p, const float *got, const double *want,
                        const double *bound) {
    double worst = 0, num = 0, den = 0;
    size_t bad = 0;
    for (uint32_t m = 0; m < p->M; m++)
        for (uint32_t k = 0; k < p->K; k++) {
            size_t o = (size_t)m * p->dx_stride + k;
            double d = fabs((double)got[o] - want[o]);
            num += d * d, den += want[o] * want[o];
            double f = bound[o] > 0 ? d / bound[o] : (d > 0 ? INFINITY : 0);
            if (f > worst) worst = f;
            if (f > 1 && bad++ < 5)
                print_error("%s: dx[%u, %u] = %.9g, exact %.9g, error %.3g > bound %.3g\n", what, m, k, got[o],
                            want[o], d, bound[o]);
        }
    fprintf(stderr, "  %s: NMSE %.3g, worst error %.3g of its bound\n", what, den > 0 ? num / den : num, worst);
    if (bad) fail_msg("%s: %zu elements outside the bound", what, bad);
}

typedef struct {
    int type;
    uint32_t M, N, K;
    uint32_t pad; /* dy and dx row strides N + pad, K + pad */
    bool acc;
    int ct; /* NF4: the compute type (0: F32) */
} shape;

/* Host data of one case: W (file layout), its dequantized rows, dy, dx0. */
typedef struct {
    shape s;
    lgpu_matmul_backward_params p;
    uint8_t *w;
    lgpu_nf4_side *side; /* NF4 only */
    size_t sb;
    float *wd, *dy, *dx0;
    size_t wb, dyn, dxn;
} data;

static void data_make(data *d, const shape *s, uint64_t seed) {
    tu_rng r;
    tu_rng_seed(&r, seed);
    d->s = *s;
    d->p = (lgpu_matmul_backward_params){s->M, s->N, s->K, s->N + s->pad, s->K + s->pad, s->acc, (uint32_t)s->type,
                                         0, 0};
    d->side = NULL, d->sb = 0;
    if (lgpu_type_is_nf4(s->type)) { /* one tensor; wd: the values the op multiplies */
        oh_nf4 t = oh_nf4_make(s->type, s->ct, s->N, s->K, &r);
        d->w = t.w, d->side = t.side, d->wd = t.wd, d->wb = t.wb, d->sb = t.sb;
    } else {
        d->w = make_w(s->type, s->N, s->K, &r);
        d->wb = (size_t)s->N * lgpu_type_row_bytes(s->type, s->K);
        d->wd = dequant(s->type, d->w, s->N, s->K);
    }
    d->dyn = (size_t)s->M * d->p.dy_stride;
    d->dxn = (size_t)s->M * d->p.dx_stride;
    d->dy = oh_alloc(d->dyn * 4 + 4);
    d->dx0 = oh_alloc(d->dxn * 4);
    tu_fill_uniform(&r, d->dy, d->dyn, -1, 1);
    tu_fill_uniform(&r, d->dx0, d->dxn, -1, 1);
    if (!s->acc) /* the output window poisoned: every element must be written */
        for (uint32_t m = 0; m < s->M; m++) memset(d->dx0 + (size_t)m * d->p.dx_stride, 0xff, (size_t)s->K * 4);
}

static void data_free(data *d) { free(d->w), free(d->side), free(d->wd), free(d->dy), free(d->dx0); }

/* W in a device buffer of `unit` (0: its row or NF4 row group), exact size
 * (often not whole words), NF4 with its side table. */
static lgpu_buf *upload_w(const data *d, size_t unit) {
    if (!d->side) {
        lgpu_buf *b;
        TU_OK(lgpu_buf_create(oh_dev, d->wb < 4 ? 4 : d->wb, unit ? unit : 4, &b));
        TU_OK(lgpu_buf_write(b, 0, d->w, d->wb));
        return b;
    }
    oh_nf4 t = {d->s.type, d->s.ct, d->s.N, d->s.K, d->w, d->side, d->wd, d->wb, d->sb};
    return oh_nf4_upload(&t, 0, d->wb);
}

static void name(char *buf, size_t n, const shape *s) {
    snprintf(buf, n, "%s%s%s M=%u N=%u K=%u%s%s", lgpu_type_name(s->type), lgpu_type_is_nf4(s->type) ? "/" : "",
             lgpu_type_is_nf4(s->type) ? lgpu_type_name(s->ct) : "", s->M, s->N, s->K, s->acc ? " acc" : "",
             s->pad ? " strided" : "");
}

/* The twin at 1, 5 and 2 threads, the last with the baseline kernel
 * (bit-identical), against the oracle; returns
 * its result (dxn floats). */
static float *twin_check(const data *d) {
    float *t1 = oh_alloc(d->dxn * 4), *t5 = oh_alloc(d->dxn * 4);
    double *want = oh_alloc(d->dxn * 8), *bound = oh_alloc(d->dxn * 8);
    memcpy(t1, d->dx0, d->dxn * 4);
    memcpy(t5, d->dx0, d->dxn * 4);
    lgpu_ref_matmul_backward(&d->p, d->w, d->side, d->dy, t1, 1);
    lgpu_ref_matmul_backward(&d->p, d->w, d->side, d->dy, t5, 5);
    assert_memory_equal(t1, t5, d->dxn * 4);
    memcpy(t5, d->dx0, d->dxn * 4);
    int isa = lgpu_ref_matmul_set_isa(LGPU_MM_ISA_PLAIN); /* the baseline kernel: same bits as AVX2 */
    lgpu_ref_matmul_backward(&d->p, d->w, d->side, d->dy, t5, 2);
    lgpu_ref_matmul_set_isa(isa);
    assert_memory_equal(t1, t5, d->dxn * 4);
    oracle(&d->p, d->wd, d->dy, d->dx0, want, bound, 2);
    char what[128], tw[140];
    name(what, sizeof what, &d->s);
    snprintf(tw, sizeof tw, "twin %s", what);
    check_bound(tw, &d->p, t1, want, bound);
    free(t5), free(want), free(bound);
    return t1;
}

static void test_mmb_twin(void **state) {
    (void)state;
    const struct { int type; uint32_t K[4]; } types[] = {
        {LGPU_TYPE_F32, {1, 31, 172, 300}},  {LGPU_TYPE_F16, {7, 33, 155, 290}},
        {LGPU_TYPE_BF16, {3, 64, 129, 257}}, {LGPU_TYPE_Q8_0, {32, 96, 288, 544}},
        {LGPU_TYPE_Q4_0, {32, 160, 288, 544}}, {LGPU_TYPE_Q4_K, {256, 512, 256, 768}},
        {LGPU_TYPE_Q6_K, {256, 512, 768, 256}},
        {LGPU_TYPE_NF4, {64, 172, 288, 640}}, {LGPU_TYPE_NF4_NODQ, {172, 290, 64, 330}},
    };
    const uint32_t Ms[] = {1, 7, 33, 70}, Ns[] = {1, 31, 130, 5};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t i = 0; i < 4; i++) {
            shape s = {types[t].type, Ms[i], Ns[(i + t) % 4], types[t].K[(i + t) % 4], (uint32_t)(i % 2) * 3,
                       (i + t) % 2 == 1};
            data d;
            data_make(&d, &s, 10 * t + i);
            free(twin_check(&d));
            data_free(&d);
        }
}

/* sum_{m,k} dx x = sum_{m,n} dy (x W^T) with the forward twin's y, within
 * (N + 2) u sum |x dy W| (dx's sums and y's rounding). */
static void test_mmb_identity(void **state) {
    (void)state;
    const shape shapes[] = {
        {LGPU_TYPE_F32, 9, 37, 45, 0, false},   {LGPU_TYPE_F16, 5, 64, 31, 0, false},
        {LGPU_TYPE_BF16, 17, 20, 70, 0, false}, {LGPU_TYPE_Q8_0, 3, 41, 96, 0, false},
        {LGPU_TYPE_Q4_0, 11, 24, 160, 0, false}, {LGPU_TYPE_Q4_K, 4, 13, 512, 0, false},
        {LGPU_TYPE_Q6_K, 6, 19, 256, 0, false},
        {LGPU_TYPE_NF4, 7, 23, 172, 0, false},  {LGPU_TYPE_NF4_NODQ, 3, 30, 288, 0, false, LGPU_TYPE_BF16},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        data d;
        data_make(&d, s, 100 + i);
        tu_rng r;
        tu_rng_seed(&r, 150 + i);
        float *x = oh_alloc((size_t)s->M * s->K * 4), *y = oh_alloc((size_t)s->M * s->N * 4);
        float *dx = oh_alloc(d.dxn * 4);
        tu_fill_uniform(&r, x, (size_t)s->M * s->K, -1, 1);
        lgpu_matmul_params fp = {s->M, s->N, s->K, s->K, s->N, 0, (uint32_t)s->type, 0, 0};
        lgpu_ref_matmul_exact(&fp, d.w, d.side, x, y);
        lgpu_ref_matmul_backward(&d.p, d.w, d.side, d.dy, dx, 3);
        double l1 = 0, l2 = 0, sabs = 0;
        for (size_t j = 0; j < (size_t)s->M * s->K; j++) l1 += (double)dx[j] * x[j];
        for (size_t j = 0; j < (size_t)s->M * s->N; j++) l2 += (double)d.dy[j] * y[j];
        for (uint32_t m = 0; m < s->M; m++)
            for (uint32_t n = 0; n < s->N; n++)
                for (uint32_t k = 0; k < s->K; k++)
                    sabs += fabs((double)x[(size_t)m * s->K + k] * d.dy[(size_t)m * s->N + n] * d.wd[(size_t)n * s->K + k]);
        double tol = (s->N + 2) * U * sabs;
        fprintf(stderr, "  %s: sum(dx x) %.9g, sum(dy y) %.9g, difference %.3g = %.3g of its bound\n",
                lgpu_type_name(s->type), l1, l2, fabs(l1 - l2), fabs(l1 - l2) / tol);
        assert_true(fabs(l1 - l2) <= tol);
        free(x), free(y), free(dx);
        data_free(&d);
    }
}

/* dx[m, k] against (L(x + h) - L(x - h)) / 2h, L(x) = sum dy (x W^T) in double
 * (W dequantized), h = 1e-3 max(1, |x|). L is linear in x, so the difference
 * is exact up to double rounding; the bound is the twin's (N + 2) u sum_n |dy W|
 * plus 1e-9 for the double noise. */
static void test_mmb_fd(void **state) {
    (void)state;
    const shape shapes[] = {{LGPU_TYPE_F32, 3, 5, 7, 0, false}, {LGPU_TYPE_Q4_K, 2, 3, 256, 0, false},
                            {LGPU_TYPE_NF4, 2, 3, 172, 0, false, LGPU_TYPE_F16}};
    for (size_t i = 0; i < 3; i++) {
        const shape *s = &shapes[i];
        data d;
        data_make(&d, s, 200 + i);
        tu_rng r;
        tu_rng_seed(&r, 250 + i);
        double *x = oh_alloc((size_t)s->M * s->K * 8);
        for (size_t j = 0; j < (size_t)s->M * s->K; j++) x[j] = tu_rng_uniform(&r, -1, 1);
        float *dx = oh_alloc(d.dxn * 4);
        lgpu_ref_matmul_backward(&d.p, d.w, d.side, d.dy, dx, 1);
        double worst = 0;
        for (uint32_t m = 0; m < s->M; m++)
            for (uint32_t k = 0; k < s->K; k++) {
                double *xm = x + (size_t)m * s->K, x0 = xm[k], h = 1e-3 * fmax(1, fabs(x0)), l[2], sa = 0;
                for (int sgn = 0; sgn < 2; sgn++) {
                    xm[k] = x0 + (sgn ? -h : h);
                    double L = 0;
                    for (uint32_t mm = 0; mm < s->M; mm++)
                        for (uint32_t n = 0; n < s->N; n++) {
                            double y = 0;
                            for (uint32_t kk = 0; kk < s->K; kk++) y += x[(size_t)mm * s->K + kk] * d.wd[(size_t)n * s->K + kk];
                            L += d.dy[(size_t)mm * s->N + n] * y;
                        }
                    l[sgn] = L;
                }
                xm[k] = x0;
                for (uint32_t n = 0; n < s->N; n++) sa += fabs((double)d.dy[(size_t)m * s->N + n] * d.wd[(size_t)n * s->K + k]);
                double fd = (l[0] - l[1]) / (2 * h), err = fabs(fd - dx[(size_t)m * s->K + k]);
                double tol = (s->N + 2) * U * sa + 1e-9;
                if (err / tol > worst) worst = err / tol;
                if (err > tol) fail_msg("%s dx[%u, %u] = %.9g, central difference %.9g", lgpu_type_name(s->type), m, k,
                                        dx[(size_t)m * s->K + k], fd);
            }
        fprintf(stderr, "  %s M=%u N=%u K=%u: central differences, worst error %.3g of its bound\n",
                lgpu_type_name(s->type), s->M, s->N, s->K, worst);
        free(x), free(dx);
        data_free(&d);
    }
}

typedef struct {
    lgpu_buf *w, *dy, *dx;
    lgpu_matmul_backward_params p;
    const float *dx0;
    size_t dxb;
} dcase;

static void d_reset(oh_case *c) {
    dcase *g = c->ctx;
    TU_OK(lgpu_buf_write(g->dx, 0, g->dx0, g->dxb));
}

static int d_record(oh_case *c, lgpu_exec *ex) {
    dcase *g = c->ctx;
    return lgpu_op_matmul_backward(ex, &g->p, oh_ref(g->w), oh_ref(g->dy), oh_ref(g->dx));
}

/* The op on the device with W already in bw (host copy d->w) against the
 * oracle and the twin. */
static void device_check(const data *d, lgpu_buf *bw, uint32_t extra) {
    float *tw = twin_check(d), *got = oh_alloc(d->dxn * 4);
    double *want = oh_alloc(d->dxn * 8), *bound = oh_alloc(d->dxn * 8);
    dcase g = {bw, oh_buf(d->dy, d->dyn * 4), oh_buf(NULL, d->dxn * 4), d->p, d->dx0, d->dxn * 4};
    oh_case oc = {d_reset, d_record, g.dx, d->dxn * 4, &g};
    oh_run3(&oc, got);
    for (uint32_t m = 0; m < d->s.M; m++) /* stride gaps untouched */
        assert_memory_equal(got + (size_t)m * d->p.dx_stride + d->s.K, d->dx0 + (size_t)m * d->p.dx_stride + d->s.K,
                            (size_t)d->s.pad * 4);
    oracle(&d->p, d->wd, d->dy, d->dx0, want, bound, 4 + extra);
    char what[128];
    name(what, sizeof what, &d->s);
    check_bound(what, &d->p, got, want, bound);
    size_t same = 0;
    for (uint32_t m = 0; m < d->s.M; m++)
        for (uint32_t k = 0; k < d->s.K; k++) {
            size_t o = (size_t)m * d->p.dx_stride + k;
            same += !memcmp(&got[o], &tw[o], 4);
        }
    fprintf(stderr, "    bit-equal to the twin: %zu of %zu\n", same, (size_t)d->s.M * d->s.K);
    lgpu_buf_destroy(g.dy), lgpu_buf_destroy(g.dx);
    free(tw), free(got), free(want), free(bound);
}

static void run_device(const shape *s, uint64_t seed) {
    data d;
    data_make(&d, s, seed);
    lgpu_buf *bw = upload_w(&d, 0); /* exact size (often not whole words) */
    device_check(&d, bw, 0);
    lgpu_buf_destroy(bw);
    data_free(&d);
}

static void test_mmb_device(void **state) {
    (void)state;
    const shape shapes[] = {
        {LGPU_TYPE_F32, 1, 31, 172, 0, false},  {LGPU_TYPE_F32, 70, 130, 31, 3, true},
        {LGPU_TYPE_F16, 33, 7, 155, 1, false},  {LGPU_TYPE_F16, 5, 40, 1, 0, true},
        {LGPU_TYPE_BF16, 7, 33, 129, 0, true},  {LGPU_TYPE_BF16, 65, 17, 70, 2, false},
        {LGPU_TYPE_Q8_0, 33, 31, 96, 0, false}, {LGPU_TYPE_Q8_0, 2, 130, 288, 1, true},
        {LGPU_TYPE_Q4_0, 70, 24, 160, 0, true}, {LGPU_TYPE_Q4_0, 1, 33, 544, 2, false},
        {LGPU_TYPE_Q4_K, 9, 13, 512, 0, false}, {LGPU_TYPE_Q4_K, 40, 5, 256, 1, true},
        {LGPU_TYPE_Q6_K, 3, 19, 768, 0, true},  {LGPU_TYPE_Q6_K, 33, 8, 256, 0, false},
        {LGPU_TYPE_NF4, 33, 31, 172, 0, false}, {LGPU_TYPE_NF4, 5, 70, 288, 1, true, LGPU_TYPE_BF16},
        {LGPU_TYPE_NF4, 70, 9, 64, 0, true, LGPU_TYPE_F16},
        {LGPU_TYPE_NF4_NODQ, 2, 130, 640, 0, false}, {LGPU_TYPE_NF4_NODQ, 9, 13, 290, 2, true},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) run_device(&shapes[i], 300 + i);
}

/* The GPU tile shapes (op_pick_tiles: 16 x 16 invocations, 1, 2 or 4
 * outputs each way), forced on a CPU device by clearing caps.cpu_shaders
 * (white box), which otherwise always gets 8 x 8 invocations of 4 x 4. */
static void test_mmb_gpu_tiles(void **state) {
    (void)state;
    if (lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU) {
        fprintf(stderr, "note: the host device has no tiles\n");
        return;
    }
    lgpu_dev_caps *caps = (lgpu_dev_caps *)lgpu_dev_caps_of(oh_dev);
    const bool saved = caps->cpu_shaders;
    caps->cpu_shaders = false;
    const shape shapes[] = {
        /* outputs per invocation (rows x columns) that lavapipe's 1024 invocations give */
        {LGPU_TYPE_F16, 8200, 5, 16, 0, false},    /* 4 x 1 */
        {LGPU_TYPE_Q8_0, 16, 6, 8224, 0, true},    /* 1 x 4 */
        {LGPU_TYPE_Q4_0, 640, 3, 832, 1, false},   /* 4 x 4 */
        {LGPU_TYPE_F32, 2100, 7, 40, 0, true},     /* 2 x 2 */
        {LGPU_TYPE_Q4_K, 300, 5, 256, 0, false},   /* 1 x 2 */
        {LGPU_TYPE_Q6_K, 40, 9, 256, 2, false},    /* 1 x 1 */
        {LGPU_TYPE_NF4, 2100, 7, 172, 0, true},    /* 2 x 2 */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) run_device(&shapes[i], 360 + i);
    caps->cpu_shaders = saved;
}

/* N = 0: the empty sum (dx = 0, or unchanged when accumulating). */
static void test_mmb_n0(void **state) {
    (void)state;
    for (int acc = 0; acc < 2; acc++) {
        shape s = {LGPU_TYPE_Q4_0, 5, 0, 64, 1, acc == 1};
        run_device(&s, 350 + acc);
    }
}

/* W repacked in 8-row groups (the host's Q4_0 layout): the twin gives the
 * file layout's bits; on the host device the op reads it too, and Vulkan
 * refuses it (the errors test). Row tiles and column tiles both split. */
static void test_mmb_x8(void **state) {
    (void)state;
    const shape shapes[] = {{LGPU_TYPE_Q4_0, 5, 24, 288, 0, false}, {LGPU_TYPE_Q4_0, 40, 64, 544, 1, true},
                            {LGPU_TYPE_Q4_0, 1, 8, 32, 0, true}};
    bool host = lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU;
    for (size_t i = 0; i < 3; i++) {
        data d;
        data_make(&d, &shapes[i], 400 + i);
        uint8_t *wx = oh_alloc(d.wb);
        TU_OK(lgpu_repack_q4_0_x8(d.w, wx, d.s.N, d.s.K));
        float *want = twin_check(&d), *got = oh_alloc(d.dxn * 4);
        lgpu_matmul_backward_params px = d.p;
        px.w_x8 = 1;
        memcpy(got, d.dx0, d.dxn * 4);
        lgpu_ref_matmul_backward(&px, wx, NULL, d.dy, got, 3);
        assert_memory_equal(got, want, d.dxn * 4);
        if (host) {
            lgpu_buf *bw = oh_buf(wx, d.wb);
            dcase g = {bw, oh_buf(d.dy, d.dyn * 4), oh_buf(NULL, d.dxn * 4), px, d.dx0, d.dxn * 4};
            oh_case oc = {d_reset, d_record, g.dx, d.dxn * 4, &g};
            oh_run3(&oc, got);
            assert_memory_equal(got, want, d.dxn * 4);
            lgpu_buf_destroy(bw), lgpu_buf_destroy(g.dy), lgpu_buf_destroy(g.dx);
        }
        fprintf(stderr, "  q4_0x8 M=%u N=%u K=%u: same bits as the file layout\n", d.s.M, d.s.N, d.s.K);
        free(wx), free(want), free(got);
        data_free(&d);
    }
}

/* W over several buffer segments, one dispatch each (the later ones
 * accumulating). The device's max binding is lowered (white box, as in
 * test_matmul / test_get_rows) so buffers of a few hundred KB split; row
 * sizes with and without 4-byte alignment; dx written and accumulated. */
static void test_mmb_segments(void **state) {
    (void)state;
    if (lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU) {
        fprintf(stderr, "note: the host device has no segments\n");
        return;
    }
    lgpu_dev_caps *caps = (lgpu_dev_caps *)lgpu_dev_caps_of(oh_dev);
    const size_t saved = caps->max_binding;
    const shape shapes[] = {
        {LGPU_TYPE_Q4_0, 3, 1000, 256, 0, false}, /* 144-byte rows */
        {LGPU_TYPE_F16, 5, 700, 155, 2, true},    /* 310-byte rows */
        {LGPU_TYPE_Q6_K, 2, 700, 256, 0, true},   /* 210-byte rows */
        {LGPU_TYPE_NF4, 3, 1600, 172, 0, true},   /* 16-row groups of 1419 bytes */
        {LGPU_TYPE_NF4_NODQ, 2, 900, 290, 1, false}, /* 32-row groups of 5220 bytes */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        data d;
        data_make(&d, &shapes[i], 500 + i);
        size_t rb = lgpu_type_is_nf4(d.s.type)
                        ? lgpu_nf4_rows_bytes(d.s.type, lgpu_nf4_row_group(d.s.K), d.s.K)
                        : lgpu_type_row_bytes(d.s.type, d.s.K);
        caps->max_binding = 64 << 10;
        lgpu_buf *bw = upload_w(&d, rb);
        caps->max_binding = saved;
        int nseg = lgpu_buf_segments(bw);
        assert_true(nseg >= 3);
        fprintf(stderr, "  W in %d segments\n", nseg);
        device_check(&d, bw, (uint32_t)nseg);
        lgpu_buf_destroy(bw);
        data_free(&d);
    }
}

/* By hand: W = [[1, 2, 3], [4, 5, 6]] (F32), dy = [1, -1]: dx = [-3, -3, -3],
 * plus dx0 = [1, 1, 1] when accumulating. Q8_0, one block: d = 0.5, qs[i] =
 * i - 16, dy = 2: dx[i] = i - 16. */
static void run_hand(const lgpu_matmul_backward_params *p, const void *w, size_t wb, const float *dy, size_t dyb,
                     const float *dx0, const float *want, size_t dxb) {
    lgpu_buf *bw = oh_buf(w, wb), *bdy = oh_buf(dy, dyb), *bdx = oh_buf(dx0, dxb);
    lgpu_exec *ex;
    float got[32];
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    TU_OK(lgpu_op_matmul_backward(ex, p, oh_ref(bw), oh_ref(bdy), oh_ref(bdx)));
    TU_OK(lgpu_exec_submit(ex));
    TU_OK(lgpu_buf_read(bdx, 0, got, dxb));
    assert_memory_equal(got, want, dxb);
    memcpy(got, dx0, dxb);
    lgpu_ref_matmul_backward(p, w, NULL, dy, got, 1);
    assert_memory_equal(got, want, dxb);
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(bw), lgpu_buf_destroy(bdy), lgpu_buf_destroy(bdx);
}

static void test_mmb_hand(void **state) {
    (void)state;
    const float w[6] = {1, 2, 3, 4, 5, 6}, dy[2] = {1, -1}, ones[3] = {1, 1, 1};
    const float want[3] = {-3, -3, -3}, want_acc[3] = {-2, -2, -2};
    lgpu_matmul_backward_params p = {1, 2, 3, 0, 0, 0, LGPU_TYPE_F32, 0, 0};
    run_hand(&p, w, sizeof w, dy, sizeof dy, ones, want, sizeof want);
    p.accumulate = 1;
    run_hand(&p, w, sizeof w, dy, sizeof dy, ones, want_acc, sizeof want);

    lgpu_block_q8_0 q8;
    q8.d = lgpu_f32_to_f16(0.5f);
    float w8[32], zero[32] = {0}, two = 2;
    for (int i = 0; i < 32; i++) q8.qs[i] = (int8_t)(i - 16), w8[i] = (float)(i - 16);
    p = (lgpu_matmul_backward_params){1, 1, 32, 0, 0, 0, LGPU_TYPE_Q8_0, 0, 0};
    run_hand(&p, &q8, sizeof q8, &two, 4, zero, w8, sizeof w8);

    /* NF4 without double quantization, two rows of 32 (one block across
     * both): w = 2 code[i % 16] quantizes exactly (absmax 2), dy = [1, -0.5]:
     * dx[k] = w[k] - 0.5 w[32 + k] */
    float x[64], nf4_want[32], dy2[2] = {1, -0.5f};
    for (int i = 0; i < 64; i++) x[i] = 2 * lgpu_nf4_code[i % 16];
    for (int k = 0; k < 32; k++) nf4_want[k] = x[k] - 0.5f * x[32 + k];
    oh_nf4 t = {LGPU_TYPE_NF4_NODQ, LGPU_TYPE_F32, 2, 32, NULL, NULL, NULL, 36, 0};
    t.sb = lgpu_nf4_side_bytes(t.type, 64);
    t.w = oh_alloc(t.wb), t.side = oh_alloc(t.sb);
    TU_OK(lgpu_nf4_quantize(t.type, x, 64, t.w, t.side, LGPU_TYPE_F32));
    lgpu_buf *bw = oh_nf4_upload(&t, 0, 0), *bdy = oh_buf(dy2, 8), *bdx = oh_buf(NULL, 128);
    p = (lgpu_matmul_backward_params){1, 2, 32, 0, 0, 0, LGPU_TYPE_NF4_NODQ, 0, 0};
    lgpu_exec *ex;
    float got[32];
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    TU_OK(lgpu_op_matmul_backward(ex, &p, oh_ref(bw), oh_ref(bdy), oh_ref(bdx)));
    TU_OK(lgpu_exec_submit(ex));
    TU_OK(lgpu_buf_read(bdx, 0, got, sizeof got));
    assert_memory_equal(got, nf4_want, sizeof got);
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(bw), lgpu_buf_destroy(bdy), lgpu_buf_destroy(bdx);
    free(t.w), free(t.side);
}

static void test_mmb_errors(void **state) {
    (void)state;
    lgpu_buf *b = oh_buf(NULL, 4096);
    lgpu_exec *ex;
    bool host = lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    lgpu_matmul_backward_params p = {1, 2, 48, 0, 0, 0, LGPU_TYPE_Q4_0, 0, 0}; /* K not a multiple of 32 */
    assert_int_equal(lgpu_op_matmul_backward(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    p = (lgpu_matmul_backward_params){1, 2, 64, 0, 0, 0, LGPU_TYPE_I32, 0, 0};
    assert_int_equal(lgpu_op_matmul_backward(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EUNSUPPORTED);
    p = (lgpu_matmul_backward_params){1, 100, 64, 0, 0, 0, LGPU_TYPE_F32, 0, 0}; /* 25.6 KB of W in 4 KB */
    assert_int_equal(lgpu_op_matmul_backward(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_ERANGE);
    p = (lgpu_matmul_backward_params){2, 4, 8, 3, 8, 0, LGPU_TYPE_F32, 0, 0}; /* dy_stride < N */
    assert_int_equal(lgpu_op_matmul_backward(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    p = (lgpu_matmul_backward_params){2, 4, 8, 4, 7, 0, LGPU_TYPE_F32, 0, 0}; /* dx_stride < K */
    assert_int_equal(lgpu_op_matmul_backward(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    p = (lgpu_matmul_backward_params){1, 4, 8, 0, 0, 0, LGPU_TYPE_F32, 2, 0}; /* row_offset is the op layer's */
    assert_int_equal(lgpu_op_matmul_backward(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    p = (lgpu_matmul_backward_params){1, 8, 64, 0, 0, 0, LGPU_TYPE_Q4_0, 0, 1}; /* repacked: the host's only */
    assert_int_equal(lgpu_op_matmul_backward(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), host ? 0 : LGPU_EUNSUPPORTED);
    p = (lgpu_matmul_backward_params){1, 12, 64, 0, 0, 0, LGPU_TYPE_Q4_0, 0, 1}; /* whole groups of 8 only */
    assert_int_equal(lgpu_op_matmul_backward(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)),
                     host ? LGPU_EINVAL : LGPU_EUNSUPPORTED);
    p = (lgpu_matmul_backward_params){1, 4, 64, 0, 0, 0, LGPU_TYPE_NF4, 0, 0}; /* NF4 without its side table */
    assert_int_equal(lgpu_op_matmul_backward(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    p = (lgpu_matmul_backward_params){0, 4, 64, 0, 0, 0, LGPU_TYPE_F32, 0, 0}; /* empty */
    assert_int_equal(lgpu_op_matmul_backward(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), 0);
    TU_OK(lgpu_exec_submit(ex));
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mmb_hand),     cmocka_unit_test(test_mmb_twin),   cmocka_unit_test(test_mmb_identity),
        cmocka_unit_test(test_mmb_fd),       cmocka_unit_test(test_mmb_x8),     cmocka_unit_test(test_mmb_device),
        cmocka_unit_test(test_mmb_gpu_tiles), cmocka_unit_test(test_mmb_n0),  cmocka_unit_test(test_mmb_segments),
        cmocka_unit_test(test_mmb_errors),
    };
    if (getenv("LGPU_TEST_FILTER")) cmocka_set_test_filter(getenv("LGPU_TEST_FILTER"));
    return cmocka_run_group_tests(tests, oh_setup, oh_teardown);
}
