/* check_jwt.c -- unit tests for worker/jwt.c.
 *
 * Tokens are built here from JSON text with a test-side base64url encoder and
 * OpenSSL's HMAC, and one fixed token made with the openssl CLI checks both
 * against an independent implementation. Every token is verified from an
 * exact-size heap copy, so ASan or valgrind catch any read past its end.
 */
#include "jwt.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "check_run.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define TOK_CAP (4 * JWT_TOKEN_MAX) /* room for oversize tokens */

#define KEY "0123456789abcdef0123456789abcdef"
#define NOW 1700000000LL
#define HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define PAYLOAD_FOO "{\"sub\":\"foo\",\"exp\":1700003600}"

/* Made once with the openssl CLI (see the README):
 *   b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
 *   h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
 *   p=$(printf '{"sub":"alice","exp":2000000000}' | b64url)
 *   s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$CLI_KEY" -binary | b64url) */
#define CLI_KEY "redis-chat-example-secret-0123456789"
#define CLI_SUB "alice"
#define CLI_EXP 2000000000LL
static const char cli_token[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                                "eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMH0."
                                "U2X-uLIdYOE9Gp_S1y4L-tKiLCpjNp7AgBfDTMbDzAk";

/* base64url of src[0..n) without padding into out (NUL-terminated), six bits
 * at a time (unlike the decoder's groups of four); returns the length. */
static size_t b64url(const void *src, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *s = src;
    unsigned long acc = 0; /* only the low `bits` bits matter */
    size_t o = 0;
    int bits = 0;

    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | s[i];
        for (bits += 8; bits >= 6; bits -= 6)
            out[o++] = abc[acc >> (bits - 6) & 63];
    }
    if (bits > 0)
        out[o++] = abc[acc << (6 - bits) & 63];
    out[o] = '\0';
    return o;
}

/* out = a b c (NUL-terminated, asserted to fit in cap); returns the length. */
static size_t join(char *out, size_t cap, const char *a, const char *b, const char *c)
{
    size_t na = strlen(a), nb = strlen(b), nc = strlen(c);

    ck_assert_uint_lt(na + nb + nc, cap);
    memcpy(out, a, na);
    memcpy(out + na, b, nb);
    memcpy(out + na + nb, c, nc + 1);
    return na + nb + nc;
}

/* "h64.p64.sig" signed with key[0..keylen) into out[TOK_CAP]; returns its length. */
static size_t sign_segments(char *out, const char *h64, const char *p64, const void *key,
                            size_t keylen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = snprintf(out, TOK_CAP, "%s.%s", h64, p64);

    ck_assert(n > 0 && n < TOK_CAP - 100);
    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), keylen ? key : "", (int)keylen,
                               (const unsigned char *)out, (size_t)n, md, &mdlen));
    out[n] = '.';
    return (size_t)n + 1 + b64url(md, mdlen, out + n + 1);
}

/* Encode header and payload[0..plen) as JSON segments and sign them with key. */
static size_t make_token_n(char *out, const char *header, const char *payload, size_t plen,
                           const char *key)
{
    static char h64[TOK_CAP], p64[TOK_CAP];

    b64url(header, strlen(header), h64);
    b64url(payload, plen, p64);
    return sign_segments(out, h64, p64, key, strlen(key));
}

static size_t make_token(char *out, const char *header, const char *payload, const char *key)
{
    return make_token_n(out, header, payload, strlen(payload), key);
}

/* Verify an exact-size heap copy of tok[0..len). */
static enum jwt_result verify_full(const char *tok, size_t len, const void *key, size_t keylen,
                                   const char *user, long long now, long leeway)
{
    char *copy = malloc(len ? len : 1);
    enum jwt_result r;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, tok, len);
    r = jwt_verify_hs256(copy, len, key, keylen, user, strlen(user), now, leeway);
    free(copy);
    return r;
}

static enum jwt_result verify(const char *tok, size_t len, const char *user, long long now,
                              long leeway)
{
    return verify_full(tok, len, KEY, strlen(KEY), user, now, leeway);
}

/* Sign header+payload with KEY and verify for user at NOW, leeway 0. */
static enum jwt_result check_token(const char *header, const char *payload, const char *user)
{
    static char tok[TOK_CAP];
    size_t n = make_token(tok, header, payload, KEY);

    return verify(tok, n, user, NOW, 0);
}

static enum jwt_result check_payload(const char *payload)
{
    return check_token(HDR, payload, "foo");
}

#define ck_payload(payload, want) ck_assert_int_eq(check_payload(payload), want)
#define ck_token(header, payload, user, want)                                                      \
    ck_assert_int_eq(check_token(header, payload, user), want)

/* Each payload pre + v[i] + post is malformed. */
static void check_each_malformed(const char *pre, const char *const *v, size_t n, const char *post)
{
    char payload[512];

    for (size_t i = 0; i < n; i++) {
        join(payload, sizeof(payload), pre, v[i], post);
        ck_assert_msg(check_payload(payload) == JWT_MALFORMED, "%s", payload);
    }
}

/* ---- valid ------------------------------------------------------------ */

START_TEST(test_valid_basic)
{
    char tok[TOK_CAP];
    size_t n = make_token(tok, HDR, PAYLOAD_FOO, KEY);

    ck_assert_int_eq(jwt_looks_like(tok, n), 1);
    ck_assert_int_eq(verify(tok, n, "foo", NOW, 0), JWT_OK);
    ck_assert_int_eq(verify(tok, n, "foo", NOW, 30), JWT_OK);
    ck_assert_int_eq(verify(tok, n, "foo", 1700003599LL, 0), JWT_OK);
    ck_token("{\"alg\":\"HS256\"}", PAYLOAD_FOO, "foo", JWT_OK);
    ck_token(" {\"typ\" : \"JWT\",\n\"kid\":\"k1\", \"alg\":\"HS256\"}\r\n", PAYLOAD_FOO, "foo",
             JWT_OK);
    ck_payload("\t{ \"exp\" : 2e9 , \"sub\" : \"foo\" , \"iat\": 1, \"nbf\": 1 } \n", JWT_OK);
}
END_TEST

