/* Tests of acting on a real Docker engine (autoscaler/actuate.c).
 *
 *   containers        labelled plain containers scaled up (clones keep the
 *                     replica's config) and down (newest first); containers
 *                     the target does not select are never touched
 *   swarm             a Swarm service scaled up and down; its spec survives
 *   swarm_concurrent  a manual `docker service scale` between our inspect and
 *                     our update, and a stream of them alongside, do not make
 *                     scaling fail (retry on "update out of sequence")
 *   dry_run           plans, and sends nothing that changes state
 *   engine_restart    a private engine stopped and restarted (also in the
 *                     middle of a scale-up): errors carry the reason while it
 *                     is down, scaling works after, never past the count
 *
 * The docker CLI sets up and checks (an independent client); the library
 * does the acting. */
#include "actuate.h"
#include "docker.h"
#include "harness.h"
#include "unit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define IMAGE "scalecast-busybox:test"

static struct docker *engine(void)
{
    const char *host = th_private_host[0] ? th_private_host : getenv("DOCKER_HOST");
    struct docker_opts o = {.host = host, .timeout = 10};
    struct docker *d = NULL;
    char err[DOCKER_ERR_MAX];
    if (docker_open(&o, &d, err, sizeof err) < 0) {
        fprintf(stderr, "docker_open: %s\n", err);
        exit(1);
    }
    return d;
}

static void containers_target(struct policy_target *t, const char *suffix)
{
    memset(t, 0, sizeof *t);
    t->kind = POLICY_TARGET_CONTAINERS;
    snprintf(t->label, sizeof t->label, "sc.app");
    snprintf(t->value, sizeof t->value, "%s-%s", th_run, suffix);
}

static void swarm_target(struct policy_target *t, const char *suffix)
{
    memset(t, 0, sizeof *t);
    t->kind = POLICY_TARGET_SWARM;
    snprintf(t->service, sizeof t->service, "%s-%s", th_run, suffix);
}

static unsigned long writes(struct docker *d)
{
    struct docker_counters c;
    docker_get_counters(d, &c);
    return c.writes;
}

/* Runs a container with the run's label; extra flags before the image.
 * Returns its ID in id (64 hex). */
static int run_container(char *id, size_t len, const char *flags)
{
    return th_sh(id, len, "%s run -d --init --label %s=%s %s " IMAGE " sleep 100000", th_docker,
                 TH_LABEL, th_run, flags);
}

static int count(const char *fmt, const char *value)
{
    char cmd[512], out[64];
    snprintf(cmd, sizeof cmd, fmt, value);
    if (th_sh(out, sizeof out, "%s %s | wc -l", th_docker, cmd) != 0)
        return -1;
    return (int)th_number(out);
}

/* Running containers carrying sc.app=value. */
static int running(const char *value)
{
    return count("ps -q --filter label=sc.app=%s", value);
}

/* Containers in any state carrying sc.app=value. */
static int all(const char *value)
{
    return count("ps -aq --filter label=sc.app=%s", value);
}

static int state_is(const char *id, const char *state)
{
    char out[64];
    return th_sh(out, sizeof out, "%s inspect -f '{{.State.Status}}' %s", th_docker, id) == 0 &&
           strcmp(out, state) == 0;
}

/* ---- plain containers --------------------------------------------------- */

/* A host port nobody uses, so that the seed can bind it. */
static int free_port(void)
{
    char out[32];
    th_sh(out, sizeof out,
          "for p in $(seq %d 45000); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || "
          "{ echo $p; break; }; done",
          20000 + (int)(getpid() % 20000));
    return (int)th_number(out);
}

