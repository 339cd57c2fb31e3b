/* check_dict.c -- unit tests for src/dict.c and its hash, src/siphash.c.
 *
 * The table: add, get, del, foreach and any over one key and over many
 * (chains of colliding keys included). The hash: SipHash-2-4 against the
 * paper's test vectors, a random key per table and per process, and a
 * family of names that a seeded FNV-1a would put in one bucket.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "dict.h"
#include "siphash.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MANY 20000
#define ORDER_KEYS 64

static char names[MANY][16];

/* names[i] = "user<i>"; the value stored for it is &names[i]. */
static void fill_names(void)
{
    for (size_t i = 0; i < MANY; i++)
        snprintf(names[i], sizeof(names[i]), "user%zu", i);
}

static size_t name_index(const void *val)
{
    return (size_t)((const char(*)[16])val - names);
}

/* Longest chain of the table: its worst lookup. */
static size_t longest_chain(const struct dict *d)
{
    size_t best = 0;

    for (size_t i = 0; i < d->nbuckets; i++) {
        size_t n = 0;

        for (const struct dict_entry *e = d->buckets[i]; e != NULL; e = e->next)
            n++;
        if (n > best)
            best = n;
    }
    return best;
}

/* ---- the table ------------------------------------------------------------- */

static void count_cb(const char *key, size_t keylen, void *val, void *arg)
{
    (*(size_t *)arg)++;
}

START_TEST(test_dict_basic)
{
    static const char k_nul[] = "\0nul"; /* a key with a NUL byte, 4 bytes */
    static char a[] = "alice", ab[] = "alicebob", empty[] = "", v_nul[] = "nul";
    struct dict d;
    size_t n = 0;

    dict_init(&d);
    /* empty: nothing to find, nothing to remove, nothing to visit */
    ck_assert_ptr_null(dict_get(&d, "alice", 5));
    ck_assert_ptr_null(dict_del(&d, "alice", 5));
    ck_assert_ptr_null(dict_any(&d));
    dict_foreach(&d, count_cb, &n);
    ck_assert_uint_eq(n, 0);

    ck_assert_int_eq(dict_add(&d, a, 5, a), 0);
    ck_assert_int_eq(dict_add(&d, ab, 8, ab), 0);
    ck_assert_int_eq(dict_add(&d, k_nul, 4, v_nul), 0);
    ck_assert_int_eq(dict_add(&d, empty, 0, empty), 0);
    /* a key already there: 1, and the first value stays */
    ck_assert_int_eq(dict_add(&d, "alice", 5, ab), 1);
    ck_assert_uint_eq(d.count, 4);
    ck_assert_ptr_eq(dict_get(&d, "alice", 5), a);
    /* keys are bytes with a length: prefixes and NULs are other keys */
    ck_assert_ptr_eq(dict_get(&d, "alicebob", 8), ab);
    ck_assert_ptr_null(dict_get(&d, "alic", 4));
    ck_assert_ptr_null(dict_get(&d, "alicebob", 6));
    ck_assert_ptr_eq(dict_get(&d, "\0nul", 4), v_nul);
    ck_assert_ptr_null(dict_get(&d, "\0nu", 3));
    ck_assert_ptr_eq(dict_get(&d, "", 0), empty);
    dict_foreach(&d, count_cb, &n);
    ck_assert_uint_eq(n, 4);

    ck_assert_ptr_eq(dict_del(&d, "alice", 5), a);
    ck_assert_ptr_null(dict_del(&d, "alice", 5));
    ck_assert_ptr_null(dict_get(&d, "alice", 5));
    ck_assert_ptr_eq(dict_get(&d, "alicebob", 8), ab);
    ck_assert_uint_eq(d.count, 3);
    /* drained through dict_any */
    for (void *v; (v = dict_any(&d)) != NULL;) {
        const char *key = v == v_nul ? k_nul : v;
        size_t len = v == v_nul ? 4 : strlen(v);

        ck_assert_ptr_eq(dict_del(&d, key, len), v);
    }
    ck_assert_uint_eq(d.count, 0);
    dict_deinit(&d);
    /* usable again after deinit, as after init */
    ck_assert_int_eq(dict_add(&d, a, 5, a), 0);
    ck_assert_ptr_eq(dict_get(&d, "alice", 5), a);
    dict_deinit(&d);
}
END_TEST

