/* lgpu-eval bench's outputs: the text summary, the JSON (schema
 * lgpu-eval/bench/1, docs/EVALUATION.md) and the report (Markdown, HTML with
 * charts, JSON) through report.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"
#include "report.h"

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *summary_json(const bench_summary *s) {
    json_t *j = json_object();
    json_object_set_new(j, "n", json_integer((json_int_t)s->n));
    json_object_set_new(j, "mean", num_or_null(s->mean));
    json_object_set_new(j, "min", num_or_null(s->min));
    json_object_set_new(j, "max", num_or_null(s->max));
    json_object_set_new(j, "p50", num_or_null(s->p50));
    json_object_set_new(j, "p95", num_or_null(s->p95));
    json_object_set_new(j, "p99", num_or_null(s->p99));
    return j;
}

json_t *bench_result_json(const bench_result *r) {
    const bench_opts *o = r->o;
    json_t *j = json_object(), *set = json_object(), *levels = json_array(), *mon = json_object();
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    json_object_set_new(j, "schema", json_string(BENCH_SCHEMA));
    json_object_set_new(j, "date", json_string(when));
    json_object_set_new(j, "url", json_string(o->url));
    json_object_set_new(set, "model", o->model ? json_string(o->model) : json_null());
    json_object_set_new(set, "prompt", json_string(o->prompt));
    json_object_set_new(set, "max_tokens", json_integer(o->max_tokens));
    json_object_set_new(set, "ignore_eos", json_boolean(o->ignore_eos));
    json_object_set_new(set, "requests_per_level", o->requests ? json_integer(o->requests) : json_null());
    json_object_set_new(j, "settings", set);
    for (int i = 0; i < r->n_levels; i++) {
        const bench_level *lv = &r->levels[i];
        json_t *l = json_object();
        json_object_set_new(l, "concurrency", json_integer(lv->concurrency));
        json_object_set_new(l, "requests", json_integer(lv->requests));
        json_object_set_new(l, "failed", json_integer(lv->failed));
        json_object_set_new(l, "wall_s", json_real(lv->wall_s));
        json_object_set_new(l, "generated_tokens", json_integer(lv->generated_tokens));
        json_object_set_new(l, "requests_per_s", json_real(lv->requests_per_s));
        json_object_set_new(l, "tokens_per_s", json_real(lv->tokens_per_s));
        json_object_set_new(l, "ttft_s", summary_json(&lv->ttft));
        json_object_set_new(l, "itl_s", summary_json(&lv->itl));
        json_object_set_new(l, "e2e_s", summary_json(&lv->e2e));
        json_array_append_new(levels, l);
    }
    json_object_set_new(j, "levels", levels);
    json_object_set_new(mon, "available", json_boolean(r->n_samples > 0));
    json_object_set_new(mon, "note", r->n_samples ? json_null() : json_string(r->monitor_note));
    json_object_set_new(mon, "interval_s", json_real(o->monitor_every));
    json_object_set_new(mon, "server", r->monitor_first ? json_deep_copy(r->monitor_first) : json_null());
    json_t *samples = json_array();
    for (size_t i = 0; i < r->n_samples; i++) {
        const bench_sample *s = &r->samples[i];
        json_array_append_new(samples, json_pack("{s:f, s:i, s:o, s:o, s:o}", "t", s->t, "concurrency", s->level,
                                                 "utilization", num_or_null(s->utilization), "memory_used_bytes",
                                                 num_or_null(s->memory_used), "memory_peak_bytes",
                                                 num_or_null(s->memory_peak)));
    }
    json_object_set_new(mon, "samples", samples);
    json_object_set_new(j, "monitor", mon);
    return j;
}

static double ms(double s) { return s * 1e3; }

void bench_print_text(const bench_result *r) {
    printf("url %s, %d tokens per request\n", r->o->url, r->o->max_tokens);
    if (r->server_device[0]) printf("server device: %s\n", r->server_device);
    printf("%5s %5s %6s %8s %9s  %-22s  %-22s  %-22s\n", "conc", "reqs", "failed", "req/s", "tokens/s",
           "TTFT p50/p95/p99 ms", "ITL p50/p95/p99 ms", "E2E p50/p95/p99 s");
    for (int i = 0; i < r->n_levels; i++) {
        const bench_level *l = &r->levels[i];
        char a[40], b[40], c[40];
        snprintf(a, sizeof a, "%.1f/%.1f/%.1f", ms(l->ttft.p50), ms(l->ttft.p95), ms(l->ttft.p99));
        snprintf(b, sizeof b, "%.2f/%.2f/%.2f", ms(l->itl.p50), ms(l->itl.p95), ms(l->itl.p99));
        snprintf(c, sizeof c, "%.3f/%.3f/%.3f", l->e2e.p50, l->e2e.p95, l->e2e.p99);
        printf("%5d %5d %6d %8.2f %9.1f  %-22s  %-22s  %-22s\n", l->concurrency, l->requests, l->failed,
               l->requests_per_s, l->tokens_per_s, a, b, c);
    }
    if (r->n_samples) {
        double umax = 0, mmax = 0;
        for (size_t i = 0; i < r->n_samples; i++) {
            if (isfinite(r->samples[i].utilization)) umax = fmax(umax, r->samples[i].utilization);
            if (isfinite(r->samples[i].memory_used)) mmax = fmax(mmax, r->samples[i].memory_used);
        }
        printf("server: %zu samples, utilization up to %.0f%%, device memory up to %.1f MiB\n", r->n_samples,
               umax * 100, mmax / (1 << 20));
    } else {
        printf("server: no monitoring samples (%s)\n", r->monitor_note);
    }
}

/* Latency CDF of one level: x the sorted latencies, y the fraction at or below. */
static void cdf(const bench_level *l, double *x, double *y) {
    for (size_t i = 0; i < l->n_e2e; i++) x[i] = l->e2e_sorted[i], y[i] = (double)(i + 1) / (double)l->n_e2e;
}

