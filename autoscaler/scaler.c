/* The server's autoscaler: a worker thread per service, ticking. */
#include "scaler.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actuate.h"
#include "decide.h"
#include "docker.h"
#include "log.h"
#include "policy.h"
#include "xalloc.h"

/* A decision that changes nothing, repeating the last recorded one, is
 * recorded again only after this long (see worth_recording). */
#define PLAIN_HOLD_EVERY 300.0

/* What GET /api/v1/services shows; guarded by service.lock. */
struct status {
    int current, desired; /* -1: not known yet */
    bool have_value;
    double value, value_ts;
    struct decide_forecast fc; /* fc.ok false: none */
    bool have_decision;
    double decision_ts;
    char action[16], outcome[16];
    char reason[sizeof(((struct decision *)0)->reason)];
    char error[DOCKER_ERR_MAX];
    double error_ts;
};

/* The observed load (value x reporting series), one point per tick. */
struct history {
    double *ts, *load;
    size_t n, cap;
};

struct service {
    struct scaler *sc;
    struct policy p;
    pthread_t thread;
    bool started;
    /* Worker-only state. */
    struct store_reader *reader;
    struct decide_state *state;
    struct history hist;
    bool backfilled;
    int last_current;
    double last_recorded;
    char last_sig[64]; /* of the last thinnable decision recorded; "" none */
    /* Shared with the HTTP thread. */
    pthread_mutex_t lock;
    struct status st;
};

struct scaler {
    struct store *store;
    struct docker *docker; /* NULL when every target is none */
    double tick;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stopping;
    struct service *svcs;
    size_t n;
};

static double wall_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* ---- Reading samples ------------------------------------------------------- */

struct ids {
    int64_t *v;
    size_t n, cap;
    double since; /* series silent since before this are skipped */
};

static void collect_id(void *arg, const struct store_series_info *s)
{
    struct ids *ids = arg;
    if (s->last_ts <= ids->since)
        return;
    ids->v = xgrow(ids->v, &ids->cap, ids->n + 1, sizeof *ids->v);
    ids->v[ids->n++] = s->id;
}

/* The samples of every series the policy selects, in (from, to]. */
struct samples {
    struct decide_series *s;
    double **ts, **v;
    size_t n;
};

static void samples_free(struct samples *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->ts[i]);
        free(x->v[i]);
    }
    free(x->s);
    free(x->ts);
    free(x->v);
    memset(x, 0, sizeof *x);
}

static int read_samples(struct service *v, double from, double to, struct samples *out)
{
    const struct policy *p = &v->p;
    struct store_filter f = {.metric = p->metric};
    if (p->source == POLICY_SOURCE_NODES) {
        f.node = p->source_match;
        f.node_glob = true;
        f.container = ""; /* host series only */
    } else {
        f.service = p->source_match;
    }
    struct ids ids = {.since = from};
    store_each_series(v->sc->store, &f, collect_id, &ids);
    memset(out, 0, sizeof *out);
    out->s = xcalloc(ids.n ? ids.n : 1, sizeof *out->s);
    out->ts = xcalloc(ids.n ? ids.n : 1, sizeof *out->ts);
    out->v = xcalloc(ids.n ? ids.n : 1, sizeof *out->v);
    int rc = 0;
    for (size_t i = 0; i < ids.n && rc == 0; i++) {
        size_t n = 0;
        rc = store_read_points(v->reader, ids.v[i], nextafter(from, INFINITY), to, 0,
                               &out->ts[out->n], &out->v[out->n], &n);
        if (rc == 0) {
            out->s[out->n] = (struct decide_series){out->ts[out->n], out->v[out->n], n};
            out->n++;
        }
    }
    free(ids.v);
    if (rc < 0)
        samples_free(out);
    return rc;
}

/* ---- The load history ------------------------------------------------------- */

static void hist_push(struct history *h, double ts, double load)
{
    if (h->n && ts <= h->ts[h->n - 1])
        return;
    size_t c = h->cap;
    h->ts = xgrow(h->ts, &c, h->n + 1, sizeof *h->ts);
    h->load = xgrow(h->load, &h->cap, h->n + 1, sizeof *h->load);
    h->ts[h->n] = ts;
    h->load[h->n] = load;
    h->n++;
}

static void hist_prune(struct history *h, double before)
{
    size_t k = 0;
    while (k < h->n && h->ts[k] <= before)
        k++;
    if (k == 0)
        return;
    memmove(h->ts, h->ts + k, (h->n - k) * sizeof *h->ts);
    memmove(h->load, h->load + k, (h->n - k) * sizeof *h->load);
    h->n -= k;
}

