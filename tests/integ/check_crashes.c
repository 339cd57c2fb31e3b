/* check_crashes.c -- processes killed under connected users, end to end: a
 * worker (its users removed and announced once, the slot respawned), the
 * broker (users re-registered with the new one, nobody announced), a user
 * leaving around a broker crash (the leave kept until a broker takes it), a
 * whole instance (its users reaped by the survivors once its heartbeat
 * expires). Every test runs its own redis-server (TLS + password), so it may
 * read its keys without another test's users in the way. The process model
 * alone (respawn, titles, exit codes) is check_process.c. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define MAX_KIDS 64
#define MAX_USERS 32 /* joins until both workers hold one: 2^-31 to miss by chance */
#define USERS_KEY "chat-users"

#define CRASH_TTL_MS 2000  /* instance-ttl of the crash test */
#define CRASH_SCAN_MS 5000 /* each broker looks for dead instances this often */
#define CRASH_BOUND_MS 12000

#define JOIN(c, port, name) fx_join((c), (port), (name), NULL, __LINE__)

/* ---- a worker or the broker killed ----------------------------------------- */

/* SIGKILL one worker of instance a: its users are gone from chat-users and
 * announced once to the other worker's users and to instance b; the master
 * starts a new worker in the slot and the names are free again. */
START_TEST(test_worker_kill)
{
    struct h_redis r;
    struct h_chat a, b;
    struct wsc u[MAX_USERS], watch, again;
    const char *gone[MAX_USERS];
    char names[MAX_USERS][16], left[MAX_USERS][64], title[64], text[64];
    int slot[MAX_USERS], n, i, nv = 0, victim, survivor = -1;
    pid_t old;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&a, &r, 2, NULL);
    fx_chat_ready(&b, &r, 2, NULL);
    JOIN(&watch, b.port, "watcher");
    n = fx_join_spread(u, slot, MAX_USERS, &a, 4);
    fx_drain(&watch);
    for (i = 0; i < n; i++)
        fx_drain(&u[i]);

    victim = slot[0];
    for (i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "u%d", i);
        if (slot[i] == victim) {
            snprintf(left[nv], sizeof(left[nv]), "%s: has left the chat!", names[i]);
            gone[nv] = left[nv];
            nv++;
        } else if (survivor < 0) {
            survivor = i;
        }
    }
    snprintf(title, sizeof(title), "redis-chat: worker %d", victim);
    old = h_child_titled(a.pid, title);
    ck_assert_int_ne(old, 0);
    ck_assert_int_eq(kill(old, SIGKILL), 0);

    for (i = 0; i < n; i++)
        if (slot[i] == victim)
            ck_assert_msg(wsc_wait_eof(&u[i], T_MSG_MS), "%s: connection still open", names[i]);
    ck_assert_msg(fx_expect_unordered(&watch, gone, nv, 5000), "watcher (instance b)");
    QUIET(&watch);
    for (i = 0; i < n; i++) {
        if (slot[i] == victim)
            continue;
        ck_assert_msg(fx_expect_unordered(&u[i], gone, nv, 5000), "%s (other worker)", names[i]);
        QUIET(&u[i]);
    }
    for (i = 0; i < n; i++)
        ck_assert_msg(fx_set_has(&r, USERS_KEY, names[i]) == (slot[i] != victim),
                      "%s: in chat-users: %d", names[i], fx_set_has(&r, USERS_KEY, names[i]));
    ck_assert_msg(h_wait_new_child(a.pid, title, old, 3000) != 0, "no new %s", title);

    snprintf(text, sizeof(text), "%s: still here", names[survivor]);
    SEND(&u[survivor], "still here");
    EXPECT(&watch, text);
    JOIN(&again, a.port, names[0]);
    snprintf(text, sizeof(text), "%s: has joined the chat!", names[0]);
    EXPECT(&watch, text);
    wsc_free(&again);
    wsc_free(&watch);
    for (i = 0; i < n; i++)
        wsc_free(&u[i]);
    h_chat_free(&a);
    h_chat_free(&b);
    h_redis_free(&r);
}
END_TEST

/* Kill the broker, wait for the new one and for both workers to see Redis
 * through it. Returns how long that took. */
