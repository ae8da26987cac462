/* NF4 (engine/quant/nf4.c), bitsandbytes' QLoRA quantization:
 *   - the code book and the dynamic map equal the values the independent
 *     reference tests/nf4/bnb_nf4_ref.py takes from bitsandbytes
 *     (tests/nf4/nf4_fixture.h, regenerated and compared by the
 *     'nf4_ref' test);
 *   - the index functions: every code value maps to itself, ties at the
 *     decision tree's midpoints go down, NaN goes to 0;
 *   - hand-computed blocks: the nibble order (first value high), a
 *     single-block tensor under double quantization, a two-block one;
 *   - three tensors against the bytes and floats of the reference (340
 *     values with an all-zero block, 64 x 172, 19210 values over two
 *     double-quant groups), with and without double quantization;
 *   - nearest-code rounding and the error bound of a round trip, compute
 *     types, slices at any element offset, the two-step quantizer, memory
 *     per value, errors. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/nf4.h"
#include "quant/quant_internal.h"

#include "nf4/nf4_fixture.h"

/* ------------------------------------------------------------ helpers */

static void *xalloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    assert_non_null(p);
    return p;
}

/* tests/nf4/bnb_nf4_ref.py make_input, exactly */
static uint64_t splitmix64(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float uniform(uint64_t seed, uint64_t i) {
    return (float)((int64_t)(splitmix64(seed, i) >> 40) - (1 << 23)) * 0x1p-23f;
}

static float block_scale(int64_t b) { return (float)(ldexp(1.0, (int)(b % 7) - 3) * (1 + (double)(b % 3) / 4)); }

static float *make_input(int64_t n, uint64_t seed, int zero_block) {
    float *x = xalloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) {
        float p = uniform(seed, 2 * (uint64_t)i) * uniform(seed, 2 * (uint64_t)i + 1);
        x[i] = p * block_scale(i / 64);
    }
    if (zero_block >= 0) memset(x + 64 * zero_block, 0, 64 * 4);
    return x;
}

static uint64_t fnv1a(const void *data, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ ((const uint8_t *)data)[i]) * 0x100000001b3ull;
    return h;
}

typedef struct {
    int type;
    int64_t n, nb;
    uint8_t *blocks;
    lgpu_nf4_side *side;
} tensor;

static tensor quantize(int type, const float *x, int64_t n, int ct) {
    tensor t = {type, n, lgpu_nf4_blocks(n), NULL, NULL};
    t.blocks = xalloc(lgpu_nf4_bytes(type, n));
    t.side = xalloc(lgpu_nf4_side_bytes(type, n));
    TU_OK(lgpu_nf4_quantize(type, x, n, t.blocks, t.side, ct));
    return t;
}

static void tensor_free(tensor *t) { free(t->blocks), free(t->side); }

static const uint8_t *qs_of(const tensor *t, int64_t b) {
    return t->type == LGPU_TYPE_NF4 ? ((const lgpu_block_nf4 *)t->blocks)[b].qs
                                    : ((const lgpu_block_nf4_nodq *)t->blocks)[b].qs;
}

/* bitsandbytes' packed index array: (n + 1) / 2 bytes, blocks back to back */
static uint8_t *packed(const tensor *t) {
    size_t nbytes = (size_t)(t->n + 1) / 2;
    uint8_t *p = xalloc(nbytes);
    for (size_t i = 0; i < nbytes; i++) p[i] = qs_of(t, (int64_t)i / 32)[i % 32];
    return p;
}

static float *dequant(const tensor *t, bool compute) {
    float *y = xalloc((size_t)t->n * 4);
    TU_OK(lgpu_nf4_dequantize(t->type, t->blocks, t->side, 0, 0, t->n, y, compute));
    return y;
}

static float bits_f(uint32_t u) { return lgpu_bits_f32(u); }

/* ------------------------------------------------------------ tables */

