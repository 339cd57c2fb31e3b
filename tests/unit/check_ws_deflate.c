/* check_ws_deflate.c -- unit tests for worker/ws_deflate.c: a broadcast's
 * compressed twin (made once, kept with the frame and freed with it; RSV1
 * and the opcode; none for control frames, short frames or ones that do not
 * shrink), and ws_inflate_message (a round trip, the limit on the inflated
 * size exactly, garbage). Negotiation is tested end to end in
 * tests/integ/check_deflate.c and fuzzed in fuzz/fuzz_ws_deflate.c. */
#include "ws_deflate.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "ws_frame.h"

static char *repeat(const char *w, size_t n)
{
    char *t = malloc(n + 1);
    size_t i, k = strlen(w);

    ck_assert_ptr_nonnull(t);
    for (i = 0; i < n; i++)
        t[i] = w[i % k];
    t[n] = '\0';
    return t;
}

START_TEST(test_twin_made_once)
{
    char *text = repeat("a chat line, again; ", 1000);
    struct ws_frame *f = ws_frame_new(0x1, text, 1000), *z, *z2;
    uint8_t *out = NULL;
    size_t outlen = 0, at;

    ck_assert_ptr_nonnull(f);
    z = ws_deflate_frame(f, 256);
    ck_assert_ptr_ne(z, f);
    ck_assert_uint_lt(z->len, f->len / 4);
    ck_assert_uint_eq(z->data[0], 0x80 | 0x40 | 0x1); /* FIN, RSV1, text */
    z2 = ws_deflate_frame(f, 256);
    ck_assert_ptr_eq(z2, z); /* once */
    at = ws_frame_payload_at(z);
    ck_assert_int_eq(ws_inflate_message(z->data + at, z->len - at, 1000, &out, &outlen),
                     WS_INFLATE_OK);
    ck_assert_uint_eq(outlen, 1000);
    ck_assert(memcmp(out, text, 1000) == 0);
    free(out);
    ws_frame_unref(f); /* frees the twin too (valgrind/ASan would tell) */
    free(text);
}
END_TEST

START_TEST(test_no_twin)
{
    char *text = repeat("x", 200);
    struct ws_frame *small = ws_frame_new(0x1, text, 200);
    struct ws_frame *ping = ws_frame_new(0x9, text, 100);
    static const uint8_t noise[300] = {0x9c, 0x17, 0xe3, 0x51, 0x08, 0xaf, 0x6b, 0x34};
    uint8_t rnd[300];
    struct ws_frame *random;
    unsigned i, x = 12345;

    for (i = 0; i < sizeof(rnd); i++) {
        x = x * 1103515245u + 12345u;
        rnd[i] = (uint8_t)(x >> 16) ^ noise[i % 8];
    }
    random = ws_frame_new(0x2, rnd, sizeof(rnd));
    ck_assert_ptr_eq(ws_deflate_frame(small, 256), small); /* under the threshold */
    ck_assert_ptr_eq(ws_deflate_frame(ping, 0), ping);     /* control frame */
    ck_assert_ptr_eq(ws_deflate_frame(random, 0), random); /* does not shrink */
    ws_frame_unref(small);
    ws_frame_unref(ping);
    ws_frame_unref(random);
    free(text);
}
END_TEST

START_TEST(test_inflate_limit)
{
    char *text = repeat("z", 100000);
    struct ws_frame *f = ws_frame_new(0x1, text, 100000), *z;
    uint8_t *out = NULL;
    size_t outlen = 0, at;

    z = ws_deflate_frame(f, 0);
    ck_assert_ptr_ne(z, f);
    at = ws_frame_payload_at(z);
    ck_assert_uint_lt(z->len - at, 1000); /* a small bomb */
    ck_assert_int_eq(ws_inflate_message(z->data + at, z->len - at, 99999, &out, &outlen),
                     WS_INFLATE_TOO_BIG);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(ws_inflate_message(z->data + at, z->len - at, 100000, &out, &outlen),
                     WS_INFLATE_OK);
    ck_assert_uint_eq(outlen, 100000);
    free(out);
    out = NULL;
    ck_assert_int_eq(ws_inflate_message((const uint8_t *)"\xff\xfe\xfd\x00", 4, 100, &out,
                                        &outlen),
                     WS_INFLATE_BAD);
    ck_assert_ptr_null(out);
    ws_frame_unref(f);
    free(text);
}
END_TEST

static Suite *ws_deflate_suite(void)
{
    Suite *s = suite_create("ws_deflate");
    TCase *tc = tcase_create("ws_deflate");

    tcase_add_test(tc, test_twin_made_once);
    tcase_add_test(tc, test_no_twin);
    tcase_add_test(tc, test_inflate_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int rc = check_run(ws_deflate_suite());

    ws_deflate_shutdown();
    return rc;
}
