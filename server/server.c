/* HTTP front of scalecastd: routing, auth, ingest with deferred replies,
 * graceful shutdown. */
#include "server_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <zlib.h>

#include "conns.h"
#include "ingest.h"
#include "lineproto.h"
#include "log.h"
#include "text.h"
#include "xalloc.h"

#define SHUTDOWN_GRACE 10.0 /* seconds in-flight requests get after SIGTERM */

/* An ingest request waiting for its group commit. */
struct pending {
    struct server *srv;
    struct evhttp_request *req;
    size_t n;
    bool influx; /* answer like InfluxDB's /write: 204, no body */
    int status;
    char err[256];
    struct pending *next;
};

double srv_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void srv_count(struct server *s, int code)
{
    if (code >= 0 && code < CODE_SLOTS)
        s->requests_by_code[code]++;
}

void srv_reply_json(struct server *s, struct evhttp_request *req, int code, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        /* A value jansson cannot encode (not UTF-8, not finite): a server
         * bug, answered plainly rather than with a crash. */
        log_error("server", "cannot encode a %d answer as JSON", code);
        code = 500;
        text = strdup("{\"error\":\"internal error: answer could not be encoded\"}");
        if (!text)
            abort();
    }
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, text, strlen(text));
    evbuffer_add(buf, "\n", 1);
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, code, NULL, buf);
    evbuffer_free(buf);
    srv_count(s, code);
}

void srv_reply_error(struct server *s, struct evhttp_request *req, int code, const char *fmt, ...)
{
    char raw[1024], msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    /* Messages may quote request bytes: keep them printable ASCII. */
    text_escape(msg, sizeof msg, raw, sizeof raw);
    srv_reply_json(s, req, code, json_pack("{ss}", "error", msg));
}

int srv_query(struct server *s, struct evhttp_request *req, const char *const *allowed,
              struct evkeyvalq *q)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    q->tqh_first = NULL;
    q->tqh_last = &q->tqh_first;
    if (query && evhttp_parse_query_str(query, q) < 0) {
        srv_reply_error(s, req, 400, "malformed query string");
        return -1;
    }
    /* A misspelt parameter silently ignored would answer another question
     * than the one asked (export.csv?nod=x exporting everything). */
    for (struct evkeyval *kv = q->tqh_first; kv; kv = kv->next.tqe_next) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, kv->key) == 0;
        if (!ok) {
            char known[256] = "";
            for (const char *const *a = allowed; *a; a++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                         a == allowed ? "" : ", ", *a);
            srv_reply_error(s, req, 400, "unknown parameter '%.64s' (expected: %s)", kv->key,
                            known[0] ? known : "none");
            evhttp_clear_headers(q);
            return -1;
        }
    }
    return 0;
}

int srv_param_double(struct server *s, struct evhttp_request *req, struct evkeyvalq *q,
                     const char *name, double *out)
{
    const char *v = evhttp_find_header(q, name);
    if (!v)
        return 0;
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end != '\0' || !isfinite(d)) {
        srv_reply_error(s, req, 400, "parameter '%s': '%.64s' is not a number", name, v);
        return -1;
    }
    *out = d;
    return 0;
}

/* Constant-time comparison, so a token cannot be guessed byte by byte from
 * response times. */
static bool token_equal(const char *given, size_t glen, const char *want)
{
    size_t wlen = strlen(want);
    unsigned char diff = (unsigned char)(glen != wlen);
    for (size_t i = 0; i < wlen; i++)
        diff |= (unsigned char)(want[i] ^ (i < glen ? given[i] : 0));
    return diff == 0;
}

/* Checks the Authorization header against the tokens that may use this
 * route. The admin token may use every route. */
