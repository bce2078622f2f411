/* Read-side endpoints: nodes, series, stats, forecast, services, decisions,
 * Prometheus exposition. */
#include "server_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "predictor.h"
#include "xalloc.h"

#define SERIES_MAX_POINTS 1000000

/* Endpoints without parameters refuse any, like the others refuse unknown
 * ones. Returns 0, or -1 after having answered 400. */
static int no_params(struct server *s, struct evhttp_request *req)
{
    static const char *const none[] = {NULL};
    struct evkeyvalq q;
    if (srv_query(s, req, none, &q) < 0)
        return -1;
    evhttp_clear_headers(&q);
    return 0;
}

/* ---- /api/v1/nodes ------------------------------------------------------ */

struct nodes_ctx {
    json_t *by_node; /* node -> {"last_seen", "metrics", "containers": {name -> obj}} */
};

static void nodes_add(void *arg, const struct store_series_info *si)
{
    struct nodes_ctx *c = arg;
    json_t *n = json_object_get(c->by_node, si->node);
    if (!n) {
        n = json_pack("{ss sf sf s{} s{}}", "node", si->node, "last_seen", 0.0, "last_received",
                      0.0, "metrics", "containers");
        json_object_set_new(c->by_node, si->node, n);
    }
    if (si->last_ts > json_real_value(json_object_get(n, "last_seen")))
        json_object_set_new(n, "last_seen", json_real(si->last_ts));
    /* Up/stale follows when samples arrived, not their timestamps: a node
     * replaying its spool, or with a slow clock, is alive. */
    double recv = si->last_received > 0 ? si->last_received : si->last_ts;
    if (recv > json_real_value(json_object_get(n, "last_received")))
        json_object_set_new(n, "last_received", json_real(recv));
    json_t *target;
    if (si->container[0] == '\0') {
        target = json_object_get(n, "metrics");
    } else {
        json_t *cs = json_object_get(n, "containers");
        json_t *ct = json_object_get(cs, si->container);
        if (!ct) {
            ct = json_pack("{ss ss sf s{}}", "container", si->container, "service", si->service,
                           "last_seen", 0.0, "metrics");
            json_object_set_new(cs, si->container, ct);
        }
        if (si->last_ts > json_real_value(json_object_get(ct, "last_seen")))
            json_object_set_new(ct, "last_seen", json_real(si->last_ts));
        target = json_object_get(ct, "metrics");
    }
    json_object_set_new(target, si->metric, json_real(si->last_value));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Object values as an array sorted by key (steals nothing; new reference). */
static json_t *sorted_values(json_t *obj)
{
    size_t n = json_object_size(obj), i = 0;
    const char **keys = xmalloc((n ? n : 1) * sizeof *keys);
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        keys[i++] = k;
    }
    qsort(keys, n, sizeof *keys, cmp_str);
    json_t *arr = json_array();
    for (i = 0; i < n; i++)
        json_array_append(arr, json_object_get(obj, keys[i]));
    free(keys);
    return arr;
}

void query_nodes(struct server *s, struct evhttp_request *req)
{
    if (no_params(s, req) < 0)
        return;
    struct nodes_ctx c = {json_object()};
    store_each_series(s->st, NULL, nodes_add, &c);
    double now = srv_now();
    const char *k;
    json_t *n;
    json_object_foreach(c.by_node, k, n)
    {
        double seen = json_real_value(json_object_get(n, "last_received"));
        json_object_set_new(n, "state",
                            json_string(now - seen > s->cfg->server.stale_after ? "stale" : "up"));
        json_object_set_new(n, "containers", sorted_values(json_object_get(n, "containers")));
    }
    json_t *out = json_pack("{so sf}", "nodes", sorted_values(c.by_node), "stale_after",
                            s->cfg->server.stale_after);
    json_decref(c.by_node);
    srv_reply_json(s, req, 200, out);
}

/* ---- Series lookup shared by /series and /forecast --------------------- */

struct find_ctx {
    int64_t id;
};

