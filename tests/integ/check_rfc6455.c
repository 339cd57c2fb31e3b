/* check_rfc6455.c -- RFC 6455 conformance of the real binary: framing errors,
 * fragmentation, UTF-8, ping/pong and the close handshake, driven by the raw
 * test client (which can send malformed frames) against the /echo endpoint
 * (`echo-endpoint yes`: the same session code, texts echoed back) and, where
 * the chat adds something, against /chat/{user}. Every close case also
 * checks that nothing follows the close frame and that the server ends TCP. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define T_CLOSE_MS 3000        /* a close frame and the end of TCP after it */
#define T_UNANSWERED_MS 6500   /* a close the client never answers: TCP ends by then */
#define T_WAIT_UNANSWERED 9000 /* how long the test waits for that */

static struct h_redis redis;
static struct h_chat echo_srv; /* echo-endpoint yes, 2 workers, a channel of its own */
static struct h_chat chat;     /* no echo endpoint, 2 workers: the chat tests */

#define USERS_KEY "rfc-users"

#define FRAME(c, fin, op, p, n)                                                              \
    ck_assert_msg(wsc_send_frame((c), (fin), 0, (op), (p), (n), 1) == 0, "%s: send failed", #c)
#define JOIN(c, name) fx_join((c), chat.port, (name), NULL, __LINE__)
#define ECHO_OPEN(c) echo_open((c), __LINE__)

static void rfc_setup(void)
{
    /* servers go below the fixture's temp dir (TMPDIR), which is removed
     * even when a test that started its own instance fails */
    fx_tmp_enter();
    ck_assert_int_eq(h_redis_start(&redis, 1, "s3cret"), 0);
    /* apart, so that no chat traffic of one test can reach another's echo */
    fx_chat_ready(&echo_srv, &redis, 2,
                  "echo-endpoint yes\nchannel rfc-echo\nusers-key rfc-echo-users\n");
    fx_chat_ready(&chat, &redis, 2, "channel rfc-chat\nusers-key " USERS_KEY "\n");
}

static void rfc_teardown(void)
{
    h_chat_free(&echo_srv);
    h_chat_free(&chat);
    h_redis_free(&redis);
    fx_tmp_leave();
}

static void echo_open(struct wsc *c, int line)
{
    int st = wsc_connect(c, echo_srv.port, "/echo", NULL, T_MSG_MS);

    ck_assert_msg(st == 101, "line %d: /echo: HTTP %d, not 101", line, st);
}

static const char *close_result(int r)
{
    return r == WSC_CLOSE_NONE      ? "TCP ended without a close frame"
           : r == WSC_CLOSE_TIMEOUT ? "no close frame, or no EOF after it, in time"
           : r == WSC_CLOSE_NO_CODE ? "a close frame without a code"
                                    : "a close frame";
}

/* The server sends close `want` (WSC_CLOSE_NO_CODE: none) and then ends TCP
 * by itself: we never answer (a failed connection needs no answer, and a
 * close we started is answered already). Nothing may follow the close. */
static void close_expected(struct wsc *c, int want, const char *what)
{
    int got;

    c->no_close_echo = 1;
    got = wsc_wait_close(c, T_CLOSE_MS);
    ck_assert_msg(got == want, "%s: got %d (%s), want close %d", what, got, close_result(got),
                  want);
    ck_assert_msg(c->eof, "%s: the server did not close TCP after its close frame", what);
    ck_assert_msg(!c->proto_error, "%s: the server broke RFC 6455 around its close", what);
}

/* ---- malformed input: one table, one close code each ------------------- */

struct frame_spec {
    int fin, rsv, opcode, masked;
    const char *p;
    size_t len;
};

struct bad_input {
    const char *what;
    int want;               /* the close code the server must send */
    struct frame_spec f[3]; /* sent in order; opcode -1 ends the list */
    const char *raw;        /* or these bytes, as they are */
    size_t rawlen;
};

#define END_OF_FRAMES { 0, 0, -1, 0, 0, 0 }
#define ONE(fin, rsv, op, masked, p, len) { { fin, rsv, op, masked, p, len }, END_OF_FRAMES }
#define TXT(p) 1, 0, WSC_OP_TEXT, 1, p, sizeof(p) - 1
#define BAD_FRAME(what, want, fin, rsv, op, masked, p)                                       \
    { what, want, ONE(fin, rsv, op, masked, p, sizeof(p) - 1), NULL, 0 }
#define BAD_OPCODE(op) BAD_FRAME("reserved opcode " #op, 1002, 1, 0, op, 1, "x")
#define BAD_CLOSE(what, want, payload) BAD_FRAME(what, want, 1, 0, WSC_OP_CLOSE, 1, payload)
#define BAD_RAW(what, want, bytes) { what, want, { END_OF_FRAMES }, bytes, sizeof(bytes) - 1 }

static const char big126[127] = { 0 }; /* 126 bytes for an oversized control frame */

static const struct bad_input bad_inputs[] = {
    /* framing */
    BAD_FRAME("RSV1 on a text frame", 1002, 1, 4, WSC_OP_TEXT, 1, "hello"),
    BAD_FRAME("RSV2 on a text frame", 1002, 1, 2, WSC_OP_TEXT, 1, "hello"),
    BAD_FRAME("RSV3 on a text frame", 1002, 1, 1, WSC_OP_TEXT, 1, "hello"),
    BAD_FRAME("RSV1 on a ping", 1002, 1, 4, WSC_OP_PING, 1, "p"),
    BAD_OPCODE(3), BAD_OPCODE(4), BAD_OPCODE(5), BAD_OPCODE(6), BAD_OPCODE(7),
    BAD_OPCODE(0xB), BAD_OPCODE(0xC), BAD_OPCODE(0xD), BAD_OPCODE(0xE), BAD_OPCODE(0xF),
    BAD_FRAME("unmasked text frame", 1002, 1, 0, WSC_OP_TEXT, 0, "hello"),
    BAD_FRAME("unmasked ping", 1002, 1, 0, WSC_OP_PING, 0, "p"),
    /* FIN text, mask bit, 64-bit length 2^63 + 5, mask key, 5 bytes */
    BAD_RAW("64-bit length with the top bit set", 1002,
            "\x81\xff\x80\x00\x00\x00\x00\x00\x00\x05\x01\x02\x03\x04hello"),
    { "ping of 126 bytes", 1002, ONE(1, 0, WSC_OP_PING, 1, big126, 126), NULL, 0 },
    { "close of 126 bytes", 1002, ONE(1, 0, WSC_OP_CLOSE, 1, big126, 126), NULL, 0 },
    BAD_FRAME("ping with FIN=0", 1002, 0, 0, WSC_OP_PING, 1, "p"),
    BAD_FRAME("continuation without a start", 1002, 1, 0, WSC_OP_CONT, 1, "x"),
    { "text frame inside a fragmented message", 1002,
      { { 0, 0, WSC_OP_TEXT, 1, "part", 4 }, { TXT("new") }, END_OF_FRAMES }, NULL, 0 },
    { "binary frame inside a fragmented message", 1002,
      { { 0, 0, WSC_OP_TEXT, 1, "part", 4 }, { 1, 0, WSC_OP_BINARY, 1, "b", 1 },
        END_OF_FRAMES }, NULL, 0 },
    /* UTF-8 in one frame */
    BAD_FRAME("overlong '/' (C0 AF)", 1007, 1, 0, WSC_OP_TEXT, 1, "a\xc0\xaf"),
    BAD_FRAME("surrogate U+D800 (ED A0 80)", 1007, 1, 0, WSC_OP_TEXT, 1, "a\xed\xa0\x80"),
    BAD_FRAME("U+110000 (F4 90 80 80)", 1007, 1, 0, WSC_OP_TEXT, 1, "\xf4\x90\x80\x80"),
    BAD_FRAME("truncated at the end (E2 82)", 1007, 1, 0, WSC_OP_TEXT, 1, "euro \xe2\x82"),
    BAD_FRAME("truncated inside (E2 82 'x')", 1007, 1, 0, WSC_OP_TEXT, 1, "\xe2\x82x"),
    BAD_FRAME("lone continuation byte", 1007, 1, 0, WSC_OP_TEXT, 1, "a\x80"),
    BAD_FRAME("byte FF", 1007, 1, 0, WSC_OP_TEXT, 1, "a\xff"),
    /* UTF-8 split across fragments */
    { "surrogate split across fragments", 1007,
      { { 0, 0, WSC_OP_TEXT, 1, "ab\xed", 3 }, { 1, 0, WSC_OP_CONT, 1, "\xa0\x80", 2 },
        END_OF_FRAMES }, NULL, 0 },
    { "4-byte sequence cut by a fragment boundary and an ASCII byte", 1007,
      { { 0, 0, WSC_OP_TEXT, 1, "ok \xf0\x9f", 5 }, { 0, 0, WSC_OP_CONT, 1, "\x98", 1 },
        { 1, 0, WSC_OP_CONT, 1, "(", 1 } }, NULL, 0 },
    { "message ends inside a sequence split over fragments", 1007,
      { { 0, 0, WSC_OP_TEXT, 1, "ab\xe2", 3 }, { 1, 0, WSC_OP_CONT, 1, "\x82", 1 },
        END_OF_FRAMES }, NULL, 0 },
    /* close frames */
    BAD_CLOSE("close code 0", 1002, "\x00\x00"),
    BAD_CLOSE("close code 999", 1002, "\x03\xe7"),
    BAD_CLOSE("close code 1004", 1002, "\x03\xec"),
    BAD_CLOSE("close code 1005", 1002, "\x03\xed"),
    BAD_CLOSE("close code 1006", 1002, "\x03\xee"),
    BAD_CLOSE("close code 1015", 1002, "\x03\xf7"),
    BAD_CLOSE("close code 1016", 1002, "\x03\xf8"),
    BAD_CLOSE("close code 2999", 1002, "\x0b\xb7"),
    BAD_CLOSE("close code 5000", 1002, "\x13\x88"),
    BAD_CLOSE("close with a 1-byte payload", 1002, "\x03"),
    BAD_CLOSE("close reason not UTF-8", 1007, "\x03\xe8" "bye \xc0\xaf"),
};

#define N_BAD_INPUTS ((int)(sizeof(bad_inputs) / sizeof(bad_inputs[0])))

static void bad_input_send(struct wsc *c, const struct bad_input *b)
{
    int i;

    if (b->raw != NULL)
        ck_assert_int_eq(wsc_send_raw(c, b->raw, b->rawlen), 0);
    for (i = 0; i < 3 && b->f[i].opcode >= 0; i++)
        ck_assert_int_eq(wsc_send_frame(c, b->f[i].fin, b->f[i].rsv, b->f[i].opcode, b->f[i].p,
                                        b->f[i].len, b->f[i].masked),
                         0);
}

START_TEST(test_bad_input_echo)
{
    const struct bad_input *b = &bad_inputs[_i];
    struct wsc c;

    ECHO_OPEN(&c);
    SEND(&c, "warm-up");
    EXPECT(&c, "warm-up");
    bad_input_send(&c, b);
    close_expected(&c, b->want, b->what);
    wsc_free(&c);
}
END_TEST

static const struct bad_input *bad_find(const char *what)
{
    int i;

    for (i = 0; i < N_BAD_INPUTS; i++)
        if (strcmp(bad_inputs[i].what, what) == 0)
            return &bad_inputs[i];
    ck_abort_msg("no bad input \"%s\"", what);
    return NULL;
}

/* In a chat session the same close codes, and the others see a leave. */
static const char *const chat_bad[] = {
    "RSV1 on a text frame", "unmasked text frame", "ping with FIN=0",
    "surrogate split across fragments", "close code 1005",
};

START_TEST(test_bad_input_chat)
{
    const struct bad_input *b = bad_find(chat_bad[_i]);
    char name[32], peer_name[32], text[96];
    struct wsc peer, c;

    fx_users_quiesce(&redis, USERS_KEY);
    snprintf(name, sizeof(name), "bad%d", _i);
    snprintf(peer_name, sizeof(peer_name), "peer%d", _i);
    JOIN(&peer, peer_name);
    JOIN(&c, name);
    snprintf(text, sizeof(text), "%s: has joined the chat!", name);
    EXPECT(&peer, text);
    bad_input_send(&c, b);
    close_expected(&c, b->want, b->what);
    snprintf(text, sizeof(text), "%s: has left the chat!", name);
    EXPECT(&peer, text);
    QUIET(&peer);
    wsc_free(&c);
    wsc_free(&peer);
}
END_TEST

/* ---- fragmentation --------------------------------------------------------- */

/* Send msg as text fragments of `step` bytes (the first a text frame, the
 * rest continuations), with an empty continuation in the middle. */
static void send_fragmented(struct wsc *c, const char *msg, size_t len, size_t step)
{
    size_t off = 0;

    ck_assert(len > step);
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        FRAME(c, off + n == len, off == 0 ? WSC_OP_TEXT : WSC_OP_CONT, msg + off, n);
        if (off == 0)
            FRAME(c, 0, WSC_OP_CONT, "", 0);
        off += n;
    }
}

