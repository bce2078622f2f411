/* Formatting of the server's figures for tables: values by metric unit,
 * ages, times; and lenient lookups in its JSON. */
#ifndef SCALECAST_CLI_FORMAT_H
#define SCALECAST_CLI_FORMAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* A value in the unit its metric name implies (docs/agent.md): "37.5%" for
 * cpu, mem, swap and gpu percentages, "1.5GiB" for *_bytes, "12.0MiB/s" for
 * *_bps, "120/s" for *_iops, else a short number. Returns buf. */
const char *fmt_metric(char *buf, size_t len, const char *metric, double v);

/* A short number: "3", "0.25", "1234.5", "1.2e+07". Returns buf. */
const char *fmt_num(char *buf, size_t len, double v);

/* A duration in one or two units, as kubectl shows ages: "42s", "5m10s",
 * "3h", "2d4h". Returns buf. */
const char *fmt_age(char *buf, size_t len, double seconds);

/* "2024-11-21T08:40:17Z". Returns buf. */
const char *fmt_utc(char *buf, size_t len, double ts);

/* The first of the NULL-terminated keys that obj holds with a non-null
 * value; a key may be a dotted path ("forecast.peak"). Borrowed, or NULL. */
json_t *json_pick(json_t *obj, ...) __attribute__((sentinel));

/* The number at json_pick(obj, keys...) into *out; false if none. */
bool json_pick_num(double *out, json_t *obj, ...) __attribute__((sentinel));

#endif