static void test_code_books(void **state) {
    (void)state;
    for (int i = 0; i < 16; i++) assert_int_equal(lgpu_f32_bits(lgpu_nf4_code[i]), fx_nf4_code[i]);
    for (int i = 0; i < 256; i++) {
        if (lgpu_f32_bits(lgpu_nf4_dq_code[i]) != fx_dq8_code[i])
            fail_msg("dynamic map entry %d: %a, reference %a", i, lgpu_nf4_dq_code[i], bits_f(fx_dq8_code[i]));
        if (i) assert_true(lgpu_nf4_dq_code[i - 1] < lgpu_nf4_dq_code[i]); /* sorted, distinct */
    }
    /* 127 negatives mirroring the positives, 0 at 127, 1.0 on top */
    for (int i = 0; i < 127; i++) assert_true(lgpu_nf4_dq_code[i] == -lgpu_nf4_dq_code[254 - i]);
    /* the side table carries the map for the shaders */
    float x[64] = {1};
    uint8_t blocks[33];
    static union {
        lgpu_nf4_side s;
        uint8_t b[sizeof(lgpu_nf4_side) + 4];
    } side;
    TU_OK(lgpu_nf4_quantize(LGPU_TYPE_NF4, x, 64, blocks, &side.s, LGPU_TYPE_F32));
    assert_memory_equal(side.s.code8, lgpu_nf4_dq_code, sizeof side.s.code8);
    assert_true(lgpu_nf4_dq_code[127] == 0.0f && lgpu_nf4_dq_code[255] == 1.0f);
    /* the NF4 values: -1 .. 1 with 0 at index 7, 7 below, 8 above */
    assert_true(lgpu_nf4_code[0] == -1.0f && lgpu_nf4_code[7] == 0.0f && lgpu_nf4_code[15] == 1.0f);
    for (int i = 1; i < 16; i++) assert_true(lgpu_nf4_code[i - 1] < lgpu_nf4_code[i]);
}

/* dQuantizeNF4: each code value maps to itself; just above a midpoint goes
 * up, the midpoint itself (the tree's float threshold) and just below go
 * down; NaN goes to 0. The thresholds are the midpoints within an ulp. */
static void test_nf4_index(void **state) {
    (void)state;
    for (int i = 0; i < 16; i++) assert_int_equal(lgpu_nf4_index(lgpu_nf4_code[i]), i);
    assert_int_equal(lgpu_nf4_index(-2.0f), 0);
    assert_int_equal(lgpu_nf4_index(2.0f), 15);
    assert_int_equal(lgpu_nf4_index(NAN), 0);
    for (int i = 0; i < 15; i++) {
        float mid = (float)(((double)lgpu_nf4_code[i] + lgpu_nf4_code[i + 1]) / 2);
        /* find the tree's threshold t: the largest float that still maps to i */
        float t = mid;
        while (lgpu_nf4_index(t) > i) t = nextafterf(t, -INFINITY);
        while (lgpu_nf4_index(nextafterf(t, INFINITY)) == i) t = nextafterf(t, INFINITY);
        assert_int_equal(lgpu_nf4_index(t), i);
        assert_int_equal(lgpu_nf4_index(nextafterf(t, INFINITY)), i + 1);
        assert_true(fabsf(t - mid) <= 2 * fabsf(nextafterf(mid, INFINITY) - mid));
    }
}

/* dQuantize over the dynamic map: every entry maps to itself, values
 * between neighbours to the nearer one, out of range to the ends. */
static void test_dq_index(void **state) {
    (void)state;
    for (int i = 0; i < 256; i++) assert_int_equal(lgpu_nf4_dq_index(lgpu_nf4_dq_code[i]), i);
    assert_int_equal(lgpu_nf4_dq_index(-1.0f), 0);
    assert_int_equal(lgpu_nf4_dq_index(1.5f), 255);
    assert_int_equal(lgpu_nf4_dq_index(NAN), 0); /* an all-equal group: 0 * inf */
    for (int i = 0; i < 255; i++) {
        float a = lgpu_nf4_dq_code[i], b = lgpu_nf4_dq_code[i + 1];
        float nearer_a = a + (b - a) * 0.25f, nearer_b = a + (b - a) * 0.75f;
        assert_int_equal(lgpu_nf4_dq_index(nearer_a), i);
        assert_int_equal(lgpu_nf4_dq_index(nearer_b), i + 1);
    }
}

/* ------------------------------------------------------------ hand blocks */

