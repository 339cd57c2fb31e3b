/* check_cluster_map.c -- the slot map against a real Redis Cluster.
 *
 * One cluster for the whole case (tests/harness_cluster.h): three primaries
 * with a replica each, TLS everywhere and a password. The test bodies talk
 * to it over plain synchronous hiredis connections (TLS, AUTH) and check,
 * in order, since the later tests change the cluster:
 *   - CLUSTER SHARDS (RESP2 and RESP3) and CLUSTER SLOTS give maps that cover
 *     all 16384 slots, agree with each other and with what redis-cli's
 *     CLUSTER NODES says, with the nodes and ports the harness started;
 *   - cluster_key_slot() equals CLUSTER KEYSLOT for 1000 random keys;
 *   - the map's owner of a key's slot answers GET without MOVED, every other
 *     primary answers MOVED, and cluster_redirect_parse reads it to the owner;
 *   - after `redis-cli --cluster reshard` moves 100 slots (with keys), a new
 *     map says so, exactly, and the keys are where it says;
 *   - after a primary is killed, its replica owns its slots in a new map,
 *     and the old primary, started again, comes back as that one's replica.
 * REDIS_SERVER=valkey-server REDIS_CLI=valkey-cli runs it against Valkey.
 */
#include <check.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "cluster_map.h"
#include "cluster_slot.h"
#include "harness.h"
#include "harness_cluster.h"
#include "hiredis_compat.h"

#define T_PASSWORD "s3cret-cluster"
#define T_KEYS 1000
#define T_KEY_MAX 40
#define T_RESHARD_SLOTS 100
#define T_FAILOVER_MS 15000 /* node timeout 2 s, election, agreement */
#define T_REJOIN_MS 15000

static struct h_cluster cl;
static SSL_CTX *t_ssl; /* one per test process, kept to its end */

static void t_cluster_up(void)
{
    long long t0 = h_now_ms();

    ck_assert_msg(h_cluster_start(&cl, 3, 1, 1, T_PASSWORD) == 0, "cluster did not start");
    fprintf(stderr, "check_cluster_map: 6-node TLS cluster ready in %lld ms\n", h_now_ms() - t0);
}

static void t_cluster_down(void)
{
    h_cluster_free(&cl);
}

/* ---- hiredis ------------------------------------------------------------------ */

/* A synchronous TLS connection to the node on port, authenticated; RESP3
 * when resp3 is set. */
static redisContext *t_connect(int port, int resp3)
{
    struct timeval tv = {5, 0};
    redisOptions o = {0};
    redisContext *c;
    redisReply *r;
    SSL *ssl;

    /* OpenSSL directly, as the broker does (broker/redis_link.c): the chain
     * against the cluster's CA, and the name in its certificate */
    if (t_ssl == NULL) {
        t_ssl = SSL_CTX_new(TLS_client_method());
        ck_assert_ptr_nonnull(t_ssl);
        SSL_CTX_set_verify(t_ssl, SSL_VERIFY_PEER, NULL);
        ck_assert_int_eq(SSL_CTX_load_verify_locations(t_ssl, cl.ca, NULL), 1);
    }
    REDIS_OPTIONS_SET_TCP(&o, "127.0.0.1", port);
    o.connect_timeout = &tv;
    o.command_timeout = &tv;
    c = redisConnectWithOptions(&o);
    ck_assert_msg(c != NULL && c->err == 0, "connect %d: %s", port, c ? c->errstr : "oom");
    ssl = SSL_new(t_ssl);
    ck_assert_ptr_nonnull(ssl);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    ck_assert_msg(redisInitiateSSL(c, ssl) == REDIS_OK, "TLS %d: %s", port, c->errstr);
    if (resp3)
        r = redisCommand(c, "HELLO 3 AUTH default %s", T_PASSWORD);
    else
        r = redisCommand(c, "AUTH %s", T_PASSWORD);
    ck_assert_msg(r != NULL && r->type != REDIS_REPLY_ERROR, "AUTH on %d: %s", port,
                  r != NULL ? r->str : c->errstr);
    freeReplyObject(r);
    return c;
}

