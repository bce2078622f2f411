/* scalecast backtest autoscale: replay a recorded trace as a service's demand
 * through its policy (autoscaler/simulate.h) and print what it would have
 * cost, with the policy's forecast and without. Only argument parsing, file
 * reading and printing live here. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "progress.h"
#include "config.h"
#include "policy.h"
#include "simulate.h"
#include "trace.h"
#include "xalloc.h"

static const char *prog = "scalecast backtest autoscale";

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: %s TRACE.csv --config FILE --service NAME [options]\n"
            "\n"
            "Replays the trace as the demand of a simulated service scaled by the policy of\n"
            "[service NAME], once as configured and once with forecasts off, and prints the\n"
            "time over the scale-up threshold, the time with demand above the serving\n"
            "capacity, the replica-hours and the number of scale actions.\n"
            "Model: demand = value x scale / 100 replicas (value x scale with --unit\n"
            "fraction); utilization = demand / ready replicas; a started replica serves\n"
            "after the start-up delay (docs/autoscaler.md).\n"
            "\n"
            "simulation:\n"
            "  --scale X             replicas' worth of work at 100%% (default 10)\n"
            "  --unit percent|fraction  unit of the trace's values (default percent)\n"
            "  --startup-delay SECS  seconds before a new replica serves (default 120)\n"
            "  --initial-replicas N  replicas at the start (default: what the policy's\n"
            "                        target asks for the first value)\n"
            "  --forecast off|MODEL  override the policy's forecast key (off, auto, or a\n"
            "                        model of the predictor: last, linear, seasonal, ...)\n"
            "trace:\n"
            "  --column NAME|N       value column by header name or 1-based number\n"
            "  --time-column NAME    timestamp column (default: auto-detected)\n"
            "  --interval SECONDS    spacing of rows when the file has no timestamp column\n"
            "output:\n"
            "  --csv FILE            per-step rows of the policy as configured:\n"
            "                        ts,demand,replicas,utilization,forecast,desired,action\n"
            "  --tsv                 print the figures as tab-separated values\n",
            prog);
}

struct args {
    const char *trace, *config, *service, *csv, *forecast;
    struct trace_opts topts;
    struct sim_opts sim;
    double scale;
    int fraction;
    int tsv;
};

static int parse_num(const char *opt, const char *s, double lo, double hi, double *out)
{
    double x;
    if (config_parse_double(s, &x) < 0 || x < lo || x > hi) {
        fprintf(stderr, "%s: %s: '%s' is not a number in [%g, %g]\n", prog, opt, s, lo, hi);
        return -EINVAL;
    }
    *out = x;
    return 0;
}

enum {
    OPT_CONFIG = 1000,
    OPT_SERVICE,
    OPT_SCALE,
    OPT_UNIT,
    OPT_STARTUP,
    OPT_INITIAL,
    OPT_FORECAST,
    OPT_COLUMN,
    OPT_TIMECOL,
    OPT_INTERVAL,
    OPT_CSV,
    OPT_TSV,
    OPT_HELP,
};

static int set_option(struct args *a, int opt, const char *arg)
{
    double x;
    long k;
    switch (opt) {
    case OPT_CONFIG:
        a->config = arg;
        return 0;
    case OPT_SERVICE:
        a->service = arg;
        return 0;
    case OPT_SCALE:
        return parse_num("--scale", arg, 1e-9, 1e6, &a->scale);
    case OPT_UNIT:
        if (strcmp(arg, "percent") != 0 && strcmp(arg, "fraction") != 0) {
            fprintf(stderr, "%s: --unit: '%s': expected percent or fraction\n", prog, arg);
            return -EINVAL;
        }
        a->fraction = strcmp(arg, "fraction") == 0;
        return 0;
    case OPT_STARTUP:
        if (config_parse_duration(arg, &x) < 0) {
            fprintf(stderr, "%s: --startup-delay: '%s' is not a duration\n", prog, arg);
            return -EINVAL;
        }
        a->sim.startup_delay = x;
        return 0;
    case OPT_INITIAL:
        if (config_parse_int(arg, 1, 100000, &k) < 0) {
            fprintf(stderr, "%s: --initial-replicas: '%s' is not a number 1..100000\n", prog, arg);
            return -EINVAL;
        }
        a->sim.initial_replicas = (int)k;
        return 0;
    case OPT_FORECAST:
        a->forecast = arg;
        return 0;
    case OPT_COLUMN:
        if (config_parse_int(arg, 1, 100000, &k) == 0)
            a->topts.column_index = (int)k;
        else
            a->topts.column = arg;
        return 0;
    case OPT_TIMECOL:
        a->topts.time_col = arg;
        return 0;
    case OPT_INTERVAL:
        return parse_num("--interval", arg, 1e-6, 1e9, &a->topts.interval);
    case OPT_CSV:
        a->csv = arg;
        return 0;
    case OPT_TSV:
        a->tsv = 1;
        return 0;
    }
    return -EINVAL;
}

/* Returns 0, 1 for --help (exit 0), or -EINVAL (usage error). */
static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"service", required_argument, NULL, OPT_SERVICE},
        {"scale", required_argument, NULL, OPT_SCALE},
        {"unit", required_argument, NULL, OPT_UNIT},
        {"startup-delay", required_argument, NULL, OPT_STARTUP},
        {"initial-replicas", required_argument, NULL, OPT_INITIAL},
        {"forecast", required_argument, NULL, OPT_FORECAST},
        {"column", required_argument, NULL, OPT_COLUMN},
        {"time-column", required_argument, NULL, OPT_TIMECOL},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"csv", required_argument, NULL, OPT_CSV},
        {"tsv", no_argument, NULL, OPT_TSV},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    trace_opts_default(&a->topts);
    sim_opts_default(&a->sim);
    a->scale = 10;
    optind = 1;
    opterr = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (opt == 'h' || opt == OPT_HELP)
            return 1;
        if (opt == '?' || set_option(a, opt, optarg) < 0)
            return -EINVAL;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "%s: expected exactly one TRACE.csv\n", prog);
        return -EINVAL;
    }
    a->trace = argv[optind];
    if (!a->config || !a->service) {
        fprintf(stderr, "%s: --config FILE and --service NAME are required\n", prog);
        return -EINVAL;
    }
    return 0;
}

