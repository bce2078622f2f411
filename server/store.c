/* Time-series storage: the ingest journal, group commit, compaction into
 * per-series SQLite chunks, retention, reads. */
#include "store.h"

#include <errno.h>
#include <fnmatch.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "chunk.h"
#include "journal.h"
#include "log.h"
#include "xalloc.h"

#define CHUNK_MAX 256     /* points per chunk */
#define TOPUP_MAX 64      /* a round with fewer new points for a series tops up its tail chunk */
#define OPS_PER_TXN 2048  /* compaction writes per transaction, at most */
#define SLICE_BUDGET 0.02 /* seconds a compaction transaction may take */
/* Compaction rewrites each touched series' tail chunk, so rounds that fold
 * in few points per series write many bytes per sample: collect a few
 * seconds' worth first (the samples are in memory and the journal). */
#define COMPACT_MIN_SAMPLES 1000000 /* compact early once this many are pending */
#define COMPACT_INTERVAL 5.0        /* seconds between compaction rounds otherwise */
#define ROUND_MAX_SAMPLES 1000000   /* a round's input, at most (~50 MB while planned) */
#define MEM_MAX_SAMPLES 4000000     /* journaled, not compacted: the writer waits beyond */
#define MEM_WAIT_SECONDS 5          /* then refuses batches (503) while it stays behind */
#define RETENTION_INTERVAL 60.0     /* seconds between retention sweeps */
#define CHECKPOINT_INTERVAL 1.0     /* seconds between WAL checkpoints, at least */
#define TRIM_INTERVAL 2.0           /* seconds between returning freed heap to the OS */
#define TRIM_INTERVAL_BUSY 10.0     /* the same after a full-size round (see the loop) */

/* One sample in the journal and in memory: series id, time, value. */
struct rec {
    uint32_t sid;
    double ts;
    double value;
} __attribute__((packed));

/* ---- The series index ---------------------------------------------------- */

/* Node and container names are interned (one copy each, never freed before
 * the store), so a series is found by comparing two pointers and one
 * metric name; a batch names its node once for many samples, and
 * store_submit looks the node up once per run of samples that share it. */
struct series_ent {
    int64_t id;
    const char *node, *container; /* interned */
    char *service, *metric;
    uint64_t hash;
    double last_ts, last_value;
    double last_received; /* wall clock of the last commit with a sample of it */
    bool persisted;       /* its definition is durable (journal or `series`) */
    uint64_t mark;        /* submit generation that already listed it as new */
};

struct slot {
    uint32_t id;  /* 0 = empty */
    uint32_t tag; /* high bits of the hash: most mismatches end here */
};

struct index {
    struct series_ent **ents; /* by id - 1 */
    size_t n, cap;
    struct slot *slots; /* open addressing */
    size_t nslots;
    char **strs; /* interned names, open addressing, NULL = empty */
    size_t nstrs, strslots;
};

static uint64_t hash_str(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL; /* FNV-1a */
    }
    return h;
}

/* The interned copy of s (made on first use). */
static const char *intern(struct index *ix, const char *s)
{
    if ((ix->nstrs + 1) * 2 > ix->strslots) {
        size_t n = ix->strslots ? ix->strslots * 2 : 256;
        char **v = xcalloc(n, sizeof *v);
        for (size_t i = 0; i < ix->strslots; i++) {
            if (!ix->strs[i])
                continue;
            size_t k = hash_str(1469598103934665603ULL, ix->strs[i]) & (n - 1);
            while (v[k])
                k = (k + 1) & (n - 1);
            v[k] = ix->strs[i];
        }
        free(ix->strs);
        ix->strs = v;
        ix->strslots = n;
    }
    size_t mask = ix->strslots - 1;
    size_t k = hash_str(1469598103934665603ULL, s) & mask;
    for (; ix->strs[k]; k = (k + 1) & mask)
        if (strcmp(ix->strs[k], s) == 0)
            return ix->strs[k];
    ix->strs[k] = xstrdup(s);
    ix->nstrs++;
    return ix->strs[k];
}

/* A series' hash from its interned node and container and its metric. */
static uint64_t series_hash(const char *inode, const char *icont, const char *metric)
{
    uint64_t h = ((uint64_t)(uintptr_t)inode * 0x9e3779b97f4a7c15ULL) ^
                 ((uint64_t)(uintptr_t)icont * 0xc2b2ae3d27d4eb4fULL);
    return hash_str(h ^ 1469598103934665603ULL, metric);
}

static struct series_ent *index_find(struct index *ix, const char *inode, const char *icont,
                                     const char *metric, uint64_t h, size_t *slot_out)
{
    size_t mask = ix->nslots - 1;
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct slot sl = ix->slots[i];
        if (sl.id == 0) {
            if (slot_out)
                *slot_out = i;
            return NULL;
        }
        if (sl.tag != tag)
            continue;
        struct series_ent *e = ix->ents[sl.id - 1];
        if (e->node == inode && e->container == icont && strcmp(e->metric, metric) == 0)
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
        index_find(ix, e->node, e->container, e->metric, e->hash, &slot);
        ix->slots[slot] = (struct slot){(uint32_t)e->id, (uint32_t)(e->hash >> 32)};
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
    e->node = intern(ix, node);
    e->container = intern(ix, container);
    e->service = xstrdup(service);
    e->metric = xstrdup(metric);
    e->hash = series_hash(e->node, e->container, metric);
    ix->ents = xgrow(ix->ents, &ix->cap, (size_t)id, sizeof *ix->ents);
    for (size_t k = ix->n; k < (size_t)id; k++)
        ix->ents[k] = NULL;
    ix->ents[id - 1] = e;
    if ((size_t)id > ix->n)
        ix->n = (size_t)id;
    size_t slot;
    index_find(ix, e->node, e->container, metric, e->hash, &slot);
    ix->slots[slot] = (struct slot){(uint32_t)id, (uint32_t)(e->hash >> 32)};
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
        free(e->service);
        free(e->metric);
        free(e);
    }
    for (size_t k = 0; k < ix->strslots; k++)
        free(ix->strs[k]);
    free(ix->strs);
    free(ix->ents);
    free(ix->slots);
}

/* ---- Jobs, journal blocks and compaction rounds ---------------------------- */

struct newseries {
    int64_t id;
    char *node, *container, *service, *metric;
};

/* A batch waiting for the next group commit. */
struct job {
    struct rec *recs;
    size_t n;
    struct newseries *created;
    size_t ncreated;
    store_done_fn done;
    void *arg;
    struct job *next;
};

/* One journal record in memory (the "memtable"): the samples of one group
 * commit and the series it defined, kept until the compactor has them in
 * SQLite. Immutable once listed; readers hold references while they scan. */
#define BLOOM_WORDS 16 /* 1024 bits: which series a block may hold */

struct block {
    uint64_t seq;
    uint64_t bloom[BLOOM_WORDS]; /* readers skip blocks without their series */
    struct rec *recs;
    size_t n;
    struct newseries *created;
    size_t ncreated;
    atomic_int refs;
    struct block *next;
};

enum op_kind { OP_PUT, OP_DEL };

