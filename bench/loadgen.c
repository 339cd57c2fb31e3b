/* loadgen.c -- WebSocket load generator for redis-chat (driven by bench/run.sh).
 *
 * Plain C11 + libc + Linux epoll. RFC 6455 client framing written by hand:
 * client frames masked, server frames unmasked (7/16/64-bit lengths, pings
 * answered with pongs, close answered with close).
 *
 * Modes:
 *   fanout  --receivers N --senders S --rate M [--size B]: connect everyone,
 *           wait for every welcome, then the senders send M messages/s in
 *           total (evenly spaced) for --duration s; every other connection
 *           (senders included) records the latency carried in each message
 *           ("<seq> <CLOCK_MONOTONIC ns> xxx..."). After the window it waits
 *           while deliveries still arrive (until none came for
 *           --drain-timeout s, at most --drain-max s); what never came is lost.
 *   idle    --conns N: open N connections, print "ready conns=N", hold them
 *           for --duration s (or until SIGUSR1), answering pings, then close
 *           them with a close frame.
 *   churn   --concurrency C: C loops of connect, upgrade, welcome, close
 *           (1000), wait for the server's close/EOF, for --duration s.
 *   rooms   --rooms R --room-size U --rate M [--size B]: R rooms of U users
 *           (/chat/{room}/{user}; with --one-room everyone joins the default
 *           room /chat/{user}, for servers without rooms), user j of each
 *           room on target j % targets; once everyone is welcomed (and
 *           --baseline s of quiet have passed) M messages/s in total, spread
 *           evenly over the rooms and their users (the plan in
 *           rooms_ledger.h). Every receiver checks each delivery against the
 *           plan: exactly once, from the right sender, in its own room;
 *           reports lost, duplicated, cross-room and misattributed deliveries,
 *           the delivery latency and the join time (connect to welcome) of
 *           every connection.
 *
 * Peers: --peer nchan drives nginx + nchan (a pub/sub location, bench/run.sh
 * --vs nchan) with the same scenarios: no welcome (the 101 is the join), each
 * sender writes its own "name: " before the text (nchan relays the text as
 * it is), and a sender's own messages, which nchan sends back to it, are
 * counted apart (self_echoes) and not as deliveries.
 *
 * Process layout: the parent forks --procs K children (always at least one);
 * each child owns an even share of the connections and runs its own epoll
 * loop; the parent coordinates phases over pipes, aggregates the reports and
 * prints. Stdout carries only phase markers ("ready conns=N", "joined",
 * "baseline", "sending", "done", "drained") and exactly one "result
 * key=value ..." line; the human summary goes to stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <zlib.h>

#include "rooms_ledger.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_TARGETS 16
#define MAX_PROCS 64
#define NBUCKETS 1024 /* latency histogram: log-linear, 32 sub-buckets per octave, in us */
#define HTTP_CODES 600
#define READ_CHUNK (256 * 1024)
#define MAX_FRAME (16u * 1024 * 1024)
#define MAX_HEAD 8192

enum mode { MODE_FANOUT, MODE_IDLE, MODE_CHURN, MODE_ROOMS, MODE_COUNT };
static const char *const mode_names[] = {"fanout", "idle", "churn", "rooms"};

/* failure reasons */
enum fail {
    F_CONNECT, /* socket/bind/connect error */
    F_HTTP,    /* status other than 101 */
    F_TAKEN,   /* "username ... is already taken" / close 4409 */
    F_REFUSED, /* other refusal text or close before the welcome */
    F_TIMEOUT, /* no welcome / no close answer in time */
    F_EOF,     /* connection closed before the welcome */
    F_PROTO,   /* malformed response */
    F_NREASONS
};
static const char *const fail_names[] = {"connect", "http", "taken", "refused",
                                         "timeout", "eof",  "proto"};

/* ---- options ------------------------------------------------------------ */

struct target {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char host[256]; /* for the Host header: "host:port" as given */
};

static struct {
    int mode;
    struct target tgt[MAX_TARGETS];
    int ntgt;
    uint32_t src_lo, src_hi; /* host byte order; 0 = none */
    int procs;
    double duration;
    char prefix[24];
    double connect_rate; /* per second, all processes; 0 = unlimited */
    int tls;             /* wss:// (the certificate is not checked: a benchmark) */
    int deflate;         /* offer permessage-deflate; inflate what comes compressed */
    int max_inflight;    /* handshakes in flight per process */
    long receivers, senders, conns, concurrency;
    double rate; /* fanout, rooms: messages per second, all senders together */
    int size;
    double setup_timeout, drain_timeout, drain_max, timeout, settle;
    long rooms, room_size; /* rooms */
    int one_room;          /* rooms: everyone in the default room */
    double baseline;       /* rooms: quiet seconds between "baseline" and "sending" */
    int peer_nchan;        /* --peer nchan: see "Peers" above */
} O = {
    .mode = -1,
    .procs = 1,
    .duration = 10,
    .max_inflight = 2000,
    .receivers = 100,
    .senders = 1,
    .conns = 1000,
    .concurrency = 100,
    .rate = 10,
    .size = 64,
    .setup_timeout = 60,
    .drain_timeout = 2,
    .drain_max = 30,
    .timeout = 10,
    .settle = 0.5,
    .rooms = 10,
    .room_size = 10,
};

/* ---- small helpers -------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static uint64_t cpu_us(int who)
{
    struct rusage ru;

    getrusage(who, &ru);
    return (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
           (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

static int write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int hist_index(uint64_t us)
{
    int msb, shift;

    if (us < 64)
        return (int)us;
    if (us >= (1ull << 36))
        us = (1ull << 36) - 1;
    msb = 63 - __builtin_clzll(us);
    shift = msb - 5;
    return shift * 32 + (int)(us >> shift);
}

/* middle of bucket i, in us */
static double hist_value(int i)
{
    int shift;
    uint64_t sub, lo, hi;

    if (i < 64)
        return i;
    shift = i / 32 - 1;
    sub = (uint64_t)(i % 32 + 32);
    lo = sub << shift;
    hi = ((sub + 1) << shift) - 1;
    return (double)(lo + hi) / 2.0;
}

/* ---- reports (child -> parent) ------------------------------------------------ */

struct stats {
    uint64_t welcomed;       /* connections that got their welcome */
    uint64_t sent;           /* fanout: messages sent */
    uint64_t delivered;      /* fanout: messages received from senders */
    uint64_t delivered_win;  /* ... of which inside the send window */
    uint64_t expected;       /* fanout: deliveries this process should have seen */
    uint64_t ooo;            /* fanout: sequence gaps or decreases per (sender, receiver) */
    uint64_t other_texts;    /* texts that were neither deliveries nor welcomes */
    uint64_t srv_errors;     /* "message not delivered: ..." and such */
    uint64_t self_echoes;    /* --peer nchan: a sender's own messages, sent back to it */
    uint64_t rx_bytes_win;   /* fanout: bytes read while sending and draining (all connections) */
    uint64_t compressed;     /* --deflate: messages that came compressed */
    uint64_t pings;          /* pings answered */
    uint64_t unexpected_close; /* server closed a connection we held */
    uint64_t sessions;       /* churn: completed sessions */
    uint64_t closed_clean;   /* idle: close handshakes completed at the end */
    uint64_t fail[F_NREASONS];
    uint32_t http[HTTP_CODES];
    uint64_t max_lat_us;
    uint64_t sum_lat_us;
    uint64_t max_lag_us;     /* fanout: how late a send was against its schedule */
    uint64_t max_backlog;    /* fanout: bytes a sender could not write at once */
    uint64_t cpu_us;         /* this child's CPU, whole run */
    uint64_t win_cpu_us;     /* this child's CPU inside the send/hold window */
    uint64_t hist[NBUCKETS];
    uint64_t delivered_x;    /* fanout: deliveries between different targets (instances) */
    uint64_t max_lat_x_us;
    uint64_t hist_x[NBUCKETS];
    uint64_t verdict[RL_NVERDICTS]; /* rooms: deliveries by rl_record's verdict */
    uint64_t max_join_us;    /* connect to welcome */
    uint64_t hist_join[NBUCKETS];
};

/* pipe messages: 1 byte type, 4 bytes length, payload */
enum { MSG_READY = 'R', MSG_ERROR = 'E', MSG_DONE = 'D', MSG_STATS = 'S' };
/* parent -> child: 1 byte type + 8 byte argument */
enum { CTL_GO = 'G', CTL_TOTAL = 'T', CTL_QUIT = 'Q' };

static int up_fd = -1; /* child: write end towards the parent */

static void send_msg(int type, const void *p, uint32_t len)
{
    char hdr[5];

    hdr[0] = (char)type;
    memcpy(hdr + 1, &len, 4);
    if (write_full(up_fd, hdr, 5) < 0 || (len && write_full(up_fd, p, len) < 0))
        _exit(3);
}

/* ---- child: connections ----------------------------------------------------- */

enum cstate {
    C_FREE,
    C_CONNECTING,
    C_TLS, /* --tls: the TLS handshake */
    C_HTTP,
    C_WELCOME,
    C_OPEN,
    C_CLOSING, /* we sent a close: waiting for the server's close / EOF */
    C_DEAD
};
enum role { R_RECV, R_SEND, R_IDLE, R_CHURN, R_ROOM };

struct conn {
    int fd;
    SSL *ssl; /* --tls */
    uint8_t state, role;
    uint8_t ev;      /* registered epoll events (EPOLLIN/EPOLLOUT bits) */
    uint8_t refusal; /* a refusal text seen before the welcome: reason + 1 */
    uint8_t got_close;
    uint32_t idx;  /* receivers: 0..R-1, senders: 0..S-1, idle: 0..N-1, churn: slot,
                      rooms: user in the room 0..U-1 */
    uint32_t room; /* rooms: 0..R-1 */
    uint32_t iter; /* churn: iteration number (part of the name) */
    uint32_t g;    /* global connection number: target / source round-robin */
    uint32_t rlen, wlen, wcap, fraglen;
    char *rbuf, *wbuf, *frag;
    uint32_t *last; /* fanout: last sequence number seen per sender; rooms: per user
                       of the room, last k / R + 1 */
    uint8_t *bits;  /* rooms: the ledger (rooms_ledger.h) */
    uint64_t deadline;
    uint64_t t_conn; /* when the connect started */
    /* senders */
    uint64_t j, next_due, sent;
};

