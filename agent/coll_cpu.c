/* Host CPU: percent busy over all CPUs, from the "cpu" line of /proc/stat.
 *
 * busy = everything but idle and iowait. guest and guest_nice are left out
 * of the total because the kernel already counts them in user and nice. The
 * aggregate line is used rather than summing per-CPU lines, so CPUs coming
 * and going (a new cpuN line) change nothing here. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "log.h"
#include "pfile.h"
#include "text.h"
#include "xalloc.h"

struct cpu_state {
    struct pfile stat;
    struct buf text;
    int primed;
    int warned;
    unsigned long long busy, total;
};

static int cpu_create(const struct agent_paths *paths, void **state)
{
    struct cpu_state *s = xcalloc(1, sizeof *s);
    char *path = path_join(paths->proc, "stat");
    pfile_init(&s->stat, path);
    free(path);
    *state = s;
    return 0;
}

/* Parses the aggregate "cpu " line. Returns 0, or -EINVAL. */
static int parse_stat(const char *text, unsigned long long *busy, unsigned long long *total)
{
    const char *line = text;
    while (line && strncmp(line, "cpu ", 4) != 0) {
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    if (!line)
        return -EINVAL;
    /* user nice system idle iowait irq softirq steal guest guest_nice; old
     * kernels print fewer fields, which then count as zero. */
    unsigned long long f[8] = {0};
    const char *p = line + 4;
    int n = 0;
    for (; n < 8; n++) {
        char *end;
        while (*p == ' ')
            p++;
        if (*p < '0' || *p > '9')
            break;
        f[n] = strtoull(p, &end, 10);
        p = end;
    }
    if (n < 4)
        return -EINVAL;
    unsigned long long sum = 0;
    for (int i = 0; i < 8; i++)
        sum += f[i];
    *total = sum;
    *busy = sum - f[3] - f[4];
    return 0;
}

static void cpu_collect(void *state, const struct tick *t, struct sampleset *out)
{
    struct cpu_state *s = state;
    unsigned long long busy = 0, total = 0;
    int rc = pfile_read(&s->stat, &s->text);
    if (rc == 0)
        rc = parse_stat(s->text.p, &busy, &total);
    if (rc < 0) {
        if (!s->warned)
            log_warn("agent", "cpu: cannot read %s: %s", s->stat.path,
                     rc == -EINVAL ? "no aggregate cpu line" : strerror(-rc));
        s->warned = 1;
        s->primed = 0;
        return;
    }
    s->warned = 0;
    /* A total that went backwards (CPUs taken offline, a counter reset):
     * start over rather than print nonsense. */
    if (s->primed && total > s->total && busy >= s->busy) {
        double pct = 100.0 * (double)(busy - s->busy) / (double)(total - s->total);
        sampleset_put(out, NULL, "cpu", pct > 100 ? 100 : pct);
    }
    s->busy = busy;
    s->total = total;
    s->primed = 1;
}

static void cpu_destroy(void *state)
{
    struct cpu_state *s = state;
    pfile_close(&s->stat);
    buf_free(&s->text);
    free(s);
}

const struct collector collector_cpu = {
    .name = "cpu",
    .create = cpu_create,
    .collect = cpu_collect,
    .destroy = cpu_destroy,
};
