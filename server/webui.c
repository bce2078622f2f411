/* Serving the dashboard: embedded files under / and the charting libraries
 * Debian installs under /usr/share/javascript (never copied into the repo). */
#include "server_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "webui.h"

#define JS_ROOT "/usr/share/javascript/"

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"},
                 {".js", "text/javascript; charset=utf-8"},
                 {".mjs", "text/javascript; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"},
                 {".svg", "image/svg+xml"},
                 {".png", "image/png"},
                 {".json", "application/json"},
                 {".map", "application/json"}};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    }
    return "application/octet-stream";
}

/* A library path is safe when it names a file below JS_ROOT: no "..", no
 * empty or hidden segments, only plain characters. */
static bool safe_lib_path(const char *rel)
{
    if (!*rel || strlen(rel) > 200)
        return false;
    const char *seg = rel;
    for (const char *p = rel;; p++) {
        if (*p == '/' || *p == '\0') {
            if (p == seg || *seg == '.')
                return false;
            if (!*p)
                return true;
            seg = p + 1;
        } else if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || strchr("._-", *p))) {
            return false;
        }
    }
}

static void serve_lib(struct server *s, struct evhttp_request *req, const char *rel)
{
    char full[512];
    if (!safe_lib_path(rel)) {
        srv_reply_error(s, req, 404, "no such file");
        return;
    }
    snprintf(full, sizeof full, "%s%s", JS_ROOT, rel);
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0)
            close(fd);
        srv_reply_error(s, req, 404, "%s is not installed (Debian package libjs-*)", full);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_file(b, fd, 0, sb.st_size); /* takes the fd */
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", content_type(full));
    evhttp_add_header(h, "Cache-Control", "max-age=3600");
    evhttp_send_reply(req, 200, NULL, b);
    evbuffer_free(b);
    srv_count(s, 200);
}

bool webui_handle(struct server *s, struct evhttp_request *req, const char *path)
{
    if (strncmp(path, "/lib/", 5) == 0) {
        serve_lib(s, req, path + 5);
        return true;
    }
    const char *want = strcmp(path, "/") == 0 ? "/index.html" : path;
    for (const struct webui_file *f = webui_files; f->path; f++) {
        if (strcmp(f->path, want) != 0)
            continue;
        struct evbuffer *b = evbuffer_new();
        evbuffer_add_reference(b, f->data, f->len, NULL, NULL);
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Content-Type", content_type(f->path));
        evhttp_add_header(h, "Cache-Control", "no-cache");
        evhttp_send_reply(req, 200, NULL, b);
        evbuffer_free(b);
        srv_count(s, 200);
        return true;
    }
    return false;
}
