/* check_cluster_map.c -- unit tests for the slot map and the redirections
 * (broker/cluster_map.c), without a server: replies are written as RESP
 * bytes (RESP2 arrays and RESP3 maps, as Redis 7 and Valkey 8 send CLUSTER
 * SHARDS and CLUSTER SLOTS) and turned into reply trees by hiredis's own
 * reader, as the broker's connection would. What a good reply must give
 * (coverage, owners at range bounds, nodes, replicas, the port for TLS or
 * not, the address chosen), that SHARDS and SLOTS agree, and that malformed
 * replies are refused with a reason: wrong types, missing fields, odd
 * counts, slot ranges reversed, overlapping or out of range, huge numbers.
 * MOVED/ASK: the forms Redis documents and strings that only look like
 * them. A live cluster: tests/integ/check_cluster_map.c. */
#include "cluster_map.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "hiredis_compat.h"
#include "rcluster.h"

#define RB_CAP (1 << 20)

/* ---- RESP writer -------------------------------------------------------------- */

struct rb {
    char *buf;
    size_t len;
    int resp3; /* pairs as maps (%) rather than flat arrays (*) */
};

static void rb_init(struct rb *b, int resp3)
{
    b->buf = malloc(RB_CAP);
    ck_assert_ptr_nonnull(b->buf);
    b->len = 0;
    b->resp3 = resp3;
}

