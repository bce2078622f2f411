/* TLS for the push connection: OpenSSL, loaded with dlopen on first use. */
#include "tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "xalloc.h"

#if OPENSSL_VERSION_MAJOR < 3
#error "the agent's TLS code is written for the OpenSSL 3 API"
#endif

#define STR2(x) #x
#define STR(x) STR2(x)
/* The soname of the libssl whose headers we compile against: the ABI the
 * table below is typed for. libcrypto comes with it as its dependency. */
#define LIBSSL "libssl.so." STR(OPENSSL_VERSION_MAJOR)

/* Every OpenSSL entry point used, called through this table. Each pointer
 * takes its type from the function's declaration in the OpenSSL headers,
 * so calls are checked by the compiler as if linked. Macros such as
 * SSL_CTX_set_min_proto_version are spelled out as the *_ctrl calls they
 * expand to. */
#define OSSL_FUNCS(X)                                                                              \
    X(OpenSSL_version)                                                                             \
    X(TLS_client_method)                                                                           \
    X(SSL_CTX_new)                                                                                 \
    X(SSL_CTX_free)                                                                                \
    X(SSL_CTX_ctrl)                                                                                \
    X(SSL_CTX_set_options)                                                                         \
    X(SSL_CTX_set_verify)                                                                          \
    X(SSL_CTX_load_verify_file)                                                                    \
    X(SSL_CTX_load_verify_dir)                                                                     \
    X(SSL_CTX_set_default_verify_paths)                                                            \
    X(SSL_new)                                                                                     \
    X(SSL_free)                                                                                    \
    X(SSL_set_fd)                                                                                  \
    X(SSL_ctrl)                                                                                    \
    X(SSL_get0_param)                                                                              \
    X(SSL_set_connect_state)                                                                       \
    X(SSL_do_handshake)                                                                            \
    X(SSL_read_ex)                                                                                 \
    X(SSL_write_ex)                                                                                \
    X(SSL_get_error)                                                                               \
    X(SSL_get_verify_result)                                                                       \
    X(SSL_shutdown)                                                                                \
    X(SSL_get_version)                                                                             \
    X(SSL_get_current_cipher)                                                                      \
    X(SSL_CIPHER_get_name)                                                                         \
    X(X509_VERIFY_PARAM_set1_host)                                                                 \
    X(X509_VERIFY_PARAM_set1_ip_asc)                                                               \
    X(X509_VERIFY_PARAM_set_hostflags)                                                             \
    X(X509_verify_cert_error_string)                                                               \
    X(X509_get_default_cert_dir)                                                                   \
    X(X509_get_default_cert_dir_env)                                                               \
    X(X509_get_default_cert_file_env)                                                              \
    X(ERR_peek_last_error)                                                                         \
    X(ERR_reason_error_string)                                                                     \
    X(ERR_clear_error)

#define OSSL_FIELD(name) __typeof__(name) *name;
static struct {
    OSSL_FUNCS(OSSL_FIELD)
} ossl;
static void *ossl_lib; /* never closed: OpenSSL does not support unloading */

struct tls_client {
    SSL_CTX *ctx;
    const char *version;
};

struct tls_conn {
    SSL *ssl;
    char *host;
    short want[2]; /* for the next handshake step or write [0], read [1] */
    int broken;    /* a fatal error happened: no close_notify */
    char desc[96];
};