static bool authorized(struct server *s, struct evhttp_request *req, enum auth_class cls)
{
    const struct server_config *c = &s->cfg->server;
    const char *want = cls == AUTH_INGEST ? c->ingest_token
                       : cls == AUTH_READ ? c->read_token
                                          : NULL;
    if (cls == AUTH_NONE || (!want && !c->admin_token))
        return true;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!h)
        return false;
    /* "Bearer TOKEN", or "Token TOKEN" as InfluxDB clients send it. */
    const char *tok = NULL;
    if (strncasecmp(h, "Bearer ", 7) == 0)
        tok = h + 7;
    else if (strncasecmp(h, "Token ", 6) == 0)
        tok = h + 6;
    if (!tok)
        return false;
    size_t len = strlen(tok);
    bool ok = false;
    if (want)
        ok |= token_equal(tok, len, want);
    if (c->admin_token)
        ok |= token_equal(tok, len, c->admin_token);
    return ok;
}

/* ---- Ingest ----------------------------------------------------------- */

/* Called on the store's writer thread: hand the outcome to the loop. */
static void ingest_done(void *arg, int status, const char *err)
{
    struct pending *p = arg;
    struct server *s = p->srv;
    p->status = status;
    if (err)
        snprintf(p->err, sizeof p->err, "%s", err);
    pthread_mutex_lock(&s->done_lock);
    p->next = s->done_head;
    s->done_head = p;
    pthread_mutex_unlock(&s->done_lock);
    event_active(s->notify, EV_READ, 0);
}

/* 200 {"accepted":N}: the answer to nearly every request, written directly
 * (what srv_reply_json would produce, without building a JSON object). */
static void reply_accepted(struct server *s, struct evhttp_request *req, size_t n)
{
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add_printf(buf, "{\"accepted\":%zu}\n", n);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, 200, NULL, buf);
    evbuffer_free(buf);
    srv_count(s, 200);
}

/* On the loop thread: answer every request whose commit finished. */
static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    pthread_mutex_lock(&s->done_lock);
    struct pending *p = s->done_head;
    s->done_head = NULL;
    pthread_mutex_unlock(&s->done_lock);
    while (p) {
        struct pending *next = p->next;
        if (p->status == 0 && p->influx) {
            evhttp_send_reply(p->req, 204, "No Content", NULL);
            srv_count(s, 204);
        } else if (p->status == 0) {
            reply_accepted(s, p->req, p->n);
        } else if (p->status == -EINVAL) {
            s->samples_rejected++; /* parsed off the loop (a large body) */
            srv_reply_error(s, p->req, 400, "%s", p->err);
        } else {
            int code = p->status == -ENOSPC || p->status == -EBUSY ? 503 : 500;
            srv_reply_error(s, p->req, code, "%s; nothing of this batch was stored, retry later",
                            p->err);
        }
        s->inflight--;
        free(p);
        p = next;
    }
}

/* Inflates a gzip body (Telegraf's default content encoding) into *out,
 * refusing to grow past max bytes. Returns 0, -E2BIG past the limit, or
 * -EINVAL for corrupt data. */
static int gunzip(const unsigned char *in, size_t len, size_t max, unsigned char **out,
                  size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return -EINVAL;
    size_t cap = len * 4 + 1024 < max ? len * 4 + 1024 : max + 1;
    unsigned char *buf = xmalloc(cap);
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)len;
    int rc;
    do {
        if (z.total_out == cap) {
            if (cap > max) {
                rc = Z_BUF_ERROR;
                break;
            }
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            buf = xrealloc(buf, cap);
        }
        z.next_out = buf + z.total_out;
        z.avail_out = (uInt)(cap - z.total_out);
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END && z.avail_in > 0) {
            /* Concatenated gzip members form one body (RFC 1952 2.2). */
            uLong done = z.total_out;
            inflateReset(&z);
            z.total_out = done;
            rc = Z_OK;
        }
    } while (rc == Z_OK);
    size_t total = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(buf);
        return total > max ? -E2BIG : -EINVAL;
    }
    *out = buf;
    *outlen = total;
    return 0;
}

/* The request body, inflated when Content-Encoding says gzip. *owned is set
 * when the returned bytes must be freed. Returns NULL after having answered
 * the error. */
