/* Text helpers (text.h). The PCRE2 patterns are compiled on each call: the
 * metrics score a few thousand short texts at most, and a compiled-once
 * cache would be global state to guard for no measurable gain. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "eval/text.h"

#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "lgpu/lgpu.h"

size_t lgpu_txt_space_len(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    if (!n) return 0;
    unsigned c = s[0];
    if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return 1;
    if (c == 0xC2 && n >= 2) return s[1] == 0x85 || s[1] == 0xA0 ? 2 : 0;
    if (c == 0xE1 && n >= 3) return s[1] == 0x9A && s[2] == 0x80 ? 3 : 0; /* U+1680 */
    if (c == 0xE2 && n >= 3) {
        unsigned cp = (c & 0x0Fu) << 12 | (s[1] & 0x3Fu) << 6 | (s[2] & 0x3Fu);
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        return (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ? 3 : 0;
    }
    if (c == 0xE3 && n >= 3) return s[1] == 0x80 && s[2] == 0x80 ? 3 : 0; /* U+3000 */
    return 0;
}

/* Length of a whitespace character ending at s[n-1], else 0. */
static size_t space_len_before(const char *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (lgpu_txt_space_len(s + n - k, k) == k) return k;
    return 0;
}

void lgpu_txt_strip(const char **s, size_t *n) {
    size_t k;
    while ((k = lgpu_txt_space_len(*s, *n))) *s += k, *n -= k;
    while ((k = space_len_before(*s, *n))) *n -= k;
}

/* pcre2_substitute of every match, growing the output as PCRE2 asks. */
static int substitute(const char *pattern, const char *s, size_t n, const char *repl, uint32_t sub_opts, char **out,
                      size_t *out_len) {
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
    if (!re) return lgpu_set_error(LGPU_EINVAL, "metrics: pattern %s does not compile (%d)", pattern, err);
    PCRE2_SIZE cap = n + n / 2 + 16;
    int rc = 0;
    for (int tries = 0; tries < 2; tries++) {
        char *buf = malloc(cap + 1);
        if (!buf) {
            rc = lgpu_set_error(LGPU_ENOMEM, "metrics: out of memory");
            break;
        }
        PCRE2_SIZE len = cap + 1;
        int m = pcre2_substitute(re, (PCRE2_SPTR)s, n, 0,
                                 sub_opts | PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH, NULL, NULL,
                                 (PCRE2_SPTR)repl, PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)buf, &len);
        if (m >= 0) {
            *out = buf;
            if (out_len) *out_len = len;
            pcre2_code_free(re);
            return 0;
        }
        free(buf);
        if (m != PCRE2_ERROR_NOMEMORY || tries) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = lgpu_set_error(LGPU_EINVAL, "metrics: substitution failed: %s", (const char *)msg);
            break;
        }
        cap = len; /* the length PCRE2 needs, with its NUL */
    }
    pcre2_code_free(re);
    return rc;
}

int lgpu_txt_lower(const char *s, char **out, size_t *out_len) {
    /* \L forces lower case on the replacement: PCRE2 maps each character
     * through its Unicode "other case" when UCP is on */
    return substitute("(?s).+", s, strlen(s), "\\L$0", PCRE2_SUBSTITUTE_EXTENDED, out, out_len);
}

int lgpu_txt_replace(const char *pattern, const char *s, size_t n, const char *repl, char **out, size_t *out_len) {
    return substitute(pattern, s, n, repl, PCRE2_SUBSTITUTE_LITERAL, out, out_len);
}

int lgpu_txt_split(const char *s, size_t n, lgpu_txt_toks *out) {
    size_t i = 0;
    while (i < n) {
        size_t k = lgpu_txt_space_len(s + i, n - i);
        if (k) {
            i += k;
            continue;
        }
        size_t start = i;
        while (i < n && !lgpu_txt_space_len(s + i, n - i)) i++;
        if (LGPU_GROW(out->v, out->cap, out->n + 1, 16, "metric tokens")) return LGPU_ENOMEM;
        out->v[out->n++] = (lgpu_txt_tok){s + start, i - start};
    }
    return 0;
}

void lgpu_txt_toks_free(lgpu_txt_toks *t) {
    free(t->v);
    memset(t, 0, sizeof *t);
}