static void check_clone(const char *clone, const char *seed, const char *seed_hostname)
{
    char out[2048], want[128];
    CHECK(th_sh(out, sizeof out,
                "%s inspect -f '{{json .Config.Env}}|{{json .Config.Entrypoint}}|"
                "{{json .Config.Cmd}}|{{index .Config.Labels \"io.scalecast.clone-of\"}}|"
                "{{.HostConfig.NanoCpus}}|{{.HostConfig.Memory}}|"
                "{{.HostConfig.RestartPolicy.Name}}|{{.HostConfig.Init}}|"
                "{{json .HostConfig.PortBindings}}|{{.Name}}|{{.Config.Hostname}}|"
                "{{len .NetworkSettings.Networks}}|"
                "{{json (index .NetworkSettings.Networks \"%s-net\").Aliases}}|"
                "{{.State.Status}}|{{index .Config.Labels \"%s\"}}' %s",
                th_docker, th_run, TH_LABEL, clone) == 0);
    fprintf(stderr, "  clone %.12s: %s\n", clone, out);
    CHECK(strstr(out, "\"FOO=bar\""));
    CHECK(strstr(out, "|[\"sh\"]|[\"-c\",\"sleep 100000\"]|"));
    snprintf(want, sizeof want, "|%.12s|500000000|67108864|unless-stopped|true|", seed);
    CHECK(strstr(out, want));
    CHECK(strstr(out, "\"80/tcp\""));  /* the ephemeral host port stays */
    CHECK(!strstr(out, "\"81/tcp\"")); /* the fixed one does not */
    snprintf(want, sizeof want, "|/%s-seed|", th_run);
    CHECK(!strstr(out, want)); /* a name of its own */
    /* A hostname of its own (the engine's default, its short ID), not the
     * seed's; both networks. */
    CHECK(strcmp(seed_hostname, "") != 0);
    snprintf(want, sizeof want, "|%.12s|2|", clone);
    CHECK(strstr(out, want));
    snprintf(want, sizeof want, "\"web-%s\"", th_run);
    CHECK(strstr(out, want)); /* the network alias */
    snprintf(want, sizeof want, "\"%.12s\"", seed);
    CHECK(!strstr(out, want)); /* but not the seed's own ID as an alias */
    snprintf(want, sizeof want, "|running|%s", th_run);
    CHECK(strstr(out, want));
}

static void test_containers_scale(void)
{
    char seed[128], plain[128], other[128], flags[1024], err[DOCKER_ERR_MAX], ids[1024];
    char hostname[64], value[128];
    struct actuate_result res;
    struct policy_target t;
    struct docker *d = engine();
    int n = -1;

    containers_target(&t, "web");
    snprintf(value, sizeof value, "%s-web", th_run);
    CHECK(th_sh(NULL, 0,
                "%s network create --label %s=%s %s-net >/dev/null && "
                "%s network create --label %s=%s %s-net2 >/dev/null",
                th_docker, TH_LABEL, th_run, th_run, th_docker, TH_LABEL, th_run, th_run) == 0);
    int port = free_port();
    snprintf(flags, sizeof flags,
             "--name %s-seed --label sc.app=%s --env FOO=bar --restart unless-stopped "
             "--cpus 0.5 --memory 64m --network %s-net --network-alias web-%s "
             "-p 127.0.0.1:0:80 -p 127.0.0.1:%d:81 --entrypoint sh",
             th_run, value, th_run, th_run, port);
    CHECK(th_sh(seed, sizeof seed, "%s run -d --init --label %s=%s %s " IMAGE " -c 'sleep 100000'",
                th_docker, TH_LABEL, th_run, flags) == 0);
    CHECK(th_sh(NULL, 0, "%s network connect %s-net2 %s", th_docker, th_run, seed) == 0);
    CHECK(th_sh(hostname, sizeof hostname, "%s inspect -f '{{.Config.Hostname}}' %s", th_docker,
                seed) == 0);
    /* Bystanders: no sc.app label at all, and another sc.app value. */
    snprintf(flags, sizeof flags, "--name %s-plain", th_run);
    CHECK(run_container(plain, sizeof plain, flags) == 0);
    snprintf(flags, sizeof flags, "--name %s-other --label sc.app=%s-other", th_run, th_run);
    CHECK(run_container(other, sizeof other, flags) == 0);

    CHECK(actuate_replicas(d, &t, &n, err, sizeof err) == 0);
    CHECK(n == 1);

    CHECK(actuate_scale(d, &t, 3, NULL, &res, err, sizeof err) == 0);
    CHECK(res.before == 1 && res.after == 3);
    fprintf(stderr, "  %s\n", res.detail);
    CHECK(running(value) == 3);
    CHECK(th_sh(ids, sizeof ids,
                "%s ps -q --no-trunc --filter label=sc.app=%s --filter "
                "label=io.scalecast.clone-of",
                th_docker, value) == 0);
    CHECK(th_lines(ids) == 2);
    for (char *save = NULL, *id = strtok_r(ids, "\n", &save); id; id = strtok_r(NULL, "\n", &save))
        check_clone(id, seed, hostname);

    /* Asking for what is already there sends nothing that changes state. */
    unsigned long w = writes(d);
    CHECK(actuate_scale(d, &t, 3, NULL, &res, err, sizeof err) == 0);
    CHECK(writes(d) == w);
    CHECK(strstr(res.detail, "already has 3 replicas"));

    /* Down: the newest go, the seed (the oldest) stays. */
    CHECK(actuate_scale(d, &t, 1, NULL, &res, err, sizeof err) == 0);
    CHECK(res.before == 3 && res.after == 1);
    CHECK(all(value) == 1);
    CHECK(state_is(seed, "running"));

    /* Never touched. */
    CHECK(state_is(plain, "running"));
    CHECK(state_is(other, "running"));
    snprintf(flags, sizeof flags, "%s-other", th_run);
    CHECK(all(flags) == 1);
    docker_close(d);
}

