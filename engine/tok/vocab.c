/* The vocabulary: token table, hash index (text -> id), BPE merge table,
 * special-token list, end-of-generation set, and the property getters. */
#include "tok/tok_internal.h"
#include "core/grow.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

const char lgpu_tok_llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

bool lgpu_tok_is_byte_piece(const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEFabcdef";
    return n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && s[3] && s[4] && strchr(hex, s[3]) && strchr(hex, s[4]);
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

int lgpu_tok_alloc(lgpu_tokenizer **out, lgpu_tok_kind kind, int32_t n_vocab) {
    *out = NULL;
    if (n_vocab <= 0) return lgpu_set_error(LGPU_EFORMAT, "tokenizer: empty vocabulary");
    lgpu_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
    t->kind = kind;
    t->n_vocab = n_vocab;
    t->tok = calloc((size_t)n_vocab, sizeof *t->tok);
    if (!t->tok) {
        free(t);
        return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory for %d tokens", n_vocab);
    }
    for (int32_t i = 0; i < n_vocab; i++) t->tok[i].type = LGPU_TOKEN_UNUSED;
    t->bos = t->eos = t->eot = t->unk = t->pad = -1;
    t->add_bos = true;
    t->add_space_prefix = kind == LGPU_TOK_SPM;
    *out = t;
    return 0;
}

static int arena_put(lgpu_tokenizer *t, const char *s, size_t n, uint32_t *off) {
    if (t->arena_len + n + 1 > UINT32_MAX) return lgpu_set_error(LGPU_ERANGE, "tokenizer: vocabulary text over 4 GiB");
    int st = LGPU_GROW(t->arena, t->arena_cap, t->arena_len + n + 1, 1 << 16, "tokenizer vocabulary");
    if (st) return st;
    memcpy(t->arena + t->arena_len, s, n);
    t->arena[t->arena_len + n] = 0;
    *off = (uint32_t)t->arena_len;
    t->arena_len += n + 1;
    return 0;
}

int lgpu_tok_set(lgpu_tokenizer *t, int32_t id, const char *text, size_t len, const char *disp, size_t dlen,
            float score, int type) {
    if (id < 0 || id >= t->n_vocab) return lgpu_set_error(LGPU_ERANGE, "tokenizer: token id %d out of range", id);
    tok_entry *e = &t->tok[id];
    int st = arena_put(t, text, len, &e->off);
    if (st) return st;
    e->len = (uint32_t)len;
    if (disp && (dlen != len || memcmp(disp, text, len))) {
        if ((st = arena_put(t, disp, dlen, &e->disp_off))) return st;
        e->disp_len = (uint32_t)dlen;
    } else {
        e->disp_off = e->off;
        e->disp_len = e->len;
    }
    e->score = score;
    e->type = (uint8_t)(type >= LGPU_TOKEN_NORMAL && type <= LGPU_TOKEN_BYTE ? type : LGPU_TOKEN_NORMAL);
    return 0;
}

int32_t lgpu_tok_lookup(const lgpu_tokenizer *t, const char *s, size_t n) {
    if (!t->htab) return -1;
    for (uint32_t i = (uint32_t)hash_bytes(s, n) & t->hmask;; i = (i + 1) & t->hmask) {
        int32_t v = t->htab[i];
        if (!v) return -1;
        const tok_entry *e = &t->tok[v - 1];
        if (e->len == n && !memcmp(t->arena + e->off, s, n)) return v - 1;
    }
}

int lgpu_tok_build_index(lgpu_tokenizer *t) {
    if (t->htab) return 0;
    uint32_t cap = 1024;
    while (cap < (uint32_t)t->n_vocab * 2u) cap *= 2;
    t->htab = calloc(cap, sizeof *t->htab);
    if (!t->htab) return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory for the vocabulary index");
    t->hmask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const tok_entry *e = &t->tok[id];
        uint32_t i = (uint32_t)hash_bytes(t->arena + e->off, e->len) & t->hmask;
        for (;; i = (i + 1) & t->hmask) {
            int32_t v = t->htab[i];
            if (!v) {
                t->htab[i] = id + 1;
                break;
            }
            const tok_entry *o = &t->tok[v - 1];
            if (o->len == e->len && !memcmp(t->arena + o->off, t->arena + e->off, e->len)) break; /* first id wins */
        }
    }
    return 0;
}

