/* Data-driven collector tests: runs every collector over a fixture tree.
 *
 * Usage: test_agent_fixture CASEDIR [FAKE_NVML_LIB]
 *
 * CASEDIR/steps/0, steps/1, ... are overlays of a root holding proc/, sys/
 * and cgroup/. Before step N, the files of steps/N are written over the root
 * in place (so descriptors the collectors keep open see the new text, as
 * they do with the kernel's files); steps/N/REMOVE lists paths to delete.
 * A containers.json in an overlay is what a stand-in Docker engine answers
 * to GET /containers/json (the engine is a boundary: cgroup v2 and foreign
 * layouts cannot run here, so the fixture supplies its answer), and writing
 * one sends an event on the engine's event stream, as a real start would.
 *
 * CASEDIR/expect says what each step must produce:
 *   interval SECONDS              time between steps (default 1)
 *   nvml fake                     load FAKE_NVML_LIB as NVML
 *   STEP samples COUNT            samples in the round (host included)
 *   STEP host METRIC VALUE [TOL]  a host metric; VALUE "absent": not sent
 *   STEP ctr:NAME METRIC VALUE [TOL]
 *   STEP service:NAME SERVICE     the container's service label ("none")
 * Every round's JSON lines must also parse, so the wire format is checked. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "collector.h"
#include "log.h"
#include "pfile.h"
#include "text.h"
#include "unit.h"
#include "xalloc.h"

static char root[64];
static const char *overlay_base;

/* ---- files ---- */

static int mkdir_parents(const char *path)
{
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    }
    free(p);
    return 0;
}

static int copy_one(const char *src, const struct stat *st, int type, struct FTW *ftw)
{
    const char *rel = src + strlen(overlay_base);
    if (*rel == '/')
        rel++;
    if (!*rel || strcmp(rel, "REMOVE") == 0)
        return 0;
    char *dst = path_join(root, rel);
    if (type == FTW_D) {
        mkdir_parents(dst);
        mkdir(dst, 0755);
    } else if (type == FTW_F) {
        mkdir_parents(dst);
        FILE *in = fopen(src, "rb");
        /* O_TRUNC on the same inode: an open descriptor sees the new text. */
        int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        char chunk[4096];
        size_t n;
        while (in && out >= 0 && (n = fread(chunk, 1, sizeof chunk, in)) > 0) {
            if (write(out, chunk, n) != (ssize_t)n)
                break;
        }
        if (in)
            fclose(in);
        if (out >= 0)
            close(out);
    }
    free(dst);
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

static void rm_rf(const char *path)
{
    nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Applies steps/N; returns 1 if it brought a containers.json. */
static int apply_step(const char *casedir, int step)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/steps/%d", casedir, step);
    overlay_base = dir;
    if (nftw(dir, copy_one, 16, FTW_PHYS) < 0)
        return -1;
    char rm[600];
    snprintf(rm, sizeof rm, "%s/REMOVE", dir);
    FILE *f = fopen(rm, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0]) {
            char *p = path_join(root, line);
            rm_rf(p);
            free(p);
        }
    }
    if (f)
        fclose(f);
    char cj[600];
    snprintf(cj, sizeof cj, "%s/containers.json", dir);
    return access(cj, F_OK) == 0;
}

/* ---- a stand-in Docker engine on a unix socket ---- */

