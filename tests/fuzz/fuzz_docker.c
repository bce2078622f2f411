/* Fuzz harness of the Docker engine's answers: autoscaler/docker.c (version
 * negotiation, status and error-message handling, reply parsing) and
 * autoscaler/actuate.c (what it reads out of service inspects, container
 * lists and inspects, create replies) run unchanged; the engine is the input.
 *
 * The transport is replaced inside this executable: it defines the few
 * libcurl entry points docker.c calls on a handle (curl_easy_init, _setopt,
 * _perform, _getinfo, _cleanup), which the linker prefers to libcurl's, and
 * _perform answers each request with the next answer of the input. No
 * socket, no thread; thousands of engine conversations a second. (The clean
 * seam would be a transport hook in struct docker_opts; see README.md.)
 *
 * Input, as text:
 *   line 1   count TARGET | scale TARGET N | dry-run TARGET N
 *            (TARGET as the config writes it: swarm:web, containers:app=web)
 *   line 2   optional "api X.Y": pin the API version instead of negotiating
 *   then     answers in order, each "--- CODE" on its own line followed by
 *            the body up to the next such line; CODE is an HTTP status, or
 *            eN for libcurl error N (e7 cannot connect, e28 timeout, e52
 *            nothing, e56 receive error). After the last one the engine is
 *            gone (e7).
 *
 * Checked besides "no crash, no memory error, no undefined behaviour":
 *  - dry-run and count send GETs only;
 *  - every write names, whole, what the target selects: a container the
 *    engine listed with the target's label (or one scalecast just created),
 *    the service whose inspect matched the target's name or ID; no write to
 *    anything else (an ID cut short or carrying a '/' names something
 *    else), and no more creates than the replicas asked for;
 *  - a call that succeeds reports after == N (scale), or a count >= 0 (for
 *    a service, the engine's count exactly);
 *    one that fails says why. A violation aborts. SCALECAST_FUZZ_VERBOSE=1
 *    in the environment prints the conversation. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actuate.h"
#include "docker.h"
#include "log.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BASE_URL "http://localhost" /* docker.c's base for a unix socket */
#define MAX_IDS 256
#define ID_MAX 256 /* longer IDs are kept cut, so they never match a path */

/* ---- the conversation ------------------------------------------------------ */

struct answer {
    long status; /* HTTP status, or 0 with curl_error set */
    int curl_error;
    const char *body;
    size_t len;
};

static struct {
    const char *input;
    size_t input_len;
    const char *next; /* first unread byte of the answers */
    const char *end;
    struct policy_target target;
    bool read_only;                /* count or dry-run: GETs only */
    bool verbose;                  /* SCALECAST_FUZZ_VERBOSE set: print the conversation */
    int replicas;                  /* asked for */
    int creates;                   /* successful POST /containers/create */
    char ids[MAX_IDS][ID_MAX + 1]; /* listed with the label, or created; whole */
    size_t nids;
    char service_id[ID_MAX + 1]; /* of the service whose inspect matched the target */
    json_int_t service_replicas; /* its Spec.Mode.Replicated.Replicas */
} conv;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_docker: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ninput (%zu bytes):\n%.*s\n", conv.input_len,
            (int)(conv.input_len > 4000 ? 4000 : conv.input_len), conv.input);
    abort();
}

