/* Tests of the time-series store (server/store.c) on real SQLite files in a
 * temporary directory: group commit, reads from the log and from chunks,
 * deduplication, late samples, restarts, schema versions, retention and the
 * decisions table. */
#include "chunk.h"
#include "store.h"
#include "unit.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xalloc.h"

static char dir[64];
static char dbpath[128];
static int ndb;

/* A fresh database path in the test's temporary directory. */
static const char *new_db(void)
{
    snprintf(dbpath, sizeof dbpath, "%s/t%d.db", dir, ++ndb);
    return dbpath;
}

static void remove_db(const char *path)
{
    char p[200];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    snprintf(p, sizeof p, "rm -rf '%s.ingest'", path);
    if (system(p) != 0)
        fprintf(stderr, "note: could not remove %s.ingest\n", path);
}

static double now_real(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static struct store *open_store(const char *path, double retention)
{
    struct store_opts o = {path, false, retention};
    struct store *st = NULL;
    char err[512] = "";
    int rc = store_open(&o, &st, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "store_open(%s): %s\n", path, err);
    CHECK(rc == 0 && st != NULL);
    return rc == 0 ? st : NULL;
}

/* ---- Submitting and waiting for the acknowledgement ---------------------- */

struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls;
    int status;
};

static void on_done(void *arg, int status, const char *err)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->lock);
    w->calls++;
    if (status != 0) {
        w->status = status;
        fprintf(stderr, "commit failed: %s\n", err ? err : "?");
    }
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void waiter_init(struct waiter *w)
{
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->calls = 0;
    w->status = 0;
}

