/* Column-aligned tables as kubectl prints them: a header row in capitals,
 * columns padded to their widest cell and three spaces apart. */
#ifndef SCALECAST_CLI_TABLE_H
#define SCALECAST_CLI_TABLE_H

#include <stddef.h>
#include <stdio.h>

struct table;

/* A table with the given column headers (copied; NULL-terminated list). */
struct table *table_new(const char *const *headers);

/* Appends a row of exactly as many cells as headers (copied; NULL prints
 * as "<none>"). */
void table_row(struct table *t, const char *const *cells);

size_t table_rows(const struct table *t);

/* Prints the table and frees it. Returns 0, or -1 if fp could not be
 * written. */
int table_print_free(struct table *t, FILE *fp);

#endif