static enum jwt_result verify_cli(const char *key, const char *user, long long now)
{
    return verify_full(cli_token, strlen(cli_token), key, strlen(key), user, now, 0);
}

START_TEST(test_valid_openssl_cli)
{
    ck_assert_int_eq(verify_cli(CLI_KEY, CLI_SUB, CLI_EXP - 1), JWT_OK);
    ck_assert_int_eq(verify_cli(CLI_KEY, CLI_SUB, CLI_EXP), JWT_EXPIRED);
    ck_assert_int_eq(verify_cli(CLI_KEY, "bob", CLI_EXP - 1), JWT_SUBJECT_MISMATCH);
    ck_assert_int_eq(verify_cli(KEY, CLI_SUB, CLI_EXP - 1), JWT_BAD_SIGNATURE);

    /* our encoder and HMAC produce the very same bytes */
    char tok[TOK_CAP];
    size_t n = make_token(tok, HDR, "{\"sub\":\"alice\",\"exp\":2000000000}", CLI_KEY);

    ck_assert_uint_eq(n, strlen(cli_token));
    ck_assert_str_eq(tok, cli_token);
}
END_TEST

/* {"sub":"foo","exp":<exp>[,"nbf":<nbf>]} verified at now with a leeway */
static const struct {
    const char *exp, *nbf;
    long long now;
    long leeway;
    enum jwt_result want;
} time_cases[] = {
    /* exp: expired from now >= exp + leeway; a negative leeway counts as 0 */
    {"1700000001", NULL, NOW, 0, JWT_OK},
    {"1700000000", NULL, NOW, 0, JWT_EXPIRED},
    {"1699999999", NULL, NOW, 0, JWT_EXPIRED},
    {"1699999990", NULL, NOW, 10, JWT_EXPIRED},
    {"1699999990", NULL, NOW, 11, JWT_OK},
    {"1699999990", NULL, NOW, 30, JWT_OK},
    {"1699999990", NULL, NOW, -30, JWT_EXPIRED},
    {"0", NULL, NOW, 0, JWT_EXPIRED},
    {"-1700003600", NULL, NOW, 0, JWT_EXPIRED},
    /* nbf: early while now < nbf - leeway */
    {"2e9", "1700000000", NOW, 0, JWT_OK},
    {"2e9", "1700000001", NOW, 0, JWT_NOT_YET_VALID},
    {"2e9", "1700000030", NOW, 29, JWT_NOT_YET_VALID},
    {"2e9", "1700000030", NOW, 30, JWT_OK},
    {"2e9", "1700000030", NOW, -5, JWT_NOT_YET_VALID},
    {"2e9", "-0.5", NOW, 0, JWT_OK},
    /* fractions and exponents: the integer part counts */
    {"1700000000.999", NULL, NOW, 0, JWT_EXPIRED},
    {"17000000005e-1", NULL, NOW, 0, JWT_EXPIRED},
    {"17000000015E-1", NULL, NOW, 0, JWT_OK},
    {"1.7e9", NULL, NOW, 0, JWT_EXPIRED},
    {"1.7000036E+9", NULL, NOW, 0, JWT_OK},
    {"0.00000000017000036e19", NULL, NOW, 0, JWT_OK},
    /* out of long long's range: saturated, no overflow even with a leeway */
    {"1e300", "-1e300", NOW, 30, JWT_OK},
    {"1e300", "-1e300", LLONG_MAX, 0, JWT_EXPIRED},
    {"99999999999999999999999", "-99999999999999999999", LLONG_MIN, LONG_MAX, JWT_OK},
    {"9223372036854775807", NULL, LLONG_MAX - 1, 0, JWT_OK},
    {"1e-99999999999999999999", NULL, NOW, 0, JWT_EXPIRED},
    {"2e9", "1e300", NOW, 0, JWT_NOT_YET_VALID},
    /* out of a double's range: jansson refuses the number */
    {"1e400", NULL, NOW, 0, JWT_MALFORMED},
    {"2e9", "-1e400", NOW, 0, JWT_MALFORMED},
    {"2e9", "1e99999999999999", NOW, 0, JWT_MALFORMED},
};

START_TEST(test_valid_time_edges)
{
    char payload[256], tok[TOK_CAP];

    for (size_t i = 0; i < NELEM(time_cases); i++) {
        const char *nbf = time_cases[i].nbf;
        size_t n;

        snprintf(payload, sizeof(payload), "{\"sub\":\"foo\",\"exp\":%s%s%s}", time_cases[i].exp,
                 nbf != NULL ? ",\"nbf\":" : "", nbf != NULL ? nbf : "");
        n = make_token(tok, HDR, payload, KEY);
        ck_assert_msg(verify(tok, n, "foo", time_cases[i].now, time_cases[i].leeway) ==
                          time_cases[i].want,
                      "%s at %lld leeway %ld", payload, time_cases[i].now, time_cases[i].leeway);
    }
}
END_TEST

/* {"sub":"<sub>","exp":2e9} for user */
static enum jwt_result check_sub(const char *sub, const char *user)
{
    char payload[256];

    join(payload, sizeof(payload), "{\"sub\":\"", sub, "\",\"exp\":2e9}");
    return check_token(HDR, payload, user);
}

