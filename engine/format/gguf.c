/* GGUF v2/v3 reader: parse and validate everything up front, then serve
 * metadata and tensors straight from the read-only mapping. */
#include "lgpu/gguf.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf_mem.h"
#include "format/mapfile.h"
#include "format/name_index.h"

#define MAX_KEY_LEN 65535u  /* spec: keys are at most 2^16-1 bytes */
#define MAX_NAME_LEN 1024u  /* tensor names (llama.cpp itself stops at 63) */

typedef struct kv {
    char *key;
    int type;
    uint8_t raw[8];  /* scalar value, little-endian */
    char *str;       /* STRING: NUL-terminated copy */
    size_t str_len;
    int etype;       /* ARRAY: element type, count, raw data in the map */
    uint64_t n;
    const uint8_t *arr;
    const uint8_t **strp; /* STRING arrays: each element's u64 length prefix */
} kv;

struct lgpu_gguf {
    char *path;
    const char *fname;
    lgpu_mapfile map;
    uint32_t version;
    uint64_t alignment, data_offset;
    int64_t n_kv, n_tensors;
    kv *kv;
    lgpu_gguf_tensor *tensors;
    lgpu_name_index kix, tix;
};

static const char *const vtype_names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                          "bool", "string", "array", "u64", "i64", "f64"};
static const uint8_t vtype_sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *lgpu_gguf_vtype_name(int t) {
    return t >= 0 && t < LGPU_GGUF_VTYPE_COUNT_ ? vtype_names[t] : "?";
}

size_t lgpu_gguf_vtype_size(int t) {
    return t >= 0 && t < LGPU_GGUF_VTYPE_COUNT_ ? vtype_sizes[t] : 0;
}

/* GGML type names, for details about types we do not support. */
static const char *ggml_type_name(uint32_t t) {
    static const char *const names[] = {
        "f32",  "f16",     "q4_0",    "q4_1",    "q4_2", "q4_3", "q5_0", "q5_1", "q8_0", "q8_1",
        "q2_k", "q3_k",    "q4_k",    "q5_k",    "q6_k", "q8_k", "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s",
        "iq4_nl", "iq3_s", "iq2_s",   "iq4_xs",  "i8",   "i16",  "i32",  "i64",  "f64",  "iq1_m",
        "bf16", "q4_0_4_4", "q4_0_4_8", "q4_0_8_8", "tq1_0", "tq2_0", "iq4_nl_4_4", "iq4_nl_4_8", "iq4_nl_8_8"};
    return t < sizeof names / sizeof names[0] ? names[t] : NULL;
}

/* ---- parsing cursor ---------------------------------------------------- */

typedef struct {
    const uint8_t *base;
    uint64_t size, off;
    const char *fname;
} cursor;

static int truncated(const cursor *c, uint64_t need, const char *what) {
    return lgpu_set_error(LGPU_EFORMAT, "%s: truncated: %s at offset %" PRIu64 " needs %" PRIu64
                          " bytes but the file ends at %" PRIu64,
                          c->fname, what, c->off, need, c->size);
}

static int take(cursor *c, uint64_t n, const uint8_t **p, const char *what) {
    if (n > c->size - c->off) return truncated(c, n, what);
    *p = c->base + c->off;
    c->off += n;
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) {
    const uint8_t *p = NULL;
    int st = take(c, 4, &p, what);
    if (!st) memcpy(v, p, 4);
    return st;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what) {
    const uint8_t *p = NULL;
    int st = take(c, 8, &p, what);
    if (!st) memcpy(v, p, 8);
    return st;
}

/* u64 length + bytes; checks the length against the rest of the file first. */
static int rd_str(cursor *c, const uint8_t **s, uint64_t *len, uint64_t max_len, const char *what) {
    int st = rd_u64(c, len, what);
    if (st) return st;
    if (*len > max_len)
        return lgpu_set_error(LGPU_EFORMAT, "%s: %s length %" PRIu64 " exceeds the limit of %" PRIu64, c->fname, what,
                              *len, max_len);
    if (*len > c->size - c->off)
        return lgpu_set_error(LGPU_EFORMAT, "%s: %s of %" PRIu64 " bytes at offset %" PRIu64
                              " extends past end of file (size %" PRIu64 ")",
                              c->fname, what, *len, c->off, c->size);
    *s = c->base + c->off;
    c->off += *len;
    return 0;
}

