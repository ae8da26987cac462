/* Attention backward (lgpu_op_attention_backward) in the training layout:
 * B sequences of T token slots laid out in the paged pools by an identity
 * block table, the forward (kv_store + attention with lse) on the device under
 * test, then the backward from its lse. Checks:
 *   - the C twin against central finite differences of a double-precision
 *     causal GQA attention forward written here (objective sum(dout . o)),
 *     for q, k and v;
 *   - the twin's bits across thread counts;
 *   - the device (shader) against the twin from the same o and lse, with
 *     three bit-identical runs of the forward and of the backward;
 *   - a padded layout (T rounded up to the block size) giving the same
 *     gradients for the real rows, and zero ones for the padding;
 *   - one hand-computed case, and the parameter errors.
 * Shapes: B 1..3, T 1, 5, 17, 40, n_heads/n_kv_heads 8/4, 4/4, 6/2, 1/1,
 * head_dim 4, 8, 64, 128. */
#include <math.h>

#include "ops_harness.h"

typedef struct {
    uint32_t B, T, H, G, hd;
} bw_shape;

/* ---- the training context's layout ----
 *
 * Sequence b's T tokens are rows b*T .. b*T+T-1 of every activation (q, o,
 * dout: (B*T, n_heads*head_dim); k, v: (B*T, n_kv_heads*head_dim)), token
 * b*T + t has tok_seq = b and tok_pos = t, and it is kept in pool slot
 * b*T + t: block_size divides T, each sequence owns max_blocks = T /
 * block_size blocks, and the block table is the identity,
 * table[b*max_blocks + n] = b*max_blocks + n. With F32 pools of B*T slots
 * the K/V pools are then exactly the dense k and v that
 * lgpu_op_attention_backward reads (the training graph can pass the pool
 * buffers themselves, as run_device does below; with k already in that
 * layout kv_store is a plain copy). Any divisor of T works; block_size = T
 * (one block per sequence) always does. A T that the wanted block size does
 * not divide is padded up to a multiple of it, and the whole graph then runs
 * with the padded T: padding rows hold zeros and get dout = 0, so causality
 * keeps every real row's result unchanged and the padding adds nothing to
 * any gradient (test_attention_backward_padded). */
static uint32_t train_block_size(uint32_t T) {
    for (uint32_t bs = 16; bs > 1; bs--)
        if (T % bs == 0) return bs;
    return T; /* a prime T > 16 (17): one block per sequence */
}

static void train_layout(uint32_t B, uint32_t T, uint32_t block_size, int32_t *tok_seq, int32_t *tok_pos,
                         int32_t *table) {
    for (uint32_t i = 0; i < B * T; i++) tok_seq[i] = (int32_t)(i / T), tok_pos[i] = (int32_t)(i % T);
    for (uint32_t n = 0; n < B * (T / block_size); n++) table[n] = (int32_t)n; /* identity */
}

/* one case: inputs in the training layout */
typedef struct {
    bw_shape s;
    uint32_t rows, qdim, kvdim, rep, bs, max_blocks;
    float scale;
    float *q, *k, *v, *dout;
    int32_t *tok_seq, *tok_pos, *table;
} bw_data;

static void make_data(bw_data *a, bw_shape s, uint64_t seed) {
    memset(a, 0, sizeof *a);
    a->s = s;
    a->rows = s.B * s.T, a->qdim = s.H * s.hd, a->kvdim = s.G * s.hd, a->rep = s.H / s.G;
    a->bs = train_block_size(s.T), a->max_blocks = s.T / a->bs;
    a->scale = 1.0f / sqrtf((float)s.hd);
    tu_rng r;
    tu_rng_seed(&r, seed);
    a->q = oh_alloc((size_t)a->rows * a->qdim * 4), a->dout = oh_alloc((size_t)a->rows * a->qdim * 4);
    a->k = oh_alloc((size_t)a->rows * a->kvdim * 4), a->v = oh_alloc((size_t)a->rows * a->kvdim * 4);
    /* q in [-2, 2]: scores up to a few units, so the softmax is far from flat */
    tu_fill_uniform(&r, a->q, (size_t)a->rows * a->qdim, -2, 2);
    tu_fill_uniform(&r, a->k, (size_t)a->rows * a->kvdim, -1, 1);
    tu_fill_uniform(&r, a->v, (size_t)a->rows * a->kvdim, -1, 1);
    tu_fill_uniform(&r, a->dout, (size_t)a->rows * a->qdim, -1, 1);
    a->tok_seq = oh_alloc(a->rows * 4), a->tok_pos = oh_alloc(a->rows * 4);
    a->table = oh_alloc((size_t)s.B * a->max_blocks * 4);
    train_layout(s.B, s.T, a->bs, a->tok_seq, a->tok_pos, a->table);
}

