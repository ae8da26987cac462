/* Parameters of dropout: the push-constant block of shaders/dropout.comp, shared by the op layer
 * (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_DROPOUT_H
#define LGPU_PARAMS_DROPOUT_H

#include <math.h>
#include <stdbool.h>

#include "params/common.h"

/* Inverted dropout with a counter-based mask (torch.nn.Dropout in training
 * mode, but with masks that are a function of (seed, i) alone):
 *   v = keep(i) ? x[i] * scale : 0;   y[i] = accumulate ? y[i] + v : v   (i < n)
 * keep(i) = bits(i) >= threshold, where bits(i) is word i % 4 of
 * Philox4x32-10 (Salmon et al., SC'11; Random123's philox4x32_R(10, ...))
 * of the counter (i / 4, 0, 0, 0) under the key (seed_lo, seed_hi). Integer
 * arithmetic only, so a seed gives the same mask on every device, run and
 * thread count; the shader and the twin agree bit for bit (the one add is
 * `precise`: no fused multiply-add). A dropped element gives 0 whatever
 * x[i] is.
 * For a drop probability p in [0, 1), lgpu_dropout_params_make sets
 * threshold = ceil(p 2^32) (so an element is kept with probability
 * 1 - threshold / 2^32, p rounded to a multiple of 2^-32) and
 * scale = 1 / (1 - p); p = 0 keeps every element and scales by 1: y = x
 * exactly. x, y: F32 (n); y may be x (in place), not a part of it. The op
 * rejects scale < 1 or not finite (left unset) and accumulate other than 0
 * or 1. */
typedef struct lgpu_dropout_params {
    uint32_t n;
    uint32_t threshold;
    float scale;
    uint32_t seed_lo, seed_hi;
    uint32_t accumulate;
} lgpu_dropout_params;
LGPU_PARAMS_CHECK(lgpu_dropout_params);

/* The params of dropping each of n elements with probability p (0 <= p < 1)
 * under a 64-bit seed. */
static inline lgpu_dropout_params lgpu_dropout_params_make(uint32_t n, float p, uint64_t seed, bool accumulate) {
    /* p 2^32 is exact in double, and below 2^32 for p < 1; a p outside
     * [0, 1) (or NaN) gives a scale the op rejects, and no undefined cast */
    double t = ceil((double)p * 4294967296.0);
    lgpu_dropout_params d = {.n = n,
                             .threshold = t > 0 ? (t < 4294967296.0 ? (uint32_t)t : UINT32_MAX) : 0,
                             .scale = (float)(1.0 / (1.0 - (double)p)),
                             .seed_lo = (uint32_t)seed,
                             .seed_hi = (uint32_t)(seed >> 32),
                             .accumulate = accumulate};
    return d;
}

#endif
