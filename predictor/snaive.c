/* The snaive model: seasonal naive with an AR(1) correction, i.e. an
 * ARIMA(1,0,0) on the seasonal difference (Hyndman & Athanasopoulos, FPP3
 * 9.9):
 *
 *   S(t) = mean of the samples at t - kP, k = 1 .. profile_days (those present)
 *   d(t) = y(t) - S(t),  d(t+s) ~ phi^(s/step) d(t)
 *   forecast(now + s) = S(now + s) + phi^(s/step) d(now)
 *
 * With phi near 1 this is the last value plus the change seen over the same
 * time on previous days; with phi near 0 it is yesterday's value. Samples are
 * matched to t - kP within half a sampling step, so gaps only drop terms. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "predictor_int.h"
#include "xalloc.h"

struct sn {
    const struct pctx *c;
    int D;
    double P, tol;
    long *idx;     /* [n * D]: sample matched to ts[i] - kP, or -1 */
    double *S;     /* [n]: profile of each sample from the samples before it */
    double phi;    /* AR(1) per step of the seasonal difference, in [0, 1] */
    double sd_e;   /* innovation sd */
    double d_last; /* d(now) for the final forecast */
    double *pow_k; /* [h + 1]: phi^k, the decay over k samples (evaluation) */
};

/* Sample nearest to t within tol and not after index `last`, or -1. */
static long nearest(const struct pctx *c, double t, double tol, size_t last)
{
    size_t lo = 0, hi = last + 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->ts[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    long best = -1;
    double bd = tol;
    for (size_t k = lo > 0 ? lo - 1 : 0; k <= lo && k <= last; k++) {
        if (fabs(c->ts[k] - t) <= bd) {
            bd = fabs(c->ts[k] - t);
            best = (long)k;
        }
    }
    return best;
}

static void match_all(struct sn *s)
{
    const struct pctx *c = s->c;
    for (int k = 1; k <= s->D; k++) {
        size_t q = 0;
        for (size_t i = 0; i < c->n; i++) {
            double t = c->ts[i] - k * s->P;
            long *out = &s->idx[i * (size_t)s->D + (size_t)(k - 1)];
            while (q + 1 < i && c->ts[q + 1] <= t)
                q++;
            *out = -1;
            for (size_t r = q; r <= q + 1 && r < i; r++) {
                if (fabs(c->ts[r] - t) <= s->tol &&
                    (*out < 0 || fabs(c->ts[r] - t) < fabs(c->ts[*out] - t)))
                    *out = (long)r;
            }
        }
    }
}

/* Profile at sample i from samples up to index o; NAN when none matched. */
static double profile(const struct sn *s, size_t i, size_t o)
{
    double sum = 0;
    int cnt = 0;
    for (int k = 0; k < s->D; k++) {
        long j = s->idx[i * (size_t)s->D + (size_t)k];
        if (j >= 0 && (size_t)j <= o) {
            sum += s->c->v[j];
            cnt++;
        }
    }
    return cnt ? sum / cnt : NAN;
}

/* AR(1) fit of d over samples [0, end), in one pass (see seasonal.c). */
static void fit_ar(struct sn *s, size_t end)
{
    double rp = 0, pp = 0, rr = 0, prev = NAN;
    for (size_t i = 0; i < end; i++) {
        double d = s->c->v[i] - s->S[i];
        if (!isnan(d) && !isnan(prev)) {
            rp += d * prev;
            pp += prev * prev;
            rr += d * d;
        }
        prev = d;
    }
    s->phi = pp > 0 ? rp / pp : 0;
    s->phi = s->phi < 0 ? 0 : s->phi > 1 ? 1 : s->phi;
    double se = fmax(0, rr - 2 * s->phi * rp + s->phi * s->phi * pp);
    s->sd_e = end > 2 ? sqrt(se / (double)(end - 2)) : 0;
}

static double decay(const struct sn *s, double lead)
{
    return s->phi >= 1 ? 1 : s->phi <= 0 ? 0 : pow(s->phi, lead / s->c->step);
}

/* Rolling-origin forecast of sample j from origin o (decay per sample). */
static double from_origin(const struct sn *s, size_t o, size_t j)
{
    const struct pctx *c = s->c;
    /* Within a period of the origin every matched sample precedes it. */
    double so = s->S[o];
    double sj = c->ts[j] - c->ts[o] < s->P - s->tol ? s->S[j] : profile(s, j, o);
    if (isnan(sj))
        return c->v[o];
    double d = isnan(so) ? 0 : c->v[o] - so;
    return sj + s->pow_k[j - o] * d;
}

static void eval(struct sn *s, struct pmodel *m)
{
    const struct pctx *c = s->c;
    if (c->ne == 0)
        return;
    fit_ar(s, c->e0 + 1);
    pred_pow_table(s->phi, c->h, s->pow_k);
    for (size_t k = 0; k < c->ne; k++) {
        size_t o = c->e0 + k;
        double best = from_origin(s, o, o + c->h);
        m->fe[k] = best;
        size_t cnt = c->h < PRED_PATH_MAX ? c->h : PRED_PATH_MAX;
        for (size_t q = 1; q < cnt; q++) {
            double y = from_origin(s, o, o + (q * c->h) / cnt);
            best = y > best ? y : best;
        }
        m->pe[k] = best;
    }
    m->eval_ok = 1;
}

/* Final forecast at time t (after now). */
static double sn_at(const void *st, double t)
{
    const struct sn *s = st;
    const struct pctx *c = s->c;
    double sum = 0;
    int cnt = 0;
    for (int k = 1; k <= s->D; k++) {
        double tk = t - k * s->P;
        if (tk > c->tnow + s->tol)
            continue;
        long j = nearest(c, tk, s->tol, c->n - 1);
        if (j >= 0) {
            sum += c->v[j];
            cnt++;
        }
    }
    if (cnt == 0)
        return c->v[c->n - 1];
    return sum / cnt + decay(s, t - c->tnow) * s->d_last;
}

void pm_snaive(const struct pctx *c, struct pmodel *m)
{
    struct sn s = {.c = c, .D = c->o->profile_days, .P = c->o->period, .tol = c->step / 2};

    m->rc = -ENODATA;
    if (c->tnow - c->ts[0] < 2 * s.P) {
        m->need_span = 2 * s.P;
        return;
    }
    s.idx = xmalloc(c->n * (size_t)s.D * sizeof *s.idx);
    s.pow_k = xmalloc((c->h + 1) * sizeof *s.pow_k);
    match_all(&s);
    s.S = xmalloc(c->n * sizeof *s.S);
    for (size_t i = 0; i < c->n; i++)
        s.S[i] = profile(&s, i, i);
    eval(&s, m);
    fit_ar(&s, c->n);
    double sn = s.S[c->n - 1];
    s.d_last = isnan(sn) ? 0 : c->v[c->n - 1] - sn;
    m->rc = 0;
    m->value = sn_at(&s, c->tgt);
    pred_path_peak(c, sn_at, &s, m);
    double sum = 0, phi2 = s.phi * s.phi, term = 1;
    for (size_t j = 0; j < c->h && j < 100000; j++) {
        sum += term;
        term *= phi2;
    }
    m->half = c->z * s.sd_e * sqrt(sum);
    free(s.pow_k);
    free(s.S);
    free(s.idx);
}
