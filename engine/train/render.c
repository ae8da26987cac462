/* Rendering (render.h). The chat template is engine/tok/chat.c's; to know
 * where each assistant message lies in the rendered conversation, the
 * conversation is rendered again up to that message, with the generation
 * prompt (the text a model sees just before it answers) and through it: the
 * response is what lies between, up to the template's end-of-turn marker,
 * which the model must learn to write to stop. The trailing newline some
 * templates put after the marker belongs to the next turn's framing. */
#include "train/render.h"

#include "core/grow.h"

#include <stdlib.h>
#include <string.h>

const char lgpu_alpaca_prompt_input[] =
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:";
const char lgpu_alpaca_prompt_no_input[] =
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:";

typedef struct {
    char *s;
    size_t n, cap;
    int rc;
} text_buf;

static void put(text_buf *b, const char *s, size_t n) {
    if (b->rc) return;
    if ((b->rc = LGPU_GROW(b->s, b->cap, b->n + n + 1, 256, "dataset text"))) return;
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

int lgpu_ds_format_template(const char *tmpl, const char *instruction, const char *input, char **out) {
    text_buf b = {0};
    put(&b, "", 0);
    for (const char *p = tmpl; *p && !b.rc;) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            put(&b, p, 1);
            p += 2;
        } else if (p[0] == '}') {
            free(b.s);
            return lgpu_set_error(LGPU_EINVAL, "prompt template: single '}' at byte %zu (write }} for a brace)",
                                  (size_t)(p - tmpl));
        } else if (p[0] == '{') {
            const char *end = strchr(p, '}');
            size_t n = end ? (size_t)(end - p - 1) : 0;
            const char *value = !end                                          ? NULL
                                : n == 11 && !strncmp(p + 1, "instruction", 11) ? instruction
                                : n == 5 && !strncmp(p + 1, "input", 5)         ? input
                                                                                : NULL;
            if (!value) {
                free(b.s);
                return lgpu_set_error(LGPU_EINVAL,
                                      "prompt template: unknown placeholder %.*s at byte %zu (only {instruction} and "
                                      "{input}; {{ and }} for braces)",
                                      end ? (int)(n + 2) : 1, p, (size_t)(p - tmpl));
            }
            put(&b, value, strlen(value));
            p = end + 1;
        } else {
            size_t n = strcspn(p, "{}");
            put(&b, p, n);
            p += n;
        }
    }
    if (b.rc) {
        free(b.s);
        return b.rc;
    }
    *out = b.s;
    return 0;
}

int lgpu_ds_renderer_init(lgpu_ds_renderer *r, const lgpu_tokenizer *tok, const lgpu_dataset_params *p) {
    memset(r, 0, sizeof *r);
    r->alpaca_input = p->prompt_template ? p->prompt_template : lgpu_alpaca_prompt_input;
    r->alpaca_no_input = p->prompt_template_no_input ? p->prompt_template_no_input
                         : p->prompt_template        ? p->prompt_template
                                                     : lgpu_alpaca_prompt_no_input;
    const char *tmpls[2] = {r->alpaca_input, r->alpaca_no_input};
    for (int i = 0; i < 2; i++) {
        char *s;
        int rc = lgpu_ds_format_template(tmpls[i], "", "", &s);
        if (rc) return rc;
        free(s);
    }
    int rc = lgpu_chat_template_of(tok, p->chat_template, &r->chat);
    if (rc) return rc;
    int32_t bos = lgpu_tokenizer_bos(tok), eos = lgpu_tokenizer_eos(tok);
    r->bos_text = bos >= 0 ? lgpu_tokenizer_token_text(tok, bos) : NULL;
    r->eos_text = eos >= 0 ? lgpu_tokenizer_token_text(tok, eos) : NULL;
    return 0;
}

static int add_span(lgpu_ds_rendered *out, size_t *cap, size_t start, size_t end) {
    int rc = LGPU_GROW(out->spans, *cap, out->n_spans + 1, 4, "dataset spans");
    if (rc) return rc;
    out->spans[out->n_spans++] = (lgpu_ds_span){start, end};
    return 0;
}

/* prompt + response as one text, the response counted */
static int join(lgpu_ds_rendered *out, const char *prompt, const char *response) {
    size_t np = strlen(prompt), nr = strlen(response), cap = 0;
    out->text = malloc(np + nr + 1);
    if (!out->text) return lgpu_set_error(LGPU_ENOMEM, "dataset: out of memory");
    memcpy(out->text, prompt, np);
    memcpy(out->text + np, response, nr + 1);
    out->len = np + nr;
    out->append_eos = true;
    return add_span(out, &cap, np, np + nr);
}

