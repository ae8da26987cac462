/* lgpu: the command-line front end. `lgpu <command> [args]`. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "lgpu/lgpu.h"

int lgpu_cmd_version(int argc, char **argv) {
    (void)argc;
    (void)argv;
    printf("lgpu %s\n", LGPU_VERSION_STRING);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: lgpu <command> [options]\n\ncommands:\n");
    for (const lgpu_cmd *c = lgpu_commands; c->name; c++) fprintf(f, "  %-12s %s\n", c->name, c->summary);
    fprintf(f, "\n`lgpu <command> --help` describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (const lgpu_cmd *c = lgpu_commands; c->name; c++)
        if (!strcmp(c->name, argv[1])) return c->fn(argc - 1, argv + 1);
    fprintf(stderr, "lgpu: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
