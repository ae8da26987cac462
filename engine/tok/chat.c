/* Chat templates: the reference Jinja templates of LLaMA-2-chat, LLaMA-3-
 * instruct, ChatML and Zephyr written out in C, rendering byte-for-byte what
 * transformers' apply_chat_template gives (trim_blocks/lstrip_blocks on;
 * Jinja's trim / Python's strip() remove Unicode whitespace). */
#include "tok/tok_internal.h"
#include "core/grow.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *s;
    size_t n, cap;
    int rc;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->rc) return;
    if ((b->rc = LGPU_GROW(b->s, b->cap, b->n + n + 1, 256, "chat template"))) return;
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

/* Python str.isspace() for one code point */
static bool py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* str.strip(): appends s without leading/trailing whitespace */
static void put_stripped(sbuf *b, const char *s) {
    size_t n = strlen(s), i = 0, end = 0;
    uint32_t cp;
    int l;
    while (i < n && (l = lgpu_tok_utf8_get(s + i, n - i, &cp)) && py_space(cp)) i += (size_t)l;
    for (size_t j = i; j < n;) { /* end: just past the last non-space character */
        l = lgpu_tok_utf8_get(s + j, n - j, &cp);
        if (!l) l = 1, cp = 0xFFFD;
        j += (size_t)l;
        if (!py_space(cp)) end = j;
    }
    if (end > i) put(b, s + i, end - i);
}

static bool role_is(const lgpu_chat_msg *m, const char *r) { return m->role && !strcmp(m->role, r); }

static void chatml(sbuf *b, const lgpu_chat_msg *m, size_t n, bool gen) {
    for (size_t i = 0; i < n; i++) {
        puts_(b, "<|im_start|>");
        puts_(b, m[i].role);
        puts_(b, "\n");
        puts_(b, m[i].content);
        puts_(b, "<|im_end|>\n");
    }
    if (gen) puts_(b, "<|im_start|>assistant\n");
}

static void llama3(sbuf *b, const lgpu_chat_msg *m, size_t n, bool gen, const char *bos) {
    for (size_t i = 0; i < n; i++) {
        if (i == 0) puts_(b, bos);
        puts_(b, "<|start_header_id|>");
        puts_(b, m[i].role);
        puts_(b, "<|end_header_id|>\n\n");
        put_stripped(b, m[i].content);
        puts_(b, "<|eot_id|>");
    }
    if (gen) puts_(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* Meta's Llama-2-chat template: an optional leading system message is folded
 * into the first user turn; user/assistant must alternate; no generation
 * prompt exists (the text already ends with " [/INST]"). */
static int llama2(sbuf *b, const lgpu_chat_msg *m, size_t n, const char *bos, const char *eos) {
    const char *sys = NULL;
    if (n && role_is(&m[0], "system")) sys = m[0].content, m++, n--;
    for (size_t i = 0; i < n; i++) {
        if (role_is(&m[i], "user") != (i % 2 == 0))
            return lgpu_set_error(LGPU_EINVAL, "chat: llama2 template: message %zu (%s): roles must alternate "
                                  "user/assistant/user/...", i + (sys != NULL), m[i].role);
        sbuf c = {0};
        if (i == 0 && sys) {
            puts_(&c, "<<SYS>>\n");
            puts_(&c, sys);
            puts_(&c, "\n<</SYS>>\n\n");
        }
        puts_(&c, m[i].content);
        if (c.rc) return c.rc;
        if (role_is(&m[i], "user")) {
            puts_(b, bos);
            puts_(b, "[INST] ");
            put_stripped(b, c.s);
            puts_(b, " [/INST]");
        } else if (role_is(&m[i], "assistant")) {
            puts_(b, " ");
            put_stripped(b, c.s);
            puts_(b, " ");
            puts_(b, eos);
        }
        free(c.s);
    }
    return 0;
}

static void zephyr(sbuf *b, const lgpu_chat_msg *m, size_t n, bool gen, const char *eos) {
    for (size_t i = 0; i < n; i++) {
        if (role_is(&m[i], "user") || role_is(&m[i], "system") || role_is(&m[i], "assistant")) {
            puts_(b, "<|");
            puts_(b, m[i].role);
            puts_(b, "|>\n");
            puts_(b, m[i].content);
            puts_(b, eos);
            puts_(b, "\n");
        }
        if (i + 1 == n && gen) puts_(b, "<|assistant|>\n");
    }
}

int lgpu_chat_apply(lgpu_chat_template t, const lgpu_chat_msg *msgs, size_t n, bool add_generation_prompt,
                    const char *bos, const char *eos, char **out) {
    if (!out || (!msgs && n)) return lgpu_set_error(LGPU_EINVAL, "lgpu_chat_apply: NULL argument");
    *out = NULL;
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content)
            return lgpu_set_error(LGPU_EINVAL, "lgpu_chat_apply: message %zu has no role or content", i);
    sbuf b = {0};
    put(&b, "", 0); /* an empty conversation still gives "" */
    switch (t) {
    case LGPU_CHAT_CHATML: chatml(&b, msgs, n, add_generation_prompt); break;
    case LGPU_CHAT_LLAMA3: llama3(&b, msgs, n, add_generation_prompt, bos ? bos : "<|begin_of_text|>"); break;
    case LGPU_CHAT_LLAMA2: {
        int rc = llama2(&b, msgs, n, bos ? bos : "<s>", eos ? eos : "</s>");
        if (rc && !b.rc) b.rc = rc;
        break;
    }
    case LGPU_CHAT_ZEPHYR: zephyr(&b, msgs, n, add_generation_prompt, eos ? eos : "</s>"); break;
    default: b.rc = lgpu_set_error(LGPU_EINVAL, "lgpu_chat_apply: unknown template %d", (int)t);
    }
    if (b.rc) {
        free(b.s);
        return b.rc;
    }
    *out = b.s;
    return 0;
}

lgpu_chat_template lgpu_chat_detect(const char *j) {
    if (!j) return LGPU_CHAT_UNKNOWN;
    if (strstr(j, "<|im_start|>")) return LGPU_CHAT_CHATML;
    if (strstr(j, "[INST]")) return LGPU_CHAT_LLAMA2;
    if (strstr(j, "<|start_header_id|>") && strstr(j, "<|end_header_id|>")) return LGPU_CHAT_LLAMA3;
    if (strstr(j, "<|user|>") && strstr(j, "<|assistant|>") && !strstr(j, "<|end|>")) return LGPU_CHAT_ZEPHYR;
    return LGPU_CHAT_UNKNOWN;
}

static const struct {
    const char *name;
    lgpu_chat_template t;
} names[] = {
    {"chatml", LGPU_CHAT_CHATML}, {"llama2", LGPU_CHAT_LLAMA2}, {"llama3", LGPU_CHAT_LLAMA3},
    {"zephyr", LGPU_CHAT_ZEPHYR}, {"llama-2", LGPU_CHAT_LLAMA2}, {"llama-3", LGPU_CHAT_LLAMA3},
};

lgpu_chat_template lgpu_chat_from_name(const char *name) {
    for (size_t i = 0; name && i < sizeof names / sizeof *names; i++)
        if (!strcmp(names[i].name, name)) return names[i].t;
    return LGPU_CHAT_UNKNOWN;
}

const char *lgpu_chat_name(lgpu_chat_template t) {
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i].t == t) return names[i].name;
    return "unknown";
}

