/* lgpu-eval bench's statistics (eval/bench_stats.c): percentiles by linear
 * interpolation (numpy.percentile's default), summaries, and the relative
 * regression gate compares. Every expected value is worked out by hand in
 * the comment beside it. */
#include <math.h>

#include "bench_stats.h"
#include "test_util.h"

static void test_percentile_hand_computed(void **state) {
    const double v[] = {1, 2, 3, 4}; /* h = 3p/100 */
    assert_float_equal(bench_percentile(v, 4, 0), 1, 1e-12);
    assert_float_equal(bench_percentile(v, 4, 50), 2.5, 1e-12);  /* h 1.5: 2 + 0.5 (3 - 2) */
    assert_float_equal(bench_percentile(v, 4, 95), 3.85, 1e-12); /* h 2.85: 3 + 0.85 (4 - 3) */
    assert_float_equal(bench_percentile(v, 4, 99), 3.97, 1e-12); /* h 2.97 */
    assert_float_equal(bench_percentile(v, 4, 100), 4, 1e-12);
    const double w[] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110}; /* n 11: h = p/10 */
    assert_float_equal(bench_percentile(w, 11, 50), 60, 1e-12);
    assert_float_equal(bench_percentile(w, 11, 95), 105, 1e-12); /* h 9.5: 100 + 0.5 * 10 */
    assert_float_equal(bench_percentile(w, 11, 99), 109, 1e-12); /* h 9.9 */
    assert_float_equal(bench_percentile(w, 11, 25), 35, 1e-12);  /* h 2.5 */
}

static void test_percentile_edges(void **state) {
    const double one[] = {7};
    assert_float_equal(bench_percentile(one, 1, 50), 7, 0);
    assert_float_equal(bench_percentile(one, 1, 99), 7, 0);
    assert_true(isnan(bench_percentile(one, 0, 50)));
    const double same[] = {2, 2, 2};
    assert_float_equal(bench_percentile(same, 3, 95), 2, 0);
}

static void test_summarize_sorts(void **state) {
    double v[] = {0.5, 0.1, 0.4, 0.2, 0.3};
    bench_summary s = bench_summarize(v, 5);
    assert_int_equal(s.n, 5);
    assert_float_equal(v[0], 0.1, 0); /* sorted in place */
    assert_float_equal(s.min, 0.1, 1e-12);
    assert_float_equal(s.max, 0.5, 1e-12);
    assert_float_equal(s.mean, 0.3, 1e-12);
    assert_float_equal(s.p50, 0.3, 1e-12);
    assert_float_equal(s.p95, 0.48, 1e-12); /* h 3.8: 0.4 + 0.8 * 0.1 */
    assert_float_equal(s.p99, 0.496, 1e-12);
    bench_summary e = bench_summarize(v, 0);
    assert_int_equal(e.n, 0);
    assert_true(isnan(e.p50) && isnan(e.mean));
}

static void test_regression(void **state) {
    assert_float_equal(bench_regression(100, 85, 1), 0.15, 1e-12);  /* throughput fell 15% */
    assert_float_equal(bench_regression(100, 110, 1), -0.10, 1e-12); /* rose: negative */
    assert_float_equal(bench_regression(0.2, 0.25, 0), 0.25, 1e-12); /* latency grew 25% */
    assert_float_equal(bench_regression(0.2, 0.1, 0), -0.5, 1e-12);
    assert_true(isnan(bench_regression(0, 5, 1)));
    assert_true(isnan(bench_regression(10, NAN, 0)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentile_hand_computed),
        cmocka_unit_test(test_percentile_edges),
        cmocka_unit_test(test_summarize_sorts),
        cmocka_unit_test(test_regression),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
