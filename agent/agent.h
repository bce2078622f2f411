/* The agent's main loop: collect every interval into the spool, push the
 * spool to the server, and on SIGTERM/SIGINT flush what it can and exit. */
#ifndef SCALECAST_AGENT_AGENT_H
#define SCALECAST_AGENT_AGENT_H

#include <stddef.h>

#include "collector.h"
#include "http.h"

struct agent_opts {
    const char *node;
    const char *server; /* URL as given, for messages */
    struct http_url url;
    const char *token;   /* NULL: none */
    const char *ca_file; /* https://: CA certificates to trust; NULL: the system store */
    double interval;     /* seconds, >= 1 */
    size_t batch;        /* samples per push */
    double timeout;      /* seconds per push */
    const char *spool_dir;
    size_t spool_max;
    double flush_timeout; /* seconds allowed for the flush at SIGTERM */
    struct agent_paths paths;
};

/* Runs until SIGTERM or SIGINT. Returns the process exit status: 0 after a
 * clean stop, 1 when the agent could not start (the reason is logged: the
 * spool, or for https:// OpenSSL or the CA file). */
int agent_run(const struct agent_opts *o);

/* --once: collects a priming round and, a second later, a real one, and
 * prints the push body it would send to stdout. Touches neither the spool
 * nor the server. Returns the exit status. */
int agent_once(const struct agent_opts *o);

#endif
