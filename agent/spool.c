/* The on-disk spool of samples waiting for the server. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "pfile.h"
#include "text.h"
#include "xalloc.h"

#define HEADER_FMT "#scalecast-agent spool v1 node=%s\n"
#define CURSOR_LEN 42 /* "%020llu %020llu\n" */
/* Once everything is delivered and the newest segment is at least this big,
 * a fresh segment starts and the old one is deleted: the spool stays small
 * while the server keeps up. */
#define ROTATE_CAUGHT_UP (256 * 1024)
#define READ_CHUNK (64 * 1024)

struct seg {
    unsigned long long seq;
    off_t size;
};

struct spool {
    char *dir;
    size_t max_bytes;
    off_t seg_max;
    char *node;
    int lockfd, cfd, wfd, rfd;
    struct seg *segs; /* ascending; the last one is written to */
    size_t nsegs, cap;
    unsigned long long cseq; /* cursor: first unacknowledged byte */
    off_t coff;              /* 0 means "after the header" */
    unsigned long long rseq; /* segment open on rfd */
    char *rnode;             /* its node */
    off_t rhead;             /* its header length */
    size_t pending;
    unsigned long long dropped;
    unsigned long long total;
};

static char *seg_path(const struct spool *sp, unsigned long long seq)
{
    char name[32];
    snprintf(name, sizeof name, "%020llu.seg", seq);
    return path_join(sp->dir, name);
}

static int mkdir_p(const char *dir)
{
    char *p = xstrdup(dir);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0700) < 0 && errno != EEXIST) {
                rc = -errno;
                break;
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    free(p);
    return rc;
}

static void write_cursor(struct spool *sp)
{
    char line[CURSOR_LEN + 1];
    snprintf(line, sizeof line, "%020llu %020llu\n", sp->cseq, (unsigned long long)sp->coff);
    if (pwrite(sp->cfd, line, CURSOR_LEN, 0) != CURSOR_LEN)
        log_error("agent", "spool: cannot write %s/cursor: %s", sp->dir, strerror(errno));
}