struct chunk_op {
    enum op_kind kind;
    int64_t sid;
    double t0, t1;
    size_t n;
    uint8_t *blob; /* OP_PUT: the n points, encoded (chunk.h); owned */
    size_t len;
};

struct round {
    struct chunk_op *ops;
    size_t nops, cap;
    size_t next;           /* first op not yet applied */
    struct block **blocks; /* the journal blocks it folds in (referenced) */
    size_t nblocks;
    uint64_t nsamples;
    struct tailupd *tails; /* what the chunks' newest times will be once applied */
    size_t ntails, tcap;
};

/* The compactor's memory of a series' newest chunk time (NAN: unknown). */
struct tailupd {
    uint32_t sid;
    double t1;
};

struct store {
    char *path;
    bool sync_full;
    double retention;

    struct journal *jr; /* written by the writer thread only */
    sqlite3 *cdb;       /* compactor thread's connection: all sample writes */
    double *tail_t1;    /* by series id: newest chunk time, NAN unknown (compactor's) */
    size_t ntail;
    sqlite3 *ddb; /* decisions connection (autoscaler thread) */
    pthread_mutex_t ddb_lock;

    pthread_mutex_t ix_lock;
    struct index ix;
    uint64_t mark_gen;

    pthread_mutex_t mem_lock; /* guards the block list */
    struct block *mhead, *mtail;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;  /* writer: work arrived */
    pthread_cond_t cwake; /* compactor: commit done / sync wanted */
    pthread_cond_t idle;  /* store_sync waiters */
    pthread_cond_t room;  /* writer: the compactor freed memory */
    struct job *head, *tail;
    size_t inflight; /* jobs submitted, not yet reported */
    bool rotate_wanted;
    bool stopping;
    int sync_waiters;
    bool last_commit_failed;
    uint64_t pending_rows; /* journal records not yet compacted */
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

static void free_created(struct newseries *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].node);
        free(c[i].container);
        free(c[i].service);
        free(c[i].metric);
    }
    free(c);
}

static void block_unref(struct block *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    free_created(b->created, b->ncreated);
    free(b->recs);
    free(b);
}

static unsigned bloom_bit(uint32_t sid)
{
    return (unsigned)((sid * 2654435761u) >> 22); /* top 10 bits: 0..1023 */
}

static void bloom_fill(struct block *b)
{
    memset(b->bloom, 0, sizeof b->bloom);
    for (size_t i = 0; i < b->n; i++) {
        unsigned bit = bloom_bit(b->recs[i].sid);
        b->bloom[bit / 64] |= 1ULL << (bit % 64);
    }
}

static bool bloom_may_hold(const struct block *b, uint32_t sid)
{
    unsigned bit = bloom_bit(sid);
    return (b->bloom[bit / 64] >> (bit % 64)) & 1;
}

/* Lists a block as the newest (it holds the list's reference). */
static void mem_append(struct store *st, struct block *b)
{
    bloom_fill(b);
    pthread_mutex_lock(&st->mem_lock);
    if (st->mtail)
        st->mtail->next = b;
    else
        st->mhead = b;
    st->mtail = b;
    pthread_mutex_unlock(&st->mem_lock);
}

/* References to the oldest listed blocks, up to max_samples of them (at
 * least one block if any); with sid > 0, only the blocks that may hold
 * that series. Release each with block_unref(). */
static struct block **mem_take(struct store *st, size_t max_samples, uint32_t sid, size_t *nout)
{
    struct block **v = NULL;
    size_t n = 0, cap = 0, samples = 0;
    pthread_mutex_lock(&st->mem_lock);
    for (struct block *b = st->mhead; b && samples < max_samples; b = b->next) {
        if (sid && !bloom_may_hold(b, sid))
            continue;
        atomic_fetch_add(&b->refs, 1);
        v = xgrow(v, &cap, n + 1, sizeof *v);
        v[n++] = b;
        samples += b->n;
    }
    pthread_mutex_unlock(&st->mem_lock);
    *nout = n;
    return v;
}

