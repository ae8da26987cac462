/* safetensors reader: JSON header (jansson) validated entry by entry against
 * the mapped data section. */
#include "format/safetensors.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "format/mapfile.h"
#include "format/name_index.h"

#define MAX_HEADER (100u << 20) /* the format's own limit is 100 MB */

struct lgpu_safetensors {
    char *path;
    const char *fname;
    lgpu_mapfile map;
    lgpu_st_tensor *t;
    int64_t n;
    lgpu_name_index ix;
};

static const struct { const char *name; int size, type; } dtypes[] = {
    {"F32", 4, LGPU_TYPE_F32},  {"F16", 2, LGPU_TYPE_F16}, {"BF16", 2, LGPU_TYPE_BF16}, {"F64", 8, -1},
    {"I64", 8, -1}, {"U64", 8, -1}, {"I32", 4, -1}, {"U32", 4, -1}, {"I16", 2, -1}, {"U16", 2, -1},
    {"I8", 1, -1},  {"U8", 1, -1},  {"BOOL", 1, -1}, {"F8_E4M3", 1, -1}, {"F8_E5M2", 1, -1},
};

int lgpu_st_dtype_size(const char *dtype) {
    for (size_t i = 0; dtype && i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(dtype, dtypes[i].name)) return dtypes[i].size;
    return 0;
}

static int cmp_data(const void *a, const void *b) {
    const lgpu_st_tensor *x = *(const lgpu_st_tensor *const *)a, *y = *(const lgpu_st_tensor *const *)b;
    return (const uint8_t *)x->data < (const uint8_t *)y->data ? -1 : (const uint8_t *)x->data > (const uint8_t *)y->data;
}

static int parse_entry(lgpu_safetensors *s, const char *name, json_t *v, const uint8_t *data, uint64_t data_size,
                       lgpu_st_tensor *t) {
    const char *f = s->fname;
    if (!json_is_object(v)) return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s': header entry is not an object", f, name);
    json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"), *offs = json_object_get(v, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(shape) || !json_is_array(offs) || json_array_size(offs) != 2)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s': needs string dtype, array shape and data_offsets [begin, end]",
                              f, name);
    int es = 0;
    t->type = -1;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(json_string_value(dt), dtypes[i].name)) {
            es = dtypes[i].size;
            t->type = dtypes[i].type;
            snprintf(t->dtype, sizeof t->dtype, "%s", dtypes[i].name);
        }
    if (!es) return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: tensor '%s': unknown dtype '%.16s'", f, name, json_string_value(dt));
    if (json_array_size(shape) > LGPU_ST_MAX_DIMS)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s': %zu dimensions (max %d)", f, name, json_array_size(shape),
                              LGPU_ST_MAX_DIMS);
    t->n_dims = (uint32_t)json_array_size(shape);
    uint64_t nelem = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        json_t *e = json_array_get(shape, d);
        if (!json_is_integer(e) || json_integer_value(e) < 0)
            return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s': shape[%u] is not a non-negative integer", f, name, d);
        t->shape[d] = json_integer_value(e);
        if (__builtin_mul_overflow(nelem, (uint64_t)t->shape[d], &nelem))
            return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s': element count overflows", f, name);
    }
    json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
    if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 || json_integer_value(e) < json_integer_value(b))
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s': data_offsets are not integers 0 <= begin <= end", f, name);
    uint64_t begin = (uint64_t)json_integer_value(b), end = (uint64_t)json_integer_value(e), nb;
    if (end > data_size)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s': data [%" PRIu64 ", %" PRIu64 ") extends past end of file (data section is %" PRIu64 " bytes)",
                              f, name, begin, end, data_size);
    if (__builtin_mul_overflow(nelem, (uint64_t)es, &nb) || nb != end - begin)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s': %" PRIu64 " bytes of data for %" PRIu64 " %s elements (expected %" PRIu64 ")",
                              f, name, end - begin, nelem, t->dtype, nelem * (uint64_t)es);
    t->data = data + begin;
    t->nbytes = (size_t)nb;
    return 0;
}

