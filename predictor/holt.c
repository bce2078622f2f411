/* The holt model: Holt's linear-trend exponential smoothing on irregular
 * time (trend per second, Wright 1986 style):
 *
 *   pred = L + T dt;  e = y - pred;  L' = pred + alpha e;  T' = T + alpha beta e / dt
 *
 * alpha and beta are chosen on a small grid by the sum of squared one-step
 * errors: for the rolling-origin forecasts on the data before the first
 * origin, for the final forecast on the whole window. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "predictor_int.h"

static const double alphas[] = {0.2, 0.45, 0.75, 1.0};
static const double betas[] = {0.0, 0.05, 0.2};
#define NA (sizeof alphas / sizeof alphas[0])
#define NB (sizeof betas / sizeof betas[0])
#define NG (NA * NB)

/* Points skipped before errors count (the trend starts at zero). */
#define BURN 3

struct hstate {
    double L, T, t;
};

static double hstate_at(const void *st, double t)
{
    const struct hstate *s = st;
    return s->L + s->T * (t - s->t);
}

static double step(struct hstate *s, double t, double y, double a, double b)
{
    double dt = t - s->t, idt = 1 / dt; /* off the recurrence's critical path */
    double pred = s->L + s->T * dt;
    double e = y - pred;
    s->L = pred + a * e;
    s->T += a * b * e * idt;
    s->t = t;
    return e;
}

/* Runs every (alpha, beta) of the grid over the window at once (independent
 * recurrences side by side, so the loop over the grid pipelines). sse_pre[g]
 * sums the squared one-step errors of points up to and including index
 * `pre`, sse_all[g] of all points. */
static void grid_sse(const struct pctx *c, size_t pre, double *sse_pre, double *sse_all)
{
    double L[NG], T[NG], A[NG], AB[NG];
    for (size_t g = 0; g < NG; g++) {
        L[g] = c->v[0];
        T[g] = 0;
        A[g] = alphas[g / NB];
        AB[g] = alphas[g / NB] * betas[g % NB];
        sse_pre[g] = sse_all[g] = 0;
    }
    for (size_t i = 1; i < c->n; i++) {
        double dt = c->ts[i] - c->ts[i - 1], idt = 1 / dt, y = c->v[i];
        double w = i > BURN ? 1 : 0;
        for (size_t g = 0; g < NG; g++) {
            double pred = L[g] + T[g] * dt, e = y - pred;
            L[g] = pred + A[g] * e;
            T[g] += AB[g] * e * idt;
            sse_all[g] += w * e * e;
        }
        if (i == pre) {
            for (size_t g = 0; g < NG; g++)
                sse_pre[g] = sse_all[g];
        }
    }
}

void pm_holt(const struct pctx *c, struct pmodel *m)
{
    double best_pre = INFINITY, best_all = INFINITY, sp[NG], sa[NG];
    size_t ip = 0, ia = 0;

    if (c->n < BURN + 3) {
        m->rc = -ENODATA;
        m->need_n = BURN + 3;
        return;
    }
    grid_sse(c, c->e0, sp, sa);
    for (size_t g = 0; g < NG; g++) {
        if (sp[g] < best_pre) {
            best_pre = sp[g];
            ip = g;
        }
        if (sa[g] < best_all) {
            best_all = sa[g];
            ia = g;
        }
    }
    /* Rolling-origin forecasts with the constants chosen before the first
     * origin; when those are also the whole window's choice, the same pass
     * ends in the final state. */
    struct hstate s = {c->v[0], 0, c->ts[0]};
    double a = alphas[ip / NB], b = betas[ip % NB];
    size_t end = ip == ia ? c->n : c->e0 + c->ne;
    for (size_t i = 1; i < end; i++) {
        step(&s, c->ts[i], c->v[i], a, b);
        size_t k = i - c->e0;
        if (i >= c->e0 && k < c->ne) {
            m->fe[k] = hstate_at(&s, c->ts[i + c->h]);
            m->pe[k] = fmax(hstate_at(&s, c->ts[i + 1]), m->fe[k]);
        }
    }
    m->eval_ok = c->ne > 0 && c->e0 > BURN;
    if (ip != ia) {
        a = alphas[ia / NB];
        b = betas[ia % NB];
        s = (struct hstate){c->v[0], 0, c->ts[0]};
        for (size_t i = 1; i < c->n; i++)
            step(&s, c->ts[i], c->v[i], a, b);
    }
    double sse_fin = sa[ia];
    size_t nerr = c->n - 1 - BURN;
    m->rc = 0;
    m->value = hstate_at(&s, c->tgt);
    pred_path_peak(c, hstate_at, &s, m);
    /* Textbook variance of the h-step error of Holt's method (Hyndman et al.
     * 2008, table 6.1, class 1): sigma^2 (1 + sum_{j<h} alpha^2 (1 + j beta)^2). */
    double var = 1, sigma2 = nerr ? sse_fin / (double)nerr : 0;
    for (size_t j = 1; j < c->h && j < 100000; j++)
        var += a * a * (1 + (double)j * b) * (1 + (double)j * b);
    m->half = c->z * sqrt(sigma2 * var);
}
