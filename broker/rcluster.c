/* rcluster.c -- commands and subscriptions over a Redis Cluster.
 *
 * Nodes are made as the map names them (or a seed, or a redirection) and
 * kept for the link's life; a node's command connection is opened while it
 * is a primary of the map. Each command is formatted once and kept until
 * its final reply, so that MOVED (the slot lives elsewhere: read the map
 * again, and send it there) and ASK (a slot being migrated: ASKING, then
 * this command there) can send it again, at most RC_REDIRECTS_MAX times.
 *
 * Subscriptions: the classic channels on one rsub (to the first primary);
 * each shard that serves rooms gets an rsub of its own, with SSUBSCRIBE /
 * SUNSUBSCRIBE one channel per command, so that each command has exactly
 * one answer (a confirmation or an error) and the answers can be matched to
 * the commands in order. A sunsubscribe that answers nothing is Redis
 * moving the slot away (resharding): the room is subscribed again where the
 * slot went (the old node answers MOVED), and the broker told, so that it
 * fills the gap from the room's stream (on_moved).
 */
#include "rcluster.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_map.h"
#include "cluster_slot.h"
#include "log.h"
#include "metrics.h"
#include "redis_conn.h"
#include "room.h"
#include "rsub.h"
#include "util.h"

#define RC_CONNECT_TIMEOUT_MS 5000
#define RC_COMMAND_TIMEOUT_MS 5000 /* a node silent this long is dropped */
#define RC_REDIRECTS_MAX 5
#define RC_REFRESH_MIN_MS 100
#define RC_REFRESH_MAX_MS 2000
#define RC_SEEDS_MAX (1 + CFG_ADDRS_MAX)
#define RC_TICK_MS 1000      /* PING every connection this often */
#define RC_SILENT_MS 5000    /* a subscriber silent this long (PINGs too) is dead */

struct rsub_op { /* an SSUBSCRIBE or SUNSUBSCRIBE waiting for its answer */
    struct rsub_op *next;
    int on;
    size_t len;
    char ch[];
};

struct rnode {
    struct rnode *next;
    struct rcluster *cl;
    char host[CLUSTER_HOST_MAX + 1];
    int port;
    redisAsyncContext *ac; /* commands; NULL while closed */
    int ready;             /* AUTH done */
    int primary;           /* a primary of the current map */
    struct rsub *sub;      /* sharded subscriber, when it serves rooms */
    int sub_ready;
    struct rsub_op *queued, **queued_tail; /* to send once sub is ready */
    struct rsub_op *sent, **sent_tail;     /* sent, answer due */
};

struct rcreq {
    struct rcluster *cl;
    char *cmd; /* formatted once (redisFormatCommandArgv) */
    long long len;
    int slot;
    int redirects;
    rcluster_done_fn done;
    void *pd;
};

struct rcluster {
    struct event_base *base;
    const struct cfg *cfg;
    SSL_CTX *ssl_ctx;
    struct rlink_handlers h;
    struct cluster_map *map;
    struct rnode *nodes;
    struct rnode *seeds[RC_SEEDS_MAX];
    int nseeds, seed_next;
    struct rsub *classic; /* the classic channels */
    int classic_ready;
    char direct[ROOM_KEY_MAX], feed[ROOM_KEY_MAX];
    size_t direct_len, feed_len;
    struct event *refresh_ev;
    struct event *tick_ev;
    int refreshing;
    int refresh_failures;
    int broken; /* a subscriber was lost: down until the next map */
    int up;
    int stopping;
};

static void rc_schedule_refresh(struct rcluster *cl, long ms);
static void rc_update_state(struct rcluster *cl);
static void rnode_connect(struct rnode *n);

/* ---- the command slot --------------------------------------------------------- */

static int rc_word_is(const char *w, size_t len, const char *name)
{
    return len == strlen(name) && strncasecmp(w, name, len) == 0;
}

