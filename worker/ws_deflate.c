/* ws_deflate.c -- see ws_deflate.h. */
#include "ws_deflate.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "ws_frame.h"

#define WS_DEFLATE_TAIL 4 /* 00 00 ff ff: every sync-flushed block ends so (RFC 7692 7.2.1) */
#define WS_INFLATE_CHUNK 4096

const char ws_deflate_response[] =
    "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
    "client_no_context_takeover\r\n";

/* ---- negotiation: RFC 7692 section 7 over RFC 6455 section 9.1 ----------
 *
 * Accepted: the first permessage-deflate offer we can honour while
 * compressing each broadcast once for everyone: server_no_context_takeover
 * and client_no_context_takeover are always answered (a server may ask for
 * the latter unasked, 7.1.1.2); server_max_window_bits only when it is 15
 * (a smaller window would need another compressed copy); client_max_window_bits
 * with or without a value (inflating with 15 bits reads any window). An
 * offer with an unknown or repeated parameter or a bad value is declined
 * (the next offer is tried), and so is an unreadable one.
 *
 *   extension-list = 1#( token *( ";" param ) )
 *   param = token [ "=" ( token / quoted-string ) ]
 */

static int wsd_tchar(int c)
{
    return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?={}", c) == NULL;
}

static int wsd_is(const char *t, size_t n, const char *lit)
{
    return n == strlen(lit) && strncasecmp(t, lit, n) == 0;
}

static void wsd_ows(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
}

static size_t wsd_token(const char **p, const char *end, const char **tok)
{
    const char *s = *p;

    while (*p < end && wsd_tchar((unsigned char)**p))
        (*p)++;
    *tok = s;
    return (size_t)(*p - s);
}

/* token or quoted-string (its content a token, RFC 6455 9.1) into out */
static int wsd_value(const char **p, const char *end, char *out, size_t cap)
{
    const char *t;
    size_t n = 0;

    if (*p < end && **p == '"') {
        (*p)++;
        while (*p < end && **p != '"') {
            if (**p == '\\' && ++*p == end)
                return -1;
            if (!wsd_tchar((unsigned char)**p) || n + 1 >= cap)
                return -1;
            out[n++] = *(*p)++;
        }
        if (*p == end)
            return -1;
        (*p)++;
    } else {
        n = wsd_token(p, end, &t);
        if (n == 0 || n >= cap)
            return -1;
        memcpy(out, t, n);
    }
    out[n] = '\0';
    return n > 0 ? 0 : -1;
}

static int wsd_window_bits(const char *v)
{
    if (v[0] >= '8' && v[0] <= '9' && v[1] == '\0')
        return v[0] - '0';
    if (v[0] == '1' && v[1] >= '0' && v[1] <= '5' && v[2] == '\0')
        return 10 + (v[1] - '0');
    return -1;
}

/* One extension at *p, up to a ',' or the end: 1 an offer we accept, 0
 * something else or an offer we decline, -1 a syntax error. */
static int wsd_offer(const char **p, const char *end)
{
    const char *name;
    size_t nlen;
    unsigned seen = 0;
    int ok;

    wsd_ows(p, end);
    nlen = wsd_token(p, end, &name);
    if (nlen == 0)
        return -1;
    ok = wsd_is(name, nlen, "permessage-deflate");
    for (;;) {
        const char *pn;
        size_t pl;
        char val[16];
        int has_val = 0;
        unsigned bit;

        wsd_ows(p, end);
        if (*p == end || **p == ',')
            break;
        if (**p != ';')
            return -1;
        (*p)++;
        wsd_ows(p, end);
        if ((pl = wsd_token(p, end, &pn)) == 0)
            return -1;
        wsd_ows(p, end);
        if (*p < end && **p == '=') {
            (*p)++;
            wsd_ows(p, end);
            if (wsd_value(p, end, val, sizeof(val)) == -1)
                return -1;
            has_val = 1;
        }
        if (!ok)
            continue;
        if (wsd_is(pn, pl, "server_no_context_takeover"))
            bit = 1, ok = !has_val;
        else if (wsd_is(pn, pl, "client_no_context_takeover"))
            bit = 2, ok = !has_val;
        else if (wsd_is(pn, pl, "server_max_window_bits"))
            bit = 4, ok = has_val && wsd_window_bits(val) == 15;
        else if (wsd_is(pn, pl, "client_max_window_bits"))
            bit = 8, ok = !has_val || wsd_window_bits(val) > 0;
        else
            bit = 0, ok = 0;
        if (seen & bit)
            ok = 0;
        seen |= bit;
    }
    return ok;
}

int ws_deflate_negotiate(const struct upg_request *req)
{
    size_t i;

    for (i = 0; i < req->nheaders; i++) {
        const struct upg_header *h = &req->h[i];
        const char *p = h->value.p, *end = h->value.p + h->value.len;

        if (!wsd_is(h->name.p, h->name.len, "Sec-WebSocket-Extensions"))
            continue;
        while (p < end) {
            int rc = wsd_offer(&p, end);
            if (rc == 1)
                return 1;
            if (rc == -1) { /* unreadable: on to the next offer */
                const char *comma = memchr(p, ',', (size_t)(end - p));
                p = comma != NULL ? comma : end;
            }
            if (p < end)
                p++; /* the ',' */
        }
    }
    return 0;
}