static void rb_raw(struct rb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void rb_raw(struct rb *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(b->buf + b->len, RB_CAP - b->len, fmt, ap);
    va_end(ap);
    ck_assert(n >= 0 && (size_t)n < RB_CAP - b->len);
    b->len += (size_t)n;
}

static void rb_arr(struct rb *b, int n)
{
    rb_raw(b, "*%d\r\n", n);
}

/* n key/value pairs follow */
static void rb_pairs(struct rb *b, int n)
{
    if (b->resp3)
        rb_raw(b, "%%%d\r\n", n);
    else
        rb_raw(b, "*%d\r\n", 2 * n);
}

static void rb_str(struct rb *b, const char *s)
{
    rb_raw(b, "$%zu\r\n%s\r\n", strlen(s), s);
}

static void rb_int(struct rb *b, long long v)
{
    rb_raw(b, ":%lld\r\n", v);
}

/* The reply tree of b's bytes: exactly one whole reply (caller frees). */
static redisReply *rb_reply(struct rb *b)
{
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;

    ck_assert_ptr_nonnull(rd);
    ck_assert_int_eq(redisReaderFeed(rd, b->buf, b->len), REDIS_OK);
    ck_assert_int_eq(redisReaderGetReply(rd, &reply), REDIS_OK);
    ck_assert_msg(reply != NULL, "incomplete RESP: %.*s", (int)b->len, b->buf);
    redisReaderFree(rd);
    free(b->buf);
    b->buf = NULL;
    return reply;
}

/* ---- a CLUSTER SHARDS reply ---------------------------------------------------- */

struct t_node {
    const char *id, *port_key; /* port_key NULL: "tls-port" */
    long long port;
    const char *ip, *endpoint, *hostname; /* NULL: field left out */
    const char *role, *health;
};

static void rb_node(struct rb *b, const struct t_node *n)
{
    int fields = 3 + (n->ip != NULL) + (n->endpoint != NULL) + (n->hostname != NULL) +
                 (n->health != NULL) + 1;

    rb_pairs(b, fields);
    rb_str(b, "id");
    rb_str(b, n->id);
    rb_str(b, n->port_key != NULL ? n->port_key : "tls-port");
    rb_int(b, n->port);
    if (n->ip != NULL) {
        rb_str(b, "ip");
        rb_str(b, n->ip);
    }
    if (n->endpoint != NULL) {
        rb_str(b, "endpoint");
        rb_str(b, n->endpoint);
    }
    if (n->hostname != NULL) {
        rb_str(b, "hostname");
        rb_str(b, n->hostname);
    }
    rb_str(b, "role");
    rb_str(b, n->role);
    rb_str(b, "replication-offset");
    rb_int(b, 72156);
    if (n->health != NULL) {
        rb_str(b, "health");
        rb_str(b, n->health);
    }
}

/* A shard: slot bounds lo[i]..hi[i] for i < nranges, then nodes. */
static void rb_shard(struct rb *b, int nranges, const long long *bounds, int nnodes,
                     const struct t_node *nodes)
{
    int i;

    rb_pairs(b, 2);
    rb_str(b, "slots");
    rb_arr(b, 2 * nranges);
    for (i = 0; i < 2 * nranges; i++)
        rb_int(b, bounds[i]);
    rb_str(b, "nodes");
    rb_arr(b, nnodes);
    for (i = 0; i < nnodes; i++)
        rb_node(b, &nodes[i]);
}

#define ID(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

static const char *const t_ids[6] = {ID("a"), ID("b"), ID("c"), ID("d"), ID("e"), ID("f")};

/* The three-shard cluster of redis-cli --cluster create: primaries on
 * 7000..7002 (slots 0-5460, 5461-10922, 10923-16383), replicas 7003..7005. */
static void rb_three_shards(struct rb *b)
{
    static const long long ranges[3][2] = {{0, 5460}, {5461, 10922}, {10923, 16383}};
    int s;

    rb_arr(b, 3);
    for (s = 0; s < 3; s++) {
        struct t_node n[2] = {
            {t_ids[s], NULL, 7000 + s, "127.0.0.1", "127.0.0.1", NULL, "master", "online"},
            {t_ids[s + 3], NULL, 7003 + s, "127.0.0.1", "127.0.0.1", NULL, "replica", "online"},
        };
        rb_shard(b, 1, ranges[s], 2, n);
    }
}

static struct cluster_map *shards_map(struct rb *b, int tls)
{
    redisReply *r = rb_reply(b);
    char err[CLUSTER_MAP_ERR_LEN] = "";
    struct cluster_map *m = cluster_map_from_shards(r, tls, err, sizeof(err));

    ck_assert_msg(m != NULL, "refused: %s", err);
    freeReplyObject(r);
    return m;
}

/* The reply is refused, with a reason that contains want. */
static void shards_refused(struct rb *b, int tls, const char *want, int line)
{
    redisReply *r = rb_reply(b);
    char err[CLUSTER_MAP_ERR_LEN] = "";
    struct cluster_map *m = cluster_map_from_shards(r, tls, err, sizeof(err));

    ck_assert_msg(m == NULL, "line %d: accepted", line);
    ck_assert_msg(strstr(err, want) != NULL, "line %d: reason '%s', want '%s'", line, err, want);
    freeReplyObject(r);
}

#define REFUSED(b, tls, want) shards_refused((b), (tls), (want), __LINE__)

static void check_three_shards(const struct cluster_map *m)
{
    static const unsigned bounds[] = {0, 5460, 5461, 10922, 10923, 16383};
    int p, i, k, seen = 0;

    ck_assert_uint_eq(cluster_map_covered(m), CLUSTER_SLOTS);
    ck_assert_int_eq(cluster_map_count(m), 6);
    for (k = 0; k < 6; k++) {
        const struct cluster_node *n = cluster_map_node(m, cluster_map_slot_owner(m, bounds[k]));

        ck_assert_ptr_nonnull(n);
        ck_assert_int_eq(n->port, 7000 + k / 2);
        ck_assert_str_eq(n->id, t_ids[k / 2]);
    }
    ck_assert_int_eq(cluster_map_slot_owner(m, CLUSTER_SLOTS), -1);
    ck_assert_ptr_null(cluster_map_node(m, 6));
    ck_assert_ptr_null(cluster_map_node(m, -1));
    for (p = cluster_map_next_primary(m, -1); p >= 0; p = cluster_map_next_primary(m, p)) {
        const struct cluster_node *n = cluster_map_node(m, p);
        int nrep = 0;

        ck_assert_int_eq(n->primary, -1);
        ck_assert_str_eq(n->host, "127.0.0.1");
        ck_assert_uint_eq(n->slots, n->port == 7001 ? 5462 : 5461);
        ck_assert_int_eq(n->health, CLUSTER_HEALTH_ONLINE);
        for (i = cluster_map_next_replica(m, p, -1); i >= 0;
             i = cluster_map_next_replica(m, p, i)) {
            ck_assert_int_eq(cluster_map_node(m, i)->port, n->port + 3);
            ck_assert_int_eq(cluster_map_node(m, i)->primary, p);
            ck_assert_uint_eq(cluster_map_node(m, i)->slots, 0);
            nrep++;
        }
        ck_assert_int_eq(nrep, 1);
        seen |= 1 << (n->port - 7000);
    }
    ck_assert_int_eq(seen, 7);
    ck_assert_int_eq(cluster_map_next_replica(m, -1, -1), -1);
    ck_assert_int_eq(cluster_map_node(m, cluster_map_find(m, "127.0.0.1", 7004))->port, 7004);
    ck_assert_int_eq(cluster_map_find(m, "127.0.0.1", 7009), -1);
    ck_assert_int_eq(cluster_map_find(m, "127.0.0.2", 7000), -1);
}

START_TEST(test_shards_resp2)
{
    struct rb b;
    struct cluster_map *m;

    rb_init(&b, 0);
    rb_three_shards(&b);
    m = shards_map(&b, 1);
    check_three_shards(m);
    cluster_map_free(m);
}
END_TEST

START_TEST(test_shards_resp3)
{
    struct rb b;
    struct cluster_map *m;

    rb_init(&b, 1);
    rb_three_shards(&b);
    m = shards_map(&b, 1);
    check_three_shards(m);
    cluster_map_free(m);
}
END_TEST

/* A shard as a node with both ports reports it: "port" for plain, "tls-port"
 * for TLS; a node without the one asked for cannot be used. */
START_TEST(test_shards_port_choice)
{
    static const long long all[2] = {0, 16383};
    int resp3;

    for (resp3 = 0; resp3 <= 1; resp3++) {
        struct t_node plain = {t_ids[0], "port", 6379, "10.0.0.1", NULL, NULL, "master", NULL};
        struct cluster_map *m;
        struct rb b;

        rb_init(&b, resp3);
        rb_arr(&b, 1);
        rb_shard(&b, 1, all, 1, &plain);
        m = shards_map(&b, 0);
        ck_assert_int_eq(cluster_map_node(m, 0)->port, 6379);
        ck_assert_int_eq(cluster_map_node(m, 0)->health, CLUSTER_HEALTH_UNKNOWN);
        ck_assert_uint_eq(cluster_map_covered(m), CLUSTER_SLOTS);
        cluster_map_free(m);

        rb_init(&b, resp3);
        rb_arr(&b, 1);
        rb_shard(&b, 1, all, 1, &plain);
        REFUSED(&b, 1, "no tls-port");

        plain.port_key = "tls-port";
        rb_init(&b, resp3);
        rb_arr(&b, 1);
        rb_shard(&b, 1, all, 1, &plain);
        REFUSED(&b, 0, "no port");
    }
}
END_TEST

START_TEST(test_shards_host_choice)
{
    static const long long all[2] = {0, 16383};
    static const struct {
        const char *ip, *endpoint, *hostname, *want;
    } cases[] = {
        {"10.0.0.1", "redis-1.example", "redis-1", "10.0.0.1"},
        {NULL, "redis-1.example", "redis-1", "redis-1.example"},
        {"", "redis-1.example", NULL, "redis-1.example"},
        {NULL, "?", "redis-1", "redis-1"},
        {"", "", "redis-1", "redis-1"},
        {"::1", NULL, NULL, "::1"},
    };
    size_t k;

    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct t_node n = {t_ids[0],          NULL,      6380,    cases[k].ip, cases[k].endpoint,
                           cases[k].hostname, "primary", "online"};
        struct cluster_map *m;
        struct rb b;

        rb_init(&b, (int)(k & 1));
        rb_arr(&b, 1);
        rb_shard(&b, 1, all, 1, &n);
        m = shards_map(&b, 1);
        ck_assert_str_eq(cluster_map_node(m, 0)->host, cases[k].want);
        cluster_map_free(m);
    }
}
END_TEST

