/* jwt.c -- HS256 JSON Web Token verification (see jwt.h).
 *
 * Pure: no I/O, no logging, no global state of ours. A token is split at its
 * dots, each segment decoded by the strict base64url decoder (base64.h) into
 * a fixed stack buffer, and the header and payload parsed by jansson into a
 * tree that is freed before returning; only the top-level members we care
 * about are read. The payload is only parsed after its signature verified.
 */
#include "jwt.h"

#include <limits.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base64.h"

/* Largest decoded segment: JWT_TOKEN_MAX base64url characters carry 3 bytes
 * per 4. */
#define JWT_DECODED_MAX (JWT_TOKEN_MAX / 4 * 3)
#define JWT_HS256_LEN 32

/* Duplicate member names anywhere are malformed, so a token cannot say one
 * thing to us and another to a parser that keeps the other copy. NUL bytes
 * in strings are kept (a "sub" holding one never matches a user name) rather
 * than refusing the token. All numbers are read as doubles, so an integer
 * too large for long long still parses and saturates like "1e300" does. */
#define JWT_JSON_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL)

/* 1 when v, at nesting level depth (1 for the top-level value), and all it
 * holds nest no deeper than JWT_JSON_DEPTH_MAX. jansson's own parser stops at
 * JSON_PARSER_MAX_DEPTH (2048 in jansson 2.14), far more than a header or
 * claims set needs; this bound also keeps the recursion here short. */
static int jwt_json_depth_ok(json_t *v, int depth)
{
    const char *name;
    json_t *m;
    size_t i;

    if (!json_is_object(v) && !json_is_array(v))
        return 1;
    if (depth > JWT_JSON_DEPTH_MAX)
        return 0;
    if (json_is_array(v)) {
        json_array_foreach(v, i, m) {
            if (!jwt_json_depth_ok(m, depth + 1))
                return 0;
        }
    } else {
        json_object_foreach(v, name, m) {
            if (!jwt_json_depth_ok(m, depth + 1))
                return 0;
        }
    }
    return 1;
}

/* The JSON object encoded as base64url in seg[0..len), or NULL when the
 * segment is not strict base64url, not UTF-8 JSON, not an object, has a
 * duplicate member or nests too deep. The caller json_decref()s it. */
