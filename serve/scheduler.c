/* Continuous batching on one engine thread (see scheduler.h). */
#include "scheduler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "job_gen.h"
#include "lgpu/lora.h"

struct srv_sched {
    lgpu_ctx *ctx;
    lgpu_tokenizer *tok;
    srv_metrics *metrics;
    int32_t n_vocab;
    uint32_t n_ctx, n_seq_max, n_batch, block_size;
    int max_queue;
    struct lgpu_lora *const *loras;
    const float *lora_scales;
    int n_loras;

    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* guarded by mu */
    srv_job *wait_head, *wait_tail;
    int n_waiting, n_running_pub;
    bool stop, draining;
    srv_sched_stats st;
    double win_start, win_busy, last_frac, avg_job_s;

    /* engine thread only */
    srv_job **run; /* running jobs in admission order */
    int n_run;
    uint64_t admit_counter;
    int32_t *b_tok, *b_seq, *b_pos;
    int8_t *b_log;
    int *chunk;      /* per running job: tokens in this step's batch */
    srv_job **rows;  /* logits row -> job */
    const float *logits; /* this step's rows, lent by lgpu_decode_rows */
};

/* ---- waiting queue (caller holds mu) ---- */

static void q_push_back(srv_sched *s, srv_job *j) {
    j->next = NULL;
    j->prev = s->wait_tail;
    if (s->wait_tail) s->wait_tail->next = j;
    else s->wait_head = j;
    s->wait_tail = j;
    s->n_waiting++;
}

static void q_push_front(srv_sched *s, srv_job *j) {
    j->prev = NULL;
    j->next = s->wait_head;
    if (s->wait_head) s->wait_head->prev = j;
    else s->wait_tail = j;
    s->wait_head = j;
    s->n_waiting++;
}

static void q_remove(srv_sched *s, srv_job *j) {
    if (j->prev) j->prev->next = j->next;
    else s->wait_head = j->next;
    if (j->next) j->next->prev = j->prev;
    else s->wait_tail = j->prev;
    j->prev = j->next = NULL;
    s->n_waiting--;
}

/* ---- ending jobs (engine thread) ---- */

static void release_kv(srv_sched *s, srv_job *j) {
    if (j->kv_seq >= 0) lgpu_seq_destroy(s->ctx, j->kv_seq);
    j->kv_seq = -1;
    j->n_kv = 0;
}

static void note_end(srv_sched *s, srv_job *j) {
    srv_metrics_tokens(s->metrics, (uint64_t)j->n_prompt, 0);
    double d = srv_now() - j->t_arrival;
    pthread_mutex_lock(&s->mu);
    s->avg_job_s = s->avg_job_s > 0 ? 0.8 * s->avg_job_s + 0.2 * d : d;
    pthread_mutex_unlock(&s->mu);
}

/* Removes running job i (its final event already posted) and frees it. */
static void run_remove(srv_sched *s, int i) {
    srv_job *j = s->run[i];
    release_kv(s, j);
    note_end(s, j);
    srv_job_free(j);
    memmove(s->run + i, s->run + i + 1, (size_t)(s->n_run - i - 1) * sizeof *s->run);
    s->n_run--;
}

static void fail_running(srv_sched *s, int i, int status, const char *code, const char *msg) {
    srv_job_fail(s->run[i], status, code, "%s", msg);
    run_remove(s, i);
}

/* Why a job must end before its next step: NULL if it may go on. */
static const char *must_end(const srv_job *j, double now, int *status) {
    if (srv_sink_cancelled(j->sink)) {
        *status = 499; /* nginx's "client closed request": nobody reads it */
        return "cancelled";
    }
    if (j->deadline > 0 && now >= j->deadline) {
        *status = 504;
        return "timeout";
    }
    return NULL;
}

static void end_job_now(srv_sched *s, srv_job *j, int status, const char *code) {
    if (!strcmp(code, "cancelled")) {
        srv_job_fail(j, status, code, "the client disconnected");
        s->st.cancelled++;
    } else {
        srv_job_fail(j, status, code, "the request did not complete within the server's timeout");
        s->st.timeouts++;
    }
}

