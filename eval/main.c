/* lgpu-eval: model evaluation. `lgpu-eval <command> [args]`. */
#include <stdio.h>
#include <string.h>

#include "eval.h"
#include "lgpu/lgpu.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} eval_cmd;

static const eval_cmd CMDS[] = {
    {"perplexity", lgpu_eval_perplexity, "perplexity of a text file (llama-perplexity's method)"},
    {"bench", lgpu_eval_bench, "load-test an OpenAI-compatible server: throughput and latency percentiles"},
    {"gate", lgpu_eval_gate, "fail when a bench result regressed against a baseline (CI)"},
    {"compare", lgpu_eval_compare, "base vs fine-tuned model: perplexity and task metrics, a report"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: lgpu-eval <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++) fprintf(f, "  %-12s %s\n", CMDS[i].name, CMDS[i].summary);
    fprintf(f, "\n`lgpu-eval <command> --help` describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("lgpu-eval %s\n", LGPU_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++)
        if (!strcmp(CMDS[i].name, argv[1])) return CMDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "lgpu-eval: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