/* The next message is exactly msg, in one piece. */
static void expect_whole(struct wsc *c, const char *msg, size_t len)
{
    static char got[8192];
    int n = wsc_recv_text(c, got, sizeof(got), T_MSG_MS);

    ck_assert_msg(n == (int)len, "echo of %zu bytes: got %d", len, n);
    ck_assert_msg(memcmp(got, msg, len) == 0, "echo differs from what was sent");
}

START_TEST(test_fragments_reassembled)
{
    static const size_t steps[] = { 1, 2, 7, 100, 987 };
    char msg[13 * 76];
    struct wsc c;
    size_t i;

    /* ASCII and 2-, 3- and 4-byte characters: fragments cut inside them */
    for (i = 0; i + 13 <= sizeof(msg); i += 13)
        memcpy(msg + i, "\xf0\x9f\x98\x80" "abcd" "\xc3\xa9" "\xe2\x82\xac", 13);
    ECHO_OPEN(&c);
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        send_fragmented(&c, msg, sizeof(msg), steps[i]);
        expect_whole(&c, msg, sizeof(msg));
    }
    /* and the session goes on with plain frames */
    SEND(&c, "after");
    EXPECT(&c, "after");
    wsc_send_close(&c, 1000, NULL);
    close_expected(&c, 1000, "close after fragments");
    wsc_free(&c);
}
END_TEST

