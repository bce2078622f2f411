/* Forecasts of a metric from its recent history, with calibrated intervals.
 *
 * Pure code: numbers in, numbers out. No I/O, no clock, no randomness, no
 * global state, so the server and `scalecast backtest forecast` run the very
 * same arithmetic. Thread-safe; each call allocates its own scratch memory.
 *
 * Models (see docs/predictor.md for the method and the backtest figures):
 *   last      the last value (persistence).
 *   linear    least squares of value on time over the last `linear_window`
 *             seconds (gsl_fit_linear, or gsl_fit_wlinear with recency weights
 *             when `halflife` > 0).
 *   seasonal  trend + Fourier terms of `period` fitted by gsl_multifit_linear's
 *             SVD (the rolling-origin refits use running normal equations),
 *             plus an AR(1) correction of the current residual; needs two
 *             periods of history.
 *   holt      Holt's linear-trend exponential smoothing on irregular time, the
 *             smoothing constants chosen on the window's one-step errors.
 *   snaive    seasonal naive with an AR(1) correction: the mean of the values
 *             at the same phase of the last `profile_days` periods, plus the
 *             current deviation from that profile decayed at its AR(1) rate;
 *             needs two periods of history.
 *   auto      scores every available model by rolling-origin error on the
 *             window's recent history at the requested horizon; leaves the
 *             last value only for models whose gain over it is clear (a
 *             Diebold-Mariano test, `switch_t`), and then keeps the simplest
 *             one within `switch_margin` of the best.
 *
 * Intervals: once enough rolling-origin forecasts exist (`min_calib`), the
 * interval is the forecast plus empirical quantiles of the model's own
 * out-of-sample errors at this horizon (split-conformal ranks), so it stays
 * honest on autocorrelated, skewed CPU series. With fewer, each model's
 * textbook interval is used. Only data before each origin is used. */
#ifndef SCALECAST_PREDICTOR_H
#define SCALECAST_PREDICTOR_H

#include <stddef.h>

enum pred_model { PRED_LAST, PRED_LINEAR, PRED_SEASONAL, PRED_HOLT, PRED_SNAIVE, PRED_AUTO };

/* Number of concrete models (all but PRED_AUTO). */
#define PRED_NCONCRETE 5

/* Parses "last", "linear", "seasonal", "holt", "snaive", "auto". Returns 0, or -EINVAL
 * (leaving *out untouched). */
int pred_model_parse(const char *name, enum pred_model *out);

/* Static name of a model ("?" for an invalid value). */
const char *pred_model_name(enum pred_model m);

struct pred_opts {
    enum pred_model model; /* default PRED_AUTO */
    double horizon;        /* seconds ahead of the last sample, > 0 (default 300) */
    double confidence;     /* two-sided interval level, 0 < c < 1 (default 0.9) */
    double period;         /* seasonal period in seconds (default 86400) */
    int harmonics;         /* Fourier pairs of the seasonal model, 1..12 (default 3) */
    double linear_window;  /* seconds the linear model fits; 0: all given (default 3600) */
    double halflife;       /* recency weight half-life of the linear model in
                            * seconds; 0: unweighted (default 0) */
    int profile_days;      /* periods the snaive profile averages, 1..28 (default 1) */
    size_t eval_points;    /* rolling-origin forecasts auto scores and calibrates
                            * on, at most (default 576); at most half the window */
    size_t min_calib;      /* fewer rolling-origin errors than this: textbook
                            * intervals instead of empirical ones (default 30) */
    double switch_margin;  /* auto prefers a simpler model whose rolling-origin
                            * error is within this fraction of the best (0.02) */
    double switch_t;       /* auto leaves the last value only for a model whose
                            * rolling-origin gain over it has at least this
                            * Diebold-Mariano t statistic (default 1.5) */
};

/* Fills *o with the defaults above. */
void pred_opts_default(struct pred_opts *o);

struct pred_forecast {
    enum pred_model model; /* the model that made it (auto's choice) */
    double value;          /* forecast at now + horizon (now: the last sample's time) */
    double lower, upper;   /* interval at the requested confidence */
    double peak;           /* highest forecast over (now, now + horizon] */
    double peak_lower;     /* interval for the highest actual value over that time */
    double peak_upper;
    double peak_at; /* time of `peak`, Unix seconds */
    size_t n;       /* points used */
    double fit;     /* rolling-origin MAE of this model over that of the last
                     * value on the same origins (MASE-like; < 1: better
                     * than persistence); NAN when no origin was scored */
    double mae;     /* that rolling-origin MAE, in the metric's unit; NAN if none */
    size_t n_eval;  /* rolling-origin forecasts scored */
    int calibrated; /* 1: interval from empirical errors; 0: textbook */
    double step;    /* median sampling interval of the input, seconds */
    size_t steps;   /* horizon in sampling steps (>= 1) */
    /* Filled when -ENODATA is returned: the history that would be enough. */
    size_t need_n;    /* points needed (0 when the span is what is short) */
    double need_span; /* seconds of history needed (0 when points are short) */
};

/* Forecasts the series ts[0..n-1] (ascending Unix seconds, strictly
 * increasing, irregular spacing and gaps allowed) with values v[] using
 * options *o (NULL: defaults). Returns 0 with *out filled, -EINVAL for bad
 * options or input (a NaN or infinite value, unsorted or repeated times), or
 * -ENODATA when the history is too short for the model (then out->need_n /
 * out->need_span say what would do; pred_need_message formats it). The
 * series is borrowed and not modified. */
int pred_forecast(const double *ts, const double *v, size_t n, const struct pred_opts *o,
                  struct pred_forecast *out /* out */);

/* Like pred_forecast for every concrete model and auto at once, sharing the
 * work: out[m] for m = PRED_LAST .. PRED_AUTO (PRED_NCONCRETE + 1 entries).
 * o->model is ignored. Returns 0 when auto could forecast; a model that
 * could not (e.g. seasonal on one day of history) has out[m].n == 0 and its
 * need_* fields set. Each entry equals what pred_forecast returns for that
 * model alone. */
int pred_forecast_all(const double *ts, const double *v, size_t n, const struct pred_opts *o,
                      struct pred_forecast out[PRED_NCONCRETE + 1] /* out */);

/* Writes a message saying how much history `f` (from an -ENODATA return of
 * model m) needs, e.g. "seasonal needs 172800 s of history (2 periods); have
 * 3600 s". Returns `buf`. */
char *pred_need_message(enum pred_model m, const struct pred_forecast *f, double have_span,
                        size_t have_n, char *buf, size_t len);

#endif
