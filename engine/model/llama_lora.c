/* LoRA adapters in use at inference (lgpu/lora.h, "adapters in use"): a
 * context's copies of the adapters its sequences apply, each sequence's
 * adapters, and the row list that tells the lora op, at every step, which
 * adapters each token applies (docs/ARCHITECTURE.md, "Adapters").
 *
 * Why copies: the op reads every adapter of a step through one binding, so
 * all of a layer's adapter matrices must sit in one buffer (the pack), at
 * offsets the op's table gives per slot. Adapters are small next to the
 * model (r (in + out) per projection), and the copy frees callers from
 * keeping adapters alive while sequences run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/lora_internal.h"

#define NT LGPU_LORA_N_TARGETS

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Root of a sequence's prefix hashes: 0 for the plain model, else a hash of
 * its adapters (which copy, which values, which scales, in order). */
static uint64_t salt_of(const lgpu_ctx_lora *L, const lgpu_seq_lora *s) {
    if (!s->n) return 0;
    uint64_t h = 0x6c6f7261ull;
    for (int i = 0; i < s->n; i++) {
        const lgpu_ctx_lora_slot *sl = &L->slot[s->slot[i]];
        uint32_t bits;
        memcpy(&bits, &s->user_scale[i], sizeof bits);
        h = mix64(h ^ sl->uid);
        h = mix64(h ^ sl->version);
        h = mix64(h ^ bits);
    }
    return h | 1;
}

int lgpu_ctx_lora_init(lgpu_ctx *c) {
    c->lora.seq = calloc(c->params.n_seq_max, sizeof *c->lora.seq);
    return c->lora.seq ? 0 : lgpu_set_error(LGPU_ENOMEM, "context: adapter tables");
}

static void free_pack(lgpu_buf **pack, uint32_t n_layers) {
    if (!pack) return;
    for (uint32_t l = 0; l < n_layers; l++) lgpu_buf_destroy(pack[l]);
    free(pack);
}

void lgpu_ctx_lora_free(lgpu_ctx *c) {
    free_pack(c->lora.pack, c->model->hp.n_layers);
    lgpu_buf_destroy(c->lora.table);
    free(c->lora.seq);
}

static void users_add(lgpu_ctx_lora *L, const lgpu_seq_lora *s, int d) {
    for (int i = 0; i < s->n; i++) L->slot[s->slot[i]].users += d;
}

void lgpu_ctx_lora_seq_open(lgpu_ctx *c, int seq) {
    lgpu_ctx_lora *L = &c->lora;
    L->seq[seq] = L->dflt;
    users_add(L, &L->seq[seq], +1);
    c->kv.seq[seq].salt = salt_of(L, &L->seq[seq]);
}

void lgpu_ctx_lora_seq_close(lgpu_ctx *c, int seq) {
    users_add(&c->lora, &c->lora.seq[seq], -1);
    c->lora.seq[seq].n = 0;
}

/* ---- attaching an adapter: a slot, its block in the pack ---- */

/* An adapter fits this context when its shapes are the model's; its layers
 * must share one layout (lgpu_lora_create makes them so), because a slot
 * has one set of offsets for every layer's pack. */
static int check_shapes(const lgpu_ctx *c, const lgpu_lora *a, const char *fn, int i) {
    const lgpu_model *m = c->model;
    if (a->n_layers != m->hp.n_layers)
        return lgpu_set_error(LGPU_EINVAL, "%s: adapter %d has %u layers, the model %u", fn, i, a->n_layers,
                              m->hp.n_layers);
    if (a->rank > LGPU_LORA_OP_MAX_RANK)
        return lgpu_set_error(LGPU_EINVAL, "%s: adapter %d has rank %u, at most %d is supported", fn, i, a->rank,
                              LGPU_LORA_OP_MAX_RANK);
    for (uint32_t l = 0; l < a->n_layers; l++) {
        if (a->layer[l].bytes != a->layer[0].bytes)
            return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: adapter %d: layer %u has another layout than layer 0", fn, i, l);
        for (int t = 0; t < NT; t++) {
            const lgpu_lora_mat *mt = &a->layer[l].mat[t], *m0 = &a->layer[0].mat[t];
            if (!mt->on) continue;
            const lgpu_wt *w = lgpu_lora_base_weight(m, l, (lgpu_lora_target)t);
            if (mt->in != w->cols || mt->out != w->rows)
                return lgpu_set_error(LGPU_EINVAL, "%s: adapter %d: layer %u %s is for a (%u, %u) projection, the "
                                      "model's is (%u, %u)", fn, i, l, lgpu_lora_target_name((lgpu_lora_target)t),
                                      mt->out, mt->in, w->rows, w->cols);
            if (mt->off_a != m0->off_a || mt->off_b != m0->off_b)
                return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: adapter %d: layer %u has another layout than layer 0",
                                      fn, i, l);
        }
    }
    return 0;
}