/* At the first tick, the history the store already holds, so a restarted
 * server forecasts at once. */
static void backfill(struct service *v, double now)
{
    const struct policy *p = &v->p;
    struct samples x;
    v->backfilled = true;
    if (read_samples(v, now - p->forecast_history, now, &x) < 0) {
        log_warn("scaler", "[service %s] cannot read the history to forecast from", p->name);
        return;
    }
    double *ts, *load;
    size_t n = decide_load_history(p->aggregation, x.s, x.n, now - p->forecast_history, now,
                                   p->forecast_resolution, &ts, &load);
    for (size_t i = 0; i < n; i++)
        hist_push(&v->hist, ts[i], load[i]);
    free(ts);
    free(load);
    samples_free(&x);
    log_info("scaler", "[service %s] forecast history: %zu points from the store", p->name, n);
}

static void forecast(struct service *v, double now, struct decide_forecast *f)
{
    const struct policy *p = &v->p;
    struct decide_series one = {v->hist.ts, v->hist.load, v->hist.n};
    double *ts, *load;
    size_t n = decide_load_history(POLICY_AGG_AVG, &one, 1, now - p->forecast_history, now,
                                   p->forecast_resolution, &ts, &load);
    decide_forecast(p, ts, load, n, f);
    free(ts);
    free(load);
}

/* ---- One tick ------------------------------------------------------------------ */

/* What one evaluation produced, for the log, the status and the record. */
struct outcome {
    const char *outcome; /* "applied", "failed", "dry-run", "advisory", "none" */
    int after;           /* replicas known after acting; -1: unchanged/unknown */
    char error[DOCKER_ERR_MAX];
    char plan[512]; /* dry-run: what would be done */
};

/* Carries the decision out as the policy's mode says. */
static void act(struct service *v, const struct decision *d, double now, struct outcome *o)
{
    const struct policy *p = &v->p;
    struct actuate_result res = {0};
    o->outcome = "none";
    o->after = -1;
    if (d->action == DECIDE_HOLD)
        return;
    if (p->mode == POLICY_ADVISORY) {
        o->outcome = "advisory";
        return;
    }
    struct actuate_opts opts = {.dry_run = p->mode == POLICY_DRY_RUN};
    int rc =
        actuate_scale(v->sc->docker, &p->target, d->target, &opts, &res, o->error, sizeof o->error);
    if (rc < 0) {
        o->outcome = "failed";
        if (!opts.dry_run && res.after >= 0 && res.after != d->current) {
            /* Part of it happened: count that against the limits. */
            struct decision part = *d;
            part.target = res.after;
            decide_applied(v->state, &part, now);
            o->after = res.after;
        }
        return;
    }
    o->error[0] = '\0';
    if (opts.dry_run) {
        o->outcome = "dry-run";
        snprintf(o->plan, sizeof o->plan, "%s", res.detail);
        return;
    }
    o->outcome = "applied";
    o->after = d->target;
    decide_applied(v->state, d, now);
}

/* Decisions that change nothing and repeat the last recorded one exactly
 * (a plain or no-data hold, an advisory or dry-run recommendation) are
 * recorded again only every PLAIN_HOLD_EVERY seconds. Holds a limit stopped,
 * actions carried out and failures are always recorded. Returns whether to
 * record, updating the signature kept. */
static bool worth_recording(struct service *v, const struct decision *d, const struct outcome *o)
{
    bool plain = d->action == DECIDE_HOLD && d->desired == d->current && !o->error[0];
    bool unapplied = strcmp(o->outcome, "advisory") == 0 || strcmp(o->outcome, "dry-run") == 0;
    char sig[sizeof v->last_sig];
    snprintf(sig, sizeof sig, "%s/%s/%d/%d/%d", decide_action_name(d->action), o->outcome,
             d->current, d->target, d->data_ok);
    bool repeat = (plain || unapplied) && strcmp(sig, v->last_sig) == 0 &&
                  d->now - v->last_recorded < PLAIN_HOLD_EVERY;
    if (repeat)
        return false;
    snprintf(v->last_sig, sizeof v->last_sig, "%s", plain || unapplied ? sig : "");
    return true;
}

/* Stores the decision unless worth_recording says it repeats itself.
 * Returns whether it was recorded. */
