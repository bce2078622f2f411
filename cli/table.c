/* Aligned text tables. */
#include "table.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define GAP 3

struct table {
    size_t ncols, nrows, cap;
    char **cells; /* rows * ncols, row 0 the headers */
};

struct table *table_new(const char *const *headers)
{
    struct table *t = xcalloc(1, sizeof *t);
    while (headers[t->ncols])
        t->ncols++;
    table_row(t, headers);
    return t;
}

void table_row(struct table *t, const char *const *cells)
{
    t->cells = xgrow(t->cells, &t->cap, (t->nrows + 1) * t->ncols, sizeof *t->cells);
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = xstrdup(cells[i] ? cells[i] : "<none>");
    t->nrows++;
}

size_t table_rows(const struct table *t)
{
    return t->nrows - 1;
}

int table_print_free(struct table *t, FILE *fp)
{
    size_t *width = xcalloc(t->ncols, sizeof *width);
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            size_t w = strlen(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    int rc = 0;
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            bool last = c + 1 == t->ncols;
            if (fprintf(fp, "%-*s%s", last ? 0 : (int)(width[c] + GAP), cell, last ? "\n" : "") < 0)
                rc = -1;
        }
    }
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
    free(width);
    if (fflush(fp) != 0)
        rc = -1;
    return rc;
}
