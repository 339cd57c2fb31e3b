/* fuzz_ws_deflate.c -- libFuzzer target for permessage-deflate
 * (worker/ws_deflate.c): what a client controls there.
 *
 * The input is read three ways (from an exact-size heap copy, so ASan sees
 * any read past it):
 *   - as a Sec-WebSocket-Extensions value: ws_deflate_negotiate gives 0 or
 *     1, the same twice, and the same when the value is split over two
 *     such headers at a ',' (offers are read across headers in order);
 *   - as a compressed message: ws_inflate_message returns one of its
 *     results, and on success at most max bytes (max from the first byte);
 *     nothing is allocated for the failures;
 *   - as a broadcast: the compressed twin ws_deflate_frame makes of it (if
 *     any) is smaller, has RSV1 and the same opcode, is made once (the
 *     same pointer the second time), and inflates back to the input.
 * abort() on any violation.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "http_upgrade.h"
#include "ws_deflate.h"
#include "ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fz_negotiate(const char *v1, size_t l1, const char *v2, size_t l2)
{
    struct upg_request req;
    size_t n = 0;

    memset(&req, 0, sizeof(req));
    req.h[n].name.p = "Sec-WebSocket-Extensions";
    req.h[n].name.len = 24;
    req.h[n].value.p = v1;
    req.h[n++].value.len = l1;
    if (v2 != NULL) {
        req.h[n].name.p = "sec-websocket-extensions";
        req.h[n].name.len = 24;
        req.h[n].value.p = v2;
        req.h[n++].value.len = l2;
    }
    req.nheaders = n;
    return ws_deflate_negotiate(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size > 0 ? size : 1);
    const char *comma;
    uint8_t *out = NULL;
    size_t outlen = 0, max;
    struct ws_frame *f, *z;
    int a, rc;

    FUZZ_CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);

    /* negotiation */
    a = fz_negotiate(copy, size, NULL, 0);
    FUZZ_CHECK(a == 0 || a == 1);
    FUZZ_CHECK(fz_negotiate(copy, size, NULL, 0) == a);
    comma = size > 0 ? memchr(copy, ',', size) : NULL;
    if (comma != NULL && memchr(copy, '"', size) == NULL) {
        /* "A, B" as two headers "A" and " B": the same offers in the same order */
        size_t k = (size_t)(comma - copy);
        FUZZ_CHECK(fz_negotiate(copy, k, comma + 1, size - k - 1) == a);
    }

    /* inflation, with a limit the input picks */
    max = size > 0 ? (size_t)data[0] * 64 : 0;
    rc = ws_inflate_message((const uint8_t *)copy, size, max, &out, &outlen);
    FUZZ_CHECK(rc == WS_INFLATE_OK || rc == WS_INFLATE_TOO_BIG || rc == WS_INFLATE_BAD ||
               rc == WS_INFLATE_NOMEM);
    if (rc == WS_INFLATE_OK)
        FUZZ_CHECK(outlen <= max);
    free(out);

    /* compression, once, and back */
    f = ws_frame_new(0x1, copy, size);
    FUZZ_CHECK(f != NULL);
    z = ws_deflate_frame(f, 0);
    FUZZ_CHECK(ws_deflate_frame(f, 0) == z);
    if (z != f) {
        size_t at = ws_frame_payload_at(z);
        FUZZ_CHECK(z->len < f->len);
        FUZZ_CHECK(z->data[0] == (0x80 | 0x40 | 0x1));
        out = NULL;
        rc = ws_inflate_message(z->data + at, z->len - at, size, &out, &outlen);
        FUZZ_CHECK(rc == WS_INFLATE_OK && outlen == size);
        FUZZ_CHECK(size == 0 || memcmp(out, copy, size) == 0);
        free(out);
    }
    ws_frame_unref(f);
    free(copy);
    return 0;
}
