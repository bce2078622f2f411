/* Autoscaling policies: validation of [service NAME] sections. */
#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "predictor.h"
#include "xalloc.h"

const char *policy_mode_name(enum policy_mode m)
{
    switch (m) {
    case POLICY_ENFORCE:
        return "enforce";
    case POLICY_DRY_RUN:
        return "dry-run";
    case POLICY_ADVISORY:
        return "advisory";
    }
    return "?";
}

const char *policy_agg_name(enum policy_agg a)
{
    switch (a) {
    case POLICY_AGG_AVG:
        return "avg";
    case POLICY_AGG_MAX:
        return "max";
    case POLICY_AGG_P95:
        return "p95";
    }
    return "?";
}

void policy_defaults(struct policy *p, const char *name)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->target.kind = POLICY_TARGET_NONE;
    p->mode = POLICY_ADVISORY;
    p->source = POLICY_SOURCE_SERVICE;
    snprintf(p->source_match, sizeof p->source_match, "%s", name);
    snprintf(p->metric, sizeof p->metric, "cpu");
    p->aggregation = POLICY_AGG_AVG;
    p->window = 60;
    p->stale_after = 60;
    /* HPA: autoscaling/v1 targets 80% CPU when nothing else is said. */
    p->has_target = true;
    p->target_utilization = 80;
    p->tolerance = 0.1; /* --horizontal-pod-autoscaler-tolerance */
    p->scale_up_for = 60;
    p->scale_down_for = 300;
    p->min_replicas = 1; /* minReplicas */
    p->max_replicas = 0; /* required, as maxReplicas is */
    /* HPA default behavior: up max(4 pods, 100%) per 15 s, down 100% per 15 s. */
    p->step_up = (struct policy_step){.replicas = 4, .percent = 100, .period = 15};
    p->step_down = (struct policy_step){.replicas = -1, .percent = 100, .period = 15};
    p->step_select = POLICY_SELECT_MAX;
    p->scale_up_cooldown = 0;
    p->scale_down_cooldown = 0;
    p->scale_up_stabilization = 0;     /* behavior.scaleUp.stabilizationWindowSeconds */
    p->scale_down_stabilization = 300; /* behavior.scaleDown.stabilizationWindowSeconds */
    p->forecast = true;
    snprintf(p->forecast_model, sizeof p->forecast_model, "auto");
    p->forecast_horizon = 300;
    p->forecast_history = 3 * 86400.0;
    p->forecast_resolution = 60;
    p->forecast_confidence = 0.8;
    p->forecast_period = 86400;
}

double policy_up_threshold(const struct policy *p)
{
    if (p->has_up_threshold)
        return p->scale_up_above;
    return p->target_utilization * (1 + p->tolerance);
}

double policy_forecast_level(const struct policy *p)
{
    return policy_up_threshold(p);
}

const char *policy_unit(const struct policy *p)
{
    return strcmp(p->metric, "cpu") == 0 || strcmp(p->metric, "mem") == 0 ? "%" : "";
}

/* ---- target -------------------------------------------------------------- */

/* Docker object names: a letter or digit, then letters, digits, '_', '.', '-'. */
static bool docker_name_ok(const char *s)
{
    if (!isalnum((unsigned char)s[0]))
        return false;
    for (const char *c = s; *c; c++) {
        if (!isalnum((unsigned char)*c) && !strchr("_.-", *c))
            return false;
    }
    return true;
}

/* Printable ASCII without blanks: labels go into engine filters as JSON,
 * which must be valid UTF-8. */
static bool printable(const char *s)
{
    for (const char *c = s; *c; c++) {
        if ((unsigned char)*c < 0x21 || (unsigned char)*c >= 0x7f)
            return false;
    }
    return true;
}

int policy_parse_target(const char *s, struct policy_target *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    if (strcmp(s, "none") == 0)
        return 0;
    if (strncmp(s, "swarm:", 6) == 0) {
        const char *name = s + 6;
        if (!name[0] || strlen(name) >= POLICY_STR_MAX || !docker_name_ok(name)) {
            snprintf(why, whylen,
                     "'%s': a Swarm service name is a letter or digit followed by letters, "
                     "digits, '_', '.' or '-'",
                     s);
            return -EINVAL;
        }
        out->kind = POLICY_TARGET_SWARM;
        snprintf(out->service, sizeof out->service, "%s", name);
        return 0;
    }
    if (strncmp(s, "containers:", 11) == 0) {
        const char *sel = s + 11;
        const char *eq = strchr(sel, '=');
        size_t klen = eq ? (size_t)(eq - sel) : 0;
        if (!eq || klen == 0 || !eq[1] || klen >= POLICY_STR_MAX ||
            strlen(eq + 1) >= POLICY_STR_MAX || !printable(sel)) {
            snprintf(why, whylen,
                     "'%s': expected containers:LABEL=VALUE with a non-empty label and value "
                     "and no blanks",
                     s);
            return -EINVAL;
        }
        out->kind = POLICY_TARGET_CONTAINERS;
        memcpy(out->label, sel, klen);
        out->label[klen] = '\0';
        snprintf(out->value, sizeof out->value, "%s", eq + 1);
        return 0;
    }
    snprintf(why, whylen, "'%s': expected swarm:NAME, containers:LABEL=VALUE or none", s);
    return -EINVAL;
}