static void waiter_wait(struct waiter *w, int calls)
{
    pthread_mutex_lock(&w->lock);
    while (w->calls < calls)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

static void waiter_destroy(struct waiter *w)
{
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
}

/* Submits and waits until the batch is acknowledged; returns its status. */
static int submit_wait(struct store *st, const struct store_sample *s, size_t n)
{
    struct waiter w;
    waiter_init(&w);
    store_submit(st, s, n, on_done, &w);
    waiter_wait(&w, 1);
    int status = w.status;
    CHECK(w.calls == 1);
    waiter_destroy(&w);
    return status;
}

/* Samples of one host series: ts[i] -> values[i]. */
static int submit_series(struct store *st, const char *node, const char *metric, const double *ts,
                         const double *values, size_t n)
{
    struct store_sample *s = xmalloc((n ? n : 1) * sizeof *s);
    for (size_t i = 0; i < n; i++)
        s[i] = (struct store_sample){node, "", "", metric, ts[i], values[i]};
    int rc = submit_wait(st, s, n);
    free(s);
    return rc;
}

/* ---- Reading back --------------------------------------------------------- */

struct found {
    int64_t id;
    double last_ts, last_value;
    char service[64];
    int matches;
};

static void on_series(void *arg, const struct store_series_info *si)
{
    struct found *f = arg;
    f->id = si->id;
    f->last_ts = si->last_ts;
    f->last_value = si->last_value;
    snprintf(f->service, sizeof f->service, "%s", si->service);
    f->matches++;
}

static struct found find(struct store *st, const char *node, const char *container,
                         const char *metric)
{
    struct found f = {0};
    struct store_filter flt = {.node = node, .container = container, .metric = metric};
    store_each_series(st, &flt, on_series, &f);
    return f;
}

struct points {
    double *ts, *v;
    size_t n;
};

static struct points read_points(struct store *st, int64_t id, double from, double to)
{
    struct points p = {0};
    struct store_reader *r = NULL;
    CHECK(store_reader_open(st, &r) == 0);
    if (!r)
        return p;
    CHECK(store_read_points(r, id, from, to, 0, &p.ts, &p.v, &p.n) == 0);
    store_reader_close(r);
    return p;
}

static void free_points(struct points *p)
{
    free(p->ts);
    free(p->v);
    memset(p, 0, sizeof *p);
}

static uint64_t count_samples(struct store *st)
{
    struct store_reader *r = NULL;
    uint64_t n = UINT64_MAX;
    CHECK(store_reader_open(st, &r) == 0);
    if (r) {
        CHECK(store_count_samples(r, &n) == 0);
        store_reader_close(r);
    }
    return n;
}

static bool strictly_ascending(const struct points *p)
{
    for (size_t i = 1; i < p->n; i++) {
        if (!(p->ts[i - 1] < p->ts[i]))
            return false;
    }
    return true;
}

/* ---- Tests ---------------------------------------------------------------- */

static void test_roundtrip(void)
{
    const char *path = new_db();
    struct store *st = open_store(path, 0);
    if (!st)
        return;
    CHECK(count_samples(st) == 0);
    CHECK(store_writable(st) == 0);
    struct store_sample s[] = {
        {"node-a", "", "", "cpu", 1732170000.5, 37.5},
        {"node-a", "", "", "mem", 1732170000.5, 61.2},
        {"node-a", "web.1", "web", "cpu", 1732170001.5, 12.0},
    };
    CHECK(submit_wait(st, s, 3) == 0);

    /* Visible from the acknowledgement on, before any compaction. */
    struct found cpu = find(st, "node-a", "", "cpu");
    struct found web = find(st, "node-a", "web.1", "cpu");
    CHECK(cpu.matches == 1 && web.matches == 1 && cpu.id != web.id);
    CHECK(cpu.last_ts == 1732170000.5 && cpu.last_value == 37.5);
    CHECK_STR(web.service, "web");
    struct points p = read_points(st, cpu.id, 0, 1e11);
    CHECK(p.n == 1 && p.ts[0] == 1732170000.5 && p.v[0] == 37.5);
    free_points(&p);
    CHECK(count_samples(st) == 3);

    store_sync(st);
    struct store_stats stats;
    store_get_stats(st, &stats);
    CHECK(stats.pending_log_rows == 0);
    CHECK(stats.samples_committed == 3);
    CHECK(stats.series == 3);
    CHECK(stats.commits >= 1);
    CHECK(stats.commit_failures == 0);
    CHECK(count_samples(st) == 3);
    p = read_points(st, web.id, 0, 1e11);
    CHECK(p.n == 1 && p.ts[0] == 1732170001.5 && p.v[0] == 12.0);
    free_points(&p);
    /* The range is inclusive at both ends and excludes what is outside. */
    p = read_points(st, cpu.id, 1732170000.5, 1732170000.5);
    CHECK(p.n == 1);
    free_points(&p);
    p = read_points(st, cpu.id, 1732170000.6, 1e11);
    CHECK(p.n == 0);
    free_points(&p);
    /* An unknown series id reads as empty. */
    p = read_points(st, 999, 0, 1e11);
    CHECK(p.n == 0);
    free_points(&p);
    /* A host-only filter ("" container) does not match container series. */
    struct found host = find(st, "node-a", "", NULL);
    CHECK(host.matches == 2);
    store_close(st);
    remove_db(path);
}

static void test_resend_dedup(void)
{
    const char *path = new_db();
    struct store *st = open_store(path, 0);
    if (!st)
        return;
    enum { N = 100 };
    double ts[N], v1[N], v2[N];
    for (int i = 0; i < N; i++) {
        ts[i] = 1732170000 + i;
        v1[i] = i;
        v2[i] = 1000 + i;
    }
    CHECK(submit_series(st, "n", "cpu", ts, v1, N) == 0);
    CHECK(submit_series(st, "n", "cpu", ts, v1, N) == 0); /* an agent's retry */
    int64_t id = find(st, "n", "", "cpu").id;
    /* Reads deduplicate the log at once. */
    struct points p = read_points(st, id, 0, 1e11);
    CHECK(p.n == N);
    CHECK(strictly_ascending(&p));
    free_points(&p);
    store_sync(st);
    CHECK(count_samples(st) == N);

    /* A re-sent sample with another value replaces the stored one. */
    CHECK(submit_series(st, "n", "cpu", ts, v2, N) == 0);
    p = read_points(st, id, 0, 1e11);
    CHECK(p.n == N && p.v[0] == 1000 && p.v[N - 1] == 1000 + N - 1);
    free_points(&p);
    store_sync(st);
    CHECK(count_samples(st) == N);
    p = read_points(st, id, 0, 1e11);
    CHECK(p.n == N && p.v[0] == 1000 && p.v[N - 1] == 1000 + N - 1);
    free_points(&p);

    /* Duplicates inside one batch: one sample, the later value. */
    double dts[] = {1732180000, 1732180000, 1732180001};
    double dv[] = {1, 2, 3};
    CHECK(submit_series(st, "n", "cpu", dts, dv, 3) == 0);
    store_sync(st);
    CHECK(count_samples(st) == N + 2);
    p = read_points(st, id, 1732180000, 1732180000);
    CHECK(p.n == 1 && p.v[0] == 2);
    free_points(&p);
    CHECK(find(st, "n", "", "cpu").last_value == 3);
    store_close(st);
    remove_db(path);
}

/* Checks the chunks of a series directly in SQLite: sorted, not overlapping,
 * t0/t1/n matching their points. Returns the number of points. */
static long check_chunks(const char *path, int64_t id)
{
    sqlite3 *db = NULL;
    long total = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        CHECK(!"cannot open the database read-only");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_stmt *q = NULL;
    CHECK(sqlite3_prepare_v2(db, "SELECT t0, t1, n, data FROM chunks WHERE series_id=? ORDER BY t0",
                             -1, &q, NULL) == SQLITE_OK);
    sqlite3_bind_int64(q, 1, id);
    double prev_t1 = -INFINITY;
    total = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        double t0 = sqlite3_column_double(q, 0), t1 = sqlite3_column_double(q, 1);
        long n = (long)sqlite3_column_int64(q, 2);
        CHECK(n >= 1 && n <= 256);
        if (n < 1 || n > 256)
            break;
        int bytes = sqlite3_column_bytes(q, 3);
        struct chunk_point d[256];
        CHECK(chunk_decode(sqlite3_column_blob(q, 3), (size_t)bytes, (size_t)n, d) == 0);
        CHECK(t0 > prev_t1);
        CHECK(d[0].ts == t0 && d[n - 1].ts == t1);
        for (long i = 1; i < n; i++)
            CHECK(d[i - 1].ts < d[i].ts);
        prev_t1 = t1;
        total += n;
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return total;
}

static void test_late_samples_merge(void)
{
    const char *path = new_db();
    struct store *st = open_store(path, 0);
    if (!st)
        return;
    enum { N = 1000 };
    double ts[N], v[N];
    for (int i = 0; i < N; i++) {
        ts[i] = 1000 + i;
        v[i] = i;
    }
    CHECK(submit_series(st, "n", "cpu", ts, v, N) == 0);
    store_sync(st);
    int64_t id = find(st, "n", "", "cpu").id;
    CHECK(check_chunks(path, id) == N);

    /* Late, repeated and out-of-order samples in one batch, before, inside and
     * after the existing chunks. */
    double lts[] = {1500.5, 500, 2100, 1000, 509, 1999.5, 501, 1255.25};
    double lv[] = {-1, -2, -3, -4, -5, -6, -7, -8};
    CHECK(submit_series(st, "n", "cpu", lts, lv, 8) == 0);
    store_sync(st);
    long expect = N + 7; /* 1000 was already there */
    CHECK(check_chunks(path, id) == expect);
    CHECK(count_samples(st) == (uint64_t)expect);
    struct points p = read_points(st, id, 0, 1e11);
    CHECK(p.n == (size_t)expect);
    CHECK(strictly_ascending(&p));
    if (p.n == (size_t)expect) {
        CHECK(p.ts[0] == 500 && p.v[0] == -2);
        CHECK(p.ts[1] == 501 && p.ts[2] == 509);
        CHECK(p.ts[3] == 1000 && p.v[3] == -4);
        CHECK(p.ts[p.n - 1] == 2100 && p.v[p.n - 1] == -3);
    }
    free_points(&p);
    p = read_points(st, id, 1500.5, 1500.5);
    CHECK(p.n == 1 && p.v[0] == -1);
    free_points(&p);
    /* The latest value is the newest timestamp's, not the last received. */
    struct found f = find(st, "n", "", "cpu");
    CHECK(f.last_ts == 2100 && f.last_value == -3);

    /* A second round of late samples into merged chunks. */
    double l2[] = {1255.5, 1255.75, 499};
    double v2[] = {1, 2, 3};
    CHECK(submit_series(st, "n", "cpu", l2, v2, 3) == 0);
    store_sync(st);
    CHECK(check_chunks(path, id) == expect + 3);
    store_close(st);
    remove_db(path);
}

/* Pages through a long series with a limit, half compacted and half still in
 * the log, as the CSV export does. */
static void test_paging(void)
{
    const char *path = new_db();
    struct store *st = open_store(path, 0);
    if (!st)
        return;
    enum { N = 20000 };
    double *ts = xmalloc(N * sizeof *ts), *v = xmalloc(N * sizeof *v);
    for (int i = 0; i < N; i++) {
        ts[i] = 1732170000 + i * 0.5;
        v[i] = i;
    }
    CHECK(submit_series(st, "n", "m", ts, v, N / 2) == 0);
    store_sync(st);
    CHECK(submit_series(st, "n", "m", ts + N / 2, v + N / 2, N / 2) == 0);
    int64_t id = find(st, "n", "", "m").id;
    struct store_reader *r = NULL;
    CHECK(store_reader_open(st, &r) == 0);
    size_t got = 0;
    bool order = true;
    double from = 0;
    for (int page = 0; page < 100 && r; page++) {
        double *pts, *pv;
        size_t n;
        CHECK(store_read_points(r, id, from, 1e11, 1000, &pts, &pv, &n) == 0);
        for (size_t i = 0; i < n; i++) {
            if (got + i >= N || pts[i] != ts[got + i] || pv[i] != v[got + i])
                order = false;
        }
        got += n;
        if (n > 0)
            from = nextafter(pts[n - 1], INFINITY);
        free(pts);
        free(pv);
        if (n < 1000)
            break;
    }
    CHECK(got == N);
    CHECK(order);
    store_reader_close(r);
    free(ts);
    free(v);
    store_close(st);
    remove_db(path);
}

static void test_restart_persistence(void)
{
    const char *path = new_db();
    struct store *st = open_store(path, 0);
    if (!st)
        return;
    enum { N = 600 };
    double ts[N], v[N];
    for (int i = 0; i < N; i++) {
        ts[i] = 1732170000 + i;
        v[i] = i * 1.5;
    }
    /* The first third is compacted, the second only logged, the third
     * submitted without waiting: store_close must commit it. */
    CHECK(submit_series(st, "a", "cpu", ts, v, N / 3) == 0);
    store_sync(st);
    CHECK(submit_series(st, "a", "cpu", ts + N / 3, v + N / 3, N / 3) == 0);
    struct store_sample c[] = {{"a", "db.1", "db", "mem", 1732170000, 5},
                               {"b", "", "", "cpu", 1732170100, 7}};
    CHECK(submit_wait(st, c, 2) == 0);
    int64_t id_a = find(st, "a", "", "cpu").id, id_b = find(st, "b", "", "cpu").id;
    struct waiter w;
    waiter_init(&w);
    struct store_sample *s = xmalloc((N / 3) * sizeof *s);
    for (int i = 0; i < N / 3; i++)
        s[i] = (struct store_sample){"a", "", "", "cpu", ts[2 * N / 3 + i], v[2 * N / 3 + i]};
    store_submit(st, s, N / 3, on_done, &w);
    free(s);
    store_close(st);
    CHECK(w.calls == 1 && w.status == 0);
    waiter_destroy(&w);

    st = open_store(path, 0);
    if (!st)
        return;
    struct store_stats stats;
    store_get_stats(st, &stats);
    CHECK(stats.series == 3);
    CHECK(count_samples(st) == N + 2);
    struct found fa = find(st, "a", "", "cpu");
    CHECK(fa.id == id_a);
    CHECK(fa.last_ts == ts[N - 1] && fa.last_value == v[N - 1]);
    struct found fb = find(st, "b", "", "cpu");
    CHECK(fb.id == id_b && fb.last_value == 7);
    struct found fc = find(st, "a", "db.1", "mem");
    CHECK(fc.matches == 1);
    CHECK_STR(fc.service, "db");
    struct points p = read_points(st, id_a, 0, 1e11);
    CHECK(p.n == N);
    bool same = p.n == N;
    for (size_t i = 0; same && i < p.n; i++)
        same = p.ts[i] == ts[i] && p.v[i] == v[i];
    CHECK(same);
    free_points(&p);

    /* New series after the restart get ids of their own. */
    struct store_sample nw = {"c", "", "", "cpu", 1732170200, 9};
    CHECK(submit_wait(st, &nw, 1) == 0);
    struct found fn = find(st, "c", "", "cpu");
    CHECK(fn.matches == 1 && fn.id != id_a && fn.id != id_b && fn.id != fc.id);
    store_sync(st);
    CHECK(count_samples(st) == N + 3);
    p = read_points(st, fn.id, 0, 1e11);
    CHECK(p.n == 1 && p.v[0] == 9);
    free_points(&p);
    store_close(st);

    /* And once more, after everything was compacted. */
    st = open_store(path, 0);
    if (!st)
        return;
    CHECK(count_samples(st) == N + 3);
    fa = find(st, "a", "", "cpu");
    CHECK(fa.last_ts == ts[N - 1] && fa.last_value == v[N - 1]);
    store_close(st);
    remove_db(path);
}

static int exec_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static int query_int(const char *path, const char *sql, long *out)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q) == SQLITE_ROW ? SQLITE_OK : SQLITE_ERROR;
    if (rc == SQLITE_OK)
        *out = (long)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return rc;
}

