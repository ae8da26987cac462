/* Half-precision conversions and the GGUF block formats: hand-computed
 * Q8_0/Q4_0 blocks, hand-built Q4_K/Q6_K blocks, round-trip error bounds. */
#include "test_util.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant_internal.h"


/* ------------------------------------------------------------ f16 / bf16 */

static void test_f16_edges(void **state) {
    (void)state;
    assert_int_equal(lgpu_f32_to_f16(1.0f), 0x3C00);
    assert_int_equal(lgpu_f32_to_f16(-2.0f), 0xC000);
    assert_int_equal(lgpu_f32_to_f16(0.0f), 0x0000);
    assert_int_equal(lgpu_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(lgpu_f32_to_f16(65504.0f), 0x7BFF);   /* largest finite */
    assert_int_equal(lgpu_f32_to_f16(65519.99f), 0x7BFF);  /* below the rounding midpoint */
    assert_int_equal(lgpu_f32_to_f16(65520.0f), 0x7C00);   /* midpoint ties to even = inf */
    assert_int_equal(lgpu_f32_to_f16(1e10f), 0x7C00);
    assert_int_equal(lgpu_f32_to_f16(-INFINITY), 0xFC00);
    assert_int_equal(lgpu_f32_to_f16(INFINITY), 0x7C00);
    lgpu_f16 nan = lgpu_f32_to_f16(NAN);
    assert_true((nan & 0x7C00) == 0x7C00 && (nan & 0x3FF) != 0);
    /* ties to even in the normal range: 1 + 2^-11 -> 1, 1 + 3*2^-11 -> 1 + 2^-9 */
    assert_int_equal(lgpu_f32_to_f16(1.0f + 0x1p-11f), 0x3C00);
    assert_int_equal(lgpu_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3C02);
    assert_int_equal(lgpu_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);
    /* subnormals */
    assert_int_equal(lgpu_f32_to_f16(0x1p-14f), 0x0400);      /* smallest normal */
    assert_int_equal(lgpu_f32_to_f16(0x1p-24f), 0x0001);      /* smallest subnormal */
    assert_int_equal(lgpu_f32_to_f16(1023 * 0x1p-24f), 0x03FF);
    assert_int_equal(lgpu_f32_to_f16(0x1p-25f), 0x0000);      /* tie -> even (0) */
    assert_int_equal(lgpu_f32_to_f16(1.5f * 0x1p-25f), 0x0001);
    assert_int_equal(lgpu_f32_to_f16(3 * 0x1p-25f), 0x0002);  /* 1.5 ulp: tie -> even (2) */
    assert_int_equal(lgpu_f32_to_f16(-5 * 0x1p-25f), 0x8002); /* 2.5 ulp: tie -> even (2) */
    assert_int_equal(lgpu_f32_to_f16(0x1p-30f), 0x0000);
    assert_int_equal(lgpu_f32_to_f16(1023.5f * 0x1p-24f), 0x0400); /* rounds up into the normals */
    assert_int_equal(lgpu_f32_to_f16(0x1p-130f), 0x0000);         /* f32 subnormal */

    assert_true(lgpu_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(lgpu_f16_to_f32(0x03FF) == 1023 * 0x1p-24f);
    assert_true(lgpu_f16_to_f32(0x7BFF) == 65504.0f);
    assert_true(lgpu_f16_to_f32(0x3555) == 0x1.554p-2f);
    assert_true(isinf(lgpu_f16_to_f32(0x7C00)) && lgpu_f16_to_f32(0x7C00) > 0);
    assert_true(isinf(lgpu_f16_to_f32(0xFC00)) && lgpu_f16_to_f32(0xFC00) < 0);
    assert_true(isnan(lgpu_f16_to_f32(0x7E00)) && isnan(lgpu_f16_to_f32(0xFC01)));
    assert_true(signbit(lgpu_f16_to_f32(0x8000)) && lgpu_f16_to_f32(0x8000) == 0);

    /* every non-NaN half survives f16 -> f32 -> f16 */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lgpu_f16_to_f32((lgpu_f16)h);
        if (isnan(f)) {
            assert_true((h & 0x7C00) == 0x7C00 && (h & 0x3FF));
            assert_true(isnan(lgpu_f16_to_f32(lgpu_f32_to_f16(f))));
            continue;
        }
        if (lgpu_f32_to_f16(f) != h) fail_msg("f16 round trip of 0x%04x gives 0x%04x", h, lgpu_f32_to_f16(f));
    }
}

/* Rounding to nearest even checked against exact arithmetic in double for
 * random floats in the f16 range: the result must be a nearest half and,
 * on a tie, the even one. */
static void test_f16_random_rne(void **state) {
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 7);
    for (int i = 0; i < 200000; i++) {
        /* random sign/exponent in [2^-27, 2^16], random mantissa */
        uint32_t e = 100 + tu_rng_u32(&r) % 43, u = (tu_rng_u32(&r) & 0x807FFFFF) | (e << 23);
        float f = lgpu_bits_f32(u);
        lgpu_f16 h = lgpu_f32_to_f16(f);
        double got = lgpu_f16_to_f32(h);
        if (isinf(got)) {
            assert_true(fabs((double)f) >= 65520.0);
            continue;
        }
        /* neighbours of h in magnitude */
        lgpu_f16 mag = h & 0x7FFF, sgn = h & 0x8000;
        double up = mag < 0x7BFF ? lgpu_f16_to_f32((lgpu_f16)(sgn | (mag + 1))) : INFINITY;
        double dn = mag > 0 ? lgpu_f16_to_f32((lgpu_f16)(sgn | (mag - 1))) : 0;
        double err = fabs(got - f);
        assert_true(err <= fabs(up - f) && err <= fabs(dn - f));
        if (err == fabs(up - f) || (mag > 0 && err == fabs(dn - f))) assert_true((h & 1) == 0 || err == 0);
    }
}

