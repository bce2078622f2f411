/* Backtest replay of the predictor and the reference baselines. */
#include "backtest.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_fit.h>
#include <gsl/gsl_multimin.h>

#include "xalloc.h"

static const char *const series_names[BT_NSERIES] = {
    "last", "linear",         "seasonal",       "holt",         "snaive",
    "auto", "peer:yesterday", "peer:linreg-1h", "peer:hw-daily"};

const char *bt_series_name(enum bt_series s)
{
    return (unsigned)s < BT_NSERIES ? series_names[s] : "?";
}

void bt_opts_default(struct bt_opts *o)
{
    memset(o, 0, sizeof *o);
    pred_opts_default(&o->pred);
    o->steps = 1;
    o->window = 4 * 86400.0;
    o->warmup = -1;
    o->peer_window = 3600;
    o->rows_model = PRED_AUTO;
}

void bt_result_free(struct bt_result *r)
{
    if (!r)
        return;
    free(r->rows);
    memset(r, 0, sizeof *r);
}

/* One forecast of one series at one target. */
struct fc {
    int ok;
    double value, lower, upper;
};

/* --- peer:hw-daily --------------------------------------------------------
 * Additive Holt-Winters (Hyndman & Athanasopoulos, FPP3 8.3) with the season
 * indexed by time of day (slot = round((t mod P) / step)), so gaps do not
 * shift it. The trend is per step. */
struct hw {
    size_t m; /* slots per period */
    double P, step;
    double a, b, g;  /* alpha, beta*, gamma */
    double l, tr, t; /* level, trend per step, time of the last update */
    double *s;       /* [m] seasonal terms */
    double sigma2;   /* one-step error variance at the last refit */
    double refit_at; /* time of the last refit; NAN: never */
    size_t next;     /* next index to feed */
};

static size_t hw_slot(const struct hw *h, double t)
{
    double x = fmod(t, h->P);
    if (x < 0)
        x += h->P;
    return (size_t)floor(x / h->step + 0.5) % h->m;
}

static double hw_update(struct hw *h, double t, double y)
{
    double d = (t - h->t) / h->step;
    size_t k = hw_slot(h, t);
    double e = y - (h->l + h->tr * d + h->s[k]);
    double l = h->a * (y - h->s[k]) + (1 - h->a) * (h->l + h->tr * d);
    h->tr = h->b * (l - h->l) / d + (1 - h->b) * h->tr;
    h->s[k] = h->g * (y - l) + (1 - h->g) * h->s[k];
    h->l = l;
    h->t = t;
    return e;
}

/* Initial states from the first period of [lo, end): level the mean, no
 * trend, season the deviations. Returns the first index after that period. */
static size_t hw_init(struct hw *h, const double *ts, const double *v, size_t lo, size_t end)
{
    size_t i = lo;
    double sum = 0;
    memset(h->s, 0, h->m * sizeof *h->s);
    while (i < end && ts[i] < ts[lo] + h->P)
        sum += v[i++];
    h->l = sum / (double)(i - lo);
    h->tr = 0;
    for (size_t k = lo; k < i; k++)
        h->s[hw_slot(h, ts[k])] = v[k] - h->l;
    h->t = ts[i - 1];
    return i;
}

struct hw_data {
    struct hw *h;
    const double *ts, *v;
    size_t lo, end;
};

static double logistic(double x)
{
    return 1 / (1 + exp(-x));
}

static double hw_sse(const gsl_vector *x, void *arg)
{
    struct hw_data *d = arg;
    struct hw *h = d->h;
    double sse = 0;
    h->a = logistic(gsl_vector_get(x, 0));
    h->b = logistic(gsl_vector_get(x, 1));
    h->g = logistic(gsl_vector_get(x, 2));
    for (size_t i = hw_init(h, d->ts, d->v, d->lo, d->end); i < d->end; i++) {
        double e = hw_update(h, d->ts[i], d->v[i]);
        sse += e * e;
    }
    return sse;
}

