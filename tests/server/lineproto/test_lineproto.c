/* Line protocol ingest: a Telegraf 1.x payload of the mapped inputs, counter
 * rates across requests, retries, precision, escaping, and the batch being
 * all or nothing. Error messages per input are the data-driven cases in
 * cases/ (lineproto_case.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lineproto.h"
#include "unit.h"

#define T0 1732170000.0
#define T1 1732170010.0

static const char *dir = ".";

static char *slurp(const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* How many samples match, and the value of the last one. */
static int find(const struct ingest_batch *b, const char *node, const char *container,
                const char *metric, double ts, double *value)
{
    int hits = 0;
    for (size_t i = 0; i < b->n; i++) {
        const struct store_sample *s = &b->samples[i];
        if (strcmp(s->node, node) == 0 && strcmp(s->container, container) == 0 &&
            strcmp(s->metric, metric) == 0 && s->ts == ts) {
            hits++;
            *value = s->value;
        }
    }
    return hits;
}

static double value_of(const struct ingest_batch *b, const char *container, const char *metric,
                       double ts)
{
    double v = NAN;
    if (find(b, "node-a", container, metric, ts, &v) != 1) {
        fprintf(stderr, "  expected exactly one %s/%s at %.0f\n", container, metric, ts);
        return NAN;
    }
    return v;
}

static int parse(const char *body, const char *precision, struct lineproto_state *st,
                 struct ingest_batch *b, struct lineproto_stats *stats, char *err)
{
    struct lineproto_opts o = {precision, 1732171234.5};
    return lineproto_parse(body, strlen(body), &o, st, b, stats, err, 512);
}

static void test_telegraf_payload(void)
{
    struct lineproto_state *st = lineproto_state_new();
    struct ingest_batch b;
    struct lineproto_stats stats;
    char err[512] = "";
    size_t len;
    char *body = slurp("telegraf-1.lp", &len);
    struct lineproto_opts o = {NULL, 0};
    CHECK(lineproto_parse(body, len, &o, st, &b, &stats, err, sizeof err) == 0);
    CHECK_STR(err, "");
    CHECK(stats.lines == 25);
    CHECK_NEAR(value_of(&b, "", "cpu", T0), 7.5, 1e-9);
    CHECK_NEAR(value_of(&b, "", "mem", T0), 25, 1e-9);
    CHECK_NEAR(value_of(&b, "", "mem_used_bytes", T0), 2147483648.0, 0);
    CHECK_NEAR(value_of(&b, "", "mem_avail_bytes", T0), 6442450944.0, 0);
    CHECK_NEAR(value_of(&b, "", "swap", T0), 9.99999998137355, 1e-12);
    CHECK_NEAR(value_of(&b, "", "load1", T0), 0.52, 1e-12);
    CHECK_NEAR(value_of(&b, "", "load5", T0), 0.44, 1e-12);
    CHECK_NEAR(value_of(&b, "", "load15", T0), 0.31, 1e-12);
    CHECK_NEAR(value_of(&b, "shop_web.1.x7d3k2", "cpu", T0), 12.5, 1e-12);
    CHECK_NEAR(value_of(&b, "shop_web.1.x7d3k2", "mem", T0), 3.125, 1e-12);
    CHECK_NEAR(value_of(&b, "shop_web.1.x7d3k2", "mem_bytes", T0), 16777216, 0);
    CHECK_NEAR(value_of(&b, "blog-db-1", "cpu", T0), 40, 1e-12);
    CHECK_NEAR(value_of(&b, "", "disk_used_percent", T0), 50, 0);
    CHECK_NEAR(value_of(&b, "", "processes_running", T0), 2, 0);
    double v;
    CHECK(find(&b, "node-a", "", "system_n_cpus", T0, &v) == 0);
    CHECK(find(&b, "node-a", "", "system_uptime_format", T0, &v) == 0);
    CHECK(find(&b, "node-a", "", "mem_total", T0, &v) == 0);
    /* One reading of a counter is no rate yet. */
    CHECK(find(&b, "node-a", "", "disk_read_bps", T0, &v) == 0);
    CHECK(find(&b, "node-a", "", "net_rx_bps", T0, &v) == 0);
    /* Services from the swarm and the compose label; per-CPU lines skipped. */
    for (size_t i = 0; i < b.n; i++) {
        if (strcmp(b.samples[i].container, "shop_web.1.x7d3k2") == 0)
            CHECK_STR(b.samples[i].service, "shop_web");
        if (strcmp(b.samples[i].container, "blog-db-1") == 0)
            CHECK_STR(b.samples[i].service, "db");
        if (b.samples[i].container[0] == '\0')
            CHECK_STR(b.samples[i].service, "");
        CHECK(strcmp(b.samples[i].metric, "docker_container_cpu_usage_total") != 0);
    }
    CHECK(stats.skipped_fields > 0);
    ingest_batch_free(&b);
    free(body);

    body = slurp("telegraf-2.lp", &len);
    CHECK(lineproto_parse(body, len, &o, st, &b, &stats, err, sizeof err) == 0);
    CHECK_NEAR(value_of(&b, "", "cpu", T1), 15, 1e-9);
    /* Whole disks only (sda, nvme0n1), over the 10 s between gathers. */
    CHECK_NEAR(value_of(&b, "", "disk_read_bps", T1), 2048000 + 1024000, 1e-6);
    CHECK_NEAR(value_of(&b, "", "disk_write_bps", T1), 409600, 1e-6);
    CHECK_NEAR(value_of(&b, "", "disk_read_iops", T1), 50 + 10, 1e-9);
    CHECK_NEAR(value_of(&b, "", "disk_write_iops", T1), 25, 1e-9);
    /* eth0 only: lo, docker0 and veth* are not physical. */
    CHECK_NEAR(value_of(&b, "", "net_rx_bps", T1), 1250000, 1e-6);
    CHECK_NEAR(value_of(&b, "", "net_tx_bps", T1), 250000, 1e-6);
    CHECK_NEAR(value_of(&b, "shop_web.1.x7d3k2", "cpu", T1), 37.5, 1e-12);
    ingest_batch_free(&b);

    /* Telegraf retries a batch the server failed to store: same rates. */
    CHECK(lineproto_parse(body, len, &o, st, &b, &stats, err, sizeof err) == 0);
    CHECK_NEAR(value_of(&b, "", "disk_read_bps", T1), 3072000, 1e-6);
    CHECK_NEAR(value_of(&b, "", "net_rx_bps", T1), 1250000, 1e-6);
    CHECK(stats.stale_counters == 0);
    ingest_batch_free(&b);

    /* An older batch arriving late changes nothing and is counted. */
    free(body);
    body = slurp("telegraf-1.lp", &len);
    CHECK(lineproto_parse(body, len, &o, st, &b, &stats, err, sizeof err) == 0);
    CHECK(find(&b, "node-a", "", "disk_read_bps", T0, &v) == 0);
    CHECK(stats.stale_counters == 3); /* sda, nvme0n1, eth0: the others are not tracked */
    ingest_batch_free(&b);
    free(body);
    lineproto_state_free(st);
}