/* The next "--- CODE\n" section; false when none is left. */
static bool next_answer(struct answer *a)
{
    const char *p = conv.next;
    if (p >= conv.end || (size_t)(conv.end - p) < 4 || memcmp(p, "--- ", 4) != 0)
        return false;
    p += 4;
    const char *eol = memchr(p, '\n', (size_t)(conv.end - p));
    const char *body = eol ? eol + 1 : conv.end;
    char code[16];
    size_t clen = (size_t)((eol ? eol : conv.end) - p);
    snprintf(code, sizeof code, "%.*s", (int)(clen < sizeof code ? clen : sizeof code - 1), p);
    memset(a, 0, sizeof *a);
    if (code[0] == 'e')
        a->curl_error = (int)strtol(code + 1, NULL, 10);
    else
        a->status = strtol(code, NULL, 10);
    if (a->curl_error <= 0 && (a->status < 100 || a->status > 599))
        a->curl_error = CURLE_COULDNT_CONNECT;
    const char *stop = body;
    while (stop < conv.end) {
        const char *nl = memchr(stop, '\n', (size_t)(conv.end - stop));
        if (!nl) {
            stop = conv.end;
            break;
        }
        if ((size_t)(conv.end - nl) > 4 && memcmp(nl + 1, "--- ", 4) == 0) {
            conv.next = nl + 1;
            a->body = body;
            a->len = (size_t)(nl - body);
            return true;
        }
        stop = nl + 1;
    }
    conv.next = conv.end;
    a->body = body;
    a->len = (size_t)(conv.end - body);
    return true;
}

static void allow_id(const char *id)
{
    if (id && conv.nids < MAX_IDS)
        snprintf(conv.ids[conv.nids++], sizeof conv.ids[0], "%s", id);
}

static bool allowed_id(const char *id, size_t len)
{
    for (size_t i = 0; i < conv.nids; i++) {
        if (strlen(conv.ids[i]) == len && memcmp(conv.ids[i], id, len) == 0)
            return true;
    }
    return false;
}

/* What the engine's answer tells the checks: which containers and which
 * service the target selects, read here independently of actuate.c. */
static void learn(const char *method, const char *path, const struct answer *a)
{
    /* docker_request takes 2xx and 304 ("already in that state") as success. */
    if ((a->status < 200 || a->status > 299) && a->status != 304)
        return;
    json_t *j = json_loadb(a->body, a->len, 0, NULL);
    const struct policy_target *t = &conv.target;
    if (!strcmp(method, "GET") && !strncmp(path, "/containers/json?", 17)) {
        size_t i;
        json_t *ct;
        json_array_foreach(j, i, ct)
        {
            const char *v =
                json_string_value(json_object_get(json_object_get(ct, "Labels"), t->label));
            if (v && !strcmp(v, t->value))
                allow_id(json_string_value(json_object_get(ct, "Id")));
        }
    } else if (!strcmp(method, "POST") && !strcmp(path, "/containers/create")) {
        allow_id(json_string_value(json_object_get(j, "Id")));
        conv.creates++;
    } else if (!strcmp(method, "GET") && !strncmp(path, "/services/", 10)) {
        const char *id = json_string_value(json_object_get(j, "ID"));
        const char *name = json_string_value(json_object_get(json_object_get(j, "Spec"), "Name"));
        if (id &&
            ((name && !strcmp(name, t->service)) || !strncmp(id, t->service, strlen(t->service)))) {
            json_t *mode = json_object_get(json_object_get(j, "Spec"), "Mode");
            snprintf(conv.service_id, sizeof conv.service_id, "%s", id);
            conv.service_replicas = json_integer_value(
                json_object_get(json_object_get(mode, "Replicated"), "Replicas"));
        }
    }
    json_decref(j);
}

/* A write must name what the target selects. */
static void check_write(const char *method, const char *path, const char *payload)
{
    if (conv.read_only)
        die("a read-only call sent %s %s", method, path);
    if (!strncmp(path, "/containers/", 12) && strcmp(path, "/containers/create") != 0) {
        const char *id = path + 12;
        size_t len = strcspn(id, "/?");
        if (!allowed_id(id, len))
            die("%s %s: a container the target does not select", method, path);
    } else if (!strcmp(path, "/containers/create")) {
        if (conv.creates >= conv.replicas)
            die("more creates than the %d replicas asked for", conv.replicas);
    } else if (!strncmp(path, "/services/", 10)) {
        const char *id = path + 10;
        size_t len = strcspn(id, "/?");
        if (!conv.service_id[0] || strlen(conv.service_id) != len ||
            memcmp(conv.service_id, id, len) != 0)
            die("%s %s: not the service the target names", method, path);
    } else if (!strncmp(path, "/networks/", 10)) {
        json_t *b = json_loads(payload ? payload : "", 0, NULL);
        const char *c = json_string_value(json_object_get(b, "Container"));
        if (!c || !allowed_id(c, strlen(c)))
            die("%s %s: connects a container scalecast did not create", method, path);
        json_decref(b);
    } else {
        die("unexpected write %s %s", method, path);
    }
}

