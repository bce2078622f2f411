/* Tests of the ingest journal (server/journal.c) on real files: replay in
 * order, a torn record cut off the end, a damaged older segment set aside,
 * the lock against a second process, release and the compaction mark, and
 * a failed append (a real EFBIG from RLIMIT_FSIZE) leaving nothing behind. */
#include "journal.h"
#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[64];
static char jdir[160];
static int njr;
static bool jsync = true; /* what open_j() passes */

static const char *new_dir(void)
{
    snprintf(jdir, sizeof jdir, "%s/j%d.ingest", base, ++njr);
    return jdir;
}

/* What a replay saw. */
struct seen {
    int n;
    uint64_t seqs[64];
    char data[64][32];
};

static int collect(void *arg, uint64_t seq, const void *data, size_t len)
{
    struct seen *s = arg;
    if (s->n < 64) {
        s->seqs[s->n] = seq;
        size_t m = len < 31 ? len : 31;
        memcpy(s->data[s->n], data, m);
        s->data[s->n][m] = '\0';
    }
    s->n++;
    return 0;
}

static struct journal *open_j(const char *dir, struct seen *s)
{
    char err[512];
    memset(s, 0, sizeof *s);
    struct journal *j = NULL;
    if (journal_open(dir, jsync, collect, s, &j, err, sizeof err) < 0)
        fprintf(stderr, "journal_open(%s): %s\n", dir, err);
    return j;
}

static int append_str(struct journal *j, const char *text, uint64_t *seq)
{
    struct iovec iov = {(void *)text, strlen(text)};
    return journal_append(j, &iov, 1, seq);
}

/* The path of the n-th segment file (oldest first), or "" if none. */
static void segment(const char *dir, int n, char *out, size_t outlen)
{
    struct dirent **names;
    int k = scandir(dir, &names, NULL, alphasort), seen = 0;
    out[0] = '\0';
    for (int i = 0; i < k; i++) {
        size_t len = strlen(names[i]->d_name);
        if (len > 4 && strcmp(names[i]->d_name + len - 4, ".seg") == 0 && seen++ == n)
            snprintf(out, outlen, "%s/%s", dir, names[i]->d_name);
        free(names[i]);
    }
    free(names);
}

static off_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static void test_replay_in_order(void)
{
    const char *dir = new_dir();
    struct seen s;
    struct journal *j = open_j(dir, &s);
    CHECK(j && s.n == 0);
    if (!j)
        return;
    uint64_t seq = 0;
    CHECK(append_str(j, "one", &seq) == 0 && seq == 1);
    CHECK(append_str(j, "two", &seq) == 0 && seq == 2);
    CHECK(journal_rotate(j) == 0);
    CHECK(append_str(j, "three", &seq) == 0 && seq == 3);
    CHECK(journal_last_seq(j) == 3);
    journal_close(j);

    j = open_j(dir, &s);
    CHECK(j && s.n == 3);
    CHECK(s.seqs[0] == 1 && s.seqs[2] == 3);
    CHECK_STR(s.data[0], "one");
    CHECK_STR(s.data[2], "three");
    if (j) {
        CHECK(append_str(j, "four", &seq) == 0 && seq == 4);
        journal_close(j);
    }
}

