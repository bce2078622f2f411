/* Runs one data-driven case of cases/: a body of line protocol and the
 * samples or the error it must give.
 *
 * Case file format:
 *   precision: s            (optional header lines, then)
 *   --- body
 *   <the body, byte for byte, up to the newline before the next marker>
 *   --- expect
 *   error: <the exact message>          or one line per sample:
 *   NODE CONTAINER SERVICE METRIC TS VALUE   ("-" for an empty label)
 * Exit 0 when the parser's answer is the expected one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lineproto.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* What the parser gave, in the expect section's format. */
static char *render(int rc, const struct ingest_batch *b, const char *err)
{
    size_t cap = 64 + b->n * 600 + strlen(err);
    char *out = malloc(cap), *p = out;
    if (rc < 0) {
        snprintf(out, cap, "error: %s\n", err);
        return out;
    }
    *p = '\0';
    for (size_t i = 0; i < b->n; i++) {
        const struct store_sample *s = &b->samples[i];
        p += snprintf(p, cap - (size_t)(p - out), "%s %s %s %s %.17g %.17g\n", s->node,
                      s->container[0] ? s->container : "-", s->service[0] ? s->service : "-",
                      s->metric, s->ts, s->value);
    }
    return out;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: lineproto_case FILE.case\n");
        return 2;
    }
    size_t len;
    char *text = slurp(argv[1], &len);
    if (!text) {
        fprintf(stderr, "%s: cannot read\n", argv[1]);
        return 2;
    }
    char *body = strstr(text, "--- body\n");
    char *expect = body ? strstr(body, "\n--- expect\n") : NULL;
    if (!expect) {
        fprintf(stderr, "%s: needs '--- body' and '--- expect' sections\n", argv[1]);
        return 2;
    }
    *body = '\0';
    body += strlen("--- body\n");
    *expect = '\0';
    expect += strlen("\n--- expect\n");
    char precision[16] = "";
    const char *h = strstr(text, "precision: ");
    if (h)
        sscanf(h + strlen("precision: "), "%15s", precision);

    struct lineproto_state *st = lineproto_state_new();
    struct lineproto_opts o = {precision, 1700000000};
    struct ingest_batch b;
    char err[512] = "";
    int rc = lineproto_parse(body, strlen(body), &o, st, &b, NULL, err, sizeof err);
    char *got = render(rc, &b, err);
    int status = strcmp(got, expect) == 0 ? 0 : 1;
    if (status)
        fprintf(stderr, "%s:\n--- expected\n%s--- got\n%s", argv[1], expect, got);
    if (rc == 0)
        ingest_batch_free(&b);
    free(got);
    lineproto_state_free(st);
    free(text);
    return status;
}
