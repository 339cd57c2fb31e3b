/* jwt.c -- HS256 JSON Web Token verification (see jwt.h).
 *
 * Pure: no I/O, no logging, no global state, no allocation. A token is split
 * at its dots, each segment decoded by a strict base64url decoder into a fixed
 * stack buffer, and the header and payload read by a small strict JSON reader
 * that understands exactly one top-level object: it pulls out the few members
 * we care about (struct jwt_field) and checks the syntax of everything else,
 * skipping nested objects and arrays iteratively with a bounded bracket stack,
 * so hostile input can neither recurse nor run long. The payload is only
 * parsed after its signature verified. Everything is locale-independent.
 */
#include "jwt.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* Largest decoded segment: JWT_TOKEN_MAX base64url characters carry 3 bytes
 * per 4. Decoded strings are never longer than their JSON text. */
#define JWT_DECODED_MAX (JWT_TOKEN_MAX / 4 * 3)
#define JWT_HS256_LEN 32
#define JWT_NAME_MAX 8         /* longest member name we look for, decoded */
#define JWT_HEADER_STR_MAX 16  /* room for "alg" and "typ" values */
#define JWT_EXP10_MAX 1000000L /* exponents beyond this behave the same */

/* What a wanted member held, once seen. */
enum jwt_json_type {
    JWT_JSON_ABSENT = 0,
    JWT_JSON_STRING,
    JWT_JSON_NUMBER,
    JWT_JSON_OTHER, /* true, false, null, object or array */
};

/* A member the caller wants out of the top-level object. Strings are decoded
 * into str[0..cap) (caller's buffer); len is the full decoded length, which
 * may exceed cap (then only the first cap bytes were written). */
struct jwt_field {
    const char *name;
    enum jwt_json_type type;
    char *str;
    size_t cap;
    size_t len;
    long long num;
};

/* Reader over json text [p, end). */
struct jwt_json {
    const unsigned char *p, *end;
};

/* ---- base64url ---------------------------------------------------------- */

static int jwt_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decode base64url src[0..len) (no padding) into out[0..cap). Returns the
 * decoded length, or -1 for a character outside the alphabet ('=' included),
 * a length of 4n+1, non-zero unused bits in the last character (so every
 * byte string has exactly one accepted encoding) or output over cap. */