/* Unlists the n oldest blocks (compacted now). */
static void mem_drop(struct store *st, size_t n)
{
    pthread_mutex_lock(&st->mem_lock);
    for (size_t i = 0; i < n && st->mhead; i++) {
        struct block *b = st->mhead;
        st->mhead = b->next;
        if (!st->mhead)
            st->mtail = NULL;
        block_unref(b);
    }
    pthread_mutex_unlock(&st->mem_lock);
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

/* Version 1 kept the ingest log in an SQLite table (ingest_log); version 2
 * keeps it in the journal, and opening a version 1 database moves the rows
 * over (see migrate_log). */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS series("
    "  id INTEGER PRIMARY KEY, node TEXT NOT NULL, container TEXT NOT NULL,"
    "  service TEXT NOT NULL, metric TEXT NOT NULL, UNIQUE(node, container, metric));"
    /* Up to CHUNK_MAX points of one series, sorted, encoded (chunk.h). */
    "CREATE TABLE IF NOT EXISTS chunks("
    "  series_id INTEGER NOT NULL, t0 REAL NOT NULL, t1 REAL NOT NULL, n INTEGER NOT NULL,"
    "  data BLOB NOT NULL, PRIMARY KEY(series_id, t0)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS decisions("
    "  id INTEGER PRIMARY KEY, ts REAL NOT NULL, service TEXT NOT NULL, action TEXT NOT NULL,"
    "  current INTEGER, desired INTEGER, target INTEGER, mode TEXT, outcome TEXT,"
    "  reason TEXT, error TEXT, inputs TEXT);"
    "CREATE INDEX IF NOT EXISTS decisions_service_ts ON decisions(service, ts);"
    "CREATE INDEX IF NOT EXISTS decisions_ts ON decisions(ts);";

/* Page cache per connection, in KiB: the compactor's holds the hot tail
 * chunks; the others read far less, and each cache only grows, so together
 * they set the server's resident memory. With encoded chunks a small cache
 * does better than 16 MB did (ingest benchmark a: 3.02M samples/s with 2 MB,
 * 3.23M with 4 MB, 2.74M with 16 MB), and the soak's RSS no longer climbs
 * for ten minutes while a 16 MB cache fills at the pace the database grows. */
#define CACHE_COMPACTOR_KIB 2000
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
    /* journal_size_limit: a WAL that grew during a burst is cut back when
     * it restarts, so the disk it holds stays bounded. */
    char pragmas[320];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA wal_autocheckpoint=0;"
             "PRAGMA journal_size_limit=67108864; PRAGMA cache_size=-%d; "
             "PRAGMA foreign_keys=OFF;",
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

static int set_schema_version(sqlite3 *db)
{
    char sql[128];
    snprintf(sql, sizeof sql,
             "INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', %d)",
             STORE_SCHEMA_VERSION);
    return exec(db, sql);
}

/* Creates the schema and checks the recorded version. *version gets the
 * version found (0: a new database). */
static int check_schema(sqlite3 *db, const char *path, int *version, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot create schema: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema_version'", -1, &st, NULL);
    *version = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (*version > STORE_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "%s: database schema version %d is newer than this scalecast supports (%d); "
                 "use a newer scalecastd or another --db",
                 path, *version, STORE_SCHEMA_VERSION);
        return -1;
    }
    if (*version == 0 && set_schema_version(db) < 0) {
        snprintf(err, errlen, "%s: cannot record schema version", path);
        return -1;
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
static struct chunk_point *merge_points(const struct chunk_point *a, size_t na,
                                        const struct chunk_point *b, size_t nb, size_t *nout)
{
    struct chunk_point *out = xmalloc((na + nb) * sizeof *out);
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
        free(r->ops[i].blob);
    free(r->ops);
    for (size_t b = 0; b < r->nblocks; b++)
        block_unref(r->blocks[b]);
    free(r->blocks);
    free(r->tails);
    free(r);
}

/* Decodes the chunk in column col of row s, n points (its n column), into
 * (*buf)[at..at+n), growing *buf. Returns the points, or NULL for a damaged
 * chunk (logged): a blob that does not decode, or an n no chunk can have. */
static struct chunk_point *row_points(sqlite3_stmt *s, int col, size_t n, struct chunk_point **buf,
                                      size_t *cap, size_t at, int64_t sid, double t0)
{
    if (n <= CHUNK_MAX) {
        *buf = xgrow(*buf, cap, at + n + 1, sizeof **buf);
        if (chunk_decode(sqlite3_column_blob(s, col), (size_t)sqlite3_column_bytes(s, col), n,
                         *buf + at) == 0)
            return *buf + at;
    }
    log_error("store", "series %lld: the chunk at %.3f is damaged", (long long)sid, t0);
    return NULL;
}

static double tail_get(const struct store *st, int64_t sid)
{
    return (size_t)sid < st->ntail ? st->tail_t1[sid] : NAN;
}

static void tail_set(struct store *st, int64_t sid, double t1)
{
    if ((size_t)sid >= st->ntail) {
        size_t n = (size_t)sid + 1024;
        st->tail_t1 = xrealloc(st->tail_t1, n * sizeof *st->tail_t1);
        for (size_t i = st->ntail; i < n; i++)
            st->tail_t1[i] = NAN;
        st->ntail = n;
    }
    st->tail_t1[sid] = t1;
}

static void round_tail(struct round *r, int64_t sid, double t1)
{
    r->tails = xgrow(r->tails, &r->tcap, r->ntails + 1, sizeof *r->tails);
    r->tails[r->ntails++] = (struct tailupd){(uint32_t)sid, t1};
}

/* Emits a PUT op of one chunk, pts[0..n) encoded. */
static void emit_chunk(struct round *r, int64_t sid, double t0, const struct chunk_point *pts,
                       size_t n)
{
    uint8_t *blob = xmalloc(n * sizeof *pts);
    size_t len = chunk_encode(pts, n, blob);
    round_push(r, (struct chunk_op){OP_PUT, sid, t0, pts[n - 1].ts, n, blob, len});
}

/* Emits PUT ops covering pts[0..n) in chunks of at most CHUNK_MAX. */
static void emit_chunks(struct round *r, int64_t sid, const struct chunk_point *pts, size_t n)
{
    for (size_t off = 0; off < n; off += CHUNK_MAX) {
        size_t m = n - off < CHUNK_MAX ? n - off : CHUNK_MAX;
        emit_chunk(r, sid, pts[off].ts, pts + off, m);
    }
}

/* Plans the writes that fold one series' new points (sorted, unique) into
 * its chunks, reading the existing chunks through db. */
static int plan_series(sqlite3 *db, sqlite3_stmt *tail, sqlite3_stmt *overlap, struct round *r,
                       int64_t sid, const struct chunk_point *pts, size_t n, double known_t1)
{
    if (n >= TOPUP_MAX && pts[0].ts > known_t1) {
        /* Many new points after the newest chunk (known without a read:
         * only this thread writes chunks): chunks of their own. */
        emit_chunks(r, sid, pts, n);
        round_tail(r, sid, pts[n - 1].ts);
        return 0;
    }
    round_tail(r, sid, NAN); /* replaced below when the tail is known */
    sqlite3_bind_int64(tail, 1, sid);
    int rc = sqlite3_step(tail);
    if (rc == SQLITE_ROW && sqlite3_column_double(tail, 1) < pts[0].ts) {
        /* Common case: all new points follow the tail chunk. Top it up —
         * unless this round brings many points: then they start chunks of
         * their own, rather than the tail being read back and rewritten for
         * them. */
        double t0 = sqlite3_column_double(tail, 0);
        size_t have = (size_t)sqlite3_column_int64(tail, 2);
        size_t take = have < CHUNK_MAX && n < TOPUP_MAX ? CHUNK_MAX - have : 0;
        if (take > n)
            take = n;
        if (take > 0) {
            struct chunk_point *merged = NULL;
            size_t mcap = 0;
            if (!row_points(tail, 3, have, &merged, &mcap, 0, sid, t0)) {
                free(merged);
                sqlite3_reset(tail);
                return -1;
            }
            merged = xgrow(merged, &mcap, have + take, sizeof *merged);
            memcpy(merged + have, pts, take * sizeof *merged);
            emit_chunk(r, sid, t0, merged, have + take);
            free(merged);
        }
        sqlite3_reset(tail);
        emit_chunks(r, sid, pts + take, n - take);
        r->tails[r->ntails - 1].t1 = pts[n - 1].ts;
        return 0;
    }
    sqlite3_reset(tail);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return -1;
    if (rc == SQLITE_DONE) {
        emit_chunks(r, sid, pts, n);
        r->tails[r->ntails - 1].t1 = pts[n - 1].ts;
        return 0;
    }
    /* Late or repeated points: merge with every chunk they may touch. */
    struct chunk_point *acc = NULL;
    size_t nacc = 0;
    sqlite3_bind_int64(overlap, 1, sid);
    sqlite3_bind_double(overlap, 2, pts[0].ts);
    struct chunk_point *cp = NULL;
    size_t ccap = 0;
    while ((rc = sqlite3_step(overlap)) == SQLITE_ROW) {
        double t0 = sqlite3_column_double(overlap, 0);
        size_t m = (size_t)sqlite3_column_int64(overlap, 2);
        if (!row_points(overlap, 3, m, &cp, &ccap, 0, sid, t0)) {
            rc = SQLITE_CORRUPT;
            break;
        }
        size_t nn;
        struct chunk_point *merged = merge_points(acc, nacc, cp, m, &nn);
        free(acc);
        acc = merged;
        nacc = nn;
        round_push(r, (struct chunk_op){OP_DEL, sid, t0, 0, 0, NULL, 0});
    }
    free(cp);
    sqlite3_reset(overlap);
    if (rc != SQLITE_DONE) {
        free(acc);
        return -1;
    }
    size_t nn;
    struct chunk_point *merged = merge_points(acc, nacc, pts, n, &nn);
    free(acc);
    emit_chunks(r, sid, merged, nn);
    free(merged);
    return 0;
}

/* Sorts one series' new points by ts, stably (they arrive in journal
 * order, almost always ascending already), and keeps the last of equal
 * timestamps: a re-sent sample's newer value wins. Returns the count kept. */
static size_t sort_unique(struct chunk_point *p, size_t n)
{
    size_t k = 1;
    while (k < n && p[k - 1].ts <= p[k].ts)
        k++;
    if (k < n) {
        /* Out of order: sort by (ts, arrival) — qsort is not stable, so
         * the arrival position breaks ties. */
        struct tagged_rec *t = xmalloc(n * sizeof *t);
        for (size_t i = 0; i < n; i++)
            t[i] = (struct tagged_rec){{0, p[i].ts, p[i].value}, i};
        qsort(t, n, sizeof *t, cmp_tagged);
        for (size_t i = 0; i < n; i++)
            p[i] = (struct chunk_point){t[i].r.ts, t[i].r.value};
        free(t);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && p[m - 1].ts == p[i].ts)
            m--;
        p[m++] = p[i];
    }
    return m;
}

/* Plans the chunk writes that fold the oldest journal blocks (up to
 * ROUND_MAX_SAMPLES samples) into SQLite, reading the existing chunks on the
 * compactor's connection inside one read transaction. Returns NULL when
 * there is nothing to do (*empty) or on a read error. */
static struct round *plan_round(struct store *st, bool *empty /* out */)
{
    sqlite3 *db = st->cdb;
    size_t nb = 0;
    struct block **blocks = mem_take(st, ROUND_MAX_SAMPLES, 0, &nb);
    *empty = nb == 0;
    if (nb == 0)
        return NULL;
    /* Records from now on go to a new segment, so the ones folded in here
     * end up in finished segments that can be deleted once compacted. */
    pthread_mutex_lock(&st->lock);
    st->rotate_wanted = true;
    pthread_mutex_unlock(&st->lock);

    struct round *r = xcalloc(1, sizeof *r);
    r->blocks = blocks;
    r->nblocks = nb;
    size_t nrecs = 0;
    for (size_t b = 0; b < nb; b++)
        nrecs += blocks[b]->n;
    r->nsamples = nrecs;
    /* Group the samples by series with a counting sort (linear, and
     * stable: within a series they stay in journal order, so a later
     * sample with the same ts wins below). */
    uint32_t maxsid = 0;
    for (size_t b = 0; b < nb; b++)
        for (size_t i = 0; i < blocks[b]->n; i++)
            if (blocks[b]->recs[i].sid > maxsid)
                maxsid = blocks[b]->recs[i].sid;
    size_t *start = xcalloc((size_t)maxsid + 2, sizeof *start);
    for (size_t b = 0; b < nb; b++)
        for (size_t i = 0; i < blocks[b]->n; i++)
            start[blocks[b]->recs[i].sid + 1]++;
    for (size_t s = 1; s <= (size_t)maxsid + 1; s++)
        start[s] += start[s - 1];
    struct chunk_point *grouped = xmalloc((nrecs ? nrecs : 1) * sizeof *grouped);
    size_t *fill = xmalloc(((size_t)maxsid + 1) * sizeof *fill);
    memcpy(fill, start, ((size_t)maxsid + 1) * sizeof *fill);
    for (size_t b = 0; b < nb; b++)
        for (size_t i = 0; i < blocks[b]->n; i++) {
            const struct rec *rc = &blocks[b]->recs[i];
            grouped[fill[rc->sid]++] = (struct chunk_point){rc->ts, rc->value};
        }
    free(fill);

    sqlite3_stmt *tail = NULL, *overlap = NULL;
    if (exec(db, "BEGIN") < 0)
        goto fail;
    sqlite3_prepare_v2(db,
                       "SELECT t0, t1, n, data FROM chunks WHERE series_id=? "
                       "ORDER BY t0 DESC LIMIT 1",
                       -1, &tail, NULL);
    sqlite3_prepare_v2(db,
                       "SELECT t0, t1, n, data FROM chunks WHERE series_id=? AND t1 >= ? "
                       "ORDER BY t0",
                       -1, &overlap, NULL);
    bool ok = tail && overlap;
    for (uint32_t sid = 1; ok && sid <= maxsid; sid++) {
        struct chunk_point *pts = grouped + start[sid];
        size_t np = sort_unique(pts, start[sid + 1] - start[sid]);
        if (np && plan_series(db, tail, overlap, r, sid, pts, np, tail_get(st, sid)) < 0) {
            log_error("store", "compaction: cannot read chunks of series %u: %s", sid,
                      sqlite3_errmsg(db));
            ok = false;
        }
    }
    sqlite3_finalize(tail);
    sqlite3_finalize(overlap);
    exec(db, "COMMIT");
    if (!ok)
        goto fail;
    free(grouped);
    free(start);
    return r;
fail:
    free(grouped);
    free(start);
    round_free(r);
    return NULL;
}

/* ---- Applying rounds (compactor thread) ----------------------------------- */

struct cstmts {
    sqlite3_stmt *series, *put, *del;
};

static int prepare_compactor(sqlite3 *db, struct cstmts *w)
{
    int rc = 0;
    rc |= sqlite3_prepare_v3(db,
                             "INSERT INTO series(id, node, container, service, metric) "
                             "VALUES(?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                             "service = excluded.service",
                             -1, SQLITE_PREPARE_PERSISTENT, &w->series, NULL);
    rc |= sqlite3_prepare_v3(db,
                             "INSERT OR REPLACE INTO chunks(series_id, t0, t1, n, data) "
                             "VALUES(?,?,?,?,?)",
                             -1, SQLITE_PREPARE_PERSISTENT, &w->put, NULL);
    rc |= sqlite3_prepare_v3(db, "DELETE FROM chunks WHERE series_id=? AND t0=?", -1,
                             SQLITE_PREPARE_PERSISTENT, &w->del, NULL);
    return rc == SQLITE_OK ? 0 : -1;
}

static void finalize_compactor(struct cstmts *w)
{
    sqlite3_finalize(w->series);
    sqlite3_finalize(w->put);
    sqlite3_finalize(w->del);
}

static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Writes the series rows defined by a round's blocks, oldest first (a later
 * definition updates the service label). */
static int write_series(struct cstmts *w, const struct round *r)
{
    int rc = SQLITE_OK;
    for (size_t b = 0; b < r->nblocks && rc == SQLITE_OK; b++) {
        for (size_t i = 0; i < r->blocks[b]->ncreated && rc == SQLITE_OK; i++) {
            const struct newseries *ns = &r->blocks[b]->created[i];
            sqlite3_bind_int64(w->series, 1, ns->id);
            sqlite3_bind_text(w->series, 2, ns->node, -1, SQLITE_STATIC);
            sqlite3_bind_text(w->series, 3, ns->container, -1, SQLITE_STATIC);
            sqlite3_bind_text(w->series, 4, ns->service, -1, SQLITE_STATIC);
            sqlite3_bind_text(w->series, 5, ns->metric, -1, SQLITE_STATIC);
            rc = step_done(w->series);
        }
    }
    return rc;
}

/* Applies the next slice of a round in one transaction, so a decision
 * written meanwhile waits at most one slice. Returns 1 when the round is
 * complete, 0 when more remains, -1 on failure (retried later). */
static int apply_slice(struct store *st, struct cstmts *w, struct round *r)
{
    sqlite3 *db = st->cdb;
    bool first = r->next == 0;
    /* Slices need no fsync of their own: until the journal segments are
     * released, the journal still holds every sample, and the last slice
     * (synchronous=FULL) syncs the whole WAL, earlier slices included. A
     * slice covers whole series (see below), so one lost leaves those series
     * as they were, and compacting the journal again redoes it. */
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK && first)
        rc = write_series(w, r);
    /* Stop after SLICE_BUDGET, but never inside one series' ops — a late
     * sample rewrites a series by deleting chunks and writing merged ones,
     * and only both together keep the points that were in the deleted
     * chunks. */
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
            sqlite3_bind_blob(w->put, 5, op->blob, (int)op->len, SQLITE_STATIC);
            rc = step_done(w->put);
        }
        end++;
        bool boundary = end == r->nops || r->ops[end].sid != r->ops[end - 1].sid;
        if (boundary && (end - r->next >= OPS_PER_TXN || now_mono() - t0 >= SLICE_BUDGET))
            break;
    }
    bool last = end == r->nops;
    if (st->sync_full && last)
        sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (st->sync_full && last)
        sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        log_warn("store", "compaction write failed (will retry): %s", sqlite3_errstr(rc));
        return -1;
    }
    /* Ops of an applied slice are written; free their points early. */
    for (size_t i = r->next; i < end; i++) {
        free(r->ops[i].blob);
        r->ops[i].blob = NULL;
    }
    r->next = end;
    return last ? 1 : 0;
}

