/* lgpu — LoRA fine-tuning: a JSONL dataset and a base model in, a PEFT /
 * GGUF adapter out, with checkpoints that survive a crash.
 *
 *   lgpu_train_params p = lgpu_train_params_default();
 *   p.train_file = "data.jsonl"; p.output_dir = "out";
 *   lgpu_trainer *t;
 *   lgpu_trainer_create(model, &p, &t);     // or then lgpu_trainer_resume(t, "out")
 *   lgpu_trainer_run(t, on_progress, ud);   // steps, evaluations, checkpoints, the final adapter
 *   lgpu_trainer_destroy(t);
 *
 * A run is deterministic for a seed on a given device: the same steps give
 * the same adapter bits, also across a checkpoint and --resume. */
#ifndef LGPU_TRAIN_H
#define LGPU_TRAIN_H

#include "lgpu/dataset.h"
#include "lgpu/lora.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lgpu_trainer lgpu_trainer;

/* Learning-rate schedules (transformers' names): linear warmup from 0, then
 * constant, linear decay to 0 or cosine decay to 0 at the last step. */
typedef enum lgpu_lr_kind { LGPU_LR_CONSTANT = 0, LGPU_LR_LINEAR, LGPU_LR_COSINE } lgpu_lr_kind;
/* "constant" | "linear" | "cosine" -> kind; -1 if unknown. */
int lgpu_lr_kind_parse(const char *name);
const char *lgpu_lr_kind_name(lgpu_lr_kind kind);

typedef struct lgpu_train_params {
    /* data */
    const char *train_file;    /* JSONL: alpaca, prompt/completion, chat or text (auto-detected) */
    const char *val_file;      /* held-out JSONL, or NULL */
    float val_split;           /* without val_file: this fraction of train_file held out (0: none) */
    bool skip_invalid;         /* skip (and count) bad lines instead of refusing to start */
    bool train_on_prompt;      /* count prompt tokens in the loss too */
    bool pack;                 /* pack examples into full rows instead of one (truncated) example per row */
    uint32_t seq_len;          /* tokens per row (0: 512, at most the model's context) */
    uint32_t micro_batch;      /* rows per forward/backward (0: 1) */
    uint32_t grad_accum;       /* micro-batches per optimizer step (0: 1) */
    /* length: max_steps when > 0, else epochs over the training data */
    uint32_t epochs;           /* 0: 1 */
    uint64_t max_steps;
    /* adapter */
    lgpu_lora_params lora;     /* rank, alpha, dropout, targets (path: start from this adapter) */
    /* optimizer */
    float lr;                  /* peak learning rate (0: 2e-4) */
    lgpu_lr_kind schedule;
    uint64_t warmup_steps;     /* linear warmup steps (0: warmup_ratio of the run) */
    float warmup_ratio;
    float weight_decay, beta1, beta2, adam_eps; /* AdamW (default 0.0, 0.9, 0.999, 1e-8) */
    float max_grad_norm;       /* global-norm clipping (0: none; default 1.0) */
    uint64_t seed;
    /* bookkeeping */
    uint64_t log_every;        /* progress every N steps (0: 1) */
    uint64_t eval_every;       /* validation loss every N steps (0: at the end only) */
    uint64_t save_every;       /* checkpoint every N steps (0: at the end only) */
    const char *output_dir;    /* checkpoints, metrics.jsonl, the final adapter (required) */
    const char *base_model;    /* recorded as base_model_name_or_path (NULL: the model's path) */
    uint32_t vocab_chunk;      /* vocabulary rows per loss chunk (0: 4096) */
    /* how the JSONL is read (lgpu/dataset.h's lgpu_dataset_params, for the
     * training and the validation file alike) */
    lgpu_dataset_format format;           /* AUTO (0): from the first line */
    const char *prompt_template;          /* ALPACA, examples with an input (NULL: Stanford Alpaca's) */
    const char *prompt_template_no_input; /* ALPACA, the others (NULL: see lgpu_dataset_params) */
    const char *chat_template;            /* CHAT: "chatml", "llama2", ... (NULL: the tokenizer's) */
    /* execution */
    int threads;               /* C path threads for the run's steps (0: the device's, LGPU_THREADS or all cores) */
    bool progress_every_step;  /* call the callback after every step, LGPU_TRAIN_TICK on those not logged */
} lgpu_train_params;

