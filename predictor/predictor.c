/* Forecast engine: input checks, rolling-origin scoring, auto selection and
 * interval calibration. The models live in linear.c, seasonal.c, holt.c. */
#include "predictor.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>

#include "predictor_int.h"
#include "xalloc.h"

static const char *const model_names[] = {"last", "linear", "seasonal", "holt", "snaive", "auto"};

/* Simplicity order auto prefers on near ties. */
static const enum pred_model simplest_first[PRED_NCONCRETE] = {PRED_LAST, PRED_LINEAR, PRED_HOLT,
                                                               PRED_SNAIVE, PRED_SEASONAL};

int pred_model_parse(const char *name, enum pred_model *out)
{
    for (int i = 0; i <= PRED_AUTO; i++) {
        if (name && strcmp(name, model_names[i]) == 0) {
            *out = (enum pred_model)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *pred_model_name(enum pred_model m)
{
    return (unsigned)m <= PRED_AUTO ? model_names[m] : "?";
}

void pred_opts_default(struct pred_opts *o)
{
    memset(o, 0, sizeof *o);
    o->model = PRED_AUTO;
    o->horizon = 300;
    o->confidence = 0.9;
    o->period = 86400;
    o->harmonics = 3;
    o->linear_window = 3600;
    o->halflife = 0;
    o->profile_days = 1;
    o->eval_points = 576;
    o->min_calib = 30;
    o->switch_margin = 0.02;
    o->switch_t = 1.5;
}

static int opts_valid(const struct pred_opts *o)
{
    return (unsigned)o->model <= PRED_AUTO && isfinite(o->horizon) && o->horizon > 0 &&
           o->confidence > 0 && o->confidence < 1 && isfinite(o->period) && o->period > 0 &&
           o->harmonics >= 1 && o->harmonics <= 12 && o->profile_days >= 1 &&
           o->profile_days <= 28 && o->linear_window >= 0 && isfinite(o->linear_window) &&
           o->halflife >= 0 && isfinite(o->halflife) && o->switch_margin >= 0 &&
           o->switch_margin < 1 && !isnan(o->switch_t);
}

static int input_valid(const double *ts, const double *v, size_t n)
{
    if (n > 0 && (!ts || !v))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(ts[i]) || !isfinite(v[i]))
            return 0;
        if (i > 0 && !(ts[i] > ts[i - 1]))
            return 0;
    }
    return 1;
}

/* Hoare's selection (quickselect): the k-th smallest (0-based) of
 * a[0..n-1], reordering a. */
static double select_kth(double *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = a[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                double t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return a[k];
}

/* The sampling interval: median of the last (at most 256) intervals. */
static double median_step(const double *ts, size_t n, double *scratch)
{
    size_t m = n - 1 < 256 ? n - 1 : 256;
    for (size_t i = 0; i < m; i++)
        scratch[i] = ts[n - 1 - i] - ts[n - 2 - i];
    return select_kth(scratch, m, (m - 1) / 2);
}

/* Split-conformal interval of errors e[0..m-1] (reordered): the ranks
 * floor((m+1)(1-c)/2) and ceil((m+1)(1+c)/2), clamped to the sample. The
 * upper rank is searched above the lower one only. */
static void error_quantiles(double *e, size_t m, double c, double *lo, double *hi)
{
    double a = (1 - c) / 2;
    double klo = floor((double)(m + 1) * a), khi = ceil((double)(m + 1) * (1 - a));
    size_t ilo = klo < 1 ? 0 : (size_t)klo - 1;
    size_t ihi = khi > (double)m ? m - 1 : (size_t)khi - 1;
    *lo = select_kth(e, m, ilo);
    *hi = ihi > ilo ? select_kth(e + ilo + 1, m - ilo - 1, ihi - ilo - 1) : *lo;
}

void pred_path_peak(const struct pctx *c, pred_at_fn at, const void *st, struct pmodel *m)
{
    m->peak = m->value;
    m->peak_at = c->tgt;
    for (size_t k = 0; k + 1 < c->npath; k++) {
        double y = at(st, c->path[k]);
        if (y > m->peak) {
            m->peak = y;
            m->peak_at = c->path[k];
        }
    }
}

void pred_pow_table(double phi, size_t h, double *out)
{
    out[0] = 1;
    for (size_t k = 1; k <= h; k++)
        out[k] = out[k - 1] * phi;
}

static double last_at(const void *st, double t)
{
    (void)t;
    return *(const double *)st;
}

void pm_last(const struct pctx *c, struct pmodel *m)
{
    const double *v = c->v;
    double s2 = 0;

    m->rc = 0;
    m->eval_ok = 1;
    m->value = v[c->n - 1];
    pred_path_peak(c, last_at, &v[c->n - 1], m);
    for (size_t k = 0; k < c->ne; k++) {
        m->fe[k] = v[c->e0 + k];
        m->pe[k] = v[c->e0 + k];
    }
    /* Textbook: a random walk, sd of one-step changes times sqrt(steps). */
    for (size_t i = 1; i < c->n; i++)
        s2 += (v[i] - v[i - 1]) * (v[i] - v[i - 1]);
    s2 /= (double)(c->n - 1);
    m->half = gsl_cdf_tdist_Pinv(0.5 + c->o->confidence / 2, (double)(c->n - 1)) *
              sqrt(s2 * (double)c->h);
}

typedef void (*model_fn)(const struct pctx *c, struct pmodel *m);
static const model_fn model_fns[PRED_NCONCRETE] = {pm_last, pm_linear, pm_seasonal, pm_holt,
                                                   pm_snaive};
/* Deferred forecasts (predictor_int.h): run only for a returned model. */
static const model_fn final_fns[PRED_NCONCRETE] = {NULL, NULL, pm_seasonal_final, NULL, NULL};

/* Fills the path times: tnow + k*step for k < h (at most PRED_PATH_MAX - 1,
 * evenly spread) and then tgt. */
static void make_path(struct pctx *c)
{
    size_t inner = c->h - 1;
    size_t cnt = inner < PRED_PATH_MAX - 1 ? inner : PRED_PATH_MAX - 1;
    c->npath = 0;
    for (size_t k = 1; k <= cnt; k++) {
        double t = c->tnow + c->step * (double)((k * inner + cnt - 1) / cnt);
        if (t < c->tgt)
            c->path[c->npath++] = t;
    }
    c->path[c->npath++] = c->tgt;
}

static int ctx_init(struct pctx *c, const double *ts, const double *v, size_t n,
                    const struct pred_opts *o, double *scratch)
{
    memset(c, 0, sizeof *c);
    c->ts = ts;
    c->v = v;
    c->n = n;
    c->o = o;
    c->tnow = ts[n - 1];
    c->tgt = c->tnow + o->horizon;
    c->step = median_step(ts, n, scratch);
    double hs = floor(o->horizon / c->step + 0.5);
    c->h = hs < 1 ? 1 : hs > 1e9 ? 1000000000 : (size_t)hs;
    if (n - 1 > c->h) {
        size_t avail = (n - 1 - c->h) / 2;
        c->ne = avail < o->eval_points ? avail : o->eval_points;
        c->e0 = n - 1 - c->h - c->ne + 1;
    }
    if (c->ne == 0)
        c->e0 = 0;
    c->z = gsl_cdf_ugaussian_Pinv(0.5 + o->confidence / 2);
    make_path(c);
    return 0;
}

/* Per-model results the engine keeps besides struct pmodel. */
struct scored {
    struct pmodel m;
    double mae;    /* over the evaluation origins; NAN when none */
    double gain_t; /* Diebold-Mariano statistic of its gain over the last value */
};

/* Diebold-Mariano statistic of the gains d[0..n-1] of a model over the last
 * value (d = |e_last| - |e_model|): mean(d) over its standard error, with a
 * Newey-West (Bartlett) long-run variance because overlapping h-step errors
 * and bursts make d autocorrelated. Lags: at least h - 1, and the usual
 * floor(4 (n/100)^(2/9)). Cost O(n * lags). */
static double dm_stat(const double *d, size_t n, size_t h, double mean)
{
    size_t lags = (size_t)floor(4 * pow((double)n / 100, 2.0 / 9));
    if (h - 1 > lags)
        lags = h - 1;
    if (lags > n / 4)
        lags = n / 4;
    double lrv = 0;
    /* Four lags side by side: each autocovariance is still summed in order
     * of k, but four independent sums pipeline instead of each waiting on
     * its own previous add. A last block may compute lags it then drops. */
    for (size_t j0 = 0; j0 <= lags; j0 += 4) {
        double g[4] = {0};
        size_t k = j0;
        for (; k < n && k < j0 + 3; k++) {
            for (size_t b = 0; b <= k - j0; b++)
                g[b] += (d[k] - mean) * (d[k - j0 - b] - mean);
        }
        double g0 = g[0], g1 = g[1], g2 = g[2], g3 = g[3];
        for (; k < n; k++) {
            double dk = d[k] - mean;
            const double *q = d + (k - j0);
            g0 += dk * (q[0] - mean);
            g1 += dk * (q[-1] - mean);
            g2 += dk * (q[-2] - mean);
            g3 += dk * (q[-3] - mean);
        }
        g[0] = g0, g[1] = g1, g[2] = g2, g[3] = g3;
        for (size_t b = 0; b < 4 && j0 + b <= lags; b++) {
            size_t j = j0 + b;
            double gj = g[b] / (double)n;
            lrv += j == 0 ? gj : 2 * (1 - (double)j / (double)(lags + 1)) * gj;
        }
    }
    if (!(lrv > 1e-300))
        return mean > 0 ? INFINITY : mean < 0 ? -INFINITY : 0;
    return mean / sqrt(lrv / (double)n);
}

static void score(const struct pctx *c, struct scored *s, const struct scored *last,
                  double *d /* scratch [ne] */)
{
    double sum = 0, gain = 0;
    if (s->m.rc < 0 || c->ne < 2 || !s->m.eval_ok) {
        s->mae = s->gain_t = NAN;
        return;
    }
    for (size_t k = 0; k < c->ne; k++) {
        double y = c->v[c->e0 + k + c->h], e = fabs(y - s->m.fe[k]);
        d[k] = fabs(y - last->m.fe[k]) - e;
        sum += e;
        gain += d[k];
    }
    s->mae = sum / (double)c->ne;
    s->gain_t = s == last ? 0 : dm_stat(d, c->ne, c->h, gain / (double)c->ne);
}

static void fill_need(const struct pmodel *m, struct pred_forecast *f)
{
    memset(f, 0, sizeof *f);
    f->need_n = m->need_n;
    f->need_span = m->need_span;
    f->fit = NAN;
    f->mae = NAN;
}

/* Turns a scored model into a forecast with calibrated intervals. */
static void finish(const struct pctx *c, const struct scored *s, const struct scored *last,
                   enum pred_model which, double *scratch, struct pred_forecast *f)
{
    const struct pmodel *m = &s->m;
    memset(f, 0, sizeof *f);
    f->model = which;
    f->value = m->value;
    f->peak = m->peak;
    f->peak_at = m->peak_at;
    f->n = c->n;
    f->step = c->step;
    f->steps = c->h;
    f->n_eval = c->ne;
    f->mae = s->mae;
    f->fit = NAN;
    if (c->ne > 0 && last->mae > 0)
        f->fit = s->mae / last->mae;
    else if (c->ne > 0 && s->mae == 0)
        f->fit = 1;
    if (m->eval_ok && c->ne >= c->o->min_calib && c->ne >= 2) {
        double lo, hi;
        for (size_t k = 0; k < c->ne; k++)
            scratch[k] = c->v[c->e0 + k + c->h] - m->fe[k];
        error_quantiles(scratch, c->ne, c->o->confidence, &lo, &hi);
        f->lower = m->value + lo;
        f->upper = m->value + hi;
        for (size_t k = 0; k < c->ne; k++) {
            size_t o = c->e0 + k;
            double mx = c->v[o + 1];
            for (size_t j = o + 2; j <= o + c->h; j++)
                mx = c->v[j] > mx ? c->v[j] : mx;
            scratch[k] = mx - m->pe[k];
        }
        error_quantiles(scratch, c->ne, c->o->confidence, &lo, &hi);
        f->peak_lower = m->peak + lo;
        f->peak_upper = m->peak + hi;
        f->calibrated = 1;
    } else {
        f->lower = m->value - m->half;
        f->upper = m->value + m->half;
        f->peak_lower = m->peak - m->half;
        f->peak_upper = m->peak + m->half;
    }
    /* An interval always contains its own point forecast. */
    f->lower = fmin(f->lower, f->value);
    f->upper = fmax(f->upper, f->value);
    f->peak_lower = fmin(f->peak_lower, f->peak);
    f->peak_upper = fmax(f->peak_upper, f->peak);
}

/* Auto's rule: a model is eligible when its advantage over the last value on
 * the evaluation origins is clear: the Diebold-Mariano t statistic of the
 * absolute-error differences is at least switch_t (one lucky burst is not
 * enough). Among the eligible and the last value, the simplest whose
 * rolling-origin MAE is within switch_margin of the best wins. With too few
 * origins scored, the last value. */
static enum pred_model choose(const struct pctx *c, const struct scored *s)
{
    double best = INFINITY;
    int ok[PRED_NCONCRETE];
    if (c->ne < c->o->min_calib || c->ne < 2)
        return PRED_LAST;
    for (int i = 0; i < PRED_NCONCRETE; i++) {
        ok[i] = s[i].m.rc == 0 && !isnan(s[i].mae) &&
                (i == PRED_LAST || (s[i].gain_t >= c->o->switch_t && s[i].mae < s[PRED_LAST].mae));
        if (ok[i] && s[i].mae < best)
            best = s[i].mae;
    }
    for (int i = 0; i < PRED_NCONCRETE; i++) {
        enum pred_model m = simplest_first[i];
        if (ok[m] && s[m].mae <= best * (1 + c->o->switch_margin))
            return m;
    }
    return PRED_LAST;
}

static const size_t min_points = 3;

/* Completes model i's forecast if it was deferred. Returns its rc. */
static int finalize(const struct pctx *c, struct scored *s, int i, int *done)
{
    if (s[i].m.rc == 0 && final_fns[i] && !done[i])
        final_fns[i](c, &s[i].m);
    done[i] = 1;
    return s[i].m.rc;
}

/* Runs the models selected by `want` (bit per model) and fills out[] for each
 * of them plus auto when want has bit PRED_AUTO. */
static int run(const double *ts, const double *v, size_t n, const struct pred_opts *o,
               unsigned want, struct pred_forecast *out)
{
    struct pred_opts defaults;
    struct scored s[PRED_NCONCRETE];
    struct pctx c;
    double *scratch = NULL, *buf = NULL;

    if (!o) {
        pred_opts_default(&defaults);
        o = &defaults;
    }
    if (!opts_valid(o) || !input_valid(ts, v, n))
        return -EINVAL;
    if (n < min_points) {
        for (int i = 0; i <= PRED_AUTO; i++) {
            memset(&out[i], 0, sizeof out[i]);
            out[i].need_n = min_points;
        }
        return -ENODATA;
    }
    scratch = xmalloc(n * sizeof *scratch);
    ctx_init(&c, ts, v, n, o, scratch);
    buf = xmalloc((2 * c.ne + 1) * PRED_NCONCRETE * sizeof *buf);
    unsigned outs = want; /* the entries of out[] the caller asked for */
    want |= 1u << PRED_LAST;
    if (want & (1u << PRED_AUTO))
        want |= (1u << PRED_NCONCRETE) - 1;
    for (int i = 0; i < PRED_NCONCRETE; i++) {
        memset(&s[i], 0, sizeof s[i]);
        s[i].m.rc = -ENODATA;
        s[i].m.fe = buf + (size_t)(2 * i) * c.ne;
        s[i].m.pe = buf + (size_t)(2 * i + 1) * c.ne;
        if (!(want & (1u << i)))
            continue;
        model_fns[i](&c, &s[i].m);
        score(&c, &s[i], &s[PRED_LAST], scratch);
    }
    int done[PRED_NCONCRETE] = {0};
    for (int i = 0; i < PRED_NCONCRETE; i++) {
        if (!(outs & (1u << i)))
            continue;
        if (finalize(&c, s, i, done) < 0)
            fill_need(&s[i].m, &out[i]);
        else
            finish(&c, &s[i], &s[PRED_LAST], (enum pred_model)i, scratch, &out[i]);
    }
    if (outs & (1u << PRED_AUTO)) {
        /* A deferred fit that fails takes its model out of the choice (the
         * last value has no deferred part, so this ends). */
        enum pred_model m = choose(&c, s);
        while (finalize(&c, s, m, done) < 0)
            m = choose(&c, s);
        finish(&c, &s[m], &s[PRED_LAST], m, scratch, &out[PRED_AUTO]);
    }
    free(buf);
    free(scratch);
    return 0;
}

int pred_forecast(const double *ts, const double *v, size_t n, const struct pred_opts *o,
                  struct pred_forecast *out)
{
    struct pred_forecast all[PRED_NCONCRETE + 1];
    enum pred_model m = o ? o->model : PRED_AUTO;
    int rc;

    memset(out, 0, sizeof *out);
    if ((unsigned)m > PRED_AUTO)
        return -EINVAL;
    rc = run(ts, v, n, o, 1u << m, all);
    if (rc == -ENODATA)
        *out = all[m];
    if (rc < 0)
        return rc;
    *out = all[m];
    return out->n > 0 ? 0 : -ENODATA;
}

int pred_forecast_all(const double *ts, const double *v, size_t n, const struct pred_opts *o,
                      struct pred_forecast out[PRED_NCONCRETE + 1])
{
    memset(out, 0, (PRED_NCONCRETE + 1) * sizeof *out);
    return run(ts, v, n, o, (1u << (PRED_AUTO + 1)) - 1, out);
}

char *pred_need_message(enum pred_model m, const struct pred_forecast *f, double have_span,
                        size_t have_n, char *buf, size_t len)
{
    if (f->need_span > 0)
        snprintf(buf, len, "%s needs %.0f s of history; have %.0f s", pred_model_name(m),
                 f->need_span, have_span);
    else
        snprintf(buf, len, "%s needs at least %zu samples; have %zu", pred_model_name(m), f->need_n,
                 have_n);
    return buf;
}
