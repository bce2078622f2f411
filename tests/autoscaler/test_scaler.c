/* Tests of the server's scaler (autoscaler/scaler.c) on a real SQLite store:
 * advisory decisions from stored samples, stale data, bad policies, an
 * engine that is down, and an engine that never answers (which must stall
 * neither the other services nor ingestion). Scaling a real engine is
 * covered by the actuation tests (test_actuate.c). */
#include "scaler.h"
#include "unit.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/sc_scaler_XXXXXX";

static double wall(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec t = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    nanosleep(&t, NULL);
}

static struct store *open_store(const char *name)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    struct store_opts o = {.path = path, .sync_full = false, .retention = 0};
    struct store *st = NULL;
    if (store_open(&o, &st, err, sizeof err) < 0)
        fprintf(stderr, "store_open: %s\n", err);
    return st;
}

static void done(void *arg, int status, const char *err)
{
    (void)err;
    *(int *)arg = status;
}

/* n containers of `service` at `value` every 5 s over [t0, t1]. */
static void submit(struct store *st, const char *service, int n, double t0, double t1, double value)
{
    struct store_sample s[512];
    char names[16][32];
    size_t k = 0;
    for (int c = 0; c < n && c < 16; c++) {
        snprintf(names[c], sizeof names[c], "%s-%d", service, c);
        for (double t = t0; t <= t1 && k < 512; t += 5)
            s[k++] = (struct store_sample){"node-1", names[c], service, "cpu", t, value};
    }
    int status = 1;
    store_submit(st, s, k, done, &status);
    store_sync(st);
    CHECK(status == 0);
}

static int load_config(const char *text, struct config *c)
{
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/scalecast.conf", dir);
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    config_defaults(c);
    int rc = config_load(c, path, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "config: %s\n", err);
    return rc;
}

/* The status object of one service (new reference), or NULL. */
static json_t *status_of(struct scaler *sc, const char *name)
{
    json_t *all = scaler_services_json(sc), *found = NULL, *o;
    size_t i;
    json_array_foreach(all, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "service")), name) == 0)
            found = json_incref(o);
    }
    json_decref(all);
    return found;
}

/* Waits up to `secs` for the service's first decision; returns its status. */
static json_t *wait_decision(struct scaler *sc, const char *name, double secs)
{
    for (double t = 0; t < secs; t += 0.05) {
        json_t *o = status_of(sc, name);
        if (o && !json_is_null(json_object_get(o, "last_decision")))
            return o;
        json_decref(o);
        sleep_s(0.05);
    }
    return status_of(sc, name);
}

static const char *decision_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(json_object_get(o, "last_decision"), key));
}

struct found {
    int n;
    char outcome[32], reason[1024], error[512], inputs[4096];
};

static void on_decision(void *arg, const struct store_decision *d)
{
    struct found *f = arg;
    if (f->n++ > 0)
        return; /* keep the newest */
    snprintf(f->outcome, sizeof f->outcome, "%s", d->outcome ? d->outcome : "");
    snprintf(f->reason, sizeof f->reason, "%s", d->reason ? d->reason : "");
    snprintf(f->error, sizeof f->error, "%s", d->error ? d->error : "");
    snprintf(f->inputs, sizeof f->inputs, "%s", d->inputs ? d->inputs : "");
}

static struct found decisions(struct store *st, const char *service)
{
    struct found f = {0};
    struct store_reader *r;
    CHECK(store_reader_open(st, &r) == 0);
    CHECK(store_each_decision(r, service, 0, INFINITY, 100, on_decision, &f) >= 0);
    store_reader_close(r);
    return f;
}

static void test_advisory(void)
{
    struct store *st = open_store("advisory");
    double now = wall();
    submit(st, "web", 3, now - 55, now, 160);
    struct config c;
    CHECK(load_config("[autoscaler]\ntick = 0.2\n"
                      "[service web]\ntarget = none\nmax_replicas = 10\nforecast = off\n",
                      &c) == 0);
    struct scaler *sc;
    char err[512];
    CHECK(scaler_start(&c, st, &sc, err, sizeof err) == 0);
    json_t *o = wait_decision(sc, "web", 5);
    CHECK(o != NULL);
    if (o) {
        CHECK(json_integer_value(json_object_get(o, "current_replicas")) == 3);
        CHECK(json_integer_value(json_object_get(o, "desired_replicas")) == 6);
        CHECK_NEAR(json_number_value(json_object_get(o, "metric_value")), 160, 1e-9);
        CHECK_STR(json_string_value(json_object_get(o, "mode")), "advisory");
        CHECK_STR(json_string_value(json_object_get(o, "target")), "none");
        CHECK_STR(decision_str(o, "action"), "scale_up");
        CHECK_STR(decision_str(o, "outcome"), "advisory");
        CHECK(json_is_null(json_object_get(o, "last_error")));
    }
    json_decref(o);
    sleep_s(0.5); /* a few more ticks: identical advice is not recorded again */
    scaler_stop(sc);
    struct found f = decisions(st, "web");
    CHECK(f.n == 1);
    CHECK_STR(f.outcome, "advisory");
    CHECK(strstr(f.reason, "cpu avg 160% over 3 of 3 replicas; target 80% -> 6; 3 -> 6") != NULL);
    json_t *in = json_loads(f.inputs, 0, NULL);
    CHECK(in && json_integer_value(json_object_get(in, "rule_target")) == 6);
    json_decref(in);
    config_free(&c);
    store_close(st);
}