/* ---- The writer thread ---------------------------------------------------- */

static void free_job(struct job *j)
{
    free_created(j->created, j->ncreated);
    free(j->recs);
    free(j);
}

/* Journal record payload: u32 count of series defined, each as u32 id and
 * four u16-length-prefixed strings (node, container, service, metric); then
 * u32 count of samples and the packed samples (struct rec). */
struct wbuf {
    uint8_t *p;
    size_t n, cap;
};

static void wbuf_put(struct wbuf *b, const void *p, size_t n)
{
    b->p = xgrow(b->p, &b->cap, b->n + n, 1);
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void wbuf_str(struct wbuf *b, const char *s)
{
    size_t n = strlen(s);
    uint16_t len = (uint16_t)(n > UINT16_MAX ? UINT16_MAX : n);
    wbuf_put(b, &len, sizeof len);
    wbuf_put(b, s, len);
}

/* Gathers the jobs' samples and series definitions into one block (moving
 * the definitions out of the jobs). */
static struct block *gather(struct job *jobs, size_t total)
{
    struct block *b = xcalloc(1, sizeof *b);
    b->recs = xmalloc((total ? total : 1) * sizeof *b->recs);
    size_t cap = 0;
    for (struct job *j = jobs; j; j = j->next) {
        memcpy(b->recs + b->n, j->recs, j->n * sizeof *b->recs);
        b->n += j->n;
        if (j->ncreated) {
            b->created = xgrow(b->created, &cap, b->ncreated + j->ncreated, sizeof *b->created);
            memcpy(b->created + b->ncreated, j->created, j->ncreated * sizeof *b->created);
            b->ncreated += j->ncreated;
            free(j->created);
            j->created = NULL;
            j->ncreated = 0;
        }
    }
    atomic_init(&b->refs, 1);
    return b;
}

/* Appends a block to the journal (durably). Returns 0 or -errno. */
static int journal_block(struct journal *jr, struct block *b)
{
    struct wbuf head = {0};
    uint32_t n32 = (uint32_t)b->ncreated;
    wbuf_put(&head, &n32, sizeof n32);
    for (size_t i = 0; i < b->ncreated; i++) {
        uint32_t id = (uint32_t)b->created[i].id;
        wbuf_put(&head, &id, sizeof id);
        wbuf_str(&head, b->created[i].node);
        wbuf_str(&head, b->created[i].container);
        wbuf_str(&head, b->created[i].service);
        wbuf_str(&head, b->created[i].metric);
    }
    n32 = (uint32_t)b->n;
    wbuf_put(&head, &n32, sizeof n32);
    struct iovec iov[2] = {{head.p, head.n}, {b->recs, b->n * sizeof *b->recs}};
    int rc = journal_append(jr, iov, 2, &b->seq);
    free(head.p);
    return rc;
}

/* Publishes a committed block: its series are durable, its samples the
 * newest known. */
static void publish(struct store *st, const struct block *b)
{
    double received = now_real();
    pthread_mutex_lock(&st->ix_lock);
    for (size_t i = 0; i < b->ncreated; i++) {
        struct series_ent *e = index_get(&st->ix, b->created[i].id);
        if (e && strcmp(e->service, b->created[i].service) == 0)
            e->persisted = true;
    }
    for (size_t i = 0; i < b->n; i++) {
        struct series_ent *e = index_get(&st->ix, b->recs[i].sid);
        if (!e)
            continue;
        e->last_received = received;
        if (b->recs[i].ts >= e->last_ts) {
            e->last_ts = b->recs[i].ts;
            e->last_value = b->recs[i].value;
        }
    }
    pthread_mutex_unlock(&st->ix_lock);
}

/* Reports one outcome to every job and frees them; wakes store_sync()
 * waiters, and the compactor when it has work. */
static void report_jobs(struct store *st, struct job *jobs, int status, const char *err)
{
    size_t njobs = 0;
    while (jobs) {
        struct job *next = jobs->next;
        jobs->done(jobs->arg, status, err);
        free_job(jobs);
        jobs = next;
        njobs++;
    }
    pthread_mutex_lock(&st->lock);
    st->inflight -= njobs;
    pthread_cond_broadcast(&st->idle);
    if (st->sync_waiters > 0 || st->pending_samples >= COMPACT_MIN_SAMPLES)
        pthread_cond_broadcast(&st->cwake);
    pthread_mutex_unlock(&st->lock);
}

/* Commits the queued jobs as one journal record and reports each one's
 * outcome. */
static void commit_jobs(struct store *st, struct job *jobs)
{
    size_t total = 0, njobs = 0;
    for (struct job *j = jobs; j; j = j->next) {
        total += j->n;
        njobs++;
    }
    pthread_mutex_lock(&st->lock);
    bool rotate = st->rotate_wanted;
    st->rotate_wanted = false;
    pthread_mutex_unlock(&st->lock);
    if (rotate) {
        int r = journal_rotate(st->jr);
        if (r < 0)
            log_warn("store", "journal: cannot start a new segment (the current one goes on): %s",
                     strerror(-r));
    }
    struct block *b = gather(jobs, total);
    bool any = total || b->ncreated;
    double t0 = now_mono();
    int rc = any ? journal_block(st->jr, b) : 0;
    double dt = now_mono() - t0;
    char err[256] = "";
    if (rc < 0) {
        snprintf(err, sizeof err, "journal write failed: %s%s", strerror(-rc),
                 rc == -ENOSPC ? " (disk full)" : "");
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
        block_unref(b);
    } else if (any) {
        publish(st, b);
        mem_append(st, b);
    } else {
        block_unref(b);
    }
    pthread_mutex_lock(&st->lock);
    if (rc == 0) {
        st->stats.samples_committed += total;
        st->stats.commits++;
        st->stats.commit_seconds_sum += dt;
        if (dt > st->stats.commit_seconds_max)
            st->stats.commit_seconds_max = dt;
        if (total) {
            st->pending_rows++;
            st->pending_samples += total;
        }
        st->last_commit_failed = false;
    } else {
        st->stats.commit_failures++;
        st->last_commit_failed = true;
    }
    pthread_mutex_unlock(&st->lock);
    report_jobs(st, jobs, rc, rc ? err : NULL);
}

/* Answers the jobs with -EBUSY: the compactor is too far behind. */
static void refuse_jobs(struct store *st, struct job *jobs, uint64_t waiting)
{
    char err[160];
    snprintf(err, sizeof err, "compaction is behind (%llu samples wait in memory, the limit is %d)",
             (unsigned long long)waiting, MEM_MAX_SAMPLES);
    log_warn("store", "refusing batches: %s", err);
    report_jobs(st, jobs, -EBUSY, err);
}

static void *writer_main(void *arg)
{
    struct store *st = arg;
    pthread_mutex_lock(&st->lock);
    for (;;) {
        while (!st->stopping && !st->head)
            pthread_cond_wait(&st->wake, &st->lock);
        bool full = false;
        if (st->head && !st->stopping && st->pending_samples >= MEM_MAX_SAMPLES) {
            /* Memory is bounded: past MEM_MAX_SAMPLES journaled but not yet
             * compacted, acknowledgements wait for the compactor; if it
             * stays behind (its disk fails), the batches are refused. */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += MEM_WAIT_SECONDS;
            while (!st->stopping && st->pending_samples >= MEM_MAX_SAMPLES &&
                   pthread_cond_timedwait(&st->room, &st->lock, &until) == 0)
                ;
            full = !st->stopping && st->pending_samples >= MEM_MAX_SAMPLES;
        }
        if (st->head) {
            struct job *jobs = st->head;
            st->head = st->tail = NULL;
            uint64_t waiting = st->pending_samples;
            pthread_mutex_unlock(&st->lock);
            if (full)
                refuse_jobs(st, jobs, waiting);
            else
                commit_jobs(st, jobs);
            pthread_mutex_lock(&st->lock);
            continue;
        }
        if (st->stopping)
            break;
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}
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
            round_push(r, (struct chunk_op){OP_DEL, (int64_t)id, sqlite3_column_double(q, 0), 0, 0,
                                            NULL, 0});
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

/* Applies a round slice by slice; for a compaction round, then unlists its
 * blocks and deletes the journal segments it made redundant. Returns true
 * if it completed. */
static bool run_round(struct store *st, struct cstmts *w, struct round *r)
{
    int done = 0;
    while (done == 0) {
        pthread_mutex_lock(&st->lock);
        bool stopping = st->stopping;
        pthread_mutex_unlock(&st->lock);
        /* Stopping: leave the rest; the journal is durable and the next
         * start compacts it again (compaction is idempotent). */
        if (stopping)
            return false;
        done = apply_slice(st, w, r);
    }
    /* After a failure some slices may be in: forget what this round's
     * series' tails were, so the next plan reads them. */
    for (size_t i = 0; i < r->ntails; i++)
        tail_set(st, r->tails[i].sid, done < 0 ? NAN : r->tails[i].t1);
    if (done < 0)
        return false;
    if (r->nblocks) {
        uint64_t upto = r->blocks[r->nblocks - 1]->seq;
        mem_drop(st, r->nblocks);
        journal_release(st->jr, upto);
        pthread_mutex_lock(&st->lock);
        st->pending_rows -= r->nblocks <= st->pending_rows ? r->nblocks : st->pending_rows;
        st->pending_samples -=
            r->nsamples <= st->pending_samples ? r->nsamples : st->pending_samples;
        pthread_cond_broadcast(&st->room);
        pthread_mutex_unlock(&st->lock);
    }
    return true;
}

static void *compactor_main(void *arg)
{
    struct store *st = arg;
    /* Background work: let the threads that acknowledge ingests (the HTTP
     * loop and the writer) have the CPU first. Linux applies nice values
     * per thread. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    struct cstmts w;
    if (prepare_compactor(st->cdb, &w) < 0) {
        log_error("store", "cannot prepare statements: %s", sqlite3_errmsg(st->cdb));
        abort();
    }
    double last_round = now_mono(), last_retention = 0, last_checkpoint = 0, last_trim = 0;
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
        bool complete = false;
        if (due && empty) {
            pthread_mutex_lock(&st->lock);
            st->pending_rows = 0;
            st->pending_samples = 0;
            pthread_mutex_unlock(&st->lock);
        } else if (due && !r) {
            /* A read error: back off rather than spin. */
            struct timespec pause = {1, 0};
            nanosleep(&pause, NULL);
        }
        if (r) {
            complete = run_round(st, &w, r);
            if (!complete) {
                /* A write error: the round is planned again later. */
                struct timespec pause = {0, 200 * 1000 * 1000};
                nanosleep(&pause, NULL);
            }
        }
        if (!due && complete)
            log_info("store", "retention: deleted %zu chunks older than %.0f s", r->nops,
                     st->retention);
        bool full_round = r && r->nsamples >= ROUND_MAX_SAMPLES / 2;
        round_free(r);
        /* Keep the WAL small: copy it back into the database. Only this
         * thread writes samples to SQLite, so between rounds nothing is
         * appended and the checkpoint can finish; the next write then starts
         * the WAL over. */
        if (now_mono() - last_checkpoint >= CHECKPOINT_INTERVAL) {
            sqlite3_wal_checkpoint_v2(st->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
            last_checkpoint = now_mono();
        }
        /* Rounds, exports and large batches allocate megabytes for a moment;
         * malloc keeps what was freed (it can only shrink a heap from its
         * top), so without this the resident size ratchets up with every
         * burst. malloc_trim also releases free pages inside the heaps.
         * Under sustained heavy ingest (full-size rounds) the freed memory
         * is reused at once, and malloc_trim holds the heap's lock while it
         * walks a large heap, which every thread's malloc then waits for:
         * trim less often there. */
        double every = full_round ? TRIM_INTERVAL_BUSY : TRIM_INTERVAL;
        if (now_mono() - last_trim >= every) {
            malloc_trim(0);
            last_trim = now_mono();
        }
        pthread_mutex_lock(&st->lock);
        if (due)
            last_round = now_mono();
        else
            last_retention = now_mono();
        pthread_cond_broadcast(&st->idle);
    }
    pthread_mutex_unlock(&st->lock);
    finalize_compactor(&w);
    return NULL;
}

/* ---- Open, submit, close -------------------------------------------------- */

/* The compactor's busy handler: another process holding the database's
 * write lock delays compaction (never acknowledgements, which only need the
 * journal). Waits up to 10 s per attempt, but gives up at once when the
 * store is closing, so that a stop is never held up by a lock. */
static int compactor_busy(void *arg, int tries)
{
    struct store *st = arg;
    pthread_mutex_lock(&st->lock);
    bool stopping = st->stopping;
    pthread_mutex_unlock(&st->lock);
    if (stopping || tries >= 1000)
        return 0;
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
    return 1;
}

/* Loads the series table into the index and each series' latest point from
 * its tail chunk. */
static int load_index(struct store *st)
{
    sqlite3 *db = st->cdb;
    sqlite3_stmt *q = NULL, *tail = NULL;
    sqlite3_prepare_v2(db, "SELECT id, node, container, service, metric FROM series ORDER BY id",
                       -1, &q, NULL);
    sqlite3_prepare_v2(db,
                       "SELECT data, t1, n, t0 FROM chunks WHERE series_id=? ORDER BY t0 DESC "
                       "LIMIT 1",
                       -1, &tail, NULL);
    struct chunk_point *p = NULL;
    size_t pcap = 0;
    int rc = q && tail ? 0 : -1;
    while (rc == 0 && sqlite3_step(q) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(q, 0);
        struct series_ent *e = index_add(&st->ix, id, (const char *)sqlite3_column_text(q, 1),
                                         (const char *)sqlite3_column_text(q, 2),
                                         (const char *)sqlite3_column_text(q, 3),
                                         (const char *)sqlite3_column_text(q, 4));
        e->persisted = true;
        sqlite3_bind_int64(tail, 1, id);
        if (sqlite3_step(tail) == SQLITE_ROW) {
            size_t m = (size_t)sqlite3_column_int64(tail, 2);
            if (row_points(tail, 0, m, &p, &pcap, 0, id, sqlite3_column_double(tail, 3)) && m > 0) {
                e->last_ts = p[m - 1].ts;
                e->last_value = p[m - 1].value;
            }
            tail_set(st, id, sqlite3_column_double(tail, 1));
        } else {
            tail_set(st, id, -INFINITY); /* no chunks yet */
        }
        sqlite3_reset(tail);
    }
    free(p);
    sqlite3_finalize(q);
    sqlite3_finalize(tail);
    return rc;
}

/* Lists a replayed or migrated block and folds it into the index. */
static void adopt_block(struct store *st, struct block *b)
{
    for (size_t i = 0; i < b->ncreated; i++) {
        const struct newseries *ns = &b->created[i];
        struct series_ent *e = index_get(&st->ix, ns->id);
        if (!e) {
            e = index_add(&st->ix, ns->id, ns->node, ns->container, ns->service, ns->metric);
        } else if (strcmp(e->service, ns->service) != 0) {
            free(e->service);
            e->service = xstrdup(ns->service);
        }
        e->persisted = true;
    }
    for (size_t i = 0; i < b->n; i++) {
        struct series_ent *e = index_get(&st->ix, b->recs[i].sid);
        if (e && b->recs[i].ts >= e->last_ts) {
            e->last_ts = b->recs[i].ts;
            e->last_value = b->recs[i].value;
        }
    }
    st->pending_rows++;
    st->pending_samples += b->n;
    mem_append(st, b);
}

static int take_str(const uint8_t **p, const uint8_t *end, char **out)
{
    uint16_t len;
    if ((size_t)(end - *p) < sizeof len)
        return -1;
    memcpy(&len, *p, sizeof len);
    *p += sizeof len;
    if ((size_t)(end - *p) < len)
        return -1;
    *out = xmalloc((size_t)len + 1);
    memcpy(*out, *p, len);
    (*out)[len] = '\0';
    *p += len;
    return 0;
}

/* Decodes a journal record (see journal_block) into a block. */
static struct block *decode_block(uint64_t seq, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    struct block *b = xcalloc(1, sizeof *b);
    atomic_init(&b->refs, 1);
    b->seq = seq;
    uint32_t n;
    if (len < sizeof n)
        goto fail;
    memcpy(&n, p, sizeof n);
    p += sizeof n;
    if (n > len / 12)
        goto fail;
    b->created = xcalloc(n ? n : 1, sizeof *b->created);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id;
        if ((size_t)(end - p) < sizeof id)
            goto fail;
        memcpy(&id, p, sizeof id);
        p += sizeof id;
        struct newseries *ns = &b->created[b->ncreated++];
        ns->id = id;
        if (id == 0 || take_str(&p, end, &ns->node) < 0 || take_str(&p, end, &ns->container) < 0 ||
            take_str(&p, end, &ns->service) < 0 || take_str(&p, end, &ns->metric) < 0)
            goto fail;
    }
    if ((size_t)(end - p) < sizeof n)
        goto fail;
    memcpy(&n, p, sizeof n);
    p += sizeof n;
    if ((size_t)(end - p) != (size_t)n * sizeof(struct rec))
        goto fail;
    b->recs = xmalloc((n ? n : 1) * sizeof *b->recs);
    memcpy(b->recs, p, (size_t)n * sizeof *b->recs);
    b->n = n;
    return b;
fail:
    block_unref(b);
    return NULL;
}

