/* JSONL lines (jsonl.h). UTF-8 is checked before jansson sees the line:
 * jansson rejects invalid UTF-8 too, but only as "unable to decode byte",
 * and then the line's "id" is lost; checking first lets the message say what
 * is wrong and still name the example. */
#include "train/jsonl.h"

#include "lgpu/lgpu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int lgpu_jsonl_open(lgpu_jsonl_reader *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->f = fopen(path, "rb");
    if (!r->f)
        return lgpu_set_error(errno == ENOENT ? LGPU_ENOTFOUND : LGPU_EIO, "%s: %s", path, strerror(errno));
    return 0;
}

int lgpu_jsonl_next(lgpu_jsonl_reader *r, const char **line, size_t *len) {
    errno = 0;
    ssize_t n = getline(&r->buf, &r->cap, r->f);
    if (n < 0) {
        if (ferror(r->f) || errno == ENOMEM)
            return lgpu_set_error(errno == ENOMEM ? LGPU_ENOMEM : LGPU_EIO, "%s: line %llu: %s", r->path,
                                  (unsigned long long)r->line_no + 1, strerror(errno ? errno : EIO));
        return 0;
    }
    char *s = r->buf;
    if (r->line_no == 0 && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3, n -= 3;
    r->line_no++;
    if (n > 0 && s[n - 1] == '\n') n--;
    if (n > 0 && s[n - 1] == '\r') n--;
    *line = s;
    *len = (size_t)n;
    return 1;
}

void lgpu_jsonl_close(lgpu_jsonl_reader *r) {
    if (r->f) fclose(r->f);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

bool lgpu_jsonl_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

size_t lgpu_utf8_invalid_at(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
        else return i; /* a continuation byte or 0xF8..0xFF as a lead */
        if (len > n - i) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += len;
    }
    return n;
}

const char *lgpu_json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* Duplicate keys are refused: which of two "output"s is meant is a question
 * for whoever wrote the data, not for the loader. Any JSON value is parsed,
 * so that a line holding a string or a number is named as such. */
#define PARSE_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

int lgpu_jsonl_parse(const char *s, size_t n, json_t **obj, char *why, size_t why_cap) {
    *obj = NULL;
    size_t bad = lgpu_utf8_invalid_at(s, n);
    if (bad < n) {
        snprintf(why, why_cap, "invalid UTF-8 at byte %zu of the line (0x%02X)", bad + 1, (unsigned char)s[bad]);
        char *copy = malloc(n ? n : 1);
        if (!copy) return lgpu_set_error(LGPU_ENOMEM, "dataset: out of memory");
        memcpy(copy, s, n);
        for (size_t i = bad; i < n; i += 1) {
            size_t next = lgpu_utf8_invalid_at(copy + i, n - i);
            if (next == n - i) break;
            i += next;
            copy[i] = '?';
        }
        json_t *v = json_loadb(copy, n, PARSE_FLAGS, NULL);
        free(copy);
        if (json_is_object(v)) *obj = v;
        else json_decref(v);
        return 1;
    }
    json_error_t err;
    json_t *v = json_loadb(s, n, PARSE_FLAGS, &err);
    if (!v) {
        snprintf(why, why_cap, "invalid JSON at column %d: %s", err.column, err.text);
        return 1;
    }
    if (!json_is_object(v)) {
        snprintf(why, why_cap, "not a JSON object but %s", lgpu_json_type_name(v));
        json_decref(v);
        return 1;
    }
    *obj = v;
    return 0;
}