/* Several ranges per shard, a primary with none, slots nobody serves. */
START_TEST(test_shards_partial)
{
    static const long long r0[4] = {0, 99, 200, 299}, r1[2] = {300, 300};
    struct t_node n0 = {t_ids[0], NULL, 7000, "127.0.0.1", NULL, NULL, "master", "online"};
    struct t_node n1 = {t_ids[1], NULL, 7001, "127.0.0.1", NULL, NULL, "master", "online"};
    struct t_node n2 = {t_ids[2], NULL, 7002, "127.0.0.1", NULL, NULL, "master", "online"};
    struct cluster_map *m;
    struct rb b;

    rb_init(&b, 0);
    rb_arr(&b, 3);
    rb_shard(&b, 2, r0, 1, &n0);
    rb_shard(&b, 1, r1, 1, &n1);
    rb_shard(&b, 0, NULL, 1, &n2);
    m = shards_map(&b, 1);
    ck_assert_uint_eq(cluster_map_covered(m), 201);
    ck_assert_int_eq(cluster_map_slot_owner(m, 0), 0);
    ck_assert_int_eq(cluster_map_slot_owner(m, 99), 0);
    ck_assert_int_eq(cluster_map_slot_owner(m, 100), -1);
    ck_assert_int_eq(cluster_map_slot_owner(m, 199), -1);
    ck_assert_int_eq(cluster_map_slot_owner(m, 200), 0);
    ck_assert_int_eq(cluster_map_slot_owner(m, 300), 1);
    ck_assert_int_eq(cluster_map_slot_owner(m, 301), -1);
    ck_assert_int_eq(cluster_map_slot_owner(m, 16383), -1);
    ck_assert_uint_eq(cluster_map_node(m, 2)->slots, 0);
    ck_assert_int_eq(cluster_map_next_primary(m, 1), 2);
    ck_assert_int_eq(cluster_map_next_primary(m, 2), -1);
    cluster_map_free(m);

    /* an empty cluster (CLUSTER SHARDS before any slot was given) */
    rb_init(&b, 0);
    rb_arr(&b, 0);
    m = shards_map(&b, 1);
    ck_assert_uint_eq(cluster_map_covered(m), 0);
    ck_assert_int_eq(cluster_map_count(m), 0);
    ck_assert_int_eq(cluster_map_next_primary(m, -1), -1);
    cluster_map_free(m);
}
END_TEST

/* After a failover the old primary, failed, may still be listed as a
 * primary in its shard next to its successor: the successor serves. */
START_TEST(test_shards_failed_primary)
{
    static const long long all[2] = {0, 16383};
    struct t_node n[3] = {
        {t_ids[0], NULL, 7000, "127.0.0.1", NULL, NULL, "master", "failed"},
        {t_ids[1], NULL, 7001, "127.0.0.1", NULL, NULL, "master", "online"},
        {t_ids[2], NULL, 7002, "127.0.0.1", NULL, NULL, "replica", "loading"},
    };
    struct cluster_map *m;
    struct rb b;

    rb_init(&b, 1);
    rb_arr(&b, 1);
    rb_shard(&b, 1, all, 3, n);
    m = shards_map(&b, 1);
    ck_assert_int_eq(cluster_map_slot_owner(m, 42), 1);
    ck_assert_int_eq(cluster_map_node(m, 0)->health, CLUSTER_HEALTH_FAILED);
    ck_assert_int_eq(cluster_map_node(m, 0)->primary, -1);
    ck_assert_uint_eq(cluster_map_node(m, 0)->slots, 0);
    ck_assert_int_eq(cluster_map_node(m, 2)->primary, 1);
    ck_assert_int_eq(cluster_map_node(m, 2)->health, CLUSTER_HEALTH_LOADING);
    cluster_map_free(m);

    /* the other order, and the word Redis 7.0 actually sends */
    n[0].health = "fail";
    rb_init(&b, 0);
    rb_arr(&b, 1);
    {
        struct t_node o[2] = {n[1], n[0]};
        rb_shard(&b, 1, all, 2, o);
    }
    m = shards_map(&b, 1);
    ck_assert_int_eq(cluster_map_slot_owner(m, 42), 0);
    ck_assert_int_eq(cluster_map_node(m, 1)->health, CLUSTER_HEALTH_FAILED);
    cluster_map_free(m);

    /* two primaries that both say online: which one serves is unknowable */
    n[0].health = "online";
    rb_init(&b, 0);
    rb_arr(&b, 1);
    rb_shard(&b, 1, all, 3, n);
    REFUSED(&b, 1, "two primaries");
}
END_TEST

