/* ws_session.h -- the WebSocket transport of a worker: client connections
 * from accept() to close(), with the HTTP upgrade, a wslay session, an
 * output cap, the close handshake and the broadcast stream.
 *
 * Applications (ws_app.h) are chosen by the route table given at setup;
 * the transport calls them and they call the wss_* functions below. It
 * knows no application and calls nothing outside worker/'s transport
 * files (http_route, ws_write, ws_frame, bcast_log, send_batch). */
#ifndef RC_WS_SESSION_H
#define RC_WS_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <wslay/wslay.h>

#include "bcast_log.h"
#include "http_route.h"
#include "ws_boundary.h"
#include "ws_write.h"

typedef struct ssl_st SSL;
struct tls_server;

struct cfg;
struct web_asset;
struct ccount;
struct event;
struct event_base;
struct send_batch;
struct ws_app;
struct ws_frame;

enum wss_state {
    WSS_HANDSHAKE = 0, /* reading the HTTP request head */
    WSS_FINAL_WRITE,   /* answered (HTTP error, protocol error): closing after the write */
    WSS_UPGRADED,      /* 101 queued, held until the app opens it; input kept for then */
    WSS_OPEN,          /* messages flow */
    WSS_CLOSING,       /* close frame queued or received; finishing the handshake */
};

/* The transport's state in one worker process. */
struct wss_server {
    struct event_base *base;
    const struct cfg *cfg;
    struct http_site site;        /* routes, health, origins */
    struct ccount *ccount;        /* instance-wide connection counts (shared memory) */
    int ccount_row;               /* this process's row in it */
    struct wss_session *sessions; /* every connection, any state */
    size_t nsessions;
    size_t nupgraded;             /* sessions past the HTTP upgrade */
    struct wss_session *dirty;    /* sessions with output waiting for a flush */
    struct bcast_log *dirty_logs; /* streams appended to since the last stream pass */
    uint64_t last_pass_us;        /* when the last stream pass began */
    struct event *pass_ev;        /* a stream pass held back by flush-interval */
    struct send_batch *batch;     /* io_uring sends of a stream pass; NULL: writev */
    struct tls_server *tls;       /* wss://: the TLS context; NULL without tls-port */
    uint64_t next_conn_id;
    /* called after a session was freed (a stopping worker exits after its last) */
    void (*on_gone)(void *arg);
    void *arg;
};

struct wss_session {
    struct wss_session *prev, *next; /* the server's session list */
    struct wss_session *dirty_next;  /* the server's flush list */
    struct wss_server *srv;
    int fd;
    enum wss_state state;
    unsigned dirty : 1;       /* on the flush list */
    unsigned awaiting_pong : 1;
    unsigned doomed : 1;      /* over its output cap: dropped at the next flush */
    unsigned counted : 1;     /* holds a place in the shared connection counts */
    unsigned peer_gone : 1;   /* EOF or a read error: nothing more can be said */
    unsigned proto_error : 1; /* input wslay let through but RFC 6455 forbids */
    unsigned upgraded : 1;    /* past the 101: a WebSocket session */
    unsigned blocked : 1;     /* the socket is full: waiting for EV_WRITE */
    unsigned tls_handshaking : 1; /* wss://: the TLS handshake is not done yet */
    unsigned deflate : 1;     /* permessage-deflate negotiated */
    uint16_t held_101;        /* UPGRADED: bytes of the 101 held in out until the open */
    uint64_t deadline_ms;     /* handshake or close handshake must end by then; 0 = none */
    uint32_t ip_bucket;       /* its client address's bucket there */
    uint64_t id;
    struct event *rev, *wev;
    SSL *tls;                 /* wss://: its TLS connection; NULL for ws:// */
    char *head;               /* partial request head (HANDSHAKE); then bytes sent behind it */
    size_t headlen, headoff;  /* headoff: bytes after the head, fed to wslay first */
    wslay_event_context_ptr ws; /* only while a message is being read or a close
                                 * handshake runs: NULL while idle (8 KiB saved) */
    struct ws_boundary inb;     /* where the input stands, for giving ws back */
    struct ws_out out;          /* own output and broadcast cursor */
    const struct ws_app *app;   /* its route's application, once chosen */
    void *app_data;             /* the application's, per session */
    const char *label;          /* for log lines ("user=NAME"), the app's; "" none */
    char peer[48];
};

