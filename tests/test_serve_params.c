/* lgpu-serve request validation: sampling fields, prompts and chat messages
 * (with the stories260K tokenizer), lossy UTF-8 text for JSON. Every
 * rejection must be a 400 naming the field in `param`. */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

#include "json_text.h"
#include "params.h"
#include "prompt.h"

static const srv_limits LIM = {.n_ctx = 64, .n_vocab = 512, .max_choices = 16};

static json_t *J(const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j) print_error("bad test JSON %s: %s\n", text, e.text);
    assert_non_null(j);
    return j;
}

static void test_sampling_ok(void **state) {
    (void)state;
    json_t *b = J("{\"max_tokens\":10,\"temperature\":0.5,\"top_p\":0.9,\"top_k\":5,\"min_p\":0.1,\"typical_p\":0.8,"
                  "\"repeat_penalty\":1.1,\"presence_penalty\":-1,\"frequency_penalty\":2,\"seed\":42,\"n\":3,"
                  "\"stop\":[\"a\",\"bc\"],\"logprobs\":true,\"top_logprobs\":4,\"user\":\"ignored\"}");
    srv_gen_params gp;
    int n;
    srv_err err;
    assert_int_equal(srv_params_parse(b, SRV_API_CHAT, &LIM, &gp, &n, &err), 0);
    assert_int_equal(gp.max_tokens, 10);
    assert_float_equal(gp.sampling.temperature, 0.5, 1e-6);
    assert_float_equal(gp.sampling.top_p, 0.9, 1e-6);
    assert_int_equal(gp.sampling.top_k, 5);
    assert_float_equal(gp.sampling.min_p, 0.1, 1e-6);
    assert_float_equal(gp.sampling.typical_p, 0.8, 1e-6);
    assert_float_equal(gp.sampling.repeat_penalty, 1.1, 1e-6);
    assert_float_equal(gp.sampling.presence_penalty, -1, 0);
    assert_float_equal(gp.sampling.frequency_penalty, 2, 0);
    assert_int_equal(gp.sampling.seed, 42);
    assert_true(gp.seed_given);
    assert_int_equal(n, 3);
    assert_int_equal(gp.n_stops, 2);
    assert_string_equal(gp.stops[1], "bc");
    assert_int_equal(gp.logprobs, 4);
    srv_gen_params_free(&gp);
    json_decref(b);

    /* defaults: completions 16 tokens, chat the whole context; stop as a string;
     * max_completion_tokens wins over max_tokens; completions logprobs is an int */
    b = J("{\"stop\":\"END\",\"seed\":null}");
    assert_int_equal(srv_params_parse(b, SRV_API_COMPLETIONS, &LIM, &gp, &n, &err), 0);
    assert_int_equal(gp.max_tokens, 16);
    assert_int_equal(gp.n_stops, 1);
    assert_false(gp.seed_given);
    assert_int_equal(gp.logprobs, -1);
    srv_gen_params_free(&gp);
    assert_int_equal(srv_params_parse(b, SRV_API_CHAT, &LIM, &gp, &n, &err), 0);
    assert_int_equal(gp.max_tokens, LIM.n_ctx);
    srv_gen_params_free(&gp);
    json_decref(b);
    b = J("{\"max_tokens\":5,\"max_completion_tokens\":7,\"logprobs\":2}");
    assert_int_equal(srv_params_parse(b, SRV_API_COMPLETIONS, &LIM, &gp, &n, &err), 0);
    assert_int_equal(gp.max_tokens, 7);
    assert_int_equal(gp.logprobs, 2);
    srv_gen_params_free(&gp);
    json_decref(b);
}

static void expect_bad(srv_api api, const char *body, const char *param) {
    json_t *b = J(body);
    srv_gen_params gp;
    int n;
    srv_err err = {0};
    int st = srv_params_parse(b, api, &LIM, &gp, &n, &err);
    json_decref(b);
    if (st == 0) {
        srv_gen_params_free(&gp);
        print_error("accepted: %s\n", body);
        fail();
    }
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, "invalid_request_error");
    if (strcmp(err.param, param)) {
        print_error("%s: param '%s', want '%s' (%s)\n", body, err.param, param, err.message);
        fail();
    }
}

