/* Connection guard: what evhttp (libevent 2.1) lacks —
 *  - a deadline for the next whole request: from accept, or from the end of
 *    the previous answer, a client has request_timeout to deliver a complete
 *    request, however slowly it trickles (evhttp's own timeout restarts at
 *    every byte, so a byte a second held a connection forever);
 *  - a connection limit: at the limit the connection waiting longest for
 *    its request makes room for the newcomer (never one being answered);
 *  - a deep listen backlog, and a pause instead of a busy loop when accept()
 *    runs out of descriptors;
 *  - at most ACCEPT_BURST accepts per turn of the loop: libevent's listener
 *    accepts until the queue is empty, so a burst of thousands of connects
 *    kept every other connection (a health check) waiting ~100 ms;
 *  - the TLS bufferevent of each connection when the server has a
 *    certificate.
 *
 * evhttp 2.1 has no hook for a connection's end, so we follow each
 * connection's bufferevent from its creation (evhttp's bevcb) holding a
 * reference of our own; evhttp's bufferevent_free() clears the callbacks,
 * which the sweep sees, and our reference is then dropped, which closes the
 * socket (at most one sweep, 20 ms, later). */
#include "conns.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "xalloc.h"

/* Connections accepted before the loop turns to the others' I/O: one accept
 * with evhttp's setup costs ~30 us, so a turn stays near 2 ms. */
#define ACCEPT_BURST 64

/* Overdue connections cut per sweep (every 20 ms): thousands opened in one
 * burst fall due together, and ending them all at once (shutdown, evhttp's
 * end of stream, close) held the loop for ~30 ms. */
#define CUT_PER_SWEEP 128

struct conn {
    struct conns *owner;
    struct bufferevent *bev;
    bool watch_pending; /* watch_close not run yet: keep c alive for it */
    bool busy;          /* a whole request arrived; its answer is not written yet */
    double since;       /* accept, or the end of the last answer */
    struct conn *prev, *next;
    struct conn *hnext; /* hash chain by bev */
};

struct conns {
    struct event_base *base;
    void *ssl_ctx;
    double deadline;
    size_t max, n;
    struct conn *head; /* newest first */
    struct conn **buckets;
    size_t nbuckets;
    struct event *resume, *sweep;
    struct evconnlistener *listener;
    uint64_t accept_errors, closed_slow, evicted;
    double last_accept_log;
    unsigned burst; /* accepted since the listener was last (re-)enabled */
};

static size_t bucket_of(size_t nbuckets, const void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 2654435761u) & (nbuckets - 1);
}

static void hash_insert(struct conns *cs, struct conn *c)
{
    if (cs->n >= cs->nbuckets) {
        size_t nb = cs->nbuckets * 2;
        struct conn **b = xcalloc(nb, sizeof *b);
        for (size_t i = 0; i < cs->nbuckets; i++) {
            for (struct conn *x = cs->buckets[i], *nx; x; x = nx) {
                nx = x->hnext;
                size_t k = bucket_of(nb, x->bev);
                x->hnext = b[k];
                b[k] = x;
            }
        }
        free(cs->buckets);
        cs->buckets = b;
        cs->nbuckets = nb;
    }
    size_t k = bucket_of(cs->nbuckets, c->bev);
    c->hnext = cs->buckets[k];
    cs->buckets[k] = c;
}

static struct conn *lookup(struct conns *cs, const struct bufferevent *bev)
{
    for (struct conn *c = cs->buckets[bucket_of(cs->nbuckets, bev)]; c; c = c->hnext) {
        if (c->bev == bev)
            return c;
    }
    return NULL;
}