/* Log a line about session s: "c=ID PEER LABEL: ...". */
#define wss_log(level, s, fmt, ...)                                                          \
    log_msg(level, "c=%llu %s%s%s: " fmt, (unsigned long long)(s)->id, (s)->peer,             \
            (s)->label[0] ? " " : "", (s)->label, ##__VA_ARGS__)

/* ---- the server ---------------------------------------------------------- */

/* Set up srv (zeroed by the caller, site filled in). 0, or -1 out of memory. */
int wss_server_init(struct wss_server *srv, struct event_base *base, const struct cfg *cfg,
                    struct ccount *ccount, int row);
/* Drop every session and free what the server holds. */
void wss_server_deinit(struct wss_server *srv);

/* Accept a new connection (fd non-blocking), counted in the shared counts
 * under ip_bucket; with tls, from the wss:// listener (the TLS handshake
 * comes first, within handshake-timeout). */
void wss_accept(struct wss_server *srv, int fd, const char *peer, uint32_t ip_bucket, int tls);
/* Answer a connection that is over a limit with an HTTP error and close it
 * (from the wss:// listener: closed with a log line, as no TLS is set up
 * to carry an answer). */
void wss_refuse(struct wss_server *srv, int fd, const char *peer, int status, const char *body,
                int tls);
/* Re-read the TLS certificate and key (SIGHUP with an unchanged config):
 * new handshakes use them, established connections keep theirs; when they
 * do not load, the old ones stay and the reason is logged. */
void wss_server_reload_tls(struct wss_server *srv);

/* Keepalive, every ping-interval: a session that has sent nothing since the
 * last ping is dropped, the others get a new ping. */
void wss_server_ping(struct wss_server *srv);
/* Close every WebSocket session with code and reason; handshakes in
 * progress are dropped. */
void wss_server_close_all(struct wss_server *srv, uint16_t code, const char *reason);

/* Append a frame to a broadcast stream (the stream takes a reference; an
 * application keeps one stream per audience, a chat room's for instance);
 * the sessions reading it pick it up at the next flush. The session with
 * connection id `sender` (0: none) skips it. 0, or -1 out of memory. */
int wss_broadcast(struct wss_server *srv, struct bcast_log *log, struct ws_frame *f,
                  uint64_t sender);

/* Write what is queued: every session on the flush list and (after
 * broadcasts) every session behind in the stream, unless the last such pass
 * was less than flush-interval ago: then it runs when due (pass_ev). */
void wss_flush_dirty(struct wss_server *srv);

/* ---- one session, for applications --------------------------------------- */

/* Answer the request with an HTTP status and close after the write. */
void wss_http_reply(struct wss_session *s, int status, const char *extra, const char *body);
/* Answer with a file of the web page (or 304), then close. */
void wss_http_reply_asset(struct wss_session *s, const struct web_asset *asset, int not_modified);
/* Answer 101 (naming protocol, if not NULL) and become UPGRADED. The 101 is
 * held until wss_open() (or a close) so it leaves with what the app says
 * first, at most WSS_HOLD_101_MS; input that arrives meanwhile is kept for
 * the app. 0, or -1 when the session is failing. */
int wss_upgrade(struct wss_session *s, const struct upg_request *req,
                const struct upg_str *protocol);
/* Open an upgraded session: messages flow to the app from now on. */
void wss_open(struct wss_session *s);

/* Queue a text or binary message for this session only (copied). */
void wss_queue_text(struct wss_session *s, const char *text, size_t len);
void wss_queue_binary(struct wss_session *s, const void *data, size_t len);
/* Queue a shared frame for this session only (by reference, no copy). */
void wss_queue_frame(struct wss_session *s, struct ws_frame *f);

/* Read a broadcast stream from its end: what is appended from now on. A
 * session reads one stream at a time. */
void wss_subscribe(struct wss_session *s, struct bcast_log *log);
/* Stop reading it; what was due of it is written before what comes next
 * (the stream may be freed after this). */
void wss_leave_stream(struct wss_session *s);

/* Start the close handshake with code and reason (what is queued goes
 * first). */
void wss_close(struct wss_session *s, uint16_t code, const char *reason);

/* Drop the connection now (no close frame). */
void wss_destroy(struct wss_session *s, const char *why);

#endif
