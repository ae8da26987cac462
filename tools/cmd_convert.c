/* lgpu convert IN OUT.gguf [--tokenizer FILE] [--type f32|f16|bf16] [--name NAME] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lgpu/convert.h"
#include "lgpu/lgpu.h"

static void note(void *ud, const char *msg) {
    (void)ud;
    fprintf(stderr, "lgpu convert: note: %s\n", msg);
}

static void usage(FILE *f) {
    fprintf(f, "usage: lgpu convert IN OUT.gguf [--tokenizer FILE] [--type f32|f16|bf16] [--name NAME] [--threads N]\n"
               "  IN: a llama2.c checkpoint (.bin), a Hugging Face directory (config.json + *.safetensors)\n"
               "      or a GGUF. --tokenizer: llama2.c tokenizer.bin or a GGUF vocabulary (default: the\n"
               "      source's own). --type: matrix type (default: keep the source's).\n");
}

int lgpu_cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    lgpu_convert_opts o = {.out_type = -1, .note = note};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--tokenizer") && i + 1 < argc)
            o.tokenizer = argv[++i];
        else if (!strcmp(a, "--name") && i + 1 < argc)
            o.name = argv[++i];
        else if (!strcmp(a, "--threads") && i + 1 < argc)
            o.nthreads = atoi(argv[++i]);
        else if (!strcmp(a, "--type") && i + 1 < argc) {
            o.out_type = lgpu_type_from_name(argv[++i]);
            if (o.out_type != LGPU_TYPE_F32 && o.out_type != LGPU_TYPE_F16 && o.out_type != LGPU_TYPE_BF16) {
                fprintf(stderr, "lgpu convert: --type must be f32, f16 or bf16 (use lgpu quantize for others)\n");
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "lgpu convert: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else if (!in)
            in = a;
        else if (!out)
            out = a;
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!in || !out) {
        usage(stderr);
        return 2;
    }
    int st = lgpu_convert_to_gguf(in, out, &o);
    if (st) {
        fprintf(stderr, "lgpu convert: %s (%s)\n", lgpu_last_error(), lgpu_err_name(st));
        return 1;
    }
    printf("wrote %s\n", out);
    return 0;
}
