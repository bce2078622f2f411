/* The ingest journal: segment files, record framing, replay. */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"
#include "text.h"
#include "xalloc.h"

#define MAGIC 0x314a4353u /* "SCJ1" */
#define HEADER_LEN 24
#define MAX_IOV 15
#define PREALLOC (1u << 20) /* bytes of zeros written ahead of the records */

struct segment {
    uint64_t first; /* sequence number in its name */
    uint64_t last;  /* of its last record; 0 while it has none */
    uint64_t bytes;
    char *path;
};

struct journal {
    char *dir;
    int lockfd;
    int fd;             /* the newest segment: the one appended to */
    uint64_t off;       /* its valid length */
    uint64_t alloc_end; /* zero-filled and synced up to here (see preallocate) */
    bool dirty_tail;    /* a failed append could not be cut back yet */
    bool sync;          /* fdatasync every append */
    uint64_t next_seq;
    uint64_t compacted;   /* records up to this one are in the database */
    pthread_mutex_t lock; /* guards segs (release runs on another thread) */
    struct segment *segs; /* oldest first; the last one is the active one */
    size_t nsegs, cap;
};

/* ---- Framing ------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t crc(uint32_t c, const void *p, size_t n)
{
    return (uint32_t)crc32_z(c, p, n);
}

/* Fills a record header. */
static void make_header(uint8_t h[HEADER_LEN], uint32_t len, uint64_t seq, uint32_t payload_crc)
{
    put32(h, MAGIC);
    put32(h + 4, len);
    put64(h + 8, seq);
    put32(h + 16, payload_crc);
    put32(h + 20, crc(0, h, 20));
}

/* ---- Files ---------------------------------------------------------------- */

/* Zeros to write: preallocation and the health probe. */
static const char zeros[65536];

static char *segment_path(const char *dir, uint64_t first)
{
    char name[32];
    snprintf(name, sizeof name, "%020" PRIu64 ".seg", first);
    return path_join(dir, name);
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static void push_segment(struct journal *j, uint64_t first, uint64_t last, uint64_t bytes,
                         char *path)
{
    pthread_mutex_lock(&j->lock);
    j->segs = xgrow(j->segs, &j->cap, j->nsegs + 1, sizeof *j->segs);
    j->segs[j->nsegs++] = (struct segment){first, last, bytes, path};
    pthread_mutex_unlock(&j->lock);
}

/* Creates the segment whose first record will be `first`, durably (the
 * directory entry is synced before any record in it is acknowledged). */
static int create_segment(struct journal *j, uint64_t first, int *fd_out)
{
    char *path = segment_path(j->dir, first);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -errno : sync_dir(j->dir);
    if (rc < 0) {
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        free(path);
        return rc;
    }
    push_segment(j, first, 0, 0, path);
    *fd_out = fd;
    return 0;
}

static int is_segment_name(const char *name)
{
    size_t n = strlen(name);
    if (n != 24 || strcmp(name + 20, ".seg") != 0)
        return 0;
    for (size_t i = 0; i < 20; i++)
        if (name[i] < '0' || name[i] > '9')
            return 0;
    return 1;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Segment file names in the directory, oldest first. */
static int list_segments(const char *dir, char ***names /* out */, size_t *n /* out */)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    char **v = NULL;
    size_t nv = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_segment_name(e->d_name))
            continue;
        v = xgrow(v, &cap, nv + 1, sizeof *v);
        v[nv++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (nv)
        qsort(v, nv, sizeof *v, cmp_names);
    *names = v;
    *n = nv;
    return 0;
}

/* ---- Replay --------------------------------------------------------------- */

/* Reads exactly n bytes at off: 1 done, 0 end of file or short, -errno. */
static int read_at(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return 0;
        got += (size_t)r;
    }
    return 1;
}

struct scan {
    uint64_t valid; /* bytes of intact records from the start */
    uint64_t first; /* first and last sequence numbers replayed (0: none) */
    uint64_t last;
    bool damaged;   /* stopped at something that is not an intact record */
    bool zero_tail; /* stopped at zeros: preallocated space, not damage */
    const char *why;
};

/* Replays one segment's intact records after skip_upto (compacted),
 * expecting sequence numbers from *expect on. Stops at the first record that is not intact. Returns
 * 0, or the callback's / a read error's negative value. */
