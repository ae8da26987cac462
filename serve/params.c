/* Sampling / length / stop / logprobs fields of a request (see params.h). */
#include "params.h"

#include "json_text.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int srv_err_vset(srv_err *e, int status, const char *type, const char *code, const char *param, const char *fmt,
                 va_list ap) {
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    return -1;
}

int srv_err_set(srv_err *e, int status, const char *type, const char *code, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    srv_err_vset(e, status, type, code, param, fmt, ap);
    va_end(ap);
    return -1;
}

int srv_err_invalid(srv_err *e, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    srv_err_vset(e, 400, "invalid_request_error", NULL, param, fmt, ap);
    va_end(ap);
    return -1;
}

json_t *srv_err_json(const srv_err *e) {
    json_t *o = json_object();
    /* messages can quote client bytes (jansson's parse errors do): keep them valid UTF-8 */
    json_object_set_new(o, "message", srv_json_text(e->message, strlen(e->message)));
    json_object_set_new(o, "type", json_string(e->type ? e->type : "server_error"));
    json_object_set_new(o, "param", e->param[0] ? json_string(e->param) : json_null());
    json_object_set_new(o, "code", e->code ? json_string(e->code) : json_null());
    json_t *root = json_object();
    json_object_set_new(root, "error", o);
    return root;
}

const char *srv_json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Field present and not null. */
static const json_t *field(const json_t *body, const char *key) {
    const json_t *v = json_object_get(body, key);
    return v && !json_is_null(v) ? v : NULL;
}

static int get_number(const json_t *body, const char *key, double lo, double hi, float *out, srv_err *err) {
    const json_t *v = field(body, key);
    if (!v) return 0;
    if (!json_is_number(v)) return srv_err_invalid(err, key, "'%s' must be a number, not %s", key, srv_json_type_name(v));
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi)
        return srv_err_invalid(err, key, "'%s' must be between %g and %g (got %g)", key, lo, hi, x);
    *out = (float)x;
    return 0;
}

static int get_int(const json_t *body, const char *key, long long lo, long long hi, long long *out, srv_err *err) {
    const json_t *v = field(body, key);
    if (!v) return 0;
    if (!json_is_integer(v))
        return srv_err_invalid(err, key, "'%s' must be an integer, not %s", key, srv_json_type_name(v));
    long long x = json_integer_value(v);
    if (x < lo || x > hi) return srv_err_invalid(err, key, "'%s' must be between %lld and %lld (got %lld)", key, lo, hi, x);
    *out = x;
    return 0;
}

static int get_bool(const json_t *body, const char *key, bool *out, srv_err *err) {
    const json_t *v = field(body, key);
    if (!v) return 0;
    if (!json_is_boolean(v)) return srv_err_invalid(err, key, "'%s' must be a boolean, not %s", key, srv_json_type_name(v));
    *out = json_is_true(v);
    return 0;
}

#define MAX_STOP_BYTES 1024

static int add_stop(srv_gen_params *gp, const json_t *s, const char *param, srv_err *err) {
    if (!json_is_string(s)) return srv_err_invalid(err, param, "'%s' must be a string, not %s", param, srv_json_type_name(s));
    if (json_string_length(s) > MAX_STOP_BYTES)
        return srv_err_invalid(err, param, "'%s' is longer than %d bytes", param, MAX_STOP_BYTES);
    char *d = strdup(json_string_value(s));
    if (!d) return srv_err_set(err, 500, "server_error", NULL, NULL, "out of memory");
    gp->stops[gp->n_stops++] = d;
    return 0;
}

static int parse_stop(const json_t *body, srv_gen_params *gp, srv_err *err) {
    const json_t *v = field(body, "stop");
    if (!v) return 0;
    if (json_is_string(v)) return add_stop(gp, v, "stop", err);
    if (!json_is_array(v))
        return srv_err_invalid(err, "stop", "'stop' must be a string or an array of strings, not %s",
                               srv_json_type_name(v));
    if (json_array_size(v) > SRV_MAX_STOPS)
        return srv_err_invalid(err, "stop", "'stop' has %zu entries; at most %d are allowed", json_array_size(v),
                               SRV_MAX_STOPS);
    size_t i;
    const json_t *s;
    json_array_foreach(v, i, s) {
        char param[32];
        snprintf(param, sizeof param, "stop[%zu]", i);
        if (add_stop(gp, s, param, err)) return -1;
    }
    return 0;
}

