/* Tests of the on-disk spool (agent/spool.c): order, acknowledgement,
 * surviving a restart, torn writes, damaged lines, the size limit and the
 * directory lock. Each test uses a fresh directory under /tmp. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "unit.h"

static char dir[64];

static void fresh_dir(void)
{
    if (dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", dir);
    }
    snprintf(dir, sizeof dir, "/tmp/sc_spool_XXXXXX");
    if (!mkdtemp(dir))
        abort();
}

static struct spool *open_spool(size_t max)
{
    struct spool_opts o = {dir, max, "node-a"};
    struct spool *sp = NULL;
    char err[256];
    int rc = spool_open(&o, &sp, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "spool_open: %s\n", err);
    CHECK(rc == 0);
    return sp;
}

/* Appends samples with ts from..to-1, `per` per append. */
static void add(struct spool *sp, int from, int to)
{
    struct buf b = BUF_INIT;
    for (int i = from; i < to; i++)
        buf_printf(&b, "{\"ts\":%d.000,\"metrics\":{\"cpu\":%d}}\n", i, i % 100);
    CHECK(spool_append(sp, b.p, b.len, (size_t)(to - from)) == 0);
    buf_free(&b);
}

/* Reads everything pending in batches of `batch`, acknowledging each; checks
 * that the ts run from `first` upwards without gap; returns the count. */
static int drain(struct spool *sp, size_t batch, int first)
{
    struct spool_batch b;
    struct buf lines = BUF_INIT;
    int next = first, n;
    while ((n = (int)spool_peek(sp, batch, &b, &lines)) > 0) {
        CHECK(b.n == (size_t)n && b.len == lines.len);
        CHECK_STR(b.node, "node-a");
        for (char *l = lines.p; *l;) {
            int ts = (int)strtol(l + 6, NULL, 10); /* {"ts":N */
            CHECK(ts == next);
            next++;
            l = strchr(l, '\n') + 1;
        }
        spool_ack(sp, &b);
    }
    buf_free(&lines);
    return next - first;
}

static void test_order_and_ack(void)
{
    fresh_dir();
    struct spool *sp = open_spool(1 << 20);
    CHECK(spool_pending(sp) == 0);
    add(sp, 0, 10);
    add(sp, 10, 25);
    CHECK(spool_pending(sp) == 25);
    struct spool_batch b;
    struct buf lines = BUF_INIT;
    CHECK(spool_peek(sp, 4, &b, &lines) == 4);
    /* Peeking again without an ack hands out the same samples. */
    struct spool_batch b2;
    CHECK(spool_peek(sp, 4, &b2, &lines) == 4 && b2.off == b.off);
    buf_free(&lines);
    CHECK(drain(sp, 4, 0) == 25);
    CHECK(spool_pending(sp) == 0);
    add(sp, 25, 30);
    CHECK(drain(sp, 100, 25) == 5);
    spool_close(sp);
}

static void test_restart_resumes(void)
{
    fresh_dir();
    struct spool *sp = open_spool(1 << 20);
    add(sp, 0, 50);
    struct spool_batch b;
    struct buf lines = BUF_INIT;
    CHECK(spool_peek(sp, 20, &b, &lines) == 20);
    spool_ack(sp, &b);
    CHECK(spool_peek(sp, 5, &b, &lines) == 5); /* in flight when the agent stops */
    spool_close(sp);

    sp = open_spool(1 << 20);
    CHECK(spool_pending(sp) == 30);
    add(sp, 50, 60); /* the new run's samples come after the old ones */
    CHECK(drain(sp, 7, 20) == 40);
    spool_close(sp);
    /* And a third run finds nothing left, and no old segments. */
    sp = open_spool(1 << 20);
    CHECK(spool_pending(sp) == 0);
    CHECK(spool_peek(sp, 10, &b, &lines) == 0);
    CHECK(spool_bytes(sp) < 100);
    spool_close(sp);
    buf_free(&lines);
}

static void append_raw(const char *seg, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, seg);
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
        close(fd);
    }
}