static void test_torn_tail_cut(void)
{
    const char *dir = new_dir();
    struct seen s;
    struct journal *j = open_j(dir, &s);
    if (!j)
        return;
    uint64_t seq;
    CHECK(append_str(j, "kept-1", &seq) == 0);
    CHECK(append_str(j, "kept-2", &seq) == 0);
    journal_close(j);
    char seg[256];
    segment(dir, 0, seg, sizeof seg);
    off_t good = file_size(seg);
    /* A crash in the middle of a third record: a header and part of it. */
    int fd = open(seg, O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    char junk[40] = "SCJ1 and then the power went out";
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
    close(fd);

    j = open_j(dir, &s);
    CHECK(j && s.n == 2);
    CHECK_STR(s.data[1], "kept-2");
    CHECK(file_size(seg) == good);
    if (j) {
        CHECK(append_str(j, "after", &seq) == 0 && seq == 3);
        journal_close(j);
    }
    j = open_j(dir, &s);
    CHECK(j && s.n == 3);
    CHECK_STR(s.data[2], "after");
    journal_close(j);

    /* A flipped byte in the last record's payload: its checksum fails and
     * it is cut too (it was the end of the newest segment). */
    fd = open(seg, O_RDWR);
    off_t end = file_size(seg);
    CHECK(pwrite(fd, "X", 1, end - 2) == 1);
    close(fd);
    j = open_j(dir, &s);
    CHECK(j && s.n == 2);
    journal_close(j);
}

static void test_damaged_older_segment(void)
{
    const char *dir = new_dir();
    struct seen s;
    struct journal *j = open_j(dir, &s);
    if (!j)
        return;
    uint64_t seq;
    CHECK(append_str(j, "a1", &seq) == 0);
    CHECK(append_str(j, "a2", &seq) == 0);
    CHECK(journal_rotate(j) == 0);
    CHECK(append_str(j, "b1", &seq) == 0);
    journal_close(j);
    char seg[256];
    segment(dir, 0, seg, sizeof seg);
    int fd = open(seg, O_RDWR);
    CHECK(pwrite(fd, "Z", 1, file_size(seg) - 1) == 1); /* a2's payload */
    close(fd);

    j = open_j(dir, &s);
    CHECK(j != NULL);
    CHECK(s.n == 2);
    CHECK_STR(s.data[0], "a1");
    CHECK_STR(s.data[1], "b1");
    char damaged[300];
    snprintf(damaged, sizeof damaged, "%s.damaged", seg);
    CHECK(file_size(damaged) > 0);
    CHECK(file_size(seg) < 0);
    journal_close(j);
}

static void test_second_process_refused(void)
{
    const char *dir = new_dir();
    struct seen s;
    struct journal *j = open_j(dir, &s);
    CHECK(j != NULL);
    /* flock() locks belong to the open file description: a second open
     * in this process is refused just as another process would be. */
    char err[512] = "";
    struct journal *j2 = NULL;
    CHECK(journal_open(dir, true, collect, &s, &j2, err, sizeof err) < 0);
    CHECK(j2 == NULL);
    CHECK(strstr(err, "another scalecastd") != NULL);
    journal_close(j);
    CHECK(journal_open(dir, true, collect, &s, &j2, err, sizeof err) == 0);
    journal_close(j2);
}

static void test_release_and_mark(void)
{
    const char *dir = new_dir();
    struct seen s;
    struct journal *j = open_j(dir, &s);
    if (!j)
        return;
    uint64_t seq;
    for (int i = 0; i < 3; i++)
        CHECK(append_str(j, "old", &seq) == 0);
    CHECK(journal_rotate(j) == 0);
    CHECK(append_str(j, "new-4", &seq) == 0);
    CHECK(append_str(j, "new-5", &seq) == 0);
    journal_release(j, 3);
    char seg[256];
    segment(dir, 1, seg, sizeof seg);
    CHECK(seg[0] == '\0'); /* only the active segment is left */
    journal_close(j);

    j = open_j(dir, &s);
    CHECK(j && s.n == 2);
    CHECK_STR(s.data[0], "new-4");
    if (!j)
        return;
    /* Everything compacted, the active segment kept: nothing replays, and
     * sequence numbers go on rather than start over. */
    journal_release(j, 5);
    journal_close(j);
    j = open_j(dir, &s);
    CHECK(j && s.n == 0);
    if (j) {
        CHECK(append_str(j, "six", &seq) == 0 && seq == 6);
        journal_close(j);
    }
    j = open_j(dir, &s);
    CHECK(j && s.n == 1 && s.seqs[0] == 6);
    journal_close(j);
}

static void test_failed_append_leaves_nothing(void)
{
    const char *dir = new_dir();
    struct seen s;
    struct journal *j = open_j(dir, &s);
    if (!j)
        return;
    uint64_t seq;
    CHECK(append_str(j, "before", &seq) == 0);
    /* Closed cleanly, the segment ends at its last record (no
     * preallocated zeros); reopened, the next append starts there. */
    journal_close(j);
    j = open_j(dir, &s);
    if (!j)
        return;
    char seg[256];
    segment(dir, 0, seg, sizeof seg);
    off_t size = file_size(seg);
    /* A real write failure: the file size limit (EFBIG) stops the record
     * part-way, as a full disk would. */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)size + 100;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    static char big[4096];
    memset(big, 'b', sizeof big);
    struct iovec iov = {big, sizeof big};
    int rc = journal_append(j, &iov, 1, &seq);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(rc == -EFBIG);
    CHECK(file_size(seg) == size);
    CHECK(append_str(j, "after", &seq) == 0 && seq == 2);
    journal_close(j);
    j = open_j(dir, &s);
    CHECK(j && s.n == 2);
    CHECK_STR(s.data[0], "before");
    CHECK_STR(s.data[1], "after");
    journal_close(j);
}

/* With sync the active segment is extended with zeros ahead of the
 * records; a crash leaves them behind, and replay must read them as the end
 * of the records, not as damage. */
static void test_preallocated_tail(void)
{
    const char *dir = new_dir();
    struct seen s;
    struct journal *j = open_j(dir, &s);
    if (!j)
        return;
    uint64_t seq;
    CHECK(append_str(j, "p1", &seq) == 0);
    CHECK(append_str(j, "p2", &seq) == 0);
    char seg[256];
    segment(dir, 0, seg, sizeof seg);
    CHECK(file_size(seg) > 4096); /* zeros ahead of the two records */
    /* "Crash": copy the file as it is now, before the clean close cuts
     * the zeros, and put the copy back after. */
    char copy[300], cmd[700];
    snprintf(copy, sizeof copy, "%s.copy", seg);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", seg, copy);
    CHECK(system(cmd) == 0);
    journal_close(j);
    CHECK(rename(copy, seg) == 0);
    j = open_j(dir, &s);
    CHECK(j && s.n == 2);
    CHECK_STR(s.data[1], "p2");
    char damaged[300];
    snprintf(damaged, sizeof damaged, "%s.damaged", seg);
    CHECK(file_size(damaged) < 0);
    if (j) {
        CHECK(append_str(j, "p3", &seq) == 0 && seq == 3);
        journal_close(j);
    }
    j = open_j(dir, &s);
    CHECK(j && s.n == 3);
    journal_close(j);
}

int main(void)
{
    snprintf(base, sizeof base, "/tmp/sc_journal_XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_replay_in_order);
    jsync = false; /* sync = normal: written, not synced; same format */
    RUN(test_replay_in_order);
    jsync = true;
    RUN(test_torn_tail_cut);
    RUN(test_damaged_older_segment);
    RUN(test_second_process_refused);
    RUN(test_release_and_mark);
    RUN(test_failed_append_leaves_nothing);
    RUN(test_preallocated_tail);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    if (system(cmd) != 0)
        fprintf(stderr, "note: could not remove %s\n", base);
    return UNIT_DONE();
}
