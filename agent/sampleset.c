/* One round of samples. */
#include "sampleset.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void sampleset_init(struct sampleset *set)
{
    set->s = NULL;
    set->n = set->cap = 0;
    sampleset_clear(set);
}

static void sample_release(struct sample *s)
{
    free(s->id);
    free(s->container);
    free(s->service);
    s->id = s->container = s->service = NULL;
    s->n = 0;
}

void sampleset_clear(struct sampleset *set)
{
    for (size_t i = 0; i < set->n; i++)
        sample_release(&set->s[i]);
    if (set->cap == 0) {
        set->s = xgrow(set->s, &set->cap, 1, sizeof *set->s);
        memset(set->s, 0, set->cap * sizeof *set->s);
    }
    set->n = 1; /* the host sample is always there */
}

void sampleset_free(struct sampleset *set)
{
    for (size_t i = 0; i < set->n; i++)
        sample_release(&set->s[i]);
    for (size_t i = 0; i < set->cap; i++)
        free(set->s[i].m);
    free(set->s);
    set->s = NULL;
    set->n = set->cap = 0;
}

static struct sample *find(const struct sampleset *set, const char *id)
{
    if (!id)
        return &set->s[0];
    for (size_t i = 1; i < set->n; i++) {
        if (strcmp(set->s[i].id, id) == 0)
            return &set->s[i];
    }
    return NULL;
}

void sampleset_container(struct sampleset *set, const char *id, const char *name,
                         const char *service)
{
    if (find(set, id))
        return;
    size_t old = set->cap;
    set->s = xgrow(set->s, &set->cap, set->n + 1, sizeof *set->s);
    memset(set->s + old, 0, (set->cap - old) * sizeof *set->s);
    struct sample *s = &set->s[set->n++];
    s->id = xstrdup(id);
    s->container = xstrdup(name);
    s->service = service ? xstrdup(service) : NULL;
    s->n = 0;
}

int sampleset_put(struct sampleset *set, const char *id, const char *name, double value)
{
    if (!isfinite(value) || strlen(name) >= SAMPLE_METRIC_NAME)
        return -EINVAL;
    struct sample *s = find(set, id);
    if (!s)
        return -ENOENT;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->m[i].name, name) == 0) {
            s->m[i].value = value;
            return 0;
        }
    }
    s->m = xgrow(s->m, &s->cap, s->n + 1, sizeof *s->m);
    struct sample_metric *m = &s->m[s->n++];
    snprintf(m->name, sizeof m->name, "%s", name);
    m->value = value;
    return 0;
}

const struct sample *sampleset_find(const struct sampleset *set, const char *id)
{
    return find(set, id);
}

int sampleset_get(const struct sampleset *set, const char *id, const char *name, double *value)
{
    const struct sample *s = find(set, id);
    if (!s)
        return -ENOENT;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->m[i].name, name) == 0) {
            *value = s->m[i].value;
            return 0;
        }
    }
    return -ENOENT;
}

size_t sampleset_write(const struct sampleset *set, double ts, struct buf *out)
{
    size_t written = 0;
    for (size_t i = 0; i < set->n; i++) {
        const struct sample *s = &set->s[i];
        if (s->n == 0)
            continue;
        buf_printf(out, "{\"ts\":%.3f", ts);
        if (s->container) {
            buf_adds(out, ",\"container\":");
            buf_json_str(out, s->container);
        }
        if (s->service) {
            buf_adds(out, ",\"service\":");
            buf_json_str(out, s->service);
        }
        buf_adds(out, ",\"metrics\":{");
        for (size_t k = 0; k < s->n; k++) {
            if (k)
                buf_addc(out, ',');
            buf_json_str(out, s->m[k].name);
            buf_addc(out, ':');
            buf_json_num(out, s->m[k].value);
        }
        buf_adds(out, "}}\n");
        written++;
    }
    return written;
}
