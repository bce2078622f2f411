/* Ingestion load generator: closed-loop HTTP/1.1 keep-alive POSTs of
 * pre-generated, real-shaped metric batches to scalecastd or InfluxDB 1.x.
 *
 * Every connection sends one request and waits for its answer before it sends
 * the next (closed loop, no pipelining). All bodies are generated before the
 * run; per request the generator only copies a template into the
 * connection's own buffer and patches its fixed-width timestamps, so every
 * sample sent is unique by (node, container, metric, ts) and nothing is
 * deduplicated. One thread, one epoll loop, no allocation per request.
 *
 * The same samples are rendered as scalecast JSON or as InfluxDB line
 * protocol (measurement "host" or "container", tags node/container/service,
 * one field per metric), so both servers receive identical data.
 *
 * Output: a human-readable summary on stdout, then one "RESULT k=v ..." line
 * for scripts (see bench/ingest/README.md). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "xalloc.h"

#define MAX_CONNS 1024
#define RBUF_SIZE 16384
#define CAPTURE_MAX 512
#define BATCH_VARIANTS 16 /* value sets cycled through by the batch shape */
#define AGENT_VARIANTS 4  /* value sets per agent */
#define MAX_METRICS 10

/* influx: one line per sample object, a field per metric (as Telegraf writes);
 * influx-metric: one line per sample, the metric as measurement, field "value". */
enum format { FMT_SCALECAST, FMT_INFLUX, FMT_INFLUX_METRIC };
static const char *const format_names[] = {"scalecast", "influx", "influx-metric"};
enum shape { SHAPE_BATCH, SHAPE_AGENT };

struct opts {
    const char *host;
    int port;
    enum format format;
    const char *db;
    enum shape shape;
    int nodes;   /* batch: nodes per POST; agent: number of agents */
    int metrics; /* batch: metrics per node */
    int conns;
    double warmup, duration, drain_timeout, req_timeout;
    int64_t ts_start_ms;
    int64_t interval_ms;
    const char *token;
    int watch_pid;
};

/* ---- Latency histogram (log-linear, < 1.6% bucket width, fixed memory) ---- */

#define HIST_SUB_BITS 7
#define HIST_HALF (1u << (HIST_SUB_BITS - 1))
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_HALF + (1u << HIST_SUB_BITS))

struct hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t max;
    double sum;
};

static unsigned hist_index(uint64_t v)
{
    if (v < (1u << HIST_SUB_BITS))
        return (unsigned)v;
    unsigned e = (unsigned)(63 - __builtin_clzll(v)) - (HIST_SUB_BITS - 1);
    return e * HIST_HALF + (unsigned)(v >> e);
}

/* The upper bound of a bucket: percentiles are reported conservatively. */
static uint64_t hist_upper(unsigned idx)
{
    if (idx < (1u << HIST_SUB_BITS))
        return idx;
    unsigned e = idx / HIST_HALF - 1;
    uint64_t m = idx - e * HIST_HALF;
    return ((m + 1) << e) - 1;
}

static void hist_add(struct hist *h, uint64_t v)
{
    h->counts[hist_index(v)]++;
    h->total++;
    h->sum += (double)v;
    if (v > h->max)
        h->max = v;
}

static uint64_t hist_pct(const struct hist *h, double p)
{
    if (h->total == 0)
        return 0;
    uint64_t want = (uint64_t)ceil(p * (double)h->total);
    if (want == 0)
        want = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            uint64_t u = hist_upper(i);
            return u < h->max ? u : h->max;
        }
    }
    return h->max;
}

/* ---- Request templates ---------------------------------------------------- */

/* A ready-to-send request (header and body in one buffer) whose timestamp
 * digits sit at ts_off[]; every timestamp of a template gets the same value. */
struct tmpl {
    char *buf;
    size_t len;
    size_t *ts_off;
    size_t n_ts;
    uint32_t samples;
};

struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap)
        b->p = xgrow(b->p, &b->cap, b->len + n + 1, 1);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        abort(); /* only short, program-made strings are formatted here */
    sb_put(b, tmp, (size_t)n);
}

/* Width of the patched timestamp: "SSSSSSSSSS.mmm" (s) or ms digits (influx). */
static size_t ts_width(enum format f)
{
    return f == FMT_SCALECAST ? 14 : 13;
}

static void format_ts(enum format f, int64_t ms, char *out /* out: ts_width(f) */)
{
    char tmp[32];
    if (f == FMT_SCALECAST)
        snprintf(tmp, sizeof tmp, "%010" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);
    else
        snprintf(tmp, sizeof tmp, "%013" PRId64, ms);
    memcpy(out, tmp, ts_width(f));
}

struct offs {
    size_t *v;
    size_t n, cap;
};

static void ts_placeholder(struct sbuf *b, struct offs *o, enum format f)
{
    o->v = xgrow(o->v, &o->cap, o->n + 1, sizeof *o->v);
    o->v[o->n++] = b->len;
    sb_put(b, "00000000000000", ts_width(f));
}

