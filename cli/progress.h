/* A progress line on the terminal for long CLI work (export, backtests).
 *
 * Drawn on stderr, redrawn in place at most ten times a second, and only
 * when stderr is a terminal: output piped or redirected to a file is never
 * mixed with it. Every function accepts NULL and then does nothing, so a
 * caller needs no branches:
 *
 *     struct progress *p = progress_new("replay", PROGRESS_COUNT, steps, stdout);
 *     for (i = 0; i < steps; i++) { work(i); progress_update(p, i + 1, NULL); }
 *     progress_finish(p);
 */
#ifndef SCALECAST_CLI_PROGRESS_H
#define SCALECAST_CLI_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

enum progress_unit {
    PROGRESS_COUNT, /* items: "1234/5000" */
    PROGRESS_BYTES, /* bytes: "12.3 MiB", with the rate per second */
};

struct progress;

/* Starts a progress line labelled `label` (copied). total is the amount
 * expected (0: unknown, no percentage). Returns NULL, meaning "draw
 * nothing", when stderr is not a terminal, or when `out` is given and is a
 * terminal itself (the results are being read there). */
struct progress *progress_new(const char *label, enum progress_unit unit, uint64_t total,
                              FILE *out);

/* Reports the amount done so far; `extra` (may be NULL) is shown after the
 * figures, e.g. "1520 rows". Cheap to call often. */
void progress_update(struct progress *p, uint64_t done, const char *extra);

/* Draws the final state, ends the line and frees p. */
void progress_finish(struct progress *p);

#endif