START_TEST(test_valid_sub_escapes)
{
    /* JSON text of sub, then the UTF-8 it decodes to */
    static const char *const ok[][2] = {
        {"\\u00e9t\\u00C9 \\u20ac \\ud83d\\ude00 \\\"q\\\\\\/\\b\\f\\n\\r\\t",
         "\xc3\xa9t\xc3\x89 \xe2\x82\xac \xf0\x9f\x98\x80 \"q\\/\b\f\n\r\t"},
        {"\\ud83d\\ude00", "\xf0\x9f\x98\x80"},
        {"\\uDBFF\\uDFFF", "\xf4\x8f\xbf\xbf"},
        {"\\u0066o\\u006F", "foo"},
        {"j\xc3\xbcrgen\xf0\x9f\x98\x80", "j\xc3\xbcrgen\xf0\x9f\x98\x80"}, /* raw UTF-8 */
        /* the extremes of each length, raw and escaped */
        {"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
         "\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"},
        {"\\u0080\\u07FF\\u0800\\uffff\\ud800\\udc00",
         "\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80"}};

    for (size_t i = 0; i < NELEM(ok); i++)
        ck_assert_msg(check_sub(ok[i][0], ok[i][1]) == JWT_OK, "%s", ok[i][0]);
    /* member names are compared decoded */
    ck_payload("{\"\\u0073ub\":\"foo\",\"e\\u0078p\":1700003600}", JWT_OK);
    /* the same text, a different decoding: no match */
    ck_assert_int_eq(check_sub("\\u00e9", "\xe9"), JWT_SUBJECT_MISMATCH);
    ck_assert_int_eq(check_sub("\\u00e9", "\\u00e9"), JWT_SUBJECT_MISMATCH);
    ck_assert_int_eq(check_sub("\\u0000", ""), JWT_SUBJECT_MISMATCH);
}
END_TEST

START_TEST(test_valid_nested_ignored)
{
    ck_assert_int_eq(check_payload("{\"x\":{\"a\":[1,2,{\"b\":null}],\"c\":{}},\"sub\":\"foo\","
                                   "\"arr\":[[],[[]],{\"k\":[true,false,null,\"s\",-1.5e3]}],"
                                   "\"exp\":1700003600,\"o\":{\"sub\":\"bar\",\"exp\":1},"
                                   "\"e\":[ ] ,\"f\":{ } ,\"g\":[ 1 , { \"h\" : [ ] } ]}"),
                     JWT_OK);
    ck_token("{\"alg\":\"HS256\",\"jwk\":{\"kty\":\"oct\",\"x\":[1,[2]]}}", PAYLOAD_FOO, "foo",
             JWT_OK);
    /* a nested "sub" or "exp" is not the claim */
    ck_payload("{\"o\":{\"sub\":\"foo\"},\"exp\":1700003600}", JWT_NO_SUBJECT);
    ck_payload("{\"sub\":\"foo\",\"o\":[{\"exp\":1700003600}]}", JWT_NO_EXPIRY);
}
END_TEST

/* A "-" and a "_" in the encoding decode like any other character. */
START_TEST(test_valid_key_and_alphabet)
{
    char tok[TOK_CAP];
    static const char payload[] = "{\"sub\":\"foo\",\"exp\":1700003600,\"p\":\"?>?>?>~~~\"}";
    static const char bin_key[] = "k\0e\0y-with-nul-bytes-\xff\xfe";
    size_t n = make_token(tok, HDR, payload, KEY);
    char p64[256];

    b64url(payload, strlen(payload), p64);
    ck_assert_ptr_nonnull(strchr(p64, '-'));
    ck_assert_ptr_nonnull(strchr(p64, '_'));
    ck_assert_int_eq(verify(tok, n, "foo", NOW, 0), JWT_OK);

    /* keys are bytes, NULs included */
    char h64[64];

    b64url(HDR, strlen(HDR), h64);
    b64url(PAYLOAD_FOO, strlen(PAYLOAD_FOO), p64);
    n = sign_segments(tok, h64, p64, bin_key, sizeof(bin_key) - 1);
    ck_assert_int_eq(verify_full(tok, n, bin_key, sizeof(bin_key) - 1, "foo", NOW, 0), JWT_OK);
    ck_assert_int_eq(verify_full(tok, n, bin_key, 1, "foo", NOW, 0), JWT_BAD_SIGNATURE);
}
END_TEST

/* ---- rejects ------------------------------------------------------------ */

