/* check_send_batch.c -- io_uring batched sends on real sockets (socket
 * pairs): results come back per send in the order queued, the bytes arrive
 * whole and in order whether a send has one buffer or many, a full socket
 * answers -EAGAIN at once instead of parking the batch, a closed peer
 * answers -EPIPE, and the batch says it is full before its slots or its
 * shared iovec pool run out. Where io_uring is missing (build or kernel),
 * send_batch_new() must say so with NULL, and that is all that is checked. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_run.h"
#include "send_batch.h"

#define MAX_DONE (SEND_BATCH_MAX + 1)

static struct {
    void *tag;
    ssize_t res;
} done_log[MAX_DONE];
static int ndone;

static void on_done(void *tag, ssize_t res, void *arg)
{
    ck_assert_ptr_eq(arg, &ndone);
    ck_assert_int_lt(ndone, MAX_DONE);
    done_log[ndone].tag = tag;
    done_log[ndone].res = res;
    ndone++;
}

/* A non-blocking stream socket pair: sv[0] is sent on, sv[1] read. */
static void pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    ck_assert_int_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
}

/* Read what is waiting on fd (non-blocking) into buf; returns the length. */
static size_t drain(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    ssize_t k;

    while (got < cap && (k = read(fd, buf + got, cap - got)) > 0)
        got += (size_t)k;
    return got;
}

static struct send_batch *batch_or_skip(void)
{
    struct send_batch *b = send_batch_new();

#ifndef HAVE_LIBURING
    ck_assert_ptr_null(b); /* a build without liburing never batches */
#else
    if (b == NULL)
        fprintf(stderr, "note: io_uring not available here (kernel): fallback path only\n");
#endif
    ndone = 0;
    return b;
}

START_TEST(test_one_and_many_buffers)
{
    struct send_batch *b = batch_or_skip();
    int a[2], c[2];
    char buf[64];
    static char hello[] = "hello", abcdef[] = "abcdef";
    struct iovec one = { hello, 5 };
    struct iovec many[3] = { { abcdef, 1 }, { abcdef + 1, 2 }, { abcdef + 3, 3 } };

    if (b == NULL)
        return;
    pair(a);
    pair(c);
    ck_assert_int_eq(send_batch_count(b), 0);
    send_batch_add(b, a[0], &one, 1, &a);
    send_batch_add(b, c[0], many, 3, &c);
    ck_assert_int_eq(send_batch_count(b), 2);
    ck_assert_int_eq(send_batch_run(b, on_done, &ndone), 0);
    ck_assert_int_eq(send_batch_count(b), 0);
    ck_assert_int_eq(ndone, 2);
    ck_assert_ptr_eq(done_log[0].tag, &a);
    ck_assert_int_eq(done_log[0].res, 5);
    ck_assert_ptr_eq(done_log[1].tag, &c);
    ck_assert_int_eq(done_log[1].res, 6);
    ck_assert_uint_eq(drain(a[1], buf, sizeof(buf)), 5);
    ck_assert(memcmp(buf, "hello", 5) == 0);
    ck_assert_uint_eq(drain(c[1], buf, sizeof(buf)), 6);
    ck_assert(memcmp(buf, "abcdef", 6) == 0);
    /* an empty run is no work and no error */
    ck_assert_int_eq(send_batch_run(b, on_done, &ndone), 0);
    ck_assert_int_eq(ndone, 2);
    close(a[0]), close(a[1]), close(c[0]), close(c[1]);
    send_batch_free(b);
}
END_TEST

START_TEST(test_full_socket_and_closed_peer)
{
    struct send_batch *b = batch_or_skip();
    int full[2], gone[2], ok[2];
    static char xyz[] = "xyz";
    char junk[4096], buf[16];
    struct iovec v = { xyz, 3 };

    if (b == NULL)
        return;
    pair(full);
    pair(gone);
    pair(ok);
    memset(junk, 'j', sizeof(junk));
    while (write(full[0], junk, sizeof(junk)) > 0)
        ;
    ck_assert_int_eq(errno, EAGAIN);
    close(gone[1]);
    send_batch_add(b, full[0], &v, 1, &full);
    send_batch_add(b, gone[0], &v, 1, &gone);
    send_batch_add(b, ok[0], &v, 1, &ok);
    ck_assert_int_eq(send_batch_run(b, on_done, &ndone), 0); /* returns: nothing parked */
    ck_assert_int_eq(ndone, 3);
    ck_assert_int_eq(done_log[0].res, -EAGAIN);
    ck_assert_int_eq(done_log[1].res, -EPIPE);
    ck_assert_int_eq(done_log[2].res, 3);
    ck_assert_uint_eq(drain(ok[1], buf, sizeof(buf)), 3);
    close(full[0]), close(full[1]), close(gone[0]), close(ok[0]), close(ok[1]);
    send_batch_free(b);
}
END_TEST

