/* Paged KV cache: kv_store then attention in one exec on the selected device,
 * against the C twins (pools: exact; attention: tolerances below), and the
 * online-softmax C twin against a naive full-softmax reference in double
 * written here, output and softmax statistics (lse, the training operand). Several sequences of different lengths per call, prefill
 * (many tokens of one sequence, causal) mixed with decode (one token per
 * sequence), GQA ratios 1/2/4, head_dim 8/64/128, shuffled block tables,
 * F32 and F16 pools. */
#include <math.h>

#include "ops_harness.h"
#include "quant/quant.h"
#include "ref/ref_matmul.h"

typedef struct {
    uint32_t n_heads, n_kv_heads, head_dim, block_size;
    int n_seqs;
    uint32_t len[4];           /* tokens cached per sequence */
    int prefill_seq;           /* this sequence's positions [prefill_from, len) are in the batch ... */
    uint32_t prefill_from;
    /* ... followed by one decode token (position len - 1) for every other sequence */
    uint32_t kv_type; /* pool elements: LGPU_TYPE_F32 (0) or LGPU_TYPE_F16 */
    bool check_no_lse; /* also run without the lse operand: same output bits */
} att_cfg;

typedef struct {
    att_cfg cfg;
    uint32_t kv_dim, max_blocks, n_blocks;
    int32_t *table;              /* (n_seqs, max_blocks), -1 = unused */
    uint32_t Ts;                 /* tokens stored */
    int32_t *st_seq, *st_pos;
    float *k, *v;                /* (Ts, src_stride) */
    uint32_t src_stride;
    uint32_t T;                  /* tokens attending */
    int32_t *tok_seq, *tok_pos;
    float *q;                    /* (T, q_stride) */
    uint32_t q_stride;
    void *pool0;                 /* initial pool content (random: wrong slots show up) */
    size_t pool_elems, pool_bytes;
} att_data;

/* Element i of a pool of kv_type. */
static float pool_at(const void *pool, size_t i, uint32_t kv_type) {
    return kv_type == LGPU_TYPE_F16 ? lgpu_f16_to_f32(((const lgpu_f16 *)pool)[i]) : ((const float *)pool)[i];
}

