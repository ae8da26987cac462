/* Training checkpoints: <output>/checkpoint-<step>/ holds the adapter (a
 * PEFT adapter folder in itself: adapter_config.json +
 * adapter_model.safetensors), the optimizer's moments
 * (optimizer.safetensors) and trainer_state.json (step, data position, the
 * settings that must match on resume, metrics).
 *
 * Crash safety: everything is written into checkpoint-<step>.tmp/, each
 * file fsynced, then the folder is renamed into place and the output folder
 * fsynced. A kill -9 at any moment leaves the earlier checkpoints whole and
 * at worst a .tmp folder that readers ignore and the next save removes. */
#ifndef LGPU_TRAIN_CHECKPOINT_H
#define LGPU_TRAIN_CHECKPOINT_H

#include <jansson.h>

#include "train/optim.h"

#define LGPU_CKPT_VERSION 1

/* Writes checkpoint-<step>; `state` is trainer_state.json's object (the
 * version is added). dir gets the folder's path. */
int lgpu_checkpoint_write(const char *output_dir, uint64_t step, const lgpu_lora *lora, const lgpu_optim *optim,
                          const char *base_model, json_t *state, char *dir, size_t dir_len);
/* `path` is a checkpoint folder, or an output folder whose newest complete
 * checkpoint-<step> is taken; dir gets the checkpoint folder. */
int lgpu_checkpoint_find(const char *path, char *dir, size_t dir_len);
/* trainer_state.json (version checked); *state is a new reference. */
int lgpu_checkpoint_read_state(const char *dir, json_t **state);
/* Restores the adapter's values and the optimizer's moments and step. */
int lgpu_checkpoint_read_weights(const char *dir, lgpu_lora *lora, lgpu_optim *optim);

#endif
