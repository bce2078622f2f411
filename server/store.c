/* Time-series storage in SQLite: ingest log, group commit, compaction into
 * per-series chunks, retention, reads. */
#include "store.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

#define CHUNK_MAX 256             /* points per chunk */
#define OPS_PER_TXN 512           /* compaction writes per transaction, at most */
#define SLICE_BUDGET 0.001        /* seconds a compaction transaction may take */
#define COMPACT_MIN_SAMPLES 50000 /* compact early once this many are pending */
#define COMPACT_INTERVAL 2.0      /* seconds between compaction rounds otherwise */
#define RETENTION_INTERVAL 60.0   /* seconds between retention sweeps */
#define CHECKPOINT_INTERVAL 5.0   /* seconds between WAL checkpoints, at least */

/* One sample in the ingest log and in memory: series id, time, value. */
struct rec {
    uint32_t sid;
    double ts;
    double value;
} __attribute__((packed));

struct point {
    double ts;
    double value;
};

/* ---- The series index ---------------------------------------------------- */

struct series_ent {
    int64_t id;
    char *node, *container, *service, *metric;
    double last_ts, last_value;
    double last_received; /* wall clock of the last commit with a sample of it */
    bool persisted;       /* its row is committed in `series` */
    uint64_t mark;        /* submit generation that already listed it as new */
};

struct index {
    struct series_ent **ents; /* by id - 1 */
    size_t n, cap;
    uint32_t *slots; /* open addressing: id, 0 = empty */
    size_t nslots;
};

static uint64_t hash_key(const char *node, const char *container, const char *metric)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    const char *parts[3] = {node, container, metric};
    for (int i = 0; i < 3; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++) {
            h ^= *p;
            h *= 1099511628211ULL;
        }
        h ^= 0x1f;
        h *= 1099511628211ULL;
    }
    return h;
}

static struct series_ent *index_find(struct index *ix, const char *node, const char *container,
                                     const char *metric, size_t *slot_out)
{
    size_t mask = ix->nslots - 1;
    size_t i = hash_key(node, container, metric) & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t id = ix->slots[i];
        if (id == 0) {
            if (slot_out)
                *slot_out = i;
            return NULL;
        }
        struct series_ent *e = ix->ents[id - 1];
        if (strcmp(e->metric, metric) == 0 && strcmp(e->node, node) == 0 &&
            strcmp(e->container, container) == 0)
            return e;
    }
}

static void index_rehash(struct index *ix)
{
    size_t nslots = ix->nslots ? ix->nslots * 2 : 1024;
    free(ix->slots);
    ix->slots = xcalloc(nslots, sizeof *ix->slots);
    ix->nslots = nslots;
    for (size_t k = 0; k < ix->n; k++) {
        struct series_ent *e = ix->ents[k];
        if (!e)
            continue;
        size_t slot;
        index_find(ix, e->node, e->container, e->metric, &slot);
        ix->slots[slot] = (uint32_t)e->id;
    }
}

/* Adds an entry with a given id (ids are dense: the table's INTEGER PRIMARY
 * KEY, allocated as max + 1). */
static struct series_ent *index_add(struct index *ix, int64_t id, const char *node,
                                    const char *container, const char *service, const char *metric)
{
    if ((ix->n + 1) * 2 > ix->nslots)
        index_rehash(ix);
    struct series_ent *e = xcalloc(1, sizeof *e);
    e->id = id;
    e->node = xstrdup(node);
    e->container = xstrdup(container);
    e->service = xstrdup(service);
    e->metric = xstrdup(metric);
    ix->ents = xgrow(ix->ents, &ix->cap, (size_t)id, sizeof *ix->ents);
    for (size_t k = ix->n; k < (size_t)id; k++)
        ix->ents[k] = NULL;
    ix->ents[id - 1] = e;
    if ((size_t)id > ix->n)
        ix->n = (size_t)id;
    size_t slot;
    index_find(ix, node, container, metric, &slot);
    ix->slots[slot] = (uint32_t)id;
    return e;
}

static struct series_ent *index_get(struct index *ix, int64_t id)
{
    if (id < 1 || (size_t)id > ix->n)
        return NULL;
    return ix->ents[id - 1];
}

static void index_free(struct index *ix)
{
    for (size_t k = 0; k < ix->n; k++) {
        struct series_ent *e = ix->ents[k];
        if (!e)
            continue;
        free(e->node);
        free(e->container);
        free(e->service);
        free(e->metric);
        free(e);
    }
    free(ix->ents);
    free(ix->slots);
}

/* ---- Writer jobs and compaction rounds ---------------------------------- */

struct newseries {
    int64_t id;
    char *node, *container, *service, *metric;
};

struct job {
    struct rec *recs;
    size_t n;
    struct newseries *created;
    size_t ncreated;
    store_done_fn done;
    void *arg;
    struct job *next;
};

enum op_kind { OP_PUT, OP_DEL };

struct chunk_op {
    enum op_kind kind;
    int64_t sid;
    double t0, t1;
    size_t n;
    struct point *pts; /* OP_PUT: owned */
};

struct round {
    struct chunk_op *ops;
    size_t nops, cap;
    size_t next;        /* first op not yet applied */
    int64_t max_log_id; /* log rows <= this are compacted by this round */
    uint64_t nrows;     /* log rows and samples it folds in */
    uint64_t nsamples;
};

struct store {
    char *path;
    bool sync_full;
    double retention;

    sqlite3 *wdb; /* writer thread's connection */
    sqlite3 *cdb; /* compactor thread's connection (reads + checkpoints) */
    sqlite3 *ddb; /* decisions connection (autoscaler thread) */
    pthread_mutex_t ddb_lock;

    pthread_mutex_t ix_lock;
    struct index ix;
    uint64_t mark_gen;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;  /* writer: work arrived */
    pthread_cond_t cwake; /* compactor: round finished / sync wanted */
    pthread_cond_t idle;  /* store_sync waiters */
    struct job *head, *tail;
    size_t inflight;     /* jobs submitted, not yet reported */
    struct round *round; /* handed from compactor to writer */
    bool round_done;
    bool stopping;
    int sync_waiters;
    bool last_commit_failed;
    uint64_t pending_rows;
    uint64_t pending_samples;
    struct store_stats stats;

    pthread_t writer, compactor;
};

