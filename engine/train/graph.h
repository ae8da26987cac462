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

/* One micro-batch. tokens, targets: (B*T) I32 on the host; targets[i] is the
 * token that row i should predict, or -1 (not counted: prompt, padding).
 * Computes the loss; with `backward`, adds grad_scale * d(sum of counted
 * losses)/d(adapter) to the gradients (grad_scale = 1 / the tokens counted
 * over the whole optimizer step, so accumulated micro-batches equal one big
 * batch). *loss_sum: the sum of the counted rows' losses (double, host);
 * *n_counted: how many rows were counted. */
int lgpu_train_graph_run(lgpu_train_graph *g, const int32_t *tokens, const int32_t *targets, bool backward,
                         float grad_scale, double *loss_sum, uint32_t *n_counted);

/* Sets every gradient to zero (backward accumulates). */
int lgpu_train_graph_zero_grad(lgpu_train_graph *g);
/* Layer l's gradient buffer: the adapter's layout (lgpu_lora_layer). */
lgpu_buf *lgpu_train_graph_grad(lgpu_train_graph *g, uint32_t layer);
lgpu_exec *lgpu_train_graph_exec(lgpu_train_graph *g);
/* Bytes of device memory the graph holds (activations, scratch, gradients). */
size_t lgpu_train_graph_bytes(const lgpu_train_graph *g);

#endif
