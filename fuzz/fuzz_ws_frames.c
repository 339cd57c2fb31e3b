/* fuzz_ws_frames.c -- libFuzzer target for a worker's client input path.
 *
 * The real WebSocket transport (worker/ws_session.c and what it calls) runs
 * with the real chat and echo applications (worker/chat.c, worker/echo.c),
 * set up as worker.c's worker_setup does: an event base, a finalized cfg,
 * a struct wss_server (with its own flush-interval timer, fired here as soon
 * as the loop is otherwise quiet) whose route table sends /chat/ to the
 * chat and /echo to echo_app, the shared connection counts, and a broker
 * link (a real ipc_link on one end of a socketpair; the fuzzer plays the
 * broker on the other end). worker.c is not linked and there are no
 * link-time stubs: the chat is given its send function (write to the fake
 * broker link) and the server its on_gone callback (counted) at setup.
 * This file brings only a logger that formats every line (so bad format
 * arguments still show) without printing it (FUZZ_VERBOSE=1 prints).
 *
 * Per input: a socketpair for the client, wss_accept() on one end, a valid
 * upgrade request for /chat/fuzzer (or /echo) written to the other, then the
 * WebSocket bytes derived from the input, the event loop run (EVLOOP_NONBLOCK,
 * bounded) until idle after every step, and everything torn down. Input:
 *
 *   byte 0  mode:  bits 0-1  broker's answer to the JOIN: 0 accepted,
 *                            1 taken, 2 unavailable, 3 none (answered
 *                            after the session is gone)
 *                  bit 2     the broker said Redis is down before the upgrade
 *                  bit 3     frames sent in the same write as the request head
 *                  bit 4     "structured" frames (below), else raw bytes
 *                  bit 5     broker says Redis went down after the join
 *                  bit 6     broker delivers messages after every chunk
 *                  bit 7     client shuts down its write side at the end
 *   byte 1  flags: bit 0     /echo instead of /chat/fuzzer
 *                  bit 1     strict cfg: rate-limit 1/s burst 3,
 *                            max-pending-bytes 1k (else no rate limit, 64k)
 *                  bit 2     the request offers a JWT-looking token in
 *                            Sec-WebSocket-Protocol (browsers' way); byte 3
 *                            sets its length, 3880 + 2 * byte 3, and the
 *                            frames start at byte 4
 *                            (FUZZ_WS_NO_PROTOCOL=1 ignores this bit, to fuzz
 *                            the rest while a bug found there is open)
 *                  bit 3     the broker link drops after the join (as
 *                            worker_on_broker_close handles it) ...
 *                  bit 4     ... and comes back before the frames (else only
 *                            after the teardown), as worker_broker_connect
 *                            does: HELLO, then chat_on_broker_up
 *                  bit 5     /chat/lobby/fuzzer: a room (tagged payloads on
 *                            its channel) instead of the default room
 *   byte 2  chunk: write size for the frames (0 = all at once)
 *   rest    raw mode: bytes sent as they are (seeds hold masked frames);
 *           structured: records [b0][len][payload], b0 the frame's first
 *           byte (FIN, RSV, opcode), len & 0x7f the payload length (bit 7:
 *           16-bit length form), masked with a fixed key.
 *
 * Checked after every input (abort() on violation): the server's bytes are
 * the 101 (or nothing, when the join is never answered while the session
 * lives: the 101 waits for the open) and then well-formed server frames (unmasked, RSV 0, known
 * opcodes, short final control frames, nothing after a close); everything
 * sent to the broker is well-formed IPC of the expected types (one JOIN with
 * the session's request id, PUBLISH texts valid UTF-8 within
 * max-message-size that chat_text_allowed accepts, a LEAVE exactly when a
 * granted name is given back (once directly at most, again as an orphan
 * after a reconnect), a re-registering JOIN per user held at a reconnect,
 * every PING answered by the fake broker confirms the remembered leaves);
 * after teardown no session, user, pending
 * join, dirty entry, connection count or descriptor is left.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "fuzz_utf8.h"
#include "chat.h"
#include "chat_payload.h"
#include "config.h"
#include "conn_count.h"
#include "dict.h"
#include "echo.h"
#include "http_route.h"
#include "ipc.h"
#include "ipc_link.h"
#include "log.h"
#include "ws_session.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define FZ_USER "fuzzer"
#define FZ_MAX_MESSAGE 256       /* small, so 1009 (too big) is within reach */
#define FZ_LOOP_MAX 64           /* event loop passes per step, at most */
#define FZ_RX_MAX (1024 * 1024)  /* bytes kept per stream for the checks */

enum {
    FZ_JOIN_MASK = 0x03,
    FZ_REDIS_DOWN = 0x04,
    FZ_WITH_HEAD = 0x08,
    FZ_STRUCTURED = 0x10,
    FZ_LINK_DOWN = 0x20,
    FZ_DELIVER = 0x40,
    FZ_EOF = 0x80,
};
enum {
    FZ_ECHO = 0x01,
    FZ_STRICT = 0x02,
    FZ_PROTOCOL = 0x04,
    FZ_LOST = 0x08,
    FZ_BACK_EARLY = 0x10,
    FZ_ROOM = 0x20,
};
#define FZ_ROOM_NAME "lobby" /* the room of FZ_ROOM; the default room is "" */
#define FZ_PROTO_MIN 3880
#define FZ_TOKEN_MAX 4096 /* longest token access.c takes from the protocol header */
#define FZ_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* for dGhlIHNhbXBsZSBub25jZQ== */
enum { FZ_ANSWER_NONE = 3 };

