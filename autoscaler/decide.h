/* Scaling decisions: pure logic, numbers in, a decision out.
 *
 * No clock, no I/O, no engine: the caller passes `now`, the samples or their
 * aggregate, the replica counts and the forecast; the server (scaler.c) and
 * the backtest (simulate.c) drive the very same functions.
 *
 * The rules, in order (docs/autoscaler.md has the details and the sources):
 *  1. Below min_replicas: scale up to it (a bound, needs no data).
 *  2. No sample in the window, or the newest older than stale_after: hold.
 *  3. The HPA rule, desired = ceil(ready * value / target) outside the
 *     tolerance band, and the sustained threshold rules (+1 / -1 replica),
 *     give the reactive recommendation.
 *  4. The forecast: the upper bound of the load's peak over the lead time,
 *     held under the target, gives the forecast recommendation.
 *  5. Up when either says so (the larger wins); down only when every
 *     reactive rule and the forecast agree (the least reduction wins).
 *  6. HPA stabilization: the lowest recommendation of the scale-up window,
 *     the highest of the scale-down window.
 *  7. Cooldowns, step limits per period (HPA behavior policies), then
 *     [min_replicas, max_replicas]. */
#ifndef SCALECAST_DECIDE_H
#define SCALECAST_DECIDE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "policy.h"

/* ---- Aggregation across series -------------------------------------------- */

/* One series' points, ascending by ts. Borrowed. */
struct decide_series {
    const double *ts;
    const double *v;
    size_t n;
};

struct decide_agg {
    bool ok;       /* at least one sample in the window */
    double value;  /* see decide_aggregate */
    double newest; /* time of the newest sample in the window */
    int nseries;   /* series with at least one sample in the window */
    size_t nsamples;
};

/* Combines the samples of all series with from < ts <= to. avg: the mean of
 * each series' own mean (as the HPA averages per-pod usage), so a series
 * reporting more often, or a new one with few samples yet, does not weigh
 * more; value x nseries is then the total load. max: the largest sample.
 * p95: the 95th percentile of all samples (linear interpolation between
 * closest ranks, as numpy's default). NaN samples are skipped. */
void decide_aggregate(enum policy_agg agg, const struct decide_series *s, size_t ns, double from,
                      double to, struct decide_agg *out /* out */);

/* The load history the forecast works on: for each bucket
 * (from + k*step, from + (k+1)*step] up to `to` that holds samples, the
 * aggregate times the number of series reporting in it (value x replicas,
 * so that a change in the replica count does not look like a change in
 * demand), stamped at the bucket's end. Returns the number of points, with
 * new arrays *ts and *load (caller frees both; NULL when 0). */
size_t decide_load_history(enum policy_agg agg, const struct decide_series *s, size_t ns,
                           double from, double to, double step, double **ts /* out */,
                           double **load /* out */);

/* ---- Forecast ------------------------------------------------------------ */

struct decide_forecast {
    bool ok;        /* false: see why */
    char model[16]; /* the model that made it (auto's choice) */
    double origin;  /* time of the last history point */
    double horizon; /* seconds */
    double peak;    /* highest forecast load over (origin, origin + horizon] */
    double peak_lower, peak_upper;
    double peak_at;
    char why[192]; /* when !ok: why there is no forecast */
};

/* Forecasts the load history (ts[], load[], as decide_load_history makes it)
 * with the policy's model, horizon and confidence. Never fails: when the
 * forecast is off or cannot be made, out->ok is false and out->why says why. */
void decide_forecast(const struct policy *p, const double *ts, const double *load, size_t n,
                     struct decide_forecast *out /* out */);

/* ---- Decisions ------------------------------------------------------------- */

/* What the rules remember between evaluations of one service: the
 * recommendations of the stabilization windows, the last scale times for the
 * cooldowns, the scale events for the step limits and the sustained-threshold
 * timers. Opaque; one per service. */
struct decide_state;

struct decide_state *decide_state_new(void);
void decide_state_free(struct decide_state *st); /* NULL-safe */

struct decide_input {
    double now;
    int current; /* replicas the target has (running and starting) */
    int ready;   /* replicas whose samples are in the aggregate; <= 0: current */
    struct decide_agg metric;
    const struct decide_forecast *forecast; /* NULL: none (policy forecast off) */
};

enum decide_action { DECIDE_HOLD = 0, DECIDE_SCALE_UP, DECIDE_SCALE_DOWN };

/* "hold", "scale_up", "scale_down" (the words of the decision log). */
const char *decide_action_name(enum decide_action a);

struct decision {
    enum decide_action action;
    double now;
    int current, ready;
    int desired; /* what the rules asked for (reactive and forecast combined) */
    int target;  /* after stabilization, cooldowns, step limits and [min, max] */
    bool data_ok;
    double value; /* the aggregated metric (NAN without data) */
    double age;   /* seconds since its newest sample */
    int nseries;
    double load; /* value x ready */
    /* The numbers behind it; -1 where a rule is off or had no say. */
    int rule_target;                 /* the HPA rule */
    double up_for;                   /* seconds above scale_up_above (0 when not above) */
    double down_for;                 /* seconds below scale_down_below */
    int rule_threshold;              /* the threshold rules */
    int reactive;                    /* the reactive recommendation */
    int rule_forecast;               /* the forecast's recommendation */
    struct decide_forecast forecast; /* copy of the input (ok false when none) */
    char limit[96];                  /* what held or capped the change, e.g. "max_step_up 2"; "" */
    char reason[640];
};

/* Evaluates the policy. Updates the timers and recommendation history in st
 * (they are observations, whether or not the decision is carried out) and
 * fills *out. Returns 0, or -EINVAL when the input is unusable (now or
 * current not finite/negative), leaving st untouched. */
int decide_evaluate(const struct policy *p, const struct decide_input *in, struct decide_state *st,
                    struct decision *out /* out */);

/* Tells st that decision d was carried out at time now (the replica count
 * changed from d->current to d->target): starts the cooldowns, counts the
 * change against the step limits and restarts the sustained timers. Call it
 * only when the change was applied. */
void decide_applied(struct decide_state *st, const struct decision *d, double now);

/* The numbers behind a decision as a JSON object (new reference), for the
 * audit log's inputs column and the API. */
json_t *decide_inputs_json(const struct policy *p, const struct decision *d);

#endif
