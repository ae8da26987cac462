/* GGUF v3 writer: metadata and tensor list in memory, tensor data streamed.
 * Layout per the spec: header, KV pairs, tensor infos, zero padding to the
 * alignment, then each tensor's data at its aligned offset (padding after
 * every tensor, as ggml's writer does). Written to <path>.tmp, renamed on
 * success. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/grow.h"
#include "lgpu/gguf.h"

typedef struct wkv {
    char *key;
    int type;
    uint8_t raw[8];
    char *str;
    size_t str_len;
    int etype;
    uint64_t n;
    uint8_t *arr; /* numeric: n elements; STRING: n x (u64 len, bytes) as in the file */
    size_t arr_bytes;
} wkv;

typedef struct wtensor {
    char *name;
    int type;
    uint32_t n_dims;
    int64_t ne[4];
    const void *data;
    size_t nbytes;
    uint64_t offset;
} wtensor;

struct lgpu_gguf_writer {
    wkv *kv;
    int64_t n_kv;
    size_t cap_kv;
    wtensor *t;
    int64_t n_t;
    size_t cap_t;
    uint32_t alignment;
    /* streaming state */
    FILE *f;
    char *path, *tmp;
    int64_t cur;     /* tensor receiving data */
    size_t cur_done; /* its bytes written so far */
    uint64_t pos;    /* bytes written to the file */
    bool failed;
};