/* One block of x[i] = 2 * code[i % 16]: absmax 2, x * 0.5 is a code value
 * exactly, so the indices are 0, 1, ..., 15, 0, ... and the bytes
 * 0x01 0x23 ... 0xef (first value in the high nibble). Without double
 * quantization the block stores 2.0f and dequantizes exactly. With it,
 * the one absmax equals the offset: absmax - offset = 0, absmax2 = 0,
 * 0 * (1/0) = NaN -> code 0, and 0 * code + offset = 2 again. */
static void test_hand_block(void **state) {
    (void)state;
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = 2 * lgpu_nf4_code[i % 16];
    static const uint8_t want[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    for (int type = LGPU_TYPE_NF4; type <= LGPU_TYPE_NF4_NODQ; type++) {
        tensor t = quantize(type, x, 64, LGPU_TYPE_F32);
        for (int j = 0; j < 32; j++) assert_int_equal(qs_of(&t, 0)[j], want[j % 8]);
        if (type == LGPU_TYPE_NF4_NODQ) {
            assert_true(((lgpu_block_nf4_nodq *)t.blocks)->absmax == 2.0f);
            assert_int_equal(t.side->n_groups, 0);
        } else {
            assert_int_equal(((lgpu_block_nf4 *)t.blocks)->qabsmax, 0);
            assert_true(t.side->offset == 2.0f && t.side->absmax2[0] == 0.0f);
            assert_int_equal(t.side->n_groups, 1);
        }
        assert_int_equal(t.side->n_blocks, 1);
        float *y = dequant(&t, false);
        for (int i = 0; i < 64; i++) assert_true(y[i] == x[i]);
        free(y);
        tensor_free(&t);
    }
}

/* Two blocks with absmax 1 and 3 (their first values; the rest small):
 * offset 2, absmax - offset = -1, +1, absmax2 = 1; -1 is below the map's
 * lowest value (-0.99296875) -> code 0, +1 -> code 255 (1.0). Dequantized
 * absmax: fl(code[0] * 1) + 2 = 2 - 0.99296875 and 1 * 1 + 2 = 3. */
static void test_hand_double_quant(void **state) {
    (void)state;
    float x[128] = {0};
    x[0] = 1.0f, x[64] = -3.0f;
    x[1] = 0.5f, x[65] = 0.75f; /* scaled 0.5 -> 0.44 (12) ... / 0.25 -> 0.246 (10) */
    tensor t = quantize(LGPU_TYPE_NF4, x, 128, LGPU_TYPE_F32);
    assert_true(t.side->offset == 2.0f && t.side->absmax2[0] == 1.0f);
    assert_int_equal(((lgpu_block_nf4 *)t.blocks)[0].qabsmax, 0);
    assert_int_equal(((lgpu_block_nf4 *)t.blocks)[1].qabsmax, 255);
    assert_true(lgpu_nf4_dq_code[0] == -0x1.fc6666p-1f); /* -0.99296875 */
    assert_true(lgpu_nf4_absmax(t.type, t.blocks, t.side, 0, 0) == 2.0f - 0x1.fc6666p-1f);
    assert_true(lgpu_nf4_absmax(t.type, t.blocks, t.side, 0, 1) == 3.0f);
    assert_int_equal(qs_of(&t, 0)[0], 0xfc); /* 1.0 -> 15, 0.5 -> 12 (0.4407) */
    assert_int_equal(qs_of(&t, 1)[0], 0x0a); /* -1 -> 0, 0.25 -> 10 (0.2461) */
    assert_int_equal(qs_of(&t, 0)[1], 0x77); /* zeros -> 7 */
    float *y = dequant(&t, false);
    const float a0 = 2.0f - 0x1.fc6666p-1f;
    assert_true(y[0] == a0 && y[1] == lgpu_nf4_code[12] * a0 && y[2] == 0.0f);
    assert_true(y[64] == -3.0f && y[65] == lgpu_nf4_code[10] * 3.0f);
    free(y);
    tensor_free(&t);
}

/* ------------------------------------------------------------ the reference */

static void test_reference_tensors(void **state) {
    (void)state;
    for (size_t c = 0; c < sizeof fx_cases / sizeof fx_cases[0]; c++) {
        const fx_case *fc = &fx_cases[c];
        float *x = make_input(fc->n, fc->seed, fc->zero_block);

        tensor t = quantize(LGPU_TYPE_NF4_NODQ, x, fc->n, LGPU_TYPE_F32);
        uint8_t *pk = packed(&t);
        float *am = xalloc((size_t)t.nb * 4);
        for (int64_t b = 0; b < t.nb; b++) am[b] = ((lgpu_block_nf4_nodq *)t.blocks)[b].absmax;
        float *y = dequant(&t, false);
        if (c == 0) {
            assert_memory_equal(pk, fx_a_packed, sizeof fx_a_packed);
            for (int64_t b = 0; b < t.nb; b++) assert_int_equal(lgpu_f32_bits(am[b]), fx_a_absmax[b]);
        }
        assert_true(fnv1a(pk, (size_t)(fc->n + 1) / 2) == fc->packed_hash);
        assert_true(fnv1a(am, (size_t)t.nb * 4) == fc->absmax_hash);
        assert_true(fnv1a(y, (size_t)fc->n * 4) == fc->deq_hash);
        free(pk), free(am), free(y);
        tensor_free(&t);

        t = quantize(LGPU_TYPE_NF4, x, fc->n, LGPU_TYPE_F32);
        pk = packed(&t);
        uint8_t *q8 = xalloc((size_t)t.nb);
        for (int64_t b = 0; b < t.nb; b++) q8[b] = ((lgpu_block_nf4 *)t.blocks)[b].qabsmax;
        y = dequant(&t, false);
        assert_true(fnv1a(pk, (size_t)(fc->n + 1) / 2) == fc->packed_hash); /* the same indices */
        assert_int_equal(lgpu_f32_bits(t.side->offset), fc->offset);
        assert_int_equal((int)t.side->n_groups, fc->n_groups);
        for (int g = 0; g < fc->n_groups; g++) assert_int_equal(lgpu_f32_bits(t.side->absmax2[g]), fc->absmax2[g]);
        if (c == 0) {
            assert_memory_equal(q8, fx_a_qabsmax, sizeof fx_a_qabsmax);
            for (int64_t i = 0; i < fc->n; i++)
                if (lgpu_f32_bits(y[i]) != fx_a_deq_dq[i])
                    fail_msg("case a value %lld: %a, reference %a", (long long)i, y[i], bits_f(fx_a_deq_dq[i]));
        }
        assert_true(fnv1a(q8, (size_t)t.nb) == fc->qabsmax_hash);
        for (int i = 0; i < 8; i++) assert_int_equal(lgpu_f32_bits(y[i]), fc->deq_dq_head[i]);
        assert_true(fnv1a(y, (size_t)fc->n * 4) == fc->deq_dq_hash);
        fprintf(stderr, "  case %s: %lld values, %lld blocks, %d groups: bytes and floats equal the reference\n",
                fc->name, (long long)fc->n, (long long)t.nb, fc->n_groups);
        free(pk), free(q8), free(y);
        tensor_free(&t);
        free(x);
    }
    /* the all-zero block of case a: index 0 (0 * inf = NaN in the kernel),
     * so it comes back as -absmax' where double quantization made absmax' != 0 */
    for (int j = 0; j < 32; j++) assert_int_equal(fx_a_packed[64 + j], 0x00);
}

/* ------------------------------------------------------------ properties */

/* Each value goes to the nearest code value of x / absmax (no double
 * quant: the stored absmax is exact), so |x - w| <= (largest gap / 2) *
 * absmax; double quantization adds |absmax' - absmax| * |code|. Logged:
 * the NMSE of both on normal-ish data. */
static void test_round_trip(void **state) {
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 77);
    const int64_t n = 64 * 1000 + 33;
    float *x = xalloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) x[i] = 0.02f * tu_rng_normal(&r);
    double max_gap = 0;
    for (int i = 0; i < 15; i++) max_gap = fmax(max_gap, lgpu_nf4_code[i + 1] - lgpu_nf4_code[i]);
    for (int type = LGPU_TYPE_NF4; type <= LGPU_TYPE_NF4_NODQ; type++) {
        tensor t = quantize(type, x, n, LGPU_TYPE_F32);
        float *y = dequant(&t, false);
        double num = 0, den = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t b = i / 64;
            double a = 0, ad = lgpu_nf4_absmax(type, t.blocks, t.side, 0, b);
            for (int64_t k = 64 * b; k < 64 * b + 64 && k < n; k++) a = fmax(a, fabs(x[k]));
            double bound = max_gap / 2 * a * (1 + 1e-6) + fabs(ad - a);
            if (fabs((double)x[i] - y[i]) > bound)
                fail_msg("%s value %lld: %g -> %g, error above %g", lgpu_type_name(type), (long long)i, x[i], y[i],
                         bound);
            if (type == LGPU_TYPE_NF4_NODQ) { /* nearest code value (ties either way) */
                double s = x[i] / a;
                int q = lgpu_nf4_index((float)(x[i] * (1.0f / (float)a)));
                for (int k = 0; k < 16; k++)
                    assert_true(fabs(s - lgpu_nf4_code[q]) <= fabs(s - lgpu_nf4_code[k]) + 1e-6);
            }
            num += ((double)x[i] - y[i]) * ((double)x[i] - y[i]), den += (double)x[i] * x[i];
        }
        fprintf(stderr, "  %s round trip of %lld normal values: NMSE %.4g\n", lgpu_type_name(type), (long long)n,
                num / den);
        assert_true(num / den < 0.02);
        free(y);
        tensor_free(&t);
    }
    free(x);
}

