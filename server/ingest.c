/* Ingest body parsing: JSON into validated samples.
 *
 * A single-pass parser specialised to the ingest schema rather than a
 * general DOM (jansson): it allocates nothing per value, so it keeps up with
 * a million samples a second on one core (jansson managed about the same
 * total, leaving nothing for the rest of the server; bench/ingest measures
 * the whole path). It is a strict RFC 8259 reader for the values it visits,
 * and since unknown fields are errors it never has to skip a value of
 * unknown shape, so nesting depth is bounded by the schema. */
#include "ingest.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "xalloc.h"

const char *ingest_check_name(enum ingest_name_kind kind, const char *s)
{
    size_t len = strlen(s);
    switch (kind) {
    case NAME_NODE:
        if (len < 1 || len > 253)
            return "must be 1-253 characters";
        for (const char *p = s; *p; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == ':' || *p == '-'))
                return "may hold only letters, digits, '.', '_', ':' and '-'";
        }
        return NULL;
    case NAME_METRIC:
        if (len < 1 || len > 128)
            return "must be 1-128 characters";
        if (*s >= '0' && *s <= '9')
            return "must not start with a digit";
        for (const char *p = s; *p; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_'))
                return "may hold only letters, digits and '_'";
        }
        return NULL;
    case NAME_LABEL:
        if (len > 255)
            return "must be at most 255 characters";
        for (const char *p = s; *p; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || strchr("._:/@+-", *p)))
                return "may hold only letters, digits and . _ : / @ + -";
        }
        return NULL;
    }
    return "unknown kind";
}

/* A sample while parsing: strings as arena offsets (the arena moves). */
struct raw_sample {
    size_t node, container, service, metric;
    double ts, value;
};

struct parser {
    const char *p, *start, *end;
    char *arena;
    size_t alen, acap;
    struct raw_sample *s;
    size_t n, cap;
    /* Where we are, for error messages. */
    bool top_array;
    long node_idx, sample_idx;
    char field[72];
    char *err;
    size_t errlen;
    bool failed;
};

/* Formats "PATH: message" where PATH names the current node/sample/field. */
static int fail_at(struct parser *ps, const char *field, const char *fmt, ...)
{
    if (ps->failed)
        return -1;
    ps->failed = true;
    char path[160] = "";
    size_t off = 0;
    if (ps->top_array && ps->node_idx >= 0)
        off += (size_t)snprintf(path + off, sizeof path - off, "[%ld]", ps->node_idx);
    if (ps->sample_idx >= 0)
        off += (size_t)snprintf(path + off, sizeof path - off, "%ssamples[%ld]", off ? "." : "",
                                ps->sample_idx);
    if (field && *field && off < sizeof path)
        snprintf(path + off, sizeof path - off, "%s%s", off ? "." : "", field);
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (path[0])
        snprintf(ps->err, ps->errlen, "%s: %s", path, msg);
    else
        snprintf(ps->err, ps->errlen, "%s", msg);
    return -1;
}

static int syntax(struct parser *ps, const char *what)
{
    if (ps->failed)
        return -1;
    ps->failed = true;
    size_t at = (size_t)(ps->p - ps->start);
    if (ps->p >= ps->end)
        snprintf(ps->err, ps->errlen, "invalid JSON: unexpected end of input (byte %zu), %s", at,
                 what);
    else
        snprintf(ps->err, ps->errlen, "invalid JSON at byte %zu: %s", at, what);
    return -1;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

/* Consumes c (after whitespace) or fails with a syntax error. */
static int expect(struct parser *ps, char c, const char *what)
{
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != c)
        return syntax(ps, what);
    ps->p++;
    return 0;
}

/* Peeks the next non-space byte; 0 at the end. */
static char peek(struct parser *ps)
{
    skip_ws(ps);
    return ps->p < ps->end ? *ps->p : 0;
}

