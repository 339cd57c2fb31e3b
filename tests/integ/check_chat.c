/* check_chat.c -- the chat end to end: one redis-server (TLS + password) and
 * two redis-chat instances of 2 workers sharing it, driven by raw WebSocket
 * clients and by wscat. Welcome, joins, broadcast without echo, leaves (close
 * frame or dropped TCP), the users SET and the channel in Redis, duplicate
 * names across the cluster, one message order for every receiver. The error
 * paths (handshake, frames, limits, Redis outages) are in check_chat_errors.c. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define T_LEAVE_MS 3000 /* a leave reaching chat-users */
#define USERS_KEY "chat-users"

#define ORD_SENDERS 3  /* clients that send, and record the others */
#define ORD_READERS 3  /* clients that only record */
#define ORD_CLIENTS (ORD_SENDERS + ORD_READERS)
#define ORD_ROUNDS 50  /* messages per sender */

static struct h_redis redis;
static struct h_chat chat_a, chat_b; /* two instances, one Redis */

/* a join notice published just before this user's own may follow its welcome */
#define JOIN(c, port, name) fx_join_settled((c), (port), (name), __LINE__)

/* Started and ready: both workers hold a broker link that reports Redis up.
 * The order test sends bursts far above the default rate limit. One
 * instance writes its broadcasts through io_uring (where the build and the
 * kernel have it), the other with a writev per socket. */
static void chat_instance_start(struct h_chat *c, const char *io_uring)
{
    char conf[256];

    snprintf(conf, sizeof(conf), "rate-limit 10000\nrate-limit-burst 10000\nio-uring %s\n",
             io_uring);
    fx_chat_ready(c, &redis, 2, conf);
}

static void chat_setup(void)
{
    ck_assert_int_eq(h_redis_start(&redis, 1, "s3cret"), 0);
    chat_instance_start(&chat_a, "yes");
    chat_instance_start(&chat_b, "no");
}

static void chat_teardown(void)
{
    h_chat_free(&chat_a);
    h_chat_free(&chat_b);
    h_redis_free(&redis);
}

START_TEST(test_join_broadcast_leave)
{
    struct wsc foo, bar, qux;

    fx_users_quiesce(&redis, USERS_KEY);
    JOIN(&foo, chat_a.port, "foo");
    JOIN(&bar, chat_a.port, "bar");
    EXPECT(&foo, "bar: has joined the chat!");
    QUIET(&bar); /* not told of its own join */

    SEND(&foo, "hello");
    EXPECT(&bar, "foo: hello");
    QUIET(&foo); /* no echo to the sender */

    /* a proper close: the server answers it and the others are told */
    ck_assert_int_eq(wsc_send_close(&bar, 1000, NULL), 0);
    ck_assert_int_eq(wsc_wait_close(&bar, T_MSG_MS), 1000);
    EXPECT(&foo, "bar: has left the chat!");

    /* a dropped TCP connection, no close frame: a leave all the same */
    JOIN(&qux, chat_a.port, "qux");
    EXPECT(&foo, "qux: has joined the chat!");
    wsc_free(&qux);
    EXPECT(&foo, "qux: has left the chat!");
    QUIET(&foo); /* once */
    wsc_free(&foo);
    wsc_free(&bar);
}
END_TEST

START_TEST(test_two_instances)
{
    struct wsc ann, ben, cid;

    fx_users_quiesce(&redis, USERS_KEY);
    JOIN(&ann, chat_a.port, "ann");
    JOIN(&ben, chat_b.port, "ben");
    EXPECT(&ann, "ben: has joined the chat!");
    QUIET(&ben);

    SEND(&ann, "from a to b");
    EXPECT(&ben, "ann: from a to b");
    SEND(&ben, "from b to a");
    EXPECT(&ann, "ben: from b to a");
    QUIET(&ann);
    QUIET(&ben);

    /* a second user on A: both instances hear its join and its messages */
    JOIN(&cid, chat_a.port, "cid");
    EXPECT(&ann, "cid: has joined the chat!");
    EXPECT(&ben, "cid: has joined the chat!");
    SEND(&cid, "to everyone");
    EXPECT(&ann, "cid: to everyone");
    EXPECT(&ben, "cid: to everyone");
    QUIET(&cid);

    /* leaves cross instances: B drops its TCP, then A closes properly */
    wsc_free(&ben);
    EXPECT(&ann, "ben: has left the chat!");
    EXPECT(&cid, "ben: has left the chat!");
    ck_assert_int_eq(wsc_send_close(&ann, 1000, NULL), 0);
    ck_assert_int_eq(wsc_wait_close(&ann, T_MSG_MS), 1000);
    EXPECT(&cid, "ann: has left the chat!");
    wsc_free(&ann);
    wsc_free(&cid);
}
END_TEST

