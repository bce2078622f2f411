/* scalecast status: the autoscaled services, one line each, as
 * `kubectl get hpa` shows HorizontalPodAutoscalers (GET /api/v1/services). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "format.h"
#include "table.h"

static void usage(FILE *fp)
{
    fprintf(fp, "usage: scalecast status [SERVICE] [options]\n"
                "\n"
                "One line per autoscaled service ([service NAME] sections of scalecastd's\n"
                "config): what it scales, the mode (enforce, dry-run, advisory), replica\n"
                "limits, replicas running and last decided, the driving metric against its\n"
                "target, and the forecast upper bound of the metric at its peak within the\n"
                "forecast horizon (per replica, at the current replica count). Engine errors\n"
                "and why a forecast is missing follow on stderr.\n"
                "\n");
    cli_common_usage(fp);
}

static const char *int_cell(char *buf, size_t len, json_t *s, const char *a, const char *b)
{
    double v;
    if (!json_pick_num(&v, s, a, b, NULL))
        return "-";
    snprintf(buf, len, "%.0f", v);
    return buf;
}

static const char *target_cell(char *buf, size_t len, json_t *s)
{
    json_t *t = json_pick(s, "target", "target_str", NULL);
    if (json_is_string(t))
        return json_string_value(t);
    const char *kind = json_string_value(json_object_get(t, "kind"));
    const char *name = json_string_value(json_pick(t, "service", "name", NULL));
    const char *label = json_string_value(json_object_get(t, "label"));
    const char *value = json_string_value(json_object_get(t, "value"));
    if (label && value)
        snprintf(buf, len, "containers:%s=%s", label, value);
    else if (name)
        snprintf(buf, len, "%s:%s", kind ? kind : "swarm", name);
    else
        return kind ? kind : "-";
    return buf;
}

/* "cpu 45.0%/60.0%" as kubectl's TARGETS column; thresholds when the
 * policy has no HPA target ("cpu 45.0%/>80.0%"). */
static const char *metric_cell(char *buf, size_t len, json_t *s)
{
    const char *metric = json_string_value(json_pick(s, "metric", "metric.name", NULL));
    double v, target;
    char a[48] = "<unknown>", b[48] = "-";
    if (json_pick_num(&v, s, "metric_value", "value", "metric.value", NULL))
        fmt_metric(a, sizeof a, metric, v);
    if (json_pick_num(&target, s, "target_value", "target_utilization", NULL)) {
        fmt_metric(b, sizeof b, metric, target);
    } else if (json_pick_num(&target, s, "scale_up_above", "thresholds.scale_up_above", NULL)) {
        char t[40];
        snprintf(b, sizeof b, ">%s", fmt_metric(t, sizeof t, metric, target));
    }
    snprintf(buf, len, "%s %s/%s", metric ? metric : "?", a, b);
    return buf;
}

/* The forecast's upper bound of the metric at its peak within the horizon,
 * with the horizon: "71.3% in 5m". */
static const char *forecast_cell(char *buf, size_t len, json_t *s)
{
    const char *metric = json_string_value(json_pick(s, "metric", "metric.name", NULL));
    double up, horizon;
    char a[48], h[32];
    if (!json_pick_num(&up, s, "forecast_upper", "forecast.upper", NULL))
        return json_is_string(json_object_get(s, "forecast_why")) ? "n/a" : "-";
    fmt_metric(a, sizeof a, metric, up);
    if (json_pick_num(&horizon, s, "forecast.horizon", NULL))
        snprintf(buf, len, "%s in %s", a, fmt_age(h, sizeof h, horizon));
    else
        snprintf(buf, len, "%s", a);
    return buf;
}

static int print_services(json_t *list, const char *only)
{
    static const char *const hdr[] = {"SERVICE",  "TARGET",  "MODE",          "MIN",      "MAX",
                                      "REPLICAS", "DESIRED", "METRIC/TARGET", "FORECAST", NULL};
    struct table *t = table_new(hdr);
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        const char *name = json_string_value(json_pick(s, "service", "name", NULL));
        if (only && (!name || strcmp(name, only) != 0))
            continue;
        char tgt[300], mn[16], mx[16], cur[16], des[16], met[128], fc[96];
        const char *row[] = {name,
                             target_cell(tgt, sizeof tgt, s),
                             json_string_value(json_object_get(s, "mode")),
                             int_cell(mn, sizeof mn, s, "min_replicas", "min"),
                             int_cell(mx, sizeof mx, s, "max_replicas", "max"),
                             int_cell(cur, sizeof cur, s, "current_replicas", "replicas"),
                             int_cell(des, sizeof des, s, "desired_replicas", "desired"),
                             metric_cell(met, sizeof met, s),
                             forecast_cell(fc, sizeof fc, s)};
        table_row(t, row);
    }
    size_t rows = table_rows(t);
    if (rows == 0) {
        table_print_free(t, stderr);
        if (only) {
            fprintf(stderr, "No autoscaled service '%s'.\n", only);
            return CLI_EXIT_FAIL;
        }
        fprintf(stderr, "No autoscaled service: add [service NAME] sections to scalecastd's "
                        "config.\n");
        return 0;
    }
    if (table_print_free(t, stdout) < 0)
        return CLI_EXIT_FAIL;
    /* What the table has no room for: why a forecast or the engine failed. */
    json_array_foreach(list, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "service"));
        const char *err = json_string_value(json_object_get(s, "last_error"));
        const char *why = json_string_value(json_object_get(s, "forecast_why"));
        if (!name || (only && strcmp(name, only) != 0))
            continue;
        if (err)
            fprintf(stderr, "%s: last error: %s\n", name, err);
        if (why)
            fprintf(stderr, "%s: no forecast: %s\n", name, why);
    }
    return 0;
}

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    struct cli_common co;
    cli_common_init(&co, "scalecast status");
    int opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, opts, NULL)) != -1) {
        int rc = cli_common_option(&co, opt, optarg);
        if (rc)
            return rc == 1 ? CLI_EXIT_USAGE : rc;
    }
    if (co.help) {
        usage(stdout);
        return 0;
    }
    if (argc - optind > 1)
        return cli_usage_error(&co, "expected at most one SERVICE, got %d arguments",
                               argc - optind);
    char *url = client_url(&co.client, "/api/v1/services", NULL);
    json_t *doc;
    int rc = client_get_json(&co.client, url, &doc);
    free(url);
    if (rc) {
        fprintf(stderr, "%s: %s\n", co.cmd, co.client.err);
        return rc;
    }
    rc = co.json ? cli_print_json(doc)
                 : print_services(json_object_get(doc, "services"),
                                  optind < argc ? argv[optind] : NULL);
    json_decref(doc);
    return rc;
}
