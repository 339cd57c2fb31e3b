/* ipc_link.c -- libevent glue around the ipc codec.
 *
 * A bufferevent carries the bytes. Each read callback decodes every whole
 * frame in the input buffer (pulling one frame up at a time so fields are
 * contiguous), dispatches it, drains it, and then calls the batch callback
 * once, so the owner can flush everything the batch queued in one go.
 *
 * Writes: what a loop turn sends is written once, at the end of the turn
 * (an activated event, no syscall), straight to the socket. Only what the
 * socket does not take waits for EV_WRITE: the bufferevent's own writing
 * would turn EV_WRITE on and off around every burst, two epoll_ctl calls
 * each time.
 */
#include "ipc_link.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

struct ipc_link {
    struct bufferevent *bev;
    struct event *defer_ev; /* delivers a shutdown's close callback from the loop */
    struct event *flush_ev; /* writes what the loop turn queued */
    size_t max_frame;
    ipc_link_msg_cb on_msg;
    ipc_link_batch_cb on_batch;
    ipc_link_close_cb on_close;
    void *arg;
    const char *why; /* set once the link is over */
};

static void ipc_link_finish(struct ipc_link *l, const char *why)
{
    if (l->why != NULL)
        return;
    l->why = why;
    bufferevent_disable(l->bev, EV_READ | EV_WRITE);
    event_active(l->defer_ev, EV_TIMEOUT, 0);
}

static void ipc_link_defer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ipc_link *l = arg;

    (void)fd;
    (void)what;
    l->on_close(l, l->why, l->arg); /* may free l */
}

static void ipc_link_read_cb(struct bufferevent *bev, void *arg)
{
    struct ipc_link *l = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    int any = 0;

    while (l->why == NULL) {
        size_t avail = evbuffer_get_length(in);
        uint8_t hdr[4];
        size_t need;
        uint8_t *p;
        ssize_t n;
        struct ipc_msg m;

        if (avail < sizeof(hdr))
            break;
        evbuffer_copyout(in, hdr, sizeof(hdr));
        need = ipc_frame_length(hdr);
        if (need > l->max_frame || need < IPC_HEADER_LEN) {
            ipc_link_finish(l, need < IPC_HEADER_LEN ? "malformed frame" : "frame too large");
            break;
        }
        if (avail < need)
            break;
        p = evbuffer_pullup(in, (ev_ssize_t)need);
        if (p == NULL) {
            ipc_link_finish(l, "out of memory");
            break;
        }
        n = ipc_decode(p, need, l->max_frame, &m);
        if (n <= 0) {
            ipc_link_finish(l, n == -IPC_ETOOBIG ? "frame too large" : "malformed frame");
            break;
        }
        l->on_msg(l, &m, l->arg);
        evbuffer_drain(in, (size_t)n);
        any = 1;
    }
    if (any && l->on_batch != NULL && l->why == NULL)
        l->on_batch(l, l->arg);
}

static void ipc_link_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct ipc_link *l = arg;

    (void)bev;
    if (what & BEV_EVENT_EOF)
        ipc_link_finish(l, "connection closed by peer");
    else if (what & BEV_EVENT_ERROR)
        ipc_link_finish(l, "connection error");
}

/* Write what the output holds, as far as the socket takes it. A
 * bufferevent keeps the front of its output frozen for everyone but itself
 * (evbuffer_write would fail): thawed for this write. */
static int ipc_link_write_now(struct ipc_link *l)
{
    struct evbuffer *out = bufferevent_get_output(l->bev);
    int n;

    evbuffer_unfreeze(out, 1);
    n = evbuffer_write(out, bufferevent_getfd(l->bev));
    evbuffer_freeze(out, 1);
    return n;
}

/* End of the loop turn: write what was queued; what the socket does not
 * take goes out when it is writable. */
static void ipc_link_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ipc_link *l = arg;
    struct evbuffer *out = bufferevent_get_output(l->bev);
    int n;

    (void)fd;
    (void)what;
    if (l->why != NULL || evbuffer_get_length(out) == 0 ||
        (bufferevent_get_enabled(l->bev) & EV_WRITE))
        return; /* over, nothing to say, or waiting for the socket already */
    n = ipc_link_write_now(l);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        ipc_link_finish(l, "write failed");
        return;
    }
    if (evbuffer_get_length(out) > 0)
        bufferevent_enable(l->bev, EV_WRITE);
}