int rcluster_command_slot(int argc, const char **argv, const size_t *lens)
{
    if (argc < 2 || rc_word_is(argv[0], lens[0], "PING") ||
        rc_word_is(argv[0], lens[0], "PUBLISH") || rc_word_is(argv[0], lens[0], "CLUSTER"))
        return -1;
    if (rc_word_is(argv[0], lens[0], "EVAL") || rc_word_is(argv[0], lens[0], "EVALSHA")) {
        if (argc < 4 || lens[2] == 0 || argv[2][0] == '0')
            return -1; /* no keys: any node */
        return (int)cluster_key_slot(argv[3], lens[3]);
    }
    return (int)cluster_key_slot(argv[1], lens[1]);
}

/* ---- nodes -------------------------------------------------------------------- */

static struct rnode *rc_node_find(struct rcluster *cl, const char *host, int port)
{
    struct rnode *n;

    for (n = cl->nodes; n != NULL; n = n->next)
        if (n->port == port && strcmp(n->host, host) == 0)
            return n;
    return NULL;
}

static struct rnode *rc_node_get(struct rcluster *cl, const char *host, int port)
{
    struct rnode *n = rc_node_find(cl, host, port);

    if (n != NULL)
        return n;
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->cl = cl;
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    n->queued_tail = &n->queued;
    n->sent_tail = &n->sent;
    n->next = cl->nodes;
    cl->nodes = n;
    return n;
}

static void rnode_on_auth(redisAsyncContext *ac, void *reply_, void *pd)
{
    struct rnode *n = pd;
    const redisReply *reply = reply_;

    if (reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        log_msg(LOG_ERROR, "redis node %s:%d: AUTH failed: %s", n->host, n->port, reply->str);
        redisAsyncDisconnect(ac);
        return;
    }
    n->ready = 1;
    rc_update_state(n->cl);
}

static void rnode_on_connect(const redisAsyncContext *ac, int status)
{
    struct rnode *n = ac->data;

    if (status == REDIS_OK)
        return;
    log_msg(LOG_WARN, "redis node %s:%d: cannot connect: %s", n->host, n->port, ac->errstr);
    n->ac = NULL;
    n->ready = 0;
    rc_update_state(n->cl);
    rc_schedule_refresh(n->cl, RC_REFRESH_MIN_MS);
}

static void rnode_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rnode *n = ac->data;

    n->ac = NULL;
    n->ready = 0;
    if (n->cl->stopping)
        return;
    if (status != REDIS_OK)
        log_msg(LOG_WARN, "redis node %s:%d: connection lost: %s", n->host, n->port,
                ac->errstr[0] ? ac->errstr : "closed");
    rc_update_state(n->cl);
    rc_schedule_refresh(n->cl, RC_REFRESH_MIN_MS);
}

static void rnode_connect(struct rnode *n)
{
    struct rcluster *cl = n->cl;
    struct timeval tv = util_ms_tv(RC_COMMAND_TIMEOUT_MS);
    char err[256];
    redisAsyncContext *ac;

    if (n->ac != NULL)
        return;
    ac = redis_conn_open(cl->base, n->host, n->port, RC_CONNECT_TIMEOUT_MS, cl->ssl_ctx, cl->cfg,
                         err, sizeof(err));
    if (ac == NULL) {
        log_msg(LOG_WARN, "redis node %s:%d: cannot connect: %s", n->host, n->port, err);
        rc_schedule_refresh(cl, RC_REFRESH_MIN_MS);
        return;
    }
    ac->data = n;
    n->ac = ac;
    redisAsyncSetTimeout(ac, tv);
    redisAsyncSetConnectCallback(ac, rnode_on_connect);
    redisAsyncSetDisconnectCallback(ac, rnode_on_disconnect);
    /* commands queued behind this go out once it is answered */
    if (cl->cfg->redis_password != NULL)
        redisAsyncCommand(ac, rnode_on_auth, n, "AUTH %s", cl->cfg->redis_password);
    else
        redisAsyncCommand(ac, rnode_on_auth, n, "PING");
}

/* ---- sharded subscriptions ------------------------------------------------------ */

static struct rsub_op *rsub_op_new(int on, const char *ch, size_t len)
{
    struct rsub_op *op = malloc(sizeof(*op) + len);

    if (op == NULL)
        return NULL;
    op->next = NULL;
    op->on = on;
    op->len = len;
    memcpy(op->ch, ch, len);
    return op;
}

