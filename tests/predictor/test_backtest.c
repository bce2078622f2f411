/* Tests of the backtest replay (predictor/backtest.h) on synthetic series. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "backtest.h"
#include "unit.h"

static uint64_t rng_state = 1;

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

enum { N = 6 * 288 };
static double ts[N], v[N];

/* A nightly batch job: 2% idle, 60% from 01:00 to 04:00, plus noise. */
static void make_batch(void)
{
    for (int i = 0; i < N; i++) {
        ts[i] = 1.7e9 - fmod(1.7e9, 86400) + 300.0 * i;
        double hour = fmod(ts[i], 86400) / 3600;
        v[i] = (hour >= 1 && hour < 4 ? 60 : 2) + 0.5 * normal();
    }
}

static void test_batch_job(void)
{
    struct bt_opts o;
    struct bt_result r;
    make_batch();
    bt_opts_default(&o);
    o.steps = 6;
    o.keep_rows = 1;
    CHECK(bt_run(ts, v, N, &o, &r) == 0);
    CHECK(r.targets == N - 4 * 288 - 6); /* 4 days of warm-up */
    CHECK(r.score[BT_LAST].mase == 1);
    /* The daily pulse is predictable: auto must beat persistence clearly. */
    CHECK(r.score[BT_AUTO].mase < 0.5);
    CHECK(r.score[BT_AUTO].coverage >= 0.85 && r.score[BT_AUTO].coverage <= 0.95);
    CHECK(r.score[BT_PEER_YESTERDAY].n > 0 && r.score[BT_PEER_HW].n > 0);
    CHECK(r.score[BT_PEER_LINREG].mase > 1); /* extrapolating an hour misses the edges */
    CHECK(r.nrows == r.targets);
    for (size_t i = 1; i < r.nrows; i++)
        CHECK(r.rows[i].ts > r.rows[i - 1].ts);
    CHECK(r.rows[0].lower <= r.rows[0].forecast && r.rows[0].forecast <= r.rows[0].upper);
    fprintf(stderr, "  batch h=6: auto MASE %.3f coverage %.3f, yesterday %.3f, hw %.3f\n",
            r.score[BT_AUTO].mase, r.score[BT_AUTO].coverage, r.score[BT_PEER_YESTERDAY].mase,
            r.score[BT_PEER_HW].mase);
    bt_result_free(&r);
}

static void test_random_walk(void)
{
    struct bt_opts o;
    struct bt_result r;
    double y = 50;
    for (int i = 0; i < N; i++) {
        ts[i] = 300.0 * i;
        y += normal();
        v[i] = y;
    }
    bt_opts_default(&o);
    o.window = 86400;
    o.warmup = 86400;
    CHECK(bt_run(ts, v, N, &o, &r) == 0);
    /* Nothing beats persistence on a random walk: auto must not lose to it. */
    CHECK(r.score[BT_AUTO].mase <= 1.05);
    CHECK(r.score[BT_AUTO].coverage >= 0.85 && r.score[BT_AUTO].coverage <= 0.95);
    fprintf(stderr, "  random walk h=1: auto MASE %.3f coverage %.3f\n", r.score[BT_AUTO].mase,
            r.score[BT_AUTO].coverage);
    bt_result_free(&r);
}

static void test_errors(void)
{
    struct bt_opts o;
    struct bt_result r;
    bt_opts_default(&o);
    CHECK(bt_run(ts, v, 100, &o, &r) == -ENODATA); /* 100 samples: no 3 days */
    o.steps = 0;
    CHECK(bt_run(ts, v, N, &o, &r) == -EINVAL);
    CHECK_STR(bt_series_name(BT_PEER_HW), "peer:hw-daily");
}

int main(void)
{
    RUN(test_batch_job);
    RUN(test_random_walk);
    RUN(test_errors);
    return UNIT_DONE();
}
