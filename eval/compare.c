/* lgpu-eval compare: a base model against a fine-tuned one (the base with
 * LoRA adapters, or another model file) on identical data: perplexity on a
 * text or JSONL file, task metrics on a JSONL test set; a report in
 * Markdown, HTML and JSON (docs/EVALUATION.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compare.h"
#include "eval.h"
#include "lgpu/gguf.h"
#include "lgpu/lgpu.h"
#include "lgpu/llama.h"
#include "report.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lgpu-eval compare [-m BASE] (--vs MODEL|ADAPTER | --lora ADAPTER[:SCALE]...)\n"
            "                         [--tests FILE.jsonl] [--ppl FILE] -o DIR [options]\n"
            "\n"
            "Evaluates a base model and a fine-tuned one on the same data and writes DIR/compare.md,\n"
            "DIR/compare.html and DIR/compare.json.\n"
            "\n"
            "  -m, --model BASE       the base model: GGUF, HF directory, llama2.c .bin, ORG/NAME[:FILE]\n"
            "                         (default: the embedded " LGPU_MODEL_EMBEDDED_NAME " model)\n"
            "  --vs MODEL|ADAPTER     the fine-tuned side: another model file, or a LoRA adapter (PEFT\n"
            "                         directory or GGUF LoRA), which then goes on BASE\n"
            "  --lora ADAPTER[:SCALE] the fine-tuned side is BASE with this adapter (repeatable; SCALE 1)\n"
            "  --base-name NAME       the base's label in the report (default: its file name)\n"
            "  --vs-name NAME         the fine-tuned side's label (default: its file name)\n"
            "  --tests FILE.jsonl     test set: {\"id\", \"prompt\" or \"messages\", \"expected\", \"metric\"}\n"
            "  --ppl FILE             perplexity data: a text file, or .jsonl ({\"text\"} or test lines)\n"
            "  -o, --output DIR       report directory (created if needed)\n"
            "  --metric NAME          metric of lines without one: exact_match (default), contains, regex,\n"
            "                         json_valid, f1, rouge_l\n"
            "  --pass-threshold X     f1 and rouge_l pass at a score >= X (default %.2f)\n"
            "  -n, --max-tokens N     tokens per answer (default 64)\n"
            "  --stop TEXT            stop an answer at TEXT (repeatable)\n"
            "  --template NAME        chat template for \"messages\" (default: the model's)\n"
            "  -c, --ctx N            perplexity chunk of a text file (default min(512, model context))\n"
            "  --chunks N             score at most N chunks\n"
            "  --limit N              the first N test examples only\n"
            "  --temp T --seed S      sample instead of greedy decoding (default: greedy, reproducible)\n"
            "  --tokenizer FILE       tokenizer for models without one\n"
            "  --device SEL           device: index, name substring or 'cpu'\n"
            "  -q, --quiet            no progress on stderr\n",
            LGPU_METRIC_PASS_DEFAULT);
}

/* A count in [lo, hi] or -1. */
static long count(const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return *s && !*end && !errno && v >= lo && v <= hi ? v : -1;
}

/* Whether path names a LoRA adapter rather than a model: a PEFT directory
 * (adapter_config.json), its adapter_model.safetensors, or a GGUF whose
 * general.type is "adapter". */
static bool is_adapter(const char *path) {
    struct stat st;
    if (stat(path, &st)) return false;
    if (S_ISDIR(st.st_mode)) {
        char cfg[4096];
        snprintf(cfg, sizeof cfg, "%s/adapter_config.json", path);
        return !stat(cfg, &st);
    }
    const char *base = strrchr(path, '/');
    if (!strcmp(base ? base + 1 : path, "adapter_model.safetensors")) return true;
    if (!lgpu_gguf_file_is_gguf(path)) return false;
    lgpu_gguf *g;
    if (lgpu_gguf_create(path, &g)) return false;
    bool adapter = !strcmp(lgpu_gguf_get_str(g, "general.type", ""), "adapter");
    lgpu_gguf_destroy(g);
    return adapter;
}

