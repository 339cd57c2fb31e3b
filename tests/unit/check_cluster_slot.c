/* check_cluster_slot.c -- unit tests for CRC16 and the key -> hash slot rule
 * (src/cluster_slot.c): the CRC's published check value, slots a Redis 7
 * cluster gave for the same keys (CLUSTER KEYSLOT), the hash tag's edge
 * cases (empty tags, nested and repeated braces, a lone brace, bytes that
 * are not text, NUL included), and every key of a room in one slot. The
 * integration test check_cluster_map compares 1000 random keys with a live
 * cluster. */
#include "cluster_slot.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "config.h"
#include "room.h"

#define SLOT(s) cluster_key_slot((s), sizeof(s) - 1)
#define CRC(s) cluster_crc16((s), sizeof(s) - 1)

START_TEST(test_crc16_check_value)
{
    /* CRC-16/XMODEM's check value, from the CRC catalogue */
    ck_assert_uint_eq(CRC("123456789"), 0x31C3);
    ck_assert_uint_eq(cluster_crc16("", 0), 0);
    ck_assert_uint_eq(cluster_crc16("\0", 1), 0);
    /* one byte: the byte shifted up through the polynomial; 'A' = 0x41 */
    ck_assert_uint_eq(CRC("A"), 0x58E5);
}
END_TEST

/* The slots redis-server 7.0 answered to CLUSTER KEYSLOT for these keys. */
START_TEST(test_slots_as_redis)
{
    ck_assert_uint_eq(SLOT("123456789"), 12739); /* 0x31C3 & 16383 */
    ck_assert_uint_eq(SLOT("foo"), 12182);
    ck_assert_uint_eq(SLOT("bar"), 5061);
    ck_assert_uint_eq(SLOT("hello"), 866);
    ck_assert_uint_eq(SLOT("somekey"), 11058);
    ck_assert_uint_eq(SLOT("{user1000}.following"), 3443);
    ck_assert_uint_eq(SLOT("\xff\xfe\x80"), 11813);
}
END_TEST

START_TEST(test_tag_empty)
{
    /* "{}" hashes whole: an empty tag is no tag */
    ck_assert_uint_eq(SLOT("{}"), 15257);
    ck_assert_uint_eq(SLOT("{}"), CRC("{}") & 16383);
    ck_assert_uint_eq(SLOT("{}x"), 10595);
    /* the first '}' after the first '{' decides: here it closes an empty
     * tag, and the "{bar}" after it does not count */
    ck_assert_uint_eq(SLOT("foo{}{bar}"), CRC("foo{}{bar}") & 16383);
    ck_assert_uint_ne(SLOT("foo{}{bar}"), SLOT("bar"));
}
END_TEST

START_TEST(test_tag_first_pair)
{
    ck_assert_uint_eq(SLOT("a{b}c"), SLOT("b"));
    ck_assert_uint_eq(SLOT("{a}{b}"), SLOT("a"));
    ck_assert_uint_eq(SLOT("foo{bar}{zap}"), SLOT("bar"));
    /* the tag starts after the first '{' and may hold another '{' */
    ck_assert_uint_eq(SLOT("{{a}}"), SLOT("{a"));
    ck_assert_uint_eq(SLOT("{{a}}"), 10276);
    ck_assert_uint_eq(SLOT("foo{{bar}}zap"), SLOT("{bar"));
    /* the tag alone and a key around it agree */
    ck_assert_uint_eq(SLOT("x{room-1}y"), SLOT("{room-1}"));
    ck_assert_uint_eq(SLOT("{room-1}"), SLOT("room-1"));
}
END_TEST

START_TEST(test_tag_unclosed)
{
    ck_assert_uint_eq(SLOT("}{"), 12793);
    ck_assert_uint_eq(SLOT("}{"), CRC("}{") & 16383);
    ck_assert_uint_eq(SLOT("{"), 4092);
    ck_assert_uint_eq(SLOT("}"), CRC("}") & 16383);
    ck_assert_uint_eq(SLOT("abc{def"), CRC("abc{def") & 16383);
    ck_assert_uint_eq(SLOT("abc}def{"), CRC("abc}def{") & 16383);
}
END_TEST

