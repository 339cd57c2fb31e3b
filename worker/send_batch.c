/* send_batch.c -- see send_batch.h. */
#include "send_batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifdef HAVE_LIBURING
#include <liburing.h>

struct send_slot {
    struct msghdr msg;
    void *tag;
    ssize_t res;
};

struct send_batch {
    struct io_uring ring;
    int n, iovs; /* sends queued, iovecs they use */
    struct send_slot slot[SEND_BATCH_MAX];
    struct iovec iov[SEND_BATCH_IOVS];
};

struct send_batch *send_batch_new(void)
{
    struct send_batch *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return NULL;
    /* completions come back to this one thread only */
    if (io_uring_queue_init(SEND_BATCH_MAX, &b->ring, IORING_SETUP_SINGLE_ISSUER) != 0 &&
        io_uring_queue_init(SEND_BATCH_MAX, &b->ring, 0) != 0) {
        free(b);
        return NULL;
    }
    return b;
}

void send_batch_free(struct send_batch *b)
{
    if (b == NULL)
        return;
    io_uring_queue_exit(&b->ring);
    free(b);
}

void send_batch_add(struct send_batch *b, int fd, const struct iovec *iov, int n, void *tag)
{
    struct send_slot *sl = &b->slot[b->n];
    struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);

    sl->tag = tag;
    sl->res = -EINPROGRESS;
    /* MSG_DONTWAIT: a full socket completes with -EAGAIN at once instead
     * of being parked in the kernel; the session then waits for EV_WRITE.
     * One buffer (the common case at low rates) needs no msghdr. */
    if (n == 1) {
        io_uring_prep_send(sqe, fd, iov[0].iov_base, iov[0].iov_len, MSG_DONTWAIT | MSG_NOSIGNAL);
    } else {
        memcpy(b->iov + b->iovs, iov, (size_t)n * sizeof(*iov));
        memset(&sl->msg, 0, sizeof(sl->msg));
        sl->msg.msg_iov = b->iov + b->iovs;
        sl->msg.msg_iovlen = (size_t)n;
        b->iovs += n;
        io_uring_prep_sendmsg(sqe, fd, &sl->msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    io_uring_sqe_set_data(sqe, sl);
    b->n++;
}

int send_batch_full(const struct send_batch *b)
{
    return b->n == SEND_BATCH_MAX || b->iovs > SEND_BATCH_IOVS - SEND_BATCH_IOV;
}

int send_batch_run(struct send_batch *b, void (*done)(void *tag, ssize_t res, void *arg),
                   void *arg)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen;
    int i, rc, got = 0;

    if (b->n == 0)
        return 0;
    do
        rc = io_uring_submit_and_wait(&b->ring, (unsigned)b->n);
    while (rc == -EINTR);
    if (rc < 0) /* nothing was taken (a partial submit is not possible here) */
        return -1;
    for (;;) {
        seen = 0;
        io_uring_for_each_cqe(&b->ring, head, cqe)
        {
            ((struct send_slot *)io_uring_cqe_get_data(cqe))->res = cqe->res;
            seen++;
        }
        io_uring_cq_advance(&b->ring, seen);
        got += (int)seen;
        if (got >= b->n)
            break;
        /* some went asynchronous after all: wait for the rest */
        if (io_uring_wait_cqe(&b->ring, &cqe) != 0)
            break;
    }
    for (i = 0; i < b->n; i++)
        done(b->slot[i].tag, b->slot[i].res, arg);
    b->n = b->iovs = 0;
    return 0;
}

#else /* no liburing at build time: the callers write one by one */

struct send_batch {
    int n, iovs;
};

struct send_batch *send_batch_new(void)
{
    return NULL;
}

void send_batch_free(struct send_batch *b)
{
    (void)b;
}

int send_batch_full(const struct send_batch *b)
{
    (void)b;
    return 1;
}

void send_batch_add(struct send_batch *b, int fd, const struct iovec *iov, int n, void *tag)
{
    (void)b;
    (void)fd;
    (void)iov;
    (void)n;
    (void)tag;
}

int send_batch_run(struct send_batch *b, void (*done)(void *tag, ssize_t res, void *arg),
                   void *arg)
{
    (void)b;
    (void)done;
    (void)arg;
    return -1;
}

#endif

int send_batch_count(const struct send_batch *b)
{
    return b != NULL ? b->n : 0;
}

void send_batch_clear(struct send_batch *b)
{
    if (b != NULL)
        b->n = b->iovs = 0;
}