static int add_adapter(cmp_opts *o, const char *spec) {
    if (o->n_adapters == CMP_MAX_ADAPTERS) {
        fprintf(stderr, "lgpu-eval compare: at most %d adapters\n", CMP_MAX_ADAPTERS);
        return -1;
    }
    cmp_adapter *a = &o->adapters[o->n_adapters];
    a->path = spec;
    a->scale = 1.0f;
    /* PATH:SCALE when what follows the last ':' is a number */
    const char *colon = strrchr(spec, ':');
    if (colon && colon[1]) {
        char *end;
        float v = strtof(colon + 1, &end);
        if (!*end) {
            if ((size_t)(colon - spec) >= sizeof o->adapter_paths[0]) {
                fprintf(stderr, "lgpu-eval compare: adapter path too long: %s\n", spec);
                return -1;
            }
            snprintf(o->adapter_paths[o->n_adapters], sizeof o->adapter_paths[0], "%.*s", (int)(colon - spec), spec);
            a->path = o->adapter_paths[o->n_adapters];
            a->scale = v;
        }
    }
    o->n_adapters++;
    return 0;
}

static int parse(int argc, char **argv, cmp_opts *o) {
    *o = (cmp_opts){.metric = LGPU_METRIC_EXACT_MATCH, .pass_threshold = LGPU_METRIC_PASS_DEFAULT, .max_tokens = 64};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 1;
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "lgpu-eval compare: %s needs a value\n", a);
            return 2;
        }
        i++;
        long n;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->base_model = v;
        else if (!strcmp(a, "--vs")) o->vs_model = v;
        else if (!strcmp(a, "--lora")) {
            if (add_adapter(o, v)) return 2;
        } else if (!strcmp(a, "--base-name")) o->base_name = v;
        else if (!strcmp(a, "--vs-name")) o->vs_name = v;
        else if (!strcmp(a, "--tests")) o->tests = v;
        else if (!strcmp(a, "--ppl")) o->ppl = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o->out_dir = v;
        else if (!strcmp(a, "--tokenizer")) o->tokenizer = v;
        else if (!strcmp(a, "--device")) o->device = v;
        else if (!strcmp(a, "--template")) {
            if (lgpu_chat_from_name(v) == LGPU_CHAT_UNKNOWN) {
                fprintf(stderr, "lgpu-eval compare: unknown --template '%s' (chatml, llama2, llama3, zephyr)\n", v);
                return 2;
            }
            o->template_name = v;
        } else if (!strcmp(a, "--metric")) {
            int m = lgpu_metric_from_name(v);
            if (m < 0) {
                fprintf(stderr, "lgpu-eval compare: unknown --metric '%s' (%s)\n", v, lgpu_metric_names());
                return 2;
            }
            o->metric = (lgpu_metric)m;
        } else if (!strcmp(a, "--stop")) {
            if (o->n_stops == CMP_MAX_STOPS) {
                fprintf(stderr, "lgpu-eval compare: at most %d --stop strings\n", CMP_MAX_STOPS);
                return 2;
            }
            o->stops[o->n_stops++] = v;
        } else if (!strcmp(a, "--pass-threshold") || !strcmp(a, "--temp")) {
            char *end;
            double x = strtod(v, &end);
            bool thr = !strcmp(a, "--pass-threshold");
            if (*end || !*v || x != x || x < 0 || (thr && x > 1) || x > 100) {
                fprintf(stderr, "lgpu-eval compare: bad value '%s' for %s (%s)\n", v, a, thr ? "0 to 1" : ">= 0");
                return 2;
            }
            if (thr) o->pass_threshold = x;
            else o->temp = (float)x;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (*end || !*v || errno) {
                fprintf(stderr, "lgpu-eval compare: bad value '%s' for --seed\n", v);
                return 2;
            }
            o->seed = s;
        } else if ((!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) && (n = count(v, 1, 1 << 20)) > 0)
            o->max_tokens = (int)n;
        else if ((!strcmp(a, "-c") || !strcmp(a, "--ctx")) && (n = count(v, 8, 1 << 20)) > 0) o->ctx = (int)n;
        else if (!strcmp(a, "--chunks") && (n = count(v, 1, 1 << 30)) > 0) o->chunks = (int)n;
        else if (!strcmp(a, "--limit") && (n = count(v, 1, 1 << 30)) > 0) o->limit = (int)n;
        else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens") || !strcmp(a, "-c") || !strcmp(a, "--ctx") ||
                 !strcmp(a, "--chunks") || !strcmp(a, "--limit")) {
            fprintf(stderr, "lgpu-eval compare: bad value '%s' for %s\n", v, a);
            return 2;
        } else {
            fprintf(stderr, "lgpu-eval compare: unknown option '%s'\n", a);
            return 2;
        }
    }
    if (o->vs_model && is_adapter(o->vs_model)) {
        if (add_adapter(o, o->vs_model)) return 2;
        o->vs_model = NULL;
    } else if (o->vs_model && o->n_adapters) {
        fprintf(stderr, "lgpu-eval compare: --vs MODEL and --lora both name the fine-tuned side: give one\n");
        return 2;
    }
    if (!o->vs_model && !o->n_adapters) {
        fprintf(stderr, "lgpu-eval compare: nothing to compare with: give --vs MODEL|ADAPTER or --lora ADAPTER\n");
        return 2;
    }
    for (int i = 0; i < o->n_adapters; i++) {
        struct stat st;
        if (stat(o->adapters[i].path, &st)) {
            fprintf(stderr, "lgpu-eval compare: no adapter at %s (%s)\n", o->adapters[i].path, strerror(errno));
            return 2;
        }
    }
    if (!o->tests && !o->ppl) {
        fprintf(stderr, "lgpu-eval compare: no data: give --tests FILE.jsonl and/or --ppl FILE\n");
        return 2;
    }
    if (!o->out_dir) {
        fprintf(stderr, "lgpu-eval compare: -o DIR is required (where the report goes)\n");
        return 2;
    }
    return 0;
}

