/* The LLaMA + LoRA training graph (train/graph.h).
 *
 * Notation: M = B*T rows, D = dim, H heads of size hd, G kv heads, F =
 * hidden_dim, V = n_vocab, r = rank, s = alpha / r. A LoRA-adapted
 * projection computes y = x W^T + s (x A^T) B^T; u = x A^T (M, r) is saved
 * for the backward. With LoRA dropout p > 0 (a training run's backward
 * pass only; evaluation runs without it, as model.eval() does), the
 * adapter's input is dropped as PEFT does, lora_B(lora_A(dropout(x))) *
 * scaling, with a mask of its own per projection: xd = dropout(x) (M, in) is
 * saved and u = xd A^T, while the base matmul sees x.
 *
 * Forward, per layer l (saved: x_l, h1, q, k, v, o, lse, xm, h2, g, u, sw, u_t, xd_t):
 *   h1 = rmsnorm(x_l) * attn_norm
 *   q, k, v = projections of h1 (k, v written straight into the dense pools)
 *   rope(q), rope(k)
 *   o = causal GQA attention (lse = its row log-sum-exp)
 *   xm = x_l + proj_o(o)
 *   h2 = rmsnorm(xm) * ffn_norm
 *   g, u = proj_gate(h2), proj_up(h2);  sw = silu(g) * u
 *   x_{l+1} = xm + proj_down(sw)
 * then hf = rmsnorm(x_L) * output_norm and the loss over vocabulary chunks.
 *
 * Backward, dx holding dLoss/dx_{l+1}, per layer from the top:
 *   dsw = dproj_down(dx);  dg, du = swiglu'(g, u, dsw)
 *   dh = dproj_gate(dg) + dproj_up(du);  dx += rmsnorm'(xm, dh)   (= dLoss/dxm)
 *   do = dproj_o(dx);  dq, dk, dv = attention'(...);  rope'(dq), rope'(dk)
 *   dh = dproj_q(dq) + dproj_k(dk) + dproj_v(dv);  dx += rmsnorm'(x_l, dh)
 * where dproj(dy) = dy W (frozen W) plus the LoRA part, which also adds to
 * the adapter's gradients:
 *   dB += s dy^T u;  du_t = s dy B;  dA += du_t^T x;  dx_in += du_t A
 * and with dropout, x is xd and the last one is dx_in += mask(du_t A): du_t A
 * into a scratch, then the same dropout op (same seed, so the same mask)
 * accumulating into dx_in.
 *
 * Masks: the dropout op's mask is a function of its seed and the element's
 * index only (Philox, integer arithmetic), and the seed of each (layer,
 * target) comes from the micro-batch's key (run seed, step, micro-batch)
 * through splitmix64 on the host: a step draws the same masks on every
 * device, on every rerun and after a resume. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/graph.h"
#include "train/rng.h"

/* dropout's stream of the run's seed: even, so it never meets an epoch's
 * shuffle (odd streams, batch.c), and not the split's "split" */
#define LGPU_DROPOUT_STREAM 0x64726F706F7574ull /* "dropout" */

#define TRY(expr)                          \
    do {                                   \
        if ((st = (expr)) != 0) goto done; \
    } while (0)

typedef struct layer_act {
    lgpu_buf *x;           /* (M, D) the layer's input */
    lgpu_buf *h1, *q, *k, *v, *o, *lse, *xm, *h2, *g, *u, *sw;
    lgpu_buf *lu[LGPU_LORA_N_TARGETS]; /* (M, r) x A^T of each targeted projection */
    lgpu_buf *xd[LGPU_LORA_N_TARGETS]; /* (M, in) dropout(x) of each, when dropout > 0 */
} layer_act;