/* Refits the constants on [lo, end) with GSL's Nelder-Mead simplex and
 * leaves the states at end - 1. */
static void hw_refit(struct hw *h, const double *ts, const double *v, size_t lo, size_t end)
{
    struct hw_data d = {h, ts, v, lo, end};
    gsl_multimin_function fn = {hw_sse, 3, &d};
    gsl_vector *x = gsl_vector_alloc(3), *ss = gsl_vector_alloc(3);
    gsl_multimin_fminimizer *mz =
        gsl_multimin_fminimizer_alloc(gsl_multimin_fminimizer_nmsimplex2, 3);
    gsl_vector_set(x, 0, log(0.5 / 0.5));
    gsl_vector_set(x, 1, log(0.05 / 0.95));
    gsl_vector_set(x, 2, log(0.1 / 0.9));
    gsl_vector_set_all(ss, 1.0);
    gsl_multimin_fminimizer_set(mz, &fn, x, ss);
    for (int it = 0; it < 200; it++) {
        if (gsl_multimin_fminimizer_iterate(mz) != 0)
            break;
        if (gsl_multimin_test_size(gsl_multimin_fminimizer_size(mz), 1e-3) == GSL_SUCCESS)
            break;
    }
    double sse = hw_sse(gsl_multimin_fminimizer_x(mz), &d);
    size_t first = lo;
    while (first < end && ts[first] < ts[lo] + h->P)
        first++;
    h->sigma2 = end > first ? sse / (double)(end - first) : 0;
    h->refit_at = ts[end - 1];
    h->next = end;
    gsl_multimin_fminimizer_free(mz);
    gsl_vector_free(x);
    gsl_vector_free(ss);
}

static struct fc hw_forecast(const struct hw *h, double t, size_t steps, double z)
{
    struct fc f = {1, 0, 0, 0};
    double d = (t - h->t) / h->step, var = 1;
    f.value = h->l + h->tr * d + h->s[hw_slot(h, t)];
    for (size_t j = 1; j < steps; j++)
        var += h->a * h->a * (1 + (double)j * h->b) * (1 + (double)j * h->b);
    f.lower = f.value - z * sqrt(h->sigma2 * var);
    f.upper = f.value + z * sqrt(h->sigma2 * var);
    return f;
}

/* --- replay ------------------------------------------------------------- */

struct acc {
    size_t n, in;
    double ae, ae_last, width;
};

struct replay {
    const double *ts, *v;
    size_t n;
    const struct bt_opts *o;
    double z, step;
    double *sd2; /* prefix sums of squared seasonal differences */
    size_t *sdn; /* prefix counts */
    size_t yk;   /* pointer for the yesterday lookup */
    struct hw hw;
    struct acc acc[BT_NSERIES];
};

/* Index of the sample within step/2 of time t, searching forward from *k, or
 * SIZE_MAX. */
static size_t find_near(const struct replay *r, size_t *k, double t)
{
    while (*k + 1 < r->n && r->ts[*k + 1] <= t + r->step / 2)
        (*k)++;
    return fabs(r->ts[*k] - t) <= r->step / 2 ? *k : SIZE_MAX;
}

static void seasonal_diffs(struct replay *r)
{
    double P = r->o->pred.period;
    size_t k = 0;
    r->sd2 = xcalloc(r->n + 1, sizeof *r->sd2);
    r->sdn = xcalloc(r->n + 1, sizeof *r->sdn);
    for (size_t x = 0; x < r->n; x++) {
        size_t y = r->ts[x] - P >= r->ts[0] - r->step ? find_near(r, &k, r->ts[x] - P) : SIZE_MAX;
        double d = y != SIZE_MAX ? r->v[x] - r->v[y] : 0;
        r->sd2[x + 1] = r->sd2[x] + d * d;
        r->sdn[x + 1] = r->sdn[x] + (y != SIZE_MAX);
    }
}

