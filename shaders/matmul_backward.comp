#version 450
// Gradient through a frozen weight (C twin: lgpu_ref_matmul_backward; params:
// lgpu_matmul_backward_params):
//   dx[m, k] (+)= sum_n dy[m, row_offset + n] * W[n, k]
// Built once per weight type (DATA_A_<TYPE>, types.glsl); W is dequantized
// on the fly, never copied.
//
// A workgroup computes a BM x BK tile of dx (BM rows of dy, BK columns of
// W). n is walked BN at a time: the BM x BN slice of dy and the dequantized
// BN x BK slice of W are staged in shared memory (n-major), then each
// invocation adds the products to its TM x TK sums in registers (rows
// tm + i*BM/TM, columns tk + j*BK/TK). A W row's slice is read 4 values at a
// time along k (dequant4: K is a multiple of the block size and BK of 4, so
// the 4 values share a block), consecutive invocations taking consecutive
// values. Sums run over n in increasing order from 0 (slots past N hold
// zeros and add +0), then dx + sum when accumulating: the twin's order, so
// the two differ only by fused multiply-adds. Reruns are bit-identical.
//
// The W binding holds the rows [row_offset, row_offset + N) of one buffer
// segment; the op layer dispatches once per segment, the later ones
// accumulating.
//
// Grid: x = BK tiles, y = BM tiles (overflow folded into z).
#extension GL_EXT_control_flow_attributes : require
#define A_BINDING 0
#define NF4_CT_ID 6 // NF4: the compute type, after this shader's own constants
#include "types.glsl"

layout(local_size_x_id = 0) in;             // must equal (BM / TM) * (BK / TK)
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BK = 64; // multiple of 4
layout(constant_id = 3) const uint BN = 16;
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TK = 4;

layout(push_constant) uniform Params {
    uint M, N, K;
    uint dy_stride, dx_stride;
    uint accumulate;
    uint wtype;
    uint row_offset;
    uint w_x8;
} p;

layout(binding = 1) readonly buffer DyBuf { float dy[]; };
layout(binding = 2) buffer DxBuf { float dx[]; };

const uint DS = BM + 1u;   // dy tile rows padded by one word: stores along n hit different banks
shared float dys[BN * DS]; // dys[n * DS + m]
shared float ws[BN * BK];  // ws[n * BK + k]

void main() {
    const uint tid = gl_LocalInvocationID.x, nthreads = gl_WorkGroupSize.x;
    const uint k0 = gl_WorkGroupID.x * BK;
    const uint m0 = (gl_WorkGroupID.z * gl_NumWorkGroups.y + gl_WorkGroupID.y) * BM;
    if (k0 >= p.K || m0 >= p.M) return; // whole workgroup: uniform
#ifdef QUANT_FLAT
    nf4_block0 = p.row_offset * p.K / 64u; // the op layer splits W at block boundaries
#endif
    const uint tk = tid % (BK / TK), tm = tid / (BK / TK);
    const uint bpr = p.K / QUANT_K; // blocks per W row

    float acc[TM * TK];
    [[unroll]] for (uint i = 0u; i < TM * TK; i++) acc[i] = 0.0;

    for (uint n0 = 0u; n0 < p.N; n0 += BN) {
        // dy tile: BM x BN, consecutive invocations along n
        for (uint idx = tid; idx < BM * BN; idx += nthreads) {
            uint mm = idx / BN, nn = idx % BN;
            uint m = m0 + mm, n = n0 + nn;
            dys[nn * DS + mm] = (m < p.M && n < p.N) ? dy[m * p.dy_stride + p.row_offset + n] : 0.0;
        }
        // W tile: BN x BK dequantized, 4 values per step along k
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
                if (k < p.K) v = dequant4(n * bpr + k / QUANT_K, k % QUANT_K);
#endif
            }
            [[unroll]] for (uint c = 0u; c < 4u; c++) ws[nn * BK + kk + c] = v[c];
        }
        barrier();

        [[unroll]] for (uint nn = 0u; nn < BN; nn++) {
            float d[TM], w[TK];
            [[unroll]] for (uint i = 0u; i < TM; i++) d[i] = dys[nn * DS + tm + i * (BM / TM)];
            [[unroll]] for (uint j = 0u; j < TK; j++) w[j] = ws[nn * BK + tk + j * (BK / TK)];
            [[unroll]] for (uint i = 0u; i < TM; i++)
                [[unroll]] for (uint j = 0u; j < TK; j++) acc[i * TK + j] += d[i] * w[j];
        }
        barrier(); // the tiles are refilled next iteration
    }

    [[unroll]] for (uint i = 0u; i < TM; i++) {
        uint m = m0 + tm + i * (BM / TM);
        [[unroll]] for (uint j = 0u; j < TK; j++) {
            uint k = k0 + tk + j * (BK / TK);
            if (m < p.M && k < p.K) {
                uint o = m * p.dx_stride + k;
                dx[o] = (p.accumulate != 0u ? dx[o] : 0.0) + acc[i * TK + j];
            }
        }
    }
}
