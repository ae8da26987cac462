/* The op interface: every op is one function taking an exec, a parameter
 * struct and operand refs. On the host device it calls the op's C twin
 * (engine/ref); on Vulkan it records the matching shader (shaders/<op>*.comp).
 *
 * Each *_params struct is, field for field, the shader's push-constant block
 * (<= 128 bytes, 4-byte fields). The C twins in engine/ref/ref_ops.h take the
 * same struct plus plain host pointers.
 * The parameter structs and their semantics are in engine/params/<op>.h. */
#ifndef LGPU_OPS_OPS_H
#define LGPU_OPS_OPS_H

#include "dev/device.h"
#include "params/matmul.h"
#include "params/rmsnorm.h"
#include "params/rope.h"
#include "params/softmax.h"
#include "params/kv_store.h"
#include "params/attention.h"
#include "params/swiglu.h"
#include "params/add.h"
#include "params/scale.h"
#include "params/get_rows.h"
#include "params/argmax.h"
#include "params/lora.h"
/* training: backward ops, the loss and the optimizer */
#include "params/gemm.h"
#include "params/matmul_backward.h"
#include "params/rmsnorm_backward.h"
#include "params/swiglu_backward.h"
#include "params/attention_backward.h"
#include "params/cross_entropy.h"
#include "params/adamw.h"
#include "params/sumsq.h"
#include "params/dropout.h"

int lgpu_op_matmul(lgpu_exec *ex, const lgpu_matmul_params *p, lgpu_ref w, lgpu_ref x, lgpu_ref y);
int lgpu_op_rmsnorm(lgpu_exec *ex, const lgpu_rmsnorm_params *p, lgpu_ref x, lgpu_ref w, lgpu_ref y);
int lgpu_op_rope(lgpu_exec *ex, const lgpu_rope_params *p, lgpu_ref x, lgpu_ref pos, lgpu_ref inv_freq);
int lgpu_op_softmax(lgpu_exec *ex, const lgpu_softmax_params *p, lgpu_ref x, lgpu_ref y);
int lgpu_op_kv_store(lgpu_exec *ex, const lgpu_kv_store_params *p, lgpu_ref k, lgpu_ref v, lgpu_ref tok_seq,
                     lgpu_ref tok_pos, lgpu_ref block_table, lgpu_ref k_pool, lgpu_ref v_pool);
/* lse: (lgpu_ref){0} (inference) or the (T, n_heads) F32 softmax statistics
 * the backward needs (engine/params/attention.h). */
int lgpu_op_attention(lgpu_exec *ex, const lgpu_attention_params *p, lgpu_ref q, lgpu_ref tok_seq, lgpu_ref tok_pos,
                      lgpu_ref block_table, lgpu_ref k_pool, lgpu_ref v_pool, lgpu_ref out, lgpu_ref lse);
int lgpu_op_swiglu(lgpu_exec *ex, const lgpu_swiglu_params *p, lgpu_ref g, lgpu_ref u, lgpu_ref y);
int lgpu_op_add(lgpu_exec *ex, const lgpu_add_params *p, lgpu_ref a, lgpu_ref b, lgpu_ref y);
int lgpu_op_scale(lgpu_exec *ex, const lgpu_scale_params *p, lgpu_ref x, lgpu_ref y);
int lgpu_op_get_rows(lgpu_exec *ex, const lgpu_get_rows_params *p, lgpu_ref e, lgpu_ref ids, lgpu_ref y);
int lgpu_op_argmax(lgpu_exec *ex, const lgpu_argmax_params *p, lgpu_ref x, lgpu_ref idx);
/* LoRA updates, each row with its own adapters (engine/params/lora.h). */
int lgpu_op_lora(lgpu_exec *ex, const lgpu_lora_op_params *p, lgpu_ref x, lgpu_ref w, lgpu_ref table,
                 lgpu_ref rows, lgpu_ref y);

/* ---- training: each backward op next to its forward's semantics (engine/params/<op>.h) ---- */
int lgpu_op_gemm(lgpu_exec *ex, const lgpu_gemm_params *p, lgpu_ref a, lgpu_ref b, lgpu_ref c);
int lgpu_op_matmul_backward(lgpu_exec *ex, const lgpu_matmul_backward_params *p, lgpu_ref w, lgpu_ref dy,
                            lgpu_ref dx);
int lgpu_op_rmsnorm_backward(lgpu_exec *ex, const lgpu_rmsnorm_backward_params *p, lgpu_ref x, lgpu_ref w,
                             lgpu_ref dy, lgpu_ref dx);
/* The rotation of lgpu_op_rope reversed (angle -a): the gradient through
 * rope, in place on dx. Same parameters. */
int lgpu_op_rope_backward(lgpu_exec *ex, const lgpu_rope_params *p, lgpu_ref dx, lgpu_ref pos, lgpu_ref inv_freq);
int lgpu_op_swiglu_backward(lgpu_exec *ex, const lgpu_swiglu_backward_params *p, lgpu_ref g, lgpu_ref u,
                            lgpu_ref dy, lgpu_ref dg, lgpu_ref du);
int lgpu_op_attention_backward(lgpu_exec *ex, const lgpu_attention_backward_params *p, lgpu_ref q, lgpu_ref k,
                               lgpu_ref v, lgpu_ref o, lgpu_ref dout, lgpu_ref lse, lgpu_ref d, lgpu_ref dq,
                               lgpu_ref dk, lgpu_ref dv);
int lgpu_op_cross_entropy_stats(lgpu_exec *ex, const lgpu_cross_entropy_stats_params *p, lgpu_ref z,
                                lgpu_ref target, lgpu_ref stats, lgpu_ref loss);
int lgpu_op_cross_entropy_grad(lgpu_exec *ex, const lgpu_cross_entropy_grad_params *p, lgpu_ref z,
                               lgpu_ref target, lgpu_ref stats);
int lgpu_op_adamw(lgpu_exec *ex, const lgpu_adamw_params *p, lgpu_ref param, lgpu_ref grad, lgpu_ref m,
                  lgpu_ref v);
int lgpu_op_sumsq(lgpu_exec *ex, const lgpu_sumsq_params *p, lgpu_ref x, lgpu_ref out);
/* LoRA dropout: y (+)= x * mask(seed, i) / (1 - p) (engine/params/dropout.h) */
int lgpu_op_dropout(lgpu_exec *ex, const lgpu_dropout_params *p, lgpu_ref x, lgpu_ref y);

#endif
