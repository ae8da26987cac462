/* Row and pointwise ops on the selected device against their C twins:
 * rmsnorm, softmax, argmax, swiglu, scale. Shapes include sizes that are not
 * multiples of any workgroup size (31, 155, 172, 4097); every case runs 3
 * times and must be bit-identical; the reductions are checked in both their
 * subgroup and shared-memory builds. */
#include <math.h>

#include "ops_harness.h"

/* ---- one generic "row op" case: x (M, N) -> out ---- */
typedef struct {
    lgpu_buf *x, *w, *y;
    uint32_t M, N;
    const void *params;
    int op; /* 0 rmsnorm, 1 softmax, 2 softmax in place, 3 argmax */
    const float *xh;
} row_ctx;

static void row_reset(oh_case *c) {
    row_ctx *r = c->ctx;
    if (r->op == 2) TU_OK(lgpu_buf_write(r->x, 0, r->xh, (size_t)r->M * r->N * 4)); /* in place: fresh input */
    else oh_poison(c->out, c->out_bytes);
}

static int row_record(oh_case *c, lgpu_exec *ex) {
    row_ctx *r = c->ctx;
    switch (r->op) {
    case 0: return lgpu_op_rmsnorm(ex, r->params, oh_ref(r->x), oh_ref(r->w), oh_ref(r->y));
    case 1: return lgpu_op_softmax(ex, r->params, oh_ref(r->x), oh_ref(r->y));
    case 2: return lgpu_op_softmax(ex, r->params, oh_ref(r->x), oh_ref(r->x));
    default: return lgpu_op_argmax(ex, r->params, oh_ref(r->x), oh_ref(r->y));
    }
}

/* Runs a row op on the device; `got` gets the output (M*N floats or M ints). */
static void run_row(int op, const void *params, uint32_t M, uint32_t N, const float *x, const float *w, void *got) {
    size_t xb = (size_t)M * N * 4, ob = op == 3 ? (size_t)M * 4 : xb;
    row_ctx r = {oh_buf(x, xb), w ? oh_buf(w, (size_t)N * 4) : NULL, op == 2 ? NULL : oh_buf(NULL, ob), M, N, params, op,
                 x};
    oh_case c = {row_reset, row_record, op == 2 ? r.x : r.y, ob, &r};
    oh_run3(&c, got);
    lgpu_buf_destroy(r.x);
    lgpu_buf_destroy(r.w);
    lgpu_buf_destroy(r.y);
}

/* {9, 2048}: enough rows and elements for the host path to split rows over threads */
static const uint32_t shapes[][2] = {{1, 1}, {3, 31}, {2, 155}, {5, 172}, {2, 4097}, {64, 64}, {1, 32000}, {9, 2048}};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

static void check_rmsnorm(bool nosg) {
    oh_force_no_subgroup(nosg);
    for (size_t s = 0; s < N_SHAPES; s++) {
        uint32_t M = shapes[s][0], N = shapes[s][1];
        size_t n = (size_t)M * N;
        float *x = oh_alloc(n * 4), *w = oh_alloc(N * 4), *want = oh_alloc(n * 4), *got = oh_alloc(n * 4);
        tu_rng rng;
        tu_rng_seed(&rng, 10 + s);
        tu_fill_uniform(&rng, x, n, -3, 3);
        tu_fill_uniform(&rng, w, N, 0.5f, 1.5f);
        lgpu_rmsnorm_params p = {M, N, 1e-5f};
        lgpu_ref_rmsnorm(&p, x, w, want, 1);
        run_row(0, &p, M, N, x, w, got);
        /* fp32 sum of squares + 1/sqrt in the shader vs double twin: a few ulp */
        assert_int_equal(oh_compare("rmsnorm", got, want, n, 1e-6, 2e-6), 0);
        OH_CHECK_NMSE("rmsnorm", got, want, n, 1e-11);
        free(x), free(w), free(want), free(got);
    }
    oh_force_no_subgroup(false);
}

static void test_rmsnorm(void **state) {
    (void)state;
    check_rmsnorm(false);
    check_rmsnorm(true);
}

