/* lgpu — whole-file model conversions behind `lgpu convert`, `lgpu quantize`
 * and `lgpu synth`. All write GGUF through the streaming writer (one tensor,
 * or a chunk of one, in memory at a time) to <out>.tmp, renamed on success. */
#ifndef LGPU_CONVERT_H
#define LGPU_CONVERT_H

#include "lgpu/model_file.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Messages for the user (fallbacks, notes); may be NULL. */
typedef void (*lgpu_note_fn)(void *ud, const char *msg);
/* Progress: bytes of tensor data written so far of `total`; may be NULL. */
typedef void (*lgpu_progress_fn)(void *ud, const char *tensor, uint64_t done, uint64_t total);

typedef struct lgpu_convert_opts {
    /* Vocabulary: a llama2.c tokenizer.bin or a GGUF with tokenizer.ggml.*.
     * NULL: the source's own (GGUF: copied; HF dir: tokenizer.json; llama2.c:
     * none, and a note says so). */
    const char *tokenizer;
    int out_type;     /* matrices: LGPU_TYPE_F32/F16/BF16, or -1 to keep the source type */
    const char *name; /* general.name; NULL: the source's */
    int nthreads;     /* 0: $LGPU_THREADS, else all online cores */
    lgpu_note_fn note;
    lgpu_progress_fn progress;
    void *ud;
} lgpu_convert_opts;

/* Any lgpu_model_file source (llama2.c .bin, HF directory, GGUF) -> GGUF with
 * llama.cpp's keys and tensor names (HF Q/K rows permuted to GGUF's layout;
 * LLaMA-3.1 RoPE scaling written as rope_freqs.weight like llama.cpp). */
int lgpu_convert_to_gguf(const char *in, const char *out, const lgpu_convert_opts *opts);

typedef struct lgpu_quantize_opts {
    int nthreads;       /* 0: $LGPU_THREADS, else all online cores */
    lgpu_note_fn note;  /* one message per tensor that falls back to another type */
    lgpu_progress_fn progress;
    void *ud;
} lgpu_quantize_opts;

typedef struct lgpu_quantize_stats {
    int64_t n_quantized; /* matrices written in the target type */
    int64_t n_fallback;  /* matrices written in a fallback type */
    int64_t n_kept;      /* vectors (norms...) copied as they were */
} lgpu_quantize_stats;

/* The type a matrix with rows of ne0 values gets when `type` is asked:
 * `type` if ne0 is a multiple of its block size, else Q8_0 for the K-quants
 * when ne0 is a multiple of 32, else F16. */
int lgpu_quantize_pick_type(int type, int64_t ne0);

/* Quantizes every 2-D (or higher) weight of a GGUF to `type` (Q8_0, Q4_0,
 * Q4_K, Q6_K, F16, BF16, F32); 1-D tensors are copied unchanged. Metadata is
 * copied with general.file_type updated. stats may be NULL. */
int lgpu_quantize_gguf(const char *in, const char *out, int type, const lgpu_quantize_opts *opts,
                       lgpu_quantize_stats *stats);

typedef struct lgpu_merge_opts {
    /* Matrices: LGPU_TYPE_F32/F16/BF16/Q8_0/Q4_0/Q4_K/Q6_K for all of them
     * (lgpu_quantize_pick_type fallbacks apply), or -1: each matrix keeps
     * the base's type. */
    int out_type;
    int nthreads; /* 0: $LGPU_THREADS, else all online cores */
    lgpu_note_fn note;
    lgpu_progress_fn progress;
    void *ud;
} lgpu_merge_opts;

/* LoRA adapters merged into a base GGUF (a file or embedded:NAME): every
 * adapted projection becomes W' = W + sum_i scales[i] * (alpha_i / r_i) B_i A_i,
 * computed row by row from the dequantized W (in double, rounded once) and
 * re-quantized to the output type. Adapters: PEFT folders or GGUF LoRAs
 * (lgpu/lora.h); scales NULL: 1 each. Every metadata key and the tokenizer
 * are copied (general.file_type follows out_type). A base that is not GGUF
 * is LGPU_EUNSUPPORTED (convert it first); an adapter for other shapes
 * LGPU_EFORMAT naming its tensor. */
int lgpu_merge_gguf(const char *base, const char *const *adapters, const float *scales, int n, const char *out,
                    const lgpu_merge_opts *opts);

typedef struct lgpu_synth_opts {
    const char *shape; /* "stories15M", "tinyllama-1.1b", "llama2-7b", "llama3-8b" */
    int type;          /* matrix type (lgpu_quantize_pick_type fallbacks apply) */
    const char *vocab; /* GGUF or llama2.c tokenizer.bin to copy; NULL: a synthetic SPM vocab */
    uint64_t seed;
    const char *out;
    int nthreads; /* 0: $LGPU_THREADS, else all online cores */
    lgpu_note_fn note;
    lgpu_progress_fn progress;
    void *ud;
} lgpu_synth_opts;

/* Hyperparameters of a named real-world shape; LGPU_ENOTFOUND if unknown. */
int lgpu_synth_shape(const char *name, lgpu_file_hparams *hp);
/* "stories15M, tinyllama-1.1b, ..." for usage messages. */
const char *lgpu_synth_shape_names(void);
/* A model of that shape with deterministic random weights: matrices
 * ~N(0, 0.02) (Irwin-Hall approximation, seeded per tensor row so the output
 * does not depend on the thread count), norms 1. The vocabulary (from
 * opts->vocab, else synthetic) fixes n_vocab. */
int lgpu_synth(const lgpu_synth_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