static void free_data(bw_data *a) {
    free(a->q), free(a->k), free(a->v), free(a->dout), free(a->tok_seq), free(a->tok_pos), free(a->table);
}

static lgpu_kv_store_params store_params(const bw_data *a) {
    return (lgpu_kv_store_params){.T = a->rows, .kv_dim = a->kvdim, .src_stride = a->kvdim, .block_size = a->bs,
                                  .max_blocks = a->max_blocks, .kv_type = LGPU_TYPE_F32};
}

static lgpu_attention_params att_params(const bw_data *a) {
    return (lgpu_attention_params){.T = a->rows, .n_heads = a->s.H, .n_kv_heads = a->s.G, .head_dim = a->s.hd,
                                   .q_stride = a->qdim, .block_size = a->bs, .max_blocks = a->max_blocks,
                                   .scale = a->scale, .kv_type = LGPU_TYPE_F32};
}

static lgpu_attention_backward_params bw_params(const bw_data *a) {
    return (lgpu_attention_backward_params){a->s.B, a->s.T, a->s.H, a->s.G, a->s.hd, a->scale};
}

/* the results of one forward + backward */
typedef struct {
    float *o, *lse;          /* forward: (rows, qdim), (rows, H) */
    float *d, *dq, *dk, *dv; /* backward */
} bw_out;

static void out_alloc(bw_out *r, const bw_data *a) {
    size_t qn = (size_t)a->rows * a->qdim, kn = (size_t)a->rows * a->kvdim, ln = (size_t)a->rows * a->s.H;
    r->o = oh_alloc(qn * 4), r->lse = oh_alloc(ln * 4), r->d = oh_alloc(ln * 4);
    r->dq = oh_alloc(qn * 4), r->dk = oh_alloc(kn * 4), r->dv = oh_alloc(kn * 4);
}

static void out_free(bw_out *r) { free(r->o), free(r->lse), free(r->d), free(r->dq), free(r->dk), free(r->dv); }

/* ---- device runs: several outputs in one buffer at 256-aligned offsets, so
 * that oh_run3 compares all of them across its three runs ---- */
static size_t al256(size_t n) { return (n + 255) / 256 * 256; }

typedef struct {
    const bw_data *a;
    lgpu_buf *q, *k, *v, *dout, *tok_seq, *tok_pos, *table, *kp, *vp, *fwd, *o, *lse, *bwd;
    size_t lse_off, off_dq, off_dk, off_dv; /* in fwd: o at 0, lse; in bwd: d at 0, dq, dk, dv */
} dev_run;

static int record_fwd(oh_case *c, lgpu_exec *ex) {
    dev_run *d = c->ctx;
    lgpu_kv_store_params sp = store_params(d->a);
    lgpu_attention_params ap = att_params(d->a);
    int st = lgpu_op_kv_store(ex, &sp, oh_ref(d->k), oh_ref(d->v), oh_ref(d->tok_seq), oh_ref(d->tok_pos),
                              oh_ref(d->table), oh_ref(d->kp), oh_ref(d->vp));
    if (st) return st;
    return lgpu_op_attention(ex, &ap, oh_ref(d->q), oh_ref(d->tok_seq), oh_ref(d->tok_pos), oh_ref(d->table),
                             oh_ref(d->kp), oh_ref(d->vp), lgpu_ref_at(d->fwd, 0), lgpu_ref_at(d->fwd, d->lse_off));
}

static void reset_fwd(oh_case *c) {
    dev_run *d = c->ctx;
    oh_poison(d->fwd, c->out_bytes);
    oh_poison(d->kp, (size_t)d->a->rows * d->a->kvdim * 4);
    oh_poison(d->vp, (size_t)d->a->rows * d->a->kvdim * 4);
}

