/* matmul on the selected device (lavapipe in CI) against the exact C oracle
 * lgpu_ref_matmul_exact, which dequantizes the same weights and sums in
 * double: every weight type, the matrix-vector and tiled kernels, odd M, N
 * and K, accumulate and row strides, the vec kernel's shared-memory
 * reduction and partial-word tail, W spread over several buffer
 * segments, and the vec kernel's texel-buffer W build (the default on
 * lavapipe) against its storage-buffer build, with the fallback for W that
 * cannot be viewed. Each case runs 3 times and must be bit-identical (races show up
 * as differences on lavapipe). NF4 (quant/nf4.h, with its side table): both
 * types, the three compute types, K with blocks across rows, every kernel,
 * W over segments of row groups, against a double sum over the dequantized
 * values, and each kernel's dequantization bit for bit against the twin's
 * (unit-vector x). LGPU_TEST_FILTER="*nf4*" runs a subset.
 *
 * Tolerances (NMSE against the double-precision oracle on the same
 * dequantized weights): the shaders accumulate in f32, which leaves ~1e-13;
 * 1e-9 is the limit. Cooperative-matrix kernels (M > 4 on devices that have
 * them) round x and W to f16: 1e-5. The host C path quantizes x to int8
 * blocks for quantized W on AVX2 CPUs: 1e-3 there. */
#include <math.h>

#include "dev/device_impl.h"
#include "dev/dispatch.h"
#include "ops_harness.h"
#include "vk/vk.h"
#include "quant/quant.h"

static bool is_quant(int t) { return t != LGPU_TYPE_F32 && t != LGPU_TYPE_F16 && t != LGPU_TYPE_BF16; }

static double tolerance(int type, uint32_t M) {
    if (lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU) return is_quant(type) ? 1e-3 : 1e-9;
    const lgpu_dev_caps *c = lgpu_dev_caps_of(oh_dev);
    const char *path = getenv("LGPU_MATMUL_PATH");
    bool forced_other = path && *path && strcmp(path, "cm") != 0;
    if ((c->coopmat_nv || c->coopmat_khr) && !forced_other && M > 4) return 1e-5;
    return 1e-9;
}

/* N rows of K weights: uniform [-1, 1) floats converted / quantized. */
static uint8_t *make_w(int type, uint32_t N, uint32_t K, tu_rng *r) {
    size_t rb = lgpu_type_row_bytes(type, K);
    uint8_t *w = oh_alloc((size_t)N * rb);
    float *row = oh_alloc((size_t)K * 4);
    for (uint32_t n = 0; n < N; n++) {
        tu_fill_uniform(r, row, K, -1, 1);
        TU_OK(lgpu_quantize_row(type, row, w + (size_t)n * rb, K));
    }
    free(row);
    return w;
}

typedef struct {
    lgpu_buf *w, *x, *y;
    lgpu_matmul_params p;
    size_t w_off; /* W's offset in its buffer */
    const float *y0; /* y before the op (random for accumulate, NaN poison otherwise) */
    size_t y_bytes;
} mm_ctx;

static void mm_reset(oh_case *c) {
    mm_ctx *m = c->ctx;
    TU_OK(lgpu_buf_write(m->y, 0, m->y0, m->y_bytes));
}

static int mm_record(oh_case *c, lgpu_exec *ex) {
    mm_ctx *m = c->ctx;
    return lgpu_op_matmul(ex, &m->p, lgpu_ref_at(m->w, m->w_off), oh_ref(m->x), oh_ref(m->y));
}

typedef struct {
    int type;
    uint32_t M, N, K;
    uint32_t x_pad, y_pad; /* row strides K + x_pad, N + y_pad */
    bool accumulate;
    bool exact_w_size; /* W buffer of exactly N * row bytes (else rounded up to 4) */
} mm_shape;

/* Runs one case on a W already in `bw` at byte w_off (host copy `w`) and checks it. */
static void check_case_at(const mm_shape *s, const uint8_t *w, lgpu_buf *bw, size_t w_off, tu_rng *r) {
    uint32_t xs = s->K + s->x_pad, ys = s->N + s->y_pad;
    size_t xn = (size_t)s->M * xs, yn = (size_t)s->M * ys;
    float *x = oh_alloc(xn * 4), *y0 = oh_alloc(yn * 4), *want = oh_alloc(yn * 4), *got = oh_alloc(yn * 4);
    tu_fill_uniform(r, x, xn, -1, 1);
    if (s->accumulate)
        tu_fill_uniform(r, y0, yn, -1, 1);
    else
        memset(y0, 0xff, yn * 4);
    lgpu_matmul_params p = {s->M, s->N, s->K, xs, ys, s->accumulate, (uint32_t)s->type, 0};
    memcpy(want, y0, yn * 4);
    lgpu_ref_matmul_exact(&p, w, NULL, x, want);

    mm_ctx m = {bw, oh_buf(x, xn * 4), oh_buf(NULL, yn * 4), p, w_off, y0, yn * 4};
    oh_case c = {mm_reset, mm_record, m.y, yn * 4, &m};
    oh_run3(&c, got);

    /* the y columns past N (the stride gap) are untouched */
    for (uint32_t i = 0; i < s->M; i++)
        assert_memory_equal(got + (size_t)i * ys + s->N, y0 + (size_t)i * ys + s->N, (size_t)s->y_pad * 4);
    float *g = oh_alloc((size_t)s->M * s->N * 4), *e = oh_alloc((size_t)s->M * s->N * 4);
    for (uint32_t i = 0; i < s->M; i++) {
        memcpy(g + (size_t)i * s->N, got + (size_t)i * ys, (size_t)s->N * 4);
        memcpy(e + (size_t)i * s->N, want + (size_t)i * ys, (size_t)s->N * 4);
    }
    char what[96];
    snprintf(what, sizeof what, "%s M=%u N=%u K=%u%s%s", lgpu_type_name(s->type), s->M, s->N, s->K,
             s->accumulate ? " acc" : "", s->x_pad || s->y_pad ? " strided" : "");
    OH_CHECK_NMSE(what, g, e, (size_t)s->M * s->N, tolerance(s->type, s->M));
    lgpu_buf_destroy(m.x);
    lgpu_buf_destroy(m.y);
    free(x), free(y0), free(want), free(got), free(g), free(e);
}

