/* LLaMA metadata, vocabularies and tensor order for GGUF output. */
#include "model/gguf_llama.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/mapfile.h"
#include "lgpu/tokenizer.h"

int lgpu_llama_ftype(int type) {
    switch (type) {
    case LGPU_TYPE_F32: return 0;
    case LGPU_TYPE_F16: return 1;
    case LGPU_TYPE_Q4_0: return 2;
    case LGPU_TYPE_Q8_0: return 7;
    case LGPU_TYPE_Q4_K: return 14; /* LLAMA_FTYPE_MOSTLY_Q4_K_S */
    case LGPU_TYPE_Q6_K: return 18;
    case LGPU_TYPE_BF16: return 32;
    default: return -1;
    }
}

int lgpu_gguf_put_llama_hparams(lgpu_gguf_writer *w, const lgpu_file_hparams *hp, int ftype) {
    int st = lgpu_gguf_set_str(w, "general.architecture", "llama");
    if (!st) st = lgpu_gguf_set_str(w, "general.name", hp->name[0] ? hp->name : "llama");
    if (!st) st = lgpu_gguf_set_u32(w, "llama.context_length", hp->n_ctx_train);
    if (!st) st = lgpu_gguf_set_u32(w, "llama.embedding_length", hp->dim);
    if (!st) st = lgpu_gguf_set_u32(w, "llama.block_count", hp->n_layers);
    if (!st) st = lgpu_gguf_set_u32(w, "llama.feed_forward_length", hp->hidden_dim);
    if (!st) st = lgpu_gguf_set_u32(w, "llama.attention.head_count", hp->n_heads);
    if (!st) st = lgpu_gguf_set_u32(w, "llama.attention.head_count_kv", hp->n_kv_heads);
    if (!st) st = lgpu_gguf_set_u32(w, "llama.rope.dimension_count", hp->head_dim);
    if (!st) st = lgpu_gguf_set_f32(w, "llama.rope.freq_base", hp->rope_theta);
    if (!st) st = lgpu_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", hp->norm_eps);
    if (!st) st = lgpu_gguf_set_u32(w, "llama.vocab_size", hp->n_vocab);
    int ft = lgpu_llama_ftype(ftype);
    if (!st && ft >= 0) st = lgpu_gguf_set_u32(w, "general.file_type", (uint32_t)ft);
    if (!st && ftype != LGPU_TYPE_F32 && ftype != LGPU_TYPE_F16 && ftype != LGPU_TYPE_BF16)
        st = lgpu_gguf_set_u32(w, "general.quantization_version", 2);
    return st;
}

/* ---- vocabularies ------------------------------------------------------ */

/* The SentencePiece-style vocabulary keys: n pieces, <unk>/<s>/</s> at 0/1/2. */
static int put_spm_vocab(lgpu_gguf_writer *w, uint64_t n, char *const *strs, const size_t *lens, const float *scores,
                         const int32_t *types) {
    int st = lgpu_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    if (!st) st = lgpu_gguf_set_arr_str(w, "tokenizer.ggml.tokens", n, (const char *const *)strs, lens);
    if (!st) st = lgpu_gguf_set_arr(w, "tokenizer.ggml.scores", LGPU_GGUF_F32, n, scores);
    if (!st) st = lgpu_gguf_set_arr(w, "tokenizer.ggml.token_type", LGPU_GGUF_I32, n, types);
    if (!st) st = lgpu_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    if (!st) st = lgpu_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    if (!st) st = lgpu_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    if (!st) st = lgpu_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    return st;
}

int lgpu_gguf_put_vocab_llama2c(lgpu_gguf_writer *w, const char *path, uint32_t n_vocab, uint32_t *n_out) {
    /* read by the tokenizer loader itself, so the GGUF holds exactly what
     * loading the .bin gives (pieces with "▁", byte pieces, unk/bos/eos) */
    lgpu_tokenizer *t;
    int st = lgpu_tokenizer_from_llama2c(path, (int)n_vocab, &t);
    if (st) return st;
    const size_t n = (size_t)lgpu_tokenizer_n_vocab(t);
    char **strs = malloc(n * sizeof *strs);
    size_t *lens = malloc(n * sizeof *lens);
    float *scores = malloc(n * sizeof *scores);
    int32_t *types = malloc(n * sizeof *types);
    if (!strs || !lens || !scores || !types) st = lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", lgpu_path_base(path));
    for (size_t i = 0; !st && i < n; i++) {
        strs[i] = (char *)lgpu_tokenizer_token_text(t, (int32_t)i);
        lens[i] = strlen(strs[i]);
        scores[i] = lgpu_tokenizer_token_score(t, (int32_t)i);
        types[i] = (int32_t)lgpu_tokenizer_token_type(t, (int32_t)i);
    }
    if (!st) st = put_spm_vocab(w, n, strs, lens, scores, types);
    if (!st) st = lgpu_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    if (!st && n_out) *n_out = (uint32_t)n;
    free(strs);
    free(lens);
    free(scores);
    free(types);
    lgpu_tokenizer_destroy(t);
    return st;
}

int lgpu_gguf_put_vocab_gguf(lgpu_gguf_writer *w, const lgpu_gguf *src, uint32_t *n_out) {
    uint64_t n = 0;
    int et = -1;
    if (lgpu_gguf_get_arr(src, "tokenizer.ggml.tokens", &et, &n, NULL) || et != LGPU_GGUF_STRING || n == 0 ||
        n > UINT32_MAX)
        return lgpu_set_error(LGPU_EFORMAT, "%s: no tokenizer.ggml.tokens string array (not a vocabulary)",
                              lgpu_gguf_file_name(src));
    for (int64_t i = 0; i < lgpu_gguf_n_kv(src); i++)
        if (!strncmp(lgpu_gguf_key(src, i), "tokenizer.", 10)) {
            int st = lgpu_gguf_writer_copy_kv(w, src, i);
            if (st) return st;
        }
    if (n_out) *n_out = (uint32_t)n;
    return 0;
}

