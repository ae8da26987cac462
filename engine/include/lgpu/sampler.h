/* lgpu — token sampling: a fixed chain configured by lgpu_sampler_params, plus
 * log-softmax helpers for OpenAI-style logprobs and a stop-string matcher
 * for streaming.
 *
 * Chain order (llama.cpp's default):
 *   penalties -> top_k -> typical_p -> top_p -> min_p -> temperature -> sample
 * The filters see probabilities at temperature 1 (softmax of the penalised
 * logits); the temperature only reshapes what survives. temperature <= 0 is
 * greedy: the argmax of the penalised logits (ties -> lowest id), no RNG use.
 * Every filter keeps at least one token. */
#ifndef LGPU_SAMPLER_H
#define LGPU_SAMPLER_H

#include "lgpu/lgpu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Seed value that asks for a seed drawn from the OS (getrandom/clock). */
#define LGPU_SAMPLER_SEED_RANDOM UINT64_MAX

typedef struct lgpu_sampler_params {
    float temperature;       /* <= 0: greedy. Default 0.8 */
    int32_t top_k;           /* <= 0: off. Default 40 */
    float top_p;             /* >= 1: off. Default 0.95 */
    float min_p;             /* <= 0: off. Default 0.05 */
    float typical_p;         /* >= 1: off. Default 1 */
    /* Penalties look at the last repeat_last_n accepted tokens (-1: all of
     * them, 0: penalties off). Default 64. */
    int32_t repeat_last_n;
    float repeat_penalty;    /* llama.cpp: logit>0 -> logit/r, else logit*r. 1: off */
    float presence_penalty;  /* OpenAI: logit -= presence*(count>0). 0: off */
    float frequency_penalty; /* OpenAI: logit -= frequency*count. 0: off */
    uint64_t seed;           /* same seed + same inputs -> same tokens */
} lgpu_sampler_params;

/* llama.cpp's defaults (see the field comments), seed LGPU_SAMPLER_SEED_RANDOM. */
void lgpu_sampler_params_default(lgpu_sampler_params *p);

typedef struct lgpu_sampler lgpu_sampler;

/* Validates params (EINVAL naming the bad field) and creates a sampler. */
int lgpu_sampler_create(const lgpu_sampler_params *params, lgpu_sampler **out);
void lgpu_sampler_destroy(lgpu_sampler *s);

/* Appends a token to the penalty history. Sampling does not accept on its
 * own: the caller accepts each token it keeps (and prompt tokens if it wants
 * them penalised). */
int lgpu_sampler_accept(lgpu_sampler *s, int32_t token);
/* Forgets the history and re-seeds the RNG with the creation seed. */
void lgpu_sampler_reset(lgpu_sampler *s);

/* Facts about a sampled token. */
typedef struct lgpu_sample_info {
    float prob;    /* probability in the final distribution it was drawn from (1 when greedy) */
    float logprob; /* log-softmax of the RAW logits at the token (what OpenAI reports) */
} lgpu_sample_info;

/* Samples one token from logits[n_vocab] (not modified). Returns the token
 * id (>= 0) or a negative LGPU_E* code. info may be NULL. */
int32_t lgpu_sampler_sample(lgpu_sampler *s, const float *logits, int32_t n_vocab, lgpu_sample_info *info);

/* The distribution the next draw would use, after penalties, filters and
 * temperature, without drawing (no RNG use): writes up to cap (id, prob)
 * pairs, most likely first, and returns how many tokens survive (which may
 * exceed cap) or a negative LGPU_E* code. For tests and "post-sampling" probs. */
int lgpu_sampler_probs(lgpu_sampler *s, const float *logits, int32_t n_vocab, int cap, int32_t *ids_out,
                       float *probs_out);

/* log-softmax of the raw logits: writes the k most likely ids and their
 * logprobs, best first (ties -> lower id). Returns min(k, n_vocab) or a
 * negative LGPU_E* code. O(n_vocab log k), no allocation. */
int lgpu_logprobs_top(const float *logits, int32_t n_vocab, int k, int32_t *ids_out, float *logprobs_out);
/* log-softmax of the raw logits at one token; NAN for a bad id. */
float lgpu_logprob_of(const float *logits, int32_t n_vocab, int32_t token);

/* ---- stop strings -------------------------------------------------------
 * Streaming use: keep all generated text in one buffer; after each token call
 * lgpu_stop_scan(text, len, from = previous safe_len). If it reports a stop,
 * emit text[emitted..stop_pos) and finish; otherwise emit text[emitted..safe_len).
 * Text past safe_len is held back because it could be the start of a stop
 * string (e.g. "<|e" of "<|end|>"). */
typedef struct lgpu_stop lgpu_stop;

/* Copies the n strings (empty strings are ignored). n may be 0. */
int lgpu_stop_create(const char *const *stops, int n, lgpu_stop **out);
void lgpu_stop_destroy(lgpu_stop *s);

typedef struct lgpu_stop_result {
    int stop_index;  /* index into the create() list of the match, -1 if none */
    size_t stop_pos; /* byte offset where the match starts (== len if none) */
    size_t safe_len; /* bytes of text that can be emitted now */
} lgpu_stop_result;

/* Scans text[0..len). `from` is the safe_len of the previous scan of the same
 * (growing) text, 0 at first: no stop string can start before it, so only
 * the new tail is searched. Of several matches, the one starting first wins
 * (ties -> lower index). Returns 1 if a stop string was found, 0 if not, or a
 * negative LGPU_E* code. */
int lgpu_stop_scan(const lgpu_stop *s, const char *text, size_t len, size_t from, lgpu_stop_result *r);

#ifdef __cplusplus
}
#endif
#endif
