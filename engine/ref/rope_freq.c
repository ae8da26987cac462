/* RoPE frequencies, with LLaMA-3.1 ("llama3") scaling as transformers'
 * _compute_llama3_parameters and llama.cpp's rope_freqs factors compute it:
 *   wavelen = 2 pi / f
 *   wavelen < original_ctx / high_freq_factor : f           (high frequencies kept)
 *   wavelen > original_ctx / low_freq_factor  : f / factor  (low frequencies scaled)
 *   otherwise, with s = (original_ctx / wavelen - low) / (high - low):
 *     (1 - s) * f / factor + s * f                          (smooth interpolation)
 * Computed in double and rounded once. */
#include <math.h>

#include "params/rope.h"

void lgpu_rope_inv_freq(float theta, uint32_t head_dim, const lgpu_rope_scaling *scaling, float *inv_freq) {
    const double two_pi = 6.283185307179586476925;
    bool scale = scaling && scaling->factor > 0;
    double lo_wl = 0, hi_wl = 0;
    if (scale) {
        lo_wl = scaling->original_ctx / (double)scaling->low_freq_factor;
        hi_wl = scaling->original_ctx / (double)scaling->high_freq_factor;
    }
    for (uint32_t i = 0; i < head_dim / 2; i++) {
        double f = pow((double)theta, -2.0 * i / head_dim);
        if (scale) {
            double wl = two_pi / f;
            if (wl > lo_wl) {
                f /= scaling->factor;
            } else if (!(wl < hi_wl) && scaling->high_freq_factor != scaling->low_freq_factor) {
                double s = (scaling->original_ctx / wl - scaling->low_freq_factor) /
                           ((double)scaling->high_freq_factor - scaling->low_freq_factor);
                f = (1 - s) * f / scaling->factor + s * f;
            }
        }
        inv_freq[i] = (float)f;
    }
}
