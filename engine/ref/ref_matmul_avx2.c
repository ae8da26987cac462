/* AVX2+FMA+F16C kernels for lgpu_ref_matmul, compiled with a target
 * attribute and chosen at run time, so the library still runs on any x86-64.
 *
 * Float W (F32/F16/BF16): W converted to f32 in registers, FMA with f32 x.
 * Quantized W: x is first rounded to int8 (like llama.cpp): per 32 values
 * with a float scale for Q8_0/Q4_0, per 256 values with sums of each 16 for
 * Q4_K/Q6_K, so the inner loops are integer dot products (maddubs/madd) with
 * one float FMA per block.
 *
 * Work is split over tiles of TILE_N W rows (8 for Q4_0 repacked at load,
 * lgpu_block_q4_0x8, the usual case); a tile meets x in groups of up to
 * TILE_M (TILE_M4) rows, so each W block is loaded and unpacked once per
 * group (file-layout Q4_0 with M >= 4: once per call, see range), and x is
 * visited in cache-sized blocks of rows. Every y element gets the same
 * operation sequence whichever tile shape it falls in (fixed accumulator
 * lanes, blocks in order, a fixed horizontal sum), so results do not depend
 * on M, N, row_offset or the thread split. */
#include "ref/ref_matmul.h"

#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "lgpu/lgpu.h"
#include "quant/quant.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma,f16c")))
#define INL static inline __attribute__((always_inline)) TGT

/* The small loops over tile rows must unroll so accumulators live in registers. */
#define UNROLL _Pragma("GCC unroll 8")

#define TILE_N 4  /* W rows per tile */
#define TILE_M 2  /* x rows per kernel call (float and K-quant kernels) */
#define TILE_M4 8 /* x rows per kernel call for Q4_0/Q8_0 (one accumulator per x row; 8 beats 4 by
                   * ~1.4x at M = 32 although a few registers spill) */

/* x rounded to int8, with one scale per qb values.
 * K-quants: q row m at q + m*K, the scales at d + m*nb, and the sums of each
 * 16 q (bs).
 * Q4_0/Q8_0: rows in groups of TILE_M4 (the last group may have fewer, rn,
 * rows), each group block-major: block b of a group is one record (rec) of
 * its rn rows' 32 q, then their rn scales, then their rn corrections for the
 * Q4_0 weights' -8 offset (s4 = -4 * the block's sum of q, see q4_0_block).
 * A kernel call meets one group, so it walks one pointer with offsets that
 * are constants. */
typedef struct {
    int qb, nb; /* values per scale, scales per row */
    int8_t *q;
    float *d;
    int16_t *bs; /* M*K/16, K-quants only */
    uint8_t *rec; /* Q4_0/Q8_0 only */
} actq;

static inline size_t rec_bytes(int rn) { return (size_t)rn * (LGPU_QK + 4 + 4); }

/* Row j of a record of rn rows. */
INL const int8_t *rec_q(const uint8_t *r, int j) { return (const int8_t *)r + LGPU_QK * j; }
INL float rec_d(const uint8_t *r, int rn, int j) { return ((const float *)(r + LGPU_QK * rn))[j]; }
INL int32_t rec_s4(const uint8_t *r, int rn, int j) { return ((const int32_t *)(r + (LGPU_QK + 4) * rn))[j]; }

/* The first record of the group starting at x row m0 (m0 % TILE_M4 == 0). */
static inline const uint8_t *rec_group(const actq *a, int m0) { return a->rec + (size_t)m0 * a->nb * (LGPU_QK + 8); }

typedef struct {
    const mm_call *c;
    actq a;
    int mb;     /* x rows per cache block */
    int tile_m; /* x rows per kernel call */
} job;

/* 4 Q4_0 W rows' block, interleaved for maddubs: v[k] holds values 8k..8k+7
 * of row 0, then row 1, 2, 3 (8 bytes each); d the rows' scales as
 * [d0 d0 d1 d1 d2 d2 d3 d3]. */
typedef struct {
    __m256i v[4];
    __m256 d;
} q4_0x4;

/* ------------------------------------------------------------------ helpers */

INL float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

INL void store_y(const mm_call *c, int m, int n, __m256 acc) {
    float s = hsum8(acc), *out = c->y + (size_t)m * c->y_stride + n;
    *out = c->accumulate ? *out + s : s;
}

INL float f16_scalar(lgpu_f16 h) { return _cvtsh_ss(h); }

/* ---------------------------------------------------------- float W types */

INL __m256 load_w8(int type, const uint8_t *row, int k) {
    if (type == LGPU_TYPE_F32) return _mm256_loadu_ps((const float *)row + k);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + k));
    if (type == LGPU_TYPE_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); /* BF16 */
}

/* rm W rows from n0 times rn x rows from m0; rm, rn, type are constants
 * after inlining. The K % 8 tail goes through zero-padded copies. */
