/* Sampler chain, logprobs and the stop-string matcher. Distributions are
 * hand-made so each filter's surviving set is known exactly; probabilities
 * are compared with an absolute tolerance of 1e-5 (float softmax). */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lgpu/sampler.h"

#define PTOL 1e-5

/* Sampler with every filter off, temperature 1, fixed seed. */
static lgpu_sampler_params plain(void) {
    lgpu_sampler_params p;
    lgpu_sampler_params_default(&p);
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.typical_p = 1.0f;
    p.seed = 1234;
    return p;
}

static void logits_from_probs(const double *pr, int n, float *out) {
    for (int i = 0; i < n; i++) out[i] = (float)log(pr[i]);
}

/* Asserts the sampler's final distribution is exactly {ids[i]: probs[i]}, in that order. */
static void expect_dist(const lgpu_sampler_params *p, const float *logits, int n, int n_want, const int32_t *ids,
                        const double *probs) {
    lgpu_sampler *s;
    TU_OK(lgpu_sampler_create(p, &s));
    int32_t got_ids[64];
    float got_p[64];
    int got = lgpu_sampler_probs(s, logits, n, 64, got_ids, got_p);
    assert_int_equal(got, n_want);
    for (int i = 0; i < n_want; i++) {
        assert_int_equal(got_ids[i], ids[i]);
        assert_float_equal(got_p[i], probs[i], PTOL);
    }
    lgpu_sampler_destroy(s);
}

static void test_greedy(void **state) {
    (void)state;
    lgpu_sampler_params p = plain();
    p.temperature = 0.0f;
    p.top_k = 2; /* filters must not matter when greedy */
    float l[] = {1.0f, 3.0f, -INFINITY, 2.0f, 3.0f, NAN};
    lgpu_sampler *s;
    TU_OK(lgpu_sampler_create(&p, &s));
    lgpu_sample_info info;
    for (int i = 0; i < 3; i++) assert_int_equal(lgpu_sampler_sample(s, l, 6, &info), 1); /* tie -> lower id */
    assert_float_equal(info.prob, 1.0f, 0);
    /* raw log-softmax: 3 - log(e^1 + e^3 + e^2 + e^3) */
    assert_float_equal(info.logprob, 3.0 - log(exp(1) + 2 * exp(3) + exp(2)), PTOL);
    float masked[] = {-INFINITY, -INFINITY};
    assert_int_equal(lgpu_sampler_sample(s, masked, 2, NULL), LGPU_EINVAL);
    lgpu_sampler_destroy(s);
}

/* The first index of the largest logit that is neither NaN nor -inf. */
static int naive_argmax(const float *l, int n) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (!isnan(l[i]) && l[i] > -INFINITY && (best < 0 || l[i] > l[best])) best = i;
    return best;
}

/* Greedy over a vocabulary of many blocks: the first index of the maximum
 * wherever it and its ties fall (block edges, the unaligned tail); NaN and
 * -inf are never chosen. */
static void test_greedy_long(void **state) {
    (void)state;
    lgpu_sampler_params p = plain();
    p.temperature = 0.0f;
    lgpu_sampler *s;
    TU_OK(lgpu_sampler_create(&p, &s));
    enum { N = 1003 };
    float l[N];
    tu_rng rng;
    tu_rng_seed(&rng, 7);
    for (int i = 0; i < N; i++) l[i] = (float)(tu_rng_u32(&rng) % 1000) / 100.0f;
    for (int i = 3; i < N; i += 97) l[i] = NAN;
    for (int i = 5; i < N; i += 89) l[i] = -INFINITY;
    const int at[] = {0, 255, 256, 511, 700, 1002}, tie[] = {1002, 999, 257, 512, 0, 1};
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
        float keep_a = l[at[k]], keep_t = l[tie[k]];
        l[at[k]] = l[tie[k]] = 20.0f;
        int want = naive_argmax(l, N);
        assert_int_equal(want, at[k] < tie[k] ? at[k] : tie[k]);
        assert_int_equal(lgpu_sampler_sample(s, l, N, NULL), want);
        l[at[k]] = keep_a, l[tie[k]] = keep_t;
    }
    lgpu_sampler_destroy(s);
}

