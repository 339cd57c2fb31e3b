/* ws_session.c -- a client connection from accept() to close().
 *
 * State machine: HANDSHAKE (read the request head, bounded in size and by
 * handshake-timeout) -> an HTTP error reply, or the 101 and JOINING (reading
 * paused until the broker grants the name) -> OPEN (wslay session) ->
 * CLOSING (close handshake, bounded by a timeout) -> freed.
 *
 * Output: wslay's send callback always accepts everything into the session's
 * evbuffer, so wslay never holds half a frame and shared broadcast frames
 * can be appended between its frames safely. Nothing is written to the
 * socket from a fan-out loop: sessions go on the worker's flush list and
 * are written once per batch.
 */
#include "ws_session.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "access.h"
#include "chat.h"
#include "chat_text.h"
#include "conn_count.h"
#include "log.h"
#include "send_batch.h"
#include "util.h"

#define WSS_CLOSE_TIMEOUT_MS 5000

#define wss_log(level, s, fmt, ...)                                                      \
    log_msg(level, "c=%llu %s%s%s: " fmt, (unsigned long long)(s)->id, (s)->peer,         \
            (s)->userlen ? " user=" : "", (s)->user, ##__VA_ARGS__)

static void wss_read_cb(evutil_socket_t fd, short what, void *arg);
static void wss_write_cb(evutil_socket_t fd, short what, void *arg);
static const struct wslay_event_callbacks wss_callbacks;
static char wss_no_user[1] = ""; /* the name of a session that has none */
static void wss_unsubscribe(struct wss_session *s, int keep);

/* (Re)start reading, with a timeout in ms or none (0). A persistent event
 * keeps its old timeout across event_add(ev, NULL), so it is assigned
 * afresh: a handshake timeout must not outlive the handshake. */
static void wss_arm_read(struct wss_session *s, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    event_del(s->rev);
    event_assign(s->rev, s->w->base, s->fd, EV_READ | EV_PERSIST, wss_read_cb, s);
    event_add(s->rev, ms > 0 ? &tv : NULL);
}

/* Read with a fixed deadline ms from now (0: no deadline). libevent restarts
 * a persistent event's timeout after every callback, so a peer trickling a
 * byte at a time would never time out: each read re-arms the remainder. */
static void wss_set_read_timeout(struct wss_session *s, long ms)
{
    s->deadline_ms = ms > 0 ? util_now_ms() + (uint64_t)ms : 0;
    wss_arm_read(s, ms);
}

/* After a read: 1 when the deadline has passed, else re-arm what is left. */
static int wss_deadline_passed(struct wss_session *s)
{
    uint64_t now;

    if (s->deadline_ms == 0)
        return 0;
    now = util_now_ms();
    if (now >= s->deadline_ms)
        return 1;
    if (event_pending(s->rev, EV_READ, NULL))
        wss_arm_read(s, (long)(s->deadline_ms - now));
    return 0;
}

/* The session's own output buffer, made on first use and given back once
 * written out: an idle session holds none. NULL when out of memory. */
static struct evbuffer *wss_out(struct wss_session *s)
{
    if (s->out == NULL)
        s->out = evbuffer_new();
    return s->out;
}

static int wss_out_add(struct wss_session *s, const void *data, size_t len)
{
    return wss_out(s) != NULL ? evbuffer_add(s->out, data, len) : -1;
}

static size_t wss_out_len(const struct wss_session *s)
{
    return s->out != NULL ? evbuffer_get_length(s->out) : 0;
}

/* A protocol error wslay cannot answer with the right code (it queues an
 * empty close for frame-level errors, and echoes a 1-byte close payload as
 * "no code"): send close 1002 ourselves, write, and hang up. */
static void wss_fail_protocol(struct wss_session *s)
{
    static const uint8_t close1002[4] = {0x88, 0x02, 0x03, 0xea};

    wss_log(LOG_INFO, s, "protocol error: closing with 1002");
    wss_unsubscribe(s, 0);
    if (!wslay_event_get_close_sent(s->ws))
        wss_out_add(s, close1002, sizeof(close1002));
    wslay_event_shutdown_write(s->ws);
    wslay_event_shutdown_read(s->ws);
    event_del(s->rev);
    s->state = WSS_FINAL_WRITE;
    wss_flush(s);
}

static void wss_mark_dirty(struct wss_session *s)
{
    if (s->dirty)
        return;
    s->dirty = 1;
    s->dirty_next = s->w->dirty;
    s->w->dirty = s;
}

static void wss_unlink_dirty(struct wss_session *s)
{
    struct wss_session **pp;

    if (!s->dirty)
        return;
    for (pp = &s->w->dirty; *pp != NULL; pp = &(*pp)->dirty_next)
        if (*pp == s) {
            *pp = s->dirty_next;
            break;
        }
    s->dirty = 0;
}

void wss_destroy(struct wss_session *s, const char *why)
{
    struct worker *w = s->w;

    wss_log(s->state == WSS_OPEN || s->state == WSS_CLOSING ? LOG_INFO : LOG_DEBUG, s,
            "closed: %s", why);
    chat_on_gone(s);
    wss_unlink_dirty(s);
    wss_unsubscribe(s, 0);
    if (s->counted)
        ccount_add(w->ccount, w->ccount_row, s->ip_bucket, -1);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        w->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    w->nsessions--;
    event_free(s->rev);
    event_free(s->wev);
    if (s->ws != NULL)
        wslay_event_context_free(s->ws);
    if (s->upgraded)
        w->nupgraded--;
    if (s->out != NULL)
        evbuffer_free(s->out);
    if (s->user != wss_no_user)
        free(s->user);
    free(s->head);
    close(s->fd);
    free(s);
    worker_on_session_gone(w);
}

/* ---- shared frames --------------------------------------------------- */

#define WSS_HEADER_MAX 10 /* server frames are not masked */

/* Write a final frame's header for `opcode` and a payload of len bytes;
 * returns its length. */
static size_t wss_frame_header(uint8_t *p, uint8_t opcode, size_t len)
{
    int i;

    p[0] = 0x80 | opcode; /* FIN */
    if (len < 126) {
        p[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        p[1] = 126;
        p[2] = (uint8_t)(len >> 8);
        p[3] = (uint8_t)len;
        return 4;
    }
    p[1] = 127;
    for (i = 0; i < 8; i++)
        p[2 + i] = (uint8_t)((uint64_t)len >> (8 * (7 - i)));
    return 10;
}

struct wss_frame *wss_frame_new_text(const void *payload, size_t len)
{
    struct wss_frame *f = malloc(sizeof(*f) + WSS_HEADER_MAX + len);
    size_t hdr;

    if (f == NULL)
        return NULL;
    hdr = wss_frame_header(f->data, WSLAY_TEXT_FRAME, len);
    memcpy(f->data + hdr, payload, len);
    f->refs = 1;
    f->len = hdr + len;
    return f;
}

void wss_frame_unref(struct wss_frame *f)
{
    if (f != NULL && --f->refs == 0)
        free(f);
}

static void wss_frame_cleanup(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    wss_frame_unref(arg);
}

/* ---- output ------------------------------------------------------------ */

/* Bytes of the broadcast stream the session has yet to write (its own
 * messages, which it skips, included: an upper bound). */
static uint64_t wss_stream_behind(const struct wss_session *s)
{
    return s->cur ? s->w->log.end - s->cur->pos - s->cur_off : 0;
}

static size_t wss_pending(const struct wss_session *s)
{
    return wss_out_len(s) + (s->ws ? wslay_event_get_queued_msg_length(s->ws) : 0) +
           (size_t)wss_stream_behind(s);
}

/* Over max-pending-bytes: the peer does not read. Close it rather than let
 * one slow reader grow the worker's memory. */
static int wss_over_cap(struct wss_session *s)
{
    size_t pending = wss_pending(s);

    if (pending <= (size_t)s->w->cfg->max_pending_bytes)
        return 0;
    wss_log(LOG_WARN, s, "slow reader: %zu bytes queued, over max-pending-bytes %ld: closing",
            pending, s->w->cfg->max_pending_bytes);
    /* nothing more is queued for it; the flush pass drops the connection */
    s->doomed = 1;
    wss_mark_dirty(s);
    return 1;
}

static int wss_can_send(const struct wss_session *s)
{
    return s->upgraded && !s->doomed && (s->state == WSS_OPEN || s->state == WSS_JOINING) &&
           (s->ws == NULL || !wslay_event_get_close_sent(s->ws));
}

/* Frames wslay queued (pongs) go out before ours. */
static void wss_wslay_first(struct wss_session *s)
{
    if (s->ws != NULL && wslay_event_want_write(s->ws))
        wslay_event_send(s->ws);
}

/* Our own frames are encoded here rather than by wslay, so a session needs
 * no wslay context to be written to. */
static void wss_queue_own(struct wss_session *s, uint8_t opcode, const void *data, size_t len)
{
    uint8_t hdr[WSS_HEADER_MAX];
    size_t n = wss_frame_header(hdr, opcode, len);

    if (!wss_can_send(s))
        return;
    wss_wslay_first(s);
    if (wss_out_add(s, hdr, n) != 0 || evbuffer_add(s->out, data, len) != 0) {
        wss_log(LOG_WARN, s, "out of memory queueing a message: dropping the connection");
        s->doomed = 1;
        wss_mark_dirty(s);
        return;
    }
    if (!wss_over_cap(s))
        wss_mark_dirty(s);
}

void wss_queue_text(struct wss_session *s, const char *text, size_t len)
{
    wss_queue_own(s, WSLAY_TEXT_FRAME, text, len);
}

void wss_queue_ping(struct wss_session *s)
{
    wss_queue_own(s, WSLAY_PING, "", 0);
}

/* wslay context on demand: made when input comes or a close handshake
 * starts, given back (wss_ctx_release_if_idle) between messages. */
static int wss_ctx_ensure(struct wss_session *s)
{
    if (s->ws != NULL)
        return 0;
    if (wslay_event_context_server_init(&s->ws, &wss_callbacks, s) != 0) {
        s->ws = NULL;
        return -1;
    }
    wslay_event_config_set_max_recv_msg_length(s->ws, (uint64_t)s->w->cfg->max_message_size);
    wsb_reset(&s->inb);
    return 0;
}

/* An open session whose input stands between messages, with nothing
 * queued in wslay and no close in sight, holds nothing wslay must keep. */
static void wss_ctx_release_if_idle(struct wss_session *s)
{
    if (s->ws == NULL || s->state != WSS_OPEN || s->proto_error || s->headoff < s->headlen ||
        !wsb_idle(&s->inb) || wslay_event_want_write(s->ws) ||
        wslay_event_get_close_sent(s->ws) || wslay_event_get_close_received(s->ws) ||
        !wslay_event_get_read_enabled(s->ws))
        return;
    wslay_event_context_free(s->ws);
    s->ws = NULL;
}

void wss_subscribe(struct wss_session *s)
{
    if (s->cur == NULL)
        s->cur = bcast_subscribe(&s->w->log);
}

/* Leave the stream. With `keep`, what the session has not yet written of
 * it moves to its own output first (in stream order, before or after what
 * is there, whichever keeps frames whole), so that a close frame queued
 * next comes after it. */
static void wss_unsubscribe(struct wss_session *s, int keep)
{
    struct bcast_node *n = s->cur;
    struct evbuffer *tmp = NULL;
    uint32_t off = s->cur_off;

    if (n == NULL)
        return;
    if (keep && wss_out(s) == NULL)
        keep = 0, s->doomed = 1; /* out of memory: a gap would corrupt the stream */
    if (keep && off > 0) /* mid-frame: the rest goes before the own output */
        tmp = evbuffer_new();
    for (; keep && n->frame != NULL; n = n->next, off = 0) {
        struct wss_frame *f = n->frame;
        if (n->sender == s->id)
            continue;
        f->refs++;
        if (evbuffer_add_reference(tmp ? tmp : s->out, f->data + off, f->len - off,
                                   wss_frame_cleanup, f) != 0) {
            f->refs--;
            s->doomed = 1; /* out of memory: a gap would corrupt the stream */
            break;
        }
    }
    if (tmp != NULL) {
        evbuffer_prepend_buffer(s->out, tmp);
        evbuffer_free(tmp);
    } else if (keep && s->cur_off > 0) {
        s->doomed = 1;
    }
    bcast_release(s->cur);
    s->cur = NULL;
    s->cur_off = 0;
}

void wss_close(struct wss_session *s, uint16_t code, const char *reason)
{
    if (!s->upgraded || (s->ws != NULL && wslay_event_get_close_sent(s->ws)))
        return;
    if (wss_ctx_ensure(s) == -1) { /* wslay runs the close handshake */
        wss_log(LOG_WARN, s, "out of memory closing: dropping the connection");
        s->doomed = 1;
        wss_mark_dirty(s);
        return;
    }
    /* wslay sends control frames ahead of queued messages: move those out
     * first, so a refusal text arrives before the close that follows it;
     * likewise the broadcasts it has not written yet */
    if (wslay_event_want_write(s->ws))
        wslay_event_send(s->ws);
    wss_unsubscribe(s, 1);
    wslay_event_queue_close(s->ws, code, (const uint8_t *)reason, reason ? strlen(reason) : 0);
    if (s->state != WSS_CLOSING)
        wss_log(LOG_INFO, s, "closing: %u %s", code, reason ? reason : "");
    s->state = WSS_CLOSING;
    /* wait for the peer's close frame, but not forever */
    wss_set_read_timeout(s, WSS_CLOSE_TIMEOUT_MS);
    if (s->headoff < s->headlen)
        event_active(s->rev, EV_READ, 0);
    wss_mark_dirty(s);
}

#define WSS_IOV_MAX 64

/* Own output as iovecs; *all is set when every byte of it fits. */
static int wss_iov_own(struct wss_session *s, struct iovec *iov, int max, size_t *bytes, int *all)
{
    struct evbuffer_iovec v[WSS_IOV_MAX];
    int n = s->out != NULL ? evbuffer_peek(s->out, -1, NULL, v, max) : 0, i;
    int k = n < max ? n : max;

    for (i = 0; i < k; i++) {
        iov[i].iov_base = v[i].iov_base;
        iov[i].iov_len = v[i].iov_len;
        *bytes += v[i].iov_len;
    }
    *all = n <= max;
    return k;
}

/* The stream from the cursor as iovecs, skipping the session's own messages. */
static int wss_iov_stream(struct wss_session *s, struct iovec *iov, int max, size_t *bytes,
                          int *all)
{
    struct bcast_node *n = s->cur;
    uint32_t off = s->cur_off;
    int k = 0;

    for (; n != NULL && n->frame != NULL; n = n->next, off = 0) {
        if (n->sender == s->id)
            continue;
        if (k == max)
            break;
        iov[k].iov_base = n->frame->data + off;
        iov[k].iov_len = n->frame->len - off;
        *bytes += iov[k++].iov_len;
    }
    *all = n == NULL || n->frame == NULL;
    return k;
}

/* Move the cursor past `k` written bytes (and past own messages). */
static void wss_stream_advance(struct wss_session *s, size_t k)
{
    struct bcast_node *n = s->cur;
    uint32_t off = s->cur_off;

    if (n == NULL)
        return;
    while (n->frame != NULL) {
        size_t left;
        if (n->sender == s->id) {
            n = n->next;
            continue;
        }
        left = n->frame->len - off;
        if (k < left) {
            off += (uint32_t)k;
            break;
        }
        k -= left;
        off = 0;
        n = n->next;
    }
    if (n != s->cur) {
        bcast_ref(n);
        bcast_release(s->cur);
        s->cur = n;
    }
    s->cur_off = off;
}

/* What one write of a session covers, to account for it afterwards. */
struct wss_wr {
    size_t own, stream; /* bytes of each in the iovecs */
    int all_own, all_stream, stream_first;
};

/* The iovecs of the session's next write: own output and the stream, in
 * the order that keeps frames whole (whichever was left mid-frame goes
 * first; both cannot be). Returns how many (0: nothing pending). */
static int wss_wr_prepare(struct wss_session *s, struct wss_wr *wr, struct iovec *iov, int max)
{
    int n;

    wr->own = wr->stream = 0;
    wr->all_own = wr->all_stream = 1;
    wr->stream_first = s->cur_off > 0;
    if (wr->stream_first) {
        n = wss_iov_stream(s, iov, max, &wr->stream, &wr->all_stream);
        if (wr->all_stream)
            n += wss_iov_own(s, iov + n, max - n, &wr->own, &wr->all_own);
    } else {
        n = wss_iov_own(s, iov, max, &wr->own, &wr->all_own);
        if (wr->all_own)
            n += wss_iov_stream(s, iov + n, max - n, &wr->stream, &wr->all_stream);
        else
            wr->all_stream = s->cur == NULL || s->cur->frame == NULL;
    }
    if (n == 0) /* only own messages were left in the stream: step past them */
        wss_stream_advance(s, 0);
    return n;
}

/* Account for k bytes written (k >= 0). Returns 0 when all is written, 1
 * when more is pending, 2 when the socket is full. */
static int wss_wr_complete(struct wss_session *s, const struct wss_wr *wr, size_t k)
{
    if (wr->stream_first) {
        wss_stream_advance(s, k < wr->stream ? k : wr->stream);
        if (k > wr->stream && s->out != NULL)
            evbuffer_drain(s->out, k - wr->stream);
    } else {
        if (s->out != NULL)
            evbuffer_drain(s->out, k < wr->own ? k : wr->own);
        if (k > wr->own)
            wss_stream_advance(s, k - wr->own);
        else if (k == wr->own && wr->all_own)
            wss_stream_advance(s, 0); /* past own messages at the front */
    }
    if (k < wr->own + wr->stream)
        return 2;
    return !wr->all_own || !wr->all_stream;
}

/* After a write: wait for EV_WRITE when the socket is full (unless over the
 * cap: then it is dropped). Returns 1 when the session was destroyed. */
static int wss_wait_writable(struct wss_session *s)
{
    if (wss_over_cap(s)) {
        wss_destroy(s, "slow reader: output queue over max-pending-bytes");
        return 1;
    }
    if (!s->blocked) {
        s->blocked = 1;
        event_add(s->wev, NULL);
    }
    return 0;
}

static int wss_write_failed(struct wss_session *s, int err)
{
    wss_destroy(s, err == EPIPE || err == ECONNRESET ? "connection closed by peer" : "write failed");
    return 1;
}

/* Write what is queued. Returns 1 when the session was destroyed. */
static int wss_flush_one(struct wss_session *s)
{
    struct iovec iov[WSS_IOV_MAX];
    struct wss_wr wr;
    int n, more;
    ssize_t k;

    if (s->doomed) {
        wss_destroy(s, "slow reader: output queue over max-pending-bytes");
        return 1;
    }
    if (s->ws != NULL && wslay_event_want_write(s->ws) && wslay_event_send(s->ws) != 0) {
        wss_destroy(s, "send failed");
        return 1;
    }
    do {
        n = wss_wr_prepare(s, &wr, iov, WSS_IOV_MAX);
        if (n == 0)
            break;
        k = writev(s->fd, iov, n);
        if (k == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return wss_wait_writable(s);
        if (k <= 0) /* 0 cannot happen with bytes to write: never spin on it */
            return wss_write_failed(s, k == 0 ? EPIPE : errno);
        more = wss_wr_complete(s, &wr, (size_t)k);
        if (more == 2)
            return wss_wait_writable(s);
    } while (more);
    if (s->blocked) {
        s->blocked = 0;
        event_del(s->wev);
    }
    if (s->out != NULL) { /* all written: an idle session keeps no buffer */
        evbuffer_free(s->out);
        s->out = NULL;
    }
    if (s->state == WSS_FINAL_WRITE) {
        wss_destroy(s, "answered, closing");
        return 1;
    }
    if (s->ws != NULL && wslay_event_get_close_sent(s->ws) &&
        (wslay_event_get_close_received(s->ws) || !wslay_event_get_read_enabled(s->ws))) {
        wss_destroy(s, "close handshake done");
        return 1;
    }
    return 0;
}

/* ---- the batched stream pass ------------------------------------------------ */

/* What a queued batch send stands for. */
struct wss_batched {
    struct wss_session *s;
    struct wss_wr wr;
};

static struct wss_batched wss_batched[SEND_BATCH_MAX];

static void wss_batch_done(void *tag, ssize_t res, void *arg)
{
    struct wss_batched *b = tag;
    struct wss_session *s = b->s;
    int more;

    (void)arg;
    if (res < 0 && (res == -EAGAIN || res == -EWOULDBLOCK || res == -EINTR)) {
        wss_wait_writable(s);
        return;
    }
    if (res <= 0) {
        wss_write_failed(s, res == 0 ? EPIPE : (int)-res);
        return;
    }
    more = wss_wr_complete(s, &b->wr, (size_t)res);
    if (more == 2)
        wss_wait_writable(s);
    else if (more == 1)
        wss_flush_one(s); /* the rest, the plain way */
}

static void wss_batch_run(struct worker *w)
{
    int i, n = send_batch_count(w->batch);

    if (n == 0 || send_batch_run(w->batch, wss_batch_done, NULL) == 0)
        return;
    /* io_uring refused the whole batch: write these one by one from now on */
    log_msg(LOG_WARN, "io_uring send failed: writing one socket at a time from now on");
    send_batch_clear(w->batch);
    send_batch_free(w->batch);
    w->batch = NULL;
    for (i = 0; i < n; i++)
        wss_flush_one(wss_batched[i].s);
}

/* Queue the session's stream write in the batch, or write it now when it
 * has more to say than a batch entry carries. */
static void wss_batch_add(struct worker *w, struct wss_session *s)
{
    struct iovec iov[SEND_BATCH_IOV];
    struct wss_batched *b = &wss_batched[send_batch_count(w->batch)];
    int n;

    if (s->doomed || (s->ws != NULL && wslay_event_want_write(s->ws))) {
        wss_flush_one(s);
        return;
    }
    n = wss_wr_prepare(s, &b->wr, iov, SEND_BATCH_IOV);
    if (n == 0)
        return;
    b->s = s;
    send_batch_add(w->batch, s->fd, iov, n, b);
    if (send_batch_full(w->batch))
        wss_batch_run(w);
}

void wss_flush(struct wss_session *s)
{
    wss_unlink_dirty(s);
    wss_flush_one(s);
}

/* After broadcasts: one write per session behind in the stream; a
 * blocked one writes when its socket drains, unless it is over its cap. */
static void wss_stream_write(struct worker *w)
{
    struct wss_session *s, *next;

    w->log_dirty = 0;
    for (s = w->sessions; s != NULL; s = next) {
        next = s->next;
        if (s->cur == NULL || s->cur->frame == NULL)
            continue;
        if (s->blocked) {
            if (wss_over_cap(s))
                wss_flush_one(s); /* doomed: dropped */
        } else if (w->batch != NULL) {
            wss_batch_add(w, s);
        } else {
            wss_flush_one(s);
        }
    }
    if (w->batch != NULL)
        wss_batch_run(w);
}

/* 1 when the stream pass should wait: the last one began less than
 * flush-interval ago. Under load, the messages that arrive meanwhile then
 * share each session's write (one send and one TCP segment for several
 * messages, where each would cost about as much alone); after a quiet
 * spell a message goes out at once. 0: the pass may begin now, and its
 * start is recorded. */
static int wss_pass_held(struct worker *w)
{
    uint64_t gap = (uint64_t)w->cfg->flush_interval * 1000u, now, left;
    struct timeval tv;

    if (gap == 0)
        return 0;
    if (evtimer_pending(w->pass_ev, NULL))
        return 1;
    now = util_now_us();
    if (now - w->last_pass_us >= gap) {
        w->last_pass_us = now;
        return 0;
    }
    left = gap - (now - w->last_pass_us);
    tv.tv_sec = (time_t)(left / 1000000u);
    tv.tv_usec = (suseconds_t)(left % 1000000u);
    evtimer_add(w->pass_ev, &tv);
    return 1;
}

void wss_stream_pass(struct worker *w)
{
    w->last_pass_us = util_now_us();
    if (w->log_dirty)
        wss_stream_write(w);
}

void wss_flush_dirty(struct worker *w)
{
    struct wss_session *s;

    while (w->dirty != NULL) {
        s = w->dirty;
        w->dirty = s->dirty_next;
        s->dirty = 0;
        wss_flush_one(s);
    }
    if (w->log_dirty && !wss_pass_held(w))
        wss_stream_write(w);
}

static void wss_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wss_session *s = arg;

    (void)fd;
    (void)what;
    s->blocked = 0; /* wev is not persistent: it fired, it is no longer added */
    wss_flush(s);
}

/* ---- wslay callbacks ----------------------------------------------------- */

static ssize_t wss_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                           void *user_data)
{
    struct wss_session *s = user_data;
    ssize_t n;

    (void)flags;
    if (s->headoff < s->headlen) { /* bytes that came right behind the request head */
        size_t k = s->headlen - s->headoff;
        if (k > len)
            k = len;
        memcpy(buf, s->head + s->headoff, k);
        wsb_feed(&s->inb, buf, k);
        s->headoff += k;
        if (s->headoff == s->headlen) {
            free(s->head);
            s->head = NULL;
            s->headoff = s->headlen = 0;
        }
        return (ssize_t)k;
    }
    n = recv(s->fd, buf, len, 0);
    if (n > 0) {
        s->awaiting_pong = 0; /* any traffic proves the peer is alive */
        wsb_feed(&s->inb, buf, (size_t)n);
        return n;
    }
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    } else {
        s->peer_gone = 1;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    }
    return -1;
}

