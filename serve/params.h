/* Validation of generation requests: sampling fields shared by the OpenAI,
 * native and WebSocket APIs, with OpenAI-shaped errors naming the field. */
#ifndef LGPU_SERVE_PARAMS_H
#define LGPU_SERVE_PARAMS_H

#include <jansson.h>
#include <stdarg.h>

#include "request.h"

/* An error for the client: {"error":{"message","type","param","code"}}. */
typedef struct srv_err {
    int status;       /* HTTP status */
    const char *type; /* "invalid_request_error", "server_error", ... */
    const char *code; /* NULL -> JSON null */
    char param[96];   /* "" -> JSON null */
    char message[384];
} srv_err;

/* Fills *e and returns -1 (for `return srv_err_set(...)`). */
int srv_err_vset(srv_err *e, int status, const char *type, const char *code, const char *param, const char *fmt,
                 va_list ap) __attribute__((format(printf, 6, 0)));
int srv_err_set(srv_err *e, int status, const char *type, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* 400 invalid_request_error naming `param`. */
int srv_err_invalid(srv_err *e, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The error object {"error":{...}} (new reference). */
json_t *srv_err_json(const srv_err *e);

typedef enum { SRV_API_CHAT, SRV_API_COMPLETIONS, SRV_API_NATIVE } srv_api;

typedef struct srv_limits {
    int32_t n_ctx;     /* context size: max_tokens and prompts must fit */
    int32_t n_vocab;   /* token ids in prompts must be below */
    int max_choices;   /* largest n */
} srv_limits;

/* Parses max_tokens / max_completion_tokens, temperature, top_p, top_k,
 * min_p, typical_p, repeat_penalty, repeat_last_n, presence_penalty,
 * frequency_penalty, seed, stop, n, logprobs / top_logprobs, ignore_eos.
 * JSON null counts as absent; unknown fields are ignored. */
int srv_params_parse(const json_t *body, srv_api api, const srv_limits *lim, srv_gen_params *gp, int *n_choices,
                     srv_err *err);

/* Shape checks shared by handlers. */
const char *srv_json_type_name(const json_t *v);

#endif
