/* Tests of the decision logic (autoscaler/decide.c) on hand-made scenarios. */
#include "decide.h"
#include "unit.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* A policy as a config would give it, with a max and the forecast off. */
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

/* A fresh aggregate: value seen `age` seconds before now. */
static struct decide_input input(double now, int current, double value, double age)
{
    struct decide_input in = {.now = now, .current = current, .ready = current};
    in.metric.ok = true;
    in.metric.value = value;
    in.metric.newest = now - age;
    in.metric.nseries = current;
    in.metric.nsamples = (size_t)current;
    return in;
}

static struct decision eval(const struct policy *p, struct decide_input in, struct decide_state *st)
{
    struct decision d;
    int rc = decide_evaluate(p, &in, st, &d);
    CHECK(rc == 0);
    return d;
}

static int contains(const char *s, const char *needle)
{
    if (strstr(s, needle))
        return 1;
    fprintf(stderr, "  reason \"%s\" lacks \"%s\"\n", s, needle);
    return 0;
}

static void test_hpa_rule(void)
{
    struct policy p = base();
    struct decide_state *st = decide_state_new();
    /* 3 replicas at 120% of an 80% target: ceil(3 * 120 / 80) = 5. */
    struct decision d = eval(&p, input(1000, 3, 120, 5), st);
    CHECK(d.action == DECIDE_SCALE_UP);
    CHECK(d.rule_target == 5);
    CHECK(d.desired == 5 && d.target == 5);
    CHECK(contains(d.reason, "cpu avg 120% over 3 of 3 replicas"));
    CHECK(contains(d.reason, "target 80% -> 5"));
    CHECK(contains(d.reason, "3 -> 5"));
    decide_state_free(st);

    /* 85% is within the 10% tolerance of 80%: no change. */
    st = decide_state_new();
    d = eval(&p, input(1000, 3, 85, 5), st);
    CHECK(d.action == DECIDE_HOLD && d.target == 3);
    CHECK(contains(d.reason, "within tolerance 0.1"));
    decide_state_free(st);

    /* 3 x 80 / 80 must stay 3 despite floating-point rounding. */
    p.tolerance = 0;
    st = decide_state_new();
    d = eval(&p, input(1000, 3, 80.0000000000001, 5), st);
    CHECK(d.target == 3);
    decide_state_free(st);
}

static void test_missing_and_stale(void)
{
    struct policy p = base();
    struct decide_state *st = decide_state_new();
    struct decide_input in = input(1000, 3, 200, 5);
    in.metric.ok = false;
    struct decision d = eval(&p, in, st);
    CHECK(d.action == DECIDE_HOLD && d.target == 3 && !d.data_ok);
    CHECK(contains(d.reason, "no cpu samples in the last 60 s"));
    CHECK(contains(d.reason, "holding at 3"));

    /* A very low value that is 100 s old must not scale down either. */
    d = eval(&p, input(2000, 3, 1, 100), st);
    CHECK(d.action == DECIDE_HOLD && d.target == 3);
    CHECK(contains(d.reason, "stale: newest 100 s old > stale_after 60 s"));

    /* Below min_replicas is fixed even without data: it is a bound. */
    p.min_replicas = 2;
    in = input(3000, 1, 0, 0);
    in.metric.ok = false;
    d = eval(&p, in, st);
    CHECK(d.action == DECIDE_SCALE_UP && d.target == 2);
    CHECK(contains(d.reason, "below min_replicas 2"));
    decide_state_free(st);
}

static void test_step_limits(void)
{
    struct policy p = base();
    p.step_up.replicas = 2;
    p.step_up.percent = -1;
    p.step_up.period = 60;
    struct decide_state *st = decide_state_new();
    /* Wants ceil(3 * 180 / 80) = 7, at most 2 more per 60 s. */
    struct decision d = eval(&p, input(0, 3, 180, 0), st);
    CHECK(d.desired == 7 && d.target == 5 && d.action == DECIDE_SCALE_UP);
    CHECK(contains(d.reason, "3 -> 5, capped by max_step_up 2 per 60 s (wanted 7)"));
    decide_applied(st, &d, 0);
    /* 15 s later the period's 2 are used up: a hold that a limit stopped. */
    d = eval(&p, input(15, 5, 150, 0), st);
    CHECK(d.desired == 10 && d.target == 5 && d.action == DECIDE_HOLD);
    CHECK(contains(d.reason, "holding at 5, 10 held back by max_step_up 2"));
    /* Once the period has passed, 2 more. */
    d = eval(&p, input(61, 5, 150, 0), st);
    CHECK(d.target == 7);
    decide_state_free(st);

    /* HPA's default: max(4 replicas, 100%) per 15 s; from 10, 100% wins. */
    p = base();
    p.max_replicas = 100;
    st = decide_state_new();
    d = eval(&p, input(0, 10, 400, 0), st); /* wants 50 */
    CHECK(d.target == 20);
    CHECK(contains(d.reason, "max_step_up_percent 100% per 15 s"));
    decide_state_free(st);

    /* step_select = min: the smaller of 4 and 100% of 10. */
    p.step_select = POLICY_SELECT_MIN;
    st = decide_state_new();
    d = eval(&p, input(0, 10, 400, 0), st);
    CHECK(d.target == 14);
    decide_state_free(st);
}

