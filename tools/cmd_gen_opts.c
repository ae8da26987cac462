/* Shared option table of run / chat / bench (see cmd_gen_opts.h). */
#include "cmd_gen_opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *gen_read_text(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - 1 - n, f); /* one byte kept for the NUL */
        if (n < cap - 1) break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) free(buf);
        buf = nb;
    }
    bool err = ferror(f);
    if (f != stdin) fclose(f);
    if (err || !buf) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

int gen_print_text(void *user, const char *text, size_t len) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

typedef enum { A_STR, A_INT, A_U32, A_FLOAT, A_U64, A_FLAG, A_STOP, A_LORA } arg_kind;

typedef struct opt {
    const char *l, *s; /* long, short (may be NULL) */
    arg_kind kind;
    size_t off;
    int cmds;
    const char *help;
} opt;

#define OFF(f) offsetof(gen_opts, f)
#define ALL (GO_RUN | GO_CHAT | GO_BENCH)
#define GEN (GO_RUN | GO_CHAT)
static const opt OPTS[] = {
    {"--model", "-m", A_STR, OFF(model), ALL,
     "model: GGUF file, HF directory, llama2.c .bin or ORG/NAME[:FILE] (default: the embedded " LGPU_MODEL_EMBEDDED_NAME ")"},
    {"--tokenizer", NULL, A_STR, OFF(tokenizer), ALL, "tokenizer file (tokenizer.bin / tokenizer.json / GGUF)"},
    {"--device", NULL, A_STR, OFF(device), ALL, "device: index, name substring or 'cpu' (default $LGPU_DEVICE)"},
    {"--prompt", "-p", A_STR, OFF(prompt), GO_RUN, "prompt text (empty: BOS only)"},
    {"--file", "-f", A_STR, OFF(prompt_file), GO_RUN, "read the prompt from a file"},
    {"--n-predict", "-n", A_INT, OFF(n_predict), GEN, "tokens to generate (-1: until end of generation)"},
    {"--ctx", "-c", A_U32, OFF(n_ctx), GEN, "context length (default: the model's)"},
    {"--batch", "-b", A_U32, OFF(n_batch), ALL, "max tokens per decode call (default 512)"},
    {"--lora", NULL, A_LORA, 0, ALL, "LoRA adapter FILE[:SCALE] (PEFT folder or GGUF; repeatable; scale 1)"},
    {"--kv-type", NULL, A_STR, OFF(kv_type), ALL, "KV cache type: auto (default: f16 on a GPU, f32 on the CPU), f16, f32"},
    {"--no-bos", NULL, A_FLAG, OFF(no_bos), GO_RUN, "do not prepend BOS to the prompt"},
    {"--ignore-eos", NULL, A_FLAG, OFF(ignore_eos), GEN, "keep generating past end-of-generation tokens"},
    {"--temp", NULL, A_FLOAT, OFF(sp.temperature), GEN, "temperature (0: greedy; default 0.8)"},
    {"--top-k", NULL, A_INT, OFF(sp.top_k), GEN, "top-k (0: off; default 40)"},
    {"--top-p", NULL, A_FLOAT, OFF(sp.top_p), GEN, "top-p (1: off; default 0.95)"},
    {"--min-p", NULL, A_FLOAT, OFF(sp.min_p), GEN, "min-p (0: off; default 0.05)"},
    {"--typical", NULL, A_FLOAT, OFF(sp.typical_p), GEN, "typical-p (1: off)"},
    {"--repeat-penalty", NULL, A_FLOAT, OFF(sp.repeat_penalty), GEN, "repetition penalty (1: off)"},
    {"--repeat-last-n", NULL, A_INT, OFF(sp.repeat_last_n), GEN, "tokens the penalties look at (-1: all; default 64)"},
    {"--presence-penalty", NULL, A_FLOAT, OFF(sp.presence_penalty), GEN, "presence penalty (0: off)"},
    {"--frequency-penalty", NULL, A_FLOAT, OFF(sp.frequency_penalty), GEN, "frequency penalty (0: off)"},
    {"--seed", "-s", A_U64, OFF(sp.seed), GEN, "RNG seed (default: random)"},
    {"--stop", NULL, A_STOP, 0, GEN, "stop string (repeatable)"},
    {"--template", NULL, A_STR, OFF(template_name), GO_CHAT, "chat template: chatml, llama2, llama3, zephyr"},
    {"--system", NULL, A_STR, OFF(system), GO_CHAT, "system message"},
    {"--verbose", "-v", A_FLAG, OFF(verbose), ALL, "more output on stderr"},
    {"--n-prompt", "-p", A_INT, OFF(bench_p), GO_BENCH, "prompt tokens of the pp test (0: skip; default 512)"},
    {"--n-gen", "-n", A_INT, OFF(bench_n), GO_BENCH, "generated tokens of the tg test (0: skip; default 128)"},
    {"--repetitions", "-r", A_INT, OFF(bench_r), GO_BENCH, "repetitions of each test (default 5)"},
    {"--seqs", NULL, A_INT, OFF(bench_s), GO_BENCH, "sequences generating together in the tg test (default 1)"},
};

static void print_help(FILE *f, int cmd, const char *usage_line) {
    fprintf(f, "usage: %s\n\noptions:\n", usage_line);
    for (size_t i = 0; i < sizeof OPTS / sizeof OPTS[0]; i++) {
        if (!(OPTS[i].cmds & cmd)) continue;
        char names[64];
        snprintf(names, sizeof names, "%s%s%s", OPTS[i].s ? OPTS[i].s : "", OPTS[i].s ? ", " : "", OPTS[i].l);
        fprintf(f, "  %-24s %s\n", names, OPTS[i].help);
    }
}

