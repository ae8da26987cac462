/* Generation loop: see gen.h. All buffers are sized at creation; a run
 * allocates only its stop matcher and grows its text/token lists. */
#include "lgpu/gen.h"

#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "lgpu/lgpu.h"
#include "lgpu/tokenizer.h"

struct lgpu_gen {
    lgpu_ctx *ctx;
    lgpu_tokenizer *tok; /* may be NULL (raw ids only) */
    int seq;
    uint32_t n_vocab, n_batch, n_ctx;
    lgpu_sampler *smp;
    lgpu_detok *detok;
    float *logits;
    bool have_logits;
    int32_t pending; /* sampled, emitted, not yet decoded; -1: none */
    int32_t *b_tok, *b_seq, *b_pos;
    int8_t *b_log;
    /* last run */
    int32_t *out_tok;
    int n_out;
    size_t cap_out;
    char *text;
    size_t text_len, text_cap, emitted;
    lgpu_gen_stats stats;
};

int lgpu_gen_create(lgpu_ctx *ctx, const lgpu_sampler_params *sp, lgpu_gen **out) {
    if (!ctx || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_gen_create: NULL argument");
    *out = NULL;
    lgpu_gen *g = calloc(1, sizeof *g);
    if (!g) return lgpu_set_error(LGPU_ENOMEM, "lgpu_gen_create");
    lgpu_model *m = lgpu_ctx_model(ctx);
    const lgpu_ctx_params *cp = lgpu_ctx_params_of(ctx);
    g->ctx = ctx;
    g->tok = lgpu_model_tokenizer(m);
    g->n_vocab = lgpu_model_hparams(m)->n_vocab;
    g->n_batch = cp->n_batch;
    g->n_ctx = cp->n_ctx;
    g->pending = -1;
    g->seq = -1;
    lgpu_sampler_params greedy;
    if (!sp) {
        lgpu_sampler_params_default(&greedy);
        greedy.temperature = 0;
        greedy.repeat_last_n = 0;
        greedy.seed = 0;
        sp = &greedy;
    }
    int st = lgpu_sampler_create(sp, &g->smp);
    if (!st && g->tok) st = lgpu_detok_create(g->tok, false, &g->detok);
    if (!st) st = lgpu_seq_create(ctx, &g->seq);
    if (st) goto fail;
    g->logits = malloc(g->n_vocab * sizeof *g->logits);
    g->b_tok = malloc(g->n_batch * sizeof *g->b_tok);
    g->b_seq = malloc(g->n_batch * sizeof *g->b_seq);
    g->b_pos = malloc(g->n_batch * sizeof *g->b_pos);
    g->b_log = malloc(g->n_batch);
    if (!g->logits || !g->b_tok || !g->b_seq || !g->b_pos || !g->b_log) {
        st = lgpu_set_error(LGPU_ENOMEM, "lgpu_gen_create: buffers");
        goto fail;
    }
    *out = g;
    return 0;
fail:
    lgpu_gen_destroy(g);
    return st;
}

void lgpu_gen_destroy(lgpu_gen *g) {
    if (!g) return;
    if (g->seq >= 0) lgpu_seq_destroy(g->ctx, g->seq);
    lgpu_sampler_destroy(g->smp);
    lgpu_detok_destroy(g->detok);
    free(g->logits);
    free(g->b_tok);
    free(g->b_seq);
    free(g->b_pos);
    free(g->b_log);
    free(g->out_tok);
    free(g->text);
    free(g);
}

int lgpu_gen_seq(const lgpu_gen *g) { return g ? g->seq : -1; }
const lgpu_gen_stats *lgpu_gen_stats_of(const lgpu_gen *g) { return g ? &g->stats : NULL; }

const int32_t *lgpu_gen_tokens(const lgpu_gen *g, int *n) {
    if (n) *n = g ? g->n_out : 0;
    return g ? g->out_tok : NULL;
}

const char *lgpu_gen_text(const lgpu_gen *g, bool full, size_t *len) {
    if (len) *len = !g ? 0 : full ? g->text_len : g->emitted;
    return g && g->text ? g->text : "";
}

int lgpu_gen_reset(lgpu_gen *g) {
    if (!g) return lgpu_set_error(LGPU_EINVAL, "lgpu_gen_reset: NULL");
    lgpu_seq_destroy(g->ctx, g->seq);
    g->seq = -1;
    int st = lgpu_seq_create(g->ctx, &g->seq);
    if (st) return st;
    lgpu_sampler_reset(g->smp);
    if (g->detok) lgpu_detok_reset(g->detok, true);
    g->have_logits = false;
    g->pending = -1;
    g->n_out = 0;
    g->text_len = g->emitted = 0;
    return 0;
}

/* Decodes (pending token, then) tokens[0..n) in n_batch chunks, logits of the last. */
static int decode_all(lgpu_gen *g, const int32_t *tokens, int n) {
    const int has_pending = g->pending >= 0, total = n + has_pending;
    int len = lgpu_seq_len(g->ctx, g->seq);
    if (len < 0) return len;
    if ((uint32_t)(len + total) > g->n_ctx)
        return lgpu_set_error(LGPU_ERANGE, "generation: %d tokens do not fit in the context (%d of %u used)", total,
                              len, g->n_ctx);
    for (int done = 0, k; done < total; done += k) {
        k = total - done < (int)g->n_batch ? total - done : (int)g->n_batch;
        for (int i = 0; i < k; i++) {
            int j = done + i; /* index into [pending] + tokens */
            g->b_tok[i] = has_pending ? (j == 0 ? g->pending : tokens[j - 1]) : tokens[j];
            g->b_seq[i] = g->seq;
            g->b_pos[i] = len + j;
            g->b_log[i] = j == total - 1;
        }
        lgpu_batch b = {.n = k, .token = g->b_tok, .seq = g->b_seq, .pos = g->b_pos, .logits = g->b_log};
        int st = lgpu_decode(g->ctx, &b, g->logits);
        if (st) return st;
        g->pending = -1;
    }
    if (total > 0) g->have_logits = true;
    return 0;
}

static int emit_tokens_text(lgpu_gen *g, const int32_t *tokens, int n, lgpu_gen_text_fn on_text, void *user) {
    if (!g->detok) return 0;
    for (int i = 0; i < n; i++) {
        const char *t;
        size_t tl;
        int st = lgpu_detok_push(g->detok, tokens[i], &t, &tl);
        if (st) return st;
        if (on_text && tl) on_text(user, t, tl);
    }
    return 0;
}

int lgpu_gen_feed(lgpu_gen *g, const int32_t *tokens, int n, lgpu_gen_text_fn on_text, void *user) {
    if (!g || n < 0 || (n && !tokens)) return lgpu_set_error(LGPU_EINVAL, "lgpu_gen_feed: bad arguments");
    double t0 = lgpu_now_s();
    int reused = 0, st;
    if (lgpu_seq_len(g->ctx, g->seq) == 0 && g->pending < 0 && n > 0) {
        reused = lgpu_seq_reuse_prefix(g->ctx, g->seq, tokens, n);
        if (reused < 0) return reused;
    }
    if ((st = decode_all(g, tokens + reused, n - reused))) return st;
    for (int i = 0; i < n; i++)
        if ((st = lgpu_sampler_accept(g->smp, tokens[i]))) return st;
    if ((st = emit_tokens_text(g, tokens, n, on_text, user))) return st;
    g->stats.n_prompt += n - reused;
    g->stats.n_reused += reused;
    g->stats.prompt_s += lgpu_now_s() - t0;
    return 0;
}

int lgpu_gen_feed_text(lgpu_gen *g, const char *text, bool add_special, bool parse_special, lgpu_gen_text_fn on_text,
                       void *user) {
    if (!g || !text) return lgpu_set_error(LGPU_EINVAL, "lgpu_gen_feed_text: NULL argument");
    if (!g->tok) return lgpu_set_error(LGPU_EINVAL, "lgpu_gen_feed_text: the model has no tokenizer");
    lgpu_tokens t = {0};
    int st = lgpu_tokenizer_encode(g->tok, text, (size_t)-1, add_special, parse_special, &t);
    if (!st) st = lgpu_gen_feed(g, t.ids, (int)t.n, on_text, user);
    lgpu_tokens_destroy(&t);
    return st;
}

static int text_append(lgpu_gen *g, const char *s, size_t n) {
    int st = LGPU_GROW(g->text, g->text_cap, g->text_len + n + 1, 1024, "generation text");
    if (st) return st;
    memcpy(g->text + g->text_len, s, n);
    g->text_len += n;
    g->text[g->text_len] = 0;
    return 0;
}

static int tok_append(lgpu_gen *g, int32_t t) {
    int st = LGPU_GROW(g->out_tok, g->cap_out, (size_t)g->n_out + 1, 256, "generation tokens");
    if (st) return st;
    g->out_tok[g->n_out++] = t;
    return 0;
}

/* Emits text[emitted..upto) through the callback; returns its verdict. */
static int emit_upto(lgpu_gen *g, const lgpu_gen_params *p, size_t upto) {
    int r = 0;
    if (upto > g->emitted) {
        if (p->on_text) r = p->on_text(p->user, g->text + g->emitted, upto - g->emitted);
        g->emitted = upto;
    }
    return r;
}

int lgpu_gen_run(lgpu_gen *g, const lgpu_gen_params *p, lgpu_gen_finish *finish) {
    if (!g || !p) return lgpu_set_error(LGPU_EINVAL, "lgpu_gen_run: NULL argument");
    g->n_out = 0;
    g->text_len = g->emitted = 0;
    if (g->text) g->text[0] = 0;
    int st = 0;
    if (g->pending >= 0 && (st = lgpu_gen_feed(g, NULL, 0, NULL, NULL))) return st;
    if (!g->have_logits) return lgpu_set_error(LGPU_EINVAL, "lgpu_gen_run: feed a prompt first");
    lgpu_stop *stop = NULL;
    if ((st = lgpu_stop_create(p->stops, p->n_stops, &stop))) return st;
    double t0 = lgpu_now_s();
    lgpu_gen_finish why = LGPU_GEN_LENGTH;
    size_t safe = 0;
    for (;;) {
        if (p->n_predict >= 0 && g->n_out >= p->n_predict) break;
        int32_t t = lgpu_sampler_sample(g->smp, g->logits, (int32_t)g->n_vocab, NULL);
        if (t < 0) {
            st = t;
            break;
        }
        if ((st = lgpu_sampler_accept(g->smp, t))) break;
        if (!p->ignore_eog && g->tok && lgpu_tokenizer_is_eog(g->tok, t)) {
            why = LGPU_GEN_EOG;
            break;
        }
        g->stats.n_gen++;
        if ((st = tok_append(g, t))) break;
        if (g->detok) {
            const char *piece;
            size_t pl;
            if ((st = lgpu_detok_push(g->detok, t, &piece, &pl)) || (st = text_append(g, piece, pl))) break;
        }
        lgpu_stop_result sr;
        int found = lgpu_stop_scan(stop, g->text ? g->text : "", g->text_len, safe, &sr);
        if (found < 0) {
            st = found;
            break;
        }
        if (found) {
            emit_upto(g, p, sr.stop_pos);
            g->pending = t;
            why = LGPU_GEN_STOP;
            break;
        }
        safe = sr.safe_len;
        if (emit_upto(g, p, safe)) {
            g->pending = t;
            why = LGPU_GEN_CANCEL;
            break;
        }
        if (p->n_predict >= 0 && g->n_out >= p->n_predict) {
            g->pending = t;
            break;
        }
        int len = lgpu_seq_len(g->ctx, g->seq);
        if ((uint32_t)len >= g->n_ctx) {
            why = LGPU_GEN_CTX;
            break;
        }
        int32_t pos = len;
        int8_t want = 1;
        lgpu_batch b = {.n = 1, .token = &t, .seq = &g->seq, .pos = &pos, .logits = &want};
        if ((st = lgpu_decode(g->ctx, &b, g->logits))) break;
    }
    if (!st && why != LGPU_GEN_STOP && why != LGPU_GEN_CANCEL) {
        /* generation is over: nothing can start a stop string any more */
        if (g->detok) {
            const char *rest;
            size_t rl;
            if (!(st = lgpu_detok_flush(g->detok, &rest, &rl))) st = text_append(g, rest, rl);
        }
        if (!st) emit_upto(g, p, g->text_len);
    }
    g->stats.gen_s += lgpu_now_s() - t0;
    lgpu_stop_destroy(stop);
    if (finish) *finish = why;
    return st;
}
