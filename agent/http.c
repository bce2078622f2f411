/* URL and HTTP/1.1 response parsing. */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

enum { ST_HEAD, ST_LEN, ST_CHUNKED, ST_EOF, ST_DONE };

void http_url_free(struct http_url *u)
{
    free(u->host);
    free(u->port);
    free(u->hostport);
    free(u->prefix);
    memset(u, 0, sizeof *u);
}

int http_url_parse(const char *url, struct http_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    const char *h;
    if (strncasecmp(url, "https://", 8) == 0) {
        u->tls = 1;
        h = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        h = url + 7;
    } else {
        snprintf(err, errlen, "server URL '%s': must start with http:// or https://", url);
        return -EINVAL;
    }
    const char *slash = strchr(h, '/');
    const char *end = slash ? slash : h + strlen(h);
    const char *hend, *port = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb) {
            snprintf(err, errlen, "server URL '%s': unterminated [IPv6 address]", url);
            return -EINVAL;
        }
        u->host = xstrndup(h + 1, (size_t)(rb - h - 1));
        hend = rb + 1;
        if (hend < end && *hend != ':') {
            snprintf(err, errlen, "server URL '%s': junk after ]", url);
            goto fail;
        }
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        hend = colon ? colon : end;
        u->host = xstrndup(h, (size_t)(hend - h));
    }
    if (hend < end && *hend == ':')
        port = hend + 1;
    if (!*u->host) {
        snprintf(err, errlen, "server URL '%s': no host", url);
        goto fail;
    }
    if (port) {
        size_t plen = (size_t)(end - port);
        long v = 0;
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)port[i]) || (v = v * 10 + (port[i] - '0')) > 65535) {
                v = -1;
                break;
            }
        }
        if (plen == 0 || v <= 0) {
            snprintf(err, errlen, "server URL '%s': bad port", url);
            goto fail;
        }
        u->port = xstrndup(port, plen);
    } else {
        u->port = xstrdup(u->tls ? "443" : "80");
    }
    const char *path = slash ? slash : "";
    size_t plen = strlen(path);
    while (plen > 0 && path[plen - 1] == '/')
        plen--;
    if (memchr(path, '?', plen) || memchr(path, '#', plen)) {
        snprintf(err, errlen, "server URL '%s': no query or fragment allowed", url);
        goto fail;
    }
    u->prefix = xstrndup(path, plen);
    size_t hp = strlen(u->host) + strlen(u->port) + 4;
    u->hostport = xmalloc(hp);
    if (strchr(u->host, ':'))
        snprintf(u->hostport, hp, "[%s]:%s", u->host, u->port);
    else
        snprintf(u->hostport, hp, "%s:%s", u->host, u->port);
    return 0;
fail:
    http_url_free(u);
    return -EINVAL;
}

void http_resp_init(struct http_resp *r, size_t max_body)
{
    memset(r, 0, sizeof *r);
    r->max = max_body;
    http_resp_reset(r);
}

void http_resp_reset(struct http_resp *r)
{
    buf_reset(&r->body);
    buf_reset(&r->raw);
    r->pos = 0;
    r->state = ST_HEAD;
    r->status = 0;
    r->close = 0;
    r->clen = 0;
}

void http_resp_free(struct http_resp *r)
{
    buf_free(&r->body);
    buf_free(&r->raw);
}

int http_resp_started(const struct http_resp *r)
{
    return r->raw.len > 0;
}

/* Case-insensitive "name:" at the start of a header line; returns the value
 * (after blanks) or NULL. */
static const char *header_value(const char *line, const char *name)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':')
        return NULL;
    line += n + 1;
    while (*line == ' ' || *line == '\t')
        line++;
    return line;
}

/* A comma-separated header value containing `token` (e.g. "close"). */
static int has_token(const char *value, size_t len, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i + tl <= len; i++) {
        if (strncasecmp(value + i, token, tl) == 0 &&
            (i == 0 || !isalnum((unsigned char)value[i - 1])) &&
            (i + tl == len || !isalnum((unsigned char)value[i + tl])))
            return 1;
    }
    return 0;
}

