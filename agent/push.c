/* The non-blocking HTTP sender, over TCP or TLS. */
#include "push.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "tls.h"
#include "xalloc.h"

enum { IDLE, CONNECTING, HANDSHAKING, SENDING, RECEIVING };

#define MAX_ANSWER (64 * 1024)
#define LOG_EVERY 60.0 /* seconds between reminders that the server is still away */

struct pusher {
    struct push_opts o;
    struct spool *sp;
    int state;
    int fd;
    struct tls_conn *tls; /* on fd, for https:// once connected */
    int reused;           /* the request went out on a kept-alive connection */
    size_t limit;         /* samples in the next batch: o.batch, or less while splitting */
    struct spool_batch batch;
    struct buf lines, head, body;
    size_t sent; /* bytes of head+body written */
    struct http_resp resp;
    double deadline;
    double retry_at;
    unsigned failures;
    double failing_since, last_warn;
    unsigned long long delivered, refused;
    double last_refusal_log;
    unsigned long long refusals_unlogged;
    struct addrinfo *ai;
    unsigned ai_next;
    unsigned seed;
};

struct pusher *push_create(const struct push_opts *o, struct spool *sp)
{
    struct pusher *p = xcalloc(1, sizeof *p);
    p->o = *o;
    p->sp = sp;
    p->fd = -1;
    p->limit = o->batch;
    p->deadline = INFINITY;
    p->seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    http_resp_init(&p->resp, MAX_ANSWER);
    return p;
}

static void drop_conn(struct pusher *p)
{
    tls_conn_free(p->tls);
    p->tls = NULL;
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    p->state = IDLE;
    p->deadline = INFINITY;
}

void push_free(struct pusher *p)
{
    if (!p)
        return;
    drop_conn(p);
    buf_free(&p->lines);
    buf_free(&p->head);
    buf_free(&p->body);
    http_resp_free(&p->resp);
    if (p->ai)
        freeaddrinfo(p->ai);
    free(p);
}

static void build_request(struct pusher *p)
{
    buf_reset(&p->body);
    buf_adds(&p->body, "{\"node\":");
    buf_json_str(&p->body, p->batch.node);
    buf_adds(&p->body, ",\"samples\":[");
    char *dst = buf_reserve(&p->body, p->lines.len);
    memcpy(dst, p->lines.p, p->lines.len);
    /* Lines become array elements: every newline but the last turns into a comma. */
    for (size_t i = 0; i + 1 < p->lines.len; i++) {
        if (dst[i] == '\n')
            dst[i] = ',';
    }
    p->body.len += p->lines.len - 1;
    buf_adds(&p->body, "]}");
    buf_reset(&p->head);
    buf_printf(&p->head,
               "POST %s/api/v1/metrics HTTP/1.1\r\nHost: %s\r\nUser-Agent: scalecast-agent/%s\r\n"
               "Content-Type: application/json\r\nContent-Length: %zu\r\n",
               p->o.url->prefix, p->o.url->hostport, SCALECAST_VERSION, p->body.len);
    if (p->o.token)
        buf_printf(&p->head, "Authorization: Bearer %s\r\n", p->o.token);
    buf_adds(&p->head, "\r\n");
    if (p->o.tls) {
        /* TLS has no writev: one buffer, so head and body share records. */
        buf_add(&p->head, p->body.p, p->body.len);
        buf_reset(&p->body);
    }
    p->sent = 0;
    http_resp_reset(&p->resp);
}

/* Sends what is left of the request. Returns 0 with the bytes taken in
 * *done, -EAGAIN, or -errno with the reason in why. */
static int conn_send(struct pusher *p, size_t *done /* out */, char *why, size_t whylen)
{
    size_t hl = p->head.len;
    if (p->tls)
        return tls_write(p->tls, p->head.p + p->sent, hl - p->sent, done, why, whylen);
    struct iovec iov[2];
    int n = 0;
    if (p->sent < hl)
        iov[n++] = (struct iovec){p->head.p + p->sent, hl - p->sent};
    size_t boff = p->sent > hl ? p->sent - hl : 0;
    iov[n++] = (struct iovec){p->body.p + boff, p->body.len - boff};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t w = sendmsg(p->fd, &msg, MSG_NOSIGNAL);
    if (w < 0) {
        int err = errno;
        if (err == EAGAIN || err == EINTR)
            return -EAGAIN;
        snprintf(why, whylen, "%s", strerror(err));
        return -err;
    }
    *done = (size_t)w;
    return 0;
}

