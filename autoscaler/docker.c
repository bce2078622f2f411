/* Docker Engine API client: HTTP over libcurl, JSON via jansson. */
#include "docker.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"
#include "xalloc.h"

/* A reply bigger than this is refused: a container list of a very large
 * host is a few MiB, and we never ask for logs or archives. */
#define REPLY_MAX (64u << 20)

struct docker {
    char *host;      /* as configured, for messages */
    char *unix_path; /* unix socket, or NULL for tcp */
    char *base_url;  /* "http://localhost" (unix) or "http(s)://HOST:PORT" */
    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    double timeout;
    pthread_mutex_t mu; /* guards everything below */
    char version[16];   /* negotiated or pinned "X.Y"; "" until known */
    int pinned;
    struct docker_counters counters;
};

struct buf {
    char *data;
    size_t len;
    size_t cap;
    int too_big;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* "1.41" -> 1041; -1 when s is not MAJOR.MINOR. */
static int version_parse(const char *s)
{
    unsigned major, minor;
    int n = 0;
    if (!s || sscanf(s, "%u.%u%n", &major, &minor, &n) != 2 || s[n] != '\0' || major > 99 ||
        minor > 999)
        return -1;
    return (int)(major * 1000 + minor);
}

static int file_readable(const char *what, const char *path, char *err, size_t errlen)
{
    if (access(path, R_OK) == 0)
        return 0;
    seterr(err, errlen, "%s '%s': %s", what, path, strerror(errno));
    return -EINVAL;
}

static int parse_host(struct docker *d, const char *host, char *err, size_t errlen)
{
    const char *path = NULL;
    if (strncmp(host, "unix://", 7) == 0)
        path = host + 7;
    else if (host[0] == '/')
        path = host;
    if (path) {
        if (path[0] != '/' || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            seterr(err, errlen,
                   "docker host '%s': the socket must be an absolute path shorter than %zu bytes",
                   host, sizeof(((struct sockaddr_un *)0)->sun_path));
            return -EINVAL;
        }
        d->unix_path = xstrdup(path);
        d->base_url = xstrdup("http://localhost");
        return 0;
    }
    if (strncmp(host, "tcp://", 6) == 0) {
        const char *hp = host + 6;
        const char *colon = strrchr(hp, ':');
        char *end;
        long port = colon ? strtol(colon + 1, &end, 10) : 0;
        if (!colon || colon == hp || colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535 ||
            strpbrk(hp, "/?#@ ")) {
            seterr(err, errlen, "docker host '%s': expected tcp://HOST:PORT", host);
            return -EINVAL;
        }
        int tls = d->tls_ca || d->tls_cert || d->tls_key;
        size_t n = strlen(hp) + 16;
        d->base_url = xmalloc(n);
        snprintf(d->base_url, n, "%s://%s", tls ? "https" : "http", hp);
        return 0;
    }
    seterr(err, errlen, "docker host '%s': expected unix:///PATH or tcp://HOST:PORT", host);
    return -EINVAL;
}

static int check_tls(const struct docker_opts *o, char *err, size_t errlen)
{
    if (!o->tls_ca && !o->tls_cert && !o->tls_key)
        return 0;
    if (!o->host || strncmp(o->host, "tcp://", 6) != 0) {
        seterr(err, errlen, "docker TLS files are set but the host '%s' is not tcp://HOST:PORT",
               o->host ? o->host : DOCKER_DEFAULT_HOST);
        return -EINVAL;
    }
    if (!o->tls_cert != !o->tls_key) {
        seterr(err, errlen, "docker TLS: a client certificate needs its key and vice versa");
        return -EINVAL;
    }
    if (o->tls_ca && file_readable("docker TLS CA file", o->tls_ca, err, errlen) < 0)
        return -EINVAL;
    if (o->tls_cert && file_readable("docker TLS certificate", o->tls_cert, err, errlen) < 0)
        return -EINVAL;
    if (o->tls_key && file_readable("docker TLS key", o->tls_key, err, errlen) < 0)
        return -EINVAL;
    return 0;
}

int docker_open(const struct docker_opts *opts, struct docker **out, char *err, size_t errlen)
{
    struct docker_opts none = {0};
    const struct docker_opts *o = opts ? opts : &none;
    const char *host = o->host ? o->host : DOCKER_DEFAULT_HOST;
    struct docker *d = NULL;

    *out = NULL;
    if (o->timeout < 0) {
        seterr(err, errlen, "docker timeout %g s: must not be negative", o->timeout);
        return -EINVAL;
    }
    if (o->api_version && version_parse(o->api_version) < 0) {
        seterr(err, errlen, "docker API version '%s': expected MAJOR.MINOR such as 1.41",
               o->api_version);
        return -EINVAL;
    }
    if (check_tls(o, err, errlen) < 0)
        return -EINVAL;

    pthread_once(&curl_once, curl_init_once);
    d = xcalloc(1, sizeof *d);
    pthread_mutex_init(&d->mu, NULL);
    d->host = xstrdup(host);
    d->tls_ca = o->tls_ca ? xstrdup(o->tls_ca) : NULL;
    d->tls_cert = o->tls_cert ? xstrdup(o->tls_cert) : NULL;
    d->tls_key = o->tls_key ? xstrdup(o->tls_key) : NULL;
    d->timeout = o->timeout > 0 ? o->timeout : DOCKER_DEFAULT_TIMEOUT;
    if (parse_host(d, host, err, errlen) < 0)
        goto fail;
    if (o->api_version) {
        snprintf(d->version, sizeof d->version, "%s", o->api_version);
        d->pinned = 1;
    }
    *out = d;
    return 0;
fail:
    docker_close(d);
    return -EINVAL;
}

void docker_close(struct docker *d)
{
    if (!d)
        return;
    pthread_mutex_destroy(&d->mu);
    free(d->host);
    free(d->unix_path);
    free(d->base_url);
    free(d->tls_ca);
    free(d->tls_cert);
    free(d->tls_key);
    free(d);
}

const char *docker_host(const struct docker *d)
{
    return d->host;
}

double docker_timeout(const struct docker *d)
{
    return d->timeout;
}

void docker_get_counters(struct docker *d, struct docker_counters *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->counters;
    pthread_mutex_unlock(&d->mu);
}

char *docker_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *o = xmalloc(3 * n + 1), *p = o;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return o;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct buf *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > REPLY_MAX) {
        b->too_big = 1;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    b->data = xgrow(b->data, &b->cap, b->len + n + 1, 1);
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static void count(struct docker *d, const char *method, int failed)
{
    pthread_mutex_lock(&d->mu);
    d->counters.requests++;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        d->counters.writes++;
    if (failed)
        d->counters.failures++;
    pthread_mutex_unlock(&d->mu);
}

/* Why the transfer failed, as a negative errno and words. */
static int transport_error(struct docker *d, CURL *c, CURLcode rc, const char *errbuf,
                           const struct buf *b, double timeout, char *why, size_t whylen)
{
    long os_errno = 0;
    curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        seterr(why, whylen, "cannot connect to the engine at %s: %s", d->host,
               os_errno ? strerror((int)os_errno) : detail);
        return os_errno ? -(int)os_errno : -ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        seterr(why, whylen, "no answer from the engine at %s within %g s", d->host, timeout);
        return -ETIMEDOUT;
    case CURLE_WRITE_ERROR:
        if (b->too_big) {
            seterr(why, whylen, "reply larger than %u MiB", REPLY_MAX >> 20);
            return -EPROTO;
        }
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        seterr(why, whylen, "TLS with the engine at %s failed: %s", d->host, detail);
        return -EPROTO;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        /* A TLS engine that refuses our certificate says so with an alert
         * the first time we read. */
        if (strncmp(d->base_url, "https:", 6) == 0 && strstr(detail, "SSL")) {
            seterr(why, whylen, "TLS with the engine at %s failed: %s", d->host, detail);
            return -EPROTO;
        }
        /* fall through */
    case CURLE_GOT_NOTHING:
        seterr(why, whylen, "the engine at %s closed the connection: %s", d->host, detail);
        return -ECONNRESET;
    default:
        break;
    }
    seterr(why, whylen, "talking to the engine at %s: %s", d->host, detail);
    return -EIO;
}