static void forget(struct conns *cs, struct conn *c)
{
    for (struct conn **pp = &cs->buckets[bucket_of(cs->nbuckets, c->bev)]; *pp;
         pp = &(*pp)->hnext) {
        if (*pp == c) {
            *pp = c->hnext;
            break;
        }
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        cs->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    cs->n--;
    bufferevent_decref(c->bev); /* the last reference: closes the socket */
    free(c);
}

/* evhttp is done with it when bufferevent_free() has cleared its callbacks. */
static bool released(struct conn *c)
{
    bufferevent_data_cb rd, wr;
    bufferevent_event_cb ev;
    void *arg;
    bufferevent_getcb(c->bev, &rd, &wr, &ev, &arg);
    return !rd && !ev;
}

/* Ends a connection from outside evhttp: shutting the socket down makes
 * evhttp see the end of the stream and free the connection itself. */
static void cut(struct conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    c->busy = true; /* cut once */
}

static double now_mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sweep_released(struct conns *cs)
{
    for (struct conn *c = cs->head, *next; c; c = next) {
        next = c->next;
        if (released(c) && !c->watch_pending)
            forget(cs, c);
    }
}

/* At the limit: the connection waiting longest for its request goes. */
static void evict_one(struct conns *cs)
{
    struct conn *victim = NULL;
    for (struct conn *c = cs->head; c; c = c->next) {
        if (!c->busy && !released(c) && (!victim || c->since < victim->since))
            victim = c;
    }
    if (victim) {
        cs->evicted++;
        cut(victim);
    }
}

static struct conns *listener_owner;

/* accept() failed for a reason other than a retry (out of descriptors):
 * make room and stop accepting for a moment instead of spinning on it. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    struct conns *cs = listener_owner;
    if (!cs)
        return;
    int err = EVUTIL_SOCKET_ERROR();
    cs->accept_errors++;
    double now = now_mono();
    if (now - cs->last_accept_log >= 10) {
        log_warn("server", "accept: %s; pausing new connections for 10 ms (%llu such errors)",
                 evutil_socket_error_to_string(err), (unsigned long long)cs->accept_errors);
        cs->last_accept_log = now;
    }
    /* Make room: close what evhttp has let go of, and cut the connection
     * waiting longest for its request; its descriptor frees in a moment. */
    sweep_released(cs);
    evict_one(cs);
    evconnlistener_disable(l);
    struct timeval tv = {0, 10000};
    evtimer_add(cs->resume, &tv);
}

/* evhttp is freeing the connection: drop our reference now, so its socket
 * closes at once instead of at the next sweep (and stops filling a buffer
 * nobody reads). export.c may replace this callback for its own streams;
 * the sweep then still finds the connection released. */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
    struct conn *c = arg;
    evhttp_connection_set_closecb(evcon, NULL, NULL);
    bufferevent_disable(c->bev, EV_READ);
    forget(c->owner, c);
}

/* Runs once the loop is back from accepting: evhttp has set up the
 * connection by then, and its bufferevent's callback argument is the
 * evhttp_connection. */
static void watch_close(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    c->watch_pending = false;
    if (released(c))
        return;
    bufferevent_data_cb rd, wr;
    bufferevent_event_cb ev;
    void *evcon;
    bufferevent_getcb(c->bev, &rd, &wr, &ev, &evcon);
    if (evcon)
        evhttp_connection_set_closecb(evcon, on_close, c);
}

