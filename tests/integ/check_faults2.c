/* check_faults2.c -- failures end to end, part 2: a whole instance killed
 * (its users reaped by the survivors once its heartbeat expires), SIGTERM
 * drain, SIGHUP reload under traffic, and a reconnect storm of 2000
 * clients. Part 1 (Redis restarts, /healthz, worker and broker kills) is
 * check_faults.c. Every test runs its own redis-server (TLS + password). */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "harness.h"
#include "wsclient.h"

#define T_MSG_MS 3000  /* a message that must come */
#define T_QUIET_MS 300 /* silence that must hold */

#define MAX_KIDS 64
#define MAX_USERS 16
#define TEXT_MAX 512
#define USERS_KEY "chat-users"

#define CRASH_TTL_MS 2000  /* instance-ttl of the crash test */
#define CRASH_SCAN_MS 5000 /* each broker looks for dead instances this often */
#define CRASH_BOUND_MS 12000

#define DRAIN_TIMEOUT_MS 3000 /* shutdown-timeout of the drain and reload tests */
#define KILL_GRACE_MS 2000    /* the master's SIGKILL comes this long after it */

#define HUP_PARALLEL 8 /* sessions open at once */
#define HUP_ROUNDS 25  /* 200 sessions */
#define HUP_SESSIONS (HUP_PARALLEL * HUP_ROUNDS)
#define HUP_AT 8        /* SIGHUP just before this round */
#define HUP_PACE_MS 120 /* a round starts every 120 ms: 3 s in all */
#define HUP_TICKS_MAX 400

#define STORM_CLIENTS 2000
#define STORM_BOUND_MS 30000
#define STORM_KEY "dGhlIHNhbXBsZSBub25jZQ==" /* RFC 6455 1.3, and its answer: */
#define STORM_ACCEPT "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define EXPECT(c, text)                                                                            \
    ck_assert_msg(wsc_expect_text((c), (text), T_MSG_MS), "%s: no \"%s\"", #c, (text))
#define QUIET(c) ck_assert_msg(wsc_no_text((c), T_QUIET_MS), "%s: unexpected text or close", #c)
#define JOIN(c, port, name) chat_join((c), (port), (name), __LINE__)
#define ASSERT_LOG(cond, log)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            h_dump_tail((log), 40);                                                                \
            ck_abort_msg("Assertion '%s' failed", #cond);                                          \
        }                                                                                          \
    } while (0)

/* ---- fixture: servers go below a temp dir the runner removes ------------ */

static char tmp_base[256], tmp_old[256];

static void tmp_enter(void)
{
    const char *old = getenv("TMPDIR");

    snprintf(tmp_old, sizeof(tmp_old), "%s", old != NULL ? old : "");
    ck_assert_int_eq(h_tmpdir(tmp_base, sizeof(tmp_base)), 0);
    ck_assert_int_eq(setenv("TMPDIR", tmp_base, 1), 0);
}

static void tmp_leave(void)
{
    if (tmp_old[0] != '\0')
        setenv("TMPDIR", tmp_old, 1);
    else
        unsetenv("TMPDIR");
    h_rmrf(tmp_base);
}

/* ---- helpers (as in check_faults.c) --------------------------------------- */

static void chat_ready(struct h_chat *c, const struct h_redis *r, int workers, const char *extra)
{
    ck_assert_int_eq(h_chat_start(c, r, workers, extra), 0);
    ck_assert_msg(h_wait_count(c->log, "chat service available", workers, 10000),
                  "%s: workers never saw Redis up", c->log);
}

static void chat_join(struct wsc *c, int port, const char *name, int line)
{
    char path[256], welcome[256];
    int st;

    snprintf(path, sizeof(path), "/chat/%s", name);
    snprintf(welcome, sizeof(welcome), "Welcome %s!", name);
    st = wsc_connect(c, port, path, NULL, T_MSG_MS);
    ck_assert_msg(st == 101, "line %d: %s: HTTP %d, not 101", line, name, st);
    ck_assert_msg(wsc_expect_text(c, welcome, T_MSG_MS), "line %d: %s: no welcome", line, name);
}

