/* Backtest replay: scores the predictor on a recorded series.
 *
 * Pure code (arrays in, scores out), shared by `scalecast backtest forecast`
 * and the tests. Each target sample j is forecast from the history up to its
 * origin i = j - steps (at most `window` seconds of it), through
 * pred_forecast_all, i.e. the very code the server runs, with the horizon
 * ts[j] - ts[i]. Scoring starts once `warmup` seconds of history precede the
 * origin.
 *
 * Besides the predictor's models the replay runs three reference baselines
 * ("peers") on the same targets, with their textbook intervals:
 *   peer:yesterday  the value one period (a day) before the target;
 *   peer:linreg-1h  least squares over the last hour, extrapolated (what the
 *                   seeds' Python autoscaler does with scikit-learn);
 *   peer:hw-daily   additive Holt-Winters with a daily season, smoothing
 *                   constants refitted once a day (Nelder-Mead on one-step
 *                   squared errors over the window), states updated online.
 *
 * Per series: MAE, MASE (MAE over the last value's MAE on the same targets),
 * interval coverage and mean interval width. */
#ifndef SCALECAST_BACKTEST_H
#define SCALECAST_BACKTEST_H

#include <stddef.h>

#include "predictor.h"

enum bt_series {
    BT_LAST = PRED_LAST,
    BT_LINEAR = PRED_LINEAR,
    BT_SEASONAL = PRED_SEASONAL,
    BT_HOLT = PRED_HOLT,
    BT_SNAIVE = PRED_SNAIVE,
    BT_AUTO = PRED_AUTO,
    BT_PEER_YESTERDAY,
    BT_PEER_LINREG,
    BT_PEER_HW,
    BT_NSERIES
};

/* Static display name of a series ("auto", "peer:hw-daily", ...). */
const char *bt_series_name(enum bt_series s);

struct bt_opts {
    struct pred_opts pred;      /* model options; horizon and model are set per step */
    size_t steps;               /* horizon in samples, >= 1 (default 1) */
    double window;              /* seconds of history per forecast (default 4 days) */
    double warmup;              /* history before the first scored origin; < 0:
                                 * max(window, 2 periods) (default -1) */
    double peer_window;         /* linreg peer's fit window, seconds (default 3600) */
    enum pred_model rows_model; /* whose per-step rows to keep (default auto) */
    int keep_rows;              /* 1: fill bt_result.rows */
    /* Called now and then with the targets done so far and the total (a
     * progress bar's hook; NULL: none). */
    void (*progress)(void *arg, size_t done, size_t total);
    void *progress_arg;
};

/* Fills *o with the defaults above (and pred_opts_default). */
void bt_opts_default(struct bt_opts *o);

struct bt_score {
    size_t n;        /* targets scored */
    double mae;      /* mean absolute error */
    double mase;     /* mae / the last value's mae on the same targets */
    double coverage; /* share of actual values inside [lower, upper] */
    double width;    /* mean upper - lower */
};

/* One forecast of rows_model. */
struct bt_row {
    double ts, actual, forecast, lower, upper;
    enum pred_model model; /* for auto: the model it chose */
};

struct bt_result {
    struct bt_score score[BT_NSERIES];
    size_t targets;                /* targets forecast by auto */
    size_t chosen[PRED_NCONCRETE]; /* how often auto chose each model */
    struct bt_row *rows;           /* [nrows] when keep_rows; owned */
    size_t nrows;
};

/* Replays ts[0..n-1] (strictly ascending), v[]. Returns 0 with *out filled
 * (release with bt_result_free), -EINVAL for bad options or input, -ENODATA
 * when no target has enough history before it (out zeroed). */
int bt_run(const double *ts, const double *v, size_t n, const struct bt_opts *o,
           struct bt_result *out /* out */);

void bt_result_free(struct bt_result *r);

#endif
