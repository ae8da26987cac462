/* The backward ops of the row and pointwise forwards: rmsnorm_backward,
 * rope_backward, swiglu_backward. Each C twin is checked against central
 * finite differences of its forward, written here in double (the gradient
 * of the scalar sum(dy * forward(x))); then the op on the selected device
 * against the twin at odd shapes, three runs bit-identical, the reduction in
 * both its subgroup and shared-memory builds; and the twins' results do not
 * depend on the thread count. */
#include <math.h>

#include "ops_harness.h"

#define ALIGN_UP(x) (((x) + LGPU_REF_ALIGN - 1) / LGPU_REF_ALIGN * LGPU_REF_ALIGN)

/* Largest |v| of n values (tolerances scale with it). */
static double max_abs(const float *v, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)v[i]));
    return m;
}

/* ================= rmsnorm ================= */

/* sum_i dy[i] * x[i] * r * w[i] for one row, r = 1 / sqrt(mean(x^2) + eps), in double */
static double rms_objective(const double *x, const float *w, const float *dy, uint32_t N, double eps) {
    double ss = 0, s = 0;
    for (uint32_t i = 0; i < N; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / N + eps);
    for (uint32_t i = 0; i < N; i++) s += (double)dy[i] * x[i] * r * w[i];
    return s;
}

/* Central differences of rms_objective for every x element, h = 1e-4
 * (truncation ~h^2 ~ 1e-8 relative, rounding ~1e-16/h ~ 1e-12). */
static void rms_fd(uint32_t M, uint32_t N, const float *x, const float *w, const float *dy, double eps, float *fd) {
    const double h = 1e-4;
    double *row = oh_alloc((size_t)N * sizeof(double));
    for (uint32_t m = 0; m < M; m++) {
        for (uint32_t i = 0; i < N; i++) row[i] = x[(size_t)m * N + i];
        for (uint32_t i = 0; i < N; i++) {
            double x0 = row[i];
            row[i] = x0 + h;
            double fp = rms_objective(row, w, dy + (size_t)m * N, N, eps);
            row[i] = x0 - h;
            double fm = rms_objective(row, w, dy + (size_t)m * N, N, eps);
            row[i] = x0;
            fd[(size_t)m * N + i] = (float)((fp - fm) / (2 * h));
        }
    }
    free(row);
}

typedef struct {
    lgpu_buf *x, *w, *dy, *dx;
    const lgpu_rmsnorm_backward_params *p;
    const float *dx0; /* initial dx when accumulating */
    size_t xb;
} rmsb_ctx;

static void rmsb_reset(oh_case *c) {
    rmsb_ctx *r = c->ctx;
    if (r->dx0) TU_OK(lgpu_buf_write(r->dx, 0, r->dx0, r->xb));
    else oh_poison(r->dx, r->xb);
}

static int rmsb_record(oh_case *c, lgpu_exec *ex) {
    rmsb_ctx *r = c->ctx;
    return lgpu_op_rmsnorm_backward(ex, r->p, oh_ref(r->x), oh_ref(r->w), oh_ref(r->dy), oh_ref(r->dx));
}

static void run_rmsb(const lgpu_rmsnorm_backward_params *p, const float *x, const float *w, const float *dy,
                     const float *dx0, float *got) {
    size_t xb = (size_t)p->M * p->N * 4;
    rmsb_ctx r = {oh_buf(x, xb), oh_buf(w, (size_t)p->N * 4), oh_buf(dy, xb), oh_buf(NULL, xb), p, dx0, xb};
    oh_case c = {rmsb_reset, rmsb_record, r.dx, xb, &r};
    oh_run3(&c, got);
    lgpu_buf_destroy(r.x), lgpu_buf_destroy(r.w), lgpu_buf_destroy(r.dy), lgpu_buf_destroy(r.dx);
}

static void rms_inputs(uint64_t seed, uint32_t M, uint32_t N, float *x, float *w, float *dy) {
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    tu_fill_uniform(&rng, x, (size_t)M * N, -3, 3);
    tu_fill_uniform(&rng, w, N, 0.5f, 1.5f);
    tu_fill_uniform(&rng, dy, (size_t)M * N, -1, 1);
}

