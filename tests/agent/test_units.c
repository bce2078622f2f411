/* Unit tests of the agent's small parts: the JSON writer, URL and HTTP
 * response parsing, the Docker list parser, cgroup file formats, counter
 * arithmetic and the sample set. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "buf.h"
#include "cgroup.h"
#include "collector.h"
#include "docker.h"
#include "http.h"
#include "pfile.h"
#include "sampleset.h"
#include "unit.h"

static void test_json_writer(void)
{
    struct buf b = BUF_INIT;
    buf_json_str(&b, "a\"b\\c\n\x01\xc3\xa9");
    CHECK_STR(b.p, "\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\"");
    buf_reset(&b);
    double nums[] = {0, -0.0, 1, -7, 37.5, 1e15, 123456789012, 0.1 + 0.2, 1.5e300, 2.5e-7};
    const char *want[] = {
        "0",   "0",        "1",      "-7", "37.5", "1000000000000000", "123456789012",
        "0.3", "1.5e+300", "2.5e-07"};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        buf_reset(&b);
        buf_json_num(&b, nums[i]);
        CHECK_STR(b.p, want[i]);
    }
    buf_reset(&b);
    buf_json_num(&b, NAN);
    CHECK_STR(b.p, "0");
    buf_free(&b);
}

static void test_url(void)
{
    struct http_url u;
    char err[256];
    CHECK(http_url_parse("http://127.0.0.1:8080", &u, err, sizeof err) == 0);
    CHECK_STR(u.host, "127.0.0.1");
    CHECK_STR(u.port, "8080");
    CHECK_STR(u.hostport, "127.0.0.1:8080");
    CHECK_STR(u.prefix, "");
    http_url_free(&u);
    CHECK(http_url_parse("http://[::1]:9/scalecast/", &u, err, sizeof err) == 0);
    CHECK_STR(u.host, "::1");
    CHECK_STR(u.hostport, "[::1]:9");
    CHECK_STR(u.prefix, "/scalecast");
    http_url_free(&u);
    CHECK(http_url_parse("http://example.org", &u, err, sizeof err) == 0);
    CHECK_STR(u.port, "80");
    CHECK(!u.tls);
    http_url_free(&u);
    CHECK(http_url_parse("HTTPS://scalecast.example/sc", &u, err, sizeof err) == 0);
    CHECK(u.tls);
    CHECK_STR(u.host, "scalecast.example");
    CHECK_STR(u.port, "443");
    CHECK_STR(u.prefix, "/sc");
    http_url_free(&u);
    CHECK(http_url_parse("https://[::1]:8443", &u, err, sizeof err) == 0);
    CHECK(u.tls);
    CHECK_STR(u.host, "::1");
    CHECK_STR(u.hostport, "[::1]:8443");
    http_url_free(&u);
    const char *bad[] = {"httpx://x",      "ftp://x",     "http://",     "http://h:0",
                         "http://h:99999", "http://h:8x", "http://[::1", "http://h/p?q=1",
                         "https://",       "https://h:0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK(http_url_parse(bad[i], &u, err, sizeof err) == -EINVAL);
        CHECK(strstr(err, bad[i]) != NULL); /* the message names the URL */
    }
}

/* Feeds `text` one byte at a time; returns the last result. */
static int feed_bytes(struct http_resp *r, const char *text)
{
    int rc = 0;
    for (size_t i = 0; text[i] && rc == 0; i++)
        rc = http_resp_feed(r, text + i, 1);
    return rc;
}

