/* check_room.c -- unit tests for room names and where a room lives in
 * Redis (src/room.c): the name rules of docs/protocol.md, the default
 * room's keys byte for byte the seed's, a room's keys all under its hash
 * tag, directives other than the defaults, buffer bounds (exact-size heap
 * buffers and a canary byte behind cap), channel -> room, and with
 * redis-cluster: the per-instance keys in the slot of users-key, which
 * channels are sharded and how they are published. */
#include "room.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "cluster_slot.h"
#include "config.h"

#define CANARY 0xA5

#define REASON_EMPTY "room name is empty"
#define REASON_LONG "room name is longer than 64 characters"
#define REASON_CHARS                                                                               \
    "room name contains a forbidden character (allowed: letters, digits, '-', '_', '.', '~')"

/* A finalized cfg with the given channel and users-key (NULL: default). */
static void cfg_make(struct cfg *c, const char *channel, const char *users_key)
{
    char err[CFG_ERR_LEN];
    char text[1024];
    int n;

    cfg_init(c);
    n = snprintf(text, sizeof(text), "%s%s%s%s%s%s", channel ? "channel " : "",
                 channel ? channel : "", channel ? "\n" : "", users_key ? "users-key " : "",
                 users_key ? users_key : "", users_key ? "\n" : "");
    ck_assert(n >= 0 && (size_t)n < sizeof(text));
    ck_assert_msg(cfg_parse_buffer(c, text, (size_t)n, "test", err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(cfg_finalize(c, err, sizeof(err)) == 0, "%s", err);
}

/* ---- names ------------------------------------------------------------------- */

static void expect_name(const char *name, size_t len, const char *want)
{
    const char *got = room_name_check(name, len);

    if (want == NULL)
        ck_assert_msg(got == NULL, "'%.*s' (%zu): refused: %s", (int)len, name, len, got);
    else
        ck_assert_msg(got != NULL && strcmp(got, want) == 0, "'%.*s' (%zu): got %s, want %s",
                      (int)len, name, len, got ? got : "(ok)", want);
}

START_TEST(test_name_empty)
{
    expect_name("", 0, REASON_EMPTY);
    expect_name("abc", 0, REASON_EMPTY); /* the length decides */
    expect_name(NULL, 0, REASON_EMPTY);
    expect_name(NULL, 5, REASON_EMPTY);
}
END_TEST

START_TEST(test_name_length)
{
    char name[200];

    memset(name, 'a', sizeof(name));
    expect_name(name, 1, NULL);
    expect_name(name, 63, NULL);
    expect_name(name, ROOM_NAME_MAX, NULL);
    ck_assert_int_eq(ROOM_NAME_MAX, 64);
    expect_name(name, 65, REASON_LONG);
    expect_name(name, sizeof(name), REASON_LONG);
    /* only len bytes are read: a heap copy of exactly 64 bytes */
    {
        char *p = malloc(64);
        ck_assert_ptr_nonnull(p);
        memset(p, 'Z', 64);
        expect_name(p, 64, NULL);
        free(p);
    }
}
END_TEST

START_TEST(test_name_forbidden)
{
    /* each class docs/protocol.md names, alone and inside a valid name */
    static const char *const bad[] = {"/", ":", "{", "}", " ", "%", "\t", "\n", "\r", "\x01",
                                      "\x1f", "\x7f", "\x80", "\xc3\xa9", "\xff", "+", "@", "#",
                                      "?", "*", "\"", "'", "\\", "!", "$", "&", "=", ",", ";",
                                      "[", "]", "<", ">", "|", "^", "`", "(", ")"};
    char name[32];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_name(bad[i], strlen(bad[i]), REASON_CHARS);
        snprintf(name, sizeof(name), "ab%scd", bad[i]);
        expect_name(name, strlen(name), REASON_CHARS);
        snprintf(name, sizeof(name), "%sabc", bad[i]);
        expect_name(name, strlen(name), REASON_CHARS);
        snprintf(name, sizeof(name), "abc%s", bad[i]);
        expect_name(name, strlen(name), REASON_CHARS);
    }
    /* a NUL byte inside the length is a control too */
    expect_name("a\0b", 3, REASON_CHARS);
    expect_name("\0", 1, REASON_CHARS);
    /* typical attempts at other keys */
    expect_name("a}:users", 8, REASON_CHARS);
    expect_name("a%2Fb", 5, REASON_CHARS);
}
END_TEST

START_TEST(test_name_alphabet)
{
    /* every byte: allowed exactly when it is in A-Z a-z 0-9 - _ . ~ */
    for (int c = 0; c < 256; c++) {
        char b = (char)c;
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' || c == '~';
        const char *got = room_name_check(&b, 1);

        ck_assert_msg((got == NULL) == ok, "byte 0x%02x: %s", c, got ? got : "(ok)");
        if (!ok)
            ck_assert_str_eq(got, REASON_CHARS);
    }
    expect_name("lobby", 5, NULL);
    expect_name("Room-1_b.c~", 11, NULL);
    expect_name("...", 3, NULL);
    expect_name("~", 1, NULL);
    expect_name("0123456789", 10, NULL);
}
END_TEST

START_TEST(test_name_long_and_bad)
{
    /* both wrong: either reason is a refusal */
    char name[80];

    memset(name, 'a', sizeof(name));
    name[70] = '/';
    ck_assert_ptr_nonnull(room_name_check(name, sizeof(name)));
    name[70] = 'a';
    name[3] = ' ';
    ck_assert_ptr_nonnull(room_name_check(name, sizeof(name)));
}
END_TEST

/* ---- keys -------------------------------------------------------------------- */

/* room_key into a heap buffer of exactly cap bytes (+1 canary); want NULL:
 * must not fit. */
static void expect_key(const struct cfg *c, const char *room, enum room_key which,
                       const char *id, size_t cap, const char *want)
{
    char *buf = malloc(cap + 1);
    ssize_t n;

    ck_assert_ptr_nonnull(buf);
    buf[cap] = (char)CANARY;
    n = room_key(buf, cap, c, room, strlen(room), which, id);
    if (want == NULL) {
        ck_assert_msg(n == -1, "room '%s' key %d in %zu bytes: got %zd, want -1", room,
                      (int)which, cap, n);
    } else {
        ck_assert_msg(n == (ssize_t)strlen(want), "room '%s' key %d: %zd, want %zu ('%s')", room,
                      (int)which, n, strlen(want), want);
        ck_assert_str_eq(buf, want); /* NUL-terminated */
    }
    ck_assert_int_eq((unsigned char)buf[cap], CANARY);
    free(buf);
}

START_TEST(test_keys_default_room)
{
    struct cfg c;

    cfg_make(&c, NULL, NULL);
    /* the seed's keys, byte for byte */
    expect_key(&c, "", ROOM_KEY_CHANNEL, NULL, 64, "chat");
    expect_key(&c, "", ROOM_KEY_USERS, NULL, 64, "chat-users");
    expect_key(&c, "", ROOM_KEY_INSTANCE, "abc123", 64, "chat-users:instance:abc123");
    cfg_free(&c);
}
END_TEST

START_TEST(test_keys_room)
{
    struct cfg c;

    cfg_make(&c, NULL, NULL);
    expect_key(&c, "lobby", ROOM_KEY_CHANNEL, NULL, 64, "chat:{lobby}");
    expect_key(&c, "lobby", ROOM_KEY_USERS, NULL, 64, "chat:{lobby}:users");
    expect_key(&c, "lobby", ROOM_KEY_INSTANCE, "abc123", 64, "chat:{lobby}:instance:abc123");
    cfg_free(&c);
}
END_TEST

/* Redis Cluster's hash tag of a key: the bytes between the first '{' and
 * the first '}' after it, when not empty; else the whole key. */
static void hash_tag(const char *key, const char **tag, size_t *len)
{
    const char *open = strchr(key, '{'), *close = open ? strchr(open + 1, '}') : NULL;

    if (open == NULL || close == NULL || close == open + 1) {
        *tag = key;
        *len = strlen(key);
    } else {
        *tag = open + 1;
        *len = (size_t)(close - open - 1);
    }
}

START_TEST(test_keys_share_hash_tag)
{
    static const char *const rooms[] = {"a", "lobby", "x.y-z_~", "R"};
    struct cfg c;

    cfg_make(&c, NULL, NULL);
    for (size_t i = 0; i < sizeof(rooms) / sizeof(rooms[0]); i++) {
        char key[3][ROOM_KEY_MAX];
        const char *tag;
        size_t len;

        ck_assert_int_gt(room_key(key[0], sizeof(key[0]), &c, rooms[i], strlen(rooms[i]),
                                  ROOM_KEY_CHANNEL, NULL),
                         0);
        ck_assert_int_gt(room_key(key[1], sizeof(key[1]), &c, rooms[i], strlen(rooms[i]),
                                  ROOM_KEY_USERS, NULL),
                         0);
        ck_assert_int_gt(room_key(key[2], sizeof(key[2]), &c, rooms[i], strlen(rooms[i]),
                                  ROOM_KEY_INSTANCE, "i-1"),
                         0);
        for (int k = 0; k < 3; k++) {
            hash_tag(key[k], &tag, &len);
            ck_assert_msg(len == strlen(rooms[i]) && memcmp(tag, rooms[i], len) == 0,
                          "key '%s': tag '%.*s', want '%s'", key[k], (int)len, tag, rooms[i]);
        }
    }
    cfg_free(&c);
}
END_TEST

START_TEST(test_keys_other_directives)
{
    struct cfg c;
    char buf[ROOM_KEY_MAX];

    cfg_make(&c, "prod-chat", "prod-users");
    expect_key(&c, "", ROOM_KEY_CHANNEL, NULL, 64, "prod-chat");
    expect_key(&c, "", ROOM_KEY_USERS, NULL, 64, "prod-users");
    expect_key(&c, "", ROOM_KEY_INSTANCE, "7", 64, "prod-users:instance:7");
    /* a room's keys follow the channel directive, not users-key */
    expect_key(&c, "games", ROOM_KEY_CHANNEL, NULL, 64, "prod-chat:{games}");
    expect_key(&c, "games", ROOM_KEY_USERS, NULL, 64, "prod-chat:{games}:users");
    expect_key(&c, "games", ROOM_KEY_INSTANCE, "7", 64, "prod-chat:{games}:instance:7");
    ck_assert_int_eq(room_key_instance_rooms(buf, sizeof(buf), &c, "7"),
                     (ssize_t)strlen("prod-users:instance:7:rooms"));
    ck_assert_str_eq(buf, "prod-users:instance:7:rooms");
    ck_assert_int_eq(room_key_direct(buf, sizeof(buf), &c), (ssize_t)strlen("prod-chat:direct"));
    ck_assert_str_eq(buf, "prod-chat:direct");
    cfg_free(&c);
}
END_TEST

START_TEST(test_keys_longest)
{
    /* the longest channel, room and a long id fit in ROOM_KEY_MAX */
    struct cfg c;
    char chan[CFG_NAME_MAX + 1], room[ROOM_NAME_MAX + 1], id[65];
    char buf[ROOM_KEY_MAX];
    ssize_t n;

    memset(chan, 'c', CFG_NAME_MAX);
    chan[CFG_NAME_MAX] = '\0';
    memset(room, 'r', ROOM_NAME_MAX);
    room[ROOM_NAME_MAX] = '\0';
    memset(id, 'i', 64);
    id[64] = '\0';
    cfg_make(&c, chan, chan);
    n = room_key(buf, sizeof(buf), &c, room, ROOM_NAME_MAX, ROOM_KEY_INSTANCE, id);
    ck_assert_int_eq(n, (ssize_t)(CFG_NAME_MAX + 2 + ROOM_NAME_MAX + 1 + 10 + 64));
    ck_assert_int_eq(room_key_instance_rooms(buf, sizeof(buf), &c, id),
                     (ssize_t)(CFG_NAME_MAX + 10 + 64 + 6));
    cfg_free(&c);
}
END_TEST

START_TEST(test_keys_too_small)
{
    struct cfg c;
    static const struct {
        const char *room;
        enum room_key which;
        const char *id, *want;
    } k[] = {
        {"", ROOM_KEY_CHANNEL, NULL, "chat"},
        {"", ROOM_KEY_USERS, NULL, "chat-users"},
        {"", ROOM_KEY_INSTANCE, "abc", "chat-users:instance:abc"},
        {"lobby", ROOM_KEY_CHANNEL, NULL, "chat:{lobby}"},
        {"lobby", ROOM_KEY_USERS, NULL, "chat:{lobby}:users"},
        {"lobby", ROOM_KEY_INSTANCE, "abc", "chat:{lobby}:instance:abc"},
    };

    cfg_make(&c, NULL, NULL);
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        size_t len = strlen(k[i].want);

        expect_key(&c, k[i].room, k[i].which, k[i].id, len + 1, k[i].want); /* exact fit */
        expect_key(&c, k[i].room, k[i].which, k[i].id, len, NULL); /* no room for the NUL */
        expect_key(&c, k[i].room, k[i].which, k[i].id, len - 1, NULL);
        expect_key(&c, k[i].room, k[i].which, k[i].id, 1, NULL);
    }
    cfg_free(&c);
}
END_TEST

