/* Tokenizer from Hugging Face tokenizer.json (+ tokenizer_config.json):
 * model BPE with a ByteLevel pre-tokenizer/decoder (GPT-2, LLaMA-3: the
 * Split regex of the pre-tokenizer, merges by rank), or SentencePiece-style
 * BPE with byte_fallback (LLaMA-2's tokenizer.json: loaded as SPM with
 * scores from the merge ranks). Merges are "A B" strings or ["A","B"]
 * pairs; added_tokens become control (special) or user-defined tokens.
 * tokenizer_config.json gives bos/eos/unk/pad by text, add_bos_token,
 * add_eos_token and chat_template. */
#include "tok/tok_internal.h"
#include "tok/hf_json.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char gpt2_regex[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

static bool is_type(json_t *o, const char *type) {
    json_t *t = json_object_get(o, "type");
    return json_is_string(t) && !strcmp(json_string_value(t), type);
}

static int32_t id_of(const lgpu_tokenizer *t, json_t *v) {
    const char *s = lgpu_hf_token_string(v);
    return s ? lgpu_tokenizer_find(t, s) : -1;
}

static int fail_json(const char *path, const json_error_t *e) {
    return lgpu_set_error(LGPU_EFORMAT, "%s:%d:%d: %s", path, e->line, e->column, e->text);
}

static int load_config(lgpu_tokenizer *t, const char *path, bool *has_add_bos) {
    json_error_t e;
    json_t *c = json_load_file(path, JSON_DECODE_INT_AS_REAL, &e); /* model_max_length can be 1e30 */
    if (!c) return fail_json(path, &e);
    int rc = 0;
    if (!json_is_object(c)) {
        rc = lgpu_set_error(LGPU_EFORMAT, "%s: not a JSON object", path);
        goto done;
    }
    int32_t id;
    if ((id = id_of(t, json_object_get(c, "bos_token"))) >= 0) t->bos = id;
    if ((id = id_of(t, json_object_get(c, "eos_token"))) >= 0) t->eos = id;
    if ((id = id_of(t, json_object_get(c, "unk_token"))) >= 0) t->unk = id;
    if ((id = id_of(t, json_object_get(c, "pad_token"))) >= 0) t->pad = id;
    json_t *v = json_object_get(c, "add_bos_token");
    if (json_is_boolean(v)) t->add_bos = json_is_true(v), *has_add_bos = true;
    v = json_object_get(c, "add_eos_token");
    if (json_is_boolean(v)) t->add_eos = json_is_true(v);
    const char *tmpl = lgpu_hf_chat_template(c);
    if (tmpl && !(t->chat_template = strdup(tmpl))) rc = lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
done:
    json_decref(c);
    return rc;
}

/* Does the TemplateProcessing post-processor put BOS before a single sequence? */
static int template_adds_bos(json_t *root, const char *bos_text) {
    json_t *tp = lgpu_hf_find_component(json_object_get(root, "post_processor"), "TemplateProcessing");
    if (!tp || !bos_text) return -1;
    json_t *single = json_object_get(tp, "single"), *it;
    size_t i;
    json_array_foreach(single, i, it) {
        json_t *sp = json_object_get(it, "SpecialToken");
        const char *id = json_string_value(json_object_get(sp, "id"));
        if (id && !strcmp(id, bos_text)) return 1;
    }
    return 0;
}

/* A merge "A B" or ["A", "B"]; false if v is neither. */
static bool merge_parts(json_t *v, const char **a, size_t *an, const char **b, size_t *bn) {
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL; /* first space after the first char */
        if (!sp) return false;
        *a = s, *an = (size_t)(sp - s), *b = sp + 1, *bn = n - *an - 1;
        return true;
    }
    json_t *x = json_array_get(v, 0), *y = json_array_get(v, 1);
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_string(x) || !json_is_string(y)) return false;
    *a = json_string_value(x), *an = json_string_length(x), *b = json_string_value(y), *bn = json_string_length(y);
    return true;
}

/* SPM scores from merge ranks: HF's converter lists every pair whose
 * concatenation is a token, ordered by the token's sentencepiece score, so
 * "first merge that makes a token" preserves the score order; tokens no
 * merge makes (characters, bytes) rank after all merges. */
