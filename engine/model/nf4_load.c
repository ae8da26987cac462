/* QLoRA's base at load: a projection matrix of the file converted to NF4
 * (quant/nf4.h) on the host and uploaded with its side table. */
#include <stdlib.h>
#include <string.h>

#include "model/llama_internal.h"
#include "quant/nf4.h"
#include "quant/quant.h"

/* Values dequantized per step: whole row groups, about 1M floats (4 MB). */
#define STEP_VALUES (1 << 20)

int lgpu_upload_nf4(lgpu_dev *dev, const lgpu_model_tensor *t, int type, int ct, lgpu_wt *out, size_t *bytes) {
    const int64_t K = t->ne0, N = t->n_rows, n = N * K;
    if (K % 2 || N < 1 || n > UINT32_MAX)
        return lgpu_set_error(LGPU_EFORMAT, "%s: %lld x %lld cannot be NF4 (an even number of columns, below 2^32 "
                              "values)", t->name, (long long)N, (long long)K);
    const int64_t g = lgpu_nf4_row_group(K), nb = lgpu_nf4_blocks(n);
    int64_t step_rows = STEP_VALUES / K / g * g;
    if (step_rows < g) step_rows = g;
    const size_t wb = lgpu_nf4_bytes(type, n), sb = lgpu_nf4_side_bytes(type, n);
    const size_t bb = lgpu_type_block_bytes(type), unit = lgpu_nf4_rows_bytes(type, g, K);
    uint8_t *blocks = calloc(1, wb + 4);
    lgpu_nf4_side *side = calloc(1, sb);
    float *absmax = malloc((size_t)nb * sizeof *absmax), *x = malloc((size_t)(step_rows * K) * sizeof *x);
    lgpu_buf *buf = NULL, *sbuf = NULL;
    int st = 0;
    if (!blocks || !side || !absmax || !x) {
        st = lgpu_set_error(LGPU_ENOMEM, "%s: NF4 staging of %zu bytes", t->name, wb);
        goto done;
    }
    /* each step starts on a block boundary: a multiple of g rows */
    for (int64_t r0 = 0; r0 < N && !st; r0 += step_rows) {
        int64_t rows = N - r0 < step_rows ? N - r0 : step_rows, b0 = r0 * K / LGPU_NF4_BLOCK;
        st = lgpu_dequantize_rows(t->type, t->data, r0, rows, K, x);
        if (!st) st = lgpu_nf4_quantize_part(type, x, rows * K, blocks + (size_t)b0 * bb, absmax + b0);
    }
    if (!st) st = lgpu_nf4_finish(type, blocks, absmax, nb, side, ct);
    /* the vec kernel reads whole 32-bit words: 4 bytes of slack past the blocks */
    if (!st) st = lgpu_buf_create(dev, wb + 4, unit, &buf);
    if (!st) st = lgpu_buf_write(buf, 0, blocks, wb + 4);
    if (!st) st = lgpu_buf_create(dev, sb, 4, &sbuf);
    if (!st) st = lgpu_buf_write(sbuf, 0, side, sb);
    if (st) {
        lgpu_buf_destroy(sbuf);
        lgpu_buf_destroy(buf);
        goto done;
    }
    lgpu_buf_set_side(buf, sbuf, (uint32_t)ct);
    out->buf = buf;
    out->type = type;
    out->rows = (uint32_t)N;
    out->cols = (uint32_t)K;
    out->x8 = false;
    *bytes = wb + 4 + sb;
done:
    free(blocks), free(side), free(absmax), free(x);
    return st;
}
