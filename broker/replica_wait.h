/* replica_wait.h -- acknowledgements held until enough replicas have the
 * write (redis-wait-replicas), with Redis's WAIT.
 *
 * WAIT answers how many replicas have every write this connection made
 * before it, so one WAIT covers all the writes whose replies were read
 * when it was sent: the writes are batched, one WAIT in flight at a time,
 * and a send's acknowledgement waits at most for two of them.
 */
#ifndef RC_REPLICA_WAIT_H
#define RC_REPLICA_WAIT_H

struct rlink;
struct rwait;

/* replicated: 1 when WAIT counted enough replicas, 0 when fewer answered
 * in time or the command failed (the link broke, or the waiter is freed). */
typedef void (*rwait_done_fn)(int replicated, long long replicas, void *pd);

struct rwait *rwait_new(struct rlink *redis, int replicas, long timeout_ms);
/* Everything still held is answered replicated = 0. */
void rwait_free(struct rwait *w);

/* Hold fn until a WAIT sent after this call answers; call it once the
 * write's own reply has been read. 0, or -1 (out of memory: fn is not
 * called). */
int rwait_add(struct rwait *w, rwait_done_fn fn, void *pd);

#endif
