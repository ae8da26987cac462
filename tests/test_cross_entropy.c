/* The chunked cross-entropy pair (engine/params/cross_entropy.h):
 * lgpu_op_cross_entropy_stats folds vocabulary chunks of logits into each
 * row's running (max, sum of exp, target logit) and writes the loss;
 * lgpu_op_cross_entropy_grad turns each chunk into dL/dz in place.
 *   - the twins against a full softmax cross-entropy in double and against
 *     central finite differences of it;
 *   - the device ops against the twins, chunk sizes that do and do not divide
 *     the vocabulary, padded row strides, masked rows (target -1), 3 runs
 *     bit-identical, the reduction in both builds;
 *   - end to end with the output head: z = h W_out^T by lgpu_op_matmul chunk
 *     by chunk, loss and dh = (softmax - onehot) W_out / count against the
 *     double reference. */
#include <math.h>

#include "ops_harness.h"

#define ALIGN_UP(x) (((x) + LGPU_REF_ALIGN - 1) / LGPU_REF_ALIGN * LGPU_REF_ALIGN)

static double max_abs(const float *v, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)v[i]));
    return m;
}

/* Full softmax cross-entropy of z (M, V) in double: loss[m] (0 for masked
 * rows) and, when dz != NULL, dz = (softmax - onehot) * scale. Returns the sum
 * of the losses. */
static double ce_full(uint32_t M, uint32_t V, const float *z, const int32_t *t, double scale, double *loss,
                      double *dz) {
    double total = 0;
    for (uint32_t m = 0; m < M; m++) {
        const float *zr = z + (size_t)m * V;
        double mx = -INFINITY, s = 0;
        for (uint32_t v = 0; v < V; v++) mx = fmax(mx, zr[v]);
        for (uint32_t v = 0; v < V; v++) s += exp(zr[v] - mx);
        double lse = mx + log(s);
        double l = t[m] < 0 ? 0 : lse - zr[t[m]];
        if (loss) loss[m] = l;
        total += l;
        if (dz)
            for (uint32_t v = 0; v < V; v++)
                dz[(size_t)m * V + v] = t[m] < 0 ? 0 : (exp(zr[v] - lse) - (v == (uint32_t)t[m])) * scale;
    }
    return total;
}

static uint32_t n_counted(uint32_t M, const int32_t *t) {
    uint32_t c = 0;
    for (uint32_t m = 0; m < M; m++) c += t[m] >= 0;
    return c;
}

/* ---- the chunk layout shared by the twin and device runs ----
 * One buffer: chunk k's logits (M rows of ck = min(C, V - v0) values, row
 * stride S = C + pad) at offset k * cb, then stats (M x 4), then loss (M). */
typedef struct {
    uint32_t M, V, C, S, nchunks;
    size_t cb, stats_off, loss_off, bytes;
} ce_layout;

static ce_layout ce_layout_of(uint32_t M, uint32_t V, uint32_t C, uint32_t pad) {
    ce_layout L = {M, V, C, C + pad, (V + C - 1) / C, 0, 0, 0, 0};
    L.cb = ALIGN_UP((size_t)M * L.S * 4);
    L.stats_off = L.nchunks * L.cb;
    L.loss_off = L.stats_off + ALIGN_UP((size_t)M * 16);
    L.bytes = L.loss_off + (size_t)M * 4;
    return L;
}

/* Fills a layout image from the full z (M, V); padding and outputs 0xff (NaN). */
static void ce_pack(const ce_layout *L, const float *z, uint8_t *img) {
    memset(img, 0xff, L->bytes);
    for (uint32_t k = 0; k < L->nchunks; k++) {
        uint32_t v0 = k * L->C, ck = L->V - v0 < L->C ? L->V - v0 : L->C;
        float *zc = (float *)(img + k * L->cb);
        for (uint32_t m = 0; m < L->M; m++) memcpy(zc + (size_t)m * L->S, z + (size_t)m * L->V + v0, ck * 4);
    }
}

