/* check_rooms.c -- rooms (`/chat/{room}/{user}`, docs/protocol.md) end to end
 * with plain clients: one redis-server (TLS + password) and two redis-chat
 * instances of 2 workers sharing it. Isolation of rooms from each other and
 * from the default room (which stays the seed's chat, on the channel `chat`),
 * names unique per room, the per-room keys and subscriptions in Redis, bad
 * room names refused before the upgrade, wscat in a room; then a worker, the
 * broker, a whole instance and Redis lost, and SIGTERM, under users of
 * several rooms (each test with its own Redis). The typed protocol is
 * check_typed.c. */
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

#define T_LEAVE_MS 3000       /* a leave reaching the sets */
#define T_REDIS_BACK_MS 12000 /* Redis back up: retries back off up to 5 s + jitter */
#define USERS_KEY "chat-users"
#define TAKEN_REASON "username already taken"

#define MAX_KIDS 64
#define MAX_USERS 32         /* joins until a worker holds both rooms */
#define CRASH_SCAN_MS 5000   /* each broker looks for dead instances this often */
#define CRASH_BOUND_MS 12000 /* instance-ttl 2s + a scan period + slack */
#define SPY_MAX 16384

static struct h_redis redis;
static struct h_chat chat_a, chat_b; /* two instances, one Redis */

/* a join notice published just before this user's own may follow its welcome */
#define JOIN(c, port, room, name) fx_join_room((c), (port), (room), (name), __LINE__)

static void rooms_setup(void)
{
    fx_tmp_enter();
    ck_assert_int_eq(h_redis_start(&redis, 1, "s3cret"), 0);
    fx_chat_ready(&chat_a, &redis, 2, "history-on-join 0\n");
    fx_chat_ready(&chat_b, &redis, 2, "history-on-join 0\n");
}

static void rooms_teardown(void)
{
    h_chat_free(&chat_a);
    h_chat_free(&chat_b);
    h_redis_free(&redis);
    fx_tmp_leave();
}

/* "chat:{R}:users" and the like, for room R. */
static const char *room_key(char *out, size_t cap, const char *room, const char *suffix)
{
    snprintf(out, cap, "chat:{%s}%s", room, suffix);
    return out;
}

/* Subscribers of a channel (PUBSUB NUMSUB answers "channel\nN\n"), or -1. */
static long numsub(const struct h_redis *r, const char *channel)
{
    char out[256];
    const char *nl;

    if (h_redis_cli(r, out, sizeof(out), "PUBSUB NUMSUB %s", channel) != 0)
        return -1;
    nl = strchr(out, '\n');
    if (nl == NULL || nl[1] < '0' || nl[1] > '9')
        return -1;
    return strtol(nl + 1, NULL, 10);
}

/* Wait until channel has `want` subscribers; 1, or 0 with the last count. */
static int numsub_wait(const struct h_redis *r, const char *channel, long want, long *last)
{
    long long end = h_now_ms() + T_MSG_MS;

    while ((*last = numsub(r, channel)) != want) {
        if (h_now_ms() >= end)
            return 0;
        h_sleep_ms(50);
    }
    return 1;
}

/* Non-overlapping occurrences of needle in hay. */
static int count_in(const char *hay, const char *needle)
{
    int n = 0;

    while ((hay = strstr(hay, needle)) != NULL) {
        n++;
        hay += strlen(needle);
    }
    return n;
}

/* Close c with a close frame, answered by the server. */
static void leave(struct wsc *c)
{
    ck_assert_int_eq(wsc_send_close(c, 1000, NULL), 0);
    ck_assert_int_eq(wsc_wait_close(c, T_MSG_MS), 1000);
    wsc_free(c);
}

/* ---- isolation ------------------------------------------------------------ */

/* Joins, messages and leaves in room red reach red only (on both
 * instances); those of room blue and of the default room never reach red. */
START_TEST(test_room_isolation)
{
    struct wsc ra, rb, bl, bm, da, db;

    fx_users_quiesce(&redis, USERS_KEY);
    JOIN(&da, chat_a.port, NULL, "iso_da");
    JOIN(&db, chat_b.port, NULL, "iso_db");
    EXPECT(&da, "iso_db: has joined the chat!");
    JOIN(&ra, chat_a.port, "red", "iso_ra");
    JOIN(&bl, chat_b.port, "blue", "iso_bl");
    JOIN(&rb, chat_b.port, "red", "iso_rb");
    EXPECT(&ra, "iso_rb: has joined the chat!");
    JOIN(&bm, chat_a.port, "blue", "iso_bm");
    EXPECT(&bl, "iso_bm: has joined the chat!");
    /* the default room heard none of the room joins, red none of blue's */
    QUIET(&da);
    QUIET(&db);
    QUIET(&ra);
    QUIET(&rb);

    SEND(&ra, "red only");
    EXPECT(&rb, "iso_ra: red only");
    SEND(&bl, "blue only");
    EXPECT(&bm, "iso_bl: blue only");
    SEND(&da, "default only");
    EXPECT(&db, "iso_da: default only");
    SEND(&db, "default again");
    EXPECT(&da, "iso_db: default again");
    QUIET(&ra);
    QUIET(&rb);
    QUIET(&bl);
    QUIET(&bm);

    /* leaves by close frame and by dropped TCP, each in its own room */
    leave(&rb);
    EXPECT(&ra, "iso_rb: has left the chat!");
    wsc_free(&bm);
    EXPECT(&bl, "iso_bm: has left the chat!");
    leave(&db);
    EXPECT(&da, "iso_db: has left the chat!");
    QUIET(&ra);
    QUIET(&bl);
    QUIET(&da);
    wsc_free(&ra);
    wsc_free(&bl);
    wsc_free(&da);
}
END_TEST

