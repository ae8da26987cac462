/* One side of a comparison: load the model, score the perplexity data, then
 * answer every test example with the generator, greedy unless asked
 * otherwise, and score each answer with its metric. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compare.h"
#include "lgpu/llama.h"
#include "lgpu/lora.h"
#include "lgpu/tokenizer.h"

/* ---- progress on stderr: a rewritten line on a terminal, else a line every
 * few seconds ---- */
typedef struct progress {
    bool tty, quiet, shown;
    double last;
} progress;

static void progress_show(progress *p, bool last, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void progress_show(progress *p, bool last, const char *fmt, ...) {
    if (p->quiet) return;
    double now = lgpu_now_s();
    if (!p->tty && !last && now - p->last < 2.0) return;
    p->last = now;
    va_list ap;
    va_start(ap, fmt);
    if (p->tty) fputs("\r\033[K", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (!p->tty || last) fputc('\n', stderr);
    p->shown = !last;
}

/* ---- adapters ---- */

typedef struct side_state {
    const cmp_opts *o;
    cmp_side *s;
    lgpu_model *m;
    lgpu_ctx *c;
    lgpu_tokenizer *tok;
    lgpu_lora *loras[CMP_MAX_ADAPTERS];
    int chunk; /* perplexity chunk: --ctx, or min(512, n_ctx) */
    progress prog;
} side_state;

/* Attaches the side's adapters to a sequence (lgpu_seq_init_fn): for the
 * perplexity chunks and lines, and for the generator's sequence after each
 * reset. Each sequence is empty here, as lgpu_seq_set_adapters needs. */
static int attach_adapters(void *user, lgpu_ctx *ctx, int seq) {
    side_state *st = user;
    if (!st->s->n_adapters) return 0;
    float scales[CMP_MAX_ADAPTERS];
    for (int i = 0; i < st->s->n_adapters; i++) scales[i] = st->s->adapters[i].scale;
    return lgpu_seq_set_adapters(ctx, seq, (const lgpu_lora *const *)st->loras, scales, st->s->n_adapters);
}

static int load_adapters(side_state *st) {
    for (int i = 0; i < st->s->n_adapters; i++) {
        lgpu_lora_params lp = {.path = st->s->adapters[i].path};
        int rc = lgpu_lora_create(st->m, &lp, &st->loras[i]);
        if (rc) return rc;
    }
    return 0;
}

/* ---- perplexity ---- */

static bool is_jsonl(const char *path) {
    size_t n = strlen(path);
    return (n > 6 && !strcmp(path + n - 6, ".jsonl")) || (n > 7 && !strcmp(path + n - 7, ".ndjson"));
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *p = realloc(buf, (cap *= 2) + 1);
        if (!p) free(buf);
        buf = p;
    }
    bool err = ferror(f);
    fclose(f);
    if (!buf || err) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* BOS first when the tokenizer adds one and the text did not write it. */
static int encode(const lgpu_tokenizer *tok, const char *text, bool parse_special, lgpu_tokens *out) {
    out->n = 0;
    int rc = lgpu_tokenizer_encode(tok, text, (size_t)-1, false, parse_special, out);
    int32_t bos = lgpu_tokenizer_bos(tok);
    if (rc || !lgpu_tokenizer_add_bos(tok) || bos < 0 || (out->n && out->ids[0] == bos)) return rc;
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 16;
        int32_t *ids = realloc(out->ids, cap * sizeof *ids);
        if (!ids) return lgpu_set_error(LGPU_ENOMEM, "out of memory");
        out->ids = ids;
        out->cap = cap;
    }
    memmove(out->ids + 1, out->ids, out->n * sizeof *out->ids);
    out->ids[0] = bos;
    out->n++;
    return 0;
}

typedef struct chunk_user {
    side_state *st;
    int n_chunks;
} chunk_user;

static int on_chunk(void *user, int chunk, double ppl) {
    chunk_user *u = user;
    progress_show(&u->st->prog, false, "compare: %s: perplexity chunk %d/%d, %.4f so far", u->st->s->label, chunk + 1,
                  u->n_chunks, ppl);
    return 0;
}

static int ppl_text(side_state *st) {
    const cmp_opts *o = st->o;
    size_t len;
    char *text = read_file(o->ppl, &len);
    if (!text) return lgpu_set_error(LGPU_EIO, "cannot read %s", o->ppl);
    lgpu_tokens toks = {0};
    int rc = lgpu_tokenizer_encode(st->tok, text, len, true, false, &toks);
    free(text);
    int chunk = st->chunk;
    size_t n_chunks = toks.n / (size_t)chunk;
    if (o->chunks > 0 && (size_t)o->chunks < n_chunks) n_chunks = (size_t)o->chunks;
    chunk_user u = {st, (int)n_chunks};
    int32_t bos = lgpu_tokenizer_add_bos(st->tok) ? lgpu_tokenizer_bos(st->tok) : -1;
    if (!rc)
        rc = lgpu_perplexity_init(st->c, toks.ids, (int64_t)toks.n, chunk, o->chunks, bos, on_chunk, &u,
                                  attach_adapters, st, &st->s->ppl);
    lgpu_tokens_destroy(&toks);
    return rc;
}

static int ppl_jsonl(side_state *st) {
    const cmp_opts *o = st->o;
    lgpu_testset_params tp = {.path = o->ppl, .metric = o->metric, .perplexity = true};
    lgpu_testset *ts;
    int rc = lgpu_testset_create(&tp, &ts);
    if (rc) return rc;
    size_t n = lgpu_testset_size(ts);
    uint32_t n_ctx = lgpu_ctx_params_of(st->c)->n_ctx;
    lgpu_nll_acc acc = {0};
    lgpu_tokens toks = {0};
    for (size_t i = 0; i < n && !rc; i++) {
        const lgpu_test_example *ex = lgpu_testset_get(ts, i);
        char *text;
        bool special;
        if ((rc = lgpu_test_render_text(ex, st->tok, o->template_name, &text, &special))) {
            rc = lgpu_set_error(rc, "%s:%llu: %s", o->ppl, (unsigned long long)ex->line, lgpu_last_error());
            break;
        }
        rc = encode(st->tok, text, special, &toks);
        free(text);
        if (rc) break;
        if (toks.n > n_ctx) toks.n = n_ctx, st->s->ppl_truncated++;
        if (toks.n >= 2) rc = lgpu_score_tokens(st->c, toks.ids, (int)toks.n, 0, attach_adapters, st, &acc);
        progress_show(&st->prog, false, "compare: %s: perplexity line %zu/%zu", st->s->label, i + 1, n);
    }
    lgpu_tokens_destroy(&toks);
    lgpu_testset_destroy(ts);
    if (!rc) rc = lgpu_nll_result(&acc, &st->s->ppl);
    return rc;
}

/* ---- answers ---- */

static const char *finish_name(lgpu_gen_finish f) {
    switch (f) {
    case LGPU_GEN_LENGTH: return "length";
    case LGPU_GEN_EOG: return "eog";
    case LGPU_GEN_STOP: return "stop";
    case LGPU_GEN_CTX: return "ctx";
    default: return "cancel";
    }
}

static int answer(side_state *st, lgpu_gen *g, const lgpu_test_example *ex, cmp_answer *a) {
    const cmp_opts *o = st->o;
    int rc = lgpu_gen_reset(g);
    if (!rc) rc = attach_adapters(st, st->c, lgpu_gen_seq(g));
    if (rc) return rc;
    char *prompt;
    bool special;
    rc = lgpu_test_render_prompt(ex, st->tok, o->template_name, &prompt, &special);
    if (rc == LGPU_EINVAL) { /* the template refuses these messages: this example fails */
        a->error = strdup(lgpu_last_error());
        a->output = strdup("");
        return a->error && a->output ? 0 : LGPU_ENOMEM;
    }
    if (rc) return rc;
    lgpu_tokens toks = {0};
    rc = encode(st->tok, prompt, special, &toks);
    free(prompt);
    uint32_t n_ctx = lgpu_ctx_params_of(st->c)->n_ctx;
    if (!rc && toks.n >= n_ctx) {
        char msg[160];
        snprintf(msg, sizeof msg, "the prompt's %zu tokens do not fit the context of %u", toks.n, n_ctx);
        a->error = strdup(msg);
        a->output = strdup("");
        a->n_prompt = (int)toks.n;
        lgpu_tokens_destroy(&toks);
        return a->error && a->output ? 0 : LGPU_ENOMEM;
    }
    double t0 = lgpu_now_s();
    lgpu_gen_stats before = *lgpu_gen_stats_of(g); /* the stats add up over runs */
    if (!rc) rc = lgpu_gen_feed(g, toks.ids, (int)toks.n, NULL, NULL);
    a->n_prompt = (int)toks.n;
    lgpu_tokens_destroy(&toks);
    if (rc) return rc;
    const char *stops[CMP_MAX_STOPS + LGPU_CHAT_MAX_STOPS];
    int n_stops = 0;
    for (int i = 0; i < o->n_stops; i++) stops[n_stops++] = o->stops[i];
    if (ex->messages) {
        lgpu_chat_template t;
        if (!lgpu_chat_template_of(st->tok, o->template_name, &t)) n_stops += lgpu_chat_stops(t, stops + n_stops);
    }
    lgpu_gen_params gp = {.n_predict = o->max_tokens, .stops = stops, .n_stops = n_stops};
    lgpu_gen_finish why;
    if ((rc = lgpu_gen_run(g, &gp, &why))) return rc;
    a->seconds = lgpu_now_s() - t0;
    size_t len;
    const char *text = lgpu_gen_text(g, false, &len);
    if (!(a->output = strndup(text ? text : "", text ? len : 0))) return lgpu_set_error(LGPU_ENOMEM, "out of memory");
    a->finish = finish_name(why);
    const lgpu_gen_stats *gs = lgpu_gen_stats_of(g);
    a->n_gen = gs->n_gen - before.n_gen;
    st->s->gen_tokens += a->n_gen;
    st->s->gen_seconds += gs->gen_s - before.gen_s;
    st->s->prompt_seconds += gs->prompt_s - before.prompt_s;
    if ((rc = lgpu_metric_score(ex->metric, a->output, ex->expected, &a->score))) return rc;
    a->pass = lgpu_metric_pass(ex->metric, a->score, o->pass_threshold);
    return 0;
}

static int answers(side_state *st, const lgpu_testset *ts, size_t n) {
    const cmp_opts *o = st->o;
    lgpu_sampler_params sp, *spp = NULL;
    if (o->temp > 0) {
        lgpu_sampler_params_default(&sp);
        sp.temperature = o->temp;
        sp.seed = o->seed;
        spp = &sp;
    }
    lgpu_gen *g;
    int rc = lgpu_gen_create(st->c, spp, &g);
    if (rc) return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        const lgpu_test_example *ex = lgpu_testset_get(ts, i);
        rc = answer(st, g, ex, &st->s->answers[i]);
        if (rc) {
            char where[200];
            if (ex->id) snprintf(where, sizeof where, "%s:%llu (id \"%s\")", o->tests, (unsigned long long)ex->line, ex->id);
            else snprintf(where, sizeof where, "%s:%llu", o->tests, (unsigned long long)ex->line);
            rc = lgpu_set_error(rc, "%s: %s", where, lgpu_last_error());
            break;
        }
        double tps = st->s->gen_seconds > 0 ? (double)st->s->gen_tokens / st->s->gen_seconds : 0;
        progress_show(&st->prog, i + 1 == n, "compare: %s: example %zu/%zu, %lld tokens generated, %.1f tokens/s",
                      st->s->label, i + 1, n, (long long)st->s->gen_tokens, tps);
    }
    lgpu_gen_destroy(g);
    return rc;
}

