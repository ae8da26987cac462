/* gemm (c = alpha op(A) op(B) (+ c), F32): the C twin against a double
 * triple loop, then the op on the selected device (lavapipe in CI) against
 * the same oracle and the twin. All four transpose combinations, alpha != 1,
 * accumulate on and off, padded strides (the gaps must stay untouched), odd
 * M, N, K (1, 7, 33, 129 ...), K = 0, LoRA-like shapes (rank 16 on either
 * side), a hand-computed case and the parameter errors. Each device case
 * runs 3 times and must be bit-identical; the twin gives the same bits at
 * 1, 3 and 4 threads and with its AVX2 or baseline kernel.
 *
 * Tolerance (stated as a bound, per element): both sides sum the K products
 * in float in increasing k, then scale by alpha and add c, so each differs
 * from the exact value by at most gamma * (|alpha| sum_k |a b| + |c0|) with
 * gamma = (K + 2) u, u = 2^-24 (recursive summation: K roundings, one for
 * alpha, one for the add; a fused multiply-add only removes roundings).
 * Checks use that bound exactly (the worst error is logged as a fraction of
 * it). Shader and twin run the same operation order, so they agree
 * bit for bit unless the device fuses multiply-adds; the count of equal
 * elements is logged. */
#include <math.h>

#include "ops_harness.h"
#include "ref/ref_matmul.h"

#define U 0x1p-24

static float opa(const lgpu_gemm_params *p, const float *a, uint32_t m, uint32_t k) {
    return p->trans_a ? a[(size_t)k * p->lda + m] : a[(size_t)m * p->lda + k];
}
static float opb(const lgpu_gemm_params *p, const float *b, uint32_t k, uint32_t n) {
    return p->trans_b ? b[(size_t)n * p->ldb + k] : b[(size_t)k * p->ldb + n];
}

/* The exact result in double (want) and each element's error bound. */
static void oracle(const lgpu_gemm_params *p, const float *a, const float *b, const float *c0, double *want,
                   double *bound) {
    for (uint32_t m = 0; m < p->M; m++)
        for (uint32_t n = 0; n < p->N; n++) {
            double s = 0, sa = 0;
            for (uint32_t k = 0; k < p->K; k++) {
                double t = (double)opa(p, a, m, k) * opb(p, b, k, n);
                s += t, sa += fabs(t);
            }
            size_t o = (size_t)m * p->ldc + n;
            double c = p->accumulate ? c0[o] : 0;
            want[o] = p->alpha * s + c;
            bound[o] = (p->K + 2) * U * (fabs(p->alpha) * sa + fabs(c));
        }
}

/* got within bound of want on every element of the M x N window; logs the
 * worst error as a fraction of its bound. */
static void check_bound(const char *what, const lgpu_gemm_params *p, const float *got, const double *want,
                        const double *bound) {
    double worst = 0, num = 0, den = 0;
    size_t bad = 0;
    for (uint32_t m = 0; m < p->M; m++)
        for (uint32_t n = 0; n < p->N; n++) {
            size_t o = (size_t)m * p->ldc + n;
            double d = fabs((double)got[o] - want[o]);
            num += d * d, den += want[o] * want[o];
            double f = bound[o] > 0 ? d / bound[o] : (d > 0 ? INFINITY : 0);
            if (f > worst) worst = f;
            if (f > 1 && bad++ < 5)
                print_error("%s: c[%u, %u] = %.9g, exact %.9g, error %.3g > bound %.3g\n", what, m, n, got[o],
                            want[o], d, bound[o]);
        }
    fprintf(stderr, "  %s: NMSE %.3g, worst error %.3g of its bound\n", what, den > 0 ? num / den : num, worst);
    if (bad) fail_msg("%s: %zu elements outside the bound", what, bad);
}

typedef struct {
    uint32_t M, N, K;
    uint32_t pad; /* added to each minimum stride */
    bool ta, tb, acc;
    float alpha;
} shape;

typedef struct {
    lgpu_buf *a, *b, *c;
    lgpu_gemm_params p;
    const float *c0;
    size_t cb;
} gcase;

static void g_reset(oh_case *c) {
    gcase *g = c->ctx;
    TU_OK(lgpu_buf_write(g->c, 0, g->c0, g->cb));
}

static int g_record(oh_case *c, lgpu_exec *ex) {
    gcase *g = c->ctx;
    return lgpu_op_gemm(ex, &g->p, oh_ref(g->a), oh_ref(g->b), oh_ref(g->c));
}

