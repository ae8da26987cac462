/* Parameters of the unmerged LoRA update at inference: the push-constant block of shaders/lora.comp,
 * shared by the op layer (engine/ops) and the C twin (engine/ref). Each row of a batch applies its own
 * adapters (several requests with different adapters share one step); see docs/ARCHITECTURE.md,
 * "Adapters". */
#ifndef LGPU_PARAMS_LORA_H
#define LGPU_PARAMS_LORA_H

#include "params/common.h"

/* For the rows listed in `rows`, one projection's low-rank update:
 *
 *   y[m, o] += sum_{k < n_stack} s_k * sum_j B_a[o, j] * u_a[j],   u_a[j] = sum_i A_a[j, i] * x[m, i]
 *
 * with a = a_k the row's k-th adapter (a < 0: none, skipped) and s_k its
 * scale (the user's scale times alpha / r, folded by the caller).
 *
 * rows (I32): n_rows entries of 1 + 2 * n_stack words,
 *   [m, a_0, bits of s_0 (F32), a_1, bits of s_1, ...]; m < n_tokens indexes
 *   x and y, and appears at most once.
 * table (I32): per adapter, table_stride entries of 4 words; entry
 *   a * table_stride + table_index is this projection's [a_off, b_off, rank, 0]:
 *   A (rank, in) row-major at float offset a_off of w, B (out, rank) at b_off;
 *   rank 0: the adapter does not adapt this projection (skipped). a < n_adapters.
 * w (F32, w_size values): every adapter's A and B matrices of this layer
 *   (one buffer).
 * x: n_tokens rows of `in` F32 at stride x_stride; y: n_tokens rows of `out`
 *   F32 at stride y_stride.
 * Entries out of range (m, a, a matrix outside w) are skipped on Vulkan and
 * rejected (LGPU_ERANGE) on the host, where the glue reads the lists first.
 *
 * Each row's update is computed on its own, in a fixed order (u in float,
 * then B u in float, added to y once per adapter in stack order), so a row
 * gets the same bits whatever else is in the batch, and reruns are
 * bit-identical. Ranks are at most LGPU_LORA_OP_MAX_RANK (the shader keeps
 * u in shared memory). */
#define LGPU_LORA_OP_MAX_RANK 1024

typedef struct lgpu_lora_op_params {
    uint32_t n_rows, n_tokens;
    uint32_t in, out;
    uint32_t x_stride, y_stride;
    uint32_t n_stack;
    uint32_t n_adapters;
    uint32_t table_stride, table_index;
    uint32_t w_size;
} lgpu_lora_op_params;
LGPU_PARAMS_CHECK(lgpu_lora_op_params);

#endif