static ssize_t wss_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                           int flags, void *user_data)
{
    struct wss_session *s = user_data;

    (void)flags;
    if (wss_out_add(s, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void wss_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                       void *user_data)
{
    struct wss_session *s = user_data;

    (void)ctx;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        if (s->state != WSS_OPEN)
            break;
        if (s->echo)
            wss_queue_text(s, (const char *)arg->msg, arg->msg_length);
        else
            chat_on_text(s, (const char *)arg->msg, arg->msg_length);
        break;
    case WSLAY_BINARY_FRAME:
        wss_close(s, WSLAY_CODE_UNSUPPORTED_DATA, "binary messages are not supported");
        break;
    case WSLAY_CONNECTION_CLOSE:
        /* wslay queues the echo of the peer's close code itself, but takes
         * a 1-byte payload for "no code" where RFC 6455 says error */
        if (arg->msg_length == 1)
            s->proto_error = 1;
        if (s->state != WSS_CLOSING)
            wss_log(LOG_DEBUG, s, "peer closed with %u", arg->status_code);
        s->state = WSS_CLOSING;
        wss_unsubscribe(s, 1); /* broadcasts already due go before the close echo */
        break;
    case WSLAY_PONG:
        s->awaiting_pong = 0;
        break;
    default:
        break;
    }
}

static const struct wslay_event_callbacks wss_callbacks = {
    wss_recv_cb, wss_send_cb, NULL, NULL, NULL, NULL, wss_msg_cb,
};

/* ---- the HTTP upgrade ---------------------------------------------------- */

static void wss_http_reply(struct wss_session *s, int status, const char *extra,
                           const char *body)
{
    char buf[1024];
    size_t n = upg_response(buf, sizeof(buf), status, extra, body);

    wss_log(status >= 400 ? LOG_INFO : LOG_DEBUG, s, "HTTP %d: %s", status, body);
    event_del(s->rev);
    free(s->head);
    s->head = NULL;
    s->headoff = s->headlen = 0;
    s->state = WSS_FINAL_WRITE;
    wss_out_add(s, buf, n);
    wss_mark_dirty(s);
}

static int wss_str_eq(const struct upg_str *a, const char *b)
{
    return a != NULL && a->len == strlen(b) && memcmp(a->p, b, a->len) == 0;
}

/* Answer 101 and set up wslay. Bytes after the head stay in s->head for
 * wslay; reading pauses until the caller decides (join, echo, refusal). */
static int wss_upgrade(struct wss_session *s, const struct upg_request *req,
                       const struct upg_str *protocol, const char *buf_in, size_t len_in)
{
    const struct upg_str *key = upg_header_get(req, "Sec-WebSocket-Key");
    char accept[UPG_ACCEPT_LEN + 1], buf[UPG_HEAD_MAX + 256]; /* the protocol echo is < head */
    size_t n;

    s->upgraded = 1; /* the wslay context comes with the first input */
    s->w->nupgraded++;
    upg_accept_key(key->p, key->len, accept);
    n = upg_response_101_protocol(buf, sizeof(buf), accept, protocol->p, protocol->len);
    if (wss_out_add(s, buf, n) != 0) {
        wss_http_reply(s, 503, NULL, "out of memory");
        return -1;
    }
    /* on the wire at once: the answer must not count against the output
     * cap of what follows (errors show at the next flush) */
    evbuffer_write(s->out, s->fd);
    if (len_in > req->head_len) { /* frames sent right behind the request head */
        s->headlen = len_in - req->head_len;
        s->head = malloc(s->headlen);
        if (s->head == NULL) {
            s->headlen = 0;
            wss_close(s, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
            return -1;
        }
        memcpy(s->head, buf_in + req->head_len, s->headlen);
        s->headoff = 0;
    }
    event_del(s->rev);
    s->state = WSS_JOINING;
    wss_mark_dirty(s);
    return 0;
}

/* The checks every WebSocket upgrade must pass. Returns 0, or -1 after
 * answering with the HTTP error. */
static int wss_check_upgrade(struct wss_session *s, const struct upg_request *req)
{
    const struct upg_str *version = upg_header_get(req, "Sec-WebSocket-Version");
    const struct upg_str *key = upg_header_get(req, "Sec-WebSocket-Key");

    if (!wss_str_eq(&req->version, "HTTP/1.1")) {
        wss_http_reply(s, 400, NULL, "WebSocket needs HTTP/1.1");
        return -1;
    }
    if (upg_header_get(req, "Host") == NULL) {
        wss_http_reply(s, 400, NULL, "missing Host header");
        return -1;
    }
    if (!wss_str_eq(version, "13")) {
        wss_http_reply(s, 426, "Sec-WebSocket-Version: 13\r\n",
                       "unsupported WebSocket version: this server speaks version 13");
        return -1;
    }
    if (key == NULL || !upg_key_valid(key)) {
        wss_http_reply(s, 400, NULL, "missing or invalid Sec-WebSocket-Key");
        return -1;
    }
    if (!access_origin_allowed(s->w->cfg, req)) {
        wss_http_reply(s, 403, NULL, "origin not allowed");
        return -1;
    }
    if (s->w->stopping == WORKER_CLOSING) {
        wss_http_reply(s, 503, NULL, "server is shutting down, please reconnect");
        return -1;
    }
    return 0;
}

static void wss_open_chat(struct wss_session *s, const struct upg_request *req,
                          const struct upg_str *raw_user, const char *buf, size_t len)
{
    static struct access_token tok; /* 4 KiB: not on the stack, one request at a time */
    char user[UPG_USER_MAX_BYTES + 1];
    const char *why;
    ssize_t ulen = upg_percent_decode(raw_user->p, raw_user->len, user, sizeof(user));

    if (ulen < 0) {
        wss_http_reply(s, 400, NULL, "user name: bad percent-encoding or too long");
        return;
    }
    why = upg_user_name_check(user, (size_t)ulen);
    if (why != NULL) {
        wss_http_reply(s, 400, NULL, why);
        return;
    }
    if (access_token_find(req, &tok) == -1) {
        wss_http_reply(s, 400, NULL, "token: bad percent-encoding");
        return;
    }
    if (wss_upgrade(s, req, &tok.protocol, buf, len) == -1)
        return;
    s->user = malloc((size_t)ulen + 1);
    if (s->user == NULL) {
        s->user = wss_no_user;
        wss_close(s, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    memcpy(s->user, user, (size_t)ulen + 1);
    s->userlen = (size_t)ulen;
    /* refused after the upgrade: browsers can read a close code, not a status */
    why = access_token_check(s->w->cfg, &tok, user, (size_t)ulen);
    if (why != NULL) {
        wss_log(LOG_INFO, s, "authentication failed: %s", why);
        wss_close(s, CHAT_CLOSE_UNAUTHORIZED, why);
        return;
    }
    chat_on_upgraded(s);
}

/* GET /healthz: 200 while this worker can chat (broker and Redis up), 503
 * with the reason otherwise, for load balancers. */
static void wss_health(struct wss_session *s)
{
    if (s->w->broker == NULL)
        wss_http_reply(s, 503, NULL, "unavailable: broker not connected");
    else if (!s->w->redis_up)
        wss_http_reply(s, 503, NULL, "unavailable: redis not reachable");
    else if (s->w->stopping)
        wss_http_reply(s, 503, NULL, "unavailable: shutting down");
    else
        wss_http_reply(s, 200, NULL, "ok");
}

static void wss_on_request(struct wss_session *s, const struct upg_request *req,
                           const char *buf, size_t len)
{
    const struct upg_str *upgrade = upg_header_get(req, "Upgrade");
    const struct upg_str *connection = upg_header_get(req, "Connection");
    static const struct upg_str no_protocol = {NULL, 0};
    int is_get = wss_str_eq(&req->method, "GET");
    int is_upgrade = upgrade != NULL && upg_has_token(upgrade, "websocket") &&
                     connection != NULL && upg_has_token(connection, "upgrade");
    struct upg_str raw_user;
    enum upg_route route = upg_route(&req->target, &raw_user);

    if (route == UPG_ROUTE_ECHO && !s->w->cfg->echo_endpoint)
        route = UPG_ROUTE_NONE;
    if (!is_get) {
        wss_http_reply(s, 405, "Allow: GET\r\n", "only GET is supported");
        return;
    }
    if (!is_upgrade) {
        if (route == UPG_ROUTE_ROOT)
            wss_http_reply(s, 200, NULL, "you are good to go!");
        else if (route == UPG_ROUTE_HEALTH)
            wss_health(s);
        else if (route == UPG_ROUTE_CHAT || route == UPG_ROUTE_ECHO)
            wss_http_reply(s, 426, "Upgrade: websocket\r\n",
                           "this is a WebSocket endpoint: connect with a WebSocket client");
        else
            wss_http_reply(s, 404, NULL, "not found");
        return;
    }
    if (route != UPG_ROUTE_CHAT && route != UPG_ROUTE_ECHO) {
        wss_http_reply(s, 404, NULL, "not found: chat endpoints are /chat/{user}");
        return;
    }
    if (wss_check_upgrade(s, req) == -1)
        return;
    if (route == UPG_ROUTE_CHAT) {
        wss_open_chat(s, req, &raw_user, buf, len);
        return;
    }
    /* /echo: the same session code, no name, no Redis */
    if (wss_upgrade(s, req, &no_protocol, buf, len) == -1)
        return;
    s->echo = 1;
    s->state = WSS_OPEN;
    wss_resume_reading(s);
}

static void wss_read_head(struct wss_session *s)
{
    char buf[UPG_HEAD_MAX];
    struct upg_request req;
    size_t len;
    ssize_t n;
    int rc;

    /* read into the stack: a head that arrives whole (the usual case) never
     * costs the session an allocation; a partial one keeps only its bytes */
    if (s->headlen > 0)
        memcpy(buf, s->head, s->headlen);
    n = recv(s->fd, buf + s->headlen, UPG_HEAD_MAX - s->headlen, 0);
    if (n == 0) {
        wss_destroy(s, "closed during the handshake");
        return;
    }
    if (n == -1) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            wss_destroy(s, "read error during the handshake");
        return;
    }
    len = s->headlen + (size_t)n;
    rc = upg_parse(buf, len, &req);
    if (rc == UPG_PARSE_AGAIN && len == UPG_HEAD_MAX)
        rc = UPG_PARSE_TOO_LARGE;
    if (rc == UPG_PARSE_AGAIN) {
        char *grown = realloc(s->head, len);
        if (grown == NULL) {
            wss_destroy(s, "out of memory");
            return;
        }
        memcpy(grown, buf, len);
        s->head = grown;
        s->headlen = len;
        return;
    }
    free(s->head);
    s->head = NULL;
    s->headlen = s->headoff = 0;
    switch (rc) {
    case UPG_PARSE_OK:
        wss_on_request(s, &req, buf, len);
        break;
    case UPG_PARSE_BAD:
        wss_http_reply(s, 400, NULL, "malformed HTTP request");
        break;
    case UPG_PARSE_TOO_LARGE:
        wss_http_reply(s, 431, NULL, "request header fields too large");
        break;
    default:
        return;
    }
    wss_flush(s);
}

static void wss_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wss_session *s = arg;

    (void)fd;
    if ((what & EV_TIMEOUT) || wss_deadline_passed(s)) {
        wss_destroy(s, s->state == WSS_HANDSHAKE ? "handshake timeout" : "close timeout");
        return;
    }
    if (s->state == WSS_HANDSHAKE) {
        wss_read_head(s);
        return;
    }
    if (!s->upgraded || s->state == WSS_FINAL_WRITE)
        return;
    if (wss_ctx_ensure(s) == -1) {
        wss_destroy(s, "out of memory");
        return;
    }
    if (wslay_event_recv(s->ws) != 0) {
        if (s->peer_gone) {
            wss_destroy(s, "connection lost");
            return;
        }
        s->proto_error = 1; /* wslay's frame parser refused the bytes */
    }
    if (s->proto_error) {
        wss_fail_protocol(s);
        return;
    }
    if (!wslay_event_get_read_enabled(s->ws))
        event_del(s->rev);
    wss_wslay_first(s);
    wss_ctx_release_if_idle(s);
    wss_flush(s);
}

void wss_resume_reading(struct wss_session *s)
{
    wss_set_read_timeout(s, 0);
    if (s->headoff < s->headlen) /* a frame arrived with the request head */
        event_active(s->rev, EV_READ, 0);
}

static struct wss_session *wss_new(struct worker *w, int fd, const char *peer)
{
    struct wss_session *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        close(fd);
        log_msg(LOG_ERROR, "out of memory accepting %s", peer);
        return NULL;
    }
    s->w = w;
    s->fd = fd;
    s->user = wss_no_user;
    s->id = ++w->next_conn_id;
    snprintf(s->peer, sizeof(s->peer), "%s", peer);
    s->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, wss_read_cb, s);
    s->wev = event_new(w->base, fd, EV_WRITE, wss_write_cb, s);
    if (s->rev == NULL || s->wev == NULL) {
        if (s->rev)
            event_free(s->rev);
        if (s->wev)
            event_free(s->wev);
        free(s);
        close(fd);
        return NULL;
    }
    s->next = w->sessions;
    if (w->sessions != NULL)
        w->sessions->prev = s;
    w->sessions = s;
    w->nsessions++;
    return s;
}

void wss_accept(struct worker *w, int fd, const char *peer, uint32_t ip_bucket)
{
    struct wss_session *s = wss_new(w, fd, peer);

    if (s == NULL) {
        ccount_add(w->ccount, w->ccount_row, ip_bucket, -1);
        return;
    }
    s->counted = 1;
    s->ip_bucket = ip_bucket;
    wss_set_read_timeout(s, w->cfg->handshake_timeout);
}

void wss_refuse(struct worker *w, int fd, const char *peer, int status, const char *body)
{
    struct wss_session *s = wss_new(w, fd, peer);
    char junk[4096];

    if (s == NULL)
        return;
    /* read what already arrived: closing with unread input would send a
     * reset that can destroy the answer before the client reads it */
    while (recv(fd, junk, sizeof(junk), 0) > 0)
        ;
    wss_http_reply(s, status, NULL, body);
    wss_flush(s);
}