static void test_http_response(void)
{
    struct http_resp r;
    http_resp_init(&r, 1024);
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n"
                     "\r\n{\"accepted\": 3}";
    CHECK(feed_bytes(&r, ok) == 1);
    CHECK(r.status == 200);
    CHECK(!r.close);
    CHECK_STR(r.body.p, "{\"accepted\": 3}");

    http_resp_reset(&r);
    const char *chunked = "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n"
                          "Connection: close\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n";
    CHECK(feed_bytes(&r, chunked) == 1);
    CHECK(r.status == 400);
    CHECK(r.close);
    CHECK_STR(r.body.p, "hello world");

    http_resp_reset(&r);
    CHECK(http_resp_feed(&r, "HTTP/1.0 500 Oops\r\n\r\nbody until close", 37) == 0);
    CHECK(http_resp_eof(&r) == 1);
    CHECK(r.status == 500 && r.close);
    CHECK_STR(r.body.p, "body until close");

    http_resp_reset(&r);
    CHECK(http_resp_feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 42) == 0);
    CHECK(http_resp_eof(&r) == -EPROTO); /* cut short */

    http_resp_reset(&r);
    CHECK(http_resp_feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", 41) == -EMSGSIZE);
    http_resp_reset(&r);
    CHECK(http_resp_feed(&r, "SSH-2.0-OpenSSH\r\n\r\n", 19) == -EPROTO);
    http_resp_reset(&r);
    CHECK(http_resp_feed(&r, "HTTP/1.1 204 No Content\r\n\r\n", 27) == 1);
    CHECK(r.body.len == 0);
    http_resp_reset(&r);
    CHECK(feed_bytes(&r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") == -EPROTO);
    http_resp_free(&r);
}

#define ID1 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static void test_docker_list(void)
{
    const char *json = "[{\"Id\":\"" ID1 "\",\"Names\":[\"/web.1.abc\"],\"Labels\":{"
                       "\"com.docker.swarm.service.name\":\"web\","
                       "\"com.docker.compose.service\":\"ignored\"},\"State\":\"running\"},"
                       "{\"Id\":\"" ID2 "\",\"Names\":[\"/db\"],\"Labels\":{"
                       "\"com.docker.compose.service\":\"db\"}},"
                       "{\"Id\":\"" ID2 "\",\"Names\":[\"plain\"],\"Labels\":null}]";
    struct docker_list l;
    char err[256] = "";
    CHECK(docker_parse_list(json, strlen(json), &l, err, sizeof err) == 0);
    CHECK(l.n == 3);
    if (l.n == 3) {
        CHECK_STR(l.v[0].id, ID1);
        CHECK_STR(l.v[0].name, "web.1.abc");
        CHECK_STR(l.v[0].service, "web");
        CHECK_STR(l.v[1].service, "db");
        CHECK_STR(l.v[2].name, "plain");
        CHECK(l.v[2].service == NULL);
    }
    docker_list_free(&l);
    struct {
        const char *json, *where;
    } bad[] = {
        {"{", "not JSON"},
        {"{}", "not an array"},
        {"[1]", "[0]: not an object"},
        {"[{\"Id\":\"abc\",\"Names\":[\"/x\"]}]", "[0].Id"},
        {"[{\"Id\":\"" ID1 "\",\"Names\":[]}]", "[0].Names"},
        {"[{\"Id\":\"" ID1 "\",\"Names\":[\"/a\"]},{\"Id\":\"" ID1 "\",\"Names\":[\"/b\"],"
         "\"Labels\":[1]}]",
         "[1].Labels"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK(docker_parse_list(bad[i].json, strlen(bad[i].json), &l, err, sizeof err) == -EINVAL);
        CHECK(strstr(err, bad[i].where) != NULL);
        CHECK(l.n == 0 && l.v == NULL);
    }
}

static void test_cgroup_formats(void)
{
    struct cgroup_layout v1 = {CGROUP_V1, NULL, NULL}, v2 = {CGROUP_V2, NULL, NULL};
    unsigned long long x;
    CHECK(cgroup_parse_cpu(&v1, "123456789\n", &x) == 0 && x == 123456789ULL);
    CHECK(cgroup_parse_cpu(&v1, "junk\n", &x) == -EINVAL);
    CHECK(cgroup_parse_cpu(&v2, "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n", &x) == 0 &&
          x == 2500000ULL);
    CHECK(cgroup_parse_cpu(&v2, "user_usec 2000\n", &x) == -EINVAL);
    CHECK(cgroup_parse_inactive_file(&v1, "inactive_file 5\ntotal_inactive_file 4096\n", &x) == 0 &&
          x == 4096);
    CHECK(cgroup_parse_inactive_file(&v2, "active_file 1\ninactive_file 8192\n", &x) == 0 &&
          x == 8192);
    CHECK(parse_u64("max\n", &x) == 0 && x == UINT64_MAX);
    CHECK(parse_u64(" 42", &x) == 0 && x == 42);
    CHECK(parse_u64("-1", &x) == -EINVAL);
    CHECK(find_key_u64("MemTotal:  1000 kB\nMemFree: 5 kB\n", "MemFree", &x) == 0 && x == 5);
    CHECK(find_key_u64("MemTotalX: 1\n", "MemTotal", &x) == -ENOENT);
}

static void test_counter_delta(void)
{
    CHECK(counter_delta(100, 250) == 150);
    CHECK(counter_delta(4294967000ULL, 200) == 496); /* 32-bit wrap */
    CHECK(counter_delta(UINT64_MAX - 9, 5) == 15);   /* 64-bit wrap */
    CHECK(counter_delta(5000000, 1200) == 1200);     /* reset: counts from zero */
    CHECK(counter_delta(1000, 999) == 999);
}

static void test_sampleset(void)
{
    struct sampleset set;
    sampleset_init(&set);
    CHECK(sampleset_put(&set, NULL, "cpu", 12.5) == 0);
    CHECK(sampleset_put(&set, NULL, "cpu", 13.5) == 0); /* replaces */
    CHECK(sampleset_put(&set, NULL, "bad", NAN) == -EINVAL);
    CHECK(sampleset_put(&set, ID1, "cpu", 1) == -ENOENT);
    sampleset_container(&set, ID1, "web.1", "web");
    sampleset_container(&set, ID2, "db\"x", NULL);
    CHECK(sampleset_put(&set, ID1, "cpu", 99.5) == 0);
    CHECK(sampleset_put(&set, ID2, "mem_bytes", 1048576) == 0);
    struct buf out = BUF_INIT;
    CHECK(sampleset_write(&set, 1700000000.25, &out) == 3);
    CHECK_STR(out.p, "{\"ts\":1700000000.250,\"metrics\":{\"cpu\":13.5}}\n"
                     "{\"ts\":1700000000.250,\"container\":\"web.1\",\"service\":\"web\","
                     "\"metrics\":{\"cpu\":99.5}}\n"
                     "{\"ts\":1700000000.250,\"container\":\"db\\\"x\",\"metrics\":"
                     "{\"mem_bytes\":1048576}}\n");
    /* Every line is a JSON object the server's parser will accept. */
    for (char *line = out.p; *line;) {
        char *nl = strchr(line, '\n');
        json_error_t e;
        json_t *j = json_loadb(line, (size_t)(nl - line), 0, &e);
        CHECK(json_is_object(j));
        json_decref(j);
        line = nl + 1;
    }
    sampleset_clear(&set);
    buf_reset(&out);
    CHECK(sampleset_write(&set, 1, &out) == 0); /* nothing collected: nothing written */
    CHECK(sampleset_find(&set, ID1) == NULL);
    buf_free(&out);
    sampleset_free(&set);
}

int main(void)
{
    RUN(test_json_writer);
    RUN(test_url);
    RUN(test_http_response);
    RUN(test_docker_list);
    RUN(test_cgroup_formats);
    RUN(test_counter_delta);
    RUN(test_sampleset);
    return UNIT_DONE();
}