static void test_bf16_edges(void **state) {
    (void)state;
    assert_int_equal(lgpu_f32_to_bf16(1.0f), 0x3F80);
    assert_int_equal(lgpu_f32_to_bf16(-1.0f), 0xBF80);
    assert_int_equal(lgpu_f32_to_bf16(1.0f + 0x1p-8f), 0x3F80);     /* tie -> even */
    assert_int_equal(lgpu_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82); /* tie -> even */
    assert_int_equal(lgpu_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);
    assert_int_equal(lgpu_f32_to_bf16(FLT_MAX), 0x7F80); /* rounds to inf */
    assert_int_equal(lgpu_f32_to_bf16(INFINITY), 0x7F80);
    assert_int_equal(lgpu_f32_to_bf16(-INFINITY), 0xFF80);
    assert_int_equal(lgpu_f32_to_bf16(NAN) & 0x7FC0, 0x7FC0);
    assert_int_equal(lgpu_f32_to_bf16(lgpu_bits_f32(0x7F800001)), 0x7FC0); /* signalling NaN stays NaN */
    assert_int_equal(lgpu_f32_to_bf16(lgpu_bits_f32(0x000116C2)), 0x0001); /* subnormals are kept */
    assert_int_equal(lgpu_f32_to_bf16(-0.0f), 0x8000);
    assert_true(lgpu_bf16_to_f32(0x3F80) == 1.0f);
    assert_true(lgpu_bf16_to_f32(0x0001) == lgpu_bits_f32(0x00010000));
    assert_true(isnan(lgpu_bf16_to_f32(0x7FC0)));
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lgpu_bf16_to_f32((lgpu_bf16)h);
        if (isnan(f)) continue;
        assert_int_equal(lgpu_f32_to_bf16(f), h);
        assert_int_equal(lgpu_f32_bits(f) & 0xFFFF, 0);
    }
}

/* ------------------------------------------------------------ Q8_0 / Q4_0 */

