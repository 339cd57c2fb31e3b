/* redis_conn.c -- how the broker opens a connection to Redis (commands,
 * subscribers, sentinels): one place for the socket options and TLS. */
#include "redis_conn.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/adapters/libevent.h>

#include "net.h"
#include "util.h"

#define REDIS_CONN_KEEPALIVE_S 5 /* TCP keepalive: idle and interval (3 probes) */

SSL_CTX *redis_tls_ctx_new(const struct cfg *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    unsigned long e;

    if (ctx == NULL)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cfg->redis_tls_ca_cert != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, cfg->redis_tls_ca_cert, NULL) != 1) {
            snprintf(err, errlen, "redis-tls-ca-cert %s: cannot load", cfg->redis_tls_ca_cert);
            goto fail_msg;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(err, errlen, "cannot load the system CA store");
        goto fail_msg;
    }
    if (cfg->redis_tls_cert != NULL) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cfg->redis_tls_cert) != 1) {
            snprintf(err, errlen, "redis-tls-cert %s: cannot load", cfg->redis_tls_cert);
            goto fail_msg;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, cfg->redis_tls_key, SSL_FILETYPE_PEM) != 1) {
            snprintf(err, errlen, "redis-tls-key %s: cannot load", cfg->redis_tls_key);
            goto fail_msg;
        }
    }
    return ctx;
fail:
    snprintf(err, errlen, "cannot create a TLS context");
fail_msg:
    e = ERR_get_error();
    if (e != 0) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, ": %s", ERR_reason_error_string(e));
    }
    SSL_CTX_free(ctx);
    return NULL;
}

SSL *redis_tls_ssl_new(SSL_CTX *ctx, const char *name)
{
    unsigned char ip[16];
    SSL *ssl = SSL_new(ctx);

    if (ssl == NULL)
        return NULL;
    if (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
    } else {
        SSL_set_tlsext_host_name(ssl, name);
        SSL_set1_host(ssl, name);
    }
    return ssl;
}

int redis_tls_start(redisContext *c, SSL_CTX *ctx, const struct cfg *cfg,
                    const char *host)
{
    SSL *ssl = redis_tls_ssl_new(ctx, cfg->redis_tls_server_name ? cfg->redis_tls_server_name
                                                                   : host);

    if (ssl == NULL) {
        snprintf(c->errstr, sizeof(c->errstr), "out of memory");
        return -1;
    }
    if (redisInitiateSSL(c, ssl) != REDIS_OK) { /* takes ssl on success only */
        SSL_free(ssl);
        return -1;
    }
    return 0;
}

redisAsyncContext *redis_conn_open(struct event_base *base, const char *host, int port,
                                   int connect_timeout_ms, SSL_CTX *ctx, const struct cfg *cfg,
                                   char *err, size_t errlen)
{
    struct timeval tv = util_ms_tv(connect_timeout_ms);
    redisOptions opt;
    redisAsyncContext *ac;

    memset(&opt, 0, sizeof(opt));
    REDIS_OPTIONS_SET_TCP(&opt, host, port);
    opt.connect_timeout = &tv;
    ac = redisAsyncConnectWithOptions(&opt);
    if (ac == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (ac->err) {
        snprintf(err, errlen, "%s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    if (ctx != NULL && redis_tls_start(&ac->c, ctx, cfg, host) == -1) {
        snprintf(err, errlen, "TLS setup failed: %s", ac->c.errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    net_tcp_keepalive(ac->c.fd, REDIS_CONN_KEEPALIVE_S, 3);
    redisLibeventAttach(ac, base);
    return ac;
}
