/* lgpu-eval compare: two models on the same data. compare.c parses the
 * options and runs the comparison, compare_side.c evaluates one side (a
 * model, or the base with adapters), compare_report.c writes the report. */
#ifndef LGPU_EVAL_COMPARE_H
#define LGPU_EVAL_COMPARE_H

#include <stdbool.h>
#include <stdint.h>

#include "lgpu/gen.h"
#include "lgpu/metrics.h"
#include "lgpu/testset.h"

#define CMP_MAX_ADAPTERS 8
#define CMP_MAX_STOPS 16

typedef struct cmp_adapter {
    const char *path;
    float scale;
} cmp_adapter;

/* What is compared and how. */
typedef struct cmp_opts {
    const char *base_model, *vs_model; /* vs_model NULL: the fine-tuned side is base + adapters */
    const char *base_name, *vs_name;   /* labels in the report */
    cmp_adapter adapters[CMP_MAX_ADAPTERS];
    int n_adapters;
    char adapter_paths[CMP_MAX_ADAPTERS][1024]; /* PATH of PATH:SCALE */
    const char *tests, *ppl, *out_dir;
    const char *tokenizer, *device, *template_name;
    lgpu_metric metric;
    double pass_threshold;
    int max_tokens, ctx, chunks, limit; /* ctx 0: min(512, the model's context) */
    float temp;
    uint64_t seed;
    const char *stops[CMP_MAX_STOPS];
    int n_stops;
    bool quiet;
} cmp_opts;

/* One example's outcome on one side. */
typedef struct cmp_answer {
    char *output; /* as generated, cut before a stop string */
    double score;
    bool pass;
    int n_prompt, n_gen;
    double seconds; /* prompt + generation */
    const char *finish; /* "length", "eog", "stop", "ctx" */
    char *error;        /* the example could not run (prompt too long, template refused it) */
} cmp_answer;

/* One side's results. */
typedef struct cmp_side {
    const char *key;   /* "base" or "tuned" (JSON keys) */
    const char *label; /* shown in the report */
    const char *model_path;
    const cmp_adapter *adapters;
    int n_adapters;
    char *desc;        /* lgpu_model_desc */
    uint64_t n_params;
    int32_t n_vocab;
    char *chat_template; /* name of the template used for chats */
    bool have_ppl;
    lgpu_ppl_result ppl;
    int ppl_chunk;     /* text files: tokens per chunk */
    int ppl_truncated; /* JSONL lines cut to the context */
    cmp_answer *answers; /* one per example */
    int64_t gen_tokens;
    double gen_seconds, prompt_seconds, load_seconds, ppl_seconds;
} cmp_side;


/* Evaluates one side: loads it, scores the perplexity data and answers the
 * test set (ts may be NULL). Prints the error and returns nonzero on
 * failure. */
int cmp_side_run(const cmp_opts *o, const lgpu_testset *ts, size_t n_examples, cmp_side *s);
void cmp_side_free(cmp_side *s, size_t n_examples);

/* Writes DIR/compare.{md,html,json} (+ charts). Prints the error and
 * returns nonzero on failure. */
int cmp_write_report(const cmp_opts *o, const lgpu_testset *ts, size_t n_examples, const cmp_side *base,
                     const cmp_side *tuned, double wall_s);

#endif
