/* Text metrics (lgpu/metrics.h) on hand-computed cases, edge cases
 * included (empty texts, Unicode, invalid UTF-8, regex errors), and JSONL
 * test sets (lgpu/testset.h): the fixture, rendering, and every kind of bad
 * line with its file, line and id.
 *
 * The F1 and ROUGE-L values are worked out by hand below each case, by the
 * steps of SQuAD's evaluate-v2.0.py (normalize_answer, Counter overlap) and
 * of rouge-score's tokenize + _score_lcs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lgpu/metrics.h"
#include "lgpu/testset.h"
#include "lgpu/tokenizer.h"
#include "test_util.h"

static double score(lgpu_metric m, const char *out, const char *exp) {
    double s = -1;
    int rc = lgpu_metric_score(m, out, exp, &s);
    if (rc) fail_msg("%s(\"%s\", \"%s\") -> %s: %s", lgpu_metric_name(m), out, exp ? exp : "(null)",
                     lgpu_err_name(rc), lgpu_last_error());
    return s;
}

#define ASSERT_NEAR(a, b) \
    do { \
        double a_ = (a), b_ = (b); \
        if (!(fabs(a_ - b_) <= 1e-12)) fail_msg("%s = %.15g, want %.15g", #a, a_, b_); \
    } while (0)

static void test_names(void **state) {
    for (int m = 0; m < LGPU_METRIC_COUNT_; m++) {
        assert_non_null(lgpu_metric_name((lgpu_metric)m));
        assert_int_equal(lgpu_metric_from_name(lgpu_metric_name((lgpu_metric)m)), m);
        assert_non_null(strstr(lgpu_metric_names(), lgpu_metric_name((lgpu_metric)m)));
    }
    assert_null(lgpu_metric_name(LGPU_METRIC_COUNT_));
    assert_int_equal(lgpu_metric_from_name("rougeL"), LGPU_METRIC_ROUGE_L);
    assert_int_equal(lgpu_metric_from_name("em"), LGPU_METRIC_EXACT_MATCH);
    assert_int_equal(lgpu_metric_from_name("bleu"), -1);
    assert_int_equal(lgpu_metric_from_name(NULL), -1);
    assert_true(lgpu_metric_is_binary(LGPU_METRIC_REGEX));
    assert_false(lgpu_metric_is_binary(LGPU_METRIC_F1));
    /* the pass rule */
    assert_true(lgpu_metric_pass(LGPU_METRIC_F1, 0.5, 0.5));
    assert_false(lgpu_metric_pass(LGPU_METRIC_F1, 0.49, 0.5));
    assert_true(lgpu_metric_pass(LGPU_METRIC_ROUGE_L, 0.2, 0.0));
    assert_true(lgpu_metric_pass(LGPU_METRIC_CONTAINS, 1, 2.0)); /* binary: the threshold does not apply */
    assert_false(lgpu_metric_pass(LGPU_METRIC_EXACT_MATCH, 0, 0.0));
}

static void test_exact_match(void **state) {
    lgpu_metric m = LGPU_METRIC_EXACT_MATCH;
    assert_true(score(m, "  Paris\n", "Paris") == 1);        /* surrounding whitespace */
    assert_true(score(m, "paris", "Paris") == 0);            /* case counts */
    assert_true(score(m, "Par is", "Paris") == 0);           /* inner whitespace counts */
    assert_true(score(m, "", "") == 1);
    assert_true(score(m, " \t\n", "") == 1);
    assert_true(score(m, "", "x") == 0);
    assert_true(score(m, "\xC2\xA0Paris\xE3\x80\x80", "Paris") == 1); /* NBSP, ideographic space: Python's strip */
    assert_true(score(m, "Z\xC3\xBCrich", "Z\xC3\xBCrich") == 1);
    assert_true(score(m, "Zurich", "Z\xC3\xBCrich") == 0);
}

static void test_contains(void **state) {
    lgpu_metric m = LGPU_METRIC_CONTAINS;
    assert_true(score(m, "The answer is 42.", "42") == 1);
    assert_true(score(m, "The answer is 42.", "43") == 0);
    assert_true(score(m, "Hello", "hello") == 0);
    assert_true(score(m, "anything", "") == 1); /* the empty text is in every text */
    assert_true(score(m, "", "") == 1);
    assert_true(score(m, "", "x") == 0);
    assert_true(score(m, "na\xC3\xAFve caf\xC3\xA9", "caf\xC3\xA9") == 1);
}

