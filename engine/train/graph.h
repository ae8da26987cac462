/* The LLaMA + LoRA training graph: for a micro-batch of B sequences of T
 * tokens, the forward pass saving what the backward needs, the loss (cross-
 * entropy fused with the output head, chunked over the vocabulary) and the
 * backward pass into the adapter's gradients. Every step is an op
 * (engine/ops), so the same graph runs on Vulkan and on the host C path.
 *
 * Layout: row i = b*T + t of every activation is token t of sequence b. The
 * attention's K and V "pools" are dense (B*T, kv_dim) F32 arrays: each
 * sequence is one KV block of T slots (block table b -> b), so the
 * inference attention op reads them unchanged and the backward sees plain
 * rows. */
#ifndef LGPU_TRAIN_GRAPH_H
#define LGPU_TRAIN_GRAPH_H

#include "model/lora_internal.h"

typedef struct lgpu_train_graph lgpu_train_graph;

/* Activations for B x T tokens and gradient buffers (zeroed) with the
 * adapter's per-layer layout. vocab_chunk: vocabulary rows per loss chunk
 * (0: 4096; rounded to a multiple of 256 unless it covers the vocabulary). */
int lgpu_train_graph_create(lgpu_lora *lora, uint32_t B, uint32_t T, uint32_t vocab_chunk, lgpu_train_graph **out);
void lgpu_train_graph_destroy(lgpu_train_graph *g);

/* Which micro-batch of a run a graph run computes: LoRA dropout's masks
 * are drawn from it (lgpu_train_dropout_seed), so the same step of the same
 * run drops the same elements on every device and after a resume. */
typedef struct lgpu_train_mb_key {
    uint64_t seed;  /* the run's seed */
    uint64_t step;  /* optimizer step, from 0 */
    uint32_t micro; /* micro-batch within the step (gradient accumulation) */
} lgpu_train_mb_key;

/* One micro-batch. tokens, targets: (B*T) I32 on the host; targets[i] is the
 * token that row i should predict, or -1 (not counted: prompt, padding).
 * Computes the loss; with `backward`, adds grad_scale * d(sum of counted
 * losses)/d(adapter) to the gradients (grad_scale = 1 / the tokens counted
 * over the whole optimizer step, so accumulated micro-batches equal one big
 * batch). With `backward` and the adapter's dropout p > 0, each targeted
 * projection's LoRA input is dropped (PEFT's lora_dropout) with masks drawn
 * from *key (required then); without `backward` (evaluation) nothing is
 * dropped and key may be NULL. *loss_sum: the sum of the counted rows'
 * losses (double, host); *n_counted: how many rows were counted. */
int lgpu_train_graph_run(lgpu_train_graph *g, const int32_t *tokens, const int32_t *targets, bool backward,
                         float grad_scale, const lgpu_train_mb_key *key, double *loss_sum, uint32_t *n_counted);

/* The seed of the dropout op in front of target t's adapter in `layer` for
 * the micro-batch `key`: splitmix64 over (seed, step, micro, layer, t).
 * lgpu_dropout_params_make(M * in, p, seed, ...) with it gives that
 * projection's mask over the (M, in) input (tests read masks this way). */
uint64_t lgpu_train_dropout_seed(const lgpu_train_mb_key *key, uint32_t layer, lgpu_lora_target t);

/* Sets every gradient to zero (backward accumulates). */
int lgpu_train_graph_zero_grad(lgpu_train_graph *g);
/* Layer l's gradient buffer: the adapter's layout (lgpu_lora_layer). */
lgpu_buf *lgpu_train_graph_grad(lgpu_train_graph *g, uint32_t layer);
lgpu_exec *lgpu_train_graph_exec(lgpu_train_graph *g);
/* Bytes of device memory the graph holds (activations, scratch, gradients). */
size_t lgpu_train_graph_bytes(const lgpu_train_graph *g);

#endif