static void mark_cb(const char *key, size_t keylen, void *val, void *arg)
{
    unsigned char *seen = arg;
    size_t i = name_index(val);

    ck_assert_uint_lt(i, MANY);
    ck_assert(keylen == strlen(names[i]) && memcmp(key, names[i], keylen) == 0);
    seen[i]++;
}

/* Every name i with present(i) is found, every other one is not, and
 * foreach visits each present one exactly once. */
static void check_contents(const struct dict *d, int (*present)(size_t))
{
    static unsigned char seen[MANY];
    size_t want = 0;

    for (size_t i = 0; i < MANY; i++) {
        void *v = dict_get(d, names[i], strlen(names[i]));

        if (present(i) ? v != names[i] : v != NULL)
            ck_abort_msg("%s: %p", names[i], v);
        want += present(i) != 0;
    }
    ck_assert_uint_eq(d->count, want);
    memset(seen, 0, sizeof(seen));
    dict_foreach(d, mark_cb, seen);
    for (size_t i = 0; i < MANY; i++) {
        if (seen[i] != (present(i) ? 1 : 0))
            ck_abort_msg("%s visited %u times", names[i], seen[i]);
    }
}

static int all(size_t i)
{
    (void)i;
    return 1;
}

static int not_third(size_t i)
{
    return i % 3 != 0;
}

START_TEST(test_dict_many)
{
    struct dict d;

    fill_names();
    dict_init(&d);
    for (size_t i = 0; i < MANY; i++) {
        if (dict_add(&d, names[i], strlen(names[i]), names[i]) != 0)
            ck_abort_msg("add %s", names[i]);
    }
    /* grown past the count, and keys do share buckets */
    ck_assert_uint_ge(d.nbuckets, MANY);
    ck_assert_uint_ge(longest_chain(&d), 2);
    check_contents(&d, all);
    /* removing a third takes entries from the heads, middles and ends of chains */
    for (size_t i = 0; i < MANY; i += 3)
        ck_assert_ptr_eq(dict_del(&d, names[i], strlen(names[i])), names[i]);
    check_contents(&d, not_third);
    for (size_t i = 0; i < MANY; i += 3)
        ck_assert_int_eq(dict_add(&d, names[i], strlen(names[i]), names[i]), 0);
    check_contents(&d, all);
    for (void *v; (v = dict_any(&d)) != NULL;)
        ck_assert_ptr_eq(dict_del(&d, v, strlen(v)), v);
    ck_assert_uint_eq(d.count, 0);
    dict_deinit(&d);
}
END_TEST

/* ---- the hash -------------------------------------------------------------- */

/* SipHash-2-4 with the key 00 01 .. 0f over the messages 00 01 .. (n-1):
 * the paper's appendix (the same figures come from `openssl mac -macopt
 * hexkey:000102030405060708090a0b0c0d0e0f -macopt size:8 SIPHASH`, which
 * prints the bytes little-endian). */
START_TEST(test_siphash_vectors)
{
    static const struct {
        size_t len;
        uint64_t want;
    } vec[] = {
        {0, 0x726fdb47dd0e0e31ULL},
        {1, 0x74f839c593dc67fdULL},
        {7, 0xab0200f58b01d137ULL},
        {8, 0x93f5f5799a932462ULL},
        {9, 0x9e0082df0ba9e4b0ULL},
        {15, 0xa129ca6149be45e5ULL},
        {16, 0x3f2acc7f57c29bdbULL},
    };
    uint8_t key[SIPHASH_KEY_LEN], msg[16];

    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    for (size_t i = 0; i < NELEM(vec); i++)
        ck_assert_msg(siphash24(key, msg, vec[i].len) == vec[i].want, "length %zu", vec[i].len);
    /* another key, another hash */
    key[15] ^= 1;
    ck_assert(siphash24(key, msg, 15) != 0xa129ca6149be45e5ULL);
}
END_TEST

static void order_cb(const char *key, size_t keylen, void *val, void *arg)
{
    uint16_t **out = arg;

    *(*out)++ = (uint16_t)name_index(val);
}

/* The order in which a fresh table visits names[0..ORDER_KEYS): the bucket
 * of each name, so the hash, decides it. */
