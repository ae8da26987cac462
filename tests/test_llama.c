/* LLaMA forward pass + paged KV cache: golden greedy tokens of stories260K on
 * the default device and on the host C path, batched / chunked / prefix-
 * reused decoding equal to plain decoding, KV exhaustion, bad batches, and
 * the host-side block bookkeeping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lgpu/llama.h"
#include "lgpu/tokenizer.h"
#include "model/kv_cache.h"
#include "model/lgpu_models.h"
#include "dev/device.h"
#include "hub/sha256.h"
#include "test_util.h"

#define N_GOLD 256
#define V260 512

static int32_t gold[N_GOLD];

/* Group setup: every test that compares with gold can run alone. */
static int load_gold(void **state) {
    (void)state;
    FILE *f = fopen(tu_model_path("stories260K.greedy-t0-n256.ids"), "r");
    if (!f) {
        print_error("cannot open stories260K.greedy-t0-n256.ids\n");
        return -1;
    }
    int ok = 1;
    for (int i = 0; ok && i < N_GOLD; i++) ok = fscanf(f, "%d", &gold[i]) == 1;
    fclose(f);
    if (!ok) print_error("stories260K.greedy-t0-n256.ids: fewer than %d ids\n", N_GOLD);
    return ok ? 0 : -1;
}

static lgpu_model *load(const char *file, const char *tok, const char *device) {
    lgpu_model *m = NULL;
    lgpu_model_params mp = {.path = tu_model_path(file), .tokenizer_path = tok ? tu_model_path(tok) : NULL,
                            .device = device};
    TU_OK(lgpu_model_create(&mp, &m));
    return m;
}

static lgpu_ctx *make_ctx(lgpu_model *m, uint32_t n_ctx, uint32_t n_seq, uint32_t n_blocks) {
    lgpu_ctx *c = NULL;
    lgpu_ctx_params cp = lgpu_ctx_params_default();
    cp.n_ctx = n_ctx, cp.n_seq_max = n_seq, cp.n_batch = 128, cp.block_size = 16, cp.n_blocks = n_blocks;
    TU_OK(lgpu_ctx_create(m, &cp, &c));
    return c;
}

/* First index of the maximum (llama2.c's argmax). */
static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Decodes tokens[0..n) of seq starting at position pos0 in one call, logits of the last into out. */
static int decode_run(lgpu_ctx *c, int seq, const int32_t *tokens, int n, int pos0, float *out) {
    int32_t sq[256], ps[256];
    int8_t lg[256];
    for (int i = 0; i < n; i++) {
        sq[i] = seq;
        ps[i] = pos0 + i;
        lg[i] = i == n - 1;
    }
    lgpu_batch b = {.n = n, .token = tokens, .seq = sq, .pos = ps, .logits = lg};
    return lgpu_decode(c, &b, out);
}

/* Greedy continuation of seq (whose last logits are in `logits`) for n tokens. */
static void greedy(lgpu_ctx *c, int seq, float *logits, int n, int32_t *out) {
    for (int i = 0; i < n; i++) {
        out[i] = argmax(logits, V260);
        if (i + 1 < n) TU_OK(decode_run(c, seq, &out[i], 1, lgpu_seq_len(c, seq), logits));
    }
}

/* threads > 0: the C path's thread count for this context (results must not depend on it);
 * kv_type: the cache's type (LGPU_TYPE_AUTO: the device's default). */