static void check_case(const mm_shape *s, const uint8_t *w, lgpu_buf *bw, tu_rng *r) { check_case_at(s, w, bw, 0, r); }

static void run_shape(const mm_shape *s, uint64_t seed) {
    tu_rng r;
    tu_rng_seed(&r, seed);
    uint8_t *w = make_w(s->type, s->N, s->K, &r);
    size_t wb = (size_t)s->N * lgpu_type_row_bytes(s->type, s->K);
    size_t alloc = s->exact_w_size ? wb : (wb + 3) / 4 * 4;
    lgpu_buf *bw;
    TU_OK(lgpu_buf_create(oh_dev, alloc, 4, &bw));
    TU_OK(lgpu_buf_write(bw, 0, w, wb));
    check_case(s, w, bw, &r);
    lgpu_buf_destroy(bw);
    free(w);
}

/* F32 / F16 / BF16: M in {1, 2, 5, 31, 64}, each with three (N, K) pairs
 * that together visit N in {1, 31, 155, 172} and K in {31, 155, 172}. */
static void test_matmul_plain(void **state) {
    (void)state;
    const int types[] = {LGPU_TYPE_F32, LGPU_TYPE_F16, LGPU_TYPE_BF16};
    const uint32_t Ms[] = {1, 2, 5, 31, 64}, Ns[] = {1, 31, 155, 172}, Ks[] = {31, 155, 172};
    for (size_t t = 0; t < 3; t++)
        for (size_t i = 0; i < 5; i++)
            for (size_t j = 0; j < 3; j++) {
                mm_shape s = {types[t], Ms[i], Ns[(i + j) % 4], Ks[(i + 2 * j) % 3], 0, 0, false, false};
                run_shape(&s, 100 * t + 10 * i + j);
            }
}

/* Q8_0 / Q4_0 with K in {64, 160, 256}; Q4_K / Q6_K with K in {256, 512}. */
static void test_matmul_quant(void **state) {
    (void)state;
    const struct { int type; uint32_t K[3]; } types[] = {
        {LGPU_TYPE_Q8_0, {64, 160, 256}},
        {LGPU_TYPE_Q4_0, {64, 160, 256}},
        {LGPU_TYPE_Q4_K, {256, 512, 256}},
        {LGPU_TYPE_Q6_K, {256, 512, 256}},
    };
    const uint32_t Ms[] = {1, 2, 5, 31, 64}, Ns[] = {1, 31, 155, 172};
    for (size_t t = 0; t < 4; t++)
        for (size_t i = 0; i < 5; i++)
            for (size_t j = 0; j < 2; j++) {
                mm_shape s = {types[t].type, Ms[i], Ns[(i + j) % 4], types[t].K[(i + j) % 3], 0, 0, false, false};
                run_shape(&s, 1000 + 100 * t + 10 * i + j);
            }
}

/* The shared-memory tiled kernel, forced: every type, odd shapes spanning
 * several tiles, accumulate and strides. */
static void test_matmul_tiled(void **state) {
    (void)state;
    setenv("LGPU_MATMUL_PATH", "mm", 1);
    const mm_shape shapes[] = {
        {LGPU_TYPE_F32, 65, 155, 172, 0, 0, false, false}, {LGPU_TYPE_F16, 31, 172, 31, 3, 5, true, false},
        {LGPU_TYPE_BF16, 5, 31, 155, 0, 0, false, true},   {LGPU_TYPE_Q8_0, 64, 130, 160, 0, 0, false, false},
        {LGPU_TYPE_Q4_0, 70, 129, 96, 2, 1, true, false},  {LGPU_TYPE_Q4_K, 33, 65, 512, 0, 0, false, false},
        {LGPU_TYPE_Q6_K, 2, 67, 256, 0, 3, false, true},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) run_shape(&shapes[i], 2000 + i);
    unsetenv("LGPU_MATMUL_PATH");
}

/* The vec kernel with accumulate and strides, W buffers whose size is not a
 * multiple of 4 (the last word read in 16-bit halves), and its split-chunk
 * mode (the default off lavapipe) with one subgroup (subgroupAdd) and four
 * (shared-memory reduction). */