/* The twin against finite differences of the forward, plain and accumulating. */
static void test_rmsnorm_backward_fd(void **state) {
    (void)state;
    const uint32_t shapes[][2] = {{1, 1}, {3, 31}, {2, 155}, {4, 300}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        uint32_t M = shapes[s][0], N = shapes[s][1];
        size_t n = (size_t)M * N;
        float *x = oh_alloc(n * 4), *w = oh_alloc(N * 4), *dy = oh_alloc(n * 4), *fd = oh_alloc(n * 4);
        float *dx = oh_alloc(n * 4), *acc = oh_alloc(n * 4), *want = oh_alloc(n * 4);
        rms_inputs(100 + s, M, N, x, w, dy);
        rms_fd(M, N, x, w, dy, 1e-5, fd);
        lgpu_rmsnorm_backward_params p = {M, N, 1e-5f, 0};
        lgpu_ref_rmsnorm_backward(&p, x, w, dy, dx, 1);
        /* double twin rounded once vs FD (~1e-8): float rounding of dx dominates */
        double sc = max_abs(fd, n);
        assert_int_equal(oh_compare("rmsnorm_backward twin vs FD", dx, fd, n, 1e-6 * sc, 1e-5), 0);
        OH_CHECK_NMSE("rmsnorm_backward twin vs FD", dx, fd, n, 1e-11);
        /* accumulate: dx0 + the gradient, one rounding */
        for (size_t i = 0; i < n; i++) acc[i] = want[i] = 0.25f * (float)i - 1.0f;
        for (size_t i = 0; i < n; i++) want[i] += dx[i];
        p.accumulate = 1;
        lgpu_ref_rmsnorm_backward(&p, x, w, dy, acc, 1);
        assert_int_equal(oh_compare("rmsnorm_backward accumulate", acc, want, n, 1e-7 * (sc + n), 2e-7), 0);
        free(x), free(w), free(dy), free(fd), free(dx), free(acc), free(want);
    }
}

/* Largest |r * g| + |x * coef| over all rows: the size of the two terms
 * whose difference is dx. */
static double rms_term_scale(uint32_t M, uint32_t N, const float *x, const float *w, const float *dy, double eps) {
    double sc = 0;
    for (uint32_t m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * N, *dyr = dy + (size_t)m * N;
        double ss = 0, gx = 0;
        for (uint32_t i = 0; i < N; i++) ss += (double)xr[i] * xr[i], gx += (double)dyr[i] * w[i] * xr[i];
        double r = 1.0 / sqrt(ss / N + eps), coef = r * r * r * gx / N;
        for (uint32_t i = 0; i < N; i++) sc = fmax(sc, fabs(r * dyr[i] * w[i]) + fabs(xr[i] * coef));
    }
    return sc;
}

/* rows {9, 2048}, {70001, 5}: the host twin splits rows over threads; the
 * device goes to a 2D grid of workgroups (70001 > 65535 rows; subgroup build
 * only) */
static const uint32_t rms_shapes[][2] = {{1, 1},   {3, 31},    {2, 155}, {5, 172},
                                         {2, 4097}, {64, 64}, {1, 32000}, {9, 2048}, {70001, 5}};

