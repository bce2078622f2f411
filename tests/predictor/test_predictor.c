/* Tests of the predictor on synthetic series whose answer is known. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "predictor.h"
#include "unit.h"

/* Seeded generator (splitmix64) and Box-Muller normals: deterministic. */
static uint64_t rng_state;

static double uniform(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(void)
{
    return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

static struct pred_opts opts(enum pred_model m, double horizon)
{
    struct pred_opts o;
    pred_opts_default(&o);
    o.model = m;
    o.horizon = horizon;
    return o;
}

static void test_names(void)
{
    enum pred_model m;
    for (int i = 0; i <= PRED_AUTO; i++) {
        CHECK(pred_model_parse(pred_model_name((enum pred_model)i), &m) == 0);
        CHECK(m == (enum pred_model)i);
    }
    CHECK(pred_model_parse("arima", &m) == -EINVAL);
    CHECK_STR(pred_model_name(PRED_SEASONAL), "seasonal");
}

static void test_exact_line(void)
{
    enum { N = 200 };
    double ts[N], v[N];
    struct pred_forecast f;
    for (int i = 0; i < N; i++) {
        ts[i] = 1.7e9 + 60.0 * i;
        v[i] = 2 + 0.01 * i;
    }
    double want = 2 + 0.01 * (N - 1 + 5);
    struct pred_opts o = opts(PRED_LINEAR, 300);
    CHECK(pred_forecast(ts, v, N, &o, &f) == 0);
    CHECK(f.model == PRED_LINEAR && f.n == N && f.steps == 5);
    CHECK_NEAR(f.step, 60, 1e-9);
    CHECK_NEAR(f.value, want, 1e-9);
    CHECK_NEAR(f.upper - f.lower, 0, 1e-6);
    CHECK_NEAR(f.peak, want, 1e-9);
    CHECK_NEAR(f.peak_at, ts[N - 1] + 300, 1e-6);
    CHECK_NEAR(f.fit, 0, 1e-6); /* no error where persistence has some */
    o.model = PRED_HOLT;
    CHECK(pred_forecast(ts, v, N, &o, &f) == 0);
    CHECK_NEAR(f.value, want, 1e-6);
    o.model = PRED_AUTO;
    CHECK(pred_forecast(ts, v, N, &o, &f) == 0);
    CHECK(f.model == PRED_LINEAR || f.model == PRED_HOLT);
    CHECK_NEAR(f.value, want, 1e-6);
    o.model = PRED_LAST;
    CHECK(pred_forecast(ts, v, N, &o, &f) == 0);
    CHECK_NEAR(f.value, v[N - 1], 0);
    CHECK_NEAR(f.fit, 1, 1e-12);
}

/* A line plus N(0, sd^2) noise: over many independent draws the 90%
 * interval for the next value must cover it about 90% of the time, both the
 * textbook OLS interval and the calibrated one. */
static void coverage_of(enum pred_model m, size_t min_calib, double *cover, double *mean_err)
{
    enum { N = 120, DRAWS = 600 };
    double ts[N + 1], v[N + 1], sd = 2.0;
    size_t in = 0;
    double err = 0;
    rng_state = 42;
    for (int d = 0; d < DRAWS; d++) {
        for (int i = 0; i <= N; i++) {
            ts[i] = 1000.0 * i;
            v[i] = 50 + 0.002 * ts[i] + sd * normal();
        }
        struct pred_opts o = opts(m, 1000);
        o.linear_window = 0;
        o.min_calib = min_calib;
        struct pred_forecast f;
        CHECK(pred_forecast(ts, v, N, &o, &f) == 0);
        in += f.lower <= v[N] && v[N] <= f.upper;
        err += fabs(f.value - (50 + 0.002 * ts[N]));
    }
    *cover = (double)in / DRAWS;
    *mean_err = err / DRAWS;
}

static void test_line_noise_coverage(void)
{
    double cover, err;
    coverage_of(PRED_LINEAR, 100000, &cover, &err); /* textbook interval */
    fprintf(stderr, "  linear textbook coverage %.3f\n", cover);
    CHECK(cover > 0.86 && cover < 0.94);
    CHECK(err < 1.0); /* sd 2: the fitted mean is much closer than one draw */
    coverage_of(PRED_LINEAR, 30, &cover, &err); /* calibrated */
    fprintf(stderr, "  linear calibrated coverage %.3f\n", cover);
    CHECK(cover > 0.85 && cover < 0.95);
    coverage_of(PRED_AUTO, 30, &cover, &err);
    fprintf(stderr, "  auto calibrated coverage %.3f\n", cover);
    CHECK(cover > 0.85 && cover < 0.95);
}

static void test_sine_period(void)
{
    enum { N = 3 * 288 };
    double ts[N], v[N];
    struct pred_forecast f;
    for (int i = 0; i < N; i++) {
        ts[i] = 1.7e9 + 300.0 * i;
        v[i] = 40 + 30 * sin(2 * M_PI * ts[i] / 86400);
    }
    double tgt = ts[N - 1] + 7200;
    double want = 40 + 30 * sin(2 * M_PI * tgt / 86400);
    struct pred_opts o = opts(PRED_SEASONAL, 7200);
    CHECK(pred_forecast(ts, v, N, &o, &f) == 0);
    CHECK(f.model == PRED_SEASONAL);
    CHECK_NEAR(f.value, want, 1e-4);
    CHECK(f.upper - f.lower < 1e-3);
    o.model = PRED_SNAIVE;
    CHECK(pred_forecast(ts, v, N, &o, &f) == 0);
    CHECK_NEAR(f.value, want, 1e-6);
    o.model = PRED_AUTO;
    CHECK(pred_forecast(ts, v, N, &o, &f) == 0);
    CHECK(f.model == PRED_SEASONAL || f.model == PRED_SNAIVE);
    CHECK_NEAR(f.value, want, 1e-4);
    CHECK(f.fit < 0.01);
    /* The peak over the next 12 hours is the crest of the sine. */
    o.horizon = 43200;
    CHECK(pred_forecast(ts, v, N, &o, &f) == 0);
    CHECK(f.peak > 69.5 && f.peak <= 70 + 1e-3);
    CHECK(f.peak_at > ts[N - 1] && f.peak_at < ts[N - 1] + 43200);
    CHECK_NEAR(40 + 30 * sin(2 * M_PI * f.peak_at / 86400), 70, 0.5);
}

static void test_too_little_history(void)
{
    double ts[300], v[300];
    struct pred_forecast f;
    char msg[128];
    for (int i = 0; i < 300; i++) {
        ts[i] = 300.0 * i;
        v[i] = i % 7;
    }
    struct pred_opts o = opts(PRED_AUTO, 300);
    CHECK(pred_forecast(ts, v, 1, &o, &f) == -ENODATA);
    CHECK(f.need_n == 3);
    CHECK_STR(pred_need_message(PRED_AUTO, &f, 0, 1, msg, sizeof msg),
              "auto needs at least 3 samples; have 1");
    o.model = PRED_SEASONAL; /* one day of history: two periods are needed */
    CHECK(pred_forecast(ts, v, 300, &o, &f) == -ENODATA);
    CHECK_NEAR(f.need_span, 172800, 0);
    CHECK_STR(pred_need_message(PRED_SEASONAL, &f, ts[299] - ts[0], 300, msg, sizeof msg),
              "seasonal needs 172800 s of history; have 89700 s");
    o.model = PRED_AUTO; /* auto still answers, without the seasonal models */
    CHECK(pred_forecast(ts, v, 300, &o, &f) == 0);
    CHECK(f.model != PRED_SEASONAL && f.model != PRED_SNAIVE);
    o.model = PRED_LINEAR; /* fewer than 3 points inside the linear window */
    o.linear_window = 400;
    CHECK(pred_forecast(ts, v, 300, &o, &f) == -ENODATA);
    CHECK(f.need_n == 3);
}

static void test_bad_input(void)
{
    double ts[5] = {0, 60, 120, 180, 240}, v[5] = {1, 2, 3, 4, 5};
    struct pred_forecast f;
    struct pred_opts o = opts(PRED_AUTO, 60);
    v[2] = NAN;
    CHECK(pred_forecast(ts, v, 5, &o, &f) == -EINVAL);
    v[2] = 3;
    ts[3] = 100; /* unsorted */
    CHECK(pred_forecast(ts, v, 5, &o, &f) == -EINVAL);
    ts[3] = 120; /* repeated */
    CHECK(pred_forecast(ts, v, 5, &o, &f) == -EINVAL);
    ts[3] = 180;
    CHECK(pred_forecast(ts, v, 5, &o, &f) == 0);
    o.confidence = 1;
    CHECK(pred_forecast(ts, v, 5, &o, &f) == -EINVAL);
    o = opts(PRED_AUTO, 0);
    CHECK(pred_forecast(ts, v, 5, &o, &f) == -EINVAL);
    o = opts((enum pred_model)42, 60);
    CHECK(pred_forecast(ts, v, 5, &o, &f) == -EINVAL);
    CHECK(pred_forecast(ts, v, 5, NULL, &f) == 0); /* defaults */
}

static void test_constant_and_huge_times(void)
{
    enum { N = 100 };
    double ts[N], v[N];
    struct pred_forecast all[PRED_NCONCRETE + 1];
    for (int i = 0; i < N; i++) {
        ts[i] = 4e12 + 10.0 * i; /* milliseconds mistaken for seconds */
        v[i] = 7.5;
    }
    struct pred_opts o = opts(PRED_AUTO, 60);
    CHECK(pred_forecast_all(ts, v, N, &o, all) == 0);
    for (int m = 0; m <= PRED_AUTO; m++) {
        if (all[m].n == 0)
            continue; /* the seasonal models need two days */
        CHECK_NEAR(all[m].value, 7.5, 1e-6);
        CHECK_NEAR(all[m].lower, 7.5, 1e-6);
        CHECK_NEAR(all[m].upper, 7.5, 1e-6);
        CHECK_NEAR(all[m].peak_upper, 7.5, 1e-6);
    }
    CHECK(all[PRED_AUTO].model == PRED_LAST);
    CHECK(all[PRED_SEASONAL].n == 0 && all[PRED_SEASONAL].need_span == 172800);
}

static int same(const struct pred_forecast *a, const struct pred_forecast *b)
{
    return a->model == b->model && a->value == b->value && a->lower == b->lower &&
           a->upper == b->upper && a->peak == b->peak && a->peak_lower == b->peak_lower &&
           a->peak_upper == b->peak_upper && a->peak_at == b->peak_at && a->n == b->n &&
           (a->fit == b->fit || (isnan(a->fit) && isnan(b->fit))) && a->n_eval == b->n_eval &&
           a->calibrated == b->calibrated && a->steps == b->steps;
}

/* A noisy random walk with gaps: persistence is optimal, so auto must stay
 * close to it, and pred_forecast_all must agree with single-model calls. */
static void test_all_matches_single_and_gaps(void)
{
    enum { N = 900 };
    double ts[N], v[N], t = 1.6e9, y = 20;
    struct pred_forecast all[PRED_NCONCRETE + 1], one;
    rng_state = 7;
    for (int i = 0; i < N; i++) {
        t += (i % 97 == 0) ? 1800 : 300 + 5 * normal(); /* jitter and gaps */
        y += normal();
        ts[i] = t;
        v[i] = y;
    }
    struct pred_opts o = opts(PRED_AUTO, 1800);
    CHECK(pred_forecast_all(ts, v, N, &o, all) == 0);
    for (int m = 0; m <= PRED_AUTO; m++) {
        o.model = (enum pred_model)m;
        CHECK(pred_forecast(ts, v, N, &o, &one) == 0);
        CHECK(same(&one, &all[m]));
        CHECK(one.lower <= one.value && one.value <= one.upper);
        CHECK(one.peak_lower <= one.peak && one.peak <= one.peak_upper);
        CHECK(one.calibrated == 1 && one.n_eval == (N - 1 - 6) / 2);
    }
    CHECK(all[PRED_AUTO].fit <= 1.0 + o.switch_margin);
}

/* A daily sine with independent noise: auto picks seasonal, whose forecast
 * is fitted only once auto has picked it; it must be the very forecast that
 * seasonal gives alone and inside pred_forecast_all. */
static void test_seasonal_picked_by_auto(void)
{
    enum { N = 864 };
    double ts[N], v[N];
    struct pred_forecast all[PRED_NCONCRETE + 1], one, pick;
    rng_state = 11;
    for (int i = 0; i < N; i++) {
        ts[i] = 1.7e9 + 300.0 * i + 20 * uniform();
        v[i] = 40 + 25 * sin(2 * M_PI * ts[i] / 86400) + 3 * normal();
    }
    struct pred_opts o = opts(PRED_AUTO, 1800);
    CHECK(pred_forecast(ts, v, N, &o, &pick) == 0);
    CHECK(pick.model == PRED_SEASONAL);
    o.model = PRED_SEASONAL;
    CHECK(pred_forecast(ts, v, N, &o, &one) == 0);
    CHECK(same(&pick, &one));
    CHECK(pred_forecast_all(ts, v, N, &o, all) == 0);
    CHECK(same(&all[PRED_AUTO], &one) && same(&all[PRED_SEASONAL], &one));
    double tgt = ts[N - 1] + 1800;
    CHECK_NEAR(one.value, 40 + 25 * sin(2 * M_PI * tgt / 86400), 3);
    CHECK(one.lower < one.value && one.value < one.upper);
}

/* One sample a day, always at the same time: the Fourier columns are
 * constant, the least-squares problem rank-deficient. The forecast for the
 * same time tomorrow is still the trend's. */
static void test_seasonal_one_phase(void)
{
    enum { N = 30 };
    double ts[N], v[N];
    struct pred_forecast f;
    for (int i = 0; i < N; i++) {
        ts[i] = 19675 * 86400.0 + 5 * 3600 + 86400.0 * i;
        v[i] = 10 + 0.5 * i;
    }
    struct pred_opts o = opts(PRED_SEASONAL, 86400);
    CHECK(pred_forecast(ts, v, N, &o, &f) == 0);
    CHECK_NEAR(f.value, 10 + 0.5 * N, 1e-6);
    CHECK(f.upper - f.lower < 1e-3);
}

int main(void)
{
    RUN(test_names);
    RUN(test_exact_line);
    RUN(test_line_noise_coverage);
    RUN(test_sine_period);
    RUN(test_too_little_history);
    RUN(test_bad_input);
    RUN(test_constant_and_huge_times);
    RUN(test_all_matches_single_and_gaps);
    RUN(test_seasonal_picked_by_auto);
    RUN(test_seasonal_one_phase);
    return UNIT_DONE();
}
