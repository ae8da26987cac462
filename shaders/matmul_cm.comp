#version 450
// Tiled matrix-matrix product on cooperative matrices (tensor cores):
//   y[m, n] (+)= sum_k W[n, k] x[m, k]   (C twin: lgpu_ref_matmul; params: lgpu_matmul_params)
// Built twice: COOPMAT_NV (GL_NV_cooperative_matrix, always) and COOPMAT_KHR
// (GL_KHR_cooperative_matrix, only when glslc supports it). Inputs are
// rounded to f16 in shared memory, products accumulate in f32.
//
// A workgroup of 4 subgroups computes a 64 x 64 tile of y (64 x rows by 64 W
// rows); subgroup s owns the 32 x 32 quarter (s / 2, s % 2) as 2 x 2
// fragments of 16 x 16. K is walked 32 at a time: x (row-major, A) and the
// dequantized W rows (= B in column-major order) are staged in shared memory
// between two barriers. The result goes through shared memory so partial
// tiles are bound-checked and `accumulate` can add to y.
// Grid: x = 64-row tiles of W (overflow folded into z), y = 64-row tiles of x.
// local_size_x must be 4 * the subgroup size.
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_memory_scope_semantics : require
#if defined(COOPMAT_NV)
#extension GL_NV_cooperative_matrix : require
#define MAT_A fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define MAT_B fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define MAT_C fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define LOAD_A(m, arr, off, stride) coopMatLoadNV(m, arr, off, stride, false)
#define LOAD_B(m, arr, off, stride) coopMatLoadNV(m, arr, off, stride, true)
#define STORE_C(m, arr, off, stride) coopMatStoreNV(m, arr, off, stride, false)
#define MULADD(a, b, c) coopMatMulAddNV(a, b, c)
#elif defined(COOPMAT_KHR)
#extension GL_KHR_cooperative_matrix : require
#define MAT_A coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define MAT_B coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB>
#define MAT_C coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>
#define LOAD_A(m, arr, off, stride) coopMatLoad(m, arr, off, stride, gl_CooperativeMatrixLayoutRowMajor)
#define LOAD_B(m, arr, off, stride) coopMatLoad(m, arr, off, stride, gl_CooperativeMatrixLayoutColumnMajor)
#define STORE_C(m, arr, off, stride) coopMatStore(m, arr, off, stride, gl_CooperativeMatrixLayoutRowMajor)
#define MULADD(a, b, c) coopMatMulAdd(a, b, c)
#else
#error "matmul_cm.comp: define COOPMAT_NV or COOPMAT_KHR"
#endif
#define A_BINDING 0
#define NF4_CT_ID 1 // NF4: the compute type, after this shader's own constants
#include "types.glsl"

layout(local_size_x_id = 0) in;

#define BM 64u
#define BN 64u
#define BK 32u
#define BKP 40u // padded row length of the staging tiles (f16 elements)

layout(push_constant) uniform Params {
    uint M, N, K;
    uint x_stride, y_stride;
    uint accumulate;
    uint wtype;
    uint row_offset;
} p;

layout(binding = 1) readonly buffer XBuf { float x[]; };
layout(binding = 2) buffer YBuf { float y[]; };

shared float16_t xs[BM * BKP]; // A: xs[m * BKP + k]
shared float16_t ws[BN * BKP]; // B: ws[n * BKP + k]  (B[k][n], column-major)
shared float outs[BM * BN];    // C: outs[m * BN + n]

void main() {
    const uint tid = gl_LocalInvocationID.x, nthreads = gl_WorkGroupSize.x;
    const uint n0 = (gl_WorkGroupID.z * gl_NumWorkGroups.x + gl_WorkGroupID.x) * BN;
    const uint m0 = gl_WorkGroupID.y * BM;
    if (n0 >= p.N || m0 >= p.M) return; // whole workgroup: uniform
#ifdef QUANT_FLAT
    nf4_block0 = p.row_offset * p.K / 64u; // the op layer splits W at block boundaries
#endif
    const uint sg = gl_SubgroupID, sm = (sg / 2u) * 32u, sn = (sg % 2u) * 32u;
    const uint bpr = p.K / QUANT_K;

    MAT_C acc[4];
    [[unroll]] for (uint f = 0u; f < 4u; f++) acc[f] = MAT_C(0.0);

    for (uint k0 = 0u; k0 < p.K; k0 += BK) {
        for (uint idx = tid; idx < BM * BK; idx += nthreads) {
            uint mm = idx / BK, kk = idx % BK;
            uint m = m0 + mm, k = k0 + kk;
            xs[mm * BKP + kk] = float16_t((m < p.M && k < p.K) ? x[m * p.x_stride + k] : 0.0);
        }
        for (uint idx = tid; idx < BN * (BK / 4u); idx += nthreads) {
            uint nn = idx / (BK / 4u), kk = (idx % (BK / 4u)) * 4u;
            uint n = n0 + nn, k = k0 + kk;
            vec4 v = vec4(0.0);
            if (n < p.N) {
#if QUANT_K == 1 || defined(QUANT_FLAT) // element indices (NF4: blocks run across rows)
                uint e = n * p.K + k;
                if (k + 3u < p.K)
                    v = dequant4(e, 0u);
                else
                    for (uint c = 0u; c < 4u; c++)
                        if (k + c < p.K) v[c] = dequant1(e + c, 0u);
#else
                if (k < p.K) v = dequant4(n * bpr + k / QUANT_K, k % QUANT_K);
#endif
            }
            [[unroll]] for (uint c = 0u; c < 4u; c++) ws[nn * BKP + kk + c] = float16_t(v[c]);
        }
        barrier();
        if (sg < 4u) {
            [[unroll]] for (uint kk = 0u; kk < BK; kk += 16u) {
                MAT_A a[2];
                MAT_B b[2];
                [[unroll]] for (uint i = 0u; i < 2u; i++) LOAD_A(a[i], xs, (sm + 16u * i) * BKP + kk, BKP);
                [[unroll]] for (uint j = 0u; j < 2u; j++) LOAD_B(b[j], ws, (sn + 16u * j) * BKP + kk, BKP);
                [[unroll]] for (uint i = 0u; i < 2u; i++)
                    [[unroll]] for (uint j = 0u; j < 2u; j++) acc[i * 2u + j] = MULADD(a[i], b[j], acc[i * 2u + j]);
            }
        }
        barrier(); // the tiles are refilled next iteration
    }

    if (sg < 4u) {
        [[unroll]] for (uint i = 0u; i < 2u; i++)
            [[unroll]] for (uint j = 0u; j < 2u; j++)
                STORE_C(acc[i * 2u + j], outs, (sm + 16u * i) * BN + sn + 16u * j, BN);
    }
    barrier();
    for (uint idx = tid; idx < BM * BN; idx += nthreads) {
        uint m = m0 + idx / BN, n = n0 + idx % BN;
        if (m < p.M && n < p.N) {
            uint o = m * p.y_stride + p.row_offset + n;
            y[o] = (p.accumulate != 0u ? y[o] : 0.0) + outs[idx];
        }
    }
}