static void check_rmsnorm_backward(bool nosg) {
    oh_force_no_subgroup(nosg);
    for (size_t s = 0; s < sizeof rms_shapes / sizeof rms_shapes[0]; s++) {
        uint32_t M = rms_shapes[s][0], N = rms_shapes[s][1];
        if (nosg && M > 65535) continue; /* the grid does not depend on the build; lavapipe's tree is slow */
        size_t n = (size_t)M * N;
        float *x = oh_alloc(n * 4), *w = oh_alloc(N * 4), *dy = oh_alloc(n * 4), *want = oh_alloc(n * 4);
        float *got = oh_alloc(n * 4), *dx0 = oh_alloc(n * 4), *t4 = oh_alloc(n * 4);
        rms_inputs(200 + s, M, N, x, w, dy);
        for (int accumulate = M > 65535; accumulate < 2; accumulate++) { /* 2D grid: accumulating only */
            lgpu_rmsnorm_backward_params p = {M, N, 1e-5f, (uint32_t)accumulate};
            tu_rng rng;
            tu_rng_seed(&rng, 300 + s);
            tu_fill_uniform(&rng, dx0, n, -1, 1);
            memcpy(want, dx0, n * 4);
            memcpy(t4, dx0, n * 4);
            lgpu_ref_rmsnorm_backward(&p, x, w, dy, want, 1);
            lgpu_ref_rmsnorm_backward(&p, x, w, dy, t4, 4);
            assert_memory_equal(t4, want, n * 4); /* thread count changes no bit */
            run_rmsb(&p, x, w, dy, accumulate ? dx0 : NULL, got);
            /* fp32 sums of x^2 and g*x over the row (a workgroup reduction) vs
             * the double twin. dx = r*g - x*coef cancels (N = 1: to ~1e-7 of
             * its terms), so the error is measured against the terms' size */
            double sc = rms_term_scale(M, N, x, w, dy, 1e-5);
            assert_int_equal(oh_compare(accumulate ? "rmsnorm_backward acc" : "rmsnorm_backward", got, want, n,
                                        2e-6 * sc, 2e-6),
                             0);
            if (N > 1) OH_CHECK_NMSE("rmsnorm_backward", got, want, n, 1e-11); /* N = 1: all cancellation */
        }
        free(x), free(w), free(dy), free(want), free(got), free(dx0), free(t4);
    }
    oh_force_no_subgroup(false);
}

static void test_rmsnorm_backward(void **state) {
    (void)state;
    check_rmsnorm_backward(false);
    check_rmsnorm_backward(true);
}

/* dx written over dy (in place), as the contract allows. */
typedef struct {
    lgpu_buf *x, *w, *g;
    const lgpu_rmsnorm_backward_params *p;
    const float *dy;
    size_t xb;
} rmsb_inplace_ctx;

static void rmsb_inplace_reset(oh_case *c) {
    rmsb_inplace_ctx *r = c->ctx;
    TU_OK(lgpu_buf_write(r->g, 0, r->dy, r->xb));
}

static int rmsb_inplace_record(oh_case *c, lgpu_exec *ex) {
    rmsb_inplace_ctx *r = c->ctx;
    return lgpu_op_rmsnorm_backward(ex, r->p, oh_ref(r->x), oh_ref(r->w), oh_ref(r->g), oh_ref(r->g));
}

static void test_rmsnorm_backward_inplace(void **state) {
    (void)state;
    const uint32_t shapes[][2] = {{3, 31}, {2, 4097}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        uint32_t M = shapes[s][0], N = shapes[s][1];
        size_t n = (size_t)M * N, xb = n * 4;
        float *x = oh_alloc(xb), *w = oh_alloc(N * 4), *dy = oh_alloc(xb), *want = oh_alloc(xb), *got = oh_alloc(xb);
        rms_inputs(250 + s, M, N, x, w, dy);
        lgpu_rmsnorm_backward_params p = {M, N, 1e-5f, 0};
        lgpu_ref_rmsnorm_backward(&p, x, w, dy, want, 1);
        memcpy(got, dy, xb);
        lgpu_ref_rmsnorm_backward(&p, x, w, got, got, 1);
        assert_memory_equal(got, want, xb); /* the twin in place: same bits */
        rmsb_inplace_ctx r = {oh_buf(x, xb), oh_buf(w, (size_t)N * 4), oh_buf(dy, xb), &p, dy, xb};
        oh_case c = {rmsb_inplace_reset, rmsb_inplace_record, r.g, xb, &r};
        oh_run3(&c, got);
        /* as test_rmsnorm_backward */
        assert_int_equal(oh_compare("rmsnorm_backward in place", got, want, n, 2e-6 * rms_term_scale(M, N, x, w, dy, 1e-5),
                                    2e-6),
                         0);
        lgpu_buf_destroy(r.x), lgpu_buf_destroy(r.w), lgpu_buf_destroy(r.g);
        free(x), free(w), free(dy), free(want), free(got);
    }
}