static void test_regex(void **state) {
    lgpu_metric m = LGPU_METRIC_REGEX;
    assert_true(score(m, "The answer is 42.", "\\b4\\d\\b") == 1);
    assert_true(score(m, "abc", "^b") == 0);   /* searched, but ^ anchors */
    assert_true(score(m, "abc", "b") == 1);
    assert_true(score(m, "abc", "") == 1);      /* the empty pattern matches */
    assert_true(score(m, "", "^$") == 1);
    assert_true(score(m, "", "x") == 0);
    /* UTF-8 mode: "." is one character (ß is two bytes), caseless and \w are Unicode's */
    assert_true(score(m, "Stra\xC3\x9F" "e", "^Stra.e$") == 1);
    assert_true(score(m, "\xCE\x91\xCE\x92\xCE\x93", "(?i)^\xCE\xB1\xCE\xB2\xCE\xB3$") == 1); /* ΑΒΓ ~ αβγ */
    assert_true(score(m, "\xE6\x97\xA5\xE6\x9C\xAC", "^\\w+$") == 1);                      /* 日本 */
    /* an output that is not UTF-8 is still searched */
    assert_true(score(m, "abc\xFF", "abc") == 1);
    assert_true(score(m, "\xFF\xFE", "x") == 0);
    /* errors: PCRE2's message and the offset, from check and from score */
    assert_int_equal(lgpu_metric_check(m, "(ab"), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "missing closing parenthesis"));
    assert_non_null(strstr(lgpu_last_error(), "at offset 3 of \"(ab\""));
    assert_int_equal(lgpu_metric_check(m, "[z-a]"), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "range out of order"));
    double s = 5;
    assert_int_equal(lgpu_metric_score(m, "abc", "a{2,1}", &s), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "regex: "));
    assert_true(s == 0);
    TU_OK(lgpu_metric_check(m, "^ok$"));
    TU_OK(lgpu_metric_check(LGPU_METRIC_EXACT_MATCH, "(ab")); /* only regex compiles its text */
}

static void test_json_valid(void **state) {
    lgpu_metric m = LGPU_METRIC_JSON_VALID;
    static const char *const GOOD[] = {
        "{\"a\": [1, 2.5e-3, -0, true, false, null, \"x\\u00e9\\n\\\"\"]}",
        "  [1,2]\n", "42", "\"str\"", "null", "{}", "[]", "-1.5E+10",
        "123456789012345678901234567890", "1e400", /* no range limit in JSON's grammar */
        "\"caf\xC3\xA9\"", "\"\\ud800\"", /* a lone surrogate escape: the RFC lets it pass */
        "\xC2\xA0{\"a\":{\"b\":[{}]}}\xE3\x80\x80", /* surrounding Unicode whitespace is stripped first */
    };
    static const char *const BAD[] = {
        "", "   ", "{\"a\":1,}", "{'a':1}", "[1] [2]", "01", "1.", "-", "1e", ".5", "\"a\tb\"", "\"\\x\"",
        "\"\\u12G4\"", "[[[", "]", "{\"a\" 1}", "{1:2}", "tru", "nulls", "\"\xFF\"", "\"abc", "[1,]", "{,}",
        "NaN", "Infinity", "[1 2]", "{\"a\":1 \"b\":2}",
    };
    for (size_t i = 0; i < sizeof GOOD / sizeof *GOOD; i++)
        if (score(m, GOOD[i], NULL) != 1) fail_msg("valid JSON refused: %s", GOOD[i]);
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++)
        if (score(m, BAD[i], "ignored") != 0) fail_msg("invalid JSON accepted: %s", BAD[i]);
    /* deep nesting costs heap, not stack */
    enum { DEPTH = 200000 };
    char *deep = malloc(2 * DEPTH + 1);
    assert_non_null(deep);
    memset(deep, '[', DEPTH);
    memset(deep + DEPTH, ']', DEPTH);
    deep[2 * DEPTH] = 0;
    assert_true(score(m, deep, NULL) == 1);
    deep[2 * DEPTH - 1] = 0;
    assert_true(score(m, deep, NULL) == 0);
    free(deep);
}

