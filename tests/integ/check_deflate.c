/* check_deflate.c -- permessage-deflate (RFC 7692) end to end, with the
 * test client's own zlib codec (tests/wsclient.c):
 *   - negotiation: accepted only with `deflate yes` and an offer we can
 *     honour (the first such offer of the header), always answered with
 *     server_no_context_takeover and client_no_context_takeover; declined
 *     for server_max_window_bits under 15 and for unknown parameters;
 *   - one broadcast to clients with and without deflate at once: each gets
 *     the same text, compressed or not; short texts go uncompressed;
 *   - a client's compressed messages, each with a fresh stream, reach the
 *     others as plain text; /echo answers them;
 *   - a compression bomb gets 1009, garbage 1007, RSV1 where it does not
 *     belong 1002. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define T_MSG_MS 3000
#define OFFER "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"
#define ANSWER                                                                                     \
    "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "                  \
    "client_no_context_takeover\r\n"

static struct h_redis redis;

/* one Redis for the whole suite (an unchecked fixture: the parent's) */
static void setup(void)
{
    fx_tmp_enter();
    if (h_redis_start(&redis, 0, NULL) != 0)
        abort();
}

static void teardown(void)
{
    h_redis_free(&redis);
    fx_tmp_leave();
}

/* Connect name with these extension headers (NULL: none); welcome read. */
static void join(struct wsc *c, int port, const char *name, const char *headers)
{
    char path[128], want[160];

    snprintf(path, sizeof(path), "/chat/%s", name);
    ck_assert_int_eq(wsc_connect(c, port, path, headers, T_MSG_MS), 101);
    snprintf(want, sizeof(want), "Welcome %s!", name);
    ck_assert(wsc_expect_text(c, want, T_MSG_MS));
}

/* 1 when an upgrade with this Sec-WebSocket-Extensions value is answered
 * with deflate. */
static int accepted(int port, const char *value)
{
    struct wsc c;
    char hdr[512];
    int yes;

    snprintf(hdr, sizeof(hdr), "Sec-WebSocket-Extensions: %s", value);
    ck_assert_int_eq(wsc_connect(&c, port, "/chat/nego", hdr, T_MSG_MS), 101);
    yes = c.deflate;
    ck_assert_int_eq(yes, strstr(c.head, ANSWER) != NULL);
    wsc_free(&c);
    return yes;
}

static char *text_of(size_t n, const char *word)
{
    char *t = malloc(n + 1);
    size_t i, w = strlen(word);

    ck_assert_ptr_nonnull(t);
    for (i = 0; i < n; i++)
        t[i] = word[i % w];
    t[n] = '\0';
    return t;
}

START_TEST(test_negotiation)
{
    struct h_chat on, off;

    fx_chat_ready(&on, &redis, 1, "deflate yes\nannounce no\n");
    fx_chat_ready(&off, &redis, 1, "announce no\n");
    ck_assert(accepted(on.port, "permessage-deflate"));
    ck_assert(accepted(on.port, "permessage-deflate; client_max_window_bits"));
    ck_assert(accepted(on.port, "permessage-deflate; client_max_window_bits=10"));
    ck_assert(accepted(on.port, "permessage-deflate; server_no_context_takeover; "
                                "client_no_context_takeover"));
    ck_assert(accepted(on.port, "permessage-deflate; server_max_window_bits=15"));
    ck_assert(accepted(on.port, "permessage-deflate; server_max_window_bits=\"15\""));
    /* declined offers: a smaller server window, unknown or repeated parameters, bad values */
    ck_assert(!accepted(on.port, "permessage-deflate; server_max_window_bits=10"));
    ck_assert(!accepted(on.port, "permessage-deflate; x-unknown"));
    ck_assert(!accepted(on.port, "permessage-deflate; client_no_context_takeover; "
                                 "client_no_context_takeover"));
    ck_assert(!accepted(on.port, "permessage-deflate; client_max_window_bits=16"));
    ck_assert(!accepted(on.port, "permessage-deflate; server_no_context_takeover=1"));
    ck_assert(!accepted(on.port, "x-webkit-deflate-frame"));
    /* the first offer we can honour wins */
    ck_assert(accepted(on.port, "permessage-deflate; server_max_window_bits=9, "
                                "permessage-deflate; client_max_window_bits"));
    ck_assert(accepted(on.port, "x-other, permessage-deflate"));
    /* deflate no (the default): never */
    ck_assert(!accepted(off.port, "permessage-deflate; client_max_window_bits"));
    h_chat_free(&on);
    h_chat_free(&off);
}
END_TEST

