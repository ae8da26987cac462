/* lgpu_merge_gguf (lgpu/convert.h): LoRA adapters folded into a base GGUF.
 *
 * The adapters are read by the ordinary readers (lgpu_lora_create), which
 * only need the model's shapes and a device: a "shape model" stands in for
 * the base (hyperparameters and matrix dims from the file, no weights
 * uploaded, the host device), so merging a 7B model does not load it. The
 * merged file is streamed tensor by tensor like lgpu_quantize_gguf. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "model/convert_internal.h"
#include "model/gguf_llama.h"
#include "model/lora_internal.h"
#include "model/lora_io.h"
#include "quant/quant.h"

#define NT LGPU_LORA_N_TARGETS
#define CHUNK_VALUES (4u << 20) /* F32 values per chunk of rows */

static lgpu_wt *weight_of(lgpu_layer_w *w, int t) {
    lgpu_wt *all[NT] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
    return all[t];
}

/* Hyperparameters and matrix dims of mf, weights left on disk. */
static int shape_model(const lgpu_model_file *mf, lgpu_model **out) {
    const lgpu_file_hparams *fh = lgpu_model_file_hparams(mf);
    lgpu_model *m = calloc(1, sizeof *m);
    if (!m) return lgpu_set_error(LGPU_ENOMEM, "merge");
    m->hp = (lgpu_hparams){.n_vocab = fh->n_vocab, .dim = fh->dim, .n_layers = fh->n_layers, .n_heads = fh->n_heads,
                           .n_kv_heads = fh->n_kv_heads, .head_dim = fh->head_dim, .hidden_dim = fh->hidden_dim,
                           .n_ctx_train = fh->n_ctx_train, .norm_eps = fh->norm_eps, .rope_theta = fh->rope_theta,
                           .tied_output = fh->tied_output};
    int st = 0;
    if (!(m->layers = calloc(fh->n_layers, sizeof *m->layers))) st = lgpu_set_error(LGPU_ENOMEM, "merge");
    for (uint32_t l = 0; l < fh->n_layers && !st; l++)
        for (int t = 0; t < NT && !st; t++) {
            char name[96];
            lgpu_model_tensor mt;
            snprintf(name, sizeof name, "blk.%u.%s.weight", l, lgpu_lora_gguf_name((lgpu_lora_target)t));
            if (!(st = lgpu_model_file_tensor(mf, name, &mt))) {
                lgpu_wt *w = weight_of(&m->layers[l], t);
                w->type = mt.type, w->rows = (uint32_t)mt.n_rows, w->cols = (uint32_t)mt.ne0;
            }
        }
    if (!st && !(st = lgpu_dev_create("cpu", &m->dev))) m->own_dev = true;
    if (st) {
        lgpu_model_destroy(m);
        return st;
    }
    *out = m;
    return 0;
}

/* One adapter's matrices for one projection, on the host. */
typedef struct part {
    float *A, *B; /* (r, in), (out, r) */
    uint32_t rank;
    double coef; /* user scale * alpha / r */
} part;

typedef struct merge_job {
    const void *src;
    int src_type, dst_type;
    int64_t ne0, row0;
    const part *parts;
    int n_parts;
    float *f32;
    uint8_t *out;
    size_t out_rb;
    atomic_int err;
} merge_job;

/* Rows [b, e) of the chunk: W' = W + sum coef * B A, in double, rounded once. */
static void merge_rows(void *ctx, int64_t b, int64_t e, int thread) {
    merge_job *j = ctx;
    (void)thread;
    const int64_t K = j->ne0;
    float *x = j->f32 + b * K;
    double *acc = malloc((size_t)K * sizeof *acc);
    int st = acc ? lgpu_dequantize_rows(j->src_type, j->src, j->row0 + b, e - b, K, x) : LGPU_ENOMEM;
    for (int64_t r = b; r < e && !st; r++) {
        const int64_t o = j->row0 + r;
        memset(acc, 0, (size_t)K * sizeof *acc);
        for (int p = 0; p < j->n_parts; p++) {
            const part *pt = &j->parts[p];
            for (uint32_t q = 0; q < pt->rank; q++) {
                double c = pt->coef * pt->B[(size_t)o * pt->rank + q];
                const float *a = pt->A + (size_t)q * K;
                if (c != 0)
                    for (int64_t i = 0; i < K; i++) acc[i] += c * a[i];
            }
        }
        float *xr = j->f32 + r * K;
        for (int64_t i = 0; i < K; i++) xr[i] = (float)((double)xr[i] + acc[i]);
    }
    if (!st) st = lgpu_quantize_rows(j->dst_type, x, e - b, K, j->out + (size_t)b * j->out_rb);
    free(acc);
    if (st) atomic_store(&j->err, st);
}

