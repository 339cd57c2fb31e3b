/* rsub.c -- a Redis subscriber connection on a libevent bufferevent.
 *
 * States: CONNECTING (TCP, then the TLS handshake inside the OpenSSL
 * bufferevent) -> AUTH (only with a password: AUTH was queued at once, its
 * answer is the first reply) -> READY -> CLOSED. A timer bounds everything
 * before READY. Any failure goes through rsub_fail: the connection is freed
 * at once and on_closed comes from a zero-delay event, so that it is never
 * called from inside rsub_new or rsub_subscribe, and only once.
 *
 * Replies: bytes are fed to hiredis's reader one evbuffer chunk at a time
 * and complete replies are taken out after each chunk, so the reader holds
 * at most one chunk and one unfinished reply; an unfinished reply past
 * RSUB_PENDING_MAX (more than Redis ever sends) closes the connection.
 *
 * Freeing from a handler: each libevent callback of ours counts itself in
 * in_cb; rsub_free inside one only marks the rsub, and the callback frees it
 * on its way out (hiredis's REDIS_IN_CALLBACK, redis's freeClientAsync).
 */
#include "rsub.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "net.h"
#include "redis_conn.h"
#include "rsub_reply.h"
#include "util.h"

#define RSUB_KEEPALIVE_S 5 /* TCP keepalive: idle and interval, as redis_link.c */
#define RSUB_KEEPALIVE_COUNT 3
/* Redis's bulk strings stop at 512 MiB (proto-max-bulk-len); a message
 * reply is that plus a channel name and framing. */
#define RSUB_PENDING_MAX ((size_t)512 * 1024 * 1024 + 64 * 1024)
#define RSUB_WHY_MAX 256

enum rsub_state { RSUB_CONNECTING = 0, RSUB_AUTH, RSUB_READY, RSUB_CLOSED };

/* Owned by the caller (rsub_new/rsub_free); owns its bufferevent (and
 * through it the socket and the SSL), its reader and its events. */
struct rsub {
    struct event_base *base;
    struct bufferevent *bev; /* NULL once closed */
    redisReader *reader;
    struct event *timeout_ev; /* until READY */
    struct event *closed_ev;  /* delivers on_closed from the loop */
    struct rsub_handlers h;
    enum rsub_state state;
    int has_password;
    int in_cb; /* inside one of our libevent callbacks */
    int freed; /* rsub_free was called inside one: free on the way out */
    uint64_t heard_ms;
    char name[300]; /* host:port, for the log */
    char why[RSUB_WHY_MAX];
};

static void rsub_destroy(struct rsub *s)
{
    if (s->bev != NULL)
        bufferevent_free(s->bev);
    if (s->reader != NULL)
        redisReaderFree(s->reader);
    if (s->timeout_ev != NULL)
        event_free(s->timeout_ev);
    if (s->closed_ev != NULL)
        event_free(s->closed_ev);
    free(s);
}

static void rsub_enter(struct rsub *s)
{
    s->in_cb++;
}

/* The end of each of our libevent callbacks: the rsub may be gone after. */
static void rsub_leave(struct rsub *s)
{
    if (--s->in_cb == 0 && s->freed)
        rsub_destroy(s);
}

/* Handlers may not run any more: freed, or closed (on_closed pending). */
static int rsub_gone(const struct rsub *s)
{
    return s->freed || s->state == RSUB_CLOSED;
}

static void rsub_drop_connection(struct rsub *s)
{
    if (s->bev != NULL) {
        bufferevent_free(s->bev); /* safe inside its own callbacks: refcounted */
        s->bev = NULL;
    }
    evtimer_del(s->timeout_ev);
}

static void rsub_fail(struct rsub *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void rsub_fail(struct rsub *s, const char *fmt, ...)
{
    va_list ap;

    if (s->state == RSUB_CLOSED)
        return;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
    log_msg(LOG_WARN, "redis subscriber %s: %s", s->name, s->why);
    s->state = RSUB_CLOSED;
    rsub_drop_connection(s);
    event_active(s->closed_ev, 0, 0);
}

static void rsub_closed_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rsub *s = arg;

    (void)fd;
    (void)what;
    rsub_enter(s);
    if (!s->freed)
        s->h.on_closed(s->why, s->h.arg);
    rsub_leave(s);
}