int lgpu_gguf_writer_create(lgpu_gguf_writer **out) {
    if (!out) return lgpu_set_error(LGPU_EINVAL, "lgpu_gguf_writer_create: out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out) return lgpu_set_error(LGPU_ENOMEM, "gguf writer: out of memory");
    (*out)->alignment = LGPU_GGUF_DEFAULT_ALIGNMENT;
    return 0;
}

static void free_kv(wkv *e) {
    free(e->key);
    free(e->str);
    free(e->arr);
}

static void abandon(lgpu_gguf_writer *w) {
    if (w->f) {
        fclose(w->f);
        w->f = NULL;
        if (w->tmp) unlink(w->tmp);
    }
    free(w->path);
    free(w->tmp);
    w->path = w->tmp = NULL;
}

void lgpu_gguf_writer_destroy(lgpu_gguf_writer *w) {
    if (!w) return;
    abandon(w);
    for (int64_t i = 0; i < w->n_kv; i++) free_kv(&w->kv[i]);
    for (int64_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

/* ---- metadata ---------------------------------------------------------- */

/* The entry for `key`, replaced in place if present, else appended. */
static int slot(lgpu_gguf_writer *w, const char *key, wkv **out) {
    if (!w || !key || !*key) return lgpu_set_error(LGPU_EINVAL, "gguf writer: NULL writer or empty key");
    if (strlen(key) > 65535) return lgpu_set_error(LGPU_EINVAL, "gguf writer: key longer than 65535 bytes");
    if (w->f) return lgpu_set_error(LGPU_EINVAL, "gguf writer: metadata %s set after begin", key);
    for (int64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            char *k = w->kv[i].key;
            w->kv[i].key = NULL;
            free_kv(&w->kv[i]);
            memset(&w->kv[i], 0, sizeof w->kv[i]);
            w->kv[i].key = k;
            *out = &w->kv[i];
            return 0;
        }
    int st = LGPU_GROW(w->kv, w->cap_kv, (size_t)w->n_kv + 1, 32, "gguf writer");
    if (st) return st;
    wkv *e = &w->kv[w->n_kv];
    memset(e, 0, sizeof *e);
    if (!(e->key = strdup(key))) return lgpu_set_error(LGPU_ENOMEM, "gguf writer: out of memory");
    w->n_kv++;
    *out = e;
    return 0;
}

static int set_scalar(lgpu_gguf_writer *w, const char *key, int type, const void *v) {
    wkv *e;
    int st = slot(w, key, &e);
    if (st) return st;
    e->type = type;
    memcpy(e->raw, v, lgpu_gguf_vtype_size(type));
    return 0;
}

int lgpu_gguf_set_u8(lgpu_gguf_writer *w, const char *k, uint8_t v) { return set_scalar(w, k, LGPU_GGUF_U8, &v); }
int lgpu_gguf_set_i8(lgpu_gguf_writer *w, const char *k, int8_t v) { return set_scalar(w, k, LGPU_GGUF_I8, &v); }
int lgpu_gguf_set_u16(lgpu_gguf_writer *w, const char *k, uint16_t v) { return set_scalar(w, k, LGPU_GGUF_U16, &v); }
int lgpu_gguf_set_i16(lgpu_gguf_writer *w, const char *k, int16_t v) { return set_scalar(w, k, LGPU_GGUF_I16, &v); }
int lgpu_gguf_set_u32(lgpu_gguf_writer *w, const char *k, uint32_t v) { return set_scalar(w, k, LGPU_GGUF_U32, &v); }
int lgpu_gguf_set_i32(lgpu_gguf_writer *w, const char *k, int32_t v) { return set_scalar(w, k, LGPU_GGUF_I32, &v); }
int lgpu_gguf_set_u64(lgpu_gguf_writer *w, const char *k, uint64_t v) { return set_scalar(w, k, LGPU_GGUF_U64, &v); }
int lgpu_gguf_set_i64(lgpu_gguf_writer *w, const char *k, int64_t v) { return set_scalar(w, k, LGPU_GGUF_I64, &v); }
int lgpu_gguf_set_f32(lgpu_gguf_writer *w, const char *k, float v) { return set_scalar(w, k, LGPU_GGUF_F32, &v); }
int lgpu_gguf_set_f64(lgpu_gguf_writer *w, const char *k, double v) { return set_scalar(w, k, LGPU_GGUF_F64, &v); }
int lgpu_gguf_set_bool(lgpu_gguf_writer *w, const char *k, bool v) {
    uint8_t b = v;
    return set_scalar(w, k, LGPU_GGUF_BOOL, &b);
}

static int set_str_n(lgpu_gguf_writer *w, const char *key, const char *v, size_t n) {
    wkv *e;
    int st = slot(w, key, &e);
    if (st) return st;
    e->type = LGPU_GGUF_STRING;
    if (!(e->str = malloc(n + 1))) return lgpu_set_error(LGPU_ENOMEM, "gguf writer: out of memory");
    if (n) memcpy(e->str, v, n);
    e->str[n] = 0;
    e->str_len = n;
    return 0;
}

int lgpu_gguf_set_str(lgpu_gguf_writer *w, const char *key, const char *v) {
    if (!v) return lgpu_set_error(LGPU_EINVAL, "gguf writer: NULL string for %s", key ? key : "?");
    return set_str_n(w, key, v, strlen(v));
}

static int set_arr_raw(lgpu_gguf_writer *w, const char *key, int etype, uint64_t n, const void *bytes, size_t nbytes) {
    wkv *e;
    int st = slot(w, key, &e);
    if (st) return st;
    e->type = LGPU_GGUF_ARRAY;
    e->etype = etype;
    e->n = n;
    e->arr_bytes = nbytes;
    if (!(e->arr = malloc(nbytes ? nbytes : 1))) return lgpu_set_error(LGPU_ENOMEM, "gguf writer: out of memory");
    if (nbytes) memcpy(e->arr, bytes, nbytes);
    return 0;
}

int lgpu_gguf_set_arr(lgpu_gguf_writer *w, const char *key, int etype, uint64_t n, const void *data) {
    size_t es = lgpu_gguf_vtype_size(etype);
    if (!es) return lgpu_set_error(LGPU_EINVAL, "gguf writer: %s: array element type %s is not numeric", key ? key : "?",
                                   lgpu_gguf_vtype_name(etype));
    if (n > SIZE_MAX / es || (n && !data)) return lgpu_set_error(LGPU_EINVAL, "gguf writer: %s: bad array", key ? key : "?");
    return set_arr_raw(w, key, etype, n, data, (size_t)n * es);
}

int lgpu_gguf_set_arr_str(lgpu_gguf_writer *w, const char *key, uint64_t n, const char *const *strs, const size_t *lens) {
    if (n && !strs) return lgpu_set_error(LGPU_EINVAL, "gguf writer: %s: NULL strings", key ? key : "?");
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i]) return lgpu_set_error(LGPU_EINVAL, "gguf writer: %s: string %" PRIu64 " is NULL", key, i);
        total += 8 + (lens ? lens[i] : strlen(strs[i]));
    }
    uint8_t *blob = malloc(total ? total : 1), *p = blob;
    if (!blob) return lgpu_set_error(LGPU_ENOMEM, "gguf writer: out of memory");
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l = lens ? lens[i] : strlen(strs[i]);
        memcpy(p, &l, 8);
        if (l) memcpy(p + 8, strs[i], l);
        p += 8 + l;
    }
    int st = set_arr_raw(w, key, LGPU_GGUF_STRING, n, blob, total);
    free(blob);
    return st;
}