static void drain(struct wsc *c)
{
    char got[TEXT_MAX];
    int r;

    do
        r = wsc_recv_text(c, got, sizeof(got), T_QUIET_MS);
    while (r > 0 || (r == 0 && !c->timed_out));
    ck_assert_msg(r == 0, "connection closed while draining (close code %d)", c->close_code);
}

/* Exactly the texts want[0..n), any order, each once, nothing else. */
static int expect_unordered(struct wsc *c, const char *const *want, int n, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    char got[TEXT_MAX], seen[MAX_USERS] = {0};
    int left = n, i, r;

    while (left > 0) {
        long long ms = end - h_now_ms();

        if (ms <= 0) {
            for (i = 0; i < n; i++)
                if (!seen[i])
                    fprintf(stderr, "expect_unordered: no \"%s\" within %d ms\n", want[i],
                            timeout_ms);
            return 0;
        }
        r = wsc_recv_text(c, got, sizeof(got), (int)ms);
        if (r == 0 && c->timed_out)
            continue;
        if (r < 0) {
            fprintf(stderr, "expect_unordered: connection closed (code %d), %d text(s) missing\n",
                    c->close_code, left);
            return 0;
        }
        for (i = 0; i < n; i++)
            if (!seen[i] && strcmp(got, want[i]) == 0)
                break;
        if (i == n) {
            fprintf(stderr, "expect_unordered: unexpected or repeated \"%s\"\n", got);
            return 0;
        }
        seen[i] = 1;
        left--;
    }
    return 1;
}

static int set_has(const struct h_redis *r, const char *key, const char *name)
{
    char raw[4096], set[4200], want[160];

    ck_assert_int_eq(h_redis_cli(r, raw, sizeof(raw), "SMEMBERS %s", key), 0);
    snprintf(set, sizeof(set), "\n%s%s", raw,
             raw[0] != '\0' && raw[strlen(raw) - 1] != '\n' ? "\n" : "");
    snprintf(want, sizeof(want), "\n%s\n", name);
    return strstr(set, want) != NULL;
}

/* Integer reply of a command such as "SCARD key"; -1 when there is none. */
static long redis_int(const struct h_redis *r, const char *cmd)
{
    char out[64];

    if (h_redis_cli(r, out, sizeof(out), "%s", cmd) != 0 || out[0] < '0' || out[0] > '9')
        return -1;
    return strtol(out, NULL, 10);
}

/* Wait until the integer reply of cmd is want. */
static int redis_int_wait(const struct h_redis *r, const char *cmd, long want, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;

    while (redis_int(r, cmd) != want) {
        if (h_now_ms() >= end)
            return 0;
        h_sleep_ms(50);
    }
    return 1;
}

static void instance_id(const char *log, char *out, size_t cap)
{
    static const char tag[] = "; instance ";
    char line[1024];
    FILE *f;

    out[0] = '\0';
    ck_assert_msg(h_wait_log(log, tag, 5000), "%s: the broker never logged its instance", log);
    f = fopen(log, "r");
    ck_assert_ptr_nonnull(f);
    while (out[0] == '\0' && fgets(line, sizeof(line), f) != NULL) {
        const char *p = strstr(line, tag);
        if (p != NULL)
            snprintf(out, cap, "%.*s", (int)strspn(p + strlen(tag), "0123456789abcdef"),
                     p + strlen(tag));
    }
    fclose(f);
    ck_assert_msg(out[0] != '\0', "%s: no instance id", log);
}


static int wait_gone(pid_t pid, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;

    while (h_alive(pid)) {
        if (h_now_ms() >= end)
            return 0;
        h_sleep_ms(10);
    }
    return 1;
}

/* ---- a whole instance killed ------------------------------------------------ */

/* kill -9 every process of instance a (stopped first, so none of them sees
 * another die: no orderly leave, no respawn). b and c each look for dead
 * instances; a's users are announced once, within ttl + scan period, and
 * removed with a's keys; their names are free again. */
