/* Configuration file parsing with libinih. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

int config_parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int config_parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int config_parse_duration(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(v) || v < 0)
        return -1;
    double mult = 1;
    if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
        mult = 1;
    else if (strcmp(end, "ms") == 0)
        mult = 0.001;
    else if (strcmp(end, "m") == 0)
        mult = 60;
    else if (strcmp(end, "h") == 0)
        mult = 3600;
    else if (strcmp(end, "d") == 0)
        mult = 86400;
    else
        return -1;
    *out = v * mult;
    return 0;
}

int config_parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(v) || v < 0)
        return -1;
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {{"", 1},           {"B", 1},       {"K", 1024},        {"KB", 1000},
                 {"KiB", 1024},     {"M", 1048576}, {"MB", 1e6},        {"MiB", 1048576},
                 {"G", 1073741824}, {"GB", 1e9},    {"GiB", 1073741824}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            double b = v * units[i].mult;
            if (b > 1e15)
                return -1;
            *out = (size_t)b;
            return 0;
        }
    }
    return -1;
}

int config_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    struct server_config *s = &c->server;
    s->listen = xstrdup("127.0.0.1:8080");
    s->db = xstrdup("data/scalecast.db");
    s->log_level = LOG_INFO;
    s->max_body_bytes = 8u << 20;
    s->max_header_bytes = 16u << 10;
    s->max_connections = 10000;
    s->request_timeout = 30;
    s->stale_after = 60;
    s->retention = 7 * 86400.0;
    s->sync_full = true;
    c->autoscaler.tick = 15;
    c->autoscaler.docker_host = xstrdup("unix:///var/run/docker.sock");
    c->autoscaler.docker_timeout = 10;
}

static void free_section(struct config_section *sec)
{
    for (size_t i = 0; i < sec->nkv; i++) {
        free(sec->kv[i].key);
        free(sec->kv[i].value);
    }
    free(sec->kv);
    free(sec->name);
}

void config_free(struct config *c)
{
    free(c->path);
    free(c->server.listen);
    free(c->server.db);
    free(c->server.ingest_token);
    free(c->server.read_token);
    free(c->server.admin_token);
    free(c->server.tls_cert);
    free(c->server.tls_key);
    free(c->autoscaler.docker_host);
    free(c->autoscaler.docker_tls_ca);
    free(c->autoscaler.docker_tls_cert);
    free(c->autoscaler.docker_tls_key);
    for (size_t i = 0; i < c->nservices; i++)
        free_section(&c->services[i]);
    free(c->services);
    memset(c, 0, sizeof *c);
}

const struct config_section *config_service(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->nservices; i++) {
        if (strcmp(c->services[i].name, name) == 0)
            return &c->services[i];
    }
    return NULL;
}

/* State threaded through inih's callbacks. inih does not report line numbers
 * to the handler unless built with INI_HANDLER_LINENO, which Debian's is not,
 * so our reader counts the lines it hands over. */
struct parse_state {
    struct config *c;
    FILE *fp;
    const char *file;
    int line;
    char err[512];
    size_t svc_cap;
    char cur_section[256];
    unsigned long long keys_seen; /* bit i: keys[i] given already */
    long cur_service_idx;
};

typedef int (*setter_fn)(void *field, const char *value);

static int set_string(void *field, const char *value)
{
    char **p = field;
    free(*p);
    *p = value[0] ? xstrdup(value) : NULL;
    return 0;
}

static int set_positive_duration(void *field, const char *value)
{
    double v;
    if (config_parse_duration(value, &v) < 0 || v <= 0)
        return -1;
    *(double *)field = v;
    return 0;
}

static int set_size(void *field, const char *value)
{
    size_t v;
    if (config_parse_size(value, &v) < 0 || v == 0)
        return -1;
    *(size_t *)field = v;
    return 0;
}

/* For keys that cannot be empty (a listen address, a database path). */
static int set_nonempty(void *field, const char *value)
{
    return value[0] ? set_string(field, value) : -1;
}

static int set_connections(void *field, const char *value)
{
    long v;
    if (config_parse_int(value, 1, 1000000, &v) < 0)
        return -1;
    *(int *)field = (int)v;
    return 0;
}

