/* HF tokenizer.json (+ tokenizer_config.json) -> tokenizer.ggml.* keys, as
 * llama.cpp's convert_hf_to_gguf.py lays them out. The tokenizer kind, the
 * SPM space prefix, token types and the chat template are read as the
 * tokenizer loader reads them (tok/hf_json.h), so the GGUF tokenizes as the
 * directory does. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/gguf_llama.h"
#include "format/mapfile.h"
#include "format/name_index.h"
#include "tok/hf_json.h"

typedef struct {
    const char *dir;
    uint32_t n;         /* tokens */
    const char **text;  /* by id (NULL: hole, filled with [PADi]) */
    int32_t *type;
    float *score;
    bool *special;
    lgpu_name_index ix; /* text -> id */
    char (*pad)[24];
} vocab;

static json_t *load_json(const char *dir, const char *name, bool required, size_t flags, int *st) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t err;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (required) *st = lgpu_set_error(LGPU_ENOTFOUND, "%s: no %s", lgpu_path_base(dir), name);
        return NULL;
    }
    json_t *j = json_loadf(f, JSON_REJECT_DUPLICATES | flags, &err);
    fclose(f);
    if (!j) *st = lgpu_set_error(LGPU_EFORMAT, "%s/%s: line %d: %s", lgpu_path_base(dir), name, err.line, err.text);
    return j;
}

static int set_id(vocab *v, json_t *id, const char *text, bool special, const char *file) {
    if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= (json_int_t)v->n)
        return lgpu_set_error(LGPU_EFORMAT, "%s/%s: token '%.64s' has a bad id", lgpu_path_base(v->dir), file, text);
    uint32_t i = (uint32_t)json_integer_value(id);
    v->text[i] = text;
    if (special) v->special[i] = true;
    return 0;
}

static int64_t find_id(const vocab *v, const char *text) {
    return text ? lgpu_name_index_get(&v->ix, text, strlen(text)) : -1;
}

static int put_special(lgpu_gguf_writer *w, const vocab *v, json_t *tc, const char *field, const char *key) {
    const char *s = lgpu_hf_token_string(json_object_get(tc, field));
    int64_t id = find_id(v, s);
    return id >= 0 ? lgpu_gguf_set_u32(w, key, (uint32_t)id) : 0;
}

