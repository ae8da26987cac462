/* lgpu_model_file from a Hugging Face LLaMA directory: config.json plus
 * model.safetensors or model.safetensors.index.json shards. HF names map to
 * GGUF names; q_proj/k_proj rows go from HF's rotate-half RoPE layout to
 * GGUF's interleaved pairs (llama.cpp convert_hf_to_gguf.py permute()); norm
 * vectors become F32. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/model_file_internal.h"
#include "format/safetensors.h"
#include "quant/quant.h"

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) snprintf(p, a + b + 2, "%s/%s", dir, name);
    return p;
}

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* config.json integer field: 0, or EFORMAT (missing & required / not a u32). */
static int cfg_u32(const lgpu_model_file *mf, json_t *cfg, const char *key, bool required, uint32_t *out) {
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v))
        return required ? lgpu_set_error(LGPU_EFORMAT, "%s/config.json: missing \"%s\"", mf->fname, key) : 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
        return lgpu_set_error(LGPU_EFORMAT, "%s/config.json: \"%s\" is not a non-negative 32-bit integer", mf->fname, key);
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

static int cfg_f32(const lgpu_model_file *mf, json_t *cfg, const char *key, float *out) {
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return lgpu_set_error(LGPU_EFORMAT, "%s/config.json: \"%s\" is not a number", mf->fname, key);
    *out = (float)json_number_value(v);
    return 0;
}

static int read_config(lgpu_model_file *mf, json_t *cfg) {
    lgpu_file_hparams *h = &mf->hp;
    const char *f = mf->fname;
    const char *mt = json_string_value(json_object_get(cfg, "model_type"));
    const char *arch0 = json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0));
    if (mt ? strcmp(mt, "llama") != 0 : (!arch0 || strcmp(arch0, "LlamaForCausalLM") != 0))
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s/config.json: architecture '%.64s' is not supported (llama only)", f,
                              mt ? mt : arch0 ? arch0 : "(none given)");
    snprintf(h->arch, sizeof h->arch, "llama");
    int st;
    uint32_t head_dim = 0;
    h->n_ctx_train = 2048;
    h->norm_eps = 1e-6f; /* transformers' LlamaConfig defaults */
    h->rope_theta = 10000.0f;
    if ((st = cfg_u32(mf, cfg, "hidden_size", true, &h->dim)) ||
        (st = cfg_u32(mf, cfg, "intermediate_size", true, &h->hidden_dim)) ||
        (st = cfg_u32(mf, cfg, "num_hidden_layers", true, &h->n_layers)) ||
        (st = cfg_u32(mf, cfg, "num_attention_heads", true, &h->n_heads)) ||
        (st = cfg_u32(mf, cfg, "vocab_size", true, &h->n_vocab)))
        return st;
    h->n_kv_heads = h->n_heads;
    if ((st = cfg_u32(mf, cfg, "num_key_value_heads", false, &h->n_kv_heads)) ||
        (st = cfg_u32(mf, cfg, "max_position_embeddings", false, &h->n_ctx_train)) ||
        (st = cfg_u32(mf, cfg, "head_dim", false, &head_dim)) || (st = cfg_f32(mf, cfg, "rms_norm_eps", &h->norm_eps)) ||
        (st = cfg_f32(mf, cfg, "rope_theta", &h->rope_theta)))
        return st;
    h->head_dim = h->n_heads ? h->dim / h->n_heads : 0;
    if (head_dim && head_dim != h->head_dim)
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s/config.json: head_dim %u != hidden_size / num_attention_heads (%u)", f,
                              head_dim, h->head_dim);
    h->tied_output = json_is_true(json_object_get(cfg, "tie_word_embeddings"));
    json_t *rs = json_object_get(cfg, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        const char *type = json_string_value(json_object_get(rs, "rope_type"));
        if (!type) type = json_string_value(json_object_get(rs, "type"));
        if (!type || strcmp(type, "llama3"))
            return lgpu_set_error(LGPU_EUNSUPPORTED, "%s/config.json: rope_scaling type '%.32s' is not supported (llama3 only)",
                                  f, type ? type : "(none)");
        lgpu_rope_scaling *s = &h->rope_scaling;
        /* llama.cpp's defaults for absent fields (convert_hf_to_gguf.py) */
        *s = (lgpu_rope_scaling){.factor = 8.0f, .low_freq_factor = 1.0f, .high_freq_factor = 4.0f, .original_ctx = 8192};
        if ((st = cfg_f32(mf, rs, "factor", &s->factor)) || (st = cfg_f32(mf, rs, "low_freq_factor", &s->low_freq_factor)) ||
            (st = cfg_f32(mf, rs, "high_freq_factor", &s->high_freq_factor)) ||
            (st = cfg_u32(mf, rs, "original_max_position_embeddings", false, &s->original_ctx)))
            return st;
        if (!(s->factor > 0))
            return lgpu_set_error(LGPU_EFORMAT, "%s/config.json: rope_scaling.factor %g is not positive", f, (double)s->factor);
    }
    return 0;
}