/* Gathers dz (M, V) from the chunks of a layout image. */
static void ce_unpack(const ce_layout *L, const uint8_t *img, float *dz) {
    for (uint32_t k = 0; k < L->nchunks; k++) {
        uint32_t v0 = k * L->C, ck = L->V - v0 < L->C ? L->V - v0 : L->C;
        const float *zc = (const float *)(img + k * L->cb);
        for (uint32_t m = 0; m < L->M; m++) memcpy(dz + (size_t)m * L->V + v0, zc + (size_t)m * L->S, ck * 4);
    }
}

static lgpu_cross_entropy_stats_params stats_params(const ce_layout *L, uint32_t k) {
    uint32_t v0 = k * L->C, ck = L->V - v0 < L->C ? L->V - v0 : L->C;
    return (lgpu_cross_entropy_stats_params){L->M, ck, L->S, v0, k == 0, k + 1 == L->nchunks};
}

static lgpu_cross_entropy_grad_params grad_params(const ce_layout *L, uint32_t k, float scale) {
    uint32_t v0 = k * L->C, ck = L->V - v0 < L->C ? L->V - v0 : L->C;
    return (lgpu_cross_entropy_grad_params){L->M, ck, L->S, v0, scale};
}

/* Both passes with the twins on a layout image. */
static void ce_twin(const ce_layout *L, uint8_t *img, const int32_t *t, float scale, int nthreads) {
    float *stats = (float *)(img + L->stats_off), *loss = (float *)(img + L->loss_off);
    for (uint32_t k = 0; k < L->nchunks; k++) {
        lgpu_cross_entropy_stats_params sp = stats_params(L, k);
        lgpu_ref_cross_entropy_stats(&sp, (const float *)(img + k * L->cb), t, stats, loss, nthreads);
    }
    for (uint32_t k = 0; k < L->nchunks; k++) {
        lgpu_cross_entropy_grad_params gp = grad_params(L, k, scale);
        lgpu_ref_cross_entropy_grad(&gp, (float *)(img + k * L->cb), t, stats, nthreads);
    }
}

/* Both passes on the device, all chunks in one exec (3 runs, bit-identical). */
typedef struct {
    const ce_layout *L;
    lgpu_buf *buf, *tgt;
    const uint8_t *img;
    float scale;
} ce_ctx;

static void ce_reset(oh_case *c) {
    ce_ctx *r = c->ctx;
    TU_OK(lgpu_buf_write(r->buf, 0, r->img, r->L->bytes));
}

static int ce_record(oh_case *c, lgpu_exec *ex) {
    ce_ctx *r = c->ctx;
    const ce_layout *L = r->L;
    lgpu_ref stats = lgpu_ref_at(r->buf, L->stats_off), loss = lgpu_ref_at(r->buf, L->loss_off);
    int st;
    for (uint32_t k = 0; k < L->nchunks; k++) {
        lgpu_cross_entropy_stats_params sp = stats_params(L, k);
        if ((st = lgpu_op_cross_entropy_stats(ex, &sp, lgpu_ref_at(r->buf, k * L->cb), oh_ref(r->tgt), stats, loss)))
            return st;
    }
    for (uint32_t k = 0; k < L->nchunks; k++) {
        lgpu_cross_entropy_grad_params gp = grad_params(L, k, r->scale);
        if ((st = lgpu_op_cross_entropy_grad(ex, &gp, lgpu_ref_at(r->buf, k * L->cb), oh_ref(r->tgt), stats)))
            return st;
    }
    return 0;
}

static void ce_device(const ce_layout *L, uint8_t *img, const int32_t *t, float scale) {
    ce_ctx r = {L, oh_buf(img, L->bytes), oh_buf(t, (size_t)L->M * 4), img, scale};
    oh_case c = {ce_reset, ce_record, r.buf, L->bytes, &r};
    uint8_t *got = oh_alloc(L->bytes);
    oh_run3(&c, got);
    memcpy(img, got, L->bytes);
    free(got);
    lgpu_buf_destroy(r.buf), lgpu_buf_destroy(r.tgt);
}

