/* check_reload_drain.c -- an instance stopped or reloaded under connected
 * users, end to end: SIGTERM drains (users get 1001, are removed and
 * announced, the master exits 0 within shutdown-timeout and unregisters),
 * SIGHUP with a changed file replaces the workers while sessions keep
 * coming (none fails; the old workers' users chat on until
 * shutdown-timeout, then get 1001); with the same file every connection
 * stays. Every test runs its own redis-server
 * (TLS + password). What SIGHUP and SIGTERM do to the processes alone is in
 * check_process.c. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define MAX_KIDS 64
#define TEXT_MAX 512
#define USERS_KEY "chat-users"

#define DRAIN_TIMEOUT_MS 3000 /* shutdown-timeout of the drain and reload tests */
#define KILL_GRACE_MS 2000    /* the master's SIGKILL comes this long after it */

#define HUP_PARALLEL 8 /* sessions open at once */
#define HUP_ROUNDS 25  /* 200 sessions */
#define HUP_SESSIONS (HUP_PARALLEL * HUP_ROUNDS)
#define HUP_AT 8        /* SIGHUP just before this round */
#define HUP_PACE_MS 120 /* a round starts every 120 ms: 3 s in all */
#define HUP_TICKS_MAX 400

#define JOIN(c, port, name) fx_join((c), (port), (name), NULL, __LINE__)

/* ---- SIGTERM ------------------------------------------------------------------ */

/* SIGTERM the master of a: its users get a 1001 close, are removed and
 * announced on b; a exits 0 within shutdown-timeout and unregisters. */
START_TEST(test_sigterm_drain)
{
    static const char *const gone[] = {"a1: has left the chat!", "a2: has left the chat!"};
    struct h_redis r;
    struct h_chat a, b;
    struct wsc a1, a2, wb;
    char id_a[64], id_b[64], key[160], cmd[200];
    pid_t kids[MAX_KIDS];
    long long t0, ms;
    int n, i, st = -1;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&a, &r, 2, "shutdown-timeout 3s\n");
    fx_chat_ready(&b, &r, 2, NULL);
    fx_instance_id(a.log, id_a, sizeof(id_a));
    fx_instance_id(b.log, id_b, sizeof(id_b));
    ck_assert_str_ne(id_a, id_b);
    JOIN(&wb, b.port, "wb");
    JOIN(&a1, a.port, "a1");
    JOIN(&a2, a.port, "a2");
    fx_drain(&wb);
    ck_assert(fx_set_has(&r, USERS_KEY ":instances", id_a));
    ck_assert(fx_set_has(&r, USERS_KEY ":instances", id_b));

    n = h_children(a.pid, kids, MAX_KIDS);
    t0 = h_now_ms();
    ck_assert_int_eq(kill(a.pid, SIGTERM), 0);
    ck_assert_int_eq(wsc_wait_close(&a1, DRAIN_TIMEOUT_MS + 1000), 1001);
    ck_assert_int_eq(wsc_wait_close(&a2, DRAIN_TIMEOUT_MS + 1000), 1001);
    ASSERT_LOG(fx_expect_unordered(&wb, gone, 2, DRAIN_TIMEOUT_MS + 1000), a.log);
    ck_assert_int_eq(h_wait_exit(a.pid, DRAIN_TIMEOUT_MS + KILL_GRACE_MS + 1000, &st), 1);
    ms = h_now_ms() - t0;
    a.pid = 0;
    ck_assert_msg(ms <= DRAIN_TIMEOUT_MS + KILL_GRACE_MS, "master exited after %lld ms", ms);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "master wait status 0x%x", st);
    for (i = 0; i < n && i < MAX_KIDS; i++)
        ck_assert_msg(h_wait_gone(kids[i], 1000), "child %d outlived the master", (int)kids[i]);
    ck_assert(!h_file_contains(a.log, "SIGKILL"));
    QUIET(&wb);

    ck_assert(!fx_set_has(&r, USERS_KEY, "a1") && !fx_set_has(&r, USERS_KEY, "a2"));
    ck_assert(fx_set_has(&r, USERS_KEY, "wb"));
    if (fx_set_has(&r, USERS_KEY ":instances", id_a))
        h_dump_tail(a.log, 40);
    ck_assert_msg(!fx_set_has(&r, USERS_KEY ":instances", id_a), "instance %s still registered",
                  id_a);
    /* every client answered its close at once: nothing had to wait for the timeout */
    ck_assert_msg(!h_file_contains(a.log, "shutdown timeout"),
                  "a process waited for shutdown-timeout with no connection left");
    ck_assert(fx_set_has(&r, USERS_KEY ":instances", id_b));
    snprintf(key, sizeof(key), USERS_KEY ":instance:%s", id_a);
    snprintf(cmd, sizeof(cmd), "EXISTS %s", key);
    ck_assert_int_eq(fx_redis_int(&r, cmd), 0);
    snprintf(cmd, sizeof(cmd), "EXISTS %s:alive", key);
    ck_assert_int_eq(fx_redis_int(&r, cmd), 0);
    wsc_free(&a1);
    wsc_free(&a2);
    wsc_free(&wb);
    h_chat_free(&b);
    h_redis_free(&r);
}
END_TEST