struct fz_rx {
    uint8_t *p;
    size_t len;
    int truncated; /* more than FZ_RX_MAX arrived: checks skipped */
    int eof;
};

static struct wss_server fz_srv;  /* the transport, as worker.c's W.srv */
static struct chat fz_chat;       /* the chat application, as W.chat */
static struct http_route fz_routes[4];
static struct ipc_link *fz_broker; /* the worker's end of the link; NULL while away */
static size_t fz_max_frame;        /* IPC frame limit */
static struct cfg fz_cfg_plain, fz_cfg_strict;
static int fz_broker_fd = -1; /* the broker's end of the link */
static int fz_verbose;
static struct fz_rx fz_client_rx, fz_broker_rx;
static int fz_gone_calls; /* srv.on_gone calls in this input */
/* The room of this input's URL, as the IPC messages name it: "" (the
 * default room) or FZ_ROOM_NAME. */
static const char *fz_room = "";
static size_t fz_room_len;

/* ---- what log.c would provide ------------------------------------------------ */

enum log_level log_min_level = LOG_DEBUG;

__attribute__((format(printf, 2, 0))) static void fz_log_v(int err, const char *fmt, va_list ap)
{
    char line[2048];

    vsnprintf(line, sizeof(line), fmt, ap);
    if (fz_verbose)
        fprintf(stderr, "log: %s%s%s\n", line, err ? ": " : "", err ? strerror(err) : "");
}

void log_msg_(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    (void)level;
    va_start(ap, fmt);
    fz_log_v(0, fmt, ap);
    va_end(ap);
}

void log_errno_(enum log_level level, int err, const char *fmt, ...)
{
    va_list ap;

    (void)level;
    va_start(ap, fmt);
    fz_log_v(err, fmt, ap);
    va_end(ap);
}

void log_set_role(const char *role)
{
    (void)role;
}

int log_open(enum log_level min, const char *logfile)
{
    (void)min;
    (void)logfile;
    return 0;
}

void log_close(void)
{
}

void log_raw(const char *msg)
{
    (void)msg;
}

/* ---- what worker.c gives the transport and the chat at setup ---------------- */

/* The chat's way to the broker (worker.c's worker_send_broker). */
static int fz_send_broker(const struct ipc_msg *m, void *arg)
{
    FUZZ_CHECK(arg == &fz_chat);
    if (fz_broker == NULL)
        return -1;
    return ipc_link_send(fz_broker, m);
}

/* srv.on_gone (worker.c's worker_on_session_gone) */
static void fz_on_session_gone(void *arg)
{
    FUZZ_CHECK(arg == &fz_srv);
    fz_gone_calls++; /* worker.c: exit once the last session of a stopping worker is gone */
}

/* srv.site.unavailable (worker.c's worker_unavailable), for /healthz */
static const char *fz_unavailable(void *arg)
{
    (void)arg;
    if (fz_broker == NULL)
        return "unavailable: broker not connected";
    if (!fz_chat.redis_up)
        return "unavailable: redis not reachable";
    return NULL;
}

/* ---- the broker link -------------------------------------------------------- */

static void fz_on_broker_msg(struct ipc_link *l, const struct ipc_msg *m, void *arg)
{
    (void)l;
    (void)arg;
    chat_on_broker_msg(&fz_chat, m);
}

static void fz_on_broker_batch(struct ipc_link *l, void *arg)
{
    (void)l;
    (void)arg;
    wss_flush_dirty(&fz_srv);
}

static void fz_on_broker_close(struct ipc_link *l, const char *why, void *arg)
{
    (void)l;
    (void)arg;
    fprintf(stderr, "fuzz_ws_frames: broker link closed: %s\n", why);
    abort(); /* the fuzzer only ever sends well-formed frames */
}

/* Play the broker: send m to the worker over the link. */
static void fz_broker_send(const struct ipc_msg *m)
{
    uint8_t buf[512];
    ssize_t n = ipc_encode(buf, sizeof(buf), m);
    size_t off = 0;

    FUZZ_CHECK(n > 0);
    while (off < (size_t)n) {
        ssize_t k = write(fz_broker_fd, buf + off, (size_t)n - off);
        FUZZ_CHECK(k > 0); /* small frames, drained socket: never full */
        off += (size_t)k;
    }
}

/* ---- the event loop ------------------------------------------------------------ */

