/* The seasonal model: regression on time plus Fourier terms of the period,
 * with an AR(1) correction of the current residual ("regression with AR
 * errors", Hyndman & Athanasopoulos, FPP3 ch. 10).
 *
 *   y(t) = a + b x + sum_k c_k cos(k theta) + d_k sin(k theta) + e(t),
 *   x = (t - now) / P, theta = 2 pi (t mod P) / P,  e(t+s) ~ phi^(s/step) e(t)
 *
 * Two fits, for two jobs:
 *   - the forecast (value, path, interval) is fitted by GSL's least squares,
 *     gsl_multifit_linear_svd + gsl_multifit_linear_solve (the two halves of
 *     gsl_multifit_linear) over the window's design matrix: O(n p^2), and
 *     rank-deficient sampling (all samples at one phase) gets the
 *     minimum-norm answer. It runs in pm_seasonal_final, which the engine
 *     calls only when this model's forecast is returned, because the SVD
 *     costs several times the model's whole evaluation.
 *   - the rolling-origin evaluation refits on the data before each origin,
 *     so it keeps the normal equations as running sums X'X, X'y ("incremental
 *     sums where they help", issue 4): every prefix of the window is then
 *     available for free and a refit costs a p x p Cholesky solve. Time is
 *     centred and scaled to periods and Fourier columns are nearly orthogonal
 *     over two or more periods, so these normal equations are well
 *     conditioned; a tiny ridge keeps degenerate sampling solvable. On
 *     windows of every trace in ../shared/traces and on synthetic series, a
 *     forecast from these sums differs from the SVD's by 3e-9 of its value
 *     in the median, 1.2e-5 at worst (the ridge). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_multifit.h>

#include "predictor_int.h"
#include "xalloc.h"

#define MAXP (2 + 2 * 12)

struct sfit {
    double beta[MAXP];
    double phi;  /* AR(1) coefficient per sampling step, in [0, 1] */
    double sd_e; /* sd of the AR innovations */
    int p, K;
    double P, tnow, step;
    double r_last, t_last; /* residual and time of the origin */
    double *pow_k;         /* [h + 1]: phi^k, the decay over k samples (evaluation) */
};

/* Fills b[0..p-1] with the regressors at time t. */
static void basis(int K, double P, double tnow, double t, double *b)
{
    double th = 2 * M_PI * fmod(t, P) / P, c1, s1;
    sincos(th, &s1, &c1);
    double ck = c1, sk = s1;
    b[0] = 1;
    b[1] = (t - tnow) / P;
    for (int k = 0; k < K; k++) {
        b[2 + 2 * k] = ck;
        b[3 + 2 * k] = sk;
        double cn = ck * c1 - sk * s1;
        sk = sk * c1 + ck * s1;
        ck = cn;
    }
}

/* Regressors of every sample. Consecutive angles are advanced by rotation
 * with a Taylor series of the small step angle (exact to double rounding for
 * steps under 1/20 of the period's radian), re-anchored with sincos every 64
 * rows and after any larger step, so drift stays near 1e-14. Divisions are
 * multiplications by reciprocals here (within an ulp of basis()): a divide
 * per term made this loop cost as much as the fit's sums. */
static void basis_all(int K, double P, double tnow, const double *ts, size_t n, double *B)
{
    int p = 2 + 2 * K;
    double c1 = 0, s1 = 0, w = 2 * M_PI / P, iP = 1 / P;
    for (size_t i = 0; i < n; i++) {
        double *b = B + i * (size_t)p;
        double d = i > 0 ? w * (ts[i] - ts[i - 1]) : 1;
        if (i % 64 == 0 || d > 0.05) {
            double th = 2 * M_PI * fmod(ts[i], P) / P;
            sincos(th, &s1, &c1);
        } else {
            double d2 = d * d;
            double cd = 1 - d2 * 0.5 * (1 - d2 * (1.0 / 12) * (1 - d2 * (1.0 / 30)));
            double sd = d * (1 - d2 * (1.0 / 6) * (1 - d2 * (1.0 / 20) * (1 - d2 * (1.0 / 42))));
            double cn = c1 * cd - s1 * sd;
            s1 = s1 * cd + c1 * sd;
            c1 = cn;
        }
        double ck = c1, sk = s1;
        b[0] = 1;
        b[1] = (ts[i] - tnow) * iP;
        b[2] = ck;
        b[3] = sk;
        for (int k = 1; k < K; k++) {
            double cn = ck * c1 - sk * s1;
            sk = sk * c1 + ck * s1;
            ck = cn;
            b[2 + 2 * k] = ck;
            b[3 + 2 * k] = sk;
        }
    }
}