/* The default room is the seed's chat: a line PUBLISHed on `chat` by anyone
 * (a seed-era instance, redis-cli) reaches its users once each, and not the
 * rooms; a room's messages and notices travel on `chat:{R}` with their kind
 * in the first byte, never on `chat`. */
START_TEST(test_default_room_is_the_seed)
{
    char *const publish[] = {(char *)"PUBLISH", (char *)"chat", (char *)"seed: from redis-cli",
                             NULL};
    char *const spy_words[] = {(char *)"SUBSCRIBE", (char *)"chat", (char *)"chat:{seedroom}",
                               NULL};
    struct fx_spy spy;
    struct wsc da, db, ra, rb;
    char out[SPY_MAX];

    fx_users_quiesce(&redis, USERS_KEY);
    fx_spy_start(&spy, &redis, spy_words);
    JOIN(&da, chat_a.port, NULL, "seed_da");
    JOIN(&db, chat_b.port, NULL, "seed_db");
    EXPECT(&da, "seed_db: has joined the chat!");
    JOIN(&ra, chat_a.port, "seedroom", "seed_ra");
    JOIN(&rb, chat_b.port, "seedroom", "seed_rb");
    EXPECT(&ra, "seed_rb: has joined the chat!");

    ck_assert_int_eq(h_redis_cliv(&redis, out, sizeof(out), publish), 0);
    /* one subscriber per broker, and the spy */
    ck_assert_msg(strcmp(out, "3\n") == 0, "PUBLISH chat reached %s", out);
    EXPECT(&da, "seed: from redis-cli");
    EXPECT(&db, "seed: from redis-cli");
    SEND(&ra, "room secret");
    EXPECT(&rb, "seed_ra: room secret");
    SEND(&da, "plain default");
    EXPECT(&db, "seed_da: plain default");
    leave(&rb);
    EXPECT(&ra, "seed_rb: has left the chat!");
    QUIET(&da); /* once */
    QUIET(&db);
    QUIET(&ra);

    fx_spy_stop(&spy, out, sizeof(out));
    /* the seed's payloads on `chat`, the room's kinds on `chat:{seedroom}` */
    ck_assert_msg(strstr(out, "message\nchat\nseed_da: plain default\n") != NULL, "spy: %s", out);
    ck_assert_msg(strstr(out, "message\nchat\nseed_db: has joined the chat!\n") != NULL, "spy: %s",
                  out);
    ck_assert_msg(strstr(out, "message\nchat:{seedroom}\njseed_rb\n") != NULL, "spy: %s", out);
    /* with history, a message carries its id: 'M' id '\n' "user: text" */
    ck_assert_msg(strstr(out, "message\nchat:{seedroom}\nM") != NULL &&
                      strstr(out, "\nseed_ra: room secret\n") != NULL,
                  "spy: %s", out);
    ck_assert_msg(strstr(out, "message\nchat:{seedroom}\nlseed_rb\n") != NULL, "spy: %s", out);
    /* the room's traffic once, only there: nothing of it on `chat` */
    ck_assert_msg(count_in(out, "seed_ra") == 2, "seed_ra: join and message only: %s", out);
    ck_assert_msg(count_in(out, "seed_rb") == 2, "seed_rb: join and leave only: %s", out);
    /* the room's users are not in the default room's SET */
    ck_assert(fx_set_has(&redis, USERS_KEY, "seed_da"));
    ck_assert(!fx_set_has(&redis, USERS_KEY, "seed_ra"));
    wsc_free(&da);
    wsc_free(&db);
    wsc_free(&ra);
}
END_TEST

/* ---- names ------------------------------------------------------------------ */

/* A second `name` in room (NULL: the default room) on port is refused with
 * the seed's text, then close 4409. */
static void dup_refused(int port, const char *room, const char *name)
{
    struct wsc d;
    char path[160], want[256];

    if (room != NULL)
        snprintf(path, sizeof(path), "/chat/%s/%s", room, name);
    else
        snprintf(path, sizeof(path), "/chat/%s", name);
    snprintf(want, sizeof(want), "username %s is already taken. please retry with a different name",
             name);
    ck_assert_int_eq(wsc_connect(&d, port, path, NULL, T_MSG_MS), 101);
    ck_assert_msg(wsc_expect_text(&d, want, T_MSG_MS), "%s: no refusal text on port %d", path,
                  port);
    ck_assert_int_eq(wsc_wait_close(&d, T_MSG_MS), 4409);
    ck_assert_str_eq(d.close_reason, TAKEN_REASON);
    wsc_free(&d);
}

/* One name in three rooms at once (default included, both instances); a
 * second one in the same room is refused on either instance, and the name
 * is free again in that room once its holder left. */
