/* harness_cluster.h -- a throwaway Redis Cluster for the integration tests.
 *
 * h_cluster_start runs tests/redis-cluster.sh: PRIMARIES * (1 + REPLICAS)
 * daemonized redis-server nodes on consecutive loopback ports (each one's
 * cluster bus on its port + 10000), TLS only when asked (clients, bus and
 * replication; one CA and certificate in dir/tls/), requirepass and
 * masterauth, cluster-node-timeout 2000 (a dead primary's replica takes over
 * within about 3 s), cluster-require-full-coverage no (the shards that still
 * have a primary keep answering). It returns once every node says the
 * cluster is ok, all agree on the slots and every replica is linked.
 *
 * Like harness.h: everything is bounded in time, prints a one-line reason to
 * stderr when it fails, and addresses nodes by pid, never by name. The nodes
 * are daemons (children of init), so any process may signal them, a forked
 * check test body as well as the runner; their pids are read from
 * dir/node-PORT/redis.pid each time and trusted only when that process runs
 * in that directory. Should the starting process die without h_cluster_stop,
 * a watcher process it forked (PR_SET_PDEATHSIG) stops the nodes and
 * removes the dir.
 *
 * Environment: SRCDIR (to find tests/redis-cluster.sh), REDIS_SERVER and
 * REDIS_CLI (valkey-server / valkey-cli 8 work too), TMPDIR, as harness.h.
 */
#ifndef RC_TESTS_HARNESS_CLUSTER_H
#define RC_TESTS_HARNESS_CLUSTER_H

#include <stddef.h>
#include <sys/types.h>

#define H_CLUSTER_NODES_MAX 32
#define H_CLUSTER_SLOTS 16384
#define H_CLUSTER_START_MS 60000   /* the script: nodes, create, 20 s to settle */
#define H_CLUSTER_RESHARD_MS 60000 /* one redis-cli --cluster reshard run */
#define H_CLUSTER_OK_MS 20000      /* h_cluster_reshard/_restart_node settle */

struct h_cluster {
    int first_port;    /* node i listens on first_port + i (its TLS port with tls) */
    int nodes;         /* primaries * (1 + replicas) */
    int primaries;     /* as created; failovers change which nodes they are */
    int replicas;      /* per primary, as created */
    int tls;           /* 1: TLS only; 0: plain TCP */
    char dir[256];     /* temp dir: tls/, cluster.env, create.log, node-PORT/ */
    char password[64]; /* requirepass and masterauth; "" = none */
    char ca[320];      /* dir/tls/ca.crt when tls, else "" */
    pid_t watcher;     /* stops the nodes if the owner dies; 0 when none */
    pid_t owner;       /* the process that started it */
};

/* Start a cluster of primaries * (1 + replicas) nodes (primaries >= 3,
 * at most H_CLUSTER_NODES_MAX nodes) in a new temp dir, on ports found free
 * (and bus ports: port + 10000), TLS when tls != 0, password may be NULL or
 * "". Returns 0 when the cluster is ready, or -1 (nodes stopped, dir
 * removed, the script's reason on stderr). */
int h_cluster_start(struct h_cluster *c, int primaries, int replicas, int tls,
                    const char *password);

/* Stop every node (SIGTERM, SIGKILL after 5 s; by pid file) and the
 * watcher. Safe to call twice. */
void h_cluster_stop(struct h_cluster *c);

/* h_cluster_stop, then remove the dir. */
void h_cluster_free(struct h_cluster *c);

/* The pid of the node on port (from its pid file, alive, running in its
 * dir), or 0. */
pid_t h_cluster_node_pid(const struct h_cluster *c, int port);

/* Send sig to the node on port. For SIGKILL, SIGTERM and SIGINT, wait (5 s)
 * until it is gone. Returns 0, or -1 (no such node running, or it stayed). */
int h_cluster_kill_node(const struct h_cluster *c, int port, int sig);

/* Start the node on port again from its own config (it keeps its
 * nodes.conf: it rejoins, as a replica if its slots moved meanwhile) and
 * wait until every running node agrees again (h_cluster_wait_ok with
 * H_CLUSTER_OK_MS). Returns 0 or -1. */
int h_cluster_restart_node(const struct h_cluster *c, int port);

/* Run `redis-cli -c -h 127.0.0.1 -p PORT [--tls --cacert CA] [-a PW
 * --no-auth-warning] WORDS...` (-c: follows MOVED/ASK), WORDS being the
 * formatted command split on spaces (at most 60). stdout and stderr go into
 * out (NUL-terminated, truncated to cap - 1; may be NULL). Returns the exit
 * status (h_run); an error reply is exit 0 too: check out. */
int h_cluster_cli(const struct h_cluster *c, int port, char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The same without -c: a MOVED comes back as the answer. */
int h_cluster_cli_node(const struct h_cluster *c, int port, char *out, size_t cap, const char *fmt,
                       ...) __attribute__((format(printf, 5, 6)));

/* CLUSTER MYID of the node on port into out (40 hex digits + NUL: cap >=
 * 41). Returns 0 or -1. */
int h_cluster_node_id(const struct h_cluster *c, int port, char *out, size_t cap);

/* As the first running node that answers CLUSTER NODES sees it: the ports
 * of the primaries that own at least one slot and are not marked failed,
 * in ascending order (up to max into ports). Returns how many, or -1. */
int h_cluster_primaries(const struct h_cluster *c, int *ports, int max);

/* Its replicas (any state but failed), as above. Returns how many, or -1. */
int h_cluster_replicas_of(const struct h_cluster *c, int primary_port, int *ports, int max);

/* The port of the primary that owns slot (0..16383), as above; -1 when
 * none does or no node answers. */
int h_cluster_slot_owner(const struct h_cluster *c, int slot);

/* owners[0..16384): every slot's primary port (-1: none) as the node on
 * port sees it (CLUSTER NODES). Returns 0 or -1. */
int h_cluster_slot_table(const struct h_cluster *c, int port, int *owners);

/* Wait up to timeout_ms until every running node says cluster_state:ok and
 * all of them see the same owner for every slot, each slot owned. Returns 0
 * or -1 (with the last disagreement on stderr). */
int h_cluster_wait_ok(const struct h_cluster *c, int timeout_ms);

/* After old_port's node was killed: wait up to timeout_ms until another
 * node owns its slots in every running node's view and the cluster is ok
 * (h_cluster_wait_ok). Returns the new primary's port, or -1. */
int h_cluster_failover_wait(const struct h_cluster *c, int old_port, int timeout_ms);

/* Move `slots` slots from the primary on from_port to the one on to_port
 * (`redis-cli --cluster reshard ... --cluster-yes`, keys included), then
 * wait until every node agrees (H_CLUSTER_OK_MS). Returns 0 or -1. */
int h_cluster_reshard(const struct h_cluster *c, int slots, int from_port, int to_port);

#endif