static void find_one(void *arg, const struct store_series_info *si)
{
    ((struct find_ctx *)arg)->id = si->id;
}

/* Resolves node/metric/container parameters to a series id. Returns the id,
 * or 0 after having answered 400/404. */
static int64_t lookup_series(struct server *s, struct evhttp_request *req, struct evkeyvalq *q)
{
    const char *node = evhttp_find_header(q, "node");
    const char *metric = evhttp_find_header(q, "metric");
    const char *container = evhttp_find_header(q, "container");
    if (!node || !metric) {
        srv_reply_error(s, req, 400, "parameters 'node' and 'metric' are required");
        return 0;
    }
    struct store_filter f = {
        .node = node, .metric = metric, .container = container ? container : ""};
    struct find_ctx c = {0};
    store_each_series(s->st, &f, find_one, &c);
    if (c.id == 0)
        srv_reply_error(s, req, 404, "no series node=%.128s metric=%.128s container=%.128s", node,
                        metric, container ? container : "");
    return c.id;
}

/* from/to: Unix seconds; zero or negative means relative to now. */
static int time_range(struct server *s, struct evhttp_request *req, struct evkeyvalq *q,
                      double default_span, double *from, double *to)
{
    double now = srv_now();
    *from = -default_span;
    *to = 0;
    if (srv_param_double(s, req, q, "from", from) < 0 || srv_param_double(s, req, q, "to", to) < 0)
        return -1;
    if (*from <= 0)
        *from += now;
    if (*to <= 0)
        *to += now;
    if (*from > *to) {
        srv_reply_error(s, req, 400, "'from' (%.3f) is after 'to' (%.3f)", *from, *to);
        return -1;
    }
    return 0;
}

static json_t *points_json(const double *ts, const double *v, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("[ff]", ts[i], v[i]));
    return arr;
}

void query_series(struct server *s, struct evhttp_request *req)
{
    static const char *const params[] = {"node", "metric", "container", "from", "to", "step", NULL};
    struct evkeyvalq q;
    if (srv_query(s, req, params, &q) < 0)
        return;
    double from, to, step = 0;
    int64_t id;
    if (time_range(s, req, &q, 3600, &from, &to) < 0 ||
        srv_param_double(s, req, &q, "step", &step) < 0 || !(id = lookup_series(s, req, &q)))
        goto out;
    if (step < 0 || (step > 0 && step < 0.001) || (step > 0 && (to - from) / step > 1e6)) {
        srv_reply_error(s, req, 400,
                        "'step' must be at least 0.001 s and give at most 1000000 buckets "
                        "over [from, to]");
        goto out;
    }
    double *ts, *v;
    size_t n;
    if (store_read_points(s->reader, id, from, to, SERIES_MAX_POINTS + 1, &ts, &v, &n) < 0) {
        srv_reply_error(s, req, 500, "database read failed");
        goto out;
    }
    bool truncated = n > SERIES_MAX_POINTS;
    if (truncated)
        n = SERIES_MAX_POINTS;
    json_t *body = json_pack("{sf sf}", "from", from, "to", to);
    if (step > 0) {
        /* Buckets aligned to multiples of step: average and maximum. */
        json_t *avg = json_array(), *max = json_array();
        size_t i = 0;
        while (i < n) {
            double b = floor(ts[i] / step) * step, mean = 0, mx = -INFINITY;
            size_t cnt = 0;
            for (; i < n && floor(ts[i] / step) * step == b; i++) {
                /* A running mean: a sum of huge values would overflow. */
                mean += (v[i] - mean) / (double)++cnt;
                if (v[i] > mx)
                    mx = v[i];
            }
            json_array_append_new(avg, json_pack("[ff]", b, mean));
            json_array_append_new(max, json_pack("[ff]", b, mx));
        }
        json_object_set_new(body, "step", json_real(step));
        json_object_set_new(body, "points", avg);
        json_object_set_new(body, "max", max);
    } else {
        json_object_set_new(body, "points", points_json(ts, v, n));
    }
    if (truncated)
        json_object_set_new(body, "truncated", json_true());
    free(ts);
    free(v);
    srv_reply_json(s, req, 200, body);
out:
    evhttp_clear_headers(&q);
}

