// Weight/embedding block layouts for shaders, mirroring engine/quant/quant.h
// (GGUF/ggml layouts, byte for byte) and engine/quant/nf4.h. Select one type
// with a define:
//   DATA_A_F32, DATA_A_F16, DATA_A_BF16, DATA_A_Q8_0, DATA_A_Q4_0, DATA_A_Q4_K, DATA_A_Q6_K,
//   DATA_A_NF4, DATA_A_NF4_NODQ
//
// Always provided:
//   QUANT_K       elements per block (1 for F32/F16/BF16)
//   QUANT_BYTES   bytes per block
//   block_a       the block type (a scalar type for the plain types)
//
// Dequantization API: define A_BINDING (binding number, set 0) before the
// #include and this file declares
//   layout(binding = A_BINDING) readonly buffer ... { block_a data_a[]; };
// plus
//   float dequant1(uint ib, uint i)   element i (< QUANT_K) of block ib
//   vec4  dequant4(uint ib, uint i)   elements i .. i+3 of block ib (i % 4 == 0;
//                                     for plain types: elements ib+i .. ib+i+3)
// Block indices count from the start of the binding, so a row r of K
// elements starts at block r * (K / QUANT_K).
//
// NF4 (QUANT_FLAT defined): blocks of 64 run across rows, so dequant1 and
// dequant4 take the element's index e in the binding's flattened values
// (row r, column k: r * K + k) and i is added to it. The per-tensor side
// table (lgpu_nf4_side) is declared at binding NF4_SIDE_BINDING (default 3),
// the compute type is the specialization constant NF4_CT_ID (the shader
// defines it: its own constants come first), and main() sets nf4_block0,
// the binding's first block in the tensor (row_offset * K / 64).
//
// Needs storageBuffer16BitAccess (F16, BF16, and the f16 scales of the
// quantized types) and storageBuffer8BitAccess (Q8_0, Q4_0, Q4_K, Q6_K); the
// extensions are enabled here.
#ifndef LGPU_TYPES_GLSL
#define LGPU_TYPES_GLSL

#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

// f16 / bf16 bit patterns (in the low 16 bits of u) to float, without
// needing shaderFloat16 arithmetic.
float lgpu_half_to_float(uint u) { return unpackHalf2x16(u).x; }
float lgpu_bf16_to_float(uint u) { return uintBitsToFloat(u << 16); }

#if defined(DATA_A_F32)
#define QUANT_K 1
#define QUANT_BYTES 4
#define block_a float

#elif defined(DATA_A_F16)
#define QUANT_K 1
#define QUANT_BYTES 2
#define block_a uint16_t

#elif defined(DATA_A_BF16)
#define QUANT_K 1
#define QUANT_BYTES 2
#define block_a uint16_t

#elif defined(DATA_A_Q8_0)
// x[i] = d * qs[i]
#define QUANT_K 32
#define QUANT_BYTES 34
struct block_a {
    uint16_t d; // f16 bits
    int8_t qs[32];
};

#elif defined(DATA_A_Q4_0)
// x[i] = d * (((qs[i % 16] >> (4 * (i / 16))) & 15) - 8)
#define QUANT_K 32
#define QUANT_BYTES 18
struct block_a {
    uint16_t d; // f16 bits
    uint8_t qs[16];
};

#elif defined(DATA_A_Q4_K)
// 8 sub-blocks of 32 values: x = d*sc[j]*q - dmin*m[j], 6-bit sc/m packed in scales
#define QUANT_K 256
#define QUANT_BYTES 144
struct block_a {
    uint16_t d, dmin; // f16 bits
    uint8_t scales[12];
    uint8_t qs[128];
};

#elif defined(DATA_A_Q6_K)
// 16 sub-blocks of 16 values: x = d*scales[j]*(q - 32), q 6-bit split in ql (low 4) / qh (high 2)
#define QUANT_K 256
#define QUANT_BYTES 210
struct block_a {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d; // f16 bits
};

#elif defined(DATA_A_NF4) || defined(DATA_A_NF4_NODQ)
// bitsandbytes' NF4 (engine/quant/nf4.h): 64 values per block in the
// tensor's flattened order; qs[j] holds values 2j (high nibble), 2j + 1 (low)
#define QUANT_K 64
#define QUANT_FLAT 1
#if defined(DATA_A_NF4)
#define QUANT_BYTES 33
#define NF4_QS 1u // offset of qs in the block
struct block_a {
    uint8_t qabsmax; // index into the dynamic map: absmax = code8 * absmax2[group] + offset
    uint8_t qs[32];
};
#else
#define QUANT_BYTES 36
#define NF4_QS 4u
struct block_a {
    float absmax;
    uint8_t qs[32];
};
#endif