static void reap(srv_sched *s) {
    double now = srv_now();
    int status;
    for (int i = 0; i < s->n_run;) {
        const char *code = must_end(s->run[i], now, &status);
        if (!code) {
            i++;
            continue;
        }
        pthread_mutex_lock(&s->mu);
        end_job_now(s, s->run[i], status, code);
        pthread_mutex_unlock(&s->mu);
        run_remove(s, i);
    }
    pthread_mutex_lock(&s->mu);
    for (srv_job *j = s->wait_head, *n; j; j = n) {
        n = j->next;
        const char *code = must_end(j, now, &status);
        if (!code) continue;
        q_remove(s, j);
        end_job_now(s, j, status, code);
        srv_job_free(j);
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- admission ---- */

static int common_prefix(const srv_job *a, const srv_job *b) {
    int n = a->n_all < b->n_all ? a->n_all : b->n_all, k = 0;
    while (k < n && a->all[k] == b->all[k]) k++;
    return k;
}

/* A running job still computing the blocks j shares with it: admit j once
 * they are cached, so the shared prefix (a system prompt, the n choices of
 * one request) is computed once. */
static bool wait_for_prefix(const srv_sched *s, const srv_job *j) {
    const int bs = (int)s->block_size;
    for (int i = 0; i < s->n_run; i++) {
        const srv_job *r = s->run[i];
        if (r->n_kv >= r->n_all - 1) continue; /* generating: its prompt blocks are cached */
        if (r->params->adapter != j->params->adapter) continue; /* other weights: nothing to share */
        int shared = common_prefix(j, r) / bs * bs;
        if (shared >= bs && shared < j->n_all && r->n_kv < shared) return true;
    }
    return false;
}

static uint32_t kv_free(const srv_sched *s) {
    uint32_t used, total;
    lgpu_ctx_kv_usage(s->ctx, &used, &total);
    return total - used;
}

/* Tries to start the job at the head of the queue; false to stop admitting. */
static bool admit_one(srv_sched *s, uint32_t *reserved) {
    pthread_mutex_lock(&s->mu);
    srv_job *j = s->wait_head;
    pthread_mutex_unlock(&s->mu);
    if (!j || wait_for_prefix(s, j)) return false;
    int seq;
    if (lgpu_seq_create(s->ctx, &seq)) return false;
    int a = j->params->adapter;
    if (a >= 0 && (a >= s->n_loras ||
                   lgpu_seq_set_adapters(s->ctx, seq, (const lgpu_lora *const *)&s->loras[a], &s->lora_scales[a], 1))) {
        /* not expected (the adapters were checked at startup): fail the job, keep serving */
        char msg[256];
        snprintf(msg, sizeof msg, "cannot apply the adapter: %s", a >= s->n_loras ? "unknown" : lgpu_last_error());
        lgpu_seq_destroy(s->ctx, seq);
        pthread_mutex_lock(&s->mu);
        q_remove(s, j);
        srv_job_fail(j, 500, "engine_error", "%s", msg);
        pthread_mutex_unlock(&s->mu);
        srv_job_free(j);
        return true;
    }
    int k = lgpu_seq_reuse_prefix(s->ctx, seq, j->all, j->n_all);
    if (k < 0) k = 0;
    const uint32_t bs = s->block_size;
    uint32_t need = (uint32_t)(j->n_all + bs - 1) / bs - (uint32_t)k / bs;
    /* keep one block per running job for its next tokens */
    if (s->n_run > 0 && kv_free(s) < need + *reserved + (uint32_t)s->n_run) {
        lgpu_seq_destroy(s->ctx, seq);
        return false;
    }
    *reserved += need;
    double now = srv_now();
    pthread_mutex_lock(&s->mu);
    q_remove(s, j);
    s->st.prefix_tokens_reused += (uint64_t)k;
    pthread_mutex_unlock(&s->mu);
    j->kv_seq = seq;
    j->n_kv = k;
    if (j->n_preempted == 0) {
        j->n_cached = k;
        j->t_admit = now;
        srv_metrics_observe(s->metrics, SRV_H_QUEUE, now - j->t_arrival);
    }
    j->admit_no = ++s->admit_counter;
    s->run[s->n_run++] = j;
    return true;
}

static void admit(srv_sched *s) {
    uint32_t reserved = 0;
    while ((uint32_t)s->n_run < s->n_seq_max && admit_one(s, &reserved)) {
    }
}

/* ---- one engine step ---- */

/* Fills the batch: a token for each generating job, then prompt chunks.
 * Returns the number of tokens and sets *n_rows (logits rows). */
static int build_batch(srv_sched *s, int *n_rows) {
    int n = 0, budget = (int)s->n_batch, r = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < s->n_run; i++) {
            srv_job *j = s->run[i];
            int rem = j->n_all - j->n_kv;
            if (pass == 0) s->chunk[i] = 0;
            if ((pass == 0) != (rem == 1) || budget == 0) continue;
            int c = rem < budget ? rem : budget;
            for (int t = 0; t < c; t++) {
                s->b_tok[n] = j->all[j->n_kv + t];
                s->b_seq[n] = j->kv_seq;
                s->b_pos[n] = j->n_kv + t;
                s->b_log[n] = (int8_t)(j->n_kv + t == j->n_all - 1);
                if (s->b_log[n]) s->rows[r++] = j;
                n++;
            }
            s->chunk[i] = c;
            budget -= c;
        }
    *n_rows = r;
    return n;
}

/* Frees the newest job's blocks and requeues it at the front. */
static void preempt_newest(srv_sched *s) {
    int newest = 0;
    for (int i = 1; i < s->n_run; i++)
        if (s->run[i]->admit_no > s->run[newest]->admit_no) newest = i;
    srv_job *j = s->run[newest];
    release_kv(s, j);
    j->n_preempted++;
    memmove(s->run + newest, s->run + newest + 1, (size_t)(s->n_run - newest - 1) * sizeof *s->run);
    s->n_run--;
    pthread_mutex_lock(&s->mu);
    q_push_front(s, j);
    s->st.preemptions++;
    pthread_mutex_unlock(&s->mu);
    lgpu_log(LGPU_LOG_INFO, "serve: KV cache full, preempted a sequence of %d tokens", j->n_all);
}

static void step(srv_sched *s) {
    reap(s);
    admit(s);
    if (s->n_run == 0) return;
    int n_rows = 0, n, st;
    for (;;) {
        n = build_batch(s, &n_rows);
        lgpu_batch b = {.n = n, .token = s->b_tok, .seq = s->b_seq, .pos = s->b_pos, .logits = s->b_log};
        st = lgpu_decode_rows(s->ctx, &b, &s->logits);
        if (st != LGPU_EFULL) break;
        if (s->n_run == 1) {
            fail_running(s, 0, 500, "kv_cache_full", "the sequence does not fit in the KV cache (raise --kv-blocks)");
            return;
        }
        preempt_newest(s);
    }
    if (st) {
        /* not a capacity problem: end the jobs of this batch, keep serving */
        char msg[256];
        snprintf(msg, sizeof msg, "engine error: %s", lgpu_last_error());
        lgpu_log(LGPU_LOG_ERROR, "serve: decode failed: %s", msg);
        for (int i = s->n_run - 1; i >= 0; i--)
            if (s->chunk[i]) fail_running(s, i, 500, "engine_error", msg);
        return;
    }
    for (int i = 0; i < s->n_run; i++) s->run[i]->n_kv += s->chunk[i];
    for (int r = 0; r < n_rows; r++) {
        srv_job *j = s->rows[r];
        bool done = false;
        st = srv_job_on_logits(j, s->logits + (size_t)r * (size_t)s->n_vocab, s->n_vocab, s->tok, s->n_ctx,
                               s->metrics, &done);
        int i = 0;
        while (s->run[i] != j) i++;
        if (st) {
            char msg[256];
            snprintf(msg, sizeof msg, "generation failed: %s", lgpu_last_error());
            fail_running(s, i, 500, "engine_error", msg);
        } else if (done) {
            run_remove(s, i);
        }
    }
    pthread_mutex_lock(&s->mu);
    s->st.steps++;
    pthread_mutex_unlock(&s->mu);
}

static void publish(srv_sched *s, double busy) {
    double now = srv_now();
    uint32_t used, total;
    lgpu_ctx_kv_usage(s->ctx, &used, &total);
    pthread_mutex_lock(&s->mu);
    s->n_running_pub = s->n_run;
    s->st.kv_used = used;
    s->st.kv_total = total;
    s->win_busy += busy;
    if (now - s->win_start >= 1.0) {
        s->last_frac = s->win_busy / (now - s->win_start);
        s->win_start = now;
        s->win_busy = 0;
    }
    pthread_mutex_unlock(&s->mu);
}

static void end_all(srv_sched *s) {
    while (s->n_run > 0) fail_running(s, s->n_run - 1, 503, "shutting_down", "the server is shutting down");
    pthread_mutex_lock(&s->mu);
    while (s->wait_head) {
        srv_job *j = s->wait_head;
        q_remove(s, j);
        srv_job_fail(j, 503, "shutting_down", "the server is shutting down");
        srv_job_free(j);
    }
    pthread_mutex_unlock(&s->mu);
}

static void *engine_main(void *arg) {
    srv_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && s->n_waiting == 0 && s->n_run == 0) pthread_cond_wait(&s->cv, &s->mu);
        if (s->stop) break;
        pthread_mutex_unlock(&s->mu);
        double t0 = srv_now();
        step(s);
        publish(s, srv_now() - t0);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    end_all(s);
    publish(s, 0);
    return NULL;
}

