/* lgpu-serve: the state shared by the HTTP handlers, the engine thread and main. */
#ifndef LGPU_SERVE_SERVER_H
#define LGPU_SERVE_SERVER_H

#include <stdatomic.h>

#include "config.h"
#include "lgpu/llama.h"
#include "metrics.h"
#include "params.h"
#include "scheduler.h"

struct mg_context;
struct srv_ws;

typedef enum { SRV_LOADING = 0, SRV_READY, SRV_DRAINING, SRV_FAILED } srv_state;

typedef struct srv_server {
    srv_config cfg;
    atomic_int state; /* srv_state; the fields below the line are valid once READY */
    double t_start;   /* srv_now() at startup */
    struct mg_context *mg;
    int port;         /* the port actually listened on */
    srv_metrics *metrics;
    struct srv_ws *ws;
    atomic_uint_fast64_t next_id;
    uint64_t id_salt; /* random per run: ids differ across restarts */
    atomic_int n_active; /* request handlers running (HTTP and WebSocket generations) */
    char load_error[256];
    /* ---- READY ---- */
    lgpu_model *model;
    lgpu_ctx *ctx;
    lgpu_tokenizer *tok;
    lgpu_chat_template chat; /* --chat-template, else the tokenizer's, resolved once at load */
    srv_sched *sched;
    srv_limits limits;
    struct lgpu_lora *loras[SRV_MAX_LORAS]; /* cfg.lora_name[i]'s adapter (models.c) */
    float lora_scales[SRV_MAX_LORAS];
    int n_loras;
} srv_server;

static inline srv_state srv_state_of(srv_server *s) { return (srv_state)atomic_load(&s->state); }

#endif
