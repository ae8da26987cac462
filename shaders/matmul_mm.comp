#version 450
// Tiled matrix-matrix product for prompts and batches:
//   y[m, n] (+)= sum_k W[n, k] x[m, k]   (C twin: lgpu_ref_matmul; params: lgpu_matmul_params)
//
// A workgroup computes a BM x BN tile of y (BM x rows by BN W rows). The K
// axis is walked BK at a time: x and the dequantized W slices are staged in
// shared memory (k-major), then each thread accumulates a TM x TN block of
// outputs in registers (rows tm + i*BM/TM, columns tn + j*BN/TN, so reads of
// the W tile by neighbouring threads hit neighbouring words). Any M, N and K
// (a multiple of the block size) work: out-of-range rows and columns load
// zeros and are not written. Barriers: one after filling the tiles, one
// before they are overwritten.
//
// Grid: x = BN tiles (overflow folded into z), y = BM tiles.
#extension GL_EXT_control_flow_attributes : require
#define A_BINDING 0
#define NF4_CT_ID 6 // NF4: the compute type, after this shader's own constants
#include "types.glsl"

layout(local_size_x_id = 0) in;                // must equal (BM / TM) * (BN / TN)
layout(constant_id = 1) const uint BM = 32;
layout(constant_id = 2) const uint BN = 32;
layout(constant_id = 3) const uint BK = 16;    // multiple of 4
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;

layout(push_constant) uniform Params {
    uint M, N, K;
    uint x_stride, y_stride;
    uint accumulate;
    uint wtype;
    uint row_offset;
} p;

layout(binding = 1) readonly buffer XBuf { float x[]; };
layout(binding = 2) buffer YBuf { float y[]; };

shared float xs[BK * BM]; // xs[k * BM + m]
shared float ws[BK * BN]; // ws[k * BN + n]

void main() {
    const uint tid = gl_LocalInvocationID.x, nthreads = gl_WorkGroupSize.x;
    const uint n0 = (gl_WorkGroupID.z * gl_NumWorkGroups.x + gl_WorkGroupID.x) * BN;
    const uint m0 = gl_WorkGroupID.y * BM;
    if (n0 >= p.N || m0 >= p.M) return; // whole workgroup: uniform
#ifdef QUANT_FLAT
    nf4_block0 = p.row_offset * p.K / 64u; // the op layer splits W at block boundaries
#endif
    const uint tn = tid % (BN / TN), tm = tid / (BN / TN);
    const uint bpr = p.K / QUANT_K; // blocks per W row

    float acc[TM * TN];
    [[unroll]] for (uint i = 0u; i < TM * TN; i++) acc[i] = 0.0;

    for (uint k0 = 0u; k0 < p.K; k0 += BK) {
        // x tile: BM x BK, consecutive threads along k
        for (uint idx = tid; idx < BM * BK; idx += nthreads) {
            uint mm = idx / BK, kk = idx % BK;
            uint m = m0 + mm, k = k0 + kk;
            xs[kk * BM + mm] = (m < p.M && k < p.K) ? x[m * p.x_stride + k] : 0.0;
        }
        // W tile: BN x BK dequantized, 4 values per step
        for (uint idx = tid; idx < BN * (BK / 4u); idx += nthreads) {
            uint nn = idx / (BK / 4u), kk = (idx % (BK / 4u)) * 4u;
            uint n = n0 + nn, k = k0 + kk;
            vec4 v = vec4(0.0);
            if (n < p.N) {
#if QUANT_K == 1 || defined(QUANT_FLAT) // element indices (NF4: blocks run across rows)
                uint e = n * p.K + k; // element index
                if (k + 3u < p.K)
                    v = dequant4(e, 0u);
                else
                    for (uint c = 0u; c < 4u; c++)
                        if (k + c < p.K) v[c] = dequant1(e + c, 0u);
#else
                // K is a multiple of QUANT_K (>= 32) and k of 4: the 4 values share a block
                if (k < p.K) v = dequant4(n * bpr + k / QUANT_K, k % QUANT_K);
#endif
            }
            [[unroll]] for (uint c = 0u; c < 4u; c++) ws[(kk + c) * BN + nn] = v[c];
        }
        barrier();

        [[unroll]] for (uint kk = 0u; kk < BK; kk++) {
            float a[TM], b[TN];
            [[unroll]] for (uint i = 0u; i < TM; i++) a[i] = xs[kk * BM + tm + i * (BM / TM)];
            [[unroll]] for (uint j = 0u; j < TN; j++) b[j] = ws[kk * BN + tn + j * (BN / TN)];
            [[unroll]] for (uint i = 0u; i < TM; i++)
                [[unroll]] for (uint j = 0u; j < TN; j++) acc[i * TN + j] += a[i] * b[j];
        }
        barrier(); // the tiles are refilled next iteration
    }

    [[unroll]] for (uint i = 0u; i < TM; i++) {
        uint m = m0 + tm + i * (BM / TM);
        [[unroll]] for (uint j = 0u; j < TN; j++) {
            uint n = n0 + tn + j * (BN / TN);
            if (m < p.M && n < p.N) {
                uint o = m * p.y_stride + p.row_offset + n;
                y[o] = (p.accumulate != 0u ? y[o] : 0.0) + acc[i * TN + j];
            }
        }
    }
}
