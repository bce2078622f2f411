/* Shared options and value parsing of the REST commands. */
#include "args.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "config.h"

void cli_common_init(struct cli_common *co, const char *cmd)
{
    memset(co, 0, sizeof *co);
    co->cmd = cmd;
    const char *server = getenv("SCALECAST_SERVER");
    const char *token = getenv("SCALECAST_TOKEN");
    co->client.server = server && *server ? server : CLI_DEFAULT_SERVER;
    co->client.token = token && *token ? token : NULL;
    co->client.timeout = 30;
}

int cli_usage_error(const struct cli_common *co, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", co->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun '%s --help' for usage.\n", co->cmd);
    return CLI_EXIT_USAGE;
}

int cli_common_option(struct cli_common *co, int opt, const char *arg)
{
    switch (opt) {
    case OPT_SERVER:
        if (strncmp(arg, "http://", 7) != 0 && strncmp(arg, "https://", 8) != 0)
            return cli_usage_error(co, "--server '%s': expected http://HOST:PORT or https://...",
                                   arg);
        co->client.server = arg;
        return 0;
    case OPT_TOKEN:
        co->client.token = *arg ? arg : NULL;
        return 0;
    case OPT_JSON:
        co->json = true;
        return 0;
    case OPT_TIMEOUT:
        if (config_parse_duration(arg, &co->client.timeout) < 0 || co->client.timeout <= 0)
            return cli_usage_error(co, "--timeout '%s': expected a duration (30, 30s, 2m)", arg);
        return 0;
    case OPT_HELP:
        co->help = true;
        return 0;
    case '?':
        /* getopt_long has said what was wrong. */
        fprintf(stderr, "Run '%s --help' for usage.\n", co->cmd);
        return CLI_EXIT_USAGE;
    default:
        return 1;
    }
}

void cli_common_usage(FILE *fp)
{
    fprintf(fp, "common options:\n"
                "  -s, --server URL      scalecastd's address (env SCALECAST_SERVER,\n"
                "                        default " CLI_DEFAULT_SERVER ")\n"
                "      --token TOKEN     bearer token (env SCALECAST_TOKEN)\n"
                "      --json            print the server's JSON answer instead of a table\n"
                "      --timeout DUR     give up on the server after DUR (default 30s)\n"
                "  -h, --help            this help\n"
                "\n"
                "exit status: 0 ok, 1 the work failed, 2 usage error, 3 server unreachable or\n"
                "answered an error\n");
}

int cli_parse_time(const char *s, double *out)
{
    if (config_parse_double(s, out) == 0)
        return 0;
    double d;
    if (s[0] == '-' && config_parse_duration(s + 1, &d) == 0) {
        *out = -d;
        return 0;
    }
    static const char *const formats[] = {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M",
                                          "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        struct tm tm = {0};
        const char *end = strptime(s, formats[i], &tm);
        if (end && (*end == '\0' || (end[0] == 'Z' && end[1] == '\0'))) {
            *out = (double)timegm(&tm);
            return 0;
        }
    }
    return -1;
}

int cli_time_option(const struct cli_common *co, const char *opt, const char *arg, char *buf,
                    size_t len)
{
    double t;
    if (cli_parse_time(arg, &t) < 0)
        return cli_usage_error(co,
                               "--%s '%s': expected Unix seconds, -DURATION (-2h) or a UTC "
                               "date YYYY-MM-DD[THH:MM[:SS]][Z]",
                               opt, arg);
    snprintf(buf, len, "%.3f", t);
    return 0;
}

int cli_print_json(json_t *doc)
{
    if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 ||
        fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
        perror("scalecast: writing the output");
        return CLI_EXIT_FAIL;
    }
    return 0;
}
