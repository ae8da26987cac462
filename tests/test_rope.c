/* RoPE: lgpu_rope_inv_freq (plain and LLaMA-3.1 "llama3" scaling) against
 * the formula, and lgpu_op_rope on the selected device against its C twin. */
#include <math.h>

#include "ops_harness.h"

/* inv_freq = theta^(-2i/d), computed here from the formula in double. */
static void test_inv_freq_plain(void **state) {
    (void)state;
    float f[64];
    lgpu_rope_inv_freq(10000.0f, 128, NULL, f);
    for (int i = 0; i < 64; i++) {
        double want = pow(10000.0, -2.0 * i / 128);
        assert_true(fabs(f[i] - want) <= 1e-7 * want); /* one float rounding */
    }
    lgpu_rope_scaling none = {0, 1, 4, 8192}; /* factor <= 0: no scaling */
    float g[64];
    lgpu_rope_inv_freq(10000.0f, 128, &none, g);
    assert_memory_equal(f, g, sizeof f);
}

/* LLaMA-3.1: factor 8, low 1, high 4, original context 8192, theta 500000,
 * head_dim 128, as transformers' _compute_llama3_parameters defines it. */
static void test_inv_freq_llama3(void **state) {
    (void)state;
    const double theta = 500000, factor = 8, low = 1, high = 4, orig = 8192, pi = 3.14159265358979323846;
    lgpu_rope_scaling sc = {8, 1, 4, 8192};
    float f[64];
    lgpu_rope_inv_freq((float)theta, 128, &sc, f);
    int n_keep = 0, n_scaled = 0, n_smooth = 0;
    for (int i = 0; i < 64; i++) {
        double base = pow(theta, -2.0 * i / 128), wavelen = 2 * pi / base, want;
        if (wavelen < orig / high) {
            want = base, n_keep++;
        } else if (wavelen > orig / low) {
            want = base / factor, n_scaled++;
        } else {
            double smooth = (orig / wavelen - low) / (high - low);
            want = (1 - smooth) * base / factor + smooth * base, n_smooth++;
        }
        if (!(fabs(f[i] - want) <= 2e-7 * want)) {
            print_error("inv_freq[%d] = %.9g, want %.9g\n", i, f[i], want);
            fail();
        }
    }
    /* all three bands are exercised */
    assert_true(n_keep > 0 && n_scaled > 0 && n_smooth > 0);
    /* spot values computed independently (Python, float64) */
    const struct { int i; double v; } spot[] = {
        {0, 1.0}, {1, 0.8146172338565447}, {20, 0.016560440080994446}, {30, 0.0013718935677611381},
        {40, 3.428102195952591e-05}, {63, 3.068925988914511e-07}};
    for (size_t k = 0; k < sizeof spot / sizeof spot[0]; k++)
        assert_true(fabs(f[spot[k].i] - spot[k].v) <= 2e-7 * spot[k].v);
}

typedef struct {
    lgpu_buf *x, *pos, *freq;
    const lgpu_rope_params *p;
    const float *xh;
    size_t xb;
} rope_ctx;

static void rope_reset(oh_case *c) {
    rope_ctx *r = c->ctx;
    TU_OK(lgpu_buf_write(r->x, 0, r->xh, r->xb)); /* in place: fresh input each run */
}

static int rope_record(oh_case *c, lgpu_exec *ex) {
    rope_ctx *r = c->ctx;
    return lgpu_op_rope(ex, r->p, oh_ref(r->x), oh_ref(r->pos), oh_ref(r->freq));
}

static void run_rope(const lgpu_rope_params *p, const float *x, size_t xn, const int32_t *pos, const float *freq,
                     float *got) {
    rope_ctx r = {oh_buf(x, xn * 4), oh_buf(pos, p->T * 4), oh_buf(freq, p->head_dim / 2 * 4), p, x, xn * 4};
    oh_case c = {rope_reset, rope_record, r.x, xn * 4, &r};
    oh_run3(&c, got);
    lgpu_buf_destroy(r.x);
    lgpu_buf_destroy(r.pos);
    lgpu_buf_destroy(r.freq);
}

