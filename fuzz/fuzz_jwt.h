/* fuzz_jwt.h -- the input layout of fuzz_jwt, shared with gen_corpus.c.
 *
 * One mode byte, then either a token as a client would send it, or (with
 * FZJ_SIGN) one length byte H, H bytes of header JSON and the rest payload
 * JSON, which the target encodes and signs with FZJ_KEY itself, so that the
 * checks behind the signature get fuzzed as well. The mode's other bits
 * pick the time and the leeway of the verification; the user is FZJ_USER.
 */
#ifndef RC_FUZZ_JWT_H
#define RC_FUZZ_JWT_H

#define FZJ_KEY "fuzz-jwt-key-0123456789abcdef-0123"
#define FZJ_USER "alice"
#define FZJ_NOW 1700000000LL /* seconds since the epoch: November 2023 */

#define FZJ_SIGN 0x01

/* now: bits 1-2 of the mode */
enum fzj_now {
    FZJ_NOW_FIXED = 0, /* FZJ_NOW */
    FZJ_NOW_ZERO,
    FZJ_NOW_MIN, /* LLONG_MIN */
    FZJ_NOW_MAX, /* LLONG_MAX */
};

/* leeway: bits 3-4 of the mode */
enum fzj_leeway {
    FZJ_LEEWAY_ZERO = 0,
    FZJ_LEEWAY_30,       /* 30 s */
    FZJ_LEEWAY_NEGATIVE, /* -5 s, counts as 0 */
    FZJ_LEEWAY_MAX,      /* LONG_MAX */
};

#define FZJ_MODE(sign, now, leeway) ((sign) | (now) << 1 | (leeway) << 3)

#endif