/* rmsnorm of [1, 2, 3, 4]: mean square 7.5, so y = x / sqrt(7.5 + eps) * w */
static void test_rmsnorm_hand(void **state) {
    (void)state;
    const float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 2, 0.5f};
    const float want[4] = {0.365148372f, 0.730296743f, 2.19089023f, 0.730296743f}; /* eps 0 */
    lgpu_rmsnorm_params p = {1, 4, 0.0f};
    float got[4], ref[4];
    lgpu_ref_rmsnorm(&p, x, w, ref, 1);
    assert_int_equal(tu_compare("rmsnorm twin", ref, want, 4, 0, 1e-7), 0);
    run_row(0, &p, 1, 4, x, w, got);
    assert_int_equal(oh_compare("rmsnorm", got, want, 4, 0, 1e-6), 0);
}

static void check_softmax(bool nosg) {
    oh_force_no_subgroup(nosg);
    for (size_t s = 0; s < N_SHAPES; s++) {
        uint32_t M = shapes[s][0], N = shapes[s][1];
        size_t n = (size_t)M * N;
        float *x = oh_alloc(n * 4), *want = oh_alloc(n * 4), *got = oh_alloc(n * 4);
        tu_rng rng;
        tu_rng_seed(&rng, 20 + s);
        tu_fill_uniform(&rng, x, n, -10, 10);
        if (n > 7) x[7] = -INFINITY; /* masked entries give exactly 0 */
        for (int inplace = 0; inplace < 2; inplace++) {
            lgpu_softmax_params p = {M, N, inplace ? 0.125f : 1.0f};
            lgpu_ref_softmax(&p, x, want);
            run_row(inplace ? 2 : 1, &p, M, N, x, NULL, got);
            /* fp32 exp (GLSL: 3 + 2|x| ulp) and fp32 sums vs double twin */
            assert_int_equal(oh_compare("softmax", got, want, n, 1e-9, 2e-5), 0);
            OH_CHECK_NMSE("softmax", got, want, n, 1e-10);
            if (n > 7) assert_true(got[7] == 0.0f);
        }
        free(x), free(want), free(got);
    }
    oh_force_no_subgroup(false);
}

static void test_softmax(void **state) {
    (void)state;
    check_softmax(false);
    check_softmax(true);
}

/* softmax([0, ln 3]) = [1/4, 3/4]; scale 2: [1/10, 9/10] */
static void test_softmax_hand(void **state) {
    (void)state;
    const float x[2] = {0.0f, 1.0986122887f};
    float got[2];
    lgpu_softmax_params p = {1, 2, 1.0f};
    run_row(1, &p, 1, 2, x, NULL, got);
    assert_int_equal(oh_compare("softmax", got, (const float[]){0.25f, 0.75f}, 2, 0, 1e-6), 0);
    p.scale = 2.0f;
    run_row(1, &p, 1, 2, x, NULL, got);
    assert_int_equal(oh_compare("softmax scale 2", got, (const float[]){0.1f, 0.9f}, 2, 0, 1e-6), 0);
}

static void check_argmax(bool nosg) {
    oh_force_no_subgroup(nosg);
    for (size_t s = 0; s < N_SHAPES; s++) {
        uint32_t M = shapes[s][0], N = shapes[s][1];
        size_t n = (size_t)M * N;
        float *x = oh_alloc(n * 4);
        int32_t *want = oh_alloc(M * 4), *got = oh_alloc(M * 4);
        tu_rng rng;
        tu_rng_seed(&rng, 30 + s);
        for (size_t i = 0; i < n; i++) x[i] = (float)(tu_rng_u32(&rng) % 50); /* many ties */
        lgpu_argmax_params p = {M, N};
        lgpu_ref_argmax(&p, x, want);
        run_row(3, &p, M, N, x, NULL, got);
        assert_memory_equal(got, want, M * 4); /* exact */
        free(x), free(want), free(got);
    }
    oh_force_no_subgroup(false);
}

static void test_argmax(void **state) {
    (void)state;
    check_argmax(false);
    check_argmax(true);
}

