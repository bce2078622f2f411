/* Listening socket and per-connection setup for the HTTP front (see
 * conns.c): deep backlog, accept back-off, TLS. */
#ifndef SCALECAST_CONNS_H
#define SCALECAST_CONNS_H

#include <event2/event.h>
#include <event2/http.h>
#include <stdint.h>
#include <sys/socket.h>

struct conns;

/* Installs the guard on http's connections. ssl_ctx: serve TLS with this
 * SSL_CTX (NULL: plain HTTP). deadline: seconds a client has, from accept
 * or its previous answer, to deliver a whole request. max: connections. */
struct conns *conns_new(struct event_base *base, struct evhttp *http, void *ssl_ctx,
                        double deadline, size_t max);

/* Binds the listening socket with a deep backlog. NULL on failure (errno). */
struct evhttp_bound_socket *conns_listen(struct conns *cs, struct evhttp *http,
                                         const struct sockaddr *sa, int salen);

/* Call before the bound socket is deleted or evhttp freed. */
void conns_unlisten(struct conns *cs);

/* A whole request arrived on req's connection / its answer was written. */
void conns_request(struct conns *cs, struct evhttp_request *req);
void conns_reply_done(struct conns *cs, struct evhttp_request *req);

struct conns_stats {
    size_t open;
    uint64_t closed_slow;   /* cut for not delivering a request in time */
    uint64_t evicted;       /* cut to make room at the connection limit */
    uint64_t accept_errors; /* accept() failures (descriptors exhausted) */
};
void conns_stats(const struct conns *cs, struct conns_stats *out /* out */);

/* After evhttp_free. Safe with NULL. */
void conns_free(struct conns *cs);

#endif
