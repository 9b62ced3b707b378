/* cli.h - shared bits of the sdc command's subcommands (they include only sdc.h). */
#ifndef SDC_CLI_H
#define SDC_CLI_H

#include "sdc.h"

int cmd_info(int argc, char **argv);
int cmd_convert(int argc, char **argv);

/* Exit codes: 0 ok, 1 failure while working, 2 bad usage/arguments. */
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

#endif
