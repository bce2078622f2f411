/* Tests of the Docker Engine API client (autoscaler/docker.c).
 *
 *   options  option checking and escaping; needs no engine
 *   faults   what the real engine cannot be made to do on demand (answer
 *            500, hang, send garbage, drop the connection, speak an old or
 *            a newer API) through a fault-injection fake on a unix socket,
 *            plus a missing socket and a socket nobody listens on
 *   engine   the machine's real engine: version negotiation, versioned
 *            paths, the engine's own error messages
 *   tls      a private real engine on tcp:// with TLS and client
 *            certificates: accepted, wrong CA, no client certificate,
 *            plain HTTP to the TLS port */
#include "actuate.h"
#include "docker.h"
#include "harness.h"
#include "unit.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct docker *open_host(const char *host)
{
    struct docker_opts o = {.host = host, .timeout = 5};
    struct docker *d = NULL;
    char err[DOCKER_ERR_MAX];
    int rc = docker_open(&o, &d, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "docker_open(%s): %s\n", host, err);
    return d;
}

/* ---- options ---------------------------------------------------------------- */

static int open_err(const struct docker_opts *o, char *err, size_t errlen)
{
    struct docker *d = NULL;
    int rc = docker_open(o, &d, err, errlen);
    CHECK(rc < 0 ? d == NULL : d != NULL);
    docker_close(d);
    return rc;
}

static void test_options(void)
{
    char err[DOCKER_ERR_MAX];
    struct docker *d = NULL;

    CHECK(docker_open(NULL, &d, err, sizeof err) == 0);
    CHECK_STR(docker_host(d), DOCKER_DEFAULT_HOST);
    docker_close(d);

    struct docker_opts o = {.host = "http://127.0.0.1:2375"};
    CHECK(open_err(&o, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "'http://127.0.0.1:2375': expected unix:///PATH or tcp://HOST:PORT"));
    o.host = "tcp://127.0.0.1";
    CHECK(open_err(&o, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "expected tcp://HOST:PORT"));
    o.host = "tcp://127.0.0.1:99999";
    CHECK(open_err(&o, err, sizeof err) == -EINVAL);
    o.host = "unix://relative.sock";
    CHECK(open_err(&o, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "absolute path"));
    o.host = "tcp://[::1]:2376";
    CHECK(open_err(&o, err, sizeof err) == 0);

    o.host = NULL;
    o.tls_ca = "/etc/hostname";
    CHECK(open_err(&o, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "TLS files are set but the host 'unix:///var/run/docker.sock'"));
    o.host = "tcp://127.0.0.1:2376";
    o.tls_cert = "/etc/hostname";
    CHECK(open_err(&o, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "needs its key"));
    o.tls_cert = NULL;
    o.tls_ca = "/nonexistent/ca.pem";
    CHECK(open_err(&o, err, sizeof err) == -EINVAL);
    CHECK_STR(err, "docker TLS CA file '/nonexistent/ca.pem': No such file or directory");
    o.tls_ca = NULL;
    o.api_version = "1.x";
    CHECK(open_err(&o, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "'1.x': expected MAJOR.MINOR"));
    o.api_version = NULL;
    o.timeout = -1;
    CHECK(open_err(&o, err, sizeof err) == -EINVAL);

    char *e = docker_escape("a b/{\"label\":[\"k=v\"]}~._-");
    CHECK_STR(e, "a%20b%2F%7B%22label%22%3A%5B%22k%3Dv%22%5D%7D~._-");
    free(e);
}

/* Targets and counts are checked before anything is sent. */
static void test_actuate_checks(void)
{
    char err[DOCKER_ERR_MAX];
    struct docker *d = open_host("unix:///nonexistent/docker.sock");
    struct policy_target none = {.kind = POLICY_TARGET_NONE};
    struct policy_target web = {.kind = POLICY_TARGET_SWARM, .service = "web"};
    struct actuate_result res;
    struct docker_counters ct;
    int n = -1;

    CHECK(actuate_replicas(d, &none, &n, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "advisory"));
    CHECK(actuate_scale(d, &none, 2, NULL, &res, err, sizeof err) == -EINVAL);
    CHECK(actuate_scale(d, &web, -1, NULL, &res, err, sizeof err) == -EINVAL);
    CHECK_STR(err, "swarm service 'web': -1 replicas is outside 0..10000");
    CHECK(actuate_scale(d, &web, ACTUATE_MAX_REPLICAS + 1, NULL, &res, err, sizeof err) == -EINVAL);
    docker_get_counters(d, &ct);
    CHECK(ct.requests == 0);
    docker_close(d);
}