/* Devices of one gather split over two batches: the total comes out again,
 * complete, for the same timestamp. */
static void test_split_gather(void)
{
    struct lineproto_state *st = lineproto_state_new();
    struct ingest_batch b;
    char err[512];
    CHECK(parse("diskio,host=h,name=sda reads=100i 10\n"
                "diskio,host=h,name=sdb reads=1000i 10\n",
                "s", st, &b, NULL, err) == 0);
    CHECK(b.n == 0);
    ingest_batch_free(&b);
    CHECK(parse("diskio,host=h,name=sda reads=150i 20\n", "s", st, &b, NULL, err) == 0);
    double v;
    CHECK(find(&b, "h", "", "disk_read_iops", 20, &v) == 1 && v == 5);
    ingest_batch_free(&b);
    CHECK(parse("diskio,host=h,name=sdb reads=1300i 20\n", "s", st, &b, NULL, err) == 0);
    CHECK(find(&b, "h", "", "disk_read_iops", 20, &v) == 1 && v == 35);
    ingest_batch_free(&b);
    /* A counter that went down was reset: no rate for that interval. */
    CHECK(parse("diskio,host=h,name=sda reads=7i 30\ndiskio,host=h,name=sdb reads=1400i 30\n", "s",
                st, &b, NULL, err) == 0);
    CHECK(find(&b, "h", "", "disk_read_iops", 30, &v) == 1 && v == 10);
    ingest_batch_free(&b);
    CHECK(parse("diskio,host=h,name=sda reads=17i 40\n", "s", st, &b, NULL, err) == 0);
    CHECK(find(&b, "h", "", "disk_read_iops", 40, &v) == 1 && v == 1);
    ingest_batch_free(&b);
    /* Hosts are kept apart. */
    CHECK(parse("diskio,host=other,name=sda reads=5i 40\n", "s", st, &b, NULL, err) == 0);
    CHECK(b.n == 0);
    ingest_batch_free(&b);
    lineproto_state_free(st);
}

