/* check_cluster.c -- redis-chat on a Redis Cluster: three primaries with a
 * replica each, TLS and a password, started by the test; two chat
 * instances that know one seed node each.
 *
 * Rooms are spread over all three shards (their hash tags are chosen so);
 * each room's traffic must reach both instances over sharded pub/sub, the
 * default room keeps classic PUBLISH on `chat` (a seed-era publisher on any
 * node reaches its users), and during a resharding of a room's slot and a
 * primary's failover, both under a steady stream of sends, users stay
 * connected and every message the room's stream keeps reaches every
 * receiver once.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "cluster_slot.h"
#include "fixtures.h"
#include "harness.h"
#include "harness_cluster.h"
#include "traffic.h"
#include "wsclient.h"

#define PW "cluster-pw"
#define SHARDS 3
#define STEADY 40      /* sends acknowledged before the disruption */
#define AFTER 40       /* and after it */
#define DISRUPT_MAX_MS 40000

static struct h_cluster cl;
static char chat_conf[1024];

/* ---- topology ---------------------------------------------------------------- */

static void cluster_up(void)
{
    ck_assert_int_eq(h_cluster_start(&cl, SHARDS, 1, 1, PW), 0);
}

static void chat_start(struct h_chat *c, int seed_port, const char *more)
{
    snprintf(chat_conf, sizeof(chat_conf),
             "redis-cluster yes\nredis-host 127.0.0.1\nredis-port %d\nrate-limit 0\n"
             /* nothing trimmed: a message missing from the stream is lost */
             "history-size 100000\n%s", seed_port,
             more != NULL ? more : "");
    /* h_chat_start writes redis-host/-port from a struct h_redis: ours
     * are in the extra lines, which win */
    {
        struct h_redis r;
        memset(&r, 0, sizeof(r));
        r.port = seed_port;
        r.tls = 1;
        snprintf(r.password, sizeof(r.password), "%s", PW);
        snprintf(r.ca, sizeof(r.ca), "%s", cl.ca);
        ck_assert_int_eq(h_chat_start(c, &r, 1, chat_conf), 0);
    }
    ASSERT_LOG(h_wait_log(c->log, "redis link up", 15000), c->log);
}

/* A room name whose channel chat:{name} hashes to a slot that the primary
 * on port serves, and, when below >= 0, to a slot below that number. */
static void room_on(int port, int below, char *out, size_t cap)
{
    char ch[96];
    int i;

    for (i = 0; i < 100000; i++) {
        unsigned slot;
        snprintf(out, cap, "r%d", i);
        snprintf(ch, sizeof(ch), "chat:{%s}", out);
        slot = cluster_key_slot(ch, strlen(ch));
        if ((below < 0 || slot < (unsigned)below) && h_cluster_slot_owner(&cl, (int)slot) == port)
            return;
    }
    ck_abort_msg("no room name for the primary on %d", port);
}

static int room_slot(const char *room)
{
    char ch[96];

    snprintf(ch, sizeof(ch), "chat:{%s}", room);
    return (int)cluster_key_slot(ch, strlen(ch));
}

static struct tr_ids *stream_ids(const char *room)
{
    static char out[1 << 20];
    struct tr_ids *g = calloc(1, sizeof(*g));
    int owner = h_cluster_slot_owner(&cl, room_slot(room));

    ck_assert_ptr_nonnull(g);
    ck_assert_int_gt(owner, 0);
    ck_assert_int_eq(h_cluster_cli(&cl, owner, out, sizeof(out), "XRANGE chat:{%s}:history - +",
                                   room),
                     0);
    tr_ids_of_xrange(out, g);
    return g;
}

/* ---- tests ---------------------------------------------------------------------- */

/* A room on each shard, users of each on both instances: every message
 * reaches the other instance's user, the rooms' keys live on their shards,
 * and the default room works as in the seed (classic PUBLISH on `chat`). */
