/* JSON syntax check for the json_valid metric. */
#ifndef LGPU_EVAL_JSON_CHECK_H
#define LGPU_EVAL_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* *valid: text[0..n) is exactly one JSON text (RFC 8259), whitespace around
 * it allowed. Returns 0, or LGPU_ENOMEM. */
int lgpu_json_check(const char *text, size_t n, bool *valid);

#endif