static void test_schema_version(void)
{
    const char *path = new_db();
    struct store *st = open_store(path, 0);
    if (!st)
        return;
    store_close(st);
    long version = -1;
    CHECK(query_int(path, "SELECT value FROM meta WHERE key='schema_version'", &version) ==
          SQLITE_OK);
    CHECK(version == STORE_SCHEMA_VERSION);
    long mode = 0;
    CHECK(query_int(path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode", &mode) ==
          SQLITE_OK);
    CHECK(mode == 1);

    /* Reopening the same version works. */
    st = open_store(path, 0);
    store_close(st);

    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE meta SET value = %d WHERE key = 'schema_version'",
             STORE_SCHEMA_VERSION + 98);
    CHECK(exec_sql(path, sql) == SQLITE_OK);
    struct store_opts o = {path, false, 0};
    char err[512] = "";
    st = NULL;
    CHECK(store_open(&o, &st, err, sizeof err) < 0);
    CHECK(st == NULL);
    char want[64];
    snprintf(want, sizeof want, "schema version %d is newer", STORE_SCHEMA_VERSION + 98);
    CHECK(strstr(err, want) != NULL);
    CHECK(strstr(err, path) != NULL);
    fprintf(stderr, "  (newer schema: %s)\n", err);
    /* Nothing was changed by the refused open. */
    CHECK(query_int(path, "SELECT value FROM meta WHERE key='schema_version'", &version) ==
          SQLITE_OK);
    CHECK(version == STORE_SCHEMA_VERSION + 98);
    remove_db(path);
}

