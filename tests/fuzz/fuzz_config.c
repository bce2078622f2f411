/* Fuzz harness of the configuration file: common/config.c config_load, then
 * what scalecastd does with a loaded config before it touches the network:
 * autoscaler/policy.c validates the [service NAME] sections and
 * autoscaler/docker.c docker_open checks the engine options.
 *
 * The input is written to one temporary file (config_load takes a path) that
 * is rewritten for each input and removed at exit. Checked besides "no
 * crash, no memory error":
 *  - a refused file gets a message starting "PATH:" (README.md: errors name
 *    the file and line);
 *  - an accepted file leaves listen and db set (scalecastd uses them as
 *    strings: NULL would crash it), and every policy is consistent: 1 <=
 *    min_replicas <= max_replicas, the target writes back to itself, target
 *    none is advisory. A violation aborts. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "docker.h"
#include "log.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char tmp_path[256];
static int tmp_fd = -1;

static void remove_tmp(void)
{
    if (tmp_path[0])
        unlink(tmp_path);
}

static void die(const uint8_t *data, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static void die(const uint8_t *data, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_config: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nfile (%zu bytes):\n%.*s\n", size, (int)(size > 4000 ? 4000 : size),
            (const char *)data);
    abort();
}

/* Rewrites the temporary file with the input. */
static void write_input(const uint8_t *data, size_t size)
{
    if (tmp_fd < 0) {
        const char *dir = getenv("TMPDIR");
        snprintf(tmp_path, sizeof tmp_path, "%s/scalecast-fuzz-XXXXXX.conf",
                 dir && *dir && strlen(dir) < 200 ? dir : "/tmp");
        tmp_fd = mkstemps(tmp_path, 5);
        if (tmp_fd < 0) {
            perror("fuzz_config: mkstemps");
            abort();
        }
        atexit(remove_tmp);
        log_set_level(LOG_ERROR);
    }
    if (ftruncate(tmp_fd, 0) < 0 || (size && pwrite(tmp_fd, data, size, 0) != (ssize_t)size)) {
        perror("fuzz_config: writing the input");
        abort();
    }
}

static void check_policy(const uint8_t *data, size_t size, const struct policy *p)
{
    if (p->min_replicas < 1 || p->min_replicas > p->max_replicas)
        die(data, size, "[service %s]: accepted min_replicas %d, max_replicas %d", p->name,
            p->min_replicas, p->max_replicas);
    if ((p->target.kind == POLICY_TARGET_NONE) != (p->mode == POLICY_ADVISORY))
        die(data, size, "[service %s]: target kind %d with mode %s", p->name, p->target.kind,
            policy_mode_name(p->mode));
    char text[3 * POLICY_STR_MAX], why[512];
    struct policy_target back;
    policy_target_str(&p->target, text, sizeof text);
    if (policy_parse_target(text, &back, why, sizeof why) < 0 ||
        memcmp(&back, &p->target, sizeof back) != 0)
        die(data, size, "[service %s]: target '%s' does not read back as itself", p->name, text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_input(data, size);
    struct config c;
    char err[1024] = "";
    config_defaults(&c);
    if (config_load(&c, tmp_path, err, sizeof err) < 0) {
        size_t plen = strlen(tmp_path);
        if (strncmp(err, tmp_path, plen) != 0 || err[plen] != ':')
            die(data, size, "config error without 'FILE:': '%s'", err);
        config_free(&c);
        return 0;
    }
    if (!c.server.listen || !c.server.db)
        die(data, size, "accepted, but left [server] %s unset (NULL)",
            !c.server.listen ? "listen" : "db");

    struct policy *p = NULL;
    size_t n = 0;
    if (policy_load_all(&c, &p, &n, err, sizeof err) < 0) {
        if (strncmp(err, tmp_path, strlen(tmp_path)) != 0)
            die(data, size, "policy error without 'FILE:': '%s'", err);
    } else {
        for (size_t i = 0; i < n; i++)
            check_policy(data, size, &p[i]);
    }
    free(p);

    const struct autoscaler_config *a = &c.autoscaler;
    struct docker_opts o = {.host = a->docker_host,
                            .tls_ca = a->docker_tls_ca,
                            .tls_cert = a->docker_tls_cert,
                            .tls_key = a->docker_tls_key,
                            .timeout = a->docker_timeout};
    struct docker *d = NULL;
    char derr[DOCKER_ERR_MAX] = "";
    if (docker_open(&o, &d, derr, sizeof derr) == 0)
        docker_close(d);
    else if (!derr[0])
        die(data, size, "docker_open refused the engine options without a message");
    config_free(&c);
    return 0;
}
