/* check_ws_transport.c -- the worker's WebSocket transport on its own: no
 * broker, no Redis, no chat. Each test runs the real ws_session.c (with
 * http_route.c, ws_write.c, ws_frame.c, bcast_log.c) on one end of a
 * socketpair, with a test application that records its callbacks, and
 * plays the client on the other end with hand-made frames. */
#include <check.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_run.h"
#include "config.h"
#include "conn_count.h"
#include "ws_app.h"
#include "ws_frame.h"
#include "ws_session.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* ---- the test application -------------------------------------------------- */

static struct {
    int opens, texts, binaries, gones;
    char param[64];
    char last[8192];
    size_t lastlen;
    int echo;    /* echo texts back */
    int no_open; /* upgrade but leave the session UPGRADED */
    struct wss_session *s;
} app_rec;

/* the test application's one audience (chat keeps one per room) */
static struct bcast_log stream;

static void t_open(struct wss_session *s, const struct upg_request *req,
                   const struct upg_str *param, void *arg)
{
    (void)arg;
    app_rec.opens++;
    app_rec.s = s;
    snprintf(app_rec.param, sizeof(app_rec.param), "%.*s", (int)param->len,
             param->p ? param->p : "");
    if (wss_upgrade(s, req, NULL) == 0 && !app_rec.no_open) {
        wss_subscribe(s, &stream);
        wss_open(s);
    }
}

static void t_text(struct wss_session *s, const char *text, size_t len, void *arg)
{
    (void)arg;
    app_rec.texts++;
    memcpy(app_rec.last, text, len);
    app_rec.lastlen = len;
    if (app_rec.echo)
        wss_queue_text(s, text, len);
}

static void t_gone(struct wss_session *s, void *arg)
{
    (void)arg;
    app_rec.gones++;
    if (app_rec.s == s)
        app_rec.s = NULL;
}

static const struct ws_app test_app = {t_open, NULL, t_text, NULL, t_gone, NULL};

static const char *t_unavailable(void *arg)
{
    return arg;
}

/* ---- the server side ----------------------------------------------------------- */

static struct cfg cfg;
static struct event_base *base;
static struct wss_server srv;
static struct ccount *cc;
static struct http_route routes[] = {
    {"/", HTTP_ROUTE_TEXT, "hello", NULL, NULL},
    {"/healthz", HTTP_ROUTE_HEALTH, NULL, NULL, NULL},
    {"/t/", HTTP_ROUTE_WS, NULL, &test_app, NULL},
};

static void setup_with(long max_pending)
{
    char err[CFG_ERR_LEN];

    memset(&app_rec, 0, sizeof(app_rec));
    cfg_init(&cfg);
    cfg.max_pending_bytes = max_pending;
    cfg.flush_interval = 0;
    cfg.io_uring = 1;
    ck_assert_msg(cfg_finalize(&cfg, err, sizeof(err)) == 0, "%s", err);
    base = event_base_new();
    cc = ccount_create();
    ck_assert_ptr_nonnull(cc);
    memset(&srv, 0, sizeof(srv));
    ck_assert_int_eq(wss_server_init(&srv, base, &cfg, cc, ccount_row_acquire(cc)), 0);
    ck_assert_int_eq(bcast_init(&stream), 0);
    srv.site.routes = routes;
    srv.site.nroutes = sizeof(routes) / sizeof(routes[0]);
    srv.site.ws_not_found = "no such endpoint";
    srv.site.cfg = &cfg;
    srv.site.unavailable = t_unavailable;
}

static void setup(void)
{
    setup_with(1024 * 1024);
}

static void teardown(void)
{
    wss_server_deinit(&srv);
    bcast_deinit(&stream);
    ccount_destroy(cc);
    event_base_free(base);
    cfg_free(&cfg);
}

/* Run the loop until idle, and flush as the worker does after a batch. */
static void spin(void)
{
    int i;

    for (i = 0; i < 20; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        wss_flush_dirty(&srv);
    }
}

/* A new connection of a socket type: returns the client's end. On
 * SOCK_SEQPACKET each server write arrives as one record. */
static int t_connect_type(int type)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, type, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    ccount_add(cc, srv.ccount_row, 0, 1);
    wss_accept(&srv, sv[0], "test", 0, 0);
    return sv[1];
}

