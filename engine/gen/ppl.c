/* Perplexity over chunks and the NLL of a text (gen.h). A sequence is
 * decoded in n_batch pieces with logits only for the scored positions; each
 * piece's rows are scored as soon as they are decoded, so memory is one
 * piece of logits whatever the text's length. */
#include "lgpu/gen.h"

#include <math.h>
#include <stdlib.h>

/* -log softmax(logits)[tok], as llama.cpp's log_softmax (float max, double sum). */
static double nll_of(const float *logits, int n_vocab, int32_t tok) {
    float max = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > max) max = logits[i];
    double sum = 0;
    for (int i = 0; i < n_vocab; i++) sum += expf(logits[i] - max);
    return -((double)(logits[tok] - max) - log(sum));
}

/* One batch's worth of token, sequence, position and logits-flag arrays. */
typedef struct scorer {
    lgpu_ctx *ctx;
    int nb, n_vocab;
    int32_t *tk, *sq, *ps;
    int8_t *lg;
} scorer;

static int scorer_init(scorer *s, lgpu_ctx *ctx) {
    s->ctx = ctx;
    s->nb = (int)lgpu_ctx_params_of(ctx)->n_batch;
    s->n_vocab = (int)lgpu_model_hparams(lgpu_ctx_model(ctx))->n_vocab;
    s->tk = malloc((size_t)s->nb * sizeof *s->tk);
    s->sq = malloc((size_t)s->nb * sizeof *s->sq);
    s->ps = malloc((size_t)s->nb * sizeof *s->ps);
    s->lg = malloc((size_t)s->nb);
    if (!s->tk || !s->sq || !s->ps || !s->lg) return lgpu_set_error(LGPU_ENOMEM, "scoring: batch of %d", s->nb);
    return 0;
}

static void scorer_free(scorer *s) {
    free(s->tk);
    free(s->sq);
    free(s->ps);
    free(s->lg);
}

/* Decodes t[0..n) (t[0] replaced by bos when bos >= 0) on a new sequence
 * and adds the NLLs of t[j+1] at j in [first, n-1) to acc. */
static int score_seq(const scorer *s, const int32_t *t, int n, int32_t bos, int first, lgpu_seq_init_fn seq_init,
                     void *init_user, lgpu_nll_acc *acc) {
    int seq, st;
    if ((st = lgpu_seq_create(s->ctx, &seq))) return st;
    if (seq_init && (st = seq_init(init_user, s->ctx, seq))) goto done;
    for (int b0 = 0; b0 < n; b0 += s->nb) {
        int m = n - b0 < s->nb ? n - b0 : s->nb;
        for (int i = 0; i < m; i++) {
            int p = b0 + i;
            s->tk[i] = p == 0 && bos >= 0 ? bos : t[p];
            s->sq[i] = seq;
            s->ps[i] = p;
            s->lg[i] = p >= first;
        }
        lgpu_batch b = {.n = m, .token = s->tk, .seq = s->sq, .pos = s->ps, .logits = s->lg};
        const float *rows;
        if ((st = lgpu_decode_rows(s->ctx, &b, &rows))) goto done;
        for (int i = 0, r = 0; i < m; i++) {
            if (!s->lg[i]) continue;
            int p = b0 + i;
            if (p < n - 1) {
                double v = nll_of(rows + (size_t)r * s->n_vocab, s->n_vocab, t[p + 1]);
                acc->nll += v;
                acc->nll2 += v * v;
                acc->count++;
            }
            r++;
        }
    }
done:
    lgpu_seq_destroy(s->ctx, seq);
    return st;
}

int lgpu_nll_result(const lgpu_nll_acc *acc, lgpu_ppl_result *out) {
    if (!acc || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_nll_result: NULL argument");
    if (acc->count < 1) return lgpu_set_error(LGPU_EINVAL, "perplexity: no token was scored");
    double mean = acc->nll / (double)acc->count, var = acc->nll2 / (double)acc->count - mean * mean;
    out->nll_mean = mean;
    out->ppl = exp(mean);
    out->ppl_err = var > 0 && acc->count > 1 ? out->ppl * sqrt(var / (double)(acc->count - 1)) : NAN;
    out->count = acc->count;
    out->n_chunks = 0;
    return 0;
}

int lgpu_perplexity_init(lgpu_ctx *ctx, const int32_t *tokens, int64_t n_tokens, int chunk, int max_chunks,
                         int32_t bos, lgpu_ppl_chunk_fn on_chunk, void *user, lgpu_seq_init_fn seq_init,
                         void *init_user, lgpu_ppl_result *out) {
    if (!ctx || !tokens || !out || chunk < 4) return lgpu_set_error(LGPU_EINVAL, "lgpu_perplexity: bad arguments");
    const lgpu_ctx_params *cp = lgpu_ctx_params_of(ctx);
    if ((uint32_t)chunk > cp->n_ctx)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_perplexity: chunk %d exceeds the context's n_ctx %u", chunk, cp->n_ctx);
    if (n_tokens < 2 * (int64_t)chunk)
        return lgpu_set_error(LGPU_EINVAL, "perplexity: need at least %d tokens for a context of %d, the text has %lld",
                              2 * chunk, chunk, (long long)n_tokens);
    int n_chunks = (int)(n_tokens / chunk);
    if (max_chunks > 0 && max_chunks < n_chunks) n_chunks = max_chunks;
    scorer s;
    int st = scorer_init(&s, ctx);
    lgpu_nll_acc acc = {0};
    int done_chunks = 0;
    for (int c = 0; c < n_chunks && !st; c++) {
        st = score_seq(&s, tokens + (int64_t)c * chunk, chunk, bos, chunk / 2, seq_init, init_user, &acc);
        if (st) break;
        done_chunks++;
        if (on_chunk && on_chunk(user, c, exp(acc.nll / (double)acc.count))) break;
    }
    scorer_free(&s);
    if (st) return st;
    st = lgpu_nll_result(&acc, out);
    out->n_chunks = done_chunks;
    return st;
}

int lgpu_perplexity(lgpu_ctx *ctx, const int32_t *tokens, int64_t n_tokens, int chunk, int max_chunks, int32_t bos,
                    lgpu_ppl_chunk_fn on_chunk, void *user, lgpu_ppl_result *out) {
    return lgpu_perplexity_init(ctx, tokens, n_tokens, chunk, max_chunks, bos, on_chunk, user, NULL, NULL, out);
}

int lgpu_score_tokens(lgpu_ctx *ctx, const int32_t *tokens, int n, int first, lgpu_seq_init_fn seq_init,
                      void *init_user, lgpu_nll_acc *acc) {
    if (!ctx || !tokens || !acc || n < 1 || first < 0 || first >= n)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_score_tokens: bad arguments (n %d, first %d)", n, first);
    uint32_t n_ctx = lgpu_ctx_params_of(ctx)->n_ctx;
    if ((uint32_t)n > n_ctx)
        return lgpu_set_error(LGPU_ERANGE, "scoring: %d tokens do not fit the context of %u", n, n_ctx);
    scorer s;
    int st = scorer_init(&s, ctx);
    if (!st) st = score_seq(&s, tokens, n, -1, first, seq_init, init_user, acc);
    scorer_free(&s);
    return st;
}