static bool record(struct service *v, const struct decision *d, const struct outcome *o)
{
    const struct policy *p = &v->p;
    if (!worth_recording(v, d, o))
        return false;
    json_t *in = decide_inputs_json(p, d);
    char tgt[600];
    json_object_set_new(in, "target", json_string(policy_target_str(&p->target, tgt, sizeof tgt)));
    if (o->plan[0])
        json_object_set_new(in, "plan", json_string(o->plan));
    char *inputs = json_dumps(in, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(in);
    struct store_decision sd = {
        .ts = d->now,
        .service = p->name,
        .action = decide_action_name(d->action),
        .current = d->current,
        .desired = d->desired,
        .target = d->target,
        .mode = policy_mode_name(p->mode),
        .outcome = o->outcome,
        .reason = d->reason,
        .error = o->error[0] ? o->error : NULL,
        .inputs = inputs,
    };
    bool ok = store_add_decision(v->sc->store, &sd) == 0;
    if (ok)
        v->last_recorded = d->now;
    else
        v->last_sig[0] = '\0'; /* try again next tick */
    free(inputs);
    return ok;
}

static void update_status(struct service *v, const struct decide_agg *agg, const struct decision *d,
                          const struct outcome *o)
{
    pthread_mutex_lock(&v->lock);
    struct status *s = &v->st;
    /* After an action, what the engine has now, not what it had before. */
    s->current = o->after >= 0 ? o->after : d->current;
    s->desired = d->target; /* what was decided, carried out or not */
    if (agg->ok) {
        s->have_value = true;
        s->value = agg->value;
        s->value_ts = agg->newest;
    }
    s->fc = d->forecast;
    s->have_decision = true;
    s->decision_ts = d->now;
    snprintf(s->action, sizeof s->action, "%s", decide_action_name(d->action));
    snprintf(s->outcome, sizeof s->outcome, "%s", o->outcome);
    snprintf(s->reason, sizeof s->reason, "%s", d->reason);
    if (o->error[0]) {
        snprintf(s->error, sizeof s->error, "%s", o->error);
        s->error_ts = d->now;
    }
    pthread_mutex_unlock(&v->lock);
}

/* A tick that could not get as far as a decision (replicas unknown, the
 * database unreadable): recorded as a failed hold at the last count seen
 * (`counted` false: the replicas could not be counted now). */
static void fail_tick(struct service *v, double now, int current, bool counted, const char *what,
                      const char *error)
{
    struct decision d = {.action = DECIDE_HOLD,
                         .now = now,
                         .current = current,
                         .desired = current,
                         .target = current,
                         .value = NAN};
    d.rule_target = d.rule_threshold = d.rule_forecast = -1;
    snprintf(d.reason, sizeof d.reason, "%s; holding", what);
    struct outcome o = {.outcome = "failed", .after = -1};
    snprintf(o.error, sizeof o.error, "%s", error);
    struct decide_agg none = {0};
    log_warn("scaler", "[service %s] %s: %s", v->p.name, what, error);
    record(v, &d, &o);
    update_status(v, &none, &d, &o);
    if (!counted) {
        pthread_mutex_lock(&v->lock);
        v->st.current = v->st.desired = -1; /* not known */
        pthread_mutex_unlock(&v->lock);
    }
}

static void evaluate(struct service *v)
{
    const struct policy *p = &v->p;
    double now = wall_now();
    struct samples x;
    if (read_samples(v, now - p->window, now, &x) < 0) {
        fail_tick(v, now, v->last_current, true, "cannot read samples", "database read failed");
        return;
    }
    struct decide_input in = {.now = now};
    decide_aggregate(p->aggregation, x.s, x.n, now - p->window, now, &in.metric);
    samples_free(&x);

    if (p->forecast && !v->backfilled)
        backfill(v, now);
    else if (p->forecast && in.metric.ok)
        hist_push(&v->hist, now, in.metric.value * in.metric.nseries);
    hist_prune(&v->hist, now - p->forecast_history);

    if (p->target.kind == POLICY_TARGET_NONE) {
        /* Advisory: the replicas are the series reporting (containers or
         * nodes); without any, the last count seen. */
        in.current = in.metric.nseries > 0 ? in.metric.nseries : v->last_current;
    } else {
        char err[DOCKER_ERR_MAX];
        if (actuate_replicas(v->sc->docker, &p->target, &in.current, err, sizeof err) < 0) {
            fail_tick(v, now, v->last_current, false, "cannot count the replicas", err);
            return;
        }
    }
    v->last_current = in.current;
    in.ready = p->source == POLICY_SOURCE_SERVICE ? in.metric.nseries : 0;

    struct decide_forecast f;
    if (p->forecast) {
        forecast(v, now, &f);
        in.forecast = &f;
    }
    struct decision d;
    if (decide_evaluate(p, &in, v->state, &d) < 0)
        return; /* cannot happen with a finite clock and a count >= 0 */
    struct outcome o = {.after = -1};
    act(v, &d, now, &o);
    /* Logged at info when it is news: an action taken or tried, or a
     * recommendation recorded anew; repeats go to debug. */
    bool recorded = record(v, &d, &o);
    enum log_level lvl = d.action != DECIDE_HOLD && recorded ? LOG_INFO : LOG_DEBUG;
    if (strcmp(o.outcome, "failed") == 0)
        lvl = LOG_WARN;
    log_msg(lvl, "scaler", "[service %s] %s %s: %s%s%s", p->name, decide_action_name(d.action),
            o.outcome, d.reason, o.error[0] ? ": " : "", o.error);
    update_status(v, &in.metric, &d, &o);
}

/* ---- Threads ------------------------------------------------------------------- */

static void add_seconds(struct timespec *t, double s)
{
    double whole = floor(s);
    t->tv_sec += (time_t)whole;
    t->tv_nsec += (long)((s - whole) * 1e9);
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static bool before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void *worker(void *arg)
{
    struct service *v = arg;
    struct scaler *sc = v->sc;
    struct timespec next, now;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&sc->stop_lock);
    while (!sc->stopping) {
        pthread_mutex_unlock(&sc->stop_lock);
        evaluate(v);
        add_seconds(&next, sc->tick);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (before(&next, &now)) {
            /* A tick took longer than the period (a slow engine): skip the
             * missed ones rather than run them back to back. */
            next = now;
            add_seconds(&next, sc->tick);
        }
        pthread_mutex_lock(&sc->stop_lock);
        while (!sc->stopping &&
               pthread_cond_timedwait(&sc->stop_cond, &sc->stop_lock, &next) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&sc->stop_lock);
    return NULL;
}

static int open_docker(const struct config *cfg, struct scaler *sc, char *err, size_t errlen)
{
    for (size_t i = 0; i < sc->n; i++) {
        if (sc->svcs[i].p.target.kind == POLICY_TARGET_NONE)
            continue;
        const struct autoscaler_config *a = &cfg->autoscaler;
        struct docker_opts o = {.host = a->docker_host,
                                .tls_ca = a->docker_tls_ca,
                                .tls_cert = a->docker_tls_cert,
                                .tls_key = a->docker_tls_key,
                                .timeout = a->docker_timeout};
        char why[DOCKER_ERR_MAX];
        if (docker_open(&o, &sc->docker, why, sizeof why) < 0) {
            snprintf(err, errlen, "%s: [autoscaler] %s", cfg->path ? cfg->path : "config", why);
            return -1;
        }
        return 0;
    }
    return 0;
}

static void free_service(struct service *v)
{
    store_reader_close(v->reader);
    decide_state_free(v->state);
    free(v->hist.ts);
    free(v->hist.load);
    pthread_mutex_destroy(&v->lock);
}

int scaler_start(const struct config *cfg, struct store *st, struct scaler **out, char *err,
                 size_t errlen)
{
    struct policy *pol;
    size_t n;
    *out = NULL;
    if (policy_load_all(cfg, &pol, &n, err, errlen) < 0)
        return -1;
    struct scaler *sc = xcalloc(1, sizeof *sc);
    sc->store = st;
    sc->tick = cfg->autoscaler.tick;
    sc->n = n;
    sc->svcs = xcalloc(n ? n : 1, sizeof *sc->svcs);
    pthread_mutex_init(&sc->stop_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sc->stop_cond, &ca);
    pthread_condattr_destroy(&ca);
    for (size_t i = 0; i < n; i++) {
        struct service *v = &sc->svcs[i];
        v->sc = sc;
        v->p = pol[i];
        v->state = decide_state_new();
        v->last_current = v->p.min_replicas;
        v->st.current = v->st.desired = -1;
        pthread_mutex_init(&v->lock, NULL);
    }
    free(pol);
    if (open_docker(cfg, sc, err, errlen) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        if (store_reader_open(st, &sc->svcs[i].reader) < 0) {
            snprintf(err, errlen, "[service %s]: cannot open a database reader",
                     sc->svcs[i].p.name);
            goto fail;
        }
    }
    for (size_t i = 0; i < n; i++) {
        int rc = pthread_create(&sc->svcs[i].thread, NULL, worker, &sc->svcs[i]);
        if (rc != 0) {
            snprintf(err, errlen, "[service %s]: cannot start its thread: %s", sc->svcs[i].p.name,
                     strerror(rc));
            goto fail;
        }
        sc->svcs[i].started = true;
    }
    log_info("scaler", "evaluating %zu service%s every %g s", n, n == 1 ? "" : "s", sc->tick);
    *out = sc;
    return 0;
fail:
    scaler_stop(sc);
    return -1;
}

void scaler_stop(struct scaler *sc)
{
    if (!sc)
        return;
    pthread_mutex_lock(&sc->stop_lock);
    sc->stopping = true;
    pthread_cond_broadcast(&sc->stop_cond);
    pthread_mutex_unlock(&sc->stop_lock);
    for (size_t i = 0; i < sc->n; i++) {
        if (sc->svcs[i].started)
            pthread_join(sc->svcs[i].thread, NULL);
        free_service(&sc->svcs[i]);
    }
    docker_close(sc->docker);
    pthread_cond_destroy(&sc->stop_cond);
    pthread_mutex_destroy(&sc->stop_lock);
    free(sc->svcs);
    free(sc);
}

/* ---- Status ------------------------------------------------------------------------ */

static json_t *num_or_null(bool have, double x)
{
    return have && isfinite(x) ? json_real(x) : json_null();
}

static json_t *service_json(struct service *v)
{
    const struct policy *p = &v->p;
    char tgt[600];
    pthread_mutex_lock(&v->lock);
    const struct status *s = &v->st;
    json_t *o = json_object();
    json_object_set_new(o, "service", json_string(p->name));
    json_object_set_new(o, "target", json_string(policy_target_str(&p->target, tgt, sizeof tgt)));
    json_object_set_new(o, "mode", json_string(policy_mode_name(p->mode)));
    json_object_set_new(o, "min_replicas", json_integer(p->min_replicas));
    json_object_set_new(o, "max_replicas", json_integer(p->max_replicas));
    json_object_set_new(o, "current_replicas",
                        s->current >= 0 ? json_integer(s->current) : json_null());
    json_object_set_new(o, "desired_replicas",
                        s->desired >= 0 ? json_integer(s->desired) : json_null());
    json_object_set_new(o, "metric", json_string(p->metric));
    json_object_set_new(o, "aggregation", json_string(policy_agg_name(p->aggregation)));
    json_object_set_new(o, "target_value", num_or_null(p->has_target, p->target_utilization));
    json_object_set_new(o, "tolerance", num_or_null(p->has_target, p->tolerance));
    json_object_set_new(o, "scale_up_above", num_or_null(p->has_up_threshold, p->scale_up_above));
    json_object_set_new(o, "scale_down_below",
                        num_or_null(p->has_down_threshold, p->scale_down_below));
    json_object_set_new(o, "metric_value", num_or_null(s->have_value, s->value));
    json_object_set_new(o, "metric_ts", num_or_null(s->have_value, s->value_ts));
    if (s->fc.ok && s->current > 0) {
        /* In the metric's unit at the current replica count, as the reason
         * words it, so it compares with metric_value and target_value. */
        double per = 1.0 / s->current;
        json_object_set_new(o, "forecast",
                            json_pack("{ss sf sf sf sf sf}", "model", s->fc.model, "horizon",
                                      s->fc.horizon, "peak", s->fc.peak * per, "lower",
                                      s->fc.peak_lower * per, "upper", s->fc.peak_upper * per, "at",
                                      s->fc.peak_at));
        json_object_set_new(o, "forecast_upper", json_real(s->fc.peak_upper * per));
    } else {
        json_object_set_new(o, "forecast", json_null());
        json_object_set_new(o, "forecast_upper", json_null());
        if (s->fc.why[0])
            json_object_set_new(o, "forecast_why", json_string(s->fc.why));
    }
    if (s->have_decision)
        json_object_set_new(o, "last_decision",
                            json_pack("{sf ss ss ss}", "ts", s->decision_ts, "action", s->action,
                                      "outcome", s->outcome, "reason", s->reason));
    else
        json_object_set_new(o, "last_decision", json_null());
    json_object_set_new(o, "last_error", s->error[0] ? json_string(s->error) : json_null());
    json_object_set_new(o, "last_error_ts", num_or_null(s->error[0] != '\0', s->error_ts));
    pthread_mutex_unlock(&v->lock);
    return o;
}

json_t *scaler_services_json(struct scaler *sc)
{
    json_t *a = json_array();
    for (size_t i = 0; sc && i < sc->n; i++)
        json_array_append_new(a, service_json(&sc->svcs[i]));
    return a;
}