START_TEST(test_empty_key)
{
    ck_assert_uint_eq(cluster_key_slot("", 0), 0);
    /* the length rules, not a NUL */
    ck_assert_uint_eq(cluster_key_slot("foo", 0), 0);
    ck_assert_uint_eq(cluster_key_slot("{a}", 1), SLOT("{"));
}
END_TEST

START_TEST(test_binary_bytes)
{
    static const char tag_nul[] = "\0{\0}\xff";
    static const char nul_first[] = "a\0{x}";
    static const char high_tag[] = "k{\xff\x80}";

    /* NUL bytes are bytes: the tag is the one NUL byte, whose CRC is 0 */
    ck_assert_uint_eq(cluster_key_slot(tag_nul, sizeof(tag_nul) - 1), 0);
    ck_assert_uint_eq(cluster_key_slot(nul_first, sizeof(nul_first) - 1), SLOT("x"));
    ck_assert_uint_eq(cluster_key_slot(high_tag, sizeof(high_tag) - 1), SLOT("\xff\x80"));
    /* a NUL cut short is a shorter key */
    ck_assert_uint_eq(cluster_key_slot("ab\0cd", 2), SLOT("ab"));
    ck_assert_uint_ne(cluster_key_slot("ab\0cd", 5), SLOT("ab"));
}
END_TEST

START_TEST(test_range_random)
{
    char key[64];
    int i, j;

    srandom(17);
    for (i = 0; i < 20000; i++) {
        size_t len = (size_t)(random() % (int)sizeof(key));

        for (j = 0; j < (int)len; j++)
            key[j] = (char)(random() % 4 == 0 ? "{}"[random() % 2] : random() & 0xff);
        ck_assert_uint_lt(cluster_key_slot(key, len), CLUSTER_SLOTS);
    }
}
END_TEST

/* All of a room's keys share its hash tag (room.h), so one slot. */
START_TEST(test_room_keys_one_slot)
{
    static const enum room_key kinds[] = {ROOM_KEY_CHANNEL, ROOM_KEY_USERS, ROOM_KEY_INSTANCE,
                                          ROOM_KEY_HISTORY, ROOM_KEY_FEED};
    char err[CFG_ERR_LEN], key[ROOM_KEY_MAX];
    struct cfg cfg;
    size_t k;
    ssize_t n;
    unsigned slot;

    cfg_init(&cfg);
    ck_assert_msg(cfg_finalize(&cfg, err, sizeof(err)) == 0, "%s", err);
    slot = SLOT("lobby");
    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        n = room_key(key, sizeof(key), &cfg, "lobby", 5, kinds[k], "i-1");
        ck_assert_int_gt(n, 0);
        ck_assert_msg(cluster_key_slot(key, (size_t)n) == slot, "%s: slot %u, want %u", key,
                      cluster_key_slot(key, (size_t)n), slot);
    }
    cfg_free(&cfg);
}
END_TEST

static Suite *cluster_slot_suite(void)
{
    Suite *s = suite_create("cluster_slot");
    TCase *tc = tcase_create("crc16");

    tcase_add_test(tc, test_crc16_check_value);
    tcase_add_test(tc, test_slots_as_redis);
    suite_add_tcase(s, tc);

    tc = tcase_create("hash_tag");
    tcase_add_test(tc, test_tag_empty);
    tcase_add_test(tc, test_tag_first_pair);
    tcase_add_test(tc, test_tag_unclosed);
    tcase_add_test(tc, test_empty_key);
    tcase_add_test(tc, test_binary_bytes);
    tcase_add_test(tc, test_range_random);
    tcase_add_test(tc, test_room_keys_one_slot);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(cluster_slot_suite());
}