static int replay_record(void *arg, uint64_t seq, const void *data, size_t len)
{
    struct store *st = arg;
    struct block *b = decode_block(seq, data, len);
    if (!b) {
        log_error("store", "journal record %llu does not decode", (unsigned long long)seq);
        return -EBADMSG;
    }
    adopt_block(st, b);
    return 0;
}

/* A version 1 database kept uncompacted samples in the ingest_log table:
 * move them into the journal, then drop the table. A crash in between only
 * journals some samples twice, which compaction folds into one. */
static int migrate_log(struct store *st, char *err, size_t errlen)
{
    sqlite3 *db = st->cdb;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT data FROM ingest_log ORDER BY id", -1, &q, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot read the version 1 ingest log: %s", st->path,
                 sqlite3_errmsg(db));
        return -1;
    }
    int rc = 0;
    uint64_t rows = 0;
    while (rc == 0 && sqlite3_step(q) == SQLITE_ROW) {
        size_t m = (size_t)sqlite3_column_bytes(q, 0) / sizeof(struct rec);
        struct block *b = xcalloc(1, sizeof *b);
        atomic_init(&b->refs, 1);
        b->recs = xmalloc((m ? m : 1) * sizeof *b->recs);
        memcpy(b->recs, sqlite3_column_blob(q, 0), m * sizeof *b->recs);
        b->n = m;
        rc = journal_block(st->jr, b);
        if (rc < 0) {
            snprintf(err, errlen, "%s: cannot move the ingest log into the journal: %s", st->path,
                     strerror(-rc));
            block_unref(b);
            break;
        }
        adopt_block(st, b);
        rows++;
    }
    sqlite3_finalize(q);
    if (rc < 0)
        return -1;
    if (exec(db, "BEGIN") < 0 || exec(db, "DROP TABLE ingest_log") < 0 ||
        set_schema_version(db) < 0 || exec(db, "COMMIT") < 0) {
        exec(db, "ROLLBACK");
        snprintf(err, errlen, "%s: cannot upgrade the schema to version %d", st->path,
                 STORE_SCHEMA_VERSION);
        return -1;
    }
    log_info("store",
             "%s: upgraded to schema version %d (%llu ingest-log rows moved to the "
             "journal)",
             st->path, STORE_SCHEMA_VERSION, (unsigned long long)rows);
    return 0;
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
    pthread_mutex_init(&st->mem_lock, NULL);
    pthread_cond_init(&st->wake, NULL);
    pthread_cond_init(&st->cwake, NULL);
    pthread_cond_init(&st->idle, NULL);
    pthread_cond_init(&st->room, NULL);
    index_rehash(&st->ix); /* allocate the first slots */
    int version;
    if (open_conn(o->path, o->sync_full, CACHE_COMPACTOR_KIB, &st->cdb, err, errlen) < 0)
        goto fail;
    if (check_schema(st->cdb, o->path, &version, err, errlen) < 0)
        goto fail;
    /* Compaction commits need no fsync but the last of a round's. */
    if (o->sync_full)
        exec(st->cdb, "PRAGMA synchronous=NORMAL");
    sqlite3_busy_handler(st->cdb, compactor_busy, st);
    if (load_index(st) < 0) {
        snprintf(err, errlen, "%s: cannot load series: %s", o->path, sqlite3_errmsg(st->cdb));
        goto fail;
    }
    size_t n = strlen(o->path) + 8;
    char *jdir = xmalloc(n);
    snprintf(jdir, n, "%s.ingest", o->path);
    int rc = journal_open(jdir, o->sync_full, replay_record, st, &st->jr, err, errlen);
    free(jdir);
    if (rc < 0)
        goto fail;
    if (version == 1 && migrate_log(st, err, errlen) < 0)
        goto fail;
    /* Version 2 differs only in its chunks (points as they are in memory),
     * which chunk_decode still reads: recording the version is enough. */
    if (version == 2) {
        if (set_schema_version(st->cdb) < 0) {
            snprintf(err, errlen, "%s: cannot upgrade the schema to version %d", o->path,
                     STORE_SCHEMA_VERSION);
            goto fail;
        }
        log_info("store", "%s: upgraded to schema version %d (new chunks are encoded)", o->path,
                 STORE_SCHEMA_VERSION);
    }
    if (open_conn(o->path, o->sync_full, CACHE_OTHER_KIB, &st->ddb, err, errlen) < 0)
        goto fail;
    pthread_create(&st->writer, NULL, writer_main, st);
    pthread_create(&st->compactor, NULL, compactor_main, st);
    log_info("store", "opened %s: %zu series, %llu samples awaiting compaction", o->path, st->ix.n,
             (unsigned long long)st->pending_samples);
    *out = st;
    return 0;
