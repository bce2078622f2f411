/* Scaling decisions: the rules of docs/autoscaler.md, as pure functions. */
#include "decide.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "predictor.h"
#include "xalloc.h"

/* Replica counts computed from ratios are rounded up after removing this
 * much, so that 3 x 80 / 80 is 3 and not 4 through a rounding error. */
#define CEIL_EPS 1e-9

/* ---- Aggregation ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* First index with ts > from (points ascending). */
static size_t first_after(const struct decide_series *s, double from)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ts[mid] <= from)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Percentile q (0..1) of sorted x[0..n-1], linear between closest ranks. */
static double percentile_sorted(const double *x, size_t n, double q)
{
    double h = q * (double)(n - 1);
    size_t lo = (size_t)floor(h);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return x[lo] + (h - (double)lo) * (x[hi] - x[lo]);
}

void decide_aggregate(enum policy_agg agg, const struct decide_series *s, size_t ns, double from,
                      double to, struct decide_agg *out)
{
    memset(out, 0, sizeof *out);
    out->value = NAN;
    out->newest = -INFINITY;
    double sum_means = 0, max = -INFINITY;
    double *all = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < ns; i++) {
        double sum = 0;
        size_t n = 0;
        for (size_t k = first_after(&s[i], from); k < s[i].n && s[i].ts[k] <= to; k++) {
            double v = s[i].v[k];
            if (isnan(v))
                continue;
            sum += v;
            n++;
            if (v > max)
                max = v;
            if (s[i].ts[k] > out->newest)
                out->newest = s[i].ts[k];
            if (agg == POLICY_AGG_P95) {
                all = xgrow(all, &cap, out->nsamples + 1, sizeof *all);
                all[out->nsamples] = v;
            }
            out->nsamples++;
        }
        if (n > 0) {
            out->nseries++;
            sum_means += sum / (double)n;
        }
    }
    if (out->nsamples == 0) {
        free(all);
        out->newest = 0;
        return;
    }
    out->ok = true;
    switch (agg) {
    case POLICY_AGG_AVG:
        out->value = sum_means / out->nseries;
        break;
    case POLICY_AGG_MAX:
        out->value = max;
        break;
    case POLICY_AGG_P95:
        qsort(all, out->nsamples, sizeof *all, cmp_double);
        out->value = percentile_sorted(all, out->nsamples, 0.95);
        break;
    }
    free(all);
}

size_t decide_load_history(enum policy_agg agg, const struct decide_series *s, size_t ns,
                           double from, double to, double step, double **ts, double **load)
{
    *ts = NULL;
    *load = NULL;
    if (!(step > 0) || !(to > from))
        return 0;
    size_t nb = (size_t)ceil((to - from) / step - CEIL_EPS);
    size_t n = 0, cap = 0;
    for (size_t b = 0; b < nb; b++) {
        double lo = from + (double)b * step, hi = lo + step;
        if (hi > to)
            hi = to;
        struct decide_agg a;
        decide_aggregate(agg, s, ns, lo, hi, &a);
        if (!a.ok)
            continue;
        size_t c = cap;
        *ts = xgrow(*ts, &c, n + 1, sizeof **ts);
        *load = xgrow(*load, &cap, n + 1, sizeof **load);
        (*ts)[n] = hi;
        (*load)[n] = a.value * a.nseries;
        n++;
    }
    return n;
}

/* ---- Forecast ---------------------------------------------------------------- */

void decide_forecast(const struct policy *p, const double *ts, const double *load, size_t n,
                     struct decide_forecast *out)
{
    memset(out, 0, sizeof *out);
    out->horizon = p->forecast_horizon;
    out->peak = out->peak_lower = out->peak_upper = out->peak_at = NAN;
    out->origin = n ? ts[n - 1] : NAN;
    if (!p->forecast) {
        snprintf(out->why, sizeof out->why, "forecast off");
        return;
    }
    struct pred_opts o;
    pred_opts_default(&o);
    if (pred_model_parse(p->forecast_model, &o.model) < 0) {
        snprintf(out->why, sizeof out->why, "unknown forecast model '%s'", p->forecast_model);
        return;
    }
    o.horizon = p->forecast_horizon;
    o.confidence = p->forecast_confidence;
    o.period = p->forecast_period;
    struct pred_forecast f;
    int rc = n ? pred_forecast(ts, load, n, &o, &f) : -ENODATA;
    if (rc == -ENODATA) {
        char msg[160];
        if (n == 0)
            snprintf(msg, sizeof msg, "no history yet");
        else
            pred_need_message(o.model, &f, ts[n - 1] - ts[0], n, msg, sizeof msg);
        snprintf(out->why, sizeof out->why, "forecast unavailable: %s", msg);
        return;
    }
    if (rc < 0) {
        snprintf(out->why, sizeof out->why, "forecast failed: %s", strerror(-rc));
        return;
    }
    out->ok = true;
    snprintf(out->model, sizeof out->model, "%s", pred_model_name(f.model));
    out->peak = f.peak;
    out->peak_lower = f.peak_lower;
    out->peak_upper = f.peak_upper;
    out->peak_at = f.peak_at;
}