#else
#error "types.glsl: define one of DATA_A_F32, DATA_A_F16, DATA_A_BF16, DATA_A_Q8_0, DATA_A_Q4_0, DATA_A_Q4_K, DATA_A_Q6_K, DATA_A_NF4, DATA_A_NF4_NODQ"
#endif

#ifdef QUANT_FLAT
#include "kv_f16.glsl" // f32_to_f16: round to nearest even in integers, as the C twin

#ifndef NF4_SIDE_BINDING
#define NF4_SIDE_BINDING 3
#endif
layout(constant_id = NF4_CT_ID) const uint NF4_COMPUTE = 0u; // LGPU_TYPE_F32 (0), F16 (1), BF16 (30)

// lgpu_nf4_side
layout(binding = NF4_SIDE_BINDING) readonly buffer LgpuNf4Side {
    uint compute_type;
    float offset;
    uint n_blocks, n_groups;
    float code8[256]; // the dynamic map (a constant array here would be copied per invocation)
    float absmax2[];  // per 256 blocks of the tensor (double quantization)
} nf4_side;

uint nf4_block0 = 0u; // the binding's first block in the tensor: main() sets it

// lgpu_nf4_code (bitsandbytes' code book), as bits
const uint NF4_CODE_BITS[16] = uint[](
    0xbf800000u, 0xbf3239b1u, 0xbf066b30u, 0xbeca32a0u, 0xbe91a24du, 0xbe3d353fu, 0xbdba7871u, 0x00000000u,
    0x3da2faffu, 0x3e24cae3u, 0x3e7c04ddu, 0x3ead033au, 0x3ee1a4b8u, 0x3f1007abu, 0x3f3913b3u, 0x3f800000u
);

// A binary tree of selects over the index bits, not an indexed constant
// array: drivers such as llvmpipe copy such an array into private memory in
// every invocation (seconds more to compile, a gather per value to run).
float nf4_code(uint q) {
    bool b0 = (q & 1u) != 0u, b1 = (q & 2u) != 0u, b2 = (q & 4u) != 0u, b3 = (q & 8u) != 0u;
    uint l0 = b0 ? NF4_CODE_BITS[1] : NF4_CODE_BITS[0], l1 = b0 ? NF4_CODE_BITS[3] : NF4_CODE_BITS[2];
    uint l2 = b0 ? NF4_CODE_BITS[5] : NF4_CODE_BITS[4], l3 = b0 ? NF4_CODE_BITS[7] : NF4_CODE_BITS[6];
    uint l4 = b0 ? NF4_CODE_BITS[9] : NF4_CODE_BITS[8], l5 = b0 ? NF4_CODE_BITS[11] : NF4_CODE_BITS[10];
    uint l6 = b0 ? NF4_CODE_BITS[13] : NF4_CODE_BITS[12], l7 = b0 ? NF4_CODE_BITS[15] : NF4_CODE_BITS[14];
    uint m0 = b1 ? l1 : l0, m1 = b1 ? l3 : l2, m2 = b1 ? l5 : l4, m3 = b1 ? l7 : l6;
    uint n0 = b2 ? m1 : m0, n1 = b2 ? m3 : m2;
    return uintBitsToFloat(b3 ? n1 : n0);
}

// The dequantized absmax of block b of the binding from its 8-bit code:
// dequantize_blockwise, then + offset, two float32 roundings (precise: no
// fused multiply-add, as in the twin).
float nf4_dq_absmax(uint qabs, uint b) {
    precise float s = nf4_side.code8[qabs] * nf4_side.absmax2[(nf4_block0 + b) / 256u];
    precise float a = s + nf4_side.offset;
    return a;
}

