/* wsclient.h -- a raw, blocking RFC 6455 client for the integration tests.
 *
 * Deliberately independent of wslay and of the server's code (its own
 * SHA-1/base64 and frame codec), so it can check the server and send
 * malformed input on purpose: unmasked frames, reserved bits, bad opcodes,
 * oversized control frames, raw bytes. Everything it receives from the
 * server is checked (unmasked, RSV 0, known opcode, minimal lengths, control
 * frames short and unfragmented, continuation order, valid close codes,
 * UTF-8 text); a violation makes the call return -1, sets c->proto_error and
 * prints the reason to stderr. All reads take a timeout; sends give up after
 * WSC_SEND_TIMEOUT_MS when the server stops reading.
 *
 * Usage: struct wsc c; wsc_connect(&c, port, "/chat/alice", NULL, 2000) == 101;
 * ...; wsc_free(&c). wsc_connect* initializes the whole struct, so wsc_free
 * is safe after any of them, whatever they returned.
 */
#ifndef RC_TESTS_WSCLIENT_H
#define RC_TESTS_WSCLIENT_H

#include <stddef.h>
#include <stdint.h>

#define WSC_HEAD_MAX 8192          /* response head limit */
#define WSC_BODY_MAX 1024          /* body kept from a non-101 answer */
#define WSC_FRAME_MAX (16UL << 20) /* largest frame / message accepted */
#define WSC_SEND_TIMEOUT_MS 10000  /* SO_SNDTIMEO */
#define WSC_CLOSE_REASON_MAX 128
#define WSC_PROTOCOL_MAX 256 /* Sec-WebSocket-Protocol values */

enum wsc_opcode {
    WSC_OP_CONT = 0x0,
    WSC_OP_TEXT = 0x1,
    WSC_OP_BINARY = 0x2,
    WSC_OP_CLOSE = 0x8,
    WSC_OP_PING = 0x9,
    WSC_OP_PONG = 0xA,
};

/* wsc_wait_close() results besides a close code */
enum wsc_close_result {
    WSC_CLOSE_NO_CODE = -1, /* the close frame carried no status code */
    WSC_CLOSE_NONE = -2,    /* connection ended (EOF/error/violation) without a close frame */
    WSC_CLOSE_TIMEOUT = -3, /* no close frame, or no EOF after it, within the timeout */
};

struct wsc {
    int fd;                  /* -1 when closed */
    int status;              /* HTTP status of the handshake answer, -1 none */
    char head[WSC_HEAD_MAX]; /* response head incl. the final CRLFCRLF, NUL-terminated */
    size_t headlen;
    char body[WSC_BODY_MAX]; /* body of a non-101 answer (Content-Length), truncated */
    size_t bodylen;
    uint8_t *buf; /* received bytes not yet consumed (heap) */
    size_t len, cap;
    size_t consumed; /* bytes of the frame last returned, dropped on the next read */
    uint8_t *msg;    /* wsc_recv_text reassembly (heap) */
    size_t msglen, msgcap;
    int msg_open; /* a fragmented text/binary message is being reassembled */
    int msg_opcode;
    int frag_open;  /* frame level: a non-final data frame was seen */
    int close_code; /* from the server's close frame: code, -1 none/not yet */
    char close_reason[WSC_CLOSE_REASON_MAX];
    int close_received; /* the server sent a close frame */
    int close_sent;     /* we sent one (wsc_send_close or an echo) */
    int no_close_echo;  /* caller sets: recv_text/wait_close do not answer a close */
    int upgraded;       /* the handshake succeeded: frames follow */
    char protocol[WSC_PROTOCOL_MAX]; /* the subprotocol the 101 named, "" none */
    int eof;            /* the server closed the TCP connection (or reset it) */
    int proto_error;    /* the server violated RFC 6455 (reason on stderr) */
    int timed_out;      /* the last receive call ended by its timeout */
    uint64_t rng;       /* masking keys */
    void *ssl;          /* wss:// (an OpenSSL SSL *); NULL for ws:// */
    int deflate;        /* the 101 accepted our permessage-deflate offer */
    int msg_compressed; /* the message being assembled came with RSV1 */
    long compressed_in; /* messages that arrived compressed (and were inflated) */
};

struct wsc_frame {
    int fin, opcode;
    int rsv1; /* compressed (permessage-deflate, first frame of a message) */
    uint8_t *payload; /* unmasked; points into c->buf: valid until the next call */
    size_t len;
    int close_code; /* close frames: code or -1 */
    char close_reason[WSC_CLOSE_REASON_MAX];
};