static void test_matmul_vec_variants(void **state) {
    (void)state;
    setenv("LGPU_MATMUL_PATH", "vec", 1);
    const mm_shape shapes[] = {
        {LGPU_TYPE_F32, 3, 31, 172, 1, 2, true, false},     {LGPU_TYPE_Q4_0, 1, 31, 160, 0, 0, false, true},
        {LGPU_TYPE_Q8_0, 5, 33, 96, 0, 0, true, true},      {LGPU_TYPE_Q6_K, 1, 3, 256, 0, 0, false, true},
        {LGPU_TYPE_BF16, 2, 155, 155, 0, 1, false, true},   {LGPU_TYPE_Q4_K, 9, 40, 768, 2, 0, true, false},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) run_shape(&shapes[i], 3000 + i);
    /* split-chunk mode (forced by a workgroup size): one subgroup, then four */
    for (uint32_t k = 1; k <= 4 && lgpu_dev_kind_of(oh_dev) != LGPU_DEV_CPU; k *= 4) {
        char wg[16];
        snprintf(wg, sizeof wg, "%u", k * lgpu_dev_caps_of(oh_dev)->subgroup_size);
        setenv("LGPU_MATMUL_VEC_WG", wg, 1);
        const mm_shape multi[] = {
            {LGPU_TYPE_Q4_0, 1, 70, 4096, 0, 0, false, false},
            {LGPU_TYPE_F16, 5, 31, 172, 0, 3, true, false},
            {LGPU_TYPE_Q6_K, 2, 33, 768, 0, 0, false, true},
        };
        for (size_t i = 0; i < sizeof multi / sizeof multi[0]; i++) run_shape(&multi[i], 3100 + 10 * k + i);
        unsetenv("LGPU_MATMUL_VEC_WG");
    }
    unsetenv("LGPU_MATMUL_PATH");
}

/* W over several buffer segments, one dispatch per segment. The device's
 * max binding is lowered (white box: the caps struct) so buffers of a few
 * hundred KB split; row sizes with and without 4-byte alignment. */
static void test_matmul_segments(void **state) {
    (void)state;
    if (lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU) {
        fprintf(stderr, "note: the host device has no segments\n");
        return;
    }
    lgpu_dev_caps *caps = (lgpu_dev_caps *)lgpu_dev_caps_of(oh_dev);
    const size_t saved = caps->max_binding;
    const mm_shape shapes[] = {
        {LGPU_TYPE_Q4_0, 1, 1000, 256, 0, 0, false, false}, /* 144-byte rows */
        {LGPU_TYPE_F16, 3, 300, 155, 0, 0, true, false},    /* 310-byte rows */
        {LGPU_TYPE_Q6_K, 2, 700, 256, 0, 0, false, false},  /* 210-byte rows */
    };
    for (int path = 0; path < 2; path++) {
        setenv("LGPU_MATMUL_PATH", path ? "mm" : "vec", 1);
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            const mm_shape *s = &shapes[i];
            tu_rng r;
            tu_rng_seed(&r, 4000 + i);
            uint8_t *w = make_w(s->type, s->N, s->K, &r);
            size_t rb = lgpu_type_row_bytes(s->type, s->K), wb = (size_t)s->N * rb;
            lgpu_buf *bw;
            caps->max_binding = 64 << 10;
            int st = lgpu_buf_create(oh_dev, wb, rb, &bw);
            caps->max_binding = saved;
            TU_OK(st);
            assert_true(lgpu_buf_segments(bw) >= 3);
            TU_OK(lgpu_buf_write(bw, 0, w, wb));
            check_case(s, w, bw, &r);
            lgpu_buf_destroy(bw);
            free(w);
        }
    }
    unsetenv("LGPU_MATMUL_PATH");
}

/* A real W larger than lavapipe's 128 MiB binding: 60000 x 4096 Q4_0
 * (141 MB), M = 1. Random blocks with small scales; the oracle checks the
 * rows around every segment boundary and every 97th row. */
static void test_matmul_big(void **state) {
    (void)state;
    const uint32_t N = 60000, K = 4096;
    size_t rb = lgpu_type_row_bytes(LGPU_TYPE_Q4_0, K), wb = (size_t)N * rb;
    lgpu_buf *bw;
    TU_OK(lgpu_buf_create(oh_dev, wb, rb, &bw));
    int nseg = lgpu_buf_segments(bw);
    if (nseg < 2) fprintf(stderr, "note: W fits one binding here (one segment)\n");
    uint8_t *w = oh_alloc(wb);
    uint64_t z = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i + 8 <= wb; i += 8) { /* xorshift bytes, then sane f16 scales */
        z ^= z << 13, z ^= z >> 7, z ^= z << 17;
        memcpy(w + i, &z, 8);
    }
    for (size_t b = 0; b < wb / 18; b++) {
        lgpu_f16 d = lgpu_f32_to_f16((float)((b * 2654435761u) % 1000) * 1e-4f - 0.05f);
        memcpy(w + b * 18, &d, 2);
    }
    TU_OK(lgpu_buf_write(bw, 0, w, wb));
    tu_rng r;
    tu_rng_seed(&r, 5000);
    float *x = oh_alloc(K * 4), *got = oh_alloc((size_t)N * 4);
    tu_fill_uniform(&r, x, K, -1, 1);
    lgpu_buf *bx = oh_buf(x, K * 4), *by = oh_buf(NULL, (size_t)N * 4);
    lgpu_matmul_params p = {1, N, K, K, N, 0, LGPU_TYPE_Q4_0, 0};
    mm_ctx m = {bw, bx, by, p, 0, NULL, 0};
    float *poison = oh_alloc((size_t)N * 4);
    memset(poison, 0xff, (size_t)N * 4);
    m.y0 = poison;
    m.y_bytes = (size_t)N * 4;
    oh_case c = {mm_reset, mm_record, by, (size_t)N * 4, &m};
    oh_run3(&c, got);

    /* rows to check: around segment starts, and a spread */
    uint32_t rows[2048], nr = 0;
    for (int i = 1; i < nseg; i++) {
        size_t s, len;
        lgpu_buf_segment(bw, i, &s, &len);
        uint32_t b = (uint32_t)(s / rb);
        for (uint32_t d = 0; d < 4 && nr < 2040; d++) {
            if (b >= 2 + d) rows[nr++] = b - 2 + d; /* b-2 .. b+1 */
        }
    }
    for (uint32_t n = 0; n < N && nr < 2047; n += 97) rows[nr++] = n;
    rows[nr++] = N - 1;
    float *g = oh_alloc(nr * 4), *e = oh_alloc(nr * 4);
    for (uint32_t i = 0; i < nr; i++) {
        lgpu_matmul_params q = {1, 1, K, K, 1, 0, LGPU_TYPE_Q4_0, 0};
        lgpu_ref_matmul_exact(&q, w + (size_t)rows[i] * rb, NULL, x, &e[i]);
        g[i] = got[rows[i]];
    }
    OH_CHECK_NMSE("q4_0 60000x4096 sampled rows", g, e, nr, tolerance(LGPU_TYPE_Q4_0, 1));
    lgpu_buf_destroy(bw), lgpu_buf_destroy(bx), lgpu_buf_destroy(by);
    free(w), free(x), free(got), free(poison), free(g), free(e);
}