static void test_sampling_bad(void **state) {
    (void)state;
    expect_bad(SRV_API_CHAT, "{\"max_tokens\":-1}", "max_tokens");
    expect_bad(SRV_API_CHAT, "{\"max_tokens\":0}", "max_tokens");
    expect_bad(SRV_API_CHAT, "{\"max_tokens\":100000000000}", "max_tokens");
    expect_bad(SRV_API_CHAT, "{\"max_tokens\":65}", "max_tokens"); /* > n_ctx */
    expect_bad(SRV_API_CHAT, "{\"max_tokens\":\"5\"}", "max_tokens");
    expect_bad(SRV_API_CHAT, "{\"max_tokens\":2.5}", "max_tokens");
    expect_bad(SRV_API_CHAT, "{\"max_completion_tokens\":-3}", "max_completion_tokens");
    expect_bad(SRV_API_CHAT, "{\"temperature\":2.5}", "temperature");
    expect_bad(SRV_API_CHAT, "{\"temperature\":-0.1}", "temperature");
    expect_bad(SRV_API_CHAT, "{\"temperature\":\"hot\"}", "temperature");
    expect_bad(SRV_API_CHAT, "{\"top_p\":1.5}", "top_p");
    expect_bad(SRV_API_CHAT, "{\"top_k\":-1}", "top_k");
    expect_bad(SRV_API_CHAT, "{\"min_p\":2}", "min_p");
    expect_bad(SRV_API_CHAT, "{\"typical_p\":0}", "typical_p");
    expect_bad(SRV_API_CHAT, "{\"repeat_penalty\":0}", "repeat_penalty");
    expect_bad(SRV_API_CHAT, "{\"presence_penalty\":3}", "presence_penalty");
    expect_bad(SRV_API_CHAT, "{\"frequency_penalty\":-2.1}", "frequency_penalty");
    expect_bad(SRV_API_CHAT, "{\"n\":17}", "n");
    expect_bad(SRV_API_CHAT, "{\"n\":0}", "n");
    expect_bad(SRV_API_CHAT, "{\"seed\":1.5}", "seed");
    expect_bad(SRV_API_CHAT, "{\"stop\":5}", "stop");
    expect_bad(SRV_API_CHAT, "{\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop");
    expect_bad(SRV_API_CHAT, "{\"stop\":[\"a\",7]}", "stop[1]");
    expect_bad(SRV_API_CHAT, "{\"logprobs\":1}", "logprobs");
    expect_bad(SRV_API_CHAT, "{\"top_logprobs\":3}", "top_logprobs");
    expect_bad(SRV_API_CHAT, "{\"logprobs\":true,\"top_logprobs\":21}", "top_logprobs");
    expect_bad(SRV_API_COMPLETIONS, "{\"logprobs\":6}", "logprobs");
    expect_bad(SRV_API_COMPLETIONS, "{\"logprobs\":true}", "logprobs");
    expect_bad(SRV_API_CHAT, "{\"logit_bias\":{\"5\":1}}", "logit_bias");
    expect_bad(SRV_API_CHAT, "{\"tools\":[{\"type\":\"function\"}]}", "tools");
    expect_bad(SRV_API_CHAT, "{\"response_format\":{\"type\":\"json_object\"}}", "response_format");
    expect_bad(SRV_API_COMPLETIONS, "{\"n\":2,\"best_of\":3}", "best_of");
    expect_bad(SRV_API_CHAT, "{\"ignore_eos\":\"yes\"}", "ignore_eos");
}

static lgpu_tokenizer *tok;

static int setup_tok(void **state) {
    (void)state;
    return lgpu_tokenizer_create(tu_model_path("stories260K.gguf"), &tok) ? -1 : 0;
}

static int teardown_tok(void **state) {
    (void)state;
    lgpu_tokenizer_destroy(tok);
    return 0;
}

