/* Fuzz harness of request targets and query strings through the real HTTP
 * front: scalecastd's server (server_create: evhttp, routing, srv_query's
 * evhttp_parse_query_str and parameter checks, query.c, export.c, webui.c)
 * runs on a thread of this process, on a loopback port, over a real store
 * in a temporary directory seeded with a few series and decisions.
 *
 * Each input is the request target after its first '/': the harness sends
 * "GET /<input> HTTP/1.1" (bytes below 0x21 and 0x7f percent-encoded, so
 * one input is one request line; everything else goes as is) on a
 * kept-alive connection and reads the whole answer (Content-Length or
 * chunked). Seeds look like "api/v1/series?node=node-a&metric=cpu&step=60".
 *
 * Checked besides "no crash, no memory error, no undefined behaviour" in
 * the server: an answer comes within ANSWER_TIMEOUT_S; no 5xx (a query
 * cannot make the server fail); a JSON answer parses, and an error answer
 * is {"error": "..."}; no file outside the dashboard is served. A violation
 * aborts with the request and the answer printed. SCALECAST_FUZZ_VERBOSE=1
 * in the environment prints each request's status. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "server.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ANSWER_TIMEOUT_S 8 /* under run.sh's 10 s per input, so this message wins */
#define SEED_POINTS 240    /* one hour at 15 s: enough history for a forecast */

static struct {
    bool ready;
    char dir[256];
    struct config cfg;
    struct store *st;
    struct server *srv;
    int fd; /* kept-alive client connection, -1 when none */
    bool noted_silent_close;
    bool verbose; /* SCALECAST_FUZZ_VERBOSE set: print each status */
} g = {.fd = -1};

/* The request being answered, for messages. */
static const char *cur_req;
static size_t cur_req_len;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_query: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nrequest: %.*s\n", (int)(cur_req_len > 2000 ? 2000 : cur_req_len),
            cur_req ? cur_req : "");
    abort();
}

/* ---- the server ---------------------------------------------------------- */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static atomic_int seed_status = 1; /* 1: pending */

static void seed_done(void *arg, int status, const char *err)
{
    if (status)
        fprintf(stderr, "fuzz_query: seeding the store failed: %s\n", err ? err : "?");
    atomic_store(&seed_status, status);
}

/* Host cpu and mem of node-a, cpu of node-b, cpu and mem of container
 * web.1 (service web) on node-a: one point every 15 s for the last hour;
 * and a few decisions. */
static void seed_store(void)
{
    static const struct {
        const char *node, *container, *service, *metric;
    } series[] = {{"node-a", "", "", "cpu"},
                  {"node-a", "", "", "mem"},
                  {"node-b", "", "", "cpu"},
                  {"node-a", "web.1", "web", "cpu"},
                  {"node-a", "web.1", "web", "mem"}};
    enum { NS = sizeof series / sizeof series[0] };
    struct store_sample *s = calloc(NS * SEED_POINTS, sizeof *s);
    if (!s)
        abort();
    double t0 = floor(now_s()) - 15.0 * SEED_POINTS;
    size_t n = 0;
    for (size_t k = 0; k < NS; k++) {
        for (int i = 0; i < SEED_POINTS; i++)
            s[n++] = (struct store_sample){series[k].node,    series[k].container,
                                           series[k].service, series[k].metric,
                                           t0 + 15.0 * i,     50 + 20 * sin(i / 10.0 + k)};
    }
    store_submit(g.st, s, n, seed_done, NULL);
    store_sync(g.st);
    free(s);
    if (atomic_load(&seed_status) != 0)
        abort();
    static const char *const actions[] = {"scale_up", "hold", "scale_down"};
    for (int i = 0; i < 3; i++) {
        struct store_decision d = {.ts = t0 + 600.0 * (i + 1),
                                   .service = i == 1 ? "api" : "web",
                                   .action = actions[i],
                                   .current = 2 + i,
                                   .desired = 3,
                                   .target = 3,
                                   .mode = "enforce",
                                   .outcome = "applied",
                                   .reason = "cpu 91% > 80%, \"quoted\"",
                                   .inputs = "{\"value\": 91.5}"};
        if (store_add_decision(g.st, &d) < 0)
            abort();
    }
}

