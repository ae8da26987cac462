/* The command table of `lgpu`. Add one declaration and one row per subcommand. */
#include "cmd.h"

#include <stddef.h>

int lgpu_cmd_version(int argc, char **argv);

const lgpu_cmd lgpu_commands[] = {
    {"version", lgpu_cmd_version, "print the lgpu version"},
    {NULL, NULL, NULL},
};