static void test_bounds(void)
{
    struct policy p = base();
    p.max_replicas = 6;
    struct decide_state *st = decide_state_new();
    struct decision d = eval(&p, input(0, 5, 500, 0), st);
    CHECK(d.target == 6 && d.desired > 6);
    CHECK(contains(d.reason, "capped by max_replicas 6"));
    /* Someone scaled it by hand beyond max: back within bounds. */
    d = eval(&p, input(15, 9, 80, 0), st);
    CHECK(d.action == DECIDE_SCALE_DOWN && d.target == 6);
    decide_state_free(st);
}

/* HPA stabilization: a scale-down waits until every recommendation of the
 * last 300 s allows it; the highest one wins. */
static void test_down_stabilization(void)
{
    struct policy p = base();
    struct decide_state *st = decide_state_new();
    int cur = 4;
    double first_down = -1;
    for (double t = 0; t <= 900 && first_down < 0; t += 15) {
        double v = t < 300 ? 80 : 20; /* 20% of 4 replicas asks for 1 */
        struct decision d = eval(&p, input(t, cur, v, 0), st);
        if (d.action == DECIDE_SCALE_DOWN) {
            first_down = t;
            CHECK(d.target == 1);
            decide_applied(st, &d, t);
            cur = d.target;
        } else if (t >= 300) {
            CHECK(contains(d.reason, "scale_down_stabilization 300 s"));
        }
    }
    CHECK(first_down == 600);
    decide_state_free(st);

    /* A fresh state (a restarted server) does not scale down before it has
     * watched for a whole window. */
    st = decide_state_new();
    struct decision d = eval(&p, input(10000, 4, 10, 0), st);
    CHECK(d.action == DECIDE_HOLD);
    CHECK(contains(d.reason, "observed"));
    d = eval(&p, input(10300, 4, 10, 0), st);
    CHECK(d.action == DECIDE_SCALE_DOWN);
    decide_state_free(st);
}

static void test_thresholds(void)
{
    struct policy p = base();
    p.has_target = false;
    p.has_up_threshold = true;
    p.scale_up_above = 90;
    p.scale_up_for = 60;
    p.has_down_threshold = true;
    p.scale_down_below = 30;
    p.scale_down_for = 120;
    p.scale_down_stabilization = 0;
    struct decide_state *st = decide_state_new();
    struct decision d = eval(&p, input(0, 3, 95, 0), st);
    CHECK(d.action == DECIDE_HOLD);
    CHECK(contains(d.reason, "> 90% for 0 s (not yet sustained)"));
    d = eval(&p, input(30, 3, 97, 0), st);
    CHECK(d.action == DECIDE_HOLD);
    d = eval(&p, input(60, 3, 96, 0), st);
    CHECK(d.action == DECIDE_SCALE_UP && d.target == 4);
    CHECK(contains(d.reason, "> 90% for 60 s; 3 -> 4"));
    decide_applied(st, &d, 60);
    /* The next replica needs its own sustained minute. */
    d = eval(&p, input(90, 4, 95, 0), st);
    CHECK(d.action == DECIDE_HOLD);
    d = eval(&p, input(120, 4, 95, 0), st);
    CHECK(d.action == DECIDE_SCALE_UP && d.target == 5);
    decide_applied(st, &d, 120);
    /* A dip breaks "sustained". */
    d = eval(&p, input(150, 5, 50, 0), st);
    d = eval(&p, input(165, 5, 99, 0), st);
    d = eval(&p, input(200, 5, 99, 0), st);
    CHECK(d.action == DECIDE_HOLD);
    /* Below 30% for 120 s: one fewer. */
    d = eval(&p, input(300, 5, 10, 0), st);
    CHECK(d.action == DECIDE_HOLD);
    d = eval(&p, input(420, 5, 10, 0), st);
    CHECK(d.action == DECIDE_SCALE_DOWN && d.target == 4);
    decide_state_free(st);
}

