/* Predictor internals shared by the model files (not part of the contract).
 *
 * The engine (predictor.c) validates the input, measures the sampling step,
 * picks the rolling-origin evaluation origins and the forecast path, then asks
 * each model for:
 *   - its forecast at now + horizon and the peak of its forecast path,
 *   - a textbook half-width for the interval (used until enough errors exist),
 *   - its out-of-sample forecasts from each evaluation origin o, for the
 *     sample o + h (fe[]) and the peak over samples o+1 .. o+h (pe[]), made
 *     from data up to o only.
 * A model may leave its forecast (value, peak, half) to a second function
 * that the engine calls only when that forecast is returned (asked for, or
 * picked by auto): seasonal does, because its GSL fit costs more than its
 * whole evaluation. */
#ifndef SCALECAST_PREDICTOR_INT_H
#define SCALECAST_PREDICTOR_INT_H

#include <stddef.h>

#include "predictor.h"

/* Most points on a forecast path scanned for its peak. */
#define PRED_PATH_MAX 48

struct pctx {
    const double *ts, *v;
    size_t n;
    const struct pred_opts *o;
    double step;                /* median sampling interval */
    size_t h;                   /* horizon in steps, >= 1 */
    double tnow, tgt;           /* last sample time, and tnow + horizon */
    size_t e0, ne;              /* evaluation origins e0 .. e0+ne-1 (targets at +h) */
    double path[PRED_PATH_MAX]; /* times scanned for the final peak; last is tgt */
    size_t npath;
    double z; /* standard normal quantile (1 + confidence) / 2 */
};

struct pmodel {
    int rc;           /* 0, or -ENODATA when the model cannot run on this input */
    size_t need_n;    /* on -ENODATA: points needed, or 0 */
    double need_span; /* on -ENODATA: seconds needed, or 0 */
    double value;     /* forecast at tgt */
    double peak;      /* highest forecast on the path */
    double peak_at;
    double half; /* textbook half-width at the requested confidence */
    int eval_ok; /* fe[]/pe[] hold out-of-sample forecasts (0: not scored) */
    double *fe;  /* [ne] forecasts of v[o+h] from origin o = e0 + k (engine-owned) */
    double *pe;  /* [ne] forecast peaks over v[o+1 .. o+h] */
};

/* Forecast path function: value of model state `st` at time t. */
typedef double (*pred_at_fn)(const void *st, double t);

/* Fills m->peak/peak_at from the path times in c (m->value must be set). */
void pred_path_peak(const struct pctx *c, pred_at_fn at, const void *st, struct pmodel *m);

/* out[k] = phi^k for k = 0 .. h. */
void pred_pow_table(double phi, size_t h, double *out);

void pm_last(const struct pctx *c, struct pmodel *m);
void pm_linear(const struct pctx *c, struct pmodel *m);
void pm_seasonal(const struct pctx *c, struct pmodel *m);
/* seasonal's forecast, after pm_seasonal left m->rc == 0: fills value, peak,
 * half, or sets m->rc = -ENODATA (need_n) when the fit fails. */
void pm_seasonal_final(const struct pctx *c, struct pmodel *m);
void pm_holt(const struct pctx *c, struct pmodel *m);
void pm_snaive(const struct pctx *c, struct pmodel *m);

#endif
