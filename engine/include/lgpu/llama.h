/* lgpu — LLaMA-family models: load, batched decode over a paged KV cache.
 *
 * Typical use:
 *   lgpu_model *m; lgpu_model_create(&(lgpu_model_params){.path = "x.gguf"}, &m);
 *   lgpu_ctx *c;   lgpu_ctx_params cp = lgpu_ctx_params_default(); cp.n_seq_max = 8;
 *                 lgpu_ctx_create(m, &cp, &c);
 *   int s;         lgpu_seq_create(c, &s);
 *   fill an lgpu_batch with the prompt tokens of s (pos 0..n-1, logits on the last),
 *   lgpu_decode(c, &batch, logits); sample; append; repeat; lgpu_seq_destroy(c, s). */
#ifndef LGPU_LLAMA_H
#define LGPU_LLAMA_H

#include "lgpu/device.h"
#include "lgpu/lgpu.h"
#include "lgpu/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lgpu_model lgpu_model;
typedef struct lgpu_ctx lgpu_ctx;

typedef struct lgpu_model_params {
    const char *path;           /* GGUF file, HF directory, llama2.c .bin, ORG/NAME[:FILE] on the Hub, or
                                 * embedded:NAME; NULL: the embedded default, LGPU_MODEL_EMBEDDED */
    const char *tokenizer_path; /* optional tokenizer file (tokenizer.bin / tokenizer.json / GGUF) */
    const char *device;         /* device selector; NULL: $LGPU_DEVICE, else automatic */
    bool progress;              /* print load progress on stderr */
    /* QLoRA's frozen base (docs/TRAINING.md): quantize every projection
     * weight (attention q, k, v, o; feed-forward gate, up, down) to
     * bitsandbytes' NF4 at load, as Linear4bit does; embeddings, norms and
     * the output head stay as they are. From F32, F16, BF16, Q8_0 and Q6_K
     * (dequantized first); a Q4_0 or Q4_K projection is kept as it is. */
    bool quantize_nf4;
    /* With quantize_nf4: keep each 64-block's absmax in float32
     * (bnb_4bit_use_double_quant = false, 4.5 bits a weight). Default:
     * double quantization, as QLoRA (4.127 bits). */
    bool nf4_no_double_quant;
    /* With quantize_nf4: what each dequantized weight is rounded to before
     * the products (bnb_4bit_compute_dtype): LGPU_TYPE_F32 (0: exact,
     * bitsandbytes' default), LGPU_TYPE_F16 or LGPU_TYPE_BF16. x and the
     * sums stay F32. */
    lgpu_type nf4_compute_type;
} lgpu_model_params;

/* The model built into liblgpu (models/README.md: TinyStories 260K, MIT),
 * loaded from memory, no file, when lgpu_model_params.path is NULL or this. */
#define LGPU_EMBEDDED_PREFIX "embedded:"
#define LGPU_MODEL_EMBEDDED_NAME "stories260K"
#define LGPU_MODEL_EMBEDDED LGPU_EMBEDDED_PREFIX LGPU_MODEL_EMBEDDED_NAME

/* LLaMA-3.1 RoPE scaling (rope_type "llama3"); factor <= 0 means none. */
typedef struct lgpu_rope_scaling {
    float factor, low_freq_factor, high_freq_factor;
    uint32_t original_ctx;
} lgpu_rope_scaling;

typedef struct lgpu_hparams {
    uint32_t n_vocab, dim, n_layers, n_heads, n_kv_heads, head_dim, hidden_dim;
    uint32_t n_ctx_train;
    float norm_eps, rope_theta;
    bool tied_output;
} lgpu_hparams;

int lgpu_model_create(const lgpu_model_params *params, lgpu_model **out);
void lgpu_model_destroy(lgpu_model *model);
const lgpu_hparams *lgpu_model_hparams(const lgpu_model *model);
lgpu_tokenizer *lgpu_model_tokenizer(lgpu_model *model);
lgpu_dev *lgpu_model_dev(lgpu_model *model);
/* Short description: "llama 260K F32 on llvmpipe (...)" */
const char *lgpu_model_desc(const lgpu_model *model);
/* Bytes of weights resident on the device. */
size_t lgpu_model_weight_bytes(const lgpu_model *model);
/* Number of weight parameters (all tensors, the tied classifier once). */
uint64_t lgpu_model_n_params(const lgpu_model *model);

/* How lgpu_model_params.quantize_nf4 left the projections (all zero when it
 * was off): how many became NF4 and how many were kept in a 4-bit GGUF type
 * (Q4_0 / Q4_K), and the NF4 settings (what an adapter's saved
 * quantization_config records). */
typedef struct lgpu_model_nf4_info {
    uint32_t n_nf4, n_kept_4bit;
    bool double_quant;
    lgpu_type compute_type;
} lgpu_model_nf4_info;
lgpu_model_nf4_info lgpu_model_nf4(const lgpu_model *model);