static void golden_run_kv(const char *file, const char *tok, const char *device, int threads, lgpu_type kv_type) {
    lgpu_model *m = load(file, tok, device);
    assert_int_equal(lgpu_model_hparams(m)->n_vocab, V260);
    lgpu_ctx *c = NULL;
    lgpu_ctx_params cp = {.n_ctx = 512, .n_seq_max = 1, .n_batch = 128, .block_size = 16, .kv_type = kv_type};
    TU_OK(lgpu_ctx_create(m, &cp, &c));
    assert_int_equal(lgpu_ctx_params_of(c)->kv_type,
                     kv_type != LGPU_TYPE_AUTO ? kv_type
                     : lgpu_dev_kind_of(lgpu_model_dev(m)) == LGPU_DEV_CPU ? LGPU_TYPE_F32 : LGPU_TYPE_F16);
    if (threads > 0) lgpu_ctx_set_threads(c, threads);
    int seq;
    TU_OK(lgpu_seq_create(c, &seq));
    float logits[V260];
    int32_t bos = 1, out[N_GOLD];
    TU_OK(decode_run(c, seq, &bos, 1, 0, logits));
    greedy(c, seq, logits, N_GOLD, out);
    int first_bad = -1;
    for (int i = 0; i < N_GOLD && first_bad < 0; i++)
        if (out[i] != gold[i]) first_bad = i;
    if (first_bad >= 0) print_error("%s on %s: token %d is %d, golden %d\n", file, lgpu_model_desc(m), first_bad,
                                    out[first_bad], gold[first_bad]);
    assert_int_equal(first_bad, -1);
    assert_int_equal(lgpu_seq_len(c, seq), N_GOLD); /* BOS + 255 decoded */
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
}

static void golden_run(const char *file, const char *tok, const char *device, int threads) {
    golden_run_kv(file, tok, device, threads, LGPU_TYPE_AUTO);
}

static void test_golden_bin_default(void **state) { golden_run("stories260K.bin", "tok512.bin", NULL, 0); }
/* the cache type the device does not choose by default: F32 on Vulkan, F16 on the C path */
static void test_golden_gguf_default_f32(void **state) { golden_run_kv("stories260K.gguf", NULL, NULL, 0, LGPU_TYPE_F32); }
static void test_golden_gguf_cpu_f16(void **state) { golden_run_kv("stories260K.gguf", NULL, "cpu", 0, LGPU_TYPE_F16); }
static void test_golden_bin_cpu(void **state) { golden_run("stories260K.bin", "tok512.bin", "cpu", 0); }
static void test_golden_gguf_default(void **state) { golden_run("stories260K.gguf", NULL, NULL, 0); }
static void test_golden_gguf_cpu(void **state) { golden_run("stories260K.gguf", NULL, "cpu", 0); }
static void test_golden_gguf_cpu_threads(void **state) {
    golden_run("stories260K.gguf", NULL, "cpu", 1);
    golden_run("stories260K.gguf", NULL, "cpu", 3);
}

static void test_model_info(void **state) {
    lgpu_model *m = load("stories260K.gguf", NULL, NULL);
    const lgpu_hparams *hp = lgpu_model_hparams(m);
    assert_int_equal(hp->dim, 64);
    assert_int_equal(hp->n_layers, 5);
    assert_int_equal(hp->n_heads, 8);
    assert_int_equal(hp->n_kv_heads, 4);
    assert_int_equal(hp->hidden_dim, 172);
    assert_non_null(lgpu_model_tokenizer(m));
    assert_non_null(strstr(lgpu_model_desc(m), "llama"));
    assert_true(lgpu_model_weight_bytes(m) > 1000000);
    lgpu_model_destroy(m);
    /* a missing file fails cleanly */
    lgpu_model *bad = NULL;
    lgpu_model_params mp = {.path = "/nonexistent/model.gguf"};
    assert_true(lgpu_model_create(&mp, &bad) < 0);
    assert_null(bad);
}

/* The whole file (NULL if it cannot be read), NUL-terminated. */
static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = 0;
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    if (f) fclose(f);
    return buf;
}

/* The model built into liblgpu (models/stories260K.gguf): its bytes are the
 * recorded file (models/README.md) and equal ../shared/models' copy; a NULL
 * path loads it from memory, and greedy decoding from BOS writes the golden
 * ids and text. "embedded:NAME" names it; an unknown name fails cleanly. */
