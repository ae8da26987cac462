/* The comparison's report (compare.h): the summary on stdout, and
 * DIR/compare.{md,html,json} through report.h. The JSON's schema is in
 * docs/EVALUATION.md ("lgpu-eval/compare/1"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compare.h"
#include "report.h"

/* Per metric, per side: examples, sum of scores, passes. */
typedef struct tally {
    size_t n;
    double sum[2];
    size_t pass[2];
} tally;

static void count_all(const lgpu_testset *ts, size_t n_ex, const cmp_side *sides[2], tally per[LGPU_METRIC_COUNT_],
                      tally *all) {
    memset(per, 0, sizeof(tally) * LGPU_METRIC_COUNT_);
    memset(all, 0, sizeof *all);
    for (size_t i = 0; i < n_ex; i++) {
        lgpu_metric m = lgpu_testset_get(ts, i)->metric;
        per[m].n++;
        all->n++;
        for (int s = 0; s < 2; s++) {
            const cmp_answer *a = &sides[s]->answers[i];
            per[m].sum[s] += a->score;
            all->sum[s] += a->score;
            per[m].pass[s] += a->pass;
            all->pass[s] += a->pass;
        }
    }
}

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static double tokens_per_s(const cmp_side *s) { return s->gen_seconds > 0 ? (double)s->gen_tokens / s->gen_seconds : 0; }

/* ---- JSON ---- */

static json_t *side_json(const cmp_opts *o, const cmp_side *s) {
    json_t *j = json_object(), *ad = json_array();
    json_object_set_new(j, "label", json_string(s->label));
    json_object_set_new(j, "model", json_string(s->model_path));
    for (int i = 0; i < s->n_adapters; i++)
        json_array_append_new(ad, json_pack("{s:s, s:f}", "path", s->adapters[i].path, "scale", (double)s->adapters[i].scale));
    json_object_set_new(j, "adapters", ad);
    json_object_set_new(j, "desc", json_string(s->desc ? s->desc : ""));
    json_object_set_new(j, "n_params", json_integer((json_int_t)s->n_params));
    json_object_set_new(j, "n_vocab", json_integer(s->n_vocab));
    json_object_set_new(j, "chat_template", s->chat_template ? json_string(s->chat_template) : json_null());
    json_object_set_new(j, "load_s", json_real(s->load_seconds));
    if (s->have_ppl) {
        json_t *p = json_object();
        json_object_set_new(p, "ppl", num_or_null(s->ppl.ppl));
        json_object_set_new(p, "ppl_err", num_or_null(s->ppl.ppl_err));
        json_object_set_new(p, "nll_mean", num_or_null(s->ppl.nll_mean));
        json_object_set_new(p, "tokens", json_integer(s->ppl.count));
        json_object_set_new(p, "chunks", json_integer(s->ppl.n_chunks));
        json_object_set_new(p, "chunk", s->ppl.n_chunks ? json_integer(s->ppl_chunk) : json_null());
        json_object_set_new(p, "truncated_lines", json_integer(s->ppl_truncated));
        json_object_set_new(p, "seconds", json_real(s->ppl_seconds));
        json_object_set_new(j, "perplexity", p);
    } else {
        json_object_set_new(j, "perplexity", json_null());
    }
    json_t *g = json_object();
    json_object_set_new(g, "generated_tokens", json_integer(s->gen_tokens));
    json_object_set_new(g, "prompt_s", json_real(s->prompt_seconds));
    json_object_set_new(g, "gen_s", json_real(s->gen_seconds));
    json_object_set_new(g, "tokens_per_s", json_real(tokens_per_s(s)));
    json_object_set_new(j, "generation", g);
    return j;
}

static json_t *answer_json(const cmp_answer *a) {
    json_t *j = json_object();
    json_object_set_new(j, "output", json_string(a->output ? a->output : ""));
    json_object_set_new(j, "score", json_real(a->score));
    json_object_set_new(j, "pass", json_boolean(a->pass));
    json_object_set_new(j, "prompt_tokens", json_integer(a->n_prompt));
    json_object_set_new(j, "generated_tokens", json_integer(a->n_gen));
    json_object_set_new(j, "finish", a->finish ? json_string(a->finish) : json_null());
    json_object_set_new(j, "seconds", json_real(a->seconds));
    json_object_set_new(j, "error", a->error ? json_string(a->error) : json_null());
    return j;
}