/* What the agent reports (see server docs); the bench sends the first
 * `metrics` of them for hosts and cpu/mem for containers. */
static const char *const metric_names[MAX_METRICS] = {
    "cpu",        "mem",        "load1",          "disk_read_bps", "disk_write_bps",
    "net_rx_bps", "net_tx_bps", "mem_used_bytes", "procs",         "fs_used",
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double rng_unit(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* One series' random walk, in the range and resolution of its metric. */
static void walk_value(int metric, double *v /* in/out */, char *out, size_t outlen)
{
    static const double lim[MAX_METRICS] = {100,    100,    16,     5e8,  5e8,
                                            1.25e9, 1.25e9, 6.4e10, 2000, 100};
    double step = lim[metric] * 0.02 * (rng_unit() - 0.5);
    double x = *v + step;
    if (x < 0)
        x = -x;
    if (x > lim[metric])
        x = 2 * lim[metric] - x;
    *v = x;
    if (metric == 0 || metric == 1 || metric == 2 || metric == 9)
        snprintf(out, outlen, "%.2f", x);
    else
        snprintf(out, outlen, "%.0f", x);
}

/* Appends one sample object (scalecast) or one line (influx) to b. */
static void put_sample(struct sbuf *b, struct offs *o, enum format f, const char *node,
                       const char *container, const char *service, int nmetrics,
                       double *state /* in/out: nmetrics walks */)
{
    char val[64];
    if (f == FMT_SCALECAST) {
        sb_str(b, "{\"ts\":");
        ts_placeholder(b, o, f);
        if (container)
            sb_printf(b, ",\"container\":\"%s\",\"service\":\"%s\"", container, service);
        sb_str(b, ",\"metrics\":{");
        for (int m = 0; m < nmetrics; m++) {
            walk_value(m, &state[m], val, sizeof val);
            sb_printf(b, "%s\"%s\":%s", m ? "," : "", metric_names[m], val);
        }
        sb_str(b, "}}");
        return;
    }
    if (f == FMT_INFLUX_METRIC) {
        for (int m = 0; m < nmetrics; m++) {
            walk_value(m, &state[m], val, sizeof val);
            if (container)
                sb_printf(b, "%s,node=%s,container=%s,service=%s value=%s ", metric_names[m], node,
                          container, service, val);
            else
                sb_printf(b, "%s,node=%s value=%s ", metric_names[m], node, val);
            ts_placeholder(b, o, f);
            sb_str(b, "\n");
        }
        return;
    }
    if (container)
        sb_printf(b, "container,node=%s,container=%s,service=%s ", node, container, service);
    else
        sb_printf(b, "host,node=%s ", node);
    for (int m = 0; m < nmetrics; m++) {
        walk_value(m, &state[m], val, sizeof val);
        sb_printf(b, "%s%s=%s", m ? "," : "", metric_names[m], val);
    }
    sb_str(b, " ");
    ts_placeholder(b, o, f);
    sb_str(b, "\n");
}

static void finish_tmpl(const struct opts *op, struct sbuf *body, struct offs *o, uint32_t samples,
                        struct tmpl *t /* out */)
{
    struct sbuf req = {0};
    char auth[512] = "";
    if (op->token)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", op->token);
    if (op->format == FMT_SCALECAST)
        sb_str(&req, "POST /api/v1/metrics HTTP/1.1\r\n");
    else
        sb_printf(&req, "POST /write?db=%s&precision=ms HTTP/1.1\r\n", op->db);
    sb_printf(&req, "Host: %s:%d\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", op->host,
              op->port, op->format == FMT_SCALECAST ? "application/json" : "text/plain", body->len);
    sb_str(&req, auth);
    sb_str(&req, "\r\n");
    size_t hdr = req.len;
    sb_put(&req, body->p, body->len);
    for (size_t i = 0; i < o->n; i++)
        o->v[i] += hdr;
    t->buf = req.p;
    t->len = req.len;
    t->ts_off = o->v;
    t->n_ts = o->n;
    t->samples = samples;
    free(body->p);
}

/* Batch shape: one tick of `nodes` nodes x `metrics` metrics, as a relay
 * sends it (a JSON array of node objects, or one line per node). */
static void build_batch(const struct opts *op, struct tmpl *t /* out */, int nt)
{
    double *state = xcalloc((size_t)op->nodes * MAX_METRICS, sizeof *state);
    for (size_t i = 0; i < (size_t)op->nodes * MAX_METRICS; i++)
        state[i] = 30 + 20 * rng_unit();
    for (int v = 0; v < nt; v++) {
        struct sbuf b = {0};
        struct offs o = {0};
        char node[32];
        if (op->format == FMT_SCALECAST)
            sb_str(&b, "[");
        for (int n = 0; n < op->nodes; n++) {
            snprintf(node, sizeof node, "node-%05d", n);
            if (op->format == FMT_SCALECAST)
                sb_printf(&b, "%s{\"node\":\"%s\",\"samples\":[", n ? "," : "", node);
            put_sample(&b, &o, op->format, node, NULL, NULL, op->metrics,
                       &state[(size_t)n * MAX_METRICS]);
            if (op->format == FMT_SCALECAST)
                sb_str(&b, "]}");
        }
        if (op->format == FMT_SCALECAST)
            sb_str(&b, "]");
        finish_tmpl(op, &b, &o, (uint32_t)(op->nodes * op->metrics), &t[v]);
    }
    free(state);
}

/* Agent shape: one agent's push of one tick, 5-10 samples: host metrics plus
 * cpu/mem of 0-2 containers. Template index = agent * AGENT_VARIANTS + v. */
static void build_agents(const struct opts *op, struct tmpl *t /* out */)
{
    for (int a = 0; a < op->nodes; a++) {
        int total = 5 + a % 6;
        int containers = a % 3;
        int host_metrics = total - 2 * containers;
        double state[3][MAX_METRICS];
        for (int i = 0; i < 3; i++)
            for (int m = 0; m < MAX_METRICS; m++)
                state[i][m] = 30 + 20 * rng_unit();
        char node[32], cont[48], svc[16];
        snprintf(node, sizeof node, "node-%05d", a);
        for (int v = 0; v < AGENT_VARIANTS; v++) {
            struct sbuf b = {0};
            struct offs o = {0};
            if (op->format == FMT_SCALECAST)
                sb_printf(&b, "{\"node\":\"%s\",\"samples\":[", node);
            put_sample(&b, &o, op->format, node, NULL, NULL, host_metrics, state[0]);
            for (int c = 0; c < containers; c++) {
                snprintf(svc, sizeof svc, "svc%d", (a + c) % 7);
                snprintf(cont, sizeof cont, "%s.%d", svc, c + 1);
                if (op->format == FMT_SCALECAST)
                    sb_str(&b, ",");
                put_sample(&b, &o, op->format, node, cont, svc, 2, state[c + 1]);
            }
            if (op->format == FMT_SCALECAST)
                sb_str(&b, "]}");
            finish_tmpl(op, &b, &o, (uint32_t)total, &t[a * AGENT_VARIANTS + v]);
        }
    }
}

/* ---- Connections ---------------------------------------------------------- */

enum rstate { R_HDR, R_BODY, R_CHUNK_SIZE, R_CHUNK_DATA, R_CHUNK_CRLF, R_TRAILER };

struct conn {
    int fd;
    bool busy; /* a request is in flight */
    bool want_out;
    char *req; /* private copy of the template being sent */
    size_t req_len, req_off;
    uint32_t samples;
    uint64_t t_start;
    /* response parser */
    char rbuf[RBUF_SIZE];
    size_t rlen;
    enum rstate rs;
    int status;
    bool close_after;
    uint64_t remain; /* body or chunk bytes still expected */
    char capture[CAPTURE_MAX + 1];
    size_t cap_len;
};

struct stats {
    uint64_t reqs, samples, errors;
    struct hist lat;
};

struct run {
    const struct opts *op;
    struct tmpl *tmpls;
    size_t n_tmpls;
    struct conn *conns;
    int ep;
    struct sockaddr_in addr;
    enum { PH_WARMUP, PH_MEASURE, PH_DRAIN } phase;
    uint64_t next_req; /* global request counter: picks template and tick */
    int64_t max_tick;
    int inflight;
    struct stats win; /* requests completed inside the measured window */
    /* totals over the whole run, warm-up and drain included */
    uint64_t acked_samples, acked_reqs, rejected_samples, lost_samples, total_errors;
    uint64_t accepted_mismatch;
    char first_error[256];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void note_error(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(struct run *r, const char *fmt, ...)
{
    r->total_errors++;
    if (r->phase == PH_MEASURE)
        r->win.errors++;
    if (r->first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->first_error, sizeof r->first_error, fmt, ap);
    va_end(ap);
    for (char *p = r->first_error; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

static int conn_open(struct run *r, struct conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Blocking connect: loopback only, it completes at once or is refused. */
    if (connect(fd, (struct sockaddr *)&r->addr, sizeof r->addr) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    c->fd = fd;
    c->want_out = false;
    c->rlen = 0;
    return 0;
}

static void set_out(struct run *r, struct conn *c, bool on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = on;
}

static void conn_close(struct run *r, struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
}

/* The request on c has no answer and never will: its outcome is unknown (the
 * server may or may not have stored it). The connection is reopened by the
 * main loop. */
static void conn_fail(struct run *r, struct conn *c, const char *what, int err)
{
    if (c->busy) {
        c->busy = false;
        r->inflight--;
        r->lost_samples += c->samples;
    }
    note_error(r, "connection %d: %s: %s", (int)(c - r->conns), what,
               err ? strerror(err) : "closed by server");
    conn_close(r, c);
}

static void conn_write(struct run *r, struct conn *c)
{
    while (c->req_off < c->req_len) {
        ssize_t n = send(c->fd, c->req + c->req_off, c->req_len - c->req_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->req_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out)
                set_out(r, c, true);
            return;
        }
        conn_fail(r, c, "send", n < 0 ? errno : EPIPE);
        return;
    }
    if (c->want_out)
        set_out(r, c, false);
}

/* Picks the next request (template and tick), copies it into c's buffer,
 * stamps its timestamps and starts sending it. */
static void start_request(struct run *r, struct conn *c)
{
    const struct opts *op = r->op;
    uint64_t i = r->next_req++;
    const struct tmpl *t;
    int64_t tick;
    if (op->shape == SHAPE_BATCH) {
        t = &r->tmpls[i % r->n_tmpls];
        tick = (int64_t)i;
    } else {
        uint64_t agent = i % (uint64_t)op->nodes;
        tick = (int64_t)(i / (uint64_t)op->nodes);
        t = &r->tmpls[agent * AGENT_VARIANTS + (uint64_t)tick % AGENT_VARIANTS];
    }
    if (tick > r->max_tick)
        r->max_tick = tick;
    memcpy(c->req, t->buf, t->len);
    char ts[16];
    format_ts(op->format, op->ts_start_ms + tick * op->interval_ms, ts);
    size_t w = ts_width(op->format);
    for (size_t k = 0; k < t->n_ts; k++)
        memcpy(c->req + t->ts_off[k], ts, w);
    c->req_len = t->len;
    c->req_off = 0;
    c->samples = t->samples;
    c->busy = true;
    r->inflight++;
    c->rs = R_HDR;
    c->status = 0;
    c->close_after = false;
    c->cap_len = 0;
    c->capture[0] = '\0';
    c->t_start = now_ns();
    conn_write(r, c);
}

/* scalecastd answers 200 {"accepted": N}; returns N or -1 if absent. */
static int64_t parse_accepted(const char *body)
{
    const char *p = strstr(body, "\"accepted\"");
    if (!p)
        return -1;
    p += strlen("\"accepted\"");
    while (*p == ' ' || *p == '\t' || *p == ':')
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    return (int64_t)strtoull(p, NULL, 10);
}

static void finish_response(struct run *r, struct conn *c)
{
    uint64_t lat = now_ns() - c->t_start;
    c->busy = false;
    r->inflight--;
    if (c->status < 200 || c->status > 299) {
        r->rejected_samples += c->samples;
        note_error(r, "HTTP %d: %s", c->status, c->capture);
        return;
    }
    uint64_t acked = c->samples;
    if (r->op->format == FMT_SCALECAST) {
        int64_t n = parse_accepted(c->capture);
        if (n != (int64_t)c->samples) {
            r->accepted_mismatch++;
            note_error(r, "HTTP %d for %u samples answered '%s'", c->status, c->samples,
                       c->capture);
            if (n < 0) {
                r->rejected_samples += c->samples;
                return;
            }
            acked = (uint64_t)n;
        }
    }
    r->acked_samples += acked;
    r->acked_reqs++;
    if (r->phase == PH_MEASURE) {
        r->win.reqs++;
        r->win.samples += acked;
        hist_add(&r->win.lat, lat);
    }
}

static void consume(struct conn *c, size_t n)
{
    memmove(c->rbuf, c->rbuf + n, c->rlen - n);
    c->rlen -= n;
}

static void capture_body(struct conn *c, const char *p, size_t n)
{
    size_t room = CAPTURE_MAX - c->cap_len;
    if (n > room)
        n = room;
    memcpy(c->capture + c->cap_len, p, n);
    c->cap_len += n;
    c->capture[c->cap_len] = '\0';
}

static bool header_is(const char *line, size_t len, const char *name, const char **val)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    *val = line + n + 1;
    while (**val == ' ' || **val == '\t')
        (*val)++;
    return true;
}

/* Parses the status line and headers in rbuf[0, hlen). Returns 0, or -1 if
 * the answer is not HTTP/1.x or has a body this client cannot delimit. */
static int parse_head(struct conn *c, size_t hlen)
{
    if (hlen < 12 || memcmp(c->rbuf, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)c->rbuf[9]))
        return -1;
    c->status = (c->rbuf[9] - '0') * 100 + (c->rbuf[10] - '0') * 10 + (c->rbuf[11] - '0');
    c->close_after = c->rbuf[7] == '0';
    bool chunked = false, have_len = false;
    uint64_t len = 0;
    const char *p = memchr(c->rbuf, '\n', hlen);
    while (p && (size_t)(p + 1 - c->rbuf) < hlen) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\n', hlen - (size_t)(line - c->rbuf));
        if (!eol)
            break;
        size_t ll = (size_t)(eol - line);
        const char *v;
        if (header_is(line, ll, "content-length", &v)) {
            len = strtoull(v, NULL, 10);
            have_len = true;
        } else if (header_is(line, ll, "transfer-encoding", &v)) {
            chunked = strncasecmp(v, "chunked", 7) == 0;
        } else if (header_is(line, ll, "connection", &v)) {
            if (strncasecmp(v, "close", 5) == 0)
                c->close_after = true;
            else if (strncasecmp(v, "keep-alive", 10) == 0)
                c->close_after = false;
        }
        p = eol;
    }
    if (c->status == 204 || c->status == 304 || (c->status >= 100 && c->status < 200)) {
        c->rs = R_BODY;
        c->remain = 0;
    } else if (chunked) {
        c->rs = R_CHUNK_SIZE;
    } else if (have_len) {
        c->rs = R_BODY;
        c->remain = len;
    } else {
        return -1;
    }
    return 0;
}

/* Advances the response parser over rbuf. Returns 1 when a whole response
 * has been read, 0 when more bytes are needed, -1 on a protocol error. */
static int parse_response(struct conn *c)
{
    for (;;) {
        char *crlf;
        size_t n;
        switch (c->rs) {
        case R_HDR:
            crlf = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
            if (!crlf)
                return c->rlen == RBUF_SIZE ? -1 : 0;
            n = (size_t)(crlf - c->rbuf) + 4;
            if (parse_head(c, n) < 0)
                return -1;
            consume(c, n);
            if (c->status >= 100 && c->status < 200) {
                c->rs = R_HDR; /* interim answer: the real one follows */
                continue;
            }
            break;
        case R_BODY:
        case R_CHUNK_DATA:
            n = c->rlen < c->remain ? c->rlen : (size_t)c->remain;
            capture_body(c, c->rbuf, n);
            consume(c, n);
            c->remain -= n;
            if (c->remain > 0)
                return 0;
            if (c->rs == R_BODY)
                return 1;
            c->rs = R_CHUNK_CRLF;
            break;
        case R_CHUNK_CRLF:
            if (c->rlen < 2)
                return 0;
            if (memcmp(c->rbuf, "\r\n", 2) != 0)
                return -1;
            consume(c, 2);
            c->rs = R_CHUNK_SIZE;
            break;
        case R_CHUNK_SIZE:
            crlf = memmem(c->rbuf, c->rlen, "\r\n", 2);
            if (!crlf)
                return c->rlen == RBUF_SIZE ? -1 : 0;
            if (!isxdigit((unsigned char)c->rbuf[0]))
                return -1;
            c->remain = strtoull(c->rbuf, NULL, 16);
            consume(c, (size_t)(crlf - c->rbuf) + 2);
            c->rs = c->remain ? R_CHUNK_DATA : R_TRAILER;
            break;
        case R_TRAILER:
            crlf = memmem(c->rbuf, c->rlen, "\r\n", 2);
            if (!crlf)
                return c->rlen == RBUF_SIZE ? -1 : 0;
            n = (size_t)(crlf - c->rbuf);
            consume(c, n + 2);
            if (n == 0)
                return 1;
            break;
        }
    }
}

static void conn_read(struct run *r, struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_fail(r, c, "recv", n < 0 ? errno : 0);
            return;
        }
        c->rlen += (size_t)n;
        if (!c->busy) {
            conn_fail(r, c, "answer nobody asked for", EPROTO);
            return;
        }
        int rc = parse_response(c);
        if (rc < 0) {
            conn_fail(r, c, "malformed HTTP answer", EPROTO);
            return;
        }
        if (rc == 0)
            continue;
        finish_response(r, c);
        if (c->rlen > 0 || c->close_after) {
            if (c->rlen > 0)
                note_error(r, "connection %d: bytes after the answer", (int)(c - r->conns));
            conn_close(r, c);
            return;
        }
        if (r->phase != PH_DRAIN)
            start_request(r, c);
        return;
    }
}

/* ---- CPU accounting ------------------------------------------------------- */

/* This process's CPU seconds so far: user (out) and system (returned). */
static double self_cpu_s(double *user /* out */)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    return (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds used so far by process pid (all its threads), or -1. */
static double proc_cpu_s(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- Run ------------------------------------------------------------------ */

static void reopen_idle(struct run *r, uint64_t now, uint64_t *retry_at)
{
    if (r->phase == PH_DRAIN || now < *retry_at)
        return;
    for (int i = 0; i < r->op->conns; i++) {
        struct conn *c = &r->conns[i];
        if (c->fd >= 0)
            continue;
        int rc = conn_open(r, c);
        if (rc < 0) {
            note_error(r, "connect to %s:%d: %s", r->op->host, r->op->port, strerror(-rc));
            *retry_at = now + 100000000ull; /* back off 100 ms */
            return;
        }
        start_request(r, c);
    }
}

static void check_timeouts(struct run *r, uint64_t now)
{
    uint64_t limit = (uint64_t)(r->op->req_timeout * 1e9);
    for (int i = 0; i < r->op->conns; i++) {
        struct conn *c = &r->conns[i];
        if (c->fd >= 0 && c->busy && now - c->t_start > limit)
            conn_fail(r, c, "no answer within --timeout", ETIMEDOUT);
    }
}

struct window {
    uint64_t t0, t1;
    double usr0, usr1, sys0, sys1, srv0, srv1;
};

static void run_loop(struct run *r, struct window *w /* out */)
{
    const struct opts *op = r->op;
    uint64_t start = now_ns();
    uint64_t t_measure = start + (uint64_t)(op->warmup * 1e9);
    uint64_t t_end = t_measure + (uint64_t)(op->duration * 1e9);
    uint64_t t_drain_end = t_end + (uint64_t)(op->drain_timeout * 1e9);
    uint64_t retry_at = 0, next_check = start;
    struct epoll_event evs[64];

    r->phase = PH_WARMUP;
    for (;;) {
        uint64_t now = now_ns();
        if (r->phase == PH_WARMUP && now >= t_measure) {
            memset(&r->win, 0, sizeof r->win);
            r->phase = PH_MEASURE;
            w->t0 = now;
            w->sys0 = self_cpu_s(&w->usr0);
            w->srv0 = op->watch_pid ? proc_cpu_s(op->watch_pid) : -1;
        }
        if (r->phase == PH_MEASURE && now >= t_end) {
            r->phase = PH_DRAIN;
            w->t1 = now;
            w->sys1 = self_cpu_s(&w->usr1);
            w->srv1 = op->watch_pid ? proc_cpu_s(op->watch_pid) : -1;
        }
        if (r->phase == PH_DRAIN && (r->inflight == 0 || now >= t_drain_end))
            break;
        reopen_idle(r, now, &retry_at);
        if (now >= next_check) {
            check_timeouts(r, now);
            next_check = now + 100000000ull;
        }
        uint64_t next = r->phase == PH_WARMUP    ? t_measure
                        : r->phase == PH_MEASURE ? t_end
                                                 : t_drain_end;
        if (next > next_check)
            next = next_check;
        int timeout_ms = next > now ? (int)((next - now + 999999) / 1000000) : 0;
        int n = epoll_wait(r->ep, evs, 64, timeout_ms);
        if (n < 0 && errno != EINTR) {
            perror("loadgen: epoll_wait");
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if ((evs[i].events & EPOLLOUT) && c->busy)
                conn_write(r, c);
            if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                conn_read(r, c);
        }
    }
    for (int i = 0; i < op->conns; i++)
        if (r->conns[i].busy)
            conn_fail(r, &r->conns[i], "no answer within --drain-timeout", ETIMEDOUT);
}

/* ---- Options and main ----------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loadgen --port PORT [options]\n"
            "       loadgen --free-port      print an unused loopback TCP port and exit\n"
            "  --host ADDR         IPv4 address of the server (127.0.0.1)\n"
            "  --port PORT         its port (required)\n"
            "  --format F          scalecast (POST /api/v1/metrics, JSON) or influx\n"
            "                      (POST /write?db=DB&precision=ms, line protocol, a line\n"
            "                      per node/container and tick with a field per metric)\n"
            "                      or influx-metric (a line per metric: measurement =\n"
            "                      metric name, one field 'value')\n"
            "  --db NAME           InfluxDB database (bench)\n"
            "  --shape S           batch: one tick of --nodes x --metrics per POST (default)\n"
            "                      agent: one agent's push of 5-10 samples per POST\n"
            "  --nodes N           batch: nodes per POST (500); agent: agents (1000)\n"
            "  --metrics N         batch: metrics per node, 1-%d (10)\n"
            "  --conns N           connections, each one request in flight (4)\n"
            "  --warmup S          seconds before measuring (2)\n"
            "  --duration S        seconds measured (8)\n"
            "  --drain-timeout S   seconds to wait for answers after the end (30)\n"
            "  --timeout S         per-request answer timeout (30)\n"
            "  --ts-start SEC      Unix time of the first tick (default: now - 2 days)\n"
            "  --interval-ms MS    time between ticks of a series (1000)\n"
            "  --token TOKEN       send Authorization: Bearer TOKEN\n"
            "  --watch-pid PID     also report that process's CPU use in the window\n",
            MAX_METRICS);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        perror("loadgen: --free-port");
        return 1;
    }
    printf("%d\n", ntohs(a.sin_port));
    close(fd);
    return 0;
}

static long opt_long(const char *name, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "loadgen: --%s: '%s' is not an integer in [%ld, %ld]\n", name, s, lo, hi);
        exit(2);
    }
    return v;
}

static double opt_double(const char *name, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "loadgen: --%s: '%s' is not a number in [%g, %g]\n", name, s, lo, hi);
        exit(2);
    }
    return v;
}

static void parse_opts(int argc, char **argv, struct opts *op /* out */)
{
    static const struct option lo[] = {
        {"host", 1, 0, 'h'},
        {"port", 1, 0, 'p'},
        {"format", 1, 0, 'f'},
        {"db", 1, 0, 'd'},
        {"shape", 1, 0, 's'},
        {"nodes", 1, 0, 'n'},
        {"metrics", 1, 0, 'm'},
        {"conns", 1, 0, 'c'},
        {"warmup", 1, 0, 'w'},
        {"duration", 1, 0, 'D'},
        {"drain-timeout", 1, 0, 'T'},
        {"timeout", 1, 0, 't'},
        {"ts-start", 1, 0, 'S'},
        {"interval-ms", 1, 0, 'i'},
        {"token", 1, 0, 'k'},
        {"watch-pid", 1, 0, 'W'},
        {"free-port", 0, 0, 'F'},
        {"help", 0, 0, 'H'},
        {0, 0, 0, 0},
    };
    bool nodes_set = false;
    double ts_start = floor((double)time(NULL) - 2 * 86400.0);
    *op = (struct opts){.host = "127.0.0.1",
                        .format = FMT_SCALECAST,
                        .db = "bench",
                        .shape = SHAPE_BATCH,
                        .nodes = 500,
                        .metrics = 10,
                        .conns = 4,
                        .warmup = 2,
                        .duration = 8,
                        .drain_timeout = 30,
                        .req_timeout = 30,
                        .interval_ms = 1000};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'h':
            op->host = optarg;
            break;
        case 'p':
            op->port = (int)opt_long("port", optarg, 1, 65535);
            break;
        case 'f':
            if (strcmp(optarg, "scalecast") == 0)
                op->format = FMT_SCALECAST;
            else if (strcmp(optarg, "influx") == 0)
                op->format = FMT_INFLUX;
            else if (strcmp(optarg, "influx-metric") == 0)
                op->format = FMT_INFLUX_METRIC;
            else {
                fprintf(stderr,
                        "loadgen: --format: '%s' is not scalecast, influx or influx-metric\n",
                        optarg);
                exit(2);
            }
            break;
        case 'd':
            op->db = optarg;
            break;
        case 's':
            if (strcmp(optarg, "batch") == 0)
                op->shape = SHAPE_BATCH;
            else if (strcmp(optarg, "agent") == 0)
                op->shape = SHAPE_AGENT;
            else {
                fprintf(stderr, "loadgen: --shape: '%s' is not batch or agent\n", optarg);
                exit(2);
            }
            break;
        case 'n':
            op->nodes = (int)opt_long("nodes", optarg, 1, 100000);
            nodes_set = true;
            break;
        case 'm':
            op->metrics = (int)opt_long("metrics", optarg, 1, MAX_METRICS);
            break;
        case 'c':
            op->conns = (int)opt_long("conns", optarg, 1, MAX_CONNS);
            break;
        case 'w':
            op->warmup = opt_double("warmup", optarg, 0, 3600);
            break;
        case 'D':
            op->duration = opt_double("duration", optarg, 0.1, 3600);
            break;
        case 'T':
            op->drain_timeout = opt_double("drain-timeout", optarg, 0, 3600);
            break;
        case 't':
            op->req_timeout = opt_double("timeout", optarg, 0.001, 3600);
            break;
        case 'S':
            ts_start = opt_double("ts-start", optarg, 0, 9999999999.0);
            break;
        case 'i':
            op->interval_ms = opt_long("interval-ms", optarg, 1, 86400000);
            break;
        case 'k':
            op->token = optarg;
            break;
        case 'W':
            op->watch_pid = (int)opt_long("watch-pid", optarg, 1, 1 << 30);
            break;
        case 'F':
            exit(free_port());
        case 'H':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "loadgen: unexpected argument '%s'\n", argv[optind]);
        exit(2);
    }
    if (op->port == 0) {
        fprintf(stderr, "loadgen: --port is required\n");
        exit(2);
    }
    if (op->shape == SHAPE_AGENT && !nodes_set)
        op->nodes = 1000;
    op->ts_start_ms = (int64_t)llround(ts_start * 1000.0);
}

