/* JSONL lines: reading a file line by line, and turning one line into a JSON
 * object or a sentence that says why it is not one. */
#ifndef LGPU_TRAIN_JSONL_H
#define LGPU_TRAIN_JSONL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct lgpu_jsonl_reader {
    FILE *f;
    const char *path;
    char *buf;
    size_t cap;
    uint64_t line_no; /* 1-based number of the line last returned */
} lgpu_jsonl_reader;

/* LGPU_ENOTFOUND / LGPU_EIO with the path and strerror. */
int lgpu_jsonl_open(lgpu_jsonl_reader *r, const char *path);
/* The next line without its "\n" (and "\r" before it; a UTF-8 byte-order
 * mark at the start of the file is dropped): 1 and *line / *len, 0 at the
 * end, or a negative status (LGPU_EIO, LGPU_ENOMEM). *line stays valid until
 * the next call. */
int lgpu_jsonl_next(lgpu_jsonl_reader *r, const char **line, size_t *len);
void lgpu_jsonl_close(lgpu_jsonl_reader *r);

/* Only spaces, tabs and carriage returns (or nothing). */
bool lgpu_jsonl_blank(const char *s, size_t n);

/* Parses a line into a JSON object (*obj, a new reference). When the line is
 * not one, *obj is NULL and `why` gets the problem: invalid UTF-8 (with its
 * byte), invalid JSON (jansson's text and column) or not an object. On
 * invalid UTF-8 *obj may still be set to the object parsed from a copy with
 * the bad bytes replaced, only so that the caller can name its "id".
 * Returns 0 when the line is a valid object, 1 when it is not, LGPU_ENOMEM. */
int lgpu_jsonl_parse(const char *s, size_t n, json_t **obj, char *why, size_t why_cap);

/* The first byte offset where s[0..n) is not UTF-8 (overlong forms,
 * surrogates and code points past U+10FFFF count as invalid), or n. */
size_t lgpu_utf8_invalid_at(const char *s, size_t n);

/* "string", "integer", ... for messages. */
const char *lgpu_json_type_name(const json_t *v);

#endif
