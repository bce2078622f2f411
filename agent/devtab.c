/* Named device counters. */
#include "devtab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void devtab_begin(struct devtab *t)
{
    for (size_t i = 0; i < t->n; i++)
        t->e[i].seen = 0;
}

struct devtab_entry *devtab_get(struct devtab *t, const char *name, int *created)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->e[i].name, name) == 0) {
            t->e[i].seen = 1;
            *created = 0;
            return &t->e[i];
        }
    }
    t->e = xgrow(t->e, &t->cap, t->n + 1, sizeof *t->e);
    struct devtab_entry *e = &t->e[t->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->seen = 1;
    *created = 1;
    return e;
}

void devtab_sweep(struct devtab *t)
{
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->e[i].seen)
            t->e[k++] = t->e[i];
    }
    t->n = k;
}

void devtab_free(struct devtab *t)
{
    free(t->e);
    t->e = NULL;
    t->n = t->cap = 0;
}
