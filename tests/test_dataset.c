/* Training data: JSONL datasets (lgpu/dataset.h) and micro-batches
 * (engine/train/batch.h).
 *
 * Rendering: each format's tokens are compared with the tokenization of the
 * hand-written text the example must render to, and the loss mask with the
 * text its counted tokens spell. Tokenizers: stories260K's (SentencePiece,
 * BOS added, no chat template: the ChatML default, markers as plain text)
 * and tests/data/tok_tiny, a byte-level BPE of 256 bytes, 7 merges and the
 * ChatML and LLaMA-3 control tokens, with two tokenizer_config.json files:
 * chatml_config.json (no BOS, eos <|im_end|>, ChatML template) and
 * llama3_config.json (BOS <|begin_of_text|>, LLaMA-3 template).
 *
 * tests/data/jsonl (its README lists every line): the good_*.jsonl files
 * render as their lines say, and bad_lines.jsonl gives each kind of bad line
 * with its file:line and id; more kinds are written by the test itself. */
#include "test_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lgpu/dataset.h"
#include "lgpu/tokenizer.h"
#include "train/batch.h"
#include "train/rng.h"

static lgpu_tokenizer *stories, *tiny_chatml, *tiny_llama3;
static char tmpdir[512];

static int setup(void **state) {
    (void)state;
    if (lgpu_tokenizer_create(tu_model_path("stories260K.gguf"), &stories)) return -1;
    char json[600], cfg[600];
    snprintf(json, sizeof json, "%s", tu_source_path("tests/data/tok_tiny/tokenizer.json"));
    snprintf(cfg, sizeof cfg, "%s", tu_source_path("tests/data/tok_tiny/chatml_config.json"));
    if (lgpu_tokenizer_from_hf(json, cfg, &tiny_chatml)) return -1;
    snprintf(cfg, sizeof cfg, "%s", tu_source_path("tests/data/tok_tiny/llama3_config.json"));
    if (lgpu_tokenizer_from_hf(json, cfg, &tiny_llama3)) return -1;
    return tu_tmpdir_create("dataset", tmpdir, sizeof tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    lgpu_tokenizer_destroy(stories);
    lgpu_tokenizer_destroy(tiny_chatml);
    lgpu_tokenizer_destroy(tiny_llama3);
    return tu_tmpdir_remove(tmpdir);
}

/* Writes `text` to <tmpdir>/<name>; returns the path (static per name slot). */
static const char *write_file(const char *name, const char *text) {
    const char *path = tu_path(tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
    return path;
}

static lgpu_dataset *load(const lgpu_tokenizer *tok, const char *path, lgpu_dataset_params p) {
    p.path = path;
    lgpu_dataset *ds = NULL;
    TU_OK(lgpu_dataset_create(tok, &p, &ds));
    return ds;
}

/* The pieces of the tokens (all of them, or those with mask 1), as text. */
static char *spell(const lgpu_tokenizer *tok, const int32_t *ids, const uint8_t *mask, uint32_t n, bool counted) {
    size_t cap = 64, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    for (uint32_t j = 0; j < n; j++) {
        if (counted && !mask[j]) continue;
        char piece[256];
        size_t pn;
        TU_OK(lgpu_tokenizer_piece(tok, ids[j], true, piece, sizeof piece, &pn));
        while (len + pn + 1 > cap) s = realloc(s, cap *= 2);
        memcpy(s + len, piece, pn);
        len += pn;
    }
    s[len] = 0;
    return s;
}

/* Example i must be exactly: BOS when `bos`, the tokens of `text`
 * (control-token text parsed when `special`), EOS when `eos`; and its
 * counted tokens must spell `counted`. */
static void expect_example(const lgpu_tokenizer *tok, const lgpu_dataset *ds, size_t i, bool bos, const char *text,
                           bool special, bool eos, const char *counted) {
    const int32_t *ids;
    const uint8_t *mask;
    uint32_t n;
    TU_OK(lgpu_dataset_example(ds, i, &ids, &mask, &n, NULL));
    lgpu_tokens want = {0};
    if (bos) {
        TU_OK(lgpu_tokenizer_encode(tok, "", 0, true, false, &want)); /* just BOS */
        assert_int_equal(want.n, 1);
    }
    TU_OK(lgpu_tokenizer_encode(tok, text, (size_t)-1, false, special, &want));
    if (eos) {
        want.ids = realloc(want.ids, (want.n + 1) * sizeof *want.ids);
        want.ids[want.n++] = lgpu_tokenizer_eos(tok);
    }
    if (n != want.n || memcmp(ids, want.ids, n * sizeof *ids)) {
        char *got = spell(tok, ids, mask, n, false), *exp = spell(tok, want.ids, NULL, (uint32_t)want.n, false);
        fail_msg("example %zu: %u tokens \"%s\", want %zu \"%s\"", i, n, got, want.n, exp);
    }
    lgpu_tokens_destroy(&want);
    char *c = spell(tok, ids, mask, n, true);
    if (strcmp(c, counted)) fail_msg("example %zu counts \"%s\", want \"%s\"", i, c, counted);
    free(c);
}

/* ---- rendering -------------------------------------------------------- */

/* Stanford Alpaca's PROMPT_DICT, as printf formats (instruction, input). */
static const char ALPACA_INPUT_FMT[] =
    "Below is an instruction that describes a task, paired with an input that provides further context. Write a "
    "response that appropriately completes the request.\n\n### Instruction:\n%s\n\n### Input:\n%s\n\n### "
    "Response:";
static const char ALPACA_NO_INPUT_FMT[] =
    "Below is an instruction that describes a task. Write a response that appropriately completes the "
    "request.\n\n### Instruction:\n%s\n\n### Response:";
static void test_alpaca(void **state) {
    (void)state;
    char with_input[512], no_input[512];
    snprintf(with_input, sizeof with_input, ALPACA_INPUT_FMT, "Tell a story about the animal below.", "a cat named Tom");
    snprintf(no_input, sizeof no_input, ALPACA_NO_INPUT_FMT, "Tell me a story.");
    const char *path = write_file(
        "alpaca.jsonl",
        "{\"id\": \"a-1\", \"instruction\": \"Tell a story about the animal below.\", \"input\": \"a cat named Tom\", "
        "\"output\": \"Once upon a time, Tom sat.\"}\n"
        "\n"
        "{\"instruction\": \"Tell me a story.\", \"output\": \"Once upon a time.\"}\n"
        "{\"id\": 17, \"instruction\": \"Tell me a story.\", \"input\": null, \"output\": \"Once upon a time.\"}\n");
    lgpu_dataset *ds = load(stories, path, lgpu_dataset_params_default());
    assert_int_equal(lgpu_dataset_format_of(ds), LGPU_DATASET_ALPACA);
    assert_int_equal(lgpu_dataset_size(ds), 3);
    char text[1024];
    snprintf(text, sizeof text, "%sOnce upon a time, Tom sat.", with_input);
    expect_example(stories, ds, 0, true, text, false, true, "Once upon a time, Tom sat.</s>");
    snprintf(text, sizeof text, "%sOnce upon a time.", no_input);
    expect_example(stories, ds, 1, true, text, false, true, "Once upon a time.</s>");
    expect_example(stories, ds, 2, true, text, false, true, "Once upon a time.</s>");
    const char *id;
    TU_OK(lgpu_dataset_example(ds, 0, NULL, NULL, NULL, &id));
    assert_string_equal(id, "a-1");
    TU_OK(lgpu_dataset_example(ds, 1, NULL, NULL, NULL, &id));
    assert_null(id);
    TU_OK(lgpu_dataset_example(ds, 2, NULL, NULL, NULL, &id));
    assert_string_equal(id, "17");
    assert_int_equal(lgpu_dataset_example_line(ds, 0), 1);
    assert_int_equal(lgpu_dataset_example_line(ds, 1), 3); /* the blank line is not an example */
    assert_int_equal(lgpu_dataset_example(ds, 3, NULL, NULL, NULL, NULL), LGPU_ERANGE);
    assert_int_equal(lgpu_dataset_n_skipped(ds), 0);
    assert_int_equal(lgpu_dataset_n_truncated(ds), 0);
    lgpu_dataset_destroy(ds);
}

static void test_alpaca_custom_template(void **state) {
    (void)state;
    const char *path = write_file("alpaca_t.jsonl",
                                  "{\"instruction\": \"Sing\", \"input\": \"la\", \"output\": \"Do re mi\"}\n"
                                  "{\"instruction\": \"Hum\", \"output\": \"Mmm\"}\n");
    lgpu_dataset_params p = lgpu_dataset_params_default();
    p.prompt_template = "Q: {instruction} ({input}) {{x}}\nA: ";
    p.prompt_template_no_input = "Q: {instruction}\nA: ";
    lgpu_dataset *ds = load(stories, path, p);
    expect_example(stories, ds, 0, true, "Q: Sing (la) {x}\nA: Do re mi", false, true, "Do re mi</s>");
    /* the prompt's last space merges with the answer's M: " M" counts */
    expect_example(stories, ds, 1, true, "Q: Hum\nA: Mmm", false, true, " Mmm</s>");
    lgpu_dataset_destroy(ds);
    /* one template for both: {input} is empty without an input */
    p.prompt_template_no_input = NULL;
    ds = load(stories, path, p);
    expect_example(stories, ds, 1, true, "Q: Hum () {x}\nA: Mmm", false, true, " Mmm</s>");
    lgpu_dataset_destroy(ds);
    /* a placeholder other than {instruction} / {input}, a lone brace */
    lgpu_dataset *bad = NULL;
    p.path = path;
    p.prompt_template = "{question}: ";
    assert_int_equal(lgpu_dataset_create(stories, &p, &bad), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "unknown placeholder {question}"));
    p.prompt_template = "a } b";
    assert_int_equal(lgpu_dataset_create(stories, &p, &bad), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "single '}'"));
    assert_null(bad);
}

