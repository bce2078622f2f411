/* A small Docker Engine API client over libcurl.
 *
 * Speaks HTTP to the engine on a unix socket (the default), or on tcp://,
 * optionally with TLS and a client certificate. Every call has a timeout,
 * bodies are JSON (jansson), and every error names the request that failed
 * and carries the engine's own message ("No such service: web") or, when the
 * engine could not be reached, why ("connection refused").
 *
 * The API version is negotiated lazily with GET /version on the first call
 * (and again after the engine could not be reached, since it may have been
 * upgraded while down); requests then use the versioned paths /vX.Y/...
 *
 * Thread safety: one struct docker may be used by several threads at once;
 * each call uses its own connection. */
#ifndef SCALECAST_DOCKER_H
#define SCALECAST_DOCKER_H

#include <stddef.h>

#include <jansson.h>

#define DOCKER_DEFAULT_HOST "unix:///var/run/docker.sock"
#define DOCKER_DEFAULT_TIMEOUT 10.0 /* seconds per call */

/* The API versions this client speaks. The oldest is where every endpoint
 * we call exists in the form we use; the newest is the last one whose
 * changes we handle (1.44 made multi-network container create possible). */
#define DOCKER_API_MIN "1.24"
#define DOCKER_API_MAX "1.47"

/* A buffer size that holds any message this module writes into err. */
#define DOCKER_ERR_MAX 512

struct docker_opts {
    /* "unix:///path", "/path" or "tcp://HOST:PORT"; NULL: DOCKER_DEFAULT_HOST. */
    const char *host;
    /* tcp only; setting any of the three speaks HTTPS. tls_ca: the PEM CA
     * that signed the engine's certificate (NULL: the system's CAs).
     * tls_cert and tls_key: our client certificate and key (both or
     * neither), as an engine run with --tlsverify demands. */
    const char *tls_ca;
    const char *tls_cert;
    const char *tls_key;
    /* Seconds per call; 0: DOCKER_DEFAULT_TIMEOUT. */
    double timeout;
    /* Pin "X.Y" instead of negotiating; NULL: negotiate. */
    const char *api_version;
};

/* Counters since docker_open, for metrics and for tests that prove that a
 * code path changed nothing. */
struct docker_counters {
    unsigned long requests; /* every request sent, /version included */
    unsigned long writes;   /* requests other than GET and HEAD */
    unsigned long failures; /* requests that returned an error */
};

struct docker;

/* Checks the options (host syntax, TLS files readable) and returns a client
 * in *out. Does not contact the engine, so a daemon that starts while the
 * engine is down still starts. Returns 0, or -EINVAL with a message naming
 * the bad option in err (nothing allocated). The options' strings are
 * copied. */
int docker_open(const struct docker_opts *opts, struct docker **out /* out */, char *err,
                size_t errlen);

/* Releases the client. NULL is allowed. */
void docker_close(struct docker *d);

/* The host the client talks to, as given (or the default). Borrowed. */
const char *docker_host(const struct docker *d);

/* The per-call timeout in seconds (for callers that must add to it, such
 * as a stop that waits out a grace period). */
double docker_timeout(const struct docker *d);

/* Sends METHOD /vX.Y{path} (path starts with '/' and includes any query
 * string, already escaped) with `body` (borrowed; NULL: no body) and waits at
 * most timeout seconds (0: the client's per-call timeout).
 *
 * Returns 0 on a 2xx or 304 ("already in that state") answer, with the
 * parsed reply in *reply (a new reference; NULL when the body was empty; pass
 * reply NULL to ignore it). On failure returns a negative errno and writes
 * "METHOD /vX.Y/path: reason" in err, *reply stays NULL:
 *   -ECONNREFUSED / -ENOENT(socket missing) / -EACCES   engine unreachable
 *   -ETIMEDOUT   no complete answer within the timeout
 *   -EINVAL 400, -EACCES 401/403, -ENOENT 404, -EBUSY 409, -EIO 5xx
 *   -EPROTO      the answer was not the JSON we expected
 * For HTTP errors the reason is "STATUS: <engine message>". */
int docker_request(struct docker *d, const char *method, const char *path, const json_t *body,
                   double timeout, json_t **reply /* out */, char *err, size_t errlen);

/* The API version requests use ("1.41"), negotiating it first if needed.
 * Returns 0, or a negative errno with the reason in err. */
int docker_api_version(struct docker *d, char *buf /* out */, size_t len, char *err, size_t errlen);

/* Percent-escapes s for use in a path segment or query value. Returns a new
 * string the caller frees. */
char *docker_escape(const char *s);

/* Copies the counters into *out. */
void docker_get_counters(struct docker *d, struct docker_counters *out /* out */);

#endif