START_TEST(test_rejects_signature)
{
    char tok[TOK_CAP], tok2[TOK_CAP], h64[64], p64[256];
    size_t n = make_token(tok, HDR, PAYLOAD_FOO, KEY), n2;
    const char *dot2;

    /* wrong key, a key one byte short, an empty key (even if signed with one) */
    ck_assert_int_eq(verify_full(tok, n, "another key", 11, "foo", NOW, 0), JWT_BAD_SIGNATURE);
    ck_assert_int_eq(verify_full(tok, n, KEY, strlen(KEY) - 1, "foo", NOW, 0), JWT_BAD_SIGNATURE);
    b64url(HDR, strlen(HDR), h64);
    b64url(PAYLOAD_FOO, strlen(PAYLOAD_FOO), p64);
    n2 = sign_segments(tok2, h64, p64, "", 0);
    ck_assert_int_eq(verify_full(tok2, n2, "", 0, "foo", NOW, 0), JWT_BAD_SIGNATURE);
    ck_assert_int_eq(verify_full(tok2, n2, NULL, 0, "foo", NOW, 0), JWT_BAD_SIGNATURE);

    /* tampered payload: another user's claims under foo's signature */
    dot2 = strrchr(tok, '.');
    b64url("{\"sub\":\"bar\",\"exp\":1700003600}", 30, p64);
    n2 = (size_t)snprintf(tok2, sizeof(tok2), "%s.%s%s", h64, p64, dot2);
    ck_assert_int_eq(verify(tok2, n2, "bar", NOW, 0), JWT_BAD_SIGNATURE);
    /* the payload is not even parsed before the signature holds */
    b64url("{not json", 9, p64);
    n2 = (size_t)snprintf(tok2, sizeof(tok2), "%s.%s%s", h64, p64, dot2);
    ck_assert_int_eq(verify(tok2, n2, "foo", NOW, 0), JWT_BAD_SIGNATURE);

    /* tampered signature: each character changed in turn */
    for (size_t i = (size_t)(dot2 + 1 - tok); i < n - 1; i++) {
        memcpy(tok2, tok, n);
        tok2[i] = tok2[i] == 'A' ? 'B' : 'A';
        ck_assert_int_eq(verify(tok2, n, "foo", NOW, 0), JWT_BAD_SIGNATURE);
    }
    /* wrong length: truncated to 16 bytes, or an HS512-sized 64 bytes */
    b64url(PAYLOAD_FOO, strlen(PAYLOAD_FOO), p64);
    memcpy(tok2, tok, n);
    n2 = (size_t)(dot2 + 1 - tok) + 22;
    tok2[n2 - 1] = 'A'; /* keep the trailing bits canonical */
    ck_assert_int_eq(verify(tok2, n2, "foo", NOW, 0), JWT_BAD_SIGNATURE);
    n2 = (size_t)snprintf(tok2, sizeof(tok2), "%s.%s.%.43s%.42sA", h64, p64, dot2 + 1, dot2 + 1);
    ck_assert_int_eq(verify(tok2, n2, "foo", NOW, 0), JWT_BAD_SIGNATURE);
}
END_TEST

START_TEST(test_rejects_header)
{
    static const char *const bad[] = {
        "{\"alg\":\"none\"}", "{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"alg\":\"HS512\"}",
        "{\"alg\":\"HS384\"}", "{\"alg\":\"RS256\"}", "{\"alg\":\"hs256\"}", "{\"alg\":\"HS256 \"}",
        "{\"alg\":\"HS2560\"}", "{\"alg\":\"\"}", "{\"alg\":null}", "{\"alg\":256}",
        "{\"alg\":[\"HS256\"]}", "{\"typ\":\"JWT\"}", "{}", "{\"ALG\":\"HS256\"}",
        "{\"alg\":\"HS256\\u0000\"}"
    };
    /* typ other than "JWT", or crit: malformed */
    static const char *const bad_typ[] = {
        "{\"alg\":\"HS256\",\"typ\":\"JWS\"}", "{\"alg\":\"HS256\",\"typ\":\"jwt\"}",
        "{\"alg\":\"HS256\",\"typ\":\"JOSE\"}", "{\"alg\":\"HS256\",\"typ\":\"\"}",
        "{\"alg\":\"HS256\",\"typ\":null}", "{\"alg\":\"HS256\",\"typ\":1}",
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}",
        "{\"alg\":\"HS256\",\"typ\":\"application/jwt-and-much-longer\"}"};
    char tok[TOK_CAP], h64[128], p64[128];
    size_t n;

    for (size_t i = 0; i < NELEM(bad); i++)
        ck_assert_msg(check_token(bad[i], PAYLOAD_FOO, "foo") == JWT_BAD_ALG, "%s", bad[i]);
    for (size_t i = 0; i < NELEM(bad_typ); i++)
        ck_assert_msg(check_token(bad_typ[i], PAYLOAD_FOO, "foo") == JWT_MALFORMED, "%s",
                      bad_typ[i]);
    /* the classic "alg":"none" token has an empty signature: still BAD_ALG */
    b64url("{\"alg\":\"none\"}", 14, h64);
    b64url(PAYLOAD_FOO, strlen(PAYLOAD_FOO), p64);
    n = (size_t)snprintf(tok, sizeof(tok), "%s.%s.", h64, p64);
    ck_assert_int_eq(verify(tok, n, "foo", NOW, 0), JWT_BAD_ALG);
    /* HS256 with an empty signature is just malformed */
    b64url(HDR, strlen(HDR), h64);
    n = (size_t)snprintf(tok, sizeof(tok), "%s.%s.", h64, p64);
    ck_assert_int_eq(verify(tok, n, "foo", NOW, 0), JWT_MALFORMED);
}
END_TEST

START_TEST(test_rejects_claims)
{
    static const char *const not_str[] = {"null", "42", "[\"foo\"]", "{}", "true"};
    static const char *const not_num[] = {"\"1700003600\"", "null", "true", "{}", "[1]"};
    static const char *const others[] = {"fo", "foobar", "Foo", "FOO", "fOo", "bar", "", "foo "};

    /* subject: present, a non-empty string, equal to the user */
    ck_payload("{\"exp\":1700003600}", JWT_NO_SUBJECT);
    ck_payload("{\"sub\":\"\",\"exp\":1700003600}", JWT_NO_SUBJECT);
    ck_payload("{}", JWT_NO_SUBJECT);
    check_each_malformed("{\"sub\":", not_str, NELEM(not_str), ",\"exp\":1700003600}");
    for (size_t i = 0; i < NELEM(others); i++)
        ck_token(HDR, PAYLOAD_FOO, others[i], JWT_SUBJECT_MISMATCH);
    ck_token(HDR, "{\"sub\":\"foobar\",\"exp\":2e9}", "foo", JWT_SUBJECT_MISMATCH);
    ck_token(HDR, "{\"sub\":\"foo \",\"exp\":2e9}", "foo", JWT_SUBJECT_MISMATCH);

    char tok[TOK_CAP];
    size_t n = make_token(tok, HDR, PAYLOAD_FOO, KEY);

    ck_assert_int_eq(jwt_verify_hs256(tok, n, KEY, strlen(KEY), NULL, 3, NOW, 0),
                     JWT_SUBJECT_MISMATCH);
    ck_assert_int_eq(jwt_verify_hs256(tok, n, KEY, strlen(KEY), "foo\0", 4, NOW, 0),
                     JWT_SUBJECT_MISMATCH);

    /* expiry is mandatory and must be a number */
    ck_payload("{\"sub\":\"foo\"}", JWT_NO_EXPIRY);
    ck_payload("{\"sub\":\"foo\",\"nbf\":1}", JWT_NO_EXPIRY);
    check_each_malformed("{\"sub\":\"foo\",\"exp\":", not_num, NELEM(not_num), "}");
    check_each_malformed("{\"sub\":\"foo\",\"exp\":2e9,\"nbf\":", not_num, NELEM(not_num), "}");

    /* the documented order: subject, expiry present, user, time */
    ck_payload("{\"nbf\":1}", JWT_NO_SUBJECT);
    ck_token(HDR, "{\"sub\":\"bar\",\"exp\":1,\"nbf\":2e9}", "foo", JWT_SUBJECT_MISMATCH);
    ck_payload("{\"sub\":\"foo\",\"exp\":1,\"nbf\":2e9}", JWT_EXPIRED);
}
END_TEST