static json_t *input_json(const lgpu_test_example *ex) {
    if (ex->prompt) return json_string(ex->prompt);
    json_t *msgs = json_array();
    for (size_t k = 0; k < ex->n_messages; k++)
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", ex->messages[k].role, "content",
                                              ex->messages[k].content));
    return msgs;
}

static json_t *side_tally_json(const tally *t, int s) {
    return json_pack("{s:o, s:I, s:o}", "mean", num_or_null(t->n ? t->sum[s] / (double)t->n : NAN), "passed",
                     (json_int_t)t->pass[s], "pass_rate", num_or_null(t->n ? (double)t->pass[s] / (double)t->n : NAN));
}

static void iso_time(char *buf, size_t cap) {
    const char *sde = getenv("SOURCE_DATE_EPOCH"); /* reproducible builds' convention */
    time_t t = sde && *sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *build_json(const cmp_opts *o, const lgpu_testset *ts, size_t n_ex, const cmp_side *sides[2],
                          const tally per[LGPU_METRIC_COUNT_], const tally *all, double wall_s, const char *created) {
    json_t *j = json_object(), *set = json_object(), *stops = json_array();
    json_object_set_new(j, "schema", json_string("lgpu-eval/compare/1"));
    json_object_set_new(j, "lgpu_version", json_string(LGPU_VERSION_STRING));
    json_object_set_new(j, "created", json_string(created));
    json_object_set_new(j, "wall_s", json_real(wall_s));
    json_object_set_new(set, "metric_default", json_string(lgpu_metric_name(o->metric)));
    json_object_set_new(set, "pass_threshold", json_real(o->pass_threshold));
    json_object_set_new(set, "max_tokens", json_integer(o->max_tokens));
    json_object_set_new(set, "decoding", json_string(o->temp > 0 ? "sample" : "greedy"));
    json_object_set_new(set, "temperature", json_real(o->temp));
    json_object_set_new(set, "seed", o->temp > 0 ? json_integer((json_int_t)o->seed) : json_null());
    for (int i = 0; i < o->n_stops; i++) json_array_append_new(stops, json_string(o->stops[i]));
    json_object_set_new(set, "stops", stops);
    json_object_set_new(set, "chat_template", o->template_name ? json_string(o->template_name) : json_null());
    json_object_set_new(set, "limit", o->limit ? json_integer(o->limit) : json_null());
    json_object_set_new(set, "device", o->device ? json_string(o->device) : json_null());
    json_object_set_new(j, "settings", set);
    json_object_set_new(j, "base", side_json(o, sides[0]));
    json_object_set_new(j, "tuned", side_json(o, sides[1]));
    if (o->ppl) {
        size_t n = strlen(o->ppl);
        bool jl = (n > 6 && !strcmp(o->ppl + n - 6, ".jsonl")) || (n > 7 && !strcmp(o->ppl + n - 7, ".ndjson"));
        json_object_set_new(j, "perplexity_data", json_pack("{s:s, s:s}", "file", o->ppl, "format", jl ? "jsonl" : "text"));
    } else {
        json_object_set_new(j, "perplexity_data", json_null());
    }
    if (!ts) {
        json_object_set_new(j, "tests", json_null());
        return j;
    }
    json_t *t = json_object(), *ms = json_array(), *exs = json_array();
    json_object_set_new(t, "file", json_string(o->tests));
    json_object_set_new(t, "n_examples", json_integer((json_int_t)n_ex));
    for (int m = 0; m < LGPU_METRIC_COUNT_; m++) {
        if (!per[m].n) continue;
        json_t *e = json_object();
        json_object_set_new(e, "metric", json_string(lgpu_metric_name((lgpu_metric)m)));
        json_object_set_new(e, "n", json_integer((json_int_t)per[m].n));
        json_object_set_new(e, "base", side_tally_json(&per[m], 0));
        json_object_set_new(e, "tuned", side_tally_json(&per[m], 1));
        json_object_set_new(e, "delta_mean", json_real((per[m].sum[1] - per[m].sum[0]) / (double)per[m].n));
        json_array_append_new(ms, e);
    }
    json_object_set_new(t, "metrics", ms);
    json_t *ov = json_object();
    json_object_set_new(ov, "n", json_integer((json_int_t)all->n));
    json_object_set_new(ov, "base", side_tally_json(all, 0));
    json_object_set_new(ov, "tuned", side_tally_json(all, 1));
    json_object_set_new(t, "overall", ov);
    for (size_t i = 0; i < n_ex; i++) {
        const lgpu_test_example *ex = lgpu_testset_get(ts, i);
        json_t *e = json_object();
        json_object_set_new(e, "id", ex->id ? json_string(ex->id) : json_null());
        json_object_set_new(e, "line", json_integer((json_int_t)ex->line));
        json_object_set_new(e, "metric", json_string(lgpu_metric_name(ex->metric)));
        json_object_set_new(e, "input", input_json(ex));
        json_object_set_new(e, "expected", ex->expected ? json_string(ex->expected) : json_null());
        json_object_set_new(e, "base", answer_json(&sides[0]->answers[i]));
        json_object_set_new(e, "tuned", answer_json(&sides[1]->answers[i]));
        json_array_append_new(exs, e);
    }
    json_object_set_new(t, "examples", exs);
    json_object_set_new(j, "tests", t);
    return j;
}

/* ---- the document ---- */

static void side_kv(report *r, const char *role, const cmp_side *s) {
    char adapters[1024] = "";
    size_t len = 0;
    for (int i = 0; i < s->n_adapters && len < sizeof adapters; i++)
        len += (size_t)snprintf(adapters + len, sizeof adapters - len, "%s%s ×%g", i ? ", " : "; adapters: ",
                                s->adapters[i].path, (double)s->adapters[i].scale);
    report_kv(r, role, "%s — %s (%s%s)", s->label, s->desc ? s->desc : "", s->model_path, adapters);
}

static const char *pct(char *buf, size_t cap, size_t k, size_t n) {
    snprintf(buf, cap, "%zu/%zu (%.0f%%)", k, n, n ? 100.0 * (double)k / (double)n : 0.0);
    return buf;
}

static void summary_rows(report_table *t, const cmp_side *b, const cmp_side *f, const tally per[LGPU_METRIC_COUNT_],
                         const tally *all, bool have_tests) {
    char x[64], y[64];
    if (b->have_ppl) {
        report_row(t);
        report_cell(t, NULL, "perplexity (lower is better)");
        report_cell(t, REPORT_NUM, "%.4f", b->ppl.ppl);
        report_cell(t, REPORT_NUM, "%.4f", f->ppl.ppl);
        double d = (f->ppl.ppl - b->ppl.ppl) / b->ppl.ppl * 100;
        report_cell(t, d <= 0 ? REPORT_PASS : REPORT_FAIL, "%+.2f%%", d);
    }
    if (!have_tests) return;
    report_row(t);
    report_cell(t, NULL, "examples passed");
    report_cell(t, REPORT_NUM, "%s", pct(x, sizeof x, all->pass[0], all->n));
    report_cell(t, REPORT_NUM, "%s", pct(y, sizeof y, all->pass[1], all->n));
    long d = (long)all->pass[1] - (long)all->pass[0];
    report_cell(t, d >= 0 ? REPORT_PASS : REPORT_FAIL, "%+ld", d);
    for (int m = 0; m < LGPU_METRIC_COUNT_; m++) {
        if (!per[m].n) continue;
        double mb = per[m].sum[0] / (double)per[m].n, mf = per[m].sum[1] / (double)per[m].n;
        report_row(t);
        report_cell(t, NULL, "%s (mean of %zu)", lgpu_metric_name((lgpu_metric)m), per[m].n);
        report_cell(t, REPORT_NUM, "%.3f", mb);
        report_cell(t, REPORT_NUM, "%.3f", mf);
        report_cell(t, mf >= mb ? REPORT_PASS : REPORT_FAIL, "%+.3f", mf - mb);
    }
}

static void metrics_section(report *r, const cmp_side *b, const cmp_side *f, const tally per[LGPU_METRIC_COUNT_]) {
    report_heading(r, 2, "Task metrics");
    report_para(r, "Mean score per metric over the examples that use it (every score lies in 0..1), and how many "
                   "examples passed. Metric definitions: docs/EVALUATION.md.");
    report_table *t = report_table_add(r, 6, (const char *[]){"metric", "examples", b->label, f->label, "change",
                                                              "passed (base → fine-tuned)"});
    const char *groups[LGPU_METRIC_COUNT_];
    double vals[2 * LGPU_METRIC_COUNT_];
    int G = 0;
    for (int m = 0; m < LGPU_METRIC_COUNT_; m++)
        if (per[m].n) G++;
    for (int m = 0, g = 0; m < LGPU_METRIC_COUNT_; m++) {
        if (!per[m].n) continue;
        double mb = per[m].sum[0] / (double)per[m].n, mf = per[m].sum[1] / (double)per[m].n;
        groups[g] = lgpu_metric_name((lgpu_metric)m);
        vals[g] = mb;
        vals[G + g] = mf;
        g++;
        report_row(t);
        report_cell(t, NULL, "%s", lgpu_metric_name((lgpu_metric)m));
        report_cell(t, REPORT_NUM, "%zu", per[m].n);
        report_cell(t, REPORT_NUM, "%.3f", mb);
        report_cell(t, REPORT_NUM, "%.3f", mf);
        report_cell(t, mf >= mb ? REPORT_PASS : REPORT_FAIL, "%+.3f", mf - mb);
        report_cell(t, REPORT_NUM, "%zu → %zu", per[m].pass[0], per[m].pass[1]);
    }
    const char *series[2] = {b->label, f->label};
    report_bar_chart(r, &(report_bars){.title = "Mean score per metric", .ylabel = "mean score", .n_groups = G,
                                       .n_series = 2, .groups = groups, .series = series, .values = vals,
                                       .ymin = 0, .ymax = 1.12, .value_fmt = "%.3f"});
}

static void ppl_section(report *r, const cmp_opts *o, const cmp_side *b, const cmp_side *f) {
    report_heading(r, 2, "Perplexity");
    size_t n = strlen(o->ppl);
    bool jl = (n > 6 && !strcmp(o->ppl + n - 6, ".jsonl")) || (n > 7 && !strcmp(o->ppl + n - 7, ".ndjson"));
    if (jl)
        report_para(r, "%s: each line scored on its own (BOS, then the line's \"text\" or its prompt followed by the "
                       "expected answer); every token after the first counts. PPL = exp(mean NLL).",
                    o->ppl);
    else
        report_para(r, "%s: llama-perplexity's method: chunks of %d tokens, each starting at BOS, the second half of "
                       "each scored. PPL = exp(mean NLL), ± its standard error.",
                    o->ppl, b->ppl_chunk);
    report_table *t = report_table_add(r, 3, (const char *[]){"", b->label, f->label});
    const cmp_side *s[2] = {b, f};
    report_row(t);
    report_cell(t, NULL, "perplexity");
    for (int k = 0; k < 2; k++)
        if (isfinite(s[k]->ppl.ppl_err)) report_cell(t, REPORT_NUM, "%.4f ± %.4f", s[k]->ppl.ppl, s[k]->ppl.ppl_err);
        else report_cell(t, REPORT_NUM, "%.4f", s[k]->ppl.ppl);
    report_row(t);
    report_cell(t, NULL, "mean NLL (nats/token)");
    for (int k = 0; k < 2; k++) report_cell(t, REPORT_NUM, "%.5f", s[k]->ppl.nll_mean);
    report_row(t);
    report_cell(t, NULL, "tokens scored");
    for (int k = 0; k < 2; k++) report_cell(t, REPORT_NUM, "%lld", (long long)s[k]->ppl.count);
    if (!jl) {
        report_row(t);
        report_cell(t, NULL, "chunks");
        for (int k = 0; k < 2; k++) report_cell(t, REPORT_NUM, "%d", s[k]->ppl.n_chunks);
    } else if (b->ppl_truncated || f->ppl_truncated) {
        report_row(t);
        report_cell(t, NULL, "lines cut to the context");
        for (int k = 0; k < 2; k++) report_cell(t, REPORT_NUM, "%d", s[k]->ppl_truncated);
    }
    report_row(t);
    report_cell(t, NULL, "time (s)");
    for (int k = 0; k < 2; k++) report_cell(t, REPORT_NUM, "%.2f", s[k]->ppl_seconds);
    const char *groups[1] = {"perplexity"}, *series[2] = {b->label, f->label};
    double vals[2] = {b->ppl.ppl, f->ppl.ppl};
    report_bar_chart(r, &(report_bars){.title = "Perplexity (lower is better)", .ylabel = "perplexity",
                                       .n_groups = 1, .n_series = 2, .groups = groups, .series = series,
                                       .values = vals, .value_fmt = "%.3f"});
}

/* The example's input as text: the prompt, or "role: content" lines. */
static char *input_text(const lgpu_test_example *ex) {
    if (ex->prompt) return strdup(ex->prompt);
    size_t n = 1;
    for (size_t k = 0; k < ex->n_messages; k++) n += strlen(ex->messages[k].role) + strlen(ex->messages[k].content) + 3;
    char *s = malloc(n), *p = s;
    if (!s) return NULL;
    for (size_t k = 0; k < ex->n_messages; k++)
        p += sprintf(p, "%s%s: %s", k ? "\n" : "", ex->messages[k].role, ex->messages[k].content);
    *p = 0;
    return s;
}

static void answer_cells(report_table *t, const lgpu_test_example *ex, const cmp_answer *a) {
    if (a->error) report_cell(t, REPORT_TEXT, "[not run: %s]", a->error);
    else report_cell_text(t, REPORT_TEXT, a->output);
    const char *st = a->pass ? REPORT_PASS : REPORT_FAIL;
    if (lgpu_metric_is_binary(ex->metric)) report_cell(t, st, "%s", a->pass ? "pass" : "fail");
    else report_cell(t, st, "%.3f", a->score);
}

static void examples_section(report *r, const lgpu_testset *ts, size_t n_ex, const cmp_side *b, const cmp_side *f) {
    report_heading(r, 2, "Examples");
    report_para(r, "Every example with both models' answers. Binary metrics show pass or fail; f1 and rouge_l show the "
                   "score, which passes at the threshold above.");
    report_table *t = report_table_add(r, 8, (const char *[]){"id", "metric", "input", "expected", b->label, "result",
                                                              f->label, "result"});
    for (size_t i = 0; i < n_ex; i++) {
        const lgpu_test_example *ex = lgpu_testset_get(ts, i);
        report_row(t);
        if (ex->id) report_cell_text(t, NULL, ex->id);
        else report_cell(t, NULL, "line %llu", (unsigned long long)ex->line);
        report_cell_text(t, NULL, lgpu_metric_name(ex->metric));
        char *in = input_text(ex);
        report_cell_text(t, REPORT_TEXT, in ? in : "");
        free(in);
        report_cell_text(t, REPORT_TEXT, ex->expected ? ex->expected : "");
        answer_cells(t, ex, &b->answers[i]);
        answer_cells(t, ex, &f->answers[i]);
    }
}

static void speed_section(report *r, const cmp_side *b, const cmp_side *f, bool have_tests) {
    report_heading(r, 2, "Run");
    report_table *t = report_table_add(r, 3, (const char *[]){"", b->label, f->label});
    const cmp_side *s[2] = {b, f};
    report_row(t);
    report_cell(t, NULL, "load (s)");
    for (int k = 0; k < 2; k++) report_cell(t, REPORT_NUM, "%.2f", s[k]->load_seconds);
    if (!have_tests) return;
    report_row(t);
    report_cell(t, NULL, "tokens generated");
    for (int k = 0; k < 2; k++) report_cell(t, REPORT_NUM, "%lld", (long long)s[k]->gen_tokens);
    report_row(t);
    report_cell(t, NULL, "generation (tokens/s)");
    for (int k = 0; k < 2; k++) report_cell(t, REPORT_NUM, "%.1f", tokens_per_s(s[k]));
    report_row(t);
    report_cell(t, NULL, "prompt processing (s)");
    for (int k = 0; k < 2; k++) report_cell(t, REPORT_NUM, "%.2f", s[k]->prompt_seconds);
}

static void print_summary(const cmp_opts *o, const cmp_side *b, const cmp_side *f, const tally per[LGPU_METRIC_COUNT_],
                          const tally *all, bool have_tests) {
    printf("%-28s %14s %14s\n", "", b->label, f->label);
    if (b->have_ppl) printf("%-28s %14.4f %14.4f\n", "perplexity", b->ppl.ppl, f->ppl.ppl);
    if (have_tests) {
        char x[64], y[64];
        printf("%-28s %14s %14s\n", "examples passed", pct(x, sizeof x, all->pass[0], all->n),
               pct(y, sizeof y, all->pass[1], all->n));
        for (int m = 0; m < LGPU_METRIC_COUNT_; m++)
            if (per[m].n)
                printf("%-28s %14.3f %14.3f\n", lgpu_metric_name((lgpu_metric)m), per[m].sum[0] / (double)per[m].n,
                       per[m].sum[1] / (double)per[m].n);
    }
    printf("report: %s/compare.md, compare.html, compare.json\n", o->out_dir);
}

int cmp_write_report(const cmp_opts *o, const lgpu_testset *ts, size_t n_ex, const cmp_side *b, const cmp_side *f,
                     double wall_s) {
    const cmp_side *sides[2] = {b, f};
    tally per[LGPU_METRIC_COUNT_], all;
    bool have_tests = ts != NULL;
    if (have_tests) count_all(ts, n_ex, sides, per, &all);
    else memset(per, 0, sizeof per), memset(&all, 0, sizeof all);
    char created[32];
    iso_time(created, sizeof created);
    char title[256];
    snprintf(title, sizeof title, "Comparison: %s vs %s", b->label, f->label);
    report *r = report_create(title);
    if (!r) {
        fprintf(stderr, "lgpu-eval compare: out of memory\n");
        return 1;
    }
    side_kv(r, "Base", b);
    side_kv(r, "Fine-tuned", f);
    if (have_tests) report_kv(r, "Test set", "%s: %zu example%s", o->tests, n_ex, n_ex == 1 ? "" : "s");
    if (o->ppl) report_kv(r, "Perplexity data", "%s", o->ppl);
    if (o->temp > 0) report_kv(r, "Decoding", "sampled at temperature %g, seed %llu; at most %d tokens per answer",
                               (double)o->temp, (unsigned long long)o->seed, o->max_tokens);
    else report_kv(r, "Decoding", "greedy (reproducible); at most %d tokens per answer", o->max_tokens);
    report_kv(r, "Pass rule", "binary metrics: score 1; f1 and rouge_l: score ≥ %.2f", o->pass_threshold);
    report_kv(r, "Written", "%s, in %.1f s", created, wall_s);
    if (b->have_ppl && b->n_vocab != f->n_vocab)
        report_note(r, "The two models have different vocabularies (%d and %d tokens): their perplexities are per "
                       "token of different tokenizers and do not compare directly.",
                    b->n_vocab, f->n_vocab);
    report_heading(r, 2, "Summary");
    report_table *t = report_table_add(r, 4, (const char *[]){"measure", b->label, f->label, "change"});
    summary_rows(t, b, f, per, &all, have_tests);
    if (have_tests) metrics_section(r, b, f, per);
    if (b->have_ppl) ppl_section(r, o, b, f);
    if (have_tests) examples_section(r, ts, n_ex, b, f);
    speed_section(r, b, f, have_tests);
    json_t *j = build_json(o, ts, n_ex, sides, per, &all, wall_s, created);
    int rc = report_write(r, o->out_dir, "compare", j);
    if (rc) fprintf(stderr, "lgpu-eval compare: %s\n", report_error(r));
    else {
        print_summary(o, b, f, per, &all, have_tests);
        if (report_charts_note(r)) fprintf(stderr, "lgpu-eval compare: %s\n", report_charts_note(r));
    }
    json_decref(j);
    report_destroy(r);
    return rc ? 1 : 0;
}
