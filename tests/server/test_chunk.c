/* Tests of the chunk encoding (server/chunk.c): every kind of series comes
 * back bit for bit, real-shaped series shrink, a blob of raw length is
 * read as raw points (what schema version 2 wrote), and damaged blobs are
 * refused without reading out of bounds (the suite also runs under ASan). */
#include "chunk.h"
#include "unit.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define N 256

static bool same_bits(const struct chunk_point *a, const struct chunk_point *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

/* Encodes, decodes, compares; returns the encoded length. */
static size_t roundtrip(const struct chunk_point *p, size_t n)
{
    uint8_t blob[N * sizeof(struct chunk_point)];
    struct chunk_point back[N];
    size_t len = chunk_encode(p, n, blob);
    CHECK(len <= n * sizeof *p);
    memset(back, 0xa5, sizeof back);
    CHECK(chunk_decode(blob, len, n, back) == 0);
    CHECK(same_bits(p, back, n));
    return len;
}

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double uniform(void)
{
    return (double)(next_rand() >> 11) / 9007199254740992.0;
}

/* What agents send: whole seconds, a percentage with two decimals
 * (parsed from text, as the server gets it) or byte rates as integers. */
static void test_agent_shaped(void)
{
    struct chunk_point p[N];
    double level = 40;
    for (int i = 0; i < N; i++) {
        level += (uniform() - 0.5) * 4;
        char text[32];
        snprintf(text, sizeof text, "%.2f", level);
        p[i] = (struct chunk_point){1732170000 + 10.0 * i, strtod(text, NULL)};
    }
    size_t len = roundtrip(p, N);
    fprintf(stderr, "  percentages, 10 s apart: %zu bytes for %d points (%.2f per point)\n", len, N,
            (double)len / N);
    CHECK(len < N * 4);

    for (int i = 0; i < N; i++)
        p[i] = (struct chunk_point){1732170000 + i, (double)(int64_t)(uniform() * 125e6)};
    len = roundtrip(p, N);
    fprintf(stderr, "  byte rates, 1 s apart: %zu bytes (%.2f per point)\n", len, (double)len / N);
    CHECK(len < N * 6);

    /* Milliseconds and microseconds, irregular, with a gap. */
    for (int i = 0; i < N; i++) {
        double t = 1732170000.0 + i * 1.5 + (i > 100 ? 3600 : 0);
        char text[32];
        snprintf(text, sizeof text, "%.3f", t + (double)(next_rand() % 1000) / 1e6 * (i % 2));
        p[i] = (struct chunk_point){strtod(text, NULL), 12.5};
    }
    for (int i = 1; i < N; i++)
        if (p[i].ts <= p[i - 1].ts)
            p[i].ts = nextafter(p[i - 1].ts, INFINITY);
    roundtrip(p, N);
    for (int i = 0; i < N; i++) {
        char text[32];
        snprintf(text, sizeof text, "%.6f", 1732170000.0 + i * 0.999983);
        p[i] = (struct chunk_point){strtod(text, NULL), (double)i};
    }
    len = roundtrip(p, N);
    CHECK(len < N * 5);
}

/* Values no decimal scale fits: they still come back exactly. */
static void test_any_double(void)
{
    struct chunk_point p[N];
    for (int i = 0; i < N; i++)
        p[i] = (struct chunk_point){1732170000 + i * uniform(), uniform() * 100};
    roundtrip(p, N);
    for (int i = 0; i < N; i++) {
        uint64_t b = next_rand();
        double v;
        memcpy(&v, &b, sizeof v);
        p[i] = (struct chunk_point){(double)i, v}; /* NaNs, infinities, denormals included */
    }
    roundtrip(p, N);
    const double odd[] = {-0.0,    0.0,  1e300,  -1e300,  5e-324,
                          DBL_MAX, 1e-9, 9.0e15, -9.0e15, 123456789012345.6,
                          0.1,     -7.25};
    size_t k = sizeof odd / sizeof odd[0];
    for (size_t i = 0; i < k; i++)
        p[i] = (struct chunk_point){1e9 + (double)i, odd[i]};
    roundtrip(p, k);
    /* Huge and negative timestamps, one point, two points. */
    p[0] = (struct chunk_point){-1e18, 3};
    p[1] = (struct chunk_point){1e18, 4};
    roundtrip(p, 2);
    roundtrip(p, 1);
    p[0] = (struct chunk_point){1732170000.25, 0.1};
    CHECK(roundtrip(p, 1) < 16);
}

/* A blob exactly n * 16 bytes long is the points as they are: what
 * version 2 databases hold. */
static void test_raw_blob(void)
{
    struct chunk_point p[8], back[8];
    for (int i = 0; i < 8; i++)
        p[i] = (struct chunk_point){1732170000 + i, i * 1.5};
    CHECK(chunk_decode((const uint8_t *)p, sizeof p, 8, back) == 0);
    CHECK(same_bits(p, back, 8));
    CHECK(chunk_decode((const uint8_t *)p, sizeof p - 16, 8, back) < 0);
}

/* Every prefix and many random corruptions of a valid blob: refused or
 * decoded, never a read past the end. */
static void test_damaged(void)
{
    struct chunk_point p[N], back[N];
    for (int i = 0; i < N; i++)
        p[i] = (struct chunk_point){1732170000 + i, (i % 7) * 0.25};
    uint8_t blob[N * 16];
    size_t len = chunk_encode(p, N, blob);
    CHECK(len < N * 16);
    int refused = 0;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees any overread */
        memcpy(copy, blob, cut);
        refused += chunk_decode(copy, cut, N, back) < 0;
        free(copy);
    }
    CHECK(refused == (int)len);                      /* every truncation is refused */
    CHECK(chunk_decode(blob, len, N - 1, back) < 0); /* bytes left over */
    for (int round = 0; round < 20000; round++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, blob, len);
        for (int k = 0; k < 1 + round % 4; k++)
            copy[next_rand() % len] ^= (uint8_t)(1 + next_rand() % 255);
        (void)chunk_decode(copy, len, N, back);
        free(copy);
    }
    uint8_t bad[4] = {2, 0, 0, 0}; /* unknown format */
    CHECK(chunk_decode(bad, 4, 1, back) < 0);
    uint8_t scale[4] = {1, 10, 0, 0}; /* scale out of range */
    CHECK(chunk_decode(scale, 4, 1, back) < 0);
}

int main(void)
{
    RUN(test_agent_shaped);
    RUN(test_any_double);
    RUN(test_raw_blob);
    RUN(test_damaged);
    return UNIT_DONE();
}