START_TEST(test_keys_room_too_long)
{
    struct cfg c;
    char room[ROOM_NAME_MAX + 1], buf[ROOM_KEY_MAX];

    cfg_make(&c, NULL, NULL);
    memset(room, 'a', sizeof(room));
    ck_assert_int_eq(room_key(buf, sizeof(buf), &c, room, ROOM_NAME_MAX + 1, ROOM_KEY_CHANNEL,
                              NULL),
                     -1);
    ck_assert_int_eq(room_key(buf, sizeof(buf), &c, room, ROOM_NAME_MAX, ROOM_KEY_CHANNEL, NULL),
                     (ssize_t)(4 + 2 + ROOM_NAME_MAX + 1));
    cfg_free(&c);
}
END_TEST

START_TEST(test_keys_instance_rooms_and_direct)
{
    struct cfg c;
    char *buf;
    size_t cap;
    const char *want_rooms = "chat-users:instance:abc:rooms", *want_direct = "chat:direct";

    cfg_make(&c, NULL, NULL);
    for (cap = 0; cap <= strlen(want_rooms) + 1; cap++) {
        buf = malloc(cap + 1);
        ck_assert_ptr_nonnull(buf);
        buf[cap] = (char)CANARY;
        if (cap == strlen(want_rooms) + 1) {
            ck_assert_int_eq(room_key_instance_rooms(buf, cap, &c, "abc"),
                             (ssize_t)strlen(want_rooms));
            ck_assert_str_eq(buf, want_rooms);
        } else {
            ck_assert_int_eq(room_key_instance_rooms(buf, cap, &c, "abc"), -1);
        }
        ck_assert_int_eq((unsigned char)buf[cap], CANARY);
        free(buf);
    }
    for (cap = 0; cap <= strlen(want_direct) + 1; cap++) {
        buf = malloc(cap + 1);
        ck_assert_ptr_nonnull(buf);
        buf[cap] = (char)CANARY;
        if (cap == strlen(want_direct) + 1) {
            ck_assert_int_eq(room_key_direct(buf, cap, &c), (ssize_t)strlen(want_direct));
            ck_assert_str_eq(buf, want_direct);
        } else {
            ck_assert_int_eq(room_key_direct(buf, cap, &c), -1);
        }
        ck_assert_int_eq((unsigned char)buf[cap], CANARY);
        free(buf);
    }
    cfg_free(&c);
}
END_TEST