struct lgpu_train_graph {
    lgpu_lora *lora;
    lgpu_model *m;
    lgpu_dev *dev;
    lgpu_exec *ex;
    uint32_t B, T, M, C; /* C: vocabulary rows per loss chunk */
    /* per-step inputs, I32 at 256-byte aligned offsets */
    lgpu_buf *in;
    size_t off_tok, off_tgt, off_seq, off_pos, off_table, in_bytes;
    int32_t *in_host;
    lgpu_buf *inv_freq;
    layer_act *act;   /* n_layers */
    lgpu_buf *x_last; /* (M, D) the last layer's output */
    lgpu_buf *hf;     /* (M, D) final norm */
    /* backward scratch */
    lgpu_buf *dx, *dh, *dq, *dk, *dv, *d_o, *dsw, *dg, *du, *dlu, *dsc;
    lgpu_buf *dxd; /* (M, max in) du A before its dropout mask, when dropout > 0 */
    /* this run: whether it drops the adapters' inputs, and with which key */
    bool drop;
    lgpu_train_mb_key key;
    lgpu_buf *z, *stats, *loss; /* (M, C) logits chunk; (M, 4); (M) */
    float *loss_host;
    lgpu_buf **grad; /* n_layers, the adapter's layout */
    size_t bytes;
};

static lgpu_ref R(lgpu_buf *b) { return lgpu_ref_at(b, 0); }

static int new_buf(lgpu_train_graph *g, size_t bytes, lgpu_buf **out) {
    bytes = LGPU_ALIGN_UP(bytes ? bytes : 4, LGPU_REF_ALIGN);
    if (bytes > lgpu_dev_max_binding(g->dev))
        return lgpu_set_error(LGPU_ERANGE, "training: an activation of %zu bytes exceeds the device's binding limit "
                              "%zu (lower the micro-batch size or the sequence length)", bytes,
                              lgpu_dev_max_binding(g->dev));
    int st = lgpu_buf_create(g->dev, bytes, bytes, out);
    if (!st) g->bytes += bytes;
    return st;
}

static int alloc_all(lgpu_train_graph *g) {
    const lgpu_hparams *hp = &g->m->hp;
    const size_t M = g->M, f = sizeof(float), D = hp->dim, F = hp->hidden_dim, r = g->lora->rank;
    const size_t qd = (size_t)hp->n_heads * hp->head_dim, kvd = (size_t)hp->n_kv_heads * hp->head_dim;
    int st = 0;
    if (!(g->act = calloc(hp->n_layers, sizeof *g->act)) || !(g->grad = calloc(hp->n_layers, sizeof *g->grad)))
        return lgpu_set_error(LGPU_ENOMEM, "training graph");
    for (uint32_t l = 0; l < hp->n_layers; l++) {
        layer_act *a = &g->act[l];
        if ((st = new_buf(g, M * D * f, &a->x)) || (st = new_buf(g, M * D * f, &a->h1)) ||
            (st = new_buf(g, M * qd * f, &a->q)) || (st = new_buf(g, M * kvd * f, &a->k)) ||
            (st = new_buf(g, M * kvd * f, &a->v)) || (st = new_buf(g, M * qd * f, &a->o)) ||
            (st = new_buf(g, M * hp->n_heads * f, &a->lse)) || (st = new_buf(g, M * D * f, &a->xm)) ||
            (st = new_buf(g, M * D * f, &a->h2)) || (st = new_buf(g, M * F * f, &a->g)) ||
            (st = new_buf(g, M * F * f, &a->u)) || (st = new_buf(g, M * F * f, &a->sw)))
            return st;
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++) {
            const lgpu_lora_mat *mt = &g->lora->layer[l].mat[t];
            if (!mt->on) continue;
            if ((st = new_buf(g, M * r * f, &a->lu[t]))) return st;
            if (g->lora->dropout > 0 && (st = new_buf(g, M * mt->in * f, &a->xd[t]))) return st;
        }
        size_t gb = g->lora->layer[l].bytes;
        if ((st = lgpu_buf_create(g->dev, gb, gb, &g->grad[l]))) return st;
        g->bytes += gb;
    }
    if ((st = new_buf(g, M * D * f, &g->x_last)) || (st = new_buf(g, M * D * f, &g->hf)) ||
        (st = new_buf(g, M * D * f, &g->dx)) || (st = new_buf(g, M * D * f, &g->dh)) ||
        (st = new_buf(g, M * qd * f, &g->dq)) || (st = new_buf(g, M * kvd * f, &g->dk)) ||
        (st = new_buf(g, M * kvd * f, &g->dv)) || (st = new_buf(g, M * qd * f, &g->d_o)) ||
        (st = new_buf(g, M * F * f, &g->dsw)) || (st = new_buf(g, M * F * f, &g->dg)) ||
        (st = new_buf(g, M * F * f, &g->du)) || (st = new_buf(g, M * r * f, &g->dlu)) ||
        (st = new_buf(g, M * hp->n_heads * f, &g->dsc)) || (st = new_buf(g, M * g->C * f, &g->z)) ||
        (st = new_buf(g, M * 4 * f, &g->stats)) || (st = new_buf(g, M * f, &g->loss)))
        return st;
    if (g->lora->dropout > 0) {
        /* the dropout op counts elements in 32 bits (the host device has no
         * binding limit to stop a larger buffer earlier) */
        size_t in_max = D > F ? D : F;
        if (qd > in_max) in_max = qd;
        if ((uint64_t)M * in_max > UINT32_MAX)
            return lgpu_set_error(LGPU_ERANGE, "training: LoRA dropout over %zu x %zu values exceeds 2^32 (lower the "
                                  "micro-batch size or the sequence length)", M, in_max);
        if ((st = new_buf(g, M * in_max * f, &g->dxd))) return st;
    }
    /* inputs: tokens, targets, sequence (= block table row) and position of each row, the block table */
    size_t a = LGPU_ALIGN_UP(M * 4, LGPU_REF_ALIGN);
    g->off_tok = 0, g->off_tgt = a, g->off_seq = 2 * a, g->off_pos = 3 * a, g->off_table = 4 * a;
    g->in_bytes = g->off_table + LGPU_ALIGN_UP((size_t)g->B * 4, LGPU_REF_ALIGN);
    if ((st = new_buf(g, g->in_bytes, &g->in))) return st;
    if (!(g->in_host = calloc(1, g->in_bytes)) || !(g->loss_host = malloc(M * sizeof *g->loss_host)))
        return lgpu_set_error(LGPU_ENOMEM, "training graph inputs");
    for (uint32_t i = 0; i < g->M; i++) {
        g->in_host[g->off_seq / 4 + i] = (int32_t)(i / g->T);
        g->in_host[g->off_pos / 4 + i] = (int32_t)(i % g->T);
    }
    for (uint32_t b = 0; b < g->B; b++) g->in_host[g->off_table / 4 + b] = (int32_t)b;
    /* RoPE inverse frequencies, as the inference context computes them */
    uint32_t half = hp->head_dim / 2;
    float *inv = malloc(half * sizeof *inv);
    if (!inv) return lgpu_set_error(LGPU_ENOMEM, "training graph: inv_freq");
    lgpu_rope_inv_freq(hp->rope_theta, hp->head_dim, &g->m->rope_scaling, inv);
    if (g->m->rope_freqs)
        for (uint32_t i = 0; i < half; i++) inv[i] /= g->m->rope_freqs[i];
    if (!(st = new_buf(g, half * sizeof *inv, &g->inv_freq))) st = lgpu_buf_write(g->inv_freq, 0, inv, half * 4);
    free(inv);
    return st;
}