/* ---- the replaced libcurl entry points ------------------------------------- */

struct fake_curl {
    char *url;
    const char *payload; /* borrowed, as libcurl does with POSTFIELDS */
    char *custom;
    long nobody;
    curl_write_callback write;
    void *write_data;
    char *errbuf;
    long status;
    long os_errno;
};

CURL *curl_easy_init(void)
{
    return calloc(1, sizeof(struct fake_curl));
}

void curl_easy_cleanup(CURL *c)
{
    struct fake_curl *f = c;
    if (!f)
        return;
    free(f->url);
    free(f->custom);
    free(f);
}

CURLcode curl_easy_setopt(CURL *c, CURLoption opt, ...)
{
    struct fake_curl *f = c;
    va_list ap;
    va_start(ap, opt);
    if (opt < CURLOPTTYPE_OBJECTPOINT) {
        long v = va_arg(ap, long);
        if (opt == CURLOPT_NOBODY)
            f->nobody = v;
    } else if (opt < CURLOPTTYPE_FUNCTIONPOINT) {
        void *p = va_arg(ap, void *);
        if (opt == CURLOPT_URL) {
            free(f->url);
            f->url = strdup(p);
        } else if (opt == CURLOPT_POSTFIELDS) {
            f->payload = p;
        } else if (opt == CURLOPT_CUSTOMREQUEST) {
            free(f->custom);
            f->custom = p ? strdup(p) : NULL;
        } else if (opt == CURLOPT_ERRORBUFFER) {
            f->errbuf = p;
        } else if (opt == CURLOPT_WRITEDATA) {
            f->write_data = p;
        }
    } else if (opt < CURLOPTTYPE_OFF_T) {
        curl_write_callback fn = va_arg(ap, curl_write_callback);
        if (opt == CURLOPT_WRITEFUNCTION)
            f->write = fn;
    } else if (opt < CURLOPTTYPE_BLOB) {
        (void)va_arg(ap, curl_off_t);
    } else {
        (void)va_arg(ap, void *);
    }
    va_end(ap);
    return CURLE_OK;
}

CURLcode curl_easy_getinfo(CURL *c, CURLINFO info, ...)
{
    struct fake_curl *f = c;
    va_list ap;
    va_start(ap, info);
    if (info == CURLINFO_RESPONSE_CODE)
        *va_arg(ap, long *) = f->status;
    else if (info == CURLINFO_OS_ERRNO)
        *va_arg(ap, long *) = f->os_errno;
    else
        die("curl_easy_getinfo(%d) is not faked: extend the harness", (int)info);
    va_end(ap);
    return CURLE_OK;
}

CURLcode curl_easy_perform(CURL *c)
{
    struct fake_curl *f = c;
    if (!f->url || strncmp(f->url, BASE_URL, strlen(BASE_URL)) != 0)
        die("request to an unexpected URL '%s'", f->url ? f->url : "(none)");
    const char *path = f->url + strlen(BASE_URL);
    const char *method = f->custom ? f->custom : f->nobody ? "HEAD" : f->payload ? "POST" : "GET";
    /* Versioned paths: /v1.41/... -> /... for the checks. */
    const char *rel = path;
    if (!strncmp(rel, "/v", 2) && strchr(rel + 2, '/'))
        rel = strchr(rel + 2, '/');
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        check_write(method, rel, f->payload);

    struct answer a;
    if (!next_answer(&a))
        a = (struct answer){.curl_error = CURLE_COULDNT_CONNECT};
    if (conv.verbose)
        fprintf(stderr, "fuzz_docker: %s %s -> %ld%s\n", method, path, a.status,
                a.curl_error ? " (transport error)" : "");
    if (a.curl_error) {
        if (a.curl_error == CURLE_COULDNT_CONNECT)
            f->os_errno = ECONNREFUSED;
        if (f->errbuf)
            snprintf(f->errbuf, CURL_ERROR_SIZE, "fake transport error %d", a.curl_error);
        return (CURLcode)a.curl_error;
    }
    /* Delivered in two writes, as a body split across reads would be. */
    size_t half = a.len / 2;
    char *copy = malloc(a.len + 1);
    memcpy(copy, a.body, a.len);
    if ((half && f->write(copy, 1, half, f->write_data) != half) ||
        (a.len - half && f->write(copy + half, 1, a.len - half, f->write_data) != a.len - half)) {
        free(copy);
        return CURLE_WRITE_ERROR;
    }
    free(copy);
    f->status = a.status;
    learn(method, rel, &a);
    return CURLE_OK;
}

