/* scalecast decisions [SERVICE]: the autoscaler's decision log, newest first
 * (GET /api/v1/decisions). */
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "config.h"
#include "format.h"
#include "table.h"

enum { OPT_LIMIT = OPT_COMMAND_FIRST, OPT_FROM, OPT_TO, OPT_SINCE };

static void usage(FILE *fp)
{
    fprintf(fp, "usage: scalecast decisions [SERVICE] [options]\n"
                "\n"
                "Prints the autoscaler's decisions, newest first: when, for which service,\n"
                "what it did (scale_up, scale_down, hold), replicas before -> after, how it\n"
                "was carried out, and the reason in words.\n"
                "\n"
                "  -n, --limit N         at most N decisions (default 20; the server caps at\n"
                "                        100000)\n"
                "      --since DUR       only the last DUR (30m, 2h, 7d); same as --from -DUR\n"
                "      --from TIME       start: Unix seconds, -DUR, or YYYY-MM-DD[THH:MM[:SS]]Z\n"
                "      --to TIME         end (default now)\n"
                "\n");
    cli_common_usage(fp);
}

static int print_decisions(json_t *list)
{
    static const char *const hdr[] = {"TIME",    "SERVICE", "ACTION", "REPLICAS",
                                      "OUTCOME", "MODE",    "REASON", NULL};
    struct table *t = table_new(hdr);
    size_t i;
    json_t *d;
    json_array_foreach(list, i, d)
    {
        char when[32], repl[48], reason[1200];
        double ts = 0, cur = 0, tgt = 0;
        json_pick_num(&ts, d, "ts", NULL);
        json_pick_num(&cur, d, "current", NULL);
        json_pick_num(&tgt, d, "target", NULL);
        snprintf(repl, sizeof repl, "%.0f -> %.0f", cur, tgt);
        const char *why = json_string_value(json_object_get(d, "reason"));
        const char *err = json_string_value(json_object_get(d, "error"));
        snprintf(reason, sizeof reason, "%s%s%s", why ? why : "", err ? "; error: " : "",
                 err ? err : "");
        const char *row[] = {fmt_utc(when, sizeof when, ts),
                             json_string_value(json_object_get(d, "service")),
                             json_string_value(json_object_get(d, "action")),
                             repl,
                             json_string_value(json_object_get(d, "outcome")),
                             json_string_value(json_object_get(d, "mode")),
                             reason};
        table_row(t, row);
    }
    if (table_rows(t) == 0) {
        table_print_free(t, stderr);
        fprintf(stderr, "No decision in this range.\n");
        return 0;
    }
    return table_print_free(t, stdout) < 0 ? CLI_EXIT_FAIL : 0;
}

int cmd_decisions(int argc, char **argv)
{
    static const struct option opts[] = {{"limit", required_argument, NULL, OPT_LIMIT},
                                         {"since", required_argument, NULL, OPT_SINCE},
                                         {"from", required_argument, NULL, OPT_FROM},
                                         {"to", required_argument, NULL, OPT_TO},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    struct cli_common co;
    cli_common_init(&co, "scalecast decisions");
    const char *limit = "20", *from = NULL, *to = NULL;
    char fbuf[32], tbuf[32];
    int opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "n:", opts, NULL)) != -1) {
        int rc = cli_common_option(&co, opt, optarg);
        if (rc != 1) {
            if (rc)
                return rc;
            continue;
        }
        double x;
        long n;
        switch (opt) {
        case 'n':
        case OPT_LIMIT:
            if (config_parse_int(optarg, 1, 100000, &n) < 0)
                return cli_usage_error(&co, "--limit '%s': expected a whole number 1..100000",
                                       optarg);
            limit = optarg;
            break;
        case OPT_SINCE:
            if (config_parse_duration(optarg, &x) < 0 || x <= 0)
                return cli_usage_error(&co, "--since '%s': expected a duration (30m, 2h, 7d)",
                                       optarg);
            snprintf(fbuf, sizeof fbuf, "%.3f", -x);
            from = fbuf;
            break;
        case OPT_FROM:
            if ((rc = cli_time_option(&co, "from", optarg, fbuf, sizeof fbuf)))
                return rc;
            from = fbuf;
            break;
        case OPT_TO:
            if ((rc = cli_time_option(&co, "to", optarg, tbuf, sizeof tbuf)))
                return rc;
            to = tbuf;
            break;
        }
    }
    if (co.help) {
        usage(stdout);
        return 0;
    }
    if (argc - optind > 1)
        return cli_usage_error(&co, "expected at most one SERVICE, got %d arguments",
                               argc - optind);
    const struct client_param params[] = {{"service", optind < argc ? argv[optind] : NULL},
                                          {"limit", limit},
                                          {"from", from},
                                          {"to", to},
                                          {NULL, NULL}};
    char *url = client_url(&co.client, "/api/v1/decisions", params);
    json_t *doc;
    int rc = client_get_json(&co.client, url, &doc);
    free(url);
    if (rc) {
        fprintf(stderr, "%s: %s\n", co.cmd, co.client.err);
        return rc;
    }
    rc = co.json ? cli_print_json(doc) : print_decisions(json_object_get(doc, "decisions"));
    json_decref(doc);
    return rc;
}
