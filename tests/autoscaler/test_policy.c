/* Tests of policy validation (autoscaler/policy.c).
 *
 * Without arguments: the built-in cases below. With a file argument: one
 * data-driven case from policy_cases/, whose first line is
 * "# expect: ok" or "# expect: TEXT" (TEXT must appear in the error); each
 * such file is its own ctest, so adding a regression needs no C. */
#include "policy.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/sc_policy_XXXXXX");
    int fd = mkstemp(path);
    FILE *fp = fdopen(fd, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* Loads text as a config file and validates its first service. */
static int load(const char *text, struct policy *p, char *err, size_t errlen)
{
    struct config c;
    config_defaults(&c);
    const char *path = write_tmp(text);
    int rc = config_load(&c, path, err, errlen);
    if (rc == 0 && c.nservices > 0)
        rc = policy_from_section(&c.services[0], "test.conf", p, err, errlen);
    unlink(path);
    config_free(&c);
    return rc;
}

static void test_defaults(void)
{
    struct policy p;
    char err[512] = "";
    int rc = load("[service web]\ntarget = swarm:web\nmax_replicas = 10\n", &p, err, sizeof err);
    CHECK(rc == 0);
    CHECK_STR(err, "");
    CHECK(p.target.kind == POLICY_TARGET_SWARM);
    CHECK_STR(p.target.service, "web");
    CHECK(p.mode == POLICY_ENFORCE);
    CHECK(p.source == POLICY_SOURCE_SERVICE);
    CHECK_STR(p.source_match, "web");
    CHECK_STR(p.metric, "cpu");
    CHECK(p.aggregation == POLICY_AGG_AVG);
    /* The HPA's defaults. */
    CHECK(p.has_target && p.target_utilization == 80);
    CHECK_NEAR(p.tolerance, 0.1, 0);
    CHECK(p.min_replicas == 1 && p.max_replicas == 10);
    CHECK(p.step_up.replicas == 4 && p.step_up.percent == 100 && p.step_up.period == 15);
    CHECK(p.step_down.replicas < 0 && p.step_down.percent == 100 && p.step_down.period == 15);
    CHECK(p.step_select == POLICY_SELECT_MAX);
    CHECK(p.scale_up_stabilization == 0 && p.scale_down_stabilization == 300);
    CHECK(p.scale_up_cooldown == 0 && p.scale_down_cooldown == 0);
    CHECK(!p.has_up_threshold && !p.has_down_threshold);
    CHECK(p.forecast);
    CHECK_STR(p.forecast_model, "auto");
    CHECK_NEAR(policy_up_threshold(&p), 88, 1e-9);
}

static void test_values(void)
{
    struct policy p;
    char err[512] = "";
    int rc = load("[service api]\n"
                  "target = containers:com.example.app=api\n"
                  "mode = dry-run\n"
                  "source = nodes:worker-*\n"
                  "metric = mem\n"
                  "aggregation = p95\n"
                  "window = 2m\n"
                  "stale_after = 90s\n"
                  "target_utilization = 70%\n"
                  "tolerance = 5%\n"
                  "scale_up_above = 90\n"
                  "scale_up_for = 30s\n"
                  "scale_down_below = 20\n"
                  "scale_down_for = 10m\n"
                  "min_replicas = 2\n"
                  "max_replicas = 12\n"
                  "max_step_up = 2\n"
                  "max_step_up_percent = off\n"
                  "step_up_period = 1m\n"
                  "max_step_down = 1\n"
                  "max_step_down_percent = 50%\n"
                  "step_down_period = 2m\n"
                  "step_select = min\n"
                  "scale_up_cooldown = 30s\n"
                  "scale_down_cooldown = 5m\n"
                  "scale_up_stabilization = 15s\n"
                  "scale_down_stabilization = 10m\n"
                  "forecast = seasonal\n"
                  "forecast_horizon = 3m\n"
                  "forecast_history = 7d\n"
                  "forecast_resolution = 5m\n"
                  "forecast_confidence = 80%\n"
                  "forecast_period = 1d\n",
                  &p, err, sizeof err);
    CHECK(rc == 0);
    CHECK_STR(err, "");
    CHECK(p.target.kind == POLICY_TARGET_CONTAINERS);
    CHECK_STR(p.target.label, "com.example.app");
    CHECK_STR(p.target.value, "api");
    CHECK(p.mode == POLICY_DRY_RUN);
    CHECK(p.source == POLICY_SOURCE_NODES);
    CHECK_STR(p.source_match, "worker-*");
    CHECK_STR(p.metric, "mem");
    CHECK(p.aggregation == POLICY_AGG_P95);
    CHECK(p.window == 120 && p.stale_after == 90);
    CHECK(p.target_utilization == 70);
    CHECK_NEAR(p.tolerance, 0.05, 1e-12);
    CHECK(p.has_up_threshold && p.scale_up_above == 90 && p.scale_up_for == 30);
    CHECK(p.has_down_threshold && p.scale_down_below == 20 && p.scale_down_for == 600);
    CHECK(p.min_replicas == 2 && p.max_replicas == 12);
    CHECK(p.step_up.replicas == 2 && p.step_up.percent < 0 && p.step_up.period == 60);
    CHECK(p.step_down.replicas == 1 && p.step_down.percent == 50 && p.step_down.period == 120);
    CHECK(p.step_select == POLICY_SELECT_MIN);
    CHECK(p.scale_up_cooldown == 30 && p.scale_down_cooldown == 300);
    CHECK(p.scale_up_stabilization == 15 && p.scale_down_stabilization == 600);
    CHECK(p.forecast);
    CHECK_STR(p.forecast_model, "seasonal");
    CHECK(p.forecast_horizon == 180 && p.forecast_history == 7 * 86400.0);
    CHECK(p.forecast_resolution == 300);
    CHECK_NEAR(p.forecast_confidence, 0.8, 1e-12);
    CHECK(p.forecast_period == 86400);
    CHECK_NEAR(policy_up_threshold(&p), 90, 0);

    rc = load("[service x]\ntarget = none\nmax_replicas = 3\nforecast = off\n"
              "source = service:other\n",
              &p, err, sizeof err);
    CHECK(rc == 0);
    CHECK(p.mode == POLICY_ADVISORY && p.target.kind == POLICY_TARGET_NONE);
    CHECK(!p.forecast);
    CHECK_STR(p.source_match, "other");
    CHECK_STR(policy_mode_name(p.mode), "advisory");
}

static void test_targets(void)
{
    struct policy_target t;
    char why[256], buf[600];
    CHECK(policy_parse_target("swarm:web_1.a-b", &t, why, sizeof why) == 0);
    CHECK_STR(policy_target_str(&t, buf, sizeof buf), "swarm:web_1.a-b");
    CHECK(policy_parse_target("containers:app=web=x", &t, why, sizeof why) == 0);
    CHECK_STR(t.label, "app");
    CHECK_STR(t.value, "web=x");
    CHECK_STR(policy_target_str(&t, buf, sizeof buf), "containers:app=web=x");
    CHECK(policy_parse_target("none", &t, why, sizeof why) == 0 && t.kind == POLICY_TARGET_NONE);
    CHECK_STR(policy_target_str(&t, buf, sizeof buf), "none");
    CHECK(policy_parse_target("swarm:", &t, why, sizeof why) < 0);
    CHECK(policy_parse_target("swarm:-x", &t, why, sizeof why) < 0);
    CHECK(policy_parse_target("containers:app", &t, why, sizeof why) < 0);
    CHECK(policy_parse_target("containers:=web", &t, why, sizeof why) < 0);
    CHECK(policy_parse_target("containers:app=", &t, why, sizeof why) < 0);
    CHECK(policy_parse_target("kubernetes:web", &t, why, sizeof why) < 0);
    CHECK(strstr(why, "expected swarm:NAME, containers:LABEL=VALUE or none") != NULL);
}

static void test_load_all(void)
{
    struct config c;
    char err[512] = "";
    config_defaults(&c);
    const char *path = write_tmp("[service a]\ntarget = swarm:a\nmax_replicas = 2\n"
                                 "[service b]\ntarget = swarm:b\nmax_replicas = 0\n");
    CHECK(config_load(&c, path, err, sizeof err) == 0);
    struct policy *all;
    size_t n;
    CHECK(policy_load_all(&c, &all, &n, err, sizeof err) < 0);
    CHECK(all == NULL);
    char want[128];
    snprintf(want, sizeof want, "%s:6: [service b] max_replicas: '0'", path);
    CHECK(strstr(err, want) == err);
    unlink(path);
    config_free(&c);
}

/* config/scalecast.conf loads as shipped, and its commented-out example
 * services (lines starting with ';') are valid policies once uncommented. */
static void test_example_config(void)
{
    const char *path = SC_SOURCE_DIR "/config/scalecast.conf";
    struct config c;
    char err[512] = "";
    config_defaults(&c);
    CHECK(config_load(&c, path, err, sizeof err) == 0);
    CHECK(c.nservices == 0);
    config_free(&c);

    FILE *in = fopen(path, "r");
    char tmp[] = "/tmp/sc_example_XXXXXX", line[1024];
    int fd = mkstemp(tmp);
    FILE *out = fdopen(fd, "w");
    CHECK(in && out);
    while (in && fgets(line, sizeof line, in)) {
        if (line[0] == ';')
            fputs(line[1] == ' ' ? line + 2 : line + 1, out);
        else
            fputs(line, out);
    }
    if (in)
        fclose(in);
    fclose(out);
    config_defaults(&c);
    CHECK(config_load(&c, tmp, err, sizeof err) == 0);
    struct policy *all = NULL;
    size_t n = 0;
    CHECK(policy_load_all(&c, &all, &n, err, sizeof err) == 0);
    if (err[0])
        fprintf(stderr, "  %s\n", err);
    CHECK(n == 3);
    if (n == 3) {
        CHECK(all[0].target.kind == POLICY_TARGET_SWARM);
        CHECK(all[1].target.kind == POLICY_TARGET_CONTAINERS && all[1].mode == POLICY_DRY_RUN);
        CHECK(all[2].target.kind == POLICY_TARGET_NONE && all[2].source == POLICY_SOURCE_NODES);
    }
    free(all);
    config_free(&c);
    unlink(tmp);
}

/* One data-driven case: the file's first line says what to expect. */
static int run_case(const char *path)
{
    FILE *fp = fopen(path, "r");
    char first[512];
    if (!fp || !fgets(first, sizeof first, fp) || strncmp(first, "# expect: ", 10) != 0) {
        fprintf(stderr, "%s: first line must be '# expect: ok' or '# expect: TEXT'\n", path);
        if (fp)
            fclose(fp);
        return 1;
    }
    fclose(fp);
    char *expect = first + 10;
    expect[strcspn(expect, "\r\n")] = '\0';
    struct config c;
    char err[1024] = "";
    config_defaults(&c);
    int rc = config_load(&c, path, err, sizeof err);
    struct policy *all = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = policy_load_all(&c, &all, &n, err, sizeof err);
    free(all);
    config_free(&c);
    if (strcmp(expect, "ok") == 0) {
        CHECK(rc == 0);
        if (rc != 0)
            fprintf(stderr, "  unexpected error: %s\n", err);
    } else {
        CHECK(rc < 0);
        if (!strstr(err, expect)) {
            unit_failures++;
            fprintf(stderr, "  error \"%s\"\n  lacks \"%s\"\n", err, expect);
        } else {
            fprintf(stderr, "  %s\n", err);
        }
    }
    return UNIT_DONE();
}

int main(int argc, char **argv)
{
    if (argc == 2)
        return run_case(argv[1]);
    RUN(test_defaults);
    RUN(test_values);
    RUN(test_targets);
    RUN(test_load_all);
    RUN(test_example_config);
    return UNIT_DONE();
}
