/* Subcommands of the `lgpu` CLI: each lives in tools/cmd_<name>.c, takes the
 * arguments after the subcommand name and returns the process exit code. */
#ifndef LGPU_TOOLS_CMD_H
#define LGPU_TOOLS_CMD_H

typedef int (*lgpu_cmd_fn)(int argc, char **argv);

typedef struct {
    const char *name;
    lgpu_cmd_fn fn;
    const char *summary;
} lgpu_cmd;

/* tools/commands.c: the table, terminated by {0}. */
extern const lgpu_cmd lgpu_commands[];

#endif
