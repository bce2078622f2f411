/* A simulated service replaying recorded demand through the decision code. */
#include "simulate.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void sim_opts_default(struct sim_opts *o)
{
    o->startup_delay = 120;
    o->initial_replicas = 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_spacing(const double *ts, size_t n)
{
    if (n < 2)
        return 60;
    double *d = xmalloc((n - 1) * sizeof *d);
    for (size_t i = 0; i + 1 < n; i++)
        d[i] = ts[i + 1] - ts[i];
    qsort(d, n - 1, sizeof *d, cmp_double);
    double m = d[(n - 1) / 2];
    free(d);
    return m;
}

static int validate(const double *ts, const double *demand, size_t n, const struct sim_opts *o)
{
    if (n == 0 || !(o->startup_delay >= 0) || o->initial_replicas < 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(ts[i]) || !isfinite(demand[i]) || demand[i] < 0)
            return -EINVAL;
        if (i > 0 && ts[i] <= ts[i - 1])
            return -EINVAL;
    }
    return 0;
}

/* The replicas of the simulated service: the time each becomes ready, in
 * the order they were started (the newest last). */
struct fleet {
    double *ready_at;
    size_t n, cap;
};

static int fleet_ready(const struct fleet *f, double now)
{
    int r = 0;
    for (size_t i = 0; i < f->n; i++)
        r += f->ready_at[i] <= now;
    return r;
}

static void fleet_resize(struct fleet *f, int target, double ready_at)
{
    while ((int)f->n < target) {
        f->ready_at = xgrow(f->ready_at, &f->cap, f->n + 1, sizeof *f->ready_at);
        f->ready_at[f->n++] = ready_at;
    }
    if ((int)f->n > target)
        f->n = (size_t)target; /* the newest first: starting ones before serving ones */
}

/* Counts the step [now, now + dt) with the replicas after the decision:
 * those still starting begin to serve at their ready time. */
static void account(const struct fleet *f, double now, double dt, double demand,
                    struct sim_result *out)
{
    double t = now, end = now + dt;
    int ready = fleet_ready(f, now);
    size_t next = 0;
    while (next < f->n && f->ready_at[next] <= now)
        next++;
    while (t < end) {
        /* Starting replicas become ready in start order (same delay). */
        double until = next < f->n && f->ready_at[next] < end ? f->ready_at[next] : end;
        double util = demand * 100 / (ready > 0 ? ready : 1);
        if (util > out->threshold)
            out->over_threshold_s += until - t;
        if (demand > ready)
            out->above_capacity_s += until - t;
        t = until;
        if (next < f->n && f->ready_at[next] <= t) {
            ready++;
            next++;
        }
    }
    out->steps++;
    out->seconds += dt;
}

/* What the policy's rule asks for a demand, for the default start. */
static int initial_count(const struct policy *p, double demand)
{
    double level = p->has_target ? p->target_utilization : policy_up_threshold(p);
    int n = (int)ceil(demand * 100 / level - 1e-9);
    if (n < p->min_replicas)
        n = p->min_replicas;
    if (n > p->max_replicas)
        n = p->max_replicas;
    return n;
}

/* The forecast from the observed load so far, bucketed as the server does. */
static void forecast_at(const struct policy *p, const double *hts, const double *hload, size_t n,
                        double now, struct decide_forecast *f)
{
    struct decide_series one = {hts, hload, n};
    double *bts, *bload;
    size_t nb = decide_load_history(POLICY_AGG_AVG, &one, 1, now - p->forecast_history, now,
                                    p->forecast_resolution, &bts, &bload);
    decide_forecast(p, bts, bload, nb, f);
    free(bts);
    free(bload);
}

int sim_run(const struct policy *p, const double *ts, const double *demand, size_t n,
            const struct sim_opts *o, sim_step_fn fn, void *arg, struct sim_result *out)
{
    memset(out, 0, sizeof *out);
    if (validate(ts, demand, n, o) < 0)
        return -EINVAL;
    double spacing = median_spacing(ts, n);
    double *util = xmalloc(n * sizeof *util);
    double *load = xmalloc(n * sizeof *load);
    struct fleet fl = {0};
    int start = o->initial_replicas ? o->initial_replicas : initial_count(p, demand[0]);
    fleet_resize(&fl, start, -INFINITY);
    struct decide_state *st = decide_state_new();
    out->threshold = policy_up_threshold(p);
    size_t hist_from = 0; /* first observation inside the forecast history */

    for (size_t i = 0; i < n; i++) {
        double now = ts[i];
        double dt = i + 1 < n ? fmin(ts[i + 1] - now, 2 * spacing) : spacing;
        struct sim_step s = {.ts = now, .demand = demand[i], .replicas = (int)fl.n};
        s.ready = fleet_ready(&fl, now);
        /* With nothing serving, all the demand is queued: report it as the
         * load of one replica so the rules still see it. */
        util[i] = demand[i] * 100 / (s.ready > 0 ? s.ready : 1);
        load[i] = demand[i] * 100;
        s.utilization = util[i];

        struct decide_series obs = {ts, util, i + 1};
        struct decide_input in = {.now = now, .current = s.replicas, .ready = s.ready};
        decide_aggregate(p->aggregation, &obs, 1, now - p->window, now, &in.metric);
        in.metric.nseries = s.ready;
        struct decide_forecast f;
        if (p->forecast) {
            while (hist_from < i && ts[hist_from] <= now - p->forecast_history)
                hist_from++;
            forecast_at(p, ts + hist_from, load + hist_from, i + 1 - hist_from, now, &f);
            in.forecast = &f;
        }
        struct decision d;
        decide_evaluate(p, &in, st, &d);
        s.forecast = in.forecast && f.ok ? f.peak_upper / 100 : NAN;
        s.desired = d.desired;
        s.target = d.target;
        s.action = d.action;
        if (d.action != DECIDE_HOLD) {
            fleet_resize(&fl, d.target, now + o->startup_delay);
            decide_applied(st, &d, now);
            out->actions++;
            out->scale_ups += d.action == DECIDE_SCALE_UP;
            out->scale_downs += d.action == DECIDE_SCALE_DOWN;
        }
        if (fn)
            fn(arg, &s, &d);

        account(&fl, now, dt, demand[i], out);
        out->replica_hours += (double)fl.n * dt / 3600;
        if ((int)fl.n > out->peak_replicas)
            out->peak_replicas = (int)fl.n;
    }
    decide_state_free(st);
    free(fl.ready_at);
    free(util);
    free(load);
    return 0;
}
