/* Docker Engine API client over the unix socket. */
#include "docker.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "http.h"
#include "xalloc.h"

#define MAX_LIST (16u << 20)

struct docker {
    char *path;
    int evfd;
};

void docker_list_free(struct docker_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].service);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (; *s; s++) {
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    }
    return 1;
}

static const char *label(json_t *labels, const char *key)
{
    json_t *v = json_is_object(labels) ? json_object_get(labels, key) : NULL;
    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

int docker_parse_list(const char *json, size_t len, struct docker_list *out, char *err,
                      size_t errlen)
{
    out->v = NULL;
    out->n = 0;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) {
        snprintf(err, errlen, "container list: not JSON: %s at line %d column %d", jerr.text,
                 jerr.line, jerr.column);
        return -EINVAL;
    }
    if (!json_is_array(root)) {
        snprintf(err, errlen, "container list: not an array");
        goto fail;
    }
    size_t n = json_array_size(root);
    out->v = xcalloc(n ? n : 1, sizeof *out->v);
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(root, i);
        json_t *id = json_object_get(c, "Id");
        json_t *names = json_object_get(c, "Names");
        json_t *labels = json_object_get(c, "Labels");
        if (!json_is_object(c)) {
            snprintf(err, errlen, "container list: [%zu]: not an object", i);
            goto fail;
        }
        if (!json_is_string(id) || !is_hex64(json_string_value(id))) {
            snprintf(err, errlen, "container list: [%zu].Id: not a 64-hex string", i);
            goto fail;
        }
        json_t *name = json_is_array(names) ? json_array_get(names, 0) : NULL;
        if (!json_is_string(name) || json_string_length(name) < 1) {
            snprintf(err, errlen, "container list: [%zu].Names: no name", i);
            goto fail;
        }
        if (labels && !json_is_object(labels) && !json_is_null(labels)) {
            snprintf(err, errlen, "container list: [%zu].Labels: not an object", i);
            goto fail;
        }
        struct docker_ctr *d = &out->v[out->n++];
        memcpy(d->id, json_string_value(id), 65);
        const char *nm = json_string_value(name);
        d->name = xstrdup(nm[0] == '/' ? nm + 1 : nm);
        const char *svc = label(labels, "com.docker.swarm.service.name");
        if (!svc)
            svc = label(labels, "com.docker.compose.service");
        d->service = svc ? xstrdup(svc) : NULL;
    }
    json_decref(root);
    return 0;
fail:
    json_decref(root);
    docker_list_free(out);
    return -EINVAL;
}

struct docker *docker_new(const char *path)
{
    struct docker *d = xcalloc(1, sizeof *d);
    d->path = xstrdup(path);
    d->evfd = -1;
    return d;
}

void docker_free(struct docker *d)
{
    if (!d)
        return;
    docker_events_close(d);
    free(d->path);
    free(d);
}

const char *docker_path(const struct docker *d)
{
    return d->path;
}

/* Connects and sends `request`. Returns the descriptor or -errno. */
static int request(const struct docker *d, const char *req, double timeout)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(d->path) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, d->path, strlen(d->path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct timeval tv = {(time_t)timeout, (suseconds_t)((timeout - (time_t)timeout) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    size_t len = strlen(req), done = 0;
    while (done < len) {
        ssize_t n = send(fd, req + done, len - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? -errno : -EIO;
            close(fd);
            return err;
        }
        done += (size_t)n;
    }
    return fd;
}

int docker_list_running(struct docker *d, double timeout, struct docker_list *out, char *err,
                        size_t errlen)
{
    out->v = NULL;
    out->n = 0;
    int fd = request(d,
                     "GET /containers/json HTTP/1.1\r\nHost: docker\r\n"
                     "User-Agent: scalecast-agent\r\nConnection: close\r\n\r\n",
                     timeout);
    if (fd < 0) {
        snprintf(err, errlen, "docker engine at %s: %s", d->path, strerror(-fd));
        return fd;
    }
    struct http_resp r;
    http_resp_init(&r, MAX_LIST);
    char chunk[16384];
    int rc = 0;
    while (rc == 0) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
            break;
        }
        rc = n == 0 ? http_resp_eof(&r) : http_resp_feed(&r, chunk, (size_t)n);
    }
    close(fd);
    if (rc < 0) {
        snprintf(err, errlen, "docker engine at %s: GET /containers/json: %s", d->path,
                 strerror(-rc));
    } else if (r.status != 200) {
        snprintf(err, errlen, "docker engine at %s: GET /containers/json answered %d %.200s",
                 d->path, r.status, r.body.len ? r.body.p : "");
        rc = -EPROTO;
    } else {
        rc = docker_parse_list(r.body.p ? r.body.p : "", r.body.len, out, err, errlen);
    }
    http_resp_free(&r);
    return rc < 0 ? rc : 0;
}

int docker_events_open(struct docker *d)
{
    docker_events_close(d);
    /* filters={"type":["container"],"event":["start","die","destroy","rename"]} */
    int fd = request(d,
                     "GET /events?filters=%7B%22type%22%3A%5B%22container%22%5D%2C%22event%22%3A"
                     "%5B%22start%22%2C%22die%22%2C%22destroy%22%2C%22rename%22%5D%7D HTTP/1.1\r\n"
                     "Host: docker\r\nUser-Agent: scalecast-agent\r\n\r\n",
                     2.0);
    if (fd < 0)
        return fd;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    d->evfd = fd;
    return fd;
}

int docker_events_drain(struct docker *d)
{
    if (d->evfd < 0)
        return -ENOTCONN;
    char chunk[4096];
    int got = 0;
    for (;;) {
        ssize_t n = recv(d->evfd, chunk, sizeof chunk, 0);
        if (n > 0) {
            got = 1;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return got;
        int err = n == 0 ? -ECONNRESET : -errno;
        docker_events_close(d);
        return err;
    }
}

int docker_events_fd(const struct docker *d)
{
    return d->evfd;
}

void docker_events_close(struct docker *d)
{
    if (d->evfd >= 0)
        close(d->evfd);
    d->evfd = -1;
}