static void test_cooldowns(void)
{
    struct policy p = base();
    p.scale_up_cooldown = 120;
    p.scale_down_cooldown = 600;
    p.scale_down_stabilization = 0;
    struct decide_state *st = decide_state_new();
    struct decision d = eval(&p, input(0, 2, 160, 0), st);
    CHECK(d.target == 4);
    decide_applied(st, &d, 0);
    d = eval(&p, input(15, 4, 160, 0), st);
    CHECK(d.action == DECIDE_HOLD && d.desired == 8);
    CHECK(contains(d.reason, "scale_up_cooldown 120 s (105 s left)"));
    d = eval(&p, input(120, 4, 160, 0), st);
    CHECK(d.target == 8);
    decide_applied(st, &d, 120);
    /* A scale-down waits 600 s after any scaling. */
    d = eval(&p, input(300, 8, 10, 0), st);
    CHECK(d.action == DECIDE_HOLD);
    CHECK(contains(d.reason, "scale_down_cooldown 600 s (420 s left)"));
    d = eval(&p, input(720, 8, 10, 0), st);
    CHECK(d.action == DECIDE_SCALE_DOWN && d.target == 1);
    decide_state_free(st);
}

/* Replicas still starting: HPA counts them as idle when scaling up, so the
 * same load does not ask for them twice, and never scales down meanwhile. */
static void test_unready(void)
{
    struct policy p = base();
    p.scale_down_stabilization = 0;
    struct decide_state *st = decide_state_new();
    struct decide_input in = input(0, 5, 100, 0);
    in.ready = 3; /* load 300 asks for 4, already have 5 */
    struct decision d = eval(&p, in, st);
    CHECK(d.action == DECIDE_HOLD && d.target == 5);
    CHECK(contains(d.reason, "2 of 5 replicas still starting"));
    in = input(15, 5, 20, 0);
    in.ready = 3;
    d = eval(&p, in, st);
    CHECK(d.action == DECIDE_HOLD);
    CHECK(contains(d.reason, "no scale-down while 2 of 5 replicas do not report"));
    decide_state_free(st);
}

static struct decide_forecast fc(double peak, double lo, double hi, double at)
{
    struct decide_forecast f = {.ok = true,
                                .horizon = 120,
                                .peak = peak,
                                .peak_lower = lo,
                                .peak_upper = hi,
                                .peak_at = at};
    snprintf(f.model, sizeof f.model, "holt");
    return f;
}

static void test_forecast_rules(void)
{
    struct policy p = base();
    p.forecast = true;
    p.scale_down_stabilization = 0;
    struct decide_state *st = decide_state_new();
    /* Now 80% of 3 (load 240): reactive holds; the forecast's upper bound
     * 306 = 102% of 3 asks ceil(306 / 80) = 4. */
    struct decide_forecast f = fc(285, 264, 306, 120);
    struct decide_input in = input(0, 3, 80, 0);
    in.forecast = &f;
    struct decision d = eval(&p, in, st);
    CHECK(d.reactive == 3 && d.rule_forecast == 4);
    CHECK(d.action == DECIDE_SCALE_UP && d.target == 4);
    CHECK(contains(d.reason, "forecast peak 95% [88, 102] in 120 s (holt) -> 4"));
    decide_state_free(st);

    /* Reactive wants down (20% of 4 asks 1) but the forecast expects a peak
     * needing 4: both must agree, so hold. */
    st = decide_state_new();
    f = fc(250, 200, 300, 60);
    in = input(0, 4, 20, 0);
    in.forecast = &f;
    d = eval(&p, in, st);
    CHECK(d.reactive == 1 && d.action == DECIDE_HOLD);
    CHECK(contains(d.reason, "the forecast does not agree to scale down"));
    /* When both agree the smaller reduction wins: forecast needs 2. */
    f = fc(100, 80, 150, 60);
    in.forecast = &f;
    in.now = 15;
    d = eval(&p, in, st);
    CHECK(d.action == DECIDE_SCALE_DOWN && d.target == 2);
    decide_state_free(st);

    /* No forecast yet: the reactive rules decide alone, and say so. */
    st = decide_state_new();
    struct decide_forecast none = {.ok = false};
    snprintf(none.why, sizeof none.why, "forecast unavailable: no history yet");
    in = input(0, 3, 120, 0);
    in.forecast = &none;
    d = eval(&p, in, st);
    CHECK(d.target == 5);
    CHECK(contains(d.reason, "forecast unavailable: no history yet"));
    decide_state_free(st);
}