/* Copies one layer of `a` into bytes [off, off + bytes) of dst. */
static int copy_layer(const lgpu_lora *a, uint32_t l, lgpu_buf *dst, size_t off, void *tmp) {
    int st = lgpu_buf_read(a->layer[l].buf, 0, tmp, a->layer[l].bytes);
    return st ? st : lgpu_buf_write(dst, off, tmp, a->layer[l].bytes);
}

static int write_table(lgpu_ctx *c, const lgpu_ctx_lora_slot *slots) {
    lgpu_ctx_lora *L = &c->lora;
    const size_t bytes = (size_t)LGPU_CTX_LORA_SLOTS * NT * 16;
    int st;
    if (!L->table && (st = lgpu_buf_create(c->model->dev, bytes, bytes, &L->table))) return st;
    int32_t *t = calloc(1, bytes);
    if (!t) return lgpu_set_error(LGPU_ENOMEM, "context: adapter table");
    for (int s = 0; s < LGPU_CTX_LORA_SLOTS; s++) {
        const lgpu_ctx_lora_slot *sl = &slots[s];
        if (!sl->uid) continue;
        for (int k = 0; k < NT; k++) {
            if (!(sl->targets & (1u << k))) continue;
            int32_t *e = t + ((size_t)s * NT + k) * 4;
            e[0] = (int32_t)((sl->off + sl->off_a[k]) / 4);
            e[1] = (int32_t)((sl->off + sl->off_b[k]) / 4);
            e[2] = (int32_t)sl->rank;
        }
    }
    st = lgpu_buf_write(L->table, 0, t, bytes);
    free(t);
    return st;
}

/* Places the live slots of `slots` one after another (index order) and
 * returns the pack size. */
static size_t layout(lgpu_ctx_lora_slot *slots) {
    size_t off = 0;
    for (int s = 0; s < LGPU_CTX_LORA_SLOTS; s++)
        if (slots[s].uid) {
            slots[s].off = off;
            off += LGPU_ALIGN_UP(slots[s].bytes, LGPU_REF_ALIGN);
        }
    return off;
}

/* Frees every slot no sequence uses (pinned slots have users > 0). */
static void evict_unused(lgpu_ctx_lora_slot *slots) {
    for (int s = 0; s < LGPU_CTX_LORA_SLOTS; s++)
        if (slots[s].uid && slots[s].users <= 0) memset(&slots[s], 0, sizeof slots[s]);
}

/* A new pack with `a` in slot `idx` of `slots` (a copy of the current
 * slots, laid out): the kept slots' blocks come from the old pack, a's from
 * the adapter. Nothing changes on failure. */
static int rebuild(lgpu_ctx *c, lgpu_ctx_lora_slot *slots, size_t total, int idx, const lgpu_lora *a) {
    lgpu_ctx_lora *L = &c->lora;
    const uint32_t n_layers = c->model->hp.n_layers;
    size_t tmp_bytes = 0;
    for (int s = 0; s < LGPU_CTX_LORA_SLOTS; s++)
        if (slots[s].uid && slots[s].bytes > tmp_bytes) tmp_bytes = slots[s].bytes;
    lgpu_buf **pack = calloc(n_layers, sizeof *pack);
    void *tmp = malloc(tmp_bytes);
    int st = 0;
    if (!pack || !tmp) st = lgpu_set_error(LGPU_ENOMEM, "context: adapter copies");
    for (uint32_t l = 0; l < n_layers && !st; l++) {
        if ((st = lgpu_buf_create(c->model->dev, total, total, &pack[l]))) break;
        for (int s = 0; s < LGPU_CTX_LORA_SLOTS && !st; s++) {
            if (!slots[s].uid) continue;
            if (s == idx) st = copy_layer(a, l, pack[l], slots[s].off, tmp);
            else if (!(st = lgpu_buf_read(L->pack[l], L->slot[s].off, tmp, slots[s].bytes)))
                st = lgpu_buf_write(pack[l], slots[s].off, tmp, slots[s].bytes);
        }
    }
    if (!st) st = write_table(c, slots);
    free(tmp);
    if (st) {
        free_pack(pack, n_layers);
        if (L->table) write_table(c, L->slot); /* back to the old offsets */
        return st;
    }
    free_pack(L->pack, n_layers);
    L->pack = pack;
    L->pack_bytes = total;
    memcpy(L->slot, slots, sizeof L->slot);
    L->n_slots = 0;
    for (int s = 0; s < LGPU_CTX_LORA_SLOTS; s++)
        if (L->slot[s].uid) L->n_slots = (uint32_t)s + 1;
    return 0;
}