static int spm_scores(lgpu_tokenizer *t, json_t *merges, const char *path) {
    size_t nm = json_array_size(merges), i;
    float *score = malloc((size_t)t->n_vocab * sizeof *score);
    char *buf = NULL;
    size_t cap = 0;
    if (!score) return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
    for (int32_t id = 0; id < t->n_vocab; id++) score[id] = 1.0f; /* unset */
    json_t *v;
    int rc = 0;
    json_array_foreach(merges, i, v) {
        const char *a, *b;
        size_t an, bn;
        if (!merge_parts(v, &a, &an, &b, &bn)) {
            rc = lgpu_set_error(LGPU_EFORMAT, "%s: model.merges[%zu] is neither \"A B\" nor [\"A\", \"B\"]", path, i);
            break;
        }
        if (an + bn > cap) {
            char *nb = realloc(buf, cap = an + bn + 64);
            if (!nb) {
                rc = lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
                break;
            }
            buf = nb;
        }
        memcpy(buf, a, an);
        memcpy(buf + an, b, bn);
        int32_t id = lgpu_tok_lookup(t, buf, an + bn);
        if (id >= 0 && score[id] > 0) score[id] = -(float)i;
    }
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->tok[id].type != LGPU_TOKEN_NORMAL) score[id] = 0.0f;
        else if (score[id] > 0) score[id] = -(float)(nm + (size_t)id);
        t->tok[id].score = score[id];
    }
    free(buf);
    free(score);
    return rc;
}

static int load_json(lgpu_tokenizer **out, json_t *root, const char *path) {
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) return lgpu_set_error(LGPU_EFORMAT, "%s: no \"model\" object", path);
    if (!is_type(model, "BPE"))
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: model type %s (only BPE)", path,
                              json_string_value(json_object_get(model, "type")) ?: "(none)");
    json_t *pre = json_object_get(root, "pre_tokenizer");
    bool prefix;
    lgpu_hf_style style = lgpu_hf_bpe_style(root, &prefix);
    bool bytelevel = style == LGPU_HF_BYTELEVEL, spm = style == LGPU_HF_SPM;
    if (style == LGPU_HF_UNSUPPORTED)
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: BPE neither byte-level nor SentencePiece-style", path);
    json_t *vocab = json_object_get(model, "vocab"), *added = json_object_get(root, "added_tokens"), *v;
    if (!json_is_object(vocab)) return lgpu_set_error(LGPU_EFORMAT, "%s: model.vocab is not an object", path);
    json_int_t max_id = -1;
    const char *key;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= INT32_MAX)
            return lgpu_set_error(LGPU_EFORMAT, "%s: model.vocab[\"%s\"] is not a token id", path, key);
        if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
    }
    size_t i;
    json_array_foreach(added, i, v) {
        json_t *id = json_object_get(v, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= INT32_MAX ||
            !json_is_string(json_object_get(v, "content")))
            return lgpu_set_error(LGPU_EFORMAT, "%s: added_tokens[%zu] has no id/content", path, i);
        if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
    }
    lgpu_tokenizer *t;
    int rc = lgpu_tok_alloc(&t, spm ? LGPU_TOK_SPM : LGPU_TOK_BPE, (int32_t)(max_id + 1));
    if (rc) return rc;
    t->add_space_prefix = spm && prefix;
    json_object_foreach(vocab, key, v) {
        if (rc) break;
        int32_t id = (int32_t)json_integer_value(v);
        size_t n = strlen(key);
        rc = spm ? lgpu_tok_set(t, id, key, n, NULL, 0, 0.0f, lgpu_tok_is_byte_piece(key, n) ? LGPU_TOKEN_BYTE : LGPU_TOKEN_NORMAL)
                 : lgpu_tok_bpe_set_token(t, id, key, n, LGPU_TOKEN_NORMAL);
    }
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    json_array_foreach(added, i, v) {
        if (rc) break;
        json_t *c = json_object_get(v, "content");
        int32_t id = (int32_t)json_integer_value(json_object_get(v, "id"));
        int type = !json_is_true(json_object_get(v, "special")) ? LGPU_TOKEN_USER_DEFINED
                   : unk && !strcmp(unk, json_string_value(c)) ? LGPU_TOKEN_UNKNOWN
                                                               : LGPU_TOKEN_CONTROL;
        rc = lgpu_tok_set(t, id, json_string_value(c), json_string_length(c), NULL, 0, 0.0f, type);
        t->tok[id].lstrip = json_is_true(json_object_get(v, "lstrip"));
        t->tok[id].rstrip = json_is_true(json_object_get(v, "rstrip"));
        if (type == LGPU_TOKEN_UNKNOWN) t->unk = id;
    }
    if (!rc) rc = lgpu_tok_build_index(t);
    json_t *merges = json_object_get(model, "merges");
    if (!rc && !json_is_array(merges)) rc = lgpu_set_error(LGPU_EFORMAT, "%s: model.merges is not an array", path);
    if (!rc && spm) rc = spm_scores(t, merges, path);
    if (!rc && bytelevel) {
        /* pre-tokenizer regex: the Split pattern, else GPT-2's when ByteLevel splits itself */
        json_t *split = lgpu_hf_find_component(pre, "Split");
        const char *re = split ? json_string_value(json_object_get(json_object_get(split, "pattern"), "Regex")) : NULL;
        json_t *bl = lgpu_hf_find_component(pre, "ByteLevel");
        if (!re && bl && !json_is_false(json_object_get(bl, "use_regex"))) re = gpt2_regex;
        if (re) rc = lgpu_tok_set_regex(t, re);
        t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
        if (!rc) rc = lgpu_tok_merges_reserve(t, json_array_size(merges));
        size_t skipped = 0;
        json_array_foreach(merges, i, v) {
            if (rc) break;
            const char *a, *b;
            size_t an, bn;
            bool sk = false;
            if (merge_parts(v, &a, &an, &b, &bn)) rc = lgpu_tok_bpe_add_merge(t, a, an, b, bn, &sk);
            else rc = lgpu_set_error(LGPU_EFORMAT, "%s: model.merges[%zu] is neither \"A B\" nor [\"A\", \"B\"]", path, i);
            skipped += sk;
        }
        if (skipped) lgpu_log(LGPU_LOG_DEBUG, "%s: %zu merges name no token", path, skipped);
    }
    if (rc) {
        lgpu_tokenizer_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}