/* Texel views cached on W's first segment: > 0 once a texel-buffer build
 * (matmul_vec_tx_*) read it (white box: engine/vk). */
static int w_views(const lgpu_buf *b) { return b->dev->kind == LGPU_DEV_VULKAN ? b->seg[0].vk->n_views : 0; }

static lgpu_dev_caps *mut_caps(void) { return (lgpu_dev_caps *)lgpu_dev_caps_of(oh_dev); }

/* Every type at odd shapes, M in `ms` (bit M set, M = 1..5), W at byte
 * w_off of its buffer; asserts whether the texel build ran (want_views)
 * where the device has texel buffers. */
#define MS_ALL 0x3eu /* M = 1..5 */
static void run_types(size_t w_off, bool want_views, uint64_t seed, unsigned ms) {
    const struct { int type; uint32_t K[2]; } types[] = {
        {LGPU_TYPE_F32, {172, 31}},  {LGPU_TYPE_F16, {155, 172}}, {LGPU_TYPE_BF16, {64, 155}},
        {LGPU_TYPE_Q8_0, {160, 64}}, {LGPU_TYPE_Q4_0, {96, 288}}, {LGPU_TYPE_Q4_K, {512, 256}},
        {LGPU_TYPE_Q6_K, {256, 512}},
    };
    const uint32_t Ns[] = {1, 7, 33, 130, 67};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (uint32_t M = 1; M <= 5; M++) {
            if (!(ms & (1u << M))) continue;
            mm_shape s = {types[t].type, M, Ns[(M + t) % 5], types[t].K[M % 2], 0, 0, M == 3, false};
            tu_rng r;
            tu_rng_seed(&r, seed + 10 * t + M);
            uint8_t *w = make_w(s.type, s.N, s.K, &r);
            size_t wb = (size_t)s.N * lgpu_type_row_bytes(s.type, s.K);
            lgpu_buf *bw;
            TU_OK(lgpu_buf_create(oh_dev, w_off + wb, 4, &bw)); /* exact size: often not whole texels */
            TU_OK(lgpu_buf_write(bw, w_off, w, wb));
            check_case_at(&s, w, bw, w_off, &r);
            if (lgpu_dev_kind_of(oh_dev) == LGPU_DEV_VULKAN && lgpu_dev_caps_of(oh_dev)->texel_buffers &&
                lgpu_dev_caps_of(oh_dev)->subgroup_arithmetic) {
                if (want_views != (w_views(bw) > 0))
                    fail_msg("%s M=%u N=%u K=%u W at %zu: texel build %s, expected %s", lgpu_type_name(s.type), M,
                             s.N, s.K, w_off, w_views(bw) ? "used" : "not used", want_views ? "it" : "the SSBO one");
            }
            lgpu_buf_destroy(bw);
            free(w);
        }
}

/* The vec kernel's texel-buffer build (W through a uniform texel buffer)
 * and its storage-buffer build, each forced through the caps (white box),
 * same shapes and tolerances as above. */
static void test_matmul_texel_and_ssbo(void **state) {
    (void)state;
    if (lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU || !lgpu_dev_caps_of(oh_dev)->texel_buffers) {
        fprintf(stderr, "note: no texel buffers on this device; SSBO build only\n");
        run_types(0, false, 6000, MS_ALL);
        return;
    }
    setenv("LGPU_MATMUL_PATH", "vec", 1);
    lgpu_dev_caps *caps = mut_caps();
    const bool saved = caps->texel_weights;
    caps->texel_weights = true;
    run_types(0, true, 6000, MS_ALL);
    /* the storage-buffer build: M = 1 (lane-rows mode), 2 and 5 (two x-row
     * passes) keep its cold pipeline compiles (seconds each on lavapipe) few */
    caps->texel_weights = false;
    run_types(0, false, 6000, 1u << 1 | 1u << 2 | 1u << 5);
    caps->texel_weights = saved;
    unsetenv("LGPU_MATMUL_PATH");
}