static int add_shard(lgpu_model_file *mf, const char *file) {
    if (!*file || strchr(file, '/') || !strcmp(file, "..") || !strcmp(file, "."))
        return lgpu_set_error(LGPU_EFORMAT, "%s/model.safetensors.index.json: bad shard file name '%.128s'", mf->fname, file);
    for (int i = 0; i < mf->n_shards; i++)
        if (!strcmp(lgpu_path_base(lgpu_safetensors_path(mf->shards[i])), file)) return 0;
    char *p = join(mf->hf_dir, file);
    if (!p) return lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", mf->fname);
    lgpu_safetensors **s = realloc(mf->shards, (size_t)(mf->n_shards + 1) * sizeof *s);
    int st = s ? 0 : lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", mf->fname);
    if (s) mf->shards = s;
    if (!st) st = lgpu_safetensors_create(p, &mf->shards[mf->n_shards]);
    if (!st) mf->n_shards++;
    free(p);
    return st;
}

static int open_shards(lgpu_model_file *mf) {
    char *single = join(mf->hf_dir, "model.safetensors"), *index = join(mf->hf_dir, "model.safetensors.index.json");
    int st = 0;
    if (!single || !index) st = lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", mf->fname);
    else if (exists(single)) st = add_shard(mf, "model.safetensors");
    else if (exists(index)) {
        json_error_t err;
        json_t *ix = json_load_file(index, JSON_REJECT_DUPLICATES, &err);
        json_t *map = json_object_get(ix, "weight_map");
        if (!ix) st = lgpu_set_error(LGPU_EFORMAT, "%s/model.safetensors.index.json: line %d: %s", mf->fname, err.line, err.text);
        else if (!json_is_object(map))
            st = lgpu_set_error(LGPU_EFORMAT, "%s/model.safetensors.index.json: no \"weight_map\" object", mf->fname);
        const char *k;
        json_t *v;
        if (!st) json_object_foreach(map, k, v) {
            if (!json_is_string(v)) {
                st = lgpu_set_error(LGPU_EFORMAT, "%s/model.safetensors.index.json: weight_map[\"%.128s\"] is not a file name",
                                    mf->fname, k);
                break;
            }
            if ((st = add_shard(mf, json_string_value(v)))) break;
        }
        json_decref(ix);
    } else
        st = lgpu_set_error(LGPU_EFORMAT, "%s: HF directory has neither model.safetensors nor model.safetensors.index.json",
                            mf->fname);
    free(single);
    free(index);
    return st;
}

static const lgpu_st_tensor *find(const lgpu_model_file *mf, const char *name) {
    for (int i = 0; i < mf->n_shards; i++) {
        const lgpu_st_tensor *t = lgpu_safetensors_find(mf->shards[i], name);
        if (t) return t;
    }
    return NULL;
}

