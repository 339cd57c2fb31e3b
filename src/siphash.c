/* siphash.c -- see siphash.h. Written from the paper's description: four
 * 64-bit words of state, two rounds per 8-byte message word, four to
 * finish. */
#include "siphash.h"

#define SIP_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t siphash_le64(const unsigned char *p)
{
    uint64_t x = 0;

    for (int i = 7; i >= 0; i--)
        x = x << 8 | p[i];
    return x;
}

static void siphash_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = SIP_ROTL(v[1], 13);
    v[1] ^= v[0];
    v[0] = SIP_ROTL(v[0], 32);
    v[2] += v[3];
    v[3] = SIP_ROTL(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = SIP_ROTL(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = SIP_ROTL(v[1], 17);
    v[1] ^= v[2];
    v[2] = SIP_ROTL(v[2], 32);
}

/* Compress one message word m (c = 2 rounds). */
static void siphash_word(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    siphash_round(v);
    siphash_round(v);
    v[0] ^= m;
}

uint64_t siphash24(const uint8_t key[SIPHASH_KEY_LEN], const void *in, size_t len)
{
    const unsigned char *p = in;
    uint64_t k0 = siphash_le64(key), k1 = siphash_le64(key + 8);
    /* the initial state: the key XORed with "somepseudorandomlygeneratedbytes" */
    uint64_t v[4] = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
                     k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
    size_t whole = len - len % 8;
    uint64_t last = (uint64_t)len << 56; /* the length's low byte tops the last word */

    for (size_t i = 0; i < whole; i += 8)
        siphash_word(v, siphash_le64(p + i));
    for (size_t i = 0; i < len % 8; i++)
        last |= (uint64_t)p[whole + i] << (8 * i);
    siphash_word(v, last);
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++) /* d = 4 finalization rounds */
        siphash_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}