static void test_top_k(void **state) {
    (void)state;
    double pr[] = {0.1, 0.2, 0.3, 0.4};
    float l[4];
    logits_from_probs(pr, 4, l);
    lgpu_sampler_params p = plain();
    p.top_k = 2;
    expect_dist(&p, l, 4, 2, (int32_t[]){3, 2}, (double[]){0.4 / 0.7, 0.3 / 0.7});
    p.top_k = 10; /* more than the vocabulary: no-op */
    expect_dist(&p, l, 4, 4, (int32_t[]){3, 2, 1, 0}, (double[]){0.4, 0.3, 0.2, 0.1});
}

static void test_top_p(void **state) {
    (void)state;
    double pr[] = {0.05, 0.1, 0.15, 0.3, 0.4};
    float l[5];
    logits_from_probs(pr, 5, l);
    lgpu_sampler_params p = plain();
    p.top_p = 0.65f; /* 0.4 < 0.65 <= 0.4+0.3 */
    expect_dist(&p, l, 5, 2, (int32_t[]){4, 3}, (double[]){0.4 / 0.7, 0.3 / 0.7});
    p.top_p = 0.75f;
    expect_dist(&p, l, 5, 3, (int32_t[]){4, 3, 2}, (double[]){0.4 / 0.85, 0.3 / 0.85, 0.15 / 0.85});
    p.top_p = 0.0f; /* keeps at least one */
    expect_dist(&p, l, 5, 1, (int32_t[]){4}, (double[]){1.0});
}

static void test_min_p(void **state) {
    (void)state;
    double pr[] = {0.05, 0.1, 0.15, 0.3, 0.4};
    float l[5];
    logits_from_probs(pr, 5, l);
    lgpu_sampler_params p = plain();
    p.min_p = 0.3f; /* keep p >= 0.12 */
    expect_dist(&p, l, 5, 3, (int32_t[]){4, 3, 2}, (double[]){0.4 / 0.85, 0.3 / 0.85, 0.15 / 0.85});
}

static void test_typical(void **state) {
    (void)state;
    /* H = 1.75 bits; |-ln p - H| ranks token 1 (p .25) first, then 0 (p .5), then 2 and 3 */
    double pr[] = {0.5, 0.25, 0.125, 0.125};
    float l[4];
    logits_from_probs(pr, 4, l);
    lgpu_sampler_params p = plain();
    p.typical_p = 0.5f; /* 0.25 is not > 0.5, 0.75 is */
    expect_dist(&p, l, 4, 2, (int32_t[]){0, 1}, (double[]){2.0 / 3.0, 1.0 / 3.0});
    p.typical_p = 0.2f;
    expect_dist(&p, l, 4, 1, (int32_t[]){1}, (double[]){1.0});
}

static void test_temperature_and_order(void **state) {
    (void)state;
    float l[] = {0.0f, (float)log(2.0)};
    lgpu_sampler_params p = plain();
    p.temperature = 0.5f; /* logits doubled: 1 : 4 */
    expect_dist(&p, l, 2, 2, (int32_t[]){1, 0}, (double[]){0.8, 0.2});

    /* min_p runs before the temperature: on {.5,.3,.2} with min_p .5 token 2
     * (.2 < .25) goes; a flattened (T=2) distribution would have kept it. */
    double pr[] = {0.5, 0.3, 0.2};
    float l3[3];
    logits_from_probs(pr, 3, l3);
    p.temperature = 2.0f;
    p.min_p = 0.5f;
    double a = sqrt(0.5), b = sqrt(0.3);
    expect_dist(&p, l3, 3, 2, (int32_t[]){0, 1}, (double[]){a / (a + b), b / (a + b)});
}