START_TEST(test_rejects_reasons)
{
    static const char *const want[] = {
        [JWT_MALFORMED] = "token malformed", [JWT_BAD_ALG] = "token algorithm must be HS256",
        [JWT_BAD_SIGNATURE] = "token signature invalid", [JWT_EXPIRED] = "token expired",
        [JWT_NOT_YET_VALID] = "token not yet valid", [JWT_NO_SUBJECT] = "token has no subject",
        [JWT_SUBJECT_MISMATCH] = "token is for another user",
        [JWT_NO_EXPIRY] = "token has no expiry"
    };

    for (int r = JWT_MALFORMED; r <= JWT_NO_EXPIRY; r++) {
        ck_assert_str_eq(jwt_result_reason((enum jwt_result)r), want[r]);
        ck_assert_uint_lt(strlen(jwt_result_reason((enum jwt_result)r)), 60);
    }
    ck_assert_str_eq(jwt_result_reason(JWT_OK), "token valid");
    ck_assert_str_eq(jwt_result_reason((enum jwt_result)99), "token invalid");
}
END_TEST

/* ---- json ------------------------------------------------------------------ */

START_TEST(test_json_duplicates)
{
    static const char *const dup_payloads[] = {
        "{\"sub\":\"foo\",\"sub\":\"foo\",\"exp\":1700003600}",
        "{\"sub\":\"foo\",\"exp\":1700003600,\"sub\":\"bar\"}",
        "{\"sub\":\"foo\",\"exp\":1700003600,\"exp\":1700003600}",
        "{\"sub\":\"foo\",\"exp\":1700003600,\"nbf\":1,\"nbf\":1}",
        "{\"sub\":\"foo\",\"exp\":1700003600,\"s\\u0075b\":\"foo\"}",
        "{\"sub\":\"foo\",\"exp\":1700003600,\"exp\":null}"
    };
    static const char *const dup_headers[] = {
        "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "{\"alg\":\"none\",\"alg\":\"HS256\"}",
        "{\"alg\":\"HS256\",\"al\\u0067\":\"none\"}",
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"typ\":\"JWT\"}"
    };

    for (size_t i = 0; i < NELEM(dup_payloads); i++)
        ck_assert_msg(check_payload(dup_payloads[i]) == JWT_MALFORMED, "%s", dup_payloads[i]);
    for (size_t i = 0; i < NELEM(dup_headers); i++)
        ck_assert_msg(check_token(dup_headers[i], PAYLOAD_FOO, "foo") == JWT_MALFORMED, "%s",
                      dup_headers[i]);
    /* any repeated member, at any level: a parser that keeps the other copy
     * could read another token */
    ck_payload("{\"sub\":\"foo\",\"x\":1,\"x\":2,\"exp\":1700003600}", JWT_MALFORMED);
    ck_payload("{\"sub\":\"foo\",\"o\":{\"k\":1,\"k\":1},\"exp\":1700003600}", JWT_MALFORMED);
    ck_payload("{\"sub\":\"foo\",\"a\":[{\"sub\":\"x\",\"sub\":\"y\"}],\"exp\":2e9}",
               JWT_MALFORMED);
    ck_token("{\"alg\":\"HS256\",\"jwk\":{\"k\":\"a\",\"\\u006b\":\"b\"}}", PAYLOAD_FOO, "foo",
             JWT_MALFORMED);
    /* the same name in different objects is no repetition */
    ck_payload("{\"sub\":\"foo\",\"o\":{\"sub\":1,\"exp\":2},\"p\":{\"sub\":3},\"exp\":2e9}",
               JWT_OK);
}
END_TEST

/* {"sub":"foo","exp":1700003600,"d":<depth containers>} */
static enum jwt_result check_depth(int depth, char open, char close)
{
    static char payload[TOK_CAP];
    int n = snprintf(payload, sizeof(payload), "{\"sub\":\"foo\",\"exp\":1700003600,\"d\":");

    for (int i = 0; i < depth; i++) {
        payload[n++] = open;
        if (open == '{')
            n += snprintf(payload + n, sizeof(payload) - (size_t)n, "\"k\":");
    }
    if (open == '{')
        n += snprintf(payload + n, sizeof(payload) - (size_t)n, "1");
    for (int i = 0; i < depth; i++)
        payload[n++] = close;
    payload[n++] = '}';
    payload[n] = '\0';
    return check_payload(payload);
}

START_TEST(test_json_depth)
{
    static const char *const unbalanced[] = {"[[]}", "[}", "{]}", "[[[[[[[[", "[]]}", "{}}}", "]}"};

    /* the top-level object is level 1 */
    ck_assert_int_eq(check_depth(JWT_JSON_DEPTH_MAX - 1, '[', ']'), JWT_OK);
    ck_assert_int_eq(check_depth(JWT_JSON_DEPTH_MAX - 1, '{', '}'), JWT_OK);
    ck_assert_int_eq(check_depth(JWT_JSON_DEPTH_MAX, '[', ']'), JWT_MALFORMED);
    ck_assert_int_eq(check_depth(JWT_JSON_DEPTH_MAX, '{', '}'), JWT_MALFORMED);
    ck_assert_int_eq(check_depth(2000, '[', ']'), JWT_MALFORMED);
    ck_assert_int_eq(check_depth(400, '{', '}'), JWT_MALFORMED);
    /* unbalanced and mismatched brackets */
    check_each_malformed("{\"sub\":\"foo\",\"exp\":2e9,\"d\":", unbalanced, NELEM(unbalanced), "");

    /* the same limit in the header */
    char header[256];
    int n = snprintf(header, sizeof(header), "{\"alg\":\"HS256\",\"x\":");

    memset(header + n, '[', JWT_JSON_DEPTH_MAX);
    memset(header + n + JWT_JSON_DEPTH_MAX, ']', JWT_JSON_DEPTH_MAX);
    strcpy(header + n + 2 * JWT_JSON_DEPTH_MAX, "}");
    ck_token(header, PAYLOAD_FOO, "foo", JWT_MALFORMED);
}
END_TEST

START_TEST(test_json_syntax)
{
    static const char *const bad_doc[] = {
        "", " ", "[]", "\"foo\"", "null", "1", "{", "}", "{,}", "{\"sub\":\"fo\\",
        "{sub:\"foo\",\"exp\":2e9}", "{'sub':'foo',\"exp\":2e9}", "{\"sub\" \"foo\",\"exp\":2e9}",
        "{\"sub\":,\"exp\":2e9}", "{,\"sub\":\"foo\",\"exp\":2e9}", "{\"sub\":\"foo\" \"exp\":2e9}",
        "\xef\xbb\xbf{\"sub\":\"foo\",\"exp\":2e9}", "{\"sub\":\"foo\",\"exp\":2e9}\xef\xbb\xbf"
    };
    /* after {"sub":"foo","exp":2e9 */
    static const char *const bad_tail[] = {"", "}x", "}}", "} {}", ",}", ",\"x\"}", ",\"x\":}"};
    /* values of an ignored member */
    static const char *const bad_value[] = {
        "", "tru", "True", "nul", "falsey", "undefined", "[1,]", "[,1]", "[1 2]", "[1:2]",
        "{\"a\"}", "{\"a\":}", "{1:2}", "{\"a\":1,}", "{\"a\",1}", "\"a\\xb\"", "\"a\\u12G4\"",
        "\"\\u12\"", "\"a\\'\"", "\"tab\there\"", "\"nl\nhere\"", "\"unterminated",
        "\"ends in backslash\\"
    };
    /* numbers: in exp, and in an ignored member */
    static const char *const bad_num[] = {
        "NaN", "nan", "Infinity", "-Infinity", "inf", "+1", "01", "-01", "00", "1.", ".5", "-.5",
        "1e", "1e+", "1E-", "0x10", "1_000", "--1", "-", "1.5.5", "1e5e5", "1ee5", "1.e5",
        "\xd9\xa1", "1 2", "0.0.0"
    };

    check_each_malformed("", bad_doc, NELEM(bad_doc), "");
    check_each_malformed("{\"sub\":\"foo\",\"exp\":2e9", bad_tail, NELEM(bad_tail), "");
    check_each_malformed("{\"sub\":\"foo\",\"exp\":2e9,\"x\":", bad_value, NELEM(bad_value), "}");
    check_each_malformed("{\"sub\":\"foo\",\"exp\":", bad_num, NELEM(bad_num), "}");
    check_each_malformed("{\"sub\":\"foo\",\"exp\":2e9,\"x\":[", bad_num, NELEM(bad_num), "]}");
    /* a NUL byte in the JSON text */
    static const char nul_payload[] = "{\"sub\":\"foo\",\"exp\":1700003600}\0";
    char tok[TOK_CAP];
    size_t n = make_token_n(tok, HDR, nul_payload, sizeof(nul_payload) - 1, KEY);

    ck_assert_int_eq(verify(tok, n, "foo", NOW, 0), JWT_MALFORMED);
    /* a NUL in a member name: jansson has no room for one in its keys */
    ck_payload("{\"sub\":\"foo\",\"\\u0000\":1,\"exp\":2e9}", JWT_MALFORMED);
    ck_payload("{\"sub\":\"foo\",\"a\\u0000\":1,\"exp\":2e9}", JWT_MALFORMED);
    /* all scalar kinds in ignored members are fine */
    ck_assert_int_eq(check_payload("{\"a\":true,\"b\":false,\"c\":null,\"d\":-0,\"e\":0.5E-3,"
                                   "\"f\":\"\\u00e9\",\"sub\":\"foo\",\"exp\":1700003600}"),
                     JWT_OK);
}
END_TEST

START_TEST(test_json_utf8)
{
    /* bad continuation, overlongs (2, 3, 4 bytes), UTF-8-encoded surrogates,
     * above U+10FFFF, bytes that never occur, truncations; then escapes: lone
     * high, lone low, reversed pair, high + non-low, high + text, high + a
     * broken escape, two highs */
    static const char *const bad[] = {
        "\xc3\x28", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xed\xa0\x80",
        "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\xfe", "\x80", "\xbf",
        "\xe2\x82", "\xf0\x9f\x98", "\\ud83d", "\\ude00", "\\ude00\\ud83d", "\\ud83d\\u0041",
        "\\ud83dx", "\\ud83d\\", "\\ud83d\\ud83d"
    };

    /* in sub, in an ignored value, in a member name */
    check_each_malformed("{\"sub\":\"f", bad, NELEM(bad), "o\",\"exp\":2e9}");
    check_each_malformed("{\"sub\":\"foo\",\"exp\":2e9,\"x\":[\"", bad, NELEM(bad), "\"]}");
    check_each_malformed("{\"sub\":\"foo\",\"", bad, NELEM(bad), "\":1,\"exp\":2e9}");
}
END_TEST

/* ---- base64url --------------------------------------------------------------- */

/* Header/payload segments given as text, signed properly: only the encoding
 * can be at fault. */
static enum jwt_result check_segments(const char *h64, const char *p64)
{
    static char tok[TOK_CAP];
    size_t n = sign_segments(tok, h64, p64, KEY, strlen(KEY));

    return verify(tok, n, "foo", NOW, 0);
}

/* Replace the last character of s by the next one in the alphabet: with a
 * 2 or 3 character tail, that sets an unused low bit. */
static void bump_last(char *s)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *last = s + strlen(s) - 1;

    *last = abc[strchr(abc, *last) - abc + 1];
}

