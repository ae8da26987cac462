// F16 KV cache elements (kv_store.comp, attention.comp with -DKV_F16).
//
// f32_to_f16 rounds to nearest even exactly like the C twin's
// lgpu_f32_to_f16 (engine/quant/quant.c), in integer arithmetic, because
// packHalf2x16's rounding is implementation-defined and the pools the twin
// and the shader write must be equal bit for bit. unpackHalf2x16 is exact.

uint f32_to_f16(float f) {
    uint x = floatBitsToUint(f);
    uint sign = (x >> 16) & 0x8000u;
    uint ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00u | ((ax >> 13) & 0x3ffu); // NaN: quiet, top payload bits
    if (ax >= 0x477ff000u) return sign | 0x7c00u;                       // >= 65520 rounds to inf
    if (ax >= 0x38800000u) {                                             // normal f16
        uint r = ax - 0x38000000u;                                       // rebias exponent 127 -> 15
        r += 0xfffu + ((r >> 13) & 1u);                                  // round to nearest even
        return sign | (r >> 13);
    }
    if (ax <= 0x33000000u) return sign;                                  // <= 2^-25 rounds to 0
    uint e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;                 // subnormal f16
    uint shift = 126u - e;                                               // 14..24
    uint q = m >> shift, rem = m & ((1u << shift) - 1u), half_ = 1u << (shift - 1u);
    if (rem > half_ || (rem == half_ && (q & 1u) == 1u)) q++;
    return sign | q;
}

// Two values as the uint holding them (the first in the low half).
uint pack_f16x2(float a, float b) { return f32_to_f16(a) | (f32_to_f16(b) << 16); }

// Four values (8 bytes) widened to a vec4.
vec4 unpack_f16x4(uvec2 u) { return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y)); }
