#version 450
// Matrix-vector product for small M (decode):  y[m, n] (+)= sum_k W[n, k] x[m, k]
// (C twin: lgpu_ref_matmul; params: lgpu_matmul_params).
//
// A workgroup owns NR consecutive W rows and NM consecutive x rows. The K
// axis is cut into chunks of CE elements (one quant block; a Q4_K sub-block
// pair; half a Q6_K super-block; 32 plain values); lane l takes chunks l,
// l + WG, ... For each chunk a lane loads its NM x slices once, then walks
// the NR rows (so every x value loaded is used NR times and every W byte NM
// times), accumulating in registers; sums are reduced with subgroupAdd, plus
// shared memory when the workgroup holds several subgroups (NSG > 1).
//
// Grid: workgroup index gl_WorkGroupID.y * gl_NumWorkGroups.x + x picks the
// rows n0 = index * NR; gl_WorkGroupID.z picks the x rows m0 = z * NM.
//
// Shaped for lavapipe as much as for GPUs: there every storage-buffer load
// component is a scalar loop over the SIMD lanes (~10 ns), and LLVM compile
// time grows steeply with the number of load instructions in the code, so
// W is read as 32-bit words (blocks that are only 2-byte aligned are read
// with one extra word and funnel-shifted), x as vec4 where aligned, and the
// loops over chunks and rows are kept rolled.
//
// W_TEXEL builds (matmul_vec_tx_<t>) read W through a uniform texel buffer
// of 16-byte uvec4 texels instead: llvmpipe turns texelFetch into one
// vectorised gather for all lanes, where each storage-buffer word costs a
// scalar loop over the lanes. A chunk range is fetched as the texels that
// cover it, then shifted into place with selects and funnel shifts.
// X_TEXEL builds (matmul_vec_txx_<t>, with W_TEXEL) also read x through a
// texel buffer; they need 16-byte aligned x rows (X4 = true).
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require
#define NF4_CT_ID 8 // NF4: the compute type, after the constants below
#include "types.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint NR = 8;            // W rows per workgroup
layout(constant_id = 2) const uint NM = 1;            // x rows per workgroup (<= 4 keeps compiles short)
layout(constant_id = 3) const uint W_ALIGN = 4;      // every chunk range starts W_ALIGN-byte aligned (2, 4 or 16)
layout(constant_id = 4) const bool X4 = true;         // x rows start 16-byte aligned: load x as vec4
layout(constant_id = 5) const uint NSG = 1;           // subgroups per workgroup (> 1: shared-memory reduction)
layout(constant_id = 6) const bool W_TAIL = false;    // the W binding's size is not a multiple of 4
layout(constant_id = 7) const bool LANE_ROWS = false;  // each lane owns NR / WG rows and walks all chunks

layout(push_constant) uniform Params {
    uint M, N, K;
    uint x_stride, y_stride;
    uint accumulate;
    uint wtype;
    uint row_offset;
} p;

// chunk: CE elements of a row; NWU words of W staged per chunk and row
#if defined(DATA_A_Q4_K)
#define CE 64u
#define NWU 12u
#elif defined(DATA_A_Q6_K)
#define CE 128u
#define NWU 27u
#elif defined(DATA_A_Q8_0)
#define CE 32u
#define NWU 9u
#elif defined(DATA_A_Q4_0)
#define CE 32u
#define NWU 5u
#elif defined(QUANT_FLAT) // NF4
#define CE 64u
#define NWU 18u
#elif defined(DATA_A_F32)
#define CE 32u
#define NWU 32u
#else // F16, BF16
#define CE 32u
#define NWU 16u
#endif

const bool W_ALIGNED = W_ALIGN >= 4u;

#ifdef W_TEXEL
layout(binding = 0) uniform usamplerBuffer wt; // covers the W rows, rounded up to whole texels
#else
layout(binding = 0) readonly buffer WBuf { uint w[]; };
#if !defined(DATA_A_F32)
layout(binding = 0) readonly buffer WBuf16 { uint16_t w16[]; }; // the 2 bytes past the last whole word
#endif
#endif
#ifdef X_TEXEL
layout(binding = 1) uniform usamplerBuffer xt; // x as float bits, 4 per texel
#else
layout(binding = 1) readonly buffer XBuf { float x[]; };
layout(binding = 1) readonly buffer XBuf4 { vec4 x4[]; };
#endif
layout(binding = 2) buffer YBuf { float y[]; };

