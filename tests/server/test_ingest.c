/* Tests of ingest body parsing and name validation (server/ingest.c). */
#include "ingest.h"
#include "unit.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static char err[512];

/* Parses a NUL-terminated body; returns the parser's result. */
static int parse(const char *body, struct ingest_batch *b)
{
    err[0] = '\0';
    return ingest_parse_json(body, strlen(body), b, err, sizeof err);
}

/* Expects the body to be refused with a message containing `want`, and the
 * batch left with nothing in it. */
static void expect_error(const char *body, const char *want, int line)
{
    struct ingest_batch b;
    memset(&b, 0xAB, sizeof b);
    int rc = parse(body, &b);
    CHECK(rc < 0);
    CHECK(b.n == 0 && b.samples == NULL && b.owner == NULL);
    if (!strstr(err, want)) {
        unit_failures++;
        fprintf(stderr, "%s:%d: error \"%s\" does not contain \"%s\"\n", __FILE__, line, err, want);
    }
    if (rc == 0)
        ingest_batch_free(&b);
}
#define EXPECT_ERROR(body, want) expect_error(body, want, __LINE__)

static void test_single_node(void)
{
    struct ingest_batch b;
    int rc = parse("{\"node\": \"node-a\", \"samples\": ["
                   "{\"ts\": 1732170000.5, \"metrics\": {\"cpu\": 37.5, \"mem\": 61.2}},"
                   "{\"ts\": 1732170001.5, \"container\": \"web.1\", \"service\": \"web\","
                   " \"metrics\": {\"cpu\": 12, \"mem\": 3.1}}]}",
                   &b);
    CHECK(rc == 0);
    CHECK(b.n == 4);
    if (rc != 0 || b.n != 4)
        return;
    /* Metrics keep their order in the document. */
    CHECK_STR(b.samples[0].node, "node-a");
    CHECK_STR(b.samples[0].container, "");
    CHECK_STR(b.samples[0].service, "");
    CHECK_STR(b.samples[0].metric, "cpu");
    CHECK(b.samples[0].ts == 1732170000.5);
    CHECK(b.samples[0].value == 37.5);
    CHECK_STR(b.samples[1].metric, "mem");
    CHECK(b.samples[1].value == 61.2);
    CHECK_STR(b.samples[2].container, "web.1");
    CHECK_STR(b.samples[2].service, "web");
    CHECK(b.samples[2].ts == 1732170001.5);
    /* An integer is read as a double. */
    CHECK(b.samples[2].value == 12.0);
    CHECK_STR(b.samples[3].metric, "mem");
    ingest_batch_free(&b);
    CHECK(b.samples == NULL && b.n == 0);
}

static void test_relay_array(void)
{
    struct ingest_batch b;
    int rc =
        parse("[{\"node\": \"n1\", \"samples\": [{\"ts\": 1732170000, \"metrics\": {\"a\": 1}}]},"
              " {\"node\": \"n2\", \"samples\": []},"
              " {\"node\": \"n3\", \"samples\": [{\"ts\": 1732170000, \"metrics\": {\"b\": 2}},"
              "   {\"ts\": 1732170001, \"metrics\": {\"b\": 3}}]}]",
              &b);
    CHECK(rc == 0);
    CHECK(b.n == 3);
    if (rc == 0 && b.n == 3) {
        CHECK_STR(b.samples[0].node, "n1");
        CHECK_STR(b.samples[1].node, "n3");
        CHECK_STR(b.samples[2].node, "n3");
        CHECK(b.samples[2].value == 3);
        ingest_batch_free(&b);
    }
    CHECK(parse("[]", &b) == 0 && b.n == 0);
    ingest_batch_free(&b);
    CHECK(parse("{\"node\": \"a\", \"samples\": []}", &b) == 0 && b.n == 0);
    ingest_batch_free(&b);
}