static double now_mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double now_real(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        log_error("store", "%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int sqlite_to_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_IOERR:
        return -EIO;
    default:
        return -EIO;
    }
}

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS series("
    "  id INTEGER PRIMARY KEY, node TEXT NOT NULL, container TEXT NOT NULL,"
    "  service TEXT NOT NULL, metric TEXT NOT NULL, UNIQUE(node, container, metric));"
    /* One row per group commit: packed (u32 series, f64 ts, f64 value). */
    "CREATE TABLE IF NOT EXISTS ingest_log("
    "  id INTEGER PRIMARY KEY, received REAL NOT NULL, nsamples INTEGER NOT NULL,"
    "  data BLOB NOT NULL);"
    /* Up to CHUNK_MAX points of one series, sorted, packed (f64 ts, f64 value). */
    "CREATE TABLE IF NOT EXISTS chunks("
    "  series_id INTEGER NOT NULL, t0 REAL NOT NULL, t1 REAL NOT NULL, n INTEGER NOT NULL,"
    "  data BLOB NOT NULL, PRIMARY KEY(series_id, t0)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS decisions("
    "  id INTEGER PRIMARY KEY, ts REAL NOT NULL, service TEXT NOT NULL, action TEXT NOT NULL,"
    "  current INTEGER, desired INTEGER, target INTEGER, mode TEXT, outcome TEXT,"
    "  reason TEXT, error TEXT, inputs TEXT);"
    "CREATE INDEX IF NOT EXISTS decisions_service_ts ON decisions(service, ts);"
    "CREATE INDEX IF NOT EXISTS decisions_ts ON decisions(ts);";

/* Page cache per connection, in KiB: the writer's holds the hot tail chunks;
 * the others read far less, and each cache only grows, so together they set
 * the server's resident memory. */
#define CACHE_WRITER_KIB 16000
#define CACHE_OTHER_KIB 2000

static int open_conn(const char *path, bool sync_full, int cache_kib, sqlite3 **out, char *err,
                     size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open database: %s", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 10000);
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA wal_autocheckpoint=0;"
             "PRAGMA cache_size=-%d; PRAGMA foreign_keys=OFF;",
             sync_full ? "FULL" : "NORMAL", cache_kib);
    char *msg = NULL;
    rc = sqlite3_exec(db, pragmas, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

static int check_schema(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot create schema: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema_version'", -1, &st, NULL);
    int version = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > STORE_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "%s: database schema version %d is newer than this scalecast supports (%d); "
                 "use a newer scalecastd or another --db",
                 path, version, STORE_SCHEMA_VERSION);
        return -1;
    }
    if (version == 0) {
        char sql[128];
        snprintf(sql, sizeof sql,
                 "INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', %d)",
                 STORE_SCHEMA_VERSION);
        if (exec(db, sql) < 0) {
            snprintf(err, errlen, "%s: cannot record schema version", path);
            return -1;
        }
    }
    return 0;
}

/* ---- Chunk helpers -------------------------------------------------------- */

struct tagged_rec {
    struct rec r;
    size_t seq; /* position in the log: later wins */
};

static int cmp_tagged(const void *a, const void *b)
{
    const struct tagged_rec *x = a, *y = b;
    if (x->r.sid != y->r.sid)
        return x->r.sid < y->r.sid ? -1 : 1;
    if (x->r.ts != y->r.ts)
        return x->r.ts < y->r.ts ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Merges b (newer, wins on equal ts) into a; both sorted and unique. Returns
 * a new array. */
static struct point *merge_points(const struct point *a, size_t na, const struct point *b,
                                  size_t nb, size_t *nout)
{
    struct point *out = xmalloc((na + nb) * sizeof *out);
    size_t i = 0, j = 0, k = 0;
    while (i < na || j < nb) {
        if (j >= nb || (i < na && a[i].ts < b[j].ts)) {
            out[k++] = a[i++];
        } else if (i >= na || b[j].ts < a[i].ts) {
            out[k++] = b[j++];
        } else {
            out[k++] = b[j++];
            i++;
        }
    }
    *nout = k;
    return out;
}

static void round_push(struct round *r, struct chunk_op op)
{
    r->ops = xgrow(r->ops, &r->cap, r->nops + 1, sizeof *r->ops);
    r->ops[r->nops++] = op;
}

static void round_free(struct round *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nops; i++)
        free(r->ops[i].pts);
    free(r->ops);
    free(r);
}

/* Emits PUT ops covering pts[0..n) in chunks of at most CHUNK_MAX. */
static void emit_chunks(struct round *r, int64_t sid, const struct point *pts, size_t n)
{
    for (size_t off = 0; off < n; off += CHUNK_MAX) {
        size_t m = n - off < CHUNK_MAX ? n - off : CHUNK_MAX;
        struct point *copy = xmalloc(m * sizeof *copy);
        memcpy(copy, pts + off, m * sizeof *copy);
        round_push(r, (struct chunk_op){OP_PUT, sid, copy[0].ts, copy[m - 1].ts, m, copy});
    }
}

/* Plans the writes that fold one series' new points (sorted, unique) into
 * its chunks, reading the existing chunks through db. */
static int plan_series(sqlite3 *db, sqlite3_stmt *tail, sqlite3_stmt *overlap, struct round *r,
                       int64_t sid, const struct point *pts, size_t n)
{
    sqlite3_bind_int64(tail, 1, sid);
    int rc = sqlite3_step(tail);
    if (rc == SQLITE_ROW && sqlite3_column_double(tail, 1) < pts[0].ts) {
        /* Common case: all new points follow the tail chunk. Top it up. */
        double t0 = sqlite3_column_double(tail, 0);
        size_t have = (size_t)sqlite3_column_bytes(tail, 3) / sizeof(struct point);
        const struct point *old = sqlite3_column_blob(tail, 3);
        size_t take = have < CHUNK_MAX ? CHUNK_MAX - have : 0;
        if (take > n)
            take = n;
        if (take > 0) {
            struct point *merged = xmalloc((have + take) * sizeof *merged);
            memcpy(merged, old, have * sizeof *merged);
            memcpy(merged + have, pts, take * sizeof *merged);
            round_push(r, (struct chunk_op){OP_PUT, sid, t0, merged[have + take - 1].ts,
                                            have + take, merged});
        }
        sqlite3_reset(tail);
        emit_chunks(r, sid, pts + take, n - take);
        return 0;
    }
    sqlite3_reset(tail);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return -1;
    if (rc == SQLITE_DONE) {
        emit_chunks(r, sid, pts, n);
        return 0;
    }
    /* Late or repeated points: merge with every chunk they may touch. */
    struct point *acc = NULL;
    size_t nacc = 0;
    sqlite3_bind_int64(overlap, 1, sid);
    sqlite3_bind_double(overlap, 2, pts[0].ts);
    while ((rc = sqlite3_step(overlap)) == SQLITE_ROW) {
        double t0 = sqlite3_column_double(overlap, 0);
        size_t m = (size_t)sqlite3_column_bytes(overlap, 2) / sizeof(struct point);
        const struct point *cp = sqlite3_column_blob(overlap, 2);
        size_t nn;
        struct point *merged = merge_points(acc, nacc, cp, m, &nn);
        free(acc);
        acc = merged;
        nacc = nn;
        round_push(r, (struct chunk_op){OP_DEL, sid, t0, 0, 0, NULL});
    }
    sqlite3_reset(overlap);
    if (rc != SQLITE_DONE) {
        free(acc);
        return -1;
    }
    size_t nn;
    struct point *merged = merge_points(acc, nacc, pts, n, &nn);
    free(acc);
    emit_chunks(r, sid, merged, nn);
    free(merged);
    return 0;
}

