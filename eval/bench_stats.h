/* Latency and throughput statistics of lgpu-eval bench (and what gate
 * compares). Percentiles interpolate linearly between the two nearest
 * ranks, as numpy.percentile's default ("linear"): for sorted v[0..n), the
 * p-th percentile sits at position h = (n - 1) p / 100, between v[floor h]
 * and v[floor h + 1]. */
#ifndef LGPU_EVAL_BENCH_STATS_H
#define LGPU_EVAL_BENCH_STATS_H

#include <stddef.h>

/* The p-th percentile (0..100) of sorted v[0..n); NAN when n == 0. */
double bench_percentile(const double *sorted, size_t n, double p);

typedef struct bench_summary {
    size_t n;
    double mean, min, max, p50, p95, p99; /* NAN when n == 0 */
} bench_summary;

/* Sorts v in place and summarises it. */
bench_summary bench_summarize(double *v, size_t n);

/* Figures of one bench level that gate compares: higher is better for
 * throughput, lower for latency. Returns the relative change of `current`
 * against `baseline` in the bad direction (0.12: 12% worse; negative:
 * better), NAN when the baseline is not positive. */
double bench_regression(double baseline, double current, int higher_is_better);

#endif