static void test_prompt_completion(void **state) {
    (void)state;
    const char *path = write_file("pc.jsonl", "{\"prompt\": \"Tell me a story.\\n\", \"completion\": \"Once upon a "
                                              "time.\"}\n{\"prompt\": \"\", \"completion\": \"The end.\"}\n");
    lgpu_dataset *ds = load(stories, path, lgpu_dataset_params_default());
    assert_int_equal(lgpu_dataset_format_of(ds), LGPU_DATASET_PROMPT_COMPLETION);
    expect_example(stories, ds, 0, true, "Tell me a story.\nOnce upon a time.", false, true, "Once upon a time.</s>");
    /* an empty prompt: plain text, the first token with its dummy-prefix space */
    expect_example(stories, ds, 1, true, "The end.", false, true, " The end.</s>");
    lgpu_dataset_destroy(ds);
}

static void test_text(void **state) {
    (void)state;
    const char *path = write_file("text.jsonl", "{\"text\": \"Once upon a time, a cat sat.\", \"source\": \"x\"}\n");
    lgpu_dataset *ds = load(stories, path, lgpu_dataset_params_default());
    assert_int_equal(lgpu_dataset_format_of(ds), LGPU_DATASET_TEXT);
    expect_example(stories, ds, 0, true, "Once upon a time, a cat sat.", false, true,
                   " Once upon a time, a cat sat.</s>");
    const uint8_t *mask;
    uint32_t n;
    TU_OK(lgpu_dataset_example(ds, 0, NULL, &mask, &n, NULL));
    assert_int_equal(mask[0], 0); /* BOS is never a target */
    assert_int_equal(lgpu_dataset_n_counted(ds), n - 1);
    assert_int_equal(lgpu_dataset_n_tokens(ds), n);
    assert_int_equal(lgpu_dataset_max_example_tokens(ds), n);
    lgpu_dataset_destroy(ds);
}

static void test_train_on_prompt(void **state) {
    (void)state;
    const char *path = write_file("top.jsonl", "{\"instruction\": \"Tell me a story.\", \"output\": \"Once upon a time.\"}\n");
    lgpu_dataset_params p = lgpu_dataset_params_default();
    p.train_on_prompt = true;
    lgpu_dataset *ds = load(stories, path, p);
    char text[1024], all[1100];
    snprintf(text, sizeof text, ALPACA_NO_INPUT_FMT, "Tell me a story.");
    strcat(text, "Once upon a time.");
    snprintf(all, sizeof all, " %s</s>", text); /* all but BOS; the first piece has the dummy-prefix space */
    expect_example(stories, ds, 0, true, text, false, true, all);
    lgpu_dataset_destroy(ds);
}

/* stories260K has no chat template: ChatML, whose markers are plain text in
 * its vocabulary; BOS is added as `lgpu chat` adds it. */
static void test_chat_default_template(void **state) {
    (void)state;
    const char *path = write_file(
        "chat.jsonl",
        "{\"id\": \"c-1\", \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
        "\"content\": \"A story?\"}, {\"role\": \"assistant\", \"content\": \"Once upon a time.\"}, {\"role\": "
        "\"user\", \"content\": \"More!\"}, {\"role\": \"assistant\", \"content\": \"The end.\"}]}\n");
    lgpu_dataset *ds = load(stories, path, lgpu_dataset_params_default());
    assert_int_equal(lgpu_dataset_format_of(ds), LGPU_DATASET_CHAT);
    expect_example(stories, ds, 0, true,
                   "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nA story?<|im_end|>\n"
                   "<|im_start|>assistant\nOnce upon a time.<|im_end|>\n<|im_start|>user\nMore!<|im_end|>\n"
                   "<|im_start|>assistant\nThe end.<|im_end|>\n",
                   true, false, "Once upon a time.<|im_end|>The end.<|im_end|>");
    lgpu_dataset_destroy(ds);
    /* a named template overrides the tokenizer's: LLaMA-2's " answer </s>" */
    lgpu_dataset_params p = lgpu_dataset_params_default();
    p.chat_template = "llama2";
    path = write_file("chat2.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": "
                                     "\"assistant\", \"content\": \"Hello\"}]}\n");
    ds = load(stories, path, p);
    expect_example(stories, ds, 0, false, "<s>[INST] Hi [/INST] Hello </s>", true, false, " Hello </s>");
    lgpu_dataset_destroy(ds);
}