static long jwt_b64url_decode(const char *src, size_t len, unsigned char *out, size_t cap)
{
    size_t i, n = 0, rem = len % 4;
    uint32_t acc = 0;
    int v;

    if (rem == 1 || len / 4 * 3 + (rem == 0 ? 0 : rem - 1) > cap)
        return -1;
    for (i = 0; i < len; i++) {
        v = jwt_b64_value((unsigned char)src[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[n++] = (unsigned char)(acc >> 16);
            out[n++] = (unsigned char)(acc >> 8);
            out[n++] = (unsigned char)acc;
            acc = 0;
        }
    }
    if (rem == 2) { /* 12 bits: 8 used, 4 must be zero */
        if ((acc & 0x0f) != 0)
            return -1;
        out[n++] = (unsigned char)(acc >> 4);
    } else if (rem == 3) { /* 18 bits: 16 used, 2 must be zero */
        if ((acc & 0x03) != 0)
            return -1;
        out[n++] = (unsigned char)(acc >> 10);
        out[n++] = (unsigned char)(acc >> 2);
    }
    return (long)n;
}

/* ---- JSON reader ---------------------------------------------------------- */

static int jwt_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static void jwt_json_ws(struct jwt_json *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

/* Skip whitespace, then consume c. Returns 0, or -1 when the next byte is not c. */
static int jwt_json_expect(struct jwt_json *r, unsigned char c)
{
    jwt_json_ws(r);
    if (r->p == r->end || *r->p != c)
        return -1;
    r->p++;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (before end), or 0 when it is not
 * one: bad lead or continuation bytes, truncation, overlongs, UTF-16
 * surrogates, code points above U+10FFFF. */
static size_t jwt_utf8_seq(const unsigned char *p, const unsigned char *end)
{
    uint32_t cp, min;
    size_t i, n;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if ((p[0] & 0xf0) == 0xe0)
        n = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4;
    else
        return 0;
    min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    cp = p[0] & (0x7fu >> n); /* the lead byte's payload bits */
    if ((size_t)(end - p) < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Append b[0..n) to out when it still fits in cap; *len always grows. */
static void jwt_put(char *out, size_t cap, size_t *len, const void *b, size_t n)
{
    if (out != NULL && *len <= cap && n <= cap - *len)
        memcpy(out + *len, b, n);
    *len += n;
}

/* Append code point cp (a scalar value, not a surrogate) as UTF-8. */
static void jwt_put_utf8(char *out, size_t cap, size_t *len, uint32_t cp)
{
    size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    uint32_t lead = n == 1 ? 0 : n == 2 ? 0xc0 : n == 3 ? 0xe0 : 0xf0;
    unsigned char b[4];

    b[0] = (unsigned char)(lead | cp >> (6 * (n - 1)));
    for (size_t i = 1; i < n; i++)
        b[i] = (unsigned char)(0x80 | ((cp >> (6 * (n - 1 - i))) & 0x3f));
    jwt_put(out, cap, len, b, n);
}

/* Four hex digits at r->p into *v. Returns 0 or -1. */
static int jwt_json_hex4(struct jwt_json *r, uint32_t *v)
{
    uint32_t x = 0;

    if (r->end - r->p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned char c = r->p[i];
        int d;

        if (jwt_is_digit(c))
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        x = x << 4 | (uint32_t)d;
    }
    r->p += 4;
    *v = x;
    return 0;
}

/* Read the string starting at r->p (which must be '"'). The decoded bytes go
 * to out[0..cap) when out is not NULL, and *lenp gets the full decoded length
 * (see jwt_put). Returns 0, or -1 for a missing quote, a raw control byte, an
 * unknown escape, a lone or reversed \u surrogate, or invalid UTF-8. */
static int jwt_json_string(struct jwt_json *r, char *out, size_t cap, size_t *lenp)
{
    size_t len = 0, n;
    uint32_t cp, lo;
    char c;

    if (r->p == r->end || *r->p != '"')
        return -1;
    r->p++;
    for (;;) {
        if (r->p == r->end || *r->p < 0x20)
            return -1;
        if (*r->p == '"')
            break;
        if (*r->p != '\\') {
            n = jwt_utf8_seq(r->p, r->end);
            if (n == 0)
                return -1;
            jwt_put(out, cap, &len, r->p, n);
            r->p += n;
            continue;
        }
        if (++r->p == r->end)
            return -1;
        switch (*r->p++) {
        case '"': c = '"'; break;
        case '\\': c = '\\'; break;
        case '/': c = '/'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u':
            if (jwt_json_hex4(r, &cp) == -1 || (cp >= 0xdc00 && cp <= 0xdfff))
                return -1;
            if (cp >= 0xd800 && cp <= 0xdbff) { /* high half: a low half must follow */
                if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
                    return -1;
                r->p += 2;
                if (jwt_json_hex4(r, &lo) == -1 || lo < 0xdc00 || lo > 0xdfff)
                    return -1;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            jwt_put_utf8(out, cap, &len, cp);
            continue;
        default: return -1;
        }
        jwt_put(out, cap, &len, &c, 1);
    }
    r->p++;
    *lenp = len;
    return 0;
}

/* Read the number at r->p (JSON grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?)
 * and store its integer part, truncated toward zero and saturated, in *val.
 * Returns 0 or -1. Works on the digit string, so it needs no floating point
 * and no locale, and is exact for any exponent. */
static int jwt_json_number(struct jwt_json *r, long long *val)
{
    const unsigned char *p = r->p, *end = r->end, *ip, *fp = NULL;
    size_t ni, nf = 0;
    long e = 0, pos, k;
    unsigned long long v = 0, limit;
    int neg = 0, eneg = 0;

    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p == end || !jwt_is_digit(*p))
        return -1;
    ip = p;
    if (*p == '0')
        p++;
    else
        while (p < end && jwt_is_digit(*p))
            p++;
    ni = (size_t)(p - ip);
    if (p < end && *p == '.') {
        fp = ++p;
        while (p < end && jwt_is_digit(*p))
            p++;
        nf = (size_t)(p - fp);
        if (nf == 0)
            return -1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p == end || !jwt_is_digit(*p))
            return -1;
        for (; p < end && jwt_is_digit(*p); p++) {
            if (e < JWT_EXP10_MAX)
                e = e * 10 + (*p - '0');
        }
        if (eneg)
            e = -e;
    }
    r->p = p;

    /* The integer part is the first ni + e digits of int||frac, padded with
     * zeros. Once v is non-zero it saturates within 20 more digits, and a
     * zero v stays zero past the real digits, so this loop is short. */
    limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    pos = (long)ni + e;
    for (k = 0; k < pos; k++) {
        unsigned d = 0;

        if ((size_t)k < ni)
            d = ip[k] - '0';
        else if ((size_t)k < ni + nf)
            d = fp[(size_t)k - ni] - '0';
        else if (v == 0)
            break;
        if (v > (limit - d) / 10) {
            v = limit;
            break;
        }
        v = v * 10 + d;
    }
    if (!neg)
        *val = (long long)v;
    else if (v == (unsigned long long)LLONG_MAX + 1)
        *val = LLONG_MIN;
    else
        *val = -(long long)v;
    return 0;
}

/* Consume the literal word w (true, false, null). */
static int jwt_json_word(struct jwt_json *r, const char *w)
{
    size_t n = strlen(w);

    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
        return -1;
    r->p += n;
    return 0;
}

/* Read one scalar value (string, number, true, false, null) and discard it. */
static int jwt_json_skip_scalar(struct jwt_json *r)
{
    long long num;
    size_t len;

    if (r->p == r->end)
        return -1;
    switch (*r->p) {
    case '"': return jwt_json_string(r, NULL, 0, &len);
    case 't': return jwt_json_word(r, "true");
    case 'f': return jwt_json_word(r, "false");
    case 'n': return jwt_json_word(r, "null");
    default: return jwt_json_number(r, &num);
    }
}

/* Skip ":" and the whitespace around it, the separator of a member. */
static int jwt_json_member_sep(struct jwt_json *r)
{
    if (jwt_json_expect(r, ':') == -1)
        return -1;
    jwt_json_ws(r);
    return 0;
}

/* Read and discard one value of any kind, at depth `depth` (1 inside the
 * top-level object). Containers are walked with an explicit stack of open
 * brackets, so nesting costs no C stack; nesting beyond JWT_JSON_DEPTH_MAX
 * fails. Returns 0 or -1. */
static int jwt_json_skip_value(struct jwt_json *r, int depth)
{
    unsigned char open[JWT_JSON_DEPTH_MAX];
    int n = 0; /* open containers on the stack */
    size_t len;

    for (;;) {
        /* a value starts here */
        jwt_json_ws(r);
        if (r->p < r->end && (*r->p == '{' || *r->p == '[')) {
            if (depth + n >= JWT_JSON_DEPTH_MAX)
                return -1;
            open[n++] = *r->p++;
            jwt_json_ws(r);
            if (r->p < r->end && *r->p == (open[n - 1] == '{' ? '}' : ']')) {
                r->p++;
                n--;
            } else {
                if (open[n - 1] == '{' &&
                    (jwt_json_string(r, NULL, 0, &len) == -1 || jwt_json_member_sep(r) == -1))
                    return -1;
                continue;
            }
        } else if (jwt_json_skip_scalar(r) == -1) {
            return -1;
        }
        /* a value ended: close containers until one continues with ',' */
        for (;;) {
            if (n == 0)
                return 0;
            jwt_json_ws(r);
            if (r->p == r->end)
                return -1;
            if (*r->p == (open[n - 1] == '{' ? '}' : ']')) {
                r->p++;
                n--;
                continue;
            }
            if (*r->p != ',')
                return -1;
            r->p++;
            if (open[n - 1] == '{') {
                jwt_json_ws(r);
                if (jwt_json_string(r, NULL, 0, &len) == -1 || jwt_json_member_sep(r) == -1)
                    return -1;
            }
            break;
        }
    }
}

/* Parse json[0..len) as one object and fill the fields whose name matches a
 * member (names compared after decoding escapes). Returns 0, or -1 for any
 * syntax error, trailing bytes, or a field seen twice. */
static int jwt_json_object(const unsigned char *json, size_t len, struct jwt_field *fields,
                           size_t nfields)
{
    struct jwt_json r = {json, json + len};
    char name[JWT_NAME_MAX];
    size_t namelen, i;
    struct jwt_field *f;

    if (jwt_json_expect(&r, '{') == -1)
        return -1;
    jwt_json_ws(&r);
    if (r.p < r.end && *r.p == '}') {
        r.p++;
    } else {
        for (;;) {
            jwt_json_ws(&r);
            if (jwt_json_string(&r, name, sizeof(name), &namelen) == -1 ||
                jwt_json_member_sep(&r) == -1)
                return -1;
            f = NULL;
            for (i = 0; i < nfields && f == NULL; i++) {
                if (namelen == strlen(fields[i].name) && memcmp(name, fields[i].name, namelen) == 0)
                    f = &fields[i];
            }
            if (f == NULL) {
                if (jwt_json_skip_value(&r, 1) == -1)
                    return -1;
            } else if (f->type != JWT_JSON_ABSENT) {
                return -1;
            } else if (r.p < r.end && *r.p == '"') {
                if (jwt_json_string(&r, f->str, f->cap, &f->len) == -1)
                    return -1;
                f->type = JWT_JSON_STRING;
            } else if (r.p < r.end && (*r.p == '-' || jwt_is_digit(*r.p))) {
                if (jwt_json_number(&r, &f->num) == -1)
                    return -1;
                f->type = JWT_JSON_NUMBER;
            } else {
                if (jwt_json_skip_value(&r, 1) == -1)
                    return -1;
                f->type = JWT_JSON_OTHER;
            }
            jwt_json_ws(&r);
            if (r.p < r.end && *r.p == ',') {
                r.p++;
                continue;
            }
            if (jwt_json_expect(&r, '}') == -1)
                return -1;
            break;
        }
    }
    jwt_json_ws(&r);
    return r.p == r.end ? 0 : -1;
}

/* ---- verification ---------------------------------------------------------- */

/* A string field equal to s. */
static int jwt_field_is(const struct jwt_field *f, const char *s)
{
    size_t n = strlen(s);

    return f->type == JWT_JSON_STRING && f->len == n && f->len <= f->cap &&
           memcmp(f->str, s, n) == 0;
}

/* Header checks on the encoded header seg[0..len). */
static enum jwt_result jwt_check_header(const char *seg, size_t len)
{
    unsigned char json[JWT_DECODED_MAX];
    char alg[JWT_HEADER_STR_MAX], typ[JWT_HEADER_STR_MAX];
    struct jwt_field h[] = {
        {"alg", JWT_JSON_ABSENT, alg, sizeof(alg), 0, 0},
        {"typ", JWT_JSON_ABSENT, typ, sizeof(typ), 0, 0},
        {"crit", JWT_JSON_ABSENT, NULL, 0, 0, 0},
    };
    long n = jwt_b64url_decode(seg, len, json, sizeof(json));

    if (n < 0 || jwt_json_object(json, (size_t)n, h, 3) == -1)
        return JWT_MALFORMED;
    if (!jwt_field_is(&h[0], "HS256"))
        return JWT_BAD_ALG;
    if ((h[1].type != JWT_JSON_ABSENT && !jwt_field_is(&h[1], "JWT")) ||
        h[2].type != JWT_JSON_ABSENT)
        return JWT_MALFORMED;
    return JWT_OK;
}

/* Signature checks: sig[0..siglen) against HMAC-SHA256(key, input[0..inlen)). */
static enum jwt_result jwt_check_signature(const char *input, size_t inlen, const char *sig,
                                           size_t siglen, const void *key, size_t keylen)
{
    const unsigned char *in = (const unsigned char *)input;
    unsigned char want[EVP_MAX_MD_SIZE], got[JWT_DECODED_MAX];
    unsigned int wantlen = 0;
    long n;

    if (siglen == 0)
        return JWT_MALFORMED;
    n = jwt_b64url_decode(sig, siglen, got, sizeof(got));
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

/* Payload checks, after the signature verified. */
static enum jwt_result jwt_check_claims(const char *seg, size_t len, const char *user,
                                        size_t userlen, long long now, long long leeway)
{
    unsigned char json[JWT_DECODED_MAX];
    char sub[JWT_DECODED_MAX];
    struct jwt_field c[] = {
        {"sub", JWT_JSON_ABSENT, sub, sizeof(sub), 0, 0},
        {"exp", JWT_JSON_ABSENT, NULL, 0, 0, 0},
        {"nbf", JWT_JSON_ABSENT, NULL, 0, 0, 0},
    };
    long n = jwt_b64url_decode(seg, len, json, sizeof(json));

    if (n < 0 || jwt_json_object(json, (size_t)n, c, 3) == -1)
        return JWT_MALFORMED;
    if ((c[0].type != JWT_JSON_ABSENT && c[0].type != JWT_JSON_STRING) ||
        (c[1].type != JWT_JSON_ABSENT && c[1].type != JWT_JSON_NUMBER) ||
        (c[2].type != JWT_JSON_ABSENT && c[2].type != JWT_JSON_NUMBER))
        return JWT_MALFORMED;
    if (c[0].type == JWT_JSON_ABSENT || c[0].len == 0)
        return JWT_NO_SUBJECT;
    if (c[1].type == JWT_JSON_ABSENT)
        return JWT_NO_EXPIRY;
    /* sub is never longer than the payload text, so it always fit in sub[] */
    if (c[0].len != userlen || c[0].len > c[0].cap || memcmp(sub, user, userlen) != 0)
        return JWT_SUBJECT_MISMATCH;
    if (jwt_is_expired(now, c[1].num, leeway))
        return JWT_EXPIRED;
    if (c[2].type == JWT_JSON_NUMBER && jwt_is_early(now, c[2].num, leeway))
        return JWT_NOT_YET_VALID;
    return JWT_OK;
}

enum jwt_result jwt_verify_hs256(const char *token, size_t len, const void *key, size_t keylen,
                                 const char *user, size_t userlen, long long now, long leeway_s)
{
    const char *dot1, *dot2;
    size_t hlen, plen, slen;
    enum jwt_result res;

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
    if (user == NULL)
        userlen = 0;
    return jwt_check_claims(dot1 + 1, plen, user, userlen, now, leeway_s < 0 ? 0 : leeway_s);
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
        } else if (jwt_b64_value((unsigned char)s[i]) < 0) {
            return 0;
        } else {
            seglen++;
        }
    }
    return dots == 2 && seglen > 0;
}