/* Ties go to the smallest index; NaNs are skipped; -inf rows give 0. */
static void test_argmax_hand(void **state) {
    (void)state;
    for (int nosg = 0; nosg < 2; nosg++) {
        oh_force_no_subgroup(nosg);
        enum { N = 300 };
        static float x[5 * N];
        for (int i = 0; i < 5 * N; i++) x[i] = -1.0f;
        x[0 * N + 1] = 3, x[0 * N + 2] = 3, x[0 * N + 299] = 3; /* tie: 1 */
        x[1 * N + 299] = 7, x[1 * N + 150] = NAN;                /* last element: 299 */
        for (int i = 0; i < N; i++) x[2 * N + i] = -INFINITY;    /* all -inf: 0 */
        for (int i = 0; i < N; i++) x[3 * N + i] = NAN;          /* all NaN: 0 */
        x[3 * N + 200] = -5;                                     /* ... but one number: 200 */
        x[4 * N + 0] = NAN, x[4 * N + 17] = INFINITY, x[4 * N + 18] = INFINITY; /* 17 */
        const int32_t want[5] = {1, 299, 0, 200, 17};
        int32_t got[5], ref[5];
        lgpu_argmax_params p = {5, N};
        lgpu_ref_argmax(&p, x, ref);
        assert_memory_equal(ref, want, sizeof want);
        run_row(3, &p, 5, N, x, NULL, got);
        assert_memory_equal(got, want, sizeof want);
    }
    oh_force_no_subgroup(false);
}

/* ---- pointwise: swiglu, scale ---- */
typedef struct {
    lgpu_buf *a, *b, *y;
    const void *params;
    bool swiglu;
} pw_ctx;

static void pw_reset(oh_case *c) { oh_poison(c->out, c->out_bytes); }

static int pw_record(oh_case *c, lgpu_exec *ex) {
    pw_ctx *r = c->ctx;
    if (r->swiglu) return lgpu_op_swiglu(ex, r->params, oh_ref(r->a), oh_ref(r->b), oh_ref(r->y));
    return lgpu_op_scale(ex, r->params, oh_ref(r->a), oh_ref(r->y));
}

static void run_pw(bool swiglu, const void *params, uint32_t n, const float *a, const float *b, float *got) {
    pw_ctx r = {oh_buf(a, (size_t)n * 4), swiglu ? oh_buf(b, (size_t)n * 4) : NULL, oh_buf(NULL, (size_t)n * 4), params,
                swiglu};
    oh_case c = {pw_reset, pw_record, r.y, (size_t)n * 4, &r};
    oh_run3(&c, got);
    lgpu_buf_destroy(r.a);
    lgpu_buf_destroy(r.b);
    lgpu_buf_destroy(r.y);
}

static void test_pointwise(void **state) {
    (void)state;
    const uint32_t sizes[] = {1, 31, 155, 172, 4097, 70001};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint32_t n = sizes[s];
        float *g = oh_alloc(n * 4), *u = oh_alloc(n * 4), *want = oh_alloc(n * 4), *got = oh_alloc(n * 4);
        tu_rng rng;
        tu_rng_seed(&rng, 40 + s);
        tu_fill_uniform(&rng, g, n, -12, 12);
        tu_fill_uniform(&rng, u, n, -2, 2);
        lgpu_swiglu_params sp = {n};
        lgpu_ref_swiglu(&sp, g, u, want, 1);
        run_pw(true, &sp, n, g, u, got);
        /* the shader's fp32 exp vs libm expf in the twin (70001: split over threads on the host) */
        assert_int_equal(oh_compare("swiglu", got, want, n, 1e-7, 4e-6), 0);
        lgpu_scale_params cp = {n, -0.3f};
        lgpu_ref_scale(&cp, g, want);
        run_pw(false, &cp, n, g, NULL, got);
        assert_int_equal(oh_compare("scale", got, want, n, 0, 0), 0); /* one fp32 multiply: exact */
        free(g), free(u), free(want), free(got);
    }
}

