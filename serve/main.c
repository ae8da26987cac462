/* lgpu-serve: OpenAI-compatible streaming server.
 *
 * Startup: settings -> listen (GET /health answers 503 "loading" at once) ->
 * load the model -> start the engine thread -> 200 "ok".
 * SIGTERM / SIGINT: stop accepting (listener closed, new requests 503),
 * let in-flight requests finish, free everything, exit 0. A second signal
 * exits at once with status 130. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "http.h"
#include "lgpu/lora.h"
#include "models.h"
#include "server.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static bool g_shutdown;

/* Signals are blocked in every thread and taken here with sigwait. */
static void *signal_main(void *arg) {
    sigset_t *set = arg;
    for (int n = 0;; n++) {
        int sig;
        if (sigwait(set, &sig)) continue;
        if (n > 0) {
            fprintf(stderr, "lgpu-serve: second signal, exiting now\n");
            _exit(130);
        }
        fprintf(stderr, "lgpu-serve: %s: finishing in-flight requests, then exiting\n", strsignal(sig));
        pthread_mutex_lock(&g_mu);
        g_shutdown = true;
        pthread_cond_signal(&g_cv);
        pthread_mutex_unlock(&g_mu);
    }
    return NULL;
}

static const char *env_get(const char *name) { return getenv(name); }

/* Runs batches of 1..9 tokens, all with logits, so every kernel variant a
 * step can pick (they depend on the batch size and the number of logits
 * rows) is built now, while /health still says "loading", rather than
 * stalling the first requests (pipeline builds take seconds on lavapipe). */
static int warm_up(lgpu_ctx *ctx, int32_t token, const lgpu_lora *adapter) {
    const lgpu_ctx_params *cp = lgpu_ctx_params_of(ctx);
    const int32_t n_vocab = (int32_t)lgpu_model_hparams(lgpu_ctx_model(ctx))->n_vocab;
    enum { MAX_M = 9 };
    int32_t tok[MAX_M], seqv[MAX_M], pos[MAX_M];
    int8_t want[MAX_M];
    float *logits = malloc((size_t)MAX_M * (size_t)n_vocab * sizeof *logits);
    int seq = -1, st = logits ? lgpu_seq_create(ctx, &seq) : lgpu_set_error(LGPU_ENOMEM, "warm-up logits");
    /* with an adapter: only its kernel is new (its shape does not depend on the batch) */
    if (!st && adapter) st = lgpu_seq_set_adapters(ctx, seq, &adapter, NULL, 1);
    for (int m = adapter ? MAX_M : 1, len = 0; !st && m <= MAX_M && (uint32_t)m <= cp->n_batch; m++) {
        if ((uint32_t)(len + m) > cp->n_ctx) break;
        for (int i = 0; i < m; i++) {
            tok[i] = token;
            seqv[i] = seq;
            pos[i] = len + i;
            want[i] = 1;
        }
        lgpu_batch b = {.n = m, .token = tok, .seq = seqv, .pos = pos, .logits = want};
        st = lgpu_decode(ctx, &b, logits);
        len += m;
    }
    if (seq >= 0) lgpu_seq_destroy(ctx, seq);
    free(logits);
    return st;
}

