/* The agent's main loop. */
#include "agent.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "push.h"
#include "sampleset.h"
#include "spool.h"
#include "tls.h"
#include "xalloc.h"

#define MAX_COLLECTORS 32

struct running {
    const struct collector *c;
    void *state;
};

struct agent {
    const struct agent_opts *o;
    struct running col[MAX_COLLECTORS];
    size_t ncol;
    struct sampleset set;
    struct buf lines;
    unsigned long long collected, rounds;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void start_collectors(struct agent *a)
{
    for (size_t i = 0; collectors[i] && a->ncol < MAX_COLLECTORS; i++) {
        void *state = NULL;
        int rc = collectors[i]->create(&a->o->paths, &state);
        if (rc == -ENOENT) {
            log_debug("agent", "collector %s: not on this node", collectors[i]->name);
            continue;
        }
        if (rc < 0) {
            log_warn("agent", "collector %s: cannot start: %s", collectors[i]->name, strerror(-rc));
            continue;
        }
        a->col[a->ncol++] = (struct running){collectors[i], state};
    }
}

static void stop_collectors(struct agent *a)
{
    for (size_t i = 0; i < a->ncol; i++)
        a->col[i].c->destroy(a->col[i].state);
    a->ncol = 0;
    sampleset_free(&a->set);
    buf_free(&a->lines);
}

/* One collection round; the samples end up as JSON lines in a->lines.
 * Returns how many. */
static size_t round_collect(struct agent *a)
{
    struct tick t = {wall_now(), mono_now()};
    /* Timestamps to the millisecond: what the server keys samples on. */
    t.ts = floor(t.ts * 1000 + 0.5) / 1000;
    sampleset_clear(&a->set);
    for (size_t i = 0; i < a->ncol; i++)
        a->col[i].c->collect(a->col[i].state, &t, &a->set);
    buf_reset(&a->lines);
    size_t n = sampleset_write(&a->set, t.ts, &a->lines);
    a->rounds++;
    return n;
}

/* Fills fds with the collectors' descriptors; returns how many. */
static int collector_fds(struct agent *a, struct pollfd *fds, int *owner)
{
    int n = 0;
    for (size_t i = 0; i < a->ncol; i++) {
        if (!a->col[i].c->poll_fd)
            continue;
        int fd = a->col[i].c->poll_fd(a->col[i].state);
        if (fd < 0)
            continue;
        fds[n] = (struct pollfd){.fd = fd, .events = POLLIN};
        owner[n++] = (int)i;
    }
    return n;
}

static struct timespec span(double seconds)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds > 3600)
        seconds = 3600;
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    return ts;
}

/* Waits for the pusher's socket, the collectors' descriptors, a signal or
 * `until` (monotonic), and dispatches what happened. */
static void wait_and_dispatch(struct agent *a, struct pusher *p, double until,
                              const sigset_t *waitmask)
{
    struct pollfd fds[MAX_COLLECTORS + 1];
    int owner[MAX_COLLECTORS + 1];
    int n = collector_fds(a, fds, owner);
    int pi = -1;
    if (p && push_pollfd(p, &fds[n]))
        pi = n++;
    double deadline = p ? push_deadline(p) : INFINITY;
    if (deadline > until)
        deadline = until;
    struct timespec ts = span(deadline - mono_now());
    int rc = ppoll(fds, (nfds_t)n, &ts, waitmask);
    if (rc < 0 && errno != EINTR)
        log_error("agent", "poll: %s", strerror(errno));
    double now = mono_now();
    for (int i = 0; rc > 0 && i < n; i++) {
        if (i == pi || !fds[i].revents)
            continue;
        struct running *r = &a->col[owner[i]];
        r->c->on_readable(r->state);
    }
    if (p)
        push_handle(p, now, pi >= 0 && rc > 0 ? fds[pi].revents : 0);
}

static void install_signals(sigset_t *waitmask)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Signals stay blocked except inside ppoll, so one arriving between the
     * check of stop_signal and the wait still ends the wait. */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, waitmask);
    sigdelset(waitmask, SIGTERM);
    sigdelset(waitmask, SIGINT);
}

/* At SIGTERM: push what the spool holds until it is empty, the server fails,
 * or the flush deadline passes. What is left stays in the spool. */
static void flush(struct agent *a, struct pusher *p, struct spool *sp, const sigset_t *waitmask)
{
    double deadline = mono_now() + a->o->flush_timeout;
    push_kick(p, mono_now(), 1);
    while (spool_pending(sp) > 0 || push_busy(p)) {
        double now = mono_now();
        if (now >= deadline)
            break;
        if (!push_busy(p) && push_deadline(p) > deadline)
            break; /* backing off past the deadline: the server is away */
        stop_signal = 0;
        wait_and_dispatch(a, p, deadline, waitmask);
    }
}