/* One broadcast, recipients with and without deflate. */
START_TEST(test_interleaved_recipients)
{
    struct h_chat a, b;
    struct wsc z1, z2, p, s;
    char *big = text_of(2000, "the same words again and again, "), want[2100];

    fx_chat_ready(&a, &redis, 2, "deflate yes\nannounce no\n");
    fx_chat_ready(&b, &redis, 2, "deflate yes\nannounce no\n");
    join(&z1, a.port, "z1", OFFER);
    join(&z2, b.port, "z2", OFFER);
    join(&p, a.port, "p", NULL);
    join(&s, b.port, "s", NULL);
    ck_assert(z1.deflate && z2.deflate && !p.deflate && !s.deflate);

    ck_assert_int_eq(wsc_send_text(&s, big), 0);
    snprintf(want, sizeof(want), "s: %s", big);
    ck_assert(wsc_expect_text(&z1, want, T_MSG_MS));
    ck_assert(wsc_expect_text(&z2, want, T_MSG_MS));
    ck_assert(wsc_expect_text(&p, want, T_MSG_MS));
    ck_assert_int_eq(z1.compressed_in, 1);
    ck_assert_int_eq(z2.compressed_in, 1);

    /* under deflate-threshold: as it is */
    ck_assert_int_eq(wsc_send_text(&s, "short"), 0);
    ck_assert(wsc_expect_text(&z1, "s: short", T_MSG_MS));
    ck_assert(wsc_expect_text(&z2, "s: short", T_MSG_MS));
    ck_assert(wsc_expect_text(&p, "s: short", T_MSG_MS));
    ck_assert_int_eq(z1.compressed_in, 1);

    /* many in a row, interleaved long and short, all in order */
    for (int i = 0; i < 20; i++) {
        char t[2100];
        snprintf(t, sizeof(t), "%d %s", i, i % 2 ? "tiny" : big);
        ck_assert_int_eq(wsc_send_text(&s, t), 0);
    }
    for (int i = 0; i < 20; i++) {
        char t[2100];
        snprintf(t, sizeof(t), "s: %d %s", i, i % 2 ? "tiny" : big);
        ck_assert(wsc_expect_text(&z2, t, T_MSG_MS));
        ck_assert(wsc_expect_text(&p, t, T_MSG_MS));
    }
    ck_assert_int_eq(z2.compressed_in, 11);
    free(big);
    wsc_free(&z1);
    wsc_free(&z2);
    wsc_free(&p);
    wsc_free(&s);
    h_chat_free(&a);
    h_chat_free(&b);
}
END_TEST

/* Compressed messages from a client: each inflated on its own. */
START_TEST(test_client_compressed)
{
    struct h_chat a;
    struct wsc z, p, e;
    char *big = text_of(3000, "compress me "), want[3100], got[3100];

    fx_chat_ready(&a, &redis, 1, "deflate yes\nannounce no\necho-endpoint yes\n");
    join(&z, a.port, "zc", OFFER);
    join(&p, a.port, "pc", NULL);
    ck_assert_int_eq(wsc_send_text_deflated(&z, big), 0);
    ck_assert_int_eq(wsc_send_text_deflated(&z, "and a short one"), 0);
    ck_assert_int_eq(wsc_send_text(&z, "plain in between"), 0);
    ck_assert_int_eq(wsc_send_text_deflated(&z, big), 0);
    snprintf(want, sizeof(want), "zc: %s", big);
    ck_assert(wsc_expect_text(&p, want, T_MSG_MS));
    ck_assert(wsc_expect_text(&p, "zc: and a short one", T_MSG_MS));
    ck_assert(wsc_expect_text(&p, "zc: plain in between", T_MSG_MS));
    ck_assert(wsc_expect_text(&p, want, T_MSG_MS));

    /* /echo negotiates too, and answers a compressed message */
    ck_assert_int_eq(wsc_connect(&e, a.port, "/echo", OFFER, T_MSG_MS), 101);
    ck_assert(e.deflate);
    ck_assert_int_eq(wsc_send_text_deflated(&e, big), 0);
    ck_assert_int_eq(wsc_recv_text(&e, got, sizeof(got), T_MSG_MS), (int)strlen(big));
    ck_assert_str_eq(got, big);
    free(big);
    wsc_free(&z);
    wsc_free(&p);
    wsc_free(&e);
    h_chat_free(&a);
}
END_TEST