/* A version 1 database kept uncompacted samples in an ingest_log table
 * (packed u32 series, f64 ts, f64 value): opening it moves them into the
 * journal, drops the table and records version 2. */
static void test_upgrade_from_v1(void)
{
    const char *path = new_db();
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "PRAGMA journal_mode=WAL;"
                       "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
                       "INSERT INTO meta VALUES('schema_version', 1);"
                       "CREATE TABLE series(id INTEGER PRIMARY KEY, node TEXT NOT NULL, "
                       "container TEXT NOT NULL, service TEXT NOT NULL, metric TEXT NOT NULL, "
                       "UNIQUE(node, container, metric));"
                       "INSERT INTO series VALUES(1, 'old', '', '', 'cpu');"
                       "CREATE TABLE ingest_log(id INTEGER PRIMARY KEY, received REAL NOT NULL, "
                       "nsamples INTEGER NOT NULL, data BLOB NOT NULL);",
                       NULL, NULL, NULL) == SQLITE_OK);
    unsigned char blob[3 * 20];
    for (int i = 0; i < 3; i++) {
        uint32_t sid = 1;
        double ts = 1732170000 + i, v = 10 + i;
        memcpy(blob + 20 * i, &sid, 4);
        memcpy(blob + 20 * i + 4, &ts, 8);
        memcpy(blob + 20 * i + 12, &v, 8);
    }
    sqlite3_stmt *ins;
    CHECK(sqlite3_prepare_v2(db, "INSERT INTO ingest_log(received, nsamples, data) VALUES(0, 3, ?)",
                             -1, &ins, NULL) == SQLITE_OK);
    sqlite3_bind_blob(ins, 1, blob, sizeof blob, SQLITE_STATIC);
    CHECK(sqlite3_step(ins) == SQLITE_DONE);
    sqlite3_finalize(ins);
    sqlite3_close(db);

    struct store *st = open_store(path, 0);
    if (!st)
        return;
    struct found f = find(st, "old", "", "cpu");
    CHECK(f.matches == 1 && f.last_ts == 1732170002 && f.last_value == 12);
    struct points p = read_points(st, f.id, 0, 1e11);
    CHECK(p.n == 3 && p.v[0] == 10 && p.v[2] == 12);
    free_points(&p);
    store_sync(st);
    CHECK(count_samples(st) == 3);
    store_close(st);
    long version = -1, tables = -1;
    CHECK(query_int(path, "SELECT value FROM meta WHERE key='schema_version'", &version) ==
          SQLITE_OK);
    CHECK(version == STORE_SCHEMA_VERSION);
    CHECK(query_int(path, "SELECT count(*) FROM sqlite_master WHERE name='ingest_log'", &tables) ==
          SQLITE_OK);
    CHECK(tables == 0);
    st = open_store(path, 0);
    if (st) {
        CHECK(count_samples(st) == 3);
        store_close(st);
    }
    remove_db(path);
}