/* A map from CLUSTER SHARDS (slots = 0) or CLUSTER SLOTS of the node on port. */
static struct cluster_map *t_map(int port, int resp3, int slots)
{
    redisContext *c = t_connect(port, resp3);
    redisReply *r = redisCommand(c, slots ? "CLUSTER SLOTS" : "CLUSTER SHARDS");
    char err[CLUSTER_MAP_ERR_LEN] = "";
    struct cluster_map *m;

    ck_assert_msg(r != NULL, "CLUSTER on %d: %s", port, c->errstr);
    m = slots ? cluster_map_from_slots(r, err, sizeof(err))
              : cluster_map_from_shards(r, 1, err, sizeof(err));
    ck_assert_msg(m != NULL, "node %d: %s refused: %s", port, slots ? "SLOTS" : "SHARDS", err);
    freeReplyObject(r);
    redisFree(c);
    return m;
}

static const struct cluster_node *t_owner(const struct cluster_map *m, unsigned slot)
{
    const struct cluster_node *n = cluster_map_node(m, cluster_map_slot_owner(m, slot));

    ck_assert_msg(n != NULL, "slot %u: no owner", slot);
    return n;
}

static const struct cluster_node *t_node_by_id(const struct cluster_map *m, const char *id)
{
    int i;

    for (i = 0; i < cluster_map_count(m); i++)
        if (strcmp(cluster_map_node(m, i)->id, id) == 0)
            return cluster_map_node(m, i);
    ck_abort_msg("node %s not in the map", id);
    return NULL;
}

/* The primaries that serve slots (a failed one may stay listed without),
 * at most max, into out; how many. */
static int t_serving(const struct cluster_map *m, int *out, int max)
{
    int p, n = 0;

    for (p = cluster_map_next_primary(m, -1); p >= 0; p = cluster_map_next_primary(m, p))
        if (cluster_map_node(m, p)->slots > 0 && n < max)
            out[n++] = p;
    return n;
}

/* A random key: random bytes with braces mixed in, 0..T_KEY_MAX long. */
static size_t t_random_key(char *key)
{
    size_t len = (size_t)(random() % (T_KEY_MAX + 1)), i;

    for (i = 0; i < len; i++)
        key[i] = (char)(random() % 5 == 0 ? "{}"[random() % 2] : random() & 0xff);
    return len;
}

/* ---- the map ------------------------------------------------------------------ */

START_TEST(test_map_covers)
{
    struct cluster_map *m = t_map(cl.first_port, 0, 0), *m3, *ms, *mr;
    int *owners = malloc(H_CLUSTER_SLOTS * sizeof(int)), ports[8], np, p, i, k;
    unsigned s;

    ck_assert_ptr_nonnull(owners);
    ck_assert_uint_eq(cluster_map_covered(m), CLUSTER_SLOTS);
    ck_assert_int_eq(cluster_map_count(m), 6);
    np = h_cluster_primaries(&cl, ports, 8);
    ck_assert_int_eq(np, 3);
    for (k = 0, p = cluster_map_next_primary(m, -1); p >= 0; p = cluster_map_next_primary(m, p)) {
        const struct cluster_node *n = cluster_map_node(m, p);
        char id[41];
        int reps[4], nr = h_cluster_replicas_of(&cl, n->port, reps, 4);

        ck_assert_str_eq(n->host, "127.0.0.1");
        ck_assert_int_eq(n->health, CLUSTER_HEALTH_ONLINE);
        ck_assert_int_eq(h_cluster_node_id(&cl, n->port, id, sizeof(id)), 0);
        ck_assert_str_eq(n->id, id);
        for (i = 0; i < np && ports[i] != n->port; i++)
            ;
        ck_assert_msg(i < np, "primary %d unknown to CLUSTER NODES", n->port);
        /* its one replica, as CLUSTER NODES says */
        ck_assert_int_eq(nr, 1);
        i = cluster_map_next_replica(m, p, -1);
        ck_assert_int_ge(i, 0);
        ck_assert_int_eq(cluster_map_node(m, i)->port, reps[0]);
        ck_assert_int_eq(cluster_map_next_replica(m, p, i), -1);
        k++;
    }
    ck_assert_int_eq(k, 3);
    /* every port is one the harness started */
    for (i = 0; i < cluster_map_count(m); i++) {
        int port = cluster_map_node(m, i)->port;

        ck_assert(port >= cl.first_port && port < cl.first_port + cl.nodes);
    }

    /* the same from a replica, in RESP3, and by CLUSTER SLOTS; and as
     * redis-cli's CLUSTER NODES has it */
    p = cluster_map_next_primary(m, -1);
    mr = t_map(cluster_map_node(m, cluster_map_next_replica(m, p, -1))->port, 1, 0);
    m3 = t_map(cl.first_port + 1, 1, 0);
    ms = t_map(cl.first_port + 2, 0, 1);
    ck_assert_int_eq(h_cluster_slot_table(&cl, cl.first_port, owners), 0);
    for (s = 0; s < CLUSTER_SLOTS; s++) {
        const struct cluster_node *n = t_owner(m, s);

        ck_assert_str_eq(t_owner(m3, s)->id, n->id);
        ck_assert_str_eq(t_owner(mr, s)->id, n->id);
        ck_assert_str_eq(t_owner(ms, s)->id, n->id);
        ck_assert_int_eq(t_owner(ms, s)->port, n->port);
        ck_assert_msg(owners[s] == n->port, "slot %u: map %d, CLUSTER NODES %d", s, n->port,
                      owners[s]);
    }
    /* CLUSTER SLOTS leaves out replicas that Redis deems unavailable: with
     * replication offset 0 (no write yet) Redis 7.0 does */
    ck_assert_int_ge(cluster_map_count(ms), 3);
    ck_assert_int_le(cluster_map_count(ms), 6);
    for (i = 0; i < cluster_map_count(ms); i++) {
        const struct cluster_node *n = cluster_map_node(ms, i), *pn;

        if (n->primary < 0)
            continue;
        pn = cluster_map_node(ms, n->primary);
        ck_assert_str_eq(t_node_by_id(m, pn->id)->id,
                         cluster_map_node(m, t_node_by_id(m, n->id)->primary)->id);
    }
    cluster_map_free(m);
    cluster_map_free(m3);
    cluster_map_free(mr);
    cluster_map_free(ms);
    free(owners);
}
END_TEST