static void print_results(const struct run *r, const struct window *w)
{
    const struct opts *op = r->op;
    double secs = (double)(w->t1 - w->t0) / 1e9;
    double sps = (double)r->win.samples / secs, rps = (double)r->win.reqs / secs;
    double p50 = hist_pct(&r->win.lat, 0.50) / 1e6, p99 = hist_pct(&r->win.lat, 0.99) / 1e6;
    double mx = r->win.lat.max / 1e6;
    double mean = r->win.lat.total ? r->win.lat.sum / (double)r->win.lat.total / 1e6 : 0;
    double gen_usr = 100.0 * (w->usr1 - w->usr0) / secs;
    double gen_sys = 100.0 * (w->sys1 - w->sys0) / secs;
    double gen_cpu = gen_usr + gen_sys;
    double srv_cpu = w->srv0 >= 0 && w->srv1 >= 0 ? 100.0 * (w->srv1 - w->srv0) / secs : -1;
    int64_t ticks = op->shape == SHAPE_BATCH ? (int64_t)r->next_req : r->max_tick + 1;
    double ts_next = (double)(op->ts_start_ms + ticks * op->interval_ms) / 1000.0;
    const char *fmt = format_names[op->format];
    const char *shape = op->shape == SHAPE_BATCH ? "batch" : "agent";

    printf("%s %s:%d shape=%s conns=%d window=%.2fs\n", fmt, op->host, op->port, shape, op->conns,
           secs);
    printf("  %.0f samples/s, %.0f requests/s, latency p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
           sps, rps, p50, p99, mx);
    printf("  errors: %" PRIu64 " in window, %" PRIu64 " in all%s%s\n", r->win.errors,
           r->total_errors, r->first_error[0] ? "; first: " : "", r->first_error);
    printf("  acknowledged: %" PRIu64 " samples in %" PRIu64 " requests (warm-up and drain "
           "included); rejected %" PRIu64 ", unknown outcome %" PRIu64 "\n",
           r->acked_samples, r->acked_reqs, r->rejected_samples, r->lost_samples);
    printf("  CPU: loadgen %.1f%% of one core (user %.1f%%, system %.1f%%)", gen_cpu, gen_usr,
           gen_sys);
    if (srv_cpu >= 0)
        printf(", server (pid %d) %.1f%%", op->watch_pid, srv_cpu);
    printf("\n");
    printf("RESULT format=%s shape=%s conns=%d window_s=%.3f samples_per_s=%.0f reqs_per_s=%.0f "
           "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f mean_ms=%.3f errors=%" PRIu64
           " errors_total=%" PRIu64 " acked_samples=%" PRIu64 " acked_reqs=%" PRIu64
           " rejected_samples=%" PRIu64 " unknown_samples=%" PRIu64 " accepted_mismatch=%" PRIu64
           " loadgen_cpu_pct=%.1f server_cpu_pct=%.1f ts_next=%.3f\n",
           fmt, shape, op->conns, secs, sps, rps, p50, p99, mx, mean, r->win.errors,
           r->total_errors, r->acked_samples, r->acked_reqs, r->rejected_samples, r->lost_samples,
           r->accepted_mismatch, gen_cpu, srv_cpu, ts_next);
}

