/* lgpu-serve settings: one table of options, four sources.
 * Precedence (later wins): built-in defaults < JSON config file (--config or
 * LGPU_CONFIG) < environment (LGPU_HOST, LGPU_PORT, ...) < command-line flags. */
#ifndef LGPU_SERVE_CONFIG_H
#define LGPU_SERVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define SRV_MAX_LORAS 32

typedef struct srv_config {
    char *model;         /* model file / dir / ORG/NAME[:FILE] / embedded:NAME */
    char *host;          /* listening address */
    long port;           /* 0: any free port (the chosen one is printed) */
    long parallel;       /* sequences decoded at once (KV sequence slots) */
    long ctx;            /* tokens per sequence (0: the model's, at most 4096) */
    char *config;        /* the JSON file that was read, if any */
    char *tokenizer;     /* optional tokenizer file */
    char *device;        /* device selector (index, name substring, "cpu") */
    long queue;          /* waiting requests allowed before 429 */
    long timeout;        /* seconds a request may take in all (0: no limit) */
    long max_body;       /* largest accepted request body, bytes */
    char *model_name;    /* the "model" id clients use (default: file name stem) */
    long n_batch;        /* token budget of one engine step */
    long kv_blocks;      /* KV pool size in blocks (0: room for every slot's full context) */
    long http_threads;   /* civetweb worker threads (0: parallel + queue + 8) */
    char *chat_template; /* chat template name overriding the model's */
    char *kv_type;       /* KV cache type: auto, f16 or f32 */
    bool model_default;  /* none given: model is LGPU_MODEL_EMBEDDED, the one built into liblgpu */
    /* LoRA adapters, each a model id next to model_name: --lora NAME=FILE[:SCALE]
     * (repeatable), "lora" in the file (a string, an array of them or an
     * object {NAME: "FILE[:SCALE]"}), LGPU_LORA (comma-separated). */
    char *lora_name[SRV_MAX_LORAS];
    char *lora_spec[SRV_MAX_LORAS]; /* FILE[:SCALE] (lgpu_lora_spec_parse) */
    int n_lora;
} srv_config;

/* Environment lookup (getenv in the program, a fake in tests). */
typedef const char *(*srv_getenv_fn)(const char *name);

/* Fills *c from defaults, the config file, env and argv[1..argc). On error
 * returns LGPU_EINVAL with a detail naming the flag / key / variable. */
int srv_config_load(srv_config *c, int argc, char **argv, srv_getenv_fn env);
void srv_config_free(srv_config *c);
/* Options and their env names, for --help. */
void srv_config_usage(FILE *f);

#endif
