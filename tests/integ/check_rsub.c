/* check_rsub.c -- the broker's own subscriber connection (broker/rsub.c)
 * against a real redis-server with TLS and a password: the handshake with
 * verification of the server's name or address, AUTH, SUBSCRIBE and
 * SSUBSCRIBE of several channels in one command (a confirmation each),
 * messages published by redis-cli arriving byte for byte (binary, empty,
 * 1 MiB over many reads), unsubscribing, PING, and every way the
 * connection can fail (wrong password, plain TCP to the TLS port, wrong
 * server name or address, nothing listening, a server that never answers,
 * the server stopped): on_closed exactly once, nothing after it. An error
 * reply leaves the connection open. rsub_free from inside each handler is
 * safe (run this under valgrind: tests/valgrind-integ.sh).
 *
 * No process of redis-chat here: the test is the broker, with its own
 * event loop. */
#include "rsub.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "check_run.h"
#include "harness.h"
#include "net.h"
#include "util.h"

#define T_WAIT_MS 8000 /* an event that must come (the connect timeout is 5 s) */
#define T_QUIET_MS 300 /* silence that must hold */
#define T_PASSWORD "pw"
#define T_SUBS_MAX 32
#define T_MSGS_MAX 16
#define T_BIG (1024 * 1024)

static struct h_redis redis; /* TLS + password, for the whole suite */

enum t_free_in { T_FREE_NONE = 0, T_FREE_READY, T_FREE_SUBSCRIBED, T_FREE_MESSAGE, T_FREE_CLOSED };

/* What the handlers saw: one per rsub under test. */
struct t_sub {
    struct event_base *base;
    struct event *tick; /* wakes the loop, so that waits see their deadline */
    SSL_CTX *ctx;
    struct rsub *s;
    int ready, closed, errors;
    char why[256], error[256];
    int nsub;
    struct {
        char ch[64];
        size_t chlen;
        int on, sharded;
    } subs[T_SUBS_MAX];
    int nmsg;
    struct {
        char *ch, *payload; /* copies */
        size_t chlen, len;
        int sharded;
    } msgs[T_MSGS_MAX];
    int calls_after_free;
    enum t_free_in free_in;
};

static void t_freed_here(struct t_sub *t, enum t_free_in where)
{
    if (t->s == NULL) {
        t->calls_after_free++;
        return;
    }
    if (where != T_FREE_NONE && t->free_in == where) {
        rsub_free(t->s);
        t->s = NULL;
    }
}

static void t_on_ready(void *arg)
{
    struct t_sub *t = arg;

    t->ready++;
    t_freed_here(t, T_FREE_READY);
}

static void t_on_message(const char *ch, size_t chlen, const char *payload, size_t len, int sharded,
                         void *arg)
{
    struct t_sub *t = arg;

    ck_assert_int_lt(t->nmsg, T_MSGS_MAX);
    t->msgs[t->nmsg].ch = malloc(chlen + 1);
    t->msgs[t->nmsg].payload = malloc(len + 1);
    ck_assert(t->msgs[t->nmsg].ch != NULL && t->msgs[t->nmsg].payload != NULL);
    memcpy(t->msgs[t->nmsg].ch, ch, chlen);
    memcpy(t->msgs[t->nmsg].payload, payload, len);
    t->msgs[t->nmsg].chlen = chlen;
    t->msgs[t->nmsg].len = len;
    t->msgs[t->nmsg].sharded = sharded;
    t->nmsg++;
    t_freed_here(t, T_FREE_MESSAGE);
}

static void t_on_subscribed(const char *ch, size_t chlen, int on, int sharded, void *arg)
{
    struct t_sub *t = arg;

    ck_assert_int_lt(t->nsub, T_SUBS_MAX);
    ck_assert_uint_le(chlen, sizeof(t->subs[0].ch));
    memcpy(t->subs[t->nsub].ch, ch, chlen);
    t->subs[t->nsub].chlen = chlen;
    t->subs[t->nsub].on = on;
    t->subs[t->nsub].sharded = sharded;
    t->nsub++;
    t_freed_here(t, T_FREE_SUBSCRIBED);
}

static void t_on_error(const char *msg, void *arg)
{
    struct t_sub *t = arg;

    t->errors++;
    snprintf(t->error, sizeof(t->error), "%s", msg);
    t_freed_here(t, T_FREE_NONE);
}

