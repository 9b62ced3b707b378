/* cli.h - shared bits of the sdc command's subcommands (they include only sdc.h). */
#ifndef SDC_CLI_H
#define SDC_CLI_H

#include <stdio.h>

#include "sdc.h"

int cmd_info(int argc, char **argv);
int cmd_convert(int argc, char **argv);
/* Options are argv[first..argc-1]. */
int cmd_generate(int argc, char **argv, int first);
void cmd_generate_help(FILE *f);

/* Exit codes: 0 ok, 1 failure while working, 2 bad usage/arguments. */
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

#endif
