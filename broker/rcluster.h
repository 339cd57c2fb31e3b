/* rcluster.h -- the broker's link to a Redis Cluster (redis-cluster yes).
 *
 * The same service as the single-server link (redis_link.h, which hands
 * everything over to this file in cluster mode): commands with their
 * replies, subscriptions, one up/down state. Underneath: the slot map
 * (cluster_map.c, from CLUSTER SHARDS), one command connection per primary,
 * each command sent to the primary that serves its key and sent again where
 * MOVED or ASK say; the classic channels (the seed's, the direct messages',
 * the default room's feed) on one subscriber, and each room's channel
 * SSUBSCRIBEd on the shard that serves it (rsub.c).
 *
 * "Up" means: the map covers every slot, every primary's command
 * connection is ready and the classic subscriber is. When any of them is
 * lost the link is down (the broker holds sends, as for any Redis outage),
 * every room subscription is forgotten (the broker subscribes them again
 * once the link is up, and fills the gap from the streams), and the map is
 * read again until the cluster is whole.
 */
#ifndef RC_RCLUSTER_H
#define RC_RCLUSTER_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"
#include "redis_link.h"

struct event_base;
struct rcluster;

/* A command's end: the reply (a const redisReply *, NULL when the command
 * failed: connection lost, too many redirections) after redirections. */
typedef void (*rcluster_done_fn)(const void *reply, void *pd);

struct rcluster *rcluster_new(struct event_base *base, const struct cfg *cfg, SSL_CTX *ssl_ctx,
                              const struct rlink_handlers *h);
void rcluster_free(struct rcluster *cl);

int rcluster_is_up(const struct rcluster *cl);

/* Send a command to the primary serving its key (rcluster_command_slot).
 * 0 when sent (done is called exactly once), -1 when the link is down. */
int rcluster_send(struct rcluster *cl, int argc, const char **argv, const size_t *lens,
                  rcluster_done_fn done, void *pd);

/* SSUBSCRIBE (on = 1) or SUNSUBSCRIBE room channels, each on its shard;
 * on_subscribed follows per channel. -1 when the link is down. */
int rcluster_subscribe(struct rcluster *cl, int on, size_t n, const char **channels,
                       const size_t *lens);

/* The hash slot a command is routed by: EVAL/EVALSHA's first key, else the
 * first argument; -1 for commands that any node serves (PING, PUBLISH, an
 * EVAL without keys). */
int rcluster_command_slot(int argc, const char **argv, const size_t *lens);

#endif