int lgpu_train_graph_create(lgpu_lora *lora, uint32_t B, uint32_t T, uint32_t vocab_chunk, lgpu_train_graph **out) {
    if (!lora || !out || !B || !T) return lgpu_set_error(LGPU_EINVAL, "lgpu_train_graph_create: bad argument");
    *out = NULL;
    if ((uint64_t)B * T > (1u << 24))
        return lgpu_set_error(LGPU_EINVAL, "training graph: %u x %u tokens per micro-batch", B, T);
    lgpu_train_graph *g = calloc(1, sizeof *g);
    if (!g) return lgpu_set_error(LGPU_ENOMEM, "lgpu_train_graph_create");
    g->lora = lora;
    g->m = lora->model;
    g->dev = g->m->dev;
    g->B = B, g->T = T, g->M = B * T;
    uint32_t V = g->m->hp.n_vocab, C = vocab_chunk ? vocab_chunk : 4096;
    /* a chunk starts at row v0 of the output matrix: a multiple of 256 rows
     * keeps every chunk's byte offset 256-aligned whatever the row size */
    C = C >= V ? V : (C + 255) / 256 * 256;
    if (C > V) C = V;
    g->C = C;
    int st = lgpu_exec_create(g->dev, &g->ex);
    if (!st) st = alloc_all(g);
    if (!st) st = lgpu_train_graph_zero_grad(g);
    if (st) {
        lgpu_train_graph_destroy(g);
        return st;
    }
    *out = g;
    return 0;
}

