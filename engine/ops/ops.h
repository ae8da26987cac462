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

int lgpu_op_matmul(lgpu_exec *ex, const lgpu_matmul_params *p, lgpu_ref w, lgpu_ref x, lgpu_ref y);
int lgpu_op_rmsnorm(lgpu_exec *ex, const lgpu_rmsnorm_params *p, lgpu_ref x, lgpu_ref w, lgpu_ref y);
int lgpu_op_rope(lgpu_exec *ex, const lgpu_rope_params *p, lgpu_ref x, lgpu_ref pos, lgpu_ref inv_freq);
int lgpu_op_softmax(lgpu_exec *ex, const lgpu_softmax_params *p, lgpu_ref x, lgpu_ref y);
int lgpu_op_kv_store(lgpu_exec *ex, const lgpu_kv_store_params *p, lgpu_ref k, lgpu_ref v, lgpu_ref tok_seq,
                     lgpu_ref tok_pos, lgpu_ref block_table, lgpu_ref k_pool, lgpu_ref v_pool);
int lgpu_op_attention(lgpu_exec *ex, const lgpu_attention_params *p, lgpu_ref q, lgpu_ref tok_seq, lgpu_ref tok_pos,
                      lgpu_ref block_table, lgpu_ref k_pool, lgpu_ref v_pool, lgpu_ref out);
int lgpu_op_swiglu(lgpu_exec *ex, const lgpu_swiglu_params *p, lgpu_ref g, lgpu_ref u, lgpu_ref y);
int lgpu_op_add(lgpu_exec *ex, const lgpu_add_params *p, lgpu_ref a, lgpu_ref b, lgpu_ref y);
int lgpu_op_scale(lgpu_exec *ex, const lgpu_scale_params *p, lgpu_ref x, lgpu_ref y);
int lgpu_op_get_rows(lgpu_exec *ex, const lgpu_get_rows_params *p, lgpu_ref e, lgpu_ref ids, lgpu_ref y);
int lgpu_op_argmax(lgpu_exec *ex, const lgpu_argmax_params *p, lgpu_ref x, lgpu_ref idx);

#endif