/* Reads every log row up to the newest, and plans the chunk writes that fold
 * them in. Runs on the compactor's connection inside one read transaction, so
 * it never holds the write lock. Returns NULL when there is nothing to do. */
static struct round *plan_round(struct store *st, bool *empty /* out */)
{
    *empty = false;
    sqlite3 *db = st->cdb;
    if (exec(db, "BEGIN") < 0)
        return NULL;
    sqlite3_stmt *logq = NULL, *tail = NULL, *overlap = NULL;
    struct rec *recs = NULL;
    size_t nrecs = 0, cap = 0;
    int64_t max_id = 0;
    struct round *r = NULL;
    sqlite3_prepare_v2(db, "SELECT id, data FROM ingest_log ORDER BY id LIMIT 2000", -1, &logq,
                       NULL);
    uint64_t nrows = 0;
    while (sqlite3_step(logq) == SQLITE_ROW) {
        max_id = sqlite3_column_int64(logq, 0);
        nrows++;
        size_t m = (size_t)sqlite3_column_bytes(logq, 1) / sizeof(struct rec);
        recs = xgrow(recs, &cap, nrecs + m, sizeof *recs);
        memcpy(recs + nrecs, sqlite3_column_blob(logq, 1), m * sizeof *recs);
        nrecs += m;
        if (nrecs >= 1000000)
            break; /* bounds a round's memory (~50 MB); the rest is next */
    }
    if (max_id == 0) {
        *empty = sqlite3_errcode(db) == SQLITE_DONE || sqlite3_errcode(db) == SQLITE_OK;
        goto done;
    }
    /* Later log entries must win over earlier ones with the same (sid, ts);
     * qsort is not stable, so the original position breaks ties. */
    struct tagged_rec *tagged = xmalloc((nrecs ? nrecs : 1) * sizeof *tagged);
    for (size_t i = 0; i < nrecs; i++) {
        tagged[i].r = recs[i];
        tagged[i].seq = i;
    }
    free(recs);
    recs = NULL;
    qsort(tagged, nrecs, sizeof *tagged, cmp_tagged);

    r = xcalloc(1, sizeof *r);
    r->max_log_id = max_id;
    r->nrows = nrows;
    r->nsamples = nrecs;
    sqlite3_prepare_v2(db,
                       "SELECT t0, t1, n, data FROM chunks WHERE series_id=? "
                       "ORDER BY t0 DESC LIMIT 1",
                       -1, &tail, NULL);
    sqlite3_prepare_v2(db,
                       "SELECT t0, t1, data FROM chunks WHERE series_id=? AND t1 >= ? "
                       "ORDER BY t0",
                       -1, &overlap, NULL);
    struct point *pts = xmalloc((nrecs ? nrecs : 1) * sizeof *pts);
    size_t i = 0;
    while (i < nrecs) {
        uint32_t sid = tagged[i].r.sid;
        size_t np = 0;
        for (; i < nrecs && tagged[i].r.sid == sid; i++) {
            /* Equal timestamps are adjacent and ordered by seq: keep the last. */
            if (np > 0 && pts[np - 1].ts == tagged[i].r.ts)
                np--;
            pts[np++] = (struct point){tagged[i].r.ts, tagged[i].r.value};
        }
        if (plan_series(db, tail, overlap, r, sid, pts, np) < 0) {
            log_error("store", "compaction: cannot read chunks of series %u: %s", sid,
                      sqlite3_errmsg(db));
            round_free(r);
            r = NULL;
            break;
        }
    }
    free(pts);
    free(tagged);
done:
    sqlite3_finalize(logq);
    sqlite3_finalize(tail);
    sqlite3_finalize(overlap);
    free(recs);
    exec(db, "COMMIT");
    return r;
}

/* ---- The writer thread ---------------------------------------------------- */

struct wstmts {
    sqlite3_stmt *series, *log, *put, *del, *dellog;
};

static int prepare_writer(sqlite3 *db, struct wstmts *w)
{
    int rc = 0;
    rc |= sqlite3_prepare_v3(db,
                             "INSERT INTO series(id, node, container, service, metric) "
                             "VALUES(?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                             "service = excluded.service",
                             -1, SQLITE_PREPARE_PERSISTENT, &w->series, NULL);
    rc |= sqlite3_prepare_v3(db, "INSERT INTO ingest_log(received, nsamples, data) VALUES(?,?,?)",
                             -1, SQLITE_PREPARE_PERSISTENT, &w->log, NULL);
    rc |= sqlite3_prepare_v3(db,
                             "INSERT OR REPLACE INTO chunks(series_id, t0, t1, n, data) "
                             "VALUES(?,?,?,?,?)",
                             -1, SQLITE_PREPARE_PERSISTENT, &w->put, NULL);
    rc |= sqlite3_prepare_v3(db, "DELETE FROM chunks WHERE series_id=? AND t0=?", -1,
                             SQLITE_PREPARE_PERSISTENT, &w->del, NULL);
    rc |= sqlite3_prepare_v3(db, "DELETE FROM ingest_log WHERE id <= ?", -1,
                             SQLITE_PREPARE_PERSISTENT, &w->dellog, NULL);
    return rc == SQLITE_OK ? 0 : -1;
}

static void finalize_writer(struct wstmts *w)
{
    sqlite3_finalize(w->series);
    sqlite3_finalize(w->log);
    sqlite3_finalize(w->put);
    sqlite3_finalize(w->del);
    sqlite3_finalize(w->dellog);
}

