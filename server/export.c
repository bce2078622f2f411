/* CSV export, streamed in chunks with bounded memory however large the range:
 * one page of points is formatted only when the previous one has been
 * written to the socket. */
#include "server_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

#define PAGE_POINTS 8192
#define MAX_EXPORTS 8

struct export_series {
    int64_t id;
    char *node, *container, *service, *metric;
};

struct export
{
    struct server *srv;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct store_reader *reader;
    struct export_series *series;
    size_t nseries, cap, cur;
    double from, to, next_from;
    uint64_t rows;
};

/* Shortest of %.15g/%.16g/%.17g that reads back as the same double: exact,
 * and "61.2" rather than "61.200000000000003". */
static void fmt_double(char *buf, size_t len, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void collect_series(void *arg, const struct store_series_info *si)
{
    struct export *ex = arg;
    ex->series = xgrow(ex->series, &ex->cap, ex->nseries + 1, sizeof *ex->series);
    ex->series[ex->nseries++] =
        (struct export_series){si->id, xstrdup(si->node), xstrdup(si->container),
                               xstrdup(si->service), xstrdup(si->metric)};
}

static int cmp_series(const void *a, const void *b)
{
    const struct export_series *x = a, *y = b;
    int c = strcmp(x->node, y->node);
    if (!c)
        c = strcmp(x->container, y->container);
    if (!c)
        c = strcmp(x->metric, y->metric);
    return c;
}

static void export_free(struct export *ex)
{
    for (size_t i = 0; i < ex->nseries; i++) {
        free(ex->series[i].node);
        free(ex->series[i].container);
        free(ex->series[i].service);
        free(ex->series[i].metric);
    }
    free(ex->series);
    store_reader_close(ex->reader);
    ex->srv->exports--;
    free(ex);
}

/* The client went away mid-stream: release the request and our state. */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
    struct export *ex = arg;
    log_info("export", "client closed the connection after %llu rows",
             (unsigned long long)ex->rows);
    evhttp_connection_set_closecb(evcon, NULL, NULL);
    evhttp_send_reply_end(ex->req);
    export_free(ex);
}

static void send_page(struct evhttp_connection *evcon, void *arg);

static void finish(struct export *ex)
{
    evhttp_connection_set_closecb(ex->evcon, NULL, NULL);
    evhttp_send_reply_end(ex->req);
    export_free(ex);
}

/* Formats the next page of rows and hands it to evhttp; called again when
 * that page has been written out. */
static void send_page(struct evhttp_connection *evcon, void *arg)
{
    struct export *ex = arg;
    struct evbuffer *buf = evbuffer_new();
    size_t rows = 0;
    while (ex->cur < ex->nseries && rows < PAGE_POINTS) {
        struct export_series *se = &ex->series[ex->cur];
        double *ts, *v;
        size_t n;
        if (store_read_points(ex->reader, se->id, ex->next_from, ex->to, PAGE_POINTS, &ts, &v, &n) <
            0) {
            log_error("export", "database read failed; ending the export early");
            evbuffer_free(buf);
            finish(ex);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            char tbuf[32], vbuf[32];
            fmt_double(tbuf, sizeof tbuf, ts[i]);
            fmt_double(vbuf, sizeof vbuf, v[i]);
            evbuffer_add_printf(buf, "%s,%s,%s,%s,%s,%s\n", tbuf, se->node, se->container,
                                se->service, se->metric, vbuf);
        }
        rows += n;
        ex->rows += n;
        if (n < PAGE_POINTS) {
            ex->cur++;
            ex->next_from = ex->from;
        } else {
            ex->next_from = nextafter(ts[n - 1], INFINITY);
        }
        free(ts);
        free(v);
    }
    if (evbuffer_get_length(buf) == 0) {
        evbuffer_free(buf);
        finish(ex);
        return;
    }
    evhttp_send_reply_chunk_with_cb(ex->req, buf, send_page, ex);
    evbuffer_free(buf);
}

/* from/to of an export: from defaults to the beginning, to to now; a
 * negative from (or a to <= 0) is relative to now. Returns 0, or -1 after
 * having answered 400. */
static int export_range(struct server *s, struct evhttp_request *req, struct evkeyvalq *q,
                        double *from, double *to)
{
    *from = *to = 0;
    if (srv_param_double(s, req, q, "from", from) < 0 || srv_param_double(s, req, q, "to", to) < 0)
        return -1;
    double now = srv_now();
    if (*from < 0)
        *from += now;
    if (*to <= 0)
        *to += now;
    return 0;
}