static struct {
    int ep;
    int ctl_fd; /* read end from the parent */
    int id;     /* child number */
    struct conn *c;
    uint32_t n;           /* connections (or churn slots) in this process */
    uint32_t *pending;    /* stack of connection indices to start */
    uint32_t *snd;        /* fanout: indices of the local senders */
    uint32_t nsnd;
    uint32_t npending;
    uint32_t inflight;    /* handshakes in progress */
    uint32_t open;        /* sockets open */
    uint64_t next_connect; /* earliest time for the next connect (rate limit) */
    uint64_t connect_gap;  /* ns between connects, 0 = unlimited */
    uint32_t welcomed_now; /* currently welcomed (fanout/idle setup) */
    char *rd;              /* shared read buffer */
    size_t rdcap;
    SSL_CTX *tls_ctx;      /* --tls */
    uint8_t mask[4];
    struct stats st;
    int setup_failed;
    char fail_text[256];
    /* phases */
    int phase;
    uint64_t t0, t_end, drain_deadline, drain_cap, drain_seen, close_deadline;
    int have_total;
    uint64_t total_sent;
    uint64_t cpu_at_t0;
    /* fanout: local senders, global numbering */
    uint32_t s_lo, s_hi, r_lo, r_hi;
    double interval_ns; /* between two consecutive messages of all senders */
    char ctlbuf[64];
    size_t ctllen;
    uint32_t churn_iter;
    /* rooms: my rooms are [r_lo, r_hi); the next message number to send */
    struct rooms_plan plan;
    uint64_t next_k;
} W;

enum { P_SETUP, P_READY, P_SENDING, P_DRAIN, P_HOLD, P_CLOSING, P_CHURN, P_EXIT };

static size_t conn_name(const struct conn *c, char *buf, size_t cap)
{
    int n;

    switch (c->role) {
    case R_RECV:
        n = snprintf(buf, cap, "%s-r%" PRIu32, O.prefix, c->idx);
        break;
    case R_SEND:
        n = snprintf(buf, cap, "%s-s%" PRIu32, O.prefix, c->idx);
        break;
    case R_IDLE:
        n = snprintf(buf, cap, "%s-i%" PRIu32, O.prefix, c->idx);
        break;
    case R_ROOM:
        return rl_user_name(buf, cap, O.prefix, c->room, c->idx);
    default:
        n = snprintf(buf, cap, "%s-c%" PRIu32 "n%" PRIu32, O.prefix, c->idx, c->iter);
        break;
    }
    return n < 0 ? 0 : (size_t)n;
}

static void conn_set_events(struct conn *c, uint8_t want)
{
    struct epoll_event e;

    if (c->ev == want)
        return;
    e.events = ((want & 1) ? EPOLLIN : 0) | ((want & 2) ? EPOLLOUT : 0);
    e.data.u32 = (uint32_t)(c - W.c);
    epoll_ctl(W.ep, EPOLL_CTL_MOD, c->fd, &e);
    c->ev = want;
}

static void conn_release(struct conn *c)
{
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
        ERR_clear_error();
    }
    if (c->fd >= 0) {
        close(c->fd); /* also removes it from the epoll set */
        c->fd = -1;
        W.open--;
    }
    free(c->rbuf);
    free(c->wbuf);
    free(c->frag);
    c->rbuf = c->wbuf = c->frag = NULL;
    c->rlen = c->wlen = c->wcap = c->fraglen = 0;
    c->ev = 0;
    c->refusal = 0;
    c->got_close = 0;
}

static int conn_in_handshake(const struct conn *c)
{
    return c->state == C_CONNECTING || c->state == C_TLS || c->state == C_HTTP ||
           c->state == C_WELCOME;
}

/* A connection failed: count it; in churn the slot starts again, elsewhere
 * the setup is over. */
static void conn_fail(struct conn *c, int reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_fail(struct conn *c, int reason, const char *fmt, ...)
{
    char name[64];

    W.st.fail[reason]++;
    if (conn_in_handshake(c))
        W.inflight--;
    if (!W.setup_failed && O.mode != MODE_CHURN) {
        va_list ap;
        int n;

        conn_name(c, name, sizeof(name));
        n = snprintf(W.fail_text, sizeof(W.fail_text), "%s: %s: ", name, fail_names[reason]);
        va_start(ap, fmt);
        if (n > 0 && (size_t)n < sizeof(W.fail_text))
            vsnprintf(W.fail_text + n, sizeof(W.fail_text) - (size_t)n, fmt, ap);
        va_end(ap);
        W.setup_failed = 1;
    }
    conn_release(c);
    c->state = C_DEAD;
    if (O.mode == MODE_CHURN) {
        c->state = C_FREE;
        W.pending[W.npending++] = (uint32_t)(c - W.c);
    }
}

/* send() or SSL_write(): bytes taken, or -1 with errno (EAGAIN: full). */
static ssize_t conn_send(struct conn *c, const void *p, size_t len)
{
    size_t done = 0;
    int rc, e;

    if (c->ssl == NULL)
        return send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    rc = SSL_write_ex(c->ssl, p, len, &done);
    if (rc == 1)
        return (ssize_t)done;
    e = SSL_get_error(c->ssl, rc);
    ERR_clear_error();
    errno = e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? EAGAIN : EPIPE;
    return -1;
}

/* recv() or SSL_read(): bytes, 0 at EOF, -1 with errno (EAGAIN: nothing yet). */
static ssize_t conn_recv(struct conn *c, void *p, size_t len)
{
    size_t got = 0;
    int rc, e;

    if (c->ssl == NULL)
        return recv(c->fd, p, len, MSG_DONTWAIT);
    rc = SSL_read_ex(c->ssl, p, len, &got);
    if (rc == 1)
        return (ssize_t)got;
    e = SSL_get_error(c->ssl, rc);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
        return 0;
    errno = ECONNRESET;
    return -1;
}

/* Queue or write bytes; returns -1 when the connection died. */
static int conn_write(struct conn *c, const void *p, size_t len)
{
    if (c->wlen == 0) {
        ssize_t n = conn_send(c, p, len);

        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                W.st.unexpected_close++;
                return -1;
            }
            n = 0;
        }
        if ((size_t)n == len)
            return 0;
        p = (const char *)p + n;
        len -= (size_t)n;
    }
    if (c->wlen + len > c->wcap) {
        uint32_t cap = c->wcap ? c->wcap : 512;
        char *nb;

        while (cap < c->wlen + len)
            cap *= 2;
        nb = realloc(c->wbuf, cap);
        if (nb == NULL)
            return -1;
        c->wbuf = nb;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, p, len);
    c->wlen += (uint32_t)len;
    if (c->wlen > W.st.max_backlog)
        W.st.max_backlog = c->wlen;
    conn_set_events(c, 3);
    return 0;
}

static int conn_flush(struct conn *c)
{
    while (c->wlen > 0) {
        ssize_t n = conn_send(c, c->wbuf, c->wlen);

        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            return -1;
        }
        memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t)n);
        c->wlen -= (uint32_t)n;
    }
    conn_set_events(c, 1);
    return 0;
}

/* Build a masked client frame into out (needs len + 14 bytes). */
static size_t ws_frame(uint8_t *out, int opcode, const void *payload, size_t len)
{
    size_t h = 0, i;
    const uint8_t *p = payload;

    out[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        out[h++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    } else {
        out[h++] = 0x80 | 127;
        for (i = 0; i < 8; i++)
            out[h++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    memcpy(out + h, W.mask, 4);
    h += 4;
    for (i = 0; i < len; i++)
        out[h + i] = p[i] ^ W.mask[i & 3];
    return h + len;
}

static int conn_send_close(struct conn *c, uint16_t code)
{
    uint8_t pl[2] = {(uint8_t)(code >> 8), (uint8_t)code}, fr[16];
    size_t n = ws_frame(fr, 8, pl, 2);

    return conn_write(c, fr, n);
}

static void conn_start(struct conn *c)
{
    const struct target *t = &O.tgt[c->g % (uint32_t)O.ntgt];
    int fd, one = 1;

    if (O.mode == MODE_CHURN)
        c->iter = W.churn_iter++;
    fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->state = C_CONNECTING;
    c->fd = -1;
    c->t_conn = now_ns();
    W.inflight++;
    if (fd < 0) {
        conn_fail(c, F_CONNECT, "socket: %s", strerror(errno));
        return;
    }
    c->fd = fd;
    W.open++;
    if (c->role == R_SEND || c->role == R_CHURN || c->role == R_ROOM)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (O.src_lo && t->addr.ss_family == AF_INET) {
        struct sockaddr_in sa;
        uint32_t span = O.src_hi - O.src_lo + 1;
        uint32_t g = c->g + (O.mode == MODE_CHURN ? c->iter : 0);

        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(O.src_lo + g % span);
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            conn_fail(c, F_CONNECT, "bind: %s", strerror(errno));
            return;
        }
    }
    {
        struct epoll_event e;

        e.events = EPOLLOUT;
        e.data.u32 = (uint32_t)(c - W.c);
        epoll_ctl(W.ep, EPOLL_CTL_ADD, fd, &e);
        c->ev = 2;
    }
    if (connect(fd, (struct sockaddr *)&t->addr, t->addrlen) < 0 && errno != EINPROGRESS) {
        conn_fail(c, F_CONNECT, "%s", strerror(errno));
        return;
    }
    if (O.mode == MODE_CHURN)
        c->deadline = now_ns() + (uint64_t)(O.timeout * 1e9);
}

static void conn_send_request(struct conn *c);

/* --tls: advance the handshake; the request goes once it is done. */
static void conn_tls_step(struct conn *c)
{
    int rc = SSL_do_handshake(c->ssl), e;

    if (rc == 1) {
        conn_send_request(c);
        return;
    }
    e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ) {
        conn_set_events(c, 1);
    } else if (e == SSL_ERROR_WANT_WRITE) {
        conn_set_events(c, 3);
    } else {
        unsigned long err = ERR_get_error();
        ERR_clear_error();
        conn_fail(c, F_CONNECT, "TLS handshake: %s",
                  err ? ERR_reason_error_string(err) : "connection closed");
    }
}

static void conn_connected(struct conn *c)
{
    int err = 0;
    socklen_t el = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    if (err) {
        conn_fail(c, F_CONNECT, "%s", strerror(err));
        return;
    }
    if (O.tls) {
        c->ssl = SSL_new(W.tls_ctx);
        if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
            conn_fail(c, F_CONNECT, "TLS: cannot set up");
            return;
        }
        SSL_set_connect_state(c->ssl);
        c->state = C_TLS;
        conn_tls_step(c);
        return;
    }
    conn_send_request(c);
}

static void conn_send_request(struct conn *c)
{
    char req[512], name[64], room[80] = "";
    const struct target *t = &O.tgt[c->g % (uint32_t)O.ntgt];
    int n;

    conn_name(c, name, sizeof(name));
    if (c->role == R_ROOM && !O.one_room) {
        size_t rl = rl_room_name(room, sizeof(room) - 1, O.prefix, c->room);

        room[rl] = '/';
        room[rl + 1] = 0;
    }
    n = snprintf(req, sizeof(req),
                 "GET /chat/%s%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n%s\r\n",
                 room, name, t->host,
                 O.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                             "client_max_window_bits\r\n" : "");
    c->state = C_HTTP;
    conn_set_events(c, 1);
    if (conn_write(c, req, (size_t)n) < 0)
        conn_fail(c, F_CONNECT, "send: %s", strerror(errno));
}

/* ---- child: what arrives ------------------------------------------------------ */

