/* ws_boundary.c -- see ws_boundary.h. */
#include "ws_boundary.h"

#include <string.h>

void wsb_reset(struct ws_boundary *b)
{
    memset(b, 0, sizeof(*b));
}

/* Full header length once the first two bytes are known (RFC 6455 5.2). */
static size_t wsb_header_len(const struct ws_boundary *b)
{
    size_t n = 2 + ((b->hdr[1] & 0x80) ? 4 : 0);
    uint8_t len7 = b->hdr[1] & 0x7f;

    return n + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
}

static uint64_t wsb_payload_len(const struct ws_boundary *b)
{
    uint8_t len7 = b->hdr[1] & 0x7f;
    uint64_t n = 0;
    int i, ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;

    if (ext == 0)
        return len7;
    for (i = 0; i < ext; i++)
        n = n << 8 | b->hdr[2 + i];
    return n;
}

/* A frame ended: data frames (opcode < 8) open or close a message;
 * control frames may come between fragments and change nothing. */
static void wsb_frame_done(struct ws_boundary *b)
{
    if ((b->first & 0x08) == 0)
        b->in_message = (b->first & 0x80) == 0;
}

void wsb_feed(struct ws_boundary *b, const uint8_t *p, size_t len)
{
    while (len > 0) {
        if (b->left > 0) {
            size_t k = b->left < len ? (size_t)b->left : len;
            b->left -= k;
            p += k;
            len -= k;
            if (b->left == 0)
                wsb_frame_done(b);
            continue;
        }
        b->hdr[b->have++] = *p++;
        len--;
        if (b->have < 2 || b->have < wsb_header_len(b))
            continue;
        b->first = b->hdr[0];
        b->left = wsb_payload_len(b);
        b->have = 0;
        if (b->left == 0)
            wsb_frame_done(b);
    }
}

int wsb_idle(const struct ws_boundary *b)
{
    return b->have == 0 && b->left == 0 && !b->in_message;
}
