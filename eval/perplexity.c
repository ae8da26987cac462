/* lgpu-eval perplexity [-m MODEL] -f TEXT [-c CTX] [--chunks N] [--device SEL]
 * Output as llama-perplexity: "[1]12.3456,[2]..." per chunk on stdout, then
 * "Final estimate: PPL = X +/- Y". The method is in lgpu/gen.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "lgpu/gen.h"
#include "lgpu/lora.h"
#include "lgpu/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: lgpu-eval perplexity [-m MODEL] -f TEXT [-c CTX] [options]\n\n"
               "  -m, --model MODEL    GGUF file, HF directory, llama2.c .bin or ORG/NAME[:FILE]\n"
               "                       (default: the embedded " LGPU_MODEL_EMBEDDED_NAME " model)\n"
               "  -f, --file TEXT      text to score (tokenized with BOS at the start)\n"
               "  -c, --ctx N          chunk / context length (default 512)\n"
               "  -b, --batch N        tokens per decode call (default min(ctx, 512))\n"
               "  --chunks N           score at most N chunks (default all)\n"
               "  --lora FILE[:SCALE]  LoRA adapter applied unmerged (PEFT folder or GGUF; repeatable)\n"
               "  --tokenizer FILE     tokenizer (tokenizer.bin / tokenizer.json / GGUF)\n"
               "  --device SEL         device: index, name substring or 'cpu'\n");
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (n < cap) break;
        char *p = realloc(buf, cap *= 2);
        if (!p) free(buf);
        buf = p;
    }
    fclose(f);
    *len = n;
    return buf;
}

static int print_chunk(void *user, int chunk, double ppl) {
    (void)user;
    printf("[%d]%.4lf,", chunk + 1, ppl);
    fflush(stdout);
    return 0;
}

static int parse_int(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 0 || v > 1 << 24) return -1;
    *out = (int)v;
    return 0;
}

int lgpu_eval_perplexity(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *tok_path = NULL, *device = NULL;
    int n_ctx = 512, n_batch = 0, chunks = 0, n_loras = 0;
    const char *loras[LGPU_LORA_MAX_STACK];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "lgpu-eval perplexity: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) file = v;
        else if (!strcmp(a, "--tokenizer")) tok_path = v;
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--lora") && n_loras < LGPU_LORA_MAX_STACK) loras[n_loras++] = v;
        else if ((!strcmp(a, "-c") || !strcmp(a, "--ctx")) && !parse_int(v, &n_ctx)) continue;
        else if ((!strcmp(a, "-b") || !strcmp(a, "--batch")) && !parse_int(v, &n_batch)) continue;
        else if (!strcmp(a, "--chunks") && !parse_int(v, &chunks)) continue;
        else {
            fprintf(stderr, "lgpu-eval perplexity: bad option %s %s\n", a, v);
            usage(stderr);
            return 2;
        }
    }
    if (!file || n_ctx < 8) {
        usage(stderr);
        return 2;
    }
    if (!model) { /* the model built into liblgpu */
        model = LGPU_MODEL_EMBEDDED;
        fprintf(stderr, "lgpu-eval perplexity: no -m given: using the embedded %s model\n", LGPU_MODEL_EMBEDDED_NAME);
    }
    if (!n_batch) n_batch = n_ctx < 512 ? n_ctx : 512;
    size_t text_len;
    char *text = read_all(file, &text_len);
    if (!text) {
        fprintf(stderr, "lgpu-eval perplexity: cannot read %s\n", file);
        return 1;
    }
    lgpu_model *m = NULL;
    lgpu_ctx *c = NULL;
    lgpu_tokens toks = {0};
    int rc = 1, st;
    lgpu_model_params mp = {.path = model, .tokenizer_path = tok_path, .device = device, .progress = true};
    if ((st = lgpu_model_create(&mp, &m))) goto fail;
    lgpu_tokenizer *tok = lgpu_model_tokenizer(m);
    if (!tok) {
        fprintf(stderr, "lgpu-eval perplexity: the model has no tokenizer; pass --tokenizer FILE\n");
        goto out;
    }
    lgpu_ctx_params cp = lgpu_ctx_params_default();
    cp.n_ctx = (uint32_t)n_ctx, cp.n_seq_max = 1, cp.n_batch = (uint32_t)n_batch;
    if ((st = lgpu_ctx_create(m, &cp, &c))) goto fail;
    if (n_loras && (st = lgpu_ctx_set_adapter_files(c, loras, n_loras))) goto fail;
    for (int i = 0; i < n_loras; i++) fprintf(stderr, "LoRA adapter %s\n", loras[i]);
    /* the whole file, BOS first when the tokenizer adds one (as llama.cpp) */
    if ((st = lgpu_tokenizer_encode(tok, text, text_len, true, false, &toks))) goto fail;
    bool add_bos = lgpu_tokenizer_add_bos(tok);
    fprintf(stderr, "%s\nperplexity: %zu tokens, %zu chunks of %d, batch %d\n", lgpu_model_desc(m), toks.n,
            toks.n / (size_t)n_ctx, n_ctx, n_batch);
    lgpu_ppl_result r;
    st = lgpu_perplexity(c, toks.ids, (int64_t)toks.n, n_ctx, chunks, add_bos ? lgpu_tokenizer_bos(tok) : -1,
                         print_chunk, NULL, &r);
    printf("\n");
    if (st) goto fail;
    if (isnan(r.ppl_err))
        printf("Final estimate: PPL = %.4lf (unexpected non-positive variance of log(prob))\n", r.ppl);
    else
        printf("Final estimate: PPL = %.4lf +/- %.5lf\n", r.ppl, r.ppl_err);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "lgpu-eval perplexity: %s (%s)\n", lgpu_last_error(), lgpu_strerror(st));
out:
    lgpu_tokens_destroy(&toks);
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
    free(text);
    return rc;
}
