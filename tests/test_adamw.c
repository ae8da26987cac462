/* The optimizer's ops: lgpu_op_adamw (torch.optim.AdamW's formulas, in the
 * order of engine/params/adamw.h) over several steps against a reference of
 * those formulas that keeps its whole state in double, weight decay on and
 * off, grad_scale != 1; and lgpu_op_sumsq (per-block sums of squares, the
 * gradient clipping norm's pieces) against double sums. Device against twin,
 * 3 runs bit-identical, both reduction builds; the twins do not depend on
 * the thread count. */
#include <math.h>

#include "ops_harness.h"

#define ALIGN_UP(x) (((x) + LGPU_REF_ALIGN - 1) / LGPU_REF_ALIGN * LGPU_REF_ALIGN)

/* ================= adamw ================= */

/* The state p | m | v in one buffer (each at an aligned offset), so oh_run3
 * checks all three. */
typedef struct {
    lgpu_buf *state, *grad;
    const lgpu_adamw_params *p;
    const float *img;
    size_t sb, off;
} adamw_ctx;

static void adamw_reset(oh_case *c) {
    adamw_ctx *r = c->ctx;
    TU_OK(lgpu_buf_write(r->state, 0, r->img, 3 * r->off)); /* in place: the state before this step */
}

static int adamw_record(oh_case *c, lgpu_exec *ex) {
    adamw_ctx *r = c->ctx;
    return lgpu_op_adamw(ex, r->p, lgpu_ref_at(r->state, 0), oh_ref(r->grad), lgpu_ref_at(r->state, r->off),
                         lgpu_ref_at(r->state, 2 * r->off));
}

/* One step on the device; state: p | m | v at multiples of off, updated. */
static void run_adamw(const lgpu_adamw_params *p, float *state, size_t off, const float *grad) {
    adamw_ctx r = {oh_buf(state, 3 * off), oh_buf(grad, (size_t)p->n * 4), p, state, 3 * off, off};
    float *out = oh_alloc(3 * off);
    oh_case c = {adamw_reset, adamw_record, r.state, 3 * off, &r};
    oh_run3(&c, out);
    memcpy(state, out, 3 * off);
    free(out);
    lgpu_buf_destroy(r.state), lgpu_buf_destroy(r.grad);
}

/* Element i's gradient magnitude: 1, 1e-3, 1e-6, 1e-9 (below eps) or 0. */
static double grad_mag(size_t i) {
    static const double mags[5] = {1, 1e-3, 1e-6, 1e-9, 0};
    return mags[i % 5];
}

/* Largest error of got against the double reference as a fraction of
 * tol_i = atol_i + rtol * |ref|; logs it. */
static double adamw_worst(const char *what, const float *got, const double *ref, size_t n, const double *atol,
                          double rtol) {
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double tol = atol[i] + rtol * fabs(ref[i]), d = fabs((double)got[i] - ref[i]);
        double f = tol > 0 ? d / tol : (d > 0 ? INFINITY : 0);
        if (!(f <= worst)) worst = f, wi = i;
    }
    if (n) fprintf(stderr, "  %s: worst error %.3g = %.3g of its tolerance (at %zu)\n", what,
                   fabs((double)got[wi] - ref[wi]), worst, wi);
    return worst;
}

