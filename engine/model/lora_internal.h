/* Internal layout of lgpu_lora, shared by the adapter code (model/lora*.c),
 * the forward pass that applies adapters and the training graph
 * (engine/train), which reads and updates the values in place. */
#ifndef LGPU_MODEL_LORA_INTERNAL_H
#define LGPU_MODEL_LORA_INTERNAL_H

#include "lgpu/lora.h"
#include "model/llama_internal.h"

/* One targeted projection of one layer: A (r, in) at byte off_a and B
 * (out, r) at byte off_b of the layer's buffer, both 256-byte aligned. */
typedef struct lgpu_lora_mat {
    bool on;
    uint32_t in, out;
    size_t off_a, off_b;
} lgpu_lora_mat;

/* Each layer's matrices are carved from one buffer (one allocation per
 * group), whose byte layout is the same for the gradients and the
 * optimizer's moments, so per-layer ops (AdamW, sums of squares) run over
 * the whole buffer at once. Padding between matrices stays zero. */
typedef struct lgpu_lora_layer {
    lgpu_lora_mat mat[LGPU_LORA_N_TARGETS];
    lgpu_buf *buf;
    size_t bytes;
} lgpu_lora_layer;

struct lgpu_lora {
    lgpu_model *model;
    uint32_t rank, targets;
    float alpha, dropout;
    float scale; /* alpha / rank */
    uint32_t n_layers;
    lgpu_lora_layer *layer;
    uint64_t n_params;
    size_t bytes;
    /* Contexts keep their own copy of the adapters their sequences use
     * (llama_lora.c) and know an adapter by uid (unique per process, never
     * reused, unlike the address); a copy older than `version` is refreshed
     * when the adapter is next set on a sequence. lgpu_lora_set bumps it;
     * code that changes the values in place (the optimizer) may bump it too. */
    uint64_t uid, version;
};

/* The model's weight a target adapts in layer l. */
const lgpu_wt *lgpu_lora_base_weight(const lgpu_model *m, uint32_t l, lgpu_lora_target t);

#endif