/* compute = true rounds each value to the side table's compute type */
static void test_compute_types(void **state) {
    (void)state;
    float *x = make_input(1000, 9, -1);
    const int cts[] = {LGPU_TYPE_F32, LGPU_TYPE_F16, LGPU_TYPE_BF16};
    for (int i = 0; i < 3; i++) {
        tensor t = quantize(LGPU_TYPE_NF4, x, 1000, cts[i]);
        assert_int_equal(t.side->compute_type, (uint32_t)cts[i]);
        float *raw = dequant(&t, false), *ct = dequant(&t, true);
        size_t changed = 0;
        for (int k = 0; k < 1000; k++) {
            float want = cts[i] == LGPU_TYPE_F16   ? lgpu_f16_to_f32(lgpu_f32_to_f16(raw[k]))
                         : cts[i] == LGPU_TYPE_BF16 ? lgpu_bf16_to_f32(lgpu_f32_to_bf16(raw[k]))
                                                   : raw[k];
            assert_int_equal(lgpu_f32_bits(ct[k]), lgpu_f32_bits(want));
            changed += ct[k] != raw[k];
        }
        fprintf(stderr, "  compute type %s: %zu of 1000 values rounded\n", lgpu_type_name(cts[i]), changed);
        if (cts[i] != LGPU_TYPE_F32) assert_true(changed > 500);
        free(raw), free(ct);
        tensor_free(&t);
    }
    free(x);
}