int lgpu_gguf_put_vocab_file(lgpu_gguf_writer *w, const char *path, uint32_t n_vocab, uint32_t *n_out) {
    if (!lgpu_gguf_file_is_gguf(path)) return lgpu_gguf_put_vocab_llama2c(w, path, n_vocab, n_out);
    lgpu_gguf *g;
    int st = lgpu_gguf_create(path, &g);
    if (st) return st;
    st = lgpu_gguf_put_vocab_gguf(w, g, n_out);
    lgpu_gguf_destroy(g);
    return st;
}

int lgpu_gguf_put_vocab_synth(lgpu_gguf_writer *w, uint32_t n) {
    if (n < 259) return lgpu_set_error(LGPU_EINVAL, "synthetic vocab needs at least 259 tokens (got %u)", n);
    char *text = malloc((size_t)n * 16);
    char **strs = malloc((size_t)n * sizeof *strs);
    size_t *lens = malloc((size_t)n * sizeof *lens);
    float *scores = malloc((size_t)n * sizeof *scores);
    int32_t *types = malloc((size_t)n * sizeof *types);
    int st = 0;
    if (!text || !strs || !lens || !scores || !types) st = lgpu_set_error(LGPU_ENOMEM, "synthetic vocab: out of memory");
    for (uint32_t i = 0; !st && i < n; i++) {
        char *p = strs[i] = text + (size_t)i * 16;
        if (i < 3) {
            lens[i] = (size_t)sprintf(p, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
            types[i] = i == 0 ? 2 : 3;
            scores[i] = 0;
        } else if (i < 259) {
            lens[i] = (size_t)sprintf(p, "<0x%02X>", i - 3);
            types[i] = 6;
            scores[i] = 0;
        } else {
            /* k-th piece: even k "▁" + letters, odd k letters only; letters
             * spell k/2 in base 26 so every piece is distinct. */
            uint32_t k = i - 259, v = k / 2;
            size_t o = 0;
            if (k % 2 == 0) memcpy(p, "\xe2\x96\x81", 3), o = 3;
            do {
                p[o++] = (char)('a' + v % 26);
                v /= 26;
            } while (v);
            lens[i] = o;
            types[i] = 1;
            scores[i] = -(float)k;
        }
    }
    if (!st) st = put_spm_vocab(w, n, strs, lens, scores, types);
    free(text);
    free(strs);
    free(lens);
    free(scores);
    free(types);
    return st;
}

/* ---- tensors ----------------------------------------------------------- */

int64_t lgpu_llama_tensor_list(const lgpu_file_hparams *hp, lgpu_llama_tensor_desc *out) {
    int64_t n = 0, dim = hp->dim, kv = (int64_t)hp->n_kv_heads * hp->head_dim, hid = hp->hidden_dim;
#define PUT(ne0_, rows_, vec_, ...)                                         \
    do {                                                                    \
        if (out) {                                                          \
            snprintf(out[n].name, sizeof out[n].name, __VA_ARGS__);         \
            out[n].ne0 = (ne0_), out[n].rows = (rows_), out[n].vector = (vec_); \
        }                                                                   \
        n++;                                                                \
    } while (0)
    PUT(dim, hp->n_vocab, false, "token_embd.weight");
    PUT(dim, 1, true, "output_norm.weight");
    if (!hp->tied_output) PUT(dim, hp->n_vocab, false, "output.weight");
    for (uint32_t l = 0; l < hp->n_layers; l++) {
        PUT(dim, 1, true, "blk.%u.attn_norm.weight", l);
        PUT(dim, dim, false, "blk.%u.attn_q.weight", l);
        PUT(dim, kv, false, "blk.%u.attn_k.weight", l);
        PUT(dim, kv, false, "blk.%u.attn_v.weight", l);
        PUT(dim, dim, false, "blk.%u.attn_output.weight", l);
        PUT(dim, 1, true, "blk.%u.ffn_norm.weight", l);
        PUT(dim, hid, false, "blk.%u.ffn_gate.weight", l);
        PUT(dim, hid, false, "blk.%u.ffn_up.weight", l);
        PUT(hid, dim, false, "blk.%u.ffn_down.weight", l);
    }
#undef PUT
    return n;
}

void lgpu_llama3_rope_factors(const lgpu_file_hparams *hp, float *factors) {
    /* convert_hf_to_gguf.py LlamaModel.generate_extra_tensors */
    const lgpu_rope_scaling *s = &hp->rope_scaling;
    double low_wavelen = s->original_ctx / s->low_freq_factor, high_wavelen = s->original_ctx / s->high_freq_factor;
    for (uint32_t i = 0; i < hp->head_dim / 2; i++) {
        double freq = 1.0 / pow(hp->rope_theta, (double)(2 * i) / hp->head_dim);
        double wavelen = 2 * M_PI / freq;
        if (wavelen < high_wavelen) factors[i] = 1.0f;
        else if (wavelen > low_wavelen) factors[i] = s->factor;
        else {
            double smooth = (s->original_ctx / wavelen - s->low_freq_factor) / (s->high_freq_factor - s->low_freq_factor);
            factors[i] = (float)(1.0 / ((1 - smooth) / s->factor + smooth));
        }
    }
}
