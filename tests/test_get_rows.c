/* Embedding gather on the selected device against its C twin, for every
 * embedding type (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K): random blocks,
 * out-of-range ids (zero rows), hand-made Q8_0/Q4_0 blocks, and a table
 * larger than the device's max binding (several segments, one dispatch each;
 * the binding limit is lowered for it, so this bites on any Vulkan device). */
#include <math.h>

#include "dev/device_impl.h"
#include "ops_harness.h"
#include "quant/quant.h"

typedef struct {
    lgpu_buf *e, *ids, *y;
    const lgpu_get_rows_params *p;
} gr_ctx;

static void gr_reset(oh_case *c) { oh_poison(c->out, c->out_bytes); }

static int gr_record(oh_case *c, lgpu_exec *ex) {
    gr_ctx *g = c->ctx;
    return lgpu_op_get_rows(ex, g->p, oh_ref(g->e), oh_ref(g->ids), oh_ref(g->y));
}

static void run_get_rows(const lgpu_get_rows_params *p, lgpu_buf *e, const int32_t *ids, float *got) {
    gr_ctx g = {e, oh_buf(ids, p->T * 4), oh_buf(NULL, (size_t)p->T * p->K * 4), p};
    oh_case c = {gr_reset, gr_record, g.y, (size_t)p->T * p->K * 4, &g};
    oh_run3(&c, got);
    lgpu_buf_destroy(g.ids);
    lgpu_buf_destroy(g.y);
}

/* Random bytes, with every block's f16 scale fields set to sane values. */
static void *random_table(int type, uint32_t n_rows, uint32_t K, tu_rng *r) {
    size_t rb = lgpu_type_row_bytes(type, K), n = (size_t)n_rows * rb;
    uint8_t *e = oh_alloc(n);
    if (type == LGPU_TYPE_F32 || type == LGPU_TYPE_F16 || type == LGPU_TYPE_BF16) {
        float *f = oh_alloc((size_t)n_rows * K * 4);
        tu_fill_uniform(r, f, (size_t)n_rows * K, -4, 4);
        for (uint32_t i = 0; i < n_rows; i++) TU_OK(lgpu_quantize_row(type, f + (size_t)i * K, e + i * rb, K));
        free(f);
        return e;
    }
    for (size_t i = 0; i < n; i++) e[i] = (uint8_t)tu_rng_u32(r);
    size_t bb = lgpu_type_block_bytes(type);
    for (size_t b = 0; b < n / bb; b++) {
        lgpu_f16 d = lgpu_f32_to_f16(tu_rng_uniform(r, -0.1f, 0.1f)), m = lgpu_f32_to_f16(tu_rng_uniform(r, 0, 0.1f));
        uint8_t *blk = e + b * bb;
        if (type == LGPU_TYPE_Q6_K) {
            memcpy(blk + 208, &d, 2);
        } else {
            memcpy(blk, &d, 2);
            if (type == LGPU_TYPE_Q4_K) memcpy(blk + 2, &m, 2); /* dmin */
        }
    }
    return e;
}

static void test_get_rows_types(void **state) {
    (void)state;
    const struct { int type; uint32_t K; double atol, rtol; } types[] = {
        /* F32/F16/BF16: a conversion, Q8_0/Q4_0: one multiply d*q on both sides: exact.
         * Q4_K/Q6_K: d*sc*q - dmin*m may contract to an fma in the shader: an ulp of
         * the product (values up to ~100 with random scales) */
        {LGPU_TYPE_F32, 31, 0, 0},         {LGPU_TYPE_F32, 4097, 0, 0},      {LGPU_TYPE_F16, 155, 0, 0},
        {LGPU_TYPE_BF16, 172, 0, 0},       {LGPU_TYPE_Q8_0, 160, 0, 0},      {LGPU_TYPE_Q4_0, 4096, 0, 0},
        {LGPU_TYPE_Q4_K, 512, 2e-5, 1e-6}, {LGPU_TYPE_Q6_K, 768, 2e-5, 1e-6},
    };
    const uint32_t n_rows = 37;
    const int32_t ids[] = {5, 0, 36, -1, 36, 37, 1000, 12, 5, INT32_MIN, 2};
    const uint32_t T = sizeof ids / sizeof ids[0];
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        tu_rng r;
        tu_rng_seed(&r, 60 + k);
        uint32_t K = types[k].K;
        void *e = random_table(types[k].type, n_rows, K, &r);
        lgpu_buf *be = oh_buf(e, n_rows * lgpu_type_row_bytes(types[k].type, K));
        lgpu_get_rows_params p = {T, K, n_rows, (uint32_t)types[k].type, 0};
        float *want = oh_alloc((size_t)T * K * 4), *got = oh_alloc((size_t)T * K * 4);
        lgpu_ref_get_rows(&p, e, ids, want);
        run_get_rows(&p, be, ids, got);
        if (oh_compare(lgpu_type_name(types[k].type), got, want, (size_t)T * K, types[k].atol, types[k].rtol)) fail();
        /* out-of-range ids (-1, 37, 1000, INT32_MIN) give zero rows */
        for (uint32_t t = 0; t < T; t++)
            if (ids[t] < 0 || ids[t] >= (int32_t)n_rows)
                for (uint32_t i = 0; i < K; i++) assert_true(got[(size_t)t * K + i] == 0.0f);
        lgpu_buf_destroy(be);
        free(e), free(want), free(got);
    }
}

