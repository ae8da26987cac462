/* lgpu_ref_matmul: the host matmul (C twin of shaders/matmul*.comp) and its
 * exact oracle.
 *
 * lgpu_ref_matmul_exact dequantizes W row by row and accumulates in double:
 * simple, slow, the reference for tests. lgpu_ref_matmul is the fast host
 * path: AVX2 kernels when the CPU has them (quantized W types then quantize x
 * to int8 blocks once per call, like llama.cpp), plain C otherwise. Both
 * split the N rows over the thread pool; every y element is computed by one
 * thread with a fixed operation order, so results do not depend on nthreads. */
#include "ref/ref_matmul.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "core/parallel.h"
#include "quant/nf4.h"
#include "quant/quant.h"
#include "ref/ref_ops.h"

/* Checks the type and applies row_offset; x_stride / y_stride 0 mean
 * contiguous rows. Bad parameters are logged (the twins return void; the op
 * layer validates before calling). */
static int resolve(const lgpu_matmul_params *p, const void *w, const void *side, const float *x, float *y,
                   int nthreads, mm_call *c) {
    int64_t be = lgpu_type_block_elems((int)p->wtype);
    size_t rb = lgpu_type_row_bytes((int)p->wtype, p->K);
    bool nf4 = lgpu_type_is_nf4((int)p->wtype);
    if (nf4) { /* rows need not be whole blocks; the binding starts on one */
        if (!side || ((uint64_t)p->row_offset * p->K) % LGPU_NF4_BLOCK) {
            lgpu_log(LGPU_LOG_ERROR, "lgpu_ref_matmul: NF4 W without its side table, or row_offset %u off a block",
                     p->row_offset);
            return -1;
        }
    } else if (be <= 0 || p->K % be || p->wtype == LGPU_TYPE_I32) {
        lgpu_log(LGPU_LOG_ERROR, "lgpu_ref_matmul: unsupported wtype %u or K=%u not a multiple of its block",
                 p->wtype, p->K);
        return -1;
    }
    if (p->w_x8 && (p->wtype != LGPU_TYPE_Q4_0 || p->N % 8 || p->row_offset)) {
        lgpu_log(LGPU_LOG_ERROR, "lgpu_ref_matmul: a repacked W must be Q4_0 with N %% 8 == 0 (N=%u)", p->N);
        return -1;
    }
    c->M = (int)p->M;
    c->N = (int)p->N;
    c->K = (int)p->K;
    c->wtype = (int)p->wtype;
    c->w = w;
    c->row_bytes = rb;
    c->x = x;
    c->x_stride = p->x_stride ? p->x_stride : p->K;
    c->y = y + p->row_offset;
    c->y_stride = p->y_stride ? p->y_stride : (size_t)p->N + p->row_offset;
    c->accumulate = p->accumulate != 0;
    c->nthreads = nthreads < 1 ? 1 : nthreads;
    c->x8 = p->w_x8 != 0;
    c->side = nf4 ? side : NULL;
    c->block0 = nf4 ? (int64_t)p->row_offset * p->K / LGPU_NF4_BLOCK : 0;
    return 0;
}

/* Row n of W as K floats (dst), or W's own row for F32. */
static const float *w_row(const mm_call *c, int n, float *dst) {
    const uint8_t *src = c->w + (size_t)n * c->row_bytes;
    if (c->x8) lgpu_dequantize_row_q4_0_x8(c->w, n, c->K, dst);
    else if (c->side) lgpu_nf4_dequantize(c->wtype, c->w, c->side, c->block0, (int64_t)n * c->K, c->K, dst, true);
    else if (c->wtype == LGPU_TYPE_F32) return (const float *)src;
    else lgpu_dequantize_row(c->wtype, src, dst, c->K);
    return dst;
}

/* K = 0: y is the empty sum (0), or unchanged when accumulating. */
static bool empty_sum(const mm_call *c) {
    if (c->K) return false;
    if (!c->accumulate)
        for (int m = 0; m < c->M; m++) memset(c->y + m * c->y_stride, 0, (size_t)c->N * sizeof(float));
    return true;
}

/* ---------------------------------------------------------------- exact */

void lgpu_ref_matmul_exact(const lgpu_matmul_params *p, const void *w, const void *w_side, const float *x, float *y) {
    mm_call c;
    if (resolve(p, w, w_side, x, y, 1, &c) || !c.M || !c.N) return;
    if (empty_sum(&c)) return;
    float *row = malloc((size_t)c.K * sizeof *row);
    if (!row) {
        lgpu_log(LGPU_LOG_ERROR, "lgpu_ref_matmul_exact: out of memory (K=%d)", c.K);
        return;
    }
    for (int n = 0; n < c.N; n++) {
        const float *wn = w_row(&c, n, row);
        for (int m = 0; m < c.M; m++) {
            const float *xm = c.x + m * c.x_stride;
            double s = 0;
            for (int k = 0; k < c.K; k++) s += (double)wn[k] * xm[k];
            float *out = &c.y[m * c.y_stride + n];
            *out = c.accumulate ? (float)(*out + s) : (float)s;
        }
    }
    free(row);
}

