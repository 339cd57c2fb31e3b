/* cluster_slot.h -- which of Redis Cluster's 16384 hash slots a key lives in.
 *
 * Redis Cluster maps a key to CRC16(key) mod 16384, CRC16 being the XMODEM
 * variant (polynomial 0x1021, initial value 0, no reflection, no final XOR).
 * A hash tag narrows what is hashed: when the key holds a '{' and, somewhere
 * after it, a '}', with at least one byte between the first '{' and the first
 * '}' that follows it, only those bytes are hashed. That is how all of a
 * room's keys (`<channel>:{R}...`, room.h) land in one slot. Pure functions:
 * no state, any bytes (NUL included) allowed.
 */
#ifndef RC_CLUSTER_SLOT_H
#define RC_CLUSTER_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define CLUSTER_SLOTS 16384 /* hash slots of a Redis Cluster: 0..16383 */

/* CRC-16/XMODEM of data[0..len): crc16("123456789") == 0x31C3. */
uint16_t cluster_crc16(const void *data, size_t len);

/* The hash slot (0..CLUSTER_SLOTS - 1) of key[0..len), hash tag applied. */
unsigned cluster_key_slot(const char *key, size_t len);

#endif