INL void tile_float(const mm_call *c, int type, int n0, int rm, int m0, int rn) {
    const int K = c->K, K8 = K & ~7;
    const size_t esz = type == LGPU_TYPE_F32 ? 4 : 2;
    const uint8_t *wr[TILE_N];
    const float *xr[TILE_M];
    __m256 acc[TILE_N][TILE_M];
    UNROLL
    for (int r = 0; r < rm; r++) wr[r] = c->w + (size_t)(n0 + r) * c->row_bytes;
    UNROLL
    for (int j = 0; j < rn; j++) xr[j] = c->x + (size_t)(m0 + j) * c->x_stride;
    UNROLL
    for (int r = 0; r < rm; r++)
        UNROLL
        for (int j = 0; j < rn; j++) acc[r][j] = _mm256_setzero_ps();
    for (int k = 0; k < K8; k += 8) {
        __m256 xv[TILE_M];
        UNROLL
        for (int j = 0; j < rn; j++) xv[j] = _mm256_loadu_ps(xr[j] + k);
        UNROLL
        for (int r = 0; r < rm; r++) {
            __m256 wv = load_w8(type, wr[r], k);
            UNROLL
            for (int j = 0; j < rn; j++) acc[r][j] = _mm256_fmadd_ps(wv, xv[j], acc[r][j]);
        }
    }
    if (K8 < K) {
        float xt[TILE_M][8] = {{0}};
        uint8_t wt[32] = {0};
        UNROLL
        for (int j = 0; j < rn; j++) memcpy(xt[j], xr[j] + K8, (size_t)(K - K8) * 4);
        UNROLL
        for (int r = 0; r < rm; r++) {
            memcpy(wt, wr[r] + K8 * esz, (K - K8) * esz);
            __m256 wv = load_w8(type, wt, 0);
            UNROLL
            for (int j = 0; j < rn; j++) acc[r][j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xt[j]), acc[r][j]);
        }
    }
    UNROLL
    for (int r = 0; r < rm; r++)
        UNROLL
        for (int j = 0; j < rn; j++) store_y(c, m0 + j, n0 + r, acc[r][j]);
}

/* ------------------------------------------------------- x quantization */

/* Round v (n floats, n % 32 == 0) to int8 with one scale d = max|v|/127. */
INL float quant_block(const float *v, int n, int8_t *q) {
    __m256 amax = _mm256_setzero_ps();
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int i = 0; i < n; i += 8) amax = _mm256_max_ps(amax, _mm256_and_ps(_mm256_loadu_ps(v + i), absmask));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    const float d = _mm_cvtss_f32(m) / 127.0f;
    const __m256 id = _mm256_set1_ps(d ? 1.0f / d : 0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int i = 0; i < n; i += 32) {
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v + i), id));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v + i + 8), id));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v + i + 16), id));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v + i + 24), id));
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(p, perm));
    }
    return d;
}

/* K-quants: x rows to int8 with per-256 scales and the sums of each 16. */
static TGT void quantize_x_k(const mm_call *c, actq *a) {
    const int K = c->K;
    for (int m = 0; m < c->M; m++) {
        const float *xm = c->x + (size_t)m * c->x_stride;
        int8_t *qm = a->q + (size_t)m * K;
        for (int b = 0; b < a->nb; b++) a->d[(size_t)m * a->nb + b] = quant_block(xm + b * a->qb, a->qb, qm + b * a->qb);
        int16_t *bs = a->bs + (size_t)m * (K / 16);
        for (int i = 0; i < K / 16; i++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += qm[16 * i + l];
            bs[i] = (int16_t)s;
        }
    }
}

/* Q4_0/Q8_0: x rows to int8 blocks of 32 in the grouped record layout. */
static TGT void quantize_x_groups(const mm_call *c, actq *a) {
    for (int m = 0; m < c->M; m++) {
        const float *xm = c->x + (size_t)m * c->x_stride;
        const int m0 = m - m % TILE_M4, j = m - m0, rn = c->M - m0 < TILE_M4 ? c->M - m0 : TILE_M4;
        uint8_t *r = (uint8_t *)rec_group(a, m0);
        for (int b = 0; b < a->nb; b++, r += rec_bytes(rn)) {
            int8_t *q = (int8_t *)r + LGPU_QK * j;
            ((float *)(r + LGPU_QK * rn))[j] = quant_block(xm + LGPU_QK * b, LGPU_QK, q);
            int sum = 0; /* each row's block result spans 2 lanes: each corrects half of -8 * sum(q) */
            for (int l = 0; l < LGPU_QK; l++) sum += q[l];
            ((int32_t *)(r + (LGPU_QK + 4) * rn))[j] = -4 * sum;
        }
    }
}

/* ------------------------------------------------------------- Q4_0, Q8_0 */

/* 4 bytes at p (any alignment) as an int32, for broadcasting. */
INL int32_t load_i32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The f16 scales of 4 rows' blocks as [d0 d1 d2 d3 d0 d1 d2 d3]. */
INL __m256 scales4(lgpu_f16 d0, lgpu_f16 d1, lgpu_f16 d2, lgpu_f16 d3) {
    __m128i h = _mm_cvtsi32_si128(d0);
    h = _mm_insert_epi16(h, d1, 1);
    h = _mm_insert_epi16(h, d2, 2);
    h = _mm_insert_epi16(h, d3, 3);
    const __m128 d = _mm_cvtph_ps(h);
    return _mm256_set_m128(d, d);
}

