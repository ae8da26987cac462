#version 450
// Matrix-vector product for small M (decode):  y[m, n] (+)= sum_k W[n, k] x[m, k]
// (C twin: lgpu_ref_matmul; params: lgpu_matmul_params).
//
// One workgroup owns NR consecutive W rows. The K axis is cut into "units"
// (UE elements: a few quant blocks, one K-quant super-block) and lane l of
// the workgroup takes units l, l+WG, ... For each of its units a lane loads
// the NM x slices once, then walks the NR rows, so every x value loaded is
// used NR times; partial sums are reduced with subgroupAdd (plus shared
// memory when the workgroup holds several subgroups).
//
// Weights are read through an array of 64-bit words (W64, needs shaderInt64)
// or 32-bit words: on lavapipe every storage-buffer load component is a
// scalar per-lane load, so the number of load components is what costs, not
// their width. Units that are not word aligned (Q6_K's 210-byte blocks, rows
// whose byte length is not a multiple of the word) are read with one extra
// word and funnel-shifted.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require
#ifdef W64
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#endif
#include "types.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint NR = 8;            // W rows per workgroup
layout(constant_id = 2) const uint NM = 1;            // x rows (= M of the dispatch)
layout(constant_id = 3) const bool W_ALIGNED = true;  // unit and row byte sizes are multiples of the word size
layout(constant_id = 4) const bool X_PAIRS = true;    // x rows start 8-byte aligned (W64: load 2 floats at once)
layout(constant_id = 5) const uint NSG = 1;           // subgroups per workgroup (> 1: shared-memory reduction)
layout(constant_id = 6) const bool W_TAIL = false;    // the W binding's size is not a multiple of the word size

layout(push_constant) uniform Params {
    uint M, N, K;
    uint x_stride, y_stride;
    uint accumulate;
    uint wtype;
    uint row_offset;
} p;

#ifdef W64
#define WORD uint64_t
#define WB 8u
#else
#define WORD uint
#define WB 4u
#endif

// unit: UE elements, UB bytes
#if defined(DATA_A_F32)
#define UE 64u
#elif defined(DATA_A_Q4_K) || defined(DATA_A_Q6_K)
#define UE 256u
#else
#define UE 128u
#endif
#define UB (UE / QUANT_K * QUANT_BYTES)
#define NW ((UB + WB - 1u) / WB)

layout(binding = 0) readonly buffer WBuf { WORD w[]; };
#if !defined(DATA_A_F32)
layout(binding = 0) readonly buffer WBuf16 { uint16_t w16[]; }; // the bytes past the last whole word
#endif
layout(binding = 1) readonly buffer XBuf { float x[]; };
#ifdef W64
layout(binding = 1) readonly buffer XBuf2 { uint64_t x2[]; };
#endif
layout(binding = 2) buffer YBuf { float y[]; };

WORD wu[NW];      // the current unit's bytes, word aligned
float xv[NM][UE]; // this lane's x slices for the current unit

#ifdef W64
uint b32(uint o) { // 32 bits at unit byte o (o even)
    uint i = o / 8u, s = (o % 8u) * 8u;
    uint v = uint(wu[i] >> s);
    if (s > 32u) v |= uint(wu[i + 1u] << (64u - s));
    return v;
}
uint b16(uint o) { return uint(wu[o / 8u] >> ((o % 8u) * 8u)) & 0xffffu; }
#else
uint b32(uint o) {
    uint i = o / 4u, s = (o % 4u) * 8u;
    uint v = wu[i];
    if (s != 0u) v = (v >> s) | (wu[i + 1u] << (32u - s));
    return v;
}
uint b16(uint o) { return (wu[o / 4u] >> ((o % 4u) * 8u)) & 0xffffu; }
#endif
uint b8(uint o) { return b16(o & ~1u) >> ((o & 1u) * 8u) & 0xffu; }