fail:
    mem_drop(st, SIZE_MAX);
    free(st->tail_t1);
    journal_close(st->jr);
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
    pthread_cond_broadcast(&st->room);
    pthread_mutex_unlock(&st->lock);
    /* The writer drains every queued job before it exits. */
    pthread_join(st->writer, NULL);
    pthread_join(st->compactor, NULL);
    sqlite3_wal_checkpoint_v2(st->cdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sqlite3_close(st->cdb);
    sqlite3_close(st->ddb);
    journal_close(st->jr);
    mem_drop(st, SIZE_MAX);
    index_free(&st->ix);
    free(st->tail_t1);
    pthread_mutex_destroy(&st->lock);
    pthread_mutex_destroy(&st->ix_lock);
    pthread_mutex_destroy(&st->ddb_lock);
    pthread_mutex_destroy(&st->mem_lock);
    pthread_cond_destroy(&st->wake);
    pthread_cond_destroy(&st->cwake);
    pthread_cond_destroy(&st->idle);
    pthread_cond_destroy(&st->room);
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
    const char *node = NULL, *container = NULL, *inode = NULL, *icont = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct store_sample *s = &samples[i];
        if (s->node != node || s->container != container) {
            /* A new run of samples of one node/container (the parser's
             * strings: equal pointers, equal names). */
            node = s->node;
            container = s->container;
            inode = intern(&st->ix, node);
            icont = intern(&st->ix, container);
        }
        struct series_ent *e = index_find(&st->ix, inode, icont, s->metric,
                                          series_hash(inode, icont, s->metric), NULL);
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
    sqlite3_stmt *chunks, *count, *dec;
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
    rc |= sqlite3_prepare_v2(
        r->db,
        "SELECT data, n, t0 FROM chunks WHERE series_id=? AND t1 >= ? AND t0 <= ? "
        "ORDER BY t0",
        -1, &r->chunks, NULL);
    rc |= sqlite3_prepare_v2(r->db, "SELECT coalesce(sum(n), 0) FROM chunks", -1, &r->count, NULL);
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

/* Points of series sid in [from, to] still in journal blocks, sorted,
 * unique (the latest journaled value wins). */
static void mem_points(struct store *st, int64_t sid, double from, double to,
                       struct chunk_point **out, size_t *nout)
{
    size_t nb;
    struct block **blocks = mem_take(st, SIZE_MAX, (uint32_t)sid, &nb);
    struct tagged_rec *t = NULL;
    size_t n = 0, cap = 0, seq = 0;
    for (size_t b = 0; b < nb; b++) {
        const struct rec *recs = blocks[b]->recs;
        for (size_t i = 0; i < blocks[b]->n; i++, seq++) {
            if (recs[i].sid != (uint32_t)sid || recs[i].ts < from || recs[i].ts > to)
                continue;
            t = xgrow(t, &cap, n + 1, sizeof *t);
            t[n].r = recs[i];
            t[n].seq = seq;
            n++;
        }
        block_unref(blocks[b]);
    }
    free(blocks);
    if (n)
        qsort(t, n, sizeof *t, cmp_point_seq);
    struct chunk_point *p = xmalloc((n ? n : 1) * sizeof *p);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && p[k - 1].ts == t[i].r.ts)
            k--;
        p[k++] = (struct chunk_point){t[i].r.ts, t[i].r.value};
    }
    free(t);
    *out = p;
    *nout = k;
}