/* The socket took everything that waited for it: back to writing at the
 * end of each turn. */
static void ipc_link_drained_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    bufferevent_disable(bev, EV_WRITE);
}

/* Something was queued: have it written at the end of this loop turn. */
static void ipc_link_queued(struct ipc_link *l)
{
    if (!(bufferevent_get_enabled(l->bev) & EV_WRITE))
        event_active(l->flush_ev, EV_TIMEOUT, 0);
}

struct ipc_link *ipc_link_new(struct event_base *base, int fd, size_t max_frame,
                              ipc_link_msg_cb on_msg, ipc_link_batch_cb on_batch,
                              ipc_link_close_cb on_close, void *arg)
{
    struct ipc_link *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return NULL;
    l->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    l->defer_ev = event_new(base, -1, 0, ipc_link_defer_cb, l);
    l->flush_ev = event_new(base, -1, 0, ipc_link_flush_cb, l);
    if (l->bev == NULL || l->defer_ev == NULL || l->flush_ev == NULL) {
        if (l->bev != NULL)
            bufferevent_free(l->bev);
        if (l->defer_ev != NULL)
            event_free(l->defer_ev);
        if (l->flush_ev != NULL)
            event_free(l->flush_ev);
        free(l);
        return NULL;
    }
    l->max_frame = max_frame;
    l->on_msg = on_msg;
    l->on_batch = on_batch;
    l->on_close = on_close;
    l->arg = arg;
    bufferevent_setcb(l->bev, ipc_link_read_cb, ipc_link_drained_cb, ipc_link_event_cb, l);
    /* EV_WRITE (on by default) only while the socket is full */
    bufferevent_disable(l->bev, EV_WRITE);
    bufferevent_enable(l->bev, EV_READ);
    return l;
}

void ipc_link_free(struct ipc_link *l)
{
    if (l == NULL)
        return;
    bufferevent_free(l->bev);
    event_free(l->defer_ev);
    event_free(l->flush_ev);
    free(l);
}

int ipc_link_send(struct ipc_link *l, const struct ipc_msg *m)
{
    struct evbuffer *out = bufferevent_get_output(l->bev);
    size_t need = ipc_encoded_size(m);
    struct evbuffer_iovec v;
    ssize_t n;

    if (l->why != NULL)
        return -1;
    if (evbuffer_reserve_space(out, (ev_ssize_t)need, &v, 1) != 1)
        return -1;
    n = ipc_encode(v.iov_base, v.iov_len, m);
    if (n < 0)
        return -1;
    v.iov_len = (size_t)n;
    if (evbuffer_commit_space(out, &v, 1) != 0)
        return -1;
    ipc_link_queued(l);
    return 0;
}

int ipc_link_send_encoded(struct ipc_link *l, const void *frame, size_t len)
{
    if (l->why != NULL || evbuffer_add(bufferevent_get_output(l->bev), frame, len) != 0)
        return -1;
    ipc_link_queued(l);
    return 0;
}

int ipc_link_flush_blocking(struct ipc_link *l, int timeout_ms)
{
    struct evbuffer *out = bufferevent_get_output(l->bev);
    evutil_socket_t fd = bufferevent_getfd(l->bev);
    struct pollfd pfd = {fd, POLLOUT, 0};

    while (evbuffer_get_length(out) > 0) {
        if (poll(&pfd, 1, timeout_ms) != 1 || ipc_link_write_now(l) <= 0)
            return -1;
    }
    return 0;
}

size_t ipc_link_pending(const struct ipc_link *l)
{
    return evbuffer_get_length(bufferevent_get_output(l->bev));
}

void ipc_link_shutdown(struct ipc_link *l, const char *why)
{
    struct evbuffer *out = bufferevent_get_output(l->bev);

    /* a link that is over writes nothing more: free what it held now, not
     * when the owner gets to ipc_link_free (a worker that fell behind may
     * hold megabytes) */
    evbuffer_drain(out, evbuffer_get_length(out));
    ipc_link_finish(l, why);
}

void *ipc_link_arg(const struct ipc_link *l)
{
    return l->arg;
}