static int merges_grow(lgpu_tokenizer *t, size_t need) {
    uint32_t cap = t->mmask ? t->mmask + 1 : 1024;
    while ((size_t)cap < need * 2) cap *= 2;
    if (t->mmask && cap == t->mmask + 1) return 0;
    uint64_t *key = malloc((size_t)cap * sizeof *key);
    int32_t *rank = malloc((size_t)cap * sizeof *rank), *res = malloc((size_t)cap * sizeof *res);
    if (!key || !rank || !res) {
        free(key);
        free(rank);
        free(res);
        return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory for %zu merges", need);
    }
    for (uint32_t i = 0; i < cap; i++) rank[i] = -1;
    if (t->mmask) {
        for (uint32_t j = 0; j <= t->mmask; j++) {
            if (t->mrank[j] < 0) continue;
            uint32_t i = (uint32_t)hash_u64(t->mkey[j]) & (cap - 1);
            while (rank[i] >= 0) i = (i + 1) & (cap - 1);
            key[i] = t->mkey[j];
            rank[i] = t->mrank[j];
            res[i] = t->mres[j];
        }
    }
    free(t->mkey);
    free(t->mrank);
    free(t->mres);
    t->mkey = key;
    t->mrank = rank;
    t->mres = res;
    t->mmask = cap - 1;
    return 0;
}

int lgpu_tok_merges_reserve(lgpu_tokenizer *t, size_t n) { return merges_grow(t, n); }

int lgpu_tok_add_merge(lgpu_tokenizer *t, int32_t left, int32_t right, int32_t merged) {
    int32_t rank = (int32_t)t->n_merges++;
    if (left < 0 || right < 0 || merged < 0) return 0; /* never fires, only takes its rank */
    if (!t->mmask || t->n_merges * 2 > (size_t)t->mmask + 1) {
        int st = merges_grow(t, t->n_merges * 2);
        if (st) return st;
    }
    uint64_t k = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    uint32_t i = (uint32_t)hash_u64(k) & t->mmask;
    for (; t->mrank[i] >= 0; i = (i + 1) & t->mmask)
        if (t->mkey[i] == k) return 0; /* a repeated pair keeps its first (best) rank */
    t->mkey[i] = k;
    t->mrank[i] = rank;
    t->mres[i] = merged;
    return 0;
}

int32_t lgpu_tok_merge_find(const lgpu_tokenizer *t, int32_t left, int32_t right, int32_t *merged) {
    if (!t->mmask) return -1;
    uint64_t k = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (uint32_t i = (uint32_t)hash_u64(k) & t->mmask; t->mrank[i] >= 0; i = (i + 1) & t->mmask) {
        if (t->mkey[i] == k) {
            *merged = t->mres[i];
            return t->mrank[i];
        }
    }
    return -1;
}