/* Replies that are not a map at all. */
START_TEST(test_shards_malformed_top)
{
    static const char *const bad[] = {
        ":1\r\n",
        "$-1\r\n",
        "-ERR This instance has cluster support disabled\r\n",
        "+OK\r\n",
        "$5\r\nhello\r\n",
        /* a shard that is no list of pairs: odd count, an integer, a string */
        "*1\r\n*3\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n",
        "*1\r\n:5\r\n",
        "*1\r\n$5\r\nslots\r\n",
        /* slots or nodes missing, of the wrong type, or twice */
        "*1\r\n*2\r\n$5\r\nslots\r\n*0\r\n",
        "*1\r\n*2\r\n$5\r\nnodes\r\n*0\r\n",
        "*1\r\n*4\r\n$5\r\nslots\r\n:1\r\n$5\r\nnodes\r\n*0\r\n",
        "*1\r\n*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n$0\r\n\r\n",
        "*1\r\n*6\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*0\r\n$5\r\nslots\r\n*0\r\n",
        /* a key that is not text is no key */
        "*1\r\n*4\r\n:5\r\n*0\r\n$5\r\nnodes\r\n*0\r\n",
        /* odd number of slot bounds */
        "*1\r\n*4\r\n$5\r\nslots\r\n*1\r\n:0\r\n$5\r\nnodes\r\n*0\r\n",
        /* slots but no node at all */
        "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:1\r\n$5\r\nnodes\r\n*0\r\n",
    };
    size_t k;

    for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct rb b;
        redisReply *r;
        char err[CLUSTER_MAP_ERR_LEN] = "";

        rb_init(&b, 0);
        rb_raw(&b, "%s", bad[k]);
        r = rb_reply(&b);
        ck_assert_msg(cluster_map_from_shards(r, 1, err, sizeof(err)) == NULL, "%zu accepted", k);
        ck_assert_msg(err[0] != '\0', "%zu: no reason", k);
        freeReplyObject(r);
    }
    /* a NULL reply (the connection went away) too */
    ck_assert_ptr_null(cluster_map_from_shards(NULL, 1, NULL, 0));
    ck_assert_ptr_null(cluster_map_from_slots(NULL, NULL, 0));
}
END_TEST

/* Slot bounds: reversed, past 16383, negative, huge, not numbers. */
START_TEST(test_shards_bad_slots)
{
    static const char *const bounds[] = {
        ":10\r\n:9\r\n",
        ":0\r\n:16384\r\n",
        ":-1\r\n:5\r\n",
        ":0\r\n:9223372036854775807\r\n",
        ":-9223372036854775808\r\n:0\r\n",
        "$2\r\n1a\r\n:5\r\n",
        "$11\r\n00000000001\r\n:5\r\n",
        "$0\r\n\r\n:5\r\n",
        ",1.5\r\n:5\r\n",
        "*0\r\n:5\r\n",
        "_\r\n:5\r\n",
    };
    struct t_node n = {t_ids[0], NULL, 7000, "127.0.0.1", NULL, NULL, "master", "online"};
    size_t k;

    for (k = 0; k < sizeof(bounds) / sizeof(bounds[0]); k++) {
        struct rb b;

        rb_init(&b, 1);
        rb_arr(&b, 1);
        rb_pairs(&b, 2);
        rb_str(&b, "slots");
        rb_arr(&b, 2);
        rb_raw(&b, "%s", bounds[k]);
        rb_str(&b, "nodes");
        rb_arr(&b, 1);
        rb_node(&b, &n);
        REFUSED(&b, 1, "bad slot range");
    }
}
END_TEST

START_TEST(test_shards_overlap)
{
    static const long long a[2] = {0, 100}, b2[2] = {100, 200}, self[4] = {0, 10, 5, 20};
    struct t_node n0 = {t_ids[0], NULL, 7000, "127.0.0.1", NULL, NULL, "master", "online"};
    struct t_node n1 = {t_ids[1], NULL, 7001, "127.0.0.1", NULL, NULL, "master", "online"};
    struct rb b;

    rb_init(&b, 0);
    rb_arr(&b, 2);
    rb_shard(&b, 1, a, 1, &n0);
    rb_shard(&b, 1, b2, 1, &n1);
    REFUSED(&b, 1, "overlap");

    rb_init(&b, 1);
    rb_arr(&b, 1);
    rb_shard(&b, 2, self, 1, &n0);
    REFUSED(&b, 1, "overlap");
}
END_TEST

/* One bad node spoils the reply. */
START_TEST(test_shards_bad_nodes)
{
    static const long long all[2] = {0, 16383};
    static const char long_id[] = ID("a") "0";
    char long_host[300];
    struct {
        struct t_node n;
        const char *want;
    } cases[] = {
        {{"", NULL, 7000, "127.0.0.1", NULL, NULL, "master", NULL}, "bad id"},
        {{long_id, NULL, 7000, "127.0.0.1", NULL, NULL, "master", NULL}, "bad id"},
        {{"abc-def", NULL, 7000, "127.0.0.1", NULL, NULL, "master", NULL}, "bad id"},
        {{t_ids[0], NULL, 0, "127.0.0.1", NULL, NULL, "master", NULL}, "bad tls-port"},
        {{t_ids[0], NULL, 65536, "127.0.0.1", NULL, NULL, "master", NULL}, "bad tls-port"},
        {{t_ids[0], NULL, -1, "127.0.0.1", NULL, NULL, "master", NULL}, "bad tls-port"},
        {{t_ids[0], NULL, 7000, NULL, NULL, NULL, "master", NULL}, "no address"},
        {{t_ids[0], NULL, 7000, "", "?", "", "master", NULL}, "no address"},
        {{t_ids[0], NULL, 7000, "127.0.0.1 x", NULL, NULL, "master", NULL}, "bad ip"},
        {{t_ids[0], NULL, 7000, long_host, NULL, NULL, "master", NULL}, "bad ip"},
        {{t_ids[0], NULL, 7000, "127.0.0.1", NULL, NULL, "leader", NULL}, "unknown role"},
    };
    size_t k;

    memset(long_host, 'h', 256);
    long_host[256] = '\0';
    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct rb b;

        rb_init(&b, (int)(k & 1));
        rb_arr(&b, 1);
        rb_shard(&b, 1, all, 1, &cases[k].n);
        REFUSED(&b, 1, cases[k].want);
    }
    /* 255 bytes is the longest host */
    long_host[255] = '\0';
    {
        struct t_node n = {t_ids[0], NULL, 7000, long_host, NULL, NULL, "master", NULL};
        struct cluster_map *m;
        struct rb b;

        rb_init(&b, 0);
        rb_arr(&b, 1);
        rb_shard(&b, 1, all, 1, &n);
        m = shards_map(&b, 1);
        ck_assert_str_eq(cluster_map_node(m, 0)->host, long_host);
        cluster_map_free(m);
    }
}
END_TEST

