/* The linear model: least squares of value on time over the recent window. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_fit.h>

#include "predictor_int.h"
#include "xalloc.h"

/* A fitted line: y = a + b * (t - t0). */
struct line {
    double a, b, t0;
};

static double line_at(const void *st, double t)
{
    const struct line *l = st;
    return l->a + l->b * (t - l->t0);
}

/* Recency weight of a point `age` seconds old (1 when unweighted). */
static double weight(double halflife, double age)
{
    return halflife > 0 ? exp2(-age / halflife) : 1.0;
}

/* First index (at most end) whose time is inside (tnow - window, tnow]. */
static size_t window_start(const struct pctx *c, double tnow, size_t end)
{
    double w = c->o->linear_window;
    size_t lo = 0, hi = end;
    if (w <= 0)
        return 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->ts[mid] > tnow - w)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Final fit with GSL over the last window: gsl_fit_linear, or gsl_fit_wlinear
 * with recency weights. The prediction interval for a new observation is
 * s^2 (1/w_new + x' C x) with C the (X'WX)^-1 GSL returns for unit weights,
 * Student-t with m-2 degrees of freedom (Montgomery & Peck, ch. 2). */
static int final_fit(const struct pctx *c, struct line *l, double *half)
{
    size_t lo = window_start(c, c->tnow, c->n - 1), m = c->n - lo;
    double c00, c01, c11, sumsq, *x = NULL, *w = NULL;
    double hl = c->o->halflife;

    if (m < 3)
        return -ENODATA;
    x = xmalloc(m * sizeof *x);
    for (size_t i = 0; i < m; i++)
        x[i] = c->ts[lo + i] - c->tnow;
    l->t0 = c->tnow;
    if (hl > 0) {
        w = xmalloc(m * sizeof *w);
        for (size_t i = 0; i < m; i++)
            w[i] = weight(hl, -x[i]);
        gsl_fit_wlinear(x, 1, w, 1, c->v + lo, 1, m, &l->a, &l->b, &c00, &c01, &c11, &sumsq);
        /* wlinear's chisq is sum w r^2; the weights are relative, so estimate
         * s^2 per unit weight from it. */
        double s2 = sumsq / (double)(m - 2);
        c00 *= s2;
        c01 *= s2;
        c11 *= s2;
        sumsq = s2;
    } else {
        gsl_fit_linear(x, 1, c->v + lo, 1, m, &l->a, &l->b, &c00, &c01, &c11, &sumsq);
        sumsq /= (double)(m - 2);
    }
    double y, yerr, xh = c->tgt - c->tnow;
    gsl_fit_linear_est(xh, l->a, l->b, c00, c01, c11, &y, &yerr);
    *half =
        gsl_cdf_tdist_Pinv(0.5 + c->o->confidence / 2, (double)(m - 2)) * sqrt(sumsq + yerr * yerr);
    free(x);
    free(w);
    return 0;
}

/* Weighted sums of the points in the window before origin o, kept as the
 * origin slides: x is time relative to tref, weights relative to the origin. */
struct sums {
    double w, x, y, xx, xy, tref, tcur;
    size_t lo, cnt;
};

static void sums_add(struct sums *s, double t, double y, double w)
{
    double x = t - s->tref;
    s->w += w;
    s->x += w * x;
    s->y += w * y;
    s->xx += w * x * x;
    s->xy += w * x * y;
}

/* Moves the origin to index o: decays, adds v[o], drops expired points. */
static void sums_advance(const struct pctx *c, struct sums *s, size_t o)
{
    double hl = c->o->halflife, win = c->o->linear_window;
    double d = weight(hl, c->ts[o] - s->tcur);
    s->w *= d;
    s->x *= d;
    s->y *= d;
    s->xx *= d;
    s->xy *= d;
    s->tcur = c->ts[o];
    sums_add(s, c->ts[o], c->v[o], 1.0);
    s->cnt++;
    while (win > 0 && s->lo < o && !(c->ts[s->lo] > s->tcur - win)) {
        sums_add(s, c->ts[s->lo], c->v[s->lo], -weight(hl, s->tcur - c->ts[s->lo]));
        s->lo++;
        s->cnt--;
    }
}

static double sums_forecast(const struct sums *s, double y_last, double t)
{
    double den = s->w * s->xx - s->x * s->x;
    if (s->cnt < 3 || !(den > 1e-12 * s->w * s->xx))
        return y_last;
    double b = (s->w * s->xy - s->x * s->y) / den;
    double a = (s->y - b * s->x) / s->w;
    return a + b * (t - s->tref);
}

/* Rolling-origin forecasts: the same least squares, from running sums. */
static void eval(const struct pctx *c, struct pmodel *m)
{
    struct sums s = {0};
    if (c->ne == 0)
        return;
    s.tref = c->ts[c->e0];
    s.lo = window_start(c, c->ts[c->e0], c->e0);
    s.tcur = c->ts[s.lo];
    for (size_t i = s.lo; i < c->e0; i++)
        sums_advance(c, &s, i);
    for (size_t k = 0; k < c->ne; k++) {
        size_t o = c->e0 + k;
        sums_advance(c, &s, o);
        struct line l;
        double den = s.w * s.xx - s.x * s.x;
        if (s.cnt < 3 || !(den > 1e-12 * s.w * s.xx)) {
            l.b = 0;
            l.a = c->v[o];
        } else {
            l.b = (s.w * s.xy - s.x * s.y) / den;
            l.a = (s.y - l.b * s.x) / s.w;
        }
        l.t0 = s.tref;
        m->fe[k] = sums_forecast(&s, c->v[o], c->ts[o + c->h]);
        m->pe[k] = fmax(line_at(&l, c->ts[o + 1]), line_at(&l, c->ts[o + c->h]));
    }
}

void pm_linear(const struct pctx *c, struct pmodel *m)
{
    struct line l;
    if (final_fit(c, &l, &m->half) < 0) {
        m->rc = -ENODATA;
        m->need_n = 3;
        return;
    }
    m->rc = 0;
    m->eval_ok = 1;
    m->value = line_at(&l, c->tgt);
    /* A line is monotone: its peak is at one end of the path. */
    m->peak = m->value;
    m->peak_at = c->tgt;
    double first = line_at(&l, c->path[0]);
    if (first > m->peak) {
        m->peak = first;
        m->peak_at = c->path[0];
    }
    eval(c, m);
}