START_TEST(test_names_per_room)
{
    struct wsc red, blue, dflt, peer, again;
    char key[128];

    fx_users_quiesce(&redis, USERS_KEY);
    JOIN(&red, chat_a.port, "nred", "sam");
    JOIN(&blue, chat_b.port, "nblue", "sam");
    JOIN(&dflt, chat_a.port, NULL, "sam");
    JOIN(&peer, chat_b.port, "nred", "pia");
    EXPECT(&red, "pia: has joined the chat!");

    dup_refused(chat_a.port, "nred", "sam");
    dup_refused(chat_b.port, "nred", "sam");
    dup_refused(chat_b.port, "nblue", "sam");
    dup_refused(chat_b.port, NULL, "sam");
    /* a refused duplicate neither joined nor left */
    QUIET(&red);
    QUIET(&peer);
    QUIET(&blue);
    QUIET(&dflt);
    ck_assert(fx_set_has(&redis, room_key(key, sizeof(key), "nred", ":users"), "sam"));
    ck_assert(fx_set_has(&redis, room_key(key, sizeof(key), "nblue", ":users"), "sam"));
    ck_assert(fx_set_has(&redis, USERS_KEY, "sam"));

    /* the first sam of nred is untouched */
    SEND(&red, "still me");
    EXPECT(&peer, "sam: still me");
    leave(&red);
    EXPECT(&peer, "sam: has left the chat!");
    ck_assert_msg(
        fx_set_wait(&redis, room_key(key, sizeof(key), "nred", ":users"), "sam", 0, T_LEAVE_MS),
        "sam still in %s after leaving", key);
    /* the other rooms' sam stays */
    ck_assert(fx_set_has(&redis, room_key(key, sizeof(key), "nblue", ":users"), "sam"));
    ck_assert(fx_set_has(&redis, USERS_KEY, "sam"));
    JOIN(&again, chat_b.port, "nred", "sam");
    EXPECT(&peer, "sam: has joined the chat!");
    QUIET(&blue);
    QUIET(&dflt);
    wsc_free(&again);
    wsc_free(&peer);
    wsc_free(&blue);
    wsc_free(&dflt);
}
END_TEST

/* ---- Redis keys ---------------------------------------------------------------- */

/* A room's names in chat:{R}:users and per instance in chat:{R}:instance:<id>;
 * each instance lists the room in chat-users:instance:<id>:rooms while it has
 * members there; its broker subscribes to chat:{R} for the first local member
 * and unsubscribes after the last: 0 -> 1 -> 2 -> 1 -> 0 subscribers. */
START_TEST(test_room_keys)
{
    struct wsc k1, k2, k3;
    char id_a[64], id_b[64], users[128], inst_a[160], inst_b[160], rooms_a[160], rooms_b[160];
    char out[1024];
    long n;

    fx_users_quiesce(&redis, USERS_KEY);
    fx_instance_id(chat_a.log, id_a, sizeof(id_a));
    fx_instance_id(chat_b.log, id_b, sizeof(id_b));
    room_key(users, sizeof(users), "keys", ":users");
    snprintf(inst_a, sizeof(inst_a), "chat:{keys}:instance:%s", id_a);
    snprintf(inst_b, sizeof(inst_b), "chat:{keys}:instance:%s", id_b);
    snprintf(rooms_a, sizeof(rooms_a), USERS_KEY ":instance:%s:rooms", id_a);
    snprintf(rooms_b, sizeof(rooms_b), USERS_KEY ":instance:%s:rooms", id_b);
    ck_assert_int_eq(numsub(&redis, "chat:{keys}"), 0);
    /* every broker listens for direct messages, whatever its rooms */
    ck_assert_int_eq(numsub(&redis, "chat:direct"), 2);

    JOIN(&k1, chat_a.port, "keys", "k1");
    /* SADD is answered before the welcome: no waiting for the sets */
    ck_assert(fx_set_has(&redis, users, "k1"));
    ck_assert(fx_set_has(&redis, inst_a, "k1"));
    ck_assert(fx_set_has(&redis, rooms_a, "keys"));
    ck_assert(!fx_set_has(&redis, rooms_b, "keys"));
    ck_assert(!fx_set_has(&redis, USERS_KEY, "k1"));
    ck_assert_msg(numsub_wait(&redis, "chat:{keys}", 1, &n), "first member: %ld subscribers", n);
    JOIN(&k2, chat_a.port, "keys", "k2");
    EXPECT(&k1, "k2: has joined the chat!");
    /* one subscription per instance, not per member or worker */
    ck_assert_msg(numsub_wait(&redis, "chat:{keys}", 1, &n), "second member: %ld", n);
    JOIN(&k3, chat_b.port, "keys", "k3");
    EXPECT(&k1, "k3: has joined the chat!");
    EXPECT(&k2, "k3: has joined the chat!");
    ck_assert_msg(numsub_wait(&redis, "chat:{keys}", 2, &n), "member on b: %ld", n);
    ck_assert_int_eq(fx_redis_int(&redis, "SCARD chat:{keys}:users"), 3);
    ck_assert(fx_set_has(&redis, inst_b, "k3"));
    ck_assert(!fx_set_has(&redis, inst_b, "k1"));
    ck_assert(fx_set_has(&redis, rooms_b, "keys"));
    ck_assert_int_eq(h_redis_cli(&redis, out, sizeof(out), "PUBSUB CHANNELS chat*"), 0);
    ck_assert_msg(strstr(out, "chat:{keys}\n") != NULL, "PUBSUB CHANNELS: %s", out);

    /* a's last member leaves: a unsubscribes and forgets the room */
    leave(&k1);
    EXPECT(&k3, "k1: has left the chat!");
    ck_assert_msg(numsub_wait(&redis, "chat:{keys}", 2, &n), "k2 still on a: %ld", n);
    wsc_free(&k2);
    EXPECT(&k3, "k2: has left the chat!");
    ck_assert_msg(numsub_wait(&redis, "chat:{keys}", 1, &n), "a has no member: %ld", n);
    ck_assert_msg(fx_set_wait(&redis, rooms_a, "keys", 0, T_LEAVE_MS), "%s keeps keys", rooms_a);
    ck_assert_int_eq(fx_redis_int(&redis, "SCARD chat:{keys}:users"), 1);
    ck_assert(fx_set_has(&redis, users, "k3"));
    snprintf(out, sizeof(out), "SCARD %s", inst_a);
    ck_assert_int_eq(fx_redis_int(&redis, out), 0);

    leave(&k3);
    ck_assert_msg(numsub_wait(&redis, "chat:{keys}", 0, &n), "nobody left: %ld", n);
    ck_assert_msg(fx_set_wait(&redis, rooms_b, "keys", 0, T_LEAVE_MS), "%s keeps keys", rooms_b);
    ck_assert_int_eq(fx_redis_int(&redis, "EXISTS chat:{keys}:users"), 0);
}
END_TEST

