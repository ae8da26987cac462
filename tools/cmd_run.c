/* lgpu run: generate text from a prompt, streamed to stdout; timings on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_gen_opts.h"
#include "lgpu/gen.h"
#include "lgpu/tokenizer.h"

static const char *finish_name(lgpu_gen_finish f) {
    switch (f) {
    case LGPU_GEN_LENGTH: return "length";
    case LGPU_GEN_EOG: return "end of generation";
    case LGPU_GEN_STOP: return "stop string";
    case LGPU_GEN_CTX: return "context full";
    case LGPU_GEN_CANCEL: return "canceled";
    }
    return "?";
}

int lgpu_cmd_run(int argc, char **argv) {
    gen_opts o;
    int st = gen_opts_parse(argc, argv, GO_RUN,
                            "lgpu run [-m MODEL] [--lora FILE[:SCALE] ...] [-p PROMPT | -f FILE] [-n N] [--temp T ...] [--stop STR ...]", &o);
    if (st) return st == 1 ? 0 : st;
    char *file_prompt = NULL;
    if (o.prompt_file) {
        file_prompt = gen_read_text(o.prompt_file, NULL);
        if (!file_prompt) {
            fprintf(stderr, "lgpu run: cannot read %s\n", o.prompt_file);
            return 1;
        }
        o.prompt = file_prompt;
    }
    lgpu_model *m;
    lgpu_ctx *c;
    if (gen_opts_load(&o, 1, true, &m, &c)) {
        free(file_prompt);
        return 1;
    }
    if (o.verbose) fprintf(stderr, "model: %s\n", lgpu_model_desc(m));
    lgpu_tokenizer *tok = lgpu_model_tokenizer(m);
    lgpu_gen *g = NULL;
    lgpu_tokens pt = {0};
    int rc = 1;
    if (!tok) {
        fprintf(stderr, "lgpu run: the model has no tokenizer; pass --tokenizer FILE\n");
        goto out;
    }
    if ((st = lgpu_gen_create(c, &o.sp, &g))) goto fail;
    const char *prompt = o.prompt ? o.prompt : "";
    if ((st = lgpu_tokenizer_encode(tok, prompt, (size_t)-1, !o.no_bos, false, &pt))) goto fail;
    const int32_t *ids = pt.ids;
    int n_ids = (int)pt.n;
    int32_t bos = lgpu_tokenizer_bos(tok);
    if (n_ids == 0) { /* empty prompt: condition on BOS alone */
        if (bos < 0) {
            fprintf(stderr, "lgpu run: empty prompt and no BOS token\n");
            goto out;
        }
        ids = &bos;
        n_ids = 1;
    }
    if ((st = lgpu_gen_feed(g, ids, n_ids, gen_print_text, NULL))) goto fail;
    lgpu_gen_params gp = {.n_predict = o.n_predict, .ignore_eog = o.ignore_eos, .stops = o.stops,
                          .n_stops = o.n_stops, .on_text = gen_print_text};
    lgpu_gen_finish why;
    if ((st = lgpu_gen_run(g, &gp, &why))) goto fail;
    fputc('\n', stdout);
    fflush(stdout);
    const lgpu_gen_stats *gs = lgpu_gen_stats_of(g);
    fprintf(stderr, "\n%s\n", lgpu_model_desc(m));
    fprintf(stderr, "prompt:     %5d tokens in %8.2f ms (%8.2f tokens/s)%s\n", gs->n_prompt, gs->prompt_s * 1e3,
            gs->prompt_s > 0 ? gs->n_prompt / gs->prompt_s : 0.0, gs->n_reused ? " (some cached)" : "");
    fprintf(stderr, "generation: %5d tokens in %8.2f ms (%8.2f tokens/s), stopped by %s\n", gs->n_gen,
            gs->gen_s * 1e3, gs->gen_s > 0 ? gs->n_gen / gs->gen_s : 0.0, finish_name(why));
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "\nlgpu run: %s (%s)\n", lgpu_last_error(), lgpu_strerror(st));
out:
    lgpu_tokens_destroy(&pt);
    lgpu_gen_destroy(g);
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
    free(file_prompt);
    return rc;
}
