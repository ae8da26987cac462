/* C twin of shaders/gemm.comp: c[m, n] = alpha * sum_k opA[m, k] opB[k, n] (+ c[m, n]).
 *
 * Every c element is the float sum s = ((0 + p_0) + p_1) + ... of the
 * products p_k = opA[m, k] * opB[k, n] in increasing k, then alpha * s, then
 * + c when accumulating: the shader's order, so the two differ only where a
 * GPU fuses a multiply and an add (FMA), never by tiling or thread count.
 *
 * Work items are tiles of TM rows x TN columns of c, spread over the thread
 * pool. A tile keeps its sums in a per-thread array and walks k in chunks of
 * KC: the chunk's opB rows are packed contiguous (bp[k][n], whatever
 * trans_b) and zero-padded to the kernel's 16-column blocks; opA is read in
 * place (packed k-major with zero rows only for a last tile of M % 4 rows);
 * lgpu_ref_tile_acc adds them in k order. The sums and bp rows are as wide as
 * the padded tile (a thin tile stays in few cache lines). */
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "ref/ref_ops.h"
#include "ref/ref_tile.h"

#define TM 32  /* c rows per tile (a multiple of LGPU_TILE_ROWS) */
#define TN 256 /* c columns per tile (a multiple of LGPU_TILE_COLS) */
#define KC 64  /* k per packed chunk */

typedef struct {
    const lgpu_gemm_params *p;
    const float *a, *b;
    float *c;
    size_t lda, ldb, ldc;
    uint32_t n_tiles;  /* tiles along n */
    float *scratch;    /* per thread: SCRATCH floats */
} gemm_ctx;

#define SCRATCH (TM * TN + KC * TM + KC * TN)

static uint32_t round_up(uint32_t v, uint32_t m) { return (v + m - 1) / m * m; }

static void gemm_range(void *vctx, int64_t t0, int64_t t1, int thread) {
    const gemm_ctx *g = vctx;
    const lgpu_gemm_params *p = g->p;
    float *acc = g->scratch + (size_t)thread * SCRATCH, *at = acc + TM * TN, *bp = at + KC * TM;
    for (int64_t t = t0; t < t1; t++) {
        const uint32_t m0 = (uint32_t)(t / g->n_tiles) * TM, n0 = (uint32_t)(t % g->n_tiles) * TN;
        const uint32_t mb = p->M - m0 < TM ? p->M - m0 : TM, nb = p->N - n0 < TN ? p->N - n0 : TN;
        const uint32_t rows = round_up(mb, LGPU_TILE_ROWS), cols = round_up(nb, LGPU_TILE_COLS);
        memset(acc, 0, (size_t)rows * cols * sizeof *acc); /* rows of `cols` sums */
        for (uint32_t k0 = 0; k0 < p->K; k0 += KC) {
            const uint32_t kc = p->K - k0 < KC ? p->K - k0 : KC;
            /* opA in place when the tile's rows are whole 4-row blocks; else
             * packed k-major (at[k][m]) with zero rows */
            const float *ap;
            size_t a_rs, a_ts;
            if (rows == mb) {
                ap = p->trans_a ? g->a + (size_t)k0 * g->lda + m0 : g->a + (size_t)m0 * g->lda + k0;
                a_rs = p->trans_a ? 1 : g->lda, a_ts = p->trans_a ? g->lda : 1;
            } else {
                if (p->trans_a)
                    for (uint32_t k = 0; k < kc; k++)
                        memcpy(at + (size_t)k * TM, g->a + (size_t)(k0 + k) * g->lda + m0, mb * sizeof *at);
                else
                    for (uint32_t i = 0; i < mb; i++) {
                        const float *ar = g->a + (size_t)(m0 + i) * g->lda + k0;
                        for (uint32_t k = 0; k < kc; k++) at[(size_t)k * TM + i] = ar[k];
                    }
                for (uint32_t k = 0; k < kc; k++)
                    for (uint32_t i = mb; i < rows; i++) at[(size_t)k * TM + i] = 0;
                ap = at, a_rs = 1, a_ts = TM;
            }
            /* opB rows k, packed to the tile's padded width */
            if (p->trans_b)
                for (uint32_t j = 0; j < nb; j++) {
                    const float *br = g->b + (size_t)(n0 + j) * g->ldb + k0;
                    for (uint32_t k = 0; k < kc; k++) bp[(size_t)k * cols + j] = br[k];
                }
            else
                for (uint32_t k = 0; k < kc; k++)
                    memcpy(bp + (size_t)k * cols, g->b + (size_t)(k0 + k) * g->ldb + n0, nb * sizeof *bp);
            for (uint32_t k = 0; k < kc; k++)
                for (uint32_t j = nb; j < cols; j++) bp[(size_t)k * cols + j] = 0;
            lgpu_ref_tile_acc(acc, cols, ap, a_rs, a_ts, bp, cols, (int)rows, (int)cols, (int)kc);
        }
        for (uint32_t i = 0; i < mb; i++) {
            float *cr = g->c + (size_t)(m0 + i) * g->ldc + n0;
            const float *s = acc + (size_t)i * cols;
            for (uint32_t j = 0; j < nb; j++) {
                const float v = p->alpha * s[j];
                cr[j] = p->accumulate ? cr[j] + v : v;
            }
        }
    }
}

void lgpu_ref_gemm(const lgpu_gemm_params *p, const float *a, const float *b, float *c, int nthreads) {
    if (!p->M || !p->N) return;
    gemm_ctx g = {
        .p = p,
        .a = a,
        .b = b,
        .c = c,
        /* strides 0: contiguous (as the op layer resolves them) */
        .lda = p->lda ? p->lda : (p->trans_a ? p->M : p->K),
        .ldb = p->ldb ? p->ldb : (p->trans_b ? p->K : p->N),
        .ldc = p->ldc ? p->ldc : p->N,
        .n_tiles = (p->N + TN - 1) / TN,
    };
    int64_t tiles = (int64_t)((p->M + TM - 1) / TM) * g.n_tiles;
    if (nthreads < 1 || (uint64_t)p->M * p->N * (p->K + 1) < 65536) nthreads = 1; /* small: the calling thread */
    if (nthreads > tiles) nthreads = (int)tiles;
    g.scratch = malloc((size_t)nthreads * SCRATCH * sizeof *g.scratch);
    if (!g.scratch) {
        lgpu_log(LGPU_LOG_ERROR, "lgpu_ref_gemm: out of memory (%d threads)", nthreads);
        return;
    }
    lgpu_parallel_for(nthreads, tiles, gemm_range, &g);
    free(g.scratch);
}