static void ce_inputs(uint64_t seed, uint32_t M, uint32_t V, float zscale, float *z, int32_t *t) {
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    for (size_t i = 0; i < (size_t)M * V; i++) z[i] = zscale * tu_rng_normal(&rng);
    for (uint32_t m = 0; m < M; m++) t[m] = tu_rng_u32(&rng) % 4 == 0 ? -1 : (int32_t)(tu_rng_u32(&rng) % V);
    if (M > 2) t[0] = 0, t[1] = (int32_t)V - 1, t[2] = -1; /* first and last id, and a masked row */
}

/* [0, ln 2, ln 3] with target 2, in chunks of 2: exp = 1, 2, 3 (sum 6);
 * stats after both chunks {ln 3, 2, ln 3, 0}; loss = ln 6 - ln 3 = ln 2;
 * dz = [1/6, 1/3, 1/2 - 1]. A second row with target -1: loss 0, dz 0. */
static void test_ce_hand(void **state) {
    (void)state;
    const float z[6] = {0.0f, 0.693147181f, 1.09861229f, 5, 6, 7};
    const int32_t t[2] = {2, -1};
    ce_layout L = ce_layout_of(2, 3, 2, 0);
    uint8_t *img = oh_alloc(L.bytes);
    const float want_stats[8] = {1.09861229f, 2, 1.09861229f, 0, 0, 0, 0, 0}, want_loss[2] = {0.693147181f, 0};
    const float want_dz[6] = {1.0f / 6, 1.0f / 3, -0.5f, 0, 0, 0};
    float dz[6];
    for (int dev = 0; dev < 2; dev++) {
        ce_pack(&L, z, img);
        if (dev) ce_device(&L, img, t, 1.0f);
        else ce_twin(&L, img, t, 1.0f, 1);
        const char *who = dev ? "device" : "twin";
        fprintf(stderr, "  hand case, %s\n", who);
        assert_int_equal(oh_compare("stats", (float *)(img + L.stats_off), want_stats, 8, 0, 1e-6), 0);
        assert_int_equal(oh_compare("loss", (float *)(img + L.loss_off), want_loss, 2, 0, 1e-6), 0);
        ce_unpack(&L, img, dz);
        assert_int_equal(oh_compare("dz", dz, want_dz, 6, 0, 1e-6), 0);
    }
    free(img);
}

/* The chunked twins against the full double cross-entropy (loss and dz),
 * and dz against central differences of the loss in each logit. */
