/* Per-job token handling on the engine thread: sample from a logits row,
 * detokenize incrementally, hold back text that may begin a stop string,
 * and stream what is safe to the job's sink. */
#ifndef LGPU_SERVE_JOB_GEN_H
#define LGPU_SERVE_JOB_GEN_H

#include "metrics.h"
#include "request.h"

/* Samples the next token of j from logits (n_vocab floats) and streams its
 * text. Sets *done when the job finished (its DONE event was posted; the
 * caller frees it). n_ctx bounds the sequence length. */
int srv_job_on_logits(srv_job *j, const float *logits, int32_t n_vocab, const lgpu_tokenizer *tok, uint32_t n_ctx,
                      srv_metrics *m, bool *done);

/* Posts j's final ERROR event (status: HTTP status; code: OpenAI error code). */
void srv_job_fail(srv_job *j, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