static char *dup_n(const uint8_t *s, uint64_t n) {
    char *d = malloc(n + 1);
    if (d) {
        if (n) memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static int oom(const lgpu_gguf *g, const char *what) {
    return lgpu_set_error(LGPU_ENOMEM, "%s: out of memory (%s)", g->fname, what);
}

/* ---- metadata ---------------------------------------------------------- */

static int parse_value(lgpu_gguf *g, cursor *c, kv *e, const char *what) {
    if (e->type < 0 || e->type >= LGPU_GGUF_VTYPE_COUNT_)
        return lgpu_set_error(LGPU_EFORMAT, "%s: %s has invalid value type %d", g->fname, what, e->type);
    if (e->type == LGPU_GGUF_STRING) {
        const uint8_t *s = NULL;
        uint64_t n;
        int st = rd_str(c, &s, &n, UINT64_MAX, what);
        if (st) return st;
        if (!(e->str = dup_n(s, n))) return oom(g, "string value");
        e->str_len = n;
        return 0;
    }
    if (e->type != LGPU_GGUF_ARRAY) {
        const uint8_t *p = NULL;
        int st = take(c, vtype_sizes[e->type], &p, what);
        if (!st) memcpy(e->raw, p, vtype_sizes[e->type]);
        return st;
    }
    uint32_t et;
    int st = rd_u32(c, &et, what);
    if (!st) st = rd_u64(c, &e->n, what);
    if (st) return st;
    if (et >= LGPU_GGUF_VTYPE_COUNT_)
        return lgpu_set_error(LGPU_EFORMAT, "%s: %s is an array of invalid element type %u", g->fname, what, et);
    if (et == LGPU_GGUF_ARRAY)
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: %s is an array of arrays (not supported)", g->fname, what);
    e->etype = (int)et;
    uint64_t rest = c->size - c->off;
    e->arr = c->base + c->off;
    if (et != LGPU_GGUF_STRING) {
        if (e->n > rest / vtype_sizes[et])
            return lgpu_set_error(LGPU_EFORMAT, "%s: %s array of %" PRIu64 " %s extends past end of file (size %" PRIu64
                                  ")", g->fname, what, e->n, vtype_names[et], c->size);
        c->off += e->n * vtype_sizes[et];
        return 0;
    }
    if (e->n > rest / 8) /* every element needs at least its 8-byte length */
        return lgpu_set_error(LGPU_EFORMAT, "%s: %s array of %" PRIu64 " strings extends past end of file (size %" PRIu64
                              ")", g->fname, what, e->n, c->size);
    if (!(e->strp = malloc((e->n ? e->n : 1) * sizeof *e->strp))) return oom(g, "string array");
    for (uint64_t i = 0; i < e->n; i++) {
        uint64_t len;
        e->strp[i] = c->base + c->off;
        if (c->size - c->off < 8 || (memcpy(&len, e->strp[i], 8), len > c->size - c->off - 8))
            return lgpu_set_error(LGPU_EFORMAT, "%s: %s element %" PRIu64 " at offset %" PRIu64
                                  " extends past end of file (size %" PRIu64 ")",
                                  g->fname, what, i, c->off, c->size);
        c->off += 8 + len;
    }
    return 0;
}

static int parse_kvs(lgpu_gguf *g, cursor *c) {
    if (!(g->kv = calloc(g->n_kv ? (size_t)g->n_kv : 1, sizeof *g->kv))) return oom(g, "metadata");
    int st = lgpu_name_index_init(&g->kix, g->n_kv);
    if (st) return st;
    for (int64_t i = 0; i < g->n_kv; i++) {
        kv *e = &g->kv[i];
        char w[320];
        snprintf(w, sizeof w, "key #%" PRId64, i);
        const uint8_t *s = NULL;
        uint64_t n;
        if ((st = rd_str(c, &s, &n, MAX_KEY_LEN, w))) return st;
        if (!(e->key = dup_n(s, n))) return oom(g, "key");
        if (n == 0 || memchr(e->key, 0, n))
            return lgpu_set_error(LGPU_EFORMAT, "%s: key #%" PRId64 " is empty or contains a NUL byte", g->fname, i);
        if (lgpu_name_index_put(&g->kix, e->key, n, i) >= 0)
            return lgpu_set_error(LGPU_EFORMAT, "%s: duplicate key '%s'", g->fname, e->key);
        uint32_t t;
        snprintf(w, sizeof w, "value of '%.256s'", e->key);
        if ((st = rd_u32(c, &t, w))) return st;
        e->type = t > INT32_MAX ? -1 : (int)t;
        if ((st = parse_value(g, c, e, w))) return st;
    }
    int64_t ai = lgpu_gguf_find_key(g, "general.alignment");
    g->alignment = LGPU_GGUF_DEFAULT_ALIGNMENT;
    if (ai >= 0) {
        uint32_t a;
        if (g->kv[ai].type != LGPU_GGUF_U32)
            return lgpu_set_error(LGPU_EFORMAT, "%s: general.alignment has type %s (expected u32)", g->fname,
                                  lgpu_gguf_vtype_name(g->kv[ai].type));
        memcpy(&a, g->kv[ai].raw, 4);
        if (a == 0 || (a & (a - 1)))
            return lgpu_set_error(LGPU_EFORMAT, "%s: general.alignment %u is not a power of two", g->fname, a);
        g->alignment = a;
    }
    return 0;
}

/* ---- tensors ----------------------------------------------------------- */

static int parse_tensor_info(lgpu_gguf *g, cursor *c, int64_t i) {
    lgpu_gguf_tensor *t = &g->tensors[i];
    char w[96];
    snprintf(w, sizeof w, "tensor #%" PRId64 " name", i);
    const uint8_t *s = NULL;
    uint64_t n;
    int st = rd_str(c, &s, &n, MAX_NAME_LEN, w);
    if (st) return st;
    char *name = dup_n(s, n);
    if (!name) return oom(g, "tensor name");
    t->name = name;
    if (n == 0 || memchr(name, 0, n))
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor #%" PRId64 " has an empty name or one with a NUL byte", g->fname,
                              i);
    if (lgpu_name_index_put(&g->tix, name, n, i) >= 0)
        return lgpu_set_error(LGPU_EFORMAT, "%s: duplicate tensor name '%s'", g->fname, name);
    char tw[MAX_NAME_LEN + 64];
    snprintf(tw, sizeof tw, "tensor '%s' info", name);
    uint32_t nd, type;
    if ((st = rd_u32(c, &nd, tw))) return st;
    if (nd < 1 || nd > LGPU_GGUF_MAX_DIMS)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s' has %u dimensions (expected 1..4)", g->fname, name, nd);
    t->n_dims = nd;
    int64_t nelem = 1;
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t v;
        if ((st = rd_u64(c, &v, tw))) return st;
        if (v == 0 || v > (uint64_t)INT64_MAX)
            return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s' dimension %u is %" PRIu64 " (must be positive)", g->fname,
                                  name, d, v);
        t->ne[d] = (int64_t)v;
        if (__builtin_mul_overflow(nelem, t->ne[d], &nelem))
            return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s' element count overflows", g->fname, name);
    }
    if ((st = rd_u32(c, &type, tw))) return st;
    if (!lgpu_type_name((int)type) || type >= LGPU_TYPE_COUNT_) {
        const char *gn = ggml_type_name(type);
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: tensor '%s' has unsupported type %s (id %u)", g->fname, name,
                              gn ? gn : "unknown", type);
    }
    t->type = (int)type;
    if ((st = rd_u64(c, &t->offset, tw))) return st;
    int64_t be = lgpu_type_block_elems(t->type);
    if (t->ne[0] % be)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s' row length %" PRId64 " is not a multiple of the %s block size %" PRId64,
                              g->fname, name, t->ne[0], lgpu_type_name(t->type), be);
    size_t row = lgpu_type_row_bytes(t->type, t->ne[0]);
    int64_t rows = nelem / t->ne[0];
    size_t nb;
    if (row == 0 || __builtin_mul_overflow(row, (size_t)rows, &nb) || nb > (size_t)INT64_MAX)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s' byte size overflows", g->fname, name);
    t->nbytes = nb;
    if (t->offset % g->alignment)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s' data offset %" PRIu64 " is not a multiple of the alignment %" PRIu64,
                              g->fname, name, t->offset, g->alignment);
    return 0;
}

