/* Parsing and validation of ingest bodies (JSON), independent of HTTP and
 * storage so it can be unit-tested and fuzzed on its own. */
#ifndef SCALECAST_INGEST_H
#define SCALECAST_INGEST_H

#include <stddef.h>

#include "store.h"

/* A parsed batch. samples[] and the strings they point to are owned by the
 * batch; release with ingest_batch_free(). */
struct ingest_batch {
    struct store_sample *samples;
    size_t n;
    void *owner; /* the parsed document the strings borrow from */
};

/* Parses `len` bytes of JSON: one object {"node": ..., "samples": [...]} or
 * an array of such objects (one batch). Every name is validated with
 * ingest_check_name(). Returns 0 and fills *out, or -1 with a message naming
 * what and where ("samples[3].metrics.cpu: not a number") in err; on failure
 * *out holds nothing to free. */
int ingest_parse_json(const char *body, size_t len, struct ingest_batch *out /* out */, char *err,
                      size_t errlen);

void ingest_batch_free(struct ingest_batch *b);

enum ingest_name_kind { NAME_NODE, NAME_METRIC, NAME_LABEL };

/* Validates a node id (1-253 of [A-Za-z0-9._:-]), a metric name (1-128 of
 * [A-Za-z0-9_], not starting with a digit) or a container/service label
 * (0-255 of [A-Za-z0-9._:/@+-]). Returns NULL if valid, else a static
 * description of the rule broken. */
const char *ingest_check_name(enum ingest_name_kind kind, const char *s);

/* Bounds accepted for timestamps (Unix seconds). */
#define INGEST_TS_MIN 1.0
#define INGEST_TS_MAX 1e11

#endif