uint wu[NWU];     // the current chunk's W bytes, word aligned
float xv[NM][CE]; // this lane's x slices for the current chunk
uint wlen;        // whole words (W_TEXEL: texels) in the W binding

#ifdef W_TEXEL
uvec4 wtex(uint t) { return texelFetch(wt, int(min(t, wlen - 1u))); }

// Words q .. q + 3 of the 8 words in texels A, B, funnel-shifted right by s
// bits (q < 4, s < 32: byte skew of a 2-byte aligned range). Masked
// selects on whole uvec4s: llvmpipe keeps these in registers, where an
// indexed local array of words ended up ~2.5x slower.
uvec4 wwin(uvec4 A, uvec4 B, uint q, uint s) {
    if (W_ALIGN >= 16u) return A;
    uvec4 m2 = uvec4(0u - ((q >> 1u) & 1u)), m1 = uvec4(0u - (q & 1u));
    A ^= (A ^ uvec4(A.zw, B.xy)) & m2; // rotate left by 2 words
    B ^= (B ^ uvec4(B.zw, B.zw)) & m2; // (only B.xy matter below)
    A ^= (A ^ uvec4(A.yzw, B.x)) & m1; // by 1
    uint b0 = B.x ^ ((B.x ^ B.y) & m1.x);
    if (W_ALIGNED) return A;
    return (A >> s) | ((uvec4(A.yzw, b0) << 1u) << (31u - s)); // s = 0: the second term drops out
}

// wu[DST ...] = NB bytes (a constant) from binding byte OFF (W_ALIGN-byte
// aligned): each group of 4 output words comes from 2 consecutive texels
// (wwin); a texel fetch whose words no output uses is dead code. Texel
// indices are clamped: callers mask what lies past the row.
#define LOAD_BYTES(DST, OFF, NB)                                                            \
    {                                                                                       \
        const uint NO_ = ((NB) + 3u) / 4u; /* output words */                               \
        uint o_ = (OFF), t_ = o_ / 16u, q_ = (o_ / 4u) % 4u, s_ = (o_ % 4u) * 8u;           \
        uvec4 cur_ = wtex(t_);                                                              \
        [[unroll]] for (uint g_ = 0u; g_ < (NO_ + 3u) / 4u; g_++) {                         \
            uvec4 nxt_ = wtex(t_ + g_ + 1u);                                                \
            uvec4 v_ = wwin(cur_, nxt_, q_, s_);                                            \
            wu[(DST) + 4u * g_] = v_.x;                                                     \
            if (4u * g_ + 1u < NO_) wu[(DST) + 4u * g_ + 1u] = v_.y;                        \
            if (4u * g_ + 2u < NO_) wu[(DST) + 4u * g_ + 2u] = v_.z;                        \
            if (4u * g_ + 3u < NO_) wu[(DST) + 4u * g_ + 3u] = v_.w;                        \
            cur_ = nxt_;                                                                    \
        }                                                                                   \
    }
#else
// Word i of the W binding (clamped: callers mask what lies past the row).
uint wld(uint i) {
    uint v = w[min(i, wlen - 1u)];
#if !defined(DATA_A_F32)
    if (W_TAIL && i >= wlen) // a loaded-but-skipped branch costs on lavapipe: only when needed
        v = 2u * i < uint(w16.length()) ? uint(w16[2u * i]) : 0u;
#endif
    return v;
}

// wu[DST ...] = NB bytes (a constant) from binding byte OFF (2-byte aligned).
// Unaligned: ceil((NB + 2) / 4) words, each output word funnel-shifted from
// two (for s = 0 the second drops out of the double shift).
#define LOAD_BYTES(DST, OFF, NB)                                                            \
    {                                                                                       \
        uint o_ = (OFF), wi_ = o_ / 4u;                                                     \
        if (W_ALIGNED) {                                                                    \
            [[unroll]] for (uint i_ = 0u; i_ < ((NB) + 3u) / 4u; i_++) wu[(DST) + i_] = wld(wi_ + i_); \
        } else {                                                                            \
            uint s_ = (o_ % 4u) * 8u, prev_ = wld(wi_);                                     \
            [[unroll]] for (uint i_ = 0u; i_ < ((NB) + 3u) / 4u; i_++) {                    \
                uint next_ = i_ + 1u < ((NB) + 5u) / 4u ? wld(wi_ + i_ + 1u) : 0u;          \
                wu[(DST) + i_] = (prev_ >> s_) | ((next_ << 1u) << (31u - s_));             \
                prev_ = next_;                                                              \
            }                                                                               \
        }                                                                                   \
    }
