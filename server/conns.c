/* Connection guard: what evhttp (libevent 2.1) lacks at the listening
 * socket — a deep listen backlog, and a pause instead of a busy loop when
 * accept() runs out of descriptors — plus the TLS bufferevent of each
 * connection when the server has a certificate.
 *
 * Not here (yet): a deadline for a whole request that trickles in, and a
 * connection limit; evhttp 2.1 gives no hook to follow a connection from
 * accept to close without a filter layer, which broke request bodies in a
 * first attempt (see docs/robustness.md). */
#include "conns.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "xalloc.h"

struct conns {
    struct event_base *base;
    void *ssl_ctx;
    struct event *resume;
    struct evconnlistener *listener;
    uint64_t accept_errors;
    double last_accept_log;
};

static double now_mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Each accepted connection speaks TLS when the server has a certificate. */
static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    struct conns *cs = arg;
    SSL *ssl = SSL_new(cs->ssl_ctx);
    if (!ssl)
        return NULL;
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct conns *cs = arg;
    if (cs->listener)
        evconnlistener_enable(cs->listener);
}

/* accept() failed for a reason other than a retry (out of descriptors):
 * stop accepting for a moment instead of spinning on it. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    struct conns *cs = arg;
    int err = EVUTIL_SOCKET_ERROR();
    cs->accept_errors++;
    double now = now_mono();
    if (now - cs->last_accept_log >= 10) {
        log_warn("server", "accept: %s; pausing new connections for 100 ms (%llu such errors)",
                 evutil_socket_error_to_string(err), (unsigned long long)cs->accept_errors);
        cs->last_accept_log = now;
    }
    evconnlistener_disable(l);
    struct timeval tv = {0, 100000};
    evtimer_add(cs->resume, &tv);
}

struct conns *conns_new(struct event_base *base, struct evhttp *http, void *ssl_ctx)
{
    struct conns *cs = xcalloc(1, sizeof *cs);
    cs->base = base;
    cs->ssl_ctx = ssl_ctx;
    cs->resume = evtimer_new(base, on_resume, cs);
    if (ssl_ctx)
        evhttp_set_bevcb(http, tls_bev, cs);
    return cs;
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
    evconnlistener_set_error_cb(l, on_accept_error);
    cs->listener = l;
    return b;
}

void conns_unlisten(struct conns *cs)
{
    cs->listener = NULL;
    if (cs->resume)
        evtimer_del(cs->resume);
}

uint64_t conns_accept_errors(const struct conns *cs)
{
    return cs->accept_errors;
}

void conns_free(struct conns *cs)
{
    if (!cs)
        return;
    event_free(cs->resume);
    free(cs);
}