/* dlopens libssl and fills the table. Returns 0 or -ENOENT with a message. */
static int ossl_load(char *err, size_t errlen)
{
    if (ossl_lib)
        return 0;
    void *lib = dlopen(LIBSSL, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(err, errlen,
                 "https:// needs OpenSSL %d (%s) at run time: %s (Debian and Ubuntu: install "
                 "libssl3)",
                 OPENSSL_VERSION_MAJOR, LIBSSL, dlerror());
        return -ENOENT;
    }
    const char *missing = NULL;
#define OSSL_LOAD(name)                                                                            \
    if (!missing && !(ossl.name = (__typeof__(ossl.name))dlsym(lib, #name)))                       \
        missing = #name;
    OSSL_FUNCS(OSSL_LOAD)
#undef OSSL_LOAD
    if (missing) {
        snprintf(err, errlen, "%s lacks %s: not the OpenSSL %d the agent was built for", LIBSSL,
                 missing, OPENSSL_VERSION_MAJOR);
        dlclose(lib);
        memset(&ossl, 0, sizeof ossl);
        return -ENOENT;
    }
    ossl_lib = lib;
    return 0;
}

/* OpenSSL's newest queued error, as its reason text ("wrong version
 * number"), then clears the queue. */
static const char *ossl_reason(void)
{
    unsigned long code = ossl.ERR_peek_last_error();
    const char *r = code ? ossl.ERR_reason_error_string(code) : NULL;
    ossl.ERR_clear_error();
    return r ? r : "unknown error";
}

/* A CA directory prepared by c_rehash / update-ca-certificates: it holds
 * links named after the subject hash ("5ad8a5d6.0"), so OpenSSL can look up
 * one CA per handshake instead of keeping the whole bundle in memory. */
static int hashed_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        const char *n = e->d_name;
        size_t i = 0;
        while (i < 8 && isxdigit((unsigned char)n[i]))
            i++;
        found = i == 8 && n[8] == '.' && isdigit((unsigned char)n[9]);
    }
    closedir(d);
    return found;
}

/* The system's CA store. Where OpenSSL's default directory is hashed
 * (Debian, Ubuntu, Alpine, SUSE: the same certificates as the bundle file),
 * that directory alone: the bundle file would keep ~140 parsed certificates
 * (about 0.9 MB) in memory for the life of the agent. Elsewhere (Fedora,
 * RHEL ship only the bundle), or when SSL_CERT_FILE names a file, OpenSSL's
 * default paths. Returns 1 on success, as OpenSSL does. */
static int load_system_store(SSL_CTX *ctx)
{
    const char *file_env = getenv(ossl.X509_get_default_cert_file_env());
    const char *dir = getenv(ossl.X509_get_default_cert_dir_env());
    if (!dir || !*dir)
        dir = ossl.X509_get_default_cert_dir();
    if ((!file_env || !*file_env) && !strchr(dir, ':') && hashed_dir(dir))
        return ossl.SSL_CTX_load_verify_dir(ctx, dir);
    return ossl.SSL_CTX_set_default_verify_paths(ctx);
}

int tls_client_create(const char *ca_file, struct tls_client **out, char *err, size_t errlen)
{
    *out = NULL;
    int rc = ossl_load(err, errlen);
    if (rc < 0)
        return rc;
    ossl.ERR_clear_error();
    SSL_CTX *ctx = ossl.SSL_CTX_new(ossl.TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot set up TLS: %s", ossl_reason());
        return -EINVAL;
    }
    ossl.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL);
    /* Partial writes and a moving buffer fit the non-blocking sender; the
     * 16 KiB record buffers are released while the connection is idle,
     * which is nearly always. Read-ahead takes an answer's records in one
     * read(2) rather than two per record (header, then body). */
    ossl.SSL_CTX_ctrl(ctx, SSL_CTRL_MODE,
                      SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS,
                      NULL);
    ossl.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_READ_AHEAD, 1, NULL);
    /* A server closing without close_notify reads as an end of stream:
     * every answer the agent acts on has a length or chunked framing, so a
     * cut answer is still caught by the HTTP parser. */
    ossl.SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    ossl.SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file) {
        /* The file alone: a private CA replaces the system store, as
         * curl's --cacert does. */
        if (access(ca_file, R_OK) < 0) {
            snprintf(err, errlen, "CA file '%s': %s", ca_file, strerror(errno));
            goto fail;
        }
        if (ossl.SSL_CTX_load_verify_file(ctx, ca_file) != 1) {
            snprintf(err, errlen, "CA file '%s': %s (expected PEM certificates)", ca_file,
                     ossl_reason());
            goto fail;
        }
    } else if (load_system_store(ctx) != 1) {
        snprintf(err, errlen, "cannot load the system CA store: %s", ossl_reason());
        goto fail;
    }
    ossl.ERR_clear_error();
    struct tls_client *c = xcalloc(1, sizeof *c);
    c->ctx = ctx;
    c->version = ossl.OpenSSL_version(OPENSSL_VERSION);
    *out = c;
    return 0;
fail:
    ossl.SSL_CTX_free(ctx);
    return -EINVAL;
}

void tls_client_free(struct tls_client *c)
{
    if (!c)
        return;
    ossl.SSL_CTX_free(c->ctx);
    free(c);
}

const char *tls_client_version(const struct tls_client *c)
{
    return c->version;
}

