/* lgpu-serve settings: defaults < config file < environment < flags. */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lgpu/lgpu.h"
#include "lgpu/llama.h"

typedef enum { K_STR, K_INT, K_LORA } opt_kind;

typedef struct {
    const char *key;   /* config-file key; the flag is --key with '_' -> '-' */
    const char *alias; /* short flag or NULL */
    opt_kind kind;
    size_t off;
    long min, max; /* K_INT range */
    const char *help;
} opt_def;

#define OFF(f) offsetof(srv_config, f)
static const opt_def OPTS[] = {
    {"model", "-m", K_STR, OFF(model), 0, 0,
     "model: GGUF file, HF directory, llama2.c .bin or ORG/NAME[:FILE] (default: the embedded " LGPU_MODEL_EMBEDDED_NAME ")"},
    {"host", NULL, K_STR, OFF(host), 0, 0, "address to listen on (default 127.0.0.1)"},
    {"port", NULL, K_INT, OFF(port), 0, 65535, "port (default 8080; 0 picks a free one)"},
    {"parallel", "-np", K_INT, OFF(parallel), 1, 256, "sequences decoded together (default 4)"},
    {"ctx", "-c", K_INT, OFF(ctx), 0, 1 << 20, "context tokens per sequence (default: the model's, at most 4096)"},
    {"config", NULL, K_STR, OFF(config), 0, 0, "JSON file with any of these settings (keys as the long flags)"},
    {"tokenizer", NULL, K_STR, OFF(tokenizer), 0, 0, "tokenizer file (tokenizer.bin / tokenizer.json / GGUF)"},
    {"device", NULL, K_STR, OFF(device), 0, 0, "device: index, name substring or cpu (default: automatic)"},
    {"queue", NULL, K_INT, OFF(queue), 0, 100000, "waiting requests before 429 (default 64)"},
    {"timeout", NULL, K_INT, OFF(timeout), 0, 86400 * 7, "seconds per request, queue included; 0: none (default 600)"},
    {"max_body", NULL, K_INT, OFF(max_body), 1, 1L << 30, "largest request body in bytes (default 1048576)"},
    {"model_name", NULL, K_STR, OFF(model_name), 0, 0, "model id served (default: the model file's name)"},
    {"n_batch", NULL, K_INT, OFF(n_batch), 1, 65536, "tokens per engine step (default 512)"},
    {"kv_blocks", NULL, K_INT, OFF(kv_blocks), 0, 1L << 24, "KV cache blocks of 16 tokens (default: all slots full)"},
    {"kv_type", NULL, K_STR, OFF(kv_type), 0, 0, "KV cache type: auto (f16 on a GPU, f32 on the CPU), f16 or f32"},
    {"http_threads", NULL, K_INT, OFF(http_threads), 0, 4096, "HTTP worker threads (default parallel+queue+8)"},
    {"chat_template", NULL, K_STR, OFF(chat_template), 0, 0, "chat template: chatml, llama2, llama3, zephyr"},
    {"lora", NULL, K_LORA, 0, 0, 0,
     "LoRA adapter NAME=FILE[:SCALE], served as model NAME (repeatable; PEFT folder or GGUF)"},
};
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

static char **str_at(srv_config *c, const opt_def *o) { return (char **)((char *)c + o->off); }
static long *int_at(srv_config *c, const opt_def *o) { return (long *)((char *)c + o->off); }

/* "max_body" -> "LGPU_MAX_BODY" */
static void env_name(const opt_def *o, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "LGPU_%s", o->key);
    for (size_t i = 5; i < n && i < cap; i++)
        if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] = (char)(buf[i] - 'a' + 'A');
}

/* "--max-body" and "--max_body" both name max_body. */
static const opt_def *find_flag(const char *arg) {
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt_def *o = &OPTS[i];
        if (o->alias && !strcmp(arg, o->alias)) return o;
        if (arg[0] != '-' || arg[1] != '-') continue;
        const char *a = arg + 2, *k = o->key;
        while (*a && *k && (*a == *k || (*a == '-' && *k == '_'))) a++, k++;
        if (!*a && !*k) return o;
    }
    return NULL;
}

static const opt_def *find_key(const char *key) {
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *a = key, *k = OPTS[i].key;
        while (*a && *k && (*a == *k || (*a == '-' && *k == '_'))) a++, k++;
        if (!*a && !*k) return &OPTS[i];
    }
    return NULL;
}

static int set_str(srv_config *c, const opt_def *o, const char *v, const char *where) {
    if (!*v) return lgpu_set_error(LGPU_EINVAL, "%s: empty value", where);
    char *d = strdup(v);
    if (!d) return lgpu_set_error(LGPU_ENOMEM, "%s", where);
    free(*str_at(c, o));
    *str_at(c, o) = d;
    return 0;
}

static int set_int(srv_config *c, const opt_def *o, long long v, const char *where) {
    if (v < o->min || v > o->max)
        return lgpu_set_error(LGPU_EINVAL, "%s: %lld is out of range [%ld, %ld]", where, v, o->min, o->max);
    *int_at(c, o) = (long)v;
    return 0;
}