static void rsub_ops_free(struct rsub_op **head, struct rsub_op ***tail)
{
    struct rsub_op *op;

    while ((op = *head) != NULL) {
        *head = op->next;
        free(op);
    }
    *tail = head;
}

static void rnode_sub_send(struct rnode *n, struct rsub_op *op)
{
    const char *ch = op->ch;

    if (rsub_subscribe(n->sub, 1, op->on, 1, &ch, &op->len) == -1) {
        free(op);
        n->cl->broken = 1; /* the subscriber is going: everything again */
        rc_update_state(n->cl);
        return;
    }
    *n->sent_tail = op;
    n->sent_tail = &op->next;
}

static void rnode_sub_drop(struct rnode *n)
{
    rsub_free(n->sub);
    n->sub = NULL;
    n->sub_ready = 0;
    rsub_ops_free(&n->queued, &n->queued_tail);
    rsub_ops_free(&n->sent, &n->sent_tail);
}

static void rnode_on_sub_ready(void *arg)
{
    struct rnode *n = arg;
    struct rsub_op *op;

    n->sub_ready = 1;
    while ((op = n->queued) != NULL) {
        n->queued = op->next;
        if (n->queued == NULL)
            n->queued_tail = &n->queued;
        op->next = NULL;
        rnode_sub_send(n, op);
    }
}

static void rc_on_message(const char *ch, size_t chlen, const char *payload, size_t len,
                          int sharded, void *arg)
{
    struct rcluster *cl = arg;

    (void)sharded;
    cl->h.on_message(ch, chlen, payload, len, cl->h.arg);
}

static void rnode_on_sub_message(const char *ch, size_t chlen, const char *payload, size_t len,
                                 int sharded, void *arg)
{
    struct rnode *n = arg;

    rc_on_message(ch, chlen, payload, len, sharded, n->cl);
}

static struct rsub_op *rnode_sub_pop(struct rnode *n)
{
    struct rsub_op *op = n->sent;

    if (op != NULL && (n->sent = op->next) == NULL)
        n->sent_tail = &n->sent;
    return op;
}

static int rc_sub_queue(struct rcluster *cl, struct rnode *n, int on, const char *ch, size_t len);

static void rnode_on_sub_confirm(const char *ch, size_t chlen, int on, int sharded, void *arg)
{
    struct rnode *n = arg;
    struct rcluster *cl = n->cl;
    struct rsub_op *op = n->sent;

    if (!sharded)
        return;
    if (op != NULL && op->on == on && op->len == chlen && memcmp(op->ch, ch, chlen) == 0) {
        free(rnode_sub_pop(n));
        cl->h.on_subscribed(ch, chlen, on, cl->h.arg);
        return;
    }
    if (on)
        return;
    /* answers no command: the slot moved away (resharding). Subscribe
     * again: this node answers MOVED with the new owner */
    log_msg(LOG_INFO, "redis node %s:%d: '%.*s' moved away, subscribing where it went", n->host,
            n->port, (int)chlen, ch);
    if (cl->h.on_moved != NULL)
        cl->h.on_moved(ch, chlen, cl->h.arg);
    rc_schedule_refresh(cl, 0);
    if (rc_sub_queue(cl, n, 1, ch, chlen) == -1) {
        cl->broken = 1;
        rc_update_state(cl);
    }
}

static void rnode_on_sub_error(const char *msg, void *arg)
{
    struct rnode *n = arg;
    struct rcluster *cl = n->cl;
    struct rsub_op *op = rnode_sub_pop(n);
    struct cluster_redirect rd;
    struct rnode *to;

    if (op == NULL) {
        log_msg(LOG_WARN, "redis node %s:%d: subscriber: %s", n->host, n->port, msg);
        return;
    }
    if (cluster_redirect_parse(msg, strlen(msg), &rd) == 0 &&
        (to = rc_node_get(cl, rd.host[0] != '\0' ? rd.host : n->host, rd.port)) != NULL) {
        rc_schedule_refresh(cl, 0);
        if (rc_sub_queue(cl, to, op->on, op->ch, op->len) == 0) {
            free(op);
            return;
        }
    }
    log_msg(LOG_ERROR, "redis node %s:%d: %s of '%.*s' failed: %s", n->host, n->port,
            op->on ? "SSUBSCRIBE" : "SUNSUBSCRIBE", (int)op->len, op->ch, msg);
    free(op);
    cl->broken = 1;
    rc_update_state(cl);
}

