/* Host disk I/O: read/write bytes/s and operations/s summed over the real
 * block devices of /proc/diskstats.
 *
 * Counted: whole disks. Skipped: partitions (their I/O is already in their
 * disk's line), loop, ram and zram devices (memory, not disks), and device-
 * mapper and md devices (LVM, RAID, dm-crypt: their I/O is also counted on
 * the disks beneath, so summing both would count it twice). A whole disk is
 * one that has a directory in /sys/block; without sysfs, names are judged
 * by the kernel's partition naming (sda1, nvme0n1p1, mmcblk0p1).
 * Sectors in diskstats are always 512 bytes, whatever the device's own. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "collector.h"
#include "devtab.h"
#include "log.h"
#include "pfile.h"
#include "text.h"
#include "xalloc.h"

enum { RD_IOS, RD_SECT, WR_IOS, WR_SECT };

struct disk_state {
    struct pfile diskstats;
    struct buf text;
    char *sysblock; /* "<sys>/block" if it exists, else NULL */
    struct devtab devs;
    double prev_mono;
    int primed;
    int warned;
};

static int disk_create(const struct agent_paths *paths, void **state)
{
    struct disk_state *s = xcalloc(1, sizeof *s);
    char *path = path_join(paths->proc, "diskstats");
    pfile_init(&s->diskstats, path);
    free(path);
    char *sb = path_join(paths->sys, "block");
    struct stat st;
    if (stat(sb, &st) == 0 && S_ISDIR(st.st_mode))
        s->sysblock = sb;
    else
        free(sb);
    *state = s;
    return 0;
}

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Partition names by the kernel's conventions: a disk name ending in a
 * letter plus a number (sda1, vdb2, xvda1, hdc3), or a disk name ending in
 * a digit plus "p" and a number (nvme0n1p1, mmcblk0p2). */
static int looks_like_partition(const char *name)
{
    size_t n = strlen(name);
    size_t i = n;
    while (i > 0 && isdigit((unsigned char)name[i - 1]))
        i--;
    if (i == n || i == 0)
        return 0;
    if (name[i - 1] == 'p' && i >= 2 && isdigit((unsigned char)name[i - 2]))
        return 1;
    return (has_prefix(name, "sd") || has_prefix(name, "hd") || has_prefix(name, "vd") ||
            has_prefix(name, "xvd")) &&
           isalpha((unsigned char)name[i - 1]);
}

static int counts(const struct disk_state *s, const char *name)
{
    static const char *const skip[] = {"loop", "ram", "zram", "dm-", "md"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++) {
        if (has_prefix(name, skip[i]))
            return 0;
    }
    if (!s->sysblock)
        return !looks_like_partition(name);
    /* sysfs spells '/' in device names (cciss/c0d0) as '!'. */
    char dev[64];
    snprintf(dev, sizeof dev, "%s", name);
    for (char *p = dev; *p; p++) {
        if (*p == '/')
            *p = '!';
    }
    char *path = path_join(s->sysblock, dev);
    struct stat st;
    int whole = stat(path, &st) == 0;
    free(path);
    return whole;
}

static void disk_collect(void *state, const struct tick *t, struct sampleset *out)
{
    struct disk_state *s = state;
    int rc = pfile_read(&s->diskstats, &s->text);
    if (rc < 0) {
        if (!s->warned)
            log_warn("agent", "disk: cannot read %s: %s", s->diskstats.path, strerror(-rc));
        s->warned = 1;
        s->primed = 0;
        return;
    }
    s->warned = 0;
    unsigned long long sum[DEVTAB_COUNTERS] = {0};
    devtab_begin(&s->devs);
    for (const char *line = s->text.p; line && *line;) {
        unsigned major, minor;
        char name[64];
        unsigned long long f[7];
        /* major minor name reads merged sectors ms writes merged sectors ... */
        if (sscanf(line, "%u %u %63s %llu %llu %llu %llu %llu %llu %llu", &major, &minor, name,
                   &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6]) == 10) {
            int created;
            struct devtab_entry *e = devtab_get(&s->devs, name, &created);
            unsigned long long cur[DEVTAB_COUNTERS] = {f[0], f[2], f[4], f[6]};
            if (created)
                e->counted = counts(s, name);
            else if (e->counted) {
                for (int k = 0; k < DEVTAB_COUNTERS; k++)
                    sum[k] += counter_delta(e->c[k], cur[k]);
            }
            memcpy(e->c, cur, sizeof cur);
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    devtab_sweep(&s->devs);
    double dt = t->mono - s->prev_mono;
    if (s->primed && dt > 0) {
        sampleset_put(out, NULL, "disk_read_bps", (double)sum[RD_SECT] * 512.0 / dt);
        sampleset_put(out, NULL, "disk_write_bps", (double)sum[WR_SECT] * 512.0 / dt);
        sampleset_put(out, NULL, "disk_read_iops", (double)sum[RD_IOS] / dt);
        sampleset_put(out, NULL, "disk_write_iops", (double)sum[WR_IOS] / dt);
    }
    s->prev_mono = t->mono;
    s->primed = 1;
}

static void disk_destroy(void *state)
{
    struct disk_state *s = state;
    pfile_close(&s->diskstats);
    buf_free(&s->text);
    devtab_free(&s->devs);
    free(s->sysblock);
    free(s);
}

const struct collector collector_disk = {
    .name = "disk",
    .create = disk_create,
    .collect = disk_collect,
    .destroy = disk_destroy,
};
