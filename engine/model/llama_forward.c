/* The LLaMA forward pass over a batch of tokens from any open sequences,
 * recorded as one command stream (one submit) per lgpu_decode call.
 *
 * Notation: T tokens in the batch, D = dim, H heads of size hd, G kv heads,
 * F = hidden_dim, V = n_vocab. Activations are F32 rows, one per token. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/lora_internal.h"

#define TRY(expr)                 \
    do {                          \
        if ((st = (expr)) != 0) goto done; \
    } while (0)

static lgpu_ref R(lgpu_buf *b) { return lgpu_ref_at(b, 0); }

static int matmul(lgpu_exec *ex, const lgpu_wt *w, lgpu_buf *x, lgpu_buf *y, uint32_t M, bool acc) {
    lgpu_matmul_params p = {.M = M, .N = w->rows, .K = w->cols, .x_stride = w->cols, .y_stride = w->rows,
                            .accumulate = acc, .wtype = (uint32_t)w->type, .w_x8 = w->x8};
    return lgpu_op_matmul(ex, &p, R(w->buf), R(x), R(y));
}

static int rmsnorm(lgpu_exec *ex, const lgpu_wt *w, lgpu_buf *x, lgpu_buf *y, uint32_t M, float eps) {
    lgpu_rmsnorm_params p = {.M = M, .N = w->cols, .eps = eps};
    return lgpu_op_rmsnorm(ex, &p, R(x), R(w->buf), R(y));
}

/* Records the transformer layers for T tokens whose inputs are in sc.step. */
static int record_layers(lgpu_ctx *c, uint32_t T, const lgpu_step_layout *L) {
    const lgpu_model *m = c->model;
    const lgpu_hparams *hp = &m->hp;
    lgpu_scratch *sc = &c->sc;
    lgpu_exec *ex = c->ex;
    const uint32_t D = hp->dim, hd = hp->head_dim, H = hp->n_heads, G = hp->n_kv_heads, F = hp->hidden_dim;
    const uint32_t kv_dim = G * hd, q_dim = H * hd;
    lgpu_ref tok = lgpu_ref_at(sc->step, L->tok), pos = lgpu_ref_at(sc->step, L->pos);
    lgpu_ref row = lgpu_ref_at(sc->step, L->row), table = lgpu_ref_at(sc->step, L->table);
    int st = 0;

    /* x[t,:] = token_embd[token[t], :] */
    lgpu_get_rows_params gp = {.T = T, .K = D, .n_rows = m->tok_embd.rows, .etype = (uint32_t)m->tok_embd.type,
                               .e_x8 = m->tok_embd.x8};
    TRY(lgpu_op_get_rows(ex, &gp, R(m->tok_embd.buf), tok, R(sc->x)));

    for (uint32_t l = 0; l < hp->n_layers; l++) {
        const lgpu_layer_w *w = &m->layers[l];
        /* h = rmsnorm(x) * attn_norm */
        TRY(rmsnorm(ex, &w->attn_norm, sc->x, sc->h, T, hp->norm_eps));
        /* q = h Wq^T (T, H*hd); k = h Wk^T, v = h Wv^T (T, G*hd) */
        TRY(matmul(ex, &w->wq, sc->h, sc->q, T, false));
        TRY(matmul(ex, &w->wk, sc->h, sc->k, T, false));
        TRY(matmul(ex, &w->wv, sc->h, sc->v, T, false));
        /* + each row's adapters (after all three: one barrier, not three) */
        TRY(lgpu_ctx_lora_record(c, l, LGPU_LORA_Q, sc->h, sc->q, T, L->lora));
        TRY(lgpu_ctx_lora_record(c, l, LGPU_LORA_K, sc->h, sc->k, T, L->lora));
        TRY(lgpu_ctx_lora_record(c, l, LGPU_LORA_V, sc->h, sc->v, T, L->lora));
        /* rotate pairs (q[2i], q[2i+1]) by pos*inv_freq[i], same for k */
        lgpu_rope_params rq = {.T = T, .n_heads = H, .head_dim = hd, .token_stride = q_dim};
        lgpu_rope_params rk = {.T = T, .n_heads = G, .head_dim = hd, .token_stride = kv_dim};
        TRY(lgpu_op_rope(ex, &rq, R(sc->q), pos, R(sc->inv_freq)));
        TRY(lgpu_op_rope(ex, &rk, R(sc->k), pos, R(sc->inv_freq)));
        /* K[seq, pos] = k[t], V[seq, pos] = v[t] in the sequences' blocks */
        const uint32_t kv_type = (uint32_t)c->params.kv_type;
        lgpu_kv_store_params kp = {.T = T, .kv_dim = kv_dim, .src_stride = kv_dim, .block_size = c->params.block_size,
                                   .max_blocks = c->kv.max_blocks, .kv_type = kv_type};
        TRY(lgpu_op_kv_store(ex, &kp, R(sc->k), R(sc->v), row, pos, table, R(c->k_pool[l]), R(c->v_pool[l])));
        /* att[t,h] = sum_{j<=pos[t]} softmax_j(q[t,h].K[j,g] / sqrt(hd)) V[j,g] */
        lgpu_attention_params ap = {.T = T, .n_heads = H, .n_kv_heads = G, .head_dim = hd, .q_stride = q_dim,
                                    .block_size = c->params.block_size, .max_blocks = c->kv.max_blocks,
                                    .scale = 1.0f / sqrtf((float)hd), .kv_type = kv_type};
        TRY(lgpu_op_attention(ex, &ap, R(sc->q), row, pos, table, R(c->k_pool[l]), R(c->v_pool[l]), R(sc->att),
                              (lgpu_ref){0})); /* no softmax statistics: inference */
        /* x += att Wo^T (residual folded into the matmul) */
        TRY(matmul(ex, &w->wo, sc->att, sc->x, T, true));
        TRY(lgpu_ctx_lora_record(c, l, LGPU_LORA_O, sc->att, sc->x, T, L->lora));
        /* h = rmsnorm(x) * ffn_norm */
        TRY(rmsnorm(ex, &w->ffn_norm, sc->x, sc->h, T, hp->norm_eps));
        /* g = h Wgate^T, u = h Wup^T (T, F); s = silu(g) * u */
        TRY(matmul(ex, &w->w_gate, sc->h, sc->g, T, false));
        TRY(matmul(ex, &w->w_up, sc->h, sc->u, T, false));
        TRY(lgpu_ctx_lora_record(c, l, LGPU_LORA_GATE, sc->h, sc->g, T, L->lora));
        TRY(lgpu_ctx_lora_record(c, l, LGPU_LORA_UP, sc->h, sc->u, T, L->lora));
        lgpu_swiglu_params sp = {.n = T * F};
        TRY(lgpu_op_swiglu(ex, &sp, R(sc->g), R(sc->u), R(sc->s)));
        /* x += s Wdown^T */
        TRY(matmul(ex, &w->w_down, sc->s, sc->x, T, true));
        TRY(lgpu_ctx_lora_record(c, l, LGPU_LORA_DOWN, sc->s, sc->x, T, L->lora));
    }
done:
    return st;
}