// Word `i` of the binding. A binding whose size is not a multiple of the word
// size ends with a partial word that only 16-bit loads can reach.
WORD wload(uint i, uint wlen) {
    WORD v = w[min(i, wlen - 1u)];
#if !defined(DATA_A_F32) // F32 bindings are whole 32-bit words
    if (W_TAIL && i >= wlen) { // costs even when not taken on lavapipe: only when needed
        uint n16 = uint(w16.length());
        v = WORD(0);
        [[unroll]] for (uint j = 0u; j < WB / 2u; j++) {
            uint k = i * (WB / 2u) + j;
            if (k < n16) v |= WORD(w16[k]) << (16u * j);
        }
    }
#endif
    return v;
}

void load_unit(uint byte_off, uint wlen) {
    uint wi = byte_off / WB;
    if (W_ALIGNED) {
        [[unroll]] for (uint i = 0u; i < NW; i++) wu[i] = wload(wi + i, wlen);
    } else {
        uint s = (byte_off % WB) * 8u;
        WORD prev = wload(wi, wlen);
        [[unroll]] for (uint i = 0u; i < NW; i++) {
            WORD next = wload(wi + i + 1u, wlen);
            wu[i] = s == 0u ? prev : (prev >> s) | (next << (WB * 8u - s));
            prev = next;
        }
    }
}

void load_x(uint m0, uint e0) {
    [[unroll]] for (uint m = 0u; m < NM; m++) {
        uint base = min(m0 + m, p.M - 1u) * p.x_stride + e0; // rows past M: any valid row, not written
#ifdef W64
        if (X_PAIRS) {
            uint n2 = uint(x2.length());
            [[unroll]] for (uint i = 0u; i < UE; i += 2u) {
                uvec2 v = unpack32(x2[min((base + i) / 2u, n2 - 1u)]);
                xv[m][i] = uintBitsToFloat(v.x);
                xv[m][i + 1u] = uintBitsToFloat(v.y);
            }
            continue;
        }
#endif
        uint n1 = uint(x.length());
        [[unroll]] for (uint i = 0u; i < UE; i++) xv[m][i] = x[min(base + i, n1 - 1u)];
    }
}

