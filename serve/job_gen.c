/* Sampling, incremental detokenization, stop strings and event emission for
 * one job (see job_gen.h). */
#include "job_gen.h"

#include "json_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int text_append(srv_job *j, const char *s, size_t n) {
    if (srv_text_append(&j->text, &j->text_len, &j->text_cap, s, n))
        return lgpu_set_error(LGPU_ENOMEM, "generated text");
    return 0;
}

static int all_append(srv_job *j, int32_t t) {
    if (j->n_all == j->cap_all) {
        int cap = j->cap_all * 2;
        int32_t *p = realloc(j->all, (size_t)cap * sizeof *p);
        if (!p) return lgpu_set_error(LGPU_ENOMEM, "job tokens");
        j->all = p;
        j->cap_all = cap;
    }
    j->all[j->n_all++] = t;
    return 0;
}

/* j->toks holds only tokens not yet sent; it stays short. */
static srv_tokinfo *lgpu_tok_push(srv_job *j) {
    if (j->n_toks == j->cap_toks) {
        int cap = j->cap_toks ? j->cap_toks * 2 : 4;
        srv_tokinfo *p = realloc(j->toks, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        j->toks = p;
        j->cap_toks = cap;
    }
    srv_tokinfo *ti = &j->toks[j->n_toks++];
    memset(ti, 0, sizeof *ti);
    return ti;
}

static void fill_usage(const srv_job *j, srv_usage *u) {
    double now = srv_now();
    u->n_prompt = j->n_prompt;
    u->n_cached = j->n_cached;
    u->n_gen = j->n_gen;
    u->queue_s = j->t_admit > 0 ? j->t_admit - j->t_arrival : now - j->t_arrival;
    u->ttft_s = j->t_first > 0 ? j->t_first - j->t_arrival : 0;
    u->gen_s = j->t_first > 0 ? j->t_last - j->t_first : 0;
    u->total_s = now - j->t_arrival;
}

/* Sends text[emitted..upto) with the unsent tokens starting before upto
 * (every unsent token if all_tokens); a final event also ends the job. */
static int emit(srv_job *j, size_t upto, bool all_tokens, bool final, srv_finish fin) {
    size_t n = upto > j->emitted ? upto - j->emitted : 0;
    int nt = 0;
    if (all_tokens) nt = j->n_toks;
    else
        while (nt < j->n_toks && j->toks[nt].offset < upto) nt++;
    if (!final && n == 0 && nt == 0) return 0;
    srv_event *e = calloc(1, sizeof *e);
    if (!e) return lgpu_set_error(LGPU_ENOMEM, "event");
    e->text = malloc(n + 1);
    e->tok = nt ? malloc((size_t)nt * sizeof *e->tok) : NULL;
    if (!e->text || (nt && !e->tok)) {
        srv_event_free(e);
        return lgpu_set_error(LGPU_ENOMEM, "event");
    }
    memcpy(e->text, j->text ? j->text + j->emitted : "", n);
    e->text[n] = 0;
    e->len = n;
    if (nt) memcpy(e->tok, j->toks, (size_t)nt * sizeof *e->tok);
    e->n_tok = nt;
    memmove(j->toks, j->toks + nt, (size_t)(j->n_toks - nt) * sizeof *j->toks);
    j->n_toks -= nt;
    if (upto > j->emitted) j->emitted = upto;
    e->job = j->index;
    e->kind = final ? SRV_EV_DONE : SRV_EV_TEXT;
    e->finish = fin;
    if (final) {
        fill_usage(j, &e->usage);
        srv_event_free(j->reserve); /* ended: the reserve is not needed */
        j->reserve = NULL;
    }
    srv_sink_push(j->sink, e);
    return 0;
}

/* End of generation without a stop-string match so far: flush the
 * detokenizer (held partial UTF-8), look for a stop string once more, send
 * the rest. */
static int finish(srv_job *j, srv_finish fin) {
    const char *rest;
    size_t rl;
    int st = lgpu_detok_flush(j->detok, &rest, &rl);
    if (!st) st = text_append(j, rest, rl);
    if (st) return st;
    lgpu_stop_result sr;
    int found = lgpu_stop_scan(j->stop, j->text ? j->text : "", j->text_len, j->safe, &sr);
    if (found < 0) return found;
    if (found) return emit(j, sr.stop_pos, false, true, SRV_FINISH_STOP);
    return emit(j, j->text_len, true, true, fin);
}

int srv_job_on_logits(srv_job *j, const float *logits, int32_t n_vocab, const lgpu_tokenizer *tok, uint32_t n_ctx,
                      srv_metrics *m, bool *done) {
    *done = false;
    const srv_gen_params *p = j->params;
    /* the raw log-softmax costs a pass of exp() over the vocabulary: only when asked */
    lgpu_sample_info info = {0};
    int32_t t = lgpu_sampler_sample(j->smp, logits, n_vocab, p->logprobs >= 0 ? &info : NULL);
    if (t < 0) return t;
    int st = lgpu_sampler_accept(j->smp, t);
    if (st) return st;
    double now = srv_now();
    if (j->t_first == 0) {
        j->t_first = now;
        srv_metrics_observe(m, SRV_H_TTFT, now - j->t_arrival);
    } else {
        srv_metrics_observe(m, SRV_H_ITL, now - j->t_last);
    }
    j->t_last = now;
    if (!p->ignore_eos && lgpu_tokenizer_is_eog(tok, t)) {
        *done = true;
        return finish(j, SRV_FINISH_STOP);
    }
    j->n_gen++;
    srv_metrics_tokens(m, 0, 1);
    if ((st = all_append(j, t))) return st;
    srv_tokinfo *ti = lgpu_tok_push(j);
    if (!ti) return lgpu_set_error(LGPU_ENOMEM, "token list");
    ti->id = t;
    ti->logprob = info.logprob;
    ti->offset = (uint32_t)j->text_len;
    if (p->logprobs > 0) {
        int k = lgpu_logprobs_top(logits, n_vocab, p->logprobs, ti->top_id, ti->top_lp);
        if (k < 0) return k;
        ti->n_top = k;
    }
    const char *piece;
    size_t pl;
    if ((st = lgpu_detok_push(j->detok, t, &piece, &pl)) || (st = text_append(j, piece, pl))) return st;
    lgpu_stop_result sr;
    int found = lgpu_stop_scan(j->stop, j->text ? j->text : "", j->text_len, j->safe, &sr);
    if (found < 0) return found;
    if (found) {
        *done = true;
        return emit(j, sr.stop_pos, false, true, SRV_FINISH_STOP);
    }
    j->safe = sr.safe_len;
    /* the new token must still fit in the context to be decoded */
    if (j->n_gen >= p->max_tokens || (uint32_t)j->n_all > n_ctx) {
        *done = true;
        return finish(j, SRV_FINISH_LENGTH);
    }
    return emit(j, j->safe, false, false, SRV_FINISH_STOP);
}

void srv_job_fail(srv_job *j, int status, const char *code, const char *fmt, ...) {
    /* the event reserved at creation: ending a job never needs memory */
    srv_event *e = j->reserve;
    j->reserve = NULL;
    if (!e) return; /* already ended */
    e->job = j->index;
    e->kind = SRV_EV_ERROR;
    e->status = status;
    snprintf(e->code, sizeof e->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    fill_usage(j, &e->usage);
    srv_sink_push(j->sink, e);
}
