/* ws_boundary.h -- where a client's byte stream stands between WebSocket
 * messages.
 *
 * wslay parses the frames. This only follows their lengths, so that a
 * session can tell when wslay holds no partial frame and no unfinished
 * fragmented message: then its context (two 4 KiB buffers) can be given
 * back while the connection idles, and a new one started at the next byte.
 * Malformed input is wslay's to refuse; here it only has to not crash. */
#ifndef RC_WS_BOUNDARY_H
#define RC_WS_BOUNDARY_H

#include <stddef.h>
#include <stdint.h>

struct ws_boundary {
    uint64_t left;      /* payload bytes of the current frame still to come */
    uint8_t hdr[14];    /* header of the frame being read: 2 + 8 length + 4 mask */
    uint8_t have;       /* header bytes seen so far (0: between frames or in payload) */
    uint8_t first;      /* first header byte of the frame in payload: FIN, opcode */
    uint8_t in_message; /* a fragmented data message is unfinished */
};

void wsb_reset(struct ws_boundary *b);

/* Follow len more bytes of input. */
void wsb_feed(struct ws_boundary *b, const uint8_t *p, size_t len);

/* 1 when the bytes seen so far end exactly between two messages. */
int wsb_idle(const struct ws_boundary *b);

#endif