char *policy_target_str(const struct policy_target *t, char *buf, size_t len)
{
    switch (t->kind) {
    case POLICY_TARGET_SWARM:
        snprintf(buf, len, "swarm:%s", t->service);
        break;
    case POLICY_TARGET_CONTAINERS:
        snprintf(buf, len, "containers:%s=%s", t->label, t->value);
        break;
    default:
        snprintf(buf, len, "none");
        break;
    }
    return buf;
}

/* ---- value parsers -------------------------------------------------------- */

/* Each setter parses `v` into the policy, or returns -1 with what was
 * expected in why. */
typedef int (*setter_fn)(struct policy *p, const char *v, char *why, size_t whylen);

static bool is_off(const char *v)
{
    return strcmp(v, "off") == 0 || strcmp(v, "none") == 0;
}

/* A number with an optional trailing '%' (stripped). */
static int parse_number(const char *v, double *out, bool *had_pct)
{
    char buf[64];
    size_t len = strlen(v);
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, v, len + 1);
    *had_pct = false;
    if (buf[len - 1] == '%') {
        buf[len - 1] = '\0';
        *had_pct = true;
    }
    return config_parse_double(buf, out);
}

/* A metric level (utilization, in the metric's own unit): positive. */
static int parse_level(const char *v, double *out, char *why, size_t whylen)
{
    bool pct;
    if (parse_number(v, out, &pct) < 0 || *out <= 0) {
        snprintf(why, whylen, "'%s': expected a positive number such as 80 or 80%%", v);
        return -1;
    }
    return 0;
}

/* A fraction given as 0.1 or 10%; in [lo, hi] (open ends when *_open). */
static int parse_fraction(const char *v, double lo, double hi, bool lo_open, bool hi_open,
                          double *out, char *why, size_t whylen)
{
    bool pct;
    double x;
    if (parse_number(v, &x, &pct) == 0) {
        if (pct)
            x /= 100;
        bool ok = (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
        if (ok) {
            *out = x;
            return 0;
        }
    }
    snprintf(why, whylen, "'%s': expected a fraction %s%g..%g%s such as 0.1 or 10%%", v,
             lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
    return -1;
}

static int parse_dur(const char *v, double *out, bool allow_zero, char *why, size_t whylen)
{
    double d;
    if (config_parse_duration(v, &d) < 0 || (!allow_zero && d <= 0)) {
        snprintf(why, whylen, "'%s': expected a %sduration such as 30s, 5m or 1h", v,
                 allow_zero ? "" : "positive ");
        return -1;
    }
    *out = d;
    return 0;
}

static int parse_replicas(const char *v, long lo, int *out, char *why, size_t whylen)
{
    long n;
    if (config_parse_int(v, lo, 100000, &n) < 0) {
        snprintf(why, whylen, "'%s': expected a whole number of replicas %ld..100000", v, lo);
        return -1;
    }
    *out = (int)n;
    return 0;
}

/* ---- setters, one per key -------------------------------------------------- */

static int set_target(struct policy *p, const char *v, char *why, size_t whylen)
{
    return policy_parse_target(v, &p->target, why, whylen) < 0 ? -1 : 0;
}

static int set_mode(struct policy *p, const char *v, char *why, size_t whylen)
{
    if (strcmp(v, "enforce") == 0)
        p->mode = POLICY_ENFORCE;
    else if (strcmp(v, "dry-run") == 0)
        p->mode = POLICY_DRY_RUN;
    else {
        snprintf(why, whylen, "'%s': expected enforce or dry-run", v);
        return -1;
    }
    return 0;
}

static int set_source(struct policy *p, const char *v, char *why, size_t whylen)
{
    if (strcmp(v, "service") == 0) {
        p->source = POLICY_SOURCE_SERVICE;
        snprintf(p->source_match, sizeof p->source_match, "%s", p->name);
        return 0;
    }
    const char *arg = NULL;
    if (strncmp(v, "service:", 8) == 0) {
        p->source = POLICY_SOURCE_SERVICE;
        arg = v + 8;
    } else if (strncmp(v, "nodes:", 6) == 0) {
        p->source = POLICY_SOURCE_NODES;
        arg = v + 6;
    }
    if (!arg || !arg[0] || strlen(arg) >= sizeof p->source_match || !printable(arg)) {
        snprintf(why, whylen, "'%s': expected service, service:NAME or nodes:GLOB", v);
        return -1;
    }
    snprintf(p->source_match, sizeof p->source_match, "%s", arg);
    return 0;
}

static int set_metric(struct policy *p, const char *v, char *why, size_t whylen)
{
    size_t len = strlen(v);
    bool ok = len > 0 && len < sizeof p->metric;
    for (const char *c = v; ok && *c; c++)
        ok = isalnum((unsigned char)*c) || strchr("_.-", *c);
    if (!ok) {
        snprintf(why, whylen, "'%s': expected a metric name such as cpu or mem", v);
        return -1;
    }
    snprintf(p->metric, sizeof p->metric, "%s", v);
    return 0;
}

static int set_aggregation(struct policy *p, const char *v, char *why, size_t whylen)
{
    static const enum policy_agg all[] = {POLICY_AGG_AVG, POLICY_AGG_MAX, POLICY_AGG_P95};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(v, policy_agg_name(all[i])) == 0) {
            p->aggregation = all[i];
            return 0;
        }
    }
    snprintf(why, whylen, "'%s': expected avg, max or p95", v);
    return -1;
}

