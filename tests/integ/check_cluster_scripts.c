/* check_cluster_scripts.c -- every Lua script of broker/presence.c and
 * broker/history.c, with the keys and arguments the broker gives it in
 * cluster mode, run on a real Redis Cluster (three primaries with a replica
 * each, TLS, password; tests/harness_cluster.h). Each call goes, without
 * following redirections, to the primary that owns its first key's slot,
 * as the broker's link routes an EVAL; so a key in another slot would come
 * back as an error (CROSSSLOT, or a script touching a non-local key), which
 * fails the test. Checked:
 *   - every script, for the default room and two rooms, answers without an
 *     error and with the expected result;
 *   - the check has teeth: the one-Redis reap script (heartbeat and room in
 *     one call) is refused by the cluster;
 *   - a room's notices are SPUBLISHed (an SSUBSCRIBEr on its shard gets
 *     them), the default room's PUBLISHed (a SUBSCRIBEr on any node);
 *   - the crash cleanup across slots: the claim (one claimer only; none
 *     while the heartbeat lives), the rooms without the heartbeat check,
 *     each name announced once, the release, and the heartbeat's replies
 *     that tell an instance presumed dead to re-add its users (2 while a
 *     cleaner holds the claim, 1 after it, 0 when it had simply expired).
 */
#include <check.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_payload.h"
#include "check_run.h"
#include "cluster_slot.h"
#include "config.h"
#include "harness.h"
#include "harness_cluster.h"
#include "hiredis_compat.h"
#include "history.h"
#include "presence.h"
#include "room.h"

#define T_PASSWORD "s3cret-scripts"
#define T_ARGS_MAX 12
#define T_CONNS 8

static struct h_cluster cl;
static SSL_CTX *t_ssl;
static struct cfg cfg;
static struct {
    int port;
    redisContext *c;
} conns[T_CONNS];

static void t_cfg(struct cfg *c, const char *text)
{
    char err[CFG_ERR_LEN];

    cfg_init(c);
    ck_assert_msg(cfg_parse_buffer(c, text, strlen(text), "test", err, sizeof(err)) == 0 &&
                      cfg_finalize(c, err, sizeof(err)) == 0,
                  "%s", err);
}

static void t_cluster_up(void)
{
    ck_assert_msg(h_cluster_start(&cl, 3, 1, 1, T_PASSWORD) == 0, "cluster did not start");
    t_cfg(&cfg, "redis-cluster yes\n");
}

static void t_cluster_down(void)
{
    h_cluster_free(&cl);
    cfg_free(&cfg);
}

/* A synchronous TLS connection to the node on port, authenticated. */
static redisContext *t_connect(int port)
{
    struct timeval tv = {5, 0};
    redisOptions o = {0};
    redisContext *c;
    redisReply *r;
    SSL *ssl;

    if (t_ssl == NULL) {
        t_ssl = SSL_CTX_new(TLS_client_method());
        ck_assert_ptr_nonnull(t_ssl);
        SSL_CTX_set_verify(t_ssl, SSL_VERIFY_PEER, NULL);
        ck_assert_int_eq(SSL_CTX_load_verify_locations(t_ssl, cl.ca, NULL), 1);
    }
    REDIS_OPTIONS_SET_TCP(&o, "127.0.0.1", port);
    o.connect_timeout = &tv;
    o.command_timeout = &tv;
    c = redisConnectWithOptions(&o);
    ck_assert_msg(c != NULL && c->err == 0, "connect %d: %s", port, c ? c->errstr : "oom");
    ssl = SSL_new(t_ssl);
    ck_assert_ptr_nonnull(ssl);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    ck_assert_msg(redisInitiateSSL(c, ssl) == REDIS_OK, "TLS %d: %s", port, c->errstr);
    r = redisCommand(c, "AUTH %s", T_PASSWORD);
    ck_assert_msg(r != NULL && r->type != REDIS_REPLY_ERROR, "AUTH on %d", port);
    freeReplyObject(r);
    return c;
}

