/* lgpu_model_file from a GGUF file: hparams from the <arch>.* keys, tensors
 * straight from the mapping. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "model/model_file_internal.h"

/* Integer key <arch>.<suffix>: 0, EFORMAT if missing (and required) or not
 * an integer that fits u32. */
static int key_u32(lgpu_model_file *mf, const char *arch, const char *suffix, bool required, uint32_t *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t i = lgpu_gguf_find_key(mf->gguf, key);
    if (i < 0) return required ? lgpu_set_error(LGPU_EFORMAT, "%s: missing metadata key %s", mf->fname, key) : 0;
    uint64_t v;
    if (lgpu_gguf_kv_uint(mf->gguf, i, &v) || v > UINT32_MAX)
        return lgpu_set_error(LGPU_EFORMAT, "%s: metadata key %s is not an unsigned 32-bit integer (type %s)", mf->fname,
                              key, lgpu_gguf_vtype_name(lgpu_gguf_kv_type(mf->gguf, i)));
    *out = (uint32_t)v;
    return 0;
}

static int key_f32(lgpu_model_file *mf, const char *arch, const char *suffix, bool required, float *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t i = lgpu_gguf_find_key(mf->gguf, key);
    if (i < 0) return required ? lgpu_set_error(LGPU_EFORMAT, "%s: missing metadata key %s", mf->fname, key) : 0;
    double v;
    if (lgpu_gguf_kv_float(mf->gguf, i, &v))
        return lgpu_set_error(LGPU_EFORMAT, "%s: metadata key %s is not a number (type %s)", mf->fname, key,
                              lgpu_gguf_vtype_name(lgpu_gguf_kv_type(mf->gguf, i)));
    *out = (float)v;
    return 0;
}

int lgpu_mf_load_gguf(lgpu_model_file *mf) {
    int st = mf->gguf ? 0 : lgpu_gguf_create(mf->path, &mf->gguf); /* opened already: an embedded model */
    if (st) return st;
    const lgpu_gguf *g = mf->gguf;
    int64_t ai = lgpu_gguf_find_key(g, "general.architecture");
    const char *arch = lgpu_gguf_kv_str(g, ai, NULL);
    if (!arch) return lgpu_set_error(LGPU_EFORMAT, "%s: missing string key general.architecture", mf->fname);
    if (strcmp(arch, "llama"))
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: architecture '%.64s' is not supported (llama only)", mf->fname, arch);
    lgpu_file_hparams *h = &mf->hp;
    snprintf(h->arch, sizeof h->arch, "%s", arch);
    snprintf(h->name, sizeof h->name, "%s", lgpu_gguf_get_str(g, "general.name", mf->fname));
    uint32_t rope_dims = 0;
    if ((st = key_u32(mf, arch, "context_length", true, &h->n_ctx_train)) ||
        (st = key_u32(mf, arch, "embedding_length", true, &h->dim)) ||
        (st = key_u32(mf, arch, "block_count", true, &h->n_layers)) ||
        (st = key_u32(mf, arch, "feed_forward_length", true, &h->hidden_dim)) ||
        (st = key_u32(mf, arch, "attention.head_count", true, &h->n_heads)))
        return st;
    h->n_kv_heads = h->n_heads;
    if ((st = key_u32(mf, arch, "attention.head_count_kv", false, &h->n_kv_heads)) ||
        (st = key_u32(mf, arch, "rope.dimension_count", false, &rope_dims)) ||
        (st = key_f32(mf, arch, "rope.freq_base", false, &h->rope_theta)) ||
        (st = key_f32(mf, arch, "attention.layer_norm_rms_epsilon", true, &h->norm_eps)))
        return st;
    h->head_dim = h->n_heads ? h->dim / h->n_heads : 0;
    if (rope_dims && rope_dims != h->head_dim)
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: partial rotary embedding (rope.dimension_count %u, head_dim %u)",
                              mf->fname, rope_dims, h->head_dim);
    char key[160];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const char *scaling = lgpu_gguf_get_str(g, key, "none");
    if (strcmp(scaling, "none"))
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: RoPE scaling type '%.32s' is not supported", mf->fname, scaling);

    /* Vocabulary size: explicit key, else the tokenizer, else the embedding. */
    const lgpu_gguf_tensor *emb = lgpu_gguf_find_tensor(g, "token_embd.weight");
    uint64_t n_tok = 0;
    lgpu_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &n_tok, NULL);
    h->n_vocab = emb && emb->n_dims >= 2 && emb->ne[1] <= UINT32_MAX ? (uint32_t)emb->ne[1] : (uint32_t)n_tok;
    if ((st = key_u32(mf, arch, "vocab_size", false, &h->n_vocab)) || (st = lgpu_mf_check_hparams(mf))) return st;
    lgpu_clear_error();

    for (int64_t i = 0; i < lgpu_gguf_n_tensors(g); i++) {
        const lgpu_gguf_tensor *t = lgpu_gguf_tensor_at(g, i);
        const void *data = t->data;
        if ((uintptr_t)data % 4 && !(data = lgpu_mf_own_copy(mf, data, t->nbytes))) return LGPU_ENOMEM;
        if ((st = lgpu_mf_add_tensor(mf, t->name, t->type, t->ne[0], t->ne[1] * t->ne[2] * t->ne[3], data, t->nbytes)))
            return st;
    }
    h->tied_output = !lgpu_gguf_find_tensor(g, "output.weight");
    return 0;
}
