/* Parameters of embedding row gather: the push-constant block of shaders/get_rows*.comp, shared by the
 * op layer (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_GET_ROWS_H
#define LGPU_PARAMS_GET_ROWS_H

#include "params/common.h"

/* Embedding gather: y[t, :] = dequant(E[ids[t], :]) for t < T.
 * E: (n_rows, K) of `etype` (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K); ids: I32 (T); y: (T, K) F32.
 * An id outside [0, n_rows) gives a zero row (the op layer also reports it). */
typedef struct lgpu_get_rows_params {
    uint32_t T, K, n_rows;
    uint32_t etype;
    /* Set by the op layer per segment: the E binding starts at row row_offset
     * and holds n_rows rows; only tokens with ids in that range are written.
     * Callers pass 0 and the full n_rows. */
    uint32_t row_offset;
    uint32_t e_x8; /* host device only: E is Q4_0 repacked by lgpu_repack_q4_0_x8 */
} lgpu_get_rows_params;
LGPU_PARAMS_CHECK(lgpu_get_rows_params);

#endif