static int write_merged(lgpu_gguf_writer *w, const lgpu_gguf_tensor *t, int dst_type, const part *parts, int n_parts,
                        int nthreads, lgpu_progress *prog) {
    const int64_t K = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
    merge_job j = {.src = t->data, .src_type = t->type, .dst_type = dst_type, .ne0 = K, .parts = parts,
                   .n_parts = n_parts, .out_rb = lgpu_type_row_bytes(dst_type, K)};
    int64_t chunk = (int64_t)(CHUNK_VALUES / (uint64_t)K);
    if (chunk < 1) chunk = 1;
    if (chunk > rows) chunk = rows;
    j.f32 = malloc((size_t)chunk * (size_t)K * sizeof(float));
    j.out = malloc((size_t)chunk * j.out_rb);
    int st = !j.f32 || !j.out ? lgpu_set_error(LGPU_ENOMEM, "merge: tensor %s", t->name) : 0;
    for (int64_t r = 0; !st && r < rows; r += chunk) {
        int64_t n = rows - r < chunk ? rows - r : chunk;
        j.row0 = r;
        lgpu_parallel_for(nthreads > 0 ? nthreads : lgpu_default_threads(), n, merge_rows, &j);
        if ((st = atomic_load(&j.err))) {
            st = lgpu_set_error(st, "merge: tensor %s: %s -> %s failed", t->name, lgpu_type_name(t->type),
                                lgpu_type_name(dst_type));
            break;
        }
        st = lgpu_gguf_writer_tensor_data(w, j.out, (size_t)n * j.out_rb);
        lgpu_progress_add(prog, t->name, (uint64_t)n * j.out_rb);
    }
    free(j.f32);
    free(j.out);
    return st;
}

/* "blk.N.<target>.weight" -> (N, target); false for any other tensor. */
static bool adapted_name(const char *name, uint32_t *l, int *t) {
    unsigned n;
    int used = 0;
    if (sscanf(name, "blk.%u.%n", &n, &used) != 1 || !used) return false;
    for (int k = 0; k < NT; k++) {
        const char *g = lgpu_lora_gguf_name((lgpu_lora_target)k);
        size_t gl = strlen(g);
        if (!strncmp(name + used, g, gl) && !strcmp(name + used + gl, ".weight")) {
            *l = n;
            *t = k;
            return true;
        }
    }
    return false;
}

static void free_parts(part *parts, int n) {
    for (int i = 0; i < n; i++) free(parts[i].A), free(parts[i].B);
}

/* The matrices of every adapter that adapts (l, t); *n_out of them. */
static int gather_parts(lgpu_lora *const *ad, const float *scales, int n, uint32_t l, int t, part *parts, int *n_out) {
    int k = 0, st = 0;
    for (int i = 0; i < n && !st; i++) {
        const lgpu_lora_mat *mt = &ad[i]->layer[l].mat[t];
        if (!mt->on) continue;
        part *p = &parts[k++];
        p->rank = ad[i]->rank;
        p->coef = (double)(scales ? scales[i] : 1.0f) * (double)ad[i]->scale;
        p->A = malloc((size_t)p->rank * mt->in * sizeof(float));
        p->B = malloc((size_t)mt->out * p->rank * sizeof(float));
        if (!p->A || !p->B) st = lgpu_set_error(LGPU_ENOMEM, "merge: adapter matrices");
        else if (!(st = lgpu_lora_get(ad[i], l, (lgpu_lora_target)t, false, p->A)))
            st = lgpu_lora_get(ad[i], l, (lgpu_lora_target)t, true, p->B);
    }
    *n_out = k;
    return st;
}