static int scan_segment(int fd, uint64_t *expect, uint64_t skip_upto, journal_replay_fn fn,
                        void *arg, struct scan *sc)
{
    memset(sc, 0, sizeof *sc);
    uint8_t h[HEADER_LEN];
    void *buf = NULL;
    size_t bufcap = 0;
    int rc = 0;
    for (;;) {
        int r = read_at(fd, h, HEADER_LEN, sc->valid);
        if (r < 0) {
            rc = r;
            break;
        }
        if (r == 0) {
            struct stat sb;
            if (fstat(fd, &sb) == 0 && (uint64_t)sb.st_size > sc->valid) {
                sc->damaged = true;
                sc->why = "a partial record header";
            }
            break;
        }
        static const uint8_t zero[HEADER_LEN];
        if (memcmp(h, zero, HEADER_LEN) == 0) {
            sc->zero_tail = true; /* a record never starts with zeros */
            break;
        }
        uint32_t len = get32(h + 4);
        uint64_t seq = get64(h + 8);
        if (get32(h) != MAGIC || get32(h + 20) != crc(0, h, 20) || len > JOURNAL_MAX_RECORD) {
            sc->damaged = true;
            sc->why = "a record header that does not check out";
            break;
        }
        if (seq != *expect) {
            sc->damaged = true;
            sc->why = "a record out of sequence";
            break;
        }
        if (len > bufcap) {
            free(buf);
            bufcap = len;
            buf = xmalloc(bufcap);
        }
        r = read_at(fd, buf, len, sc->valid + HEADER_LEN);
        if (r < 0) {
            rc = r;
            break;
        }
        if (r == 0 || crc(0, buf, len) != get32(h + 16)) {
            sc->damaged = true;
            sc->why = r == 0 ? "a partial record" : "a record whose checksum does not match";
            break;
        }
        rc = seq > skip_upto ? fn(arg, seq, buf, len) : 0;
        if (rc < 0)
            break;
        if (!sc->first)
            sc->first = seq;
        sc->last = seq;
        sc->valid += HEADER_LEN + (uint64_t)len;
        (*expect)++;
    }
    free(buf);
    return rc;
}

static int replay(struct journal *j, journal_replay_fn fn, void *arg, char *err, size_t errlen)
{
    char **names = NULL;
    size_t n = 0;
    int rc = list_segments(j->dir, &names, &n);
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot list the journal: %s", j->dir, strerror(-rc));
        return rc;
    }
    uint64_t expect = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t named = strtoull(names[i], NULL, 10);
        char *path = path_join(j->dir, names[i]);
        if (expect != 0 && named != expect)
            log_warn("journal",
                     "%s: starts at record %" PRIu64 ", expected %" PRIu64
                     " (records are missing between segments)",
                     path, named, expect);
        expect = named;
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
            free(path);
            break;
        }
        struct scan sc;
        rc = scan_segment(fd, &expect, j->compacted, fn, arg, &sc);
        if (rc < 0) {
            snprintf(err, errlen, "%s: cannot replay: %s", path, strerror(-rc));
            close(fd);
            free(path);
            break;
        }
        bool newest = i + 1 == n;
        struct stat sb;
        uint64_t size = fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : sc.valid;
        if (newest && (sc.zero_tail || sc.damaged)) {
            /* Cut the newest segment at its last intact record: what
             * follows is preallocated zeros (appends preallocate again) or
             * a commit interrupted by a crash (never acknowledged). */
            if (sc.damaged)
                log_warn("journal",
                         "%s: cut %" PRIu64 " bytes after the last intact record (%s; "
                         "an unfinished write that was never acknowledged)",
                         path, size - sc.valid, sc.why);
            if (ftruncate(fd, (off_t)sc.valid) < 0 || fdatasync(fd) < 0) {
                rc = -errno;
                snprintf(err, errlen, "%s: cannot cut the end off at byte %" PRIu64 ": %s", path,
                         sc.valid, strerror(errno));
                close(fd);
                free(path);
                break;
            }
            size = sc.valid;
        } else if (sc.zero_tail) {
            size = sc.valid;
        } else if (sc.damaged) {
            size_t dn = strlen(path) + 16;
            char *dpath = xmalloc(dn);
            snprintf(dpath, dn, "%s.damaged", path);
            log_error("journal",
                      "%s: %s at byte %" PRIu64 "; the %" PRIu64
                      " bytes from there on are not replayed; the file is kept as %s",
                      path, sc.why, sc.valid, size - sc.valid, dpath);
            rename(path, dpath);
            free(dpath);
            close(fd);
            free(path);
            continue;
        }
        if (!newest) {
            close(fd);
            if (sc.last <= j->compacted) {
                unlink(path); /* finished, and empty or compacted */
                free(path);
                continue;
            }
            push_segment(j, named, sc.last, size, path);
            continue;
        }
        push_segment(j, named, sc.last, size, path);
        j->fd = fd;
        j->off = size;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc < 0)
        return rc;
    /* Sequence numbers never go back, even when every segment was
     * released: records at or below the compaction mark are skipped. */
    j->next_seq = expect > j->compacted ? expect : j->compacted + 1;
    if (j->fd < 0) {
        rc = create_segment(j, j->next_seq, &j->fd);
        if (rc < 0)
            snprintf(err, errlen, "%s: cannot create a journal segment: %s", j->dir, strerror(-rc));
    }
    return rc;
}