static void arena_put(struct parser *ps, const char *s, size_t n)
{
    if (n == 0)
        return; /* nothing to copy; memcpy must not see a NULL arena */
    ps->arena = xgrow(ps->arena, &ps->acap, ps->alen + n, 1);
    memcpy(ps->arena + ps->alen, s, n);
    ps->alen += n;
}

static void put_utf8(struct parser *ps, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    arena_put(ps, b, n);
}

static int hex4(struct parser *ps, uint32_t *out)
{
    if (ps->end - ps->p < 4)
        return syntax(ps, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = ps->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return syntax(ps, "bad \\u escape");
    }
    ps->p += 4;
    *out = v;
    return 0;
}

/* Reads a JSON string into the arena, NUL-terminated; *off is its offset.
 * A NUL character (\u0000) is refused: names cannot hold one. */
static int read_string(struct parser *ps, size_t *off)
{
    if (expect(ps, '"', "expected a string") < 0)
        return -1;
    *off = ps->alen;
    for (;;) {
        const char *q = ps->p;
        while (q < ps->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
            q++;
        arena_put(ps, ps->p, (size_t)(q - ps->p));
        ps->p = q;
        if (q >= ps->end)
            return syntax(ps, "unterminated string");
        if (*q == '"') {
            ps->p++;
            arena_put(ps, "", 1);
            return 0;
        }
        if ((unsigned char)*q < 0x20)
            return syntax(ps, "control character in string");
        /* escape */
        ps->p++;
        if (ps->p >= ps->end)
            return syntax(ps, "unterminated escape");
        char e = *ps->p++;
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *m = strchr(from, e);
        if (e && m) {
            arena_put(ps, &to[m - from], 1);
            continue;
        }
        if (e != 'u')
            return syntax(ps, "bad escape in string");
        uint32_t cp;
        if (hex4(ps, &cp) < 0)
            return -1;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t lo;
            if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
                return syntax(ps, "unpaired surrogate in \\u escape");
            ps->p += 2;
            if (hex4(ps, &lo) < 0)
                return -1;
            if (lo < 0xdc00 || lo > 0xdfff)
                return syntax(ps, "unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            return syntax(ps, "unpaired surrogate in \\u escape");
        }
        if (cp == 0)
            return syntax(ps, "\\u0000 is not allowed in names");
        put_utf8(ps, cp);
    }
}

static const double pow10tab[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                  1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Reads a JSON number. Returns 0, 1 if the next value is valid JSON of
 * another type (the caller names it), -1 on a syntax or range error. The
 * common short decimals are converted exactly without strtod (Clinger's fast
 * path: an integer mantissa below 2^53 times an exact power of ten). */
/* "metrics.NAME" for messages about the metric whose key is at arena
 * offset key (built only when a message needs it). */
static const char *metric_field(struct parser *ps, size_t key, char *buf, size_t len)
{
    char shown[72];
    snprintf(buf, len, "metrics.%s", text_escape(shown, sizeof shown, ps->arena + key, 64));
    return buf;
}

/* Reads a JSON number. Messages name `field`, or with field NULL the
 * metric whose key is at arena offset key. */
static int read_number(struct parser *ps, const char *field, size_t key, double *out)
{
    char fb[80];
    skip_ws(ps);
    const char *q = ps->p, *begin = q;
    if (q < ps->end && (*q == '"' || *q == '{' || *q == '[' || *q == 't' || *q == 'f' || *q == 'n'))
        return 1;
    bool neg = false;
    if (q < ps->end && *q == '-') {
        neg = true;
        q++;
    }
    if (q >= ps->end || !(*q >= '0' && *q <= '9')) {
        if (q < ps->end && (*q == 'N' || *q == 'I'))
            return syntax(ps, "NaN and Infinity are not valid JSON numbers");
        return syntax(ps, "expected a number");
    }
    uint64_t mant = 0;
    int digits = 0, exp10 = 0;
    bool exact = true;
    if (*q == '0') {
        q++;
        if (q < ps->end && *q >= '0' && *q <= '9')
            return syntax(ps, "leading zeros are not allowed in JSON numbers");
    } else {
        while (q < ps->end && *q >= '0' && *q <= '9') {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*q - '0');
                if (mant)
                    digits++;
            } else {
                exact = false;
            }
            q++;
        }
    }
    if (q < ps->end && *q == '.') {
        q++;
        if (q >= ps->end || !(*q >= '0' && *q <= '9'))
            return syntax(ps, "expected a digit after '.'");
        while (q < ps->end && *q >= '0' && *q <= '9') {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*q - '0');
                if (mant)
                    digits++;
                exp10--;
            } else {
                exact = false;
            }
            q++;
        }
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        bool eneg = false;
        if (q < ps->end && (*q == '+' || *q == '-'))
            eneg = *q++ == '-';
        if (q >= ps->end || !(*q >= '0' && *q <= '9'))
            return syntax(ps, "expected a digit in the exponent");
        int e = 0;
        while (q < ps->end && *q >= '0' && *q <= '9') {
            if (e < 100000)
                e = e * 10 + (*q - '0');
            q++;
        }
        exp10 += eneg ? -e : e;
    }
    ps->p = q;
    double v;
    if (exact && mant < (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
        v = (double)mant;
        v = exp10 < 0 ? v / pow10tab[-exp10] : v * pow10tab[exp10];
        if (neg)
            v = -v;
    } else {
        size_t len = (size_t)(q - begin);
        char buf[512];
        if (len >= sizeof buf)
            return fail_at(ps, field ? field : metric_field(ps, key, fb, sizeof fb),
                           "number too long (%zu characters)", len);
        memcpy(buf, begin, len);
        buf[len] = '\0';
        errno = 0;
        v = strtod(buf, NULL);
        if (!isfinite(v))
            return fail_at(ps, field ? field : metric_field(ps, key, fb, sizeof fb),
                           "number out of range");
    }
    *out = v;
    return 0;
}