static void rsub_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rsub *s = arg;

    (void)fd;
    (void)what;
    rsub_enter(s);
    rsub_fail(s, "no %s within %d ms", s->state == RSUB_AUTH ? "answer to AUTH" : "connection",
              RSUB_CONNECT_TIMEOUT_MS);
    rsub_leave(s);
}

static void rsub_set_ready(struct rsub *s)
{
    s->state = RSUB_READY;
    s->heard_ms = util_now_ms();
    evtimer_del(s->timeout_ev);
    log_msg(LOG_DEBUG, "redis subscriber %s: ready", s->name);
    s->h.on_ready(s->h.arg);
}

/* TCP connected and, with TLS, the handshake done: AUTH's answer is next,
 * or we are ready. */
static void rsub_on_connected(struct rsub *s)
{
    if (s->state != RSUB_CONNECTING)
        return;
    if (s->has_password)
        s->state = RSUB_AUTH;
    else
        rsub_set_ready(s);
}

static void rsub_dispatch(struct rsub *s, const redisReply *reply)
{
    struct rsub_reply rr;

    rsub_reply_parse(reply, &rr);
    if (s->state == RSUB_AUTH) {
        if (rr.kind == RSUB_REPLY_STATUS)
            rsub_set_ready(s);
        else if (rr.kind == RSUB_REPLY_ERROR)
            rsub_fail(s, "AUTH failed: %.*s", (int)(rr.len < 200 ? rr.len : 200), rr.payload);
        else
            rsub_fail(s, "AUTH failed: unexpected reply");
        return;
    }
    switch (rr.kind) {
    case RSUB_REPLY_MESSAGE:
        s->h.on_message(rr.channel, rr.chlen, rr.payload, rr.len, rr.sharded, s->h.arg);
        break;
    case RSUB_REPLY_SUBSCRIBED:
    case RSUB_REPLY_UNSUBSCRIBED:
        s->h.on_subscribed(rr.channel, rr.chlen, rr.kind == RSUB_REPLY_SUBSCRIBED, rr.sharded,
                           s->h.arg);
        break;
    case RSUB_REPLY_ERROR:
        log_msg(LOG_WARN, "redis subscriber %s: error reply: %s", s->name, reply->str);
        if (s->h.on_error != NULL)
            s->h.on_error(reply->str, s->h.arg); /* hiredis ends it with a NUL */
        break;
    case RSUB_REPLY_PONG:
        break; /* heard_ms is all it is for */
    case RSUB_REPLY_STATUS:
    case RSUB_REPLY_OTHER:
        log_msg(LOG_DEBUG, "redis subscriber %s: reply of type %d ignored", s->name, reply->type);
        break;
    }
}

/* Take every complete reply out of the reader. 0, or -1 when the rsub
 * must not be touched by the caller's loop any more (closed or freed). */
static int rsub_drain_replies(struct rsub *s)
{
    void *reply;

    for (;;) {
        if (redisReaderGetReply(s->reader, &reply) != REDIS_OK) {
            rsub_fail(s, "protocol error: %s", s->reader->errstr);
            return -1;
        }
        if (reply == NULL)
            break;
        rsub_dispatch(s, reply);
        freeReplyObject(reply);
        if (rsub_gone(s))
            return -1;
    }
    if (s->reader->len - s->reader->pos > RSUB_PENDING_MAX) {
        rsub_fail(s, "protocol error: a reply over %zu bytes", RSUB_PENDING_MAX);
        return -1;
    }
    return 0;
}