/* Rewrites every chunk of the database as schema version 2 wrote them:
 * the points as they are in memory. Returns the number rewritten. */
static int rewrite_chunks_raw(const char *path)
{
    sqlite3 *db = NULL;
    int done = 0;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_stmt *q = NULL, *u = NULL;
    CHECK(sqlite3_prepare_v2(db, "SELECT series_id, t0, n, data FROM chunks", -1, &q, NULL) ==
          SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db, "UPDATE chunks SET data=? WHERE series_id=? AND t0=?", -1, &u,
                             NULL) == SQLITE_OK);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    while (sqlite3_step(q) == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_int64(q, 2);
        struct chunk_point pts[256];
        if (n > 256 || chunk_decode(sqlite3_column_blob(q, 3), (size_t)sqlite3_column_bytes(q, 3),
                                    n, pts) < 0) {
            CHECK(!"a chunk does not decode");
            continue;
        }
        sqlite3_bind_blob(u, 1, pts, (int)(n * sizeof *pts), SQLITE_TRANSIENT);
        sqlite3_bind_int64(u, 2, sqlite3_column_int64(q, 0));
        sqlite3_bind_double(u, 3, sqlite3_column_double(q, 1));
        CHECK(sqlite3_step(u) == SQLITE_DONE);
        sqlite3_reset(u);
        done++;
    }
    sqlite3_finalize(q);
    sqlite3_finalize(u);
    CHECK(sqlite3_exec(db,
                       "UPDATE meta SET value = 2 WHERE key = 'schema_version'; COMMIT; "
                       "PRAGMA wal_checkpoint(TRUNCATE)",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    return done;
}

/* A version 2 database (chunks of raw points) opens as version 3: its
 * chunks read, are topped up and merged with late samples. */
static void test_upgrade_from_v2(void)
{
    const char *path = new_db();
    struct store *st = open_store(path, 0);
    if (!st)
        return;
    enum { N = 600 };
    double ts[N], v[N];
    for (int i = 0; i < N; i++) {
        ts[i] = 1732170000 + 10 * i;
        v[i] = 0.25 * i;
    }
    CHECK(submit_series(st, "n", "cpu", ts, v, N) == 0);
    store_sync(st);
    int64_t id = find(st, "n", "", "cpu").id;
    store_close(st);
    CHECK(rewrite_chunks_raw(path) >= 3);
    long raw = -1;
    CHECK(query_int(path, "SELECT count(*) FROM chunks WHERE length(data) = n * 16", &raw) ==
          SQLITE_OK);
    CHECK(raw >= 3);

    st = open_store(path, 0);
    if (!st)
        return;
    long version = -1;
    CHECK(query_int(path, "SELECT value FROM meta WHERE key='schema_version'", &version) ==
          SQLITE_OK);
    CHECK(version == STORE_SCHEMA_VERSION);
    struct found f = find(st, "n", "", "cpu");
    CHECK(f.last_ts == ts[N - 1] && f.last_value == v[N - 1]);
    struct points p = read_points(st, id, 0, 1e11);
    CHECK(p.n == N && p.ts[0] == ts[0] && p.v[N - 1] == v[N - 1]);
    free_points(&p);
    /* A few new points top up the raw tail chunk; late ones merge into
     * raw chunks in the middle. */
    double nts[] = {ts[N - 1] + 10, ts[N - 1] + 20, ts[5] + 1, ts[300] + 2};
    double nv[] = {1.5, 2.5, -1, -2};
    CHECK(submit_series(st, "n", "cpu", nts, nv, 4) == 0);
    store_sync(st);
    CHECK(check_chunks(path, id) == N + 4);
    p = read_points(st, id, 0, 1e11);
    CHECK(p.n == N + 4 && strictly_ascending(&p));
    free_points(&p);
    p = read_points(st, id, ts[300] + 2, ts[300] + 2);
    CHECK(p.n == 1 && p.v[0] == -2);
    free_points(&p);
    store_close(st);
    CHECK(query_int(path, "SELECT count(*) FROM chunks WHERE length(data) = n * 16", &raw) ==
          SQLITE_OK);
    fprintf(stderr, "  %ld chunks still raw after the late samples\n", raw);
    st = open_store(path, 0);
    if (st) {
        CHECK(count_samples(st) == N + 4);
        store_close(st);
    }
    remove_db(path);
}

/* A damaged chunk (its blob, or an n no chunk can have) is an error for a
 * read of its range, not a crash or a huge allocation; other ranges read. */
static void test_damaged_chunk(void)
{
    const char *path = new_db();
    struct store *st = open_store(path, 0);
    if (!st)
        return;
    enum { N = 600 };
    double ts[N], v[N];
    for (int i = 0; i < N; i++) {
        ts[i] = 1732170000 + i;
        v[i] = i;
    }
    CHECK(submit_series(st, "n", "cpu", ts, v, N) == 0);
    store_sync(st);
    int64_t id = find(st, "n", "", "cpu").id;
    store_close(st);
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE chunks SET n = 1000000000 WHERE series_id = %lld AND t0 = %.0f", (long long)id,
             ts[0]);
    CHECK(exec_sql(path, sql) == SQLITE_OK);
    snprintf(sql, sizeof sql,
             "UPDATE chunks SET data = x'01020304' WHERE series_id = %lld AND t0 = %.0f",
             (long long)id, ts[N - 1 - (N - 1) % 256]);
    CHECK(exec_sql(path, sql) == SQLITE_OK);
    st = open_store(path, 0);
    if (!st)
        return;
    struct store_reader *r = NULL;
    CHECK(store_reader_open(st, &r) == 0);
    if (r) {
        double *rts = NULL, *rv = NULL;
        size_t n = 0;
        CHECK(store_read_points(r, id, ts[0], ts[10], 0, &rts, &rv, &n) == -EIO);
        CHECK(store_read_points(r, id, ts[N - 1], ts[N - 1], 0, &rts, &rv, &n) == -EIO);
        /* The middle chunk is intact. */
        CHECK(store_read_points(r, id, ts[300], ts[310], 0, &rts, &rv, &n) == 0);
        CHECK(n == 11 && rv[0] == 300);
        free(rts);
        free(rv);
        store_reader_close(r);
    }
    store_close(st);
    remove_db(path);
}

