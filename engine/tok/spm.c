/* SentencePiece-style BPE with scores (LLaMA 1/2), as llama.cpp's
 * llm_tokenizer_spm: spaces become "▁" (plus a leading one when asked), the
 * text is split into UTF-8 characters, and the adjacent pair whose
 * concatenation is the highest-scoring vocabulary entry is merged until no
 * pair is in the vocabulary. Leftover symbols that are not tokens become
 * <0xNN> byte tokens. O(n log n) in the text length. */
#include "tok/tok_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const lgpu_tokenizer *t;
    const char *s;
    tok_sym *sym;
    tok_heap heap;
} spm_state;

static int try_bigram(spm_state *st, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return 0;
    uint32_t size = st->sym[left].n + st->sym[right].n;
    int32_t id = lgpu_tok_lookup(st->t, st->s + st->sym[left].start, size);
    if (id < 0) return 0;
    return lgpu_tok_heap_push(&st->heap, (tok_bigram){.key = st->t->tok[id].score, .left = left, .right = right, .size = size});
}

static int push_bytes(const lgpu_tokenizer *t, const char *s, uint32_t n, lgpu_tokens *out) {
    for (uint32_t j = 0; j < n; j++) {
        int32_t id = t->byte_tok[(unsigned char)s[j]];
        if (id < 0) id = t->unk;
        if (id < 0) continue; /* neither a byte token nor <unk>: nothing can stand for it */
        int rc = lgpu_tok_push(out, id);
        if (rc) return rc;
    }
    return 0;
}

/* Merges the symbols of s[begin..end) and appends the resulting ids. */
static int encode_chunk(spm_state *st, size_t begin, size_t end, lgpu_tokens *out) {
    const lgpu_tokenizer *t = st->t;
    const char *s = st->s;
    tok_sym *sym = st->sym;
    int32_t nsym = 0;
    for (size_t off = begin; off < end;) {
        /* one UTF-8 character; a lead byte without its continuation bytes
         * (invalid input) stands alone, so it cannot swallow the next
         * character and the bytes round-trip (llama.cpp would clamp only at
         * the end of the text; identical for valid UTF-8) */
        size_t cl = (size_t)tok_utf8_len((unsigned char)s[off]);
        if (cl > end - off) cl = 1;
        for (size_t k = 1; k < cl; k++)
            if (((unsigned char)s[off + k] & 0xC0) != 0x80) cl = 1;
        sym[nsym] = (tok_sym){.start = (uint32_t)off, .n = (uint32_t)cl, .prev = nsym - 1, .next = nsym + 1};
        off += cl;
        nsym++;
    }
    if (!nsym) return 0;
    sym[nsym - 1].next = -1;
    st->heap.n = 0;
    int rc = 0;
    for (int32_t i = 1; i < nsym && !rc; i++) rc = try_bigram(st, i - 1, i);
    while (!rc && st->heap.n) {
        tok_bigram b = lgpu_tok_heap_pop(&st->heap);
        tok_sym *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        rc = try_bigram(st, l->prev, b.left);
        if (!rc) rc = try_bigram(st, b.left, l->next);
    }
    for (int32_t i = 0; i != -1 && !rc; i = sym[i].next) {
        int32_t id = lgpu_tok_lookup(t, s + sym[i].start, sym[i].n);
        rc = id >= 0 ? lgpu_tok_push(out, id) : push_bytes(t, s + sym[i].start, sym[i].n, out);
    }
    return rc;
}

static bool is_ws(const char *s, size_t i, size_t n) {
    return i + 3 <= n && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 && (unsigned char)s[i + 2] == 0x81;
}

/* A word starts at i: a "▁" that does not follow another "▁". */
static bool cut_at(const lgpu_tokenizer *t, const char *s, size_t i, size_t n) {
    return i == n || (t->spm_word_split && is_ws(s, i, n) && !(i >= 3 && is_ws(s, i - 3, n)));
}

int lgpu_tok_spm_encode(const lgpu_tokenizer *t, const char *text, size_t len, bool prefix_space, lgpu_tokens *out) {
    size_t spaces = prefix_space;
    for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
    size_t n = len + 2 * spaces + (size_t)prefix_space;
    if (n == 0) return 0;
    if (n >= INT32_MAX) return lgpu_set_error(LGPU_ERANGE, "tokenizer: text of %zu bytes is too long", len);
    char *s = malloc(n);
    spm_state st = {.t = t, .s = s};
    int rc = 0;
    if (!s) return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory for %zu bytes of text", len);
    static const char ws[3] = {(char)0xE2, (char)0x96, (char)0x81}; /* U+2581 "▁" */
    size_t o = 0;
    if (prefix_space) memcpy(s, ws, 3), o = 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') memcpy(s + o, ws, 3), o += 3;
        else s[o++] = text[i];
    }
    /* Merging is local: when no token has "▁" after another character, no
     * token spans a word start, so each word (from a "▁" run that follows a
     * non-"▁" character) merges on its own with the same result, and the
     * merge queue stays small (a 1 MB text would otherwise have a queue of
     * a million entries). */
    size_t begin = 0, max_chunk = 0;
    for (size_t i = 1, b = 0; i <= n; i++) {
        if (cut_at(t, s, i, n)) {
            if (i - b > max_chunk) max_chunk = i - b;
            b = i;
        }
    }
    if (!(st.sym = malloc(max_chunk * sizeof *st.sym))) {
        free(s);
        return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory for %zu bytes of text", len);
    }
    for (size_t i = 1; i <= n && !rc; i++) {
        if (cut_at(t, s, i, n)) {
            rc = encode_chunk(&st, begin, i, out);
            begin = i;
        }
    }
    free(st.heap.a);
    free(st.sym);
    free(s);
    return rc;
}
