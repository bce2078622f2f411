/* The CLI's REST client: GETs against scalecastd with libcurl, a JSON answer
 * parsed with jansson or a body streamed to a FILE as it arrives.
 *
 * Failures come back as CLI_EXIT_* codes (commands.h) with a message for the
 * user in the client's err buffer: CLI_EXIT_SERVER when the server cannot be
 * reached or answers with an error status, CLI_EXIT_FAIL when writing the
 * output failed. */
#ifndef SCALECAST_CLI_CLIENT_H
#define SCALECAST_CLI_CLIENT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

struct client {
    const char *server; /* base URL, e.g. http://127.0.0.1:8080 (borrowed) */
    const char *token;  /* bearer token or NULL (borrowed) */
    double timeout;     /* seconds for a whole JSON request */
    char err[1024];     /* the last failure, for the user */
};

/* A query parameter; pairs with a NULL value are left out. */
struct client_param {
    const char *name, *value;
};

/* Builds SERVER + path + "?" + the url-encoded parameters (a new string the
 * caller frees). params ends with a {NULL, NULL} entry; may be NULL. */
char *client_url(const struct client *c, const char *path, const struct client_param *params);

/* GETs url and parses the JSON answer. Returns 0 with *out a new reference,
 * or a CLI_EXIT_* code with c->err set ("scalecastd at URL: 404: no series
 * ..." from the server's {"error": ...}, or why it could not be reached). */
int client_get_json(struct client *c, const char *url, json_t **out /* out */);

/* Progress of a stream: called as the body arrives with the bytes and
 * newlines written so far (and once more at the end with done = 1). */
typedef void (*client_progress_fn)(void *arg, uint64_t bytes, uint64_t lines, int done);

/* GETs url and writes the body to `out` as it arrives (bounded memory
 * whatever its size). An error status writes nothing to out. Returns 0, or
 * a CLI_EXIT_* code with c->err set; a transfer cut short leaves what had
 * arrived in out and says how much in c->err. */
int client_stream(struct client *c, const char *url, FILE *out, client_progress_fn fn, void *arg);

#endif