/* The section with `forecast = VALUE` set (replaced or added), so that the
 * --forecast override is validated like the key itself. New kv array; the
 * strings stay borrowed. */
static struct config_section with_forecast(const struct config_section *sec, const char *value)
{
    struct config_section s = *sec;
    s.kv = xcalloc(sec->nkv + 1, sizeof *s.kv);
    memcpy(s.kv, sec->kv, sec->nkv * sizeof *s.kv);
    size_t i = 0;
    while (i < s.nkv && strcmp(s.kv[i].key, "forecast") != 0)
        i++;
    if (i == s.nkv)
        s.kv[s.nkv++] = (struct config_kv){"forecast", NULL, sec->line};
    s.kv[i].value = (char *)value;
    return s;
}

/* Reads the policy of [service NAME] from the config file. */
static int load_policy(const struct args *a, struct policy *p)
{
    struct config c;
    char err[1024];
    config_defaults(&c);
    int rc = config_load(&c, a->config, err, sizeof err);
    const struct config_section *sec = rc == 0 ? config_service(&c, a->service) : NULL;
    if (rc == 0 && !sec) {
        snprintf(err, sizeof err, "%s: no [service %s] section", a->config, a->service);
        rc = -1;
    }
    if (rc == 0 && a->forecast) {
        struct config_section s = with_forecast(sec, a->forecast);
        rc = policy_from_section(&s, c.path, p, err, sizeof err);
        free(s.kv);
        if (rc < 0)
            fprintf(stderr, "%s: with --forecast %s:\n", prog, a->forecast);
    } else if (rc == 0) {
        rc = policy_from_section(sec, c.path, p, err, sizeof err);
    }
    config_free(&c);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return -EINVAL;
    }
    return 0;
}

static void csv_row(void *arg, const struct sim_step *s, const struct decision *d)
{
    FILE *fp = arg;
    (void)d;
    fprintf(fp, "%.3f,%.6g,%d,%.6g,", s->ts, s->demand, s->replicas, s->utilization);
    if (isfinite(s->forecast))
        fprintf(fp, "%.6g", s->forecast);
    fprintf(fp, ",%d,%s\n", s->desired, decide_action_name(s->action));
}

/* Each simulated step: the CSV row (when asked for) and the progress line. */
struct step_ctx {
    FILE *csv;
    struct progress *bar;
    size_t done;
};

static void on_step(void *arg, const struct sim_step *s, const struct decision *d)
{
    struct step_ctx *c = arg;
    if (c->csv)
        csv_row(c->csv, s, d);
    if ((++c->done & 1023) == 0)
        progress_update(c->bar, c->done, NULL);
}

static double pct_change(double with, double without)
{
    return without > 0 ? 100 * (with - without) / without : (with > 0 ? INFINITY : 0);
}