/* W that cannot be viewed falls back to the storage-buffer build, still
 * correct: an offset that is not a multiple of minTexelBufferOffsetAlignment
 * (raised to 512 here, white box, since refs are 256-byte aligned) and a W
 * past maxTexelBufferElements (lowered to 8 texels). */
static void test_matmul_texel_fallback(void **state) {
    (void)state;
    if (lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU || !lgpu_dev_caps_of(oh_dev)->texel_buffers) {
        fprintf(stderr, "note: no texel buffers on this device\n");
        return;
    }
    setenv("LGPU_MATMUL_PATH", "vec", 1);
    lgpu_dev_caps *caps = mut_caps();
    const lgpu_dev_caps saved = *caps;
    caps->texel_weights = true;

    lgpu_buf *b;
    TU_OK(lgpu_buf_create(oh_dev, 4096, 4, &b));
    assert_true(lgpu_texel_viewable(oh_dev, lgpu_ref_at(b, 256), 1000));
    assert_true(lgpu_texel_viewable(oh_dev, lgpu_ref_at(b, 0), 4096));
    assert_false(lgpu_texel_viewable(oh_dev, lgpu_ref_at(b, 256), 4096)); /* past the buffer */
    caps->min_texel_align = 512;
    assert_false(lgpu_texel_viewable(oh_dev, lgpu_ref_at(b, 256), 1000));
    assert_true(lgpu_texel_viewable(oh_dev, lgpu_ref_at(b, 512), 1000));
    lgpu_buf_destroy(b);

    run_types(256, false, 7000, 1u << 1 | 1u << 2); /* misaligned for a view: SSBO */
    run_types(512, true, 7100, 1u << 3);            /* aligned: texel */
    caps->min_texel_align = saved.min_texel_align;
    caps->max_texel_elems = 8;
    mm_shape s = {LGPU_TYPE_Q4_0, 2, 33, 96, 0, 0, false, false}; /* 1782 bytes > 8 texels */
    run_shape(&s, 7200);
    *caps = saved;
    unsetenv("LGPU_MATMUL_PATH");
}

/* ------------------------------------------------------------ NF4 */

typedef struct {
    int type, ct; /* NF4 or NF4_NODQ; compute type */
    uint32_t M, N, K, pad;
    bool acc;
} nf4_shape;

/* The op with the NF4 W t in bw (at w_off) against a double-precision sum
 * over the values it multiplies (t->wd: dequantized, rounded to the compute
 * type), three bit-identical runs; the host twin against the same sum. */
static void nf4_check(const nf4_shape *s, const oh_nf4 *t, lgpu_buf *bw, size_t w_off, uint64_t seed) {
    tu_rng r;
    tu_rng_seed(&r, seed);
    uint32_t xs = s->K + s->pad, ys = s->N + s->pad;
    size_t xn = (size_t)s->M * xs, yn = (size_t)s->M * ys, on = (size_t)s->M * s->N;
    float *x = oh_alloc(xn * 4), *y0 = oh_alloc(yn * 4), *got = oh_alloc(yn * 4), *tw = oh_alloc(yn * 4);
    float *g = oh_alloc(on * 4), *e = oh_alloc(on * 4), *gt = oh_alloc(on * 4);
    tu_fill_uniform(&r, x, xn, -1, 1);
    if (s->acc)
        tu_fill_uniform(&r, y0, yn, -1, 1);
    else
        memset(y0, 0xff, yn * 4);
    for (uint32_t m = 0; m < s->M; m++)
        for (uint32_t n = 0; n < s->N; n++) {
            double acc = s->acc ? y0[(size_t)m * ys + n] : 0;
            for (uint32_t k = 0; k < s->K; k++) acc += (double)t->wd[(size_t)n * s->K + k] * x[(size_t)m * xs + k];
            e[(size_t)m * s->N + n] = (float)acc;
        }
    lgpu_matmul_params p = {s->M, s->N, s->K, xs, ys, s->acc, (uint32_t)s->type, 0, 0};
    mm_ctx m = {bw, oh_buf(x, xn * 4), oh_buf(NULL, yn * 4), p, w_off, y0, yn * 4};
    oh_case c = {mm_reset, mm_record, m.y, yn * 4, &m};
    oh_run3(&c, got);
    memcpy(tw, y0, yn * 4);
    lgpu_ref_matmul(&p, t->w, t->side, x, tw, 2);
    for (uint32_t i = 0; i < s->M; i++) {
        assert_memory_equal(got + (size_t)i * ys + s->N, y0 + (size_t)i * ys + s->N, (size_t)s->pad * 4);
        memcpy(g + (size_t)i * s->N, got + (size_t)i * ys, (size_t)s->N * 4);
        memcpy(gt + (size_t)i * s->N, tw + (size_t)i * ys, (size_t)s->N * 4);
    }
    char what[128];
    snprintf(what, sizeof what, "%s/%s M=%u N=%u K=%u%s%s", lgpu_type_name(s->type), lgpu_type_name(s->ct), s->M,
             s->N, s->K, s->acc ? " acc" : "", s->pad ? " strided" : "");
    OH_CHECK_NMSE(what, g, e, on, tolerance(LGPU_TYPE_F32, s->M));
    TU_ASSERT_NMSE("twin", gt, e, on, 1e-9);
    lgpu_buf_destroy(m.x), lgpu_buf_destroy(m.y);
    free(x), free(y0), free(got), free(tw), free(g), free(e), free(gt);
}

