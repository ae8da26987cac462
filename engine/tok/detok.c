/* Ids -> bytes: single pieces, whole sequences, and the streaming
 * detokenizer that emits only complete UTF-8 characters. */
#include "tok/tok_internal.h"
#include "core/grow.h"

#include <stdlib.h>
#include <string.h>

static int copy_out(const char *s, size_t n, char *buf, size_t cap, size_t *len) {
    *len = n;
    if (n > cap) return lgpu_set_error(LGPU_EFULL, "tokenizer: piece of %zu bytes, buffer of %zu", n, cap);
    if (n) memcpy(buf, s, n);
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int lgpu_tokenizer_piece(const lgpu_tokenizer *t, int32_t id, bool special, char *buf, size_t cap, size_t *len) {
    if (!t || !len || (!buf && cap)) return lgpu_set_error(LGPU_EINVAL, "lgpu_tokenizer_piece: NULL argument");
    if (id < 0 || id >= t->n_vocab)
        return lgpu_set_error(LGPU_ERANGE, "tokenizer: token id %d out of range [0, %d)", id, t->n_vocab);
    const tok_entry *e = &t->tok[id];
    const char *s = t->arena + e->off;
    switch (e->type) {
    case LGPU_TOKEN_CONTROL: return copy_out(s, special ? e->len : 0, buf, cap, len);
    case LGPU_TOKEN_UNKNOWN:
    case LGPU_TOKEN_USER_DEFINED: return copy_out(s, e->len, buf, cap, len);
    case LGPU_TOKEN_UNUSED: return copy_out(s, 0, buf, cap, len);
    case LGPU_TOKEN_BYTE:
        if (e->len == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && hexval(s[3]) >= 0 && hexval(s[4]) >= 0) {
            char b = (char)(hexval(s[3]) * 16 + hexval(s[4]));
            return copy_out(&b, 1, buf, cap, len);
        }
        return copy_out(s, e->len, buf, cap, len);
    default: break;
    }
    if (t->kind == LGPU_TOK_BPE) return copy_out(s, e->len, buf, cap, len); /* already raw bytes */
    /* SPM: "▁" -> ' ' */
    size_t n = 0;
    for (uint32_t i = 0; i < e->len; i++) {
        bool ws = i + 2 < e->len && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
                  (unsigned char)s[i + 2] == 0x81;
        if (n < cap) buf[n] = ws ? ' ' : s[i];
        n++;
        if (ws) i += 2;
    }
    *len = n;
    return n > cap ? lgpu_set_error(LGPU_EFULL, "tokenizer: piece of %zu bytes, buffer of %zu", n, cap) : 0;
}

struct lgpu_detok {
    const lgpu_tokenizer *tok;
    bool special, at_start;
    char held[8]; /* an incomplete UTF-8 sequence waiting for its continuation bytes */
    size_t n_held;
    char *out, *stage; /* stage: held bytes + the new piece */
    size_t out_len, out_cap, stage_cap;
};

int lgpu_detok_create(const lgpu_tokenizer *tok, bool special, lgpu_detok **out) {
    if (!tok || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_detok_create: NULL argument");
    lgpu_detok *d = calloc(1, sizeof *d);
    if (!d) return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
    d->tok = tok;
    d->special = special;
    d->at_start = true;
    *out = d;
    return 0;
}

void lgpu_detok_destroy(lgpu_detok *d) {
    if (!d) return;
    free(d->out);
    free(d->stage);
    free(d);
}

void lgpu_detok_reset(lgpu_detok *d, bool at_start) {
    d->n_held = 0;
    d->at_start = at_start;
}

static int out_reserve(lgpu_detok *d, size_t n) {
    return LGPU_GROW(d->out, d->out_cap, d->out_len + n + 1, 64, "detokenizer");
}

/* Moves complete characters (and bytes that can never complete one) from
 * s[0..n) to the output; returns how many bytes at the end are held back. */
static size_t emit_complete(lgpu_detok *d, const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t l = c < 0xC0 || c >= 0xF8 ? 1 : (size_t)tok_utf8_len(c);
        size_t k = 1;
        while (k < l && i + k < n && ((unsigned char)s[i + k] & 0xC0) == 0x80) k++;
        if (k < l && i + k == n) break; /* valid so far, more bytes to come */
        if (k < l) l = 1;               /* broken sequence: pass the lead byte through */
        memcpy(d->out + d->out_len, s + i, l);
        d->out_len += l;
        i += l;
    }
    return n - i;
}

int lgpu_detok_push(lgpu_detok *d, int32_t id, const char **text, size_t *len) {
    if (!d || !text || !len) return lgpu_set_error(LGPU_EINVAL, "lgpu_detok_push: NULL argument");
    d->out_len = 0;
    char small[64];
    size_t n;
    int rc = lgpu_tokenizer_piece(d->tok, id, d->special, small, sizeof small, &n);
    char *piece = small;
    if (rc == LGPU_EFULL) {
        if (!(piece = malloc(n))) return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
        rc = lgpu_tokenizer_piece(d->tok, id, d->special, piece, n, &n);
    }
    if (rc) goto done;
    const char *p = piece;
    if (n && d->at_start) {
        d->at_start = false;
        /* sentencepiece drops the dummy-prefix space of the first piece of text */
        if (d->tok->kind == LGPU_TOK_SPM && d->tok->add_space_prefix && p[0] == ' ') p++, n--;
    }
    if ((rc = out_reserve(d, d->n_held + n))) goto done;
    if (d->n_held + n == 0) goto done;
    if (d->n_held + n > d->stage_cap) {
        size_t cap = d->n_held + n + 64;
        char *st = realloc(d->stage, cap);
        if (!st) {
            rc = lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
            goto done;
        }
        d->stage = st;
        d->stage_cap = cap;
    }
    memcpy(d->stage, d->held, d->n_held);
    memcpy(d->stage + d->n_held, p, n);
    size_t total = d->n_held + n, keep = emit_complete(d, d->stage, total);
    memcpy(d->held, d->stage + total - keep, keep);
    d->n_held = keep;
done:
    if (piece != small) free(piece);
    if (rc) return rc;
    if (!d->out && (rc = out_reserve(d, 0))) return rc;
    d->out[d->out_len] = 0;
    *text = d->out;
    *len = d->out_len;
    return 0;
}

int lgpu_detok_flush(lgpu_detok *d, const char **text, size_t *len) {
    if (!d || !text || !len) return lgpu_set_error(LGPU_EINVAL, "lgpu_detok_flush: NULL argument");
    d->out_len = 0;
    int rc = out_reserve(d, d->n_held);
    if (rc) return rc;
    memcpy(d->out, d->held, d->n_held);
    d->out_len = d->n_held;
    d->n_held = 0;
    d->out[d->out_len] = 0;
    *text = d->out;
    *len = d->out_len;
    return 0;
}

int lgpu_tokenizer_decode(const lgpu_tokenizer *t, const int32_t *ids, size_t n, bool special, char **out,
                          size_t *len) {
    if (!t || !out || (!ids && n)) return lgpu_set_error(LGPU_EINVAL, "lgpu_tokenizer_decode: NULL argument");
    *out = NULL;
    lgpu_detok *d;
    int rc = lgpu_detok_create(t, special, &d);
    if (rc) return rc;
    char *res = NULL;
    size_t rn = 0, rcap = 0;
    for (size_t i = 0; i <= n && !rc; i++) {
        const char *s;
        size_t sn;
        rc = i < n ? lgpu_detok_push(d, ids[i], &s, &sn) : lgpu_detok_flush(d, &s, &sn);
        if (rc) break;
        if ((rc = LGPU_GROW(res, rcap, rn + sn + 1, 256, "detokenizer"))) break;
        memcpy(res + rn, s, sn);
        rn += sn;
    }
    lgpu_detok_destroy(d);
    if (rc) {
        free(res);
        return rc;
    }
    if (!res && !(res = malloc(1))) return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
    res[rn] = 0;
    *out = res;
    if (len) *len = rn;
    return 0;
}
