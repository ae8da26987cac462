/* Inference contexts: KV pools, activation scratch, sequences. Everything a
 * decode step touches is allocated here once, so a step allocates nothing. */
#include <stdlib.h>
#include <string.h>

#include "model/llama_internal.h"

/* Logits rows per output pass: at most 64 MiB of logits (and one binding). */
static uint32_t logits_rows(const lgpu_ctx *c) {
    size_t row = (size_t)c->model->hp.n_vocab * sizeof(float);
    size_t cap = (size_t)64 << 20, maxb = lgpu_dev_max_binding(c->model->dev);
    if (maxb < cap) cap = maxb;
    size_t rows = cap / row;
    if (rows < 1) rows = 1;
    if (rows > c->params.n_batch) rows = c->params.n_batch;
    return (uint32_t)rows;
}

static int scratch_buf(lgpu_dev *dev, size_t bytes, lgpu_buf **out, const char *what) {
    if (bytes > lgpu_dev_max_binding(dev))
        return lgpu_set_error(LGPU_ERANGE, "context: %s scratch of %zu bytes exceeds the device's binding limit %zu "
                              "(lower n_batch)", what, bytes, lgpu_dev_max_binding(dev));
    return lgpu_buf_create(dev, LGPU_ALIGN_UP(bytes, LGPU_REF_ALIGN), LGPU_REF_ALIGN, out);
}

static int alloc_scratch(lgpu_ctx *c) {
    const lgpu_hparams *hp = &c->model->hp;
    lgpu_dev *dev = c->model->dev;
    lgpu_scratch *sc = &c->sc;
    size_t T = c->params.n_batch, f = sizeof(float);
    size_t q_dim = (size_t)hp->n_heads * hp->head_dim, kv_dim = (size_t)hp->n_kv_heads * hp->head_dim;
    int st;
    if ((st = scratch_buf(dev, T * hp->dim * f, &sc->x, "x")) || (st = scratch_buf(dev, T * hp->dim * f, &sc->h, "h")) ||
        (st = scratch_buf(dev, T * q_dim * f, &sc->q, "q")) || (st = scratch_buf(dev, T * kv_dim * f, &sc->k, "k")) ||
        (st = scratch_buf(dev, T * kv_dim * f, &sc->v, "v")) || (st = scratch_buf(dev, T * q_dim * f, &sc->att, "att")) ||
        (st = scratch_buf(dev, T * hp->hidden_dim * f, &sc->g, "gate")) ||
        (st = scratch_buf(dev, T * hp->hidden_dim * f, &sc->u, "up")) ||
        (st = scratch_buf(dev, T * hp->hidden_dim * f, &sc->s, "swiglu")))
        return st;
    c->n_out_max = logits_rows(c);
    size_t O = c->n_out_max;
    if ((st = scratch_buf(dev, O * hp->dim * f, &sc->xo, "output rows")) ||
        (st = scratch_buf(dev, O * hp->dim * f, &sc->ho, "output norm")) ||
        (st = scratch_buf(dev, O * hp->n_vocab * f, &sc->logits, "logits")))
        return st;
    /* step inputs at their largest: n_batch tokens, all wanting logits, from
     * as many sequences as a step can hold */
    size_t rows = c->params.n_seq_max < T ? c->params.n_seq_max : T;
    c->step_bytes = LGPU_ALIGN_UP(
        lgpu_step_layout_for(T, T, rows, c->kv.max_blocks, lgpu_lora_rows_bytes(T, LGPU_LORA_MAX_STACK)).end,
        LGPU_REF_ALIGN);
    if ((st = lgpu_buf_create(dev, c->step_bytes, c->step_bytes, &sc->step))) return st;
    c->step_host = calloc(1, c->step_bytes);
    if (!c->step_host) return lgpu_set_error(LGPU_ENOMEM, "context: step staging of %zu bytes", c->step_bytes);
    /* RoPE: inv_freq[i] = theta^(-2i/head_dim), LLaMA-3.1 scaling folded in */
    uint32_t half = hp->head_dim / 2;
    float *inv = malloc(half * sizeof *inv);
    if (!inv) return lgpu_set_error(LGPU_ENOMEM, "context: inv_freq");
    lgpu_rope_inv_freq(hp->rope_theta, hp->head_dim, &c->model->rope_scaling, inv);
    if (c->model->rope_freqs)
        for (uint32_t i = 0; i < half; i++) inv[i] /= c->model->rope_freqs[i];
    st = lgpu_buf_create(dev, LGPU_ALIGN_UP(half * sizeof *inv, LGPU_REF_ALIGN), LGPU_REF_ALIGN, &sc->inv_freq);
    if (!st) st = lgpu_buf_write(sc->inv_freq, 0, inv, half * sizeof *inv);
    free(inv);
    return st;
}