// Per-type dot product of the loaded unit with xv[m]. `nvalid` (a multiple of
// QUANT_K, <= UE) elements of the unit are inside the row; the rest must not
// contribute (their bytes belong to the next row or lie past the binding).
#if defined(DATA_A_Q4_0)
float xs[NM][UE / 32u]; // per-block sums of x (the -8 offset)
void prep_x() {
    [[unroll]] for (uint m = 0u; m < NM; m++)
        [[unroll]] for (uint b = 0u; b < UE / 32u; b++) {
            float s = 0.0;
            [[unroll]] for (uint j = 0u; j < 32u; j++) s += xv[m][b * 32u + j];
            xs[m][b] = s;
        }
}
float dot_unit(uint m, uint nvalid) {
    float acc = 0.0;
    [[unroll]] for (uint b = 0u; b < UE / 32u; b++) {
        float d = lgpu_half_to_float(b16(18u * b));
        float s = 0.0;
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint q = b32(18u * b + 2u + 4u * i);
            [[unroll]] for (uint j = 0u; j < 4u; j++) {
                s += float((q >> (8u * j)) & 15u) * xv[m][b * 32u + 4u * i + j];
                s += float((q >> (8u * j + 4u)) & 15u) * xv[m][b * 32u + 16u + 4u * i + j];
            }
        }
        float v = d * (s - 8.0 * xs[m][b]);
        acc += b * 32u < nvalid ? v : 0.0;
    }
    return acc;
}
#elif defined(DATA_A_Q8_0)
void prep_x() {}
float dot_unit(uint m, uint nvalid) {
    float acc = 0.0;
    [[unroll]] for (uint b = 0u; b < UE / 32u; b++) {
        float d = lgpu_half_to_float(b16(34u * b));
        float s = 0.0;
        [[unroll]] for (uint i = 0u; i < 8u; i++) {
            int q = int(b32(34u * b + 2u + 4u * i));
            [[unroll]] for (uint j = 0u; j < 4u; j++)
                s += float(bitfieldExtract(q, int(8u * j), 8)) * xv[m][b * 32u + 4u * i + j];
        }
        acc += b * 32u < nvalid ? d * s : 0.0;
    }
    return acc;
}
#elif defined(DATA_A_Q4_K)
float xs[NM][8]; // per-sub-block sums of x (the mins)
void prep_x() {
    [[unroll]] for (uint m = 0u; m < NM; m++)
        [[unroll]] for (uint b = 0u; b < 8u; b++) {
            float s = 0.0;
            [[unroll]] for (uint j = 0u; j < 32u; j++) s += xv[m][b * 32u + j];
            xs[m][b] = s;
        }
}
float dot_unit(uint m, uint nvalid) {
    float d = lgpu_half_to_float(b16(0u)), dmin = lgpu_half_to_float(b16(2u));
    float acc = 0.0;
    [[unroll]] for (uint j = 0u; j < 8u; j++) {
        uint sc, mn;
        if (j < 4u) {
            sc = b8(4u + j) & 63u;
            mn = b8(8u + j) & 63u;
        } else {
            sc = (b8(8u + j) & 15u) | ((b8(j) >> 6) << 4);
            mn = (b8(8u + j) >> 4) | ((b8(4u + j) >> 6) << 4);
        }
        float s = 0.0;
        [[unroll]] for (uint i = 0u; i < 8u; i++) {
            uint q = b32(16u + (j / 2u) * 32u + 4u * i) >> (4u * (j & 1u));
            [[unroll]] for (uint k = 0u; k < 4u; k++) s += float((q >> (8u * k)) & 15u) * xv[m][j * 32u + 4u * i + k];
        }
        acc += (d * float(sc)) * s - (dmin * float(mn)) * xs[m][j];
    }
    return acc;
}
#elif defined(DATA_A_Q6_K)
float xs[NM][16]; // per-16 sums of x (the -32 offset)
void prep_x() {
    [[unroll]] for (uint m = 0u; m < NM; m++)
        [[unroll]] for (uint b = 0u; b < 16u; b++) {
            float s = 0.0;
            [[unroll]] for (uint j = 0u; j < 16u; j++) s += xv[m][b * 16u + j];
            xs[m][b] = s;
        }
}
float dot_unit(uint m, uint nvalid) {
    float d = lgpu_half_to_float(b16(208u));
    float acc = 0.0;
    [[unroll]] for (uint h = 0u; h < 2u; h++) {
        [[unroll]] for (uint g = 0u; g < 8u; g++) { // 16-value groups of this half: quarter g/2, lo 16*(g&1)
            uint quarter = g / 2u, lo0 = 16u * (g & 1u);
            float s = 0.0;
            [[unroll]] for (uint i = 0u; i < 4u; i++) {
                uint ql = b32(h * 64u + (quarter & 1u) * 32u + lo0 + 4u * i) >> (4u * (quarter >> 1));
                uint qh = b32(128u + h * 32u + lo0 + 4u * i) >> (2u * quarter);
                [[unroll]] for (uint k = 0u; k < 4u; k++) {
                    uint q = ((ql >> (8u * k)) & 15u) | (((qh >> (8u * k)) & 3u) << 4);
                    s += float(q) * xv[m][h * 128u + quarter * 32u + lo0 + 4u * i + k];
                }
            }
            int sc = bitfieldExtract(int(b8(192u + h * 8u + quarter * 2u + (g & 1u))), 0, 8);
            acc += (d * float(sc)) * (s - 32.0 * xs[m][h * 8u + quarter * 2u + (g & 1u)]);
        }
    }
    return acc;
}
#else // F32, F16, BF16: plain values, masked element by element in a partial unit
void prep_x() {}
float wval(uint i) {
#if defined(DATA_A_F32)
    return uintBitsToFloat(b32(4u * i));
#elif defined(DATA_A_F16)
    return lgpu_half_to_float(b16(2u * i));
#else
    return lgpu_bf16_to_float(b16(2u * i));
#endif
}
float dot_unit(uint m, uint nvalid) {
    float acc = 0.0;
    if (nvalid == UE) {
        [[unroll]] for (uint i = 0u; i < UE; i += 2u) {
#if defined(DATA_A_F32)
            acc += uintBitsToFloat(b32(4u * i)) * xv[m][i] + uintBitsToFloat(b32(4u * i + 4u)) * xv[m][i + 1u];
#elif defined(DATA_A_F16)
            vec2 v = unpackHalf2x16(b32(2u * i));
            acc += v.x * xv[m][i] + v.y * xv[m][i + 1u];
#else
            uint v = b32(2u * i);
            acc += uintBitsToFloat(v << 16) * xv[m][i] + uintBitsToFloat(v & 0xffff0000u) * xv[m][i + 1u];
#endif
        }
    } else {
        [[unroll]] for (uint i = 0u; i < UE; i++) acc += i < nvalid ? wval(i) * xv[m][i] : 0.0;
    }
    return acc;
}
#endif

