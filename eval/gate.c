/* lgpu-eval gate: a CI regression gate over two `lgpu-eval bench --json`
 * results. For every concurrency level of the baseline, the current run's
 * throughput (tokens/s, requests/s) may fall, and its p95 latencies (time to
 * first token, end to end) may grow, by at most --max-regression; any figure
 * past it fails the gate (exit 1) with the figure named. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "eval.h"

typedef struct gate_figure {
    const char *name, *unit;
    const char *obj, *key; /* levels[i][obj][key], or levels[i][key] when obj is NULL */
    int higher_is_better;
} gate_figure;

static const gate_figure FIGURES[] = {
    {"tokens/s", "", NULL, "tokens_per_s", 1},
    {"requests/s", "", NULL, "requests_per_s", 1},
    {"TTFT p95", " s", "ttft_s", "p95", 0},
    {"E2E p95", " s", "e2e_s", "p95", 0},
};

static json_t *load(const char *path) {
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j) {
        fprintf(stderr, "lgpu-eval gate: %s:%d: %s\n", path, e.line, e.text);
        return NULL;
    }
    const char *schema = json_string_value(json_object_get(j, "schema"));
    if (!schema || strcmp(schema, BENCH_SCHEMA) || !json_is_array(json_object_get(j, "levels"))) {
        fprintf(stderr, "lgpu-eval gate: %s: not an lgpu-eval bench result (want \"schema\": \"%s\" and \"levels\"; "
                        "write one with lgpu-eval bench --json FILE)\n", path, BENCH_SCHEMA);
        json_decref(j);
        return NULL;
    }
    return j;
}

static json_t *level_of(json_t *doc, json_int_t concurrency) {
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(doc, "levels"), i, l) {
        if (json_integer_value(json_object_get(l, "concurrency")) == concurrency) return l;
    }
    return NULL;
}

static double figure_of(json_t *level, const gate_figure *f) {
    json_t *v = f->obj ? json_object_get(json_object_get(level, f->obj), f->key) : json_object_get(level, f->key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void usage(FILE *f) {
    fprintf(f, "usage: lgpu-eval gate --baseline BASELINE.json [--max-regression 10%%] CURRENT.json\n"
               "Compares two `lgpu-eval bench --json` results level by level (concurrency): fails (exit 1)\n"
               "when tokens/s or requests/s fell, or the p95 time to first token or p95 end-to-end latency\n"
               "grew, by more than the threshold (default 10%%). Exit 2: bad usage or unreadable files.\n");
}

int lgpu_eval_gate(int argc, char **argv) {
    const char *baseline = NULL, *current = NULL;
    double limit = 0.10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--baseline") && v) {
            baseline = v, i++;
        } else if (!strcmp(a, "--max-regression") && v) {
            char *end;
            double x = strtod(v, &end);
            if (end == v || (*end && strcmp(end, "%")) || !(x >= 0) || x > 1000) {
                fprintf(stderr, "lgpu-eval gate: --max-regression '%s': want a percentage such as 10%%\n", v);
                return 2;
            }
            limit = x / 100, i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "lgpu-eval gate: %s '%s'\n", v ? "unknown option" : "missing value for", a);
            usage(stderr);
            return 2;
        } else if (!current) {
            current = a;
        } else {
            fprintf(stderr, "lgpu-eval gate: one CURRENT.json only ('%s')\n", a);
            return 2;
        }
    }
    if (!baseline || !current) {
        fprintf(stderr, "lgpu-eval gate: give --baseline FILE and the CURRENT.json to check\n");
        usage(stderr);
        return 2;
    }
    json_t *b = load(baseline), *c = b ? load(current) : NULL;
    if (!b || !c) {
        json_decref(b);
        return 2;
    }
    int regressions = 0, compared = 0;
    printf("%-6s %-11s %12s %12s %9s  %s\n", "conc", "figure", "baseline", "current", "change", "verdict");
    size_t i;
    json_t *bl;
    json_array_foreach(json_object_get(b, "levels"), i, bl) {
        json_int_t conc = json_integer_value(json_object_get(bl, "concurrency"));
        json_t *cl = level_of(c, conc);
        if (!cl) {
            printf("%-6lld %-11s %12s %12s %9s  REGRESSION: the current run has no level at this concurrency\n",
                   (long long)conc, "-", "-", "-", "-");
            regressions++;
            continue;
        }
        for (size_t k = 0; k < sizeof FIGURES / sizeof FIGURES[0]; k++) {
            const gate_figure *f = &FIGURES[k];
            double bv = figure_of(bl, f), cv = figure_of(cl, f), worse = bench_regression(bv, cv, f->higher_is_better);
            if (isnan(worse)) continue; /* not measured in the baseline */
            compared++;
            bool bad = worse > limit;
            regressions += bad;
            double change = (cv - bv) / bv * 100;
            printf("%-6lld %-11s %12.4g %12.4g %+8.1f%%  %s\n", (long long)conc, f->name, bv, cv, change == 0 ? 0 : change,
                   bad ? "REGRESSION" : "ok");
            if (bad)
                fprintf(stderr, "lgpu-eval gate: concurrency %lld: %s %s %.4g%s -> %.4g%s (%.1f%% worse, limit %.1f%%)\n",
                        (long long)conc, f->name, f->higher_is_better ? "fell" : "grew", bv, f->unit, cv, f->unit,
                        worse * 100, limit * 100);
        }
    }
    json_decref(b);
    json_decref(c);
    if (!compared && !regressions) {
        fprintf(stderr, "lgpu-eval gate: nothing to compare: %s has no measured level\n", baseline);
        return 2;
    }
    printf("%s: %d figure%s compared, %d regression%s past %.1f%%\n", regressions ? "FAIL" : "PASS", compared,
           compared == 1 ? "" : "s", regressions, regressions == 1 ? "" : "s", limit * 100);
    return regressions ? 1 : 0;
}