/* ---- bad room names --------------------------------------------------------------- */

#define FORBIDDEN                                                                                  \
    "room name contains a forbidden character (allowed: letters, digits, '-', '_', '.', '~')"

/* An upgrade to path is refused before the upgrade: 400 with reason. */
static void room_refused(const char *path, const char *reason)
{
    struct wsc c;
    int st = wsc_connect(&c, chat_a.port, path, NULL, T_MSG_MS);

    ck_assert_msg(st == 400, "%s: HTTP %d, want 400", path, st);
    ck_assert_msg(strstr(c.body, reason) != NULL, "%s: body \"%s\", want \"%s\"", path, c.body,
                  reason);
    wsc_free(&c);
}

START_TEST(test_bad_room_names)
{
    char path[160], room[70];
    struct wsc c;

    fx_users_quiesce(&redis, USERS_KEY);
    room_refused("/chat//bob", "room name is empty");
    memset(room, 'r', 65);
    room[65] = '\0';
    snprintf(path, sizeof(path), "/chat/%s/bob", room);
    room_refused(path, "room name is longer than 64 characters");
    room_refused("/chat/a%7Bb/bob", FORBIDDEN); /* '{' would break the hash tag */
    room_refused("/chat/a%7Db/bob", FORBIDDEN);
    room_refused("/chat/a:b/bob", FORBIDDEN);
    room_refused("/chat/a%3Ab/bob", FORBIDDEN);
    room_refused("/chat/a%20b/bob", FORBIDDEN);
    room_refused("/chat/a%2Fb/bob", FORBIDDEN);
    room_refused("/chat/%C3%A9/bob", FORBIDDEN); /* a letter, but not ASCII */
    /* the user name keeps the seed's rules in a room */
    ck_assert_int_eq(wsc_connect(&c, chat_a.port, "/chat/fine/a%3Ab", NULL, T_MSG_MS), 400);
    wsc_free(&c);
    /* nobody was let in */
    ck_assert_int_eq(fx_redis_int(&redis, "EXISTS chat:{a:b}:users"), 0);

    /* 64 characters, and every character of the alphabet, are fine */
    room[64] = '\0';
    JOIN(&c, chat_a.port, room, "bob");
    wsc_free(&c);
    JOIN(&c, chat_b.port, "Az09-_.~", "bob");
    ck_assert(fx_set_has(&redis, "chat:{Az09-_.~}:users", "bob"));
    wsc_free(&c);
}
END_TEST

/* ---- wscat ---------------------------------------------------------------------- */

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

/* A real client in a room: wscat joins, sends and leaves room wsroom; its
 * member on the other instance hears it all, the default room nothing. */
START_TEST(test_wscat_in_room)
{
    struct wsc bob, dflt;
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
    JOIN(&bob, chat_b.port, "wsroom", "bob");
    JOIN(&dflt, chat_a.port, NULL, "alice");
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/chat/wsroom/alice", chat_a.port);
    rc = h_run(out, sizeof(out), 20000, argv);
    ck_assert_msg(rc == 0, "wscat exited %d: %s", rc, out);
    ck_assert_msg(strstr(out, "Welcome alice!\n") != NULL, "wscat printed: %s", out);
    EXPECT(&bob, "alice: has joined the chat!");
    EXPECT(&bob, "alice: hello from wscat");
    EXPECT(&bob, "alice: has left the chat!");
    QUIET(&dflt);
    wsc_free(&bob);
    wsc_free(&dflt);
}
END_TEST

/* ---- crashes and Redis restarts ----------------------------------------------- */

/* Users of instance a in rooms one and two, alternately ("u0" in one, "u1"
 * in two, ...), until the worker of u0 holds members of both rooms and the
 * other worker holds one too. Returns how many joined; slot[] as fx_user_slot. */
