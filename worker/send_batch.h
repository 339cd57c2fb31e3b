/* send_batch.h -- many sockets' writes in one system call.
 *
 * After a broadcast every joined session has a frame to write, and at low
 * rates nothing else: one writev() per recipient, each paying the system
 * call's entry and exit. A batch hands the kernel up to SEND_BATCH_MAX
 * sendmsg()s at once through io_uring, non-blocking (a full socket answers
 * -EAGAIN as writev would). Without io_uring (an old kernel, a build
 * without liburing, or io_uring disabled by the administrator)
 * send_batch_new() returns NULL and the caller writes one by one. */
#ifndef RC_SEND_BATCH_H
#define RC_SEND_BATCH_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#define SEND_BATCH_MAX 256  /* sends per system call */
#define SEND_BATCH_IOV 64   /* iovecs per send; more go the plain way */
#define SEND_BATCH_IOVS 4096 /* iovecs per batch, shared by its sends */

struct send_batch;

struct send_batch *send_batch_new(void);
void send_batch_free(struct send_batch *b);

/* Number of sends queued. */
int send_batch_count(const struct send_batch *b);

/* 1 when the batch cannot take another send of SEND_BATCH_IOV iovecs:
 * run it first. */
int send_batch_full(const struct send_batch *b);

/* Queue a send of iov[0..n) (n <= SEND_BATCH_IOV; copied) on fd; tag
 * comes back with its result. The batch must not be full. */
void send_batch_add(struct send_batch *b, int fd, const struct iovec *iov, int n, void *tag);

/* Send everything queued and call done(tag, result, arg) for each send in
 * the order queued (result: bytes written or -errno). Returns 0, or -1
 * when the batch could not be handed to the kernel at all: then nothing
 * was sent, done() was not called and the queue is kept until
 * send_batch_clear(). */
int send_batch_run(struct send_batch *b, void (*done)(void *tag, ssize_t res, void *arg),
                   void *arg);

/* Empty the queue (after a failed run). */
void send_batch_clear(struct send_batch *b);

#endif