static struct fc peer_yesterday(struct replay *r, size_t lo, size_t i, size_t j)
{
    struct fc f = {0, 0, 0, 0};
    size_t y = find_near(r, &r->yk, r->ts[j] - r->o->pred.period);
    size_t cnt = r->sdn[i + 1] - r->sdn[lo];
    if (y == SIZE_MAX || y > i || cnt < 2)
        return f;
    /* FPP3 5.5: sigma_h = sigma for horizons under a period. */
    double sd = sqrt((r->sd2[i + 1] - r->sd2[lo]) / (double)(cnt - 1));
    f.ok = 1;
    f.value = r->v[y];
    f.lower = f.value - r->z * sd;
    f.upper = f.value + r->z * sd;
    return f;
}

static struct fc peer_linreg(const struct replay *r, size_t i, size_t j)
{
    struct fc f = {0, 0, 0, 0};
    double x[4096], c0, c1, c00, c01, c11, ss, y, yerr;
    size_t lo = i;
    while (lo > 0 && r->ts[lo - 1] > r->ts[i] - r->o->peer_window && i - lo + 1 < 4096)
        lo--;
    size_t m = i - lo + 1;
    if (m < 3)
        return f;
    for (size_t k = 0; k < m; k++)
        x[k] = r->ts[lo + k] - r->ts[i];
    gsl_fit_linear(x, 1, r->v + lo, 1, m, &c0, &c1, &c00, &c01, &c11, &ss);
    gsl_fit_linear_est(r->ts[j] - r->ts[i], c0, c1, c00, c01, c11, &y, &yerr);
    double half = gsl_cdf_tdist_Pinv(0.5 + r->o->pred.confidence / 2, (double)(m - 2)) *
                  sqrt(ss / (double)(m - 2) + yerr * yerr);
    f.ok = 1;
    f.value = y;
    f.lower = y - half;
    f.upper = y + half;
    return f;
}

static struct fc peer_hw(struct replay *r, size_t i, size_t j)
{
    struct hw *h = &r->hw;
    double P = r->o->pred.period, win = fmax(r->o->window, 2 * P);
    if (isnan(h->refit_at) || r->ts[i] >= h->refit_at + P) {
        size_t lo = i;
        while (lo > 0 && r->ts[lo - 1] > r->ts[i] - win)
            lo--;
        if (r->ts[i] - r->ts[lo] < 1.5 * P)
            return (struct fc){0, 0, 0, 0};
        hw_refit(h, r->ts, r->v, lo, i + 1);
    }
    for (; h->next <= i; h->next++)
        hw_update(h, r->ts[h->next], r->v[h->next]);
    return hw_forecast(h, r->ts[j], r->o->steps, r->z);
}

static void add(struct acc *a, const struct fc *f, double y, double y_last)
{
    if (!f->ok)
        return;
    a->n++;
    a->ae += fabs(y - f->value);
    a->ae_last += fabs(y - y_last);
    a->in += f->lower <= y && y <= f->upper;
    a->width += f->upper - f->lower;
}

static void keep_row(struct bt_result *out, size_t *cap, double t, double y,
                     const struct pred_forecast *f)
{
    out->rows = xgrow(out->rows, cap, out->nrows + 1, sizeof *out->rows);
    out->rows[out->nrows++] = (struct bt_row){t, y, f->value, f->lower, f->upper, f->model};
}