static void test_q8_0_hand(void **state) {
    (void)state;
    float x[3 * 32] = {0};
    /* block 0: amax 63.5 -> d = 0.5 (f16 0x3800), id = 2; x = 1.25 t gives
     * q = round(2.5 t): odd t are exact halves, rounded away from zero */
    x[0] = -63.5f;
    for (int j = 1; j < 32; j++) x[j] = 1.25f * (j - 16);
    /* block 1: all zero -> d = 0, q = 0 */
    /* block 2: one value 127 * 2^-20 -> d = 2^-20, an f16 subnormal (0x0010) */
    x[64 + 5] = 127 * 0x1p-20f;
    static const int8_t q0[32] = {-127, -38, -35, -33, -30, -28, -25, -23, -20, -18, -15, -13, -10, -8, -5, -3,
                                  0,    3,   5,   8,   10,  13,  15,  18,  20,  23,  25,  28,  30,  33, 35, 38};
    lgpu_block_q8_0 b[3];
    TU_OK(lgpu_quantize_row(LGPU_TYPE_Q8_0, x, b, 96));
    assert_int_equal(b[0].d, 0x3800);
    assert_memory_equal(b[0].qs, q0, 32);
    assert_int_equal(b[1].d, 0x0000);
    for (int j = 0; j < 32; j++) assert_int_equal(b[1].qs[j], 0);
    assert_int_equal(b[2].d, 0x0010);
    for (int j = 0; j < 32; j++) assert_int_equal(b[2].qs[j], j == 5 ? 127 : 0);

    float y[96];
    TU_OK(lgpu_dequantize_row(LGPU_TYPE_Q8_0, b, y, 96));
    for (int j = 0; j < 32; j++) assert_true(y[j] == 0.5f * q0[j]);
    for (int j = 32; j < 96; j++) assert_true(y[j] == (j == 69 ? 127 * 0x1p-20f : 0.0f));
}

static void test_q4_0_hand(void **state) {
    (void)state;
    float x[64] = {0};
    /* block 0: largest magnitude -8 -> d = -8/-8 = 1 (0x3C00); x = t/2 for
     * t = -15..15 gives q = trunc(t/2 + 8.5), clamped to 15 */
    x[0] = -8.0f;
    for (int j = 1; j < 32; j++) x[j] = 0.5f * (j - 16);
    /* block 1: largest magnitude +4 -> d = 4/-8 = -0.5 (0xB800); it maps to q 0, zeros to q 8 */
    x[32 + 3] = 4.0f;
    static const uint8_t qs0[16] = {0x80, 0x91, 0x91, 0xA2, 0xA2, 0xB3, 0xB3, 0xC4,
                                    0xC4, 0xD5, 0xD5, 0xE6, 0xE6, 0xF7, 0xF7, 0xF8};
    static const int q_of[32] = {0, 1, 1, 2,  2,  3,  3,  4,  4,  5,  5,  6,  6,  7,  7,  8,
                                 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15, 15};
    lgpu_block_q4_0 b[2];
    TU_OK(lgpu_quantize_row(LGPU_TYPE_Q4_0, x, b, 64));
    assert_int_equal(b[0].d, 0x3C00);
    assert_memory_equal(b[0].qs, qs0, 16);
    assert_int_equal(b[1].d, 0xB800);
    for (int j = 0; j < 16; j++) assert_int_equal(b[1].qs[j], j == 3 ? 0x80 : 0x88);

    float y[64];
    TU_OK(lgpu_dequantize_row(LGPU_TYPE_Q4_0, b, y, 64));
    for (int j = 0; j < 32; j++) assert_true(y[j] == (float)(q_of[j] - 8));
    for (int j = 32; j < 64; j++) assert_true(y[j] == (j == 35 ? 4.0f : 0.0f));
}

/* ------------------------------------------------------------ Q4_K / Q6_K */

static void test_q4_k_hand_decode(void **state) {
    (void)state;
    /* d = 1, dmin = 0.5; 6-bit scales and mins, several above 15 so the
     * high-bit packing into bytes 0..7 is exercised */
    static const int sc[8] = {1, 2, 3, 4, 17, 33, 50, 63}, mn[8] = {0, 5, 10, 63, 16, 20, 40, 1};
    lgpu_block_q4_k b;
    b.d = 0x3C00;
    b.dmin = 0x3800;
    static const uint8_t packed[12] = {0x41, 0x82, 0xC3, 0xC4, 0x40, 0x45, 0x8A, 0x3F, 0x01, 0x41, 0x82, 0x1F};
    memcpy(b.scales, packed, 12);
    /* sub-block j, element l holds q = (j + l) & 15; 32-byte group g keeps
     * sub-block 2g in the low nibbles and 2g+1 in the high nibbles */
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++) b.qs[32 * g + l] = (uint8_t)(((2 * g + l) & 15) | (((2 * g + 1 + l) & 15) << 4));
    float y[256];
    TU_OK(lgpu_dequantize_row(LGPU_TYPE_Q4_K, &b, y, 256));
    assert_true(y[0] == 0.0f);                   /* 1*0 - 0.5*0 */
    assert_true(y[32 * 3 + 0] == -19.5f);        /* 4*3 - 0.5*63 */
    assert_true(y[32 * 4 + 3] == 111.0f);        /* 17*7 - 0.5*16 */
    assert_true(y[32 * 7 + 31] == 377.5f);       /* 63*6 - 0.5*1 */
    for (int j = 0; j < 8; j++)
        for (int l = 0; l < 32; l++) assert_true(y[32 * j + l] == (float)(sc[j] * ((j + l) & 15)) - 0.5f * mn[j]);
}