/* The (kept) connection to the primary that owns key's slot. */
static redisContext *t_owner_of(const char *key)
{
    int port = h_cluster_slot_owner(&cl, (int)cluster_key_slot(key, strlen(key))), i;

    ck_assert_msg(port > 0, "no owner for '%s'", key);
    for (i = 0; i < T_CONNS && conns[i].c != NULL; i++)
        if (conns[i].port == port)
            return conns[i].c;
    ck_assert_int_lt(i, T_CONNS);
    conns[i].port = port;
    conns[i].c = t_connect(port);
    return conns[i].c;
}

/* EVAL e's script with its keys and args[0..nargs) on the owner of its
 * first key. The reply (never an error: the test fails first). */
static redisReply *t_eval(const struct room_eval *e, int nargs, const char *const *args,
                          const char *what)
{
    const char *argv[3 + ROOM_EVAL_KEYS_MAX + T_ARGS_MAX];
    size_t lens[3 + ROOM_EVAL_KEYS_MAX + T_ARGS_MAX];
    char nkeys[8];
    redisContext *c = t_owner_of(e->key[0]);
    redisReply *r;
    int n = 0, i;

    snprintf(nkeys, sizeof(nkeys), "%d", e->nkeys);
    argv[n++] = "EVAL";
    argv[n++] = e->script;
    argv[n++] = nkeys;
    for (i = 0; i < e->nkeys; i++)
        argv[n++] = e->keys[i];
    for (i = 0; i < nargs; i++)
        argv[n++] = args[i];
    for (i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    r = redisCommandArgv(c, n, argv, lens);
    ck_assert_msg(r != NULL, "%s: %s", what, c->errstr);
    ck_assert_msg(r->type != REDIS_REPLY_ERROR, "%s (keys '%s'...): %s", what, e->key[0], r->str);
    return r;
}

static long long t_eval_int(const struct room_eval *e, int nargs, const char *const *args,
                            const char *what)
{
    redisReply *r = t_eval(e, nargs, args, what);
    long long v;

    ck_assert_msg(r->type == REDIS_REPLY_INTEGER, "%s: reply type %d", what, r->type);
    v = r->integer;
    freeReplyObject(r);
    return v;
}

/* A plain command on the owner of key (a one-key command). */
static long long t_cmd_int(const char *key, const char *fmt, const char *a, const char *b)
{
    redisReply *r = redisCommand(t_owner_of(key), fmt, a, b);
    long long v;

    ck_assert_msg(r != NULL && r->type == REDIS_REPLY_INTEGER, "%s %s: %s", fmt, a,
                  r != NULL && r->str ? r->str : "?");
    v = r->integer;
    freeReplyObject(r);
    return v;
}

static void t_script(enum presence_script which, const char *room, const char *id,
                     struct room_eval *e)
{
    ck_assert_int_eq(presence_script(&cfg, which, room, strlen(room), id, e), 0);
}

/* The reap of one room: ARGV channel, notice affixes, announce. */
static long long t_reap_room(const char *room, const char *id)
{
    struct room_eval e;
    const char *prefix, *suffix;

    t_script(PRESENCE_REAP_ROOM, room, id, &e);
    chat_payload_left_affixes(chat_payload_form_of(strlen(room)), &prefix, &suffix);
    return t_eval_int(&e, 4, (const char *[]){e.channel, prefix, suffix, "1"}, "reap room");
}

/* ---- every script --------------------------------------------------------------- */

START_TEST(test_every_script)
{
    static const char *const rooms[] = {"", "lobby", "games"};
    struct room_eval e;
    redisReply *r;
    size_t i;

    for (i = 0; i < sizeof(rooms) / sizeof(rooms[0]); i++) {
        const char *room = rooms[i];
        int seed = room[0] == '\0';

        t_script(PRESENCE_JOIN, room, "inst-a", &e);
        ck_assert_int_eq(t_eval_int(&e, 1, (const char *[]){"u1"}, "join"), 1);
        ck_assert_int_eq(t_eval_int(&e, 1, (const char *[]){"u1"}, "join again"), 0);
        t_script(PRESENCE_WHO, room, "inst-a", &e);
        r = t_eval(&e, 1, (const char *[]){"10"}, "who");
        ck_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                  r->element[0]->integer == 1);
        freeReplyObject(r);
        t_script(PRESENCE_DIRECT, room, "inst-a", &e);
        ck_assert_int_eq(t_eval_int(&e, 3, (const char *[]){"u1", e.channel, "x"}, "direct"), 1);
        t_script(PRESENCE_LEAVE, room, "inst-a", &e);
        ck_assert_int_eq(
            t_eval_int(&e, 3, (const char *[]){"u1", e.channel, "u1: has left"}, "leave"), 1);
        ck_assert_int_eq(
            t_eval_int(&e, 3, (const char *[]){"u1", e.channel, "u1: has left"}, "leave again"),
            0);

        ck_assert_int_eq(history_script(&cfg, HISTORY_PUBLISH, room, strlen(room), &e), 0);
        r = t_eval(&e, 9,
                   (const char *[]){"100", "0", "u1", "hi", e.channel, "M\nu1: hi", "1",
                                    seed ? "chat" : "", seed ? "u1: hi" : ""},
                   "history publish");
        ck_assert_msg(r->type == REDIS_REPLY_STRING, "publish: type %d", r->type);
        freeReplyObject(r);
        ck_assert_int_eq(history_script(&cfg, HISTORY_AFTER, room, strlen(room), &e), 0);
        r = t_eval(&e, 2, (const char *[]){"0-0", "10"}, "history after");
        ck_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                  r->element[1]->type == REDIS_REPLY_ARRAY && r->element[1]->elements == 1);
        freeReplyObject(r);

        ck_assert_int_eq(t_reap_room(room, "inst-a"), 0); /* nobody left there */
    }
    /* the per-instance ones */
    t_script(PRESENCE_BEAT, "", "inst-a", &e);
    ck_assert_int_eq(t_eval_int(&e, 2, (const char *[]){"10000", "inst-a"}, "beat"), 0);
    ck_assert_int_eq(t_eval_int(&e, 2, (const char *[]){"10000", "inst-a"}, "beat"), 1);
    t_script(PRESENCE_REAP_CLAIM, "", "inst-a", &e);
    ck_assert_int_eq(
        t_eval_int(&e, 3, (const char *[]){"inst-a", "inst-b", "30000"}, "claim (alive)"), -1);
    t_script(PRESENCE_REAP_DONE, "", "inst-a", &e);
    ck_assert_int_eq(t_eval_int(&e, 2, (const char *[]){"inst-a", "inst-b"}, "release"), -1);
}
END_TEST