/* y[m][n0 .. n0+rm) = (or +=) v[0 .. rm). */
INL void store4_v(const mm_call *c, int m, int n0, int rm, __m128 v) {
    float out[4], *yr = c->y + (size_t)m * c->y_stride + n0;
    if (rm == 4) { /* the common case as one store (GCC would make the loop a memcpy call) */
        _mm_storeu_ps(yr, c->accumulate ? _mm_add_ps(_mm_loadu_ps(yr), v) : v);
        return;
    }
    _mm_storeu_ps(out, v);
    for (int r = 0; r < rm; r++) yr[r] = c->accumulate ? yr[r] + out[r] : out[r];
}

/* Adds the 4 rows' results (lane r + lane r+4) to or into y. */
INL void store4(const mm_call *c, int m, int n0, int rm, __m256 acc) {
    store4_v(c, m, n0, rm, _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1)));
}

/* Q4_0 works on 4 W rows at a time (a tail tile repeats its last row and
 * drops the extra results). A block of the 4 rows is interleaved (q4_0x4)
 * so that one maddubs with x's 8 values k..k+7 broadcast to all 4 rows
 * serves 32 products, 4 of them sum in int16 (products of u4 x s8 are <=
 * 1905, 8 per lane <= 15240), and one madd leaves 2 int32 lanes per row:
 * lane 2r sums positions 8k+0..3, lane 2r+1 positions 8k+4..7. The
 * weights' -8 offset comes back per block from x's sums (s4). Both the
 * small-M kernel (interleaving in registers) and the tiled one (each W tile
 * interleaved once into a buffer, then met by every x row) run q4_0_block,
 * so a result does not depend on M. */
INL void q4_0_interleave(const lgpu_block_q4_0 *const w[4], q4_0x4 *o) {
    const __m256i m = _mm256_set1_epi8(0x0f);
    /* rows 0 | 2 and 1 | 3 in the two 128-bit halves, so the 64-bit unpacks
     * (which work per half) put rows 0, 1 low and 2, 3 high */
    const __m256i a = _mm256_loadu2_m128i((const __m128i *)w[2]->qs, (const __m128i *)w[0]->qs);
    const __m256i b = _mm256_loadu2_m128i((const __m128i *)w[3]->qs, (const __m128i *)w[1]->qs);
    const __m256i alo = _mm256_and_si256(a, m), ahi = _mm256_and_si256(_mm256_srli_epi16(a, 4), m);
    const __m256i blo = _mm256_and_si256(b, m), bhi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m);
    o->v[0] = _mm256_unpacklo_epi64(alo, blo); /* values 0..7 */
    o->v[1] = _mm256_unpackhi_epi64(alo, blo); /* 8..15 */
    o->v[2] = _mm256_unpacklo_epi64(ahi, bhi); /* 16..23 */
    o->v[3] = _mm256_unpackhi_epi64(ahi, bhi); /* 24..31 */
    __m128i h = _mm_cvtsi32_si128(w[0]->d);
    h = _mm_insert_epi16(h, w[1]->d, 1);
    h = _mm_insert_epi16(h, w[2]->d, 2);
    h = _mm_insert_epi16(h, w[3]->d, 3);
    o->d = _mm256_cvtph_ps(_mm_unpacklo_epi16(h, h)); /* d0 d0 d1 d1 d2 d2 d3 d3 */
}

/* acc += the 4 rows' block b products with x row (xq, xd, s4). */
INL __m256 q4_0_block(const q4_0x4 *t, const int8_t *xq, float xd, int32_t s4, __m256 acc) {
#define X8(k) _mm256_broadcastq_epi64(_mm_loadl_epi64((const __m128i *)(xq + 8 * (k)))) /* one vpbroadcastq */
    __m256i s = _mm256_maddubs_epi16(t->v[0], X8(0));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(t->v[1], X8(1)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(t->v[2], X8(2)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(t->v[3], X8(3)));
#undef X8
    const __m256i s32 = _mm256_add_epi32(_mm256_madd_epi16(s, _mm256_set1_epi16(1)), _mm256_set1_epi32(s4));
    return _mm256_fmadd_ps(_mm256_mul_ps(t->d, _mm256_set1_ps(xd)), _mm256_cvtepi32_ps(s32), acc);
}

/* y[m][n0 .. n0+rm) = (or +=) lane 2r + lane 2r+1 of acc. */
INL void q4_0_store(const mm_call *c, int m, int n0, int rm, __m256 acc) {
    const __m256 h = _mm256_hadd_ps(acc, acc); /* [r0 r1 r0 r1 | r2 r3 r2 r3] */
    const __m128 v = _mm_shuffle_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1), _MM_SHUFFLE(1, 0, 1, 0));
    store4_v(c, m, n0, rm, v);
}

