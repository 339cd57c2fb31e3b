/* check_chat_errors.c -- the chat's error paths end to end against the real
 * binary and a real redis-server (TLS + password): bad handshakes and their
 * HTTP statuses, the handshake timeout, WebSocket close codes, a slow reader
 * dropped at its cap, keepalive pings, Redis down at start, Redis lost under
 * connected users (outbox, refusals, names kept). The happy paths are in
 * check_chat.c. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define T_REDIS_BACK_MS 12000 /* Redis back up: retries back off up to 5 s + jitter */

#define SLOW_MSG_BYTES 1000
#define SLOW_BATCH 20
#define SLOW_MAX_MSGS 20000 /* 20 MB: far past any socket buffer */
#define SLOW_AFTER_DROP 200 /* messages still checked at "fast" after the drop */

static struct h_redis redis;
static struct h_chat lim; /* max-message-size 1k, max-pending-bytes 64k */
static struct h_chat ka;  /* ping-interval ka_ms */
/* 300 ms; 1.5 s with every server process under valgrind, where a worker's
 * first upgrade alone can take longer than two 300 ms intervals, during
 * which the test (blocked in a connect) cannot answer a1's and a2's pings */
static long ka_ms;

#define USERS_KEY "chat-users"

/* a join notice published just before this user's own may follow its welcome */
#define JOIN(c, port, name) fx_join_settled((c), (port), (name), __LINE__)

static void errors_setup(void)
{
    char conf[64];

    /* tests that start servers of their own put them below the fixture's
     * temp dir (TMPDIR), which is removed even when a test fails */
    fx_tmp_enter();
    ck_assert_int_eq(h_redis_start(&redis, 1, "s3cret"), 0);
    /* the slow-reader test sends thousands of messages in a few seconds */
    fx_chat_ready(&lim, &redis, 2,
                  "max-message-size 1k\nmax-pending-bytes 64k\n"
                  "rate-limit 10000\nrate-limit-burst 10000\n");
    ka_ms = getenv("REDIS_CHAT_VALGRIND") != NULL ? 1500 : 300;
    snprintf(conf, sizeof(conf), "ping-interval %ldms\n", ka_ms);
    fx_chat_ready(&ka, &redis, 2, conf);
}

static void errors_teardown(void)
{
    h_chat_free(&lim);
    h_chat_free(&ka);
    h_redis_free(&redis);
    fx_tmp_leave();
}

/* ---- handshake --------------------------------------------------------- */

/* Send request as it is; the status, with the answer left in *c (caller frees). */
static int raw_status(struct wsc *c, const char *request)
{
    return wsc_connect_raw(c, lim.port, request, T_MSG_MS);
}

#define UPGRADE_HEAD(path, version, key)                                                    \
    "GET " path " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"                   \
    "Connection: Upgrade\r\nSec-WebSocket-Key: " key "\r\nSec-WebSocket-Version: " version \
    "\r\n\r\n"

/* An upgrade to path is refused with `want` and a reason in the body. */
static void upgrade_refused(const char *path, int want)
{
    struct wsc c;
    int st = wsc_connect(&c, lim.port, path, NULL, T_MSG_MS);

    ck_assert_msg(st == want, "%s: HTTP %d, want %d", path, st, want);
    ck_assert_msg(c.bodylen > 0, "%s: HTTP %d without a reason", path, st);
    wsc_free(&c);
}