static void test_embedded_model(void **state) {
    const lgpu_model_blob *blob = lgpu_model_blob_find(LGPU_MODEL_EMBEDDED_NAME);
    assert_non_null(blob);
    assert_int_equal(blob->size, 1185376);
    assert_int_equal((uintptr_t)blob->data % 64, 0);
    lgpu_sha256 h;
    char hex[65];
    lgpu_sha256_init(&h);
    lgpu_sha256_update(&h, blob->data, blob->size);
    lgpu_sha256_hex(&h, hex);
    assert_string_equal(hex, "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d");
    assert_string_equal(blob->sha256, hex);
    size_t n_file;
    char *file = read_all(tu_model_path("stories260K.gguf"), &n_file);
    assert_non_null(file);
    assert_int_equal(n_file, blob->size);
    assert_memory_equal(file, blob->data, n_file);
    free(file);

    lgpu_model *m = NULL;
    TU_OK(lgpu_model_create(&(lgpu_model_params){.path = NULL}, &m));
    assert_int_equal(lgpu_model_hparams(m)->n_vocab, V260);
    lgpu_ctx *c = make_ctx(m, 512, 1, 0);
    int seq;
    TU_OK(lgpu_seq_create(c, &seq));
    float logits[V260];
    int32_t ids[1 + N_GOLD] = {1}; /* BOS, then the greedy tokens */
    TU_OK(decode_run(c, seq, ids, 1, 0, logits));
    greedy(c, seq, logits, N_GOLD, ids + 1);
    assert_memory_equal(ids + 1, gold, sizeof gold);
    char *text;
    size_t len, n_want;
    TU_OK(lgpu_tokenizer_decode(lgpu_model_tokenizer(m), ids, 1 + N_GOLD, false, &text, &len));
    char *want = read_all(tu_model_path("stories260K.greedy-t0-n256.txt"), &n_want);
    assert_non_null(want);
    assert_int_equal(len, n_want);
    assert_memory_equal(text, want, n_want);
    assert_memory_equal(text, "Once upon a time, there was a little girl named Lily.", 52);
    free(want);
    free(text);
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);

    /* the same by name; a name that is not built in */
    TU_OK(lgpu_model_create(&(lgpu_model_params){.path = LGPU_MODEL_EMBEDDED, .device = "cpu"}, &m));
    assert_int_equal(lgpu_model_hparams(m)->dim, 64);
    lgpu_model_destroy(m);
    m = NULL;
    assert_int_equal(lgpu_model_create(&(lgpu_model_params){.path = LGPU_EMBEDDED_PREFIX "nosuch"}, &m),
                     LGPU_ENOTFOUND);
    assert_null(m);
    assert_non_null(strstr(lgpu_last_error(), "built in: " LGPU_MODEL_EMBEDDED_NAME));
}

/* Four sequences with different prompts: prefill mixed in one call, then
 * steps together, equal the same sequences decoded alone. */
