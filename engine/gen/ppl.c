/* Perplexity over chunks (see ppl.h), decoding each chunk in n_batch pieces
 * with logits only for the scored half. */
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

int lgpu_perplexity(lgpu_ctx *ctx, const int32_t *tokens, int64_t n_tokens, int chunk, int max_chunks, int32_t bos,
                    lgpu_ppl_chunk_fn on_chunk, void *user, lgpu_ppl_result *out) {
    if (!ctx || !tokens || !out || chunk < 4) return lgpu_set_error(LGPU_EINVAL, "lgpu_perplexity: bad arguments");
    const lgpu_ctx_params *cp = lgpu_ctx_params_of(ctx);
    if ((uint32_t)chunk > cp->n_ctx)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_perplexity: chunk %d exceeds the context's n_ctx %u", chunk, cp->n_ctx);
    if (n_tokens < 2 * (int64_t)chunk)
        return lgpu_set_error(LGPU_EINVAL, "perplexity: need at least %d tokens for a context of %d, the text has %lld",
                              2 * chunk, chunk, (long long)n_tokens);
    const int n_vocab = (int)lgpu_model_hparams(lgpu_ctx_model(ctx))->n_vocab;
    const int first = chunk / 2, nb = (int)cp->n_batch;
    int n_chunks = (int)(n_tokens / chunk);
    if (max_chunks > 0 && max_chunks < n_chunks) n_chunks = max_chunks;
    float *logits = malloc((size_t)(chunk - first) * n_vocab * sizeof *logits);
    int32_t *tk = malloc((size_t)nb * sizeof *tk), *sq = malloc((size_t)nb * sizeof *sq),
            *ps = malloc((size_t)nb * sizeof *ps);
    int8_t *lg = malloc((size_t)nb);
    int st = 0;
    if (!logits || !tk || !sq || !ps || !lg) {
        st = lgpu_set_error(LGPU_ENOMEM, "perplexity: logits for %d rows", chunk - first);
        goto done;
    }
    double nll = 0, nll2 = 0;
    int64_t count = 0;
    int done_chunks = 0;
    for (int c = 0; c < n_chunks; c++) {
        const int32_t *t = tokens + (int64_t)c * chunk;
        int seq;
        if ((st = lgpu_seq_create(ctx, &seq))) goto done;
        for (int b0 = 0, rows = 0; b0 < chunk && !st; b0 += nb) {
            int n = chunk - b0 < nb ? chunk - b0 : nb, want = 0;
            for (int i = 0; i < n; i++) {
                int p = b0 + i;
                tk[i] = p == 0 && bos >= 0 ? bos : t[p];
                sq[i] = seq;
                ps[i] = p;
                lg[i] = p >= first;
                want += lg[i];
            }
            lgpu_batch b = {.n = n, .token = tk, .seq = sq, .pos = ps, .logits = lg};
            st = lgpu_decode(ctx, &b, logits + (size_t)rows * n_vocab);
            rows += want;
        }
        lgpu_seq_destroy(ctx, seq);
        if (st) goto done;
        for (int j = first; j < chunk - 1; j++) {
            double v = nll_of(logits + (size_t)(j - first) * n_vocab, n_vocab, t[j + 1]);
            nll += v;
            nll2 += v * v;
        }
        count += chunk - first - 1;
        done_chunks++;
        if (on_chunk && on_chunk(user, c, exp(nll / count))) break;
    }
    double mean = nll / count, var = nll2 / count - mean * mean;
    out->nll_mean = mean;
    out->ppl = exp(mean);
    out->ppl_err = var > 0 ? out->ppl * sqrt(var / (count - 1)) : NAN;
    out->count = count;
    out->n_chunks = done_chunks;
done:
    free(logits);
    free(tk);
    free(sq);
    free(ps);
    free(lg);
    return st;
}