/* silu(1) * 2 = 2 / (1 + e^-1) = 1.46211716; silu(-2) * 1 = -0.238405844; silu(0) = 0 */
static void test_pointwise_hand(void **state) {
    (void)state;
    const float g[3] = {1, -2, 0}, u[3] = {2, 1, 5}, want[3] = {1.46211716f, -0.238405844f, 0};
    float got[3];
    lgpu_swiglu_params sp = {3};
    run_pw(true, &sp, 3, g, u, got);
    assert_int_equal(oh_compare("swiglu", got, want, 3, 0, 1e-6), 0);
    lgpu_scale_params cp = {3, 0.5f};
    run_pw(false, &cp, 3, g, NULL, got);
    assert_int_equal(oh_compare("scale", got, (const float[]){0.5f, -1, 0}, 3, 0, 0), 0);
}

/* More rows than maxComputeWorkGroupCount[0] (65535 on lavapipe): the
 * row ops go to a 2D grid of workgroups. */
static void test_many_rows(void **state) {
    (void)state;
    const uint32_t M = 70001, N = 5;
    size_t n = (size_t)M * N;
    float *x = oh_alloc(n * 4), *w = oh_alloc(N * 4), *want = oh_alloc(n * 4), *got = oh_alloc(n * 4);
    int32_t *iw = oh_alloc(M * 4), *ig = oh_alloc(M * 4);
    tu_rng rng;
    tu_rng_seed(&rng, 70);
    tu_fill_uniform(&rng, x, n, -3, 3);
    tu_fill_uniform(&rng, w, N, 0.5f, 1.5f);
    lgpu_rmsnorm_params rp = {M, N, 1e-5f};
    lgpu_ref_rmsnorm(&rp, x, w, want, 1);
    run_row(0, &rp, M, N, x, w, got);
    assert_int_equal(oh_compare("rmsnorm 2D grid", got, want, n, 1e-6, 2e-6), 0); /* as in test_rmsnorm */
    lgpu_softmax_params sp = {M, N, 1.0f};
    lgpu_ref_softmax(&sp, x, want);
    run_row(1, &sp, M, N, x, NULL, got);
    assert_int_equal(oh_compare("softmax 2D grid", got, want, n, 1e-9, 2e-5), 0); /* as in test_softmax */
    lgpu_argmax_params ap = {M, N};
    lgpu_ref_argmax(&ap, x, iw);
    run_row(3, &ap, M, N, x, NULL, ig);
    assert_memory_equal(ig, iw, M * 4);
    free(x), free(w), free(want), free(got), free(iw), free(ig);
}

static void test_errors(void **state) {
    (void)state;
    lgpu_buf *b = oh_buf(NULL, 1024);
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    lgpu_rmsnorm_params rp = {2, 200, 1e-5f}; /* 1600 bytes > 1024 */
    assert_int_equal(lgpu_op_rmsnorm(ex, &rp, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_ERANGE);
    assert_non_null(strstr(lgpu_last_error(), "rmsnorm"));
    lgpu_softmax_params sp = {1, 0, 1};
    assert_int_equal(lgpu_op_softmax(ex, &sp, oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    lgpu_argmax_params ap = {1, 16};
    assert_int_equal(lgpu_op_argmax(ex, &ap, lgpu_ref_at(b, 4), oh_ref(b)), LGPU_EINVAL); /* unaligned */
    assert_int_equal(lgpu_op_argmax(NULL, &ap, oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    lgpu_scale_params cp = {0, 1}; /* nothing to do */
    TU_OK(lgpu_op_scale(ex, &cp, oh_ref(b), oh_ref(b)));
    TU_OK(lgpu_exec_submit(ex));
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm_hand), cmocka_unit_test(test_rmsnorm),   cmocka_unit_test(test_softmax_hand),
        cmocka_unit_test(test_softmax),      cmocka_unit_test(test_argmax_hand), cmocka_unit_test(test_argmax),
        cmocka_unit_test(test_pointwise_hand), cmocka_unit_test(test_pointwise), cmocka_unit_test(test_many_rows),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, oh_setup, oh_teardown);
}
