/* lgpu — LoRA adapters: low-rank updates W' = W + (alpha / r) B A of a
 * model's projection matrices (q, k, v, o, gate, up, down), as Hugging Face
 * PEFT defines them. An adapter lives on its model's device; lgpu-train
 * trains one, the inference tools apply one or several unmerged.
 *
 *   lgpu_lora *a;
 *   lgpu_lora_params lp = {.rank = 16, .alpha = 32};   // a new adapter
 *   lgpu_lora_create(model, &lp, &a);
 *   ...
 *   lgpu_lora_destroy(a);
 *
 * Shapes: for a projection W of (out, in) — out rows of in columns, y = x W^T
 * — A is (r, in) and B is (out, r). Rows of B for q and k are kept in the
 * model's own (GGUF) order; the PEFT reader and writer permute them to and
 * from Hugging Face's order. */
#ifndef LGPU_LORA_H
#define LGPU_LORA_H

#include "lgpu/llama.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lgpu_lora lgpu_lora;

/* The projections an adapter may target, in PEFT's order. */
typedef enum lgpu_lora_target {
    LGPU_LORA_Q = 0,
    LGPU_LORA_K,
    LGPU_LORA_V,
    LGPU_LORA_O,
    LGPU_LORA_GATE,
    LGPU_LORA_UP,
    LGPU_LORA_DOWN,
    LGPU_LORA_N_TARGETS
} lgpu_lora_target;
#define LGPU_LORA_ALL_TARGETS ((1u << LGPU_LORA_N_TARGETS) - 1)

/* "q", "k", "v", "o", "gate", "up", "down" */
const char *lgpu_lora_target_name(lgpu_lora_target t);
/* PEFT's module name: "q_proj", ..., "gate_proj", "up_proj", "down_proj" */
const char *lgpu_lora_target_peft_name(lgpu_lora_target t);
/* Parses a comma-separated list of target names (short or PEFT spelling) or
 * "all" into a bit mask of (1 << lgpu_lora_target); LGPU_EINVAL naming the
 * unknown entry. */
int lgpu_lora_targets_parse(const char *list, uint32_t *mask);

typedef struct lgpu_lora_params {
    /* An adapter file to read instead of making a new one: a PEFT adapter
     * (its directory, or its adapter_model.safetensors with
     * adapter_config.json beside it) or a llama.cpp GGUF LoRA (.gguf). The
     * fields below are then taken from the file. */
    const char *path;
    uint32_t rank;    /* r (0: 8, PEFT's default) */
    float alpha;      /* lora_alpha (0: 8, PEFT's default); the update is scaled by alpha / r */
    float dropout;    /* lora_dropout, applied to the adapter's input in training only */
    uint32_t targets; /* bit mask of (1 << lgpu_lora_target); 0: all seven */
    uint64_t seed;    /* initialisation: A uniform in +-1/sqrt(in) (PEFT's kaiming_uniform(a=sqrt(5))), B = 0 */
} lgpu_lora_params;

/* A new adapter for `model`, initialised as PEFT does (the update starts at
 * zero), or the adapter in params->path. A file for another model (other
 * shapes or layer count) fails with LGPU_EFORMAT naming the tensor.
 * LGPU_EDEVMEM when the device cannot hold it. */
int lgpu_lora_create(lgpu_model *model, const lgpu_lora_params *params, lgpu_lora **out);
void lgpu_lora_destroy(lgpu_lora *lora);

lgpu_model *lgpu_lora_model(const lgpu_lora *lora);
uint32_t lgpu_lora_rank(const lgpu_lora *lora);
float lgpu_lora_alpha(const lgpu_lora *lora);
float lgpu_lora_dropout(const lgpu_lora *lora);
uint32_t lgpu_lora_targets(const lgpu_lora *lora);
/* Trainable values: sum over layers and targets of r * (in + out). */
uint64_t lgpu_lora_n_params(const lgpu_lora *lora);
/* Bytes of device memory the adapter's values take (without gradients). */
size_t lgpu_lora_bytes(const lgpu_lora *lora);