void lgpu_train_graph_destroy(lgpu_train_graph *g) {
    if (!g) return;
    const uint32_t L = g->m->hp.n_layers;
    for (uint32_t l = 0; g->act && l < L; l++) {
        layer_act *a = &g->act[l];
        lgpu_buf *all[] = {a->x, a->h1, a->q, a->k, a->v, a->o, a->lse, a->xm, a->h2, a->g, a->u, a->sw};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lgpu_buf_destroy(all[i]);
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++) {
            lgpu_buf_destroy(a->lu[t]);
            lgpu_buf_destroy(a->xd[t]);
        }
    }
    for (uint32_t l = 0; g->grad && l < L; l++) lgpu_buf_destroy(g->grad[l]);
    lgpu_buf *all[] = {g->in, g->inv_freq, g->x_last, g->hf, g->dx, g->dh, g->dq, g->dk, g->dv, g->d_o, g->dsw,
                       g->dg, g->du, g->dlu, g->dsc, g->dxd, g->z, g->stats, g->loss};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lgpu_buf_destroy(all[i]);
    free(g->act);
    free(g->grad);
    free(g->in_host);
    free(g->loss_host);
    lgpu_exec_destroy(g->ex);
    free(g);
}

int lgpu_train_graph_zero_grad(lgpu_train_graph *g) {
    for (uint32_t l = 0; l < g->m->hp.n_layers; l++) {
        int st = lgpu_buf_fill_zero(g->grad[l], 0, g->lora->layer[l].bytes);
        if (st) return st;
    }
    return 0;
}

lgpu_buf *lgpu_train_graph_grad(lgpu_train_graph *g, uint32_t l) { return l < g->m->hp.n_layers ? g->grad[l] : NULL; }
lgpu_exec *lgpu_train_graph_exec(lgpu_train_graph *g) { return g->ex; }
size_t lgpu_train_graph_bytes(const lgpu_train_graph *g) { return g ? g->bytes : 0; }

/* ---- building blocks ---- */

/* y (+)= x W^T for the M rows of the micro-batch */
static int matmul(lgpu_train_graph *g, const lgpu_wt *w, lgpu_buf *x, lgpu_buf *y, bool acc) {
    lgpu_matmul_params p = {.M = g->M, .N = w->rows, .K = w->cols, .x_stride = w->cols, .y_stride = w->rows,
                            .accumulate = acc, .wtype = (uint32_t)w->type, .w_x8 = w->x8};
    return lgpu_op_matmul(g->ex, &p, R(w->buf), R(x), R(y));
}

/* dx (+)= dy W */
static int matmul_back(lgpu_train_graph *g, const lgpu_wt *w, lgpu_buf *dy, lgpu_buf *dx, bool acc) {
    lgpu_matmul_backward_params p = {.M = g->M, .N = w->rows, .K = w->cols, .dy_stride = w->rows,
                                     .dx_stride = w->cols, .accumulate = acc, .wtype = (uint32_t)w->type,
                                     .w_x8 = w->x8};
    return lgpu_op_matmul_backward(g->ex, &p, R(w->buf), R(dy), R(dx));
}

/* c (+)= alpha opA(a) opB(b), the F32 product of LoRA's small matrices */
static int gemm(lgpu_train_graph *g, uint32_t M, uint32_t N, uint32_t K, lgpu_ref a, uint32_t lda, bool ta,
                lgpu_ref b, uint32_t ldb, bool tb, lgpu_ref c, uint32_t ldc, float alpha, bool acc) {
    lgpu_gemm_params p = {.M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc, .trans_a = ta, .trans_b = tb,
                          .accumulate = acc, .alpha = alpha};
    return lgpu_op_gemm(g->ex, &p, a, b, c);
}

static int rmsnorm(lgpu_train_graph *g, const lgpu_wt *w, lgpu_buf *x, lgpu_buf *y) {
    lgpu_rmsnorm_params p = {.M = g->M, .N = w->cols, .eps = g->m->hp.norm_eps};
    return lgpu_op_rmsnorm(g->ex, &p, R(x), R(w->buf), R(y));
}

/* dx (+)= rmsnorm'(x) dh */
static int rmsnorm_back(lgpu_train_graph *g, const lgpu_wt *w, lgpu_buf *x, lgpu_buf *dh, lgpu_buf *dx, bool acc) {
    lgpu_rmsnorm_backward_params p = {.M = g->M, .N = w->cols, .eps = g->m->hp.norm_eps, .accumulate = acc};
    return lgpu_op_rmsnorm_backward(g->ex, &p, R(x), R(w->buf), R(dh), R(dx));
}

