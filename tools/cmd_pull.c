/* lgpu pull ORG/NAME[:FILE]: download a model from the Hugging Face Hub into
 * the shared huggingface_hub cache and print its local path. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "lgpu/hub.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lgpu pull ORG/NAME[:FILE] [--revision R] [--quiet] [--progress] [--offline]\n"
            "\n"
            "Downloads a model from the Hugging Face Hub (resuming partial downloads) and\n"
            "prints its local path. Without :FILE the repo's .gguf is taken (Q4_0 preferred\n"
            "when there are several), else config.json + safetensors (prints the directory).\n"
            "\n"
            "  --revision R  branch, tag or commit (default main)\n"
            "  --quiet       no progress bar\n"
            "  --progress    a progress bar even when stderr is not a terminal\n"
            "  --offline     use the local cache only (like HF_HUB_OFFLINE=1)\n"
            "\n"
            "Environment: HF_TOKEN (gated/private repos), HF_ENDPOINT, HF_HUB_CACHE, HF_HOME,\n"
            "HF_HUB_OFFLINE.\n");
}

int lgpu_cmd_pull(int argc, char **argv) {
    lgpu_hub_opts o = {0};
    const char *spec = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--revision") && i + 1 < argc) {
            o.revision = argv[++i];
        } else if (!strncmp(a, "--revision=", 11)) {
            o.revision = a + 11;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            o.progress = LGPU_HUB_PROGRESS_OFF;
        } else if (!strcmp(a, "--progress")) {
            o.progress = LGPU_HUB_PROGRESS_ON;
        } else if (!strcmp(a, "--offline")) {
            o.offline = true;
        } else if (a[0] == '-' || spec) {
            fprintf(stderr, "lgpu pull: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        } else {
            spec = a;
        }
    }
    if (!spec) {
        usage(stderr);
        return 2;
    }
    char path[4096];
    int st = lgpu_hub_resolve(spec, path, sizeof path, &o);
    if (st) {
        fprintf(stderr, "lgpu pull: %s: %s\n", lgpu_strerror(st), lgpu_last_error());
        return 1;
    }
    printf("%s\n", path);
    return 0;
}
