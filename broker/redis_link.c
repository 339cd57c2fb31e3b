/* redis_link.c -- two hiredis async connections, kept alive.
 *
 * SUBSCRIBE puts a connection into a mode where it takes no other
 * commands, so the subscriber and the commands have a connection each.
 * Each connection runs: connect (TCP, then TLS with chain and host name
 * verification) -> AUTH -> SELECT / SUBSCRIBE -> ready. Any failure ends in
 * hiredis's disconnect callback, which frees the context; a timer with
 * jittered exponential backoff then starts over. The link is "up" only while
 * both connections are ready.
 *
 * With redis-sentinel, the address is not configured but asked of the
 * sentinels (sentinel.c) before a connection is made after any failure, and
 * each connection checks with ROLE that it reached the primary before it
 * counts as ready; a +switch-master moves both connections at once.
 */
#include "redis_link.h"

#include <event2/event.h>
#include <openssl/ssl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hiredis_compat.h"

#include "log.h"
#include "metrics.h"
#include "rcluster.h"
#include "redis_conn.h"
#include "room.h"
#include "sentinel.h"
#include "util.h"

#define RLINK_CONNECT_TIMEOUT_MS 5000
#define RLINK_BACKOFF_BASE_MS 100
#define RLINK_BACKOFF_MAX_MS 5000
#define RLINK_PING_EVERY_MS 1000   /* the command connection's heartbeat */
#define RLINK_PING_TIMEOUT_MS 3000 /* no reply this long: the link is dead */
#define RLINK_HOST_MAX 256

enum rconn_kind { RCONN_CMD = 0, RCONN_SUB };

struct rconn {
    struct rlink *r;
    enum rconn_kind kind;
    redisAsyncContext *ac; /* NULL while disconnected */
    int ready;
    int failures; /* consecutive failed attempts, for the backoff */
    int parked;   /* waiting for the sentinels to name the primary */
    int not_primary; /* ROLE said replica: replies still due are ignored */
    struct event *retry_ev;
};

struct rlink {
    struct event_base *base;
    const struct cfg *cfg;
    SSL_CTX *ssl_ctx; /* NULL without TLS */
    char host[RLINK_HOST_MAX]; /* where the connections go: redis-host, or */
    int port;                  /* the primary the sentinels named */
    struct sentinel *sentinel; /* NULL without redis-sentinel */
    struct rcluster *cl;       /* redis-cluster: everything goes through it */
    int host_known;            /* 0: ask the sentinels before connecting */
    struct rconn cmd, sub;
    struct rlink_handlers h;
    struct event *ping_ev;
    uint64_t ping_sent_ms; /* 0: no PING outstanding */
    uint64_t replies;      /* replies read on the command connection */
    uint64_t replies_seen; /* ... when the PING's wait was last judged */
    int up;
    int stopping;
    char direct[ROOM_KEY_MAX]; /* the direct messages' channel */
    size_t direct_len;
    char feed[ROOM_KEY_MAX]; /* the default room's feed (history on), else "" */
    size_t feed_len;
};

struct rlink_req {
    struct rlink *r;
    rlink_reply_fn fn;
    rlink_raw_fn raw;
    void *pd;
    uint64_t sent_us; /* for the latency histogram */
};

static const char *rconn_name(const struct rconn *c)
{
    return c->kind == RCONN_CMD ? "command connection" : "subscriber";
}

static void rlink_update_state(struct rlink *r)
{
    int up = r->cmd.ready && r->sub.ready;

    if (up == r->up)
        return;
    r->up = up;
    metrics_set(MS_REDIS_UP, (uint64_t)up);
    log_msg(up ? LOG_INFO : LOG_WARN, "redis link %s (%s:%d)", up ? "up" : "down", r->host,
            r->port);
    r->h.on_state(up, r->h.arg);
}

static void rconn_schedule_retry(struct rconn *c)
{
    long delay = RLINK_BACKOFF_BASE_MS;
    struct timeval tv;
    int i;

    if (c->r->stopping || evtimer_pending(c->retry_ev, NULL))
        return;
    for (i = 1; i < c->failures && delay < RLINK_BACKOFF_MAX_MS; i++)
        delay *= 2;
    if (delay > RLINK_BACKOFF_MAX_MS)
        delay = RLINK_BACKOFF_MAX_MS;
    /* jitter, within the cap: instances do not retry in lockstep */
    delay = delay / 2 + random() % (delay / 2 + 1);
    c->failures++;
    metrics_inc(MS_REDIS_RECONNECTS);
    tv = util_ms_tv(delay);
    evtimer_add(c->retry_ev, &tv);
}