START_TEST(test_instance_crash)
{
    static const char *const gone[] = {"a1: has left the chat!", "a2: has left the chat!"};
    static const char conf[] = "instance-ttl 2s\n";
    struct h_redis r;
    struct h_chat a, b, c;
    struct wsc a1, a2, wb, wc, again;
    char id[64], key[160], cmd[200];
    pid_t kids[MAX_KIDS];
    long long t0, ms;
    int n, i, ok;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    chat_ready(&a, &r, 2, conf);
    chat_ready(&b, &r, 2, conf);
    chat_ready(&c, &r, 2, conf);
    instance_id(a.log, id, sizeof(id));
    JOIN(&wb, b.port, "wb");
    JOIN(&wc, c.port, "wc");
    JOIN(&a1, a.port, "a1");
    JOIN(&a2, a.port, "a2");
    drain(&wb);
    drain(&wc);
    ck_assert(set_has(&r, USERS_KEY ":instances", id));
    snprintf(key, sizeof(key), USERS_KEY ":instance:%s", id);
    ck_assert(set_has(&r, key, "a1") && set_has(&r, key, "a2"));
    snprintf(cmd, sizeof(cmd), "EXISTS %s:alive", key);
    ck_assert_int_eq(redis_int(&r, cmd), 1);

    n = h_children(a.pid, kids, MAX_KIDS);
    ck_assert_int_eq(n, 3);
    ok = kill(a.pid, SIGSTOP) == 0;
    for (i = 0; i < n; i++)
        ok = kill(kids[i], SIGSTOP) == 0 && ok;
    for (i = 0; i < n; i++)
        ok = kill(kids[i], SIGKILL) == 0 && ok;
    ok = kill(a.pid, SIGKILL) == 0 && ok;
    ck_assert(ok);
    t0 = h_now_ms();
    ck_assert_int_eq(h_wait_exit(a.pid, 3000, NULL), 1);
    a.pid = 0;
    for (i = 0; i < n; i++)
        ck_assert_msg(wait_gone(kids[i], 3000), "pid %d survived SIGKILL", (int)kids[i]);
    ck_assert(wsc_wait_eof(&a1, T_MSG_MS) && wsc_wait_eof(&a2, T_MSG_MS));

    ck_assert_msg(expect_unordered(&wb, gone, 2, CRASH_BOUND_MS), "wb (instance b)");
    ms = h_now_ms() - t0;
    ck_assert_msg(ms >= CRASH_TTL_MS / 2,
                  "announced %lld ms after the crash, before the "
                  "heartbeat (instance-ttl 2s) could expire",
                  ms);
    ck_assert_msg(ms <= CRASH_BOUND_MS, "announced only %lld ms after the crash", ms);
    ck_assert_msg(expect_unordered(&wc, gone, 2, CRASH_BOUND_MS - (int)ms), "wc (instance c)");
    /* once: nothing more through another scan period of both survivors */
    ck_assert_msg(wsc_no_text(&wb, CRASH_SCAN_MS + 500), "wb: a second notice");
    QUIET(&wc);

    ck_assert_int_eq(redis_int(&r, "SCARD " USERS_KEY), 2);
    ck_assert(set_has(&r, USERS_KEY, "wb") && set_has(&r, USERS_KEY, "wc"));
    ck_assert(!set_has(&r, USERS_KEY ":instances", id));
    ck_assert_int_eq(redis_int(&r, "SCARD " USERS_KEY ":instances"), 2);
    snprintf(cmd, sizeof(cmd), "EXISTS %s", key);
    ck_assert_int_eq(redis_int(&r, cmd), 0);
    snprintf(cmd, sizeof(cmd), "EXISTS %s:alive", key);
    ck_assert_int_eq(redis_int(&r, cmd), 0);

    JOIN(&again, b.port, "a1");
    EXPECT(&wb, "a1: has joined the chat!");
    EXPECT(&wc, "a1: has joined the chat!");
    wsc_free(&again);
    wsc_free(&a1);
    wsc_free(&a2);
    wsc_free(&wb);
    wsc_free(&wc);
    h_chat_free(&a);
    h_chat_free(&b);
    h_chat_free(&c);
    h_redis_free(&r);
}
END_TEST

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
    chat_ready(&a, &r, 2, "shutdown-timeout 3s\n");
    chat_ready(&b, &r, 2, NULL);
    instance_id(a.log, id_a, sizeof(id_a));
    instance_id(b.log, id_b, sizeof(id_b));
    ck_assert_str_ne(id_a, id_b);
    JOIN(&wb, b.port, "wb");
    JOIN(&a1, a.port, "a1");
    JOIN(&a2, a.port, "a2");
    drain(&wb);
    ck_assert(set_has(&r, USERS_KEY ":instances", id_a));
    ck_assert(set_has(&r, USERS_KEY ":instances", id_b));

    n = h_children(a.pid, kids, MAX_KIDS);
    t0 = h_now_ms();
    ck_assert_int_eq(kill(a.pid, SIGTERM), 0);
    ck_assert_int_eq(wsc_wait_close(&a1, DRAIN_TIMEOUT_MS + 1000), 1001);
    ck_assert_int_eq(wsc_wait_close(&a2, DRAIN_TIMEOUT_MS + 1000), 1001);
    ASSERT_LOG(expect_unordered(&wb, gone, 2, DRAIN_TIMEOUT_MS + 1000), a.log);
    ck_assert_int_eq(h_wait_exit(a.pid, DRAIN_TIMEOUT_MS + KILL_GRACE_MS + 1000, &st), 1);
    ms = h_now_ms() - t0;
    a.pid = 0;
    ck_assert_msg(ms <= DRAIN_TIMEOUT_MS + KILL_GRACE_MS, "master exited after %lld ms", ms);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "master wait status 0x%x", st);
    for (i = 0; i < n && i < MAX_KIDS; i++)
        ck_assert_msg(wait_gone(kids[i], 1000), "child %d outlived the master", (int)kids[i]);
    ck_assert(!h_file_contains(a.log, "SIGKILL"));
    QUIET(&wb);

    ck_assert(!set_has(&r, USERS_KEY, "a1") && !set_has(&r, USERS_KEY, "a2"));
    ck_assert(set_has(&r, USERS_KEY, "wb"));
    if (set_has(&r, USERS_KEY ":instances", id_a))
        h_dump_tail(a.log, 40);
    ck_assert_msg(!set_has(&r, USERS_KEY ":instances", id_a), "instance %s still registered", id_a);
    /* every client answered its close at once: nothing had to wait for the timeout */
    ck_assert_msg(!h_file_contains(a.log, "shutdown timeout"),
                  "a process waited for shutdown-timeout with no connection left");
    ck_assert(set_has(&r, USERS_KEY ":instances", id_b));
    snprintf(key, sizeof(key), USERS_KEY ":instance:%s", id_a);
    snprintf(cmd, sizeof(cmd), "EXISTS %s", key);
    ck_assert_int_eq(redis_int(&r, cmd), 0);
    snprintf(cmd, sizeof(cmd), "EXISTS %s:alive", key);
    ck_assert_int_eq(redis_int(&r, cmd), 0);
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