static int load(srv_server *srv) {
    const srv_config *c = &srv->cfg;
    lgpu_model_params mp = {.path = c->model, .tokenizer_path = c->tokenizer, .device = c->device, .progress = false};
    int st = lgpu_model_create(&mp, &srv->model);
    if (st) return st;
    const lgpu_hparams *hp = lgpu_model_hparams(srv->model);
    uint32_t n_ctx = (uint32_t)c->ctx;
    if (!n_ctx) n_ctx = hp->n_ctx_train ? (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096) : 2048;
    /* every running sequence must get its token into each step */
    uint32_t n_batch = (uint32_t)(c->n_batch > c->parallel ? c->n_batch : c->parallel);
    lgpu_ctx_params cp = lgpu_ctx_params_default();
    cp.n_ctx = n_ctx, cp.n_seq_max = (uint32_t)c->parallel, cp.n_batch = n_batch, cp.n_blocks = (uint32_t)c->kv_blocks;
    if ((st = lgpu_ctx_params_kv_type(&cp, c->kv_type)) || (st = lgpu_ctx_create(srv->model, &cp, &srv->ctx)))
        return st;
    srv->tok = lgpu_model_tokenizer(srv->model);
    if (!srv->tok) return lgpu_set_error(LGPU_EINVAL, "the model has no tokenizer: give --tokenizer FILE");
    if ((st = lgpu_chat_template_of(srv->tok, c->chat_template, &srv->chat))) return st;
    double t0 = srv_now();
    int32_t bos = lgpu_tokenizer_bos(srv->tok);
    if ((st = srv_models_load(srv))) return st;
    if ((st = warm_up(srv->ctx, bos >= 0 ? bos : 0, NULL))) return st;
    if (srv->n_loras && (st = warm_up(srv->ctx, bos >= 0 ? bos : 0, srv->loras[0]))) return st;
    fprintf(stderr, "lgpu-serve: kernels ready in %.1f s\n", srv_now() - t0);
    srv->limits = (srv_limits){.n_ctx = (int32_t)n_ctx, .n_vocab = (int32_t)hp->n_vocab, .max_choices = 16};
    srv_sched_params sp = {.max_queue = (int)c->queue, .n_batch = (int)n_batch, .loras = srv->loras,
                           .lora_scales = srv->lora_scales, .n_loras = srv->n_loras};
    return srv_sched_create(srv->ctx, &sp, srv->metrics, &srv->sched);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            srv_config_usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("lgpu-serve %s\n", LGPU_VERSION_STRING);
            return 0;
        }
    }
    static srv_server srv;
    if (srv_config_load(&srv.cfg, argc, argv, env_get)) {
        fprintf(stderr, "lgpu-serve: %s\n", lgpu_last_error());
        return 2;
    }
    if (srv.cfg.model_default)
        fprintf(stderr, "lgpu-serve: no -m given: using the embedded %s model\n", LGPU_MODEL_EMBEDDED_NAME);
    srv.t_start = srv_now();
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    srv.id_salt = ((uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec) ^ ((uint64_t)getpid() << 40);
    atomic_init(&srv.state, SRV_LOADING);

    /* before any thread exists, so every thread inherits the mask */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_t sig_thread;
    pthread_create(&sig_thread, NULL, signal_main, &set);
    pthread_detach(sig_thread);

    int rc = 0;
    if (srv_metrics_create(&srv.metrics) || srv_http_start(&srv)) {
        fprintf(stderr, "lgpu-serve: %s\n", lgpu_last_error());
        srv_metrics_destroy(srv.metrics);
        srv_config_free(&srv.cfg);
        return 1;
    }
    fprintf(stderr, "lgpu-serve: listening on http://%s:%d (loading %s)\n", srv.cfg.host, srv.port, srv.cfg.model);

    if (load(&srv)) {
        snprintf(srv.load_error, sizeof srv.load_error, "%s", lgpu_last_error());
        atomic_store(&srv.state, SRV_FAILED);
        fprintf(stderr, "lgpu-serve: cannot load the model: %s\n", srv.load_error);
        rc = 1;
    } else {
        atomic_store(&srv.state, SRV_READY);
        fprintf(stderr, "lgpu-serve: ready: %s, model id '%s', %d slots x %d tokens\n", lgpu_model_desc(srv.model),
                srv.cfg.model_name, (int)srv.cfg.parallel, srv.limits.n_ctx);
        for (int i = 0; i < srv.n_loras; i++)
            fprintf(stderr, "lgpu-serve: model id '%s': LoRA adapter %s (rank %u) on '%s'\n", srv.cfg.lora_name[i],
                    srv.cfg.lora_spec[i], lgpu_lora_rank(srv.loras[i]), srv.cfg.model_name);
        pthread_mutex_lock(&g_mu);
        while (!g_shutdown) pthread_cond_wait(&g_cv, &g_mu);
        pthread_mutex_unlock(&g_mu);
        atomic_store(&srv.state, SRV_DRAINING);
        srv_sched_drain(srv.sched);
        srv_http_drain(&srv); /* in-flight requests finish; the engine still runs */
    }
    srv_http_stop(&srv);
    srv_sched_destroy(srv.sched);
    lgpu_ctx_destroy(srv.ctx);
    srv_models_free(&srv);
    lgpu_model_destroy(srv.model);
    srv_metrics_destroy(srv.metrics);
    srv_config_free(&srv.cfg);
    fprintf(stderr, "lgpu-serve: stopped\n");
    return rc;
}
