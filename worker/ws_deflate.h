/* ws_deflate.h -- permessage-deflate (RFC 7692) the cheap way.
 *
 * Negotiated only when the client offers it and `deflate yes`: the answer
 * is always server_no_context_takeover and client_no_context_takeover, so
 * nothing is kept per connection between messages. A broadcast is
 * compressed once, the first time a session that negotiated deflate
 * writes it, and those bytes go to every such session (the frame keeps its
 * compressed twin). A message shorter than `deflate-threshold`, or one
 * that does not shrink, goes as it is (RFC 7692 allows any message to be
 * sent uncompressed). A client's compressed message is inflated with a
 * fresh stream, up to max-message-size of output.
 */
#ifndef RC_WS_DEFLATE_H
#define RC_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "http_upgrade.h"

struct ws_frame;

/* The response header line when deflate was accepted. */
extern const char ws_deflate_response[];

/* 1 when one of the request's permessage-deflate offers can be accepted
 * (see ws_deflate.c for which), else 0. Reads every
 * Sec-WebSocket-Extensions header, in order. */
int ws_deflate_negotiate(const struct upg_request *req);

/* The frame to send to a session that negotiated deflate: f's compressed
 * twin (RSV1 set), made on first use and kept with f, or f itself when it
 * is a control frame, shorter than threshold, or does not shrink. */
struct ws_frame *ws_deflate_frame(struct ws_frame *f, size_t threshold);

enum ws_inflate_result {
    WS_INFLATE_OK = 0,
    WS_INFLATE_TOO_BIG = -1, /* over max: close 1009 */
    WS_INFLATE_BAD = -2,     /* not a deflate stream: close 1007 */
    WS_INFLATE_NOMEM = -3,
};

/* Inflate a whole message's payload into a new buffer (*out, to free()),
 * at most max bytes of it; a fresh stream each time. */
int ws_inflate_message(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *outlen);

/* Give back the worker's compression stream (at exit). */
void ws_deflate_shutdown(void);

#endif
