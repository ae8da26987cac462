/* Status codes, error details and type tables. */
#include "test_util.h"

#include <string.h>

static void test_status_names(void **state) {
    (void)state;
    assert_string_equal(lgpu_err_name(LGPU_EINVAL), "LGPU_EINVAL");
    assert_string_equal(lgpu_strerror(LGPU_OK), "success");
    assert_string_equal(lgpu_strerror(-9999), "unknown error");
    assert_int_equal(lgpu_set_error(LGPU_EFORMAT, "file %s: bad magic", "x.gguf"), LGPU_EFORMAT);
    assert_string_equal(lgpu_last_error(), "file x.gguf: bad magic");
    lgpu_clear_error();
    assert_string_equal(lgpu_last_error(), "");
}

static void test_type_tables(void **state) {
    (void)state;
    assert_int_equal(lgpu_type_block_elems(LGPU_TYPE_Q4_0), 32);
    assert_int_equal(lgpu_type_block_bytes(LGPU_TYPE_Q4_0), 18);
    assert_int_equal(lgpu_type_block_bytes(LGPU_TYPE_Q8_0), 34);
    assert_int_equal(lgpu_type_block_bytes(LGPU_TYPE_Q4_K), 144);
    assert_int_equal(lgpu_type_block_bytes(LGPU_TYPE_Q6_K), 210);
    assert_int_equal(lgpu_type_row_bytes(LGPU_TYPE_F16, 7), 14);
    assert_int_equal(lgpu_type_row_bytes(LGPU_TYPE_Q4_0, 172), 0); /* not a multiple of 32 */
    assert_int_equal(lgpu_type_row_bytes(LGPU_TYPE_Q4_0, 64), 36);
    assert_int_equal(lgpu_type_from_name("Q8_0"), LGPU_TYPE_Q8_0);
    assert_int_equal(lgpu_type_from_name("nope"), -1);
    assert_string_equal(lgpu_type_name(LGPU_TYPE_BF16), "bf16");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_type_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