static void test_chat_chatml_tokenizer(void **state) {
    (void)state;
    assert_int_equal(lgpu_tokenizer_add_bos(tiny_chatml), false);
    const char *path = write_file(
        "chat_ml.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"the cat\"}, {\"role\": \"assistant\", "
                         "\"content\": \"is here\"}, {\"role\": \"user\", \"content\": \"and?\"}, {\"role\": "
                         "\"assistant\", \"content\": \"the end\"}]}\n");
    lgpu_dataset *ds = load(tiny_chatml, path, lgpu_dataset_params_default());
    expect_example(tiny_chatml, ds, 0, false,
                   "<|im_start|>user\nthe cat<|im_end|>\n<|im_start|>assistant\nis here<|im_end|>\n"
                   "<|im_start|>user\nand?<|im_end|>\n<|im_start|>assistant\nthe end<|im_end|>\n",
                   true, false, "is here<|im_end|>the end<|im_end|>");
    /* <|im_end|> is one control token, counted; the newline after it is not */
    const int32_t *ids;
    const uint8_t *mask;
    uint32_t n;
    TU_OK(lgpu_dataset_example(ds, 0, &ids, &mask, &n, NULL));
    int32_t im_end = lgpu_tokenizer_find(tiny_chatml, "<|im_end|>");
    assert_true(im_end >= 0);
    assert_int_equal(ids[n - 2], im_end);
    assert_int_equal(mask[n - 2], 1);
    assert_int_equal(mask[n - 1], 0);
    lgpu_dataset_destroy(ds);
}

static void test_chat_llama3_tokenizer(void **state) {
    (void)state;
    const char *path = write_file(
        "chat_l3.jsonl", "{\"messages\": [{\"role\": \"system\", \"content\": \"be kind\"}, {\"role\": \"user\", "
                         "\"content\": \"the cat\"}, {\"role\": \"assistant\", \"content\": \" is here \"}]}\n");
    lgpu_dataset *ds = load(tiny_llama3, path, lgpu_dataset_params_default());
    /* the template writes BOS: one BOS, not two; content is trimmed */
    expect_example(tiny_llama3, ds, 0, false,
                   "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nbe kind<|eot_id|>"
                   "<|start_header_id|>user<|end_header_id|>\n\nthe cat<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\nis here<|eot_id|>",
                   true, false, "is here<|eot_id|>");
    const int32_t *ids;
    TU_OK(lgpu_dataset_example(ds, 0, &ids, NULL, NULL, NULL));
    assert_int_equal(ids[0], lgpu_tokenizer_bos(tiny_llama3));
    assert_int_not_equal(ids[1], lgpu_tokenizer_bos(tiny_llama3));
    lgpu_dataset_destroy(ds);
    /* train_on_prompt: every token but BOS */
    lgpu_dataset_params p = lgpu_dataset_params_default();
    p.train_on_prompt = true;
    ds = load(tiny_llama3, path, p);
    const uint8_t *mask;
    uint32_t n;
    TU_OK(lgpu_dataset_example(ds, 0, NULL, &mask, &n, NULL));
    assert_int_equal(mask[0], 0);
    for (uint32_t j = 1; j < n; j++) assert_int_equal(mask[j], 1);
    lgpu_dataset_destroy(ds);
}

/* ---- bad lines -------------------------------------------------------- */

static const char GOOD_ALPACA[] = "{\"instruction\": \"Tell me a story.\", \"output\": \"Once upon a time.\"}";
static const char GOOD_CHAT[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": "
                                "\"assistant\", \"content\": \"Hello\"}]}";
static const char GOOD_PC[] = "{\"prompt\": \"Hi\", \"completion\": \"Hello\"}";
static const char GOOD_TEXT[] = "{\"text\": \"Hello\"}";

/* Each bad line goes on line 3 of a file whose line 1 is a good line of the
 * file's format and line 2 is blank; the creation error must begin with
 * "<path>:3<want>" (a want ending in "\n" is the whole message). */
static const struct {
    const char *first, *bad, *want;
} BAD[] = {
    {GOOD_ALPACA, "{\"id\": \"j-1\", \"instruction\": \"x\", \"output\": \"y\"", ": invalid JSON at column "},
    {GOOD_ALPACA, "[\"x\", \"y\"]", ": not a JSON object but an array"},
    {GOOD_ALPACA, "\"just text\"", ": not a JSON object but a string"},
    {GOOD_ALPACA, "{\"id\": \"k-1\", \"question\": \"q\", \"answer\": \"a\"}",
     " (id \"k-1\"): none of the known fields (\"instruction\"/\"output\", \"prompt\"/\"completion\", \"messages\", "
     "\"text\"); it has \"id\", \"question\", \"answer\""},
    {GOOD_ALPACA, "{\"id\": 7, \"instruction\": \"x\", \"output\": 42}",
     " (id 7): \"output\" must be a string, not an integer"},
    {GOOD_ALPACA, "{\"id\": \"i-1\", \"instruction\": [\"x\"], \"output\": \"y\"}",
     " (id \"i-1\"): \"instruction\" must be a string, not an array"},
    {GOOD_ALPACA, "{\"id\": \"i-2\", \"instruction\": \"x\", \"input\": 3, \"output\": \"y\"}",
     " (id \"i-2\"): \"input\" must be a string, not an integer"},
    {GOOD_ALPACA, "{\"id\": \"m-1\", \"instruction\": \"x\"}", " (id \"m-1\"): missing \"output\""},
    {GOOD_ALPACA, "{\"id\": \"e-1\", \"instruction\": \"x\", \"output\": \" \\n \"}",
     " (id \"e-1\"): \"output\" is empty"},
    {GOOD_ALPACA, "{\"id\": \"u-1\", \"instruction\": \"caf\xC3(\", \"output\": \"y\"}",
     " (id \"u-1\"): invalid UTF-8 at byte 34 of the line (0xC3)"},
    {GOOD_ALPACA, "{\"id\": \"u-2\", \"instruction\": \"\xED\xA0\x80\", \"output\": \"y\"}", /* a surrogate */
     " (id \"u-2\"): invalid UTF-8 at byte 31 of the line (0xED)"},
    {GOOD_ALPACA, "{\"id\": \"d-1\", \"instruction\": \"x\", \"output\": \"y\", \"output\": \"z\"}",
     ": invalid JSON at column "},
    {GOOD_ALPACA, GOOD_CHAT, ": a chat example, but the file is alpaca (decided by line 1)\n"},
    {GOOD_ALPACA, "{\"id\": \"r-0\", \"messages\": [{\"role\": \"robot\", \"content\": \"a\"}]}",
     " (id \"r-0\"): a chat example, but the file is alpaca (decided by line 1); and as chat: messages[0].role is "
     "\"robot\": it must be system, user or assistant\n"},
    {GOOD_CHAT, "{\"id\": \"r-1\", \"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"robot\", "
                "\"content\": \"a\"}]}",
     " (id \"r-1\"): messages[1].role is \"robot\": it must be system, user or assistant"},
    {GOOD_CHAT, "{\"id\": \"n-1\", \"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"user\", "
                "\"content\": \"again\"}]}",
     " (id \"n-1\"): the chat has no assistant message: nothing to learn from"},
    {GOOD_CHAT, "{\"id\": \"s-1\", \"messages\": \"hi\"}", " (id \"s-1\"): \"messages\" must be an array, not a string"},
    {GOOD_CHAT, "{\"id\": \"s-2\", \"messages\": []}", " (id \"s-2\"): \"messages\" is empty"},
    {GOOD_CHAT, "{\"id\": \"s-3\", \"messages\": [\"hi\"]}",
     " (id \"s-3\"): messages[0] must be an object with \"role\" and \"content\", not a string"},
    {GOOD_CHAT, "{\"id\": \"s-4\", \"messages\": [{\"role\": \"user\", \"content\": 5}]}",
     " (id \"s-4\"): messages[0].content must be a string, not an integer"},
    {GOOD_CHAT, "{\"id\": \"s-5\", \"messages\": [{\"content\": \"x\"}]}",
     " (id \"s-5\"): messages[0].role must be a string, not missing"},
    {GOOD_CHAT, "{\"id\": \"s-6\", \"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": "
                "\"assistant\", \"content\": \"\"}]}",
     " (id \"s-6\"): messages[1] (assistant) has empty content"},
    {GOOD_PC, "{\"id\": \"p-1\", \"prompt\": \"x\", \"completion\": \"\"}", " (id \"p-1\"): \"completion\" is empty"},
    {GOOD_PC, "{\"id\": \"p-2\", \"prompt\": null, \"completion\": \"y\"}",
     " (id \"p-2\"): \"prompt\" must be a string, not null"},
    {GOOD_TEXT, "{\"id\": \"t-1\", \"text\": \"\"}", " (id \"t-1\"): \"text\" is empty"},
    {GOOD_TEXT, "{\"id\": \"t-2\", \"prompt\": \"x\", \"completion\": \"y\"}",
     " (id \"t-2\"): a prompt_completion example, but the file is text (decided by line 1)"},
};

static void test_bad_line_kinds(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof BAD / sizeof *BAD; k++) {
        char text[1024], want[1024];
        snprintf(text, sizeof text, "%s\n\n%s\n%s\n", BAD[k].first, BAD[k].bad, BAD[k].first);
        const char *path = write_file("bad_kind.jsonl", text);
        lgpu_dataset_params p = lgpu_dataset_params_default();
        p.path = path;
        lgpu_dataset *ds = NULL;
        int rc = lgpu_dataset_create(stories, &p, &ds);
        if (rc != LGPU_EFORMAT) fail_msg("case %zu: %s, want LGPU_EFORMAT", k, lgpu_err_name(rc));
        assert_null(ds);
        snprintf(want, sizeof want, "%s:3%s", path, BAD[k].want);
        if (strncmp(lgpu_last_error(), want, strlen(want)))
            fail_msg("case %zu:\n got: %s\nwant: %s...", k, lgpu_last_error(), want);
        assert_non_null(strstr(lgpu_last_error(), "the only bad line in"));
        /* skipped and counted with skip_invalid, its reason kept */
        p.skip_invalid = true;
        TU_OK(lgpu_dataset_create(stories, &p, &ds));
        assert_int_equal(lgpu_dataset_size(ds), 2);
        assert_int_equal(lgpu_dataset_n_skipped(ds), 1);
        const char *reason = lgpu_dataset_skip_reason(ds, 0);
        size_t wl = strlen(want), whole = want[wl - 1] == '\n'; /* "\n": the message ends there */
        if (strncmp(reason, want, wl - whole) || (whole && strlen(reason) != wl - 1))
            fail_msg("case %zu: reason %s", k, reason);
        assert_null(lgpu_dataset_skip_reason(ds, 1));
        lgpu_dataset_destroy(ds);
    }
}