/* ---- channel -> room ------------------------------------------------------------ */

static void expect_of_channel(const struct cfg *c, const char *ch, const char *want)
{
    size_t len = strlen(ch);
    char *copy = malloc(len > 0 ? len : 1); /* exact size, no NUL: reads stay within */
    const char *room = (const char *)0x1;
    ssize_t n;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, ch, len);
    n = room_of_channel(c, copy, len, &room);
    if (want == NULL) {
        ck_assert_msg(n == -1, "'%s': got %zd, want -1", ch, n);
    } else {
        ck_assert_msg(n == (ssize_t)strlen(want), "'%s': got %zd, want %zu", ch, n, strlen(want));
        ck_assert_mem_eq(room, want, strlen(want));
        if (n > 0) /* a view into the channel */
            ck_assert(room >= copy && room + n <= copy + len);
        else
            ck_assert_ptr_nonnull(room);
    }
    free(copy);
}

START_TEST(test_of_channel)
{
    struct cfg c;

    cfg_make(&c, NULL, NULL);
    expect_of_channel(&c, "chat", "");
    expect_of_channel(&c, "chat:{lobby}", "lobby");
    expect_of_channel(&c, "chat:{a}", "a");
    expect_of_channel(&c, "chat:{x.y-z_~}", "x.y-z_~");
    /* the default room's feed (history on) */
    expect_of_channel(&c, "chat:{}", "");
    /* not a room's channel */
    expect_of_channel(&c, "chat:{}x", NULL);
    expect_of_channel(&c, "chat:{}:history", NULL);
    expect_of_channel(&c, "chat:{a/b}", NULL);
    expect_of_channel(&c, "chat:{a b}", NULL);
    expect_of_channel(&c, "chat:{a}b}", NULL);
    expect_of_channel(&c, "chat:{{a}", NULL);
    expect_of_channel(&c, "chatx:{a}", NULL);
    expect_of_channel(&c, "chat:{a}x", NULL);
    expect_of_channel(&c, "chat:{a}:users", NULL);
    expect_of_channel(&c, "chat:{a", NULL);
    expect_of_channel(&c, "chat:a}", NULL);
    expect_of_channel(&c, "chat:direct", NULL);
    expect_of_channel(&c, "chat-users", NULL);
    expect_of_channel(&c, "other:{a}", NULL);
    expect_of_channel(&c, "cha", NULL);
    expect_of_channel(&c, "chat:", NULL);
    expect_of_channel(&c, "chat:{", NULL);
    expect_of_channel(&c, "", NULL);
    expect_of_channel(&c, "CHAT:{a}", NULL);
    cfg_free(&c);
}
END_TEST