static int set_window(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_dur(v, &p->window, false, why, whylen);
}

static int set_stale_after(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_dur(v, &p->stale_after, false, why, whylen);
}

static int set_target_utilization(struct policy *p, const char *v, char *why, size_t whylen)
{
    if (is_off(v)) {
        p->has_target = false;
        return 0;
    }
    p->has_target = true;
    return parse_level(v, &p->target_utilization, why, whylen);
}

static int set_tolerance(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_fraction(v, 0, 1, false, true, &p->tolerance, why, whylen);
}

static int set_scale_up_above(struct policy *p, const char *v, char *why, size_t whylen)
{
    p->has_up_threshold = !is_off(v);
    return p->has_up_threshold ? parse_level(v, &p->scale_up_above, why, whylen) : 0;
}

static int set_scale_up_for(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_dur(v, &p->scale_up_for, true, why, whylen);
}

static int set_scale_down_below(struct policy *p, const char *v, char *why, size_t whylen)
{
    p->has_down_threshold = !is_off(v);
    return p->has_down_threshold ? parse_level(v, &p->scale_down_below, why, whylen) : 0;
}

static int set_scale_down_for(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_dur(v, &p->scale_down_for, true, why, whylen);
}

static int set_min_replicas(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_replicas(v, 1, &p->min_replicas, why, whylen);
}

static int set_max_replicas(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_replicas(v, 1, &p->max_replicas, why, whylen);
}

static int set_step_replicas(int *field, const char *v, char *why, size_t whylen)
{
    if (is_off(v)) {
        *field = -1;
        return 0;
    }
    if (parse_replicas(v, 1, field, why, whylen) < 0) {
        snprintf(why, whylen, "'%s': expected a whole number of replicas 1..100000 or off", v);
        return -1;
    }
    return 0;
}

static int set_step_percent(double *field, const char *v, char *why, size_t whylen)
{
    bool pct;
    double x;
    if (is_off(v)) {
        *field = -1;
        return 0;
    }
    if (parse_number(v, &x, &pct) < 0 || x <= 0 || x > 10000) {
        snprintf(why, whylen, "'%s': expected a percentage such as 100 or 50%% (or off)", v);
        return -1;
    }
    *field = x;
    return 0;
}

static int set_max_step_up(struct policy *p, const char *v, char *why, size_t whylen)
{
    return set_step_replicas(&p->step_up.replicas, v, why, whylen);
}

static int set_max_step_up_percent(struct policy *p, const char *v, char *why, size_t whylen)
{
    return set_step_percent(&p->step_up.percent, v, why, whylen);
}

static int set_step_up_period(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_dur(v, &p->step_up.period, false, why, whylen);
}

static int set_max_step_down(struct policy *p, const char *v, char *why, size_t whylen)
{
    return set_step_replicas(&p->step_down.replicas, v, why, whylen);
}