START_TEST(test_redis_keys)
{
    struct wsc dan, eve;
    char out[1024];

    fx_users_quiesce(&redis, USERS_KEY);
    JOIN(&dan, chat_a.port, "dan");
    JOIN(&eve, chat_b.port, "eve");
    /* SADD is answered before the welcome: no waiting here */
    ck_assert(fx_set_has(&redis, USERS_KEY, "dan"));
    ck_assert(fx_set_has(&redis, USERS_KEY, "eve"));
    ck_assert(!fx_set_has(&redis, USERS_KEY, "foo"));

    /* the seed channel, the direct messages' one and the default room's
     * feed (docs/protocol.md); no room channel while nobody is in a room */
    ck_assert_int_eq(h_redis_cli(&redis, out, sizeof(out), "PUBSUB CHANNELS"), 0);
    ck_assert_msg(strlen(out) == strlen("chat\nchat:direct\nchat:{}\n") &&
                      (strncmp(out, "chat\n", 5) == 0 || strstr(out, "\nchat\n") != NULL) &&
                      strstr(out, "chat:direct\n") != NULL && strstr(out, "chat:{}\n") != NULL,
                  "PUBSUB CHANNELS: %s", out);
    /* one subscriber per instance (its broker), not one per worker */
    ck_assert_int_eq(h_redis_cli(&redis, out, sizeof(out), "PUBSUB NUMSUB chat"), 0);
    ck_assert_msg(strcmp(out, "chat\n2\n") == 0, "PUBSUB NUMSUB chat: %s", out);

    ck_assert_int_eq(wsc_send_close(&eve, 1000, NULL), 0);
    ck_assert_int_eq(wsc_wait_close(&eve, T_MSG_MS), 1000);
    ck_assert_msg(fx_set_wait(&redis, USERS_KEY, "eve", 0, T_LEAVE_MS),
                  "eve still in chat-users after leaving");
    ck_assert(fx_set_has(&redis, USERS_KEY, "dan"));
    wsc_free(&dan);
    ck_assert_msg(fx_set_wait(&redis, USERS_KEY, "dan", 0, T_LEAVE_MS),
                  "dan still in chat-users after TCP close");
    wsc_free(&eve);
}
END_TEST

/* A second `name` on port is refused with the text, then close 4409. */
static void dup_refused(int port, const char *name)
{
    struct wsc d;
    char path[128], want[256];

    snprintf(path, sizeof(path), "/chat/%s", name);
    snprintf(want, sizeof(want),
             "username %s is already taken. please retry with a different name", name);
    ck_assert_int_eq(wsc_connect(&d, port, path, NULL, T_MSG_MS), 101);
    ck_assert_msg(wsc_expect_text(&d, want, T_MSG_MS), "no refusal text on port %d", port);
    ck_assert_int_eq(wsc_wait_close(&d, T_MSG_MS), 4409);
    ck_assert_str_eq(d.close_reason, "username already taken");
    wsc_free(&d);
}

START_TEST(test_duplicate_name)
{
    struct wsc foo, hal;

    fx_users_quiesce(&redis, USERS_KEY);
    JOIN(&foo, chat_a.port, "foo");
    JOIN(&hal, chat_b.port, "hal");
    EXPECT(&foo, "hal: has joined the chat!");

    dup_refused(chat_a.port, "foo"); /* same instance */
    dup_refused(chat_b.port, "foo"); /* the other one */
    dup_refused(chat_a.port, "hal");
    /* a refused duplicate neither joined nor left */
    QUIET(&hal);
    QUIET(&foo);
    ck_assert(fx_set_has(&redis, USERS_KEY, "foo"));

    /* the first foo is untouched: it sends and receives */
    SEND(&foo, "still me");
    EXPECT(&hal, "foo: still me");
    SEND(&hal, "hi foo");
    EXPECT(&foo, "hal: hi foo");
    wsc_free(&foo);
    EXPECT(&hal, "foo: has left the chat!");
    wsc_free(&hal);
}
END_TEST

/* One client of the order test: what it heard from the senders, as
 * sender * 1000 + sequence number, in arrival order. */
struct ord_client {
    struct wsc ws;
    char name[16];
    int self;   /* its sender index, -1 for a pure reader */
    int want;   /* messages it must hear */
    int n;
    int got[ORD_SENDERS * ORD_ROUNDS];
};

/* Read what is there for o (up to ms), keeping messages from the senders. */
static void ord_read(struct ord_client *o, int ms)
{
    char text[256];
    int k, i;

    while (o->n < o->want) {
        int r = wsc_recv_text(&o->ws, text, sizeof(text), ms);

        ck_assert_msg(r >= 0, "%s: connection closed", o->name);
        if (r == 0)
            return;
        if (sscanf(text, "ord%d: m%d", &k, &i) != 2)
            continue; /* a join notice */
        ck_assert_msg(k >= 0 && k < ORD_SENDERS && i >= 0 && i < ORD_ROUNDS, "%s", text);
        ck_assert_msg(k != o->self, "%s heard its own message %s", o->name, text);
        o->got[o->n++] = k * 1000 + i;
    }
}