static int copy(lgpu_train_graph *g, lgpu_buf *x, lgpu_buf *y, size_t n) {
    lgpu_scale_params p = {.n = (uint32_t)n, .s = 1.0f};
    return lgpu_op_scale(g->ex, &p, R(x), R(y));
}

/* The dropout op of target t in layer l for this run's micro-batch: n
 * elements of (M, in), y (+)= x * mask / (1 - p). */
static int dropout(lgpu_train_graph *g, uint32_t l, lgpu_lora_target t, uint32_t in, lgpu_buf *x, lgpu_buf *y,
                   bool acc) {
    lgpu_dropout_params p = lgpu_dropout_params_make(g->M * in, g->lora->dropout,
                                                     lgpu_train_dropout_seed(&g->key, l, t), acc);
    return lgpu_op_dropout(g->ex, &p, R(x), R(y));
}

/* y (+)= x W^T + s (xd A^T) B^T, saving u = xd A^T; xd = x, or with dropout
 * dropout(x), saved too */
static int proj(lgpu_train_graph *g, uint32_t l, lgpu_lora_target t, lgpu_buf *x, lgpu_buf *y, bool acc) {
    const lgpu_wt *w = lgpu_lora_base_weight(g->m, l, t);
    int st = matmul(g, w, x, y, acc);
    const lgpu_lora_mat *mt = &g->lora->layer[l].mat[t];
    if (st || !mt->on) return st;
    lgpu_buf *ab = g->lora->layer[l].buf, *u = g->act[l].lu[t], *xd = x;
    const uint32_t r = g->lora->rank;
    if (g->drop) {
        xd = g->act[l].xd[t];
        if ((st = dropout(g, l, t, mt->in, x, xd, false))) return st;
    }
    /* u = xd A^T: (M, in) x (r, in)^T */
    if ((st = gemm(g, g->M, r, mt->in, R(xd), mt->in, false, lgpu_ref_at(ab, mt->off_a), mt->in, true, R(u), r,
                   1.0f, false)))
        return st;
    /* y += s u B^T: (M, r) x (out, r)^T */
    return gemm(g, g->M, mt->out, r, R(u), r, false, lgpu_ref_at(ab, mt->off_b), r, true, R(y), mt->out,
                g->lora->scale, true);
}

/* dx (+)= dy W + the LoRA part, whose gradients are added to dA and dB:
 * dB += s dy^T u;  du = s dy B;  dA += du^T xd;  dx += mask(du A) (xd = x
 * and no mask without dropout) */
static int proj_back(lgpu_train_graph *g, uint32_t l, lgpu_lora_target t, lgpu_buf *x, lgpu_buf *dy, lgpu_buf *dx,
                     bool acc) {
    const lgpu_wt *w = lgpu_lora_base_weight(g->m, l, t);
    int st = matmul_back(g, w, dy, dx, acc);
    const lgpu_lora_mat *mt = &g->lora->layer[l].mat[t];
    if (st || !mt->on) return st;
    lgpu_buf *ab = g->lora->layer[l].buf, *gb = g->grad[l], *u = g->act[l].lu[t];
    lgpu_buf *xd = g->drop ? g->act[l].xd[t] : x;
    const uint32_t r = g->lora->rank, M = g->M;
    const float s = g->lora->scale;
    /* dB (out, r) += s dy^T u: dy (M, out) transposed, u (M, r) */
    if ((st = gemm(g, mt->out, r, M, R(dy), mt->out, true, R(u), r, false, lgpu_ref_at(gb, mt->off_b), r, s, true)))
        return st;
    /* du (M, r) = s dy B: dy (M, out), B (out, r) */
    if ((st = gemm(g, M, r, mt->out, R(dy), mt->out, false, lgpu_ref_at(ab, mt->off_b), r, false, R(g->dlu), r, s,
                   false)))
        return st;
    /* dA (r, in) += du^T xd */
    if ((st = gemm(g, r, mt->in, M, R(g->dlu), r, true, R(xd), mt->in, false, lgpu_ref_at(gb, mt->off_a), mt->in,
                   1.0f, true)))
        return st;
    /* dx (M, in) += du A */
    if (!g->drop)
        return gemm(g, M, mt->in, r, R(g->dlu), r, false, lgpu_ref_at(ab, mt->off_a), mt->in, false, R(dx), mt->in,
                    1.0f, true);
    /* dx += mask(du A): the forward's mask, drawn again from the same seed */
    if ((st = gemm(g, M, mt->in, r, R(g->dlu), r, false, lgpu_ref_at(ab, mt->off_a), mt->in, false, R(g->dxd), mt->in,
                   1.0f, false)))
        return st;
    return dropout(g, l, t, mt->in, g->dxd, dx, true);
}

