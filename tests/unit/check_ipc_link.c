/* check_ipc_link.c -- the IPC link over a real socketpair and event loop:
 * frames sent in one loop turn arrive whole and in order, including far
 * more than the socket buffer holds (the EV_WRITE path), and the blocking
 * flush a worker uses at exit writes what is queued. */
#include <check.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_run.h"
#include "ipc.h"
#include "ipc_link.h"

#define MAX_FRAME (64 * 1024)

static struct {
    unsigned got, bad, batches, closed;
} rec;

static void on_msg(struct ipc_link *l, const struct ipc_msg *m, void *arg)
{
    char want[32];

    (void)l;
    (void)arg;
    snprintf(want, sizeof(want), "m%u", rec.got);
    if (m->type != IPC_DELIVER || m->f[0].len != strlen(want) ||
        memcmp(m->f[0].p, want, m->f[0].len) != 0)
        rec.bad++;
    rec.got++;
}

static void on_batch(struct ipc_link *l, void *arg)
{
    (void)l;
    (void)arg;
    rec.batches++;
}

static void on_close(struct ipc_link *l, const char *why, void *arg)
{
    (void)l;
    (void)why;
    (void)arg;
    rec.closed++;
}

/* Send n frames of `pad` bytes each from a to b in one loop turn, then run
 * the loop until b has them all (or a bound is hit). */
static void t_send_and_receive(unsigned n, size_t pad)
{
    struct event_base *base = event_base_new();
    static char payload[MAX_FRAME];
    struct ipc_link *a, *b;
    struct ipc_msg m;
    char name[32];
    int sv[2], i;

    memset(&rec, 0, sizeof(rec));
    memset(payload, 'x', sizeof(payload));
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    a = ipc_link_new(base, sv[0], MAX_FRAME, on_msg, on_batch, on_close, NULL);
    b = ipc_link_new(base, sv[1], MAX_FRAME, on_msg, on_batch, on_close, NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    for (unsigned k = 0; k < n; k++) {
        snprintf(name, sizeof(name), "m%u", k);
        ipc_msg_set(&m, IPC_DELIVER, 0, 0, name, strlen(name), payload, pad, NULL, 0);
        ck_assert_int_eq(ipc_link_send(a, &m), 0);
    }
    ck_assert_uint_gt(ipc_link_pending(a), 0); /* nothing written before the turn ends */
    for (i = 0; i < 100000 && rec.got < n; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    ck_assert_uint_eq(rec.got, n);
    ck_assert_uint_eq(rec.bad, 0);
    ck_assert_uint_eq(rec.closed, 0);
    ck_assert_uint_eq(ipc_link_pending(a), 0);
    ipc_link_free(a);
    ipc_link_free(b);
    event_base_free(base);
}

START_TEST(test_a_turn_of_frames)
{
    t_send_and_receive(100, 10);
}
END_TEST

/* 64 MiB: many times any socket buffer, so most waits for EV_WRITE. */
START_TEST(test_more_than_the_socket_takes)
{
    t_send_and_receive(2048, 32 * 1024);
}
END_TEST

/* A worker's exit: the queue is written without the loop running. */
START_TEST(test_flush_blocking)
{
    struct event_base *base = event_base_new();
    struct ipc_link *a;
    struct ipc_msg m;
    char buf[256];
    int sv[2];
    ssize_t n;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    a = ipc_link_new(base, sv[0], MAX_FRAME, on_msg, on_batch, on_close, NULL);
    ipc_msg_set(&m, IPC_DELIVER, 0, 0, "m0", 2, "bye", 3, NULL, 0);
    ck_assert_int_eq(ipc_link_send(a, &m), 0);
    ck_assert_int_eq(ipc_link_flush_blocking(a, 1000), 0);
    ck_assert_uint_eq(ipc_link_pending(a), 0);
    n = read(sv[1], buf, sizeof(buf));
    ck_assert_int_eq(n, (ssize_t)ipc_encoded_size(&m));
    ipc_link_free(a);
    close(sv[1]);
    event_base_free(base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ipc_link");
    TCase *tc = tcase_create("ipc_link");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_a_turn_of_frames);
    tcase_add_test(tc, test_more_than_the_socket_takes);
    tcase_add_test(tc, test_flush_blocking);
    suite_add_tcase(s, tc);
    return check_run(s);
}