static int case_options(void)
{
    RUN(test_options);
    RUN(test_actuate_checks);
    return UNIT_DONE();
}

/* ---- fault-injection fake ------------------------------------------------ */

/* A unix-socket HTTP server that answers /version with `api` and everything
 * else as `mode` says. One connection at a time, Connection: close. */
enum fault { FAULT_OK, FAULT_500_JSON, FAULT_502_TEXT, FAULT_HANG, FAULT_GARBAGE, FAULT_CLOSE };

struct fake {
    char path[108];
    int fd;
    pthread_t thr;
    volatile int stop;
    volatile enum fault mode;
    char api[16];
    char last[320]; /* "METHOD /path" of the last request other than /version */
    pthread_mutex_t mu;
};

static void fake_reply(int c, int status, const char *type, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, type, strlen(body));
    if (write(c, head, (size_t)n) < 0 || write(c, body, strlen(body)) < 0)
        perror("fake: write");
}

/* Reads the request head; returns 0 with "METHOD PATH" in line. */
static int fake_read(int c, char *line, size_t len)
{
    char buf[8192];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t got = read(c, buf + n, sizeof buf - 1 - n);
        if (got <= 0)
            return -1;
        n += (size_t)got;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    char method[16], path[300];
    if (sscanf(buf, "%15s %299s", method, path) != 2)
        return -1;
    snprintf(line, len, "%s %s", method, path);
    return 0;
}

static void fake_serve(struct fake *f, int c)
{
    char line[320], body[128];
    if (fake_read(c, line, sizeof line) < 0)
        return;
    if (strcmp(line, "GET /version") == 0) {
        snprintf(body, sizeof body, "{\"ApiVersion\":\"%s\",\"MinAPIVersion\":\"1.12\"}", f->api);
        fake_reply(c, 200, "application/json", body);
        return;
    }
    pthread_mutex_lock(&f->mu);
    snprintf(f->last, sizeof f->last, "%s", line);
    pthread_mutex_unlock(&f->mu);
    switch (f->mode) {
    case FAULT_OK:
        fake_reply(c, 200, "application/json", "[]");
        break;
    case FAULT_500_JSON:
        fake_reply(c, 500, "application/json",
                   "{\"message\":\"injected: the engine is overloaded\"}");
        break;
    case FAULT_502_TEXT:
        fake_reply(c, 502, "text/plain", "Bad Gateway from a proxy\r\nmore text");
        break;
    case FAULT_HANG: {
        /* Never answer; wait for the client to give up and hang up. */
        struct pollfd p = {.fd = c, .events = POLLIN};
        for (int i = 0; i < 100 && !f->stop; i++) {
            if (poll(&p, 1, 100) > 0) {
                char tmp[64];
                if (read(c, tmp, sizeof tmp) <= 0)
                    break;
            }
        }
        break;
    }
    case FAULT_GARBAGE:
        fake_reply(c, 200, "application/json", "this is not json");
        break;
    case FAULT_CLOSE:
        break;
    }
}

static void *fake_loop(void *arg)
{
    struct fake *f = arg;
    while (!f->stop) {
        struct pollfd p = {.fd = f->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(f->fd, NULL, NULL);
        if (c < 0)
            continue;
        fake_serve(f, c);
        close(c);
    }
    return NULL;
}

static void fake_start(struct fake *f, const char *path, const char *api)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->api, sizeof f->api, "%s", api);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    pthread_mutex_init(&f->mu, NULL);
    unlink(path);
    f->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(f->fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(f->fd, 8) < 0) {
        perror("fake: bind/listen");
        exit(1);
    }
    pthread_create(&f->thr, NULL, fake_loop, f);
}

