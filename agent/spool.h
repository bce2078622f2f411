/* The on-disk spool: every collected sample is written here first and
 * removed only once the server acknowledged it (or the size limit pushed it
 * out), so a server outage, a slow server or an agent restart loses nothing.
 *
 * Layout of the spool directory:
 *   lock                 flock()ed while an agent uses the directory
 *   cursor               "SEQ OFFSET\n": the first byte not yet acknowledged
 *   00000000000000000042.seg
 *                        segments, oldest first by number. Each starts with
 *                        "#scalecast-agent spool v1 node=NODE\n" and then
 *                        holds one JSON sample object per line, exactly as
 *                        it goes on the wire.
 * The newest segment is appended to; older ones are only read and deleted.
 * Samples go out in the order they were written. A line without its '\n'
 * (a write torn by a crash) is skipped. Delivery is at least once: if the
 * agent dies between the server's 200 and the cursor update, the batch is
 * sent again, and the server's (node, container, metric, ts) key absorbs it.
 *
 * When the segments together exceed the size limit, the oldest segment is
 * deleted and the unsent samples in it are counted in a log line. */
#ifndef SCALECAST_AGENT_SPOOL_H
#define SCALECAST_AGENT_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

struct spool;

struct spool_opts {
    const char *dir;  /* created (with parents) if missing */
    size_t max_bytes; /* at least SPOOL_MIN_BYTES */
    const char *node; /* node id written into new segments */
};

#define SPOOL_MIN_BYTES (64 * 1024)

/* A run of consecutive samples from one segment, handed out by spool_peek. */
struct spool_batch {
    const char *node; /* borrowed: valid until the next spool call */
    unsigned long long seq;
    off_t off;
    size_t len; /* bytes, newlines included */
    size_t n;   /* samples */
};

/* Opens (or creates) the spool, recovers what an earlier run left in it and
 * starts a new segment. Returns 0, or -errno with a message in err naming the
 * directory and the cause (for instance another agent holding the lock). */
int spool_open(const struct spool_opts *o, struct spool **out, char *err, size_t errlen);

/* Appends `len` bytes holding `count` complete lines, then enforces the size
 * limit. Returns 0, or -errno if the bytes could not be written (nothing of
 * them is then in the spool). */
int spool_append(struct spool *sp, const char *data, size_t len, size_t count);

/* Copies up to `max` of the oldest unacknowledged samples (one segment at
 * most) into `lines` and describes them in *b. Returns the number of samples,
 * 0 when everything was acknowledged. */
size_t spool_peek(struct spool *sp, size_t max, struct spool_batch *b /* out */,
                  struct buf *lines /* out */);

/* Marks a peeked batch as done (delivered, or refused for good by the
 * server). A batch that the size limit dropped meanwhile is ignored. */
void spool_ack(struct spool *sp, const struct spool_batch *b);

/* Samples written but not yet acknowledged. */
size_t spool_pending(const struct spool *sp);
/* Samples dropped by the size limit since spool_open. */
unsigned long long spool_dropped(const struct spool *sp);
/* Bytes in all segments. */
unsigned long long spool_bytes(const struct spool *sp);

/* Forces the newest segment and the cursor to disk (fdatasync). */
void spool_sync(struct spool *sp);
/* Syncs and releases everything. NULL is fine. */
void spool_close(struct spool *sp);

#endif