/* Receives up to n bytes. Returns 0 with the count in *got (0: the server
 * closed the connection), -EAGAIN, or -errno with the reason in why. */
static int conn_recv(struct pusher *p, char *data, size_t n, size_t *got /* out */, char *why,
                     size_t whylen)
{
    if (p->tls)
        return tls_read(p->tls, data, n, got, why, whylen);
    ssize_t r = recv(p->fd, data, n, 0);
    if (r < 0) {
        int err = errno;
        if (err == EAGAIN || err == EINTR)
            return -EAGAIN;
        snprintf(why, whylen, "%s", strerror(err));
        return -err;
    }
    *got = (size_t)r;
    return 0;
}

/* Opens a non-blocking connection. Returns 0 (connected or in progress) or
 * -errno with the reason in why. */
static int start_connect(struct pusher *p, const char **why)
{
    if (!p->ai) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        int rc = getaddrinfo(p->o.url->host, p->o.url->port, &hints, &p->ai);
        if (rc != 0) {
            p->ai = NULL;
            *why = gai_strerror(rc);
            return -EHOSTUNREACH;
        }
    }
    /* Each attempt tries the next address, so a dead one is not retried forever. */
    unsigned count = 0;
    for (struct addrinfo *a = p->ai; a; a = a->ai_next)
        count++;
    struct addrinfo *a = p->ai;
    for (unsigned i = 0; i < p->ai_next % count; i++)
        a = a->ai_next;
    p->ai_next++;
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
        *why = strerror(errno);
        return -errno;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        *why = strerror(err);
        return -err;
    }
    p->fd = fd;
    p->state = CONNECTING;
    return 0;
}

static void backoff(struct pusher *p, double now, const char *why)
{
    drop_conn(p);
    p->failures++;
    double base = PUSH_MAX_BACKOFF;
    if (p->failures < 6)
        base = ldexp(1.0, (int)p->failures - 1);
    if (base > PUSH_MAX_BACKOFF)
        base = PUSH_MAX_BACKOFF;
    /* "Equal jitter": half fixed, half random, so agents that lost the same
     * server do not come back in lockstep. */
    double wait = base / 2 + base / 2 * ((double)rand_r(&p->seed) / RAND_MAX);
    p->retry_at = now + wait;
    if (p->failures == 1) {
        p->failing_since = now;
        p->last_warn = now;
        log_warn("agent",
                 "push to %s://%s%s failed: %s; %zu samples wait in the spool, "
                 "retrying in %.1f s",
                 p->o.url->tls ? "https" : "http", p->o.url->hostport, p->o.url->prefix, why,
                 spool_pending(p->sp), wait);
    } else if (now - p->last_warn >= LOG_EVERY) {
        p->last_warn = now;
        log_warn("agent", "server still unreachable after %.0f s (%s); %zu samples spooled",
                 now - p->failing_since, why, spool_pending(p->sp));
    } else {
        log_debug("agent", "push failed again (%s); retry in %.1f s", why, wait);
    }
}

static void answered(struct pusher *p, double now);

/* A server may answer (413, 400) and close before it read the whole body;
 * take that answer rather than calling it a network failure and resending
 * the same batch forever. Returns 1 if a complete answer was there. */
static int early_answer(struct pusher *p, double now)
{
    char chunk[4096], why[256];
    for (;;) {
        size_t n = 0;
        int rc = conn_recv(p, chunk, sizeof chunk, &n, why, sizeof why);
        if (rc == 0)
            rc = n > 0 ? http_resp_feed(&p->resp, chunk, n) : http_resp_eof(&p->resp);
        if (rc == 1) {
            p->resp.close = 1;
            answered(p, now);
            return 1;
        }
        if (rc < 0 || n == 0)
            return 0;
    }
}