static size_t fz_drain(int fd, struct fz_rx *rx)
{
    uint8_t buf[16384];
    size_t total = 0;

    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n > 0) {
            if (rx->len + (size_t)n > FZ_RX_MAX) {
                rx->truncated = 1;
            } else {
                uint8_t *p = realloc(rx->p, rx->len + (size_t)n);
                FUZZ_CHECK(p != NULL);
                rx->p = p;
                memcpy(rx->p + rx->len, buf, (size_t)n);
                rx->len += (size_t)n;
            }
            total += (size_t)n;
            continue;
        }
        /* an AF_UNIX peer closed with unread input reports ECONNRESET once */
        if (n == 0 || errno == ECONNRESET)
            rx->eof = 1;
        else
            FUZZ_CHECK(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
        return total;
    }
}

/* Run the loop until two passes in a row do nothing visible: no bytes
 * out to the client or the broker, nothing active. */
static void fz_run(int client_fd)
{
    int quiet = 0;

    for (int i = 0; i < FZ_LOOP_MAX && quiet < 2; i++) {
        size_t got;

        event_base_loop(fz_srv.base, EVLOOP_NONBLOCK);
        got = fz_drain(client_fd, &fz_client_rx);
        if (fz_broker_fd != -1) /* -1 while the broker is away */
            got += fz_drain(fz_broker_fd, &fz_broker_rx);
        if (got == 0 && event_base_get_num_events(fz_srv.base, EVENT_BASE_COUNT_ACTIVE) == 0)
            quiet++;
        else
            quiet = 0;
        if (quiet == 2 && evtimer_pending(fz_srv.pass_ev, NULL)) {
            /* a broadcast pass held back by flush-interval (the server's
             * own timer): let its time come now rather than wait for the
             * clock */
            evtimer_del(fz_srv.pass_ev);
            event_active(fz_srv.pass_ev, EV_TIMEOUT, 0);
            quiet = 0;
        }
    }
}

/* Play the broker: two chat messages (one from our own user, which must
 * not come back to it), a join notice, a failed publish and a direct
 * message, in the room's payload form (chat_payload.c). */
static void fz_deliver(int client_fd)
{
    static const char other[] = "hello from another instance"; /* see the echo check */
    static const char own[] = "my own words, echoed by redis";
    enum chat_payload_form form = chat_payload_form_of(fz_room_len);
    char buf[256];
    ssize_t n;
    struct ipc_msg m;

    if (fz_broker_fd == -1)
        return; /* no broker, no deliveries */
    n = chat_payload_message(form, buf, sizeof(buf), "other", 5, other, sizeof(other) - 1);
    FUZZ_CHECK(n > 0);
    ipc_msg_set(&m, IPC_DELIVER, 0, 0, fz_room, fz_room_len, buf, (size_t)n, NULL, 0);
    fz_broker_send(&m);
    n = chat_payload_message(form, buf, sizeof(buf), FZ_USER, strlen(FZ_USER), own,
                             sizeof(own) - 1);
    FUZZ_CHECK(n > 0);
    ipc_msg_set(&m, IPC_DELIVER, 0, 0, fz_room, fz_room_len, buf, (size_t)n, NULL, 0);
    fz_broker_send(&m);
    n = chat_payload_joined(form, buf, sizeof(buf), "newcomer", 8);
    FUZZ_CHECK(n > 0);
    ipc_msg_set(&m, IPC_DELIVER, 0, 0, fz_room, fz_room_len, buf, (size_t)n, NULL, 0);
    fz_broker_send(&m);
    ipc_msg_set(&m, IPC_PUBLISH_FAIL, 7, 0, fz_room, fz_room_len, FZ_USER, strlen(FZ_USER),
                "redis down", 10);
    fz_broker_send(&m);
    ipc_msg_set(&m, IPC_DELIVER_DIRECT, 0, 0, fz_room, fz_room_len, FZ_USER, strlen(FZ_USER),
                "other", 5);
    ipc_msg_set_field(&m, 3, "psst", 4);
    fz_broker_send(&m);
    fz_run(client_fd);
}

/* Write p[0..n) to the client socket in chunks, running the loop after
 * each (and playing the broker when asked). Stops early if the server no
 * longer reads (joining, or closed). */
static void fz_feed(int client_fd, const uint8_t *p, size_t n, size_t chunk, int deliver)
{
    size_t off = 0;
    int stuck = 0;

    while (off < n && stuck < 2) {
        size_t k = chunk != 0 && chunk < n - off ? chunk : n - off;
        ssize_t w = send(client_fd, p + off, k, MSG_NOSIGNAL);

        if (w > 0) {
            off += (size_t)w;
            stuck = 0;
        } else {
            FUZZ_CHECK(errno == EAGAIN || errno == EWOULDBLOCK || errno == EPIPE ||
                       errno == ECONNRESET);
            if (errno == EPIPE || errno == ECONNRESET)
                break;
            stuck++;
        }
        fz_run(client_fd);
        if (deliver)
            fz_deliver(client_fd);
    }
}

/* ---- input decoding ---------------------------------------------------------------- */

