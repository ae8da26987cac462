/* Tokenizer from GGUF metadata (tokenizer.ggml.*), as llama.cpp's
 * llama_vocab::load: model "llama" = SPM with scores, "gpt2" = byte-level
 * BPE with merges; token_type, special ids, add_bos/add_eos, chat template. */
#include "tok/tok_internal.h"

#include "lgpu/gguf.h"

#include <stdlib.h>
#include <string.h>

static int32_t get_id(const lgpu_gguf *g, const char *key, int32_t def, int32_t n_vocab) {
    int64_t k = lgpu_gguf_find_key(g, key);
    int64_t v;
    if (k < 0 || lgpu_gguf_kv_int(g, k, &v)) return def;
    return v >= 0 && v < n_vocab ? (int32_t)v : -1;
}

/* Pre-tokenizer regex by tokenizer.ggml.pre (llama.cpp's names). */
static const char *pre_regex(const char *pre, bool *ignore_merges) {
    static const char gpt2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
    *ignore_merges = false;
    if (pre && (!strcmp(pre, "gpt-2") || !strcmp(pre, "gpt2"))) return gpt2;
    bool llama3 = pre && (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "llama-v3"));
    if (!llama3) lgpu_log(LGPU_LOG_WARN, "tokenizer: pre-tokenizer '%s' not known here, using LLaMA-3's", pre ? pre : "(none)");
    *ignore_merges = llama3;
    return lgpu_tok_llama3_regex;
}

int lgpu_tokenizer_from_gguf(const lgpu_gguf *g, lgpu_tokenizer **out) {
    if (!g || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_tokenizer_from_gguf: NULL argument");
    *out = NULL;
    const char *file = lgpu_gguf_file_name(g);
    const char *model = lgpu_gguf_get_str(g, "tokenizer.ggml.model", NULL);
    if (!model) return lgpu_set_error(LGPU_ENOTFOUND, "%s: no tokenizer.ggml.model", file);
    lgpu_tok_kind kind;
    if (!strcmp(model, "llama")) kind = LGPU_TOK_SPM;
    else if (!strcmp(model, "gpt2")) kind = LGPU_TOK_BPE;
    else return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: tokenizer.ggml.model '%s' (only llama, gpt2)", file, model);

    int64_t ktok = lgpu_gguf_find_key(g, "tokenizer.ggml.tokens");
    int et;
    uint64_t n;
    if (ktok < 0 || lgpu_gguf_kv_arr(g, ktok, &et, &n, NULL) || et != LGPU_GGUF_STRING)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tokenizer.ggml.tokens missing or not a string array", file);
    if (n == 0 || n > INT32_MAX) return lgpu_set_error(LGPU_EFORMAT, "%s: tokenizer.ggml.tokens has %llu entries", file,
                                                       (unsigned long long)n);
    int64_t kscore = lgpu_gguf_find_key(g, "tokenizer.ggml.scores");
    int64_t ktype = lgpu_gguf_find_key(g, "tokenizer.ggml.token_type");
    uint64_t ns = 0, nt = 0;
    if (kscore >= 0 && (lgpu_gguf_kv_arr(g, kscore, &et, &ns, NULL) || ns != n))
        return lgpu_set_error(LGPU_EFORMAT, "%s: tokenizer.ggml.scores has %llu entries for %llu tokens", file,
                              (unsigned long long)ns, (unsigned long long)n);
    if (ktype >= 0 && (lgpu_gguf_kv_arr(g, ktype, &et, &nt, NULL) || nt != n))
        return lgpu_set_error(LGPU_EFORMAT, "%s: tokenizer.ggml.token_type has %llu entries for %llu tokens", file,
                              (unsigned long long)nt, (unsigned long long)n);

    lgpu_tokenizer *t;
    int rc = lgpu_tok_alloc(&t, kind, (int32_t)n);
    if (rc) return rc;
    for (uint64_t i = 0; i < n && !rc; i++) {
        size_t len;
        const char *s = lgpu_gguf_arr_str(g, ktok, i, &len);
        float score = kscore >= 0 ? (float)lgpu_gguf_arr_float(g, kscore, i, 0.0) : 0.0f;
        int type = ktype >= 0 ? (int)lgpu_gguf_arr_int(g, ktype, i, LGPU_TOKEN_NORMAL) : LGPU_TOKEN_NORMAL;
        rc = kind == LGPU_TOK_BPE ? lgpu_tok_bpe_set_token(t, (int32_t)i, s, len, type)
                                  : lgpu_tok_set(t, (int32_t)i, s, len, NULL, 0, score, type);
    }
    if (!rc) rc = lgpu_tok_build_index(t);

    int32_t nv = (int32_t)n;
    if (kind == LGPU_TOK_SPM) {
        t->bos = get_id(g, "tokenizer.ggml.bos_token_id", nv > 1 ? 1 : -1, nv);
        t->eos = get_id(g, "tokenizer.ggml.eos_token_id", nv > 2 ? 2 : -1, nv);
        t->unk = get_id(g, "tokenizer.ggml.unknown_token_id", 0, nv);
        t->add_space_prefix = lgpu_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", true);
    } else {
        t->bos = get_id(g, "tokenizer.ggml.bos_token_id", -1, nv);
        t->eos = get_id(g, "tokenizer.ggml.eos_token_id", -1, nv);
        t->unk = get_id(g, "tokenizer.ggml.unknown_token_id", -1, nv);
        t->add_space_prefix = lgpu_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", false);
        if (!rc) rc = lgpu_tok_set_regex(t, pre_regex(lgpu_gguf_get_str(g, "tokenizer.ggml.pre", NULL), &t->ignore_merges));
        int64_t km = lgpu_gguf_find_key(g, "tokenizer.ggml.merges");
        uint64_t nm = 0;
        if (!rc && (km < 0 || lgpu_gguf_kv_arr(g, km, &et, &nm, NULL) || et != LGPU_GGUF_STRING))
            rc = lgpu_set_error(LGPU_EFORMAT, "%s: tokenizer.ggml.merges missing or not a string array", file);
        if (!rc) rc = lgpu_tok_merges_reserve(t, nm);
        size_t skipped = 0;
        for (uint64_t i = 0; i < nm && !rc; i++) {
            size_t len;
            bool sk;
            const char *s = lgpu_gguf_arr_str(g, km, i, &len);
            rc = lgpu_tok_bpe_add_merge_line(t, s, len, &sk);
            skipped += sk;
        }
        if (skipped) lgpu_log(LGPU_LOG_DEBUG, "%s: %zu merges name no token", file, skipped);
    }
    t->pad = get_id(g, "tokenizer.ggml.padding_token_id", -1, nv);
    t->eot = get_id(g, "tokenizer.ggml.eot_token_id", -1, nv);
    t->add_bos = lgpu_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", true);
    t->add_eos = lgpu_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", false);
    const char *tmpl = lgpu_gguf_get_str(g, "tokenizer.chat_template", NULL);
    if (!rc && tmpl && !(t->chat_template = strdup(tmpl))) rc = lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
    if (!rc) rc = lgpu_tok_finalize(t);
    if (rc) {
        lgpu_tokenizer_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}
