/* Delivery tests: the real scalecast-agent binary pushing to a fault-injecting
 * sink run inside this test. The sink is a stand-in for scalecastd ONLY to
 * inject faults (5xx, slow answers, dropped connections, refusals) on
 * demand; the outage test (test_outage.c) runs against the real server.
 *
 * Usage: test_agent_delivery AGENT SCENARIO
 * Scenarios: normal server_errors slow dropped_connections refused too_large
 *            sigterm_flush restart kill9
 * Each checks that every collected sample arrives, in order, and that any
 * sample sent twice was sent byte-for-byte the same (the server's
 * (node, container, metric, ts) key then absorbs it). */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "unit.h"
#include "xalloc.h"

enum mode { M_OK, M_FAIL, M_SLOW, M_CLOSE, M_REJECT, M_TOO_LARGE };

struct rec {
    double ts;
    char *dump; /* the sample as first received, keys sorted */
    int count;
};

static struct {
    pthread_mutex_t mu;
    enum mode mode;
    struct rec *r;
    size_t n, cap;
    size_t requests, mismatches, out_of_order;
    double last_first_ts; /* ts of the newest first arrival */
    double reject_ts;     /* M_REJECT: the sample refused */
    char node[64];
} sink = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void set_mode(enum mode m)
{
    pthread_mutex_lock(&sink.mu);
    sink.mode = m;
    pthread_mutex_unlock(&sink.mu);
}

static size_t stored(void)
{
    pthread_mutex_lock(&sink.mu);
    size_t n = sink.n;
    pthread_mutex_unlock(&sink.mu);
    return n;
}

static void record(json_t *samples)
{
    size_t i;
    json_t *s;
    json_array_foreach(samples, i, s)
    {
        double ts = json_number_value(json_object_get(s, "ts"));
        char *dump = json_dumps(s, JSON_SORT_KEYS | JSON_COMPACT);
        size_t k;
        for (k = 0; k < sink.n && sink.r[k].ts != ts; k++)
            ;
        if (k < sink.n) {
            sink.r[k].count++;
            if (strcmp(sink.r[k].dump, dump) != 0)
                sink.mismatches++;
            free(dump);
            continue;
        }
        if (ts <= sink.last_first_ts)
            sink.out_of_order++;
        sink.last_first_ts = ts;
        sink.r = xgrow(sink.r, &sink.cap, sink.n + 1, sizeof *sink.r);
        sink.r[sink.n++] = (struct rec){ts, dump, 1};
    }
}

static void answer(int fd, int status, const char *body)
{
    char head[256];
    int n =
        snprintf(head, sizeof head,
                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                 status, strlen(body));
    if (send(fd, head, (size_t)n, MSG_NOSIGNAL) < 0 ||
        send(fd, body, strlen(body), MSG_NOSIGNAL) < 0)
        return;
}

/* Reads one request; returns its body (new string) or NULL at EOF. */
static char *read_request(int fd)
{
    struct buf b = BUF_INIT;
    char chunk[65536];
    char *body = NULL;
    for (;;) {
        char *end = b.p ? strstr(b.p, "\r\n\r\n") : NULL;
        if (end) {
            const char *cl = strcasestr(b.p, "Content-Length:");
            size_t len = cl ? strtoul(cl + 15, NULL, 10) : 0;
            size_t have = b.len - (size_t)(end + 4 - b.p);
            if (have >= len) {
                body = xstrndup(end + 4, len);
                break;
            }
        }
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0)
            break;
        buf_add(&b, chunk, (size_t)n);
    }
    buf_free(&b);
    return body;
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *body;
    while ((body = read_request(fd))) {
        json_error_t e;
        json_t *j = json_loads(body, 0, &e);
        free(body);
        json_t *samples = json_object_get(j, "samples");
        pthread_mutex_lock(&sink.mu);
        sink.requests++;
        snprintf(sink.node, sizeof sink.node, "%s",
                 json_string_value(json_object_get(j, "node")) ?: "");
        enum mode m = sink.mode;
        int status = 200;
        char msg[128] = "{\"accepted\": 0}";
        if (!json_is_array(samples)) {
            status = 400;
            snprintf(msg, sizeof msg, "{\"error\": \"samples: missing\"}");
        } else if (m == M_TOO_LARGE) {
            status = 413;
            snprintf(msg, sizeof msg, "{\"error\": \"body over the 1-byte limit\"}");
        } else if (m == M_FAIL) {
            status = 500;
            snprintf(msg, sizeof msg, "{\"error\": \"injected failure\"}");
        } else if (m == M_REJECT) {
            if (isnan(sink.reject_ts) && json_array_size(samples) >= 3)
                sink.reject_ts =
                    json_number_value(json_object_get(json_array_get(samples, 2), "ts"));
            size_t i;
            json_t *s;
            json_array_foreach(samples, i, s)
            {
                if (json_number_value(json_object_get(s, "ts")) == sink.reject_ts) {
                    status = 400;
                    snprintf(msg, sizeof msg,
                             "{\"error\": \"samples[%zu].metrics.cpu: injected refusal\"}", i);
                }
            }
            if (status == 200)
                record(samples);
        } else if (m != M_CLOSE) {
            record(samples);
        }
        pthread_mutex_unlock(&sink.mu);
        json_decref(j);
        if (m == M_CLOSE)
            break;
        if (m == M_TOO_LARGE) {
            answer(fd, status, msg); /* and close, as a server does after a 413 */
            break;
        }
        if (m == M_SLOW)
            harness_sleep(2.5); /* committed, but answered too late */
        answer(fd, status, msg);
    }
    close(fd);
    return NULL;
}