static void rewrite_conf(const char *path, const char *from, const char *to)
{
    char buf[8192], out[8192];
    FILE *f = fopen(path, "r");
    size_t n;
    char *p;

    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strstr(buf, from);
    ck_assert_ptr_nonnull(p);
    snprintf(out, sizeof(out), "%.*s%s%s", (int)(p - buf), buf, to, p + strlen(from));
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(out, f);
    fclose(f);
}

/* _i == 0: SIGHUP with the same file; _i == 1: workers 2 -> 3. Sessions
 * keep coming through the reload and none fails; xavier and yvonne, on
 * old workers, chat on until shutdown-timeout and then get 1001. */
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
    chat_ready(&c, &r, 2, "shutdown-timeout 3s\nrate-limit 0\n");
    JOIN(&x.c, c.port, "xavier");
    JOIN(&y.c, c.port, "yvonne");
    drain(&x.c);
    x.open = y.open = 1;
    old0 = h_child_titled(c.pid, "redis-chat: worker 0");
    old1 = h_child_titled(c.pid, "redis-chat: worker 1");
    ck_assert(old0 != 0 && old1 != 0);
    if (_i == 1)
        rewrite_conf(c.conf, "workers 2", "workers 3");

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
    ck_assert_msg(redis_int_wait(&r, "SCARD " USERS_KEY, 0, T_MSG_MS), "users left in the set");
    /* an old worker whose last session is gone exits */
    ASSERT_LOG(wait_gone(old0, 1000) && wait_gone(old1, 1000), c.log);
    ck_assert_int_eq(h_children(c.pid, kids, MAX_KIDS), workers + 1);
    wsc_free(&x.c);
    wsc_free(&y.c);
    h_chat_free(&c);
    h_redis_free(&r);
}
END_TEST

/* ---- reconnect storm --------------------------------------------------------------- */

