/* The generation helper (engine/gen): golden text of stories260K, stop
 * strings, length limits and continuation, prefix reuse across sequences,
 * Q8_0 / Q4_0 requantized models, perplexity against a token-by-token
 * reference computation, and the NLL of single texts (lgpu_score_tokens). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lgpu/convert.h"
#include "lgpu/gen.h"
#include "lgpu/tokenizer.h"
#include "test_util.h"

#define N_GOLD 256
#define V260 512

static int32_t gold[N_GOLD];
static char gold_text[1024];

static void load_gold(void) {
    FILE *f = fopen(tu_model_path("stories260K.greedy-t0-n256.ids"), "r");
    assert_non_null(f);
    for (int i = 0; i < N_GOLD; i++) assert_int_equal(fscanf(f, "%d", &gold[i]), 1);
    fclose(f);
    f = fopen(tu_model_path("stories260K.greedy-t0-n256.txt"), "rb");
    assert_non_null(f);
    size_t n = fread(gold_text, 1, sizeof gold_text - 1, f);
    gold_text[n] = 0;
    fclose(f);
}

/* The generation logic does not depend on the device: those tests run on the
 * host C path ("cpu"), which needs no shader variants for their many batch
 * sizes; the quantized models and perplexity run on the default device. */
static lgpu_model *load_path(const char *path, const char *device) {
    lgpu_model *m = NULL;
    lgpu_model_params mp = {.path = path, .device = device};
    TU_OK(lgpu_model_create(&mp, &m));
    return m;
}

static lgpu_ctx *make_ctx(lgpu_model *m, uint32_t n_ctx, uint32_t n_seq, uint32_t n_batch) {
    lgpu_ctx *c = NULL;
    lgpu_ctx_params cp = lgpu_ctx_params_default();
    cp.n_ctx = n_ctx, cp.n_seq_max = n_seq, cp.n_batch = n_batch;
    TU_OK(lgpu_ctx_create(m, &cp, &c));
    return c;
}

typedef struct sink {
    char buf[4096];
    size_t n;
    int calls;
} sink;

static int collect(void *user, const char *text, size_t len) {
    sink *s = user;
    assert_true(s->n + len < sizeof s->buf);
    memcpy(s->buf + s->n, text, len);
    s->n += len;
    s->buf[s->n] = 0;
    s->calls++;
    return 0;
}

/* BOS only, greedy, 256 tokens: the golden ids and text, streamed. */
static void test_golden_text(void **state) {
    load_gold();
    lgpu_model *m = load_path(tu_model_path("stories260K.gguf"), "cpu");
    lgpu_ctx *c = make_ctx(m, 512, 1, 64);
    lgpu_gen *g;
    TU_OK(lgpu_gen_create(c, NULL, &g));
    int32_t bos = 1;
    sink out = {0};
    TU_OK(lgpu_gen_feed(g, &bos, 1, collect, &out));
    lgpu_gen_finish why;
    TU_OK(lgpu_gen_run(g, &(lgpu_gen_params){.n_predict = N_GOLD, .on_text = collect, .user = &out}, &why));
    assert_int_equal(why, LGPU_GEN_LENGTH);
    int n;
    const int32_t *ids = lgpu_gen_tokens(g, &n);
    assert_int_equal(n, N_GOLD);
    assert_memory_equal(ids, gold, sizeof gold);
    assert_string_equal(out.buf, gold_text);
    assert_true(out.calls > 50); /* streamed, not in one piece */
    size_t len;
    assert_string_equal(lgpu_gen_text(g, false, &len), gold_text);
    assert_int_equal(lgpu_gen_stats_of(g)->n_gen, N_GOLD);
    lgpu_gen_destroy(g);
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
}