/* The slot holding adapter a (copied now if needed); i names it in errors. */
static int attach(lgpu_ctx *c, const lgpu_lora *a, const char *fn, int i, int *out) {
    lgpu_ctx_lora *L = &c->lora;
    int st;
    for (int s = 0; s < LGPU_CTX_LORA_SLOTS; s++) {
        lgpu_ctx_lora_slot *sl = &L->slot[s];
        if (sl->uid != a->uid) continue;
        if (sl->version != a->version) { /* lgpu_lora_set changed it: refresh the copy */
            void *tmp = malloc(sl->bytes);
            if (!tmp) return lgpu_set_error(LGPU_ENOMEM, "context: adapter copy");
            st = 0;
            for (uint32_t l = 0; l < a->n_layers && !st; l++) st = copy_layer(a, l, L->pack[l], sl->off, tmp);
            free(tmp);
            if (st) return st;
            sl->version = a->version;
        }
        *out = s;
        return 0;
    }
    if ((st = check_shapes(c, a, fn, i))) return st;
    lgpu_ctx_lora_slot slots[LGPU_CTX_LORA_SLOTS];
    memcpy(slots, L->slot, sizeof slots);
    lgpu_ctx_lora_slot nw = {.uid = a->uid, .version = a->version, .rank = a->rank, .targets = a->targets,
                             .scale = a->scale, .bytes = a->layer[0].bytes};
    for (int t = 0; t < NT; t++) nw.off_a[t] = a->layer[0].mat[t].off_a, nw.off_b[t] = a->layer[0].mat[t].off_b;
    /* one binding per layer; float offsets in the op's I32 table */
    size_t limit = lgpu_dev_max_binding(c->model->dev);
    if (limit > (size_t)INT32_MAX * 4) limit = (size_t)INT32_MAX * 4;
    int idx = -1;
    for (int pass = 0; pass < 2 && idx < 0; pass++) {
        if (pass) evict_unused(slots); /* cached copies go only when room is needed */
        for (int s = 0; s < LGPU_CTX_LORA_SLOTS && idx < 0; s++)
            if (!slots[s].uid) {
                slots[s] = nw;
                if (layout(slots) <= limit) idx = s;
                else memset(&slots[s], 0, sizeof slots[s]);
            }
    }
    if (idx < 0)
        return lgpu_set_error(LGPU_EFULL, "%s: adapter %d (%zu bytes per layer) does not fit: the context's "
                              "adapters in use take %zu bytes per layer of the device's %zu-byte binding limit, in "
                              "at most %d adapters", fn, i, nw.bytes, layout(slots), limit, LGPU_CTX_LORA_SLOTS);
    return (st = rebuild(c, slots, layout(slots), idx, a)) ? st : (*out = idx, 0);
}

/* Sets *dst to the given adapters: every adapter is attached and pinned
 * first, so a failure leaves *dst as it was. */
static int set_list(lgpu_ctx *c, lgpu_seq_lora *dst, const lgpu_lora *const *loras, const float *scales, int n,
                    const char *fn) {
    lgpu_ctx_lora *L = &c->lora;
    if (n < 0 || n > LGPU_LORA_MAX_STACK || (n && !loras))
        return lgpu_set_error(LGPU_EINVAL, "%s: %d adapters (at most %d)", fn, n, LGPU_LORA_MAX_STACK);
    lgpu_seq_lora nw = {.n = 0};
    int st = 0;
    for (int i = 0; i < n && !st; i++) {
        float s = scales ? scales[i] : 1.0f;
        if (!loras[i]) st = lgpu_set_error(LGPU_EINVAL, "%s: adapter %d is NULL", fn, i);
        else if (!isfinite(s)) st = lgpu_set_error(LGPU_EINVAL, "%s: adapter %d: scale %g", fn, i, s);
        else if (!(st = attach(c, loras[i], fn, i, &nw.slot[i]))) {
            nw.user_scale[i] = s;
            L->slot[nw.slot[i]].users++; /* pinned: later attaches keep it */
            nw.n = i + 1;
        }
    }
    users_add(L, st ? &nw : dst, -1);
    if (!st) *dst = nw;
    return st;
}

int lgpu_seq_set_adapters(lgpu_ctx *c, int seq, const lgpu_lora *const *loras, const float *scales, int n) {
    if (!c || !lgpu_kv_seq_valid(&c->kv, seq))
        return lgpu_set_error(LGPU_EINVAL, "lgpu_seq_set_adapters: sequence %d is not open", seq);
    if (c->kv.seq[seq].len || c->kv.seq[seq].n_blocks)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_seq_set_adapters: sequence %d already holds %d tokens computed "
                              "with other weights (set adapters on an empty sequence)", seq, c->kv.seq[seq].len);
    int st = set_list(c, &c->lora.seq[seq], loras, scales, n, "lgpu_seq_set_adapters");
    if (!st) c->kv.seq[seq].salt = salt_of(&c->lora, &c->lora.seq[seq]);
    return st;
}

