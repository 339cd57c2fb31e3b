/* check_redis_faults.c -- Redis restarted under connected users, end to end:
 * the broker's outbox holds their messages while Redis is away (in order,
 * up to outbox-size, for at most outbox-timeout), presence is restored in the
 * new Redis (the users SET, the instance's own set, its registration), and
 * /healthz follows Redis down and up. Every test runs its own redis-server
 * (TLS + password), so it may stop it and read its keys without another
 * test's users in the way. What a user is told when Redis is down at start
 * or while sending is in check_chat_errors.c. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define T_REDIS_BACK_MS 12000 /* Redis back up: retries back off up to 5 s + jitter */
#define T_HEALTH_DOWN_MS 5000 /* /healthz turns 503 this soon after Redis stops */
#define TEXT_MAX 512

#define NOT_DELIVERED "message not delivered: chat service unavailable"
#define USERS_KEY "chat-users"

#define JOIN(c, port, name) fx_join((c), (port), (name), NULL, __LINE__)

/* Stop Redis and wait until the broker has noticed. */
static void redis_down(struct h_redis *r, const struct h_chat *c)
{
    int before = h_count_in_file(c->log, "redis link down");

    h_redis_stop(r);
    ASSERT_LOG(h_wait_count(c->log, "redis link down", before + 1, 5000), c->log);
}

/* ---- Redis restarted ------------------------------------------------------ */

/* Messages sent while Redis is away are held by the broker (outbox-size 1000,
 * outbox-timeout 10s by default) and published in order once it is back. */
START_TEST(test_redis_restart_outbox)
{
    struct h_redis r;
    struct h_chat c;
    struct wsc a, b;
    char text[64];
    long long t0;
    int i;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&c, &r, 2, NULL);
    JOIN(&a, c.port, "alice");
    JOIN(&b, c.port, "bob");
    EXPECT(&a, "bob: has joined the chat!");

    redis_down(&r, &c);
    t0 = h_now_ms();
    for (i = 1; i <= 5; i++) {
        snprintf(text, sizeof(text), "held %d", i);
        SEND(&a, text);
    }
    ck_assert_msg(wsc_no_text(&a, T_QUIET_MS),
                  "alice was answered at once while Redis is down: messages are to be held "
                  "(outbox-size 1000, outbox-timeout 10s)");
    ck_assert_int_eq(h_redis_restart(&r), 0);
    for (i = 1; i <= 5; i++) {
        snprintf(text, sizeof(text), "alice: held %d", i);
        ASSERT_LOG(wsc_expect_text(&b, text, i == 1 ? T_REDIS_BACK_MS : T_MSG_MS), c.log);
    }
    ck_assert_int_lt(h_now_ms() - t0, 10000);
    QUIET(&a);
    QUIET(&b);
    SEND(&a, "live again");
    EXPECT(&b, "alice: live again");
    wsc_free(&a);
    wsc_free(&b);
    h_chat_free(&c);
    h_redis_free(&r);
}
END_TEST

/* A restarted Redis has an empty data set: the broker adds its users back
 * and registers the instance again. */
START_TEST(test_redis_restart_presence)
{
    struct h_redis r;
    struct h_chat c;
    struct wsc a, b;
    char id[64], key[128];

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&c, &r, 2, NULL);
    fx_instance_id(c.log, id, sizeof(id));
    JOIN(&a, c.port, "alice");
    JOIN(&b, c.port, "bob");
    EXPECT(&a, "bob: has joined the chat!");
    ck_assert(fx_set_has(&r, USERS_KEY, "alice") && fx_set_has(&r, USERS_KEY, "bob"));

    redis_down(&r, &c);
    ck_assert_int_eq(h_redis_restart(&r), 0);
    ASSERT_LOG(h_wait_count(c.log, "redis link up", 2, T_REDIS_BACK_MS), c.log);
    ck_assert_msg(fx_set_wait(&r, USERS_KEY, "alice", 1, 3000), "alice not in chat-users again");
    ck_assert_msg(fx_set_wait(&r, USERS_KEY, "bob", 1, 3000), "bob not in chat-users again");
    ck_assert_int_eq(fx_redis_int(&r, "SCARD " USERS_KEY), 2);
    snprintf(key, sizeof(key), USERS_KEY ":instance:%s", id);
    ck_assert(fx_set_wait(&r, key, "alice", 1, 3000) && fx_set_wait(&r, key, "bob", 1, 3000));
    ck_assert_msg(fx_set_wait(&r, USERS_KEY ":instances", id, 1, 3000), "instance not registered");

    ASSERT_LOG(h_wait_count(c.log, "chat service available", 4, T_MSG_MS), c.log);
    QUIET(&a);
    QUIET(&b);
    SEND(&a, "still here");
    EXPECT(&b, "alice: still here");
    wsc_free(&a);
    wsc_free(&b);
    h_chat_free(&c);
    h_redis_free(&r);
}
END_TEST

/* outbox-timeout 1s: a held message not sent within a second is dropped and
 * its sender told, once per message; it never goes out later. */