static int cmp_by_offset(const void *a, const void *b) {
    const lgpu_gguf_tensor *x = *(const lgpu_gguf_tensor *const *)a, *y = *(const lgpu_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int place_tensors(lgpu_gguf *g) {
    if (g->n_tensors == 0) return 0;
    if (g->data_offset > g->map.size)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor data section at offset %" PRIu64 " starts past end of file (size %" PRIu64 ")",
                              g->fname, g->data_offset, g->map.size);
    uint64_t avail = g->map.size - g->data_offset;
    const lgpu_gguf_tensor **order = malloc((size_t)g->n_tensors * sizeof *order);
    if (!order) return oom(g, "tensor order");
    for (int64_t i = 0; i < g->n_tensors; i++) {
        lgpu_gguf_tensor *t = &g->tensors[i];
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            free(order);
            return lgpu_set_error(LGPU_EFORMAT, "%s: tensor '%s' data [offset %" PRIu64 ", %zu bytes] extends past end of file (size %" PRIu64 ")",
                                  g->fname, t->name, g->data_offset + t->offset, t->nbytes, g->map.size);
        }
        t->data = g->map.data + g->data_offset + t->offset;
        order[i] = t;
    }
    qsort(order, (size_t)g->n_tensors, sizeof *order, cmp_by_offset);
    int st = 0;
    for (int64_t i = 1; i < g->n_tensors && !st; i++)
        if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset)
            st = lgpu_set_error(LGPU_EFORMAT, "%s: data of tensors '%s' and '%s' overlap", g->fname, order[i - 1]->name,
                                order[i]->name);
    free(order);
    return st;
}

