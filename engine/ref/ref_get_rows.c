/* C twin of shaders/get_rows.comp: rows are dequantized with the quant
 * module's reference code. Same row_offset rule as the shader: ids outside
 * [row_offset, row_offset + n_rows) are left alone, except when row_offset is
 * 0, which writes a zero row for them. */
#include <string.h>

#include "quant/quant.h"
#include "ref/ref_ops.h"

void lgpu_ref_get_rows(const lgpu_get_rows_params *p, const void *e, const int32_t *ids, float *y) {
    size_t rb = lgpu_type_row_bytes((int)p->etype, p->K);
    for (uint32_t t = 0; t < p->T; t++) {
        float *yr = y + (size_t)t * p->K;
        int64_t r = (int64_t)ids[t] - p->row_offset;
        if (ids[t] < 0 || r < 0 || r >= p->n_rows) {
            if (p->row_offset == 0) memset(yr, 0, p->K * sizeof(float));
            continue;
        }
        if (p->e_x8) lgpu_dequantize_row_q4_0_x8(e, r, p->K, yr);
        else lgpu_dequantize_row((int)p->etype, (const uint8_t *)e + (size_t)r * rb, yr, p->K);
    }
}
