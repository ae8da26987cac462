/* C twin of shaders/rope.comp. The angle is rounded to float as in the shader
 * (pos * inv_freq in fp32); cos/sin and the rotation are done in double. */
#include <math.h>

#include "ref/ref_ops.h"

void lgpu_ref_rope(const lgpu_rope_params *p, float *x, const int32_t *pos, const float *inv_freq) {
    uint32_t half = p->head_dim / 2;
    for (uint32_t t = 0; t < p->T; t++)
        for (uint32_t h = 0; h < p->n_heads; h++) {
            float *v = x + (size_t)t * p->token_stride + (size_t)h * p->head_dim;
            for (uint32_t i = 0; i < half; i++) {
                float a = (float)pos[t] * inv_freq[i];
                double c = cos((double)a), s = sin((double)a);
                double x0 = v[2 * i], x1 = v[2 * i + 1];
                v[2 * i] = (float)(x0 * c - x1 * s);
                v[2 * i + 1] = (float)(x0 * s + x1 * c);
            }
        }
}