static void on_welcome(struct conn *c, uint64_t now)
{
    uint64_t us = now > c->t_conn ? (now - c->t_conn) / 1000 : 0;

    c->state = C_OPEN;
    W.inflight--;
    W.st.welcomed++;
    W.welcomed_now++;
    W.st.hist_join[hist_index(us)]++;
    if (us > W.st.max_join_us)
        W.st.max_join_us = us;
    if (O.mode == MODE_CHURN) {
        if (conn_send_close(c, 1000) < 0) {
            conn_fail(c, F_EOF, "closed after the welcome");
            return;
        }
        c->state = C_CLOSING;
        c->deadline = now_ns() + (uint64_t)(O.timeout * 1e9);
    }
}

static uint64_t parse_u64(const char **pp, const char *end, int *ok)
{
    const char *p = *pp;
    uint64_t v = 0;

    *ok = p < end && *p >= '0' && *p <= '9';
    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (uint64_t)(*p++ - '0');
    *pp = p;
    return v;
}

/* "<prefix>-s<idx>: <seq> <ts_ns> xxxx" */
static void on_delivery(struct conn *c, const char *p, size_t n, uint64_t now)
{
    const char *e = p + n, *q;
    size_t pl = strlen(O.prefix);
    uint64_t idx, seq, ts, lat, last;
    int ok;

    if (n < pl + 4 || memcmp(p, O.prefix, pl) != 0 || p[pl] != '-' || p[pl + 1] != 's')
        goto other;
    q = p + pl + 2;
    idx = parse_u64(&q, e, &ok);
    if (!ok || e - q < 2 || q[0] != ':' || q[1] != ' ')
        goto other;
    q += 2;
    seq = parse_u64(&q, e, &ok);
    if (!ok || q >= e || *q != ' ')
        goto other; /* e.g. "P-s3: has joined the chat!" */
    q++;
    ts = parse_u64(&q, e, &ok);
    if (!ok || idx >= (uint64_t)O.senders)
        goto other;
    if (O.peer_nchan && c->role == R_SEND && c->idx == idx) {
        W.st.self_echoes++;
        return;
    }
    W.st.delivered++;
    if (now < W.t_end)
        W.st.delivered_win++;
    lat = now > ts ? (now - ts) / 1000 : 0;
    W.st.hist[hist_index(lat)]++;
    if (O.ntgt > 1 && ((uint64_t)O.receivers + idx) % (uint64_t)O.ntgt != c->g % (uint32_t)O.ntgt) {
        W.st.delivered_x++;
        W.st.hist_x[hist_index(lat)]++;
        if (lat > W.st.max_lat_x_us)
            W.st.max_lat_x_us = lat;
    }
    W.st.sum_lat_us += lat;
    if (lat > W.st.max_lat_us)
        W.st.max_lat_us = lat;
    last = c->last[idx];
    if (seq != last + 1)
        W.st.ooo++;
    if (seq > last)
        c->last[idx] = (uint32_t)seq;
    return;
other:
    /* notices ("x: has joined the chat!") and server texts without a user */
    q = memchr(p, ':', n);
    if (q == NULL || memchr(p, ' ', (size_t)(q - p)) != NULL)
        W.st.srv_errors++;
    else
        W.st.other_texts++;
}

/* rooms: "<prefix>-r<room>u<user>: <k> <ts_ns> xxxx", checked against the plan */
static void on_room_delivery(struct conn *c, const char *p, size_t n, uint64_t now)
{
    uint32_t from_room, from_user;
    uint64_t k, ts, lat, m;
    enum rl_verdict v;
    const char *q;

    if (!rl_parse(p, n, O.prefix, &from_room, &from_user, &k, &ts)) {
        /* notices ("x: has joined the chat!") and server texts without a user */
        q = memchr(p, ':', n);
        if (q == NULL || memchr(p, ' ', (size_t)(q - p)) != NULL)
            W.st.srv_errors++;
        else
            W.st.other_texts++;
        return;
    }
    if (O.peer_nchan && from_user == c->idx && from_room == c->room) {
        W.st.self_echoes++;
        return;
    }
    v = rl_record(&W.plan, c->bits, c->room, c->idx, from_room, from_user, k);
    W.st.verdict[v]++;
    W.st.delivered++;
    if (now < W.t_end)
        W.st.delivered_win++;
    if (v != RL_OK)
        return;
    lat = now > ts ? (now - ts) / 1000 : 0;
    W.st.hist[hist_index(lat)]++;
    if (O.ntgt > 1 && (from_room * (uint64_t)O.room_size + from_user) % (uint64_t)O.ntgt !=
                          c->g % (uint32_t)O.ntgt) {
        W.st.delivered_x++;
        W.st.hist_x[hist_index(lat)]++;
        if (lat > W.st.max_lat_x_us)
            W.st.max_lat_x_us = lat;
    }
    W.st.sum_lat_us += lat;
    if (lat > W.st.max_lat_us)
        W.st.max_lat_us = lat;
    if (c->last != NULL) { /* one sender's messages in the order sent */
        m = k / (uint64_t)O.rooms + 1;
        if (m < c->last[from_user])
            W.st.ooo++;
        else
            c->last[from_user] = (uint32_t)m;
    }
}

static void on_text(struct conn *c, const char *p, size_t n, uint64_t now)
{
    if (c->state == C_WELCOME) {
        char name[64];
        size_t nl = conn_name(c, name, sizeof(name));

        if (n == nl + 9 && memcmp(p, "Welcome ", 8) == 0 && memcmp(p + 8, name, nl) == 0 &&
            p[n - 1] == '!')
            on_welcome(c, now);
        else if (n > 9 && memcmp(p, "username ", 9) == 0)
            c->refusal = F_TAKEN + 1;
        else if (memchr(p, ':', n) == NULL)
            c->refusal = F_REFUSED + 1; /* "chat service unavailable, ..." */
        return;
    }
    if (c->state == C_OPEN && O.mode == MODE_FANOUT)
        on_delivery(c, p, n, now);
    else if (c->state == C_OPEN && O.mode == MODE_ROOMS)
        on_room_delivery(c, p, n, now);
    else
        W.st.other_texts++;
}

/* Returns -1 when the connection is gone. */
static int on_frame(struct conn *c, int fin, int op, char *p, size_t n, uint64_t now)
{
    switch (op) {
    case 0: /* continuation */
    case 1: /* text */
        if (op == 1 && fin && c->fraglen == 0) {
            on_text(c, p, n, now);
            break;
        }
        {
            char *nb = realloc(c->frag, c->fraglen + n + 1);

            if (nb == NULL)
                return -1;
            c->frag = nb;
            memcpy(c->frag + c->fraglen, p, n);
            c->fraglen += (uint32_t)n;
            if (fin) {
                on_text(c, c->frag, c->fraglen, now);
                free(c->frag);
                c->frag = NULL;
                c->fraglen = 0;
            }
        }
        break;
    case 8: { /* close */
        unsigned code = n >= 2 ? ((unsigned)(uint8_t)p[0] << 8 | (uint8_t)p[1]) : 1005;

        c->got_close = 1;
        if (c->state == C_CLOSING)
            break; /* the answer to ours: the server closes the TCP next */
        if (conn_in_handshake(c)) {
            int why = c->refusal ? c->refusal - 1 : code == 4409 ? F_TAKEN : F_REFUSED;

            conn_fail(c, why, "close %u %.*s", code, n > 2 ? (int)(n - 2) : 0, p + 2);
            return -1;
        }
        W.st.unexpected_close++;
        if (W.setup_failed == 0 && O.mode != MODE_CHURN && W.phase == P_SETUP) {
            conn_fail(c, F_REFUSED, "closed by the server (%u) during setup", code);
            return -1;
        }
        if (conn_send_close(c, code == 1005 ? 1000 : (uint16_t)code) < 0) {
            conn_release(c);
            c->state = C_DEAD;
            return -1;
        }
        c->state = C_CLOSING;
        c->deadline = now + 2000000000ull;
        break;
    }
    case 9: { /* ping -> pong */
        uint8_t fr[140];
        size_t fl;

        if (n > 125)
            n = 125;
        fl = ws_frame(fr, 10, p, n);
        W.st.pings++;
        if (c->state != C_CLOSING && conn_write(c, fr, fl) < 0) {
            conn_release(c);
            c->state = C_DEAD;
            return -1;
        }
        break;
    }
    default: /* pong, binary: ignored */
        break;
    }
    return 0;
}

/* Consume what is in buf; returns bytes used, or -1 when the connection is gone. */
/* --deflate: a message's payload inflated into a scratch buffer (valid
 * until the next call), a fresh raw stream each time (the server takes no
 * context over); NULL when it does not inflate. */
static char *lg_inflate(const char *in, size_t len, size_t *outlen)
{
    static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
    static char *out;
    static z_stream z;
    static int ready;
    int rc, pass;

    if (out == NULL && (out = malloc(MAX_FRAME)) == NULL)
        die("out of memory");
    if (!ready) {
        if (inflateInit2(&z, -15) != Z_OK)
            die("zlib: inflateInit2");
        ready = 1;
    } else if (inflateReset(&z) != Z_OK) {
        return NULL;
    }
    z.next_out = (Bytef *)out;
    z.avail_out = MAX_FRAME;
    for (pass = 0, rc = Z_OK; pass < 2 && rc != Z_STREAM_END; pass++) {
        z.next_in = (Bytef *)(uintptr_t)(pass == 0 ? (const uint8_t *)in : tail);
        z.avail_in = (uInt)(pass == 0 ? len : sizeof(tail));
        rc = inflate(&z, Z_SYNC_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && !(rc == Z_BUF_ERROR && z.avail_in == 0))
            return NULL;
    }
    *outlen = MAX_FRAME - z.avail_out;
    return out;
}