/* Slices at any element offset (rows of an odd K cross blocks) equal the
 * whole tensor's values, also counted from a later block (block0); the
 * two-step quantizer in row groups equals the one-shot one. */
static void test_slices_and_parts(void **state) {
    (void)state;
    const int64_t K = 172, N = 40, n = K * N; /* blocks cross rows */
    float *x = make_input(n, 5, -1);
    for (int type = LGPU_TYPE_NF4; type <= LGPU_TYPE_NF4_NODQ; type++) {
        tensor t = quantize(type, x, n, LGPU_TYPE_F32);
        float *all = dequant(&t, false), *row = xalloc((size_t)K * 4);
        for (int64_t r = 0; r < N; r++) {
            TU_OK(lgpu_nf4_dequantize(type, t.blocks, t.side, 0, r * K, K, row, false));
            assert_memory_equal(row, all + r * K, (size_t)K * 4);
        }
        /* from a later row group: 16 rows of 172 = 43 blocks */
        assert_int_equal(lgpu_nf4_row_group(K), 16);
        size_t bb = lgpu_type_block_bytes(type);
        TU_OK(lgpu_nf4_dequantize(type, t.blocks + 43 * bb, t.side, 43, K + 5, 100, row, false));
        assert_memory_equal(row, all + 16 * K + K + 5, 100 * 4);
        /* two steps, 16 rows at a time */
        uint8_t *blocks = xalloc(lgpu_nf4_bytes(type, n));
        lgpu_nf4_side *side = xalloc(lgpu_nf4_side_bytes(type, n));
        float *am = xalloc((size_t)t.nb * 4);
        for (int64_t r0 = 0; r0 < N; r0 += 16) {
            int64_t rows = N - r0 < 16 ? N - r0 : 16, b0 = r0 * K / 64;
            TU_OK(lgpu_nf4_quantize_part(type, x + r0 * K, rows * K, blocks + b0 * bb, am + b0));
        }
        TU_OK(lgpu_nf4_finish(type, blocks, am, t.nb, side, LGPU_TYPE_F32));
        assert_memory_equal(blocks, t.blocks, lgpu_nf4_bytes(type, n));
        assert_memory_equal(side, t.side, lgpu_nf4_side_bytes(type, n));
        free(blocks), free(side), free(am), free(all), free(row);
        tensor_free(&t);
    }
    free(x);
}