START_TEST(test_of_channel_too_long)
{
    struct cfg c;
    char ch[8 + ROOM_NAME_MAX + 2];
    const char *room;

    cfg_make(&c, NULL, NULL);
    memcpy(ch, "chat:{", 6);
    memset(ch + 6, 'a', ROOM_NAME_MAX + 1);
    ch[6 + ROOM_NAME_MAX] = '}';
    ck_assert_int_eq(room_of_channel(&c, ch, 6 + ROOM_NAME_MAX + 1, &room), ROOM_NAME_MAX);
    ck_assert_ptr_eq(room, ch + 6);
    ch[6 + ROOM_NAME_MAX] = 'a';
    ch[6 + ROOM_NAME_MAX + 1] = '}';
    ck_assert_int_eq(room_of_channel(&c, ch, 6 + ROOM_NAME_MAX + 2, &room), -1);
    cfg_free(&c);
}
END_TEST

START_TEST(test_of_channel_round_trip)
{
    static const char *const rooms[] = {"", "a", "lobby", "Z9", "x.y-z_~", "----"};
    struct cfg c[2];

    cfg_make(&c[0], NULL, NULL);
    cfg_make(&c[1], "prod-chat", "prod-users");
    for (int k = 0; k < 2; k++) {
        /* a room -> its channel -> the same room */
        for (size_t i = 0; i < sizeof(rooms) / sizeof(rooms[0]); i++) {
            char ch[ROOM_KEY_MAX];
            const char *room;
            ssize_t n = room_key(ch, sizeof(ch), &c[k], rooms[i], strlen(rooms[i]),
                                 ROOM_KEY_CHANNEL, NULL);

            ck_assert_int_gt(n, 0);
            ck_assert_int_eq(room_of_channel(&c[k], ch, (size_t)n, &room),
                             (ssize_t)strlen(rooms[i]));
            ck_assert_mem_eq(room, rooms[i], strlen(rooms[i]));
        }
        /* the other keys are no channel */
        for (size_t i = 1; i < sizeof(rooms) / sizeof(rooms[0]); i++) {
            char key[ROOM_KEY_MAX];
            const char *room;
            ssize_t n = room_key(key, sizeof(key), &c[k], rooms[i], strlen(rooms[i]),
                                 ROOM_KEY_USERS, NULL);

            ck_assert_int_eq(room_of_channel(&c[k], key, (size_t)n, &room), -1);
            n = room_key(key, sizeof(key), &c[k], rooms[i], strlen(rooms[i]), ROOM_KEY_INSTANCE,
                         "1");
            ck_assert_int_eq(room_of_channel(&c[k], key, (size_t)n, &room), -1);
        }
        {
            char key[ROOM_KEY_MAX];
            const char *room;
            ssize_t n = room_key_direct(key, sizeof(key), &c[k]);

            ck_assert_int_eq(room_of_channel(&c[k], key, (size_t)n, &room), -1);
        }
    }
    /* one deployment's room channels are not another's */
    expect_of_channel(&c[1], "chat:{a}", NULL);
    expect_of_channel(&c[1], "chat", NULL);
    expect_of_channel(&c[1], "prod-chat:{a}", "a");
    expect_of_channel(&c[1], "prod-chat", "");
    cfg_free(&c[0]);
    cfg_free(&c[1]);
}
END_TEST