/* Records the output head for n output rows whose batch indices are at
 * byte `ids_off` of sc.step: logits = rmsnorm(x[ids]) * output_norm Wout^T. */
static int record_output(lgpu_ctx *c, uint32_t T, uint32_t n, size_t ids_off, bool all_rows) {
    const lgpu_model *m = c->model;
    lgpu_scratch *sc = &c->sc;
    int st = 0;
    lgpu_buf *rows = sc->x;
    if (!all_rows) {
        /* xo[i,:] = x[ids[i], :] (gather the rows that want logits) */
        lgpu_get_rows_params gp = {.T = n, .K = m->hp.dim, .n_rows = T, .etype = LGPU_TYPE_F32};
        TRY(lgpu_op_get_rows(c->ex, &gp, R(sc->x), lgpu_ref_at(sc->step, ids_off), R(sc->xo)));
        rows = sc->xo;
    }
    /* ho = rmsnorm(xo) * output_norm; logits = ho Wout^T (n, V) */
    TRY(rmsnorm(c->ex, &m->output_norm, rows, sc->ho, n, m->hp.norm_eps));
    TRY(matmul(c->ex, &m->output, sc->ho, sc->logits, n, false));
done:
    return st;
}

static int read_logits(lgpu_ctx *c, float *dst, uint32_t n) {
    size_t bytes = (size_t)n * c->model->hp.n_vocab * sizeof(float);
    const void *p = lgpu_buf_host_ptr(c->sc.logits, 0);
    if (p) {
        memcpy(dst, p, bytes);
        return 0;
    }
    return lgpu_buf_read(c->sc.logits, 0, dst, bytes);
}

/* Checks the batch; fills seq_row/row_seq (block table row of each sequence
 * in the step), out_rows, *n_rows and *n_out. Returns 0 or a negative LGPU_E*
 * code (row marks undone). */
