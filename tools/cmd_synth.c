/* lgpu synth --shape NAME --type TYPE [--vocab FILE] [--seed N] -o OUT.gguf */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lgpu/convert.h"
#include "lgpu/lgpu.h"

static void note(void *ud, const char *msg) {
    (void)ud;
    fprintf(stderr, "lgpu synth: note: %s\n", msg);
}

typedef struct {
    int last_pct;
    int step; /* percent between reports: 1 on a terminal, 10 in logs */
    time_t start;
} prog_state;

static void progress(void *ud, const char *tensor, uint64_t done, uint64_t total) {
    prog_state *p = ud;
    int pct = total ? (int)(done * 100 / total) : 100;
    if (pct / p->step == p->last_pct / p->step) return;
    p->last_pct = pct;
    fprintf(stderr, "%s[%3d%%] %8.1f / %.1f MiB  %-36s", p->step > 1 ? "" : "\r", pct, (double)done / (1 << 20), (double)total / (1 << 20), tensor);
    if (pct == 100 || p->step > 1) fprintf(stderr, "\n");
}

static void usage(FILE *f) {
    fprintf(f, "usage: lgpu synth --shape NAME --type TYPE [--vocab FILE] [--seed N] [--threads N] -o OUT.gguf\n"
               "  NAME: %s\n"
               "  TYPE: q4_0, q8_0, q4_k, q6_k, f16, bf16, f32\n"
               "  --vocab: GGUF with tokenizer.ggml.* or llama2.c tokenizer.bin (default: synthetic SPM vocab);\n"
               "  it decides n_vocab. Weights ~N(0, 0.02), norms 1, deterministic for a seed (default 1).\n",
            lgpu_synth_shape_names());
}

int lgpu_cmd_synth(int argc, char **argv) {
    lgpu_synth_opts o = {.type = -1, .seed = 1, .note = note};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--shape") && has)
            o.shape = argv[++i];
        else if (!strcmp(a, "--type") && has) {
            o.type = lgpu_type_from_name(argv[++i]);
            if (o.type < 0) {
                fprintf(stderr, "lgpu synth: unknown type '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--vocab") && has)
            o.vocab = argv[++i];
        else if (!strcmp(a, "--seed") && has)
            o.seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--threads") && has)
            o.nthreads = atoi(argv[++i]);
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has)
            o.out = argv[++i];
        else {
            fprintf(stderr, "lgpu synth: unexpected argument %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!o.shape || o.type < 0 || !o.out) {
        usage(stderr);
        return 2;
    }
    prog_state ps = {-100, isatty(2) ? 1 : 10, time(NULL)};
    o.progress = progress;
    o.ud = &ps;
    int st = lgpu_synth(&o);
    if (st) {
        fprintf(stderr, "\nlgpu synth: %s (%s)\n", lgpu_last_error(), lgpu_err_name(st));
        return 1;
    }
    printf("wrote %s (%s, %s, seed %" PRIu64 ") in %lds\n", o.out, o.shape, lgpu_type_name(o.type), o.seed,
           (long)(time(NULL) - ps.start));
    return 0;
}