int lgpu_tokenizer_from_hf(const char *tokenizer_json, const char *config_json, lgpu_tokenizer **out) {
    if (!tokenizer_json || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_tokenizer_from_hf: NULL argument");
    *out = NULL;
    json_error_t e;
    json_t *root = json_load_file(tokenizer_json, 0, &e);
    if (!root) return fail_json(tokenizer_json, &e);
    lgpu_tokenizer *t = NULL;
    int rc = json_is_object(root) ? load_json(&t, root, tokenizer_json)
                                  : lgpu_set_error(LGPU_EFORMAT, "%s: not a JSON object", tokenizer_json);
    char *cfg = NULL;
    if (!rc && !config_json) { /* tokenizer_config.json beside it, if any */
        const char *slash = strrchr(tokenizer_json, '/');
        size_t dir = slash ? (size_t)(slash - tokenizer_json + 1) : 0;
        if ((cfg = malloc(dir + sizeof "tokenizer_config.json"))) {
            memcpy(cfg, tokenizer_json, dir);
            strcpy(cfg + dir, "tokenizer_config.json");
            struct stat sb;
            if (stat(cfg, &sb) == 0) config_json = cfg;
        } else {
            rc = lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
        }
    }
    bool has_add_bos = false;
    if (!rc && config_json) rc = load_config(t, config_json, &has_add_bos);
    if (!rc) { /* no config or it names none: the usual texts */
        static const char *bos[] = {"<|begin_of_text|>", "<s>", "<|startoftext|>"};
        static const char *eos[] = {"<|end_of_text|>", "</s>", "<|endoftext|>"};
        for (size_t k = 0; k < 3 && t->bos < 0; k++) t->bos = lgpu_tokenizer_find(t, bos[k]);
        for (size_t k = 0; k < 3 && t->eos < 0; k++) t->eos = lgpu_tokenizer_find(t, eos[k]);
    }
    if (!rc && !has_add_bos) {
        /* no add_bos_token: the post-processor decides; without a template
         * the LLaMA convention (and llama.cpp's llama-bpe) is to add BOS */
        int tb = template_adds_bos(root, t->bos >= 0 ? lgpu_tokenizer_token_text(t, t->bos) : NULL);
        t->add_bos = tb != 0;
    }
    free(cfg);
    json_decref(root);
    if (!rc) rc = lgpu_tok_finalize(t);
    if (rc) {
        lgpu_tokenizer_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}