START_TEST(test_keyslot_as_server)
{
    static char keys[T_KEYS][T_KEY_MAX];
    size_t lens[T_KEYS];
    redisContext *c = t_connect(cl.first_port, 0);
    int i;

    srandom(4242);
    for (i = 0; i < T_KEYS; i++) {
        const char *argv[3] = {"CLUSTER", "KEYSLOT", keys[i]};
        size_t argl[3] = {7, 7, 0};

        lens[i] = t_random_key(keys[i]);
        argl[2] = lens[i];
        ck_assert_int_eq(redisAppendCommandArgv(c, 3, argv, argl), REDIS_OK);
    }
    for (i = 0; i < T_KEYS; i++) {
        redisReply *r = NULL;

        ck_assert_int_eq(redisGetReply(c, (void **)&r), REDIS_OK);
        ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
        ck_assert_msg(r->integer == (long long)cluster_key_slot(keys[i], lens[i]),
                      "key %d (%zu bytes): server %lld, ours %u", i, lens[i], r->integer,
                      cluster_key_slot(keys[i], lens[i]));
        freeReplyObject(r);
    }
    redisFree(c);
}
END_TEST

START_TEST(test_owner_and_moved)
{
    static char keys[T_KEYS][T_KEY_MAX];
    size_t lens[T_KEYS];
    struct cluster_map *m = t_map(cl.first_port, 0, 0);
    redisContext *conn[3];
    int prim[3], np, i, k, moved = 0;

    np = t_serving(m, prim, 3);
    ck_assert_int_eq(np, 3);
    for (k = 0; k < 3; k++)
        conn[k] = t_connect(cluster_map_node(m, prim[k])->port, 0);
    srandom(99);
    for (i = 0; i < T_KEYS; i++) {
        lens[i] = t_random_key(keys[i]);
        for (k = 0; k < 3; k++) {
            const char *argv[2] = {"GET", keys[i]};
            size_t argl[2] = {3, lens[i]};

            ck_assert_int_eq(redisAppendCommandArgv(conn[k], 2, argv, argl), REDIS_OK);
        }
    }
    for (i = 0; i < T_KEYS; i++) {
        unsigned slot = cluster_key_slot(keys[i], lens[i]);
        int owner = cluster_map_slot_owner(m, slot);

        for (k = 0; k < 3; k++) {
            redisReply *r = NULL;
            struct cluster_redirect rd;

            ck_assert_int_eq(redisGetReply(conn[k], (void **)&r), REDIS_OK);
            if (prim[k] == owner) {
                ck_assert_msg(r->type == REDIS_REPLY_NIL, "key %d: owner answered %d %s", i,
                              r->type, r->type == REDIS_REPLY_ERROR ? r->str : "");
            } else {
                ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
                ck_assert_msg(cluster_redirect_parse(r->str, r->len, &rd) == 0, "'%s'", r->str);
                ck_assert_int_eq(rd.kind, CLUSTER_REDIRECT_MOVED);
                ck_assert_uint_eq(rd.slot, slot);
                ck_assert_int_eq(cluster_map_find(m, rd.host, rd.port), owner);
                moved++;
            }
            freeReplyObject(r);
        }
    }
    ck_assert_int_eq(moved, 2 * T_KEYS);
    for (k = 0; k < 3; k++)
        redisFree(conn[k]);
    cluster_map_free(m);
}
END_TEST

