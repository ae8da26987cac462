/* NF4 quantization and dequantization as bitsandbytes computes them (see
 * nf4.h; the expected bytes of tests/test_nf4.c come from the independent
 * tests/nf4/bnb_nf4_ref.py). */
#include "quant/nf4.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"

/* bitsandbytes/functional.py get_4bit_type("nf4"); csrc/kernels.cu
 * nf4_dequantization_lut holds the same values. */
const float lgpu_nf4_code[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

/* bitsandbytes/functional.py create_dynamic_map(signed=True,
 * max_exponent_bits=7, total_bits=8), sorted, as PyTorch's AVX2 CPU build
 * computes its torch.linspace (tests/nf4/bnb_nf4_ref.py derives it and
 * tests/test_nf4.c compares): 127 negative values, 0, 127 positive, 1. */
const float lgpu_nf4_dq_code[256] = {
    -0x1.fc6666p-1f, -0x1.f53332p-1f, -0x1.eep-1f, -0x1.e6ccccp-1f, -0x1.df9998p-1f, -0x1.d86666p-1f,
    -0x1.d13334p-1f, -0x1.cap-1f, -0x1.c2ccccp-1f, -0x1.bb9998p-1f, -0x1.b46666p-1f, -0x1.ad3332p-1f,
    -0x1.a6p-1f, -0x1.9eccccp-1f, -0x1.979998p-1f, -0x1.906666p-1f, -0x1.893334p-1f, -0x1.82p-1f,
    -0x1.7acccep-1f, -0x1.73999ap-1f, -0x1.6c6668p-1f, -0x1.653334p-1f, -0x1.5ep-1f, -0x1.56cccep-1f,
    -0x1.4f999ap-1f, -0x1.486666p-1f, -0x1.413334p-1f, -0x1.3ap-1f, -0x1.32ccccp-1f, -0x1.2b999ap-1f,
    -0x1.246668p-1f, -0x1.1d3334p-1f, -0x1.16p-1f, -0x1.0eccccp-1f, -0x1.07999ap-1f, -0x1.006666p-1f,
    -0x1.f26668p-2f, -0x1.e4p-2f, -0x1.d59998p-2f, -0x1.c73334p-2f, -0x1.b8ccccp-2f, -0x1.aa6664p-2f,
    -0x1.9cp-2f, -0x1.8d9998p-2f, -0x1.7f3334p-2f, -0x1.70ccccp-2f, -0x1.626664p-2f, -0x1.54p-2f,
    -0x1.459998p-2f, -0x1.373334p-2f, -0x1.28ccccp-2f, -0x1.1a6668p-2f, -0x1.0cp-2f, -0x1.fb3334p-3f,
    -0x1.de6668p-3f, -0x1.c1999ap-3f, -0x1.a4ccccp-3f, -0x1.88p-3f, -0x1.6b3332p-3f, -0x1.4e6666p-3f,
    -0x1.31999ap-3f, -0x1.14ccccp-3f, -0x1.fp-4f, -0x1.b66668p-4f, -0x1.93d70ap-4f, -0x1.8851eap-4f,
    -0x1.7ccccep-4f, -0x1.7147aep-4f, -0x1.65c29p-4f, -0x1.5a3d7p-4f, -0x1.4eb85p-4f, -0x1.433334p-4f,
    -0x1.37ae14p-4f, -0x1.2c28f6p-4f, -0x1.20a3d6p-4f, -0x1.151ebap-4f, -0x1.09999ap-4f, -0x1.fc28f4p-5f,
    -0x1.e51ebap-5f, -0x1.ce147ap-5f, -0x1.b70a3ep-5f, -0x1.ap-5f, -0x1.88f5c2p-5f, -0x1.71eb86p-5f,
    -0x1.5ae146p-5f, -0x1.43d70ap-5f, -0x1.2ccccep-5f, -0x1.15c28ep-5f, -0x1.fd70a4p-6f, -0x1.cf5c26p-6f,
    -0x1.a147aep-6f, -0x1.733334p-6f, -0x1.451eb8p-6f, -0x1.170a3ep-6f, -0x1.d1eb86p-7f, -0x1.75c29p-7f,
    -0x1.3e76c8p-7f, -0x1.2c083p-7f, -0x1.19999ap-7f, -0x1.072b02p-7f, -0x1.e978d4p-8f, -0x1.c49ba6p-8f,
    -0x1.9fbe76p-8f, -0x1.7ae148p-8f, -0x1.56041ap-8f, -0x1.3126e8p-8f, -0x1.0c49bap-8f, -0x1.ced914p-9f,
    -0x1.851eb8p-9f, -0x1.3b645ap-9f, -0x1.e353f8p-10f, -0x1.4fdf3ap-10f, -0x1.eecbfep-11f, -0x1.b3d07cp-11f,
    -0x1.78d5p-11f, -0x1.3dd982p-11f, -0x1.02de02p-11f, -0x1.8fc506p-12f, -0x1.19ce0ap-12f, -0x1.47ae16p-13f,
    -0x1.743e96p-14f, -0x1.15df66p-14f, -0x1.6f0068p-15f, -0x1.64840cp-16f, -0x1.040bfep-17f, -0x1.b43528p-19f,
    -0x1.27476ep-21f, 0x0p+0f, 0x1.27476ep-21f, 0x1.b43528p-19f, 0x1.040bfep-17f, 0x1.64840cp-16f,
    0x1.6f0068p-15f, 0x1.15df66p-14f, 0x1.743e96p-14f, 0x1.47ae16p-13f, 0x1.19ce0ap-12f, 0x1.8fc506p-12f,
    0x1.02de02p-11f, 0x1.3dd982p-11f, 0x1.78d5p-11f, 0x1.b3d07cp-11f, 0x1.eecbfep-11f, 0x1.4fdf3ap-10f,
    0x1.e353f8p-10f, 0x1.3b645ap-9f, 0x1.851eb8p-9f, 0x1.ced914p-9f, 0x1.0c49bap-8f, 0x1.3126e8p-8f,
    0x1.56041ap-8f, 0x1.7ae148p-8f, 0x1.9fbe76p-8f, 0x1.c49ba6p-8f, 0x1.e978d4p-8f, 0x1.072b02p-7f,
    0x1.19999ap-7f, 0x1.2c083p-7f, 0x1.3e76c8p-7f, 0x1.75c29p-7f, 0x1.d1eb86p-7f, 0x1.170a3ep-6f,
    0x1.451eb8p-6f, 0x1.733334p-6f, 0x1.a147aep-6f, 0x1.cf5c26p-6f, 0x1.fd70a4p-6f, 0x1.15c28ep-5f,
    0x1.2ccccep-5f, 0x1.43d70ap-5f, 0x1.5ae146p-5f, 0x1.71eb86p-5f, 0x1.88f5c2p-5f, 0x1.ap-5f,
    0x1.b70a3ep-5f, 0x1.ce147ap-5f, 0x1.e51ebap-5f, 0x1.fc28f4p-5f, 0x1.09999ap-4f, 0x1.151ebap-4f,
    0x1.20a3d6p-4f, 0x1.2c28f6p-4f, 0x1.37ae14p-4f, 0x1.433334p-4f, 0x1.4eb85p-4f, 0x1.5a3d7p-4f,
    0x1.65c29p-4f, 0x1.7147aep-4f, 0x1.7ccccep-4f, 0x1.8851eap-4f, 0x1.93d70ap-4f, 0x1.b66668p-4f,
    0x1.fp-4f, 0x1.14ccccp-3f, 0x1.31999ap-3f, 0x1.4e6666p-3f, 0x1.6b3332p-3f, 0x1.88p-3f,
    0x1.a4ccccp-3f, 0x1.c1999ap-3f, 0x1.de6668p-3f, 0x1.fb3334p-3f, 0x1.0cp-2f, 0x1.1a6668p-2f,
    0x1.28ccccp-2f, 0x1.373334p-2f, 0x1.459998p-2f, 0x1.54p-2f, 0x1.626664p-2f, 0x1.70ccccp-2f,
    0x1.7f3334p-2f, 0x1.8d9998p-2f, 0x1.9cp-2f, 0x1.aa6664p-2f, 0x1.b8ccccp-2f, 0x1.c73334p-2f,
    0x1.d59998p-2f, 0x1.e4p-2f, 0x1.f26668p-2f, 0x1.006666p-1f, 0x1.07999ap-1f, 0x1.0eccccp-1f,
    0x1.16p-1f, 0x1.1d3334p-1f, 0x1.246668p-1f, 0x1.2b999ap-1f, 0x1.32ccccp-1f, 0x1.3ap-1f,
    0x1.413334p-1f, 0x1.486666p-1f, 0x1.4f999ap-1f, 0x1.56cccep-1f, 0x1.5ep-1f, 0x1.653334p-1f,
    0x1.6c6668p-1f, 0x1.73999ap-1f, 0x1.7acccep-1f, 0x1.82p-1f, 0x1.893334p-1f, 0x1.906666p-1f,
    0x1.979998p-1f, 0x1.9eccccp-1f, 0x1.a6p-1f, 0x1.ad3332p-1f, 0x1.b46666p-1f, 0x1.bb9998p-1f,
    0x1.c2ccccp-1f, 0x1.cap-1f, 0x1.d13334p-1f, 0x1.d86666p-1f, 0x1.df9998p-1f, 0x1.e6ccccp-1f,
    0x1.eep-1f, 0x1.f53332p-1f, 0x1.fc6666p-1f, 0x1p+0f,
};

bool lgpu_type_is_nf4(int type) { return type == LGPU_TYPE_NF4 || type == LGPU_TYPE_NF4_NODQ; }

/* csrc/kernels.cu dQuantizeNF4, branch for branch: thresholds are the
 * midpoints of neighbouring code values; "x > t" goes up, so a tie goes to
 * the lower index and NaN to index 0. */
uint8_t lgpu_nf4_index(float x) {
    if (x > 0.03979014977812767f) {
        if (x > 0.3893125355243683f) {
            if (x > 0.6427869200706482f) return x > 0.8614784181118011f ? 15 : 14;
            return x > 0.5016634166240692f ? 13 : 12;
        }
        if (x > 0.2035212516784668f) return x > 0.2920137718319893f ? 11 : 10;
        return x > 0.1202552504837513f ? 9 : 8;
    }
    if (x > -0.33967943489551544f) {
        if (x > -0.13791173323988914f) return x > -0.045525018125772476f ? 7 : 6;
        return x > -0.23460740596055984f ? 5 : 4;
    }
    if (x > -0.6106329262256622f) return x > -0.4599952697753906f ? 3 : 2;
    return x > -0.8480964004993439f ? 1 : 0;
}

/* csrc/kernels.cu dQuantize<0> as written: a binary search from pivot 127
 * with steps 64 .. 1 (which can stop one off the bracketing pair), then
 * the neighbour on the far side of the midpoint. */
uint8_t lgpu_nf4_dq_index(float x) {
    const float *code = lgpu_nf4_dq_code;
    int pivot = 127, upper_pivot = 255, lower_pivot = 0;
    float lower = -1.0f, upper = 1.0f, val = code[pivot];
    for (int i = 64; i > 0; i >>= 1) {
        if (x > val) {
            lower_pivot = pivot;
            lower = val;
            pivot += i;
        } else {
            upper_pivot = pivot;
            upper = val;
            pivot -= i;
        }
        val = code[pivot];
    }
    if (upper_pivot == 255) upper = code[upper_pivot];
    if (lower_pivot == 0) lower = code[lower_pivot];
    if (x > val) {
        float midpoint = (upper + val) * 0.5f;
        return (uint8_t)(x > midpoint ? upper_pivot : pivot);
    }
    float midpoint = (lower + val) * 0.5f;
    return (uint8_t)(x < midpoint ? lower_pivot : pivot);
}

float lgpu_round_to_type(float x, int type) {
    if (type == LGPU_TYPE_F16) return lgpu_f16_to_f32(lgpu_f32_to_f16(x));
    if (type == LGPU_TYPE_BF16) return lgpu_bf16_to_f32(lgpu_f32_to_bf16(x));
    return x;
}

int64_t lgpu_nf4_blocks(int64_t n) { return n <= 0 ? 0 : (n + LGPU_NF4_BLOCK - 1) / LGPU_NF4_BLOCK; }

static size_t block_bytes(int type) {
    return type == LGPU_TYPE_NF4 ? sizeof(lgpu_block_nf4) : sizeof(lgpu_block_nf4_nodq);
}

size_t lgpu_nf4_bytes(int type, int64_t n) {
    return lgpu_type_is_nf4(type) ? (size_t)lgpu_nf4_blocks(n) * block_bytes(type) : 0;
}

static int64_t n_groups(int type, int64_t n_blocks) {
    return type == LGPU_TYPE_NF4 ? (n_blocks + LGPU_NF4_GROUP - 1) / LGPU_NF4_GROUP : 0;
}

size_t lgpu_nf4_side_bytes(int type, int64_t n) {
    if (!lgpu_type_is_nf4(type)) return 0;
    return sizeof(lgpu_nf4_side) + (size_t)n_groups(type, lgpu_nf4_blocks(n)) * sizeof(float);
}

int64_t lgpu_nf4_row_group(int64_t k) {
    int64_t a = k, b = LGPU_NF4_BLOCK;
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return k > 0 ? LGPU_NF4_BLOCK / a : 1;
}

/* Pointers to block b's scale field and indices. */
static uint8_t *block_qs(int type, void *blocks, int64_t b) {
    uint8_t *p = (uint8_t *)blocks + (size_t)b * block_bytes(type);
    return type == LGPU_TYPE_NF4 ? ((lgpu_block_nf4 *)p)->qs : ((lgpu_block_nf4_nodq *)p)->qs;
}

static int check(const char *fn, int type, int64_t n) {
    if (!lgpu_type_is_nf4(type))
        return lgpu_set_error(LGPU_EINVAL, "%s: type %s is not NF4", fn,
                              lgpu_type_name(type) ? lgpu_type_name(type) : "unknown");
    if (n < 0 || lgpu_nf4_blocks(n) > UINT32_MAX)
        return lgpu_set_error(LGPU_EINVAL, "%s: %lld values", fn, (long long)n);
    return 0;
}

int lgpu_nf4_quantize_part(int type, const float *src, int64_t n, void *blocks, float *absmax) {
    int st = check("lgpu_nf4_quantize_part", type, n);
    if (st) return st;
    for (int64_t b = 0; b * LGPU_NF4_BLOCK < n; b++) {
        const float *x = src + b * LGPU_NF4_BLOCK;
        int nv = n - b * LGPU_NF4_BLOCK < LGPU_NF4_BLOCK ? (int)(n - b * LGPU_NF4_BLOCK) : LGPU_NF4_BLOCK;
        float am = 0; /* the kernel starts from -FLT_MAX and max-reduces |x| of the zero-padded block */
        for (int i = 0; i < nv; i++) am = fmaxf(am, fabsf(x[i]));
        absmax[b] = am;
        /* 1.0f / absmax, then a product per value, as the kernel does (an
         * all-zero block: 0 * inf = NaN, index 0); the padding past a
         * partial block's end is a zero, as the kernel's load pads */
        const float inv = 1.0f / am;
        uint8_t *qs = block_qs(type, blocks, b);
        for (int j = 0; j < LGPU_NF4_BLOCK / 2; j++) {
            float v0 = 2 * j < nv ? x[2 * j] : 0.0f, v1 = 2 * j + 1 < nv ? x[2 * j + 1] : 0.0f;
            qs[j] = (uint8_t)(lgpu_nf4_index(v0 * inv) << 4 | lgpu_nf4_index(v1 * inv));
        }
    }
    return 0;
}

int lgpu_nf4_finish(int type, void *blocks, const float *absmax, int64_t n_blocks, lgpu_nf4_side *side,
                    int compute_type) {
    int st = check("lgpu_nf4_finish", type, n_blocks * LGPU_NF4_BLOCK);
    if (st) return st;
    if (compute_type != LGPU_TYPE_F32 && compute_type != LGPU_TYPE_F16 && compute_type != LGPU_TYPE_BF16)
        return lgpu_set_error(LGPU_EINVAL, "NF4: compute type %s is not f32, f16 or bf16",
                              lgpu_type_name(compute_type) ? lgpu_type_name(compute_type) : "unknown");
    side->compute_type = (uint32_t)compute_type;
    side->n_blocks = (uint32_t)n_blocks;
    side->n_groups = (uint32_t)n_groups(type, n_blocks);
    side->offset = 0;
    memcpy(side->code8, lgpu_nf4_dq_code, sizeof side->code8);
    if (type == LGPU_TYPE_NF4_NODQ) {
        for (int64_t b = 0; b < n_blocks; b++)
            ((lgpu_block_nf4_nodq *)blocks)[b].absmax = absmax[b];
        return 0;
    }
    /* offset = absmax.mean(): the exact mean rounded once (torch sums in
     * float32 in its own order, which can differ by an ulp) */
    double sum = 0;
    for (int64_t b = 0; b < n_blocks; b++) sum += absmax[b];
    const float offset = n_blocks ? (float)(sum / (double)n_blocks) : 0.0f;
    side->offset = offset;
    /* quantize_blockwise(absmax - offset, blocksize=256): per group the
     * float absmax2, then x * (1.0f / absmax2) to 8 bits (kQuantizeBlockwise
     * with General8bit; a group of equal values: 0 * inf = NaN, index 0) */
    for (int64_t g = 0; g < (int64_t)side->n_groups; g++) {
        int64_t b0 = g * LGPU_NF4_GROUP, b1 = b0 + LGPU_NF4_GROUP < n_blocks ? b0 + LGPU_NF4_GROUP : n_blocks;
        float am2 = 0;
        for (int64_t b = b0; b < b1; b++) am2 = fmaxf(am2, fabsf(absmax[b] - offset));
        side->absmax2[g] = am2;
        const float inv = 1.0f / am2;
        for (int64_t b = b0; b < b1; b++) {
            float v = absmax[b] - offset;
            ((lgpu_block_nf4 *)blocks)[b].qabsmax = lgpu_nf4_dq_index(v * inv);
        }
    }
    return 0;
}

int lgpu_nf4_quantize(int type, const float *src, int64_t n, void *blocks, lgpu_nf4_side *side, int compute_type) {
    int st = check("lgpu_nf4_quantize", type, n);
    if (st) return st;
    int64_t nb = lgpu_nf4_blocks(n);
    float *absmax = malloc((size_t)(nb ? nb : 1) * sizeof *absmax);
    if (!absmax) return lgpu_set_error(LGPU_ENOMEM, "lgpu_nf4_quantize: %lld blocks", (long long)nb);
    st = lgpu_nf4_quantize_part(type, src, n, blocks, absmax);
    if (!st) st = lgpu_nf4_finish(type, blocks, absmax, nb, side, compute_type);
    free(absmax);
    return st;
}

float lgpu_nf4_absmax(int type, const void *blocks, const lgpu_nf4_side *side, int64_t block0, int64_t b) {
    const uint8_t *p = (const uint8_t *)blocks + (size_t)b * block_bytes(type);
    if (type == LGPU_TYPE_NF4_NODQ) {
        float a;
        memcpy(&a, p, sizeof a);
        return a;
    }
    /* dequantize_blockwise then "+= offset": two float32 roundings */
    const float scaled = side->code8[((const lgpu_block_nf4 *)p)->qabsmax] *
                         side->absmax2[(block0 + b) / LGPU_NF4_GROUP];
    return scaled + side->offset;
}

int lgpu_nf4_dequantize(int type, const void *blocks, const lgpu_nf4_side *side, int64_t block0, int64_t e0,
                        int64_t n, float *dst, bool compute) {
    int st = check("lgpu_nf4_dequantize", type, n);
    if (st) return st;
    if (e0 < 0 || block0 < 0 || !side)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_nf4_dequantize: e0 %lld, block0 %lld, side %p", (long long)e0,
                              (long long)block0, (const void *)side);
    const int ct = compute ? (int)side->compute_type : LGPU_TYPE_F32;
    int64_t e = e0, end = e0 + n;
    while (e < end) {
        int64_t b = e / LGPU_NF4_BLOCK, stop = (b + 1) * LGPU_NF4_BLOCK < end ? (b + 1) * LGPU_NF4_BLOCK : end;
        const float a = lgpu_nf4_absmax(type, blocks, side, block0, b);
        const uint8_t *qs = block_qs(type, (void *)blocks, b);
        for (; e < stop; e++) {
            int j = (int)(e % LGPU_NF4_BLOCK);
            int q = j % 2 ? qs[j / 2] & 15 : qs[j / 2] >> 4;
            float w = lgpu_nf4_code[q] * a;
            *dst++ = ct == LGPU_TYPE_F32 ? w : lgpu_round_to_type(w, ct);
        }
    }
    return 0;
}