static void run_nf4(const nf4_shape *s, uint64_t seed) {
    tu_rng r;
    tu_rng_seed(&r, seed);
    oh_nf4 t = oh_nf4_make(s->type, s->ct, s->N, s->K, &r);
    lgpu_buf *bw = oh_nf4_upload(&t, 0, 0);
    nf4_check(s, &t, bw, 0, seed + 1);
    lgpu_buf_destroy(bw);
    oh_nf4_free(&t);
}

/* Both NF4 types on the default path (lavapipe: the vec kernel's texel
 * build), M = 1 .. 64, K a multiple of 64 and not (blocks across rows). */
static void test_matmul_nf4(void **state) {
    (void)state;
    const uint32_t Ms[] = {1, 2, 5, 31, 64}, Ns[] = {1, 7, 33, 130, 67}, Ks[] = {64, 172, 288, 640};
    for (int type = LGPU_TYPE_NF4; type <= LGPU_TYPE_NF4_NODQ; type++)
        for (size_t i = 0; i < 5; i++) {
            nf4_shape s = {type, LGPU_TYPE_F32, Ms[i], Ns[(i + (size_t)type) % 5], Ks[(i + (size_t)type) % 4],
                           (uint32_t)(i == 2) * 3, i == 3};
            run_nf4(&s, 8000 + 10 * (uint64_t)type + i);
        }
}

/* NF4 elsewhere: compute types F16 and BF16, the tiled kernel, the vec
 * kernel's storage-buffer build, cooperative matrices where present, W at
 * an offset, a W buffer without the padding the vec kernel's word loads
 * need (the tiled kernel then), and W over segments of row groups. */
static void test_matmul_nf4_paths(void **state) {
    (void)state;
    const nf4_shape cts[] = {
        {LGPU_TYPE_NF4, LGPU_TYPE_F16, 3, 33, 172, 0, false},
        {LGPU_TYPE_NF4, LGPU_TYPE_BF16, 1, 40, 288, 0, true},
        {LGPU_TYPE_NF4_NODQ, LGPU_TYPE_BF16, 2, 17, 64, 1, false},
    };
    for (size_t i = 0; i < 3; i++) run_nf4(&cts[i], 8100 + i);
    if (lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU) return; /* one path on the host */

    setenv("LGPU_MATMUL_PATH", "mm", 1);
    const nf4_shape mm[] = {
        {LGPU_TYPE_NF4, LGPU_TYPE_F32, 65, 70, 172, 2, true},
        {LGPU_TYPE_NF4_NODQ, LGPU_TYPE_F32, 5, 33, 288, 0, false},
        {LGPU_TYPE_NF4, LGPU_TYPE_BF16, 33, 40, 64, 0, false},
    };
    for (size_t i = 0; i < 3; i++) run_nf4(&mm[i], 8200 + i);
    unsetenv("LGPU_MATMUL_PATH");

    const lgpu_dev_caps *c = lgpu_dev_caps_of(oh_dev);
    if (c->coopmat_nv || c->coopmat_khr) {
        setenv("LGPU_MATMUL_PATH", "cm", 1);
        nf4_shape cm = {LGPU_TYPE_NF4, LGPU_TYPE_F16, 70, 65, 172, 0, false};
        run_nf4(&cm, 8250);
        unsetenv("LGPU_MATMUL_PATH");
    } else {
        fprintf(stderr, "note: no cooperative matrices here\n");
    }

    setenv("LGPU_MATMUL_PATH", "vec", 1);
    lgpu_dev_caps *caps = mut_caps();
    const lgpu_dev_caps saved = *caps;
    caps->texel_weights = false; /* the storage-buffer build */
    const nf4_shape ssbo[] = {
        {LGPU_TYPE_NF4, LGPU_TYPE_F32, 1, 31, 172, 0, false},
        {LGPU_TYPE_NF4_NODQ, LGPU_TYPE_F32, 2, 9, 288, 0, true},
    };
    for (size_t i = 0; i < 2; i++) run_nf4(&ssbo[i], 8300 + i);
    *caps = saved;

    /* W at byte 512 (texel build where the device has it), then a buffer of
     * exactly the blocks' 33 x 43 bytes (not whole words: the tiled kernel) */
    tu_rng r;
    tu_rng_seed(&r, 8400);
    nf4_shape s = {LGPU_TYPE_NF4, LGPU_TYPE_F32, 3, 16, 172, 0, false};
    oh_nf4 t = oh_nf4_make(s.type, s.ct, s.N, s.K, &r);
    lgpu_buf *bw = oh_nf4_upload(&t, 512, 512 + t.wb + 16);
    nf4_check(&s, &t, bw, 512, 8401);
    lgpu_buf_destroy(bw);
    assert_int_equal(t.wb % 4, 3);
    bw = oh_nf4_upload(&t, 0, t.wb);
    nf4_check(&s, &t, bw, 0, 8402);
    lgpu_buf_destroy(bw);
    oh_nf4_free(&t);
    unsetenv("LGPU_MATMUL_PATH");

    /* segments: 16-row groups of K = 172 (33 x 43 bytes), 2-row groups of
     * K = 288, single rows of K = 256; vec and tiled */
    const size_t saved_binding = caps->max_binding;
    const nf4_shape seg[] = {
        {LGPU_TYPE_NF4, LGPU_TYPE_F32, 2, 1000, 172, 0, false},
        {LGPU_TYPE_NF4_NODQ, LGPU_TYPE_F32, 1, 700, 288, 0, true},
        {LGPU_TYPE_NF4, LGPU_TYPE_F32, 3, 600, 256, 0, false},
    };
    for (int path = 0; path < 2; path++) {
        setenv("LGPU_MATMUL_PATH", path ? "mm" : "vec", 1);
        for (size_t i = 0; i < 3; i++) {
            tu_rng_seed(&r, 8500 + i);
            t = oh_nf4_make(seg[i].type, seg[i].ct, seg[i].N, seg[i].K, &r);
            caps->max_binding = 32 << 10;
            bw = oh_nf4_upload(&t, 0, 0);
            caps->max_binding = saved_binding;
            assert_true(lgpu_buf_segments(bw) >= 3);
            fprintf(stderr, "  W in %d segments\n", lgpu_buf_segments(bw));
            nf4_check(&seg[i], &t, bw, 0, 8510 + i);
            lgpu_buf_destroy(bw);
            oh_nf4_free(&t);
        }
    }
    unsetenv("LGPU_MATMUL_PATH");
}

