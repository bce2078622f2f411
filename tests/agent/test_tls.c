/* HTTPS push against the real scalecastd, with a CA and certificates made
 * at test time by the openssl command in a temporary directory:
 *
 *   1. the agent without --ca-file (the system's CA store, which does not
 *      hold the test CA): every push fails, one WARN line says "certificate
 *      verify failed: unable to get local issuer certificate", the samples
 *      stay in the spool;
 *   2. a server whose certificate, signed by the test CA, names another
 *      host: the same with "IP address mismatch";
 *   3. the right server, the agent restarted with --ca-file and the URL
 *      https://localhost:PORT (DNS name and SNI): everything spooled in 1
 *      and 2 and everything collected since is stored exactly once, also
 *      through 413 answers (the server takes bodies of 1 KiB at most, so
 *      batches are split), each ending a TLS connection;
 *   4. a self-signed server certificate (CA:FALSE) given as its own CA file:
 *      delivered (what an --insecure switch would otherwise be wanted for);
 *   5. https:// to a plain-HTTP scalecastd: a handshake failure that says so;
 * and a missing or unusable CA file, or one given with an http:// URL,
 * stops the agent at start with a message naming the file.
 * The samples are read back over HTTPS with libcurl, trusting the test CA.
 *
 * Usage: test_agent_tls AGENT SCALECASTD OPENSSL (KEEP_TEST_DIR=1 keeps the
 * temporary directory, logs included). */
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "unit.h"

#define TOKEN "tls-test-token"

static const char *agent_bin, *server_bin, *openssl_bin;
static char *dir;
static int port;
static char path_buf[8][512];

/* dir/name, in one of a few rotating buffers. */
static const char *in_dir(const char *name)
{
    static int next;
    char *p = path_buf[next++ % 8];
    snprintf(p, sizeof path_buf[0], "%s/%s", dir, name);
    return p;
}