int lgpu_tok_set_regex(lgpu_tokenizer *t, const char *pattern) {
    if (!pattern) pattern = lgpu_tok_llama3_regex;
    /* (?i:...) under PCRE2_UCP would also fold non-ASCII letters ('ſ' ~ 's');
     * llama.cpp and HF treat the contractions as ASCII only. */
    static const char ci[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
    static const char ascii[] = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
    char *pat = NULL;
    const char *hit = strstr(pattern, ci);
    if (hit) {
        size_t pre = (size_t)(hit - pattern), n = strlen(pattern) - pre - (sizeof ci - 1);
        pat = malloc(pre + sizeof ascii + n);
        if (!pat) return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
        memcpy(pat, pattern, pre);
        memcpy(pat + pre, ascii, sizeof ascii - 1);
        memcpy(pat + pre + sizeof ascii - 1, hit + sizeof ci - 1, n + 1);
        pattern = pat;
    }
    int err;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &eoff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        int st = lgpu_set_error(LGPU_EFORMAT, "tokenizer: pre-tokenizer regex at offset %zu: %s", (size_t)eoff,
                                (const char *)msg);
        free(pat);
        return st;
    }
    free(pat);
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* interpreted matching if JIT is unavailable */
    if (t->re) pcre2_code_free((pcre2_code *)t->re);
    t->re = re;
    return 0;
}

static int cmp_special(const void *a, const void *b, void *ctx) {
    const lgpu_tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->tok[x].len != t->tok[y].len) return t->tok[x].len > t->tok[y].len ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int32_t find_special_text(const lgpu_tokenizer *t, const char *s) {
    int32_t id = lgpu_tok_lookup(t, s, strlen(s));
    if (id < 0) return -1;
    int ty = t->tok[id].type;
    return ty == LGPU_TOKEN_CONTROL || ty == LGPU_TOKEN_USER_DEFINED ? id : -1;
}

static void add_eog(lgpu_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return;
    if (t->n_eog < (int)(sizeof t->eog / sizeof t->eog[0])) t->eog[t->n_eog++] = id;
}

int lgpu_tok_finalize(lgpu_tokenizer *t) {
    int st = lgpu_tok_build_index(t);
    if (st) return st;
    for (int b = 0; b < 256; b++) {
        int32_t id = -1;
        if (t->kind == LGPU_TOK_SPM) {
            char hex[8];
            static const char *digits = "0123456789ABCDEF";
            hex[0] = '<', hex[1] = '0', hex[2] = 'x', hex[3] = digits[b >> 4], hex[4] = digits[b & 15], hex[5] = '>';
            id = lgpu_tok_lookup(t, hex, 6);
        }
        if (id < 0) {
            char c = (char)b;
            id = lgpu_tok_lookup(t, &c, 1);
        }
        t->byte_tok[b] = id;
    }
    int n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        int ty = t->tok[id].type;
        if ((ty == LGPU_TOKEN_CONTROL || ty == LGPU_TOKEN_USER_DEFINED || ty == LGPU_TOKEN_UNKNOWN) && t->tok[id].len) n++;
    }
    t->specials = malloc(((size_t)n + 1) * sizeof *t->specials);
    if (!t->specials) return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
    n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        int ty = t->tok[id].type;
        if ((ty == LGPU_TOKEN_CONTROL || ty == LGPU_TOKEN_USER_DEFINED || ty == LGPU_TOKEN_UNKNOWN) && t->tok[id].len)
            t->specials[n++] = id;
    }
    t->n_specials = n;
    qsort_r(t->specials, (size_t)n, sizeof *t->specials, cmp_special, t);

    t->spm_word_split = true;
    for (int32_t id = 0; id < t->n_vocab && t->spm_word_split; id++) {
        const unsigned char *s = (const unsigned char *)tok_text(t, id);
        for (uint32_t i = 1; i + 2 < t->tok[id].len; i++) {
            bool ws = s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81;
            bool prev_ws = i >= 3 && s[i - 3] == 0xE2 && s[i - 2] == 0x96 && s[i - 1] == 0x81;
            if (ws && !prev_ws) {
                t->spm_word_split = false;
                break;
            }
        }
    }
    if (t->eot < 0) {
        static const char *eot_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|eot|>"};
        for (size_t i = 0; i < sizeof eot_texts / sizeof *eot_texts && t->eot < 0; i++)
            t->eot = find_special_text(t, eot_texts[i]);
    }
    add_eog(t, t->eos);
    add_eog(t, t->eot);
    static const char *eog_texts[] = {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>",
                                      "<|endoftext|>", "<|end|>", "<end_of_turn>", "</s>"};
    for (size_t i = 0; i < sizeof eog_texts / sizeof *eog_texts; i++) add_eog(t, find_special_text(t, eog_texts[i]));
    return 0;
}

