/* Internals shared by the tokenizer sources: the vocabulary with its hash
 * index, merge table, special-token list, and helpers used by the loaders. */
#ifndef LGPU_TOK_INTERNAL_H
#define LGPU_TOK_INTERNAL_H

#include "lgpu/tokenizer.h"

typedef struct tok_entry {
    uint32_t off, len; /* text in tok->arena (SPM: with "▁"; BPE: raw bytes for normal tokens) */
    uint32_t disp_off, disp_len; /* stored form for lgpu_tokenizer_token_text (BPE: "ĠHello") */
    float score;
    uint8_t type;   /* lgpu_token_type */
    bool lstrip, rstrip;
} tok_entry;

struct lgpu_tokenizer {
    lgpu_tok_kind kind;
    int32_t n_vocab;
    tok_entry *tok;
    char *arena;
    size_t arena_len, arena_cap;

    /* open addressing over ids+1 (0 = empty), keyed by the match text */
    int32_t *htab;
    uint32_t hmask;

    /* BPE merges: key (left id, right id) -> rank and merged id */
    uint64_t *mkey;
    int32_t *mrank, *mres;
    uint32_t mmask;
    size_t n_merges;
    bool ignore_merges;      /* a whole pre-token that is in the vocab is emitted as is (LLaMA-3) */
    void *re;                /* pcre2_code_8 *: the pre-tokenizer regex */

    int32_t byte_tok[256];   /* id for a raw byte (SPM <0xNN>, BPE the byte's token), -1 if none */

    int32_t bos, eos, eot, unk, pad;
    int32_t eog[16];
    int n_eog;
    bool add_bos, add_eos, add_space_prefix;
    bool spm_word_split; /* no token has "▁" after another character: SPM may merge word by word */

    int32_t *specials; /* control/user-defined/unknown ids, longest text first */
    int n_specials;

    char *chat_template;
};

/* utf8.c */
/* Length of a UTF-8 sequence from its lead byte (1 for invalid leads), as llama.cpp's unicode_len_utf8. */
static inline int tok_utf8_len(unsigned char c) {
    static const int lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}
/* GPT-2's byte <-> unicode mapping undone: a mapped UTF-8 string ("ĠHello")
 * to raw bytes (" Hello"); -1 if a character is outside the mapping. */
int lgpu_tok_gpt2_decode(const char *s, size_t n, char *out, size_t *out_len);
/* Appends the UTF-8 encoding of cp (<= 4 bytes) to dst, returns bytes written. */
int lgpu_tok_utf8_put(uint32_t cp, char *dst);
/* Decodes one code point at s[0..n); returns its length, or 0 if invalid/truncated. */
int lgpu_tok_utf8_get(const char *s, size_t n, uint32_t *cp);

/* vocab.c: building */
int lgpu_tok_alloc(lgpu_tokenizer **out, lgpu_tok_kind kind, int32_t n_vocab);
/* Sets token `id`: match text (text,len), display text (disp,dlen; NULL: same). */
int lgpu_tok_set(lgpu_tokenizer *t, int32_t id, const char *text, size_t len, const char *disp, size_t dlen,
            float score, int type);
/* The text -> id index (after all lgpu_tok_set; lgpu_tok_finalize builds it if needed). */
int lgpu_tok_build_index(lgpu_tokenizer *t);
/* After all lgpu_tok_set and the special ids: hash index, byte map, specials
 * list, eot (by well-known texts when unset) and the end-of-generation set. */
int lgpu_tok_finalize(lgpu_tokenizer *t);
/* Adds merge (left id, right id) -> merged id with rank = number of merges so far. */
int lgpu_tok_add_merge(lgpu_tokenizer *t, int32_t left, int32_t right, int32_t merged);
int lgpu_tok_merges_reserve(lgpu_tokenizer *t, size_t n);
/* Compiles the pre-tokenizer regex (NULL: LLaMA-3's; its case-insensitive
 * contraction group is rewritten to ASCII classes). */
int lgpu_tok_set_regex(lgpu_tokenizer *t, const char *pattern);

/* bpe_vocab.c: byte-level BPE vocabularies from GPT-2-mapped strings */
int lgpu_tok_bpe_set_token(lgpu_tokenizer *t, int32_t id, const char *text, size_t len, int type);
/* Need the index: call lgpu_tok_build_index first. */
int lgpu_tok_bpe_add_merge(lgpu_tokenizer *t, const char *a, size_t an, const char *b, size_t bn, bool *skipped);
int lgpu_tok_bpe_add_merge_line(lgpu_tokenizer *t, const char *s, size_t n, bool *skipped);

/* "<0xNN>" */
bool lgpu_tok_is_byte_piece(const char *s, size_t n);

/* vocab.c: lookup */
int32_t lgpu_tok_lookup(const lgpu_tokenizer *t, const char *s, size_t n);
int32_t lgpu_tok_merge_find(const lgpu_tokenizer *t, int32_t left, int32_t right, int32_t *merged);
static inline const char *tok_text(const lgpu_tokenizer *t, int32_t id) { return t->arena + t->tok[id].off; }

/* spm.c / bpe.c: tokenize one raw-text fragment, appending to out */
int lgpu_tok_spm_encode(const lgpu_tokenizer *t, const char *text, size_t len, bool prefix_space, lgpu_tokens *out);
int lgpu_tok_bpe_encode(const lgpu_tokenizer *t, const char *text, size_t len, lgpu_tokens *out);

/* encode.c */
int lgpu_tok_push(lgpu_tokens *out, int32_t id);

/* heap.c: max-heap of candidate merges; higher key first, then smaller left */
typedef struct tok_bigram {
    double key;
    int32_t left, right;
    uint32_t size; /* bytes of left+right when queued: a mismatch later means stale */
} tok_bigram;
typedef struct tok_heap {
    tok_bigram *a;
    size_t n, cap;
} tok_heap;
int lgpu_tok_heap_push(tok_heap *h, tok_bigram b);
tok_bigram lgpu_tok_heap_pop(tok_heap *h);

/* Symbols of a word being merged: a doubly linked list over an array. */
typedef struct tok_sym {
    uint32_t start, n; /* bytes of the word; n = 0 once merged into the left neighbour */
    int32_t prev, next, id;
} tok_sym;

/* The LLaMA-3 pre-tokenizer. */
extern const char lgpu_tok_llama3_regex[];

#endif
