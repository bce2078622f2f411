/* The ingest journal: durable, append-only segment files.
 *
 * An accepted group of batches is appended as one record and acknowledged
 * once the record is on disk (fdatasync); the store's compactor later folds
 * the records into SQLite chunks and releases the segments it no longer
 * needs. Writing a record costs one write and one fdatasync of a few KiB,
 * where an SQLite transaction writes whole B-tree pages to its WAL.
 *
 * Layout: a directory (the database path + ".ingest") holding a lock file
 * and segment files named by the sequence number of their first record
 * (00000000000000000001.seg). A record is a 24-byte header (magic, payload
 * length, sequence number, CRC-32 of the payload, CRC-32 of the header)
 * followed by the payload. Only the newest segment is appended to; a record
 * torn by a crash can only be at its end, was never acknowledged, and is cut
 * off when the journal is opened again.
 *
 * Threads: journal_append() and journal_rotate() are called by one thread
 * (the store's writer); journal_release() may be called from another. */
#ifndef SCALECAST_JOURNAL_H
#define SCALECAST_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct journal;

/* Largest payload a record may hold. */
#define JOURNAL_MAX_RECORD (256u << 20)

/* Called for each intact record in order; data is borrowed for the call.
 * A negative return stops the replay and is returned by journal_open(). */
typedef int (*journal_replay_fn)(void *arg, uint64_t seq, const void *data, size_t len);

/* Opens (creating if needed) the journal directory dir (sync: appends wait
 * for fdatasync, so records survive power loss; without it they survive a
 * crash of the process, not of the machine), takes its lock (a
 * second process on the same directory is refused), replays every intact
 * record not yet released (see journal_release) through fn in order, cuts a torn record off the end
 * of the newest segment, and makes that segment the one appended to. A damaged record in an older
 * segment is logged; the records before it are replayed and the file is kept beside as
 * NAME.damaged. Returns 0 and *out, or a negative value with a message in err (nothing is left
 * open). */
int journal_open(const char *dir, bool sync, journal_replay_fn fn, void *arg,
                 struct journal **out /* out */, char *err, size_t errlen);

/* Appends one record made of the iov pieces and waits until it is durable
 * (written and, with sync, synced).
 * Returns 0 and its sequence number in *seq, or -errno (-ENOSPC when the
 * disk is full); on failure the record is not in the journal (the segment
 * is cut back to where it was) and a later append may succeed. */
int journal_append(struct journal *j, const struct iovec *iov, int iovcnt, uint64_t *seq /* out */);

/* Starts a new segment: records appended from now on go into it, and the
 * segments before it may be released once compacted. Returns 0 or -errno
 * (the current segment then stays in use). */
int journal_rotate(struct journal *j);

/* Records that every record up to upto is compacted (durable elsewhere):
 * they are not replayed again, and every finished segment holding only
 * such records is deleted. The segment being appended to is kept. */
void journal_release(struct journal *j, uint64_t upto);

/* Sequence number of the last record appended or replayed (0: none). */
uint64_t journal_last_seq(struct journal *j);

/* Bytes in the journal's segments (for /metrics). */
uint64_t journal_bytes(struct journal *j);

/* Writes and syncs a scratch file of `bytes` in the journal directory and
 * removes it: 0 if the disk takes writes now, -errno otherwise. */
int journal_probe(struct journal *j, size_t bytes);

/* Closes the files and drops the lock. Safe with NULL. */
void journal_close(struct journal *j);

#endif
