/* The samples of one collection round: one host sample and one per running
 * container, each a set of named metrics. Collectors add to it; the agent
 * writes it as JSON lines (one sample object per line) into the spool.
 *
 * The set owns copies of every string given to it. */
#ifndef SCALECAST_AGENT_SAMPLESET_H
#define SCALECAST_AGENT_SAMPLESET_H

#include <stddef.h>

#include "buf.h"

#define SAMPLE_METRIC_NAME 32

struct sample_metric {
    char name[SAMPLE_METRIC_NAME];
    double value;
};

struct sample {
    char *id;        /* container id; NULL for the host sample */
    char *container; /* container name (label on the wire); NULL for the host */
    char *service;   /* service label; NULL when the container has none */
    struct sample_metric *m;
    size_t n, cap;
};

struct sampleset {
    struct sample *s; /* s[0] is the host sample */
    size_t n, cap;
};

void sampleset_init(struct sampleset *set);
/* Forgets this round's samples, keeping memory for the next. */
void sampleset_clear(struct sampleset *set);
void sampleset_free(struct sampleset *set);

/* Registers a container for this round (a second call with the same id is a
 * no-op). `service` may be NULL. */
void sampleset_container(struct sampleset *set, const char *id, const char *name,
                         const char *service);
/* Sets metric `name` of the sample of container `id` (NULL: the host) to
 * `value`, replacing an earlier value of the same name. Non-finite values and
 * unregistered containers are ignored. Returns 0, or -ENOENT / -EINVAL when
 * the value was ignored. */
int sampleset_put(struct sampleset *set, const char *id, const char *name, double value);

/* The sample of container `id` (NULL: host), or NULL. Borrowed. */
const struct sample *sampleset_find(const struct sampleset *set, const char *id);
/* Looks a metric up; returns 0 and *value, or -ENOENT. */
int sampleset_get(const struct sampleset *set, const char *id, const char *name,
                  double *value /* out */);

/* Appends one JSON object per sample that has metrics, each followed by
 * '\n': {"ts":T,"container":"..","service":"..","metrics":{..}}. The
 * timestamp is written with millisecond precision, once, so a retry sends
 * the very same bytes. Returns the number of samples written. */
size_t sampleset_write(const struct sampleset *set, double ts, struct buf *out);

#endif
