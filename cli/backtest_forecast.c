/* scalecast backtest forecast (placeholder until the backtest lands; exits 2). */
#include <stdio.h>

#include "commands.h"

int cmd_backtest_forecast(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "scalecast backtest forecast: not built yet\n");
    return 2;
}
