/* Internals shared by the matmul twin's kernel families (plain C and AVX2). */
#ifndef LGPU_REF_REF_MATMUL_H
#define LGPU_REF_REF_MATMUL_H

#include <stddef.h>
#include <stdint.h>

/* Kernel family selection (tests and benchmarks force one; AUTO picks AVX2
 * when the CPU has AVX2+FMA+F16C unless $LGPU_CPU_ISA=plain). */
enum { LGPU_MM_ISA_AUTO = 0, LGPU_MM_ISA_PLAIN = 1, LGPU_MM_ISA_AVX2 = 2 };
/* Returns the previous setting. Forcing AVX2 on a CPU without it falls back to plain. */
int lgpu_ref_matmul_set_isa(int isa);
/* The family the next call will use (PLAIN or AVX2). */
int lgpu_ref_matmul_isa(void);

/* One matmul call, resolved: W rows start at w (row row_offset already
 * applied), y points at column row_offset of row 0. */
typedef struct mm_call {
    int M, N, K;
    int wtype;
    const uint8_t *w;
    size_t row_bytes;
    const float *x;
    size_t x_stride;
    float *y;
    size_t y_stride;
    int accumulate;
    int nthreads;
    int x8; /* W is Q4_0 in lgpu_block_q4_0x8 groups (row_offset 0, N % 8 == 0) */
    const void *side; /* NF4: the tensor's side table; w starts at its block block0 */
    int64_t block0;
} mm_call;

/* AVX2+FMA+F16C kernels; only call when the CPU has them. Returns 0 when the
 * type has no AVX2 kernel (the caller then uses the plain one). */
int lgpu_mm_avx2(const mm_call *c);

#endif