/* Read the next frame, which must be one binary message holding want. */
static void expect_binary(struct wsc *c, const uint8_t *want, size_t len, const char *what)
{
    struct wsc_frame f;
    int r = wsc_recv_frame(c, &f, T_MSG_MS);

    ck_assert_msg(r == 1, "%s: no frame came back (%d)", what, r);
    ck_assert_msg(f.opcode == 2 && f.fin, "%s: opcode %d fin %d, want one binary frame", what,
                  f.opcode, f.fin);
    ck_assert_msg(f.len == len && memcmp(f.payload, want, len) == 0,
                  "%s: %zu bytes back, want the %zu sent", what, f.len, len);
}

/* /echo is for conformance suites: binary comes back as binary, whole or
 * fragmented, up to max-message-size (4096 by default); beyond it, 1009. */
START_TEST(test_echo_binary)
{
    uint8_t msg[4096], big[4097];
    struct wsc c;
    size_t i;

    for (i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7); /* every byte value, NULs and invalid UTF-8 included */
    memset(big, 0xff, sizeof(big));
    ECHO_OPEN(&c);
    ck_assert_int_eq(wsc_send_frame(&c, 1, 0, 2, msg, 200, 1), 0);
    expect_binary(&c, msg, 200, "one binary frame");
    ck_assert_int_eq(wsc_send_frame(&c, 1, 0, 2, "", 0, 1), 0);
    expect_binary(&c, msg, 0, "an empty binary frame");
    ck_assert_int_eq(wsc_send_frame(&c, 0, 0, 2, msg, 1000, 1), 0);
    ck_assert_int_eq(wsc_send_frame(&c, 0, 0, 0, msg + 1000, 3000, 1), 0);
    ck_assert_int_eq(wsc_send_frame(&c, 1, 0, 0, msg + 4000, 96, 1), 0);
    expect_binary(&c, msg, sizeof(msg), "three fragments, max-message-size in all");
    SEND(&c, "text stays text");
    EXPECT(&c, "text stays text");
    ck_assert_int_eq(wsc_send_frame(&c, 1, 0, 2, big, sizeof(big), 1), 0);
    close_expected(&c, 1009, "a binary message over max-message-size");
    wsc_free(&c);
}
END_TEST