static const char *request_body(struct server *s, struct evhttp_request *req, size_t *len,
                                unsigned char **owned)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    *len = evbuffer_get_length(in);
    const char *body = *len ? (const char *)evbuffer_pullup(in, -1) : "";
    *owned = NULL;
    const char *enc = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Encoding");
    if (!enc || strcasecmp(enc, "identity") == 0)
        return body;
    if (strcasecmp(enc, "gzip") != 0) {
        srv_reply_error(s, req, 415, "Content-Encoding '%.32s' not supported (use gzip or none)",
                        enc);
        return NULL;
    }
    int rc = gunzip((const unsigned char *)body, *len, s->cfg->server.max_body_bytes, owned, len);
    if (rc == -E2BIG) {
        srv_reply_error(s, req, 413, "body inflates past max_body_size (%zu bytes)",
                        s->cfg->server.max_body_bytes);
        return NULL;
    }
    if (rc < 0) {
        srv_reply_error(s, req, 400, "body is not valid gzip data");
        return NULL;
    }
    return (const char *)*owned;
}

/* Refuses a batch the store must not acknowledge: samples the next
 * retention sweep would delete. Thread-safe (reads the config only). */
static int check_batch(struct server *s, const struct ingest_batch *b, char *err, size_t len)
{
    double cutoff = srv_now() - s->cfg->server.retention;
    for (size_t i = 0; i < b->n; i++) {
        const struct store_sample *x = &b->samples[i];
        if (x->ts < cutoff) {
            snprintf(err, len,
                     "sample of node '%s' metric '%s' at ts %.3f is older than the retention "
                     "(%.0f s): it would be deleted at once; nothing of this batch was stored",
                     x->node, x->metric, x->ts, s->cfg->server.retention);
            return -EINVAL;
        }
    }
    return 0;
}

/* Queues a parsed batch for the next group commit; the reply follows it. */
static void submit_batch(struct server *s, struct evhttp_request *req, struct ingest_batch *b,
                         bool influx)
{
    char err[512];
    if (check_batch(s, b, err, sizeof err) < 0) {
        s->samples_rejected++;
        srv_reply_error(s, req, 400, "%s", err);
        ingest_batch_free(b);
        return;
    }
    if (b->n == 0) {
        ingest_batch_free(b);
        if (influx) {
            evhttp_send_reply(req, 204, "No Content", NULL);
            srv_count(s, 204);
        } else {
            srv_reply_json(s, req, 200, json_pack("{si}", "accepted", 0));
        }
        return;
    }
    struct pending *p = xcalloc(1, sizeof *p);
    p->srv = s;
    p->req = req;
    p->n = b->n;
    p->influx = influx;
    s->inflight++;
    store_submit(s->st, b->samples, b->n, ingest_done, p);
    ingest_batch_free(b);
}

/* ---- Parsing large bodies off the loop ------------------------------------ */

/* Bodies this large are parsed on the parser thread, so that many
 * megabyte-sized batches at once do not hold up every other client (a
 * health check must stay fast). Smaller ones are parsed inline: a thread
 * hop would cost them more than the parse. */
#define OFFLOAD_BYTES (64 * 1024)

struct parse_job {
    struct pending *p;
    const char *body; /* borrowed from the request (or owned, see below) */
    size_t len;
    unsigned char *owned; /* inflated body to free, or NULL */
    struct parse_job *next;
};

static void *parser_main(void *arg)
{
    struct server *s = arg;
    pthread_mutex_lock(&s->parse_lock);
    for (;;) {
        while (!s->parse_head && !s->parse_stop)
            pthread_cond_wait(&s->parse_wake, &s->parse_lock);
        if (!s->parse_head)
            break;
        struct parse_job *j = s->parse_head;
        s->parse_head = j->next;
        if (!s->parse_head)
            s->parse_tail = NULL;
        pthread_mutex_unlock(&s->parse_lock);
        struct ingest_batch b;
        char err[512];
        int rc = ingest_parse_json(j->body, j->len, &b, err, sizeof err);
        if (rc == 0 && (rc = check_batch(s, &b, err, sizeof err)) < 0)
            ingest_batch_free(&b);
        free(j->owned);
        if (rc < 0) {
            ingest_done(j->p, -EINVAL, err);
        } else if (b.n == 0) {
            ingest_batch_free(&b);
            ingest_done(j->p, 0, NULL);
        } else {
            j->p->n = b.n;
            store_submit(s->st, b.samples, b.n, ingest_done, j->p);
            ingest_batch_free(&b);
        }
        free(j);
        pthread_mutex_lock(&s->parse_lock);
    }
    pthread_mutex_unlock(&s->parse_lock);
    return NULL;
}

