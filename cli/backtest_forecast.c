/* scalecast backtest forecast: replay a recorded trace through the predictor
 * (predictor/backtest.h) and print per-model scores. Only argument parsing,
 * file reading and printing live here. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backtest.h"
#include "commands.h"
#include "config.h"
#include "predictor.h"
#include "progress.h"
#include "trace.h"

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "usage: scalecast backtest forecast TRACE.csv [options]\n"
        "\n"
        "Forecasts every sample of the trace from the history before it and prints,\n"
        "per model and reference baseline: MAE, MASE against the last value, and the\n"
        "share of actual values inside the prediction interval (coverage).\n"
        "\n"
        "trace:\n"
        "  --column NAME|N       value column by header name or 1-based number\n"
        "  --time-column NAME    timestamp column (default: auto-detected)\n"
        "  --interval SECONDS    spacing of rows when the file has no timestamp column\n"
        "forecast:\n"
        "  --horizon STEPS       samples ahead (default 1)\n"
        "  --confidence C        interval level, 0 < C < 1 (default 0.9)\n"
        "  --model M             last|linear|seasonal|holt|auto: whose rows --csv writes\n"
        "                        (default auto)\n"
        "  --window SECONDS      history each forecast sees (default 345600, 4 days)\n"
        "  --warmup SECONDS      history before scoring starts (default max(window, 2 periods))\n"
        "  --period SECONDS      seasonal period (default 86400)\n"
        "  --harmonics K         Fourier pairs of the seasonal model (default 3)\n"
        "  --eval-points N       rolling-origin forecasts auto scores (default 576)\n"
        "output:\n"
        "  --csv FILE            per-step rows: ts,actual,forecast,lower,upper,model\n"
        "  --tsv                 print the table as tab-separated values\n");
}

struct args {
    const char *path, *csv;
    struct trace_opts topts;
    struct bt_opts bt;
    int tsv;
};

static int parse_num(const char *opt, const char *s, double lo, double hi, double *out)
{
    double x;
    if (config_parse_double(s, &x) < 0 || x < lo || x > hi) {
        fprintf(stderr, "scalecast backtest forecast: %s: '%s' is not a number in [%g, %g]\n", opt,
                s, lo, hi);
        return -EINVAL;
    }
    *out = x;
    return 0;
}

static int parse_column(const char *s, struct trace_opts *t)
{
    long k;
    if (config_parse_int(s, 1, 100000, &k) == 0)
        t->column_index = (int)k;
    else
        t->column = s;
    return 0;
}

enum {
    OPT_COLUMN = 1000,
    OPT_TIMECOL,
    OPT_INTERVAL,
    OPT_HORIZON,
    OPT_CONF,
    OPT_MODEL,
    OPT_WINDOW,
    OPT_WARMUP,
    OPT_PERIOD,
    OPT_HARM,
    OPT_EVAL,
    OPT_CSV,
    OPT_TSV,
};

static int parse_opt(int c, const char *arg, struct args *a)
{
    double x;
    struct pred_opts *p = &a->bt.pred;
    switch (c) {
    case OPT_COLUMN:
        return parse_column(arg, &a->topts);
    case OPT_TIMECOL:
        a->topts.time_col = arg;
        return 0;
    case OPT_INTERVAL:
        return parse_num("--interval", arg, 1e-6, 1e9, &a->topts.interval);
    case OPT_HORIZON:
        if (parse_num("--horizon", arg, 1, 1e6, &x) < 0)
            return -EINVAL;
        a->bt.steps = (size_t)x;
        return 0;
    case OPT_CONF:
        if (parse_num("--confidence", arg, 0, 1, &p->confidence) < 0 || p->confidence <= 0 ||
            p->confidence >= 1) {
            fprintf(stderr, "scalecast backtest forecast: --confidence must be in (0, 1)\n");
            return -EINVAL;
        }
        return 0;
    case OPT_MODEL:
        if (pred_model_parse(arg, &a->bt.rows_model) < 0) {
            fprintf(stderr, "scalecast backtest forecast: --model: unknown model '%s'\n", arg);
            return -EINVAL;
        }
        return 0;
    case OPT_WINDOW:
        return parse_num("--window", arg, 1, 1e9, &a->bt.window);
    case OPT_WARMUP:
        return parse_num("--warmup", arg, 0, 1e10, &a->bt.warmup);
    case OPT_PERIOD:
        return parse_num("--period", arg, 1, 1e9, &p->period);
    case OPT_HARM:
        if (parse_num("--harmonics", arg, 1, 12, &x) < 0)
            return -EINVAL;
        p->harmonics = (int)x;
        return 0;
    case OPT_EVAL:
        if (parse_num("--eval-points", arg, 1, 1e6, &x) < 0)
            return -EINVAL;
        p->eval_points = (size_t)x;
        return 0;
    case OPT_CSV:
        a->csv = arg;
        return 0;
    case OPT_TSV:
        a->tsv = 1;
        return 0;
    }
    return -EINVAL;
}

/* Returns 0, 1 for --help, or -EINVAL. */
static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option longopts[] = {{"column", required_argument, NULL, OPT_COLUMN},
                                             {"time-column", required_argument, NULL, OPT_TIMECOL},
                                             {"interval", required_argument, NULL, OPT_INTERVAL},
                                             {"horizon", required_argument, NULL, OPT_HORIZON},
                                             {"confidence", required_argument, NULL, OPT_CONF},
                                             {"model", required_argument, NULL, OPT_MODEL},
                                             {"window", required_argument, NULL, OPT_WINDOW},
                                             {"warmup", required_argument, NULL, OPT_WARMUP},
                                             {"period", required_argument, NULL, OPT_PERIOD},
                                             {"harmonics", required_argument, NULL, OPT_HARM},
                                             {"eval-points", required_argument, NULL, OPT_EVAL},
                                             {"csv", required_argument, NULL, OPT_CSV},
                                             {"tsv", no_argument, NULL, OPT_TSV},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;

    trace_opts_default(&a->topts);
    bt_opts_default(&a->bt);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h')
            return 1;
        if (c == '?' || parse_opt(c, optarg, a) < 0)
            return -EINVAL;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "scalecast backtest forecast: expected one TRACE.csv\n");
        return -EINVAL;
    }
    a->path = argv[optind];
    a->bt.keep_rows = a->csv != NULL;
    return 0;
}