static int join_two_rooms(struct wsc *u, int *slot, const struct h_chat *c)
{
    char name[16], text[4 * MAX_USERS + 16];
    int n, victim_rooms = 0, other = 0;

    for (n = 0; n < MAX_USERS && (victim_rooms != 3 || !other); n++) {
        snprintf(name, sizeof(name), "u%d", n);
        JOIN(&u[n], c->port, n % 2 == 0 ? "one" : "two", name);
        slot[n] = fx_user_slot(c->log, name);
        ck_assert_msg(slot[n] == 0 || slot[n] == 1, "%s: no join line in %s", name, c->log);
        if (slot[n] == slot[0])
            victim_rooms |= 1 << (n % 2);
        else
            other = 1;
    }
    ck_assert_msg(victim_rooms == 3 && other, "%d users, no worker with both rooms (%s)", n,
                  fx_slots_text(slot, n, text, sizeof(text)));
    return n;
}

/* SIGKILL the worker holding members of rooms one and two: each room's
 * users (on the other worker and on instance b) are told of that room's
 * leaves only, the default room of none; the names leave each room's SET
 * and are free again. */
START_TEST(test_worker_kill_rooms)
{
    struct h_redis r;
    struct h_chat a, b;
    struct wsc u[MAX_USERS], w[2], wd, again;
    const char *gone[2][MAX_USERS];
    char left[MAX_USERS][64], name[16], key[64], title[64];
    int slot[MAX_USERS], ngone[2] = {0, 0}, n, i, k, victim;
    pid_t old;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&a, &r, 2, "history-on-join 0\n");
    fx_chat_ready(&b, &r, 2, "history-on-join 0\n");
    JOIN(&w[0], b.port, "one", "w1");
    JOIN(&w[1], b.port, "two", "w2");
    JOIN(&wd, b.port, NULL, "u0"); /* the default room has a u0 of its own */
    n = join_two_rooms(u, slot, &a);
    for (k = 0; k < 2; k++)
        fx_drain(&w[k]);
    for (i = 0; i < n; i++)
        fx_drain(&u[i]);

    victim = slot[0];
    for (i = 0; i < n; i++) {
        if (slot[i] != victim)
            continue;
        snprintf(left[i], sizeof(left[i]), "u%d: has left the chat!", i);
        gone[i % 2][ngone[i % 2]++] = left[i];
    }
    snprintf(title, sizeof(title), "redis-chat: worker %d", victim);
    old = h_child_titled(a.pid, title);
    ck_assert_int_ne(old, 0);
    ck_assert_int_eq(kill(old, SIGKILL), 0);

    for (k = 0; k < 2; k++) {
        ck_assert_msg(fx_expect_unordered(&w[k], gone[k], ngone[k], 5000), "w%d", k + 1);
        QUIET(&w[k]);
    }
    for (i = 0; i < n; i++) {
        if (slot[i] == victim)
            continue;
        ck_assert_msg(fx_expect_unordered(&u[i], gone[i % 2], ngone[i % 2], 5000),
                      "u%d (other worker)", i);
        QUIET(&u[i]);
    }
    QUIET(&wd);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "u%d", i);
        room_key(key, sizeof(key), i % 2 == 0 ? "one" : "two", ":users");
        ck_assert_msg(fx_set_has(&r, key, name) == (slot[i] != victim), "%s in %s: %d", name, key,
                      fx_set_has(&r, key, name));
    }
    ck_assert(fx_set_has(&r, USERS_KEY, "u0")); /* the default room's u0 */

    /* the names are free again in their rooms */
    JOIN(&again, a.port, "one", "u0");
    EXPECT(&w[0], "u0: has joined the chat!");
    QUIET(&w[1]);
    QUIET(&wd);
    wsc_free(&again);
    wsc_free(&wd);
    for (k = 0; k < 2; k++)
        wsc_free(&w[k]);
    for (i = 0; i < n; i++)
        wsc_free(&u[i]);
    h_chat_free(&a);
    h_chat_free(&b);
    h_redis_free(&r);
}
END_TEST

/* A typed client (redis-chat.v1) in room and then, by a join request, in
 * room `also`: each welcome read as a text. */
static void typed_two_rooms(struct wsc *c, int port, const char *room, const char *also,
                            const char *name)
{
    char path[128], req[128], text[512], want[128];

    snprintf(path, sizeof(path), "/chat/%s/%s", room, name);
    ck_assert_int_eq(wsc_connect(c, port, path, "Sec-WebSocket-Protocol: redis-chat.v1", T_MSG_MS),
                     101);
    ck_assert_int_gt(wsc_recv_text(c, text, sizeof(text), T_MSG_MS), 0);
    snprintf(want, sizeof(want), "\"room\":\"%s\"", room);
    ck_assert_msg(strstr(text, "\"welcome\"") != NULL && strstr(text, want) != NULL, "%s", text);
    snprintf(req, sizeof(req), "{\"type\":\"join\",\"room\":\"%s\"}", also);
    SEND(c, req);
    ck_assert_int_gt(wsc_recv_text(c, text, sizeof(text), T_MSG_MS), 0);
    snprintf(want, sizeof(want), "\"room\":\"%s\"", also);
    ck_assert_msg(strstr(text, "\"welcome\"") != NULL && strstr(text, want) != NULL, "%s", text);
}

/* kill -9 every process of instance a (stopped first, so that none sees
 * another die) while it holds a user in rooms one and two and in the default
 * room, and a typed connection in both rooms: once its heartbeat expired, b
 * announces each leave in its own room, once, and removes a's names and keys
 * room by room. */