static void test_adamw_steps(void **state) {
    (void)state;
    const uint32_t sizes[] = {1, 31, 4097, 70001};
    /* lr, weight_decay, grad_scale */
    const float cfg[][3] = {{1e-3f, 0.01f, 1.0f}, {1e-2f, 0.0f, 0.37f}, {3e-4f, 0.1f, 2.5f}};
    const double B1 = 0.9, B2 = 0.999;
    const float beta1 = (float)B1, beta2 = (float)B2, eps = 1e-8f;
    enum { STEPS = 5 };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
            uint32_t n = sizes[s];
            size_t off = ALIGN_UP((size_t)n * 4);
            float *dev = oh_alloc(3 * off), *twin = oh_alloc(3 * off), *t4 = oh_alloc(3 * off);
            float *g = oh_alloc(n * 4);
            double *rp = oh_alloc(n * 8), *rm = oh_alloc(n * 8), *rv = oh_alloc(n * 8);
            double *ap = oh_alloc(n * 8), *am = oh_alloc(n * 8), *av = oh_alloc(n * 8);
            tu_rng rng;
            tu_rng_seed(&rng, 1100 + 10 * s + k);
            memset(dev, 0, 3 * off);
            for (uint32_t i = 0; i < n; i++) {
                dev[i] = tu_rng_uniform(&rng, -1, 1);
                rp[i] = dev[i], rm[i] = 0, rv[i] = 0;
                double gm = grad_mag(i) * cfg[k][2];
                /* p: a few fp32 roundings of values <= 1 per step (5 steps);
                 * m, v: fp32 roundings of beta*m + (1-beta)*g, which may
                 * cancel, so relative to the gradient's size, plus the
                 * float betas (0.9f: 2.6e-8 relative per step) */
                ap[i] = 1e-6, am[i] = 2e-7 * gm, av[i] = 2e-7 * gm * gm;
            }
            memcpy(twin, dev, 3 * off);
            memcpy(t4, dev, 3 * off);
            fprintf(stderr, "  n %u lr %g weight_decay %g grad_scale %g\n", n, cfg[k][0], cfg[k][1], cfg[k][2]);
            for (int t = 1; t <= STEPS; t++) {
                for (uint32_t i = 0; i < n; i++) g[i] = (float)(grad_mag(i) * tu_rng_normal(&rng));
                double c1 = 1.0 / (1.0 - pow(B1, t)), c2 = 1.0 / sqrt(1.0 - pow(B2, t));
                lgpu_adamw_params p = {n,         cfg[k][0], beta1,     beta2,           eps,
                                       cfg[k][1], (float)c1, (float)c2, cfg[k][2], (float)(1 - B1),
                                       (float)(1 - B2)};
                /* the reference: the header's formulas, all state and the
                 * betas and eps in double (as torch's scalars) */
                for (uint32_t i = 0; i < n; i++) {
                    double gi = (double)g[i] * p.grad_scale;
                    rp[i] *= 1.0 - (double)p.lr * p.weight_decay;
                    rm[i] = B1 * rm[i] + (1.0 - B1) * gi;
                    rv[i] = B2 * rv[i] + (1.0 - B2) * gi * gi;
                    rp[i] -= (double)p.lr * c1 * rm[i] / (sqrt(rv[i]) * c2 + 1e-8);
                }
                lgpu_ref_adamw(&p, twin, g, (float *)((char *)twin + off), (float *)((char *)twin + 2 * off), 1);
                lgpu_ref_adamw(&p, t4, g, (float *)((char *)t4 + off), (float *)((char *)t4 + 2 * off), 4);
                assert_memory_equal(t4, twin, 3 * off); /* thread count changes no bit */
                run_adamw(&p, dev, off, g);
                if (t != 1 && t != STEPS) continue;
                const float *parts[2] = {twin, dev};
                for (int w = 0; w < 2; w++) {
                    const char *who = w ? "device" : "twin";
                    char what[64];
                    snprintf(what, sizeof what, "%s p, step %d", who, t);
                    assert_true(adamw_worst(what, parts[w], rp, n, ap, 1e-6) <= 1);
                    snprintf(what, sizeof what, "%s m, step %d", who, t);
                    assert_true(adamw_worst(what, (const float *)((const char *)parts[w] + off), rm, n, am, 5e-7) <= 1);
                    snprintf(what, sizeof what, "%s v, step %d", who, t);
                    assert_true(adamw_worst(what, (const float *)((const char *)parts[w] + 2 * off), rv, n, av, 5e-7) <=
                                1);
                }
            }
            free(dev), free(twin), free(t4), free(g), free(rp), free(rm), free(rv), free(ap), free(am), free(av);
        }
}

/* p = 1, g = 2, lr 0.1, weight decay 0.01, betas 0.9 / 0.999, eps 1e-8:
 * step 1: c1 = 10, c2 = 1/sqrt(0.001); m = 0.2, v = 0.004, m*c1 = 2,
 *   sqrt(v)*c2 = 2: p = 1 * 0.999 - 0.1 * 2 / (2 + 1e-8) = 0.899
 * step 2 (g = 2): m = 0.38, v = 0.007996, c1 = 1/0.19, c2 = 1/sqrt(0.001999):
 *   m*c1 = 2, sqrt(v)*c2 = 2: p = 0.899 * 0.999 - 0.1 = 0.798101 */
