/* scalecast nodes [NODE]: the nodes reporting to scalecastd and their latest
 * host metrics (GET /api/v1/nodes); with NODE, that node's every metric and
 * its containers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "commands.h"
#include "format.h"
#include "table.h"

static void usage(FILE *fp)
{
    fprintf(fp, "usage: scalecast nodes [NODE] [options]\n"
                "\n"
                "Lists the nodes reporting to scalecastd: state (up, or stale when silent for\n"
                "longer than the server's stale_after), age of the newest sample, and the\n"
                "latest CPU, memory, disk and network figures. With NODE, shows every metric\n"
                "of that node and a table of its containers.\n"
                "\n");
    cli_common_usage(fp);
}

static const char *metric_cell(char *buf, size_t len, json_t *metrics, const char *name)
{
    json_t *v = json_object_get(metrics, name);
    if (!json_is_number(v))
        return "-";
    return fmt_metric(buf, len, name, json_number_value(v));
}

/* "R/W" pairs such as disk read/write bytes per second. */
static const char *pair_cell(char *buf, size_t len, json_t *metrics, const char *a, const char *b)
{
    char x[48], y[48];
    if (!json_object_get(metrics, a) && !json_object_get(metrics, b))
        return "-";
    snprintf(buf, len, "%s/%s", metric_cell(x, sizeof x, metrics, a),
             metric_cell(y, sizeof y, metrics, b));
    return buf;
}

static int print_nodes(json_t *nodes, double now)
{
    static const char *const hdr[] = {"NODE",  "STATE",    "LAST SEEN", "CPU",        "MEM",
                                      "LOAD1", "DISK R/W", "NET RX/TX", "CONTAINERS", NULL};
    struct table *t = table_new(hdr);
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        json_t *m = json_object_get(n, "metrics");
        char age[32], cpu[32], mem[32], load[32], disk[96], net[96], cont[16];
        double seen = 0;
        json_pick_num(&seen, n, "last_seen", NULL);
        snprintf(cont, sizeof cont, "%zu", json_array_size(json_object_get(n, "containers")));
        const char *row[] = {json_string_value(json_object_get(n, "node")),
                             json_string_value(json_object_get(n, "state")),
                             fmt_age(age, sizeof age, now - seen),
                             metric_cell(cpu, sizeof cpu, m, "cpu"),
                             metric_cell(mem, sizeof mem, m, "mem"),
                             metric_cell(load, sizeof load, m, "load1"),
                             pair_cell(disk, sizeof disk, m, "disk_read_bps", "disk_write_bps"),
                             pair_cell(net, sizeof net, m, "net_rx_bps", "net_tx_bps"),
                             cont};
        table_row(t, row);
    }
    if (table_rows(t) == 0) {
        table_print_free(t, stderr);
        fprintf(stderr, "No node has reported yet.\n");
        return 0;
    }
    return table_print_free(t, stdout) < 0 ? CLI_EXIT_FAIL : 0;
}

static int print_node(json_t *n, double now)
{
    char buf[64], age[32];
    double seen = 0;
    json_pick_num(&seen, n, "last_seen", NULL);
    printf("Node:       %s\nState:      %s\nLast seen:  %s (%s ago)\n\nMetrics:\n",
           json_string_value(json_object_get(n, "node")),
           json_string_value(json_object_get(n, "state")), fmt_utc(buf, sizeof buf, seen),
           fmt_age(age, sizeof age, now - seen));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(n, "metrics"), k, v)
    {
        printf("  %-18s %s\n", k, fmt_metric(buf, sizeof buf, k, json_number_value(v)));
    }
    json_t *cs = json_object_get(n, "containers");
    if (json_array_size(cs) == 0) {
        printf("\nContainers: none reported\n");
        return fflush(stdout) ? CLI_EXIT_FAIL : 0;
    }
    printf("\nContainers:\n");
    static const char *const hdr[] = {"CONTAINER", "SERVICE",   "LAST SEEN", "CPU",
                                      "MEM",       "MEM BYTES", NULL};
    struct table *t = table_new(hdr);
    size_t i;
    json_t *c;
    json_array_foreach(cs, i, c)
    {
        json_t *m = json_object_get(c, "metrics");
        char cpu[32], mem[32], bytes[32];
        double cseen = 0;
        json_pick_num(&cseen, c, "last_seen", NULL);
        const char *svc = json_string_value(json_object_get(c, "service"));
        const char *row[] = {json_string_value(json_object_get(c, "container")),
                             svc && *svc ? svc : "-",
                             fmt_age(age, sizeof age, now - cseen),
                             metric_cell(cpu, sizeof cpu, m, "cpu"),
                             metric_cell(mem, sizeof mem, m, "mem"),
                             metric_cell(bytes, sizeof bytes, m, "mem_bytes")};
        table_row(t, row);
    }
    return table_print_free(t, stdout) < 0 ? CLI_EXIT_FAIL : 0;
}

int cmd_nodes(int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    struct cli_common co;
    cli_common_init(&co, "scalecast nodes");
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
        return cli_usage_error(&co, "expected at most one NODE, got %d arguments", argc - optind);
    const char *want = optind < argc ? argv[optind] : NULL;
    char *url = client_url(&co.client, "/api/v1/nodes", NULL);
    json_t *doc;
    int rc = client_get_json(&co.client, url, &doc);
    free(url);
    if (rc) {
        fprintf(stderr, "%s: %s\n", co.cmd, co.client.err);
        return rc;
    }
    json_t *nodes = json_object_get(doc, "nodes");
    json_t *node = NULL;
    if (want) {
        size_t i;
        json_t *n;
        json_array_foreach(nodes, i, n)
        {
            const char *name = json_string_value(json_object_get(n, "node"));
            if (name && strcmp(name, want) == 0)
                node = n;
        }
        if (!node) {
            fprintf(stderr, "%s: no node '%s' has reported to %s\n", co.cmd, want,
                    co.client.server);
            json_decref(doc);
            return CLI_EXIT_FAIL;
        }
    }
    double now = (double)time(NULL);
    if (co.json)
        rc = cli_print_json(node ? node : doc);
    else
        rc = node ? print_node(node, now) : print_nodes(nodes, now);
    json_decref(doc);
    return rc;
}
