/* InfluxDB line protocol ingest (Telegraf's wire format) into scalecast
 * samples.
 *
 * Two phases keep a batch all-or-nothing: every line is parsed, validated
 * and mapped first (counter readings are only collected then); the counter
 * state is touched only once the whole body is known to be good, and that
 * phase cannot fail. Syntax follows InfluxDB's reference ("Line protocol",
 * InfluxDB 1.8/2.x docs): measurement[,tag=v...] field=v[,field=v...] [ts]. */
#include "lineproto.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define NONE SIZE_MAX /* an absent string offset */
#define ERR_LINE_MAX 120
#define HOST_IDLE_FORGET 3600.0 /* seconds before a silent host may be evicted */
#define MAX_DEVICES 1024        /* per host and measurement */
#define BUCKETS 4096

/* ---- Counter state ------------------------------------------------------ */

enum ckind { C_DISK, C_NET, C_KINDS };
enum { NCOUNT = 4 };

/* Field names of each counter measurement and the rate metrics they give. */
static const struct {
    const char *measurement, *device_tag;
    int n;
    const char *field[NCOUNT], *metric[NCOUNT];
} counters[C_KINDS] = {
    [C_DISK] = {"diskio",
                "name",
                4,
                {"read_bytes", "write_bytes", "reads", "writes"},
                {"disk_read_bps", "disk_write_bps", "disk_read_iops", "disk_write_iops"}},
    [C_NET] = {"net", "interface", 2, {"bytes_recv", "bytes_sent"}, {"net_rx_bps", "net_tx_bps"}},
};

struct dev {
    char *name;
    double prev_ts, last_ts; /* 0: none */
    double prev[NCOUNT], last[NCOUNT];
    unsigned prev_mask, last_mask;
};

struct host {
    char *name;
    enum ckind kind;
    double seen; /* newest timestamp observed */
    struct dev *devs;
    size_t ndev, cap;
    struct host *next;
};

struct lineproto_state {
    struct host *bucket[BUCKETS];
    size_t nhosts;
};

struct lineproto_state *lineproto_state_new(void)
{
    return xcalloc(1, sizeof(struct lineproto_state));
}

static void host_free(struct host *h)
{
    for (size_t i = 0; i < h->ndev; i++)
        free(h->devs[i].name);
    free(h->devs);
    free(h->name);
    free(h);
}

void lineproto_state_free(struct lineproto_state *st)
{
    if (!st)
        return;
    for (size_t b = 0; b < BUCKETS; b++) {
        while (st->bucket[b]) {
            struct host *h = st->bucket[b];
            st->bucket[b] = h->next;
            host_free(h);
        }
    }
    free(st);
}

static size_t host_hash(const char *s, enum ckind kind)
{
    uint32_t h = 2166136261u ^ (uint32_t)kind; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % BUCKETS;
}

/* Forgets hosts that sent nothing for an hour before `now`. */
static void evict_idle(struct lineproto_state *st, double now)
{
    for (size_t b = 0; b < BUCKETS; b++) {
        for (struct host **pp = &st->bucket[b]; *pp;) {
            struct host *h = *pp;
            if (h->seen < now - HOST_IDLE_FORGET) {
                *pp = h->next;
                host_free(h);
                st->nhosts--;
            } else {
                pp = &h->next;
            }
        }
    }
}

/* The host's record, created if needed; NULL when the table is full of
 * active hosts. */
static struct host *host_get(struct lineproto_state *st, const char *name, enum ckind kind,
                             double ts)
{
    size_t b = host_hash(name, kind);
    for (struct host *h = st->bucket[b]; h; h = h->next) {
        if (h->kind == kind && strcmp(h->name, name) == 0)
            return h;
    }
    if (st->nhosts >= LINEPROTO_MAX_HOSTS)
        evict_idle(st, ts);
    if (st->nhosts >= LINEPROTO_MAX_HOSTS)
        return NULL;
    struct host *h = xcalloc(1, sizeof *h);
    h->name = xstrdup(name);
    h->kind = kind;
    h->next = st->bucket[b];
    st->bucket[b] = h;
    st->nhosts++;
    return h;
}

