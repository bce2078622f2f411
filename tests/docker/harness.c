/* Harness for tests against a real Docker engine: engine check, per-run
 * labels, a child per case, cleanup by label afterwards. */
#include "harness.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SC_TEST_DOCKER_DIR
#error "SC_TEST_DOCKER_DIR must name tests/docker"
#endif

char th_run[32];
char th_private_dir[128];
char th_private_host[160];
char th_tls_host[64];
char th_tls_dir[160];
char th_docker[200] = "docker";

static int vsh(char *out, size_t outlen, const char *fmt, va_list ap)
{
    char cmd[4096];
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = 0;
    char tmp[4096];
    if (!out || outlen == 0) {
        out = tmp;
        outlen = sizeof tmp;
    }
    out[0] = '\0';
    for (;;) {
        size_t room = outlen - 1 - n;
        if (room == 0) {
            /* Drain what does not fit so the command is not blocked. */
            if (fread(tmp, 1, sizeof tmp, p) == 0)
                break;
            continue;
        }
        size_t got = fread(out + n, 1, room, p);
        if (got == 0)
            break;
        n += got;
    }
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int th_sh(char *out, size_t outlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vsh(out, outlen, fmt, ap);
    va_end(ap);
    return rc;
}

long th_number(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\n')
        end++;
    return errno || end == s || *end ? -1 : v;
}

int th_lines(const char *s)
{
    int n = 0, in = 0;
    for (; *s; s++) {
        if (*s == '\n') {
            n += in;
            in = 0;
        } else if (*s != '\r' && *s != ' ') {
            in = 1;
        }
    }
    return n + in;
}

int th_wait_number(int want, double seconds, const char *fmt, ...)
{
    char cmd[2048], out[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int last = -1;
    for (double waited = 0; waited <= seconds; waited += 0.25) {
        if (th_sh(out, sizeof out, "%s", cmd) == 0)
            last = (int)th_number(out);
        if (last == want)
            break;
        struct timespec ts = {0, 250 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return last;
}

int th_private_stop(void)
{
    return th_sh(NULL, 0, "%s/private-engine.sh stop %s >&2", SC_TEST_DOCKER_DIR, th_private_dir);
}

int th_private_restart(void)
{
    return th_sh(NULL, 0, "%s/private-engine.sh restart %s >&2", SC_TEST_DOCKER_DIR,
                 th_private_dir);
}

/* Removes everything labelled with this run, on the engine `docker`. */
static void cleanup_engine(const char *docker, int swarm)
{
    char out[256];
    if (swarm) {
        th_sh(NULL, 0, "%s service ls -q --filter label=%s=%s | xargs -r %s service rm >/dev/null",
              docker, TH_LABEL, th_run, docker);
        /* Task containers leave with their service, asynchronously. */
        th_wait_number(0, 20,
                       "%s ps -aq --filter label=%s=%s --filter label=com.docker.swarm.task"
                       " | wc -l",
                       docker, TH_LABEL, th_run);
    }
    th_sh(NULL, 0, "%s ps -aq --filter label=%s=%s | xargs -r %s rm -f -v >/dev/null", docker,
          TH_LABEL, th_run, docker);
    th_sh(NULL, 0, "%s network ls -q --filter label=%s=%s | xargs -r %s network rm >/dev/null",
          docker, TH_LABEL, th_run, docker);
    th_sh(out, sizeof out,
          "{ %s ps -aq --filter label=%s=%s; %s network ls -q --filter label=%s=%s; } | wc -l",
          docker, TH_LABEL, th_run, docker, TH_LABEL, th_run);
    if (th_number(out) != 0)
        fprintf(stderr, "harness: %s objects labelled %s=%s are left on %s\n", out, TH_LABEL,
                th_run, docker);
}

static int prepare(unsigned needs)
{
    char out[4096];
    /* The machine's engine: started if need be (CI runs engine.sh first). */
    if (th_sh(out, sizeof out, "%s/engine.sh 2>&1", SC_TEST_DOCKER_DIR) != 0) {
        printf("SKIP: no Docker engine could be started:\n%s\n", out);
        return 77;
    }
    fprintf(stderr, "harness: %s\n", out);
    if (needs & TH_SWARM) {
        if (th_sh(out, sizeof out, "%s/swarm.sh acquire %d 2>&1", SC_TEST_DOCKER_DIR,
                  (int)getpid()) != 0) {
            fprintf(stderr, "harness: cannot get a swarm: %s\n", out);
            return 1;
        }
        fprintf(stderr, "harness: %s\n", out);
    }
    if (needs & (TH_PRIVATE | TH_PRIVATE_TLS)) {
        if (geteuid() != 0) {
            printf("SKIP: a private Docker engine needs root to start\n");
            return 77;
        }
        snprintf(th_private_dir, sizeof th_private_dir, "/tmp/%s-engine", th_run);
        snprintf(th_private_host, sizeof th_private_host, "unix://%s/docker.sock", th_private_dir);
        snprintf(th_docker, sizeof th_docker, "docker -H %s", th_private_host);
        int rc = th_sh(out, sizeof out, "%s/private-engine.sh start %s %s 2>&1", SC_TEST_DOCKER_DIR,
                       th_private_dir, (needs & TH_PRIVATE_TLS) ? "--tls" : "");
        fprintf(stderr, "harness: %s\n", out);
        if (rc != 0)
            return 1;
        const char *tcp = strstr(out, "TCP_HOST=");
        if (tcp)
            snprintf(th_tls_host, sizeof th_tls_host, "%.*s", (int)strcspn(tcp + 9, "\n"), tcp + 9);
        snprintf(th_tls_dir, sizeof th_tls_dir, "%s/tls", th_private_dir);
    }
    return 0;
}

static void teardown(unsigned needs)
{
    char out[1024];
    if (needs & (TH_PRIVATE | TH_PRIVATE_TLS)) {
        th_private_restart(); /* a case may have left it stopped */
        cleanup_engine(th_docker, 0);
        th_sh(out, sizeof out, "%s/private-engine.sh destroy %s 2>&1", SC_TEST_DOCKER_DIR,
              th_private_dir);
        fprintf(stderr, "harness: %s\n", out);
    }
    if (needs & (TH_ENGINE | TH_SWARM))
        cleanup_engine("docker", (needs & TH_SWARM) != 0);
    if (needs & TH_SWARM) {
        th_sh(out, sizeof out, "%s/swarm.sh release %d 2>&1", SC_TEST_DOCKER_DIR, (int)getpid());
        fprintf(stderr, "harness: %s\n", out);
    }
}

int th_main(int argc, char **argv, const struct th_case *cases, size_t ncases)
{
    const struct th_case *c = NULL;
    for (size_t i = 0; argc == 2 && i < ncases; i++)
        if (strcmp(argv[1], cases[i].name) == 0)
            c = &cases[i];
    if (!c) {
        fprintf(stderr, "usage: %s CASE; cases:", argv[0]);
        for (size_t i = 0; i < ncases; i++)
            fprintf(stderr, " %s", cases[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    snprintf(th_run, sizeof th_run, "sc-test-%d", (int)getpid());
    if (c->needs == 0)
        return c->fn();
    int rc = prepare(c->needs);
    if (rc != 0) {
        if (rc != 77)
            teardown(c->needs);
        return rc;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        teardown(c->needs);
        return 1;
    }
    if (pid == 0)
        exit(c->fn()); /* exit, not _exit: LeakSanitizer reports at exit */
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        ;
    teardown(c->needs);
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "harness: case %s killed by signal %d\n", c->name, WTERMSIG(st));
        return 1;
    }
    return WEXITSTATUS(st);
}
