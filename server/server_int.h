/* Internals shared by the server's own files (server.c, query.c, export.c);
 * nothing outside server/ includes this. */
#ifndef SCALECAST_SERVER_INT_H
#define SCALECAST_SERVER_INT_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "server.h"

enum { CODE_SLOTS = 600 };

struct server {
    const struct config *cfg;
    struct store *st;
    json_t *(*services_fn)(void *arg); /* the autoscaler's status, if running */
    void *services_arg;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *sigterm, *sigint, *notify, *drain_timer;
    struct store_reader *reader;      /* queries on the loop thread */
    void *ssl_ctx;                    /* SSL_CTX when serving HTTPS */
    struct conns *conns;              /* deadlines and limits per connection */
    struct lineproto_state *lp_state; /* Telegraf counters, loop thread only */

    pthread_mutex_t done_lock; /* completions from the store's writer thread */
    struct pending *done_head;

    pthread_t parser; /* parses large ingest bodies off the loop */
    bool parser_running, parse_stop;
    pthread_mutex_t parse_lock;
    pthread_cond_t parse_wake;
    struct parse_job *parse_head, *parse_tail;

    unsigned inflight; /* deferred replies not yet sent */
    unsigned exports;  /* CSV streams in progress */
    bool stopping;
    double started;

    uint64_t requests_by_code[CODE_SLOTS];
    uint64_t samples_rejected;
};

/* Authorization classes of routes. */
enum auth_class { AUTH_NONE, AUTH_INGEST, AUTH_READ };

/* Replies with a JSON body (steals `body`) and counts the status code. */
void srv_reply_json(struct server *s, struct evhttp_request *req, int code, json_t *body);

/* Replies {"error": msg} with the code. */
void srv_reply_error(struct server *s, struct evhttp_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void srv_count(struct server *s, int code);

/* Query parameters of a request, parsed once; any name not in `allowed`
 * (NULL-terminated) is refused. Returns 0 (release q with
 * evhttp_clear_headers), or -1 after having answered 400. */
int srv_query(struct server *s, struct evhttp_request *req, const char *const *allowed,
              struct evkeyvalq *q /* out */);

/* Reads an optional number parameter (absent: *out keeps its default).
 * Returns 0, or -1 after having answered 400 naming the parameter. */
int srv_param_double(struct server *s, struct evhttp_request *req, struct evkeyvalq *q,
                     const char *name, double *out);

/* Handlers (query.c, export.c). */
void query_nodes(struct server *s, struct evhttp_request *req);
void query_series(struct server *s, struct evhttp_request *req);
void query_stats(struct server *s, struct evhttp_request *req);
void query_forecast(struct server *s, struct evhttp_request *req);
void query_services(struct server *s, struct evhttp_request *req);
void query_decisions(struct server *s, struct evhttp_request *req);
void query_metrics(struct server *s, struct evhttp_request *req);
void export_csv(struct server *s, struct evhttp_request *req);
void export_decisions_csv(struct server *s, struct evhttp_request *req);

double srv_now(void);

/* Serves GET PATH from the embedded dashboard or /lib/ (Debian's
 * /usr/share/javascript). Returns false if PATH is not one of those. */
bool webui_handle(struct server *s, struct evhttp_request *req, const char *path);

#endif