/* An explicit format: a line of another format is named as such. */
static void test_explicit_format(void **state) {
    (void)state;
    char text[512];
    snprintf(text, sizeof text, "%s\n%s\n", GOOD_TEXT, GOOD_ALPACA);
    const char *path = write_file("explicit.jsonl", text);
    lgpu_dataset_params p = lgpu_dataset_params_default();
    p.path = path;
    p.format = LGPU_DATASET_ALPACA;
    lgpu_dataset *ds = NULL;
    assert_int_equal(lgpu_dataset_create(stories, &p, &ds), LGPU_EFORMAT);
    char want[600];
    snprintf(want, sizeof want, "%s:1: a text example, but the file is alpaca (decided by the format parameter)",
             path);
    assert_int_equal(strncmp(lgpu_last_error(), want, strlen(want)), 0);
    p.format = LGPU_DATASET_TEXT;
    p.skip_invalid = true;
    TU_OK(lgpu_dataset_create(stories, &p, &ds));
    assert_int_equal(lgpu_dataset_size(ds), 1);
    assert_int_equal(lgpu_dataset_n_skipped(ds), 1);
    lgpu_dataset_destroy(ds);
    assert_string_equal(lgpu_dataset_format_name(LGPU_DATASET_PROMPT_COMPLETION), "prompt_completion");
    assert_int_equal(lgpu_dataset_format_from_name("chat"), LGPU_DATASET_CHAT);
    assert_int_equal(lgpu_dataset_format_from_name("pc"), LGPU_DATASET_PROMPT_COMPLETION);
    assert_int_equal(lgpu_dataset_format_from_name("csv"), -1);
}

/* A JSON string field of a fixture line. */
static const char *str(json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* tests/data/jsonl/good_*.jsonl: each line renders to the text its fields
 * make by hand here, and counts its response. */
static void test_fixtures_good(void **state) {
    (void)state;
    static const char *const files[] = {"good_alpaca.jsonl", "good_pc.jsonl", "good_chat.jsonl", "good_text.jsonl"};
    static const lgpu_dataset_format formats[] = {LGPU_DATASET_ALPACA, LGPU_DATASET_PROMPT_COMPLETION,
                                                  LGPU_DATASET_CHAT, LGPU_DATASET_TEXT};
    static const char *const prefixes[] = {"alpaca-", "pc-", "chat-", "text-"};
    for (size_t k = 0; k < 4; k++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", tu_source_path("tests/data/jsonl"), files[k]);
        lgpu_dataset *ds = load(stories, path, lgpu_dataset_params_default());
        assert_int_equal(lgpu_dataset_format_of(ds), formats[k]);
        assert_int_equal(lgpu_dataset_size(ds), 4);
        json_error_t err;
        json_t *lines = json_array();
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) json_array_append_new(lines, json_loads(line, 0, &err));
        free(line);
        fclose(f);
        for (size_t i = 0; i < 4; i++) {
            json_t *o = json_array_get(lines, i);
            assert_non_null(o);
            const char *id;
            TU_OK(lgpu_dataset_example(ds, i, NULL, NULL, NULL, &id));
            char want_id[32];
            snprintf(want_id, sizeof want_id, "%s%zu", prefixes[k], i + 1);
            assert_string_equal(id, want_id);
            assert_int_equal(lgpu_dataset_example_line(ds, i), i + 1);
            char text[4096], counted[2048];
            bool special = false, eos = true;
            if (formats[k] == LGPU_DATASET_ALPACA) {
                if (*str(o, "input")) snprintf(text, sizeof text, ALPACA_INPUT_FMT, str(o, "instruction"), str(o, "input"));
                else snprintf(text, sizeof text, ALPACA_NO_INPUT_FMT, str(o, "instruction"));
                strcat(text, str(o, "output"));
                snprintf(counted, sizeof counted, "%s</s>", str(o, "output"));
            } else if (formats[k] == LGPU_DATASET_PROMPT_COMPLETION) {
                snprintf(text, sizeof text, "%s%s", str(o, "prompt"), str(o, "completion"));
                snprintf(counted, sizeof counted, "%s</s>", str(o, "completion"));
            } else if (formats[k] == LGPU_DATASET_TEXT) {
                snprintf(text, sizeof text, "%s", str(o, "text"));
                snprintf(counted, sizeof counted, " %s</s>", str(o, "text")); /* the dummy-prefix space */
            } else { /* ChatML, the default template */
                special = true, eos = false;
                text[0] = counted[0] = 0;
                size_t j;
                json_t *m;
                json_array_foreach(json_object_get(o, "messages"), j, m) {
                    snprintf(text + strlen(text), sizeof text - strlen(text), "<|im_start|>%s\n%s<|im_end|>\n",
                             str(m, "role"), str(m, "content"));
                    if (!strcmp(str(m, "role"), "assistant"))
                        snprintf(counted + strlen(counted), sizeof counted - strlen(counted), "%s<|im_end|>",
                                 str(m, "content"));
                }
            }
            expect_example(stories, ds, i, true, text, special, eos, counted);
        }
        json_decref(lines);
        lgpu_dataset_destroy(ds);
    }
}