static void send_some(struct pusher *p, double now)
{
    char why[256];
    size_t total = p->head.len + p->body.len;
    while (p->sent < total) {
        size_t w = 0;
        int rc = conn_send(p, &w, why, sizeof why);
        if (rc == -EAGAIN)
            return;
        if (rc < 0) {
            if (early_answer(p, now))
                return;
            if (p->reused && (rc == -EPIPE || rc == -ECONNRESET)) {
                /* The server closed the idle connection first: not a failure. */
                drop_conn(p);
                push_kick(p, now, 1);
                return;
            }
            backoff(p, now, why);
            return;
        }
        p->sent += w;
    }
    p->state = RECEIVING;
}

static int refuses_content(int status)
{
    return status == 400 || status == 413 || status == 422;
}

static void answered(struct pusher *p, double now)
{
    int status = p->resp.status;
    /* An answer before the whole request went out ends the connection. */
    if (p->resp.close || p->state == SENDING)
        drop_conn(p);
    else
        p->state = IDLE;
    p->deadline = INFINITY;
    if (status >= 200 && status < 300) {
        spool_ack(p->sp, &p->batch);
        p->delivered += p->batch.n;
        if (p->failures)
            log_info("agent", "server is back after %.0f s; delivering %zu spooled samples",
                     now - p->failing_since, spool_pending(p->sp));
        p->failures = 0;
        /* After a split, grow back gradually: if the server refuses
         * everything, this keeps it at one request per sample. */
        p->limit = p->limit * 2 > p->o.batch ? p->o.batch : p->limit * 2;
    } else if (refuses_content(status)) {
        const char *err = p->resp.body.len ? p->resp.body.p : "(no message)";
        if (p->batch.n > 1) {
            if (p->limit == p->o.batch)
                log_warn("agent",
                         "server refused a batch of %zu samples: %d %s; splitting it "
                         "to find the samples at fault",
                         p->batch.n, status, err);
            p->limit = p->batch.n / 2;
        } else {
            /* One line per refused sample, but not a flood when the server
             * refuses everything (a node id it does not accept, say). */
            if (now - p->last_refusal_log >= 10 || p->refused == 0) {
                log_error("agent",
                          "server refused a sample for good, dropping it: %d %s; sample: %.*s "
                          "(%llu more dropped since the last such line)",
                          status, err, (int)(p->lines.len > 300 ? 300 : p->lines.len - 1),
                          p->lines.p, p->refusals_unlogged);
                p->last_refusal_log = now;
                p->refusals_unlogged = 0;
            } else {
                p->refusals_unlogged++;
            }
            spool_ack(p->sp, &p->batch);
            p->refused++;
        }
    } else {
        char why[200];
        snprintf(why, sizeof why, "server answered %d %.120s", status,
                 p->resp.body.len ? p->resp.body.p : "");
        for (char *c = why; *c; c++) {
            if (*c == '\n' || *c == '\r')
                *c = ' ';
        }
        backoff(p, now, why);
        return;
    }
    push_kick(p, now, 0);
}

static void receive_some(struct pusher *p, double now)
{
    char chunk[4096], why[256];
    for (;;) {
        size_t n = 0;
        int rc = conn_recv(p, chunk, sizeof chunk, &n, why, sizeof why);
        if (rc == -EAGAIN)
            return;
        if (rc < 0) {
            if (p->reused && !http_resp_started(&p->resp) && rc == -ECONNRESET) {
                drop_conn(p);
                push_kick(p, now, 1);
                return;
            }
            backoff(p, now, why);
            return;
        }
        if (n == 0) {
            if (p->reused && !http_resp_started(&p->resp)) {
                drop_conn(p);
                push_kick(p, now, 1);
                return;
            }
            rc = http_resp_eof(&p->resp);
            if (rc == 1)
                p->resp.close = 1;
        } else {
            rc = http_resp_feed(&p->resp, chunk, n);
        }
        if (rc < 0) {
            backoff(p, now, n == 0 ? "connection closed mid-answer" : "malformed answer");
            return;
        }
        if (rc == 1) {
            answered(p, now);
            return;
        }
        if (n == 0)
            return;
    }
}

