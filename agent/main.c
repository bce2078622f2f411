/* scalecast-agent: command line and environment. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "config.h"
#include "log.h"
#include "spool.h"

#define DEFAULT_SERVER "http://127.0.0.1:8080"
#define DEFAULT_SPOOL "data/agent-spool"
#define DEFAULT_SPOOL_MAX (64u << 20)

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: scalecast-agent [OPTIONS]\n"
        "Collects host and per-container metrics and pushes them to scalecastd.\n"
        "\n"
        "  --server URL         scalecastd base URL, http:// or https:// (env SCALECAST_SERVER;\n"
        "                       default " DEFAULT_SERVER ")\n"
        "  --ca-file FILE       https: trust only the CA certificates in FILE (PEM) instead of\n"
        "                       the system's store (env SCALECAST_CA_FILE); the server's\n"
        "                       certificate must name the URL's host; verification cannot be\n"
        "                       turned off\n"
        "  --node ID            node id (env NODE_ID; default: the hostname)\n"
        "  --token TOKEN        bearer token for ingestion (env SCALECAST_TOKEN)\n"
        "  --interval DURATION  time between collections, at least 1s (default 5s)\n"
        "  --batch N            samples per push, 1..100000 (default 1000)\n"
        "  --timeout DURATION   limit per push, connecting included (default 10s)\n"
        "  --spool-dir DIR      on-disk spool (default $STATE_DIRECTORY, else " DEFAULT_SPOOL ")\n"
        "  --spool-max SIZE     spool size limit, oldest samples dropped beyond (default 64MiB)\n"
        "  --flush-timeout DURATION  time allowed to flush the spool at SIGTERM (default 5s)\n"
        "  --proc-root DIR      where procfs is (default /proc)\n"
        "  --sys-root DIR       where sysfs is (default /sys)\n"
        "  --cgroup-root DIR    where the cgroup hierarchies are (default /sys/fs/cgroup)\n"
        "  --docker-socket PATH Docker engine socket (env DOCKER_HOST=unix://PATH; default\n"
        "                       /var/run/docker.sock; \"\" turns container metrics off)\n"
        "  --nvml PATH          NVML library (default libnvidia-ml.so.1; \"\" turns GPUs off)\n"
        "  --log-level LEVEL    debug, info, warn or error (default info)\n"
        "  --once               collect one round, print the JSON body to stdout, exit\n"
        "  --help, --version\n"
        "Durations take s, ms, m or h (\"5\" is 5 s); sizes take KiB, MiB, GiB.\n");
}

static int bad(const char *opt, const char *value, const char *why)
{
    fprintf(stderr, "scalecast-agent: %s '%s': %s\n", opt, value, why);
    return 2;
}

static int node_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return 0;
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("._:-", *s)))
            return 0;
    }
    return 1;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

enum {
    OPT_SERVER = 256,
    OPT_CA_FILE,
    OPT_NODE,
    OPT_TOKEN,
    OPT_INTERVAL,
    OPT_BATCH,
    OPT_TIMEOUT,
    OPT_SPOOL_DIR,
    OPT_SPOOL_MAX,
    OPT_FLUSH,
    OPT_PROC,
    OPT_SYS,
    OPT_CGROUP,
    OPT_DOCKER,
    OPT_NVML,
    OPT_LOG,
    OPT_ONCE,
    OPT_HELP,
    OPT_VERSION
};

/* Built-in defaults, then the environment. */
static void defaults(struct agent_opts *o)
{
    *o = (struct agent_opts){
        .server = env("SCALECAST_SERVER") ? env("SCALECAST_SERVER") : DEFAULT_SERVER,
        .node = env("NODE_ID"),
        .token = env("SCALECAST_TOKEN"),
        .ca_file = env("SCALECAST_CA_FILE"),
        .interval = 5,
        .batch = 1000,
        .timeout = 10,
        .spool_dir = env("STATE_DIRECTORY") ? env("STATE_DIRECTORY") : DEFAULT_SPOOL,
        .spool_max = DEFAULT_SPOOL_MAX,
        .flush_timeout = 5,
        .paths = {"/proc", "/sys", "/sys/fs/cgroup", "/var/run/docker.sock", "libnvidia-ml.so.1"},
    };
    const char *dh = env("DOCKER_HOST");
    if (dh && strncmp(dh, "unix://", 7) == 0)
        o->paths.docker_socket = dh + 7;
    else if (dh)
        fprintf(stderr,
                "scalecast-agent: DOCKER_HOST '%s' is not a unix:// socket; the agent "
                "reads the local engine only, trying /var/run/docker.sock\n",
                dh);
}

