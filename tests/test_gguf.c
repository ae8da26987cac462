/* GGUF reader/writer, the unified model-file view, and the convert /
 * quantize / synth pipelines, against the real stories260K files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lgpu/convert.h"
#include "lgpu/gguf.h"
#include "lgpu/model_file.h"
#include "quant/quant.h"
#include "test_util.h"

/* One directory for the whole group, removed with everything in it at the end. */
static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    return tu_tmpdir_create("gguf", tmpdir, sizeof tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    return tu_tmpdir_remove(tmpdir);
}

static const char *tmp(const char *name) { return tu_path(tmpdir, name); }

static bool file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* ---- reading the real file -------------------------------------------- */

static void test_read_stories260k(void **state) {
    (void)state;
    lgpu_gguf *g;
    TU_OK(lgpu_gguf_create(tu_model_path("stories260K.gguf"), &g));
    assert_int_equal(lgpu_gguf_version(g), 3);
    assert_int_equal(lgpu_gguf_n_kv(g), 19);
    assert_int_equal(lgpu_gguf_n_tensors(g), 48);
    assert_int_equal(lgpu_gguf_alignment(g), 32);
    assert_int_equal(lgpu_gguf_data_offset(g) % 32, 0);
    assert_string_equal(lgpu_gguf_get_str(g, "general.architecture", NULL), "llama");
    assert_int_equal(lgpu_gguf_get_u32(g, "llama.embedding_length", 0), 64);
    assert_int_equal(lgpu_gguf_get_u32(g, "llama.feed_forward_length", 0), 172);
    assert_int_equal(lgpu_gguf_get_u32(g, "llama.block_count", 0), 5);
    assert_int_equal(lgpu_gguf_get_u32(g, "llama.attention.head_count", 0), 8);
    assert_int_equal(lgpu_gguf_get_u32(g, "llama.attention.head_count_kv", 0), 4);
    assert_int_equal(lgpu_gguf_get_u32(g, "llama.rope.dimension_count", 0), 8);
    assert_int_equal(lgpu_gguf_get_u32(g, "llama.context_length", 0), 2048);
    assert_float_equal(lgpu_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", 0), 1e-5f, 1e-12);
    assert_string_equal(lgpu_gguf_get_str(g, "tokenizer.ggml.model", NULL), "llama");
    assert_int_equal(lgpu_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", 99), 1);
    assert_int_equal(lgpu_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", 99), 2);
    assert_int_equal(lgpu_gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", 99), 0);
    /* defaults: absent key, wrong type, value out of range */
    assert_int_equal(lgpu_gguf_find_key(g, "no.such.key"), -1);
    assert_int_equal(lgpu_gguf_get_u32(g, "no.such.key", 7), 7);
    assert_int_equal(lgpu_gguf_get_u32(g, "general.architecture", 7), 7);
    assert_int_equal(lgpu_gguf_get_i32(g, "tokenizer.ggml.padding_token_id", -5), -5); /* u32 0xffffffff */
    assert_string_equal(lgpu_gguf_get_str(g, "llama.block_count", "dflt"), "dflt");
    assert_true(lgpu_gguf_get_bool(g, "no.such.key", true));

    int et;
    uint64_t n;
    const void *data;
    TU_OK(lgpu_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, &data));
    assert_int_equal(et, LGPU_GGUF_STRING);
    assert_int_equal(n, 512);
    assert_null(data);
    int64_t ki = lgpu_gguf_find_key(g, "tokenizer.ggml.tokens");
    size_t len;
    const char *s = lgpu_gguf_arr_str(g, ki, 0, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(s, "<unk>", 5);
    s = lgpu_gguf_arr_str(g, ki, 3, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(s, "<0x00>", 6);
    assert_null(lgpu_gguf_arr_str(g, ki, 512, &len));
    assert_int_equal(lgpu_gguf_get_arr(g, "general.name", NULL, NULL, NULL), LGPU_EINVAL);
    assert_int_equal(lgpu_gguf_get_arr(g, "nope", NULL, NULL, NULL), LGPU_ENOTFOUND);
    int64_t ti = lgpu_gguf_find_key(g, "tokenizer.ggml.token_type");
    assert_int_equal(lgpu_gguf_arr_int(g, ti, 0, -1), 2); /* unk */
    assert_int_equal(lgpu_gguf_arr_int(g, ti, 1, -1), 3); /* control */
    assert_int_equal(lgpu_gguf_arr_int(g, ti, 3, -1), 6); /* byte */
    assert_int_equal(lgpu_gguf_arr_int(g, ti, 300, -1), 1);
    int64_t si = lgpu_gguf_find_key(g, "tokenizer.ggml.scores");
    assert_true(lgpu_gguf_arr_float(g, si, 260, 1) == -1.0); /* merges score 0, -1, -2, ... from id 259 */

    const lgpu_gguf_tensor *t = lgpu_gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->type, LGPU_TYPE_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 512);
    assert_int_equal(t->nbytes, 131072);
    assert_int_equal((uintptr_t)t->data % 32, 0);
    t = lgpu_gguf_find_tensor(g, "blk.4.ffn_down.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 172);
    assert_int_equal(t->ne[1], 64);
    assert_null(lgpu_gguf_find_tensor(g, "blk.5.ffn_down.weight"));
    lgpu_gguf_destroy(g);
    lgpu_gguf_destroy(NULL);
}

/* The llama2.c checkpoint and llama.cpp's GGUF of it hold the same bits. */
static void test_llama2c_equals_gguf(void **state) {
    (void)state;
    lgpu_model_file *a, *b;
    TU_OK(lgpu_model_file_create(tu_model_path("stories260K.bin"), &a));
    TU_OK(lgpu_model_file_create(tu_model_path("stories260K.gguf"), &b));
    assert_int_equal(lgpu_model_file_source(a), LGPU_MODEL_SRC_LLAMA2C);
    assert_int_equal(lgpu_model_file_source(b), LGPU_MODEL_SRC_GGUF);
    assert_null(lgpu_model_file_gguf(a));
    assert_non_null(lgpu_model_file_gguf(b));
    const lgpu_file_hparams *ha = lgpu_model_file_hparams(a), *hb = lgpu_model_file_hparams(b);
    assert_int_equal(ha->n_vocab, 512);
    assert_int_equal(ha->dim, 64);
    assert_int_equal(ha->hidden_dim, 172);
    assert_int_equal(ha->n_layers, 5);
    assert_int_equal(ha->n_heads, 8);
    assert_int_equal(ha->n_kv_heads, 4);
    assert_int_equal(ha->head_dim, 8);
    assert_int_equal(ha->n_ctx_train, 512);
    assert_true(ha->tied_output);
    assert_false(hb->tied_output); /* llama.cpp's converter stored a copy as output.weight */
    assert_int_equal(hb->n_ctx_train, 2048);
    assert_int_equal(ha->n_vocab, hb->n_vocab);
    assert_int_equal(ha->dim, hb->dim);
    assert_int_equal(ha->hidden_dim, hb->hidden_dim);
    assert_int_equal(ha->n_layers, hb->n_layers);
    assert_int_equal(ha->n_heads, hb->n_heads);
    assert_int_equal(ha->n_kv_heads, hb->n_kv_heads);
    assert_true(ha->norm_eps == hb->norm_eps);
    assert_true(ha->rope_theta == hb->rope_theta);
    assert_true(hb->rope_scaling.factor <= 0);
    assert_int_equal(lgpu_model_file_n_tensors(a), 47);
    assert_int_equal(lgpu_model_file_n_tensors(b), 48);
    for (int64_t i = 0; i < lgpu_model_file_n_tensors(a); i++) {
        const lgpu_model_tensor *ta = lgpu_model_file_tensor_at(a, i);
        lgpu_model_tensor tb;
        TU_OK(lgpu_model_file_tensor(b, ta->name, &tb));
        assert_int_equal(ta->type, tb.type);
        assert_int_equal(ta->ne0, tb.ne0);
        assert_int_equal(ta->n_rows, tb.n_rows);
        assert_int_equal(ta->nbytes, tb.nbytes);
        if (memcmp(ta->data, tb.data, ta->nbytes)) fail_msg("tensor %s differs", ta->name);
    }
    lgpu_model_tensor emb, out;
    TU_OK(lgpu_model_file_tensor(a, "token_embd.weight", &emb));
    TU_OK(lgpu_model_file_tensor(b, "output.weight", &out));
    assert_memory_equal(emb.data, out.data, emb.nbytes);
    assert_int_equal(lgpu_model_file_tensor(a, "output.weight", &out), LGPU_ENOTFOUND);
    assert_non_null(strstr(lgpu_last_error(), "output.weight"));
    assert_int_equal(lgpu_model_file_ftype(a), LGPU_TYPE_F32);
    lgpu_model_file_destroy(a);
    lgpu_model_file_destroy(b);
    lgpu_model_file_destroy(NULL);
}

/* ---- writer round trip ------------------------------------------------- */

static void test_write_read_roundtrip(void **state) {
    (void)state;
    for (int pass = 0; pass < 2; pass++) { /* default alignment, then 64 with streamed odd-sized chunks */
        lgpu_gguf_writer *w;
        TU_OK(lgpu_gguf_writer_create(&w));
        if (pass) TU_OK(lgpu_gguf_writer_set_alignment(w, 64));
        TU_OK(lgpu_gguf_set_u8(w, "t.u8", 200));
        TU_OK(lgpu_gguf_set_i8(w, "t.i8", -100));
        TU_OK(lgpu_gguf_set_u16(w, "t.u16", 60000));
        TU_OK(lgpu_gguf_set_i16(w, "t.i16", -30000));
        TU_OK(lgpu_gguf_set_u32(w, "t.u32", 4000000000u));
        TU_OK(lgpu_gguf_set_i32(w, "t.i32", -2000000000));
        TU_OK(lgpu_gguf_set_u64(w, "t.u64", 18000000000000000000ull));
        TU_OK(lgpu_gguf_set_i64(w, "t.i64", -9000000000000000000ll));
        TU_OK(lgpu_gguf_set_f32(w, "t.f32", 3.25f));
        TU_OK(lgpu_gguf_set_f64(w, "t.f64", -1e300));
        TU_OK(lgpu_gguf_set_bool(w, "t.bool", true));
        TU_OK(lgpu_gguf_set_str(w, "t.str", "h\xc3\xa9llo \"w\"\n"));
        TU_OK(lgpu_gguf_set_str(w, "t.empty", ""));
        TU_OK(lgpu_gguf_set_u32(w, "t.replaced", 1));
        TU_OK(lgpu_gguf_set_u32(w, "t.replaced", 2)); /* replaces in place */
        TU_OK(lgpu_gguf_set_u32(w, "t.removed", 3));
        TU_OK(lgpu_gguf_writer_remove_key(w, "t.removed"));
        const uint8_t au8[] = {1, 2, 255};
        const int16_t ai16[] = {-1, 2, -3, 4};
        const float af32[] = {0.5f, -1.5f};
        const double af64[] = {1e-300};
        const int64_t ai64[] = {INT64_MIN, INT64_MAX};
        const uint64_t au64[] = {UINT64_MAX};
        const uint8_t abool[] = {1, 0, 1};
        TU_OK(lgpu_gguf_set_arr(w, "a.u8", LGPU_GGUF_U8, 3, au8));
        TU_OK(lgpu_gguf_set_arr(w, "a.i16", LGPU_GGUF_I16, 4, ai16));
        TU_OK(lgpu_gguf_set_arr(w, "a.f32", LGPU_GGUF_F32, 2, af32));
        TU_OK(lgpu_gguf_set_arr(w, "a.f64", LGPU_GGUF_F64, 1, af64));
        TU_OK(lgpu_gguf_set_arr(w, "a.i64", LGPU_GGUF_I64, 2, ai64));
        TU_OK(lgpu_gguf_set_arr(w, "a.u64", LGPU_GGUF_U64, 1, au64));
        TU_OK(lgpu_gguf_set_arr(w, "a.bool", LGPU_GGUF_BOOL, 3, abool));
        TU_OK(lgpu_gguf_set_arr(w, "a.empty", LGPU_GGUF_I32, 0, NULL));
        const char *strs[] = {"x", "", "\xe2\x96\x81the"};
        TU_OK(lgpu_gguf_set_arr_str(w, "a.str", 3, strs, NULL));
        assert_int_equal(lgpu_gguf_set_arr(w, "a.bad", LGPU_GGUF_STRING, 1, strs), LGPU_EINVAL);

        /* tensors of several types and ranks with recognizable bytes */
        tu_rng r;
        tu_rng_seed(&r, 5);
        static uint8_t buf[4][4096];
        for (int k = 0; k < 4; k++)
            for (size_t i = 0; i < sizeof buf[k]; i++) buf[k][i] = (uint8_t)tu_rng_u32(&r);
        const int64_t ne_a[] = {7}, ne_b[] = {64, 3}, ne_c[] = {32, 2, 3}, ne_d[] = {256, 1, 1, 2};
        TU_OK(lgpu_gguf_writer_add_tensor(w, "a", LGPU_TYPE_F32, 1, ne_a, buf[0]));          /* 28 bytes: padded */
        TU_OK(lgpu_gguf_writer_add_tensor(w, "b", LGPU_TYPE_F16, 2, ne_b, buf[1]));          /* 384 */
        TU_OK(lgpu_gguf_writer_add_tensor(w, "c.q8", LGPU_TYPE_Q8_0, 3, ne_c, buf[2]));      /* 6 blocks: 204 */
        TU_OK(lgpu_gguf_writer_add_tensor(w, "d.q4k", LGPU_TYPE_Q4_K, 4, ne_d, buf[3]));     /* 2 blocks: 288 */
        assert_int_equal(lgpu_gguf_writer_add_tensor(w, "a", LGPU_TYPE_F32, 1, ne_a, buf[0]), LGPU_EINVAL); /* dup */
        const int64_t ne_bad[] = {100};
        assert_int_equal(lgpu_gguf_writer_add_tensor(w, "e", LGPU_TYPE_Q4_0, 1, ne_bad, buf[0]), LGPU_EINVAL);
        assert_int_equal(lgpu_gguf_writer_n_tensors(w), 4);
        const char *path = tmp(pass ? "rt64.gguf" : "rt.gguf");
        if (!pass) TU_OK(lgpu_gguf_writer_write_file(w, path));
        else {
            TU_OK(lgpu_gguf_writer_begin(w, path));
            assert_true(file_exists(tmp("rt64.gguf.tmp")));
            assert_false(file_exists(path));
            const size_t sizes[] = {28, 384, 204, 288};
            for (int k = 0; k < 4; k++) /* chunks of 5 bytes */
                for (size_t o = 0; o < sizes[k]; o += 5)
                    TU_OK(lgpu_gguf_writer_tensor_data(w, buf[k] + o, sizes[k] - o < 5 ? sizes[k] - o : 5));
            TU_OK(lgpu_gguf_writer_finish(w));
            assert_false(file_exists(tmp("rt64.gguf.tmp")));
        }
        lgpu_gguf_writer_destroy(w);

        lgpu_gguf *g;
        TU_OK(lgpu_gguf_create(path, &g));
        assert_int_equal(lgpu_gguf_alignment(g), pass ? 64 : 32);
        assert_int_equal(lgpu_gguf_find_key(g, "general.alignment") >= 0, pass);
        assert_int_equal(lgpu_gguf_n_kv(g), 23 + pass);
        assert_int_equal(lgpu_gguf_get_u32(g, "t.u8", 0), 200);
        assert_int_equal(lgpu_gguf_get_i32(g, "t.i8", 0), -100);
        assert_int_equal(lgpu_gguf_get_u32(g, "t.u16", 0), 60000);
        assert_int_equal(lgpu_gguf_get_i32(g, "t.i16", 0), -30000);
        assert_int_equal(lgpu_gguf_get_u32(g, "t.u32", 0), 4000000000u);
        assert_int_equal(lgpu_gguf_get_i32(g, "t.u32", 9), 9); /* does not fit i32 */
        assert_int_equal(lgpu_gguf_get_i32(g, "t.i32", 0), -2000000000);
        assert_int_equal(lgpu_gguf_get_u32(g, "t.i32", 9), 9); /* negative */
        assert_true(lgpu_gguf_get_u64(g, "t.u64", 0) == 18000000000000000000ull);
        int64_t iv;
        TU_OK(lgpu_gguf_kv_int(g, lgpu_gguf_find_key(g, "t.i64"), &iv));
        assert_true(iv == -9000000000000000000ll);
        assert_int_equal(lgpu_gguf_kv_int(g, lgpu_gguf_find_key(g, "t.u64"), &iv), LGPU_EINVAL);
        assert_true(lgpu_gguf_get_f32(g, "t.f32", 0) == 3.25f);
        double dv;
        TU_OK(lgpu_gguf_kv_float(g, lgpu_gguf_find_key(g, "t.f64"), &dv));
        assert_true(dv == -1e300);
        assert_true(lgpu_gguf_get_bool(g, "t.bool", false));
        assert_true(lgpu_gguf_get_bool(g, "t.i8", false)); /* any nonzero integer, negative too */
        assert_true(lgpu_gguf_get_bool(g, "t.f32", true));  /* not an integer: the default */
        assert_false(lgpu_gguf_get_bool(g, "t.f32", false));
        assert_true(lgpu_gguf_get_f32(g, "t.bool", 7) == 7); /* BOOL is not a number */
        uint64_t uv = 5;
        assert_int_equal(lgpu_gguf_kv_uint(g, lgpu_gguf_find_key(g, "t.i8"), &uv), LGPU_EINVAL);
        assert_true(uv == 5); /* untouched on failure */
        assert_non_null(strstr(lgpu_last_error(), "key t.i8 is not a non-negative integer (type i8)"));
        assert_int_equal(lgpu_gguf_kv_float(g, lgpu_gguf_find_key(g, "t.bool"), &dv), LGPU_EINVAL);
        assert_non_null(strstr(lgpu_last_error(), "is not a number (type bool)"));
        assert_int_equal(lgpu_gguf_kv_int(g, -1, &iv), LGPU_EINVAL);
        assert_non_null(strstr(lgpu_last_error(), "key (bad index) is not an integer"));
        size_t len;
        const char *s = lgpu_gguf_kv_str(g, lgpu_gguf_find_key(g, "t.str"), &len);
        assert_int_equal(len, strlen("h\xc3\xa9llo \"w\"\n"));
        assert_string_equal(s, "h\xc3\xa9llo \"w\"\n");
        assert_string_equal(lgpu_gguf_get_str(g, "t.empty", "x"), "");
        assert_int_equal(lgpu_gguf_get_u32(g, "t.replaced", 0), 2);
        assert_int_equal(lgpu_gguf_find_key(g, "t.removed"), -1);
        for (int64_t i = 0; i < lgpu_gguf_n_kv(g); i++) /* keys in insertion order; replaced keeps its slot */
            if (!strcmp(lgpu_gguf_key(g, i), "t.replaced")) assert_int_equal(i, 13 + pass);

        int et;
        uint64_t n;
        const void *d;
        TU_OK(lgpu_gguf_get_arr(g, "a.u8", &et, &n, &d));
        assert_int_equal(et, LGPU_GGUF_U8);
        assert_int_equal(n, 3);
        assert_memory_equal(d, au8, 3);
        TU_OK(lgpu_gguf_get_arr(g, "a.i16", &et, &n, &d));
        assert_memory_equal(d, ai16, sizeof ai16);
        int64_t k = lgpu_gguf_find_key(g, "a.i16");
        assert_int_equal(lgpu_gguf_arr_int(g, k, 2, 0), -3);
        assert_int_equal(lgpu_gguf_arr_int(g, k, 4, 77), 77);
        k = lgpu_gguf_find_key(g, "a.f32");
        assert_true(lgpu_gguf_arr_float(g, k, 1, 0) == -1.5);
        k = lgpu_gguf_find_key(g, "a.f64");
        assert_true(lgpu_gguf_arr_float(g, k, 0, 0) == 1e-300);
        k = lgpu_gguf_find_key(g, "a.i64");
        assert_true(lgpu_gguf_arr_int(g, k, 0, 0) == INT64_MIN);
        assert_true(lgpu_gguf_arr_int(g, k, 1, 0) == INT64_MAX);
        TU_OK(lgpu_gguf_get_arr(g, "a.u64", &et, &n, &d));
        assert_int_equal(et, LGPU_GGUF_U64);
        assert_memory_equal(d, au64, 8);
        k = lgpu_gguf_find_key(g, "a.bool");
        assert_int_equal(lgpu_gguf_arr_int(g, k, 0, 5), 1);
        assert_int_equal(lgpu_gguf_arr_int(g, k, 1, 5), 0);
        TU_OK(lgpu_gguf_get_arr(g, "a.empty", &et, &n, &d));
        assert_int_equal(et, LGPU_GGUF_I32);
        assert_int_equal(n, 0);
        k = lgpu_gguf_find_key(g, "a.str");
        TU_OK(lgpu_gguf_kv_arr(g, k, &et, &n, &d));
        assert_int_equal(et, LGPU_GGUF_STRING);
        assert_int_equal(n, 3);
        for (int i = 0; i < 3; i++) {
            s = lgpu_gguf_arr_str(g, k, (uint64_t)i, &len);
            assert_int_equal(len, strlen(strs[i]));
            assert_memory_equal(s, strs[i], len);
        }

        assert_int_equal(lgpu_gguf_n_tensors(g), 4);
        const char *names[] = {"a", "b", "c.q8", "d.q4k"};
        const size_t sizes[] = {28, 384, 204, 288};
        const uint32_t dims[] = {1, 2, 3, 4};
        for (int i = 0; i < 4; i++) {
            const lgpu_gguf_tensor *t = lgpu_gguf_tensor_at(g, i);
            assert_string_equal(t->name, names[i]);
            assert_int_equal(t->nbytes, sizes[i]);
            assert_int_equal(t->n_dims, dims[i]);
            assert_int_equal(t->offset % (pass ? 64 : 32), 0);
            assert_memory_equal(t->data, buf[i], sizes[i]);
        }
        assert_int_equal(lgpu_gguf_tensor_at(g, 2)->ne[2], 3);
        assert_int_equal(lgpu_gguf_tensor_at(g, 3)->ne[3], 2);
        /* padded after the last tensor too, like ggml */
        assert_int_equal(lgpu_gguf_file_size(g) % (pass ? 64 : 32), 0);
        lgpu_gguf_destroy(g);
    }
}

/* Copying every key of a real file reproduces its values. */
static void test_copy_kv(void **state) {
    (void)state;
    lgpu_gguf *src, *g;
    lgpu_gguf_writer *w;
    TU_OK(lgpu_gguf_create(tu_model_path("vocab/ggml-vocab-llama-spm.gguf"), &src));
    TU_OK(lgpu_gguf_writer_create(&w));
    for (int64_t i = 0; i < lgpu_gguf_n_kv(src); i++) TU_OK(lgpu_gguf_writer_copy_kv(w, src, i));
    TU_OK(lgpu_gguf_writer_write_file(w, tmp("copy.gguf")));
    lgpu_gguf_writer_destroy(w);
    TU_OK(lgpu_gguf_create(tmp("copy.gguf"), &g));
    assert_int_equal(lgpu_gguf_n_kv(g), lgpu_gguf_n_kv(src));
    for (int64_t i = 0; i < lgpu_gguf_n_kv(src); i++) {
        assert_string_equal(lgpu_gguf_key(g, i), lgpu_gguf_key(src, i));
        assert_int_equal(lgpu_gguf_kv_type(g, i), lgpu_gguf_kv_type(src, i));
    }
    int64_t a = lgpu_gguf_find_key(src, "tokenizer.ggml.tokens"), b = lgpu_gguf_find_key(g, "tokenizer.ggml.tokens");
    for (uint64_t i = 0; i < 32000; i += 97) {
        size_t la, lb;
        const char *sa = lgpu_gguf_arr_str(src, a, i, &la), *sb = lgpu_gguf_arr_str(g, b, i, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(sa, sb, la);
    }
    a = lgpu_gguf_find_key(src, "tokenizer.ggml.scores");
    b = lgpu_gguf_find_key(g, "tokenizer.ggml.scores");
    for (uint64_t i = 0; i < 32000; i += 101) assert_true(lgpu_gguf_arr_float(src, a, i, 1) == lgpu_gguf_arr_float(g, b, i, 2));
    assert_true(lgpu_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", false));
    assert_int_equal(lgpu_gguf_get_u32(g, "llama.vocab_size", 0), 32000);
    assert_string_equal(lgpu_gguf_get_str(g, "general.name", ""), "llama-spm");
    lgpu_gguf_destroy(g);
    lgpu_gguf_destroy(src);
}

/* Rewriting llama.cpp's own file key by key and tensor by tensor reproduces
 * it byte for byte: our layout, alignment and padding are the spec's. */
static void test_rewrite_identical(void **state) {
    (void)state;
    const char *names[] = {"stories260K.gguf", "vocab/ggml-vocab-llama-spm.gguf"};
    for (int f = 0; f < 2; f++) {
        lgpu_gguf *src;
        lgpu_gguf_writer *w;
        TU_OK(lgpu_gguf_create(tu_model_path(names[f]), &src));
        TU_OK(lgpu_gguf_writer_create(&w));
        for (int64_t i = 0; i < lgpu_gguf_n_kv(src); i++) TU_OK(lgpu_gguf_writer_copy_kv(w, src, i));
        for (int64_t i = 0; i < lgpu_gguf_n_tensors(src); i++) {
            const lgpu_gguf_tensor *t = lgpu_gguf_tensor_at(src, i);
            TU_OK(lgpu_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data));
        }
        TU_OK(lgpu_gguf_writer_write_file(w, tmp("rewrite.gguf")));
        lgpu_gguf_writer_destroy(w);
        FILE *a = fopen(tu_model_path(names[f]), "rb"), *b = fopen(tmp("rewrite.gguf"), "rb");
        assert_non_null(a);
        assert_non_null(b);
        long pos = 0;
        int ca, cb;
        do {
            ca = fgetc(a), cb = fgetc(b);
            if (ca != cb) fail_msg("%s: rewrite differs at byte %ld (%d vs %d)", names[f], pos, ca, cb);
            pos++;
        } while (ca != EOF);
        fclose(a);
        fclose(b);
        lgpu_gguf_destroy(src);
    }
}

/* An unfinished or failed write leaves neither the file nor the temp file. */
static void test_write_atomic(void **state) {
    (void)state;
    lgpu_gguf_writer *w;
    float x[32] = {0};
    const int64_t ne[] = {32};
    TU_OK(lgpu_gguf_writer_create(&w));
    TU_OK(lgpu_gguf_writer_add_tensor(w, "x", LGPU_TYPE_F32, 1, ne, NULL));
    TU_OK(lgpu_gguf_writer_begin(w, tmp("partial.gguf")));
    TU_OK(lgpu_gguf_writer_tensor_data(w, x, 64));
    assert_int_equal(lgpu_gguf_writer_finish(w), LGPU_EINVAL); /* 64 of 128 bytes */
    assert_non_null(strstr(lgpu_last_error(), "incomplete"));
    assert_false(file_exists(tmp("partial.gguf")));
    assert_false(file_exists(tmp("partial.gguf.tmp")));
    lgpu_gguf_writer_destroy(w);

    TU_OK(lgpu_gguf_writer_create(&w));
    TU_OK(lgpu_gguf_writer_add_tensor(w, "x", LGPU_TYPE_F32, 1, ne, NULL));
    assert_int_equal(lgpu_gguf_writer_write_file(w, tmp("nodata.gguf")), LGPU_EINVAL);
    TU_OK(lgpu_gguf_writer_begin(w, tmp("abandoned.gguf")));
    assert_int_equal(lgpu_gguf_writer_tensor_data(w, x, 200), LGPU_EINVAL); /* past the last tensor */
    lgpu_gguf_writer_destroy(w);
    assert_false(file_exists(tmp("abandoned.gguf")));
    assert_false(file_exists(tmp("abandoned.gguf.tmp")));
    lgpu_gguf_writer_destroy(NULL);

    TU_OK(lgpu_gguf_writer_create(&w));
    assert_int_equal(lgpu_gguf_writer_begin(w, "/nonexistent-dir/x.gguf"), LGPU_EIO);
    assert_non_null(strstr(lgpu_last_error(), "/nonexistent-dir/x.gguf.tmp"));
    lgpu_gguf_writer_destroy(w);
}

/* ---- convert / quantize / synth ---------------------------------------- */

typedef struct {
    int n;
    char msgs[16][256];
} notes;

static void collect(void *ud, const char *msg) {
    notes *n = ud;
    if (n->n < 16) snprintf(n->msgs[n->n], sizeof n->msgs[0], "%s", msg);
    n->n++;
}

static void test_convert_llama2c(void **state) {
    (void)state;
    lgpu_convert_opts o = {.tokenizer = tu_model_path("tok512.bin"), .out_type = -1};
    TU_OK(lgpu_convert_to_gguf(tu_model_path("stories260K.bin"), tmp("conv.gguf"), &o));
    lgpu_gguf *ref, *g;
    TU_OK(lgpu_gguf_create(tu_model_path("stories260K.gguf"), &ref));
    TU_OK(lgpu_gguf_create(tmp("conv.gguf"), &g));
    /* tensors: every one of llama.cpp's file except its output.weight copy */
    assert_int_equal(lgpu_gguf_n_tensors(g), 47);
    for (int64_t i = 0; i < lgpu_gguf_n_tensors(ref); i++) {
        const lgpu_gguf_tensor *a = lgpu_gguf_tensor_at(ref, i), *b = lgpu_gguf_find_tensor(g, a->name);
        if (!strcmp(a->name, "output.weight")) {
            assert_null(b);
            continue;
        }
        assert_non_null(b);
        assert_int_equal(a->type, b->type);
        assert_int_equal(a->n_dims, b->n_dims);
        assert_memory_equal(a->ne, b->ne, sizeof a->ne);
        assert_int_equal(a->nbytes, b->nbytes);
        if (memcmp(a->data, b->data, a->nbytes)) fail_msg("tensor %s differs", a->name);
    }
    /* hparams and vocabulary as llama.cpp wrote them (context: ours is the trained 512) */
    const char *u32keys[] = {"llama.embedding_length", "llama.feed_forward_length", "llama.block_count",
                             "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.dimension_count",
                             "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"};
    for (size_t i = 0; i < sizeof u32keys / sizeof u32keys[0]; i++)
        assert_int_equal(lgpu_gguf_get_u32(g, u32keys[i], 1234), lgpu_gguf_get_u32(ref, u32keys[i], 4321));
    assert_int_equal(lgpu_gguf_get_u32(g, "llama.context_length", 0), 512);
    assert_true(lgpu_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", 0) ==
                lgpu_gguf_get_f32(ref, "llama.attention.layer_norm_rms_epsilon", 1));
    assert_string_equal(lgpu_gguf_get_str(g, "general.architecture", ""), "llama");
    assert_string_equal(lgpu_gguf_get_str(g, "tokenizer.ggml.model", ""), "llama");
    assert_int_equal(lgpu_gguf_get_u32(g, "general.file_type", 99), 0);
    int64_t ka = lgpu_gguf_find_key(ref, "tokenizer.ggml.tokens"), kb = lgpu_gguf_find_key(g, "tokenizer.ggml.tokens");
    int64_t sa = lgpu_gguf_find_key(ref, "tokenizer.ggml.scores"), sb = lgpu_gguf_find_key(g, "tokenizer.ggml.scores");
    int64_t ta = lgpu_gguf_find_key(ref, "tokenizer.ggml.token_type"), tb = lgpu_gguf_find_key(g, "tokenizer.ggml.token_type");
    for (uint64_t i = 0; i < 512; i++) {
        size_t la, lb;
        const char *pa = lgpu_gguf_arr_str(ref, ka, i, &la), *pb = lgpu_gguf_arr_str(g, kb, i, &lb);
        assert_non_null(pb);
        if (la != lb || memcmp(pa, pb, la)) fail_msg("token %d: '%.*s' vs '%.*s'", (int)i, (int)la, pa, (int)lb, pb);
        assert_true(lgpu_gguf_arr_float(ref, sa, i, 1) == lgpu_gguf_arr_float(g, sb, i, 2));
        assert_int_equal(lgpu_gguf_arr_int(ref, ta, i, -1), lgpu_gguf_arr_int(g, tb, i, -2));
    }
    lgpu_gguf_destroy(g);
    lgpu_gguf_destroy(ref);

    /* --type f16: matrices rounded to f16 (|err| <= 2^-11 relative), norms stay F32 */
    o.out_type = LGPU_TYPE_F16;
    TU_OK(lgpu_convert_to_gguf(tu_model_path("stories260K.bin"), tmp("conv16.gguf"), &o));
    lgpu_model_file *a, *b;
    TU_OK(lgpu_model_file_create(tu_model_path("stories260K.bin"), &a));
    TU_OK(lgpu_model_file_create(tmp("conv16.gguf"), &b));
    assert_int_equal(lgpu_model_file_ftype(b), LGPU_TYPE_F16);
    for (int64_t i = 0; i < lgpu_model_file_n_tensors(a); i++) {
        const lgpu_model_tensor *x = lgpu_model_file_tensor_at(a, i);
        lgpu_model_tensor y;
        TU_OK(lgpu_model_file_tensor(b, x->name, &y));
        assert_int_equal(y.type, x->n_rows > 1 ? LGPU_TYPE_F16 : LGPU_TYPE_F32);
        float *deq = malloc((size_t)(x->ne0 * x->n_rows) * sizeof *deq);
        TU_OK(lgpu_dequantize_rows(y.type, y.data, 0, y.n_rows, y.ne0, deq));
        assert_int_equal(tu_compare(x->name, deq, x->data, (size_t)(x->ne0 * x->n_rows), 1e-7, 1.0 / 2048), 0);
        free(deq);
    }
    lgpu_model_file_destroy(a);
    lgpu_model_file_destroy(b);

    /* no tokenizer: a note, and a file without tokenizer.* keys */
    notes nn = {0};
    lgpu_convert_opts o2 = {.out_type = -1, .note = collect, .ud = &nn};
    TU_OK(lgpu_convert_to_gguf(tu_model_path("stories260K.bin"), tmp("notok.gguf"), &o2));
    assert_int_equal(nn.n, 1);
    assert_non_null(strstr(nn.msgs[0], "no tokenizer"));
    TU_OK(lgpu_gguf_create(tmp("notok.gguf"), &g));
    assert_int_equal(lgpu_gguf_find_key(g, "tokenizer.ggml.tokens"), -1);
    lgpu_gguf_destroy(g);
    /* a vocabulary whose size does not match the model */
    o2.tokenizer = tu_model_path("tokenizer.bin");
    assert_int_equal(lgpu_convert_to_gguf(tu_model_path("stories260K.bin"), tmp("badtok.gguf"), &o2), LGPU_EFORMAT);
    o2.tokenizer = tu_model_path("vocab/ggml-vocab-llama-spm.gguf");
    assert_int_equal(lgpu_convert_to_gguf(tu_model_path("stories260K.bin"), tmp("badtok.gguf"), &o2), LGPU_EFORMAT);
    assert_non_null(strstr(lgpu_last_error(), "32000"));
    assert_false(file_exists(tmp("badtok.gguf")));
}

static void check_quantized(const char *path, int type, double max_nmse) {
    lgpu_model_file *ref, *q;
    TU_OK(lgpu_model_file_create(tu_model_path("stories260K.gguf"), &ref));
    TU_OK(lgpu_model_file_create(path, &q));
    assert_int_equal(lgpu_model_file_n_tensors(q), 48);
    assert_int_equal(lgpu_model_file_ftype(q), type);
    for (int64_t i = 0; i < lgpu_model_file_n_tensors(ref); i++) {
        const lgpu_model_tensor *x = lgpu_model_file_tensor_at(ref, i);
        lgpu_model_tensor y;
        TU_OK(lgpu_model_file_tensor(q, x->name, &y));
        int want = x->n_rows == 1 ? LGPU_TYPE_F32 : x->ne0 == 172 ? LGPU_TYPE_F16 : type;
        if (y.type != want) fail_msg("%s: type %s, expected %s", x->name, lgpu_type_name(y.type), lgpu_type_name(want));
        size_t n = (size_t)(x->ne0 * x->n_rows);
        float *deq = malloc(n * sizeof *deq);
        TU_OK(lgpu_dequantize_rows(y.type, y.data, 0, y.n_rows, y.ne0, deq));
        TU_ASSERT_NMSE(x->name, deq, (const float *)x->data, n, y.type == type ? max_nmse : 1e-6);
        free(deq);
    }
    lgpu_model_file_destroy(q);
    lgpu_model_file_destroy(ref);
}

static void test_quantize(void **state) {
    (void)state;
    const struct { int type; const char *name; double nmse; } cases[] = {
        /* NMSE bounds: ~4x above what these weights give (q8_0 ~2e-5, q4_0 ~1e-2) */
        {LGPU_TYPE_Q8_0, "q8.gguf", 1e-4},
        {LGPU_TYPE_Q4_0, "q4.gguf", 4e-2},
    };
    for (size_t c = 0; c < 2; c++) {
        notes n = {0};
        lgpu_quantize_stats s;
        lgpu_quantize_opts o = {.note = collect, .ud = &n};
        TU_OK(lgpu_quantize_gguf(tu_model_path("stories260K.gguf"), tmp(cases[c].name), cases[c].type, &o, &s));
        /* token_embd, output, 5 x (q, k, v, o, gate, up) quantized; 5 ffn_down fall back; 11 norms kept */
        assert_int_equal(s.n_quantized, 32);
        assert_int_equal(s.n_fallback, 5);
        assert_int_equal(s.n_kept, 11);
        assert_int_equal(n.n, 5);
        for (int i = 0; i < 5; i++) {
            char want[64];
            snprintf(want, sizeof want, "blk.%d.ffn_down.weight", i);
            assert_non_null(strstr(n.msgs[i], want));
            assert_non_null(strstr(n.msgs[i], "172"));
            assert_non_null(strstr(n.msgs[i], "using f16"));
        }
        check_quantized(tmp(cases[c].name), cases[c].type, cases[c].nmse);
        lgpu_gguf *g;
        TU_OK(lgpu_gguf_create(tmp(cases[c].name), &g));
        assert_int_equal(lgpu_gguf_get_u32(g, "general.file_type", 0), cases[c].type == LGPU_TYPE_Q8_0 ? 7 : 2);
        assert_int_equal(lgpu_gguf_n_kv(g), 19 + 2); /* + file_type, quantization_version */
        assert_int_equal(lgpu_gguf_get_u32(g, "general.quantization_version", 0), 2);
        lgpu_gguf_destroy(g);
    }
    /* K-quants need rows of 256: every stories260K matrix falls back (64 -> q8_0, 172 -> f16) */
    notes n = {0};
    lgpu_quantize_stats s;
    lgpu_quantize_opts o = {.note = collect, .ud = &n};
    TU_OK(lgpu_quantize_gguf(tu_model_path("stories260K.gguf"), tmp("q4k.gguf"), LGPU_TYPE_Q4_K, &o, &s));
    assert_int_equal(s.n_quantized, 0);
    assert_int_equal(s.n_fallback, 37);
    assert_int_equal(lgpu_quantize_pick_type(LGPU_TYPE_Q4_K, 64), LGPU_TYPE_Q8_0);
    assert_int_equal(lgpu_quantize_pick_type(LGPU_TYPE_Q6_K, 172), LGPU_TYPE_F16);
    assert_int_equal(lgpu_quantize_pick_type(LGPU_TYPE_Q6_K, 512), LGPU_TYPE_Q6_K);
    assert_int_equal(lgpu_quantize_pick_type(LGPU_TYPE_BF16, 172), LGPU_TYPE_BF16);
    assert_int_equal(lgpu_quantize_gguf(tu_model_path("stories260K.gguf"), tmp("x.gguf"), LGPU_TYPE_I32, NULL, NULL),
                     LGPU_EINVAL);
}

static void test_synth(void **state) {
    (void)state;
    lgpu_synth_opts o = {.shape = "stories15M", .type = LGPU_TYPE_Q4_0, .vocab = tu_model_path("tokenizer.bin"),
                         .seed = 42, .out = tmp("s15.gguf")};
    TU_OK(lgpu_synth(&o));
    lgpu_model_file *mf;
    TU_OK(lgpu_model_file_create(tmp("s15.gguf"), &mf));
    const lgpu_file_hparams *h = lgpu_model_file_hparams(mf);
    assert_int_equal(h->dim, 288);
    assert_int_equal(h->hidden_dim, 768);
    assert_int_equal(h->n_layers, 6);
    assert_int_equal(h->n_heads, 6);
    assert_int_equal(h->n_kv_heads, 6);
    assert_int_equal(h->n_vocab, 32000);
    assert_int_equal(h->n_ctx_train, 256);
    assert_true(h->tied_output);
    assert_int_equal(lgpu_model_file_n_tensors(mf), 2 + 9 * 6);
    assert_int_equal(lgpu_model_file_ftype(mf), LGPU_TYPE_Q4_0);
    lgpu_model_tensor t;
    TU_OK(lgpu_model_file_tensor(mf, "blk.3.ffn_norm.weight", &t));
    for (int i = 0; i < 288; i++) assert_true(((const float *)t.data)[i] == 1.0f);
    TU_OK(lgpu_model_file_tensor(mf, "blk.2.ffn_up.weight", &t));
    assert_int_equal(t.type, LGPU_TYPE_Q4_0);
    size_t n = (size_t)(t.ne0 * t.n_rows);
    float *x = malloc(n * sizeof *x);
    TU_OK(lgpu_dequantize_rows(t.type, t.data, 0, t.n_rows, t.ne0, x));
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) sum += x[i], sq += (double)x[i] * x[i];
    double mean = sum / n, sd = sqrt(sq / n - mean * mean);
    printf("synth blk.2.ffn_up: mean %.2g sd %.4f (want 0, 0.02)\n", mean, sd);
    assert_true(fabs(mean) < 1e-3);
    assert_true(sd > 0.018 && sd < 0.022); /* 4-bit rounding adds a little */
    free(x);
    const lgpu_gguf *g = lgpu_model_file_gguf(mf);
    uint64_t ntok;
    TU_OK(lgpu_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &ntok, NULL));
    assert_int_equal(ntok, 32000);
    size_t len;
    const char *s = lgpu_gguf_arr_str(g, lgpu_gguf_find_key(g, "tokenizer.ggml.tokens"), 29871, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "\xe2\x96\x81", 3); /* llama's "▁" piece */
    lgpu_model_file_destroy(mf);

    /* deterministic for a seed and a thread count; another seed differs */
    o.out = tmp("s15b.gguf");
    o.nthreads = 1;
    TU_OK(lgpu_synth(&o));
    lgpu_gguf *a, *b;
    TU_OK(lgpu_gguf_create(tmp("s15.gguf"), &a));
    TU_OK(lgpu_gguf_create(tmp("s15b.gguf"), &b));
    assert_int_equal(lgpu_gguf_file_size(a), lgpu_gguf_file_size(b));
    for (int64_t i = 0; i < lgpu_gguf_n_tensors(a); i++)
        assert_memory_equal(lgpu_gguf_tensor_at(a, i)->data, lgpu_gguf_tensor_at(b, i)->data, lgpu_gguf_tensor_at(a, i)->nbytes);
    lgpu_gguf_destroy(b);
    o.seed = 43;
    o.vocab = NULL; /* synthetic vocab */
    o.type = LGPU_TYPE_Q4_K;
    notes nn = {0};
    o.note = collect;
    o.ud = &nn;
    TU_OK(lgpu_synth(&o));
    assert_true(nn.n >= 1); /* rows of 288 do not fit q4_k */
    assert_non_null(strstr(nn.msgs[0], "288"));
    TU_OK(lgpu_gguf_create(tmp("s15b.gguf"), &b));
    const lgpu_gguf_tensor *ta = lgpu_gguf_find_tensor(a, "blk.0.attn_q.weight"), *tb = lgpu_gguf_find_tensor(b, "blk.0.attn_q.weight");
    assert_int_equal(tb->type, LGPU_TYPE_Q8_0);
    assert_int_equal(lgpu_gguf_find_tensor(b, "blk.0.ffn_down.weight")->type, LGPU_TYPE_Q4_K); /* 768 = 3 x 256 */
    assert_true(memcmp(ta->data, tb->data, 64) != 0);
    assert_string_equal(lgpu_gguf_get_str(b, "tokenizer.ggml.model", ""), "llama");
    assert_int_equal(lgpu_gguf_get_u32(b, "llama.vocab_size", 0), 32000);
    lgpu_gguf_destroy(a);
    lgpu_gguf_destroy(b);

    lgpu_file_hparams hp;
    TU_OK(lgpu_synth_shape("llama3-8b", &hp));
    assert_int_equal(hp.n_vocab, 128256);
    assert_int_equal(hp.hidden_dim, 14336);
    assert_int_equal(hp.n_kv_heads, 8);
    assert_true(hp.rope_theta == 500000.0f);
    TU_OK(lgpu_synth_shape("tinyllama-1.1b", &hp));
    assert_int_equal(hp.n_layers, 22);
    assert_int_equal(hp.n_kv_heads, 4);
    assert_int_equal(lgpu_synth_shape("gpt2", &hp), LGPU_ENOTFOUND);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_stories260k),  cmocka_unit_test(test_llama2c_equals_gguf),
        cmocka_unit_test(test_write_read_roundtrip), cmocka_unit_test(test_copy_kv), cmocka_unit_test(test_rewrite_identical),
        cmocka_unit_test(test_write_atomic),      cmocka_unit_test(test_convert_llama2c),
        cmocka_unit_test(test_quantize),          cmocka_unit_test(test_synth),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