START_TEST(test_keys_history_and_feed)
{
    struct cfg c;

    cfg_make(&c, NULL, NULL);
    /* the default room: under the channel directive, not users-key */
    expect_key(&c, "", ROOM_KEY_HISTORY, NULL, 64, "chat:history");
    expect_key(&c, "", ROOM_KEY_FEED, NULL, 64, "chat:{}");
    /* a room: its stream under its hash tag; its feed is its channel */
    expect_key(&c, "lobby", ROOM_KEY_HISTORY, NULL, 64, "chat:{lobby}:history");
    expect_key(&c, "lobby", ROOM_KEY_FEED, NULL, 64, "chat:{lobby}");
    cfg_free(&c);

    cfg_make(&c, "prod-chat", "prod-users");
    expect_key(&c, "", ROOM_KEY_HISTORY, NULL, 64, "prod-chat:history");
    expect_key(&c, "", ROOM_KEY_FEED, NULL, 64, "prod-chat:{}");
    expect_key(&c, "games", ROOM_KEY_HISTORY, NULL, 64, "prod-chat:{games}:history");
    expect_key(&c, "games", ROOM_KEY_FEED, NULL, 64, "prod-chat:{games}");
    cfg_free(&c);

    /* bounds: exact fit, one short (no room for the NUL), canary intact */
    cfg_make(&c, NULL, NULL);
    {
        static const struct {
            const char *room;
            enum room_key which;
            const char *want;
        } k[] = {
            {"", ROOM_KEY_HISTORY, "chat:history"},
            {"", ROOM_KEY_FEED, "chat:{}"},
            {"lobby", ROOM_KEY_HISTORY, "chat:{lobby}:history"},
            {"lobby", ROOM_KEY_FEED, "chat:{lobby}"},
        };

        for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
            size_t len = strlen(k[i].want);

            expect_key(&c, k[i].room, k[i].which, NULL, len + 1, k[i].want);
            expect_key(&c, k[i].room, k[i].which, NULL, len, NULL);
            expect_key(&c, k[i].room, k[i].which, NULL, 1, NULL);
        }
    }
    /* a room's history shares its hash tag with its other keys */
    {
        char key[ROOM_KEY_MAX];
        const char *tag;
        size_t len;

        ck_assert_int_gt(room_key(key, sizeof(key), &c, "x.y-z_~", 7, ROOM_KEY_HISTORY, NULL), 0);
        hash_tag(key, &tag, &len);
        ck_assert(len == 7 && memcmp(tag, "x.y-z_~", 7) == 0);
    }
    /* the longest channel and room fit in ROOM_KEY_MAX */
    cfg_free(&c);
    {
        char chan[CFG_NAME_MAX + 1], room[ROOM_NAME_MAX + 1], buf[ROOM_KEY_MAX];

        memset(chan, 'c', CFG_NAME_MAX);
        chan[CFG_NAME_MAX] = '\0';
        memset(room, 'r', ROOM_NAME_MAX);
        room[ROOM_NAME_MAX] = '\0';
        cfg_make(&c, chan, NULL);
        ck_assert_int_eq(room_key(buf, sizeof(buf), &c, room, ROOM_NAME_MAX, ROOM_KEY_HISTORY,
                                  NULL),
                         (ssize_t)(CFG_NAME_MAX + 2 + ROOM_NAME_MAX + 1 + 8));
        ck_assert_int_eq(room_key(buf, sizeof(buf), &c, room, ROOM_NAME_MAX + 1, ROOM_KEY_HISTORY,
                                  NULL),
                         -1);
        ck_assert_int_eq(room_key(buf, sizeof(buf), &c, room, ROOM_NAME_MAX + 1, ROOM_KEY_FEED,
                                  NULL),
                         -1);
        cfg_free(&c);
    }
}
END_TEST

