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

static const double alphas[] = {0.1, 0.25, 0.4, 0.6, 0.8, 1.0};
static const double betas[] = {0.0, 0.03, 0.1, 0.3};
#define NA (sizeof alphas / sizeof alphas[0])
#define NB (sizeof betas / sizeof betas[0])

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
    double dt = t - s->t;
    double pred = s->L + s->T * dt;
    double e = y - pred;
    s->L = pred + a * e;
    s->T += a * b * e / dt;
    s->t = t;
    return e;
}

/* Runs one (alpha, beta) over the window; sse_pre sums errors of points up to
 * and including index `pre`, sse_all of all points. */
static void run_sse(const struct pctx *c, double a, double b, size_t pre, double *sse_pre,
                    double *sse_all)
{
    struct hstate s = {c->v[0], 0, c->ts[0]};
    double sse = 0;
    *sse_pre = 0;
    for (size_t i = 1; i < c->n; i++) {
        double e = step(&s, c->ts[i], c->v[i], a, b);
        if (i > BURN)
            sse += e * e;
        if (i == pre)
            *sse_pre = sse;
    }
    *sse_all = sse;
}

void pm_holt(const struct pctx *c, struct pmodel *m)
{
    double best_pre = INFINITY, best_all = INFINITY;
    size_t ip = 0, ia = 0, nerr = 0;
    double sse_fin = 0;

    if (c->n < BURN + 3) {
        m->rc = -ENODATA;
        m->need_n = BURN + 3;
        return;
    }
    for (size_t g = 0; g < NA * NB; g++) {
        double sp, sa;
        run_sse(c, alphas[g / NB], betas[g % NB], c->e0, &sp, &sa);
        if (sp < best_pre) {
            best_pre = sp;
            ip = g;
        }
        if (sa < best_all) {
            best_all = sa;
            ia = g;
        }
    }
    /* Rolling-origin forecasts with the constants chosen before the first origin. */
    struct hstate s = {c->v[0], 0, c->ts[0]};
    double a = alphas[ip / NB], b = betas[ip % NB];
    for (size_t i = 1; i < c->n && c->ne > 0; i++) {
        step(&s, c->ts[i], c->v[i], a, b);
        if (i < c->e0)
            continue;
        size_t k = i - c->e0;
        if (k >= c->ne)
            break;
        m->fe[k] = hstate_at(&s, c->ts[i + c->h]);
        m->pe[k] = fmax(hstate_at(&s, c->ts[i + 1]), m->fe[k]);
    }
    m->eval_ok = c->ne > 0 && c->e0 > BURN;
    /* Final state with the constants chosen on the whole window. */
    a = alphas[ia / NB];
    b = betas[ia % NB];
    s = (struct hstate){c->v[0], 0, c->ts[0]};
    for (size_t i = 1; i < c->n; i++) {
        double e = step(&s, c->ts[i], c->v[i], a, b);
        if (i > BURN) {
            sse_fin += e * e;
            nerr++;
        }
    }
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