static long conn_parse(struct conn *c, char *buf, size_t len, uint64_t now)
{
    size_t off = 0;

    if (c->state == C_HTTP) {
        char *end = memmem(buf, len, "\r\n\r\n", 4);
        int code = 0;

        if (end == NULL) {
            if (len > MAX_HEAD) {
                conn_fail(c, F_PROTO, "response head too long");
                return -1;
            }
            return 0;
        }
        if (len >= 12 && memcmp(buf, "HTTP/1.", 7) == 0)
            code = atoi(buf + 9);
        if (code != 101) {
            if (code > 0 && code < HTTP_CODES)
                W.st.http[code]++;
            conn_fail(c, code ? F_HTTP : F_PROTO, "HTTP status %d", code);
            return -1;
        }
        c->state = C_WELCOME;
        off = (size_t)(end - buf) + 4;
        if (O.peer_nchan) {
            on_welcome(c, now);
            if (c->state != C_OPEN && c->state != C_CLOSING)
                return -1;
        }
    }
    while (len - off >= 2) {
        uint8_t b0 = (uint8_t)buf[off], b1 = (uint8_t)buf[off + 1];
        size_t h = 2;
        uint64_t pl = b1 & 0x7f;
        char *p;

        if (pl == 126) {
            if (len - off < 4)
                break;
            pl = (uint64_t)(uint8_t)buf[off + 2] << 8 | (uint8_t)buf[off + 3];
            h = 4;
        } else if (pl == 127) {
            int i;

            if (len - off < 10)
                break;
            pl = 0;
            for (i = 0; i < 8; i++)
                pl = pl << 8 | (uint8_t)buf[off + 2 + (size_t)i];
            h = 10;
        }
        if (b1 & 0x80)
            h += 4;
        if (pl > MAX_FRAME) {
            conn_fail(c, F_PROTO, "frame of %" PRIu64 " bytes", pl);
            return -1;
        }
        if (len - off < h + pl)
            break;
        p = buf + off + h;
        if (b1 & 0x80) { /* servers must not mask; unmask anyway */
            const uint8_t *m = (const uint8_t *)p - 4;
            uint64_t i;

            for (i = 0; i < pl; i++)
                p[i] = (char)((uint8_t)p[i] ^ m[i & 3]);
        }
        off += h + pl;
        if ((b0 & 0x40) && O.deflate) { /* a compressed message, in one frame here */
            size_t zn = 0;
            if (!(b0 & 0x80) || (p = lg_inflate(p, (size_t)pl, &zn)) == NULL) {
                conn_fail(c, F_PROTO, "a compressed frame that does not inflate");
                return -1;
            }
            pl = zn;
            W.st.compressed++;
        }
        if (on_frame(c, b0 & 0x80, b0 & 0x0f, p, (size_t)pl, now) < 0)
            return -1;
        if (c->state == C_FREE || c->state == C_DEAD)
            return -1;
    }
    return (long)off;
}

static void conn_eof(struct conn *c)
{
    if (conn_in_handshake(c)) {
        if (c->refusal)
            conn_fail(c, c->refusal - 1, "closed after a refusal text");
        else
            conn_fail(c, F_EOF, "connection closed by the server");
        return;
    }
    if (c->state == C_CLOSING) {
        if (O.mode == MODE_CHURN)
            W.st.sessions++;
        else if (c->got_close)
            W.st.closed_clean++;
    } else if (c->state == C_OPEN) {
        W.st.unexpected_close++;
        if (O.mode != MODE_CHURN && W.phase == P_SETUP && !W.setup_failed) {
            conn_fail(c, F_EOF, "connection closed by the server during setup");
            return;
        }
    }
    if (c->state == C_OPEN || c->state == C_CLOSING)
        W.welcomed_now--;
    conn_release(c);
    c->state = C_DEAD;
    if (O.mode == MODE_CHURN) {
        c->state = C_FREE;
        W.pending[W.npending++] = (uint32_t)(c - W.c);
    }
}

static void conn_readable(struct conn *c, uint64_t now)
{
    size_t have = c->rlen, total;
    ssize_t n;
    long used;

    if (W.rdcap < have + READ_CHUNK) {
        W.rdcap = have + READ_CHUNK;
        W.rd = realloc(W.rd, W.rdcap);
        if (W.rd == NULL)
            die("out of memory");
    }
    if (have)
        memcpy(W.rd, c->rbuf, have);
    n = conn_recv(c, W.rd + have, W.rdcap - have);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        conn_eof(c); /* ECONNRESET and such */
        return;
    }
    if (n == 0) {
        conn_eof(c);
        return;
    }
    total = have + (size_t)n;
    if (W.phase == P_SENDING || W.phase == P_DRAIN) /* WebSocket bytes (TLS: inside it) */
        W.st.rx_bytes_win += (uint64_t)n;
    used = conn_parse(c, W.rd, total, now);
    if (used < 0)
        return;
    if ((size_t)used == total) {
        free(c->rbuf);
        c->rbuf = NULL;
        c->rlen = 0;
    } else {
        size_t left = total - (size_t)used;

        if (left > c->rlen || c->rbuf == NULL) {
            char *nb = realloc(c->rbuf, left);

            if (nb == NULL)
                die("out of memory");
            c->rbuf = nb;
        }
        memcpy(c->rbuf, W.rd + used, left);
        c->rlen = (uint32_t)left;
    }
}

