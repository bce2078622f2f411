/* Host memory and swap from /proc/meminfo.
 *
 * "Used" is MemTotal - MemAvailable: MemAvailable is the kernel's estimate of
 * what can be given to programs without swapping (page cache that can be
 * dropped counts as available), which is what an autoscaler cares about.
 * Kernels before 3.14 lack it; there MemFree + Buffers + Cached stands in. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "log.h"
#include "pfile.h"
#include "text.h"
#include "xalloc.h"

struct mem_state {
    struct pfile meminfo;
    struct buf text;
    int warned;
};

static int mem_create(const struct agent_paths *paths, void **state)
{
    struct mem_state *s = xcalloc(1, sizeof *s);
    char *path = path_join(paths->proc, "meminfo");
    pfile_init(&s->meminfo, path);
    free(path);
    *state = s;
    return 0;
}

/* MemAvailable, or its pre-3.14 stand-in, in kB. */
static int available_kb(const char *text, unsigned long long *out)
{
    if (find_key_u64(text, "MemAvailable", out) == 0)
        return 0;
    unsigned long long fr, bu, ca;
    if (find_key_u64(text, "MemFree", &fr) < 0 || find_key_u64(text, "Buffers", &bu) < 0 ||
        find_key_u64(text, "Cached", &ca) < 0)
        return -EINVAL;
    *out = fr + bu + ca;
    return 0;
}

static void mem_collect(void *state, const struct tick *t, struct sampleset *out)
{
    struct mem_state *s = state;
    unsigned long long total, avail;
    int rc = pfile_read(&s->meminfo, &s->text);
    if (rc == 0 && (find_key_u64(s->text.p, "MemTotal", &total) < 0 ||
                    available_kb(s->text.p, &avail) < 0 || total == 0))
        rc = -EINVAL;
    if (rc < 0) {
        if (!s->warned)
            log_warn("agent", "mem: cannot read %s: %s", s->meminfo.path,
                     rc == -EINVAL ? "no MemTotal/MemAvailable" : strerror(-rc));
        s->warned = 1;
        return;
    }
    s->warned = 0;
    if (avail > total)
        avail = total;
    sampleset_put(out, NULL, "mem", 100.0 * (double)(total - avail) / (double)total);
    sampleset_put(out, NULL, "mem_used_bytes", (double)(total - avail) * 1024.0);
    sampleset_put(out, NULL, "mem_avail_bytes", (double)avail * 1024.0);

    unsigned long long stotal, sfree;
    if (find_key_u64(s->text.p, "SwapTotal", &stotal) == 0 &&
        find_key_u64(s->text.p, "SwapFree", &sfree) == 0) {
        double pct = 0;
        if (stotal > 0 && sfree <= stotal)
            pct = 100.0 * (double)(stotal - sfree) / (double)stotal;
        sampleset_put(out, NULL, "swap", pct);
    }
}

static void mem_destroy(void *state)
{
    struct mem_state *s = state;
    pfile_close(&s->meminfo);
    buf_free(&s->text);
    free(s);
}

const struct collector collector_mem = {
    .name = "mem",
    .create = mem_create,
    .collect = mem_collect,
    .destroy = mem_destroy,
};
