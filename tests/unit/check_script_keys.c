/* check_script_keys.c -- the keys of every Lua script the broker sends
 * (broker/presence.c, broker/history.c), built by the same functions that
 * build the calls:
 *   - with redis-cluster, for several rooms, instance ids and users-keys,
 *     each script's keys hash to one slot (Redis refuses a script whose
 *     keys do not: CROSSSLOT), a per-instance script's to the slot of
 *     users-key, a sharded channel it publishes on to that slot too, and
 *     the script SPUBLISHes exactly when the channel is sharded;
 *   - every KEYS[i] a script reads is one it is given;
 *   - without redis-cluster the keys and channels are the names of before,
 *     byte for byte, and nothing is SPUBLISHed.
 * tests/integ/check_cluster_scripts.c runs the same calls on a cluster. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "cluster_slot.h"
#include "config.h"
#include "history.h"
#include "presence.h"
#include "room.h"

static const char *const rooms[] = {
    "", "lobby", "a", "x.y-z_~", "R",
    "0123456789012345678901234567890123456789012345678901234567890123"};
static const char *const ids[] = {"i-1", "0", "5f2c9a0e-91d4-4b1e-8f0a-2b8e1c6d7e3a"};
#define NROOMS (sizeof(rooms) / sizeof(rooms[0]))
#define NIDS (sizeof(ids) / sizeof(ids[0]))

static void cfg_text(struct cfg *c, const char *text)
{
    char err[CFG_ERR_LEN];

    cfg_init(c);
    ck_assert_msg(cfg_parse_buffer(c, text, strlen(text), "test", err, sizeof(err)) == 0, "%s",
                  err);
    ck_assert_msg(cfg_finalize(c, err, sizeof(err)) == 0, "%s", err);
}

static unsigned slot_of(const char *key)
{
    return cluster_key_slot(key, strlen(key));
}

/* The highest i of KEYS[i] in the script's text. */
static int keys_used(const char *script)
{
    const char *p = script;
    int max = 0;

    while ((p = strstr(p, "KEYS[")) != NULL) {
        int i = atoi(p + 5);
        if (i > max)
            max = i;
        p += 5;
    }
    return max;
}

/* One script call, with redis-cluster: one slot for all; what=name. */
static void expect_one_slot(const struct cfg *c, const struct room_eval *e, const char *what,
                            const char *room, int per_instance)
{
    unsigned slot;
    int i, sharded;

    ck_assert_msg(e->script != NULL && e->nkeys >= 1 && e->nkeys <= ROOM_EVAL_KEYS_MAX,
                  "%s '%s': %d keys", what, room, e->nkeys);
    ck_assert_msg(keys_used(e->script) <= e->nkeys, "%s: reads KEYS[%d] of %d", what,
                  keys_used(e->script), e->nkeys);
    slot = slot_of(e->key[0]);
    for (i = 0; i < e->nkeys; i++) {
        ck_assert_ptr_eq(e->keys[i], e->key[i]);
        ck_assert_msg(slot_of(e->key[i]) == slot, "%s '%s': '%s' (slot %u) and '%s' (slot %u)",
                      what, room, e->key[0], slot, e->key[i], slot_of(e->key[i]));
    }
    if (per_instance)
        ck_assert_msg(slot == slot_of(c->users_key), "%s: slot %u, users-key '%s' has %u", what,
                      slot, c->users_key, slot_of(c->users_key));
    sharded = e->channel[0] != '\0' && room_channel_sharded(c, e->channel, strlen(e->channel));
    if (sharded)
        ck_assert_msg(slot_of(e->channel) == slot, "%s '%s': channel '%s' in slot %u, keys in %u",
                      what, room, e->channel, slot_of(e->channel), slot);
    ck_assert_msg((strstr(e->script, "'SPUBLISH'") != NULL) == sharded,
                  "%s '%s': channel '%s' (sharded %d), script:\n%s", what, room, e->channel,
                  sharded, e->script);
    /* a room's channel is sharded in a cluster; the default room's is not */
    if (e->channel[0] != '\0' && strstr(e->channel, ":direct") == NULL)
        ck_assert_int_eq(sharded, room[0] != '\0');
}