static void visit_order(uint16_t order[ORDER_KEYS])
{
    struct dict d;
    uint16_t *p = order;

    dict_init(&d);
    for (size_t i = 0; i < ORDER_KEYS; i++)
        ck_assert_int_eq(dict_add(&d, names[i], strlen(names[i]), names[i]), 0);
    dict_foreach(&d, order_cb, &p);
    ck_assert_int_eq(p - order, ORDER_KEYS);
    dict_deinit(&d);
}

START_TEST(test_dict_key_per_table)
{
    uint16_t a[ORDER_KEYS], b[ORDER_KEYS];
    struct dict d1, d2;

    fill_names();
    dict_init(&d1);
    dict_init(&d2);
    ck_assert(memcmp(d1.hash_key, d2.hash_key, SIPHASH_KEY_LEN) != 0);
    /* the same name hashes apart under the two keys */
    ck_assert(siphash24(d1.hash_key, "alice", 5) != siphash24(d2.hash_key, "alice", 5));
    dict_deinit(&d1);
    dict_deinit(&d2);
    /* and the same names land in other buckets: another visiting order
     * (the same order of 64 names by chance: about 1 in 10^80) */
    visit_order(a);
    visit_order(b);
    ck_assert(memcmp(a, b, sizeof(a)) != 0);
}
END_TEST

/* A forked child makes its own key: its tables place names apart from the
 * parent's, while a table made before the fork keeps working in the child. */
START_TEST(test_dict_key_per_process)
{
    uint16_t mine[ORDER_KEYS], theirs[ORDER_KEYS];
    struct dict before;
    int fds[2], status;
    pid_t pid;

    fill_names();
    dict_init(&before);
    for (size_t i = 0; i < ORDER_KEYS; i++)
        ck_assert_int_eq(dict_add(&before, names[i], strlen(names[i]), names[i]), 0);
    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ne(pid, -1);
    if (pid == 0) {
        int ok = 1;

        for (size_t i = 0; i < ORDER_KEYS; i++)
            ok &= dict_get(&before, names[i], strlen(names[i])) == names[i];
        visit_order(theirs);
        _exit(ok && write(fds[1], theirs, sizeof(theirs)) == (ssize_t)sizeof(theirs) ? 0 : 1);
    }
    close(fds[1]);
    ck_assert_int_eq(read(fds[0], theirs, sizeof(theirs)), (ssize_t)sizeof(theirs));
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    visit_order(mine);
    ck_assert(memcmp(mine, theirs, sizeof(mine)) != 0);
    dict_deinit(&before);
}
END_TEST

/* 256 names that differ only in the top bit of their 8 bytes. Bit k of an
 * FNV-1a hash depends only on bits 0..k of the seed and of the bytes, so
 * seeded FNV-1a gives them all the same low 7 bits: with 256 buckets, all
 * 256 in two chains, whatever the seed. A keyed hash spreads them like any
 * other names. */
START_TEST(test_dict_flood_family)
{
    static char keys[256][8];
    struct dict d;

    dict_init(&d);
    for (unsigned k = 0; k < 256; k++) {
        for (unsigned j = 0; j < 8; j++)
            keys[k][j] = (char)('a' + j + (k >> j & 1 ? 0x80 : 0));
        ck_assert_int_eq(dict_add(&d, keys[k], 8, keys[k]), 0);
    }
    ck_assert_uint_eq(d.nbuckets, 256);
    /* 16 or more in one of 256 buckets by chance: below 1 in 10^9 */
    ck_assert_uint_lt(longest_chain(&d), 16);
    for (unsigned k = 0; k < 256; k++)
        ck_assert_ptr_eq(dict_get(&d, keys[k], 8), keys[k]);
    dict_deinit(&d);
}
END_TEST

static Suite *dict_suite(void)
{
    Suite *s = suite_create("dict");
    TCase *tc = tcase_create("table");

    tcase_add_test(tc, test_dict_basic);
    tcase_add_test(tc, test_dict_many);
    suite_add_tcase(s, tc);
    tc = tcase_create("hash");
    tcase_add_test(tc, test_siphash_vectors);
    tcase_add_test(tc, test_dict_key_per_table);
    tcase_add_test(tc, test_dict_key_per_process);
    tcase_add_test(tc, test_dict_flood_family);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(dict_suite());
}