static int t_connect(void)
{
    return t_connect_type(SOCK_STREAM);
}

/* Everything the server wrote so far (waits briefly for the first byte). */
static size_t t_read(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t k;

    spin();
    while (n < cap && (k = recv(fd, buf + n, cap - n, MSG_DONTWAIT)) > 0) {
        n += (size_t)k;
        spin();
    }
    return n;
}

static void t_send(int fd, const void *p, size_t n)
{
    ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
    spin();
}

/* A masked client frame. */
static void t_frame(int fd, int fin, int opcode, const void *payload, size_t len)
{
    uint8_t out[16 + 8192];
    const uint8_t mask[4] = {1, 2, 3, 4};
    size_t h = 0, i;

    ck_assert_uint_le(len, 8192);
    out[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        out[h++] = (uint8_t)(0x80 | len);
    } else {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    }
    memcpy(out + h, mask, 4);
    h += 4;
    for (i = 0; i < len; i++)
        out[h + i] = ((const uint8_t *)payload)[i] ^ mask[i % 4];
    t_send(fd, out, h + len);
}

static void t_request(int fd, const char *path)
{
    char req[512];

    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
             path);
    t_send(fd, req, strlen(req));
}

static int t_upgrade(const char *path)
{
    int fd = t_connect();
    char buf[1024];
    size_t n;

    t_request(fd, path);
    n = t_read(fd, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "HTTP/1.1 101 ", 13) == 0, "no 101: %s", buf);
    ck_assert_msg(strstr(buf, "Sec-WebSocket-Accept: " ACCEPT "\r\n") != NULL, "%s", buf);
    return fd;
}

/* Parse server frames out of buf: opcode and payload of frame `index`. */
static int t_nth_frame(const char *buf, size_t n, int index, int *opcode, const char **payload,
                       size_t *len)
{
    size_t off = 0;

    while (off + 2 <= n) {
        const uint8_t *p = (const uint8_t *)buf + off;
        size_t l = p[1] & 0x7f, h = 2;
        ck_assert_msg(!(p[1] & 0x80), "a server frame is masked");
        if (l == 126) {
            l = (size_t)p[2] << 8 | p[3];
            h = 4;
        }
        if (off + h + l > n)
            return 0;
        if (index-- == 0) {
            *opcode = p[0] & 0x0f;
            *payload = (const char *)p + h;
            *len = l;
            return 1;
        }
        off += h + l;
    }
    return 0;
}

/* ---- tests ------------------------------------------------------------------------ */

START_TEST(test_routes)
{
    char buf[1024];
    int fd;
    size_t n;

    fd = t_connect();
    t_send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    n = t_read(fd, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(buf, "\r\n\r\nhello\n"), "%s",
                  buf);
    close(fd);

    srv.site.arg = (void *)"unavailable: testing"; /* t_unavailable hands it back */
    fd = t_connect();
    t_send(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 34);
    n = t_read(fd, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "HTTP/1.1 503", 12) == 0 && strstr(buf, "unavailable: testing"),
                  "%s", buf);
    close(fd);

    fd = t_connect();
    t_send(fd, "GET /t/x HTTP/1.1\r\nHost: x\r\n\r\n", 30);
    n = t_read(fd, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "HTTP/1.1 426", 12) == 0, "%s", buf);
    close(fd);
    spin();
    ck_assert_int_eq(app_rec.opens, 0);
    ck_assert_uint_eq(srv.nsessions, 0);
}
END_TEST

START_TEST(test_upgrade_text_in_and_out)
{
    char buf[1024];
    const char *p;
    size_t n, len;
    int fd = t_upgrade("/t/alice?x=1"), op;

    ck_assert_int_eq(app_rec.opens, 1);
    ck_assert_str_eq(app_rec.param, "alice");
    app_rec.echo = 1;
    t_frame(fd, 1, 1, "hello", 5);
    ck_assert_int_eq(app_rec.texts, 1);
    ck_assert_int_eq((int)app_rec.lastlen, 5);
    n = t_read(fd, buf, sizeof(buf));
    ck_assert(t_nth_frame(buf, n, 0, &op, &p, &len));
    ck_assert_int_eq(op, 1);
    ck_assert_uint_eq(len, 5);
    ck_assert(memcmp(p, "hello", 5) == 0);
    close(fd);
    spin();
    ck_assert_int_eq(app_rec.gones, 1);
    ck_assert_uint_eq(srv.nsessions, 0);
}
END_TEST