/* Forecasts target j from origin i with every series and scores them. */
static void one_target(struct replay *r, size_t lo, size_t i, size_t j, struct bt_result *out,
                       size_t *cap)
{
    struct pred_forecast f[PRED_NCONCRETE + 1];
    struct pred_opts po = r->o->pred;
    struct fc fc[BT_NSERIES];
    double y = r->v[j];

    po.horizon = r->ts[j] - r->ts[i];
    if (pred_forecast_all(r->ts + lo, r->v + lo, i - lo + 1, &po, f) < 0)
        return;
    for (int s = 0; s <= PRED_AUTO; s++)
        fc[s] = (struct fc){f[s].n > 0, f[s].value, f[s].lower, f[s].upper};
    fc[BT_PEER_YESTERDAY] = peer_yesterday(r, lo, i, j);
    fc[BT_PEER_LINREG] = peer_linreg(r, i, j);
    fc[BT_PEER_HW] = peer_hw(r, i, j);
    for (int s = 0; s < BT_NSERIES; s++)
        add(&r->acc[s], &fc[s], y, r->v[i]);
    out->targets++;
    out->chosen[f[PRED_AUTO].model]++;
    if (r->o->keep_rows && f[r->o->rows_model].n > 0)
        keep_row(out, cap, r->ts[j], y, &f[r->o->rows_model]);
}

static int opts_ok(const struct bt_opts *o, const double *ts, const double *v, size_t n)
{
    if (o->steps < 1 || !(o->window > 0) || !(o->peer_window > 0) ||
        (unsigned)o->rows_model > PRED_AUTO || !(o->pred.period > 0))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(ts[i]) || !isfinite(v[i]) || (i > 0 && !(ts[i] > ts[i - 1])))
            return 0;
    }
    return 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_step(const double *ts, size_t n)
{
    double *d = xmalloc((n - 1) * sizeof *d);
    for (size_t i = 1; i < n; i++)
        d[i - 1] = ts[i] - ts[i - 1];
    qsort(d, n - 1, sizeof *d, cmp_double);
    double m = d[(n - 2) / 2];
    free(d);
    return m;
}

static void summarize(const struct replay *r, struct bt_result *out)
{
    for (int s = 0; s < BT_NSERIES; s++) {
        const struct acc *a = &r->acc[s];
        struct bt_score *sc = &out->score[s];
        sc->n = a->n;
        if (a->n == 0) {
            sc->mae = sc->mase = sc->coverage = sc->width = NAN;
            continue;
        }
        sc->mae = a->ae / (double)a->n;
        sc->mase = a->ae_last > 0 ? a->ae / a->ae_last : (a->ae > 0 ? INFINITY : 1);
        sc->coverage = (double)a->in / (double)a->n;
        sc->width = a->width / (double)a->n;
    }
}

int bt_run(const double *ts, const double *v, size_t n, const struct bt_opts *o,
           struct bt_result *out)
{
    struct replay r = {.ts = ts, .v = v, .n = n, .o = o};
    double warm = o->warmup >= 0 ? o->warmup : fmax(o->window, 2 * o->pred.period);
    size_t cap = 0, lo = 0;

    memset(out, 0, sizeof *out);
    if (!opts_ok(o, ts, v, n))
        return -EINVAL;
    if (n < o->steps + 3)
        return -ENODATA;
    r.step = median_step(ts, n);
    r.z = gsl_cdf_ugaussian_Pinv(0.5 + o->pred.confidence / 2);
    r.hw.P = o->pred.period;
    r.hw.step = r.step;
    r.hw.m = (size_t)fmax(1, floor(o->pred.period / r.step + 0.5));
    r.hw.s = xcalloc(r.hw.m, sizeof *r.hw.s);
    r.hw.refit_at = NAN;
    seasonal_diffs(&r);
    for (size_t j = o->steps; j < n; j++) {
        size_t i = j - o->steps;
        if (ts[i] - ts[0] < warm)
            continue;
        while (!(ts[lo] > ts[i] - o->window))
            lo++;
        one_target(&r, lo, i, j, out, &cap);
        if (o->progress && (j & 255) == 0)
            o->progress(o->progress_arg, j, n);
    }
    if (o->progress)
        o->progress(o->progress_arg, n, n);
    summarize(&r, out);
    free(r.hw.s);
    free(r.sd2);
    free(r.sdn);
    if (out->targets == 0) {
        bt_result_free(out);
        return -ENODATA;
    }
    return 0;
}