static void test_squad_normalize(void **state) {
    static const struct {
        const char *in, *want;
    } CASES[] = {
        {"The Cat sat on the mat.", "cat sat on mat"},
        /* the em dash is not ASCII punctuation and stays; \b sees it as a non-word
         * character, so the "a" after it is a word and goes */
        {"An apple\xE2\x80\x94" "a day", "apple\xE2\x80\x94 day"},
        {"Hello,World", "helloworld"}, /* punctuation goes without leaving a space */
        {"The   quick\tbrown\xC2\xA0" "fox", "quick brown fox"}, /* NBSP is whitespace to Python */
        {"The theater", "theater"},                           /* "the" only as a word */
        {"a_b", "ab"},                                        /* "_" is punctuation */
        {"\xC3\x80" "B the \xC3\x9Cn\xC3\xAF" "code", "\xC3\xA0" "b \xC3\xBCn\xC3\xAF" "code"}, /* ÀB -> àb */
        {"", ""},
        {"a an the", ""},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        char *out = NULL;
        TU_OK(lgpu_metric_squad_normalize(CASES[i].in, &out));
        if (strcmp(out, CASES[i].want)) fail_msg("normalize(\"%s\") = \"%s\", want \"%s\"", CASES[i].in, out, CASES[i].want);
        free(out);
    }
}

static void test_f1(void **state) {
    lgpu_metric m = LGPU_METRIC_F1;
    /* both normalise to "cat sat on mat" */
    ASSERT_NEAR(score(m, "The Cat sat on the mat.", "a cat sat on a mat"), 1.0);
    /* [paris, france] vs [paris]: 1 common; P = 1/2, R = 1, F1 = 2(1/2)(1)/(3/2) = 2/3 */
    ASSERT_NEAR(score(m, "Paris, France", "Paris"), 2.0 / 3.0);
    /* [cat, cat, dog] vs [cat, dog, dog]: min counts cat 1 + dog 1 = 2; P = R = 2/3 */
    ASSERT_NEAR(score(m, "cat cat dog", "cat dog dog"), 2.0 / 3.0);
    /* no common token */
    ASSERT_NEAR(score(m, "blue", "red"), 0.0);
    /* empty after normalisation on both sides: 1 (evaluate-v2.0's no-answer rule); on one side: 0 */
    ASSERT_NEAR(score(m, "the the the", ""), 1.0);
    ASSERT_NEAR(score(m, "", ""), 1.0);
    ASSERT_NEAR(score(m, "", "answer"), 0.0);
    ASSERT_NEAR(score(m, "answer", "..."), 0.0);
    /* Unicode lowercase: É -> é */
    ASSERT_NEAR(score(m, "\xC3\x89lan vital", "\xC3\xA9lan VITAL!"), 1.0);
    /* bytes that are not UTF-8 are kept and compared as they are */
    ASSERT_NEAR(score(m, "ABC\xFF", "abc\xFF"), 1.0);
    /* [the]->[], order does not matter: [mat, sat, cat] vs [cat, sat, on, mat]: 3 common,
     * P = 1, R = 3/4, F1 = 2(3/4)/(7/4) = 6/7 */
    ASSERT_NEAR(score(m, "mat sat cat", "the cat sat on the mat"), 6.0 / 7.0);
    double f;
    TU_OK(lgpu_metric_f1("x y", "y", &f));
    ASSERT_NEAR(f, 2.0 / 3.0);
}