/* The feed is where a room's messages with ids are heard: each one maps back
 * to its room; the history stream is a key, no channel. */
START_TEST(test_of_channel_feed_and_history)
{
    static const char *const rooms[] = {"", "a", "lobby", "x.y-z_~"};
    struct cfg c[2];

    cfg_make(&c[0], NULL, NULL);
    cfg_make(&c[1], "prod-chat", "prod-users");
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof(rooms) / sizeof(rooms[0]); i++) {
            char key[ROOM_KEY_MAX];
            const char *room = NULL;
            ssize_t n = room_key(key, sizeof(key), &c[k], rooms[i], strlen(rooms[i]),
                                 ROOM_KEY_FEED, NULL);

            ck_assert_int_gt(n, 0);
            ck_assert_int_eq(room_of_channel(&c[k], key, (size_t)n, &room),
                             (ssize_t)strlen(rooms[i]));
            ck_assert_ptr_nonnull(room);
            ck_assert_mem_eq(room, rooms[i], strlen(rooms[i]));
            n = room_key(key, sizeof(key), &c[k], rooms[i], strlen(rooms[i]), ROOM_KEY_HISTORY,
                         NULL);
            ck_assert_int_gt(n, 0);
            ck_assert_int_eq(room_of_channel(&c[k], key, (size_t)n, &room), -1);
        }
    /* the default room's feed: "chat:{}", not a room named "" */
    expect_of_channel(&c[0], "chat:{}", "");
    expect_of_channel(&c[1], "prod-chat:{}", "");
    expect_of_channel(&c[1], "chat:{}", NULL);
    expect_of_channel(&c[0], "chat:{}}", NULL);
    expect_of_channel(&c[0], "chat{}", NULL);
    expect_of_channel(&c[0], "chat:[]", NULL);
    expect_of_channel(&c[0], "chat:history", NULL);
    cfg_free(&c[0]);
    cfg_free(&c[1]);
}
END_TEST

/* ---- redis-cluster ------------------------------------------------------------- */

/* A finalized cfg from text; 0, or -1 with the reason in err. */
static int cfg_text(struct cfg *c, const char *text, char *err, size_t errlen)
{
    cfg_init(c);
    if (cfg_parse_buffer(c, text, strlen(text), "test", err, errlen) == -1 ||
        cfg_finalize(c, err, errlen) == -1) {
        cfg_free(c);
        return -1;
    }
    return 0;
}