/* ---- changes ------------------------------------------------------------------ */

START_TEST(test_reshard)
{
    struct cluster_map *before = t_map(cl.first_port, 0, 0), *after;
    int prim[3], np = t_serving(before, prim, 3), a = prim[0];
    const struct cluster_node *na = cluster_map_node(before, prim[0]);
    const struct cluster_node *nb = cluster_map_node(before, prim[1]);
    redisContext *c;
    char keys[200][16];
    int changed = 0, i, nkeys = 0;
    unsigned s;

    ck_assert_int_eq(np, 3);
    c = t_connect(na->port, 0);

    /* keys that live on a before: they move along with their slots */
    for (i = 0; nkeys < 200; i++) {
        redisReply *r;

        snprintf(keys[nkeys], sizeof(keys[0]), "k%d", i);
        if (cluster_map_slot_owner(before, cluster_key_slot(keys[nkeys], strlen(keys[nkeys]))) != a)
            continue;
        r = redisCommand(c, "SET %s v-%s", keys[nkeys], keys[nkeys]);
        ck_assert_msg(r != NULL && r->type == REDIS_REPLY_STATUS, "SET %s", keys[nkeys]);
        freeReplyObject(r);
        nkeys++;
    }
    redisFree(c);

    ck_assert_int_eq(h_cluster_reshard(&cl, T_RESHARD_SLOTS, na->port, nb->port), 0);
    after = t_map(cl.first_port + 2, 0, 0);
    ck_assert_uint_eq(cluster_map_covered(after), CLUSTER_SLOTS);
    for (s = 0; s < CLUSTER_SLOTS; s++) {
        const char *was = t_owner(before, s)->id, *now = t_owner(after, s)->id;

        if (strcmp(was, now) == 0)
            continue;
        ck_assert_msg(strcmp(was, na->id) == 0 && strcmp(now, nb->id) == 0,
                      "slot %u moved from %s to %s", s, was, now);
        changed++;
    }
    ck_assert_int_eq(changed, T_RESHARD_SLOTS);
    ck_assert_uint_eq(t_node_by_id(after, na->id)->slots + T_RESHARD_SLOTS, na->slots);
    ck_assert_uint_eq(t_node_by_id(after, nb->id)->slots, nb->slots + T_RESHARD_SLOTS);

    /* every key where the new map says, and a MOVED from the old owner for
     * those that left */
    {
        redisContext *ca = t_connect(na->port, 0), *cb = t_connect(nb->port, 0);
        int left = 0;

        for (i = 0; i < nkeys; i++) {
            unsigned slot = cluster_key_slot(keys[i], strlen(keys[i]));
            int on_b = strcmp(t_owner(after, slot)->id, nb->id) == 0;
            redisReply *r = redisCommand(on_b ? cb : ca, "GET %s", keys[i]);
            char want[32];

            snprintf(want, sizeof(want), "v-%s", keys[i]);
            ck_assert_msg(r != NULL && r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0,
                          "GET %s on its owner: %s", keys[i], r && r->str ? r->str : "?");
            freeReplyObject(r);
            if (on_b) {
                struct cluster_redirect rd;

                r = redisCommand(ca, "GET %s", keys[i]);
                ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
                ck_assert_int_eq(cluster_redirect_parse(r->str, r->len, &rd), 0);
                ck_assert_int_eq(rd.kind, CLUSTER_REDIRECT_MOVED);
                ck_assert_int_eq(rd.port, nb->port);
                freeReplyObject(r);
                left++;
            }
        }
        /* 100 of about 5461 slots: some of 200 keys went (a missing one
         * would mean the check above checked nothing) */
        ck_assert_msg(left > 0, "none of %d keys moved", nkeys);
        redisFree(ca);
        redisFree(cb);
    }
    cluster_map_free(before);
    cluster_map_free(after);
}
END_TEST

