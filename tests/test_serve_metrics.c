/* lgpu-serve metrics: Prometheus exposition (cumulative buckets, +Inf,
 * _sum/_count, labelled counters, gauges) and the JSON form. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static void expect_line(const char *text, const char *line) {
    char want[256];
    snprintf(want, sizeof want, "\n%s\n", line);
    if (!strstr(text, want)) {
        print_error("missing line '%s' in:\n%s\n", line, text);
        fail();
    }
}

static void test_render(void **state) {
    (void)state;
    srv_metrics *m;
    TU_OK(srv_metrics_create(&m));
    srv_metrics_observe(m, SRV_H_TTFT, 0.003);  /* <= 0.005 */
    srv_metrics_observe(m, SRV_H_TTFT, 0.3);    /* <= 0.5 */
    srv_metrics_observe(m, SRV_H_TTFT, 1000.0); /* only +Inf */
    srv_metrics_observe(m, SRV_H_ITL, 0.01);    /* exactly on a bound: le is inclusive */
    srv_metrics_request(m, SRV_REQ_OK);
    srv_metrics_request(m, SRV_REQ_OK);
    srv_metrics_request(m, SRV_REQ_CANCELLED);
    srv_metrics_tokens(m, 12, 34);
    assert_int_equal(srv_metrics_count(m, SRV_REQ_OK), 2);
    srv_gauges g = {.running = 3, .waiting = 1, .kv_usage = 0.25};
    char *t;
    TU_OK(srv_metrics_render(m, &g, &t));
    expect_line(t, "# TYPE lgpu_time_to_first_token_seconds histogram");
    expect_line(t, "lgpu_time_to_first_token_seconds_bucket{le=\"0.005\"} 1");
    expect_line(t, "lgpu_time_to_first_token_seconds_bucket{le=\"0.25\"} 1");
    expect_line(t, "lgpu_time_to_first_token_seconds_bucket{le=\"0.5\"} 2");
    expect_line(t, "lgpu_time_to_first_token_seconds_bucket{le=\"80\"} 2");
    expect_line(t, "lgpu_time_to_first_token_seconds_bucket{le=\"+Inf\"} 3");
    expect_line(t, "lgpu_time_to_first_token_seconds_count 3");
    expect_line(t, "lgpu_time_to_first_token_seconds_sum 1000.303");
    expect_line(t, "lgpu_inter_token_latency_seconds_bucket{le=\"0.01\"} 1");
    expect_line(t, "lgpu_e2e_request_latency_seconds_count 0");
    expect_line(t, "lgpu_queue_time_seconds_bucket{le=\"+Inf\"} 0");
    expect_line(t, "lgpu_requests_total{status=\"ok\"} 2");
    expect_line(t, "lgpu_requests_total{status=\"cancelled\"} 1");
    expect_line(t, "lgpu_requests_total{status=\"timeout\"} 0");
    expect_line(t, "lgpu_prompt_tokens_total 12");
    expect_line(t, "lgpu_generation_tokens_total 34");
    expect_line(t, "lgpu_requests_running 3");
    expect_line(t, "lgpu_requests_waiting 1");
    expect_line(t, "lgpu_kv_cache_usage_ratio 0.25");
    free(t);

    json_t *j = srv_metrics_json(m, &g);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "requests"), "cancelled")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "generation_tokens")), 34);
    assert_float_equal(json_real_value(json_object_get(j, "ttft_avg_s")), 1000.303 / 3, 1e-9);
    json_decref(j);
    srv_metrics_destroy(m);
    srv_metrics_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_render)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