static int parse(lgpu_gguf *g) {
    cursor c = {g->map.data, g->map.size, 0, g->fname};
    if (g->map.size < 4) return lgpu_set_error(LGPU_EFORMAT, "%s: file too small for a GGUF header (%" PRIu64 " bytes)", g->fname, g->map.size);
    uint32_t magic, version;
    rd_u32(&c, &magic, "magic");
    if (magic != LGPU_GGUF_MAGIC)
        return lgpu_set_error(LGPU_EFORMAT, "%s: bad magic 0x%08x (not a GGUF file)", g->fname, magic);
    int st = rd_u32(&c, &version, "version");
    if (st) return st;
    if (version == 1)
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: GGUF version 1 is not supported (only 2 and 3)", g->fname);
    if ((version & 0xffff) == 0 && (version >> 24 == 2 || version >> 24 == 3))
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: big-endian GGUF is not supported", g->fname);
    if (version != 2 && version != 3)
        return lgpu_set_error(LGPU_EFORMAT, "%s: bad GGUF version %u (expected 2 or 3)", g->fname, version);
    g->version = version;
    uint64_t nt, nkv;
    if ((st = rd_u64(&c, &nt, "tensor count")) || (st = rd_u64(&c, &nkv, "metadata count"))) return st;
    /* Smallest encodings: a KV is 8 (key len) + 1 (key) + 4 (type) + 1 bytes,
     * a tensor info 8 + 1 + 4 + 8 + 4 + 8. */
    if (nkv > g->map.size / 14)
        return lgpu_set_error(LGPU_EFORMAT, "%s: metadata count %" PRIu64 " is impossible for a file of %" PRIu64 " bytes",
                              g->fname, nkv, g->map.size);
    if (nt > g->map.size / 33)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor count %" PRIu64 " is impossible for a file of %" PRIu64 " bytes",
                              g->fname, nt, g->map.size);
    g->n_kv = (int64_t)nkv;
    if ((st = parse_kvs(g, &c))) return st;
    g->n_tensors = (int64_t)nt;
    if (!(g->tensors = calloc(nt ? nt : 1, sizeof *g->tensors))) return oom(g, "tensor infos");
    if ((st = lgpu_name_index_init(&g->tix, g->n_tensors))) return st;
    for (int64_t i = 0; i < g->n_tensors; i++)
        if ((st = parse_tensor_info(g, &c, i))) return st;
    g->data_offset = (c.off + g->alignment - 1) / g->alignment * g->alignment;
    return place_tensors(g);
}

bool lgpu_gguf_file_is_gguf(const char *path) {
    uint32_t magic = 0;
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) return false;
    if (fread(&magic, 1, 4, f) != 4) magic = 0;
    fclose(f);
    return magic == LGPU_GGUF_MAGIC;
}

