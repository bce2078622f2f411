/* Tests of the CSV trace reader (common/trace.h) on each trace format.
 * Run from tests/predictor (the fixtures are in traces/). */
#include <errno.h>
#include <string.h>

#include "trace.h"
#include "unit.h"

static char err[512];

static int load(const char *path, const char *column, int index, double interval, struct trace *t)
{
    struct trace_opts o;
    trace_opts_default(&o);
    o.column = column;
    o.column_index = index;
    o.interval = interval;
    return trace_load(path, &o, t, err, sizeof err);
}

static void test_dates(void)
{
    struct trace t;
    CHECK(load("traces/dates.csv", NULL, 0, 0, &t) == 0);
    CHECK(t.n == 4);
    CHECK_STR(t.column, "value");
    CHECK_STR(t.time_column, "timestamp");
    CHECK_NEAR(t.ts[0], 1392388200, 0);    /* 2014-02-14 14:30:00 UTC */
    CHECK_NEAR(t.ts[3] - t.ts[2], 600, 0); /* a missing interval stays a gap */
    CHECK_NEAR(t.v[3], 1.25, 0);
    trace_free(&t);
}

static void test_semicolon_tab(void)
{
    struct trace t;
    /* Several value columns: the error lists them. */
    CHECK(load("traces/semicolon_tab.csv", NULL, 0, 0, &t) == -EINVAL);
    CHECK(strstr(err, "semicolon_tab.csv:1:") != NULL);
    CHECK(strstr(err, "'CPU usage [%]'") != NULL);
    CHECK(load("traces/semicolon_tab.csv", "cpu usage [%]", 0, 0, &t) == 0);
    CHECK(t.n == 3);
    CHECK_STR(t.time_column, "Timestamp [ms]");
    CHECK(t.ts_millis == 0); /* the values are seconds despite the header */
    CHECK_NEAR(t.ts[2], 1375308779, 0);
    CHECK_NEAR(t.v[0], 51.06, 1e-12);
    trace_free(&t);
    CHECK(load("traces/semicolon_tab.csv", NULL, 2, 0, &t) == 0);
    CHECK_STR(t.column, "CPU cores");
    trace_free(&t);
}

static void test_no_time_column(void)
{
    struct trace t;
    CHECK(load("traces/no_time.csv", "cpu_util_percent", 0, 0, &t) == -EINVAL);
    CHECK(strstr(err, "--interval") != NULL);
    CHECK(load("traces/no_time.csv", "cpu_util_percent", 0, 300, &t) == 0);
    CHECK(t.n == 3 && t.time_column == NULL);
    CHECK_NEAR(t.ts[2], 600, 0);
    CHECK_NEAR(t.v[1], 18.4, 1e-12);
    trace_free(&t);
}

static void test_bom_crlf_millis(void)
{
    struct trace t;
    CHECK(load("traces/bom_crlf_millis.csv", NULL, 0, 0, &t) == 0);
    CHECK(t.n == 2 && t.ts_millis == 1);
    CHECK_STR(t.time_column, "time");
    CHECK_NEAR(t.ts[1], 1375308476, 1e-6);
    CHECK_NEAR(t.v[1], 2.5, 0);
    trace_free(&t);
}

static void test_no_header(void)
{
    struct trace t;
    CHECK(load("traces/no_header.csv", NULL, 0, 0, &t) == -EINVAL); /* no date column */
    CHECK(load("traces/no_header.csv", NULL, 2, 60, &t) == 0);
    CHECK(t.n == 3);
    CHECK_STR(t.column, "#2");
    CHECK_NEAR(t.ts[1], 60, 0);
    CHECK_NEAR(t.v[2], 5, 0);
    trace_free(&t);
    CHECK(load("traces/no_header.csv", "value", 0, 60, &t) == -EINVAL);
    CHECK(strstr(err, "no header row") != NULL);
}

static void test_errors_name_file_line(void)
{
    struct trace t;
    CHECK(load("traces/bad_number.csv", NULL, 0, 0, &t) == -EINVAL);
    CHECK(strstr(err, "bad_number.csv:3: column 'value': 'abc' is not a number") != NULL);
    CHECK(t.n == 0 && t.ts == NULL);
    CHECK(load("traces/backwards.csv", NULL, 0, 0, &t) == -EINVAL);
    CHECK(strstr(err, "backwards.csv:3:") != NULL);
    CHECK(load("traces/short_row.csv", NULL, 0, 0, &t) == -EINVAL);
    CHECK(strstr(err, "short_row.csv:3:") != NULL);
    CHECK(load("traces/absent.csv", NULL, 0, 0, &t) == -ENOENT);
    CHECK(strstr(err, "absent.csv") != NULL);
    CHECK(load("traces/dates.csv", "nope", 0, 0, &t) == -EINVAL);
    CHECK(strstr(err, "no column named 'nope'") != NULL);
}

static void test_parse_memory(void)
{
    struct trace t;
    struct trace_opts o;
    trace_opts_default(&o);
    CHECK(trace_parse("", 0, "empty", &o, &t, err, sizeof err) == -ENODATA);
    CHECK(trace_parse("timestamp,value\n", 16, "hdr", &o, &t, err, sizeof err) == -ENODATA);
    const char *s = "ts\tvalue\n10\t1\n20\t2"; /* tab separated, no final newline */
    o.time_col = "ts";
    CHECK(trace_parse(s, strlen(s), "mem", &o, &t, err, sizeof err) == 0);
    CHECK(t.n == 2);
    CHECK_NEAR(t.v[1], 2, 0);
    trace_free(&t);
    double d;
    CHECK(trace_parse_date("2014-02-14T14:30:00Z", &d) == 0);
    CHECK_NEAR(d, 1392388200, 0);
    CHECK(trace_parse_date("2014-02-14 14:30:00.5", &d) == 0);
    CHECK_NEAR(d, 1392388200.5, 1e-9);
    CHECK(trace_parse_date("2014-13-14 14:30:00", &d) == -EINVAL);
    CHECK(trace_parse_date("14/02/2014", &d) == -EINVAL);
}

int main(void)
{
    RUN(test_dates);
    RUN(test_semicolon_tab);
    RUN(test_no_time_column);
    RUN(test_bom_crlf_millis);
    RUN(test_no_header);
    RUN(test_errors_name_file_line);
    RUN(test_parse_memory);
    return UNIT_DONE();
}