INL void q4_0_rows(const mm_call *c, int n0, int rm, const lgpu_block_q4_0 *w[4]) {
    UNROLL
    for (int r = 0; r < 4; r++) w[r] = (const lgpu_block_q4_0 *)(c->w + (size_t)(n0 + (r < rm ? r : rm - 1)) * c->row_bytes);
}

/* Small M: each block interleaved in registers and met by rn x rows. */
INL void tile_q4_0(const mm_call *c, const actq *a, int n0, int rm, int m0, int rn) {
    const int nb = a->nb;
    const lgpu_block_q4_0 *w[4];
    __m256 acc[TILE_M4];
    q4_0_rows(c, n0, rm, w);
    UNROLL
    for (int j = 0; j < rn; j++) acc[j] = _mm256_setzero_ps();
    const uint8_t *r = rec_group(a, m0);
    for (int b = 0; b < nb; b++, r += rec_bytes(rn)) {
        const lgpu_block_q4_0 *wb[4] = {w[0] + b, w[1] + b, w[2] + b, w[3] + b};
        q4_0x4 t;
        q4_0_interleave(wb, &t);
        UNROLL
        for (int j = 0; j < rn; j++) acc[j] = q4_0_block(&t, rec_q(r, j), rec_d(r, rn, j), rec_s4(r, rn, j), acc[j]);
    }
    UNROLL
    for (int j = 0; j < rn; j++) q4_0_store(c, m0 + j, n0, rm, acc[j]);
}

/* Large M: the W tile interleaved once into t (nb blocks), rn x rows. */
INL void tile_q4_0_pre(const mm_call *c, const actq *a, const q4_0x4 *t, int n0, int rm, int m0, int rn) {
    const int nb = a->nb;
    __m256 acc[TILE_M4];
    UNROLL
    for (int j = 0; j < rn; j++) acc[j] = _mm256_setzero_ps();
    const uint8_t *r = rec_group(a, m0);
    for (int b = 0; b < nb; b++, r += rec_bytes(rn))
        UNROLL
        for (int j = 0; j < rn; j++) acc[j] = q4_0_block(t + b, rec_q(r, j), rec_d(r, rn, j), rec_s4(r, rn, j), acc[j]);
    UNROLL
    for (int j = 0; j < rn; j++) q4_0_store(c, m0 + j, n0, rm, acc[j]);
}

static TGT void q4_0_interleave_tile(const mm_call *c, int nb, int n0, int rm, q4_0x4 *t) {
    const lgpu_block_q4_0 *w[4];
    q4_0_rows(c, n0, rm, w);
    for (int b = 0; b < nb; b++) {
        const lgpu_block_q4_0 *wb[4] = {w[0] + b, w[1] + b, w[2] + b, w[3] + b};
        q4_0_interleave(wb, t + b);
    }
}

/* Q4_0 repacked in groups of 8 rows (lgpu_block_q4_0x8, see quant.h): one
 * vector lane per W row, so nothing is interleaved at run time and a row's
 * result needs no horizontal sum. Per block, v[k] holds values 4k..4k+3
 * (k < 4, low nibbles) or 16 + 4(k-4).. (k >= 4, high nibbles) of row r in
 * lane r as unsigned bytes; the x row's 4 matching values are broadcast to
 * every lane, maddubs pairs them, the 8 results (16 products of |u4 x s8|
 * <= 1905) sum in int16 (<= 30480 per lane), one madd gives the row's int32
 * block sum, and the weights' -8 offset comes back as 2 * s4 = -8 * sum(x).
 * Every x row gets the same sequence whatever M, so results do not depend on
 * M. */
typedef struct {
    __m256i v[8];
    __m256 d;
} q4x8;

INL void q4x8_unpack(const lgpu_block_q4_0x8 *b, q4x8 *o) {
    const __m256i m = _mm256_set1_epi8(0x0f);
    UNROLL
    for (int g = 0; g < 4; g++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * g));
        o->v[g] = _mm256_and_si256(q, m);
        o->v[4 + g] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m);
    }
    o->d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b->d));
}

INL __m256 q4x8_block(const q4x8 *t, const int8_t *xq, float xd, int32_t s4, __m256 acc) {
#define X4(k) _mm256_set1_epi32(load_i32(xq + 4 * (k)))
    __m256i s0 = _mm256_maddubs_epi16(t->v[0], X4(0));
    __m256i s1 = _mm256_maddubs_epi16(t->v[1], X4(1));
    s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(t->v[2], X4(2)));
    s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(t->v[3], X4(3)));
    s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(t->v[4], X4(4)));
    s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(t->v[5], X4(5)));
    s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(t->v[6], X4(6)));
    s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(t->v[7], X4(7)));
#undef X4
    const __m256i s32 = _mm256_add_epi32(_mm256_madd_epi16(_mm256_add_epi16(s0, s1), _mm256_set1_epi16(1)),
                                         _mm256_set1_epi32(2 * s4));
    return _mm256_fmadd_ps(_mm256_mul_ps(t->d, _mm256_set1_ps(xd)), _mm256_cvtepi32_ps(s32), acc);
}

