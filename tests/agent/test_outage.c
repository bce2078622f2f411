/* The outage test, against the real scalecastd: the agent collects every
 * second; the server is stopped for 30 s and started again on the same
 * database; afterwards every sample of the whole run, the outage included,
 * is stored exactly once with the timestamp it was collected at.
 *
 * Usage: test_agent_outage AGENT SCALECASTD */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "unit.h"

#define OUTAGE 30.0

static const char *server_bin, *agent_bin;
static char *dir, dbpath[256], listen_addr[64], serverlog[256], agentlog[256];
static int port;

static pid_t start_server(void)
{
    char *argv[] = {(char *)server_bin, "--listen", listen_addr, "--db", dbpath, NULL};
    pid_t pid = harness_spawn(argv, serverlog);
    struct buf body = BUF_INIT;
    double end = harness_now() + 15;
    while (harness_http_get(port, "/healthz", &body) != 200 && harness_now() < end)
        harness_sleep(0.1);
    CHECK(harness_http_get(port, "/healthz", &body) == 200);
    buf_free(&body);
    return pid;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The stored points of one host metric; returns a new JSON array. */
static json_t *points(const char *metric)
{
    char path[256];
    snprintf(path, sizeof path, "/api/v1/series?node=outage-node&metric=%s", metric);
    struct buf body = BUF_INIT;
    int status = harness_http_get(port, path, &body);
    json_t *arr = NULL;
    if (status == 200) {
        json_error_t e;
        json_t *j = json_loads(body.p, 0, &e);
        arr = json_incref(json_object_get(j, "points"));
        json_decref(j);
    }
    buf_free(&body);
    return json_is_array(arr) ? arr : (json_decref(arr), json_array());
}

static double newest_ts(void)
{
    json_t *p = points("cpu");
    size_t n = json_array_size(p);
    double ts = n ? json_number_value(json_array_get(json_array_get(p, n - 1), 0)) : 0;
    json_decref(p);
    return ts;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s AGENT SCALECASTD\n", argv[0]);
        return 2;
    }
    agent_bin = argv[1];
    server_bin = argv[2];
    dir = harness_tmpdir("outage");
    port = harness_free_port();
    snprintf(dbpath, sizeof dbpath, "%s/scalecast.db", dir);
    snprintf(listen_addr, sizeof listen_addr, "127.0.0.1:%d", port);
    snprintf(serverlog, sizeof serverlog, "%s/server.log", dir);
    snprintf(agentlog, sizeof agentlog, "%s/agent.log", dir);
    char url[64], spool[256];
    snprintf(url, sizeof url, "http://%s", listen_addr);
    snprintf(spool, sizeof spool, "%s/spool", dir);

    pid_t server = start_server();
    char *aargv[] = {(char *)agent_bin,
                     "--server",
                     url,
                     "--node",
                     "outage-node",
                     "--interval",
                     "1",
                     "--timeout",
                     "2",
                     "--spool-dir",
                     spool,
                     "--docker-socket",
                     "",
                     "--nvml",
                     "",
                     NULL};
    pid_t agent = harness_spawn(aargv, agentlog);
    harness_sleep(5.5);
    json_t *before = points("cpu");
    CHECK(json_array_size(before) >= 3);
    json_decref(before);

    fprintf(stderr, "stopping scalecastd for %.0f s\n", OUTAGE);
    double down_at = wall();
    kill(server, SIGTERM);
    CHECK(harness_wait(server, 15) == 0);
    harness_sleep(OUTAGE);
    double up_at = wall();
    server = start_server();
    fprintf(stderr, "scalecastd is back; waiting for the agent to catch up\n");
    /* Delivery is in order: once a sample collected after the restart is
     * stored, everything before it is too. The backoff is at most 30 s. */
    double end = harness_now() + 60;
    while (newest_ts() < up_at + 1 && harness_now() < end)
        harness_sleep(0.5);
    harness_sleep(1.5);
    kill(agent, SIGTERM);
    CHECK(harness_wait(agent, 10) == 0);
    struct agent_stats st = {0};
    CHECK(harness_agent_stats(agentlog, &st) == 0);
    CHECK(st.left == 0 && st.dropped == 0 && st.refused == 0);
    fprintf(stderr, "agent: %llu rounds, %llu samples collected, %llu delivered\n", st.rounds,
            st.collected, st.delivered);

    const char *metrics[] = {"cpu", "mem", "load1", "net_rx_bps", "disk_write_bps"};
    for (size_t m = 0; m < sizeof metrics / sizeof metrics[0]; m++) {
        json_t *p = points(metrics[m]);
        size_t n = json_array_size(p), during = 0;
        fprintf(stderr, "%s: %zu points stored\n", metrics[m], n);
        /* Exactly once: one point per collected round, no two at one ts. */
        CHECK(n == st.collected);
        for (size_t i = 0; i < n; i++) {
            double ts = json_number_value(json_array_get(json_array_get(p, i), 0));
            if (ts > down_at && ts < up_at)
                during++;
            if (i == 0)
                continue;
            double gap = ts - json_number_value(json_array_get(json_array_get(p, i - 1), 0));
            /* Original timestamps: one second apart straight through the outage,
             * not bunched at the moment of delivery. */
            if (gap < 0.5 || gap > 1.5)
                fprintf(stderr, "%s: gap of %.3f s before point %zu\n", metrics[m], gap, i);
            CHECK(gap >= 0.5 && gap <= 1.5);
        }
        fprintf(stderr, "%s: %zu points from the outage\n", metrics[m], during);
        CHECK(during >= OUTAGE - 2);
        json_decref(p);
    }
    kill(server, SIGTERM);
    CHECK(harness_wait(server, 15) == 0);
    if (unit_failures) {
        char *log = harness_slurp(agentlog);
        fprintf(stderr, "---- agent log ----\n%s", log ? log : "");
        free(log);
        log = harness_slurp(serverlog);
        fprintf(stderr, "---- server log ----\n%s", log ? log : "");
        free(log);
    }
    harness_rm_rf(dir);
    free(dir);
    return UNIT_DONE();
}