START_TEST(test_shards_bad_fields)
{
    struct rb b;

    /* no role */
    rb_init(&b, 0);
    rb_raw(&b, "*1\r\n*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n");
    rb_raw(&b, "*6\r\n$2\r\nid\r\n$1\r\na\r\n$8\r\ntls-port\r\n:1\r\n$2\r\nip\r\n$1\r\nh\r\n");
    REFUSED(&b, 1, "no role");
    /* a field twice */
    rb_init(&b, 0);
    rb_raw(&b, "*1\r\n*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n");
    rb_raw(&b, "*10\r\n$2\r\nid\r\n$1\r\na\r\n$8\r\ntls-port\r\n:1\r\n$2\r\nip\r\n$1\r\nh\r\n"
               "$4\r\nrole\r\n$6\r\nmaster\r\n$8\r\ntls-port\r\n:2\r\n");
    REFUSED(&b, 1, "twice");
    /* health not text */
    rb_init(&b, 0);
    rb_raw(&b, "*1\r\n*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n");
    rb_raw(&b, "*10\r\n$2\r\nid\r\n$1\r\na\r\n$8\r\ntls-port\r\n:1\r\n$2\r\nip\r\n$1\r\nh\r\n"
               "$4\r\nrole\r\n$6\r\nmaster\r\n$6\r\nhealth\r\n:1\r\n");
    REFUSED(&b, 1, "bad health");
    /* a node that is not a list of pairs */
    rb_init(&b, 0);
    rb_raw(&b, "*1\r\n*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n*3\r\n:1\r\n:2\r\n:3\r\n");
    REFUSED(&b, 1, "not a list of fields");
    /* the port as digits is fine (proxies), as a word it is not */
    rb_init(&b, 0);
    rb_raw(&b, "*1\r\n*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n");
    rb_raw(&b, "*8\r\n$2\r\nid\r\n$1\r\na\r\n$8\r\ntls-port\r\n$4\r\nsix!\r\n$2\r\nip\r\n$1\r\nh"
               "\r\n$4\r\nrole\r\n$6\r\nmaster\r\n");
    REFUSED(&b, 1, "bad tls-port");
    /* the same node id in two shards */
    rb_init(&b, 0);
    rb_raw(&b, "*2\r\n");
    {
        struct t_node n = {t_ids[0], NULL, 7000, "127.0.0.1", NULL, NULL, "master", NULL};

        rb_shard(&b, 0, NULL, 1, &n);
        n.port = 7001;
        rb_shard(&b, 0, NULL, 1, &n);
    }
    REFUSED(&b, 1, "listed twice");
}
END_TEST

START_TEST(test_shards_too_many_nodes)
{
    struct rb b;
    int i;

    rb_init(&b, 0);
    rb_arr(&b, CLUSTER_MAP_NODES_MAX + 1);
    for (i = 0; i <= CLUSTER_MAP_NODES_MAX; i++) {
        char id[16];
        struct t_node n = {id, NULL, 1 + i, "127.0.0.1", NULL, NULL, "master", NULL};

        snprintf(id, sizeof(id), "n%d", i);
        rb_shard(&b, 0, NULL, 1, &n);
    }
    REFUSED(&b, 1, "more than 1000 nodes");
}
END_TEST

/* ---- CLUSTER SLOTS -------------------------------------------------------------- */

/* [host, port, id, {hostname: ...}] as Redis 7 sends each node */
static void rb_slots_node(struct rb *b, const char *host, long long port, const char *id)
{
    rb_arr(b, id != NULL ? 4 : 2);
    if (host != NULL)
        rb_str(b, host);
    else
        rb_raw(b, "$-1\r\n");
    rb_int(b, port);
    if (id != NULL) {
        rb_str(b, id);
        rb_pairs(b, 1);
        rb_str(b, "hostname");
        rb_str(b, "node");
    }
}

static void rb_slots_entry(struct rb *b, long long lo, long long hi, int primary)
{
    rb_arr(b, 4);
    rb_int(b, lo);
    rb_int(b, hi);
    rb_slots_node(b, "127.0.0.1", 7000 + primary, t_ids[primary]);
    rb_slots_node(b, "127.0.0.1", 7003 + primary, t_ids[primary + 3]);
}

static struct cluster_map *slots_map(struct rb *b)
{
    redisReply *r = rb_reply(b);
    char err[CLUSTER_MAP_ERR_LEN] = "";
    struct cluster_map *m = cluster_map_from_slots(r, err, sizeof(err));

