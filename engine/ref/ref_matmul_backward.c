/* C twin of shaders/matmul_backward.comp: dx[m, k] (+)= sum_n dy[m, n] W[n, k],
 * W frozen, of any matmul weight type (the host's Q4_0 8-row groups, and NF4
 * with its side table, dequantized to its compute type, too).
 *
 * Every dx element is the float sum s = ((0 + p_0) + p_1) + ... of the
 * products p_n = dy[m, n] * W[n, k] in increasing n, then dx + s when
 * accumulating: the shader's order (which may fuse multiply and add).
 *
 * Work items are tiles of TM dx rows x TK columns (a multiple of every
 * block size, so a tile's columns are whole blocks of each W row), spread
 * over the thread pool. A tile walks n in chunks of NC: it reads the chunk's
 * dy values in place (packed n-major with zero rows only for a last tile of
 * M % 4 rows) and dequantizes the W slices
 * W[n, k0 .. k0 + TK) of the chunk's rows (lgpu_dequantize_row on those
 * blocks, or the repacked groups' blocks; F32 copied, as reading W in
 * place at its row stride thrashes the cache), zero-padded to the kernel's
 * 4 x 16 blocks, then lgpu_ref_tile_acc adds them in n order. W is never
 * dequantized as a whole; each slice once per row tile. */
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "quant/nf4.h"
#include "quant/quant.h"
#include "ref/ref_ops.h"
#include "ref/ref_tile.h"

#define TM 32  /* dx rows per tile (a multiple of LGPU_TILE_ROWS) */
#define TK 256 /* dx columns per tile: whole blocks of every type, a multiple of LGPU_TILE_COLS */
#define NC 64  /* n per chunk */

typedef struct {
    const lgpu_matmul_backward_params *p;
    const uint8_t *w;
    size_t row_bytes, block_bytes;
    int64_t block_elems;
    const float *dy; /* column row_offset of row 0 */
    float *dx;
    size_t dy_stride, dx_stride;
    uint32_t k_tiles;
    float *scratch; /* per thread: SCRATCH floats */
    const void *side; /* NF4: the tensor's side table; w starts at its block block0 */
    int64_t block0;
} mmb_ctx;

#define SCRATCH (TM * TK + NC * TM + NC * TK)

static uint32_t round_up(uint32_t v, uint32_t m) { return (v + m - 1) / m * m; }

static void mmb_range(void *vctx, int64_t t0, int64_t t1, int thread) {
    const mmb_ctx *c = vctx;
    const lgpu_matmul_backward_params *p = c->p;
    float *acc = c->scratch + (size_t)thread * SCRATCH, *at = acc + TM * TK, *wp = at + NC * TM;
    for (int64_t t = t0; t < t1; t++) {
        const uint32_t m0 = (uint32_t)(t / c->k_tiles) * TM, k0 = (uint32_t)(t % c->k_tiles) * TK;
        const uint32_t mb = p->M - m0 < TM ? p->M - m0 : TM, kb = p->K - k0 < TK ? p->K - k0 : TK;
        const uint32_t rows = round_up(mb, LGPU_TILE_ROWS), cols = round_up(kb, LGPU_TILE_COLS);
        memset(acc, 0, (size_t)rows * cols * sizeof *acc); /* rows of `cols` sums */
        for (uint32_t n0 = 0; n0 < p->N; n0 += NC) {
            const uint32_t nc = p->N - n0 < NC ? p->N - n0 : NC;
            /* dy in place when the tile's rows are whole 4-row blocks; else
             * packed n-major (at[n][m]) with zero rows */
            const float *ap = c->dy + (size_t)m0 * c->dy_stride + n0;
            size_t a_rs = c->dy_stride, a_ts = 1;
            if (rows != mb) {
                for (uint32_t i = 0; i < mb; i++)
                    for (uint32_t n = 0; n < nc; n++) at[(size_t)n * TM + i] = ap[(size_t)i * c->dy_stride + n];
                for (uint32_t n = 0; n < nc; n++)
                    for (uint32_t i = mb; i < rows; i++) at[(size_t)n * TM + i] = 0;
                ap = at, a_rs = 1, a_ts = TM;
            }
            for (uint32_t n = 0; n < nc; n++) { /* W[n0 + n, k0 ..] as floats, padded to `cols` */
                float *wn = wp + (size_t)n * cols;
                const uint8_t *row = c->w + (size_t)(n0 + n) * c->row_bytes;
                if (p->w_x8)
                    lgpu_dequantize_blocks_q4_0_x8(c->w, n0 + n, p->K, k0 / LGPU_QK, kb / LGPU_QK, wn);
                else if (c->side) /* values (n0 + n) K + k0 .. of the flattened blocks, at the compute type */
                    lgpu_nf4_dequantize((int)p->wtype, c->w, c->side, c->block0, (int64_t)(n0 + n) * p->K + k0, kb,
                                        wn, true);
                else if (p->wtype == LGPU_TYPE_F32)
                    memcpy(wn, (const float *)row + k0, kb * sizeof *wn);
                else
                    lgpu_dequantize_row((int)p->wtype, row + k0 / c->block_elems * c->block_bytes, wn, kb);
                for (uint32_t j = kb; j < cols; j++) wn[j] = 0;
            }
            lgpu_ref_tile_acc(acc, cols, ap, a_rs, a_ts, wp, cols, (int)rows, (int)cols, (int)nc);
        }
        for (uint32_t i = 0; i < mb; i++) {
            float *d = c->dx + (size_t)(m0 + i) * c->dx_stride + k0;
            const float *s = acc + (size_t)i * cols;
            if (p->accumulate)
                for (uint32_t j = 0; j < kb; j++) d[j] += s[j];
            else
                memcpy(d, s, kb * sizeof *d);
        }
    }
}