static void make_data(att_data *a, const att_cfg *cfg, uint64_t seed) {
    memset(a, 0, sizeof *a);
    a->cfg = *cfg;
    tu_rng r;
    tu_rng_seed(&r, seed);
    uint32_t bs = cfg->block_size, maxlen = 0, need = 0;
    for (int s = 0; s < cfg->n_seqs; s++) {
        maxlen = cfg->len[s] > maxlen ? cfg->len[s] : maxlen;
        need += (cfg->len[s] + bs - 1) / bs;
    }
    a->kv_dim = cfg->n_kv_heads * cfg->head_dim;
    a->max_blocks = (maxlen + bs - 1) / bs + 2;
    a->n_blocks = need + 5;
    /* shuffled block ids: sequences get scattered, non-contiguous blocks */
    int32_t *perm = oh_alloc(a->n_blocks * 4);
    for (uint32_t i = 0; i < a->n_blocks; i++) perm[i] = (int32_t)i;
    for (uint32_t i = a->n_blocks - 1; i > 0; i--) {
        uint32_t j = tu_rng_u32(&r) % (i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    a->table = oh_alloc((size_t)cfg->n_seqs * a->max_blocks * 4);
    for (size_t i = 0; i < (size_t)cfg->n_seqs * a->max_blocks; i++) a->table[i] = -1;
    uint32_t next = 0;
    for (int s = 0; s < cfg->n_seqs; s++)
        for (uint32_t b = 0; b < (cfg->len[s] + bs - 1) / bs; b++) a->table[s * a->max_blocks + b] = perm[next++];
    free(perm);

    for (int s = 0; s < cfg->n_seqs; s++) a->Ts += cfg->len[s];
    a->src_stride = a->kv_dim + 3;
    a->st_seq = oh_alloc(a->Ts * 4), a->st_pos = oh_alloc(a->Ts * 4);
    a->k = oh_alloc((size_t)a->Ts * a->src_stride * 4), a->v = oh_alloc((size_t)a->Ts * a->src_stride * 4);
    /* stored in an interleaved order (not sequence by sequence) */
    uint32_t t = 0;
    for (uint32_t j = 0; j < maxlen; j++)
        for (int s = 0; s < cfg->n_seqs; s++)
            if (j < cfg->len[s]) a->st_seq[t] = s, a->st_pos[t] = (int32_t)j, t++;
    tu_fill_uniform(&r, a->k, (size_t)a->Ts * a->src_stride, -1, 1);
    tu_fill_uniform(&r, a->v, (size_t)a->Ts * a->src_stride, -1, 1);

    a->T = cfg->len[cfg->prefill_seq] - cfg->prefill_from + (uint32_t)cfg->n_seqs - 1;
    a->tok_seq = oh_alloc(a->T * 4), a->tok_pos = oh_alloc(a->T * 4);
    t = 0;
    for (int s = 0; s < cfg->n_seqs; s++) {
        if (s == cfg->prefill_seq)
            for (uint32_t j = cfg->prefill_from; j < cfg->len[s]; j++) a->tok_seq[t] = s, a->tok_pos[t] = (int32_t)j, t++;
        else
            a->tok_seq[t] = s, a->tok_pos[t] = (int32_t)cfg->len[s] - 1, t++;
    }
    a->q_stride = cfg->n_heads * cfg->head_dim + 5;
    a->q = oh_alloc((size_t)a->T * a->q_stride * 4);
    tu_fill_uniform(&r, a->q, (size_t)a->T * a->q_stride, -1, 1);
    a->pool_elems = (size_t)a->n_blocks * bs * a->kv_dim;
    a->pool_bytes = a->pool_elems * (cfg->kv_type == LGPU_TYPE_F16 ? 2 : 4);
    float *junk = oh_alloc(a->pool_elems * 4);
    tu_fill_uniform(&r, junk, a->pool_elems, -50, 50);
    a->pool0 = oh_alloc(a->pool_bytes);
    if (cfg->kv_type == LGPU_TYPE_F16)
        for (size_t i = 0; i < a->pool_elems; i++) ((lgpu_f16 *)a->pool0)[i] = lgpu_f32_to_f16(junk[i]);
    else
        memcpy(a->pool0, junk, a->pool_bytes);
    free(junk);
}

static void free_data(att_data *a) {
    free(a->table), free(a->st_seq), free(a->st_pos), free(a->k), free(a->v);
    free(a->tok_seq), free(a->tok_pos), free(a->q), free(a->pool0);
}

static lgpu_kv_store_params store_params(const att_data *a) {
    return (lgpu_kv_store_params){a->Ts, a->kv_dim, a->src_stride, a->cfg.block_size, a->max_blocks, a->cfg.kv_type};
}

static lgpu_attention_params att_params(const att_data *a) {
    return (lgpu_attention_params){a->T,        a->cfg.n_heads,         a->cfg.n_kv_heads, a->cfg.head_dim,
                                   a->q_stride, a->cfg.block_size,      a->max_blocks,
                                   1.0f / sqrtf((float)a->cfg.head_dim), a->cfg.kv_type};
}

/* Full softmax over every key in double: the oracle for the online twin;
 * lse[t, h] = log sum_j exp(score_j) = max + log(sum_j exp(score_j - max)). */
static void naive_attention(const lgpu_attention_params *p, const float *q, const int32_t *tok_seq,
                            const int32_t *tok_pos, const int32_t *table, const void *kp, const void *vp, float *out,
                            float *lse) {
    uint32_t D = p->head_dim, kv_dim = p->n_kv_heads * D;
    double *s = oh_alloc(((size_t)tok_pos[0] + 1) * 8), *acc = oh_alloc(D * 8);
    size_t cap = (size_t)tok_pos[0] + 1;
    for (uint32_t t = 0; t < p->T; t++) {
        uint32_t n = tok_pos[t] < 0 ? 0 : (uint32_t)tok_pos[t] + 1;
        if (n > cap) s = realloc(s, n * 8), cap = n;
        assert_non_null(s);
        for (uint32_t h = 0; h < p->n_heads; h++) {
            uint32_t g = h / (p->n_heads / p->n_kv_heads);
            const float *qh = q + (size_t)t * p->q_stride + h * D;
            double mx = -INFINITY, sum = 0;
            for (uint32_t j = 0; j < n; j++) {
                int32_t b = table[tok_seq[t] * p->max_blocks + j / p->block_size];
                if (b < 0) { s[j] = -INFINITY; continue; }
                size_t k = ((size_t)b * p->block_size + j % p->block_size) * kv_dim + g * D;
                double d = 0;
                for (uint32_t i = 0; i < D; i++) d += (double)qh[i] * pool_at(kp, k + i, p->kv_type);
                s[j] = d * p->scale;
                mx = fmax(mx, s[j]);
            }
            memset(acc, 0, D * 8);
            for (uint32_t j = 0; j < n; j++) {
                if (s[j] == -INFINITY) continue;
                int32_t b = table[tok_seq[t] * p->max_blocks + j / p->block_size];
                size_t v = ((size_t)b * p->block_size + j % p->block_size) * kv_dim + g * D;
                double w = exp(s[j] - mx);
                sum += w;
                for (uint32_t i = 0; i < D; i++) acc[i] += w * pool_at(vp, v + i, p->kv_type);
            }
            float *o = out + ((size_t)t * p->n_heads + h) * D;
            for (uint32_t i = 0; i < D; i++) o[i] = sum > 0 ? (float)(acc[i] / sum) : 0.0f;
            lse[(size_t)t * p->n_heads + h] = sum > 0 ? (float)(mx + log(sum)) : -INFINITY;
        }
    }
    free(s), free(acc);
}

/* device run: kv_store then attention in one exec */
typedef struct {
    const att_data *a;
    lgpu_kv_store_params sp;
    lgpu_attention_params ap;
    lgpu_buf *k, *v, *st_seq, *st_pos, *table, *kp, *vp, *q, *tok_seq, *tok_pos, *out;
    size_t lse_off; /* 0: no lse operand; else out holds lse from this byte (after the attention output) */
} dev_run;

static void run_reset(oh_case *c) {
    dev_run *d = c->ctx;
    TU_OK(lgpu_buf_write(d->kp, 0, d->a->pool0, d->a->pool_bytes));
    TU_OK(lgpu_buf_write(d->vp, 0, d->a->pool0, d->a->pool_bytes));
    oh_poison(d->out, c->out_bytes);
}

static int run_record(oh_case *c, lgpu_exec *ex) {
    dev_run *d = c->ctx;
    int st = lgpu_op_kv_store(ex, &d->sp, oh_ref(d->k), oh_ref(d->v), oh_ref(d->st_seq), oh_ref(d->st_pos),
                              oh_ref(d->table), oh_ref(d->kp), oh_ref(d->vp));
    if (st) return st;
    lgpu_ref lse = d->lse_off ? lgpu_ref_at(d->out, d->lse_off) : (lgpu_ref){0};
    return lgpu_op_attention(ex, &d->ap, oh_ref(d->q), oh_ref(d->tok_seq), oh_ref(d->tok_pos), oh_ref(d->table),
                             oh_ref(d->kp), oh_ref(d->vp), oh_ref(d->out), lse);
}

/* Runs the case on the device: `got` (T, n_heads*head_dim), pools read
 * back, and with lse_got != NULL the softmax statistics (T, n_heads). */
static void run_device_lse(const att_data *a, float *got, float *lse_got, void *kp_got, void *vp_got) {
    size_t sb = (size_t)a->Ts * a->src_stride * 4, ob = (size_t)a->T * a->cfg.n_heads * a->cfg.head_dim * 4;
    size_t lse_off = lse_got ? (ob + 255) / 256 * 256 : 0, lb = (size_t)a->T * a->cfg.n_heads * 4;
    size_t all_b = lse_got ? lse_off + lb : ob;
    dev_run d = {a, store_params(a), att_params(a)};
    d.lse_off = lse_off;
    d.k = oh_buf(a->k, sb), d.v = oh_buf(a->v, sb);
    d.st_seq = oh_buf(a->st_seq, a->Ts * 4), d.st_pos = oh_buf(a->st_pos, a->Ts * 4);
    d.table = oh_buf(a->table, (size_t)a->cfg.n_seqs * a->max_blocks * 4);
    d.kp = oh_buf(a->pool0, a->pool_bytes), d.vp = oh_buf(a->pool0, a->pool_bytes);
    d.q = oh_buf(a->q, (size_t)a->T * a->q_stride * 4);
    d.tok_seq = oh_buf(a->tok_seq, a->T * 4), d.tok_pos = oh_buf(a->tok_pos, a->T * 4);
    d.out = oh_buf(NULL, all_b);
    oh_case c = {run_reset, run_record, d.out, all_b, &d};
    char *res = oh_alloc(all_b);
    oh_run3(&c, res);
    memcpy(got, res, ob);
    if (lse_got) memcpy(lse_got, res + lse_off, lb);
    free(res);
    TU_OK(lgpu_buf_read(d.kp, 0, kp_got, a->pool_bytes));
    TU_OK(lgpu_buf_read(d.vp, 0, vp_got, a->pool_bytes));
    lgpu_buf *all[] = {d.k, d.v, d.st_seq, d.st_pos, d.table, d.kp, d.vp, d.q, d.tok_seq, d.tok_pos, d.out};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lgpu_buf_destroy(all[i]);
}

static void run_device(const att_data *a, float *got, void *kp_got, void *vp_got) {
    run_device_lse(a, got, NULL, kp_got, vp_got);
}

static void check_cfg(const att_cfg *cfg, uint64_t seed) {
    att_data a;
    make_data(&a, cfg, seed);
    lgpu_kv_store_params sp = store_params(&a);
    lgpu_attention_params ap = att_params(&a);
    size_t on = (size_t)a.T * cfg->n_heads * cfg->head_dim, ln = (size_t)a.T * cfg->n_heads;

    /* host twins: store, then online attention (1 and 4 threads) and the naive oracle */
    void *kp = oh_alloc(a.pool_bytes), *vp = oh_alloc(a.pool_bytes);
    memcpy(kp, a.pool0, a.pool_bytes);
    memcpy(vp, a.pool0, a.pool_bytes);
    lgpu_ref_kv_store(&sp, a.k, a.v, a.st_seq, a.st_pos, a.table, kp, vp);
    float *twin = oh_alloc(on * 4), *twin4 = oh_alloc(on * 4), *naive = oh_alloc(on * 4), *got = oh_alloc(on * 4);
    float *lse = oh_alloc(ln * 4), *lse4 = oh_alloc(ln * 4), *lse_naive = oh_alloc(ln * 4), *lse_got = oh_alloc(ln * 4);
    lgpu_ref_attention(&ap, a.q, a.tok_seq, a.tok_pos, a.table, kp, vp, twin, lse, 1);
    lgpu_ref_attention(&ap, a.q, a.tok_seq, a.tok_pos, a.table, kp, vp, twin4, lse4, 4);
    assert_memory_equal(twin, twin4, on * 4); /* independent of the thread count */
    assert_memory_equal(lse, lse4, ln * 4);
    int isa = lgpu_ref_matmul_set_isa(LGPU_MM_ISA_PLAIN); /* baseline x86-64 build of the twin */
    lgpu_ref_attention(&ap, a.q, a.tok_seq, a.tok_pos, a.table, kp, vp, twin4, lse4, 2);
    lgpu_ref_matmul_set_isa(isa);
    assert_memory_equal(twin, twin4, on * 4); /* same bits as the AVX2 build */
    assert_memory_equal(lse, lse4, ln * 4);
    lgpu_ref_attention(&ap, a.q, a.tok_seq, a.tok_pos, a.table, kp, vp, twin4, NULL, 3);
    assert_memory_equal(twin, twin4, on * 4); /* saving lse changes no output bit */
    naive_attention(&ap, a.q, a.tok_seq, a.tok_pos, a.table, kp, vp, naive, lse_naive);
    /* online softmax in fp32 (dots, exp, accumulators) vs full softmax in double */
    assert_int_equal(oh_compare("attention twin vs naive", twin, naive, on, 2e-6, 2e-5), 0);
    OH_CHECK_NMSE("attention twin vs naive", twin, naive, on, 1e-11);
    /* lse: fp32 scores (|score| <~ 3 here) and running max, log of a sum in double */
    assert_int_equal(oh_compare("lse twin vs naive", lse, lse_naive, ln, 2e-6, 1e-6), 0);

    /* device: kv_store + attention; pools must equal the twin's exactly (copies,
     * or F16 values rounded the same way) */
    void *kp_got = oh_alloc(a.pool_bytes), *vp_got = oh_alloc(a.pool_bytes);
    run_device_lse(&a, got, lse_got, kp_got, vp_got);
    assert_memory_equal(kp_got, kp, a.pool_bytes);
    assert_memory_equal(vp_got, vp, a.pool_bytes);
    /* shader: fp32 dots, exp (GLSL: a few ulp) and accumulators, summed in another order */
    assert_int_equal(oh_compare("attention vs naive", got, naive, on, 2e-6, 2e-5), 0);
    OH_CHECK_NMSE("attention vs naive", got, naive, on, 1e-11);
    OH_CHECK_NMSE("attention vs twin", got, twin, on, 1e-11);
    /* lse: m + log(l) in fp32 (GLSL log: a few ulp) */
    assert_int_equal(oh_compare("lse vs naive", lse_got, lse_naive, ln, 2e-6, 1e-6), 0);
    assert_int_equal(oh_compare("lse vs twin", lse_got, lse, ln, 2e-6, 1e-6), 0);
    /* the inference call (no lse operand) gives the same output bits */
    float *got_nolse = oh_alloc(on * 4);
    if (cfg->check_no_lse) {
        run_device(&a, got_nolse, kp_got, vp_got);
        assert_memory_equal(got, got_nolse, on * 4);
    }

    free(kp), free(vp), free(twin), free(twin4), free(naive), free(got), free(kp_got), free(vp_got);
    free(lse), free(lse4), free(lse_naive), free(lse_got), free(got_nolse);
    free_data(&a);
}

/* GQA ratio 1, head_dim 64: a 300-token prefill plus two decodes */
static void test_attention_mha(void **state) {
    (void)state;
    att_cfg c = {4, 4, 64, 16, 3, {300, 17, 1}, 0, 0, 0, true};
    check_cfg(&c, 1);
}

/* GQA ratio 4, head_dim 128, context 1000: a 40-token chunk continuing a
 * prefill at position 960, plus decodes */
static void test_attention_gqa4_long(void **state) {
    (void)state;
    att_cfg c = {8, 2, 128, 16, 3, {1000, 33, 16}, 0, 960};
    check_cfg(&c, 2);
}

/* GQA ratio 2, head_dim 8, block_size 16 and 7 (not a power of two); also
 * with the shared-memory reduction build */
static void test_attention_gqa2_small(void **state) {
    (void)state;
    att_cfg c = {4, 2, 8, 16, 4, {5, 129, 64, 16}, 1, 0};
    check_cfg(&c, 3);
    c.block_size = 7;
    check_cfg(&c, 4);
    oh_force_no_subgroup(true);
    c.block_size = 16;
    check_cfg(&c, 5);
    oh_force_no_subgroup(false);
}

/* F16 pools: the MHA and small GQA cases again, with the shared-memory
 * reduction build too; kv_store must round exactly like lgpu_f32_to_f16. */
static void test_attention_f16(void **state) {
    (void)state;
    att_cfg c = {4, 4, 64, 16, 3, {300, 17, 1}, 0, 0, LGPU_TYPE_F16};
    check_cfg(&c, 21);
    att_cfg g = {4, 2, 8, 16, 4, {5, 129, 64, 16}, 1, 0, LGPU_TYPE_F16};
    check_cfg(&g, 22);
    oh_force_no_subgroup(true);
    g.block_size = 7;
    g.check_no_lse = true;
    check_cfg(&g, 23);
    oh_force_no_subgroup(false);
}

/* kv_store's F16 rounding on the values where it is delicate: ties to even,
 * the subnormal range, overflow to infinity, NaN, signed zero. */
static void test_kv_store_f16_rounding(void **state) {
    (void)state;
    att_cfg cfg = {1, 1, 16, 16, 1, {1}, 0, 0, LGPU_TYPE_F16};
    att_data a;
    make_data(&a, &cfg, 31);
    const float vals[16] = {1.0f + 0x1p-11f, 1.0f + 0x1p-11f + 0x1p-10f, 65519.0f, 65520.0f, 1e6f, -1e6f,
                            0x1p-25f, 0x1.8p-25f, 0x1p-24f, 0x1.4p-20f, 5.96e-8f, -0.0f, NAN, 0x1p-14f, -3.14159f,
                            1e-30f};
    memcpy(a.k, vals, sizeof vals);
    memcpy(a.v, vals, sizeof vals);
    lgpu_kv_store_params sp = store_params(&a);
    void *kp = oh_alloc(a.pool_bytes), *vp = oh_alloc(a.pool_bytes), *kp_got = oh_alloc(a.pool_bytes),
         *vp_got = oh_alloc(a.pool_bytes);
    memcpy(kp, a.pool0, a.pool_bytes);
    memcpy(vp, a.pool0, a.pool_bytes);
    lgpu_ref_kv_store(&sp, a.k, a.v, a.st_seq, a.st_pos, a.table, kp, vp);
    size_t slot = (size_t)a.table[0] * a.cfg.block_size * a.kv_dim;
    for (int i = 0; i < 16; i++) assert_int_equal(((lgpu_f16 *)kp)[slot + i], lgpu_f32_to_f16(vals[i]));
    float got[16];
    run_device(&a, got, kp_got, vp_got);
    assert_memory_equal(kp_got, kp, a.pool_bytes);
    assert_memory_equal(vp_got, vp, a.pool_bytes);
    free(kp), free(vp), free(kp_got), free(vp_got);
    free_data(&a);
}

/* One head, head_dim 4, keys K0 = (1, 0, 0, 0), K1 = (0, 1, 0, 0), V = K:
 *   q = (1, 0, 0, 0) at position 1: softmax(1, 0) = (e/(e+1), 1/(e+1)) = (0.7310586, 0.2689414),
 *     lse = log(e + 1) = 1.3132617;
 *   the same q at position 0 sees only key 0: out = V0, lse = 1. */
static void test_attention_hand(void **state) {
    (void)state;
    att_cfg cfg = {1, 1, 4, 16, 1, {2}, 0, 0};
    att_data a;
    make_data(&a, &cfg, 9);
    const float kv[2][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}};
    for (uint32_t t = 0; t < a.Ts; t++) {
        memcpy(a.k + t * a.src_stride, kv[a.st_pos[t]], 16);
        memcpy(a.v + t * a.src_stride, kv[a.st_pos[t]], 16);
    }
    for (uint32_t t = 0; t < a.T; t++) memcpy(a.q + t * a.q_stride, kv[0], 16);
    float got[8], lse[2];
    void *kp = oh_alloc(a.pool_bytes), *vp = oh_alloc(a.pool_bytes);
    const float want[8] = {1, 0, 0, 0, 0.731058579f, 0.268941421f, 0, 0}; /* tokens at positions 0, 1 */
    const float want_lse[2] = {1.0f, 1.31326169f};
    assert_int_equal(a.T, 2);
    /* the scale is 1/sqrt(head_dim): q0 = 2 makes the scores (1, 0) */
    for (uint32_t t = 0; t < a.T; t++) a.q[t * a.q_stride] = 2;
    run_device_lse(&a, got, lse, kp, vp);
    assert_int_equal(oh_compare("attention hand", got, want, 8, 1e-6, 1e-6), 0);
    assert_int_equal(oh_compare("attention hand lse", lse, want_lse, 2, 1e-6, 1e-6), 0);
    free(kp), free(vp);
    free_data(&a);
}

/* Tokens with a negative position attend to nothing (zero output); a block
 * id past the pools is an LGPU_ERANGE error on the host path and a masked key
 * on Vulkan (the shader cannot report, but must stay in bounds). */
static void test_attention_invalid(void **state) {
    (void)state;
    att_cfg cfg = {2, 1, 8, 16, 2, {40, 20}, 0, 0};
    att_data a;
    make_data(&a, &cfg, 11);
    a.tok_pos[3] = -1;
    lgpu_attention_params ap = att_params(&a);
    size_t on = (size_t)a.T * 2 * 8;
    void *kp = oh_alloc(a.pool_bytes), *vp = oh_alloc(a.pool_bytes);
    float *got = oh_alloc(on * 4), *want = oh_alloc(on * 4);
    memcpy(kp, a.pool0, a.pool_bytes);
    memcpy(vp, a.pool0, a.pool_bytes);
    lgpu_kv_store_params sp = store_params(&a);
    lgpu_ref_kv_store(&sp, a.k, a.v, a.st_seq, a.st_pos, a.table, kp, vp);
    float lse_want[128], lse_got[128];
    assert_true(a.T * 2 <= 128);
    lgpu_ref_attention(&ap, a.q, a.tok_seq, a.tok_pos, a.table, kp, vp, want, lse_want, 1);
    for (int i = 0; i < 16; i++) assert_true(want[3 * 16 + i] == 0.0f);
    assert_true(lse_want[6] == -INFINITY && lse_want[7] == -INFINITY); /* no key: log 0 */
    void *kp2 = oh_alloc(a.pool_bytes), *vp2 = oh_alloc(a.pool_bytes);
    run_device_lse(&a, got, lse_got, kp2, vp2);
    OH_CHECK_NMSE("attention, invalid position", got, want, on, 1e-11);
    for (int i = 0; i < 16; i++) assert_true(got[3 * 16 + i] == 0.0f);
    assert_true(lse_got[6] == -INFINITY && lse_got[7] == -INFINITY);
    lse_want[6] = lse_want[7] = lse_got[6] = lse_got[7] = 0;
    assert_int_equal(oh_compare("lse, invalid position", lse_got, lse_want, a.T * 2, 2e-6, 1e-6), 0);

    /* block 1 of sequence 0 points past the pools */
    int32_t saved = a.table[1];
    a.table[1] = (int32_t)a.n_blocks + 1000000;
    lgpu_buf *q = oh_buf(a.q, (size_t)a.T * a.q_stride * 4), *ts = oh_buf(a.tok_seq, a.T * 4),
             *tp = oh_buf(a.tok_pos, a.T * 4), *tb = oh_buf(a.table, (size_t)2 * a.max_blocks * 4),
             *bk = oh_buf(kp, a.pool_bytes), *bv = oh_buf(vp, a.pool_bytes), *out = oh_buf(NULL, on * 4);
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    int st = lgpu_op_attention(ex, &ap, oh_ref(q), oh_ref(ts), oh_ref(tp), oh_ref(tb), oh_ref(bk), oh_ref(bv),
                               oh_ref(out), (lgpu_ref){0});
    TU_OK(lgpu_exec_submit(ex));
    if (lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU) {
        assert_int_equal(st, LGPU_ERANGE);
        assert_non_null(strstr(lgpu_last_error(), "block id"));
    } else {
        TU_OK(st);
        TU_OK(lgpu_buf_read(out, 0, got, on * 4));
        a.table[1] = -1; /* what the shader does with it: keys 16..31 of sequence 0 masked */
        lgpu_ref_attention(&ap, a.q, a.tok_seq, a.tok_pos, a.table, kp, vp, want, NULL, 1);
        OH_CHECK_NMSE("attention, masked block", got, want, on, 1e-11);
    }
    a.table[1] = saved;
    lgpu_exec_destroy(ex);
    lgpu_buf *all[] = {q, ts, tp, tb, bk, bv, out};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lgpu_buf_destroy(all[i]);
    free(kp), free(vp), free(kp2), free(vp2), free(got), free(want);
    free_data(&a);
}

static void test_attention_errors(void **state) {
    (void)state;
    lgpu_buf *b = oh_buf(NULL, 65536);
    lgpu_ref r = oh_ref(b);
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    lgpu_attention_params ap = {1, 6, 4, 64, 384, 16, 4, 0.125f}; /* 6 heads, 4 KV heads */
    assert_int_equal(lgpu_op_attention(ex, &ap, r, r, r, r, r, r, r, (lgpu_ref){0}), LGPU_EINVAL);
    ap = (lgpu_attention_params){1, 4, 4, 512, 2048, 16, 4, 0.125f}; /* head_dim 512 */
    assert_int_equal(lgpu_op_attention(ex, &ap, r, r, r, r, r, r, r, (lgpu_ref){0}), LGPU_EUNSUPPORTED);
    lgpu_kv_store_params sp = {2, 64, 32, 16, 4}; /* src_stride < kv_dim */
    assert_int_equal(lgpu_op_kv_store(ex, &sp, r, r, r, r, r, r, r), LGPU_EINVAL);
    sp = (lgpu_kv_store_params){1, 63, 63, 16, 4, LGPU_TYPE_F16}; /* F16 pools store pairs */
    assert_int_equal(lgpu_op_kv_store(ex, &sp, r, r, r, r, r, r, r), LGPU_EINVAL);
    sp = (lgpu_kv_store_params){1, 64, 64, 16, 4, LGPU_TYPE_Q8_0}; /* not a cache type */
    assert_int_equal(lgpu_op_kv_store(ex, &sp, r, r, r, r, r, r, r), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "kv_type"));
    ap = (lgpu_attention_params){1, 4, 4, 16, 64, 16, 4, 0.25f, LGPU_TYPE_BF16};
    assert_int_equal(lgpu_op_attention(ex, &ap, r, r, r, r, r, r, r, (lgpu_ref){0}), LGPU_EINVAL);
    /* a pool split over buffer segments (> 128 MB on lavapipe) is refused, not truncated */
    lgpu_buf *big;
    TU_OK(lgpu_buf_create(oh_dev, (size_t)130 << 20, 4096, &big));
    if (lgpu_buf_segments(big) > 1) {
        sp = (lgpu_kv_store_params){1, 64, 64, 16, 4};
        assert_int_equal(lgpu_op_kv_store(ex, &sp, r, r, r, r, r, oh_ref(big), r), LGPU_EUNSUPPORTED);
        ap = (lgpu_attention_params){1, 4, 4, 16, 64, 16, 4, 0.25f};
        assert_int_equal(lgpu_op_attention(ex, &ap, r, r, r, r, r, oh_ref(big), r, (lgpu_ref){0}), LGPU_EUNSUPPORTED);
        assert_non_null(strstr(lgpu_last_error(), "v_pool"));
    }
    lgpu_buf_destroy(big);
    TU_OK(lgpu_exec_submit(ex));
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_hand),     cmocka_unit_test(test_attention_mha),
        cmocka_unit_test(test_attention_gqa2_small), cmocka_unit_test(test_attention_gqa4_long),
        cmocka_unit_test(test_attention_invalid),  cmocka_unit_test(test_attention_errors),
        cmocka_unit_test(test_attention_f16),      cmocka_unit_test(test_kv_store_f16_rounding),
    };
    return cmocka_run_group_tests(tests, oh_setup, oh_teardown);
}
