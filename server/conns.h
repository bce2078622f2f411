/* Listening socket and per-connection setup for the HTTP front (see
 * conns.c): deep backlog, accept back-off, TLS. */
#ifndef SCALECAST_CONNS_H
#define SCALECAST_CONNS_H

#include <event2/event.h>
#include <event2/http.h>
#include <stdint.h>
#include <sys/socket.h>

struct conns;

/* Prepares http's connections; ssl_ctx: serve TLS with this SSL_CTX (NULL:
 * plain HTTP). */
struct conns *conns_new(struct event_base *base, struct evhttp *http, void *ssl_ctx);

/* Binds the listening socket with a deep backlog. NULL on failure (errno). */
struct evhttp_bound_socket *conns_listen(struct conns *cs, struct evhttp *http,
                                         const struct sockaddr *sa, int salen);

/* Call before the bound socket is deleted or evhttp freed. */
void conns_unlisten(struct conns *cs);

/* accept() failures so far (descriptors exhausted). */
uint64_t conns_accept_errors(const struct conns *cs);

/* Safe with NULL. */
void conns_free(struct conns *cs);

#endif