/* From the file at path, or (mem) over the given bytes. */
static int create(const char *path, const lgpu_mapfile *mem, lgpu_gguf **out) {
    if (!out) return lgpu_set_error(LGPU_EINVAL, "lgpu_gguf_create: out is NULL");
    *out = NULL;
    if (!path) return lgpu_set_error(LGPU_EINVAL, "lgpu_gguf_create: path is NULL");
    lgpu_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        return lgpu_set_error(LGPU_ENOMEM, "%s: out of memory", path);
    }
    g->fname = lgpu_path_base(g->path);
    int st = 0;
    if (mem) g->map = *mem;
    else st = lgpu_mapfile_create(path, &g->map);
    if (!st) st = parse(g);
    if (st) {
        lgpu_gguf_destroy(g);
        return st;
    }
    *out = g;
    return 0;
}

int lgpu_gguf_create(const char *path, lgpu_gguf **out) { return create(path, NULL, out); }

int lgpu_gguf_create_from_memory(const char *name, const void *data, uint64_t size, lgpu_gguf **out) {
    lgpu_mapfile mem;
    lgpu_mapfile_from_memory(data, size, &mem);
    return create(name, &mem, out);
}

void lgpu_gguf_destroy(lgpu_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; g->kv && i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].str);
        free(g->kv[i].strp);
    }
    for (int64_t i = 0; g->tensors && i < g->n_tensors; i++) free((char *)g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    lgpu_name_index_destroy(&g->kix);
    lgpu_name_index_destroy(&g->tix);
    lgpu_mapfile_destroy(&g->map);
    free(g->path);
    free(g);
}

/* ---- accessors --------------------------------------------------------- */

const char *lgpu_gguf_path(const lgpu_gguf *g) { return g->path; }
const char *lgpu_gguf_file_name(const lgpu_gguf *g) { return g->fname; }
uint32_t lgpu_gguf_version(const lgpu_gguf *g) { return g->version; }
size_t lgpu_gguf_alignment(const lgpu_gguf *g) { return (size_t)g->alignment; }
uint64_t lgpu_gguf_data_offset(const lgpu_gguf *g) { return g->data_offset; }
uint64_t lgpu_gguf_file_size(const lgpu_gguf *g) { return g->map.size; }
int64_t lgpu_gguf_n_kv(const lgpu_gguf *g) { return g->n_kv; }

