/* Options shared by `lgpu run`, `lgpu chat` and `lgpu bench`: model,
 * device, context and sampling flags, parsed by one table. */
#ifndef LGPU_TOOLS_CMD_GEN_OPTS_H
#define LGPU_TOOLS_CMD_GEN_OPTS_H

#include "lgpu/llama.h"
#include "lgpu/lora.h"
#include "lgpu/sampler.h"

enum { GO_RUN = 1, GO_CHAT = 2, GO_BENCH = 4 };
#define GO_MAX_STOPS 16

typedef struct gen_opts {
    const char *model, *tokenizer, *device;
    const char *prompt, *prompt_file;
    const char *template_name, *system;
    const char *kv_type; /* KV cache type name: auto, f16 or f32 */
    int n_predict;   /* run/chat: tokens per reply (-1: until EOG) */
    uint32_t n_ctx, n_batch;
    bool no_bos, ignore_eos, verbose;
    lgpu_sampler_params sp;
    const char *stops[GO_MAX_STOPS];
    int n_stops;
    const char *loras[LGPU_LORA_MAX_STACK]; /* --lora FILE[:SCALE], applied to every sequence */
    int n_loras;
    int bench_p, bench_n, bench_r; /* bench: pp tokens, tg tokens, repetitions */
    int bench_s;                   /* bench: sequences decoding together in the tg test */
} gen_opts;

/* Parses argv[1..] for command `cmd` (GO_*). Returns 0 to proceed, 1 when
 * --help was printed, 2 on a usage error (already reported). */
int gen_opts_parse(int argc, char **argv, int cmd, const char *usage_line, gen_opts *o);

/* Loads the model and creates a context for o (n_seq sequences) whose
 * sequences apply o's adapters. Prints the error and returns nonzero on
 * failure. */
int gen_opts_load(const gen_opts *o, uint32_t n_seq, bool progress, lgpu_model **m, lgpu_ctx **c);

/* The whole of a file ("-": stdin), NUL-terminated; *len (may be NULL) gets
 * its length. NULL on a failed open or read (errno says why) or out of memory. */
char *gen_read_text(const char *path, size_t *len);

/* lgpu_gen text callback: the text to stdout, flushed (streaming). */
int gen_print_text(void *user, const char *text, size_t len);

#endif
