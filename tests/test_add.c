/* lgpu_op_add on the selected device (LGPU_DEVICE; lavapipe in CI) against
 * its C twin: exact equality (one float add per element, no reassociation)
 * and bit-identical results over repeated runs. */
#include "ops_harness.h"

typedef struct {
    lgpu_add_params p;
    lgpu_ref a, b, y;
    size_t bytes;
} add_case;

static void add_reset(oh_case *c) {
    const add_case *k = c->ctx;
    TU_OK(lgpu_buf_fill_zero(k->y.buf, k->y.off, k->bytes));
}

static int add_record(oh_case *c, lgpu_exec *ex) {
    const add_case *k = c->ctx;
    return lgpu_op_add(ex, &k->p, k->a, k->b, k->y);
}

/* a, b, y each in their own buffer, or all three in one buffer at 256-aligned
 * offsets (y first: oh_run3 reads the output from offset 0). */
static void run_add(uint32_t n, bool shared, uint64_t seed) {
    size_t bytes = (size_t)n * 4, slot = (bytes + 255) / 256 * 256;
    float *a = oh_alloc(bytes), *b = oh_alloc(bytes), *want = oh_alloc(bytes), *got = oh_alloc(bytes);
    tu_rng r;
    tu_rng_seed(&r, seed);
    tu_fill_uniform(&r, a, n, -100.0f, 100.0f);
    tu_fill_uniform(&r, b, n, -1.0f, 1.0f);
    add_case k = {.p = {n}, .bytes = bytes};
    lgpu_ref_add(&k.p, a, b, want);

    lgpu_buf *ba = NULL, *bb = NULL, *by = NULL;
    if (shared) {
        by = oh_buf(NULL, 3 * slot);
        k.y = lgpu_ref_at(by, 0);
        k.a = lgpu_ref_at(by, slot);
        k.b = lgpu_ref_at(by, 2 * slot);
        TU_OK(lgpu_buf_write(by, slot, a, bytes));
        TU_OK(lgpu_buf_write(by, 2 * slot, b, bytes));
    } else {
        ba = oh_buf(a, bytes);
        bb = oh_buf(b, bytes);
        by = oh_buf(NULL, bytes);
        k.a = oh_ref(ba);
        k.b = oh_ref(bb);
        k.y = oh_ref(by);
    }
    oh_case c = {.reset = add_reset, .record = add_record, .out = by, .out_bytes = bytes, .ctx = &k};
    oh_run3(&c, got); /* later runs bit-identical to the first */
    /* exact: the shader does the same single IEEE add per element (tolerance 0) */
    assert_int_equal(tu_compare("add", got, want, n, 0, 0), 0);
    lgpu_buf_destroy(ba);
    lgpu_buf_destroy(bb);
    lgpu_buf_destroy(by);
    free(a);
    free(b);
    free(want);
    free(got);
}

static void test_add_small(void **state) {
    (void)state;
    const uint32_t sizes[] = {1, 255, 256, 257, 100003};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        run_add(sizes[i], false, 100 + i);
        run_add(sizes[i], true, 200 + i);
    }
}

/* More workgroups than 65535 (the grid goes 2D): 17M floats, 68 MB per operand. */
static void test_add_large(void **state) {
    (void)state;
    run_add(17u << 20, false, 7);
}

static void test_add_errors(void **state) {
    (void)state;
    lgpu_buf *b;
    TU_OK(lgpu_buf_create(oh_dev, 1024, 4, &b));
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    lgpu_add_params p = {200}; /* 800 bytes from offset 256 runs past the 1024-byte buffer */
    assert_int_equal(lgpu_op_add(ex, &p, lgpu_ref_at(b, 256), lgpu_ref_at(b, 0), lgpu_ref_at(b, 0)), LGPU_ERANGE);
    assert_non_null(strstr(lgpu_last_error(), "add"));
    p.n = 0; /* nothing to do */
    TU_OK(lgpu_op_add(ex, &p, lgpu_ref_at(b, 0), lgpu_ref_at(b, 0), lgpu_ref_at(b, 0)));
    TU_OK(lgpu_exec_submit(ex));
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_small),
        cmocka_unit_test(test_add_large),
        cmocka_unit_test(test_add_errors),
    };
    return cmocka_run_group_tests(tests, oh_setup, oh_teardown);
}