/* Read the next frame, which must be a pong carrying payload. */
static void expect_pong(struct wsc *c, const char *payload)
{
    struct wsc_frame f;
    int r = wsc_recv_frame(c, &f, T_MSG_MS);

    ck_assert_msg(r == 1, "no frame where the pong \"%s\" was due (%d)", payload, r);
    ck_assert_msg(f.opcode == WSC_OP_PONG, "opcode %d where the pong \"%s\" was due", f.opcode,
                  payload);
    ck_assert_msg(f.len == strlen(payload) && memcmp(f.payload, payload, f.len) == 0,
                  "pong payload \"%.*s\", want \"%s\"", (int)f.len, (const char *)f.payload,
                  payload);
}

START_TEST(test_ping_between_fragments)
{
    struct wsc_frame f;
    struct wsc c;

    ECHO_OPEN(&c);
    FRAME(&c, 0, WSC_OP_TEXT, "hel", 3);
    FRAME(&c, 1, WSC_OP_PING, "p1", 2);
    FRAME(&c, 0, WSC_OP_CONT, "lo ", 3);
    FRAME(&c, 1, WSC_OP_PING, "p2", 2);
    FRAME(&c, 1, WSC_OP_CONT, "world", 5);
    /* the pongs answer in place: both before the echo of the message */
    expect_pong(&c, "p1");
    expect_pong(&c, "p2");
    ck_assert_int_eq(wsc_recv_frame(&c, &f, T_MSG_MS), 1);
    ck_assert_int_eq(f.opcode, WSC_OP_TEXT);
    ck_assert_int_eq(f.fin, 1);
    ck_assert(f.len == 11 && memcmp(f.payload, "hello world", 11) == 0);
    wsc_free(&c);
}
END_TEST

