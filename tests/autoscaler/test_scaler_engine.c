/* The scaler (autoscaler/scaler.c) acting on a real Docker engine: a Swarm
 * service in enforce mode scales up from its stored samples and back down
 * after the stabilization window, replicas that are still starting are not
 * asked for twice, and a dry-run service beside it is never changed.
 * Samples are written to a real SQLite store by a feeder thread standing in
 * for the agents. Runs under tests/docker/harness.h, which cleans up. */
#include "harness.h"
#include "scaler.h"
#include "unit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define IMAGE "scalecast-busybox:test"

static double wall(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* Stands in for the agents: every 0.25 s, `containers` samples of `value`
 * for the service. */
struct feeder {
    struct store *st;
    char service[64];
    pthread_mutex_t lock;
    int containers;
    double value;
    int stop;
};

static void fed(void *arg, int status, const char *err)
{
    (void)arg;
    (void)err;
    CHECK(status == 0);
}

static void *feed(void *arg)
{
    struct feeder *f = arg;
    char names[8][96];
    for (int i = 0; i < 8; i++)
        snprintf(names[i], sizeof names[i], "%s.%d", f->service, i);
    for (;;) {
        pthread_mutex_lock(&f->lock);
        int n = f->containers, stop = f->stop;
        double v = f->value;
        pthread_mutex_unlock(&f->lock);
        if (stop)
            return NULL;
        struct store_sample s[8];
        double now = wall();
        for (int i = 0; i < n; i++)
            s[i] = (struct store_sample){"node-1", names[i], f->service, "cpu", now, v};
        store_submit(f->st, s, (size_t)n, fed, NULL);
        usleep(250000);
    }
}

static void feeder_set(struct feeder *f, int containers, double value)
{
    pthread_mutex_lock(&f->lock);
    f->containers = containers;
    f->value = value;
    pthread_mutex_unlock(&f->lock);
}

static int create_service(const char *name)
{
    return th_sh(NULL, 0,
                 "%s service create --detach --name %s --label %s=%s --container-label %s=%s "
                 "--stop-grace-period 1s --replicas 1 " IMAGE " sleep 100000 >/dev/null",
                 th_docker, name, TH_LABEL, th_run, TH_LABEL, th_run);
}

static int spec_replicas(const char *name)
{
    char out[32];
    if (th_sh(out, sizeof out, "%s service inspect -f '{{.Spec.Mode.Replicated.Replicas}}' %s",
              th_docker, name) != 0)
        return -1;
    return (int)th_number(out);
}

static int wait_replicas(const char *name, int want, double secs)
{
    int n = -1;
    for (double t = 0; t < secs; t += 0.25) {
        n = spec_replicas(name);
        if (n == want)
            break;
        usleep(250000);
    }
    return n;
}

struct count {
    int applied, dry_run, other;
    int max_target;
    char plan[512];
};

static void count_decision(void *arg, const struct store_decision *d)
{
    struct count *c = arg;
    if (d->target > c->max_target)
        c->max_target = d->target;
    if (strcmp(d->outcome, "applied") == 0)
        c->applied++;
    else if (strcmp(d->outcome, "dry-run") == 0) {
        c->dry_run++;
        json_t *in = json_loads(d->inputs, 0, NULL);
        const char *plan = json_string_value(json_object_get(in, "plan"));
        snprintf(c->plan, sizeof c->plan, "%s", plan ? plan : "");
        json_decref(in);
    } else
        c->other++;
}

static struct count count_decisions(struct store *st, const char *service)
{
    struct count c = {0};
    struct store_reader *r;
    CHECK(store_reader_open(st, &r) == 0);
    CHECK(store_each_decision(r, service, 0, INFINITY, 0, count_decision, &c) >= 0);
    store_reader_close(r);
    return c;
}

static void test_swarm_up_and_down(void)
{
    char web[64], dry[64], dbdir[] = "/tmp/sc_scaler_engine_XXXXXX", path[128], err[512];
    snprintf(web, sizeof web, "%s-web", th_run);
    snprintf(dry, sizeof dry, "%s-dry", th_run);
    CHECK(create_service(web) == 0 && create_service(dry) == 0);
    CHECK(mkdtemp(dbdir) != NULL);
    snprintf(path, sizeof path, "%s/db", dbdir);
    struct store_opts so = {.path = path};
    struct store *st = NULL;
    CHECK(store_open(&so, &st, err, sizeof err) == 0);

    char conf[1024], cpath[160];
    snprintf(cpath, sizeof cpath, "%s/scalecast.conf", dbdir);
    snprintf(conf, sizeof conf,
             "[autoscaler]\ntick = 0.5\n"
             "[service %s]\ntarget = swarm:%s\nmax_replicas = 5\nforecast = off\n"
             "window = 2s\nstale_after = 2s\nscale_down_stabilization = 3s\n"
             "[service %s]\ntarget = swarm:%s\nmode = dry-run\nmax_replicas = 5\n"
             "forecast = off\nsource = service:%s\nwindow = 2s\nstale_after = 2s\n",
             web, web, dry, dry, web);
    FILE *fp = fopen(cpath, "w");
    fputs(conf, fp);
    fclose(fp);
    struct config c;
    config_defaults(&c);
    CHECK(config_load(&c, cpath, err, sizeof err) == 0);

    /* One replica reporting 170%: ceil(1 x 170 / 80) = 3. */
    struct feeder f = {.st = st};
    snprintf(f.service, sizeof f.service, "%s", web);
    pthread_mutex_init(&f.lock, NULL);
    feeder_set(&f, 1, 170);
    pthread_t ft;
    pthread_create(&ft, NULL, feed, &f);
    usleep(600000);
    struct scaler *sc = NULL;
    CHECK(scaler_start(&c, st, &sc, err, sizeof err) == 0);
    CHECK(wait_replicas(web, 3, 20) == 3);
    /* The two new replicas do not report yet: still 3, not 9. */
    sleep(2);
    CHECK(spec_replicas(web) == 3);

    /* Three replicas at 10%: ceil(3 x 10 / 80) = 1 after the window. */
    feeder_set(&f, 3, 10);
    CHECK(wait_replicas(web, 1, 20) == 1);
    CHECK(spec_replicas(dry) == 1); /* dry-run: decided, never done */

    json_t *all = scaler_services_json(sc);
    char *text = json_dumps(all, JSON_COMPACT);
    fprintf(stderr, "  %s\n", text);
    free(text);
    json_decref(all);
    scaler_stop(sc);
    pthread_mutex_lock(&f.lock);
    f.stop = 1;
    pthread_mutex_unlock(&f.lock);
    pthread_join(ft, NULL);
    store_sync(st);

    struct count w = count_decisions(st, web), d = count_decisions(st, dry);
    /* 1 -> 3, then down to 1 (possibly in steps: the stabilization window
     * keeps the highest recommendation of its last 3 s). Never above 3. */
    CHECK(w.applied >= 2);
    CHECK(w.max_target == 3);
    CHECK(d.applied == 0 && d.dry_run >= 1);
    CHECK(strstr(d.plan, "3") != NULL);
    fprintf(stderr, "  dry-run plan: %s\n", d.plan);
    config_free(&c);
    store_close(st);
    char rm[200];
    snprintf(rm, sizeof rm, "rm -rf %s", dbdir);
    CHECK(system(rm) == 0);
}

static int case_swarm(void)
{
    log_set_level(LOG_WARN);
    RUN(test_swarm_up_and_down);
    return UNIT_DONE();
}

int main(int argc, char **argv)
{
    static const struct th_case cases[] = {
        {"swarm", case_swarm, TH_SWARM},
    };
    return th_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