static int write_csv(const char *path, const struct bt_result *r)
{
    FILE *fp = fopen(path, "w");
    if (!fp) {
        fprintf(stderr, "scalecast backtest forecast: %s: %s\n", path, strerror(errno));
        return -errno;
    }
    fprintf(fp, "ts,actual,forecast,lower,upper,model\n");
    for (size_t i = 0; i < r->nrows; i++) {
        const struct bt_row *w = &r->rows[i];
        fprintf(fp, "%.3f,%.10g,%.10g,%.10g,%.10g,%s\n", w->ts, w->actual, w->forecast, w->lower,
                w->upper, pred_model_name(w->model));
    }
    if (fclose(fp) != 0) {
        fprintf(stderr, "scalecast backtest forecast: %s: write failed\n", path);
        return -EIO;
    }
    return 0;
}

static void print_table(const struct args *a, const struct trace *t, const struct bt_result *r)
{
    const char *fmt =
        a->tsv ? "%s\t%zu\t%.6g\t%.4f\t%.4f\t%.6g\n" : "%-16s %7zu %12.6g %7.4f %8.4f %12.6g\n";
    if (!a->tsv) {
        printf("trace %s column '%s': %zu samples, horizon %zu step(s), confidence %.3g, "
               "%zu targets\n",
               a->path, t->column, t->n, a->bt.steps, a->bt.pred.confidence, r->targets);
        printf("%-16s %7s %12s %7s %8s %12s\n", "series", "n", "MAE", "MASE", "coverage", "width");
    } else {
        printf("series\tn\tmae\tmase\tcoverage\twidth\n");
    }
    for (int s = 0; s < BT_NSERIES; s++) {
        const struct bt_score *sc = &r->score[s];
        printf(fmt, bt_series_name((enum bt_series)s), sc->n, sc->mae, sc->mase, sc->coverage,
               sc->width);
    }
    printf(a->tsv ? "chosen" : "auto chose:");
    for (int m = 0; m < PRED_NCONCRETE; m++)
        printf(a->tsv ? "\t%s=%.4f" : " %s %.1f%%", pred_model_name((enum pred_model)m),
               (a->tsv ? 1.0 : 100.0) * (double)r->chosen[m] /
                   (double)(r->targets ? r->targets : 1));
    printf("\n");
}

static void on_progress(void *arg, size_t done, size_t total)
{
    (void)total;
    progress_update(arg, done, NULL);
}

int cmd_backtest_forecast(int argc, char **argv)
{
    struct args a = {0};
    struct trace t = {0};
    struct bt_result r = {0};
    char err[512];
    int rc = parse_args(argc, argv, &a), ret = 1;

    if (rc != 0) {
        usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    if (trace_load(a.path, &a.topts, &t, err, sizeof err) < 0) {
        fprintf(stderr, "scalecast backtest forecast: %s\n", err);
        return 1;
    }
    /* A progress line on stderr while it replays (only on a terminal). */
    struct progress *bar = progress_new("backtest", PROGRESS_COUNT, t.n, NULL);
    a.bt.progress = on_progress;
    a.bt.progress_arg = bar;
    rc = bt_run(t.ts, t.v, t.n, &a.bt, &r);
    progress_finish(bar);
    if (rc == -ENODATA) {
        fprintf(stderr,
                "scalecast backtest forecast: %s: too short: no target has %.0f s of history "
                "before it (see --warmup, --window)\n",
                a.path, a.bt.warmup >= 0 ? a.bt.warmup : fmax(a.bt.window, 2 * a.bt.pred.period));
        goto out;
    }
    if (rc < 0) {
        fprintf(stderr, "scalecast backtest forecast: %s: invalid options or series\n", a.path);
        goto out;
    }
    print_table(&a, &t, &r);
    if (a.csv && write_csv(a.csv, &r) < 0)
        goto out;
    ret = 0;
out:
    bt_result_free(&r);
    trace_free(&t);
    return ret;
}
