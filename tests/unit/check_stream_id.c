/* check_stream_id.c -- unit tests for Redis Stream entry ids
 * (src/stream_id.c): what stream_id_parse accepts and refuses (64-bit
 * bounds, signs, spaces, missing parts, trailing and NUL bytes, reads only
 * len bytes), the order stream_id_cmp gives, and stream_id_format's output
 * and its round trip through the parser. */
#include "stream_id.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#define U64MAX_S "18446744073709551615"
#define U64OVER_S "18446744073709551616"

/* Parse s[0..len) from an exact-size heap copy (no NUL behind it). */
static int parse_exact(const char *s, size_t len, struct stream_id *id)
{
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, s, len);
    rc = stream_id_parse(copy, len, id);
    free(copy);
    return rc;
}

static void expect_ok(const char *s, uint64_t ms, uint64_t seq)
{
    struct stream_id id = {0xdead, 0xbeef};

    ck_assert_msg(parse_exact(s, strlen(s), &id) == 0, "'%s': refused", s);
    ck_assert_msg(id.ms == ms && id.seq == seq, "'%s': got %llu-%llu", s,
                  (unsigned long long)id.ms, (unsigned long long)id.seq);
}

static void expect_bad_len(const char *s, size_t len)
{
    struct stream_id id;

    ck_assert_msg(parse_exact(s, len, &id) == -1, "'%.*s' (%zu): accepted", (int)len, s, len);
}

static void expect_bad(const char *s)
{
    expect_bad_len(s, strlen(s));
}

START_TEST(test_parse_valid)
{
    expect_ok("0-0", 0, 0);
    expect_ok("0-1", 0, 1);
    expect_ok("1-0", 1, 0);
    expect_ok("1526919030474-55", 1526919030474ULL, 55);
    expect_ok("007-0009", 7, 9); /* leading zeros are still decimal */
    expect_ok(U64MAX_S "-" U64MAX_S, UINT64_MAX, UINT64_MAX);
    expect_ok(U64MAX_S "-0", UINT64_MAX, 0);
    expect_ok("0-" U64MAX_S, 0, UINT64_MAX);
    expect_ok("18446744073709551614-18446744073709551609", UINT64_MAX - 1, UINT64_MAX - 6);
    /* only len bytes count: the rest of the buffer is not read */
    {
        struct stream_id id;

        ck_assert_int_eq(stream_id_parse("12-34xyz", 5, &id), 0);
        ck_assert_uint_eq(id.ms, 12);
        ck_assert_uint_eq(id.seq, 34);
        ck_assert_int_eq(stream_id_parse("12-34-56", 5, &id), 0);
        ck_assert_uint_eq(id.seq, 34);
    }
}
END_TEST

START_TEST(test_parse_empty_parts)
{
    expect_bad("");
    expect_bad("-");
    expect_bad("-1");
    expect_bad("1-");
    expect_bad("--");
    expect_bad("1--1");
    expect_bad_len("1-1", 0);
    expect_bad_len("1-1", 1); /* "1": no '-' */
    expect_bad_len("1-1", 2); /* "1-": no seq */
    {
        struct stream_id id;

        ck_assert_int_eq(stream_id_parse(NULL, 0, &id), -1);
        ck_assert_int_eq(stream_id_parse(NULL, 3, &id), -1);
    }
}
END_TEST

START_TEST(test_parse_no_dash)
{
    expect_bad("1");
    expect_bad("1526919030474");
    expect_bad(U64MAX_S);
    expect_bad("1_2");
    expect_bad("1.2");
    expect_bad("1:2");
}
END_TEST

START_TEST(test_parse_signs_spaces)
{
    expect_bad("+1-2");
    expect_bad("1-+2");
    expect_bad("-1-2");
    expect_bad("1--2");
    expect_bad(" 1-2");
    expect_bad("1 -2");
    expect_bad("1- 2");
    expect_bad("1-2 ");
    expect_bad("1-2\n");
    expect_bad("\t1-2");
    expect_bad("0x1-2");
    expect_bad("1-0x2");
    expect_bad("1e3-2");
    expect_bad("*");
    expect_bad("1-*"); /* XADD's auto id is not an id */
    expect_bad("$");
    expect_bad("a-b");
    /* bytes around the digits: '/' and ':' are just outside '0'..'9' */
    expect_bad("/-0");
    expect_bad(":-0");
    expect_bad("0-/");
    expect_bad("0-:");
    expect_bad("\xb1-0"); /* '1' | 0x80 */
}
END_TEST

START_TEST(test_parse_overflow)
{
    expect_bad(U64OVER_S "-0");
    expect_bad("0-" U64OVER_S);
    expect_bad(U64OVER_S "-" U64OVER_S);
    expect_bad("18446744073709551620-0"); /* last digit overflows by more */
    expect_bad("18446744073709551700-0"); /* earlier digit overflows */
    expect_bad("99999999999999999999-0");
    expect_bad("0-99999999999999999999");
    expect_bad("184467440737095516150-0"); /* 21 digits */
    expect_bad("0-184467440737095516150");
    /* leading zeros do not count against the bound */
    expect_ok("000" U64MAX_S "-000" U64MAX_S, UINT64_MAX, UINT64_MAX);
}
END_TEST