static void test_adamw_hand(void **state) {
    (void)state;
    size_t off = LGPU_REF_ALIGN;
    float *twin = oh_alloc(3 * off), *dev = oh_alloc(3 * off);
    memset(twin, 0, 3 * off);
    twin[0] = 1.0f;
    memcpy(dev, twin, 3 * off);
    const float g[1] = {2.0f};
    const float want[2][3] = {{0.899f, 0.2f, 0.004f}, {0.798101f, 0.38f, 0.007996f}};
    for (int t = 1; t <= 2; t++) {
        double c1 = 1.0 / (1.0 - pow(0.9, t)), c2 = 1.0 / sqrt(1.0 - pow(0.999, t));
        lgpu_adamw_params p = {1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, (float)c1, (float)c2, 1.0f, 0.1f, 0.001f};
        lgpu_ref_adamw(&p, twin, g, twin + off / 4, twin + 2 * off / 4, 1);
        run_adamw(&p, dev, off, g);
        float gt[3] = {twin[0], twin[off / 4], twin[2 * off / 4]}, gd[3] = {dev[0], dev[off / 4], dev[2 * off / 4]};
        /* the float betas (0.9f = 0.899999976) move these by ~1e-7 (with
         * 1.0f - 0.999f for one_minus_beta2, v would be 1.3e-5 off) */
        assert_int_equal(oh_compare("adamw twin", gt, want[t - 1], 3, 0, 1e-6), 0);
        assert_int_equal(oh_compare("adamw", gd, want[t - 1], 3, 0, 1e-6), 0);
    }
    free(twin), free(dev);
}

/* ================= sumsq ================= */

typedef struct {
    lgpu_buf *x, *out;
    const lgpu_sumsq_params *p;
} sumsq_ctx;

static void sumsq_reset(oh_case *c) { oh_poison(c->out, c->out_bytes); }

static int sumsq_record(oh_case *c, lgpu_exec *ex) {
    sumsq_ctx *r = c->ctx;
    return lgpu_op_sumsq(ex, r->p, oh_ref(r->x), oh_ref(r->out));
}

static void run_sumsq(const lgpu_sumsq_params *p, const float *x, float *got) {
    size_t nb = (p->n + (size_t)p->block - 1) / p->block;
    sumsq_ctx r = {oh_buf(x, (size_t)p->n * 4), oh_buf(NULL, nb * 4), p};
    oh_case c = {sumsq_reset, sumsq_record, r.out, nb * 4, &r};
    oh_run3(&c, got);
    lgpu_buf_destroy(r.x), lgpu_buf_destroy(r.out);
}

static void check_sumsq(bool nosg) {
    oh_force_no_subgroup(nosg);
    const uint32_t sizes[] = {1, 1000, 1024, 4097, 70001, (1u << 20) + 5};
    const uint32_t blocks[] = {1024, 4096, 1u << 20};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint32_t n = sizes[s];
        float *x = oh_alloc((size_t)n * 4);
        tu_rng rng;
        tu_rng_seed(&rng, 1200 + s);
        for (uint32_t i = 0; i < n; i++) x[i] = tu_rng_normal(&rng) * (i % 7 == 0 ? 100.0f : 0.01f);
        for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
            lgpu_sumsq_params p = {n, blocks[b]};
            size_t nb = (n + (size_t)p.block - 1) / p.block;
            float *want = oh_alloc(nb * 4), *got = oh_alloc(nb * 4), *t4 = oh_alloc(nb * 4), *ref = oh_alloc(nb * 4);
            for (size_t k = 0; k < nb; k++) { /* in double, here */
                double acc = 0;
                for (size_t i = k * p.block; i < n && i < (k + 1) * p.block; i++) acc += (double)x[i] * x[i];
                ref[k] = (float)acc;
            }
            lgpu_ref_sumsq(&p, x, want, 1);
            lgpu_ref_sumsq(&p, x, t4, 4);
            assert_memory_equal(want, ref, nb * 4); /* the same double sum, rounded once */
            assert_memory_equal(t4, want, nb * 4);  /* thread count changes no bit */
            run_sumsq(&p, x, got);
            char what[64];
            snprintf(what, sizeof what, "sumsq n %u block %u%s", n, p.block, nosg ? " nosg" : "");
            /* fp32 sums of positive terms: each invocation adds up to
             * block/WG (<= 4096) squares, then the workgroup reduction;
             * rounding errors of random sign: ~1e-6 relative (measured
             * <= 4e-7) */
            assert_int_equal(oh_compare(what, got, want, nb, 0, 5e-6), 0);
            free(want), free(got), free(t4), free(ref);
        }
        free(x);
    }
    oh_force_no_subgroup(false);
}

