/* check_sentinel.c -- redis-chat on Redis Sentinel: a primary, a replica
 * and three sentinels started by the test (TLS and passwords everywhere,
 * one CA), two chat instances that know only the sentinels.
 *
 * The failover tests kill the primary (SIGKILL, no goodbye) during a
 * steady stream of sends in a room and check what users saw against what
 * the new primary holds: everything it has reached every receiver, and
 * the receivers stayed connected. With redis-wait-replicas 1 nothing that
 * was acknowledged may be missing from it either; without, what was
 * acknowledged but lost is the loss window of asynchronous replication,
 * printed (it is a measurement, not a pass/fail figure). The old primary
 * then comes back empty and is made a replica by the sentinels.
 */
#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "traffic.h"
#include "wsclient.h"

#define MASTER "m1"
#define PW "redis-pw"
#define SPW "sentinel-pw"
#define ROOM "ops"
#define N_SENTINELS 3
#define SEND_EVERY_MS 20
#define BEFORE_KILL 50   /* sends acknowledged before the primary dies */
#define AFTER_BACK 50    /* sends acknowledged after the chat is back */
#define FAILOVER_MAX_MS 30000

#define REPLICAS_MAX 2

struct topo {
    struct h_redis primary, replica[REPLICAS_MAX], sentinel[N_SENTINELS];
    int nreplicas;
    char chat_conf[1024]; /* the chat's redis lines */
};

/* ---- the topology ---------------------------------------------------------- */

/* The "field\nvalue\n..." raw output of SENTINEL MASTER: field's value. */
static long sentinel_field(const struct h_redis *s, const char *field)
{
    char out[8192], *p;
    size_t flen = strlen(field);

    if (h_redis_cli(s, out, sizeof(out), "SENTINEL MASTER %s", MASTER) != 0)
        return -1;
    for (p = out; p != NULL && *p != '\0'; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, field, flen) == 0 && p[flen] == '\n')
            return strtol(p + flen + 1, NULL, 10);
    }
    return -1;
}

static int replica_linked(const struct h_redis *r)
{
    char out[8192];

    return h_redis_cli(r, out, sizeof(out), "INFO replication") == 0 &&
           strstr(out, "master_link_status:up") != NULL;
}

static void topo_start(struct topo *t, int nreplicas)
{
    char extra[1024];
    size_t n = 0;
    long long end;
    int i, ok;

    /* every server may become a replica: each can authenticate to the others */
    snprintf(extra, sizeof(extra), "masterauth %s\ntls-replication yes\n", PW);
    ck_assert_int_eq(h_redis_start_conf(&t->primary, 1, PW, extra, 0, NULL), 0);
    snprintf(extra, sizeof(extra),
             "replicaof 127.0.0.1 %d\nmasterauth %s\ntls-replication yes\n", t->primary.port, PW);
    t->nreplicas = nreplicas;
    for (i = 0; i < nreplicas; i++)
        ck_assert_int_eq(h_redis_start_conf(&t->replica[i], 1, PW, extra, 0, &t->primary), 0);
    snprintf(extra, sizeof(extra),
             "sentinel monitor %s 127.0.0.1 %d 2\nsentinel auth-pass %s %s\n"
             "sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 10000\n"
             "sentinel sentinel-pass %s\ntls-replication yes\n",
             MASTER, t->primary.port, MASTER, PW, MASTER, MASTER, SPW);
    for (i = 0; i < N_SENTINELS; i++)
        ck_assert_int_eq(h_redis_start_conf(&t->sentinel[i], 1, SPW, extra, 1, &t->primary), 0);
    /* ready: the replica in sync, every sentinel knowing the replica and
     * the two other sentinels (they meet through hello messages) */
    end = h_now_ms() + 20000;
    do {
        for (ok = 1, i = 0; ok && i < nreplicas; i++)
            ok = replica_linked(&t->replica[i]);
        for (i = 0; ok && i < N_SENTINELS; i++)
            ok = sentinel_field(&t->sentinel[i], "num-slaves") == nreplicas &&
                 sentinel_field(&t->sentinel[i], "num-other-sentinels") == N_SENTINELS - 1;
        if (!ok)
            h_sleep_ms(100);
    } while (!ok && h_now_ms() < end);
    ck_assert_msg(ok, "the sentinels did not see the replica and each other within 20 s");
    n += (size_t)snprintf(t->chat_conf + n, sizeof(t->chat_conf) - n, "redis-sentinel");
    for (i = 0; i < N_SENTINELS; i++)
        n += (size_t)snprintf(t->chat_conf + n, sizeof(t->chat_conf) - n, " 127.0.0.1:%d",
                              t->sentinel[i].port);
    snprintf(t->chat_conf + n, sizeof(t->chat_conf) - n,
             "\nredis-sentinel-master %s\nredis-sentinel-password %s\n", MASTER, SPW);
}