static struct dev *dev_get(struct host *h, const char *name)
{
    for (size_t i = 0; i < h->ndev; i++) {
        if (strcmp(h->devs[i].name, name) == 0)
            return &h->devs[i];
    }
    if (h->ndev >= MAX_DEVICES)
        return NULL;
    h->devs = xgrow(h->devs, &h->cap, h->ndev + 1, sizeof *h->devs);
    struct dev *d = &h->devs[h->ndev++];
    memset(d, 0, sizeof *d);
    d->name = xstrdup(name);
    return d;
}

/* Bytes (or operations) per second of counter i at the device's last
 * observation, if two increasing observations exist. A counter that went
 * down was reset (reboot, device re-added): no rate for that interval. */
static bool dev_rate(const struct dev *d, int i, double *rate)
{
    unsigned bit = 1u << i;
    if (d->prev_ts <= 0 || !(d->prev_mask & d->last_mask & bit) || d->last[i] < d->prev[i])
        return false;
    *rate = (d->last[i] - d->prev[i]) / (d->last_ts - d->prev_ts);
    return true;
}

/* ---- Parser ------------------------------------------------------------- */

/* A sample while parsing: strings as arena offsets (the arena moves). */
struct raw {
    size_t node, container, service, metric;
    double ts, value;
};

/* A reading of a counter measurement, applied to the state in phase 2. */
struct obs {
    size_t host, dev;
    enum ckind kind;
    double ts;
    double v[NCOUNT];
    unsigned mask;
};

struct tag {
    size_t key, val;
};

enum ftype { F_FLOAT, F_INT, F_UINT, F_BOOL, F_STRING };

struct field {
    size_t key;
    enum ftype type;
    double v;
};

struct parser {
    const char *line;
    size_t linelen;
    long lineno;
    double unit, now; /* seconds per timestamp unit */
    long long div;    /* timestamp units per second, for the exact split (0: unit >= 1 s) */
    char *arena;
    size_t alen, acap;
    struct tag *tags;
    size_t ntags, tcap;
    struct field *fields;
    size_t nfields, fcap;
    struct raw *out;
    size_t n, cap;
    struct obs *obs;
    size_t nobs, ocap;
    struct lineproto_stats stats;
    char *err;
    size_t errlen;
};

/* Formats the InfluxDB-style error for the current line. Returns -EINVAL. */
static int fail(struct parser *ps, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    bool cut = ps->linelen > ERR_LINE_MAX;
    snprintf(ps->err, ps->errlen, "unable to parse '%.*s%s': %s (line %ld)",
             (int)(cut ? ERR_LINE_MAX : ps->linelen), ps->line, cut ? "..." : "", reason,
             ps->lineno);
    return -EINVAL;
}

static size_t arena_put(struct parser *ps, const char *s, size_t len)
{
    ps->arena = xgrow(ps->arena, &ps->acap, ps->alen + len + 1, 1);
    size_t off = ps->alen;
    memcpy(ps->arena + off, s, len);
    ps->arena[off + len] = '\0';
    ps->alen += len + 1;
    return off;
}

static const char *str(const struct parser *ps, size_t off)
{
    return off == NONE ? "" : ps->arena + off;
}

/* Reads an identifier up to an unescaped character of `stops` (or the end),
 * unescaping backslash before a character of `escapable` or a backslash;
 * any other backslash is literal, as InfluxDB reads it. Returns the arena
 * offset of the result; *p is left on the stop character. */