START_TEST(test_cluster_one_slot)
{
    static const char *const confs[] = {"redis-cluster yes\n",
                                        "redis-cluster yes\nusers-key prod.users\nchannel p\n",
                                        "redis-cluster yes\nusers-key u{shard}\n"};
    struct cfg c;
    struct room_eval e;
    size_t f, r, i;
    int s, calls = 0;

    for (f = 0; f < sizeof(confs) / sizeof(confs[0]); f++) {
        cfg_text(&c, confs[f]);
        for (r = 0; r < NROOMS; r++)
            for (i = 0; i < NIDS; i++) {
                const char *room = rooms[r];
                size_t rlen = strlen(room);

                for (s = 0; s < PRESENCE_SCRIPTS; s++) {
                    int per_instance = s == PRESENCE_REAP_CLAIM || s == PRESENCE_REAP_DONE ||
                                       s == PRESENCE_BEAT || rlen == 0;
                    char what[32];

                    snprintf(what, sizeof(what), "presence script %d", s);
                    ck_assert_msg(presence_script(&c, (enum presence_script)s, room, rlen, ids[i],
                                                  &e) == 0,
                                  "%s '%s'", what, room);
                    expect_one_slot(&c, &e, what, room, per_instance);
                    calls++;
                }
                ck_assert_int_eq(history_script(&c, HISTORY_PUBLISH, room, rlen, &e), 0);
                expect_one_slot(&c, &e, "history publish", room, 0);
                ck_assert_int_eq(history_script(&c, HISTORY_AFTER, room, rlen, &e), 0);
                expect_one_slot(&c, &e, "history after", room, 0);
                calls += 2;
            }
        cfg_free(&c);
    }
    ck_assert_int_eq(calls, 3 * (int)(NROOMS * NIDS) * (PRESENCE_SCRIPTS + 2));
}
END_TEST

/* Without redis-cluster: exactly the keys of before. */
static void expect_keys(const struct room_eval *e, const char *channel, int n, ...)
{
    va_list ap;
    int i;

    ck_assert_int_eq(e->nkeys, n);
    ck_assert_int_le(keys_used(e->script), n);
    va_start(ap, n);
    for (i = 0; i < n; i++)
        ck_assert_str_eq(e->key[i], va_arg(ap, const char *));
    va_end(ap);
    ck_assert_str_eq(e->channel, channel);
    ck_assert_ptr_null(strstr(e->script, "SPUBLISH"));
}

START_TEST(test_single_names)
{
    struct cfg c;
    struct room_eval e;

    cfg_text(&c, "");
#define P(which, room)                                                                             \
    ck_assert_int_eq(presence_script(&c, which, room, strlen(room), "i-1", &e), 0)
    P(PRESENCE_JOIN, "");
    expect_keys(&e, "", 2, "chat-users", "chat-users:instance:i-1");
    P(PRESENCE_JOIN, "lobby");
    expect_keys(&e, "", 2, "chat:{lobby}:users", "chat:{lobby}:instance:i-1");
    P(PRESENCE_LEAVE, "");
    expect_keys(&e, "chat", 2, "chat-users", "chat-users:instance:i-1");
    P(PRESENCE_LEAVE, "lobby");
    expect_keys(&e, "chat:{lobby}", 2, "chat:{lobby}:users", "chat:{lobby}:instance:i-1");
    P(PRESENCE_WHO, "lobby");
    expect_keys(&e, "", 1, "chat:{lobby}:users");
    P(PRESENCE_DIRECT, "");
    expect_keys(&e, "chat:direct", 1, "chat-users");
    P(PRESENCE_REAP_ROOM, "");
    expect_keys(&e, "chat", 3, "chat-users:instance:i-1:alive", "chat-users",
                "chat-users:instance:i-1");
    P(PRESENCE_REAP_ROOM, "lobby");
    expect_keys(&e, "chat:{lobby}", 3, "chat-users:instance:i-1:alive", "chat:{lobby}:users",
                "chat:{lobby}:instance:i-1");
    P(PRESENCE_REAP_DONE, "");
    expect_keys(&e, "", 3, "chat-users:instances", "chat-users:instance:i-1:alive",
                "chat-users:instance:i-1:rooms");
    P(PRESENCE_BEAT, "");
    expect_keys(&e, "", 3, "chat-users:instance:i-1:alive", "chat-users:instances",
                "chat-users:instance:i-1:reaper");
#undef P
    /* one Redis: no claim, each room's script checks the heartbeat */
    ck_assert_int_eq(presence_script(&c, PRESENCE_REAP_CLAIM, "", 0, "i-1", &e), -1);

    ck_assert_int_eq(history_script(&c, HISTORY_PUBLISH, "", 0, &e), 0);
    expect_keys(&e, "chat:{}", 1, "chat:history");
    ck_assert_int_eq(history_script(&c, HISTORY_PUBLISH, "lobby", 5, &e), 0);
    expect_keys(&e, "chat:{lobby}", 1, "chat:{lobby}:history");
    ck_assert_int_eq(history_script(&c, HISTORY_AFTER, "lobby", 5, &e), 0);
    expect_keys(&e, "", 1, "chat:{lobby}:history");
    cfg_free(&c);
}
END_TEST