/* y[m0 .. m0+rn)[n0 .. n0+8) for the 8-row group at n0 (a multiple of 8). */
INL void tile_q4x8(const mm_call *c, const actq *a, int n0, int m0, int rn) {
    const int nb = a->nb;
    const lgpu_block_q4_0x8 *w = (const lgpu_block_q4_0x8 *)c->w + (size_t)(n0 / 8) * nb;
    __m256 acc[TILE_M4];
    UNROLL
    for (int j = 0; j < rn; j++) acc[j] = _mm256_setzero_ps();
    const uint8_t *r = rec_group(a, m0);
    for (int b = 0; b < nb; b++, r += rec_bytes(rn)) {
        q4x8 t;
        q4x8_unpack(w + b, &t);
        UNROLL
        for (int j = 0; j < rn; j++) acc[j] = q4x8_block(&t, rec_q(r, j), rec_d(r, rn, j), rec_s4(r, rn, j), acc[j]);
    }
    UNROLL
    for (int j = 0; j < rn; j++) {
        float *yr = c->y + (size_t)(m0 + j) * c->y_stride + n0;
        _mm256_storeu_ps(yr, c->accumulate ? _mm256_add_ps(_mm256_loadu_ps(yr), acc[j]) : acc[j]);
    }
}

/* Q8_0 uses the same 4-row layout as Q4_0, folding the int32 block sums
 * (signed x signed products do not leave room for int16 sums). */
INL void tile_q8_0(const mm_call *c, const actq *a, int n0, int rm, int m0, int rn) {
    const int nb = a->nb;
    const lgpu_block_q8_0 *wr[4];
    __m256 acc[TILE_M4];
    const __m256i ones = _mm256_set1_epi16(1);
    UNROLL
    for (int r = 0; r < 4; r++) wr[r] = (const lgpu_block_q8_0 *)(c->w + (size_t)(n0 + (r < rm ? r : rm - 1)) * c->row_bytes);
    UNROLL
    for (int j = 0; j < rn; j++) acc[j] = _mm256_setzero_ps();
    const uint8_t *rc = rec_group(a, m0);
    for (int b = 0; b < nb; b++, rc += rec_bytes(rn)) {
        __m256i q[4], aq[4];
        UNROLL
        for (int r = 0; r < 4; r++) {
            q[r] = _mm256_loadu_si256((const __m256i *)wr[r][b].qs);
            aq[r] = _mm256_sign_epi8(q[r], q[r]); /* |q| as unsigned; the sign moves onto x */
        }
        const __m256 d8 = scales4(wr[0][b].d, wr[1][b].d, wr[2][b].d, wr[3][b].d);
        UNROLL
        for (int j = 0; j < rn; j++) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)rec_q(rc, j));
            __m256i s[4];
            UNROLL
            for (int r = 0; r < 4; r++)
                s[r] = _mm256_madd_epi16(_mm256_maddubs_epi16(aq[r], _mm256_sign_epi8(xv, q[r])), ones);
            const __m256i t = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
            acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(d8, _mm256_set1_ps(rec_d(rc, rn, j))), _mm256_cvtepi32_ps(t), acc[j]);
        }
    }
    UNROLL
    for (int j = 0; j < rn; j++) store4(c, m0 + j, n0, rm, acc[j]);
}

/* ------------------------------------------------------------- Q4_K, Q6_K */

/* pshufb controls broadcasting int16 element k of a 128-bit lane */
static const uint8_t bcast16[8][32] __attribute__((aligned(32))) = {
#define B(k) {2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, \
              2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, \
              2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1, 2 * k, 2 * k + 1}
    B(0), B(1), B(2), B(3), B(4), B(5), B(6), B(7)
#undef B
};

/* pshufb controls giving 8 copies of byte 2k then 8 of byte 2k+1 */
static const uint8_t pair8[8][16] = {
#define P(k) {2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, \
              2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1}
    P(0), P(1), P(2), P(3), P(4), P(5), P(6), P(7)
#undef P
};

/* The eight 6-bit scales (bytes 0..7) and mins (bytes 8..15) of a Q4_K block. */
INL __m128i q4_k_scales_mins(const uint8_t *s) {
    uint32_t u[4];
    memcpy(u, s, 12);
    const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
    u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4); /* mins 4..7 */
    const uint32_t mins03 = u[1] & k1;
    u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4); /* scales 4..7 */
    u[2] = mins03;
    u[0] &= k1; /* scales 0..3 */
    return _mm_loadu_si128((const __m128i *)u);
}

/* The K-quant tiles' x-row pointers (rows m0 .. m0+rn) and zeroed accumulators. */
INL void kq_setup(const mm_call *c, const actq *a, int m0, int rm, int rn, const int8_t **xq, const float **xd,
                  const int16_t **xs, __m256 acc[TILE_N][TILE_M]) {
    UNROLL
    for (int j = 0; j < rn; j++) {
        xq[j] = a->q + (size_t)(m0 + j) * c->K;
        xd[j] = a->d + (size_t)(m0 + j) * a->nb;
        xs[j] = a->bs + (size_t)(m0 + j) * (c->K / 16);
    }
    UNROLL
    for (int r = 0; r < rm; r++)
        UNROLL
        for (int j = 0; j < rn; j++) acc[r][j] = _mm256_setzero_ps();
}