static int set_max_step_down_percent(struct policy *p, const char *v, char *why, size_t whylen)
{
    if (set_step_percent(&p->step_down.percent, v, why, whylen) < 0)
        return -1;
    if (p->step_down.percent > 100) {
        snprintf(why, whylen, "'%s': cannot remove more than 100%% of the replicas", v);
        return -1;
    }
    return 0;
}

static int set_step_down_period(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_dur(v, &p->step_down.period, false, why, whylen);
}

static int set_step_select(struct policy *p, const char *v, char *why, size_t whylen)
{
    if (strcmp(v, "max") == 0)
        p->step_select = POLICY_SELECT_MAX;
    else if (strcmp(v, "min") == 0)
        p->step_select = POLICY_SELECT_MIN;
    else {
        snprintf(why, whylen, "'%s': expected max or min", v);
        return -1;
    }
    return 0;
}

static int set_scale_up_cooldown(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_dur(v, &p->scale_up_cooldown, true, why, whylen);
}

static int set_scale_down_cooldown(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_dur(v, &p->scale_down_cooldown, true, why, whylen);
}

static int set_scale_up_stabilization(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_dur(v, &p->scale_up_stabilization, true, why, whylen);
}

static int set_scale_down_stabilization(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_dur(v, &p->scale_down_stabilization, true, why, whylen);
}

static int set_forecast(struct policy *p, const char *v, char *why, size_t whylen)
{
    enum pred_model m;
    if (strcmp(v, "off") == 0) {
        p->forecast = false;
        return 0;
    }
    if (pred_model_parse(v, &m) < 0) {
        /* The predictor's own list, so a model it adds is offered here. */
        char list[160] = "off, auto";
        for (int k = 0; k < PRED_NCONCRETE; k++) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, ", %s", pred_model_name((enum pred_model)k));
        }
        snprintf(why, whylen, "'%s': expected %s", v, list);
        return -1;
    }
    p->forecast = true;
    snprintf(p->forecast_model, sizeof p->forecast_model, "%s", pred_model_name(m));
    return 0;
}

static int set_forecast_horizon(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_dur(v, &p->forecast_horizon, false, why, whylen);
}

static int set_forecast_history(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_dur(v, &p->forecast_history, false, why, whylen);
}

static int set_forecast_resolution(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_dur(v, &p->forecast_resolution, false, why, whylen);
}

static int set_forecast_confidence(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_fraction(v, 0, 1, true, true, &p->forecast_confidence, why, whylen);
}

static int set_forecast_period(struct policy *p, const char *v, char *why, size_t whylen)
{
    return parse_dur(v, &p->forecast_period, false, why, whylen);
}

struct key_spec {
    const char *key;
    setter_fn set;
};

/* The whole vocabulary of a [service NAME] section (docs: config/scalecast.conf). */
static const struct key_spec keys[] = {
    {"target", set_target},
    {"mode", set_mode},
    {"source", set_source},
    {"metric", set_metric},
    {"aggregation", set_aggregation},
    {"window", set_window},
    {"stale_after", set_stale_after},
    {"target_utilization", set_target_utilization},
    {"tolerance", set_tolerance},
    {"scale_up_above", set_scale_up_above},
    {"scale_up_for", set_scale_up_for},
    {"scale_down_below", set_scale_down_below},
    {"scale_down_for", set_scale_down_for},
    {"min_replicas", set_min_replicas},
    {"max_replicas", set_max_replicas},
    {"max_step_up", set_max_step_up},
    {"max_step_up_percent", set_max_step_up_percent},
    {"step_up_period", set_step_up_period},
    {"max_step_down", set_max_step_down},
    {"max_step_down_percent", set_max_step_down_percent},
    {"step_down_period", set_step_down_period},
    {"step_select", set_step_select},
    {"scale_up_cooldown", set_scale_up_cooldown},
    {"scale_down_cooldown", set_scale_down_cooldown},
    {"scale_up_stabilization", set_scale_up_stabilization},
    {"scale_down_stabilization", set_scale_down_stabilization},
    {"forecast", set_forecast},
    {"forecast_horizon", set_forecast_horizon},
    {"forecast_history", set_forecast_history},
    {"forecast_resolution", set_forecast_resolution},
    {"forecast_confidence", set_forecast_confidence},
    {"forecast_period", set_forecast_period},
};

#define NKEYS (sizeof keys / sizeof keys[0])

/* ---- the section as a whole ------------------------------------------------ */

struct ctx {
    const struct config_section *sec;
    const char *file;
    int line_of[NKEYS]; /* 0: key not given */
    char *err;
    size_t errlen;
};

static int key_index(const char *key)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(keys[i].key, key) == 0)
            return (int)i;
    }
    return -1;
}

