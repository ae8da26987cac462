#include "bench_stats.h"

#include <math.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_percentile(const double *sorted, size_t n, double p) {
    if (!n) return NAN;
    if (p <= 0) return sorted[0];
    if (p >= 100) return sorted[n - 1];
    double h = (double)(n - 1) * p / 100.0;
    size_t lo = (size_t)h;
    if (lo + 1 >= n) return sorted[n - 1];
    return sorted[lo] + (h - (double)lo) * (sorted[lo + 1] - sorted[lo]);
}

bench_summary bench_summarize(double *v, size_t n) {
    bench_summary s = {.n = n, .mean = NAN, .min = NAN, .max = NAN, .p50 = NAN, .p95 = NAN, .p99 = NAN};
    if (!n) return s;
    qsort(v, n, sizeof *v, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += v[i];
    s.mean = sum / (double)n;
    s.min = v[0];
    s.max = v[n - 1];
    s.p50 = bench_percentile(v, n, 50);
    s.p95 = bench_percentile(v, n, 95);
    s.p99 = bench_percentile(v, n, 99);
    return s;
}

double bench_regression(double baseline, double current, int higher_is_better) {
    if (!(baseline > 0) || isnan(current)) return NAN;
    return higher_is_better ? (baseline - current) / baseline : (current - baseline) / baseline;
}
