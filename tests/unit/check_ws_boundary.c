/* check_ws_boundary.c -- following frame lengths to tell when the input
 * stands between messages: every header length form, masks, fragmented
 * messages with control frames between fragments, and any split of the
 * bytes over reads. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "ws_boundary.h"

/* A masked client frame with `len` payload bytes (payload left as zeroes). */
static size_t frame(uint8_t *out, int fin, uint8_t opcode, size_t len)
{
    size_t n = 0;
    int i;

    out[n++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        out[n++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xffff) {
        out[n++] = 0x80 | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = 0x80 | 127;
        for (i = 7; i >= 0; i--)
            out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    memcpy(out + n, "\x11\x22\x33\x44", 4);
    n += 4;
    memset(out + n, 'a', len);
    return n + len;
}

static uint8_t buf[200000];

START_TEST(test_whole_frames)
{
    static const size_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 100000};
    struct ws_boundary b;
    size_t i, n;

    wsb_reset(&b);
    ck_assert(wsb_idle(&b));
    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        n = frame(buf, 1, 1, lens[i]);
        wsb_feed(&b, buf, n - 1);
        ck_assert_msg(!wsb_idle(&b), "len %zu: idle one byte short", lens[i]);
        wsb_feed(&b, buf + n - 1, 1);
        ck_assert_msg(wsb_idle(&b), "len %zu: not idle after the frame", lens[i]);
    }
}
END_TEST

/* Bytes split at every position over two reads: idle only at the end. */
START_TEST(test_every_split)
{
    struct ws_boundary b;
    size_t n = frame(buf, 1, 1, 300), cut;

    n += frame(buf + n, 1, 9, 5); /* a ping after the text */
    for (cut = 0; cut <= n; cut++) {
        wsb_reset(&b);
        wsb_feed(&b, buf, cut);
        wsb_feed(&b, buf + cut, n - cut);
        ck_assert_msg(wsb_idle(&b), "split at %zu", cut);
    }
}
END_TEST

START_TEST(test_fragmented_message)
{
    struct ws_boundary b;
    size_t n;

    wsb_reset(&b);
    n = frame(buf, 0, 1, 10); /* text, not final */
    wsb_feed(&b, buf, n);
    ck_assert(!wsb_idle(&b));
    n = frame(buf, 1, 9, 3); /* a ping between fragments: still inside */
    wsb_feed(&b, buf, n);
    ck_assert(!wsb_idle(&b));
    n = frame(buf, 0, 0, 200); /* continuation, not final */
    wsb_feed(&b, buf, n);
    ck_assert(!wsb_idle(&b));
    n = frame(buf, 1, 0, 0); /* final, empty continuation */
    wsb_feed(&b, buf, n);
    ck_assert(wsb_idle(&b));
}
END_TEST

/* Byte by byte through many frames: idle exactly at each message end. */
START_TEST(test_byte_by_byte)
{
    struct ws_boundary b;
    size_t ends[3], n = 0, i, e = 0;

    n += frame(buf + n, 1, 1, 130);
    ends[0] = n;
    n += frame(buf + n, 0, 1, 1);
    n += frame(buf + n, 1, 0, 70000);
    ends[1] = n;
    n += frame(buf + n, 1, 8, 2);
    ends[2] = n;
    wsb_reset(&b);
    for (i = 0; i < n; i++) {
        wsb_feed(&b, buf + i, 1);
        if (e < 3 && i + 1 == ends[e]) {
            ck_assert_msg(wsb_idle(&b), "not idle at %zu", i + 1);
            e++;
        } else {
            ck_assert_msg(!wsb_idle(&b), "idle at %zu", i + 1);
        }
    }
    ck_assert_int_eq(e, 3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ws_boundary");
    TCase *tc = tcase_create("ws_boundary");

    tcase_add_test(tc, test_whole_frames);
    tcase_add_test(tc, test_every_split);
    tcase_add_test(tc, test_fragmented_message);
    tcase_add_test(tc, test_byte_by_byte);
    suite_add_tcase(s, tc);
    return check_run(s);
}
