/* CSV trace reader. */
#include "trace.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "xalloc.h"

/* A field is a slice of the text, already trimmed. */
struct field {
    const char *p;
    size_t len;
};

struct parser {
    const char *name;
    char *err;
    size_t errlen;
    char sep;
    struct field *f;
    size_t nf, capf;
};

static void perr(struct parser *ps, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void perr(struct parser *ps, int line, const char *fmt, ...)
{
    va_list ap;
    int k;

    if (!ps->err || ps->errlen == 0)
        return;
    if (line > 0)
        k = snprintf(ps->err, ps->errlen, "%s:%d: ", ps->name, line);
    else
        k = snprintf(ps->err, ps->errlen, "%s: ", ps->name);
    if (k < 0 || (size_t)k >= ps->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(ps->err + k, ps->errlen - (size_t)k, fmt, ap);
    va_end(ap);
}

void trace_opts_default(struct trace_opts *o)
{
    memset(o, 0, sizeof *o);
}

void trace_free(struct trace *t)
{
    if (!t)
        return;
    free(t->ts);
    free(t->v);
    free(t->column);
    free(t->time_column);
    memset(t, 0, sizeof *t);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Splits [p, end) into trimmed fields at ps->sep, dropping surrounding quotes. */
static void split(struct parser *ps, const char *p, const char *end)
{
    ps->nf = 0;
    for (;;) {
        const char *q = p;
        while (q < end && *q != ps->sep)
            q++;
        const char *a = p, *b = q;
        while (a < b && is_blank(*a))
            a++;
        while (b > a && is_blank(b[-1]))
            b--;
        if (b - a >= 2 && *a == '"' && b[-1] == '"') {
            a++;
            b--;
        }
        ps->f = xgrow(ps->f, &ps->capf, ps->nf + 1, sizeof *ps->f);
        ps->f[ps->nf].p = a;
        ps->f[ps->nf].len = (size_t)(b - a);
        ps->nf++;
        if (q >= end)
            break;
        p = q + 1;
    }
}

/* Parses a whole field as a finite number. */
static int field_number(const struct field *f, double *out)
{
    char buf[64], *endp;

    if (f->len == 0 || f->len >= sizeof buf)
        return -EINVAL;
    memcpy(buf, f->p, f->len);
    buf[f->len] = '\0';
    errno = 0;
    double x = strtod(buf, &endp);
    if (*endp != '\0' || errno == ERANGE || !isfinite(x))
        return -EINVAL;
    *out = x;
    return 0;
}

static int field_date(const struct field *f, double *out)
{
    char buf[64];

    if (f->len == 0 || f->len >= sizeof buf)
        return -EINVAL;
    memcpy(buf, f->p, f->len);
    buf[f->len] = '\0';
    return trace_parse_date(buf, out);
}

static int digits(const char *s, int n, int *out)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    *out = x;
    return 0;
}

int trace_parse_date(const char *s, double *out)
{
    int y, mo, d, h, mi, sec;
    double frac = 0;
    struct tm tm;

    if (strlen(s) < 19 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != ' ' && s[10] != 'T') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
        return -EINVAL;
    s += 19;
    if (*s == '.') {
        double scale = 0.1;
        s++;
        if (!isdigit((unsigned char)*s))
            return -EINVAL;
        while (isdigit((unsigned char)*s)) {
            frac += (*s - '0') * scale;
            scale /= 10;
            s++;
        }
    }
    if (*s == 'Z')
        s++;
    if (*s != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *out = (double)timegm(&tm) + frac;
    return 0;
}

static int field_is_value(const struct field *f)
{
    double x;
    return field_number(f, &x) == 0 || field_date(f, &x) == 0;
}

static int name_is_time(const struct field *f)
{
    static const char *const prefixes[] = {"timestamp", "time", "date"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t k = strlen(prefixes[i]);
        if (f->len >= k && strncasecmp(f->p, prefixes[i], k) == 0)
            return 1;
    }
    return 0;
}

static int field_eq(const struct field *f, const char *s)
{
    return f->len == strlen(s) && strncasecmp(f->p, s, f->len) == 0;
}

/* Picks the separator from the first line: ';' over ',' over tab. */
static char pick_sep(const char *p, const char *end)
{
    const char *cands = ";,\t";
    for (const char *c = cands; *c; c++) {
        if (memchr(p, *c, (size_t)(end - p)))
            return *c;
    }
    return ',';
}

/* The layout decided from the first line. */
struct layout {
    int header;
    int tcol; /* -1: none */
    int vcol;
    size_t ncols;
};

static char *col_name(const struct parser *ps, const struct layout *lay, int col)
{
    char buf[32];
    if (lay->header)
        return xstrndup(ps->f[col].p, ps->f[col].len);
    snprintf(buf, sizeof buf, "#%d", col + 1);
    return xstrdup(buf);
}

static int find_time_col(struct parser *ps, const struct trace_opts *o, struct layout *lay,
                         int line)
{
    lay->tcol = -1;
    if (o->time_col) {
        for (size_t i = 0; lay->header && i < ps->nf; i++) {
            if (field_eq(&ps->f[i], o->time_col)) {
                lay->tcol = (int)i;
                return 0;
            }
        }
        perr(ps, line, "no timestamp column named '%s'", o->time_col);
        return -EINVAL;
    }
    for (size_t i = 0; i < ps->nf; i++) {
        double x;
        if (lay->header ? name_is_time(&ps->f[i]) : field_date(&ps->f[i], &x) == 0) {
            lay->tcol = (int)i;
            break;
        }
    }
    return 0;
}

static int list_candidates(struct parser *ps, const struct layout *lay, int line)
{
    char names[512] = "";
    size_t k = 0;
    for (size_t i = 0; i < ps->nf; i++) {
        if ((int)i == lay->tcol)
            continue;
        int w;
        if (lay->header)
            w = snprintf(names + k, sizeof names - k, "%s'%.*s'", k ? ", " : "", (int)ps->f[i].len,
                         ps->f[i].p);
        else
            w = snprintf(names + k, sizeof names - k, "%s#%zu", k ? ", " : "", i + 1);
        if (w < 0 || (size_t)w >= sizeof names - k)
            break;
        k += (size_t)w;
    }
    perr(ps, line, "several value columns (%s): choose one by name or number", names);
    return -EINVAL;
}

static int find_value_col(struct parser *ps, const struct trace_opts *o, struct layout *lay,
                          int line)
{
    lay->vcol = -1;
    if (o->column_index > 0) {
        if ((size_t)o->column_index > ps->nf) {
            perr(ps, line, "column %d requested but the file has %zu", o->column_index, ps->nf);
            return -EINVAL;
        }
        lay->vcol = o->column_index - 1;
    } else if (o->column) {
        for (size_t i = 0; lay->header && i < ps->nf; i++) {
            if (field_eq(&ps->f[i], o->column))
                lay->vcol = (int)i;
        }
        if (lay->vcol < 0) {
            perr(ps, line, "no column named '%s'%s", o->column,
                 lay->header ? "" : " (the file has no header row; give a column number)");
            return -EINVAL;
        }
    } else {
        size_t others = 0;
        for (size_t i = 0; i < ps->nf; i++) {
            if (lay->header && field_eq(&ps->f[i], "value")) {
                lay->vcol = (int)i;
                return 0;
            }
            if ((int)i != lay->tcol) {
                others++;
                lay->vcol = (int)i;
            }
        }
        if (others != 1)
            return list_candidates(ps, lay, line);
    }
    if (lay->vcol == lay->tcol) {
        perr(ps, line, "the value column is the timestamp column");
        return -EINVAL;
    }
    return 0;
}

/* Decides header, separator and columns from the first non-empty line. */
static int read_layout(struct parser *ps, const struct trace_opts *o, struct layout *lay, int line)
{
    lay->header = 0;
    for (size_t i = 0; i < ps->nf; i++) {
        if (!field_is_value(&ps->f[i]))
            lay->header = 1;
    }
    lay->ncols = ps->nf;
    if (find_time_col(ps, o, lay, line) < 0 || find_value_col(ps, o, lay, line) < 0)
        return -EINVAL;
    if (lay->tcol < 0 && !(o->interval > 0)) {
        perr(ps, line, "no timestamp column: give the interval between rows (--interval)");
        return -EINVAL;
    }
    return 0;
}

struct rowctx {
    struct trace *t;
    size_t cap;
    int millis_decided;
};

static int read_time(struct parser *ps, const struct layout *lay, struct rowctx *rc, int line,
                     double *ts)
{
    const struct field *f = &ps->f[lay->tcol];
    if (field_number(f, ts) < 0 && field_date(f, ts) < 0) {
        perr(ps, line, "timestamp '%.*s' is neither Unix time nor YYYY-MM-DD HH:MM:SS", (int)f->len,
             f->p);
        return -EINVAL;
    }
    if (!rc->millis_decided) {
        rc->t->ts_millis = fabs(*ts) > 1e11;
        rc->millis_decided = 1;
    }
    if (rc->t->ts_millis)
        *ts /= 1000.0;
    return 0;
}

static int read_row(struct parser *ps, const struct trace_opts *o, const struct layout *lay,
                    struct rowctx *rc, int line)
{
    struct trace *t = rc->t;
    size_t need = (size_t)(lay->vcol > lay->tcol ? lay->vcol : lay->tcol) + 1;
    double ts, v;

    if (ps->nf < need) {
        perr(ps, line, "%zu fields, expected %zu", ps->nf, lay->ncols);
        return -EINVAL;
    }
    if (field_number(&ps->f[lay->vcol], &v) < 0) {
        perr(ps, line, "column '%s': '%.*s' is not a number", t->column, (int)ps->f[lay->vcol].len,
             ps->f[lay->vcol].p);
        return -EINVAL;
    }
    if (lay->tcol >= 0) {
        if (read_time(ps, lay, rc, line, &ts) < 0)
            return -EINVAL;
    } else {
        ts = o->start + o->interval * (double)t->n;
    }
    if (t->n > 0 && !(ts > t->ts[t->n - 1])) {
        perr(ps, line, "timestamp %.17g is not after the previous row's %.17g", ts,
             t->ts[t->n - 1]);
        return -EINVAL;
    }
    if (t->n == rc->cap) {
        size_t c = rc->cap;
        t->ts = xgrow(t->ts, &c, t->n + 1, sizeof *t->ts);
        t->v = xgrow(t->v, &rc->cap, t->n + 1, sizeof *t->v);
    }
    t->ts[t->n] = ts;
    t->v[t->n] = v;
    t->n++;
    return 0;
}

int trace_parse(const char *text, size_t len, const char *name, const struct trace_opts *o,
                struct trace *out, char *err, size_t errlen)
{
    struct parser ps = {.name = name ? name : "trace", .err = err, .errlen = errlen};
    struct layout lay = {0};
    struct rowctx rc = {.t = out};
    const char *p = text, *end = text + len;
    int line = 0, have_layout = 0, rc_ = 0;

    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *a = p;
        line++;
        p = nl ? nl + 1 : end;
        while (a < le && is_blank(*a))
            a++;
        if (a == le)
            continue;
        if (!have_layout) {
            ps.sep = pick_sep(a, le);
            split(&ps, a, le);
            if ((rc_ = read_layout(&ps, o, &lay, line)) < 0)
                goto fail;
            out->column = col_name(&ps, &lay, lay.vcol);
            out->time_column = lay.tcol >= 0 ? col_name(&ps, &lay, lay.tcol) : NULL;
            have_layout = 1;
            if (lay.header)
                continue;
        } else {
            split(&ps, a, le);
        }
        if ((rc_ = read_row(&ps, o, &lay, &rc, line)) < 0)
            goto fail;
    }
    if (out->n == 0) {
        perr(&ps, 0, "no data rows");
        rc_ = -ENODATA;
        goto fail;
    }
    free(ps.f);
    return 0;
fail:
    free(ps.f);
    trace_free(out);
    return rc_;
}

int trace_load(const char *path, const struct trace_opts *o, struct trace *out, char *err,
               size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc;

    memset(out, 0, sizeof *out);
    if (!fp) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    for (;;) {
        buf = xgrow(buf, &cap, len + 65536, 1);
        size_t k = fread(buf + len, 1, cap - len, fp);
        len += k;
        if (k == 0)
            break;
    }
    if (ferror(fp)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -EIO;
        goto out;
    }
    rc = trace_parse(buf, len, path, o, out, err, errlen);
out:
    fclose(fp);
    free(buf);
    return rc;
}