/* Stops serving; the socket file stays, so the next connect is refused. */
static void fake_stop(struct fake *f)
{
    f->stop = 1;
    pthread_join(f->thr, NULL);
    close(f->fd);
    pthread_mutex_destroy(&f->mu);
}

static char sockdir[64];
static char sockpath[128];
static char host[160];

static void fake_setup(void)
{
    snprintf(sockdir, sizeof sockdir, "/tmp/sc-test-%d-fake", (int)getpid());
    mkdir(sockdir, 0700);
    snprintf(sockpath, sizeof sockpath, "%s/fake.sock", sockdir);
    snprintf(host, sizeof host, "unix://%s", sockpath);
}

static void test_negotiation(void)
{
    struct fake f;
    char v[16], err[DOCKER_ERR_MAX];
    json_t *reply = NULL;

    fake_start(&f, sockpath, "1.41");
    struct docker *d = open_host(host);
    CHECK(docker_api_version(d, v, sizeof v, err, sizeof err) == 0);
    CHECK_STR(v, "1.41");
    CHECK(docker_request(d, "GET", "/containers/json", NULL, 0, &reply, err, sizeof err) == 0);
    CHECK(json_is_array(reply));
    json_decref(reply);
    CHECK_STR(f.last, "GET /v1.41/containers/json");

    /* The engine goes away and comes back speaking a newer API: the client
     * asks again, and settles on its own newest. */
    fake_stop(&f);
    CHECK(docker_request(d, "GET", "/info", NULL, 0, NULL, err, sizeof err) == -ECONNREFUSED);
    fake_start(&f, sockpath, "1.99");
    CHECK(docker_request(d, "POST", "/containers/x/start", NULL, 0, NULL, err, sizeof err) == 0);
    CHECK_STR(f.last, "POST /v" DOCKER_API_MAX "/containers/x/start");
    fake_stop(&f);
    docker_close(d);

    /* An engine older than we can drive. */
    fake_start(&f, sockpath, "1.12");
    d = open_host(host);
    CHECK(docker_request(d, "GET", "/info", NULL, 0, NULL, err, sizeof err) == -EPROTO);
    CHECK(strstr(err, "speaks API 1.12; scalecast needs at least " DOCKER_API_MIN));
    CHECK_STR(f.last, "");
    docker_close(d);
    fake_stop(&f);

    /* A pinned version is used as is, without asking. */
    fake_start(&f, sockpath, "1.41");
    struct docker_opts o = {.host = host, .api_version = "1.30"};
    CHECK(docker_open(&o, &d, err, sizeof err) == 0);
    CHECK(docker_request(d, "GET", "/info", NULL, 0, NULL, err, sizeof err) == 0);
    CHECK_STR(f.last, "GET /v1.30/info");
    struct docker_counters ct;
    docker_get_counters(d, &ct);
    CHECK(ct.requests == 1 && ct.writes == 0 && ct.failures == 0);
    docker_close(d);
    fake_stop(&f);
}