/* Only `len` bytes are read: the body need not be NUL-terminated. */
static void test_length_bounded(void)
{
    const char *text = "{\"node\": \"a\", \"samples\": [{\"ts\": 1732170000, \"metrics\": "
                       "{\"cpu\": 1}}]}GARBAGE";
    size_t len = strlen(text) - strlen("GARBAGE");
    char *body = xmalloc(len);
    memcpy(body, text, len); /* no terminator */
    struct ingest_batch b;
    int rc = ingest_parse_json(body, len, &b, err, sizeof err);
    CHECK(rc == 0);
    CHECK(b.n == 1);
    if (rc == 0)
        ingest_batch_free(&b);
    rc = ingest_parse_json(text, strlen(text), &b, err, sizeof err);
    CHECK(rc < 0);
    CHECK(strstr(err, "invalid JSON") != NULL);
    free(body);
}

static void test_errors_name_the_place(void)
{
    EXPECT_ERROR("", "invalid JSON");
    EXPECT_ERROR("not json", "expected a JSON object or array at the top level");
    EXPECT_ERROR("   \n\t ", "invalid JSON: unexpected end of input");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": []} x", "trailing characters");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [", "invalid JSON");
    EXPECT_ERROR("\"text\"", "expected a JSON object or array at the top level");
    EXPECT_ERROR("12", "expected a JSON object or array");
    EXPECT_ERROR("{\"samples\": []}", "missing 'node'");
    EXPECT_ERROR("{\"node\": \"a\"}", "missing 'samples'");
    EXPECT_ERROR("{\"node\": 1, \"samples\": []}", "node: not a string");
    EXPECT_ERROR("{\"node\": \"\", \"samples\": []}", "node: must be 1-253 characters");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": {}}", "samples: not an array");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [[]]}", "samples[0]: not an object");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [], \"extra\": 1}",
                 "extra: unknown field (expected node, samples)");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [{\"metrics\": {\"cpu\": 1}}]}",
                 "samples[0]: missing 'ts'");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [{\"ts\": 1732170000}]}",
                 "samples[0]: missing 'metrics'");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [{\"ts\": 1732170000, \"metrics\": {}}]}",
                 "samples[0].metrics: empty");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [{\"ts\": 1732170000, \"metrics\": []}]}",
                 "samples[0].metrics: not an object");
    EXPECT_ERROR(
        "{\"node\": \"a\", \"samples\": [{\"ts\": \"1732170000\", \"metrics\": {\"c\": 1}}]}",
        "samples[0].ts: not a number");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [{\"ts\": 1732170000, \"metrics\": {\"c\": 1},"
                 " \"tags\": {}}]}",
                 "samples[0].tags: unknown field");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [{\"ts\": 1732170000, \"container\": 5,"
                 " \"metrics\": {\"c\": 1}}]}",
                 "samples[0].container: not a string");
    /* The issue's own example of a message. */
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": ["
                 "{\"ts\": 1732170000, \"metrics\": {\"cpu\": 1}},"
                 "{\"ts\": 1732170001, \"metrics\": {\"cpu\": 1}},"
                 "{\"ts\": 1732170002, \"metrics\": {\"cpu\": 1}},"
                 "{\"ts\": 1732170003, \"metrics\": {\"mem\": 2, \"cpu\": \"high\"}}]}",
                 "samples[3].metrics.cpu: not a number");
    /* In a relay array, the element's index leads the path. */
    EXPECT_ERROR("[{\"node\": \"a\", \"samples\": []}, {\"node\": \"b\", \"samples\": ["
                 "{\"ts\": 1732170000, \"metrics\": {\"cpu\": null}}]}]",
                 "[1].samples[0].metrics.cpu: not a number");
    EXPECT_ERROR("[{\"node\": \"a\", \"samples\": []}, 7]", "[1]: not an object");
}

static void test_numbers(void)
{
    EXPECT_ERROR(
        "{\"node\": \"a\", \"samples\": [{\"ts\": 1732170000, \"metrics\": {\"c\": NaN}}]}",
        "invalid JSON");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [{\"ts\": 1732170000, \"metrics\": "
                 "{\"c\": Infinity}}]}",
                 "invalid JSON");
    EXPECT_ERROR(
        "{\"node\": \"a\", \"samples\": [{\"ts\": 1732170000, \"metrics\": {\"c\": 1e400}}]}",
        "samples[0].metrics.c: number out of range");
    EXPECT_ERROR(
        "{\"node\": \"a\", \"samples\": [{\"ts\": 1732170000, \"metrics\": {\"c\": true}}]}",
        "samples[0].metrics.c: not a number");
    /* Timestamps: Unix seconds within [INGEST_TS_MIN, INGEST_TS_MAX]. */
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [{\"ts\": 0, \"metrics\": {\"c\": 1}}]}",
                 "samples[0].ts: out of range");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [{\"ts\": -5, \"metrics\": {\"c\": 1}}]}",
                 "samples[0].ts: out of range");
    EXPECT_ERROR(
        "{\"node\": \"a\", \"samples\": [{\"ts\": 1732170000123, \"metrics\": {\"c\": 1}}]}",
        "samples[0].ts: out of range");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [{\"ts\": 123456789012345678901234567890,"
                 " \"metrics\": {\"c\": 1}}]}",
                 "samples[0].ts: out of range");

    struct ingest_batch b;
    CHECK(parse("{\"node\": \"a\", \"samples\": [{\"ts\": 1, \"metrics\": {\"c\": 1}},"
                " {\"ts\": 1e11, \"metrics\": {\"c\": -1.7976931348623157e308}},"
                " {\"ts\": 1732170000, \"metrics\": {\"c\": 123456789012345678901234567890}},"
                " {\"ts\": 1732170000, \"metrics\": {\"d\": 5e-324}}]}",
                &b) == 0);
    CHECK(b.n == 4);
    if (b.n == 4) {
        CHECK(b.samples[0].ts == INGEST_TS_MIN);
        CHECK(b.samples[1].ts == INGEST_TS_MAX);
        CHECK(b.samples[1].value == -1.7976931348623157e308);
        CHECK_NEAR(b.samples[2].value, 1.2345678901234568e29, 1e14);
        CHECK(b.samples[3].value > 0);
        ingest_batch_free(&b);
    }
}

static void test_nesting(void)
{
    size_t depth = 100000;
    char *body = xmalloc(depth + 1);
    memset(body, '[', depth);
    body[depth] = '\0';
    EXPECT_ERROR(body, "[0]: not an object (an array)");
    for (size_t i = 0; i + 5 < depth; i += 5)
        memcpy(body + i, "{\"a\":", 5);
    EXPECT_ERROR(body, "a: unknown field");
    /* Deep nesting where a value is expected. */
    size_t off = (size_t)snprintf(body, depth,
                                  "{\"node\": \"a\", \"samples\": [{\"ts\": 1, "
                                  "\"metrics\": {\"c\": ");
    memset(body + off, '[', depth - off - 1);
    body[depth - 1] = '\0';
    EXPECT_ERROR(body, "samples[0].metrics.c: not a number (an array)");
    free(body);
}

static void test_names(void)
{
    char n253[254], n254[255], m128[129], m129[130], l255[256], l256[257];
    memset(n253, 'n', 253), n253[253] = 0;
    memset(n254, 'n', 254), n254[254] = 0;
    memset(m128, 'm', 128), m128[128] = 0;
    memset(m129, 'm', 129), m129[129] = 0;
    memset(l255, 'l', 255), l255[255] = 0;
    memset(l256, 'l', 256), l256[256] = 0;

    CHECK(ingest_check_name(NAME_NODE, "node-a") == NULL);
    CHECK(ingest_check_name(NAME_NODE, "10.0.0.1:9100") == NULL);
    CHECK(ingest_check_name(NAME_NODE, "host_1.example.com") == NULL);
    CHECK(ingest_check_name(NAME_NODE, n253) == NULL);
    CHECK(ingest_check_name(NAME_NODE, n254) != NULL);
    CHECK(ingest_check_name(NAME_NODE, "") != NULL);
    CHECK(ingest_check_name(NAME_NODE, "a b") != NULL);
    CHECK(ingest_check_name(NAME_NODE, "a/b") != NULL);
    CHECK(ingest_check_name(NAME_NODE, "a'b") != NULL);
    CHECK(ingest_check_name(NAME_NODE, "a\"b") != NULL);
    CHECK(ingest_check_name(NAME_NODE, "a,b") != NULL);
    CHECK(ingest_check_name(NAME_NODE, "a\nb") != NULL);
    CHECK(ingest_check_name(NAME_NODE, "n\xc3\xb6") != NULL);

    CHECK(ingest_check_name(NAME_METRIC, "cpu") == NULL);
    CHECK(ingest_check_name(NAME_METRIC, "disk_read_bps") == NULL);
    CHECK(ingest_check_name(NAME_METRIC, "_private") == NULL);
    CHECK(ingest_check_name(NAME_METRIC, "gpu0_util") == NULL);
    CHECK(ingest_check_name(NAME_METRIC, m128) == NULL);
    CHECK(ingest_check_name(NAME_METRIC, m129) != NULL);
    CHECK(ingest_check_name(NAME_METRIC, "") != NULL);
    CHECK(ingest_check_name(NAME_METRIC, "0cpu") != NULL);
    CHECK(ingest_check_name(NAME_METRIC, "cpu.total") != NULL);
    CHECK(ingest_check_name(NAME_METRIC, "cpu-total") != NULL);
    CHECK(ingest_check_name(NAME_METRIC, "cpu total") != NULL);

    CHECK(ingest_check_name(NAME_LABEL, "") == NULL);
    CHECK(ingest_check_name(NAME_LABEL, "web.1.abcdef") == NULL);
    CHECK(ingest_check_name(NAME_LABEL, "k8s/pod@ns+x:1-2_3") == NULL);
    CHECK(ingest_check_name(NAME_LABEL, l255) == NULL);
    CHECK(ingest_check_name(NAME_LABEL, l256) != NULL);
    CHECK(ingest_check_name(NAME_LABEL, "a,b") != NULL);
    CHECK(ingest_check_name(NAME_LABEL, "a\"b") != NULL);
    CHECK(ingest_check_name(NAME_LABEL, "a b") != NULL);
    CHECK(ingest_check_name(NAME_LABEL, "x' OR '1'='1") != NULL);

    /* The parser applies the rules and says which one. */
    EXPECT_ERROR("{\"node\": \"a'; DROP TABLE series; --\", \"samples\": []}",
                 "node: may hold only letters, digits");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [{\"ts\": 1732170000, \"metrics\": "
                 "{\"1st\": 1}}]}",
                 "samples[0].metrics.1st: metric name must not start with a digit");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [{\"ts\": 1732170000, \"service\": \"a b\","
                 " \"metrics\": {\"c\": 1}}]}",
                 "samples[0].service: may hold only");
    EXPECT_ERROR("{\"node\": \"a\\u0000b\", \"samples\": []}", "\\u0000 is not allowed");
    /* Escapes are decoded before the check. */
    struct ingest_batch b;
    CHECK(parse("{\"node\": \"n\\u002da\", \"samples\": [{\"ts\": 1732170000,"
                " \"container\": \"\\u0077eb\\/1\", \"metrics\": {\"c\\u0070u\": 1}}]}",
                &b) == 0);
    CHECK(b.n == 1);
    if (b.n == 1) {
        CHECK_STR(b.samples[0].node, "n-a");
        CHECK_STR(b.samples[0].container, "web/1");
        CHECK_STR(b.samples[0].metric, "cpu");
        ingest_batch_free(&b);
    }
}

static void test_duplicate_fields(void)
{
    EXPECT_ERROR("{\"node\": \"a\", \"node\": \"b\", \"samples\": []}", "node: given twice");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [], \"samples\": []}", "samples: given twice");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [{\"ts\": 1732170000, \"ts\": 1732170001, "
                 "\"metrics\": {\"c\": 1}}]}",
                 "samples[0].ts: given twice");
    EXPECT_ERROR("{\"node\": \"a\", \"samples\": [{\"ts\": 1732170000, \"metrics\": {\"c\": 1}, "
                 "\"metrics\": {\"d\": 1}}]}",
                 "samples[0].metrics: given twice");
    /* Fields in any order: node after samples, ts after metrics. */
    struct ingest_batch b;
    CHECK(parse("{\"samples\": [{\"metrics\": {\"c\": 2}, \"service\": \"s\", \"ts\": 1732170000}],"
                " \"node\": \"late\"}",
                &b) == 0);
    CHECK(b.n == 1);
    if (b.n == 1) {
        CHECK_STR(b.samples[0].node, "late");
        CHECK_STR(b.samples[0].service, "s");
        CHECK(b.samples[0].ts == 1732170000);
        ingest_batch_free(&b);
    }
}

/* Every number must read exactly as strtod reads it, whichever path the
 * parser takes (its fast path for short decimals, strtod for the rest). */
static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void random_number(char *buf, size_t len)
{
    static const char *const fixed[] = {"0",
                                        "-0",
                                        "0.1",
                                        "0.2",
                                        "0.30000000000000004",
                                        "4.35",
                                        "1e22",
                                        "1e23",
                                        "9007199254740993",
                                        "9007199254740992",
                                        "1234567890123456789",
                                        "12345678901234567890",
                                        "0.000001",
                                        "1e-7",
                                        "123.456e-7",
                                        "2.2250738585072014e-308",
                                        "4.9e-324",
                                        "1.7976931348623157e308",
                                        "1E5",
                                        "1e+5",
                                        "99999999999999999999999",
                                        "0.1000000000000000055511151231257827"};
    uint64_t r = next_rand();
    size_t nfixed = sizeof fixed / sizeof fixed[0];
    if (r % 8 == 0) {
        snprintf(buf, len, "%s", fixed[(r >> 8) % nfixed]);
        return;
    }
    double mag = (double)(next_rand() % 1000000007ULL) / (double)(1 + next_rand() % 100000);
    int exp = (int)(next_rand() % 60) - 30;
    double v = mag * pow(10, exp) * (next_rand() % 2 ? -1 : 1);
    int prec = 1 + (int)(next_rand() % 17);
    switch (next_rand() % 3) {
    case 0:
        snprintf(buf, len, "%.*g", prec, v);
        break;
    case 1:
        snprintf(buf, len, "%.*e", prec, v);
        break;
    default:
        snprintf(buf, len, "%.*f", prec % 8, v);
        break;
    }
}

static void test_numbers_exact(void)
{
    enum { N = 20000 };
    static char nums[N][48];
    size_t cap = N * 64 + 64;
    char *body = xmalloc(cap);
    size_t off = (size_t)snprintf(body, cap, "{\"node\": \"n\", \"samples\": [");
    for (int i = 0; i < N; i++) {
        random_number(nums[i], sizeof nums[i]);
        off += (size_t)snprintf(body + off, cap - off, "%s{\"ts\": %d, \"metrics\": {\"v\": %s}}",
                                i ? "," : "", 1732170000 + i, nums[i]);
    }
    off += (size_t)snprintf(body + off, cap - off, "]}");
    struct ingest_batch b;
    int rc = ingest_parse_json(body, off, &b, err, sizeof err);
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "  %s\n", err);
        free(body);
        return;
    }
    CHECK(b.n == N);
    int wrong = 0;
    for (int i = 0; i < N && (size_t)i < b.n; i++) {
        double want = strtod(nums[i], NULL);
        if (memcmp(&want, &b.samples[i].value, sizeof want) != 0) {
            if (wrong++ < 5)
                fprintf(stderr, "  %s read as %.17g, strtod says %.17g\n", nums[i],
                        b.samples[i].value, want);
        }
    }
    CHECK(wrong == 0);
    ingest_batch_free(&b);
    free(body);
}

/* An error message is sent to the client inside a JSON string, so it must
 * be valid UTF-8 whatever bytes the body held (a name is cut to 64 bytes
 * for the message: not in the middle of a character). */
static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 0
                : (*p & 0xe0) == 0xc0 ? 1
                : (*p & 0xf0) == 0xe0 ? 2
                : (*p & 0xf8) == 0xf0 ? 3
                                      : -1;
        if (n < 0)
            return false;
        p++;
        for (int i = 0; i < n; i++, p++) {
            if ((*p & 0xc0) != 0x80)
                return false;
        }
    }
    return true;
}

static void test_error_messages_utf8(void)
{
    char long_key[200];
    memset(long_key, 'a', 63);
    snprintf(long_key + 63, sizeof long_key - 63, "\xc3\xa9\xc3\xa9");
    char bodies[4][300];
    snprintf(bodies[0], sizeof bodies[0], "{\"node\": \"a\", \"samples\": [], \"\xff\xfe\": 1}");
    snprintf(bodies[1], sizeof bodies[1],
             "{\"node\": \"a\", \"samples\": [{\"ts\": 1, \"metrics\": {\"c\xffu\": 1}}]}");
    snprintf(bodies[2], sizeof bodies[2],
             "{\"node\": \"a\", \"samples\": [{\"ts\": 1, \"metrics\": {\"%s\": 1}}]}", long_key);
    snprintf(bodies[3], sizeof bodies[3], "{\"node\": \"a\", \"samples\": [], \"%s\": 1}",
             long_key);
    for (int i = 0; i < 4; i++) {
        struct ingest_batch b;
        CHECK(parse(bodies[i], &b) < 0);
        if (!valid_utf8(err)) {
            unit_failures++;
            fprintf(stderr, "%s:%d: body %d: error message is not valid UTF-8: \"%s\"\n", __FILE__,
                    __LINE__, i, err);
        }
    }
}

/* A long key is cut in the message, which stays readable and bounded; a
 * tiny error buffer is filled and terminated, not overrun. */
static void test_message_bounds(void)
{
    char key[1001];
    memset(key, 'k', 1000);
    key[1000] = '\0';
    char body[1200];
    snprintf(body, sizeof body, "{\"node\": \"a\", \"samples\": [], \"%s\": 1}", key);
    EXPECT_ERROR(body, "kkkkkkkkkkkkkkkk: unknown field");
    CHECK(strlen(err) < 200);

    char small[12];
    memset(small, 'X', sizeof small);
    struct ingest_batch b;
    CHECK(ingest_parse_json("{\"node\": 1}", 11, &b, small, sizeof small) < 0);
    CHECK(memchr(small, '\0', sizeof small) != NULL);
}

/* A batch of n samples of one metric; the last value is a string if bad. */
static char *big_batch(size_t n, bool bad_last, size_t *len)
{
    size_t cap = n * 64 + 64;
    char *body = xmalloc(cap);
    size_t off = (size_t)snprintf(body, cap, "{\"node\": \"big\", \"samples\": [");
    for (size_t i = 0; i < n; i++) {
        bool bad = bad_last && i == n - 1;
        off += (size_t)snprintf(body + off, cap - off,
                                "%s{\"ts\": %zu, \"metrics\": {\"v\": %s%zu%s}}", i ? "," : "",
                                1732170000 + i, bad ? "\"" : "", i, bad ? "\"" : "");
    }
    off += (size_t)snprintf(body + off, cap - off, "]}");
    *len = off;
    return body;
}

static void test_many_samples(void)
{
    size_t n = 100000, len;
    char *body = big_batch(n, false, &len);
    struct ingest_batch b;
    int rc = ingest_parse_json(body, len, &b, err, sizeof err);
    CHECK(rc == 0);
    CHECK(b.n == n);
    if (rc == 0) {
        CHECK(b.samples[n - 1].ts == 1732170000.0 + (double)(n - 1));
        CHECK(b.samples[n - 1].value == (double)(n - 1));
        ingest_batch_free(&b);
    }
    free(body);
    /* The error in the last of them is found and named. */
    body = big_batch(n, true, &len);
    EXPECT_ERROR(body, "samples[99999].metrics.v: not a number");
    free(body);
}

int main(void)
{
    RUN(test_single_node);
    RUN(test_relay_array);
    RUN(test_length_bounded);
    RUN(test_errors_name_the_place);
    RUN(test_numbers);
    RUN(test_nesting);
    RUN(test_names);
    RUN(test_duplicate_fields);
    RUN(test_numbers_exact);
    RUN(test_error_messages_utf8);
    RUN(test_message_bounds);
    RUN(test_many_samples);
    return UNIT_DONE();
}
