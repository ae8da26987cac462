/* C twin of shaders/attention.comp, and the host path's attention, so it is
 * written for speed as well.
 *
 * Work items are (token, KV head, block of up to HEADS query heads of that
 * KV group), spread over the thread pool; with small groups (MHA) an item
 * takes several KV heads with all their query heads, up to HEADS in all. An
 * item walks its keys in chunks of CHUNK: each K row of the chunk is scored
 * against all the heads of its group and each V row is loaded once for all of
 * them, so grouped-query attention reads the cache once per group, not once
 * per head; the item's KV heads take turns on a chunk, so the chunk's rows
 * are still cached when the next head's slice of them is read. Per head it is an online
 * softmax: the running max m moves once per chunk (accumulators rescaled by
 * exp(m_old - m_new)), l is summed in double. Scores are computed 8 keys at a
 * time (one transposing horizontal sum), and the weighted V sum keeps 8
 * output dims in a register across the chunk's keys. Vectors are 8-wide GCC/
 * Clang vector extensions; on x86-64 an AVX2 build of the same code is picked
 * at run time (LGPU_CPU_ISA=plain forces the baseline).
 *
 * Training (lse != NULL) also writes each head's m + log(l) once at the end;
 * nothing else changes.
 *
 * F16 pools are widened chunk by chunk into float buffers, so the arithmetic
 * is unchanged (on CPUs that costs more than the halved reads save, so the
 * host path's automatic cache type is F32; see lgpu_kv_type).
 *
 * Results do not depend on the thread count or the head blocking: every head
 * runs the same operation sequence (fixed chunk boundaries, fixed vector
 * lanes and horizontal sums), and no FMA contraction is allowed, so the AVX2
 * and baseline builds agree bit for bit. */
#include <math.h>
#include <string.h>

#include "core/parallel.h"
#include "params/attention.h"
#include "quant/quant.h"
#include "ref/ref_matmul.h"
#include "ref/ref_ops.h"

#define CHUNK 64 /* keys per chunk */
#define HEADS 8  /* most query heads per item */

typedef float v8f __attribute__((vector_size(32)));

/* dst + k*D = row k (D F16 values) as floats, for the n rows that are not
 * NULL (exact, so every build agrees). */
typedef void (*f16_rows_fn)(float *dst, const lgpu_f16 *const *rows, uint32_t n, uint32_t D);

typedef struct {
    const lgpu_attention_params *p;
    const float *q;
    const int32_t *tok_seq, *tok_pos, *block_table;
    const void *k_pool, *v_pool;
    float *out;
    float *lse;                  /* NULL, or the (T, n_heads) softmax statistics */
    uint32_t hb;                 /* heads per item of one KV head */
    uint32_t blocks_per_group;   /* items per (token, KV head) */
    uint32_t gb;                 /* KV heads per item (> 1 only with all their heads: hb == rep) */
    bool avx2;
    f16_rows_fn f16_rows;        /* F16 pools: a chunk's rows are widened into the item's buffers */
} att_ctx;

#define INL static inline __attribute__((always_inline))

/* hadd of two 8-float vectors, as AVX's vhaddps does it (per 128-bit half);
 * a macro, since a function returning a 32-byte vector has an ISA-dependent ABI. */
#define HADD8(a, b) \
    (__builtin_shufflevector(a, b, 0, 2, 8, 10, 4, 6, 12, 14) + __builtin_shufflevector(a, b, 1, 3, 9, 11, 5, 7, 13, 15))

/* out[k] = the horizontal sum of s[k], each in the fixed order
 * ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)). */
INL void hsum8x8(const v8f s[8], float out[8]) {
    v8f a = HADD8(HADD8(s[0], s[1]), HADD8(s[2], s[3])); /* keys 0-3: low half l0..3, high half l4..7 */
    v8f b = HADD8(HADD8(s[4], s[5]), HADD8(s[6], s[7]));
    v8f r = __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11) +
            __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15);
    memcpy(out, &r, sizeof r);
}

