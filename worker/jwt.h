/* jwt.h -- verification of HS256 JSON Web Tokens (RFC 7519, RFC 7515).
 *
 * The worker authenticates a user at the WebSocket upgrade with a token
 * signed by whoever knows the configured secret. Only the compact
 * serialization with "alg":"HS256" is accepted. Pure: no I/O, no logging, no
 * global state of ours. Segments are decoded into fixed stack buffers; the
 * header and then (once the signature holds) the payload are parsed by
 * jansson, which allocates a tree for each that is freed before
 * jwt_verify_hs256 returns.
 */
#ifndef RC_JWT_H
#define RC_JWT_H

#include <stddef.h>

#define JWT_TOKEN_MAX 4096    /* bytes of a compact token; longer ones are malformed */
#define JWT_JSON_DEPTH_MAX 32 /* nesting of objects/arrays, the top-level object included */

enum jwt_result {
    JWT_OK = 0,
    JWT_MALFORMED,        /* not three base64url segments, bad JSON, repeated key, mistyped claim */
    JWT_BAD_ALG,          /* header "alg" missing or not exactly "HS256" ("none" included) */
    JWT_BAD_SIGNATURE,    /* wrong HMAC, wrong signature length, or an empty key */
    JWT_EXPIRED,          /* now >= exp + leeway */
    JWT_NOT_YET_VALID,    /* now < nbf - leeway */
    JWT_NO_SUBJECT,       /* no "sub", or an empty one */
    JWT_SUBJECT_MISMATCH, /* "sub" differs from the user */
    JWT_NO_EXPIRY,        /* no "exp": tokens must expire */
};

/* Verify token[0..len) (compact serialization header.payload.signature,
 * base64url without padding, at most JWT_TOKEN_MAX bytes) for user
 * user[0..userlen) at time `now` (seconds since the epoch), with HMAC-SHA256
 * over "header.payload" keyed by key[0..keylen). Nothing is kept after the
 * call returns.
 *
 * Checks, in this order, each failing with the result in parentheses:
 *   - exactly three segments, the first two non-empty, valid strict base64url
 *     (no '=', canonical trailing bits) and UTF-8 JSON objects (RFC 8259, as
 *     jansson reads it) without a repeated member name at any level and
 *     nested at most JWT_JSON_DEPTH_MAX deep (MALFORMED);
 *   - header: "alg" is the string "HS256" (BAD_ALG); "typ", if present, is
 *     the string "JWT" and there is no "crit" (MALFORMED: we understand no
 *     extension, RFC 7515 4.1.11);
 *   - signature: non-empty segment (MALFORMED), 32 bytes equal to the HMAC,
 *     compared in constant time (BAD_SIGNATURE); an empty key never verifies;
 *   - payload, only once the signature is good: "sub" is a string (MALFORMED
 *     otherwise), present and non-empty (NO_SUBJECT); "exp" is a number
 *     (MALFORMED otherwise) and present (NO_EXPIRY); "nbf", if present, is a
 *     number (MALFORMED); "sub" decoded (all JSON escapes, \uXXXX and
 *     surrogate pairs to UTF-8; a \u0000 is kept) equals user byte for byte
 *     (SUBJECT_MISMATCH); now < exp + leeway_s (EXPIRED); now >= nbf -
 *     leeway_s (NOT_YET_VALID).
 * Numbers are read as doubles (exact for every integer up to 2^53) and may
 * have a fraction or exponent: their integer part (toward zero, saturated to
 * the range of long long) is used; a number beyond a double's range (1e400)
 * is MALFORMED. A negative leeway counts as 0. Only top-level members count:
 * other keys and values are checked for syntax and ignored. */
enum jwt_result jwt_verify_hs256(const char *token, size_t len, const void *key, size_t keylen,
                                 const char *user, size_t userlen, long long now, long leeway_s);

/* Short English reason for r, for a WebSocket close frame (< 60 bytes, static):
 * "token malformed", "token algorithm must be HS256", "token signature invalid",
 * "token expired", "token not yet valid", "token has no subject",
 * "token is for another user", "token has no expiry"; "token valid" for JWT_OK
 * and "token invalid" for values outside the enum. */
const char *jwt_result_reason(enum jwt_result r);

/* Nonzero when s[0..len) looks like a compact JWT: three non-empty segments of
 * base64url characters (A-Z a-z 0-9 - _) separated by two dots. Says nothing
 * about length, padding bits or content: use it to pick a candidate (e.g. among
 * Sec-WebSocket-Protocol entries), then verify. */
int jwt_looks_like(const char *s, size_t len);

#endif