shared float red[NSG][NR * NM];

void main() {
    uint wg = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint n0 = wg * NR, m0 = gl_WorkGroupID.z * NM;
    if (n0 >= p.N) return; // whole workgroup: uniform
    uint lane = gl_LocalInvocationID.x, nlanes = gl_WorkGroupSize.x;
    uint row_bytes = (p.K / QUANT_K) * QUANT_BYTES;
    uint nunits = (p.K + UE - 1u) / UE;
    uint wlen = uint(w.length());

    float acc[NR * NM];
    [[unroll]] for (uint i = 0u; i < NR * NM; i++) acc[i] = 0.0;

    [[dont_unroll]] for (uint u0 = 0u; u0 < nunits; u0 += nlanes) {
        uint u = min(u0 + lane, nunits - 1u);
        bool live = u0 + lane < nunits;
        uint e0 = u * UE;
        uint nvalid = min(UE, p.K - e0);
        load_x(m0, e0);
        prep_x();
        [[dont_unroll]] for (uint r = 0u; r < NR; r++) {
            uint n = min(n0 + r, p.N - 1u);
            load_unit(n * row_bytes + u * UB, wlen);
            [[unroll]] for (uint m = 0u; m < NM; m++) {
                float v = dot_unit(m, nvalid);
                acc[r * NM + m] += live ? v : 0.0;
            }
        }
    }

    [[unroll]] for (uint i = 0u; i < NR * NM; i++) acc[i] = subgroupAdd(acc[i]);
    if (NSG > 1u) {
        if (gl_SubgroupInvocationID == 0u) {
            [[unroll]] for (uint i = 0u; i < NR * NM; i++) red[gl_SubgroupID][i] = acc[i];
        }
        barrier();
        for (uint i = lane; i < NR * NM; i += nlanes) {
            float s = 0.0;
            for (uint g = 0u; g < NSG; g++) s += red[g][i];
            acc[i] = s;
        }
        // thread `lane` now holds the sums i = lane, lane + nlanes, ...
        for (uint i = lane; i < NR * NM; i += nlanes) {
            uint r = i / NM, m = i % NM;
            if (n0 + r < p.N && m0 + m < p.M) {
                uint o = (m0 + m) * p.y_stride + p.row_offset + n0 + r;
                y[o] = (p.accumulate != 0u ? y[o] : 0.0) + acc[i];
            }
        }
        return;
    }
    // one subgroup: every lane holds every sum; lane i % WG writes output i
    [[unroll]] for (uint i = 0u; i < NR * NM; i++) {
        uint r = i / NM, m = i % NM;
        if (i % nlanes == lane && n0 + r < p.N && m0 + m < p.M) {
            uint o = (m0 + m) * p.y_stride + p.row_offset + n0 + r;
            y[o] = (p.accumulate != 0u ? y[o] : 0.0) + acc[i];
        }
    }
}
