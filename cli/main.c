/* scalecast: the command-line client (REST queries and backtests). */
#include <stdio.h>
#include <string.h>

#include <gsl/gsl_errno.h>

#include "commands.h"

struct command {
    const char *name;
    const char *sub;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"status", NULL, cmd_status, "the autoscaled services, as kubectl get hpa shows them"},
    {"nodes", NULL, cmd_nodes, "the nodes reporting, with their latest metrics"},
    {"decisions", NULL, cmd_decisions, "the autoscaler's decision log, newest first"},
    {"forecast", NULL, cmd_forecast, "forecast one series: NODE METRIC"},
    {"export", NULL, cmd_export, "stored samples as CSV on stdout"},
    {"backtest", "forecast", cmd_backtest_forecast,
     "replay a recorded trace through the predictor and score each model"},
    {"backtest", "autoscale", cmd_backtest_autoscale,
     "replay a trace as a service's demand through the autoscaling policy"},
};

static void usage(FILE *fp)
{
    fprintf(fp, "usage: scalecast COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s%s", commands[i].name, commands[i].sub ? " " : "",
                 commands[i].sub ? commands[i].sub : "");
        fprintf(fp, "  %-20s %s\n", name, commands[i].summary);
    }
    fprintf(fp, "\nThe REST commands talk to scalecastd at --server URL (env SCALECAST_SERVER,\n"
                "default http://127.0.0.1:8080) with --token (env SCALECAST_TOKEN); --json\n"
                "prints the server's JSON answer instead of a table.\n"
                "Exit status: 0 ok, 1 the work failed, 2 usage error, 3 server unreachable or\n"
                "answered an error.\n"
                "Run 'scalecast COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    /* The predictor checks GSL's status codes itself (see scalecastd). */
    gsl_set_error_handler_off();
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("scalecast %s\n", SCALECAST_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const struct command *c = &commands[i];
        if (strcmp(argv[1], c->name) != 0)
            continue;
        if (!c->sub)
            return c->fn(argc - 1, argv + 1);
        if (argc >= 3 && strcmp(argv[2], c->sub) == 0)
            return c->fn(argc - 2, argv + 2);
    }
    fprintf(stderr, "scalecast: unknown command '%s%s%s'\n", argv[1], argc >= 3 ? " " : "",
            argc >= 3 ? argv[2] : "");
    usage(stderr);
    return 2;
}