INL void tile_q4_k(const mm_call *c, const actq *a, int n0, int rm, int m0, int rn) {
    const int nb = a->nb; /* super-blocks per row */
    const lgpu_block_q4_k *wr[TILE_N];
    const int8_t *xq[TILE_M];
    const float *xd[TILE_M];
    const int16_t *xs[TILE_M];
    __m256 acc[TILE_N][TILE_M];
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    UNROLL
    for (int r = 0; r < rm; r++) wr[r] = (const lgpu_block_q4_k *)(c->w + (size_t)(n0 + r) * c->row_bytes);
    kq_setup(c, a, m0, rm, rn, xq, xd, xs, acc);
    for (int b = 0; b < nb; b++) {
        __m128i xsub[TILE_M]; /* sums of each 32-value sub-block */
        UNROLL
        for (int j = 0; j < rn; j++) {
            const __m128i *bs = (const __m128i *)(xs[j] + 16 * b);
            xsub[j] = _mm_hadd_epi16(_mm_loadu_si128(bs), _mm_loadu_si128(bs + 1));
        }
        UNROLL
        for (int r = 0; r < rm; r++) {
            const lgpu_block_q4_k *blk = &wr[r][b];
            const __m128i sm = q4_k_scales_mins(blk->scales);
            const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
            const __m128i mn = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
            const float d = f16_scalar(blk->d), dmin = f16_scalar(blk->dmin);
            __m256i sumi[TILE_M];
            UNROLL
            for (int j = 0; j < rn; j++) sumi[j] = _mm256_setzero_si256();
            UNROLL
            for (int g = 0; g < 4; g++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(blk->qs + 32 * g));
                const __m256i ql = _mm256_and_si256(q, m4), qh = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                const __m256i sl = _mm256_shuffle_epi8(sc, _mm256_load_si256((const __m256i *)bcast16[2 * g]));
                const __m256i sh = _mm256_shuffle_epi8(sc, _mm256_load_si256((const __m256i *)bcast16[2 * g + 1]));
                UNROLL
                for (int j = 0; j < rn; j++) {
                    const __m256i *xv = (const __m256i *)(xq[j] + 256 * b + 64 * g);
                    __m256i pl = _mm256_madd_epi16(_mm256_maddubs_epi16(ql, _mm256_loadu_si256(xv)), sl);
                    __m256i ph = _mm256_madd_epi16(_mm256_maddubs_epi16(qh, _mm256_loadu_si256(xv + 1)), sh);
                    sumi[j] = _mm256_add_epi32(sumi[j], _mm256_add_epi32(pl, ph));
                }
            }
            UNROLL
            for (int j = 0; j < rn; j++) {
                const __m256i pm = _mm256_set_m128i(_mm_setzero_si128(), _mm_madd_epi16(mn, xsub[j]));
                acc[r][j] = _mm256_fmadd_ps(_mm256_set1_ps(d * xd[j][b]), _mm256_cvtepi32_ps(sumi[j]), acc[r][j]);
                acc[r][j] = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * xd[j][b]), _mm256_cvtepi32_ps(pm), acc[r][j]);
            }
        }
    }
    UNROLL
    for (int r = 0; r < rm; r++)
        UNROLL
        for (int j = 0; j < rn; j++) store_y(c, m0 + j, n0 + r, acc[r][j]);
}