static void expect_chat_bad(const char *body, const char *param) {
    json_t *b = J(body);
    srv_prompt p;
    srv_err err = {0};
    int st = srv_prompt_chat(b, tok, LGPU_CHAT_CHATML, &LIM, NULL, &p, &err);
    json_decref(b);
    if (st == 0) {
        free(p.ids);
        print_error("accepted: %s\n", body);
        fail();
    }
    assert_int_equal(err.status, 400);
    if (strcmp(err.param, param)) {
        print_error("%s: param '%s', want '%s' (%s)\n", body, err.param, param, err.message);
        fail();
    }
}

static void test_chat_messages(void **state) {
    (void)state;
    json_t *b = J("{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                  "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"},{\"type\":\"text\",\"text\":\"there\"}]},"
                  "{\"role\":\"assistant\",\"content\":null},{\"role\":\"developer\",\"content\":\"x\"}]}");
    srv_prompt p;
    srv_err err;
    srv_limits big = LIM;
    big.n_ctx = 4096;
    srv_gen_params gp = {.n_stops = 1};
    gp.stops[0] = strdup("END");
    TU_OK(srv_prompt_chat(b, tok, LGPU_CHAT_CHATML, &big, &gp, &p, &err));
    assert_true(p.n > 10);
    /* ChatML's end-of-turn markers join the request's stop strings */
    assert_int_equal(gp.n_stops, 3);
    assert_string_equal(gp.stops[0], "END");
    assert_string_equal(gp.stops[1], "<|im_end|>");
    assert_string_equal(gp.stops[2], "<|im_start|>");
    srv_gen_params_free(&gp);
    /* the ChatML rendering, tokenized with control tokens parsed */
    char *text;
    size_t len;
    TU_OK(lgpu_tokenizer_decode(tok, p.ids, (size_t)p.n, true, &text, &len));
    assert_non_null(strstr(text, "Be brief."));
    assert_non_null(strstr(text, "Hi\nthere"));
    free(text);
    free(p.ids);
    json_decref(b);

    expect_chat_bad("{}", "messages");
    expect_chat_bad("{\"messages\":\"hi\"}", "messages");
    expect_chat_bad("{\"messages\":[]}", "messages");
    expect_chat_bad("{\"messages\":[5]}", "messages[0]");
    expect_chat_bad("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"wizard\",\"content\":\"b\"}]}",
                    "messages[1].role");
    expect_chat_bad("{\"messages\":[{\"role\":7,\"content\":\"a\"}]}", "messages[0].role");
    expect_chat_bad("{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content");
    expect_chat_bad("{\"messages\":[{\"role\":\"user\",\"content\":42}]}", "messages[0].content");
    expect_chat_bad("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
                    "messages[0].content[0]");
    /* longer than the 64-token context */
    char longmsg[2048];
    strcpy(longmsg, "{\"messages\":[{\"role\":\"user\",\"content\":\"");
    for (int i = 0; i < 100; i++) strcat(longmsg, "word ");
    strcat(longmsg, "\"}]}");
    b = J(longmsg);
    assert_int_not_equal(srv_prompt_chat(b, tok, LGPU_CHAT_CHATML, &LIM, NULL, &p, &err), 0);
    assert_string_equal(err.code, "context_length_exceeded");
    json_decref(b);
}

