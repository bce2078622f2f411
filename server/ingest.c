/* Ingest body parsing: JSON into validated samples. */
#include "ingest.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct parse_ctx {
    struct store_sample *samples;
    size_t n, cap;
    char *err;
    size_t errlen;
};

static int fail(struct parse_ctx *c, const char *path, const char *fmt, const char *detail)
{
    char msg[256];
    snprintf(msg, sizeof msg, fmt, detail);
    snprintf(c->err, c->errlen, "%s%s%s", path, path[0] ? ": " : "", msg);
    return -1;
}

static int get_label(struct parse_ctx *c, json_t *v, const char *path, const char *key,
                     enum ingest_name_kind kind, const char **out)
{
    char p[192];
    snprintf(p, sizeof p, "%s%s%s", path, path[0] ? "." : "", key);
    if (!json_is_string(v))
        return fail(c, p, "%s", "not a string");
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return fail(c, p, "%s", "contains a NUL character");
    const char *why = ingest_check_name(kind, s);
    if (why)
        return fail(c, p, "%s", why);
    *out = s;
    return 0;
}

static int parse_sample(struct parse_ctx *c, json_t *s, const char *path, const char *node)
{
    if (!json_is_object(s))
        return fail(c, path, "%s", "not an object");
    double ts = NAN;
    const char *container = "", *service = "";
    json_t *metrics = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(s, key, v)
    {
        if (strcmp(key, "ts") == 0) {
            char p[192];
            snprintf(p, sizeof p, "%s.ts", path);
            if (!json_is_number(v))
                return fail(c, p, "%s", "not a number");
            ts = json_number_value(v);
            if (!(ts >= INGEST_TS_MIN && ts <= INGEST_TS_MAX))
                return fail(c, p, "%s", "out of range (Unix seconds expected)");
        } else if (strcmp(key, "container") == 0) {
            if (get_label(c, v, path, key, NAME_LABEL, &container) < 0)
                return -1;
        } else if (strcmp(key, "service") == 0) {
            if (get_label(c, v, path, key, NAME_LABEL, &service) < 0)
                return -1;
        } else if (strcmp(key, "metrics") == 0) {
            metrics = v;
        } else {
            char p[192];
            snprintf(p, sizeof p, "%s.%.64s", path, key);
            return fail(c, p, "%s", "unknown field (expected ts, metrics, container, service)");
        }
    }
    if (isnan(ts))
        return fail(c, path, "%s", "missing 'ts'");
    if (!metrics)
        return fail(c, path, "%s", "missing 'metrics'");
    char mpath[160];
    snprintf(mpath, sizeof mpath, "%s.metrics", path);
    if (!json_is_object(metrics))
        return fail(c, mpath, "%s", "not an object");
    if (json_object_size(metrics) == 0)
        return fail(c, mpath, "%s", "empty (at least one metric expected)");
    json_object_foreach(metrics, key, v)
    {
        char p[256];
        snprintf(p, sizeof p, "%s.%.64s", mpath, key);
        const char *why = ingest_check_name(NAME_METRIC, key);
        if (why)
            return fail(c, p, "metric name %s", why);
        if (!json_is_number(v))
            return fail(c, p, "%s", "not a number");
        double val = json_number_value(v);
        if (!isfinite(val))
            return fail(c, p, "%s", "not a finite number");
        c->samples = xgrow(c->samples, &c->cap, c->n + 1, sizeof *c->samples);
        c->samples[c->n++] = (struct store_sample){node, container, service, key, ts, val};
    }
    return 0;
}

static int parse_node(struct parse_ctx *c, json_t *obj, const char *path)
{
    if (!json_is_object(obj))
        return fail(c, path, "%s", "not an object (expected {\"node\": ..., \"samples\": [...]})");
    const char *node = NULL;
    json_t *samples = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "node") == 0) {
            if (get_label(c, v, path, key, NAME_NODE, &node) < 0)
                return -1;
        } else if (strcmp(key, "samples") == 0) {
            samples = v;
        } else {
            char p[192];
            snprintf(p, sizeof p, "%s%s%.64s", path, path[0] ? "." : "", key);
            return fail(c, p, "%s", "unknown field (expected node, samples)");
        }
    }
    if (!node)
        return fail(c, path, "%s", "missing 'node'");
    char spath[160];
    snprintf(spath, sizeof spath, "%s%ssamples", path, path[0] ? "." : "");
    if (!samples)
        return fail(c, path, "%s", "missing 'samples'");
    if (!json_is_array(samples))
        return fail(c, spath, "%s", "not an array");
    size_t i;
    json_array_foreach(samples, i, v)
    {
        char p[192];
        snprintf(p, sizeof p, "%s[%zu]", spath, i);
        if (parse_sample(c, v, p, node) < 0)
            return -1;
    }
    return 0;
}

int ingest_parse_json(const char *body, size_t len, struct ingest_batch *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    /* Integers as reals: timestamps and values are doubles, and a huge
     * integer is then a range error, not a parse failure. */
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &jerr);
    if (!root) {
        snprintf(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return -1;
    }
    struct parse_ctx c = {.err = err, .errlen = errlen};
    int rc = 0;
    if (json_is_array(root)) {
        size_t i;
        json_t *v;
        json_array_foreach(root, i, v)
        {
            char p[32];
            snprintf(p, sizeof p, "[%zu]", i);
            if ((rc = parse_node(&c, v, p)) < 0)
                break;
        }
    } else if (json_is_object(root)) {
        rc = parse_node(&c, root, "");
    } else {
        snprintf(err, errlen, "expected a JSON object or array at the top level");
        rc = -1;
    }
    if (rc < 0) {
        free(c.samples);
        json_decref(root);
        return -1;
    }
    out->samples = c.samples;
    out->n = c.n;
    out->owner = root;
    return 0;
}

void ingest_batch_free(struct ingest_batch *b)
{
    free(b->samples);
    json_decref(b->owner);
    memset(b, 0, sizeof *b);
}