int lgpu_merge_gguf(const char *base, const char *const *adapters, const float *scales, int n, const char *out,
                    const lgpu_merge_opts *opts) {
    lgpu_merge_opts o = opts ? *opts : (lgpu_merge_opts){.out_type = -1};
    if (!base || !out || n < 0 || (n && !adapters))
        return lgpu_set_error(LGPU_EINVAL, "lgpu_merge_gguf: NULL path or bad adapter list");
    if (o.out_type >= 0 && !lgpu_quant_matrix_type_ok(o.out_type))
        return lgpu_set_error(LGPU_EINVAL, "merge: output type %s is not one of f32, f16, bf16, q8_0, q4_0, q4_k, q6_k",
                              lgpu_type_name(o.out_type) ? lgpu_type_name(o.out_type) : "?");
    for (int i = 0; i < n; i++)
        if (scales && !(scales[i] == scales[i]))
            return lgpu_set_error(LGPU_EINVAL, "merge: adapter %d: scale is not a number", i);
    lgpu_model_file *mf = NULL;
    lgpu_model *shape = NULL;
    lgpu_lora **ad = calloc(n ? (size_t)n : 1, sizeof *ad);
    part *parts = calloc(n ? (size_t)n : 1, sizeof *parts);
    lgpu_gguf_writer *w = NULL;
    int *dst = NULL, n_parts = 0;
    int st = !ad || !parts ? lgpu_set_error(LGPU_ENOMEM, "merge") : lgpu_model_file_create(base, &mf);
    if (st) goto done;
    const lgpu_gguf *g = lgpu_model_file_gguf(mf);
    if (!g) {
        st = lgpu_set_error(LGPU_EUNSUPPORTED, "merge: %s is not a GGUF file: convert it first (lgpu convert)", base);
        goto done;
    }
    if ((st = shape_model(mf, &shape))) goto done;
    for (int i = 0; i < n && !st; i++) st = lgpu_lora_create(shape, &(lgpu_lora_params){.path = adapters[i]}, &ad[i]);
    if (st || (st = lgpu_gguf_writer_create(&w))) goto done;
    /* metadata: everything, with the file type of the new matrices */
    for (int64_t i = 0; i < lgpu_gguf_n_kv(g) && !st; i++) {
        const char *k = lgpu_gguf_key(g, i);
        bool retyped = o.out_type >= 0 && (!strcmp(k, "general.file_type") || !strcmp(k, "general.quantization_version"));
        if (strcmp(k, "general.alignment") && !retyped) st = lgpu_gguf_writer_copy_kv(w, g, i);
    }
    if (!st && o.out_type >= 0) {
        int ft = lgpu_llama_ftype(o.out_type);
        if (ft >= 0) st = lgpu_gguf_set_u32(w, "general.file_type", (uint32_t)ft);
        if (!st && lgpu_type_block_elems(o.out_type) > 1) st = lgpu_gguf_set_u32(w, "general.quantization_version", 2);
    }
    if (!st && lgpu_gguf_alignment(g) != LGPU_GGUF_DEFAULT_ALIGNMENT)
        st = lgpu_gguf_writer_set_alignment(w, (uint32_t)lgpu_gguf_alignment(g));
    const int64_t nt = lgpu_gguf_n_tensors(g);
    if (!st && !(dst = calloc(nt ? (size_t)nt : 1, sizeof *dst))) st = lgpu_set_error(LGPU_ENOMEM, "merge");
    lgpu_progress prog = {o.progress, o.ud, 0, 0};
    for (int64_t i = 0; i < nt && !st; i++) {
        const lgpu_gguf_tensor *t = lgpu_gguf_tensor_at(g, i);
        int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        bool matrix = t->n_dims >= 2 && rows > 1;
        dst[i] = t->type;
        if (matrix && o.out_type >= 0) {
            if (!lgpu_quant_matrix_type_ok(t->type)) {
                st = lgpu_set_error(LGPU_EUNSUPPORTED, "merge: %s: tensor '%s' has type %s, which cannot be "
                                    "requantized", base, t->name, lgpu_type_name(t->type));
                break;
            }
            dst[i] = lgpu_quantize_pick_type(o.out_type, t->ne[0]);
            if (dst[i] != o.out_type)
                lgpu_notef(o.note, o.ud, "%s: row length %lld is not a multiple of the %s block size, using %s",
                           t->name, (long long)t->ne[0], lgpu_type_name(o.out_type), lgpu_type_name(dst[i]));
        }
        st = lgpu_gguf_writer_add_tensor(w, t->name, dst[i], t->n_dims, t->ne, NULL);
        prog.total += lgpu_type_row_bytes(dst[i], t->ne[0]) * (uint64_t)rows;
    }
    if (st || (st = lgpu_gguf_writer_begin(w, out))) goto done;
    int n_merged = 0;
    for (int64_t i = 0; i < nt && !st; i++) {
        const lgpu_gguf_tensor *t = lgpu_gguf_tensor_at(g, i);
        uint32_t l;
        int tg;
        n_parts = 0;
        if (adapted_name(t->name, &l, &tg) && l < shape->hp.n_layers &&
            (st = gather_parts(ad, scales, n, l, tg, parts, &n_parts)))
            break;
        if (n_parts) {
            if (lgpu_type_block_elems(t->type) > 1 && dst[i] == t->type)
                lgpu_notef(o.note, o.ud, "%s: merged and re-quantized to %s", t->name, lgpu_type_name(dst[i]));
            st = write_merged(w, t, dst[i], parts, n_parts, o.nthreads, &prog);
            n_merged++;
        } else {
            st = lgpu_stream_tensor(w, t->name, t->data, t->type, dst[i], t->ne[0], t->ne[1] * t->ne[2] * t->ne[3],
                                    o.nthreads, &prog);
        }
        free_parts(parts, n_parts);
        n_parts = 0;
    }
    if (!st && n && !n_merged)
        st = lgpu_set_error(LGPU_EFORMAT, "merge: the adapters adapt no weight of %s", base);
    if (!st) st = lgpu_gguf_writer_finish(w);
done:
    free_parts(parts, n_parts);
    free(parts);
    free(dst);
    lgpu_gguf_writer_destroy(w);
    for (int i = 0; ad && i < n; i++) lgpu_lora_destroy(ad[i]);
    free(ad);
    lgpu_model_destroy(shape);
    lgpu_model_file_destroy(mf);
    return st;
}
