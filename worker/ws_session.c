/* ws_session.c -- a client connection from accept() to close().
 *
 * State machine: HANDSHAKE (read the request head, bounded in size and by
 * handshake-timeout) -> an HTTP error reply, or the 101 and UPGRADED (the
 * 101 held until the application opens the session, so that it and the
 * welcome leave in one write; input kept meanwhile) -> OPEN (wslay session)
 * -> CLOSING (close handshake, bounded by a timeout) -> freed.
 *
 * The read event is registered once, at accept, and removed at close:
 * deadlines move only its timer (no epoll_ctl), and reading never pauses on
 * the way to OPEN.
 *
 * Output: wslay's send callback always accepts everything into the
 * session's own output, so wslay never holds half a frame and shared
 * broadcast frames can be written between its frames safely. Nothing is
 * written to the socket from a fan-out loop: sessions go on the server's
 * flush list and are written once per batch (ws_write.c does the writing).
 */
#include "ws_session.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "conn_count.h"
#include "log.h"
#include "metrics.h"
#include "send_batch.h"
#include "tls_server.h"
#include "ws_deflate.h"
#include "util.h"
#include "web.h"
#include "ws_app.h"
#include "ws_frame.h"

#define WSS_CLOSE_TIMEOUT_MS 5000
/* The longest a 101 waits for the app's open (the broker's join answer, in
 * the chat: well under a millisecond normally); past it the 101 goes alone. */
#define WSS_HOLD_101_MS 1000
/* Input kept for the app before its open; past it reading pauses. */
#define WSS_EARLY_MAX 65536

static void wss_read_cb(evutil_socket_t fd, short what, void *arg);
static void wss_set_state(struct wss_session *s, enum wss_state state);
static void wss_write_cb(evutil_socket_t fd, short what, void *arg);
static const struct wslay_event_callbacks wss_callbacks;
static int wss_flush_one(struct wss_session *s);
static void wss_tls_step(struct wss_session *s);
static void wss_read_head(struct wss_session *s);

/* The request being answered, for wss_upgrade() called by an app's open():
 * one at a time, so it need not live in every session. */
static struct {
    const char *buf;
    size_t len;
} wss_req;

/* (Re)start reading, with a timeout in ms or none (0). On an event already
 * reading only the timer moves (no epoll_ctl). A persistent event keeps its
 * old timeout across event_add(ev, NULL), so a stopped one is assigned
 * afresh: a handshake timeout must not outlive the handshake. A timeout that
 * has fired but whose callback has not run yet (libevent takes the event out
 * of epoll and queues it as active; an open in the same loop turn lands
 * here) is dropped first: event_assign on a queued event corrupts libevent's
 * active queue, which kills the process ("event_queue_remove_active: not on
 * queue"), and the deadline it enforced is re-armed here anyway. */