static const kv *kv_at(const lgpu_gguf *g, int64_t i) {
    return g && i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

const char *lgpu_gguf_key(const lgpu_gguf *g, int64_t i) {
    const kv *e = kv_at(g, i);
    return e ? e->key : NULL;
}

int lgpu_gguf_kv_type(const lgpu_gguf *g, int64_t i) {
    const kv *e = kv_at(g, i);
    return e ? e->type : -1;
}

int64_t lgpu_gguf_find_key(const lgpu_gguf *g, const char *key) {
    if (!g || !key) return -1;
    return lgpu_name_index_get(&g->kix, key, strlen(key));
}

/* Numeric element decoding shared by scalars and arrays. is_int tells which
 * of *i / *f is exact; BOOL counts as an integer. */
static bool decode_num(int type, const uint8_t *p, bool *is_int, int64_t *i, uint64_t *u, double *f) {
    *is_int = true;
    *u = 0;
    switch (type) {
    case LGPU_GGUF_U8: *i = *p; break;
    case LGPU_GGUF_BOOL: *i = *p != 0; break;
    case LGPU_GGUF_I8: *i = (int8_t)*p; break;
    case LGPU_GGUF_U16: { uint16_t v; memcpy(&v, p, 2); *i = v; break; }
    case LGPU_GGUF_I16: { int16_t v; memcpy(&v, p, 2); *i = v; break; }
    case LGPU_GGUF_U32: { uint32_t v; memcpy(&v, p, 4); *i = v; break; }
    case LGPU_GGUF_I32: { int32_t v; memcpy(&v, p, 4); *i = v; break; }
    case LGPU_GGUF_I64: { memcpy(i, p, 8); break; }
    case LGPU_GGUF_U64: {
        memcpy(u, p, 8);
        *i = *u > (uint64_t)INT64_MAX ? -1 : (int64_t)*u;
        *f = (double)*u;
        return true;
    }
    case LGPU_GGUF_F32: { float v; memcpy(&v, p, 4); *f = v; *is_int = false; return true; }
    case LGPU_GGUF_F64: { memcpy(f, p, 8); *is_int = false; return true; }
    default: return false;
    }
    *u = *i < 0 ? 0 : (uint64_t)*i;
    *f = (double)*i;
    return true;
}

/* What a typed getter accepts (see gguf.h), and the value it decoded. */
typedef enum { AS_INT, AS_UINT, AS_FLOAT, AS_BOOL } num_as;
typedef struct {
    int64_t i;
    uint64_t u;
    double f;
} num_val;

/* Decodes entry e (NULL: absent) as `as`: AS_INT any integer or BOOL that
 * fits int64, AS_UINT a non-negative one, AS_FLOAT any number but BOOL,
 * AS_BOOL any integer. False when e does not qualify. */
static bool kv_num_as(const kv *e, num_as as, num_val *v) {
    bool is_int;
    if (!e || !decode_num(e->type, e->raw, &is_int, &v->i, &v->u, &v->f)) return false;
    switch (as) {
    case AS_INT: return is_int && !(e->type == LGPU_GGUF_U64 && v->u > (uint64_t)INT64_MAX);
    case AS_UINT: return is_int && (e->type == LGPU_GGUF_U64 || v->i >= 0);
    case AS_FLOAT: return e->type != LGPU_GGUF_BOOL;
    case AS_BOOL: return is_int;
    }
    return false;
}

/* kv_int / kv_uint / kv_float: the entry at idx as `as`, or LGPU_EINVAL naming the key and its type. */
static int kv_num_checked(const lgpu_gguf *g, int64_t idx, num_as as, num_val *v) {
    static const char *const what[] = {[AS_INT] = "an integer", [AS_UINT] = "a non-negative integer",
                                       [AS_FLOAT] = "a number", [AS_BOOL] = "an integer"};
    const kv *e = kv_at(g, idx);
    if (kv_num_as(e, as, v)) return 0;
    return lgpu_set_error(LGPU_EINVAL, "%s: key %s is not %s (type %s)", g ? g->fname : "?",
                          e ? e->key : "(bad index)", what[as], e ? lgpu_gguf_vtype_name(e->type) : "-");
}

int lgpu_gguf_kv_int(const lgpu_gguf *g, int64_t idx, int64_t *out) {
    num_val v = {0};
    int st = kv_num_checked(g, idx, AS_INT, &v);
    if (!st) *out = v.i;
    return st;
}

int lgpu_gguf_kv_uint(const lgpu_gguf *g, int64_t idx, uint64_t *out) {
    num_val v = {0};
    int st = kv_num_checked(g, idx, AS_UINT, &v);
    if (!st) *out = v.u;
    return st;
}

int lgpu_gguf_kv_float(const lgpu_gguf *g, int64_t idx, double *out) {
    num_val v = {0};
    int st = kv_num_checked(g, idx, AS_FLOAT, &v);
    if (!st) *out = v.f;
    return st;
}

const char *lgpu_gguf_kv_str(const lgpu_gguf *g, int64_t idx, size_t *len) {
    const kv *e = kv_at(g, idx);
    if (!e || e->type != LGPU_GGUF_STRING) return NULL;
    if (len) *len = e->str_len;
    return e->str;
}

/* get_*: the value of `key` as `as`; false (the caller's default) when absent or not of that kind. */
static bool get_num_as(const lgpu_gguf *g, const char *key, num_as as, num_val *v) {
    return kv_num_as(kv_at(g, lgpu_gguf_find_key(g, key)), as, v);
}

uint32_t lgpu_gguf_get_u32(const lgpu_gguf *g, const char *key, uint32_t def) {
    uint64_t u = lgpu_gguf_get_u64(g, key, (uint64_t)def);
    return u <= UINT32_MAX ? (uint32_t)u : def;
}

int32_t lgpu_gguf_get_i32(const lgpu_gguf *g, const char *key, int32_t def) {
    num_val v = {0};
    return get_num_as(g, key, AS_INT, &v) && v.i >= INT32_MIN && v.i <= INT32_MAX ? (int32_t)v.i : def;
}

uint64_t lgpu_gguf_get_u64(const lgpu_gguf *g, const char *key, uint64_t def) {
    num_val v = {0};
    return get_num_as(g, key, AS_UINT, &v) ? v.u : def;
}

float lgpu_gguf_get_f32(const lgpu_gguf *g, const char *key, float def) {
    num_val v = {0};
    return get_num_as(g, key, AS_FLOAT, &v) ? (float)v.f : def;
}

/* Any nonzero integer is true (v.u alone is 0 for negative values). */
bool lgpu_gguf_get_bool(const lgpu_gguf *g, const char *key, bool def) {
    num_val v = {0};
    return get_num_as(g, key, AS_BOOL, &v) ? v.i != 0 || v.u != 0 : def;
}

const char *lgpu_gguf_get_str(const lgpu_gguf *g, const char *key, const char *def) {
    const char *s = lgpu_gguf_kv_str(g, lgpu_gguf_find_key(g, key), NULL);
    return s ? s : def;
}

int lgpu_gguf_kv_arr(const lgpu_gguf *g, int64_t idx, int *elem_type, uint64_t *n, const void **data) {
    const kv *e = kv_at(g, idx);
    if (!e) return lgpu_set_error(LGPU_ENOTFOUND, "%s: no metadata key #%" PRId64, g ? g->fname : "?", idx);
    if (e->type != LGPU_GGUF_ARRAY)
        return lgpu_set_error(LGPU_EINVAL, "%s: key %s is a %s, not an array", g->fname, e->key,
                              lgpu_gguf_vtype_name(e->type));
    if (elem_type) *elem_type = e->etype;
    if (n) *n = e->n;
    if (data) *data = e->etype == LGPU_GGUF_STRING ? NULL : e->arr;
    return 0;
}

int lgpu_gguf_get_arr(const lgpu_gguf *g, const char *key, int *elem_type, uint64_t *n, const void **data) {
    int64_t i = lgpu_gguf_find_key(g, key);
    if (i < 0) return lgpu_set_error(LGPU_ENOTFOUND, "%s: no metadata key %s", g ? g->fname : "?", key ? key : "(null)");
    return lgpu_gguf_kv_arr(g, i, elem_type, n, data);
}

const char *lgpu_gguf_arr_str(const lgpu_gguf *g, int64_t idx, uint64_t i, size_t *len) {
    const kv *e = kv_at(g, idx);
    if (!e || e->type != LGPU_GGUF_ARRAY || e->etype != LGPU_GGUF_STRING || i >= e->n) return NULL;
    uint64_t l;
    memcpy(&l, e->strp[i], 8);
    if (len) *len = (size_t)l;
    return (const char *)e->strp[i] + 8;
}

static bool arr_num(const lgpu_gguf *g, int64_t idx, uint64_t i, bool *is_int, int64_t *si, double *f) {
    const kv *e = kv_at(g, idx);
    uint64_t u;
    if (!e || e->type != LGPU_GGUF_ARRAY || e->etype == LGPU_GGUF_STRING || i >= e->n) return false;
    return decode_num(e->etype, e->arr + i * vtype_sizes[e->etype], is_int, si, &u, f);
}

int64_t lgpu_gguf_arr_int(const lgpu_gguf *g, int64_t idx, uint64_t i, int64_t def) {
    bool is_int;
    int64_t si;
    double f;
    if (!arr_num(g, idx, i, &is_int, &si, &f)) return def;
    return is_int ? si : (isfinite(f) && fabs(f) < 9.2e18 ? (int64_t)f : def);
}

double lgpu_gguf_arr_float(const lgpu_gguf *g, int64_t idx, uint64_t i, double def) {
    bool is_int;
    int64_t si;
    double f;
    return arr_num(g, idx, i, &is_int, &si, &f) ? f : def;
}

int64_t lgpu_gguf_n_tensors(const lgpu_gguf *g) { return g->n_tensors; }

const lgpu_gguf_tensor *lgpu_gguf_tensor_at(const lgpu_gguf *g, int64_t i) {
    return g && i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const lgpu_gguf_tensor *lgpu_gguf_find_tensor(const lgpu_gguf *g, const char *name) {
    if (!g || !name) return NULL;
    int64_t i = lgpu_name_index_get(&g->tix, name, strlen(name));
    return i >= 0 ? &g->tensors[i] : NULL;
}