static void test_rouge_l(void **state) {
    double p, r, f;
    /* [the cat is on the mat] vs [the cat sat on the mat]: LCS "the cat on the mat" = 5 of 6 each */
    TU_OK(lgpu_metric_rouge_l("the cat is on the mat", "the cat sat on the mat", &p, &r, &f));
    ASSERT_NEAR(p, 5.0 / 6.0);
    ASSERT_NEAR(r, 5.0 / 6.0);
    ASSERT_NEAR(f, 5.0 / 6.0);
    /* reversed: LCS 1 of 5 */
    TU_OK(lgpu_metric_rouge_l("e d c b a", "a b c d e", &p, &r, &f));
    ASSERT_NEAR(f, 2 * 0.2 * 0.2 / 0.4);
    /* [hello world 42] vs [hello world]: LCS 2, P = 2/3, R = 1, F = 2(2/3)/(5/3) = 0.8 */
    TU_OK(lgpu_metric_rouge_l("Hello, World 42", "hello world", &p, &r, &f));
    ASSERT_NEAR(p, 2.0 / 3.0);
    ASSERT_NEAR(r, 1.0);
    ASSERT_NEAR(f, 2 * (2.0 / 3.0) / (5.0 / 3.0));
    /* precision and recall: [a b] vs [a b c d]: P = 1, R = 1/2, F = 2/3 */
    TU_OK(lgpu_metric_rouge_l("a b", "a b c d", &p, &r, &f));
    ASSERT_NEAR(p, 1.0);
    ASSERT_NEAR(r, 0.5);
    ASSERT_NEAR(f, 2.0 / 3.0);
    /* rouge-score keeps a-z0-9 only, after lowercasing: "don't" is [don, t];
     * [don t stop] vs [dont stop]: LCS 1, P = 1/3, R = 1/2, F = 2(1/6)/(5/6) = 0.4 */
    TU_OK(lgpu_metric_rouge_l("don't stop", "dont stop", &p, &r, &f));
    ASSERT_NEAR(f, 0.4);
    /* é splits a word (caf), É is lowered to é first: [caf au lait] both */
    TU_OK(lgpu_metric_rouge_l("caf\xC3\xA9 au lait", "CAF\xC3\x89 AU LAIT", &p, &r, &f));
    ASSERT_NEAR(f, 1.0);
    /* [cafe au lait] vs [caf au lait]: LCS 2 of 3 */
    TU_OK(lgpu_metric_rouge_l("cafe au lait", "caf\xC3\xA9 au lait", &p, &r, &f));
    ASSERT_NEAR(f, 2.0 / 3.0);
    /* no token on a side: 0, whatever the other side */
    TU_OK(lgpu_metric_rouge_l("\xE6\x97\xA5\xE6\x9C\xAC", "\xE6\x97\xA5\xE6\x9C\xAC", &p, &r, &f)); /* 日本 */
    ASSERT_NEAR(f, 0.0);
    TU_OK(lgpu_metric_rouge_l("", "", &p, &r, &f));
    ASSERT_NEAR(f, 0.0);
    ASSERT_NEAR(score(LGPU_METRIC_ROUGE_L, "the cat is on the mat", "the cat sat on the mat"), 5.0 / 6.0);
    TU_OK(lgpu_metric_rouge_l("a", "a", NULL, NULL, NULL));
}

static void test_score_errors(void **state) {
    double s;
    assert_int_equal(lgpu_metric_score((lgpu_metric)99, "a", "b", &s), LGPU_EINVAL);
    assert_int_equal(lgpu_metric_score(LGPU_METRIC_F1, NULL, "b", &s), LGPU_EINVAL);
    assert_int_equal(lgpu_metric_score(LGPU_METRIC_F1, "a", NULL, &s), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "f1"));
    assert_int_equal(lgpu_metric_score(LGPU_METRIC_F1, "a", "b", NULL), LGPU_EINVAL);
    assert_int_equal(lgpu_metric_check(LGPU_METRIC_CONTAINS, NULL), LGPU_EINVAL);
    TU_OK(lgpu_metric_check(LGPU_METRIC_JSON_VALID, NULL));
}

/* ---- test sets ---- */

static char tmp_dir[512];

static int setup(void **state) {
    return tu_tmpdir_create("metrics", tmp_dir, sizeof tmp_dir) ? 0 : -1;
}

static int teardown(void **state) { return tu_tmpdir_remove(tmp_dir); }