static void wss_arm_read(struct wss_session *s, long ms)
{
    struct timeval tv = util_ms_tv(ms);

    if (event_pending(s->rev, EV_READ, NULL)) {
        if (ms > 0)
            event_add(s->rev, &tv);
        else
            event_remove_timer(s->rev);
        return;
    }
    event_del(s->rev); /* no syscall: not in epoll */
    event_assign(s->rev, s->srv->base, s->fd, EV_READ | EV_PERSIST, wss_read_cb, s);
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

static void wss_mark_dirty(struct wss_session *s)
{
    if (s->dirty)
        return;
    s->dirty = 1;
    s->dirty_next = s->srv->dirty;
    s->srv->dirty = s;
}

static void wss_unlink_dirty(struct wss_session *s)
{
    struct wss_session **pp;

    if (!s->dirty)
        return;
    for (pp = &s->srv->dirty; *pp != NULL; pp = &(*pp)->dirty_next)
        if (*pp == s) {
            *pp = s->dirty_next;
            break;
        }
    s->dirty = 0;
}

/* ---- metrics ------------------------------------------------------------ */

/* The connections gauge a session is counted in: its state's, ws or wss. */
static int wss_gauge(const struct wss_session *s)
{
    static const uint8_t klass[] = {
        [WSS_HANDSHAKE] = MCONN_HANDSHAKING, [WSS_FINAL_WRITE] = MCONN_CLOSING,
        [WSS_UPGRADED] = MCONN_HANDSHAKING,  [WSS_OPEN] = MCONN_OPEN,
        [WSS_CLOSING] = MCONN_CLOSING,
    };

    return MS_CONNECTIONS + (s->tls != NULL ? MCONN_NSTATES : 0) + klass[s->state];
}

static void wss_set_state(struct wss_session *s, enum wss_state state)
{
    metrics_sub(wss_gauge(s), 1);
    s->state = state;
    metrics_inc(wss_gauge(s));
}

/* Dropped without a close handshake (reason: enum metrics_drop). */
static void wss_drop(struct wss_session *s, int reason, const char *why)
{
    metrics_inc(MS_DROPS + reason);
    wss_destroy(s, why);
}

/* Nothing more can be queued for it: the flush pass drops the connection. */
static void wss_doom(struct wss_session *s)
{
    s->doomed = 1;
    wss_mark_dirty(s);
}

/* Leave the broadcast stream; with `keep`, what is due of it is written
 * before what is queued next. */
static void wss_unsubscribe(struct wss_session *s, int keep)
{
    if (ws_out_unsubscribe(&s->out, keep) != 0)
        wss_doom(s); /* out of memory: a gap would corrupt the stream */
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
        ws_out_add(&s->out, close1002, sizeof(close1002));
    wslay_event_shutdown_write(s->ws);
    wslay_event_shutdown_read(s->ws);
    event_del(s->rev);
    metrics_inc(MS_CLOSE_CODES + metrics_close_code_index(1002));
    wss_set_state(s, WSS_FINAL_WRITE);
    wss_unlink_dirty(s);
    wss_flush_one(s);
}

void wss_destroy(struct wss_session *s, const char *why)
{
    struct wss_server *srv = s->srv;

    wss_log(s->state == WSS_OPEN || s->state == WSS_CLOSING ? LOG_INFO : LOG_DEBUG, s, "closed: %s",
            why);
    if (s->app != NULL && s->app->gone != NULL)
        s->app->gone(s, s->app->arg);
    metrics_sub(wss_gauge(s), 1);
    wss_unlink_dirty(s);
    ws_out_release(&s->out);
    if (s->counted)
        ccount_add(srv->ccount, srv->ccount_row, s->ip_bucket, -1);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    srv->nsessions--;
    event_free(s->rev);
    event_free(s->wev);
    if (s->ws != NULL)
        wslay_event_context_free(s->ws);
    if (s->upgraded)
        srv->nupgraded--;
    free(s->head);
    tls_conn_free(s->tls);
    close(s->fd);
    free(s);
    if (srv->on_gone != NULL)
        srv->on_gone(srv->arg);
}

/* ---- output ------------------------------------------------------------ */

static size_t wss_pending(const struct wss_session *s)
{
    return ws_out_own_len(&s->out) + (s->ws ? wslay_event_get_queued_msg_length(s->ws) : 0) +
           (size_t)ws_out_behind(&s->out);
}

/* Over max-pending-bytes: the peer does not read. Close it rather than let
 * one slow reader grow the worker's memory. A 101 held for the open has not
 * been offered to the peer yet: it does not count. */
static int wss_over_cap(struct wss_session *s)
{
    size_t pending = wss_pending(s) - (s->state == WSS_UPGRADED ? s->held_101 : 0);

    if (pending <= (size_t)s->srv->cfg->max_pending_bytes)
        return 0;
    wss_log(LOG_WARN, s, "slow reader: %zu bytes queued, over max-pending-bytes %ld: closing",
            pending, s->srv->cfg->max_pending_bytes);
    wss_doom(s);
    return 1;
}

static int wss_can_send(const struct wss_session *s)
{
    return s->upgraded && !s->doomed && (s->state == WSS_OPEN || s->state == WSS_UPGRADED) &&
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
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    size_t n = ws_frame_header(hdr, opcode, len);

    if (!wss_can_send(s))
        return;
    wss_wslay_first(s);
    if (ws_out_add(&s->out, hdr, n) != 0 || (len > 0 && ws_out_add(&s->out, data, len) != 0)) {
        wss_log(LOG_WARN, s, "out of memory queueing a message: dropping the connection");
        wss_doom(s);
        return;
    }
    metrics_inc(MS_DELIVERIES);
    if (!wss_over_cap(s))
        wss_mark_dirty(s);
}

void wss_queue_text(struct wss_session *s, const char *text, size_t len)
{
    wss_queue_own(s, WSLAY_TEXT_FRAME, text, len);
}

void wss_queue_binary(struct wss_session *s, const void *data, size_t len)
{
    wss_queue_own(s, WSLAY_BINARY_FRAME, data, len);
}

static void wss_queue_ping(struct wss_session *s)
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
    wslay_event_config_set_max_recv_msg_length(s->ws, (uint64_t)s->srv->cfg->max_message_size);
    if (s->deflate)
        wslay_event_config_set_allowed_rsv_bits(s->ws, WSLAY_RSV1_BIT);
    wsb_reset(&s->inb);
    return 0;
}