static void t_on_closed(const char *why, void *arg)
{
    struct t_sub *t = arg;

    t->closed++;
    snprintf(t->why, sizeof(t->why), "%s", why);
    t_freed_here(t, T_FREE_CLOSED);
}

static const struct rsub_handlers t_handlers = {
    .on_ready = t_on_ready,
    .on_message = t_on_message,
    .on_subscribed = t_on_subscribed,
    .on_error = t_on_error,
    .on_closed = t_on_closed,
};

static void t_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* A client context with our CA and, on purpose, no SSL_VERIFY_PEER: rsub
 * must verify by itself. */
static void t_init(struct t_sub *t, const char *ca)
{
    struct timeval tv = util_ms_tv(20);

    memset(t, 0, sizeof(*t));
    t->base = event_base_new();
    ck_assert_ptr_nonnull(t->base);
    t->tick = event_new(t->base, -1, EV_PERSIST, t_tick_cb, NULL);
    event_add(t->tick, &tv);
    t->ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(t->ctx);
    ck_assert_int_eq(SSL_CTX_load_verify_locations(t->ctx, ca, NULL), 1);
}

static void t_deinit(struct t_sub *t)
{
    int i;

    rsub_free(t->s);
    for (i = 0; i < t->nmsg; i++) {
        free(t->msgs[i].ch);
        free(t->msgs[i].payload);
    }
    event_free(t->tick);
    event_base_free(t->base);
    SSL_CTX_free(t->ctx);
}

static struct rsub *t_connect(struct t_sub *t, const struct h_redis *r, int tls, const char *name,
                              const char *password)
{
    struct rsub_handlers h = t_handlers;

    h.arg = t;
    t->s = rsub_new(t->base, tls ? t->ctx : NULL, "127.0.0.1", r->port, name, password, &h);
    ck_assert_ptr_nonnull(t->s);
    return t->s;
}

