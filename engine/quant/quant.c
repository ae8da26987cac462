/* Half-precision conversions, Q8_0/Q4_0 (de)quantization and the row
 * converters' dispatch. Rounding follows ggml's reference code so files we
 * write are byte-identical to ggml's. */
#include "quant/quant.h"
#include "quant/quant_internal.h"

#include <math.h>
#include <string.h>


float lgpu_f16_to_f32(lgpu_f16 h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) { /* zero or subnormal: m * 2^-24, exact in f32 */
        float v = (float)m * 0x1p-24f;
        return lgpu_bits_f32(lgpu_f32_bits(v) | sign);
    }
    if (e == 31) return lgpu_bits_f32(sign | 0x7f800000u | (m << 13)); /* inf / NaN keeps payload */
    return lgpu_bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

lgpu_f16 lgpu_f32_to_f16(float f) {
    uint32_t x = lgpu_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: quiet, keep the top payload bits */
        return (lgpu_f16)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
    if (ax >= 0x477ff000u) return (lgpu_f16)(sign | 0x7c00); /* >= 65520 rounds to inf */
    if (ax >= 0x38800000u) {                                 /* normal f16 */
        uint32_t r = ax - 0x38000000u;                       /* rebias exponent 127 -> 15 */
        r += 0xfff + ((r >> 13) & 1);                        /* round to nearest even */
        return (lgpu_f16)(sign | (r >> 13));
    }
    if (ax <= 0x33000000u) return (lgpu_f16)sign; /* <= 2^-25 rounds (ties to even) to 0 */
    /* subnormal f16: m * 2^-24 with m = RNE(value * 2^24) */
    uint32_t e = ax >> 23, m = (ax & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e; /* 14..24 */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return (lgpu_f16)(sign | q);
}

float lgpu_bf16_to_f32(lgpu_bf16 h) { return lgpu_bits_f32((uint32_t)h << 16); }

lgpu_bf16 lgpu_f32_to_bf16(float f) {
    uint32_t x = lgpu_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (lgpu_bf16)((x >> 16) | 0x40); /* quiet NaN */
    return (lgpu_bf16)((x + 0x7fff + ((x >> 16) & 1)) >> 16);                  /* RNE; overflow -> inf */
}

/* ---- Q8_0 / Q4_0 (ggml quantize_row_q8_0_ref / quantize_row_q4_0_ref) ---- */

static void quantize_q8_0(const float *x, lgpu_block_q8_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += LGPU_QK) {
        float amax = 0;
        for (int j = 0; j < LGPU_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = lgpu_f32_to_f16(d);
        for (int j = 0; j < LGPU_QK; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

static void dequantize_q8_0(const lgpu_block_q8_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += LGPU_QK) {
        const float d = lgpu_f16_to_f32(x[i].d);
        for (int j = 0; j < LGPU_QK; j++) y[j] = x[i].qs[j] * d;
    }
}

static void quantize_q4_0(const float *x, lgpu_block_q4_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += LGPU_QK) {
        /* the signed value of largest magnitude maps to -8 exactly */
        float amax = 0, max = 0;
        for (int j = 0; j < LGPU_QK; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = lgpu_f32_to_f16(d);
        for (int j = 0; j < LGPU_QK / 2; j++) {
            const float x0 = x[j] * id, x1 = x[LGPU_QK / 2 + j] * id;
            int q0 = (int8_t)(x0 + 8.5f), q1 = (int8_t)(x1 + 8.5f); /* truncation, as ggml */
            if (q0 > 15) q0 = 15;
            if (q1 > 15) q1 = 15;
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void dequantize_q4_0(const lgpu_block_q4_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += LGPU_QK) {
        const float d = lgpu_f16_to_f32(x[i].d);
        for (int j = 0; j < LGPU_QK / 2; j++) {
            y[j] = ((x[i].qs[j] & 15) - 8) * d;
            y[j + LGPU_QK / 2] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* ---- dispatch ---- */

static int check_n(const char *what, int type, int64_t n) {
    int64_t be = lgpu_type_block_elems(type);
    if (!be || type == LGPU_TYPE_I32)
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: type %d (%s) is not a float/quantized type", what, type,
                              lgpu_type_name(type) ? lgpu_type_name(type) : "unknown");
    if (type == LGPU_TYPE_NF4 || type == LGPU_TYPE_NF4_NODQ) /* blocks run across rows; scales per tensor */
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: %s values need their tensor's side table (quant/nf4.h)", what,
                              lgpu_type_name(type));
    if (n < 0 || n % be)
        return lgpu_set_error(LGPU_EINVAL, "%s: n=%lld is not a multiple of the %s block size %lld", what,
                              (long long)n, lgpu_type_name(type), (long long)be);
    return 0;
}

int lgpu_quantize_row(int type, const float *src, void *dst, int64_t n) {
    int st = check_n("lgpu_quantize_row", type, n);
    if (st) return st;
    switch (type) {
    case LGPU_TYPE_F32: memmove(dst, src, (size_t)n * sizeof(float)); break;
    case LGPU_TYPE_F16:
        for (int64_t i = 0; i < n; i++) ((lgpu_f16 *)dst)[i] = lgpu_f32_to_f16(src[i]);
        break;
    case LGPU_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) ((lgpu_bf16 *)dst)[i] = lgpu_f32_to_bf16(src[i]);
        break;
    case LGPU_TYPE_Q8_0: quantize_q8_0(src, dst, n / LGPU_QK); break;
    case LGPU_TYPE_Q4_0: quantize_q4_0(src, dst, n / LGPU_QK); break;
    case LGPU_TYPE_Q4_K: lgpu_quantize_q4_k(src, dst, n / LGPU_QK_K); break;
    case LGPU_TYPE_Q6_K: lgpu_quantize_q6_k(src, dst, n / LGPU_QK_K); break;
    default: return lgpu_set_error(LGPU_EUNSUPPORTED, "lgpu_quantize_row: type %s", lgpu_type_name(type));
    }
    return 0;
}

int lgpu_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    int st = check_n("lgpu_dequantize_row", type, n);
    if (st) return st;
    switch (type) {
    case LGPU_TYPE_F32: memmove(dst, src, (size_t)n * sizeof(float)); break;
    case LGPU_TYPE_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = lgpu_f16_to_f32(((const lgpu_f16 *)src)[i]);
        break;
    case LGPU_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = lgpu_bf16_to_f32(((const lgpu_bf16 *)src)[i]);
        break;
    case LGPU_TYPE_Q8_0: dequantize_q8_0(src, dst, n / LGPU_QK); break;
    case LGPU_TYPE_Q4_0: dequantize_q4_0(src, dst, n / LGPU_QK); break;
    case LGPU_TYPE_Q4_K: lgpu_dequantize_q4_k(src, dst, n / LGPU_QK_K); break;
    case LGPU_TYPE_Q6_K: lgpu_dequantize_q6_k(src, dst, n / LGPU_QK_K); break;
    default: return lgpu_set_error(LGPU_EUNSUPPORTED, "lgpu_dequantize_row: type %s", lgpu_type_name(type));
    }
    return 0;
}

int lgpu_dequantize_rows(int type, const void *w, int64_t row_begin, int64_t nrows, int64_t k, float *dst) {
    int st = check_n("lgpu_dequantize_rows", type, k);
    if (st) return st;
    if (row_begin < 0 || nrows < 0)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_dequantize_rows: bad row range %lld+%lld", (long long)row_begin,
                              (long long)nrows);
    size_t rb = lgpu_type_row_bytes(type, k);
    return lgpu_dequantize_row(type, (const uint8_t *)w + (size_t)row_begin * rb, dst, nrows * k);
}

int lgpu_quantize_rows(int type, const float *src, int64_t nrows, int64_t k, void *dst) {
    int st = check_n("lgpu_quantize_rows", type, k);
    if (st) return st;
    if (nrows < 0) return lgpu_set_error(LGPU_EINVAL, "lgpu_quantize_rows: nrows=%lld", (long long)nrows);
    /* rows are contiguous and each is a whole number of blocks */
    return lgpu_quantize_row(type, src, dst, nrows * k);
}
