/* Whether a text is one JSON text (json_check.h): RFC 8259's grammar, read
 * with an explicit stack so that nesting depth costs memory, not C stack.
 * Numbers are checked for their syntax only (no range: 1e400 and 30-digit
 * integers are valid JSON), strings for UTF-8, escapes and control
 * characters; a lone surrogate escape is accepted, as the RFC allows. */
#include "eval/json_check.h"

#include <stdint.h>
#include <stdlib.h>

#include "core/grow.h"

typedef struct jp {
    const unsigned char *s;
    size_t n, i;
} jp;

static void ws(jp *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static bool digit(jp *p) { return p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9'; }

static bool number(jp *p) {
    if (p->i < p->n && p->s[p->i] == '-') p->i++;
    if (!digit(p)) return false;
    if (p->s[p->i] == '0') p->i++;
    else
        while (digit(p)) p->i++;
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (!digit(p)) return false;
        while (digit(p)) p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (!digit(p)) return false;
        while (digit(p)) p->i++;
    }
    return true;
}

static bool hex(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* One UTF-8 character of 2-4 bytes at p->i (lead byte >= 0x80). */
static bool utf8_char(jp *p) {
    unsigned c = p->s[p->i];
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
    else return false;
    if (len > p->n - p->i) return false;
    for (size_t k = 1; k < len; k++) {
        if ((p->s[p->i + k] & 0xC0) != 0x80) return false;
        cp = cp << 6 | (p->s[p->i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p->i += len;
    return true;
}

static bool string(jp *p) {
    if (p->i >= p->n || p->s[p->i] != '"') return false;
    p->i++;
    while (p->i < p->n) {
        unsigned c = p->s[p->i];
        if (c == '"') {
            p->i++;
            return true;
        }
        if (c < 0x20) return false;
        if (c == '\\') {
            if (++p->i >= p->n) return false;
            c = p->s[p->i++];
            if (c == 'u') {
                for (int k = 0; k < 4; k++, p->i++)
                    if (p->i >= p->n || !hex(p->s[p->i])) return false;
            } else if (!strchr("\"\\/bfnrt", (int)c) || !c) {
                return false;
            }
        } else if (c >= 0x80) {
            if (!utf8_char(p)) return false;
        } else {
            p->i++;
        }
    }
    return false;
}

static bool literal(jp *p, const char *word) {
    size_t n = strlen(word);
    if (p->n - p->i < n || memcmp(p->s + p->i, word, n)) return false;
    p->i += n;
    return true;
}

int lgpu_json_check(const char *text, size_t n, bool *valid) {
    jp p = {(const unsigned char *)text, n, 0};
    char *stack = NULL; /* '{' or '[' per open container */
    size_t depth = 0, cap = 0;
    bool ok = false;
    int rc = 0;
    for (;;) {
        /* a value is expected */
        ws(&p);
        if (p.i >= p.n) goto out;
        unsigned char c = p.s[p.i];
        if (c == '{' || c == '[') {
            if ((rc = LGPU_GROW(stack, cap, depth + 1, 64, "JSON check stack"))) goto out;
            stack[depth++] = (char)c;
            p.i++;
            ws(&p);
            if (p.i < p.n && p.s[p.i] == (c == '{' ? '}' : ']')) {
                p.i++;
                depth--;
            } else if (c == '{') {
                if (!string(&p)) goto out;
                ws(&p);
                if (p.i >= p.n || p.s[p.i++] != ':') goto out;
                continue;
            } else {
                continue;
            }
        } else if (c == '"') {
            if (!string(&p)) goto out;
        } else if (c == 't' || c == 'f' || c == 'n') {
            if (!literal(&p, c == 't' ? "true" : c == 'f' ? "false" : "null")) goto out;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (!number(&p)) goto out;
        } else {
            goto out;
        }
        /* after a value: close containers, or find the next member */
        for (;;) {
            ws(&p);
            if (!depth) {
                ok = p.i == p.n;
                goto out;
            }
            if (p.i >= p.n) goto out;
            char top = stack[depth - 1];
            c = p.s[p.i++];
            if (c == (top == '{' ? '}' : ']')) {
                depth--;
                continue;
            }
            if (c != ',') goto out;
            if (top == '{') {
                ws(&p);
                if (!string(&p)) goto out;
                ws(&p);
                if (p.i >= p.n || p.s[p.i++] != ':') goto out;
            }
            break;
        }
    }
out:
    free(stack);
    *valid = ok && !rc;
    return rc;
}