START_TEST(test_outbox_timeout)
{
    struct h_redis r;
    struct h_chat c;
    struct wsc a, b;
    char got[TEXT_MAX];
    long long t0, ms;
    int i, n;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&c, &r, 2, "outbox-timeout 1s\n");
    JOIN(&a, c.port, "alice");
    JOIN(&b, c.port, "bob");
    EXPECT(&a, "bob: has joined the chat!");

    redis_down(&r, &c);
    t0 = h_now_ms();
    SEND(&a, "lost 1");
    SEND(&a, "lost 2");
    SEND(&a, "lost 3");
    for (i = 0; i < 3; i++) {
        n = wsc_recv_text(&a, got, sizeof(got), T_MSG_MS);
        ms = h_now_ms() - t0;
        ck_assert_msg(n > 0 && strcmp(got, NOT_DELIVERED) == 0,
                      "message %d: alice got \"%s\" (%d) after %lld ms", i + 1, got, n, ms);
        ck_assert_msg(ms >= 800, "message %d refused after %lld ms: not held for outbox-timeout 1s",
                      i + 1, ms);
        ck_assert_msg(ms <= 2500, "message %d refused only after %lld ms", i + 1, ms);
    }
    QUIET(&a); /* one notice per message */
    QUIET(&b);

    ck_assert_int_eq(h_redis_restart(&r), 0);
    ASSERT_LOG(h_wait_count(c.log, "chat service available", 4, T_REDIS_BACK_MS), c.log);
    SEND(&a, "fresh");
    EXPECT(&b, "alice: fresh"); /* a dropped message would come first */
    QUIET(&b);
    QUIET(&a);
    wsc_free(&a);
    wsc_free(&b);
    h_chat_free(&c);
    h_redis_free(&r);
}
END_TEST

/* outbox-size 2: two messages are held, the third is refused at once; the
 * two go out when Redis is back. */
START_TEST(test_outbox_size)
{
    struct h_redis r;
    struct h_chat c;
    struct wsc a, b;
    char got[TEXT_MAX];
    long long t0, ms;
    int n;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&c, &r, 2, "outbox-size 2\n");
    JOIN(&a, c.port, "alice");
    JOIN(&b, c.port, "bob");
    EXPECT(&a, "bob: has joined the chat!");

    redis_down(&r, &c);
    SEND(&a, "m1");
    SEND(&a, "m2");
    ck_assert_msg(wsc_no_text(&a, T_QUIET_MS), "a message within outbox-size 2 was refused");
    t0 = h_now_ms();
    SEND(&a, "m3");
    n = wsc_recv_text(&a, got, sizeof(got), T_MSG_MS);
    ms = h_now_ms() - t0;
    ck_assert_msg(n > 0 && strcmp(got, NOT_DELIVERED) == 0, "m3: alice got \"%s\" (%d)", got, n);
    ck_assert_msg(ms < 500, "m3 refused only after %lld ms, not at once", ms);
    QUIET(&a);

    ck_assert_int_eq(h_redis_restart(&r), 0);
    ASSERT_LOG(wsc_expect_text(&b, "alice: m1", T_REDIS_BACK_MS), c.log);
    EXPECT(&b, "alice: m2");
    QUIET(&b); /* not m3 */
    QUIET(&a);
    wsc_free(&a);
    wsc_free(&b);
    h_chat_free(&c);
    h_redis_free(&r);
}
END_TEST

/* ---- /healthz ------------------------------------------------------------------ */

static int health(int port, char *body, size_t cap)
{
    struct wsc c;
    int st = wsc_connect_raw(&c, port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", T_MSG_MS);

    snprintf(body, cap, "%.*s", (int)c.bodylen, c.body);
    wsc_free(&c);
    return st;
}

/* Wait until `n` requests in a row (whichever worker takes them) answer
 * `status`; the last body in body. Returns the time it took or -1. */
static long long health_wait(int port, int status, int n, int timeout_ms, char *body, size_t cap)
{
    long long t0 = h_now_ms();
    int row = 0;

    while (row < n) {
        if (h_now_ms() - t0 > timeout_ms) {
            fprintf(stderr, "health_wait: no %d x HTTP %d within %d ms (last body \"%s\")\n", n,
                    status, timeout_ms, body);
            return -1;
        }
        row = health(port, body, cap) == status ? row + 1 : 0;
        if (row == 0)
            h_sleep_ms(50);
    }
    return h_now_ms() - t0;
}

START_TEST(test_healthz)
{
    struct h_redis r;
    struct h_chat c;
    char body[WSC_BODY_MAX + 1] = "";
    long long ms;
    int i;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&c, &r, 2, NULL);
    for (i = 0; i < 4; i++) { /* both workers, Redis up */
        ck_assert_int_eq(health(c.port, body, sizeof(body)), 200);
        ck_assert_str_eq(body, "ok\n");
    }

    h_redis_stop(&r);
    ms = health_wait(c.port, 503, 4, T_HEALTH_DOWN_MS, body, sizeof(body));
    ASSERT_LOG(ms >= 0, c.log);
    ck_assert_msg(strstr(body, "redis") != NULL, "503 body \"%s\" does not name redis", body);

    ck_assert_int_eq(h_redis_restart(&r), 0);
    ASSERT_LOG(health_wait(c.port, 200, 4, T_REDIS_BACK_MS, body, sizeof(body)) >= 0, c.log);
    ck_assert_str_eq(body, "ok\n");
    h_chat_free(&c);
    h_redis_free(&r);
}
END_TEST


static Suite *redis_faults_suite(void)
{
    Suite *s = suite_create("redis_faults");
    TCase *rd = tcase_create("redis");

    /* each test runs its own Redis and instances below the fixture's dir */
    tcase_add_unchecked_fixture(rd, fx_tmp_enter, fx_tmp_leave);
    tcase_set_timeout(rd, 60);
    tcase_add_test(rd, test_redis_restart_outbox);
    tcase_add_test(rd, test_redis_restart_presence);
    tcase_add_test(rd, test_outbox_timeout);
    tcase_add_test(rd, test_outbox_size);
    tcase_add_test(rd, test_healthz);
    suite_add_tcase(s, rd);
    return s;
}

int main(void)
{
    return check_run(redis_faults_suite());
}
