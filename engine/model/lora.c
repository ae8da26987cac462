/* LoRA adapters on the device (lgpu/lora.h): layout, PEFT's initialisation,
 * host copies of single matrices. Files (PEFT, GGUF) are read and written by
 * lora_io_*.c; the forward pass applies adapters; engine/train trains them. */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/lora_internal.h"
#include "model/lora_io.h"

static const char *const short_names[LGPU_LORA_N_TARGETS] = {"q", "k", "v", "o", "gate", "up", "down"};
static const char *const peft_names[LGPU_LORA_N_TARGETS] = {"q_proj", "k_proj",    "v_proj",   "o_proj",
                                                            "gate_proj", "up_proj", "down_proj"};

const char *lgpu_lora_target_name(lgpu_lora_target t) {
    return (unsigned)t < LGPU_LORA_N_TARGETS ? short_names[t] : "?";
}

const char *lgpu_lora_target_peft_name(lgpu_lora_target t) {
    return (unsigned)t < LGPU_LORA_N_TARGETS ? peft_names[t] : "?";
}

int lgpu_lora_targets_parse(const char *list, uint32_t *mask) {
    if (!list || !mask) return lgpu_set_error(LGPU_EINVAL, "lgpu_lora_targets_parse: NULL argument");
    uint32_t m = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        while (n && (*p == ' ')) p++, n--;
        size_t e = n;
        while (e && p[e - 1] == ' ') e--;
        bool found = false;
        if (e == 3 && !strncasecmp(p, "all", 3)) {
            m |= LGPU_LORA_ALL_TARGETS;
            found = true;
        }
        for (int t = 0; t < LGPU_LORA_N_TARGETS && !found; t++)
            if ((strlen(short_names[t]) == e && !strncasecmp(p, short_names[t], e)) ||
                (strlen(peft_names[t]) == e && !strncasecmp(p, peft_names[t], e))) {
                m |= 1u << t;
                found = true;
            }
        if (!found)
            return lgpu_set_error(LGPU_EINVAL, "LoRA target '%.*s': use q, k, v, o, gate, up, down (or q_proj ... "
                                  "down_proj, or all)", (int)e, p);
        p += n;
        if (*p == ',') p++;
    }
    if (!m) return lgpu_set_error(LGPU_EINVAL, "LoRA targets '%s': empty list", list);
    *mask = m;
    return 0;
}

int lgpu_lora_spec_parse(const char *spec, char **path, float *scale) {
    if (!spec || !path || !scale) return lgpu_set_error(LGPU_EINVAL, "lgpu_lora_spec_parse: NULL argument");
    *path = NULL;
    *scale = 1.0f;
    size_t n = strlen(spec);
    const char *colon = strrchr(spec, ':');
    if (colon && colon[1]) {
        char *end;
        errno = 0;
        float v = strtof(colon + 1, &end);
        if (!*end && !errno && isfinite(v)) {
            n = (size_t)(colon - spec);
            *scale = v;
        }
    }
    if (!n) return lgpu_set_error(LGPU_EINVAL, "adapter '%s': no file name (FILE[:SCALE])", spec);
    if (!(*path = strndup(spec, n))) return lgpu_set_error(LGPU_ENOMEM, "adapter '%s'", spec);
    return 0;
}

const lgpu_wt *lgpu_lora_base_weight(const lgpu_model *m, uint32_t l, lgpu_lora_target t) {
    const lgpu_layer_w *w = &m->layers[l];
    switch (t) {
    case LGPU_LORA_Q: return &w->wq;
    case LGPU_LORA_K: return &w->wk;
    case LGPU_LORA_V: return &w->wv;
    case LGPU_LORA_O: return &w->wo;
    case LGPU_LORA_GATE: return &w->w_gate;
    case LGPU_LORA_UP: return &w->w_up;
    case LGPU_LORA_DOWN: return &w->w_down;
    default: return NULL;
    }
}

/* splitmix64: a small, well-mixed generator; the initialisation only needs
 * to be reproducible for a seed, not to equal torch's bits. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1) from the top 24 bits. */