static void test_q6_k_hand_decode(void **state) {
    (void)state;
    lgpu_block_q6_k b;
    int sc[16], q[256];
    b.d = 0x3400; /* 0.25 */
    for (int i = 0; i < 16; i++) b.scales[i] = (int8_t)(sc[i] = (i % 2 ? -1 : 1) * (i + 1) * 7);
    for (int i = 0; i < 256; i++) q[i] = (i * 7) & 63;
    /* per 128 values: ql[l] low nibbles of l (low) and l+64 (high), ql[l+32]
     * of l+32 and l+96; qh[l] their top two bits at shifts 0, 2, 4, 6 */
    for (int h = 0; h < 2; h++) {
        const int *Q = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            b.ql[64 * h + l] = (uint8_t)((Q[l] & 15) | ((Q[l + 64] & 15) << 4));
            b.ql[64 * h + l + 32] = (uint8_t)((Q[l + 32] & 15) | ((Q[l + 96] & 15) << 4));
            b.qh[32 * h + l] =
                (uint8_t)((Q[l] >> 4) | ((Q[l + 32] >> 4) << 2) | ((Q[l + 64] >> 4) << 4) | ((Q[l + 96] >> 4) << 6));
        }
    }
    float y[256];
    TU_OK(lgpu_dequantize_row(LGPU_TYPE_Q6_K, &b, y, 256));
    assert_true(y[0] == -56.0f);    /* 0.25 * 7 * (0 - 32) */
    assert_true(y[255] == -700.0f); /* 0.25 * -112 * (57 - 32) */
    assert_true(y[17] == -80.5f);   /* q = 119 & 63 = 55: 0.25 * -14 * (55 - 32) */
    for (int i = 0; i < 256; i++) assert_true(y[i] == 0.25f * sc[i / 16] * (q[i] - 32));
}

/* quantize -> dequantize on N(0,1) data (and the same scaled by 0.01).
 * Observed NMSE: F16 4.4e-8, BF16 2.8e-6, Q8_0 2.8e-5, Q4_0 7.4e-3,
 * Q4_K 5.3e-3 (plain min/max affine 4-bit gives ~6.1e-3), Q6_K 3.2e-4. */
static void roundtrip(int type, double max_nmse, double max_abs_rel) {
    enum { N = 256 * 64 };
    tu_rng r;
    tu_rng_seed(&r, 11 + type);
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    void *q = malloc(lgpu_type_row_bytes(type, N));
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(q);
    for (int i = 0; i < N; i++) x[i] = tu_rng_normal(&r) * (i < N / 2 ? 1.0f : 0.01f);
    TU_OK(lgpu_quantize_row(type, x, q, N));
    TU_OK(lgpu_dequantize_row(type, q, y, N));
    TU_ASSERT_NMSE(lgpu_type_name(type), y, x, N / 2, max_nmse);
    TU_ASSERT_NMSE(lgpu_type_name(type), y + N / 2, x + N / 2, N / 2, max_nmse); /* scale invariant */
    double amax = 0, emax = 0;
    for (int i = 0; i < N / 2; i++) {
        amax = fmax(amax, fabs(x[i]));
        emax = fmax(emax, fabs(x[i] - y[i]));
    }
    if (emax > max_abs_rel * amax) fail_msg("%s: max error %.3g > %.3g * max|x|", lgpu_type_name(type), emax, max_abs_rel);
    free(x);
    free(y);
    free(q);
}