/* bad_lines.jsonl: the first bad line, the count, the next 4; then every
 * reason with skip_invalid. */
static void test_fixtures_bad(void **state) {
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s", tu_source_path("tests/data/jsonl/bad_lines.jsonl"));
    lgpu_dataset_params p = lgpu_dataset_params_default();
    p.path = path;
    lgpu_dataset *ds = NULL;
    assert_int_equal(lgpu_dataset_create(stories, &p, &ds), LGPU_EFORMAT);
    const char *e = lgpu_last_error();
    printf("%s\n", e);
    char want[800];
    snprintf(want, sizeof want, "%s:2: invalid JSON at column ", path);
    assert_int_equal(strncmp(e, want, strlen(want)), 0);
    assert_non_null(strstr(e, "and 7 more bad lines in"));
    snprintf(want, sizeof want, "\n  %s:3: not a JSON object but an array", path);
    assert_non_null(strstr(e, want));
    snprintf(want, sizeof want, "\n  %s:4 (id \"bad-04\"): none of the known fields", path);
    assert_non_null(strstr(e, want));
    snprintf(want, sizeof want, "\n  %s:5 (id \"bad-05\"): \"output\" must be a string, not an integer", path);
    assert_non_null(strstr(e, want));
    snprintf(want, sizeof want, "\n  %s:6 (id \"bad-06\"): \"output\" is empty", path);
    assert_non_null(strstr(e, want));
    assert_null(strstr(e, ":8 (id")); /* 5 lines in all */

    p.skip_invalid = true;
    TU_OK(lgpu_dataset_create(stories, &p, &ds));
    assert_int_equal(lgpu_dataset_size(ds), 3);
    assert_int_equal(lgpu_dataset_n_skipped(ds), 8);
    static const char *const reasons[] = {
        ":2: invalid JSON at column ",
        ":3: not a JSON object but an array",
        ":4 (id \"bad-04\"): none of the known fields (\"instruction\"/\"output\", \"prompt\"/\"completion\", "
        "\"messages\", \"text\"); it has \"id\", \"question\", \"answer\"",
        ":5 (id \"bad-05\"): \"output\" must be a string, not an integer",
        ":6 (id \"bad-06\"): \"output\" is empty",
        ":8 (id \"bad-08\"): a chat example, but the file is alpaca (decided by line 1); and as chat: messages[1].role "
        "is \"robot\": it must be system, user or assistant",
        ":9 (id \"bad-09\"): a chat example, but the file is alpaca (decided by line 1); and as chat: the chat has no "
        "assistant message",
        ":11 (id \"bad-11\"): invalid UTF-8 at byte 61 of the line (0xC3)", /* offset 60 from 0 */
    };
    for (size_t k = 0; k < 8; k++) {
        snprintf(want, sizeof want, "%s%s", path, reasons[k]);
        const char *r = lgpu_dataset_skip_reason(ds, k);
        if (!r || strncmp(r, want, strlen(want))) fail_msg("reason %zu: %s, want %s...", k, r ? r : "(none)", want);
    }
    static const char *const ids[] = {"bad-01", "bad-07", "bad-12"};
    static const uint64_t lines[] = {1, 7, 12};
    for (size_t i = 0; i < 3; i++) {
        const char *id;
        TU_OK(lgpu_dataset_example(ds, i, NULL, NULL, NULL, &id));
        assert_string_equal(id, ids[i]);
        assert_int_equal(lgpu_dataset_example_line(ds, i), lines[i]);
    }
    lgpu_dataset_destroy(ds);
}

/* Only the first LGPU_DATASET_MAX_REASONS reasons are kept; all are counted. */
static void test_skip_many(void **state) {
    (void)state;
    char text[4096] = "";
    size_t len = 0;
    for (int i = 0; i < 20; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s\n{\"id\": %d, \"text\": 5}\n", GOOD_TEXT, i);
    lgpu_dataset_params p = lgpu_dataset_params_default();
    p.skip_invalid = true;
    lgpu_dataset *ds = load(stories, write_file("many.jsonl", text), p);
    assert_int_equal(lgpu_dataset_size(ds), 20);
    assert_int_equal(lgpu_dataset_n_skipped(ds), 20);
    assert_non_null(lgpu_dataset_skip_reason(ds, LGPU_DATASET_MAX_REASONS - 1));
    assert_null(lgpu_dataset_skip_reason(ds, LGPU_DATASET_MAX_REASONS));
    assert_non_null(strstr(lgpu_dataset_skip_reason(ds, 1), ":4 (id 1): \"text\" must be a string, not an integer"));
    lgpu_dataset_destroy(ds);
    /* nothing left: an error even with skip_invalid */
    lgpu_dataset *none = NULL;
    p.path = write_file("allbad.jsonl", "{\"text\": 1}\n[]\n");
    assert_int_equal(lgpu_dataset_create(stories, &p, &none), LGPU_EFORMAT);
    assert_non_null(strstr(lgpu_last_error(), "no examples left: 2 bad lines skipped"));
    p.path = write_file("blank.jsonl", "\n  \n");
    assert_int_equal(lgpu_dataset_create(stories, &p, &none), LGPU_EFORMAT);
    assert_non_null(strstr(lgpu_last_error(), "no examples"));
    p.path = tu_path(tmpdir, "missing.jsonl");
    assert_int_equal(lgpu_dataset_create(stories, &p, &none), LGPU_ENOTFOUND);
}

/* CRLF line ends and a byte-order mark are not part of the data. */
static void test_crlf_bom(void **state) {
    (void)state;
    const char *path = write_file("crlf.jsonl", "\xEF\xBB\xBF{\"text\": \"Hi\"}\r\n{\"text\": \"Ho\"}\r\n");
    lgpu_dataset *ds = load(stories, path, lgpu_dataset_params_default());
    assert_int_equal(lgpu_dataset_size(ds), 2);
    expect_example(stories, ds, 1, true, "Ho", false, true, " Ho</s>");
    lgpu_dataset_destroy(ds);
}

static void test_max_tokens(void **state) {
    (void)state;
    const char *path = write_file("long.jsonl",
                                  "{\"id\": \"short\", \"prompt\": \"Hi\", \"completion\": \"Ho\"}\n"
                                  "{\"id\": \"long\", \"prompt\": \"Hi\", \"completion\": \"Once upon a time, a cat "
                                  "named Tom sat on a big red mat and sang.\"}\n"
                                  "{\"id\": \"long-prompt\", \"prompt\": \"Once upon a time, a cat named Tom sat on a "
                                  "big red mat and sang.\", \"completion\": \"Ho\"}\n");
    lgpu_dataset *full = load(stories, path, lgpu_dataset_params_default());
    const int32_t *t_full;
    uint32_t n_full;
    TU_OK(lgpu_dataset_example(full, 1, &t_full, NULL, &n_full, NULL));
    lgpu_dataset_params p = lgpu_dataset_params_default();
    p.max_tokens = 8;
    lgpu_dataset *ds = load(stories, path, p);
    assert_int_equal(lgpu_dataset_size(ds), 2);
    assert_int_equal(lgpu_dataset_n_truncated(ds), 1);
    assert_int_equal(lgpu_dataset_n_dropped(ds), 1);
    assert_int_equal(lgpu_dataset_n_skipped(ds), 0);
    const int32_t *t;
    const char *id;
    uint32_t n;
    TU_OK(lgpu_dataset_example(ds, 1, &t, NULL, &n, &id));
    assert_string_equal(id, "long");
    assert_int_equal(n, 8);
    assert_memory_equal(t, t_full, 8 * sizeof *t); /* the start is kept */
    assert_true(n_full > 8);
    assert_int_equal(lgpu_dataset_max_example_tokens(ds), 8);
    char want[600];
    snprintf(want, sizeof want, "%s:3 (id \"long-prompt\"): dropped: ", path);
    assert_int_equal(strncmp(lgpu_dataset_skip_reason(ds, 0), want, strlen(want)), 0);
    assert_non_null(strstr(lgpu_dataset_skip_reason(ds, 0), "max_tokens is 8"));
    assert_int_not_equal(lgpu_dataset_fingerprint(ds), lgpu_dataset_fingerprint(full));
    lgpu_dataset_destroy(ds);
    lgpu_dataset_destroy(full);
}

/* ---- split ------------------------------------------------------------ */

static const char *numbered_texts(const char *name, int n) {
    size_t cap = (size_t)n * 64 + 1, len = 0;
    char *text = malloc(cap);
    text[0] = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "{\"id\": %d, \"text\": \"%d: story number %d.\"}\n", i, i, i);
    const char *path = write_file(name, text);
    free(text);
    return path;
}