    ck_assert_msg(m != NULL, "refused: %s", err);
    freeReplyObject(r);
    return m;
}

static void slots_refused(struct rb *b, const char *want, int line)
{
    redisReply *r = rb_reply(b);
    char err[CLUSTER_MAP_ERR_LEN] = "";

    ck_assert_msg(cluster_map_from_slots(r, err, sizeof(err)) == NULL, "line %d: accepted", line);
    ck_assert_msg(strstr(err, want) != NULL, "line %d: reason '%s', want '%s'", line, err, want);
    freeReplyObject(r);
}

#define SLOTS_REFUSED(b, want) slots_refused((b), (want), __LINE__)

START_TEST(test_slots_three)
{
    int resp3;

    for (resp3 = 0; resp3 <= 1; resp3++) {
        struct cluster_map *m;
        struct rb b;

        rb_init(&b, resp3);
        rb_arr(&b, 3);
        rb_slots_entry(&b, 10923, 16383, 2); /* any order */
        rb_slots_entry(&b, 0, 5460, 0);
        rb_slots_entry(&b, 5461, 10922, 1);
        m = slots_map(&b);
        /* the order of the nodes differs from SHARDS' (entries as given);
         * compare by what they are */
        ck_assert_uint_eq(cluster_map_covered(m), CLUSTER_SLOTS);
        ck_assert_int_eq(cluster_map_count(m), 6);
        ck_assert_int_eq(cluster_map_node(m, cluster_map_slot_owner(m, 0))->port, 7000);
        ck_assert_int_eq(cluster_map_node(m, cluster_map_slot_owner(m, 5461))->port, 7001);
        ck_assert_int_eq(cluster_map_node(m, cluster_map_slot_owner(m, 16383))->port, 7002);
        ck_assert_str_eq(cluster_map_node(m, cluster_map_slot_owner(m, 16383))->id, t_ids[2]);
        {
            int p = cluster_map_slot_owner(m, 0), r = cluster_map_next_replica(m, p, -1);

            ck_assert_int_eq(cluster_map_node(m, r)->port, 7003);
            ck_assert_int_eq(cluster_map_next_replica(m, p, r), -1);
        }
        cluster_map_free(m);
    }
}
END_TEST

/* A primary with two ranges is one node; SHARDS and SLOTS of one layout
 * agree slot by slot. */
START_TEST(test_slots_same_as_shards)
{
    static const long long r0[4] = {0, 5000, 12000, 16383}, r1[2] = {5001, 11999};
    struct t_node n0[2] = {
        {t_ids[0], NULL, 7000, "127.0.0.1", NULL, NULL, "master", "online"},
        {t_ids[3], NULL, 7003, "127.0.0.1", NULL, NULL, "replica", "online"},
    };
    struct t_node n1[2] = {
        {t_ids[1], NULL, 7001, "127.0.0.1", NULL, NULL, "master", "online"},
        {t_ids[4], NULL, 7004, "127.0.0.1", NULL, NULL, "replica", "online"},
    };
    struct cluster_map *a, *b2;
    struct rb b;
    unsigned s;

    rb_init(&b, 0);
    rb_arr(&b, 2);
    rb_shard(&b, 2, r0, 2, n0);
    rb_shard(&b, 1, r1, 2, n1);
    a = shards_map(&b, 1);

    rb_init(&b, 0);
    rb_arr(&b, 3);
    rb_slots_entry(&b, 0, 5000, 0);
    rb_slots_entry(&b, 5001, 11999, 1);
    rb_slots_entry(&b, 12000, 16383, 0);
    b2 = slots_map(&b);
    ck_assert_int_eq(cluster_map_count(b2), 4);
    for (s = 0; s < CLUSTER_SLOTS; s++)
        ck_assert_str_eq(cluster_map_node(a, cluster_map_slot_owner(a, s))->id,
                         cluster_map_node(b2, cluster_map_slot_owner(b2, s))->id);
    ck_assert_uint_eq(cluster_map_node(b2, cluster_map_slot_owner(b2, 0))->slots, 5001 + 4384);
    cluster_map_free(a);
    cluster_map_free(b2);
}
END_TEST

START_TEST(test_slots_unknown_endpoint)
{
    struct cluster_map *m;
    struct rb b;

    /* nil and "" stand for the node asked; old servers give no id */
    rb_init(&b, 0);
    rb_arr(&b, 2);
    rb_arr(&b, 3);
    rb_int(&b, 0);
    rb_int(&b, 99);
    rb_slots_node(&b, NULL, 7000, NULL);
    rb_arr(&b, 3);
    rb_int(&b, 100);
    rb_int(&b, 199);
    rb_slots_node(&b, "", 7001, NULL);
    m = slots_map(&b);
    ck_assert_int_eq(cluster_map_count(m), 2);
    ck_assert_str_eq(cluster_map_node(m, 0)->host, "");
    ck_assert_str_eq(cluster_map_node(m, 1)->id, "");
    ck_assert_int_eq(cluster_map_find(m, "", 7001), 1);
    cluster_map_free(m);

    rb_init(&b, 0);
    rb_arr(&b, 1);
    rb_arr(&b, 3);
    rb_int(&b, 0);
    rb_int(&b, 99);
    rb_slots_node(&b, "?", 7000, NULL);
    SLOTS_REFUSED(&b, "bad host");
}
END_TEST