int srv_sched_create(lgpu_ctx *ctx, const srv_sched_params *p, srv_metrics *metrics, srv_sched **out) {
    *out = NULL;
    srv_sched *s = calloc(1, sizeof *s);
    if (!s) return lgpu_set_error(LGPU_ENOMEM, "scheduler");
    lgpu_model *m = lgpu_ctx_model(ctx);
    const lgpu_ctx_params *cp = lgpu_ctx_params_of(ctx);
    s->ctx = ctx;
    s->tok = lgpu_model_tokenizer(m);
    s->metrics = metrics;
    s->n_vocab = (int32_t)lgpu_model_hparams(m)->n_vocab;
    s->n_ctx = cp->n_ctx;
    s->n_seq_max = cp->n_seq_max;
    s->block_size = cp->block_size;
    s->n_batch = p->n_batch > 0 && (uint32_t)p->n_batch < cp->n_batch ? (uint32_t)p->n_batch : cp->n_batch;
    s->max_queue = p->max_queue;
    s->loras = p->loras;
    s->lora_scales = p->lora_scales;
    s->n_loras = p->n_loras;
    s->win_start = srv_now();
    if (!s->tok) {
        free(s);
        return lgpu_set_error(LGPU_EINVAL, "serve: the model has no tokenizer (give --tokenizer)");
    }
    s->run = calloc(s->n_seq_max, sizeof *s->run);
    s->chunk = calloc(s->n_seq_max, sizeof *s->chunk);
    s->rows = calloc(s->n_seq_max, sizeof *s->rows);
    s->b_tok = malloc(s->n_batch * sizeof *s->b_tok);
    s->b_seq = malloc(s->n_batch * sizeof *s->b_seq);
    s->b_pos = malloc(s->n_batch * sizeof *s->b_pos);
    s->b_log = malloc(s->n_batch);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (!s->run || !s->chunk || !s->rows || !s->b_tok || !s->b_seq || !s->b_pos || !s->b_log) {
        srv_sched_destroy(s);
        return lgpu_set_error(LGPU_ENOMEM, "scheduler buffers");
    }
    if (pthread_create(&s->thread, NULL, engine_main, s)) {
        srv_sched_destroy(s);
        return lgpu_set_error(LGPU_ENOMEM, "scheduler: cannot start the engine thread");
    }
    s->started = true;
    *out = s;
    return 0;
}