/* From zero running: the newest stopped one is the model. Clones that were
 * created but never started are started before new ones are made. */
static void test_containers_from_stopped(void)
{
    char seed[128], left[128], flags[512], err[DOCKER_ERR_MAX], value[128];
    struct actuate_result res;
    struct policy_target t;
    struct docker *d = engine();
    int n = -1;

    containers_target(&t, "web2");
    snprintf(value, sizeof value, "%s-web2", th_run);
    snprintf(flags, sizeof flags, "--label sc.app=%s", value);
    CHECK(run_container(seed, sizeof seed, flags) == 0);
    CHECK(th_sh(NULL, 0, "%s stop -t 1 %s >/dev/null", th_docker, seed) == 0);
    CHECK(actuate_replicas(d, &t, &n, err, sizeof err) == 0);
    CHECK(n == 0);

    CHECK(actuate_scale(d, &t, 2, NULL, &res, err, sizeof err) == 0);
    CHECK(res.before == 0 && res.after == 2);
    CHECK(running(value) == 2);
    CHECK(state_is(seed, "exited"));

    CHECK(th_sh(left, sizeof left,
                "%s create --init --label %s=%s --label sc.app=%s --label "
                "io.scalecast.clone-of=0123456789ab " IMAGE " sleep 100000",
                th_docker, TH_LABEL, th_run, value) == 0);
    CHECK(actuate_scale(d, &t, 3, NULL, &res, err, sizeof err) == 0);
    fprintf(stderr, "  %s\n", res.detail);
    CHECK(strstr(res.detail, "started"));
    CHECK(state_is(left, "running"));
    CHECK(all(value) == 4); /* seed (exited) + 2 clones + the started leftover */

    CHECK(actuate_scale(d, &t, 0, NULL, &res, err, sizeof err) == 0);
    CHECK(res.before == 3 && res.after == 0);
    CHECK(all(value) == 1);
    CHECK(state_is(seed, "exited")); /* not a replica: left as it was */
    docker_close(d);
}

/* Legacy links on the default bridge: the clone reaches the linked
 * container under the same alias. */
static void test_containers_links(void)
{
    char db[128], seed[128], flags[512], err[DOCKER_ERR_MAX], value[128], out[512];
    struct actuate_result res;
    struct policy_target t;
    struct docker *d = engine();

    containers_target(&t, "linked");
    snprintf(value, sizeof value, "%s-linked", th_run);
    snprintf(flags, sizeof flags, "--name %s-db", th_run);
    CHECK(run_container(db, sizeof db, flags) == 0);
    snprintf(flags, sizeof flags, "--label sc.app=%s --link %s-db:db", value, th_run);
    CHECK(run_container(seed, sizeof seed, flags) == 0);
    CHECK(actuate_scale(d, &t, 2, NULL, &res, err, sizeof err) == 0);
    CHECK(running(value) == 2);
    CHECK(
        th_sh(
            out, sizeof out,
            "%s ps -q --filter label=sc.app=%s --filter label=io.scalecast.clone-of | "
            "xargs -r -I{} %s exec {} cat /etc/hosts | grep -c '[[:space:]]db[[:space:]]' || true",
            th_docker, value, th_docker) == 0);
    CHECK_STR(out, "1");
    CHECK(state_is(db, "running"));
    docker_close(d);
}