/* Run the loop until cond holds; fail naming it after T_WAIT_MS. */
#define WAIT_FOR(t, cond)                                                                          \
    do {                                                                                           \
        long long dl_ = h_now_ms() + T_WAIT_MS;                                                    \
        while (!(cond) && h_now_ms() < dl_)                                                        \
            event_base_loop((t)->base, EVLOOP_ONCE);                                               \
        ck_assert_msg((cond), "no %s within %d ms (closed: %s)", #cond, T_WAIT_MS, (t)->why);      \
    } while (0)

static void t_run_quiet(struct t_sub *t)
{
    long long dl = h_now_ms() + T_QUIET_MS;

    while (h_now_ms() < dl)
        event_base_loop(t->base, EVLOOP_ONCE);
}

static void t_connect_ready(struct t_sub *t)
{
    t_connect(t, &redis, 1, NULL, T_PASSWORD);
    WAIT_FOR(t, t->ready == 1);
    ck_assert(rsub_is_ready(t->s));
}

/* redis-cli against the suite's server with these words (NULL-ended); the
 * reply must not be an error. */
static void t_cli(const char *first, ...)
{
    char *words[16], out[256];
    va_list ap;
    int n = 0;

    words[n++] = (char *)first;
    va_start(ap, first);
    while (n < 15 && (words[n] = va_arg(ap, char *)) != NULL)
        n++;
    va_end(ap);
    words[n] = NULL;
    ck_assert_int_eq(h_redis_cliv(&redis, out, sizeof(out), words), 0);
    ck_assert_msg(strncmp(out, "ERR", 3) != 0, "%s: %s", first, out);
}

static void t_assert_sub(const struct t_sub *t, int i, const char *ch, size_t chlen, int on,
                         int sharded)
{
    ck_assert_int_gt(t->nsub, i);
    ck_assert_uint_eq(t->subs[i].chlen, chlen);
    ck_assert(memcmp(t->subs[i].ch, ch, chlen) == 0);
    ck_assert_int_eq(t->subs[i].on, on);
    ck_assert_int_eq(t->subs[i].sharded, sharded);
}

static void t_assert_msg(const struct t_sub *t, int i, const char *ch, size_t chlen,
                         const char *payload, size_t len, int sharded)
{
    ck_assert_int_gt(t->nmsg, i);
    ck_assert_uint_eq(t->msgs[i].chlen, chlen);
    ck_assert(memcmp(t->msgs[i].ch, ch, chlen) == 0);
    ck_assert_uint_eq(t->msgs[i].len, len);
    ck_assert(memcmp(t->msgs[i].payload, payload, len) == 0);
    ck_assert_int_eq(t->msgs[i].sharded, sharded);
}

#define LIT(s) (s), sizeof(s) - 1

static void t_suite_setup(void)
{
    ck_assert_int_eq(h_redis_start(&redis, 1, T_PASSWORD), 0);
}

static void t_suite_teardown(void)
{
    h_redis_free(&redis);
}

/* ---- subscribing and messages -------------------------------------------- */

/* Three channels per command, plain and sharded, one of them with a NUL;
 * redis-cli publishes; then some are unsubscribed and no longer heard. The
 * server is reached as 127.0.0.1 and verified as that address. */
START_TEST(test_subscribe_publish)
{
    static const char bin_ch[] = "b\0in";
    const char *plain[3] = {"c1", "c2", bin_ch};
    const size_t plain_len[3] = {2, 2, sizeof(bin_ch) - 1};
    const char *sharded[3] = {"{R}:a", "{R}:b", "{R}:c"};
    const size_t sharded_len[3] = {5, 5, 5};
    struct t_sub t;
    int i;

    t_init(&t, redis.ca);
    t_connect_ready(&t);
    ck_assert_int_eq(rsub_subscribe(t.s, 0, 1, 3, plain, plain_len), 0);
    ck_assert_int_eq(rsub_subscribe(t.s, 1, 1, 3, sharded, sharded_len), 0);
    WAIT_FOR(&t, t.nsub == 6);
    for (i = 0; i < 3; i++)
        t_assert_sub(&t, i, plain[i], plain_len[i], 1, 0);
    for (i = 0; i < 3; i++)
        t_assert_sub(&t, 3 + i, sharded[i], sharded_len[i], 1, 1);

    t_cli("PUBLISH", "c1", "hello there", NULL);
    t_cli("SPUBLISH", "{R}:b", "sharded hello", NULL);
    t_cli("PUBLISH", "c2", "", NULL);
    t_cli("SPUBLISH", "{R}:c", "", NULL);
    /* NUL, CR LF and a high byte, to the channel with a NUL: built by Lua */
    t_cli("EVAL", "return redis.call('PUBLISH', 'b\\0in', 'x\\0\\r\\n\\255y')", "0", NULL);
    WAIT_FOR(&t, t.nmsg == 5);
    t_assert_msg(&t, 0, LIT("c1"), LIT("hello there"), 0);
    t_assert_msg(&t, 1, LIT("{R}:b"), LIT("sharded hello"), 1);
    t_assert_msg(&t, 2, LIT("c2"), "", 0, 0);
    t_assert_msg(&t, 3, LIT("{R}:c"), "", 0, 1);
    t_assert_msg(&t, 4, LIT("b\0in"), LIT("x\0\r\n\xffy"), 0);

    ck_assert_int_eq(rsub_subscribe(t.s, 0, 0, 2, plain, plain_len), 0);
    ck_assert_int_eq(rsub_subscribe(t.s, 1, 0, 1, sharded, sharded_len), 0);
    WAIT_FOR(&t, t.nsub == 9);
    t_assert_sub(&t, 6, LIT("c1"), 0, 0);
    t_assert_sub(&t, 7, LIT("c2"), 0, 0);
    t_assert_sub(&t, 8, LIT("{R}:a"), 0, 1);
    /* gone: c1, c2, {R}:a; still there: b\0in, {R}:b (order tells) */
    t_cli("PUBLISH", "c1", "not heard", NULL);
    t_cli("SPUBLISH", "{R}:a", "not heard", NULL);
    t_cli("SPUBLISH", "{R}:b", "heard", NULL);
    WAIT_FOR(&t, t.nmsg == 6);
    t_assert_msg(&t, 5, LIT("{R}:b"), LIT("heard"), 1);
    t_run_quiet(&t);
    ck_assert_int_eq(t.nmsg, 6);
    ck_assert_int_eq(t.errors, 0);
    ck_assert_int_eq(t.closed, 0);
    t_deinit(&t);
}
END_TEST

/* 1 MiB of every byte value, built by Lua (an argument cannot be that
 * long), comes in many reads and arrives whole. */
START_TEST(test_big_payload)
{
    const char *ch[1] = {"{R}:big"};
    const size_t chlen[1] = {7};
    struct t_sub t;
    char *want = malloc(T_BIG);
    size_t i;

    ck_assert_ptr_nonnull(want);
    for (i = 0; i < T_BIG; i++)
        want[i] = (char)(i % 256);
    t_init(&t, redis.ca);
    t_connect_ready(&t);
    ck_assert_int_eq(rsub_subscribe(t.s, 1, 1, 1, ch, chlen), 0);
    WAIT_FOR(&t, t.nsub == 1);
    t_cli("EVAL",
          "local t = {} for i = 0, 255 do t[#t + 1] = string.char(i) end "
          "return redis.call('SPUBLISH', KEYS[1], string.rep(table.concat(t), 4096))",
          "1", "{R}:big", NULL);
    t_cli("SPUBLISH", "{R}:big", "after", NULL);
    WAIT_FOR(&t, t.nmsg == 2);
    t_assert_msg(&t, 0, LIT("{R}:big"), want, T_BIG, 1);
    t_assert_msg(&t, 1, LIT("{R}:big"), LIT("after"), 1);
    free(want);
    t_deinit(&t);
}
END_TEST

/* PING is answered while subscribed (["pong", ""]) and before (+PONG):
 * the answer is heard, and is no error. */
START_TEST(test_ping)
{
    const char *ch[1] = {"c-ping"};
    const size_t chlen[1] = {6};
    struct t_sub t;
    uint64_t t0;

    t_init(&t, redis.ca);
    t_connect_ready(&t);
    ck_assert_uint_ge(rsub_last_heard_ms(t.s), 1);
    h_sleep_ms(5);
    t0 = util_now_ms();
    ck_assert_int_eq(rsub_ping(t.s), 0);
    WAIT_FOR(&t, rsub_last_heard_ms(t.s) >= t0);
    ck_assert_int_eq(rsub_subscribe(t.s, 0, 1, 1, ch, chlen), 0);
    WAIT_FOR(&t, t.nsub == 1);
    h_sleep_ms(5);
    t0 = util_now_ms();
    ck_assert_int_eq(rsub_ping(t.s), 0);
    WAIT_FOR(&t, rsub_last_heard_ms(t.s) >= t0);
    t_run_quiet(&t);
    ck_assert_int_eq(t.errors, 0);
    ck_assert_int_eq(t.closed, 0);
    ck_assert_int_eq(t.nmsg, 0);
    t_deinit(&t);
}
END_TEST

/* ---- errors and failures ---------------------------------------------- */

/* Without AUTH, Redis answers every command with NOAUTH: on_error, and the
 * connection stays open for the next one. */
START_TEST(test_error_reply_keeps_connection)
{
    const char *ch[1] = {"c-noauth"};
    const size_t chlen[1] = {8};
    struct t_sub t;

    t_init(&t, redis.ca);
    t_connect(&t, &redis, 1, NULL, NULL);
    WAIT_FOR(&t, t.ready == 1);
    ck_assert_int_eq(rsub_subscribe(t.s, 1, 1, 1, ch, chlen), 0);
    WAIT_FOR(&t, t.errors == 1);
    ck_assert_msg(strncmp(t.error, "NOAUTH", 6) == 0, "error: %s", t.error);
    ck_assert(rsub_is_ready(t.s));
    ck_assert_int_eq(rsub_subscribe(t.s, 0, 1, 1, ch, chlen), 0);
    WAIT_FOR(&t, t.errors == 2);
    t_run_quiet(&t);
    ck_assert_int_eq(t.closed, 0);
    ck_assert_int_eq(t.nsub, 0);
    t_deinit(&t);
}
END_TEST

/* on_closed once, with a reason containing `want`, never ready; nothing
 * can be subscribed afterwards. */
static void t_assert_fails(struct t_sub *t, const char *want)
{
    const char *ch[1] = {"c"};
    const size_t chlen[1] = {1};

    WAIT_FOR(t, t->closed == 1);
    ck_assert_msg(strstr(t->why, want) != NULL, "why: \"%s\", not about \"%s\"", t->why, want);
    t_run_quiet(t);
    ck_assert_int_eq(t->closed, 1);
    ck_assert_int_eq(t->ready, 0);
    ck_assert(!rsub_is_ready(t->s));
    ck_assert_int_eq(rsub_subscribe(t->s, 0, 1, 1, ch, chlen), -1);
    ck_assert_int_eq(rsub_ping(t->s), -1);
}

START_TEST(test_wrong_password)
{
    struct t_sub t;

    t_init(&t, redis.ca);
    t_connect(&t, &redis, 1, NULL, "not-the-password");
    t_assert_fails(&t, "AUTH failed: WRONGPASS");
    t_deinit(&t);
}
END_TEST

START_TEST(test_plain_tcp_to_tls_port)
{
    struct t_sub t;

    t_init(&t, redis.ca);
    t_connect(&t, &redis, 0, NULL, T_PASSWORD);
    WAIT_FOR(&t, t.closed == 1);
    t_assert_fails(&t, "");
    t_deinit(&t);
}
END_TEST

/* The certificate names DNS:localhost and IP:127.0.0.1 only. */
START_TEST(test_wrong_server_name)
{
    struct t_sub t;

    t_init(&t, redis.ca);
    t_connect(&t, &redis, 1, "wrong.example", T_PASSWORD);
    t_assert_fails(&t, "certificate verification failed");
    t_deinit(&t);

    t_init(&t, redis.ca);
    t_connect(&t, &redis, 1, "127.0.0.2", T_PASSWORD);
    t_assert_fails(&t, "certificate verification failed");
    t_deinit(&t);

    t_init(&t, redis.ca); /* and the right name works */
    t_connect(&t, &redis, 1, "localhost", T_PASSWORD);
    WAIT_FOR(&t, t.ready == 1);
    t_deinit(&t);
}
END_TEST

START_TEST(test_nothing_listening)
{
    struct h_redis nobody;
    struct t_sub t;

    memset(&nobody, 0, sizeof(nobody));
    nobody.port = h_free_port();
    ck_assert_int_gt(nobody.port, 0);
    t_init(&t, redis.ca);
    t_connect(&t, &nobody, 1, NULL, T_PASSWORD);
    t_assert_fails(&t, "cannot connect: Connection refused");
    t_deinit(&t);
}
END_TEST

/* A listener that never accepts: TCP connects (the kernel's backlog), the
 * TLS handshake gets no answer, the connect timeout ends it. */
START_TEST(test_connect_timeout)
{
    struct h_redis silent;
    struct t_sub t;
    char err[NET_ERR_LEN];
    int fd = net_tcp_listen("127.0.0.1", 0, err);

    ck_assert_msg(fd != -1, "%s", err);
    memset(&silent, 0, sizeof(silent));
    silent.port = net_local_port(fd);
    t_init(&t, redis.ca);
    t_connect(&t, &silent, 1, NULL, T_PASSWORD);
    t_assert_fails(&t, "no connection within 5000 ms");
    t_deinit(&t);
    close(fd);
}
END_TEST

/* Its own server, stopped under a subscribed connection. */
START_TEST(test_server_stopped)
{
    const char *ch[1] = {"{R}:x"};
    const size_t chlen[1] = {5};
    struct h_redis own;
    struct t_sub t;

    ck_assert_int_eq(h_redis_start(&own, 1, T_PASSWORD), 0);
    t_init(&t, own.ca);
    t_connect(&t, &own, 1, NULL, T_PASSWORD);
    WAIT_FOR(&t, t.ready == 1);
    ck_assert_int_eq(rsub_subscribe(t.s, 1, 1, 1, ch, chlen), 0);
    WAIT_FOR(&t, t.nsub == 1);
    h_redis_stop(&own);
    WAIT_FOR(&t, t.closed == 1);
    ck_assert_msg(strstr(t.why, "closed") != NULL || strstr(t.why, "lost") != NULL, "why: %s",
                  t.why);
    t_run_quiet(&t);
    ck_assert_int_eq(t.closed, 1);
    ck_assert(!rsub_is_ready(t.s));
    t_deinit(&t);
    h_redis_free(&own);
}
END_TEST

/* ---- freeing from inside a handler ------------------------------------- */

/* Freed in on_message while two more messages wait in the same read: no
 * handler runs after it. */
START_TEST(test_free_in_message)
{
    const char *ch[1] = {"c-free"};
    const size_t chlen[1] = {6};
    struct t_sub t;

    t_init(&t, redis.ca);
    t_connect_ready(&t);
    ck_assert_int_eq(rsub_subscribe(t.s, 0, 1, 1, ch, chlen), 0);
    WAIT_FOR(&t, t.nsub == 1);
    t.free_in = T_FREE_MESSAGE;
    t_cli("EVAL",
          "redis.call('PUBLISH', 'c-free', '1') redis.call('PUBLISH', 'c-free', '2') "
          "return redis.call('PUBLISH', 'c-free', '3')",
          "0", NULL);
    WAIT_FOR(&t, t.s == NULL);
    t_run_quiet(&t);
    ck_assert_int_eq(t.nmsg, 1);
    ck_assert_int_eq(t.calls_after_free, 0);
    ck_assert_int_eq(t.closed, 0);
    t_deinit(&t);
}
END_TEST

START_TEST(test_free_in_other_handlers)
{
    const char *ch[3] = {"f1", "f2", "f3"};
    const size_t chlen[3] = {2, 2, 2};
    struct t_sub t;

    t_init(&t, redis.ca); /* in on_ready */
    t.free_in = T_FREE_READY;
    t_connect(&t, &redis, 1, NULL, T_PASSWORD);
    WAIT_FOR(&t, t.s == NULL);
    t_run_quiet(&t);
    ck_assert_int_eq(t.ready, 1);
    ck_assert_int_eq(t.calls_after_free, 0);
    ck_assert_int_eq(t.closed, 0);
    t_deinit(&t);

    t_init(&t, redis.ca); /* in on_subscribed, two more confirmations behind it */
    t_connect_ready(&t);
    t.free_in = T_FREE_SUBSCRIBED;
    ck_assert_int_eq(rsub_subscribe(t.s, 0, 1, 3, ch, chlen), 0);
    WAIT_FOR(&t, t.s == NULL);
    t_run_quiet(&t);
    ck_assert_int_eq(t.nsub, 1);
    ck_assert_int_eq(t.calls_after_free, 0);
    t_deinit(&t);

    t_init(&t, redis.ca); /* in on_closed */
    t.free_in = T_FREE_CLOSED;
    t_connect(&t, &redis, 1, NULL, "not-the-password");
    WAIT_FOR(&t, t.s == NULL);
    t_run_quiet(&t);
    ck_assert_int_eq(t.closed, 1);
    ck_assert_int_eq(t.calls_after_free, 0);
    t_deinit(&t);
}
END_TEST

/* A failure known at once (refused) is reported from the loop, so freeing
 * before the loop runs means no handler at all. */
START_TEST(test_free_before_closed)
{
    struct h_redis nobody;
    struct t_sub t;

    memset(&nobody, 0, sizeof(nobody));
    nobody.port = h_free_port();
    t_init(&t, redis.ca);
    t_connect(&t, &nobody, 0, NULL, NULL);
    rsub_free(t.s);
    t.s = NULL;
    t_run_quiet(&t);
    ck_assert_int_eq(t.closed + t.ready + t.calls_after_free, 0);
    t_deinit(&t);
}
END_TEST

static Suite *rsub_suite(void)
{
    Suite *s = suite_create("rsub");
    TCase *sub = tcase_create("subscribe");
    TCase *fail = tcase_create("failures");
    TCase *fr = tcase_create("free");

    tcase_add_unchecked_fixture(sub, t_suite_setup, t_suite_teardown);
    tcase_set_timeout(sub, 60);
    tcase_add_test(sub, test_subscribe_publish);
    tcase_add_test(sub, test_big_payload);
    tcase_add_test(sub, test_ping);
    suite_add_tcase(s, sub);

    tcase_add_unchecked_fixture(fail, t_suite_setup, t_suite_teardown);
    tcase_set_timeout(fail, 60);
    tcase_add_test(fail, test_error_reply_keeps_connection);
    tcase_add_test(fail, test_wrong_password);
    tcase_add_test(fail, test_plain_tcp_to_tls_port);
    tcase_add_test(fail, test_wrong_server_name);
    tcase_add_test(fail, test_nothing_listening);
    tcase_add_test(fail, test_connect_timeout);
    tcase_add_test(fail, test_server_stopped);
    suite_add_tcase(s, fail);

    tcase_add_unchecked_fixture(fr, t_suite_setup, t_suite_teardown);
    tcase_set_timeout(fr, 60);
    tcase_add_test(fr, test_free_in_message);
    tcase_add_test(fr, test_free_in_other_handlers);
    tcase_add_test(fr, test_free_before_closed);
    suite_add_tcase(s, fr);
    return s;
}

int main(void)
{
    return check_run(rsub_suite());
}