START_TEST(test_fragments_and_ping)
{
    char buf[1024];
    const char *p;
    size_t n, len;
    int fd = t_upgrade("/t/bob"), op;

    t_frame(fd, 0, 1, "frag", 4);
    t_frame(fd, 1, 9, "pi", 2); /* a ping between fragments */
    t_frame(fd, 0, 0, "men", 3);
    ck_assert_int_eq(app_rec.texts, 0);
    t_frame(fd, 1, 0, "ted", 3);
    ck_assert_int_eq(app_rec.texts, 1);
    ck_assert_int_eq((int)app_rec.lastlen, 10);
    ck_assert(memcmp(app_rec.last, "fragmented", 10) == 0);
    n = t_read(fd, buf, sizeof(buf));
    ck_assert(t_nth_frame(buf, n, 0, &op, &p, &len));
    ck_assert_int_eq(op, 10); /* pong */
    ck_assert(len == 2 && memcmp(p, "pi", 2) == 0);
    close(fd);
    spin();
}
END_TEST

START_TEST(test_close_by_client)
{
    char buf[64];
    const char *p;
    size_t n, len;
    int fd = t_upgrade("/t/c"), op;

    t_frame(fd, 1, 8, "\x03\xe8" "bye", 5);
    n = t_read(fd, buf, sizeof(buf));
    ck_assert(t_nth_frame(buf, n, 0, &op, &p, &len));
    ck_assert_int_eq(op, 8);
    ck_assert(len >= 2 && (uint8_t)p[0] == 0x03 && (uint8_t)p[1] == 0xe8);
    ck_assert_int_eq(app_rec.gones, 1); /* the server ended TCP after its close */
    ck_assert_int_eq(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), 0);
    close(fd);
}
END_TEST

START_TEST(test_close_by_server_and_binary_refused)
{
    char buf[256];
    const char *p;
    size_t n, len;
    int fd = t_upgrade("/t/d"), op;

    /* the test app has no binary callback: 1003 */
    t_frame(fd, 1, 2, "\x00\x01", 2);
    n = t_read(fd, buf, sizeof(buf));
    ck_assert(t_nth_frame(buf, n, 0, &op, &p, &len));
    ck_assert_int_eq(op, 8);
    ck_assert(len >= 2 && ((uint8_t)p[0] << 8 | (uint8_t)p[1]) == 1003);
    ck_assert_int_eq(app_rec.gones, 0); /* waits for our close */
    t_frame(fd, 1, 8, "\x03\xeb", 2);
    ck_assert_int_eq(app_rec.gones, 1);
    close(fd);

    fd = t_upgrade("/t/e");
    wss_queue_text(app_rec.s, "last words", 10);
    wss_close(app_rec.s, 4000, "bye now");
    n = t_read(fd, buf, sizeof(buf));
    ck_assert(t_nth_frame(buf, n, 0, &op, &p, &len));
    ck_assert(op == 1 && len == 10); /* queued text first */
    ck_assert(t_nth_frame(buf, n, 1, &op, &p, &len));
    ck_assert(op == 8 && ((uint8_t)p[0] << 8 | (uint8_t)p[1]) == 4000);
    ck_assert(len == 9 && memcmp(p + 2, "bye now", 7) == 0);
    t_frame(fd, 1, 8, "\x0f\xa0", 2);
    ck_assert_int_eq(app_rec.gones, 2);
    close(fd);
}
END_TEST

/* Every subscribed session gets each broadcast once, in order, in as few
 * writes as the batch allows; the sender skips its own. */