static int cmp_seg(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int scan_segments(struct spool *sp)
{
    DIR *d = opendir(sp->dir);
    if (!d)
        return -errno;
    struct dirent *de;
    while ((de = readdir(d))) {
        unsigned long long seq;
        char tail[8];
        if (strlen(de->d_name) != 24 || sscanf(de->d_name, "%20llu%7s", &seq, tail) != 2 ||
            strcmp(tail, ".seg") != 0)
            continue;
        char *path = seg_path(sp, seq);
        struct stat st;
        if (stat(path, &st) == 0) {
            sp->segs = xgrow(sp->segs, &sp->cap, sp->nsegs + 1, sizeof *sp->segs);
            sp->segs[sp->nsegs++] = (struct seg){seq, st.st_size};
            sp->total += (unsigned long long)st.st_size;
        }
        free(path);
    }
    closedir(d);
    if (sp->nsegs > 1)
        qsort(sp->segs, sp->nsegs, sizeof *sp->segs, cmp_seg);
    return 0;
}

/* Counts complete sample lines of a segment from `off` (0: after the
 * header) to its end. */
static size_t count_lines(const struct spool *sp, unsigned long long seq, off_t off)
{
    char *path = seg_path(sp, seq);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return 0;
    char *chunk = xmalloc(READ_CHUNK);
    size_t lines = 0;
    int header = off == 0;
    ssize_t n;
    while ((n = pread(fd, chunk, READ_CHUNK, off)) > 0) {
        for (char *p = chunk; (p = memchr(p, '\n', (size_t)(chunk + n - p))); p++)
            lines++;
        off += n;
    }
    free(chunk);
    close(fd);
    return lines > 0 && header ? lines - 1 : lines;
}

static int seg_index(const struct spool *sp, unsigned long long seq)
{
    for (size_t i = 0; i < sp->nsegs; i++) {
        if (sp->segs[i].seq == seq)
            return (int)i;
    }
    return -1;
}

static void close_reader(struct spool *sp)
{
    if (sp->rfd >= 0)
        close(sp->rfd);
    sp->rfd = -1;
    sp->rseq = 0;
    free(sp->rnode);
    sp->rnode = NULL;
}

/* Starts segment last+1 and makes it the one written to. */
static int new_segment(struct spool *sp)
{
    unsigned long long seq = sp->nsegs ? sp->segs[sp->nsegs - 1].seq + 1 : 1;
    char *path = seg_path(sp, seq);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    int rc = fd < 0 ? -errno : 0;
    if (fd >= 0) {
        char head[256];
        int hl = snprintf(head, sizeof head, HEADER_FMT, sp->node);
        if (write(fd, head, (size_t)hl) != hl) {
            rc = errno ? -errno : -EIO;
            close(fd);
            unlink(path);
            fd = -1;
        } else {
            if (sp->wfd >= 0)
                close(sp->wfd);
            sp->wfd = fd;
            sp->segs = xgrow(sp->segs, &sp->cap, sp->nsegs + 1, sizeof *sp->segs);
            sp->segs[sp->nsegs++] = (struct seg){seq, hl};
            sp->total += (unsigned long long)hl;
        }
    }
    if (rc < 0)
        log_error("agent", "spool: cannot create %s: %s", path, strerror(-rc));
    free(path);
    return rc;
}

/* Deletes segment i (which must not be the newest). */
static void remove_segment(struct spool *sp, size_t i)
{
    char *path = seg_path(sp, sp->segs[i].seq);
    if (unlink(path) < 0 && errno != ENOENT)
        log_error("agent", "spool: cannot delete %s: %s", path, strerror(errno));
    free(path);
    if (sp->rseq == sp->segs[i].seq)
        close_reader(sp);
    sp->total -= (unsigned long long)sp->segs[i].size;
    memmove(&sp->segs[i], &sp->segs[i + 1], (sp->nsegs - i - 1) * sizeof *sp->segs);
    sp->nsegs--;
}

int spool_open(const struct spool_opts *o, struct spool **out, char *err, size_t errlen)
{
    struct spool *sp = xcalloc(1, sizeof *sp);
    sp->dir = xstrdup(o->dir);
    sp->node = xstrdup(o->node);
    sp->max_bytes = o->max_bytes < SPOOL_MIN_BYTES ? SPOOL_MIN_BYTES : o->max_bytes;
    /* Eight segments to the limit: the limit drops an eighth at a time. */
    sp->seg_max = (off_t)(sp->max_bytes / 8);
    sp->lockfd = sp->cfd = sp->wfd = sp->rfd = -1;
    int rc;
    char *path = NULL;
    if ((rc = mkdir_p(sp->dir)) < 0) {
        snprintf(err, errlen, "spool directory %s: cannot create: %s", sp->dir, strerror(-rc));
        goto fail;
    }
    path = path_join(sp->dir, "lock");
    sp->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (sp->lockfd < 0 || flock(sp->lockfd, LOCK_EX | LOCK_NB) < 0) {
        rc = -errno;
        snprintf(err, errlen, "spool directory %s: %s", sp->dir,
                 rc == -EWOULDBLOCK ? "in use by another scalecast-agent" : strerror(-rc));
        goto fail;
    }
    free(path);
    path = path_join(sp->dir, "cursor");
    sp->cfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (sp->cfd < 0) {
        rc = -errno;
        snprintf(err, errlen, "spool cursor %s: %s", path, strerror(-rc));
        goto fail;
    }
    if ((rc = scan_segments(sp)) < 0) {
        snprintf(err, errlen, "spool directory %s: cannot list: %s", sp->dir, strerror(-rc));
        goto fail;
    }
    char line[CURSOR_LEN + 1] = "";
    ssize_t n = pread(sp->cfd, line, CURSOR_LEN, 0);
    unsigned long long cseq = 0, coff = 0;
    if (n > 0 && (n != CURSOR_LEN || sscanf(line, "%llu %llu", &cseq, &coff) != 2)) {
        log_warn("agent",
                 "spool: %s holds no valid cursor; resending from the oldest segment "
                 "(the server drops duplicates)",
                 path);
        cseq = coff = 0;
    }
    /* The cursor points into the oldest segment still there (older ones were
     * fully delivered, or dropped by the limit). */
    if (sp->nsegs && cseq < sp->segs[0].seq) {
        cseq = sp->segs[0].seq;
        coff = 0;
    }
    if (sp->nsegs && seg_index(sp, cseq) < 0) {
        size_t i = 0;
        while (i < sp->nsegs && sp->segs[i].seq < cseq)
            i++;
        cseq = i < sp->nsegs ? sp->segs[i].seq : 0;
        coff = 0;
    }
    sp->cseq = cseq;
    sp->coff = (off_t)coff;
    for (size_t i = 0; i < sp->nsegs; i++) {
        if (sp->segs[i].seq >= sp->cseq)
            sp->pending += count_lines(sp, sp->segs[i].seq, sp->segs[i].seq == cseq ? sp->coff : 0);
    }
    if (sp->nsegs)
        log_info("agent", "spool %s: resuming with %zu unsent samples in %zu segments", sp->dir,
                 sp->pending, sp->nsegs);
    if ((rc = new_segment(sp)) < 0) {
        snprintf(err, errlen, "spool directory %s: cannot create a segment: %s", sp->dir,
                 strerror(-rc));
        goto fail;
    }
    if (sp->cseq == 0)
        sp->cseq = sp->segs[0].seq;
    write_cursor(sp);
    free(path);
    *out = sp;
    return 0;
fail:
    free(path);
    spool_close(sp);
    return rc < 0 ? rc : -EIO;
}

/* The "ts" of a sample line, or 0. */
static double line_ts(const char *line)
{
    const char *p = strstr(line, "\"ts\":");
    return p ? strtod(p + 5, NULL) : 0;
}

/* The timestamps of the first and last complete unsent lines of segment i
 * (for the drop message). */
static void unsent_range(struct spool *sp, size_t i, off_t from, double *first, double *last)
{
    *first = *last = 0;
    char *path = seg_path(sp, sp->segs[i].seq);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return;
    char head[512];
    ssize_t n = pread(fd, head, sizeof head - 1, from);
    if (n > 0) {
        head[n] = '\0';
        /* At offset 0 the first line is the segment's header: skip it. */
        char *nl = from == 0 ? strchr(head, '\n') : NULL;
        if (from != 0 || nl)
            *first = line_ts(nl ? nl + 1 : head);
    }
    off_t size = sp->segs[i].size;
    off_t at = size > (off_t)sizeof head - 1 ? size - (off_t)sizeof head + 1 : 0;
    n = pread(fd, head, sizeof head - 1, at);
    if (n > 1) {
        head[n] = '\0';
        head[n - 1] = '\0'; /* the last line's newline */
        char *nl = strrchr(head, '\n');
        if (nl)
            *last = line_ts(nl + 1);
    }
    close(fd);
}

/* Drops the oldest segment to honour the size limit. */
static void drop_oldest(struct spool *sp)
{
    struct seg *s = &sp->segs[0];
    size_t lost = 0;
    double first = 0, last = 0;
    if (s->seq >= sp->cseq) {
        off_t from = s->seq == sp->cseq ? sp->coff : 0;
        lost = count_lines(sp, s->seq, from);
        if (lost)
            unsent_range(sp, 0, from, &first, &last);
    }
    unsigned long long seq = s->seq;
    remove_segment(sp, 0);
    if (sp->cseq <= seq) {
        sp->cseq = sp->segs[0].seq;
        sp->coff = 0;
        write_cursor(sp);
    }
    if (lost) {
        sp->pending = sp->pending > lost ? sp->pending - lost : 0;
        sp->dropped += lost;
        log_warn("agent",
                 "spool over its limit of %zu bytes: dropped the %zu oldest unsent samples "
                 "(ts %.3f to %.3f); %llu dropped since start",
                 sp->max_bytes, lost, first, last, sp->dropped);
    }
}

int spool_append(struct spool *sp, const char *data, size_t len, size_t count)
{
    struct seg *w = &sp->segs[sp->nsegs - 1];
    if (w->size + (off_t)len > sp->seg_max && w->size > (off_t)(strlen(sp->node) + 32)) {
        if (new_segment(sp) == 0)
            w = &sp->segs[sp->nsegs - 1];
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(sp->wfd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? -errno : -EIO;
            /* Leave no half-written line behind. */
            if (done && ftruncate(sp->wfd, w->size) < 0)
                log_error("agent", "spool: cannot undo a partial write: %s", strerror(errno));
            log_error("agent", "spool: cannot write %zu samples to %s: %s; they are lost", count,
                      sp->dir, strerror(-err));
            return err;
        }
        done += (size_t)n;
    }
    w->size += (off_t)len;
    sp->total += len;
    sp->pending += count;
    while (sp->total > sp->max_bytes && sp->nsegs > 1)
        drop_oldest(sp);
    return 0;
}

/* Opens segment `seq` for reading and reads its header. */
static int open_reader(struct spool *sp, unsigned long long seq)
{
    if (sp->rfd >= 0 && sp->rseq == seq)
        return 0;
    close_reader(sp);
    char *path = seg_path(sp, seq);
    sp->rfd = open(path, O_RDONLY | O_CLOEXEC);
    if (sp->rfd < 0) {
        int rc = -errno;
        log_error("agent", "spool: cannot open %s: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    sp->rseq = seq;
    char head[256];
    ssize_t n = pread(sp->rfd, head, sizeof head - 1, 0);
    head[n > 0 ? n : 0] = '\0';
    char *nl = strchr(head, '\n');
    const char *tag = "#scalecast-agent spool v1 node=";
    if (nl && strncmp(head, tag, strlen(tag)) == 0) {
        sp->rnode = xstrndup(head + strlen(tag), (size_t)(nl - head) - strlen(tag));
        sp->rhead = nl + 1 - head;
    } else {
        log_warn("agent", "spool: %s has no valid header; sending its samples as node %s", path,
                 sp->node);
        sp->rnode = xstrdup(sp->node);
        sp->rhead = 0;
    }
    free(path);
    return 0;
}

/* Moves the cursor to the start of the segment after `seq`. */
static void next_segment(struct spool *sp, size_t i)
{
    sp->cseq = sp->segs[i + 1].seq;
    sp->coff = 0;
    write_cursor(sp);
    remove_segment(sp, i);
}

static int line_ok(const char *line, size_t len)
{
    return len >= 2 && line[0] == '{' && line[len - 1] == '}';
}

size_t spool_peek(struct spool *sp, size_t max, struct spool_batch *b, struct buf *lines)
{
    buf_reset(lines);
    for (;;) {
        int i = seg_index(sp, sp->cseq);
        if (i < 0)
            return 0;
        int newest = (size_t)i == sp->nsegs - 1;
        if (open_reader(sp, sp->cseq) < 0) {
            if (newest)
                return 0;
            next_segment(sp, (size_t)i);
            continue;
        }
        if (sp->coff < sp->rhead)
            sp->coff = sp->rhead;
        off_t end = sp->segs[i].size;
        size_t n = 0;
        off_t at = sp->coff;
        size_t used = 0; /* bytes of `lines` that are complete, accepted lines */
        while (n < max && at < end) {
            size_t want = (size_t)(end - at) < READ_CHUNK ? (size_t)(end - at) : READ_CHUNK;
            char *dst = buf_reserve(lines, want);
            ssize_t got = pread(sp->rfd, dst, want, at);
            if (got <= 0)
                break;
            lines->len += (size_t)got;
            at += got;
            char *p = lines->p + used;
            char *stop = lines->p + lines->len;
            char *nl;
            while (n < max && (nl = memchr(p, '\n', (size_t)(stop - p)))) {
                if (!line_ok(p, (size_t)(nl - p))) {
                    if (n > 0)
                        goto done; /* send what came before it first */
                    log_warn("agent", "spool: skipping a damaged line of %zu bytes in segment %llu",
                             (size_t)(nl - p), sp->cseq);
                    sp->coff += nl + 1 - p;
                    sp->pending = sp->pending ? sp->pending - 1 : 0;
                    write_cursor(sp);
                    memmove(p, nl + 1, (size_t)(stop - nl - 1));
                    lines->len -= (size_t)(nl + 1 - p);
                    stop = lines->p + lines->len;
                    continue;
                }
                n++;
                p = nl + 1;
                used = (size_t)(p - lines->p);
            }
        }
    done:
        lines->len = used;
        if (lines->p)
            lines->p[used] = '\0';
        if (n > 0) {
            b->node = sp->rnode;
            b->seq = sp->cseq;
            b->off = sp->coff;
            b->len = used;
            b->n = n;
            return n;
        }
        if (newest)
            return 0;
        /* An older segment read to its end: delivered, or a torn tail. */
        if (sp->coff < end)
            log_warn("agent",
                     "spool: skipping %lld bytes of a torn write at the end of segment %llu",
                     (long long)(end - sp->coff), sp->cseq);
        next_segment(sp, (size_t)i);
    }
}

void spool_ack(struct spool *sp, const struct spool_batch *b)
{
    if (b->seq != sp->cseq || b->off != sp->coff)
        return; /* dropped by the size limit while in flight */
    sp->coff += (off_t)b->len;
    sp->pending = sp->pending > b->n ? sp->pending - b->n : 0;
    int i = seg_index(sp, sp->cseq);
    if (i >= 0 && sp->coff >= sp->segs[i].size) {
        if ((size_t)i < sp->nsegs - 1) {
            next_segment(sp, (size_t)i);
            return;
        }
        if (sp->segs[i].size >= ROTATE_CAUGHT_UP && new_segment(sp) == 0) {
            next_segment(sp, (size_t)i);
            return;
        }
    }
    write_cursor(sp);
}

size_t spool_pending(const struct spool *sp)
{
    return sp->pending;
}

unsigned long long spool_dropped(const struct spool *sp)
{
    return sp->dropped;
}

unsigned long long spool_bytes(const struct spool *sp)
{
    return sp->total;
}

void spool_sync(struct spool *sp)
{
    if (sp->wfd >= 0)
        fdatasync(sp->wfd);
    if (sp->cfd >= 0)
        fdatasync(sp->cfd);
}

void spool_close(struct spool *sp)
{
    if (!sp)
        return;
    spool_sync(sp);
    close_reader(sp);
    if (sp->wfd >= 0)
        close(sp->wfd);
    if (sp->cfd >= 0)
        close(sp->cfd);
    if (sp->lockfd >= 0)
        close(sp->lockfd);
    free(sp->segs);
    free(sp->dir);
    free(sp->node);
    free(sp);
}
