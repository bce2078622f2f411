/* Pushing spooled samples to scalecastd: POST /api/v1/metrics over one
 * keep-alive HTTP/1.1 connection (TLS for https://, see tls.h), driven by
 * the agent's poll loop (the socket is non-blocking, so a slow server never
 * delays a collection).
 *
 * What an answer does to the batch it answers:
 *   2xx                       delivered: acknowledged in the spool
 *   400, 413, 422             the batch itself is refused: it is split in
 *                             halves to find the samples at fault; a single
 *                             refused sample is logged with the server's
 *                             error and dropped (never retried forever)
 *   any other 4xx, 5xx,       the server cannot take it now (down, overloaded,
 *   timeout, network or TLS   wrong token, wrong URL, a certificate the agent
 *   error                     does not trust): the batch stays in the
 *                             spool and is retried after an exponential
 *                             backoff with jitter (1 s doubling to 30 s)
 * Samples leave in spool order, one request at a time. */
#ifndef SCALECAST_AGENT_PUSH_H
#define SCALECAST_AGENT_PUSH_H

#include <poll.h>
#include <stddef.h>

#include "http.h"
#include "spool.h"

struct tls_client;

struct push_opts {
    const struct http_url *url; /* borrowed; outlives the pusher */
    struct tls_client *tls;     /* https://: borrowed, outlives the pusher; else NULL */
    const char *token;          /* bearer token or NULL; borrowed */
    size_t batch;               /* samples per request */
    double timeout;             /* seconds per request, connect included */
};

#define PUSH_MAX_BACKOFF 30.0

struct pusher;

/* Creates a pusher reading from `sp` (borrowed). Connects lazily. */
struct pusher *push_create(const struct push_opts *o, struct spool *sp);
/* Closes the connection; an unanswered batch simply stays in the spool. */
void push_free(struct pusher *p);

/* Starts the next request when none is in flight, samples are waiting and
 * the backoff has passed (or `now_please`: also during a backoff, used once
 * at shutdown). */
void push_kick(struct pusher *p, double now, int now_please);
/* Fills *pfd with what the pusher waits for; returns 0 when it waits for
 * nothing. */
int push_pollfd(const struct pusher *p, struct pollfd *pfd /* out */);
/* Monotonic time at which push_handle must run even without events (a
 * request's deadline or the end of a backoff); INFINITY if none. */
double push_deadline(const struct pusher *p);
/* Handles socket readiness `revents` (0: only time passed). */
void push_handle(struct pusher *p, double now, short revents);

/* A request is in flight. */
int push_busy(const struct pusher *p);
/* The last attempt failed and the pusher is backing off. */
int push_failing(const struct pusher *p);
/* Samples acknowledged by the server / refused for good, since creation. */
unsigned long long push_delivered(const struct pusher *p);
unsigned long long push_refused(const struct pusher *p);

#endif