static void test_split(void **state) {
    (void)state;
    lgpu_dataset *ds = load(stories, numbered_texts("split.jsonl", 50), lgpu_dataset_params_default());
    size_t *tr, *va, ntr, nva, *tr2, *va2, ntr2, nva2;
    TU_OK(lgpu_dataset_split(ds, 0.2, 7, &tr, &ntr, &va, &nva));
    assert_int_equal(nva, 10);
    assert_int_equal(ntr, 40);
    /* disjoint, ascending, covering */
    char seen[50] = {0};
    for (size_t i = 0; i < ntr; i++) {
        assert_true(tr[i] < 50 && !seen[tr[i]]);
        seen[tr[i]] = 1;
        if (i) assert_true(tr[i] > tr[i - 1]);
    }
    for (size_t i = 0; i < nva; i++) {
        assert_true(va[i] < 50 && !seen[va[i]]);
        seen[va[i]] = 2;
        if (i) assert_true(va[i] > va[i - 1]);
    }
    /* the same seed, the same split; another seed, another split */
    TU_OK(lgpu_dataset_split(ds, 0.2, 7, &tr2, &ntr2, &va2, &nva2));
    assert_int_equal(nva2, nva);
    assert_memory_equal(va, va2, nva * sizeof *va);
    free(tr2);
    free(va2);
    TU_OK(lgpu_dataset_split(ds, 0.2, 8, &tr2, &ntr2, &va2, &nva2));
    assert_int_equal(nva2, 10);
    assert_true(memcmp(va, va2, nva * sizeof *va) != 0);
    free(tr2);
    free(va2);
    /* pinned (and checked against a Python transcription of splitmix64, the
     * stream and Fisher-Yates), so that no platform or refactoring moves it */
    static const size_t golden[10] = {4, 12, 23, 34, 35, 37, 40, 44, 45, 49};
    print_message("val split of 50, seed 7:");
    for (size_t i = 0; i < nva; i++) print_message(" %zu", va[i]);
    print_message("\n");
    assert_memory_equal(va, golden, sizeof golden);
    free(tr);
    free(va);
    /* no split; a tiny fraction still holds one out; never all */
    TU_OK(lgpu_dataset_split(ds, 0, 7, &tr, &ntr, &va, &nva));
    assert_int_equal(ntr, 50);
    assert_int_equal(nva, 0);
    assert_null(va);
    free(tr);
    TU_OK(lgpu_dataset_split(ds, 0.001, 7, &tr, &ntr, &va, &nva));
    assert_int_equal(nva, 1);
    free(tr);
    free(va);
    TU_OK(lgpu_dataset_split(ds, 0.999, 7, &tr, &ntr, &va, &nva));
    assert_int_equal(ntr, 1);
    free(tr);
    free(va);
    assert_int_equal(lgpu_dataset_split(ds, 1.0, 7, &tr, &ntr, &va, &nva), LGPU_EINVAL);
    assert_int_equal(lgpu_dataset_split(ds, -0.1, 7, &tr, &ntr, &va, &nva), LGPU_EINVAL);
    lgpu_dataset_destroy(ds);
}

/* splitmix64's published first outputs for seed 0 (as in Vigna's
 * splitmix64.c): the generator is the one everyone else's is. */
static void test_rng_golden(void **state) {
    (void)state;
    uint64_t s = 0;
    assert_true(lgpu_splitmix64(&s) == 0xE220A8397B1DCDAFull);
    assert_true(lgpu_splitmix64(&s) == 0x6E789E6AA1B965F4ull);
    assert_true(lgpu_splitmix64(&s) == 0x06C45D188009454Full);
    for (uint64_t n = 1; n < 100; n++) assert_true(lgpu_rng_below(&s, n) < n);
}

/* ---- batches ---------------------------------------------------------- */

typedef struct {
    uint32_t B, T;
    int32_t *tok, *tgt;
} batch_buf;

static batch_buf batch_alloc(uint32_t B, uint32_t T) {
    batch_buf b = {B, T, malloc((size_t)B * T * sizeof(int32_t)), malloc((size_t)B * T * sizeof(int32_t))};
    assert_non_null(b.tok);
    assert_non_null(b.tgt);
    return b;
}

static void batch_free(batch_buf *b) {
    free(b->tok);
    free(b->tgt);
}

/* Which example (of ds) row `r` holds in truncate mode, by its tokens. */
static size_t row_example(const lgpu_dataset *ds, const batch_buf *b, uint32_t r) {
    for (size_t i = 0; i < lgpu_dataset_size(ds); i++) {
        const int32_t *t;
        uint32_t n;
        lgpu_dataset_example(ds, i, &t, NULL, &n, NULL);
        uint32_t m = n < b->T ? n : b->T;
        if (!memcmp(b->tok + (size_t)r * b->T, t, m * sizeof *t)) return i;
    }
    return SIZE_MAX;
}

