/* siphash.h -- SipHash-2-4, a keyed hash for hash tables whose keys come
 * from clients (J.-P. Aumasson, D. J. Bernstein: "SipHash: a fast
 * short-input PRF", 2012).
 *
 * Without the key, nobody can pick keys that collide, so a client cannot
 * turn a table into a list (hash flooding). Pure: no state, no allocation.
 */
#ifndef RC_SIPHASH_H
#define RC_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN 16

/* SipHash-2-4 of in[0..len) under key; bytes are read little-endian, as in
 * the paper, so the result is the same on every host. */
uint64_t siphash24(const uint8_t key[SIPHASH_KEY_LEN], const void *in, size_t len);

#endif