INL void tile_q6_k(const mm_call *c, const actq *a, int n0, int rm, int m0, int rn) {
    const int nb = a->nb;
    const lgpu_block_q6_k *wr[TILE_N];
    const int8_t *xq[TILE_M];
    const float *xd[TILE_M];
    const int16_t *xs[TILE_M];
    __m256 acc[TILE_N][TILE_M];
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x30);
    UNROLL
    for (int r = 0; r < rm; r++) wr[r] = (const lgpu_block_q6_k *)(c->w + (size_t)(n0 + r) * c->row_bytes);
    kq_setup(c, a, m0, rm, rn, xq, xd, xs, acc);
    for (int b = 0; b < nb; b++) {
        UNROLL
        for (int r = 0; r < rm; r++) {
            const lgpu_block_q6_k *blk = &wr[r][b];
            const __m128i sc8 = _mm_loadu_si128((const __m128i *)blk->scales);
            const float d = f16_scalar(blk->d);
            __m256i sumi[TILE_M];
            /* the -32 offset: subtract 32 * sum_s scale_s * sum16_s(x) */
            const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
            UNROLL
            for (int j = 0; j < rn; j++) {
                __m256i o = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)(xs[j] + 16 * b)));
                sumi[j] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(o, 5));
            }
            UNROLL
            for (int h = 0; h < 2; h++) {
                const __m256i l0 = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * h));
                const __m256i l1 = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * h + 32));
                const __m256i hb = _mm256_loadu_si256((const __m256i *)(blk->qh + 32 * h));
                __m256i q[4];
                q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m2));
                q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m2));
                q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m2));
                q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                       _mm256_and_si256(_mm256_srli_epi16(hb, 2), m2));
                UNROLL
                for (int g = 0; g < 4; g++) {
                    const int k = 4 * h + g; /* 32-value group: sub-blocks 2k, 2k+1 */
                    const __m256i s = _mm256_cvtepi8_epi16(
                        _mm_shuffle_epi8(sc8, _mm_loadu_si128((const __m128i *)pair8[k])));
                    UNROLL
                    for (int j = 0; j < rn; j++) {
                        const __m256i xv = _mm256_loadu_si256((const __m256i *)(xq[j] + 256 * b + 32 * k));
                        sumi[j] = _mm256_add_epi32(sumi[j], _mm256_madd_epi16(_mm256_maddubs_epi16(q[g], xv), s));
                    }
                }
            }
            UNROLL
            for (int j = 0; j < rn; j++)
                acc[r][j] = _mm256_fmadd_ps(_mm256_set1_ps(d * xd[j][b]), _mm256_cvtepi32_ps(sumi[j]), acc[r][j]);
        }
    }
    UNROLL
    for (int r = 0; r < rm; r++)
        UNROLL
        for (int j = 0; j < rn; j++) store_y(c, m0 + j, n0 + r, acc[r][j]);
}

/* ------------------------------------------------------------- drivers */

/* One instance per (rm, rn) so loops over them unroll into registers. */
#define DEFINE_TILE_DISPATCH(name, call)                                                       \
    static TGT void name(const job *jb, const q4_0x4 *t, int n0, int rm, int m0, int rn) {     \
        const mm_call *c = jb->c;                                                              \
        (void)c, (void)t;                                                                      \
        switch (rm * 4 + rn) {                                                                 \
        case 4 * 4 + 2: call(4, 2); break;                                                     \
        case 4 * 4 + 1: call(4, 1); break;                                                     \
        case 3 * 4 + 2: call(3, 2); break;                                                     \
        case 3 * 4 + 1: call(3, 1); break;                                                     \
        case 2 * 4 + 2: call(2, 2); break;                                                     \
        case 2 * 4 + 1: call(2, 1); break;                                                     \
        case 1 * 4 + 2: call(1, 2); break;                                                     \
        default: call(1, 1); break;                                                            \
        }                                                                                      \
    }

/* Q4_0/Q8_0 always compute 4 W rows; only rn needs to be a constant. */
#define DEFINE_TILE_DISPATCH4(name, call)                                                      \
    static TGT void name(const job *jb, const q4_0x4 *t, int n0, int rm, int m0, int rn) {     \
        const mm_call *c = jb->c;                                                              \
        (void)t;                                                                               \
        switch (rn) {                                                                          \
        case 8: call(rm, 8); break;                                                            \
        case 7: call(rm, 7); break;                                                            \
        case 6: call(rm, 6); break;                                                            \
        case 5: call(rm, 5); break;                                                            \
        case 4: call(rm, 4); break;                                                            \
        case 3: call(rm, 3); break;                                                            \
        case 2: call(rm, 2); break;                                                            \
        default: call(rm, 1); break;                                                           \
        }                                                                                      \
    }

#define CALL_F32(RM, RN) tile_float(c, LGPU_TYPE_F32, n0, RM, m0, RN)
#define CALL_F16(RM, RN) tile_float(c, LGPU_TYPE_F16, n0, RM, m0, RN)
#define CALL_BF16(RM, RN) tile_float(c, LGPU_TYPE_BF16, n0, RM, m0, RN)
#define CALL_Q4_0(RM, RN) tile_q4_0(c, &jb->a, n0, RM, m0, RN)
#define CALL_Q8_0(RM, RN) tile_q8_0(c, &jb->a, n0, RM, m0, RN)
#define CALL_Q4_K(RM, RN) tile_q4_k(c, &jb->a, n0, RM, m0, RN)
#define CALL_Q6_K(RM, RN) tile_q6_k(c, &jb->a, n0, RM, m0, RN)
DEFINE_TILE_DISPATCH(tiles_f32, CALL_F32)
DEFINE_TILE_DISPATCH(tiles_f16, CALL_F16)
DEFINE_TILE_DISPATCH(tiles_bf16, CALL_BF16)
#define CALL_Q4_0_PRE(RM, RN) tile_q4_0_pre(c, &jb->a, t, n0, RM, m0, RN)
#define CALL_Q4X8(RM, RN) tile_q4x8(c, &jb->a, n0, m0, RN)
DEFINE_TILE_DISPATCH4(tiles_q4_0, CALL_Q4_0)
DEFINE_TILE_DISPATCH4(tiles_q4_0_pre, CALL_Q4_0_PRE)
DEFINE_TILE_DISPATCH4(tiles_q4x8, CALL_Q4X8)
DEFINE_TILE_DISPATCH4(tiles_q8_0, CALL_Q8_0)
DEFINE_TILE_DISPATCH(tiles_q4_k, CALL_Q4_K)
DEFINE_TILE_DISPATCH(tiles_q6_k, CALL_Q6_K)