int main(int argc, char **argv)
{
    struct opts op;
    parse_opts(argc, argv, &op);
    signal(SIGPIPE, SIG_IGN);

    struct run *r = xcalloc(1, sizeof *r);
    r->op = &op;
    r->max_tick = -1;
    r->addr.sin_family = AF_INET;
    r->addr.sin_port = htons((uint16_t)op.port);
    if (inet_pton(AF_INET, op.host, &r->addr.sin_addr) != 1) {
        fprintf(stderr, "loadgen: --host: '%s' is not an IPv4 address\n", op.host);
        return 2;
    }

    r->n_tmpls = op.shape == SHAPE_BATCH ? BATCH_VARIANTS : (size_t)op.nodes * AGENT_VARIANTS;
    r->tmpls = xcalloc(r->n_tmpls, sizeof *r->tmpls);
    if (op.shape == SHAPE_BATCH)
        build_batch(&op, r->tmpls, BATCH_VARIANTS);
    else
        build_agents(&op, r->tmpls);
    size_t max_len = 0, bytes = 0;
    uint64_t samples = 0;
    for (size_t i = 0; i < r->n_tmpls; i++) {
        if (r->tmpls[i].len > max_len)
            max_len = r->tmpls[i].len;
        bytes += r->tmpls[i].len;
        samples += r->tmpls[i].samples;
    }
    printf("generated %zu request templates, %.1f samples and %.0f bytes per request on "
           "average\n",
           r->n_tmpls, (double)samples / r->n_tmpls, (double)bytes / r->n_tmpls);

    r->ep = epoll_create1(EPOLL_CLOEXEC);
    if (r->ep < 0) {
        perror("loadgen: epoll_create1");
        return 1;
    }
    r->conns = xcalloc((size_t)op.conns, sizeof *r->conns);
    for (int i = 0; i < op.conns; i++) {
        r->conns[i].fd = -1;
        r->conns[i].req = xmalloc(max_len);
        int rc = conn_open(r, &r->conns[i]);
        if (rc < 0) {
            fprintf(stderr, "loadgen: connect to %s:%d: %s\n", op.host, op.port, strerror(-rc));
            return 1;
        }
    }
    for (int i = 0; i < op.conns; i++)
        start_request(r, &r->conns[i]);

    struct window w = {0};
    run_loop(r, &w);
    print_results(r, &w);

    for (int i = 0; i < op.conns; i++) {
        conn_close(r, &r->conns[i]);
        free(r->conns[i].req);
    }
    for (size_t i = 0; i < r->n_tmpls; i++) {
        free(r->tmpls[i].buf);
        free(r->tmpls[i].ts_off);
    }
    free(r->tmpls);
    free(r->conns);
    close(r->ep);
    int rc = r->acked_reqs > 0 ? 0 : 1;
    free(r);
    return rc;
}