/* Stop strings cut the text; n_predict limits; a later run continues. */
static void test_stop_and_continue(void **state) {
    load_gold();
    lgpu_model *m = load_path(tu_model_path("stories260K.gguf"), "cpu");
    lgpu_ctx *c = make_ctx(m, 512, 1, 64);
    lgpu_gen *g;
    TU_OK(lgpu_gen_create(c, NULL, &g));
    int32_t bos = 1;
    TU_OK(lgpu_gen_feed(g, &bos, 1, NULL, NULL));
    const char *stops[] = {"Lily"};
    sink out = {0};
    lgpu_gen_finish why;
    TU_OK(lgpu_gen_run(g, &(lgpu_gen_params){.n_predict = 64, .stops = stops, .n_stops = 1, .on_text = collect,
                                             .user = &out},
                       &why));
    assert_int_equal(why, LGPU_GEN_STOP);
    assert_string_equal(out.buf, "Once upon a time, there was a little girl named ");
    lgpu_gen_destroy(g);

    /* 10 + 10 tokens = the first 20 golden tokens */
    TU_OK(lgpu_gen_create(c, NULL, &g));
    TU_OK(lgpu_gen_feed(g, &bos, 1, NULL, NULL));
    int n;
    TU_OK(lgpu_gen_run(g, &(lgpu_gen_params){.n_predict = 10}, &why));
    assert_int_equal(why, LGPU_GEN_LENGTH);
    assert_memory_equal(lgpu_gen_tokens(g, &n), gold, 10 * sizeof(int32_t));
    assert_int_equal(lgpu_seq_len(c, lgpu_gen_seq(g)), 10); /* the 10th token is pending */
    TU_OK(lgpu_gen_run(g, &(lgpu_gen_params){.n_predict = 10}, &why));
    assert_memory_equal(lgpu_gen_tokens(g, &n), gold + 10, 10 * sizeof(int32_t));
    assert_int_equal(n, 10);
    /* context full ends a run */
    TU_OK(lgpu_gen_reset(g));
    lgpu_gen_destroy(g);
    lgpu_ctx_destroy(c);
    c = make_ctx(m, 24, 1, 64);
    TU_OK(lgpu_gen_create(c, NULL, &g));
    TU_OK(lgpu_gen_feed(g, &bos, 1, NULL, NULL));
    TU_OK(lgpu_gen_run(g, &(lgpu_gen_params){.n_predict = -1, .ignore_eog = true}, &why));
    assert_int_equal(why, LGPU_GEN_CTX);
    assert_memory_equal(lgpu_gen_tokens(g, &n), gold, 24 * sizeof(int32_t));
    assert_int_equal(n, 24);
    lgpu_gen_destroy(g);
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
}

/* A text prompt, chunked prefill (n_batch 8), and a second sequence that
 * reuses the cached prefix: same continuation. */