/* A fragmented chat message reaches the others once, whole, and its sender's
 * ping is answered in the middle of it. */
START_TEST(test_fragments_chat)
{
    struct wsc a, b;

    fx_users_quiesce(&redis, USERS_KEY);
    JOIN(&a, "fa");
    JOIN(&b, "fb");
    EXPECT(&a, "fb: has joined the chat!");
    FRAME(&b, 0, WSC_OP_TEXT, "split \xf0\x9f", 8);
    FRAME(&b, 1, WSC_OP_PING, "mid", 3);
    FRAME(&b, 0, WSC_OP_CONT, "\x98", 1);
    FRAME(&b, 1, WSC_OP_CONT, "\x80 message", 9);
    expect_pong(&b, "mid");
    EXPECT(&a, "fb: split \xf0\x9f\x98\x80 message");
    QUIET(&a);
    QUIET(&b);
    wsc_free(&a);
    wsc_free(&b);
}
END_TEST

/* ---- UTF-8 -------------------------------------------------------------------- */

START_TEST(test_utf8_valid_echoed)
{
    static const char *const texts[] = {
        "\xf0\x9f\x98\x80 grinning",                   /* U+1F600 */
        "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",           /* thumbs up, skin tone */
        "max \xf4\x8f\xbf\xbf",                       /* U+10FFFF */
        "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xe6\x97\xa5", /* 2- and 3-byte */
        "\xef\xbb\xbf" "BOM and U+FFFF \xef\xbf\xbf",
    };
    static const char emoji[] = "\xf0\x9f\x8e\x89";
    struct wsc c;
    size_t i;

    ECHO_OPEN(&c);
    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        SEND(&c, texts[i]);
        expect_whole(&c, texts[i], strlen(texts[i]));
    }
    /* one emoji, one byte per fragment */
    for (i = 0; i < 4; i++)
        FRAME(&c, i == 3, i == 0 ? WSC_OP_TEXT : WSC_OP_CONT, emoji + i, 1);
    expect_whole(&c, emoji, 4);
    wsc_free(&c);
}
END_TEST