static void *accept_main(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t t;
        pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
    return NULL;
}

static int sink_start(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0)
        return -1;
    pthread_t t;
    pthread_create(&t, NULL, accept_main, (void *)(intptr_t)fd);
    pthread_detach(t);
    return 0;
}

static const char *agent_bin;
static char url[64], *spool, logpath[256];

static char nosock[300];

/* The agent, with a Docker socket path where no engine listens: it must say
 * so once and carry on with host metrics. */
static pid_t start_agent(void)
{
    char *argv[] = {(char *)agent_bin,
                    "--server",
                    url,
                    "--node",
                    "test-node",
                    "--interval",
                    "1",
                    "--timeout",
                    "1",
                    "--spool-dir",
                    spool,
                    "--docker-socket",
                    nosock,
                    "--nvml",
                    "",
                    "--flush-timeout",
                    "3",
                    NULL};
    return harness_spawn(argv, logpath);
}

/* Stops the agent with SIGTERM; checks it exits 0 within `within` s; returns
 * its statistics. */
static struct agent_stats stop_agent(pid_t pid, double within)
{
    kill(pid, SIGTERM);
    double t0 = harness_now();
    int rc = harness_wait(pid, within + 2);
    if (rc != 0) {
        fprintf(stderr, "agent exit status %d after SIGTERM\n", rc);
        if (rc < 0)
            harness_kill(pid);
    }
    CHECK(rc == 0);
    CHECK(harness_now() - t0 <= within + 1);
    struct agent_stats st = {0};
    CHECK(harness_agent_stats(logpath, &st) == 0);
    return st;
}

static int log_has(const char *text)
{
    char *log = harness_slurp(logpath);
    int yes = log && strstr(log, text);
    free(log);
    return yes;
}

/* What every scenario ends with: all of `expected` samples are there, they
 * first arrived in order, resends were identical, and (single run) one
 * second apart with no hole. */
static void verify(unsigned long long expected, int contiguous)
{
    pthread_mutex_lock(&sink.mu);
    fprintf(stderr, "sink: %zu requests, %zu distinct samples, expected %llu\n", sink.requests,
            sink.n, expected);
    CHECK(sink.n == expected);
    CHECK(sink.out_of_order == 0);
    CHECK(sink.mismatches == 0);
    CHECK_STR(sink.node, "test-node");
    for (size_t i = 1; contiguous && i < sink.n; i++) {
        double gap = sink.r[i].ts - sink.r[i - 1].ts;
        if (gap < 0.5 || gap > 1.5)
            fprintf(stderr, "gap of %.3f s before sample %zu\n", gap, i);
        CHECK(gap >= 0.5 && gap <= 1.5);
    }
    pthread_mutex_unlock(&sink.mu);
}

static void normal(void)
{
    pid_t pid = start_agent();
    harness_sleep(4.5);
    struct agent_stats st = stop_agent(pid, 3);
    CHECK(st.collected >= 3);
    CHECK(st.delivered == st.collected && st.left == 0);
    verify(st.collected, 1);
    pthread_mutex_lock(&sink.mu);
    for (size_t i = 0; i < sink.n; i++)
        CHECK(sink.r[i].count == 1); /* a healthy server gets nothing twice */
    pthread_mutex_unlock(&sink.mu);
    /* No engine: one line saying so, and no warning or error at all. */
    char *log = harness_slurp(logpath);
    int engine_lines = 0;
    for (const char *p = log; p && (p = strstr(p, "no Docker engine")); p++)
        engine_lines++;
    CHECK(engine_lines == 1);
    CHECK(log && !strstr(log, " WARN ") && !strstr(log, " ERROR "));
    free(log);
}

static void outage_then(enum mode m, double seconds, const char *logged)
{
    set_mode(m);
    pid_t pid = start_agent();
    harness_sleep(seconds);
    set_mode(M_OK);
    size_t before = stored();
    harness_sleep(5); /* backoff: at most 4 s after the 3rd failure */
    CHECK(stored() > before);
    struct agent_stats st = stop_agent(pid, 3);
    CHECK(st.left == 0);
    verify(st.collected, 1);
    CHECK(log_has(logged));
    CHECK(log_has("server is back"));
}

