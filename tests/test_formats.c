/* Malformed and unusual model files: every reader must fail with the right
 * status and a detail naming the file and the problem, never crash (run
 * under ASan). Also safetensors and HF directories built here by hand. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/safetensors.h"
#include "lgpu/convert.h"
#include "lgpu/gguf.h"
#include "lgpu/model_file.h"
#include "model/gguf_llama.h"
#include "quant/quant.h"
#include "test_util.h"

/* One directory for the whole group, removed with everything in it at the end. */
static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    return tu_tmpdir_create("formats", tmpdir, sizeof tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    return tu_tmpdir_remove(tmpdir);
}

static const char *tmp(const char *name) { return tu_path(tmpdir, name); }

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(*n ? *n : 1);
    assert_int_equal(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

/* Asserts status and that the detail names `file` and contains `what`. */
#define EXPECT_FAIL(expr, status, file, what)                                                                  \
    do {                                                                                                       \
        int st_ = (expr);                                                                                      \
        const char *e_ = lgpu_last_error();                                                                    \
        if (st_ != (status) || !strstr(e_, (file)) || !strstr(e_, (what)))                                     \
            fail_msg("%s -> %s \"%s\"; expected %s with \"%s\" and \"%s\"", #expr, lgpu_err_name(st_), e_,     \
                     lgpu_err_name(status), (file), (what));                                                   \
    } while (0)

/* ---- a GGUF byte builder ---------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} bb;

static void put(bb *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void u32(bb *b, uint32_t v) { put(b, &v, 4); }
static void u64(bb *b, uint64_t v) { put(b, &v, 8); }
static void str(bb *b, const char *s) {
    u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void kv_u32(bb *b, const char *k, uint32_t v) {
    str(b, k);
    u32(b, LGPU_GGUF_U32);
    u32(b, v);
}
static void kv_str(bb *b, const char *k, const char *v) {
    str(b, k);
    u32(b, LGPU_GGUF_STRING);
    str(b, v);
}
static void header(bb *b, uint32_t version, uint64_t nt, uint64_t nkv) {
    u32(b, LGPU_GGUF_MAGIC);
    u32(b, version);
    u64(b, nt);
    u64(b, nkv);
}
static void tinfo(bb *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    str(b, name);
    u32(b, nd);
    for (uint32_t i = 0; i < nd; i++) u64(b, ne[i]);
    u32(b, type);
    u64(b, off);
}
static void pad_zeros(bb *b, size_t align, size_t extra) {
    static const uint8_t z[4096];
    size_t n = (align - b->n % align) % align + extra;
    while (n) {
        size_t k = n < sizeof z ? n : sizeof z;
        put(b, z, k);
        n -= k;
    }
}
static void save(bb *b, const char *name) {
    write_file(tmp(name), b->p, b->n);
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int open_gguf(const char *name) {
    lgpu_gguf *g = NULL;
    int st = lgpu_gguf_create(tmp(name), &g);
    lgpu_gguf_destroy(g);
    if (st == 0) assert_non_null(g);
    else assert_null(g);
    return st;
}

/* One tensor "t" of type/dims/offset given, with `data` bytes of data after the header. */
static void one_tensor(const char *file, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off, size_t data) {
    bb b = {0};
    header(&b, 3, 1, 1);
    kv_str(&b, "general.architecture", "llama");
    tinfo(&b, "t", nd, ne, type, off);
    pad_zeros(&b, 32, data);
    save(&b, file);
}

static void test_gguf_header_errors(void **state) {
    (void)state;
    bb b = {0};
    put(&b, "GGML", 4);
    u32(&b, 3);
    u64(&b, 0);
    u64(&b, 0);
    save(&b, "bad_magic.gguf");
    EXPECT_FAIL(open_gguf("bad_magic.gguf"), LGPU_EFORMAT, "bad_magic.gguf", "bad magic");

    header(&b, 7, 0, 0);
    save(&b, "bad_version.gguf");
    EXPECT_FAIL(open_gguf("bad_version.gguf"), LGPU_EFORMAT, "bad_version.gguf", "version 7");
    header(&b, 1, 0, 0);
    save(&b, "v1.gguf");
    EXPECT_FAIL(open_gguf("v1.gguf"), LGPU_EUNSUPPORTED, "v1.gguf", "version 1");
    header(&b, 0x03000000, 0, 0);
    save(&b, "be.gguf");
    EXPECT_FAIL(open_gguf("be.gguf"), LGPU_EUNSUPPORTED, "be.gguf", "big-endian");
    header(&b, 2, 0, 0); /* v2 with nothing in it is fine */
    save(&b, "v2.gguf");
    TU_OK(open_gguf("v2.gguf"));

    header(&b, 3, 1ull << 60, 0);
    save(&b, "huge_tensors.gguf");
    EXPECT_FAIL(open_gguf("huge_tensors.gguf"), LGPU_EFORMAT, "huge_tensors.gguf", "tensor count");
    header(&b, 3, 0, 1ull << 62);
    save(&b, "huge_kv.gguf");
    EXPECT_FAIL(open_gguf("huge_kv.gguf"), LGPU_EFORMAT, "huge_kv.gguf", "metadata count");
    header(&b, 3, 0, 1);
    u64(&b, 1ull << 40);
    save(&b, "huge_key.gguf");
    EXPECT_FAIL(open_gguf("huge_key.gguf"), LGPU_EFORMAT, "huge_key.gguf", "exceeds the limit");
    header(&b, 3, 0, 1);
    str(&b, "k");
    u32(&b, LGPU_GGUF_STRING);
    u64(&b, 1000);
    put(&b, "abc", 3);
    save(&b, "long_str.gguf");
    EXPECT_FAIL(open_gguf("long_str.gguf"), LGPU_EFORMAT, "long_str.gguf", "extends past end of file");
    header(&b, 3, 0, 1);
    str(&b, "arr");
    u32(&b, LGPU_GGUF_ARRAY);
    u32(&b, LGPU_GGUF_U32);
    u64(&b, 1ull << 61);
    save(&b, "huge_arr.gguf");
    EXPECT_FAIL(open_gguf("huge_arr.gguf"), LGPU_EFORMAT, "huge_arr.gguf", "extends past end of file");
    header(&b, 3, 0, 1);
    str(&b, "arr");
    u32(&b, LGPU_GGUF_ARRAY);
    u32(&b, LGPU_GGUF_STRING);
    u64(&b, 2);
    str(&b, "ok");
    u64(&b, 99);
    save(&b, "str_arr.gguf");
    EXPECT_FAIL(open_gguf("str_arr.gguf"), LGPU_EFORMAT, "str_arr.gguf", "element 1");
    header(&b, 3, 0, 1);
    str(&b, "arr");
    u32(&b, LGPU_GGUF_ARRAY);
    u32(&b, LGPU_GGUF_ARRAY);
    u64(&b, 0);
    save(&b, "nested.gguf");
    EXPECT_FAIL(open_gguf("nested.gguf"), LGPU_EUNSUPPORTED, "nested.gguf", "array of arrays");
    header(&b, 3, 0, 1);
    str(&b, "k");
    u32(&b, 13);
    u32(&b, 0);
    save(&b, "vtype.gguf");
    EXPECT_FAIL(open_gguf("vtype.gguf"), LGPU_EFORMAT, "vtype.gguf", "invalid value type 13");
    header(&b, 3, 0, 2);
    kv_u32(&b, "dup", 1);
    kv_u32(&b, "dup", 2);
    save(&b, "dup_key.gguf");
    EXPECT_FAIL(open_gguf("dup_key.gguf"), LGPU_EFORMAT, "dup_key.gguf", "duplicate key 'dup'");
    header(&b, 3, 0, 1);
    kv_u32(&b, "general.alignment", 48);
    save(&b, "align.gguf");
    EXPECT_FAIL(open_gguf("align.gguf"), LGPU_EFORMAT, "align.gguf", "not a power of two");
    header(&b, 3, 0, 1);
    kv_str(&b, "general.alignment", "32");
    save(&b, "align_type.gguf");
    EXPECT_FAIL(open_gguf("align_type.gguf"), LGPU_EFORMAT, "align_type.gguf", "expected u32");
    put(&b, "GG", 2);
    save(&b, "tiny.gguf");
    EXPECT_FAIL(open_gguf("tiny.gguf"), LGPU_EFORMAT, "tiny.gguf", "too small");
    save(&b, "empty.gguf");
    EXPECT_FAIL(open_gguf("empty.gguf"), LGPU_EFORMAT, "empty.gguf", "too small");
    EXPECT_FAIL(open_gguf("missing.gguf"), LGPU_ENOTFOUND, "missing.gguf", "cannot open");
}

static void test_gguf_tensor_errors(void **state) {
    (void)state;
    const uint64_t ne64x2[] = {64, 2}, ne5[] = {1, 1, 1, 1, 1}, ne0[] = {64, 0}, big[] = {1ull << 40, 1ull << 40},
                   ne100[] = {100}, neg[] = {1ull << 63};
    one_tensor("ok.gguf", 2, ne64x2, LGPU_TYPE_F32, 0, 512);
    TU_OK(open_gguf("ok.gguf"));
    one_tensor("ndims.gguf", 5, ne5, LGPU_TYPE_F32, 0, 64);
    EXPECT_FAIL(open_gguf("ndims.gguf"), LGPU_EFORMAT, "ndims.gguf", "5 dimensions");
    one_tensor("zero_dim.gguf", 2, ne0, LGPU_TYPE_F32, 0, 64);
    EXPECT_FAIL(open_gguf("zero_dim.gguf"), LGPU_EFORMAT, "zero_dim.gguf", "must be positive");
    one_tensor("neg_dim.gguf", 1, neg, LGPU_TYPE_F32, 0, 64);
    EXPECT_FAIL(open_gguf("neg_dim.gguf"), LGPU_EFORMAT, "neg_dim.gguf", "must be positive");
    one_tensor("overflow.gguf", 2, big, LGPU_TYPE_F32, 0, 64);
    EXPECT_FAIL(open_gguf("overflow.gguf"), LGPU_EFORMAT, "overflow.gguf", "overflows");
    one_tensor("q5_0.gguf", 2, ne64x2, 6, 0, 512);
    EXPECT_FAIL(open_gguf("q5_0.gguf"), LGPU_EUNSUPPORTED, "q5_0.gguf", "unsupported type q5_0 (id 6)");
    one_tensor("type1000.gguf", 2, ne64x2, 1000, 0, 512);
    EXPECT_FAIL(open_gguf("type1000.gguf"), LGPU_EUNSUPPORTED, "type1000.gguf", "id 1000");
    one_tensor("block.gguf", 1, ne100, LGPU_TYPE_Q4_0, 0, 64);
    EXPECT_FAIL(open_gguf("block.gguf"), LGPU_EFORMAT, "block.gguf", "not a multiple of the q4_0 block size 32");
    one_tensor("misaligned.gguf", 2, ne64x2, LGPU_TYPE_F32, 4, 1024);
    EXPECT_FAIL(open_gguf("misaligned.gguf"), LGPU_EFORMAT, "misaligned.gguf", "not a multiple of the alignment 32");
    one_tensor("past_end.gguf", 2, ne64x2, LGPU_TYPE_F32, 1ull << 50, 512);
    EXPECT_FAIL(open_gguf("past_end.gguf"), LGPU_EFORMAT, "past_end.gguf", "tensor 't' data [offset");
    one_tensor("short_data.gguf", 2, ne64x2, LGPU_TYPE_F32, 0, 511);
    EXPECT_FAIL(open_gguf("short_data.gguf"), LGPU_EFORMAT, "short_data.gguf", "extends past end of file (size");

    bb b = {0};
    header(&b, 3, 2, 0);
    tinfo(&b, "a", 2, ne64x2, LGPU_TYPE_F32, 0);
    tinfo(&b, "b", 2, ne64x2, LGPU_TYPE_F32, 256); /* a is 512 bytes */
    pad_zeros(&b, 32, 1024);
    save(&b, "overlap.gguf");
    EXPECT_FAIL(open_gguf("overlap.gguf"), LGPU_EFORMAT, "overlap.gguf", "'a' and 'b' overlap");
    header(&b, 3, 2, 0);
    tinfo(&b, "a", 2, ne64x2, LGPU_TYPE_F32, 0);
    tinfo(&b, "a", 2, ne64x2, LGPU_TYPE_F32, 512);
    pad_zeros(&b, 32, 1024);
    save(&b, "dup_tensor.gguf");
    EXPECT_FAIL(open_gguf("dup_tensor.gguf"), LGPU_EFORMAT, "dup_tensor.gguf", "duplicate tensor name 'a'");
    header(&b, 3, 1, 0);
    tinfo(&b, "t", 2, ne64x2, LGPU_TYPE_F32, 0);
    save(&b, "no_data.gguf"); /* ends right after the infos */
    EXPECT_FAIL(open_gguf("no_data.gguf"), LGPU_EFORMAT, "no_data.gguf", "past end of file");
}

/* A real file cut at many lengths: always EFORMAT naming the file; full length opens. */
static void test_gguf_truncated(void **state) {
    (void)state;
    size_t n;
    uint8_t *full = read_file(tu_model_path("stories260K.gguf"), &n);
    int count = 0;
    for (size_t len = 0; len < n; len += len < 700 ? 1 : len < 15000 ? 17 : 49999) {
        write_file(tmp("trunc.gguf"), full, len);
        int st = open_gguf("trunc.gguf");
        if (st != LGPU_EFORMAT || !strstr(lgpu_last_error(), "trunc.gguf"))
            fail_msg("length %zu: %s \"%s\"", len, lgpu_err_name(st), lgpu_last_error());
        count++;
    }
    write_file(tmp("trunc.gguf"), full, n);
    TU_OK(open_gguf("trunc.gguf"));
    printf("%d truncated lengths rejected\n", count);
    free(full);
}

/* A small but complete llama GGUF written with our writer, shaped by `o`. */
typedef struct {
    const char *arch;
    uint32_t dim, heads, kv_heads, hidden, layers, vocab;
    const char *drop;   /* tensor left out */
    const char *skew;   /* tensor given the wrong row count */
    int norm_type;      /* type of the attn_norm tensors */
    bool with_vocab;
    uint32_t key_dim;   /* embedding_length written to the metadata (0: dim) */
} tiny_opts;

static tiny_opts tiny_default(void) {
    return (tiny_opts){"llama", 32, 4, 2, 64, 1, 300, NULL, NULL, LGPU_TYPE_F32, true, 0};
}

static void write_tiny(const char *file, tiny_opts o) {
    lgpu_gguf_writer *w;
    TU_OK(lgpu_gguf_writer_create(&w));
    TU_OK(lgpu_gguf_set_str(w, "general.architecture", o.arch));
    char k[128];
#define SETU(suffix, v)                                 \
    do {                                                \
        snprintf(k, sizeof k, "%s." suffix, o.arch);    \
        TU_OK(lgpu_gguf_set_u32(w, k, v));              \
    } while (0)
    SETU("context_length", 128);
    SETU("embedding_length", o.key_dim ? o.key_dim : o.dim);
    SETU("block_count", o.layers);
    SETU("feed_forward_length", o.hidden);
    SETU("attention.head_count", o.heads);
    SETU("attention.head_count_kv", o.kv_heads);
#undef SETU
    snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", o.arch);
    TU_OK(lgpu_gguf_set_f32(w, k, 1e-5f));
    if (o.with_vocab) TU_OK(lgpu_gguf_put_vocab_synth(w, o.vocab));
    static float data[1 << 16];
    for (int i = 0; i < (1 << 16); i++) data[i] = (float)(i % 97) * 0.01f;
    uint32_t kv = o.dim / (o.heads ? o.heads : 1) * o.kv_heads;
    struct { char name[64]; int64_t ne0, rows; } t[64];
    int n = 0;
#define T(ne0_, rows_, ...) (snprintf(t[n].name, 64, __VA_ARGS__), t[n].ne0 = (ne0_), t[n].rows = (rows_), n++)
    T(o.dim, o.vocab, "token_embd.weight");
    T(o.dim, 1, "output_norm.weight");
    T(o.dim, o.vocab, "output.weight");
    for (uint32_t l = 0; l < o.layers; l++) {
        T(o.dim, 1, "blk.%u.attn_norm.weight", l);
        T(o.dim, o.dim, "blk.%u.attn_q.weight", l);
        T(o.dim, kv, "blk.%u.attn_k.weight", l);
        T(o.dim, kv, "blk.%u.attn_v.weight", l);
        T(o.dim, o.dim, "blk.%u.attn_output.weight", l);
        T(o.dim, 1, "blk.%u.ffn_norm.weight", l);
        T(o.dim, o.hidden, "blk.%u.ffn_gate.weight", l);
        T(o.dim, o.hidden, "blk.%u.ffn_up.weight", l);
        T(o.hidden, o.dim, "blk.%u.ffn_down.weight", l);
    }
#undef T
    for (int i = 0; i < n; i++) {
        if (o.drop && !strcmp(t[i].name, o.drop)) continue;
        int64_t ne[2] = {t[i].ne0, t[i].rows};
        if (o.skew && !strcmp(t[i].name, o.skew)) ne[1]++;
        int type = strstr(t[i].name, "attn_norm") ? o.norm_type : LGPU_TYPE_F32;
        assert_true(lgpu_type_row_bytes(type, ne[0]) * (size_t)ne[1] <= sizeof data);
        TU_OK(lgpu_gguf_writer_add_tensor(w, t[i].name, type, ne[1] > 1 ? 2 : 1, ne, data));
    }
    TU_OK(lgpu_gguf_writer_write_file(w, tmp(file)));
    lgpu_gguf_writer_destroy(w);
}

static int open_model(const char *name) {
    lgpu_model_file *mf = NULL;
    int st = lgpu_model_file_create(tmp(name), &mf);
    lgpu_model_file_destroy(mf);
    return st;
}

static void test_model_file_errors(void **state) {
    (void)state;
    tiny_opts o = tiny_default();
    write_tiny("tiny.gguf", o);
    TU_OK(open_model("tiny.gguf"));
    o = tiny_default(), o.arch = "qwen2";
    write_tiny("qwen.gguf", o);
    EXPECT_FAIL(open_model("qwen.gguf"), LGPU_EUNSUPPORTED, "qwen.gguf", "architecture 'qwen2' is not supported");
    o = tiny_default(), o.key_dim = 2000000;
    write_tiny("absurd.gguf", o);
    EXPECT_FAIL(open_model("absurd.gguf"), LGPU_EFORMAT, "absurd.gguf", "dim = 2000000 is out of range");
    o = tiny_default(), o.heads = 5;
    write_tiny("heads.gguf", o);
    EXPECT_FAIL(open_model("heads.gguf"), LGPU_EFORMAT, "heads.gguf", "n_heads = 5 does not divide dim = 32");
    o = tiny_default(), o.kv_heads = 3;
    write_tiny("kvheads.gguf", o);
    EXPECT_FAIL(open_model("kvheads.gguf"), LGPU_EFORMAT, "kvheads.gguf", "n_kv_heads = 3 does not divide n_heads = 4");
    o = tiny_default(), o.drop = "blk.0.attn_v.weight";
    write_tiny("missing.gguf", o);
    EXPECT_FAIL(open_model("missing.gguf"), LGPU_EFORMAT, "missing.gguf", "missing tensor 'blk.0.attn_v.weight'");
    o = tiny_default(), o.skew = "blk.0.ffn_down.weight";
    write_tiny("shape.gguf", o);
    EXPECT_FAIL(open_model("shape.gguf"), LGPU_EFORMAT, "shape.gguf", "tensor 'blk.0.ffn_down.weight' has shape [64 x 33 rows]");
    o = tiny_default(), o.norm_type = LGPU_TYPE_F16;
    write_tiny("f16norm.gguf", o);
    EXPECT_FAIL(open_model("f16norm.gguf"), LGPU_EUNSUPPORTED, "f16norm.gguf", "'blk.0.attn_norm.weight' has type f16");
    o = tiny_default(), o.drop = "output.weight"; /* tied: fine */
    write_tiny("tied.gguf", o);
    lgpu_model_file *mf;
    TU_OK(lgpu_model_file_create(tmp("tied.gguf"), &mf));
    assert_true(lgpu_model_file_hparams(mf)->tied_output);
    assert_int_equal(lgpu_model_file_hparams(mf)->n_vocab, 300);
    lgpu_model_file_destroy(mf);
    o = tiny_default(), o.drop = "token_embd.weight";
    write_tiny("noembd.gguf", o);
    EXPECT_FAIL(open_model("noembd.gguf"), LGPU_EFORMAT, "noembd.gguf", "missing tensor 'token_embd.weight'");

    /* llama2.c checkpoints */
    size_t n;
    uint8_t *bin = read_file(tu_model_path("stories260K.bin"), &n);
    write_file(tmp("cut.bin"), bin, n - 4);
    EXPECT_FAIL(open_model("cut.bin"), LGPU_EFORMAT, "cut.bin", "should be 1056540 bytes but the file has 1056536");
    int32_t hdr[7] = {64, 172, 5, 8, 4, -512, 512}; /* unshared classifier: needs 512 x 64 more floats */
    memcpy(bin, hdr, sizeof hdr);
    write_file(tmp("wcls.bin"), bin, n);
    EXPECT_FAIL(open_model("wcls.bin"), LGPU_EFORMAT, "wcls.bin", "vocab_size=-512");
    int32_t bad[7] = {64, 172, 5, 7, 4, 512, 512}; /* 7 heads do not divide 64 */
    memcpy(bin, bad, sizeof bad);
    write_file(tmp("heads.bin"), bin, n);
    EXPECT_FAIL(open_model("heads.bin"), LGPU_EFORMAT, "heads.bin", "not a llama2.c checkpoint");
    const int32_t ak42[2] = {0x616b3432, 1}; /* export.py version 1 header */
    memcpy(bin, ak42, sizeof ak42);
    write_file(tmp("v1.bin"), bin, n);
    EXPECT_FAIL(open_model("v1.bin"), LGPU_EUNSUPPORTED, "v1.bin", "export version 1");
    write_file(tmp("garbage.bin"), "hello world, this is text", 25);
    EXPECT_FAIL(open_model("garbage.bin"), LGPU_EFORMAT, "garbage.bin", "unrecognized model file");
    write_file(tmp("small.bin"), "hi", 2);
    EXPECT_FAIL(open_model("small.bin"), LGPU_EFORMAT, "small.bin", "unrecognized model file");
    free(bin);
    EXPECT_FAIL(open_model("nothing-here"), LGPU_ENOTFOUND, "nothing-here", "no such file");
    mkdir(tmp("emptydir"), 0755);
    EXPECT_FAIL(open_model("emptydir"), LGPU_EFORMAT, "emptydir", "no config.json");
}

/* Every header byte of a small model flipped: no crash, a sane status, a named file. */
static void test_gguf_byte_flips(void **state) {
    (void)state;
    tiny_opts o = tiny_default();
    o.vocab = 260;
    write_tiny("flip_src.gguf", o);
    size_t n;
    uint8_t *orig = read_file(tmp("flip_src.gguf"), &n);
    lgpu_gguf *g;
    TU_OK(lgpu_gguf_create(tmp("flip_src.gguf"), &g));
    size_t hdr = (size_t)lgpu_gguf_data_offset(g);
    lgpu_gguf_destroy(g);
    uint8_t *m = malloc(n);
    int fails = 0, oks = 0;
    const uint8_t pats[] = {0xff, 0x80, 0x01};
    for (size_t pos = 0; pos < hdr; pos++)
        for (int p = 0; p < 3; p++) {
            if (pos > 128 && (p > 0 ? pos % 35 : pos % 5)) continue; /* past the header: sample */
            memcpy(m, orig, n);
            m[pos] ^= pats[p];
            write_file(tmp("flip.gguf"), m, n);
            lgpu_model_file *mf = NULL;
            int st = lgpu_model_file_create(tmp("flip.gguf"), &mf);
            lgpu_model_file_destroy(mf);
            if (st == 0) oks++;
            else if ((st == LGPU_EFORMAT || st == LGPU_EUNSUPPORTED) && strstr(lgpu_last_error(), "flip.gguf"))
                fails++;
            else
                fail_msg("byte %zu ^ 0x%02x: %s \"%s\"", pos, pats[p], lgpu_err_name(st), lgpu_last_error());
        }
    printf("byte flips: %d rejected, %d still valid (e.g. inside strings)\n", fails, oks);
    assert_true(fails > 100);
    free(m);
    free(orig);
}

/* ---- safetensors -------------------------------------------------------- */

static void write_st(const char *file, const char *json, const void *data, size_t n) {
    uint64_t hl = strlen(json);
    bb b = {0};
    u64(&b, hl);
    put(&b, json, hl);
    if (n) put(&b, data, n);
    save(&b, file);
}

static int open_st(const char *name) {
    lgpu_safetensors *s = NULL;
    int st = lgpu_safetensors_create(tmp(name), &s);
    lgpu_safetensors_destroy(s);
    return st;
}

static void test_safetensors(void **state) {
    (void)state;
    float f[6] = {1, 2, 3, 4, 5, 6};
    uint16_t bf[4] = {0x3f80, 0x4000, 0xbf80, 0x0000}; /* 1, 2, -1, 0 */
    uint8_t data[32];
    memcpy(data, f, 24);
    memcpy(data + 24, bf, 8);
    write_st("ok.safetensors",
             "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
             "\"c\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[32,32]}}",
             data, 32);
    lgpu_safetensors *s;
    TU_OK(lgpu_safetensors_create(tmp("ok.safetensors"), &s));
    assert_int_equal(lgpu_safetensors_n_tensors(s), 3);
    const lgpu_st_tensor *a = lgpu_safetensors_find(s, "a"), *b = lgpu_safetensors_find(s, "b"), *c = lgpu_safetensors_find(s, "c");
    assert_non_null(a);
    assert_int_equal(a->type, LGPU_TYPE_F32);
    assert_int_equal(a->n_dims, 2);
    assert_int_equal(a->shape[0], 2);
    assert_int_equal(a->shape[1], 3);
    assert_int_equal(a->nbytes, 24);
    assert_memory_equal(a->data, f, 24);
    assert_int_equal(b->type, LGPU_TYPE_BF16);
    float bv[4];
    uint16_t braw[4]; /* safetensors data need not be aligned */
    memcpy(braw, b->data, 8);
    TU_OK(lgpu_dequantize_row(LGPU_TYPE_BF16, braw, bv, 4));
    assert_true(bv[0] == 1 && bv[1] == 2 && bv[2] == -1 && bv[3] == 0);
    assert_int_equal(c->type, -1);
    assert_string_equal(c->dtype, "I64");
    assert_null(lgpu_safetensors_find(s, "__metadata__"));
    lgpu_safetensors_destroy(s);

    write_file(tmp("short.safetensors"), "abc", 3);
    EXPECT_FAIL(open_st("short.safetensors"), LGPU_EFORMAT, "short.safetensors", "no safetensors header");
    uint64_t huge = 1ull << 40;
    write_file(tmp("hlen.safetensors"), &huge, 8);
    EXPECT_FAIL(open_st("hlen.safetensors"), LGPU_EFORMAT, "hlen.safetensors", "header length");
    write_st("json.safetensors", "{\"a\":", NULL, 0);
    EXPECT_FAIL(open_st("json.safetensors"), LGPU_EFORMAT, "json.safetensors", "header JSON");
    write_st("array.safetensors", "[1,2]", NULL, 0);
    EXPECT_FAIL(open_st("array.safetensors"), LGPU_EFORMAT, "array.safetensors", "not an object");
    write_st("dup.safetensors", "{\"a\":{},\"a\":{}}", NULL, 0);
    EXPECT_FAIL(open_st("dup.safetensors"), LGPU_EFORMAT, "dup.safetensors", "duplicate");
    write_st("nodtype.safetensors", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", data, 4);
    EXPECT_FAIL(open_st("nodtype.safetensors"), LGPU_EFORMAT, "nodtype.safetensors", "tensor 'a': needs string dtype");
    write_st("dtype.safetensors", "{\"a\":{\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,4]}}", data, 4);
    EXPECT_FAIL(open_st("dtype.safetensors"), LGPU_EUNSUPPORTED, "dtype.safetensors", "unknown dtype 'F7'");
    write_st("negshape.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", data, 4);
    EXPECT_FAIL(open_st("negshape.safetensors"), LGPU_EFORMAT, "negshape.safetensors", "shape[0]");
    write_st("past.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data, 4);
    EXPECT_FAIL(open_st("past.safetensors"), LGPU_EFORMAT, "past.safetensors", "extends past end of file");
    write_st("size.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", data, 24);
    EXPECT_FAIL(open_st("size.safetensors"), LGPU_EFORMAT, "size.safetensors", "20 bytes of data for 6 F32 elements");
    write_st("order.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", data, 8);
    EXPECT_FAIL(open_st("order.safetensors"), LGPU_EFORMAT, "order.safetensors", "begin <= end");
    write_st("overlap.safetensors",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             data, 12);
    EXPECT_FAIL(open_st("overlap.safetensors"), LGPU_EFORMAT, "overlap.safetensors", "overlap");
    /* truncation of the valid file at every length */
    size_t n;
    uint8_t *full = read_file(tmp("ok.safetensors"), &n);
    for (size_t len = 0; len < n; len++) {
        write_file(tmp("cut.safetensors"), full, len);
        int st = open_st("cut.safetensors");
        if (st != LGPU_EFORMAT || !strstr(lgpu_last_error(), "cut.safetensors"))
            fail_msg("length %zu: %s \"%s\"", len, lgpu_err_name(st), lgpu_last_error());
    }
    free(full);
}

/* ---- HF directories ----------------------------------------------------- */

/* Tiny LLaMA: dim 8, 2 heads (head_dim 4), 1 kv head, hidden 32, 2 layers,
 * vocab 16. Tensor k's element i holds k*1000 + i, so rows are traceable. */
typedef struct {
    char name[96];
    const char *dtype;
    int64_t rows, cols; /* cols 0: vector */
} hf_t;

static int hf_list(hf_t *t, bool lm_head) {
    int n = 0;
#define H(dt, r, c, ...) (snprintf(t[n].name, 96, __VA_ARGS__), t[n].dtype = (dt), t[n].rows = (r), t[n].cols = (c), n++)
    H("F32", 16, 8, "model.embed_tokens.weight");
    H("BF16", 8, 0, "model.norm.weight");
    if (lm_head) H("F16", 16, 8, "lm_head.weight");
    for (int l = 0; l < 2; l++) {
        H("F32", 8, 0, "model.layers.%d.input_layernorm.weight", l);
        H("F32", 8, 8, "model.layers.%d.self_attn.q_proj.weight", l);
        H("F32", 4, 8, "model.layers.%d.self_attn.k_proj.weight", l);
        H("F32", 4, 8, "model.layers.%d.self_attn.v_proj.weight", l);
        H("F32", 8, 8, "model.layers.%d.self_attn.o_proj.weight", l);
        H("F32", 8, 0, "model.layers.%d.post_attention_layernorm.weight", l);
        H("F32", 32, 8, "model.layers.%d.mlp.gate_proj.weight", l);
        H("F32", 32, 8, "model.layers.%d.mlp.up_proj.weight", l);
        H("F32", 8, 32, "model.layers.%d.mlp.down_proj.weight", l);
    }
#undef H
    return n;
}

static float hf_value(int k, int64_t i) { return (float)(k * 1000 + i); }

/* Writes tensors [first, last) of the list to one safetensors file. */
static void hf_write_shard(const char *path, hf_t *t, int first, int last) {
    char json[8192];
    size_t jo = 0, off = 0;
    uint8_t *data = malloc(1 << 16);
    jo += (size_t)snprintf(json + jo, sizeof json - jo, "{");
    for (int k = first; k < last; k++) {
        int64_t n = t[k].rows * (t[k].cols ? t[k].cols : 1);
        size_t es = strcmp(t[k].dtype, "F32") ? 2 : 4;
        for (int64_t i = 0; i < n; i++) {
            float v = hf_value(k, i);
            if (es == 4) memcpy(data + off + i * 4, &v, 4);
            else {
                uint16_t h = !strcmp(t[k].dtype, "F16") ? lgpu_f32_to_f16(v) : lgpu_f32_to_bf16(v);
                memcpy(data + off + i * 2, &h, 2);
            }
        }
        if (t[k].cols)
            jo += (size_t)snprintf(json + jo, sizeof json - jo, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                                   k > first ? "," : "", t[k].name, t[k].dtype, (long long)t[k].rows, (long long)t[k].cols,
                                   off, off + (size_t)n * es);
        else
            jo += (size_t)snprintf(json + jo, sizeof json - jo, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}",
                                   k > first ? "," : "", t[k].name, t[k].dtype, (long long)t[k].rows, off, off + (size_t)n * es);
        off += (size_t)n * es;
    }
    snprintf(json + jo, sizeof json - jo, "}");
    uint64_t hl = strlen(json);
    FILE *f = fopen(path, "wb");
    fwrite(&hl, 8, 1, f);
    fwrite(json, 1, hl, f);
    fwrite(data, 1, off, f);
    fclose(f);
    free(data);
}

static void hf_write_config(const char *dir, const char *extra) {
    char p[600], cfg[2048];
    snprintf(p, sizeof p, "%s/config.json", dir);
    snprintf(cfg, sizeof cfg,
             "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":8,"
             "\"intermediate_size\":32,\"num_hidden_layers\":2,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
             "\"rms_norm_eps\":1e-06,\"rope_theta\":10000.0,\"vocab_size\":16,\"max_position_embeddings\":64,"
             "\"torch_dtype\":\"float32\"%s}",
             extra);
    write_file(p, cfg, strlen(cfg));
}

static void make_hf_dir(const char *name, const char *extra_cfg, bool lm_head, bool sharded) {
    const char *dir = tmp(name);
    mkdir(dir, 0755);
    hf_write_config(dir, extra_cfg);
    hf_t t[64];
    int n = hf_list(t, lm_head);
    char p[600];
    if (!sharded) {
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        hf_write_shard(p, t, 0, n);
        return;
    }
    int half = n / 2;
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    hf_write_shard(p, t, 0, half);
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    hf_write_shard(p, t, half, n);
    char ix[8192];
    size_t o = (size_t)snprintf(ix, sizeof ix, "{\"metadata\":{},\"weight_map\":{");
    for (int k = 0; k < n; k++)
        o += (size_t)snprintf(ix + o, sizeof ix - o, "%s\"%s\":\"model-0000%d-of-00002.safetensors\"", k ? "," : "",
                              t[k].name, k < half ? 1 : 2);
    snprintf(ix + o, sizeof ix - o, "}}");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_file(p, ix, strlen(ix));
}

/* GGUF row r of a permuted Q/K with head_dim 4 comes from HF row perm[r % 4] + 4 * (r / 4):
 * dst row h*4 + 2i + j <- src row h*4 + 2j + i  (i < 2, j < 2), i.e. 0,2,1,3. */
static void check_hf_view(const lgpu_model_file *mf, bool lm_head) {
    static const int perm[4] = {0, 2, 1, 3};
    const lgpu_file_hparams *h = lgpu_model_file_hparams(mf);
    assert_int_equal(h->dim, 8);
    assert_int_equal(h->n_heads, 2);
    assert_int_equal(h->n_kv_heads, 1);
    assert_int_equal(h->head_dim, 4);
    assert_int_equal(h->hidden_dim, 32);
    assert_int_equal(h->n_layers, 2);
    assert_int_equal(h->n_vocab, 16);
    assert_int_equal(h->n_ctx_train, 64);
    assert_true(h->norm_eps == 1e-6f);
    assert_int_equal(h->tied_output, !lm_head);
    hf_t t[64];
    int n = hf_list(t, lm_head);
    int kq = -1, kk = -1, kn = -1, ke = -1, kd = -1;
    for (int k = 0; k < n; k++) {
        if (!strcmp(t[k].name, "model.layers.1.self_attn.q_proj.weight")) kq = k;
        if (!strcmp(t[k].name, "model.layers.1.self_attn.k_proj.weight")) kk = k;
        if (!strcmp(t[k].name, "model.norm.weight")) kn = k;
        if (!strcmp(t[k].name, "model.embed_tokens.weight")) ke = k;
        if (!strcmp(t[k].name, "model.layers.0.mlp.down_proj.weight")) kd = k;
    }
    lgpu_model_tensor q, kt, norm, emb, down;
    TU_OK(lgpu_model_file_tensor(mf, "blk.1.attn_q.weight", &q));
    TU_OK(lgpu_model_file_tensor(mf, "blk.1.attn_k.weight", &kt));
    TU_OK(lgpu_model_file_tensor(mf, "output_norm.weight", &norm));
    TU_OK(lgpu_model_file_tensor(mf, "token_embd.weight", &emb));
    TU_OK(lgpu_model_file_tensor(mf, "blk.0.ffn_down.weight", &down));
    assert_int_equal(q.n_rows, 8);
    assert_int_equal(kt.n_rows, 4);
    for (int r = 0; r < 8; r++)
        for (int c = 0; c < 8; c++)
            assert_true(((const float *)q.data)[r * 8 + c] == hf_value(kq, (perm[r % 4] + 4 * (r / 4)) * 8 + c));
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 8; c++) assert_true(((const float *)kt.data)[r * 8 + c] == hf_value(kk, perm[r] * 8 + c));
    assert_int_equal(norm.type, LGPU_TYPE_F32); /* BF16 in the file */
    for (int i = 0; i < 8; i++) assert_true(((const float *)norm.data)[i] == lgpu_bf16_to_f32(lgpu_f32_to_bf16(hf_value(kn, i))));
    for (int i = 0; i < 128; i++) assert_true(((const float *)emb.data)[i] == hf_value(ke, i)); /* not permuted */
    assert_int_equal(down.ne0, 32);
    assert_int_equal(down.n_rows, 8);
    assert_true(((const float *)down.data)[40] == hf_value(kd, 40));
    lgpu_model_tensor out;
    if (lm_head) {
        TU_OK(lgpu_model_file_tensor(mf, "output.weight", &out));
        assert_int_equal(out.type, LGPU_TYPE_F16);
    } else
        assert_int_equal(lgpu_model_file_tensor(mf, "output.weight", &out), LGPU_ENOTFOUND);
}

static void test_hf_dir(void **state) {
    (void)state;
    make_hf_dir("hf1", "", true, false);
    lgpu_model_file *mf;
    TU_OK(lgpu_model_file_create(tmp("hf1"), &mf));
    assert_int_equal(lgpu_model_file_source(mf), LGPU_MODEL_SRC_HF);
    assert_string_equal(lgpu_model_file_hf_dir(mf), tmp("hf1"));
    assert_null(lgpu_model_file_gguf(mf));
    check_hf_view(mf, true);
    lgpu_model_file_destroy(mf);

    make_hf_dir("hf_sharded", ",\"tie_word_embeddings\":true", false, true);
    TU_OK(lgpu_model_file_create(tmp("hf_sharded"), &mf));
    check_hf_view(mf, false);
    lgpu_model_file_destroy(mf);

    make_hf_dir("hf_rope", ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,"
                           "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}", true, false);
    TU_OK(lgpu_model_file_create(tmp("hf_rope"), &mf));
    const lgpu_rope_scaling *rs = &lgpu_model_file_hparams(mf)->rope_scaling;
    assert_true(rs->factor == 8.0f && rs->low_freq_factor == 1.0f && rs->high_freq_factor == 4.0f);
    assert_int_equal(rs->original_ctx, 8192);
    lgpu_model_file_destroy(mf);

    /* failures */
    mkdir(tmp("hf_mistral"), 0755);
    write_file(tmp("hf_mistral/config.json"), "{\"model_type\":\"mistral\"}", 24);
    EXPECT_FAIL(open_model("hf_mistral"), LGPU_EUNSUPPORTED, "hf_mistral", "architecture 'mistral' is not supported");
    make_hf_dir("hf_scaling", ",\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.0}", true, false);
    EXPECT_FAIL(open_model("hf_scaling"), LGPU_EUNSUPPORTED, "hf_scaling", "rope_scaling type 'linear'");
    make_hf_dir("hf_nohidden", "", true, false);
    const char *nohidden = "{\"model_type\":\"llama\",\"intermediate_size\":32,\"num_hidden_layers\":2}";
    write_file(tmp("hf_nohidden/config.json"), nohidden, strlen(nohidden));
    EXPECT_FAIL(open_model("hf_nohidden"), LGPU_EFORMAT, "hf_nohidden", "missing \"hidden_size\"");
    make_hf_dir("hf_layers", "", true, false);
    const char *layers3 = "{\"model_type\":\"llama\",\"hidden_size\":8,\"intermediate_size\":32,\"num_hidden_layers\":3,"
                          "\"num_attention_heads\":2,\"vocab_size\":16}";
    write_file(tmp("hf_layers/config.json"), layers3, strlen(layers3));
    EXPECT_FAIL(open_model("hf_layers"), LGPU_EFORMAT, "hf_layers", "missing tensor model.layers.2.input_layernorm.weight");
    make_hf_dir("hf_heads", "", true, false);
    const char *heads3 = "{\"model_type\":\"llama\",\"hidden_size\":8,\"intermediate_size\":32,\"num_hidden_layers\":2,"
                         "\"num_attention_heads\":3,\"vocab_size\":16}";
    write_file(tmp("hf_heads/config.json"), heads3, strlen(heads3));
    EXPECT_FAIL(open_model("hf_heads"), LGPU_EFORMAT, "hf_heads", "does not divide");
    mkdir(tmp("hf_noweights"), 0755);
    hf_write_config(tmp("hf_noweights"), "");
    EXPECT_FAIL(open_model("hf_noweights"), LGPU_EFORMAT, "hf_noweights", "neither model.safetensors");
    make_hf_dir("hf_badjson", "", true, false);
    write_file(tmp("hf_badjson/config.json"), "{", 1);
    EXPECT_FAIL(open_model("hf_badjson"), LGPU_EFORMAT, "hf_badjson/config.json", "line 1");
    make_hf_dir("hf_badindex", "", true, true);
    write_file(tmp("hf_badindex/model.safetensors.index.json"), "{\"weight_map\":{\"x\":\"../etc/passwd\"}}", 36);
    EXPECT_FAIL(open_model("hf_badindex"), LGPU_EFORMAT, "hf_badindex", "bad shard file name '../etc/passwd'");
}

/* HF dir + tokenizer.json -> GGUF: the permuted weights and a gpt2 vocab. */
static void test_convert_hf(void **state) {
    (void)state;
    make_hf_dir("hfc", ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,"
                       "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":16}", true, false);
    const char *tj =
        "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":14,\"content\":\"<|begin_of_text|>\",\"special\":true},"
        "{\"id\":15,\"content\":\"<|eot_id|>\",\"special\":true}],"
        "\"model\":{\"type\":\"BPE\",\"byte_fallback\":false,\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"abc\":4,"
        "\"\\u0120\":5,\"\\u0120a\":6,\"d\":7,\"e\":8,\"f\":9,\"g\":10,\"h\":11,\"i\":12},"
        "\"merges\":[\"a b\",[\"ab\",\"c\"],\"\\u0120 a\"]},"
        "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}}";
    /* without a ByteLevel or SentencePiece-style part the loader could not read it: refused */
    const char *bare = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}";
    write_file(tmp("hfc/tokenizer.json"), bare, strlen(bare));
    assert_int_equal(lgpu_convert_to_gguf(tmp("hfc"), tmp("hfc.gguf"), NULL), LGPU_EUNSUPPORTED);
    assert_non_null(strstr(lgpu_last_error(), "neither byte-level nor SentencePiece"));
    write_file(tmp("hfc/tokenizer.json"), tj, strlen(tj));
    const char *tc = "{\"bos_token\":\"<|begin_of_text|>\",\"eos_token\":{\"content\":\"<|eot_id|>\"},"
                     "\"add_bos_token\":true,\"chat_template\":\"{{ messages }}\"}";
    write_file(tmp("hfc/tokenizer_config.json"), tc, strlen(tc));
    TU_OK(lgpu_convert_to_gguf(tmp("hfc"), tmp("hfc.gguf"), NULL));

    lgpu_model_file *a, *b;
    TU_OK(lgpu_model_file_create(tmp("hfc"), &a));
    TU_OK(lgpu_model_file_create(tmp("hfc.gguf"), &b));
    for (int64_t i = 0; i < lgpu_model_file_n_tensors(a); i++) {
        const lgpu_model_tensor *x = lgpu_model_file_tensor_at(a, i);
        lgpu_model_tensor y;
        TU_OK(lgpu_model_file_tensor(b, x->name, &y));
        assert_int_equal(x->type, y.type);
        assert_int_equal(x->nbytes, y.nbytes);
        if (memcmp(x->data, y.data, x->nbytes)) fail_msg("tensor %s differs", x->name);
    }
    lgpu_model_tensor rf;
    TU_OK(lgpu_model_file_tensor(b, "rope_freqs.weight", &rf)); /* llama3 scaling as llama.cpp writes it */
    assert_int_equal(rf.ne0, 2);
    /* head_dim 4, theta 1e4: freqs 1 and 0.01 -> wavelengths 2 pi (between 16/4 and 16/1: smoothed)
     * and 628 (> 16: the full factor 8). Tolerance: float rounding of the formula. */
    double smooth = (16 / (2 * M_PI) - 1.0) / (4.0 - 1.0);
    assert_float_equal(((const float *)rf.data)[0], 1.0 / ((1 - smooth) / 8 + smooth), 1e-6);
    assert_true(((const float *)rf.data)[1] == 8.0f);
    const lgpu_gguf *g = lgpu_model_file_gguf(b);
    assert_string_equal(lgpu_gguf_get_str(g, "tokenizer.ggml.model", ""), "gpt2");
    assert_string_equal(lgpu_gguf_get_str(g, "tokenizer.ggml.pre", ""), "llama-bpe");
    assert_string_equal(lgpu_gguf_get_str(g, "tokenizer.chat_template", ""), "{{ messages }}");
    assert_int_equal(lgpu_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", 0), 14);
    assert_int_equal(lgpu_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", 0), 15);
    assert_true(lgpu_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", false));
    int64_t km = lgpu_gguf_find_key(g, "tokenizer.ggml.merges"), kt = lgpu_gguf_find_key(g, "tokenizer.ggml.token_type");
    int64_t kk = lgpu_gguf_find_key(g, "tokenizer.ggml.tokens");
    size_t len;
    const char *s = lgpu_gguf_arr_str(g, km, 1, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(s, "ab c", 4);
    s = lgpu_gguf_arr_str(g, kk, 13, &len); /* hole in the ids */
    assert_int_equal(len, 7);
    assert_memory_equal(s, "[PAD13]", 7);
    assert_int_equal(lgpu_gguf_arr_int(g, kt, 0, 0), 1);
    assert_int_equal(lgpu_gguf_arr_int(g, kt, 13, 0), 4);
    assert_int_equal(lgpu_gguf_arr_int(g, kt, 14, 0), 3);
    assert_int_equal(lgpu_gguf_find_key(g, "tokenizer.ggml.scores"), -1);
    lgpu_model_file_destroy(a);
    lgpu_model_file_destroy(b);

    /* byte_fallback BPE (LLaMA-2 style tokenizer.json) -> SPM with scores from the merge ranks */
    mkdir(tmp("hfspm"), 0755);
    const char *spm =
        "{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true},{\"id\":1,\"content\":\"<s>\",\"special\":true},"
        "{\"id\":2,\"content\":\"</s>\",\"special\":true}],"
        "\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"unk_token\":\"<unk>\",\"vocab\":{\"<unk>\":0,\"<s>\":1,"
        "\"</s>\":2,\"<0x41>\":3,\"\u2581\":4,\"a\":5,\"b\":6,\"\u2581a\":7,\"ab\":8,\"\u2581ab\":9},"
        "\"merges\":[\"\u2581 a\",\"a b\",\"\u2581a b\"]}}";
    write_file(tmp("hfspm/tokenizer.json"), spm, strlen(spm));
    lgpu_gguf_writer *w;
    TU_OK(lgpu_gguf_writer_create(&w));
    uint32_t ntok;
    TU_OK(lgpu_gguf_put_vocab_hf(w, tmp("hfspm"), 0, &ntok));
    assert_int_equal(ntok, 10);
    TU_OK(lgpu_gguf_writer_write_file(w, tmp("spm.gguf")));
    lgpu_gguf_writer_destroy(w);
    lgpu_gguf *v;
    TU_OK(lgpu_gguf_create(tmp("spm.gguf"), &v));
    assert_string_equal(lgpu_gguf_get_str(v, "tokenizer.ggml.model", ""), "llama");
    assert_int_equal(lgpu_gguf_get_u32(v, "tokenizer.ggml.unknown_token_id", 9), 0);
    /* no Prepend normalizer or Metaspace: no dummy prefix, as the loader reads it */
    assert_false(lgpu_gguf_get_bool(v, "tokenizer.ggml.add_space_prefix", true));
    int64_t ks = lgpu_gguf_find_key(v, "tokenizer.ggml.scores");
    kt = lgpu_gguf_find_key(v, "tokenizer.ggml.token_type");
    static const int types[10] = {2, 3, 3, 6, 1, 1, 1, 1, 1, 1};
    /* merges rank 0, 1, 2 -> scores 0, -1, -2; pieces no merge makes: -(3 merges + id) */
    static const double scores[10] = {0, 0, 0, 0, -7, -8, -9, 0, -1, -2};
    for (int i = 0; i < 10; i++) {
        assert_int_equal(lgpu_gguf_arr_int(v, kt, (uint64_t)i, -1), types[i]);
        assert_true(lgpu_gguf_arr_float(v, ks, (uint64_t)i, 99) == scores[i]);
    }
    assert_int_equal(lgpu_gguf_find_key(v, "tokenizer.ggml.merges"), -1);
    lgpu_gguf_destroy(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf_header_errors), cmocka_unit_test(test_gguf_tensor_errors),
        cmocka_unit_test(test_gguf_truncated),     cmocka_unit_test(test_model_file_errors),
        cmocka_unit_test(test_gguf_byte_flips),    cmocka_unit_test(test_safetensors),
        cmocka_unit_test(test_hf_dir),             cmocka_unit_test(test_convert_hf),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