static size_t read_ident(struct parser *ps, const char **p, const char *end, const char *stops,
                         const char *escapable)
{
    size_t off = ps->alen;
    const char *q = *p;
    while (q < end && !strchr(stops, *q)) {
        char c = *q++;
        if (c == '\\' && q < end && (*q == '\\' || strchr(escapable, *q)))
            c = *q++;
        ps->arena = xgrow(ps->arena, &ps->acap, ps->alen + 2, 1);
        ps->arena[ps->alen++] = c;
    }
    ps->arena = xgrow(ps->arena, &ps->acap, ps->alen + 1, 1);
    ps->arena[ps->alen++] = '\0';
    *p = q;
    return off;
}

static int parse_tags(struct parser *ps, const char **p, const char *end)
{
    ps->ntags = 0;
    while (*p < end && **p == ',') {
        (*p)++;
        size_t key = read_ident(ps, p, end, ",= ", ",= ");
        if (!ps->arena[key])
            return fail(ps, "missing tag key");
        if (*p >= end || **p != '=')
            return fail(ps, "missing tag value");
        (*p)++;
        size_t val = read_ident(ps, p, end, ",= ", ",= ");
        if (*p < end && **p == '=')
            return fail(ps, "invalid tag format");
        if (!ps->arena[val])
            return fail(ps, "missing tag value");
        for (size_t i = 0; i < ps->ntags; i++) {
            if (strcmp(str(ps, ps->tags[i].key), str(ps, key)) == 0)
                return fail(ps, "duplicate tags");
        }
        ps->tags = xgrow(ps->tags, &ps->tcap, ps->ntags + 1, sizeof *ps->tags);
        ps->tags[ps->ntags++] = (struct tag){key, val};
    }
    return 0;
}

/* The arena offset of a tag's value, or NONE. */
static size_t tag_off(const struct parser *ps, const char *key)
{
    for (size_t i = 0; i < ps->ntags; i++) {
        if (strcmp(str(ps, ps->tags[i].key), key) == 0)
            return ps->tags[i].val;
    }
    return NONE;
}