static int engine_fd = -1;
static int event_fds[16];
static int nevents;
static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *engine_main(void *arg)
{
    for (;;) {
        int c = accept(engine_fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char req[2048];
        size_t len = 0;
        ssize_t n;
        while (len < sizeof req - 1 && (n = recv(c, req + len, sizeof req - 1 - len, 0)) > 0) {
            len += (size_t)n;
            req[len] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        req[len] = '\0';
        if (strncmp(req, "GET /containers/json", 20) == 0) {
            char *path = path_join(root, "containers.json");
            FILE *f = fopen(path, "rb");
            free(path);
            char body[65536];
            size_t bl = f ? fread(body, 1, sizeof body, f) : 0;
            if (f)
                fclose(f);
            char head[256];
            int hl = snprintf(head, sizeof head,
                              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                              bl);
            send_all(c, head, (size_t)hl);
            send_all(c, body, bl);
            close(c);
        } else if (strncmp(req, "GET /events", 11) == 0) {
            const char *head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
            send_all(c, head, strlen(head));
            pthread_mutex_lock(&engine_lock);
            if (nevents < 16)
                event_fds[nevents++] = c;
            else
                close(c);
            pthread_mutex_unlock(&engine_lock);
        } else {
            const char *nf = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
            send_all(c, nf, strlen(nf));
            close(c);
        }
    }
}

static void engine_event(void)
{
    const char *ev = "12\r\n{\"status\":\"start\"}\r\n"; /* 0x12 = 18 bytes */
    pthread_mutex_lock(&engine_lock);
    for (int i = 0; i < nevents; i++)
        send_all(event_fds[i], ev, strlen(ev));
    pthread_mutex_unlock(&engine_lock);
}

static int engine_start(const char *sock)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    engine_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (engine_fd < 0 || bind(engine_fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(engine_fd, 16) < 0)
        return -1;
    pthread_t t;
    return pthread_create(&t, NULL, engine_main, NULL) == 0 ? 0 : -1;
}

/* ---- expectations ---- */

static const struct sample *by_name(const struct sampleset *set, const char *name)
{
    for (size_t i = 1; i < set->n; i++) {
        if (strcmp(set->s[i].container, name) == 0)
            return &set->s[i];
    }
    return NULL;
}

static int metric(const struct sample *s, const char *name, double *v)
{
    for (size_t i = 0; s && i < s->n; i++) {
        if (strcmp(s->m[i].name, name) == 0) {
            *v = s->m[i].value;
            return 0;
        }
    }
    return -ENOENT;
}

static size_t nonempty(const struct sampleset *set)
{
    size_t n = 0;
    for (size_t i = 0; i < set->n; i++)
        n += set->s[i].n > 0;
    return n;
}

/* Checks one expect line against step `step`'s set. */
static void check_line(const char *file, int lineno, const char *line, int step,
                       const struct sampleset *set)
{
    int st;
    char what[128], name[64], value[64];
    double tol = 1e-6;
    int n = sscanf(line, "%d %127s %63s %63s %lf", &st, what, name, value, &tol);
    if (n < 3 || st != step)
        return;
    unit_checks++;
    const struct sample *s = NULL;
    int ok = 1;
    char got[64] = "absent";
    if (strcmp(what, "samples") == 0) {
        size_t want = (size_t)strtoul(name, NULL, 10);
        snprintf(got, sizeof got, "%zu", nonempty(set));
        ok = nonempty(set) == want;
    } else if (strncmp(what, "service:", 8) == 0) {
        s = by_name(set, what + 8);
        snprintf(got, sizeof got, "%s", s ? (s->service ? s->service : "none") : "no sample");
        ok = s && strcmp(got, name) == 0;
    } else {
        if (strcmp(what, "host") == 0)
            s = &set->s[0];
        else if (strncmp(what, "ctr:", 4) == 0)
            s = by_name(set, what + 4);
        double v;
        int have = metric(s, name, &v) == 0;
        if (have)
            snprintf(got, sizeof got, "%.10g", v);
        if (n < 4 || strcmp(value, "absent") == 0)
            ok = !have;
        else {
            double want = strtod(value, NULL);
            ok = have && fabs(v - want) <= tol * (fabs(want) > 1 ? fabs(want) : 1);
        }
    }
    if (!ok) {
        unit_failures++;
        fprintf(stderr, "%s:%d: step %d: expected '%s', got %s\n", file, lineno, step, line, got);
    }
}

static void check_json(const struct sampleset *set)
{
    struct buf out = BUF_INIT;
    sampleset_write(set, 1700000000.5, &out);
    for (char *l = out.p; l && *l;) {
        char *nl = strchr(l, '\n');
        json_error_t e;
        json_t *j = json_loadb(l, (size_t)(nl - l), 0, &e);
        CHECK(json_is_object(j) && json_is_object(json_object_get(j, "metrics")));
        json_decref(j);
        l = nl + 1;
    }
    buf_free(&out);
}

struct running {
    const struct collector *c;
    void *state;
};

/* Lets the collectors read what their descriptors have (engine events). */
static void pump(struct running *col, size_t ncol, int wait_ms)
{
    struct pollfd fds[16];
    size_t owner[16];
    int n = 0;
    for (size_t i = 0; i < ncol; i++) {
        int fd = col[i].c->poll_fd ? col[i].c->poll_fd(col[i].state) : -1;
        if (fd >= 0) {
            fds[n] = (struct pollfd){.fd = fd, .events = POLLIN};
            owner[n++] = i;
        }
    }
    if (n == 0 || poll(fds, (nfds_t)n, wait_ms) <= 0)
        return;
    for (int i = 0; i < n; i++) {
        if (fds[i].revents)
            col[owner[i]].c->on_readable(col[owner[i]].state);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CASEDIR [FAKE_NVML_LIB]\n", argv[0]);
        return 2;
    }
    log_set_level(LOG_ERROR);
    const char *casedir = argv[1];
    char expect[512];
    snprintf(expect, sizeof expect, "%s/expect", casedir);
    FILE *ef = fopen(expect, "r");
    if (!ef) {
        fprintf(stderr, "%s: %s\n", expect, strerror(errno));
        return 2;
    }
    char **lines = NULL;
    int *linenos = NULL;
    size_t nlines = 0, cap = 0, cap2 = 0;
    int lineno = 0;
    char line[512];
    double interval = 1;
    int nvml = 0, maxstep = 0;
    while (fgets(line, sizeof line, ef)) {
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        if (sscanf(line, "interval %lf", &interval) == 1)
            continue;
        if (strcmp(line, "nvml fake") == 0) {
            nvml = 1;
            continue;
        }
        lines = xgrow(lines, &cap, nlines + 1, sizeof *lines);
        linenos = xgrow(linenos, &cap2, nlines + 1, sizeof *linenos);
        linenos[nlines] = lineno;
        lines[nlines++] = xstrdup(line);
        int st = (int)strtol(line, NULL, 10);
        if (st > maxstep)
            maxstep = st;
    }
    fclose(ef);
    if (nvml && argc < 3) {
        fprintf(stderr, "%s wants the fake NVML library as second argument\n", casedir);
        return 2;
    }

    snprintf(root, sizeof root, "/tmp/sc_fixture_XXXXXX");
    if (!mkdtemp(root))
        return 2;
    int has_engine = apply_step(casedir, 0);
    char *proc = path_join(root, "proc"), *sys = path_join(root, "sys");
    char *cg = path_join(root, "cgroup"), *sock = path_join(root, "docker.sock");
    if (has_engine && engine_start(sock) < 0) {
        fprintf(stderr, "cannot start the stand-in engine at %s\n", sock);
        return 2;
    }
    struct agent_paths paths = {proc, sys, cg, sock, nvml ? argv[2] : ""};
    struct running col[16];
    size_t ncol = 0;
    for (size_t i = 0; collectors[i]; i++) {
        void *state;
        if (collectors[i]->create(&paths, &state) == 0)
            col[ncol++] = (struct running){collectors[i], state};
    }
    struct sampleset set;
    sampleset_init(&set);
    for (int step = 0; step <= maxstep; step++) {
        if (step > 0 && apply_step(casedir, step) == 1) {
            engine_event();
            pump(col, ncol, 1000);
        }
        pump(col, ncol, 0);
        struct tick t = {1700000000.0 + step * interval, 1000.0 + step * interval};
        sampleset_clear(&set);
        for (size_t i = 0; i < ncol; i++)
            col[i].c->collect(col[i].state, &t, &set);
        check_json(&set);
        for (size_t i = 0; i < nlines; i++)
            check_line(expect, linenos[i], lines[i], step, &set);
    }
    for (size_t i = 0; i < ncol; i++)
        col[i].c->destroy(col[i].state);
    sampleset_free(&set);
    for (size_t i = 0; i < nlines; i++)
        free(lines[i]);
    free(lines);
    free(linenos);
    if (engine_fd >= 0)
        close(engine_fd);
    rm_rf(root);
    free(proc);
    free(sys);
    free(cg);
    free(sock);
    return UNIT_DONE();
}