/* The per-instance keys for instance id, in the order of want[]. */
static void expect_instance_keys(const struct cfg *c, const char *id, const char *const want[5])
{
    char buf[5][ROOM_KEY_MAX];
    int i;

    ck_assert_int_ge(room_key_instances(buf[0], sizeof(buf[0]), c), 0);
    ck_assert_int_ge(room_key_instance_alive(buf[1], sizeof(buf[1]), c, id), 0);
    ck_assert_int_ge(room_key_instance_rooms(buf[2], sizeof(buf[2]), c, id), 0);
    ck_assert_int_ge(room_key_instance_reaper(buf[3], sizeof(buf[3]), c, id), 0);
    ck_assert_int_ge(room_key(buf[4], sizeof(buf[4]), c, "", 0, ROOM_KEY_INSTANCE, id), 0);
    for (i = 0; i < 5; i++)
        ck_assert_str_eq(buf[i], want[i]);
}

START_TEST(test_cluster_instance_keys)
{
    static const char *const single[5] = {
        "chat-users:instances", "chat-users:instance:i-1:alive", "chat-users:instance:i-1:rooms",
        "chat-users:instance:i-1:reaper", "chat-users:instance:i-1"};
    static const char *const cluster[5] = {
        "{chat-users}:instances", "{chat-users}:instance:i-1:alive",
        "{chat-users}:instance:i-1:rooms", "{chat-users}:instance:i-1:reaper",
        "{chat-users}:instance:i-1"};
    struct cfg c;
    char err[CFG_ERR_LEN], buf[ROOM_KEY_MAX];

    /* without redis-cluster: the names of before, byte for byte */
    cfg_make(&c, NULL, NULL);
    expect_instance_keys(&c, "i-1", single);
    cfg_free(&c);

    ck_assert_msg(cfg_text(&c, "redis-cluster yes\n", err, sizeof(err)) == 0, "%s", err);
    expect_instance_keys(&c, "i-1", cluster);
    /* the default room keeps the seed's names; a room its own, as before */
    expect_key(&c, "", ROOM_KEY_USERS, NULL, 64, "chat-users");
    expect_key(&c, "", ROOM_KEY_CHANNEL, NULL, 64, "chat");
    expect_key(&c, "", ROOM_KEY_HISTORY, NULL, 64, "chat:history");
    expect_key(&c, "lobby", ROOM_KEY_INSTANCE, "i-1", 64, "chat:{lobby}:instance:i-1");
    ck_assert_int_ge(room_key_direct(buf, sizeof(buf), &c), 0);
    ck_assert_str_eq(buf, "chat:direct");
    cfg_free(&c);
}
END_TEST

/* Every per-instance key in the slot of users-key (the default room's
 * names), for several users-keys and ids, a tag of its own included. */
START_TEST(test_cluster_instance_keys_slot)
{
    static const char *const users_keys[] = {"chat-users", "u", "prod.users-1", "a{b}c",
                                             "{tagged}", "x{"};
    static const char *const ids[] = {"0", "i-1", "5f2c9a0e-91d4-4b1e-8f0a-2b8e1c6d7e3a"};
    struct cfg c;
    char text[256], err[CFG_ERR_LEN], buf[5][ROOM_KEY_MAX];
    size_t i, j;
    int k;

    for (i = 0; i < sizeof(users_keys) / sizeof(users_keys[0]); i++) {
        snprintf(text, sizeof(text), "redis-cluster yes\nusers-key %s\n", users_keys[i]);
        ck_assert_msg(cfg_text(&c, text, err, sizeof(err)) == 0, "%s: %s", users_keys[i], err);
        for (j = 0; j < sizeof(ids) / sizeof(ids[0]); j++) {
            unsigned want = cluster_key_slot(users_keys[i], strlen(users_keys[i]));

            ck_assert_int_ge(room_key_instances(buf[0], sizeof(buf[0]), &c), 0);
            ck_assert_int_ge(room_key_instance_alive(buf[1], sizeof(buf[1]), &c, ids[j]), 0);
            ck_assert_int_ge(room_key_instance_rooms(buf[2], sizeof(buf[2]), &c, ids[j]), 0);
            ck_assert_int_ge(room_key_instance_reaper(buf[3], sizeof(buf[3]), &c, ids[j]), 0);
            ck_assert_int_ge(room_key(buf[4], sizeof(buf[4]), &c, "", 0, ROOM_KEY_INSTANCE, ids[j]),
                             0);
            for (k = 0; k < 5; k++)
                ck_assert_msg(cluster_key_slot(buf[k], strlen(buf[k])) == want,
                              "'%s': slot %u, '%s' has %u", buf[k],
                              cluster_key_slot(buf[k], strlen(buf[k])), users_keys[i], want);
        }
        cfg_free(&c);
    }
    /* a users-key with a tag of its own keeps its names */
    ck_assert(cfg_text(&c, "redis-cluster yes\nusers-key a{b}c\n", err, sizeof(err)) == 0);
    ck_assert_int_ge(room_key_instances(buf[0], sizeof(buf[0]), &c), 0);
    ck_assert_str_eq(buf[0], "a{b}c:instances");
    cfg_free(&c);
}
END_TEST

