/* Re-reading kernel files through kept-open descriptors. */
#include "pfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xalloc.h"

static void set_empty(struct buf *out)
{
    buf_reset(out);
    buf_reserve(out, 0);
    out->p[0] = '\0';
}

void pfile_init(struct pfile *f, const char *path)
{
    f->path = xstrdup(path);
    f->fd = -1;
}

static int read_all(int fd, struct buf *out)
{
    buf_reset(out);
    for (;;) {
        size_t room = out->cap > out->len + 1 ? out->cap - out->len - 1 : 0;
        if (room < 512) {
            buf_reserve(out, out->cap ? out->cap : 4096);
            room = out->cap - out->len - 1;
        }
        ssize_t n = pread(fd, out->p + out->len, room, (off_t)out->len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        out->len += (size_t)n;
        /* A short read ends the file, which saves a second pread per file
         * (and a seq_file regenerates its whole text to answer a read at an
         * offset, so that read costs as much as the first). For regular
         * files a short read means EOF. A seq_file stops short only at its
         * end or when the next record does not fit its buffer (at least a
         * page): one-record files (single_open: /proc/stat, cgroup files)
         * come whole; per-line files (diskstats, net/dev) have lines far
         * shorter than 512 bytes, so a read that stopped early is longer
         * than a page minus 512. */
        if ((size_t)n < room && out->len < 4096 - 512)
            break;
    }
    out->p[out->len] = '\0';
    return 0;
}

int pfile_read(struct pfile *f, struct buf *out)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (f->fd < 0) {
            f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
            if (f->fd < 0) {
                int err = -errno;
                set_empty(out);
                return err;
            }
        }
        int rc = read_all(f->fd, out);
        if (rc == 0)
            return 0;
        /* A stale descriptor (file replaced or its cgroup removed): reopen once. */
        close(f->fd);
        f->fd = -1;
        if (attempt == 1) {
            set_empty(out);
            return rc;
        }
    }
    return -EIO;
}

void pfile_close(struct pfile *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    free(f->path);
    f->path = NULL;
}

int parse_u64(const char *s, unsigned long long *out)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (strncmp(s, "max", 3) == 0) {
        *out = UINT64_MAX;
        return 0;
    }
    if (*s < '0' || *s > '9')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return -EINVAL;
    *out = v;
    return 0;
}

int find_key_u64(const char *text, const char *key, unsigned long long *out)
{
    size_t kl = strlen(key);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, key, kl) == 0 && (line[kl] == ' ' || line[kl] == ':' || line[kl] == '\t'))
            return parse_u64(line + kl + (line[kl] == ':' ? 1 : 0), out);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return -ENOENT;
}
