/* tls_server.c -- see tls_server.h. */
#include "tls_server.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TLS_RECORD_MAX 16384 /* one SSL_write: a full TLS record */

struct tls_server {
    SSL_CTX *ctx; /* for new connections; live ones hold a reference to theirs */
};

/* Copy of the front of a writev, so a retry after EAGAIN hands OpenSSL the
 * same bytes (it requires that; the address may move). */
static unsigned char tls_wbuf[TLS_RECORD_MAX];

static void tls_err_append(char *err, size_t errlen)
{
    unsigned long e = ERR_get_error();
    size_t n = strlen(err);

    if (e != 0 && n < errlen)
        snprintf(err + n, errlen - n, ": %s", ERR_reason_error_string(e));
    ERR_clear_error();
}

/* ALPN: a WebSocket upgrade is HTTP/1.1; a client that offers only other
 * protocols goes on without ALPN (it fails at the upgrade, with a status). */
static int tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                           const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char http11[] = "\x08http/1.1";

    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, http11, sizeof(http11) - 1, in,
                              inlen) == OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_OK;
    return SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *tls_ctx_new(const struct cfg *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    err[0] = '\0';
    if (ctx == NULL) {
        snprintf(err, errlen, "cannot create a TLS context");
        goto fail;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* no renegotiation, no tickets (a ticket key per worker would not be
     * shared anyway), server's cipher order; buffers given back while idle */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        snprintf(err, errlen, "tls-cert %s: cannot load", cfg->tls_cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "tls-key %s: cannot load", cfg->tls_key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "tls-key %s: does not match tls-cert %s", cfg->tls_key,
                 cfg->tls_cert);
        goto fail;
    }
    if (cfg->tls_ca_cert != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_ca_cert);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, cfg->tls_ca_cert, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            snprintf(err, errlen, "tls-ca-cert %s: cannot load", cfg->tls_ca_cert);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
fail:
    tls_err_append(err, errlen);
    SSL_CTX_free(ctx);
    return NULL;
}

struct tls_server *tls_server_new(const struct cfg *cfg, char *err, size_t errlen)
{
    struct tls_server *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->ctx = tls_ctx_new(cfg, err, errlen);
    if (t->ctx == NULL) {
        free(t);
        return NULL;
    }
    return t;
}

void tls_server_free(struct tls_server *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

int tls_server_reload(struct tls_server *t, const struct cfg *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = tls_ctx_new(cfg, err, errlen);

    if (ctx == NULL)
        return -1;
    SSL_CTX_free(t->ctx);
    t->ctx = ctx;
    return 0;
}

SSL *tls_conn_new(struct tls_server *t, int fd)
{
    SSL *ssl = SSL_new(t->ctx);

    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

void tls_conn_free(SSL *ssl)
{
    if (ssl == NULL)
        return;
    if (SSL_is_init_finished(ssl))
        SSL_shutdown(ssl); /* close_notify, once: nobody waits for the answer */
    SSL_free(ssl);
    ERR_clear_error();
}

enum tls_step tls_handshake(SSL *ssl, char *why, size_t whylen)
{
    int rc, e;

    ERR_clear_error();
    rc = SSL_do_handshake(ssl);
    if (rc == 1)
        return TLS_DONE;
    e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ)
        return TLS_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE)
        return TLS_WANT_WRITE;
    why[0] = '\0';
    if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
        snprintf(why, whylen, "%s", errno != 0 && rc < 0 ? strerror(errno) : "connection closed");
    else
        snprintf(why, whylen, "protocol error");
    tls_err_append(why, whylen);
    return TLS_FAILED;
}

/* errno for a failed SSL_read/SSL_write; 0 = clean close (close_notify) */
static int tls_errno(SSL *ssl, int rc)
{
    int e = SSL_get_error(ssl, rc);

    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        return errno != 0 ? errno : ECONNRESET; /* EOF without close_notify */
    default:
        ERR_clear_error();
        return EPROTO;
    }
}

ssize_t tls_recv(SSL *ssl, void *buf, size_t len)
{
    size_t got = 0;
    int rc, e;

    ERR_clear_error();
    errno = 0;
    rc = SSL_read_ex(ssl, buf, len, &got);
    if (rc == 1)
        return (ssize_t)got;
    e = tls_errno(ssl, rc);
    if (e == 0)
        return 0;
    errno = e;
    return -1;
}

ssize_t tls_writev(SSL *ssl, const struct iovec *iov, int n)
{
    size_t total = 0;
    int i = 0;
    size_t off = 0; /* into iov[i] */

    while (i < n) {
        size_t fill = 0, done = 0;
        int rc, e;

        while (i < n && fill < sizeof(tls_wbuf)) {
            size_t k = iov[i].iov_len - off;
            if (k > sizeof(tls_wbuf) - fill)
                k = sizeof(tls_wbuf) - fill;
            memcpy(tls_wbuf + fill, (const char *)iov[i].iov_base + off, k);
            fill += k;
            off += k;
            if (off == iov[i].iov_len)
                i++, off = 0;
        }
        if (fill == 0)
            break;
        ERR_clear_error();
        errno = 0;
        rc = SSL_write_ex(ssl, tls_wbuf, fill, &done);
        if (rc != 1) {
            e = tls_errno(ssl, rc);
            if (total > 0 && e == EAGAIN)
                return (ssize_t)total;
            errno = e != 0 ? e : EPIPE;
            return -1;
        }
        total += done;
        if (done < fill) /* a partial write: the socket is full */
            return (ssize_t)total;
    }
    return (ssize_t)total;
}

enum tls_step tls_io_wants(const SSL *ssl)
{
    return SSL_want_write(ssl) ? TLS_WANT_WRITE : TLS_WANT_READ;
}

int tls_pending(const SSL *ssl)
{
    return SSL_pending(ssl) > 0;
}
