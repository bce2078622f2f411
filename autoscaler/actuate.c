/* Acting on a Docker engine: counting and scaling Swarm services and
 * labelled plain containers. */
#include "actuate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

/* IDs from the engine go into request paths: only 1-64 letters and digits
 * (a hostile or broken engine must not steer a write elsewhere). */
static bool engine_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = id; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return false;
    }
    return true;
}

/* Label put on every container scalecast creates: the source's short ID. */
#define CLONE_LABEL "io.scalecast.clone-of"
#define SHORT_ID 12

/* One call's context: the target, the options and where errors go. */
struct ctx {
    struct docker *d;
    const struct policy_target *t;
    const struct actuate_opts *o;
    struct actuate_result *res;
    char what[POLICY_STR_MAX * 2 + 32]; /* "swarm service 'web'" for messages */
    char err[DOCKER_ERR_MAX];           /* copied to the caller's at the end */
};

/* A container the target selects, as the list and inspect show it. */
struct member {
    const char *id;    /* borrowed from the list reply */
    const char *state; /* borrowed */
    int replica;       /* running or restarting */
    int leftover;      /* a clone of ours created but never started */
    char created[40];  /* inspect's Created, fraction padded to 9 digits */
    json_t *inspect;   /* new reference, or NULL until inspected */
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void append(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strnlen(buf, len);
    if (used + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

static int ctx_init(struct ctx *c, struct docker *d, const struct policy_target *t,
                    const struct actuate_opts *o, struct actuate_result *res)
{
    c->d = d;
    c->t = t;
    c->o = o;
    c->res = res;
    c->err[0] = '\0';
    switch (t->kind) {
    case POLICY_TARGET_SWARM:
        snprintf(c->what, sizeof c->what, "swarm service '%s'", t->service);
        return 0;
    case POLICY_TARGET_CONTAINERS:
        snprintf(c->what, sizeof c->what, "containers labelled %s=%s", t->label, t->value);
        return 0;
    default:
        seterr(c->err, sizeof c->err,
               "target none is advisory: there is nothing to count or scale");
        return -EINVAL;
    }
}

/* docker_request with the target named in the message. With dry_run only
 * reads get through: a second guard behind the code paths that plan. */
static int call(struct ctx *c, const char *method, const char *path, const json_t *body,
                double timeout, json_t **reply)
{
    char why[DOCKER_ERR_MAX];
    if (c->o && c->o->dry_run && strcmp(method, "GET") != 0) {
        seterr(c->err, sizeof c->err, "%s: dry-run refused to send %s %s", c->what, method, path);
        return -EPERM;
    }
    int rc = docker_request(c->d, method, path, body, timeout, reply, why, sizeof why);
    if (rc < 0)
        seterr(c->err, sizeof c->err, "%s: %s", c->what, why);
    return rc;
}

static int fail(struct ctx *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct ctx *c, int rc, const char *fmt, ...)
{
    char msg[DOCKER_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    seterr(c->err, sizeof c->err, "%s: %s", c->what, msg);
    return rc;
}

/* ---- Swarm ---------------------------------------------------------------- */

/* Inspects the service. On success *svc is a new reference and *replicas
 * points into it (Spec.Mode.Replicated.Replicas). */
static int swarm_inspect(struct ctx *c, json_t **svc, const char **id, long *version, int *replicas)
{
    char *name = docker_escape(c->t->service);
    size_t n = strlen(name) + 16;
    char *path = xmalloc(n);
    snprintf(path, n, "/services/%s", name);
    int rc = call(c, "GET", path, NULL, 0, svc);
    free(path);
    free(name);
    if (rc < 0)
        return rc;

    json_t *spec = json_object_get(*svc, "Spec");
    const char *sid = json_string_value(json_object_get(*svc, "ID"));
    const char *sname = json_string_value(json_object_get(spec, "Name"));
    json_t *ver = json_object_get(json_object_get(*svc, "Version"), "Index");
    json_t *mode = json_object_get(spec, "Mode");
    json_t *rep = json_object_get(json_object_get(mode, "Replicated"), "Replicas");
    if (!sid || !sname || !json_is_integer(ver)) {
        rc = fail(c, -EPROTO, "the engine's inspect answer lacks ID, Spec.Name or Version");
        goto fail;
    }
    /* The engine also resolves ID prefixes; never act on a service whose
     * name or ID the target did not spell. */
    if (strcmp(sname, c->t->service) != 0 &&
        strncmp(sid, c->t->service, strlen(c->t->service)) != 0) {
        rc = fail(c, -ENOENT, "the engine resolved it to service '%s' (%.12s); not touching it",
                  sname, sid);
        goto fail;
    }
    if (!json_is_integer(rep)) {
        rc = fail(c, -EINVAL, "service %s is not in replicated mode (%s); it cannot be scaled",
                  sname, json_object_get(mode, "Global") ? "global" : "no replica count");
        goto fail;
    }
    if (!engine_id_ok(sid) || json_integer_value(rep) < 0 || json_integer_value(rep) > 1000000) {
        rc = fail(c, -EPROTO, "the engine's answer has an odd service ID or replica count");
        goto fail;
    }
    *id = sid;
    *version = (long)json_integer_value(ver);
    *replicas = (int)json_integer_value(rep);
    return 0;
fail:
    json_decref(*svc);
    *svc = NULL;
    return rc;
}

static int is_out_of_sequence(int rc, const char *err)
{
    return rc == -EIO && strstr(err, "out of sequence") != NULL;
}

static void log_warnings(struct ctx *c, json_t *reply)
{
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(reply, "Warnings"), i, w)
    {
        if (json_string_value(w))
            log_warn("actuate", "%s: engine warning: %s", c->what, json_string_value(w));
    }
}

static int swarm_post(struct ctx *c, json_t *svc, const char *id, long version, int replicas)
{
    json_t *spec = json_object_get(svc, "Spec");
    json_t *rep = json_object_get(json_object_get(spec, "Mode"), "Replicated");
    json_t *reply = NULL;
    char path[160];

    /* The whole spec goes back: the update endpoint replaces it, so a
     * partial spec would reset everything we left out. */
    json_object_set_new(rep, "Replicas", json_integer(replicas));
    snprintf(path, sizeof path, "/services/%.64s/update?version=%ld", id, version);
    int rc = call(c, "POST", path, spec, 0, &reply);
    if (rc == 0)
        log_warnings(c, reply);
    json_decref(reply);
    return rc;
}

static int swarm_scale(struct ctx *c, int replicas)
{
    int attempts = c->o->max_attempts > 0 ? c->o->max_attempts : 5;
    for (int i = 1;; i++) {
        json_t *svc = NULL;
        const char *id;
        long version;
        int have;
        int rc = swarm_inspect(c, &svc, &id, &version, &have);
        if (rc < 0)
            return rc;
        if (c->res->before < 0)
            c->res->before = have;
        c->res->after = have;
        if (have == replicas) {
            snprintf(c->res->detail, sizeof c->res->detail, "%s already has %d replicas", c->what,
                     have);
            json_decref(svc);
            return 0;
        }
        if (c->o->dry_run) {
            snprintf(c->res->detail, sizeof c->res->detail,
                     "dry-run: would update %s (%.12s) replicas %d -> %d", c->what, id, have,
                     replicas);
            c->res->after = replicas;
            json_decref(svc);
            return 0;
        }
        if (c->o->after_inspect)
            c->o->after_inspect(c->o->hook_arg, id, version);
        c->res->attempts++;
        rc = swarm_post(c, svc, id, version, replicas);
        if (rc == 0) {
            snprintf(c->res->detail, sizeof c->res->detail, "updated %s (%.12s) replicas %d -> %d",
                     c->what, id, have, replicas);
            if (i > 1)
                append(c->res->detail, sizeof c->res->detail, " (attempt %d)", i);
            c->res->after = replicas;
        }
        json_decref(svc);
        if (rc == 0 || !is_out_of_sequence(rc, c->err) || i >= attempts)
            return rc;
        log_info("actuate", "%s changed while we scaled it (update out of sequence); retrying",
                 c->what);
    }
}

/* ---- plain containers ----------------------------------------------------- */

static int selected(const struct policy_target *t, json_t *labels)
{
    const char *v = json_string_value(json_object_get(labels, t->label));
    return v && strcmp(v, t->value) == 0;
}

/* Lists every container carrying the label, in any state. *list is a new
 * reference that the members borrow from. */
static int list_members(struct ctx *c, json_t **list, struct member **out, size_t *n)
{
    size_t cap = 0, i;
    char sel[POLICY_STR_MAX * 2 + 2];
    snprintf(sel, sizeof sel, "%s=%s", c->t->label, c->t->value);
    json_t *filter = json_pack("{s:[s]}", "label", sel);
    char *fs = filter ? json_dumps(filter, JSON_COMPACT) : NULL;
    if (!fs) {
        json_decref(filter);
        return fail(c, -EINVAL, "label selector %s cannot be encoded (not UTF-8)", sel);
    }
    char *esc = docker_escape(fs);
    size_t plen = strlen(esc) + 40;
    char *path = xmalloc(plen);
    json_t *ct;

    snprintf(path, plen, "/containers/json?all=1&filters=%s", esc);
    int rc = call(c, "GET", path, NULL, 0, list);
    free(path);
    free(esc);
    free(fs);
    json_decref(filter);
    *out = NULL;
    *n = 0;
    if (rc < 0)
        return rc;
    if (!json_is_array(*list)) {
        json_decref(*list);
        *list = NULL;
        return fail(c, -EPROTO, "the container list is not an array");
    }
    json_array_foreach(*list, i, ct)
    {
        const char *id = json_string_value(json_object_get(ct, "Id"));
        const char *state = json_string_value(json_object_get(ct, "State"));
        json_t *labels = json_object_get(ct, "Labels");
        /* The engine filtered already; check again so that a filter quirk
         * can never make us touch a container the target does not select. */
        if (!id || !state || strlen(id) < SHORT_ID || !engine_id_ok(id) || !selected(c->t, labels))
            continue;
        *out = xgrow(*out, &cap, *n + 1, sizeof **out);
        struct member *m = &(*out)[(*n)++];
        memset(m, 0, sizeof *m);
        m->id = id;
        m->state = state;
        m->replica = strcmp(state, "running") == 0 || strcmp(state, "restarting") == 0;
        /* A clone of ours that is not running (never started, or stopped by
         * an engine crash) is restarted before any new clone is made, so a
         * crash cannot leave extra containers behind each time. */
        m->leftover = (strcmp(state, "created") == 0 || strcmp(state, "exited") == 0) &&
                      json_object_get(labels, CLONE_LABEL);
    }
    return 0;
}

static void free_members(struct member *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(m[i].inspect);
    free(m);
}

static int count_replicas(const struct member *m, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += m[i].replica;
    return k;
}

/* "2026-11-21T08:44:12.4969Z" -> "2026-11-21T08:44:12.496900000Z": with the
 * fraction padded, RFC 3339 UTC times order as strings. */
static void normalize_time(const char *s, char *out, size_t len)
{
    const char *dot = strchr(s, '.');
    size_t digits = dot ? strspn(dot + 1, "0123456789") : 0;
    size_t head = dot ? (size_t)(dot - s) : strcspn(s, "Z");
    snprintf(out, len, "%.*s.%.*s%.*sZ", (int)head, s, (int)(digits > 9 ? 9 : digits),
             dot ? dot + 1 : "", (int)(digits >= 9 ? 0 : 9 - digits), "000000000");
}

static int inspect_member(struct ctx *c, struct member *m)
{
    char path[128];
    snprintf(path, sizeof path, "/containers/%.64s/json", m->id);
    int rc = call(c, "GET", path, NULL, 0, &m->inspect);
    if (rc < 0)
        return rc;
    const char *created = json_string_value(json_object_get(m->inspect, "Created"));
    if (!created || !json_is_object(json_object_get(m->inspect, "Config")) ||
        !json_is_object(json_object_get(m->inspect, "HostConfig")))
        return fail(c, -EPROTO, "inspect of %.12s lacks Created, Config or HostConfig", m->id);
    /* Selected when listed; re-check in case its labels were replaced since. */
    if (!selected(c->t, json_object_get(json_object_get(m->inspect, "Config"), "Labels")))
        return fail(c, -EAGAIN, "container %.12s no longer carries the label", m->id);
    normalize_time(created, m->created, sizeof m->created);
    return 0;
}

static int newest_first(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    return -strcmp(x->created, y->created);
}

/* Inspects the members that `want` accepts and sorts those first, newest
 * first, returning how many there are in *k. */
static int order_newest(struct ctx *c, struct member *m, size_t n,
                        int (*want)(const struct member *), size_t *k)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (!want(&m[i]))
            continue;
        struct member tmp = m[j];
        m[j] = m[i];
        m[i] = tmp;
        int rc = inspect_member(c, &m[j]);
        if (rc < 0)
            return rc;
        j++;
    }
    if (j > 1)
        qsort(m, j, sizeof *m, newest_first);
    *k = j;
    return 0;
}

static int want_replica(const struct member *m)
{
    return m->replica;
}

static int want_any(const struct member *m)
{
    (void)m;
    return 1;
}

/* Keeps only the endpoint settings that describe the network membership:
 * aliases (minus the source's own ID, which the engine adds as an alias),
 * links and driver options. IPs, MAC and endpoint IDs belong to the source. */
static json_t *clean_endpoint(json_t *ep, const char *source_id)
{
    json_t *out = json_object(), *aliases = json_array(), *a;
    size_t i;
    json_array_foreach(json_object_get(ep, "Aliases"), i, a)
    {
        const char *s = json_string_value(a);
        size_t n = s ? strlen(s) : 0;
        if (s && !(n >= SHORT_ID && strncmp(s, source_id, n) == 0))
            json_array_append(aliases, a);
    }
    if (json_array_size(aliases))
        json_object_set(out, "Aliases", aliases);
    json_decref(aliases);
    if (json_is_array(json_object_get(ep, "Links")))
        json_object_set(out, "Links", json_object_get(ep, "Links"));
    if (json_is_object(json_object_get(ep, "DriverOpts")))
        json_object_set(out, "DriverOpts", json_object_get(ep, "DriverOpts"));
    return out;
}

/* Port bindings with a fixed host port are dropped (a second container
 * cannot bind it); bindings to an ephemeral port (HostPort "" or "0") stay. */
static void drop_fixed_ports(json_t *hostconfig)
{
    json_t *pb = json_object_get(hostconfig, "PortBindings"), *binds, *b;
    const char *port;
    void *tmp;
    size_t i;
    if (!json_is_object(pb))
        return;
    json_object_foreach_safe(pb, tmp, port, binds)
    {
        json_t *keep = json_array();
        json_array_foreach(binds, i, b)
        {
            const char *hp = json_string_value(json_object_get(b, "HostPort"));
            if (!hp || hp[0] == '\0' || strcmp(hp, "0") == 0)
                json_array_append(keep, b);
        }
        if (json_array_size(keep))
            json_object_set_new(pb, port, keep);
        else {
            json_decref(keep);
            json_object_del(pb, port);
        }
    }
}

/* The network the container was created on: HostConfig.NetworkMode when it
 * names one of its networks ("default" is the bridge), else any. */
static const char *primary_network(json_t *src)
{
    json_t *nets = json_object_get(json_object_get(src, "NetworkSettings"), "Networks");
    const char *mode =
        json_string_value(json_object_get(json_object_get(src, "HostConfig"), "NetworkMode"));
    const char *name;
    json_t *ep;
    if (!json_is_object(nets) || json_object_size(nets) == 0)
        return NULL;
    if (mode && strcmp(mode, "default") == 0)
        mode = "bridge";
    if (mode && json_object_get(nets, mode))
        return mode;
    const char *first = NULL;
    json_object_foreach(nets, name, ep)
    {
        /* --network may have been given as a network ID (or its prefix). */
        const char *nid = json_string_value(json_object_get(ep, "NetworkID"));
        if (mode && nid && mode[0] && strncmp(nid, mode, strlen(mode)) == 0)
            return name;
        if (!first)
            first = name;
    }
    return first;
}

/* The image for the clone: exactly the source's image (by ID), written as
 * the source's image name when that name still points at the same ID. */
static json_t *clone_image(struct ctx *c, json_t *src)
{
    const char *idimg = json_string_value(json_object_get(src, "Image"));
    const char *name = json_string_value(json_object_get(json_object_get(src, "Config"), "Image"));
    json_t *img = NULL;
    if (!idimg)
        return json_string(name ? name : "");
    if (name && name[0] &&
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._-/:@") == strlen(name)) {
        char path[POLICY_STR_MAX + 32];
        char save[DOCKER_ERR_MAX];
        snprintf(path, sizeof path, "/images/%.*s/json", POLICY_STR_MAX, name);
        /* A failure here only costs the readable name: keep err as it was. */
        memcpy(save, c->err, sizeof save);
        int rc = call(c, "GET", path, NULL, 0, &img);
        memcpy(c->err, save, sizeof save);
        const char *id = rc == 0 ? json_string_value(json_object_get(img, "Id")) : NULL;
        int same = id && strcmp(id, idimg) == 0;
        json_decref(img);
        if (same)
            return json_string(name);
    }
    return json_string(idimg);
}

/* Builds the create body for a clone of src; extra networks (beyond the
 * primary) go to *extra as name -> endpoint when the API cannot take them at
 * create time. */
static json_t *clone_body(struct ctx *c, json_t *src, int multi_net, json_t **extra)
{
    const char *sid = json_string_value(json_object_get(src, "Id"));
    json_t *body = json_deep_copy(json_object_get(src, "Config"));
    json_t *hc = json_deep_copy(json_object_get(src, "HostConfig"));
    json_t *labels = json_object_get(body, "Labels");
    json_t *nets = json_object_get(json_object_get(src, "NetworkSettings"), "Networks");
    json_t *eps = json_object(), *ep;
    const char *primary = primary_network(src), *name;
    char shortid[SHORT_ID + 1];

    snprintf(shortid, sizeof shortid, "%.*s", SHORT_ID, sid ? sid : "");
    /* The engine sets Hostname to the short ID unless the user chose one. */
    const char *hn = json_string_value(json_object_get(body, "Hostname"));
    if (hn && strcmp(hn, shortid) == 0)
        json_object_del(body, "Hostname");
    json_object_del(body, "MacAddress");
    json_object_set_new(body, "Image", clone_image(c, src));
    if (!json_is_object(labels)) {
        labels = json_object();
        json_object_set_new(body, "Labels", labels);
    }
    json_object_set_new(labels, CLONE_LABEL, json_string(shortid));

    drop_fixed_ports(hc);
    json_object_del(hc, "ContainerIDFile");
    json_object_set_new(body, "HostConfig", hc);

    *extra = json_object();
    json_object_foreach(nets, name, ep)
    {
        int at_create = multi_net || (primary && strcmp(name, primary) == 0);
        json_object_set_new(at_create ? eps : *extra, name, clean_endpoint(ep, sid ? sid : ""));
    }
    json_object_set_new(body, "NetworkingConfig", json_pack("{s:o}", "EndpointsConfig", eps));
    return body;
}

static void remove_quietly(struct ctx *c, const char *id)
{
    char path[128], save[DOCKER_ERR_MAX];
    snprintf(path, sizeof path, "/containers/%.64s?force=1&v=1", id);
    memcpy(save, c->err, sizeof save);
    if (call(c, "DELETE", path, NULL, 0, NULL) < 0)
        log_warn("actuate", "could not remove half-made clone %.12s: %s", id, c->err);
    memcpy(c->err, save, sizeof save);
}

static int start_container(struct ctx *c, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/containers/%.64s/start", id);
    return call(c, "POST", path, NULL, 0, NULL);
}

static int connect_extra(struct ctx *c, const char *id, json_t *extra)
{
    const char *name;
    json_t *ep;
    json_object_foreach(extra, name, ep)
    {
        char *esc = docker_escape(name);
        size_t n = strlen(esc) + 32;
        char *path = xmalloc(n);
        snprintf(path, n, "/networks/%s/connect", esc);
        json_t *body = json_pack("{s:s,s:O}", "Container", id, "EndpointConfig", ep);
        int rc = call(c, "POST", path, body, 0, NULL);
        json_decref(body);
        free(path);
        free(esc);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Creates, connects and starts one clone. Returns 0 with its ID appended to
 * the detail; a clone that fails after create is removed again if the engine
 * lets us (else it stays as a leftover the next scale-up starts). */
static int create_clone(struct ctx *c, json_t *body, json_t *extra)
{
    json_t *reply = NULL;
    int rc = call(c, "POST", "/containers/create", body, 0, &reply);
    if (rc < 0)
        return rc;
    const char *id = json_string_value(json_object_get(reply, "Id"));
    if (!id || !engine_id_ok(id)) {
        json_decref(reply);
        return fail(c, -EPROTO, "container create answered without a valid Id");
    }
    log_warnings(c, reply);
    rc = connect_extra(c, id, extra);
    if (rc == 0)
        rc = start_container(c, id);
    if (rc < 0)
        remove_quietly(c, id);
    else
        append(c->res->detail, sizeof c->res->detail, " %.12s", id);
    json_decref(reply);
    return rc;
}

static int api_at_least(struct ctx *c, int major, int minor)
{
    char v[16];
    unsigned ma = 0, mi = 0;
    if (docker_api_version(c->d, v, sizeof v, NULL, 0) < 0 || sscanf(v, "%u.%u", &ma, &mi) != 2)
        return 0;
    return ma > (unsigned)major || (ma == (unsigned)major && mi >= (unsigned)minor);
}

static int start_leftovers(struct ctx *c, struct member *m, size_t n, int *need)
{
    for (size_t i = 0; i<n && * need> 0; i++) {
        if (!m[i].leftover)
            continue;
        if (c->o->dry_run) {
            append(c->res->detail, sizeof c->res->detail, " would start leftover %.12s,", m[i].id);
        } else {
            int rc = start_container(c, m[i].id);
            if (rc < 0) {
                /* Ours and never a replica: do not let it block the next try. */
                remove_quietly(c, m[i].id);
                return rc;
            }
            append(c->res->detail, sizeof c->res->detail, " started leftover %.12s,", m[i].id);
        }
        c->res->after++;
        (*need)--;
    }
    return 0;
}

static int containers_up(struct ctx *c, struct member *m, size_t n, int need)
{
    json_t *body = NULL, *extra = NULL;
    size_t k;
    int rc = start_leftovers(c, m, n, &need);
    size_t len = strlen(c->res->detail);
    if (len > 0 && c->res->detail[len - 1] == ',' && (rc < 0 || need == 0))
        c->res->detail[len - 1] = '\0';
    if (rc < 0 || need == 0)
        return rc;
    /* Clone the newest replica; with none running, the newest of any state. */
    rc = order_newest(c, m, n, want_replica, &k);
    if (rc == 0 && k == 0)
        rc = order_newest(c, m, n, want_any, &k);
    if (rc < 0)
        return rc;
    if (k == 0)
        return fail(c, -ENOENT,
                    "no container carries the label, so there is nothing to clone; "
                    "start the first replica by hand");
    body = clone_body(c, m[0].inspect, api_at_least(c, 1, 44), &extra);
    if (c->o->dry_run) {
        append(c->res->detail, sizeof c->res->detail, " would create %d clone(s) of %.12s", need,
               m[0].id);
        c->res->after += need;
        goto out;
    }
    append(c->res->detail, sizeof c->res->detail, " created from %.12s:", m[0].id);
    for (; need > 0; need--) {
        rc = create_clone(c, body, extra);
        if (rc < 0)
            goto out;
        c->res->after++;
    }
out:
    json_decref(body);
    json_decref(extra);
    return rc;
}

static int stop_and_remove(struct ctx *c, const char *id)
{
    int grace = c->o->stop_timeout > 0 ? c->o->stop_timeout : 10;
    char path[128];
    snprintf(path, sizeof path, "/containers/%.64s/stop?t=%d", id, grace);
    /* The engine answers stop only after the grace period at worst. */
    int rc = call(c, "POST", path, NULL, grace + docker_timeout(c->d), NULL);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    snprintf(path, sizeof path, "/containers/%.64s?v=1", id);
    rc = call(c, "DELETE", path, NULL, 0, NULL);
    return rc == -ENOENT ? 0 : rc; /* removed by someone else meanwhile: gone is gone */
}

static int containers_down(struct ctx *c, struct member *m, size_t n, int drop)
{
    size_t k;
    int rc = order_newest(c, m, n, want_replica, &k);
    if (rc < 0)
        return rc;
    append(c->res->detail, sizeof c->res->detail,
           c->o->dry_run ? " would stop and remove" : " stopped and removed");
    for (size_t i = 0; i < k && drop > 0; i++, drop--) {
        if (!c->o->dry_run) {
            rc = stop_and_remove(c, m[i].id);
            if (rc < 0)
                return rc;
        }
        append(c->res->detail, sizeof c->res->detail, " %.12s", m[i].id);
        c->res->after--;
    }
    return 0;
}

static int containers_scale(struct ctx *c, int replicas)
{
    json_t *list = NULL;
    struct member *m = NULL;
    size_t n = 0;
    int rc = list_members(c, &list, &m, &n);
    if (rc < 0)
        return rc;
    int have = count_replicas(m, n);
    c->res->before = c->res->after = have;
    snprintf(c->res->detail, sizeof c->res->detail,
             "%s%s %d -> %d:", c->o->dry_run ? "dry-run: " : "", c->what, have, replicas);
    if (replicas > have)
        rc = containers_up(c, m, n, replicas - have);
    else if (replicas < have)
        rc = containers_down(c, m, n, have - replicas);
    else
        snprintf(c->res->detail, sizeof c->res->detail, "%s already has %d replicas", c->what,
                 have);
    free_members(m, n);
    json_decref(list);
    return rc;
}

/* ---- API ------------------------------------------------------------------ */

int actuate_replicas(struct docker *d, const struct policy_target *t, int *replicas, char *err,
                     size_t errlen)
{
    /* Counting goes through the dry-run guard: it can only read. */
    struct actuate_opts ro = {.dry_run = 1};
    struct actuate_result res;
    struct ctx c;
    int rc = ctx_init(&c, d, t, &ro, &res);
    if (rc == 0 && t->kind == POLICY_TARGET_SWARM) {
        json_t *svc = NULL;
        const char *id;
        long version;
        rc = swarm_inspect(&c, &svc, &id, &version, replicas);
        json_decref(svc);
    } else if (rc == 0) {
        json_t *list = NULL;
        struct member *m = NULL;
        size_t n = 0;
        rc = list_members(&c, &list, &m, &n);
        if (rc == 0)
            *replicas = count_replicas(m, n);
        free_members(m, n);
        json_decref(list);
    }
    if (rc < 0)
        seterr(err, errlen, "%s", c.err);
    return rc;
}

int actuate_scale(struct docker *d, const struct policy_target *t, int replicas,
                  const struct actuate_opts *opts, struct actuate_result *res, char *err,
                  size_t errlen)
{
    static const struct actuate_opts defaults = {0};
    const struct actuate_opts *o = opts ? opts : &defaults;
    struct ctx c;

    memset(res, 0, sizeof *res);
    res->before = res->after = -1;
    int rc = ctx_init(&c, d, t, o, res);
    if (rc == 0 && (replicas < 0 || replicas > ACTUATE_MAX_REPLICAS))
        rc = fail(&c, -EINVAL, "%d replicas is outside 0..%d", replicas, ACTUATE_MAX_REPLICAS);
    else if (rc == 0 && t->kind == POLICY_TARGET_SWARM)
        rc = swarm_scale(&c, replicas);
    else if (rc == 0)
        rc = containers_scale(&c, replicas);
    if (rc == 0) {
        log_info("actuate", "%s", res->detail);
    } else if (res->after >= 0) {
        log_warn("actuate", "%s (reached %d replicas)", c.err, res->after);
        seterr(err, errlen, "%s", c.err);
    } else {
        log_warn("actuate", "%s", c.err);
        seterr(err, errlen, "%s", c.err);
    }
    return rc;
}