int lgpu_gguf_writer_copy_kv(lgpu_gguf_writer *w, const lgpu_gguf *src, int64_t idx) {
    const char *key = lgpu_gguf_key(src, idx);
    if (!key) return lgpu_set_error(LGPU_EINVAL, "gguf writer: no key #%" PRId64 " in the source", idx);
    int type = lgpu_gguf_kv_type(src, idx);
    if (type == LGPU_GGUF_STRING) {
        size_t n;
        const char *s = lgpu_gguf_kv_str(src, idx, &n);
        return set_str_n(w, key, s, n);
    }
    if (type == LGPU_GGUF_ARRAY) {
        int et;
        uint64_t n;
        const void *data;
        int st = lgpu_gguf_kv_arr(src, idx, &et, &n, &data);
        if (st) return st;
        if (et != LGPU_GGUF_STRING) return lgpu_gguf_set_arr(w, key, et, n, data);
        if (n == 0) return set_arr_raw(w, key, et, 0, NULL, 0);
        /* Elements are contiguous in the source file: copy them in one go. */
        size_t last_len;
        const char *first = lgpu_gguf_arr_str(src, idx, 0, NULL), *last = lgpu_gguf_arr_str(src, idx, n - 1, &last_len);
        const uint8_t *begin = (const uint8_t *)first - 8, *end = (const uint8_t *)last + last_len;
        return set_arr_raw(w, key, et, n, begin, (size_t)(end - begin));
    }
    /* Scalars: re-read the raw bytes through the typed accessors. */
    wkv *e;
    int st = slot(w, key, &e);
    if (st) return st;
    e->type = type;
    int64_t i;
    uint64_t u;
    double f;
    switch (type) {
    case LGPU_GGUF_U64: lgpu_gguf_kv_uint(src, idx, &u); memcpy(e->raw, &u, 8); break;
    case LGPU_GGUF_F32: { lgpu_gguf_kv_float(src, idx, &f); float v = (float)f; memcpy(e->raw, &v, 4); break; }
    case LGPU_GGUF_F64: lgpu_gguf_kv_float(src, idx, &f); memcpy(e->raw, &f, 8); break;
    default: {
        lgpu_gguf_kv_int(src, idx, &i);
        /* little-endian truncation to the type's width keeps the bit pattern */
        memcpy(e->raw, &i, lgpu_gguf_vtype_size(type));
        break;
    }
    }
    return 0;
}

int lgpu_gguf_writer_remove_key(lgpu_gguf_writer *w, const char *key) {
    for (int64_t i = 0; w && key && i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            free_kv(&w->kv[i]);
            memmove(&w->kv[i], &w->kv[i + 1], (size_t)(w->n_kv - i - 1) * sizeof *w->kv);
            w->n_kv--;
            break;
        }
    return 0;
}

int lgpu_gguf_writer_set_alignment(lgpu_gguf_writer *w, uint32_t a) {
    if (!w || a == 0 || (a & (a - 1))) return lgpu_set_error(LGPU_EINVAL, "gguf writer: alignment %u is not a power of two", a);
    w->alignment = a;
    if (a == LGPU_GGUF_DEFAULT_ALIGNMENT) return lgpu_gguf_writer_remove_key(w, "general.alignment");
    return lgpu_gguf_set_u32(w, "general.alignment", a);
}

/* ---- tensors ----------------------------------------------------------- */