/* Structured records to masked client frames. The caller frees *out. */
static size_t fz_frames_build(const uint8_t *p, size_t n, uint8_t **out)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t *o = malloc(n * 5 + 16), *q = o; /* header + mask at most 8 per 2 input bytes */
    size_t i = 0;

    FUZZ_CHECK(o != NULL);
    while (i + 2 <= n) {
        uint8_t b0 = p[i], lb = p[i + 1];
        size_t len = lb & 0x7f;

        i += 2;
        if (len > n - i)
            len = n - i;
        *q++ = b0;
        if ((lb & 0x80) || len >= 126) {
            *q++ = 0x80 | 126;
            *q++ = (uint8_t)(len >> 8);
            *q++ = (uint8_t)len;
        } else {
            *q++ = (uint8_t)(0x80 | len);
        }
        memcpy(q, key, 4);
        q += 4;
        for (size_t j = 0; j < len; j++)
            *q++ = p[i + j] ^ key[j % 4];
        i += len;
    }
    *out = o;
    return (size_t)(q - o);
}

/* FUZZ_DUMP=1: show what each side received (for reproducing a finding). */
static void fz_dump(const char *what, const struct fz_rx *rx)
{
    fprintf(stderr, "%s (%zu bytes%s):\n", what, rx->len, rx->truncated ? ", truncated" : "");
    for (size_t i = 0; i < rx->len; i++) {
        uint8_t c = rx->p[i];
        fputc(c >= 0x20 && c < 0x7f ? c : '.', stderr);
        if (i % 64 == 63 || i + 1 == rx->len)
            fputc('\n', stderr);
    }
}

/* ---- checks --------------------------------------------------------------------------- */

/* What the client received: exactly the 101 (naming the token's protocol
 * entry when one was offered and usable) and well-formed server frames.
 * The 101 waits for the app's open (at most WSS_HOLD_101_MS): a session
 * that ends before it (`may_be_silent`: a join never answered) may have
 * sent nothing at all. */
static void fz_check_client_stream(const struct fz_rx *rx, const char *proto, size_t protolen,
                                   int may_be_silent)
{
    static char want[FZ_TOKEN_MAX + 512];
    const uint8_t *p = rx->p, *end;
    int closed = 0, n;

    if (rx->truncated || (may_be_silent && rx->len == 0))
        return;
    /* the request is always valid: the answer is a 101 (it is flushed
     * before anything that could kill the session) */
    n = snprintf(want, sizeof(want),
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: " FZ_ACCEPT "\r\n"
                 "%s%.*s%s"
                 "\r\n",
                 proto ? "Sec-WebSocket-Protocol: " : "", proto ? (int)protolen : 0,
                 proto ? proto : "", proto ? "\r\n" : "");
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof(want));
    if (rx->len < (size_t)n || memcmp(p, want, (size_t)n) != 0) {
        fprintf(stderr, "fuzz_ws_frames: the 101 is not the one expected (%zu bytes received, "
                        "%d expected)\n", rx->len, n);
        FUZZ_CHECK(!"the client got a complete, correct 101");
    }
    p += n;
    end = rx->p + rx->len;
    while (p < end) {
        uint8_t b0, b1, op;
        uint64_t len;
        size_t hdr = 2;

        FUZZ_CHECK(!closed); /* nothing after the server's close frame */
        FUZZ_CHECK(end - p >= 2);
        b0 = p[0];
        b1 = p[1];
        op = b0 & 0x0f;
        FUZZ_CHECK((b0 & 0x70) == 0);  /* no RSV bits: no extension was agreed */
        FUZZ_CHECK((b1 & 0x80) == 0);  /* server frames are not masked */
        FUZZ_CHECK(op <= 2 || (op >= 8 && op <= 10));
        len = b1 & 0x7f;
        if (len == 126) {
            FUZZ_CHECK(end - p >= 4);
            len = (uint64_t)p[2] << 8 | p[3];
            FUZZ_CHECK(len >= 126); /* shortest form */
            hdr = 4;
        } else if (len == 127) {
            FUZZ_CHECK(end - p >= 10);
            FUZZ_CHECK((p[2] & 0x80) == 0);
            len = 0;
            for (int i = 2; i < 10; i++)
                len = len << 8 | p[i];
            FUZZ_CHECK(len > 0xffff);
            hdr = 10;
        }
        if (op >= 8)
            FUZZ_CHECK((b0 & 0x80) && len <= 125);
        FUZZ_CHECK(len <= (uint64_t)(end - p) - hdr);
        if (op == 1) /* server texts: our fixed texts, echoes, deliveries */
            FUZZ_CHECK(fz_utf8_valid(p + hdr, (size_t)len));
        if (op == 8) {
            FUZZ_CHECK(len == 0 || len >= 2);
            if (len >= 2) {
                unsigned code = (unsigned)p[hdr] << 8 | p[hdr + 1];
                FUZZ_CHECK((code >= 1000 && code <= 1011 && code != 1004 && code != 1005 &&
                            code != 1006) ||
                           code == 1013 || (code >= 3000 && code <= 4999));
                /* the reason is not checked: wslay 1.1.1 echoes a peer's close
                 * reason as it came, valid UTF-8 or not (to that peer only) */
            }
            closed = 1;
        }
        p += hdr + len;
    }
}

struct fz_expect {
    int echo;
    uint32_t join_req;  /* request id of the JOIN, 0 if none was expected */
    int leaves;         /* names given back: plain LEAVEs at most, plain + orphan at least */
    int rejoins;        /* re-registering JOINs expected (users held at a reconnect) */
    int joins_resent;   /* waiting joins sent again at a reconnect */
    int may_publish;    /* the session was joined at some point */
};