static int bad_value(const char *name, const char *v) {
    fprintf(stderr, "lgpu: bad value '%s' for %s\n", v, name);
    return 2;
}

static int set_value(const opt *op, const char *v, gen_opts *o) {
    char *end;
    void *field = (char *)o + op->off;
    errno = 0;
    switch (op->kind) {
    case A_STR: *(const char **)field = v; return 0;
    case A_INT: {
        long x = strtol(v, &end, 10);
        if (*end || errno || x < -2147483647L || x > 2147483647L) return bad_value(op->l, v);
        *(int *)field = (int)x;
        return 0;
    }
    case A_U32: {
        long long x = strtoll(v, &end, 10);
        if (*end || errno || x < 0 || x > 0xffffffffLL) return bad_value(op->l, v);
        *(uint32_t *)field = (uint32_t)x;
        return 0;
    }
    case A_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (*end || errno || v[0] == '-') return bad_value(op->l, v);
        *(uint64_t *)field = x;
        return 0;
    }
    case A_FLOAT: {
        float x = strtof(v, &end);
        if (*end || errno) return bad_value(op->l, v);
        *(float *)field = x;
        return 0;
    }
    case A_STOP:
        if (o->n_stops == GO_MAX_STOPS) {
            fprintf(stderr, "lgpu: at most %d --stop strings\n", GO_MAX_STOPS);
            return 2;
        }
        o->stops[o->n_stops++] = v;
        return 0;
    case A_LORA:
        if (o->n_loras == LGPU_LORA_MAX_STACK) {
            fprintf(stderr, "lgpu: at most %d --lora adapters\n", LGPU_LORA_MAX_STACK);
            return 2;
        }
        o->loras[o->n_loras++] = v;
        return 0;
    case A_FLAG: *(bool *)field = true; return 0;
    }
    return 2;
}

int gen_opts_parse(int argc, char **argv, int cmd, const char *usage_line, gen_opts *o) {
    memset(o, 0, sizeof *o);
    lgpu_sampler_params_default(&o->sp);
    o->n_predict = -1;
    o->bench_p = 512;
    o->bench_n = 128;
    o->bench_r = 5;
    o->bench_s = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help(stdout, cmd, usage_line);
            return 1;
        }
        /* --name=value */
        char name[64];
        const char *eq = strncmp(a, "--", 2) ? NULL : strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        if (nl >= sizeof name) nl = sizeof name - 1;
        memcpy(name, a, nl);
        name[nl] = 0;
        const opt *op = NULL;
        for (size_t k = 0; k < sizeof OPTS / sizeof OPTS[0] && !op; k++)
            if ((OPTS[k].cmds & cmd) && (!strcmp(name, OPTS[k].l) || (OPTS[k].s && !strcmp(name, OPTS[k].s))))
                op = &OPTS[k];
        if (!op) {
            fprintf(stderr, "lgpu: unknown option '%s'\n", a);
            print_help(stderr, cmd, usage_line);
            return 2;
        }
        const char *v = NULL;
        if (op->kind != A_FLAG) {
            if (eq) v = eq + 1;
            else if (i + 1 < argc) v = argv[++i];
            else {
                fprintf(stderr, "lgpu: %s needs a value\n", a);
                return 2;
            }
        }
        int st = set_value(op, v, o);
        if (st) return st;
    }
    if (!o->model) { /* the model built into liblgpu */
        o->model = LGPU_MODEL_EMBEDDED;
        fprintf(stderr, "lgpu: no -m given: using the embedded %s model\n", LGPU_MODEL_EMBEDDED_NAME);
    }
    return 0;
}

int gen_opts_load(const gen_opts *o, uint32_t n_seq, bool progress, lgpu_model **m, lgpu_ctx **c) {
    *m = NULL;
    *c = NULL;
    lgpu_model_params mp = {.path = o->model, .tokenizer_path = o->tokenizer, .device = o->device, .progress = progress};
    int st = lgpu_model_create(&mp, m);
    if (st) {
        fprintf(stderr, "lgpu: cannot load %s: %s (%s)\n", o->model, lgpu_last_error(), lgpu_strerror(st));
        return 1;
    }
    lgpu_ctx_params cp = lgpu_ctx_params_default();
    cp.n_ctx = o->n_ctx, cp.n_seq_max = n_seq, cp.n_batch = o->n_batch;
    if (!(st = lgpu_ctx_params_kv_type(&cp, o->kv_type))) st = lgpu_ctx_create(*m, &cp, c);
    if (st) {
        fprintf(stderr, "lgpu: cannot create a context: %s (%s)\n", lgpu_last_error(), lgpu_strerror(st));
        lgpu_model_destroy(*m);
        *m = NULL;
        return 1;
    }
    if (o->n_loras) {
        if ((st = lgpu_ctx_set_adapter_files(*c, o->loras, o->n_loras))) {
            fprintf(stderr, "lgpu: %s (%s)\n", lgpu_last_error(), lgpu_strerror(st));
            lgpu_ctx_destroy(*c);
            lgpu_model_destroy(*m);
            *c = NULL;
            *m = NULL;
            return 1;
        }
        for (int i = 0; i < o->n_loras; i++) fprintf(stderr, "lgpu: LoRA adapter %s\n", o->loras[i]);
    }
    return 0;
}