/* ---- /api/v1/stats ------------------------------------------------------ */

void query_stats(struct server *s, struct evhttp_request *req)
{
    if (no_params(s, req) < 0)
        return;
    struct store_stats st;
    store_get_stats(s->st, &st);
    uint64_t stored = 0;
    if (store_count_samples(s->reader, &stored) < 0) {
        srv_reply_error(s, req, 500, "database read failed");
        return;
    }
    srv_reply_json(s, req, 200,
                   json_pack("{sI sI sI sI sI sf sf sI}", "samples", (json_int_t)stored,
                             "samples_committed", (json_int_t)st.samples_committed, "series",
                             (json_int_t)st.series, "pending_log_rows",
                             (json_int_t)st.pending_log_rows, "commits", (json_int_t)st.commits,
                             "commit_seconds_sum", st.commit_seconds_sum, "commit_seconds_max",
                             st.commit_seconds_max, "commit_failures",
                             (json_int_t)st.commit_failures));
}

/* ---- /api/v1/forecast --------------------------------------------------- */

void query_forecast(struct server *s, struct evhttp_request *req)
{
    static const char *const params[] = {"node",   "metric",     "container", "horizon",
                                         "window", "confidence", "model",     NULL};
    struct evkeyvalq q;
    if (srv_query(s, req, params, &q) < 0)
        return;
    struct pred_opts o;
    pred_opts_default(&o);
    double window = 3600;
    o.horizon = 300;
    int64_t id;
    if (srv_param_double(s, req, &q, "horizon", &o.horizon) < 0 ||
        srv_param_double(s, req, &q, "window", &window) < 0 ||
        srv_param_double(s, req, &q, "confidence", &o.confidence) < 0)
        goto out;
    const char *model = evhttp_find_header(&q, "model");
    if (model && pred_model_parse(model, &o.model) < 0) {
        srv_reply_error(s, req, 400,
                        "parameter 'model': '%.32s' is not one of last, linear, seasonal, holt, "
                        "auto",
                        model);
        goto out;
    }
    if (!(o.horizon > 0) || !(window > 0) || !(o.confidence > 0 && o.confidence < 1)) {
        srv_reply_error(s, req, 400,
                        "horizon and window must be positive seconds, confidence in (0, 1)");
        goto out;
    }
    if (!(id = lookup_series(s, req, &q)))
        goto out;
    double *ts, *v;
    size_t n;
    double now = srv_now();
    if (store_read_points(s->reader, id, now - window, now, 0, &ts, &v, &n) < 0) {
        srv_reply_error(s, req, 500, "database read failed");
        goto out;
    }
    struct pred_forecast f;
    int rc = pred_forecast(ts, v, n, &o, &f);
    if (rc == -ENODATA) {
        char msg[256];
        pred_need_message(o.model, &f, n > 1 ? ts[n - 1] - ts[0] : 0, n, msg, sizeof msg);
        srv_reply_error(s, req, 422, "too little history in the last %.0f s: %s", window, msg);
    } else if (rc < 0) {
        srv_reply_error(s, req, 422, "cannot forecast this series (invalid input)");
    } else if (!isfinite(f.value) || !isfinite(f.lower) || !isfinite(f.upper) ||
               !isfinite(f.peak) || !isfinite(f.peak_lower) || !isfinite(f.peak_upper)) {
        srv_reply_error(s, req, 422,
                        "cannot forecast this series: the values are too large for a finite "
                        "forecast");
    } else {
        json_t *body =
            json_pack("{ss sf sf sf sf sf sf sf sI sf sf sf sf}", "model", pred_model_name(f.model),
                      "value", f.value, "lower", f.lower, "upper", f.upper, "peak", f.peak,
                      "peak_lower", f.peak_lower, "peak_upper", f.peak_upper, "peak_at", f.peak_at,
                      "n", (json_int_t)f.n, "horizon", o.horizon, "confidence", o.confidence, "at",
                      ts[n - 1] + o.horizon, "last_ts", ts[n - 1]);
        json_object_set_new(body, "fit", isfinite(f.fit) ? json_real(f.fit) : json_null());
        json_object_set_new(body, "mae", isfinite(f.mae) ? json_real(f.mae) : json_null());
        json_object_set_new(body, "calibrated", json_boolean(f.calibrated));
        srv_reply_json(s, req, 200, body);
    }
    free(ts);
    free(v);
out:
    evhttp_clear_headers(&q);
}