static void test_penalties(void **state) {
    (void)state;
    float l[] = {2.0f, -2.0f, 1.0f, 0.5f};
    lgpu_sampler_params p = plain();
    p.repeat_penalty = 2.0f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    p.repeat_last_n = 3;
    lgpu_sampler *s;
    TU_OK(lgpu_sampler_create(&p, &s));
    int32_t hist[] = {2, 0, 1, 1}; /* window of 3: token 2 has left it */
    for (int i = 0; i < 4; i++) TU_OK(lgpu_sampler_accept(s, hist[i]));
    /* token 0: 2/2 - 0.5 - 0.25*1 = 0.25; token 1: -2*2 - 0.5 - 0.25*2 = -5 */
    double want[] = {0.25, -5.0, 1.0, 0.5}, z = 0;
    for (int i = 0; i < 4; i++) z += exp(want[i]);
    int32_t ids[4];
    float pr[4];
    assert_int_equal(lgpu_sampler_probs(s, l, 4, 4, ids, pr), 4);
    int32_t order[] = {2, 3, 0, 1};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ids[i], order[i]);
        assert_float_equal(pr[i], exp(want[order[i]]) / z, PTOL);
    }
    /* the window keeps sliding past its compaction point (2*n accepts) */
    for (int i = 0; i < 10; i++) TU_OK(lgpu_sampler_accept(s, 3));
    /* window {3,3,3}: token 3 -> 0.5/2 - 0.5 - 0.25*3 = -1; the rest raw */
    double want2[] = {2.0, -2.0, 1.0, -1.0};
    z = 0;
    for (int i = 0; i < 4; i++) z += exp(want2[i]);
    assert_int_equal(lgpu_sampler_probs(s, l, 4, 4, ids, pr), 4);
    int32_t order2[] = {0, 2, 3, 1};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ids[i], order2[i]);
        assert_float_equal(pr[i], exp(want2[order2[i]]) / z, PTOL);
    }
    lgpu_sampler_reset(s);
    assert_int_equal(lgpu_sampler_probs(s, l, 4, 4, ids, pr), 4);
    assert_int_equal(ids[0], 0); /* history gone: raw order */
    lgpu_sampler_destroy(s);

    p.repeat_penalty = 0.0f;
    assert_int_equal(lgpu_sampler_create(&p, &s), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "repeat_penalty"));
}

static void test_seeded_determinism(void **state) {
    (void)state;
    enum { V = 1000, T = 200 };
    tu_rng r;
    tu_rng_seed(&r, 7);
    float *l = malloc(V * sizeof *l);
    tu_fill_uniform(&r, l, V, -3, 3);
    lgpu_sampler_params p;
    lgpu_sampler_params_default(&p);
    p.seed = 42;
    lgpu_sampler *a, *b, *c;
    TU_OK(lgpu_sampler_create(&p, &a));
    TU_OK(lgpu_sampler_create(&p, &b));
    p.seed = 43;
    TU_OK(lgpu_sampler_create(&p, &c));
    int32_t seq[T];
    int same_as_c = 0;
    for (int i = 0; i < T; i++) {
        seq[i] = lgpu_sampler_sample(a, l, V, NULL);
        assert_true(seq[i] >= 0 && seq[i] < V);
        assert_int_equal(lgpu_sampler_sample(b, l, V, NULL), seq[i]);
        same_as_c += lgpu_sampler_sample(c, l, V, NULL) == seq[i];
    }
    assert_true(same_as_c < T); /* a different seed gives a different sequence */
    lgpu_sampler_reset(a);
    for (int i = 0; i < T; i++) assert_int_equal(lgpu_sampler_sample(a, l, V, NULL), seq[i]);
    lgpu_sampler_destroy(a);
    lgpu_sampler_destroy(b);
    lgpu_sampler_destroy(c);
    free(l);
}

static void test_draw_frequencies(void **state) {
    (void)state;
    /* probs .25/.75: over 20000 draws the frequency's sd is 0.003; allow 0.015 */
    double pr[] = {0.25, 0.75};
    float l[2];
    logits_from_probs(pr, 2, l);
    lgpu_sampler_params p = plain();
    lgpu_sampler *s;
    TU_OK(lgpu_sampler_create(&p, &s));
    int ones = 0, n = 20000;
    lgpu_sample_info info;
    for (int i = 0; i < n; i++) {
        int32_t t = lgpu_sampler_sample(s, l, 2, &info);
        ones += t == 1;
        assert_float_equal(info.prob, pr[t], PTOL);
        assert_float_equal(info.logprob, log(pr[t]), PTOL);
    }
    assert_float_equal((double)ones / n, 0.75, 0.015);
    lgpu_sampler_destroy(s);
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x > y ? -1 : x < y;
}

