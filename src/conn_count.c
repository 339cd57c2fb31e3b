/* conn_count.c -- see conn_count.h. Rows are written by one process each
 * and read by all: relaxed atomic loads and stores are enough. */
#include "conn_count.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>

struct ccount_row {
    uint32_t total;
    uint32_t ip[CCOUNT_IP_BUCKETS];
};

struct ccount {
    uint32_t rows_used;       /* high-water mark: readers sum rows [0, rows_used) */
    uint8_t in_use[CCOUNT_ROWS]; /* master's bookkeeping */
    struct ccount_row rows[CCOUNT_ROWS];
};

struct ccount *ccount_create(void)
{
    /* pages are only backed once a row is touched */
    void *p = mmap(NULL, sizeof(struct ccount), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

void ccount_destroy(struct ccount *c)
{
    if (c != NULL)
        munmap(c, sizeof(*c));
}

int ccount_row_acquire(struct ccount *c)
{
    int i;

    for (i = 0; i < CCOUNT_ROWS; i++) {
        if (c->in_use[i])
            continue;
        c->in_use[i] = 1;
        memset(&c->rows[i], 0, sizeof(c->rows[i]));
        if ((uint32_t)i >= __atomic_load_n(&c->rows_used, __ATOMIC_RELAXED))
            __atomic_store_n(&c->rows_used, (uint32_t)i + 1, __ATOMIC_RELEASE);
        return i;
    }
    return -1;
}

void ccount_row_release(struct ccount *c, int row)
{
    if (row < 0 || row >= CCOUNT_ROWS)
        return;
    /* the process is dead: nobody else writes this row */
    memset(&c->rows[row], 0, sizeof(c->rows[row]));
    c->in_use[row] = 0;
}

uint32_t ccount_total(const struct ccount *c)
{
    uint32_t i, n = __atomic_load_n(&c->rows_used, __ATOMIC_ACQUIRE), sum = 0;

    for (i = 0; i < n; i++)
        sum += __atomic_load_n(&c->rows[i].total, __ATOMIC_RELAXED);
    return sum;
}

uint32_t ccount_ip(const struct ccount *c, uint32_t bucket)
{
    uint32_t i, n = __atomic_load_n(&c->rows_used, __ATOMIC_ACQUIRE), sum = 0;

    for (i = 0; i < n; i++)
        sum += __atomic_load_n(&c->rows[i].ip[bucket], __ATOMIC_RELAXED);
    return sum;
}

static uint32_t ccount_hash(const uint8_t *p, size_t len)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h ^ (h >> 15);
}

uint32_t ccount_bucket(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)sa;
        return ccount_hash((const uint8_t *)&a->sin_addr, 4) % CCOUNT_IP_BUCKETS;
    }
    if (sa->sa_family == AF_INET6) {
        /* one host usually owns a whole /64 */
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)sa;
        return ccount_hash(a->sin6_addr.s6_addr, 8) % CCOUNT_IP_BUCKETS;
    }
    return 0;
}

void ccount_add(struct ccount *c, int row, uint32_t bucket, int delta)
{
    struct ccount_row *r = &c->rows[row];

    __atomic_store_n(&r->total, r->total + (uint32_t)delta, __ATOMIC_RELAXED);
    __atomic_store_n(&r->ip[bucket], r->ip[bucket] + (uint32_t)delta, __ATOMIC_RELAXED);
}