void srv_sched_destroy(srv_sched *s) {
    if (!s) return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        s->draining = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->run);
    free(s->chunk);
    free(s->rows);
    free(s->b_tok);
    free(s->b_seq);
    free(s->b_pos);
    free(s->b_log);
    free(s);
}

int srv_sched_submit(srv_sched *s, srv_job **jobs, int n) {
    pthread_mutex_lock(&s->mu);
    int st = 0;
    /* free sequence slots absorb a burst that the engine has not admitted yet */
    int room = s->max_queue + (int)s->n_seq_max - s->n_running_pub - s->n_waiting;
    if (s->draining) st = lgpu_set_error(LGPU_EBUSY, "the server is shutting down");
    else if (n > room)
        st = lgpu_set_error(LGPU_EFULL, "the queue is full (%d waiting, %d running)", s->n_waiting, s->n_running_pub);
    if (!st) {
        for (int i = 0; i < n; i++) q_push_back(s, jobs[i]);
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

void srv_sched_drain(srv_sched *s) {
    pthread_mutex_lock(&s->mu);
    s->draining = true;
    pthread_mutex_unlock(&s->mu);
}

void srv_sched_stats_get(srv_sched *s, srv_sched_stats *out) {
    double now = srv_now();
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->running = s->n_running_pub;
    out->waiting = s->n_waiting;
    /* no step for a while: the engine is idle */
    out->busy_fraction = now - s->win_start > 2.0 ? s->win_busy / (now - s->win_start) : s->last_frac;
    pthread_mutex_unlock(&s->mu);
}

int srv_sched_retry_after(srv_sched *s) {
    pthread_mutex_lock(&s->mu);
    double est = s->avg_job_s * (double)(s->n_waiting + 1) / (double)s->n_seq_max;
    pthread_mutex_unlock(&s->mu);
    int r = (int)ceil(est);
    return r < 1 ? 1 : r > 60 ? 60 : r;
}