/* ---- State ------------------------------------------------------------------ */

struct rec {
    double ts;
    int replicas;
};

struct decide_state {
    double first;       /* first evaluation; NAN before */
    double above_since; /* NAN when not above scale_up_above */
    double below_since;
    double last_up, last_down; /* -INFINITY: never */
    struct rec *recs;          /* raw recommendations, oldest first */
    size_t nrecs, caprecs;
    struct rec *events; /* applied changes (replicas = delta), oldest first */
    size_t nevents, capevents;
};

struct decide_state *decide_state_new(void)
{
    struct decide_state *st = xcalloc(1, sizeof *st);
    st->first = NAN;
    st->above_since = st->below_since = NAN;
    st->last_up = st->last_down = -INFINITY;
    return st;
}

void decide_state_free(struct decide_state *st)
{
    if (!st)
        return;
    free(st->recs);
    free(st->events);
    free(st);
}

/* Drops entries older than now - keep. */
static void prune(struct rec *r, size_t *n, double now, double keep)
{
    size_t k = 0;
    while (k < *n && r[k].ts < now - keep)
        k++;
    if (k == 0)
        return;
    memmove(r, r + k, (*n - k) * sizeof *r);
    *n -= k;
}

static void push(struct rec **r, size_t *n, size_t *cap, double ts, int replicas)
{
    *r = xgrow(*r, cap, *n + 1, sizeof **r);
    (*r)[*n] = (struct rec){ts, replicas};
    (*n)++;
}

const char *decide_action_name(enum decide_action a)
{
    switch (a) {
    case DECIDE_SCALE_UP:
        return "scale_up";
    case DECIDE_SCALE_DOWN:
        return "scale_down";
    default:
        return "hold";
    }
}

/* ---- Evaluation ---------------------------------------------------------------- */

