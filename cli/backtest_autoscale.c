/* scalecast backtest autoscale (placeholder until the backtest lands; exits 2). */
#include <stdio.h>

#include "commands.h"

int cmd_backtest_autoscale(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "scalecast backtest autoscale: not built yet\n");
    return 2;
}
