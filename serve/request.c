/* Jobs, events and the sink queue (see request.h). */
#include "request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lgpu/lgpu.h"

struct srv_sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_event *head, *tail;
    int n_jobs, n_final_pushed, n_final_popped;
    atomic_bool cancel;
};

double srv_now(void) { return lgpu_now_s(); }

const char *srv_finish_name(srv_finish f) { return f == SRV_FINISH_LENGTH ? "length" : "stop"; }

void srv_gen_params_free(srv_gen_params *p) {
    if (!p) return;
    for (int i = 0; i < p->n_stops; i++) free(p->stops[i]);
    p->n_stops = 0;
}

void srv_event_free(srv_event *e) {
    if (!e) return;
    free(e->text);
    free(e->tok);
    free(e);
}

int srv_sink_create(int n_jobs, srv_sink **out) {
    *out = NULL;
    srv_sink *s = calloc(1, sizeof *s);
    if (!s) return lgpu_set_error(LGPU_ENOMEM, "sink");
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->n_jobs = n_jobs;
    atomic_init(&s->cancel, false);
    *out = s;
    return 0;
}

void srv_sink_free(srv_sink *s) {
    if (!s) return;
    for (srv_event *e = s->head, *n; e; e = n) {
        n = e->next;
        srv_event_free(e);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

void srv_sink_push(srv_sink *s, srv_event *e) {
    e->next = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->tail) s->tail->next = e;
    else s->head = e;
    s->tail = e;
    if (e->kind != SRV_EV_TEXT) s->n_final_pushed++;
    pthread_cond_signal(&s->cv);
    /* nothing may touch s after this unlock: the HTTP side may free it */
    pthread_mutex_unlock(&s->mu);
}

srv_event *srv_sink_pop(srv_sink *s, int timeout_ms) {
    pthread_mutex_lock(&s->mu);
    if (!s->head && s->n_final_popped < s->n_jobs && timeout_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        while (!s->head && pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT) {
        }
    }
    srv_event *e = s->head;
    if (e) {
        s->head = e->next;
        if (!s->head) s->tail = NULL;
        if (e->kind != SRV_EV_TEXT) s->n_final_popped++;
        e->next = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

bool srv_sink_done(srv_sink *s) {
    pthread_mutex_lock(&s->mu);
    bool d = s->n_final_popped >= s->n_jobs;
    pthread_mutex_unlock(&s->mu);
    return d;
}

void srv_sink_cancel(srv_sink *s) { atomic_store(&s->cancel, true); }
bool srv_sink_cancelled(const srv_sink *s) { return atomic_load(&((srv_sink *)s)->cancel); }

int srv_job_create(srv_sink *sink, int index, const srv_gen_params *params, const lgpu_tokenizer *tok,
                   const int32_t *prompt, int n_prompt, double t_arrival, double deadline, srv_job **out) {
    *out = NULL;
    if (n_prompt < 1) return lgpu_set_error(LGPU_EINVAL, "empty prompt");
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return lgpu_set_error(LGPU_ENOMEM, "job");
    j->sink = sink;
    j->index = index;
    j->params = params;
    j->t_arrival = t_arrival;
    j->deadline = deadline;
    j->kv_seq = -1;
    j->n_prompt = j->n_all = n_prompt;
    j->cap_all = n_prompt + (params->max_tokens < 256 ? params->max_tokens : 256) + 1;
    j->all = malloc((size_t)j->cap_all * sizeof *j->all);
    j->reserve = calloc(1, sizeof *j->reserve);
    if (!j->all || !j->reserve) {
        srv_job_free(j);
        return lgpu_set_error(LGPU_ENOMEM, "job tokens");
    }
    memcpy(j->all, prompt, (size_t)n_prompt * sizeof *prompt);
    lgpu_sampler_params sp = params->sampling;
    if (sp.seed != LGPU_SAMPLER_SEED_RANDOM) sp.seed += (uint64_t)index;
    int st = lgpu_sampler_create(&sp, &j->smp);
    /* generated text continues the prompt: keep its leading space */
    if (!st && !(st = lgpu_detok_create(tok, false, &j->detok))) lgpu_detok_reset(j->detok, false);
    if (!st) st = lgpu_stop_create((const char *const *)params->stops, params->n_stops, &j->stop);
    /* penalties see the prompt, as llama.cpp's server does */
    for (int i = 0; !st && i < n_prompt; i++) st = lgpu_sampler_accept(j->smp, prompt[i]);
    if (st) {
        srv_job_free(j);
        return st;
    }
    *out = j;
    return 0;
}

void srv_job_free(srv_job *j) {
    if (!j) return;
    free(j->all);
    lgpu_sampler_destroy(j->smp);
    lgpu_detok_destroy(j->detok);
    lgpu_stop_destroy(j->stop);
    free(j->text);
    free(j->toks);
    srv_event_free(j->reserve);
    free(j);
}
