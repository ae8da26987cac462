/* Learning-rate schedules of the trainer, computed on the host: the learning
 * rate of optimizer step `step` (counted from 0: the first step is step 0),
 * exactly as transformers' get_constant_schedule_with_warmup,
 * get_linear_schedule_with_warmup and get_cosine_schedule_with_warmup (with
 * num_cycles 0.5) compute it through torch's LambdaLR, lr * lambda(step):
 *
 *   warmup, step < warmup_steps:  lambda = step / max(1, warmup_steps)
 *   then
 *     constant:  1
 *     linear:    max(0, (total_steps - step) / max(1, total_steps - warmup_steps))
 *     cosine:    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
 *                max(0, 0.5 * (1 + cos(pi * progress)))
 *
 * So with warmup the first step runs at lr 0, as in the HF Trainer. In
 * double, rounded once to float. Like transformers, the cosine is not
 * clamped past total_steps (it rises again there); a trainer stops before. */
#ifndef LGPU_TRAIN_SCHEDULE_H
#define LGPU_TRAIN_SCHEDULE_H

#include <stdint.h>

#include "lgpu/train.h" /* lgpu_lr_kind, its names */

typedef struct lgpu_lr_schedule {
    lgpu_lr_kind kind;
    double lr;             /* peak learning rate (the optimizer's base lr) */
    uint64_t warmup_steps; /* linear warmup from 0; 0 = none */
    uint64_t total_steps;  /* optimizer steps of the whole run (linear, cosine) */
} lgpu_lr_schedule;

/* The learning rate of optimizer step `step` (from 0). */
float lgpu_lr_at(const lgpu_lr_schedule *s, uint64_t step);


#endif