int lgpu_gguf_put_vocab_hf(lgpu_gguf_writer *w, const char *dir, uint32_t n_vocab, uint32_t *n_out) {
    const char *f = lgpu_path_base(dir);
    int st = 0;
    json_t *tj = load_json(dir, "tokenizer.json", true, 0, &st);
    if (!tj) return st;
    json_t *tc = load_json(dir, "tokenizer_config.json", false, JSON_DECODE_INT_AS_REAL, &st); /* model_max_length can be 1e30 */
    if (st) {
        json_decref(tj);
        return st;
    }
    json_t *model = json_object_get(tj, "model"), *vmap = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges"), *added = json_object_get(tj, "added_tokens");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    vocab v = {.dir = dir};
    char *mbuf = NULL;
    const char **mstr = NULL;
    size_t nm = json_array_size(merges);
    if (!mtype || strcmp(mtype, "BPE") || !json_is_object(vmap)) {
        st = lgpu_set_error(LGPU_EUNSUPPORTED, "%s/tokenizer.json: model type '%.32s' is not supported (BPE only)", f,
                            mtype ? mtype : "(none)");
        goto done;
    }
    bool prefix;
    lgpu_hf_style style = lgpu_hf_bpe_style(tj, &prefix);
    if (style == LGPU_HF_UNSUPPORTED) {
        st = lgpu_set_error(LGPU_EUNSUPPORTED, "%s/tokenizer.json: BPE neither byte-level nor SentencePiece-style", f);
        goto done;
    }
    bool spm = style == LGPU_HF_SPM;
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    int64_t unk_id = -1; /* the added special token named by model.unk_token */
    /* Size: one past the largest id. */
    json_int_t max_id = -1;
    const char *k;
    json_t *val;
    size_t ai;
    json_object_foreach(vmap, k, val) if (json_is_integer(val) && json_integer_value(val) > max_id) max_id = json_integer_value(val);
    json_array_foreach(added, ai, val) {
        json_t *id = json_object_get(val, "id");
        if (json_is_integer(id) && json_integer_value(id) > max_id) max_id = json_integer_value(id);
    }
    if (max_id < 0 || max_id >= (json_int_t)16000000) {
        st = lgpu_set_error(LGPU_EFORMAT, "%s/tokenizer.json: bad vocabulary size %" PRId64, f, (int64_t)max_id + 1);
        goto done;
    }
    v.n = (uint32_t)max_id + 1 > n_vocab ? (uint32_t)max_id + 1 : n_vocab;
    v.text = calloc(v.n, sizeof *v.text);
    v.type = calloc(v.n, sizeof *v.type);
    v.score = calloc(v.n, sizeof *v.score);
    v.special = calloc(v.n, sizeof *v.special);
    v.pad = calloc(v.n, sizeof *v.pad);
    if (!v.text || !v.type || !v.score || !v.special || !v.pad || (st = lgpu_name_index_init(&v.ix, v.n))) {
        st = st ? st : lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", f);
        goto done;
    }
    json_object_foreach(vmap, k, val) if ((st = set_id(&v, val, k, false, "tokenizer.json"))) goto done;
    json_array_foreach(added, ai, val) {
        const char *c = json_string_value(json_object_get(val, "content"));
        if (!c) {
            st = lgpu_set_error(LGPU_EFORMAT, "%s/tokenizer.json: added_tokens[%zu] has no content", f, ai);
            goto done;
        }
        bool special = json_is_true(json_object_get(val, "special"));
        if ((st = set_id(&v, json_object_get(val, "id"), c, special, "tokenizer.json"))) goto done;
        json_int_t id = json_integer_value(json_object_get(val, "id"));
        if (!special) v.type[id] = 4;
        else if (unk && !strcmp(c, unk)) unk_id = id;
    }
    for (uint32_t i = 0; i < v.n; i++) {
        if (!v.text[i]) { /* hole: llama.cpp writes [PADi] as USER_DEFINED */
            snprintf(v.pad[i], sizeof v.pad[i], "[PAD%u]", i);
            v.text[i] = v.pad[i];
            v.type[i] = 4;
            continue;
        }
        lgpu_name_index_put(&v.ix, v.text[i], strlen(v.text[i]), i);
        if ((int64_t)i == unk_id) v.type[i] = 2;
        else if (v.special[i]) v.type[i] = 3;
        else if (!v.type[i]) v.type[i] = spm && strlen(v.text[i]) == 6 && !strncmp(v.text[i], "<0x", 3) ? 6 : 1;
    }
    /* Merges: "a b" strings or ["a", "b"] pairs. */
    if (nm && !(mstr = calloc(nm, sizeof *mstr))) {
        st = lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", f);
        goto done;
    }
    size_t mbytes = 0;
    json_array_foreach(merges, ai, val) {
        if (json_is_array(val)) mbytes += strlen(json_string_value(json_array_get(val, 0)) ? json_string_value(json_array_get(val, 0)) : "") +
                                          strlen(json_string_value(json_array_get(val, 1)) ? json_string_value(json_array_get(val, 1)) : "") + 2;
    }
    if (mbytes && !(mbuf = malloc(mbytes))) {
        st = lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", f);
        goto done;
    }
    char *mp = mbuf;
    json_array_foreach(merges, ai, val) {
        const char *a = json_string_value(json_array_get(val, 0)), *b = json_string_value(json_array_get(val, 1));
        if (json_is_string(val)) mstr[ai] = json_string_value(val);
        else if (a && b) mstr[ai] = mp, mp += sprintf(mp, "%s %s", a, b) + 1;
        else {
            st = lgpu_set_error(LGPU_EFORMAT, "%s/tokenizer.json: merges[%zu] is neither \"a b\" nor [a, b]", f, ai);
            goto done;
        }
    }
    if (spm) {
        /* SPM scores: merge rank decides (earlier = higher); unmerged pieces last. */
        for (uint32_t i = 0; i < v.n; i++) v.score[i] = -(float)(nm + i);
        for (size_t r = 0; r < nm; r++) {
            char joined[1024];
            const char *sp = strchr(mstr[r], ' ');
            size_t la = sp ? (size_t)(sp - mstr[r]) : 0, lb = sp ? strlen(sp + 1) : 0;
            if (!sp || la + lb >= sizeof joined) continue;
            memcpy(joined, mstr[r], la);
            memcpy(joined + la, sp + 1, lb + 1);
            int64_t id = find_id(&v, joined);
            if (id >= 0 && v.score[id] < -(float)r) v.score[id] = -(float)r;
        }
        for (uint32_t i = 0; i < v.n; i++)
            if (v.type[i] != 1) v.score[i] = 0;
    }
    st = lgpu_gguf_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
    if (!st) st = lgpu_gguf_set_str(w, "tokenizer.ggml.pre", !spm && find_id(&v, "<|begin_of_text|>") >= 0 ? "llama-bpe" : "default");
    if (!st) st = lgpu_gguf_set_arr_str(w, "tokenizer.ggml.tokens", v.n, v.text, NULL);
    if (!st && spm) st = lgpu_gguf_set_arr(w, "tokenizer.ggml.scores", LGPU_GGUF_F32, v.n, v.score);
    if (!st && spm) st = lgpu_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", prefix);
    if (!st) st = lgpu_gguf_set_arr(w, "tokenizer.ggml.token_type", LGPU_GGUF_I32, v.n, v.type);
    if (!st && !spm) st = lgpu_gguf_set_arr_str(w, "tokenizer.ggml.merges", nm, mstr, NULL);
    if (!st && tc) {
        json_t *ab = json_object_get(tc, "add_bos_token"), *ae = json_object_get(tc, "add_eos_token");
        const char *tmpl = lgpu_hf_chat_template(tc);
        st = put_special(w, &v, tc, "bos_token", "tokenizer.ggml.bos_token_id");
        if (!st) st = put_special(w, &v, tc, "eos_token", "tokenizer.ggml.eos_token_id");
        if (!st) st = put_special(w, &v, tc, "unk_token", "tokenizer.ggml.unknown_token_id");
        if (!st) st = put_special(w, &v, tc, "pad_token", "tokenizer.ggml.padding_token_id");
        if (!st && json_is_boolean(ab)) st = lgpu_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", json_is_true(ab));
        if (!st && json_is_boolean(ae)) st = lgpu_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", json_is_true(ae));
        if (!st && tmpl) st = lgpu_gguf_set_str(w, "tokenizer.chat_template", tmpl);
    }
    if (!st && spm && find_id(&v, unk ? unk : "<unk>") >= 0)
        st = lgpu_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)find_id(&v, unk ? unk : "<unk>"));
    if (!st && n_out) *n_out = v.n;
done:
    free(v.text);
    free(v.type);
    free(v.score);
    free(v.special);
    free(v.pad);
    lgpu_name_index_destroy(&v.ix);
    free(mstr);
    free(mbuf);
    json_decref(tc);
    json_decref(tj);
    return st;
}