START_TEST(test_rooms_on_every_shard)
{
    static struct h_chat a, b;
    static struct wsc tx[SHARDS], rx[SHARDS], seed_a, seed_b;
    static struct tr_sent s[SHARDS];
    static struct tr_ids got[SHARDS];
    char room[SHARDS][32], out[4096];
    int ports[SHARDS], i, k;

    cluster_up();
    ck_assert_int_eq(h_cluster_primaries(&cl, ports, SHARDS), SHARDS);
    chat_start(&a, ports[0], NULL);
    chat_start(&b, ports[2], NULL);
    for (i = 0; i < SHARDS; i++) {
        room_on(ports[i], -1, room[i], sizeof(room[i]));
        tr_connect(&rx[i], b.port, room[i], "rx");
        tr_connect(&tx[i], a.port, room[i], "tx");
    }
    for (k = 0; k < 20; k++)
        for (i = 0; i < SHARDS; i++) {
            tr_send(&tx[i], &s[i]);
            tr_read_answers(&tx[i], &s[i], 0);
        }
    for (i = 0; i < SHARDS; i++) {
        struct tr_ids *kept;
        ck_assert(tr_all_answered(&tx[i], &s[i], 10000));
        ck_assert_int_eq(tr_acked(&s[i]), 20);
        tr_receive(&rx[i], &got[i], "rx", 1000);
        kept = stream_ids(room[i]);
        ck_assert_int_eq(kept->n, 20);
        ck_assert_int_eq(tr_missing(kept, &got[i]), 0);
        ck_assert_int_eq(got[i].n, 20);
        /* the room's members are kept on its own shard */
        ck_assert_int_eq(h_cluster_cli_node(&cl, ports[i], out, sizeof(out),
                                            "SISMEMBER chat:{%s}:users rx", room[i]),
                         0);
        ck_assert_msg(strncmp(out, "1", 1) == 0, "rx not in room %s on its shard: %s", room[i],
                      out);
        free(kept);
    }
    /* the default room: plain clients on both instances, a seed-era PUBLISH
     * on any node */
    fx_join_settled(&seed_a, a.port, "olda", __LINE__);
    fx_join_settled(&seed_b, b.port, "oldb", __LINE__);
    EXPECT(&seed_a, "oldb: has joined the chat!");
    SEND(&seed_a, "hello from a");
    EXPECT(&seed_b, "olda: hello from a");
    ck_assert_int_eq(h_cluster_cli(&cl, ports[1], out, sizeof(out), "PUBLISH chat seed-era"), 0);
    EXPECT(&seed_a, "seed-era");
    EXPECT(&seed_b, "seed-era");
    ck_assert_int_eq(h_cluster_cli(&cl, ports[0], out, sizeof(out), "SISMEMBER chat-users olda"),
                     0);
    ck_assert_msg(strncmp(out, "1", 1) == 0, "olda not in chat-users: %s", out);
    for (i = 0; i < SHARDS; i++) {
        wsc_free(&tx[i]);
        wsc_free(&rx[i]);
    }
    wsc_free(&seed_a);
    wsc_free(&seed_b);
    h_chat_free(&a);
    h_chat_free(&b);
    h_cluster_free(&cl);
}
END_TEST

/* Steady sends in one room while `disrupt` runs (a resharding of the
 * room's slot, or the kill of its primary); then every message the stream
 * keeps reached both receivers once, nobody was disconnected, and the
 * traffic goes on. */