static long long broker_kill(const struct h_chat *c)
{
    int avail = h_count_in_file(c->log, "chat service available");
    long long t0 = h_now_ms();
    pid_t old = h_child_titled(c->pid, "redis-chat: broker");

    ck_assert_int_ne(old, 0);
    ck_assert_int_eq(kill(old, SIGKILL), 0);
    ck_assert_msg(h_wait_new_child(c->pid, "redis-chat: broker", old, 3000) != 0, "no new broker");
    ASSERT_LOG(h_wait_count(c->log, "chat service available", avail + 2, 10000), c->log);
    return h_now_ms() - t0;
}

/* Users stay connected across a broker restart: the workers re-register
 * them, nobody is announced, messages flow both ways, each name is listed
 * once, and a later leave is removed and announced. */
START_TEST(test_broker_kill)
{
    struct h_redis r;
    struct h_chat c;
    struct wsc u[MAX_USERS];
    char id[64], key[128], cmd[160], name[16], text[64];
    int slot[MAX_USERS], n, i, j, s, senders[2];
    long long ms;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&c, &r, 2, NULL);
    fx_instance_id(c.log, id, sizeof(id));
    n = fx_join_spread(u, slot, MAX_USERS, &c, 4);
    for (i = 0; i < n; i++)
        fx_drain(&u[i]);

    ms = broker_kill(&c);
    ck_assert_msg(ms < 5000, "chat back %lld ms after the broker was killed", ms);
    for (i = 0; i < n; i++)
        QUIET(&u[i]); /* no leave, no join */

    /* one sender on each worker; everybody else hears each */
    senders[0] = 0;
    for (senders[1] = 1; slot[senders[1]] == slot[0]; senders[1]++)
        ;
    for (s = 0; s < 2; s++) {
        i = senders[s];
        snprintf(text, sizeof(text), "after %d", i);
        SEND(&u[i], text);
        snprintf(text, sizeof(text), "u%d: after %d", i, i);
        for (j = 0; j < n; j++)
            if (j != i)
                ck_assert_msg(wsc_expect_text(&u[j], text, T_MSG_MS), "u%d: no \"%s\"", j, text);
        QUIET(&u[i]);
    }

    /* each name listed once, and nobody else */
    snprintf(key, sizeof(key), USERS_KEY ":instance:%s", id);
    snprintf(cmd, sizeof(cmd), "SCARD %s", key);
    ck_assert_int_eq(fx_redis_int(&r, "SCARD " USERS_KEY), n);
    ck_assert_int_eq(fx_redis_int(&r, cmd), n);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "u%d", i);
        ck_assert_msg(fx_set_has(&r, USERS_KEY, name), "%s not in chat-users", name);
        ck_assert_msg(fx_set_has(&r, key, name), "%s not in %s", name, key);
    }

    ck_assert_int_eq(wsc_send_close(&u[0], 1000, NULL), 0);
    ck_assert_int_eq(wsc_wait_close(&u[0], T_MSG_MS), 1000);
    ck_assert_msg(fx_set_wait(&r, USERS_KEY, "u0", 0, T_MSG_MS), "u0 still in chat-users");
    for (i = 1; i < n; i++) {
        EXPECT(&u[i], "u0: has left the chat!");
        QUIET(&u[i]);
    }
    for (i = 0; i < n; i++)
        wsc_free(&u[i]);
    h_chat_free(&c);
    h_redis_free(&r);
}
END_TEST

/* u0 (the one who leaves) and watchers until one, *ws, shares u0's worker
 * and another, *wo, is on the other worker. Returns how many joined. */
static int join_leaver_watchers(struct wsc *u, int *slot, const struct h_chat *c, int *ws, int *wo)
{
    char name[16], text[4 * MAX_USERS + 16];
    int n;

    *ws = *wo = -1;
    for (n = 0; n < MAX_USERS && (*ws < 0 || *wo < 0); n++) {
        snprintf(name, sizeof(name), "u%d", n);
        JOIN(&u[n], c->port, name);
        slot[n] = fx_user_slot(c->log, name);
        ck_assert_msg(slot[n] == 0 || slot[n] == 1, "%s: no join line in %s", name, c->log);
        if (n > 0 && slot[n] == slot[0] && *ws < 0)
            *ws = n;
        else if (slot[n] != slot[0] && *wo < 0)
            *wo = n;
    }
    ck_assert_msg(*ws > 0 && *wo > 0, "%d users, no watcher on each worker (%s)", n,
                  fx_slots_text(slot, n, text, sizeof(text)));
    return n;
}

