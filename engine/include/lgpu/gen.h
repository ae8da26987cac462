/* lgpu — text generation on one sequence of an lgpu_ctx, and perplexity.
 *
 * Generation: feed prompt tokens (chunked to n_batch), then sample -> stream
 * -> decode until a finish condition. Used by `lgpu run`, `lgpu chat` and the
 * tests.
 *
 *   lgpu_gen *g; lgpu_gen_create(ctx, &sampler_params, &g);
 *   lgpu_gen_feed_text(g, "Once upon a time", true, false, print_cb, NULL);
 *   lgpu_gen_run(g, &(lgpu_gen_params){.n_predict = 64, .on_text = print_cb}, &finish);
 *
 * The sequence's text is detokenized incrementally (UTF-8 safe) across feeds
 * and runs, so a continuation keeps its leading space. A token sampled but
 * not decoded when a run ends (length, stop string, cancel) stays "pending"
 * and is decoded ahead of the next feed or run; an end-of-generation token
 * is never decoded. */
#ifndef LGPU_GEN_H
#define LGPU_GEN_H

#include "lgpu/llama.h"
#include "lgpu/sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lgpu_gen_finish {
    LGPU_GEN_LENGTH = 0, /* n_predict tokens generated */
    LGPU_GEN_EOG,        /* an end-of-generation token was sampled */
    LGPU_GEN_STOP,       /* a stop string appeared */
    LGPU_GEN_CTX,        /* the sequence reached n_ctx */
    LGPU_GEN_CANCEL,     /* the text callback asked to stop */
} lgpu_gen_finish;

/* Streamed text (complete UTF-8, possibly empty); return nonzero to stop. */
typedef int (*lgpu_gen_text_fn)(void *user, const char *text, size_t len);

typedef struct lgpu_gen_params {
    int32_t n_predict; /* tokens to generate at most; < 0: until EOG or a full context */
    bool ignore_eog;   /* keep going past end-of-generation tokens */
    const char *const *stops;
    int n_stops;
    lgpu_gen_text_fn on_text;
    void *user;
} lgpu_gen_params;

typedef struct lgpu_gen_stats {
    int32_t n_prompt; /* tokens fed and decoded (prefix-cache hits excluded) */
    int32_t n_reused; /* prompt tokens attached from the prefix cache */
    int32_t n_gen;    /* tokens sampled by runs */
    double prompt_s, gen_s;
} lgpu_gen_stats;

typedef struct lgpu_gen lgpu_gen;

/* Opens a sequence of ctx. sampler NULL: greedy. */
int lgpu_gen_create(lgpu_ctx *ctx, const lgpu_sampler_params *sampler, lgpu_gen **out);
void lgpu_gen_destroy(lgpu_gen *g);
int lgpu_gen_seq(const lgpu_gen *g);
/* Empties the sequence (KV blocks released, cached prefixes kept) and resets
 * the sampler and the detokenizer. */
int lgpu_gen_reset(lgpu_gen *g);

/* Appends tokens to the sequence; the last one's logits become the next
 * sampling distribution. On an empty sequence, cached full blocks of the
 * same prefix are reused. Tokens are accepted into the sampler's penalty
 * history. on_text (may be NULL) receives the detokenized text. */
int lgpu_gen_feed(lgpu_gen *g, const int32_t *tokens, int n, lgpu_gen_text_fn on_text, void *user);
/* Tokenizes text (add_special: BOS as the tokenizer wants; parse_special:
 * control tokens written in the text) and feeds it. */
int lgpu_gen_feed_text(lgpu_gen *g, const char *text, bool add_special, bool parse_special,
                       lgpu_gen_text_fn on_text, void *user);
/* Generates until a finish condition (*finish may be NULL). */
int lgpu_gen_run(lgpu_gen *g, const lgpu_gen_params *p, lgpu_gen_finish *finish);

/* Ids sampled by the last run (EOG excluded), and its text: `emitted` as
 * streamed (cut before a stop string), `full` everything the ids decode to. */
const int32_t *lgpu_gen_tokens(const lgpu_gen *g, int *n);
const char *lgpu_gen_text(const lgpu_gen *g, bool full, size_t *len);
const lgpu_gen_stats *lgpu_gen_stats_of(const lgpu_gen *g);

/* ---- perplexity ---------------------------------------------------------
 * llama.cpp's llama-perplexity method (examples/perplexity): the tokens are
 * cut into non-overlapping chunks of n_ctx; each chunk starts a fresh
 * sequence whose first token is replaced by BOS (when bos >= 0); only the
 * second half is scored: for j in [n_ctx/2, n_ctx-1) the NLL of token j+1
 * under the logits at j. PPL = exp(mean NLL); the reported uncertainty is
 * PPL * stderr(NLL) = PPL * sqrt((E[nll^2] - E[nll]^2)/(count-1)). Used by
 * `lgpu-eval perplexity`. */

typedef struct lgpu_ppl_result {
    double ppl, ppl_err; /* ppl_err: NAN if the variance is not positive */
    double nll_mean;
    int64_t count; /* scored tokens */
    int n_chunks;
} lgpu_ppl_result;

/* Called after each chunk with the running perplexity; nonzero stops. */
typedef int (*lgpu_ppl_chunk_fn)(void *user, int chunk, double ppl_so_far);

/* Called on each sequence a scoring call opens, before any token of it is
 * decoded (e.g. to attach adapters to it); a nonzero return fails the call
 * with that status. */
typedef int (*lgpu_seq_init_fn)(void *user, lgpu_ctx *ctx, int seq);

/* ctx must hold a free sequence with n_ctx >= chunk. max_chunks <= 0: all.
 * LGPU_EINVAL if there are fewer than 2*chunk tokens (as llama.cpp). */
int lgpu_perplexity(lgpu_ctx *ctx, const int32_t *tokens, int64_t n_tokens, int chunk, int max_chunks, int32_t bos,
                    lgpu_ppl_chunk_fn on_chunk, void *user, lgpu_ppl_result *out);
/* The same with seq_init (may be NULL) called on each chunk's sequence. */
int lgpu_perplexity_init(lgpu_ctx *ctx, const int32_t *tokens, int64_t n_tokens, int chunk, int max_chunks,
                         int32_t bos, lgpu_ppl_chunk_fn on_chunk, void *user, lgpu_seq_init_fn seq_init,
                         void *init_user, lgpu_ppl_result *out);

/* ---- scoring a text -----------------------------------------------------
 * The negative log-likelihood of tokens[first+1..n) each given the tokens
 * before it, decoded on a fresh sequence of ctx (n <= n_ctx; seq_init as
 * above, may be NULL): for j in [first, n-1), -log softmax(logits at j)
 * [tokens[j+1]], added to *acc (which the caller zeroes once, so that one
 * accumulator can sum many texts). With first = 0 every token but the first
 * is scored; the perplexity of what was added is exp(nll / count). */
typedef struct lgpu_nll_acc {
    double nll, nll2; /* sum of the NLLs and of their squares */
    int64_t count;    /* tokens scored */
} lgpu_nll_acc;

int lgpu_score_tokens(lgpu_ctx *ctx, const int32_t *tokens, int n, int first, lgpu_seq_init_fn seq_init,
                      void *init_user, lgpu_nll_acc *acc);
/* acc as an lgpu_ppl_result (n_chunks 0); LGPU_EINVAL when it counts no token. */
int lgpu_nll_result(const lgpu_nll_acc *acc, lgpu_ppl_result *out);

#ifdef __cplusplus
}
#endif
#endif
