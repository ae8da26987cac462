/* Per-format block converters behind lgpu_quantize_row / lgpu_dequantize_row.
 * nb counts blocks (super-blocks of LGPU_QK_K for the K-quants). */
#ifndef LGPU_QUANT_QUANT_INTERNAL_H
#define LGPU_QUANT_QUANT_INTERNAL_H

#include <string.h>

#include "quant/quant.h"

/* The bits of a float and back (also used by tests/test_quant.c). */
static inline uint32_t lgpu_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float lgpu_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

void lgpu_quantize_q4_k(const float *x, lgpu_block_q4_k *y, int64_t nb);
void lgpu_dequantize_q4_k(const lgpu_block_q4_k *x, float *y, int64_t nb);
void lgpu_quantize_q6_k(const float *x, lgpu_block_q6_k *y, int64_t nb);
void lgpu_dequantize_q6_k(const lgpu_block_q6_k *x, float *y, int64_t nb);

/* 6-bit scale and min of sub-block j (0..7) of a Q4_K block (ggml's get_scale_min_k4). */
static inline void lgpu_q4_k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

#endif