static int rconn_reply_ok(const struct rconn *c, const redisReply *reply, const char *what)
{
    if (reply == NULL)
        return 0; /* disconnecting: the disconnect callback logs */
    if (reply->type == REDIS_REPLY_ERROR) {
        log_msg(LOG_ERROR, "redis %s: %s failed: %s", rconn_name(c), what, reply->str);
        return 0;
    }
    return 1;
}

static void rconn_on_auth(redisAsyncContext *ac, void *reply, void *pd)
{
    struct rconn *c = pd;

    if (!rconn_reply_ok(c, reply, "AUTH"))
        redisAsyncDisconnect(ac);
}

static void rconn_on_select(redisAsyncContext *ac, void *reply, void *pd)
{
    struct rconn *c = pd;

    if (!rconn_reply_ok(c, reply, "SELECT")) {
        redisAsyncDisconnect(ac);
        return;
    }
    if (c->not_primary)
        return;
    c->ready = 1;
    c->failures = 0;
    rlink_update_state(c->r);
}

static void rconn_on_sub(redisAsyncContext *ac, void *reply_, void *pd)
{
    struct rconn *c = pd;
    struct rlink *r = c->r;
    redisReply *reply = reply_;
    const redisReply *kind, *ch;

    if (!rconn_reply_ok(c, reply, "SUBSCRIBE")) {
        if (reply != NULL)
            redisAsyncDisconnect(ac);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    kind = reply->element[0];
    ch = reply->element[1];
    if (strcmp(kind->str, "message") == 0 && reply->element[2]->type == REDIS_REPLY_STRING) {
        r->h.on_message(ch->str, ch->len, reply->element[2]->str, reply->element[2]->len,
                        r->h.arg);
    } else if (strcmp(kind->str, "subscribe") == 0 || strcmp(kind->str, "unsubscribe") == 0) {
        int on = kind->str[0] == 's';
        if (c->not_primary)
            return;
        if (ch->len == r->cfg->channel_len && memcmp(ch->str, r->cfg->channel, ch->len) == 0) {
            /* the seed channel and the direct one were asked for in one
             * command: Redis has done both */
            log_msg(LOG_INFO, "redis: subscribed to channel '%s'", r->cfg->channel);
            c->ready = 1;
            c->failures = 0;
            rlink_update_state(r);
        } else if (ch->len != r->direct_len || memcmp(ch->str, r->direct, ch->len) != 0) {
            r->h.on_subscribed(ch->str, ch->len, on, r->h.arg);
        }
    }
}

static void rconn_on_connect(const redisAsyncContext *ac, int status)
{
    struct rconn *c = ac->data;

    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        log_msg(LOG_WARN, "redis %s: cannot connect to %s:%d: %s", rconn_name(c), c->r->host,
                c->r->port, ac->errstr);
        c->ac = NULL;
        c->r->host_known = c->r->sentinel == NULL;
        rconn_schedule_retry(c);
        return;
    }
    log_msg(LOG_DEBUG, "redis %s: connected", rconn_name(c));
}

static void rconn_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rconn *c = ac->data;

    c->ac = NULL;
    c->ready = 0;
    if (c->r->stopping)
        return;
    if (status != REDIS_OK) {
        log_msg(LOG_WARN, "redis %s: connection lost: %s", rconn_name(c),
                ac->errstr[0] ? ac->errstr : "closed");
        c->r->host_known = c->r->sentinel == NULL; /* a failover, maybe: ask again */
    } else
        log_msg(LOG_WARN, "redis %s: disconnected", rconn_name(c));
    rlink_update_state(c->r);
    rconn_schedule_retry(c);
}

/* The seed channel, the direct one and (history on) the default room's
 * feed, in one command: Redis has subscribed all of them by the first
 * confirmation. */