/* Applies one option. Returns -1 to go on, or the exit status. */
static int set_option(int opt, const char *arg, struct agent_opts *o, int *once)
{
    long v;
    enum log_level lvl;
    switch (opt) {
    case OPT_SERVER:
        o->server = arg;
        break;
    case OPT_CA_FILE:
        if (!*arg)
            return bad("--ca-file", arg, "must not be empty");
        o->ca_file = arg;
        break;
    case OPT_NODE:
        o->node = arg;
        break;
    case OPT_TOKEN:
        o->token = *arg ? arg : NULL;
        break;
    case OPT_INTERVAL:
        if (config_parse_duration(arg, &o->interval) < 0 || o->interval < 1 || o->interval > 3600)
            return bad("--interval", arg, "must be a duration from 1s to 1h");
        break;
    case OPT_BATCH:
        if (config_parse_int(arg, 1, 100000, &v) < 0)
            return bad("--batch", arg, "must be a whole number from 1 to 100000");
        o->batch = (size_t)v;
        break;
    case OPT_TIMEOUT:
        if (config_parse_duration(arg, &o->timeout) < 0 || o->timeout < 0.1 || o->timeout > 600)
            return bad("--timeout", arg, "must be a duration from 100ms to 10m");
        break;
    case OPT_FLUSH:
        if (config_parse_duration(arg, &o->flush_timeout) < 0 || o->flush_timeout > 600)
            return bad("--flush-timeout", arg, "must be a duration up to 10m");
        break;
    case OPT_SPOOL_DIR:
        if (!*arg)
            return bad("--spool-dir", arg, "must not be empty");
        o->spool_dir = arg;
        break;
    case OPT_SPOOL_MAX:
        if (config_parse_size(arg, &o->spool_max) < 0 || o->spool_max < SPOOL_MIN_BYTES)
            return bad("--spool-max", arg, "must be a size of at least 64KiB");
        break;
    case OPT_PROC:
        o->paths.proc = arg;
        break;
    case OPT_SYS:
        o->paths.sys = arg;
        break;
    case OPT_CGROUP:
        o->paths.cgroup = arg;
        break;
    case OPT_DOCKER:
        o->paths.docker_socket = arg;
        break;
    case OPT_NVML:
        o->paths.nvml = arg;
        break;
    case OPT_LOG:
        if (log_parse_level(arg, &lvl) < 0)
            return bad("--log-level", arg, "must be debug, info, warn or error");
        log_set_level(lvl);
        break;
    case OPT_ONCE:
        *once = 1;
        break;
    case OPT_HELP:
        usage(stdout);
        return 0;
    case OPT_VERSION:
        printf("scalecast-agent %s\n", SCALECAST_VERSION);
        return 0;
    default:
        usage(stderr);
        return 2;
    }
    return -1;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, OPT_SERVER},
        {"ca-file", required_argument, NULL, OPT_CA_FILE},
        {"node", required_argument, NULL, OPT_NODE},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"spool-dir", required_argument, NULL, OPT_SPOOL_DIR},
        {"spool-max", required_argument, NULL, OPT_SPOOL_MAX},
        {"flush-timeout", required_argument, NULL, OPT_FLUSH},
        {"proc-root", required_argument, NULL, OPT_PROC},
        {"sys-root", required_argument, NULL, OPT_SYS},
        {"cgroup-root", required_argument, NULL, OPT_CGROUP},
        {"docker-socket", required_argument, NULL, OPT_DOCKER},
        {"nvml", required_argument, NULL, OPT_NVML},
        {"log-level", required_argument, NULL, OPT_LOG},
        {"once", no_argument, NULL, OPT_ONCE},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct agent_opts o;
    defaults(&o);
    int once = 0, opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int rc = set_option(opt, optarg, &o, &once);
        if (rc >= 0)
            return rc;
    }
    if (optind < argc)
        return bad("argument", argv[optind], "unexpected (see --help)");
    char host[256];
    if (!o.node) {
        if (gethostname(host, sizeof host) < 0 || !host[0]) {
            fprintf(stderr, "scalecast-agent: NODE_ID is not set and the hostname is unknown\n");
            return 2;
        }
        host[sizeof host - 1] = '\0';
        o.node = host;
        if (!once)
            log_info("agent", "NODE_ID not set: using the hostname '%s' as the node id", host);
    }
    if (!node_ok(o.node))
        return bad("node id", o.node, "must be 1-128 characters of A-Z a-z 0-9 . _ : -");
    char err[256];
    if (http_url_parse(o.server, &o.url, err, sizeof err) < 0) {
        fprintf(stderr, "scalecast-agent: %s\n", err);
        return 2;
    }
    if (o.ca_file && !o.url.tls && !once) {
        /* Most likely https:// was meant: say so rather than send in clear. */
        fprintf(stderr,
                "scalecast-agent: a CA file is given (--ca-file or SCALECAST_CA_FILE: %s) but "
                "the server URL '%s' is not https://\n",
                o.ca_file, o.server);
        http_url_free(&o.url);
        return 2;
    }
    int rc = once ? agent_once(&o) : agent_run(&o);
    http_url_free(&o.url);
    return rc;
}