/* Bytes of one KV block (block_size slots of K or V for one layer). */
static size_t kv_block_bytes(const lgpu_hparams *hp, const lgpu_ctx_params *p) {
    return (size_t)p->block_size * hp->n_kv_heads * hp->head_dim *
           lgpu_kv_elem_bytes(p->kv_type);
}

static int alloc_pools(lgpu_ctx *c) {
    const lgpu_hparams *hp = &c->model->hp;
    size_t block_bytes = kv_block_bytes(hp, &c->params);
    size_t bytes = block_bytes * c->params.n_blocks;
    c->k_pool = calloc(hp->n_layers, sizeof *c->k_pool);
    c->v_pool = calloc(hp->n_layers, sizeof *c->v_pool);
    if (!c->k_pool || !c->v_pool) return lgpu_set_error(LGPU_ENOMEM, "context: pool table");
    for (uint32_t l = 0; l < hp->n_layers; l++) {
        int st;
        if ((st = lgpu_buf_create(c->model->dev, bytes, block_bytes, &c->k_pool[l])) ||
            (st = lgpu_buf_create(c->model->dev, bytes, block_bytes, &c->v_pool[l])))
            return st;
        /* Slots are written before they are read; zeroing keeps stale device
         * memory (possibly NaN bit patterns) out of any debugging dump. */
        if ((st = lgpu_buf_fill_zero(c->k_pool[l], 0, bytes)) || (st = lgpu_buf_fill_zero(c->v_pool[l], 0, bytes)))
            return st;
    }
    return 0;
}

lgpu_ctx_params lgpu_ctx_params_default(void) { return (lgpu_ctx_params){.kv_type = LGPU_TYPE_AUTO}; }

int lgpu_ctx_params_kv_type(lgpu_ctx_params *p, const char *name) {
    if (!p) return lgpu_set_error(LGPU_EINVAL, "lgpu_ctx_params_kv_type: NULL params");
    if (!name) return 0;
    static const struct {
        const char *name;
        lgpu_type type;
    } names[] = {{"auto", LGPU_TYPE_AUTO}, {"f16", LGPU_TYPE_F16}, {"f32", LGPU_TYPE_F32}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i].name)) {
            p->kv_type = names[i].type;
            return 0;
        }
    return lgpu_set_error(LGPU_EINVAL, "KV cache type '%s': use auto, f16 or f32", name);
}

int lgpu_ctx_create(lgpu_model *model, const lgpu_ctx_params *params, lgpu_ctx **out) {
    if (!model || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_ctx_create: NULL argument");
    *out = NULL;
    const lgpu_hparams *hp = &model->hp;
    lgpu_ctx_params p = params ? *params : lgpu_ctx_params_default();
    /* default: the training context, capped so a LLaMA-3.1 (131072) does not
     * ask for tens of GiB of KV pools */
    if (!p.n_ctx) p.n_ctx = hp->n_ctx_train && hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    if (!p.n_seq_max) p.n_seq_max = 1;
    if (!p.n_batch) p.n_batch = 512;
    if (!p.block_size) p.block_size = 16;
    if (p.n_ctx > (1u << 24) || p.n_seq_max > 4096 || p.n_batch > (1u << 16) || p.block_size > 4096)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_ctx_create: n_ctx %u / n_seq_max %u / n_batch %u / block_size %u out "
                              "of range", p.n_ctx, p.n_seq_max, p.n_batch, p.block_size);
    uint32_t per_seq = (p.n_ctx + p.block_size - 1) / p.block_size;
    if (p.kv_type == LGPU_TYPE_AUTO)
        p.kv_type = lgpu_dev_kind_of(model->dev) == LGPU_DEV_CPU ? LGPU_TYPE_F32 : LGPU_TYPE_F16;
    if (p.kv_type != LGPU_TYPE_F32 && p.kv_type != LGPU_TYPE_F16)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_ctx_create: kv_type %d is neither F16 nor F32", (int)p.kv_type);
    if (p.kv_type == LGPU_TYPE_F16 && (hp->n_kv_heads * hp->head_dim) % 2)
        p.kv_type = LGPU_TYPE_F32; /* an F16 pool stores pairs of values */
    size_t block_bytes = kv_block_bytes(hp, &p);
    size_t max_blocks_dev = lgpu_dev_max_binding(model->dev) / block_bytes;
    if (!p.n_blocks) {
        uint64_t want = (uint64_t)per_seq * p.n_seq_max;
        if (want > max_blocks_dev) {
            lgpu_log(LGPU_LOG_WARN, "KV pool capped at %zu blocks of %u tokens (device binding limit)", max_blocks_dev,
                     p.block_size);
            want = max_blocks_dev;
        }
        p.n_blocks = (uint32_t)want;
    } else if (p.n_blocks > max_blocks_dev) {
        return lgpu_set_error(LGPU_ERANGE, "lgpu_ctx_create: %u KV blocks of %zu bytes exceed the device's binding "
                              "limit (%zu blocks)", p.n_blocks, block_bytes, max_blocks_dev);
    }
    lgpu_ctx *c = calloc(1, sizeof *c);
    if (!c) return lgpu_set_error(LGPU_ENOMEM, "lgpu_ctx_create");
    c->model = model;
    c->params = p;
    int st = lgpu_kv_init(&c->kv, p.n_seq_max, p.n_ctx, p.block_size, p.n_blocks);
    if (st) {
        free(c);
        return st;
    }
    c->seq_row = malloc(p.n_seq_max * sizeof *c->seq_row);
    c->seq_next = malloc(p.n_seq_max * sizeof *c->seq_next);
    c->row_seq = malloc(p.n_seq_max * sizeof *c->row_seq);
    c->old_blocks = malloc(p.n_seq_max * sizeof *c->old_blocks);
    c->out_rows = malloc(p.n_batch * sizeof *c->out_rows);
    c->commit_tok = malloc(p.n_batch * sizeof *c->commit_tok);
    if (!c->seq_row || !c->seq_next || !c->row_seq || !c->old_blocks || !c->out_rows || !c->commit_tok) {
        st = lgpu_set_error(LGPU_ENOMEM, "lgpu_ctx_create: step tables");
        goto fail;
    }
    for (uint32_t i = 0; i < p.n_seq_max; i++) c->seq_row[i] = -1;
    if ((st = lgpu_ctx_lora_init(c)) || (st = alloc_pools(c)) || (st = alloc_scratch(c)) || (st = lgpu_exec_create(model->dev, &c->ex))) goto fail;
    *out = c;
    return 0;
fail:
    lgpu_ctx_destroy(c);
    return st;
}