int lgpu_chat_template_of(const lgpu_tokenizer *tok, const char *override_name, lgpu_chat_template *out) {
    if (!out) return lgpu_set_error(LGPU_EINVAL, "lgpu_chat_template_of: NULL argument");
    if (override_name) {
        *out = lgpu_chat_from_name(override_name);
        if (*out == LGPU_CHAT_UNKNOWN)
            return lgpu_set_error(LGPU_EINVAL, "chat template '%s' unknown (chatml, llama2, llama3, zephyr)",
                                  override_name);
        return 0;
    }
    *out = tok ? lgpu_chat_detect(tok->chat_template) : LGPU_CHAT_UNKNOWN;
    if (*out == LGPU_CHAT_UNKNOWN) {
        if (tok && tok->chat_template)
            lgpu_log(LGPU_LOG_INFO, "chat template not recognised, using chatml");
        *out = LGPU_CHAT_CHATML;
    }
    return 0;
}

int lgpu_chat_stops(lgpu_chat_template t, const char **out) {
    switch (t) {
    case LGPU_CHAT_CHATML: out[0] = "<|im_end|>", out[1] = "<|im_start|>"; return 2;
    case LGPU_CHAT_LLAMA2: out[0] = "[INST]"; return 1;
    case LGPU_CHAT_LLAMA3: out[0] = "<|eot_id|>", out[1] = "<|start_header_id|>"; return 2;
    case LGPU_CHAT_ZEPHYR: out[0] = "</s>", out[1] = "<|user|>"; return 2;
    default: return 0;
    }
}

int lgpu_chat_apply_tok(const lgpu_tokenizer *tok, const char *override_name, const lgpu_chat_msg *msgs,
                        size_t n, bool add_generation_prompt, char **out) {
    lgpu_chat_template t;
    int rc = lgpu_chat_template_of(tok, override_name, &t);
    if (rc) return rc;
    const char *bos = tok && tok->bos >= 0 ? lgpu_tokenizer_token_text(tok, tok->bos) : NULL;
    const char *eos = tok && tok->eos >= 0 ? lgpu_tokenizer_token_text(tok, tok->eos) : NULL;
    return lgpu_chat_apply(t, msgs, n, add_generation_prompt, bos, eos, out);
}