/* the backward reads k and v straight from the pools the forward filled */
static int record_bwd(oh_case *c, lgpu_exec *ex) {
    dev_run *d = c->ctx;
    lgpu_attention_backward_params bp = bw_params(d->a);
    return lgpu_op_attention_backward(ex, &bp, oh_ref(d->q), oh_ref(d->kp), oh_ref(d->vp), oh_ref(d->o),
                                      oh_ref(d->dout), oh_ref(d->lse), lgpu_ref_at(d->bwd, 0),
                                      lgpu_ref_at(d->bwd, d->off_dq), lgpu_ref_at(d->bwd, d->off_dk),
                                      lgpu_ref_at(d->bwd, d->off_dv));
}

static void reset_bwd(oh_case *c) { oh_poison(((dev_run *)c->ctx)->bwd, c->out_bytes); }

/* Forward then backward on the device under test; each three times,
 * bit-identical. The backward starts from the device forward's o and lse. */
static void run_device(const bw_data *a, bw_out *r) {
    size_t qb = (size_t)a->rows * a->qdim * 4, kb = (size_t)a->rows * a->kvdim * 4, lb = (size_t)a->rows * a->s.H * 4;
    dev_run d = {a};
    d.q = oh_buf(a->q, qb), d.k = oh_buf(a->k, kb), d.v = oh_buf(a->v, kb), d.dout = oh_buf(a->dout, qb);
    d.tok_seq = oh_buf(a->tok_seq, a->rows * 4), d.tok_pos = oh_buf(a->tok_pos, a->rows * 4);
    d.table = oh_buf(a->table, (size_t)a->s.B * a->max_blocks * 4);
    d.kp = oh_buf(NULL, kb), d.vp = oh_buf(NULL, kb); /* F32 pools of B*T slots */
    d.lse_off = al256(qb);
    d.fwd = oh_buf(NULL, d.lse_off + lb);
    oh_case fc = {reset_fwd, record_fwd, d.fwd, d.lse_off + lb, &d};
    char *res = oh_alloc(d.lse_off + lb);
    oh_run3(&fc, res);
    memcpy(r->o, res, qb);
    memcpy(r->lse, res + d.lse_off, lb);
    free(res);
    /* the identity table puts the tokens in the pools in the dense layout */
    float *pool = oh_alloc(kb);
    TU_OK(lgpu_buf_read(d.kp, 0, pool, kb));
    assert_memory_equal(pool, a->k, kb);
    TU_OK(lgpu_buf_read(d.vp, 0, pool, kb));
    assert_memory_equal(pool, a->v, kb);
    free(pool);

    d.o = oh_buf(r->o, qb), d.lse = oh_buf(r->lse, lb);
    d.off_dq = al256(lb), d.off_dk = d.off_dq + al256(qb), d.off_dv = d.off_dk + al256(kb);
    size_t all = d.off_dv + kb;
    d.bwd = oh_buf(NULL, all);
    oh_case bc = {reset_bwd, record_bwd, d.bwd, all, &d};
    res = oh_alloc(all);
    oh_run3(&bc, res);
    memcpy(r->d, res, lb);
    memcpy(r->dq, res + d.off_dq, qb);
    memcpy(r->dk, res + d.off_dk, kb);
    memcpy(r->dv, res + d.off_dv, kb);
    free(res);
    lgpu_buf *bufs[] = {d.q, d.k, d.v, d.dout, d.tok_seq, d.tok_pos, d.table, d.kp, d.vp, d.fwd, d.o, d.lse, d.bwd};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lgpu_buf_destroy(bufs[i]);
}

/* The twins: forward (kv_store + attention with lse), then the backward. */
static void run_twin_fwd(const bw_data *a, bw_out *r) {
    size_t kb = (size_t)a->rows * a->kvdim * 4;
    float *kp = oh_alloc(kb), *vp = oh_alloc(kb);
    lgpu_kv_store_params sp = store_params(a);
    lgpu_attention_params ap = att_params(a);
    lgpu_ref_kv_store(&sp, a->k, a->v, a->tok_seq, a->tok_pos, a->table, kp, vp);
    lgpu_ref_attention(&ap, a->q, a->tok_seq, a->tok_pos, a->table, kp, vp, r->o, r->lse, 2);
    free(kp), free(vp);
}