START_TEST(test_instance_crash_rooms)
{
    struct h_redis r;
    struct h_chat a, b;
    static const char *const gone_one[] = {"a1: has left the chat!", "at: has left the chat!"};
    static const char *const gone_two[] = {"a2: has left the chat!", "at: has left the chat!"};
    struct wsc a1, a2, ad, at, w1, w2, wd, again;
    char id[64], key[160], cmd[200];
    pid_t kids[MAX_KIDS];
    int n, i, ok;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&a, &r, 2, "history-on-join 0\ninstance-ttl 2s\n");
    fx_chat_ready(&b, &r, 2, "history-on-join 0\ninstance-ttl 2s\n");
    fx_instance_id(a.log, id, sizeof(id));
    JOIN(&w1, b.port, "one", "w1");
    JOIN(&w2, b.port, "two", "w2");
    JOIN(&wd, b.port, NULL, "wd");
    JOIN(&a1, a.port, "one", "a1");
    JOIN(&a2, a.port, "two", "a2");
    JOIN(&ad, a.port, NULL, "ad");
    typed_two_rooms(&at, a.port, "one", "two", "at");
    fx_drain(&w1);
    fx_drain(&w2);
    fx_drain(&wd);
    snprintf(key, sizeof(key), USERS_KEY ":instance:%s:rooms", id);
    ck_assert(fx_set_has(&r, key, "one") && fx_set_has(&r, key, "two"));
    snprintf(key, sizeof(key), "chat:{one}:instance:%s", id);
    ck_assert(fx_set_has(&r, key, "a1"));

    n = h_children(a.pid, kids, MAX_KIDS);
    ck_assert_int_eq(n, 3);
    ok = kill(a.pid, SIGSTOP) == 0;
    for (i = 0; i < n; i++)
        ok = kill(kids[i], SIGSTOP) == 0 && ok;
    for (i = 0; i < n; i++)
        ok = kill(kids[i], SIGKILL) == 0 && ok;
    ok = kill(a.pid, SIGKILL) == 0 && ok;
    ck_assert(ok);
    ck_assert_int_eq(h_wait_exit(a.pid, 3000, NULL), 1);
    a.pid = 0;
    for (i = 0; i < n; i++)
        ck_assert_msg(h_wait_gone(kids[i], 3000), "pid %d survived SIGKILL", (int)kids[i]);

    ck_assert_msg(fx_expect_unordered(&w1, gone_one, 2, CRASH_BOUND_MS), "w1 (room one)");
    ck_assert_msg(fx_expect_unordered(&w2, gone_two, 2, T_MSG_MS), "w2 (room two)");
    ck_assert(wsc_expect_text(&wd, "ad: has left the chat!", T_MSG_MS));
    /* once: nothing more through another scan period */
    ck_assert_msg(wsc_no_text(&w1, CRASH_SCAN_MS + 500), "w1: a second notice");
    QUIET(&w2);
    QUIET(&wd);

    ck_assert(wsc_wait_eof(&at, T_MSG_MS));
    ck_assert_int_eq(fx_redis_int(&r, "SCARD chat:{one}:users"), 1);
    ck_assert(fx_set_has(&r, "chat:{one}:users", "w1"));
    ck_assert_int_eq(fx_redis_int(&r, "SCARD chat:{two}:users"), 1);
    ck_assert(fx_set_has(&r, "chat:{two}:users", "w2"));
    ck_assert(!fx_set_has(&r, USERS_KEY, "ad"));
    snprintf(cmd, sizeof(cmd), "EXISTS chat:{one}:instance:%s", id);
    ck_assert_int_eq(fx_redis_int(&r, cmd), 0);
    snprintf(cmd, sizeof(cmd), "EXISTS chat:{two}:instance:%s", id);
    ck_assert_int_eq(fx_redis_int(&r, cmd), 0);
    snprintf(cmd, sizeof(cmd), "EXISTS " USERS_KEY ":instance:%s:rooms", id);
    ck_assert_int_eq(fx_redis_int(&r, cmd), 0);

    JOIN(&again, b.port, "two", "a2");
    EXPECT(&w2, "a2: has joined the chat!");
    QUIET(&w1);
    wsc_free(&again);
    wsc_free(&a1);
    wsc_free(&a2);
    wsc_free(&ad);
    wsc_free(&at);
    wsc_free(&w1);
    wsc_free(&w2);
    wsc_free(&wd);
    h_chat_free(&a);
    h_chat_free(&b);
    h_redis_free(&r);
}
END_TEST

/* A restarted Redis has an empty data set: each instance adds its members
 * back to every room's sets and resubscribes its rooms; users stay connected
 * and the rooms carry messages again, across instances. */
