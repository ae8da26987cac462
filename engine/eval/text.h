/* Text helpers of the metrics: Python's notion of whitespace, Unicode
 * lowercasing through PCRE2, and lists of word tokens (pointers into a
 * text). */
#ifndef LGPU_EVAL_TEXT_H
#define LGPU_EVAL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Length in bytes of a whitespace character at s[0..n) as Python's
 * str.isspace() has it (ASCII \t\n\v\f\r, \x1c-\x1f, space, U+0085, U+00A0,
 * U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000), else 0. */
size_t lgpu_txt_space_len(const char *s, size_t n);

/* s without leading and trailing whitespace (Python's str.strip()). */
void lgpu_txt_strip(const char **s, size_t *n);

/* s lowercased (Unicode simple case mapping, PCRE2's tables; bytes that are
 * not UTF-8 kept as they are). *out is malloc'd, NUL-terminated. */
int lgpu_txt_lower(const char *s, char **out, size_t *out_len);

/* Replaces every match of a PCRE2 pattern (UTF, UCP) in s by `repl`
 * (no substitutions in it). *out is malloc'd. */
int lgpu_txt_replace(const char *pattern, const char *s, size_t n, const char *repl, char **out, size_t *out_len);

typedef struct lgpu_txt_tok {
    const char *s;
    size_t n;
} lgpu_txt_tok;

typedef struct lgpu_txt_toks {
    lgpu_txt_tok *v;
    size_t n, cap;
} lgpu_txt_toks;

/* Appends the whitespace-separated words of s (Python's str.split()). */
int lgpu_txt_split(const char *s, size_t n, lgpu_txt_toks *out);
void lgpu_txt_toks_free(lgpu_txt_toks *t);

#endif