static void test_roundtrip_bounds(void **state) {
    (void)state;
    /* NMSE bound, max |error| / max |x| */
    roundtrip(LGPU_TYPE_F16, 1e-7, 1e-3);
    roundtrip(LGPU_TYPE_BF16, 5e-6, 4e-3);
    roundtrip(LGPU_TYPE_Q8_0, 5e-5, 0.01);
    roundtrip(LGPU_TYPE_Q4_0, 1e-2, 0.15);
    roundtrip(LGPU_TYPE_Q4_K, 7e-3, 0.15);
    roundtrip(LGPU_TYPE_Q6_K, 5e-4, 0.05);
}

/* Degenerate inputs: zero blocks and constant blocks. */
static void test_k_quants_degenerate(void **state) {
    (void)state;
    float x[512], y[512];
    lgpu_block_q4_k b4[2];
    lgpu_block_q6_k b6[2];
    for (int i = 0; i < 256; i++) x[i] = 0.0f;
    for (int i = 256; i < 512; i++) x[i] = 3.0f;
    TU_OK(lgpu_quantize_row(LGPU_TYPE_Q4_K, x, b4, 512));
    TU_OK(lgpu_dequantize_row(LGPU_TYPE_Q4_K, b4, y, 512));
    for (int i = 0; i < 256; i++) assert_true(y[i] == 0.0f);
    for (int i = 256; i < 512; i++) assert_true(fabsf(y[i] - 3.0f) < 3.0f / 63);
    TU_OK(lgpu_quantize_row(LGPU_TYPE_Q6_K, x, b6, 512));
    TU_OK(lgpu_dequantize_row(LGPU_TYPE_Q6_K, b6, y, 512));
    for (int i = 0; i < 256; i++) assert_true(y[i] == 0.0f);
    for (int i = 256; i < 512; i++) assert_true(fabsf(y[i] - 3.0f) < 3.0f / 32);
    lgpu_block_q6_k zero;
    memset(&zero, 0xAB, sizeof zero);
    TU_OK(lgpu_quantize_row(LGPU_TYPE_Q6_K, x, &zero, 256));
    static const uint8_t zeros[sizeof(lgpu_block_q6_k)];
    assert_memory_equal(&zero, zeros, sizeof zero); /* all-zero input gives an all-zero block */
}

static void test_errors(void **state) {
    (void)state;
    float x[64] = {0};
    uint8_t buf[256];
    assert_int_equal(lgpu_quantize_row(LGPU_TYPE_Q4_0, x, buf, 33), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "multiple"));
    assert_int_equal(lgpu_dequantize_row(LGPU_TYPE_Q6_K, buf, x, 64), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "256"));
    assert_int_equal(lgpu_quantize_row(LGPU_TYPE_I32, x, buf, 4), LGPU_EUNSUPPORTED);
    assert_int_equal(lgpu_dequantize_row(77, buf, x, 4), LGPU_EUNSUPPORTED);
    assert_int_equal(lgpu_dequantize_rows(LGPU_TYPE_Q8_0, buf, 0, 1, 40, x), LGPU_EINVAL);
    TU_OK(lgpu_quantize_row(LGPU_TYPE_F16, x, buf, 7)); /* plain types take any n */
    TU_OK(lgpu_quantize_row(LGPU_TYPE_Q8_0, x, buf, 0));
}

static void test_rows_helpers(void **state) {
    (void)state;
    enum { R = 5, K = 64 };
    float x[R * K], y[2 * K], ref[R * K];
    tu_rng r;
    tu_rng_seed(&r, 3);
    tu_fill_uniform(&r, x, R * K, -1, 1);
    lgpu_block_q8_0 q[R * K / 32];
    TU_OK(lgpu_quantize_rows(LGPU_TYPE_Q8_0, x, R, K, q));
    TU_OK(lgpu_dequantize_row(LGPU_TYPE_Q8_0, q, ref, R * K));
    TU_OK(lgpu_dequantize_rows(LGPU_TYPE_Q8_0, q, 2, 2, K, y));
    assert_memory_equal(y, ref + 2 * K, sizeof y);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_edges),         cmocka_unit_test(test_f16_random_rne),
        cmocka_unit_test(test_bf16_edges),        cmocka_unit_test(test_q8_0_hand),
        cmocka_unit_test(test_q4_0_hand),         cmocka_unit_test(test_q4_k_hand_decode),
        cmocka_unit_test(test_q6_k_hand_decode),  cmocka_unit_test(test_roundtrip_bounds),
        cmocka_unit_test(test_k_quants_degenerate), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_rows_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