static void rsub_read_cb(struct bufferevent *bev, void *arg)
{
    struct rsub *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec v;

    rsub_enter(s);
    if (rsub_gone(s))
        goto out;
    rsub_on_connected(s); /* bytes in: connected, whatever the event order */
    s->heard_ms = util_now_ms();
    while (!rsub_gone(s) && evbuffer_peek(in, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
        if (redisReaderFeed(s->reader, v.iov_base, v.iov_len) != REDIS_OK) {
            rsub_fail(s, "reader: %s", s->reader->errstr);
            break;
        }
        evbuffer_drain(in, v.iov_len);
        if (rsub_drain_replies(s) == -1)
            break;
    }
out:
    rsub_leave(s);
}

/* Why a TLS connection failed: the certificate check, else OpenSSL's
 * first error, else the socket's. */
static void rsub_tls_why(struct rsub *s, char *buf, size_t cap)
{
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    long vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
    const char *reason = NULL;
    unsigned long e;

    /* libevent also queues what is not OpenSSL's (a socket error): no
     * reason string, the socket's errno says it */
    while ((e = bufferevent_get_openssl_error(s->bev)) != 0)
        if (reason == NULL)
            reason = ERR_reason_error_string(e);
    if (vr != X509_V_OK)
        snprintf(buf, cap, "TLS: certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
    else if (reason != NULL)
        snprintf(buf, cap, "TLS: %s", reason);
    else
        buf[0] = '\0';
}

static void rsub_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct rsub *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    char tls[160] = "";

    (void)bev;
    rsub_enter(s);
    if (rsub_gone(s))
        goto out;
    if (what & BEV_EVENT_CONNECTED) {
        rsub_on_connected(s);
        goto out;
    }
    if (bufferevent_openssl_get_ssl(s->bev) != NULL)
        rsub_tls_why(s, tls, sizeof(tls));
    if (tls[0] != '\0')
        rsub_fail(s, "%s", tls);
    else if (what & BEV_EVENT_EOF)
        rsub_fail(s, "connection closed by the server%s",
                  s->state == RSUB_AUTH ? " (during AUTH)" : "");
    else if (s->state == RSUB_CONNECTING)
        rsub_fail(s, "cannot connect: %s", err != 0 ? strerror(err) : "closed");
    else
        rsub_fail(s, "connection lost: %s", err != 0 ? strerror(err) : "closed");
out:
    rsub_leave(s);
}

/* Queue one command given as (pointer, length) arguments. 0 or -1. */
static int rsub_send(struct rsub *s, int argc, const char **argv, const size_t *lens)
{
    char *cmd;
    long long len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    int rc;

    if (len < 0)
        return -1;
    rc = bufferevent_write(s->bev, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return rc == 0 ? 0 : -1;
}

static SSL *rsub_ssl_new(SSL_CTX *ctx, const char *name)
{
    SSL *ssl = redis_tls_ssl_new(ctx, name);

    if (ssl == NULL)
        return NULL;
    /* verified even when the context was made without SSL_VERIFY_PEER */
    SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* Redis closes without close_notify when it stops: an EOF like any
     * other (OpenSSL 3 makes it an error; RESP frames itself, so a cut
     * reply is seen as cut anyway) */
    SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    return ssl;
}

/* Resolve, make the bufferevent, start the connect and queue AUTH. A
 * failure goes through rsub_fail (on_closed from the loop). */
static void rsub_start(struct rsub *s, SSL_CTX *ssl_ctx, const char *host, int port,
                       const char *tls_server_name, const char *password)
{
    const int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    struct addrinfo hints, *ai = NULL;
    char portstr[16];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof(portstr), "%d", port);
    rc = getaddrinfo(host, portstr, &hints, &ai);
    if (rc != 0) {
        rsub_fail(s, "cannot resolve %s: %s", host, gai_strerror(rc));
        return;
    }
    if (ssl_ctx != NULL) {
        SSL *ssl = rsub_ssl_new(ssl_ctx, tls_server_name != NULL ? tls_server_name : host);

        if (ssl != NULL) {
            s->bev =
                bufferevent_openssl_socket_new(s->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, opts);
            /* no allow_dirty_shutdown: libevent would then report a
             * refused connect as an EOF (rsub_ssl_new makes Redis's close
             * without close_notify an EOF already) */
            if (s->bev == NULL)
                SSL_free(ssl);
        }
    } else {
        s->bev = bufferevent_socket_new(s->base, -1, opts);
    }
    if (s->bev == NULL) {
        freeaddrinfo(ai);
        rsub_fail(s, "cannot set up the connection: out of memory");
        return;
    }
    bufferevent_setcb(s->bev, rsub_read_cb, NULL, rsub_event_cb, s);
    bufferevent_enable(s->bev, EV_READ);
    /* the first address only, as the broker's configurations name one */
    rc = bufferevent_socket_connect(s->bev, ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc != 0) {
        rsub_fail(s, "cannot connect: %s", strerror(errno));
        return;
    }
    if (bufferevent_getfd(s->bev) != -1)
        net_tcp_keepalive(bufferevent_getfd(s->bev), RSUB_KEEPALIVE_S, RSUB_KEEPALIVE_COUNT);
    if (password != NULL) {
        const char *argv[2] = {"AUTH", password};
        size_t lens[2] = {4, strlen(password)};

        s->has_password = 1;
        /* sent once connected (and after the handshake): a bufferevent
         * holds output until then */
        if (rsub_send(s, 2, argv, lens) != 0)
            rsub_fail(s, "cannot queue AUTH: out of memory");
    }
}

struct rsub *rsub_new(struct event_base *base, SSL_CTX *ssl_ctx, const char *host, int port,
                      const char *tls_server_name, const char *password,
                      const struct rsub_handlers *h)
{
    struct rsub *s = calloc(1, sizeof(*s));
    struct timeval tv = util_ms_tv(RSUB_CONNECT_TIMEOUT_MS);

    if (s == NULL)
        goto oom;
    s->base = base;
    s->h = *h;
    snprintf(s->name, sizeof(s->name), "%s:%d", host, port);
    s->reader = rsub_reader_new();
    s->timeout_ev = evtimer_new(base, rsub_timeout_cb, s);
    s->closed_ev = event_new(base, -1, 0, rsub_closed_cb, s);
    if (s->reader == NULL || s->timeout_ev == NULL || s->closed_ev == NULL)
        goto oom;
    evtimer_add(s->timeout_ev, &tv);
    rsub_start(s, ssl_ctx, host, port, tls_server_name, password);
    return s;
oom:
    log_msg(LOG_ERROR, "redis subscriber %s:%d: out of memory", host, port);
    if (s != NULL)
        rsub_destroy(s);
    return NULL;
}

void rsub_free(struct rsub *s)
{
    if (s == NULL)
        return;
    if (s->in_cb > 0) {
        /* inside a handler: no more I/O nor handlers; rsub_leave frees */
        s->freed = 1;
        rsub_drop_connection(s);
        event_del(s->closed_ev);
        return;
    }
    rsub_destroy(s);
}

int rsub_is_ready(const struct rsub *s)
{
    return s->state == RSUB_READY && !s->freed;
}

int rsub_subscribe(struct rsub *s, int sharded, int on, size_t n, const char **channels,
                   const size_t *lens)
{
    const char **argv;
    size_t *argl, i;
    int rc = -1;

    if (!rsub_is_ready(s))
        return -1;
    if (n == 0)
        return 0;
    if (n > (size_t)INT_MAX - 1)
        return -1;
    argv = malloc((n + 1) * sizeof(*argv));
    argl = malloc((n + 1) * sizeof(*argl));
    if (argv != NULL && argl != NULL) {
        if (sharded)
            argv[0] = on ? "SSUBSCRIBE" : "SUNSUBSCRIBE";
        else
            argv[0] = on ? "SUBSCRIBE" : "UNSUBSCRIBE";
        argl[0] = strlen(argv[0]);
        for (i = 0; i < n; i++) {
            argv[i + 1] = channels[i];
            argl[i + 1] = lens[i];
        }
        rc = rsub_send(s, (int)n + 1, argv, argl);
    }
    free(argv);
    free(argl);
    return rc;
}

int rsub_ping(struct rsub *s)
{
    const char *argv[1] = {"PING"};
    size_t lens[1] = {4};

    if (!rsub_is_ready(s))
        return -1;
    return rsub_send(s, 1, argv, lens);
}

uint64_t rsub_last_heard_ms(const struct rsub *s)
{
    return s->heard_ms;
}