static float uniform_pm1(uint64_t *s) { return (float)(splitmix64(s) >> 40) * (2.0f / 16777216.0f) - 1.0f; }

/* A ~ U(-1/sqrt(in), 1/sqrt(in)): PEFT's nn.init.kaiming_uniform_(A, a=sqrt(5))
 * (gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / in) = 1 / sqrt(in)). One
 * stream per (seed, layer, target), so a layer's values do not depend on
 * which other targets exist. */
static int init_a(lgpu_lora *a, uint32_t l, lgpu_lora_target t, uint64_t seed) {
    const lgpu_lora_mat *mt = &a->layer[l].mat[t];
    size_t n = (size_t)a->rank * mt->in;
    float *v = malloc(n * sizeof *v);
    if (!v) return lgpu_set_error(LGPU_ENOMEM, "LoRA initialisation");
    uint64_t s = seed ^ (0x6c6f7261ull << 32) ^ ((uint64_t)l << 8) ^ (uint64_t)t;
    splitmix64(&s);
    float bound = 1.0f / sqrtf((float)mt->in);
    for (size_t i = 0; i < n; i++) v[i] = uniform_pm1(&s) * bound;
    int st = lgpu_buf_write(a->layer[l].buf, mt->off_a, v, n * sizeof *v);
    free(v);
    return st;
}

int lgpu_lora_create(lgpu_model *model, const lgpu_lora_params *params, lgpu_lora **out) {
    if (!model || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_lora_create: NULL argument");
    *out = NULL;
    lgpu_lora_params p = params ? *params : (lgpu_lora_params){0};
    if (p.path) {
        size_t n = strlen(p.path);
        return n > 5 && !strcmp(p.path + n - 5, ".gguf") ? lgpu_lora_read_gguf(model, p.path, out)
                                                         : lgpu_lora_read_peft(model, p.path, out);
    }
    if (!p.rank) p.rank = 8;
    if (p.alpha == 0) p.alpha = 8;
    if (!p.targets) p.targets = LGPU_LORA_ALL_TARGETS;
    if (p.targets & ~LGPU_LORA_ALL_TARGETS)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_lora_create: target mask 0x%x", p.targets);
    if (p.rank > 4096 || !(p.alpha > 0) || !(p.dropout >= 0 && p.dropout < 1))
        return lgpu_set_error(LGPU_EINVAL, "lgpu_lora_create: rank %u / alpha %g / dropout %g out of range", p.rank,
                              p.alpha, p.dropout);
    lgpu_lora *a = calloc(1, sizeof *a);
    if (!a) return lgpu_set_error(LGPU_ENOMEM, "lgpu_lora_create");
    static atomic_uint_fast64_t next_uid = 1;
    a->uid = atomic_fetch_add(&next_uid, 1);
    a->model = model;
    a->rank = p.rank;
    a->alpha = p.alpha;
    a->dropout = p.dropout;
    a->targets = p.targets;
    a->scale = p.alpha / (float)p.rank;
    a->n_layers = model->hp.n_layers;
    int st = 0;
    if (!(a->layer = calloc(a->n_layers, sizeof *a->layer))) {
        st = lgpu_set_error(LGPU_ENOMEM, "lgpu_lora_create");
        goto fail;
    }
    for (uint32_t l = 0; l < a->n_layers; l++) {
        lgpu_lora_layer *L = &a->layer[l];
        size_t off = 0;
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++) {
            if (!(p.targets & (1u << t))) continue;
            const lgpu_wt *w = lgpu_lora_base_weight(model, l, (lgpu_lora_target)t);
            lgpu_lora_mat *mt = &L->mat[t];
            *mt = (lgpu_lora_mat){.on = true, .in = w->cols, .out = w->rows};
            mt->off_a = off;
            off = LGPU_ALIGN_UP(off + (size_t)p.rank * mt->in * sizeof(float), LGPU_REF_ALIGN);
            mt->off_b = off;
            off = LGPU_ALIGN_UP(off + (size_t)mt->out * p.rank * sizeof(float), LGPU_REF_ALIGN);
            a->n_params += (uint64_t)p.rank * (mt->in + mt->out);
        }
        L->bytes = off;
        if ((st = lgpu_buf_create(model->dev, off, off, &L->buf)) || (st = lgpu_buf_fill_zero(L->buf, 0, off)))
            goto fail;
        a->bytes += off;
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++)
            if (L->mat[t].on && (st = init_a(a, l, (lgpu_lora_target)t, p.seed))) goto fail;
    }
    *out = a;
    return 0;
