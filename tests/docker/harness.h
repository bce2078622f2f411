/* Harness for tests against a real Docker engine.
 *
 * A test program is a list of cases; ctest runs one case per test
 * ("test_actuate swarm"). th_main makes sure the engine runs
 * (tests/docker/engine.sh; exit 77, ctest's skip, only when no engine can be
 * started at all), prepares what the case asks for (a swarm shared through
 * tests/docker/swarm.sh, a private engine from tests/docker/private-engine.sh)
 * and runs the case in a child process. Whatever the child did or however it
 * ended (a failed CHECK, an abort, a sanitizer report), the parent then
 * removes every service, container and network labelled with this run's
 * label, tears down the private engine and releases the swarm: the tests
 * clean up after themselves and never touch anything they did not create.
 *
 * Everything a case creates must carry TH_LABEL=th_run (th_labels() gives the
 * docker CLI flags) and be named with the th_run prefix. */
#ifndef SCALECAST_TEST_HARNESS_H
#define SCALECAST_TEST_HARNESS_H

#include <stddef.h>

#define TH_LABEL "io.scalecast.test"

enum {
    TH_ENGINE = 1,      /* needs the machine's engine */
    TH_SWARM = 2,       /* ... as a swarm manager */
    TH_PRIVATE = 4,     /* needs a private engine it may stop and restart */
    TH_PRIVATE_TLS = 8, /* ... also listening on tcp:// with TLS */
};

struct th_case {
    const char *name;
    int (*fn)(void); /* returns the exit code: UNIT_DONE() */
    unsigned needs;
};

/* "sc-test-PID": the prefix of every name and the value of TH_LABEL. */
extern char th_run[32];
/* The private engine, when the case asked for one: its directory, its unix
 * host ("unix://DIR/docker.sock"), and with TLS its tcp:// host and the
 * directory holding ca.pem, cert.pem, key.pem and other-ca.pem. */
extern char th_private_dir[128];
extern char th_private_host[160];
extern char th_tls_host[64];
extern char th_tls_dir[160];
/* The docker CLI command for the engine under test: "docker" or
 * "docker -H unix://DIR/docker.sock". */
extern char th_docker[200];

/* Runs the case named by argv[1]; returns the process exit code. */
int th_main(int argc, char **argv, const struct th_case *cases, size_t ncases);

/* Runs a shell command built from fmt; its stdout (trimmed of trailing
 * newlines) goes to out when out is not NULL. Returns the exit status, or
 * -1 when it could not run or was killed. */
int th_sh(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The whole of s as a decimal number (surrounding blanks allowed), or -1. */
long th_number(const char *s);

/* Lines in s that are not empty. */
int th_lines(const char *s);

/* Repeats `cmd` (a shell command printing a number) every 0.25 s until it
 * prints `want` or `seconds` pass; returns the last number printed. */
int th_wait_number(int want, double seconds, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Stops / starts the private engine again (blocking). 0 on success. */
int th_private_stop(void);
int th_private_restart(void);

#endif