/* Connect to 127.0.0.1:port and upgrade with GET path: a random 16-byte key,
 * Host, Upgrade: websocket, Connection: Upgrade, Sec-WebSocket-Version: 13,
 * then extra_headers (NULL or lines "Name: value", separated by "\n" or
 * "\r\n"). Reads the response head (and a body by Content-Length unless 101).
 * Returns the HTTP status: 101 only after checking Upgrade, Connection and
 * Sec-WebSocket-Accept (else -1, c->status keeps 101); -1 on connect or I/O
 * error or timeout. Bytes that follow the 101 head stay buffered as frames.
 * A subprotocol in the 101 must be one that extra_headers offered in
 * "Sec-WebSocket-Protocol: a, b" (else -1); it is kept in c->protocol. */
int wsc_connect(struct wsc *c, int port, const char *path, const char *extra_headers,
                int timeout_ms);

/* Connect and send request verbatim (for bad-handshake tests); read the answer
 * as above. Sec-WebSocket-Accept is checked on a 101 when request carries a
 * Sec-WebSocket-Key. Returns the status, or -1 (also when the server closes
 * without answering). */
int wsc_connect_raw(struct wsc *c, int port, const char *request, int timeout_ms);

/* Send one frame: fin 0/1, rsv 0..7 (the three RSV bits), any opcode 0..15,
 * payload masked with a random key when masked != 0. Nothing is checked, so
 * malformed frames go out as asked. Returns 0 or -1. */
int wsc_send_frame(struct wsc *c, int fin, int rsv, int opcode, const void *payload, size_t len,
                   int masked);
int wsc_send_text(struct wsc *c, const char *s);          /* one masked text frame */
/* permessage-deflate: s compressed (a fresh raw deflate stream, the
 * 00 00 ff ff tail cut) in one text frame with RSV1. */
int wsc_send_text_deflated(struct wsc *c, const char *s);
/* data compressed the same way into out (malloc'ed), for hand-made frames. */
int wsc_deflate(const void *data, size_t len, uint8_t **out, size_t *outlen);
int wsc_send_raw(struct wsc *c, const void *p, size_t n); /* bytes as they are */
/* Close frame: code and reason (NULL = none; cut at 123 bytes); code < 0:
 * empty payload. */
int wsc_send_close(struct wsc *c, int code, const char *reason);

/* Next frame, whatever it is (pings are not answered here). Returns 1 with
 * *f filled, 0 on timeout (partial input is kept), -1 on EOF (c->eof), error
 * or protocol violation (c->proto_error). A close frame also sets
 * c->close_code/close_reason/close_received. */
int wsc_recv_frame(struct wsc *c, struct wsc_frame *f, int timeout_ms);

/* Next text message, fragments reassembled; pings are answered with pongs,
 * pongs skipped, binary messages skipped with a note on stderr. Copies it
 * NUL-terminated into out (truncated to cap - 1) and returns its full length;
 * 0 on timeout (c->timed_out = 1 tells an empty message from a timeout);
 * -1 when a close frame (answered unless c->no_close_echo) or EOF came, or on
 * a violation; then c->close_code holds the code, -1 meaning none. */
int wsc_recv_text(struct wsc *c, char *out, size_t cap, int timeout_ms);

/* 1 when the next text message equals want; else 0, printing to stderr what
 * came instead (text, timeout, close). */
int wsc_expect_text(struct wsc *c, const char *want, int timeout_ms);

/* 1 when no text message arrives within ms; 0 when one does (printed to
 * stderr) or when the connection closes meanwhile. */
int wsc_no_text(struct wsc *c, int ms);

/* Read until the server's close frame (text frames are dropped, pings
 * answered), answer it unless c->no_close_echo or we already sent one, then
 * wait for the server to close TCP. Returns the close code, or an enum
 * wsc_close_result; c->close_reason holds the reason. */
int wsc_wait_close(struct wsc *c, int timeout_ms);

/* Read and drop everything until the server closes TCP (EOF or reset); a close
 * frame on the way is recorded but not answered. Returns 1 on EOF, 0 on
 * timeout. */
int wsc_wait_eof(struct wsc *c, int timeout_ms);

/* Close the socket and free the buffers (idempotent). */
void wsc_free(struct wsc *c);

/* wss://: with a CA file, every connection opened from now on speaks TLS
 * (offering ALPN http/1.1, the server's certificate checked against the CA
 * and 127.0.0.1) before its HTTP; NULL: plain again. 0 or -1. */
int wsc_tls(const char *ca_file);
/* After wsc_tls(): present this client certificate (PEM chain, key). */
int wsc_tls_cert(const char *cert, const char *key);
/* The common name of the certificate the server presented; -1 without. */
int wsc_tls_peer_cn(const struct wsc *c, char *out, size_t cap);

#endif