static void test_open_errors(void)
{
    struct store_opts o = {"/nonexistent-dir-scalecast/x.db", false, 0};
    struct store *st = NULL;
    char err[512] = "";
    CHECK(store_open(&o, &st, err, sizeof err) < 0);
    CHECK(strstr(err, "/nonexistent-dir-scalecast/x.db") != NULL);
    fprintf(stderr, "  (missing dir: %s)\n", err);

    const char *path = new_db();
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (fp) {
        for (int i = 0; i < 200; i++)
            fputs("this is not an SQLite database, it is a text file\n", fp);
        fclose(fp);
    }
    o.path = path;
    err[0] = '\0';
    CHECK(store_open(&o, &st, err, sizeof err) < 0);
    CHECK(strstr(err, path) != NULL);
    fprintf(stderr, "  (not a database: %s)\n", err);
    remove_db(path);
}

static void test_retention(void)
{
    const char *path = new_db();
    double retention = 3600;
    struct store *st = open_store(path, retention);
    if (!st)
        return;
    double now = now_real();
    enum { OLD = 600, NEW = 300 };
    double ts[OLD], v[OLD];
    for (int i = 0; i < OLD; i++) {
        ts[i] = now - 3 * 86400 + i; /* three days old */
        v[i] = i;
    }
    CHECK(submit_series(st, "n", "old", ts, v, OLD) == 0);
    for (int i = 0; i < NEW; i++)
        ts[i] = now - 60 + i * 0.1;
    CHECK(submit_series(st, "n", "new", ts, v, NEW) == 0);
    store_sync(st);
    CHECK(count_samples(st) == OLD + NEW);
    store_close(st);

    /* A sweep runs when the store opens. */
    st = open_store(path, retention);
    if (!st)
        return;
    uint64_t n = 0;
    for (int i = 0; i < 200; i++) {
        n = count_samples(st);
        if (n <= NEW)
            break;
        sleep_ms(50);
    }
    CHECK(n == NEW);
    int64_t id_new = find(st, "n", "", "new").id;
    struct points p = read_points(st, id_new, 0, 1e11);
    CHECK(p.n == NEW);
    free_points(&p);
    p = read_points(st, find(st, "n", "", "old").id, 0, 1e11);
    CHECK(p.n == 0);
    free_points(&p);
    store_close(st);
    remove_db(path);
}

struct dec_list {
    int n;
    int64_t ids[16];
    char services[16][32];
    char errors[16][64];
    char inputs[16][64];
    double ts[16];
};

