/* conn_count.h -- connection counts shared by every worker of an instance.
 *
 * max-connections and max-connections-per-ip are instance-wide, but each
 * worker accepts on its own socket. The master maps one shared table before
 * forking: a row per live worker process, which only that process writes.
 * A reader sums the rows. When a worker dies, the master zeroes its row, so
 * a crash never leaks counts. Client addresses are hashed into buckets:
 * two addresses in one bucket share a limit, which only ever errs strict.
 */
#ifndef RC_CONN_COUNT_H
#define RC_CONN_COUNT_H

#include <stdint.h>
#include <sys/socket.h>

#define CCOUNT_ROWS 512          /* worker processes alive at once (reloads overlap) */
#define CCOUNT_IP_BUCKETS 4096

struct ccount;

/* Master, before forking: a zeroed shared mapping. NULL on failure. */
struct ccount *ccount_create(void);
void ccount_destroy(struct ccount *c);

/* Master: a free row for a new worker process (-1 if none), and giving a
 * dead process's row back (zeroed). */
int ccount_row_acquire(struct ccount *c);
void ccount_row_release(struct ccount *c, int row);

/* Worker: connections open in the whole instance, and from one bucket. */
uint32_t ccount_total(const struct ccount *c);
uint32_t ccount_ip(const struct ccount *c, uint32_t bucket);

/* Bucket of a client address (IPv4, or IPv6 by its /64 prefix). */
uint32_t ccount_bucket(const struct sockaddr *sa);

/* Worker: count a connection in (+1) or out (-1) in its own row. */
void ccount_add(struct ccount *c, int row, uint32_t bucket, int delta);

#endif
