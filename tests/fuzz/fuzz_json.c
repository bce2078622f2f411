/* Fuzz harness of the JSON ingest body (server/ingest.c ingest_parse_json).
 *
 * Besides "no crash, no memory error", jansson is the oracle (a general
 * RFC 8259 parser, decoding every number with strtod as ingest does):
 *  - ingest accepts  => jansson accepts the same bytes, and (when no object
 *    repeats a key, which jansson would fold) the batch holds exactly the
 *    samples the document describes, in order, values bit for bit;
 *  - ingest refuses  => it says why, and the document breaks the schema of
 *    README.md (or holds a number literal longer than ingest's documented
 *    limit): a valid batch is never refused.
 * A violation aborts with both views printed. */
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ingest refuses number literals this long or longer ("number too long"). */
#define NUMBER_MAX_CHARS 512

static void die(const char *body, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static void die(const char *body, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_json: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nbody (%zu bytes): %.*s\n", len, (int)(len > 2000 ? 2000 : len), body);
    abort();
}

/* One sample as the document describes it (strings borrowed from the doc). */
struct want {
    const char *node, *container, *service, *metric;
    double ts, value;
};

struct wants {
    struct want *w;
    size_t n, cap;
};

static void push(struct wants *ws, struct want w)
{
    if (ws->n == ws->cap) {
        ws->cap = ws->cap ? 2 * ws->cap : 64;
        ws->w = realloc(ws->w, ws->cap * sizeof *ws->w);
        if (!ws->w)
            abort();
    }
    ws->w[ws->n++] = w;
}

/* true if obj has only keys from `allowed` (NULL-terminated). */
static bool only_keys(json_t *obj, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, k) == 0;
        if (!ok)
            return false;
    }
    return true;
}

/* An optional label: absent, or a string naming a valid label. */
static bool label_ok(json_t *v, const char **out)
{
    *out = "";
    if (!v)
        return true;
    if (!json_is_string(v) || ingest_check_name(NAME_LABEL, json_string_value(v)))
        return false;
    *out = json_string_value(v);
    return true;
}

static bool sample_ok(json_t *s, const char *node, struct wants *ws)
{
    static const char *const keys[] = {"ts", "metrics", "container", "service", NULL};
    if (!json_is_object(s) || !only_keys(s, keys))
        return false;
    json_t *ts = json_object_get(s, "ts"), *metrics = json_object_get(s, "metrics");
    const char *container, *service;
    if (!json_is_number(ts) || !json_is_object(metrics) || json_object_size(metrics) == 0 ||
        !label_ok(json_object_get(s, "container"), &container) ||
        !label_ok(json_object_get(s, "service"), &service))
        return false;
    double t = json_number_value(ts);
    if (!(t >= INGEST_TS_MIN && t <= INGEST_TS_MAX))
        return false;
    const char *k;
    json_t *v;
    json_object_foreach(metrics, k, v)
    {
        if (ingest_check_name(NAME_METRIC, k) || !json_is_number(v))
            return false;
        push(ws, (struct want){node, container, service, k, t, json_number_value(v)});
    }
    return true;
}

static bool node_ok(json_t *o, struct wants *ws)
{
    static const char *const keys[] = {"node", "samples", NULL};
    if (!json_is_object(o) || !only_keys(o, keys))
        return false;
    json_t *node = json_object_get(o, "node"), *samples = json_object_get(o, "samples");
    if (!json_is_string(node) || ingest_check_name(NAME_NODE, json_string_value(node)) ||
        !json_is_array(samples))
        return false;
    size_t i;
    json_t *s;
    json_array_foreach(samples, i, s)
    {
        if (!sample_ok(s, json_string_value(node), ws))
            return false;
    }
    return true;
}

/* The schema of POST /api/v1/metrics (README.md) applied to a jansson
 * document; fills ws with the samples it describes. */
static bool doc_ok(json_t *doc, struct wants *ws)
{
    if (json_is_object(doc))
        return node_ok(doc, ws);
    size_t i;
    json_t *o;
    json_array_foreach(doc, i, o)
    {
        if (!node_ok(o, ws))
            return false;
    }
    return json_is_array(doc);
}

/* Longest run of number-literal characters: ingest refuses literals of
 * NUMBER_MAX_CHARS or more, a documented limit jansson does not have. */
static size_t longest_number(const char *p, size_t len)
{
    size_t best = 0, run = 0;
    for (size_t i = 0; i < len; i++) {
        run = strchr("0123456789+-.eE", p[i]) && p[i] ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

static bool same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static void compare(const char *body, size_t len, const struct ingest_batch *b,
                    const struct wants *ws)
{
    if (b->n != ws->n)
        die(body, len, "ingest gave %zu samples, the document holds %zu", b->n, ws->n);
    for (size_t i = 0; i < b->n; i++) {
        const struct store_sample *s = &b->samples[i];
        const struct want *w = &ws->w[i];
        if (strcmp(s->node, w->node) || strcmp(s->container, w->container) ||
            strcmp(s->service, w->service) || strcmp(s->metric, w->metric) ||
            !same_double(s->ts, w->ts) || !same_double(s->value, w->value))
            die(body, len,
                "sample %zu: ingest (%s, %s, %s, %s, %.17g, %.17g) != document (%s, %s, %s, %s, "
                "%.17g, %.17g)",
                i, s->node, s->container, s->service, s->metric, s->ts, s->value, w->node,
                w->container, w->service, w->metric, w->ts, w->value);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct ingest_batch b;
    char err[512] = "";
    int rc = ingest_parse_json(body, size, &b, err, sizeof err);
    if (rc != 0 && (rc != -1 || err[0] == '\0'))
        die(body, size, "ingest_parse_json returned %d with message '%s'", rc, err);

    /* Plain: duplicate keys fold (last wins); strict: they are an error. */
    json_error_t je;
    json_t *plain = json_loadb(body, size, JSON_DECODE_INT_AS_REAL, &je);
    json_t *strict =
        plain ? json_loadb(body, size, JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES, NULL)
              : NULL;
    struct wants ws = {0};
    /* jansson 2.14 skips a NUL byte right after a number ({"a":12\0}
     * parses), so it is no judge of a body holding one; ingest refuses it. */
    bool valid = strict && doc_ok(strict, &ws);
    bool trusted = !memchr(body, '\0', size);
    if (rc == 0) {
        if (!plain)
            die(body, size, "ingest accepted what jansson refuses: %s (byte %d)", je.text,
                je.position);
        if (strict && !valid)
            die(body, size, "ingest accepted %zu samples of a document that breaks the schema",
                b.n);
        if (strict)
            compare(body, size, &b, &ws);
        ingest_batch_free(&b);
    } else if (valid && trusted && longest_number(body, size) < NUMBER_MAX_CHARS) {
        die(body, size, "ingest refused a valid batch of %zu samples: %s", ws.n, err);
    }
    free(ws.w);
    json_decref(strict);
    json_decref(plain);
    return 0;
}