static void on_decision(void *arg, const struct store_decision *d)
{
    struct dec_list *l = arg;
    if (l->n >= 16)
        return;
    l->ids[l->n] = d->id;
    l->ts[l->n] = d->ts;
    snprintf(l->services[l->n], sizeof l->services[0], "%s", d->service);
    snprintf(l->errors[l->n], sizeof l->errors[0], "%s", d->error ? d->error : "(null)");
    snprintf(l->inputs[l->n], sizeof l->inputs[0], "%s", d->inputs ? d->inputs : "(null)");
    l->n++;
}

static void test_decisions(void)
{
    const char *path = new_db();
    struct store *st = open_store(path, 0);
    if (!st)
        return;
    struct store_decision d = {0, 1000,      "web",     "scale_up",      2,    4,
                               4, "enforce", "applied", "cpu 91% > 80%", NULL, "{\"cpu\": 91}"};
    CHECK(store_add_decision(st, &d) == 0);
    d.ts = 2000;
    d.service = "db";
    d.action = "hold";
    d.outcome = "failed";
    d.error = "engine: 500 Internal Server Error";
    d.inputs = NULL;
    CHECK(store_add_decision(st, &d) == 0);
    d.ts = 3000;
    d.service = "web";
    d.action = "scale_down";
    d.reason = "it's quiet; \"really\", 100%";
    d.error = NULL;
    CHECK(store_add_decision(st, &d) == 0);

    struct store_reader *r = NULL;
    CHECK(store_reader_open(st, &r) == 0);
    if (!r)
        goto out;
    struct dec_list l = {0};
    CHECK(store_each_decision(r, NULL, 0, 1e11, 0, on_decision, &l) == 3);
    CHECK(l.n == 3);
    if (l.n == 3) {
        /* Newest first, with increasing ids in insertion order. */
        CHECK(l.ts[0] == 3000 && l.ts[1] == 2000 && l.ts[2] == 1000);
        CHECK(l.ids[0] > l.ids[1] && l.ids[1] > l.ids[2]);
        CHECK_STR(l.errors[1], "engine: 500 Internal Server Error");
        CHECK_STR(l.errors[0], "(null)");
        CHECK_STR(l.inputs[2], "{\"cpu\": 91}");
        CHECK_STR(l.inputs[1], "(null)");
    }
    memset(&l, 0, sizeof l);
    CHECK(store_each_decision(r, "web", 0, 1e11, 0, on_decision, &l) == 2);
    CHECK(l.n == 2 && strcmp(l.services[0], "web") == 0 && strcmp(l.services[1], "web") == 0);
    memset(&l, 0, sizeof l);
    CHECK(store_each_decision(r, NULL, 1500, 2500, 0, on_decision, &l) == 1);
    CHECK(l.n == 1 && l.ts[0] == 2000);
    memset(&l, 0, sizeof l);
    CHECK(store_each_decision(r, NULL, 0, 1e11, 2, on_decision, &l) == 2);
    CHECK(l.n == 2 && l.ts[0] == 3000);
    memset(&l, 0, sizeof l);
    CHECK(store_each_decision(r, "nope", 0, 1e11, 0, on_decision, &l) == 0);
    store_reader_close(r);

    /* Decisions survive a restart. */
    store_close(st);
    st = open_store(path, 0);
    if (!st)
        return;
    CHECK(store_reader_open(st, &r) == 0);
    memset(&l, 0, sizeof l);
    if (r)
        CHECK(store_each_decision(r, NULL, 0, 1e11, 0, on_decision, &l) == 3);
    store_reader_close(r);
out:
    store_close(st);
    remove_db(path);
}

/* ---- Concurrent submitters: group commit --------------------------------- */

enum { THREADS = 4, BATCHES = 150, PER_BATCH = 40 };

struct submitter {
    struct store *st;
    int index;
    struct waiter w;
};

static void *submitter_main(void *arg)
{
    struct submitter *s = arg;
    char node[16];
    snprintf(node, sizeof node, "t%d", s->index);
    struct store_sample batch[PER_BATCH];
    for (int b = 0; b < BATCHES; b++) {
        for (int i = 0; i < PER_BATCH; i++)
            batch[i] = (struct store_sample){
                node, "", "", i % 2 ? "cpu" : "mem", 1732170000 + b * PER_BATCH + i, b};
        store_submit(s->st, batch, PER_BATCH, on_done, &s->w);
    }
    waiter_wait(&s->w, BATCHES);
    return NULL;
}

