/* Stop-string matcher for streaming (see sampler.h).
 *
 * Why searching from the previous safe_len is enough: every position p below
 * it had text[p..len) neither containing a stop string nor being a prefix of
 * one, so no continuation of the text can make a stop string start at p. */
#include "lgpu/sampler.h"

#include <stdlib.h>
#include <string.h>

struct lgpu_stop {
    int n;
    char **s;
    size_t *len;
};

void lgpu_stop_destroy(lgpu_stop *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) free(st->s[i]);
    free(st->s);
    free(st->len);
    free(st);
}

int lgpu_stop_create(const char *const *stops, int n, lgpu_stop **out) {
    if (!out || n < 0 || (n > 0 && !stops)) return lgpu_set_error(LGPU_EINVAL, "lgpu_stop_create: bad argument (n %d)", n);
    *out = NULL;
    lgpu_stop *st = calloc(1, sizeof *st);
    if (!st) return lgpu_set_error(LGPU_ENOMEM, "lgpu_stop_create: out of memory");
    if (n > 0) {
        st->s = calloc((size_t)n, sizeof *st->s);
        st->len = calloc((size_t)n, sizeof *st->len);
        if (!st->s || !st->len) goto oom;
    }
    /* keep the caller's indices: an empty/NULL entry stays as a never-matching slot */
    for (int i = 0; i < n; i++, st->n++) {
        const char *src = stops[i] ? stops[i] : "";
        st->len[i] = strlen(src);
        if (!(st->s[i] = strdup(src))) goto oom;
    }
    *out = st;
    return 0;
oom:
    lgpu_stop_destroy(st);
    return lgpu_set_error(LGPU_ENOMEM, "lgpu_stop_create: out of memory");
}

int lgpu_stop_scan(const lgpu_stop *st, const char *text, size_t len, size_t from, lgpu_stop_result *r) {
    if (!st || !r || (len && !text) || from > len)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_stop_scan: bad argument (len %zu, from %zu)", len, from);
    r->stop_index = -1;
    r->stop_pos = len;
    r->safe_len = len;
    for (int i = 0; i < st->n; i++) {
        if (!st->len[i]) continue;
        const char *hit = memmem(text + from, len - from, st->s[i], st->len[i]);
        if (hit && (size_t)(hit - text) < r->stop_pos) {
            r->stop_pos = (size_t)(hit - text);
            r->stop_index = i;
        }
    }
    if (r->stop_index >= 0) {
        r->safe_len = r->stop_pos;
        return 1;
    }
    /* hold back the longest tail that some stop string starts with */
    size_t hold = 0;
    for (int i = 0; i < st->n; i++) {
        size_t k = st->len[i] ? st->len[i] - 1 : 0;
        if (k > len - from) k = len - from;
        for (; k > hold; k--)
            if (!memcmp(text + len - k, st->s[i], k)) {
                hold = k;
                break;
            }
    }
    r->safe_len = len - hold;
    return 0;
}
