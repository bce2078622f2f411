/* Host network: received and sent bytes/s summed over the physical
 * interfaces of /proc/net/dev.
 *
 * Loopback is skipped, and so is every interface sysfs calls virtual
 * (/sys/devices/virtual/net: docker0 and other bridges, veth pairs, tunnels):
 * a container's packet crosses its veth, the bridge and the NIC, and summing
 * all three would count it three times. */
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

enum { RX_BYTES, TX_BYTES };

struct net_state {
    struct pfile netdev;
    struct buf text;
    char *virt; /* "<sys>/devices/virtual/net" */
    struct devtab ifs;
    double prev_mono;
    int primed;
    int warned;
};

static int net_create(const struct agent_paths *paths, void **state)
{
    struct net_state *s = xcalloc(1, sizeof *s);
    char *path = path_join(paths->proc, "net/dev");
    pfile_init(&s->netdev, path);
    free(path);
    s->virt = path_join(paths->sys, "devices/virtual/net");
    *state = s;
    return 0;
}

static int counts(const struct net_state *s, const char *name)
{
    if (strcmp(name, "lo") == 0)
        return 0;
    char *path = path_join(s->virt, name);
    struct stat st;
    int virtual = stat(path, &st) == 0;
    free(path);
    return !virtual;
}

/* One "  eth0: 123 4 ..." line: the name and the rx/tx byte counters. */
static int parse_line(const char *line, char *name, size_t namelen, unsigned long long *rx,
                      unsigned long long *tx)
{
    while (*line == ' ')
        line++;
    const char *colon = strchr(line, ':');
    const char *nl = strchr(line, '\n');
    if (!colon || (nl && colon > nl) || (size_t)(colon - line) >= namelen || colon == line)
        return -EINVAL;
    memcpy(name, line, (size_t)(colon - line));
    name[colon - line] = '\0';
    unsigned long long f[9];
    if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu", &f[0], &f[1], &f[2],
               &f[3], &f[4], &f[5], &f[6], &f[7], &f[8]) != 9)
        return -EINVAL;
    *rx = f[0];
    *tx = f[8];
    return 0;
}

static void net_collect(void *state, const struct tick *t, struct sampleset *out)
{
    struct net_state *s = state;
    int rc = pfile_read(&s->netdev, &s->text);
    if (rc < 0) {
        if (!s->warned)
            log_warn("agent", "net: cannot read %s: %s", s->netdev.path, strerror(-rc));
        s->warned = 1;
        s->primed = 0;
        return;
    }
    s->warned = 0;
    unsigned long long sum[2] = {0, 0};
    devtab_begin(&s->ifs);
    for (const char *line = s->text.p; line && *line;) {
        char name[64];
        unsigned long long cur[2];
        if (parse_line(line, name, sizeof name, &cur[RX_BYTES], &cur[TX_BYTES]) == 0) {
            int created;
            struct devtab_entry *e = devtab_get(&s->ifs, name, &created);
            if (created)
                e->counted = counts(s, name);
            else if (e->counted) {
                sum[RX_BYTES] += counter_delta(e->c[RX_BYTES], cur[RX_BYTES]);
                sum[TX_BYTES] += counter_delta(e->c[TX_BYTES], cur[TX_BYTES]);
            }
            e->c[RX_BYTES] = cur[RX_BYTES];
            e->c[TX_BYTES] = cur[TX_BYTES];
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    devtab_sweep(&s->ifs);
    double dt = t->mono - s->prev_mono;
    if (s->primed && dt > 0) {
        sampleset_put(out, NULL, "net_rx_bps", (double)sum[RX_BYTES] / dt);
        sampleset_put(out, NULL, "net_tx_bps", (double)sum[TX_BYTES] / dt);
    }
    s->prev_mono = t->mono;
    s->primed = 1;
}

static void net_destroy(void *state)
{
    struct net_state *s = state;
    pfile_close(&s->netdev);
    buf_free(&s->text);
    devtab_free(&s->ifs);
    free(s->virt);
    free(s);
}

const struct collector collector_net = {
    .name = "net",
    .create = net_create,
    .collect = net_collect,
    .destroy = net_destroy,
};