static void test_torn_and_damaged(void)
{
    fresh_dir();
    struct spool *sp = open_spool(1 << 20);
    add(sp, 0, 3);
    spool_close(sp);
    /* Segment 1 holds 3 lines; then came a damaged line, a good one, and a
     * line torn by a crash. */
    append_raw("00000000000000000001.seg", "garbage without braces\n"
                                           "{\"ts\":3.000,\"metrics\":{\"cpu\":3}}\n"
                                           "{\"ts\":4.0");
    sp = open_spool(1 << 20);
    add(sp, 4, 6);
    /* 0,1,2 then the damaged line is skipped, 3, the torn "4" is skipped, then 4,5. */
    struct spool_batch b;
    struct buf lines = BUF_INIT;
    int seen[8] = {0}, count = 0;
    size_t n;
    while ((n = spool_peek(sp, 100, &b, &lines)) > 0) {
        for (char *l = lines.p; *l; l = strchr(l, '\n') + 1) {
            int ts = (int)strtol(l + 6, NULL, 10);
            if (ts >= 0 && ts < 8)
                seen[ts]++;
            count++;
        }
        spool_ack(sp, &b);
    }
    CHECK(count == 6);
    for (int i = 0; i < 6; i++)
        CHECK(seen[i] == 1);
    CHECK(spool_pending(sp) == 0);
    buf_free(&lines);
    spool_close(sp);
}

static void test_size_limit_drops_oldest(void)
{
    fresh_dir();
    /* 64 KiB limit: 8 KiB segments of ~40-byte lines. */
    struct spool *sp = open_spool(SPOOL_MIN_BYTES);
    for (int i = 0; i < 4000; i += 100)
        add(sp, i, i + 100);
    CHECK(spool_bytes(sp) <= SPOOL_MIN_BYTES);
    unsigned long long dropped = spool_dropped(sp);
    CHECK(dropped > 0);
    CHECK(spool_pending(sp) + dropped == 4000);
    /* What is left is the newest samples, in order, ending at 3999. */
    int first = (int)dropped;
    CHECK(drain(sp, 333, first) == 4000 - first);
    spool_close(sp);
}

static void test_drop_while_in_flight(void)
{
    fresh_dir();
    struct spool *sp = open_spool(SPOOL_MIN_BYTES);
    add(sp, 0, 100);
    struct spool_batch b;
    struct buf lines = BUF_INIT;
    CHECK(spool_peek(sp, 50, &b, &lines) == 50);
    for (int i = 100; i < 4000; i += 100)
        add(sp, i, i + 100); /* the limit drops the in-flight batch */
    size_t before = spool_pending(sp);
    spool_ack(sp, &b); /* the late 200 for it must not move the cursor */
    CHECK(spool_pending(sp) == before);
    CHECK(drain(sp, 1000, (int)spool_dropped(sp)) == (int)before);
    buf_free(&lines);
    spool_close(sp);
}

static void test_lock_and_bad_cursor(void)
{
    fresh_dir();
    struct spool *sp = open_spool(1 << 20);
    struct spool_opts o = {dir, 1 << 20, "node-a"};
    struct spool *other = NULL;
    char err[256] = "";
    CHECK(spool_open(&o, &other, err, sizeof err) < 0);
    CHECK(strstr(err, "in use by another scalecast-agent") != NULL);
    CHECK(strstr(err, dir) != NULL);
    add(sp, 0, 10);
    spool_close(sp);
    /* A damaged cursor: everything is resent (the server drops duplicates). */
    char path[128];
    snprintf(path, sizeof path, "%s/cursor", dir);
    FILE *f = fopen(path, "w");
    fputs("garbage", f);
    fclose(f);
    sp = open_spool(1 << 20);
    CHECK(spool_pending(sp) == 10);
    CHECK(drain(sp, 100, 0) == 10);
    spool_close(sp);
}

static void test_node_travels_with_segment(void)
{
    fresh_dir();
    struct spool *sp = open_spool(1 << 20);
    add(sp, 0, 3);
    spool_close(sp);
    struct spool_opts o = {dir, 1 << 20, "node-b"};
    char err[256];
    CHECK(spool_open(&o, &sp, err, sizeof err) == 0);
    struct buf b = BUF_INIT;
    buf_adds(&b, "{\"ts\":9.000,\"metrics\":{}}\n");
    spool_append(sp, b.p, b.len, 1);
    struct spool_batch batch;
    struct buf lines = BUF_INIT;
    CHECK(spool_peek(sp, 100, &batch, &lines) == 3);
    CHECK_STR(batch.node, "node-a"); /* collected under the old id, sent under it */
    spool_ack(sp, &batch);
    CHECK(spool_peek(sp, 100, &batch, &lines) == 1);
    CHECK_STR(batch.node, "node-b");
    spool_ack(sp, &batch);
    buf_free(&b);
    buf_free(&lines);
    spool_close(sp);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    RUN(test_order_and_ack);
    RUN(test_restart_resumes);
    RUN(test_torn_and_damaged);
    RUN(test_size_limit_drops_oldest);
    RUN(test_drop_while_in_flight);
    RUN(test_lock_and_bad_cursor);
    RUN(test_node_travels_with_segment);
    fresh_dir(); /* removes the last one */
    rmdir(dir);
    return UNIT_DONE();
}