// w = code * absmax, rounded to the compute type (bitsandbytes dequantizes
// to the compute dtype before the matmul)
float nf4_value(uint q, float absmax) {
    precise float w = nf4_code(q) * absmax;
    if (NF4_COMPUTE == 1u) return unpackHalf2x16(f32_to_f16(w)).x;
    if (NF4_COMPUTE == 30u) {
        uint u = floatBitsToUint(w);
        return uintBitsToFloat((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);
    }
    return w;
}
#endif // QUANT_FLAT

#ifdef A_BINDING
layout(binding = A_BINDING) readonly buffer LgpuDataA { block_a data_a[]; };

#if defined(DATA_A_Q4_K)
// ggml get_scale_min_k4: 6-bit scale and min of sub-block j (0..7)
uvec2 lgpu_q4_k_scale_min(uint ib, uint j) {
    if (j < 4)
        return uvec2(uint(data_a[ib].scales[j]) & 63u, uint(data_a[ib].scales[j + 4]) & 63u);
    uint a = uint(data_a[ib].scales[j + 4]);
    return uvec2((a & 15u) | ((uint(data_a[ib].scales[j - 4]) >> 6) << 4),
                 (a >> 4) | ((uint(data_a[ib].scales[j]) >> 6) << 4));
}
#endif

#ifdef QUANT_FLAT
float nf4_block_absmax(uint b) {
#if defined(DATA_A_NF4)
    return nf4_dq_absmax(uint(data_a[b].qabsmax), b);
#else
    return data_a[b].absmax;
#endif
}

uint nf4_index(uint e) {
    uint byte = uint(data_a[e >> 6].qs[(e & 63u) >> 1]);
    return (e & 1u) != 0u ? byte & 15u : byte >> 4;
}
#endif

float dequant1(uint ib, uint i) {
#if defined(QUANT_FLAT)
    uint e = ib + i;
    return nf4_value(nf4_index(e), nf4_block_absmax(e >> 6));
#elif defined(DATA_A_F32)
    return data_a[ib + i];
#elif defined(DATA_A_F16)
    return lgpu_half_to_float(uint(data_a[ib + i]));
#elif defined(DATA_A_BF16)
    return lgpu_bf16_to_float(uint(data_a[ib + i]));
#elif defined(DATA_A_Q8_0)
    return lgpu_half_to_float(uint(data_a[ib].d)) * float(int(data_a[ib].qs[i]));
#elif defined(DATA_A_Q4_0)
    uint q = (uint(data_a[ib].qs[i & 15u]) >> (4u * (i >> 4))) & 15u;
    return lgpu_half_to_float(uint(data_a[ib].d)) * float(int(q) - 8);
#elif defined(DATA_A_Q4_K)
    uint j = i / 32u;               // sub-block
    uint q = uint(data_a[ib].qs[(i / 64u) * 32u + (i & 31u)]) >> (4u * (j & 1u));
    uvec2 sm = lgpu_q4_k_scale_min(ib, j);
    float d1 = lgpu_half_to_float(uint(data_a[ib].d)) * float(sm.x);
    float m1 = lgpu_half_to_float(uint(data_a[ib].dmin)) * float(sm.y);
    return d1 * float(q & 15u) - m1;
#elif defined(DATA_A_Q6_K)
    uint h = i / 128u, l = i & 127u;  // half, position in half
    uint quarter = l / 32u, lo = l & 31u;
    uint qlb = uint(data_a[ib].ql[h * 64u + (quarter & 1u) * 32u + lo]) >> (4u * (quarter >> 1));
    uint qhb = uint(data_a[ib].qh[h * 32u + lo]) >> (2u * quarter);
    int q = int((qlb & 15u) | ((qhb & 3u) << 4)) - 32;
    float d = lgpu_half_to_float(uint(data_a[ib].d)) * float(int(data_a[ib].scales[h * 8u + quarter * 2u + lo / 16u]));
    return d * float(q);
#endif
}

vec4 dequant4(uint ib, uint i) {
#if defined(QUANT_FLAT)
    // elements e .. e + 3: one block, or the end of one and the start of the next
    uint e = ib + i, b0 = e >> 6, b3 = (e + 3u) >> 6;
    float a0 = nf4_block_absmax(b0), a3 = b3 == b0 ? a0 : nf4_block_absmax(b3);
    vec4 v;
    for (uint c = 0u; c < 4u; c++) v[c] = nf4_value(nf4_index(e + c), ((e + c) >> 6) == b0 ? a0 : a3);
    return v;
#elif defined(DATA_A_Q4_0)
    float d = lgpu_half_to_float(uint(data_a[ib].d));
    uint sh = 4u * (i >> 4), o = i & 15u;
    return d * (vec4(float((uint(data_a[ib].qs[o]) >> sh) & 15u), float((uint(data_a[ib].qs[o + 1u]) >> sh) & 15u),
                     float((uint(data_a[ib].qs[o + 2u]) >> sh) & 15u), float((uint(data_a[ib].qs[o + 3u]) >> sh) & 15u)) -
                8.0);
#elif defined(DATA_A_Q8_0)
    float d = lgpu_half_to_float(uint(data_a[ib].d));
    return d * vec4(float(int(data_a[ib].qs[i])), float(int(data_a[ib].qs[i + 1u])), float(int(data_a[ib].qs[i + 2u])),
                    float(int(data_a[ib].qs[i + 3u])));
#else
    return vec4(dequant1(ib, i), dequant1(ib, i + 1u), dequant1(ib, i + 2u), dequant1(ib, i + 3u));
#endif
}
#endif // A_BINDING

#endif // LGPU_TYPES_GLSL