static void topo_stop(struct topo *t)
{
    int i;

    for (i = 0; i < N_SENTINELS; i++)
        h_redis_free(&t->sentinel[i]);
    for (i = 0; i < t->nreplicas; i++)
        h_redis_free(&t->replica[i]);
    h_redis_free(&t->primary);
}

/* The replica the sentinels promoted (ROLE says master), waiting for it. */
static struct h_redis *topo_promoted(struct topo *t)
{
    long long end = h_now_ms() + 10000;
    char out[256];
    int i;

    do {
        for (i = 0; i < t->nreplicas; i++)
            if (h_redis_cli(&t->replica[i], out, sizeof(out), "ROLE") == 0 &&
                strncmp(out, "master", 6) == 0)
                return &t->replica[i];
        h_sleep_ms(100);
    } while (h_now_ms() < end);
    ck_abort_msg("no replica was promoted");
    return NULL;
}

static void chat_start(struct h_chat *c, const struct topo *t, const char *more)
{
    char conf[2048];

    snprintf(conf, sizeof(conf), "%s%s", t->chat_conf, more != NULL ? more : "");
    ck_assert_int_eq(h_chat_start(c, &t->primary, 1, conf), 0);
    ASSERT_LOG(h_wait_log(c->log, "redis link up", 10000), c->log);
}

/* The room's stream on r, its entry ids. */
static struct tr_ids *stream_ids(const struct h_redis *r)
{
    static char out[1 << 20];
    char *const words[] = {(char *)"XRANGE", (char *)"chat:{" ROOM "}:history", (char *)"-",
                           (char *)"+", NULL};
    struct tr_ids *g = calloc(1, sizeof(*g));

    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(h_redis_cliv(r, out, sizeof(out), words), 0);
    tr_ids_of_xrange(out, g);
    return g;
}

/* ---- the tests --------------------------------------------------------------- */

/* Kill the primary in the middle of a steady stream of sends (one user on
 * each of two instances listening); wait_replicas is the chat's
 * redis-wait-replicas. */
