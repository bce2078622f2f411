/* Tests of the backtest simulator (autoscaler/simulate.c). */
#include "simulate.h"
#include "unit.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

static struct policy base(void)
{
    struct policy p;
    policy_defaults(&p, "web");
    p.mode = POLICY_ENFORCE;
    p.target.kind = POLICY_TARGET_SWARM;
    p.max_replicas = 20;
    p.forecast = false;
    return p;
}

/* Checks every step against the bounds and integrates the replicas. */
struct watch {
    const struct policy *p;
    double last_ts;
    int last_target;
    double replica_s;
    int out_of_bounds;
    int first_up_replicas;
    int ups, downs;
};

static void on_step(void *arg, const struct sim_step *s, const struct decision *d)
{
    struct watch *w = arg;
    if (w->last_ts > 0)
        w->replica_s += w->last_target * (s->ts - w->last_ts);
    w->last_ts = s->ts;
    w->last_target = s->target;
    if (s->target < w->p->min_replicas || s->target > w->p->max_replicas)
        w->out_of_bounds++;
    if (s->action == DECIDE_SCALE_UP && w->ups++ == 0)
        w->first_up_replicas = s->target;
    w->downs += s->action == DECIDE_SCALE_DOWN;
    CHECK(s->target == d->target && s->desired == d->desired);
    CHECK(s->utilization == s->demand * 100 / s->ready);
}

static void test_step_demand(void)
{
    /* 2 replicas' worth for 2 h, 6 for 2 h, 2 for 2 h, one point a minute. */
    enum { N = 360 };
    double ts[N], demand[N];
    for (int i = 0; i < N; i++) {
        ts[i] = 1e9 + 60.0 * i;
        demand[i] = i >= 120 && i < 240 ? 6 : 2;
    }
    struct policy p = base();
    struct sim_opts o;
    sim_opts_default(&o);
    o.startup_delay = 120;
    struct watch w = {.p = &p};
    struct sim_result r;
    CHECK(sim_run(&p, ts, demand, N, &o, on_step, &w, &r) == 0);
    CHECK(r.steps == N);
    CHECK_NEAR(r.seconds, 60.0 * N, 1e-6);
    CHECK(w.out_of_bounds == 0);
    /* Starts at ceil(2 / 0.8) = 3; 200% of 3 asks 8, HPA's default step
     * limit max(4, 100%) lets 7 start at once, the 8th a minute later. */
    CHECK(w.first_up_replicas == 7);
    CHECK(r.peak_replicas == 8);
    /* Over threshold and short of capacity only while the first 4 start:
     * 2 minutes (7 ready carry 6 at 86% < 88%). */
    CHECK_NEAR(r.over_threshold_s, 120, 1e-6);
    CHECK_NEAR(r.above_capacity_s, 120, 1e-6);
    /* Back down to ceil(8 * 25 / 80) = 3 after the 300 s stabilization. */
    CHECK(r.scale_ups == 2 && r.scale_downs == 1 && r.actions == 3);
    CHECK(w.last_target == 3);
    CHECK_NEAR(r.replica_hours, (w.replica_s + w.last_target * 60.0) / 3600, 1e-9);
    CHECK_NEAR(r.threshold, 88, 1e-9);
}

/* Gaps in the trace count at most twice the usual spacing. */
static void test_gap(void)
{
    double ts[] = {0, 60, 120, 3720, 3780}, demand[] = {1, 1, 1, 1, 1};
    struct policy p = base();
    struct sim_opts o;
    sim_opts_default(&o);
    o.initial_replicas = 2;
    struct sim_result r;
    CHECK(sim_run(&p, ts, demand, 5, &o, NULL, NULL, &r) == 0);
    CHECK_NEAR(r.seconds, 60 + 60 + 120 + 60 + 60, 1e-9);
    CHECK(r.over_threshold_s == 0 && r.above_capacity_s == 0);
}

/* A daily rise and fall (a raised cosine from 8:00 to 16:00, 1 to 6
 * replicas' worth) with noise, and replicas that take 10 minutes to start:
 * the reactive rule is late at every step of the rise, the forecast (the
 * policy's default, auto) sees the rise coming. */
static void test_forecast_prescales(void)
{
    enum { STEP = 300, DAYS = 5, N = DAYS * 86400 / STEP };
    double *ts = malloc(N * sizeof *ts), *demand = malloc(N * sizeof *demand);
    unsigned seed = 12345;
    for (int i = 0; i < N; i++) {
        ts[i] = 1.7e9 + (double)STEP * i;
        double hour = fmod((double)STEP * i, 86400) / 3600;
        seed = seed * 1103515245u + 12345u;
        double noise = ((seed >> 16) % 1000) / 1000.0 * 0.2 - 0.1;
        double bump = hour >= 8 && hour < 16 ? 0.5 * (1 - cos(2 * M_PI * (hour - 8) / 8)) : 0;
        demand[i] = 1 + 5 * bump + noise;
    }
    struct policy p = base();
    struct sim_opts o;
    sim_opts_default(&o);
    o.startup_delay = 600;
    p.forecast_horizon = 900;
    p.forecast_resolution = STEP;
    struct sim_result off, on;
    CHECK(sim_run(&p, ts, demand, N, &o, NULL, NULL, &off) == 0);
    p.forecast = true;
    CHECK(sim_run(&p, ts, demand, N, &o, NULL, NULL, &on) == 0);
    fprintf(stderr, "  over threshold: %.0f s off, %.0f s with forecast; replica-h %.1f vs %.1f\n",
            off.over_threshold_s, on.over_threshold_s, off.replica_hours, on.replica_hours);
    /* Reactive: at least one start-up delay over the threshold every day. */
    CHECK(off.over_threshold_s >= DAYS * 600);
    CHECK(on.over_threshold_s <= 0.5 * off.over_threshold_s);
    CHECK(on.replica_hours <= 1.1 * off.replica_hours);
    free(ts);
    free(demand);
}

static void test_bad_input(void)
{
    struct policy p = base();
    struct sim_opts o;
    sim_opts_default(&o);
    struct sim_result r;
    double ts[] = {0, 60, 30}, demand[] = {1, 1, 1};
    CHECK(sim_run(&p, ts, demand, 3, &o, NULL, NULL, &r) == -EINVAL);
    double ts2[] = {0, 60}, bad[] = {1, -1};
    CHECK(sim_run(&p, ts2, bad, 2, &o, NULL, NULL, &r) == -EINVAL);
    CHECK(sim_run(&p, ts2, demand, 0, &o, NULL, NULL, &r) == -EINVAL);
    o.startup_delay = NAN;
    CHECK(sim_run(&p, ts2, demand, 2, &o, NULL, NULL, &r) == -EINVAL);
}

int main(void)
{
    RUN(test_step_demand);
    RUN(test_gap);
    RUN(test_forecast_prescales);
    RUN(test_bad_input);
    return UNIT_DONE();
}