/* For https://: OpenSSL and the trust anchors, ready before anything else
 * starts, so that a bad --ca-file stops the agent at once. Returns 0 (*out
 * NULL for http://) or -1 after logging why. */
static int start_tls(const struct agent_opts *o, struct tls_client **out)
{
    *out = NULL;
    if (!o->url.tls)
        return 0;
    char err[512];
    if (tls_client_create(o->ca_file, out, err, sizeof err) < 0) {
        log_error("agent", "%s", err);
        return -1;
    }
    log_info("agent", "TLS with %s, TLS 1.2 or later, trusting %s%s", tls_client_version(*out),
             o->ca_file ? "only the CA file " : "the system's CA store",
             o->ca_file ? o->ca_file : "");
    return 0;
}

int agent_run(const struct agent_opts *o)
{
    struct agent a = {.o = o};
    struct tls_client *tls;
    if (start_tls(o, &tls) < 0)
        return 1;
    sampleset_init(&a.set);
    struct spool *sp = NULL;
    char err[512];
    struct spool_opts so = {o->spool_dir, o->spool_max, o->node};
    if (spool_open(&so, &sp, err, sizeof err) < 0) {
        log_error("agent", "%s", err);
        sampleset_free(&a.set);
        tls_client_free(tls);
        return 1;
    }
    sigset_t waitmask;
    install_signals(&waitmask);
    log_info("agent",
             "scalecast-agent %s: node %s, pushing to %s every %g s, spool %s (at most %zu bytes)",
             SCALECAST_VERSION, o->node, o->server, o->interval, o->spool_dir, o->spool_max);
    start_collectors(&a);
    struct push_opts po = {
        .url = &o->url, .tls = tls, .token = o->token, .batch = o->batch, .timeout = o->timeout};
    struct pusher *p = push_create(&po, sp);

    round_collect(&a); /* primes the counters; rates need two reads */
    double next = mono_now() + o->interval;
    push_kick(p, mono_now(), 0); /* whatever an earlier run left behind */
    while (!stop_signal) {
        double now = mono_now();
        if (now >= next) {
            size_t n = round_collect(&a);
            if (n && spool_append(sp, a.lines.p, a.lines.len, n) == 0)
                a.collected += n;
            next += o->interval;
            if (next <= now) {
                double late = now - next;
                log_warn("agent", "a collection round ran %.1f s late; skipping ahead", late);
                next = now + o->interval;
            }
            push_kick(p, now, 0);
        }
        wait_and_dispatch(&a, p, next, &waitmask);
    }
    int sig = stop_signal;
    log_info("agent", "%s: flushing %zu spooled samples (at most %g s)",
             sig == SIGINT ? "SIGINT" : "SIGTERM", spool_pending(sp), o->flush_timeout);
    flush(&a, p, sp, &waitmask);
    log_info("agent",
             "stopped: %llu rounds, %llu samples collected, %llu delivered, %llu refused by the "
             "server, %llu dropped by the spool limit, %zu left in the spool",
             a.rounds - 1, a.collected, push_delivered(p), push_refused(p), spool_dropped(sp),
             spool_pending(sp));
    push_free(p);
    tls_client_free(tls);
    spool_close(sp);
    stop_collectors(&a);
    return 0;
}

int agent_once(const struct agent_opts *o)
{
    struct agent a = {.o = o};
    sampleset_init(&a.set);
    start_collectors(&a);
    round_collect(&a);
    struct timespec one = {1, 0};
    while (nanosleep(&one, &one) < 0 && errno == EINTR)
        ;
    /* Let the collectors hear what their descriptors say (container events). */
    for (size_t i = 0; i < a.ncol; i++) {
        if (a.col[i].c->poll_fd && a.col[i].c->poll_fd(a.col[i].state) >= 0)
            a.col[i].c->on_readable(a.col[i].state);
    }
    size_t n = round_collect(&a);
    struct buf body = BUF_INIT;
    buf_adds(&body, "{\"node\":");
    buf_json_str(&body, o->node);
    buf_adds(&body, ",\"samples\":[");
    for (size_t i = 0; i < a.lines.len; i++)
        buf_addc(&body, a.lines.p[i] == '\n' ? (i + 1 < a.lines.len ? ',' : ']') : a.lines.p[i]);
    if (n == 0)
        buf_addc(&body, ']');
    buf_adds(&body, "}\n");
    int rc = fwrite(body.p, 1, body.len, stdout) == body.len && fflush(stdout) == 0 ? 0 : 1;
    buf_free(&body);
    stop_collectors(&a);
    return rc;
}