static double dot(const double *a, const double *b, int p)
{
    double s = 0;
    for (int i = 0; i < p; i++)
        s += a[i] * b[i];
    return s;
}

/* Solves (A + ridge) beta = r for symmetric positive definite A (packed upper
 * rows, as accumulated) by Cholesky-Banachiewicz. Returns 0 or -EDOM. */
static int solve(const double *A, const double *r, int p, double *beta)
{
    double L[MAXP][MAXP], y[MAXP];
    for (int i = 0; i < p; i++) {
        for (int j = 0; j <= i; j++) {
            double s = A[j * p + i];
            if (i == j)
                s += 1e-9 * s + 1e-12;
            for (int k = 0; k < j; k++)
                s -= L[i][k] * L[j][k];
            if (i == j) {
                if (!(s > 0))
                    return -EDOM;
                L[i][i] = sqrt(s);
            } else {
                L[i][j] = s / L[j][j];
            }
        }
    }
    for (int i = 0; i < p; i++) {
        double s = r[i];
        for (int k = 0; k < i; k++)
            s -= L[i][k] * y[k];
        y[i] = s / L[i][i];
    }
    for (int i = p - 1; i >= 0; i--) {
        double s = y[i];
        for (int k = i + 1; k < p; k++)
            s -= L[k][i] * beta[k];
        beta[i] = s / L[i][i];
    }
    return 0;
}

/* Adds row b (value y) to the sums: A upper triangle (A[j*p+i], j <= i). */
static void accumulate(double *A, double *r, const double *b, double y, int p)
{
    for (int j = 0; j < p; j++) {
        double bj = b[j];
        double *row = A + j * p;
        for (int i = j; i < p; i++)
            row[i] += bj * b[i];
        r[j] += bj * y;
    }
}

/* Adds rows [from, to) of B (values v) to the sums, four rows per pass over
 * A: each entry still adds the rows' terms one at a time in row order, so
 * the sums are those of accumulate() row by row, to the bit, but A is loaded
 * and stored once per four rows and, p being even, the entries go in pairs
 * from an even column, which the compiler turns into SIMD arithmetic (the
 * entry left of the diagonal that this adds at odd rows is never read). */
static void accumulate_rows(double *restrict A, double *restrict r, const double *restrict B,
                            const double *v, size_t from, size_t to, int p)
{
    size_t k = from;
    for (; k + 4 <= to; k += 4) {
        const double *b0 = B + k * (size_t)p, *b1 = b0 + p, *b2 = b1 + p, *b3 = b2 + p;
        for (int j = 0; j < p; j++) {
            double *row = A + j * p;
            for (int i = j & ~1; i < p; i += 2) {
                row[i] = row[i] + b0[j] * b0[i] + b1[j] * b1[i] + b2[j] * b2[i] + b3[j] * b3[i];
                row[i + 1] = row[i + 1] + b0[j] * b0[i + 1] + b1[j] * b1[i + 1] +
                             b2[j] * b2[i + 1] + b3[j] * b3[i + 1];
            }
            r[j] = r[j] + b0[j] * v[k] + b1[j] * v[k + 1] + b2[j] * v[k + 2] + b3[j] * v[k + 3];
        }
    }
    for (; k < to; k++)
        accumulate(A, r, B + k * (size_t)p, v[k], p);
}

