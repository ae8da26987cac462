/* lgpu tokenize -m MODEL -p TEXT: the token ids of a text, printed like
 * llama.cpp's llama-tokenize ("id -> 'piece'" lines, or a Python-style list
 * with --ids). MODEL: a GGUF (vocab-only is enough), an HF directory, a
 * tokenizer.json, a llama2.c tokenizer.bin, or a llama2.c checkpoint with a
 * tokenizer beside it (tok<vocab>.bin / tokenizer.bin) or given by --tokenizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_gen_opts.h"
#include "lgpu/lgpu.h"
#include "lgpu/model_file.h"
#include "lgpu/tokenizer.h"

static const char usage_text[] =
    "usage: lgpu tokenize -m MODEL (-p TEXT | -f FILE) [options]\n"
    "  -m, --model PATH     GGUF, HF directory, tokenizer.json, tokenizer.bin or llama2.c checkpoint\n"
    "  -p, --prompt TEXT    text to tokenize\n"
    "  -f, --file FILE      read the text from FILE (- for stdin)\n"
    "  --tokenizer FILE     tokenizer to use instead of the model's (tokenizer.bin, tokenizer.json, GGUF)\n"
    "  --no-bos             do not add BOS/EOS (add_special = false)\n"
    "  --parse-special      turn control-token text such as <|eot_id|> or <s> into its id\n"
    "  --ids                print only the ids, as a list: [1, 15043, ...]\n"
    "  --show-count         print the number of tokens at the end\n";

/* A llama2.c checkpoint: the tokenizer file beside it with vocab_size tokens. */
static int tokenizer_beside(const char *model, lgpu_tokenizer **out) {
    lgpu_model_file *mf;
    int st = lgpu_model_file_create(model, &mf);
    if (st) return st;
    uint32_t n_vocab = lgpu_model_file_hparams(mf)->n_vocab;
    bool l2c = lgpu_model_file_source(mf) == LGPU_MODEL_SRC_LLAMA2C;
    lgpu_model_file_destroy(mf);
    if (!l2c) return lgpu_set_error(LGPU_ENOTFOUND, "%s: no tokenizer in this model file", model);
    const char *slash = strrchr(model, '/');
    int dir = slash ? (int)(slash - model) : 1;
    char path[4096];
    char name[32];
    snprintf(name, sizeof name, "tok%u.bin", n_vocab);
    const char *names[2] = {name, "tokenizer.bin"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%.*s/%s", dir, slash ? model : ".", names[i]);
        if (lgpu_tokenizer_from_llama2c(path, (int)n_vocab, out) == 0) return 0;
    }
    return lgpu_set_error(LGPU_ENOTFOUND, "%s: llama2.c checkpoint without tok%u.bin or tokenizer.bin (%u tokens) "
                          "beside it: pass --tokenizer", model, n_vocab, n_vocab);
}

static int open_tokenizer(const char *model, const char *tok_path, lgpu_tokenizer **out) {
    if (tok_path) return lgpu_tokenizer_create(tok_path, out);
    int st = lgpu_tokenizer_create(model, out);
    if (st != LGPU_EFORMAT) return st;
    /* not a tokenizer file itself: maybe a llama2.c checkpoint */
    char first[1024];
    snprintf(first, sizeof first, "%s", lgpu_last_error());
    if (tokenizer_beside(model, out) == 0) return 0;
    return lgpu_set_error(st, "%s", first);
}

int lgpu_cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *file = NULL, *tok_path = NULL;
    bool add_special = true, parse_special = false, ids_only = false, show_count = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_val) model = argv[++i];
        else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && has_val) prompt = argv[++i];
        else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && has_val) file = argv[++i];
        else if (!strcmp(a, "--tokenizer") && has_val) tok_path = argv[++i];
        else if (!strcmp(a, "--no-bos")) add_special = false;
        else if (!strcmp(a, "--parse-special")) parse_special = true;
        else if (!strcmp(a, "--ids")) ids_only = true;
        else if (!strcmp(a, "--show-count")) show_count = true;
        else {
            fprintf(stderr, "lgpu tokenize: unknown option or missing value: %s\n%s", a, usage_text);
            return 2;
        }
    }
    if ((!model && !tok_path) || (!prompt == !file)) {
        fprintf(stderr, "lgpu tokenize: need -m MODEL and one of -p TEXT / -f FILE\n%s", usage_text);
        return 2;
    }
    size_t len = prompt ? strlen(prompt) : 0;
    char *text = NULL;
    if (file && !(text = gen_read_text(file, &len))) {
        fprintf(stderr, "lgpu tokenize: cannot read %s\n", file);
        return 1;
    }
    lgpu_tokenizer *tok = NULL;
    int st = open_tokenizer(model, tok_path, &tok);
    lgpu_tokens ids = {0};
    if (!st) st = lgpu_tokenizer_encode(tok, text ? text : prompt, len, add_special, parse_special, &ids);
    if (st) {
        fprintf(stderr, "lgpu tokenize: %s (%s)\n", lgpu_last_error(), lgpu_err_name(st));
        lgpu_tokenizer_destroy(tok);
        free(text);
        return 1;
    }
    if (ids_only) {
        putchar('[');
        for (size_t i = 0; i < ids.n; i++) printf(i ? ", %d" : "%d", ids.ids[i]);
        printf("]\n");
    } else {
        char small[256];
        for (size_t i = 0; i < ids.n; i++) {
            size_t n;
            char *piece = small;
            st = lgpu_tokenizer_piece(tok, ids.ids[i], true, small, sizeof small, &n);
            if (st == LGPU_EFULL && (piece = malloc(n))) st = lgpu_tokenizer_piece(tok, ids.ids[i], true, piece, n, &n);
            printf("%6d -> '", ids.ids[i]);
            if (!st) fwrite(piece, 1, n, stdout);
            printf("'\n");
            if (piece != small) free(piece);
        }
    }
    if (show_count) printf("Total number of tokens: %zu\n", ids.n);
    lgpu_tokens_destroy(&ids);
    lgpu_tokenizer_destroy(tok);
    free(text);
    return 0;
}