/* Formats "FILE:LINE: [service NAME] key: ..." at the key's line (or the
 * section's when the key was not given) and returns -EINVAL. */
__attribute__((format(printf, 3, 4))) static int fail(struct ctx *c, const char *key,
                                                      const char *fmt, ...)
{
    int idx = key_index(key);
    int line = idx >= 0 && c->line_of[idx] ? c->line_of[idx] : c->sec->line;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s:%d: [service %s] %s: %s", c->file, line, c->sec->name, key,
             what);
    return -EINVAL;
}

static bool given(const struct ctx *c, const char *key)
{
    return c->line_of[key_index(key)] != 0;
}

/* Models that cannot forecast before two periods of history. */
static bool needs_two_periods(const char *model)
{
    return strcmp(model, "seasonal") == 0 || strcmp(model, "snaive") == 0;
}

/* Checks between keys, once every key has been read. */
static int check_rules(struct ctx *c, const struct policy *p)
{
    if (!given(c, "target"))
        return fail(c, "target", "required: swarm:NAME, containers:LABEL=VALUE or none");
    if (!given(c, "max_replicas"))
        return fail(c, "max_replicas", "required: the most replicas the policy may ask for");
    if (p->target.kind == POLICY_TARGET_NONE && given(c, "mode"))
        return fail(c, "mode", "has no effect with target = none (decisions are advisory)");
    if (p->min_replicas > p->max_replicas)
        return fail(c, "min_replicas", "%d is above max_replicas %d", p->min_replicas,
                    p->max_replicas);
    if (!p->has_target && !p->has_up_threshold)
        return fail(c, "target_utilization",
                    "off and no scale_up_above: no rule could ever add replicas");
    if (given(c, "scale_up_for") && !p->has_up_threshold)
        return fail(c, "scale_up_for", "needs scale_up_above");
    if (given(c, "scale_down_for") && !p->has_down_threshold)
        return fail(c, "scale_down_for", "needs scale_down_below");
    if (p->has_up_threshold && p->has_down_threshold && p->scale_down_below >= p->scale_up_above)
        return fail(c, "scale_down_below", "%g must be below scale_up_above %g",
                    p->scale_down_below, p->scale_up_above);
    if (p->has_target && p->has_down_threshold && p->scale_down_below >= p->target_utilization)
        return fail(c, "scale_down_below", "%g must be below target_utilization %g",
                    p->scale_down_below, p->target_utilization);
    if (p->forecast_history < p->forecast_horizon)
        return fail(c, "forecast_history", "%g s is shorter than forecast_horizon %g s",
                    p->forecast_history, p->forecast_horizon);
    if (p->forecast_history < 4 * p->forecast_resolution)
        return fail(c, "forecast_resolution", "%g s leaves fewer than 4 points in %g s of history",
                    p->forecast_resolution, p->forecast_history);
    if (p->forecast && needs_two_periods(p->forecast_model) &&
        p->forecast_history < 2 * p->forecast_period)
        return fail(c, "forecast_history",
                    "%g s is less than the two periods (2 x %g s) the %s model needs",
                    p->forecast_history, p->forecast_period, p->forecast_model);
    return 0;
}

int policy_from_section(const struct config_section *sec, const char *file, struct policy *out,
                        char *err, size_t errlen)
{
    struct ctx c = {.sec = sec, .file = file ? file : "config", .err = err, .errlen = errlen};
    policy_defaults(out, sec->name);
    out->mode = POLICY_ENFORCE;
    for (size_t i = 0; i < sec->nkv; i++) {
        const struct config_kv *kv = &sec->kv[i];
        int idx = key_index(kv->key);
        if (idx < 0) {
            snprintf(err, errlen, "%s:%d: [service %s] %s: unknown key", c.file, kv->line,
                     sec->name, kv->key);
            return -EINVAL;
        }
        c.line_of[idx] = kv->line;
        char why[384];
        if (keys[idx].set(out, kv->value, why, sizeof why) < 0)
            return fail(&c, kv->key, "%s", why);
    }
    if (out->target.kind == POLICY_TARGET_NONE)
        out->mode = POLICY_ADVISORY;
    return check_rules(&c, out);
}

int policy_load_all(const struct config *c, struct policy **out, size_t *n, char *err,
                    size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (c->nservices == 0)
        return 0;
    struct policy *all = xcalloc(c->nservices, sizeof *all);
    for (size_t i = 0; i < c->nservices; i++) {
        int rc = policy_from_section(&c->services[i], c->path, &all[i], err, errlen);
        if (rc < 0) {
            free(all);
            return rc;
        }
    }
    *out = all;
    *n = c->nservices;
    return 0;
}
