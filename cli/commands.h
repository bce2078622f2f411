/* The `scalecast` command line: one function per subcommand.
 * Each takes the arguments after its own name (argv[0] is the subcommand) and
 * returns the process exit status: 0 success, 1 failure of the work itself,
 * 2 usage error, 3 server unreachable or answered an error. */
#ifndef SCALECAST_CLI_COMMANDS_H
#define SCALECAST_CLI_COMMANDS_H

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,   /* the work itself failed (e.g. writing the output) */
    CLI_EXIT_USAGE = 2,  /* bad arguments */
    CLI_EXIT_SERVER = 3, /* scalecastd unreachable, or it answered an error */
};

int cmd_backtest_forecast(int argc, char **argv);
int cmd_backtest_autoscale(int argc, char **argv);

/* REST queries (status.c, nodes.c, decisions.c, forecast.c, export.c). */
int cmd_status(int argc, char **argv);
int cmd_nodes(int argc, char **argv);
int cmd_decisions(int argc, char **argv);
int cmd_forecast(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