static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void free_job(struct job *j)
{
    for (size_t i = 0; i < j->ncreated; i++) {
        free(j->created[i].node);
        free(j->created[i].container);
        free(j->created[i].service);
        free(j->created[i].metric);
    }
    free(j->created);
    free(j->recs);
    free(j);
}

/* Writes a group of jobs as one transaction: their new series and one log
 * row holding all their samples. Returns SQLITE_OK or the failing code. */
static int write_group(struct store *st, struct wstmts *w, struct job *jobs, size_t total)
{
    sqlite3 *db = st->wdb;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return rc;
    for (struct job *j = jobs; j && rc == SQLITE_OK; j = j->next) {
        for (size_t i = 0; i < j->ncreated && rc == SQLITE_OK; i++) {
            struct newseries *ns = &j->created[i];
            sqlite3_bind_int64(w->series, 1, ns->id);
            sqlite3_bind_text(w->series, 2, ns->node, -1, SQLITE_STATIC);
            sqlite3_bind_text(w->series, 3, ns->container, -1, SQLITE_STATIC);
            sqlite3_bind_text(w->series, 4, ns->service, -1, SQLITE_STATIC);
            sqlite3_bind_text(w->series, 5, ns->metric, -1, SQLITE_STATIC);
            rc = step_done(w->series);
        }
    }
    if (rc == SQLITE_OK && total > 0) {
        struct rec *all = xmalloc(total * sizeof *all);
        size_t off = 0;
        for (struct job *j = jobs; j; j = j->next) {
            memcpy(all + off, j->recs, j->n * sizeof *all);
            off += j->n;
        }
        sqlite3_bind_double(w->log, 1, now_real());
        sqlite3_bind_int64(w->log, 2, (sqlite3_int64)total);
        sqlite3_bind_blob(w->log, 3, all, (int)(total * sizeof *all), SQLITE_STATIC);
        rc = step_done(w->log);
        free(all);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Commits the queued jobs and reports each one's outcome. */
static void commit_jobs(struct store *st, struct wstmts *w, struct job *jobs)
{
    size_t total = 0, njobs = 0;
    for (struct job *j = jobs; j; j = j->next) {
        total += j->n;
        njobs++;
    }
    double t0 = now_mono();
    int rc = write_group(st, w, jobs, total);
    double dt = now_mono() - t0;
    char err[256] = "";
    int status = 0;
    if (rc != SQLITE_OK) {
        status = sqlite_to_errno(rc);
        snprintf(err, sizeof err, "database write failed: %s%s", sqlite3_errstr(rc),
                 status == -ENOSPC ? " (disk full)" : "");
        /* A full disk fails every commit: say so once, then every 10 s. */
        static double last_log;
        static uint64_t quiet;
        double now = now_mono();
        if (now - last_log >= 10) {
            log_error("store", "group commit of %zu batches (%zu samples) failed: %s%s", njobs,
                      total, err, quiet ? " (and earlier failures not logged)" : "");
            last_log = now;
            quiet = 0;
        } else {
            quiet++;
        }
    } else {
        /* Publish: the series rows exist and the samples are the newest known. */
        double received = now_real();
        pthread_mutex_lock(&st->ix_lock);
        for (struct job *j = jobs; j; j = j->next) {
            for (size_t i = 0; i < j->ncreated; i++) {
                struct series_ent *e = index_get(&st->ix, j->created[i].id);
                if (e)
                    e->persisted = true;
            }
            for (size_t i = 0; i < j->n; i++) {
                struct series_ent *e = index_get(&st->ix, j->recs[i].sid);
                if (!e)
                    continue;
                e->last_received = received;
                if (j->recs[i].ts >= e->last_ts) {
                    e->last_ts = j->recs[i].ts;
                    e->last_value = j->recs[i].value;
                }
            }
        }
        pthread_mutex_unlock(&st->ix_lock);
    }
    pthread_mutex_lock(&st->lock);
    if (status == 0) {
        st->stats.samples_committed += total;
        st->stats.commits++;
        st->stats.commit_seconds_sum += dt;
        if (dt > st->stats.commit_seconds_max)
            st->stats.commit_seconds_max = dt;
        if (total > 0) {
            st->pending_rows++;
            st->pending_samples += total;
        }
        st->last_commit_failed = false;
    } else {
        st->stats.commit_failures++;
        st->last_commit_failed = true;
    }
    pthread_mutex_unlock(&st->lock);
    while (jobs) {
        struct job *next = jobs->next;
        jobs->done(jobs->arg, status, status ? err : NULL);
        free_job(jobs);
        jobs = next;
    }
    pthread_mutex_lock(&st->lock);
    st->inflight -= njobs;
    pthread_cond_broadcast(&st->idle);
    pthread_cond_broadcast(&st->cwake); /* a sync waiter may want a round now */
    pthread_mutex_unlock(&st->lock);
}

/* Applies the next slice of a compaction round in one short transaction, so
 * ingest commits queued meanwhile wait at most one slice. Returns 1 when the
 * round is complete, 0 when more remains, -1 on failure (retried later). */
static int apply_slice(struct store *st, struct wstmts *w, struct round *r)
{
    sqlite3 *db = st->wdb;
    /* Compaction needs no fsync of its own: until its last slice deletes the
     * log rows, the log still holds every sample; a slice covers whole series
     * (see below), so one lost or never applied leaves those series as they
     * were, and planning again from the log redoes it. The next ingest commit
     * (synchronous=FULL) syncs the whole WAL, these frames included. */
    if (st->sync_full)
        sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    /* Ingest commits queued meanwhile wait for this transaction: stop after
     * SLICE_BUDGET, but never inside one series' ops — a late sample
     * rewrites a series by deleting chunks and writing merged ones, and only
     * both together keep the points that were in the deleted chunks. */
    double t0 = now_mono();
    size_t end = r->next;
    while (end < r->nops && rc == SQLITE_OK) {
        struct chunk_op *op = &r->ops[end];
        if (op->kind == OP_DEL) {
            sqlite3_bind_int64(w->del, 1, op->sid);
            sqlite3_bind_double(w->del, 2, op->t0);
            rc = step_done(w->del);
        } else {
            sqlite3_bind_int64(w->put, 1, op->sid);
            sqlite3_bind_double(w->put, 2, op->t0);
            sqlite3_bind_double(w->put, 3, op->t1);
            sqlite3_bind_int64(w->put, 4, (sqlite3_int64)op->n);
            sqlite3_bind_blob(w->put, 5, op->pts, (int)(op->n * sizeof *op->pts), SQLITE_STATIC);
            rc = step_done(w->put);
        }
        end++;
        bool boundary = end == r->nops || r->ops[end].sid != r->ops[end - 1].sid;
        if (boundary && (end - r->next >= OPS_PER_TXN || now_mono() - t0 >= SLICE_BUDGET))
            break;
    }
    bool last = end == r->nops;
    if (rc == SQLITE_OK && last) {
        sqlite3_bind_int64(w->dellog, 1, r->max_log_id);
        rc = step_done(w->dellog);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (st->sync_full)
        sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        log_warn("store", "compaction write failed (will retry): %s", sqlite3_errstr(rc));
        return -1;
    }
    /* Ops of an applied slice are written; free their points early. */
    for (size_t i = r->next; i < end; i++) {
        free(r->ops[i].pts);
        r->ops[i].pts = NULL;
    }
    r->next = end;
    return last ? 1 : 0;
}

static void *writer_main(void *arg)
{
    struct store *st = arg;
    struct wstmts w;
    if (prepare_writer(st->wdb, &w) < 0) {
        log_error("store", "cannot prepare statements: %s", sqlite3_errmsg(st->wdb));
        abort();
    }
    pthread_mutex_lock(&st->lock);
    for (;;) {
        while (!st->head && !(st->round && !st->round_done) && !st->stopping)
            pthread_cond_wait(&st->wake, &st->lock);
        if (st->head) {
            struct job *jobs = st->head;
            st->head = st->tail = NULL;
            pthread_mutex_unlock(&st->lock);
            commit_jobs(st, &w, jobs);
            pthread_mutex_lock(&st->lock);
            continue; /* ingest first; compaction slices fill the gaps */
        }
        if (st->round && !st->round_done && st->stopping) {
            /* Leave the rest of the round: the log is durable and the next
             * start compacts it again (compaction is idempotent). */
            st->round_done = true;
            pthread_cond_broadcast(&st->cwake);
            break;
        }
        if (st->round && !st->round_done) {
            struct round *r = st->round;
            pthread_mutex_unlock(&st->lock);
            int done = apply_slice(st, &w, r);
            pthread_mutex_lock(&st->lock);
            if (done < 0) {
                /* Give up this round; the compactor plans it again later. */
                st->round_done = true;
                pthread_cond_broadcast(&st->cwake);
                pthread_mutex_unlock(&st->lock);
                struct timespec ts = {0, 200 * 1000 * 1000};
                nanosleep(&ts, NULL);
                pthread_mutex_lock(&st->lock);
            } else if (done > 0) {
                st->round_done = true;
                pthread_cond_broadcast(&st->cwake);
            }
            continue;
        }
        if (st->stopping)
            break;
    }
    pthread_mutex_unlock(&st->lock);
    finalize_writer(&w);
    return NULL;
}

/* ---- The compactor thread ------------------------------------------------ */

/* Plans deletion of chunks wholly older than the retention cutoff, a bounded
 * number per sweep so each sweep stays short. */
static struct round *plan_retention(struct store *st, double cutoff)
{
    sqlite3 *db = st->cdb;
    struct round *r = xcalloc(1, sizeof *r);
    sqlite3_stmt *q = NULL;
    sqlite3_prepare_v2(db, "SELECT t0, t1 FROM chunks WHERE series_id=? AND t0 < ? ORDER BY t0", -1,
                       &q, NULL);
    pthread_mutex_lock(&st->ix_lock);
    size_t nseries = st->ix.n;
    pthread_mutex_unlock(&st->ix_lock);
    exec(db, "BEGIN");
    for (size_t id = 1; id <= nseries && r->nops < 20000; id++) {
        sqlite3_bind_int64(q, 1, (sqlite3_int64)id);
        sqlite3_bind_double(q, 2, cutoff);
        while (sqlite3_step(q) == SQLITE_ROW) {
            if (sqlite3_column_double(q, 1) >= cutoff)
                break;
            round_push(
                r, (struct chunk_op){OP_DEL, (int64_t)id, sqlite3_column_double(q, 0), 0, 0, NULL});
        }
        sqlite3_reset(q);
    }
    exec(db, "COMMIT");
    sqlite3_finalize(q);
    if (r->nops == 0) {
        round_free(r);
        return NULL;
    }
    return r;
}

/* Hands a round to the writer and waits until it is applied. Called with
 * st->lock held. Returns true if it completed. */
static bool run_round(struct store *st, struct round *r)
{
    st->round = r;
    st->round_done = false;
    pthread_cond_broadcast(&st->wake);
    while (!st->round_done)
        pthread_cond_wait(&st->cwake, &st->lock);
    bool complete = r->next == r->nops;
    if (complete) {
        st->pending_rows -= r->nrows <= st->pending_rows ? r->nrows : st->pending_rows;
        st->pending_samples -=
            r->nsamples <= st->pending_samples ? r->nsamples : st->pending_samples;
    }
    st->round = NULL;
    pthread_mutex_unlock(&st->lock);
    round_free(r);
    pthread_mutex_lock(&st->lock);
    return complete;
}

static void *compactor_main(void *arg)
{
    struct store *st = arg;
    /* Background work: let the threads that acknowledge ingests (the HTTP
     * loop and the writer) have the CPU first. Linux applies nice values
     * per thread. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    double last_round = now_mono(), last_retention = 0, last_checkpoint = 0;
    pthread_mutex_lock(&st->lock);
    while (!st->stopping) {
        double now = now_mono();
        bool due = st->pending_rows > 0 &&
                   (now - last_round >= COMPACT_INTERVAL ||
                    st->pending_samples >= COMPACT_MIN_SAMPLES || st->sync_waiters > 0);
        bool retention_due = st->retention > 0 && now - last_retention >= RETENTION_INTERVAL;
        if (!due && !retention_due) {
            if (st->sync_waiters > 0)
                pthread_cond_broadcast(&st->idle);
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 200 * 1000 * 1000;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&st->cwake, &st->lock, &until);
            continue;
        }
        pthread_mutex_unlock(&st->lock);
        bool empty = false;
        struct round *r =
            due ? plan_round(st, &empty) : plan_retention(st, now_real() - st->retention);
        pthread_mutex_lock(&st->lock);
        if (due && !r) {
            if (empty) {
                st->pending_rows = 0;
                st->pending_samples = 0;
            } else {
                /* A read error: back off rather than spin. */
                pthread_mutex_unlock(&st->lock);
                struct timespec pause = {1, 0};
                nanosleep(&pause, NULL);
                pthread_mutex_lock(&st->lock);
            }
        }
        if (due)
            last_round = now_mono();
        else
            last_retention = now_mono();
        if (r && !st->stopping) {
            size_t nops = r->nops;
            bool complete = run_round(st, r);
            if (!due && complete)
                log_info("store", "retention: deleted %zu chunks older than %.0f s", nops,
                         st->retention);
        } else {
            round_free(r);
        }
        pthread_cond_broadcast(&st->idle);
        pthread_mutex_unlock(&st->lock);
        /* Keep the WAL from growing: copy it back without blocking anyone,
         * but not after every round: each checkpoint's fsync of the database
         * file competes with the commits' fsyncs of the WAL. */
        if (now_mono() - last_checkpoint >= CHECKPOINT_INTERVAL) {
            sqlite3_wal_checkpoint_v2(st->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
            last_checkpoint = now_mono();
        }
        pthread_mutex_lock(&st->lock);
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

/* ---- Open, submit, close -------------------------------------------------- */

/* Loads the series table into the index and recovers each series' latest
 * point from its tail chunk and the uncompacted log. */
static int load_index(struct store *st)
{
    sqlite3 *db = st->wdb;
    sqlite3_stmt *q = NULL, *tail = NULL, *logq = NULL;
    sqlite3_prepare_v2(db, "SELECT id, node, container, service, metric FROM series ORDER BY id",
                       -1, &q, NULL);
    sqlite3_prepare_v2(db, "SELECT data FROM chunks WHERE series_id=? ORDER BY t0 DESC LIMIT 1", -1,
                       &tail, NULL);
    sqlite3_prepare_v2(db, "SELECT nsamples, data FROM ingest_log ORDER BY id", -1, &logq, NULL);
    if (!q || !tail || !logq)
        goto fail;
    while (sqlite3_step(q) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(q, 0);
        struct series_ent *e = index_add(&st->ix, id, (const char *)sqlite3_column_text(q, 1),
                                         (const char *)sqlite3_column_text(q, 2),
                                         (const char *)sqlite3_column_text(q, 3),
                                         (const char *)sqlite3_column_text(q, 4));
        e->persisted = true;
        sqlite3_bind_int64(tail, 1, id);
        if (sqlite3_step(tail) == SQLITE_ROW) {
            size_t m = (size_t)sqlite3_column_bytes(tail, 0) / sizeof(struct point);
            const struct point *p = sqlite3_column_blob(tail, 0);
            if (m > 0) {
                e->last_ts = p[m - 1].ts;
                e->last_value = p[m - 1].value;
            }
        }
        sqlite3_reset(tail);
    }
    while (sqlite3_step(logq) == SQLITE_ROW) {
        st->pending_rows++;
        st->pending_samples += (uint64_t)sqlite3_column_int64(logq, 0);
        size_t m = (size_t)sqlite3_column_bytes(logq, 1) / sizeof(struct rec);
        const struct rec *recs = sqlite3_column_blob(logq, 1);
        for (size_t i = 0; i < m; i++) {
            struct series_ent *e = index_get(&st->ix, recs[i].sid);
            if (e && recs[i].ts >= e->last_ts) {
                e->last_ts = recs[i].ts;
                e->last_value = recs[i].value;
            }
        }
    }
    sqlite3_finalize(q);
    sqlite3_finalize(tail);
    sqlite3_finalize(logq);
    return 0;
fail:
    sqlite3_finalize(q);
    sqlite3_finalize(tail);
    sqlite3_finalize(logq);
    return -1;
}

int store_open(const struct store_opts *o, struct store **out, char *err, size_t errlen)
{
    struct store *st = xcalloc(1, sizeof *st);
    st->path = xstrdup(o->path);
    st->sync_full = o->sync_full;
    st->retention = o->retention;
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->ix_lock, NULL);
    pthread_mutex_init(&st->ddb_lock, NULL);
    pthread_cond_init(&st->wake, NULL);
    pthread_cond_init(&st->cwake, NULL);
    pthread_cond_init(&st->idle, NULL);
    index_rehash(&st->ix); /* allocate the first slots */
    if (open_conn(o->path, o->sync_full, CACHE_WRITER_KIB, &st->wdb, err, errlen) < 0)
        goto fail;
    if (check_schema(st->wdb, o->path, err, errlen) < 0)
        goto fail;
    if (load_index(st) < 0) {
        snprintf(err, errlen, "%s: cannot load series: %s", o->path, sqlite3_errmsg(st->wdb));
        goto fail;
    }
    if (open_conn(o->path, o->sync_full, CACHE_OTHER_KIB, &st->cdb, err, errlen) < 0 ||
        open_conn(o->path, o->sync_full, CACHE_OTHER_KIB, &st->ddb, err, errlen) < 0)
        goto fail;
    pthread_create(&st->writer, NULL, writer_main, st);
    pthread_create(&st->compactor, NULL, compactor_main, st);
    log_info("store", "opened %s: %zu series, %llu samples awaiting compaction", o->path, st->ix.n,
             (unsigned long long)st->pending_samples);
    *out = st;
    return 0;
fail:
    sqlite3_close(st->wdb);
    sqlite3_close(st->cdb);
    sqlite3_close(st->ddb);
    index_free(&st->ix);
    free(st->path);
    free(st);
    return -1;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    st->stopping = true;
    pthread_cond_broadcast(&st->wake);
    pthread_cond_broadcast(&st->cwake);
    pthread_mutex_unlock(&st->lock);
    /* The writer drains every queued job before it exits. */
    pthread_join(st->writer, NULL);
    pthread_join(st->compactor, NULL);
    sqlite3_wal_checkpoint_v2(st->wdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sqlite3_close(st->cdb);
    sqlite3_close(st->ddb);
    sqlite3_close(st->wdb);
    index_free(&st->ix);
    pthread_mutex_destroy(&st->lock);
    pthread_mutex_destroy(&st->ix_lock);
    pthread_mutex_destroy(&st->ddb_lock);
    pthread_cond_destroy(&st->wake);
    pthread_cond_destroy(&st->cwake);
    pthread_cond_destroy(&st->idle);
    free(st->path);
    free(st);
}

void store_submit(struct store *st, const struct store_sample *samples, size_t n,
                  store_done_fn done, void *arg)
{
    struct job *j = xcalloc(1, sizeof *j);
    j->recs = xmalloc((n ? n : 1) * sizeof *j->recs);
    j->n = n;
    j->done = done;
    j->arg = arg;
    size_t cap = 0;
    pthread_mutex_lock(&st->ix_lock);
    uint64_t gen = ++st->mark_gen;
    for (size_t i = 0; i < n; i++) {
        const struct store_sample *s = &samples[i];
        size_t slot;
        struct series_ent *e = index_find(&st->ix, s->node, s->container, s->metric, &slot);
        if (!e) {
            e = index_add(&st->ix, (int64_t)st->ix.n + 1, s->node, s->container, s->service,
                          s->metric);
        } else if (s->service[0] && strcmp(e->service, s->service) != 0) {
            free(e->service);
            e->service = xstrdup(s->service);
            e->persisted = false;
        }
        if (!e->persisted && e->mark != gen) {
            e->mark = gen;
            j->created = xgrow(j->created, &cap, j->ncreated + 1, sizeof *j->created);
            j->created[j->ncreated++] =
                (struct newseries){e->id, xstrdup(e->node), xstrdup(e->container),
                                   xstrdup(e->service), xstrdup(e->metric)};
        }
        j->recs[i] = (struct rec){(uint32_t)e->id, s->ts, s->value};
    }
    pthread_mutex_unlock(&st->ix_lock);
    pthread_mutex_lock(&st->lock);
    if (st->tail)
        st->tail->next = j;
    else
        st->head = j;
    st->tail = j;
    st->inflight++;
    pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->lock);
}

void store_sync(struct store *st)
{
    pthread_mutex_lock(&st->lock);
    st->sync_waiters++;
    pthread_cond_broadcast(&st->cwake);
    while (!st->stopping && (st->inflight > 0 || st->pending_rows > 0))
        pthread_cond_wait(&st->idle, &st->lock);
    st->sync_waiters--;
    pthread_mutex_unlock(&st->lock);
}

/* ---- Index queries -------------------------------------------------------- */

static bool filter_match(const struct store_filter *f, const struct series_ent *e)
{
    if (!f)
        return true;
    if (f->node && (f->node_glob ? fnmatch(f->node, e->node, 0) != 0 : strcmp(f->node, e->node)))
        return false;
    if (f->container && strcmp(f->container, e->container) != 0)
        return false;
    if (f->service && strcmp(f->service, e->service) != 0)
        return false;
    if (f->metric && strcmp(f->metric, e->metric) != 0)
        return false;
    return true;
}

size_t store_each_series(struct store *st, const struct store_filter *f,
                         void (*fn)(void *arg, const struct store_series_info *s), void *arg)
{
    size_t count = 0;
    pthread_mutex_lock(&st->ix_lock);
    for (size_t k = 0; k < st->ix.n; k++) {
        struct series_ent *e = st->ix.ents[k];
        if (!e || e->last_ts == 0 || !filter_match(f, e))
            continue;
        struct store_series_info info = {e->id,     e->node,    e->container,  e->service,
                                         e->metric, e->last_ts, e->last_value, e->last_received};
        fn(arg, &info);
        count++;
    }
    pthread_mutex_unlock(&st->ix_lock);
    return count;
}

void store_get_stats(struct store *st, struct store_stats *out)
{
    pthread_mutex_lock(&st->lock);
    *out = st->stats;
    out->pending_log_rows = st->pending_rows;
    pthread_mutex_unlock(&st->lock);
    pthread_mutex_lock(&st->ix_lock);
    out->series = st->ix.n;
    pthread_mutex_unlock(&st->ix_lock);
}

/* ---- Readers -------------------------------------------------------------- */

struct store_reader {
    struct store *st;
    sqlite3 *db;
    sqlite3_stmt *chunks, *log, *count, *dec;
};

int store_reader_open(struct store *st, struct store_reader **out)
{
    char err[256];
    struct store_reader *r = xcalloc(1, sizeof *r);
    r->st = st;
    if (open_conn(st->path, st->sync_full, CACHE_OTHER_KIB, &r->db, err, sizeof err) < 0) {
        log_error("store", "%s", err);
        free(r);
        return -EIO;
    }
    int rc = 0;
    rc |= sqlite3_prepare_v2(r->db,
                             "SELECT data FROM chunks WHERE series_id=? AND t1 >= ? AND t0 <= ? "
                             "ORDER BY t0",
                             -1, &r->chunks, NULL);
    rc |= sqlite3_prepare_v2(r->db, "SELECT data FROM ingest_log ORDER BY id", -1, &r->log, NULL);
    rc |= sqlite3_prepare_v2(r->db,
                             "SELECT (SELECT coalesce(sum(n), 0) FROM chunks) + "
                             "(SELECT coalesce(sum(nsamples), 0) FROM ingest_log)",
                             -1, &r->count, NULL);
    if (rc != SQLITE_OK) {
        log_error("store", "reader: %s", sqlite3_errmsg(r->db));
        store_reader_close(r);
        return -EIO;
    }
    *out = r;
    return 0;
}

void store_reader_close(struct store_reader *r)
{
    if (!r)
        return;
    sqlite3_finalize(r->chunks);
    sqlite3_finalize(r->log);
    sqlite3_finalize(r->count);
    sqlite3_finalize(r->dec);
    sqlite3_close(r->db);
    free(r);
}

static int cmp_point_seq(const void *a, const void *b)
{
    const struct tagged_rec *x = a, *y = b;
    if (x->r.ts != y->r.ts)
        return x->r.ts < y->r.ts ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Points of series sid in [from, to] still in the log, sorted, unique (the
 * latest logged value wins). */
static int log_points(struct store_reader *r, int64_t sid, double from, double to,
                      struct point **out, size_t *nout)
{
    struct tagged_rec *t = NULL;
    size_t n = 0, cap = 0, seq = 0;
    int rc;
    while ((rc = sqlite3_step(r->log)) == SQLITE_ROW) {
        size_t m = (size_t)sqlite3_column_bytes(r->log, 0) / sizeof(struct rec);
        const struct rec *recs = sqlite3_column_blob(r->log, 0);
        for (size_t i = 0; i < m; i++, seq++) {
            if (recs[i].sid != (uint32_t)sid || recs[i].ts < from || recs[i].ts > to)
                continue;
            t = xgrow(t, &cap, n + 1, sizeof *t);
            t[n].r = recs[i];
            t[n].seq = seq;
            n++;
        }
    }
    sqlite3_reset(r->log);
    if (rc != SQLITE_DONE) {
        free(t);
        return -EIO;
    }
    if (n)
        qsort(t, n, sizeof *t, cmp_point_seq);
    struct point *p = xmalloc((n ? n : 1) * sizeof *p);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && p[k - 1].ts == t[i].r.ts)
            k--;
        p[k++] = (struct point){t[i].r.ts, t[i].r.value};
    }
    free(t);
    *out = p;
    *nout = k;
    return 0;
}

