/* The `scalecast` command line: one function per subcommand.
 * Each takes the arguments after its own name (argv[0] is the subcommand) and
 * returns the process exit status: 0 success, 1 failure of the work itself,
 * 2 usage error, 3 server unreachable or answered an error. */
#ifndef SCALECAST_CLI_COMMANDS_H
#define SCALECAST_CLI_COMMANDS_H

int cmd_backtest_forecast(int argc, char **argv);
int cmd_backtest_autoscale(int argc, char **argv);

#endif
