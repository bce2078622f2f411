/* Reads every real trace in the shared traces folder (argv[1]) as it is, and
 * checks one sample per data row, strictly ascending times and plausible
 * steps. Exits 77 (skipped) when the folder is absent. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"
#include "unit.h"

struct fmt {
    const char *folder, *name_part, *column;
    double interval, step;
};

/* The formats the traces' README describes. */
static const struct fmt fmts[] = {
    {"nab", "", NULL, 0, 300},
    {"bitbrains", "", "CPU usage [%]", 0, 300},
    {"cluster", "_30_seconds", "cpu_util_percent", 30, 30},
    {"cluster", "machine_usage", "cpu_util_percent", 300, 300},
    {"cluster", "instance_usage", "avg_cpu", 300, 300},
};

static size_t data_lines(const char *path)
{
    FILE *fp = fopen(path, "rb");
    size_t n = 0;
    int c, prev = '\n', nonblank = 0;
    if (!fp)
        return 0;
    while ((c = fgetc(fp)) != EOF) {
        if (c == '\n') {
            n += nonblank;
            nonblank = 0;
        } else if (c != '\r' && c != ' ' && c != '\t') {
            nonblank = 1;
        }
        prev = c;
    }
    (void)prev;
    n += nonblank;
    fclose(fp);
    return n - 1; /* the header row */
}

static const struct fmt *fmt_for(const char *folder, const char *name)
{
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        if (strcmp(fmts[i].folder, folder) == 0 && strstr(name, fmts[i].name_part))
            return &fmts[i];
    }
    return NULL;
}

static int check_file(const char *dir, const char *folder, const char *name)
{
    char path[1024], err[512];
    const struct fmt *f = fmt_for(folder, name);
    struct trace_opts o;
    struct trace t;

    snprintf(path, sizeof path, "%s/%s/%s", dir, folder, name);
    if (!f)
        return 0;
    trace_opts_default(&o);
    o.column = f->column;
    o.interval = f->interval;
    int rc = trace_load(path, &o, &t, err, sizeof err);
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    CHECK(t.n == data_lines(path));
    size_t regular = 0;
    for (size_t i = 1; i < t.n; i++) {
        double d = t.ts[i] - t.ts[i - 1];
        CHECK(d > 0);
        regular += d > 0.9 * f->step && d < 1.1 * f->step;
    }
    /* Gaps and jitter exist, but most steps are the nominal interval. */
    CHECK(regular > t.n * 9 / 10);
    fprintf(stderr, "  %s/%s: %zu samples of '%s'\n", folder, name, t.n, t.column);
    trace_free(&t);
    return 1;
}

int main(int argc, char **argv)
{
    const char *folders[] = {"nab", "bitbrains", "cluster"};
    size_t files = 0;
    if (argc < 2)
        return 2;
    for (size_t k = 0; k < 3; k++) {
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%s", argv[1], folders[k]);
        DIR *d = opendir(sub);
        struct dirent *e;
        if (!d)
            continue;
        while ((e = readdir(d)) != NULL) {
            size_t len = strlen(e->d_name);
            if (len > 4 && strcmp(e->d_name + len - 4, ".csv") == 0)
                files += (size_t)check_file(argv[1], folders[k], e->d_name);
        }
        closedir(d);
    }
    if (files == 0) {
        fprintf(stderr, "no traces under %s: skipped\n", argv[1]);
        return 77;
    }
    return UNIT_DONE();
}
