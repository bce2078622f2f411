/* InfluxDB line protocol ingest: bytes in, scalecast samples out, so an
 * existing Telegraf (outputs.influxdb, outputs.influxdb_v2, outputs.http with
 * data_format = "influx") can feed scalecastd. Pure: no HTTP, no storage, no
 * clock; the caller passes "now" and owns the counter state.
 *
 * Telegraf inputs mapped onto the agent's metric names (docs/telegraf.md):
 *   cpu (cpu=cpu-total)  cpu = 100 - usage_idle - usage_iowait
 *   mem                  used_percent -> mem, used -> mem_used_bytes,
 *                        available -> mem_avail_bytes
 *   swap                 used_percent -> swap
 *   system               load1, load5, load15
 *   diskio               read_bytes, write_bytes, reads, writes (counters) ->
 *                        disk_read_bps, disk_write_bps, disk_read_iops,
 *                        disk_write_iops
 *   net                  bytes_recv, bytes_sent (counters) -> net_rx_bps,
 *                        net_tx_bps
 *   docker_container_cpu (cpu=cpu-total) usage_percent -> cpu   } per container:
 *   docker_container_mem usage_percent -> mem, usage -> mem_bytes } tag container_name
 * The node is the `host` tag. Any other measurement is stored as the host
 * metric <measurement>_<field> when that is a valid metric name (its other
 * tags are dropped); other fields of the mapped measurements, per-CPU lines,
 * string fields and invalid names are skipped and counted.
 *
 * Counters become rates here: the state keeps, per (host, device), the last
 * two observations of each counter; a rate needs two, so the first batch
 * after scalecastd starts (or after a device appears) yields none. Devices
 * and interfaces are summed like the agent sums them: whole disks only (not
 * partitions, loop, ram, zram, dm-, md), physical-looking interfaces only
 * (not lo, docker*, br-*, veth*, virbr*, and other virtual names). */
#ifndef SCALECAST_LINEPROTO_H
#define SCALECAST_LINEPROTO_H

#include <stddef.h>

#include "ingest.h"

/* Counter history across requests (diskio, net). One per server; used by
 * one thread at a time. Holds at most LINEPROTO_MAX_HOSTS hosts; a host
 * silent for an hour is forgotten when room is needed. */
struct lineproto_state;

#define LINEPROTO_MAX_HOSTS 65536

struct lineproto_state *lineproto_state_new(void);
void lineproto_state_free(struct lineproto_state *st); /* safe with NULL */

struct lineproto_opts {
    /* Unit of the timestamps: "ns" (also "n", the default when NULL or ""),
     * "us" ("u"), "ms", "s", "m", "h": InfluxDB 1.x /write and 2.x
     * /api/v2/write spellings. */
    const char *precision;
    /* Unix seconds given to lines without a timestamp. */
    double now;
};

/* What a successful parse saw (for logs and the reply). */
struct lineproto_stats {
    size_t lines;          /* points parsed (comments and blank lines excluded) */
    size_t skipped_fields; /* fields stored nowhere (see above) */
    size_t stale_counters; /* counter lines older than one already seen, or past
                              the limits on hosts and devices tracked */
};

/* Parses `len` bytes of line protocol (body need not be NUL-terminated).
 *
 * On success returns 0 and fills *out with new samples owned by the caller
 * (release with ingest_batch_free()); *stats, if not NULL, is filled; `st`
 * has taken in the counter values (rates for a re-sent batch come out the
 * same, so a client's retry is harmless). With st NULL, counters give no
 * rates (they count as stale_counters).
 *
 * On failure returns -EINVAL with an InfluxDB-style message in err,
 * "unable to parse 'LINE': REASON (line N)" (the line shortened to 120
 * bytes), or "invalid precision 'x' ..."; *out holds nothing to free and
 * `st` is unchanged: like the JSON ingest, a batch is all or nothing. */
int lineproto_parse(const char *body, size_t len, const struct lineproto_opts *o,
                    struct lineproto_state *st, struct ingest_batch *out /* out */,
                    struct lineproto_stats *stats /* out, may be NULL */, char *err, size_t errlen);

#endif