START_TEST(test_base64url_strict)
{
    /* JSON texts whose encodings end in 2 and 3 character tails */
    static const char *const headers[] = {"{\"alg\":\"HS256\" }", "{\"alg\":\"HS256\"  }"};
    static const char *const payloads[] = {
        "{\"sub\":\"foo\",\"exp\":1700003600 }", "{\"sub\":\"foo\",\"exp\":1700003600  }"
    };
    char h64[128], p64[128], bad[128];
    size_t hn = b64url(HDR, strlen(HDR), h64), pn = b64url(PAYLOAD_FOO, 30, p64);

    ck_assert_int_eq(check_segments(h64, p64), JWT_OK);
    for (size_t i = 0; i < 2; i++) {
        size_t bn = b64url(headers[i], strlen(headers[i]), bad);

        ck_assert_uint_eq(bn % 4, i + 2);
        ck_assert_int_eq(check_segments(bad, p64), JWT_OK);
        strcat(bad, i == 0 ? "==" : "=");
        ck_assert_int_eq(check_segments(bad, p64), JWT_MALFORMED);
        bad[bn] = '\0';
        bump_last(bad);
        ck_assert_int_eq(check_segments(bad, p64), JWT_MALFORMED);

        bn = b64url(payloads[i], strlen(payloads[i]), bad);
        ck_assert_uint_eq(bn % 4, i + 2);
        ck_assert_int_eq(check_segments(h64, bad), JWT_OK);
        strcat(bad, "=");
        ck_assert_int_eq(check_segments(h64, bad), JWT_MALFORMED);
        bad[bn] = '\0';
        bump_last(bad);
        ck_assert_int_eq(check_segments(h64, bad), JWT_MALFORMED);
    }
    /* padding where none is needed, and a length of 4n+1 */
    join(bad, sizeof(bad), h64, "====", "");
    ck_assert_int_eq(check_segments(bad, p64), JWT_MALFORMED);
    join(bad, sizeof(bad), h64, "A", "");
    ck_assert_int_eq(check_segments(bad, p64), JWT_MALFORMED);
    join(bad, sizeof(bad), p64, "A", "");
    ck_assert_int_eq(check_segments(h64, bad), JWT_MALFORMED);

    /* characters outside the alphabet, anywhere */
    static const char outside[] = "+/= \t\n*~\x80\xff";
    for (size_t i = 0; i < sizeof(outside) - 1; i++) {
        memcpy(bad, p64, pn + 1);
        bad[5] = outside[i];
        ck_assert_msg(check_segments(h64, bad) == JWT_MALFORMED, "%d", outside[i]);
        memcpy(bad, h64, hn + 1);
        bad[hn - 1] = outside[i];
        ck_assert_msg(check_segments(bad, p64) == JWT_MALFORMED, "%d", outside[i]);
    }

    /* the signature (43 characters): padding, a non-canonical tail, a '+' */
    char tok[TOK_CAP], tok2[TOK_CAP];
    size_t n = make_token(tok, HDR, PAYLOAD_FOO, KEY);

    join(tok2, sizeof(tok2), tok, "=", "");
    ck_assert_int_eq(verify(tok2, n + 1, "foo", NOW, 0), JWT_MALFORMED);
    memcpy(tok2, tok, n + 1);
    bump_last(tok2);
    ck_assert_int_eq(verify(tok2, n, "foo", NOW, 0), JWT_MALFORMED);
    memcpy(tok2, tok, n + 1);
    tok2[n - 10] = '+';
    ck_assert_int_eq(verify(tok2, n, "foo", NOW, 0), JWT_MALFORMED);
}
END_TEST

