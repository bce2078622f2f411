/* The small part of HTTP/1.1 the agent speaks: parsing a server URL and
 * parsing responses (Content-Length, chunked, or read-until-close bodies).
 * Requests are written by their callers; they are one format string. TLS
 * is tls.h's, underneath.
 *
 * Why not libcurl: the agent's whole job is to be light, and Debian's libcurl
 * maps about 9 MB of shared libraries (TLS, HTTP/2, IDN, LDAP, ...) into the
 * process for a POST the agent can write in one line. See docs/agent.md. */
#ifndef SCALECAST_AGENT_HTTP_H
#define SCALECAST_AGENT_HTTP_H

#include <stddef.h>

#include "buf.h"

struct http_url {
    int tls;        /* https:// */
    char *host;     /* "127.0.0.1", "::1", "scalecast.example" */
    char *port;     /* "8080" */
    char *hostport; /* for the Host header: "127.0.0.1:8080", "[::1]:8080" */
    char *prefix;   /* path before /api/v1/..., "" or "/scalecast" */
};

/* Parses "http://HOST[:PORT][/PREFIX]" or "https://..." (port 80 or 443 by
 * default). Returns 0, or -EINVAL with a message
 * in err (naming what is wrong with the URL); *u is then empty. */
int http_url_parse(const char *url, struct http_url *u /* out */, char *err, size_t errlen);
void http_url_free(struct http_url *u);

struct http_resp {
    int status; /* e.g. 200, once the header is in */
    int close;  /* the server will close the connection after this */
    struct buf body;
    /* parser state */
    struct buf raw;
    size_t pos;
    int state;
    unsigned long long clen;
    size_t max;
};

/* Prepares a parser accepting bodies of at most `max_body` bytes. */
void http_resp_init(struct http_resp *r, size_t max_body);
/* Readies the parser for the next response on the same connection. */
void http_resp_reset(struct http_resp *r);
void http_resp_free(struct http_resp *r);

/* Feeds received bytes. Returns 1 when the response is complete, 0 when more
 * is needed, -EPROTO for a malformed response or -EMSGSIZE for a body over
 * the limit. Bytes after a complete response are an error (-EPROTO): the
 * agent never pipelines. */
int http_resp_feed(struct http_resp *r, const char *data, size_t n);
/* The peer closed the connection: returns 1 when that ends a body sent
 * without a length, otherwise -EPROTO (a response cut short). */
int http_resp_eof(struct http_resp *r);
/* True once at least the status line arrived. */
int http_resp_started(const struct http_resp *r);

#endif