enum storm_state { ST_CONNECTING = 0, ST_HEAD, ST_FRAMES, ST_WELCOMED, ST_REFUSED, ST_FAILED };

struct storm_client {
    int fd;
    enum storm_state st;
    int status;
    size_t len;
    char buf[1024];
    char why[80];
};

static void storm_fail(struct storm_client *c, const char *why)
{
    c->st = ST_FAILED;
    snprintf(c->why, sizeof(c->why), "%s", why);
}

/* Connected (or not): send the upgrade of /chat/s<i>. */
static void storm_send(struct storm_client *c, int i)
{
    char req[512];
    int err = 0, n;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err != 0) {
        storm_fail(c, strerror(err != 0 ? err : errno));
        return;
    }
    n = snprintf(req, sizeof(req),
                 "GET /chat/s%d HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: " STORM_KEY "\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 i);
    if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        storm_fail(c, "could not send the request");
    else
        c->st = ST_HEAD;
}

/* Go as far as the bytes received allow: the head, then frames up to the
 * first text, which must be the welcome. */
static void storm_parse(struct storm_client *c, int i)
{
    if (c->st == ST_HEAD) {
        const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        size_t head;

        if (end == NULL) {
            if (c->len == sizeof(c->buf))
                storm_fail(c, "response head too large");
            return;
        }
        head = (size_t)(end + 4 - c->buf);
        if (sscanf(c->buf, "HTTP/1.1 %d ", &c->status) != 1) {
            storm_fail(c, "no status line");
            return;
        }
        if (c->status != 101) {
            c->st = c->status >= 400 && c->status <= 599 ? ST_REFUSED : ST_FAILED;
            snprintf(c->why, sizeof(c->why), "HTTP %d", c->status);
            return;
        }
        if (memmem(c->buf, head, STORM_ACCEPT, strlen(STORM_ACCEPT)) == NULL) {
            storm_fail(c, "101 without the right Sec-WebSocket-Accept");
            return;
        }
        memmove(c->buf, c->buf + head, c->len - head);
        c->len -= head;
        c->st = ST_FRAMES;
    }
    while (c->st == ST_FRAMES && c->len >= 2) {
        const uint8_t *b = (const uint8_t *)c->buf;
        size_t plen = b[1] & 0x7f, hdr = 2;
        char welcome[32];

        if ((b[1] & 0x80) || plen > 125) {
            storm_fail(c, "masked or long frame before the welcome");
            return;
        }
        if (c->len < hdr + plen)
            return;
        if ((b[0] & 0x0f) == WSC_OP_CLOSE) {
            storm_fail(c, "close frame instead of the welcome");
            return;
        }
        if ((b[0] & 0x0f) == WSC_OP_TEXT) {
            snprintf(welcome, sizeof(welcome), "Welcome s%d!", i);
            if (plen == strlen(welcome) && memcmp(c->buf + hdr, welcome, plen) == 0) {
                c->st = ST_WELCOMED;
            } else {
                char text[48];

                snprintf(text, sizeof(text), "%.*s", (int)plen, c->buf + hdr);
                c->st = ST_FAILED;
                snprintf(c->why, sizeof(c->why), "first text \"%.40s\"", text);
            }
            return;
        }
        memmove(c->buf, c->buf + hdr + plen, c->len - hdr - plen); /* ping, pong */
        c->len -= hdr + plen;
    }
}

/* 2000 clients connect and join at once, non-blocking, from one thread:
 * each gets 101 and its welcome, or an HTTP error status; none hangs past
 * 30 s, none is dropped without an answer. The set then holds exactly the
 * welcomed names, and all of them are gone once the clients close. */