static void lora_clear(srv_config *c) {
    for (int i = 0; i < c->n_lora; i++) {
        free(c->lora_name[i]);
        free(c->lora_spec[i]);
        c->lora_name[i] = c->lora_spec[i] = NULL;
    }
    c->n_lora = 0;
}

/* Appends adapter `name` served from `spec`; a NULL name splits spec as NAME=FILE[:SCALE]. */
static int lora_add(srv_config *c, const char *name, const char *spec, const char *where) {
    size_t nl = name ? strlen(name) : 0;
    if (!name) {
        const char *eq = strchr(spec, '=');
        if (!eq) return lgpu_set_error(LGPU_EINVAL, "%s: '%s' is not NAME=FILE[:SCALE]", where, spec);
        name = spec;
        nl = (size_t)(eq - spec);
        spec = eq + 1;
    }
    if (!nl || !*spec) return lgpu_set_error(LGPU_EINVAL, "%s: an adapter needs a NAME and a FILE", where);
    if (c->n_lora == SRV_MAX_LORAS) return lgpu_set_error(LGPU_EINVAL, "%s: at most %d adapters", where, SRV_MAX_LORAS);
    for (int i = 0; i < c->n_lora; i++)
        if (strlen(c->lora_name[i]) == nl && !strncmp(c->lora_name[i], name, nl))
            return lgpu_set_error(LGPU_EINVAL, "%s: adapter name '%.*s' given twice", where, (int)nl, name);
    char *n = strndup(name, nl), *f = strdup(spec);
    if (!n || !f) {
        free(n);
        free(f);
        return lgpu_set_error(LGPU_ENOMEM, "%s", where);
    }
    c->lora_name[c->n_lora] = n;
    c->lora_spec[c->n_lora++] = f;
    return 0;
}

/* LGPU_LORA: comma-separated NAME=FILE[:SCALE] entries. */
static int lora_env(srv_config *c, const char *v, const char *where) {
    lora_clear(c);
    char *copy = strdup(v), *save = NULL;
    if (!copy) return lgpu_set_error(LGPU_ENOMEM, "%s", where);
    int st = 0;
    for (char *t = strtok_r(copy, ",", &save); t && !st; t = strtok_r(NULL, ",", &save)) st = lora_add(c, NULL, t, where);
    free(copy);
    return st;
}

static int lora_json(srv_config *c, const json_t *v, const char *where) {
    lora_clear(c);
    if (json_is_string(v)) return lora_add(c, NULL, json_string_value(v), where);
    int st = 0;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (!json_is_string(e)) return lgpu_set_error(LGPU_EINVAL, "%s: entries must be \"NAME=FILE[:SCALE]\"", where);
            if ((st = lora_add(c, NULL, json_string_value(e), where))) return st;
        }
        return 0;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e) {
            if (!json_is_string(e)) return lgpu_set_error(LGPU_EINVAL, "%s: \"%s\" must be \"FILE[:SCALE]\"", where, k);
            if ((st = lora_add(c, k, json_string_value(e), where))) return st;
        }
        return 0;
    }
    return lgpu_set_error(LGPU_EINVAL, "%s: must be \"NAME=FILE[:SCALE]\", an array of them or {NAME: FILE}", where);
}

/* A value given as text (env or flag). */
static int set_text(srv_config *c, const opt_def *o, const char *v, const char *where) {
    if (o->kind == K_LORA) return lora_env(c, v, where);
    if (o->kind == K_STR) return set_str(c, o, v, where);
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno) return lgpu_set_error(LGPU_EINVAL, "%s: '%s' is not an integer", where, v);
    return set_int(c, o, x, where);
}

static int load_file(srv_config *c, const char *path) {
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) return lgpu_set_error(LGPU_EINVAL, "config %s:%d:%d: %s", path, je.line, je.column, je.text);
    int st = 0;
    if (!json_is_object(root)) {
        st = lgpu_set_error(LGPU_EINVAL, "config %s: the top level must be a JSON object", path);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        char where[256];
        snprintf(where, sizeof where, "config %s: key \"%s\"", path, key);
        const opt_def *o = find_key(key);
        if (!o || o->off == OFF(config)) {
            st = lgpu_set_error(LGPU_EINVAL, "%s: unknown setting", where);
            goto out;
        }
        if (o->kind == K_LORA) {
            st = lora_json(c, v, where);
        } else if (o->kind == K_STR) {
            if (!json_is_string(v)) {
                st = lgpu_set_error(LGPU_EINVAL, "%s: must be a string", where);
                goto out;
            }
            st = set_str(c, o, json_string_value(v), where);
        } else {
            if (!json_is_integer(v)) {
                st = lgpu_set_error(LGPU_EINVAL, "%s: must be an integer", where);
                goto out;
            }
            st = set_int(c, o, json_integer_value(v), where);
        }
        if (st) goto out;
    }
