/* C twin of shaders/rope.comp (forward and, with the angle negated,
 * backward). The angle is rounded to float as in the shader (pos * inv_freq
 * in fp32); cos/sin and the rotation are done in double. cos/sin depend only
 * on (token, pair), so they are computed once per token and pair-chunk and
 * reused by every head. */
#include <math.h>

#include "ref/ref_ops.h"

#define PAIRS 64 /* pairs per cos/sin chunk */

/* sign +1: rotate by a (forward); -1: by -a (backward: R(a)^T = R(-a)). */
static void rope(const lgpu_rope_params *p, float *x, const int32_t *pos, const float *inv_freq, double sign) {
    uint32_t half = p->head_dim / 2;
    double cs[PAIRS], sn[PAIRS];
    for (uint32_t t = 0; t < p->T; t++)
        for (uint32_t i0 = 0; i0 < half; i0 += PAIRS) {
            uint32_t n = half - i0 < PAIRS ? half - i0 : PAIRS;
            for (uint32_t i = 0; i < n; i++) {
                float a = (float)pos[t] * inv_freq[i0 + i];
                cs[i] = cos((double)a);
                sn[i] = sign * sin((double)a);
            }
            for (uint32_t h = 0; h < p->n_heads; h++) {
                float *v = x + (size_t)t * p->token_stride + (size_t)h * p->head_dim + 2 * i0;
                for (uint32_t i = 0; i < n; i++) {
                    double x0 = v[2 * i], x1 = v[2 * i + 1];
                    v[2 * i] = (float)(x0 * cs[i] - x1 * sn[i]);
                    v[2 * i + 1] = (float)(x0 * sn[i] + x1 * cs[i]);
                }
            }
        }
}

void lgpu_ref_rope(const lgpu_rope_params *p, float *x, const int32_t *pos, const float *inv_freq) {
    rope(p, x, pos, inv_freq, 1.0);
}

void lgpu_ref_rope_backward(const lgpu_rope_params *p, float *dx, const int32_t *pos, const float *inv_freq) {
    rope(p, dx, pos, inv_freq, -1.0);
}