#endif

uint b32(uint o) { return wu[o / 4u]; }                                  // o % 4 == 0
uint b16(uint o) { return (wu[o / 4u] >> ((o % 4u) * 8u)) & 0xffffu; }   // o % 2 == 0
uint b8(uint o) { return (wu[o / 4u] >> ((o % 4u) * 8u)) & 0xffu; }

void load_x(uint m0, uint e0) {
    [[unroll]] for (uint m = 0u; m < NM; m++) {
        uint base = min(m0 + m, p.M - 1u) * p.x_stride + e0; // rows past M: any valid row, not written
#ifdef X_TEXEL
        // X_TEXEL builds run with X4 only (op_matmul.c picks them for 16-byte
        // aligned x rows); X4 is a spec constant, so this cannot be an #error
        uint n4 = uint(textureSize(xt));
        [[unroll]] for (uint i = 0u; i < CE; i += 4u) {
            vec4 v = uintBitsToFloat(texelFetch(xt, int(min((base + i) / 4u, n4 - 1u))));
            xv[m][i] = v.x, xv[m][i + 1u] = v.y, xv[m][i + 2u] = v.z, xv[m][i + 3u] = v.w;
        }
#else
        if (X4) {
            uint n4 = uint(x4.length());
            [[unroll]] for (uint i = 0u; i < CE; i += 4u) {
                vec4 v = x4[min((base + i) / 4u, n4 - 1u)];
                xv[m][i] = v.x, xv[m][i + 1u] = v.y, xv[m][i + 2u] = v.z, xv[m][i + 3u] = v.w;
            }
        } else {
            uint n1 = uint(x.length());
            [[unroll]] for (uint i = 0u; i < CE; i++) xv[m][i] = x[min(base + i, n1 - 1u)];
        }
#endif
    }
}

// Per type: prep_x() derives x sums the dot needs (after load_x);
// load_chunk(row_base, c, nvalid) stages chunk c of the row starting at
// binding byte row_base, zeroing values past the row's end (nvalid < CE
// happens for plain types only); dot(m, c) is the chunk's dot product with
// x row m.
#if defined(DATA_A_Q4_0)
float xs[NM]; // sum of x over the block (the -8 offset)
void prep_x() {
    [[unroll]] for (uint m = 0u; m < NM; m++) {
        float s = 0.0;
        [[unroll]] for (uint j = 0u; j < 32u; j++) s += xv[m][j];
        xs[m] = s;
    }
}
void load_chunk(uint row_base, uint c, uint nvalid) LOAD_BYTES(0u, row_base + 18u * c, 18u)
float dot(uint m, uint c) {
    float s = 0.0;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        uint q = b16(2u + 4u * i) | (b16(4u + 4u * i) << 16);
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            s += float((q >> (8u * j)) & 15u) * xv[m][4u * i + j];
            s += float((q >> (8u * j + 4u)) & 15u) * xv[m][16u + 4u * i + j];
        }
    }
    return lgpu_half_to_float(b16(0u)) * (s - 8.0 * xs[m]);
}

#elif defined(DATA_A_Q8_0)
void prep_x() {}
void load_chunk(uint row_base, uint c, uint nvalid) LOAD_BYTES(0u, row_base + 34u * c, 34u)
float dot(uint m, uint c) {
    float s = 0.0;
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        int q = int(b16(2u + 4u * i) | (b16(4u + 4u * i) << 16));
        [[unroll]] for (uint j = 0u; j < 4u; j++) s += float(bitfieldExtract(q, int(8u * j), 8)) * xv[m][4u * i + j];
    }
    return lgpu_half_to_float(b16(0u)) * s;
}