/* ---- forward ---- */

static int forward_layer(lgpu_train_graph *g, uint32_t l, lgpu_buf *x_out) {
    const lgpu_hparams *hp = &g->m->hp;
    const lgpu_layer_w *w = &g->m->layers[l];
    layer_act *a = &g->act[l];
    const uint32_t hd = hp->head_dim, H = hp->n_heads, G = hp->n_kv_heads;
    lgpu_ref pos = lgpu_ref_at(g->in, g->off_pos), seq = lgpu_ref_at(g->in, g->off_seq);
    lgpu_ref table = lgpu_ref_at(g->in, g->off_table);
    int st = 0;
    TRY(rmsnorm(g, &w->attn_norm, a->x, a->h1));
    TRY(proj(g, l, LGPU_LORA_Q, a->h1, a->q, false));
    TRY(proj(g, l, LGPU_LORA_K, a->h1, a->k, false));
    TRY(proj(g, l, LGPU_LORA_V, a->h1, a->v, false));
    lgpu_rope_params rq = {.T = g->M, .n_heads = H, .head_dim = hd, .token_stride = H * hd};
    lgpu_rope_params rk = {.T = g->M, .n_heads = G, .head_dim = hd, .token_stride = G * hd};
    TRY(lgpu_op_rope(g->ex, &rq, R(a->q), pos, R(g->inv_freq)));
    TRY(lgpu_op_rope(g->ex, &rk, R(a->k), pos, R(g->inv_freq)));
    /* each sequence is one block of T slots: k and v are the pools */
    lgpu_attention_params ap = {.T = g->M, .n_heads = H, .n_kv_heads = G, .head_dim = hd, .q_stride = H * hd,
                                .block_size = g->T, .max_blocks = 1, .scale = 1.0f / sqrtf((float)hd),
                                .kv_type = LGPU_TYPE_F32};
    TRY(lgpu_op_attention(g->ex, &ap, R(a->q), seq, pos, table, R(a->k), R(a->v), R(a->o), R(a->lse)));
    TRY(copy(g, a->x, a->xm, (size_t)g->M * hp->dim));
    TRY(proj(g, l, LGPU_LORA_O, a->o, a->xm, true));
    TRY(rmsnorm(g, &w->ffn_norm, a->xm, a->h2));
    TRY(proj(g, l, LGPU_LORA_GATE, a->h2, a->g, false));
    TRY(proj(g, l, LGPU_LORA_UP, a->h2, a->u, false));
    lgpu_swiglu_params sp = {.n = g->M * hp->hidden_dim};
    TRY(lgpu_op_swiglu(g->ex, &sp, R(a->g), R(a->u), R(a->sw)));
    TRY(copy(g, a->xm, x_out, (size_t)g->M * hp->dim));
    TRY(proj(g, l, LGPU_LORA_DOWN, a->sw, x_out, true));
done:
    return st;
}

/* The loss over vocabulary chunks of the output head (cross_entropy.h):
 * pass 1 folds each chunk into the rows' statistics and writes the loss;
 * with `backward`, pass 2 turns each recomputed chunk into dLoss/dz and
 * accumulates dh = dz W_out. */
