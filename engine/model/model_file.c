/* lgpu_model_file: format detection, the shared tensor list, and the
 * validation every source goes through before the forward pass sees it. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/gguf_llama.h"
#include "core/grow.h"
#include "format/gguf_mem.h"
#include "lgpu/llama.h"
#include "model/lgpu_models.h"
#include "model/model_file_internal.h"
#include "format/safetensors.h"
#include "quant/quant.h"

/* Sanity limits: far above any real LLaMA, low enough that products of them
 * cannot overflow 64-bit sizes. */
#define MAX_DIM 1000000u
#define MAX_LAYERS 4096u
#define MAX_VOCAB 16000000u
#define MAX_CTX (1u << 28)

int lgpu_mf_add_tensor(lgpu_model_file *mf, const char *name, int type, int64_t ne0, int64_t n_rows, const void *data,
                       size_t nbytes) {
    int st = LGPU_GROW(mf->t, mf->cap_t, (size_t)mf->n_t + 1, 64, mf->fname);
    if (st) return st;
    char *n = strdup(name);
    if (!n) return lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", mf->fname);
    mf->t[mf->n_t++] = (lgpu_model_tensor){n, type, ne0, n_rows, data, nbytes};
    return 0;
}

void *lgpu_mf_alloc(lgpu_model_file *mf, size_t nbytes) {
    if (LGPU_GROW(mf->owned, mf->cap_owned, (size_t)mf->n_owned + 1, 32, mf->fname)) return NULL;
    void *b = aligned_alloc(64, (nbytes + 63) / 64 * 64 + 64);
    if (!b) {
        lgpu_set_error(LGPU_ENOMEM, "%s: out of memory allocating %zu bytes", mf->fname, nbytes);
        return NULL;
    }
    mf->owned[mf->n_owned++] = b;
    return b;
}

const void *lgpu_mf_own_copy(lgpu_model_file *mf, const void *src, size_t nbytes) {
    void *d = lgpu_mf_alloc(mf, nbytes);
    if (d && nbytes) memcpy(d, src, nbytes);
    return d;
}

void lgpu_permute_qk_rows(const void *src, void *dst, int64_t rows, size_t row_bytes, uint32_t n_head) {
    int64_t hd = rows / n_head, half = hd / 2;
    for (int64_t h = 0; h < (int64_t)n_head; h++)
        for (int64_t i = 0; i < half; i++)
            for (int64_t j = 0; j < 2; j++)
                memcpy((uint8_t *)dst + (size_t)(h * hd + 2 * i + j) * row_bytes,
                       (const uint8_t *)src + (size_t)(h * hd + j * half + i) * row_bytes, row_bytes);
}

/* ---- validation -------------------------------------------------------- */

int lgpu_mf_check_hparams(const lgpu_model_file *mf) {
    const lgpu_file_hparams *h = &mf->hp;
    const char *f = mf->fname;
    struct { const char *name; uint32_t v, max; } dims[] = {
        {"dim", h->dim, MAX_DIM},          {"hidden_dim", h->hidden_dim, MAX_DIM}, {"n_layers", h->n_layers, MAX_LAYERS},
        {"n_heads", h->n_heads, MAX_DIM},  {"n_kv_heads", h->n_kv_heads, MAX_DIM}, {"n_vocab", h->n_vocab, MAX_VOCAB},
        {"n_ctx_train", h->n_ctx_train, MAX_CTX},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v == 0 || dims[i].v > dims[i].max)
            return lgpu_set_error(LGPU_EFORMAT, "%s: %s = %u is out of range (1..%u)", f, dims[i].name, dims[i].v,
                                  dims[i].max);
    if (h->dim % h->n_heads)
        return lgpu_set_error(LGPU_EFORMAT, "%s: n_heads = %u does not divide dim = %u", f, h->n_heads, h->dim);
    if (h->n_kv_heads > h->n_heads || h->n_heads % h->n_kv_heads)
        return lgpu_set_error(LGPU_EFORMAT, "%s: n_kv_heads = %u does not divide n_heads = %u", f, h->n_kv_heads,
                              h->n_heads);
    if (h->head_dim != h->dim / h->n_heads || h->head_dim % 2)
        return lgpu_set_error(LGPU_EFORMAT, "%s: head_dim = %u (dim %u / n_heads %u) must be even", f, h->head_dim,
                              h->dim, h->n_heads);
    if (!(h->norm_eps > 0 && h->norm_eps < 1))
        return lgpu_set_error(LGPU_EFORMAT, "%s: RMSNorm epsilon %g is out of range (0, 1)", f, (double)h->norm_eps);
    if (!(h->rope_theta > 0 && isfinite(h->rope_theta)))
        return lgpu_set_error(LGPU_EFORMAT, "%s: RoPE theta %g is not positive", f, (double)h->rope_theta);
    const lgpu_rope_scaling *rs = &h->rope_scaling;
    if (rs->factor > 0 && !(isfinite(rs->factor) && rs->low_freq_factor > 0 && rs->high_freq_factor > rs->low_freq_factor &&
                            rs->original_ctx > 0))
        return lgpu_set_error(LGPU_EFORMAT, "%s: invalid llama3 RoPE scaling (factor %g, low %g, high %g, original ctx %u)",
                              f, (double)rs->factor, (double)rs->low_freq_factor, (double)rs->high_freq_factor,
                              rs->original_ctx);
    return 0;
}

