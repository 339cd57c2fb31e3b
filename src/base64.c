/* base64.c -- see base64.h. Encoding is OpenSSL's (EVP_EncodeBlock, the
 * standard alphabet), mapped to the URL alphabet when asked; decoding is our
 * own, because EVP_DecodeBlock skips blanks, keeps the padding's zero bytes
 * in its count and accepts any trailing bits. */
#include "base64.h"

#include <stdint.h>

#include <openssl/evp.h>

/* Values 62 and 63: the only characters where the alphabets differ. */
static const char base64_62_63[][2] = {
    [BASE64_STD] = {'+', '/'},
    [BASE64_URL] = {'-', '_'},
};

/* Input bytes per EVP_EncodeBlock call: a multiple of 3 (no padding in the
 * middle) that keeps its int lengths far from overflow. */
#define BASE64_ENCODE_CHUNK (3u << 20)

int base64_digit(enum base64_alphabet a, unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (unsigned char)base64_62_63[a][0])
        return 62;
    if (c == (unsigned char)base64_62_63[a][1])
        return 63;
    return -1;
}

size_t base64_encode(enum base64_alphabet a, const void *src, size_t len, char *out)
{
    const unsigned char *in = src;
    size_t n = 0;

    out[0] = '\0';
    while (len > 0) {
        size_t chunk = len < BASE64_ENCODE_CHUNK ? len : BASE64_ENCODE_CHUNK;

        n += (size_t)EVP_EncodeBlock((unsigned char *)out + n, in, (int)chunk);
        in += chunk;
        len -= chunk;
    }
    if (a == BASE64_URL) {
        while (n > 0 && out[n - 1] == '=')
            n--;
        out[n] = '\0';
        for (size_t i = 0; i < n; i++) {
            if (out[i] == base64_62_63[BASE64_STD][0])
                out[i] = base64_62_63[BASE64_URL][0];
            else if (out[i] == base64_62_63[BASE64_STD][1])
                out[i] = base64_62_63[BASE64_URL][1];
        }
    }
    return n;
}

ssize_t base64_decode(enum base64_alphabet a, const char *src, size_t len, void *out, size_t cap)
{
    unsigned char *o = out;
    size_t i, n = 0, rem;
    uint32_t acc = 0;
    int v;

    if (a == BASE64_STD) {
        /* strip one or two '=' of the last group; any other '=' is refused
         * below as a character outside the alphabet */
        if (len % 4 != 0)
            return -1;
        if (len > 0 && src[len - 1] == '=')
            len -= src[len - 2] == '=' ? 2 : 1;
    }
    rem = len % 4;
    if (rem == 1 || len / 4 * 3 + (rem == 0 ? 0 : rem - 1) > cap)
        return -1;
    for (i = 0; i < len; i++) {
        v = base64_digit(a, (unsigned char)src[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            o[n++] = (unsigned char)(acc >> 16);
            o[n++] = (unsigned char)(acc >> 8);
            o[n++] = (unsigned char)acc;
            acc = 0;
        }
    }
    if (rem == 2) { /* 12 bits: 8 used, 4 must be zero */
        if ((acc & 0x0f) != 0)
            return -1;
        o[n++] = (unsigned char)(acc >> 4);
    } else if (rem == 3) { /* 18 bits: 16 used, 2 must be zero */
        if ((acc & 0x03) != 0)
            return -1;
        o[n++] = (unsigned char)(acc >> 10);
        o[n++] = (unsigned char)(acc >> 2);
    }
    return (ssize_t)n;
}