static void print_table(const struct args *a, const struct policy *p, const struct trace *t,
                        const struct sim_result *on, const struct sim_result *off)
{
    char fc[64];
    snprintf(fc, sizeof fc, "forecast %s", p->forecast ? p->forecast_model : "off");
    if (a->tsv) {
        printf("trace\tpolicy\tover_threshold_h\tabove_capacity_h\treplica_hours\tactions\n");
        printf("%s\t%s\t%.3f\t%.3f\t%.2f\t%d\n", a->trace, fc, on->over_threshold_s / 3600,
               on->above_capacity_s / 3600, on->replica_hours, on->actions);
        printf("%s\tforecast off\t%.3f\t%.3f\t%.2f\t%d\n", a->trace, off->over_threshold_s / 3600,
               off->above_capacity_s / 3600, off->replica_hours, off->actions);
        return;
    }
    printf("trace: %s (%zu points over %.1f days)\n", a->trace, t->n,
           (t->ts[t->n - 1] - t->ts[0]) / 86400);
    printf("service %s: target %s, min %d, max %d, startup delay %g s, scale %g\n", p->name,
           p->has_target ? "on" : "off", p->min_replicas, p->max_replicas, a->sim.startup_delay,
           a->scale);
    printf("%-34s %14s %14s %9s\n", "", fc, "forecast off", "change");
    printf("%-34s %14.2f %14.2f %8.1f%%\n", "time over threshold (h)", on->over_threshold_s / 3600,
           off->over_threshold_s / 3600, pct_change(on->over_threshold_s, off->over_threshold_s));
    printf("%-34s %14.2f %14.2f %8.1f%%\n", "time demand above capacity (h)",
           on->above_capacity_s / 3600, off->above_capacity_s / 3600,
           pct_change(on->above_capacity_s, off->above_capacity_s));
    printf("%-34s %14.1f %14.1f %8.1f%%\n", "replica-hours", on->replica_hours, off->replica_hours,
           pct_change(on->replica_hours, off->replica_hours));
    printf("%-34s %14d %14d\n", "scale actions", on->actions, off->actions);
    printf("%-34s %14d %14d\n", "peak replicas", on->peak_replicas, off->peak_replicas);
    printf("(threshold: utilization above %g%%; simulated %.1f h)\n", on->threshold,
           on->seconds / 3600);
}

int cmd_backtest_autoscale(int argc, char **argv)
{
    struct args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    struct policy p;
    if (load_policy(&a, &p) < 0)
        return 2;
    struct trace t;
    char err[1024];
    if (trace_load(a.trace, &a.topts, &t, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 1;
    }
    double *demand = xmalloc(t.n * sizeof *demand);
    int status = 1;
    FILE *csv = NULL;
    for (size_t i = 0; i < t.n; i++) {
        demand[i] = t.v[i] * a.scale / (a.fraction ? 1 : 100);
        if (demand[i] < 0) {
            fprintf(stderr, "%s: %s: value %g at t=%.0f is negative\n", prog, a.trace, t.v[i],
                    t.ts[i]);
            goto out;
        }
    }
    if (a.csv) {
        csv = fopen(a.csv, "w");
        if (!csv) {
            fprintf(stderr, "%s: %s: %s\n", prog, a.csv, strerror(errno));
            goto out;
        }
        fprintf(csv, "ts,demand,replicas,utilization,forecast,desired,action\n");
    }
    struct sim_result on, off;
    struct policy nofc = p;
    nofc.forecast = false;
    /* Two replays (as configured, forecasts off): one progress line. */
    struct step_ctx sc = {csv, progress_new("backtest", PROGRESS_COUNT, 2 * (uint64_t)t.n, NULL),
                          0};
    struct step_ctx sc_off = sc;
    int sim_rc = sim_run(&p, t.ts, demand, t.n, &a.sim, on_step, &sc, &on);
    sc_off.csv = NULL;
    sc_off.done = sc.done;
    if (sim_rc == 0)
        sim_rc = sim_run(&nofc, t.ts, demand, t.n, &a.sim, on_step, &sc_off, &off);
    progress_finish(sc.bar);
    if (sim_rc < 0) {
        fprintf(stderr, "%s: %s: the trace cannot be simulated (bad times or values)\n", prog,
                a.trace);
        goto out;
    }
    if (csv && fclose(csv) != 0) {
        csv = NULL;
        fprintf(stderr, "%s: %s: %s\n", prog, a.csv, strerror(errno));
        goto out;
    }
    csv = NULL;
    print_table(&a, &p, &t, &on, &off);
    status = 0;
out:
    if (csv)
        fclose(csv);
    free(demand);
    trace_free(&t);
    return status;
}
