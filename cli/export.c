/* scalecast export: the stored samples as CSV on stdout, streamed from
 * GET /api/v1/export.csv as they arrive (memory stays bounded whatever the
 * range), with a progress line on a terminal's stderr. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "progress.h"

enum {
    OPT_NODE = OPT_COMMAND_FIRST,
    OPT_METRIC,
    OPT_CONTAINER,
    OPT_SERVICE,
    OPT_FROM,
    OPT_TO,
    OPT_OUTPUT,
    OPT_NO_PROGRESS,
};

static void usage(FILE *fp)
{
    fprintf(fp, "usage: scalecast export [options] > samples.csv\n"
                "\n"
                "Writes the stored samples as CSV (ts,node,container,service,metric,value),\n"
                "ordered by series then time, as the server streams them. When stderr is a\n"
                "terminal and the CSV goes elsewhere, a progress line shows bytes and rows.\n"
                "\n"
                "  --node NODE           one node (a glob such as 'web-*' works too)\n"
                "  --metric METRIC       one metric (cpu, mem, ...)\n"
                "  --container NAME      one container's series\n"
                "  --service NAME        the containers of one service\n"
                "  --from TIME           start: Unix seconds, -DUR (-2h, -7d) or\n"
                "                        YYYY-MM-DD[THH:MM[:SS]][Z] (default: the beginning)\n"
                "  --to TIME             end (default now)\n"
                "  -o, --output FILE     write to FILE instead of stdout\n"
                "      --no-progress     never draw the progress line\n"
                "\n");
    cli_common_usage(fp);
}

struct export_progress {
    struct progress *bar;
};

static void on_progress(void *arg, uint64_t bytes, uint64_t lines, int done)
{
    struct export_progress *ep = arg;
    char rows[48];
    /* The first line is the CSV header. */
    snprintf(rows, sizeof rows, "%llu rows", (unsigned long long)(lines ? lines - 1 : 0));
    progress_update(ep->bar, bytes, rows);
}

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {{"node", required_argument, NULL, OPT_NODE},
                                         {"metric", required_argument, NULL, OPT_METRIC},
                                         {"container", required_argument, NULL, OPT_CONTAINER},
                                         {"service", required_argument, NULL, OPT_SERVICE},
                                         {"from", required_argument, NULL, OPT_FROM},
                                         {"to", required_argument, NULL, OPT_TO},
                                         {"output", required_argument, NULL, OPT_OUTPUT},
                                         {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
                                         CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    struct cli_common co;
    cli_common_init(&co, "scalecast export");
    const char *node = NULL, *metric = NULL, *container = NULL, *service = NULL;
    const char *from = NULL, *to = NULL, *output = NULL;
    char fbuf[32], tbuf[32];
    bool progress = true;
    int opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "o:", opts, NULL)) != -1) {
        int rc = cli_common_option(&co, opt, optarg);
        if (rc != 1) {
            if (rc)
                return rc;
            continue;
        }
        switch (opt) {
        case OPT_NODE:
            node = optarg;
            break;
        case OPT_METRIC:
            metric = optarg;
            break;
        case OPT_CONTAINER:
            container = optarg;
            break;
        case OPT_SERVICE:
            service = optarg;
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
        case 'o':
        case OPT_OUTPUT:
            output = optarg;
            break;
        case OPT_NO_PROGRESS:
            progress = false;
            break;
        }
    }
    if (co.help) {
        usage(stdout);
        return 0;
    }
    if (co.json)
        return cli_usage_error(&co, "the export is CSV; --json does not apply (use 'scalecast "
                                    "nodes --json' or the /api/v1/series endpoint for JSON)");
    if (optind < argc)
        return cli_usage_error(&co, "unexpected argument '%s'", argv[optind]);
    FILE *out = stdout;
    if (output && !(out = fopen(output, "w"))) {
        fprintf(stderr, "%s: cannot write %s: %s\n", co.cmd, output, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    const struct client_param params[] = {
        {"node", node},       {"metric", metric}, {"container", container},
        {"service", service}, {"from", from},     {"to", to},
        {NULL, NULL}};
    char *url = client_url(&co.client, "/api/v1/export.csv", params);
    struct export_progress ep = {progress ? progress_new("export", PROGRESS_BYTES, 0, out) : NULL};
    int rc = client_stream(&co.client, url, out, on_progress, &ep);
    progress_finish(ep.bar);
    free(url);
    if (out != stdout && fclose(out) != 0 && rc == 0) {
        snprintf(co.client.err, sizeof co.client.err, "writing %s failed: %s", output,
                 strerror(errno));
        rc = CLI_EXIT_FAIL;
    }
    if (rc)
        fprintf(stderr, "%s: %s\n", co.cmd, co.client.err);
    return rc;
}