/* ---- ping / pong ------------------------------------------------------------ */

START_TEST(test_ping_pong)
{
    char p125[126];
    struct wsc c;

    memset(p125, 'q', 125);
    p125[125] = '\0';
    ECHO_OPEN(&c);
    FRAME(&c, 1, WSC_OP_PING, "are you there?", 14);
    expect_pong(&c, "are you there?");
    FRAME(&c, 1, WSC_OP_PING, "", 0);
    expect_pong(&c, "");
    FRAME(&c, 1, WSC_OP_PING, p125, 125);
    expect_pong(&c, p125);
    FRAME(&c, 1, WSC_OP_PING, "\x00\xff\x01", 3);
    {
        struct wsc_frame f;
        ck_assert_int_eq(wsc_recv_frame(&c, &f, T_MSG_MS), 1);
        ck_assert(f.opcode == WSC_OP_PONG && f.len == 3 &&
                  memcmp(f.payload, "\x00\xff\x01", 3) == 0);
    }
    /* an unsolicited pong is ignored: no answer, no close */
    FRAME(&c, 1, WSC_OP_PONG, "unasked", 7);
    QUIET(&c);
    SEND(&c, "still here");
    EXPECT(&c, "still here");
    wsc_free(&c);
}
END_TEST

/* ---- close handshake ---------------------------------------------------------- */

START_TEST(test_close_echoes_code_and_reason)
{
    struct wsc c;

    ECHO_OPEN(&c);
    ck_assert_int_eq(wsc_send_close(&c, 1000, "bye"), 0);
    close_expected(&c, 1000, "close 1000 \"bye\"");
    ck_assert_str_eq(c.close_reason, "bye");
    wsc_free(&c);

    /* in a chat: the same, and the others are told */
    {
        struct wsc a, b;
        fx_users_quiesce(&redis, USERS_KEY);
        JOIN(&a, "ca");
        JOIN(&b, "cb");
        EXPECT(&a, "cb: has joined the chat!");
        ck_assert_int_eq(wsc_send_close(&b, 1000, "bye"), 0);
        close_expected(&b, 1000, "chat close 1000 \"bye\"");
        ck_assert_str_eq(b.close_reason, "bye");
        EXPECT(&a, "cb: has left the chat!");
        wsc_free(&a);
        wsc_free(&b);
    }
}
END_TEST

static const int valid_codes[] = { 1000, 1001, 3000, 4999, -1 /* no code */ };

START_TEST(test_close_valid_codes)
{
    int code = valid_codes[_i];
    char what[64];
    struct wsc c;

    snprintf(what, sizeof(what), "close %d", code);
    ECHO_OPEN(&c);
    ck_assert_int_eq(wsc_send_close(&c, code, code < 0 ? NULL : "ok"), 0);
    close_expected(&c, code < 0 ? WSC_CLOSE_NO_CODE : code, what);
    wsc_free(&c);
}
END_TEST

