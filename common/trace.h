/* Recorded metric traces: a CSV reader shared by the backtests.
 *
 * Reads the formats of real exported traces as they are: an optional header
 * row, `,` or `;` or tab separated fields (a `;` followed by a tab counts as
 * one separator: surrounding blanks are trimmed), CRLF or LF line ends, a UTF-8
 * byte-order mark. One column is picked as the value, by name or position.
 * Time comes from a timestamp column (Unix seconds, Unix milliseconds, or
 * `YYYY-MM-DD HH:MM:SS` / `YYYY-MM-DDTHH:MM:SS[Z]` in UTC) or, when the file
 * has none, from a fixed interval given by the caller.
 *
 * Errors name the file and line: "traces/a.csv:17: column 'value': 'abc' is not
 * a number". */
#ifndef SCALECAST_TRACE_H
#define SCALECAST_TRACE_H

#include <stddef.h>

struct trace_opts {
    const char *column;   /* value column by header name (case-insensitive); NULL: see below */
    int column_index;     /* or by position, 1-based; 0: unset */
    const char *time_col; /* timestamp column by name; NULL: auto-detect (see trace_load) */
    double interval;      /* seconds between rows when the file has no timestamp
                           * column; 0: such a file is an error */
    double start;         /* timestamp of the first row in that case (default 0) */
};

/* One series read from a trace. Arrays are owned by the struct; release with
 * trace_free. ts[] is strictly ascending. */
struct trace {
    double *ts;
    double *v;
    size_t n;
    char *column;      /* name of the value column ("#N" when the file has no header) */
    char *time_column; /* name of the timestamp column, or NULL when rows are spaced by interval */
    int ts_millis;     /* 1 when the timestamps were milliseconds and were divided by 1000 */
};

/* Fills *o with defaults: no column chosen, auto-detected time, no interval. */
void trace_opts_default(struct trace_opts *o);

/* Reads the trace at `path`. The time column, unless named, is the first
 * column whose header starts with "timestamp", "time" or "date" (any case), or
 * when there is no header, a first column holding dates. The value column,
 * unless chosen, is a column named "value", else the only column besides the
 * time column; a file with several candidates is an error listing them.
 * Millisecond timestamps (above 1e11) are converted to seconds.
 * Returns 0 with *out filled (new arrays the caller frees with trace_free), or
 * -EINVAL (bad format; message in err), -ENOENT/-EIO etc. (file; message in
 * err), -ENODATA (no data rows). On failure *out is zeroed. */
int trace_load(const char *path, const struct trace_opts *o, struct trace *out, char *err,
               size_t errlen);

/* Same as trace_load for text already in memory; `name` is used in messages.
 * The text need not be NUL-terminated. */
int trace_parse(const char *text, size_t len, const char *name, const struct trace_opts *o,
                struct trace *out, char *err, size_t errlen);

/* Releases what trace_load/trace_parse allocated and zeroes *t. NULL-safe. */
void trace_free(struct trace *t);

/* Parses a UTC date "YYYY-MM-DD HH:MM:SS[.fff]" (or with 'T', optional 'Z')
 * into Unix seconds. Returns 0, or -EINVAL. */
int trace_parse_date(const char *s, double *out);

#endif