void lgpu_tokenizer_destroy(lgpu_tokenizer *t) {
    if (!t) return;
    free(t->tok);
    free(t->arena);
    free(t->htab);
    free(t->mkey);
    free(t->mrank);
    free(t->mres);
    if (t->re) pcre2_code_free((pcre2_code *)t->re);
    free(t->specials);
    free(t->chat_template);
    free(t);
}

static bool valid(const lgpu_tokenizer *t, int32_t id) { return t && id >= 0 && id < t->n_vocab; }

lgpu_tok_kind lgpu_tokenizer_kind(const lgpu_tokenizer *t) { return t->kind; }
int32_t lgpu_tokenizer_n_vocab(const lgpu_tokenizer *t) { return t->n_vocab; }
int32_t lgpu_tokenizer_bos(const lgpu_tokenizer *t) { return t->bos; }
int32_t lgpu_tokenizer_eos(const lgpu_tokenizer *t) { return t->eos; }
int32_t lgpu_tokenizer_eot(const lgpu_tokenizer *t) { return t->eot; }
int32_t lgpu_tokenizer_unk(const lgpu_tokenizer *t) { return t->unk; }
int32_t lgpu_tokenizer_pad(const lgpu_tokenizer *t) { return t->pad; }
bool lgpu_tokenizer_add_bos(const lgpu_tokenizer *t) { return t->add_bos && t->bos >= 0; }
bool lgpu_tokenizer_add_eos(const lgpu_tokenizer *t) { return t->add_eos && t->eos >= 0; }
const char *lgpu_tokenizer_chat_template(const lgpu_tokenizer *t) { return t->chat_template; }

bool lgpu_tokenizer_is_eog(const lgpu_tokenizer *t, int32_t id) {
    if (!valid(t, id)) return false;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return true;
    return false;
}

bool lgpu_tokenizer_is_control(const lgpu_tokenizer *t, int32_t id) {
    return valid(t, id) && t->tok[id].type == LGPU_TOKEN_CONTROL;
}

const char *lgpu_tokenizer_token_text(const lgpu_tokenizer *t, int32_t id) {
    return valid(t, id) ? t->arena + t->tok[id].disp_off : NULL;
}

lgpu_token_type lgpu_tokenizer_token_type(const lgpu_tokenizer *t, int32_t id) {
    return valid(t, id) ? (lgpu_token_type)t->tok[id].type : LGPU_TOKEN_UNUSED;
}

float lgpu_tokenizer_token_score(const lgpu_tokenizer *t, int32_t id) { return valid(t, id) ? t->tok[id].score : 0.0f; }

static bool disp_is(const lgpu_tokenizer *t, int32_t id, const char *s, size_t n) {
    return id >= 0 && t->tok[id].disp_len == n && !memcmp(t->arena + t->tok[id].disp_off, s, n);
}

int32_t lgpu_tokenizer_find(const lgpu_tokenizer *t, const char *text) {
    if (!t || !text) return -1;
    size_t n = strlen(text);
    int32_t id = lgpu_tok_lookup(t, text, n);
    if (disp_is(t, id, text, n)) return id;
    if (t->kind != LGPU_TOK_BPE) return -1;
    /* BPE normal tokens are indexed by their bytes: map the stored form back */
    char *raw = malloc(n + 1);
    size_t rn;
    id = -1;
    if (raw && lgpu_tok_gpt2_decode(text, n, raw, &rn) == 0) id = lgpu_tok_lookup(t, raw, rn);
    free(raw);
    return disp_is(t, id, text, n) ? id : -1;
}