/* o's sequence without the messages of senders a and b, into out. */
static int ord_filter(const struct ord_client *o, int a, int b, int *out)
{
    int i, n = 0;

    for (i = 0; i < o->n; i++)
        if (o->got[i] / 1000 != a && o->got[i] / 1000 != b)
            out[n++] = o->got[i];
    return n;
}

START_TEST(test_message_order)
{
    static struct ord_client cl[ORD_CLIENTS]; /* senders first, then readers */
    int fx[ORD_SENDERS * ORD_ROUNDS], fy[ORD_SENDERS * ORD_ROUNDS];
    int i, k, x, y, nx, ny, last[ORD_SENDERS];
    long long end;

    fx_users_quiesce(&redis, USERS_KEY);
    for (x = 0; x < ORD_CLIENTS; x++) {
        struct ord_client *o = &cl[x];

        o->self = x < ORD_SENDERS ? x : -1;
        o->want = (ORD_SENDERS - (o->self >= 0)) * ORD_ROUNDS;
        snprintf(o->name, sizeof(o->name), x < ORD_SENDERS ? "ord%d" : "rdr%d", x);
        /* senders A B A, readers B A B */
        JOIN(&o->ws, x % 2 == 0 ? chat_a.port : chat_b.port, o->name);
    }
    for (i = 0; i < ORD_ROUNDS; i++)
        for (k = 0; k < ORD_SENDERS; k++) {
            char text[32];

            snprintf(text, sizeof(text), "m%d", i);
            SEND(&cl[k].ws, text);
        }
    end = h_now_ms() + 10000;
    for (;;) {
        int done = 1;

        for (x = 0; x < ORD_CLIENTS; x++) {
            ord_read(&cl[x], 20);
            done &= cl[x].n == cl[x].want;
        }
        if (done || h_now_ms() >= end)
            break;
    }
    for (x = 0; x < ORD_CLIENTS; x++) {
        ck_assert_msg(cl[x].n == cl[x].want, "%s heard %d of %d messages", cl[x].name,
                      cl[x].n, cl[x].want);
        /* each sender's messages in its own order, none twice */
        for (k = 0; k < ORD_SENDERS; k++)
            last[k] = -1;
        for (i = 0; i < cl[x].n; i++) {
            k = cl[x].got[i] / 1000;
            ck_assert_msg(cl[x].got[i] % 1000 == last[k] + 1, "%s: ord%d m%d after m%d",
                          cl[x].name, k, cl[x].got[i] % 1000, last[k]);
            last[k]++;
        }
    }
    /* one global order: any two clients agree on what both heard */
    for (x = 0; x < ORD_CLIENTS; x++)
        for (y = x + 1; y < ORD_CLIENTS; y++) {
            nx = ord_filter(&cl[x], cl[x].self, cl[y].self, fx);
            ny = ord_filter(&cl[y], cl[x].self, cl[y].self, fy);
            ck_assert_int_eq(nx, ny);
            for (i = 0; i < nx; i++)
                ck_assert_msg(fx[i] == fy[i], "%s and %s differ at %d: ord%d m%d / ord%d m%d",
                              cl[x].name, cl[y].name, i, fx[i] / 1000, fx[i] % 1000,
                              fy[i] / 1000, fy[i] % 1000);
        }
    for (x = 0; x < ORD_CLIENTS; x++)
        wsc_free(&cl[x].ws);
}
END_TEST

/* 1 when an executable `name` is on PATH. */
static int on_path(const char *name)
{
    const char *path = getenv("PATH");
    char dir[1024], full[1200];

    while (path != NULL && *path != '\0') {
        size_t n = strcspn(path, ":");

        snprintf(dir, sizeof(dir), "%.*s", (int)n, path);
        snprintf(full, sizeof(full), "%s/%s", n > 0 ? dir : ".", name);
        if (access(full, X_OK) == 0)
            return 1;
        path += n + (path[n] == ':');
    }
    return 0;
}

