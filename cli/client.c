/* REST client of the CLI over libcurl. */
#include "client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "xalloc.h"

#define MAX_JSON_BODY (256u << 20) /* a JSON answer larger than this is refused */
#define CONNECT_TIMEOUT 10L

char *client_url(const struct client *c, const char *path, const struct client_param *params)
{
    size_t blen = strlen(c->server);
    while (blen > 0 && c->server[blen - 1] == '/')
        blen--;
    size_t cap = blen + strlen(path) + 2, len = 0;
    char *url = xmalloc(cap);
    len = (size_t)snprintf(url, cap, "%.*s%s", (int)blen, c->server, path);
    char sep = '?';
    for (const struct client_param *p = params; p && p->name; p++) {
        if (!p->value)
            continue;
        char *v = curl_easy_escape(NULL, p->value, 0);
        size_t need = len + strlen(p->name) + strlen(v) + 3;
        url = xgrow(url, &cap, need, 1);
        len += (size_t)snprintf(url + len, cap - len, "%c%s=%s", sep, p->name, v);
        curl_free(v);
        sep = '&';
    }
    return url;
}

/* One request in flight. */
struct xfer {
    struct client *c;
    CURL *h;
    long status; /* known once the first body byte arrives */
    char *buf;   /* JSON answers, and any error body */
    size_t len, cap;
    FILE *out; /* streaming: where a 2xx body goes */
    uint64_t bytes, lines;
    client_progress_fn fn;
    void *arg;
    int write_errno;
};

static bool ok_status(long s)
{
    return s >= 200 && s < 300;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    size_t n = size * nmemb;
    if (x->status == 0)
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
    if (x->out && ok_status(x->status)) {
        if (fwrite(data, 1, n, x->out) != n) {
            x->write_errno = errno ? errno : EIO;
            return 0;
        }
        x->bytes += n;
        for (const char *p = data; (p = memchr(p, '\n', (size_t)(data + n - p))); p++)
            x->lines++;
        if (x->fn)
            x->fn(x->arg, x->bytes, x->lines, 0);
        return n;
    }
    if (x->len + n > MAX_JSON_BODY)
        return 0;
    x->buf = xgrow(x->buf, &x->cap, x->len + n + 1, 1);
    memcpy(x->buf + x->len, data, n);
    x->len += n;
    x->buf[x->len] = '\0';
    return n;
}

static int perform(struct client *c, const char *url, struct xfer *x, long timeout_ms)
{
    static bool ready;
    if (!ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        ready = true;
    }
    x->c = c;
    x->h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char auth[1024];
    if (c->token && *c->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    hdrs = curl_slist_append(hdrs, "Accept: application/json, text/csv");
    curl_easy_setopt(x->h, CURLOPT_URL, url);
    curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(x->h, CURLOPT_USERAGENT, "scalecast/" SCALECAST_VERSION);
    curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT);
    curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->h, CURLOPT_ACCEPT_ENCODING, "");
    /* A stream that stalls for a minute is dead even without a total limit. */
    curl_easy_setopt(x->h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(x->h, CURLOPT_LOW_SPEED_TIME, 60L);
    CURLcode rc = curl_easy_perform(x->h);
    if (x->status == 0)
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(x->h);
    x->h = NULL;
    if (x->write_errno) {
        snprintf(c->err, sizeof c->err, "writing the output failed after %llu bytes: %s",
                 (unsigned long long)x->bytes, strerror(x->write_errno));
        return CLI_EXIT_FAIL;
    }
    if (rc != CURLE_OK) {
        if (x->bytes)
            snprintf(c->err, sizeof c->err,
                     "transfer from %s cut short after %llu bytes (%llu lines): %s", c->server,
                     (unsigned long long)x->bytes, (unsigned long long)x->lines,
                     curl_easy_strerror(rc));
        else
            snprintf(c->err, sizeof c->err,
                     "cannot reach scalecastd at %s: %s (set --server or SCALECAST_SERVER)",
                     c->server, curl_easy_strerror(rc));
        return CLI_EXIT_SERVER;
    }
    if (!ok_status(x->status)) {
        json_t *doc = x->buf ? json_loads(x->buf, 0, NULL) : NULL;
        const char *msg = json_string_value(json_object_get(doc, "error"));
        if (!msg) {
            size_t n = x->len;
            while (n > 0 && (x->buf[n - 1] == '\n' || x->buf[n - 1] == '\r'))
                n--;
            snprintf(c->err, sizeof c->err, "scalecastd at %s answered %ld%s%.200s", c->server,
                     x->status, n ? ": " : "", n ? x->buf : "");
        } else {
            snprintf(c->err, sizeof c->err, "scalecastd at %s answered %ld: %s", c->server,
                     x->status, msg);
        }
        json_decref(doc);
        return CLI_EXIT_SERVER;
    }
    return 0;
}

int client_get_json(struct client *c, const char *url, json_t **out)
{
    struct xfer x = {0};
    *out = NULL;
    int rc = perform(c, url, &x, (long)(c->timeout * 1000));
    if (rc == 0) {
        json_error_t je;
        *out = json_loadb(x.buf ? x.buf : "", x.len, 0, &je);
        if (!*out) {
            snprintf(c->err, sizeof c->err, "scalecastd at %s sent invalid JSON: %s", c->server,
                     je.text);
            rc = CLI_EXIT_SERVER;
        }
    }
    free(x.buf);
    return rc;
}

int client_stream(struct client *c, const char *url, FILE *out, client_progress_fn fn, void *arg)
{
    struct xfer x = {.out = out, .fn = fn, .arg = arg};
    int rc = perform(c, url, &x, 0);
    if (rc == 0 && fflush(out) != 0) {
        snprintf(c->err, sizeof c->err, "writing the output failed: %s", strerror(errno));
        rc = CLI_EXIT_FAIL;
    }
    if (fn)
        fn(arg, x.bytes, x.lines, 1);
    free(x.buf);
    return rc;
}