static void rnode_on_sub_closed(const char *why, void *arg)
{
    struct rnode *n = arg;

    log_msg(LOG_WARN, "redis node %s:%d: subscriber lost: %s", n->host, n->port, why);
    rnode_sub_drop(n);
    n->cl->broken = 1;
    rc_update_state(n->cl);
    rc_schedule_refresh(n->cl, RC_REFRESH_MIN_MS);
}

/* Queue a sharded (un)subscription on node n, starting its subscriber. */
static int rc_sub_queue(struct rcluster *cl, struct rnode *n, int on, const char *ch, size_t len)
{
    struct rsub_handlers h = {rnode_on_sub_ready, rnode_on_sub_message, rnode_on_sub_confirm,
                              rnode_on_sub_error, rnode_on_sub_closed, n};
    struct rsub_op *op = rsub_op_new(on, ch, len);

    if (op == NULL)
        return -1;
    if (n->sub == NULL) {
        n->sub = rsub_new(cl->base, cl->ssl_ctx, n->host, n->port, cl->cfg->redis_tls_server_name,
                          cl->cfg->redis_password, &h);
        if (n->sub == NULL) {
            free(op);
            return -1;
        }
    }
    if (n->sub_ready) {
        rnode_sub_send(n, op);
    } else {
        *n->queued_tail = op;
        n->queued_tail = &op->next;
    }
    return 0;
}

int rcluster_subscribe(struct rcluster *cl, int on, size_t n, const char **channels,
                       const size_t *lens)
{
    size_t i;
    int owner;
    const struct cluster_node *node;
    struct rnode *rn;

    if (!cl->up)
        return -1;
    for (i = 0; i < n; i++) {
        owner = cluster_map_slot_owner(cl->map, cluster_key_slot(channels[i], lens[i]));
        node = owner >= 0 ? cluster_map_node(cl->map, owner) : NULL;
        rn = node != NULL ? rc_node_get(cl, node->host, node->port) : NULL;
        if (rn == NULL || rc_sub_queue(cl, rn, on, channels[i], lens[i]) == -1)
            return -1;
    }
    return 0;
}

/* A primary that serves slots (a failed one stays listed, with none), or
 * -1: where commands without a key and the classic channels go. */
static int rc_any_primary(const struct cluster_map *map)
{
    int p;

    for (p = cluster_map_next_primary(map, -1); p >= 0; p = cluster_map_next_primary(map, p))
        if (cluster_map_node(map, p)->slots > 0)
            return p;
    return -1;
}

/* ---- the classic subscriber ------------------------------------------------------ */

static void rc_on_classic_ready(void *arg)
{
    struct rcluster *cl = arg;
    const char *ch[3] = {cl->cfg->channel, cl->direct, cl->feed};
    size_t lens[3] = {cl->cfg->channel_len, cl->direct_len, cl->feed_len};

    if (rsub_subscribe(cl->classic, 0, 1, cl->feed_len > 0 ? 3 : 2, ch, lens) == -1) {
        cl->broken = 1;
        rc_update_state(cl);
    }
}

static void rc_on_classic_confirm(const char *ch, size_t chlen, int on, int sharded, void *arg)
{
    struct rcluster *cl = arg;

    (void)sharded;
    if (on && chlen == cl->cfg->channel_len && memcmp(ch, cl->cfg->channel, chlen) == 0) {
        log_msg(LOG_INFO, "redis: subscribed to channel '%s'", cl->cfg->channel);
        cl->classic_ready = 1;
        rc_update_state(cl);
    }
}

static void rc_on_classic_error(const char *msg, void *arg)
{
    struct rcluster *cl = arg;

    log_msg(LOG_ERROR, "redis: SUBSCRIBE failed: %s", msg);
    cl->broken = 1;
    rc_update_state(cl);
}

static void rc_on_classic_closed(const char *why, void *arg)
{
    struct rcluster *cl = arg;

    log_msg(LOG_WARN, "redis subscriber: connection lost: %s", why);
    rsub_free(cl->classic);
    cl->classic = NULL;
    cl->classic_ready = 0;
    rc_update_state(cl);
    rc_schedule_refresh(cl, RC_REFRESH_MIN_MS);
}