/* A reason is built from parts joined by "; ". */
struct text {
    char *buf;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void say(struct text *t, const char *fmt, ...)
{
    if (t->len >= t->cap)
        return;
    if (t->len > 0 && t->len + 2 < t->cap) {
        memcpy(t->buf + t->len, "; ", 3);
        t->len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (w > 0)
        t->len += (size_t)w < t->cap - t->len ? (size_t)w : t->cap - t->len - 1;
}

static int ceil_replicas(double x)
{
    if (!(x > 0))
        return 0;
    double c = ceil(x - CEIL_EPS);
    return c > INT_MAX / 2 ? INT_MAX / 2 : (int)c;
}

static int max_i(int a, int b)
{
    return a > b ? a : b;
}

static int min_i(int a, int b)
{
    return a < b ? a : b;
}

/* Working state of one evaluation. */
struct eval {
    const struct policy *p;
    const struct decide_input *in;
    struct decide_state *st;
    struct decision *d;
    struct text why; /* the rules' part of the reason */
    const char *unit;
};

/* Seconds the value has been beyond a threshold, updating the timer. */
static double sustained(double *since, bool beyond, double now)
{
    if (!beyond) {
        *since = NAN;
        return 0;
    }
    if (isnan(*since))
        *since = now;
    return now - *since;
}

/* The HPA rule (kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale,
 * "Algorithm details"): desired = ceil(current * value / target), no change
 * within the tolerance. Replicas that do not report yet count as idle when
 * scaling up (so the new ones are not asked for twice) and block scaling
 * down (HPA assumes them busy). */
static int rule_target(struct eval *e)
{
    const struct policy *p = e->p;
    struct decision *d = e->d;
    double ratio = d->value / p->target_utilization;
    int want = ceil_replicas(d->load / p->target_utilization);
    if (ratio > 1 + p->tolerance && want > d->current) {
        say(&e->why, "target %g%s -> %d", p->target_utilization, e->unit, want);
        return want;
    }
    if (ratio > 1 + p->tolerance) {
        say(&e->why, "target %g%s -> %d (%d of %d replicas still starting)", p->target_utilization,
            e->unit, d->current, d->current - d->ready, d->current);
        return d->current;
    }
    if (ratio < 1 - p->tolerance && d->ready < d->current) {
        say(&e->why, "target %g%s: no scale-down while %d of %d replicas do not report",
            p->target_utilization, e->unit, d->current - d->ready, d->current);
        return d->current;
    }
    if (ratio < 1 - p->tolerance && want < d->current) {
        say(&e->why, "target %g%s -> %d", p->target_utilization, e->unit, want);
        return want;
    }
    if (ratio >= 1 - p->tolerance && ratio <= 1 + p->tolerance)
        say(&e->why, "target %g%s, within tolerance %g", p->target_utilization, e->unit,
            p->tolerance);
    else
        say(&e->why, "target %g%s -> %d", p->target_utilization, e->unit, d->current);
    return d->current;
}

/* The sustained threshold rules: one replica more after value stayed above
 * scale_up_above for scale_up_for, one fewer after it stayed below
 * scale_down_below for scale_down_for. Returns the recommendation, or -1
 * when neither fired. */
static int rule_threshold(struct eval *e, bool *fired_up, bool *fired_down)
{
    const struct policy *p = e->p;
    struct decision *d = e->d;
    *fired_up = *fired_down = false;
    if (p->has_up_threshold) {
        d->up_for = sustained(&e->st->above_since, d->value > p->scale_up_above, d->now);
        if (d->value > p->scale_up_above) {
            *fired_up = d->up_for >= p->scale_up_for;
            say(&e->why, "> %g%s for %.0f s%s", p->scale_up_above, e->unit, d->up_for,
                *fired_up ? "" : " (not yet sustained)");
        }
    }
    if (p->has_down_threshold) {
        d->down_for = sustained(&e->st->below_since, d->value < p->scale_down_below, d->now);
        if (d->value < p->scale_down_below) {
            *fired_down = d->down_for >= p->scale_down_for && d->ready >= d->current;
            say(&e->why, "< %g%s for %.0f s%s", p->scale_down_below, e->unit, d->down_for,
                *fired_down ? "" : " (not yet sustained)");
        }
    }
    if (*fired_up)
        return d->current + 1;
    if (*fired_down)
        return d->current - 1;
    return -1;
}

/* The reactive rules combined: up when any says up (the larger wins), down
 * only when every configured rule says down (the smaller reduction wins). */
static int reactive(struct eval *e)
{
    const struct policy *p = e->p;
    struct decision *d = e->d;
    int cur = d->current;
    bool up, down;
    d->rule_target = p->has_target ? rule_target(e) : -1;
    d->rule_threshold = rule_threshold(e, &up, &down);
    int best_up = cur;
    if (d->rule_target > cur)
        best_up = d->rule_target;
    if (up)
        best_up = max_i(best_up, d->rule_threshold);
    if (best_up > cur)
        return best_up;
    bool agree = p->has_target || p->has_down_threshold;
    int rec = 0;
    if (p->has_target) {
        agree = agree && d->rule_target < cur;
        rec = max_i(rec, d->rule_target);
    }
    if (p->has_down_threshold) {
        agree = agree && down;
        rec = max_i(rec, d->rule_threshold);
    }
    return agree ? rec : cur;
}

/* The forecast's recommendation: enough replicas that the upper bound of
 * the load's peak over the lead time stays at or under the scale-up
 * threshold, the level where the reactive rules would have to act. The same
 * count answers both ways: more than now is a scale-up, fewer agrees to a
 * scale-down, so a reduction the forecast agreed to cannot be undone by the
 * forecast at the next tick. -1 when there is no forecast. */
static int rule_forecast(struct eval *e)
{
    const struct policy *p = e->p;
    struct decision *d = e->d;
    const struct decide_forecast *f = &d->forecast;
    if (!p->forecast)
        return -1;
    if (!f->ok) {
        say(&e->why, "%s", f->why[0] ? f->why : "no forecast");
        return -1;
    }
    int want = ceil_replicas(f->peak_upper / policy_forecast_level(p));
    double per = d->current > 0 ? 1.0 / d->current : 1.0; /* load -> utilization now */
    double in = f->peak_at - d->now;
    say(&e->why, "forecast peak %.0f%s [%.0f, %.0f] in %.0f s (%s) -> %d", f->peak * per, e->unit,
        f->peak_lower * per, f->peak_upper * per, in > 0 ? in : 0, f->model, want);
    return want;
}

/* HPA stabilization: the lowest recommendation of the last
 * scale_up_stabilization seconds caps a scale-up, the highest of the last
 * scale_down_stabilization seconds floors a scale-down. */
static int stabilize(struct eval *e, int raw)
{
    const struct policy *p = e->p;
    struct decide_state *st = e->st;
    double now = e->d->now;
    int cur = e->d->current;
    if (raw > cur) {
        int lo = raw;
        for (size_t i = 0; i < st->nrecs; i++) {
            if (st->recs[i].ts >= now - p->scale_up_stabilization)
                lo = min_i(lo, st->recs[i].replicas);
        }
        return max_i(lo, cur);
    }
    if (raw < cur) {
        int hi = raw;
        for (size_t i = 0; i < st->nrecs; i++) {
            if (st->recs[i].ts >= now - p->scale_down_stabilization)
                hi = max_i(hi, st->recs[i].replicas);
        }
        return min_i(hi, cur);
    }
    return cur;
}

/* Replicas added (dir > 0) or removed (dir < 0) by applied changes within
 * the last `period` seconds. */
static int changed_in(const struct decide_state *st, double now, double period, int dir)
{
    int sum = 0;
    for (size_t i = 0; i < st->nevents; i++) {
        int delta = st->events[i].replicas;
        if (st->events[i].ts > now - period && (dir > 0 ? delta > 0 : delta < 0))
            sum += dir > 0 ? delta : -delta;
    }
    return sum;
}

/* HPA behavior policies: the count allowed at most (up) or at least (down)
 * this period, from the count at the period's start. */
static int step_bound(const struct policy *p, const struct decide_state *st, double now, int cur,
                      bool up, char *which, size_t wlen)
{
    const struct policy_step *s = up ? &p->step_up : &p->step_down;
    int start =
        up ? cur - changed_in(st, now, s->period, 1) : cur + changed_in(st, now, s->period, -1);
    bool most = p->step_select == POLICY_SELECT_MAX; /* the limit allowing the biggest change */
    int bound = up ? INT_MAX : INT_MIN;
    bool any = false;
    which[0] = '\0';
    if (s->replicas >= 0) {
        bound = up ? start + s->replicas : start - s->replicas;
        snprintf(which, wlen, "max_step_%s %d per %g s", up ? "up" : "down", s->replicas,
                 s->period);
        any = true;
    }
    if (s->percent >= 0) {
        int b = up ? ceil_replicas(start * (1 + s->percent / 100))
                   : start - (int)floor(start * s->percent / 100 + CEIL_EPS);
        bool take = !any || (up == most ? b > bound : b < bound);
        if (take) {
            bound = b;
            snprintf(which, wlen, "max_step_%s_percent %g%% per %g s", up ? "up" : "down",
                     s->percent, s->period);
        }
        any = true;
    }
    return bound;
}

/* Stabilization, cooldowns, step limits and bounds, in that order, from
 * d->desired; sets d->target and, when one of them changed it, d->limit. */
static void apply_limits(struct eval *e)
{
    const struct policy *p = e->p;
    struct decision *d = e->d;
    const struct decide_state *st = e->st;
    int cur = d->current, want = d->desired;
    char which[96];
    d->target = stabilize(e, want);
    if (want < cur && d->now - st->first < p->scale_down_stabilization) {
        /* After a start the window holds too few recommendations to trust. */
        d->target = cur;
        snprintf(d->limit, sizeof d->limit, "scale_down_stabilization %g s (%.0f s observed)",
                 p->scale_down_stabilization, d->now - st->first);
    } else if (d->target != want) {
        snprintf(d->limit, sizeof d->limit, "scale_%s_stabilization %g s",
                 want < cur ? "down" : "up",
                 want < cur ? p->scale_down_stabilization : p->scale_up_stabilization);
    }
    if (d->target > cur && d->now - st->last_up < p->scale_up_cooldown) {
        snprintf(d->limit, sizeof d->limit, "scale_up_cooldown %g s (%.0f s left)",
                 p->scale_up_cooldown, p->scale_up_cooldown - (d->now - st->last_up));
        d->target = cur;
    }
    double last_any = st->last_up > st->last_down ? st->last_up : st->last_down;
    if (d->target < cur && d->now - last_any < p->scale_down_cooldown) {
        snprintf(d->limit, sizeof d->limit, "scale_down_cooldown %g s (%.0f s left)",
                 p->scale_down_cooldown, p->scale_down_cooldown - (d->now - last_any));
        d->target = cur;
    }
    if (d->target > cur) {
        int b = step_bound(p, st, d->now, cur, true, which, sizeof which);
        if (d->target > b) {
            d->target = max_i(b, cur);
            snprintf(d->limit, sizeof d->limit, "%s", which);
        }
    } else if (d->target < cur) {
        int b = step_bound(p, st, d->now, cur, false, which, sizeof which);
        if (d->target < b) {
            d->target = min_i(b, cur);
            snprintf(d->limit, sizeof d->limit, "%s", which);
        }
    }
    if (d->target > p->max_replicas) {
        d->target = p->max_replicas;
        snprintf(d->limit, sizeof d->limit, "max_replicas %d", p->max_replicas);
    }
    if (d->target < p->min_replicas) {
        d->target = p->min_replicas;
        snprintf(d->limit, sizeof d->limit, "min_replicas %d", p->min_replicas);
    }
}

/* Fills the reason: the rules' words, then "3 -> 5" or "holding at 3" and
 * what capped or held the change. */
static void finish(struct eval *e, const char *hold_why)
{
    struct decision *d = e->d;
    struct text t = {d->reason, 0, sizeof d->reason};
    d->action = d->target > d->current   ? DECIDE_SCALE_UP
                : d->target < d->current ? DECIDE_SCALE_DOWN
                                         : DECIDE_HOLD;
    if (e->why.len)
        say(&t, "%s", e->why.buf);
    if (d->action != DECIDE_HOLD && d->limit[0])
        say(&t, "%d -> %d, capped by %s (wanted %d)", d->current, d->target, d->limit, d->desired);
    else if (d->action != DECIDE_HOLD)
        say(&t, "%d -> %d", d->current, d->target);
    else if (d->limit[0] && d->desired != d->current)
        say(&t, "holding at %d, %d held back by %s", d->current, d->desired, d->limit);
    else if (hold_why)
        say(&t, "holding at %d: %s", d->current, hold_why);
    else
        say(&t, "holding at %d", d->current);
}

/* Missing or stale samples: hold (a gap also breaks "sustained"). */
static void no_data(struct eval *e, const char *msg)
{
    e->st->above_since = e->st->below_since = NAN;
    say(&e->why, "%s", msg);
    finish(e, "never scale on missing data");
}

int decide_evaluate(const struct policy *p, const struct decide_input *in, struct decide_state *st,
                    struct decision *out)
{
    if (!isfinite(in->now) || in->current < 0)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    char whybuf[sizeof out->reason];
    struct eval e = {p, in, st, out, {whybuf, 0, sizeof whybuf}, policy_unit(p)};
    whybuf[0] = '\0';
    struct decision *d = out;
    d->now = in->now;
    d->current = d->desired = d->target = d->reactive = in->current;
    d->ready = in->ready > 0 && in->ready < in->current ? in->ready : in->current;
    d->rule_target = d->rule_threshold = d->rule_forecast = -1;
    d->value = NAN;
    d->nseries = in->metric.nseries;
    if (in->forecast)
        d->forecast = *in->forecast;
    if (isnan(st->first))
        st->first = in->now;
    double keep = fmax(p->scale_up_stabilization, p->scale_down_stabilization);
    prune(st->recs, &st->nrecs, in->now, keep);
    prune(st->events, &st->nevents, in->now, fmax(p->step_up.period, p->step_down.period));

    if (in->current < p->min_replicas) {
        d->desired = d->target = p->min_replicas;
        snprintf(d->limit, sizeof d->limit, "min_replicas %d", p->min_replicas);
        say(&e.why, "below min_replicas %d", p->min_replicas);
        finish(&e, NULL);
        return 0;
    }
    char msg[160];
    if (!in->metric.ok) {
        snprintf(msg, sizeof msg, "no %s samples in the last %.0f s", p->metric, p->window);
        no_data(&e, msg);
        return 0;
    }
    d->age = in->now - in->metric.newest;
    if (d->age > p->stale_after) {
        snprintf(msg, sizeof msg, "%s samples stale: newest %.0f s old > stale_after %.0f s",
                 p->metric, d->age, p->stale_after);
        no_data(&e, msg);
        return 0;
    }
    d->data_ok = true;
    d->value = in->metric.value;
    d->load = d->value * d->ready;
    say(&e.why, "%s %s %.3g%s over %d of %d replicas", p->metric, policy_agg_name(p->aggregation),
        d->value, e.unit, d->nseries, d->current);

    d->reactive = reactive(&e);
    d->rule_forecast = rule_forecast(&e);
    int cur = d->current;
    const char *hold = NULL;
    if (d->reactive > cur || d->rule_forecast > cur) {
        d->desired = max_i(d->reactive, d->rule_forecast);
    } else if (d->reactive < cur && d->rule_forecast >= cur) {
        hold = "the forecast does not agree to scale down";
    } else if (d->reactive < cur) {
        d->desired = max_i(d->reactive, d->rule_forecast); /* -1: no forecast: reactive alone */
    }
    push(&st->recs, &st->nrecs, &st->caprecs, in->now, d->desired);
    apply_limits(&e);
    finish(&e, hold);
    return 0;
}

void decide_applied(struct decide_state *st, const struct decision *d, double now)
{
    int delta = d->target - d->current;
    if (delta == 0)
        return;
    push(&st->events, &st->nevents, &st->capevents, now, delta);
    if (delta > 0) {
        st->last_up = now;
        if (!isnan(st->above_since))
            st->above_since = now; /* the next +1 needs its own sustained time */
    } else {
        st->last_down = now;
        if (!isnan(st->below_since))
            st->below_since = now;
    }
}

/* ---- JSON ---------------------------------------------------------------------- */

static json_t *num_or_null(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static json_t *int_or_null(int x)
{
    return x >= 0 ? json_integer(x) : json_null();
}

json_t *decide_inputs_json(const struct policy *p, const struct decision *d)
{
    json_t *o = json_object();
    json_object_set_new(o, "metric", json_string(p->metric));
    json_object_set_new(o, "aggregation", json_string(policy_agg_name(p->aggregation)));
    json_object_set_new(o, "value", num_or_null(d->value));
    json_object_set_new(o, "age", d->data_ok ? json_real(d->age) : json_null());
    json_object_set_new(o, "series", json_integer(d->nseries));
    json_object_set_new(o, "ready", json_integer(d->ready));
    json_object_set_new(o, "load", d->data_ok ? json_real(d->load) : json_null());
    json_object_set_new(o, "target_utilization",
                        p->has_target ? json_real(p->target_utilization) : json_null());
    json_object_set_new(o, "rule_target", int_or_null(d->rule_target));
    json_object_set_new(o, "up_for", json_real(d->up_for));
    json_object_set_new(o, "down_for", json_real(d->down_for));
    json_object_set_new(o, "rule_threshold", int_or_null(d->rule_threshold));
    json_object_set_new(o, "reactive", json_integer(d->reactive));
    json_object_set_new(o, "rule_forecast", int_or_null(d->rule_forecast));
    json_object_set_new(o, "limit", d->limit[0] ? json_string(d->limit) : json_null());
    if (d->forecast.ok) {
        json_t *f = json_object();
        json_object_set_new(f, "model", json_string(d->forecast.model));
        json_object_set_new(f, "horizon", json_real(d->forecast.horizon));
        json_object_set_new(f, "origin", num_or_null(d->forecast.origin));
        json_object_set_new(f, "peak", num_or_null(d->forecast.peak));
        json_object_set_new(f, "peak_lower", num_or_null(d->forecast.peak_lower));
        json_object_set_new(f, "peak_upper", num_or_null(d->forecast.peak_upper));
        json_object_set_new(f, "peak_at", num_or_null(d->forecast.peak_at));
        json_object_set_new(o, "forecast", f);
    } else {
        json_object_set_new(o, "forecast", json_null());
        if (d->forecast.why[0])
            json_object_set_new(o, "forecast_why", json_string(d->forecast.why));
    }
    return o;
}