static void offload_parse(struct server *s, struct evhttp_request *req, const char *body,
                          size_t len, unsigned char *owned)
{
    struct pending *p = xcalloc(1, sizeof *p);
    p->srv = s;
    p->req = req;
    s->inflight++;
    struct parse_job *j = xcalloc(1, sizeof *j);
    *j = (struct parse_job){p, body, len, owned, NULL};
    pthread_mutex_lock(&s->parse_lock);
    if (s->parse_tail)
        s->parse_tail->next = j;
    else
        s->parse_head = j;
    s->parse_tail = j;
    pthread_cond_signal(&s->parse_wake);
    pthread_mutex_unlock(&s->parse_lock);
}

static void handle_ingest(struct server *s, struct evhttp_request *req)
{
    const char *ctype = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    if (ctype && strncasecmp(ctype, "application/json", 16) != 0) {
        srv_reply_error(s, req, 415, "Content-Type must be application/json, not '%.64s'", ctype);
        return;
    }
    size_t len;
    unsigned char *owned;
    const char *body = request_body(s, req, &len, &owned);
    if (!body)
        return;
    if (len >= OFFLOAD_BYTES) {
        offload_parse(s, req, body, len, owned);
        return;
    }
    struct ingest_batch b;
    char err[512];
    int rc = ingest_parse_json(body, len, &b, err, sizeof err);
    free(owned);
    if (rc < 0) {
        s->samples_rejected++;
        srv_reply_error(s, req, 400, "%s", err);
        return;
    }
    submit_batch(s, req, &b, false);
}

/* InfluxDB line protocol at /write (1.x) and /api/v2/write (2.x), so an
 * existing Telegraf can feed scalecast (mapping: docs/telegraf.md). */
static void handle_influx_write(struct server *s, struct evhttp_request *req)
{
    /* db, rp, u, p (1.x) and org, bucket (2.x) are accepted and ignored:
     * scalecast has one database. */
    static const char *const params[] = {"precision", "db",     "rp",    "u",           "p",
                                         "org",       "bucket", "orgID", "consistency", NULL};
    struct evkeyvalq q;
    if (srv_query(s, req, params, &q) < 0)
        return;
    size_t len;
    unsigned char *owned;
    const char *body = request_body(s, req, &len, &owned);
    if (body) {
        struct lineproto_opts o = {evhttp_find_header(&q, "precision"), srv_now()};
        struct ingest_batch b;
        char err[512];
        int rc = lineproto_parse(body, len, &o, s->lp_state, &b, NULL, err, sizeof err);
        free(owned);
        if (rc < 0) {
            s->samples_rejected++;
            srv_reply_error(s, req, 400, "%s", err);
        } else {
            submit_batch(s, req, &b, true);
        }
    }
    evhttp_clear_headers(&q);
}

static void handle_healthz(struct server *s, struct evhttp_request *req)
{
    struct store_stats st;
    store_get_stats(s->st, &st);
    if (s->stopping) {
        srv_reply_error(s, req, 503, "shutting down");
        return;
    }
    if (store_writable(s->st) < 0) {
        srv_reply_error(s, req, 503, "database is not writable: the last commit failed");
        return;
    }
    srv_reply_json(s, req, 200, json_pack("{ss}", "status", "ok"));
}

/* ---- Routing -------------------------------------------------------- */

struct route {
    const char *path;
    enum evhttp_cmd_type method;
    enum auth_class auth;
    void (*fn)(struct server *s, struct evhttp_request *req);
};