out:
    json_decref(root);
    return st;
}

static int set_defaults(srv_config *c) {
    memset(c, 0, sizeof *c);
    c->host = strdup("127.0.0.1");
    if (!c->host) return lgpu_set_error(LGPU_ENOMEM, "config");
    c->port = 8080;
    c->parallel = 4;
    c->queue = 64;
    c->timeout = 600;
    c->max_body = 1 << 20;
    c->n_batch = 512;
    return 0;
}

/* Model id: the file name without directories and extension
 * ("embedded:stories260K": "stories260K"). */
static int default_model_name(srv_config *c) {
    const char *base = strrchr(c->model, '/');
    base = base && base[1] ? base + 1 : c->model;
    if (!strncmp(base, LGPU_EMBEDDED_PREFIX, strlen(LGPU_EMBEDDED_PREFIX))) base += strlen(LGPU_EMBEDDED_PREFIX);
    char *d = strdup(base);
    if (!d) return lgpu_set_error(LGPU_ENOMEM, "config");
    char *dot = strrchr(d, '.');
    if (dot && dot != d && (!strcmp(dot, ".gguf") || !strcmp(dot, ".bin"))) *dot = 0;
    c->model_name = d;
    return 0;
}

int srv_config_load(srv_config *c, int argc, char **argv, srv_getenv_fn env) {
    int st = set_defaults(c);
    if (st) return st;
    /* The config file comes first whatever its source, so find it now. */
    const char *file = env ? env("LGPU_CONFIG") : NULL;
    for (int i = 1; i < argc; i++) {
        const opt_def *o = find_flag(argv[i]);
        if (o && i + 1 < argc) {
            if (o->off == OFF(config)) file = argv[i + 1];
            i++;
        }
    }
    if (file && ((st = set_str(c, find_key("config"), file, "--config")) || (st = load_file(c, file)))) goto fail;
    if (env)
        for (size_t i = 0; i < N_OPTS; i++) {
            char name[64];
            env_name(&OPTS[i], name, sizeof name);
            const char *v = env(name);
            if (v && OPTS[i].off != OFF(config) && (st = set_text(c, &OPTS[i], v, name))) goto fail;
        }
    bool lora_flag = false; /* --lora flags replace the lower sources' list, then add up */
    for (int i = 1; i < argc; i++) {
        const opt_def *o = find_flag(argv[i]);
        if (!o) {
            st = lgpu_set_error(LGPU_EINVAL, "unknown option '%s' (see --help)", argv[i]);
            goto fail;
        }
        if (i + 1 >= argc) {
            st = lgpu_set_error(LGPU_EINVAL, "option %s needs a value", argv[i]);
            goto fail;
        }
        if (o->kind == K_LORA) {
            if (!lora_flag) lora_clear(c);
            lora_flag = true;
            if ((st = lora_add(c, NULL, argv[i + 1], argv[i]))) goto fail;
        } else if ((st = set_text(c, o, argv[i + 1], argv[i]))) {
            goto fail;
        }
        i++;
    }
    if (!c->model) { /* the model built into liblgpu */
        c->model_default = true;
        if (!(c->model = strdup(LGPU_MODEL_EMBEDDED))) {
            st = lgpu_set_error(LGPU_ENOMEM, "config");
            goto fail;
        }
    }
    if (!c->model_name && (st = default_model_name(c))) goto fail;
    for (int i = 0; i < c->n_lora; i++)
        if (!strcmp(c->lora_name[i], c->model_name)) {
            st = lgpu_set_error(LGPU_EINVAL, "--lora: adapter name '%s' is the base model's id (see --model-name)",
                                c->lora_name[i]);
            goto fail;
        }
    lgpu_ctx_params probe = lgpu_ctx_params_default();
    if ((st = lgpu_ctx_params_kv_type(&probe, c->kv_type))) goto fail; /* a bad name fails before the model loads */
    return 0;
fail:
    srv_config_free(c);
    return st;
}

void srv_config_free(srv_config *c) {
    if (!c) return;
    lora_clear(c);
    for (size_t i = 0; i < N_OPTS; i++)
        if (OPTS[i].kind == K_STR) {
            free(*str_at(c, &OPTS[i]));
            *str_at(c, &OPTS[i]) = NULL;
        }
}

void srv_config_usage(FILE *f) {
    fprintf(f, "usage: lgpu-serve [-m MODEL] [options]\n\noptions (flag / environment variable):\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char flag[64], name[64];
        int k = snprintf(flag, sizeof flag, "%s%s--%s", OPTS[i].alias ? OPTS[i].alias : "", OPTS[i].alias ? ", " : "",
                         OPTS[i].key);
        for (char *p = flag + k - (int)strlen(OPTS[i].key); *p; p++)
            if (*p == '_') *p = '-';
        env_name(&OPTS[i], name, sizeof name);
        fprintf(f, "  %-20s %-19s %s\n", flag, name, OPTS[i].help);
    }
    fprintf(f, "\nPrecedence: defaults < config file < environment < flags.\n");
}
