/* check_codec.c -- unit tests for the shared decoders: src/utf8.c and
 * src/base64.c.
 *
 * Each decoder is compared against a slow oracle written here from the
 * definition (UTF-8 by its bit patterns and the scalar-value rules, base64
 * by the RFC 4648 alphabets), exhaustively where the input space allows,
 * plus the named edge cases: overlongs, surrogates, code points above
 * U+10FFFF, truncations, padding, the URL alphabet and canonical trailing
 * bits.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "check_run.h"
#include "utf8.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define LIT(s) (const unsigned char *)(s), sizeof(s) - 1

/* ---- utf8 ------------------------------------------------------------------ */

/* The oracle: the length a lead byte announces by its bit pattern (0 for a
 * continuation or an invalid lead), then the value, then the rules on the
 * value (shortest form, no surrogates, at most U+10FFFF). */
static size_t oracle_utf8(const unsigned char *s, size_t len, uint32_t *cp)
{
    /* lead byte mask and pattern, and the smallest value, by length */
    static const struct {
        unsigned char mask, lead;
        uint32_t min;
    } form[] = {{0x80, 0x00, 0}, {0xe0, 0xc0, 0x80}, {0xf0, 0xe0, 0x800}, {0xf8, 0xf0, 0x10000}};
    size_t n = 0;
    uint32_t v, min;

    if (len == 0)
        return 0;
    while (n < NELEM(form) && (s[0] & form[n].mask) != form[n].lead)
        n++;
    if (n == NELEM(form))
        return 0;
    v = s[0] & (uint32_t)~form[n].mask & 0xff;
    min = form[n].min;
    n++;
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* utf8_decode and the oracle agree on s[0..len); a failure leaves *cp alone.
 * (A plain if: check's assertions cost a system call each, and the loops
 * below make millions.) */
static void check_utf8_agrees(const unsigned char *s, size_t len)
{
    uint32_t got = 0xdeadbeef, want = 0xdeadbeef;
    size_t n = utf8_decode(s, len, &got), m = oracle_utf8(s, len, &want);

    if (n != m || got != want)
        ck_abort_msg("%02x %02x %02x %02x (len %zu): %zu U+%04X, want %zu U+%04X",
                     len > 0 ? s[0] : 0, len > 1 ? s[1] : 0, len > 2 ? s[2] : 0, len > 3 ? s[3] : 0,
                     len, n, (unsigned)got, m, (unsigned)want);
}

/* Encode cp (a scalar value) the textbook way; returns the length. */
static size_t encode_utf8(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

START_TEST(test_utf8_every_scalar)
{
    unsigned char b[UTF8_SEQ_MAX];
    uint32_t cp;

    for (uint32_t v = 0; v <= 0x10ffff; v++) {
        size_t n;

        if (v == 0xd800)
            v = 0xe000;
        n = encode_utf8(v, b);
        if (utf8_decode(b, n, &cp) != n || cp != v)
            ck_abort_msg("U+%04X: U+%04X", (unsigned)v, (unsigned)cp);
        /* cut short by one byte: never a shorter character */
        if (n > 1 && utf8_decode(b, n - 1, &cp) != 0)
            ck_abort_msg("U+%04X cut short decodes", (unsigned)v);
    }
}
END_TEST

START_TEST(test_utf8_exhaustive_short)
{
    static const unsigned char tails[] = {0x00, 0x3f, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
                                          0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xf4, 0xf5, 0xff};
    unsigned char s[4];

    /* every 1- and 2-byte input, every 3-byte input that starts 0xe0..0xef */
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        check_utf8_agrees(s, 1);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            check_utf8_agrees(s, 2);
            for (unsigned c = 0; c < 256 && a >= 0xe0 && a <= 0xef; c++) {
                s[2] = (unsigned char)c;
                check_utf8_agrees(s, 3);
            }
        }
    }
    /* 4-byte leads (and the never-valid 0xf5..0xff) with every second byte
     * and the boundary values of the continuation range after it */
    for (unsigned a = 0xf0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            for (size_t c = 0; c < NELEM(tails); c++) {
                for (size_t d = 0; d < NELEM(tails); d++) {
                    s[0] = (unsigned char)a;
                    s[1] = (unsigned char)b;
                    s[2] = tails[c];
                    s[3] = tails[d];
                    check_utf8_agrees(s, 4);
                }
            }
        }
    }
}
END_TEST