/* 4096 x 4096: 4.127 bits a value with double quantization (bitsandbytes:
 * 4 + 8/64 + 32/(64*256), plus a 1 KB state2.code per tensor, as our side
 * table's 1040-byte header), 4.5 without. */
static void test_memory(void **state) {
    (void)state;
    const int64_t n = 4096 * 4096;
    double dq = 8.0 * (double)(lgpu_nf4_bytes(LGPU_TYPE_NF4, n) + lgpu_nf4_side_bytes(LGPU_TYPE_NF4, n)) / n;
    double nodq = 8.0 * (double)(lgpu_nf4_bytes(LGPU_TYPE_NF4_NODQ, n) + lgpu_nf4_side_bytes(LGPU_TYPE_NF4_NODQ, n)) / n;
    fprintf(stderr, "  bits per value: %.5f (double quant), %.5f (without)\n", dq, nodq);
    assert_true(fabs(dq - (4 + 8.0 / 64 + 32.0 / (64 * 256) + 8.0 * 1040 / n)) < 1e-9);
    assert_true(fabs(nodq - (4.5 + 8.0 * 1040 / n)) < 1e-9);
    assert_string_equal(lgpu_type_name(LGPU_TYPE_NF4), "nf4");
    assert_int_equal(lgpu_type_from_name("NF4"), LGPU_TYPE_NF4);
    assert_int_equal(lgpu_type_block_elems(LGPU_TYPE_NF4), 64);
    assert_int_equal(lgpu_type_block_bytes(LGPU_TYPE_NF4), 33);
    assert_int_equal(lgpu_type_block_bytes(LGPU_TYPE_NF4_NODQ), 36);
    assert_true(LGPU_TYPE_NF4 >= LGPU_TYPE_COUNT_); /* never a file's type */
}

static void test_errors(void **state) {
    (void)state;
    float x[64] = {1}, y[64];
    uint8_t blocks[36];
    static union {
        lgpu_nf4_side s;
        uint8_t b[sizeof(lgpu_nf4_side) + 4];
    } side;
    assert_int_equal(lgpu_nf4_quantize(LGPU_TYPE_Q4_0, x, 64, blocks, &side.s, LGPU_TYPE_F32), LGPU_EINVAL);
    assert_int_equal(lgpu_nf4_quantize(LGPU_TYPE_NF4, x, 64, blocks, &side.s, LGPU_TYPE_Q8_0), LGPU_EINVAL);
    assert_int_equal(lgpu_nf4_dequantize(LGPU_TYPE_NF4, blocks, NULL, 0, 0, 64, y, false), LGPU_EINVAL);
    /* the row-wise converters cannot do NF4: its scales are per tensor */
    assert_int_equal(lgpu_dequantize_row(LGPU_TYPE_NF4, blocks, y, 64), LGPU_EUNSUPPORTED);
    assert_int_equal(lgpu_quantize_row(LGPU_TYPE_NF4_NODQ, x, blocks, 64), LGPU_EUNSUPPORTED);
    assert_false(lgpu_quant_matrix_type_ok(LGPU_TYPE_NF4));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_code_books),        cmocka_unit_test(test_nf4_index),
        cmocka_unit_test(test_dq_index),          cmocka_unit_test(test_hand_block),
        cmocka_unit_test(test_hand_double_quant), cmocka_unit_test(test_reference_tensors),
        cmocka_unit_test(test_round_trip),        cmocka_unit_test(test_compute_types),
        cmocka_unit_test(test_slices_and_parts),  cmocka_unit_test(test_memory),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
