/* Terminal progress line. */
#include "progress.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "xalloc.h"

#define REDRAW_EVERY 0.1 /* seconds */
#define BAR_WIDTH 24

struct progress {
    char *label;
    enum progress_unit unit;
    uint64_t total, done;
    char extra[96];
    double start, last_draw;
    int drawn_width;
};

static double mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct progress *progress_new(const char *label, enum progress_unit unit, uint64_t total, FILE *out)
{
    if (!isatty(STDERR_FILENO) || (out && isatty(fileno(out))))
        return NULL;
    struct progress *p = xcalloc(1, sizeof *p);
    p->label = xstrdup(label);
    p->unit = unit;
    p->total = total;
    p->start = mono();
    return p;
}

static void fmt_bytes(char *buf, size_t len, double b)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        u++;
    }
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

static int term_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return 80;
}

static void draw(struct progress *p, double now, bool final)
{
    char line[512], amount[64] = "", rate[48] = "", bar[BAR_WIDTH + 3] = "";
    double secs = now - p->start;
    if (p->unit == PROGRESS_BYTES) {
        fmt_bytes(amount, sizeof amount, (double)p->done);
        if (secs > 0.2) {
            char r[32];
            fmt_bytes(r, sizeof r, (double)p->done / secs);
            snprintf(rate, sizeof rate, "  %s/s", r);
        }
    } else if (p->total) {
        snprintf(amount, sizeof amount, "%llu/%llu", (unsigned long long)p->done,
                 (unsigned long long)p->total);
    } else {
        snprintf(amount, sizeof amount, "%llu", (unsigned long long)p->done);
    }
    if (p->total) {
        double f = p->done >= p->total ? 1.0 : (double)p->done / (double)p->total;
        int fill = (int)(f * BAR_WIDTH);
        bar[0] = '[';
        for (int i = 0; i < BAR_WIDTH; i++)
            bar[1 + i] = i < fill ? '#' : '.';
        bar[1 + BAR_WIDTH] = ']';
        bar[2 + BAR_WIDTH] = '\0';
        snprintf(rate + strlen(rate), sizeof rate - strlen(rate), "  %3.0f%%", f * 100);
    }
    int n = snprintf(line, sizeof line, "%s %s %s%s%s%s  %.1fs", p->label, bar, amount, rate,
                     p->extra[0] ? "  " : "", p->extra, secs);
    int width = term_width() - 1;
    if (n > width)
        n = width;
    /* Pad over a longer previous line rather than relying on ESC[K. */
    int pad = p->drawn_width > n ? p->drawn_width - n : 0;
    fprintf(stderr, "\r%.*s%*s%s", n, line, pad, "", final ? "\n" : "");
    fflush(stderr);
    p->drawn_width = n;
    p->last_draw = now;
}

void progress_update(struct progress *p, uint64_t done, const char *extra)
{
    if (!p)
        return;
    p->done = done;
    snprintf(p->extra, sizeof p->extra, "%s", extra ? extra : "");
    double now = mono();
    if (now - p->last_draw >= REDRAW_EVERY)
        draw(p, now, false);
}

void progress_finish(struct progress *p)
{
    if (!p)
        return;
    draw(p, mono(), true);
    free(p->label);
    free(p);
}