static void refused(void)
{
    set_mode(M_FAIL);
    pid_t pid = start_agent();
    harness_sleep(5.5); /* several samples pile up in the spool */
    set_mode(M_REJECT);
    harness_sleep(6);
    struct agent_stats st = stop_agent(pid, 3);
    CHECK(st.refused == 1);
    CHECK(st.left == 0);
    verify(st.collected - 1, 0);
    pthread_mutex_lock(&sink.mu);
    for (size_t i = 0; i < sink.n; i++)
        CHECK(sink.r[i].ts != sink.reject_ts);
    pthread_mutex_unlock(&sink.mu);
    CHECK(log_has("splitting it"));
    CHECK(log_has("samples[0].metrics.cpu: injected refusal"));
}

/* 413 for everything: every batch is split down to single samples, each
 * refused for good and dropped, and the agent neither stalls nor retries
 * them forever. */
static void too_large(void)
{
    set_mode(M_TOO_LARGE);
    pid_t pid = start_agent();
    harness_sleep(4.5);
    struct agent_stats st = stop_agent(pid, 3);
    CHECK(st.collected >= 3);
    CHECK(st.refused == st.collected);
    CHECK(st.left == 0);
    CHECK(stored() == 0);
    CHECK(log_has("413 {\"error\": \"body over the 1-byte limit\"}"));
}

static void sigterm_flush(void)
{
    set_mode(M_FAIL);
    pid_t pid = start_agent();
    harness_sleep(6.5); /* the agent now backs off for several seconds */
    set_mode(M_OK);
    struct agent_stats st = stop_agent(pid, 3); /* the flush must not wait for the backoff */
    CHECK(st.left == 0);
    CHECK(st.collected >= 5);
    verify(st.collected, 1);
}

static void restart(void)
{
    set_mode(M_FAIL);
    pid_t pid = start_agent();
    harness_sleep(3.5);
    struct agent_stats first = stop_agent(pid, 3);
    CHECK(first.left == first.collected && first.collected >= 2);
    CHECK(stored() == 0);
    set_mode(M_OK);
    pid = start_agent();
    harness_sleep(3.5);
    struct agent_stats second = stop_agent(pid, 3);
    CHECK(second.left == 0);
    verify(first.collected + second.collected, 0);
    CHECK(log_has("resuming with"));
}

/* Samples written to the spool by a process that was killed: count lines. */
static size_t spooled_lines(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cat %s/*.seg | grep -c '^{'", spool);
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    if (p && fscanf(p, "%zu", &n) != 1)
        n = 0;
    if (p)
        pclose(p);
    return n;
}

static void kill9(void)
{
    set_mode(M_FAIL);
    pid_t pid = start_agent();
    harness_sleep(3.5);
    harness_kill(pid);
    size_t lost_with_process = spooled_lines();
    CHECK(lost_with_process >= 2);
    set_mode(M_OK);
    pid = start_agent();
    harness_sleep(3.5);
    struct agent_stats second = stop_agent(pid, 3);
    CHECK(second.left == 0);
    verify(lost_with_process + second.collected, 0);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s AGENT SCENARIO\n", argv[0]);
        return 2;
    }
    agent_bin = argv[1];
    const char *scenario = argv[2];
    signal(SIGPIPE, SIG_IGN);
    sink.reject_ts = NAN;
    int port = harness_free_port();
    if (port < 0 || sink_start(port) < 0) {
        fprintf(stderr, "cannot start the sink\n");
        return 2;
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    spool = harness_tmpdir("delivery");
    snprintf(logpath, sizeof logpath, "%s.log", spool);
    snprintf(nosock, sizeof nosock, "%s/no-engine.sock", spool);
    if (strcmp(scenario, "normal") == 0)
        normal();
    else if (strcmp(scenario, "server_errors") == 0)
        outage_then(M_FAIL, 4, "server answered 500");
    else if (strcmp(scenario, "slow") == 0)
        outage_then(M_SLOW, 4, "no answer within 1.0 s");
    else if (strcmp(scenario, "dropped_connections") == 0)
        outage_then(M_CLOSE, 4, "connection closed mid-answer");
    else if (strcmp(scenario, "refused") == 0)
        refused();
    else if (strcmp(scenario, "too_large") == 0)
        too_large();
    else if (strcmp(scenario, "sigterm_flush") == 0)
        sigterm_flush();
    else if (strcmp(scenario, "restart") == 0)
        restart();
    else if (strcmp(scenario, "kill9") == 0)
        kill9();
    else {
        fprintf(stderr, "unknown scenario %s\n", scenario);
        return 2;
    }
    if (unit_failures || getenv("AGENT_TEST_VERBOSE")) {
        char *log = harness_slurp(logpath);
        fprintf(stderr, "---- agent log ----\n%s", log ? log : "(none)\n");
        free(log);
    }
    harness_rm_rf(spool);
    unlink(logpath);
    free(spool);
    return UNIT_DONE();
}