static void test_completion_prompts(void **state) {
    (void)state;
    srv_prompt *p;
    int n;
    srv_err err;
    json_t *b = J("{\"prompt\":\"Once upon a time\"}");
    TU_OK(srv_prompt_completion(b, "prompt", tok, &LIM, &p, &n, &err));
    assert_int_equal(n, 1);
    assert_int_equal(p[0].ids[0], lgpu_tokenizer_bos(tok)); /* BOS as the tokenizer wants */
    srv_prompts_free(p, n);
    free(p);
    json_decref(b);

    b = J("{\"prompt\":[\"a\",\"b c\"]}");
    TU_OK(srv_prompt_completion(b, "prompt", tok, &LIM, &p, &n, &err));
    assert_int_equal(n, 2);
    srv_prompts_free(p, n);
    free(p);
    json_decref(b);

    b = J("{\"prompt\":[1,400,401]}");
    TU_OK(srv_prompt_completion(b, "prompt", tok, &LIM, &p, &n, &err));
    assert_int_equal(n, 1);
    assert_int_equal(p[0].n, 3);
    assert_int_equal(p[0].ids[1], 400);
    srv_prompts_free(p, n);
    free(p);
    json_decref(b);

    b = J("{\"prompt\":[[1,2],[3]]}");
    TU_OK(srv_prompt_completion(b, "prompt", tok, &LIM, &p, &n, &err));
    assert_int_equal(n, 2);
    assert_int_equal(p[1].n, 1);
    srv_prompts_free(p, n);
    free(p);
    json_decref(b);

    const char *bad[][2] = {{"{}", "prompt"},
                            {"{\"prompt\":5}", "prompt"},
                            {"{\"prompt\":[]}", "prompt"},
                            {"{\"prompt\":[1,512]}", "prompt"},
                            {"{\"prompt\":[1,-1]}", "prompt"},
                            {"{\"prompt\":[\"ok\",{}]}", "prompt[1]"},
                            {"{\"prompt\":[[1],[99999]]}", "prompt[1]"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = J(bad[i][0]);
        int st = srv_prompt_completion(b, "prompt", tok, &LIM, &p, &n, &err);
        json_decref(b);
        assert_int_not_equal(st, 0);
        assert_int_equal(err.status, 400);
        if (strcmp(err.param, bad[i][1])) {
            print_error("%s: param '%s', want '%s'\n", bad[i][0], err.param, bad[i][1]);
            fail();
        }
    }
}

static void test_json_text(void **state) {
    (void)state;
    /* valid UTF-8 passes through; a lone continuation byte, a truncated
     * sequence, an overlong form and a surrogate each become U+FFFD */
    json_t *s = srv_json_text("h\xC3\xA9llo", 6);
    assert_string_equal(json_string_value(s), "h\xC3\xA9llo");
    json_decref(s);
    s = srv_json_text("a\x80" "b\xE2\x82" "c\xC0\xAF\xED\xA0\x80", 11);
    assert_non_null(s);
    assert_string_equal(json_string_value(s), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD" "c"
                                              "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    json_decref(s);
    /* token pieces: byte tokens give their raw byte */
    size_t len;
    char *piece = srv_token_piece(tok, 3 + 0x41, &len); /* <0x41> */
    assert_int_equal(len, 1);
    assert_int_equal(piece[0], 'A');
    free(piece);
}

static void test_json_depth(void **state) {
    (void)state;
    assert_int_equal(srv_json_depth("{}", 2), 1);
    assert_int_equal(srv_json_depth("{\"a\":[[1],{\"b\":[]}]}", 20), 4);
    /* brackets inside strings, escaped quotes included, do not count */
    const char *s = "{\"a\":\"[[[\\\"[[\"}";
    assert_int_equal(srv_json_depth(s, strlen(s)), 1);
    assert_int_equal(srv_json_depth("]]]]", 4), 0);
}

static void test_err_json(void **state) {
    (void)state;
    srv_err e;
    srv_err_invalid(&e, "messages[0].role", "bad role");
    json_t *j = srv_err_json(&e), *o = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(o, "message")), "bad role");
    assert_string_equal(json_string_value(json_object_get(o, "type")), "invalid_request_error");
    assert_string_equal(json_string_value(json_object_get(o, "param")), "messages[0].role");
    assert_true(json_is_null(json_object_get(o, "code")));
    json_decref(j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sampling_ok),
        cmocka_unit_test(test_sampling_bad),
        cmocka_unit_test(test_err_json),
        cmocka_unit_test(test_json_depth),
        cmocka_unit_test_setup_teardown(test_chat_messages, setup_tok, teardown_tok),
        cmocka_unit_test_setup_teardown(test_completion_prompts, setup_tok, teardown_tok),
        cmocka_unit_test_setup_teardown(test_json_text, setup_tok, teardown_tok),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