/* x = [1, 2, 3, 4], w = 1, dy = [1, 0, 0, 0], eps 0: mean square 7.5,
 * r = 1/sqrt(7.5); sum(g*x) = 1; dx = r*dy - x * r^3 / 4:
 *   r = 0.365148372, r^3 / 4 = 0.0121716124
 *   dx = [0.352976760, -0.0243432248, -0.0365148372, -0.0486864496] */
static void test_rmsnorm_backward_hand(void **state) {
    (void)state;
    const float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 1, 1}, dy[4] = {1, 0, 0, 0};
    const float want[4] = {0.352976760f, -0.0243432248f, -0.0365148372f, -0.0486864496f};
    lgpu_rmsnorm_backward_params p = {1, 4, 0.0f, 0};
    float ref[4], got[4];
    lgpu_ref_rmsnorm_backward(&p, x, w, dy, ref, 1);
    assert_int_equal(tu_compare("rmsnorm_backward twin", ref, want, 4, 0, 1e-7), 0);
    run_rmsb(&p, x, w, dy, NULL, got);
    assert_int_equal(oh_compare("rmsnorm_backward", got, want, 4, 0, 1e-6), 0);
}

/* ================= rope ================= */

/* rope forward of the whole buffer in double, the angle rounded to float as
 * lgpu_op_rope does; returns sum(dy * y) (gaps between tokens pass through). */
static double rope_objective(const lgpu_rope_params *p, const double *x, size_t xn, const int32_t *pos,
                             const float *freq, const float *dy) {
    double s = 0;
    for (size_t i = 0; i < xn; i++) s += (double)dy[i] * x[i]; /* identity part, corrected below */
    for (uint32_t t = 0; t < p->T; t++)
        for (uint32_t h = 0; h < p->n_heads; h++)
            for (uint32_t i = 0; i < p->head_dim / 2; i++) {
                size_t o = (size_t)t * p->token_stride + (size_t)h * p->head_dim + 2 * i;
                double a = (double)((float)pos[t] * freq[i]), c = cos(a), sn = sin(a);
                double y0 = x[o] * c - x[o + 1] * sn, y1 = x[o] * sn + x[o + 1] * c;
                s += dy[o] * (y0 - x[o]) + dy[o + 1] * (y1 - x[o + 1]);
            }
    return s;
}

typedef struct {
    lgpu_buf *x, *pos, *freq;
    const lgpu_rope_params *p;
    const float *xh;
    size_t xb;
    bool backward;
} rope_ctx;

static void rope_reset(oh_case *c) {
    rope_ctx *r = c->ctx;
    TU_OK(lgpu_buf_write(r->x, 0, r->xh, r->xb)); /* in place: fresh input each run */
}

static int rope_record(oh_case *c, lgpu_exec *ex) {
    rope_ctx *r = c->ctx;
    if (r->backward) return lgpu_op_rope_backward(ex, r->p, oh_ref(r->x), oh_ref(r->pos), oh_ref(r->freq));
    return lgpu_op_rope(ex, r->p, oh_ref(r->x), oh_ref(r->pos), oh_ref(r->freq));
}

static void run_rope(bool backward, const lgpu_rope_params *p, const float *x, size_t xn, const int32_t *pos,
                     const float *freq, float *got) {
    rope_ctx r = {oh_buf(x, xn * 4), oh_buf(pos, p->T * 4), oh_buf(freq, p->head_dim / 2 * 4), p, x, xn * 4,
                  backward};
    oh_case c = {rope_reset, rope_record, r.x, xn * 4, &r};
    oh_run3(&c, got);
    lgpu_buf_destroy(r.x), lgpu_buf_destroy(r.pos), lgpu_buf_destroy(r.freq);
}