/* ---------------------------------------------------------------- plain C */

#define PLAIN_RM 4 /* W rows dequantized together, then reused for every x row */

typedef struct {
    const mm_call *c;
    float *scratch; /* nthreads * PLAIN_RM * K floats (unused for F32) */
} plain_ctx;

/* Fixed order: 8 interleaved partial sums, then a fixed pairwise reduction. */
static float dot_plain(const float *a, const float *b, int K) {
    float s[8] = {0};
    int k = 0;
    for (; k + 8 <= K; k += 8)
        for (int j = 0; j < 8; j++) s[j] += a[k + j] * b[k + j];
    for (int j = 0; k < K; k++, j++) s[j] += a[k] * b[k];
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

static void plain_range(void *vctx, int64_t t0, int64_t t1, int thread) {
    const plain_ctx *pc = vctx;
    const mm_call *c = pc->c;
    for (int64_t t = t0; t < t1; t++) {
        int n0 = (int)t * PLAIN_RM, rm = c->N - n0 < PLAIN_RM ? c->N - n0 : PLAIN_RM;
        const float *rows[PLAIN_RM];
        for (int r = 0; r < rm; r++)
            rows[r] = w_row(c, n0 + r, pc->scratch ? pc->scratch + ((size_t)thread * PLAIN_RM + r) * c->K : NULL);
        for (int m = 0; m < c->M; m++) {
            const float *xm = c->x + m * c->x_stride;
            float *ym = c->y + m * c->y_stride + n0;
            for (int r = 0; r < rm; r++) {
                float s = dot_plain(rows[r], xm, c->K);
                ym[r] = c->accumulate ? ym[r] + s : s;
            }
        }
    }
}

static void mm_plain(const mm_call *c) {
    plain_ctx pc = {c, NULL};
    if (c->wtype != LGPU_TYPE_F32) {
        pc.scratch = malloc((size_t)c->nthreads * PLAIN_RM * c->K * sizeof(float));
        if (!pc.scratch) {
            lgpu_log(LGPU_LOG_ERROR, "lgpu_ref_matmul: out of memory for dequantized rows (K=%d)", c->K);
            return;
        }
    }
    lgpu_parallel_for(c->nthreads, (c->N + PLAIN_RM - 1) / PLAIN_RM, plain_range, &pc);
    free(pc.scratch);
}

/* ---------------------------------------------------------------- dispatch */

static atomic_int isa_setting = -1; /* -1: not read from the environment yet */

/* CPUID rather than __builtin_cpu_supports, which lacks "f16c" in some
 * compilers; XGETBV confirms the OS saves the YMM registers. */
static int cpu_has_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const unsigned need = (1u << 12) | (1u << 27) | (1u << 28) | (1u << 29); /* FMA, OSXSAVE, AVX, F16C */
    if ((c & need) != need) return 0;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    if ((xlo & 6) != 6) return 0; /* XMM and YMM state enabled */
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 5) & 1; /* AVX2 */
#else
    return 0;
#endif
}

int lgpu_ref_matmul_set_isa(int isa) {
    int prev = lgpu_ref_matmul_isa();
    atomic_store(&isa_setting, isa);
    return prev;
}

int lgpu_ref_matmul_isa(void) {
    int s = atomic_load(&isa_setting);
    if (s < 0) {
        const char *e = getenv("LGPU_CPU_ISA");
        s = e && !strcasecmp(e, "plain") ? LGPU_MM_ISA_PLAIN : LGPU_MM_ISA_AUTO;
        atomic_store(&isa_setting, s);
    }
    if (s == LGPU_MM_ISA_PLAIN) return LGPU_MM_ISA_PLAIN;
    static atomic_int has = -1;
    int h = atomic_load(&has);
    if (h < 0) atomic_store(&has, h = cpu_has_avx2());
    return h ? LGPU_MM_ISA_AVX2 : LGPU_MM_ISA_PLAIN;
}

void lgpu_ref_matmul(const lgpu_matmul_params *p, const void *w, const void *w_side, const float *x, float *y,
                     int nthreads) {
    mm_call c;
    if (resolve(p, w, w_side, x, y, nthreads, &c) || !c.M || !c.N) return;
    if (empty_sum(&c)) return;
    /* NF4: the plain kernel over rows dequantized to the compute type (the
     * AVX2 family has no NF4 kernel: the training path's matmuls are
     * dominated by the dequantization, which the plain kernel shares) */
    if (!c.side && lgpu_ref_matmul_isa() == LGPU_MM_ISA_AVX2 && lgpu_mm_avx2(&c)) return;
    mm_plain(&c);
}