static int loss_chunks(lgpu_train_graph *g, bool backward, float grad_scale) {
    const lgpu_wt *wo = &g->m->output;
    const uint32_t V = g->m->hp.n_vocab, M = g->M, C = g->C;
    const size_t rb = lgpu_type_row_bytes(wo->type, wo->cols);
    lgpu_ref tgt = lgpu_ref_at(g->in, g->off_tgt);
    int st = 0;
    for (int pass = 0; pass < (backward ? 2 : 1); pass++)
        for (uint32_t v0 = 0; v0 < V; v0 += C) {
            uint32_t n = V - v0 < C ? V - v0 : C;
            lgpu_ref w = lgpu_ref_at(wo->buf, (size_t)v0 * rb);
            lgpu_matmul_params mp = {.M = M, .N = n, .K = wo->cols, .x_stride = wo->cols, .y_stride = C,
                                     .wtype = (uint32_t)wo->type, .w_x8 = wo->x8};
            TRY(lgpu_op_matmul(g->ex, &mp, w, R(g->hf), R(g->z)));
            if (pass == 0) {
                lgpu_cross_entropy_stats_params sp = {.M = M, .C = n, .z_stride = C, .v0 = v0, .first = v0 == 0,
                                                      .last = v0 + n >= V};
                TRY(lgpu_op_cross_entropy_stats(g->ex, &sp, R(g->z), tgt, R(g->stats), R(g->loss)));
            } else {
                lgpu_cross_entropy_grad_params gp = {.M = M, .C = n, .z_stride = C, .v0 = v0,
                                                     .grad_scale = grad_scale};
                TRY(lgpu_op_cross_entropy_grad(g->ex, &gp, R(g->z), tgt, R(g->stats)));
                lgpu_matmul_backward_params bp = {.M = M, .N = n, .K = wo->cols, .dy_stride = C,
                                                  .dx_stride = wo->cols, .accumulate = v0 > 0,
                                                  .wtype = (uint32_t)wo->type, .w_x8 = wo->x8};
                TRY(lgpu_op_matmul_backward(g->ex, &bp, w, R(g->z), R(g->dh)));
            }
        }
done:
    return st;
}

/* ---- backward ---- */

static int backward_layer(lgpu_train_graph *g, uint32_t l) {
    const lgpu_hparams *hp = &g->m->hp;
    const lgpu_layer_w *w = &g->m->layers[l];
    layer_act *a = &g->act[l];
    const uint32_t hd = hp->head_dim, H = hp->n_heads, G = hp->n_kv_heads;
    lgpu_ref pos = lgpu_ref_at(g->in, g->off_pos);
    int st = 0;
    /* x_{l+1} = xm + proj_down(sw): dx holds dLoss/dx_{l+1} */
    TRY(proj_back(g, l, LGPU_LORA_DOWN, a->sw, g->dx, g->dsw, false));
    lgpu_swiglu_backward_params sp = {.n = g->M * hp->hidden_dim};
    TRY(lgpu_op_swiglu_backward(g->ex, &sp, R(a->g), R(a->u), R(g->dsw), R(g->dg), R(g->du)));
    TRY(proj_back(g, l, LGPU_LORA_GATE, a->h2, g->dg, g->dh, false));
    TRY(proj_back(g, l, LGPU_LORA_UP, a->h2, g->du, g->dh, true));
    TRY(rmsnorm_back(g, &w->ffn_norm, a->xm, g->dh, g->dx, true)); /* dx = dLoss/dxm */
    /* xm = x_l + proj_o(o) */
    TRY(proj_back(g, l, LGPU_LORA_O, a->o, g->dx, g->d_o, false));
    lgpu_attention_backward_params ap = {.B = g->B, .T = g->T, .n_heads = H, .n_kv_heads = G, .head_dim = hd,
                                         .scale = 1.0f / sqrtf((float)hd)};
    TRY(lgpu_op_attention_backward(g->ex, &ap, R(a->q), R(a->k), R(a->v), R(a->o), R(g->d_o), R(a->lse), R(g->dsc),
                                   R(g->dq), R(g->dk), R(g->dv)));
    lgpu_rope_params rq = {.T = g->M, .n_heads = H, .head_dim = hd, .token_stride = H * hd};
    lgpu_rope_params rk = {.T = g->M, .n_heads = G, .head_dim = hd, .token_stride = G * hd};
    TRY(lgpu_op_rope_backward(g->ex, &rq, R(g->dq), pos, R(g->inv_freq)));
    TRY(lgpu_op_rope_backward(g->ex, &rk, R(g->dk), pos, R(g->inv_freq)));
    TRY(proj_back(g, l, LGPU_LORA_Q, a->h1, g->dq, g->dh, false));
    TRY(proj_back(g, l, LGPU_LORA_K, a->h1, g->dk, g->dh, true));
    TRY(proj_back(g, l, LGPU_LORA_V, a->h1, g->dv, g->dh, true));
    TRY(rmsnorm_back(g, &w->attn_norm, a->x, g->dh, g->dx, true)); /* dx = dLoss/dx_l */
done:
    return st;
}