static void test_aggregate(void)
{
    double t1[] = {10, 20, 30, 40}, v1[] = {1, 2, 3, 4};
    double t2[] = {25, 35}, v2[] = {10, NAN};
    struct decide_series s[] = {{t1, v1, 4}, {t2, v2, 2}};
    struct decide_agg a;
    decide_aggregate(POLICY_AGG_AVG, s, 2, 15, 40, &a); /* means 3 (2, 3, 4) and 10 */
    CHECK(a.ok && a.nsamples == 4 && a.nseries == 2);
    CHECK_NEAR(a.value, 6.5, 1e-12);
    CHECK(a.newest == 40);
    decide_aggregate(POLICY_AGG_MAX, s, 2, 15, 40, &a);
    CHECK_NEAR(a.value, 10, 0);
    decide_aggregate(POLICY_AGG_AVG, s, 2, 40, 100, &a);
    CHECK(!a.ok && a.nseries == 0);

    double t3[20], v3[20];
    for (int i = 0; i < 20; i++) {
        t3[i] = i;
        v3[i] = 20 - i; /* 20..1, unsorted on purpose */
    }
    struct decide_series one = {t3, v3, 20};
    decide_aggregate(POLICY_AGG_P95, &one, 1, -1, 19, &a);
    CHECK_NEAR(a.value, 19.05, 1e-9); /* numpy.percentile(range(1, 21), 95) */
}

static void test_load_history(void)
{
    /* Two containers at 50% each, then one at 90%: the load is 100 then 90. */
    double ta[] = {10, 20, 30, 40}, va[] = {50, 50, 50, 50};
    double tb[] = {10, 20}, vb[] = {50, 50};
    double tc[] = {70, 80}, vc[] = {90, 90};
    struct decide_series s[] = {{ta, va, 4}, {tb, vb, 2}, {tc, vc, 2}};
    double *ts, *load;
    size_t n = decide_load_history(POLICY_AGG_AVG, s, 3, 0, 90, 30, &ts, &load);
    CHECK(n == 3);
    if (n == 3) {
        CHECK(ts[0] == 30 && ts[1] == 60 && ts[2] == 90);
        CHECK_NEAR(load[0], 100, 1e-12); /* (0, 30]: both at 50 */
        CHECK_NEAR(load[1], 50, 1e-12);  /* (30, 60]: one at 50 */
        CHECK_NEAR(load[2], 90, 1e-12);
    }
    free(ts);
    free(load);
}

static void test_forecast_call(void)
{
    struct policy p = base();
    p.forecast = true;
    snprintf(p.forecast_model, sizeof p.forecast_model, "linear");
    p.forecast_horizon = 300;
    double ts[120], v[120];
    for (int i = 0; i < 120; i++) {
        ts[i] = 60.0 * i;
        v[i] = 100 + 2.0 * i; /* +2 per minute */
    }
    struct decide_forecast f;
    decide_forecast(&p, ts, v, 120, &f);
    CHECK(f.ok);
    CHECK_STR(f.model, "linear");
    CHECK_NEAR(f.peak, 100 + 2.0 * 124, 1.0); /* 5 minutes past the last point */
    CHECK(f.peak_upper >= f.peak && f.peak_lower <= f.peak);
    CHECK_NEAR(f.origin, ts[119], 0);

    decide_forecast(&p, ts, v, 1, &f);
    CHECK(!f.ok);
    CHECK(strstr(f.why, "forecast unavailable") != NULL);
    p.forecast = false;
    decide_forecast(&p, ts, v, 120, &f);
    CHECK(!f.ok);
    CHECK_STR(f.why, "forecast off");
}

static void test_json(void)
{
    struct policy p = base();
    struct decide_state *st = decide_state_new();
    struct decision d = eval(&p, input(0, 3, 120, 5), st);
    json_t *j = decide_inputs_json(&p, &d);
    CHECK(json_real_value(json_object_get(j, "value")) == 120);
    CHECK(json_integer_value(json_object_get(j, "rule_target")) == 5);
    CHECK(json_is_null(json_object_get(j, "forecast")));
    json_decref(j);
    decide_state_free(st);

    struct decide_input bad = input(NAN, 3, 1, 0);
    st = decide_state_new();
    CHECK(decide_evaluate(&p, &bad, st, &d) == -EINVAL);
    decide_state_free(st);
}

int main(void)
{
    RUN(test_hpa_rule);
    RUN(test_missing_and_stale);
    RUN(test_step_limits);
    RUN(test_bounds);
    RUN(test_down_stabilization);
    RUN(test_thresholds);
    RUN(test_cooldowns);
    RUN(test_unready);
    RUN(test_forecast_rules);
    RUN(test_aggregate);
    RUN(test_load_history);
    RUN(test_forecast_call);
    RUN(test_json);
    return UNIT_DONE();
}
