/* `lgpu info [--device SEL]`: the Vulkan devices and which one is selected. */
#include <stdio.h>
#include <string.h>

#include "lgpu/device.h"
#include "lgpu/lgpu.h"

int lgpu_cmd_info(int argc, char **argv) {
    const char *sel = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: lgpu info [--device SEL]\n\n"
                   "Lists the Vulkan devices (memory, budget, subgroup size, FP16/INT8, 16-bit storage,\n"
                   "cooperative matrices, max binding) and which one lgpu selects and why.\n\n"
                   "  --device SEL   index, case-insensitive name substring, \"cpu\" or \"auto\"\n"
                   "                 (default: $LGPU_DEVICE, else automatic)\n");
            return 0;
        }
        if (!strcmp(argv[i], "--device") && i + 1 < argc) sel = argv[++i];
        else if (!strncmp(argv[i], "--device=", 9)) sel = argv[i] + 9;
        else {
            fprintf(stderr, "lgpu info: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    int st = lgpu_dev_print_info(stdout, sel);
    if (st) {
        fprintf(stderr, "lgpu info: %s: %s\n", lgpu_err_name(st), lgpu_last_error());
        return 1;
    }
    return 0;
}