/* Each kernel's dequantization bit for bit: x rows are unit vectors e_k,
 * so y[m, n] = W[n, k] exactly (one product by 1, the rest sums of zeros)
 * and must equal the twin's value (t.wd) in every bit, for columns at both
 * ends of blocks that cross rows: both types, the three compute types, the
 * vec kernel's texel and storage builds (one x row per pass and four) and
 * the tiled kernel (a pipeline each on lavapipe: a chosen dozen). */
static void test_matmul_nf4_exact(void **state) {
    (void)state;
    const uint32_t N = 37, K = 172, ks[4] = {0, 63, 64 + 19, 171};
    enum { VEC, SSBO, MM };
    static const char *const names[] = {"vec", "vec_ssbo", "mm"};
    const struct { int type, ct, path; uint32_t M; } cases[] = {
        {LGPU_TYPE_NF4, LGPU_TYPE_F32, VEC, 1},       {LGPU_TYPE_NF4, LGPU_TYPE_F32, VEC, 4},
        {LGPU_TYPE_NF4, LGPU_TYPE_F32, SSBO, 4},      {LGPU_TYPE_NF4, LGPU_TYPE_F32, MM, 4},
        {LGPU_TYPE_NF4, LGPU_TYPE_F16, VEC, 4},       {LGPU_TYPE_NF4, LGPU_TYPE_F16, MM, 4},
        {LGPU_TYPE_NF4, LGPU_TYPE_BF16, VEC, 1},      {LGPU_TYPE_NF4, LGPU_TYPE_BF16, SSBO, 1},
        {LGPU_TYPE_NF4_NODQ, LGPU_TYPE_F32, VEC, 4},  {LGPU_TYPE_NF4_NODQ, LGPU_TYPE_F32, SSBO, 1},
        {LGPU_TYPE_NF4_NODQ, LGPU_TYPE_F32, MM, 4},   {LGPU_TYPE_NF4_NODQ, LGPU_TYPE_BF16, VEC, 4},
    };
    bool host = lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU;
    lgpu_dev_caps *caps = mut_caps();
    const bool saved = caps->texel_weights;
    float x[4 * 172] = {0}, y[4 * 37];
    for (int m = 0; m < 4; m++) x[m * K + ks[m]] = 1;
    lgpu_buf *bx = oh_buf(x, sizeof x), *by = oh_buf(NULL, sizeof y);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (host && cases[i].path != VEC) continue; /* one path on the host */
        tu_rng r;
        tu_rng_seed(&r, 8700 + i);
        oh_nf4 t = oh_nf4_make(cases[i].type, cases[i].ct, N, K, &r);
        lgpu_buf *bw = oh_nf4_upload(&t, 0, 0);
        setenv("LGPU_MATMUL_PATH", cases[i].path == MM ? "mm" : "vec", 1);
        caps->texel_weights = cases[i].path == SSBO ? false : saved;
        uint32_t M = cases[i].M;
        lgpu_matmul_params p = {M, N, K, K, N, 0, (uint32_t)cases[i].type, 0, 0};
        lgpu_exec *ex;
        TU_OK(lgpu_exec_create(oh_dev, &ex));
        TU_OK(lgpu_exec_begin(ex));
        TU_OK(lgpu_op_matmul(ex, &p, oh_ref(bw), oh_ref(bx), oh_ref(by)));
        TU_OK(lgpu_exec_submit(ex));
        TU_OK(lgpu_buf_read(by, 0, y, (size_t)M * N * 4));
        lgpu_exec_destroy(ex);
        for (uint32_t m = 0; m < M; m++)
            for (uint32_t n = 0; n < N; n++)
                if (memcmp(&y[m * N + n], &t.wd[(size_t)n * K + ks[m]], 4))
                    fail_msg("%s/%s %s M=%u: W[%u, %u] = %a, twin %a", lgpu_type_name(cases[i].type),
                             lgpu_type_name(cases[i].ct), names[cases[i].path], M, n, ks[m], y[m * N + n],
                             t.wd[(size_t)n * K + ks[m]]);
        fprintf(stderr, "  %s/%s %s M=%u: the %u x %u values equal the twin's bit for bit\n",
                lgpu_type_name(cases[i].type), lgpu_type_name(cases[i].ct), names[cases[i].path], M, M, N);
        lgpu_buf_destroy(bw);
        oh_nf4_free(&t);
    }
    caps->texel_weights = saved;
    unsetenv("LGPU_MATMUL_PATH");
    lgpu_buf_destroy(bx), lgpu_buf_destroy(by);
}