/* ---- The compaction mark --------------------------------------------------- */

/* The file "compacted" holds the sequence number of the last record whose
 * samples are in the database, so that a restart does not replay them. It
 * is replaced atomically (rename) and not synced: losing an update only
 * replays records that compaction then folds in again. */
static int read_mark(struct journal *j, char *err, size_t errlen)
{
    char *path = path_join(j->dir, "compacted");
    FILE *f = fopen(path, "re");
    int rc = 0;
    if (f) {
        unsigned long long v;
        if (fscanf(f, "%llu", &v) == 1) {
            j->compacted = v;
        } else {
            snprintf(err, errlen, "%s: not a record number", path);
            rc = -1;
        }
        fclose(f);
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        rc = -1;
    }
    free(path);
    return rc;
}

static void write_mark(struct journal *j, uint64_t upto)
{
    char *tmp = path_join(j->dir, "compacted.tmp"), *path = path_join(j->dir, "compacted");
    FILE *f = fopen(tmp, "we");
    bool ok = f && fprintf(f, "%" PRIu64 "\n", upto) > 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, path) < 0) {
        log_warn("journal", "%s: cannot record the compaction mark: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    free(path);
}

/* ---- API ------------------------------------------------------------------ */

int journal_open(const char *dir, bool sync, journal_replay_fn fn, void *arg, struct journal **out,
                 char *err, size_t errlen)
{
    struct journal *j = xcalloc(1, sizeof *j);
    j->sync = sync;
    j->dir = xstrdup(dir);
    j->fd = -1;
    j->lockfd = -1;
    pthread_mutex_init(&j->lock, NULL);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create the journal directory: %s", dir, strerror(errno));
        goto fail;
    }
    char *lockpath = path_join(dir, "lock");
    j->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (j->lockfd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", lockpath, strerror(errno));
        free(lockpath);
        goto fail;
    }
    if (flock(j->lockfd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen,
                 "%s: %s (another scalecastd is using this database; stop it or use another "
                 "--db)",
                 lockpath, errno == EWOULDBLOCK ? "locked" : strerror(errno));
        free(lockpath);
        goto fail;
    }
    free(lockpath);
    if (read_mark(j, err, errlen) < 0 || replay(j, fn, arg, err, errlen) < 0)
        goto fail;
    *out = j;
    return 0;
fail:
    journal_close(j);
    return -1;
}

/* fdatasync of a record written inside zero-filled space the file already
 * has costs less than of one that grows the file (the size must then be
 * written too): 0.11 ms instead of 0.15 ms for a 1.4 KiB record on the
 * development machine. So with sync the active segment is extended with
 * zeros PREALLOC bytes at a time, ahead of the records; replay reads a zero
 * header as the end of the records. On any failure (a full disk) the space
 * is given back and the record is appended without it. */