void export_csv(struct server *s, struct evhttp_request *req)
{
    static const char *const params[] = {"node", "metric", "container", "service",
                                         "from", "to",     NULL};
    struct evkeyvalq q;
    if (srv_query(s, req, params, &q) < 0)
        return;
    double from, to;
    if (export_range(s, req, &q, &from, &to) < 0)
        goto out;
    if (from > to) {
        srv_reply_error(s, req, 400, "'from' is after 'to'");
        goto out;
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        /* Headers only: no stream to start. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/csv; charset=utf-8");
        evhttp_send_reply(req, 200, NULL, NULL);
        srv_count(s, 200);
        goto out;
    }
    if (s->exports >= MAX_EXPORTS) {
        srv_reply_error(s, req, 503, "too many exports running (%d); retry later", MAX_EXPORTS);
        goto out;
    }
    struct export *ex = xcalloc(1, sizeof *ex);
    ex->srv = s;
    ex->req = req;
    ex->from = ex->next_from = from;
    ex->to = to;
    s->exports++;
    if (store_reader_open(s->st, &ex->reader) < 0) {
        export_free(ex);
        srv_reply_error(s, req, 500, "cannot open a database reader");
        goto out;
    }
    struct store_filter f = {.node = evhttp_find_header(&q, "node"),
                             .metric = evhttp_find_header(&q, "metric"),
                             .container = evhttp_find_header(&q, "container"),
                             .service = evhttp_find_header(&q, "service")};
    store_each_series(s->st, &f, collect_series, ex);
    if (ex->nseries > 1)
        qsort(ex->series, ex->nseries, sizeof *ex->series, cmp_series);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/csv; charset=utf-8");
    evhttp_add_header(h, "Content-Disposition", "attachment; filename=\"scalecast.csv\"");
    evhttp_send_reply_start(req, 200, "OK");
    srv_count(s, 200);
    ex->evcon = evhttp_request_get_connection(req);
    evhttp_connection_set_closecb(ex->evcon, on_close, ex);
    struct evbuffer *head = evbuffer_new();
    evbuffer_add_printf(head, "ts,node,container,service,metric,value\n");
    evhttp_send_reply_chunk_with_cb(req, head, send_page, ex);
    evbuffer_free(head);
out:
    evhttp_clear_headers(&q);
}

/* RFC 4180 field: quoted when it holds a comma, quote or newline. */
static void csv_field(struct evbuffer *b, const char *v, bool last)
{
    if (!v)
        v = "";
    if (strpbrk(v, ",\"\n\r")) {
        evbuffer_add(b, "\"", 1);
        for (const char *p = v; *p; p++) {
            if (*p == '"')
                evbuffer_add(b, "\"\"", 2);
            else
                evbuffer_add(b, p, 1);
        }
        evbuffer_add(b, "\"", 1);
    } else {
        evbuffer_add(b, v, strlen(v));
    }
    evbuffer_add(b, last ? "\n" : ",", 1);
}

static void decision_row(void *arg, const struct store_decision *d)
{
    struct evbuffer *b = arg;
    char tbuf[32];
    fmt_double(tbuf, sizeof tbuf, d->ts);
    evbuffer_add_printf(b, "%s,", tbuf);
    csv_field(b, d->service, false);
    csv_field(b, d->action, false);
    evbuffer_add_printf(b, "%d,%d,%d,", d->current, d->desired, d->target);
    csv_field(b, d->mode, false);
    csv_field(b, d->outcome, false);
    csv_field(b, d->reason, false);
    csv_field(b, d->error, true);
}

void export_decisions_csv(struct server *s, struct evhttp_request *req)
{
    static const char *const params[] = {"service", "from", "to", NULL};
    struct evkeyvalq q;
    if (srv_query(s, req, params, &q) < 0)
        return;
    double from, to;
    if (export_range(s, req, &q, &from, &to) < 0)
        goto out;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "ts,service,action,current,desired,target,mode,outcome,reason,error\n");
    if (store_each_decision(s->reader, evhttp_find_header(&q, "service"), from, to, 0, decision_row,
                            b) < 0) {
        evbuffer_free(b);
        srv_reply_error(s, req, 500, "database read failed");
        goto out;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/csv; charset=utf-8");
    evhttp_send_reply(req, 200, NULL, b);
    srv_count(s, 200);
    evbuffer_free(b);
out:
    evhttp_clear_headers(&q);
}