static const struct route routes[] = {
    {"/api/v1/metrics", EVHTTP_REQ_POST, AUTH_INGEST, handle_ingest},
    {"/write", EVHTTP_REQ_POST, AUTH_INGEST, handle_influx_write},
    {"/api/v2/write", EVHTTP_REQ_POST, AUTH_INGEST, handle_influx_write},
    {"/healthz", EVHTTP_REQ_GET, AUTH_NONE, handle_healthz},
    {"/api/v1/nodes", EVHTTP_REQ_GET, AUTH_READ, query_nodes},
    {"/api/v1/series", EVHTTP_REQ_GET, AUTH_READ, query_series},
    {"/api/v1/stats", EVHTTP_REQ_GET, AUTH_READ, query_stats},
    {"/api/v1/forecast", EVHTTP_REQ_GET, AUTH_READ, query_forecast},
    {"/api/v1/services", EVHTTP_REQ_GET, AUTH_READ, query_services},
    {"/api/v1/decisions", EVHTTP_REQ_GET, AUTH_READ, query_decisions},
    {"/api/v1/export.csv", EVHTTP_REQ_GET, AUTH_READ, export_csv},
    {"/api/v1/decisions.csv", EVHTTP_REQ_GET, AUTH_READ, export_decisions_csv},
    {"/metrics", EVHTTP_REQ_GET, AUTH_READ, query_metrics},
};

static const char *method_name(enum evhttp_cmd_type m)
{
    return m == EVHTTP_REQ_POST ? "POST" : m == EVHTTP_REQ_GET ? "GET" : "?";
}

/* The answer is written: the connection's clock for its next request
 * starts. */