int lgpu_gguf_writer_add_tensor(lgpu_gguf_writer *w, const char *name, int type, uint32_t n_dims, const int64_t *ne,
                                const void *data) {
    if (!w || !name || !*name || !ne) return lgpu_set_error(LGPU_EINVAL, "gguf writer: bad tensor arguments");
    if (w->f) return lgpu_set_error(LGPU_EINVAL, "gguf writer: tensor %s added after begin", name);
    if (!lgpu_type_name(type)) return lgpu_set_error(LGPU_EINVAL, "gguf writer: tensor %s: unknown type %d", name, type);
    if (n_dims < 1 || n_dims > 4) return lgpu_set_error(LGPU_EINVAL, "gguf writer: tensor %s: %u dims", name, n_dims);
    for (int64_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return lgpu_set_error(LGPU_EINVAL, "gguf writer: duplicate tensor %s", name);
    wtensor t = {.type = type, .n_dims = n_dims, .ne = {1, 1, 1, 1}, .data = data};
    int64_t rows = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] <= 0) return lgpu_set_error(LGPU_EINVAL, "gguf writer: tensor %s: dim %u is %" PRId64, name, d, ne[d]);
        t.ne[d] = ne[d];
        if (d && __builtin_mul_overflow(rows, ne[d], &rows))
            return lgpu_set_error(LGPU_EINVAL, "gguf writer: tensor %s: size overflows", name);
    }
    size_t row = lgpu_type_row_bytes(type, ne[0]);
    if (!row)
        return lgpu_set_error(LGPU_EINVAL, "gguf writer: tensor %s: row length %" PRId64 " is not a multiple of the %s block size %" PRId64,
                              name, ne[0], lgpu_type_name(type), lgpu_type_block_elems(type));
    if (__builtin_mul_overflow(row, (size_t)rows, &t.nbytes))
        return lgpu_set_error(LGPU_EINVAL, "gguf writer: tensor %s: size overflows", name);
    int st = LGPU_GROW(w->t, w->cap_t, (size_t)w->n_t + 1, 64, "gguf writer");
    if (st) return st;
    if (!(t.name = strdup(name))) return lgpu_set_error(LGPU_ENOMEM, "gguf writer: out of memory");
    w->t[w->n_t++] = t;
    return 0;
}

int64_t lgpu_gguf_writer_n_tensors(const lgpu_gguf_writer *w) { return w ? w->n_t : 0; }

/* ---- output ------------------------------------------------------------ */

static int put(lgpu_gguf_writer *w, const void *p, size_t n) {
    if (w->failed) return LGPU_EIO;
    if (n && fwrite(p, 1, n, w->f) != n) {
        w->failed = true;
        return lgpu_set_error(LGPU_EIO, "%s: write failed: %s", w->tmp, strerror(errno));
    }
    w->pos += n;
    return 0;
}

static int put_u32(lgpu_gguf_writer *w, uint32_t v) { return put(w, &v, 4); }
static int put_u64(lgpu_gguf_writer *w, uint64_t v) { return put(w, &v, 8); }
static int put_str(lgpu_gguf_writer *w, const char *s, size_t n) {
    int st = put_u64(w, n);
    return st ? st : put(w, s, n);
}

static int pad(lgpu_gguf_writer *w) {
    static const uint8_t zeros[256];
    uint64_t n = (w->alignment - w->pos % w->alignment) % w->alignment;
    int st = 0;
    while (n && !st) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        st = put(w, zeros, k);
        n -= k;
    }
    return st;
}