START_TEST(test_parse_trailing_and_nul)
{
    expect_bad("1-2-3");
    expect_bad("1-2x");
    expect_bad("1-2-");
    /* an embedded NUL anywhere inside len */
    expect_bad_len("1-2\0", 4);
    expect_bad_len("1-2\0" "3", 5);
    expect_bad_len("1\0-2", 4);
    expect_bad_len("\0" "1-2", 4);
    expect_bad_len("1-\0" "2", 4);
    expect_bad_len("\0", 1);
    expect_bad_len("1-\0", 3);
}
END_TEST

static struct stream_id sid(uint64_t ms, uint64_t seq)
{
    struct stream_id id = {ms, seq};

    return id;
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

START_TEST(test_cmp)
{
    /* in order: each one is after every one before it */
    const struct stream_id ids[] = {
        sid(0, 0),          sid(0, 1),          sid(0, UINT64_MAX), sid(1, 0),
        sid(1, 5),          sid(2, 0),          sid(UINT64_MAX - 1, UINT64_MAX),
        sid(UINT64_MAX, 0), sid(UINT64_MAX, UINT64_MAX - 1), sid(UINT64_MAX, UINT64_MAX),
    };
    size_t n = sizeof(ids) / sizeof(ids[0]);

    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int want = i < j ? -1 : i > j ? 1 : 0;
            int got = stream_id_cmp(&ids[i], &ids[j]);

            ck_assert_msg(sign(got) == want, "%zu vs %zu: %d, want sign %d", i, j, got, want);
        }
    /* not a subtraction that wraps: far apart both ways */
    {
        struct stream_id a = sid(0, 0), b = sid(UINT64_MAX, 0), c = sid(0, UINT64_MAX);

        ck_assert_int_lt(stream_id_cmp(&a, &b), 0);
        ck_assert_int_gt(stream_id_cmp(&b, &a), 0);
        ck_assert_int_lt(stream_id_cmp(&a, &c), 0);
        ck_assert_int_gt(stream_id_cmp(&c, &a), 0);
        /* ms decides before seq */
        a = sid(1, UINT64_MAX);
        b = sid(2, 0);
        ck_assert_int_lt(stream_id_cmp(&a, &b), 0);
        ck_assert_int_gt(stream_id_cmp(&b, &a), 0);
    }
}
END_TEST

START_TEST(test_format)
{
    char out[STREAM_ID_MAX + 1];
    struct stream_id id;

    ck_assert_int_eq(STREAM_ID_MAX, (int)strlen(U64MAX_S "-" U64MAX_S) + 1);
    id = sid(0, 0);
    ck_assert_uint_eq(stream_id_format(&id, out), 3);
    ck_assert_str_eq(out, "0-0");
    id = sid(1526919030474ULL, 55);
    ck_assert_uint_eq(stream_id_format(&id, out), strlen("1526919030474-55"));
    ck_assert_str_eq(out, "1526919030474-55");
    /* the longest fits exactly: STREAM_ID_MAX bytes with the NUL, none beyond */
    memset(out, 0xA5, sizeof(out));
    id = sid(UINT64_MAX, UINT64_MAX);
    ck_assert_uint_eq(stream_id_format(&id, out), STREAM_ID_MAX - 1);
    ck_assert_str_eq(out, U64MAX_S "-" U64MAX_S);
    ck_assert_int_eq((unsigned char)out[STREAM_ID_MAX], 0xA5);
}
END_TEST

START_TEST(test_format_round_trip)
{
    const struct stream_id ids[] = {
        sid(0, 0), sid(0, 1), sid(1, 0), sid(9, 10), sid(1526919030474ULL, 55),
        sid(UINT64_MAX, 0), sid(0, UINT64_MAX), sid(UINT64_MAX, UINT64_MAX),
        sid(10000000000000000000ULL, 9999999999999999999ULL),
    };

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char out[STREAM_ID_MAX];
        struct stream_id back;
        size_t n = stream_id_format(&ids[i], out);

        ck_assert_uint_eq(n, strlen(out));
        ck_assert_int_eq(parse_exact(out, n, &back), 0);
        ck_assert_int_eq(stream_id_cmp(&back, &ids[i]), 0);
        ck_assert(back.ms == ids[i].ms && back.seq == ids[i].seq);
    }
    /* text -> id -> the same text (no leading zeros) */
    {
        static const char *const texts[] = {"0-0", "5-7", "1526919030474-55",
                                            U64MAX_S "-" U64MAX_S};

        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
            char out[STREAM_ID_MAX];
            struct stream_id id;

            ck_assert_int_eq(parse_exact(texts[i], strlen(texts[i]), &id), 0);
            ck_assert_uint_eq(stream_id_format(&id, out), strlen(texts[i]));
            ck_assert_str_eq(out, texts[i]);
        }
    }
}
END_TEST

static Suite *stream_id_suite(void)
{
    Suite *s = suite_create("stream_id");
    TCase *tc = tcase_create("parse");

    tcase_add_test(tc, test_parse_valid);
    tcase_add_test(tc, test_parse_empty_parts);
    tcase_add_test(tc, test_parse_no_dash);
    tcase_add_test(tc, test_parse_signs_spaces);
    tcase_add_test(tc, test_parse_overflow);
    tcase_add_test(tc, test_parse_trailing_and_nul);
    suite_add_tcase(s, tc);

    tc = tcase_create("cmp_format");
    tcase_add_test(tc, test_cmp);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_format_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(stream_id_suite());
}