static void rconn_subscribe_fixed(struct rconn *c, redisAsyncContext *ac)
{
    const struct rlink *r = c->r;
    const char *argv[4] = {"SUBSCRIBE", r->cfg->channel, r->direct, r->feed};
    size_t lens[4] = {9, r->cfg->channel_len, r->direct_len, r->feed_len};

    redisAsyncCommandArgv(ac, rconn_on_sub, c, r->feed_len > 0 ? 4 : 3, argv, lens);
}

/* ROLE's first element: "master" on the primary. A replica (an old primary
 * demoted, or a sentinel's answer from before a failover) is left, and the
 * sentinels asked again. */
static void rconn_on_role(redisAsyncContext *ac, void *reply_, void *pd)
{
    struct rconn *c = pd;
    const redisReply *reply = reply_;

    if (!rconn_reply_ok(c, reply, "ROLE")) {
        if (reply != NULL)
            redisAsyncDisconnect(ac);
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
        reply->element[0]->type == REDIS_REPLY_STRING && strcmp(reply->element[0]->str, "master") == 0)
        return;
    log_msg(LOG_WARN, "redis %s: %s:%d is not the primary (ROLE: %s): asking the sentinels again",
            rconn_name(c), c->r->host, c->r->port,
            reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                    reply->element[0]->type == REDIS_REPLY_STRING
                ? reply->element[0]->str
                : "?");
    c->not_primary = 1;
    c->r->host_known = 0;
    redisAsyncDisconnect(ac);
}

static void rconn_connect(struct rconn *c)
{
    struct rlink *r = c->r;
    const struct cfg *cfg = r->cfg;
    char err[256];
    redisAsyncContext *ac;

    if (!r->host_known) {
        c->parked = 1; /* rlink_on_primary connects it */
        sentinel_ask(r->sentinel);
        return;
    }
    ac = redis_conn_open(r->base, r->host, r->port, RLINK_CONNECT_TIMEOUT_MS, r->ssl_ctx, cfg, err,
                         sizeof(err));
    if (ac == NULL) {
        log_msg(LOG_WARN, "redis %s: cannot connect to %s:%d: %s", rconn_name(c), r->host,
                r->port, err);
        r->host_known = r->sentinel == NULL;
        rconn_schedule_retry(c);
        return;
    }
    ac->data = c;
    c->ac = ac;
    c->not_primary = 0;
    redisAsyncSetConnectCallback(ac, rconn_on_connect);
    redisAsyncSetDisconnectCallback(ac, rconn_on_disconnect);
    if (cfg->redis_password != NULL)
        redisAsyncCommand(ac, rconn_on_auth, c, "AUTH %s", cfg->redis_password);
    if (r->sentinel != NULL)
        redisAsyncCommand(ac, rconn_on_role, c, "ROLE");
    if (c->kind == RCONN_CMD)
        redisAsyncCommand(ac, rconn_on_select, c, "SELECT %d", cfg->redis_db);
    else
        rconn_subscribe_fixed(c, ac);
}

/* The sentinels' answer: connect what waited for it, or try again later. */
static void rlink_on_primary(const char *host, int port, void *arg)
{
    struct rlink *r = arg;
    struct rconn *conns[2] = {&r->cmd, &r->sub};
    int i;

    if (host != NULL) {
        if (strcmp(host, r->host) != 0 || port != r->port) {
            log_msg(LOG_INFO, "redis: the sentinels name %s:%d the primary '%s'", host, port,
                    r->cfg->redis_sentinel_master);
            if (r->host[0] != '\0')
                metrics_inc(MS_REDIS_FAILOVERS);
        }
        snprintf(r->host, sizeof(r->host), "%s", host);
        r->port = port;
        r->host_known = 1;
    }
    for (i = 0; i < 2; i++) {
        if (!conns[i]->parked)
            continue;
        conns[i]->parked = 0;
        if (host != NULL)
            rconn_connect(conns[i]);
        else
            rconn_schedule_retry(conns[i]);
    }
}

/* A failover the sentinels announced: both connections move, even while
 * the old primary still answers (it is about to become a replica). */
