/* cluster_map.h -- the slot map of a Redis Cluster, and its redirections.
 *
 * A map is read from a CLUSTER SHARDS reply (Redis >= 7, Valkey 8), or from
 * CLUSTER SLOTS (any Redis Cluster) as a fallback, as hiredis parsed it
 * (RESP2 arrays of key/value pairs, or RESP3 maps). It holds the nodes
 * (address, id, role, health; each replica points at its primary) and a
 * table of the 16384 slots, each naming the primary that serves it. The
 * replies come from the network: every field is checked (types, lengths,
 * ranges, one owner per slot) and a reply that does not fit is refused with
 * a reason, never half taken. A map never changes after it was built; a
 * newer view is a new map.
 *
 * The other half is the error reply a node gives for a key it does not
 * serve: "MOVED <slot> <endpoint>:<port>" (the slot lives there now: update
 * the map) or "ASK <slot> <endpoint>:<port>" (during a migration: send this
 * one command there, after ASKING).
 *
 * hiredis stays out of this header: the parsers take a const redisReply *
 * passed as const void * (as rlink_command_raw hands one out; hiredict's
 * shim names the struct differently from hiredis, so no forward declaration
 * fits both).
 */
#ifndef RC_CLUSTER_MAP_H
#define RC_CLUSTER_MAP_H

#include <stddef.h>

#include "cluster_slot.h"

#define CLUSTER_HOST_MAX 255       /* a host name's bytes (DNS limit) */
#define CLUSTER_NODE_ID_MAX 40     /* a node id: 40 hex digits */
#define CLUSTER_MAP_NODES_MAX 1000 /* Redis recommends at most 1000 nodes */
#define CLUSTER_MAP_ERR_LEN 128

enum cluster_health {
    CLUSTER_HEALTH_UNKNOWN = 0, /* not reported (CLUSTER SLOTS) or a new word */
    CLUSTER_HEALTH_ONLINE,
    CLUSTER_HEALTH_FAILED,
    CLUSTER_HEALTH_LOADING, /* Redis says so of a replica not synced yet */
};

struct cluster_node {
    /* where to connect: the reply's "ip" when there is one, else its
     * "endpoint", else its "hostname". "" (CLUSTER SLOTS only) means the
     * node the reply came from, as Redis documents an unknown endpoint */
    char host[CLUSTER_HOST_MAX + 1];
    int port;                         /* TLS port or plain, as asked */
    char id[CLUSTER_NODE_ID_MAX + 1]; /* "" when the reply had none */
    int primary;                      /* the primary's index; -1: a primary */
    enum cluster_health health;
    unsigned slots; /* slots it serves (primaries) */
};

struct cluster_map;

/* A map from a CLUSTER SHARDS reply. tls picks the port: a node's
 * "tls-port" with tls, its "port" without (a TLS-only node reports no
 * "port"; a node without the one asked for is refused: it could not be
 * reached that way). A shard's primary is its node with role
 * master/primary; with several (a failed one not yet demoted next to its
 * successor), the one not failed. Returns the map (free it with
 * cluster_map_free), or NULL with the reason in err. */
struct cluster_map *cluster_map_from_shards(const void *reply, int tls, char *err, size_t errlen);

/* A map from a CLUSTER SLOTS reply: entries [start, end, primary, replica...],
 * each node [host, port, id?, metadata?]; the port is the one of the
 * connection the command came on (TLS or not). A node that serves several
 * ranges appears once in the map. NULL with the reason in err. */
struct cluster_map *cluster_map_from_slots(const void *reply, char *err, size_t errlen);

void cluster_map_free(struct cluster_map *m);

/* Number of nodes; node i (0 <= i < count), or NULL out of range. */
int cluster_map_count(const struct cluster_map *m);
const struct cluster_node *cluster_map_node(const struct cluster_map *m, int i);

/* The index of the primary serving slot, or -1 (no one, or slot out of range). */
int cluster_map_slot_owner(const struct cluster_map *m, unsigned slot);

/* How many of the 16384 slots have an owner. */
unsigned cluster_map_covered(const struct cluster_map *m);

/* Iteration: the first primary after index `after` (-1 to start), or -1.
 *   for (i = cluster_map_next_primary(m, -1); i >= 0; i = cluster_map_next_primary(m, i))
 * and the replicas of primary p after index `after` the same way. */
int cluster_map_next_primary(const struct cluster_map *m, int after);
int cluster_map_next_replica(const struct cluster_map *m, int primary, int after);

/* The node at host:port (exact host text), or -1. */
int cluster_map_find(const struct cluster_map *m, const char *host, int port);

/* ---- redirections --------------------------------------------------------- */

enum cluster_redirect_kind {
    CLUSTER_REDIRECT_NONE = 0,
    CLUSTER_REDIRECT_MOVED, /* the slot is served there from now on */
    CLUSTER_REDIRECT_ASK,   /* this command only, preceded by ASKING */
};

struct cluster_redirect {
    enum cluster_redirect_kind kind;
    unsigned slot;
    /* "" when the reply named no endpoint ("MOVED 3999 :6380"): the host of
     * the node that answered. An IPv6 address comes without brackets. */
    char host[CLUSTER_HOST_MAX + 1];
    int port;
};

/* Read an error reply's text s[0..len) ("MOVED 3999 127.0.0.1:6381",
 * "ASK 3999 [::1]:6379", "MOVED 3999 ::1:6379", "MOVED 3999 :6380"). Returns
 * 0 with *out filled, or -1 (*out->kind is CLUSTER_REDIRECT_NONE) when s is
 * not exactly such a redirection: other errors, bad slot or port, stray
 * bytes. */
int cluster_redirect_parse(const char *s, size_t len, struct cluster_redirect *out);

#endif