static void run_twin_bwd(const bw_data *a, const float *o, const float *lse, bw_out *r, int nthreads) {
    lgpu_attention_backward_params bp = bw_params(a);
    lgpu_ref_attention_backward(&bp, a->q, a->k, a->v, o, a->dout, lse, r->d, r->dq, r->dk, r->dv, nthreads);
}

/* ---- the finite-difference oracle ----
 * sum over the rows of sequence b and the heads of kv group g of dout . o,
 * with o a full causal softmax in double. A q element of (row i, head h) or
 * a k/v element of (row j, kv head g) changes only the terms of its
 * sequence and group, so the difference of this partial sum is the
 * difference of the whole objective sum(dout . o). */
static double fd_objective(const bw_data *a, const double *q, const double *k, const double *v, uint32_t b,
                           uint32_t g, double *w) {
    const uint32_t T = a->s.T, D = a->s.hd;
    double total = 0;
    for (uint32_t t = 0; t < T; t++) {
        const size_t i = (size_t)b * T + t;
        for (uint32_t h = g * a->rep; h < (g + 1) * a->rep; h++) {
            const double *qh = q + i * a->qdim + (size_t)h * D;
            const float *dh = a->dout + i * a->qdim + (size_t)h * D;
            double mx = -INFINITY, sum = 0, acc = 0;
            for (uint32_t u = 0; u <= t; u++) {
                const double *kj = k + ((size_t)b * T + u) * a->kvdim + (size_t)g * D;
                double s = 0;
                for (uint32_t x = 0; x < D; x++) s += qh[x] * kj[x];
                w[u] = s * a->scale;
                mx = fmax(mx, w[u]);
            }
            for (uint32_t u = 0; u <= t; u++) {
                const double *vj = v + ((size_t)b * T + u) * a->kvdim + (size_t)g * D;
                double e = exp(w[u] - mx), dv = 0;
                for (uint32_t x = 0; x < D; x++) dv += dh[x] * vj[x];
                sum += e;
                acc += e * dv;
            }
            total += acc / sum;
        }
    }
    return total;
}

/* OH_CHECK_NMSE, except where the reference is zero up to rounding noise
 * (T = 1: one key, so the softmax is constant and dq = dk = 0, which the
 * twin gets as ~1e-8), where oh_compare's atol rules. */
static void check_nmse(const char *what, const float *a, const float *ref, size_t n, double limit) {
    double e = 0;
    for (size_t i = 0; i < n; i++) e += (double)ref[i] * ref[i];
    if (e <= 1e-12 * (double)n) {
        fprintf(stderr, "  %s: reference ~0 (rms %.3g), no NMSE\n", what, sqrt(e / (double)(n ? n : 1)));
        return;
    }
    OH_CHECK_NMSE(what, a, ref, n, limit);
}

