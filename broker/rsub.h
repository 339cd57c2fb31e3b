/* rsub.h -- one Redis subscriber connection, driven by the broker itself.
 *
 * hiredis's async API cannot carry SSUBSCRIBE (its subscribe bookkeeping
 * knows only subscribe/psubscribe: smessage replies are dropped or break
 * the context), so this is a small driver of our own: a libevent
 * bufferevent (OpenSSL for TLS), commands formatted by hiredis's
 * redisFormatCommandArgv, replies read by hiredis's reader (RESP2) and
 * interpreted by rsub_reply.c.
 *
 * One rsub is one connection attempt and its life: connect (TCP, then TLS
 * with peer and host name verification), AUTH when there is a password,
 * then on_ready; from then on SUBSCRIBE/SSUBSCRIBE and their opposites.
 * When it fails or is lost, on_closed is called once and the rsub stays
 * dead: there is no reconnect inside; the caller frees it and makes a new
 * one after its own backoff (and subscribes again).
 *
 * Handlers are only ever called from the event loop, never from inside an
 * rsub_* call. rsub_free may be called from inside any handler: the rsub is
 * then freed when the handler returns and no handler is called after it.
 */
#ifndef RC_RSUB_H
#define RC_RSUB_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

struct event_base;
struct rsub;

#define RSUB_CONNECT_TIMEOUT_MS 5000 /* TCP + TLS + AUTH, until on_ready */

struct rsub_handlers {
    /* connected, TLS verified and AUTH accepted: subscribe now */
    void (*on_ready)(void *arg);
    /* a message published on a subscribed channel: "message" (sharded = 0)
     * or "smessage" (sharded = 1); bytes exactly as in Redis, valid only
     * during the call */
    void (*on_message)(const char *channel, size_t chlen, const char *payload, size_t len,
                       int sharded, void *arg);
    /* one channel's (s)subscribe (on = 1) or (s)unsubscribe (on = 0)
     * confirmation; also the sunsubscribe Redis sends by itself when a
     * sharded channel's slot moves to another node (resharding) */
    void (*on_subscribed)(const char *channel, size_t chlen, int on, int sharded, void *arg);
    /* an error reply after on_ready ("MOVED 1234 127.0.0.1:7001" to an
     * SSUBSCRIBE on the wrong node, "CROSSSLOT ...", "NOAUTH ..."), without
     * the leading '-'; the connection stays open. May be NULL. */
    void (*on_error)(const char *msg, void *arg);
    /* the connection failed or was lost (refused, timeout, TLS
     * verification, AUTH refused, EOF, protocol error), with the reason;
     * called once, and nothing else after it */
    void (*on_closed)(const char *why, void *arg);
    void *arg;
};

/* Start connecting to host:port (a name or an address; resolved with a
 * blocking getaddrinfo, as hiredis does; only its first address is tried).
 * ssl_ctx NULL means plain TCP;
 * otherwise it is the caller's, must outlive the rsub, and the peer is
 * verified whatever its verify mode (tls_server_name, or host when NULL:
 * an IP address is checked as an IP address). password NULL: no AUTH.
 * Every failure after allocation, even an immediate one, comes through
 * on_closed. NULL only when out of memory (logged). */
struct rsub *rsub_new(struct event_base *base, SSL_CTX *ssl_ctx, const char *host, int port,
                      const char *tls_server_name, const char *password,
                      const struct rsub_handlers *h);

/* Close the connection and free; no handler is called afterwards. Safe
 * from inside a handler (freed when the handler returns). NULL is a no-op. */
void rsub_free(struct rsub *s);

/* 1 between on_ready and on_closed. */
int rsub_is_ready(const struct rsub *s);

/* SUBSCRIBE (on = 1) or UNSUBSCRIBE (on = 0) n channels in one command,
 * SSUBSCRIBE / SUNSUBSCRIBE when sharded (in a cluster, all n in one hash
 * slot); names are (pointer, length), any bytes. on_subscribed follows per
 * channel, or on_error. 0 when queued (n = 0 sends nothing), -1 when not
 * ready or out of memory. */
int rsub_subscribe(struct rsub *s, int sharded, int on, size_t n, const char **channels,
                   const size_t *lens);

/* Send PING (answered in any mode). 0, or -1 when not ready. */
int rsub_ping(struct rsub *s);

/* util_now_ms() of the last bytes read from the server, or of on_ready
 * when none came since. Liveness for the caller: PING every so often and
 * drop a connection that stays silent past a deadline. Part of a large
 * message counts (a PING queued behind it is not answered yet, but the
 * peer is alive). */
uint64_t rsub_last_heard_ms(const struct rsub *s);

#endif