void lgpu_ref_matmul_backward(const lgpu_matmul_backward_params *p, const void *w, const void *w_side,
                              const float *dy, float *dx, int nthreads) {
    int64_t be = lgpu_type_block_elems((int)p->wtype);
    bool nf4 = lgpu_type_is_nf4((int)p->wtype);
    if (nf4 && (!w_side || ((uint64_t)p->row_offset * p->K) % LGPU_NF4_BLOCK)) {
        lgpu_log(LGPU_LOG_ERROR, "lgpu_ref_matmul_backward: NF4 W without its side table, or row_offset %u off a block",
                 p->row_offset);
        return;
    }
    if (!nf4 && (be <= 0 || p->K % be || p->wtype == LGPU_TYPE_I32 || TK % be)) {
        lgpu_log(LGPU_LOG_ERROR, "lgpu_ref_matmul_backward: unsupported wtype %u or K=%u not a multiple of its block",
                 p->wtype, p->K);
        return;
    }
    if (p->w_x8 && (p->wtype != LGPU_TYPE_Q4_0 || p->N % 8 || p->row_offset)) {
        lgpu_log(LGPU_LOG_ERROR, "lgpu_ref_matmul_backward: a repacked W must be Q4_0 with N %% 8 == 0 (N=%u)", p->N);
        return;
    }
    if (!p->M || !p->K) return;
    mmb_ctx c = {
        .p = p,
        .w = w,
        .row_bytes = lgpu_type_row_bytes((int)p->wtype, p->K),
        .block_bytes = lgpu_type_block_bytes((int)p->wtype),
        .block_elems = be,
        .dy = dy + p->row_offset,
        .dx = dx,
        /* strides 0: contiguous rows (dy's of the whole N when row_offset is set) */
        .dy_stride = p->dy_stride ? p->dy_stride : (size_t)p->N + p->row_offset,
        .dx_stride = p->dx_stride ? p->dx_stride : p->K,
        .k_tiles = (p->K + TK - 1) / TK,
        .side = nf4 ? w_side : NULL,
        .block0 = nf4 ? (int64_t)p->row_offset * p->K / LGPU_NF4_BLOCK : 0,
    };
    int64_t tiles = (int64_t)((p->M + TM - 1) / TM) * c.k_tiles;
    if (nthreads < 1 || (uint64_t)p->M * p->K * (p->N + 1) < 65536) nthreads = 1; /* small: the calling thread */
    if (nthreads > tiles) nthreads = (int)tiles;
    c.scratch = malloc((size_t)nthreads * SCRATCH * sizeof *c.scratch);
    if (!c.scratch) {
        lgpu_log(LGPU_LOG_ERROR, "lgpu_ref_matmul_backward: out of memory (%d threads)", nthreads);
        return;
    }
    lgpu_parallel_for(nthreads, tiles, mmb_range, &c);
    free(c.scratch);
}
