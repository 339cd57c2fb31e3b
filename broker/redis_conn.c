/* redis_conn.c -- how the broker opens a connection to Redis (commands,
 * subscribers, sentinels): one place for the socket options and TLS. */
#include "redis_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/adapters/libevent.h>

#include "util.h"

#define REDIS_CONN_KEEPALIVE_S 5 /* TCP keepalive: idle, interval */

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

int redis_tls_start(redisContext *c, SSL_CTX *ctx, const struct cfg *cfg,
                    const char *host)
{
    const char *name = cfg->redis_tls_server_name ? cfg->redis_tls_server_name : host;
    unsigned char ip[16];
    SSL *ssl = SSL_new(ctx);

    if (ssl == NULL) {
        snprintf(c->errstr, sizeof(c->errstr), "out of memory");
        return -1;
    }
    /* an address is checked against the certificate's IP entries, a name
     * against its DNS entries (and sent as SNI) */
    if (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
    } else {
        SSL_set_tlsext_host_name(ssl, name);
        SSL_set1_host(ssl, name);
    }
    if (redisInitiateSSL(c, ssl) != REDIS_OK) { /* takes ssl on success only */
        SSL_free(ssl);
        return -1;
    }
    return 0;
}

/* A dead peer behind a silent network (no RST) is noticed within about
 * three keepalive rounds instead of the kernel's two hours. */
static void redis_conn_keepalive(int fd)
{
    int on = 1, idle = REDIS_CONN_KEEPALIVE_S, intvl = REDIS_CONN_KEEPALIVE_S, cnt = 3;

    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
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
    redis_conn_keepalive(ac->c.fd);
    redisLibeventAttach(ac, base);
    return ac;
}