static void rope_inputs(uint64_t seed, const lgpu_rope_params *p, size_t xn, uint32_t max_pos, bool llama3, float *x,
                        int32_t *pos, float *freq) {
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    tu_fill_uniform(&rng, x, xn, -2, 2);
    for (uint32_t t = 0; t < p->T; t++) pos[t] = (int32_t)(tu_rng_u32(&rng) % max_pos);
    lgpu_rope_scaling sc = {8, 1, 4, 8192};
    lgpu_rope_inv_freq(llama3 ? 500000.0f : 10000.0f, p->head_dim, llama3 ? &sc : NULL, freq);
}

/* The twin against finite differences of the forward: rope is linear in x,
 * so the central difference is exact up to rounding (h = 0.5); token gaps
 * (token_stride > n_heads*head_dim) pass dy through unchanged. */
static void test_rope_backward_fd(void **state) {
    (void)state;
    const lgpu_rope_params cases[] = {{1, 1, 2, 2}, {3, 2, 8, 20}, {5, 3, 6, 18}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const lgpu_rope_params *p = &cases[k];
        size_t xn = (size_t)p->T * p->token_stride;
        float *x = oh_alloc(xn * 4), *dy = oh_alloc(xn * 4), *dx = oh_alloc(xn * 4), *fd = oh_alloc(xn * 4);
        float *freq = oh_alloc(p->head_dim * 2);
        int32_t *pos = oh_alloc(p->T * 4);
        double *xd = oh_alloc(xn * sizeof(double));
        rope_inputs(400 + k, p, xn, 1u << 17, k % 2, x, pos, freq);
        tu_rng rng;
        tu_rng_seed(&rng, 410 + k);
        tu_fill_uniform(&rng, dy, xn, -1, 1);
        for (size_t i = 0; i < xn; i++) xd[i] = x[i];
        for (size_t i = 0; i < xn; i++) {
            const double h = 0.5;
            xd[i] = x[i] + h;
            double fp = rope_objective(p, xd, xn, pos, freq, dy);
            xd[i] = x[i] - h;
            double fm = rope_objective(p, xd, xn, pos, freq, dy);
            xd[i] = x[i];
            fd[i] = (float)((fp - fm) / (2 * h));
        }
        memcpy(dx, dy, xn * 4);
        lgpu_ref_rope_backward(p, dx, pos, freq);
        assert_int_equal(oh_compare("rope_backward twin vs FD", dx, fd, xn, 1e-6, 1e-6), 0);
        OH_CHECK_NMSE("rope_backward twin vs FD", dx, fd, xn, 1e-12);
        free(x), free(dy), free(dx), free(fd), free(freq), free(pos), free(xd);
    }
}

/* The device op against the twin (positions up to 2^17: angles up to 1.3e5
 * rad, the shader's Cody-Waite reduction), and rope then rope_backward gives
 * x back. */
static void test_rope_backward(void **state) {
    (void)state;
    const lgpu_rope_params cases[] = {
        {1, 1, 2, 2}, {7, 3, 8, 24}, {31, 4, 64, 300}, {155, 2, 128, 256}, {3, 32, 128, 4096 + 64}, {64, 2, 64, 128}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const lgpu_rope_params *p = &cases[k];
        size_t xn = (size_t)p->T * p->token_stride;
        float *x = oh_alloc(xn * 4), *want = oh_alloc(xn * 4), *got = oh_alloc(xn * 4), *fwd = oh_alloc(xn * 4);
        float *freq = oh_alloc(p->head_dim * 2);
        int32_t *pos = oh_alloc(p->T * 4);
        rope_inputs(500 + k, p, xn, k >= 4 ? 1u << 17 : 4096, k % 2, x, pos, freq);
        memcpy(want, x, xn * 4);
        lgpu_ref_rope_backward(p, want, pos, freq);
        run_rope(true, p, x, xn, pos, freq, got);
        /* as test_rope: same fp32 angle, fp32 reduction and cos/sin in the shader vs double */
        assert_int_equal(oh_compare("rope_backward", got, want, xn, 2e-5, 2e-5), 0);
        OH_CHECK_NMSE("rope_backward", got, want, xn, 1e-10);
        /* round trip on the device: R(-a) R(a) x = x within a few fp32 roundings */
        run_rope(false, p, x, xn, pos, freq, fwd);
        run_rope(true, p, fwd, xn, pos, freq, got);
        assert_int_equal(oh_compare("rope round trip", got, x, xn, 4e-6, 4e-6), 0);
        free(x), free(want), free(got), free(fwd), free(freq), free(pos);
    }
}