/* An open session whose input stands between messages, with nothing
 * queued in wslay and no close in sight, holds nothing wslay must keep. */
static void wss_ctx_release_if_idle(struct wss_session *s)
{
    if (s->ws == NULL || s->state != WSS_OPEN || s->proto_error || s->headoff < s->headlen ||
        !wsb_idle(&s->inb) || wslay_event_want_write(s->ws) || wslay_event_get_close_sent(s->ws) ||
        wslay_event_get_close_received(s->ws) || !wslay_event_get_read_enabled(s->ws))
        return;
    wslay_event_context_free(s->ws);
    s->ws = NULL;
}

void wss_subscribe(struct wss_session *s, struct bcast_log *log)
{
    ws_out_subscribe(&s->out, log);
}

void wss_leave_stream(struct wss_session *s)
{
    wss_unsubscribe(s, 1);
}

void wss_queue_frame(struct wss_session *s, struct ws_frame *f)
{
    if (!wss_can_send(s))
        return;
    wss_wslay_first(s);
    if (ws_out_add_frame(&s->out, f) != 0) {
        wss_log(LOG_WARN, s, "out of memory queueing a message: dropping the connection");
        wss_doom(s);
        return;
    }
    metrics_inc(MS_DELIVERIES);
    if (!wss_over_cap(s))
        wss_mark_dirty(s);
}

void wss_close(struct wss_session *s, uint16_t code, const char *reason)
{
    if (!s->upgraded || (s->ws != NULL && wslay_event_get_close_sent(s->ws)))
        return;
    if (wss_ctx_ensure(s) == -1) { /* wslay runs the close handshake */
        wss_log(LOG_WARN, s, "out of memory closing: dropping the connection");
        wss_doom(s);
        return;
    }
    /* wslay sends control frames ahead of queued messages: move those out
     * first, so a refusal text arrives before the close that follows it;
     * likewise the broadcasts it has not written yet */
    if (wslay_event_want_write(s->ws))
        wslay_event_send(s->ws);
    wss_unsubscribe(s, 1);
    wslay_event_queue_close(s->ws, code, (const uint8_t *)reason, reason ? strlen(reason) : 0);
    metrics_inc(MS_CLOSE_CODES + metrics_close_code_index(code));
    if (s->state != WSS_CLOSING)
        wss_log(LOG_INFO, s, "closing: %u %s", code, reason ? reason : "");
    wss_set_state(s, WSS_CLOSING);
    /* wait for the peer's close frame, but not forever */
    wss_set_read_timeout(s, WSS_CLOSE_TIMEOUT_MS);
    if (s->headoff < s->headlen)
        event_active(s->rev, EV_READ, 0);
    wss_mark_dirty(s);
}

/* After a write: wait for EV_WRITE when the socket is full (unless over the
 * cap: then it is dropped). Returns 1 when the session was destroyed. */