static int check_tensor(const lgpu_model_file *mf, const char *name, int64_t ne0, int64_t rows, bool vector) {
    lgpu_model_tensor t;
    int64_t i = lgpu_name_index_get(&mf->ix, name, strlen(name));
    if (i < 0) return lgpu_set_error(LGPU_EFORMAT, "%s: missing tensor '%s'", mf->fname, name);
    t = mf->t[i];
    if (t.ne0 != ne0 || t.n_rows != rows)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s' has shape [%" PRId64 " x %" PRId64 " rows] (expected [%" PRId64 " x %" PRId64 " rows])",
                              mf->fname, name, t.ne0, t.n_rows, ne0, rows);
    if (vector ? t.type != LGPU_TYPE_F32 : !lgpu_quant_matrix_type_ok(t.type))
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: tensor '%s' has type %s, not supported for a %s", mf->fname, name,
                              lgpu_type_name(t.type) ? lgpu_type_name(t.type) : "?", vector ? "norm (F32 only)" : "weight matrix");
    size_t row = lgpu_type_row_bytes(t.type, t.ne0);
    if (!row || t.nbytes != row * (size_t)t.n_rows || !t.data || (uintptr_t)t.data % 4)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s' has inconsistent size or alignment (%zu bytes)", mf->fname,
                              name, t.nbytes);
    return 0;
}

static int check_tensors(lgpu_model_file *mf) {
    const lgpu_file_hparams *h = &mf->hp;
    int st = lgpu_name_index_init(&mf->ix, mf->n_t);
    for (int64_t i = 0; !st && i < mf->n_t; i++)
        if (lgpu_name_index_put(&mf->ix, mf->t[i].name, strlen(mf->t[i].name), i) >= 0)
            st = lgpu_set_error(LGPU_EFORMAT, "%s: duplicate tensor '%s'", mf->fname, mf->t[i].name);
    if (st) return st;
    bool has_out = lgpu_name_index_get(&mf->ix, "output.weight", 13) >= 0;
    if (has_out == h->tied_output)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tied_output is %d but output.weight is %s", mf->fname, h->tied_output,
                              has_out ? "present" : "absent");
    /* the tensors a llama model needs, in the order our GGUF writer uses */
    int64_t n = lgpu_llama_tensor_list(h, NULL);
    lgpu_llama_tensor_desc *list = malloc((size_t)n * sizeof *list);
    if (!list) return lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", mf->fname);
    lgpu_llama_tensor_list(h, list);
    for (int64_t i = 0; !st && i < n; i++) st = check_tensor(mf, list[i].name, list[i].ne0, list[i].rows, list[i].vector);
    free(list);
    if (st) return st;
    if (lgpu_name_index_get(&mf->ix, "rope_freqs.weight", 17) >= 0 &&
        (st = check_tensor(mf, "rope_freqs.weight", h->head_dim / 2, 1, true)))
        return st;
    return 0;
}

/* ---- open / close ------------------------------------------------------ */

/* "embedded:NAME": the model built into liblgpu under NAME (models/, the
 * generated model/lgpu_models.h), *blob NULL for any other path. */
static int find_embedded(const char *path, const lgpu_model_blob **blob) {
    const size_t np = strlen(LGPU_EMBEDDED_PREFIX);
    *blob = NULL;
    if (strncmp(path, LGPU_EMBEDDED_PREFIX, np)) return 0;
    if ((*blob = lgpu_model_blob_find(path + np))) return 0;
    char names[256] = "";
    for (size_t i = 0, n = 0; i < lgpu_model_blob_count && n < sizeof names; i++)
        n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", lgpu_model_blobs[i].name);
    return lgpu_set_error(LGPU_ENOTFOUND, "%s: no such embedded model (built in: %s)", path,
                          names[0] ? names : "none");
}