START_TEST(test_wscat_client)
{
    struct wsc bob;
    char url[128], out[4096];
    /* wscat quits as soon as its stdin ends (h_run gives it /dev/null): feed
     * it an idle pipe that outlives its one-second wait */
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"sleep 3 | wscat \"$@\"",
                    (char *)"sh", (char *)"-c", url, (char *)"-x",
                    (char *)"hello from wscat", (char *)"-w", (char *)"1", NULL};
    int rc;

    ck_assert_msg(on_path("wscat"),
                  "wscat is not on PATH: install it with `npm install -g wscat` (dev.sh does)");
    fx_users_quiesce(&redis, USERS_KEY);
    JOIN(&bob, chat_b.port, "bob");
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/chat/alice", chat_b.port);
    rc = h_run(out, sizeof(out), 20000, argv);
    ck_assert_msg(rc == 0, "wscat exited %d: %s", rc, out);
    ck_assert_msg(strstr(out, "Welcome alice!\n") != NULL, "wscat printed: %s", out);
    /* sent right after the 101, before the join was granted: not lost */
    EXPECT(&bob, "alice: has joined the chat!");
    EXPECT(&bob, "alice: hello from wscat");
    EXPECT(&bob, "alice: has left the chat!");
    wsc_free(&bob);
}
END_TEST

/* announce no: this instance publishes no join or leave notices (its
 * users' names still go in and out of chat-users); messages flow as ever,
 * and an instance with announce yes on the same chat hears no notices of
 * the quiet one's users either. */
START_TEST(test_announce_off)
{
    struct h_chat quiet;
    struct wsc ann, xin, yan;

    fx_chat_ready(&quiet, &redis, 1, "announce no\n");
    fx_users_quiesce(&redis, USERS_KEY);
    JOIN(&ann, chat_a.port, "ann");
    JOIN(&xin, quiet.port, "xin");
    JOIN(&yan, quiet.port, "yan");
    ck_assert(fx_set_has(&redis, USERS_KEY, "xin"));
    ck_assert(fx_set_has(&redis, USERS_KEY, "yan"));
    QUIET(&ann);
    QUIET(&xin);

    SEND(&yan, "no fanfare");
    EXPECT(&xin, "yan: no fanfare");
    EXPECT(&ann, "yan: no fanfare");
    SEND(&ann, "hello quiet ones");
    EXPECT(&xin, "ann: hello quiet ones");
    EXPECT(&yan, "ann: hello quiet ones");

    /* a close frame, and a dropped TCP connection: gone, unannounced */
    ck_assert_int_eq(wsc_send_close(&yan, 1000, NULL), 0);
    ck_assert_int_eq(wsc_wait_close(&yan, T_MSG_MS), 1000);
    ck_assert_msg(fx_set_wait(&redis, USERS_KEY, "yan", 0, T_LEAVE_MS),
                  "yan still in chat-users after leaving");
    wsc_free(&xin);
    ck_assert_msg(fx_set_wait(&redis, USERS_KEY, "xin", 0, T_LEAVE_MS),
                  "xin still in chat-users after TCP close");
    QUIET(&ann);
    wsc_free(&ann);
    wsc_free(&yan);
    ck_assert_int_eq(h_chat_stop(&quiet), 0);
    h_chat_free(&quiet);
}
END_TEST

/* flush-interval: a message after a quiet spell goes out at once; the ones
 * that follow within the interval are held for the next write pass, then
 * all arrive, in order. A long interval makes the hold measurable. */
START_TEST(test_flush_interval)
{
    struct h_chat held;
    struct wsc snd, rcv;
    long long t1, t2;

    fx_chat_ready(&held, &redis, 1, "flush-interval 1s\nannounce no\n");
    fx_users_quiesce(&redis, USERS_KEY);
    JOIN(&rcv, held.port, "rcv");
    JOIN(&snd, held.port, "snd");
    h_sleep_ms(1100); /* nothing written for longer than the interval */

    SEND(&snd, "one");
    EXPECT(&rcv, "snd: one");
    t1 = h_now_ms();
    SEND(&snd, "two");
    SEND(&snd, "three");
    EXPECT(&rcv, "snd: two");
    t2 = h_now_ms();
    EXPECT(&rcv, "snd: three");
    /* held until 1 s after the first pass began; t1 is a little later */
    ck_assert_msg(t2 - t1 >= 700, "second message came %lld ms after the first, not held", t2 - t1);
    QUIET(&snd); /* no echo, held or not */

    wsc_free(&snd);
    wsc_free(&rcv);
    ck_assert_int_eq(h_chat_stop(&held), 0);
    h_chat_free(&held);
}
END_TEST

static Suite *chat_suite(void)
{
    Suite *s = suite_create("chat");
    TCase *tc = tcase_create("chat");

    tcase_add_unchecked_fixture(tc, chat_setup, chat_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_join_broadcast_leave);
    tcase_add_test(tc, test_two_instances);
    tcase_add_test(tc, test_redis_keys);
    tcase_add_test(tc, test_duplicate_name);
    tcase_add_test(tc, test_message_order);
    tcase_add_test(tc, test_wscat_client);
    tcase_add_test(tc, test_announce_off);
    tcase_add_test(tc, test_flush_interval);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(chat_suite());
}
