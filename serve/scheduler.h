/* The engine thread: continuous batching over the paged KV cache.
 *
 * One thread owns the lgpu_ctx. Every step it
 *   1. ends jobs whose client left (sink cancelled) or whose deadline passed,
 *   2. admits waiting jobs (FIFO) while sequence slots and KV blocks allow,
 *      setting the LoRA adapter the job's model names on its sequence and
 *      attaching cached prefix blocks (lgpu_seq_reuse_prefix: only those
 *      computed with the same adapter),
 *   3. builds ONE lgpu_decode batch: one token for every generating job, then
 *      prompt chunks of the jobs still prefilling, within n_batch tokens,
 *      whatever adapters they use (each token applies its sequence's),
 *   4. on LGPU_EFULL preempts the newest job (its blocks are freed and it is
 *      requeued at the front, to recompute prompt + generated text later),
 *   5. samples every job whose logits arrived and streams text to its sink. */
#ifndef LGPU_SERVE_SCHEDULER_H
#define LGPU_SERVE_SCHEDULER_H

#include "metrics.h"
#include "request.h"

typedef struct srv_sched srv_sched;

struct lgpu_lora;

typedef struct srv_sched_params {
    int max_queue; /* waiting jobs allowed */
    int n_batch;   /* token budget per step (<= the context's n_batch) */
    /* LoRA adapters a job may name (srv_gen_params.adapter), each with its
     * scale; its sequence applies it (lgpu_seq_set_adapters) */
    struct lgpu_lora *const *loras;
    const float *lora_scales;
    int n_loras;
} srv_sched_params;

typedef struct srv_sched_stats {
    int running, waiting;
    uint64_t steps, preemptions, cancelled, timeouts, prefix_tokens_reused;
    double busy_fraction; /* share of recent wall time spent in engine steps */
    uint32_t kv_used, kv_total;
} srv_sched_stats;

/* Starts the engine thread. metrics may be NULL. */
int srv_sched_create(lgpu_ctx *ctx, const srv_sched_params *p, srv_metrics *metrics, srv_sched **out);
/* Ends every job still queued or running with an ERROR event (503
 * "shutting_down"), stops and joins the thread. */
void srv_sched_destroy(srv_sched *s);
/* Queues jobs (all or none). LGPU_EFULL: the queue has no room for them
 * (HTTP 429); LGPU_EBUSY: draining (503). On success the engine owns them. */
int srv_sched_submit(srv_sched *s, srv_job **jobs, int n);
/* New submissions fail with LGPU_EBUSY from now on. */
void srv_sched_drain(srv_sched *s);
void srv_sched_stats_get(srv_sched *s, srv_sched_stats *out);
/* Seconds a client should wait before retrying a rejected request. */
int srv_sched_retry_after(srv_sched *s);

#endif
