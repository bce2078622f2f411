/* Process, file and HTTP helpers for the agent's integration tests. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "xalloc.h"

pid_t harness_spawn(char *const argv[], const char *logpath)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

double harness_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void harness_sleep(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int harness_wait(pid_t pid, double timeout)
{
    double end = harness_now() + timeout;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0)
            return -1;
        if (harness_now() >= end)
            return -1;
        harness_sleep(0.02);
    }
}

void harness_kill(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int harness_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

char *harness_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct buf b = BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    if (!b.p)
        buf_add(&b, "", 0);
    return b.p;
}

int harness_agent_stats(const char *logpath, struct agent_stats *out)
{
    char *log = harness_slurp(logpath);
    if (!log)
        return -1;
    const char *last = NULL;
    for (const char *p = log; (p = strstr(p, "stopped: ")); p++)
        last = p;
    int rc = -1;
    if (last && sscanf(last,
                       "stopped: %llu rounds, %llu samples collected, %llu delivered, %llu "
                       "refused by the server, %llu dropped by the spool limit, %llu left",
                       &out->rounds, &out->collected, &out->delivered, &out->refused, &out->dropped,
                       &out->left) == 6)
        rc = 0;
    free(log);
    return rc;
}

int harness_http_get(int port, const char *path, struct buf *body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    struct http_resp r;
    http_resp_init(&r, 256u << 20);
    int rc = 0;
    char chunk[65536];
    while (rc == 0) {
        ssize_t got = recv(fd, chunk, sizeof chunk, 0);
        if (got < 0) {
            rc = -1;
            break;
        }
        rc = got == 0 ? http_resp_eof(&r) : http_resp_feed(&r, chunk, (size_t)got);
    }
    close(fd);
    int status = rc == 1 ? r.status : -1;
    buf_reset(body);
    if (status > 0)
        buf_add(body, r.body.p ? r.body.p : "", r.body.len);
    http_resp_free(&r);
    return status;
}

char *harness_tmpdir(const char *tag)
{
    char tmpl[128];
    snprintf(tmpl, sizeof tmpl, "/tmp/sc_%s_XXXXXX", tag);
    if (!mkdtemp(tmpl))
        return NULL;
    return xstrdup(tmpl);
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

void harness_rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
