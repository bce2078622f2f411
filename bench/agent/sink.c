/* A local HTTP sink for the agent benchmark: answers every POST with 200
 * {"accepted": N}, keeping connections alive, so collectd's write_http (and
 * the agent, when no scalecastd is at hand) has somewhere to push. It counts
 * requests and bytes and prints them at SIGTERM. Not a test double for any
 * assertion: the benchmark only measures the clients.
 *
 * Usage: sink PORT */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXC 64
#define BUFSZ (8 << 20)

static volatile sig_atomic_t stop;
static void on_term(int sig)
{
    stop = sig;
}

struct conn {
    int fd;
    char *buf;
    size_t len;
};

/* Answers every complete request in c->buf; returns -1 to close. */
static int serve(struct conn *c, unsigned long *requests)
{
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end)
            return c->len >= BUFSZ ? -1 : 0;
        size_t head = (size_t)(end + 4 - c->buf), body = 0;
        char *cl = strcasestr(c->buf, "Content-Length:");
        if (cl && cl < end)
            body = strtoul(cl + 15, NULL, 10);
        if (head + body > BUFSZ)
            return -1;
        if (c->len < head + body)
            return 0;
        unsigned long samples = 0;
        for (char *p = c->buf + head;
             (p = memmem(p, (size_t)(c->buf + head + body - p), "\"ts\"", 4)); p += 4)
            samples++;
        char answer[160];
        char json[64];
        int jl = snprintf(json, sizeof json, "{\"accepted\": %lu}", samples);
        int n = snprintf(answer, sizeof answer,
                         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Content-Length: %d\r\n\r\n%s",
                         jl, json);
        if (send(c->fd, answer, (size_t)n, MSG_NOSIGNAL) != n)
            return -1;
        (*requests)++;
        memmove(c->buf, c->buf + head + body, c->len - head - body);
        c->len -= head + body;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sink PORT\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((unsigned short)strtoul(argv[1], NULL, 10)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 64) < 0) {
        perror("sink: bind");
        return 1;
    }
    struct conn cs[MAXC];
    int n = 0;
    unsigned long requests = 0, bytes = 0;
    while (!stop) {
        struct pollfd p[MAXC + 1];
        p[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (int i = 0; i < n; i++)
            p[i + 1] = (struct pollfd){.fd = cs[i].fd, .events = POLLIN};
        if (poll(p, (nfds_t)n + 1, 1000) <= 0)
            continue;
        if (p[0].revents && n < MAXC) {
            int fd = accept(lfd, NULL, NULL);
            if (fd >= 0)
                cs[n++] = (struct conn){fd, malloc(BUFSZ), 0};
        }
        for (int i = n - 1; i >= 0; i--) {
            if (!p[i + 1].revents)
                continue;
            ssize_t r = recv(cs[i].fd, cs[i].buf + cs[i].len, BUFSZ - cs[i].len, 0);
            if (r > 0) {
                bytes += (unsigned long)r;
                cs[i].len += (size_t)r;
            }
            if (r <= 0 || serve(&cs[i], &requests) < 0) {
                close(cs[i].fd);
                free(cs[i].buf);
                cs[i] = cs[--n];
            }
        }
    }
    fprintf(stderr, "sink: %lu requests, %lu bytes\n", requests, bytes);
    return 0;
}
