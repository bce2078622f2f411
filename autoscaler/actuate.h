/* Acting on a Docker engine: how many replicas a target has, and setting it.
 *
 * A target (autoscaler/policy.h) is either a Swarm service or the plain
 * containers that carry a label:
 *
 *   swarm:NAME   replicas = the service's Spec.Mode.Replicated.Replicas.
 *                Scaling inspects the service and posts its whole spec back
 *                with the new count and the version index it read; when the
 *                engine answers "update out of sequence" (someone else
 *                updated it in between) it inspects again and retries.
 *   containers:LABEL=VALUE
 *                replicas = the containers with that label whose state is
 *                running or restarting (a restarting one is a replica between
 *                two crashes; ignoring it would add replicas that later
 *                overshoot). Scaling up clones the newest replica: same image,
 *                command, entrypoint, env, labels, networks and aliases,
 *                resources, restart policy, mounts, but no name, no hostname
 *                of its own, no fixed host port and no fixed IP or MAC
 *                address; the clone is labelled io.scalecast.clone-of=ID.
 *                Clones that were created but never started (the engine went
 *                away in between) are started before new ones are created.
 *                Scaling down stops and removes the newest replicas
 *                (anonymous volumes with them; named volumes stay).
 *
 * Nothing is ever done to a container or service the target does not
 * select: every candidate is checked against the target again after the
 * engine's answer, not only filtered by the engine.
 *
 * Setting is absolute ("make it N"), never relative, so a call repeated
 * after a failure cannot scale past N.
 *
 * Threads: calls on different targets may run at once on one struct docker. */
#ifndef SCALECAST_ACTUATE_H
#define SCALECAST_ACTUATE_H

#include <stddef.h>

#include "docker.h"
#include "policy.h"

/* Largest replica count actuate_scale accepts. */
#define ACTUATE_MAX_REPLICAS 10000

struct actuate_opts {
    /* 1: read what is needed to plan (GETs only) and describe the plan in
     * result.detail, but send nothing that changes state. */
    int dry_run;
    /* Containers: seconds a replica gets to stop before it is killed
     * (0: 10, the engine's own default). */
    int stop_timeout;
    /* Swarm: updates tried in all when the engine says "update out of
     * sequence" (0: 5). */
    int max_attempts;
    /* Tests only: called after each Swarm inspect, before the update is
     * posted, so a test can change the service in between. NULL: none. */
    void (*after_inspect)(void *arg, const char *service_id, long version);
    void *hook_arg;
};

struct actuate_result {
    int before;       /* replicas when the call began (-1: unknown) */
    int after;        /* replicas when it ended; with dry_run, what they would be */
    int attempts;     /* Swarm updates posted (2+ after "out of sequence") */
    char detail[512]; /* what was done, or with dry_run what would be done */
};

/* Counts the target's replicas into *replicas. Only reads. Returns 0, or a
 * negative errno with the reason in err (the engine's message when it
 * answered): -ENOENT the service does not exist, -EINVAL the target cannot
 * be counted (none, or a global-mode service), or docker_request's codes. */
int actuate_replicas(struct docker *d, const struct policy_target *t, int *replicas /* out */,
                     char *err, size_t errlen);

/* Makes the target have `replicas` replicas (0..ACTUATE_MAX_REPLICAS).
 * opts NULL means enforce with the defaults. Returns 0 with *res filled, or
 * a negative errno with the reason in err; *res then says what had been
 * reached (after = the replicas the engine had when the call gave up, as far
 * as known), so a partial scale-up is visible and the next call (absolute)
 * carries on from there. With opts->dry_run nothing that changes state is
 * sent. Containers: scaling up from zero replicas clones the newest stopped
 * container carrying the label; with none at all it fails with -ENOENT. */
int actuate_scale(struct docker *d, const struct policy_target *t, int replicas,
                  const struct actuate_opts *opts, struct actuate_result *res /* out */, char *err,
                  size_t errlen);

#endif
