/* lgpu merge -m BASE --lora FILE[:SCALE]... -o OUT.gguf [--type TYPE]: LoRA
 * adapters folded into the base's weights (lgpu_merge_gguf), for tools
 * that cannot apply adapters, or to drop their cost at inference. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lgpu/convert.h"
#include "lgpu/lgpu.h"
#include "lgpu/lora.h"

#define MAX_ADAPTERS 64

static bool show_progress;

static void note(void *ud, const char *msg) {
    (void)ud;
    fprintf(stderr, "%slgpu merge: %s\n", show_progress ? "\r" : "", msg);
}

static void progress(void *ud, const char *tensor, uint64_t done, uint64_t total) {
    (void)ud;
    fprintf(stderr, "\r[%3d%%] %-40s", total ? (int)(done * 100 / total) : 100, tensor);
}

static void usage(FILE *f) {
    fprintf(f, "usage: lgpu merge -m BASE.gguf --lora FILE[:SCALE] [--lora ...] -o OUT.gguf [--type TYPE] [--threads N]\n"
               "  Writes BASE with every adapted projection W replaced by W + sum SCALE * (alpha/r) B A.\n"
               "  -m, --model BASE   base model: a GGUF file (default: the embedded " LGPU_MODEL_EMBEDDED_NAME ")\n"
               "  --lora FILE[:SCALE] a PEFT adapter folder or a GGUF LoRA, scale 1 by default (repeatable)\n"
               "  -o, --output OUT   the merged GGUF (metadata and tokenizer copied)\n"
               "  --type TYPE        f32, f16, bf16, q8_0, q4_0, q4_k, q6_k for every matrix (default: each\n"
               "                     matrix keeps the base's type; merged ones are re-quantized to it)\n"
               "  --threads N        conversion threads (default: all cores)\n");
}

int lgpu_cmd_merge(int argc, char **argv) {
    const char *base = NULL, *out = NULL, *type_name = NULL;
    char *paths[MAX_ADAPTERS];
    float scales[MAX_ADAPTERS];
    int n = 0, rc = 2;
    lgpu_merge_opts o = {.out_type = -1, .note = note};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            rc = 0;
            goto out;
        }
        if (!v) {
            fprintf(stderr, "lgpu merge: %s needs a value\n", a);
            goto out;
        }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) base = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--type")) type_name = v;
        else if (!strcmp(a, "--threads")) o.nthreads = atoi(v);
        else if (!strcmp(a, "--lora")) {
            if (n == MAX_ADAPTERS) {
                fprintf(stderr, "lgpu merge: at most %d adapters\n", MAX_ADAPTERS);
                goto out;
            }
            if (lgpu_lora_spec_parse(v, &paths[n], &scales[n])) {
                fprintf(stderr, "lgpu merge: %s\n", lgpu_last_error());
                goto out;
            }
            n++;
        } else {
            fprintf(stderr, "lgpu merge: unknown option %s\n", a);
            usage(stderr);
            goto out;
        }
    }
    if (!out || !n) {
        usage(stderr);
        goto out;
    }
    if (type_name && (o.out_type = lgpu_type_from_name(type_name)) < 0) {
        fprintf(stderr, "lgpu merge: unknown type '%s'\n", type_name);
        goto out;
    }
    if (!base) {
        base = LGPU_MODEL_EMBEDDED;
        fprintf(stderr, "lgpu merge: no -m given: merging into the embedded %s model\n", LGPU_MODEL_EMBEDDED_NAME);
    }
    show_progress = isatty(2);
    if (show_progress) o.progress = progress;
    int st = lgpu_merge_gguf(base, (const char *const *)paths, scales, n, out, &o);
    if (o.progress) fprintf(stderr, "\n");
    if (st) {
        fprintf(stderr, "lgpu merge: %s (%s)\n", lgpu_last_error(), lgpu_err_name(st));
        rc = 1;
        goto out;
    }
    printf("wrote %s: %s + %d adapter%s%s%s\n", out, base, n, n == 1 ? "" : "s", type_name ? ", matrices in " : "",
           type_name ? type_name : "");
    rc = 0;
out:
    for (int i = 0; i < n; i++) free(paths[i]);
    return rc;
}