/* Writes the adapter: `path` ending in ".gguf" gives a llama.cpp GGUF LoRA
 * (general.type adapter, adapter.lora.alpha, blk.N.<tensor>.weight.lora_a /
 * .lora_b), anything else a Hugging Face PEFT adapter directory
 * (adapter_config.json + adapter_model.safetensors, created if needed).
 * base_model: base_model_name_or_path / general.base_model (may be NULL).
 * Each file is written atomically. */
int lgpu_lora_save(const lgpu_lora *lora, const char *path, const char *base_model);

/* The shape of a target's projection: W is (out, in). */
int lgpu_lora_target_shape(const lgpu_lora *lora, lgpu_lora_target t, uint32_t *out_dim, uint32_t *in_dim);
/* Copies of one matrix, F32 row-major: A (r, in) when b == false, B (out, r)
 * when b == true. LGPU_ENOTFOUND when the adapter does not target t. */
int lgpu_lora_get(const lgpu_lora *lora, uint32_t layer, lgpu_lora_target t, bool b, float *dst);
int lgpu_lora_set(lgpu_lora *lora, uint32_t layer, lgpu_lora_target t, bool b, const float *src);

/* ---- adapters in use: unmerged, per sequence ----------------------------
 * Each sequence of a context applies zero or more adapters, each with a
 * user scale: for every token of the sequence, every adapted projection
 * y = x W^T gains  sum_i scales[i] * (alpha_i / r_i) * (x A_i^T) B_i^T.
 * Sequences with different adapters (or none) share one lgpu_decode step,
 * each token applying its own; a step where no sequence has adapters runs
 * exactly the plain model.
 *
 *   lgpu_lora *a; lgpu_lora_create(model, &(lgpu_lora_params){.path = "out/adapter"}, &a);
 *   lgpu_seq_create(ctx, &seq);
 *   lgpu_seq_set_adapters(ctx, seq, (const lgpu_lora *[]){a}, NULL, 1);   // scale 1
 *
 * The context copies an adapter's values into its own device memory when
 * the adapter is first set on one of its sequences (again after
 * lgpu_lora_set changed it), so an adapter may be destroyed while sequences
 * still use it. An adapter is accepted by any context whose model has its
 * shapes (another lgpu_model of the same file, on any device). Prefixes are
 * shared (lgpu_seq_reuse_prefix) only between sequences with the same
 * adapters and scales. */
#define LGPU_LORA_MAX_STACK 8 /* adapters per sequence */

/* Sets the adapters of `seq`, which must be empty (no tokens, no prefix
 * attached yet: its cached K/V would come from other weights); n = 0 (loras
 * NULL) removes them. scales NULL: 1 for each. LGPU_EINVAL naming the
 * problem (a non-empty sequence, n > LGPU_LORA_MAX_STACK, an adapter for
 * other shapes, a rank above 1024); LGPU_EFULL when the context cannot hold
 * another adapter (64 in use, or the device's binding limit per layer). */
int lgpu_seq_set_adapters(lgpu_ctx *ctx, int seq, const lgpu_lora *const *loras, const float *scales, int n);
/* The adapters each sequence created from now on starts with (the tools'
 * --lora: every sequence of lgpu_gen, lgpu_perplexity, lgpu bench). Open
 * sequences keep theirs; a sequence reopened (lgpu_gen_reset) gets the
 * default again. Same arguments and errors. */
int lgpu_ctx_set_adapters(lgpu_ctx *ctx, const lgpu_lora *const *loras, const float *scales, int n);
/* lgpu_ctx_set_adapters from adapter files: each spec "FILE[:SCALE]"
 * (lgpu_lora_spec_parse) is read for the context's model, set as the
 * default of new sequences, and released (the context keeps its copy).
 * What the tools' --lora does. Errors name the spec. */
int lgpu_ctx_set_adapter_files(lgpu_ctx *ctx, const char *const *specs, int n);
/* Number of adapters `seq` applies (0 for a bad sequence). */
int lgpu_seq_n_adapters(const lgpu_ctx *ctx, int seq);

/* Splits a command-line adapter spec "FILE[:SCALE]" (the text after the
 * last ':' is the scale when it parses as a finite number, so paths with
 * colons still work): *path gets a malloc'd copy of FILE (free it), *scale
 * the scale (1 when absent). LGPU_EINVAL for an empty FILE. */
int lgpu_lora_spec_parse(const char *spec, char **path, float *scale);

#ifdef __cplusplus
}
#endif
#endif