static int parse(lgpu_safetensors *s) {
    const char *f = s->fname;
    uint64_t hlen;
    if (s->map.size < 8) return lgpu_set_error(LGPU_EFORMAT, "%s: truncated: %" PRIu64 " bytes, no safetensors header", f, s->map.size);
    memcpy(&hlen, s->map.data, 8);
    if (hlen > MAX_HEADER || hlen > s->map.size - 8)
        return lgpu_set_error(LGPU_EFORMAT, "%s: header length %" PRIu64 " exceeds the file (%" PRIu64 " bytes) or the 100 MB limit",
                              f, hlen, s->map.size);
    json_error_t err;
    json_t *root = json_loadb((const char *)s->map.data + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &err);
    if (!root) return lgpu_set_error(LGPU_EFORMAT, "%s: header JSON: %s (at byte %d)", f, err.text, err.position);
    int st = 0;
    if (!json_is_object(root)) st = lgpu_set_error(LGPU_EFORMAT, "%s: header JSON is not an object", f);
    size_t n = st ? 0 : json_object_size(root);
    if (!st && !(s->t = calloc(n ? n : 1, sizeof *s->t))) st = lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", f);
    if (!st) st = lgpu_name_index_init(&s->ix, (int64_t)n);
    const uint8_t *data = s->map.data + 8 + hlen;
    uint64_t data_size = s->map.size - 8 - hlen;
    const char *key;
    json_t *v;
    if (!st) json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) continue;
        lgpu_st_tensor *t = &s->t[s->n];
        if (!(t->name = strdup(key))) st = lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", f);
        if (!st) s->n++;
        if (!st) st = parse_entry(s, key, v, data, data_size, t);
        if (st) break;
        lgpu_name_index_put(&s->ix, t->name, strlen(t->name), s->n - 1); /* keys are unique (JSON_REJECT_DUPLICATES) */
    }
    json_decref(root);
    if (st || s->n < 2) return st;
    const lgpu_st_tensor **order = malloc((size_t)s->n * sizeof *order);
    if (!order) return lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", f);
    for (int64_t i = 0; i < s->n; i++) order[i] = &s->t[i];
    qsort(order, (size_t)s->n, sizeof *order, cmp_data);
    for (int64_t i = 1; i < s->n && !st; i++)
        if ((const uint8_t *)order[i - 1]->data + order[i - 1]->nbytes > (const uint8_t *)order[i]->data)
            st = lgpu_set_error(LGPU_EFORMAT, "%s: data of tensors '%s' and '%s' overlap", f, order[i - 1]->name,
                                order[i]->name);
    free(order);
    return st;
}

int lgpu_safetensors_create(const char *path, lgpu_safetensors **out) {
    if (!out || !path) return lgpu_set_error(LGPU_EINVAL, "lgpu_safetensors_create: NULL argument");
    *out = NULL;
    lgpu_safetensors *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", path);
    }
    s->fname = lgpu_path_base(s->path);
    int st = lgpu_mapfile_create(path, &s->map);
    if (!st) st = parse(s);
    if (st) {
        lgpu_safetensors_destroy(s);
        return st;
    }
    *out = s;
    return 0;
}

void lgpu_safetensors_destroy(lgpu_safetensors *s) {
    if (!s) return;
    for (int64_t i = 0; i < s->n; i++) free((char *)s->t[i].name);
    free(s->t);
    lgpu_name_index_destroy(&s->ix);
    lgpu_mapfile_destroy(&s->map);
    free(s->path);
    free(s);
}

const char *lgpu_safetensors_path(const lgpu_safetensors *s) { return s->path; }
int64_t lgpu_safetensors_n_tensors(const lgpu_safetensors *s) { return s->n; }

const lgpu_st_tensor *lgpu_safetensors_tensor_at(const lgpu_safetensors *s, int64_t i) {
    return s && i >= 0 && i < s->n ? &s->t[i] : NULL;
}

const lgpu_st_tensor *lgpu_safetensors_find(const lgpu_safetensors *s, const char *name) {
    if (!s || !name) return NULL;
    int64_t i = lgpu_name_index_get(&s->ix, name, strlen(name));
    return i >= 0 ? &s->t[i] : NULL;
}
