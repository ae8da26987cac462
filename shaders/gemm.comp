#version 450
// General F32 product (C twin: lgpu_ref_gemm; params: lgpu_gemm_params):
//   c[m, n] = alpha * sum_k opA[m, k] opB[k, n]  (+ c[m, n] when accumulate)
//   opA[m, k] = trans_a ? a[k*lda + m] : a[m*lda + k]
//   opB[k, n] = trans_b ? b[n*ldb + k] : b[k*ldb + n]
//
// A workgroup computes a BM x BN tile of c. K is walked BK at a time: the
// BM x BK slice of opA and the BK x BN slice of opB are staged in shared
// memory (k-major; consecutive invocations load consecutive addresses of
// whichever layout a and b have), then each invocation adds the products to
// its TM x TN sums in registers (rows tm + i*BM/TM, columns tn + j*BN/TN).
// Every sum runs over k in increasing order from 0 (slots past K hold zeros
// in both tiles and add +0), then is scaled by alpha and added to c: the
// twin's order, so shader and twin differ only by fused multiply-adds. No
// split over k, no atomics: reruns are bit-identical.
//
// Grid: x = BN tiles, y = BM tiles (overflow folded into z).
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;             // must equal (BM / TM) * (BN / TN)
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint BK = 16;
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;

layout(push_constant) uniform Params {
    uint M, N, K;
    uint lda, ldb, ldc;
    uint trans_a, trans_b;
    uint accumulate;
    float alpha;
} p;

layout(binding = 0) readonly buffer ABuf { float a[]; };
layout(binding = 1) readonly buffer BBuf { float b[]; };
layout(binding = 2) buffer CBuf { float c[]; };

// k-major tiles, rows padded by one word: invocations storing along k then
// hit different banks
const uint AS = BM + 1u, BS = BN + 1u;
shared float as_[BK * AS]; // as_[k * AS + m]
shared float bs_[BK * BS]; // bs_[k * BS + n]

void main() {
    const uint tid = gl_LocalInvocationID.x, nthreads = gl_WorkGroupSize.x;
    const uint n0 = gl_WorkGroupID.x * BN;
    const uint m0 = (gl_WorkGroupID.z * gl_NumWorkGroups.y + gl_WorkGroupID.y) * BM;
    if (n0 >= p.N || m0 >= p.M) return; // whole workgroup: uniform
    const uint tn = tid % (BN / TN), tm = tid / (BN / TN);
    const bool ta = p.trans_a != 0u, tb = p.trans_b != 0u;

    float acc[TM * TN];
    [[unroll]] for (uint i = 0u; i < TM * TN; i++) acc[i] = 0.0;

    for (uint k0 = 0u; k0 < p.K; k0 += BK) {
        // opA tile: consecutive invocations along m (trans_a) or k
        for (uint idx = tid; idx < BM * BK; idx += nthreads) {
            uint mm = ta ? idx % BM : idx / BK, kk = ta ? idx / BM : idx % BK;
            uint m = m0 + mm, k = k0 + kk;
            float v = 0.0;
            if (m < p.M && k < p.K) v = a[ta ? k * p.lda + m : m * p.lda + k];
            as_[kk * AS + mm] = v;
        }
        // opB tile: consecutive invocations along k (trans_b) or n
        for (uint idx = tid; idx < BK * BN; idx += nthreads) {
            uint nn = tb ? idx / BK : idx % BN, kk = tb ? idx % BK : idx / BN;
            uint n = n0 + nn, k = k0 + kk;
            float v = 0.0;
            if (n < p.N && k < p.K) v = b[tb ? n * p.ldb + k : k * p.ldb + n];
            bs_[kk * BS + nn] = v;
        }
        barrier();

        [[unroll]] for (uint kk = 0u; kk < BK; kk++) {
            float av[TM], bv[TN];
            [[unroll]] for (uint i = 0u; i < TM; i++) av[i] = as_[kk * AS + tm + i * (BM / TM)];
            [[unroll]] for (uint j = 0u; j < TN; j++) bv[j] = bs_[kk * BS + tn + j * (BN / TN)];
            [[unroll]] for (uint i = 0u; i < TM; i++)
                [[unroll]] for (uint j = 0u; j < TN; j++) acc[i * TN + j] += av[i] * bv[j];
        }
        barrier(); // the tiles are refilled next iteration
    }

    [[unroll]] for (uint i = 0u; i < TM; i++) {
        uint m = m0 + tm + i * (BM / TM);
        [[unroll]] for (uint j = 0u; j < TN; j++) {
            uint n = n0 + tn + j * (BN / TN);
            if (m < p.M && n < p.N) {
                uint o = m * p.ldc + n;
                float v = p.alpha * acc[i * TN + j];
                c[o] = p.accumulate != 0u ? c[o] + v : v;
            }
        }
    }
}
