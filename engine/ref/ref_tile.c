/* lgpu_ref_tile_acc (ref_tile.h): 4 rows x 16 columns of sums (AVX2; 4 x 8
 * in the baseline build) stay in registers while t runs; the columns come
 * from b rows, the 4 row factors of each t are broadcast from a. */
#include "ref/ref_tile.h"

#include <string.h>

#include "ref/ref_matmul.h"

typedef float v8f __attribute__((vector_size(32)));

#define INL static inline __attribute__((always_inline))

/* unaligned 8-float loads and stores (macros: a function returning a v8f
 * changes the baseline ABI, which GCC warns about) */
#define LD8(v, p) memcpy(&(v), (p), sizeof(v8f))
#define ST8(p, v) memcpy((p), &(v), sizeof(v8f))

INL void tile_body(float *acc, size_t acc_ld, const float *a, size_t a_rs, size_t a_ts, const float *b, size_t b_ld, int rows,
                   int cols, int nt) {
    for (int r0 = 0; r0 < rows; r0 += LGPU_TILE_ROWS)
        for (int c0 = 0; c0 < cols; c0 += LGPU_TILE_COLS) {
            float *a0 = acc + (size_t)r0 * acc_ld + c0, *a1 = a0 + acc_ld, *a2 = a1 + acc_ld, *a3 = a2 + acc_ld;
            v8f s00, s01, s10, s11, s20, s21, s30, s31;
            LD8(s00, a0), LD8(s01, a0 + 8), LD8(s10, a1), LD8(s11, a1 + 8);
            LD8(s20, a2), LD8(s21, a2 + 8), LD8(s30, a3), LD8(s31, a3 + 8);
            const float *bt = b + c0, *f = a + (size_t)r0 * a_rs;
            for (int t = 0; t < nt; t++, bt += b_ld, f += a_ts) {
                v8f b0, b1;
                LD8(b0, bt), LD8(b1, bt + 8);
                const float f0 = f[0], f1 = f[a_rs], f2 = f[2 * a_rs], f3 = f[3 * a_rs];
                s00 += f0 * b0, s01 += f0 * b1;
                s10 += f1 * b0, s11 += f1 * b1;
                s20 += f2 * b0, s21 += f2 * b1;
                s30 += f3 * b0, s31 += f3 * b1;
            }
            ST8(a0, s00), ST8(a0 + 8, s01), ST8(a1, s10), ST8(a1 + 8, s11);
            ST8(a2, s20), ST8(a2 + 8, s21), ST8(a3, s30), ST8(a3 + 8, s31);
        }
}

/* The baseline build (SSE: 16 vector registers): 4 rows x 8 columns of
 * 4-float vectors, so the 8 sums, 2 b vectors and a broadcast stay in
 * registers. The same operations per element as tile_body. */
typedef float v4f __attribute__((vector_size(16)));
#define LD4(v, p) memcpy(&(v), (p), sizeof(v4f))
#define ST4(p, v) memcpy((p), &(v), sizeof(v4f))

INL void tile_body4(float *acc, size_t acc_ld, const float *a, size_t a_rs, size_t a_ts, const float *b, size_t b_ld, int rows,
                    int cols, int nt) {
    for (int r0 = 0; r0 < rows; r0 += LGPU_TILE_ROWS)
        for (int c0 = 0; c0 < cols; c0 += 8) {
            float *a0 = acc + (size_t)r0 * acc_ld + c0, *a1 = a0 + acc_ld, *a2 = a1 + acc_ld, *a3 = a2 + acc_ld;
            v4f s00, s01, s10, s11, s20, s21, s30, s31;
            LD4(s00, a0), LD4(s01, a0 + 4), LD4(s10, a1), LD4(s11, a1 + 4);
            LD4(s20, a2), LD4(s21, a2 + 4), LD4(s30, a3), LD4(s31, a3 + 4);
            const float *bt = b + c0, *f = a + (size_t)r0 * a_rs;
            for (int t = 0; t < nt; t++, bt += b_ld, f += a_ts) {
                v4f b0, b1;
                LD4(b0, bt), LD4(b1, bt + 4);
                const float f0 = f[0], f1 = f[a_rs], f2 = f[2 * a_rs], f3 = f[3 * a_rs];
                s00 += f0 * b0, s01 += f0 * b1;
                s10 += f1 * b0, s11 += f1 * b1;
                s20 += f2 * b0, s21 += f2 * b1;
                s30 += f3 * b0, s31 += f3 * b1;
            }
            ST4(a0, s00), ST4(a0 + 4, s01), ST4(a1, s10), ST4(a1 + 4, s11);
            ST4(a2, s20), ST4(a2 + 4, s21), ST4(a3, s30), ST4(a3 + 4, s31);
        }
}

static void tile_generic(float *acc, size_t acc_ld, const float *a, size_t a_rs, size_t a_ts, const float *b, size_t b_ld,
                         int rows, int cols, int nt) {
    tile_body4(acc, acc_ld, a, a_rs, a_ts, b, b_ld, rows, cols, nt);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* AVX2 without FMA: the compiler may not fuse (and -ffp-contract=off under
 * -std=c11 keeps it from trying) */
__attribute__((target("avx2"))) static void tile_avx2(float *acc, size_t acc_ld, const float *a, size_t a_rs,
                                                      size_t a_ts, const float *b, size_t b_ld, int rows, int cols,
                                                      int nt) {
    tile_body(acc, acc_ld, a, a_rs, a_ts, b, b_ld, rows, cols, nt);
}
#else
#define tile_avx2 tile_generic
#endif

void lgpu_ref_tile_acc(float *acc, size_t acc_ld, const float *a, size_t a_rs, size_t a_ts, const float *b, size_t b_ld,
                       int rows, int cols, int nt) {
    if (lgpu_ref_matmul_isa() == LGPU_MM_ISA_AVX2) tile_avx2(acc, acc_ld, a, a_rs, a_ts, b, b_ld, rows, cols, nt);
    else tile_generic(acc, acc_ld, a, a_rs, a_ts, b, b_ld, rows, cols, nt);
}