/* A new connection (evhttp's bevcb): plain or TLS, followed from now on. */
static struct bufferevent *on_new(struct event_base *base, void *arg)
{
    struct conns *cs = arg;
    struct bufferevent *bev;
    if (cs->ssl_ctx) {
        SSL *ssl = SSL_new(cs->ssl_ctx);
        if (!ssl)
            return NULL;
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!bev)
        return NULL;
    if (cs->n >= cs->max) {
        sweep_released(cs);
        if (cs->n >= cs->max)
            evict_one(cs);
    }
    struct conn *c = xcalloc(1, sizeof *c);
    c->owner = cs;
    c->bev = bev;
    c->since = now_mono();
    bufferevent_incref(bev);
    c->watch_pending = true;
    event_base_once(base, -1, EV_TIMEOUT, watch_close, c, NULL);
    c->next = cs->head;
    if (cs->head)
        cs->head->prev = c;
    cs->head = c;
    cs->n++;
    hash_insert(cs, c);
    /* The listener checks after each accept whether it is still enabled. */
    if (++cs->burst >= ACCEPT_BURST && cs->listener && !evtimer_pending(cs->resume, NULL)) {
        evconnlistener_disable(cs->listener);
        struct timeval now = {0, 0};
        evtimer_add(cs->resume, &now);
    }
    return bev;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct conns *cs = arg;
    double now = now_mono();
    unsigned cuts = 0;
    for (struct conn *c = cs->head, *next; c; c = next) {
        next = c->next;
        if (released(c)) {
            if (!c->watch_pending)
                forget(cs, c);
        } else if (!c->busy && now - c->since > cs->deadline && cuts < CUT_PER_SWEEP) {
            cs->closed_slow++;
            cuts++;
            cut(c);
        }
    }
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct conns *cs = arg;
    cs->burst = 0;
    if (cs->listener)
        evconnlistener_enable(cs->listener);
}

/* The listener's user pointer belongs to evhttp (it is the evhttp), so the
 * error callback finds its guard here; scalecastd has one listener. */
struct conns *conns_new(struct event_base *base, struct evhttp *http, void *ssl_ctx,
                        double deadline, size_t max)
{
    struct conns *cs = xcalloc(1, sizeof *cs);
    cs->base = base;
    cs->ssl_ctx = ssl_ctx;
    cs->deadline = deadline;
    cs->max = max;
    cs->nbuckets = 1024;
    cs->buckets = xcalloc(cs->nbuckets, sizeof *cs->buckets);
    cs->resume = evtimer_new(base, on_resume, cs);
    cs->sweep = event_new(base, -1, EV_PERSIST, on_sweep, cs);
    /* Often: a released connection's socket stays open (and readable into
     * its buffer) until the sweep drops our reference. */
    struct timeval tv = {0, 20000};
    event_add(cs->sweep, &tv);
    evhttp_set_bevcb(http, on_new, cs);
    return cs;
}

void conns_request(struct conns *cs, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct conn *c = evcon ? lookup(cs, evhttp_connection_get_bufferevent(evcon)) : NULL;
    if (c)
        c->busy = true;
}

void conns_reply_done(struct conns *cs, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct conn *c = evcon ? lookup(cs, evhttp_connection_get_bufferevent(evcon)) : NULL;
    if (c) {
        c->busy = false;
        c->since = now_mono();
    }
}

void conns_stats(const struct conns *cs, struct conns_stats *out)
{
    out->open = cs->n;
    out->closed_slow = cs->closed_slow;
    out->evicted = cs->evicted;
    out->accept_errors = cs->accept_errors;
}

struct evhttp_bound_socket *conns_listen(struct conns *cs, struct evhttp *http,
                                         const struct sockaddr *sa, int salen)
{
    /* A deep backlog: thousands of agents reconnecting at once after a
     * restart must not see their SYNs dropped (a second's retransmit). */
    struct evconnlistener *l = evconnlistener_new_bind(
        cs->base, NULL, NULL, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_CLOSE_ON_FREE,
        4096, sa, salen);
    if (!l)
        return NULL;
    struct evhttp_bound_socket *b = evhttp_bind_listener(http, l);
    if (!b) {
        evconnlistener_free(l);
        return NULL;
    }
    listener_owner = cs;
    evconnlistener_set_error_cb(l, on_accept_error);
    cs->listener = l;
    return b;
}

void conns_unlisten(struct conns *cs)
{
    if (listener_owner == cs)
        listener_owner = NULL;
    cs->listener = NULL;
    if (cs->resume)
        evtimer_del(cs->resume);
}

void conns_free(struct conns *cs)
{
    if (!cs)
        return;
    event_free(cs->resume);
    event_free(cs->sweep);
    /* evhttp_free, called before, released every connection. */
    while (cs->head)
        forget(cs, cs->head);
    free(cs->buckets);
    free(cs);
}