/* The test would see a script whose keys span slots: the one-Redis reap
 * (heartbeat in the registry's slot, names in the room's) is refused. */
START_TEST(test_cross_slot_refused)
{
    struct cfg single;
    struct room_eval e;
    const char *argv[8];
    size_t lens[8];
    redisContext *c;
    redisReply *r;
    int i;

    t_cfg(&single, "");
    ck_assert_int_eq(presence_script(&single, PRESENCE_REAP_ROOM, "lobby", 5, "x", &e), 0);
    ck_assert_int_ne(cluster_key_slot(e.key[0], strlen(e.key[0])),
                     cluster_key_slot(e.key[1], strlen(e.key[1])));
    c = t_owner_of(e.key[1]);
    argv[0] = "EVAL";
    argv[1] = e.script;
    argv[2] = "3";
    for (i = 0; i < 3; i++)
        argv[3 + i] = e.keys[i];
    argv[6] = "chat:{lobby}";
    argv[7] = "1";
    for (i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    r = redisCommandArgv(c, 8, argv, lens);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->type == REDIS_REPLY_ERROR && strstr(r->str, "CROSSSLOT") != NULL,
                  "type %d: %s", r->type, r->str ? r->str : "");
    freeReplyObject(r);
    cfg_free(&single);
}
END_TEST