/* ---- the harness -------------------------------------------------------------- */

static char *line(const char **p, const char *end)
{
    const char *eol = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = (size_t)((eol ? eol : end) - *p);
    char *s = strndup(*p, n);
    *p = eol ? eol + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        log_set_level(LOG_ERROR);
        quiet = true;
    }
    const char *p = (const char *)data, *end = p + size;
    memset(&conv, 0, sizeof conv);
    conv.verbose = getenv("SCALECAST_FUZZ_VERBOSE") != NULL;
    conv.input = p;
    conv.input_len = size;
    char *cmd = line(&p, end), *api = NULL;
    if ((size_t)(end - p) >= 4 && !memcmp(p, "api ", 4))
        api = line(&p, end);
    conv.next = p;
    conv.end = end;

    char verb[16], target[512], why[512], err[DOCKER_ERR_MAX] = "";
    int n = 0, fields = sscanf(cmd, "%15s %511s %d", verb, target, &n);
    bool count = fields >= 2 && !strcmp(verb, "count");
    bool scale = fields == 3 && (!strcmp(verb, "scale") || !strcmp(verb, "dry-run"));
    struct docker *d = NULL;
    struct docker_opts o = {.host = "unix:///fuzz/docker.sock",
                            .api_version = api ? api + 4 : NULL};
    if ((!count && !scale) || policy_parse_target(target, &conv.target, why, sizeof why) < 0 ||
        docker_open(&o, &d, err, sizeof err) < 0)
        goto out;
    conv.read_only = count || !strcmp(verb, "dry-run");
    conv.replicas = n;
    if (count) {
        int replicas = -1;
        int rc = actuate_replicas(d, &conv.target, &replicas, err, sizeof err);
        if (conv.verbose)
            fprintf(stderr, "fuzz_docker: count: %d, %d replicas %s\n", rc, replicas, err);
        if (rc == 0 && replicas < 0)
            die("actuate_replicas succeeded with %d replicas", replicas);
        if (rc == 0 && conv.target.kind == POLICY_TARGET_SWARM && replicas != conv.service_replicas)
            die("actuate_replicas counted %d replicas, the engine said %lld", replicas,
                (long long)conv.service_replicas);
        if (rc < 0 && !err[0])
            die("actuate_replicas failed (%d) without a message", rc);
    } else {
        struct actuate_opts ao = {.dry_run = conv.read_only, .stop_timeout = 1, .max_attempts = 3};
        struct actuate_result res;
        int rc = actuate_scale(d, &conv.target, n, &ao, &res, err, sizeof err);
        if (conv.verbose)
            fprintf(stderr, "fuzz_docker: scale: %d, %d -> %d: %s %s\n", rc, res.before, res.after,
                    res.detail, err);
        if (rc == 0 && res.after != n)
            die("actuate_scale to %d succeeded but reports %d replicas after (%s)", n, res.after,
                res.detail);
        if (rc < 0 && !err[0])
            die("actuate_scale failed (%d) without a message", rc);
    }
out:
    docker_close(d);
    free(cmd);
    free(api);
    return 0;
}