static void test_matmul_nf4_errors(void **state) {
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 8600);
    oh_nf4 t = oh_nf4_make(LGPU_TYPE_NF4, LGPU_TYPE_F32, 4, 64, &r);
    lgpu_buf *bw = oh_nf4_upload(&t, 0, 0), *plain = oh_buf(t.w, t.wb), *b = oh_buf(NULL, 4096);
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    lgpu_matmul_params p = {1, 4, 64, 64, 4, 0, LGPU_TYPE_NF4, 0, 0};
    assert_int_equal(lgpu_op_matmul(ex, &p, oh_ref(plain), oh_ref(b), oh_ref(b)), LGPU_EINVAL); /* no side table */
    p.K = 63, p.x_stride = 63; /* odd K */
    assert_int_equal(lgpu_op_matmul(ex, &p, oh_ref(bw), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    p.K = 64, p.x_stride = 64, p.N = p.y_stride = 40; /* more rows than the tensor */
    assert_int_equal(lgpu_op_matmul(ex, &p, oh_ref(bw), oh_ref(b), oh_ref(b)), LGPU_ERANGE);
    lgpu_buf_set_side(plain, oh_buf(t.side, t.sb), 7); /* a compute type that is not f32/f16/bf16 */
    p.N = p.y_stride = 4;
    assert_int_equal(lgpu_op_matmul(ex, &p, oh_ref(plain), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    TU_OK(lgpu_exec_submit(ex));
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(bw), lgpu_buf_destroy(plain), lgpu_buf_destroy(b);
    oh_nf4_free(&t);
}

static void test_matmul_errors(void **state) {
    (void)state;
    lgpu_buf *b = oh_buf(NULL, 4096);
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    lgpu_matmul_params p = {1, 2, 48, 48, 2, 0, LGPU_TYPE_Q4_0, 0}; /* K not a multiple of 32 */
    assert_int_equal(lgpu_op_matmul(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    p = (lgpu_matmul_params){1, 2, 64, 64, 2, 0, LGPU_TYPE_I32, 0};
    assert_int_equal(lgpu_op_matmul(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EUNSUPPORTED);
    p = (lgpu_matmul_params){1, 100, 64, 64, 100, 0, LGPU_TYPE_F32, 0}; /* 25.6 KB of W in 4 KB */
    assert_int_equal(lgpu_op_matmul(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_ERANGE);
    p = (lgpu_matmul_params){2, 4, 64, 32, 4, 0, LGPU_TYPE_F32, 0}; /* x_stride < K */
    assert_int_equal(lgpu_op_matmul(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    p = (lgpu_matmul_params){1, 4, 64, 64, 4, 0, LGPU_TYPE_F32, 3}; /* row_offset belongs to the op layer */
    assert_int_equal(lgpu_op_matmul(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    /* Q4_0 in 8-row groups: the host's layout; whole groups only */
    bool host = lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU;
    p = (lgpu_matmul_params){1, 8, 64, 64, 8, 0, LGPU_TYPE_Q4_0, 0, 1};
    assert_int_equal(lgpu_op_matmul(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), host ? 0 : LGPU_EUNSUPPORTED);
    p = (lgpu_matmul_params){1, 12, 64, 64, 12, 0, LGPU_TYPE_Q4_0, 0, 1};
    assert_int_equal(lgpu_op_matmul(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), host ? LGPU_EINVAL : LGPU_EUNSUPPORTED);
    p = (lgpu_matmul_params){1, 8, 64, 64, 8, 0, LGPU_TYPE_Q8_0, 0, 1};
    assert_int_equal(lgpu_op_matmul(ex, &p, oh_ref(b), oh_ref(b), oh_ref(b)), host ? LGPU_EINVAL : LGPU_EUNSUPPORTED);
    TU_OK(lgpu_exec_submit(ex));
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_plain),    cmocka_unit_test(test_matmul_quant),
        cmocka_unit_test(test_matmul_tiled),    cmocka_unit_test(test_matmul_vec_variants),
        cmocka_unit_test(test_matmul_segments), cmocka_unit_test(test_matmul_big),
        cmocka_unit_test(test_matmul_texel_and_ssbo), cmocka_unit_test(test_matmul_texel_fallback),
        cmocka_unit_test(test_matmul_errors),
        cmocka_unit_test(test_matmul_nf4),      cmocka_unit_test(test_matmul_nf4_paths),
        cmocka_unit_test(test_matmul_nf4_exact), cmocka_unit_test(test_matmul_nf4_errors),
    };
    if (getenv("LGPU_TEST_FILTER")) cmocka_set_test_filter(getenv("LGPU_TEST_FILTER")); /* e.g. "*nf4*" */
    return cmocka_run_group_tests(tests, oh_setup, oh_teardown);
}