/* out[k] = dot(q, rows[k], n) for 8 rows (8-wide partial sums kept apart). */
INL void dot8(const float *q, const float *const rows[8], uint32_t n, float out[8]) {
    v8f s[8] = {{0}};
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f x;
        memcpy(&x, q + i, sizeof x);
        for (int k = 0; k < 8; k++) {
            v8f y;
            memcpy(&y, rows[k] + i, sizeof y);
            s[k] += x * y;
        }
    }
    hsum8x8(s, out);
    for (; i < n; i++)
        for (int k = 0; k < 8; k++) out[k] += q[i] * rows[k][i];
}

/* acc[0 .. 8*nv) = acc * alpha + sum_k w[k] * vrow[k][off ..], nv vectors
 * kept in registers (nv is a constant after inlining). */
INL void accumulate_v(float *acc, int nv, float alpha, const float *w, const float *const *vrow, uint32_t n,
                      uint32_t off) {
    v8f a[4];
    _Pragma("GCC unroll 4") for (int i = 0; i < nv; i++) {
        memcpy(&a[i], acc + 8 * i, sizeof a[i]);
        if (alpha != 1.0f) a[i] *= alpha;
    }
    for (uint32_t k = 0; k < n; k++) {
        if (!vrow[k]) continue;
        _Pragma("GCC unroll 4") for (int i = 0; i < nv; i++) {
            v8f x;
            memcpy(&x, vrow[k] + off + 8 * i, sizeof x);
            a[i] += w[k] * x;
        }
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < nv; i++) memcpy(acc + 8 * i, &a[i], sizeof a[i]);
}

/* One item: token t, KV heads g0 .. g0+ng-1, and of each its query heads
 * g*rep + hoff .. + nh - 1. The per-head state s = gi*nh + r (KV head g0+gi,
 * its r-th head in the item). A chunk's keys are visited for every KV head
 * of the item before the next chunk, so their rows are read while cached. */