#elif defined(DATA_A_Q4_K)
// chunk c: super-block c / 4, sub-blocks 2 (c % 4) and 2 (c % 4) + 1 (low and
// high nibbles of qs[32 (c % 4) ...]); wu[0..3] = d, dmin, scales; wu[4..11] = qs
float xs[NM][2];
void prep_x() {
    [[unroll]] for (uint m = 0u; m < NM; m++)
        [[unroll]] for (uint h = 0u; h < 2u; h++) {
            float s = 0.0;
            [[unroll]] for (uint j = 0u; j < 32u; j++) s += xv[m][32u * h + j];
            xs[m][h] = s;
        }
}
void load_chunk(uint row_base, uint c, uint nvalid) {
    uint sb = row_base + 144u * (c / 4u);
    LOAD_BYTES(0u, sb, 16u)
    LOAD_BYTES(4u, sb + 16u + 32u * (c % 4u), 32u)
}
// ggml get_scale_min_k4 for sub-block j (dynamic): x (scale), y (min)
uvec2 scale_min(uint j) {
    uint sh = 8u * (j % 4u);
    uint a = wu[1] >> sh, b = wu[2] >> sh, hi = wu[3] >> sh; // scales[j%4], scales[4+j%4], scales[8+j%4]
    uvec2 lo = uvec2(a & 63u, b & 63u);
    uvec2 up = uvec2((hi & 15u) | (((a >> 6) & 3u) << 4), ((hi >> 4) & 15u) | (((b >> 6) & 3u) << 4));
    return j < 4u ? lo : up;
}
float dot(uint m, uint c) {
    float s0 = 0.0, s1 = 0.0;
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        uint q = wu[4u + i];
        [[unroll]] for (uint k = 0u; k < 4u; k++) {
            s0 += float((q >> (8u * k)) & 15u) * xv[m][4u * i + k];
            s1 += float((q >> (8u * k + 4u)) & 15u) * xv[m][32u + 4u * i + k];
        }
    }
    float d = lgpu_half_to_float(b16(0u)), dmin = lgpu_half_to_float(b16(2u));
    uvec2 sm0 = scale_min(2u * (c % 4u)), sm1 = scale_min(2u * (c % 4u) + 1u);
    return (d * float(sm0.x)) * s0 - (dmin * float(sm0.y)) * xs[m][0] + (d * float(sm1.x)) * s1 -
           (dmin * float(sm1.y)) * xs[m][1];
}

#elif defined(DATA_A_Q6_K)
// chunk c: half c % 2 of super-block c / 2. wu[0..15] = ql[64h ..], wu[16..23] =
// qh[32h ..], wu[24..25] = scales[8h ..], wu[26] = d
float xs[NM][8]; // per-16 sums of x (the -32 offset)
void prep_x() {
    [[unroll]] for (uint m = 0u; m < NM; m++)
        [[unroll]] for (uint b = 0u; b < 8u; b++) {
            float s = 0.0;
            [[unroll]] for (uint j = 0u; j < 16u; j++) s += xv[m][16u * b + j];
            xs[m][b] = s;
        }
}
void load_chunk(uint row_base, uint c, uint nvalid) {
    uint sb = row_base + 210u * (c / 2u), h = c % 2u;
    LOAD_BYTES(0u, sb + 64u * h, 64u)
    LOAD_BYTES(16u, sb + 128u + 32u * h, 32u)
    LOAD_BYTES(24u, sb + 192u + 8u * h, 8u)
    LOAD_BYTES(26u, sb + 208u, 2u)
}
float dot(uint m, uint c) {
    float d = lgpu_half_to_float(b16(104u));
    float acc = 0.0;
    [[unroll]] for (uint g = 0u; g < 8u; g++) { // 16 values: quarter g / 2, positions 16 (g % 2) ..
        uint quarter = g / 2u, lo0 = 16u * (g % 2u);
        float s = 0.0;
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint ql = wu[((quarter % 2u) * 32u + lo0) / 4u + i] >> (4u * (quarter / 2u));
            uint qh = wu[16u + lo0 / 4u + i] >> (2u * quarter);
            [[unroll]] for (uint k = 0u; k < 4u; k++) {
                uint q = ((ql >> (8u * k)) & 15u) | (((qh >> (8u * k)) & 3u) << 4);
                s += float(q) * xv[m][quarter * 32u + lo0 + 4u * i + k];
            }
        }
        float sc = float(bitfieldExtract(int(b8(96u + quarter * 2u + g % 2u)), 0, 8));
        acc += (d * sc) * (s - 32.0 * xs[m][quarter * 2u + g % 2u]);
    }
    return acc;
}