/* u0 leaves around a broker crash; the name must still be removed and
 * announced once the new broker is up, never left behind as a ghost.
 *   LEAVE_NO_BROKER: no broker runs when u0 leaves (the master is stopped
 *     so it cannot respawn one yet): the worker keeps an "orphan" leave;
 *     checked by the watcher on u0's own worker.
 *   LEAVE_RIGHT_AFTER_KILL: the broker is killed and u0 closes right after.
 *   LEAVE_TO_HUNG_BROKER: the broker hangs (SIGSTOP), u0 leaves, so its
 *     worker writes the LEAVE to the broker's socket; then the broker dies.
 *   LEAVE_LATE_WORKER: as LEAVE_NO_BROKER, but the other worker is slow to
 *     come back to the new broker (stopped for 0.5 s after it starts; a new
 *     broker waits up to 2 s for all its workers before it publishes what
 *     it holds): its user must still be told. */
enum {
    LEAVE_NO_BROKER = 0,
    LEAVE_RIGHT_AFTER_KILL,
    LEAVE_TO_HUNG_BROKER,
    LEAVE_LATE_WORKER,
    LEAVE_CASES
};

START_TEST(test_leave_around_broker_kill)
{
    struct h_redis r;
    struct h_chat c;
    struct wsc u[MAX_USERS];
    char title[64];
    int slot[MAX_USERS], n, i, ws, wo, lost, ok, gone;
    pid_t old, late = 0;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&c, &r, 2, NULL);
    n = join_leaver_watchers(u, slot, &c, &ws, &wo);
    for (i = 1; i < n; i++)
        fx_drain(&u[i]);
    old = h_child_titled(c.pid, "redis-chat: broker");
    ck_assert_int_ne(old, 0);

    /* nothing may abort while a process is stopped: ok is asserted after SIGCONT */
    switch (_i) {
    case LEAVE_NO_BROKER:
    case LEAVE_LATE_WORKER:
        if (_i == LEAVE_LATE_WORKER) {
            snprintf(title, sizeof(title), "redis-chat: worker %d", slot[wo]);
            late = h_child_titled(c.pid, title);
            ck_assert_int_ne(late, 0);
            ck_assert_int_eq(kill(late, SIGSTOP), 0);
        }
        lost = h_count_in_file(c.log, "broker link lost");
        ok = kill(c.pid, SIGSTOP) == 0 && kill(old, SIGKILL) == 0 &&
             h_wait_count(c.log, "broker link lost", lost + (late ? 1 : 2), T_MSG_MS);
        wsc_free(&u[0]);
        ok = ok && h_wait_log(c.log, "user=u0: closed", T_MSG_MS);
        kill(c.pid, SIGCONT);
        break;
    case LEAVE_RIGHT_AFTER_KILL:
        ok = kill(old, SIGKILL) == 0;
        wsc_free(&u[0]);
        break;
    default:
        ok = kill(old, SIGSTOP) == 0;
        wsc_free(&u[0]);
        ok = ok && h_wait_log(c.log, "user=u0: closed", T_MSG_MS);
        h_sleep_ms(100); /* the LEAVE is written to the socket on the next loop turn */
        kill(old, SIGKILL);
        break;
    }
    ok = ok && h_wait_new_child(c.pid, "redis-chat: broker", old, 3000) != 0;
    if (late != 0) {
        h_sleep_ms(500);
        kill(late, SIGCONT);
    }
    gone = ok && fx_set_wait(&r, USERS_KEY, "u0", 0, 10000);
    ASSERT_LOG(ok, c.log); /* stopped, killed, a new broker */
    if (!gone)
        h_dump_tail(c.log, 40);
    ck_assert_msg(gone, "u0 left but is still in chat-users 10 s after the broker crash");
    ASSERT_LOG(h_wait_count(c.log, "chat service available", 4, 10000), c.log);
    ASSERT_LOG(wsc_expect_text(&u[ws], "u0: has left the chat!", T_MSG_MS), c.log);
    QUIET(&u[ws]);
    if (_i != LEAVE_NO_BROKER) { /* there it is a race: see LEAVE_LATE_WORKER */
        ASSERT_LOG(wsc_expect_text(&u[wo], "u0: has left the chat!", T_MSG_MS), c.log);
        QUIET(&u[wo]);
    }
    snprintf(title, sizeof(title), "u%d", ws);
    ck_assert(fx_set_has(&r, USERS_KEY, title));
    snprintf(title, sizeof(title), "u%d", wo);
    ck_assert(fx_set_has(&r, USERS_KEY, title));
    for (i = 1; i < n; i++)
        wsc_free(&u[i]);
    h_chat_free(&c);
    h_redis_free(&r);
}
END_TEST

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
    fx_chat_ready(&a, &r, 2, conf);
    fx_chat_ready(&b, &r, 2, conf);
    fx_chat_ready(&c, &r, 2, conf);
    fx_instance_id(a.log, id, sizeof(id));
    JOIN(&wb, b.port, "wb");
    JOIN(&wc, c.port, "wc");
    JOIN(&a1, a.port, "a1");
    JOIN(&a2, a.port, "a2");
    fx_drain(&wb);
    fx_drain(&wc);
    ck_assert(fx_set_has(&r, USERS_KEY ":instances", id));
    snprintf(key, sizeof(key), USERS_KEY ":instance:%s", id);
    ck_assert(fx_set_has(&r, key, "a1") && fx_set_has(&r, key, "a2"));
    snprintf(cmd, sizeof(cmd), "EXISTS %s:alive", key);
    ck_assert_int_eq(fx_redis_int(&r, cmd), 1);

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
        ck_assert_msg(h_wait_gone(kids[i], 3000), "pid %d survived SIGKILL", (int)kids[i]);
    ck_assert(wsc_wait_eof(&a1, T_MSG_MS) && wsc_wait_eof(&a2, T_MSG_MS));

    ck_assert_msg(fx_expect_unordered(&wb, gone, 2, CRASH_BOUND_MS), "wb (instance b)");
    ms = h_now_ms() - t0;
    ck_assert_msg(ms >= CRASH_TTL_MS / 2,
                  "announced %lld ms after the crash, before the "
                  "heartbeat (instance-ttl 2s) could expire",
                  ms);
    ck_assert_msg(ms <= CRASH_BOUND_MS, "announced only %lld ms after the crash", ms);
    ck_assert_msg(fx_expect_unordered(&wc, gone, 2, CRASH_BOUND_MS - (int)ms), "wc (instance c)");
    /* once: nothing more through another scan period of both survivors */
    ck_assert_msg(wsc_no_text(&wb, CRASH_SCAN_MS + 500), "wb: a second notice");
    QUIET(&wc);

    ck_assert_int_eq(fx_redis_int(&r, "SCARD " USERS_KEY), 2);
    ck_assert(fx_set_has(&r, USERS_KEY, "wb") && fx_set_has(&r, USERS_KEY, "wc"));
    ck_assert(!fx_set_has(&r, USERS_KEY ":instances", id));
    ck_assert_int_eq(fx_redis_int(&r, "SCARD " USERS_KEY ":instances"), 2);
    snprintf(cmd, sizeof(cmd), "EXISTS %s", key);
    ck_assert_int_eq(fx_redis_int(&r, cmd), 0);
    snprintf(cmd, sizeof(cmd), "EXISTS %s:alive", key);
    ck_assert_int_eq(fx_redis_int(&r, cmd), 0);

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