static int record(lgpu_train_graph *g, bool backward, float grad_scale) {
    const lgpu_model *m = g->m;
    const uint32_t L = m->hp.n_layers;
    int st = 0;
    /* x_0[i, :] = token_embd[token[i], :] */
    lgpu_get_rows_params gp = {.T = g->M, .K = m->hp.dim, .n_rows = m->tok_embd.rows,
                               .etype = (uint32_t)m->tok_embd.type, .e_x8 = m->tok_embd.x8};
    TRY(lgpu_op_get_rows(g->ex, &gp, R(m->tok_embd.buf), lgpu_ref_at(g->in, g->off_tok), R(g->act[0].x)));
    for (uint32_t l = 0; l < L; l++) TRY(forward_layer(g, l, l + 1 < L ? g->act[l + 1].x : g->x_last));
    TRY(rmsnorm(g, &m->output_norm, g->x_last, g->hf));
    TRY(loss_chunks(g, backward, grad_scale));
    if (!backward) goto done;
    /* dh holds dLoss/dhf */
    TRY(rmsnorm_back(g, &m->output_norm, g->x_last, g->dh, g->dx, false));
    for (uint32_t l = L; l-- > 0;) TRY(backward_layer(g, l));
done:
    return st;
}

uint64_t lgpu_train_dropout_seed(const lgpu_train_mb_key *key, uint32_t layer, lgpu_lora_target t) {
    /* a stream of the run's seed of its own (the data's split and shuffles
     * use others), then each coordinate folded in by one splitmix64 step:
     * for a fixed state the step is a bijection of the coordinate */
    uint64_t h = lgpu_rng_stream(key->seed, LGPU_DROPOUT_STREAM);
    const uint64_t parts[4] = {key->step, key->micro, layer, (uint64_t)t};
    for (int i = 0; i < 4; i++) {
        uint64_t s = h ^ parts[i];
        h = lgpu_splitmix64(&s);
    }
    return h;
}

int lgpu_train_graph_run(lgpu_train_graph *g, const int32_t *tokens, const int32_t *targets, bool backward,
                         float grad_scale, const lgpu_train_mb_key *key, double *loss_sum, uint32_t *n_counted) {
    if (!g || !tokens || !targets) return lgpu_set_error(LGPU_EINVAL, "lgpu_train_graph_run: NULL argument");
    /* dropout in training only: a run without backward is an evaluation */
    g->drop = backward && g->lora->dropout > 0;
    if (g->drop && !key)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_train_graph_run: LoRA dropout %g needs the micro-batch's key",
                              (double)g->lora->dropout);
    g->key = key ? *key : (lgpu_train_mb_key){0};
    const uint32_t V = g->m->hp.n_vocab;
    uint32_t counted = 0;
    for (uint32_t i = 0; i < g->M; i++) {
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= V || targets[i] >= (int32_t)V || targets[i] < -1)
            return lgpu_set_error(LGPU_EINVAL, "training batch: row %u (sequence %u, position %u): token %d / target "
                                  "%d outside the vocabulary (%u)", i, i / g->T, i % g->T, tokens[i], targets[i], V);
        counted += targets[i] >= 0;
    }
    memcpy(g->in_host + g->off_tok / 4, tokens, g->M * 4);
    memcpy(g->in_host + g->off_tgt / 4, targets, g->M * 4);
    int st = lgpu_buf_write(g->in, 0, g->in_host, g->in_bytes);
    if (!st) st = lgpu_exec_begin(g->ex);
    if (!st) st = record(g, backward, grad_scale);
    if (!st) st = lgpu_exec_submit(g->ex);
    if (!st) st = lgpu_buf_read(g->loss, 0, g->loss_host, g->M * sizeof(float));
    if (st) return st;
    double sum = 0;
    for (uint32_t i = 0; i < g->M; i++)
        if (targets[i] >= 0) sum += g->loss_host[i];
    if (loss_sum) *loss_sum = sum;
    if (n_counted) *n_counted = counted;
    return 0;
}