/* What the broker links received so far, summed over links. */
struct fz_seen {
    int joins, rejoins, leaves, orphan_leaves, pings, hellos;
};

static int fz_field_is(const struct ipc_field *f, const char *s)
{
    return f->len == strlen(s) && memcmp(f->p, s, f->len) == 0;
}

/* What one broker link received: whole, valid frames, of the right kinds.
 * Counts go to *seen; the buffer is emptied for the next link. */
static void fz_check_broker_stream(struct fz_rx *rx, const struct fz_expect *ex,
                                   struct fz_seen *seen)
{
    const char *ch = fz_srv.cfg->channel;
    size_t chlen = fz_srv.cfg->channel_len;
    size_t pos = 0;

    FUZZ_CHECK(!rx->truncated);
    while (pos < rx->len) {
        struct ipc_msg m;
        ssize_t n = ipc_decode(rx->p + pos, rx->len - pos, fz_max_frame, &m);

        FUZZ_CHECK(n > 0); /* nothing partial, nothing malformed */
        FUZZ_CHECK(m.nfields >= 1);
        /* HELLO names the channel (as worker.c does); PING the default
         * room; the rest the room they are about */
        if (m.type == IPC_HELLO)
            FUZZ_CHECK(m.f[0].len == chlen && memcmp(m.f[0].p, ch, chlen) == 0);
        else if (m.type == IPC_PING)
            FUZZ_CHECK(m.f[0].len == 0);
        else
            FUZZ_CHECK(m.f[0].len == fz_room_len && memcmp(m.f[0].p, fz_room, fz_room_len) == 0);
        if (m.type == IPC_HELLO || m.type == IPC_PING) {
            if (m.type == IPC_HELLO)
                seen->hellos++;
            else
                seen->pings++;
            pos += (size_t)n;
            continue;
        }
        FUZZ_CHECK(m.nfields >= 2 && fz_field_is(&m.f[1], FZ_USER));
        switch (m.type) {
        case IPC_JOIN:
            FUZZ_CHECK(!ex->echo && ex->join_req != 0);
            if (m.flags == IPC_JOIN_REREGISTER) {
                seen->rejoins++;
            } else {
                FUZZ_CHECK(m.id == ex->join_req);
                seen->joins++;
            }
            break;
        case IPC_LEAVE:
            if (m.flags & IPC_LEAVE_F_ORPHAN)
                seen->orphan_leaves++;
            else
                seen->leaves++;
            break;
        case IPC_PUBLISH:
            FUZZ_CHECK(!ex->echo && ex->may_publish);
            FUZZ_CHECK(m.f[2].len <= (uint32_t)fz_srv.cfg->max_message_size);
            FUZZ_CHECK(fz_utf8_valid(m.f[2].p, m.f[2].len));
            FUZZ_CHECK(chat_text_allowed((const char *)m.f[2].p, m.f[2].len));
            break;
        default:
            FUZZ_CHECK(!"unexpected frame type from the worker");
        }
        pos += (size_t)n;
    }
    free(rx->p);
    memset(rx, 0, sizeof(*rx));
}

/* ---- setup ----------------------------------------------------------------------------- */