static void test_stale(void)
{
    struct store *st = open_store("stale");
    double now = wall();
    submit(st, "api", 2, now - 200, now - 190, 10);
    struct config c;
    CHECK(load_config("[autoscaler]\ntick = 0.2\n"
                      "[service api]\ntarget = none\nmax_replicas = 10\nforecast = off\n"
                      "window = 5m\n",
                      &c) == 0);
    struct scaler *sc;
    char err[512];
    CHECK(scaler_start(&c, st, &sc, err, sizeof err) == 0);
    json_t *o = wait_decision(sc, "api", 5);
    CHECK_STR(decision_str(o, "action"), "hold");
    CHECK(strstr(decision_str(o, "reason"), "cpu samples stale: newest 19") != NULL);
    json_decref(o);
    scaler_stop(sc);
    config_free(&c);
    store_close(st);
}

static void test_bad_policy(void)
{
    struct store *st = open_store("bad");
    struct config c;
    CHECK(load_config("[service web]\ntarget = swarm:web\nmax_replicas = 4\nwindow = 1 minute\n",
                      &c) == 0);
    struct scaler *sc = (struct scaler *)1;
    char err[512] = "";
    CHECK(scaler_start(&c, st, &sc, err, sizeof err) == -1);
    CHECK(sc == NULL);
    CHECK(strstr(err, "scalecast.conf:4: [service web] window: '1 minute'") != NULL);
    config_free(&c);
    store_close(st);
}

static void test_engine_down(void)
{
    struct store *st = open_store("down");
    double now = wall();
    submit(st, "api", 2, now - 30, now, 50);
    char text[512];
    snprintf(text, sizeof text,
             "[autoscaler]\ntick = 0.2\ndocker_host = unix://%s/no-engine.sock\n"
             "[service api]\ntarget = swarm:api\nmax_replicas = 4\nforecast = off\n",
             dir);
    struct config c;
    CHECK(load_config(text, &c) == 0);
    struct scaler *sc;
    char err[512];
    CHECK(scaler_start(&c, st, &sc, err, sizeof err) == 0);
    json_t *o = wait_decision(sc, "api", 5);
    CHECK_STR(decision_str(o, "outcome"), "failed");
    const char *e = json_string_value(json_object_get(o, "last_error"));
    CHECK(e && strstr(e, "/version") != NULL);
    CHECK(json_is_null(json_object_get(o, "current_replicas"))); /* not known */
    json_decref(o);
    scaler_stop(sc);
    struct found f = decisions(st, "api");
    CHECK(f.n >= 1);
    CHECK_STR(f.outcome, "failed");
    CHECK(strstr(f.reason, "cannot count the replicas") != NULL);
    CHECK(f.error[0] != '\0');
    config_free(&c);
    store_close(st);
}

/* An engine that accepts connections and never answers. */
static int silent_engine(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void test_slow_engine_isolated(void)
{
    struct store *st = open_store("slow");
    double now = wall();
    submit(st, "web", 2, now - 30, now, 50);
    submit(st, "api", 2, now - 30, now, 50);
    char sock[256], text[1024];
    snprintf(sock, sizeof sock, "%s/silent.sock", dir);
    int fd = silent_engine(sock);
    CHECK(fd >= 0);
    snprintf(text, sizeof text,
             "[autoscaler]\ntick = 0.2\ndocker_host = unix://%s\ndocker_timeout = 2\n"
             "[service api]\ntarget = swarm:api\nmax_replicas = 4\nforecast = off\n"
             "[service web]\ntarget = none\nmax_replicas = 4\nforecast = off\n",
             sock);
    struct config c;
    CHECK(load_config(text, &c) == 0);
    struct scaler *sc;
    char err[512];
    CHECK(scaler_start(&c, st, &sc, err, sizeof err) == 0);
    /* While api's worker waits on the engine, web keeps its tick... */
    double first = -1, last = -1;
    int seen = 0;
    for (int i = 0; i < 25; i++) {
        json_t *o = status_of(sc, "web");
        json_t *ld = json_object_get(o, "last_decision");
        double ts = json_is_null(ld) ? -1 : json_number_value(json_object_get(ld, "ts"));
        if (ts > last) {
            seen++;
            last = ts;
            if (first < 0)
                first = ts;
        }
        json_decref(o);
        sleep_s(0.05);
    }
    CHECK(seen >= 4); /* ticks every 0.2 s over 1.25 s */
    json_t *api = status_of(sc, "api");
    CHECK(json_is_null(json_object_get(api, "last_decision")));
    json_decref(api);
    /* ...and ingestion commits as usual. */
    double t0 = wall();
    submit(st, "web", 2, now + 1, now + 5, 50);
    CHECK(wall() - t0 < 1.0);
    /* After docker_timeout the stuck call fails and is recorded. */
    api = wait_decision(sc, "api", 5);
    CHECK_STR(decision_str(api, "outcome"), "failed");
    const char *e = json_string_value(json_object_get(api, "last_error"));
    CHECK(e != NULL);
    if (e)
        fprintf(stderr, "  engine error: %s\n", e);
    json_decref(api);
    t0 = wall();
    scaler_stop(sc);
    CHECK(wall() - t0 < 3.0); /* at most one docker_timeout */
    close(fd);
    unlink(sock);
    config_free(&c);
    store_close(st);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    log_set_level(LOG_WARN);
    RUN(test_advisory);
    RUN(test_stale);
    RUN(test_bad_policy);
    RUN(test_engine_down);
    RUN(test_slow_engine_isolated);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return UNIT_DONE();
}
