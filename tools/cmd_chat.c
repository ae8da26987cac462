/* lgpu chat: an interactive conversation on stdin/stdout. Each turn renders
 * the whole conversation with the chat template but decodes only the text
 * the KV cache does not hold yet, so earlier turns are never recomputed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_gen_opts.h"
#include "lgpu/gen.h"
#include "lgpu/tokenizer.h"

typedef struct chat {
    lgpu_chat_msg *msgs;
    size_t n, cap;
    char *cached; /* the text whose tokens are in the KV cache */
    size_t cached_len;
} chat;

static int push_msg(chat *ch, const char *role, const char *content, size_t len) {
    if (ch->n == ch->cap) {
        size_t cap = ch->cap ? ch->cap * 2 : 8;
        lgpu_chat_msg *p = realloc(ch->msgs, cap * sizeof *p);
        if (!p) return -1;
        ch->msgs = p;
        ch->cap = cap;
    }
    char *c = strndup(content, len);
    if (!c) return -1;
    ch->msgs[ch->n++] = (lgpu_chat_msg){.role = role, .content = c};
    return 0;
}

static int append_cached(chat *ch, const char *s, size_t n) {
    char *p = realloc(ch->cached, ch->cached_len + n + 1);
    if (!p) return -1;
    memcpy(p + ch->cached_len, s, n);
    ch->cached = p;
    ch->cached_len += n;
    p[ch->cached_len] = 0;
    return 0;
}

/* The text to decode for this turn: what the rendered conversation adds to
 * the cached text; if the cache diverged from the rendering (a reply cut at
 * a stop string, a template that trims), what the new message adds to the
 * rendering of the earlier ones (llama.cpp's approach). */
static int turn_delta(lgpu_tokenizer *tok, const char *tmpl, chat *ch, char **rendered, const char **delta) {
    int st = lgpu_chat_apply_tok(tok, tmpl, ch->msgs, ch->n, true, rendered);
    if (st) return st;
    if (!strncmp(*rendered, ch->cached ? ch->cached : "", ch->cached_len)) {
        *delta = *rendered + ch->cached_len;
        return 0;
    }
    char *past = NULL;
    if ((st = lgpu_chat_apply_tok(tok, tmpl, ch->msgs, ch->n - 1, false, &past))) return st;
    size_t pl = strlen(past);
    *delta = !strncmp(*rendered, past, pl) ? *rendered + pl : *rendered;
    free(past);
    return 0;
}

int lgpu_cmd_chat(int argc, char **argv) {
    gen_opts o;
    int st = gen_opts_parse(argc, argv, GO_CHAT, "lgpu chat [-m MODEL] [--lora FILE[:SCALE] ...] [--template NAME] [--system TEXT] [sampling options]",
                            &o);
    if (st) return st == 1 ? 0 : st;
    if (o.template_name && lgpu_chat_from_name(o.template_name) == LGPU_CHAT_UNKNOWN) { /* before a slow load */
        fprintf(stderr, "lgpu chat: unknown --template '%s' (chatml, llama2, llama3, zephyr)\n", o.template_name);
        return 2;
    }
    lgpu_model *m;
    lgpu_ctx *c;
    if (gen_opts_load(&o, 1, true, &m, &c)) return 1;
    lgpu_tokenizer *tok = lgpu_model_tokenizer(m);
    lgpu_gen *g = NULL;
    chat ch = {0};
    char *line = NULL;
    size_t line_cap = 0;
    int rc = 1;
    lgpu_chat_template t;
    if (!tok) {
        fprintf(stderr, "lgpu chat: the model has no tokenizer; pass --tokenizer FILE\n");
        goto out;
    }
    if ((st = lgpu_chat_template_of(tok, o.template_name, &t)) || (st = lgpu_gen_create(c, &o.sp, &g))) goto fail;
    const char *stops[GO_MAX_STOPS + LGPU_CHAT_MAX_STOPS];
    int n_stops = 0;
    for (int i = 0; i < o.n_stops; i++) stops[n_stops++] = o.stops[i];
    n_stops += lgpu_chat_stops(t, stops + n_stops);
    if (o.system && push_msg(&ch, "system", o.system, strlen(o.system))) goto oom;
    bool tty = isatty(0);
    fprintf(stderr, "%s, template %s. End with EOF (Ctrl-D).\n", lgpu_model_desc(m), lgpu_chat_name(t));
    for (;;) {
        if (tty) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        ssize_t n = getline(&line, &line_cap, stdin);
        if (n < 0) break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0) continue;
        if (push_msg(&ch, "user", line, (size_t)n)) goto oom;
        char *rendered = NULL;
        const char *delta;
        if ((st = turn_delta(tok, o.template_name, &ch, &rendered, &delta))) {
            free(rendered);
            goto fail;
        }
        lgpu_tokens ids = {0};
        st = lgpu_tokenizer_encode(tok, delta, (size_t)-1, false, true, &ids);
        int32_t bos = lgpu_tokenizer_bos(tok);
        bool add_bos = !st && ch.cached_len == 0 && lgpu_tokenizer_add_bos(tok) && bos >= 0 &&
                       (ids.n == 0 || ids.ids[0] != bos);
        if (!st && add_bos) st = lgpu_gen_feed(g, &bos, 1, NULL, NULL);
        if (!st) st = lgpu_gen_feed(g, ids.ids, (int)ids.n, NULL, NULL);
        lgpu_tokens_destroy(&ids);
        if (!st && append_cached(&ch, delta, strlen(delta))) st = LGPU_ENOMEM;
        free(rendered);
        if (st == LGPU_ERANGE) {
            fprintf(stderr, "\n[context full: %s]\n", lgpu_last_error());
            break;
        }
        if (st) goto fail;
        lgpu_gen_params gp = {.n_predict = o.n_predict, .ignore_eog = o.ignore_eos, .stops = stops,
                              .n_stops = n_stops, .on_text = gen_print_text};
        lgpu_gen_finish why;
        if ((st = lgpu_gen_run(g, &gp, &why))) goto fail;
        fputc('\n', stdout);
        fflush(stdout);
        size_t reply_len, full_len;
        const char *reply = lgpu_gen_text(g, false, &reply_len);
        lgpu_gen_text(g, true, &full_len);
        if (push_msg(&ch, "assistant", reply, reply_len) || append_cached(&ch, reply, full_len)) goto oom;
        if (why == LGPU_GEN_CTX) {
            fprintf(stderr, "[context full]\n");
            break;
        }
    }
    if (o.verbose) {
        const lgpu_gen_stats *gs = lgpu_gen_stats_of(g);
        fprintf(stderr, "prompt %d tokens (%.1f tok/s), generated %d tokens (%.1f tok/s)\n", gs->n_prompt,
                gs->prompt_s > 0 ? gs->n_prompt / gs->prompt_s : 0.0, gs->n_gen,
                gs->gen_s > 0 ? gs->n_gen / gs->gen_s : 0.0);
    }
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "lgpu chat: out of memory\n");
    goto out;
fail:
    fprintf(stderr, "\nlgpu chat: %s (%s)\n", lgpu_last_error(), lgpu_strerror(st));
out:
    for (size_t i = 0; i < ch.n; i++) free((char *)ch.msgs[i].content);
    free(ch.msgs);
    free(ch.cached);
    free(line);
    lgpu_gen_destroy(g);
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
    return rc;
}