static int validate(lgpu_ctx *c, const lgpu_batch *b, int *n_rows, int *n_out) {
    const lgpu_kv_cache *kv = &c->kv;
    int rows = 0, outs = 0, st = 0;
    for (int i = 0; i < b->n; i++) {
        int32_t s = b->seq[i], t = b->token[i];
        if (!lgpu_kv_seq_valid(kv, s)) {
            st = lgpu_set_error(LGPU_EINVAL, "lgpu_decode: token %d: sequence %d is not open", i, s);
            break;
        }
        if (t < 0 || (uint32_t)t >= c->model->hp.n_vocab) {
            st = lgpu_set_error(LGPU_EINVAL, "lgpu_decode: token %d: id %d outside the vocabulary (%u)", i, t,
                                c->model->hp.n_vocab);
            break;
        }
        if (c->seq_row[s] < 0) {
            c->seq_row[s] = rows;
            c->row_seq[rows++] = s;
            c->seq_next[s] = kv->seq[s].len;
        }
        if (b->pos[i] != c->seq_next[s]) {
            st = lgpu_set_error(LGPU_EINVAL, "lgpu_decode: token %d: position %d of sequence %d, expected %d", i,
                                b->pos[i], s, c->seq_next[s]);
            break;
        }
        if ((uint32_t)b->pos[i] >= kv->n_ctx) {
            st = lgpu_set_error(LGPU_ERANGE, "lgpu_decode: sequence %d is full (n_ctx %u)", s, kv->n_ctx);
            break;
        }
        c->seq_next[s]++;
        if (b->logits ? b->logits[i] != 0 : i == b->n - 1) c->out_rows[outs++] = i;
    }
    if (st) { /* undo the row marks */
        for (int r = 0; r < rows; r++) c->seq_row[c->row_seq[r]] = -1;
        return st;
    }
    *n_rows = rows;
    *n_out = outs;
    return 0;
}

/* lgpu_decode, or with `lend` set lgpu_decode_rows: on the host device the
 * rows stay in the logits buffer when one pass holds them all (*lend points
 * at it); else they are copied to rows_host (a mapped Vulkan buffer may be
 * uncached, too slow for the sampler's passes). */
