/* lgpu — kernel benchmarks behind `lgpu bench-ops`: the matmul op and its
 * backward timed on a device for a weight matrix of any type, and the F32
 * gemm of LoRA training. The engine builds the operands and times the op;
 * the program chooses the shapes and prints the figures.
 *
 *   lgpu_bench_weights *w; lgpu_bench_weights_create(LGPU_TYPE_Q4_0, 4096, 4096, &w);
 *   double s; lgpu_bench_matmul(dev, w, 1, 10, &s);  (GB/s: lgpu_bench_weights_bytes(w) / s)
 *   lgpu_bench_weights_destroy(w); */
#ifndef LGPU_BENCH_H
#define LGPU_BENCH_H

#include "lgpu/device.h"
#include "lgpu/lgpu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An N x K weight matrix in host memory, in the file layout of its type. */
typedef struct lgpu_bench_weights lgpu_bench_weights;

/* N rows of K weights of `type` (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K;
 * K a multiple of its block size), the same bytes for the same arguments:
 * plain types get uniform values in [-1, 1); block types random bytes with
 * every f16 scale set to a small value (not quantized from floats: only the
 * layout of the bytes matters for timing). LGPU_EINVAL for another type or
 * K, LGPU_ENOMEM. */
int lgpu_bench_weights_create(int type, uint32_t N, uint32_t K, lgpu_bench_weights **out);
void lgpu_bench_weights_destroy(lgpu_bench_weights *w); /* NULL: no-op */
/* Bytes of the matrix (what one matrix-vector product reads). */
size_t lgpu_bench_weights_bytes(const lgpu_bench_weights *w);

/* Times y (M x N) = x (M x K) W^T, F32 x and y, with the matmul op on dev:
 * one op as a warm-up (pipeline creation, first touch of the memory), then
 * `reps` ops recorded into one command stream and submitted together;
 * *s_per_op is the wall time of that submit divided by reps. On the host
 * device Q4_0 weights are timed in the repacked layout models are loaded in.
 * Returns 0 or a negative LGPU_E* code (the device's, with its detail). */
int lgpu_bench_matmul(lgpu_dev *dev, const lgpu_bench_weights *w, uint32_t M, int reps, double *s_per_op);

/* Times dx (M x K) = dy (M x N) W, F32 dy and dx, with the matmul_backward
 * op (the gradient through a frozen weight), as lgpu_bench_matmul does. */
int lgpu_bench_matmul_backward(lgpu_dev *dev, const lgpu_bench_weights *w, uint32_t M, int reps, double *s_per_op);

/* Times the F32 gemm c (M x N) = op(a) op(b), op(a) M x K and op(b) K x N
 * (transposed as asked, contiguous, alpha 1, not accumulating), uniform
 * operands, as lgpu_bench_matmul does. */
int lgpu_bench_gemm(lgpu_dev *dev, uint32_t M, uint32_t N, uint32_t K, bool trans_a, bool trans_b, int reps,
                    double *s_per_op);

#ifdef __cplusplus
}
#endif
#endif