START_TEST(test_broadcast_batched)
{
    int fds[3], i, k, op;
    struct wss_session *sess[3];
    char buf[4096], text[16];
    const char *p;
    size_t n, len;

    for (i = 0; i < 3; i++) {
        fds[i] = t_upgrade(i == 0 ? "/t/a" : i == 1 ? "/t/b" : "/t/c");
        sess[i] = app_rec.s;
    }
    for (k = 0; k < 10; k++) {
        struct ws_frame *f;
        snprintf(text, sizeof(text), "m%d", k);
        f = ws_frame_new(1, text, strlen(text));
        ck_assert_int_eq(wss_broadcast(&srv, &stream, f, k == 3 ? sess[1]->id : 0), 0);
        ws_frame_unref(f);
    }
    wss_flush_dirty(&srv);
    for (i = 0; i < 3; i++) {
        int seen = 0;
        n = t_read(fds[i], buf, sizeof(buf));
        for (k = 0; k < 10; k++) {
            if (i == 1 && k == 3)
                continue;
            snprintf(text, sizeof(text), "m%d", k);
            ck_assert(t_nth_frame(buf, n, seen++, &op, &p, &len));
            ck_assert(op == 1 && len == strlen(text) && memcmp(p, text, len) == 0);
        }
        ck_assert(!t_nth_frame(buf, n, seen, &op, &p, &len));
    }
    for (i = 0; i < 3; i++)
        close(fds[i]);
    spin();
    ck_assert_uint_eq(srv.nsessions, 0);
}
END_TEST

/* Queue `own` frames for the session and broadcast `cast`, flush once, and
 * check the client gets them all, each kind in order. */
static void t_own_and_cast(int fd, int own_n, int cast_n)
{
    int k, op, own = 0, cast = 0;
    char buf[16384], text[16];
    const char *p;
    size_t n, len;

    for (k = 0; k < own_n + cast_n; k++) {
        struct ws_frame *f;
        snprintf(text, sizeof(text), k < own_n ? "q%d" : "m%d", k < own_n ? k : k - own_n);
        f = ws_frame_new(1, text, strlen(text));
        if (k < own_n)
            wss_queue_frame(app_rec.s, f);
        else
            ck_assert_int_eq(wss_broadcast(&srv, &stream, f, 0), 0);
        ws_frame_unref(f);
    }
    wss_flush_dirty(&srv);
    n = t_read(fd, buf, sizeof(buf));
    for (k = 0; t_nth_frame(buf, n, k, &op, &p, &len); k++) {
        ck_assert_int_eq(op, 1);
        snprintf(text, sizeof(text), p[0] == 'q' ? "q%d" : "m%d", p[0] == 'q' ? own++ : cast++);
        ck_assert_msg(len == strlen(text) && memcmp(p, text, len) == 0, "frame %d: %.*s, want %s",
                      k, (int)len, p, text);
    }
    ck_assert_int_eq(own, own_n);
    ck_assert_int_eq(cast, cast_n);
}

/* More frames queued for one session than a write takes iovecs: all go
 * out, in order (frames past the 64th were once dropped when nothing of
 * the stream was pending: the own buffer was taken as written whole). */
START_TEST(test_many_own_frames_in_one_flush)
{
    int fd = t_upgrade("/t/many");

    t_own_and_cast(fd, 300, 0);
    t_own_and_cast(fd, 65, 0);
    t_own_and_cast(fd, 200, 150);
    close(fd);
    spin();
}
END_TEST

/* A client that does not read is dropped past max-pending-bytes, and the
 * others go on. */
START_TEST(test_slow_reader_capped)
{
    int slow, fast, k, rcv = 4096;
    char payload[1000], buf[8192];
    size_t got = 0, n;

    teardown();
    setup_with(64 * 1024);
    slow = t_upgrade("/t/slow");
    setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    fast = t_upgrade("/t/fast");
    memset(payload, 'x', sizeof(payload));
    for (k = 0; k < 400 && app_rec.gones == 0; k++) {
        struct ws_frame *f = ws_frame_new(1, payload, sizeof(payload));
        ck_assert_int_eq(wss_broadcast(&srv, &stream, f, 0), 0);
        ws_frame_unref(f);
        wss_flush_dirty(&srv);
        while ((n = (size_t)recv(fast, buf, sizeof(buf), MSG_DONTWAIT)) > 0 && n != (size_t)-1)
            got += n;
        spin();
    }
    ck_assert_msg(app_rec.gones == 1, "the slow reader was not dropped (%d broadcasts)", k);
    ck_assert_uint_eq(srv.nsessions, 1);
    ck_assert_uint_gt(got, 0);
    close(slow);
    close(fast);
}
END_TEST