INL void attend(const att_ctx *c, int64_t item) {
    const lgpu_attention_params *p = c->p;
    uint32_t D = p->head_dim, kv_dim = p->n_kv_heads * D, rep = p->n_heads / p->n_kv_heads;
    const uint32_t n_gblk = (p->n_kv_heads + c->gb - 1) / c->gb; /* KV head blocks per token */
    uint32_t hblk = (uint32_t)(item % c->blocks_per_group);
    uint32_t g0 = (uint32_t)(item / c->blocks_per_group % n_gblk) * c->gb;
    uint32_t t = (uint32_t)(item / c->blocks_per_group / n_gblk);
    uint32_t ng = p->n_kv_heads - g0 < c->gb ? p->n_kv_heads - g0 : c->gb;
    uint32_t hoff = hblk * c->hb, nh = rep - hoff < c->hb ? rep - hoff : c->hb, ns = ng * nh;

    int32_t seq = c->tok_seq[t], pos = c->tok_pos[t];
    uint32_t n_keys = (seq < 0 || pos < 0) ? 0 : (uint32_t)pos + 1;
    const int32_t *table = c->block_table + (size_t)(seq < 0 ? 0 : seq) * p->max_blocks;

    const bool f16 = p->kv_type == LGPU_TYPE_F16;
    _Alignas(32) float acc[HEADS][LGPU_ATTN_MAX_HEAD_DIM];
    _Alignas(32) float kbuf[f16 ? CHUNK * D : 1], vbuf[f16 ? CHUNK * D : 1]; /* F16 pools: the chunk as floats */
    _Alignas(32) float sc[HEADS][CHUNK];
    float m[HEADS];
    double l[HEADS];
    const float *q[HEADS], *krow[CHUNK], *vrow[CHUNK];
    const lgpu_f16 *khalf[CHUNK], *vhalf[CHUNK];
    size_t base[CHUNK]; /* pool offset of each key's slot, SIZE_MAX when masked */
    for (uint32_t s = 0; s < ns; s++) {
        q[s] = c->q + (size_t)t * p->q_stride + (size_t)((g0 + s / nh) * rep + hoff + s % nh) * D;
        memset(acc[s], 0, D * sizeof(float));
        m[s] = -INFINITY;
        l[s] = 0;
    }
    static const float zero_row[LGPU_ATTN_MAX_HEAD_DIM];
    for (uint32_t j0 = 0; j0 < n_keys; j0 += CHUNK) {
        uint32_t n = n_keys - j0 < CHUNK ? n_keys - j0 : CHUNK;
        /* key j0 + k is slot `slot` of table block `blk` (stepped, not divided, per key) */
        uint32_t blk = j0 / p->block_size, slot = j0 % p->block_size;
        for (uint32_t k = 0; k < n; k++) {
            int32_t b = blk < p->max_blocks ? table[blk] : -1; /* < 0: masked, like an invalid slot in the shader */
            base[k] = b < 0 ? SIZE_MAX : ((size_t)b * p->block_size + slot) * kv_dim;
            if (++slot == p->block_size) slot = 0, blk++;
        }
        for (uint32_t gi = 0; gi < ng; gi++) {
        const size_t goff = (size_t)(g0 + gi) * D;
        for (uint32_t k = 0; k < n; k++) {
            if (base[k] == SIZE_MAX) {
                krow[k] = vrow[k] = NULL;
                khalf[k] = vhalf[k] = NULL;
            } else if (f16) { /* half the bytes from memory, widened below */
                khalf[k] = (const lgpu_f16 *)c->k_pool + base[k] + goff;
                vhalf[k] = (const lgpu_f16 *)c->v_pool + base[k] + goff;
                krow[k] = kbuf + k * D;
                vrow[k] = vbuf + k * D;
            } else {
                krow[k] = (const float *)c->k_pool + base[k] + goff;
                vrow[k] = (const float *)c->v_pool + base[k] + goff;
            }
        }
        if (f16) {
            c->f16_rows(kbuf, khalf, n, D);
            c->f16_rows(vbuf, vhalf, n, D);
        }
        for (uint32_t r = gi * nh; r < (gi + 1) * nh; r++) {
            /* scores 8 keys at a time (masked or missing keys read a zero row) */
            for (uint32_t k0 = 0; k0 < n; k0 += 8) {
                const float *rows[8];
                for (uint32_t k = 0; k < 8; k++) rows[k] = k0 + k < n && krow[k0 + k] ? krow[k0 + k] : zero_row;
                dot8(q[r], rows, D, &sc[r][k0]);
            }
            float cmax = -INFINITY;
            for (uint32_t k = 0; k < n; k++) {
                sc[r][k] = krow[k] ? sc[r][k] * p->scale : -INFINITY;
                if (sc[r][k] > cmax) cmax = sc[r][k];
            }
            /* weights; l summed in key order */
            float alpha = 1.0f;
            if (cmax > m[r]) {
                alpha = m[r] == -INFINITY ? 0.0f : expf(m[r] - cmax);
                l[r] *= alpha;
                m[r] = cmax;
            }
            for (uint32_t k = 0; k < n; k++) {
                sc[r][k] = sc[r][k] == -INFINITY ? 0.0f : expf(sc[r][k] - m[r]);
                l[r] += sc[r][k];
            }
            /* acc = acc * alpha + sum_k w_k V_k, keys in order, up to 32 dims
             * (4 independent register chains) at a time; masked keys skipped */
            uint32_t d = 0;
            for (; d + 32 <= D; d += 32) accumulate_v(acc[r] + d, 4, alpha, sc[r], vrow, n, d);
            if (d + 8 <= D) {
                uint32_t nv = (D - d) / 8; /* 1..3 */
                if (nv == 3) accumulate_v(acc[r] + d, 3, alpha, sc[r], vrow, n, d);
                else if (nv == 2) accumulate_v(acc[r] + d, 2, alpha, sc[r], vrow, n, d);
                else accumulate_v(acc[r] + d, 1, alpha, sc[r], vrow, n, d);
                d += 8 * nv;
            }
            for (; d < D; d++) {
                float a = acc[r][d];
                if (alpha != 1.0f) a *= alpha;
                for (uint32_t k = 0; k < n; k++)
                    if (vrow[k]) a += sc[r][k] * vrow[k][d];
                acc[r][d] = a;
            }
        }
        }
    }
    for (uint32_t s = 0; s < ns; s++) {
        float *out = c->out + ((size_t)t * p->n_heads + (g0 + s / nh) * rep + hoff + s % nh) * D;
        for (uint32_t d = 0; d < D; d++) out[d] = l[s] > 0 ? (float)(acc[s][d] / l[s]) : 0.0f;
    }
    if (c->lse) /* training: log sum_j exp(score_j) = m + log(l) per head */
        for (uint32_t s = 0; s < ns; s++)
            c->lse[(size_t)t * p->n_heads + (g0 + s / nh) * rep + hoff + s % nh] =
                l[s] > 0 ? (float)((double)m[s] + log(l[s])) : -INFINITY;
}