static int is_ip_literal(const char *host)
{
    unsigned char addr[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

int tls_conn_create(struct tls_client *c, int fd, const char *host, struct tls_conn **out,
                    char *why, size_t whylen)
{
    *out = NULL;
    ossl.ERR_clear_error();
    SSL *ssl = ossl.SSL_new(c->ctx);
    if (!ssl) {
        snprintf(why, whylen, "cannot start TLS: %s", ossl_reason());
        return -EPROTO;
    }
    int ok = ossl.SSL_set_fd(ssl, fd); /* the BIO does not close fd */
    X509_VERIFY_PARAM *param = ossl.SSL_get0_param(ssl);
    if (ok && is_ip_literal(host)) {
        /* RFC 6066: no SNI for addresses; the certificate needs an IP SAN. */
        ok = ossl.X509_VERIFY_PARAM_set1_ip_asc(param, host);
    } else if (ok) {
        ossl.X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = ossl.X509_VERIFY_PARAM_set1_host(param, host, 0) &&
             ossl.SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                           (void *)host) == 1;
    }
    if (!ok) {
        snprintf(why, whylen, "cannot start TLS for '%s': %s", host, ossl_reason());
        ossl.SSL_free(ssl);
        return -EPROTO;
    }
    ossl.SSL_set_connect_state(ssl);
    struct tls_conn *t = xcalloc(1, sizeof *t);
    t->ssl = ssl;
    t->host = xstrdup(host);
    t->want[0] = POLLOUT;
    t->want[1] = POLLIN;
    *out = t;
    return 0;
}

void tls_conn_free(struct tls_conn *t)
{
    if (!t)
        return;
    /* One non-blocking attempt; the agent ignores SIGPIPE. */
    if (!t->broken && ossl.SSL_shutdown(t->ssl) < 0)
        ossl.ERR_clear_error();
    ossl.SSL_free(t->ssl);
    free(t->host);
    free(t);
}

/* Why the certificate was refused, with what to do about it. */
static void verify_failure(struct tls_conn *t, long v, char *why, size_t whylen)
{
    const char *hint = "";
    char name[300];
    switch (v) {
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        hint = " (the server's CA is not trusted: give it with --ca-file)";
        break;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        snprintf(name, sizeof name, " (the certificate is not for '%s')", t->host);
        hint = name;
        break;
    default:
        break;
    }
    snprintf(why, whylen, "certificate verify failed: %s%s", ossl.X509_verify_cert_error_string(v),
             hint);
}

/* Turns a failed SSL call's result into -EAGAIN (t->want[reading] set), 1
 * when the peer closed the connection (with or without close_notify), or an
 * error with its reason. `err` is errno right after the call. */
static int io_error(struct tls_conn *t, int ret, int err, int reading, const char *what, char *why,
                    size_t whylen)
{
    int e = ossl.SSL_get_error(t->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        t->want[reading] = POLLIN;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        t->want[reading] = POLLOUT;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        ossl.ERR_clear_error();
        return 1;
    case SSL_ERROR_SYSCALL:
        t->broken = 1;
        ossl.ERR_clear_error();
        if (err == 0)
            return 1;
        snprintf(why, whylen, "%s", strerror(err));
        return -err;
    default: {
        t->broken = 1;
        long v = ossl.SSL_get_verify_result(t->ssl);
        if (v != X509_V_OK) {
            ossl.ERR_clear_error();
            verify_failure(t, v, why, whylen);
            return -EPROTO;
        }
        unsigned long code = ossl.ERR_peek_last_error();
        /* What a plain-HTTP server's answer to a ClientHello reads as. */
        int plain =
            ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_WRONG_VERSION_NUMBER;
        snprintf(why, whylen, "%s failed: %s%s", what, ossl_reason(),
                 plain ? " (is the server plain HTTP? then the URL is http://)" : "");
        return -EPROTO;
    }
    }
}

/* The peer closed the connection in the middle of `what`. */
static int closed_during(const char *what, char *why, size_t whylen)
{
    snprintf(why, whylen, "connection closed by the server during the %s", what);
    return -ECONNRESET;
}

int tls_handshake(struct tls_conn *t, char *why, size_t whylen)
{
    ossl.ERR_clear_error();
    errno = 0;
    int r = ossl.SSL_do_handshake(t->ssl);
    if (r == 1)
        return 0;
    int rc = io_error(t, r, errno, 0, "TLS handshake", why, whylen);
    return rc == 1 ? closed_during("TLS handshake", why, whylen) : rc;
}

int tls_write(struct tls_conn *t, const void *data, size_t n, size_t *done, char *why,
              size_t whylen)
{
    *done = 0;
    ossl.ERR_clear_error();
    errno = 0;
    size_t k = 0;
    if (ossl.SSL_write_ex(t->ssl, data, n, &k) == 1) {
        *done = k;
        t->want[0] = POLLOUT;
        return 0;
    }
    int rc = io_error(t, 0, errno, 0, "TLS write", why, whylen);
    return rc == 1 ? closed_during("request", why, whylen) : rc;
}

int tls_read(struct tls_conn *t, void *data, size_t n, size_t *got, char *why, size_t whylen)
{
    *got = 0;
    ossl.ERR_clear_error();
    errno = 0;
    size_t k = 0;
    if (ossl.SSL_read_ex(t->ssl, data, n, &k) == 1) {
        *got = k;
        t->want[1] = POLLIN;
        return 0;
    }
    int rc = io_error(t, 0, errno, 1, "TLS read", why, whylen);
    return rc == 1 ? 0 : rc; /* closed: the end of the stream, *got is 0 */
}

short tls_want(const struct tls_conn *t, int reading)
{
    return t->want[reading != 0];
}

const char *tls_describe(struct tls_conn *t)
{
    const SSL_CIPHER *c = ossl.SSL_get_current_cipher(t->ssl);
    snprintf(t->desc, sizeof t->desc, "%s %s", ossl.SSL_get_version(t->ssl),
             c ? ossl.SSL_CIPHER_get_name(c) : "(no cipher)");
    return t->desc;
}
