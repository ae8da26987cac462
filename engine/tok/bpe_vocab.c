/* Building a byte-level BPE vocabulary: tokens arrive in GPT-2's mapped form
 * ("ĠHello") and are indexed by their raw bytes; merges "A B" become
 * (id A, id B) -> id AB. Shared by the GGUF and tokenizer.json loaders. */
#include "tok/tok_internal.h"

#include <stdlib.h>
#include <string.h>

int lgpu_tok_bpe_set_token(lgpu_tokenizer *t, int32_t id, const char *text, size_t len, int type) {
    if (type != LGPU_TOKEN_NORMAL && type != LGPU_TOKEN_UNUSED)
        return lgpu_tok_set(t, id, text, len, NULL, 0, 0.0f, type); /* control / user-defined: raw text */
    char small[256], *raw = len <= sizeof small ? small : malloc(len);
    if (!raw) return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
    size_t rn;
    int rc;
    if (lgpu_tok_gpt2_decode(text, len, raw, &rn) == 0)
        rc = lgpu_tok_set(t, id, raw, rn, text, len, 0.0f, type);
    else /* not in the byte mapping (some converters store such tokens raw): keep as is */
        rc = lgpu_tok_set(t, id, text, len, NULL, 0, 0.0f, type);
    if (raw != small) free(raw);
    return rc;
}

static int32_t lookup_mapped(const lgpu_tokenizer *t, const char *s, size_t n, char *raw) {
    size_t rn;
    if (lgpu_tok_gpt2_decode(s, n, raw, &rn)) return lgpu_tok_lookup(t, s, n);
    return lgpu_tok_lookup(t, raw, rn);
}

int lgpu_tok_bpe_add_merge(lgpu_tokenizer *t, const char *a, size_t an, const char *b, size_t bn, bool *skipped) {
    char small[512], *raw = an + bn <= sizeof small ? small : malloc(an + bn);
    if (!raw) return lgpu_set_error(LGPU_ENOMEM, "tokenizer: out of memory");
    int32_t l = lookup_mapped(t, a, an, raw), r = lookup_mapped(t, b, bn, raw), m = -1;
    if (l >= 0 && r >= 0) {
        /* fits: a token's raw bytes are never longer than its mapped form */
        uint32_t ln = t->tok[l].len, rn = t->tok[r].len;
        memcpy(raw, tok_text(t, l), ln);
        memcpy(raw + ln, tok_text(t, r), rn);
        m = lgpu_tok_lookup(t, raw, ln + rn);
    }
    if (raw != small) free(raw);
    *skipped = m < 0;
    /* a merge whose parts or result are not tokens can never fire; it still
     * takes its rank so later ranks keep their numbers */
    return m < 0 ? lgpu_tok_add_merge(t, -1, -1, -1) : lgpu_tok_add_merge(t, l, r, m);
}

int lgpu_tok_bpe_add_merge_line(lgpu_tokenizer *t, const char *s, size_t n, bool *skipped) {
    /* "A B": split at the first space after the first character (llama.cpp) */
    const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;
    if (!sp) return lgpu_set_error(LGPU_EFORMAT, "tokenizer: merge \"%.*s\" is not \"A B\"", (int)(n > 64 ? 64 : n), s);
    return lgpu_tok_bpe_add_merge(t, s, (size_t)(sp - s), sp + 1, n - (size_t)(sp - s) - 1, skipped);
}