/* t: the W tile interleaved by q4_0_interleave_tile (tiles_q4_0_pre only). */
typedef void (*tile_fn)(const job *jb, const q4_0x4 *t, int n0, int rm, int m0, int rn);

static tile_fn pick(const mm_call *c) {
    if (c->x8) return tiles_q4x8;
    switch (c->wtype) {
    case LGPU_TYPE_F32: return tiles_f32;
    case LGPU_TYPE_F16: return tiles_f16;
    case LGPU_TYPE_BF16: return tiles_bf16;
    case LGPU_TYPE_Q4_0: return tiles_q4_0;
    case LGPU_TYPE_Q8_0: return tiles_q8_0;
    case LGPU_TYPE_Q4_K: return tiles_q4_k;
    case LGPU_TYPE_Q6_K: return tiles_q6_k;
    default: return NULL;
    }
}

/* Q4_0 with M >= Q4_0_PRE_M interleaves each W tile once per x block into a
 * per-call buffer instead of once per TILE_M4 x rows. */
#define Q4_0_PRE_M 4

/* Tiles [t0, t1) of TILE_N rows; x visited in blocks of mb rows so a block
 * stays in cache while every W tile of the range passes over it. */
static void range(void *vjb, int64_t t0, int64_t t1, int thread) {
    const job *jb = vjb;
    const mm_call *c = jb->c;
    tile_fn fn = pick(c);
    const int tn = c->x8 ? 8 : TILE_N; /* W rows per tile */
    q4_0x4 *tile = NULL;
    (void)thread;
    /* without the buffer the plain Q4_0 tiles run: they give the same bits */
    if (c->wtype == LGPU_TYPE_Q4_0 && !c->x8 && c->M >= Q4_0_PRE_M &&
        (tile = aligned_alloc(32, (size_t)jb->a.nb * sizeof *tile)))
        fn = tiles_q4_0_pre;
    for (int mb0 = 0; mb0 < c->M; mb0 += jb->mb) {
        const int mb1 = mb0 + jb->mb < c->M ? mb0 + jb->mb : c->M;
        for (int64_t t = t0; t < t1; t++) {
            const int n0 = (int)t * tn, rm = c->N - n0 < tn ? c->N - n0 : tn;
            if (tile) q4_0_interleave_tile(c, jb->a.nb, n0, rm, tile);
            for (int m0 = mb0; m0 < mb1; m0 += jb->tile_m)
                fn(jb, tile, n0, rm, m0, mb1 - m0 < jb->tile_m ? mb1 - m0 : jb->tile_m);
        }
    }
    free(tile);
}

int lgpu_mm_avx2(const mm_call *c) {
    if (!pick(c)) return 0;
    job jb = {.c = c};
    void *buf = NULL;
    size_t xbytes_per_row = (size_t)c->K * 4;
    const int qtype = c->wtype == LGPU_TYPE_Q4_0 || c->wtype == LGPU_TYPE_Q8_0;
    const int ktype = c->wtype == LGPU_TYPE_Q4_K || c->wtype == LGPU_TYPE_Q6_K;
    if (qtype || ktype) {
        actq *a = &jb.a;
        a->qb = qtype ? LGPU_QK : LGPU_QK_K;
        a->nb = c->K / a->qb;
        const size_t M = (size_t)c->M, K = (size_t)c->K;
        /* Q4_0/Q8_0: 40 bytes per 32 values (q, d, s4); K-quants: q, d, bs */
        const size_t bytes = qtype ? M * a->nb * rec_bytes(1) : M * K + M * a->nb * 4 + M * K / 16 * 2;
        buf = aligned_alloc(32, (bytes + 31) & ~(size_t)31);
        if (!buf) return 0; /* the plain kernels need no scratch for x */
        if (qtype) {
            a->rec = buf;
            quantize_x_groups(c, a);
        } else {
            a->d = buf;
            a->bs = (int16_t *)(a->d + M * a->nb);
            a->q = (int8_t *)(a->bs + M * K / 16);
            quantize_x_k(c, a);
        }
        xbytes_per_row = K + K / 8;
    }
    /* keep an x block within ~256 KiB of L2 */
    int mb = (int)((256 << 10) / xbytes_per_row);
    jb.tile_m = c->wtype == LGPU_TYPE_Q4_0 || c->wtype == LGPU_TYPE_Q8_0 ? TILE_M4 : TILE_M;
    jb.mb = mb < jb.tile_m ? jb.tile_m : mb - mb % jb.tile_m;
    const int tn = c->x8 ? 8 : TILE_N;
    lgpu_parallel_for(c->nthreads, (c->N + tn - 1) / tn, range, &jb);
    free(buf);
    return 1;
}

#else /* not x86 */

int lgpu_mm_avx2(const mm_call *c) {
    (void)c;
    return 0;
}

#endif
