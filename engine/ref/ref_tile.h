/* The register-tiled inner kernel of the gemm and matmul_backward twins:
 *   acc[r, c] += A[r, t] * b[t, c]   for t = 0, 1, ..., nt - 1 in order
 * with A[r, t] at a[r * a_rs + t * a_ts] (either layout, read in place)
 * over a rows x cols block (rows a multiple of LGPU_TILE_ROWS, cols of
 * LGPU_TILE_COLS; callers pad with zeros). Every element gets one rounded
 * product and one rounded add per t (no fused multiply-add), whatever the
 * ISA or the blocking, so the twins' results are those of the plain loop
 * `s += a * b` over t. The AVX2 build (chosen by the matmul twin's ISA
 * switch, LGPU_CPU_ISA=plain forcing the baseline) gives the same bits. */
#ifndef LGPU_REF_REF_TILE_H
#define LGPU_REF_REF_TILE_H

#include <stddef.h>

#define LGPU_TILE_ROWS 4
#define LGPU_TILE_COLS 16

void lgpu_ref_tile_acc(float *acc, size_t acc_ld, const float *a, size_t a_rs, size_t a_ts, const float *b,
                       size_t b_ld, int rows, int cols, int nt);

#endif
