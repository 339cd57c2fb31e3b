/* ws_frame.h -- a server-to-client WebSocket frame, encoded once and shared.
 *
 * A broadcast goes to every recipient as the same bytes: each output that
 * holds the frame keeps a reference, and the last one frees it. Server
 * frames are never masked (RFC 6455 5.1), so they need no per-recipient
 * copy. */
#ifndef RC_WS_FRAME_H
#define RC_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define WS_FRAME_HEADER_MAX 10 /* 2 + 8 length bytes, no mask */

struct ws_frame {
    unsigned refs;
    uint8_t deflate_tried;     /* ws_deflate_frame looked at it (deflated set or not worth it) */
    struct ws_frame *deflated; /* its permessage-deflate twin, or NULL */
    size_t len;
    uint8_t data[]; /* frame header + payload */
};

/* Write the header of a final (FIN) frame of `opcode` carrying len payload
 * bytes into p (WS_FRAME_HEADER_MAX bytes); returns its length. */
size_t ws_frame_header(uint8_t *p, uint8_t opcode, size_t len);

/* Where f's payload starts (the length of its header). */
size_t ws_frame_payload_at(const struct ws_frame *f);

/* A final frame of `opcode` with a copy of payload, refs = 1 (the
 * creator's). NULL when out of memory. */
struct ws_frame *ws_frame_new(uint8_t opcode, const void *payload, size_t len);

void ws_frame_ref(struct ws_frame *f);
/* Drop a reference; frees the frame at 0. NULL is ignored. */
void ws_frame_unref(struct ws_frame *f);

#endif
