/* Tests of the configuration file parser (common/config.c). */
#include "config.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpl[] = "/tmp/sc_config_XXXXXX";

static const char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "%s", tmpl);
    int fd = mkstemp(path);
    FILE *fp = fdopen(fd, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

static int load(const char *text, struct config *c, char *err, size_t errlen)
{
    const char *path = write_tmp(text);
    config_defaults(c);
    int rc = config_load(c, path, err, errlen);
    unlink(path);
    return rc;
}

static void test_defaults(void)
{
    struct config c;
    config_defaults(&c);
    CHECK_STR(c.server.listen, "127.0.0.1:8080");
    CHECK_STR(c.server.db, "data/scalecast.db");
    CHECK(c.server.max_body_bytes == 8u << 20);
    CHECK_NEAR(c.server.retention, 7 * 86400, 0);
    CHECK_NEAR(c.autoscaler.tick, 15, 0);
    config_free(&c);
}

static void test_values(void)
{
    struct config c;
    char err[512] = "";
    int rc = load("; comment\n[server]\nlisten = 127.0.0.1:9999\n# another\nretention = 2d\n"
                  "max_body_size = 1MiB\nsync = normal\n[autoscaler]\ntick = 5s\n"
                  "[service web]\ntarget = swarm:web\nmin_replicas = 2\n",
                  &c, err, sizeof err);
    CHECK(rc == 0);
    CHECK_STR(c.server.listen, "127.0.0.1:9999");
    CHECK_NEAR(c.server.retention, 2 * 86400, 0);
    CHECK(c.server.max_body_bytes == 1u << 20);
    CHECK(!c.server.sync_full);
    CHECK_NEAR(c.autoscaler.tick, 5, 0);
    CHECK(c.nservices == 1);
    const struct config_section *s = config_service(&c, "web");
    CHECK(s != NULL);
    if (s) {
        CHECK(s->nkv == 2);
        CHECK_STR(s->kv[1].key, "min_replicas");
        CHECK(s->kv[1].line == 12);
    }
    config_free(&c);
}

static void expect_error(const char *text, const char *needle)
{
    struct config c;
    char err[512] = "";
    int rc = load(text, &c, err, sizeof err);
    CHECK(rc < 0);
    if (!strstr(err, needle)) {
        unit_failures++;
        fprintf(stderr, "error '%s' lacks '%s'\n", err, needle);
    }
    config_free(&c);
}

static void test_errors(void)
{
    expect_error("[server]\nlisten = x:1\nlistne = y\n", ":3: unknown key 'listne' in [server]");
    expect_error("[server]\nretention = soon\n", ":2: [server] retention = 'soon': expected");
    expect_error("[sever]\n", ":1: unknown section [sever]");
    expect_error("[server]\nthis is not ini\n", ":2: syntax error");
    expect_error("[service a]\nx = 1\n[service a]\n", ":3: [service a] defined twice");
    expect_error("[service a]\nx = 1\nx = 2\n", ":3: key 'x' repeated");
    expect_error("[service a b]\nx = 1\n", "a service name is");
    expect_error("[server]\nmax_body_size = 0\n", "max_body_size");
}

static void test_parsers(void)
{
    double d;
    size_t sz;
    CHECK(config_parse_duration("90", &d) == 0 && d == 90);
    CHECK(config_parse_duration("5m", &d) == 0 && d == 300);
    CHECK(config_parse_duration("1.5h", &d) == 0 && d == 5400);
    CHECK(config_parse_duration("-1", &d) < 0);
    CHECK(config_parse_duration("5 parsecs", &d) < 0);
    CHECK(config_parse_size("64KiB", &sz) == 0 && sz == 65536);
    CHECK(config_parse_size("lots", &sz) < 0);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_values);
    RUN(test_errors);
    RUN(test_parsers);
    return UNIT_DONE();
}