START_TEST(test_slots_malformed)
{
    static const struct {
        const char *resp, *want;
    } cases[] = {
        {":1\r\n", "not a list"},
        {"-ERR no cluster\r\n", "an error reply"},
        {"*1\r\n:1\r\n", "entry 0"},
        {"*1\r\n*2\r\n:0\r\n:1\r\n", "entry 0"},
        {"*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n$1\r\nh\r\n:1\r\n", "entry 0"},
        {"*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n", "entry 0"},
        {"*1\r\n*3\r\n:0\r\n$20\r\n99999999999999999999\r\n*2\r\n$1\r\nh\r\n:1\r\n", "entry 0"},
        {"*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\nh\r\n", "not [host, port"},
        {"*1\r\n*3\r\n:0\r\n:1\r\n:7\r\n", "not [host, port"},
        {"*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n:1\r\n:1\r\n", "bad host"},
        {"*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:0\r\n", "bad port"},
        {"*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:65536\r\n", "bad port"},
        {"*1\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\nh\r\n:1\r\n:5\r\n", "bad id"},
        /* overlapping entries */
        {"*2\r\n*3\r\n:0\r\n:10\r\n*2\r\n$1\r\nh\r\n:1\r\n"
         "*3\r\n:10\r\n:20\r\n*2\r\n$1\r\nh\r\n:2\r\n",
         "overlap"},
        /* one node primary here, replica there */
        {"*2\r\n*3\r\n:0\r\n:10\r\n*2\r\n$1\r\nh\r\n:1\r\n"
         "*4\r\n:11\r\n:20\r\n*2\r\n$1\r\nh\r\n:2\r\n*2\r\n$1\r\nh\r\n:1\r\n",
         "both primary"},
        /* a replica of two primaries */
        {"*2\r\n*4\r\n:0\r\n:10\r\n*2\r\n$1\r\nh\r\n:1\r\n*2\r\n$1\r\nh\r\n:3\r\n"
         "*4\r\n:11\r\n:20\r\n*2\r\n$1\r\nh\r\n:2\r\n*2\r\n$1\r\nh\r\n:3\r\n",
         "two primaries"},
        /* a node at two addresses under one id */
        {"*2\r\n*3\r\n:0\r\n:10\r\n*3\r\n$1\r\nh\r\n:1\r\n$1\r\nx\r\n"
         "*3\r\n:11\r\n:20\r\n*3\r\n$1\r\nh\r\n:2\r\n$1\r\nx\r\n",
         "two addresses"},
    };
    size_t k;

    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct rb b;

        rb_init(&b, 0);
        rb_raw(&b, "%s", cases[k].resp);
        SLOTS_REFUSED(&b, cases[k].want);
    }
}
END_TEST

/* ---- MOVED / ASK ----------------------------------------------------------------- */

static void redirect_ok(const char *s, size_t len, enum cluster_redirect_kind kind, unsigned slot,
                        const char *host, int port)
{
    struct cluster_redirect r;

    ck_assert_msg(cluster_redirect_parse(s, len, &r) == 0, "'%.*s' refused", (int)len, s);
    ck_assert_int_eq(r.kind, kind);
    ck_assert_uint_eq(r.slot, slot);
    ck_assert_str_eq(r.host, host);
    ck_assert_int_eq(r.port, port);
}

#define OK(s, kind, slot, host, port) redirect_ok((s), strlen(s), (kind), (slot), (host), (port))

START_TEST(test_redirect_forms)
{
    char host255[300], text[400];

    OK("MOVED 3999 127.0.0.1:6381", CLUSTER_REDIRECT_MOVED, 3999, "127.0.0.1", 6381);
    OK("ASK 3999 127.0.0.1:6381", CLUSTER_REDIRECT_ASK, 3999, "127.0.0.1", 6381);
    OK("MOVED 0 redis-1.example:1", CLUSTER_REDIRECT_MOVED, 0, "redis-1.example", 1);
    OK("MOVED 16383 h:65535", CLUSTER_REDIRECT_MOVED, 16383, "h", 65535);
    OK("MOVED 3999 [::1]:6379", CLUSTER_REDIRECT_MOVED, 3999, "::1", 6379);
    OK("ASK 1 [fe80::1:2]:7000", CLUSTER_REDIRECT_ASK, 1, "fe80::1:2", 7000);
    /* Redis itself writes IPv6 without brackets: the port is after the last ':' */
    OK("MOVED 3999 ::1:6379", CLUSTER_REDIRECT_MOVED, 3999, "::1", 6379);
    OK("MOVED 3999 2001:db8::7:6380", CLUSTER_REDIRECT_MOVED, 3999, "2001:db8::7", 6380);
    /* no endpoint: the node that answered */
    OK("MOVED 3999 :6380", CLUSTER_REDIRECT_MOVED, 3999, "", 6380);
    OK("ASK 12 :6380", CLUSTER_REDIRECT_ASK, 12, "", 6380);
    /* the length rules, not a NUL */
    redirect_ok("MOVED 5 h:77xyz", 12, CLUSTER_REDIRECT_MOVED, 5, "h", 77);

    memset(host255, 'h', 255);
    host255[255] = '\0';
    snprintf(text, sizeof(text), "MOVED 1 %s:2", host255);
    OK(text, CLUSTER_REDIRECT_MOVED, 1, host255, 2);
}
END_TEST

