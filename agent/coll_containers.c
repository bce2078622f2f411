/* Per-container CPU and memory, read from each running container's cgroup,
 * with the container's name and service learned from the Docker engine.
 *
 * The engine is asked for the container list only when its event stream says
 * a container started, died, was renamed or removed (and once a minute as a
 * safety net), so a steady node costs the engine nothing; the stream is read
 * at each round. Each round then
 * reads three or four small cgroup files per container through kept-open
 * descriptors. Without an engine the collector stays quiet and looks for one
 * again every 30 s.
 *
 * Metrics: cpu (percent of one core: 250 = two and a half cores busy),
 * mem_bytes (usage minus inactive file cache, as `docker stats`), mem
 * (mem_bytes as a percent of the container's limit, or of the host's memory
 * when it has none). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "collector.h"
#include "docker.h"
#include "log.h"
#include "pfile.h"
#include "text.h"
#include "xalloc.h"

#define RELIST_EVERY 60.0
#define ENGINE_RETRY 30.0
#define LIST_TIMEOUT 2.0

struct ctr {
    char id[65];
    char *name, *service;
    int has_cgroup;
    double find_after, find_wait; /* when to look for a missing cgroup again */
    struct pfile cpu, mem, stat, limit;
    int primed;
    unsigned long long prev_ns;
    double prev_mono;
};

struct ctrs_state {
    struct docker *dk;
    struct cgroup_layout cg;
    struct pfile meminfo;
    unsigned long long host_total; /* bytes */
    struct ctr *v;
    size_t n, cap;
    struct buf text;
    int dirty;
    double next_list, next_engine_try;
    int engine_up, said_no_engine, list_failing;
};

static int ctrs_create(const struct agent_paths *paths, void **state)
{
    if (!paths->docker_socket || !paths->docker_socket[0])
        return -ENOENT;
    struct ctrs_state *s = xcalloc(1, sizeof *s);
    if (cgroup_detect(paths->cgroup, &s->cg) < 0) {
        log_info("agent",
                 "containers: no cgroup v1 or v2 hierarchy under %s; per-container "
                 "metrics are off",
                 paths->cgroup);
        free(s);
        return -ENOENT;
    }
    char *mi = path_join(paths->proc, "meminfo");
    pfile_init(&s->meminfo, mi);
    free(mi);
    s->dk = docker_new(paths->docker_socket);
    log_debug("agent", "containers: cgroup v%d, cpu %s, memory %s", (int)s->cg.version,
              s->cg.cpu_root, s->cg.mem_root);
    *state = s;
    return 0;
}

static void ctr_release(struct ctr *c)
{
    free(c->name);
    free(c->service);
    if (c->has_cgroup) {
        pfile_close(&c->cpu);
        pfile_close(&c->mem);
        pfile_close(&c->stat);
        pfile_close(&c->limit);
    }
}

/* Finds the container's cgroup files. A container whose cgroup is not
 * there (another engine's, or one in an unusual place) is looked for again
 * after 5 s, then less and less often: the search walks the hierarchy. */
static void ctr_open(struct ctrs_state *s, struct ctr *c, double now)
{
    char *cpu_dir, *mem_dir;
    if (now < c->find_after)
        return;
    if (cgroup_find(&s->cg, c->id, &cpu_dir, &mem_dir) < 0) {
        c->find_wait = c->find_wait ? (c->find_wait * 2 > 300 ? 300 : c->find_wait * 2) : 5;
        c->find_after = now + c->find_wait;
        log_debug("agent", "containers: no cgroup found for %s (%.12s); looking again in %.0f s",
                  c->name, c->id, c->find_wait);
        return;
    }
    char *p;
    pfile_init(&c->cpu, p = path_join(cpu_dir, cgroup_cpu_file(&s->cg)));
    free(p);
    pfile_init(&c->mem, p = path_join(mem_dir, cgroup_mem_file(&s->cg)));
    free(p);
    pfile_init(&c->stat, p = path_join(mem_dir, CGROUP_STAT_FILE));
    free(p);
    pfile_init(&c->limit, p = path_join(mem_dir, cgroup_limit_file(&s->cg)));
    free(p);
    free(cpu_dir);
    free(mem_dir);
    c->has_cgroup = 1;
}

static struct ctr *find(struct ctrs_state *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->v[i].id, id) == 0)
            return &s->v[i];
    }
    return NULL;
}

static void read_host_total(struct ctrs_state *s)
{
    unsigned long long kb;
    if (pfile_read(&s->meminfo, &s->text) == 0 && find_key_u64(s->text.p, "MemTotal", &kb) == 0)
        s->host_total = kb * 1024;
}

/* Replaces the container table with the engine's current list. */
static void apply_list(struct ctrs_state *s, const struct docker_list *l, double now)
{
    struct ctr *v = xcalloc(l->n ? l->n : 1, sizeof *v);
    for (size_t i = 0; i < l->n; i++) {
        struct ctr *old = find(s, l->v[i].id);
        struct ctr *c = &v[i];
        if (old) {
            *c = *old;
            old->id[0] = '\0'; /* moved */
            free(c->name);
            free(c->service);
        } else {
            memcpy(c->id, l->v[i].id, sizeof c->id);
        }
        c->name = xstrdup(l->v[i].name);
        c->service = l->v[i].service ? xstrdup(l->v[i].service) : NULL;
        if (!c->has_cgroup)
            ctr_open(s, c, now);
    }
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].id[0])
            ctr_release(&s->v[i]);
    }
    free(s->v);
    s->v = v;
    s->n = s->cap = l->n;
}