static void failover_during_fanout(int wait_replicas)
{
    static struct topo t;
    static struct h_chat a, b;
    static struct wsc alice, bob, carol;
    static struct tr_sent s;
    static struct tr_ids gb, gc;
    struct tr_ids *kept;
    struct h_redis *promoted;
    char more[128];
    long long killed_at, back_at = 0, end;
    int i, lost_acked = 0, missing_b = 0, missing_c = 0, acked_before, restarted = 0;

    memset(&s, 0, sizeof(s));
    memset(&gb, 0, sizeof(gb));
    memset(&gc, 0, sizeof(gc));
    /* WAIT needs a replica after the failover too: a second one, which the
     * sentinels point at the new primary as part of the failover */
    topo_start(&t, wait_replicas > 0 ? 2 : 1);
    /* history-size: nothing trimmed, a message missing from the stream is lost */
    snprintf(more, sizeof(more), "redis-wait-replicas %d\nredis-wait-timeout 500ms\nrate-limit 0\nhistory-size 100000\n",
             wait_replicas);
    chat_start(&a, &t, more);
    chat_start(&b, &t, more);
    tr_connect(&bob, a.port, ROOM, "bob");
    tr_connect(&carol, b.port, ROOM, "carol");
    tr_connect(&alice, a.port, ROOM, "alice");

    while (tr_acked(&s) < BEFORE_KILL) {
        tr_send(&alice, &s);
        tr_read_answers(&alice, &s, SEND_EVERY_MS);
    }
    ck_assert_msg(tr_acked(&s) == s.n || s.n - tr_acked(&s) < 5,
                  "sends refused before the failover");
    acked_before = tr_acked(&s);
    killed_at = h_now_ms();
    ck_assert_int_eq(kill(t.primary.pid, SIGKILL), 0);

    /* keep sending through the failover until AFTER_BACK more are acked */
    end = killed_at + FAILOVER_MAX_MS;
    while (h_now_ms() < end) {
        int acked = tr_acked(&s);
        tr_send(&alice, &s);
        tr_read_answers(&alice, &s, SEND_EVERY_MS);
        /* the old primary comes back (empty: no persistence), the sentinels
         * make it a replica of the new one; the chat must not go back to it,
         * and WAIT has a replica to count again */
        if (!restarted && h_file_contains(a.log, "+switch-master")) {
            ck_assert_int_eq(h_redis_restart(&t.primary), 0);
            restarted = 1;
        }
        if (back_at == 0 && tr_acked(&s) > acked && h_file_contains(a.log, "+switch-master"))
            back_at = h_now_ms();
        if (back_at != 0 && tr_acked(&s) >= acked_before + AFTER_BACK)
            break;
    }
    if (back_at == 0)
        fprintf(stderr, "no ack after the failover: %d sends, %d acked, %d answered\n", s.n,
                tr_acked(&s), s.answered);
    ASSERT_LOG(back_at != 0, a.log);
    ck_assert_msg(tr_acked(&s) >= acked_before + AFTER_BACK,
                  "only %d of %d sends acked after the failover", tr_acked(&s) - acked_before,
                  AFTER_BACK);
    /* every send gets its answer */
    if (!tr_all_answered(&alice, &s, 15000)) {
        for (i = 0; i < s.n; i++)
            if (s.id[i][0] == '\0' && !s.refused[i])
                fprintf(stderr, "send %d (of %d) never answered\n", i, s.n);
        h_dump_tail(a.log, 60);
    }
    ck_assert_msg(s.answered == s.n, "%d of %d sends never answered", s.n - s.answered, s.n);

    tr_receive(&bob, &gb, "bob", 1500);
    tr_receive(&carol, &gc, "carol", 1500);
    promoted = topo_promoted(&t);
    kept = stream_ids(promoted);
    missing_b = tr_missing(kept, &gb);
    missing_c = tr_missing(kept, &gc);
    lost_acked = tr_lost_acked(&s, kept);
    fprintf(stderr,
            "sentinel failover (redis-wait-replicas %d): %d sends, %d acked, %d refused; "
            "chat back %lld ms after the kill; the new primary keeps %d; acked but lost: %d; "
            "bob got %d, carol %d\n",
            wait_replicas, s.n, tr_acked(&s), s.n - tr_acked(&s), back_at - killed_at,
            kept->n, lost_acked, gb.n, gc.n);
    ck_assert_msg(missing_b == 0 && missing_c == 0,
                  "kept by the new primary but not delivered: bob %d, carol %d", missing_b,
                  missing_c);
    if (wait_replicas > 0)
        ck_assert_msg(lost_acked == 0, "%d acknowledged message(s) lost with WAIT", lost_acked);
    /* the new primary has the instance's users, and knows the chat's keys */
    ck_assert(fx_set_wait(promoted, "chat:{" ROOM "}:users", "alice", 1, 5000));
    free(kept);
    wsc_free(&alice);
    wsc_free(&bob);
    wsc_free(&carol);
    h_chat_free(&a);
    h_chat_free(&b);
    topo_stop(&t);
}

START_TEST(test_failover_during_fanout)
{
    failover_during_fanout(0);
}
END_TEST

START_TEST(test_failover_with_wait)
{
    failover_during_fanout(1);
}
END_TEST

/* SENTINEL FAILOVER with the old primary alive: the instance follows the
 * +switch-master (its connections to the old primary are not lost) and
 * what is said next is stored on the new primary. */
