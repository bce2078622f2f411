/* The little of the Docker Engine API the agent uses, over the engine's unix
 * socket: the list of running containers (id, name, labels) and a stream of
 * container events telling when that list changes. Nothing else is called:
 * the agent never changes anything in the engine. */
#ifndef SCALECAST_AGENT_DOCKER_H
#define SCALECAST_AGENT_DOCKER_H

#include <stddef.h>

struct docker_ctr {
    char id[65];   /* full 64-hex id */
    char *name;    /* without the leading '/' */
    char *service; /* com.docker.swarm.service.name, else com.docker.compose.service, else NULL */
};

struct docker_list {
    struct docker_ctr *v;
    size_t n;
};

/* Parses the engine's answer to GET /containers/json. Returns 0, or -EINVAL
 * with err naming the offending element ("[2].Id: not a 64-hex string");
 * *out is then empty. */
int docker_parse_list(const char *json, size_t len, struct docker_list *out /* out */, char *err,
                      size_t errlen);
void docker_list_free(struct docker_list *l);

struct docker;

/* A client for the engine at unix socket `path` (copied). Connects lazily. */
struct docker *docker_new(const char *path);
void docker_free(struct docker *d);
const char *docker_path(const struct docker *d);

/* Lists running containers (blocking, at most `timeout` seconds). Returns 0,
 * or -errno with err saying what failed. */
int docker_list_running(struct docker *d, double timeout, struct docker_list *out /* out */,
                        char *err, size_t errlen);

/* Subscribes to container start/die/destroy/rename events. Returns the
 * (non-blocking) descriptor to watch, or -errno. */
int docker_events_open(struct docker *d);
/* Reads what arrived on the event stream. Returns 1 when something did (the
 * container list may have changed), 0 when nothing, or -errno when the
 * stream ended (the engine went away; the subscription is closed). */
int docker_events_drain(struct docker *d);
int docker_events_fd(const struct docker *d);
void docker_events_close(struct docker *d);

#endif
