/* Value formatting for the CLI's tables. */
#include "format.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_percent(const char *m)
{
    if (strcmp(m, "cpu") == 0 || strcmp(m, "mem") == 0 || strcmp(m, "swap") == 0)
        return true;
    return strncmp(m, "gpu", 3) == 0 && (has_suffix(m, "_util") || has_suffix(m, "_mem"));
}

static const char *fmt_bytes(char *buf, size_t len, double b, const char *suffix)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    double a = fabs(b);
    while (a >= 1024 && u < 5) {
        a /= 1024;
        b /= 1024;
        u++;
    }
    snprintf(buf, len, u ? "%.1f%s%s" : "%.0f%s%s", b, units[u], suffix);
    return buf;
}

const char *fmt_num(char *buf, size_t len, double v)
{
    if (!isfinite(v))
        snprintf(buf, len, "%g", v);
    else if (v == floor(v) && fabs(v) < 1e9)
        snprintf(buf, len, "%.0f", v);
    else if (fabs(v) >= 0.01 && fabs(v) < 1e6)
        snprintf(buf, len, "%.*f", fabs(v) < 10 ? 2 : 1, v);
    else
        snprintf(buf, len, "%.3g", v);
    return buf;
}

const char *fmt_metric(char *buf, size_t len, const char *metric, double v)
{
    if (!metric)
        return fmt_num(buf, len, v);
    if (is_percent(metric)) {
        snprintf(buf, len, "%.1f%%", v);
        return buf;
    }
    if (has_suffix(metric, "_bytes"))
        return fmt_bytes(buf, len, v, "");
    if (has_suffix(metric, "_bps"))
        return fmt_bytes(buf, len, v, "/s");
    if (has_suffix(metric, "_iops")) {
        char n[48];
        snprintf(buf, len, "%s/s", fmt_num(n, sizeof n, v));
        return buf;
    }
    return fmt_num(buf, len, v);
}

const char *fmt_age(char *buf, size_t len, double s)
{
    if (!isfinite(s) || s < 0)
        s = 0;
    long t = (long)s;
    if (t < 60)
        snprintf(buf, len, "%lds", t);
    else if (t < 600)
        snprintf(buf, len, t % 60 ? "%ldm%lds" : "%ldm", t / 60, t % 60);
    else if (t < 3600)
        snprintf(buf, len, "%ldm", t / 60);
    else if (t < 86400)
        snprintf(buf, len, (t % 3600) / 60 && t < 36000 ? "%ldh%ldm" : "%ldh", t / 3600,
                 (t % 3600) / 60);
    else
        snprintf(buf, len, (t % 86400) / 3600 && t < 864000 ? "%ldd%ldh" : "%ldd", t / 86400,
                 (t % 86400) / 3600);
    return buf;
}

const char *fmt_utc(char *buf, size_t len, double ts)
{
    time_t t = (time_t)ts;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, len, "%.0f", ts);
    return buf;
}

static json_t *lookup(json_t *obj, const char *path)
{
    char part[128];
    while (obj && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        snprintf(part, sizeof part, "%.*s", (int)n, path);
        obj = json_is_object(obj) ? json_object_get(obj, part) : NULL;
        path += n + (dot ? 1 : 0);
    }
    return obj;
}

static json_t *vpick(json_t *obj, va_list ap)
{
    for (const char *k; (k = va_arg(ap, const char *));) {
        json_t *v = lookup(obj, k);
        if (v && !json_is_null(v))
            return v;
    }
    return NULL;
}

json_t *json_pick(json_t *obj, ...)
{
    va_list ap;
    va_start(ap, obj);
    json_t *v = vpick(obj, ap);
    va_end(ap);
    return v;
}

bool json_pick_num(double *out, json_t *obj, ...)
{
    va_list ap;
    va_start(ap, obj);
    json_t *v = vpick(obj, ap);
    va_end(ap);
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}
