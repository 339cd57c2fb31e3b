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
#include "wsclient.h"

#define PROTO_HEADER "Sec-WebSocket-Protocol: redis-chat.v1"
#define MASTER "m1"
#define PW "redis-pw"
#define SPW "sentinel-pw"
#define ROOM "ops"
#define N_SENTINELS 3
#define SEND_EVERY_MS 20
#define WINDOW 32 /* sends awaiting their answer, at most (the server takes 64) */
#define BEFORE_KILL 50   /* sends acknowledged before the primary dies */
#define AFTER_BACK 50    /* sends acknowledged after the chat is back */
#define FAILOVER_MAX_MS 30000
#define MSGS_MAX 2000
#define TEXT_MAX 4096

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

/* ---- typed clients ---------------------------------------------------------- */

static json_t *ev_next(struct wsc *c, int timeout_ms, char *text)
{
    int n = wsc_recv_text(c, text, TEXT_MAX, timeout_ms);

    return n > 0 ? json_loads(text, 0, NULL) : NULL;
}

static const char *ev_str(const json_t *ev, const char *key)
{
    const json_t *v = json_object_get(ev, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void tconnect(struct wsc *c, int port, const char *me)
{
    char path[128], text[TEXT_MAX];
    json_t *ev;
    int st;

    snprintf(path, sizeof(path), "/chat/%s/%s?history=0", ROOM, me);
    st = wsc_connect(c, port, path, PROTO_HEADER, T_MSG_MS);
    ck_assert_msg(st == 101, "%s: HTTP %d", path, st);
    ev = ev_next(c, T_MSG_MS, text);
    ck_assert_msg(ev != NULL && strcmp(ev_str(ev, "type"), "welcome") == 0, "%s: no welcome",
                  path);
    json_decref(ev);
}

/* What a sender learned: per send, acked (its msg_id) or refused. */
struct sent {
    int n;
    char id[MSGS_MAX][32]; /* "" until acked */
    int refused[MSGS_MAX];
    int answered;
};

/* Read the sender's acks and errors that are there (no waiting beyond wait_ms). */
static void sender_read(struct wsc *c, struct sent *s, int wait_ms)
{
    char text[TEXT_MAX];
    json_t *ev;

    while ((ev = ev_next(c, wait_ms, text)) != NULL) {
        const char *type = ev_str(ev, "type"), *id = ev_str(ev, "id");
        int i = id != NULL ? atoi(id) : -1;
        wait_ms = 0;
        if (i >= 0 && i < s->n && type != NULL && strcmp(type, "ack") == 0 &&
            ev_str(ev, "msg_id") != NULL) {
            snprintf(s->id[i], sizeof(s->id[i]), "%s", ev_str(ev, "msg_id"));
            s->answered++;
        } else if (i >= 0 && i < s->n && type != NULL && strcmp(type, "error") == 0) {
            s->refused[i] = 1;
            s->answered++;
        }
        json_decref(ev);
    }
}

static void sender_send(struct wsc *c, struct sent *s)
{
    char req[128];

    if (s->n - s->answered >= WINDOW)
        return; /* a client that keeps sending without answers is refused */
    ck_assert_int_lt(s->n, MSGS_MAX);
    snprintf(req, sizeof(req), "{\"type\":\"send\",\"id\":\"%d\",\"text\":\"m%d\"}", s->n, s->n);
    ck_assert_int_eq(wsc_send_text(c, req), 0);
    s->n++;
}

static int acked_count(const struct sent *s)
{
    int i, n = 0;

    for (i = 0; i < s->n; i++)
        n += s->id[i][0] != '\0';
    return n;
}

/* The msg_ids a receiver got (a message twice fails the test). */
struct got {
    int n;
    char id[MSGS_MAX][32];
};

static int got_has(const struct got *g, const char *id)
{
    int i;

    for (i = 0; i < g->n; i++)
        if (strcmp(g->id[i], id) == 0)
            return 1;
    return 0;
}

static void receiver_read(struct wsc *c, struct got *g, const char *who)
{
    char text[TEXT_MAX];
    json_t *ev;

    while ((ev = ev_next(c, 1500, text)) != NULL) {
        const char *type = ev_str(ev, "type"), *id = ev_str(ev, "msg_id");
        if (type != NULL && strcmp(type, "message") == 0 && id != NULL) {
            ck_assert_msg(!got_has(g, id), "%s: message %s twice", who, id);
            ck_assert_int_lt(g->n, MSGS_MAX);
            snprintf(g->id[g->n++], sizeof(g->id[0]), "%s", id);
        }
        json_decref(ev);
    }
    ck_assert_msg(!c->close_received && !c->eof && c->fd != -1,
                  "%s: disconnected (close code %d %s)", who, c->close_code, c->close_reason);
}

/* The ids in the room's stream on r (an XRANGE, raw: each entry's id on a
 * line of its own, then its fields and values), newline-separated. */
static struct got *stream_ids(const struct h_redis *r)
{
    static char out[1 << 20];
    char *const words[] = {(char *)"XRANGE", (char *)"chat:{" ROOM "}:history", (char *)"-",
                           (char *)"+", NULL};
    struct got *g = calloc(1, sizeof(*g));
    char *line, *save = NULL;

    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(h_redis_cliv(r, out, sizeof(out), words), 0);
    for (line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        size_t d1 = strspn(line, "0123456789");
        if (d1 > 0 && line[d1] == '-' && line[d1 + 1 + strspn(line + d1 + 1, "0123456789")] == '\0' &&
            g->n < MSGS_MAX)
            snprintf(g->id[g->n++], sizeof(g->id[0]), "%s", line);
    }
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
    static struct sent s;
    static struct got gb, gc;
    struct got *kept;
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
    snprintf(more, sizeof(more), "redis-wait-replicas %d\nredis-wait-timeout 500ms\nrate-limit 0\n",
             wait_replicas);
    chat_start(&a, &t, more);
    chat_start(&b, &t, more);
    tconnect(&bob, a.port, "bob");
    tconnect(&carol, b.port, "carol");
    tconnect(&alice, a.port, "alice");

    while (acked_count(&s) < BEFORE_KILL) {
        sender_send(&alice, &s);
        sender_read(&alice, &s, SEND_EVERY_MS);
    }
    ck_assert_msg(acked_count(&s) == s.n || s.n - acked_count(&s) < 5,
                  "sends refused before the failover");
    acked_before = acked_count(&s);
    killed_at = h_now_ms();
    ck_assert_int_eq(kill(t.primary.pid, SIGKILL), 0);

    /* keep sending through the failover until AFTER_BACK more are acked */
    end = killed_at + FAILOVER_MAX_MS;
    while (h_now_ms() < end) {
        int acked = acked_count(&s);
        sender_send(&alice, &s);
        sender_read(&alice, &s, SEND_EVERY_MS);
        /* the old primary comes back (empty: no persistence), the sentinels
         * make it a replica of the new one; the chat must not go back to it,
         * and WAIT has a replica to count again */
        if (!restarted && h_file_contains(a.log, "+switch-master")) {
            ck_assert_int_eq(h_redis_restart(&t.primary), 0);
            restarted = 1;
        }
        if (back_at == 0 && acked_count(&s) > acked && h_file_contains(a.log, "+switch-master"))
            back_at = h_now_ms();
        if (back_at != 0 && acked_count(&s) >= acked_before + AFTER_BACK)
            break;
    }
    if (back_at == 0)
        fprintf(stderr, "no ack after the failover: %d sends, %d acked, %d answered\n", s.n,
                acked_count(&s), s.answered);
    ASSERT_LOG(back_at != 0, a.log);
    ck_assert_msg(acked_count(&s) >= acked_before + AFTER_BACK,
                  "only %d of %d sends acked after the failover", acked_count(&s) - acked_before,
                  AFTER_BACK);
    /* every send gets its answer */
    end = h_now_ms() + 15000;
    while (s.answered < s.n && h_now_ms() < end)
        sender_read(&alice, &s, 200);
    if (s.answered != s.n) {
        for (i = 0; i < s.n; i++)
            if (s.id[i][0] == '\0' && !s.refused[i])
                fprintf(stderr, "send %d (of %d) never answered\n", i, s.n);
        h_dump_tail(a.log, 60);
    }
    ck_assert_msg(s.answered == s.n, "%d of %d sends never answered", s.n - s.answered, s.n);

    receiver_read(&bob, &gb, "bob");
    receiver_read(&carol, &gc, "carol");
    promoted = topo_promoted(&t);
    kept = stream_ids(promoted);
    for (i = 0; i < kept->n; i++) {
        missing_b += !got_has(&gb, kept->id[i]);
        missing_c += !got_has(&gc, kept->id[i]);
    }
    for (i = 0; i < s.n; i++)
        lost_acked += s.id[i][0] != '\0' && !got_has(kept, s.id[i]);
    fprintf(stderr,
            "sentinel failover (redis-wait-replicas %d): %d sends, %d acked, %d refused; "
            "chat back %lld ms after the kill; the new primary keeps %d; acked but lost: %d; "
            "bob got %d, carol %d\n",
            wait_replicas, s.n, acked_count(&s), s.n - acked_count(&s), back_at - killed_at,
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
    static struct sent s;
    char out[256], text[TEXT_MAX];
    json_t *ev;
    long long end;
    int got = 0;

    topo_start(&t, 1);
    chat_start(&a, &t, NULL);
    tconnect(&bob, a.port, "bob");
    tconnect(&alice, a.port, "alice");
    ck_assert_int_eq(h_redis_cli(&t.sentinel[0], out, sizeof(out), "SENTINEL FAILOVER %s", MASTER),
                     0);
    ck_assert_msg(strncmp(out, "OK", 2) == 0, "SENTINEL FAILOVER: %s", out);
    ASSERT_LOG(h_wait_log(a.log, "+switch-master", 15000), a.log);
    ASSERT_LOG(h_wait_count(a.log, "redis link up", 2, 10000), a.log);
    /* sends go to the new primary now (the old one is a replica of it) */
    end = h_now_ms() + 10000;
    while (acked_count(&s) < 3 && h_now_ms() < end) {
        sender_send(&alice, &s);
        sender_read(&alice, &s, 200);
    }
    ck_assert_int_ge(acked_count(&s), 3);
    ck_assert_int_ge(fx_redis_int(topo_promoted(&t), "XLEN chat:{" ROOM "}:history"), 3);
    while ((ev = ev_next(&bob, 1000, text)) != NULL) {
        got += ev_str(ev, "type") != NULL && strcmp(ev_str(ev, "type"), "message") == 0;
        json_decref(ev);
    }
    ck_assert_int_ge(got, 3);
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
