/* The server's autoscaler: evaluates every [service NAME] policy on a tick.
 *
 * One worker thread per service (docs/autoscaler.md, "In the server"): each
 * tick it reads the driving samples through its own store reader, aggregates
 * them, forecasts the load, decides (autoscaler/decide.h), acts through the
 * Docker engine (autoscaler/actuate.h) unless the policy is dry-run or
 * advisory, and records the decision with store_add_decision. A worker
 * waiting on a slow or dead engine therefore delays only its own service:
 * ingestion runs on the store's writer thread and the other services on
 * their own workers; every engine call is bounded by
 * [autoscaler] docker_timeout.
 *
 * What is recorded: every scale action carried out or failed, every hold a
 * rule wanted but a limit stopped, every engine or database error. A
 * decision that changes nothing and repeats the last recorded one exactly
 * (a plain or missing-data hold, the same advisory or dry-run
 * recommendation) is recorded when it first appears and then every 5
 * minutes, so an idle service does not write a row per tick. */
#ifndef SCALECAST_SCALER_H
#define SCALECAST_SCALER_H

#include <stddef.h>

#include <jansson.h>

#include "config.h"
#include "store.h"

struct scaler;

/* Validates every policy of cfg, opens the engine client when a policy
 * needs one, and starts one worker per service (none when cfg has no
 * [service] section). cfg and st are borrowed and must outlive the scaler.
 * Returns 0 and *out, or -1 with the first error ("FILE:LINE: [service
 * NAME] key: ...", or the engine option at fault) in err and nothing
 * started. */
int scaler_start(const struct config *cfg, struct store *st, struct scaler **out /* out */,
                 char *err, size_t errlen);

/* Stops the workers (a worker inside an engine call finishes it first, at
 * most docker_timeout) and frees everything. Safe with NULL. */
void scaler_stop(struct scaler *s);

/* Status of every service for GET /api/v1/services and /metrics: a new
 * reference to an array of objects with "service", "target", "mode",
 * "min_replicas", "max_replicas", "current_replicas", "desired_replicas",
 * "metric", "aggregation", "target_value", "tolerance", "scale_up_above",
 * "scale_down_below", "metric_value", "metric_ts",
 * "forecast" ({model, peak, lower, upper, at} or null), "forecast_upper",
 * "last_decision" ({ts, action, outcome, reason} or null), "last_error",
 * "last_error_ts". Never blocks on the engine or the database (safe on the
 * HTTP loop thread). With s NULL: an empty array. */
json_t *scaler_services_json(struct scaler *s);

#endif
