/* The configuration file: INI-style, parsed with libinih.
 *
 * Sections:
 *   [server]        listener, database, limits, tokens (keys checked here)
 *   [autoscaler]    tick and Docker engine connection (keys checked here)
 *   [service NAME]  one autoscaling policy each; kept as raw key/value pairs
 *                   with their line numbers, validated by autoscaler/policy.c
 *                   so that module owns its vocabulary.
 * Any other section, or an unknown key in [server]/[autoscaler], is an error
 * naming file:line and the key. */
#ifndef SCALECAST_CONFIG_H
#define SCALECAST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

struct config_kv {
    char *key;
    char *value;
    int line;
};

/* A [TYPE NAME] section kept raw. */
struct config_section {
    char *name;
    int line;
    struct config_kv *kv;
    size_t nkv;
};

struct server_config {
    char *listen;               /* "HOST:PORT", default 127.0.0.1:8080 */
    char *db;                   /* default data/scalecast.db */
    enum log_level log_level;   /* default info */
    size_t max_body_bytes;      /* default 8 MiB */
    size_t max_header_bytes;    /* default 16 KiB */
    int max_connections;        /* default 10000 (kept below the descriptor limit) */
    double request_timeout;     /* seconds a client may take to send a whole request (and
                                 * an idle keep-alive connection may stay), default 30 */
    char *ingest_token;         /* NULL: none */
    char *read_token;           /* NULL: none */
    char *admin_token;          /* NULL: none */
    bool allow_unauthenticated; /* bind beyond loopback without tokens */
    double stale_after;         /* seconds of silence before a node is stale, default 60 */
    double retention;           /* seconds of raw samples kept, default 7 days */
    bool sync_full;             /* fsync every commit (default) vs. WAL NORMAL */
    char *tls_cert;             /* PEM certificate chain: serve HTTPS; NULL: plain HTTP */
    char *tls_key;              /* PEM private key of tls_cert */
};

struct autoscaler_config {
    double tick;         /* seconds between evaluations, default 15 */
    char *docker_host;   /* unix:///var/run/docker.sock or tcp://HOST:PORT */
    char *docker_tls_ca; /* PEM files for tcp+TLS; NULL: plain */
    char *docker_tls_cert;
    char *docker_tls_key;
    double docker_timeout; /* seconds per engine call, default 10 */
};

struct config {
    char *path; /* file it came from, or NULL for built-in defaults */
    struct server_config server;
    struct autoscaler_config autoscaler;
    struct config_section *services;
    size_t nservices;
};

/* Fills *c with the built-in defaults (a config with no file). */
void config_defaults(struct config *c);

/* Reads `path` over the defaults already in *c. Returns 0, or -1 with a
 * message "FILE:LINE: ..." in err; on failure *c may hold part of the file
 * and must still be released with config_free. */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

/* Releases everything config_defaults/config_load allocated. */
void config_free(struct config *c);

/* Value parsers shared with the policy validator. Each returns 0, or -1 when
 * the text is not a valid value (out untouched). */
int config_parse_duration(const char *s, double *out); /* "90", "90s", "5m", "2h", "7d" */
int config_parse_size(const char *s, size_t *out);     /* "1024", "64KiB", "8MiB", "1GiB" */
int config_parse_bool(const char *s, bool *out);       /* true/false/yes/no/on/off/1/0 */
int config_parse_double(const char *s, double *out);   /* finite number, whole string */
int config_parse_int(const char *s, long lo, long hi, long *out);

/* Looks a [service NAME] section up by name; NULL if absent. Borrowed. */
const struct config_section *config_service(const struct config *c, const char *name);

#endif