START_TEST(test_redis_restart_rooms)
{
    struct h_redis r;
    struct h_chat a, b;
    struct wsc r1, r2, s1, d1, w1;
    char id[64], key[160];
    long n;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&a, &r, 2, "history-on-join 0\n");
    fx_chat_ready(&b, &r, 2, "history-on-join 0\n");
    fx_instance_id(a.log, id, sizeof(id));
    JOIN(&r1, a.port, "one", "r1");
    JOIN(&r2, a.port, "one", "r2");
    JOIN(&s1, a.port, "two", "s1");
    JOIN(&d1, a.port, NULL, "d1");
    JOIN(&w1, b.port, "one", "w1");
    fx_drain(&r1);
    fx_drain(&r2);

    h_redis_stop(&r);
    ck_assert_int_eq(h_redis_restart(&r), 0);
    ASSERT_LOG(h_wait_count(a.log, "redis link up", 2, T_REDIS_BACK_MS), a.log);
    ASSERT_LOG(h_wait_count(b.log, "redis link up", 2, T_REDIS_BACK_MS), b.log);
    ck_assert_msg(fx_set_wait(&r, "chat:{one}:users", "r1", 1, 3000), "r1 not back in one");
    ck_assert_msg(fx_set_wait(&r, "chat:{one}:users", "r2", 1, 3000), "r2 not back in one");
    ck_assert_msg(fx_set_wait(&r, "chat:{one}:users", "w1", 1, 3000), "w1 not back in one");
    ck_assert_msg(fx_set_wait(&r, "chat:{two}:users", "s1", 1, 3000), "s1 not back in two");
    ck_assert_msg(fx_set_wait(&r, USERS_KEY, "d1", 1, 3000), "d1 not back in chat-users");
    ck_assert_int_eq(fx_redis_int(&r, "SCARD chat:{one}:users"), 3);
    ck_assert(!fx_set_has(&r, USERS_KEY, "r1"));
    snprintf(key, sizeof(key), USERS_KEY ":instance:%s:rooms", id);
    ck_assert(fx_set_wait(&r, key, "one", 1, 3000) && fx_set_wait(&r, key, "two", 1, 3000));
    snprintf(key, sizeof(key), "chat:{one}:instance:%s", id);
    ck_assert(fx_set_wait(&r, key, "r1", 1, 3000) && fx_set_wait(&r, key, "r2", 1, 3000));
    ck_assert_msg(numsub_wait(&r, "chat:{one}", 2, &n), "chat:{one}: %ld subscribers", n);
    ck_assert_msg(numsub_wait(&r, "chat:{two}", 1, &n), "chat:{two}: %ld subscribers", n);

    ASSERT_LOG(h_wait_count(a.log, "chat service available", 4, T_MSG_MS), a.log);
    ASSERT_LOG(h_wait_count(b.log, "chat service available", 4, T_MSG_MS), b.log);
    QUIET(&r1); /* nobody announced as left or joined again */
    QUIET(&w1);
    SEND(&r1, "after the restart");
    EXPECT(&r2, "r1: after the restart");
    EXPECT(&w1, "r1: after the restart");
    SEND(&w1, "from b");
    EXPECT(&r1, "w1: from b");
    EXPECT(&r2, "w1: from b");
    QUIET(&s1);
    QUIET(&d1);
    wsc_free(&r1);
    wsc_free(&r2);
    wsc_free(&s1);
    wsc_free(&d1);
    wsc_free(&w1);
    h_chat_free(&a);
    h_chat_free(&b);
    h_redis_free(&r);
}
END_TEST

/* Messages sent in rooms while Redis is away are held by the broker (as in
 * the default room, the control here) and published once it is back, after
 * the rooms are subscribed again: the sender's instance loses none. An
 * instance that is still reconnecting when they go out misses them (PUBSUB
 * is at-most-once: closing that gap is issue 12's streams); once it is back
 * the room carries messages to it again. */
START_TEST(test_redis_outbox_rooms)
{
    struct h_redis r;
    struct h_chat a, b;
    struct wsc r1, r2, w1, d1, d2;
    int down, avail_b;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&a, &r, 2, "history-on-join 0\n");
    fx_chat_ready(&b, &r, 2, "history-on-join 0\n");
    JOIN(&r1, a.port, "one", "r1");
    JOIN(&r2, a.port, "one", "r2");
    JOIN(&w1, b.port, "one", "w1");
    JOIN(&d1, a.port, NULL, "d1");
    JOIN(&d2, a.port, NULL, "d2");
    fx_drain(&r1);
    fx_drain(&r2);
    fx_drain(&d1);

    down = h_count_in_file(a.log, "redis link down");
    avail_b = h_count_in_file(b.log, "chat service available");
    h_redis_stop(&r);
    ASSERT_LOG(h_wait_count(a.log, "redis link down", down + 1, 5000), a.log);
    SEND(&d1, "held in default");
    SEND(&r1, "held in room");
    QUIET(&r1); /* held, not refused */
    ck_assert_int_eq(h_redis_restart(&r), 0);
    ASSERT_LOG(wsc_expect_text(&d2, "d1: held in default", T_REDIS_BACK_MS), a.log);
    ASSERT_LOG(wsc_expect_text(&r2, "r1: held in room", T_MSG_MS), a.log);
    QUIET(&r2);
    /* both workers of b hear that the chat is back once b's rooms are
     * subscribed again */
    ASSERT_LOG(h_wait_count(b.log, "chat service available", avail_b + 2, T_REDIS_BACK_MS),
               b.log);
    fx_drain(&w1);
    SEND(&r1, "after the restart");
    EXPECT(&r2, "r1: after the restart");
    EXPECT(&w1, "r1: after the restart");
    wsc_free(&r1);
    wsc_free(&r2);
    wsc_free(&w1);
    wsc_free(&d1);
    wsc_free(&d2);
    h_chat_free(&a);
    h_chat_free(&b);
    h_redis_free(&r);
}
END_TEST