typedef struct lgpu_ctx_params {
    uint32_t n_ctx;      /* max tokens per sequence (0: the model's training context, at most 4096) */
    uint32_t n_seq_max;  /* max sequences open at once (0: 1) */
    uint32_t n_batch;    /* max tokens per lgpu_decode call (0: 512) */
    uint32_t block_size; /* tokens per KV block (0: 16) */
    uint32_t n_blocks;   /* KV blocks in the pool (0: enough for n_seq_max full sequences) */
    /* KV cache element type: LGPU_TYPE_F16, LGPU_TYPE_F32 or LGPU_TYPE_AUTO.
     * F16 halves the cache (twice the sequences or context in the same
     * memory; each value rounded to 11 significant bits, like llama.cpp's
     * default). AUTO: F16 on a Vulkan device, where the cache size bounds the
     * batch; F32 on the host C path, where widening the values costs more
     * time than reading half the bytes saves (docs/PERFORMANCE.md). */
    lgpu_type kv_type;
} lgpu_ctx_params;

/* The defaults: every count 0 (the engine's choice, as above) and kv_type
 * LGPU_TYPE_AUTO. Start from this rather than from a zeroed struct, where
 * kv_type 0 is LGPU_TYPE_F32. */
lgpu_ctx_params lgpu_ctx_params_default(void);

/* Sets p->kv_type from a name: "auto", "f16" or "f32" (NULL: leaves it);
 * LGPU_EINVAL naming the value otherwise. */
int lgpu_ctx_params_kv_type(lgpu_ctx_params *p, const char *name);

/* A context owns the KV pools, activation scratch and a command stream: one
 * call on a context at a time (several contexts of one model may be used
 * from different threads). */
int lgpu_ctx_create(lgpu_model *model, const lgpu_ctx_params *params, lgpu_ctx **out);
void lgpu_ctx_destroy(lgpu_ctx *ctx);
const lgpu_ctx_params *lgpu_ctx_params_of(const lgpu_ctx *ctx);
lgpu_model *lgpu_ctx_model(lgpu_ctx *ctx);
/* Threads the C path uses for this context's calls from now on (<= 0: the
 * device's count, LGPU_THREADS or all cores), e.g. to leave cores to other
 * work in the process. Results do not depend on it. No effect on Vulkan
 * devices. */
void lgpu_ctx_set_threads(lgpu_ctx *ctx, int n_threads);

/* Sequences own chains of KV blocks. open fails with LGPU_EFULL when n_seq_max are open. */
int lgpu_seq_create(lgpu_ctx *ctx, int *seq);
void lgpu_seq_destroy(lgpu_ctx *ctx, int seq);
/* Number of tokens of `seq` in the cache. */
int lgpu_seq_len(const lgpu_ctx *ctx, int seq);
/* Prefix sharing: for an empty sequence about to process `tokens`, attach the
 * longest run of already cached full blocks holding exactly tokens[0..k)
 * (k a multiple of block_size, k < n so at least one token is left to compute)
 * and return k; the caller then decodes tokens[k..n) at positions k... */
int lgpu_seq_reuse_prefix(lgpu_ctx *ctx, int seq, const int32_t *tokens, int n);

/* KV pool use, in blocks (freed blocks still caching a prefix count as free). */
void lgpu_ctx_kv_usage(const lgpu_ctx *ctx, uint32_t *used_blocks, uint32_t *total_blocks);

/* One engine step over tokens of any open sequences (continuous batching).
 * Token i is appended to sequence seq[i] at position pos[i], which must be the
 * sequence's length at that point (tokens of one sequence in increasing
 * position order). For every i with logits[i] != 0 a row of n_vocab logits is
 * written to `logits_out`, in batch order; `logits` NULL means logits for
 * the last token only. Fails with LGPU_EFULL (nothing changed) if the KV pool
 * has no free block left, LGPU_ERANGE (nothing changed) if a sequence would
 * grow past n_ctx, LGPU_EINVAL on a bad batch. */
typedef struct lgpu_batch {
    int n;
    const int32_t *token;
    const int32_t *seq;
    const int32_t *pos;
    const int8_t *logits;
} lgpu_batch;
int lgpu_decode(lgpu_ctx *ctx, const lgpu_batch *batch, float *logits_out);
/* lgpu_decode that lends the logits instead of copying them: *logits points
 * at the rows (same order), valid until the next lgpu_decode* call or
 * lgpu_ctx_destroy. On the host device they are the forward pass's own
 * output (no copy of n_out x n_vocab floats per step). *logits is NULL when
 * the batch wants no logits. */
int lgpu_decode_rows(lgpu_ctx *ctx, const lgpu_batch *batch, const float **logits);

#ifdef __cplusplus
}
#endif
#endif