static void set_method(CURL *c, const char *method, const char *payload, size_t len)
{
    if (strcmp(method, "GET") == 0)
        return;
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        return;
    }
    /* The engine wants a body (possibly empty) on POST; other methods carry
     * one only when given. */
    if (payload || strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload ? payload : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (strcmp(method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
}

static void set_transport(struct docker *d, CURL *c, double timeout)
{
    long ms = (long)(timeout * 1000.0);
    if (ms < 1)
        ms = 1;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms);
    /* The engine is never reached through an HTTP proxy from the
     * environment: http_proxy must not redirect root-equivalent calls. */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "scalecast/" SCALECAST_VERSION);
    if (d->unix_path)
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, d->unix_path);
    if (d->tls_ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, d->tls_ca);
    if (d->tls_cert) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, d->tls_cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, d->tls_key);
    }
}

/* One HTTP exchange. Returns 0 when an answer came (any status, in *status,
 * body in *b), or a negative errno with the reason in why. */
static int http(struct docker *d, const char *method, const char *path, const char *payload,
                size_t len, double timeout, long *status, struct buf *b, char *why, size_t whylen)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdr = NULL;
    size_t ulen = strlen(d->base_url) + strlen(path) + 1;
    char *url = xmalloc(ulen);
    int rc = 0;
    CURL *c = curl_easy_init();

    if (!c) {
        seterr(why, whylen, "cannot create a libcurl handle");
        free(url);
        return -ENOMEM;
    }
    snprintf(url, ulen, "%s%s", d->base_url, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    set_transport(d, c, timeout);
    set_method(c, method, payload, len);
    hdr = curl_slist_append(hdr, "Expect:");
    if (payload)
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);

    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    else
        rc = transport_error(d, c, cc, errbuf, b, timeout, why, whylen);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    free(url);
    return rc;
}