static void test_text_prompt_reuse(void **state) {
    lgpu_model *m = load_path(tu_model_path("stories260K.gguf"), "cpu");
    lgpu_ctx *c = make_ctx(m, 256, 2, 8);
    const char *prompt = "Once upon a time, there was a little girl named Lily. She loved to play outside";
    lgpu_gen *a, *b;
    TU_OK(lgpu_gen_create(c, NULL, &a));
    sink echo = {0};
    TU_OK(lgpu_gen_feed_text(a, prompt, true, false, collect, &echo));
    assert_string_equal(echo.buf, prompt); /* the prompt echoes back exactly */
    int n_prompt = lgpu_seq_len(c, lgpu_gen_seq(a));
    assert_true(n_prompt > 16);
    TU_OK(lgpu_gen_run(a, &(lgpu_gen_params){.n_predict = 16}, NULL));
    TU_OK(lgpu_gen_create(c, NULL, &b));
    TU_OK(lgpu_gen_feed_text(b, prompt, true, false, NULL, NULL));
    assert_int_equal(lgpu_gen_stats_of(b)->n_reused, (n_prompt - 1) / 16 * 16);
    TU_OK(lgpu_gen_run(b, &(lgpu_gen_params){.n_predict = 16}, NULL));
    int na, nb;
    const int32_t *ta = lgpu_gen_tokens(a, &na), *tb = lgpu_gen_tokens(b, &nb);
    assert_int_equal(na, 16);
    assert_int_equal(nb, 16);
    assert_memory_equal(ta, tb, 16 * sizeof(int32_t));
    size_t la, lb;
    const char *xa = lgpu_gen_text(a, true, &la), *xb = lgpu_gen_text(b, true, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(xa, xb, la);
    assert_true(xa[0] == ' '); /* a continuation keeps its leading space */
    lgpu_gen_destroy(a);
    lgpu_gen_destroy(b);
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
}

static void quantized_run(int type, int min_match) {
    load_gold();
    char dir[256], path[512];
    assert_non_null(tu_tmpdir_create("gen", dir, sizeof dir));
    snprintf(path, sizeof path, "%s/stories260K-%s.gguf", dir, lgpu_type_name(type));
    lgpu_quantize_stats qs;
    TU_OK(lgpu_quantize_gguf(tu_model_path("stories260K.gguf"), path, type, NULL, &qs));
    assert_true(qs.n_quantized >= 30); /* ffn_down rows (172) fall back to F16 */
    lgpu_model *m = load_path(path, NULL);
    assert_non_null(strstr(lgpu_model_desc(m), type == LGPU_TYPE_Q8_0 ? "Q8_0" : "Q4_0"));
    lgpu_ctx *c = make_ctx(m, 256, 1, 64);
    lgpu_gen *g;
    TU_OK(lgpu_gen_create(c, NULL, &g));
    int32_t bos = 1;
    TU_OK(lgpu_gen_feed(g, &bos, 1, NULL, NULL));
    TU_OK(lgpu_gen_run(g, &(lgpu_gen_params){.n_predict = 64, .ignore_eog = true}, NULL));
    int n, match = 0, distinct = 0;
    const int32_t *ids = lgpu_gen_tokens(g, &n);
    assert_int_equal(n, 64);
    bool seen[V260] = {0};
    for (int i = 0; i < n; i++) {
        assert_true(ids[i] >= 0 && ids[i] < V260);
        distinct += !seen[ids[i]];
        seen[ids[i]] = true;
    }
    while (match < n && ids[match] == gold[match]) match++;
    size_t len;
    fprintf(stderr, "%s: %d distinct tokens, first %d golden: %.80s...\n", lgpu_type_name(type), distinct, match,
            lgpu_gen_text(g, false, &len));
    assert_true(distinct >= 16); /* not degenerate */
    assert_true(match >= min_match);
    lgpu_gen_destroy(g);
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
    assert_int_equal(tu_tmpdir_remove(dir), 0);
}

/* Q8_0 is close to F32: on stories260K all 64 greedy tokens match the F32
 * ones on both paths, asserted with margin as 32 (the first sentence, "Once
 * upon a time, there was a little girl named Lily.", is 14); Q4_0 drifts
 * after 27 tokens, asserted as 10. Both must stay non-degenerate. */
static void test_q8_0(void **state) { quantized_run(LGPU_TYPE_Q8_0, 32); }
static void test_q4_0(void **state) { quantized_run(LGPU_TYPE_Q4_0, 10); }

/* lgpu_perplexity against a token-by-token computation of the same method. */
static void test_perplexity(void **state) {
    load_gold();
    lgpu_model *m = load_path(tu_model_path("stories260K.gguf"), NULL);
    enum { CH = 64, NT = 200 };
    int32_t toks[NT];
    toks[0] = 1;
    memcpy(toks + 1, gold, (NT - 1) * sizeof(int32_t));
    lgpu_ctx *c = make_ctx(m, CH, 1, 24); /* chunks decoded in 3 calls */
    lgpu_ppl_result r;
    TU_OK(lgpu_perplexity(c, toks, NT, CH, 0, 1, NULL, NULL, &r));
    assert_int_equal(r.n_chunks, NT / CH);
    assert_int_equal(r.count, (int64_t)(NT / CH) * (CH - CH / 2 - 1));
    /* reference: one token per decode call, NLL in double */
    double nll = 0, nll2 = 0;
    int64_t count = 0;
    float logits[V260];
    for (int ch = 0; ch < NT / CH; ch++) {
        int seq;
        TU_OK(lgpu_seq_create(c, &seq));
        for (int j = 0; j < CH - 1; j++) {
            int32_t t = j == 0 ? 1 : toks[ch * CH + j], pos = j;
            lgpu_batch b = {.n = 1, .token = &t, .seq = &seq, .pos = &pos, .logits = NULL};
            TU_OK(lgpu_decode(c, &b, logits));
            if (j < CH / 2) continue;
            double mx = logits[0], s = 0;
            for (int i = 1; i < V260; i++) mx = fmax(mx, logits[i]);
            for (int i = 0; i < V260; i++) s += exp(logits[i] - mx);
            double v = mx + log(s) - logits[toks[ch * CH + j + 1]];
            nll += v;
            nll2 += v * v;
            count++;
        }
        lgpu_seq_destroy(c, seq);
    }
    assert_int_equal(count, r.count);
    double mean = nll / count, ppl = exp(mean);
    double err = ppl * sqrt((nll2 / count - mean * mean) / (count - 1));
    fprintf(stderr, "PPL %.4f +/- %.5f (reference %.4f +/- %.5f)\n", r.ppl, r.ppl_err, ppl, err);
    assert_true(fabs(r.ppl - ppl) <= 1e-3 * ppl); /* batch shapes differ: float rounding only */
    assert_true(fabs(r.ppl_err - err) <= 1e-2 * err);
    assert_true(r.ppl > 1 && r.ppl < 10); /* the model's own greedy text is predictable */
    /* too little text */
    assert_int_equal(lgpu_perplexity(c, toks, CH + 10, CH, 0, 1, NULL, NULL, &r), LGPU_EINVAL);
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
}

static int count_init(void *user, lgpu_ctx *ctx, int seq) {
    int *calls = user;
    assert_non_null(ctx);
    assert_true(seq >= 0);
    assert_int_equal(lgpu_seq_len(ctx, seq), 0); /* before any token */
    (*calls)++;
    return 0;
}

static int refuse_init(void *user, lgpu_ctx *ctx, int seq) {
    return lgpu_set_error(LGPU_EUNSUPPORTED, "no adapters here");
}

/* lgpu_score_tokens: the chunks of lgpu_perplexity scored one by one give
 * the same bits (same decode calls); the sequence hook runs once per
 * sequence, and its failure is the call's. */
static void test_score_tokens(void **state) {
    load_gold();
    lgpu_model *m = load_path(tu_model_path("stories260K.gguf"), "cpu");
    enum { CH = 64, NT = 200 };
    int32_t toks[NT];
    toks[0] = 1;
    memcpy(toks + 1, gold, (NT - 1) * sizeof(int32_t));
    lgpu_ctx *c = make_ctx(m, CH, 1, 24);
    lgpu_ppl_result r, r2;
    int calls = 0;
    TU_OK(lgpu_perplexity_init(c, toks, NT, CH, 0, 1, NULL, NULL, count_init, &calls, &r));
    assert_int_equal(calls, NT / CH);
    TU_OK(lgpu_perplexity(c, toks, NT, CH, 0, 1, NULL, NULL, &r2));
    assert_true(r.nll_mean == r2.nll_mean);
    lgpu_nll_acc acc = {0};
    calls = 0;
    for (int ch = 0; ch < NT / CH; ch++) {
        int32_t chunk[CH];
        memcpy(chunk, toks + ch * CH, sizeof chunk);
        chunk[0] = 1; /* BOS, as lgpu_perplexity puts it */
        TU_OK(lgpu_score_tokens(c, chunk, CH, CH / 2, count_init, &calls, &acc));
    }
    assert_int_equal(calls, NT / CH);
    assert_int_equal(acc.count, r.count);
    lgpu_ppl_result r3;
    TU_OK(lgpu_nll_result(&acc, &r3));
    assert_true(r3.nll_mean == r.nll_mean);
    assert_true(r3.ppl == r.ppl);
    assert_int_equal(r3.n_chunks, 0);
    /* first = 0: every token but the first */
    lgpu_nll_acc all = {0};
    TU_OK(lgpu_score_tokens(c, toks, 10, 0, NULL, NULL, &all));
    assert_int_equal(all.count, 9);
    assert_true(all.nll > 0);
    /* errors */
    assert_int_equal(lgpu_score_tokens(c, toks, CH + 1, 0, NULL, NULL, &all), LGPU_ERANGE);
    assert_int_equal(lgpu_score_tokens(c, toks, 10, 10, NULL, NULL, &all), LGPU_EINVAL);
    assert_int_equal(lgpu_score_tokens(c, toks, 10, 0, refuse_init, NULL, &all), LGPU_EUNSUPPORTED);
    assert_int_equal(lgpu_perplexity_init(c, toks, NT, CH, 0, 1, NULL, NULL, refuse_init, NULL, &r), LGPU_EUNSUPPORTED);
    assert_non_null(strstr(lgpu_last_error(), "no adapters here"));
    lgpu_nll_acc none = {0};
    assert_int_equal(lgpu_nll_result(&none, &r3), LGPU_EINVAL);
    /* the failed calls left no sequence open */
    TU_OK(lgpu_score_tokens(c, toks, 10, 0, NULL, NULL, &all));
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_text),  cmocka_unit_test(test_stop_and_continue),
        cmocka_unit_test(test_text_prompt_reuse), cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_q4_0),         cmocka_unit_test(test_perplexity),
        cmocka_unit_test(test_score_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