/* ---- where the notices go ------------------------------------------------------ */

/* Read one pushed message on sub: {kind, channel, payload}. */
static void t_expect_push(redisContext *sub, const char *kind, const char *channel,
                          const char *payload)
{
    redisReply *r = NULL;

    ck_assert_msg(redisGetReply(sub, (void **)&r) == REDIS_OK && r != NULL, "no %s on %s", kind,
                  channel);
    ck_assert_msg(r->type == REDIS_REPLY_ARRAY && r->elements == 3, "push type %d", r->type);
    ck_assert_str_eq(r->element[0]->str, kind);
    ck_assert_str_eq(r->element[1]->str, channel);
    ck_assert_str_eq(r->element[2]->str, payload);
    freeReplyObject(r);
}

START_TEST(test_notices_sharded_and_classic)
{
    struct room_eval e;
    redisContext *ssub, *sub;
    redisReply *r;
    int ports[8];

    /* a room: on its shard, by SSUBSCRIBE */
    t_script(PRESENCE_LEAVE, "lobby", "inst-n", &e);
    ssub = t_connect(h_cluster_slot_owner(&cl, (int)cluster_key_slot(e.channel,
                                                                       strlen(e.channel))));
    r = redisCommand(ssub, "SSUBSCRIBE %s", e.channel);
    ck_assert(r != NULL && r->type == REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    t_script(PRESENCE_JOIN, "lobby", "inst-n", &e);
    ck_assert_int_eq(t_eval_int(&e, 1, (const char *[]){"n1"}, "join"), 1);
    t_script(PRESENCE_LEAVE, "lobby", "inst-n", &e);
    ck_assert_int_eq(t_eval_int(&e, 3, (const char *[]){"n1", e.channel, "ln1"}, "leave"), 1);
    t_expect_push(ssub, "smessage", "chat:{lobby}", "ln1");
    redisFree(ssub);

    /* the default room: classic, heard on any node (here another primary
     * than the one that runs the script) */
    ck_assert_int_ge(h_cluster_primaries(&cl, ports, 8), 3);
    t_script(PRESENCE_LEAVE, "", "inst-n", &e);
    sub = t_connect(ports[0] == h_cluster_slot_owner(&cl, (int)cluster_key_slot("chat-users", 10))
                        ? ports[1]
                        : ports[0]);
    r = redisCommand(sub, "SUBSCRIBE chat");
    ck_assert(r != NULL && r->type == REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    t_script(PRESENCE_JOIN, "", "inst-n", &e);
    ck_assert_int_eq(t_eval_int(&e, 1, (const char *[]){"n2"}, "join"), 1);
    t_script(PRESENCE_LEAVE, "", "inst-n", &e);
    ck_assert_int_eq(
        t_eval_int(&e, 3, (const char *[]){"n2", e.channel, "n2: has left the chat!"}, "leave"),
        1);
    t_expect_push(sub, "message", "chat", "n2: has left the chat!");
    redisFree(sub);
}
END_TEST

/* ---- the crash cleanup across slots --------------------------------------------- */

START_TEST(test_reap_across_slots)
{
    struct room_eval beat, claim, release, join;
    char rooms_key[ROOM_KEY_MAX], alive[ROOM_KEY_MAX];
    redisReply *r;

    t_script(PRESENCE_BEAT, "", "dead-1", &beat);
    t_script(PRESENCE_REAP_CLAIM, "", "dead-1", &claim);
    t_script(PRESENCE_REAP_DONE, "", "dead-1", &release);
    ck_assert_int_eq(t_eval_int(&beat, 2, (const char *[]){"60000", "dead-1"}, "beat"), 0);
    ck_assert_int_ge(room_key_instance_rooms(rooms_key, sizeof(rooms_key), &cfg, "dead-1"), 0);
    ck_assert_int_ge(room_key_instance_alive(alive, sizeof(alive), &cfg, "dead-1"), 0);
    ck_assert_int_eq(t_cmd_int(rooms_key, "SADD %s %s", rooms_key, "lobby"), 1);
    t_script(PRESENCE_JOIN, "", "dead-1", &join);
    ck_assert_int_eq(t_eval_int(&join, 1, (const char *[]){"d1"}, "join"), 1);
    t_script(PRESENCE_JOIN, "lobby", "dead-1", &join);
    ck_assert_int_eq(t_eval_int(&join, 1, (const char *[]){"d2"}, "join"), 1);

    /* alive: nobody may claim it */
    ck_assert_int_eq(
        t_eval_int(&claim, 3, (const char *[]){"dead-1", "c-1", "30000"}, "claim alive"), -1);
    /* its heartbeat gone: one claimer, who gets its rooms */
    ck_assert_int_eq(t_cmd_int(alive, "DEL %s", alive, NULL), 1);
    r = t_eval(&claim, 3, (const char *[]){"dead-1", "c-1", "30000"}, "claim");
    ck_assert_msg(r->type == REDIS_REPLY_ARRAY && r->elements == 1, "claim: type %d", r->type);
    ck_assert_str_eq(r->element[0]->str, "lobby");
    freeReplyObject(r);
    ck_assert_int_eq(
        t_eval_int(&claim, 3, (const char *[]){"dead-1", "c-2", "30000"}, "second claim"), 0);

    /* it was alive after all: its beat says a cleaner is at work */
    ck_assert_int_eq(t_eval_int(&beat, 2, (const char *[]){"60000", "dead-1"}, "beat"), 2);
    /* the rooms: each name removed and announced once */
    ck_assert_int_eq(t_reap_room("lobby", "dead-1"), 1);
    ck_assert_int_eq(t_reap_room("lobby", "dead-1"), 0);
    ck_assert_int_eq(t_reap_room("", "dead-1"), 1);
    ck_assert_int_eq(t_cmd_int("chat-users", "SISMEMBER %s %s", "chat-users", "d1"), 0);
    /* the release: alive again, so it stays registered; the claim ends */
    ck_assert_int_eq(t_eval_int(&release, 2, (const char *[]){"dead-1", "c-1"}, "release"), -1);
    ck_assert_int_eq(t_cmd_int(release.key[3], "EXISTS %s", release.key[3], NULL), 0);
    /* its next beat: no cleaner any more, heal now (1 after a 2) */
    ck_assert_int_eq(t_eval_int(&beat, 2, (const char *[]){"60000", "dead-1"}, "beat"), 1);

    /* really dead this time: claim, rooms, release unregisters it */
    ck_assert_int_eq(t_cmd_int(alive, "DEL %s", alive, NULL), 1);
    r = t_eval(&claim, 3, (const char *[]){"dead-1", "c-2", "30000"}, "claim");
    ck_assert(r->type == REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    ck_assert_int_eq(t_eval_int(&release, 2, (const char *[]){"dead-1", "c-2"}, "release"), 1);
    ck_assert_int_eq(t_cmd_int(rooms_key, "EXISTS %s", rooms_key, NULL), 0);
    ck_assert_int_eq(t_cmd_int(release.key[3], "EXISTS %s", release.key[3], NULL), 0);
    ck_assert_int_eq(t_cmd_int(release.key[1], "SISMEMBER %s %s", release.key[1], "dead-1"), 0);
    /* a beat after that: it had expired (0), heal too */
    ck_assert_int_eq(t_eval_int(&beat, 2, (const char *[]){"60000", "dead-1"}, "beat"), 0);
}
END_TEST

static Suite *cluster_scripts_suite(void)
{
    Suite *s = suite_create("cluster_scripts");
    TCase *tc = tcase_create("cluster");

    tcase_add_unchecked_fixture(tc, t_cluster_up, t_cluster_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_every_script);
    tcase_add_test(tc, test_cross_slot_refused);
    tcase_add_test(tc, test_notices_sharded_and_classic);
    tcase_add_test(tc, test_reap_across_slots);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(cluster_scripts_suite());
}
