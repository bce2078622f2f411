/* Time-series storage in SQLite.
 *
 * Write path (as time-series databases do): an accepted batch is appended to
 * an ingest log (one row per group commit) and acknowledged once that
 * transaction is durable; a background compactor moves logged samples into
 * per-series chunks (sorted, deduplicated by (series, ts)). Reads see both, so
 * a sample is visible from the moment it is acknowledged.
 *
 * Threads: one writer thread owns the write connection (group commit,
 * compaction, retention). Readers open their own connection with
 * store_reader_open(); a reader is used by one thread at a time. The
 * in-memory series index (ids, labels, latest value) is shared and locked
 * internally. */
#ifndef SCALECAST_STORE_H
#define SCALECAST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_reader;

/* Bumped when the schema changes; a database written by a newer scalecast
 * is refused with a clear error rather than misread. Version 3 encodes
 * chunks (chunk.h); an older database is upgraded in place. */
#define STORE_SCHEMA_VERSION 3

struct store_opts {
    const char *path;
    bool sync_full;   /* fsync the WAL on every commit (durable across power loss) */
    double retention; /* seconds of samples kept; <= 0 keeps everything */
};

/* Opens (creating if needed) the database and starts the writer thread.
 * Returns 0 and *out, or a negative value with a message in err. */
int store_open(const struct store_opts *o, struct store **out /* out */, char *err, size_t errlen);

/* Commits everything submitted so far, stops the writer thread and closes
 * the database. Safe with NULL. */
void store_close(struct store *st);

/* ---- Ingest -------------------------------------------------------------- */

/* One labelled sample, as parsed from a request. Strings are borrowed for the
 * duration of store_submit(). container/service are "" for host samples. */
struct store_sample {
    const char *node;
    const char *container;
    const char *service;
    const char *metric;
    double ts;
    double value;
};

/* Outcome of a submitted batch, reported on the writer thread. status is 0
 * when durably committed, -ENOSPC when the disk is full, another negative
 * value on any other failure (message in err). */
typedef void (*store_done_fn)(void *arg, int status, const char *err);

/* Queues a batch for the next group commit. Nothing of it is visible or
 * stored until done(arg, 0, NULL) is called; on failure nothing of it is
 * stored at all. done is called exactly once, from the writer thread. */
void store_submit(struct store *st, const struct store_sample *samples, size_t n,
                  store_done_fn done, void *arg);

/* Blocks until everything submitted before the call is committed and
 * compacted (used by tests and benchmarks). */
void store_sync(struct store *st);

/* ---- The series index (in memory, always current) ------------------------- */

struct store_series_info {
    int64_t id;
    const char *node; /* borrowed, valid during the callback */
    const char *container;
    const char *service;
    const char *metric;
    double last_ts; /* 0 if none acknowledged */
    double last_value;
    double last_received; /* Unix time a sample of it was last committed; 0
                             if none since this server started */
};

/* Filter for series: NULL fields match anything. node may be a glob
 * (fnmatch) when node_glob is true. container "" selects host series only. */
struct store_filter {
    const char *node;
    bool node_glob;
    const char *container;
    const char *service;
    const char *metric;
};

/* Calls fn for every series matching f (NULL: all), under the index lock:
 * fn must not call back into the store. Returns the number of series seen. */
size_t store_each_series(struct store *st, const struct store_filter *f,
                         void (*fn)(void *arg, const struct store_series_info *s), void *arg);

/* Returns 0 if the database takes writes: the last group commit succeeded,
 * or (after a failure) a probe write does now. -1 otherwise. */
int store_writable(struct store *st);

/* Counters for /metrics and /api/v1/stats. */
struct store_stats {
    uint64_t samples_committed; /* acknowledged since start */
    uint64_t commits;
    double commit_seconds_sum; /* time spent in commit transactions */
    double commit_seconds_max;
    uint64_t commit_failures;
    uint64_t pending_log_rows; /* logged but not yet compacted */
    uint64_t series;
};
void store_get_stats(struct store *st, struct store_stats *out /* out */);

/* ---- Reads -------------------------------------------------------------- */

int store_reader_open(struct store *st, struct store_reader **out /* out */);
void store_reader_close(struct store_reader *r);

/* Points of one series in [from, to], ascending by ts, deduplicated, at
 * most `limit` of them (0: no limit) starting from `from` — page through a
 * long range by calling again with from = nextafter(last ts, INFINITY). The
 * arrays are new allocations owned by the caller (free both). Returns 0, or
 * a negative value on a database error (nothing allocated). */
int store_read_points(struct store_reader *r, int64_t series_id, double from, double to,
                      size_t limit, double **ts /* out */, double **values /* out */,
                      size_t *n /* out */);

/* Total samples stored (chunks plus uncompacted log), for checks. */
int store_count_samples(struct store_reader *r, uint64_t *out /* out */);

/* ---- Decisions (the autoscaler's audit log) ------------------------------ */

struct store_decision {
    int64_t id; /* assigned on insert */
    double ts;
    const char *service;
    const char *action;  /* "scale_up", "scale_down", "hold" */
    int current;         /* replicas before */
    int desired;         /* what the rules asked for */
    int target;          /* what was applied/asked of the engine after limits */
    const char *mode;    /* "enforce", "dry-run", "advisory" */
    const char *outcome; /* "applied", "failed", "dry-run", "advisory", "none" */
    const char *reason;  /* human-readable */
    const char *error;   /* engine error or NULL */
    const char *inputs;  /* JSON object text with the numbers behind it, or NULL */
};

/* Appends a decision (synchronously, on the caller's thread, through the
 * writer's queue). Returns 0 or a negative value. */
int store_add_decision(struct store *st, const struct store_decision *d);

/* Decisions newest first, filtered by service (NULL: all) and [from, to];
 * at most limit. fn gets borrowed strings. Returns the count or < 0. */
int store_each_decision(struct store_reader *r, const char *service, double from, double to,
                        int limit, void (*fn)(void *arg, const struct store_decision *d),
                        void *arg);

#endif