/* An instance presumed dead while it lives: its broker stopped (SIGSTOP)
 * and its heartbeat deleted behind its back, instance b reaps it (its
 * users announced as left, removed from the rooms' sets). Once the broker
 * runs again, its next heartbeat finds the key had gone: it re-adds every
 * user it holds, in every room, with its per-instance sets and rooms list,
 * and the users, who never lost their connections, chat on. */
#define HEAL_BOUND_MS 5000 /* a few heartbeats (instance-ttl 2s: every 500 ms) */

START_TEST(test_instance_presumed_dead)
{
    static const char conf[] = "instance-ttl 2s\n";
    struct h_redis r;
    struct h_chat a, b;
    struct wsc a1, a2, wb, wl;
    char id[64], key[200], cmd[240];
    pid_t broker;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&a, &r, 2, conf);
    fx_chat_ready(&b, &r, 2, conf);
    fx_instance_id(a.log, id, sizeof(id));
    JOIN(&wb, b.port, "wb");
    fx_join_room(&wl, b.port, "lobby", "wl", __LINE__);
    JOIN(&a1, a.port, "a1");
    fx_join_room(&a2, a.port, "lobby", "a2", __LINE__);
    fx_drain(&wb);
    fx_drain(&wl);
    broker = h_child_titled(a.pid, "redis-chat: broker");
    ck_assert_int_ne(broker, 0);

    ck_assert_int_eq(kill(broker, SIGSTOP), 0);
    snprintf(cmd, sizeof(cmd), "DEL " USERS_KEY ":instance:%s:alive", id);
    fx_redis_int(&r, cmd);
    ck_assert_msg(wsc_expect_text(&wb, "a1: has left the chat!", CRASH_BOUND_MS), "wb: no leave");
    ck_assert_msg(wsc_expect_text(&wl, "a2: has left the chat!", CRASH_BOUND_MS), "wl: no leave");
    ck_assert(!fx_set_has(&r, USERS_KEY, "a1"));
    ck_assert(!fx_set_has(&r, "chat:{lobby}:users", "a2"));

    ck_assert_int_eq(kill(broker, SIGCONT), 0);
    ck_assert_msg(fx_set_wait(&r, USERS_KEY, "a1", 1, HEAL_BOUND_MS), "a1 not back");
    ck_assert_msg(fx_set_wait(&r, "chat:{lobby}:users", "a2", 1, HEAL_BOUND_MS), "a2 not back");
    ASSERT_LOG(h_wait_count(a.log, "its heartbeat had expired", 1, T_MSG_MS), a.log);
    /* listed again for a real crash's cleanup */
    snprintf(key, sizeof(key), USERS_KEY ":instance:%s", id);
    ck_assert_msg(fx_set_wait(&r, key, "a1", 1, T_MSG_MS), "a1 not in %s", key);
    snprintf(key, sizeof(key), "chat:{lobby}:instance:%s", id);
    ck_assert_msg(fx_set_wait(&r, key, "a2", 1, T_MSG_MS), "a2 not in %s", key);
    snprintf(key, sizeof(key), USERS_KEY ":instance:%s:rooms", id);
    ck_assert_msg(fx_set_wait(&r, key, "lobby", 1, T_MSG_MS), "lobby not in %s", key);
    ck_assert(fx_set_has(&r, USERS_KEY ":instances", id));

    /* still connected, both ways */
    SEND(&a1, "still here");
    EXPECT(&wb, "a1: still here");
    SEND(&wl, "welcome back");
    EXPECT(&a2, "wl: welcome back");
    wsc_free(&a1);
    wsc_free(&a2);
    wsc_free(&wb);
    wsc_free(&wl);
    h_chat_free(&a);
    h_chat_free(&b);
    h_redis_free(&r);
}
END_TEST

static Suite *crashes_suite(void)
{
    Suite *s = suite_create("crashes");
    TCase *kl = tcase_create("kill");
    TCase *in = tcase_create("instances");

    /* each test runs its own Redis and instances below the fixture's dir */
    tcase_add_unchecked_fixture(kl, fx_tmp_enter, fx_tmp_leave);
    tcase_set_timeout(kl, 60);
    tcase_add_test(kl, test_worker_kill);
    tcase_add_test(kl, test_broker_kill);
    tcase_add_loop_test(kl, test_leave_around_broker_kill, 0, LEAVE_CASES);
    suite_add_tcase(s, kl);

    tcase_add_unchecked_fixture(in, fx_tmp_enter, fx_tmp_leave);
    tcase_set_timeout(in, 60);
    tcase_add_test(in, test_instance_crash);
    tcase_add_test(in, test_instance_presumed_dead);
    suite_add_tcase(s, in);
    return s;
}

int main(void)
{
    return check_run(crashes_suite());
}
