/* redis_conn.h -- opening a connection to a Redis server or a sentinel, the
 * same way for every connection the broker makes: hiredis async on
 * libevent, a connect timeout, TCP keepalive, and TLS from the redis-tls-*
 * directives with the name the peer's certificate must carry. */
#ifndef RC_REDIS_CONN_H
#define RC_REDIS_CONN_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"
#include "hiredis_compat.h"

struct event_base;

/* A client context: TLS 1.2 or later, the peer verified against
 * redis-tls-ca-cert (or the system store), our certificate and key when
 * given. NULL with err filled when a file cannot be loaded. */
SSL_CTX *redis_tls_ctx_new(const struct cfg *cfg, char *err, size_t errlen);

/* A TLS session of ctx that verifies its peer as name: an IP address
 * against the certificate's IP entries, a host name against its DNS
 * entries (and sent as SNI). NULL when out of memory. */
SSL *redis_tls_ssl_new(SSL_CTX *ctx, const char *name);

/* Start TLS on a connecting hiredis context: SNI and host name (or IP
 * address) verification against redis-tls-server-name, else host. 0, or -1
 * with c->errstr set (the context is left to the caller to free). */
int redis_tls_start(redisContext *c, SSL_CTX *ctx, const struct cfg *cfg,
                    const char *host);

/* Start connecting to host:port: the context attached to base, TLS started
 * when ctx is not NULL. NULL with err filled when that fails at once. The
 * caller sets the connect/disconnect callbacks and data. */
redisAsyncContext *redis_conn_open(struct event_base *base, const char *host, int port,
                                   int connect_timeout_ms, SSL_CTX *ctx, const struct cfg *cfg,
                                   char *err, size_t errlen);

#endif
