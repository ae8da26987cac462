/* C reference twins of every shader: same parameter struct as the shader's
 * push constants, plain host pointers for the bindings. They are the oracle
 * in tests and the host ("cpu") execution path. `nthreads` > 1 lets a twin
 * split its outer loop over a thread pool; results must not depend on it. */
#ifndef LGPU_REF_REF_OPS_H
#define LGPU_REF_REF_OPS_H

#include "params/matmul.h"
#include "params/rmsnorm.h"
#include "params/rope.h"
#include "params/softmax.h"
#include "params/attention.h"
#include "params/swiglu.h"
#include "params/add.h"
#include "params/scale.h"
#include "params/get_rows.h"
#include "params/argmax.h"
#include "params/lora.h"
#include "params/gemm.h"
#include "params/matmul_backward.h"
#include "params/rmsnorm_backward.h"
#include "params/swiglu_backward.h"
#include "params/attention_backward.h"
#include "params/cross_entropy.h"
#include "params/adamw.h"
#include "params/sumsq.h"
#include "params/dropout.h"

/* Elements below which a threaded pointwise/row twin stays on the calling
 * thread (waking the pool costs more than the work, e.g. one decode token). */
#define LGPU_REF_PARALLEL_MIN 16384

/* w: W's rows from row p->row_offset (the shader's binding 0); w_side: an
 * NF4 W's side table (lgpu_nf4_side of the whole tensor: binding 3), NULL
 * for the other types. An NF4 W is dequantized to its side table's compute
 * type (quant/nf4.h) and then multiplied like any other. */
void lgpu_ref_matmul(const lgpu_matmul_params *p, const void *w, const void *w_side, const float *x, float *y,
                     int nthreads);
/* Test oracle for lgpu_ref_matmul: W dequantized with lgpu_dequantize_row
 * (NF4: lgpu_nf4_dequantize), double accumulation, one thread.
 * lgpu_ref_matmul matches it within NMSE 1e-10 for F32/F16/BF16/NF4 W and
 * ~1e-4 for the GGML quantized W (whose x is rounded to int8 blocks on AVX2
 * CPUs); see tests/test_ref_matmul.c. */
void lgpu_ref_matmul_exact(const lgpu_matmul_params *p, const void *w, const void *w_side, const float *x, float *y);
void lgpu_ref_rmsnorm(const lgpu_rmsnorm_params *p, const float *x, const float *w, float *y, int nthreads);
void lgpu_ref_rope(const lgpu_rope_params *p, float *x, const int32_t *pos, const float *inv_freq);
void lgpu_ref_softmax(const lgpu_softmax_params *p, const float *x, float *y);
/* Pools hold p->kv_type elements (F32 or F16). */
void lgpu_ref_kv_store(const lgpu_kv_store_params *p, const float *k, const float *v, const int32_t *tok_seq,
                       const int32_t *tok_pos, const int32_t *block_table, void *k_pool, void *v_pool);
/* lse: NULL, or (T, n_heads) softmax statistics (p->save_lse is ignored). */
void lgpu_ref_attention(const lgpu_attention_params *p, const float *q, const int32_t *tok_seq,
                        const int32_t *tok_pos, const int32_t *block_table, const void *k_pool,
                        const void *v_pool, float *out, float *lse, int nthreads);
void lgpu_ref_swiglu(const lgpu_swiglu_params *p, const float *g, const float *u, float *y, int nthreads);
void lgpu_ref_add(const lgpu_add_params *p, const float *a, const float *b, float *y);
void lgpu_ref_scale(const lgpu_scale_params *p, const float *x, float *y);
void lgpu_ref_get_rows(const lgpu_get_rows_params *p, const void *e, const int32_t *ids, float *y);
void lgpu_ref_argmax(const lgpu_argmax_params *p, const float *x, int32_t *idx);
/* The per-row LoRA update (engine/params/lora.h); row_list entries must be
 * valid (the glue checks them first). */
void lgpu_ref_lora(const lgpu_lora_op_params *p, const float *x, const float *w, const int32_t *table,
                   const int32_t *row_list, float *y, int nthreads);

/* ---- training ---- */
void lgpu_ref_gemm(const lgpu_gemm_params *p, const float *a, const float *b, float *c, int nthreads);
/* w, w_side: as for lgpu_ref_matmul. */
void lgpu_ref_matmul_backward(const lgpu_matmul_backward_params *p, const void *w, const void *w_side,
                              const float *dy, float *dx, int nthreads);
void lgpu_ref_rmsnorm_backward(const lgpu_rmsnorm_backward_params *p, const float *x, const float *w,
                               const float *dy, float *dx, int nthreads);
/* rope with the angle negated (the gradient through lgpu_ref_rope). */
void lgpu_ref_rope_backward(const lgpu_rope_params *p, float *dx, const int32_t *pos, const float *inv_freq);
void lgpu_ref_swiglu_backward(const lgpu_swiglu_backward_params *p, const float *g, const float *u,
                              const float *dy, float *dg, float *du, int nthreads);
void lgpu_ref_attention_backward(const lgpu_attention_backward_params *p, const float *q, const float *k,
                                 const float *v, const float *o, const float *dout, const float *lse, float *d,
                                 float *dq, float *dk, float *dv, int nthreads);
void lgpu_ref_cross_entropy_stats(const lgpu_cross_entropy_stats_params *p, const float *z, const int32_t *target,
                                  float *stats, float *loss, int nthreads);
void lgpu_ref_cross_entropy_grad(const lgpu_cross_entropy_grad_params *p, float *z, const int32_t *target,
                                 const float *stats, int nthreads);
/* Each step in double from the float state, rounded once per stored value. */
void lgpu_ref_adamw(const lgpu_adamw_params *p, float *param, const float *grad, float *m, float *v, int nthreads);
/* Each block summed in double, in increasing i, rounded once. */
void lgpu_ref_sumsq(const lgpu_sumsq_params *p, const float *x, float *out, int nthreads);
void lgpu_ref_dropout(const lgpu_dropout_params *p, const float *x, float *y, int nthreads);
/* Philox4x32-10 (Random123's philox4x32_R(10, ctr, key)): the counter-based
 * generator dropout's masks come from, shared with the tests' known answers. */
void lgpu_ref_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

#endif
