/* Internal layout of lgpu_model and lgpu_ctx, shared by llama_load.c (weights),
 * llama_ctx.c (context, sequences, scratch) and llama_forward.c (decode). */
#ifndef LGPU_MODEL_LLAMA_INTERNAL_H
#define LGPU_MODEL_LLAMA_INTERNAL_H

#include "lgpu/llama.h"
#include "lgpu/lora.h"
#include "lgpu/model_file.h"
#include "model/kv_cache.h"
#include "ops/ops.h"

#define LGPU_ALIGN_UP(x, a) (((x) + (a) - 1) / (a) * (a))

/* Byte offsets of the step inputs inside sc.step, each LGPU_REF_ALIGN aligned:
 * tokens, positions, block table rows (T each), output rows (n_out), then
 * n_rows block tables of max_blocks, then the LoRA row list (lora_bytes, 0
 * when no sequence of the step has adapters); end = bytes used. llama_ctx.c
 * sizes sc.step with the largest layout, llama_forward.c packs each step
 * with it. */
typedef struct lgpu_step_layout {
    size_t tok, pos, row, out, table, lora, end;
} lgpu_step_layout;

static inline lgpu_step_layout lgpu_step_layout_for(size_t T, size_t n_out, size_t n_rows, size_t max_blocks,
                                                    size_t lora_bytes) {
    size_t a = LGPU_ALIGN_UP(T * 4, LGPU_REF_ALIGN);
    lgpu_step_layout L = {.tok = 0, .pos = a, .row = 2 * a, .out = 3 * a};
    L.table = L.out + LGPU_ALIGN_UP(n_out * 4, LGPU_REF_ALIGN);
    L.lora = L.table + LGPU_ALIGN_UP(n_rows * max_blocks * 4, LGPU_REF_ALIGN);
    L.end = lora_bytes ? L.lora + lora_bytes : L.table + n_rows * max_blocks * 4;
    return L;
}

/* Bytes of the LoRA row list of T tokens with stacks of n_stack adapters
 * (engine/params/lora.h: 1 + 2 * n_stack words per row). */
static inline size_t lgpu_lora_rows_bytes(size_t T, size_t n_stack) { return T * (1 + 2 * n_stack) * 4; }

/* One weight tensor on the device, in its file type (norms: F32). */
typedef struct lgpu_wt {
    lgpu_buf *buf;
    int type;
    uint32_t rows, cols; /* (N, K) of a matrix; (1, n) of a vector */
    bool x8;             /* Q4_0 repacked in 8-row groups for the host matmul (lgpu_repack_q4_0_x8) */
} lgpu_wt;

/* The matrix t uploaded to `dev` as NF4 (type LGPU_TYPE_NF4 or _NODQ;
 * compute type ct): dequantized to F32 a few row groups at a time,
 * quantized as one tensor (quant/nf4.h), the side table attached to the
 * buffer. *bytes: what it holds on the device. (model/nf4_load.c) */
int lgpu_upload_nf4(lgpu_dev *dev, const lgpu_model_tensor *t, int type, int ct, lgpu_wt *out, size_t *bytes);

typedef struct lgpu_layer_w {
    lgpu_wt attn_norm, wq, wk, wv, wo;
    lgpu_wt ffn_norm, w_gate, w_up, w_down;
} lgpu_layer_w;

struct lgpu_model {
    lgpu_dev *dev;
    bool own_dev;
    lgpu_hparams hp;
    lgpu_rope_scaling rope_scaling;
    float *rope_freqs; /* head_dim/2 divisors of inv_freq (rope_freqs.weight), or NULL */
    lgpu_wt tok_embd, output_norm, output; /* output.buf == tok_embd.buf when tied */
    lgpu_layer_w *layers;
    struct lgpu_tokenizer *tok;
    char desc[384];
    size_t weight_bytes;
    uint64_t n_params;
    int ftype; /* most common matrix type, for the description */
    lgpu_model_nf4_info nf4; /* lgpu_model_params.quantize_nf4's result */
};

/* Activation scratch for up to n_batch tokens (n_out rows of logits). */
typedef struct lgpu_scratch {
    lgpu_buf *x, *h, *q, *k, *v, *att, *g, *u, *s;
    lgpu_buf *xo, *ho, *logits;
    lgpu_buf *step;     /* per-step I32 inputs: tokens, positions, rows, block tables */
    lgpu_buf *inv_freq; /* RoPE inverse frequencies (head_dim/2 F32) */
} lgpu_scratch;