/* Full after SEND_BATCH_MAX single-buffer sends. */
START_TEST(test_full_by_slots)
{
    struct send_batch *b = batch_or_skip();
    int sv[2], i;
    static char s1[] = "s";
    struct iovec v = { s1, 1 };
    char buf[SEND_BATCH_MAX + 1];

    if (b == NULL)
        return;
    pair(sv);
    for (i = 0; i < SEND_BATCH_MAX; i++) {
        ck_assert_int_eq(send_batch_full(b), 0);
        send_batch_add(b, sv[0], &v, 1, NULL);
    }
    ck_assert_int_eq(send_batch_full(b), 1);
    ck_assert_int_eq(send_batch_run(b, on_done, &ndone), 0);
    ck_assert_int_eq(ndone, SEND_BATCH_MAX);
    ck_assert_int_eq(send_batch_full(b), 0);
    ck_assert_uint_eq(drain(sv[1], buf, sizeof(buf)), SEND_BATCH_MAX);
    close(sv[0]), close(sv[1]);
    send_batch_free(b);
}
END_TEST

/* Many-buffer sends share the pool: full once another SEND_BATCH_IOV
 * might not fit, and every send still carries its own bytes (no entry's
 * iovecs overwritten by a later one's). */
START_TEST(test_full_by_iovecs)
{
    enum { PER = SEND_BATCH_IOV, SENDS = SEND_BATCH_IOVS / SEND_BATCH_IOV };
    struct send_batch *b = batch_or_skip();
    static int sv[SENDS][2];
    static char data[SENDS][PER];
    struct iovec iov[PER];
    char buf[PER + 1];
    int i, j;

    if (b == NULL)
        return;
    for (i = 0; i < SENDS; i++) {
        pair(sv[i]);
        for (j = 0; j < PER; j++) {
            data[i][j] = (char)('A' + (i + j) % 26);
            iov[j].iov_base = &data[i][j];
            iov[j].iov_len = 1;
        }
        ck_assert_int_eq(send_batch_full(b), 0);
        send_batch_add(b, sv[i][0], iov, PER, &sv[i]);
    }
    ck_assert_int_eq(send_batch_count(b), SENDS);
    ck_assert_int_lt(SENDS, SEND_BATCH_MAX); /* full by iovecs, not by slots */
    ck_assert_int_eq(send_batch_full(b), 1);
    ck_assert_int_eq(send_batch_run(b, on_done, &ndone), 0);
    ck_assert_int_eq(ndone, SENDS);
    for (i = 0; i < SENDS; i++) {
        ck_assert_ptr_eq(done_log[i].tag, &sv[i]);
        ck_assert_int_eq(done_log[i].res, PER);
        ck_assert_uint_eq(drain(sv[i][1], buf, sizeof(buf)), PER);
        ck_assert_msg(memcmp(buf, data[i], PER) == 0, "send %d carried other bytes", i);
        close(sv[i][0]), close(sv[i][1]);
    }
    send_batch_free(b);
}
END_TEST

START_TEST(test_null_batch_is_the_plain_path)
{
    /* what callers hold without io_uring: NULL counts as empty, and
     * clearing or freeing it is harmless */
    ck_assert_int_eq(send_batch_count(NULL), 0);
    send_batch_clear(NULL);
    send_batch_free(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("send_batch");
    TCase *tc = tcase_create("send_batch");

    tcase_add_test(tc, test_one_and_many_buffers);
    tcase_add_test(tc, test_full_socket_and_closed_peer);
    tcase_add_test(tc, test_full_by_slots);
    tcase_add_test(tc, test_full_by_iovecs);
    tcase_add_test(tc, test_null_batch_is_the_plain_path);
    suite_add_tcase(s, tc);
    return check_run(s);
}