fail:
    lgpu_lora_destroy(a);
    return st;
}

void lgpu_lora_destroy(lgpu_lora *a) {
    if (!a) return;
    for (uint32_t l = 0; a->layer && l < a->n_layers; l++) lgpu_buf_destroy(a->layer[l].buf);
    free(a->layer);
    free(a);
}

int lgpu_lora_save(const lgpu_lora *a, const char *path, const char *base_model) {
    if (!a || !path) return lgpu_set_error(LGPU_EINVAL, "lgpu_lora_save: NULL argument");
    size_t n = strlen(path);
    return n > 5 && !strcmp(path + n - 5, ".gguf") ? lgpu_lora_save_gguf(a, path, base_model)
                                                   : lgpu_lora_save_peft(a, path, base_model);
}

lgpu_model *lgpu_lora_model(const lgpu_lora *a) { return a ? a->model : NULL; }
uint32_t lgpu_lora_rank(const lgpu_lora *a) { return a ? a->rank : 0; }
float lgpu_lora_alpha(const lgpu_lora *a) { return a ? a->alpha : 0; }
float lgpu_lora_dropout(const lgpu_lora *a) { return a ? a->dropout : 0; }
uint32_t lgpu_lora_targets(const lgpu_lora *a) { return a ? a->targets : 0; }
uint64_t lgpu_lora_n_params(const lgpu_lora *a) { return a ? a->n_params : 0; }
size_t lgpu_lora_bytes(const lgpu_lora *a) { return a ? a->bytes : 0; }

int lgpu_lora_target_shape(const lgpu_lora *a, lgpu_lora_target t, uint32_t *out_dim, uint32_t *in_dim) {
    if (!a || (unsigned)t >= LGPU_LORA_N_TARGETS) return lgpu_set_error(LGPU_EINVAL, "lgpu_lora_target_shape");
    const lgpu_wt *w = lgpu_lora_base_weight(a->model, 0, t);
    if (out_dim) *out_dim = w->rows;
    if (in_dim) *in_dim = w->cols;
    return 0;
}

/* The matrix (layer, t, b): its byte offset and size, or an error. */
static int locate(const lgpu_lora *a, uint32_t l, lgpu_lora_target t, bool b, size_t *off, size_t *bytes) {
    if (!a || l >= a->n_layers || (unsigned)t >= LGPU_LORA_N_TARGETS)
        return lgpu_set_error(LGPU_EINVAL, "LoRA: layer %u / target %d out of range", l, (int)t);
    const lgpu_lora_mat *mt = &a->layer[l].mat[t];
    if (!mt->on) return lgpu_set_error(LGPU_ENOTFOUND, "LoRA: the adapter does not target %s", short_names[t]);
    *off = b ? mt->off_b : mt->off_a;
    *bytes = (size_t)a->rank * (b ? mt->out : mt->in) * sizeof(float);
    return 0;
}

int lgpu_lora_get(const lgpu_lora *a, uint32_t l, lgpu_lora_target t, bool b, float *dst) {
    size_t off, bytes;
    int st = locate(a, l, t, b, &off, &bytes);
    return st ? st : lgpu_buf_read(a->layer[l].buf, off, dst, bytes);
}

int lgpu_lora_set(lgpu_lora *a, uint32_t l, lgpu_lora_target t, bool b, const float *src) {
    size_t off, bytes;
    int st = locate(a, l, t, b, &off, &bytes);
    if (!st) a->version++;
    return st ? st : lgpu_buf_write(a->layer[l].buf, off, src, bytes);
}
