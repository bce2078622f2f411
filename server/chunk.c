#include "chunk.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define FORMAT 1
#define SCALE_NONE 255
#define SCALE_MAX 9

static const double exp10_tab[SCALE_MAX + 1] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double double_of(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static uint64_t zigzag(uint64_t v)
{
    return (v << 1) ^ (uint64_t)(-(int64_t)(v >> 63));
}

static uint64_t unzigzag(uint64_t v)
{
    return (v >> 1) ^ (uint64_t)(-(int64_t)(v & 1));
}

/* The integer m with m / 10^k == d to the bit, if there is one. */
static bool scaled(double d, int k, int64_t *m)
{
    double x = d * exp10_tab[k];
    if (!(fabs(x) < 9.0e15)) /* also NaN; doubles are exact integers below 2^53 */
        return false;
    int64_t i = llround(x);
    if (bits_of((double)i / exp10_tab[k]) != bits_of(d))
        return false;
    *m = i;
    return true;
}

/* The smallest scale at which every point of one column (ts or value)
 * converts exactly, or SCALE_NONE. */
static int pick_scale(const struct chunk_point *pts, size_t n, bool ts)
{
    for (int k = 0; k <= SCALE_MAX; k++) {
        size_t i = 0;
        int64_t m;
        while (i < n && scaled(ts ? pts[i].ts : pts[i].value, k, &m))
            i++;
        if (i == n)
            return k;
    }
    return SCALE_NONE;
}

struct writer {
    uint8_t *p;
    size_t len, cap;
    bool full;
};

static void put_byte(struct writer *w, uint8_t b)
{
    if (w->len >= w->cap) {
        w->full = true;
        return;
    }
    w->p[w->len++] = b;
}

static void put_varint(struct writer *w, uint64_t v)
{
    while (v >= 0x80) {
        put_byte(w, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    put_byte(w, (uint8_t)v);
}

static void put_xor(struct writer *w, uint64_t x)
{
    int lead = 0, trail = 0;
    if (x == 0) {
        lead = 8;
    } else {
        while (!(x >> (56 - 8 * lead) & 0xff))
            lead++;
        while (!(x >> (8 * trail) & 0xff))
            trail++;
    }
    put_byte(w, (uint8_t)(lead << 4 | trail));
    for (int b = 7 - lead; b >= trail; b--)
        put_byte(w, (uint8_t)(x >> (8 * b)));
}

static void put_column(struct writer *w, const struct chunk_point *pts, size_t n, bool ts,
                       int scale)
{
    if (scale == SCALE_NONE) {
        uint64_t prev = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t b = bits_of(ts ? pts[i].ts : pts[i].value);
            put_xor(w, b ^ prev);
            prev = b;
        }
        return;
    }
    /* Unsigned arithmetic: differences wrap instead of overflowing, and
     * the decoder's sums wrap back. */
    uint64_t prev = 0, prev_delta = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t m = 0; /* scale was picked so that every point converts */
        scaled(ts ? pts[i].ts : pts[i].value, scale, &m);
        uint64_t delta = (uint64_t)m - prev;
        put_varint(w, zigzag(ts && i >= 2 ? delta - prev_delta : delta));
        prev = (uint64_t)m;
        prev_delta = delta;
    }
}

size_t chunk_encode(const struct chunk_point *pts, size_t n, uint8_t *out)
{
    size_t raw = n * sizeof *pts;
    if (n > 0) {
        /* One byte short of raw at most: a blob of raw's length is raw. */
        struct writer w = {out, 0, raw - 1, false};
        int ks = pick_scale(pts, n, true), vs = pick_scale(pts, n, false);
        put_byte(&w, FORMAT);
        put_byte(&w, (uint8_t)ks);
        put_byte(&w, (uint8_t)vs);
        put_column(&w, pts, n, true, ks);
        put_column(&w, pts, n, false, vs);
        if (!w.full)
            return w.len;
    }
    memcpy(out, pts, raw);
    return raw;
}

struct reader {
    const uint8_t *p;
    size_t len, pos;
};

static int get_byte(struct reader *r, uint8_t *b)
{
    if (r->pos >= r->len)
        return -1;
    *b = r->p[r->pos++];
    return 0;
}

static int get_varint(struct reader *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t b;
        if (get_byte(r, &b) < 0)
            return -1;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1; /* more than ten bytes */
}

static int get_column(struct reader *r, struct chunk_point *out, size_t n, bool ts, int scale)
{
    uint64_t prev = 0, prev_delta = 0;
    for (size_t i = 0; i < n; i++) {
        double d;
        if (scale == SCALE_NONE) {
            uint8_t h;
            if (get_byte(r, &h) < 0)
                return -1;
            int lead = h >> 4, trail = h & 15;
            if (lead + trail > 8 || (lead + trail == 8 && h != 0x80))
                return -1;
            uint64_t x = 0;
            for (int b = 7 - lead; b >= trail; b--) {
                uint8_t v;
                if (get_byte(r, &v) < 0)
                    return -1;
                x |= (uint64_t)v << (8 * b);
            }
            prev ^= x;
            d = double_of(prev);
        } else {
            uint64_t z;
            if (get_varint(r, &z) < 0)
                return -1;
            uint64_t delta = unzigzag(z);
            if (ts && i >= 2)
                delta += prev_delta;
            prev += delta;
            prev_delta = delta;
            d = (double)(int64_t)prev / exp10_tab[scale];
        }
        if (ts)
            out[i].ts = d;
        else
            out[i].value = d;
    }
    return 0;
}

int chunk_decode(const uint8_t *blob, size_t len, size_t n, struct chunk_point *out)
{
    if (len == n * sizeof *out) {
        memcpy(out, blob, len);
        return 0;
    }
    struct reader r = {blob, len, 0};
    uint8_t format, ks, vs;
    if (get_byte(&r, &format) < 0 || format != FORMAT || get_byte(&r, &ks) < 0 ||
        get_byte(&r, &vs) < 0)
        return -1;
    if ((ks > SCALE_MAX && ks != SCALE_NONE) || (vs > SCALE_MAX && vs != SCALE_NONE))
        return -1;
    if (get_column(&r, out, n, true, ks) < 0 || get_column(&r, out, n, false, vs) < 0)
        return -1;
    return r.pos == len ? 0 : -1;
}