int store_read_points(struct store_reader *r, int64_t series_id, double from, double to,
                      size_t limit, double **ts, double **values, size_t *n)
{
    struct chunk_point *cp = NULL, *lp = NULL;
    size_t nc = 0, ccap = 0, nl = 0;
    int ret = -EIO;
    /* The journal blocks first, the chunks after: the compactor writes a
     * block's samples to chunks before it unlists the block, so whatever
     * moved in between is seen in the chunks. */
    mem_points(r->st, series_id, from, to, &lp, &nl);
    if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        free(lp);
        return -EIO;
    }
    sqlite3_bind_int64(r->chunks, 1, series_id);
    sqlite3_bind_double(r->chunks, 2, from);
    sqlite3_bind_double(r->chunks, 3, to);
    int rc;
    while ((rc = sqlite3_step(r->chunks)) == SQLITE_ROW) {
        size_t m = (size_t)sqlite3_column_int64(r->chunks, 1);
        struct chunk_point *p = row_points(r->chunks, 0, m, &cp, &ccap, nc, series_id,
                                           sqlite3_column_double(r->chunks, 2));
        if (!p) {
            rc = SQLITE_CORRUPT;
            break;
        }
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
    size_t nm;
    struct chunk_point *m = merge_points(cp, nc, lp, nl, &nm);
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
    uint64_t mem = 0;
    pthread_mutex_lock(&r->st->mem_lock);
    for (struct block *b = r->st->mhead; b; b = b->next)
        mem += b->n;
    pthread_mutex_unlock(&r->st->mem_lock);
    int rc = sqlite3_step(r->count);
    if (rc == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(r->count, 0) + mem;
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
    /* Probe with real writes of the size of a large batch, and their
     * fsyncs: one beside the journal, one in the database (shrunk again). */
    if (journal_probe(st->jr, 262144) < 0)
        return -1;
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