static void test_batch_truncate(void **state) {
    (void)state;
    lgpu_dataset *ds = load(stories, numbered_texts("batch.jsonl", 7), lgpu_dataset_params_default());
    const uint32_t B = 3, T = 6; /* examples are ~8-9 tokens: all cut */
    lgpu_batcher *b;
    TU_OK(lgpu_batcher_create(ds, NULL, 7, B, T, false, 42, &b));
    assert_int_equal(lgpu_batcher_n_batches(b), 3); /* 7 rows: 3 + 3 + 1 and 2 empty rows */
    assert_int_equal(lgpu_batcher_n_truncated(b), 7);
    batch_buf bb = batch_alloc(B, T);
    int32_t pad = lgpu_tokenizer_eos(stories); /* stories260K has no pad token */
    char seen[7] = {0};
    for (uint64_t k = 0; k < 3; k++) {
        uint32_t counted;
        TU_OK(lgpu_batcher_get(b, 0, k, bb.tok, bb.tgt, &counted));
        uint32_t want_counted = 0;
        for (uint32_t r = 0; r < B; r++) {
            int32_t *tok = bb.tok + r * T, *tgt = bb.tgt + r * T;
            if (k * B + r >= 7) { /* an empty row */
                for (uint32_t j = 0; j < T; j++) {
                    assert_int_equal(tok[j], pad);
                    assert_int_equal(tgt[j], -1);
                }
                continue;
            }
            size_t ex = row_example(ds, &bb, r);
            assert_true(ex < 7);
            assert_false(seen[ex]);
            seen[ex] = 1;
            const int32_t *t;
            const uint8_t *m;
            lgpu_dataset_example(ds, ex, &t, &m, NULL, NULL);
            for (uint32_t j = 0; j < T; j++) {
                int32_t want = j + 1 < T && m[j + 1] ? t[j + 1] : -1;
                assert_int_equal(tgt[j], want);
                want_counted += want >= 0;
            }
            assert_int_equal(tgt[T - 1], -1);
        }
        assert_int_equal(counted, want_counted);
    }
    assert_int_equal(lgpu_batcher_get(b, 0, 3, bb.tok, bb.tgt, NULL), LGPU_ERANGE);
    lgpu_batcher_destroy(b);
    batch_free(&bb);

    /* rows longer than the examples: padding after EOS, not counted */
    TU_OK(lgpu_batcher_create(ds, NULL, 7, 2, 32, false, 42, &b));
    assert_int_equal(lgpu_batcher_n_truncated(b), 0);
    bb = batch_alloc(2, 32);
    uint32_t counted;
    TU_OK(lgpu_batcher_get(b, 0, 0, bb.tok, bb.tgt, &counted));
    size_t ex = row_example(ds, &bb, 0);
    const int32_t *t;
    const uint8_t *m;
    uint32_t n;
    lgpu_dataset_example(ds, ex, &t, &m, &n, NULL);
    assert_memory_equal(bb.tok, t, n * sizeof *t);
    for (uint32_t j = n; j < 32; j++) assert_int_equal(bb.tok[j], pad);
    for (uint32_t j = n - 1; j < 32; j++) assert_int_equal(bb.tgt[j], -1); /* EOS predicts nothing */
    assert_int_equal(bb.tgt[n - 2], lgpu_tokenizer_eos(stories));             /* EOS is a target */
    assert_int_equal(bb.tgt[0], t[1]);
    lgpu_batcher_destroy(b);
    batch_free(&bb);
    lgpu_dataset_destroy(ds);
}

/* Alpaca rows: prompt tokens are no targets, the response's are. */
static void test_batch_prompt_targets(void **state) {
    (void)state;
    const char *path = write_file("bp.jsonl", "{\"instruction\": \"Tell me a story.\", \"output\": \"Once.\"}\n");
    lgpu_dataset *ds = load(stories, path, lgpu_dataset_params_default());
    const int32_t *t;
    const uint8_t *m;
    uint32_t n;
    lgpu_dataset_example(ds, 0, &t, &m, &n, NULL);
    lgpu_batcher *b;
    TU_OK(lgpu_batcher_create(ds, NULL, 1, 1, n + 4, false, 1, &b));
    batch_buf bb = batch_alloc(1, n + 4);
    uint32_t counted;
    TU_OK(lgpu_batcher_get(b, 0, 0, bb.tok, bb.tgt, &counted));
    uint32_t resp = 0;
    for (uint32_t j = 0; j < n; j++) resp += m[j];
    assert_int_equal(counted, resp);
    char *s = spell(stories, t, m, n, true);
    assert_string_equal(s, "Once.</s>");
    free(s);
    for (uint32_t j = 0; j + 1 < n; j++) assert_int_equal(bb.tgt[j], m[j + 1] ? t[j + 1] : -1);
    lgpu_batcher_destroy(b);
    batch_free(&bb);
    lgpu_dataset_destroy(ds);
}

static void test_batch_pack(void **state) {
    (void)state;
    const int N = 9;
    lgpu_dataset *ds = load(stories, numbered_texts("pack.jsonl", N), lgpu_dataset_params_default());
    const uint32_t B = 2, T = 7;
    uint64_t total = lgpu_dataset_n_tokens(ds);
    uint64_t rows = (total + T - 1) / T;
    lgpu_batcher *b;
    TU_OK(lgpu_batcher_create(ds, NULL, (size_t)N, B, T, true, 3, &b));
    assert_int_equal(lgpu_batcher_n_batches(b), (rows + B - 1) / B);
    assert_int_equal(lgpu_batcher_n_truncated(b), 0);
    batch_buf bb = batch_alloc(B, T);
    int32_t *stream = malloc((rows * T + B * T) * sizeof *stream);
    uint64_t got = 0;
    for (uint64_t k = 0; k < lgpu_batcher_n_batches(b); k++) {
        uint32_t counted;
        TU_OK(lgpu_batcher_get(b, 1, k, bb.tok, bb.tgt, &counted));
        uint32_t c = 0;
        for (uint32_t j = 0; j < B * T; j++) {
            c += bb.tgt[j] >= 0;
            if (j % T == T - 1) assert_int_equal(bb.tgt[j], -1);               /* the row's last token */
            else if (bb.tgt[j] >= 0) assert_int_equal(bb.tgt[j], bb.tok[j + 1]); /* shifted by one */
        }
        assert_int_equal(counted, c);
        memcpy(stream + got, bb.tok, (size_t)B * T * sizeof *stream);
        got += (uint64_t)B * T;
    }
    /* the rows, end to end, are every example once, each whole, then padding */
    char used[9] = {0};
    uint64_t at = 0;
    while (at < total) {
        size_t found = SIZE_MAX;
        for (int i = 0; i < N && found == SIZE_MAX; i++) {
            const int32_t *t;
            uint32_t n;
            lgpu_dataset_example(ds, (size_t)i, &t, NULL, &n, NULL);
            if (!used[i] && at + n <= total && !memcmp(stream + at, t, n * sizeof *t)) found = (size_t)i;
        }
        if (found == SIZE_MAX) fail_msg("packed stream at %llu is no unused example", (unsigned long long)at);
        used[found] = 1;
        uint32_t n;
        lgpu_dataset_example(ds, found, NULL, NULL, &n, NULL);
        at += n;
    }
    for (uint64_t j = total; j < got; j++) assert_int_equal(stream[j], lgpu_tokenizer_eos(stories));
    free(stream);
    lgpu_batcher_destroy(b);
    batch_free(&bb);
    lgpu_dataset_destroy(ds);
}

/* (seed, epoch, index) -> the same micro-batch, in any order of calls and
 * from a new batcher (a resumed run); epochs differ; a split's indices. */