/* 128k vocabulary: top_k / top_p agree with a full-sort reference. */
static void test_large_vocab(void **state) {
    (void)state;
    enum { V = 128 * 1024 };
    tu_rng r;
    tu_rng_seed(&r, 11);
    float *l = malloc(V * sizeof *l), *sorted = malloc(V * sizeof *l);
    for (int i = 0; i < V; i++) l[i] = 0.3f * tu_rng_normal(&r); /* flat: top_p needs thousands */
    memcpy(sorted, l, V * sizeof *l);
    qsort(sorted, V, sizeof *sorted, cmp_desc);
    int32_t *ids = malloc(V * sizeof *ids);
    float *pr = malloc(V * sizeof *pr);

    lgpu_sampler_params p = plain();
    lgpu_sampler *s;
    /* 40 takes the k-heap path, 1000 the quickselect path */
    for (int k = 40; k <= 1000; k += 960) {
        p.top_k = k;
        TU_OK(lgpu_sampler_create(&p, &s));
        assert_int_equal(lgpu_sampler_probs(s, l, V, V, ids, pr), k);
        for (int i = 0; i < k; i++) assert_float_equal(l[ids[i]], sorted[i], 0);
        lgpu_sampler_destroy(s);
    }

    p = plain();
    p.top_p = 0.5f;
    TU_OK(lgpu_sampler_create(&p, &s));
    double z = 0, cum = 0;
    for (int i = 0; i < V; i++) z += exp(sorted[i] - sorted[0]);
    int want = 0;
    while (cum < 0.5 * z) cum += exp(sorted[want++] - sorted[0]);
    int got = lgpu_sampler_probs(s, l, V, V, ids, pr);
    assert_true(want > 1000); /* the lazy sort had to grow several times */
    assert_int_equal(got, want);
    for (int i = 0; i < got; i++) assert_float_equal(l[ids[i]], sorted[i], 0);

    /* timing, not asserted: the default chain on 128k logits */
    lgpu_sampler_destroy(s);
    lgpu_sampler_params_default(&p);
    p.seed = 5;
    TU_OK(lgpu_sampler_create(&p, &s));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 50; i++) assert_true(lgpu_sampler_sample(s, l, V, NULL) >= 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("default chain, 128k vocab: %.3f ms/token\n",
                  ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6) / 50);
    lgpu_sampler_destroy(s);

    /* top logprobs: the k best raw logits, best first */
    int32_t tid[20];
    float tlp[20];
    assert_int_equal(lgpu_logprobs_top(l, V, 20, tid, tlp), 20);
    double lse = sorted[0] + log(z);
    for (int i = 0; i < 20; i++) {
        assert_float_equal(l[tid[i]], sorted[i], 0);
        assert_float_equal(tlp[i], sorted[i] - lse, 1e-4);
        assert_float_equal(lgpu_logprob_of(l, V, tid[i]), tlp[i], 1e-5);
    }
    free(l);
    free(sorted);
    free(ids);
    free(pr);
}

static void test_logprobs_top_small(void **state) {
    (void)state;
    float l[] = {1.0f, 2.0f, 3.0f, 3.0f};
    double lse = log(exp(1) + exp(2) + 2 * exp(3));
    int32_t ids[8];
    float lp[8];
    assert_int_equal(lgpu_logprobs_top(l, 4, 3, ids, lp), 3);
    int32_t want[] = {2, 3, 1};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ids[i], want[i]);
        assert_float_equal(lp[i], l[want[i]] - lse, PTOL);
    }
    assert_int_equal(lgpu_logprobs_top(l, 4, 8, ids, lp), 4); /* k > n_vocab */
    assert_int_equal(ids[3], 0);
    assert_int_equal(lgpu_logprobs_top(l, 4, 0, NULL, NULL), 0);
    assert_int_equal(lgpu_logprobs_top(l, 0, 1, ids, lp), LGPU_EINVAL);
    assert_true(isnan(lgpu_logprob_of(l, 4, 4)));
}

/* Feeds `pieces` one by one as a streaming server would; returns the emitted
 * text and the stop index (-1 if none). */
static int stream(const lgpu_stop *st, const char *const *pieces, char *emitted) {
    char text[256] = "";
    size_t len = 0, safe = 0, out = 0;
    emitted[0] = 0;
    for (int i = 0; pieces[i]; i++) {
        size_t pl = strlen(pieces[i]);
        memcpy(text + len, pieces[i], pl + 1);
        len += pl;
        lgpu_stop_result r;
        int found = lgpu_stop_scan(st, text, len, safe, &r);
        assert_true(found >= 0);
        size_t end = found ? r.stop_pos : r.safe_len;
        assert_true(end >= out);
        memcpy(emitted + out, text + out, end - out);
        out = end;
        emitted[out] = 0;
        safe = r.safe_len;
        if (found) return r.stop_index;
    }
    return -1;
}