/* ---- the side ---- */

int cmp_side_run(const cmp_opts *o, const lgpu_testset *ts, size_t n_examples, cmp_side *s) {
    side_state st = {.o = o, .s = s, .prog = {.tty = isatty(2), .quiet = o->quiet}};
    int rc;
    double t0 = lgpu_now_s();
    if (n_examples && !(s->answers = calloc(n_examples, sizeof *s->answers))) {
        fprintf(stderr, "lgpu-eval compare: out of memory\n");
        return 1;
    }
    lgpu_model_params mp = {.path = s->model_path, .tokenizer_path = o->tokenizer, .device = o->device,
                            .progress = !o->quiet};
    if ((rc = lgpu_model_create(&mp, &st.m))) {
        fprintf(stderr, "lgpu-eval compare: %s: cannot load %s: %s (%s)\n", s->label, s->model_path,
                lgpu_last_error(), lgpu_strerror(rc));
        return 1;
    }
    s->desc = strdup(lgpu_model_desc(st.m));
    s->n_params = lgpu_model_n_params(st.m);
    s->n_vocab = (int32_t)lgpu_model_hparams(st.m)->n_vocab;
    st.tok = lgpu_model_tokenizer(st.m);
    if (!st.tok) {
        fprintf(stderr, "lgpu-eval compare: %s: %s has no tokenizer; pass --tokenizer FILE\n", s->label, s->model_path);
        lgpu_model_destroy(st.m);
        return 1;
    }
    lgpu_chat_template t;
    if (!lgpu_chat_template_of(st.tok, o->template_name, &t)) s->chat_template = strdup(lgpu_chat_name(t));
    lgpu_ctx_params cp = lgpu_ctx_params_default();
    cp.n_seq_max = 1;
    if ((rc = load_adapters(&st)) || (rc = lgpu_ctx_create(st.m, &cp, &st.c))) goto fail;
    uint32_t n_ctx = lgpu_ctx_params_of(st.c)->n_ctx;
    if (o->ctx > (int)n_ctx) {
        rc = lgpu_set_error(LGPU_EINVAL, "--ctx %d exceeds the model's context of %u", o->ctx, n_ctx);
        goto fail;
    }
    st.chunk = o->ctx ? o->ctx : n_ctx < 512 ? (int)n_ctx : 512;
    s->ppl_chunk = st.chunk;
    s->load_seconds = lgpu_now_s() - t0;
    if (o->ppl) {
        double tp = lgpu_now_s();
        rc = is_jsonl(o->ppl) ? ppl_jsonl(&st) : ppl_text(&st);
        if (rc) goto fail;
        s->have_ppl = true;
        s->ppl_seconds = lgpu_now_s() - tp;
        progress_show(&st.prog, true, "compare: %s: perplexity %.4f over %lld tokens", s->label, s->ppl.ppl,
                      (long long)s->ppl.count);
    }
    if (ts && (rc = answers(&st, ts, n_examples))) goto fail;
    rc = 0;
    goto out;
fail:
    if (st.prog.tty && st.prog.shown) fputc('\n', stderr);
    fprintf(stderr, "lgpu-eval compare: %s (%s): %s (%s)\n", s->label, s->model_path, lgpu_last_error(),
            lgpu_strerror(rc));
    rc = 1;
out:
    for (int i = 0; i < CMP_MAX_ADAPTERS; i++) lgpu_lora_destroy(st.loras[i]);
    lgpu_ctx_destroy(st.c);
    lgpu_model_destroy(st.m);
    return rc;
}

void cmp_side_free(cmp_side *s, size_t n_examples) {
    for (size_t i = 0; s->answers && i < n_examples; i++) {
        free(s->answers[i].output);
        free(s->answers[i].error);
    }
    free(s->answers);
    free(s->desc);
    free(s->chat_template);
    memset(s, 0, sizeof *s);
}
