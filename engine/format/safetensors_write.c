/* safetensors writer (format/safetensors_write.h). */
#include "format/safetensors_write.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/grow.h"

typedef struct entry {
    char *name;
    char dtype[12];
    uint32_t n_dims;
    int64_t shape[LGPU_ST_MAX_DIMS];
    void *data;
    size_t nbytes;
    int esize;
} entry;

struct lgpu_st_writer {
    entry *e;
    size_t n, cap;
    json_t *meta;
};

int lgpu_st_writer_create(lgpu_st_writer **out) {
    lgpu_st_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->meta = json_object())) {
        free(w);
        return lgpu_set_error(LGPU_ENOMEM, "safetensors writer");
    }
    *out = w;
    return 0;
}

void lgpu_st_writer_destroy(lgpu_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].data);
    }
    free(w->e);
    json_decref(w->meta);
    free(w);
}

int lgpu_st_writer_add(lgpu_st_writer *w, const char *name, const char *dtype, uint32_t n_dims, const int64_t *shape,
                       const void *data, size_t nbytes) {
    int esize = lgpu_st_dtype_size(dtype);
    if (!w || !name || !*name || !esize || n_dims > LGPU_ST_MAX_DIMS || !strcmp(name, "__metadata__"))
        return lgpu_set_error(LGPU_EINVAL, "safetensors writer: tensor '%s': bad name, dtype '%s' or %u dims",
                              name ? name : "", dtype ? dtype : "", n_dims);
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++) n *= (uint64_t)shape[d];
    if (n * (uint64_t)esize != nbytes)
        return lgpu_set_error(LGPU_EINVAL, "safetensors writer: tensor '%s': %zu bytes for %llu %s elements", name,
                              nbytes, (unsigned long long)n, dtype);
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->e[i].name, name))
            return lgpu_set_error(LGPU_EINVAL, "safetensors writer: tensor '%s' added twice", name);
    int st = LGPU_GROW(w->e, w->cap, w->n + 1, 16, "safetensors writer");
    if (st) return st;
    entry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    e->data = malloc(nbytes ? nbytes : 1);
    if (!e->name || !e->data) {
        free(e->name);
        free(e->data);
        return lgpu_set_error(LGPU_ENOMEM, "safetensors writer: tensor '%s'", name);
    }
    snprintf(e->dtype, sizeof e->dtype, "%s", dtype);
    e->n_dims = n_dims;
    if (n_dims) memcpy(e->shape, shape, n_dims * sizeof *shape);
    if (nbytes) memcpy(e->data, data, nbytes);
    e->nbytes = nbytes;
    e->esize = esize;
    w->n++;
    return 0;
}

int lgpu_st_writer_meta(lgpu_st_writer *w, const char *key, const char *value) {
    if (!w || !key || !value || json_object_set_new(w->meta, key, json_string(value)))
        return lgpu_set_error(LGPU_EINVAL, "safetensors writer: metadata '%s'", key ? key : "");
    return 0;
}

static int by_size_then_name(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->esize != y->esize) return y->esize - x->esize;
    return strcmp(x->name, y->name);
}

int lgpu_st_writer_write(lgpu_st_writer *w, const char *path) {
    if (!w || !path) return lgpu_set_error(LGPU_EINVAL, "safetensors writer: NULL argument");
    qsort(w->e, w->n, sizeof *w->e, by_size_then_name);
    json_t *h = json_object();
    if (!h) return lgpu_set_error(LGPU_ENOMEM, "safetensors writer");
    int st = 0;
    if (json_object_size(w->meta)) json_object_set(h, "__metadata__", w->meta);
    size_t off = 0;
    for (size_t i = 0; i < w->n && !st; i++) {
        const entry *e = &w->e[i];
        json_t *shape = json_array();
        for (uint32_t d = 0; d < e->n_dims; d++) json_array_append_new(shape, json_integer(e->shape[d]));
        json_t *o = json_pack("{s:s, s:o, s:[I, I]}", "dtype", e->dtype, "shape", shape, "data_offsets",
                              (json_int_t)off, (json_int_t)(off + e->nbytes));
        if (!o || json_object_set_new(h, e->name, o)) st = lgpu_set_error(LGPU_ENOMEM, "safetensors writer");
        off += e->nbytes;
    }
    char *text = st ? NULL : json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!st && !text) st = lgpu_set_error(LGPU_ENOMEM, "safetensors writer: header");
    if (st) return st;
    size_t len = strlen(text), padded = (len + 7) / 8 * 8;
    uint8_t n8[8];
    for (int i = 0; i < 8; i++) n8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    lgpu_atomic_file af;
    st = lgpu_atomic_file_begin(&af, path);
    if (!st) st = lgpu_atomic_file_write(&af, n8, 8);
    if (!st) st = lgpu_atomic_file_write(&af, text, len);
    for (size_t i = len; !st && i < padded; i++) st = lgpu_atomic_file_write(&af, " ", 1);
    for (size_t i = 0; !st && i < w->n; i++) st = lgpu_atomic_file_write(&af, w->e[i].data, w->e[i].nbytes);
    free(text);
    if (!st) return lgpu_atomic_file_commit(&af);
    lgpu_atomic_file_abort(&af);
    return st;
}