/* (1, 0) rotated back by a = 1 (position 1, inv_freq 1): (cos 1, -sin 1);
 * the second pair by 0.01: (cos 0.01, -sin 0.01). */
static void test_rope_backward_hand(void **state) {
    (void)state;
    float freq[2];
    lgpu_rope_inv_freq(10000.0f, 4, NULL, freq);
    const float x[4] = {1, 0, 1, 0};
    const int32_t pos[1] = {1};
    const float want[4] = {0.540302306f, -0.841470985f, 0.99995f, -0.00999983333f};
    lgpu_rope_params p = {1, 1, 4, 4};
    float ref[4], got[4];
    memcpy(ref, x, sizeof x);
    lgpu_ref_rope_backward(&p, ref, pos, freq);
    assert_int_equal(tu_compare("rope_backward twin", ref, want, 4, 1e-7, 1e-6), 0);
    run_rope(true, &p, x, 4, pos, freq, got);
    assert_int_equal(oh_compare("rope_backward", got, want, 4, 1e-6, 1e-6), 0);
}

/* ================= swiglu ================= */

static double silu_d(double g) { return g / (1.0 + exp(-g)); }

/* Finite differences of sum(dy * silu(g) * u) in g and u (pointwise: one
 * element at a time), h = 1e-4 relative to max(1, |g|). */
static void swiglu_fd(uint32_t n, const float *g, const float *u, const float *dy, float *dg, float *du) {
    for (uint32_t i = 0; i < n; i++) {
        double h = 1e-4 * fmax(1.0, fabs((double)g[i]));
        dg[i] = (float)(dy[i] * u[i] * (silu_d(g[i] + h) - silu_d(g[i] - h)) / (2 * h));
        double hu = 1e-4 * fmax(1.0, fabs((double)u[i]));
        du[i] = (float)(dy[i] * silu_d(g[i]) * (((double)u[i] + hu) - ((double)u[i] - hu)) / (2 * hu));
    }
}

static void swiglu_inputs(uint64_t seed, uint32_t n, float *g, float *u, float *dy) {
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    tu_fill_uniform(&rng, g, n, -12, 12);
    tu_fill_uniform(&rng, u, n, -2, 2);
    tu_fill_uniform(&rng, dy, n, -1, 1);
    if (n > 3) g[0] = -100, g[1] = 100, g[2] = 0; /* saturated sigmoid both ways, and 0 */
}

static void test_swiglu_backward_fd(void **state) {
    (void)state;
    const uint32_t n = 4097;
    float *g = oh_alloc(n * 4), *u = oh_alloc(n * 4), *dy = oh_alloc(n * 4), *dg = oh_alloc(n * 4);
    float *du = oh_alloc(n * 4), *fg = oh_alloc(n * 4), *fu = oh_alloc(n * 4);
    swiglu_inputs(600, n, g, u, dy);
    swiglu_fd(n, g, u, dy, fg, fu);
    lgpu_swiglu_backward_params p = {n};
    lgpu_ref_swiglu_backward(&p, g, u, dy, dg, du, 1);
    /* float twin (expf, ~5 roundings) vs FD in double (~1e-8 relative) */
    assert_int_equal(oh_compare("swiglu_backward dg twin vs FD", dg, fg, n, 1e-6, 1e-5), 0);
    assert_int_equal(oh_compare("swiglu_backward du twin vs FD", du, fu, n, 1e-6, 1e-5), 0);
    OH_CHECK_NMSE("swiglu_backward dg twin vs FD", dg, fg, n, 1e-12);
    OH_CHECK_NMSE("swiglu_backward du twin vs FD", du, fu, n, 1e-12);
    assert_true(dg[0] == 0.0f && du[0] == 0.0f && isfinite(dg[1])); /* no NaN at the saturated ends */
    free(g), free(u), free(dy), free(dg), free(du), free(fg), free(fu);
}