/* AR(1) of the residuals of rows [0, end) under f->beta, in one pass:
 * phi = sum r_i r_{i-1} / sum r_{i-1}^2, innovations r_i - phi r_{i-1}. */
static void fit_ar(const struct pctx *c, const double *B, size_t end, struct sfit *f)
{
    double rp = 0, pp = 0, rr = 0, prev = 0;
    int p = f->p;
    for (size_t i = 0; i < end; i++) {
        double r = c->v[i] - dot(B + i * p, f->beta, p);
        if (i > 0) {
            rp += r * prev;
            pp += prev * prev;
            rr += r * r;
        }
        prev = r;
    }
    f->phi = pp > 0 ? rp / pp : 0;
    f->phi = f->phi < 0 ? 0 : f->phi > 1 ? 1 : f->phi;
    double se = fmax(0, rr - 2 * f->phi * rp + f->phi * f->phi * pp);
    f->sd_e = end > (size_t)p + 1 ? sqrt(se / (double)(end - (size_t)p - 1)) : 0;
}

static double decay(const struct sfit *f, double lead)
{
    return f->phi >= 1 ? 1 : f->phi <= 0 ? 0 : pow(f->phi, lead / f->step);
}

static double sfit_at(const void *st, double t)
{
    const struct sfit *f = st;
    double b[MAXP];
    basis(f->K, f->P, f->tnow, t, b);
    return dot(b, f->beta, f->p) + decay(f, t - f->t_last) * f->r_last;
}

/* Forecast of row j from origin o from the fitted values yh[] of the
 * current coefficients; the residual decays per sample here (per step of
 * time in the final forecast). */
static double row_forecast(const double *yh, const struct sfit *f, size_t o, size_t j, double r_o)
{
    return yh[j] + f->pow_k[j - o] * r_o;
}

/* Rolling-origin forecasts fe[]/pe[] from the running sums, refitted every
 * ne/8 origins on the data up to the origin. The fitted values x_j'beta of
 * rows o .. o+h are computed once per refit (yh[], up to row `hi`), not once
 * per origin: O(ne + 8h) dot products. */
static void eval(const struct pctx *c, const double *B, struct sfit *f, struct pmodel *m)
{
    size_t refit_every = c->ne / 8 + 1, next = c->e0, hi = 0, done = c->e0 + 1;
    int p = f->p;
    double A[MAXP * MAXP] = {0}, r[MAXP] = {0}, *yh = NULL;

    if (c->ne == 0 || c->ts[c->e0] - c->ts[0] < c->o->period)
        return;
    accumulate_rows(A, r, B, c->v, 0, c->e0 + 1, p);
    if (solve(A, r, p, f->beta) < 0)
        return;
    fit_ar(c, B, c->e0 + 1, f);
    pred_pow_table(f->phi, c->h, f->pow_k);
    yh = xmalloc(c->n * sizeof *yh);
    for (size_t k = 0; k < c->ne; k++) {
        size_t o = c->e0 + k;
        if (o >= next) {
            /* The sums are read only here: add the rows since the last
             * refit in one go. */
            accumulate_rows(A, r, B, c->v, done, o + 1, p);
            done = o + 1;
            if (solve(A, r, p, f->beta) < 0)
                goto out;
            hi = o; /* yh[] is stale from row o on */
            next = o + refit_every;
        }
        for (; hi <= o + c->h; hi++)
            yh[hi] = dot(B + hi * p, f->beta, p);
        double r_o = c->v[o] - yh[o];
        double best = row_forecast(yh, f, o, o + c->h, r_o);
        m->fe[k] = best;
        size_t cnt = c->h < PRED_PATH_MAX ? c->h : PRED_PATH_MAX;
        for (size_t q = 1; q < cnt; q++) {
            double y = row_forecast(yh, f, o, o + (q * c->h) / cnt, r_o);
            best = y > best ? y : best;
        }
        m->pe[k] = best;
    }
    m->eval_ok = 1;
out:
    free(yh);
}

