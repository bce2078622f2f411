/* The collector interface: every metric source is one file that fills in a
 * struct collector (collectd's plugin idea), listed once in collectors.c.
 * Adding a metric is adding a file and a line there.
 *
 * Life of a collector: create() once at start (it may decline with -ENOENT
 * when its source does not exist on this node; it is then skipped without a
 * word), collect() once per tick, destroy() at exit. The first collect()
 * primes counters; rates and percentages of counters appear from the second
 * tick on. A collector never fails a tick: what it cannot read it leaves out,
 * and it logs a source going bad once, not every tick. */
#ifndef SCALECAST_AGENT_COLLECTOR_H
#define SCALECAST_AGENT_COLLECTOR_H

#include "sampleset.h"

/* Where the sources live. Tests point these at fixture trees. Borrowed
 * strings; they outlive every collector. */
struct agent_paths {
    const char *proc;          /* default "/proc" */
    const char *sys;           /* default "/sys" */
    const char *cgroup;        /* default "/sys/fs/cgroup" */
    const char *docker_socket; /* default "/var/run/docker.sock"; "" disables Docker */
    const char *nvml;          /* default "libnvidia-ml.so.1"; "" disables GPUs */
};

/* One collection round. */
struct tick {
    double ts;   /* wall clock, Unix seconds: the samples' timestamp */
    double mono; /* monotonic seconds: the base of every rate */
};

struct collector {
    const char *name;
    /* Sets up the collector. Returns 0 with *state set, -ENOENT when the
     * source is absent on this node, or another -errno (logged by the caller,
     * the collector is then skipped). */
    int (*create)(const struct agent_paths *paths, void **state /* out */);
    /* Adds this round's metrics to `out`. */
    void (*collect)(void *state, const struct tick *t, struct sampleset *out);
    /* Optional (NULL): a descriptor the main loop watches for input, or -1. */
    int (*poll_fd)(void *state);
    /* Optional: called when poll_fd's descriptor is readable or hung up. */
    void (*on_readable)(void *state);
    void (*destroy)(void *state);
};

/* Every collector, in the order they run; NULL-terminated. The container
 * collector runs before the GPU one, which attributes GPU memory to the
 * containers it registered. */
extern const struct collector *const collectors[];

extern const struct collector collector_cpu;
extern const struct collector collector_mem;
extern const struct collector collector_disk;
extern const struct collector collector_net;
extern const struct collector collector_load;
extern const struct collector collector_containers;
extern const struct collector collector_gpu;

/* The increase of a kernel counter between two reads. A counter that went
 * backwards either wrapped (at 32 bits on 32-bit kernels, or at 64 bits: the
 * old value was near the top and the new one is small) or was reset (its
 * device was re-created), in which case it counts from zero. */
static inline unsigned long long counter_delta(unsigned long long prev, unsigned long long cur)
{
    if (cur >= prev)
        return cur - prev;
    if (prev <= 0xffffffffULL && prev >= 0xc0000000ULL && cur < 0x40000000ULL)
        return cur + (0x100000000ULL - prev);
    if (prev >= 0xc000000000000000ULL && cur < 0x4000000000000000ULL)
        return cur - prev; /* modulo 2^64 */
    return cur;
}

#endif
