/* ws_session.h -- one client connection: the HTTP upgrade, then a wslay
 * WebSocket session, an output queue with a cap, and the close handshake. */
#ifndef RC_WS_SESSION_H
#define RC_WS_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <wslay/wslay.h>

#include "http_upgrade.h"
#include "worker.h"
#include "ws_boundary.h"

struct event;
struct evbuffer;

enum wss_state {
    WSS_HANDSHAKE = 0, /* reading the HTTP request head */
    WSS_FINAL_WRITE,   /* answered (HTTP error, protocol error): closing after the write */
    WSS_JOINING,       /* upgraded; waiting for the broker's JOIN_REPLY */
    WSS_OPEN,          /* joined: chatting */
    WSS_CLOSING,       /* close frame queued or received; finishing the handshake */
};

/* A text frame encoded once and shared by every recipient: each output
 * queue holding it keeps a reference. */
struct wss_frame {
    unsigned refs;
    size_t len;
    uint8_t data[]; /* frame header + payload */
};

struct wss_session {
    struct wss_session *prev, *next; /* worker's session list */
    struct wss_session *dirty_next;  /* worker's flush list */
    struct worker *w;
    int fd;
    enum wss_state state;
    unsigned dirty : 1;       /* on the flush list */
    unsigned awaiting_pong : 1;
    unsigned joined : 1;      /* holds its name in w->users and in Redis */
    unsigned doomed : 1;      /* over its output cap: dropped at the next flush */
    unsigned counted : 1;     /* holds a place in the shared connection counts */
    unsigned echo : 1;        /* /echo session: texts go back to the sender */
    unsigned peer_gone : 1;   /* EOF or a read error: nothing more can be said */
    unsigned proto_error : 1; /* input wslay let through but RFC 6455 forbids */
    unsigned upgraded : 1;    /* past the 101: a WebSocket session */
    unsigned join_pending : 1; /* listed in w->pending under join_req */
    unsigned blocked : 1;     /* the socket is full: waiting for EV_WRITE */
    uint64_t deadline_ms;     /* handshake or close handshake must end by then; 0 = none */
    uint32_t ip_bucket;       /* its client address's bucket there */
    uint64_t id;
    struct event *rev, *wev;
    char *head;               /* partial request head (HANDSHAKE); then bytes sent behind it */
    size_t headlen, headoff;  /* headoff: bytes after the head, fed to wslay first */
    wslay_event_context_ptr ws; /* only while a message is being read or a close
                                 * handshake runs: NULL while idle (8 KiB saved) */
    struct ws_boundary inb;     /* where the input stands, for giving ws back */
    struct evbuffer *out;       /* own output (HTTP, texts, control); NULL when none */
    struct bcast_node *cur;     /* its cursor in w->log (joined sessions), or NULL */
    uint32_t cur_off;           /* bytes of cur's frame already written */
    uint32_t join_req;
    /* rate limit: a token bucket in thousandths of a message */
    uint64_t rl_last_ms;
    uint32_t rl_tokens;
    uint32_t rl_dropped;      /* messages refused since the last one let through */
    char peer[48];
    char *user;               /* "" until named; then its own allocation, sized to fit */
    size_t userlen;
};

/* Accept a new connection (fd non-blocking), counted in the shared counts
 * under ip_bucket. The session is owned by w. */
void wss_accept(struct worker *w, int fd, const char *peer, uint32_t ip_bucket);

/* Answer a connection that is over a limit with an HTTP error and close it. */
void wss_refuse(struct worker *w, int fd, const char *peer, int status, const char *body);

/* Queue a text message for this session only (copied). */
void wss_queue_text(struct wss_session *s, const char *text, size_t len);

/* Queue a ping (keepalive). */
void wss_queue_ping(struct wss_session *s);

/* Shared frames: new with refs = 1 (the creator's), unref frees at 0. */
struct wss_frame *wss_frame_new_text(const void *payload, size_t len);
void wss_frame_unref(struct wss_frame *f);

/* Start reading the worker's broadcast stream (w->log) from its end. */
void wss_subscribe(struct wss_session *s);

/* Start the close handshake with code and reason. */
void wss_close(struct wss_session *s, uint16_t code, const char *reason);

/* Go back to reading (after the join was accepted). */
void wss_resume_reading(struct wss_session *s);

/* Write what is queued: for one session, or for all on the flush list
 * (and, after broadcasts, every session behind in the stream, unless the
 * last such pass was less than flush-interval ago: then w->pass_ev is set
 * to call wss_stream_pass() when it is due). */
void wss_flush(struct wss_session *s);
void wss_flush_dirty(struct worker *w);
void wss_stream_pass(struct worker *w);

/* Drop the connection now (no close frame). */
void wss_destroy(struct wss_session *s, const char *why);

#endif