/* ---- /api/v1/services and /api/v1/decisions ----------------------------- */

void query_services(struct server *s, struct evhttp_request *req)
{
    if (no_params(s, req) < 0)
        return;
    json_t *svcs = s->services_fn ? s->services_fn(s->services_arg) : json_array();
    srv_reply_json(s, req, 200, json_pack("{so}", "services", svcs));
}

static void decision_add(void *arg, const struct store_decision *d)
{
    json_t *o = json_pack("{sI sf ss ss si si si}", "id", (json_int_t)d->id, "ts", d->ts, "service",
                          d->service, "action", d->action, "current", d->current, "desired",
                          d->desired, "target", d->target);
    json_object_set_new(o, "mode", d->mode ? json_string(d->mode) : json_null());
    json_object_set_new(o, "outcome", d->outcome ? json_string(d->outcome) : json_null());
    json_object_set_new(o, "reason", d->reason ? json_string(d->reason) : json_null());
    json_object_set_new(o, "error", d->error ? json_string(d->error) : json_null());
    json_t *inputs = d->inputs ? json_loads(d->inputs, 0, NULL) : NULL;
    json_object_set_new(o, "inputs", inputs ? inputs : json_null());
    json_array_append_new(arg, o);
}

void query_decisions(struct server *s, struct evhttp_request *req)
{
    static const char *const params[] = {"service", "from", "to", "limit", NULL};
    struct evkeyvalq q;
    if (srv_query(s, req, params, &q) < 0)
        return;
    double from, to, limit = 100;
    if (time_range(s, req, &q, 7 * 86400.0, &from, &to) < 0 ||
        srv_param_double(s, req, &q, "limit", &limit) < 0)
        goto out;
    if (limit < 1 || limit > 100000) {
        srv_reply_error(s, req, 400, "'limit' must be 1..100000");
        goto out;
    }
    json_t *arr = json_array();
    int rc = store_each_decision(s->reader, evhttp_find_header(&q, "service"), from, to, (int)limit,
                                 decision_add, arr);
    if (rc < 0) {
        json_decref(arr);
        srv_reply_error(s, req, 500, "database read failed");
        goto out;
    }
    srv_reply_json(s, req, 200, json_pack("{so}", "decisions", arr));
out:
    evhttp_clear_headers(&q);
}

/* ---- /metrics (Prometheus text exposition 0.0.4) ----------------------- */

/* Label values escape backslash, double quote and newline. Our names are
 * validated at ingest, but the escaping keeps the format right regardless. */
static void put_label(struct evbuffer *b, const char *name, const char *value, bool comma)
{
    evbuffer_add_printf(b, "%s%s=\"", comma ? "," : "", name);
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            evbuffer_add_printf(b, "\\%c", *p);
        else if (*p == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, p, 1);
    }
    evbuffer_add(b, "\"", 1);
}

static void metrics_series(void *arg, const struct store_series_info *si)
{
    struct evbuffer *b = arg;
    evbuffer_add_printf(b, "scalecast_series_value{");
    put_label(b, "node", si->node, false);
    put_label(b, "metric", si->metric, true);
    if (si->container[0]) {
        put_label(b, "container", si->container, true);
        put_label(b, "service", si->service, true);
    }
    evbuffer_add_printf(b, "} %.17g\n", si->last_value);
}

/* Replica gauges per autoscaled service, from the scaler's status (steals
 * `svcs`). */