static void test_containers_nothing_to_clone(void)
{
    char err[DOCKER_ERR_MAX];
    struct actuate_result res;
    struct policy_target t;
    struct docker *d = engine();
    int n = -1;

    containers_target(&t, "nobody");
    CHECK(actuate_replicas(d, &t, &n, err, sizeof err) == 0);
    CHECK(n == 0);
    unsigned long w = writes(d);
    CHECK(actuate_scale(d, &t, 1, NULL, &res, err, sizeof err) == -ENOENT);
    CHECK(strstr(err, "nothing to clone"));
    CHECK(res.before == 0 && res.after == 0);
    CHECK(writes(d) == w);
    docker_close(d);
}

static int case_containers(void)
{
    RUN(test_containers_scale);
    RUN(test_containers_from_stopped);
    RUN(test_containers_links);
    RUN(test_containers_nothing_to_clone);
    return UNIT_DONE();
}

/* ---- Swarm ------------------------------------------------------------------ */

static int create_service(const char *suffix, const char *flags)
{
    return th_sh(NULL, 0,
                 "%s service create --detach --name %s-%s --label %s=%s --container-label %s=%s "
                 "--stop-grace-period 1s %s " IMAGE " sleep 100000 >/dev/null",
                 th_docker, th_run, suffix, TH_LABEL, th_run, TH_LABEL, th_run, flags);
}

static int spec_replicas(const char *name)
{
    char out[32];
    if (th_sh(out, sizeof out, "%s service inspect -f '{{.Spec.Mode.Replicated.Replicas}}' %s",
              th_docker, name) != 0)
        return -1;
    return (int)th_number(out);
}

static long spec_version(const char *name)
{
    char out[32];
    if (th_sh(out, sizeof out, "%s service inspect -f '{{.Version.Index}}' %s", th_docker, name) !=
        0)
        return -1;
    return th_number(out);
}

static int tasks_running(const char *name, int want)
{
    return th_wait_number(want, 30,
                          "%s service ps %s --filter desired-state=running "
                          "--format '{{.CurrentState}}' | grep -c ^Running || true",
                          th_docker, name);
}

static void test_swarm_scale(void)
{
    char err[DOCKER_ERR_MAX], out[256];
    struct actuate_result res;
    struct policy_target t;
    struct docker *d = engine();
    int n = -1;

    swarm_target(&t, "web");
    CHECK(create_service("web", "--replicas 1 --env FOO=bar") == 0);
    CHECK(actuate_replicas(d, &t, &n, err, sizeof err) == 0);
    CHECK(n == 1);

    char first[64], tasks[512];
    CHECK(tasks_running(t.service, 1) == 1);
    CHECK(th_sh(first, sizeof first, "%s service ps -q --filter desired-state=running %s",
                th_docker, t.service) == 0);
    CHECK(actuate_scale(d, &t, 3, NULL, &res, err, sizeof err) == 0);
    fprintf(stderr, "  %s\n", res.detail);
    CHECK(res.before == 1 && res.after == 3 && res.attempts == 1);
    CHECK(spec_replicas(t.service) == 3);
    CHECK(tasks_running(t.service, 3) == 3);
    /* Only the count changed: the running task was not replaced. */
    CHECK(th_sh(tasks, sizeof tasks, "%s service ps -q --filter desired-state=running %s",
                th_docker, t.service) == 0);
    CHECK(first[0] && strstr(tasks, first));
    /* The whole spec went back: nothing else changed. */
    CHECK(th_sh(out, sizeof out,
                "%s service inspect -f '{{.Spec.TaskTemplate.ContainerSpec.Env}} "
                "{{index .Spec.Labels \"%s\"}} {{.Spec.TaskTemplate.ContainerSpec.Args}}' %s",
                th_docker, TH_LABEL, t.service) == 0);
    char want[128];
    snprintf(want, sizeof want, "[FOO=bar] %s [sleep 100000]", th_run);
    CHECK_STR(out, want);

    long v = spec_version(t.service);
    CHECK(actuate_scale(d, &t, 3, NULL, &res, err, sizeof err) == 0);
    CHECK(res.attempts == 0);
    CHECK(spec_version(t.service) == v);

    CHECK(actuate_scale(d, &t, 1, NULL, &res, err, sizeof err) == 0);
    CHECK(res.before == 3 && res.after == 1);
    CHECK(spec_replicas(t.service) == 1);
    CHECK(tasks_running(t.service, 1) == 1);

    CHECK(actuate_scale(d, &t, 0, NULL, &res, err, sizeof err) == 0);
    CHECK(spec_replicas(t.service) == 0);
    CHECK(tasks_running(t.service, 0) == 0);
    CHECK(actuate_replicas(d, &t, &n, err, sizeof err) == 0);
    CHECK(n == 0);
    docker_close(d);
}