static void test_batch_determinism(void **state) {
    (void)state;
    const size_t N = 40;
    lgpu_dataset *ds = load(stories, numbered_texts("det.jsonl", (int)N), lgpu_dataset_params_default());
    size_t *tr, *va, ntr, nva;
    TU_OK(lgpu_dataset_split(ds, 0.25, 5, &tr, &ntr, &va, &nva));
    for (int pack = 0; pack < 2; pack++) {
        const uint32_t B = 4, T = 12;
        lgpu_batcher *a, *b2;
        TU_OK(lgpu_batcher_create(ds, tr, ntr, B, T, pack, 99, &a));
        TU_OK(lgpu_batcher_create(ds, tr, ntr, B, T, pack, 99, &b2));
        uint64_t nb = lgpu_batcher_n_batches(a);
        batch_buf x = batch_alloc(B, T), y = batch_alloc(B, T);
        size_t bytes = (size_t)B * T * sizeof(int32_t);
        /* a: epochs 0, 1, 2 in order; b2: backwards, index by index */
        int32_t *all = malloc(3 * nb * 2 * bytes);
        for (uint64_t e = 0; e < 3; e++)
            for (uint64_t k = 0; k < nb; k++) {
                TU_OK(lgpu_batcher_get(a, e, k, x.tok, x.tgt, NULL));
                memcpy((char *)all + ((e * nb + k) * 2) * bytes, x.tok, bytes);
                memcpy((char *)all + ((e * nb + k) * 2 + 1) * bytes, x.tgt, bytes);
            }
        for (uint64_t e = 3; e-- > 0;)
            for (uint64_t k = nb; k-- > 0;) {
                uint32_t c;
                TU_OK(lgpu_batcher_get(b2, e, k, y.tok, y.tgt, &c));
                assert_memory_equal(y.tok, (char *)all + ((e * nb + k) * 2) * bytes, bytes);
                assert_memory_equal(y.tgt, (char *)all + ((e * nb + k) * 2 + 1) * bytes, bytes);
            }
        /* a new epoch is a new order */
        assert_true(memcmp(all, (char *)all + nb * 2 * bytes, nb * 2 * bytes) != 0);
        assert_true(memcmp((char *)all + nb * 2 * bytes, (char *)all + 2 * nb * 2 * bytes, nb * 2 * bytes) != 0);
        /* only training examples appear (truncate mode: each row is one) */
        if (!pack)
            for (uint64_t k = 0; k < nb; k++) {
                TU_OK(lgpu_batcher_get(a, 0, k, x.tok, x.tgt, NULL));
                for (uint32_t r = 0; r < B && k * B + r < ntr; r++) {
                    size_t ex = row_example(ds, &x, r);
                    for (size_t v = 0; v < nva; v++) assert_int_not_equal(ex, va[v]);
                }
            }
        free(all);
        batch_free(&x);
        batch_free(&y);
        lgpu_batcher_destroy(a);
        lgpu_batcher_destroy(b2);
    }
    /* bad arguments */
    lgpu_batcher *b = NULL;
    assert_int_equal(lgpu_batcher_create(ds, NULL, 0, 1, 8, false, 0, &b), LGPU_EINVAL);
    assert_int_equal(lgpu_batcher_create(ds, NULL, N, 0, 8, false, 0, &b), LGPU_EINVAL);
    assert_int_equal(lgpu_batcher_create(ds, NULL, N, 1, 1, false, 0, &b), LGPU_EINVAL);
    assert_int_equal(lgpu_batcher_create(ds, NULL, N + 1, 1, 8, false, 0, &b), LGPU_EINVAL);
    size_t bad_idx[] = {0, N};
    assert_int_equal(lgpu_batcher_create(ds, bad_idx, 2, 1, 8, false, 0, &b), LGPU_EINVAL);
    assert_null(b);
    free(tr);
    free(va);
    lgpu_dataset_destroy(ds);
}

/* datasets/stories-instruct: every file loads with no bad line, in the
 * format its name says, fits stories260K's context (512), and an epoch of
 * its batches holds every counted token that can be a target. */
static void test_stories_instruct(void **state) {
    (void)state;
    static const struct {
        const char *file;
        lgpu_dataset_format format;
    } files[] = {
        {"train.jsonl", LGPU_DATASET_ALPACA},
        {"val.jsonl", LGPU_DATASET_ALPACA},
        {"chat.jsonl", LGPU_DATASET_CHAT},
        {"prompt_completion.jsonl", LGPU_DATASET_PROMPT_COMPLETION},
        {"text.jsonl", LGPU_DATASET_TEXT},
    };
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", tu_source_path("datasets/stories-instruct"), files[k].file);
        lgpu_dataset_params p = lgpu_dataset_params_default();
        p.max_tokens = 512;
        lgpu_dataset *ds = load(stories, path, p);
        assert_int_equal(lgpu_dataset_format_of(ds), files[k].format);
        assert_int_equal(lgpu_dataset_n_skipped(ds), 0);
        assert_int_equal(lgpu_dataset_n_dropped(ds), 0);
        print_message("%s: %zu examples, %llu tokens, %llu counted, longest %u, %zu truncated to 512\n",
                      files[k].file, lgpu_dataset_size(ds), (unsigned long long)lgpu_dataset_n_tokens(ds),
                      (unsigned long long)lgpu_dataset_n_counted(ds), lgpu_dataset_max_example_tokens(ds),
                      lgpu_dataset_n_truncated(ds));
        uint64_t targets = 0; /* counted tokens that can be targets: all but a row's first */
        for (size_t i = 0; i < lgpu_dataset_size(ds); i++) {
            const uint8_t *m;
            uint32_t n, c = 0;
            lgpu_dataset_example(ds, i, NULL, &m, &n, NULL);
            for (uint32_t j = 0; j < n; j++) c += m[j];
            assert_true(c > 0);
            targets += c - m[0];
        }
        /* an epoch of one example per row of 512 loses no target */
        lgpu_batcher *b;
        TU_OK(lgpu_batcher_create(ds, NULL, lgpu_dataset_size(ds), 8, 512, false, 42, &b));
        batch_buf bb = batch_alloc(8, 512);
        uint64_t sum = 0;
        for (uint64_t k = 0; k < lgpu_batcher_n_batches(b); k++) {
            uint32_t c;
            TU_OK(lgpu_batcher_get(b, 0, k, bb.tok, bb.tgt, &c));
            sum += c;
        }
        assert_int_equal(sum, targets);
        batch_free(&bb);
        lgpu_batcher_destroy(b);
        lgpu_dataset_destroy(ds);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alpaca),
        cmocka_unit_test(test_alpaca_custom_template),
        cmocka_unit_test(test_prompt_completion),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_train_on_prompt),
        cmocka_unit_test(test_chat_default_template),
        cmocka_unit_test(test_chat_chatml_tokenizer),
        cmocka_unit_test(test_chat_llama3_tokenizer),
        cmocka_unit_test(test_bad_line_kinds),
        cmocka_unit_test(test_explicit_format),
        cmocka_unit_test(test_fixtures_good),
        cmocka_unit_test(test_fixtures_bad),
        cmocka_unit_test(test_skip_many),
        cmocka_unit_test(test_crlf_bom),
        cmocka_unit_test(test_max_tokens),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_rng_golden),
        cmocka_unit_test(test_batch_truncate),
        cmocka_unit_test(test_batch_prompt_targets),
        cmocka_unit_test(test_batch_pack),
        cmocka_unit_test(test_batch_determinism),
        cmocka_unit_test(test_stories_instruct),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