/* The 101 waits for the app's open and leaves with the app's first words
 * in one write (one record on a SOCK_SEQPACKET pair); a frame the client
 * sends meanwhile reaches the app after the open. */
START_TEST(test_101_held_until_open)
{
    char buf[1024];
    const char *p, *frames;
    size_t n, len;
    ssize_t k;
    int fd = t_connect_type(SOCK_SEQPACKET), op;

    app_rec.no_open = 1;
    t_request(fd, "/t/held");
    ck_assert_int_eq(app_rec.opens, 1);
    ck_assert_int_lt(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), 0); /* nothing yet */
    t_frame(fd, 1, 1, "early", 5);
    ck_assert_int_eq(app_rec.texts, 0);
    ck_assert_ptr_nonnull(app_rec.s);
    wss_queue_text(app_rec.s, "welcome", 7);
    wss_open(app_rec.s);
    spin();
    k = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    ck_assert_int_gt(k, 0);
    n = (size_t)k;
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "HTTP/1.1 101 ", 13) == 0, "no 101: %s", buf);
    frames = strstr(buf, "\r\n\r\n");
    ck_assert_ptr_nonnull(frames);
    frames += 4;
    ck_assert_msg(t_nth_frame(frames, n - (size_t)(frames - buf), 0, &op, &p, &len),
                  "the welcome is not in the 101's write");
    ck_assert(op == 1 && len == 7 && memcmp(p, "welcome", 7) == 0);
    ck_assert_int_eq(app_rec.texts, 1); /* the early frame, once open */
    ck_assert(app_rec.lastlen == 5 && memcmp(app_rec.last, "early", 5) == 0);
    close(fd);
    spin();
    ck_assert_int_eq(app_rec.gones, 1);
}
END_TEST

/* An app that does not open in time: the 101 goes alone after the hold,
 * and the session still opens later. */
START_TEST(test_101_hold_expires)
{
    char buf[1024];
    const char *p;
    size_t n, len;
    int fd = t_connect(), op;
    struct timeval tv = {0, 50 * 1000};
    int i;

    app_rec.no_open = 1;
    t_request(fd, "/t/late");
    ck_assert_int_lt(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), 0);
    for (i = 0; i < 60 && recv(fd, buf, 1, MSG_PEEK | MSG_DONTWAIT) <= 0; i++) {
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
        wss_flush_dirty(&srv);
    }
    ck_assert_msg(i >= 15, "the 101 came after %d ms, before the hold ended", i * 50);
    n = t_read(fd, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "HTTP/1.1 101 ", 13) == 0, "no 101 after the hold: %s", buf);
    ck_assert_ptr_null(strstr(buf, "welcome"));
    wss_queue_text(app_rec.s, "welcome", 7);
    wss_open(app_rec.s);
    n = t_read(fd, buf, sizeof(buf));
    ck_assert(t_nth_frame(buf, n, 0, &op, &p, &len));
    ck_assert(op == 1 && len == 7 && memcmp(p, "welcome", 7) == 0);
    close(fd);
    spin();
}
END_TEST

/* The held 101 is not the peer's backlog: the app's first words may fill
 * max-pending-bytes on their own (a 4 KiB token echoed in the 101 used to
 * drop the session as a slow reader before it had written a byte). */
START_TEST(test_held_101_not_counted_as_backlog)
{
    char text[1000], buf[4096];
    const char *p, *frames;
    size_t n, len;
    int fd, op;

    teardown();
    setup_with(1024);
    fd = t_connect();
    app_rec.no_open = 1;
    t_request(fd, "/t/capped");
    ck_assert_ptr_nonnull(app_rec.s);
    memset(text, 'w', sizeof(text));
    wss_queue_text(app_rec.s, text, sizeof(text)); /* 1004 bytes + the 101 > 1024 */
    wss_open(app_rec.s);
    spin();
    ck_assert_int_eq(app_rec.gones, 0);
    n = t_read(fd, buf, sizeof(buf));
    ck_assert_msg(n > 13 && strncmp(buf, "HTTP/1.1 101 ", 13) == 0, "no 101");
    frames = memmem(buf, n, "\r\n\r\n", 4);
    ck_assert_ptr_nonnull(frames);
    frames += 4;
    ck_assert_msg(t_nth_frame(frames, n - (size_t)(frames - buf), 0, &op, &p, &len),
                  "the app's text did not follow the 101");
    ck_assert(op == 1 && len == sizeof(text) && memcmp(p, text, len) == 0);
    close(fd);
    spin();
    ck_assert_int_eq(app_rec.gones, 1);
}
END_TEST

