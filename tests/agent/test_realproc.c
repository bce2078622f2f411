/* The host collectors against this machine's real /proc and /sys: every
 * metric is there after two rounds and within its range. */
#include <stdlib.h>
#include <time.h>

#include "collector.h"
#include "log.h"
#include "pfile.h"
#include "unit.h"

static const char *const host_metrics[] = {
    "cpu",
    "mem",
    "mem_used_bytes",
    "mem_avail_bytes",
    "swap",
    "disk_read_bps",
    "disk_write_bps",
    "disk_read_iops",
    "disk_write_iops",
    "net_rx_bps",
    "net_tx_bps",
    "load1",
    "load5",
    "load15",
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(void)
{
    log_set_level(LOG_WARN);
    struct agent_paths paths = {"/proc", "/sys", "/sys/fs/cgroup", "", ""};
    struct running {
        const struct collector *c;
        void *state;
    } col[16];
    size_t n = 0;
    for (size_t i = 0; collectors[i]; i++) {
        void *state;
        if (collectors[i]->create(&paths, &state) == 0)
            col[n++] = (struct running){collectors[i], state};
    }
    CHECK(n == 5); /* cpu mem disk net load; containers and GPU turned off */
    struct sampleset set;
    sampleset_init(&set);
    for (int round = 0; round < 2; round++) {
        if (round)
            nanosleep(&(struct timespec){0, 300000000}, NULL);
        struct tick t = {(double)time(NULL), mono()};
        sampleset_clear(&set);
        for (size_t i = 0; i < n; i++)
            col[i].c->collect(col[i].state, &t, &set);
    }
    double v[sizeof host_metrics / sizeof host_metrics[0]];
    for (size_t i = 0; i < sizeof host_metrics / sizeof host_metrics[0]; i++) {
        int have = sampleset_get(&set, NULL, host_metrics[i], &v[i]) == 0;
        if (!have)
            fprintf(stderr, "missing host metric %s\n", host_metrics[i]);
        CHECK(have);
        CHECK(v[i] >= 0);
    }
    CHECK(v[0] <= 100);
    CHECK(v[1] <= 100);
    CHECK(v[4] <= 100);
    /* used + available is MemTotal, read here independently. */
    struct pfile f;
    struct buf text = BUF_INIT;
    unsigned long long total_kb = 0;
    pfile_init(&f, "/proc/meminfo");
    CHECK(pfile_read(&f, &text) == 0);
    CHECK(find_key_u64(text.p, "MemTotal", &total_kb) == 0);
    CHECK_NEAR(v[2] + v[3], (double)total_kb * 1024, 0.5);
    CHECK_NEAR(v[1], 100 * v[2] / ((double)total_kb * 1024), 1e-9);
    pfile_close(&f);
    buf_free(&text);
    for (size_t i = 0; i < n; i++)
        col[i].c->destroy(col[i].state);
    sampleset_free(&set);
    return UNIT_DONE();
}