static void test_batched_equivalence(void **state) {
    lgpu_model *m = load("stories260K.gguf", NULL, NULL);
    enum { NS = 4, NP = 7, NG = 24 };
    const int32_t prompts[NS][NP] = {{1, 403, 407, 261, 378, 432, 383},
                                     {1, 300, 301, 302, 303, 304, 305},
                                     {1, 261, 262, 263, 264, 265, 266},
                                     {1, 410, 420, 430, 440, 450, 460}};
    /* Different lengths, but only batch sizes 1, 4 and > 8: on lavapipe every
     * new matmul batch size compiles shader variants (minutes with a cold
     * Mesa cache, as in CI). */
    const int plen[NS] = {4, 4, 1, 4};
    int32_t alone[NS][NG], together[NS][NG];
    float logits[NS * V260];

    /* alone */
    lgpu_ctx *c = make_ctx(m, 256, 1, 0);
    for (int s = 0; s < NS; s++) {
        int seq;
        TU_OK(lgpu_seq_create(c, &seq));
        TU_OK(decode_run(c, seq, prompts[s], plen[s], 0, logits));
        greedy(c, seq, logits, NG, alone[s]);
        lgpu_seq_destroy(c, seq);
    }
    lgpu_ctx_destroy(c);

    /* together: prompts interleaved in one batch, then one token of each per step */
    c = make_ctx(m, 256, NS, 0);
    int seq[NS];
    for (int s = 0; s < NS; s++) TU_OK(lgpu_seq_create(c, &seq[s]));
    int32_t tk[64], sq[64], ps[64];
    int8_t lg[64];
    int n = 0, last[NS];
    for (int i = 0; i < NP; i++)
        for (int s = 0; s < NS; s++)
            if (i < plen[s]) {
                tk[n] = prompts[s][i], sq[n] = seq[s], ps[n] = i, lg[n] = i == plen[s] - 1;
                last[s] = n++;
            }
    lgpu_batch b = {.n = n, .token = tk, .seq = sq, .pos = ps, .logits = lg};
    TU_OK(lgpu_decode(c, &b, logits));
    /* logits rows come in batch order: order sequences by their last token */
    int row_of[NS];
    for (int s = 0; s < NS; s++) {
        row_of[s] = 0;
        for (int t = 0; t < NS; t++) row_of[s] += last[t] < last[s];
    }
    float reordered[NS * V260];
    for (int s = 0; s < NS; s++) memcpy(reordered + s * V260, logits + row_of[s] * V260, sizeof(float) * V260);
    for (int g = 0; g < NG; g++) {
        for (int s = 0; s < NS; s++) {
            together[s][g] = argmax(reordered + s * V260, V260);
            tk[s] = together[s][g], sq[s] = seq[s], ps[s] = lgpu_seq_len(c, seq[s]), lg[s] = 1;
        }
        if (g + 1 == NG) break;
        lgpu_batch st = {.n = NS, .token = tk, .seq = sq, .pos = ps, .logits = lg};
        const float *rows; /* lent: in place on the host device, a copy on Vulkan */
        TU_OK(lgpu_decode_rows(c, &st, &rows));
        memcpy(reordered, rows, sizeof reordered);
    }
    for (int s = 0; s < NS; s++) assert_memory_equal(alone[s], together[s], sizeof alone[s]);
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
}

/* A prompt split over several decode calls = one-shot prefill. */
static void test_chunked_prefill(void **state) {
    lgpu_model *m = load("stories260K.gguf", NULL, NULL);
    lgpu_ctx *c = make_ctx(m, 256, 2, 0);
    int32_t prompt[40];
    prompt[0] = 1;
    memcpy(prompt + 1, gold, 39 * sizeof(int32_t));
    float one[V260], chunked[V260];
    int a, b;
    TU_OK(lgpu_seq_create(c, &a));
    TU_OK(lgpu_seq_create(c, &b));
    TU_OK(decode_run(c, a, prompt, 40, 0, one));
    const int cuts[] = {0, 4, 8, 9, 25, 40}; /* batch sizes 4, 4, 1, 16, 15 */
    for (int i = 0; i + 1 < 6; i++) TU_OK(decode_run(c, b, prompt + cuts[i], cuts[i + 1] - cuts[i], cuts[i], chunked));
    /* different batch shapes may pick different matmul kernels: tolerance */
    assert_int_equal(tu_compare("chunked logits", chunked, one, V260, 1e-3, 1e-3), 0);
    int32_t ga[16], gb[16];
    greedy(c, a, one, 16, ga);
    greedy(c, b, chunked, 16, gb);
    assert_memory_equal(ga, gb, sizeof ga);
    /* the golden sequence continues: prompt is BOS + gold[0..39) */
    assert_memory_equal(ga, gold + 39, sizeof ga);
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
}