#elif defined(QUANT_FLAT)
// NF4 (blocks of 64 in the tensor's flattened order). Chunk c of the row
// starting at binding value row_e: values f .. f + 63, f = row_e + 64 c,
// in block b = f / 64 from its index byte h = (f % 64) / 2 on and, when h >
// 0 (64 does not divide K), in block b + 1. Two runs of 32 index bytes are
// staged, A (wu[0..7]) from block b's byte h and B (wu[8..15], only when h >
// 0) shifted so that its byte t is block b + 1's byte t - (32 - h): byte t of
// the chunk comes from A below T = 32 - h, from B above. wu[16], wu[17]: the
// two blocks' scale fields. The 64 weights are decoded once per chunk and
// row into wf (rounded to the compute type, zero past the row), which every
// x row's dot then reads.
float wf[CE];
void prep_x() {}
void load_chunk(uint row_e, uint c, uint nvalid) {
    uint f = row_e + CE * c, b = f >> 6, h = (f & 63u) >> 1, base = b * QUANT_BYTES;
    bool two = h != 0u && nvalid > CE - 2u * h; // values of block b + 1 in the row
    LOAD_BYTES(0u, base + NF4_QS + h, 32u)
#if defined(DATA_A_NF4)
    LOAD_BYTES(16u, base, 1u)
#else
    LOAD_BYTES(16u, base, 4u)
#endif
    if (two) {
        LOAD_BYTES(8u, base + QUANT_BYTES + NF4_QS + h - 32u, 32u)
#if defined(DATA_A_NF4)
        LOAD_BYTES(17u, base + QUANT_BYTES, 1u)
#else
        LOAD_BYTES(17u, base + QUANT_BYTES, 4u)
#endif
    }
#if defined(DATA_A_NF4)
    float a0 = nf4_dq_absmax(wu[16] & 255u, b), a1 = two ? nf4_dq_absmax(wu[17] & 255u, b + 1u) : a0;
#else
    float a0 = uintBitsToFloat(wu[16]), a1 = two ? uintBitsToFloat(wu[17]) : a0;
#endif
    uint T = two ? 32u - h : 32u;
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        uint lo = 4u * i;
        uint m = T <= lo ? 0xffffffffu : (T >= lo + 4u ? 0u : 0xffffffffu << (8u * (T - lo)));
        uint ww = (wu[i] & ~m) | ((two ? wu[8u + i] : 0u) & m);
        [[unroll]] for (uint k = 0u; k < 4u; k++) {
            uint t = lo + k, byte = (ww >> (8u * k)) & 255u;
            float a = t < T ? a0 : a1;
            wf[2u * t] = 2u * t < nvalid ? nf4_value(byte >> 4, a) : 0.0;
            wf[2u * t + 1u] = 2u * t + 1u < nvalid ? nf4_value(byte & 15u, a) : 0.0;
        }
    }
}
float dot(uint m, uint c) {
    float s = 0.0;
    [[unroll]] for (uint i = 0u; i < CE; i++) s += wf[i] * xv[m][i];
    return s;
}

#elif defined(DATA_A_F32)
void prep_x() {}
void load_chunk(uint row_base, uint c, uint nvalid) {
    LOAD_BYTES(0u, row_base + 128u * c, 128u)
    if (nvalid < CE) // the row's last chunk: values past K are another row's, or not there
        [[unroll]] for (uint i = 0u; i < 32u; i++) wu[i] = i < nvalid ? wu[i] : 0u;
}
float dot(uint m, uint c) {
    float s = 0.0;
    [[unroll]] for (uint i = 0u; i < 32u; i++) s += uintBitsToFloat(wu[i]) * xv[m][i];
    return s;
}

#else // F16, BF16: two values per word
void prep_x() {}
void load_chunk(uint row_base, uint c, uint nvalid) {
    LOAD_BYTES(0u, row_base + 64u * c, 64u)
    if (nvalid < CE)
        [[unroll]] for (uint i = 0u; i < 16u; i++)
            wu[i] &= 2u * i + 1u < nvalid ? 0xffffffffu : (2u * i < nvalid ? 0xffffu : 0u);
}
float dot(uint m, uint c) {
    float s = 0.0;
    [[unroll]] for (uint i = 0u; i < 16u; i++) {
#if defined(DATA_A_F16)
        vec2 v = unpackHalf2x16(wu[i]);
#else
        vec2 v = vec2(uintBitsToFloat(wu[i] << 16), uintBitsToFloat(wu[i] & 0xffff0000u));
#endif
        s += v.x * xv[m][2u * i] + v.y * xv[m][2u * i + 1u];
    }
    return s;
}
#endif