static const char *end_of_turn(const lgpu_ds_renderer *r) {
    switch (r->chat) {
    case LGPU_CHAT_CHATML: return "<|im_end|>";
    case LGPU_CHAT_LLAMA3: return "<|eot_id|>";
    default: return r->eos_text ? r->eos_text : "</s>"; /* llama2, zephyr: the turn ends with EOS */
    }
}

static const char *memrmem(const char *h, size_t hn, const char *needle) {
    size_t nn = strlen(needle);
    if (!nn || nn > hn) return NULL;
    for (size_t i = hn - nn + 1; i-- > 0;)
        if (!memcmp(h + i, needle, nn)) return h + i;
    return NULL;
}

static bool is_prefix(const char *pre, const char *full, size_t full_len) {
    size_t n = strlen(pre);
    return n <= full_len && !memcmp(pre, full, n);
}

static int render_chat(const lgpu_ds_renderer *r, const lgpu_ds_fields *f, lgpu_ds_rendered *out, char *why,
                       size_t why_cap) {
    int rc = lgpu_chat_apply(r->chat, f->msgs, f->n_msgs, false, r->bos_text, r->eos_text, &out->text);
    if (rc == LGPU_EINVAL) {
        snprintf(why, why_cap, "the %s chat template refuses it: %s", lgpu_chat_name(r->chat), lgpu_last_error());
        return 1;
    }
    if (rc) return rc;
    out->len = strlen(out->text);
    out->parse_special = true;
    size_t cap = 0;
    const char *eot = end_of_turn(r);
    for (size_t k = 0; k < f->n_msgs && !rc; k++) {
        if (strcmp(f->msgs[k].role, "assistant")) continue;
        char *pre = NULL, *upto = NULL;
        /* before the answer: with the generation prompt when the template
         * has one and renders it as a prefix (LLaMA-3 has none before the
         * first message, whose BOS it writes), else the turns before */
        rc = lgpu_chat_apply(r->chat, f->msgs, k, true, r->bos_text, r->eos_text, &pre);
        if (!rc && !is_prefix(pre, out->text, out->len)) {
            free(pre);
            pre = NULL;
            rc = lgpu_chat_apply(r->chat, f->msgs, k, false, r->bos_text, r->eos_text, &pre);
        }
        if (!rc) rc = lgpu_chat_apply(r->chat, f->msgs, k + 1, false, r->bos_text, r->eos_text, &upto);
        if (!rc && (!is_prefix(pre, out->text, out->len) || !is_prefix(upto, out->text, out->len) ||
                    strlen(pre) >= strlen(upto)))
            rc = lgpu_set_error(LGPU_EUNSUPPORTED,
                                "dataset: the %s chat template does not render message by message; cannot find "
                                "messages[%zu] in the text",
                                lgpu_chat_name(r->chat), k);
        if (!rc) {
            size_t start = strlen(pre), end = strlen(upto);
            const char *m = memrmem(out->text + start, end - start, eot);
            if (m) end = (size_t)(m - out->text) + strlen(eot);
            rc = add_span(out, &cap, start, end);
        }
        free(pre);
        free(upto);
    }
    return rc;
}

int lgpu_ds_render(const lgpu_ds_renderer *r, const lgpu_ds_fields *f, lgpu_ds_rendered *out, char *why,
                   size_t why_cap) {
    memset(out, 0, sizeof *out);
    int rc;
    switch (f->format) {
    case LGPU_DATASET_ALPACA: {
        char *prompt = NULL;
        rc = lgpu_ds_format_template(f->input[0] ? r->alpaca_input : r->alpaca_no_input, f->instruction, f->input,
                                     &prompt);
        if (!rc) rc = join(out, prompt, f->output);
        free(prompt);
        break;
    }
    case LGPU_DATASET_PROMPT_COMPLETION: rc = join(out, f->prompt, f->completion); break;
    case LGPU_DATASET_TEXT: rc = join(out, "", f->text); break;
    case LGPU_DATASET_CHAT: rc = render_chat(r, f, out, why, why_cap); break;
    default: rc = lgpu_set_error(LGPU_EINVAL, "dataset: format %d", (int)f->format);
    }
    if (rc) lgpu_ds_rendered_free(out);
    return rc;
}

void lgpu_ds_rendered_free(lgpu_ds_rendered *r) {
    free(r->text);
    free(r->spans);
    memset(r, 0, sizeof *r);
}