/* ---- compression, once per broadcast ------------------------------------- */

static z_stream wsd_z;
static int wsd_z_ready;

/* payload compressed into a new frame of opcode with RSV1, or NULL */
static struct ws_frame *wsd_compress(uint8_t opcode, const uint8_t *in, size_t len)
{
    struct ws_frame *z;
    size_t bound, hdr, out;
    uint8_t tmp[WS_FRAME_HEADER_MAX];

    if (!wsd_z_ready) {
        if (deflateInit2(&wsd_z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return NULL;
        wsd_z_ready = 1;
    } else if (deflateReset(&wsd_z) != Z_OK) {
        return NULL;
    }
    bound = deflateBound(&wsd_z, len) + 16;
    z = malloc(sizeof(*z) + WS_FRAME_HEADER_MAX + bound);
    if (z == NULL)
        return NULL;
    /* compress behind a maximal header, then move it next to the real one */
    wsd_z.next_in = (Bytef *)(uintptr_t)in;
    wsd_z.avail_in = (uInt)len;
    wsd_z.next_out = z->data + WS_FRAME_HEADER_MAX;
    wsd_z.avail_out = (uInt)bound;
    if (deflate(&wsd_z, Z_SYNC_FLUSH) != Z_OK || wsd_z.avail_in != 0) {
        free(z);
        return NULL;
    }
    out = bound - wsd_z.avail_out;
    if (out >= WS_DEFLATE_TAIL)
        out -= WS_DEFLATE_TAIL;
    hdr = ws_frame_header(tmp, opcode, out);
    tmp[0] |= 0x40; /* RSV1: compressed */
    memmove(z->data + hdr, z->data + WS_FRAME_HEADER_MAX, out);
    memcpy(z->data, tmp, hdr);
    z->refs = 1;
    z->len = hdr + out;
    z->deflated = NULL;
    z->deflate_tried = 1;
    return z;
}

struct ws_frame *ws_deflate_frame(struct ws_frame *f, size_t threshold)
{
    uint8_t opcode = f->data[0] & 0x0f;
    size_t at, len;

    if (f->deflate_tried)
        return f->deflated != NULL ? f->deflated : f;
    f->deflate_tried = 1;
    if (opcode != 0x1 && opcode != 0x2) /* control frames are never compressed */
        return f;
    at = ws_frame_payload_at(f);
    len = f->len - at;
    if (len < threshold)
        return f;
    f->deflated = wsd_compress(opcode, f->data + at, len);
    if (f->deflated != NULL && f->deflated->len >= f->len) { /* did not shrink */
        ws_frame_unref(f->deflated);
        f->deflated = NULL;
    }
    return f->deflated != NULL ? f->deflated : f;
}

void ws_deflate_shutdown(void)
{
    if (wsd_z_ready)
        deflateEnd(&wsd_z);
    wsd_z_ready = 0;
}

/* ---- inflation, a fresh stream per message -------------------------------- */

int ws_inflate_message(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *outlen)
{
    static const uint8_t tail[WS_DEFLATE_TAIL] = {0x00, 0x00, 0xff, 0xff};
    z_stream z;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = Z_OK, pass;

    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -15) != Z_OK)
        return WS_INFLATE_NOMEM;
    for (pass = 0; pass < 2 && rc != Z_STREAM_END; pass++) {
        z.next_in = (Bytef *)(uintptr_t)(pass == 0 ? in : tail);
        z.avail_in = (uInt)(pass == 0 ? len : sizeof(tail));
        while (z.avail_in > 0) {
            if (n == cap) {
                /* never more than max + 1 bytes: a bomb is caught at the limit */
                size_t ncap = cap == 0 ? WS_INFLATE_CHUNK : cap * 2;
                uint8_t *nb;
                if (ncap > max + 1)
                    ncap = max + 1;
                if (ncap <= cap) {
                    inflateEnd(&z);
                    free(buf);
                    return WS_INFLATE_TOO_BIG;
                }
                if ((nb = realloc(buf, ncap)) == NULL) {
                    inflateEnd(&z);
                    free(buf);
                    return WS_INFLATE_NOMEM;
                }
                buf = nb;
                cap = ncap;
            }
            z.next_out = buf + n;
            z.avail_out = (uInt)(cap - n);
            rc = inflate(&z, Z_SYNC_FLUSH);
            n = cap - z.avail_out;
            if (rc == Z_STREAM_END)
                break;
            if (rc == Z_BUF_ERROR && z.avail_out > 0)
                break; /* nothing more can be made of the input */
            if (rc != Z_OK && rc != Z_BUF_ERROR) {
                inflateEnd(&z);
                free(buf);
                return WS_INFLATE_BAD;
            }
            if (n > max) {
                inflateEnd(&z);
                free(buf);
                return WS_INFLATE_TOO_BIG;
            }
        }
    }
    inflateEnd(&z);
    if (n > max) {
        free(buf);
        return WS_INFLATE_TOO_BIG;
    }
    *out = buf;
    *outlen = n;
    return WS_INFLATE_OK;
}
