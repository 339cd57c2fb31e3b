/* fuzz_jwt.c -- libFuzzer target for JSON Web Token verification.
 *
 * The input layout is in fuzz_jwt.h: a token as it came, or header and
 * payload JSON that the target signs itself. jwt_verify_hs256() runs on an
 * exact-size heap copy of the token and its answer is checked against the
 * contract of jwt.h, with an HMAC computed here by OpenSSL and encoded by
 * the encoder below, not by the code under test:
 *   - the result is one of enum jwt_result with a short reason, and the same
 *     call gives the same result (no hidden state);
 *   - a token over JWT_TOKEN_MAX is MALFORMED; one that jwt_looks_like()
 *     refuses never gets past the signature check (the payload's encoding
 *     is only read after it, so BAD_SIGNATURE is possible);
 *     jwt_looks_like() itself agrees with its definition;
 *   - any result decided after the signature (OK, EXPIRED, NOT_YET_VALID,
 *     NO_SUBJECT, SUBJECT_MISMATCH, NO_EXPIRY) means the third segment is
 *     exactly the base64url HMAC-SHA256 of the first two under the key
 *     (the strict encoding is unique);
 *   - a token signed here is never BAD_SIGNATURE;
 *   - an accepted token fails with another key (BAD_SIGNATURE), for another
 *     user (SUBJECT_MISMATCH) and at the end of time (EXPIRED).
 * ASan's leak check at exit covers the trees jansson allocates. Any broken
 * invariant abort()s.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fuzz_check.h"
#include "fuzz_jwt.h"
#include "jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define FZJ_HS256_LEN 32

static const long long fzj_nows[] = {FZJ_NOW, 0, LLONG_MIN, LLONG_MAX};
static const long fzj_leeways[] = {0, 30, -5, LONG_MAX};

/* base64url without padding of src[0..n) into out (room for 4 * n / 3 + 3),
 * six bits at a time; returns the length. */
static size_t fzj_b64url(const unsigned char *src, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    size_t o = 0;
    int bits = 0;

    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8 | src[i]) & 0xffff;
        for (bits += 8; bits >= 6; bits -= 6)
            out[o++] = abc[acc >> (bits - 6) & 63];
    }
    if (bits > 0)
        out[o++] = abc[acc << (6 - bits) & 63];
    return o;
}

static int fzj_is_b64url(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* jwt_looks_like by its definition: three non-empty segments of base64url
 * characters, two dots. */
static int fzj_looks_like(const char *s, size_t len)
{
    size_t seg = 0, dots = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (seg == 0)
                return 0;
            dots++;
            seg = 0;
        } else if (!fzj_is_b64url((unsigned char)s[i])) {
            return 0;
        } else {
            seg++;
        }
    }
    return dots == 2 && seg > 0;
}

/* 1 when tok[0..len) has two dots and its third segment is the base64url
 * HMAC-SHA256 of everything before the second dot. */
static int fzj_signature_holds(const char *tok, size_t len, const char *key)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char want[64];
    const char *dot1 = memchr(tok, '.', len), *dot2;
    size_t n;

    if (dot1 == NULL)
        return 0;
    dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok));
    if (dot2 == NULL)
        return 0;
    FUZZ_CHECK(HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)tok,
                    (size_t)(dot2 - tok), md, &mdlen) != NULL);
    FUZZ_CHECK(mdlen == FZJ_HS256_LEN);
    n = fzj_b64url(md, mdlen, want);
    return len - (size_t)(dot2 + 1 - tok) == n && memcmp(dot2 + 1, want, n) == 0;
}

/* b64url(header).b64url(payload).b64url(HMAC) into a new exact-size buffer. */
static char *fzj_sign(const uint8_t *header, size_t hlen, const uint8_t *payload, size_t plen,
                      size_t *lenp)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t cap = (hlen + plen) / 3 * 4 + 64, n;
    char *tmp = malloc(cap), *tok;

    FUZZ_CHECK(tmp != NULL);
    n = fzj_b64url(header, hlen, tmp);
    tmp[n++] = '.';
    n += fzj_b64url(payload, plen, tmp + n);
    FUZZ_CHECK(HMAC(EVP_sha256(), FZJ_KEY, (int)strlen(FZJ_KEY), (const unsigned char *)tmp, n, md,
                    &mdlen) != NULL);
    tmp[n++] = '.';
    n += fzj_b64url(md, mdlen, tmp + n);
    FUZZ_CHECK(n <= cap);
    tok = malloc(n);
    FUZZ_CHECK(tok != NULL);
    memcpy(tok, tmp, n);
    free(tmp);
    *lenp = n;
    return tok;
}

static enum jwt_result fzj_verify(const char *tok, size_t len, const char *key, const char *user,
                                  long long now, long leeway)
{
    return jwt_verify_hs256(tok, len, key, strlen(key), user, strlen(user), now, leeway);
}

static int fzj_after_signature(enum jwt_result r)
{
    return r == JWT_OK || r == JWT_EXPIRED || r == JWT_NOT_YET_VALID || r == JWT_NO_SUBJECT ||
           r == JWT_SUBJECT_MISMATCH || r == JWT_NO_EXPIRY;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    long long now;
    long leeway;
    enum jwt_result r;
    const char *reason;
    char *tok;
    size_t len;

    if (size == 0)
        return 0;
    mode = data[0];
    now = fzj_nows[mode >> 1 & 3];
    leeway = fzj_leeways[mode >> 3 & 3];
    if (mode & FZJ_SIGN) {
        size_t hlen;

        if (size < 2)
            return 0;
        hlen = data[1] < size - 2 ? data[1] : size - 2;
        tok = fzj_sign(data + 2, hlen, data + 2 + hlen, size - 2 - hlen, &len);
    } else {
        len = size - 1;
        tok = malloc(len ? len : 1);
        FUZZ_CHECK(tok != NULL);
        memcpy(tok, data + 1, len);
    }

    r = fzj_verify(tok, len, FZJ_KEY, FZJ_USER, now, leeway);
    FUZZ_CHECK(r >= JWT_OK && r <= JWT_NO_EXPIRY);
    reason = jwt_result_reason(r);
    FUZZ_CHECK(reason != NULL && strlen(reason) > 0 && strlen(reason) < 60);
    FUZZ_CHECK(fzj_verify(tok, len, FZJ_KEY, FZJ_USER, now, leeway) == r);

    FUZZ_CHECK(jwt_looks_like(tok, len) == fzj_looks_like(tok, len));
    if (len > JWT_TOKEN_MAX)
        FUZZ_CHECK(r == JWT_MALFORMED);
    if (!jwt_looks_like(tok, len))
        FUZZ_CHECK(!fzj_after_signature(r));
    if (fzj_after_signature(r))
        FUZZ_CHECK(fzj_signature_holds(tok, len, FZJ_KEY));
    if (mode & FZJ_SIGN)
        FUZZ_CHECK(r != JWT_BAD_SIGNATURE);
    if (r == JWT_OK) {
        FUZZ_CHECK(fzj_verify(tok, len, "another key", FZJ_USER, now, leeway) == JWT_BAD_SIGNATURE);
        FUZZ_CHECK(fzj_verify(tok, len, FZJ_KEY, FZJ_USER "x", now, leeway) ==
                   JWT_SUBJECT_MISMATCH);
        FUZZ_CHECK(fzj_verify(tok, len, FZJ_KEY, FZJ_USER, LLONG_MAX, 0) == JWT_EXPIRED);
    }
    free(tok);
    return 0;
}