static void relist(struct ctrs_state *s, double now)
{
    struct docker_list l;
    char err[256];
    s->dirty = 0;
    s->next_list = now + RELIST_EVERY;
    if (docker_list_running(s->dk, LIST_TIMEOUT, &l, err, sizeof err) < 0) {
        if (!s->list_failing)
            log_warn("agent", "containers: %s; keeping the last known list", err);
        s->list_failing = 1;
        return;
    }
    if (s->list_failing)
        log_info("agent", "containers: the engine answers again");
    s->list_failing = 0;
    read_host_total(s);
    apply_list(s, &l, now);
    log_debug("agent", "containers: %zu running", l.n);
    docker_list_free(&l);
}

/* Keeps the event subscription up; (re)subscribing triggers a relist. */
static void watch_engine(struct ctrs_state *s, double now)
{
    if (docker_events_fd(s->dk) >= 0 || now < s->next_engine_try)
        return;
    int rc = docker_events_open(s->dk);
    if (rc < 0) {
        if (s->engine_up)
            log_warn("agent", "lost the Docker engine at %s (%s); looking again every %.0f s",
                     docker_path(s->dk), strerror(-rc), ENGINE_RETRY);
        else if (!s->said_no_engine)
            log_info("agent",
                     "no Docker engine at %s (%s): host metrics only; looking again "
                     "every %.0f s",
                     docker_path(s->dk), strerror(-rc), ENGINE_RETRY);
        s->said_no_engine = 1;
        s->engine_up = 0;
        s->next_engine_try = now + ENGINE_RETRY;
        if (s->n) {
            struct docker_list none = {NULL, 0};
            apply_list(s, &none, now);
        }
        return;
    }
    if (s->said_no_engine)
        log_info("agent", "Docker engine found at %s", docker_path(s->dk));
    s->said_no_engine = 0;
    s->engine_up = 1;
    s->dirty = 1;
}

static void ctr_collect(struct ctrs_state *s, struct ctr *c, const struct tick *t,
                        struct sampleset *out)
{
    unsigned long long ns, used, inactive = 0, limit;
    if (pfile_read(&c->cpu, &s->text) < 0 || cgroup_parse_cpu(&s->cg, s->text.p, &ns) < 0) {
        s->dirty = 1; /* most likely gone: ask the engine next round */
        c->primed = 0;
        return;
    }
    sampleset_container(out, c->id, c->name, c->service);
    double dt = t->mono - c->prev_mono;
    if (c->primed && dt > 0 && ns >= c->prev_ns)
        sampleset_put(out, c->id, "cpu", 100.0 * (double)(ns - c->prev_ns) / (dt * 1e9));
    c->prev_ns = ns;
    c->prev_mono = t->mono;
    c->primed = 1;
    if (pfile_read(&c->mem, &s->text) < 0 || parse_u64(s->text.p, &used) < 0)
        return;
    if (pfile_read(&c->stat, &s->text) == 0)
        cgroup_parse_inactive_file(&s->cg, s->text.p, &inactive);
    if (inactive < used)
        used -= inactive;
    sampleset_put(out, c->id, "mem_bytes", (double)used);
    if (pfile_read(&c->limit, &s->text) < 0 || parse_u64(s->text.p, &limit) < 0 || limit == 0)
        limit = UINT64_MAX;
    /* v1 spells "no limit" as a huge number; the host's memory is the real bound. */
    if (s->host_total && limit > s->host_total)
        limit = s->host_total;
    if (limit != UINT64_MAX)
        sampleset_put(out, c->id, "mem", 100.0 * (double)used / (double)limit);
}

static void ctrs_collect(void *state, const struct tick *t, struct sampleset *out)
{
    struct ctrs_state *s = state;
    /* Events are read once per round rather than watched between rounds:
     * on a busy node that would wake the agent for every event, and one
     * relist per round covers any number of them. */
    if (docker_events_fd(s->dk) >= 0) {
        int rc = docker_events_drain(s->dk);
        if (rc != 0)
            s->dirty = 1;
        if (rc < 0) {
            /* The engine closed the stream (restart, shutdown): resubscribe
             * now; that also relists. */
            log_debug("agent", "containers: the Docker event stream ended (%s)", strerror(-rc));
            s->next_engine_try = t->mono;
        }
    }
    watch_engine(s, t->mono);
    if (s->engine_up && (s->dirty || t->mono >= s->next_list))
        relist(s, t->mono);
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].has_cgroup)
            ctr_collect(s, &s->v[i], t, out);
    }
}

static void ctrs_destroy(void *state)
{
    struct ctrs_state *s = state;
    for (size_t i = 0; i < s->n; i++)
        ctr_release(&s->v[i]);
    free(s->v);
    docker_free(s->dk);
    cgroup_layout_free(&s->cg);
    pfile_close(&s->meminfo);
    buf_free(&s->text);
    free(s);
}

const struct collector collector_containers = {
    .name = "containers",
    .create = ctrs_create,
    .collect = ctrs_collect,
    .destroy = ctrs_destroy,
};
