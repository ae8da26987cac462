/* lgpu — a model checkpoint on disk, whatever its format, seen as GGUF-named tensors
 * plus LLaMA hyperparameters. Sources:
 *   - GGUF file (detected by magic)              engine/model/gguf_model.c
 *   - HF directory with config.json + model.safetensors or
 *     model.safetensors.index.json shards       engine/model/hfdir.c
 *   - llama2.c .bin checkpoint (header sanity)   engine/model/llama2c.c
 *
 * Opening validates: architecture llama only (others: LGPU_EUNSUPPORTED naming
 * it), sane dims (heads divide dim, nothing absurd), every required tensor
 * present with the expected shape and a supported type. Failures are
 * LGPU_EFORMAT (LGPU_EUNSUPPORTED for features lgpu lacks: another
 * architecture, RoPE scaling other than llama3, partial rotary, non-F32
 * norms in a GGUF) with a detail naming the file and the problem.
 *
 * Tensor names are llama.cpp's (synthesized for llama2.c / HF):
 *   token_embd.weight (dim x n_vocab: ne0 = dim, n_rows = n_vocab)
 *   blk.N.attn_norm.weight (dim)
 *   blk.N.attn_q.weight (ne0 dim, rows dim)       blk.N.attn_k/v.weight (ne0 dim, rows kv_dim)
 *   blk.N.attn_output.weight (ne0 dim, rows dim)  blk.N.ffn_norm.weight (dim)
 *   blk.N.ffn_gate/up.weight (ne0 dim, rows hidden)  blk.N.ffn_down.weight (ne0 hidden, rows dim)
 *   output_norm.weight (dim)                       output.weight (ne0 dim, rows n_vocab)
 * Q/K rows are always in GGUF's interleaved-pair RoPE layout (HF weights are
 * permuted on load). When hparams.tied_output is true there is NO
 * output.weight: the classifier is token_embd.weight.
 * Optional: rope_freqs.weight (F32, head_dim/2 values) — llama.cpp's
 * Llama-3.1 GGUFs carry the RoPE frequency scaling as this tensor instead of
 * metadata; when present, divide inv_freq[i] by it (hparams.rope_scaling is
 * then "none"). Sources with explicit scaling (HF config.json) fill
 * hparams.rope_scaling instead and have no such tensor.
 *
 * Norm vectors are F32. Matrices keep their file type (F32, F16, BF16, Q8_0,
 * Q4_0, Q4_K, Q6_K). Data pointers are at least 4-byte aligned and stay
 * valid until lgpu_model_file_destroy(). */
#ifndef LGPU_MODEL_FILE_H
#define LGPU_MODEL_FILE_H

#include "lgpu/gguf.h"
#include "lgpu/lgpu.h"
#include "lgpu/llama.h" /* lgpu_rope_scaling */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lgpu_model_file lgpu_model_file;

typedef enum lgpu_model_source {
    LGPU_MODEL_SRC_GGUF = 1,
    LGPU_MODEL_SRC_HF = 2,
    LGPU_MODEL_SRC_LLAMA2C = 3,
} lgpu_model_source;

/* (Not "lgpu_model_hparams": that name is llama.h's accessor function.) */
typedef struct lgpu_file_hparams {
    char arch[32];  /* "llama" */
    char name[128]; /* general.name or the file/dir base name */
    uint32_t n_vocab, dim, n_layers, n_heads, n_kv_heads;
    uint32_t head_dim;   /* dim / n_heads */
    uint32_t hidden_dim; /* FFN width */
    uint32_t n_ctx_train;
    float norm_eps;   /* RMSNorm epsilon */
    float rope_theta; /* RoPE base (10000 when the file does not say) */
    lgpu_rope_scaling rope_scaling; /* factor <= 0: none */
    bool tied_output; /* no output.weight: the classifier is token_embd.weight */
} lgpu_file_hparams;

typedef struct lgpu_model_tensor {
    const char *name; /* GGUF-style */
    int type;         /* lgpu_type */
    int64_t ne0;      /* row length (elements) */
    int64_t n_rows;   /* product of the other dims (1 for a vector) */
    const void *data; /* mmap'd or owned by the model file */
    size_t nbytes;    /* row_bytes(type, ne0) * n_rows */
} lgpu_model_tensor;

/* Detects the format (GGUF magic; directory with config.json; else a
 * llama2.c checkpoint whose header is sane and whose size matches). */
int lgpu_model_file_create(const char *path, lgpu_model_file **out);
void lgpu_model_file_destroy(lgpu_model_file *mf); /* NULL: no-op */

lgpu_model_source lgpu_model_file_source(const lgpu_model_file *mf);
const char *lgpu_model_file_path(const lgpu_model_file *mf);
const lgpu_file_hparams *lgpu_model_file_hparams(const lgpu_model_file *mf);

/* Tensor by GGUF-style name: 0, or LGPU_ENOTFOUND (with a detail). */
int lgpu_model_file_tensor(const lgpu_model_file *mf, const char *name, lgpu_model_tensor *out);
int64_t lgpu_model_file_n_tensors(const lgpu_model_file *mf);
const lgpu_model_tensor *lgpu_model_file_tensor_at(const lgpu_model_file *mf, int64_t i);
/* The most common type among the 2-D weight matrices (for descriptions). */
int lgpu_model_file_ftype(const lgpu_model_file *mf);

/* Tokenizer sources: the GGUF handle (tokenizer.ggml.*) for a GGUF file, the
 * directory (tokenizer.json, tokenizer_config.json) for HF; NULL otherwise
 * (llama2.c checkpoints carry no tokenizer). Owned by mf. */
const lgpu_gguf *lgpu_model_file_gguf(const lgpu_model_file *mf);
const char *lgpu_model_file_hf_dir(const lgpu_model_file *mf);

#ifdef __cplusplus
}
#endif
#endif
