/* ws_write.c -- see ws_write.h. */
#include "ws_write.h"

#include <errno.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bcast_log.h"
#include "send_batch.h"
#include "ws_deflate.h"
#include "ws_frame.h"

size_t ws_out_deflate_threshold = 256;

/* The bytes of a stream frame this output sends. */
static struct ws_frame *ws_out_variant(const struct ws_out *o, struct ws_frame *f)
{
    return o->deflate ? ws_deflate_frame(f, ws_out_deflate_threshold) : f;
}

int ws_out_add(struct ws_out *o, const void *data, size_t len)
{
    if (o->own == NULL && (o->own = evbuffer_new()) == NULL)
        return -1;
    return evbuffer_add(o->own, data, len);
}

int ws_out_add_static(struct ws_out *o, const void *data, size_t len)
{
    if (o->own == NULL && (o->own = evbuffer_new()) == NULL)
        return -1;
    return evbuffer_add_reference(o->own, data, len, NULL, NULL);
}

size_t ws_out_own_len(const struct ws_out *o)
{
    return o->own != NULL ? evbuffer_get_length(o->own) : 0;
}

uint64_t ws_out_behind(const struct ws_out *o)
{
    return o->cur != NULL ? o->log->end - o->cur->pos - o->cur_off : 0;
}

int ws_out_stream_pending(const struct ws_out *o)
{
    return o->cur != NULL && o->cur->frame != NULL;
}

void ws_out_subscribe(struct ws_out *o, struct bcast_log *log)
{
    if (o->cur == NULL) {
        o->cur = bcast_subscribe(log);
        o->log = log;
        bcast_reader_add(log, &o->reader);
    }
}

static void ws_out_frame_cleanup(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    ws_frame_unref(arg);
}

int ws_out_add_frame(struct ws_out *o, struct ws_frame *f)
{
    if (o->own == NULL && (o->own = evbuffer_new()) == NULL)
        return -1;
    ws_frame_ref(f);
    if (evbuffer_add_reference(o->own, f->data, f->len, ws_out_frame_cleanup, f) != 0) {
        ws_frame_unref(f);
        return -1;
    }
    return 0;
}

int ws_out_unsubscribe(struct ws_out *o, int keep)
{
    struct bcast_node *n = o->cur;
    struct evbuffer *tmp = NULL;
    uint32_t off = o->cur_off;
    int rc = 0;

    if (n == NULL)
        return 0;
    if (keep && o->own == NULL && (o->own = evbuffer_new()) == NULL)
        keep = 0, rc = -1;
    if (keep && off > 0 && (tmp = evbuffer_new()) == NULL) /* mid-frame: the rest goes first */
        keep = 0, rc = -1;
    for (; keep && n->frame != NULL; n = n->next, off = 0) {
        struct ws_frame *f = ws_out_variant(o, n->frame);
        if (n->sender == o->self)
            continue;
        ws_frame_ref(f);
        if (evbuffer_add_reference(tmp ? tmp : o->own, f->data + off, f->len - off,
                                   ws_out_frame_cleanup, f) != 0) {
            ws_frame_unref(f);
            rc = -1;
            break;
        }
    }
    if (tmp != NULL) {
        if (evbuffer_prepend_buffer(o->own, tmp) != 0)
            rc = -1;
        evbuffer_free(tmp);
    }
    bcast_release(o->cur);
    bcast_reader_remove(&o->reader);
    o->cur = NULL;
    o->log = NULL;
    o->cur_off = 0;
    return rc;
}

/* Own output as iovecs; *all is set when every byte of it fits. (Asked
 * for "all" with fewer iovecs than chains, evbuffer_peek fills them and
 * returns their number, not the number needed: so compare bytes.) */
static int ws_out_iov_own(struct ws_out *o, struct iovec *iov, int max, size_t *bytes, int *all)
{
    struct evbuffer_iovec v[WS_WRITE_IOV];
    int n = o->own != NULL ? evbuffer_peek(o->own, -1, NULL, v, max) : 0, i;
    int k = n < max ? n : max;
    size_t got = 0;

    for (i = 0; i < k; i++) {
        iov[i].iov_base = v[i].iov_base;
        iov[i].iov_len = v[i].iov_len;
        got += v[i].iov_len;
    }
    *bytes += got;
    *all = got == ws_out_own_len(o);
    return k;
}

/* The stream from the cursor as iovecs, skipping the connection's own
 * messages. */
static int ws_out_iov_stream(struct ws_out *o, struct iovec *iov, int max, size_t *bytes, int *all)
{
    struct bcast_node *n = o->cur;
    uint32_t off = o->cur_off;
    int k = 0;

    for (; n != NULL && n->frame != NULL; n = n->next, off = 0) {
        if (n->sender == o->self)
            continue;
        if (k == max)
            break;
        struct ws_frame *f = ws_out_variant(o, n->frame);
        iov[k].iov_base = f->data + off;
        iov[k].iov_len = f->len - off;
        *bytes += iov[k++].iov_len;
    }
    *all = n == NULL || n->frame == NULL;
    return k;
}