START_TEST(test_failover)
{
    struct cluster_map *before = t_map(cl.first_port, 0, 0), *after = NULL;
    int prim[3], np = t_serving(before, prim, 3), p = prim[1];
    const struct cluster_node *old = cluster_map_node(before, p);
    const struct cluster_node *rep =
        cluster_map_node(before, cluster_map_next_replica(before, p, -1));
    int new_port, live = -1, i, o = -1;
    long long t0, deadline;
    unsigned s;

    ck_assert_int_eq(np, 3);
    ck_assert_ptr_nonnull(rep);

    ck_assert_int_eq(h_cluster_kill_node(&cl, old->port, SIGKILL), 0);
    t0 = h_now_ms();
    new_port = h_cluster_failover_wait(&cl, old->port, T_FAILOVER_MS);
    fprintf(stderr, "check_cluster_map: failover of %d to %d in %lld ms\n", old->port, new_port,
            h_now_ms() - t0);
    ck_assert_int_eq(new_port, rep->port);

    for (i = 0; i < cl.nodes && live < 0; i++)
        if (cl.first_port + i != old->port)
            live = cl.first_port + i;
    after = t_map(live, 0, 0);
    ck_assert_uint_eq(cluster_map_covered(after), CLUSTER_SLOTS);
    for (s = 0; s < CLUSTER_SLOTS; s++)
        if (strcmp(t_owner(before, s)->id, old->id) == 0)
            ck_assert_str_eq(t_owner(after, s)->id, rep->id);
        else
            ck_assert_str_eq(t_owner(after, s)->id, t_owner(before, s)->id);
    /* the old primary, if listed, is failed and serves nothing */
    for (i = 0; i < cluster_map_count(after); i++)
        if (strcmp(cluster_map_node(after, i)->id, old->id) == 0) {
            ck_assert_int_eq(cluster_map_node(after, i)->health, CLUSTER_HEALTH_FAILED);
            ck_assert_uint_eq(cluster_map_node(after, i)->slots, 0);
        }
    cluster_map_free(after);

    /* back again: a replica of its successor */
    ck_assert_int_eq(h_cluster_restart_node(&cl, old->port), 0);
    deadline = h_now_ms() + T_REJOIN_MS;
    do {
        int up;

        after = t_map(live, 0, 0);
        o = -1;
        for (i = 0; i < cluster_map_count(after); i++)
            if (strcmp(cluster_map_node(after, i)->id, old->id) == 0)
                o = i;
        up = o >= 0 ? cluster_map_node(after, o)->primary : -1;
        if (up >= 0 && strcmp(cluster_map_node(after, up)->id, rep->id) == 0)
            break;
        cluster_map_free(after);
        after = NULL;
        h_sleep_ms(200);
    } while (h_now_ms() < deadline);
    ck_assert_msg(after != NULL, "node %d not listed as a replica of %d within %d ms", old->port,
                  rep->port, T_REJOIN_MS);
    ck_assert_uint_eq(cluster_map_covered(after), CLUSTER_SLOTS);
    cluster_map_free(after);
    cluster_map_free(before);
}
END_TEST

static Suite *cluster_map_suite(void)
{
    Suite *s = suite_create("cluster_map");
    TCase *tc = tcase_create("cluster");

    tcase_add_unchecked_fixture(tc, t_cluster_up, t_cluster_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_map_covers);
    tcase_add_test(tc, test_keyslot_as_server);
    tcase_add_test(tc, test_owner_and_moved);
    tcase_add_test(tc, test_reshard);
    tcase_add_test(tc, test_failover);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(cluster_map_suite());
}