static json_t *jwt_segment_object(const char *seg, size_t len)
{
    unsigned char text[JWT_DECODED_MAX];
    ssize_t n = base64_decode(BASE64_URL, seg, len, text, sizeof(text));
    json_error_t err;
    json_t *obj;

    if (n < 0)
        return NULL;
    obj = json_loadb((const char *)text, (size_t)n, JWT_JSON_FLAGS, &err);
    if (obj != NULL && (!json_is_object(obj) || !jwt_json_depth_ok(obj, 1))) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* A string equal to s (a NUL byte inside never matches). */
static int jwt_json_str_is(const json_t *v, const char *s)
{
    size_t n = strlen(s);

    return json_is_string(v) && json_string_length(v) == n &&
           memcmp(json_string_value(v), s, n) == 0;
}

/* Integer part of a number, toward zero, saturated to the range of long
 * long (jansson refuses infinities and NaN, and numbers past a double's
 * range). */
static long long jwt_json_int(const json_t *v)
{
    double d = json_number_value(v);

    if (d >= 0x1p63)
        return LLONG_MAX;
    if (d <= -0x1p63)
        return LLONG_MIN;
    return (long long)d;
}

/* Header checks on the encoded header seg[0..len). */
static enum jwt_result jwt_check_header(const char *seg, size_t len)
{
    json_t *h = jwt_segment_object(seg, len), *typ;
    enum jwt_result res = JWT_OK;

    if (h == NULL)
        return JWT_MALFORMED;
    typ = json_object_get(h, "typ");
    if (!jwt_json_str_is(json_object_get(h, "alg"), "HS256"))
        res = JWT_BAD_ALG;
    else if ((typ != NULL && !jwt_json_str_is(typ, "JWT")) || json_object_get(h, "crit") != NULL)
        res = JWT_MALFORMED;
    json_decref(h);
    return res;
}

/* Signature checks: sig[0..siglen) against HMAC-SHA256(key, input[0..inlen)). */
static enum jwt_result jwt_check_signature(const char *input, size_t inlen, const char *sig,
                                           size_t siglen, const void *key, size_t keylen)
{
    const unsigned char *in = (const unsigned char *)input;
    unsigned char want[EVP_MAX_MD_SIZE], got[JWT_DECODED_MAX];
    unsigned int wantlen = 0;
    ssize_t n;

    if (siglen == 0)
        return JWT_MALFORMED;
    n = base64_decode(BASE64_URL, sig, siglen, got, sizeof(got));
    if (n < 0)
        return JWT_MALFORMED;
    /* an empty key would let anyone sign: fail closed rather than trust it */
    if (n != JWT_HS256_LEN || key == NULL || keylen == 0 || keylen > INT_MAX)
        return JWT_BAD_SIGNATURE;
    if (HMAC(EVP_sha256(), key, (int)keylen, in, inlen, want, &wantlen) == NULL ||
        wantlen != JWT_HS256_LEN)
        return JWT_BAD_SIGNATURE;
    return CRYPTO_memcmp(want, got, JWT_HS256_LEN) == 0 ? JWT_OK : JWT_BAD_SIGNATURE;
}

/* 1 when now >= exp + leeway, without overflow. */
static int jwt_is_expired(long long now, long long exp, long long leeway)
{
    return exp <= LLONG_MAX - leeway && now >= exp + leeway;
}

/* 1 when now < nbf - leeway, without overflow. */
static int jwt_is_early(long long now, long long nbf, long long leeway)
{
    return nbf >= LLONG_MIN + leeway && now < nbf - leeway;
}

/* Claim checks on the parsed payload c. */
static enum jwt_result jwt_check_claims(json_t *c, const char *user, size_t userlen, long long now,
                                        long long leeway)
{
    json_t *sub = json_object_get(c, "sub"), *exp = json_object_get(c, "exp"),
           *nbf = json_object_get(c, "nbf");

    if ((sub != NULL && !json_is_string(sub)) || (exp != NULL && !json_is_number(exp)) ||
        (nbf != NULL && !json_is_number(nbf)))
        return JWT_MALFORMED;
    if (sub == NULL || json_string_length(sub) == 0)
        return JWT_NO_SUBJECT;
    if (exp == NULL)
        return JWT_NO_EXPIRY;
    if (json_string_length(sub) != userlen || memcmp(json_string_value(sub), user, userlen) != 0)
        return JWT_SUBJECT_MISMATCH;
    if (jwt_is_expired(now, jwt_json_int(exp), leeway))
        return JWT_EXPIRED;
    if (nbf != NULL && jwt_is_early(now, jwt_json_int(nbf), leeway))
        return JWT_NOT_YET_VALID;
    return JWT_OK;
}

enum jwt_result jwt_verify_hs256(const char *token, size_t len, const void *key, size_t keylen,
                                 const char *user, size_t userlen, long long now, long leeway_s)
{
    const char *dot1, *dot2;
    size_t hlen, plen, slen;
    enum jwt_result res;
    json_t *claims;

    if (token == NULL || len == 0 || len > JWT_TOKEN_MAX)
        return JWT_MALFORMED;
    dot1 = memchr(token, '.', len);
    if (dot1 == NULL)
        return JWT_MALFORMED;
    dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        return JWT_MALFORMED;
    hlen = (size_t)(dot1 - token);
    plen = (size_t)(dot2 - dot1 - 1);
    slen = len - (size_t)(dot2 + 1 - token);
    if (hlen == 0 || plen == 0)
        return JWT_MALFORMED;
    /* the header first, so "alg":"none" with its empty signature says BAD_ALG */
    res = jwt_check_header(token, hlen);
    if (res != JWT_OK)
        return res;
    res = jwt_check_signature(token, (size_t)(dot2 - token), dot2 + 1, slen, key, keylen);
    if (res != JWT_OK)
        return res;
    claims = jwt_segment_object(dot1 + 1, plen);
    if (claims == NULL)
        return JWT_MALFORMED;
    if (user == NULL)
        userlen = 0;
    res = jwt_check_claims(claims, user, userlen, now, leeway_s < 0 ? 0 : leeway_s);
    json_decref(claims);
    return res;
}

const char *jwt_result_reason(enum jwt_result r)
{
    switch (r) {
    case JWT_OK: return "token valid";
    case JWT_MALFORMED: return "token malformed";
    case JWT_BAD_ALG: return "token algorithm must be HS256";
    case JWT_BAD_SIGNATURE: return "token signature invalid";
    case JWT_EXPIRED: return "token expired";
    case JWT_NOT_YET_VALID: return "token not yet valid";
    case JWT_NO_SUBJECT: return "token has no subject";
    case JWT_SUBJECT_MISMATCH: return "token is for another user";
    case JWT_NO_EXPIRY: return "token has no expiry";
    }
    return "token invalid";
}

int jwt_looks_like(const char *s, size_t len)
{
    size_t i, seglen = 0;
    int dots = 0;

    if (s == NULL)
        return 0;
    for (i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (seglen == 0 || ++dots > 2)
                return 0;
            seglen = 0;
        } else if (base64_digit(BASE64_URL, (unsigned char)s[i]) < 0) {
            return 0;
        } else {
            seglen++;
        }
    }
    return dots == 2 && seglen > 0;
}