/* Prefix reuse: attached blocks give the same logits as computing them. */
static void test_prefix_reuse(void **state) {
    lgpu_model *m = load("stories260K.gguf", NULL, NULL);
    lgpu_ctx *c = make_ctx(m, 256, 3, 0);
    int32_t prompt[40];
    prompt[0] = 1;
    memcpy(prompt + 1, gold, 39 * sizeof(int32_t));
    float la[V260], lb[V260];
    int a, b, d;
    uint32_t used0, used1, total;
    TU_OK(lgpu_seq_create(c, &a));
    TU_OK(decode_run(c, a, prompt, 32, 0, la));
    TU_OK(decode_run(c, a, prompt + 32, 4, 32, la));
    lgpu_ctx_kv_usage(c, &used0, &total);
    assert_int_equal(used0, 3);

    TU_OK(lgpu_seq_create(c, &b));
    assert_int_equal(lgpu_seq_reuse_prefix(c, b, prompt, 36), 32);
    assert_int_equal(lgpu_seq_len(c, b), 32);
    lgpu_ctx_kv_usage(c, &used1, &total);
    assert_int_equal(used1, used0); /* shared, not copied */
    TU_OK(decode_run(c, b, prompt + 32, 4, 32, lb));
    assert_memory_equal(la, lb, sizeof la); /* same blocks, same computation */

    /* at least one token is always left to compute */
    TU_OK(lgpu_seq_create(c, &d));
    assert_int_equal(lgpu_seq_reuse_prefix(c, d, prompt, 32), 16);
    lgpu_seq_destroy(c, d);
    /* a different prompt shares nothing */
    TU_OK(lgpu_seq_create(c, &d));
    int32_t other[40];
    memcpy(other, prompt, sizeof other);
    other[3] ^= 1;
    assert_int_equal(lgpu_seq_reuse_prefix(c, d, other, 40), 0);
    lgpu_seq_destroy(c, d);

    /* both continue identically; the shared blocks are never written */
    float la0[V260];
    memcpy(la0, la, sizeof la0);
    int32_t ga[20], gb[20];
    greedy(c, a, la, 20, ga);
    greedy(c, b, lb, 20, gb);
    assert_memory_equal(ga, gb, sizeof ga);
    assert_memory_equal(ga, gold + 35, sizeof ga); /* prompt = BOS + gold[0..35) */

    /* closed sequences' full blocks stay cached: a new sequence finds them */
    lgpu_seq_destroy(c, a);
    lgpu_seq_destroy(c, b);
    lgpu_ctx_kv_usage(c, &used1, &total);
    assert_int_equal(used1, 0);
    TU_OK(lgpu_seq_create(c, &d));
    assert_int_equal(lgpu_seq_reuse_prefix(c, d, prompt, 36), 32);
    TU_OK(decode_run(c, d, prompt + 32, 4, 32, lb));
    assert_memory_equal(la0, lb, sizeof la0);
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
}