static void test_swarm_refusals(void)
{
    char err[DOCKER_ERR_MAX];
    struct actuate_result res;
    struct policy_target t;
    struct docker *d = engine();
    int n = -1;

    swarm_target(&t, "nope");
    CHECK(actuate_replicas(d, &t, &n, err, sizeof err) == -ENOENT);
    fprintf(stderr, "  missing: %s\n", err);
    CHECK(strstr(err, "swarm service '") && strstr(err, ": 404: ") && strstr(err, "not found"));
    CHECK(actuate_scale(d, &t, 2, NULL, &res, err, sizeof err) == -ENOENT);

    swarm_target(&t, "global");
    CHECK(create_service("global", "--mode global") == 0);
    long v = spec_version(t.service);
    CHECK(actuate_replicas(d, &t, &n, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "not in replicated mode (global)"));
    CHECK(actuate_scale(d, &t, 2, NULL, &res, err, sizeof err) == -EINVAL);
    CHECK(spec_version(t.service) == v);
    docker_close(d);
}

static int case_swarm(void)
{
    RUN(test_swarm_scale);
    RUN(test_swarm_refusals);
    return UNIT_DONE();
}

/* ---- Swarm, with someone else scaling too --------------------------------- */

struct meddler {
    const char *service;
    int calls;
    int every; /* 0: only the first time */
};

/* Between our inspect and our update: what a person at a shell would do. */
static void meddle(void *arg, const char *service_id, long version)
{
    struct meddler *m = arg;
    if (m->calls++ > 0 && !m->every)
        return;
    int k = 4 + m->calls % 2;
    if (th_sh(NULL, 0, "%s service scale --detach %s=%d >/dev/null 2>&1", th_docker, m->service,
              k) != 0)
        fprintf(stderr, "  meddler: docker service scale failed\n");
}

static void test_swarm_out_of_sequence(void)
{
    char err[DOCKER_ERR_MAX];
    struct actuate_result res;
    struct policy_target t;
    struct docker *d = engine();

    swarm_target(&t, "busy");
    CHECK(create_service("busy", "--replicas 1") == 0);

    struct meddler m = {.service = t.service};
    struct actuate_opts o = {.after_inspect = meddle, .hook_arg = &m};
    CHECK(actuate_scale(d, &t, 2, &o, &res, err, sizeof err) == 0);
    fprintf(stderr, "  %s\n", res.detail);
    CHECK(res.attempts == 2);
    CHECK(strstr(res.detail, "(attempt 2)"));
    CHECK(res.after == 2);
    CHECK(spec_replicas(t.service) == 2);

    /* Someone who never stops: we give up after max_attempts, saying why. */
    struct meddler always = {.service = t.service, .every = 1};
    struct actuate_opts o2 = {.after_inspect = meddle, .hook_arg = &always, .max_attempts = 3};
    CHECK(actuate_scale(d, &t, 1, &o2, &res, err, sizeof err) == -EIO);
    fprintf(stderr, "  %s\n", err);
    CHECK(strstr(err, "out of sequence"));
    CHECK(res.attempts == 3);
    docker_close(d);
}

