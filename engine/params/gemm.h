/* Parameters of the general F32 matrix product: the push-constant block of shaders/gemm.comp, shared by
 * the op layer (engine/ops) and the C twin (engine/ref). LoRA's products in training (forward x A^T and
 * (x A^T) B^T, backward dA, dB and dx) are all one of its transposes. */
#ifndef LGPU_PARAMS_GEMM_H
#define LGPU_PARAMS_GEMM_H

#include "params/common.h"

/* c[m, n] = alpha * sum_k opA[m, k] * opB[k, n]  (+ c[m, n] when accumulate)
 *   opA[m, k] = trans_a ? a[k*lda + m] : a[m*lda + k]
 *   opB[k, n] = trans_b ? b[n*ldb + k] : b[k*ldb + n]
 * a, b, c: F32; c row stride ldc (elements). Each c element is one sum over k
 * in increasing order (float accumulation, no split over k), so results do
 * not depend on the device's tiling and reruns are bit-identical. K = 0
 * gives alpha * 0 (+ c), reading neither a nor b.
 * Strides 0 mean contiguous: lda = trans_a ? M : K, ldb = trans_b ? K : N,
 * ldc = N; smaller nonzero strides are LGPU_EINVAL. The C twin computes
 * s = ((0 + p_0) + p_1) + ..., then alpha * s, then + c: the shader's order
 * exactly; a device that fuses multiply-adds differs from it by at most
 * (K + 2) 2^-24 (|alpha| sum_k |opA opB| + |c|) per element (lavapipe
 * matches it bit for bit). */
typedef struct lgpu_gemm_params {
    uint32_t M, N, K;
    uint32_t lda, ldb, ldc;
    uint32_t trans_a, trans_b;
    uint32_t accumulate;
    float alpha;
} lgpu_gemm_params;
LGPU_PARAMS_CHECK(lgpu_gemm_params);

#endif
