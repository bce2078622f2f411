/* scalecast forecast NODE METRIC: the predictor's forecast of one series
 * from its recent history (GET /api/v1/forecast). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "config.h"
#include "format.h"

enum {
    OPT_CONTAINER = OPT_COMMAND_FIRST,
    OPT_HORIZON,
    OPT_WINDOW,
    OPT_CONFIDENCE,
    OPT_MODEL,
};

static void usage(FILE *fp)
{
    fprintf(fp, "usage: scalecast forecast NODE METRIC [options]\n"
                "\n"
                "Fits the predictor to the series' recent history on the server and prints the\n"
                "value expected HORIZON ahead of its newest sample with its prediction\n"
                "interval, and the peak expected within the horizon.\n"
                "\n"
                "  -c, --container NAME  a container's series on NODE (default: the host's)\n"
                "      --horizon DUR     how far ahead (default 5m)\n"
                "      --window DUR      history fitted (default 1h)\n"
                "      --confidence C    interval level, 0 < C < 1 (default 0.9)\n"
                "      --model M         last, linear, seasonal, holt or auto (default auto)\n"
                "\n");
    cli_common_usage(fp);
}

static int print_forecast(json_t *f, const char *node, const char *metric, const char *container)
{
    char a[48], b[48], c[48], t[32], h[32];
    double v = NAN, lo = NAN, hi = NAN, conf = 0, horizon = 0, at = 0, last = 0, n = 0;
    json_pick_num(&conf, f, "confidence", NULL);
    json_pick_num(&horizon, f, "horizon", NULL);
    json_pick_num(&last, f, "last_ts", NULL);
    json_pick_num(&n, f, "n", NULL);
    printf("Series:      %s %s%s%s\n", node, metric, container ? " container " : "",
           container ? container : "");
    const char *model = json_string_value(json_object_get(f, "model"));
    json_t *cal = json_object_get(f, "calibrated");
    printf("Model:       %s%s\n", model ? model : "?",
           json_is_boolean(cal) ? (json_is_true(cal) ? " (interval calibrated on its own errors)"
                                                     : " (interval not calibrated yet)")
                                : "");
    printf("History:     %.0f points, newest at %s\n", n, fmt_utc(t, sizeof t, last));
    json_pick_num(&v, f, "value", NULL);
    json_pick_num(&lo, f, "lower", NULL);
    json_pick_num(&hi, f, "upper", NULL);
    json_pick_num(&at, f, "at", NULL);
    printf("Forecast:    %s  [%s, %s]  at %s (+%s), %.0f%% interval\n",
           fmt_metric(a, sizeof a, metric, v), fmt_metric(b, sizeof b, metric, lo),
           fmt_metric(c, sizeof c, metric, hi), fmt_utc(t, sizeof t, at),
           fmt_age(h, sizeof h, horizon), conf * 100);
    if (json_pick_num(&v, f, "peak", NULL)) {
        json_pick_num(&lo, f, "peak_lower", NULL);
        json_pick_num(&hi, f, "peak_upper", NULL);
        double pat = 0;
        json_pick_num(&pat, f, "peak_at", NULL);
        printf("Peak:        %s  [%s, %s]  at %s\n", fmt_metric(a, sizeof a, metric, v),
               fmt_metric(b, sizeof b, metric, lo), fmt_metric(c, sizeof c, metric, hi),
               fmt_utc(t, sizeof t, pat));
    }
    double mae;
    if (json_pick_num(&mae, f, "mae", NULL))
        printf("Error (MAE): %s\n", fmt_metric(a, sizeof a, metric, mae));
    return fflush(stdout) ? CLI_EXIT_FAIL : 0;
}

/* Validates a duration option and gives it as seconds for the server. */
static int duration_param(struct cli_common *co, const char *name, const char *arg, char *buf,
                          size_t len)
{
    double d;
    if (config_parse_duration(arg, &d) < 0 || d <= 0)
        return cli_usage_error(co, "--%s '%s': expected a duration (300, 90s, 5m, 2h)", name, arg);
    snprintf(buf, len, "%.3f", d);
    return 0;
}

int cmd_forecast(int argc, char **argv)
{
    static const struct option opts[] = {{"container", required_argument, NULL, OPT_CONTAINER},
                                         {"horizon", required_argument, NULL, OPT_HORIZON},
                                         {"window", required_argument, NULL, OPT_WINDOW},
                                         {"confidence", required_argument, NULL, OPT_CONFIDENCE},
                                         {"model", required_argument, NULL, OPT_MODEL},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    struct cli_common co;
    cli_common_init(&co, "scalecast forecast");
    const char *container = NULL, *horizon = NULL, *window = NULL, *conf = NULL, *model = NULL;
    char hbuf[32], wbuf[32];
    int opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "c:", opts, NULL)) != -1) {
        int rc = cli_common_option(&co, opt, optarg);
        if (rc != 1) {
            if (rc)
                return rc;
            continue;
        }
        double x;
        switch (opt) {
        case 'c':
        case OPT_CONTAINER:
            container = optarg;
            break;
        case OPT_HORIZON:
            if ((rc = duration_param(&co, "horizon", optarg, hbuf, sizeof hbuf)))
                return rc;
            horizon = hbuf;
            break;
        case OPT_WINDOW:
            if ((rc = duration_param(&co, "window", optarg, wbuf, sizeof wbuf)))
                return rc;
            window = wbuf;
            break;
        case OPT_CONFIDENCE:
            if (config_parse_double(optarg, &x) < 0 || !(x > 0 && x < 1))
                return cli_usage_error(&co, "--confidence '%s': expected a number in (0, 1)",
                                       optarg);
            conf = optarg;
            break;
        case OPT_MODEL:
            model = optarg;
            break;
        }
    }
    if (co.help) {
        usage(stdout);
        return 0;
    }
    if (argc - optind != 2)
        return cli_usage_error(&co, "expected NODE and METRIC, got %d arguments", argc - optind);
    const char *node = argv[optind], *metric = argv[optind + 1];
    const struct client_param params[] = {
        {"node", node},     {"metric", metric},   {"container", container}, {"horizon", horizon},
        {"window", window}, {"confidence", conf}, {"model", model},         {NULL, NULL}};
    char *url = client_url(&co.client, "/api/v1/forecast", params);
    json_t *doc;
    int rc = client_get_json(&co.client, url, &doc);
    free(url);
    if (rc) {
        fprintf(stderr, "%s: %s\n", co.cmd, co.client.err);
        return rc;
    }
    rc = co.json ? cli_print_json(doc) : print_forecast(doc, node, metric, container);
    json_decref(doc);
    return rc;
}