/* Twin (1 and 4 threads) and the op on the device, against the oracle. */
static void run_shape(const shape *s, uint64_t seed, bool device) {
    tu_rng r;
    tu_rng_seed(&r, seed);
    lgpu_gemm_params p = {s->M, s->N, s->K, 0, 0, 0, s->ta, s->tb, s->acc, s->alpha};
    p.lda = (s->ta ? s->M : s->K) + s->pad;
    p.ldb = (s->tb ? s->K : s->N) + s->pad;
    p.ldc = s->N + s->pad;
    size_t an = (size_t)(s->ta ? s->K : s->M) * p.lda, bn = (size_t)(s->tb ? s->N : s->K) * p.ldb;
    size_t cn = (size_t)s->M * p.ldc;
    float *a = oh_alloc(an * 4), *b = oh_alloc(bn * 4), *c0 = oh_alloc(cn * 4);
    float *twin = oh_alloc(cn * 4), *twin4 = oh_alloc(cn * 4), *got = oh_alloc(cn * 4);
    double *want = oh_alloc(cn * 8), *bound = oh_alloc(cn * 8);
    tu_fill_uniform(&r, a, an, -1, 1);
    tu_fill_uniform(&r, b, bn, -1, 1);
    tu_fill_uniform(&r, c0, cn, -1, 1);
    if (!s->acc) /* the output window poisoned: every element must be written */
        for (uint32_t m = 0; m < s->M; m++) memset(c0 + (size_t)m * p.ldc, 0xff, (size_t)s->N * 4);
    oracle(&p, a, b, c0, want, bound);

    char what[128];
    snprintf(what, sizeof what, "%ux%ux%u %c%c alpha %g%s%s", s->M, s->N, s->K, s->ta ? 'T' : 'N', s->tb ? 'T' : 'N',
             s->alpha, s->acc ? " acc" : "", s->pad ? " strided" : "");
    memcpy(twin, c0, cn * 4);
    memcpy(twin4, c0, cn * 4);
    lgpu_ref_gemm(&p, a, b, twin, 1);
    lgpu_ref_gemm(&p, a, b, twin4, 4);
    assert_memory_equal(twin, twin4, cn * 4); /* independent of the thread count */
    memcpy(twin4, c0, cn * 4);
    int isa = lgpu_ref_matmul_set_isa(LGPU_MM_ISA_PLAIN); /* and of the ISA (AVX2 or baseline kernel) */
    lgpu_ref_gemm(&p, a, b, twin4, 3);
    lgpu_ref_matmul_set_isa(isa);
    assert_memory_equal(twin, twin4, cn * 4);
    char tw[160];
    snprintf(tw, sizeof tw, "twin %s", what);
    check_bound(tw, &p, twin, want, bound);

    if (device) {
        gcase g = {oh_buf(a, an * 4), oh_buf(b, bn * 4), oh_buf(NULL, cn * 4), p, c0, cn * 4};
        oh_case oc = {g_reset, g_record, g.c, cn * 4, &g};
        oh_run3(&oc, got);
        /* stride gaps untouched */
        for (uint32_t m = 0; m < s->M; m++)
            assert_memory_equal(got + (size_t)m * p.ldc + s->N, c0 + (size_t)m * p.ldc + s->N, (size_t)s->pad * 4);
        check_bound(what, &p, got, want, bound);
        size_t same = 0;
        for (uint32_t m = 0; m < s->M; m++)
            for (uint32_t n = 0; n < s->N; n++) same += !memcmp(&got[(size_t)m * p.ldc + n], &twin[(size_t)m * p.ldc + n], 4);
        fprintf(stderr, "    bit-equal to the twin: %zu of %zu\n", same, (size_t)s->M * s->N);
        lgpu_buf_destroy(g.a), lgpu_buf_destroy(g.b), lgpu_buf_destroy(g.c);
    }
    free(a), free(b), free(c0), free(twin), free(twin4), free(got), free(want), free(bound);
}

/* The twin alone over a grid of odd sizes, all transposes, alpha and
 * accumulate; then the op on the device over a subset. */