START_TEST(test_redirect_malformed)
{
    static const char *const bad[] = {
        "",
        "MOVED",
        "MOVED ",
        "MOVED 3999",
        "MOVED 3999 ",
        "ASK",
        "ASK 1",
        "ERR unknown command",
        "CLUSTERDOWN The cluster is down",
        "TRYAGAIN later",
        "moved 3999 h:1",
        "Moved 3999 h:1",
        "ASKING 1 h:1",
        "MOVEDX 1 h:1",
        "MOVED 16384 h:1",
        "MOVED -1 h:1",
        "MOVED +1 h:1",
        "MOVED 1a h:1",
        "MOVED 03999 h:1",
        "MOVED 99999999999999999999 h:1",
        "MOVED  3999 h:1",
        "MOVED 3999  h:1",
        "MOVED 3999 h:1 ",
        " MOVED 3999 h:1",
        "MOVED 3999 h:1 extra",
        "MOVED 3999 h:1\r\n",
        "MOVED 3999 h",
        "MOVED 3999 h:",
        "MOVED 3999 h:0",
        "MOVED 3999 h:65536",
        "MOVED 3999 h:-1",
        "MOVED 3999 h:12x",
        "MOVED 3999 h:0080",
        "MOVED 3999 h:99999999999",
        "MOVED 3999 [::1]6379",
        "MOVED 3999 []:6379",
        "MOVED 3999 [::1:6379",
        "MOVED 3999 [::1]:",
        "MOVED 3999 [[::1]]:6379",
        "MOVED 3999 a]b:1",
        "MOVED 3999 a[b:1",
        "MOVED 3999 h\t:1",
        "MOVED 3999 h\x7f:1",
        "MOVED 3999 h\xc3\xa9:1",
        "MOVED 3999 :",
        "MOVED 3999",
    };
    struct cluster_redirect r;
    char host256[300], text[400];
    size_t k;

    for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        memset(&r, 0x5a, sizeof(r));
        ck_assert_msg(cluster_redirect_parse(bad[k], strlen(bad[k]), &r) == -1, "'%s' accepted",
                      bad[k]);
        ck_assert_int_eq(r.kind, CLUSTER_REDIRECT_NONE);
    }
    /* a NUL inside the host */
    ck_assert_int_eq(cluster_redirect_parse("MOVED 1 h\0x:2", 13, &r), -1);
    /* one byte past the longest host */
    memset(host256, 'h', 256);
    host256[256] = '\0';
    snprintf(text, sizeof(text), "MOVED 1 %s:2", host256);
    ck_assert_int_eq(cluster_redirect_parse(text, strlen(text), &r), -1);
}
END_TEST

/* Which node a command goes to: the slot of EVAL's first key, of any other
 * command's first argument; none (-1) for what any node serves. */
static int cmd_slot(int argc, ...)
{
    const char *argv[8];
    size_t lens[8];
    va_list ap;
    int i;

    va_start(ap, argc);
    for (i = 0; i < argc; i++) {
        argv[i] = va_arg(ap, const char *);
        lens[i] = strlen(argv[i]);
    }
    va_end(ap);
    return rcluster_command_slot(argc, argv, lens);
}

START_TEST(test_command_slot)
{
    int room = (int)cluster_key_slot("chat:{lobby}:history", 20);

    ck_assert_int_eq(room, (int)cluster_key_slot("lobby", 5));
    ck_assert_int_eq(cmd_slot(5, "EVAL", "return 1", "2", "chat:{lobby}:history", "x"), room);
    ck_assert_int_eq(cmd_slot(5, "evalsha", "abc", "1", "chat:{lobby}:users", "x"), room);
    ck_assert_int_eq(cmd_slot(4, "EVAL", "return 1", "0", "arg"), -1);
    ck_assert_int_eq(cmd_slot(3, "EVAL", "return 1", "1"), -1); /* a key promised, none given */
    ck_assert_int_eq(cmd_slot(3, "SPUBLISH", "chat:{lobby}", "m"), room);
    ck_assert_int_eq(cmd_slot(3, "PUBLISH", "chat:{lobby}", "m"), -1);
    ck_assert_int_eq(cmd_slot(1, "PING"), -1);
    ck_assert_int_eq(cmd_slot(2, "CLUSTER", "SHARDS"), -1);
    ck_assert_int_eq(cmd_slot(6, "XRANGE", "chat:{lobby}:history", "-", "+", "COUNT", "5"), room);
    ck_assert_int_eq(cmd_slot(3, "SADD", "chat-users", "bob"),
                     (int)cluster_key_slot("chat-users", 10));
    ck_assert_int_eq(cmd_slot(1, "SADD"), -1);
}
END_TEST

static Suite *cluster_map_suite(void)
{
    Suite *s = suite_create("cluster_map");
    TCase *tc = tcase_create("shards");

    tcase_add_test(tc, test_shards_resp2);
    tcase_add_test(tc, test_shards_resp3);
    tcase_add_test(tc, test_shards_port_choice);
    tcase_add_test(tc, test_shards_host_choice);
    tcase_add_test(tc, test_shards_partial);
    tcase_add_test(tc, test_shards_failed_primary);
    suite_add_tcase(s, tc);

    tc = tcase_create("shards_malformed");
    tcase_add_test(tc, test_shards_malformed_top);
    tcase_add_test(tc, test_shards_bad_slots);
    tcase_add_test(tc, test_shards_overlap);
    tcase_add_test(tc, test_shards_bad_nodes);
    tcase_add_test(tc, test_shards_bad_fields);
    tcase_add_test(tc, test_shards_too_many_nodes);
    suite_add_tcase(s, tc);

    tc = tcase_create("slots");
    tcase_add_test(tc, test_slots_three);
    tcase_add_test(tc, test_slots_same_as_shards);
    tcase_add_test(tc, test_slots_unknown_endpoint);
    tcase_add_test(tc, test_slots_malformed);
    suite_add_tcase(s, tc);

    tc = tcase_create("command_slot");
    tcase_add_test(tc, test_command_slot);
    suite_add_tcase(s, tc);

    tc = tcase_create("redirect");
    tcase_add_test(tc, test_redirect_forms);
    tcase_add_test(tc, test_redirect_malformed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(cluster_map_suite());
}