START_TEST(test_base64url_segments)
{
    char tok[TOK_CAP], bad[TOK_CAP], h64[64], p64[64];
    size_t n = make_token(tok, HDR, PAYLOAD_FOO, KEY);
    const char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');

    b64url(HDR, strlen(HDR), h64);
    b64url(PAYLOAD_FOO, strlen(PAYLOAD_FOO), p64);
    /* extra segments, a trailing or leading dot */
    ck_assert_int_eq(verify(bad, join(bad, TOK_CAP, tok, ".", p64), "foo", NOW, 0), JWT_MALFORMED);
    ck_assert_int_eq(verify(bad, join(bad, TOK_CAP, tok, ".", ""), "foo", NOW, 0), JWT_MALFORMED);
    ck_assert_int_eq(verify(bad, join(bad, TOK_CAP, ".", tok, ""), "foo", NOW, 0), JWT_MALFORMED);
    /* empty segments */
    ck_assert_int_eq(verify(bad, join(bad, TOK_CAP, ".", p64, dot2), "foo", NOW, 0), JWT_MALFORMED);
    ck_assert_int_eq(verify(bad, join(bad, TOK_CAP, h64, ".", dot2), "foo", NOW, 0), JWT_MALFORMED);
    ck_assert_int_eq(verify(tok, (size_t)(dot2 + 1 - tok), "foo", NOW, 0), JWT_MALFORMED);
    /* too few segments */
    static const char *const few[] = {"", ".", "..", "...", "abc", "abc.def"};
    for (size_t i = 0; i < NELEM(few); i++)
        ck_assert_msg(verify(few[i], strlen(few[i]), "foo", NOW, 0) == JWT_MALFORMED, "%s", few[i]);
    ck_assert_int_eq(verify(tok, (size_t)(dot2 - tok), "foo", NOW, 0), JWT_MALFORMED);
    ck_assert_int_eq(verify(tok, (size_t)(dot1 - tok), "foo", NOW, 0), JWT_MALFORMED);
    ck_assert_int_eq(jwt_verify_hs256(NULL, 0, KEY, strlen(KEY), "foo", 3, NOW, 0), JWT_MALFORMED);
    /* a NUL byte inside (len counts it) */
    memcpy(bad, tok, n);
    bad[n] = '\0';
    bad[n + 1] = 'A';
    ck_assert_int_eq(verify(bad, n + 2, "foo", NOW, 0), JWT_MALFORMED);
    /* a truncated token */
    for (size_t i = 0; i < n; i++)
        ck_assert_int_ne(verify(tok, i, "foo", NOW, 0), JWT_OK);
}
END_TEST