/* chat: logprobs bool + top_logprobs 0..20; completions: logprobs int 0..5. */
static int parse_logprobs(const json_t *body, srv_api api, srv_gen_params *gp, srv_err *err) {
    gp->logprobs = -1;
    if (api == SRV_API_COMPLETIONS) {
        long long k = -1;
        if (get_int(body, "logprobs", 0, 5, &k, err)) return -1;
        gp->logprobs = (int)k;
        return 0;
    }
    bool want = false;
    long long top = 0;
    if (get_bool(body, "logprobs", &want, err) || get_int(body, "top_logprobs", 0, SRV_MAX_TOP_LOGPROBS, &top, err))
        return -1;
    if (field(body, "top_logprobs") && !want)
        return srv_err_invalid(err, "top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
    gp->logprobs = want ? (int)top : -1;
    return 0;
}

int srv_params_parse(const json_t *body, srv_api api, const srv_limits *lim, srv_gen_params *gp, int *n_choices,
                     srv_err *err) {
    memset(gp, 0, sizeof *gp);
    lgpu_sampler_params_default(&gp->sampling);
    gp->logprobs = -1;
    gp->adapter = -1; /* the caller picks the model (models.h) */
    *n_choices = 1;
    /* OpenAI's defaults for the fields it has; llama.cpp's for the extensions */
    gp->sampling.temperature = 1.0f;
    gp->sampling.top_p = 1.0f;
    gp->sampling.top_k = 0;
    gp->sampling.min_p = 0.0f;
    gp->sampling.repeat_penalty = 1.0f;
    long long max_tok = api == SRV_API_COMPLETIONS ? 16 : api == SRV_API_NATIVE ? 128 : lim->n_ctx;
    if (!json_is_object(body)) return srv_err_invalid(err, NULL, "the request body must be a JSON object");
    const char *mt_key = field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if (get_int(body, mt_key, 1, lim->n_ctx, &max_tok, err)) {
        /* name the context in the message when the value is merely too big */
        const json_t *v = field(body, mt_key);
        if (json_is_integer(v) && json_integer_value(v) > lim->n_ctx)
            srv_err_invalid(err, mt_key, "'%s' is %lld but the context holds only %d tokens", mt_key,
                            (long long)json_integer_value(v), lim->n_ctx);
        return -1;
    }
    gp->max_tokens = (int32_t)max_tok;
    lgpu_sampler_params *sp = &gp->sampling;
    long long top_k = sp->top_k, last_n = sp->repeat_last_n, n = 1;
    long long seed = 0;
    if (get_number(body, "temperature", 0, 2, &sp->temperature, err) ||
        get_number(body, "top_p", 0, 1, &sp->top_p, err) || get_int(body, "top_k", 0, 1 << 30, &top_k, err) ||
        get_number(body, "min_p", 0, 1, &sp->min_p, err) ||
        get_number(body, "typical_p", 1e-6, 1, &sp->typical_p, err) ||
        get_number(body, "repeat_penalty", 1e-6, 10, &sp->repeat_penalty, err) ||
        get_int(body, "repeat_last_n", -1, 1 << 20, &last_n, err) ||
        get_number(body, "presence_penalty", -2, 2, &sp->presence_penalty, err) ||
        get_number(body, "frequency_penalty", -2, 2, &sp->frequency_penalty, err) ||
        get_int(body, "n", 1, lim->max_choices, &n, err) ||
        get_bool(body, "ignore_eos", &gp->ignore_eos, err))
        return -1;
    sp->top_k = (int32_t)top_k;
    sp->repeat_last_n = (int32_t)last_n;
    *n_choices = (int)n;
    const json_t *sv = field(body, "seed");
    if (sv) {
        if (!json_is_integer(sv))
            return srv_err_invalid(err, "seed", "'seed' must be an integer, not %s", srv_json_type_name(sv));
        seed = json_integer_value(sv);
        sp->seed = (uint64_t)seed;
        if (sp->seed == LGPU_SAMPLER_SEED_RANDOM) sp->seed = 0x5eed; /* -1 is a seed like any other */
        gp->seed_given = true;
    } else {
        sp->seed = LGPU_SAMPLER_SEED_RANDOM;
    }
    if (parse_stop(body, gp, err) || parse_logprobs(body, api, gp, err)) {
        srv_gen_params_free(gp);
        return -1;
    }
    /* what we do not implement is refused rather than silently ignored */
    const json_t *v;
    if ((v = field(body, "logit_bias")) && (!json_is_object(v) || json_object_size(v) > 0)) {
        srv_gen_params_free(gp);
        return srv_err_invalid(err, "logit_bias", "'logit_bias' is not supported");
    }
    if ((v = field(body, "best_of")) && !(json_is_integer(v) && json_integer_value(v) == n)) {
        srv_gen_params_free(gp);
        return srv_err_invalid(err, "best_of", "'best_of' other than n is not supported");
    }
    if ((v = field(body, "tools")) && (!json_is_array(v) || json_array_size(v) > 0)) {
        srv_gen_params_free(gp);
        return srv_err_invalid(err, "tools", "'tools' are not supported");
    }
    if ((v = field(body, "response_format"))) {
        const json_t *t = json_is_object(v) ? json_object_get(v, "type") : NULL;
        if (!json_is_string(t) || strcmp(json_string_value(t), "text")) {
            srv_gen_params_free(gp);
            return srv_err_invalid(err, "response_format", "only 'response_format' {\"type\":\"text\"} is supported");
        }
    }
    return 0;
}