/* A bomb, garbage, RSV1 in the wrong place. */
START_TEST(test_bad_compressed_input)
{
    struct h_chat a;
    struct wsc z;
    size_t n = 1 << 20, zlen;
    char *zeros = calloc(1, n);
    uint8_t *bomb;
    static const uint8_t junk[] = {0xff, 0xfe, 0xfd, 0x00, 0x13, 0x37};

    ck_assert_ptr_nonnull(zeros);
    memset(zeros, 'a', n);
    ck_assert_int_eq(wsc_deflate(zeros, n, &bomb, &zlen), 0);
    free(zeros);
    ck_assert_uint_lt(zlen, 4096); /* 1 MiB in under max-message-size: a bomb */

    fx_chat_ready(&a, &redis, 1, "deflate yes\nannounce no\nmax-message-size 4k\n"
                                 "max-connections-per-ip 0\n");
    join(&z, a.port, "bomber", OFFER);
    ck_assert_int_eq(wsc_send_frame(&z, 1, 4, WSC_OP_TEXT, bomb, zlen, 1), 0);
    ck_assert_int_eq(wsc_wait_close(&z, T_MSG_MS), 1009);
    wsc_free(&z);
    ck_assert(h_wait_log(a.log, "message too big (inflated)", 2000));
    free(bomb);

    join(&z, a.port, "junk", OFFER);
    ck_assert_int_eq(wsc_send_frame(&z, 1, 4, WSC_OP_TEXT, junk, sizeof(junk), 1), 0);
    ck_assert_int_eq(wsc_wait_close(&z, T_MSG_MS), 1007);
    wsc_free(&z);

    /* RSV1 on a ping, and on a continuation frame */
    join(&z, a.port, "rsvping", OFFER);
    ck_assert_int_eq(wsc_send_frame(&z, 1, 4, WSC_OP_PING, "x", 1, 1), 0);
    ck_assert_int_eq(wsc_wait_close(&z, T_MSG_MS), 1002);
    wsc_free(&z);
    join(&z, a.port, "rsvcont", OFFER);
    ck_assert_int_eq(wsc_send_frame(&z, 0, 0, WSC_OP_TEXT, "ab", 2, 1), 0);
    ck_assert_int_eq(wsc_send_frame(&z, 1, 4, WSC_OP_CONT, "cd", 2, 1), 0);
    ck_assert_int_eq(wsc_wait_close(&z, T_MSG_MS), 1002);
    wsc_free(&z);

    /* RSV1 without deflate negotiated */
    join(&z, a.port, "nodeflate", NULL);
    ck_assert_int_eq(wsc_send_text_deflated(&z, "hello"), 0);
    ck_assert_int_eq(wsc_wait_close(&z, T_MSG_MS), 1002);
    wsc_free(&z);
    h_chat_free(&a);
}
END_TEST

static Suite *deflate_suite(void)
{
    Suite *s = suite_create("deflate");
    TCase *tc = tcase_create("deflate");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_negotiation);
    tcase_add_test(tc, test_interleaved_recipients);
    tcase_add_test(tc, test_client_compressed);
    tcase_add_test(tc, test_bad_compressed_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(deflate_suite());
}