static void rc_classic_start(struct rcluster *cl)
{
    struct rsub_handlers h = {rc_on_classic_ready, rc_on_message, rc_on_classic_confirm,
                              rc_on_classic_error, rc_on_classic_closed, cl};
    int p = rc_any_primary(cl->map);
    const struct cluster_node *node = p >= 0 ? cluster_map_node(cl->map, p) : NULL;

    if (cl->classic != NULL || node == NULL)
        return;
    cl->classic = rsub_new(cl->base, cl->ssl_ctx, node->host, node->port,
                           cl->cfg->redis_tls_server_name, cl->cfg->redis_password, &h);
}

/* ---- state ------------------------------------------------------------------------ */

static int rc_whole(const struct rcluster *cl)
{
    const struct cluster_node *node;
    struct rnode *n;
    int p;

    if (cl->map == NULL || cluster_map_covered(cl->map) != CLUSTER_SLOTS || !cl->classic_ready ||
        cl->broken)
        return 0;
    for (p = cluster_map_next_primary(cl->map, -1); p >= 0;
         p = cluster_map_next_primary(cl->map, p)) {
        node = cluster_map_node(cl->map, p);
        if (node->slots == 0)
            continue;
        n = rc_node_find((struct rcluster *)cl, node->host, node->port);
        if (n == NULL || !n->ready)
            return 0;
    }
    return 1;
}

static void rc_update_state(struct rcluster *cl)
{
    int up = !cl->stopping && rc_whole(cl);
    struct rnode *n;

    if (up == cl->up)
        return;
    cl->up = up;
    if (!up) {
        /* the broker subscribes its rooms again once the link is back */
        for (n = cl->nodes; n != NULL; n = n->next)
            if (n->sub != NULL)
                rnode_sub_drop(n);
    }
    cl->h.on_state(up, cl->h.arg);
}

/* ---- the map ------------------------------------------------------------------------ */

static void rc_apply_map(struct rcluster *cl, struct cluster_map *map)
{
    const struct cluster_node *node;
    struct rnode *n;
    int p;

    cluster_map_free(cl->map);
    cl->map = map;
    for (n = cl->nodes; n != NULL; n = n->next)
        n->primary = 0;
    for (p = cluster_map_next_primary(map, -1); p >= 0; p = cluster_map_next_primary(map, p)) {
        node = cluster_map_node(map, p);
        if (node->slots == 0 || (n = rc_node_get(cl, node->host, node->port)) == NULL)
            continue;
        n->primary = 1;
        rnode_connect(n);
    }
    rc_classic_start(cl);
    if (cluster_map_covered(map) != CLUSTER_SLOTS) {
        log_msg(LOG_WARN, "redis cluster: %u of %d slots served: asking again",
                cluster_map_covered(map), CLUSTER_SLOTS);
        rc_schedule_refresh(cl, 500);
    }
    cl->broken = 0;
    rc_update_state(cl);
}

static void rc_on_shards(redisAsyncContext *ac, void *reply, void *pd)
{
    struct rcluster *cl = pd;
    struct rnode *n = ac->data;
    struct cluster_map *map;
    char err[CLUSTER_MAP_ERR_LEN];

    cl->refreshing = 0;
    if (cl->stopping)
        return;
    if (reply == NULL || ((const redisReply *)reply)->type == REDIS_REPLY_ERROR ||
        (map = cluster_map_from_shards(reply, cl->ssl_ctx != NULL, err, sizeof(err))) == NULL) {
        log_msg(LOG_WARN, "redis node %s:%d: CLUSTER SHARDS: %s", n->host, n->port,
                reply == NULL                                       ? "no answer"
                : ((const redisReply *)reply)->type == REDIS_REPLY_ERROR ? ((const redisReply *)reply)->str
                                                                    : err);
        cl->refresh_failures++;
        rc_schedule_refresh(cl, RC_REFRESH_MIN_MS << (cl->refresh_failures < 5 ? cl->refresh_failures : 5));
        return;
    }
    cl->refresh_failures = 0;
    rc_apply_map(cl, map);
}