static void test_gemm_twin(void **state) {
    (void)state;
    const uint32_t sz[] = {1, 7, 33, 129};
    const float alphas[] = {1.0f, -0.75f, 2.5f};
    uint64_t seed = 1;
    for (int t = 0; t < 4; t++)
        for (size_t i = 0; i < 4; i++)
            for (size_t j = 0; j < 4; j++)
                for (size_t l = 0; l < 4; l++, seed++) {
                    shape s = {sz[i], sz[j], sz[(l + i) % 4], (uint32_t)(seed % 3), t & 1, t >> 1, seed % 2,
                               alphas[(seed / 2) % 3]};
                    run_shape(&s, seed, false);
                }
}

static void test_gemm_device(void **state) {
    (void)state;
    const uint32_t sz[] = {1, 7, 33, 129};
    const float alphas[] = {1.0f, -0.75f, 2.5f};
    uint64_t seed = 500;
    for (int t = 0; t < 4; t++)
        for (size_t i = 0; i < 4; i++, seed++) {
            /* (M, N, K) walk the sizes so each transpose meets every size on each side */
            shape s = {sz[i], sz[(i + 1 + t) % 4], sz[(i + 2) % 4], (uint32_t)(seed % 3), t & 1, t >> 1, (i + t) % 2,
                       alphas[(i + t) % 3]};
            run_shape(&s, seed, true);
        }
    /* several k tiles with a partial last one, and tiles partly outside */
    const shape more[] = {
        {65, 70, 50, 0, false, false, true, 1.0f}, {70, 65, 37, 3, true, true, false, 0.5f},
        {17, 130, 100, 1, true, false, true, -1.0f}, {130, 17, 100, 2, false, true, false, 3.0f},
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) run_shape(&more[i], 600 + i, true);
}

/* LoRA's products (rank 16): x A^T (N = 16, trans_b), (x A^T) B^T (K = 16),
 * dA = dh^T x (M = 16, trans_a, long K), dB = dy^T h (trans_a), dx += dh A. */
static void test_gemm_lora(void **state) {
    (void)state;
    const shape s[] = {
        {300, 16, 520, 0, false, true, false, 1.0f},  {300, 520, 16, 0, false, true, true, 2.0f},
        {16, 520, 300, 0, true, false, false, 1.0f},  {520, 16, 300, 0, true, false, true, 1.0f},
        {300, 520, 16, 0, false, false, true, 1.0f},
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) run_shape(&s[i], 700 + i, true);
}

/* The GPU tile shapes (op_pick_tiles: 16 x 16 invocations, 1, 2 or 4
 * outputs each way, shrunk for thin sides and few tiles), forced on a CPU
 * device by clearing caps.cpu_shaders (white box), which otherwise always
 * gets 8 x 8 invocations of 4 x 4. */
static void test_gemm_gpu_tiles(void **state) {
    (void)state;
    if (lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU) {
        fprintf(stderr, "note: the host device has no tiles\n");
        return;
    }
    lgpu_dev_caps *caps = (lgpu_dev_caps *)lgpu_dev_caps_of(oh_dev);
    const bool saved = caps->cpu_shaders;
    caps->cpu_shaders = false;
    const shape s[] = {
        /* outputs per invocation (rows x columns) that lavapipe's 1024 invocations give */
        {8200, 16, 8, 0, false, true, false, 1.0f},  /* 4 x 1 */
        {16, 8200, 8, 0, true, false, true, 1.5f},   /* 1 x 4 */
        {640, 832, 4, 1, false, false, false, 1.0f}, /* 4 x 4 */
        {2100, 40, 8, 0, true, true, true, -1.0f},   /* 2 x 2 */
        {300, 260, 20, 0, false, false, false, 1.0f}, /* 1 x 2 */
        {200, 16, 70, 1, false, true, false, 1.0f},  /* 1 x 1 */
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) run_shape(&s[i], 900 + i, true);
    caps->cpu_shaders = saved;
}

/* K = 0: c = alpha * 0 (+ c), for both devices; the a and b refs are never read. */
static void test_gemm_k0(void **state) {
    (void)state;
    for (int acc = 0; acc < 2; acc++) {
        shape s = {9, 13, 0, 2, acc == 1, acc == 0, acc == 1, -2.0f};
        run_shape(&s, 800 + acc, true);
    }
    /* exact values: accumulate keeps c, else -2 * 0 = 0 */
    float c0[6] = {1, -2, 3.5f, 0, -0.0f, 7}, got[6];
    lgpu_buf *bc = oh_buf(c0, sizeof c0), *bx = oh_buf(NULL, 4);
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    for (int acc = 0; acc < 2; acc++) {
        lgpu_gemm_params p = {2, 3, 0, 0, 0, 0, 0, 0, (uint32_t)acc, -2.0f};
        TU_OK(lgpu_buf_write(bc, 0, c0, sizeof c0));
        TU_OK(lgpu_exec_begin(ex));
        TU_OK(lgpu_op_gemm(ex, &p, oh_ref(bx), oh_ref(bx), oh_ref(bc)));
        TU_OK(lgpu_exec_submit(ex));
        TU_OK(lgpu_buf_read(bc, 0, got, sizeof got));
        for (int i = 0; i < 6; i++) assert_true(got[i] == (acc ? c0[i] : 0.0f)); /* -0 == 0: signs are the device's */
    }
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(bc), lgpu_buf_destroy(bx);
}

