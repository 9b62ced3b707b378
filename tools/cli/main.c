/* main.c - the sdc command: dispatches to its subcommands.
 *
 *   sdc [generate] -m MODEL -p PROMPT -o out.png ...   text-to-image (the default)
 *   sdc info MODEL [--json]                            what a model file holds
 *   sdc convert IN OUT.gguf --type TYPE                 convert / quantize to GGUF
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: sdc [generate] -m MODEL -p PROMPT [-o OUT.png] [options]   text-to-image\n"
            "       sdc info MODEL [--json]                                   describe a model file\n"
            "       sdc info IMAGE.png                                        an image's generation parameters\n"
            "       sdc convert IN OUT.gguf --type TYPE [--quantize-all] [--vocab FILE]\n"
            "       sdc --version | --help\n"
            "\n"
            "MODEL: a GGUF file, a .safetensors checkpoint, or a diffusers folder.\n"
            "Run 'sdc COMMAND --help' for a command's options.\n"
            "\n");
    if (f == stdout) cmd_generate_help(f);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *c = argv[1];
    if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(c, "--version") || !strcmp(c, "version")) {
        printf("sdc %s\n", sdc_version());
        return 0;
    }
    if (!strcmp(c, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(c, "convert")) return cmd_convert(argc - 1, argv + 1);
    if (!strcmp(c, "generate")) return cmd_generate(argc, argv, 2);
    if (c[0] == '-') return cmd_generate(argc, argv, 1);
    fprintf(stderr, "sdc: unknown command '%s' (commands: generate, info, convert; see sdc --help)\n", c);
    return CLI_EXIT_USAGE;
}