static double *to_double(const float *x, size_t n) {
    double *y = oh_alloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

/* Checks the twin's gradient `grad` of one of q (which 0), k (1), v (2)
 * against central differences at up to `max_samples` elements (all of them
 * when there are no more, else a seeded random choice plus the first and last). */
static void check_fd(const bw_data *a, int which, const float *grad, uint32_t max_samples, uint64_t seed) {
    static const char *const names[3] = {"dq", "dk", "dv"};
    double *q = to_double(a->q, (size_t)a->rows * a->qdim), *k = to_double(a->k, (size_t)a->rows * a->kvdim),
           *v = to_double(a->v, (size_t)a->rows * a->kvdim), *w = oh_alloc(a->s.T * sizeof(double));
    double *x = which == 0 ? q : which == 1 ? k : v;
    const uint32_t dim = which == 0 ? a->qdim : a->kvdim;
    const size_t n = (size_t)a->rows * dim;
    const uint32_t ns = n < max_samples ? (uint32_t)n : max_samples;
    float *got = oh_alloc(ns * 4), *want = oh_alloc(ns * 4);
    tu_rng r;
    tu_rng_seed(&r, seed);
    const double eps = 1e-4; /* central differences in double: error ~ eps^2 f''' / 6 ~ 1e-9 */
    for (uint32_t s = 0; s < ns; s++) {
        size_t e = ns == n ? s : s == 0 ? 0 : s == 1 ? n - 1 : tu_rng_u32(&r) % n;
        size_t row = e / dim;
        uint32_t b = (uint32_t)(row / a->s.T), head = (uint32_t)(e % dim) / a->s.hd;
        uint32_t g = which == 0 ? head / a->rep : head;
        double x0 = x[e];
        x[e] = x0 + eps;
        double fp = fd_objective(a, q, k, v, b, g, w);
        x[e] = x0 - eps;
        double fm = fd_objective(a, q, k, v, b, g, w);
        x[e] = x0;
        want[s] = (float)((fp - fm) / (2 * eps));
        got[s] = grad[e];
    }
    char what[64];
    snprintf(what, sizeof what, "%s twin vs finite differences (%u of %zu)", names[which], ns, n);
    /* the twin: fp32 scores and dots from the fp32 forward's o and lse */
    assert_int_equal(oh_compare(what, got, want, ns, 2e-6, 2e-5), 0);
    check_nmse(what, got, want, ns, 1e-11);
    free(q), free(k), free(v), free(w), free(got), free(want);
}

static void check_shape(bw_shape s, uint64_t seed) {
    bw_data a;
    make_data(&a, s, seed);
    fprintf(stderr, "B %u T %u heads %u/%u head_dim %u (block_size %u)\n", s.B, s.T, s.H, s.G, s.hd, a.bs);
    const size_t qn = (size_t)a.rows * a.qdim, kn = (size_t)a.rows * a.kvdim, ln = (size_t)a.rows * s.H;
    bw_out tw, tw3, dev, tw_dev;
    out_alloc(&tw, &a), out_alloc(&tw3, &a), out_alloc(&dev, &a), out_alloc(&tw_dev, &a);

    /* twin: forward, backward on 1 and 3 threads (same bits), finite differences */
    run_twin_fwd(&a, &tw);
    run_twin_bwd(&a, tw.o, tw.lse, &tw, 1);
    run_twin_bwd(&a, tw.o, tw.lse, &tw3, 3);
    assert_memory_equal(tw.d, tw3.d, ln * 4);
    assert_memory_equal(tw.dq, tw3.dq, qn * 4);
    assert_memory_equal(tw.dk, tw3.dk, kn * 4);
    assert_memory_equal(tw.dv, tw3.dv, kn * 4);
    const uint32_t samples = 48;
    check_fd(&a, 0, tw.dq, samples, seed + 100);
    check_fd(&a, 1, tw.dk, samples, seed + 200);
    check_fd(&a, 2, tw.dv, samples, seed + 300);

    /* device: forward (its lse vs the twin's) and backward from it, against the
     * twin's backward from the same o and lse */
    run_device(&a, &dev);
    OH_CHECK_NMSE("forward o vs twin", dev.o, tw.o, qn, 1e-11);
    assert_int_equal(oh_compare("forward lse vs twin", dev.lse, tw.lse, ln, 2e-6, 1e-6), 0);
    run_twin_bwd(&a, dev.o, dev.lse, &tw_dev, 2);
    /* shader: fp32 dots, exp and accumulators, summed in another order (the
     * twin: fp32 dots, double P, dS and sums) */
    assert_int_equal(oh_compare("d vs twin", dev.d, tw_dev.d, ln, 1e-6, 1e-5), 0);
    assert_int_equal(oh_compare("dq vs twin", dev.dq, tw_dev.dq, qn, 2e-6, 2e-5), 0);
    assert_int_equal(oh_compare("dk vs twin", dev.dk, tw_dev.dk, kn, 2e-6, 2e-5), 0);
    assert_int_equal(oh_compare("dv vs twin", dev.dv, tw_dev.dv, kn, 2e-6, 2e-5), 0);
    check_nmse("dq vs twin", dev.dq, tw_dev.dq, qn, 1e-11);
    check_nmse("dk vs twin", dev.dk, tw_dev.dk, kn, 1e-11);
    check_nmse("dv vs twin", dev.dv, tw_dev.dv, kn, 1e-11);

    out_free(&tw), out_free(&tw3), out_free(&dev), out_free(&tw_dev);
    free_data(&a);
}

/* small head dims: every GQA ratio, every T and B */
static void test_attention_backward_small(void **state) {
    (void)state;
    static const bw_shape shapes[] = {
        {1, 1, 1, 1, 4}, {3, 1, 8, 4, 8}, {2, 5, 4, 4, 8}, {3, 17, 6, 2, 4}, {3, 40, 4, 4, 8}, {1, 17, 1, 1, 8},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) check_shape(shapes[i], 10 + i);
}

/* head_dim 64 and 128 */
static void test_attention_backward_large(void **state) {
    (void)state;
    static const bw_shape shapes[] = {
        {1, 40, 8, 4, 64}, {3, 5, 6, 2, 64}, {2, 17, 8, 4, 128}, {2, 40, 1, 1, 128}, {1, 5, 4, 4, 128},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) check_shape(shapes[i], 30 + i);
}

/* T = 40 with the inference block size 16: padded to 48 slots per sequence.
 * The real rows' gradients equal those of the unpadded layout bit for bit,
 * the padding rows' are zero. */
static void test_attention_backward_padded(void **state) {
    (void)state;
    const bw_shape s = {2, 40, 6, 2, 8};
    const uint32_t Tp = 48;
    bw_data a, p;
    make_data(&a, s, 77);
    make_data(&p, (bw_shape){s.B, Tp, s.H, s.G, s.hd}, 77);
    assert_int_equal(p.bs, 16);
    for (uint32_t b = 0; b < s.B; b++)
        for (uint32_t t = 0; t < Tp; t++) {
            size_t pi = (size_t)b * Tp + t, ai = (size_t)b * s.T + t;
            bool real = t < s.T;
            for (uint32_t x = 0; x < a.qdim; x++) {
                p.q[pi * a.qdim + x] = real ? a.q[ai * a.qdim + x] : 0.0f;
                p.dout[pi * a.qdim + x] = real ? a.dout[ai * a.qdim + x] : 0.0f;
            }
            for (uint32_t x = 0; x < a.kvdim; x++) {
                p.k[pi * a.kvdim + x] = real ? a.k[ai * a.kvdim + x] : 0.0f;
                p.v[pi * a.kvdim + x] = real ? a.v[ai * a.kvdim + x] : 0.0f;
            }
        }
    bw_out ra, rp;
    out_alloc(&ra, &a), out_alloc(&rp, &p);
    run_device(&a, &ra);
    run_device(&p, &rp);
    for (uint32_t b = 0; b < s.B; b++)
        for (uint32_t t = 0; t < Tp; t++) {
            size_t pi = (size_t)b * Tp + t, ai = (size_t)b * s.T + t;
            if (t < s.T) {
                assert_memory_equal(rp.dq + pi * a.qdim, ra.dq + ai * a.qdim, a.qdim * 4);
                assert_memory_equal(rp.dk + pi * a.kvdim, ra.dk + ai * a.kvdim, a.kvdim * 4);
                assert_memory_equal(rp.dv + pi * a.kvdim, ra.dv + ai * a.kvdim, a.kvdim * 4);
            } else {
                for (uint32_t x = 0; x < a.qdim; x++) assert_true(rp.dq[pi * a.qdim + x] == 0.0f);
                for (uint32_t x = 0; x < a.kvdim; x++)
                    assert_true(rp.dk[pi * a.kvdim + x] == 0.0f && rp.dv[pi * a.kvdim + x] == 0.0f);
            }
        }
    out_free(&ra), out_free(&rp);
    free_data(&a), free_data(&p);
}

/* One sequence of 2 tokens, one head, head_dim 4 (scale 1/2): K0 = V0 =
 * (1,0,0,0), K1 = V1 = (0,1,0,0), q0 = q1 = (2,0,0,0), dout0 = dout1 =
 * (1,0,0,0). Row 0 sees key 0 only: P = 1, o0 = V0, D0 = 1, dS00 = 0. Row 1:
 * scores (1, 0), P = (a, 1-a) with a = e/(e+1), o1 = (a, 1-a, 0, 0), D1 = a,
 * dS10 = a(1-a), dS11 = -a(1-a); with c = a(1-a) = e/(e+1)^2 = 0.19661193:
 *   dq0 = 0, dq1 = scale (c K0 - c K1) = (c/2, -c/2, 0, 0)
 *   dk0 = scale dS10 q1 = (c, 0, 0, 0), dk1 = scale dS11 q1 = (-c, 0, 0, 0)
 *   dv0 = dout0 + a dout1 = (1 + a, 0, 0, 0), dv1 = (1 - a) dout1
 *   d = (D0, D1) = (1, a). */
static void test_attention_backward_hand(void **state) {
    (void)state;
    bw_data a;
    make_data(&a, (bw_shape){1, 2, 1, 1, 4}, 5);
    const float e1[4] = {1, 0, 0, 0}, e2[4] = {0, 1, 0, 0}, q[4] = {2, 0, 0, 0};
    memcpy(a.k, e1, 16), memcpy(a.k + 4, e2, 16), memcpy(a.v, e1, 16), memcpy(a.v + 4, e2, 16);
    memcpy(a.q, q, 16), memcpy(a.q + 4, q, 16), memcpy(a.dout, e1, 16), memcpy(a.dout + 4, e1, 16);
    const float A = 0.731058579f, c = 0.196611933f;
    const float want_dq[8] = {0, 0, 0, 0, c / 2, -c / 2, 0, 0}, want_dk[8] = {c, 0, 0, 0, -c, 0, 0, 0};
    const float want_dv[8] = {1 + A, 0, 0, 0, 1 - A, 0, 0, 0}, want_d[2] = {1, A};
    bw_out r;
    out_alloc(&r, &a);
    run_device(&a, &r);
    assert_int_equal(oh_compare("hand dq", r.dq, want_dq, 8, 1e-6, 1e-6), 0);
    assert_int_equal(oh_compare("hand dk", r.dk, want_dk, 8, 1e-6, 1e-6), 0);
    assert_int_equal(oh_compare("hand dv", r.dv, want_dv, 8, 1e-6, 1e-6), 0);
    assert_int_equal(oh_compare("hand d", r.d, want_d, 2, 1e-6, 1e-6), 0);
    out_free(&r);
    free_data(&a);
}

static void test_attention_backward_errors(void **state) {
    (void)state;
    lgpu_buf *b = oh_buf(NULL, 65536);
    lgpu_ref r = oh_ref(b);
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    lgpu_attention_backward_params p = {1, 4, 6, 4, 8, 0.35f}; /* 6 heads, 4 kv heads */
    assert_int_equal(lgpu_op_attention_backward(ex, &p, r, r, r, r, r, r, r, r, r, r), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "n_kv_heads"));
    p = (lgpu_attention_backward_params){1, 4, 4, 4, 512, 0.05f}; /* head_dim 512 */
    assert_int_equal(lgpu_op_attention_backward(ex, &p, r, r, r, r, r, r, r, r, r, r), LGPU_EUNSUPPORTED);
    p = (lgpu_attention_backward_params){2, 64, 8, 8, 64, 0.125f}; /* q needs 256 KiB */
    assert_int_equal(lgpu_op_attention_backward(ex, &p, r, r, r, r, r, r, r, r, r, r), LGPU_ERANGE);
    assert_non_null(strstr(lgpu_last_error(), "attention_backward"));
    p = (lgpu_attention_backward_params){0, 64, 8, 8, 64, 0.125f}; /* empty */
    TU_OK(lgpu_op_attention_backward(ex, &p, r, r, r, r, r, r, r, r, r, r));
    if (lgpu_dev_kind_of(oh_dev) != LGPU_DEV_CPU) { /* the shaders read vec4s */
        p = (lgpu_attention_backward_params){1, 2, 1, 1, 6, 0.4f};
        assert_int_equal(lgpu_op_attention_backward(ex, &p, r, r, r, r, r, r, r, r, r, r), LGPU_EUNSUPPORTED);
    }
    TU_OK(lgpu_exec_submit(ex));
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_backward_hand),   cmocka_unit_test(test_attention_backward_small),
        cmocka_unit_test(test_attention_backward_large),  cmocka_unit_test(test_attention_backward_padded),
        cmocka_unit_test(test_attention_backward_errors),
    };
    return cmocka_run_group_tests(tests, oh_setup, oh_teardown);
}
