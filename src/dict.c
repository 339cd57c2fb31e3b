/* dict.c -- see dict.h. */
#include "dict.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define DICT_INITIAL_BUCKETS 16

/* FNV-1a with a random seed would not do: bit k of its hash depends only on
 * bits 0..k of the seed and of the key's bytes, and the low bits pick the
 * bucket, so in a table of up to 128 buckets names that differ only in the
 * top bit of their bytes share a bucket whatever the seed. */
static uint64_t dict_hash(const struct dict *d, const char *key, size_t len)
{
    return siphash24(d->hash_key, key, len);
}

/* getrandom(2) returns 16 bytes at once; it blocks only until the kernel's
 * pool is ready at boot. Should it fail anyway (ENOSYS before Linux 3.17),
 * the clock, the pid and a stack address (ASLR) make a weaker key that an
 * attacker still cannot read. */
static void dict_random_key(uint8_t key[SIPHASH_KEY_LEN])
{
    struct timespec ts;
    uint64_t mix[2];
    ssize_t n;

    do {
        n = getrandom(key, SIPHASH_KEY_LEN, 0);
    } while (n == -1 && errno == EINTR);
    if (n == SIPHASH_KEY_LEN)
        return;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    mix[0] = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    mix[1] = (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)&ts;
    memcpy(key, mix, SIPHASH_KEY_LEN);
}

void dict_init(struct dict *d)
{
    memset(d, 0, sizeof(*d));
    dict_random_key(d->hash_key);
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
    struct dict_entry **pp = &d->buckets[dict_hash(d, key, len) & (d->nbuckets - 1)];

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
            size_t j = dict_hash(d, e->key, e->keylen) & (n - 1);
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