static const char *write_file(const char *name, const char *text) {
    const char *path = tu_path(tmp_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_testset_fixture(void **state) {
    char path[1024];
    snprintf(path, sizeof path, "%s", tu_source_path("tests/data/eval/compare_tests.jsonl"));
    lgpu_testset *ts = NULL;
    lgpu_testset_params p = {.path = path};
    TU_OK(lgpu_testset_create(&p, &ts));
    assert_int_equal(lgpu_testset_size(ts), 8);
    const lgpu_test_example *e = lgpu_testset_get(ts, 0);
    assert_string_equal(e->id, "once");
    assert_int_equal(e->line, 1);
    assert_string_equal(e->prompt, "Once upon a time");
    assert_int_equal(e->metric, LGPU_METRIC_CONTAINS);
    e = lgpu_testset_get(ts, 4); /* no "metric": the default */
    assert_int_equal(e->metric, LGPU_METRIC_EXACT_MATCH);
    e = lgpu_testset_get(ts, 5); /* json_valid without "expected" */
    assert_int_equal(e->metric, LGPU_METRIC_JSON_VALID);
    assert_null(e->expected);
    e = lgpu_testset_get(ts, 6);
    assert_null(e->prompt);
    assert_int_equal(e->n_messages, 2);
    assert_string_equal(e->messages[0].role, "system");
    assert_string_equal(e->messages[1].content, "Tell me a story about a dog.");
    e = lgpu_testset_get(ts, 7); /* an integer id */
    assert_string_equal(e->id, "8");
    assert_null(lgpu_testset_get(ts, 8));
    assert_int_equal(lgpu_testset_count_metric(ts, LGPU_METRIC_F1), 2);
    assert_int_equal(lgpu_testset_count_metric(ts, LGPU_METRIC_REGEX), 2);

    /* rendering with stories260K's tokenizer: no template of its own, so ChatML */
    lgpu_tokenizer *tok = NULL;
    TU_OK(lgpu_tokenizer_create(tu_model_path("stories260K.gguf"), &tok));
    char *s = NULL;
    bool special = true;
    TU_OK(lgpu_test_render_prompt(lgpu_testset_get(ts, 0), tok, NULL, &s, &special));
    assert_string_equal(s, "Once upon a time");
    assert_false(special);
    free(s);
    TU_OK(lgpu_test_render_prompt(lgpu_testset_get(ts, 6), tok, NULL, &s, &special));
    assert_string_equal(s, "<|im_start|>system\nYou tell short stories.<|im_end|>\n<|im_start|>user\nTell me a story "
                           "about a dog.<|im_end|>\n<|im_start|>assistant\n");
    assert_true(special);
    free(s);
    TU_OK(lgpu_test_render_prompt(lgpu_testset_get(ts, 6), tok, "zephyr", &s, &special));
    assert_non_null(strstr(s, "<|user|>\nTell me a story about a dog.</s>\n<|assistant|>\n"));
    free(s);
    /* perplexity text: prompt + expected; a chat with the answer as the assistant's turn */
    TU_OK(lgpu_test_render_text(lgpu_testset_get(ts, 4), tok, NULL, &s, &special));
    assert_string_equal(s, "One day, a little girl namedLily went to the park with her mom");
    free(s);
    TU_OK(lgpu_test_render_text(lgpu_testset_get(ts, 6), tok, NULL, &s, &special));
    assert_non_null(strstr(s, "<|im_start|>assistant\n(?i)\\b(dog|lily|tom)\\b<|im_end|>\n"));
    free(s);
    lgpu_tokenizer_destroy(tok);
    lgpu_testset_destroy(ts);
}

static void test_testset_perplexity_lines(void **state) {
    const char *path = write_file("ppl.jsonl", "{\"text\": \"Once upon a time.\"}\n"
                                               "{\"prompt\": \"Q: \", \"expected\": \"A\"}\n"
                                               "\n"
                                               "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"expected\": \"hello\"}\n");
    lgpu_testset *ts = NULL;
    lgpu_testset_params p = {.path = path, .perplexity = true};
    TU_OK(lgpu_testset_create(&p, &ts));
    assert_int_equal(lgpu_testset_size(ts), 3);
    assert_string_equal(lgpu_testset_get(ts, 0)->text, "Once upon a time.");
    assert_int_equal(lgpu_testset_get(ts, 2)->line, 4);
    char *s;
    bool special;
    TU_OK(lgpu_test_render_text(lgpu_testset_get(ts, 0), NULL, NULL, &s, &special));
    assert_string_equal(s, "Once upon a time.");
    free(s);
    TU_OK(lgpu_test_render_text(lgpu_testset_get(ts, 1), NULL, NULL, &s, &special));
    assert_string_equal(s, "Q: A");
    free(s);
    lgpu_testset_destroy(ts);
    /* a "text" line is no test: it has no question */
    p.perplexity = false;
    assert_int_equal(lgpu_testset_create(&p, &ts), LGPU_EFORMAT);
    assert_non_null(strstr(lgpu_last_error(), ":1: it has none of \"prompt\" or \"messages\""));
    assert_null(ts);
}

/* Each bad line as line 3 of a file whose lines 1 and 4 are good: the
 * message names file:3, the id, and the problem. */
static void test_testset_bad_line_kinds(void **state) {
    static const struct {
        const char *line, *want;
    } BAD[] = {
        {"{\"id\": \"j\", \"prompt\": }", ": invalid JSON at column"}, /* no JSON, so no id */
        {"{\"id\": \"np\", \"expected\": \"x\"}", "(id \"np\"): it has none of \"prompt\" or \"messages\""},
        {"{\"id\": \"both\", \"prompt\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"expected\": \"x\"}",
         "(id \"both\"): it has more than one of \"prompt\" or \"messages\""},
        {"{\"id\": \"m\", \"prompt\": \"a\", \"expected\": \"x\", \"metric\": \"bleu\"}",
         "(id \"m\"): unknown \"metric\" \"bleu\" (known: exact_match, contains, regex, json_valid, f1, rouge_l)"},
        {"{\"id\": \"m2\", \"prompt\": \"a\", \"expected\": \"x\", \"metric\": 3}",
         "(id \"m2\"): \"metric\" must be a string, not an integer"},
        {"{\"id\": \"re\", \"prompt\": \"a\", \"expected\": \"(ab\", \"metric\": \"regex\"}",
         "(id \"re\"): \"expected\": regex: missing closing parenthesis at offset 3 of \"(ab\""},
        {"{\"id\": \"ok1\", \"prompt\": \"again\", \"expected\": \"x\"}", "(id \"ok1\"): the id is used on line 1 already"},
        {"{\"id\": 7.5, \"prompt\": \"a\", \"expected\": \"x\"}", ": \"id\" must be a string or an integer, not a number"},
        {"{\"id\": 17, \"prompt\": \"a\"}", "(id 17): missing \"expected\" (only json_valid does without)"},
        {"{\"id\": \"ex\", \"prompt\": \"a\", \"expected\": 42}", "(id \"ex\"): \"expected\" must be a string, not an integer"},
        {"{\"id\": \"p\", \"prompt\": [\"a\"], \"expected\": \"x\"}", "(id \"p\"): \"prompt\" must be a string, not an array"},
        {"{\"id\": \"role\", \"messages\": [{\"role\": \"bot\", \"content\": \"x\"}], \"expected\": \"x\"}",
         "(id \"role\"): messages[0].role is \"bot\": it must be system, user or assistant"},
        {"{\"id\": \"last\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", "
         "\"content\": \"y\"}], \"expected\": \"x\"}",
         "(id \"last\"): the last message is from the assistant: the model answers a user message"},
        {"{\"id\": \"mc\", \"messages\": [{\"role\": \"user\"}], \"expected\": \"x\"}",
         "(id \"mc\"): messages[0].content must be a string, not missing"},
        {"{\"id\": \"me\", \"messages\": [], \"expected\": \"x\"}", "(id \"me\"): \"messages\" is empty"},
        {"{\"id\": \"ms\", \"messages\": \"hi\", \"expected\": \"x\"}", "(id \"ms\"): \"messages\" must be an array, not a string"},
        {"{\"id\": \"utf\", \"prompt\": \"caf\xC3\", \"expected\": \"x\"}", "(id \"utf\"): invalid UTF-8 at byte 29 of the line (0xC3)"},
        {"[1, 2]", ": not a JSON object but an array"},
        {"{\"id\": \"dup\", \"id\": \"dup2\", \"prompt\": \"a\", \"expected\": \"x\"}", ": invalid JSON at column"},
    };
    for (size_t k = 0; k < sizeof BAD / sizeof *BAD; k++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "{\"id\": \"ok1\", \"prompt\": \"a\", \"expected\": \"b\"}\n\n%s\n{\"id\": \"ok2\", \"prompt\": \"c\", "
                 "\"expected\": \"d\"}\n",
                 BAD[k].line);
        const char *path = write_file("bad_kind.jsonl", text);
        lgpu_testset *ts = NULL;
        lgpu_testset_params p = {.path = path};
        int rc = lgpu_testset_create(&p, &ts);
        if (rc != LGPU_EFORMAT) fail_msg("case %zu: %s, want LGPU_EFORMAT", k, lgpu_err_name(rc));
        assert_null(ts);
        char want[600];
        snprintf(want, sizeof want, "%s:3", path);
        const char *e = lgpu_last_error();
        if (strncmp(e, want, strlen(want)) || !strstr(e, BAD[k].want))
            fail_msg("case %zu: \"%s\"\n  want it to start with \"%s\" and hold \"%s\"", k, e, want, BAD[k].want);
        assert_non_null(strstr(e, "(the only bad line in"));
    }
}

/* Many bad lines: the first whole, the count, the next four. */
static void test_testset_many_bad(void **state) {
    char text[4096] = "";
    size_t len = 0;
    for (int i = 1; i <= 9; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "{\"id\": \"b%d\", \"prompt\": \"x\"}\n", i);
    const char *path = write_file("many.jsonl", text);
    lgpu_testset *ts = NULL;
    lgpu_testset_params p = {.path = path};
    assert_int_equal(lgpu_testset_create(&p, &ts), LGPU_EFORMAT);
    const char *e = lgpu_last_error();
    char want[600];
    snprintf(want, sizeof want, "%s:1 (id \"b1\"): missing \"expected\"", path);
    assert_non_null(strstr(e, want));
    snprintf(want, sizeof want, "and 8 more bad lines in %s; the next ones:", path);
    assert_non_null(strstr(e, want));
    snprintf(want, sizeof want, "\n  %s:5 (id \"b5\"): missing", path);
    assert_non_null(strstr(e, want));
    assert_null(strstr(e, "(id \"b6\")"));
}

static void test_testset_files(void **state) {
    lgpu_testset *ts = NULL;
    lgpu_testset_params p = {.path = tu_path(tmp_dir, "absent.jsonl")};
    assert_int_equal(lgpu_testset_create(&p, &ts), LGPU_ENOTFOUND);
    assert_non_null(strstr(lgpu_last_error(), "absent.jsonl"));
    p.path = write_file("blank.jsonl", "\n  \n");
    assert_int_equal(lgpu_testset_create(&p, &ts), LGPU_EFORMAT);
    assert_non_null(strstr(lgpu_last_error(), "no examples (2 lines, all blank)"));
    p.metric = (lgpu_metric)42;
    assert_int_equal(lgpu_testset_create(&p, &ts), LGPU_EINVAL);
    assert_int_equal(lgpu_testset_create(NULL, &ts), LGPU_EINVAL);
    /* a default metric applies to lines without one; CRLF and a BOM are fine */
    p.metric = LGPU_METRIC_F1;
    p.path = write_file("crlf.jsonl", "\xEF\xBB\xBF{\"prompt\": \"a\", \"expected\": \"b\"}\r\n");
    TU_OK(lgpu_testset_create(&p, &ts));
    assert_int_equal(lgpu_testset_get(ts, 0)->metric, LGPU_METRIC_F1);
    assert_null(lgpu_testset_get(ts, 0)->id);
    lgpu_testset_destroy(ts);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_exact_match),
        cmocka_unit_test(test_contains),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_json_valid),
        cmocka_unit_test(test_squad_normalize),
        cmocka_unit_test(test_f1),
        cmocka_unit_test(test_rouge_l),
        cmocka_unit_test(test_score_errors),
        cmocka_unit_test(test_testset_fixture),
        cmocka_unit_test(test_testset_perplexity_lines),
        cmocka_unit_test(test_testset_bad_line_kinds),
        cmocka_unit_test(test_testset_many_bad),
        cmocka_unit_test(test_testset_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