static void fz_cfg_make(struct cfg *c, int strict)
{
    char err[CFG_ERR_LEN];

    cfg_init(c);
    c->workers = 1;
    c->max_message_size = FZ_MAX_MESSAGE;
    c->max_connections = 100;
    c->handshake_timeout = 10000;
    c->ping_interval = 0;
    c->echo_endpoint = 1;
    c->rate_limit = strict ? 1 : 0;
    c->rate_limit_burst = strict ? 3 : 40;
    c->max_pending_bytes = strict ? 1024 : 64 * 1024;
    if (cfg_finalize(c, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_ws_frames: cfg_finalize: %s\n", err);
        abort();
    }
}

static void fz_broker_connect(int announce);

/* The current cfg (plain or strict, per input) everywhere it is kept. */
static void fz_set_cfg(const struct cfg *c)
{
    fz_srv.cfg = c;
    fz_srv.site.cfg = c;
    fz_chat.cfg = c;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    fz_verbose = getenv("FUZZ_VERBOSE") != NULL;
    fz_cfg_make(&fz_cfg_plain, 0);
    fz_cfg_make(&fz_cfg_strict, 1);

    /* as worker.c's worker_setup and worker_routes */
    {
        struct event_base *base = event_base_new();
        struct ccount *cc = ccount_create();
        int row;
        size_t n = 0;

        FUZZ_CHECK(base != NULL && cc != NULL);
        row = ccount_row_acquire(cc);
        FUZZ_CHECK(row >= 0);
        fz_max_frame = ipc_frame_max_for((size_t)fz_cfg_plain.max_message_size);
        FUZZ_CHECK(fz_cfg_strict.max_message_size == fz_cfg_plain.max_message_size);
        memset(&fz_srv, 0, sizeof(fz_srv));
        FUZZ_CHECK(wss_server_init(&fz_srv, base, &fz_cfg_plain, cc, row) == 0);
        FUZZ_CHECK(fz_srv.pass_ev != NULL);
        fz_srv.on_gone = fz_on_session_gone;
        fz_srv.arg = &fz_srv;
        chat_init(&fz_chat, &fz_cfg_plain, &fz_srv, fz_send_broker, &fz_chat);
        fz_routes[n++] = (struct http_route){"/", HTTP_ROUTE_TEXT, "you are good to go!", NULL,
                                             NULL};
        fz_routes[n++] = (struct http_route){"/healthz", HTTP_ROUTE_HEALTH, NULL, NULL, NULL};
        fz_routes[n++] = (struct http_route){"/chat/", HTTP_ROUTE_WS, NULL, &fz_chat.app, NULL};
        fz_routes[n++] = (struct http_route){"/echo", HTTP_ROUTE_WS, NULL, &echo_app, NULL};
        FUZZ_CHECK(fz_cfg_plain.echo_endpoint && fz_cfg_strict.echo_endpoint);
        fz_srv.site.routes = fz_routes;
        fz_srv.site.nroutes = n;
        fz_srv.site.ws_not_found = "not found: chat endpoints are /chat/{user}";
        fz_srv.site.cfg = &fz_cfg_plain;
        fz_srv.site.unavailable = fz_unavailable;
    }

    fz_broker_connect(0);
    return 0;
}

/* The link to the fake broker, as worker_broker_connect makes it (HELLO,
 * then chat_on_broker_up) when `announce` is set; at startup nothing is
 * sent, the worker has no users yet. */
static void fz_broker_connect(int announce)
{
    int sv[2];

    FUZZ_CHECK(fz_broker == NULL && fz_broker_fd == -1);
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    fz_broker = ipc_link_new(fz_srv.base, sv[0], fz_max_frame, fz_on_broker_msg,
                               fz_on_broker_batch, fz_on_broker_close, NULL);
    FUZZ_CHECK(fz_broker != NULL);
    fz_broker_fd = sv[1];
    if (announce) {
        struct ipc_msg m;
        const char *ch = fz_srv.cfg->channel;
        size_t chlen = fz_srv.cfg->channel_len;

        ipc_msg_set(&m, IPC_HELLO, 0, 0, ch, chlen, "4711", 4, NULL, 0);
        ipc_link_send(fz_broker, &m);
        chat_on_broker_up(&fz_chat);
    }
}

/* The broker confirms the leaves: a PONG for every PING the current link
 * received (the stream is only read here, not consumed). */
static void fz_broker_answer_pings(int client_fd)
{
    size_t pos = 0;

    fz_run(client_fd);
    while (pos < fz_broker_rx.len) {
        struct ipc_msg m, pong;
        ssize_t n = ipc_decode(fz_broker_rx.p + pos, fz_broker_rx.len - pos, fz_max_frame, &m);

        if (n <= 0)
            break; /* fz_check_broker_stream reports it */
        if (m.type == IPC_PING) {
            ipc_msg_set(&pong, IPC_PONG, m.id, 0, m.f[0].p, m.f[0].len, NULL, 0, NULL, 0);
            fz_broker_send(&pong);
        }
        pos += (size_t)n;
    }
    fz_run(client_fd);
}

/* The broker goes away, handled as worker_on_broker_close does. What the
 * old link delivered is checked first. */
static void fz_broker_lose(int client_fd, const struct fz_expect *ex, struct fz_seen *seen)
{
    fz_run(client_fd);
    fz_check_broker_stream(&fz_broker_rx, ex, seen);
    ipc_link_free(fz_broker);
    fz_broker = NULL;
    close(fz_broker_fd);
    fz_broker_fd = -1;
    chat_on_broker_lost(&fz_chat);
    wss_flush_dirty(&fz_srv);
    fz_run(client_fd);
}

/* dict_foreach over a room's members: count the joined ones into *arg */
static void fz_count_joined_member(const char *key, size_t keylen, void *val, void *arg)
{
    (void)key;
    (void)keylen;
    if (((const struct chat_member *)val)->joined)
        (*(int *)arg)++;
}

/* dict_foreach over the chat's rooms */
static void fz_count_joined_room(const char *key, size_t keylen, void *val, void *arg)
{
    (void)key;
    (void)keylen;
    dict_foreach(&((struct chat_room *)val)->members, fz_count_joined_member, arg);
}

/* The names this worker holds, over all rooms. */
static int fz_joined_count(void)
{
    int n = 0;

    dict_foreach(&fz_chat.rooms.by_name, fz_count_joined_room, &n);
    return n;
}

/* The broker is back; it tells the worker that Redis is up. */
static void fz_broker_back(int client_fd, struct fz_expect *ex)
{
    struct ipc_msg m;

    ex->rejoins += fz_joined_count(); /* each held name is registered again */
    ex->joins_resent += (int)fz_chat.pending.count;
    fz_broker_connect(1);
    ipc_msg_set(&m, IPC_LINK, 0, IPC_LINK_UP, "", 0, NULL, 0, NULL, 0);
    fz_broker_send(&m);
    fz_run(client_fd);
}

/* ---- one input ------------------------------------------------------------------------- */

/* dict_foreach over chat.pending: the 4-byte request id, to *arg */
static void fz_pending_id(const char *key, size_t keylen, void *val, void *arg)
{
    (void)val;
    FUZZ_CHECK(keylen == sizeof(uint32_t));
    memcpy(arg, key, sizeof(uint32_t));
}

static void fz_join_reply(uint32_t id, uint16_t status)
{
    struct ipc_msg m;

    ipc_msg_set(&m, IPC_JOIN_REPLY, id, status, fz_room, fz_room_len, FZ_USER, strlen(FZ_USER),
                NULL, 0);
    chat_on_broker_msg(&fz_chat, &m);
    wss_flush_dirty(&fz_srv); /* what the link's batch callback does */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char head_fmt[] = "GET %s HTTP/1.1\r\n"
                                   "Host: fuzz.example\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                   "Sec-WebSocket-Version: 13\r\n"
                                   "%s"
                                   "\r\n";
    static int no_protocol = -1;
    static char proto[FZ_PROTO_MIN + 2 * 255 + 1];
    uint8_t mode = size > 0 ? data[0] : 0, flags = size > 1 ? data[1] : 0;
    size_t chunk = size > 2 ? data[2] : 0;
    size_t skip, blen, protolen = 0;
    const uint8_t *body;
    unsigned answer = mode & FZ_JOIN_MASK;
    struct fz_expect ex = {0, 0, 0, 0, 0, 0};
    struct fz_seen seen = {0, 0, 0, 0, 0, 0};
    struct sockaddr_in sin;
    uint8_t *frames = NULL, *first = NULL;
    size_t nframes, hlen, nfirst;
    char head[UPG_HEAD_MAX];
    char extra[sizeof(proto) + 64] = "";
    uint32_t bucket;
    int cv[2];

    if (no_protocol == -1)
        no_protocol = getenv("FUZZ_WS_NO_PROTOCOL") != NULL;
    if (no_protocol)
        flags &= (uint8_t)~FZ_PROTOCOL;
    skip = (flags & FZ_PROTOCOL) ? 4 : 3;
    body = size > skip ? data + skip : data;
    blen = size > skip ? size - skip : 0;

    fz_set_cfg((flags & FZ_STRICT) ? &fz_cfg_strict : &fz_cfg_plain);
    fz_chat.redis_up = !(mode & FZ_REDIS_DOWN);
    fz_chat.next_req = 0;
    fz_srv.next_conn_id = 0;
    fz_gone_calls = 0;
    ex.echo = flags & FZ_ECHO;
    fz_room = (flags & FZ_ROOM) ? FZ_ROOM_NAME : "";
    fz_room_len = strlen(fz_room);

    if (mode & FZ_STRUCTURED) {
        nframes = fz_frames_build(body, blen, &frames);
    } else {
        frames = malloc(blen + 1);
        FUZZ_CHECK(frames != NULL);
        memcpy(frames, body, blen);
        nframes = blen;
    }
    if (flags & FZ_PROTOCOL) {
        /* "eyJAAA...AAA.e30.sig": three base64url segments, as jwt_looks_like wants */
        protolen = FZ_PROTO_MIN + 2 * (size_t)(size > 3 ? data[3] : 0);
        memset(proto, 'A', protolen);
        memcpy(proto, "eyJ", 3);
        memcpy(proto + protolen - 8, ".e30.sig", 8);
        proto[protolen] = '\0';
        snprintf(extra, sizeof(extra), "Sec-WebSocket-Protocol: chat, %s\r\n", proto);
    }
    hlen = (size_t)snprintf(head, sizeof(head), head_fmt,
                            ex.echo                ? "/echo"
                            : (flags & FZ_ROOM) ? "/chat/" FZ_ROOM_NAME "/" FZ_USER
                                                   : "/chat/" FZ_USER,
                            extra);
    nfirst = hlen + ((mode & FZ_WITH_HEAD) ? nframes : 0);
    first = malloc(nfirst);
    FUZZ_CHECK(first != NULL);
    memcpy(first, head, hlen);
    if (mode & FZ_WITH_HEAD)
        memcpy(first + hlen, frames, nframes);

    /* accept, as worker.c's worker_admit does */
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, cv) == 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(40000);
    sin.sin_addr.s_addr = htonl(0x7f000001);
    bucket = ccount_bucket((const struct sockaddr *)&sin);
    ccount_add(fz_srv.ccount, fz_srv.ccount_row, bucket, 1);
    wss_accept(&fz_srv, cv[0], "fuzz", bucket, 0);
    FUZZ_CHECK(fz_srv.sessions != NULL && fz_srv.sessions->fd == cv[0]);

    /* the head (with the frames, in mode WITH_HEAD) in one write */
    fz_feed(cv[1], first, nfirst, 0, 0);
    fz_run(cv[1]);

    if (!ex.echo) {
        struct wss_session *s = fz_srv.sessions;

        /* the upgrade went through and the name was asked for (the broker
         * decides, whatever it said about Redis) */
        FUZZ_CHECK(s != NULL && s->state == WSS_UPGRADED);
        /* the join's request id is chat's own: the one key of its pending
         * dict (fz_check_broker_stream checks the JOIN carried it) */
        FUZZ_CHECK(fz_chat.pending.count == 1);
        dict_foreach(&fz_chat.pending, fz_pending_id, &ex.join_req);
        FUZZ_CHECK(ex.join_req != 0);
        FUZZ_CHECK(s->app == &fz_chat.app && strcmp(s->label, "user=" FZ_USER) == 0);
        if (answer != FZ_ANSWER_NONE) {
            static const uint16_t status[] = {IPC_JOIN_ACCEPTED, IPC_JOIN_TAKEN,
                                              IPC_JOIN_UNAVAILABLE};
            fz_join_reply(ex.join_req, status[answer]);
            if (status[answer] == IPC_JOIN_ACCEPTED) {
                ex.may_publish = 1;
                ex.leaves = 1; /* given back when the session goes */
            }
            fz_run(cv[1]);
        }
    }
    if (mode & FZ_LINK_DOWN) {
        struct ipc_msg m;

        ipc_msg_set(&m, IPC_LINK, 0, IPC_LINK_DOWN, "", 0, NULL, 0, NULL, 0);
        fz_broker_send(&m);
        fz_run(cv[1]);
    }
    if (flags & FZ_LOST) {
        fz_broker_lose(cv[1], &ex, &seen);
        if (flags & FZ_BACK_EARLY)
            fz_broker_back(cv[1], &ex);
    }
    if (!(mode & FZ_WITH_HEAD))
        fz_feed(cv[1], frames, nframes, chunk, mode & FZ_DELIVER);
    else if (mode & FZ_DELIVER)
        fz_deliver(cv[1]);
    if (mode & FZ_EOF) {
        shutdown(cv[1], SHUT_WR);
        fz_run(cv[1]);
    }

    /* teardown, as worker_main's exit path */
    while (fz_srv.sessions != NULL)
        wss_destroy(fz_srv.sessions, "fuzz teardown");
    if (fz_broker == NULL) /* back only now: the orphaned leaves go out */
        fz_broker_back(cv[1], &ex);
    if (ex.join_req != 0 && answer == FZ_ANSWER_NONE) {
        /* the answer comes after the session left: the name goes back */
        fz_join_reply(ex.join_req, IPC_JOIN_ACCEPTED);
        ex.leaves = 1;
    }
    fz_broker_answer_pings(cv[1]);

    FUZZ_CHECK(fz_gone_calls == 1);
    FUZZ_CHECK(fz_srv.sessions == NULL && fz_srv.nsessions == 0 && fz_srv.nupgraded == 0);
    /* every room went with its last member, and its stream with it (a
     * cursor left on a freed stream would be a use after free for ASan) */
    FUZZ_CHECK(fz_chat.rooms.by_name.count == 0 && fz_chat.pending.count == 0);
    FUZZ_CHECK(fz_srv.dirty == NULL);
    FUZZ_CHECK(ccount_total(fz_srv.ccount) == 0 && ccount_ip(fz_srv.ccount, bucket) == 0);
    FUZZ_CHECK(ipc_link_pending(fz_broker) == 0);
    FUZZ_CHECK(fcntl(cv[0], F_GETFD) == -1 && errno == EBADF); /* the session closed its fd */
    fz_drain(cv[1], &fz_client_rx);
    FUZZ_CHECK(fz_client_rx.eof);
    close(cv[1]);

    if (getenv("FUZZ_DUMP") != NULL) {
        fz_dump("to client", &fz_client_rx);
        fz_dump("to broker (last link)", &fz_broker_rx);
    }
    /* a chat session names the token's entry (echo sessions take no token) */
    fz_check_client_stream(&fz_client_rx,
                           (flags & FZ_PROTOCOL) && !ex.echo && protolen <= FZ_TOKEN_MAX ? proto
                                                                                         : NULL,
                           protolen, !ex.echo && answer == FZ_ANSWER_NONE);
    /* /echo sessions are outside the chat: no broadcast reaches them (unless
     * the client sent that text itself, to have it echoed) */
    if (ex.echo && !fz_client_rx.truncated &&
        memmem(data, size, "hello from another instance", 27) == NULL)
        FUZZ_CHECK(memmem(fz_client_rx.p, fz_client_rx.len, "hello from another instance",
                          27) == NULL);
    fz_check_broker_stream(&fz_broker_rx, &ex, &seen);
    FUZZ_CHECK(seen.joins == (ex.join_req != 0) + ex.joins_resent);
    FUZZ_CHECK(seen.rejoins == ex.rejoins);
    FUZZ_CHECK(seen.leaves <= ex.leaves && seen.leaves + seen.orphan_leaves >= ex.leaves);
    FUZZ_CHECK(seen.orphan_leaves == 0 || seen.hellos > 0); /* re-sent only to a new broker */
    FUZZ_CHECK(seen.hellos == ((flags & FZ_LOST) != 0));
    FUZZ_CHECK(fz_chat.orphans == NULL);

    free(frames);
    free(first);
    /* nothing kept between inputs: libFuzzer's leak check stays quiet */
    free(fz_client_rx.p);
    memset(&fz_client_rx, 0, sizeof(fz_client_rx));
    return 0;
}