/* Move the cursor past k written bytes (and past own messages). */
static void ws_out_advance(struct ws_out *o, size_t k)
{
    struct bcast_node *n = o->cur;
    uint32_t off = o->cur_off;

    if (n == NULL)
        return;
    while (n->frame != NULL) {
        size_t left;
        if (n->sender == o->self) {
            n = n->next;
            continue;
        }
        left = ws_out_variant(o, n->frame)->len - off;
        if (k < left) {
            off += (uint32_t)k;
            break;
        }
        k -= left;
        off = 0;
        n = n->next;
    }
    if (n != o->cur) {
        bcast_ref(n);
        bcast_release(o->cur);
        o->cur = n;
    }
    o->cur_off = off;
}

/* The iovecs of the next write: own output and the stream, in the order
 * that keeps frames whole (whichever was left mid-frame goes first; both
 * cannot be). Returns how many (0: nothing pending). */
static int ws_out_prepare(struct ws_out *o, struct ws_out_wr *wr, struct iovec *iov, int max)
{
    int n;

    wr->own = wr->stream = 0;
    wr->all_own = wr->all_stream = 1;
    wr->stream_first = o->cur_off > 0;
    if (wr->stream_first) {
        n = ws_out_iov_stream(o, iov, max, &wr->stream, &wr->all_stream);
        if (wr->all_stream)
            n += ws_out_iov_own(o, iov + n, max - n, &wr->own, &wr->all_own);
    } else {
        n = ws_out_iov_own(o, iov, max, &wr->own, &wr->all_own);
        if (wr->all_own)
            n += ws_out_iov_stream(o, iov + n, max - n, &wr->stream, &wr->all_stream);
        else
            wr->all_stream = !ws_out_stream_pending(o);
    }
    if (n == 0) /* only own messages were left in the stream: step past them */
        ws_out_advance(o, 0);
    return n;
}

/* Account for k bytes written (k >= 0). */
static int ws_out_complete(struct ws_out *o, const struct ws_out_wr *wr, size_t k)
{
    if (wr->stream_first) {
        ws_out_advance(o, k < wr->stream ? k : wr->stream);
        if (k > wr->stream && o->own != NULL)
            evbuffer_drain(o->own, k - wr->stream);
    } else {
        if (o->own != NULL)
            evbuffer_drain(o->own, k < wr->own ? k : wr->own);
        if (k > wr->own)
            ws_out_advance(o, k - wr->own);
        else if (k == wr->own && wr->all_own)
            ws_out_advance(o, 0); /* past own messages at the front */
    }
    if (k < wr->own + wr->stream)
        return WS_OUT_BLOCKED;
    return !wr->all_own || !wr->all_stream ? WS_OUT_MORE : WS_OUT_DONE;
}

/* All written: an idle connection keeps no buffer. */
static int ws_out_done(struct ws_out *o)
{
    if (o->own != NULL) {
        evbuffer_free(o->own);
        o->own = NULL;
    }
    return WS_OUT_DONE;
}

int ws_out_write_via(struct ws_out *o, ws_out_writev_fn writev_fn, void *arg)
{
    struct iovec iov[WS_WRITE_IOV];
    struct ws_out_wr wr;
    int n, rc;
    ssize_t k;

    do {
        n = ws_out_prepare(o, &wr, iov, WS_WRITE_IOV);
        if (n == 0)
            break;
        k = writev_fn(arg, iov, n);
        if (k == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return WS_OUT_BLOCKED;
        if (k <= 0) /* 0 cannot happen with bytes to write: never spin on it */
            return k == 0 ? -EPIPE : -errno;
        rc = ws_out_complete(o, &wr, (size_t)k);
        if (rc == WS_OUT_BLOCKED)
            return rc;
    } while (rc == WS_OUT_MORE);
    return ws_out_done(o);
}

struct ws_out_sock {
    int fd, flags;
};

static ssize_t ws_out_sendmsg(void *arg, const struct iovec *iov, int n)
{
    const struct ws_out_sock *sock = arg;
    struct msghdr msg;

    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = (struct iovec *)iov;
    msg.msg_iovlen = (size_t)n;
    return sendmsg(sock->fd, &msg, sock->flags);
}

int ws_out_write(struct ws_out *o, int fd, int last)
{
    struct ws_out_sock sock = {fd, last ? MSG_MORE | MSG_NOSIGNAL : MSG_NOSIGNAL};

    return ws_out_write_via(o, ws_out_sendmsg, &sock);
}

int ws_out_batch_add(struct ws_out *o, struct ws_out_wr *wr, struct send_batch *b, int fd,
                     void *tag)
{
    struct iovec iov[SEND_BATCH_IOV];
    int n = ws_out_prepare(o, wr, iov, SEND_BATCH_IOV);

    if (n > 0)
        send_batch_add(b, fd, iov, n, tag);
    return n;
}

int ws_out_batch_done(struct ws_out *o, const struct ws_out_wr *wr, ssize_t res)
{
    int rc;

    if (res < 0 && (res == -EAGAIN || res == -EWOULDBLOCK || res == -EINTR))
        return WS_OUT_BLOCKED;
    if (res <= 0)
        return res == 0 ? -EPIPE : (int)res;
    rc = ws_out_complete(o, wr, (size_t)res);
    return rc == WS_OUT_DONE ? ws_out_done(o) : rc;
}

void ws_out_release(struct ws_out *o)
{
    ws_out_unsubscribe(o, 0);
    if (o->own != NULL) {
        evbuffer_free(o->own);
        o->own = NULL;
    }
}