static void test_ce_twin_fd(void **state) {
    (void)state;
    const uint32_t M = 5, V = 23;
    float z[M * V], fd[M * V], dz[M * V];
    int32_t t[M];
    double loss_ref[M], dz_ref[M * V];
    ce_inputs(800, M, V, 3.0f, z, t);
    const double scale = 1.0 / n_counted(M, t);
    ce_full(M, V, z, t, scale, loss_ref, dz_ref);
    const double h = 1e-4; /* truncation ~h^2 ~ 1e-8, rounding ~1e-16/h */
    double *zd = oh_alloc(sizeof(double) * M * V);
    for (size_t i = 0; i < (size_t)M * V; i++) {
        /* the loss in double at z +- h e_i (rows other than i's are constant) */
        uint32_t m = (uint32_t)(i / V);
        double lp, lm, s = 0, mx = -INFINITY;
        for (uint32_t v = 0; v < V; v++) zd[v] = z[(size_t)m * V + v];
        zd[i % V] += h;
        for (uint32_t v = 0; v < V; v++) mx = fmax(mx, zd[v]);
        for (uint32_t v = 0; v < V; v++) s += exp(zd[v] - mx);
        lp = t[m] < 0 ? 0 : mx + log(s) - zd[t[m]];
        zd[i % V] -= 2 * h, s = 0, mx = -INFINITY;
        for (uint32_t v = 0; v < V; v++) mx = fmax(mx, zd[v]);
        for (uint32_t v = 0; v < V; v++) s += exp(zd[v] - mx);
        lm = t[m] < 0 ? 0 : mx + log(s) - zd[t[m]];
        fd[i] = (float)(scale * (lp - lm) / (2 * h));
    }
    free(zd);
    const uint32_t chunks[] = {23, 7, 1, 64}; /* 1 chunk; 7, 7, 7, 2; 23 of 1; C > V */
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        ce_layout L = ce_layout_of(M, V, chunks[c], c == 1 ? 3 : 0);
        uint8_t *img = oh_alloc(L.bytes);
        ce_pack(&L, z, img);
        ce_twin(&L, img, t, (float)scale, 1);
        ce_unpack(&L, img, dz);
        float lw[M], dw[M * V];
        for (uint32_t m = 0; m < M; m++) lw[m] = (float)loss_ref[m];
        for (size_t i = 0; i < (size_t)M * V; i++) dw[i] = (float)dz_ref[i];
        fprintf(stderr, "  C = %u\n", chunks[c]);
        /* double twin, stats stored in float between chunks: ~1e-7 relative */
        assert_int_equal(oh_compare("loss twin vs full", (float *)(img + L.loss_off), lw, M, 1e-6, 1e-6), 0);
        assert_int_equal(oh_compare("dz twin vs full", dz, dw, (size_t)M * V, 1e-7 * scale, 1e-6), 0);
        assert_int_equal(oh_compare("dz twin vs FD", dz, fd, (size_t)M * V, 1e-6 * scale, 1e-5), 0);
        OH_CHECK_NMSE("dz twin vs FD", dz, fd, (size_t)M * V, 1e-11);
        free(img);
    }
}

/* Device against twin: {M, V, C, pad}. 70001 rows: a 2D grid of workgroups
 * (one chunk, subgroup build only: the grid depends on neither, and lavapipe
 * launches workgroups slowly). */