static const char *type_name(char c)
{
    switch (c) {
    case '"':
        return "a string";
    case '{':
        return "an object";
    case '[':
        return "an array";
    case 't':
    case 'f':
        return "a boolean";
    case 'n':
        return "null";
    default:
        return "something else";
    }
}

static int read_label(struct parser *ps, const char *field, enum ingest_name_kind kind, size_t *off)
{
    char c = peek(ps);
    if (c != '"')
        return c && strchr("{[tfn-0123456789", c)
                   ? fail_at(ps, field, "not a string (%s)",
                             c == '-' || (c >= '0' && c <= '9') ? "a number" : type_name(c))
                   : syntax(ps, "expected a value");
    if (read_string(ps, off) < 0)
        return -1;
    const char *why = ingest_check_name(kind, ps->arena + *off);
    return why ? fail_at(ps, field, "%s", why) : 0;
}

/* Reads "key": and leaves the value next. Returns the key's arena offset. */
static int read_key(struct parser *ps, size_t *off)
{
    if (peek(ps) != '"')
        return syntax(ps, "expected a quoted field name");
    if (read_string(ps, off) < 0)
        return -1;
    return expect(ps, ':', "expected ':' after a field name");
}

/* After a member: ',' (returns 1: more) or the closing char (returns 0). */
static int next_member(struct parser *ps, char close)
{
    char c = peek(ps);
    if (c == ',') {
        ps->p++;
        return 1;
    }
    if (c == close) {
        ps->p++;
        return 0;
    }
    return syntax(ps, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

/* Names from the request go into messages escaped: they may be anything. */
static void copy_field(struct parser *ps, const char *name)
{
    text_escape(ps->field, sizeof ps->field, name, 64);
}

static int parse_metrics(struct parser *ps)
{
    if (peek(ps) != '{')
        return fail_at(ps, "metrics", "not an object");
    ps->p++;
    if (peek(ps) == '}') {
        ps->p++;
        return fail_at(ps, "metrics", "empty (at least one metric expected)");
    }
    for (;;) {
        size_t key;
        if (read_key(ps, &key) < 0)
            return -1;
        char field[80];
        const char *why = ingest_check_name(NAME_METRIC, ps->arena + key);
        if (why)
            return fail_at(ps, metric_field(ps, key, field, sizeof field), "metric name %s", why);
        double v;
        int rc = read_number(ps, NULL, key, &v);
        if (rc < 0)
            return -1;
        if (rc > 0)
            return fail_at(ps, metric_field(ps, key, field, sizeof field), "not a number (%s)",
                           type_name(peek(ps)));
        ps->s = xgrow(ps->s, &ps->cap, ps->n + 1, sizeof *ps->s);
        ps->s[ps->n++] = (struct raw_sample){0, 0, 0, key, 0, v};
        int more = next_member(ps, '}');
        if (more <= 0)
            return more;
    }
}

enum { F_TS = 1, F_CONTAINER = 2, F_SERVICE = 4, F_METRICS = 8, F_NODE = 16, F_SAMPLES = 32 };

static int dup_field(struct parser *ps, unsigned *seen, unsigned bit, const char *name)
{
    if (*seen & bit)
        return fail_at(ps, name, "given twice");
    *seen |= bit;
    return 0;
}

static int parse_sample(struct parser *ps)
{
    if (peek(ps) != '{')
        return peek(ps) ? fail_at(ps, NULL, "not an object (%s)", type_name(peek(ps)))
                        : syntax(ps, "expected a sample");
    ps->p++;
    size_t first = ps->n, container = SIZE_MAX, service = SIZE_MAX;
    double ts = NAN;
    unsigned seen = 0;
    if (peek(ps) == '}') {
        ps->p++;
        return fail_at(ps, NULL, "missing 'ts' and 'metrics'");
    }
    for (;;) {
        size_t key;
        if (read_key(ps, &key) < 0)
            return -1;
        const char *k = ps->arena + key;
        if (strcmp(k, "ts") == 0) {
            if (dup_field(ps, &seen, F_TS, "ts") < 0)
                return -1;
            int rc = read_number(ps, "ts", 0, &ts);
            if (rc < 0)
                return -1;
            if (rc > 0)
                return fail_at(ps, "ts", "not a number (%s)", type_name(peek(ps)));
            if (!(ts >= INGEST_TS_MIN && ts <= INGEST_TS_MAX))
                return fail_at(ps, "ts", "out of range (Unix seconds expected)");
        } else if (strcmp(k, "container") == 0) {
            if (dup_field(ps, &seen, F_CONTAINER, "container") < 0 ||
                read_label(ps, "container", NAME_LABEL, &container) < 0)
                return -1;
        } else if (strcmp(k, "service") == 0) {
            if (dup_field(ps, &seen, F_SERVICE, "service") < 0 ||
                read_label(ps, "service", NAME_LABEL, &service) < 0)
                return -1;
        } else if (strcmp(k, "metrics") == 0) {
            if (dup_field(ps, &seen, F_METRICS, "metrics") < 0 || parse_metrics(ps) < 0)
                return -1;
        } else {
            copy_field(ps, k);
            return fail_at(ps, ps->field,
                           "unknown field (expected ts, metrics, container, "
                           "service)");
        }
        int more = next_member(ps, '}');
        if (more < 0)
            return -1;
        if (!more)
            break;
    }
    if (!(seen & F_TS))
        return fail_at(ps, NULL, "missing 'ts'");
    if (!(seen & F_METRICS))
        return fail_at(ps, NULL, "missing 'metrics'");
    for (size_t i = first; i < ps->n; i++) {
        ps->s[i].ts = ts;
        ps->s[i].container = container;
        ps->s[i].service = service;
    }
    return 0;
}

static int parse_samples(struct parser *ps)
{
    if (peek(ps) != '[')
        return peek(ps) ? fail_at(ps, "samples", "not an array (%s)", type_name(peek(ps)))
                        : syntax(ps, "expected an array");
    ps->p++;
    if (peek(ps) == ']') {
        ps->p++;
        return 0;
    }
    for (ps->sample_idx = 0;; ps->sample_idx++) {
        if (parse_sample(ps) < 0)
            return -1;
        int more = next_member(ps, ']');
        if (more <= 0) {
            ps->sample_idx = -1;
            return more;
        }
    }
}

static int parse_node(struct parser *ps)
{
    char c = peek(ps);
    if (c != '{')
        return c ? fail_at(ps, NULL,
                           "not an object (%s); expected {\"node\": ..., \"samples\": [...]}",
                           c == '-' || (c >= '0' && c <= '9') ? "a number" : type_name(c))
                 : syntax(ps, "expected a value");
    ps->p++;
    size_t first = ps->n, node = SIZE_MAX;
    unsigned seen = 0;
    if (peek(ps) == '}') {
        ps->p++;
        return fail_at(ps, NULL, "missing 'node' and 'samples'");
    }
    for (;;) {
        size_t key;
        if (read_key(ps, &key) < 0)
            return -1;
        const char *k = ps->arena + key;
        if (strcmp(k, "node") == 0) {
            if (dup_field(ps, &seen, F_NODE, "node") < 0 ||
                read_label(ps, "node", NAME_NODE, &node) < 0)
                return -1;
        } else if (strcmp(k, "samples") == 0) {
            if (dup_field(ps, &seen, F_SAMPLES, "samples") < 0 || parse_samples(ps) < 0)
                return -1;
        } else {
            copy_field(ps, k);
            return fail_at(ps, ps->field, "unknown field (expected node, samples)");
        }
        int more = next_member(ps, '}');
        if (more < 0)
            return -1;
        if (!more)
            break;
    }
    if (!(seen & F_NODE))
        return fail_at(ps, NULL, "missing 'node'");
    if (!(seen & F_SAMPLES))
        return fail_at(ps, NULL, "missing 'samples'");
    for (size_t i = first; i < ps->n; i++)
        ps->s[i].node = node;
    return 0;
}

static int parse_top(struct parser *ps)
{
    char c = peek(ps);
    if (c == '[') {
        ps->p++;
        ps->top_array = true;
        if (peek(ps) == ']') {
            ps->p++;
            return 0;
        }
        for (ps->node_idx = 0;; ps->node_idx++) {
            if (parse_node(ps) < 0)
                return -1;
            int more = next_member(ps, ']');
            if (more <= 0)
                return more;
        }
    }
    if (c == '{')
        return parse_node(ps);
    if (!c)
        return syntax(ps, "empty body");
    return fail_at(ps, NULL, "expected a JSON object or array at the top level");
}

int ingest_parse_json(const char *body, size_t len, struct ingest_batch *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct parser ps = {.p = body,
                        .start = body,
                        .end = body + len,
                        .node_idx = -1,
                        .sample_idx = -1,
                        .err = err,
                        .errlen = errlen};
    int rc = parse_top(&ps);
    if (rc == 0) {
        ps.node_idx = ps.sample_idx = -1;
        ps.top_array = false;
        skip_ws(&ps);
        if (ps.p != ps.end)
            rc = syntax(&ps, "trailing characters after the JSON value");
    }
    if (rc < 0) {
        free(ps.s);
        free(ps.arena);
        return -1;
    }
    struct store_sample *s = xmalloc((ps.n ? ps.n : 1) * sizeof *s);
    for (size_t i = 0; i < ps.n; i++) {
        const struct raw_sample *r = &ps.s[i];
        s[i] = (struct store_sample){
            ps.arena + r->node,
            r->container == SIZE_MAX ? "" : ps.arena + r->container,
            r->service == SIZE_MAX ? "" : ps.arena + r->service,
            ps.arena + r->metric,
            r->ts,
            r->value,
        };
    }
    free(ps.s);
    out->samples = s;
    out->n = ps.n;
    out->owner = ps.arena;
    return 0;
}

void ingest_batch_free(struct ingest_batch *b)
{
    free(b->samples);
    free(b->owner);
    memset(b, 0, sizeof *b);
}