static int set_bool(void *field, const char *value)
{
    return config_parse_bool(value, field);
}

static int set_level(void *field, const char *value)
{
    return log_parse_level(value, field);
}

static int set_sync(void *field, const char *value)
{
    if (strcasecmp(value, "full") == 0)
        *(bool *)field = true;
    else if (strcasecmp(value, "normal") == 0)
        *(bool *)field = false;
    else
        return -1;
    return 0;
}

struct key_spec {
    const char *section;
    const char *key;
    size_t offset;
    setter_fn set;
    const char *expect; /* for the error message */
};

/* At most 64 keys: keys_seen is a bit set over this table. */
#define SRV(f) offsetof(struct config, server.f)
#define ASC(f) offsetof(struct config, autoscaler.f)
static const struct key_spec keys[] = {
    {"server", "listen", SRV(listen), set_nonempty, "HOST:PORT"},
    {"server", "db", SRV(db), set_nonempty, "a file path"},
    {"server", "log_level", SRV(log_level), set_level, "debug, info, warn or error"},
    {"server", "max_body_size", SRV(max_body_bytes), set_size, "a size such as 8MiB"},
    {"server", "max_header_size", SRV(max_header_bytes), set_size, "a size such as 16KiB"},
    {"server", "max_connections", SRV(max_connections), set_connections, "an integer 1..1000000"},
    {"server", "request_timeout", SRV(request_timeout), set_positive_duration, "a duration"},
    {"server", "ingest_token", SRV(ingest_token), set_string, "a token"},
    {"server", "read_token", SRV(read_token), set_string, "a token"},
    {"server", "admin_token", SRV(admin_token), set_string, "a token"},
    {"server", "allow_unauthenticated", SRV(allow_unauthenticated), set_bool, "true or false"},
    {"server", "stale_after", SRV(stale_after), set_positive_duration, "a duration such as 60s"},
    {"server", "retention", SRV(retention), set_positive_duration, "a duration such as 7d"},
    {"server", "sync", SRV(sync_full), set_sync, "full or normal"},
    {"server", "tls_cert", SRV(tls_cert), set_string, "a PEM file"},
    {"server", "tls_key", SRV(tls_key), set_string, "a PEM file"},
    {"autoscaler", "tick", ASC(tick), set_positive_duration, "a duration such as 15s"},
    {"autoscaler", "docker_host", ASC(docker_host), set_nonempty,
     "unix:///path or tcp://HOST:PORT"},
    {"autoscaler", "docker_tls_ca", ASC(docker_tls_ca), set_string, "a PEM file"},
    {"autoscaler", "docker_tls_cert", ASC(docker_tls_cert), set_string, "a PEM file"},
    {"autoscaler", "docker_tls_key", ASC(docker_tls_key), set_string, "a PEM file"},
    {"autoscaler", "docker_timeout", ASC(docker_timeout), set_positive_duration, "a duration"},
};

/* Splits "service NAME" into its name; returns NULL if the section is not a
 * service section. */
static const char *service_name(const char *section)
{
    if (strncmp(section, "service", 7) != 0 || !isspace((unsigned char)section[7]))
        return NULL;
    const char *n = section + 7;
    while (isspace((unsigned char)*n))
        n++;
    return n;
}

static int valid_service_name(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 128)
        return 0;
    for (const char *p = n; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
            return 0;
    }
    return 1;
}

static int add_service(struct parse_state *st, const char *name)
{
    struct config *c = st->c;
    if (!valid_service_name(name)) {
        snprintf(st->err, sizeof st->err,
                 "%s:%d: [service %s]: a service name is 1-128 letters, digits, '.', '_' or '-'",
                 st->file, st->line, name);
        return -1;
    }
    if (config_service(c, name)) {
        snprintf(st->err, sizeof st->err, "%s:%d: [service %s] defined twice", st->file, st->line,
                 name);
        return -1;
    }
    c->services = xgrow(c->services, &st->svc_cap, c->nservices + 1, sizeof *c->services);
    struct config_section *sec = &c->services[c->nservices];
    memset(sec, 0, sizeof *sec);
    sec->name = xstrdup(name);
    sec->line = st->line;
    st->cur_service_idx = (long)c->nservices;
    c->nservices++;
    return 0;
}