int lgpu_gguf_writer_begin(lgpu_gguf_writer *w, const char *path) {
    if (!w || !path) return lgpu_set_error(LGPU_EINVAL, "gguf writer: NULL writer or path");
    if (w->f) return lgpu_set_error(LGPU_EINVAL, "gguf writer: begin called twice");
    size_t pl = strlen(path);
    w->path = strdup(path);
    w->tmp = malloc(pl + 5);
    if (!w->path || !w->tmp) {
        abandon(w);
        return lgpu_set_error(LGPU_ENOMEM, "gguf writer: out of memory");
    }
    memcpy(w->tmp, path, pl);
    memcpy(w->tmp + pl, ".tmp", 5);
    if (!(w->f = fopen(w->tmp, "wb"))) {
        int st = lgpu_set_error(LGPU_EIO, "%s: cannot create: %s", w->tmp, strerror(errno));
        abandon(w);
        return st;
    }
    setvbuf(w->f, NULL, _IOFBF, 1 << 20);
    w->pos = 0;
    w->failed = false;
    uint64_t off = 0;
    for (int64_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        off += (w->t[i].nbytes + w->alignment - 1) / w->alignment * w->alignment;
    }
    int st = put_u32(w, LGPU_GGUF_MAGIC);
    if (!st) st = put_u32(w, 3);
    if (!st) st = put_u64(w, (uint64_t)w->n_t);
    if (!st) st = put_u64(w, (uint64_t)w->n_kv);
    for (int64_t i = 0; i < w->n_kv && !st; i++) {
        const wkv *e = &w->kv[i];
        st = put_str(w, e->key, strlen(e->key));
        if (!st) st = put_u32(w, (uint32_t)e->type);
        if (st) break;
        if (e->type == LGPU_GGUF_STRING) st = put_str(w, e->str, e->str_len);
        else if (e->type == LGPU_GGUF_ARRAY) {
            st = put_u32(w, (uint32_t)e->etype);
            if (!st) st = put_u64(w, e->n);
            if (!st) st = put(w, e->arr, e->arr_bytes);
        } else st = put(w, e->raw, lgpu_gguf_vtype_size(e->type));
    }
    for (int64_t i = 0; i < w->n_t && !st; i++) {
        const wtensor *t = &w->t[i];
        st = put_str(w, t->name, strlen(t->name));
        if (!st) st = put_u32(w, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims && !st; d++) st = put_u64(w, (uint64_t)t->ne[d]);
        if (!st) st = put_u32(w, (uint32_t)t->type);
        if (!st) st = put_u64(w, t->offset);
    }
    if (!st && w->n_t) st = pad(w); /* ggml writes no padding when there is no data section */
    w->cur = 0;
    w->cur_done = 0;
    if (st) abandon(w);
    return st;
}

int lgpu_gguf_writer_tensor_data(lgpu_gguf_writer *w, const void *data, size_t nbytes) {
    if (!w || !w->f) return lgpu_set_error(LGPU_EINVAL, "gguf writer: tensor_data before begin");
    const uint8_t *p = data;
    while (nbytes) {
        if (w->cur >= w->n_t) {
            w->failed = true;
            return lgpu_set_error(LGPU_EINVAL, "%s: %zu bytes of tensor data beyond the last tensor", w->path, nbytes);
        }
        wtensor *t = &w->t[w->cur];
        size_t k = t->nbytes - w->cur_done;
        if (k > nbytes) k = nbytes;
        int st = put(w, p, k);
        if (st) return st;
        p += k;
        nbytes -= k;
        w->cur_done += k;
        if (w->cur_done == t->nbytes) {
            if ((st = pad(w))) return st;
            w->cur++;
            w->cur_done = 0;
        }
    }
    return 0;
}

int lgpu_gguf_writer_finish(lgpu_gguf_writer *w) {
    if (!w || !w->f) return lgpu_set_error(LGPU_EINVAL, "gguf writer: finish before begin");
    int st = 0;
    if (w->failed) st = lgpu_set_error(LGPU_EIO, "%s: an earlier write failed", w->path);
    else if (w->cur < w->n_t)
        st = lgpu_set_error(LGPU_EINVAL, "%s: data of tensor '%s' incomplete (%zu of %zu bytes) at finish", w->path,
                            w->t[w->cur].name, w->cur_done, w->t[w->cur].nbytes);
    else if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)
        st = lgpu_set_error(LGPU_EIO, "%s: flush failed: %s", w->tmp, strerror(errno));
    if (st) {
        abandon(w);
        return st;
    }
    FILE *f = w->f;
    w->f = NULL;
    if (fclose(f) != 0) {
        st = lgpu_set_error(LGPU_EIO, "%s: close failed: %s", w->tmp, strerror(errno));
        unlink(w->tmp);
    } else if (rename(w->tmp, w->path) != 0) {
        st = lgpu_set_error(LGPU_EIO, "%s: rename to %s failed: %s", w->tmp, w->path, strerror(errno));
        unlink(w->tmp);
    }
    abandon(w);
    return st;
}

int lgpu_gguf_writer_write_file(lgpu_gguf_writer *w, const char *path) {
    for (int64_t i = 0; w && i < w->n_t; i++)
        if (!w->t[i].data) return lgpu_set_error(LGPU_EINVAL, "gguf writer: tensor %s has no data", w->t[i].name);
    int st = lgpu_gguf_writer_begin(w, path);
    for (int64_t i = 0; !st && i < w->n_t; i++) st = lgpu_gguf_writer_tensor_data(w, w->t[i].data, w->t[i].nbytes);
    if (!st) return lgpu_gguf_writer_finish(w);
    abandon(w);
    return st;
}
