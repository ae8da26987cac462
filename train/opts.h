/* lgpu-train settings: one table of options, three sources.
 * Precedence (later wins): defaults < JSON config file (--config; with
 * --resume and no --config, the resumed run's train_config.json) < flags.
 * Every key of the file is also a flag: "micro_batch" / "micro-batch" is
 * --micro-batch; transformers / PEFT spellings are aliases of both
 * ("learning_rate", "lora_alpha", "per_device_train_batch_size", ...). */
#ifndef LGPU_TRAIN_OPTS_H
#define LGPU_TRAIN_OPTS_H

#include <stdbool.h>
#include <stdio.h>

#include "lgpu/train.h"

typedef struct train_opts {
    lgpu_train_params p;         /* the trainer's parameters (strings point into argv or the config) */
    const char *model;           /* -m (NULL: the embedded model) */
    const char *tokenizer;       /* --tokenizer */
    const char *device;          /* --device (NULL: $LGPU_DEVICE, else automatic) */
    const char *resume;          /* --resume: a checkpoint or an output folder */
    const char *config;          /* --config: the JSON file read, if any */
    bool overwrite;              /* --overwrite-output-dir */
    bool no_chart;               /* --no-chart */
    bool bench;                  /* --bench */
    uint32_t bench_steps, bench_warmup;
    bool config_from_resume;     /* the config came from the resumed run's train_config.json */
    void *json;                  /* the config file's jansson object (owns the strings from it) */
} train_opts;

/* Fills *o from defaults, the config file and argv[1..argc). Returns 0 to
 * proceed, 1 when --help / --version was printed (exit 0), 2 on a usage
 * error, already reported on stderr. */
int train_opts_parse(train_opts *o, int argc, char **argv);
void train_opts_free(train_opts *o);

/* The settings as a JSON object with every key, in --config's format (the
 * run's train_config.json). Returns a malloc'd string or NULL. */
char *train_opts_to_json(const train_opts *o);

/* The output folder that --resume PATH belongs to: PATH itself, or its
 * parent when PATH is a checkpoint-N folder. malloc'd. */
char *train_resume_output_dir(const char *resume);

#endif
