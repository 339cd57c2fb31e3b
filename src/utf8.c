/* utf8.c -- see utf8.h. */
#include "utf8.h"

/* Table 3-7 restricts the second byte after four lead bytes; the range
 * checks there rule out overlongs, surrogates and code points above
 * U+10FFFF without decoding first. */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    size_t need;
    uint32_t v;

    if (len == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        need = 2;
        v = s[0] & 0x1fu;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        need = 3;
        v = s[0] & 0x0fu;
        if (s[0] == 0xe0)
            lo = 0xa0; /* overlong below U+0800 */
        else if (s[0] == 0xed)
            hi = 0x9f; /* surrogates U+D800..U+DFFF */
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        need = 4;
        v = s[0] & 0x07u;
        if (s[0] == 0xf0)
            lo = 0x90; /* overlong below U+10000 */
        else if (s[0] == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0; /* 0x80..0xc1 (continuation, overlong lead), 0xf5..0xff */
    }
    if (len < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if (i > 1 && (s[i] < 0x80 || s[i] > 0xbf))
            return 0;
        v = v << 6 | (s[i] & 0x3fu);
    }
    *cp = v;
    return need;
}