/* ---- SIGHUP under traffic ------------------------------------------------------- */

/* A user who joined before the reload. */
struct hup_peer {
    struct wsc c;
    int open;
    int close_code;
    long long closed_at;
    int next_tick; /* "xavier: tick N" received in order: 0..next_tick-1 */
    int bad_tick;  /* one came out of order (-1: none) */
};

/* Read what p has (waiting up to wait_ms for the first text), counting ticks. */
static void hup_read(struct hup_peer *p, int wait_ms)
{
    static const char tick[] = "xavier: tick ";
    char got[TEXT_MAX];
    int r;

    while (p->open) {
        r = wsc_recv_text(&p->c, got, sizeof(got), wait_ms);
        wait_ms = 0;
        if (r < 0) {
            p->open = 0;
            p->close_code = p->c.close_received ? p->c.close_code : -1;
            p->closed_at = h_now_ms();
        } else if (r == 0 && p->c.timed_out) {
            return;
        } else if (strncmp(got, tick, strlen(tick)) == 0) {
            int n = atoi(got + strlen(tick));
            if (n != p->next_tick && p->bad_tick < 0)
                p->bad_tick = n;
            p->next_tick = n + 1;
        }
    }
}

/* HUP_PARALLEL short sessions s<first>...: all upgrade, then all read their
 * welcome, then all close. Returns how many failed, the first reason in why. */
static int hup_round(int port, int first, char *why, size_t cap)
{
    struct wsc s[HUP_PARALLEL];
    char path[32], welcome[48];
    int i, st, nfail = 0;

    for (i = 0; i < HUP_PARALLEL; i++) {
        snprintf(path, sizeof(path), "/chat/s%d", first + i);
        st = wsc_connect(&s[i], port, path, NULL, T_MSG_MS);
        if (st != 101 && nfail++ == 0)
            snprintf(why, cap, "session %d: HTTP %d", first + i, st);
    }
    for (i = 0; i < HUP_PARALLEL; i++) {
        if (!s[i].upgraded)
            continue;
        snprintf(welcome, sizeof(welcome), "Welcome s%d!", first + i);
        if (!wsc_expect_text(&s[i], welcome, T_MSG_MS)) {
            if (nfail++ == 0)
                snprintf(why, cap, "session %d: no welcome", first + i);
        } else if (wsc_send_close(&s[i], 1000, NULL) != 0 ||
                   (st = wsc_wait_close(&s[i], T_MSG_MS)) != 1000) {
            if (nfail++ == 0)
                snprintf(why, cap, "session %d: close answered with %d", first + i, st);
        }
    }
    for (i = 0; i < HUP_PARALLEL; i++)
        wsc_free(&s[i]);
    return nfail;
}

/* _i == 0: SIGHUP with the same file: nothing is replaced, xavier and
 * yvonne chat on past shutdown-timeout on the same workers (they only
 * re-read the TLS files and the log). _i == 1: workers 2 -> 3: the workers
 * are replaced; xavier and yvonne, on old workers, chat on until
 * shutdown-timeout and then get 1001. Sessions keep coming through the
 * reload and none fails, either way. */
