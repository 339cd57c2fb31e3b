/* dict.h -- a small string-keyed hash table (separate chaining, power-of-two
 * buckets, grows at load factor 1). Keys are not copied: each entry points
 * at a key owned by the caller, which must outlive the entry.
 *
 * Keys are often client-chosen names, so they are hashed with SipHash under
 * a random key that each table takes from getrandom(2) in dict_init: a
 * client cannot pick names that share a bucket (hash flooding), and tables
 * made in different processes (or in one) place keys differently. A table
 * made before a fork keeps its key in both processes, as its entries need. */
#ifndef RC_DICT_H
#define RC_DICT_H

#include <stddef.h>
#include <stdint.h>

#include "siphash.h"

struct dict_entry {
    struct dict_entry *next;
    const char *key;
    size_t keylen;
    void *val;
};

struct dict {
    struct dict_entry **buckets;
    size_t nbuckets; /* power of two, 0 before the first insert */
    size_t count;
    uint8_t hash_key[SIPHASH_KEY_LEN]; /* random, set by dict_init */
};

/* An empty table with a fresh random hash key; allocates nothing. */
void dict_init(struct dict *d);
/* Frees the table's memory; the keys and values are the caller's. The table
 * is left empty and usable, as after dict_init. */
void dict_deinit(struct dict *d);

/* Value for key, or NULL. */
void *dict_get(const struct dict *d, const char *key, size_t keylen);

/* Insert; returns 0, 1 if the key was present (nothing changed), -1 ENOMEM. */
int dict_add(struct dict *d, const char *key, size_t keylen, void *val);

/* Remove; returns the removed value or NULL if absent. */
void *dict_del(struct dict *d, const char *key, size_t keylen);

/* Some entry's value, or NULL when empty (for draining a table). */
void *dict_any(const struct dict *d);

/* Call fn for every entry (fn must not modify the dict). */
void dict_foreach(const struct dict *d, void (*fn)(const char *key, size_t keylen, void *val,
                                                    void *arg), void *arg);

#endif