static void handshake_some(struct pusher *p, double now)
{
    char why[300];
    int rc = tls_handshake(p->tls, why, sizeof why);
    if (rc == -EAGAIN)
        return;
    if (rc < 0) {
        backoff(p, now, why);
        return;
    }
    log_debug("agent", "TLS with %s: %s", p->o.url->hostport, tls_describe(p->tls));
    p->state = SENDING;
    send_some(p, now);
}

/* The TCP connection is up: https:// starts the handshake, http:// the
 * request. */
static void connected(struct pusher *p, double now)
{
    if (!p->o.tls) {
        p->state = SENDING;
        send_some(p, now);
        return;
    }
    char why[256];
    if (tls_conn_create(p->o.tls, p->fd, p->o.url->host, &p->tls, why, sizeof why) < 0) {
        backoff(p, now, why);
        return;
    }
    p->state = HANDSHAKING;
    handshake_some(p, now);
}

/* Something arrived on an idle connection: the server closed it, or (TLS)
 * sent a record that carries no data, such as a session ticket. */
static void idle_readable(struct pusher *p)
{
    if (p->tls) {
        char chunk[256], why[256];
        size_t n = 0;
        if (tls_read(p->tls, chunk, sizeof chunk, &n, why, sizeof why) == -EAGAIN)
            return;
    }
    drop_conn(p);
}

void push_kick(struct pusher *p, double now, int now_please)
{
    if (p->state != IDLE)
        return;
    if (!now_please && p->failures && now < p->retry_at)
        return;
    if (spool_peek(p->sp, p->limit, &p->batch, &p->lines) == 0) {
        p->failures = 0; /* nothing to send: nothing to back off from */
        return;
    }
    build_request(p);
    p->deadline = now + p->o.timeout;
    if (p->fd >= 0) {
        p->reused = 1;
        p->state = SENDING;
        send_some(p, now);
        return;
    }
    p->reused = 0;
    const char *why = NULL;
    if (start_connect(p, &why) < 0) {
        backoff(p, now, why);
        return;
    }
}

int push_pollfd(const struct pusher *p, struct pollfd *pfd)
{
    if (p->fd < 0)
        return 0;
    pfd->fd = p->fd;
    switch (p->state) {
    case CONNECTING:
        pfd->events = POLLOUT;
        break;
    case HANDSHAKING:
        pfd->events = tls_want(p->tls, 0);
        break;
    case RECEIVING:
        pfd->events = p->tls ? tls_want(p->tls, 1) : POLLIN;
        break;
    case SENDING:
        /* TLS also listens for an answer that comes before the request is
         * all out (a 413): after a failed write it could not be read. */
        pfd->events = p->tls ? (short)(tls_want(p->tls, 0) | POLLIN) : POLLOUT;
        break;
    default:
        pfd->events = POLLIN;
        break;
    }
    pfd->revents = 0;
    return 1;
}

double push_deadline(const struct pusher *p)
{
    if (p->state != IDLE)
        return p->deadline;
    if (p->failures && spool_pending(p->sp) > 0)
        return p->retry_at;
    return INFINITY;
}

void push_handle(struct pusher *p, double now, short revents)
{
    if (p->state != IDLE && now >= p->deadline) {
        char why[64];
        snprintf(why, sizeof why, "no answer within %.1f s", p->o.timeout);
        backoff(p, now, why);
        return;
    }
    switch (p->state) {
    case IDLE:
        if (p->fd >= 0 && revents)
            idle_readable(p);
        push_kick(p, now, 0);
        break;
    case CONNECTING:
        if (revents) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) {
                backoff(p, now, strerror(err));
                return;
            }
            connected(p, now);
        }
        break;
    case HANDSHAKING:
        if (revents)
            handshake_some(p, now);
        break;
    case SENDING:
        if (p->tls && (revents & POLLIN)) {
            receive_some(p, now);
            if (p->state != SENDING)
                break;
        }
        if (revents)
            send_some(p, now);
        break;
    case RECEIVING:
        if (revents)
            receive_some(p, now);
        break;
    }
}

int push_busy(const struct pusher *p)
{
    return p->state != IDLE;
}

int push_failing(const struct pusher *p)
{
    return p->failures > 0;
}

unsigned long long push_delivered(const struct pusher *p)
{
    return p->delivered;
}

unsigned long long push_refused(const struct pusher *p)
{
    return p->refused;
}