static void conn_event(struct conn *c, uint32_t events, uint64_t now)
{
    if (c->fd < 0)
        return;
    if (c->state == C_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            conn_connected(c);
        return;
    }
    if (c->state == C_TLS) {
        conn_tls_step(c);
        return;
    }
    if ((events & EPOLLOUT) && c->wlen) {
        if (conn_flush(c) < 0) {
            conn_eof(c);
            return;
        }
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_readable(c, now);
    /* records OpenSSL has read but not handed out do not wake epoll again */
    while (c->fd >= 0 && c->ssl != NULL && SSL_pending(c->ssl) > 0)
        conn_readable(c, now);
}

/* ---- child: phases -------------------------------------------------------- */

static void start_pending(uint64_t now)
{
    uint32_t budget = W.npending; /* a slot that fails at once waits for the next round */

    while (budget-- > 0 && W.npending > 0 && W.inflight < (uint32_t)O.max_inflight) {
        struct conn *c;

        if (W.connect_gap) {
            if (now < W.next_connect)
                return;
            W.next_connect += W.connect_gap;
            if (W.next_connect < now - 100000000ull) /* no catch-up burst after a stall */
                W.next_connect = now;
        }
        c = &W.c[W.pending[--W.npending]];
        conn_start(c);
    }
}

/* rooms: message k is due at t0 + k / rate; this process sends those of its rooms */
static uint64_t room_due(uint64_t k)
{
    return W.t0 + (uint64_t)((double)k * W.interval_ns);
}

/* What a sender writes before its text: nothing for redis-chat, which names
 * the sender itself; "name: " for nchan, which relays the text as it is. */
static size_t sender_tag(const struct conn *c, char *buf, size_t cap)
{
    size_t n;

    if (!O.peer_nchan)
        return 0;
    n = conn_name(c, buf, cap - 2);
    buf[n++] = ':';
    buf[n++] = ' ';
    return n;
}

static void send_due_rooms(uint64_t now)
{
    while (W.r_lo < W.r_hi) {
        uint64_t k = W.next_k, due = room_due(k), ts;
        struct conn *c;
        char text[8192];
        uint8_t fr[8192 + 16];
        size_t len;

        if (due > now || due >= W.t_end)
            return;
        W.next_k = rl_next_local(&W.plan, k + 1, W.r_lo, W.r_hi);
        c = &W.c[(rl_room_of(&W.plan, k) - W.r_lo) * (uint32_t)O.room_size +
                 rl_sender_of(&W.plan, k)];
        ts = now_ns();
        len = sender_tag(c, text, sizeof(text));
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%" PRIu64 " %" PRIu64 " ", k, ts);
        if (len < (size_t)O.size) {
            memset(text + len, 'x', (size_t)O.size - len);
            len = (size_t)O.size;
        }
        if (ts - due > W.st.max_lag_us * 1000)
            W.st.max_lag_us = (ts - due) / 1000;
        if (c->state != C_OPEN)
            continue;
        if (conn_write(c, fr, ws_frame(fr, 1, text, len)) < 0) {
            conn_release(c);
            c->state = C_DEAD;
            continue;
        }
        c->sent++;
        W.st.sent++;
    }
}

static void send_due(uint64_t now)
{
    uint32_t i;

    if (O.mode == MODE_ROOMS) {
        send_due_rooms(now);
        return;
    }
    for (i = 0; i < W.nsnd; i++) {
        struct conn *c = &W.c[W.snd[i]];

        while (c->next_due <= now && c->next_due < W.t_end) {
            char text[8192];
            uint8_t fr[8192 + 16];
            uint64_t ts = now_ns();
            size_t len = sender_tag(c, text, sizeof(text));

            len += (size_t)snprintf(text + len, sizeof(text) - len, "%" PRIu64 " %" PRIu64 " ",
                                    c->j + 1, ts);

            if (len < (size_t)O.size) {
                memset(text + len, 'x', (size_t)O.size - len);
                len = (size_t)O.size;
            }
            if (ts - c->next_due > W.st.max_lag_us * 1000)
                W.st.max_lag_us = (ts - c->next_due) / 1000;
            c->j++;
            c->next_due = W.t0 + (uint64_t)((double)(c->j * (uint64_t)O.senders + c->idx) *
                                            W.interval_ns);
            if (c->state != C_OPEN)
                continue;
            if (conn_write(c, fr, ws_frame(fr, 1, text, len)) < 0) {
                conn_release(c);
                c->state = C_DEAD;
                continue;
            }
            c->sent++;
            W.st.sent++;
        }
    }
}

static uint64_t next_send_due(void)
{
    uint64_t best = UINT64_MAX;
    uint32_t i;

    if (O.mode == MODE_ROOMS)
        return W.r_lo < W.r_hi ? room_due(W.next_k) : best;
    for (i = 0; i < W.nsnd; i++)
        if (W.c[W.snd[i]].next_due < best)
            best = W.c[W.snd[i]].next_due;
    return best;
}

static void check_deadlines(uint64_t now)
{
    uint32_t i;

    for (i = 0; i < W.n; i++) {
        struct conn *c = &W.c[i];

        if (c->fd < 0)
            continue;
        if (O.mode == MODE_CHURN) {
            if ((conn_in_handshake(c) || c->state == C_CLOSING) && now >= c->deadline) {
                if (c->state == C_CLOSING) {
                    W.welcomed_now--;
                    conn_fail(c, F_TIMEOUT, "no close from the server");
                } else {
                    conn_fail(c, F_TIMEOUT, "no welcome");
                }
            }
        } else if (c->state == C_CLOSING && now >= c->deadline) {
            W.welcomed_now--;
            conn_release(c);
            c->state = C_DEAD;
        }
    }
}

static void close_all(uint64_t now)
{
    uint32_t i;

    for (i = 0; i < W.n; i++) {
        struct conn *c = &W.c[i];

        if (c->fd < 0 || c->state != C_OPEN)
            continue;
        if (conn_send_close(c, 1000) < 0) {
            W.welcomed_now--;
            conn_release(c);
            c->state = C_DEAD;
            continue;
        }
        c->state = C_CLOSING;
        c->deadline = now + 5000000000ull;
    }
}

static void child_report_stats(void)
{
    W.st.cpu_us = cpu_us(RUSAGE_SELF);
    send_msg(MSG_STATS, &W.st, sizeof(W.st));
}

static void on_ctl(uint64_t now)
{
    ssize_t n = read(W.ctl_fd, W.ctlbuf + W.ctllen, sizeof(W.ctlbuf) - W.ctllen);

    if (n <= 0) {
        if (n < 0 && errno == EINTR)
            return;
        _exit(4); /* parent gone */
    }
    W.ctllen += (size_t)n;
    while (W.ctllen >= 9) {
        uint64_t arg;
        int t = W.ctlbuf[0];

        memcpy(&arg, W.ctlbuf + 1, 8);
        memmove(W.ctlbuf, W.ctlbuf + 9, W.ctllen - 9);
        W.ctllen -= 9;
        if (t == CTL_GO) {
            W.t0 = arg;
            W.t_end = arg + (uint64_t)(O.duration * 1e9);
            W.cpu_at_t0 = cpu_us(RUSAGE_SELF);
            if (O.mode == MODE_FANOUT) {
                uint32_t i;

                for (i = 0; i < W.nsnd; i++)
                    W.c[W.snd[i]].next_due =
                        W.t0 + (uint64_t)((double)W.c[W.snd[i]].idx * W.interval_ns);
                W.phase = P_SENDING;
            } else if (O.mode == MODE_ROOMS) {
                W.next_k = rl_next_local(&W.plan, 0, W.r_lo, W.r_hi);
                W.phase = P_SENDING;
            } else if (O.mode == MODE_CHURN) {
                W.npending = W.n; /* every slot starts now */
                W.phase = P_CHURN;
            } else {
                W.phase = P_HOLD;
            }
        } else if (t == CTL_TOTAL) {
            W.have_total = 1;
            W.total_sent = arg;
        } else if (t == CTL_QUIT) {
            W.st.win_cpu_us = cpu_us(RUSAGE_SELF) - W.cpu_at_t0;
            close_all(now);
            W.phase = P_CLOSING;
            W.close_deadline = now + 5000000000ull;
        }
    }
}

static void child_main(int id, int ctl_fd)
{
    struct epoll_event evs[1024];
    uint32_t i, nloc;
    uint64_t start = now_ns(), setup_deadline, last_scan = 0;
    int ready_sent = 0;

    memset(&W, 0, sizeof(W));
    W.id = id;
    W.ctl_fd = ctl_fd;
    W.ep = epoll_create1(EPOLL_CLOEXEC);
    if (O.tls) {
        W.tls_ctx = SSL_CTX_new(TLS_client_method());
        if (W.tls_ctx == NULL)
            die("TLS: cannot create a context");
        SSL_CTX_set_verify(W.tls_ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(W.tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                        SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                        SSL_MODE_RELEASE_BUFFERS);
        SSL_CTX_set_alpn_protos(W.tls_ctx, (const unsigned char *)"\x08http/1.1", 9);
    }
    if (W.ep < 0)
        die("epoll_create1: %s", strerror(errno));
    {
        uint32_t r = (uint32_t)getpid() * 2654435761u ^ (uint32_t)start;

        for (i = 0; i < 4; i++)
            W.mask[i] = (uint8_t)(r >> (8 * i)) | 1;
    }
    {
        struct epoll_event e;

        e.events = EPOLLIN;
        e.data.u32 = UINT32_MAX;
        epoll_ctl(W.ep, EPOLL_CTL_ADD, ctl_fd, &e);
    }
    /* my share */
    if (O.mode == MODE_FANOUT) {
        W.r_lo = (uint32_t)(O.receivers * id / O.procs);
        W.r_hi = (uint32_t)(O.receivers * (id + 1) / O.procs);
        W.s_lo = (uint32_t)(O.senders * id / O.procs);
        W.s_hi = (uint32_t)(O.senders * (id + 1) / O.procs);
        nloc = (W.r_hi - W.r_lo) + (W.s_hi - W.s_lo);
        W.interval_ns = 1e9 / O.rate;
    } else if (O.mode == MODE_ROOMS) {
        /* whole rooms per process: a room's senders and receivers are local */
        W.r_lo = (uint32_t)(O.rooms * id / O.procs);
        W.r_hi = (uint32_t)(O.rooms * (id + 1) / O.procs);
        nloc = (W.r_hi - W.r_lo) * (uint32_t)O.room_size;
        W.interval_ns = 1e9 / O.rate;
        W.plan.rooms = (uint32_t)O.rooms;
        W.plan.size = (uint32_t)O.room_size;
        W.plan.one_room = O.one_room;
        W.plan.max_msgs = (uint64_t)(O.rate * O.duration) + 2;
    } else {
        long total = O.mode == MODE_IDLE ? O.conns : O.concurrency;

        W.r_lo = (uint32_t)(total * id / O.procs);
        W.r_hi = (uint32_t)(total * (id + 1) / O.procs);
        nloc = W.r_hi - W.r_lo;
    }
    W.n = nloc;
    W.c = calloc(nloc ? nloc : 1, sizeof(*W.c));
    W.pending = calloc(nloc ? nloc : 1, sizeof(*W.pending));
    W.snd = calloc(nloc ? nloc : 1, sizeof(*W.snd));
    if (W.c == NULL || W.pending == NULL || W.snd == NULL)
        die("out of memory");
    for (i = 0; i < nloc; i++) {
        struct conn *c = &W.c[i];

        c->fd = -1;
        if (O.mode == MODE_FANOUT) {
            uint32_t nr = W.r_hi - W.r_lo;

            c->role = i < nr ? R_RECV : R_SEND;
            c->idx = i < nr ? W.r_lo + i : W.s_lo + (i - nr);
            c->g = c->role == R_RECV ? c->idx : (uint32_t)O.receivers + c->idx;
            if (c->role == R_SEND)
                W.snd[W.nsnd++] = i;
            c->last = calloc((size_t)O.senders, sizeof(uint32_t));
            if (c->last == NULL)
                die("out of memory");
        } else if (O.mode == MODE_ROOMS) {
            c->role = R_ROOM;
            c->room = W.r_lo + i / (uint32_t)O.room_size;
            c->idx = i % (uint32_t)O.room_size;
            c->g = c->room * (uint32_t)O.room_size + c->idx;
            c->bits = calloc(rl_bitmap_bytes(&W.plan) + 1, 1);
            if (!O.one_room)
                c->last = calloc((size_t)O.room_size, sizeof(uint32_t));
            if (c->bits == NULL || (!O.one_room && c->last == NULL))
                die("out of memory");
        } else {
            c->role = O.mode == MODE_IDLE ? R_IDLE : R_CHURN;
            c->idx = W.r_lo + i;
            c->g = c->idx;
        }
        W.pending[nloc - 1 - i] = i; /* pop in index order */
    }
    W.npending = nloc;
    if (O.connect_rate > 0)
        W.connect_gap = (uint64_t)(1e9 * O.procs / O.connect_rate);
    W.next_connect = start;
    setup_deadline = start + (uint64_t)(O.setup_timeout * 1e9);
    W.phase = O.mode == MODE_CHURN ? P_READY : P_SETUP;
    if (O.mode == MODE_CHURN) {
        W.npending = 0; /* slots start on GO */
        send_msg(MSG_READY, NULL, 0);
        ready_sent = 1;
    }

    for (;;) {
        uint64_t now = now_ns(), wake = now + 100000000ull;
        int n, k, timeout_ms;

        if (W.phase == P_SETUP || (W.phase == P_CHURN && now < W.t_end))
            start_pending(now);
        if (W.phase == P_SETUP) {
            if (W.setup_failed) {
                send_msg(MSG_ERROR, W.fail_text, (uint32_t)strlen(W.fail_text) + 1);
                _exit(1);
            }
            if (W.st.welcomed == nloc) {
                W.phase = P_READY;
                if (!ready_sent)
                    send_msg(MSG_READY, NULL, 0);
                ready_sent = 1;
            } else if (now >= setup_deadline) {
                uint32_t f;
                int len = snprintf(W.fail_text, sizeof(W.fail_text),
                                   "setup timeout after %.0f s: welcomed %" PRIu64 "/%" PRIu32
                                   ", in flight %" PRIu32 ", not started %" PRIu32,
                                   O.setup_timeout, W.st.welcomed, nloc, W.inflight,
                                   W.npending);

                for (f = 0; f < F_NREASONS && len > 0 && (size_t)len < sizeof(W.fail_text); f++)
                    if (W.st.fail[f])
                        len += snprintf(W.fail_text + len, sizeof(W.fail_text) - (size_t)len,
                                        " %s=%" PRIu64, fail_names[f], W.st.fail[f]);
                send_msg(MSG_ERROR, W.fail_text, (uint32_t)strlen(W.fail_text) + 1);
                _exit(1);
            }
            if (W.npending && W.connect_gap && W.inflight < (uint32_t)O.max_inflight &&
                W.next_connect < wake)
                wake = W.next_connect;
        }
        if (W.phase == P_SENDING) {
            uint64_t due;

            send_due(now);
            if (now >= W.t_end) {
                uint64_t s = W.st.sent;

                W.st.win_cpu_us = cpu_us(RUSAGE_SELF) - W.cpu_at_t0;
                send_msg(MSG_DONE, &s, sizeof(s));
                W.phase = P_DRAIN;
                W.drain_deadline = W.t_end + (uint64_t)(O.drain_timeout * 1e9);
                W.drain_cap = W.t_end + (uint64_t)(O.drain_max * 1e9);
                W.drain_seen = W.st.delivered;
            } else {
                due = next_send_due();
                if (due > W.t_end)
                    due = W.t_end;
                if (due < wake)
                    wake = due;
            }
        }
        if (W.phase == P_DRAIN) {
            /* stragglers: wait while deliveries keep coming, until none came
             * for --drain-timeout s (at most --drain-max s after the window) */
            if (W.st.delivered != W.drain_seen) {
                W.drain_seen = W.st.delivered;
                W.drain_deadline = now + (uint64_t)(O.drain_timeout * 1e9);
                if (W.drain_deadline > W.drain_cap)
                    W.drain_deadline = W.drain_cap;
            }
            if (W.have_total) {
                uint64_t got = W.st.delivered;

                /* every local connection sees every message but its own (of
                 * its room: this process holds all users of its rooms) */
                W.st.expected = W.total_sent * W.n - W.st.sent;
                if (O.mode == MODE_ROOMS) {
                    got = W.st.verdict[RL_OK];
                    if (!O.one_room)
                        W.st.expected = W.st.sent * (uint64_t)(O.room_size - 1);
                }
                if (got >= W.st.expected || now >= W.drain_deadline) {
                    child_report_stats();
                    _exit(0);
                }
            }
            if (W.drain_deadline < wake)
                wake = W.drain_deadline;
        }
        if (W.phase == P_CHURN && now >= W.t_end) {
            W.st.win_cpu_us = cpu_us(RUSAGE_SELF) - W.cpu_at_t0;
            child_report_stats();
            _exit(0);
        }
        if (W.phase == P_CHURN && W.t_end < wake)
            wake = W.t_end;
        if (W.phase == P_CLOSING && (W.open == 0 || now >= W.close_deadline)) {
            child_report_stats();
            _exit(0);
        }
        if (now - last_scan >= 100000000ull) {
            last_scan = now;
            check_deadlines(now);
        }
        timeout_ms = wake <= now ? 0 : (int)((wake - now + 999999) / 1000000);
        n = epoll_wait(W.ep, evs, 1024, timeout_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        now = now_ns();
        for (k = 0; k < n; k++) {
            if (evs[k].data.u32 == UINT32_MAX)
                on_ctl(now);
            else
                conn_event(&W.c[evs[k].data.u32], evs[k].events, now);
            if ((k & 15) == 15) {
                now = now_ns(); /* a busy batch must not hold back the senders */
                if (W.phase == P_SENDING)
                    send_due(now);
            }
        }
    }
}

/* ---- parent -------------------------------------------------------------- */

struct child {
    pid_t pid;
    int up, down;
    char *buf;
    size_t len, cap;
    int ready, done, stats_in, dead;
    uint64_t sent;
    struct stats st;
};

static struct child CH[MAX_PROCS];
static char first_error[512];
static volatile sig_atomic_t release_now; /* idle: SIGUSR1 ends the hold early */

static void on_usr1(int sig)
{
    (void)sig;
    release_now = 1;
}

static void ctl_all(int type, uint64_t arg)
{
    char m[9];
    int i;

    m[0] = (char)type;
    memcpy(m + 1, &arg, 8);
    for (i = 0; i < O.procs; i++)
        if (!CH[i].dead)
            write_full(CH[i].down, m, 9);
}

/* Read what the children sent, until `until` (monotonic ns). */
static void pump(uint64_t until)
{
    struct pollfd pf[MAX_PROCS];
    int i;

    for (;;) {
        uint64_t now = now_ns();
        int np = 0, ms, map[MAX_PROCS];

        if (now >= until)
            return;
        for (i = 0; i < O.procs; i++) {
            if (CH[i].up < 0)
                continue;
            pf[np].fd = CH[i].up;
            pf[np].events = POLLIN;
            map[np++] = i;
        }
        if (np == 0) {
            struct timespec ts;
            uint64_t d = until - now;

            ts.tv_sec = (time_t)(d / 1000000000ull);
            ts.tv_nsec = (long)(d % 1000000000ull);
            nanosleep(&ts, NULL); /* EINTR: return early as well */
            return;
        }
        ms = (int)((until - now + 999999) / 1000000);
        if (poll(pf, (nfds_t)np, ms) < 0) {
            if (errno == EINTR)
                return;
            die("poll: %s", strerror(errno));
        }
        for (i = 0; i < np; i++) {
            struct child *ch = &CH[map[i]];
            ssize_t n;

            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (ch->cap - ch->len < 65536) {
                ch->cap = ch->cap ? ch->cap * 2 : 131072;
                ch->buf = realloc(ch->buf, ch->cap);
                if (ch->buf == NULL)
                    die("out of memory");
            }
            n = read(ch->up, ch->buf + ch->len, ch->cap - ch->len);
            if (n <= 0) {
                if (n < 0 && errno == EINTR)
                    continue;
                close(ch->up);
                ch->up = -1;
                ch->dead = 1;
                if (!ch->stats_in && first_error[0] == 0)
                    snprintf(first_error, sizeof(first_error),
                             "child %d exited without a report", map[i]);
                continue;
            }
            ch->len += (size_t)n;
            while (ch->len >= 5) {
                uint32_t ml;
                char *p = ch->buf + 5;

                memcpy(&ml, ch->buf + 1, 4);
                if (ch->len < 5 + (size_t)ml)
                    break;
                switch (ch->buf[0]) {
                case MSG_READY:
                    ch->ready = 1;
                    break;
                case MSG_ERROR:
                    if (first_error[0] == 0)
                        snprintf(first_error, sizeof(first_error), "%.*s", (int)ml, p);
                    break;
                case MSG_DONE:
                    memcpy(&ch->sent, p, sizeof(ch->sent));
                    ch->done = 1;
                    break;
                case MSG_STATS:
                    if (ml == sizeof(ch->st)) {
                        memcpy(&ch->st, p, sizeof(ch->st));
                        ch->stats_in = 1;
                    }
                    break;
                default:
                    break;
                }
                memmove(ch->buf, ch->buf + 5 + ml, ch->len - 5 - ml);
                ch->len -= 5 + ml;
            }
        }
        return; /* the caller checks its condition again */
    }
}

static int count(int what)
{
    int i, n = 0;

    for (i = 0; i < O.procs; i++)
        n += what == 'r' ? CH[i].ready : what == 'd' ? CH[i].done : CH[i].stats_in;
    return n;
}

/* wait until count(what) == procs; 0 on success, -1 on error or timeout */
static int wait_all(int what, uint64_t deadline)
{
    while (count(what) < O.procs) {
        int i, alive = 0;

        if (first_error[0])
            return -1;
        for (i = 0; i < O.procs; i++)
            alive += CH[i].up >= 0;
        if (alive == 0 || now_ns() >= deadline) {
            if (first_error[0] == 0)
                snprintf(first_error, sizeof(first_error), "timed out waiting for the children");
            return -1;
        }
        pump(deadline < now_ns() + 200000000ull ? deadline : now_ns() + 200000000ull);
    }
    return 0;
}

static void kill_children(void)
{
    int i;

    for (i = 0; i < O.procs; i++)
        if (CH[i].pid > 0)
            kill(CH[i].pid, SIGKILL);
}

static void reap_children(void)
{
    int i;

    for (i = 0; i < O.procs; i++)
        if (CH[i].pid > 0) {
            waitpid(CH[i].pid, NULL, 0);
            CH[i].pid = 0;
        }
}

static void say(const char *line)
{
    fprintf(stdout, "%s\n", line);
    fflush(stdout);
}

static double lg_cpu_s(void)
{
    return (double)(cpu_us(RUSAGE_SELF) + cpu_us(RUSAGE_CHILDREN)) / 1e6;
}

static void setup_failure(double setup_s)
{
    kill_children();
    reap_children();
    fprintf(stderr, "loadgen: setup failed: %s\n", first_error);
    printf("result mode=%s ok=0 setup_s=%.3f lg_cpu_s=%.3f error=\"%s\"\n", mode_names[O.mode],
           setup_s, lg_cpu_s(), first_error);
    fflush(stdout);
    exit(1);
}

static double pct(const uint64_t *hist, uint64_t total, double q, uint64_t max_us)
{
    uint64_t want, acc = 0;
    int i;
    double v;

    if (total == 0)
        return 0;
    want = (uint64_t)(q * (double)total);
    if (want >= total)
        want = total - 1;
    for (i = 0; i < NBUCKETS; i++) {
        acc += hist[i];
        if (acc > want)
            break;
    }
    v = hist_value(i < NBUCKETS ? i : NBUCKETS - 1);
    if (v > (double)max_us)
        v = (double)max_us;
    return v / 1000.0;
}

static void aggregate(struct stats *a)
{
    int i, k;

    memset(a, 0, sizeof(*a));
    for (i = 0; i < O.procs; i++) {
        const struct stats *s = &CH[i].st;

        a->welcomed += s->welcomed;
        a->sent += s->sent;
        a->delivered += s->delivered;
        a->delivered_win += s->delivered_win;
        a->expected += s->expected;
        a->ooo += s->ooo;
        a->other_texts += s->other_texts;
        a->srv_errors += s->srv_errors;
        a->self_echoes += s->self_echoes;
        a->rx_bytes_win += s->rx_bytes_win;
        a->compressed += s->compressed;
        a->pings += s->pings;
        a->unexpected_close += s->unexpected_close;
        a->sessions += s->sessions;
        a->closed_clean += s->closed_clean;
        for (k = 0; k < F_NREASONS; k++)
            a->fail[k] += s->fail[k];
        for (k = 0; k < HTTP_CODES; k++)
            a->http[k] += s->http[k];
        if (s->max_lat_us > a->max_lat_us)
            a->max_lat_us = s->max_lat_us;
        a->sum_lat_us += s->sum_lat_us;
        if (s->max_lag_us > a->max_lag_us)
            a->max_lag_us = s->max_lag_us;
        if (s->max_backlog > a->max_backlog)
            a->max_backlog = s->max_backlog;
        a->cpu_us += s->cpu_us;
        if (s->win_cpu_us > a->win_cpu_us)
            a->win_cpu_us = s->win_cpu_us; /* the busiest child */
        for (k = 0; k < NBUCKETS; k++) {
            a->hist[k] += s->hist[k];
            a->hist_x[k] += s->hist_x[k];
        }
        a->delivered_x += s->delivered_x;
        if (s->max_lat_x_us > a->max_lat_x_us)
            a->max_lat_x_us = s->max_lat_x_us;
        for (k = 0; k < RL_NVERDICTS; k++)
            a->verdict[k] += s->verdict[k];
        for (k = 0; k < NBUCKETS; k++)
            a->hist_join[k] += s->hist_join[k];
        if (s->max_join_us > a->max_join_us)
            a->max_join_us = s->max_join_us;
    }
}

static void parse_target(const char *arg)
{
    char host[256];
    const char *colon = strrchr(arg, ':');
    struct addrinfo hints, *res;
    int rc;
    struct target *t;

    if (O.ntgt >= MAX_TARGETS)
        die("at most %d targets", MAX_TARGETS);
    if (colon == NULL || colon == arg || (size_t)(colon - arg) >= sizeof(host))
        die("bad --target %s (host:port)", arg);
    memcpy(host, arg, (size_t)(colon - arg));
    host[colon - arg] = 0;
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = 0;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0)
        die("--target %s: %s", arg, gai_strerror(rc));
    t = &O.tgt[O.ntgt++];
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addrlen = res->ai_addrlen;
    snprintf(t->host, sizeof(t->host), "%s", arg);
    freeaddrinfo(res);
}

static void parse_src(const char *arg)
{
    char a[64], b[64];
    const char *dash = strchr(arg, '-');
    struct in_addr x, y;

    if (dash == NULL) {
        snprintf(a, sizeof(a), "%s", arg);
        snprintf(b, sizeof(b), "%s", arg);
    } else {
        snprintf(a, sizeof(a), "%.*s", (int)(dash - arg), arg);
        snprintf(b, sizeof(b), "%s", dash + 1);
    }
    if (inet_pton(AF_INET, a, &x) != 1 || inet_pton(AF_INET, b, &y) != 1 ||
        ntohl(x.s_addr) > ntohl(y.s_addr) || x.s_addr == 0)
        die("bad --src %s (A.B.C.D-E.F.G.H)", arg);
    O.src_lo = ntohl(x.s_addr);
    O.src_hi = ntohl(y.s_addr);
}

static double num(const char *opt, const char *v, double lo, double hi)
{
    char *end;
    double d = strtod(v, &end);

    if (end == v || *end || !(d >= lo && d <= hi))
        die("bad value for --%s: %s (%g..%g)", opt, v, lo, hi);
    return d;
}

/* rooms: the human summary on stderr, the result line on stdout */
static void report_rooms(const struct stats *a, double setup_s, double cpu, double win_busy)
{
    uint64_t ok = a->verdict[RL_OK], nconn = (uint64_t)(O.rooms * O.room_size);
    int64_t lost = (int64_t)a->expected - (int64_t)ok;
    double dur = O.duration > 0 ? O.duration : 1e-9;
    double p50 = pct(a->hist, ok, 0.50, a->max_lat_us);
    double p99 = pct(a->hist, ok, 0.99, a->max_lat_us);
    double xp99 = pct(a->hist_x, a->delivered_x, 0.99, a->max_lat_x_us);
    double j50 = pct(a->hist_join, a->welcomed, 0.50, a->max_join_us);
    double j99 = pct(a->hist_join, a->welcomed, 0.99, a->max_join_us);
    double loss_pct = a->expected ? 100.0 * (double)lost / (double)a->expected : 0;

    fprintf(stderr,
            "rooms: %ld rooms x %ld users%s over %d target(s), %.2f msg/s x %d B for %.1f s\n"
            "  joins: %" PRIu64 " welcomed in %.3f s; connect to welcome p50 %.3f p99 %.3f "
            "max %.3f ms\n"
            "  sent %" PRIu64 " messages, expected %" PRIu64 " deliveries, delivered %" PRIu64
            " exactly once, lost %" PRId64 " (%.4f%%)\n"
            "  duplicated %" PRIu64 ", from another room %" PRIu64 ", wrong sender %" PRIu64
            ", own message back %" PRIu64 ", out of order %" PRIu64 "\n"
            "  delivered/s %.0f (offered %.0f/s); latency ms p50 %.3f p99 %.3f max %.3f; "
            "cross-instance %" PRIu64 " p99 %.3f\n"
            "  sender lag max %.3f ms, unexpected closes %" PRIu64 ", server errors %" PRIu64
            ", other texts %" PRIu64 "; loadgen CPU %.3f s (busiest process %.0f%%)\n",
            O.rooms, O.room_size, O.one_room ? " (all in the default room)" : "", O.ntgt, O.rate,
            O.size, O.duration, a->welcomed, setup_s, j50, j99, (double)a->max_join_us / 1000,
            a->sent, a->expected, ok, lost, loss_pct, a->verdict[RL_DUP], a->verdict[RL_CROSS],
            a->verdict[RL_WRONG], a->verdict[RL_SELF], a->ooo, (double)a->delivered_win / dur,
            (double)a->expected / dur, p50, p99, (double)a->max_lat_us / 1000, a->delivered_x,
            xp99, (double)a->max_lag_us / 1000, a->unexpected_close, a->srv_errors,
            a->other_texts, cpu, 100 * win_busy);
    printf("result mode=rooms ok=1 rooms=%ld room_size=%ld one_room=%d conns=%" PRIu64
           " msg_rate=%.3f size=%d duration=%.3f sent=%" PRIu64 " expected=%" PRIu64
           " delivered=%" PRIu64 " delivered_win=%" PRIu64 " unique=%" PRIu64 " lost=%" PRId64
           " loss_pct=%.5f dup=%" PRIu64 " cross_room=%" PRIu64 " wrong=%" PRIu64 " self=%" PRIu64
           " ooo=%" PRIu64 " rate=%.1f offered=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f cross=%" PRIu64
           " xp99_ms=%.3f join_p50_ms=%.3f join_p99_ms=%.3f join_max_ms=%.3f welcomed=%" PRIu64
           " lag_ms=%.3f closes=%" PRIu64 " srv_errors=%" PRIu64 " lg_cpu_s=%.3f lg_busy=%.3f"
           " setup_s=%.3f self_echoes=%" PRIu64 "\n",
           O.rooms, O.room_size, O.one_room, nconn, O.rate, O.size, O.duration, a->sent,
           a->expected, a->delivered, a->delivered_win, ok, lost, loss_pct, a->verdict[RL_DUP],
           a->verdict[RL_CROSS], a->verdict[RL_WRONG], a->verdict[RL_SELF], a->ooo,
           (double)a->delivered_win / dur, (double)a->expected / dur, p50, p99,
           (double)a->max_lat_us / 1000, a->delivered_x, xp99, j50, j99,
           (double)a->max_join_us / 1000, a->welcomed, (double)a->max_lag_us / 1000,
           a->unexpected_close, a->srv_errors, cpu, win_busy, setup_s, a->self_echoes);
}

static void usage(void)
{
    fputs(
        "usage: loadgen --mode fanout|idle|churn|rooms --target HOST:PORT [--target ...] [options]\n"
        "  common:  --duration S (10)  --procs K (1)  --src A.B.C.D-E.F.G.H\n"
        "           --name-prefix P (lg<pid>...)  --connect-rate N/s (unlimited)\n"
        "           --max-inflight N (2000 handshakes per process)  --setup-timeout S (60)\n"
        "           --tls (wss://: TLS before the upgrade, the certificate not checked)\n"
        "           --deflate (offer permessage-deflate, inflate compressed messages)\n"
        "  fanout:  --receivers N (100) --senders S (1) --rate MSGS/S (10, all senders)\n"
        "           --size BYTES (64)  --settle S (0.5)\n"
        "           --drain-timeout S (2: after the window, wait while deliveries still\n"
        "           arrive, until none came for S s)  --drain-max S (30: at most)\n"
        "  idle:    --conns N (1000); holds for --duration s or until SIGUSR1\n"
        "  churn:   --concurrency C (100)  --timeout S (10, per session)\n"
        "  rooms:   --rooms R (10) --room-size U (10) --rate MSGS/S (10, all rooms)\n"
        "           --size BYTES (64)  --settle S (0.5)  --drain-timeout, --drain-max as fanout\n"
        "           --one-room (everyone in the default room: /chat/{user})\n"
        "           --baseline S (0: seconds between the 'baseline' and 'sending' lines)\n"
        "  --peer nchan: drive nginx + nchan (no welcome, senders name themselves, own\n"
        "           messages that come back are counted as self_echoes)\n"
        "stdout: phase lines (ready conns=N / joined / baseline / sending / done / drained) and one 'result k=v ...'\n",
        stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"mode", 1, 0, 'm'},         {"target", 1, 0, 't'},      {"src", 1, 0, 'S'},
        {"procs", 1, 0, 'P'},        {"duration", 1, 0, 'd'},    {"name-prefix", 1, 0, 'n'},
        {"connect-rate", 1, 0, 'c'}, {"max-inflight", 1, 0, 'I'}, {"receivers", 1, 0, 'R'},
        {"senders", 1, 0, 's'},      {"rate", 1, 0, 'r'},        {"size", 1, 0, 'z'},
        {"conns", 1, 0, 'N'},        {"concurrency", 1, 0, 'C'}, {"setup-timeout", 1, 0, 'T'},
        {"drain-timeout", 1, 0, 'D'}, {"timeout", 1, 0, 'o'},    {"settle", 1, 0, 'e'},
        {"drain-max", 1, 0, 'X'},    {"rooms", 1, 0, 'Y'},       {"room-size", 1, 0, 'U'},
        {"one-room", 0, 0, '1'},     {"baseline", 1, 0, 'B'},       {"peer", 1, 0, 'p'},
        {"tls", 0, 0, 'L'},          {"deflate", 0, 0, 'Z'},
        {"help", 0, 0, 'h'},         {0, 0, 0, 0}};
    int opt, i;
    struct rlimit rl;
    uint64_t t_start, t_ready = 0, t0 = 0;
    double setup_s = 0;
    struct stats a;
    long per_proc;

    while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (opt) {
        case 'm':
            for (i = 0; i < MODE_COUNT; i++)
                if (strcmp(optarg, mode_names[i]) == 0)
                    O.mode = i;
            if (O.mode < 0)
                die("bad --mode %s", optarg);
            break;
        case 't':
            parse_target(optarg);
            break;
        case 'S':
            parse_src(optarg);
            break;
        case 'P':
            O.procs = (int)num("procs", optarg, 1, MAX_PROCS);
            break;
        case 'd':
            O.duration = num("duration", optarg, 0, 86400);
            break;
        case 'n':
            if (strlen(optarg) == 0 || strlen(optarg) > 16 ||
                strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
                    strlen(optarg))
                die("--name-prefix: 1-16 of [A-Za-z0-9_.-]");
            snprintf(O.prefix, sizeof(O.prefix), "%s", optarg);
            break;
        case 'c':
            O.connect_rate = num("connect-rate", optarg, 0, 1e9);
            break;
        case 'I':
            O.max_inflight = (int)num("max-inflight", optarg, 1, 1e6);
            break;
        case 'R':
            O.receivers = (long)num("receivers", optarg, 0, 1e7);
            break;
        case 's':
            O.senders = (long)num("senders", optarg, 1, 1e5);
            break;
        case 'r':
            O.rate = num("rate", optarg, 0.001, 1e7);
            break;
        case 'z':
            O.size = (int)num("size", optarg, 1, 8000);
            break;
        case 'N':
            O.conns = (long)num("conns", optarg, 1, 1e7);
            break;
        case 'C':
            O.concurrency = (long)num("concurrency", optarg, 1, 1e6);
            break;
        case 'T':
            O.setup_timeout = num("setup-timeout", optarg, 0.1, 86400);
            break;
        case 'D':
            O.drain_timeout = num("drain-timeout", optarg, 0, 3600);
            break;
        case 'X':
            O.drain_max = num("drain-max", optarg, 0, 3600);
            break;
        case 'o':
            O.timeout = num("timeout", optarg, 0.1, 3600);
            break;
        case 'e':
            O.settle = num("settle", optarg, 0, 600);
            break;
        case 'Y':
            O.rooms = (long)num("rooms", optarg, 1, 1e6);
            break;
        case 'U':
            O.room_size = (long)num("room-size", optarg, 2, 1e5);
            break;
        case '1':
            O.one_room = 1;
            break;
        case 'B':
            O.baseline = num("baseline", optarg, 0, 600);
            break;
        case 'p':
            if (strcmp(optarg, "nchan") != 0)
                die("--peer: only nchan");
            O.peer_nchan = 1;
            break;
        case 'L':
            O.tls = 1;
            break;
        case 'Z':
            O.deflate = 1;
            break;
        default:
            usage();
        }
    }
    if (optind != argc || O.mode < 0 || O.ntgt == 0)
        usage();
    if (O.prefix[0] == 0) {
        /* unique per run: pid plus a time-derived suffix */
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(O.prefix, sizeof(O.prefix), "lg%dt%ld", (int)getpid(),
                 (long)((ts.tv_sec * 1000 + ts.tv_nsec / 1000000) % 100000));
    }
    if (O.src_lo && O.tgt[0].addr.ss_family != AF_INET)
        die("--src needs IPv4 targets");

    /* file descriptors: soft limit up to the hard one */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    per_proc = O.mode == MODE_FANOUT ? (O.receivers + O.senders + O.procs - 1) / O.procs
               : O.mode == MODE_IDLE ? (O.conns + O.procs - 1) / O.procs
               : O.mode == MODE_ROOMS ? (O.rooms + O.procs - 1) / O.procs * O.room_size
                                      : (O.concurrency + O.procs - 1) / O.procs;
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)per_proc + 32 > rl.rlim_cur)
        die("%ld connections per process exceed the fd limit %llu: use more --procs", per_proc,
            (unsigned long long)rl.rlim_cur);
    if (O.mode == MODE_FANOUT && O.receivers + O.senders < 2)
        die("fanout needs at least two connections");
    if (O.mode == MODE_ROOMS && O.procs > O.rooms)
        die("rooms: more --procs than --rooms");
    if (O.mode == MODE_ROOMS && (double)O.rooms * (double)O.room_size > 1e7)
        die("rooms: at most 10^7 connections");
    if (O.mode == MODE_ROOMS && O.rate * O.duration > 4e9)
        die("rooms: at most 4e9 messages per run");

    signal(SIGPIPE, SIG_IGN);
    {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_usr1; /* no SA_RESTART: poll() returns EINTR */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
    }
    fflush(NULL);
    t_start = now_ns();
    for (i = 0; i < O.procs; i++) {
        int up[2], down[2];
        pid_t pid;

        if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0)
            die("pipe: %s", strerror(errno));
        pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            int k;

            for (k = 0; k < i; k++) {
                close(CH[k].up);
                close(CH[k].down);
            }
            close(up[0]);
            close(down[1]);
            up_fd = up[1];
            child_main(i, down[0]);
            _exit(0);
        }
        close(up[1]);
        close(down[0]);
        CH[i].pid = pid;
        CH[i].up = up[0];
        CH[i].down = down[1];
    }

    if (O.mode != MODE_CHURN) {
        long nconn = O.mode == MODE_FANOUT ? O.receivers + O.senders
                     : O.mode == MODE_ROOMS ? O.rooms * O.room_size
                                            : O.conns;

        if (wait_all('r', t_start + (uint64_t)((O.setup_timeout + 5) * 1e9)) < 0)
            setup_failure((double)(now_ns() - t_start) / 1e9);
        t_ready = now_ns();
        setup_s = (double)(t_ready - t_start) / 1e9;
        fprintf(stderr, "loadgen: %ld connections welcomed in %.3f s (%.0f/s)\n", nconn, setup_s,
                (double)nconn / setup_s);
        if (O.mode == MODE_ROOMS)
            say("joined"); /* the join window ends here */
    } else {
        wait_all('r', t_start + 10000000000ull);
    }

    if (O.mode == MODE_FANOUT || O.mode == MODE_ROOMS) {
        uint64_t total = 0;
        char line[64];

        pump(now_ns() + (uint64_t)(O.settle * 1e9)); /* let join notices drain */
        if (O.baseline > 0) {
            say("baseline"); /* everyone joined, nothing sent: the idle cost */
            pump(now_ns() + (uint64_t)(O.baseline * 1e9));
        }
        t0 = now_ns() + 20000000ull;
        ctl_all(CTL_GO, t0);
        pump(t0);
        say("sending");
        if (wait_all('d', t0 + (uint64_t)((O.duration + 30) * 1e9)) < 0)
            setup_failure(setup_s);
        say("done");
        for (i = 0; i < O.procs; i++)
            total += CH[i].sent;
        ctl_all(CTL_TOTAL, total);
        if (wait_all('s', now_ns() + (uint64_t)((O.drain_max + 30) * 1e9)) < 0)
            setup_failure(setup_s);
        snprintf(line, sizeof(line), "drained");
        say(line);
    } else if (O.mode == MODE_IDLE) {
        char line[64];
        uint64_t end;

        snprintf(line, sizeof(line), "ready conns=%ld", O.conns);
        say(line);
        t0 = now_ns();
        ctl_all(CTL_GO, t0);
        end = t0 + (uint64_t)(O.duration * 1e9);
        while (now_ns() < end && first_error[0] == 0 && !release_now)
            pump(end);
        ctl_all(CTL_QUIT, 0);
        say("done");
        /* the children close every connection first: a million take minutes */
        if (wait_all('s', now_ns() + (uint64_t)((30 + O.conns / 5000) * 1e9)) < 0)
            setup_failure(setup_s);
    } else {
        t0 = now_ns();
        ctl_all(CTL_GO, t0);
        say("sending");
        if (wait_all('s', t0 + (uint64_t)((O.duration + 30) * 1e9)) < 0)
            setup_failure(0);
        say("done");
    }
    reap_children();
    aggregate(&a);

    {
        double cpu = lg_cpu_s(), dur = O.duration > 0 ? O.duration : 1e-9;
        double win_busy = (double)a.win_cpu_us / 1e6 / dur; /* busiest child, share of a core */
        char fails[256] = "", https[256] = "";
        int len = 0, hl = 0, k;

        for (k = 0; k < F_NREASONS; k++)
            len += snprintf(fails + len, sizeof(fails) - (size_t)len, " fail_%s=%" PRIu64,
                            fail_names[k], a.fail[k]);
        for (k = 0; k < HTTP_CODES && hl < 200; k++)
            if (a.http[k])
                hl += snprintf(https + hl, sizeof(https) - (size_t)hl, "%s%d:%u", hl ? "," : "",
                               k, a.http[k]);

        if (O.mode == MODE_ROOMS) {
            report_rooms(&a, setup_s, cpu, win_busy);
        } else if (O.mode == MODE_FANOUT) {
            uint64_t expected = a.sent * (uint64_t)(O.receivers + O.senders - 1);
            int64_t lost = (int64_t)expected - (int64_t)a.delivered;
            double p50 = pct(a.hist, a.delivered, 0.50, a.max_lat_us);
            double p90 = pct(a.hist, a.delivered, 0.90, a.max_lat_us);
            double p99 = pct(a.hist, a.delivered, 0.99, a.max_lat_us);
            double p999 = pct(a.hist, a.delivered, 0.999, a.max_lat_us);
            double rate = (double)a.delivered_win / dur;
            double offered = (double)expected / dur;
            double loss_pct = expected ? 100.0 * (double)lost / (double)expected : 0;
            double mean = a.delivered ? (double)a.sum_lat_us / (double)a.delivered / 1000 : 0;
            double xp50 = pct(a.hist_x, a.delivered_x, 0.50, a.max_lat_x_us);
            double xp99 = pct(a.hist_x, a.delivered_x, 0.99, a.max_lat_x_us);

            fprintf(stderr,
                    "fanout: %ld receivers + %ld senders over %d target(s), %.2f msg/s x %d B "
                    "for %.1f s (setup %.2f s)\n"
                    "  sent %" PRIu64 " messages, expected %" PRIu64 " deliveries, delivered %" PRIu64
                    " (%" PRIu64 " inside the window), lost %" PRId64 " (%.4f%%), out of order %" PRIu64
                    "\n"
                    "  delivered/s %.0f (offered %.0f/s)\n"
                    "  latency ms: mean %.3f p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f max %.3f\n"
                    "  cross-instance deliveries %" PRIu64 ": p50 %.3f p99 %.3f max %.3f ms\n"
                    "  sender lag max %.3f ms, sender backlog max %" PRIu64 " B, "
                    "unexpected closes %" PRIu64 ", server errors %" PRIu64 ", other texts %" PRIu64
                    "\n"
                    "  loadgen CPU %.3f s (busiest process %.0f%% of a core in the window)\n",
                    O.receivers, O.senders, O.ntgt, O.rate, O.size, O.duration, setup_s, a.sent,
                    expected, a.delivered, a.delivered_win, lost, loss_pct, a.ooo, rate, offered,
                    mean, p50, p90, p99, p999, (double)a.max_lat_us / 1000, a.delivered_x, xp50,
                    xp99, (double)a.max_lat_x_us / 1000, (double)a.max_lag_us / 1000, a.max_backlog, a.unexpected_close, a.srv_errors,
                    a.other_texts, cpu, 100 * win_busy);
            printf("result mode=fanout ok=1 receivers=%ld senders=%ld msg_rate=%.3f size=%d "
                   "duration=%.3f sent=%" PRIu64 " expected=%" PRIu64 " delivered=%" PRIu64
                   " delivered_win=%" PRIu64 " lost=%" PRId64 " loss_pct=%.5f ooo=%" PRIu64
                   " rate=%.1f offered=%.1f mean_ms=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
                   "p999_ms=%.3f max_ms=%.3f cross=%" PRIu64 " xp50_ms=%.3f xp99_ms=%.3f "
                   "xmax_ms=%.3f lag_ms=%.3f backlog=%" PRIu64 " closes=%" PRIu64
                   " srv_errors=%" PRIu64 " lg_cpu_s=%.3f lg_busy=%.3f setup_s=%.3f"
                   " self_echoes=%" PRIu64 " rx_bytes_win=%" PRIu64 " compressed=%" PRIu64 "\n",
                   O.receivers, O.senders, O.rate, O.size, O.duration, a.sent, expected,
                   a.delivered, a.delivered_win, lost, loss_pct, a.ooo, rate, offered, mean, p50,
                   p90, p99, p999, (double)a.max_lat_us / 1000, a.delivered_x, xp50, xp99,
                   (double)a.max_lat_x_us / 1000, (double)a.max_lag_us / 1000,
                   a.max_backlog, a.unexpected_close, a.srv_errors, cpu, win_busy, setup_s,
                   a.self_echoes, a.rx_bytes_win, a.compressed);
        } else if (O.mode == MODE_IDLE) {
            fprintf(stderr,
                    "idle: %ld connections over %d target(s): setup %.3f s (%.0f conns/s), held "
                    "%.1f s, pings answered %" PRIu64 ", closed by the server %" PRIu64
                    ", clean closes at the end %" PRIu64 "\n"
                    "  loadgen CPU %.3f s\n",
                    O.conns, O.ntgt, setup_s, (double)O.conns / setup_s, O.duration, a.pings,
                    a.unexpected_close, a.closed_clean, cpu);
            printf("result mode=idle ok=1 conns=%" PRIu64 " setup_s=%.3f conn_rate=%.1f pings=%" PRIu64
                   " closes=%" PRIu64 " clean_closes=%" PRIu64 " lg_cpu_s=%.3f\n",
                   a.welcomed, setup_s, (double)O.conns / setup_s, a.pings, a.unexpected_close,
                   a.closed_clean, cpu);
        } else {
            uint64_t nf = 0;

            for (k = 0; k < F_NREASONS; k++)
                nf += a.fail[k];
            fprintf(stderr,
                    "churn: concurrency %ld over %d target(s) for %.1f s: %" PRIu64
                    " sessions (%.1f/s), %" PRIu64 " failures:%s%s%s\n"
                    "  loadgen CPU %.3f s (busiest process %.0f%% of a core)\n",
                    O.concurrency, O.ntgt, O.duration, a.sessions, (double)a.sessions / dur, nf,
                    fails, hl ? " http_codes=" : "", https, cpu, 100 * win_busy);
            printf("result mode=churn ok=%d concurrency=%ld duration=%.3f sessions=%" PRIu64
                   " rate=%.1f failures=%" PRIu64 "%s%s%s lg_cpu_s=%.3f lg_busy=%.3f\n",
                   a.sessions > 0, O.concurrency, O.duration, a.sessions,
                   (double)a.sessions / dur, nf, fails, hl ? " http_codes=" : "", https, cpu,
                   win_busy);
        }
        fflush(stdout);
        if (O.mode == MODE_CHURN && a.sessions == 0)
            return 1;
    }
    (void)t_ready;
    return 0;
}
