/* scalecastd: the central server. Receives samples, stores them, answers
 * queries, and runs the autoscaler. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <gsl/gsl_errno.h>

#include "config.h"
#include "log.h"
#include "scaler.h"
#include "server.h"
#include "store.h"
#include "xalloc.h"

static void usage(FILE *fp)
{
    fprintf(fp, "usage: scalecastd [--config FILE] [--listen HOST:PORT] [--db PATH]\n"
                "                  [--log-level debug|info|warn|error]\n"
                "\n"
                "Receives metric samples from scalecast agents over HTTP, stores them in\n"
                "SQLite, answers queries and runs the autoscaler.\n"
                "\n"
                "  -c, --config FILE      configuration file (INI); without it, built-in defaults\n"
                "  -l, --listen HOST:PORT listen address (default 127.0.0.1:8080)\n"
                "  -d, --db PATH          database file (default data/scalecast.db)\n"
                "      --log-level LEVEL  debug, info, warn or error (default info)\n"
                "  -h, --help             this help\n"
                "  -V, --version          print the version\n"
                "\n"
                "Flags override the file. See config/scalecast.conf for every setting.\n");
}

/* Creates the database's directory if it is missing (one level, like the
 * default data/), so a fresh checkout runs without a manual mkdir. */
static int ensure_parent_dir(const char *path, char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    struct stat sb;
    if (stat(dir, &sb) == 0)
        return 0;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create directory %s for the database: %s", dir,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* The HTTP front's view of the autoscaler (GET /api/v1/services). */
static json_t *services_status(void *arg)
{
    return scaler_services_json(arg);
}

/* Thousands of agents hold connections open: use every descriptor the
 * hard limit allows rather than the usual soft 1024. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    enum { OPT_LOG_LEVEL = 256 };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"db", required_argument, NULL, 'd'},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *listen = NULL, *db = NULL, *level = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:l:d:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case OPT_LOG_LEVEL:
            level = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("scalecastd %s\n", SCALECAST_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "scalecastd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    struct config cfg;
    char err[1024];
    config_defaults(&cfg);
    if (config_path && config_load(&cfg, config_path, err, sizeof err) < 0) {
        fprintf(stderr, "scalecastd: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    if (listen) {
        free(cfg.server.listen);
        cfg.server.listen = xstrdup(listen);
    }
    if (db) {
        free(cfg.server.db);
        cfg.server.db = xstrdup(db);
    }
    if (level && log_parse_level(level, &cfg.server.log_level) < 0) {
        fprintf(stderr, "scalecastd: --log-level '%s': expected debug, info, warn or error\n",
                level);
        config_free(&cfg);
        return 2;
    }
    log_set_level(cfg.server.log_level);
    /* GSL's default error handler aborts the process; the predictor checks
     * every GSL status itself, so a numerical failure in one forecast must
     * come back as an error for that request, not take the server down. */
    gsl_set_error_handler_off();
    raise_fd_limit();
    log_info("main", "scalecastd %s starting (config: %s)", SCALECAST_VERSION,
             cfg.path ? cfg.path : "built-in defaults");

    int rc = 1;
    struct store *st = NULL;
    struct server *srv = NULL;
    struct scaler *sc = NULL;
    if (ensure_parent_dir(cfg.server.db, err, sizeof err) < 0)
        goto fail;
    struct store_opts so = {cfg.server.db, cfg.server.sync_full, cfg.server.retention};
    if (store_open(&so, &st, err, sizeof err) < 0)
        goto fail;
    if (server_create(&cfg, st, &srv, err, sizeof err) < 0)
        goto fail;
    if (scaler_start(&cfg, st, &sc, err, sizeof err) < 0)
        goto fail;
    server_set_services(srv, services_status, sc);
    server_run(srv);
    log_info("main", "stopping: autoscaler, then committing pending writes");
    scaler_stop(sc);
    /* The store first: its writer may still report to the server. */
    store_close(st);
    server_free(srv);
    log_info("main", "stopped cleanly");
    config_free(&cfg);
    return 0;
fail:
    log_error("main", "%s", err);
    scaler_stop(sc);
    store_close(st);
    server_free(srv);
    config_free(&cfg);
    return rc;
}
