/* redis_link.h -- the broker's two Redis connections (hiredis async on
 * libevent, optionally TLS): one SUBSCRIBEd to the seed channel and the
 * direct messages' channel (always) and to the rooms the broker asks for,
 * one for commands (PUBLISH, SADD, SREM, EVAL). Reconnects with backoff,
 * re-authenticates, re-selects the database and re-subscribes the two
 * fixed channels by itself; the rooms are the broker's to resubscribe. */
#ifndef RC_REDIS_LINK_H
#define RC_REDIS_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct event_base;
struct rlink;

struct rlink_handlers {
    /* a message published on a subscribed channel (payload exactly as in Redis) */
    void (*on_message)(const char *channel, size_t chlen, const char *payload, size_t len,
                       void *arg);
    /* Redis confirmed a rlink_subscribe of one room channel (on = 1) or its
     * unsubscribe (on = 0) */
    void (*on_subscribed)(const char *channel, size_t chlen, int on, void *arg);
    /* both connections ready (up = 1) or one of them lost (up = 0) */
    void (*on_state)(int up, void *arg);
    /* redis-cluster: a room channel's slot moved to another node
     * (resharding) and took the subscription with it; it is asked for
     * again there, and its confirmation follows through on_subscribed.
     * May be NULL. */
    void (*on_moved)(const char *channel, size_t chlen, void *arg);
    void *arg;
};

/* Result of a command: the integer reply (SADD/SREM/PUBLISH/EVAL), 0 for
 * any other successful reply (+OK, +PONG), -1 when the command failed (link
 * down, error reply, connection lost meanwhile). */
typedef void (*rlink_reply_fn)(long long result, void *privdata);

/* Create and start connecting. NULL with err filled when TLS setup fails
 * (bad CA file, cert without key, ...). */
struct rlink *rlink_new(struct event_base *base, const struct cfg *cfg,
                        const struct rlink_handlers *h, char *err, size_t errlen);
/* Disconnect (pending replies get -1) and free. */
void rlink_free(struct rlink *r);

int rlink_is_up(const struct rlink *r);

/* Queue a command on the command connection. Return 0 when sent (fn will be
 * called exactly once), -1 when the link is down (fn is not called). */
int rlink_publish(struct rlink *r, const char *channel, size_t chlen, const char *payload,
                  size_t len, rlink_reply_fn fn, void *pd);

/* SUBSCRIBE (on = 1) or UNSUBSCRIBE (on = 0) n channels in one command on
 * the subscriber; on_subscribed follows per channel. 0, or -1 when the
 * subscriber is not connected (a reconnect forgets every room channel). */
int rlink_subscribe(struct rlink *r, int on, size_t n, const char **channels, const size_t *lens);

/* Any command, as argc (pointer, length) arguments. fn gets the integer
 * reply as above (or -1); for other reply types use rlink_command_raw. */
int rlink_command(struct rlink *r, rlink_reply_fn fn, void *pd, int argc, const char **argv,
                  const size_t *lens);

/* The same with the reply itself: a const redisReply * (NULL when the
 * command failed), passed as void * to keep hiredis out of this header. */
typedef void (*rlink_raw_fn)(const void *reply, void *privdata);
int rlink_command_raw(struct rlink *r, rlink_raw_fn fn, void *pd, int argc, const char **argv,
                      const size_t *lens);

/* EVAL script over nkeys keys (C strings) and nargs arguments (pointer,
 * length); the reply goes to fn (integer) or, when raw is set, to raw. -1
 * when the link is down or there are more than RLINK_EVAL_ARGS_MAX keys and
 * arguments. */
#define RLINK_EVAL_ARGS_MAX 16
int rlink_eval(struct rlink *r, const char *script, int nkeys, const char *const *keys, int nargs,
               const char *const *args, const size_t *arglens, rlink_reply_fn fn, rlink_raw_fn raw,
               void *pd);

/* The heartbeat's rule, for a PING sent at sent_ms and not answered by
 * now_ms: wait up to its timeout; past it, Redis that answered other
 * commands meanwhile is busy, not gone (the PING sits behind them), and
 * only one silent for the whole wait is dead. */
enum rlink_ping_verdict { RLINK_PING_WAIT, RLINK_PING_BUSY, RLINK_PING_DEAD };
enum rlink_ping_verdict rlink_ping_overdue(uint64_t sent_ms, uint64_t now_ms, int replied_since);

#endif