/* A person scaling by hand in a loop while we scale: never a failure. */
static void test_swarm_alongside(void)
{
    char err[DOCKER_ERR_MAX];
    struct actuate_result res;
    struct policy_target t;
    struct docker *d = engine();

    swarm_target(&t, "busy");
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 15; i++)
            th_sh(NULL, 0, "%s service scale --detach %s=%d >/dev/null 2>&1", th_docker, t.service,
                  3 + i % 2);
        _exit(0);
    }
    int failures = 0, attempts = 0;
    for (int i = 0; i < 15; i++) {
        if (actuate_scale(d, &t, 1 + i % 2, NULL, &res, err, sizeof err) != 0) {
            failures++;
            fprintf(stderr, "  failed: %s\n", err);
        }
        attempts += res.attempts;
    }
    waitpid(pid, NULL, 0);
    fprintf(stderr, "  15 scalings alongside 15 manual ones: %d failed, %d updates posted\n",
            failures, attempts);
    CHECK(failures == 0);
    CHECK(actuate_scale(d, &t, 2, NULL, &res, err, sizeof err) == 0);
    CHECK(spec_replicas(t.service) == 2);
    docker_close(d);
}

static int case_swarm_concurrent(void)
{
    RUN(test_swarm_out_of_sequence);
    RUN(test_swarm_alongside);
    return UNIT_DONE();
}

/* ---- dry-run ---------------------------------------------------------------- */

static void snapshot(const char *value, char *out, size_t len)
{
    th_sh(out, len,
          "%s ps -a --no-trunc --filter label=sc.app=%s --format '{{.ID}} {{.State}}' "
          "| sort",
          th_docker, value);
}

static void test_dry_run_swarm(void)
{
    char err[DOCKER_ERR_MAX];
    struct actuate_result res;
    struct policy_target t;
    struct actuate_opts dry = {.dry_run = 1};
    struct docker *d = engine();

    swarm_target(&t, "dry");
    CHECK(create_service("dry", "--replicas 2") == 0);
    long v = spec_version(t.service);
    unsigned long w = writes(d);
    CHECK(actuate_scale(d, &t, 5, &dry, &res, err, sizeof err) == 0);
    fprintf(stderr, "  %s\n", res.detail);
    CHECK(res.before == 2 && res.after == 5 && res.attempts == 0);
    CHECK(strstr(res.detail, "dry-run: would update"));
    CHECK(actuate_scale(d, &t, 0, &dry, &res, err, sizeof err) == 0);
    CHECK(res.after == 0);
    CHECK(writes(d) == w);
    CHECK(spec_version(t.service) == v);
    CHECK(spec_replicas(t.service) == 2);
    docker_close(d);
}

static void test_dry_run_containers(void)
{
    char seed[128], left[128], flags[256], err[DOCKER_ERR_MAX], before[2048], after[2048];
    char value[128];
    struct actuate_result res;
    struct policy_target t;
    struct actuate_opts dry = {.dry_run = 1};
    struct docker *d = engine();

    containers_target(&t, "dry");
    snprintf(value, sizeof value, "%s-dry", th_run);
    snprintf(flags, sizeof flags, "--label sc.app=%s", value);
    CHECK(run_container(seed, sizeof seed, flags) == 0);
    CHECK(actuate_scale(d, &t, 2, NULL, &res, err, sizeof err) == 0); /* a clone too */
    CHECK(th_sh(left, sizeof left,
                "%s create --init --label %s=%s --label sc.app=%s --label "
                "io.scalecast.clone-of=0123456789ab " IMAGE " sleep 100000",
                th_docker, TH_LABEL, th_run, value) == 0);
    snapshot(value, before, sizeof before);
    CHECK(th_lines(before) == 3);

    unsigned long w = writes(d);
    CHECK(actuate_scale(d, &t, 5, &dry, &res, err, sizeof err) == 0);
    fprintf(stderr, "  %s\n", res.detail);
    CHECK(res.before == 2 && res.after == 5);
    CHECK(strstr(res.detail, "would start") && strstr(res.detail, "would create 2 clone(s)"));
    CHECK(actuate_scale(d, &t, 0, &dry, &res, err, sizeof err) == 0);
    fprintf(stderr, "  %s\n", res.detail);
    CHECK(res.before == 2 && res.after == 0);
    CHECK(strstr(res.detail, "would stop and remove"));
    CHECK(writes(d) == w);
    snapshot(value, after, sizeof after);
    CHECK_STR(after, before);
    CHECK(state_is(left, "created"));
    docker_close(d);
}

static int case_dry_run(void)
{
    RUN(test_dry_run_swarm);
    RUN(test_dry_run_containers);
    return UNIT_DONE();
}