START_TEST(test_base64url_size_limit)
{
    static char payload[TOK_CAP], tok[TOK_CAP];
    int seen_max = 0, seen_over = 0;

    /* grow a padding claim until the token is exactly JWT_TOKEN_MAX bytes,
     * then past it */
    for (size_t pad = 2900; pad < 3200; pad++) {
        int m = snprintf(payload, sizeof(payload), "{\"sub\":\"foo\",\"exp\":1700003600,\"p\":\"");
        memset(payload + m, 'x', pad);
        strcpy(payload + (size_t)m + pad, "\"}");
        size_t n = make_token(tok, HDR, payload, KEY);
        enum jwt_result r = verify(tok, n, "foo", NOW, 0);

        if (n <= JWT_TOKEN_MAX) {
            ck_assert_int_eq(r, JWT_OK);
            seen_max |= n == JWT_TOKEN_MAX;
        } else {
            ck_assert_int_eq(r, JWT_MALFORMED);
            seen_over = 1;
        }
    }
    ck_assert(seen_max && seen_over);
    /* way over: a 16 KiB token is refused without being read */
    memset(tok, 'A', TOK_CAP);
    tok[100] = tok[200] = '.';
    ck_assert_int_eq(verify(tok, TOK_CAP, "foo", NOW, 0), JWT_MALFORMED);
}
END_TEST

START_TEST(test_base64url_looks_like)
{
    static const char *const good[] = {"a.b.c", "A-_.0123456789.xyzXYZ", cli_token};
    static const char *const bad[] = {
        "", "abc", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b.", "..", "a.b.c=", "a.b+.c", "a.b/.c",
        "a b.c.d", " a.b.c", "a.b.c ", "a.b.c,", "chat", "a.\xc3\xa9.c"
    };

    for (size_t i = 0; i < NELEM(good); i++)
        ck_assert_msg(jwt_looks_like(good[i], strlen(good[i])) != 0, "%s", good[i]);
    for (size_t i = 0; i < NELEM(bad); i++)
        ck_assert_msg(jwt_looks_like(bad[i], strlen(bad[i])) == 0, "%s", bad[i]);
    ck_assert_int_eq(jwt_looks_like("a.b.c\0d", 7), 0);
    ck_assert_int_eq(jwt_looks_like("a.b.cd", 5), 1);
    ck_assert_int_eq(jwt_looks_like(NULL, 0), 0);
}
END_TEST

static TCase *add_tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);

    suite_add_tcase(s, tc);
    return tc;
}

static Suite *jwt_suite(void)
{
    Suite *s = suite_create("jwt");
    TCase *tc;

    tc = add_tcase(s, "valid");
    tcase_add_test(tc, test_valid_basic);
    tcase_add_test(tc, test_valid_openssl_cli);
    tcase_add_test(tc, test_valid_time_edges);
    tcase_add_test(tc, test_valid_sub_escapes);
    tcase_add_test(tc, test_valid_nested_ignored);
    tcase_add_test(tc, test_valid_key_and_alphabet);
    tc = add_tcase(s, "rejects");
    tcase_add_test(tc, test_rejects_signature);
    tcase_add_test(tc, test_rejects_header);
    tcase_add_test(tc, test_rejects_claims);
    tcase_add_test(tc, test_rejects_reasons);
    tc = add_tcase(s, "json");
    tcase_add_test(tc, test_json_duplicates);
    tcase_add_test(tc, test_json_depth);
    tcase_add_test(tc, test_json_syntax);
    tcase_add_test(tc, test_json_utf8);
    tc = add_tcase(s, "base64url");
    tcase_add_test(tc, test_base64url_strict);
    tcase_add_test(tc, test_base64url_segments);
    tcase_add_test(tc, test_base64url_size_limit);
    tcase_add_test(tc, test_base64url_looks_like);
    return s;
}

int main(void)
{
    return check_run(jwt_suite());
}
