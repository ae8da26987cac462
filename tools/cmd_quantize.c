/* lgpu quantize IN.gguf OUT.gguf TYPE */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lgpu/convert.h"
#include "lgpu/lgpu.h"

static bool show_progress;

static void note(void *ud, const char *msg) {
    (void)ud;
    fprintf(stderr, "%slgpu quantize: %s\n", show_progress ? "\r" : "", msg);
}

static void progress(void *ud, const char *tensor, uint64_t done, uint64_t total) {
    (void)ud;
    fprintf(stderr, "\r[%3d%%] %-40s", total ? (int)(done * 100 / total) : 100, tensor);
}

static void usage(FILE *f) {
    fprintf(f, "usage: lgpu quantize IN.gguf OUT.gguf TYPE [--threads N]\n"
               "  TYPE: q8_0, q4_0, q4_k, q6_k, f16, bf16 (or f32). 2-D weights are converted; 1-D\n"
               "  tensors (norms) stay as they are. A matrix whose rows do not fit the type's block\n"
               "  size falls back (K-quants -> q8_0 if rows are a multiple of 32, else f16).\n");
}

int lgpu_cmd_quantize(int argc, char **argv) {
    const char *pos[3] = {0};
    int npos = 0;
    lgpu_quantize_opts o = {.note = note};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            o.nthreads = atoi(argv[++i]);
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "lgpu quantize: unknown option %s\n", argv[i]);
            return 2;
        } else if (npos < 3)
            pos[npos++] = argv[i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (npos != 3) {
        usage(stderr);
        return 2;
    }
    int type = lgpu_type_from_name(pos[2]);
    if (type < 0) {
        fprintf(stderr, "lgpu quantize: unknown type '%s'\n", pos[2]);
        return 2;
    }
    show_progress = isatty(2);
    if (show_progress) o.progress = progress;
    lgpu_quantize_stats s;
    int st = lgpu_quantize_gguf(pos[0], pos[1], type, &o, &s);
    if (o.progress) fprintf(stderr, "\n");
    if (st) {
        fprintf(stderr, "lgpu quantize: %s (%s)\n", lgpu_last_error(), lgpu_err_name(st));
        return 1;
    }
    printf("wrote %s: %" PRId64 " tensors %s, %" PRId64 " fell back to another type, %" PRId64 " kept\n", pos[1],
           s.n_quantized, lgpu_type_name(type), s.n_fallback, s.n_kept);
    return 0;
}