static void check_ce_device(bool nosg) {
    oh_force_no_subgroup(nosg);
    const uint32_t cases[][4] = {{1, 1, 1, 0},        {37, 1003, 1003, 0}, {37, 1003, 256, 5},
                                 {37, 1003, 59, 0},   {3, 32000, 4096, 0}, {155, 300, 300, 1},
                                 {70001, 5, 5, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint32_t M = cases[k][0], V = cases[k][1], C = cases[k][2], pad = cases[k][3];
        if (nosg && M > 65535) continue;
        size_t n = (size_t)M * V;
        float *z = oh_alloc(n * 4), *dzw = oh_alloc(n * 4), *dzg = oh_alloc(n * 4);
        int32_t *t = oh_alloc(M * 4);
        ce_inputs(900 + k, M, V, 4.0f, z, t);
        uint32_t cnt = n_counted(M, t);
        float scale = cnt ? 1.0f / (float)cnt : 1.0f;
        ce_layout L = ce_layout_of(M, V, C, pad);
        uint8_t *want = oh_alloc(L.bytes), *got = oh_alloc(L.bytes), *t4 = oh_alloc(L.bytes);
        ce_pack(&L, z, want);
        memcpy(got, want, L.bytes);
        memcpy(t4, want, L.bytes);
        ce_twin(&L, want, t, scale, 1);
        ce_twin(&L, t4, t, scale, 4);
        assert_memory_equal(t4, want, L.bytes); /* thread count changes no bit (padding stays 0xff) */
        ce_device(&L, got, t, scale);
        fprintf(stderr, "  M %u V %u C %u pad %u%s\n", M, V, C, pad, nosg ? " (nosg)" : "");
        /* padding columns of every chunk are untouched (still 0xff) */
        for (uint32_t c = 0; c < L.nchunks && pad; c++)
            for (uint32_t m = 0; m < M; m++)
                for (uint32_t j = C; j < L.S; j++) {
                    uint32_t bits;
                    memcpy(&bits, got + c * L.cb + ((size_t)m * L.S + j) * 4, 4);
                    assert_int_equal(bits, 0xffffffffu);
                }
        float *sw = (float *)(want + L.stats_off), *sg = (float *)(got + L.stats_off);
        /* max and target logit: exact (copies of z); sum of exp: fp32 exp and
         * sums vs double, ~1e-6 relative */
        for (uint32_t m = 0; m < M; m++) {
            assert_true(sw[4 * m] == sg[4 * m] && sw[4 * m + 2] == sg[4 * m + 2] && sg[4 * m + 3] == 0.0f);
        }
        float *sumw = oh_alloc(M * 4), *sumg = oh_alloc(M * 4);
        for (uint32_t m = 0; m < M; m++) sumw[m] = sw[4 * m + 1], sumg[m] = sg[4 * m + 1];
        assert_int_equal(oh_compare("sum of exp", sumg, sumw, M, 0, 4e-6), 0);
        /* loss = max + log(sum) - target logit, |terms| up to ~20 */
        assert_int_equal(
            oh_compare("loss", (float *)(got + L.loss_off), (float *)(want + L.loss_off), M, 4e-6, 1e-6), 0);
        ce_unpack(&L, want, dzw);
        ce_unpack(&L, got, dzg);
        /* probabilities from fp32 exp(z - lse), lse ~ 10-20 (ulp ~1e-6): ~1e-6
         * of each probability, which a target's -1 may cancel (p ~ 1), hence
         * the absolute part in units of scale */
        assert_int_equal(oh_compare("dz", dzg, dzw, n, 4e-6 * scale, 1e-5), 0);
        OH_CHECK_NMSE("dz", dzg, dzw, n, 1e-11);
        free(z), free(dzw), free(dzg), free(t), free(want), free(got), free(t4), free(sumw), free(sumg);
    }
    oh_force_no_subgroup(false);
}

static void test_ce_device(void **state) {
    (void)state;
    check_ce_device(false);
    check_ce_device(true);
}

/* ---- end to end with the output head ---- */

/* h (M, D), W_out (V, D): z = h W_out^T chunk by chunk through lgpu_op_matmul
 * into one M x C buffer; pass 1 folds each chunk into the statistics; pass 2
 * recomputes z, turns it into dL/dz and (here, on the host in double) adds
 * dz W_out[v0..] to dh. */
static void ce_e2e(uint32_t M, uint32_t D, uint32_t V, uint32_t C, const float *h, const float *w, const int32_t *t,
                   float scale, float *loss, double *dh) {
    size_t zb = (size_t)M * C * 4;
    lgpu_buf *hb = oh_buf(h, (size_t)M * D * 4), *wb = NULL, *zbuf = oh_buf(NULL, zb);
    lgpu_buf *tb = oh_buf(t, (size_t)M * 4), *sb = oh_buf(NULL, (size_t)M * 16), *lb = oh_buf(NULL, (size_t)M * 4);
    TU_OK(lgpu_buf_create(oh_dev, (size_t)V * D * 4, (size_t)D * 4, &wb));
    TU_OK(lgpu_buf_write(wb, 0, w, (size_t)V * D * 4));
    float *z = oh_alloc(zb);
    uint32_t nchunks = (V + C - 1) / C;
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex)); /* pass 1: every chunk in one stream */
    for (uint32_t k = 0; k < nchunks; k++) {
        uint32_t v0 = k * C, ck = V - v0 < C ? V - v0 : C;
        lgpu_matmul_params mp = {.M = M, .N = ck, .K = D, .x_stride = D, .y_stride = C, .wtype = LGPU_TYPE_F32};
        TU_OK(lgpu_op_matmul(ex, &mp, lgpu_ref_at(wb, (size_t)v0 * D * 4), oh_ref(hb), oh_ref(zbuf)));
        lgpu_cross_entropy_stats_params sp = {M, ck, C, v0, k == 0, k + 1 == nchunks};
        TU_OK(lgpu_op_cross_entropy_stats(ex, &sp, oh_ref(zbuf), oh_ref(tb), oh_ref(sb), oh_ref(lb)));
    }
    TU_OK(lgpu_exec_submit(ex));
    TU_OK(lgpu_buf_read(lb, 0, loss, (size_t)M * 4));
    memset(dh, 0, sizeof(double) * M * D);
    for (uint32_t k = 0; k < nchunks; k++) { /* pass 2 */
        uint32_t v0 = k * C, ck = V - v0 < C ? V - v0 : C;
        TU_OK(lgpu_exec_begin(ex));
        lgpu_matmul_params mp = {.M = M, .N = ck, .K = D, .x_stride = D, .y_stride = C, .wtype = LGPU_TYPE_F32};
        TU_OK(lgpu_op_matmul(ex, &mp, lgpu_ref_at(wb, (size_t)v0 * D * 4), oh_ref(hb), oh_ref(zbuf)));
        lgpu_cross_entropy_grad_params gp = {M, ck, C, v0, scale};
        TU_OK(lgpu_op_cross_entropy_grad(ex, &gp, oh_ref(zbuf), oh_ref(tb), oh_ref(sb)));
        TU_OK(lgpu_exec_submit(ex));
        TU_OK(lgpu_buf_read(zbuf, 0, z, zb));
        for (uint32_t m = 0; m < M; m++)
            for (uint32_t c = 0; c < ck; c++) {
                double g = z[(size_t)m * C + c];
                const float *wr = w + (size_t)(v0 + c) * D;
                for (uint32_t d = 0; d < D; d++) dh[(size_t)m * D + d] += g * wr[d];
            }
    }
    lgpu_exec_destroy(ex);
    free(z);
    lgpu_buf_destroy(hb), lgpu_buf_destroy(wb), lgpu_buf_destroy(zbuf), lgpu_buf_destroy(tb), lgpu_buf_destroy(sb);
    lgpu_buf_destroy(lb);
}