START_TEST(test_reconnect_storm)
{
    static struct storm_client cl[STORM_CLIENTS];
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct epoll_event evs[256];
    struct rlimit rl;
    struct h_redis r;
    struct h_chat c;
    struct wsc late;
    int ep, i, k, n, done = 0, welcomed = 0, refused = 0, failed = 0, first_failed = -1;
    long long t0, launch_ms, ms;
    char cmd[64];

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_msg(rl.rlim_cur >= STORM_CLIENTS + 256, "RLIMIT_NOFILE %lu: too low for %d clients",
                  (unsigned long)rl.rlim_cur, STORM_CLIENTS);
    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    /* joins flood everyone with notices: nobody pings, nobody reads after the
     * welcome (about 60 KB of notices per client fit in the socket buffers) */
    chat_ready(&c, &r, 2, "max-connections-per-ip 0\nping-interval 0\nrate-limit 0\n");

    ep = epoll_create1(EPOLL_CLOEXEC);
    ck_assert_int_ge(ep, 0);
    sa.sin_port = htons((uint16_t)c.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    t0 = h_now_ms();
    for (i = 0; i < STORM_CLIENTS; i++) {
        struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};

        cl[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ck_assert_msg(cl[i].fd >= 0, "socket %d: %s", i, strerror(errno));
        if (connect(cl[i].fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 && errno != EINPROGRESS) {
            storm_fail(&cl[i], strerror(errno));
            done++;
        } else {
            ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, cl[i].fd, &ev), 0);
        }
    }
    launch_ms = h_now_ms() - t0;

    while (done < STORM_CLIENTS && h_now_ms() - t0 < STORM_BOUND_MS) {
        n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 100);
        for (k = 0; k < n; k++) {
            struct storm_client *s = &cl[evs[k].data.u32];
            ssize_t got;

            i = (int)evs[k].data.u32;
            if (s->st == ST_CONNECTING) {
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
                storm_send(s, i);
                if (s->st == ST_HEAD)
                    ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev), 0);
            } else {
                got = recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len, 0);
                if (got > 0) {
                    s->len += (size_t)got;
                    storm_parse(s, i);
                } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                    storm_fail(s, got == 0 ? "closed without an answer" : strerror(errno));
                }
            }
            if (s->st >= ST_WELCOMED) {
                epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
                done++;
            }
        }
    }
    ms = h_now_ms() - t0;
    close(ep);
    for (i = 0; i < STORM_CLIENTS; i++) {
        welcomed += cl[i].st == ST_WELCOMED;
        refused += cl[i].st == ST_REFUSED;
        if (cl[i].st == ST_FAILED && failed++ == 0)
            first_failed = i;
        if (cl[i].st == ST_REFUSED && cl[i].status != 503 && cl[i].status != 429)
            ck_abort_msg("client %d refused with HTTP %d", i, cl[i].status);
    }
    fprintf(stderr,
            "storm: %d clients launched in %lld ms: %d welcomed, %d refused, %d failed, "
            "%d unanswered after %lld ms\n",
            STORM_CLIENTS, launch_ms, welcomed, refused, failed, STORM_CLIENTS - done, ms);
    ck_assert_msg(failed == 0, "%d clients failed; first: s%d: %s", failed, first_failed,
                  first_failed >= 0 ? cl[first_failed].why : "");
    ASSERT_LOG(done == STORM_CLIENTS, c.log);
    ck_assert_int_gt(welcomed, 0);

    /* every welcomed name is in the set, nobody else; all leave on close */
    snprintf(cmd, sizeof(cmd), "SCARD %s", USERS_KEY);
    ck_assert_int_eq(redis_int(&r, cmd), welcomed);
    for (i = 0; i < STORM_CLIENTS; i++)
        close(cl[i].fd);
    ASSERT_LOG(redis_int_wait(&r, cmd, 0, 20000), c.log);
    JOIN(&late, c.port, "late");
    wsc_free(&late);
    h_chat_free(&c);
    h_redis_free(&r);
}
END_TEST

static Suite *faults2_suite(void)
{
    Suite *s = suite_create("faults2");
    TCase *in = tcase_create("instances");
    TCase *st = tcase_create("storm");

    /* each test runs its own Redis and instances below the fixture's dir */
    tcase_add_unchecked_fixture(in, tmp_enter, tmp_leave);
    tcase_set_timeout(in, 60);
    tcase_add_test(in, test_instance_crash);
    tcase_add_test(in, test_sigterm_drain);
    tcase_add_loop_test(in, test_sighup_under_traffic, 0, 2);
    suite_add_tcase(s, in);

    tcase_add_unchecked_fixture(st, tmp_enter, tmp_leave);
    tcase_set_timeout(st, 90);
    tcase_add_test(st, test_reconnect_storm);
    suite_add_tcase(s, st);
    return s;
}

int main(void)
{
    return check_run(faults2_suite());
}