static void test_stop_strings(void **state) {
    (void)state;
    lgpu_stop *st;
    lgpu_stop_result r;
    char out[256];

    /* a stop string split across tokens is held back, then cut */
    TU_OK(lgpu_stop_create((const char *[]){"<|end|>"}, 1, &st));
    const char *text = "Hello <|en";
    assert_int_equal(lgpu_stop_scan(st, text, strlen(text), 0, &r), 0);
    assert_int_equal(r.safe_len, 6); /* "<|en" held */
    assert_int_equal(r.stop_index, -1);
    assert_int_equal(stream(st, (const char *[]){"Hello", " <|", "en", "d|>", "more", NULL}, out), 0);
    assert_string_equal(out, "Hello ");
    /* a false start is released once it stops matching */
    assert_int_equal(stream(st, (const char *[]){"a <|e", "x", NULL}, out), -1);
    assert_string_equal(out, "a <|ex");
    lgpu_stop_destroy(st);

    /* several stop strings: the hold-back is the longest candidate tail */
    TU_OK(lgpu_stop_create((const char *[]){"\n\n", "END"}, 2, &st));
    text = "abc\nEN";
    assert_int_equal(lgpu_stop_scan(st, text, 6, 0, &r), 0);
    assert_int_equal(r.safe_len, 4);
    text = "abc\n";
    assert_int_equal(lgpu_stop_scan(st, text, 4, 0, &r), 0);
    assert_int_equal(r.safe_len, 3);
    assert_int_equal(stream(st, (const char *[]){"x\n", "\ny", NULL}, out), 0);
    assert_string_equal(out, "x");
    lgpu_stop_destroy(st);

    /* overlapping stop strings: the match that starts first wins */
    TU_OK(lgpu_stop_create((const char *[]){"abcd", "bcx"}, 2, &st));
    assert_int_equal(lgpu_stop_scan(st, "zabc", 4, 0, &r), 0);
    assert_int_equal(r.safe_len, 1); /* "abc" could still become "abcd" */
    assert_int_equal(stream(st, (const char *[]){"za", "bc", "x", NULL}, out), 1);
    assert_string_equal(out, "za"); /* "bcx" starts at 2 */
    lgpu_stop_destroy(st);

    TU_OK(lgpu_stop_create((const char *[]){"cd", "bcde", "", "ab", "abc"}, 5, &st));
    assert_int_equal(lgpu_stop_scan(st, "xbcde", 5, 0, &r), 1);
    assert_int_equal(r.stop_index, 1); /* starts at 1, before "cd" at 2 */
    assert_int_equal(r.stop_pos, 1);
    assert_int_equal(lgpu_stop_scan(st, "xabc", 4, 0, &r), 1);
    assert_int_equal(r.stop_index, 3); /* same start: lower index */
    lgpu_stop_destroy(st);

    /* self-overlapping stop string, fed one byte at a time */
    TU_OK(lgpu_stop_create((const char *[]){"aab"}, 1, &st));
    assert_int_equal(stream(st, (const char *[]){"a", "a", "a", "b", NULL}, out), 0);
    assert_string_equal(out, "a");
    lgpu_stop_destroy(st);

    /* no stop strings: everything is safe */
    TU_OK(lgpu_stop_create(NULL, 0, &st));
    assert_int_equal(lgpu_stop_scan(st, "abc", 3, 0, &r), 0);
    assert_int_equal(r.safe_len, 3);
    assert_int_equal(lgpu_stop_scan(st, "abc", 3, 4, &r), LGPU_EINVAL); /* from > len */
    lgpu_stop_destroy(st);
    lgpu_stop_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_greedy_long),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_typical),
        cmocka_unit_test(test_temperature_and_order),
        cmocka_unit_test(test_penalties),
        cmocka_unit_test(test_seeded_determinism),
        cmocka_unit_test(test_draw_frequencies),
        cmocka_unit_test(test_large_vocab),
        cmocka_unit_test(test_logprobs_top_small),
        cmocka_unit_test(test_stop_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