static int service_kv(struct parse_state *st, const char *key, const char *value)
{
    struct config_section *sec = &st->c->services[st->cur_service_idx];
    for (size_t i = 0; i < sec->nkv; i++) {
        if (strcmp(sec->kv[i].key, key) == 0) {
            snprintf(st->err, sizeof st->err, "%s:%d: key '%s' repeated in [service %s]", st->file,
                     st->line, key, sec->name);
            return -1;
        }
    }
    sec->kv = xrealloc(sec->kv, (sec->nkv + 1) * sizeof *sec->kv);
    sec->kv[sec->nkv].key = xstrdup(key);
    sec->kv[sec->nkv].value = xstrdup(value);
    sec->kv[sec->nkv].line = st->line;
    sec->nkv++;
    return 0;
}

/* Called by the reader for each "[...]" line, so that sections without keys
 * are checked too (inih only calls the handler for key = value lines). */
static void new_section(struct parse_state *st, const char *section)
{
    snprintf(st->cur_section, sizeof st->cur_section, "%s", section);
    st->cur_service_idx = -1;
    const char *svc = service_name(section);
    if (svc) {
        add_service(st, svc);
    } else if (strcmp(section, "server") != 0 && strcmp(section, "autoscaler") != 0) {
        snprintf(st->err, sizeof st->err,
                 "%s:%d: unknown section [%s] (expected [server], [autoscaler] or [service NAME])",
                 st->file, st->line, section);
    }
}

static char *reader(char *str, int num, void *stream)
{
    struct parse_state *st = stream;
    if (st->err[0])
        return NULL; /* stop at the first error */
    char *r = fgets(str, num, st->fp);
    if (!r)
        return NULL;
    st->line++;
    const char *p = str;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '[') {
        const char *end = strchr(p, ']');
        if (end) {
            char name[256];
            size_t n = (size_t)(end - p - 1);
            if (n >= sizeof name)
                n = sizeof name - 1;
            memcpy(name, p + 1, n);
            name[n] = '\0';
            /* trim, as inih does */
            char *b = name;
            while (isspace((unsigned char)*b))
                b++;
            size_t len = strlen(b);
            while (len && isspace((unsigned char)b[len - 1]))
                b[--len] = '\0';
            new_section(st, b);
        }
    }
    return r;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    if (st->err[0])
        return 1;
    if (!name)
        return 1;
    if (section[0] == '\0') {
        snprintf(st->err, sizeof st->err, "%s:%d: key '%s' outside any [section]", st->file,
                 st->line, name);
        return 1;
    }
    if (st->cur_service_idx >= 0)
        return (service_kv(st, name, value), 1);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (strcmp(keys[i].section, section) != 0 || strcmp(keys[i].key, name) != 0)
            continue;
        if (st->keys_seen & (1ULL << i)) {
            snprintf(st->err, sizeof st->err, "%s:%d: key '%s' repeated in [%s]", st->file,
                     st->line, name, section);
            return 1;
        }
        st->keys_seen |= 1ULL << i;
        void *field = (char *)st->c + keys[i].offset;
        if (keys[i].set(field, value) < 0) {
            snprintf(st->err, sizeof st->err, "%s:%d: [%s] %s = '%s': expected %s", st->file,
                     st->line, section, name, value, keys[i].expect);
        }
        return 1;
    }
    snprintf(st->err, sizeof st->err, "%s:%d: unknown key '%s' in [%s]", st->file, st->line, name,
             section);
    return 1;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
    struct parse_state st;
    memset(&st, 0, sizeof st);
    st.c = c;
    st.file = path;
    st.cur_service_idx = -1;
    st.svc_cap = c->nservices;
    st.fp = fopen(path, "r");
    if (!st.fp) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    free(c->path);
    c->path = xstrdup(path);
    int rc = ini_parse_stream(reader, &st, handler, &st);
    fclose(st.fp);
    if (st.err[0]) {
        snprintf(err, errlen, "%s", st.err);
        return -1;
    }
    if (rc > 0) {
        snprintf(err, errlen, "%s:%d: syntax error (expected [section], key = value or a comment)",
                 path, rc);
        return -1;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot read", path);
        return -1;
    }
    return 0;
}