/* ---- LoRA adapters in use (llama_lora.c) ----
 * A context holds its own copy of every adapter its sequences use: per layer
 * one buffer (the pack) with each adapter's block of A and B matrices, in
 * slots whose index the lora op's table and row list name. A slot stays
 * (cached) when no sequence uses it, until its index or room is needed. */
#define LGPU_CTX_LORA_SLOTS 64

typedef struct lgpu_ctx_lora_slot {
    uint64_t uid, version; /* the adapter copied (uid 0: empty slot) */
    uint32_t rank, targets;
    float scale;           /* alpha / r */
    size_t off, bytes;     /* its block in each layer's pack */
    size_t off_a[LGPU_LORA_N_TARGETS], off_b[LGPU_LORA_N_TARGETS]; /* inside the block */
    int users;             /* sequences using it, plus the context's default set */
} lgpu_ctx_lora_slot;

/* The adapters of one sequence (or the default for new ones). */
typedef struct lgpu_seq_lora {
    int n;
    int32_t slot[LGPU_LORA_MAX_STACK];
    float user_scale[LGPU_LORA_MAX_STACK];
} lgpu_seq_lora;

typedef struct lgpu_ctx_lora {
    lgpu_ctx_lora_slot slot[LGPU_CTX_LORA_SLOTS];
    uint32_t n_slots;  /* 1 + the highest slot index in use (the op's n_adapters) */
    lgpu_buf **pack;   /* n_layers buffers of pack_bytes (NULL until the first adapter) */
    size_t pack_bytes;
    lgpu_buf *table;   /* LGPU_CTX_LORA_SLOTS x LGPU_LORA_N_TARGETS ivec4 {a_off, b_off, rank, 0} (floats) */
    lgpu_seq_lora *seq; /* n_seq_max */
    lgpu_seq_lora dflt;
    /* the step being recorded */
    uint32_t step_rows, step_stack, step_targets;
} lgpu_ctx_lora;

int lgpu_ctx_lora_init(lgpu_ctx *c);
void lgpu_ctx_lora_free(lgpu_ctx *c);
/* A sequence was opened (gets the default adapters) / is being closed. */
void lgpu_ctx_lora_seq_open(lgpu_ctx *c, int seq);
void lgpu_ctx_lora_seq_close(lgpu_ctx *c, int seq);
/* Plans the step's row list for batch b (validated): sets step_* and
 * returns its bytes (0: no token of the batch has adapters). */
size_t lgpu_ctx_lora_step_plan(lgpu_ctx *c, const lgpu_batch *b);
/* Writes the planned row list (step_rows entries) at dst. */
void lgpu_ctx_lora_step_fill(const lgpu_ctx *c, const lgpu_batch *b, int32_t *dst);
/* Records y += the adapters' update of target t of layer l for the step's
 * rows (nothing when no row's adapter adapts t); rows_off: the row list in
 * sc.step. */
int lgpu_ctx_lora_record(lgpu_ctx *c, uint32_t l, lgpu_lora_target t, lgpu_buf *x, lgpu_buf *y, uint32_t T,
                         size_t rows_off);

struct lgpu_ctx {
    lgpu_model *model;
    lgpu_ctx_params params;
    lgpu_kv_cache kv;
    lgpu_buf **k_pool, **v_pool; /* per layer: n_blocks*block_size*kv_dim F32 */
    lgpu_scratch sc;
    lgpu_exec *ex;
    uint32_t n_out_max; /* logits rows per output pass */
    /* host staging, sized once */
    int32_t *step_host; /* mirror of sc.step */
    size_t step_bytes;
    int32_t *seq_row;   /* n_seq_max: row of a sequence in this step's block table, -1 if absent */
    int32_t *seq_next;  /* n_seq_max: next expected position while validating */
    int32_t *row_seq;   /* n_seq_max: sequence of each block table row */
    int32_t *old_blocks;/* n_seq_max: chain lengths before the step (rollback) */
    int32_t *out_rows;  /* n_batch: batch indices that want logits */
    int32_t *commit_tok;/* n_batch: tokens grouped per sequence for the commit */
    float *rows_host;   /* lgpu_decode_rows' copy when the logits can't be lent in place */
    size_t rows_cap;    /* floats in rows_host */
    lgpu_ctx_lora lora; /* adapters in use */
};

#endif
