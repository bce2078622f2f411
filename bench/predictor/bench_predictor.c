/* Predictor benchmark: forecasts per second with `auto` on many series.
 *
 * Builds S synthetic series of N points (5-minute samples with a daily cycle,
 * AR(1) noise, jitter, a gap and a level shift, from a fixed seed), then
 * times one pred_forecast per series on one thread, R times, and prints each
 * run and the median. Generation is not timed. The time is the thread's CPU
 * time (what one core spends, not inflated by other processes on a shared
 * machine); wall time is printed beside it. Target (issue 4): 10,000
 * series x 720 points with auto in under 1 s on one core. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "predictor.h"
#include "xalloc.h"

static uint64_t rng_state = 20240601;

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

static void make_series(double *ts, double *v, size_t n)
{
    double t = 1.7e9 + 86400 * uniform(), e = 0, amp = 30 * uniform(), base = 10 + 50 * uniform();
    size_t gap = (size_t)(uniform() * (double)n), shift = (size_t)(uniform() * (double)n);
    for (size_t i = 0; i < n; i++) {
        t += (i == gap ? 1800 : 300) + 3 * normal();
        e = 0.8 * e + 2 * normal();
        ts[i] = t;
        v[i] = base + amp * sin(2 * M_PI * t / 86400) + e + (i > shift ? 8 : 0);
    }
}

static double clock_s(clockid_t id)
{
    struct timespec tv;
    clock_gettime(id, &tv);
    return (double)tv.tv_sec + (double)tv.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct args {
    long series, points, runs;
    double horizon;
    enum pred_model model;
};

static int parse(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        {"series", required_argument, NULL, 's'}, {"points", required_argument, NULL, 'n'},
        {"runs", required_argument, NULL, 'r'},   {"horizon", required_argument, NULL, 'H'},
        {"model", required_argument, NULL, 'm'},  {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        if (c == 's')
            bad = config_parse_int(optarg, 1, 10000000, &a->series) < 0;
        else if (c == 'n')
            bad = config_parse_int(optarg, 3, 10000000, &a->points) < 0;
        else if (c == 'r')
            bad = config_parse_int(optarg, 1, 1000, &a->runs) < 0;
        else if (c == 'H')
            bad = config_parse_double(optarg, &a->horizon) < 0 || !(a->horizon > 0);
        else if (c == 'm')
            bad = pred_model_parse(optarg, &a->model) < 0;
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "usage: bench_predictor [--series 10000] [--points 720] "
                            "[--runs 7] [--horizon 1800] [--model auto]\n");
            return -EINVAL;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct args a = {10000, 720, 7, 1800, PRED_AUTO};
    struct pred_opts o;
    size_t chosen[PRED_AUTO + 1] = {0};

    if (parse(argc, argv, &a) < 0)
        return 2;
    size_t S = (size_t)a.series, N = (size_t)a.points;
    double *ts = xmalloc(S * N * sizeof *ts), *v = xmalloc(S * N * sizeof *v);
    double *secs = xmalloc((size_t)a.runs * sizeof *secs);
    double *wall = xmalloc((size_t)a.runs * sizeof *wall);
    for (size_t s = 0; s < S; s++)
        make_series(ts + s * N, v + s * N, N);
    pred_opts_default(&o);
    o.model = a.model;
    o.horizon = a.horizon;
    printf("bench_predictor: %zu series x %zu points, model %s, horizon %g s, one thread\n", S, N,
           pred_model_name(a.model), a.horizon);
    for (long r = 0; r < a.runs; r++) {
        double sum = 0, t0 = clock_s(CLOCK_THREAD_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);
        for (size_t s = 0; s < S; s++) {
            struct pred_forecast f;
            if (pred_forecast(ts + s * N, v + s * N, N, &o, &f) < 0) {
                fprintf(stderr, "series %zu: forecast failed\n", s);
                return 1;
            }
            sum += f.upper;
            if (r == 0)
                chosen[f.model]++;
        }
        secs[r] = clock_s(CLOCK_THREAD_CPUTIME_ID) - t0;
        wall[r] = clock_s(CLOCK_MONOTONIC) - w0;
        printf("run %ld: %.3f s CPU (%.3f s wall), %.0f forecasts/s (checksum %.6g)\n", r + 1,
               secs[r], wall[r], (double)S / secs[r], sum);
    }
    qsort(secs, (size_t)a.runs, sizeof *secs, cmp_double);
    qsort(wall, (size_t)a.runs, sizeof *wall, cmp_double);
    double med = secs[a.runs / 2];
    printf("median: %.3f s CPU on one core for %zu forecasts (%.3f s wall), %.0f forecasts/s, "
           "%.1f us each\n",
           med, S, wall[a.runs / 2], (double)S / med, 1e6 * med / (double)S);
    printf("models chosen:");
    for (int m = 0; m < PRED_NCONCRETE; m++)
        printf(" %s %zu", pred_model_name((enum pred_model)m), chosen[m]);
    printf("\n");
    free(ts);
    free(v);
    free(secs);
    free(wall);
    return 0;
}
