/* dict.c -- see dict.h. FNV-1a hashing: names are short. */
#include "dict.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DICT_INITIAL_BUCKETS 16

static uint64_t dict_hash(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void dict_init(struct dict *d)
{
    memset(d, 0, sizeof(*d));
}

void dict_deinit(struct dict *d)
{
    size_t i;

    for (i = 0; i < d->nbuckets; i++) {
        struct dict_entry *e = d->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(d->buckets);
    dict_init(d);
}

static struct dict_entry **dict_slot(const struct dict *d, const char *key, size_t len)
{
    struct dict_entry **pp = &d->buckets[dict_hash(key, len) & (d->nbuckets - 1)];

    for (; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->keylen == len && memcmp((*pp)->key, key, len) == 0)
            break;
    return pp;
}

void *dict_get(const struct dict *d, const char *key, size_t keylen)
{
    struct dict_entry **pp;

    if (d->nbuckets == 0)
        return NULL;
    pp = dict_slot(d, key, keylen);
    return *pp ? (*pp)->val : NULL;
}

static int dict_grow(struct dict *d)
{
    size_t n = d->nbuckets ? d->nbuckets * 2 : DICT_INITIAL_BUCKETS, i;
    struct dict_entry **b = calloc(n, sizeof(*b));

    if (b == NULL)
        return -1;
    for (i = 0; i < d->nbuckets; i++) {
        struct dict_entry *e = d->buckets[i], *next;
        for (; e != NULL; e = next) {
            size_t j = dict_hash(e->key, e->keylen) & (n - 1);
            next = e->next;
            e->next = b[j];
            b[j] = e;
        }
    }
    free(d->buckets);
    d->buckets = b;
    d->nbuckets = n;
    return 0;
}

int dict_add(struct dict *d, const char *key, size_t keylen, void *val)
{
    struct dict_entry **pp, *e;

    if (d->count >= d->nbuckets && dict_grow(d) == -1)
        return -1;
    pp = dict_slot(d, key, keylen);
    if (*pp != NULL)
        return 1;
    e = malloc(sizeof(*e));
    if (e == NULL)
        return -1;
    e->next = NULL;
    e->key = key;
    e->keylen = keylen;
    e->val = val;
    *pp = e;
    d->count++;
    return 0;
}

void *dict_del(struct dict *d, const char *key, size_t keylen)
{
    struct dict_entry **pp, *e;
    void *val;

    if (d->nbuckets == 0)
        return NULL;
    pp = dict_slot(d, key, keylen);
    e = *pp;
    if (e == NULL)
        return NULL;
    *pp = e->next;
    val = e->val;
    free(e);
    d->count--;
    return val;
}

void dict_foreach(const struct dict *d, void (*fn)(const char *key, size_t keylen, void *val,
                                                    void *arg), void *arg)
{
    size_t i;

    for (i = 0; i < d->nbuckets; i++) {
        const struct dict_entry *e;
        for (e = d->buckets[i]; e != NULL; e = e->next)
            fn(e->key, e->keylen, e->val, arg);
    }
}

void *dict_any(const struct dict *d)
{
    size_t i;

    for (i = 0; i < d->nbuckets && d->count > 0; i++)
        if (d->buckets[i] != NULL)
            return d->buckets[i]->val;
    return NULL;
}