int lgpu_model_file_create(const char *path, lgpu_model_file **out) {
    if (!out) return lgpu_set_error(LGPU_EINVAL, "lgpu_model_file_create: out is NULL");
    *out = NULL;
    if (!path || !*path) return lgpu_set_error(LGPU_EINVAL, "lgpu_model_file_create: empty path");
    const lgpu_model_blob *blob;
    int st = find_embedded(path, &blob);
    if (st) return st;
    struct stat sb;
    if (!blob && stat(path, &sb) != 0) return lgpu_set_error(LGPU_ENOTFOUND, "%s: no such file or directory", path);
    lgpu_model_file *mf = calloc(1, sizeof *mf);
    if (!mf || !(mf->path = strdup(path))) {
        free(mf);
        return lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", path);
    }
    mf->fname = lgpu_path_base(mf->path);
    mf->hp.rope_theta = 10000.0f;
    if (blob) { /* GGUF in memory: lgpu_mf_load_gguf reads the handle made here */
        mf->src = LGPU_MODEL_SRC_GGUF;
        st = lgpu_gguf_create_from_memory(path, blob->data, blob->size, &mf->gguf);
        if (!st) st = lgpu_mf_load_gguf(mf);
    } else if (S_ISDIR(sb.st_mode)) {
        mf->src = LGPU_MODEL_SRC_HF;
        st = lgpu_mf_load_hf(mf);
    } else {
        mf->src = lgpu_gguf_file_is_gguf(path) ? LGPU_MODEL_SRC_GGUF : LGPU_MODEL_SRC_LLAMA2C;
        st = mf->src == LGPU_MODEL_SRC_GGUF ? lgpu_mf_load_gguf(mf) : lgpu_mf_load_llama2c(mf);
    }
    if (!st) {
        lgpu_file_hparams *h = &mf->hp;
        if (!h->name[0]) snprintf(h->name, sizeof h->name, "%s", mf->fname);
        if (!h->arch[0]) snprintf(h->arch, sizeof h->arch, "llama");
        st = lgpu_mf_check_hparams(mf);
    }
    if (!st) st = check_tensors(mf);
    if (st) {
        lgpu_model_file_destroy(mf);
        return st;
    }
    *out = mf;
    return 0;
}

void lgpu_model_file_destroy(lgpu_model_file *mf) {
    if (!mf) return;
    for (int64_t i = 0; i < mf->n_t; i++) free((char *)mf->t[i].name);
    free(mf->t);
    lgpu_name_index_destroy(&mf->ix);
    for (int64_t i = 0; i < mf->n_owned; i++) free(mf->owned[i]);
    free(mf->owned);
    for (int i = 0; i < mf->n_shards; i++) lgpu_safetensors_destroy(mf->shards[i]);
    free(mf->shards);
    lgpu_gguf_destroy(mf->gguf);
    lgpu_mapfile_destroy(&mf->map);
    free(mf->hf_dir);
    free(mf->path);
    free(mf);
}

lgpu_model_source lgpu_model_file_source(const lgpu_model_file *mf) { return mf->src; }
const char *lgpu_model_file_path(const lgpu_model_file *mf) { return mf->path; }
const lgpu_file_hparams *lgpu_model_file_hparams(const lgpu_model_file *mf) { return &mf->hp; }
int64_t lgpu_model_file_n_tensors(const lgpu_model_file *mf) { return mf->n_t; }
const lgpu_gguf *lgpu_model_file_gguf(const lgpu_model_file *mf) { return mf->gguf; }
const char *lgpu_model_file_hf_dir(const lgpu_model_file *mf) { return mf->hf_dir; }

const lgpu_model_tensor *lgpu_model_file_tensor_at(const lgpu_model_file *mf, int64_t i) {
    return mf && i >= 0 && i < mf->n_t ? &mf->t[i] : NULL;
}

int lgpu_model_file_tensor(const lgpu_model_file *mf, const char *name, lgpu_model_tensor *out) {
    int64_t i = name ? lgpu_name_index_get(&mf->ix, name, strlen(name)) : -1;
    if (i < 0) return lgpu_set_error(LGPU_ENOTFOUND, "%s: no tensor '%s'", mf->fname, name ? name : "(null)");
    if (out) *out = mf->t[i];
    return 0;
}

int lgpu_model_file_ftype(const lgpu_model_file *mf) {
    int64_t count[LGPU_TYPE_COUNT_] = {0};
    for (int64_t i = 0; i < mf->n_t; i++)
        if (mf->t[i].n_rows > 1 && mf->t[i].type >= 0 && mf->t[i].type < LGPU_TYPE_COUNT_) count[mf->t[i].type]++;
    int best = LGPU_TYPE_F32;
    for (int t = 0; t < LGPU_TYPE_COUNT_; t++)
        if (count[t] > count[best]) best = t;
    return best;
}