/* Pair (1, 0) at position 1, theta 10000, head_dim 4: inv_freq = {1, 0.01}:
 * pair 0 -> (cos 1, sin 1), pair 1 -> (cos 0.01, sin 0.01). */
static void test_rope_hand(void **state) {
    (void)state;
    float freq[2];
    lgpu_rope_inv_freq(10000.0f, 4, NULL, freq);
    assert_true(freq[0] == 1.0f && fabsf(freq[1] - 0.01f) < 1e-9f);
    const float x[4] = {1, 0, 1, 0};
    const int32_t pos[1] = {1};
    const float want[4] = {0.540302306f, 0.841470985f, 0.99995f, 0.00999983333f};
    lgpu_rope_params p = {1, 1, 4, 4};
    float ref[4], got[4];
    memcpy(ref, x, sizeof x);
    lgpu_ref_rope(&p, ref, pos, freq);
    assert_int_equal(tu_compare("rope twin", ref, want, 4, 1e-7, 1e-6), 0);
    run_rope(&p, x, 4, pos, freq, got);
    assert_int_equal(oh_compare("rope", got, want, 4, 1e-6, 1e-6), 0);
}

static void test_rope_random(void **state) {
    (void)state;
    /* T, n_heads, head_dim, token_stride (> n_heads*head_dim: rows with gaps, which must stay untouched) */
    const lgpu_rope_params cases[] = {
        {1, 1, 2, 2}, {7, 3, 8, 24}, {31, 4, 64, 300}, {155, 2, 128, 256}, {3, 32, 128, 4096 + 64}, {64, 2, 64, 128}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const lgpu_rope_params *p = &cases[k];
        size_t xn = (size_t)p->T * p->token_stride;
        float *x = oh_alloc(xn * 4), *want = oh_alloc(xn * 4), *got = oh_alloc(xn * 4), *freq = oh_alloc(p->head_dim * 2);
        int32_t *pos = oh_alloc(p->T * 4);
        tu_rng rng;
        tu_rng_seed(&rng, 50 + k);
        tu_fill_uniform(&rng, x, xn, -2, 2);
        /* case 3: consecutive positions; case 5: positions up to 2^17 (angles up to 1.3e5 rad) */
        uint32_t max_pos = k == 5 ? 1u << 17 : 4096;
        for (uint32_t t = 0; t < p->T; t++) pos[t] = k == 3 ? (int32_t)t : (int32_t)(tu_rng_u32(&rng) % max_pos);
        lgpu_rope_scaling sc = {8, 1, 4, 8192};
        lgpu_rope_inv_freq(k % 2 ? 500000.0f : 10000.0f, p->head_dim, k % 2 ? &sc : NULL, freq);
        memcpy(want, x, xn * 4);
        lgpu_ref_rope(p, want, pos, freq);
        run_rope(p, x, xn, pos, freq, got);
        /* Same fp32 angle on both sides; the shader reduces it to [-pi, pi] in
         * fp32 and uses fp32 cos/sin, the twin cos/sin in double: a few 1e-7 */
        assert_int_equal(oh_compare("rope", got, want, xn, 2e-5, 2e-5), 0);
        OH_CHECK_NMSE("rope", got, want, xn, 1e-10);
        free(x), free(want), free(got), free(freq), free(pos);
    }
}

static void test_rope_errors(void **state) {
    (void)state;
    lgpu_buf *b = oh_buf(NULL, 4096);
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    lgpu_rope_params p = {2, 2, 7, 14}; /* odd head_dim */
    assert_int_equal(lgpu_op_rope(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    p = (lgpu_rope_params){2, 2, 8, 8}; /* tokens overlap */
    assert_int_equal(lgpu_op_rope(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    p = (lgpu_rope_params){100, 2, 8, 16}; /* 6.4 KB of x */
    assert_int_equal(lgpu_op_rope(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_ERANGE);
    TU_OK(lgpu_exec_submit(ex));
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inv_freq_plain), cmocka_unit_test(test_inv_freq_llama3),
        cmocka_unit_test(test_rope_hand),      cmocka_unit_test(test_rope_random),
        cmocka_unit_test(test_rope_errors),
    };
    return cmocka_run_group_tests(tests, oh_setup, oh_teardown);
}
