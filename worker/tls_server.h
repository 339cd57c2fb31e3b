/* tls_server.h -- wss://: the worker's TLS context and the non-blocking
 * TLS I/O of one connection (OpenSSL).
 *
 * The context (certificate chain, key, optional client CA; TLS 1.2 and up,
 * ALPN http/1.1, no session tickets, buffers released while idle) is built
 * from the config at start and again by tls_server_reload: a new
 * certificate that does not load leaves the old one in place. Connections
 * keep the context they were accepted with.
 *
 * I/O follows recv()/send(): a positive count, 0 at the peer's close, or
 * -1 with errno EAGAIN when OpenSSL waits for the socket (tls_io_wants
 * says for which direction), another errno when the connection failed. */
#ifndef RC_TLS_SERVER_H
#define RC_TLS_SERVER_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "config.h"

typedef struct ssl_st SSL;
struct tls_server;

/* Load cert, key (and client CA) from cfg. NULL with err filled. */
struct tls_server *tls_server_new(const struct cfg *cfg, char *err, size_t errlen);
void tls_server_free(struct tls_server *t);
/* Re-read the files named in cfg; on failure the old context stays and
 * err says why. 0 or -1. */
int tls_server_reload(struct tls_server *t, const struct cfg *cfg, char *err, size_t errlen);

/* A server-side TLS connection on fd (non-blocking), or NULL. */
SSL *tls_conn_new(struct tls_server *t, int fd);
/* Send close_notify if it fits (never waits) and free. */
void tls_conn_free(SSL *ssl);

enum tls_step { TLS_DONE = 0, TLS_WANT_READ, TLS_WANT_WRITE, TLS_FAILED };
/* Advance the handshake. On TLS_FAILED, why names the cause. */
enum tls_step tls_handshake(SSL *ssl, char *why, size_t whylen);

ssize_t tls_recv(SSL *ssl, void *buf, size_t len);
/* Write the iovecs' bytes, in records of up to 16 KiB; the count written,
 * or -1 (errno EAGAIN: retry later with the same bytes in front). */
ssize_t tls_writev(SSL *ssl, const struct iovec *iov, int n);
/* After an EAGAIN: the direction OpenSSL waits for (TLS_WANT_READ or
 * TLS_WANT_WRITE). */
enum tls_step tls_io_wants(const SSL *ssl);
/* Decrypted bytes held inside OpenSSL: readable without the socket. */
int tls_pending(const SSL *ssl);

#endif