START_TEST(test_utf8_named_cases)
{
    static const struct {
        const char *s;
        size_t len, want;
        uint32_t cp;
    } cases[] = {
        /* the extremes of each length */
        {"\x00", 1, 1, 0x0},
        {"\x7f", 1, 1, 0x7f},
        {"\xc2\x80", 2, 2, 0x80},
        {"\xdf\xbf", 2, 2, 0x7ff},
        {"\xe0\xa0\x80", 3, 3, 0x800},
        {"\xef\xbf\xbf", 3, 3, 0xffff},
        {"\xf0\x90\x80\x80", 4, 4, 0x10000},
        {"\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff},
        /* around the surrogates */
        {"\xed\x9f\xbf", 3, 3, 0xd7ff},
        {"\xee\x80\x80", 3, 3, 0xe000},
        {"\xed\xa0\x80", 3, 0, 0},
        {"\xed\xb2\x80", 3, 0, 0},
        {"\xed\xbf\xbf", 3, 0, 0},
        /* overlongs: '/' in two, three and four bytes, and the largest ones */
        {"\xc0\xaf", 2, 0, 0},
        {"\xc1\xbf", 2, 0, 0},
        {"\xe0\x80\xaf", 3, 0, 0},
        {"\xe0\x9f\xbf", 3, 0, 0},
        {"\xf0\x80\x80\xaf", 4, 0, 0},
        {"\xf0\x8f\xbf\xbf", 4, 0, 0},
        /* above U+10FFFF, and leads that never occur */
        {"\xf4\x90\x80\x80", 4, 0, 0},
        {"\xf5\x80\x80\x80", 4, 0, 0},
        {"\xf7\xbf\xbf\xbf", 4, 0, 0},
        {"\xf8\x88\x80\x80\x80", 5, 0, 0},
        {"\xfc\x84\x80\x80\x80\x80", 6, 0, 0},
        {"\xfe", 1, 0, 0},
        {"\xff", 1, 0, 0},
        /* stray continuations, a bad continuation, truncations */
        {"\x80", 1, 0, 0},
        {"\xbf\x80", 2, 0, 0},
        {"\xc3\x28", 2, 0, 0},
        {"\xe2\x82\x28", 3, 0, 0},
        {"\xf0\x9f\x98\x28", 4, 0, 0},
        {"\xc3", 1, 0, 0},
        {"\xe2\x82", 2, 0, 0},
        {"\xf0\x9f\x98", 3, 0, 0},
        /* only the first character counts */
        {"a\xff", 2, 1, 'a'},
        {"\xc3\xa9\xff", 3, 2, 0xe9},
        {"\xf0\x9f\x98\x80\x80", 5, 4, 0x1f600},
    };

    for (size_t i = 0; i < NELEM(cases); i++) {
        uint32_t cp = 0xdeadbeef;
        size_t n = utf8_decode((const unsigned char *)cases[i].s, cases[i].len, &cp);

        ck_assert_msg(n == cases[i].want, "case %zu: length %zu, want %zu", i, n, cases[i].want);
        ck_assert_msg(cp == (n > 0 ? cases[i].cp : 0xdeadbeef), "case %zu: U+%04X", i,
                      (unsigned)cp);
    }
    /* an empty input, even a NULL one, holds no character */
    ck_assert_uint_eq(utf8_decode(NULL, 0, NULL), 0);
    ck_assert_uint_eq(utf8_decode(LIT(""), NULL), 0);
}
END_TEST

/* ---- base64 ---------------------------------------------------------------- */

static const char abc_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char abc_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64_decode of the text s into a buffer of exactly cap bytes (heap, so
 * ASan and valgrind see a write past it); the decoded bytes go to out. */
static ssize_t decode(enum base64_alphabet a, const char *s, size_t cap, unsigned char *out)
{
    unsigned char *buf = malloc(cap ? cap : 1);
    ssize_t n;

    ck_assert_ptr_nonnull(buf);
    n = base64_decode(a, s, strlen(s), buf, cap);
    if (n > 0)
        memcpy(out, buf, (size_t)n);
    free(buf);
    return n;
}

START_TEST(test_base64_rfc4648_vectors)
{
    /* RFC 4648 section 10, then the URL alphabet's two characters */
    static const char *const vec[][3] = {
        {"", "", ""},
        {"f", "Zg==", "Zg"},
        {"fo", "Zm8=", "Zm8"},
        {"foo", "Zm9v", "Zm9v"},
        {"foob", "Zm9vYg==", "Zm9vYg"},
        {"fooba", "Zm9vYmE=", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
        {"\xfb\xff\xbf", "+/+/", "-_-_"},
        {"\xfb\xff", "+/8=", "-_8"},
        {"\x03\xe0", "A+A=", "A-A"},
    };
    char enc[64];
    unsigned char dec[64];

    for (size_t i = 0; i < NELEM(vec); i++) {
        size_t n = strlen(vec[i][0]);

        ck_assert_uint_eq(base64_encode(BASE64_STD, vec[i][0], n, enc), strlen(vec[i][1]));
        ck_assert_str_eq(enc, vec[i][1]);
        ck_assert_uint_eq(base64_encode(BASE64_URL, vec[i][0], n, enc), strlen(vec[i][2]));
        ck_assert_str_eq(enc, vec[i][2]);
        ck_assert_int_eq(decode(BASE64_STD, vec[i][1], n, dec), (ssize_t)n);
        ck_assert(memcmp(dec, vec[i][0], n) == 0);
        ck_assert_int_eq(decode(BASE64_URL, vec[i][2], n, dec), (ssize_t)n);
        ck_assert(memcmp(dec, vec[i][0], n) == 0);
        /* each alphabet refuses the other's form where they differ */
        if (strcmp(vec[i][1], vec[i][2]) != 0) {
            ck_assert_int_eq(decode(BASE64_STD, vec[i][2], 64, dec), -1);
            ck_assert_int_eq(decode(BASE64_URL, vec[i][1], 64, dec), -1);
        }
    }
}
END_TEST

START_TEST(test_base64_digit)
{
    for (unsigned c = 0; c < 256; c++) {
        const char *s = c != 0 ? strchr(abc_std, (int)c) : NULL;
        const char *u = c != 0 ? strchr(abc_url, (int)c) : NULL;

        ck_assert_int_eq(base64_digit(BASE64_STD, (unsigned char)c), s ? s - abc_std : -1);
        ck_assert_int_eq(base64_digit(BASE64_URL, (unsigned char)c), u ? u - abc_url : -1);
    }
}
END_TEST

START_TEST(test_base64_round_trip)
{
    static unsigned char src[200], dec[200];
    static char enc[BASE64_ENCODED_LEN(200) + 1];
    uint32_t x = 2463534242u; /* xorshift32: the same bytes every run */

    for (size_t i = 0; i < sizeof(src); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        src[i] = (unsigned char)x;
    }
    for (size_t n = 0; n <= sizeof(src); n++) {
        size_t m = base64_encode(BASE64_STD, src, n, enc);

        ck_assert_uint_eq(m, BASE64_ENCODED_LEN(n));
        ck_assert_uint_eq(strlen(enc), m);
        ck_assert_int_eq(decode(BASE64_STD, enc, n, dec), (ssize_t)n);
        ck_assert(memcmp(dec, src, n) == 0);
        /* one byte less room: refused, nothing written past it */
        if (n > 0)
            ck_assert_int_eq(decode(BASE64_STD, enc, n - 1, dec), -1);

        m = base64_encode(BASE64_URL, src, n, enc);
        ck_assert_uint_eq(m, (n * 4 + 2) / 3);
        ck_assert_ptr_null(strchr(enc, '='));
        ck_assert_int_eq(decode(BASE64_URL, enc, n, dec), (ssize_t)n);
        ck_assert(memcmp(dec, src, n) == 0);
        if (n > 0)
            ck_assert_int_eq(decode(BASE64_URL, enc, n - 1, dec), -1);
    }
}
END_TEST

/* Past BASE64_ENCODE_CHUNK (3 MiB): OpenSSL is called more than once. */
START_TEST(test_base64_large)
{
    size_t n = (3u << 20) + 2;
    unsigned char *src = malloc(n), *dec = malloc(n);
    char *enc = malloc(BASE64_ENCODED_LEN(n) + 1);

    ck_assert(src != NULL && dec != NULL && enc != NULL);
    for (size_t i = 0; i < n; i++)
        src[i] = (unsigned char)(i * 7 + (i >> 9));
    ck_assert_uint_eq(base64_encode(BASE64_STD, src, n, enc), BASE64_ENCODED_LEN(n));
    ck_assert_int_eq(base64_decode(BASE64_STD, enc, strlen(enc), dec, n), (ssize_t)n);
    ck_assert(memcmp(src, dec, n) == 0);
    ck_assert_uint_eq(base64_encode(BASE64_URL, src, n, enc), (n * 4 + 2) / 3);
    ck_assert_int_eq(base64_decode(BASE64_URL, enc, strlen(enc), dec, n), (ssize_t)n);
    ck_assert(memcmp(src, dec, n) == 0);
    free(src);
    free(dec);
    free(enc);
}
END_TEST

START_TEST(test_base64_padding)
{
    static const char *const bad_std[] = {
        "Zg", "Zg=", "Zg===", "Zm8", "Zm9vY", "Zm9vYg=", "Z===", "====", "=", "==",
        "Zg==Zg==", "Zm=v", "=m9v", "Zm9v====", "Zg=A", "Z=g=",
    };
    static const char *const bad_url[] = {"Zg==", "Zg=", "Zm8=", "Z", "Zm9vY", "=", "Zm9v="};
    unsigned char dec[16];

    for (size_t i = 0; i < NELEM(bad_std); i++)
        ck_assert_msg(decode(BASE64_STD, bad_std[i], sizeof(dec), dec) == -1, "%s", bad_std[i]);
    for (size_t i = 0; i < NELEM(bad_url); i++)
        ck_assert_msg(decode(BASE64_URL, bad_url[i], sizeof(dec), dec) == -1, "%s", bad_url[i]);
    ck_assert_int_eq(decode(BASE64_STD, "", 0, dec), 0);
    ck_assert_int_eq(decode(BASE64_URL, "", 0, dec), 0);
}
END_TEST

/* Only the canonical encoding decodes: the unused low bits of the last
 * character are zero (4 of them after a 2-character tail, 2 after 3). */
START_TEST(test_base64_trailing_bits)
{
    char s[8];
    unsigned char dec[8];

    for (int a = 0; a < 2; a++) {
        enum base64_alphabet alpha = a == 0 ? BASE64_STD : BASE64_URL;
        const char *abc = a == 0 ? abc_std : abc_url;
        const char *pad2 = a == 0 ? "==" : "", *pad1 = a == 0 ? "=" : "";

        for (int v = 0; v < 64; v++) {
            snprintf(s, sizeof(s), "Z%c%s", abc[v], pad2);
            ck_assert_msg((decode(alpha, s, sizeof(dec), dec) == 1) == ((v & 0x0f) == 0), "%s", s);
            snprintf(s, sizeof(s), "Zm%c%s", abc[v], pad1);
            ck_assert_msg((decode(alpha, s, sizeof(dec), dec) == 2) == ((v & 0x03) == 0), "%s", s);
        }
    }
}
END_TEST

START_TEST(test_base64_outside_alphabet)
{
    static const char bad[] = " \t\r\n.,*~!$\"\\\x7f\x80\xc3\xff";
    unsigned char dec[16];
    char s[16];

    for (size_t i = 0; i < sizeof(bad) - 1; i++) {
        for (size_t pos = 0; pos < 8; pos++) {
            memcpy(s, "Zm9vYmFy", 9);
            s[pos] = bad[i];
            ck_assert_msg(decode(BASE64_STD, s, sizeof(dec), dec) == -1, "%d at %zu", bad[i], pos);
            ck_assert_msg(decode(BASE64_URL, s, sizeof(dec), dec) == -1, "%d at %zu", bad[i], pos);
        }
    }
    /* a NUL inside (len counts it) */
    ck_assert_int_eq(base64_decode(BASE64_STD, "Zm9v\0mFy", 8, dec, sizeof(dec)), -1);
    ck_assert_int_eq(base64_decode(BASE64_URL, "Zm\0v", 4, dec, sizeof(dec)), -1);
}
END_TEST

static TCase *add_tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);

    suite_add_tcase(s, tc);
    return tc;
}

static Suite *codec_suite(void)
{
    Suite *s = suite_create("codec");
    TCase *tc;

    tc = add_tcase(s, "utf8");
    tcase_add_test(tc, test_utf8_every_scalar);
    tcase_add_test(tc, test_utf8_exhaustive_short);
    tcase_add_test(tc, test_utf8_named_cases);
    tc = add_tcase(s, "base64");
    tcase_add_test(tc, test_base64_rfc4648_vectors);
    tcase_add_test(tc, test_base64_digit);
    tcase_add_test(tc, test_base64_round_trip);
    tcase_add_test(tc, test_base64_large);
    tcase_add_test(tc, test_base64_padding);
    tcase_add_test(tc, test_base64_trailing_bits);
    tcase_add_test(tc, test_base64_outside_alphabet);
    return s;
}

int main(void)
{
    return check_run(codec_suite());
}