int store_read_points(struct store_reader *r, int64_t series_id, double from, double to,
                      size_t limit, double **ts, double **values, size_t *n)
{
    struct point *cp = NULL, *lp = NULL;
    size_t nc = 0, ccap = 0, nl = 0;
    int ret = -EIO;
    if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int64(r->chunks, 1, series_id);
    sqlite3_bind_double(r->chunks, 2, from);
    sqlite3_bind_double(r->chunks, 3, to);
    int rc;
    while ((rc = sqlite3_step(r->chunks)) == SQLITE_ROW) {
        size_t m = (size_t)sqlite3_column_bytes(r->chunks, 0) / sizeof(struct point);
        const struct point *p = sqlite3_column_blob(r->chunks, 0);
        cp = xgrow(cp, &ccap, nc + m, sizeof *cp);
        for (size_t i = 0; i < m; i++) {
            if (p[i].ts >= from && p[i].ts <= to)
                cp[nc++] = p[i];
        }
        if (limit && nc >= limit)
            break; /* later chunks start after these: enough to fill the limit */
    }
    sqlite3_reset(r->chunks);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        goto out;
    if (log_points(r, series_id, from, to, &lp, &nl) < 0)
        goto out;
    size_t nm;
    struct point *m = merge_points(cp, nc, lp, nl, &nm);
    if (limit && nm > limit)
        nm = limit;
    *ts = xmalloc((nm ? nm : 1) * sizeof **ts);
    *values = xmalloc((nm ? nm : 1) * sizeof **values);
    for (size_t i = 0; i < nm; i++) {
        (*ts)[i] = m[i].ts;
        (*values)[i] = m[i].value;
    }
    free(m);
    *n = nm;
    ret = 0;
out:
    sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
    free(cp);
    free(lp);
    return ret;
}