shared float red[NSG][NR * NM];

void main() {
    uint wg = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint n0 = wg * NR, m0 = gl_WorkGroupID.z * NM;
    if (n0 >= p.N) return; // whole workgroup: uniform
    uint lane = gl_LocalInvocationID.x, nlanes = gl_WorkGroupSize.x;
    uint row_bytes = (p.K / QUANT_K) * QUANT_BYTES;
    uint nchunks = (p.K + CE - 1u) / CE;
#ifdef W_TEXEL
    wlen = uint(textureSize(wt));
#else
    wlen = uint(w.length());
#endif
#ifdef QUANT_FLAT
    nf4_block0 = p.row_offset * p.K / 64u; // the op layer splits W at block boundaries
#endif

    float acc[NR * NM];
    [[dont_unroll]] for (uint i = 0u; i < NR * NM; i++) acc[i] = 0.0;

    // Default: lanes split the chunks of every row (one loop step = WG
    // chunks). LANE_ROWS (few chunks per row, e.g. K = 288: 9 chunks would
    // leave 7 of 8 lanes idle in a second step): every lane walks all chunks
    // of its own rows n0 + lane + WG * j, no reduction.
    const uint cstep = LANE_ROWS ? 1u : nlanes, nrl = LANE_ROWS ? NR / nlanes : NR;
    [[dont_unroll]] for (uint c0 = 0u; c0 < nchunks; c0 += cstep) {
        uint c = LANE_ROWS ? c0 : min(c0 + lane, nchunks - 1u);
        bool live = LANE_ROWS || c0 + lane < nchunks;
        uint nvalid = min(CE, p.K - c * CE);
        load_x(m0, c * CE);
        prep_x();
        [[dont_unroll]] for (uint r = 0u; r < nrl; r++) {
            uint n = LANE_ROWS ? n0 + lane + nlanes * r : n0 + r;
#ifdef QUANT_FLAT
            load_chunk(min(n, p.N - 1u) * p.K, c, nvalid); // NF4: the row's first value, not byte
#else
            load_chunk(min(n, p.N - 1u) * row_bytes, c, nvalid);
#endif
            [[unroll]] for (uint m = 0u; m < NM; m++) {
                float v = dot(m, c);
                acc[r * NM + m] += live ? v : 0.0;
            }
        }
    }

    if (LANE_ROWS) {
        [[dont_unroll]] for (uint i = 0u; i < nrl * NM; i++) {
            uint r = i / NM, m = i % NM, n = n0 + lane + nlanes * r;
            if (n < p.N && m0 + m < p.M) {
                uint o = (m0 + m) * p.y_stride + p.row_offset + n;
                y[o] = (p.accumulate != 0u ? y[o] : 0.0) + acc[i];
            }
        }
        return;
    }

    [[dont_unroll]] for (uint i = 0u; i < NR * NM; i++) acc[i] = subgroupAdd(acc[i]);
    if (NSG > 1u) {
        if (gl_SubgroupInvocationID == 0u) {
            [[dont_unroll]] for (uint i = 0u; i < NR * NM; i++) red[gl_SubgroupID][i] = acc[i];
        }
        barrier();
        [[dont_unroll]] for (uint i = lane; i < NR * NM; i += nlanes) {
            float s = 0.0;
            for (uint g = 0u; g < NSG; g++) s += red[g][i];
            acc[i] = s;
        }
    }
    // every lane holds every sum (one subgroup), or the sums lane, lane + WG, ...
    // (several): either way lane l writes those
    [[dont_unroll]] for (uint i = lane; i < NR * NM; i += nlanes) {
        uint r = i / NM, m = i % NM;
        if (n0 + r < p.N && m0 + m < p.M) {
            uint o = (m0 + m) * p.y_stride + p.row_offset + n0 + r;
            y[o] = (p.accumulate != 0u ? y[o] : 0.0) + acc[i];
        }
    }
}