static int run_openssl(char *const args[])
{
    char *argv[32] = {(char *)openssl_bin};
    for (int i = 0; args[i] && i < 30; i++)
        argv[i + 1] = args[i];
    pid_t pid = harness_spawn(argv, in_dir("openssl.log"));
    return harness_wait(pid, 30);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* A certificate NAME.pem / NAME.key for `san`, signed by the test CA. */
static int make_cert(const char *name, const char *san)
{
    char key[512], csr[512], pem[512], ext[512], text[512];
    snprintf(key, sizeof key, "%s/%s.key", dir, name);
    snprintf(csr, sizeof csr, "%s/%s.csr", dir, name);
    snprintf(pem, sizeof pem, "%s/%s.pem", dir, name);
    snprintf(ext, sizeof ext, "%s/%s.ext", dir, name);
    snprintf(text, sizeof text,
             "subjectAltName = %s\nbasicConstraints = CA:FALSE\n"
             "keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n",
             san);
    if (write_file(ext, text) < 0)
        return -1;
    char *req[] = {
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",   "-nodes", "-keyout",
        key,   "-out",    csr,  "-subj",    "/CN=scalecast test server", NULL};
    char *sign[] = {"x509",
                    "-req",
                    "-in",
                    csr,
                    "-CA",
                    (char *)in_dir("ca.pem"),
                    "-CAkey",
                    (char *)in_dir("ca.key"),
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-out",
                    pem,
                    "-extfile",
                    ext,
                    NULL};
    return run_openssl(req) == 0 && run_openssl(sign) == 0 ? 0 : -1;
}

static int make_pki(void)
{
    char *ca[] = {"req",
                  "-x509",
                  "-newkey",
                  "ec",
                  "-pkeyopt",
                  "ec_paramgen_curve:P-256",
                  "-nodes",
                  "-keyout",
                  (char *)in_dir("ca.key"),
                  "-out",
                  (char *)in_dir("ca.pem"),
                  "-days",
                  "2",
                  "-subj",
                  "/CN=scalecast test CA",
                  "-addext",
                  "basicConstraints = critical, CA:TRUE",
                  "-addext",
                  "keyUsage = critical, keyCertSign, cRLSign",
                  NULL};
    if (run_openssl(ca) != 0)
        return -1;
    if (make_cert("server", "IP:127.0.0.1, DNS:localhost") < 0)
        return -1;
    if (make_cert("other", "DNS:other.example, IP:192.0.2.10") < 0)
        return -1;
    char *self[] = {"req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    (char *)in_dir("self.key"),
                    "-out",
                    (char *)in_dir("self.pem"),
                    "-days",
                    "2",
                    "-subj",
                    "/CN=scalecast self-signed",
                    "-addext",
                    "subjectAltName = IP:127.0.0.1",
                    "-addext",
                    "basicConstraints = critical, CA:FALSE",
                    NULL};
    return run_openssl(self) == 0 ? 0 : -1;
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    buf_add(arg, data, size * n);
    return size * n;
}

/* GET https://HOST:port/PATH with libcurl, HOST resolved to 127.0.0.1,
 * trusting the CA file `ca`. Returns the status (body in *body) or -1. */
static long https_get(const char *host, const char *ca, const char *path, struct buf *body)
{
    CURL *c = curl_easy_init();
    char url[256], resolve[128];
    snprintf(url, sizeof url, "https://%s:%d%s", host, port, path);
    snprintf(resolve, sizeof resolve, "%s:%d:127.0.0.1", host, port);
    struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
    struct curl_slist *r = curl_slist_append(NULL, resolve);
    buf_reset(body);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_RESOLVE, r);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    long status = -1;
    if (curl_easy_perform(c) != CURLE_OK ||
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = -1;
    curl_slist_free_all(h);
    curl_slist_free_all(r);
    curl_easy_cleanup(c);
    return status;
}

/* scalecastd on 127.0.0.1:port serving HTTPS with CERT.pem / CERT.key,
 * probed as `host`, trusting `ca` (a file in the test directory). */
static pid_t start_server(const char *cert, const char *host, const char *ca)
{
    char conf[1024], listen_addr[64], path[512];
    snprintf(path, sizeof path, "%s/%s.conf", dir, cert);
    snprintf(conf, sizeof conf,
             "[server]\ntls_cert = %s/%s.pem\ntls_key = %s/%s.key\n"
             "ingest_token = " TOKEN "\nread_token = " TOKEN "\nmax_body_size = 1KiB\n",
             dir, cert, dir, cert);
    CHECK(write_file(path, conf) == 0);
    snprintf(listen_addr, sizeof listen_addr, "127.0.0.1:%d", port);
    char *argv[] = {(char *)server_bin,
                    "--config",
                    path,
                    "--listen",
                    listen_addr,
                    "--db",
                    (char *)in_dir("scalecast.db"),
                    NULL};
    pid_t pid = harness_spawn(argv, in_dir("server.log"));
    struct buf b = BUF_INIT;
    char ca_path[512];
    snprintf(ca_path, sizeof ca_path, "%s/%s", dir, ca);
    double end = harness_now() + 15;
    while (https_get(host, ca_path, "/healthz", &b) != 200 && harness_now() < end)
        harness_sleep(0.1);
    CHECK(https_get(host, ca_path, "/healthz", &b) == 200);
    buf_free(&b);
    return pid;
}

/* The points of metric `cpu` stored for the test node, read over HTTPS; a
 * new JSON array (empty when the query fails). */
static json_t *stored_points(void)
{
    struct buf body = BUF_INIT;
    long status =
        https_get("127.0.0.1", in_dir("ca.pem"), "/api/v1/series?node=tls-node&metric=cpu", &body);
    json_t *arr = NULL;
    if (status == 200) {
        json_t *j = json_loadb(body.p, body.len, 0, NULL);
        arr = json_incref(json_object_get(j, "points"));
        json_decref(j);
    } else {
        fprintf(stderr, "series query: HTTP %ld\n", status);
    }
    buf_free(&body);
    return json_is_array(arr) ? arr : (json_decref(arr), json_array());
}

/* Lines of the file at `path` containing both needles. */
static int count_lines(const char *path, const char *a, const char *b)
{
    char *text = harness_slurp(path);
    int n = 0;
    for (char *line = text; line && *line;) {
        char *eol = strchr(line, '\n');
        if (eol)
            *eol = '\0';
        if (strstr(line, a) && (!b || strstr(line, b)))
            n++;
        line = eol ? eol + 1 : line + strlen(line);
    }
    free(text);
    return n;
}

static void dump(const char *what, const char *path)
{
    char *text = harness_slurp(path);
    fprintf(stderr, "---- %s ----\n%s", what, text ? text : "(none)\n");
    free(text);
}

/* Runs the agent for `seconds` and stops it with SIGTERM; its stats in *st. */
static void run_agent(const char *url, const char *ca_file, const char *log, double seconds,
                      struct agent_stats *st)
{
    char *argv[32] = {(char *)agent_bin,
                      "--server",
                      (char *)url,
                      "--node",
                      "tls-node",
                      "--interval",
                      "1",
                      "--timeout",
                      "3",
                      "--flush-timeout",
                      "2",
                      "--spool-dir",
                      (char *)in_dir("spool"),
                      "--docker-socket",
                      "",
                      "--nvml",
                      "",
                      "--log-level",
                      "debug",
                      NULL};
    int n = 19;
    if (ca_file) {
        argv[n++] = "--ca-file";
        argv[n++] = (char *)ca_file;
    }
    argv[n] = NULL;
    /* The token through the environment, as the docs recommend. */
    setenv("SCALECAST_TOKEN", TOKEN, 1);
    pid_t pid = harness_spawn(argv, log);
    harness_sleep(seconds);
    kill(pid, SIGTERM);
    CHECK(harness_wait(pid, 15) == 0);
    memset(st, 0, sizeof *st);
    CHECK(harness_agent_stats(log, st) == 0);
}

/* 1: no CA given; the system's store does not know the test CA. */
static void test_untrusted(unsigned long long *spooled)
{
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
    const char *log = in_dir("agent-untrusted.log");
    struct agent_stats st;
    run_agent(url, NULL, log, 4.5, &st);
    CHECK(st.collected >= 3);
    CHECK(st.delivered == 0);
    CHECK(st.left == st.collected);
    /* Said once, clearly, however many retries. */
    CHECK(count_lines(log, "WARN", "certificate verify failed: unable to get local issuer") == 1);
    CHECK(count_lines(log, "push failed again (certificate verify failed", NULL) >= 1);
    *spooled = st.left;
    if (unit_failures)
        dump("agent, no CA", log);
}

/* 2: the server's certificate is for another host. */
static void test_wrong_name(unsigned long long *spooled)
{
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
    const char *log = in_dir("agent-wrong-name.log");
    struct agent_stats st;
    run_agent(url, in_dir("ca.pem"), log, 3.5, &st);
    CHECK(st.collected >= 2);
    CHECK(st.delivered == 0);
    CHECK(st.left == *spooled + st.collected);
    CHECK(count_lines(log, "WARN",
                      "certificate verify failed: IP address mismatch (the certificate is "
                      "not for '127.0.0.1')") == 1);
    *spooled = st.left;
    if (unit_failures)
        dump("agent, wrong name", log);
}

/* 3: the right CA: the spool drains, every sample stored once. */
static void test_delivered(unsigned long long spooled)
{
    char url[64];
    snprintf(url, sizeof url, "https://localhost:%d", port);
    const char *log = in_dir("agent-trusted.log");
    struct agent_stats st;
    run_agent(url, in_dir("ca.pem"), log, 5, &st);
    CHECK(st.left == 0 && st.refused == 0 && st.dropped == 0);
    CHECK(st.delivered == spooled + st.collected);
    CHECK(count_lines(log, "TLS with localhost:", "TLSv1.") >= 1);
    /* 1 KiB bodies at most: batches were refused with 413 and split. */
    CHECK(count_lines(log, "server refused a batch", "413") == 1);
    json_t *p = stored_points();
    size_t n = json_array_size(p);
    fprintf(stderr, "%zu points stored, %llu spooled before, %llu collected with the CA\n", n,
            spooled, st.collected);
    CHECK(n == spooled + st.collected);
    for (size_t i = 1; i < n; i++) {
        double a = json_number_value(json_array_get(json_array_get(p, i - 1), 0));
        double b = json_number_value(json_array_get(json_array_get(p, i), 0));
        CHECK(b > a); /* distinct timestamps: none stored twice */
    }
    json_decref(p);
    if (unit_failures)
        dump("agent, right CA", log);
}

/* 4: a self-signed server certificate trusted as its own CA file. */
static void test_self_signed(void)
{
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
    const char *log = in_dir("agent-self-signed.log");
    struct agent_stats st;
    run_agent(url, in_dir("self.pem"), log, 2.5, &st);
    CHECK(st.collected >= 1);
    CHECK(st.delivered == st.collected && st.left == 0);
    CHECK(count_lines(log, "WARN", NULL) == 0);
    if (unit_failures)
        dump("agent, self-signed", log);
}

/* 5: an https:// URL for a server that speaks plain HTTP. */
static void test_plain_server(void)
{
    char listen_addr[64], url[64];
    snprintf(listen_addr, sizeof listen_addr, "127.0.0.1:%d", port);
    char *argv[] = {(char *)server_bin,         "--listen", listen_addr, "--db",
                    (char *)in_dir("plain.db"), NULL};
    pid_t server = harness_spawn(argv, in_dir("server.log"));
    struct buf b = BUF_INIT;
    double end = harness_now() + 15;
    while (harness_http_get(port, "/healthz", &b) != 200 && harness_now() < end)
        harness_sleep(0.1);
    buf_free(&b);
    snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
    const char *log = in_dir("agent-plain.log");
    struct agent_stats st;
    run_agent(url, in_dir("ca.pem"), log, 2.5, &st);
    CHECK(st.delivered == 0 && st.left == st.collected);
    CHECK(count_lines(log, "WARN",
                      "TLS handshake failed: wrong version number (is the server plain HTTP?") ==
          1);
    kill(server, SIGTERM);
    CHECK(harness_wait(server, 15) == 0);
    if (unit_failures)
        dump("agent, plain server", log);
}

/* A CA file that cannot be used stops the agent at start, naming it. */
static void test_bad_ca_file(void)
{
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
    const char *missing = in_dir("no-such-ca.pem");
    const char *garbage = in_dir("server.ext"); /* a text file, not PEM */
    const char *cases[][3] = {
        {url, missing, "No such file"},
        {url, garbage, "expected PEM certificates"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *log = in_dir("agent-bad-ca.log");
        remove(log);
        char *argv[] = {(char *)agent_bin,
                        "--server",
                        (char *)cases[i][0],
                        "--node",
                        "tls-node",
                        "--ca-file",
                        (char *)cases[i][1],
                        "--spool-dir",
                        (char *)in_dir("spool-bad"),
                        NULL};
        pid_t pid = harness_spawn(argv, log);
        CHECK(harness_wait(pid, 10) == 1);
        CHECK(count_lines(log, cases[i][1], cases[i][2]) == 1);
    }
    /* A CA file with an http:// URL is a usage error: https was meant. */
    const char *log = in_dir("agent-bad-ca.log");
    remove(log);
    char http_url[64];
    snprintf(http_url, sizeof http_url, "http://127.0.0.1:%d", port);
    char *argv[] = {
        (char *)agent_bin,        "--server", http_url, "--node", "tls-node", "--ca-file",
        (char *)in_dir("ca.pem"), NULL};
    pid_t pid = harness_spawn(argv, log);
    CHECK(harness_wait(pid, 10) == 2);
    CHECK(count_lines(log, "is not https://", NULL) == 1);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s AGENT SCALECASTD OPENSSL\n", argv[0]);
        return 2;
    }
    agent_bin = argv[1];
    server_bin = argv[2];
    openssl_bin = argv[3];
    dir = harness_tmpdir("agent_tls");
    port = harness_free_port();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (make_pki() < 0) {
        dump("openssl", in_dir("openssl.log"));
        return 1;
    }
    unsigned long long spooled = 0;
    pid_t server = start_server("server", "127.0.0.1", "ca.pem");
    test_untrusted(&spooled);
    kill(server, SIGTERM);
    CHECK(harness_wait(server, 15) == 0);

    server = start_server("other", "other.example", "ca.pem");
    test_wrong_name(&spooled);
    kill(server, SIGTERM);
    CHECK(harness_wait(server, 15) == 0);

    server = start_server("server", "localhost", "ca.pem");
    test_delivered(spooled);
    test_bad_ca_file();
    kill(server, SIGTERM);
    CHECK(harness_wait(server, 15) == 0);

    server = start_server("self", "127.0.0.1", "self.pem");
    test_self_signed();
    kill(server, SIGTERM);
    CHECK(harness_wait(server, 15) == 0);

    test_plain_server();
    if (unit_failures)
        dump("server", in_dir("server.log"));
    if (unit_failures || getenv("KEEP_TEST_DIR"))
        fprintf(stderr, "logs and certificates kept in %s\n", dir);
    else
        harness_rm_rf(dir);
    free(dir);
    curl_global_cleanup();
    return UNIT_DONE();
}
