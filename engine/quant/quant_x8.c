/* Q4_0 in groups of 8 rows (lgpu_block_q4_0x8) for the host matmul's
 * lane-per-row kernel: the repacking done once at load, and the row
 * dequantizer the plain C path and get_rows use. */
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"

bool lgpu_repack_q4_0_x8_wanted(int type, int64_t n_rows) {
    if (type != LGPU_TYPE_Q4_0 || n_rows <= 0 || n_rows % 8) return false;
    const char *e = getenv("LGPU_REPACK");
    return !(e && !strcmp(e, "0"));
}

int lgpu_repack_q4_0_x8(const void *src, void *dst, int64_t n_rows, int64_t k) {
    if (n_rows < 0 || n_rows % 8 || k <= 0 || k % LGPU_QK || src == dst)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_repack_q4_0_x8: %lld rows of %lld values (rows must be a multiple "
                              "of 8, values of 32; distinct buffers)", (long long)n_rows, (long long)k);
    const int64_t nb = k / LGPU_QK;
    const lgpu_block_q4_0 *in = src;
    lgpu_block_q4_0x8 *out = dst;
    for (int64_t g = 0; g < n_rows / 8; g++)
        for (int64_t b = 0; b < nb; b++) {
            lgpu_block_q4_0x8 *o = &out[g * nb + b];
            for (int r = 0; r < 8; r++) {
                const lgpu_block_q4_0 *blk = &in[(g * 8 + r) * nb + b];
                o->d[r] = blk->d;
                for (int s = 0; s < 4; s++) memcpy(o->qs + 32 * s + 4 * r, blk->qs + 4 * s, 4);
            }
        }
    return 0;
}

void lgpu_dequantize_blocks_q4_0_x8(const void *w, int64_t row, int64_t k, int64_t b0, int64_t nb, float *dst) {
    const int r = (int)(row % 8);
    const lgpu_block_q4_0x8 *blk = (const lgpu_block_q4_0x8 *)w + row / 8 * (k / LGPU_QK);
    for (int64_t b = b0; b < b0 + nb; b++, dst += LGPU_QK) {
        const float d = lgpu_f16_to_f32(blk[b].d[r]);
        for (int i = 0; i < LGPU_QK / 2; i++) {
            const uint8_t q = blk[b].qs[32 * (i / 4) + 4 * r + i % 4];
            dst[i] = ((q & 15) - 8) * d;
            dst[i + LGPU_QK / 2] = ((q >> 4) - 8) * d;
        }
    }
}

void lgpu_dequantize_row_q4_0_x8(const void *w, int64_t row, int64_t k, float *dst) {
    lgpu_dequantize_blocks_q4_0_x8(w, row, k, 0, k / LGPU_QK, dst);
}