/* The engine's words for a failed request: {"message": "..."}, or the text
 * itself when an older engine or a proxy answered plain text. */
static void engine_message(const struct buf *b, char *out, size_t outlen)
{
    json_t *j = b->len ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    const char *msg = j ? json_string_value(json_object_get(j, "message")) : NULL;
    if (msg) {
        snprintf(out, outlen, "%s", msg);
    } else if (b->len) {
        size_t n = strcspn(b->data, "\r\n");
        snprintf(out, outlen, "%.*s", (int)(n > 200 ? 200 : n), b->data);
    } else {
        snprintf(out, outlen, "(no message)");
    }
    json_decref(j);
}

static int status_errno(long status)
{
    switch (status) {
    case 400:
        return -EINVAL;
    case 401:
    case 403:
        return -EACCES;
    case 404:
        return -ENOENT;
    case 409:
        return -EBUSY;
    default:
        return status >= 500 ? -EIO : -EPROTO;
    }
}

/* Asks GET /version (unversioned, as the engine documents for negotiation)
 * and settles on min(engine's, ours). */
static int negotiate(struct docker *d, char *err, size_t errlen)
{
    struct buf b = {0};
    long status = 0;
    char why[DOCKER_ERR_MAX];
    json_t *j = NULL;
    int rc = http(d, "GET", "/version", NULL, 0, d->timeout, &status, &b, why, sizeof why);
    count(d, "GET", rc < 0 || status != 200);
    if (rc < 0) {
        seterr(err, errlen, "GET /version: %s", why);
        goto out;
    }
    if (status != 200) {
        engine_message(&b, why, sizeof why);
        seterr(err, errlen, "GET /version: %ld: %s", status, why);
        rc = status_errno(status);
        goto out;
    }
    j = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
    const char *theirs = json_string_value(json_object_get(j, "ApiVersion"));
    int v = version_parse(theirs);
    if (v < 0) {
        seterr(err, errlen, "GET /version: the answer has no ApiVersion");
        rc = -EPROTO;
        goto out;
    }
    if (v < version_parse(DOCKER_API_MIN)) {
        seterr(err, errlen, "the engine at %s speaks API %s; scalecast needs at least %s", d->host,
               theirs, DOCKER_API_MIN);
        rc = -EPROTO;
        goto out;
    }
    pthread_mutex_lock(&d->mu);
    snprintf(d->version, sizeof d->version, "%s",
             v > version_parse(DOCKER_API_MAX) ? DOCKER_API_MAX : theirs);
    pthread_mutex_unlock(&d->mu);
    log_debug("docker", "engine at %s speaks API %s; using %s", d->host, theirs, d->version);
out:
    json_decref(j);
    free(b.data);
    return rc;
}

