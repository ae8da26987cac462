/* AdamW over an adapter's values, with global-norm gradient clipping, as
 * torch.optim.AdamW after torch.nn.utils.clip_grad_norm_ does it. The
 * moments have the adapter's per-layer layout, so one lgpu_op_adamw (and one
 * lgpu_op_sumsq) covers a whole layer. */
#ifndef LGPU_TRAIN_OPTIM_H
#define LGPU_TRAIN_OPTIM_H

#include "model/lora_internal.h"

typedef struct lgpu_optim lgpu_optim;

typedef struct lgpu_adamw_config {
    float beta1, beta2, eps, weight_decay; /* torch's defaults: 0.9, 0.999, 1e-8, 0.01 */
    float max_grad_norm;                   /* <= 0: no clipping */
} lgpu_adamw_config;

int lgpu_optim_create(lgpu_lora *lora, const lgpu_adamw_config *cfg, lgpu_optim **out);
void lgpu_optim_destroy(lgpu_optim *o);
/* One step at learning rate lr with the gradients grad[l] (the adapter's
 * layout, one buffer per layer); *grad_norm: the global L2 norm before
 * clipping. Runs on the exec given (recorded and submitted here). */
int lgpu_optim_step(lgpu_optim *o, lgpu_exec *ex, lgpu_buf *const *grad, float lr, double *grad_norm);
/* Steps taken (t in the bias corrections). */
uint64_t lgpu_optim_steps(const lgpu_optim *o);
/* The state as host arrays for checkpoints: layer l's first and second
 * moments (lora->layer[l].bytes each), and the step count. */
int lgpu_optim_get(const lgpu_optim *o, uint32_t l, void *m, void *v);
int lgpu_optim_set(lgpu_optim *o, uint32_t l, const void *m, const void *v);
void lgpu_optim_set_steps(lgpu_optim *o, uint64_t t);

#endif
