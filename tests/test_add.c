/* lgpu_op_add on the selected device (LGPU_DEVICE; lavapipe in CI) against
 * its C twin: exact equality (one float add per element, no reassociation)
 * and bit-identical results over repeated runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "ref/ref_ops.h"
#include "test_util.h"

static lgpu_dev *dev;

static int setup(void **state) {
    (void)state;
    int st = lgpu_dev_open(NULL, &dev);
    if (st) fprintf(stderr, "lgpu_dev_open: %s\n", lgpu_last_error());
    return st;
}

static int teardown(void **state) {
    (void)state;
    lgpu_dev_close(dev);
    return 0;
}

/* a, b, y each in their own buffer, or all three in one buffer at 256-aligned offsets. */
static void run_add(uint32_t n, bool shared, uint64_t seed) {
    size_t bytes = (size_t)n * 4, slot = (bytes + 255) / 256 * 256;
    float *a = malloc(bytes), *b = malloc(bytes), *want = malloc(bytes), *got = malloc(bytes), *first = malloc(bytes);
    assert_non_null(a && b && want && got && first);
    tu_rng r;
    tu_rng_seed(&r, seed);
    tu_fill_uniform(&r, a, n, -100.0f, 100.0f);
    tu_fill_uniform(&r, b, n, -1.0f, 1.0f);
    lgpu_add_params p = {n};
    lgpu_ref_add(&p, a, b, want);

    lgpu_buf *ba = NULL, *bb = NULL, *by = NULL;
    lgpu_ref ra, rb, ry;
    if (shared) {
        TU_OK(lgpu_buf_create(dev, 3 * slot, 4, &ba));
        ra = lgpu_ref_at(ba, 0);
        rb = lgpu_ref_at(ba, slot);
        ry = lgpu_ref_at(ba, 2 * slot);
    } else {
        TU_OK(lgpu_buf_create(dev, bytes, 4, &ba));
        TU_OK(lgpu_buf_create(dev, bytes, 4, &bb));
        TU_OK(lgpu_buf_create(dev, bytes, 4, &by));
        ra = lgpu_ref_at(ba, 0);
        rb = lgpu_ref_at(bb, 0);
        ry = lgpu_ref_at(by, 0);
    }
    TU_OK(lgpu_buf_write(ra.buf, ra.off, a, bytes));
    TU_OK(lgpu_buf_write(rb.buf, rb.off, b, bytes));
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(dev, &ex));
    for (int rep = 0; rep < 3; rep++) {
        TU_OK(lgpu_buf_fill_zero(ry.buf, ry.off, bytes));
        TU_OK(lgpu_exec_begin(ex));
        TU_OK(lgpu_op_add(ex, &p, ra, rb, ry));
        TU_OK(lgpu_exec_submit(ex));
        TU_OK(lgpu_buf_read(ry.buf, ry.off, got, bytes));
        if (rep == 0) {
            /* exact: the shader does the same single IEEE add per element (tolerance 0) */
            assert_int_equal(tu_compare("add", got, want, n, 0, 0), 0);
            memcpy(first, got, bytes);
        } else {
            assert_memory_equal(got, first, bytes); /* bit-identical across runs */
        }
    }
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(ba);
    lgpu_buf_destroy(bb);
    lgpu_buf_destroy(by);
    free(a);
    free(b);
    free(want);
    free(got);
    free(first);
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
    TU_OK(lgpu_buf_create(dev, 1024, 4, &b));
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(dev, &ex));
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
    return cmocka_run_group_tests(tests, setup, teardown);
}