static void monitor_charts(report *rep, const bench_result *r) {
    size_t n = r->n_samples;
    double *t = calloc(n, sizeof *t), *u = calloc(n, sizeof *u), *mem = calloc(n, sizeof *mem);
    if (t && u && mem) {
        for (size_t i = 0; i < n; i++) {
            t[i] = r->samples[i].t;
            u[i] = r->samples[i].utilization * 100;
            mem[i] = r->samples[i].memory_used / (1 << 20);
        }
        report_series su = {.name = "utilization", .x = t, .y = u, .n = n};
        report_line_chart(rep, &(report_lines){.title = "Server utilization during the run", .xlabel = "seconds",
                                               .ylabel = "busy %", .n_series = 1, .series = &su, .ymin = 0,
                                               .ymax = 100});
        report_series sm = {.name = "device memory used", .x = t, .y = mem, .n = n};
        report_line_chart(rep, &(report_lines){.title = "Device memory during the run", .xlabel = "seconds",
                                               .ylabel = "MiB", .n_series = 1, .series = &sm});
    }
    free(t), free(u), free(mem);
}

int bench_write_report(const bench_result *r, const char *dir, json_t *json) {
    const bench_opts *o = r->o;
    report *rep = report_create("lgpu-eval bench");
    report_kv(rep, "server", "%s", o->url);
    if (r->server_device[0]) report_kv(rep, "server device", "%s", r->server_device);
    report_kv(rep, "requests", "%d tokens each, prompt \"%s\"%s", o->max_tokens, o->prompt,
              o->ignore_eos ? ", end-of-sequence ignored" : "");
    report_kv(rep, "percentiles", "linear interpolation between ranks (numpy's default)");
    report_heading(rep, 2, "Throughput and latency per concurrency level");
    report_table *t = report_table_add(rep, 9, (const char *[]){"concurrency", "requests", "failed", "requests/s",
                                                                 "tokens/s", "TTFT p50 / p95 / p99 (ms)",
                                                                 "ITL p50 / p95 / p99 (ms)", "E2E p50 / p95 / p99 (s)",
                                                                 "E2E mean (s)"});
    double *conc = calloc((size_t)r->n_levels, sizeof *conc), *tps = calloc((size_t)r->n_levels, sizeof *tps);
    for (int i = 0; i < r->n_levels; i++) {
        const bench_level *l = &r->levels[i];
        report_row(t);
        report_cell(t, REPORT_NUM, "%d", l->concurrency);
        report_cell(t, REPORT_NUM, "%d", l->requests);
        report_cell(t, l->failed ? REPORT_FAIL : REPORT_NUM, "%d", l->failed);
        report_cell(t, REPORT_NUM, "%.2f", l->requests_per_s);
        report_cell(t, REPORT_NUM, "%.1f", l->tokens_per_s);
        report_cell(t, REPORT_NUM, "%.1f / %.1f / %.1f", ms(l->ttft.p50), ms(l->ttft.p95), ms(l->ttft.p99));
        report_cell(t, REPORT_NUM, "%.2f / %.2f / %.2f", ms(l->itl.p50), ms(l->itl.p95), ms(l->itl.p99));
        report_cell(t, REPORT_NUM, "%.3f / %.3f / %.3f", l->e2e.p50, l->e2e.p95, l->e2e.p99);
        report_cell(t, REPORT_NUM, "%.3f", l->e2e.mean);
        if (conc && tps) conc[i] = l->concurrency, tps[i] = l->tokens_per_s;
    }
    if (conc && tps) {
        report_series s = {.name = "generated tokens/s", .x = conc, .y = tps, .n = (size_t)r->n_levels};
        report_line_chart(rep, &(report_lines){.title = "Throughput vs concurrency", .xlabel = "concurrent requests",
                                               .ylabel = "tokens/s", .n_series = 1, .series = &s,
                                               .log_x = r->n_levels > 2});
    }
    report_series cs[BENCH_MAX_LEVELS];
    double *cx[BENCH_MAX_LEVELS] = {0}, *cy[BENCH_MAX_LEVELS] = {0};
    char names[BENCH_MAX_LEVELS][32];
    int nc = 0;
    for (int i = 0; i < r->n_levels; i++) {
        const bench_level *l = &r->levels[i];
        if (!l->n_e2e || !(cx[nc] = calloc(l->n_e2e, sizeof(double))) || !(cy[nc] = calloc(l->n_e2e, sizeof(double))))
            continue;
        cdf(l, cx[nc], cy[nc]);
        snprintf(names[nc], sizeof names[nc], "concurrency %d", l->concurrency);
        cs[nc] = (report_series){.name = names[nc], .x = cx[nc], .y = cy[nc], .n = l->n_e2e};
        nc++;
    }
    if (nc)
        report_line_chart(rep, &(report_lines){.title = "End-to-end latency CDF", .xlabel = "seconds",
                                               .ylabel = "fraction of requests", .n_series = nc, .series = cs,
                                               .style = REPORT_STEPS, .ymin = 0, .ymax = 1});
    report_heading(rep, 2, "Server during the run");
    if (r->n_samples) {
        report_para(rep, "%zu samples of /monitor/gpu, every %.2f s.", r->n_samples, o->monitor_every);
        monitor_charts(rep, r);
    } else {
        report_note(rep, "No monitoring samples: %s.", r->monitor_note);
    }
    int rc = report_write(rep, dir, "bench", json);
    if (rc) fprintf(stderr, "lgpu-eval bench: %s\n", report_error(rep));
    else if (!r->o->quiet) fprintf(stderr, "lgpu-eval bench: report in %s/bench.{md,html,json}\n", dir);
    for (int i = 0; i < nc; i++) free(cx[i]), free(cy[i]);
    free(conc), free(tps);
    report_destroy(rep);
    return rc;
}