/* A tag's value, valid until the arena grows; NULL if absent. */
static const char *tag(const struct parser *ps, const char *key)
{
    size_t off = tag_off(ps, key);
    return off == NONE ? NULL : str(ps, off);
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/* A number token: float, or integer with suffix i (signed) or u (unsigned). */
static int parse_number(struct parser *ps, const char *s, size_t n, struct field *f)
{
    char buf[64];
    if (n >= sizeof buf)
        return fail(ps, "invalid number '%.20s...'", s);
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    if (buf[n - 1] == 'i' || buf[n - 1] == 'u') {
        bool neg = buf[0] == '-';
        if (!all_digits(buf + neg, n - 1 - neg) || (neg && buf[n - 1] == 'u'))
            return fail(ps, "invalid %s '%s'", buf[n - 1] == 'i' ? "integer" : "unsigned", buf);
        if (buf[n - 1] == 'i') {
            long long v = strtoll(buf, &end, 10);
            if (errno == ERANGE)
                return fail(ps, "unable to parse integer %s: value out of range", buf);
            f->type = F_INT;
            f->v = (double)v;
        } else {
            unsigned long long v = strtoull(buf, &end, 10);
            if (errno == ERANGE)
                return fail(ps, "unable to parse unsigned %s: value out of range", buf);
            f->type = F_UINT;
            f->v = (double)v;
        }
        return 0;
    }
    /* strtod alone would take "nan", "inf" and hex; InfluxDB takes none. */
    for (size_t i = 0; i < n; i++) {
        if (!strchr("0123456789.eE+-", buf[i]))
            return fail(ps, "invalid number '%s'", buf);
    }
    double v = strtod(buf, &end);
    if (*end != '\0' || end == buf || !isfinite(v))
        return fail(ps, "invalid number '%s'", buf);
    f->type = F_FLOAT;
    f->v = v;
    return 0;
}

static bool is_word(const char *s, size_t n, const char *const *words)
{
    for (; *words; words++) {
        if (strlen(*words) == n && memcmp(s, *words, n) == 0)
            return true;
    }
    return false;
}

static int parse_value(struct parser *ps, const char **p, const char *end, struct field *f)
{
    static const char *const truths[] = {"t", "T", "true", "True", "TRUE", NULL};
    static const char *const falses[] = {"f", "F", "false", "False", "FALSE", NULL};
    const char *s = *p;
    if (s >= end || *s == ',' || *s == ' ')
        return fail(ps, "missing field value");
    if (*s == '"') {
        /* Strings are stored nowhere; only their syntax is checked. */
        const char *q = s + 1;
        while (q < end && *q != '"')
            q += (*q == '\\' && q + 1 < end) ? 2 : 1;
        if (q >= end)
            return fail(ps, "unbalanced quotes");
        *p = q + 1;
        f->type = F_STRING;
        return 0;
    }
    const char *q = s;
    while (q < end && *q != ',' && *q != ' ')
        q++;
    *p = q;
    size_t n = (size_t)(q - s);
    if (is_word(s, n, truths) || is_word(s, n, falses)) {
        f->type = F_BOOL;
        f->v = is_word(s, n, truths) ? 1 : 0;
        return 0;
    }
    if (strchr("-+.0123456789", *s))
        return parse_number(ps, s, n, f);
    return fail(ps, "invalid boolean '%.*s'", (int)(n > 40 ? 40 : n), s);
}

static int parse_fields(struct parser *ps, const char **p, const char *end)
{
    ps->nfields = 0;
    for (;;) {
        size_t key = read_ident(ps, p, end, ",= ", ",= ");
        if (*p >= end || **p != '=') {
            if (!ps->arena[key] && ps->nfields == 0)
                return fail(ps, "missing fields");
            return fail(ps, "missing field value");
        }
        if (!ps->arena[key])
            return fail(ps, "missing field key");
        (*p)++;
        struct field f = {.key = key};
        if (parse_value(ps, p, end, &f) < 0)
            return -EINVAL;
        ps->fields = xgrow(ps->fields, &ps->fcap, ps->nfields + 1, sizeof *ps->fields);
        ps->fields[ps->nfields++] = f;
        if (*p >= end || **p == ' ')
            return 0;
        if (**p != ',')
            return fail(ps, "invalid field format");
        (*p)++;
    }
}

/* The optional timestamp, in seconds. */
static int parse_ts(struct parser *ps, const char *s, const char *end, double *ts)
{
    if (s == end) {
        *ts = ps->now;
        if (!(*ts >= INGEST_TS_MIN && *ts <= INGEST_TS_MAX))
            return fail(ps, "no timestamp, and the server's clock (%.0f) is out of range", *ts);
        return 0;
    }
    bool neg = *s == '-';
    if (!all_digits(s + neg, (size_t)(end - s) - neg) || end - s > 21)
        return fail(ps, "bad timestamp");
    char buf[24];
    snprintf(buf, sizeof buf, "%.*s", (int)(end - s), s);
    errno = 0;
    long long t = strtoll(buf, NULL, 10);
    if (errno == ERANGE)
        return fail(ps, "bad timestamp");
    /* Whole seconds and the fraction apart: a nanosecond count does not
     * fit a double exactly. */
    if (ps->div)
        *ts = (double)(t / ps->div) + (double)(t % ps->div) / (double)ps->div;
    else
        *ts = (double)t * ps->unit;
    if (!(*ts >= INGEST_TS_MIN && *ts <= INGEST_TS_MAX))
        return fail(ps,
                    "timestamp %s is out of range (%.0f s after 1970, at the precision "
                    "given); check the precision parameter",
                    buf, *ts);
    return 0;
}

/* ---- Mapping ------------------------------------------------------------ */

static void emit(struct parser *ps, size_t node, size_t container, size_t service,
                 const char *metric, double ts, double value)
{
    ps->out = xgrow(ps->out, &ps->cap, ps->n + 1, sizeof *ps->out);
    size_t m = arena_put(ps, metric, strlen(metric));
    ps->out[ps->n++] = (struct raw){node, container, service, m, ts, value};
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Whole disks only, by name (Telegraf sends no sysfs facts): the agent's
 * rule in agent/coll_disk.c without its /sys/block check. */
static bool disk_counts(const char *name)
{
    static const char *const skip[] = {"loop", "ram", "zram", "dm-", "md", NULL};
    for (const char *const *s = skip; *s; s++) {
        if (has_prefix(name, *s))
            return false;
    }
    size_t n = strlen(name), i = n;
    while (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9')
        i--;
    if (i == n || i == 0)
        return true;
    if (name[i - 1] == 'p' && i >= 2 && name[i - 2] >= '0' && name[i - 2] <= '9')
        return false; /* nvme0n1p1, mmcblk0p2 */
    bool letter = (name[i - 1] >= 'a' && name[i - 1] <= 'z');
    return !(letter && (has_prefix(name, "sd") || has_prefix(name, "hd") ||
                        has_prefix(name, "vd") || has_prefix(name, "xvd")));
}

/* Physical-looking interfaces: the agent asks sysfs which are virtual;
 * here the usual names of virtual ones are left out. "all" is Telegraf's
 * line of protocol statistics, which has no byte counters. */
static bool net_counts(const char *name)
{
    static const char *const skip[] = {"lo",      "docker", "br-",  "veth",  "virbr",      "vxlan",
                                       "flannel", "cni",    "cali", "weave", "tun",        "tap",
                                       "kube-",   "cilium", "vnet", "dummy", "bond_slave", NULL};
    if (strcmp(name, "all") == 0)
        return false;
    for (const char *const *s = skip; *s; s++) {
        if (has_prefix(name, *s))
            return false;
    }
    return true;
}

static bool numeric(const struct field *f)
{
    return f->type != F_STRING && f->type != F_BOOL;
}

/* A required node id: the `host` tag, validated. */
static int need_host(struct parser *ps, size_t *host)
{
    for (size_t i = 0; i < ps->ntags; i++) {
        if (strcmp(str(ps, ps->tags[i].key), "host") == 0) {
            const char *why = ingest_check_name(NAME_NODE, str(ps, ps->tags[i].val));
            if (why)
                return fail(ps, "tag host='%.64s' is not a valid node id: %s",
                            str(ps, ps->tags[i].val), why);
            *host = ps->tags[i].val;
            return 0;
        }
    }
    return fail(ps, "no 'host' tag: scalecast needs it as the node id (Telegraf adds it "
                    "unless omit_hostname = true)");
}

/* Container and service labels from Telegraf's docker tags. */
static int container_labels(struct parser *ps, size_t *container, size_t *service)
{
    *container = *service = NONE;
    for (size_t i = 0; i < ps->ntags; i++) {
        const char *k = str(ps, ps->tags[i].key);
        size_t *dst = NULL;
        if (strcmp(k, "container_name") == 0)
            dst = container;
        else if (strcmp(k, "com.docker.swarm.service.name") == 0)
            dst = service;
        else if (strcmp(k, "com.docker.compose.service") == 0 && *service == NONE)
            dst = service;
        if (!dst)
            continue;
        const char *why = ingest_check_name(NAME_LABEL, str(ps, ps->tags[i].val));
        if (why)
            return fail(ps, "tag %s='%.64s' %s", k, str(ps, ps->tags[i].val), why);
        *dst = ps->tags[i].val;
    }
    return 0;
}

struct rename {
    const char *field, *metric;
};

/* Fields renamed one to one; every other field of the line is skipped. */
static int map_fields(struct parser *ps, const struct rename *map, size_t container, size_t service,
                      double ts)
{
    size_t host = NONE;
    for (size_t i = 0; i < ps->nfields; i++) {
        const struct field *f = &ps->fields[i];
        const struct rename *r = map;
        while (r->field && strcmp(r->field, str(ps, f->key)) != 0)
            r++;
        if (!r->field || !numeric(f)) {
            ps->stats.skipped_fields++;
            continue;
        }
        if (host == NONE && need_host(ps, &host) < 0)
            return -EINVAL;
        emit(ps, host, container, service, r->metric, ts, f->v);
    }
    return 0;
}

static const struct field *field(const struct parser *ps, const char *key)
{
    for (size_t i = 0; i < ps->nfields; i++) {
        if (strcmp(str(ps, ps->fields[i].key), key) == 0 && numeric(&ps->fields[i]))
            return &ps->fields[i];
    }
    return NULL;
}

/* cpu=cpu-total: busy = 100 - idle - iowait (waiting on I/O is idle time
 * for the agent too). Per-CPU lines are skipped. */
static int map_cpu(struct parser *ps, double ts)
{
    const char *cpu = tag(ps, "cpu");
    const struct field *idle = field(ps, "usage_idle");
    if (!cpu || strcmp(cpu, "cpu-total") != 0 || !idle) {
        ps->stats.skipped_fields += ps->nfields;
        return 0;
    }
    const struct field *iowait = field(ps, "usage_iowait");
    size_t host;
    if (need_host(ps, &host) < 0)
        return -EINVAL;
    double busy = 100.0 - idle->v - (iowait ? iowait->v : 0.0);
    emit(ps, host, NONE, NONE, "cpu", ts, busy < 0 ? 0 : busy > 100 ? 100 : busy);
    ps->stats.skipped_fields += ps->nfields - 1 - (iowait != NULL);
    return 0;
}

static int map_counters(struct parser *ps, enum ckind kind, double ts)
{
    const char *dev = tag(ps, counters[kind].device_tag);
    struct obs o = {.kind = kind, .ts = ts, .dev = tag_off(ps, counters[kind].device_tag)};
    for (int i = 0; i < counters[kind].n; i++) {
        const struct field *f = field(ps, counters[kind].field[i]);
        if (f) {
            o.v[i] = f->v;
            o.mask |= 1u << i;
        }
    }
    bool counted = dev && (kind == C_DISK ? disk_counts(dev) : net_counts(dev));
    if (!counted || !o.mask) {
        ps->stats.skipped_fields += ps->nfields;
        return 0;
    }
    if (need_host(ps, &o.host) < 0)
        return -EINVAL;
    ps->obs = xgrow(ps->obs, &ps->ocap, ps->nobs + 1, sizeof *ps->obs);
    ps->obs[ps->nobs++] = o;
    ps->stats.skipped_fields += ps->nfields - (size_t)__builtin_popcount(o.mask);
    return 0;
}

/* Any other measurement: <measurement>_<field> when that is a valid metric
 * name, per container when the line names one (docker_container_* inputs). */
static int map_other(struct parser *ps, size_t meas, double ts)
{
    size_t host = NONE, container, service;
    if (container_labels(ps, &container, &service) < 0)
        return -EINVAL;
    if (container == NONE)
        service = NONE;
    char name[160];
    for (size_t i = 0; i < ps->nfields; i++) {
        const struct field *f = &ps->fields[i];
        int len = snprintf(name, sizeof name, "%s_%s", str(ps, meas), str(ps, f->key));
        if (f->type == F_STRING || len >= (int)sizeof name ||
            ingest_check_name(NAME_METRIC, name)) {
            ps->stats.skipped_fields++;
            continue;
        }
        if (host == NONE && need_host(ps, &host) < 0)
            return -EINVAL;
        emit(ps, host, container, service, name, ts, f->v);
    }
    return 0;
}

static int map_line(struct parser *ps, size_t meas, double ts)
{
    static const struct rename mem[] = {{"used_percent", "mem"},
                                        {"used", "mem_used_bytes"},
                                        {"available", "mem_avail_bytes"},
                                        {NULL, NULL}};
    static const struct rename swap[] = {{"used_percent", "swap"}, {NULL, NULL}};
    static const struct rename sys[] = {
        {"load1", "load1"}, {"load5", "load5"}, {"load15", "load15"}, {NULL, NULL}};
    static const struct rename dcpu[] = {{"usage_percent", "cpu"}, {NULL, NULL}};
    static const struct rename dmem[] = {
        {"usage_percent", "mem"}, {"usage", "mem_bytes"}, {NULL, NULL}};
    const char *m = str(ps, meas);
    if (strcmp(m, "cpu") == 0)
        return map_cpu(ps, ts);
    if (strcmp(m, "mem") == 0)
        return map_fields(ps, mem, NONE, NONE, ts);
    if (strcmp(m, "swap") == 0)
        return map_fields(ps, swap, NONE, NONE, ts);
    if (strcmp(m, "system") == 0)
        return map_fields(ps, sys, NONE, NONE, ts);
    if (strcmp(m, "diskio") == 0)
        return map_counters(ps, C_DISK, ts);
    if (strcmp(m, "net") == 0)
        return map_counters(ps, C_NET, ts);
    bool dc = strcmp(m, "docker_container_cpu") == 0;
    if (dc || strcmp(m, "docker_container_mem") == 0) {
        const char *cpu = tag(ps, "cpu");
        size_t container, service;
        if (container_labels(ps, &container, &service) < 0)
            return -EINVAL;
        if (container == NONE || (dc && cpu && strcmp(cpu, "cpu-total") != 0)) {
            ps->stats.skipped_fields += ps->nfields; /* per-CPU lines, or no name */
            return 0;
        }
        return map_fields(ps, dc ? dcpu : dmem, container, service, ts);
    }
    return map_other(ps, meas, ts);
}

/* One line (without its newline): parse, then map. */
static int parse_line(struct parser *ps, const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (s == end || *s == '#')
        return 0;
    ps->line = s;
    ps->linelen = (size_t)(end - s);
    const char *p = s;
    size_t meas = read_ident(ps, &p, end, ", ", ", ");
    if (!ps->arena[meas])
        return fail(ps, "missing measurement");
    if (parse_tags(ps, &p, end) < 0)
        return -EINVAL;
    if (p >= end)
        return fail(ps, "missing fields");
    while (p < end && *p == ' ')
        p++;
    if (parse_fields(ps, &p, end) < 0)
        return -EINVAL;
    while (p < end && *p == ' ')
        p++;
    double ts = 0; /* set by parse_ts on success; silences a GCC false positive */
    if (parse_ts(ps, p, end, &ts) < 0)
        return -EINVAL;
    ps->stats.lines++;
    return map_line(ps, meas, ts);
}

/* ---- Phase 2: counters into rates ---------------------------------------- */

struct touched {
    struct host *h;
    double ts;
};

static void apply_counters(struct parser *ps, struct lineproto_state *st)
{
    struct touched *t = NULL;
    size_t nt = 0, tcap = 0;
    if (!st) {
        ps->stats.stale_counters += ps->nobs;
        return;
    }
    for (size_t i = 0; i < ps->nobs; i++) {
        const struct obs *o = &ps->obs[i];
        struct host *h = host_get(st, str(ps, o->host), o->kind, o->ts);
        struct dev *d = h ? dev_get(h, str(ps, o->dev)) : NULL;
        if (!d || o->ts < d->last_ts) {
            ps->stats.stale_counters++;
            continue;
        }
        if (o->ts > d->last_ts) { /* equal: the same reading re-sent */
            d->prev_ts = d->last_ts;
            d->prev_mask = d->last_mask;
            memcpy(d->prev, d->last, sizeof d->prev);
        }
        d->last_ts = o->ts;
        d->last_mask = o->mask;
        memcpy(d->last, o->v, sizeof d->last);
        if (o->ts > h->seen)
            h->seen = o->ts;
        size_t k = 0;
        while (k < nt && !(t[k].h == h && t[k].ts == o->ts))
            k++;
        if (k == nt) {
            t = xgrow(t, &tcap, nt + 1, sizeof *t);
            t[nt++] = (struct touched){h, o->ts};
        }
    }
    /* Host totals at each timestamp seen: the sum over the devices observed
     * at that very timestamp. Devices of one gather that arrive in a later
     * batch make the total come out again, complete; the store keeps the
     * latest value of (node, metric, ts). */
    for (size_t k = 0; k < nt; k++) {
        const struct host *h = t[k].h;
        size_t node = arena_put(ps, h->name, strlen(h->name));
        for (int i = 0; i < counters[h->kind].n; i++) {
            double sum = 0, r;
            bool any = false;
            for (size_t j = 0; j < h->ndev; j++) {
                if (h->devs[j].last_ts == t[k].ts && dev_rate(&h->devs[j], i, &r)) {
                    sum += r;
                    any = true;
                }
            }
            if (any)
                emit(ps, node, NONE, NONE, counters[h->kind].metric[i], t[k].ts, sum);
        }
    }
    free(t);
}

/* ---- Entry point ---------------------------------------------------------- */

static int set_precision(struct parser *ps, const char *p)
{
    static const struct {
        const char *name;
        long long div;
        double unit;
    } units[] = {{"", 1000000000LL, 1e-9},
                 {"n", 1000000000LL, 1e-9},
                 {"ns", 1000000000LL, 1e-9},
                 {"u", 1000000LL, 1e-6},
                 {"us", 1000000LL, 1e-6},
                 {"ms", 1000LL, 1e-3},
                 {"s", 0, 1},
                 {"m", 0, 60},
                 {"h", 0, 3600}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p ? p : "", units[i].name) == 0) {
            ps->div = units[i].div;
            ps->unit = units[i].unit;
            return 0;
        }
    }
    snprintf(ps->err, ps->errlen, "invalid precision '%.16s' (expected ns, us, ms, s, m or h)", p);
    return -EINVAL;
}

static void parser_free(struct parser *ps)
{
    free(ps->arena);
    free(ps->tags);
    free(ps->fields);
    free(ps->out);
    free(ps->obs);
}

int lineproto_parse(const char *body, size_t len, const struct lineproto_opts *o,
                    struct lineproto_state *st, struct ingest_batch *out,
                    struct lineproto_stats *stats, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct parser ps = {.now = o->now, .err = err, .errlen = errlen};
    int rc = set_precision(&ps, o->precision);
    if (rc < 0)
        goto fail;
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        ps.lineno++;
        if (memchr(p, '\0', (size_t)(eol - p))) {
            ps.line = "";
            ps.linelen = 0;
            rc = fail(&ps, "NUL byte in line");
            goto fail;
        }
        if ((rc = parse_line(&ps, p, eol)) < 0)
            goto fail;
        p = nl ? nl + 1 : end;
    }
    apply_counters(&ps, st);
    struct store_sample *s = xmalloc((ps.n ? ps.n : 1) * sizeof *s);
    for (size_t i = 0; i < ps.n; i++) {
        const struct raw *r = &ps.out[i];
        s[i] = (struct store_sample){ps.arena + r->node,
                                     str(&ps, r->container),
                                     str(&ps, r->service),
                                     ps.arena + r->metric,
                                     r->ts,
                                     r->value};
    }
    out->samples = s;
    out->n = ps.n;
    out->owner = ps.arena;
    ps.arena = NULL;
    if (stats)
        *stats = ps.stats;
    parser_free(&ps);
    return 0;
fail:
    parser_free(&ps);
    return rc;
}