static int wss_wait_writable(struct wss_session *s)
{
    if (wss_over_cap(s)) {
        wss_drop(s, MDROP_SLOW_READER, "slow reader: output queue over max-pending-bytes");
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
    wss_destroy(s,
                err == EPIPE || err == ECONNRESET ? "connection closed by peer" : "write failed");
    return 1;
}

/* After everything was written: what that finishes. Returns 1 when the
 * session was destroyed. */
static int wss_written(struct wss_session *s)
{
    if (s->blocked) {
        s->blocked = 0;
        event_del(s->wev);
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

static ssize_t wss_tls_writev(void *ssl, const struct iovec *iov, int n)
{
    return tls_writev(ssl, iov, n);
}

/* Write what is queued. Returns 1 when the session was destroyed. */
static int wss_flush_one(struct wss_session *s)
{
    int rc, last;

    if (s->doomed) {
        wss_drop(s, MDROP_SLOW_READER, "slow reader: output queue over max-pending-bytes");
        return 1;
    }
    if (s->tls_handshaking)
        return 0; /* nothing can be said before the TLS handshake is done */
    if (s->ws != NULL && wslay_event_want_write(s->ws) && wslay_event_send(s->ws) != 0) {
        wss_drop(s, MDROP_SEND_FAILED, "send failed");
        return 1;
    }
    /* the close echo after the peer's close is the last thing said (RFC
     * 6455: nothing follows a close frame, so no unread input turns the
     * close() into a reset that would discard it) */
    last = s->ws != NULL && wslay_event_get_close_sent(s->ws) &&
           wslay_event_get_close_received(s->ws);
    rc = s->tls ? ws_out_write_via(&s->out, wss_tls_writev, s->tls)
                : ws_out_write(&s->out, s->fd, last);
    if (rc == WS_OUT_BLOCKED)
        return wss_wait_writable(s);
    if (rc < 0)
        return wss_write_failed(s, -rc);
    return wss_written(s);
}

/* ---- the batched stream pass ------------------------------------------------ */

static struct wss_session *wss_of_reader(struct bcast_reader *r)
{
    return (struct wss_session *)((char *)r - offsetof(struct wss_session, out) -
                                  offsetof(struct ws_out, reader));
}

/* What a queued batch send stands for. */
struct wss_batched {
    struct wss_session *s;
    struct ws_out_wr wr;
};

static struct wss_batched wss_batched[SEND_BATCH_MAX];

static void wss_batch_done(void *tag, ssize_t res, void *arg)
{
    struct wss_batched *b = tag;
    struct wss_session *s = b->s;
    int rc = ws_out_batch_done(&s->out, &b->wr, res);

    (void)arg;
    if (rc == WS_OUT_BLOCKED)
        wss_wait_writable(s);
    else if (rc < 0)
        wss_write_failed(s, -rc);
    else if (rc == WS_OUT_MORE)
        wss_flush_one(s); /* the rest, the plain way */
}

static void wss_batch_run(struct wss_server *srv)
{
    int i, n = send_batch_count(srv->batch);

    if (n == 0 || send_batch_run(srv->batch, wss_batch_done, NULL) == 0)
        return;
    /* io_uring refused the whole batch: write these one by one from now on */
    log_msg(LOG_WARN, "io_uring send failed: writing one socket at a time from now on");
    send_batch_clear(srv->batch);
    send_batch_free(srv->batch);
    srv->batch = NULL;
    for (i = 0; i < n; i++)
        wss_flush_one(wss_batched[i].s);
}

/* Queue the session's stream write in the batch, or write it now when it
 * has more to say than a batch entry carries. */
static void wss_batch_add(struct wss_server *srv, struct wss_session *s)
{
    struct wss_batched *b = &wss_batched[send_batch_count(srv->batch)];

    if (s->doomed || (s->ws != NULL && wslay_event_want_write(s->ws))) {
        wss_flush_one(s);
        return;
    }
    b->s = s;
    if (ws_out_batch_add(&s->out, &b->wr, srv->batch, s->fd, b) > 0 && send_batch_full(srv->batch))
        wss_batch_run(srv);
}

/* After broadcasts: one write per session behind in the stream; a
 * blocked one writes when its socket drains, unless it is over its cap. */
static void wss_stream_write(struct wss_server *srv)
{
    struct bcast_log *log;
    struct bcast_reader *r, *next;

    /* only the readers of the streams appended to: a room's message costs
     * its members, not every connection of the worker (a session destroyed
     * here leaves its stream's list; a stream is freed only with its last
     * reader gone, so `next` stays valid) */
    while ((log = bcast_pop_dirty(&srv->dirty_logs)) != NULL) {
        for (r = log->readers; r != NULL; r = next) {
            struct wss_session *s = wss_of_reader(r);
            next = r->next;
            if (!ws_out_stream_pending(&s->out))
                continue;
            if (s->blocked) {
                if (wss_over_cap(s))
                    wss_flush_one(s); /* doomed: dropped */
            } else if (srv->batch != NULL && s->tls == NULL) {
                wss_batch_add(srv, s);
            } else {
                wss_flush_one(s);
            }
        }
    }
    if (srv->batch != NULL)
        wss_batch_run(srv);
}

/* 1 when the stream pass should wait: the last one began less than
 * flush-interval ago. Under load, the messages that arrive meanwhile then
 * share each session's write (one send and one TCP segment for several
 * messages, where each would cost about as much alone); after a quiet
 * spell a message goes out at once. 0: the pass may begin now, and its
 * start is recorded. */
static int wss_pass_held(struct wss_server *srv)
{
    uint64_t gap = (uint64_t)srv->cfg->flush_interval * 1000u, now, left;
    struct timeval tv;

    if (gap == 0)
        return 0;
    if (evtimer_pending(srv->pass_ev, NULL))
        return 1;
    now = util_now_us();
    if (now - srv->last_pass_us >= gap) {
        srv->last_pass_us = now;
        return 0;
    }
    left = gap - (now - srv->last_pass_us);
    tv.tv_sec = (time_t)(left / 1000000u);
    tv.tv_usec = (suseconds_t)(left % 1000000u);
    evtimer_add(srv->pass_ev, &tv);
    return 1;
}

/* A stream pass held back by flush-interval is due. */
static void wss_pass_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wss_server *srv = arg;

    (void)fd;
    (void)what;
    srv->last_pass_us = util_now_us();
    if (srv->dirty_logs != NULL)
        wss_stream_write(srv);
}

void wss_flush_dirty(struct wss_server *srv)
{
    struct wss_session *s;

    while (srv->dirty != NULL) {
        s = srv->dirty;
        srv->dirty = s->dirty_next;
        s->dirty = 0;
        wss_flush_one(s);
    }
    if (srv->dirty_logs != NULL && !wss_pass_held(srv))
        wss_stream_write(srv);
}

int wss_broadcast(struct wss_server *srv, struct bcast_log *log, struct ws_frame *f,
                  uint64_t sender)
{
    if (bcast_append(log, f, sender) != 0)
        return -1;
    bcast_mark_dirty(log, &srv->dirty_logs); /* its readers pick it up at the flush */
    return 0;
}

static void wss_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wss_session *s = arg;

    (void)fd;
    (void)what;
    s->blocked = 0; /* wev is not persistent: it fired, it is no longer added */
    if (s->tls_handshaking) {
        wss_tls_step(s);
        return;
    }
    if (s->tls != NULL && tls_io_wants(s->tls) == TLS_WANT_WRITE)
        event_active(s->rev, EV_READ, 0); /* a read that waited for the socket */
    wss_unlink_dirty(s);
    wss_flush_one(s);
}

/* ---- TLS --------------------------------------------------------------- */

/* recv() for ws:// and wss:// alike. OpenSSL may hold decrypted bytes the
 * socket no longer shows: the read event is made active again for them. */
static ssize_t wss_recv(struct wss_session *s, void *buf, size_t len)
{
    ssize_t n;

    if (s->tls == NULL)
        return recv(s->fd, buf, len, 0);
    n = tls_recv(s->tls, buf, len);
    if (n > 0 && tls_pending(s->tls))
        event_active(s->rev, EV_READ, 0);
    else if (n == -1 && errno == EAGAIN && tls_io_wants(s->tls) == TLS_WANT_WRITE)
        event_add(s->wev, NULL); /* the write callback reads again */
    return n;
}

/* Advance a wss:// handshake; once done, the HTTP request is read as on
 * ws:// (it may already be inside OpenSSL). */
static void wss_tls_step(struct wss_session *s)
{
    char why[160], msg[200];

    switch (tls_handshake(s->tls, why, sizeof(why))) {
    case TLS_DONE:
        s->tls_handshaking = 0;
        wss_read_head(s);
        return;
    case TLS_WANT_READ:
        return;
    case TLS_WANT_WRITE:
        event_add(s->wev, NULL);
        return;
    case TLS_FAILED:
        snprintf(msg, sizeof(msg), "TLS handshake failed: %s", why);
        wss_destroy(s, msg);
        return;
    }
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
    n = wss_recv(s, buf, len);
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

static ssize_t wss_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                           void *user_data)
{
    struct wss_session *s = user_data;

    (void)flags;
    if (ws_out_add(&s->out, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

/* RFC 7692: RSV1 marks the first frame of a compressed data message, and
 * nothing else. */
static void wss_frame_start_cb(wslay_event_context_ptr ctx,
                               const struct wslay_event_on_frame_recv_start_arg *arg,
                               void *user_data)
{
    struct wss_session *s = user_data;

    (void)ctx;
    if ((arg->rsv & WSLAY_RSV1_BIT) && arg->opcode != WSLAY_TEXT_FRAME &&
        arg->opcode != WSLAY_BINARY_FRAME)
        s->proto_error = 1;
}

/* A compressed message's text, inflated (max-message-size applies to the
 * result): 0 with *out to free, or -1 after closing the session. */
static int wss_inflate(struct wss_session *s, const struct wslay_event_on_msg_recv_arg *arg,
                       uint8_t **out, size_t *outlen)
{
    switch (ws_inflate_message(arg->msg, arg->msg_length, (size_t)s->srv->cfg->max_message_size,
                               out, outlen)) {
    case WS_INFLATE_OK:
        return 0;
    case WS_INFLATE_TOO_BIG:
        wss_close(s, WSLAY_CODE_MESSAGE_TOO_BIG, "message too big (inflated)");
        return -1;
    case WS_INFLATE_BAD:
        wss_close(s, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, "bad compressed data");
        return -1;
    default:
        wss_close(s, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
        return -1;
    }
}

static void wss_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                       void *user_data)
{
    struct wss_session *s = user_data;
    const struct ws_app *app = s->app;
    const uint8_t *msg = arg->msg;
    size_t len = arg->msg_length;
    uint8_t *inflated = NULL;

    (void)ctx;
    if ((arg->rsv & WSLAY_RSV1_BIT) && (arg->opcode == WSLAY_TEXT_FRAME ||
                                        arg->opcode == WSLAY_BINARY_FRAME)) {
        if (s->state != WSS_OPEN || wss_inflate(s, arg, &inflated, &len) == -1)
            return;
        msg = inflated;
    }
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        metrics_inc(MS_MESSAGES_IN);
        if (s->state == WSS_OPEN)
            app->text(s, (const char *)msg, len, app->arg);
        break;
    case WSLAY_BINARY_FRAME:
        metrics_inc(MS_MESSAGES_IN);
        if (app->binary == NULL)
            wss_close(s, WSLAY_CODE_UNSUPPORTED_DATA, "binary messages are not supported");
        else if (s->state == WSS_OPEN)
            app->binary(s, msg, len, app->arg);
        break;
    case WSLAY_CONNECTION_CLOSE:
        /* wslay queues the echo of the peer's close code itself, but takes
         * a 1-byte payload for "no code" where RFC 6455 says error */
        if (arg->msg_length == 1)
            s->proto_error = 1;
        if (s->state != WSS_CLOSING)
            wss_log(LOG_DEBUG, s, "peer closed with %u", arg->status_code);
        wss_set_state(s, WSS_CLOSING);
        wss_unsubscribe(s, 1); /* broadcasts already due go before the close echo */
        break;
    case WSLAY_PONG:
        s->awaiting_pong = 0;
        break;
    default:
        break;
    }
    free(inflated);
}

static const struct wslay_event_callbacks wss_callbacks = {
    wss_recv_cb, wss_send_cb, NULL, wss_frame_start_cb, NULL, NULL, wss_msg_cb,
};

/* ---- the HTTP upgrade ---------------------------------------------------- */

/* The request is answered: nothing more is read, the answer is written,
 * then the connection closes. */
static void wss_http_final(struct wss_session *s)
{
    event_del(s->rev);
    free(s->head);
    s->head = NULL;
    s->headoff = s->headlen = 0;
    wss_set_state(s, WSS_FINAL_WRITE);
    wss_mark_dirty(s);
}

void wss_http_reply(struct wss_session *s, int status, const char *extra, const char *body)
{
    char buf[1024];
    size_t n = upg_response(buf, sizeof(buf), status, extra, body);

    wss_log(status >= 400 ? LOG_INFO : LOG_DEBUG, s, "HTTP %d: %s", status, body);
    if (status >= 400 && s->counted) /* a refusal at admission is counted by its reason */
        metrics_inc(MS_REFUSED + metrics_refuse_of_status(status));
    ws_out_add(&s->out, buf, n);
    wss_http_final(s);
}

void wss_http_reply_asset(struct wss_session *s, const struct web_asset *asset, int not_modified)
{
    char head[1024];
    size_t n = web_response_head(head, sizeof(head), asset, not_modified);

    wss_log(LOG_DEBUG, s, "HTTP %d: %s", not_modified ? 304 : 200, asset->path);
    if (n == 0 || ws_out_add(&s->out, head, n) != 0 ||
        (!not_modified && ws_out_add_static(&s->out, asset->data, asset->len) != 0))
        wss_doom(s); /* out of memory */
    wss_http_final(s);
}

_Static_assert(UPG_HEAD_MAX + 512 <= UINT16_MAX, "a 101's length fits held_101");

int wss_upgrade(struct wss_session *s, const struct upg_request *req,
                const struct upg_str *protocol)
{
    const struct upg_str *key = upg_header_get(req, "Sec-WebSocket-Key");
    char accept[UPG_ACCEPT_LEN + 1], buf[UPG_HEAD_MAX + 512]; /* the protocol echo is < head */
    size_t n;

    s->upgraded = 1; /* the wslay context comes with the first input */
    s->srv->nupgraded++;
    upg_accept_key(key->p, key->len, accept);
    s->deflate = s->srv->cfg->deflate && ws_deflate_negotiate(req);
    s->out.deflate = s->deflate;
    n = upg_response_101_ext(buf, sizeof(buf), accept, protocol ? protocol->p : NULL,
                             protocol ? protocol->len : 0, s->deflate ? ws_deflate_response : NULL);
    if (ws_out_add(&s->out, buf, n) != 0) {
        wss_http_reply(s, 503, NULL, "out of memory");
        return -1;
    }
    s->held_101 = (uint16_t)n;
    if (wss_req.len > req->head_len) { /* frames sent right behind the request head */
        s->headlen = wss_req.len - req->head_len;
        s->head = malloc(s->headlen);
        if (s->head == NULL) {
            s->headlen = 0;
            wss_close(s, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
            return -1;
        }
        memcpy(s->head, wss_req.buf + req->head_len, s->headlen);
        s->headoff = 0;
    }
    wss_set_state(s, WSS_UPGRADED);
    s->deadline_ms = 0; /* the hold's timer is not a deadline to enforce */
    wss_arm_read(s, WSS_HOLD_101_MS);
    return 0;
}

/* The app did not open within WSS_HOLD_101_MS: the 101 goes alone. */
static void wss_hold_expired(struct wss_session *s)
{
    event_remove_timer(s->rev);
    wss_log(LOG_DEBUG, s, "no open within %d ms: the 101 goes alone", WSS_HOLD_101_MS);
    s->held_101 = 0; /* offered now: what the peer leaves unread counts */
    wss_unlink_dirty(s);
    wss_flush_one(s);
}

/* Input before the open: kept with the bytes that came behind the request
 * head, for wslay once the app opens. Reading stops at EOF or past
 * WSS_EARLY_MAX until then. */
static void wss_read_early(struct wss_session *s)
{
    char buf[4096];
    ssize_t n = wss_recv(s, buf, sizeof(buf));
    char *grown;

    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n > 0) {
        grown = realloc(s->head, s->headlen + (size_t)n);
        if (grown == NULL) {
            wss_destroy(s, "out of memory");
            return;
        }
        memcpy(grown + s->headlen, buf, (size_t)n);
        s->head = grown;
        s->headlen += (size_t)n;
        if (s->headlen - s->headoff <= WSS_EARLY_MAX)
            return;
    }
    /* EOF or an error is read again after the open, by wslay */
    event_del(s->rev);
}

void wss_open(struct wss_session *s)
{
    wss_set_state(s, WSS_OPEN);
    s->held_101 = 0;
    wss_set_read_timeout(s, 0); /* reading again if it stopped before the open */
    if (s->headoff < s->headlen) /* frames arrived before the open */
        event_active(s->rev, EV_READ, 0);
    wss_mark_dirty(s); /* the held 101, with what the app queued */
}

static void wss_on_request(struct wss_session *s, const struct upg_request *req, const char *buf,
                           size_t len)
{
    struct http_answer a;

    http_route_request(&s->srv->site, req, &a);
    if (a.asset != NULL) {
        wss_http_reply_asset(s, a.asset, a.not_modified);
        return;
    }
    if (a.app == NULL) {
        wss_http_reply(s, a.status, a.extra, a.body);
        return;
    }
    s->app = a.app;
    wss_req.buf = buf;
    wss_req.len = len;
    a.app->open(s, req, &a.param, a.app->arg);
    wss_req.buf = NULL;
    wss_req.len = 0;
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
    n = wss_recv(s, buf + s->headlen, UPG_HEAD_MAX - s->headlen);
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
    if (s->state == WSS_UPGRADED)
        return; /* the 101 waits for the open */
    wss_unlink_dirty(s);
    wss_flush_one(s);
}

static void wss_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wss_session *s = arg;

    (void)fd;
    if (s->state == WSS_UPGRADED) {
        if (what & EV_TIMEOUT)
            wss_hold_expired(s);
        else
            wss_read_early(s);
        return;
    }
    if ((what & EV_TIMEOUT) || wss_deadline_passed(s)) {
        if (s->state == WSS_HANDSHAKE)
            metrics_inc(MS_REFUSED + MREF_TIMEOUT);
        else
            metrics_inc(MS_DROPS + MDROP_CLOSE_TIMEOUT);
        wss_destroy(s, s->state != WSS_HANDSHAKE ? "close timeout"
                       : s->tls_handshaking     ? "TLS handshake timeout"
                                                : "handshake timeout");
        return;
    }
    if (s->tls_handshaking) {
        wss_tls_step(s);
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
    wss_unlink_dirty(s);
    wss_flush_one(s);
}

/* ---- the server ---------------------------------------------------------- */

static struct wss_session *wss_new(struct wss_server *srv, int fd, const char *peer)
{
    struct wss_session *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        close(fd);
        log_msg(LOG_ERROR, "out of memory accepting %s", peer);
        return NULL;
    }
    s->srv = srv;
    s->fd = fd;
    s->label = "";
    s->id = ++srv->next_conn_id;
    s->out.self = s->id;
    snprintf(s->peer, sizeof(s->peer), "%s", peer);
    s->rev = event_new(srv->base, fd, EV_READ | EV_PERSIST, wss_read_cb, s);
    s->wev = event_new(srv->base, fd, EV_WRITE, wss_write_cb, s);
    if (s->rev == NULL || s->wev == NULL) {
        if (s->rev)
            event_free(s->rev);
        if (s->wev)
            event_free(s->wev);
        free(s);
        close(fd);
        return NULL;
    }
    s->next = srv->sessions;
    if (srv->sessions != NULL)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->nsessions++;
    metrics_inc(wss_gauge(s));
    return s;
}

void wss_accept(struct wss_server *srv, int fd, const char *peer, uint32_t ip_bucket, int tls)
{
    struct wss_session *s = wss_new(srv, fd, peer);

    if (s == NULL) {
        ccount_add(srv->ccount, srv->ccount_row, ip_bucket, -1);
        return;
    }
    s->counted = 1;
    s->ip_bucket = ip_bucket;
    if (tls) {
        s->tls = srv->tls != NULL ? tls_conn_new(srv->tls, fd) : NULL;
        if (s->tls == NULL) {
            wss_destroy(s, "out of memory (TLS)");
            return;
        }
        /* counted as ws:// by wss_new: a wss:// connection from now on */
        metrics_sub(MS_CONNECTIONS + MCONN_HANDSHAKING, 1);
        metrics_inc(MS_CONNECTIONS + MCONN_NSTATES + MCONN_HANDSHAKING);
        s->tls_handshaking = 1;
    }
    wss_set_read_timeout(s, srv->cfg->handshake_timeout);
}

void wss_refuse(struct wss_server *srv, int fd, const char *peer, int status, const char *body,
                int tls)
{
    struct wss_session *s;
    char junk[4096];

    if (tls) {
        log_msg(LOG_INFO, "%s: wss:// connection refused (%d %s): closed without an answer",
                peer, status, body);
        close(fd);
        return;
    }
    s = wss_new(srv, fd, peer);
    if (s == NULL)
        return;
    /* read what already arrived: closing with unread input would send a
     * reset that can destroy the answer before the client reads it */
    while (recv(fd, junk, sizeof(junk), 0) > 0)
        ;
    wss_http_reply(s, status, NULL, body);
    wss_unlink_dirty(s);
    wss_flush_one(s);
}

void wss_server_ping(struct wss_server *srv)
{
    struct wss_session *s, *next;

    for (s = srv->sessions; s != NULL; s = next) {
        next = s->next;
        if (s->state != WSS_OPEN)
            continue;
        if (s->awaiting_pong) {
            wss_drop(s, MDROP_PING_TIMEOUT, "no answer to ping within ping-interval");
            continue;
        }
        s->awaiting_pong = 1;
        wss_queue_ping(s);
    }
    wss_flush_dirty(srv);
}

void wss_server_close_all(struct wss_server *srv, uint16_t code, const char *reason)
{
    struct wss_session *s, *next;

    for (s = srv->sessions; s != NULL; s = next) {
        next = s->next;
        if (s->upgraded)
            wss_close(s, code, reason);
        else if (s->state == WSS_HANDSHAKE)
            wss_destroy(s, reason);
    }
    wss_flush_dirty(srv);
}

int wss_server_init(struct wss_server *srv, struct event_base *base, const struct cfg *cfg,
                    struct ccount *ccount, int row)
{
    srv->base = base;
    srv->cfg = cfg;
    ws_out_deflate_threshold = (size_t)cfg->deflate_threshold;
    srv->ccount = ccount;
    srv->ccount_row = row;
    srv->batch = cfg->io_uring ? send_batch_new() : NULL;
    if (cfg->io_uring && srv->batch == NULL)
        log_msg(LOG_INFO, "io_uring not available (kernel or build): one writev per socket");
    srv->pass_ev = evtimer_new(base, wss_pass_cb, srv);
    if (cfg->tls_port != 0) {
        char err[256];
        srv->tls = tls_server_new(cfg, err, sizeof(err));
        if (srv->tls == NULL) {
            log_msg(LOG_ERROR, "wss://: %s", err);
            return -1;
        }
    }
    return srv->pass_ev != NULL ? 0 : -1;
}

void wss_server_reload_tls(struct wss_server *srv)
{
    char err[256];

    if (srv->tls == NULL)
        return;
    if (tls_server_reload(srv->tls, srv->cfg, err, sizeof(err)) == -1)
        log_msg(LOG_ERROR, "wss://: keeping the certificate in use: %s", err);
    else
        log_msg(LOG_INFO, "wss://: certificate and key re-read (%s)", srv->cfg->tls_cert);
}

void wss_server_deinit(struct wss_server *srv)
{
    while (srv->sessions != NULL)
        wss_destroy(srv->sessions, "worker exiting");
    send_batch_free(srv->batch);
    srv->batch = NULL;
    tls_server_free(srv->tls);
    srv->tls = NULL;
    ws_deflate_shutdown();
    if (srv->pass_ev != NULL)
        event_free(srv->pass_ev);
    srv->pass_ev = NULL;
}