static void rlink_on_switch(const char *host, int port, void *arg)
{
    struct rlink *r = arg;
    struct rconn *conns[2] = {&r->cmd, &r->sub};
    int i;

    if (r->host_known && strcmp(host, r->host) == 0 && port == r->port)
        return;
    if (strcmp(host, r->host) != 0 || port != r->port)
        metrics_inc(MS_REDIS_FAILOVERS);
    snprintf(r->host, sizeof(r->host), "%s", host);
    r->port = port;
    r->host_known = 1;
    for (i = 0; i < 2; i++) {
        struct rconn *c = conns[i];
        c->failures = 0; /* the new primary is ready: no long backoff */
        if (c->ac != NULL) {
            redisAsyncDisconnect(c->ac); /* reconnects from the disconnect callback */
        } else if (!c->parked) {
            evtimer_del(c->retry_ev); /* waiting out a backoff: go now */
            rconn_connect(c);
        }
    }
}

static void rconn_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rconn_connect(arg);
}

static void rlink_on_pong(redisAsyncContext *ac, void *reply, void *pd)
{
    struct rlink *r = pd;

    (void)ac;
    if (reply != NULL)
        r->ping_sent_ms = 0;
}

/* Redis that stops answering (hung, partitioned) is dropped and reconnected;
 * losing the command connection means the subscriber is suspect too. A PING
 * queued behind many commands (a join storm) waits while Redis works through
 * them: replies still coming is an answer (rlink_ping_overdue). */
static void rlink_ping_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rlink *r = arg;
    uint64_t now = util_now_ms();

    (void)fd;
    (void)what;
    if (r->cmd.ac == NULL || !r->cmd.ready) {
        r->ping_sent_ms = 0;
        return;
    }
    if (r->ping_sent_ms != 0) {
        switch (rlink_ping_overdue(r->ping_sent_ms, now, r->replies != r->replies_seen)) {
        case RLINK_PING_WAIT:
            return;
        case RLINK_PING_BUSY:
            r->replies_seen = r->replies;
            r->ping_sent_ms = now; /* judged again after another full wait */
            return;
        case RLINK_PING_DEAD:
            break;
        }
        log_msg(LOG_WARN, "redis: no answer to PING nor any other reply for %d ms: reconnecting",
                RLINK_PING_TIMEOUT_MS);
        r->ping_sent_ms = 0;
        redisAsyncDisconnect(r->cmd.ac);
        if (r->sub.ac != NULL)
            redisAsyncDisconnect(r->sub.ac);
        return;
    }
    if (redisAsyncCommand(r->cmd.ac, rlink_on_pong, r, "PING") == REDIS_OK) {
        r->ping_sent_ms = now;
        r->replies_seen = r->replies;
    }
}

enum rlink_ping_verdict rlink_ping_overdue(uint64_t sent_ms, uint64_t now_ms, int replied_since)
{
    if (now_ms - sent_ms < RLINK_PING_TIMEOUT_MS)
        return RLINK_PING_WAIT;
    return replied_since ? RLINK_PING_BUSY : RLINK_PING_DEAD;
}

/* ---- redis-cluster: rcluster.c does the work, these pass its news on ---- */

static void rlink_cl_message(const char *ch, size_t chlen, const char *payload, size_t len,
                             void *arg)
{
    struct rlink *r = arg;

    r->h.on_message(ch, chlen, payload, len, r->h.arg);
}

static void rlink_cl_subscribed(const char *ch, size_t chlen, int on, void *arg)
{
    struct rlink *r = arg;

    r->h.on_subscribed(ch, chlen, on, r->h.arg);
}

static void rlink_cl_moved(const char *ch, size_t chlen, void *arg)
{
    struct rlink *r = arg;

    if (r->h.on_moved != NULL)
        r->h.on_moved(ch, chlen, r->h.arg);
}

static void rlink_cl_state(int up, void *arg)
{
    struct rlink *r = arg;

    if (up == r->up)
        return;
    r->up = up;
    metrics_set(MS_REDIS_UP, (uint64_t)up);
    log_msg(up ? LOG_INFO : LOG_WARN, "redis link %s (cluster, seed %s:%d)", up ? "up" : "down",
            r->cfg->redis_host, r->cfg->redis_port);
    r->h.on_state(up, r->h.arg);
}