/* A bad line anywhere: nothing comes out and the counters did not move. */
static void test_all_or_nothing(void)
{
    struct lineproto_state *st = lineproto_state_new();
    struct ingest_batch b;
    char err[512];
    CHECK(parse("net,host=h,interface=eth0 bytes_recv=100i 10\n", "s", st, &b, NULL, err) == 0);
    ingest_batch_free(&b);
    CHECK(parse("net,host=h,interface=eth0 bytes_recv=300i 20\nmem,host=h used_percent=\n", "s", st,
                &b, NULL, err) == -EINVAL);
    CHECK(b.n == 0 && b.samples == NULL && b.owner == NULL);
    CHECK_STR(err, "unable to parse 'mem,host=h used_percent=': missing field value (line 2)");
    /* Had the failed batch moved the state, this would be (500-300)/10. */
    CHECK(parse("net,host=h,interface=eth0 bytes_recv=500i 30\n", "s", st, &b, NULL, err) == 0);
    double v;
    CHECK(find(&b, "h", "", "net_rx_bps", 30, &v) == 1 && v == 20);
    ingest_batch_free(&b);
    lineproto_state_free(st);
}

static void test_precision(void)
{
    static const struct {
        const char *precision, *ts;
        double want;
    } cases[] = {
        {NULL, "1732170000123456789", 1732170000.123456789},
        {"ns", "1732170000123456789", 1732170000.123456789},
        {"n", "1732170000123456789", 1732170000.123456789},
        {"us", "1732170000123456", 1732170000.123456},
        {"u", "1732170000123456", 1732170000.123456},
        {"ms", "1732170000123", 1732170000.123},
        {"s", "1732170000", 1732170000},
        {"m", "28869500", 1732170000},
        {"h", "481158", 1732168800},
        {"s", "", 1732171234.5}, /* none: the caller's now */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[128], err[512];
        snprintf(body, sizeof body, "load,host=h v=1 %s", cases[i].ts);
        struct ingest_batch b;
        CHECK(parse(body, cases[i].precision, NULL, &b, NULL, err) == 0);
        CHECK(b.n == 1);
        if (b.n == 1)
            CHECK_NEAR(b.samples[0].ts, cases[i].want, 1e-6);
        ingest_batch_free(&b);
    }
    struct ingest_batch b;
    char err[512];
    CHECK(parse("load,host=h v=1 1", "x", NULL, &b, NULL, err) == -EINVAL);
    CHECK_STR(err, "invalid precision 'x' (expected ns, us, ms, s, m or h)");
    /* Seconds sent as nanoseconds' worth: out of range, with a hint. */
    CHECK(parse("load,host=h v=1 1732170000123", "s", NULL, &b, NULL, err) == -EINVAL);
    CHECK(strstr(err, "check the precision") != NULL);
}

static void test_escaping(void)
{
    struct ingest_batch b;
    struct lineproto_stats stats;
    char err[512];
    const char *body = "# a comment\r\n"
                       "\r\n"
                       "my\\ app,host=h,path=C:\\\\dir\\ x\\,y\\=z requests\\ total=3i,note=\"a, "
                       "\\\"b\\\" c=d\" 5\r\n"
                       "  weather,host=h temp=-1.5e1,ok=true,bad=F 6  \n"
                       "my_app,host=h latency=2 7";
    CHECK(parse(body, "s", NULL, &b, &stats, err) == 0);
    CHECK(stats.lines == 3);
    double v;
    /* "my app" + "requests total" is no valid metric name: skipped. */
    CHECK(find(&b, "h", "", "my app_requests total", 5, &v) == 0);
    CHECK(find(&b, "h", "", "weather_temp", 6, &v) == 1 && v == -15);
    CHECK(find(&b, "h", "", "weather_ok", 6, &v) == 1 && v == 1);
    CHECK(find(&b, "h", "", "weather_bad", 6, &v) == 1 && v == 0);
    CHECK(find(&b, "h", "", "my_app_latency", 7, &v) == 1 && v == 2);
    CHECK(b.n == 4);
    CHECK(stats.skipped_fields == 2); /* the bad name and the string */
    ingest_batch_free(&b);
    /* The escaped comma, space and equals sign stayed inside the tag: the
     * field after it parsed as the field. */
    CHECK(parse("m,host=h,t=a\\,b\\ c\\=d f=1 1", "s", NULL, &b, NULL, err) == 0);
    CHECK(find(&b, "h", "", "m_f", 1, &v) == 1 && v == 1);
    ingest_batch_free(&b);
    /* An empty body is an empty batch. */
    CHECK(parse("", NULL, NULL, &b, NULL, err) == 0 && b.n == 0);
    ingest_batch_free(&b);
}

static void test_long_line_error(void)
{
    char body[400], err[512];
    memset(body, 'x', 300);
    memcpy(body + 300, " f=\n", 5);
    struct ingest_batch b;
    CHECK(parse(body, "s", NULL, &b, NULL, err) == -EINVAL);
    char want[256];
    snprintf(want, sizeof want, "unable to parse '%.120s...': missing field value (line 1)", body);
    CHECK_STR(err, want);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        dir = argv[1];
    RUN(test_telegraf_payload);
    RUN(test_split_gather);
    RUN(test_all_or_nothing);
    RUN(test_precision);
    RUN(test_escaping);
    RUN(test_long_line_error);
    return UNIT_DONE();
}
