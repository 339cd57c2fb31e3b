/* cluster_slot.c -- CRC16 and the key -> hash slot rule (see cluster_slot.h).
 *
 * The CRC is computed bit by bit, straight from its definition: a room's
 * keys are a few dozen bytes and a slot is looked up once per command, so a
 * lookup table would buy nothing worth its 512 bytes.
 */
#include "cluster_slot.h"

#include <string.h>

#define CLUSTER_CRC16_POLY 0x1021

uint16_t cluster_crc16(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint16_t crc = 0;
    size_t i;
    int bit;

    for (i = 0; i < len; i++) {
        /* the next byte enters at the top; each bit that falls off the top
         * folds the polynomial back in */
        crc ^= (uint16_t)(p[i] << 8);
        for (bit = 0; bit < 8; bit++)
            crc =
                (crc & 0x8000) ? (uint16_t)((crc << 1) ^ CLUSTER_CRC16_POLY) : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned cluster_key_slot(const char *key, size_t len)
{
    const char *open = len > 0 ? memchr(key, '{', len) : NULL;

    if (open != NULL) {
        size_t start = (size_t)(open - key) + 1;
        const char *close = memchr(key + start, '}', len - start);

        /* "{}" hashes the whole key: an empty tag would send every such
         * key to one slot */
        if (close != NULL && close > key + start)
            return cluster_crc16(key + start, (size_t)(close - (key + start))) &
                   (CLUSTER_SLOTS - 1);
    }
    return cluster_crc16(key, len) & (CLUSTER_SLOTS - 1);
}