static void test_concurrent_submitters(void)
{
    const char *path = new_db();
    struct store *st = open_store(path, 0);
    if (!st)
        return;
    struct submitter subs[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        subs[i].st = st;
        subs[i].index = i;
        waiter_init(&subs[i].w);
        pthread_create(&th[i], NULL, submitter_main, &subs[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK(subs[i].w.calls == BATCHES && subs[i].w.status == 0);
        waiter_destroy(&subs[i].w);
    }
    store_sync(st);
    struct store_stats stats;
    store_get_stats(st, &stats);
    CHECK(stats.samples_committed == THREADS * BATCHES * PER_BATCH);
    CHECK(stats.commits <= THREADS * BATCHES);
    fprintf(stderr, "  (%d batches in %llu group commits)\n", THREADS * BATCHES,
            (unsigned long long)stats.commits);
    CHECK(count_samples(st) == THREADS * BATCHES * PER_BATCH);
    CHECK(stats.series == THREADS * 2);
    store_close(st);
    remove_db(path);
}

/* ---- A compaction round interrupted by shutdown --------------------------- */

enum { RSERIES = 1200, RPOINTS = 256 };

static void *sync_main(void *arg)
{
    store_sync(arg);
    return NULL;
}

/* Fills RSERIES series with one full chunk each, then logs one late sample
 * per series (each merge then rewrites a chunk as two) and closes the store
 * while that compaction round is being applied. Returns 1 if the close did
 * interrupt the round (the log still held rows at the next open), 0 if not,
 * -1 on a setup failure. *stored gets the samples there after reopening. */
static int interrupted_round(const char *path, uint64_t *stored, long *short_series)
{
    struct store *st = open_store(path, 0);
    if (!st)
        return -1;
    static char names[RSERIES][8];
    struct store_sample *s = xmalloc(100 * RPOINTS * sizeof *s);
    for (int base = 0; base < RSERIES; base += 100) {
        size_t n = 0;
        for (int k = base; k < base + 100; k++) {
            snprintf(names[k], sizeof names[k], "s%04d", k);
            for (int i = 1; i <= RPOINTS; i++)
                s[n++] = (struct store_sample){names[k], "", "", "v", i, i};
        }
        if (submit_wait(st, s, n) != 0) {
            free(s);
            store_close(st);
            return -1;
        }
    }
    store_sync(st);
    for (int k = 0; k < RSERIES; k++)
        s[k] = (struct store_sample){names[k], "", "", "v", 100.5, -1};
    int rc = submit_wait(st, s, RSERIES);
    free(s);
    if (rc != 0) {
        store_close(st);
        return -1;
    }

    /* Ask for the round, and close as soon as its first slice is committed
     * (visible as more chunk rows than series). */
    pthread_t th;
    pthread_create(&th, NULL, sync_main, st);
    sqlite3 *db = NULL;
    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    sqlite3_busy_timeout(db, 1000);
    sqlite3_stmt *q = NULL;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM chunks", -1, &q, NULL);
    for (int i = 0; i < 20000; i++) {
        long chunks = 0;
        if (sqlite3_step(q) == SQLITE_ROW)
            chunks = (long)sqlite3_column_int64(q, 0);
        sqlite3_reset(q);
        if (chunks > RSERIES)
            break;
        sleep_ms(0);
    }
    store_close(st);
    pthread_join(th, NULL);
    sqlite3_finalize(q);
    sqlite3_close(db);

    st = open_store(path, 0);
    if (!st)
        return -1;
    struct store_stats stats;
    store_get_stats(st, &stats);
    int interrupted = stats.pending_log_rows > 0;
    store_sync(st);
    *stored = count_samples(st);
    *short_series = 0;
    struct store_reader *r = NULL;
    CHECK(store_reader_open(st, &r) == 0);
    for (int k = 0; k < RSERIES && r; k++) {
        double *ts, *v;
        size_t n = 0;
        if (store_read_points(r, find(st, names[k], "", "v").id, 0, 1e11, 0, &ts, &v, &n) < 0)
            return -1;
        if (n != RPOINTS + 1)
            (*short_series)++;
        free(ts);
        free(v);
    }
    store_reader_close(r);
    store_close(st);
    return interrupted;
}

/* Closing the store (SIGTERM) in the middle of a compaction round must lose
 * nothing, whichever slice the round stopped after. The slice boundary the
 * close hits varies, so up to three interrupted rounds are tried. */
static void test_shutdown_during_compaction(void)
{
    int interrupted = 0;
    for (int attempt = 0; attempt < 8 && interrupted < 3; attempt++) {
        const char *path = new_db();
        uint64_t stored = 0;
        long short_series = 0;
        int rc = interrupted_round(path, &stored, &short_series);
        remove_db(path);
        CHECK(rc >= 0);
        if (rc < 0)
            return;
        interrupted += rc;
        fprintf(stderr,
                "  (attempt %d: round %s; %llu of %d samples after restart, %ld series short)\n",
                attempt, rc ? "interrupted" : "completed before the close",
                (unsigned long long)stored, RSERIES * (RPOINTS + 1), short_series);
        CHECK(stored == (uint64_t)RSERIES * (RPOINTS + 1));
        CHECK(short_series == 0);
        if (short_series)
            return;
    }
    if (!interrupted)
        fprintf(stderr, "  note: no attempt closed the store in the middle of a round\n");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/sc_store_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_roundtrip);
    RUN(test_resend_dedup);
    RUN(test_late_samples_merge);
    RUN(test_paging);
    RUN(test_restart_persistence);
    RUN(test_schema_version);
    RUN(test_upgrade_from_v1);
    RUN(test_upgrade_from_v2);
    RUN(test_damaged_chunk);
    RUN(test_open_errors);
    RUN(test_retention);
    RUN(test_decisions);
    RUN(test_concurrent_submitters);
    RUN(test_shutdown_during_compaction);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "note: could not remove %s\n", dir);
    return UNIT_DONE();
}