/* KV exhaustion fails with EFULL and changes nothing; n_ctx overflow is ERANGE. */
static void test_kv_full(void **state) {
    lgpu_model *m = load("stories260K.gguf", NULL, NULL);
    lgpu_ctx *c = make_ctx(m, 256, 2, 4); /* 4 blocks of 16 = 64 slots in all */
    int a, b;
    TU_OK(lgpu_seq_create(c, &a));
    TU_OK(lgpu_seq_create(c, &b));
    int32_t prompt[60];
    prompt[0] = 1;
    memcpy(prompt + 1, gold, 59 * sizeof(int32_t));
    float la[V260], lb[V260];
    TU_OK(decode_run(c, a, prompt, 40, 0, la)); /* 3 blocks */
    TU_OK(decode_run(c, b, prompt, 10, 0, lb)); /* 1 block: the pool is full */
    uint32_t used, total;
    lgpu_ctx_kv_usage(c, &used, &total);
    assert_int_equal(used, 4);
    assert_int_equal(total, 4);
    float junk[V260];
    /* b needs a second block at position 16 */
    assert_int_equal(decode_run(c, b, prompt + 10, 10, 10, junk), LGPU_EFULL);
    assert_int_equal(lgpu_seq_len(c, b), 10);
    lgpu_ctx_kv_usage(c, &used, &total);
    assert_int_equal(used, 4);
    /* a mixed batch where only one sequence overflows fails as a whole */
    int32_t tk[2] = {gold[39], gold[9]}, sq[2] = {a, b}, ps[2] = {40, 10};
    int8_t lg[2] = {1, 1};
    int32_t tk9[9];
    memcpy(tk9, prompt + 40, sizeof tk9);
    TU_OK(decode_run(c, a, tk9, 4, 40, la));
    TU_OK(decode_run(c, a, tk9 + 4, 4, 44, la)); /* a fills its 3rd block: 48 */
    ps[0] = 48, tk[0] = prompt[48];
    lgpu_batch mb = {.n = 2, .token = tk, .seq = sq, .pos = ps, .logits = lg};
    float two[2 * V260];
    assert_int_equal(lgpu_decode(c, &mb, two), LGPU_EFULL);
    assert_int_equal(lgpu_seq_len(c, a), 48);
    assert_int_equal(lgpu_seq_len(c, b), 10);
    /* nothing was corrupted: b still continues like the golden sequence */
    int32_t gb[6];
    greedy(c, b, lb, 6, gb); /* decodes positions 10..14 */
    assert_memory_equal(gb, gold + 9, sizeof gb);
    /* after closing a, b can grow again */
    lgpu_seq_destroy(c, a);
    TU_OK(decode_run(c, b, prompt + 15, 10, 15, lb));
    assert_int_equal(argmax(lb, V260), gold[24]);
    lgpu_ctx_destroy(c);

    /* n_ctx: a sequence cannot grow past it */
    c = make_ctx(m, 20, 1, 0);
    TU_OK(lgpu_seq_create(c, &a));
    TU_OK(decode_run(c, a, prompt, 20, 0, la));
    assert_int_equal(decode_run(c, a, prompt + 20, 1, 20, la), LGPU_ERANGE);
    assert_int_equal(lgpu_seq_len(c, a), 20);
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
}

static void test_bad_batch(void **state) {
    lgpu_model *m = load("stories260K.gguf", NULL, NULL);
    lgpu_ctx *c = make_ctx(m, 64, 2, 0);
    int a;
    TU_OK(lgpu_seq_create(c, &a));
    float l[V260];
    int32_t t[4] = {1, 300, 301, 302};
    assert_int_equal(decode_run(c, a, t, 4, 1, l), LGPU_EINVAL); /* wrong position */
    assert_int_equal(decode_run(c, a + 1, t, 4, 0, l), LGPU_EINVAL); /* not open */
    int32_t bad = 512;
    assert_int_equal(decode_run(c, a, &bad, 1, 0, l), LGPU_EINVAL); /* outside the vocabulary */
    assert_int_equal(lgpu_seq_len(c, a), 0);
    TU_OK(decode_run(c, a, t, 4, 0, l));
    assert_int_equal(lgpu_seq_len(c, a), 4);
    /* too many sequences */
    int b, x;
    TU_OK(lgpu_seq_create(c, &b));
    assert_int_equal(lgpu_seq_create(c, &x), LGPU_EFULL);
    /* NULL logits flags: the last token's row */
    int32_t sq = b, ps = 0, tok = 1;
    lgpu_batch nb = {.n = 1, .token = &tok, .seq = &sq, .pos = &ps, .logits = NULL};
    TU_OK(lgpu_decode(c, &nb, l));
    assert_int_equal(argmax(l, V260), gold[0]);
    /* lent rows: a NULL destination is refused before anything changes */
    ps = 1;
    assert_int_equal(lgpu_decode_rows(c, &nb, NULL), LGPU_EINVAL);
    assert_int_equal(lgpu_seq_len(c, b), 1);
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
}

