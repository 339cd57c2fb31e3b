/* base64.h -- base64 (RFC 4648) in the two alphabets the server meets.
 *
 * BASE64_STD (section 4: '+' and '/', '=' padding to a multiple of four) is
 * the encoding of Sec-WebSocket-Key and Sec-WebSocket-Accept; BASE64_URL
 * (section 5: '-' and '_', no padding, as JWS wants in RFC 7515 section 2)
 * is the encoding of JSON Web Token segments. The decoder is strict, so
 * every byte string has exactly one accepted encoding per alphabet. Pure: no
 * state, no allocation.
 */
#ifndef RC_BASE64_H
#define RC_BASE64_H

#include <stddef.h>
#include <sys/types.h>

enum base64_alphabet {
    BASE64_STD = 0,
    BASE64_URL,
};

/* Characters for n bytes in BASE64_STD, padding included (BASE64_URL needs
 * at most as many); add 1 for the NUL base64_encode writes. */
#define BASE64_ENCODED_LEN(n) (((n) + 2) / 3 * 4)

/* Value 0..63 of c in alphabet a, or -1 when c is not one of its 64
 * characters ('=' included). */
int base64_digit(enum base64_alphabet a, unsigned char c);

/* Encode src[0..len) into out, which has room for BASE64_ENCODED_LEN(len) + 1
 * bytes, NUL-terminated. Returns the length written (NUL excluded). */
size_t base64_encode(enum base64_alphabet a, const void *src, size_t len, char *out);

/* Decode src[0..len) into out[0..cap). Returns the decoded length, or -1 for
 * a character outside the alphabet, wrong padding (BASE64_STD: a length that
 * is not a multiple of four, or '=' other than one or two at the end;
 * BASE64_URL: any '=', or a length of 4n+1), non-zero unused bits in the
 * last character, or output over cap. Nothing is written past cap; on -1,
 * out[0..cap) may hold partial output. */
ssize_t base64_decode(enum base64_alphabet a, const char *src, size_t len, void *out, size_t cap);

#endif