static int decode(lgpu_ctx *c, const lgpu_batch *b, float *logits_out, const float **lend) {
    if (!c || !b || b->n <= 0 || !b->token || !b->seq || !b->pos)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_decode: empty batch or NULL argument");
    if ((uint32_t)b->n > c->params.n_batch)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_decode: %d tokens exceed n_batch %u", b->n, c->params.n_batch);
    lgpu_kv_cache *kv = &c->kv;
    const uint32_t T = (uint32_t)b->n, V = c->model->hp.n_vocab;
    int n_rows, n_out;
    int st = validate(c, b, &n_rows, &n_out);
    if (st) return st;
    if (lend) {
        *lend = NULL;
        const float *in_place = lgpu_exec_is_host(c->ex) ? lgpu_buf_host_ptr(c->sc.logits, 0) : NULL;
        size_t need = (size_t)n_out * V;
        if (in_place && (uint32_t)n_out <= c->n_out_max) {
            *lend = in_place;
        } else if (n_out) {
            if (need > c->rows_cap) {
                float *p = realloc(c->rows_host, need * sizeof *p);
                if (!p) {
                    st = lgpu_set_error(LGPU_ENOMEM, "lgpu_decode_rows: %d logits rows", n_out);
                    goto unmark;
                }
                c->rows_host = p;
                c->rows_cap = need;
            }
            logits_out = c->rows_host;
            *lend = c->rows_host;
        }
    } else if (n_out && !logits_out) {
        st = lgpu_set_error(LGPU_EINVAL, "lgpu_decode: logits requested but logits_out is NULL");
        goto unmark;
    }

    /* Blocks for the new tokens; all or nothing. */
    uint32_t need = 0;
    for (int r = 0; r < n_rows; r++) need += lgpu_kv_blocks_needed(kv, c->row_seq[r], c->seq_next[c->row_seq[r]]);
    if (need > kv->n_free) {
        st = lgpu_set_error(LGPU_EFULL, "lgpu_decode: KV pool full (%u blocks needed, %u free of %u)", need, kv->n_free,
                            kv->n_blocks);
        goto unmark;
    }
    for (int r = 0; r < n_rows; r++) {
        int s = c->row_seq[r];
        c->old_blocks[r] = kv->seq[s].n_blocks;
        lgpu_kv_grow(kv, s, c->seq_next[s]);
    }

    /* Step inputs, packed at 256-byte aligned offsets, uploaded in one write;
     * the LoRA row list only when some token of the step has adapters. */
    size_t lora_bytes = lgpu_ctx_lora_step_plan(c, b);
    lgpu_step_layout L = lgpu_step_layout_for(T, (size_t)n_out, (size_t)n_rows, kv->max_blocks, lora_bytes);
    size_t used = L.end;
    int32_t *sh = c->step_host;
    int32_t *h_tok = sh, *h_pos = sh + L.pos / 4, *h_row = sh + L.row / 4, *h_out = sh + L.out / 4;
    int32_t *h_table = sh + L.table / 4;
    memcpy(h_tok, b->token, T * 4);
    memcpy(h_pos, b->pos, T * 4);
    for (uint32_t i = 0; i < T; i++) h_row[i] = c->seq_row[b->seq[i]];
    memcpy(h_out, c->out_rows, (size_t)n_out * 4);
    for (int r = 0; r < n_rows; r++) {
        const lgpu_kv_seq *s = &kv->seq[c->row_seq[r]];
        int32_t *dst = h_table + (size_t)r * kv->max_blocks;
        memcpy(dst, s->blocks, (size_t)s->n_blocks * 4);
        memset(dst + s->n_blocks, 0, (size_t)(kv->max_blocks - s->n_blocks) * 4);
    }
    if (lora_bytes) lgpu_ctx_lora_step_fill(c, b, sh + L.lora / 4);
    void *dev_step = lgpu_buf_host_ptr(c->sc.step, 0);
    if (dev_step) memcpy(dev_step, sh, used);
    else if ((st = lgpu_buf_write(c->sc.step, 0, sh, used)))
        goto rollback;

    /* One command stream: layers, then the first output pass. */
    bool all_rows = (uint32_t)n_out == T && n_out <= (int)c->n_out_max;
    for (int i = 0; all_rows && i < n_out; i++) all_rows = c->out_rows[i] == i;
    uint32_t first = (uint32_t)n_out < c->n_out_max ? (uint32_t)n_out : c->n_out_max;
    if ((st = lgpu_exec_begin(c->ex)) || (st = record_layers(c, T, &L))) goto rollback;
    if (first && (st = record_output(c, T, first, L.out, all_rows))) goto rollback;
    if ((st = lgpu_exec_submit(c->ex))) goto rollback;
    if (first && logits_out && (st = read_logits(c, logits_out, first))) goto rollback;
    /* More logits rows than one pass holds (huge vocabularies): more passes. */
    for (uint32_t r0 = first; r0 < (uint32_t)n_out; r0 += c->n_out_max) {
        uint32_t n = (uint32_t)n_out - r0 < c->n_out_max ? (uint32_t)n_out - r0 : c->n_out_max;
        /* the previous pass is done: move this pass's row ids to L.out */
        if (dev_step) memcpy((char *)dev_step + L.out, c->out_rows + r0, (size_t)n * 4);
        else if ((st = lgpu_buf_write(c->sc.step, L.out, c->out_rows + r0, (size_t)n * 4)))
            goto rollback;
        if ((st = lgpu_exec_begin(c->ex)) || (st = record_output(c, T, n, L.out, false)) ||
            (st = lgpu_exec_submit(c->ex)) || (st = read_logits(c, logits_out + (size_t)r0 * V, n)))
            goto rollback;
    }

    /* Commit: append each sequence's tokens (in batch order) to the cache. */
    for (int r = 0; r < n_rows; r++) {
        int s = c->row_seq[r], n = 0;
        for (uint32_t i = 0; i < T; i++)
            if (b->seq[i] == s) c->commit_tok[n++] = b->token[i];
        lgpu_kv_commit(kv, s, c->commit_tok, n);
    }
    goto unmark;

rollback:
    for (int r = 0; r < n_rows; r++) lgpu_kv_shrink(kv, c->row_seq[r], c->old_blocks[r]);
unmark:
    for (int r = 0; r < n_rows; r++) c->seq_row[c->row_seq[r]] = -1;
    if (st && lend) *lend = NULL;
    return st;
}

int lgpu_decode(lgpu_ctx *c, const lgpu_batch *b, float *logits_out) { return decode(c, b, logits_out, NULL); }

int lgpu_decode_rows(lgpu_ctx *c, const lgpu_batch *b, const float **logits) {
    if (!logits) return lgpu_set_error(LGPU_EINVAL, "lgpu_decode_rows: NULL logits pointer");
    return decode(c, b, NULL, logits);
}