/* permute_heads: 0 none, else the head count for the Q/K permutation. */
static int map_tensor(lgpu_model_file *mf, const char *hf, const char *gguf, bool vector, uint32_t permute_heads) {
    const lgpu_st_tensor *t = find(mf, hf);
    if (!t) return lgpu_set_error(LGPU_EFORMAT, "%s: missing tensor %s (for %s)", mf->fname, hf, gguf);
    if (t->type < 0)
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: tensor %s has dtype %s (F32, F16 or BF16 only)", mf->fname, hf, t->dtype);
    if (t->n_dims != (vector ? 1u : 2u) || t->shape[0] == 0 || (!vector && t->shape[1] == 0))
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor %s has %u dimensions (expected %d)", mf->fname, hf, t->n_dims,
                              vector ? 1 : 2);
    int64_t ne0 = vector ? t->shape[0] : t->shape[1], rows = vector ? 1 : t->shape[0];
    int type = t->type;
    const void *data = t->data;
    size_t nbytes = t->nbytes;
    if (vector && type != LGPU_TYPE_F32) {
        float *d = lgpu_mf_alloc(mf, (size_t)ne0 * 4);
        if (!d) return LGPU_ENOMEM;
        for (int64_t i = 0; i < ne0; i++) { /* F16/BF16 -> F32; the source may be unaligned */
            uint16_t h;
            memcpy(&h, (const uint8_t *)data + 2 * i, 2);
            d[i] = type == LGPU_TYPE_F16 ? lgpu_f16_to_f32(h) : lgpu_bf16_to_f32(h);
        }
        type = LGPU_TYPE_F32, data = d, nbytes = (size_t)ne0 * 4;
    } else if (permute_heads) {
        if (rows % permute_heads || (rows / permute_heads) % 2)
            return lgpu_set_error(LGPU_EFORMAT, "%s: tensor %s has %" PRId64 " rows, not a multiple of 2 x %u heads", mf->fname,
                                  hf, rows, permute_heads);
        void *d = lgpu_mf_alloc(mf, nbytes);
        if (!d) return LGPU_ENOMEM;
        lgpu_permute_qk_rows(data, d, rows, nbytes / (size_t)rows, permute_heads);
        data = d;
    } else if ((uintptr_t)data % 4 && !(data = lgpu_mf_own_copy(mf, data, nbytes)))
        return LGPU_ENOMEM;
    return lgpu_mf_add_tensor(mf, gguf, type, ne0, rows, data, nbytes);
}

int lgpu_mf_load_hf(lgpu_model_file *mf) {
    if (!(mf->hf_dir = strdup(mf->path))) return lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", mf->fname);
    char *cfg_path = join(mf->path, "config.json");
    if (!cfg_path) return lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", mf->fname);
    if (!exists(cfg_path)) {
        free(cfg_path);
        return lgpu_set_error(LGPU_EFORMAT, "%s: directory has no config.json (not an HF model directory)", mf->fname);
    }
    json_error_t err;
    json_t *cfg = json_load_file(cfg_path, JSON_REJECT_DUPLICATES, &err);
    free(cfg_path);
    int st;
    if (!cfg) return lgpu_set_error(LGPU_EFORMAT, "%s/config.json: line %d: %s", mf->fname, err.line, err.text);
    st = json_is_object(cfg) ? read_config(mf, cfg) : lgpu_set_error(LGPU_EFORMAT, "%s/config.json: not an object", mf->fname);
    json_decref(cfg);
    if (st || (st = open_shards(mf))) return st;
    const lgpu_file_hparams *h = &mf->hp;
    if ((st = lgpu_mf_check_hparams(mf))) return st;
    if ((st = map_tensor(mf, "model.embed_tokens.weight", "token_embd.weight", false, 0)) ||
        (st = map_tensor(mf, "model.norm.weight", "output_norm.weight", true, 0)))
        return st;
    if (!h->tied_output && find(mf, "lm_head.weight")) {
        if ((st = map_tensor(mf, "lm_head.weight", "output.weight", false, 0))) return st;
    } else
        mf->hp.tied_output = true; /* no lm_head: llama.cpp also falls back to the embedding */
    static const struct { const char *hf, *gguf; int kind; } L[] = {
        /* kind: 0 matrix, 1 norm, 2 permute with n_heads, 3 permute with n_kv_heads */
        {"input_layernorm", "attn_norm", 1},      {"self_attn.q_proj", "attn_q", 2}, {"self_attn.k_proj", "attn_k", 3},
        {"self_attn.v_proj", "attn_v", 0},        {"self_attn.o_proj", "attn_output", 0},
        {"post_attention_layernorm", "ffn_norm", 1}, {"mlp.gate_proj", "ffn_gate", 0}, {"mlp.up_proj", "ffn_up", 0},
        {"mlp.down_proj", "ffn_down", 0},
    };
    for (uint32_t l = 0; l < h->n_layers; l++)
        for (size_t k = 0; k < sizeof L / sizeof L[0]; k++) {
            char hf[160], gg[64];
            snprintf(hf, sizeof hf, "model.layers.%u.%s.weight", l, L[k].hf);
            snprintf(gg, sizeof gg, "blk.%u.%s.weight", l, L[k].gguf);
            uint32_t ph = L[k].kind == 2 ? h->n_heads : L[k].kind == 3 ? h->n_kv_heads : 0;
            if ((st = map_tensor(mf, hf, gg, L[k].kind == 1, ph))) return st;
        }
    return 0;
}
