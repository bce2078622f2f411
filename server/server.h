/* scalecastd's HTTP front: routing, authentication, limits, deferred ingest
 * replies and graceful shutdown over libevent's evhttp. */
#ifndef SCALECAST_SERVER_H
#define SCALECAST_SERVER_H

#include "config.h"
#include "store.h"

#include <jansson.h>

struct server;

/* Binds the listener from cfg->server.listen and prepares the routes. The
 * config and store are borrowed and must outlive the server. Returns 0, or
 * -1 with a message in err. */
int server_create(const struct config *cfg, struct store *st, struct server **out /* out */,
                  char *err, size_t errlen);

/* Lets GET /api/v1/services and /metrics report the autoscaler: fn(arg)
 * returns a new reference to a JSON array with one object per service
 * (keys "service", "current_replicas", "desired_replicas", ...). It is
 * called on the loop thread and must not block. */
void server_set_services(struct server *s, json_t *(*fn)(void *arg), void *arg);

/* Runs the event loop until SIGTERM/SIGINT: then stops accepting, lets
 * in-flight requests finish (answers included) and returns 0. */
int server_run(struct server *s);

void server_free(struct server *s);

#endif
