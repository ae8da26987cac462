/* Perplexity with llama.cpp's llama-perplexity method (examples/perplexity):
 * the tokens are cut into non-overlapping chunks of n_ctx; each chunk starts
 * a fresh sequence whose first token is replaced by BOS (when bos >= 0);
 * only the second half is scored: for j in [n_ctx/2, n_ctx-1) the NLL of
 * token j+1 under the logits at j. PPL = exp(mean NLL); the reported
 * uncertainty is PPL * stderr(NLL) = PPL * sqrt((E[nll^2] - E[nll]^2)/(count-1)). */
#ifndef LGPU_GEN_PPL_H
#define LGPU_GEN_PPL_H

#include "lgpu/llama.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lgpu_ppl_result {
    double ppl, ppl_err; /* ppl_err: NAN if the variance is not positive */
    double nll_mean;
    int64_t count; /* scored tokens */
    int n_chunks;
} lgpu_ppl_result;

/* Called after each chunk with the running perplexity; nonzero stops. */
typedef int (*lgpu_ppl_chunk_fn)(void *user, int chunk, double ppl_so_far);

/* ctx must hold a free sequence with n_ctx >= chunk. max_chunks <= 0: all.
 * LGPU_EINVAL if there are fewer than 2*chunk tokens (as llama.cpp). */
int lgpu_perplexity(lgpu_ctx *ctx, const int32_t *tokens, int64_t n_tokens, int chunk, int max_chunks, int32_t bos,
                    lgpu_ppl_chunk_fn on_chunk, void *user, lgpu_ppl_result *out);

#ifdef __cplusplus
}
#endif
#endif