START_TEST(test_sighup_under_traffic)
{
    struct h_redis r;
    struct h_chat c;
    struct hup_peer x = {.bad_tick = -1}, y = {.bad_tick = -1};
    long long t0, t_hup = 0, tick_at[HUP_TICKS_MAX];
    char why[128] = "", first_why[128] = "", text[64];
    int i, nfail = 0, nticks = 0, ticks_before_hup = 0, due_ticks = 0, workers = _i ? 3 : 2;
    pid_t old0, old1, kids[MAX_KIDS];

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&c, &r, 2, "shutdown-timeout 3s\nrate-limit 0\n");
    JOIN(&x.c, c.port, "xavier");
    JOIN(&y.c, c.port, "yvonne");
    fx_drain(&x.c);
    x.open = y.open = 1;
    old0 = h_child_titled(c.pid, "redis-chat: worker 0");
    old1 = h_child_titled(c.pid, "redis-chat: worker 1");
    ck_assert(old0 != 0 && old1 != 0);
    if (_i == 1)
        fx_conf_rewrite(c.conf, "workers 2", "workers 3");

    t0 = h_now_ms();
    for (i = 0; i < HUP_ROUNDS; i++) {
        long long wait = t0 + (long long)i * HUP_PACE_MS - h_now_ms();
        int f;

        hup_read(&y, wait > 0 ? (int)wait : 0);
        if (i == HUP_AT) {
            ck_assert_int_eq(kill(c.pid, SIGHUP), 0);
            t_hup = h_now_ms();
            ticks_before_hup = nticks;
        }
        f = hup_round(c.port, i * HUP_PARALLEL, why, sizeof(why));
        if (f > 0 && nfail == 0)
            snprintf(first_why, sizeof(first_why), "%s", why);
        nfail += f;
        hup_read(&x, 0);
        if (x.open && nticks < HUP_TICKS_MAX) {
            snprintf(text, sizeof(text), "tick %d", nticks);
            if (wsc_send_text(&x.c, text) == 0)
                tick_at[nticks++] = h_now_ms();
        }
        hup_read(&y, 0);
    }
    /* the old workers close both after shutdown-timeout */
    while ((x.open || y.open) && h_now_ms() < t_hup + DRAIN_TIMEOUT_MS + KILL_GRACE_MS + 2000) {
        hup_read(&x, 0);
        if (x.open && nticks < HUP_TICKS_MAX) {
            snprintf(text, sizeof(text), "tick %d", nticks);
            if (wsc_send_text(&x.c, text) == 0)
                tick_at[nticks++] = h_now_ms();
        }
        hup_read(&y, 50);
    }

    ck_assert_msg(nfail == 0, "%d of %d sessions failed; first: %s", nfail, HUP_SESSIONS,
                  first_why);
    if (_i == 0) {
        /* the same file: the workers stay, and every connection with them */
        long long t_end = h_now_ms();

        ASSERT_LOG(x.open && y.open, c.log);
        ck_assert(h_file_contains(c.log, "configuration unchanged"));
        ck_assert(!h_file_contains(c.log, "reloaded:"));
        ck_assert_int_eq(h_child_titled(c.pid, "redis-chat: worker 0"), old0);
        ck_assert_int_eq(h_child_titled(c.pid, "redis-chat: worker 1"), old1);
        ck_assert_msg(y.bad_tick < 0, "yvonne: tick %d out of order", y.bad_tick);
        for (i = 0; i < nticks; i++)
            due_ticks += tick_at[i] < t_end - 500;
        ck_assert_msg(y.next_tick >= due_ticks, "yvonne got ticks 0..%d, %d were sent in time",
                      y.next_tick - 1, due_ticks);
        ck_assert_msg(y.next_tick - ticks_before_hup >= 10, "only %d ticks after SIGHUP",
                      y.next_tick - ticks_before_hup);
        wsc_free(&x.c);
        wsc_free(&y.c);
        h_chat_free(&c);
        h_redis_free(&r);
        return;
    }
    ASSERT_LOG(!x.open && !y.open, c.log);
    ck_assert_msg(x.close_code == 1001 && y.close_code == 1001, "close codes %d, %d", x.close_code,
                  y.close_code);
    ck_assert_msg(y.closed_at - t_hup >= DRAIN_TIMEOUT_MS - 200,
                  "yvonne closed %lld ms after SIGHUP, before shutdown-timeout 3s",
                  y.closed_at - t_hup);
    ck_assert_msg(y.closed_at - t_hup <= DRAIN_TIMEOUT_MS + KILL_GRACE_MS,
                  "yvonne closed %lld ms after SIGHUP", y.closed_at - t_hup);
    ck_assert_msg(y.bad_tick < 0, "yvonne: tick %d out of order", y.bad_tick);
    for (i = 0; i < nticks; i++)
        due_ticks += tick_at[i] < t_hup + DRAIN_TIMEOUT_MS - 500;
    ck_assert_msg(y.next_tick >= due_ticks, "yvonne got ticks 0..%d, %d were sent in time",
                  y.next_tick - 1, due_ticks);
    ck_assert_msg(y.next_tick - ticks_before_hup >= 10, "only %d ticks after SIGHUP",
                  y.next_tick - ticks_before_hup);

    snprintf(text, sizeof(text), "reloaded: %d worker(s)", workers);
    ck_assert(h_file_contains(c.log, text));
    if (_i == 1)
        ck_assert_int_ne(h_child_titled(c.pid, "redis-chat: worker 2"), 0);
    ck_assert_msg(fx_redis_int_wait(&r, "SCARD " USERS_KEY, 0, T_MSG_MS), "users left in the set");
    /* an old worker whose last session is gone exits */
    ASSERT_LOG(h_wait_gone(old0, 1000) && h_wait_gone(old1, 1000), c.log);
    ck_assert_int_eq(h_children(c.pid, kids, MAX_KIDS), workers + 1);
    wsc_free(&x.c);
    wsc_free(&y.c);
    h_chat_free(&c);
    h_redis_free(&r);
}
END_TEST

static Suite *reload_drain_suite(void)
{
    Suite *s = suite_create("reload_drain");
    TCase *tc = tcase_create("reload_drain");

    /* each test runs its own Redis and instances below the fixture's dir */
    tcase_add_unchecked_fixture(tc, fx_tmp_enter, fx_tmp_leave);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sigterm_drain);
    tcase_add_loop_test(tc, test_sighup_under_traffic, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(reload_drain_suite());
}