/* Opens the held session (the broker's join answer, in the worker). */
static void t_open_now(evutil_socket_t fd, short what, void *arg)
{
    char c;

    (void)what;
    (void)arg;
    ck_assert_int_eq(recv(fd, &c, 1, 0), 1);
    wss_queue_text(app_rec.s, "welcome", 7);
    wss_open(app_rec.s);
}

/* The open comes in the loop turn where the hold's timeout fired but its
 * callback has not run yet (libevent queues the timed-out event as active):
 * the session opens, its read event intact. This exited the worker with
 * "event_queue_remove_active: not on queue 8" during 10,000 announced
 * joins, where joins take longer than the hold. */
START_TEST(test_open_as_hold_times_out)
{
    char buf[1024];
    const char *p, *frames;
    size_t n, len;
    int fd = t_connect(), sv[2], op;
    struct event *answer;

    app_rec.no_open = 1;
    app_rec.echo = 1;
    t_request(fd, "/t/race");
    ck_assert_ptr_nonnull(app_rec.s);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    answer = event_new(base, sv[0], EV_READ, t_open_now, NULL);
    ck_assert_ptr_nonnull(answer);
    event_add(answer, NULL);
    ck_assert_int_eq(write(sv[1], "j", 1), 1); /* not t_send: it runs the loop */
    usleep(1100 * 1000); /* past the hold: its timeout and the answer fire in one turn */
    event_base_loop(base, EVLOOP_ONCE);
    wss_flush_dirty(&srv);
    n = t_read(fd, buf, sizeof(buf));
    ck_assert_msg(n > 13 && strncmp(buf, "HTTP/1.1 101 ", 13) == 0, "no 101");
    frames = memmem(buf, n, "\r\n\r\n", 4);
    ck_assert_ptr_nonnull(frames);
    frames += 4;
    ck_assert(t_nth_frame(frames, n - (size_t)(frames - buf), 0, &op, &p, &len));
    ck_assert(op == 1 && len == 7 && memcmp(p, "welcome", 7) == 0);
    t_frame(fd, 1, 1, "still reading", 13); /* the read event survived */
    n = t_read(fd, buf, sizeof(buf));
    ck_assert(t_nth_frame(buf, n, 0, &op, &p, &len));
    ck_assert(op == 1 && len == 13 && memcmp(p, "still reading", 13) == 0);
    event_free(answer);
    close(sv[0]);
    close(sv[1]);
    close(fd);
    spin();
    ck_assert_int_eq(app_rec.gones, 1);
}
END_TEST

/* A client gone before the open: the session ends once the app opens it. */
START_TEST(test_eof_before_open)
{
    int fd = t_connect();

    app_rec.no_open = 1;
    t_request(fd, "/t/gone");
    close(fd);
    spin();
    ck_assert_int_eq(app_rec.gones, 0);
    ck_assert_ptr_nonnull(app_rec.s);
    wss_open(app_rec.s);
    spin();
    ck_assert_int_eq(app_rec.gones, 1);
    ck_assert_uint_eq(srv.nsessions, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ws_transport");
    TCase *tc = tcase_create("ws_transport");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_routes);
    tcase_add_test(tc, test_upgrade_text_in_and_out);
    tcase_add_test(tc, test_fragments_and_ping);
    tcase_add_test(tc, test_close_by_client);
    tcase_add_test(tc, test_close_by_server_and_binary_refused);
    tcase_add_test(tc, test_broadcast_batched);
    tcase_add_test(tc, test_slow_reader_capped);
    tcase_add_test(tc, test_many_own_frames_in_one_flush);
    tcase_add_test(tc, test_101_held_until_open);
    tcase_add_test(tc, test_101_hold_expires);
    tcase_add_test(tc, test_eof_before_open);
    tcase_add_test(tc, test_held_101_not_counted_as_backlog);
    tcase_add_test(tc, test_open_as_hold_times_out);
    suite_add_tcase(s, tc);
    return check_run(s);
}