int lgpu_ctx_set_adapters(lgpu_ctx *c, const lgpu_lora *const *loras, const float *scales, int n) {
    if (!c) return lgpu_set_error(LGPU_EINVAL, "lgpu_ctx_set_adapters: NULL context");
    return set_list(c, &c->lora.dflt, loras, scales, n, "lgpu_ctx_set_adapters");
}

int lgpu_ctx_set_adapter_files(lgpu_ctx *c, const char *const *specs, int n) {
    if (!c || n < 0 || n > LGPU_LORA_MAX_STACK || (n && !specs))
        return lgpu_set_error(LGPU_EINVAL, "lgpu_ctx_set_adapter_files: %d adapters (at most %d)", n,
                              LGPU_LORA_MAX_STACK);
    lgpu_lora *ad[LGPU_LORA_MAX_STACK] = {0};
    float scales[LGPU_LORA_MAX_STACK] = {0};
    int st = 0;
    for (int i = 0; i < n && !st; i++) {
        char *path = NULL;
        if (!(st = lgpu_lora_spec_parse(specs[i], &path, &scales[i])) &&
            (st = lgpu_lora_create(c->model, &(lgpu_lora_params){.path = path}, &ad[i]))) {
            char why[512]; /* the detail is rewritten below: copy it first */
            snprintf(why, sizeof why, "%s", lgpu_last_error());
            st = lgpu_set_error(st, "adapter %s: %s", specs[i], why);
        }
        free(path);
    }
    if (!st) st = lgpu_ctx_set_adapters(c, (const lgpu_lora *const *)ad, scales, n);
    for (int i = 0; i < n; i++) lgpu_lora_destroy(ad[i]);
    return st;
}

int lgpu_seq_n_adapters(const lgpu_ctx *c, int seq) {
    return c && lgpu_kv_seq_valid(&c->kv, seq) ? c->lora.seq[seq].n : 0;
}

/* ---- the step ---- */

size_t lgpu_ctx_lora_step_plan(lgpu_ctx *c, const lgpu_batch *b) {
    lgpu_ctx_lora *L = &c->lora;
    uint32_t rows = 0, stack = 0, targets = 0;
    for (int i = 0; i < b->n; i++) {
        const lgpu_seq_lora *s = &L->seq[b->seq[i]];
        if (!s->n) continue;
        rows++;
        if ((uint32_t)s->n > stack) stack = (uint32_t)s->n;
        for (int k = 0; k < s->n; k++) targets |= L->slot[s->slot[k]].targets;
    }
    L->step_rows = rows;
    L->step_stack = stack;
    L->step_targets = targets;
    return rows ? lgpu_lora_rows_bytes(rows, stack) : 0;
}

void lgpu_ctx_lora_step_fill(const lgpu_ctx *c, const lgpu_batch *b, int32_t *dst) {
    const lgpu_ctx_lora *L = &c->lora;
    const uint32_t words = 1 + 2 * L->step_stack;
    for (int i = 0; i < b->n; i++) {
        const lgpu_seq_lora *s = &L->seq[b->seq[i]];
        if (!s->n) continue;
        dst[0] = i;
        for (uint32_t k = 0; k < L->step_stack; k++) {
            float scale = 0;
            dst[1 + 2 * k] = -1;
            if (k < (uint32_t)s->n) {
                dst[1 + 2 * k] = s->slot[k];
                scale = s->user_scale[k] * L->slot[s->slot[k]].scale;
            }
            memcpy(&dst[2 + 2 * k], &scale, sizeof scale);
        }
        dst += words;
    }
}

int lgpu_ctx_lora_record(lgpu_ctx *c, uint32_t l, lgpu_lora_target t, lgpu_buf *x, lgpu_buf *y, uint32_t T,
                         size_t rows_off) {
    const lgpu_ctx_lora *L = &c->lora;
    if (!L->step_rows || !(L->step_targets & (1u << t))) return 0;
    const lgpu_wt *w = lgpu_lora_base_weight(c->model, l, t);
    lgpu_lora_op_params p = {.n_rows = L->step_rows, .n_tokens = T, .in = w->cols, .out = w->rows,
                             .x_stride = w->cols, .y_stride = w->rows, .n_stack = L->step_stack,
                             .n_adapters = L->n_slots, .table_stride = NT, .table_index = (uint32_t)t,
                             .w_size = (uint32_t)(L->pack_bytes / 4)};
    return lgpu_op_lora(c->ex, &p, lgpu_ref_at(x, 0), lgpu_ref_at(L->pack[l], 0), lgpu_ref_at(L->table, 0),
                        lgpu_ref_at(c->sc.step, rows_off), lgpu_ref_at(y, 0));
}