/* Block bookkeeping without a device. */
static void test_kv_bookkeeping(void **state) {
    lgpu_kv_cache kv;
    TU_OK(lgpu_kv_init(&kv, 3, 64, 4, 6));
    int a, b, c;
    TU_OK(lgpu_kv_seq_create(&kv, &a));
    TU_OK(lgpu_kv_seq_create(&kv, &b));
    const int32_t t[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    assert_int_equal(lgpu_kv_blocks_needed(&kv, a, 10), 3);
    lgpu_kv_grow(&kv, a, 10);
    lgpu_kv_commit(&kv, a, t, 10); /* 2 full blocks registered, 1 partial */
    assert_int_equal(kv.n_free, 3);
    assert_int_equal(lgpu_kv_reuse_prefix(&kv, b, t, 12), 8);
    assert_int_equal(kv.n_free, 3); /* shared */
    assert_int_equal(kv.ref[kv.seq[a].blocks[0]], 2);
    /* rollback of a grow gives the blocks back */
    lgpu_kv_grow(&kv, b, 12);
    assert_int_equal(kv.n_free, 2);
    lgpu_kv_shrink(&kv, b, 2);
    assert_int_equal(kv.n_free, 3);
    lgpu_kv_seq_destroy(&kv, a);
    lgpu_kv_seq_destroy(&kv, b);
    assert_int_equal(kv.n_free, 6);
    /* cached blocks are reused last: 4 fresh allocations keep the prefix */
    TU_OK(lgpu_kv_seq_create(&kv, &c));
    lgpu_kv_grow(&kv, c, 16);
    lgpu_kv_commit(&kv, c, (const int32_t[16]){50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65}, 16);
    TU_OK(lgpu_kv_seq_create(&kv, &a));
    assert_int_equal(lgpu_kv_reuse_prefix(&kv, a, t, 12), 8);
    lgpu_kv_seq_destroy(&kv, a);
    /* now exhaust the pool: the cached prefix gets evicted */
    TU_OK(lgpu_kv_seq_create(&kv, &b));
    lgpu_kv_grow(&kv, b, 8);
    lgpu_kv_commit(&kv, b, (const int32_t[8]){70, 71, 72, 73, 74, 75, 76, 77}, 8);
    assert_int_equal(kv.n_free, 0);
    lgpu_kv_seq_destroy(&kv, b);
    TU_OK(lgpu_kv_seq_create(&kv, &a));
    assert_int_equal(lgpu_kv_reuse_prefix(&kv, a, t, 12), 0);
    /* b's blocks are cached now */
    lgpu_kv_seq_destroy(&kv, a);
    TU_OK(lgpu_kv_seq_create(&kv, &a));
    assert_int_equal(lgpu_kv_reuse_prefix(&kv, a, (const int32_t[9]){70, 71, 72, 73, 74, 75, 76, 77, 0}, 9), 8);
    lgpu_kv_destroy(&kv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_bookkeeping),
        cmocka_unit_test(test_model_info),
        cmocka_unit_test(test_golden_bin_default),
        cmocka_unit_test(test_golden_bin_cpu),
        cmocka_unit_test(test_golden_gguf_default),
        cmocka_unit_test(test_golden_gguf_cpu),
        cmocka_unit_test(test_golden_gguf_cpu_threads),
        cmocka_unit_test(test_golden_gguf_default_f32),
        cmocka_unit_test(test_golden_gguf_cpu_f16),
        cmocka_unit_test(test_embedded_model),
        cmocka_unit_test(test_batched_equivalence),
        cmocka_unit_test(test_chunked_prefill),
        cmocka_unit_test(test_prefix_reuse),
        cmocka_unit_test(test_kv_full),
        cmocka_unit_test(test_bad_batch),
    };
    return cmocka_run_group_tests(tests, load_gold, NULL);
}