/* By hand: A = [[1, 2, 3], [4, 5, 6]] (2 x 3), B = [[1, 0], [0, 1], [1, 1]]
 * (3 x 2): A B = [[4, 5], [10, 11]]; alpha 0.5 plus c = [[1, 1], [1, 1]]
 * gives [[3, 3.5], [6, 6.5]]. Then the same with A and B given transposed. */
static void test_gemm_hand(void **state) {
    (void)state;
    const float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1};
    const float at[6] = {1, 4, 2, 5, 3, 6}, bt[6] = {1, 0, 1, 0, 1, 1};
    const float want[4] = {3, 3.5f, 6, 6.5f}, ones[4] = {1, 1, 1, 1};
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = t >> 1;
        lgpu_buf *ba = oh_buf(ta ? at : a, 24), *bb = oh_buf(tb ? bt : b, 24), *bc = oh_buf(ones, 16);
        lgpu_gemm_params p = {2, 2, 3, 0, 0, 0, ta, tb, 1, 0.5f};
        lgpu_exec *ex;
        float got[4];
        TU_OK(lgpu_exec_create(oh_dev, &ex));
        TU_OK(lgpu_exec_begin(ex));
        TU_OK(lgpu_op_gemm(ex, &p, oh_ref(ba), oh_ref(bb), oh_ref(bc)));
        TU_OK(lgpu_exec_submit(ex));
        TU_OK(lgpu_buf_read(bc, 0, got, sizeof got));
        assert_memory_equal(got, want, sizeof want);
        float tw[4] = {1, 1, 1, 1};
        lgpu_ref_gemm(&p, ta ? at : a, tb ? bt : b, tw, 1);
        assert_memory_equal(tw, want, sizeof want);
        lgpu_exec_destroy(ex);
        lgpu_buf_destroy(ba), lgpu_buf_destroy(bb), lgpu_buf_destroy(bc);
    }
}

static void test_gemm_errors(void **state) {
    (void)state;
    lgpu_buf *b = oh_buf(NULL, 4096);
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    lgpu_gemm_params p = {4, 4, 8, 7, 4, 4, 0, 0, 0, 1.0f}; /* lda < K */
    assert_int_equal(lgpu_op_gemm(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    p = (lgpu_gemm_params){4, 4, 8, 8, 4, 4, 1, 0, 0, 1.0f}; /* fine: trans_a needs lda >= M */
    assert_int_equal(lgpu_op_gemm(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), 0);
    p = (lgpu_gemm_params){4, 4, 8, 8, 7, 4, 0, 1, 0, 1.0f}; /* trans_b: ldb < K */
    assert_int_equal(lgpu_op_gemm(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    p = (lgpu_gemm_params){4, 4, 8, 8, 4, 3, 0, 0, 0, 1.0f}; /* ldc < N */
    assert_int_equal(lgpu_op_gemm(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    p = (lgpu_gemm_params){40, 40, 40, 0, 0, 0, 0, 0, 0, 1.0f}; /* 6.4 KB operands in 4 KB */
    assert_int_equal(lgpu_op_gemm(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_ERANGE);
    p = (lgpu_gemm_params){0, 4, 8, 0, 0, 0, 0, 0, 0, 1.0f}; /* empty */
    assert_int_equal(lgpu_op_gemm(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), 0);
    TU_OK(lgpu_exec_submit(ex));
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_hand),   cmocka_unit_test(test_gemm_twin), cmocka_unit_test(test_gemm_device),
        cmocka_unit_test(test_gemm_lora),   cmocka_unit_test(test_gemm_gpu_tiles), cmocka_unit_test(test_gemm_k0),
        cmocka_unit_test(test_gemm_errors),
    };
    return cmocka_run_group_tests(tests, oh_setup, oh_teardown);
}
