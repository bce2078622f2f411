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

/* Every (alpha, beta) of the grid run side by side over the window
 * (independent recurrences, so the loop over the grid pipelines). */
struct grid {
    double L[NG], T[NG], A[NG], AB[NG];
    double sse[NG]; /* squared one-step errors so far, after BURN points */
};

static void grid_init(const struct pctx *c, struct grid *g)
{
    for (size_t k = 0; k < NG; k++) {
        g->L[k] = c->v[0];
        g->T[k] = 0;
        g->A[k] = alphas[k / NB];
        g->AB[k] = alphas[k / NB] * betas[k % NB];
        g->sse[k] = 0;
    }
}

/* Advances every recurrence over sample i (i >= 1). */
static void grid_step(const struct pctx *c, struct grid *g, size_t i)
{
    double dt = c->ts[i] - c->ts[i - 1], idt = 1 / dt, y = c->v[i];
    double w = i > BURN ? 1 : 0;
    for (size_t k = 0; k < NG; k++) {
        double pred = g->L[k] + g->T[k] * dt, e = y - pred;
        g->L[k] = pred + g->A[k] * e;
        g->T[k] += g->AB[k] * e * idt;
        g->sse[k] += w * e * e;
    }
}

/* The grid point with the least error (the first on ties; 0 when none is
 * finite). */
static size_t argmin(const double *x)
{
    double best = INFINITY;
    size_t at = 0;
    for (size_t k = 0; k < NG; k++) {
        if (x[k] < best) {
            best = x[k];
            at = k;
        }
    }
    return at;
}

/* The rolling-origin forecasts use the constants with the least error on
 * the data up to the first origin (ip), the final forecast those with the
 * least error on the whole window (ia). Both are lanes of the one grid pass:
 * the lane of ip at each origin is the state a separate pass with ip would
 * have there, to the bit, so no second pass is needed. */
void pm_holt(const struct pctx *c, struct pmodel *m)
{
    struct grid g;

    if (c->n < BURN + 3) {
        m->rc = -ENODATA;
        m->need_n = BURN + 3;
        return;
    }
    grid_init(c, &g);
    for (size_t i = 1; i <= c->e0; i++)
        grid_step(c, &g, i);
    size_t ip = argmin(g.sse);
    for (size_t i = c->e0; i < c->n; i++) {
        if (i > c->e0)
            grid_step(c, &g, i);
        size_t k = i - c->e0;
        if (k < c->ne) {
            struct hstate r = {g.L[ip], g.T[ip], c->ts[i]};
            m->fe[k] = hstate_at(&r, c->ts[i + c->h]);
            m->pe[k] = fmax(hstate_at(&r, c->ts[i + 1]), m->fe[k]);
        }
    }
    m->eval_ok = c->ne > 0 && c->e0 > BURN;
    size_t ia = argmin(g.sse);
    double a = alphas[ia / NB], b = betas[ia % NB];
    struct hstate s = {g.L[ia], g.T[ia], c->ts[c->n - 1]};
    double sse_fin = g.sse[ia];
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