START_TEST(test_handshake_errors)
{
    char big[9300], name33[6 + 33 + 1];
    struct wsc c;
    int n;

    ck_assert_int_eq(raw_status(&c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
    ck_assert_msg(strncmp(c.body, "you are good to go!", 19) == 0, "body: %s", c.body);
    wsc_free(&c);
    ck_assert_int_eq(raw_status(&c, "GET /chat/x HTTP/1.1\r\nHost: x\r\n\r\n"), 426);
    wsc_free(&c);
    upgrade_refused("/foo", 404);

    ck_assert_int_eq(raw_status(&c, UPGRADE_HEAD("/chat/x", "8", "dGhlIHNhbXBsZSBub25jZQ==")),
                     426);
    ck_assert_msg(strstr(c.head, "\r\nSec-WebSocket-Version: 13\r\n") != NULL, "%s", c.head);
    wsc_free(&c);
    /* "abc" and 15 bytes in base64: not a 16-byte key */
    ck_assert_int_eq(raw_status(&c, UPGRADE_HEAD("/chat/x", "13", "abc")), 400);
    wsc_free(&c);
    ck_assert_int_eq(raw_status(&c, UPGRADE_HEAD("/chat/x", "13", "dGhlIHNhbXBsZSBub25j")),
                     400);
    wsc_free(&c);

    upgrade_refused("/chat/", 400);
    upgrade_refused("/chat/a%3Ab", 400);  /* ':' */
    upgrade_refused("/chat/a%20b", 400);  /* space */
    upgrade_refused("/chat/%ZZ", 400);    /* bad escape */
    upgrade_refused("/chat/%C3%28", 400); /* bad UTF-8 */
    memcpy(name33, "/chat/", 6);
    memset(name33 + 6, 'n', 33);
    name33[6 + 33] = '\0';
    upgrade_refused(name33, 400);
    name33[6 + 32] = '\0'; /* 32 characters are fine */
    JOIN(&c, lim.port, name33 + 6);
    wsc_free(&c);

    ck_assert_int_eq(raw_status(&c, "POST /chat/x HTTP/1.1\r\nHost: x\r\n"
                                    "Content-Length: 0\r\n\r\n"), 405);
    wsc_free(&c);
    n = snprintf(big, sizeof(big), "GET /chat/x HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    memset(big + n, 'p', 9000);
    memcpy(big + n + 9000, "\r\n\r\n", 5);
    ck_assert_int_eq(raw_status(&c, big), 431);
    wsc_free(&c);
    ck_assert_int_eq(raw_status(&c, "garbage\r\n\r\n"), 400);
    wsc_free(&c);

    /* percent-encoded UTF-8 letters make a valid name */
    ck_assert_int_eq(wsc_connect(&c, lim.port, "/chat/%E6%97%A5", NULL, T_MSG_MS), 101);
    EXPECT(&c, "Welcome \xE6\x97\xA5!");
    wsc_free(&c);
}
END_TEST

/* handshake-timeout 1s bounds the HTTP upgrade, not a chat session */
START_TEST(test_handshake_timeout)
{
    struct h_chat hs;
    struct wsc c, idle, peer;
    long long t0, dt;

    /* a key and channel of its own: if it dies half-way, its users
     * (never removed) do not haunt the following tests */
    fx_chat_ready(&hs, &redis, 2, "handshake-timeout 1s\nusers-key hs-users\nchannel hs-chat\n");
    t0 = h_now_ms();

    /* half a request head, then silence: dropped after about a second */
    ck_assert_int_eq(wsc_connect_raw(&c, hs.port, "GET /chat/x HTTP/1.1\r\nHost: x\r\n", 5000),
                     -1);
    dt = h_now_ms() - t0;
    ck_assert_msg(dt >= 800 && dt < 3000, "half a head dropped after %lld ms", dt);
    ck_assert(h_wait_log(hs.log, "handshake timeout", 1000));
    wsc_free(&c);

    JOIN(&peer, hs.port, "peer2");
    JOIN(&idle, hs.port, "idle");
    EXPECT(&peer, "idle: has joined the chat!");
    SEND(&idle, "before the pause");
    EXPECT(&peer, "idle: before the pause");
    /* idle for 2.5 handshake timeouts: nothing may close it */
    ASSERT_LOG(wsc_no_text(&idle, 2500) && !h_file_contains(hs.log, "user=idle: closed"),
               hs.log);
    SEND(&idle, "after the pause");
    EXPECT(&peer, "idle: after the pause");
    wsc_free(&idle);
    wsc_free(&peer);
    h_chat_free(&hs);
}
END_TEST

/* ---- WebSocket frames ---------------------------------------------------- */

START_TEST(test_websocket_errors)
{
    char text[1100], got[1200];
    struct wsc peer, c;

    fx_users_quiesce(&redis, USERS_KEY);

    JOIN(&peer, lim.port, "peer");

    /* max-message-size 1k: 1024 bytes pass, 1025 close with 1009 */
    JOIN(&c, lim.port, "big");
    EXPECT(&peer, "big: has joined the chat!");
    memset(text, 'x', 1025);
    text[1024] = '\0';
    SEND(&c, text);
    ck_assert_int_eq(wsc_recv_text(&peer, got, sizeof(got), T_MSG_MS), 5 + 1024);
    ck_assert(strncmp(got, "big: xxx", 8) == 0 && strcmp(got + 5, text) == 0);
    memset(text, 'x', 1025);
    text[1025] = '\0';
    SEND(&c, text);
    ck_assert_int_eq(wsc_wait_close(&c, T_MSG_MS), 1009);
    EXPECT(&peer, "big: has left the chat!");
    wsc_free(&c);

    JOIN(&c, lim.port, "utf8");
    EXPECT(&peer, "utf8: has joined the chat!");
    ck_assert_int_eq(wsc_send_frame(&c, 1, 0, WSC_OP_TEXT, "ok \xC3\x28", 5, 1), 0);
    ck_assert_int_eq(wsc_wait_close(&c, T_MSG_MS), 1007);
    EXPECT(&peer, "utf8: has left the chat!");
    wsc_free(&c);

    JOIN(&c, lim.port, "bin");
    EXPECT(&peer, "bin: has joined the chat!");
    ck_assert_int_eq(wsc_send_frame(&c, 1, 0, WSC_OP_BINARY, "\x01\x02\x03", 3, 1), 0);
    ck_assert_int_eq(wsc_wait_close(&c, T_MSG_MS), 1003);
    EXPECT(&peer, "bin: has left the chat!");
    wsc_free(&c);

    /* a normal close: echoed with the same code, then TCP closed */
    JOIN(&c, lim.port, "bye");
    EXPECT(&peer, "bye: has joined the chat!");
    ck_assert_int_eq(wsc_send_close(&c, 1000, "done for today"), 0);
    ck_assert_int_eq(wsc_wait_close(&c, T_MSG_MS), 1000);
    ck_assert(c.eof);
    EXPECT(&peer, "bye: has left the chat!");
    wsc_free(&c);
    wsc_free(&peer);
}
END_TEST

/* ---- slow reader ----------------------------------------------------------- */

/* Read from fast until it has heard *got == sent messages of "snd", each the
 * next number; *left is set when slow's leave notice comes by. */
static void slow_fast_catch_up(struct wsc *fast, int sent, int *got, int *left)
{
    char text[SLOW_MSG_BYTES + 64];
    int num;

    while (*got < sent) {
        int r = wsc_recv_text(fast, text, sizeof(text), T_MSG_MS);

        ck_assert_msg(r > 0, "fast: message %d of %d did not come", *got, sent);
        if (strcmp(text, "slow: has left the chat!") == 0) {
            *left = 1;
            continue;
        }
        ck_assert_msg(sscanf(text, "snd: %d ", &num) == 1 && r == 5 + SLOW_MSG_BYTES,
                      "fast: unexpected %.60s", text);
        ck_assert_msg(num == *got, "fast: message %d where %d was due", num, *got);
        (*got)++;
    }
}

START_TEST(test_slow_reader)
{
    char msg[SLOW_MSG_BYTES + 1];
    struct wsc fast, slow, snd;
    int sent = 0, got = 0, left = 0, drop_at = -1, i;

    fx_users_quiesce(&redis, USERS_KEY);

    JOIN(&fast, lim.port, "fast");
    /* slow never reads a byte after its 101: not even its welcome */
    ck_assert_int_eq(wsc_connect(&slow, lim.port, "/chat/slow", NULL, T_MSG_MS), 101);
    EXPECT(&fast, "slow: has joined the chat!");
    JOIN(&snd, lim.port, "snd");
    EXPECT(&fast, "snd: has joined the chat!");

    memset(msg, 'z', SLOW_MSG_BYTES);
    msg[SLOW_MSG_BYTES] = '\0';
    while (sent < SLOW_MAX_MSGS && (drop_at < 0 || sent < drop_at + SLOW_AFTER_DROP)) {
        for (i = 0; i < SLOW_BATCH; i++, sent++) {
            int n = snprintf(msg, sizeof(msg), "%08d ", sent);
            msg[n] = 'z';
            SEND(&snd, msg);
        }
        /* fast keeps up, so only slow can fall behind */
        slow_fast_catch_up(&fast, sent, &got, &left);
        if (drop_at < 0 && h_file_contains(lim.log, "slow reader"))
            drop_at = sent;
    }
    ck_assert_msg(drop_at >= 0, "slow not dropped after %d messages of %d bytes", sent,
                  SLOW_MSG_BYTES);
    ck_assert(h_file_contains(lim.log, "user=slow: slow reader"));
    if (!left)
        EXPECT(&fast, "slow: has left the chat!");
    /* what the kernel still held for slow, then EOF: the server hung up */
    ASSERT_LOG(wsc_wait_eof(&slow, 5000), lim.log);
    ck_assert_int_eq(got, sent);
    QUIET(&fast);
    wsc_free(&slow);
    wsc_free(&snd);
    wsc_free(&fast);
}
END_TEST

/* ---- keepalive --------------------------------------------------------------- */

static void ka_keep(char *log, size_t cap, const char *text)
{
    if (log != NULL && strlen(log) + strlen(text) + 2 < cap)
        strcat(strcat(log, text), "\n");
}

/* Let a1 and a2 answer pings for ms, keeping what each hears in its log
 * (log2 may be NULL). */
static void ka_answer(struct wsc *a1, struct wsc *a2, int ms, char *log1, char *log2, size_t cap)
{
    long long end = h_now_ms() + ms;
    char text[256];
    int r;

    while (h_now_ms() < end) {
        if (wsc_recv_text(a1, text, sizeof(text), 10) > 0)
            ka_keep(log1, cap, text);
        ck_assert_msg(!a1->eof && !a1->close_received, "a1 was dropped (close %d %s)",
                      a1->close_code, a1->close_reason);
        r = wsc_recv_text(a2, text, sizeof(text), 10);
        ck_assert_msg(r >= 0, "a2 was dropped");
        if (r > 0)
            ka_keep(log2, cap, text);
    }
}

START_TEST(test_keepalive)
{
    struct wsc a1, a2, mute;
    struct wsc_frame f;
    char heard[1024] = "", heard2[1024] = "";
    int pings = 0, r;
    long long t0;

    fx_users_quiesce(&redis, USERS_KEY);

    JOIN(&a1, ka.port, "a1");
    /* a1 must keep answering pings while a2's join goes through the broker
     * (slow under valgrind: longer than the two ping intervals a silent
     * client is allowed) */
    ck_assert_int_eq(wsc_connect(&a2, ka.port, "/chat/a2", NULL, T_MSG_MS), 101);
    t0 = h_now_ms();
    while ((strstr(heard2, "Welcome a2!\n") == NULL ||
            strstr(heard, "a2: has joined the chat!\n") == NULL) &&
           h_now_ms() - t0 < T_MSG_MS)
        ka_answer(&a1, &a2, 10, heard, heard2, sizeof(heard));
    ck_assert_msg(strstr(heard2, "Welcome a2!\n") != NULL, "a2 heard: %s", heard2);
    ck_assert_msg(strstr(heard, "a2: has joined the chat!\n") != NULL, "a1 heard: %s", heard);
    /* mute reads frames but never answers a ping, nor sends anything */
    ck_assert_int_eq(wsc_connect(&mute, ka.port, "/chat/mute", NULL, T_MSG_MS), 101);
    t0 = h_now_ms();
    while (h_now_ms() - t0 < 4 * ka_ms) { /* dropped by the second tick: ~2 intervals */
        r = wsc_recv_frame(&mute, &f, 20);
        if (r < 0)
            break;
        pings += r == 1 && f.opcode == WSC_OP_PING;
        ka_answer(&a1, &a2, 10, heard, NULL, sizeof(heard));
    }
    ck_assert_msg(mute.eof, "mute still connected after %lld ms (%d pings)", h_now_ms() - t0,
                  pings);
    ck_assert_int_ge(pings, 1);
    ck_assert(h_wait_log(ka.log, "user=mute: closed: no answer to ping", (int)(3 * ka_ms)));
    wsc_free(&mute);

    /* the answering clients outlive many intervals and still chat */
    ka_answer(&a1, &a2, (int)(5 * ka_ms), heard, NULL, sizeof(heard));
    ck_assert_msg(strstr(heard, "mute: has left the chat!\n") != NULL, "a1 heard: %s", heard);
    SEND(&a1, "still here");
    EXPECT(&a2, "a1: still here");
    ck_assert(!h_file_contains(ka.log, "user=a1: closed"));
    ck_assert(!h_file_contains(ka.log, "user=a2: closed"));
    wsc_free(&a1);
    wsc_free(&a2);
}
END_TEST

/* ---- Redis outages ------------------------------------------------------------ */

/* A refused join: the text, then close 1013. */
static void join_unavailable(int port, const char *name)
{
    struct wsc c;
    char path[64];

    snprintf(path, sizeof(path), "/chat/%s", name);
    ck_assert_int_eq(wsc_connect(&c, port, path, NULL, T_MSG_MS), 101);
    EXPECT(&c, "chat service unavailable, please retry later");
    ck_assert_int_eq(wsc_wait_close(&c, T_MSG_MS), 1013);
    wsc_free(&c);
}

START_TEST(test_redis_down_at_start)
{
    struct h_redis r2;
    struct h_chat c;
    struct wsc foo, bar;
    long long t0;

    /* a Redis of our own, stopped: its port refuses connections */
    ck_assert_int_eq(h_redis_start(&r2, 1, "s3cret"), 0);
    h_redis_stop(&r2);
    ck_assert_int_eq(h_chat_start(&c, &r2, 2, NULL), 0);
    ck_assert(h_wait_count(c.log, "connected (pid", 2, 5000));
    ASSERT_LOG(h_wait_log(c.log, "Connection refused", 5000), c.log);
    join_unavailable(c.port, "early");
    ck_assert(!h_file_contains(c.log, "chat service available"));

    ck_assert_int_eq(h_redis_restart(&r2), 0);
    t0 = h_now_ms();
    ASSERT_LOG(h_wait_count(c.log, "chat service available", 2, T_REDIS_BACK_MS), c.log);
    ck_assert_int_lt(h_now_ms() - t0, 10000);
    JOIN(&foo, c.port, "foo");
    JOIN(&bar, c.port, "bar");
    EXPECT(&foo, "bar: has joined the chat!");
    SEND(&bar, "made it");
    EXPECT(&foo, "bar: made it");
    wsc_free(&foo);
    wsc_free(&bar);
    h_chat_free(&c);
    h_redis_free(&r2);
}
END_TEST

/* A Redis of our own, an instance on it (extra: its config) and foo and bar joined. */
static void outage_start(struct h_redis *r2, struct h_chat *c, const char *extra, struct wsc *foo,
                         struct wsc *bar)
{
    ck_assert_int_eq(h_redis_start(r2, 1, "s3cret"), 0);
    fx_chat_ready(c, r2, 2, extra);
    JOIN(foo, c->port, "foo");
    JOIN(bar, c->port, "bar");
    EXPECT(foo, "bar: has joined the chat!");
}

/* Stop Redis and wait until both workers know. */
static void outage_redis_down(struct h_redis *r2, const struct h_chat *c)
{
    h_redis_stop(r2);
    ck_assert_msg(h_wait_count(c->log, "chat service unavailable (redis down)", 2, 5000),
                  "workers not told that Redis is down");
}

/* Restart Redis and wait until both workers have it again. */
static void outage_redis_up(struct h_redis *r2, const struct h_chat *c)
{
    ck_assert_int_eq(h_redis_restart(r2), 0);
    ASSERT_LOG(h_wait_count(c->log, "chat service available", 4, T_REDIS_BACK_MS), c->log);
}

/* README: users stay connected; a message held longer than outbox-timeout
 * is refused to its sender only, and never delivered later. */
START_TEST(test_redis_lost_while_connected)
{
    struct h_redis r2;
    struct h_chat c;
    struct wsc foo, bar;

    outage_start(&r2, &c, "outbox-timeout 1s\n", &foo, &bar);
    outage_redis_down(&r2, &c);
    SEND(&foo, "anyone there?");
    ck_assert_msg(wsc_expect_text(&foo, "message not delivered: chat service unavailable", 5000),
                  "foo: no refusal of a message held past outbox-timeout");
    QUIET(&bar);
    join_unavailable(c.port, "late");
    QUIET(&foo);

    /* Redis back: the same connections chat again, no rejoin */
    outage_redis_up(&r2, &c);
    SEND(&foo, "back again");
    EXPECT(&bar, "foo: back again"); /* not the refused one first */
    SEND(&bar, "welcome back");
    EXPECT(&foo, "bar: welcome back");
    QUIET(&foo);
    QUIET(&bar);
    wsc_free(&foo);
    wsc_free(&bar);
    h_chat_free(&c);
    h_redis_free(&r2);
}
END_TEST

/* README: messages sent while Redis is down are held and published in order
 * once it is back (within outbox-timeout, 10 s by default). */
START_TEST(test_redis_outbox)
{
    struct h_redis r2;
    struct h_chat c;
    struct wsc foo, bar;

    outage_start(&r2, &c, NULL, &foo, &bar);
    outage_redis_down(&r2, &c);
    SEND(&foo, "held 1");
    SEND(&foo, "held 2");
    SEND(&bar, "held 3");
    QUIET(&foo); /* neither delivered nor refused yet */
    QUIET(&bar);
    outage_redis_up(&r2, &c);
    EXPECT(&bar, "foo: held 1");
    EXPECT(&bar, "foo: held 2");
    EXPECT(&foo, "bar: held 3");
    SEND(&foo, "after");
    EXPECT(&bar, "foo: after");
    QUIET(&foo);
    wsc_free(&foo);
    wsc_free(&bar);
    h_chat_free(&c);
    h_redis_free(&r2);
}
END_TEST

/* README: a restarted Redis lost chat-users; the broker re-adds every user
 * its instance holds, so a connected name stays taken. */
START_TEST(test_redis_restart_keeps_names)
{
    struct h_redis r2;
    struct h_chat c;
    struct wsc foo, bar, dup;

    outage_start(&r2, &c, NULL, &foo, &bar);
    outage_redis_down(&r2, &c);
    outage_redis_up(&r2, &c);
    ck_assert_msg(fx_set_wait(&r2, USERS_KEY, "foo", 1, T_MSG_MS) &&
                      fx_set_wait(&r2, USERS_KEY, "bar", 1, T_MSG_MS),
                  "foo and bar are connected, not back in chat-users after the Redis restart");
    ck_assert_int_eq(wsc_connect(&dup, c.port, "/chat/foo", NULL, T_MSG_MS), 101);
    ck_assert_msg(wsc_wait_close(&dup, T_MSG_MS) == 4409, "a second foo was not refused");
    wsc_free(&dup);
    QUIET(&bar); /* the refused foo neither joined nor left */
    SEND(&foo, "still the only foo");
    EXPECT(&bar, "foo: still the only foo");
    wsc_free(&foo);
    wsc_free(&bar);
    h_chat_free(&c);
    h_redis_free(&r2);
}
END_TEST

static Suite *errors_suite(void)
{
    Suite *s = suite_create("chat_errors");
    TCase *tc = tcase_create("limits");
    TCase *rd = tcase_create("redis-outage");

    tcase_add_unchecked_fixture(tc, errors_setup, errors_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_handshake_errors);
    tcase_add_test(tc, test_handshake_timeout);
    tcase_add_test(tc, test_websocket_errors);
    tcase_add_test(tc, test_slow_reader);
    tcase_add_test(tc, test_keepalive);
    suite_add_tcase(s, tc);

    /* each test runs its own Redis, to stop and restart it */
    tcase_add_unchecked_fixture(rd, fx_tmp_enter, fx_tmp_leave);
    tcase_set_timeout(rd, 60);
    tcase_add_test(rd, test_redis_down_at_start);
    tcase_add_test(rd, test_redis_lost_while_connected);
    tcase_add_test(rd, test_redis_outbox);
    tcase_add_test(rd, test_redis_restart_keeps_names);
    suite_add_tcase(s, rd);
    return s;
}

int main(void)
{
    return check_run(errors_suite());
}
