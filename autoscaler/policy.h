/* Autoscaling policies: one per [service NAME] section of the config file.
 *
 * common/config.c keeps each [service NAME] section as raw key/value pairs
 * with their line numbers; this module owns the vocabulary: it validates
 * every key, fills in the defaults (the Kubernetes HorizontalPodAutoscaler's
 * where one exists; see docs/autoscaler.md) and reports the first problem as
 * "FILE:LINE: [service NAME] key: what is wrong". Unknown keys are errors.
 *
 * A struct policy is plain data (fixed-size strings, no pointers), so it can
 * be copied freely between threads. */
#ifndef SCALECAST_POLICY_H
#define SCALECAST_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Longest name, label or glob kept (longer values are a config error). */
#define POLICY_STR_MAX 256

/* What a policy scales: `target = swarm:NAME | containers:LABEL=VALUE | none`. */
enum policy_target_kind {
    POLICY_TARGET_NONE = 0,   /* advisory: decisions computed and stored, nothing acted on */
    POLICY_TARGET_SWARM,      /* the Swarm service `service` */
    POLICY_TARGET_CONTAINERS, /* plain containers carrying label `label` = `value` */
};

struct policy_target {
    enum policy_target_kind kind;
    char service[POLICY_STR_MAX]; /* SWARM: the service name; "" otherwise */
    char label[POLICY_STR_MAX];   /* CONTAINERS: the label key; "" otherwise */
    char value[POLICY_STR_MAX];   /* CONTAINERS: the label value; "" otherwise */
};

/* Parses a `target` value. Returns 0 with *out filled, or -EINVAL with a
 * sentence saying what is wrong in why (no file/line; the caller adds them),
 * leaving *out zeroed. */
int policy_parse_target(const char *s, struct policy_target *out /* out */, char *why,
                        size_t whylen);

/* Writes the target back in its config syntax ("swarm:web",
 * "containers:app=web", "none"). Returns buf. */
char *policy_target_str(const struct policy_target *t, char *buf, size_t len);

/* How decisions are carried out. A policy with target = none is ADVISORY. */
enum policy_mode { POLICY_ENFORCE = 0, POLICY_DRY_RUN, POLICY_ADVISORY };

/* "enforce", "dry-run", "advisory" (the words the decision log uses). */
const char *policy_mode_name(enum policy_mode m);

/* Which samples drive the policy. */
enum policy_source {
    POLICY_SOURCE_SERVICE = 0, /* per-container samples whose service label is source_match */
    POLICY_SOURCE_NODES,       /* host samples of nodes whose name matches the glob */
};

/* How the samples of all selected series in the window are combined. */
enum policy_agg { POLICY_AGG_AVG = 0, POLICY_AGG_MAX, POLICY_AGG_P95 };

/* "avg", "max", "p95". */
const char *policy_agg_name(enum policy_agg a);

/* With several step limits, which one applies (HPA's selectPolicy). */
enum policy_select {
    POLICY_SELECT_MAX = 0, /* the limit that allows the biggest change (HPA default) */
    POLICY_SELECT_MIN,     /* the limit that allows the smallest change */
};

/* One direction's step limits: at most `replicas` replicas or `percent`% of
 * the replicas at the start of the period may be added (removed) per
 * `period` seconds. A negative value means that limit is off; with both off
 * the direction is unlimited. */
struct policy_step {
    int replicas;
    double percent;
    double period;
};

struct policy {
    char name[POLICY_STR_MAX]; /* the NAME of [service NAME] */
    struct policy_target target;
    enum policy_mode mode;

    /* Samples */
    enum policy_source source;
    char source_match[POLICY_STR_MAX]; /* service label value, or node glob */
    char metric[64];                   /* "cpu", "mem", ... */
    enum policy_agg aggregation;
    double window;      /* seconds of samples aggregated */
    double stale_after; /* newest sample older than this: hold */

    /* The HPA rule: desired = ceil(ready * value / target_utilization). */
    bool has_target;
    double target_utilization;
    double tolerance; /* no change while |value/target - 1| <= tolerance */

    /* Threshold rules: one replica more (fewer) after the value stayed above
     * (below) for the sustained time. */
    bool has_up_threshold;
    double scale_up_above, scale_up_for;
    bool has_down_threshold;
    double scale_down_below, scale_down_for;

    int min_replicas, max_replicas;
    struct policy_step step_up, step_down;
    enum policy_select step_select;
    double scale_up_cooldown;        /* seconds after a scale-up before the next one */
    double scale_down_cooldown;      /* seconds after any scaling before a scale-down */
    double scale_up_stabilization;   /* lowest recommendation in the window wins */
    double scale_down_stabilization; /* highest recommendation in the window wins */

    /* Forecast of the load (value x replicas) by the predictor. */
    bool forecast;              /* false: forecast = off */
    char forecast_model[16];    /* "auto", "holt", ... (as pred_model_parse reads it) */
    double forecast_horizon;    /* the lead time a new replica needs to be useful */
    double forecast_history;    /* seconds of history given to the predictor */
    double forecast_resolution; /* history averaged into buckets this wide */
    double forecast_confidence; /* two-sided interval level */
    double forecast_period;     /* seasonal period */
};

/* Fills *p with the defaults for a service called `name` (target none). */
void policy_defaults(struct policy *p, const char *name);

/* Validates one raw [service NAME] section (`file` is the config path used
 * in messages; NULL prints "config"). Returns 0 with *out filled, or -EINVAL
 * with "FILE:LINE: [service NAME] key: what is wrong" in err; *out is then
 * unspecified. */
int policy_from_section(const struct config_section *sec, const char *file,
                        struct policy *out /* out */, char *err, size_t errlen);

/* Validates every [service NAME] section of c. Returns 0 with a new array
 * *out of *n policies (caller frees; NULL when there are none), or -EINVAL
 * with the first error in err and *out NULL. */
int policy_load_all(const struct config *c, struct policy **out /* out */, size_t *n /* out */,
                    char *err, size_t errlen);

/* The utilization the backtest counts "time over the scale-up threshold"
 * against: scale_up_above when set, else target_utilization * (1 + tolerance),
 * the point where the HPA rule starts adding replicas. */
double policy_up_threshold(const struct policy *p);

/* The utilization the upper bound of the forecast peak is held under: the
 * scale-up threshold (policy_up_threshold), the level at which the reactive
 * rules would have to act. */
double policy_forecast_level(const struct policy *p);

/* Unit printed after the metric's values in reasons: "%" for cpu and mem,
 * "" otherwise. */
const char *policy_unit(const struct policy *p);

#endif