int store_count_samples(struct store_reader *r, uint64_t *out)
{
    int rc = sqlite3_step(r->count);
    if (rc == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(r->count, 0);
    sqlite3_reset(r->count);
    return rc == SQLITE_ROW ? 0 : -EIO;
}

/* ---- Decisions ----------------------------------------------------------- */

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

int store_add_decision(struct store *st, const struct store_decision *d)
{
    pthread_mutex_lock(&st->ddb_lock);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->ddb,
                                "INSERT INTO decisions(ts, service, action, current, desired, "
                                "target, mode, outcome, reason, error, inputs) "
                                "VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                                -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_double(s, 1, d->ts);
        bind_text_or_null(s, 2, d->service);
        bind_text_or_null(s, 3, d->action);
        sqlite3_bind_int(s, 4, d->current);
        sqlite3_bind_int(s, 5, d->desired);
        sqlite3_bind_int(s, 6, d->target);
        bind_text_or_null(s, 7, d->mode);
        bind_text_or_null(s, 8, d->outcome);
        bind_text_or_null(s, 9, d->reason);
        bind_text_or_null(s, 10, d->error);
        bind_text_or_null(s, 11, d->inputs);
        rc = sqlite3_step(s);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    if (rc != SQLITE_OK)
        log_error("store", "cannot record decision for %s: %s", d->service,
                  sqlite3_errmsg(st->ddb));
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->ddb_lock);
    return rc == SQLITE_OK ? 0 : sqlite_to_errno(rc);
}