static void test_sumsq(void **state) {
    (void)state;
    check_sumsq(false);
    check_sumsq(true);
}

/* x[i] = i % 4: each full block of 1024 holds 256 x (0 + 1 + 4 + 9) = 3584;
 * n = 2049: out = {3584, 3584, 0} (x[2048] = 0); n = 2050: last block 1. */
static void test_sumsq_hand(void **state) {
    (void)state;
    float x[2050];
    for (int i = 0; i < 2050; i++) x[i] = (float)(i % 4);
    for (int nosg = 0; nosg < 2; nosg++) {
        oh_force_no_subgroup(nosg);
        float got[3], ref[3];
        lgpu_sumsq_params p = {2049, 1024};
        lgpu_ref_sumsq(&p, x, ref, 1);
        run_sumsq(&p, x, got);
        assert_int_equal(oh_compare("sumsq twin", ref, (const float[]){3584, 3584, 0}, 3, 0, 0), 0);
        assert_int_equal(oh_compare("sumsq", got, (const float[]){3584, 3584, 0}, 3, 0, 0), 0); /* exact */
        p.n = 2050;
        run_sumsq(&p, x, got);
        assert_int_equal(oh_compare("sumsq", got, (const float[]){3584, 3584, 1}, 3, 0, 0), 0);
    }
    oh_force_no_subgroup(false);
}

static void test_errors(void **state) {
    (void)state;
    lgpu_buf *b = oh_buf(NULL, 4096);
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    lgpu_sumsq_params sp = {100, 1000}; /* block not a multiple of 1024 */
    assert_int_equal(lgpu_op_sumsq(ex, &sp, oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "sumsq"));
    sp = (lgpu_sumsq_params){100, 2u << 20}; /* block > 2^20 */
    assert_int_equal(lgpu_op_sumsq(ex, &sp, oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    sp = (lgpu_sumsq_params){2000, 1024}; /* 8000 bytes of x */
    assert_int_equal(lgpu_op_sumsq(ex, &sp, oh_ref(b), oh_ref(b)), LGPU_ERANGE);
    lgpu_adamw_params ap = {100, 1e-3f, 0.9f, 1.0f, 1e-8f, 0, 1, 1, 1, 0.1f, 0.001f}; /* beta2 = 1 */
    assert_int_equal(lgpu_op_adamw(ex, &ap, oh_ref(b), oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "adamw"));
    ap = (lgpu_adamw_params){100, 1e-3f, 0.9f, 0.999f, 1e-8f, 0, 1, INFINITY, 1, 0.1f, 0.001f}; /* c2 */
    assert_int_equal(lgpu_op_adamw(ex, &ap, oh_ref(b), oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    ap = (lgpu_adamw_params){100, 1e-3f, 0.9f, 0.999f, 1e-8f, 0, 1, 1, 1}; /* one_minus_beta1/2 unset */
    assert_int_equal(lgpu_op_adamw(ex, &ap, oh_ref(b), oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "one_minus_beta"));
    ap = (lgpu_adamw_params){2000, 1e-3f, 0.9f, 0.999f, 1e-8f, 0, 1, 1, 1, 0.1f, 0.001f}; /* 8000 bytes */
    assert_int_equal(lgpu_op_adamw(ex, &ap, oh_ref(b), oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_ERANGE);
    ap.n = 0; /* nothing to do */
    TU_OK(lgpu_op_adamw(ex, &ap, oh_ref(b), oh_ref(b), oh_ref(b), oh_ref(b)));
    TU_OK(lgpu_exec_submit(ex));
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_hand), cmocka_unit_test(test_adamw_steps), cmocka_unit_test(test_sumsq_hand),
        cmocka_unit_test(test_sumsq),      cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, oh_setup, oh_teardown);
}
