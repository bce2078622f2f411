/* Load average 1/5/15 from /proc/loadavg. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "log.h"
#include "pfile.h"
#include "text.h"
#include "xalloc.h"

struct load_state {
    struct pfile loadavg;
    struct buf text;
    int warned;
};

static int load_create(const struct agent_paths *paths, void **state)
{
    struct load_state *s = xcalloc(1, sizeof *s);
    char *path = path_join(paths->proc, "loadavg");
    pfile_init(&s->loadavg, path);
    free(path);
    *state = s;
    return 0;
}

static void load_collect(void *state, const struct tick *t, struct sampleset *out)
{
    struct load_state *s = state;
    double l1, l5, l15;
    int rc = pfile_read(&s->loadavg, &s->text);
    if (rc == 0 && sscanf(s->text.p, "%lf %lf %lf", &l1, &l5, &l15) != 3)
        rc = -EINVAL;
    if (rc < 0) {
        if (!s->warned)
            log_warn("agent", "load: cannot read %s: %s", s->loadavg.path,
                     rc == -EINVAL ? "not three numbers" : strerror(-rc));
        s->warned = 1;
        return;
    }
    s->warned = 0;
    sampleset_put(out, NULL, "load1", l1);
    sampleset_put(out, NULL, "load5", l5);
    sampleset_put(out, NULL, "load15", l15);
}

static void load_destroy(void *state)
{
    struct load_state *s = state;
    pfile_close(&s->loadavg);
    buf_free(&s->text);
    free(s);
}

const struct collector collector_load = {
    .name = "load",
    .create = load_create,
    .collect = load_collect,
    .destroy = load_destroy,
};