/* The broker killed under members of a room: the new one gets the rooms
 * back from the workers and subscribes to them again; nobody is announced,
 * the room carries messages both ways, its sets are unchanged. */
START_TEST(test_broker_kill_rooms)
{
    struct h_redis r;
    struct h_chat a, b;
    struct wsc r1, r2, w1;
    int avail;
    long n;
    pid_t old;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&a, &r, 2, "history-on-join 0\n");
    fx_chat_ready(&b, &r, 2, "history-on-join 0\n");
    JOIN(&r1, a.port, "one", "r1");
    JOIN(&r2, a.port, "one", "r2");
    JOIN(&w1, b.port, "one", "w1");
    fx_drain(&r1);
    fx_drain(&r2);

    avail = h_count_in_file(a.log, "chat service available");
    old = h_child_titled(a.pid, "redis-chat: broker");
    ck_assert_int_ne(old, 0);
    ck_assert_int_eq(kill(old, SIGKILL), 0);
    ck_assert_msg(h_wait_new_child(a.pid, "redis-chat: broker", old, 3000) != 0, "no new broker");
    ASSERT_LOG(h_wait_count(a.log, "chat service available", avail + 2, 10000), a.log);
    ck_assert_msg(numsub_wait(&r, "chat:{one}", 2, &n), "chat:{one}: %ld subscribers", n);
    QUIET(&r1); /* no leave, no join */
    QUIET(&w1);

    SEND(&w1, "from b");
    EXPECT(&r1, "w1: from b");
    EXPECT(&r2, "w1: from b");
    SEND(&r2, "from a");
    EXPECT(&r1, "r2: from a");
    EXPECT(&w1, "r2: from a");
    ck_assert_int_eq(fx_redis_int(&r, "SCARD chat:{one}:users"), 3);
    wsc_free(&r1);
    EXPECT(&w1, "r1: has left the chat!");
    EXPECT(&r2, "r1: has left the chat!");
    wsc_free(&r2);
    wsc_free(&w1);
    h_chat_free(&a);
    h_chat_free(&b);
    h_redis_free(&r);
}
END_TEST

/* SIGTERM: every member of every room is closed with 1001, announced as
 * left in its room and removed from its sets; the instance's keys go. */
START_TEST(test_sigterm_rooms)
{
    struct h_redis r;
    struct h_chat a, b;
    struct wsc a1, a2, w1, w2;
    char id[64], cmd[200];
    int st;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&a, &r, 2, "history-on-join 0\n");
    fx_chat_ready(&b, &r, 2, "history-on-join 0\n");
    fx_instance_id(a.log, id, sizeof(id));
    JOIN(&w1, b.port, "one", "w1");
    JOIN(&w2, b.port, "two", "w2");
    JOIN(&a1, a.port, "one", "a1");
    JOIN(&a2, a.port, "two", "a2");
    fx_drain(&w1);
    fx_drain(&w2);

    st = h_chat_stop(&a);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "instance a: wait status %d", st);
    ck_assert_int_eq(wsc_wait_close(&a1, T_MSG_MS), 1001);
    ck_assert_int_eq(wsc_wait_close(&a2, T_MSG_MS), 1001);
    EXPECT(&w1, "a1: has left the chat!");
    EXPECT(&w2, "a2: has left the chat!");
    QUIET(&w1);
    QUIET(&w2);
    ck_assert(!fx_set_has(&r, "chat:{one}:users", "a1"));
    ck_assert(!fx_set_has(&r, "chat:{two}:users", "a2"));
    snprintf(cmd, sizeof(cmd), "EXISTS chat:{one}:instance:%s", id);
    ck_assert_int_eq(fx_redis_int(&r, cmd), 0);
    snprintf(cmd, sizeof(cmd), "EXISTS " USERS_KEY ":instance:%s:rooms", id);
    ck_assert_int_eq(fx_redis_int(&r, cmd), 0);
    wsc_free(&a1);
    wsc_free(&a2);
    wsc_free(&w1);
    wsc_free(&w2);
    h_chat_free(&a);
    h_chat_free(&b);
    h_redis_free(&r);
}
END_TEST

static Suite *rooms_suite(void)
{
    Suite *s = suite_create("rooms");
    TCase *tc = tcase_create("rooms");
    TCase *fa = tcase_create("faults");

    tcase_add_unchecked_fixture(tc, rooms_setup, rooms_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_room_isolation);
    tcase_add_test(tc, test_default_room_is_the_seed);
    tcase_add_test(tc, test_names_per_room);
    tcase_add_test(tc, test_room_keys);
    tcase_add_test(tc, test_bad_room_names);
    tcase_add_test(tc, test_wscat_in_room);
    suite_add_tcase(s, tc);

    /* each test runs its own Redis and instances below the fixture's dir */
    tcase_add_unchecked_fixture(fa, fx_tmp_enter, fx_tmp_leave);
    tcase_set_timeout(fa, 60);
    tcase_add_test(fa, test_worker_kill_rooms);
    tcase_add_test(fa, test_broker_kill_rooms);
    tcase_add_test(fa, test_instance_crash_rooms);
    tcase_add_test(fa, test_redis_restart_rooms);
    tcase_add_test(fa, test_redis_outbox_rooms);
    tcase_add_test(fa, test_sigterm_rooms);
    suite_add_tcase(s, fa);
    return s;
}

int main(void)
{
    return check_run(rooms_suite());
}
