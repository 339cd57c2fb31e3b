/* ws_frame.c -- see ws_frame.h. */
#include "ws_frame.h"

#include <stdlib.h>
#include <string.h>

size_t ws_frame_header(uint8_t *p, uint8_t opcode, size_t len)
{
    int i;

    p[0] = 0x80 | opcode; /* FIN */
    if (len < 126) {
        p[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        p[1] = 126;
        p[2] = (uint8_t)(len >> 8);
        p[3] = (uint8_t)len;
        return 4;
    }
    p[1] = 127;
    for (i = 0; i < 8; i++)
        p[2 + i] = (uint8_t)((uint64_t)len >> (8 * (7 - i)));
    return 10;
}

size_t ws_frame_payload_at(const struct ws_frame *f)
{
    uint8_t l = f->data[1] & 0x7f;

    return l < 126 ? 2 : l == 126 ? 4 : 10;
}

struct ws_frame *ws_frame_new(uint8_t opcode, const void *payload, size_t len)
{
    struct ws_frame *f = malloc(sizeof(*f) + WS_FRAME_HEADER_MAX + len);
    size_t hdr;

    if (f == NULL)
        return NULL;
    hdr = ws_frame_header(f->data, opcode, len);
    if (len > 0)
        memcpy(f->data + hdr, payload, len);
    f->refs = 1;
    f->deflate_tried = 0;
    f->deflated = NULL;
    f->len = hdr + len;
    return f;
}

void ws_frame_ref(struct ws_frame *f)
{
    f->refs++;
}

void ws_frame_unref(struct ws_frame *f)
{
    if (f != NULL && --f->refs == 0) {
        ws_frame_unref(f->deflated);
        free(f);
    }
}