static int parse_head(struct http_resp *r, size_t head_len)
{
    char *head = r->raw.p;
    int minor;
    int status;
    if (sscanf(head, "HTTP/1.%d %3d", &minor, &status) != 2 || status < 100 || status > 599)
        return -EPROTO;
    r->status = status;
    r->close = minor == 0; /* HTTP/1.0 closes unless told otherwise */
    int have_len = 0, chunked = 0;
    char *line = strstr(head, "\r\n") + 2;
    while (line < head + head_len) {
        char *eol = strstr(line, "\r\n");
        const char *v;
        if ((v = header_value(line, "Content-Length"))) {
            char *end;
            errno = 0;
            unsigned long long cl = strtoull(v, &end, 10);
            if (end == v || errno || (*end != '\r' && *end != ' '))
                return -EPROTO;
            r->clen = cl;
            have_len = 1;
        } else if ((v = header_value(line, "Transfer-Encoding"))) {
            chunked = has_token(v, (size_t)(eol - v), "chunked");
        } else if ((v = header_value(line, "Connection"))) {
            if (has_token(v, (size_t)(eol - v), "close"))
                r->close = 1;
            else if (has_token(v, (size_t)(eol - v), "keep-alive"))
                r->close = 0;
        }
        line = eol + 2;
    }
    r->pos = head_len;
    if (status == 204 || status == 304 || (status >= 100 && status < 200)) {
        r->clen = 0;
        r->state = ST_LEN;
    } else if (chunked) {
        r->state = ST_CHUNKED;
    } else if (have_len) {
        if (r->clen > r->max)
            return -EMSGSIZE;
        r->state = ST_LEN;
    } else {
        r->state = ST_EOF;
        r->close = 1;
    }
    return 0;
}

/* Consumes whole chunks from raw. Returns 1 when the last chunk and the
 * trailer are in, 0 for more, or -errno. */
static int parse_chunks(struct http_resp *r)
{
    for (;;) {
        char *start = r->raw.p + r->pos;
        char *eol = strstr(start, "\r\n");
        if (!eol)
            return r->raw.len - r->pos > 64 ? -EPROTO : 0;
        char *end;
        errno = 0;
        unsigned long long size = strtoull(start, &end, 16);
        if (end == start || errno || (*end != '\r' && *end != ';' && *end != ' '))
            return -EPROTO;
        size_t head = (size_t)(eol + 2 - start);
        if (size == 0) {
            /* Trailer fields, then an empty line. */
            char *p = eol + 2;
            for (;;) {
                char *e = strstr(p, "\r\n");
                if (!e)
                    return 0;
                if (e == p) {
                    r->pos = (size_t)(e + 2 - r->raw.p);
                    return 1;
                }
                p = e + 2;
            }
        }
        if (size > r->max || r->body.len + size > r->max)
            return -EMSGSIZE;
        if (r->raw.len - r->pos < head + size + 2)
            return 0;
        if (start[head + size] != '\r' || start[head + size + 1] != '\n')
            return -EPROTO;
        buf_add(&r->body, start + head, (size_t)size);
        r->pos += head + (size_t)size + 2;
    }
}

int http_resp_feed(struct http_resp *r, const char *data, size_t n)
{
    if (r->state == ST_DONE)
        return n ? -EPROTO : 1;
    buf_add(&r->raw, data, n);
    if (r->state == ST_HEAD) {
        char *end = strstr(r->raw.p, "\r\n\r\n");
        if (!end)
            return r->raw.len > 65536 ? -EPROTO : 0;
        int rc = parse_head(r, (size_t)(end + 4 - r->raw.p));
        if (rc < 0)
            return rc;
    }
    int rc = 0;
    switch (r->state) {
    case ST_LEN:
        if (r->raw.len - r->pos >= r->clen) {
            if (r->raw.len - r->pos > r->clen)
                return -EPROTO;
            buf_add(&r->body, r->raw.p + r->pos, (size_t)r->clen);
            r->pos += (size_t)r->clen;
            rc = 1;
        }
        break;
    case ST_CHUNKED:
        rc = parse_chunks(r);
        if (rc == 1 && r->pos != r->raw.len)
            return -EPROTO;
        break;
    case ST_EOF:
        if (r->raw.len - r->pos > r->max)
            return -EMSGSIZE;
        break;
    }
    if (rc == 1)
        r->state = ST_DONE;
    return rc;
}

int http_resp_eof(struct http_resp *r)
{
    if (r->state == ST_DONE)
        return 1;
    if (r->state != ST_EOF)
        return -EPROTO;
    buf_add(&r->body, r->raw.p + r->pos, r->raw.len - r->pos);
    r->pos = r->raw.len;
    r->state = ST_DONE;
    return 1;
}
