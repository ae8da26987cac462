/* lgpu-eval bench: what one run measured, shared by the load generator
 * (loadgen.c) and its outputs (bench_report.c: text, JSON, report). */
#ifndef LGPU_EVAL_BENCH_H
#define LGPU_EVAL_BENCH_H

#include <jansson.h>
#include <stdbool.h>

#include "bench_stats.h"

#define BENCH_SCHEMA "lgpu-eval/bench/1"
#define BENCH_MAX_LEVELS 16

typedef struct bench_opts {
    const char *url, *prompt, *model, *api_key, *out_dir, *json_path;
    int levels[BENCH_MAX_LEVELS], n_levels; /* --concurrency 1,8,32 */
    int requests;                          /* per level; 0: max(8, 2 x concurrency) */
    int max_tokens;
    double monitor_every, timeout; /* seconds; monitor_every 0: no sampling */
    bool json_stdout, ignore_eos, quiet;
} bench_opts;

/* One sample of the server's /monitor/gpu. */
typedef struct bench_sample {
    double t; /* seconds since the run started */
    int level;
    double utilization;             /* busy fraction, NAN when not reported */
    double memory_used, memory_peak; /* bytes, NAN when not reported */
} bench_sample;

typedef struct bench_level {
    int concurrency, requests, failed;
    double wall_s;
    long generated_tokens;
    double requests_per_s, tokens_per_s;
    bench_summary ttft, itl, e2e; /* seconds */
    double *e2e_sorted;           /* for the latency CDF */
    size_t n_e2e;
} bench_level;

typedef struct bench_result {
    const bench_opts *o;
    bench_level levels[BENCH_MAX_LEVELS];
    int n_levels;
    bench_sample *samples;
    size_t n_samples, cap_samples;
    bool monitor_ok;
    char monitor_note[256]; /* why there are no samples */
    json_t *monitor_first;  /* the first /monitor/gpu answer: device, type, nvml */
    char server_device[256];
} bench_result;

json_t *bench_result_json(const bench_result *r);
void bench_print_text(const bench_result *r);
/* Markdown, HTML and JSON in dir/bench.*; 0 or -1 (message printed). */
int bench_write_report(const bench_result *r, const char *dir, json_t *json);

#endif