static void on_reply_done(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    conns_reply_done(s->conns, req);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (!path || !*path) /* evhttp gives "" for "//x" */
        path = "/";
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    const struct route *match = NULL;
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(routes[i].path, path) != 0)
            continue;
        path_known = true;
        if (routes[i].method == method ||
            (routes[i].method == EVHTTP_REQ_GET && method == EVHTTP_REQ_HEAD)) {
            match = &routes[i];
            break;
        }
    }
    if (!match && !path_known && (method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD) &&
        (strcmp(path, "/") == 0 || !strchr(path + 1, '/') || strncmp(path, "/lib/", 5) == 0)) {
        /* The dashboard is public like any static page: its data comes
         * from the API, which checks the read token. */
        if (webui_handle(s, req, path))
            return;
    }
    if (!match) {
        if (path_known) {
            for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
                if (strcmp(routes[i].path, path) == 0)
                    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                                      method_name(routes[i].method));
            }
            srv_reply_error(s, req, 405, "method not allowed on %s", path);
        } else {
            srv_reply_error(s, req, 404, "no such endpoint: %.128s", path);
        }
        return;
    }
    if (s->stopping && match->fn != handle_healthz) {
        /* Shutting down: a kept-alive connection gets no new work. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        srv_reply_error(s, req, 503,
                        "scalecastd is shutting down; retry on another instance "
                        "or later");
        return;
    }
    if (!authorized(s, req, match->auth)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"scalecast\"");
        srv_reply_error(s, req, 401, "missing or wrong token");
        return;
    }
    conns_request(s->conns, req);
    evhttp_request_set_on_complete_cb(req, on_reply_done, s);
    match->fn(s, req);
}

/* ---- Lifecycle ---------------------------------------------------------- */

static void on_drain_check(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    double waited = srv_now() - s->started;
    if ((s->inflight == 0 && s->exports == 0) || waited > SHUTDOWN_GRACE) {
        if (s->inflight || s->exports)
            log_warn("server", "shutdown: giving up on %u pending replies and %u exports",
                     s->inflight, s->exports);
        event_base_loopexit(s->base, NULL);
        return;
    }
    struct timeval tv = {0, 20000};
    evtimer_add(s->drain_timer, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *s = arg;
    if (s->stopping)
        return;
    s->stopping = true;
    log_info("server", "received %s: no longer accepting connections, finishing %u requests",
             sig == SIGTERM ? "SIGTERM" : "SIGINT", s->inflight);
    if (s->bound) {
        conns_unlisten(s->conns);
        evhttp_del_accept_socket(s->http, s->bound);
        s->bound = NULL;
    }
    s->started = srv_now();
    s->drain_timer = evtimer_new(s->base, on_drain_check, s);
    on_drain_check(-1, 0, s);
}

/* The configured limit, kept below the descriptor limit so that accept()
 * never runs out (the database, logs and engine calls need some too). */
static size_t max_connections(int configured)
{
    struct rlimit rl;
    size_t max = (size_t)configured;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        size_t room = rl.rlim_cur > 128 ? (size_t)rl.rlim_cur - 64 : (size_t)rl.rlim_cur / 2;
        if (max > room) {
            log_warn("server", "max_connections %d lowered to %zu: the descriptor limit is %llu",
                     configured, room, (unsigned long long)rl.rlim_cur);
            max = room;
        }
    }
    return max;
}

static int split_listen(const char *listen, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen)
        return -1;
    size_t hl = (size_t)(colon - listen);
    if (listen[0] == '[' && colon[-1] == ']') { /* [::1]:8080 */
        listen++;
        hl -= 2;
    }
    if (hl >= hostlen)
        return -1;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

static bool is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

static int setup_tls(struct server *s, const struct server_config *c, char *err, size_t errlen)
{
    if (!c->tls_cert && !c->tls_key)
        return 0;
    if (!c->tls_cert || !c->tls_key) {
        snprintf(err, errlen, "TLS needs both tls_cert and tls_key in [server]");
        return -1;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char reason[256];
        ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
        snprintf(err, errlen, "TLS: cannot use certificate %s / key %s: %s", c->tls_cert,
                 c->tls_key, reason);
        SSL_CTX_free(ctx);
        return -1;
    }
    s->ssl_ctx = ctx; /* the connection guard wraps each connection in TLS */
    return 0;
}

/* libevent's own warnings go through our log, one line each, like ours. */
static void libevent_log(int severity, const char *msg)
{
    enum log_level lvl = severity >= EVENT_LOG_ERR    ? LOG_ERROR
                         : severity >= EVENT_LOG_WARN ? LOG_WARN
                         : severity >= EVENT_LOG_MSG  ? LOG_INFO
                                                      : LOG_DEBUG;
    log_msg(lvl, "libevent", "%s", msg);
}

int server_create(const struct config *cfg, struct store *st, struct server **out, char *err,
                  size_t errlen)
{
    const struct server_config *c = &cfg->server;
    char host[256];
    int port;
    if (split_listen(c->listen, host, sizeof host, &port) < 0) {
        snprintf(err, errlen, "listen address '%s': expected HOST:PORT", c->listen);
        return -1;
    }
    bool any_token = c->ingest_token || c->read_token || c->admin_token;
    if (!is_loopback(host) && !any_token && !c->allow_unauthenticated) {
        snprintf(err, errlen,
                 "refusing to listen on %s without tokens: set ingest_token/read_token in "
                 "[server], or allow_unauthenticated = true to accept anyone on the network",
                 c->listen);
        return -1;
    }
    static bool threads_ready;
    if (!threads_ready) {
        event_set_log_callback(libevent_log);
        evthread_use_pthreads();
        threads_ready = true;
    }
    struct server *s = xcalloc(1, sizeof *s);
    s->cfg = cfg;
    s->st = st;
    pthread_mutex_init(&s->done_lock, NULL);
    pthread_mutex_init(&s->parse_lock, NULL);
    pthread_cond_init(&s->parse_wake, NULL);
    pthread_create(&s->parser, NULL, parser_main, s);
    s->parser_running = true;
    /* Coalesce epoll_ctl calls: evhttp toggles a connection's read and
     * write interest around every request, often twice within one loop
     * iteration. */
    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    s->base = event_base_new_with_config(ec);
    event_config_free(ec);
    s->http = evhttp_new(s->base);
    evhttp_set_max_body_size(s->http, (ev_ssize_t)c->max_body_bytes);
    evhttp_set_max_headers_size(s->http, (ev_ssize_t)c->max_header_bytes);
    /* The deadline for a request is conns.c's sweep, which ends overdue
     * connections a few at a time; evhttp's inactivity timeout (also what
     * ends an answer nobody reads) is the backstop two seconds later, so
     * thousands falling due together are not all closed in one turn. */
    double backstop = c->request_timeout + 2;
    struct timeval tmo = {(time_t)backstop, (suseconds_t)((backstop - floor(backstop)) * 1e6)};
    evhttp_set_timeout_tv(s->http, &tmo);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(s->http, on_request, s);
    if (setup_tls(s, c, err, errlen) < 0) {
        server_free(s);
        return -1;
    }
    s->conns = conns_new(s->base, s->http, s->ssl_ctx, c->request_timeout,
                         max_connections(c->max_connections));
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
                                    .ai_socktype = SOCK_STREAM,
                                    .ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICSERV};
    struct evutil_addrinfo *ai = NULL;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    if (evutil_getaddrinfo(host, portstr, &hints, &ai) == 0 && ai)
        s->bound = conns_listen(s->conns, s->http, ai->ai_addr, (int)ai->ai_addrlen);
    if (ai)
        evutil_freeaddrinfo(ai);
    if (!s->bound) {
        snprintf(err, errlen, "cannot listen on %s: %s", c->listen, strerror(errno));
        server_free(s);
        return -1;
    }
    if (store_reader_open(st, &s->reader) < 0) {
        snprintf(err, errlen, "cannot open a database reader");
        server_free(s);
        return -1;
    }
    s->lp_state = lineproto_state_new();
    s->notify = event_new(s->base, -1, EV_PERSIST | EV_READ, on_notify, s);
    s->sigterm = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->sigint = evsignal_new(s->base, SIGINT, on_signal, s);
    event_add(s->sigterm, NULL);
    event_add(s->sigint, NULL);
    signal(SIGPIPE, SIG_IGN);
    log_info("server", "listening on %s://%s", s->ssl_ctx ? "https" : "http", c->listen);
    *out = s;
    return 0;
}