static void remove_dir(void)
{
    DIR *d = opendir(g.dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        char p[600];
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", g.dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(g.dir);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int port = -1;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

static void *serve(void *arg)
{
    server_run(g.srv);
    return NULL;
}

static void start(void)
{
    log_set_level(LOG_WARN);
    g.verbose = getenv("SCALECAST_FUZZ_VERBOSE") != NULL;
    const char *tmp = getenv("TMPDIR");
    snprintf(g.dir, sizeof g.dir, "%s/scalecast-fuzz-XXXXXX",
             tmp && *tmp && strlen(tmp) < 200 ? tmp : "/tmp");
    if (!mkdtemp(g.dir)) {
        perror("fuzz_query: mkdtemp");
        abort();
    }
    atexit(remove_dir);
    char path[300], err[512];
    snprintf(path, sizeof path, "%s/fuzz.db", g.dir);
    struct store_opts so = {.path = path, .sync_full = false, .retention = 0};
    if (store_open(&so, &g.st, err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_query: store_open: %s\n", err);
        abort();
    }
    seed_store();
    config_defaults(&g.cfg);
    free(g.cfg.server.db);
    g.cfg.server.db = strdup(path);
    for (int attempt = 0; attempt < 20 && !g.srv; attempt++) {
        int port = free_port();
        char listen[64];
        snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
        free(g.cfg.server.listen);
        g.cfg.server.listen = strdup(listen);
        if (port <= 0 || server_create(&g.cfg, g.st, &g.srv, err, sizeof err) < 0)
            g.srv = NULL;
    }
    if (!g.srv) {
        fprintf(stderr, "fuzz_query: cannot start the server: %s\n", err);
        abort();
    }
    pthread_t t;
    if (pthread_create(&t, NULL, serve, NULL) != 0)
        abort();
    pthread_detach(t);
    g.ready = true;
}

/* ---- the client ---------------------------------------------------------- */

static int connect_server(void)
{
    const char *colon = strrchr(g.cfg.server.listen, ':');
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)strtol(colon + 1, NULL, 10)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("fuzz_query: connect");
        abort();
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int send_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

struct rbuf {
    char *data;
    size_t len, cap;
};

/* Reads more into b. Returns bytes read, 0 at EOF, -1 on error; dies when
 * nothing comes within the timeout (a hung server). */
static ssize_t fill(int fd, struct rbuf *b)
{
    if (b->cap - b->len < 65536) {
        b->cap = b->cap * 2 + 65536;
        b->data = realloc(b->data, b->cap);
        if (!b->data)
            abort();
    }
    /* libFuzzer's timer interrupts poll every second: keep one deadline. */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    double deadline = (double)t.tv_sec + t.tv_nsec / 1e9 + ANSWER_TIMEOUT_S;
    int r;
    do {
        clock_gettime(CLOCK_MONOTONIC, &t);
        double left = deadline - ((double)t.tv_sec + t.tv_nsec / 1e9);
        r = left > 0 ? poll(&p, 1, (int)(left * 1000) + 1) : 0;
    } while (r < 0 && errno == EINTR);
    if (r == 0)
        die("no answer within %d s (%zu bytes received)", ANSWER_TIMEOUT_S, b->len);
    ssize_t n;
    while ((n = recv(fd, b->data + b->len, b->cap - b->len - 1, 0)) < 0 && errno == EINTR)
        ;
    if (n > 0) {
        b->len += (size_t)n;
        b->data[b->len] = '\0';
    }
    return n;
}

struct answer {
    int status;
    bool json, close;
    char *body; /* decoded (not chunked); NUL-terminated */
    size_t body_len;
};

/* Value of header `name` within the header block [h, end), or NULL. */
static const char *header(const char *h, const char *end, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    for (const char *line = h; line < end;) {
        const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > nlen && line[nlen] == ':' && !strncasecmp(line, name, nlen)) {
            const char *v = line + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        line = eol + 2;
    }
    return NULL;
}

static bool header_has(const char *h, const char *end, const char *name, const char *token)
{
    size_t vlen;
    const char *v = header(h, end, name, &vlen);
    return v && memmem(v, vlen, token, strlen(token)) != NULL;
}

/* Decodes a chunked body starting at b->data + *pos, reading more as needed.
 * Returns 0, or -1 at EOF mid-body. */
static int read_chunked(int fd, struct rbuf *b, size_t pos, struct answer *a)
{
    size_t cap = 0;
    for (;;) {
        char *eol;
        while (!(eol = memmem(b->data + pos, b->len - pos, "\r\n", 2)))
            if (fill(fd, b) <= 0)
                return -1;
        char *end;
        unsigned long n = strtoul(b->data + pos, &end, 16);
        if (end == b->data + pos)
            die("bad chunk size line in the answer");
        pos = (size_t)(eol - b->data) + 2;
        while (b->len - pos < n + 2)
            if (fill(fd, b) <= 0)
                return -1;
        if (a->body_len + n + 1 > cap) {
            cap = 2 * cap + n + 1;
            a->body = realloc(a->body, cap);
            if (!a->body)
                abort();
        }
        memcpy(a->body + a->body_len, b->data + pos, n);
        a->body_len += n;
        a->body[a->body_len] = '\0';
        pos += n + 2;
        if (n == 0)
            break;
    }
    if (!a->body)
        a->body = calloc(1, 1);
    if (pos != b->len)
        a->close = true; /* bytes after the answer: start afresh */
    return 0;
}

/* Reads one answer. Returns 0, or -1 when the connection ended before a
 * complete answer (*got tells whether any byte came). */
static int read_answer(int fd, struct answer *a, bool *got)
{
    struct rbuf b = {0};
    memset(a, 0, sizeof *a);
    *got = false;
    char *hend;
    while (!b.data || !(hend = memmem(b.data, b.len, "\r\n\r\n", 4))) {
        if (fill(fd, &b) <= 0)
            goto eof;
        *got = true;
    }
    if (sscanf(b.data, "HTTP/1.%*c %d", &a->status) != 1)
        die("not an HTTP answer: %.80s", b.data);
    const char *h = memmem(b.data, b.len, "\r\n", 2) + 2;
    size_t pos = (size_t)(hend - b.data) + 4, vlen;
    a->json = header_has(h, hend, "Content-Type", "application/json");
    a->close = header_has(h, hend, "Connection", "close") || strncmp(b.data, "HTTP/1.0", 8) == 0;
    const char *cl = header(h, hend, "Content-Length", &vlen);
    if (header_has(h, hend, "Transfer-Encoding", "chunked")) {
        if (read_chunked(fd, &b, pos, a) < 0)
            goto eof;
    } else if (cl) {
        size_t n = strtoul(cl, NULL, 10);
        while (b.len - pos < n)
            if (fill(fd, &b) <= 0)
                goto eof;
        a->body = malloc(n + 1);
        memcpy(a->body, b.data + pos, n);
        a->body[n] = '\0';
        a->body_len = n;
        if (b.len - pos != n)
            a->close = true;
    } else {
        while (fill(fd, &b) > 0)
            ;
        a->body_len = b.len - pos;
        a->body = malloc(a->body_len + 1);
        memcpy(a->body, b.data + pos, a->body_len);
        a->body[a->body_len] = '\0';
        a->close = true;
    }
    free(b.data);
    return 0;
eof:
    free(b.data);
    free(a->body);
    a->body = NULL;
    return -1;
}

static void check_answer(const struct answer *a)
{
    if (a->status < 200 || a->status >= 500)
        die("status %d: %.500s", a->status, a->body);
    if (a->json) {
        json_error_t je;
        json_t *j = json_loadb(a->body, a->body_len, 0, &je);
        if (!j)
            die("status %d: the JSON answer does not parse (%s): %.500s", a->status, je.text,
                a->body);
        if (a->status != 200 && !json_is_string(json_object_get(j, "error")))
            die("status %d without {\"error\": ...}: %.500s", a->status, a->body);
        json_decref(j);
    }
    if (a->status == 200 && memmem(a->body, a->body_len, "root:x:0:", 9))
        die("served a file outside the dashboard: %.200s", a->body);
}

/* "GET /<input> HTTP/1.1": bytes that would end the request line early
 * (blanks, controls) are percent-encoded. */
static char *build_request(const uint8_t *data, size_t size, size_t *len)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *tail = " HTTP/1.1\r\nHost: fuzz\r\n\r\n";
    char *r = malloc(5 + 3 * size + strlen(tail) + 1), *p = r;
    if (!r)
        abort();
    memcpy(p, "GET /", 5);
    p += 5;
    for (size_t i = 0; i < size; i++) {
        if (data[i] < 0x21 || data[i] == 0x7f) {
            *p++ = '%';
            *p++ = hex[data[i] >> 4];
            *p++ = hex[data[i] & 15];
        } else {
            *p++ = (char)data[i];
        }
    }
    memcpy(p, tail, strlen(tail) + 1);
    *len = (size_t)(p - r) + strlen(tail);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g.ready)
        start();
    size_t len;
    char *req = build_request(data, size, &len);
    cur_req = req;
    cur_req_len = len;
    struct answer a;
    bool answered = false;
    /* A kept-alive connection the server closed (idle timeout) is not an
     * answer: retry once on a fresh one. */
    for (int attempt = 0; attempt < 2 && !answered; attempt++) {
        bool fresh = g.fd < 0, got = false;
        if (fresh)
            g.fd = connect_server();
        if (send_all(g.fd, req, len) == 0 && read_answer(g.fd, &a, &got) == 0)
            answered = true;
        if (!answered || a.close) {
            close(g.fd);
            g.fd = -1;
        }
        if (!answered && got)
            die("the connection ended in the middle of an answer");
        if (!answered && fresh)
            break; /* closed without a word: evhttp's way with some bad requests */
    }
    if (answered) {
        if (g.verbose)
            fprintf(stderr, "fuzz_query: %d (%zu bytes) %.*s\n", a.status, a.body_len,
                    (int)(len - 25), req);
        check_answer(&a);
        free(a.body);
    } else if (!g.noted_silent_close) {
        g.noted_silent_close = true;
        fprintf(stderr, "fuzz_query: note: the server closed a connection without an answer "
                        "(first such input shown once)\n");
    }
    cur_req = NULL;
    free(req);
    return 0;
}