int docker_api_version(struct docker *d, char *buf, size_t len, char *err, size_t errlen)
{
    pthread_mutex_lock(&d->mu);
    int known = d->version[0] != '\0';
    pthread_mutex_unlock(&d->mu);
    if (!known) {
        int rc = negotiate(d, err, errlen);
        if (rc < 0)
            return rc;
    }
    pthread_mutex_lock(&d->mu);
    snprintf(buf, len, "%s", d->version);
    pthread_mutex_unlock(&d->mu);
    return 0;
}

/* After the engine could not be reached, ask its version again next time:
 * it may come back upgraded. */
static void forget_version(struct docker *d)
{
    pthread_mutex_lock(&d->mu);
    if (!d->pinned)
        d->version[0] = '\0';
    pthread_mutex_unlock(&d->mu);
}

static int parse_reply(const struct buf *b, json_t **reply, char *why, size_t whylen)
{
    json_error_t je;
    if (!reply || b->len == 0)
        return 0;
    *reply = json_loadb(b->data, b->len, 0, &je);
    if (!*reply) {
        seterr(why, whylen, "the answer is not JSON: %s at byte %d", je.text, je.position);
        return -EPROTO;
    }
    return 0;
}

int docker_request(struct docker *d, const char *method, const char *path, const json_t *body,
                   double timeout, json_t **reply, char *err, size_t errlen)
{
    char version[16], why[DOCKER_ERR_MAX], *payload = NULL, *vpath = NULL;
    struct buf b = {0};
    long status = 0;
    int rc;

    if (reply)
        *reply = NULL;
    rc = docker_api_version(d, version, sizeof version, err, errlen);
    if (rc < 0)
        return rc;
    size_t n = strlen(path) + strlen(version) + 4;
    vpath = xmalloc(n);
    snprintf(vpath, n, "/v%s%s", version, path);
    if (body)
        payload = json_dumps(body, JSON_COMPACT);
    rc = http(d, method, vpath, payload, payload ? strlen(payload) : 0,
              timeout > 0 ? timeout : d->timeout, &status, &b, why, sizeof why);
    if (rc < 0) {
        if (rc != -ETIMEDOUT)
            forget_version(d);
    } else if ((status >= 200 && status < 300) || status == 304) {
        rc = parse_reply(&b, reply, why, sizeof why);
    } else {
        char msg[DOCKER_ERR_MAX - 64];
        engine_message(&b, msg, sizeof msg);
        snprintf(why, sizeof why, "%ld: %s", status, msg);
        rc = status_errno(status);
    }
    count(d, method, rc < 0);
    if (rc < 0)
        seterr(err, errlen, "%s %s: %s", method, vpath, why);
    free(vpath);
    free(payload);
    free(b.data);
    return rc;
}