/* dg and du share one output buffer (du at an aligned offset), so oh_run3
 * checks both; `inplace` writes dg over g and du over u instead. */
typedef struct {
    lgpu_buf *g, *u, *dy, *out;
    const lgpu_swiglu_backward_params *p;
    const float *gh, *uh;
    size_t nb, du_off;
    bool inplace;
} swb_ctx;

static void swb_reset(oh_case *c) {
    swb_ctx *r = c->ctx;
    if (r->inplace) {
        TU_OK(lgpu_buf_write(r->out, 0, r->gh, r->nb));
        TU_OK(lgpu_buf_write(r->out, r->du_off, r->uh, r->nb));
    } else {
        oh_poison(r->out, c->out_bytes);
    }
}

static int swb_record(oh_case *c, lgpu_exec *ex) {
    swb_ctx *r = c->ctx;
    lgpu_ref dg = oh_ref(r->out), du = lgpu_ref_at(r->out, r->du_off);
    if (r->inplace) return lgpu_op_swiglu_backward(ex, r->p, dg, du, oh_ref(r->dy), dg, du);
    return lgpu_op_swiglu_backward(ex, r->p, oh_ref(r->g), oh_ref(r->u), oh_ref(r->dy), dg, du);
}

static void run_swb(bool inplace, const lgpu_swiglu_backward_params *p, const float *g, const float *u,
                    const float *dy, float *dg, float *du) {
    size_t nb = (size_t)p->n * 4, off = ALIGN_UP(nb);
    swb_ctx r = {oh_buf(g, nb), oh_buf(u, nb), oh_buf(dy, nb), oh_buf(NULL, off + nb), p, g, u, nb, off, inplace};
    float *all = oh_alloc(off + nb);
    oh_case c = {swb_reset, swb_record, r.out, off + nb, &r};
    oh_run3(&c, all);
    memcpy(dg, all, nb);
    memcpy(du, (char *)all + off, nb);
    free(all);
    lgpu_buf_destroy(r.g), lgpu_buf_destroy(r.u), lgpu_buf_destroy(r.dy), lgpu_buf_destroy(r.out);
}

static void test_swiglu_backward(void **state) {
    (void)state;
    const uint32_t sizes[] = {1, 31, 155, 172, 4097, 70001};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint32_t n = sizes[s];
        float *g = oh_alloc(n * 4), *u = oh_alloc(n * 4), *dy = oh_alloc(n * 4);
        float *wg = oh_alloc(n * 4), *wu = oh_alloc(n * 4), *gg = oh_alloc(n * 4), *gu = oh_alloc(n * 4);
        float *tg = oh_alloc(n * 4), *tu = oh_alloc(n * 4);
        swiglu_inputs(700 + s, n, g, u, dy);
        lgpu_swiglu_backward_params p = {n};
        lgpu_ref_swiglu_backward(&p, g, u, dy, wg, wu, 1);
        lgpu_ref_swiglu_backward(&p, g, u, dy, tg, tu, 4);
        assert_memory_equal(tg, wg, n * 4); /* thread count changes no bit (70001: split) */
        assert_memory_equal(tu, wu, n * 4);
        for (int inplace = 0; inplace < 2; inplace++) {
            run_swb(inplace, &p, g, u, dy, gg, gu);
            /* the shader's fp32 exp (GLSL: 3 + 2|x| ulp) vs libm expf, as the forward */
            assert_int_equal(oh_compare("swiglu_backward dg", gg, wg, n, 1e-6, 1e-5), 0);
            assert_int_equal(oh_compare("swiglu_backward du", gu, wu, n, 1e-6, 1e-5), 0);
            OH_CHECK_NMSE("swiglu_backward dg", gg, wg, n, 1e-11);
            OH_CHECK_NMSE("swiglu_backward du", gu, wu, n, 1e-11);
        }
        free(g), free(u), free(dy), free(wg), free(wu), free(gg), free(gu), free(tg), free(tu);
    }
}

