/* Open-addressing (linear probing) name -> index hash. */
#include "format/name_index.h"

#include <stdlib.h>
#include <string.h>

#include "lgpu/lgpu.h"

struct lgpu_name_slot {
    const char *name; /* NULL: empty */
    size_t len;
    int64_t idx;
};

static uint64_t hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

int lgpu_name_index_init(lgpu_name_index *ix, int64_t n) {
    uint64_t cap = 16;
    while (cap < (uint64_t)(n < 0 ? 0 : n) * 2) cap <<= 1;
    ix->slots = calloc(cap, sizeof *ix->slots);
    ix->mask = cap - 1;
    if (!ix->slots) return lgpu_set_error(LGPU_ENOMEM, "name index: out of memory (%llu slots)", (unsigned long long)cap);
    return 0;
}

void lgpu_name_index_destroy(lgpu_name_index *ix) {
    if (!ix) return;
    free(ix->slots);
    ix->slots = NULL;
    ix->mask = 0;
}

static struct lgpu_name_slot *probe(const lgpu_name_index *ix, const char *name, size_t len) {
    for (uint64_t i = hash(name, len) & ix->mask;; i = (i + 1) & ix->mask) {
        struct lgpu_name_slot *s = &ix->slots[i];
        if (!s->name || (s->len == len && !memcmp(s->name, name, len))) return s;
    }
}

int64_t lgpu_name_index_put(lgpu_name_index *ix, const char *name, size_t len, int64_t idx) {
    struct lgpu_name_slot *s = probe(ix, name, len);
    if (s->name) return s->idx;
    s->name = name;
    s->len = len;
    s->idx = idx;
    return -1;
}

int64_t lgpu_name_index_get(const lgpu_name_index *ix, const char *name, size_t len) {
    if (!ix->slots) return -1;
    const struct lgpu_name_slot *s = probe(ix, name, len);
    return s->name ? s->idx : -1;
}