/* After its close frame the server sends nothing, not even a pong for a ping
 * that came behind our close, and ends TCP. */
START_TEST(test_nothing_after_close)
{
    /* close 1000, ping "late", text "late text": masked with a zero key,
     * in one write so that the server reads them together */
    static const char frames[] = "\x88\x82\0\0\0\0\x03\xe8"
                                 "\x89\x84\0\0\0\0late"
                                 "\x81\x89\0\0\0\0late text";
    struct wsc_frame f;
    struct wsc c;

    ECHO_OPEN(&c);
    ck_assert_int_eq(wsc_send_raw(&c, frames, sizeof(frames) - 1), 0);
    c.close_sent = 1;
    ck_assert_int_eq(wsc_recv_frame(&c, &f, T_CLOSE_MS), 1);
    ck_assert_msg(f.opcode == WSC_OP_CLOSE, "opcode %d before the close", f.opcode);
    ck_assert_int_eq(f.close_code, 1000);
    ck_assert_msg(wsc_wait_eof(&c, T_CLOSE_MS), "no EOF after the close");
    ck_assert_msg(!c.proto_error, "a frame followed the close frame");
    wsc_free(&c);
}
END_TEST

/* A client that never answers the server's close (here the 4409 of a name in
 * use) loses its TCP connection after the close timeout. */
START_TEST(test_unanswered_close_times_out)
{
    struct wsc a, dup;
    long long t0;
    int r;

    fx_users_quiesce(&redis, USERS_KEY);
    JOIN(&a, "twin");
    ck_assert_int_eq(wsc_connect(&dup, chat.port, "/chat/twin", NULL, T_MSG_MS), 101);
    dup.no_close_echo = 1;
    EXPECT(&dup, "username twin is already taken. please retry with a different name");
    t0 = h_now_ms();
    r = wsc_wait_close(&dup, T_WAIT_UNANSWERED);
    ck_assert_msg(r == 4409, "got %d (%s), want 4409 then EOF", r, close_result(r));
    ck_assert_str_eq(dup.close_reason, "username already taken");
    ck_assert_msg(h_now_ms() - t0 <= T_UNANSWERED_MS, "TCP ended %lld ms after the close",
                  h_now_ms() - t0);
    ck_assert(!dup.proto_error);
    /* the holder of the name is not disturbed */
    QUIET(&a);
    wsc_free(&dup);
    wsc_free(&a);
}
END_TEST

/* A flooder closed with 1008 that never answers the close loses TCP after
 * the close timeout, whether it falls silent or keeps on sending. */
START_TEST(test_rate_limit_close_unanswered)
{
    struct h_chat rl;
    struct wsc c[2];
    struct wsc_frame f;
    long long closed_at[2] = { 0, 0 }, eof_at[2] = { 0, 0 }, t0;
    int i, k;

    fx_chat_ready(&rl, &redis, 2,
                  "rate-limit 5\nrate-limit-burst 5\nchannel rfc-rate\nusers-key rfc-rate-users\n");
    fx_join(&c[0], rl.port, "mute", NULL, __LINE__);
    fx_join(&c[1], rl.port, "loud", NULL, __LINE__);
    for (k = 0; k < 2; k++)
        for (i = 0; i < 30; i++)
            SEND(&c[k], "spam");
    t0 = h_now_ms();
    while (h_now_ms() - t0 < T_WAIT_UNANSWERED && (!eof_at[0] || !eof_at[1])) {
        for (k = 0; k < 2; k++) {
            if (eof_at[k])
                continue;
            if (wsc_recv_frame(&c[k], &f, 20) == -1 && c[k].eof)
                eof_at[k] = h_now_ms();
            if (c[k].close_received && !closed_at[k])
                closed_at[k] = h_now_ms();
        }
        if (closed_at[1] && !eof_at[1]) /* loud keeps going, and never answers */
            wsc_send_text(&c[1], "more spam");
        h_sleep_ms(80);
    }
    for (k = 0; k < 2; k++) {
        const char *who = k == 0 ? "silent flooder" : "flooder that keeps sending";
        ck_assert_msg(closed_at[k] != 0 && c[k].close_code == 1008, "%s: no close 1008", who);
        ck_assert_msg(eof_at[k] != 0, "%s: TCP still open %lld ms after the close", who,
                      h_now_ms() - closed_at[k]);
        ck_assert_msg(eof_at[k] - closed_at[k] <= T_UNANSWERED_MS,
                      "%s: TCP ended %lld ms after the close", who, eof_at[k] - closed_at[k]);
    }
    wsc_free(&c[0]);
    wsc_free(&c[1]);
    h_chat_free(&rl);
}
END_TEST