/* Who to ask for the map: a ready primary of the map we have, else the
 * seeds in turn. */
static struct rnode *rc_map_source(struct rcluster *cl)
{
    struct rnode *n;

    for (n = cl->nodes; n != NULL; n = n->next)
        if (n->primary && n->ready)
            return n;
    n = cl->seeds[cl->seed_next++ % cl->nseeds];
    rnode_connect(n);
    return n->ac != NULL ? n : NULL;
}

static void rc_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rcluster *cl = arg;
    struct rnode *n;
    struct rnode *p;

    (void)fd;
    (void)what;
    if (cl->refreshing || cl->stopping)
        return;
    /* primaries whose connection went: again (their AUTH goes first) */
    for (p = cl->nodes; p != NULL; p = p->next)
        if (p->primary && p->ac == NULL)
            rnode_connect(p);
    n = rc_map_source(cl);
    if (n == NULL || redisAsyncCommand(n->ac, rc_on_shards, cl, "CLUSTER SHARDS") != REDIS_OK) {
        rc_schedule_refresh(cl, RC_REFRESH_MAX_MS);
        return;
    }
    cl->refreshing = 1;
}

static void rc_schedule_refresh(struct rcluster *cl, long ms)
{
    struct timeval tv = util_ms_tv(ms < RC_REFRESH_MAX_MS ? ms : RC_REFRESH_MAX_MS);

    if (cl->stopping || cl->refreshing || evtimer_pending(cl->refresh_ev, NULL))
        return;
    evtimer_add(cl->refresh_ev, &tv);
}

/* ---- commands ------------------------------------------------------------------------ */

static void rcreq_free(struct rcreq *q)
{
    redisFreeCommand(q->cmd);
    free(q);
}

static void rc_on_reply(redisAsyncContext *ac, void *reply_, void *pd);

static int rc_send_to(struct rnode *n, struct rcreq *q, int asking)
{
    if (n->ac == NULL)
        rnode_connect(n);
    if (n->ac == NULL)
        return -1;
    if (asking && redisAsyncCommand(n->ac, NULL, NULL, "ASKING") != REDIS_OK)
        return -1;
    return redisAsyncFormattedCommand(n->ac, rc_on_reply, q, q->cmd, (size_t)q->len) == REDIS_OK
               ? 0
               : -1;
}

static void rc_on_reply(redisAsyncContext *ac, void *reply_, void *pd)
{
    struct rcreq *q = pd;
    struct rcluster *cl = q->cl;
    struct rnode *n = ac->data, *to;
    const redisReply *reply = reply_;
    struct cluster_redirect rd;

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && !cl->stopping &&
        cluster_redirect_parse(reply->str, reply->len, &rd) == 0) {
        if (rd.kind == CLUSTER_REDIRECT_MOVED)
            rc_schedule_refresh(cl, 0);
        to = q->redirects < RC_REDIRECTS_MAX
                 ? rc_node_get(cl, rd.host[0] != '\0' ? rd.host : n->host, rd.port)
                 : NULL;
        q->redirects++;
        if (to != NULL && rc_send_to(to, q, rd.kind == CLUSTER_REDIRECT_ASK) == 0)
            return;
        log_msg(LOG_ERROR, "redis node %s:%d: cannot follow %s", n->host, n->port, reply->str);
        reply = NULL;
    }
    q->done(reply, q->pd);
    rcreq_free(q);
}

int rcluster_send(struct rcluster *cl, int argc, const char **argv, const size_t *lens,
                  rcluster_done_fn done, void *pd)
{
    const struct cluster_node *node;
    struct rcreq *q;
    struct rnode *n;
    int owner;

    if (!cl->up)
        return -1;
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return -1;
    q->cl = cl;
    q->done = done;
    q->pd = pd;
    q->slot = rcluster_command_slot(argc, argv, lens);
    q->len = redisFormatCommandArgv(&q->cmd, argc, argv, lens);
    owner = q->slot >= 0 ? cluster_map_slot_owner(cl->map, (unsigned)q->slot)
                         : rc_any_primary(cl->map);
    node = owner >= 0 ? cluster_map_node(cl->map, owner) : NULL;
    n = node != NULL ? rc_node_find(cl, node->host, node->port) : NULL;
    if (q->len < 0 || n == NULL || !n->ready || rc_send_to(n, q, 0) == -1) {
        if (q->len >= 0)
            redisFreeCommand(q->cmd);
        free(q);
        return -1;
    }
    return 0;
}