/* Q8_0: d = 0.5, qs[i] = i - 16 -> (i - 16) / 2.
 * Q4_0: d = 2, byte i = i | (15 - i) << 4 -> element i < 16: (i - 8) * 2,
 *       element 16 + i: (15 - i - 8) * 2. */
static void test_get_rows_hand(void **state) {
    (void)state;
    lgpu_block_q8_0 q8 = {.d = lgpu_f32_to_f16(0.5f)};
    lgpu_block_q4_0 q4 = {.d = lgpu_f32_to_f16(2.0f)};
    float w8[32], w4[32], got[32];
    for (int i = 0; i < 32; i++) q8.qs[i] = (int8_t)(i - 16), w8[i] = (i - 16) * 0.5f;
    for (int i = 0; i < 16; i++) q4.qs[i] = (uint8_t)(i | (15 - i) << 4), w4[i] = (i - 8) * 2.0f, w4[16 + i] = (7 - i) * 2.0f;
    const int32_t id[1] = {0};
    lgpu_get_rows_params p = {1, 32, 1, LGPU_TYPE_Q8_0, 0};
    lgpu_buf *b = oh_buf(&q8, sizeof q8);
    run_get_rows(&p, b, id, got);
    assert_memory_equal(got, w8, sizeof w8);
    lgpu_buf_destroy(b);
    p.etype = LGPU_TYPE_Q4_0;
    b = oh_buf(&q4, sizeof q4);
    run_get_rows(&p, b, id, got);
    assert_memory_equal(got, w4, sizeof w4);
    lgpu_buf_destroy(b);
}

/* A table over several buffer segments, one dispatch each. The device's max
 * binding is lowered (white box, as in test_matmul) so a 4 MB table of 4 KB
 * rows splits on any Vulkan device, at row boundaries. Row r holds
 * r + i/4096 so every value names its row. */
static void test_get_rows_segments(void **state) {
    (void)state;
    if (lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU) {
        fprintf(stderr, "note: the host device has no segments\n");
        return;
    }
    const uint32_t K = 1024, n_rows = 1000;
    size_t rb = (size_t)K * 4, bytes = (size_t)n_rows * rb;
    lgpu_dev_caps *caps = (lgpu_dev_caps *)lgpu_dev_caps_of(oh_dev);
    const size_t saved = caps->max_binding;
    lgpu_buf *be;
    caps->max_binding = 1 << 20;
    int st = lgpu_buf_create(oh_dev, bytes, rb, &be);
    caps->max_binding = saved;
    TU_OK(st);
    assert_true(lgpu_buf_segments(be) >= 4);
    float *e = oh_alloc(bytes);
    for (uint32_t r = 0; r < n_rows; r++)
        for (uint32_t i = 0; i < K; i++) e[(size_t)r * K + i] = (float)r + (float)i / 4096.0f;
    TU_OK(lgpu_buf_write(be, 0, e, bytes));
    const int32_t ids[] = {999, 0, 4000, 500, 256, 255, -7, 1, 768, 767};
    const uint32_t T = sizeof ids / sizeof ids[0];
    lgpu_get_rows_params p = {T, K, n_rows, LGPU_TYPE_F32, 0};
    float *want = oh_alloc((size_t)T * K * 4), *got = oh_alloc((size_t)T * K * 4);
    lgpu_ref_get_rows(&p, e, ids, want);
    run_get_rows(&p, be, ids, got);
    assert_memory_equal(got, want, (size_t)T * K * 4);
    lgpu_buf_destroy(be);
    free(e), free(want), free(got);
}

static void test_get_rows_errors(void **state) {
    (void)state;
    lgpu_buf *b = oh_buf(NULL, 4096);
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    lgpu_get_rows_params p = {1, 48, 2, LGPU_TYPE_Q4_0, 0}; /* K not a multiple of 32 */
    assert_int_equal(lgpu_op_get_rows(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    p = (lgpu_get_rows_params){1, 64, 2, LGPU_TYPE_I32, 0};
    assert_int_equal(lgpu_op_get_rows(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EUNSUPPORTED);
    p = (lgpu_get_rows_params){1, 64, 100, LGPU_TYPE_F32, 0}; /* 25.6 KB table in 4 KB */
    assert_int_equal(lgpu_op_get_rows(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_ERANGE);
    TU_OK(lgpu_exec_submit(ex));
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_rows_hand),
        cmocka_unit_test(test_get_rows_types),
        cmocka_unit_test(test_get_rows_segments),
        cmocka_unit_test(test_get_rows_errors),
    };
    return cmocka_run_group_tests(tests, oh_setup, oh_teardown);
}
