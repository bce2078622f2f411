/* Options every REST command shares (--server, --token, --json, --timeout,
 * --help) and the value parsers the commands use. */
#ifndef SCALECAST_CLI_ARGS_H
#define SCALECAST_CLI_ARGS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "client.h"

#define CLI_DEFAULT_SERVER "http://127.0.0.1:8080"

enum {
    OPT_SERVER = 's',
    OPT_HELP = 'h',
    OPT_TOKEN = 0x100,
    OPT_JSON,
    OPT_TIMEOUT,
    OPT_COMMAND_FIRST = 0x200, /* commands number their own options from here */
};

/* getopt_long entries of the shared options; end a command's table with
 * them (then {NULL, 0, NULL, 0}). */
#define CLI_COMMON_OPTIONS                                                                         \
    {"server", required_argument, NULL, OPT_SERVER},                                               \
        {"token", required_argument, NULL, OPT_TOKEN}, {"json", no_argument, NULL, OPT_JSON},      \
        {"timeout", required_argument, NULL, OPT_TIMEOUT},                                         \
    {                                                                                              \
        "help", no_argument, NULL, OPT_HELP                                                        \
    }
#define CLI_COMMON_SHORT "hs:"

struct cli_common {
    const char *cmd; /* "scalecast status", for messages */
    struct client client;
    bool json;
    bool help;
};

/* Defaults, then the environment: SCALECAST_SERVER, SCALECAST_TOKEN. */
void cli_common_init(struct cli_common *co, const char *cmd);

/* Handles one option getopt_long returned if it is a shared one. Returns 0
 * when handled, 1 when the option is the command's own, or CLI_EXIT_USAGE
 * after printing why (an unknown option included). */
int cli_common_option(struct cli_common *co, int opt, const char *arg);

/* The help text of the shared options. */
void cli_common_usage(FILE *fp);

/* "scalecast CMD: what is wrong" on stderr, plus a hint to --help; returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_common *co, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A time for from/to: Unix seconds, 0 or a negative number of seconds
 * (relative to now, as the server reads it), "-DURATION" (-90s, -15m, -2h,
 * -7d) or a UTC date "YYYY-MM-DD[THH:MM[:SS]][Z]". Returns 0 or -1. */
int cli_parse_time(const char *s, double *out /* out */);

/* Validates a --from/--to option (cli_parse_time) and writes it as the
 * number the server reads into buf. Returns 0, or CLI_EXIT_USAGE after
 * saying what is wrong. */
int cli_time_option(const struct cli_common *co, const char *opt, const char *arg, char *buf,
                    size_t len);

/* Prints a JSON document (the server's answer) to stdout, indented.
 * Returns 0 or CLI_EXIT_FAIL if stdout could not be written. */
int cli_print_json(json_t *doc);

#endif