START_TEST(test_manual_failover_followed)
{
    static struct topo t;
    static struct h_chat a;
    static struct wsc alice, bob;
    static struct tr_sent s;
    static struct tr_ids got;
    char out[256];
    long long end;

    topo_start(&t, 1);
    chat_start(&a, &t, NULL);
    tr_connect(&bob, a.port, ROOM, "bob");
    tr_connect(&alice, a.port, ROOM, "alice");
    ck_assert_int_eq(h_redis_cli(&t.sentinel[0], out, sizeof(out), "SENTINEL FAILOVER %s", MASTER),
                     0);
    ck_assert_msg(strncmp(out, "OK", 2) == 0, "SENTINEL FAILOVER: %s", out);
    ASSERT_LOG(h_wait_log(a.log, "+switch-master", 15000), a.log);
    ASSERT_LOG(h_wait_count(a.log, "redis link up", 2, 10000), a.log);
    /* sends go to the new primary now (the old one is a replica of it) */
    end = h_now_ms() + 10000;
    while (tr_acked(&s) < 3 && h_now_ms() < end) {
        tr_send(&alice, &s);
        tr_read_answers(&alice, &s, 200);
    }
    ck_assert_int_ge(tr_acked(&s), 3);
    ck_assert_int_ge(fx_redis_int(topo_promoted(&t), "XLEN chat:{" ROOM "}:history"), 3);
    tr_receive(&bob, &got, "bob", 1000);
    ck_assert_int_ge(got.n, 3);
    wsc_free(&alice);
    wsc_free(&bob);
    h_chat_free(&a);
    topo_stop(&t);
}
END_TEST

/* What the log says when the sentinels cannot help: a wrong sentinel
 * password, a master name they do not know, no sentinel reachable. The
 * chat stays unavailable (and says so) rather than guessing. */
START_TEST(test_sentinel_refusals_named)
{
    static struct topo t;
    static struct h_chat a, b, c;
    char conf[1024];
    int dead = h_free_port();

    topo_start(&t, 1);
    snprintf(conf, sizeof(conf), "%s", t.chat_conf);
    *strstr(conf, SPW) = 'X'; /* a wrong sentinel password */
    ck_assert_int_eq(h_chat_start(&a, &t.primary, 1, conf), 0);
    ASSERT_LOG(h_wait_log(a.log, "AUTH (redis-sentinel-password) failed", 10000), a.log);
    ASSERT_LOG(h_wait_log(a.log, "none of 3 sentinel(s) named the primary 'm1'", 10000),
               a.log);
    ck_assert(!h_file_contains(a.log, "redis link up"));

    snprintf(conf, sizeof(conf), "%s", t.chat_conf);
    memcpy(strstr(conf, "master " MASTER) + 7, "m9", 2); /* unknown master */
    ck_assert_int_eq(h_chat_start(&b, &t.primary, 1, conf), 0);
    ASSERT_LOG(h_wait_log(b.log, "does not monitor a master named 'm9'", 10000), b.log);
    ck_assert(!h_file_contains(b.log, "redis link up"));

    snprintf(conf, sizeof(conf),
             "redis-sentinel 127.0.0.1:%d\nredis-sentinel-master %s\n", dead, MASTER);
    ck_assert_int_eq(h_chat_start(&c, &t.primary, 1, conf), 0);
    ASSERT_LOG(h_wait_log(c.log, "cannot connect", 10000), c.log);
    ASSERT_LOG(h_wait_log(c.log, "none of 1 sentinel(s) named the primary", 10000), c.log);
    h_chat_free(&a);
    h_chat_free(&b);
    h_chat_free(&c);
    topo_stop(&t);
}
END_TEST

static Suite *sentinel_suite(void)
{
    Suite *s = suite_create("sentinel");
    TCase *tc = tcase_create("sentinel");

    tcase_add_unchecked_fixture(tc, fx_tmp_enter, fx_tmp_leave);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sentinel_refusals_named);
    tcase_add_test(tc, test_manual_failover_followed);
    tcase_add_test(tc, test_failover_during_fanout);
    tcase_add_test(tc, test_failover_with_wait);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(sentinel_suite());
}