static void test_ce_output_head(void **state) {
    (void)state;
    const uint32_t M = 37, D = 64, V = 1003; /* D * 4 = 256: every chunk's W rows start aligned */
    float *h = oh_alloc((size_t)M * D * 4), *w = oh_alloc((size_t)V * D * 4), *zf = oh_alloc((size_t)M * V * 4);
    int32_t t[M];
    tu_rng rng;
    tu_rng_seed(&rng, 1000);
    for (size_t i = 0; i < (size_t)M * D; i++) h[i] = tu_rng_normal(&rng);
    for (size_t i = 0; i < (size_t)V * D; i++) w[i] = 0.5f * tu_rng_normal(&rng); /* logits ~ N(0, 16) */
    for (uint32_t m = 0; m < M; m++) t[m] = m % 5 == 3 ? -1 : (int32_t)(tu_rng_u32(&rng) % V);
    t[0] = 0, t[1] = V - 1;
    uint32_t cnt = n_counted(M, t);
    /* reference: z = h W^T, full softmax cross-entropy and dh in double */
    double *zd = oh_alloc(sizeof(double) * M * V), *dz = oh_alloc(sizeof(double) * M * V);
    double *dh_ref = oh_alloc(sizeof(double) * M * D), *dh = oh_alloc(sizeof(double) * M * D), loss_ref[M];
    for (uint32_t m = 0; m < M; m++)
        for (uint32_t v = 0; v < V; v++) {
            double s = 0;
            for (uint32_t d = 0; d < D; d++) s += (double)h[(size_t)m * D + d] * w[(size_t)v * D + d];
            zd[(size_t)m * V + v] = s;
            zf[(size_t)m * V + v] = (float)s;
        }
    /* ce_full takes float z: the double z rounded once changes the loss by ~1e-7 */
    double total_ref = ce_full(M, V, zf, t, 1.0 / cnt, loss_ref, dz);
    memset(dh_ref, 0, sizeof(double) * M * D);
    for (uint32_t m = 0; m < M; m++)
        for (uint32_t v = 0; v < V; v++)
            for (uint32_t d = 0; d < D; d++) dh_ref[(size_t)m * D + d] += dz[(size_t)m * V + v] * w[(size_t)v * D + d];
    float lr[M], dhr[M * D], dhg[M * D], loss[M];
    for (uint32_t m = 0; m < M; m++) lr[m] = (float)loss_ref[m];
    for (size_t i = 0; i < (size_t)M * D; i++) dhr[i] = (float)dh_ref[i];
    const uint32_t chunks[] = {1003, 256, 59, 4096}; /* whole, 3 x 256 + 235, 17 x 59, C > V */
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        ce_e2e(M, D, V, chunks[c], h, w, t, 1.0f / (float)cnt, loss, dh);
        for (size_t i = 0; i < (size_t)M * D; i++) dhg[i] = (float)dh[i];
        fprintf(stderr, "  output head, C = %u\n", chunks[c]);
        double total = 0;
        for (uint32_t m = 0; m < M; m++) total += loss[m];
        fprintf(stderr, "  mean loss %.9g, reference %.9g\n", total / cnt, total_ref / cnt);
        /* fp32 matmul over D = 64 (|z| ~ 4, ~1e-6) then the fp32 statistics;
         * losses ~14 */
        assert_int_equal(oh_compare("loss", loss, lr, M, 1e-5, 1e-6), 0);
        assert_true(fabs(total / cnt - total_ref / cnt) <= 1e-5);
        /* dh: the z errors above through softmax, ~1e-6 of dh's scale */
        assert_int_equal(oh_compare("dh", dhg, dhr, (size_t)M * D, 2e-6 * max_abs(dhr, (size_t)M * D), 1e-5), 0);
        OH_CHECK_NMSE("dh", dhg, dhr, (size_t)M * D, 1e-9);
    }
    free(h), free(w), free(zf), free(zd), free(dz), free(dh_ref), free(dh);
}