static void test_engine_errors(void)
{
    struct fake f;
    char err[DOCKER_ERR_MAX];
    json_t *reply = NULL;

    fake_start(&f, sockpath, "1.41");
    struct docker *d = open_host(host);

    f.mode = FAULT_500_JSON;
    CHECK(docker_request(d, "GET", "/containers/json", NULL, 0, &reply, err, sizeof err) == -EIO);
    CHECK(reply == NULL);
    CHECK_STR(err, "GET /v1.41/containers/json: 500: injected: the engine is overloaded");

    /* Through actuate the message names the target too. */
    struct policy_target web = {.kind = POLICY_TARGET_SWARM, .service = "web"};
    int n = -1;
    CHECK(actuate_replicas(d, &web, &n, err, sizeof err) == -EIO);
    CHECK_STR(err, "swarm service 'web': GET /v1.41/services/web: 500: injected: the engine is "
                   "overloaded");
    CHECK(n == -1);

    f.mode = FAULT_502_TEXT;
    CHECK(docker_request(d, "DELETE", "/containers/x", NULL, 0, NULL, err, sizeof err) == -EIO);
    CHECK_STR(err, "DELETE /v1.41/containers/x: 502: Bad Gateway from a proxy");
    CHECK_STR(f.last, "DELETE /v1.41/containers/x");

    f.mode = FAULT_GARBAGE;
    CHECK(docker_request(d, "GET", "/info", NULL, 0, &reply, err, sizeof err) == -EPROTO);
    CHECK(strstr(err, "GET /v1.41/info: the answer is not JSON"));
    /* ... which does not matter when the caller ignores the body. */
    CHECK(docker_request(d, "POST", "/containers/x/stop", NULL, 0, NULL, err, sizeof err) == 0);

    f.mode = FAULT_CLOSE;
    CHECK(docker_request(d, "GET", "/info", NULL, 0, NULL, err, sizeof err) == -ECONNRESET);
    CHECK(strstr(err, "closed the connection"));

    /* A hung engine costs the caller the timeout, not more. */
    f.mode = FAULT_HANG;
    double t0 = now();
    CHECK(docker_request(d, "GET", "/info", NULL, 0.5, NULL, err, sizeof err) == -ETIMEDOUT);
    double took = now() - t0;
    CHECK(took >= 0.45 && took < 3);
    CHECK(strstr(err, "GET /v1.41/info: no answer from the engine at unix://"));
    CHECK(strstr(err, "within 0.5 s"));

    struct docker_counters ct;
    docker_get_counters(d, &ct);
    CHECK(ct.failures == 6);
    CHECK(ct.writes == 2);
    docker_close(d);
    fake_stop(&f);
}

/* A real failure to connect: no socket file; a socket file nobody listens
 * on (what a crashed engine leaves) is "connection refused". */
static void test_unreachable(void)
{
    char err[DOCKER_ERR_MAX], missing[200];
    snprintf(missing, sizeof missing, "unix://%s/missing.sock", sockdir);
    struct docker *d = open_host(missing);
    CHECK(docker_request(d, "GET", "/info", NULL, 0, NULL, err, sizeof err) == -ENOENT);
    CHECK(strstr(err, "GET /version: cannot connect to the engine at unix://"));
    CHECK(strstr(err, "missing.sock: No such file or directory"));
    docker_close(d);

    struct fake f;
    fake_start(&f, sockpath, "1.41");
    fake_stop(&f);
    d = open_host(host);
    CHECK(docker_request(d, "GET", "/info", NULL, 0, NULL, err, sizeof err) == -ECONNREFUSED);
    CHECK(strstr(err, "fake.sock: Connection refused"));
    docker_close(d);
}

static int case_faults(void)
{
    fake_setup();
    RUN(test_negotiation);
    RUN(test_engine_errors);
    RUN(test_unreachable);
    unlink(sockpath);
    rmdir(sockdir);
    return UNIT_DONE();
}

/* ---- the real engine -------------------------------------------------------- */

static void test_real_engine(void)
{
    char v[16], theirs[32], want[16], err[DOCKER_ERR_MAX], path[256];
    json_t *reply = NULL;
    struct docker *d =
        open_host(getenv("DOCKER_HOST") ? getenv("DOCKER_HOST") : DOCKER_DEFAULT_HOST);
    CHECK(th_sh(theirs, sizeof theirs, "docker version -f '{{.Server.APIVersion}}'") == 0);
    unsigned ma, mi;
    CHECK(sscanf(theirs, "%u.%u", &ma, &mi) == 2);
    snprintf(want, sizeof want, "%s", ma * 1000 + mi > 1047 ? DOCKER_API_MAX : theirs);
    CHECK(docker_api_version(d, v, sizeof v, err, sizeof err) == 0);
    CHECK_STR(v, want);

    CHECK(docker_request(d, "GET", "/containers/json?all=1", NULL, 0, &reply, err, sizeof err) ==
          0);
    CHECK(json_is_array(reply));
    json_decref(reply);

    snprintf(path, sizeof path, "/containers/%s-nope/json", th_run);
    CHECK(docker_request(d, "GET", path, NULL, 0, &reply, err, sizeof err) == -ENOENT);
    CHECK(strstr(err, ": 404: No such container: sc-test-"));

    /* A create the engine refuses changes nothing and says why. */
    json_t *body = json_pack("{s:s,s:{s:s}}", "Image", "sc-test-no-such-image:none", "Labels",
                             TH_LABEL, th_run);
    CHECK(docker_request(d, "POST", "/containers/create", body, 0, &reply, err, sizeof err) ==
          -ENOENT);
    CHECK(strstr(err, "POST /v") && strstr(err, "/containers/create: 404: No such image"));
    json_decref(body);
    docker_close(d);

    /* A version the engine does not speak: its own words come back. */
    struct docker_opts o = {.api_version = "1.99"};
    CHECK(docker_open(&o, &d, err, sizeof err) == 0);
    CHECK(docker_request(d, "GET", "/info", NULL, 0, NULL, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "GET /v1.99/info: 400: ") && strstr(err, "1.99 is too new"));
    docker_close(d);
}

