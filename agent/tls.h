/* TLS for the push connection (https:// server URLs), with OpenSSL.
 *
 * OpenSSL is loaded at run time with dlopen, only when the server URL is
 * https://: linked in, libssl and libcrypto would cost every http:// agent
 * about 1.6 MB of RSS and 0.4 MB of private memory (their symbol tables and
 * relocations; bench/agent/run.sh) for code it never runs. See
 * docs/agent.md, "TLS".
 *
 * What is checked: the server's certificate chain against the system's CA
 * store (OpenSSL's default paths, which honour SSL_CERT_FILE and
 * SSL_CERT_DIR) or, when a CA file is given, against that file only; the
 * certificate must name the URL's host (DNS name, or IP address for an IP
 * literal); TLS 1.2 or later. There is no way to turn verification off.
 *
 * The connection is non-blocking: the calls below return -EAGAIN when
 * OpenSSL waits for the socket, and tls_want() says for what (POLLIN or
 * POLLOUT); call again once the socket is ready. The caller ignores
 * SIGPIPE (OpenSSL writes with write(2)). */
#ifndef SCALECAST_AGENT_TLS_H
#define SCALECAST_AGENT_TLS_H

#include <stddef.h>

struct tls_client; /* verification settings, shared by the connections */
struct tls_conn;   /* one connection */

/* Loads OpenSSL and prepares a client: trusting `ca_file` only (PEM, one or
 * more certificates) when it is not NULL, else the system's CA store.
 * Returns 0 with a new client in *out, or -ENOENT (OpenSSL cannot be
 * loaded) or -EINVAL (the CA file cannot be used) with a message naming the
 * library or the file in err. */
int tls_client_create(const char *ca_file, struct tls_client **out /* out */, char *err,
                      size_t errlen);
void tls_client_free(struct tls_client *c);
/* "OpenSSL 3.0.19 1 Jul 2025": the version loaded (borrowed). */
const char *tls_client_version(const struct tls_client *c);

/* Starts a client handshake on `fd`, a connected non-blocking socket that
 * stays the caller's (tls_conn_free does not close it), for server `host`
 * as written in the URL ("scalecast.example", "10.0.0.5", "::1"): the name
 * the certificate must carry, and the SNI name unless it is an IP address.
 * Returns 0 with a new connection in *out, or -EPROTO with the reason in
 * why. */
int tls_conn_create(struct tls_client *c, int fd, const char *host, struct tls_conn **out /* out */,
                    char *why, size_t whylen);
/* Frees the connection, first sending a close_notify if the socket takes
 * it at once. */
void tls_conn_free(struct tls_conn *t);

/* Drives the handshake. Returns 0 once it is done, -EAGAIN to be called
 * again when tls_want(t, 0) is ready, or a negative errno with the reason in
 * why: "certificate verify failed: self-signed certificate (...)", "TLS
 * handshake failed: wrong version number (is the server plain HTTP? ...)",
 * a socket error. */
int tls_handshake(struct tls_conn *t, char *why, size_t whylen);

/* Encrypts and sends up to n bytes. Returns 0 with the count taken in
 * *done, -EAGAIN, -EPIPE or -ECONNRESET (the peer closed or reset the
 * connection), or another negative errno with the reason in why. After
 * -EAGAIN, call again with the same bytes. */
int tls_write(struct tls_conn *t, const void *data, size_t n, size_t *done /* out */, char *why,
              size_t whylen);

/* Receives up to n decrypted bytes. Returns 0 with the count in *got (0:
 * the peer closed the connection), -EAGAIN (nothing to read yet: records
 * that carry no data, such as session tickets, are taken quietly),
 * -ECONNRESET, or another negative errno with the reason in why. */
int tls_read(struct tls_conn *t, void *data, size_t n, size_t *got /* out */, char *why,
             size_t whylen);

/* What to poll for before the next tls_read (reading) or tls_handshake /
 * tls_write (!reading): POLLIN to read and POLLOUT to write, unless the last
 * such call returned -EAGAIN because OpenSSL needs the other direction
 * first (a handshake message, a key update). */
short tls_want(const struct tls_conn *t, int reading);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" once the handshake is done (borrowed,
 * valid until the next call on t). */
const char *tls_describe(struct tls_conn *t);

#endif