static void fanout_through(int failover)
{
    static struct h_chat a, b;
    static struct wsc tx, rx_a, rx_b;
    static struct tr_sent s;
    static struct tr_ids got_a, got_b;
    struct tr_ids *kept;
    char room[32];
    int ports[SHARDS], owner, to, acked, done = 0, status;
    pid_t resharder = -1;
    long long start, end;

    cluster_up();
    ck_assert_int_eq(h_cluster_primaries(&cl, ports, SHARDS), SHARDS);
    /* a room in the first slots of its primary: a reshard of the first
     * slots takes it along */
    owner = h_cluster_slot_owner(&cl, 0);
    room_on(owner, 50, room, sizeof(room));
    to = ports[0] == owner ? ports[1] : ports[0];
    chat_start(&a, to, NULL);
    chat_start(&b, ports[2] == owner ? ports[1] : ports[2], NULL);
    tr_connect(&rx_a, a.port, room, "rxa");
    tr_connect(&rx_b, b.port, room, "rxb");
    tr_connect(&tx, a.port, room, "tx");
    while (tr_acked(&s) < STEADY) {
        tr_send(&tx, &s);
        tr_read_answers(&tx, &s, 20);
    }
    start = h_now_ms();
    if (failover) {
        ck_assert_int_eq(h_cluster_kill_node(&cl, owner, SIGKILL), 0);
    } else {
        /* redis-cli --cluster reshard in a child, while we keep sending */
        resharder = fork();
        ck_assert_int_ge(resharder, 0);
        if (resharder == 0)
            _exit(h_cluster_reshard(&cl, 100, owner, to) == 0 ? 0 : 1);
    }
    acked = tr_acked(&s);
    end = h_now_ms() + DISRUPT_MAX_MS;
    while (h_now_ms() < end && (!done || tr_acked(&s) < acked + AFTER)) {
        tr_send(&tx, &s);
        tr_read_answers(&tx, &s, 20);
        h_sleep_ms(5); /* steady, not flat out: about 150 sends a second */
        if (!done && failover && h_cluster_slot_owner(&cl, room_slot(room)) > 0 &&
            h_cluster_slot_owner(&cl, room_slot(room)) != owner)
            done = 1; /* a replica took over the room's slot */
        if (!done && !failover && waitpid(resharder, &status, WNOHANG) == resharder) {
            ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the reshard failed");
            ck_assert_int_eq(h_cluster_slot_owner(&cl, room_slot(room)), to);
            acked = tr_acked(&s); /* AFTER more once it is over */
            done = 1;
        }
    }
    ck_assert_msg(done, "the %s did not end", failover ? "failover" : "reshard");
    ck_assert_msg(tr_acked(&s) >= acked + AFTER, "only %d acked after the %s (%lld ms)",
                  tr_acked(&s) - acked, failover ? "failover" : "reshard", h_now_ms() - start);
    ck_assert(tr_all_answered(&tx, &s, 15000));
    tr_receive(&rx_a, &got_a, "rxa", 1500);
    tr_receive(&rx_b, &got_b, "rxb", 1500);
    kept = stream_ids(room);
    fprintf(stderr,
            "cluster %s: %d sends, %d acked, %d refused; the stream keeps %d; acked but lost %d; "
            "rxa got %d, rxb %d; back %lld ms after the start\n",
            failover ? "failover" : "reshard", s.n, tr_acked(&s), s.n - tr_acked(&s), kept->n,
            tr_lost_acked(&s, kept), got_a.n, got_b.n, h_now_ms() - start);
    ck_assert_int_eq(tr_missing(kept, &got_a), 0);
    ck_assert_int_eq(tr_missing(kept, &got_b), 0);
    if (!failover)
        ck_assert_int_eq(tr_lost_acked(&s, kept), 0); /* a reshard loses nothing */
    free(kept);
    wsc_free(&tx);
    wsc_free(&rx_a);
    wsc_free(&rx_b);
    h_chat_free(&a);
    h_chat_free(&b);
    h_cluster_free(&cl);
}

START_TEST(test_reshard_during_fanout)
{
    fanout_through(0);
}
END_TEST

START_TEST(test_failover_during_fanout)
{
    fanout_through(1);
}
END_TEST

static Suite *cluster_suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("cluster");

    tcase_add_unchecked_fixture(tc, fx_tmp_enter, fx_tmp_leave);
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, test_rooms_on_every_shard);
    tcase_add_test(tc, test_reshard_during_fanout);
    tcase_add_test(tc, test_failover_during_fanout);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(cluster_suite());
}
