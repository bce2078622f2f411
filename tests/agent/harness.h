/* Helpers for the agent's integration tests: running processes, reading
 * their logs, free loopback ports and blocking HTTP GETs. */
#ifndef SCALECAST_TESTS_AGENT_HARNESS_H
#define SCALECAST_TESTS_AGENT_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

/* Starts argv[0] with stdout and stderr appended to `logpath`. Returns the
 * pid, or -1. */
pid_t harness_spawn(char *const argv[], const char *logpath);
/* Waits up to `timeout` seconds for pid to exit. Returns its exit status
 * (0-255), 128+signal if killed, or -1 on timeout (the process is left). */
int harness_wait(pid_t pid, double timeout);
/* Sends SIGKILL and reaps. */
void harness_kill(pid_t pid);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int harness_free_port(void);
/* Reads a whole file into a new NUL-terminated string (NULL on failure). */
char *harness_slurp(const char *path);
/* Monotonic seconds. */
double harness_now(void);
void harness_sleep(double seconds);

/* The agent's last "stopped:" log line. Returns 0, or -1 if absent. */
struct agent_stats {
    unsigned long long rounds, collected, delivered, refused, dropped, left;
};
int harness_agent_stats(const char *logpath, struct agent_stats *out);

/* GET http://127.0.0.1:port/path. Returns the status (body in *body), or -1
 * when the server cannot be reached. */
int harness_http_get(int port, const char *path, struct buf *body);

/* A fresh directory under /tmp (new string); harness_rm_rf removes a tree. */
char *harness_tmpdir(const char *tag);
void harness_rm_rf(const char *path);

#endif
