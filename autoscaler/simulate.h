/* A simulated service for backtesting a policy: pure, numbers in and out.
 *
 * The model (docs/autoscaler.md, "Backtest"): a recorded series is the
 * service's demand, in units of one replica's capacity. At each point of the
 * series, in order:
 *   1. replicas whose start-up delay has passed become ready;
 *   2. utilization = demand / ready replicas (x 100, in %), unbounded, as if
 *      the metric measured offered load;
 *   3. the policy is evaluated through decide_evaluate with the same
 *      aggregation, load history and forecast as the server uses;
 *   4. a scale-up starts new replicas, ready after the start-up delay; a
 *      scale-down removes starting replicas first, then ready ones, at once.
 * A step lasts until the next point, at most twice the median spacing (the
 * demand in a longer gap is unknown and not counted). */
#ifndef SCALECAST_SIMULATE_H
#define SCALECAST_SIMULATE_H

#include <stddef.h>

#include "decide.h"
#include "policy.h"

struct sim_opts {
    double startup_delay; /* seconds before a started replica serves (default 120) */
    int initial_replicas; /* 0: what the policy's rule asks for the first demand */
};

void sim_opts_default(struct sim_opts *o);

/* One step, as the CSV of `scalecast backtest autoscale --csv` writes it. */
struct sim_step {
    double ts;
    double demand;      /* replicas' worth of work */
    int replicas;       /* running and starting, before the decision */
    int ready;          /* serving */
    double utilization; /* % of the ready replicas' capacity */
    double forecast;    /* upper bound of the demand's forecast peak, in replicas; NAN: none */
    int desired;        /* what the rules asked for */
    int target;         /* replicas after the decision */
    enum decide_action action;
};

struct sim_result {
    size_t steps;
    double seconds;          /* simulated time counted */
    double over_threshold_s; /* utilization above policy_up_threshold() */
    double above_capacity_s; /* demand above the ready replicas */
    double replica_hours;    /* running and starting replicas x time */
    int actions;             /* scale-ups plus scale-downs */
    int scale_ups, scale_downs;
    int peak_replicas;
    double threshold; /* the utilization counted as over threshold */
};

/* Called after each step's decision (may be NULL). */
typedef void (*sim_step_fn)(void *arg, const struct sim_step *s, const struct decision *d);

/* Replays demand[0..n-1] at times ts[] (ascending) against policy p.
 * Returns 0 with *out filled, or -EINVAL for an unusable input (n == 0,
 * unsorted times, negative or non-finite demand, bad options). */
int sim_run(const struct policy *p, const double *ts, const double *demand, size_t n,
            const struct sim_opts *o, sim_step_fn fn, void *arg, struct sim_result *out /* out */);

#endif