/* ---- the engine going away --------------------------------------------------- */

struct scaling {
    struct docker *d;
    const struct policy_target *t;
    int want;
    int rc;
    struct actuate_result res;
    char err[DOCKER_ERR_MAX];
};

static void *scale_thread(void *arg)
{
    struct scaling *s = arg;
    s->rc = actuate_scale(s->d, s->t, s->want, NULL, &s->res, s->err, sizeof s->err);
    return NULL;
}

static void test_engine_stopped(void)
{
    char seed[128], flags[256], err[DOCKER_ERR_MAX], value[128];
    struct actuate_result res;
    struct policy_target t;
    struct docker *d = engine();
    int n = -1;

    containers_target(&t, "r");
    snprintf(value, sizeof value, "%s-r", th_run);
    snprintf(flags, sizeof flags, "--restart unless-stopped --label sc.app=%s", value);
    CHECK(run_container(seed, sizeof seed, flags) == 0);
    CHECK(actuate_scale(d, &t, 2, NULL, &res, err, sizeof err) == 0);

    CHECK(th_private_stop() == 0);
    int rc = actuate_replicas(d, &t, &n, err, sizeof err);
    fprintf(stderr, "  while down: %s\n", err);
    CHECK(rc == -ENOENT || rc == -ECONNREFUSED);
    CHECK(strstr(err, th_private_dir));
    CHECK(strstr(err, "No such file or directory") || strstr(err, "Connection refused"));
    CHECK(actuate_scale(d, &t, 3, NULL, &res, err, sizeof err) < 0);
    CHECK(res.before == -1 && res.after == -1);

    CHECK(th_private_restart() == 0);
    /* The restart policy brings the two replicas back. */
    CHECK(th_wait_number(2, 20, "%s ps -q --filter label=sc.app=%s | wc -l", th_docker, value) ==
          2);
    CHECK(actuate_replicas(d, &t, &n, err, sizeof err) == 0);
    CHECK(n == 2);
    CHECK(actuate_scale(d, &t, 3, NULL, &res, err, sizeof err) == 0);
    CHECK(res.before == 2 && res.after == 3);
    CHECK(running(value) == 3 && all(value) == 3);
    docker_close(d);
}

/* The engine stops while a scale-up is under way. However far it got, the
 * next (absolute) call after the restart lands on exactly the count asked. */
static void test_engine_stopped_mid_scale(void)
{
    char value[128];
    struct policy_target t;
    struct scaling s = {.d = engine(), .want = 9};
    pthread_t thr;

    containers_target(&t, "r");
    snprintf(value, sizeof value, "%s-r", th_run);
    s.t = &t;
    CHECK(running(value) == 3);
    pthread_create(&thr, NULL, scale_thread, &s);
    th_wait_number(5, 20, "%s ps -aq --filter label=sc.app=%s | wc -l", th_docker, value);
    CHECK(th_private_stop() == 0);
    pthread_join(thr, NULL);
    fprintf(stderr, "  cut short: rc %d, reached %d: %s\n", s.rc, s.res.after,
            s.rc ? s.err : s.res.detail);
    CHECK(s.res.after <= 9);

    /* At once: the engine restarts replicas with a restart policy before it
     * answers, so counting right away must not overshoot. */
    CHECK(th_private_restart() == 0);
    CHECK(actuate_scale(s.d, &t, 9, NULL, &s.res, s.err, sizeof s.err) == 0);
    fprintf(stderr, "  after restart: %s\n", s.res.detail);
    CHECK(running(value) == 9);
    CHECK(all(value) == 9); /* no half-made clone left behind */
    docker_close(s.d);
}

static int case_engine_restart(void)
{
    RUN(test_engine_stopped);
    RUN(test_engine_stopped_mid_scale);
    return UNIT_DONE();
}

int main(int argc, char **argv)
{
    static const struct th_case cases[] = {
        {"containers", case_containers, TH_ENGINE},
        {"swarm", case_swarm, TH_SWARM},
        {"swarm_concurrent", case_swarm_concurrent, TH_SWARM},
        {"dry_run", case_dry_run, TH_SWARM},
        {"engine_restart", case_engine_restart, TH_PRIVATE},
    };
    return th_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
