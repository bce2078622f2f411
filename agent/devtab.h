/* A small table of named devices (disks, network interfaces) with the
 * counters read from them last time, for collectors that sum rates over
 * devices that come and go. */
#ifndef SCALECAST_AGENT_DEVTAB_H
#define SCALECAST_AGENT_DEVTAB_H

#include <stddef.h>

#define DEVTAB_COUNTERS 4

struct devtab_entry {
    char name[64];
    int counted; /* the collector's decision: does this device count? */
    int seen;    /* present in the latest read */
    unsigned long long c[DEVTAB_COUNTERS];
};

struct devtab {
    struct devtab_entry *e;
    size_t n, cap;
};

/* Marks every entry unseen before a new read. */
void devtab_begin(struct devtab *t);
/* The entry named `name`, created (zeroed, *created = 1) when new, and marked
 * seen. Borrowed; valid until the next devtab_get or devtab_sweep. */
struct devtab_entry *devtab_get(struct devtab *t, const char *name, int *created /* out */);
/* Drops entries not seen since devtab_begin (devices that went away). */
void devtab_sweep(struct devtab *t);
void devtab_free(struct devtab *t);

#endif