static void sfit_init(const struct pctx *c, struct sfit *f)
{
    memset(f, 0, sizeof *f);
    f->K = c->o->harmonics;
    f->p = 2 + 2 * f->K;
    f->P = c->o->period;
    f->tnow = c->tnow;
    f->step = c->step;
}

/* The model's evaluation: checks the history, then the rolling-origin
 * forecasts from the running sums. Leaves the forecast to
 * pm_seasonal_final. */
void pm_seasonal(const struct pctx *c, struct pmodel *m)
{
    struct sfit f;
    sfit_init(c, &f);
    size_t p = (size_t)f.p;

    m->rc = -ENODATA;
    if (c->tnow - c->ts[0] < 2 * f.P) {
        m->need_span = 2 * f.P;
        return;
    }
    if (c->n < 3 * p) {
        m->need_n = 3 * p;
        return;
    }
    m->rc = 0;
    double *B = xmalloc(c->n * p * sizeof *B);
    f.pow_k = xmalloc((c->h + 1) * sizeof *f.pow_k);
    basis_all(f.K, f.P, f.tnow, c->ts, c->n, B);
    eval(c, B, &f, m);
    free(f.pow_k);
    free(B);
}

/* Least squares of v on the n x p design matrix B by GSL (SVD; singular
 * values below GSL_DBL_EPSILON of the largest are dropped, so degenerate
 * sampling gets the minimum-norm answer). Returns 0, or -EDOM when GSL fails
 * or the coefficients are not finite. */
static int gsl_fit(const double *B, const double *v, size_t n, size_t p, double *beta)
{
    gsl_matrix_const_view X = gsl_matrix_const_view_array(B, n, p);
    gsl_vector_const_view y = gsl_vector_const_view_array(v, n);
    gsl_vector_view b = gsl_vector_view_array(beta, p);
    gsl_multifit_linear_workspace *w = gsl_multifit_linear_alloc(n, p);
    double rnorm, snorm;
    int rc = -EDOM;

    if (!w)
        abort(); /* GSL's handler has reported it; the xmalloc policy */
    /* The columns are already on one scale (1, time in periods, cos, sin),
     * so the unbalanced SVD: gsl_multifit_linear would balance them first.
     * With n >= 3p rows and finite values neither call has an error to
     * report (GSL's default handler would abort on one). */
    if (gsl_multifit_linear_svd(&X.matrix, w) != 0)
        goto out;
    if (gsl_multifit_linear_solve(0, &X.matrix, &y.vector, &b.vector, &rnorm, &snorm, w) != 0)
        goto out;
    rc = 0;
    for (size_t i = 0; i < p; i++) {
        if (!isfinite(beta[i]))
            rc = -EDOM;
    }
out:
    gsl_multifit_linear_free(w);
    return rc;
}

void pm_seasonal_final(const struct pctx *c, struct pmodel *m)
{
    struct sfit f;
    sfit_init(c, &f);
    size_t p = (size_t)f.p;
    double *B = xmalloc(c->n * p * sizeof *B);

    basis_all(f.K, f.P, f.tnow, c->ts, c->n, B);
    if (gsl_fit(B, c->v, c->n, p, f.beta) < 0) {
        m->rc = -ENODATA;
        m->need_n = 2 * p;
        goto out;
    }
    fit_ar(c, B, c->n, &f);
    f.t_last = c->tnow;
    f.r_last = c->v[c->n - 1] - dot(B + (c->n - 1) * p, f.beta, f.p);
    m->value = sfit_at(&f, c->tgt);
    pred_path_peak(c, sfit_at, &f, m);
    double sum = 0, phi2 = f.phi * f.phi, term = 1;
    for (size_t j = 0; j < c->h && j < 100000; j++) {
        sum += term;
        term *= phi2;
    }
    m->half = c->z * f.sd_e * sqrt(sum);
out:
    free(B);
}
