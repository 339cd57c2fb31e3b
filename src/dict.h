/* dict.h -- a small string-keyed hash table (separate chaining, power-of-two
 * buckets, grows at load factor 1). Keys are not copied: each entry points
 * at a key owned by the caller, which must outlive the entry. */
#ifndef RC_DICT_H
#define RC_DICT_H

#include <stddef.h>

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
};

void dict_init(struct dict *d);
/* Frees the table's memory; the keys and values are the caller's. */
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