struct rlink *rlink_new(struct event_base *base, const struct cfg *cfg,
                        const struct rlink_handlers *h, char *err, size_t errlen)
{
    struct rlink *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->base = base;
    r->cfg = cfg;
    r->h = *h;
    r->direct_len = (size_t)room_key_direct(r->direct, sizeof(r->direct), cfg);
    if (cfg->history_size > 0)
        r->feed_len = (size_t)room_key(r->feed, sizeof(r->feed), cfg, "", 0, ROOM_KEY_FEED, NULL);
    if (cfg->redis_tls) {
        r->ssl_ctx = redis_tls_ctx_new(cfg, err, errlen);
        if (r->ssl_ctx == NULL) {
            free(r);
            return NULL;
        }
    }
    snprintf(r->host, sizeof(r->host), "%s", cfg->redis_host);
    r->port = cfg->redis_port;
    r->host_known = 1;
    if (cfg->redis_cluster) {
        struct rlink_handlers ch = {rlink_cl_message, rlink_cl_subscribed, rlink_cl_state,
                                    rlink_cl_moved, r};
        r->cl = rcluster_new(base, cfg, r->ssl_ctx, &ch);
        if (r->cl == NULL) {
            snprintf(err, errlen, "redis-cluster: cannot set up the cluster link");
            SSL_CTX_free(r->ssl_ctx);
            free(r);
            return NULL;
        }
        return r;
    }
    if (cfg->redis_sentinel != NULL) {
        struct sentinel_handlers sh = {rlink_on_primary, rlink_on_switch, r};
        r->host_known = 0;
        r->host[0] = '\0';
        r->sentinel = sentinel_new(base, cfg, r->ssl_ctx, &sh);
        if (r->sentinel == NULL) {
            snprintf(err, errlen, "redis-sentinel: cannot set up the sentinels");
            SSL_CTX_free(r->ssl_ctx);
            free(r);
            return NULL;
        }
    }
    r->cmd.r = r->sub.r = r;
    r->cmd.kind = RCONN_CMD;
    r->sub.kind = RCONN_SUB;
    r->cmd.retry_ev = evtimer_new(base, rconn_retry_cb, &r->cmd);
    r->sub.retry_ev = evtimer_new(base, rconn_retry_cb, &r->sub);
    r->ping_ev = event_new(base, -1, EV_PERSIST, rlink_ping_cb, r);
    {
        struct timeval tv = util_ms_tv(RLINK_PING_EVERY_MS);
        event_add(r->ping_ev, &tv);
    }
    rconn_connect(&r->sub);
    rconn_connect(&r->cmd);
    return r;
}

void rlink_free(struct rlink *r)
{
    if (r == NULL)
        return;
    r->stopping = 1;
    if (r->cl != NULL) {
        rcluster_free(r->cl); /* pending commands get NULL replies */
        SSL_CTX_free(r->ssl_ctx);
        free(r);
        return;
    }
    /* redisAsyncFree calls pending callbacks with NULL and the disconnect callback */
    if (r->cmd.ac != NULL)
        redisAsyncFree(r->cmd.ac);
    if (r->sub.ac != NULL)
        redisAsyncFree(r->sub.ac);
    event_free(r->cmd.retry_ev);
    event_free(r->sub.retry_ev);
    event_free(r->ping_ev);
    sentinel_free(r->sentinel);
    SSL_CTX_free(r->ssl_ctx);
    free(r);
}

int rlink_is_up(const struct rlink *r)
{
    return r->up;
}

/* A command's final reply (NULL: it failed) to its caller. */
static void rlink_req_finish(struct rlink_req *req, const redisReply *reply)
{
    long long result = -1;

    req->r->replies += reply != NULL;
    if (reply != NULL)
        metrics_redis_latency(util_now_us() - req->sent_us);
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        metrics_inc(MS_REDIS_ERRORS);
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        log_msg(LOG_ERROR, "redis command failed: %s", reply->str);
    if (req->raw != NULL) {
        req->raw(reply != NULL && reply->type != REDIS_REPLY_ERROR ? (const void *)reply : NULL,
                 req->pd);
    } else if (req->fn != NULL) {
        if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
            result = reply->integer;
        else if (reply != NULL && reply->type != REDIS_REPLY_ERROR)
            result = 0; /* +OK, +PONG, a string: done */
        req->fn(result, req->pd);
    }
    free(req);
}

static void rlink_on_reply(redisAsyncContext *ac, void *reply, void *pd)
{
    (void)ac;
    rlink_req_finish(pd, reply);
}

static void rlink_on_cluster_reply(const void *reply, void *pd)
{
    rlink_req_finish(pd, reply);
}