/* g = 1, u = 2, dy = 1: s = sigmoid(1) = 0.731058579;
 *   dg = 2 * s * (1 + 1 - s) = 2 * 0.731058579 * 1.268941421 = 1.85534102
 *   du = s = 0.731058579
 * g = 0, u = 3, dy = 2: s = 0.5, dg = 2 * 3 * 0.5 * 1 = 3, du = 0 */
static void test_swiglu_backward_hand(void **state) {
    (void)state;
    const float g[2] = {1, 0}, u[2] = {2, 3}, dy[2] = {1, 2};
    const float wg[2] = {1.85534102f, 3.0f}, wu[2] = {0.731058579f, 0.0f};
    float dg[2], du[2];
    lgpu_swiglu_backward_params p = {2};
    lgpu_ref_swiglu_backward(&p, g, u, dy, dg, du, 1);
    assert_int_equal(tu_compare("swiglu_backward dg twin", dg, wg, 2, 0, 1e-6), 0);
    assert_int_equal(tu_compare("swiglu_backward du twin", du, wu, 2, 0, 1e-6), 0);
    run_swb(false, &p, g, u, dy, dg, du);
    assert_int_equal(oh_compare("swiglu_backward dg", dg, wg, 2, 0, 1e-6), 0);
    assert_int_equal(oh_compare("swiglu_backward du", du, wu, 2, 0, 1e-6), 0);
}

static void test_errors(void **state) {
    (void)state;
    lgpu_buf *b = oh_buf(NULL, 4096);
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    lgpu_rmsnorm_backward_params rp = {2, 600, 1e-5f, 0}; /* 4800 bytes > 4096 */
    assert_int_equal(lgpu_op_rmsnorm_backward(ex, &rp, oh_ref(b), oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_ERANGE);
    assert_non_null(strstr(lgpu_last_error(), "rmsnorm_backward"));
    rp = (lgpu_rmsnorm_backward_params){1, 0, 1e-5f, 0};
    assert_int_equal(lgpu_op_rmsnorm_backward(ex, &rp, oh_ref(b), oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    lgpu_rope_params pp = {2, 2, 7, 14}; /* odd head_dim */
    assert_int_equal(lgpu_op_rope_backward(ex, &pp, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "rope_backward"));
    lgpu_swiglu_backward_params sp = {512};
    assert_int_equal(lgpu_op_swiglu_backward(ex, &sp, oh_ref(b), oh_ref(b), oh_ref(b), lgpu_ref_at(b, 4),
                                             lgpu_ref_at(b, 2048)),
                     LGPU_EINVAL); /* unaligned dg */
    assert_int_equal(lgpu_op_swiglu_backward(ex, &sp, oh_ref(b), oh_ref(b), oh_ref(b), oh_ref(b), oh_ref(b)),
                     LGPU_EINVAL); /* dg = du */
    sp.n = 0; /* nothing to do */
    TU_OK(lgpu_op_swiglu_backward(ex, &sp, oh_ref(b), oh_ref(b), oh_ref(b), oh_ref(b), oh_ref(b)));
    TU_OK(lgpu_exec_submit(ex));
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm_backward_hand), cmocka_unit_test(test_rmsnorm_backward_fd),
        cmocka_unit_test(test_rmsnorm_backward),      cmocka_unit_test(test_rmsnorm_backward_inplace),
        cmocka_unit_test(test_rope_backward_hand),
        cmocka_unit_test(test_rope_backward_fd),      cmocka_unit_test(test_rope_backward),
        cmocka_unit_test(test_swiglu_backward_hand),  cmocka_unit_test(test_swiglu_backward_fd),
        cmocka_unit_test(test_swiglu_backward),       cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, oh_setup, oh_teardown);
}