static void services_metrics(struct evbuffer *b, json_t *svcs)
{
    static const struct {
        const char *key, *name, *help;
    } gauges[] = {
        {"current_replicas", "scalecast_service_replicas", "Replicas running now."},
        {"desired_replicas", "scalecast_service_desired_replicas", "Replicas last decided."},
        {"metric_value", "scalecast_service_metric_value", "Driving metric, aggregated."},
        {"forecast_upper", "scalecast_service_forecast_upper", "Upper forecast bound."},
    };
    for (size_t g = 0; g < sizeof gauges / sizeof gauges[0]; g++) {
        evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", gauges[g].name, gauges[g].help,
                            gauges[g].name);
        size_t i;
        json_t *svc;
        json_array_foreach(svcs, i, svc)
        {
            json_t *v = json_object_get(svc, gauges[g].key);
            const char *name = json_string_value(json_object_get(svc, "service"));
            if (!json_is_number(v) || !name)
                continue;
            evbuffer_add_printf(b, "%s{", gauges[g].name);
            put_label(b, "service", name, false);
            evbuffer_add_printf(b, "} %.17g\n", json_number_value(v));
        }
    }
    json_decref(svcs);
}

void query_metrics(struct server *s, struct evhttp_request *req)
{
    if (no_params(s, req) < 0)
        return;
    struct evbuffer *b = evbuffer_new();
    struct store_stats st;
    store_get_stats(s->st, &st);
    srv_count(s, 200); /* counted before rendering so the total includes this scrape */
    evbuffer_add_printf(b, "# HELP scalecast_http_requests_total HTTP requests answered, by "
                           "status code.\n# TYPE scalecast_http_requests_total counter\n");
    for (int code = 100; code < CODE_SLOTS; code++) {
        if (s->requests_by_code[code])
            evbuffer_add_printf(b, "scalecast_http_requests_total{code=\"%d\"} %llu\n", code,
                                (unsigned long long)s->requests_by_code[code]);
    }
    evbuffer_add_printf(
        b,
        "# HELP scalecast_samples_ingested_total Samples durably committed since start.\n"
        "# TYPE scalecast_samples_ingested_total counter\n"
        "scalecast_samples_ingested_total %llu\n"
        "# HELP scalecast_samples_rejected_batches_total Ingest requests refused as invalid.\n"
        "# TYPE scalecast_samples_rejected_batches_total counter\n"
        "scalecast_samples_rejected_batches_total %llu\n"
        "# HELP scalecast_commit_seconds Time spent in group-commit transactions.\n"
        "# TYPE scalecast_commit_seconds summary\n"
        "scalecast_commit_seconds_sum %.9f\n"
        "scalecast_commit_seconds_count %llu\n"
        "# HELP scalecast_commit_seconds_max Longest group commit since start.\n"
        "# TYPE scalecast_commit_seconds_max gauge\n"
        "scalecast_commit_seconds_max %.9f\n"
        "# HELP scalecast_commit_failures_total Group commits that failed (nothing stored).\n"
        "# TYPE scalecast_commit_failures_total counter\n"
        "scalecast_commit_failures_total %llu\n"
        "# HELP scalecast_series Series known to the server.\n"
        "# TYPE scalecast_series gauge\n"
        "scalecast_series %llu\n"
        "# HELP scalecast_pending_log_rows Committed ingest-log rows awaiting compaction.\n"
        "# TYPE scalecast_pending_log_rows gauge\n"
        "scalecast_pending_log_rows %llu\n",
        (unsigned long long)st.samples_committed, (unsigned long long)s->samples_rejected,
        st.commit_seconds_sum, (unsigned long long)st.commits, st.commit_seconds_max,
        (unsigned long long)st.commit_failures, (unsigned long long)st.series,
        (unsigned long long)st.pending_log_rows);
    if (s->services_fn)
        services_metrics(b, s->services_fn(s->services_arg));
    evbuffer_add_printf(b, "# HELP scalecast_series_value Latest value of each stored series.\n"
                           "# TYPE scalecast_series_value gauge\n");
    store_each_series(s->st, NULL, metrics_series, b);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, NULL, b);
    evbuffer_free(b);
}
