/* Byte-level BPE (GPT-2 / LLaMA-3), as llama.cpp's llm_tokenizer_bpe: the
 * regex pre-tokenizer splits the text into words; each word starts as one
 * symbol per byte and the adjacent pair with the lowest merge rank is merged
 * until no ranked pair is left. With ignore_merges a word that is itself a
 * vocabulary entry is emitted whole. Vocabulary entries are indexed by their
 * raw bytes (GPT-2's byte->unicode mapping undone at load), so no per-word
 * mapping is needed here. */
#include "tok/tok_internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const lgpu_tokenizer *t;
    tok_sym *sym;
    size_t sym_cap;
    tok_heap heap;
} bpe_state;

static int add_bigram(bpe_state *st, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return 0;
    const tok_sym *l = &st->sym[left], *r = &st->sym[right];
    if (l->id < 0 || r->id < 0) return 0;
    int32_t merged;
    int32_t rank = lgpu_tok_merge_find(st->t, l->id, r->id, &merged);
    if (rank < 0) return 0;
    return lgpu_tok_heap_push(&st->heap, (tok_bigram){.key = -(double)rank, .left = left, .right = right, .size = l->n + r->n});
}

static int encode_word(bpe_state *st, const char *w, size_t n, lgpu_tokens *out) {
    const lgpu_tokenizer *t = st->t;
    if (n == 0) return 0;
    if (t->ignore_merges) {
        int32_t id = lgpu_tok_lookup(t, w, n);
        if (id >= 0) return lgpu_tok_push(out, id);
    }
    if (n > st->sym_cap) {
        size_t cap = n < 64 ? 64 : n;
        tok_sym *s = realloc(st->sym, cap * sizeof *s);
        if (!s) return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory for a %zu-byte word", n);
        st->sym = s;
        st->sym_cap = cap;
    }
    tok_sym *sym = st->sym;
    for (size_t i = 0; i < n; i++)
        sym[i] = (tok_sym){.start = (uint32_t)i, .n = 1, .prev = (int32_t)i - 1, .next = (int32_t)i + 1,
                           .id = t->byte_tok[(unsigned char)w[i]]};
    sym[n - 1].next = -1;
    st->heap.n = 0;
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++) rc = add_bigram(st, (int32_t)i - 1, (int32_t)i);
    while (!rc && st->heap.n) {
        tok_bigram b = lgpu_tok_heap_pop(&st->heap);
        tok_sym *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
        int32_t merged;
        lgpu_tok_merge_find(t, l->id, r->id, &merged);
        l->id = merged;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        rc = add_bigram(st, l->prev, b.left);
        if (!rc) rc = add_bigram(st, b.left, l->next);
    }
    for (int32_t i = 0; i != -1 && !rc; i = sym[i].next)
        if (sym[i].id >= 0) rc = lgpu_tok_push(out, sym[i].id); /* a byte with no token is dropped, as llama.cpp */
    return rc;
}

/* llama.cpp turns each invalid UTF-8 byte into U+FFFD before splitting; the
 * regex needs valid UTF-8 anyway. Returns NULL (no copy needed) or a copy. */
static char *sanitize(const char *s, size_t n, size_t *out_n, int *rc) {
    size_t i = 0;
    uint32_t cp;
    while (i < n) {
        int l = lgpu_tok_utf8_get(s + i, n - i, &cp);
        if (!l) break;
        i += (size_t)l;
    }
    *rc = 0;
    if (i == n) return NULL;
    char *d = malloc(3 * n);
    if (!d) {
        *rc = lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
        return NULL;
    }
    size_t o = 0;
    for (i = 0; i < n;) {
        int l = lgpu_tok_utf8_get(s + i, n - i, &cp);
        if (l) {
            memcpy(d + o, s + i, (size_t)l);
            o += (size_t)l;
            i += (size_t)l;
        } else {
            o += (size_t)lgpu_tok_utf8_put(0xFFFD, d + o);
            i++;
        }
    }
    *out_n = o;
    return d;
}

int lgpu_tok_bpe_encode(const lgpu_tokenizer *t, const char *text, size_t len, lgpu_tokens *out) {
    int rc;
    char *clean = sanitize(text, len, &len, &rc);
    if (rc) return rc;
    if (clean) text = clean;
    bpe_state st = {.t = t};
    const pcre2_code *re = t->re;
    pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
    if (re && !md) {
        free(clean);
        return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
    }
    size_t gap = 0, from = 0; /* unmatched text since `gap` is a word of its own (HF "Isolated") */
    while (re && from < len && !rc) {
        int m = pcre2_match(re, (PCRE2_SPTR)text, len, from, PCRE2_NO_UTF_CHECK, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH) break;
        if (m < 0) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = lgpu_set_error(LGPU_EIO, "tokenizer: pre-tokenizer regex: %s", (const char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) { /* empty match: step over one character */
            from = ov[0] + (size_t)tok_utf8_len((unsigned char)text[ov[0]]);
            continue;
        }
        if (ov[0] > gap) rc = encode_word(&st, text + gap, ov[0] - gap, out);
        if (!rc) rc = encode_word(&st, text + ov[0], ov[1] - ov[0], out);
        gap = from = ov[1];
    }
    if (!rc && gap < len) rc = encode_word(&st, text + gap, len - gap, out);
    pcre2_match_data_free(md);
    free(st.sym);
    free(st.heap.a);
    free(clean);
    return rc;
}