void server_set_services(struct server *s, json_t *(*fn)(void *arg), void *arg)
{
    s->services_fn = fn;
    s->services_arg = arg;
}

/* Stops the parser thread once its queue is empty. */
static void stop_parser(struct server *s)
{
    if (!s->parser_running)
        return;
    pthread_mutex_lock(&s->parse_lock);
    s->parse_stop = true;
    pthread_cond_signal(&s->parse_wake);
    pthread_mutex_unlock(&s->parse_lock);
    pthread_join(s->parser, NULL);
    s->parser_running = false;
}

int server_run(struct server *s)
{
    event_base_dispatch(s->base);
    /* Parsed batches still go to the store, which the caller closes next. */
    stop_parser(s);
    return 0;
}

void server_free(struct server *s)
{
    if (!s)
        return;
    stop_parser(s);
    /* Completions that arrived after the loop stopped: their connections
     * are closed with evhttp below. */
    for (struct pending *p = s->done_head, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    if (s->conns)
        conns_unlisten(s->conns);
    if (s->http)
        evhttp_free(s->http);
    conns_free(s->conns);
    if (s->notify)
        event_free(s->notify);
    if (s->sigterm)
        event_free(s->sigterm);
    if (s->sigint)
        event_free(s->sigint);
    if (s->drain_timer)
        event_free(s->drain_timer);
    store_reader_close(s->reader);
    lineproto_state_free(s->lp_state);
    if (s->base)
        event_base_free(s->base);
    if (s->ssl_ctx)
        SSL_CTX_free(s->ssl_ctx);
    pthread_mutex_destroy(&s->done_lock);
    pthread_mutex_destroy(&s->parse_lock);
    pthread_cond_destroy(&s->parse_wake);
    free(s);
}
