/* Lossy UTF-8 JSON strings and token pieces (see json_text.h). */
#include "json_text.h"

#include <stdlib.h>
#include <string.h>

size_t srv_utf8_seq_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
    else return 0;
    if (len > n) return 0;
    unsigned cp = c & (0xFF >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

json_t *srv_json_text(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t bad = 0;
    for (size_t i = 0; i < n;) {
        size_t k = srv_utf8_seq_len(u + i, n - i);
        if (!k || !u[i]) bad++, k = 1; /* NUL would end the C string too */
        i += k;
    }
    if (!bad) return json_stringn(s, n);
    char *out = malloc(n + bad * 2 + 1), *p = out;
    if (!out) return json_string("");
    for (size_t i = 0; i < n;) {
        size_t k = srv_utf8_seq_len(u + i, n - i);
        if (!k || !u[i]) {
            memcpy(p, "\xEF\xBF\xBD", 3);
            p += 3;
            i++;
        } else {
            memcpy(p, s + i, k);
            p += k;
            i += k;
        }
    }
    json_t *j = json_stringn(out, (size_t)(p - out));
    free(out);
    return j ? j : json_string("");
}

char *srv_token_piece(const lgpu_tokenizer *tok, int32_t id, size_t *len) {
    size_t cap = 64, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    int st = lgpu_tokenizer_piece(tok, id, false, buf, cap - 1, &n);
    if (st == LGPU_EFULL) {
        char *p = realloc(buf, n + 1);
        if (!p) {
            free(buf);
            return NULL;
        }
        buf = p;
        st = lgpu_tokenizer_piece(tok, id, false, buf, n, &n);
    }
    if (st) n = 0;
    buf[n] = 0;
    *len = n;
    return buf;
}

int srv_json_depth(const char *s, size_t n) {
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max) max = depth;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return max;
}

json_t *srv_json_bytes(const char *s, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_integer((unsigned char)s[i]));
    return a;
}

int srv_text_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        while (c < *len + n + 1) c *= 2;
        char *p = realloc(*buf, c);
        if (!p) return -1;
        *buf = p;
        *cap = c;
    }
    if (n) memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
    return 0;
}