static void f16_rows_plain(float *dst, const lgpu_f16 *const *rows, uint32_t n, uint32_t D) {
    for (uint32_t k = 0; k < n; k++)
        if (rows[k])
            for (uint32_t i = 0; i < D; i++) dst[k * D + i] = lgpu_f16_to_f32(rows[k][i]);
}

static void range_generic(const att_ctx *c, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) attend(c, i);
}

/* The matmul twin's ISA switch (CPU detection, LGPU_CPU_ISA=plain) decides
 * for both. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
__attribute__((target("avx2"))) static void range_avx2(const att_ctx *c, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) attend(c, i);
}
static bool have_avx2(void) { return lgpu_ref_matmul_isa() == LGPU_MM_ISA_AVX2; } /* AVX2, FMA and F16C */
__attribute__((target("avx2,f16c"))) static void f16_rows_f16c(float *dst, const lgpu_f16 *const *rows, uint32_t n,
                                                               uint32_t D) {
    for (uint32_t k = 0; k < n; k++) {
        const lgpu_f16 *src = rows[k];
        float *d = dst + k * D;
        if (!src) continue;
        uint32_t i = 0;
        for (; i + 8 <= D; i += 8) _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
        for (; i < D; i++) d[i] = lgpu_f16_to_f32(src[i]);
    }
}
#else
static void range_avx2(const att_ctx *c, int64_t begin, int64_t end) { range_generic(c, begin, end); }
static bool have_avx2(void) { return false; }
#define f16_rows_f16c f16_rows_plain
#endif

static void att_range(void *vctx, int64_t begin, int64_t end, int thread) {
    const att_ctx *c = vctx;
    if (c->avx2) range_avx2(c, begin, end);
    else range_generic(c, begin, end);
}

void lgpu_ref_attention(const lgpu_attention_params *p, const float *q, const int32_t *tok_seq,
                        const int32_t *tok_pos, const int32_t *block_table, const void *k_pool,
                        const void *v_pool, float *out, float *lse, int nthreads) {
    uint32_t rep = p->n_heads / p->n_kv_heads, hb = rep < HEADS ? rep : HEADS;
    /* small GQA groups (MHA: 1 head each) take several KV heads per item */
    uint32_t gb = rep < HEADS ? HEADS / rep : 1;
    if (gb > p->n_kv_heads) gb = p->n_kv_heads;
    /* smaller blocks when there would be too few items for the threads
     * (decode); the blocking does not change any result */
    const uint64_t want = 2 * (uint64_t)(nthreads > 1 ? nthreads : 1);
    while (gb > 1 && (uint64_t)p->T * ((p->n_kv_heads + gb - 1) / gb) < want) gb = (gb + 1) / 2;
    uint64_t groups = (uint64_t)p->T * ((p->n_kv_heads + gb - 1) / gb);
    while (gb == 1 && hb > 1 && groups * ((rep + hb - 1) / hb) < want) hb = (hb + 1) / 2;
    const bool avx2 = have_avx2();
    att_ctx c = {p,  q,  tok_seq, tok_pos, block_table, k_pool, v_pool, out, lse, hb, (rep + hb - 1) / hb,
                 gb, avx2, avx2 ? f16_rows_f16c : f16_rows_plain};
    lgpu_parallel_for(nthreads, (int64_t)groups * c.blocks_per_group, att_range, &c);
}