int store_each_decision(struct store_reader *r, const char *service, double from, double to,
                        int limit, void (*fn)(void *arg, const struct store_decision *d), void *arg)
{
    if (!r->dec &&
        sqlite3_prepare_v2(r->db,
                           "SELECT id, ts, service, action, current, desired, target, mode, "
                           "outcome, reason, error, inputs FROM decisions "
                           "WHERE (?1 IS NULL OR service = ?1) AND ts >= ?2 AND ts <= ?3 "
                           "ORDER BY ts DESC, id DESC LIMIT ?4",
                           -1, &r->dec, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_stmt *s = r->dec;
    bind_text_or_null(s, 1, service);
    sqlite3_bind_double(s, 2, from);
    sqlite3_bind_double(s, 3, to);
    sqlite3_bind_int(s, 4, limit > 0 ? limit : -1);
    int count = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_decision d = {
            .id = sqlite3_column_int64(s, 0),
            .ts = sqlite3_column_double(s, 1),
            .service = (const char *)sqlite3_column_text(s, 2),
            .action = (const char *)sqlite3_column_text(s, 3),
            .current = sqlite3_column_int(s, 4),
            .desired = sqlite3_column_int(s, 5),
            .target = sqlite3_column_int(s, 6),
            .mode = (const char *)sqlite3_column_text(s, 7),
            .outcome = (const char *)sqlite3_column_text(s, 8),
            .reason = (const char *)sqlite3_column_text(s, 9),
            .error = (const char *)sqlite3_column_text(s, 10),
            .inputs = (const char *)sqlite3_column_text(s, 11),
        };
        fn(arg, &d);
        count++;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? count : -EIO;
}

int store_writable(struct store *st)
{
    pthread_mutex_lock(&st->lock);
    bool failed = st->last_commit_failed;
    pthread_mutex_unlock(&st->lock);
    if (!failed)
        return 0;
    /* Probe with a real write of the size of a typical batch (and its
     * fsync) on the decisions connection; shrink it again afterwards. */
    pthread_mutex_lock(&st->ddb_lock);
    int rc = sqlite3_exec(st->ddb,
                          "INSERT OR REPLACE INTO meta(key, value) VALUES('health_probe', "
                          "zeroblob(262144))",
                          NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->ddb, "DELETE FROM meta WHERE key = 'health_probe'", NULL, NULL, NULL);
    pthread_mutex_unlock(&st->ddb_lock);
    if (rc != SQLITE_OK)
        return -1;
    pthread_mutex_lock(&st->lock);
    st->last_commit_failed = false;
    pthread_mutex_unlock(&st->lock);
    return 0;
}