/* ---- the endpoint itself ------------------------------------------------------ */

START_TEST(test_echo_endpoint_off_by_default)
{
    struct wsc c;

    ck_assert_int_eq(wsc_connect_raw(&c, echo_srv.port, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n",
                                     T_MSG_MS),
                     426);
    wsc_free(&c);
    /* without `echo-endpoint yes` there is no such endpoint */
    ck_assert_int_eq(wsc_connect(&c, chat.port, "/echo", NULL, T_MSG_MS), 404);
    wsc_free(&c);
    ck_assert_int_eq(wsc_connect(&c, chat.port, "/echo?x=1", NULL, T_MSG_MS), 404);
    wsc_free(&c);
    ck_assert_int_eq(wsc_connect_raw(&c, chat.port, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n",
                                     T_MSG_MS),
                     404);
    wsc_free(&c);
    ASSERT_LOG(h_wait_log(chat.log, "HTTP 404", 1000), chat.log);
}
END_TEST

/* An /echo session has no name and joined no chat: it hears its own echoes
 * and nothing of the chat running on the same instance. */
START_TEST(test_echo_hears_no_chat)
{
    struct wsc e, a, b;

    ECHO_OPEN(&e);
    fx_join(&a, echo_srv.port, "ea", NULL, __LINE__);
    fx_join(&b, echo_srv.port, "eb", NULL, __LINE__);
    EXPECT(&a, "eb: has joined the chat!");
    SEND(&a, "for chat users only");
    EXPECT(&b, "ea: for chat users only");
    wsc_free(&b);
    EXPECT(&a, "eb: has left the chat!");
    ck_assert_msg(wsc_no_text(&e, T_QUIET_MS), "an /echo session received chat traffic");
    SEND(&e, "mine");
    EXPECT(&e, "mine");
    wsc_free(&a);
    wsc_free(&e);
}
END_TEST

static Suite *rfc6455_suite(void)
{
    Suite *s = suite_create("rfc6455");
    TCase *tc = tcase_create("rfc6455");

    tcase_add_unchecked_fixture(tc, rfc_setup, rfc_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_bad_input_echo, 0, N_BAD_INPUTS);
    tcase_add_loop_test(tc, test_bad_input_chat, 0, (int)(sizeof(chat_bad) / sizeof(chat_bad[0])));
    tcase_add_test(tc, test_fragments_reassembled);
    tcase_add_test(tc, test_echo_binary);
    tcase_add_test(tc, test_ping_between_fragments);
    tcase_add_test(tc, test_fragments_chat);
    tcase_add_test(tc, test_utf8_valid_echoed);
    tcase_add_test(tc, test_ping_pong);
    tcase_add_test(tc, test_close_echoes_code_and_reason);
    tcase_add_loop_test(tc, test_close_valid_codes, 0,
                        (int)(sizeof(valid_codes) / sizeof(valid_codes[0])));
    tcase_add_test(tc, test_nothing_after_close);
    tcase_add_test(tc, test_unanswered_close_times_out);
    tcase_add_test(tc, test_rate_limit_close_unanswered);
    tcase_add_test(tc, test_echo_endpoint_off_by_default);
    tcase_add_test(tc, test_echo_hears_no_chat);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(rfc6455_suite());
}