/* PEFT/transformers-like defaults: lr 2e-4 linear, 1 epoch, micro-batch 1,
 * seq_len 512, rank 8, alpha 16, all seven projections, clipping at 1.0,
 * seed 42. */
lgpu_train_params lgpu_train_params_default(void);

/* Loads and validates the data (LGPU_EFORMAT naming file, line and id on a
 * bad line unless skip_invalid), makes the adapter and the optimizer, and
 * checks the device can hold the step (LGPU_EDEVMEM saying how much is
 * needed and what to lower). */
int lgpu_trainer_create(lgpu_model *model, const lgpu_train_params *params, lgpu_trainer **out);
void lgpu_trainer_destroy(lgpu_trainer *t);

/* Continues from a checkpoint: `path` is a checkpoint folder or an output
 * folder (its newest complete checkpoint). The adapter, the optimizer's
 * moments, the data position and the step come back exactly. A checkpoint
 * of another model, dataset or shape is refused naming the field. */
int lgpu_trainer_resume(lgpu_trainer *t, const char *path);

typedef struct lgpu_train_progress {
    uint64_t step, total_steps;     /* optimizer steps done / planned */
    double epoch;                   /* fractional epoch */
    double loss;                    /* mean loss of the last step's counted tokens */
    double val_loss;                /* last validation loss (NaN: none yet) */
    double lr, grad_norm;
    double tokens_per_s;            /* tokens processed (all rows) per second, last step */
    double elapsed_s, eta_s;
    uint64_t tokens_seen;
    size_t device_bytes;            /* device memory in use by this process */
    int event;                      /* LGPU_TRAIN_STEP, _EVAL, _SAVE or _TICK: what just happened */
    const char *checkpoint;         /* _SAVE: the folder written */
} lgpu_train_progress;
/* STEP: a logged step (every log_every steps and the last; its line is in
 * metrics.jsonl); TICK: any other step, only with progress_every_step (a
 * progress bar's update). */
enum { LGPU_TRAIN_STEP = 0, LGPU_TRAIN_EVAL = 1, LGPU_TRAIN_SAVE = 2, LGPU_TRAIN_TICK = 3 };

/* Called after each logged step, evaluation and checkpoint (and, with
 * progress_every_step, every other step); returning non-zero stops the run
 * after saving a checkpoint: lgpu_trainer_run then returns 0 with
 * lgpu_trainer_steps_done() < lgpu_trainer_total_steps() and writes no final
 * adapter. A program stopping on SIGINT sets a flag in its handler and
 * returns it here. */
typedef int (*lgpu_train_callback)(void *ud, const lgpu_train_progress *p);

/* Trains to the end: steps, evaluations every eval_every steps, checkpoints
 * every save_every steps and at the end, then the final adapter as
 * <output_dir>/adapter (PEFT) and <output_dir>/adapter.gguf (llama.cpp). */
int lgpu_trainer_run(lgpu_trainer *t, lgpu_train_callback cb, void *ud);
/* The pieces of a run, for programs that drive it themselves. */
int lgpu_trainer_step(lgpu_trainer *t, lgpu_train_progress *out);
int lgpu_trainer_evaluate(lgpu_trainer *t, double *val_loss);
/* Writes a checkpoint folder <output_dir>/checkpoint-<step> atomically; *dir
 * (optional) gets its path, valid until the next call. */
int lgpu_trainer_save(lgpu_trainer *t, const char **dir);

lgpu_lora *lgpu_trainer_lora(lgpu_trainer *t);
uint64_t lgpu_trainer_steps_done(const lgpu_trainer *t);
uint64_t lgpu_trainer_total_steps(const lgpu_trainer *t);
/* What the data came to: examples, skipped bad lines, truncated examples,
 * counted tokens of the training split, validation examples. */
typedef struct lgpu_train_data_info {
    uint64_t n_train, n_val, n_skipped, n_truncated, train_tokens, counted_tokens;
    uint64_t batches_per_epoch;
} lgpu_train_data_info;
void lgpu_trainer_data_info(const lgpu_trainer *t, lgpu_train_data_info *out);
/* The data sets as read (their format, skipped lines and why,
 * lgpu_dataset_skip_reason): the training file's, or (validation) the
 * val_file's; NULL when there is none (a val_split is part of the training
 * file's). Valid while the trainer lives. */
const lgpu_dataset *lgpu_trainer_dataset(const lgpu_trainer *t, bool validation);

#ifdef __cplusplus
}
#endif
#endif