static int case_engine(void)
{
    RUN(test_real_engine);
    return UNIT_DONE();
}

/* ---- TLS ------------------------------------------------------------------ */

static int tls_open(const char *ca, int client_cert, struct docker **d, char *err, size_t len)
{
    char cap[256], cert[256], key[256];
    snprintf(cap, sizeof cap, "%s/%s", th_tls_dir, ca);
    snprintf(cert, sizeof cert, "%s/cert.pem", th_tls_dir);
    snprintf(key, sizeof key, "%s/key.pem", th_tls_dir);
    struct docker_opts o = {.host = th_tls_host, .tls_ca = cap, .timeout = 5};
    if (client_cert) {
        o.tls_cert = cert;
        o.tls_key = key;
    }
    return docker_open(&o, d, err, len);
}

static void test_tls(void)
{
    char err[DOCKER_ERR_MAX], v[16];
    struct docker *d = NULL;
    json_t *reply = NULL;

    CHECK(th_tls_host[0] != '\0');
    CHECK(tls_open("ca.pem", 1, &d, err, sizeof err) == 0);
    CHECK(docker_api_version(d, v, sizeof v, err, sizeof err) == 0);
    CHECK(docker_request(d, "GET", "/containers/json", NULL, 0, &reply, err, sizeof err) == 0);
    CHECK(json_is_array(reply));
    json_decref(reply);

    /* actuate works the same way over TLS. */
    char seed[128];
    CHECK(th_sh(seed, sizeof seed,
                "%s run -d --init --label %s=%s --label sc.app=%s-tls scalecast-busybox:test "
                "sleep 100000",
                th_docker, TH_LABEL, th_run, th_run) == 0);
    struct policy_target t = {.kind = POLICY_TARGET_CONTAINERS, .label = "sc.app"};
    snprintf(t.value, sizeof t.value, "%s-tls", th_run);
    int n = -1;
    CHECK(actuate_replicas(d, &t, &n, err, sizeof err) == 0);
    CHECK(n == 1);
    docker_close(d);

    /* The engine's certificate is not signed by the CA we trust. */
    CHECK(tls_open("other-ca.pem", 1, &d, err, sizeof err) == 0);
    CHECK(docker_request(d, "GET", "/info", NULL, 0, NULL, err, sizeof err) == -EPROTO);
    CHECK(strstr(err, "TLS with the engine at tcp://127.0.0.1:"));
    fprintf(stderr, "  wrong CA: %s\n", err);
    docker_close(d);

    /* The engine wants a client certificate and we have none. */
    CHECK(tls_open("ca.pem", 0, &d, err, sizeof err) == 0);
    CHECK(docker_request(d, "GET", "/info", NULL, 0, NULL, err, sizeof err) == -EPROTO);
    CHECK(strstr(err, "TLS with the engine at"));
    fprintf(stderr, "  no client certificate: %s\n", err);
    docker_close(d);

    /* Plain HTTP to the TLS port: the engine's own answer. */
    d = open_host(th_tls_host);
    CHECK(docker_request(d, "GET", "/info", NULL, 0, NULL, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "400: Client sent an HTTP request to an HTTPS server."));
    docker_close(d);
}

static int case_tls(void)
{
    RUN(test_tls);
    return UNIT_DONE();
}

int main(int argc, char **argv)
{
    static const struct th_case cases[] = {
        {"options", case_options, 0},
        {"faults", case_faults, 0},
        {"engine", case_engine, TH_ENGINE},
        {"tls", case_tls, TH_PRIVATE_TLS},
    };
    return th_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