/* The cluster's names, for the record (README "Redis keys"). */
START_TEST(test_cluster_names)
{
    struct cfg c;
    struct room_eval e;

    cfg_text(&c, "redis-cluster yes\n");
    ck_assert_int_eq(presence_script(&c, PRESENCE_REAP_CLAIM, "", 0, "i-1", &e), 0);
    ck_assert_int_eq(e.nkeys, 4);
    ck_assert_str_eq(e.key[0], "{chat-users}:instance:i-1:alive");
    ck_assert_str_eq(e.key[1], "{chat-users}:instances");
    ck_assert_str_eq(e.key[2], "{chat-users}:instance:i-1:rooms");
    ck_assert_str_eq(e.key[3], "{chat-users}:instance:i-1:reaper");
    ck_assert_int_eq(presence_script(&c, PRESENCE_REAP_ROOM, "", 0, "i-1", &e), 0);
    ck_assert_int_eq(e.nkeys, 2); /* no heartbeat: the claim checked it */
    ck_assert_str_eq(e.key[0], "chat-users");
    ck_assert_str_eq(e.key[1], "{chat-users}:instance:i-1");
    ck_assert_str_eq(e.channel, "chat");
    ck_assert_int_eq(presence_script(&c, PRESENCE_LEAVE, "lobby", 5, "i-1", &e), 0);
    ck_assert_str_eq(e.channel, "chat:{lobby}");
    ck_assert_ptr_nonnull(strstr(e.script, "'SPUBLISH'"));
    ck_assert_int_eq(history_script(&c, HISTORY_PUBLISH, "", 0, &e), 0);
    ck_assert_str_eq(e.channel, "chat:{}");
    ck_assert_ptr_null(strstr(e.script, "SPUBLISH"));
    cfg_free(&c);
}
END_TEST

/* A key that does not fit is refused, not cut. */
START_TEST(test_too_long)
{
    struct cfg c;
    struct room_eval e;
    char room[ROOM_NAME_MAX + 2];

    cfg_text(&c, "redis-cluster yes\n");
    memset(room, 'a', sizeof(room));
    ck_assert_int_eq(presence_script(&c, PRESENCE_JOIN, room, sizeof(room), "i", &e), -1);
    ck_assert_int_eq(history_script(&c, HISTORY_PUBLISH, room, sizeof(room), &e), -1);
    cfg_free(&c);
}
END_TEST

static Suite *script_keys_suite(void)
{
    Suite *s = suite_create("script_keys");
    TCase *tc = tcase_create("keys");

    tcase_add_test(tc, test_cluster_one_slot);
    tcase_add_test(tc, test_single_names);
    tcase_add_test(tc, test_cluster_names);
    tcase_add_test(tc, test_too_long);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(script_keys_suite());
}