/* A '}' that closes no tag would split the keys over two slots: refused. */
START_TEST(test_cluster_users_key_refused)
{
    static const char *const bad[] = {"a}b", "a{}b", "}", "{}x"};
    static const char *const good[] = {"ab", "a{b}", "a{b", "{x}}"};
    struct cfg c;
    char text[256], err[CFG_ERR_LEN];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(room_users_key_fits_cluster(bad[i]), 0);
        snprintf(text, sizeof(text), "redis-cluster yes\nusers-key %s\n", bad[i]);
        ck_assert_msg(cfg_text(&c, text, err, sizeof(err)) == -1, "%s accepted", bad[i]);
        ck_assert_msg(strstr(err, "users-key") != NULL, "%s", err);
        /* without a cluster nothing hashes: accepted */
        snprintf(text, sizeof(text), "users-key %s\n", bad[i]);
        ck_assert_msg(cfg_text(&c, text, err, sizeof(err)) == 0, "%s: %s", bad[i], err);
        cfg_free(&c);
    }
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_int_eq(room_users_key_fits_cluster(good[i]), 1);
}
END_TEST

START_TEST(test_cluster_publish_command)
{
    struct cfg single, cluster;
    char err[CFG_ERR_LEN];
    static const char *const classic[] = {"chat", "chat:{}", "chat:direct", "other:{lobby}"};
    size_t i;

    cfg_make(&single, NULL, NULL);
    ck_assert(cfg_text(&cluster, "redis-cluster yes\n", err, sizeof(err)) == 0);
    ck_assert_str_eq(room_publish_command(&cluster, "chat:{lobby}", 12), "SPUBLISH");
    ck_assert_int_eq(room_channel_sharded(&cluster, "chat:{lobby}", 12), 1);
    ck_assert_str_eq(room_publish_command(&single, "chat:{lobby}", 12), "PUBLISH");
    ck_assert_int_eq(room_channel_sharded(&single, "chat:{lobby}", 12), 0);
    for (i = 0; i < sizeof(classic) / sizeof(classic[0]); i++) {
        ck_assert_str_eq(room_publish_command(&cluster, classic[i], strlen(classic[i])), "PUBLISH");
        ck_assert_str_eq(room_publish_command(&single, classic[i], strlen(classic[i])), "PUBLISH");
    }
    cfg_free(&single);
    cfg_free(&cluster);
}
END_TEST

static Suite *room_suite(void)
{
    Suite *s = suite_create("room");
    TCase *tc = tcase_create("name");

    tcase_add_test(tc, test_name_empty);
    tcase_add_test(tc, test_name_length);
    tcase_add_test(tc, test_name_forbidden);
    tcase_add_test(tc, test_name_alphabet);
    tcase_add_test(tc, test_name_long_and_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_add_test(tc, test_keys_default_room);
    tcase_add_test(tc, test_keys_room);
    tcase_add_test(tc, test_keys_share_hash_tag);
    tcase_add_test(tc, test_keys_other_directives);
    tcase_add_test(tc, test_keys_longest);
    tcase_add_test(tc, test_keys_too_small);
    tcase_add_test(tc, test_keys_room_too_long);
    tcase_add_test(tc, test_keys_instance_rooms_and_direct);
    tcase_add_test(tc, test_keys_history_and_feed);
    suite_add_tcase(s, tc);

    tc = tcase_create("channel");
    tcase_add_test(tc, test_of_channel);
    tcase_add_test(tc, test_of_channel_too_long);
    tcase_add_test(tc, test_of_channel_round_trip);
    tcase_add_test(tc, test_of_channel_feed_and_history);
    suite_add_tcase(s, tc);

    tc = tcase_create("cluster");
    tcase_add_test(tc, test_cluster_instance_keys);
    tcase_add_test(tc, test_cluster_instance_keys_slot);
    tcase_add_test(tc, test_cluster_users_key_refused);
    tcase_add_test(tc, test_cluster_publish_command);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(room_suite());
}