static int rlink_send(struct rlink *r, rlink_reply_fn fn, rlink_raw_fn raw, void *pd, int argc,
                      const char **argv, const size_t *lens)
{
    struct rlink_req *req;

    if (!r->up || (r->cl == NULL && r->cmd.ac == NULL))
        return -1;
    req = malloc(sizeof(*req));
    if (req == NULL)
        return -1;
    req->r = r;
    req->fn = fn;
    req->raw = raw;
    req->pd = pd;
    req->sent_us = util_now_us();
    if (r->cl != NULL) {
        if (rcluster_send(r->cl, argc, argv, lens, rlink_on_cluster_reply, req) == -1) {
            free(req);
            return -1;
        }
        return 0;
    }
    if (redisAsyncCommandArgv(r->cmd.ac, rlink_on_reply, req, argc, argv, lens) != REDIS_OK) {
        free(req);
        return -1;
    }
    return 0;
}

int rlink_command(struct rlink *r, rlink_reply_fn fn, void *pd, int argc, const char **argv,
                  const size_t *lens)
{
    return rlink_send(r, fn, NULL, pd, argc, argv, lens);
}

int rlink_command_raw(struct rlink *r, rlink_raw_fn fn, void *pd, int argc, const char **argv,
                      const size_t *lens)
{
    return rlink_send(r, NULL, fn, pd, argc, argv, lens);
}

int rlink_eval(struct rlink *r, const char *script, int nkeys, const char *const *keys, int nargs,
               const char *const *args, const size_t *arglens, rlink_reply_fn fn, rlink_raw_fn raw,
               void *pd)
{
    const char *argv[3 + RLINK_EVAL_ARGS_MAX];
    size_t lens[3 + RLINK_EVAL_ARGS_MAX];
    char nk[8];
    int i, argc = 0;

    if (nkeys < 0 || nargs < 0 || nkeys + nargs > RLINK_EVAL_ARGS_MAX)
        return -1;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[argc] = "EVAL", lens[argc++] = 4;
    argv[argc] = script, lens[argc++] = strlen(script);
    argv[argc] = nk, lens[argc++] = strlen(nk);
    for (i = 0; i < nkeys; i++)
        argv[argc] = keys[i], lens[argc++] = strlen(keys[i]);
    for (i = 0; i < nargs; i++)
        argv[argc] = args[i], lens[argc++] = arglens[i];
    return rlink_send(r, fn, raw, pd, argc, argv, lens);
}

int rlink_publish(struct rlink *r, const char *channel, size_t chlen, const char *payload,
                  size_t len, rlink_reply_fn fn, void *pd)
{
    /* a room's channel in a cluster: sharded pub/sub, on the room's shard */
    int sharded = room_channel_sharded(r->cfg, channel, chlen);
    const char *argv[3] = {sharded ? "SPUBLISH" : "PUBLISH", channel, payload};
    size_t lens[3] = {sharded ? 8 : 7, chlen, len};

    return rlink_send(r, fn, NULL, pd, 3, argv, lens);
}

int rlink_subscribe(struct rlink *r, int on, size_t n, const char **channels, const size_t *lens)
{
    const char **argv;
    size_t *argl, i;
    int rc = -1;

    if (n == 0)
        return 0;
    if (r->cl != NULL)
        return rcluster_subscribe(r->cl, on, n, channels, lens);
    if (!r->sub.ready || r->sub.ac == NULL || n > INT_MAX - 1)
        return -1;
    argv = malloc((n + 1) * sizeof(*argv));
    argl = malloc((n + 1) * sizeof(*argl));
    if (argv != NULL && argl != NULL) {
        argv[0] = on ? "SUBSCRIBE" : "UNSUBSCRIBE";
        argl[0] = strlen(argv[0]);
        for (i = 0; i < n; i++) {
            argv[i + 1] = channels[i];
            argl[i + 1] = lens[i];
        }
        /* hiredis calls rconn_on_sub once per channel, for the confirmation
         * and then for each message */
        if (redisAsyncCommandArgv(r->sub.ac, rconn_on_sub, &r->sub, (int)n + 1, argv, argl) ==
            REDIS_OK)
            rc = 0;
    }
    free(argv);
    free(argl);
    return rc;
}
