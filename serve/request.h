/* Generation jobs and the per-request event queue between the engine thread
 * and an HTTP thread.
 *
 * One HTTP request makes one srv_sink and one srv_job per sequence to
 * generate (n choices, several prompts). After srv_sched_submit the engine
 * thread owns the jobs: it streams srv_events into the sink and frees each
 * job after posting its final event (DONE or ERROR). The HTTP thread owns
 * the sink and frees it only after popping every job's final event, so the
 * engine never touches a freed sink. */
#ifndef LGPU_SERVE_REQUEST_H
#define LGPU_SERVE_REQUEST_H

#include <pthread.h>
#include <stdatomic.h>

#include "lgpu/llama.h"
#include "lgpu/sampler.h"
#include "lgpu/tokenizer.h"

#define SRV_MAX_STOPS 4
#define SRV_MAX_TOP_LOGPROBS 20

/* What to generate; owned by the HTTP side, shared read-only by a request's jobs. */
typedef struct srv_gen_params {
    int32_t max_tokens;           /* >= 1 */
    lgpu_sampler_params sampling; /* seed: the first job's; job i uses seed + i */
    bool seed_given;
    char *stops[SRV_MAX_STOPS + LGPU_CHAT_MAX_STOPS]; /* the request's, then a chat template's */
    int n_stops;
    int logprobs; /* -1: no logprobs; else top alternatives per token (0..20) */
    bool ignore_eos;
    int adapter; /* the LoRA adapter the request's "model" names (srv_server.loras), -1: the base */
} srv_gen_params;
void srv_gen_params_free(srv_gen_params *p);

typedef enum { SRV_FINISH_STOP = 0, SRV_FINISH_LENGTH } srv_finish;
const char *srv_finish_name(srv_finish f);

/* One generated token as reported to clients. */
typedef struct srv_tokinfo {
    int32_t id;
    float logprob;   /* log-softmax of the raw logits */
    uint32_t offset; /* byte offset of its text in the choice's text */
    int n_top;
    int32_t top_id[SRV_MAX_TOP_LOGPROBS];
    float top_lp[SRV_MAX_TOP_LOGPROBS];
} srv_tokinfo;

typedef enum { SRV_EV_TEXT, SRV_EV_DONE, SRV_EV_ERROR } srv_ev_kind;

typedef struct srv_usage {
    int32_t n_prompt, n_cached, n_gen;
    double queue_s, ttft_s, gen_s, total_s; /* ttft from arrival; gen from first token to the end */
} srv_usage;

typedef struct srv_event {
    struct srv_event *next;
    int job;          /* index of the job within its request */
    srv_ev_kind kind; /* DONE and ERROR are final */
    char *text;       /* TEXT / DONE: text released now (NUL-terminated) */
    size_t len;
    srv_tokinfo *tok; /* the tokens that text belongs to */
    int n_tok;
    srv_finish finish; /* DONE */
    srv_usage usage;   /* DONE / ERROR */
    int status;        /* ERROR: HTTP status (500, 504...) */
    char code[32];     /* ERROR: OpenAI error code ("timeout", "cancelled", ...) */
    char message[256];
} srv_event;
void srv_event_free(srv_event *e);

typedef struct srv_sink srv_sink;
int srv_sink_create(int n_jobs, srv_sink **out);
void srv_sink_free(srv_sink *s);
/* Engine side: queue an event (ownership passes to the sink). */
void srv_sink_push(srv_sink *s, srv_event *e);
/* HTTP side: next event, waiting at most timeout_ms; NULL on timeout or when
 * every final event was popped already. */
srv_event *srv_sink_pop(srv_sink *s, int timeout_ms);
/* All jobs have posted and the HTTP side popped their final events. */
bool srv_sink_done(srv_sink *s);
/* Asks the engine to stop the request's jobs (client gone); they end with an
 * ERROR event whose code is "cancelled". */
void srv_sink_cancel(srv_sink *s);
bool srv_sink_cancelled(const srv_sink *s);

/* A job: one sequence to generate. The engine-side fields are touched only
 * by the engine thread after submission. */
typedef struct srv_job {
    srv_sink *sink;
    int index;
    const srv_gen_params *params;
    double t_arrival, deadline; /* monotonic seconds; deadline 0: none */
    struct srv_job *prev, *next; /* scheduler queue links */

    /* engine state */
    int kv_seq;      /* -1: not in the KV cache (waiting / preempted) */
    int32_t *all;    /* prompt + generated tokens */
    int n_all, cap_all, n_prompt;
    int n_kv;        /* tokens of all[] in the KV cache */
    int n_cached;    /* prompt tokens attached from the prefix cache */
    int n_gen;
    int n_preempted;
    uint64_t admit_no;
    lgpu_sampler *smp;
    lgpu_detok *detok;
    lgpu_stop *stop;
    char *text;
    size_t text_len, text_cap, emitted, safe;
    srv_tokinfo *toks;
    int n_toks, cap_toks, n_toks_sent;
    double t_admit, t_first, t_last;
    srv_event *reserve; /* the final event of a failure, allocated up front */
} srv_job;

/* Copies the prompt and creates the sampler (EINVAL naming the bad sampling
 * field), the detokenizer and the stop matcher. */
int srv_job_create(srv_sink *sink, int index, const srv_gen_params *params, const lgpu_tokenizer *tok,
                   const int32_t *prompt, int n_prompt, double t_arrival, double deadline, srv_job **out);
void srv_job_free(srv_job *j);

/* Monotonic clock in seconds. */
double srv_now(void);

#endif