static const char *file_name(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    const char *s = path + n;
    while (s > path && s[-1] != '/') s--;
    return s;
}

/* A label from a path: its file name (a directory's name), at most 60 bytes. */
static const char *label_of(const char *path, char *buf, size_t cap) {
    const char *s = file_name(path);
    size_t n = strcspn(s, "/");
    snprintf(buf, cap, "%.*s", (int)(n > 60 ? 60 : n), s);
    return buf;
}

int lgpu_eval_compare(int argc, char **argv) {
    cmp_opts o;
    int rc = parse(argc, argv, &o);
    if (rc == 1) {
        usage(stdout);
        return 0;
    }
    if (rc) {
        usage(stderr);
        return 2;
    }
    if (!o.base_model) {
        o.base_model = LGPU_MODEL_EMBEDDED;
        if (!o.quiet)
            fprintf(stderr, "lgpu-eval compare: no -m given: the base is the embedded %s model\n",
                    LGPU_MODEL_EMBEDDED_NAME);
    }
    char err[600];
    if (report_make_dir(o.out_dir, err, sizeof err)) { /* before hours of work, not after */
        fprintf(stderr, "lgpu-eval compare: %s\n", err);
        return 1;
    }
    double t0 = lgpu_now_s();
    lgpu_testset *ts = NULL;
    size_t n_ex = 0;
    if (o.tests) {
        lgpu_testset_params tp = {.path = o.tests, .metric = o.metric};
        if ((rc = lgpu_testset_create(&tp, &ts))) {
            fprintf(stderr, "lgpu-eval compare: %s\n", lgpu_last_error());
            return 1;
        }
        n_ex = lgpu_testset_size(ts);
        if (o.limit > 0 && (size_t)o.limit < n_ex) n_ex = (size_t)o.limit;
    }
    char base_label[64], vs_label[80], adapter_label[64];
    cmp_side base = {.key = "base", .model_path = o.base_model}, tuned = {.key = "tuned"};
    base.label = o.base_name ? o.base_name : label_of(o.base_model, base_label, sizeof base_label);
    if (o.vs_model) {
        tuned.model_path = o.vs_model;
        tuned.label = o.vs_name ? o.vs_name : label_of(o.vs_model, vs_label, sizeof vs_label);
    } else {
        tuned.model_path = o.base_model;
        tuned.adapters = o.adapters;
        tuned.n_adapters = o.n_adapters;
        snprintf(vs_label, sizeof vs_label, "%s + %s%s", base.label,
                 label_of(o.adapters[0].path, adapter_label, sizeof adapter_label), o.n_adapters > 1 ? " + ..." : "");
        tuned.label = o.vs_name ? o.vs_name : vs_label;
    }
    if (!strcmp(base.label, tuned.label)) { /* two files of one name */
        base.label = "base";
        tuned.label = "fine-tuned";
    }
    rc = cmp_side_run(&o, ts, n_ex, &base);
    if (!rc) rc = cmp_side_run(&o, ts, n_ex, &tuned);
    if (!rc) rc = cmp_write_report(&o, ts, n_ex, &base, &tuned, lgpu_now_s() - t0);
    cmp_side_free(&base, n_ex);
    cmp_side_free(&tuned, n_ex);
    lgpu_testset_destroy(ts);
    return rc ? 1 : 0;
}
