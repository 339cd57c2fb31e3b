/* utf8.h -- the one UTF-8 decoder (RFC 3629; Unicode 15, table 3-7).
 *
 * User names, chat texts and anything else that must be well-formed UTF-8
 * go through utf8_decode, so every part of the server agrees on what
 * "valid" means. Pure: no state, no allocation.
 */
#ifndef RC_UTF8_H
#define RC_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_SEQ_MAX 4 /* bytes of the longest sequence */

/* Decode the sequence that starts s[0..len). Returns its length (1 to
 * UTF8_SEQ_MAX) and sets *cp to the code point, or returns 0 (leaving *cp
 * alone) when s does not start with a well-formed sequence: len 0, a stray
 * continuation byte, a lead byte 0xc0, 0xc1 or 0xf5..0xff, an overlong form,
 * a UTF-16 surrogate (U+D800..U+DFFF), a code point above U+10FFFF, or a
 * sequence that len cuts short. */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

#endif