void lgpu_ctx_destroy(lgpu_ctx *c) {
    if (!c) return;
    lgpu_exec_destroy(c->ex);
    if (c->k_pool)
        for (uint32_t l = 0; l < c->model->hp.n_layers; l++) lgpu_buf_destroy(c->k_pool[l]);
    if (c->v_pool)
        for (uint32_t l = 0; l < c->model->hp.n_layers; l++) lgpu_buf_destroy(c->v_pool[l]);
    free(c->k_pool);
    free(c->v_pool);
    lgpu_buf *bufs[] = {c->sc.x,  c->sc.h,  c->sc.q,  c->sc.k,      c->sc.v,    c->sc.att,      c->sc.g,
                        c->sc.u,  c->sc.s,  c->sc.xo, c->sc.ho,     c->sc.logits, c->sc.step, c->sc.inv_freq};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lgpu_buf_destroy(bufs[i]);
    lgpu_ctx_lora_free(c);
    lgpu_kv_destroy(&c->kv);
    free(c->step_host);
    free(c->seq_row);
    free(c->seq_next);
    free(c->row_seq);
    free(c->old_blocks);
    free(c->out_rows);
    free(c->commit_tok);
    free(c->rows_host);
    free(c);
}

const lgpu_ctx_params *lgpu_ctx_params_of(const lgpu_ctx *c) { return c ? &c->params : NULL; }

lgpu_model *lgpu_ctx_model(lgpu_ctx *c) { return c ? c->model : NULL; }
void lgpu_ctx_set_threads(lgpu_ctx *c, int n) {
    if (c) lgpu_exec_set_threads(c->ex, n);
}

int lgpu_seq_create(lgpu_ctx *c, int *seq) {
    if (!c || !seq) return lgpu_set_error(LGPU_EINVAL, "lgpu_seq_create: NULL argument");
    int st = lgpu_kv_seq_create(&c->kv, seq);
    if (!st) lgpu_ctx_lora_seq_open(c, *seq); /* the context's default adapters */
    return st;
}

void lgpu_seq_destroy(lgpu_ctx *c, int seq) {
    if (!c || !lgpu_kv_seq_valid(&c->kv, seq)) return;
    lgpu_ctx_lora_seq_close(c, seq);
    lgpu_kv_seq_destroy(&c->kv, seq);
}

int lgpu_seq_len(const lgpu_ctx *c, int seq) {
    if (!c || !lgpu_kv_seq_valid(&c->kv, seq)) return lgpu_set_error(LGPU_EINVAL, "lgpu_seq_len: bad sequence %d", seq);
    return c->kv.seq[seq].len;
}

int lgpu_seq_reuse_prefix(lgpu_ctx *c, int seq, const int32_t *tokens, int n) {
    if (!c) return lgpu_set_error(LGPU_EINVAL, "lgpu_seq_reuse_prefix: NULL context");
    return lgpu_kv_reuse_prefix(&c->kv, seq, tokens, n);
}

void lgpu_ctx_kv_usage(const lgpu_ctx *c, uint32_t *used_blocks, uint32_t *total_blocks) {
    uint32_t total = c ? c->kv.n_blocks : 0, free_ = c ? c->kv.n_free : 0;
    /* free blocks that still cache a prefix count as free: they are reclaimable */
    if (used_blocks) *used_blocks = total - free_;
    if (total_blocks) *total_blocks = total;
}