static void preallocate(struct journal *j, uint64_t need)
{
    if (!j->sync || need <= j->alloc_end)
        return;
    uint64_t at = j->alloc_end > j->off ? j->alloc_end : j->off, end = need + PREALLOC;
    while (at < end) {
        size_t m = end - at < sizeof zeros ? (size_t)(end - at) : sizeof zeros;
        ssize_t w = pwrite(j->fd, zeros, m, (off_t)at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        at += (uint64_t)w;
    }
    if (fdatasync(j->fd) < 0)
        goto fail;
    j->alloc_end = end;
    return;
fail:
    if (ftruncate(j->fd, (off_t)j->off) < 0)
        j->dirty_tail = true;
    j->alloc_end = j->off;
}

int journal_append(struct journal *j, const struct iovec *iov, int iovcnt, uint64_t *seq)
{
    if (iovcnt > MAX_IOV)
        return -EINVAL;
    if (j->dirty_tail) {
        if (ftruncate(j->fd, (off_t)j->off) < 0)
            return -errno;
        j->dirty_tail = false;
    }
    size_t len = 0;
    uint32_t c = crc(0, NULL, 0);
    for (int i = 0; i < iovcnt; i++) {
        len += iov[i].iov_len;
        c = crc(c, iov[i].iov_base, iov[i].iov_len);
    }
    if (len > JOURNAL_MAX_RECORD)
        return -EMSGSIZE;
    uint8_t h[HEADER_LEN];
    make_header(h, (uint32_t)len, j->next_seq, c);
    struct iovec v[MAX_IOV + 1];
    v[0] = (struct iovec){h, HEADER_LEN};
    memcpy(v + 1, iov, (size_t)iovcnt * sizeof *iov);
    int nv = iovcnt + 1, first = 0;
    size_t total = HEADER_LEN + len, done = 0;
    int rc = 0;
    preallocate(j, j->off + total);
    while (done < total) {
        ssize_t w = pwritev(j->fd, v + first, nv - first, (off_t)(j->off + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? -errno : -EIO;
            goto cut;
        }
        done += (size_t)w;
        /* Skip what was written (a short write on a nearly full disk). */
        while (first < nv && (size_t)w >= v[first].iov_len) {
            w -= (ssize_t)v[first].iov_len;
            first++;
        }
        if (first < nv) {
            v[first].iov_base = (char *)v[first].iov_base + w;
            v[first].iov_len -= (size_t)w;
        }
    }
    if (j->sync && fdatasync(j->fd) < 0) {
        rc = -errno;
        goto cut;
    }
    j->off += total;
    *seq = j->next_seq++;
    pthread_mutex_lock(&j->lock);
    j->segs[j->nsegs - 1].last = *seq;
    j->segs[j->nsegs - 1].bytes = j->off;
    pthread_mutex_unlock(&j->lock);
    return 0;
cut:
    /* Nothing of a failed record may come back on replay: cut it off (a
     * write that failed to sync may still reach the disk later). */
    if (ftruncate(j->fd, (off_t)j->off) < 0)
        j->dirty_tail = true;
    j->alloc_end = j->off;
    return rc;
}

int journal_rotate(struct journal *j)
{
    if (j->dirty_tail) {
        if (ftruncate(j->fd, (off_t)j->off) < 0)
            return -errno;
        j->dirty_tail = false;
    }
    if (j->off == 0)
        return 0; /* the active segment is empty: nothing to finish */
    int fd;
    int rc = create_segment(j, j->next_seq, &fd);
    if (rc < 0)
        return rc;
    /* A finished segment keeps no preallocated zeros (replay would stop at
     * them anyway). */
    if (j->alloc_end > j->off && ftruncate(j->fd, (off_t)j->off) < 0)
        log_warn("journal", "cannot cut preallocated space off a finished segment: %s",
                 strerror(errno));
    close(j->fd);
    j->fd = fd;
    j->off = 0;
    j->alloc_end = 0;
    return 0;
}

void journal_release(struct journal *j, uint64_t upto)
{
    write_mark(j, upto);
    pthread_mutex_lock(&j->lock);
    size_t k = 0;
    while (k + 1 < j->nsegs && j->segs[k].last <= upto) {
        if (unlink(j->segs[k].path) < 0 && errno != ENOENT)
            log_warn("journal", "%s: cannot delete a compacted segment: %s", j->segs[k].path,
                     strerror(errno));
        free(j->segs[k].path);
        k++;
    }
    if (k) {
        memmove(j->segs, j->segs + k, (j->nsegs - k) * sizeof *j->segs);
        j->nsegs -= k;
    }
    pthread_mutex_unlock(&j->lock);
}

uint64_t journal_last_seq(struct journal *j)
{
    return j->next_seq - 1;
}

uint64_t journal_bytes(struct journal *j)
{
    uint64_t b = 0;
    pthread_mutex_lock(&j->lock);
    for (size_t i = 0; i < j->nsegs; i++)
        b += j->segs[i].bytes;
    pthread_mutex_unlock(&j->lock);
    return b;
}

int journal_probe(struct journal *j, size_t bytes)
{
    char *path = path_join(j->dir, "probe.tmp");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -errno : 0;
    for (size_t done = 0; rc == 0 && done < bytes;) {
        size_t m = bytes - done < sizeof zeros ? bytes - done : sizeof zeros;
        ssize_t w = write(fd, zeros, m);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = w < 0 ? -errno : -EIO;
        else
            done += (size_t)w;
    }
    if (rc == 0 && fdatasync(fd) < 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    unlink(path);
    free(path);
    return rc;
}

void journal_close(struct journal *j)
{
    if (!j)
        return;
    /* A clean close leaves no preallocated zeros behind. */
    if (j->fd >= 0 && j->alloc_end > j->off && ftruncate(j->fd, (off_t)j->off) < 0)
        log_warn("journal", "cannot cut preallocated space off the journal: %s", strerror(errno));
    if (j->fd >= 0)
        close(j->fd);
    if (j->lockfd >= 0)
        close(j->lockfd);
    for (size_t i = 0; i < j->nsegs; i++)
        free(j->segs[i].path);
    free(j->segs);
    pthread_mutex_destroy(&j->lock);
    free(j->dir);
    free(j);
}