/* ---- liveness ------------------------------------------------------------------------- */

/* A node that hangs without closing (stopped, partitioned) is found out:
 * a command connection by its PING's timeout (RC_COMMAND_TIMEOUT_MS drops
 * it), a subscriber by silence past RC_SILENT_MS despite PINGs. */
static void rc_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rcluster *cl = arg;
    uint64_t now = util_now_ms();
    struct rnode *n;

    (void)fd;
    (void)what;
    for (n = cl->nodes; n != NULL; n = n->next) {
        if (n->ready && n->ac != NULL)
            redisAsyncCommand(n->ac, NULL, NULL, "PING");
        if (n->sub != NULL && n->sub_ready) {
            if (now - rsub_last_heard_ms(n->sub) > RC_SILENT_MS)
                rnode_on_sub_closed("no answer to PING", n);
            else
                rsub_ping(n->sub);
        }
    }
    if (cl->classic != NULL && cl->classic_ready) {
        if (now - rsub_last_heard_ms(cl->classic) > RC_SILENT_MS)
            rc_on_classic_closed("no answer to PING", cl);
        else
            rsub_ping(cl->classic);
    }
}

/* ---- life ----------------------------------------------------------------------------- */

struct rcluster *rcluster_new(struct event_base *base, const struct cfg *cfg, SSL_CTX *ssl_ctx,
                              const struct rlink_handlers *h)
{
    struct rcluster *cl = calloc(1, sizeof(*cl));
    char host[CLUSTER_HOST_MAX + 1];
    int port, i;

    if (cl == NULL)
        return NULL;
    cl->base = base;
    cl->cfg = cfg;
    cl->ssl_ctx = ssl_ctx;
    cl->h = *h;
    cl->direct_len = (size_t)room_key_direct(cl->direct, sizeof(cl->direct), cfg);
    if (cfg->history_size > 0)
        cl->feed_len =
            (size_t)room_key(cl->feed, sizeof(cl->feed), cfg, "", 0, ROOM_KEY_FEED, NULL);
    cl->refresh_ev = evtimer_new(base, rc_refresh_cb, cl);
    cl->tick_ev = event_new(base, -1, EV_PERSIST, rc_tick_cb, cl);
    cl->seeds[cl->nseeds] = rc_node_get(cl, cfg->redis_host, cfg->redis_port);
    if (cl->seeds[cl->nseeds] != NULL)
        cl->nseeds++;
    for (i = 0; cfg_addr_at(cfg->redis_cluster_nodes, (size_t)i, host, sizeof(host), &port) == 0;
         i++)
        if ((cl->seeds[cl->nseeds] = rc_node_get(cl, host, port)) != NULL)
            cl->nseeds++;
    if (cl->refresh_ev == NULL || cl->tick_ev == NULL || cl->nseeds == 0) {
        rcluster_free(cl);
        return NULL;
    }
    {
        struct timeval tv = util_ms_tv(RC_TICK_MS);
        event_add(cl->tick_ev, &tv);
    }
    rc_schedule_refresh(cl, 0);
    return cl;
}

void rcluster_free(struct rcluster *cl)
{
    struct rnode *n;

    if (cl == NULL)
        return;
    cl->stopping = 1;
    cl->up = 0;
    rsub_free(cl->classic);
    while ((n = cl->nodes) != NULL) {
        cl->nodes = n->next;
        if (n->sub != NULL)
            rnode_sub_drop(n);
        if (n->ac != NULL)
            redisAsyncFree(n->ac); /* pending commands: done(NULL) */
        free(n);
    }
    if (cl->refresh_ev != NULL)
        event_free(cl->refresh_ev);
    if (cl->tick_ev != NULL)
        event_free(cl->tick_ev);
    cluster_map_free(cl->map);
    free(cl);
}

int rcluster_is_up(const struct rcluster *cl)
{
    return cl->up;
}
