// Weight/embedding block layouts for shaders, mirroring engine/quant/quant.h
// (GGUF/ggml layouts, byte for byte). Select one type with a define:
//   DATA_A_F32, DATA_A_F16, DATA_A_BF16, DATA_A_Q8_0, DATA_A_Q4_0, DATA_A_Q4_K, DATA_A_Q6_K
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

#else
#error "types.glsl: define one of DATA_A_F32, DATA_A_F16, DATA_A_BF16, DATA_A_Q8_0, DATA_A_Q4_0, DATA_A_Q4_K, DATA_A_Q6_K"
#endif

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

float dequant1(uint ib, uint i) {
#if defined(DATA_A_F32)
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
#if defined(DATA_A_Q4_0)
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