static void test_ce_errors(void **state) {
    (void)state;
    lgpu_buf *b = oh_buf(NULL, 4096);
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    lgpu_cross_entropy_stats_params sp = {4, 10, 8, 0, 1, 1}; /* z_stride < C */
    assert_int_equal(lgpu_op_cross_entropy_stats(ex, &sp, oh_ref(b), oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "cross_entropy_stats"));
    sp = (lgpu_cross_entropy_stats_params){4, 0, 8, 0, 1, 1}; /* C = 0 */
    assert_int_equal(lgpu_op_cross_entropy_stats(ex, &sp, oh_ref(b), oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    sp = (lgpu_cross_entropy_stats_params){4, 300, 300, 0, 1, 1}; /* 4800-byte z */
    assert_int_equal(lgpu_op_cross_entropy_stats(ex, &sp, oh_ref(b), oh_ref(b), oh_ref(b), oh_ref(b)), LGPU_ERANGE);
    sp = (lgpu_cross_entropy_stats_params){4, 8, 8, 0, 1, 1}; /* last needs a loss buffer */
    assert_int_equal(lgpu_op_cross_entropy_stats(ex, &sp, oh_ref(b), oh_ref(b), oh_ref(b), (lgpu_ref){0}),
                     LGPU_EINVAL);
    lgpu_cross_entropy_grad_params gp = {4, 8, 8, 0, 1.0f};
    assert_int_equal(lgpu_op_cross_entropy_grad(ex, &gp, lgpu_ref_at(b, 8), oh_ref(b), oh_ref(b)), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "cross_entropy_grad"));
    gp.M = 0; /* nothing to do */
    TU_OK(lgpu_op_cross_entropy_grad(ex, &gp, oh_ref(b), oh_ref(b), oh_ref(b)));
    TU_OK(lgpu_exec_submit(ex));
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ce_hand),         cmocka_unit_test(test_ce_twin_fd),
        cmocka_unit_test(test_ce_device),       cmocka_unit_test(test_ce_output_head),
        cmocka_unit_test(test_ce_errors),
    };
    return cmocka_run_group_tests(tests, oh_setup, oh_teardown);
}
