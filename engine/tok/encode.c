/* Text -> ids: special tokens are split out first (longest first, as
 * llama.cpp's tokenizer_st_partition), then each raw-text fragment goes
 * through the SPM or BPE model; BOS/EOS are added as the vocabulary asks. */
#include "tok/tok_internal.h"
#include "core/grow.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int lgpu_tok_push(lgpu_tokens *out, int32_t id) {
    int st = LGPU_GROW(out->ids, out->cap, out->n + 1, 64, "token ids");
    if (st) return st;
    out->ids[out->n++] = id;
    return 0;
}

void lgpu_tokens_destroy(lgpu_tokens *t) {
    if (!t) return;
    free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}

typedef struct {
    size_t off, len;
    int32_t id; /* -1: raw text */
} fragment;

typedef struct {
    fragment *f;
    size_t n, cap;
} frag_list;

static int frag_add(frag_list *l, size_t off, size_t len, int32_t id) {
    int st = LGPU_GROW(l->f, l->cap, l->n + 1, 16, "tokenizer fragments");
    if (st) return st;
    l->f[l->n++] = (fragment){off, len, id};
    return 0;
}

/* Splits every raw fragment of `in` at occurrences of special token `id`. */
static int split_special(const lgpu_tokenizer *t, const char *text, int32_t id, frag_list *in, frag_list *out) {
    const tok_entry *e = &t->tok[id];
    const char *sp = tok_text(t, id);
    out->n = 0;
    int rc = 0;
    for (size_t k = 0; k < in->n && !rc; k++) {
        fragment f = in->f[k];
        if (f.id >= 0 || f.len < e->len) {
            rc = frag_add(out, f.off, f.len, f.id);
            continue;
        }
        size_t off = f.off, end = f.off + f.len;
        while (!rc && off < end) {
            const char *m = memmem(text + off, end - off, sp, e->len);
            if (!m) {
                rc = frag_add(out, off, end - off, -1);
                break;
            }
            size_t at = (size_t)(m - text), left = at - off;
            if (e->lstrip)
                while (left > 0 && isspace((unsigned char)text[off + left - 1])) left--;
            if (left) rc = frag_add(out, off, left, -1);
            if (!rc) rc = frag_add(out, 0, 0, id);
            off = at + e->len;
            if (e->rstrip)
                while (off < end && isspace((unsigned char)text[off])) off++;
        }
    }
    return rc;
}

static int encode_fragments(const lgpu_tokenizer *t, const char *text, const frag_list *fr, bool add_special,
                            lgpu_tokens *out) {
    int rc = 0;
    bool bos = add_special && lgpu_tokenizer_add_bos(t);
    if (bos) rc = lgpu_tok_push(out, t->bos);
    bool prev_special = true; /* SPM: a fragment at the start or after a special gets the dummy prefix */
    for (size_t k = 0; k < fr->n && !rc; k++) {
        const fragment *f = &fr->f[k];
        if (f->id >= 0) {
            rc = lgpu_tok_push(out, f->id);
            prev_special = true;
        } else if (t->kind == LGPU_TOK_SPM) {
            rc = lgpu_tok_spm_encode(t, text + f->off, f->len, t->add_space_prefix && prev_special, out);
            prev_special = false;
        } else {
            rc = lgpu_tok_bpe_encode(t, text + f->off, f->len, out);
        }
    }
    if (!rc && add_special && lgpu_tokenizer_add_eos(t)) rc = lgpu_tok_push(out, t->eos);
    return rc;
}

int lgpu_tokenizer_encode(const lgpu_tokenizer *t, const char *text, size_t len, bool add_special,
                          bool parse_special, lgpu_tokens *out) {
    if (!t || !out || (!text && len)) return lgpu_set_error(LGPU_EINVAL, "lgpu_tokenizer_encode: NULL argument");
    if (len == (size_t)-1) len = strlen(text);
    frag_list a = {0}, b = {0};
    int rc = 0;
    if (len) rc = frag_add(&a, 0, len, -1); /* empty text: no fragments (only BOS/EOS) */
    for (int i = 0; i < t->n_specials && !rc && len; i++) {
        int32_t id = t->specials[i];
        int ty = t->tok[id].type;
        if (!parse_special && (ty == LGPU_TOKEN_CONTROL || ty == LGPU_TOKEN_UNKNOWN)) continue;
        rc = split_special(t, text, id, &a, &b);
        frag_list tmp = a;
        a = b;
        b = tmp;
    }
    size_t n0 = out->n;
    if (!rc) rc = encode_fragments(t, text, &a, add_special, out);
    if (rc) out->n = n0;
    free(a.f);
    free(b.f);
    return rc;
}

int lgpu_tokenizer_encode_buf(const lgpu_tokenizer *t, const char *text, size_t len, bool add_special,
                              bool parse_special, int32_t *ids, size_t cap, size_t *n_out) {
    lgpu_tokens v = {0};
    int rc = lgpu_tokenizer_encode(t, text, len, add_special, parse_special, &v);
    if (rc) return rc;
    size_t n = v.n < cap ? v.n : cap;
    if (n) memcpy(ids, v.ids, n * sizeof *ids);
    if (n_out) *n_out = v.n;
    if (v.n > cap) rc = lgpu_set_error(LGPU_EFULL, "lgpu_tokenizer_encode_buf: %zu ids, room for %zu", v.n, cap);
    lgpu_tokens_destroy(&v);
    return rc;
}
