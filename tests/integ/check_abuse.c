/* check_abuse.c -- the security and abuse limits of the README against the
 * real binary and a real redis-server (TLS + password): request heads
 * (size, syntax, framing, slowloris), connection limits per address and per
 * instance, the message rate limit, memory bounds (a reader that does not
 * read, a huge frame header, thousands of half-open handshakes, measured as
 * the workers' VmRSS), allowed-origins, JWT tokens and spoofed texts. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define T_LATENCY_MS 500      /* a well-behaved client's message during a flood */
#define MAX_WORKERS 8
#define SLOW_MSG_BYTES 1000
#define SLOW_MAX_MSGS 20000   /* 20 MB: far past any socket buffer */
#define SLOW_RSS_BOUND_KB (64L << 10)
#define HUGE_RSS_BOUND_KB (4L << 10)
#define HALF_N 2000
#define HALF_TIMEOUT_MS 3000
#define HALF_RSS_BOUND_KB (32L << 10)

#define SECRET "an-auth-secret-of-at-least-32-bytes-0123456789"

static struct h_redis redis;
static struct h_chat plain; /* defaults: 2 workers */

#define JOIN(c, port, name) fx_join((c), (port), (name), NULL, __LINE__)

/* An instance on the fixture's Redis with a channel and users SET of its own
 * (`tag`), ready when every worker sees Redis up. */
static void inst_start(struct h_chat *c, int workers, const char *tag, const char *extra)
{
    char conf[1024];

    snprintf(conf, sizeof(conf), "channel %s-chat\nusers-key %s-users\n%s", tag, tag,
             extra != NULL ? extra : "");
    fx_chat_ready(c, &redis, workers, conf);
}

static void abuse_setup(void)
{
    /* servers go below the fixture's temp dir (TMPDIR), which is removed
     * even when a test that started its own instance fails */
    fx_tmp_enter();
    ck_assert_int_eq(h_redis_start(&redis, 1, "s3cret"), 0);
    inst_start(&plain, 2, "plain", NULL);
}

static void abuse_teardown(void)
{
    h_chat_free(&plain);
    h_redis_free(&redis);
    fx_tmp_leave();
}

/* A blocking TCP connection to 127.0.0.1:port; fails the test if none. */
static int tcp_open(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(fd != -1 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
                  "connect to %d: %s", port, strerror(errno));
    return fd;
}

/* ---- processes and memory --------------------------------------------- */

/* The VmRSS of every worker of an instance, from a baseline on. */
struct rss {
    int n;
    pid_t pid[MAX_WORKERS];
    long base[MAX_WORKERS], peak[MAX_WORKERS];
};

static void rss_begin(struct rss *r, const struct h_chat *c, int workers)
{
    pid_t kids[64];
    char cmd[128];
    int i, n = h_children(c->pid, kids, 64);

    for (i = r->n = 0; i < n && i < 64 && r->n < MAX_WORKERS; i++)
        if (h_cmdline(kids[i], cmd, sizeof(cmd)) > 0 &&
            strncmp(cmd, "redis-chat: worker ", 19) == 0) {
            r->pid[r->n] = kids[i];
            r->base[r->n] = r->peak[r->n] = fx_rss_kb(kids[i]);
            ck_assert_int_gt(r->base[r->n++], 0);
        }
    ck_assert_int_eq(r->n, workers);
}

/* Sample every worker; returns the largest growth so far, in kB. */
static long rss_sample(struct rss *r)
{
    long worst = 0, kb;
    int i;

    for (i = 0; i < r->n; i++) {
        ck_assert_msg((kb = fx_rss_kb(r->pid[i])) > 0, "worker %d is gone", (int)r->pid[i]);
        r->peak[i] = kb > r->peak[i] ? kb : r->peak[i];
        worst = r->peak[i] - r->base[i] > worst ? r->peak[i] - r->base[i] : worst;
    }
    return worst;
}

/* ---- HTTP ---------------------------------------------------------------- */

/* The status of the HTTP answer on fd (a few bytes: one read), or -1. */
static int fd_status(int fd, int timeout_ms)
{
    struct pollfd p = { fd, POLLIN, 0 };
    char buf[512] = "";
    int st = -1;

    if (poll(&p, 1, timeout_ms) == 1 && recv(fd, buf, sizeof(buf) - 1, 0) > 0)
        sscanf(buf, "HTTP/1.1 %d ", &st);
    return st;
}

/* Send request and expect `want`, then the server's EOF. */
static void http_expect(int port, const char *request, int want, const char *what)
{
    struct wsc c;
    int st = wsc_connect_raw(&c, port, request, T_MSG_MS);

    ck_assert_msg(st == want, "%s: HTTP %d, want %d", what, st, want);
    ck_assert_msg(wsc_wait_eof(&c, T_MSG_MS), "%s: connection kept open after %d", what, st);
    wsc_free(&c);
}

START_TEST(test_request_heads)
{
    static char big[9300], many[8000];
    struct wsc a;
    size_t n;
    int i, fd;

    n = (size_t)snprintf(big, sizeof(big), "GET /chat/x HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    memset(big + n, 'p', 9000);
    memcpy(big + n + 9000, "\r\n\r\n", 5);
    http_expect(plain.port, big, 431, "one 9 KB header");
    /* 100 short headers: too many */
    strcpy(many, "GET /chat/x HTTP/1.1\r\nHost: x\r\n");
    for (i = 0; i < 100; i++)
        strcat(many, "X-Header: v\r\n");
    strcat(many, "\r\n");
    http_expect(plain.port, many, 431, "100 headers");
    /* 8 KiB of an unfinished head, in 1 KiB pieces: the partial-head path */
    fd = tcp_open(plain.port);
    for (n = 0; n + 1024 <= strlen(big) && send(fd, big + n, 1024, MSG_NOSIGNAL) > 0; n += 1024)
        h_sleep_ms(20);
    ck_assert_int_eq(fd_status(fd, T_MSG_MS), 431);
    close(fd);
    http_expect(plain.port, "garbage\r\n\r\n", 400, "garbage request line");
    http_expect(plain.port, "GET /chat/x\r\nHost: x\r\n\r\n", 400, "request line without version");
    http_expect(plain.port, "GET /chat/x HTTP/1.1\r\nHost : x\r\n\r\n", 400, "space before ':'");
    http_expect(plain.port, "GET /chat/x HTTP/1.1\r\nHost x\r\n\r\n", 400, "header without ':'");
    /* the instance is unharmed */
    JOIN(&a, plain.port, "heads");
    wsc_free(&a);
}
END_TEST

/* RFC 9112 / RFC 6455 4.2.1: an upgrade with a second Host or key, or with a
 * body (any Transfer-Encoding, a Content-Length but 0), is refused with 400
 * and the reason, not upgraded: the body would be read as WebSocket frames.
 * Each request sends the body it announces, in the same write as the head. */
START_TEST(test_request_framing)
{
    static const struct {
        const char *extra, *body, *reason;
    } cases[] = {
        { "Host: other.example\r\n", "", "duplicate Host header" },
        { "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n", "",
          "duplicate Sec-WebSocket-Key header" },
        { "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n",
          "Transfer-Encoding not allowed on an upgrade" },
        { "Content-Length: 5\r\n", "hello", "Content-Length must be 0 on an upgrade" },
    };
    char req[512], want[128], name[16];
    struct wsc c;
    size_t i;
    int st;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(req, sizeof(req),
                 "GET /chat/framing%zu HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n%s\r\n%s",
                 i, cases[i].extra, cases[i].body);
        snprintf(want, sizeof(want), "%s\n", cases[i].reason);
        st = wsc_connect_raw(&c, plain.port, req, T_MSG_MS);
        ck_assert_msg(st == 400, "%s: HTTP %d, want 400", cases[i].reason, st);
        ck_assert_msg(strcmp(c.body, want) == 0, "%s: body \"%s\"", cases[i].reason, c.body);
        ck_assert_msg(wsc_wait_eof(&c, T_MSG_MS), "%s: connection kept open", cases[i].reason);
        wsc_free(&c);
    }
    /* refused before the join: the names are free; Content-Length: 0 is fine */
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(name, sizeof(name), "framing%zu", i);
        fx_join(&c, plain.port, name, "Content-Length: 0", __LINE__);
        wsc_free(&c);
    }
}
END_TEST

/* One header byte every 200 ms: closed at handshake-timeout (1 s) from the
 * connection's start, however steadily bytes trickle in. */
START_TEST(test_slowloris)
{
    static const char head[] = "GET /chat/x HTTP/1.1\r\n", pad[] = "X-Slow: aaaaaaaaaaaaaaaa";
    struct h_chat hs;
    long long t0, dt = -1;
    int fd, i = 0;

    inst_start(&hs, 2, "slow", "handshake-timeout 1s\n");
    fd = tcp_open(hs.port);
    t0 = h_now_ms();
    ck_assert_int_eq(send(fd, head, sizeof(head) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(head) - 1);
    while (dt < 0 && h_now_ms() - t0 < 5000) {
        struct pollfd p = { fd, POLLIN, 0 };
        char b[64];

        /* EOF, a reset or a failed send: the server hung up */
        if ((poll(&p, 1, 200) > 0 && recv(fd, b, sizeof(b), 0) <= 0) ||
            send(fd, &pad[i++ % (sizeof(pad) - 1)], 1, MSG_NOSIGNAL) != 1)
            dt = h_now_ms() - t0;
    }
    close(fd);
    ck_assert_msg(dt >= 0, "a head trickling in at 5 bytes/s still open after %lld ms",
                  h_now_ms() - t0);
    ck_assert_msg(dt >= 900 && dt <= 1500, "slowloris closed after %lld ms, want ~1000", dt);
    ASSERT_LOG(h_file_contains(hs.log, "handshake timeout"), hs.log);
    h_chat_free(&hs);
}
END_TEST

/* Connect as name, retrying while the limit still counts closed sockets. */
static int join_retry(struct wsc *c, int port, const char *name)
{
    long long end = h_now_ms() + T_MSG_MS;
    char path[64];
    int st;

    snprintf(path, sizeof(path), "/chat/%s", name);
    while ((st = wsc_connect(c, port, path, NULL, T_MSG_MS)) != 101 && h_now_ms() < end) {
        wsc_free(c);
        h_sleep_ms(50);
    }
    return st;
}

START_TEST(test_connections_per_ip)
{
    struct h_chat lim;
    struct wsc c[5], extra;
    char name[32];
    int i, j, k, w[5];

    inst_start(&lim, 2, "perip", "max-connections-per-ip 5\n");
    /* five clients, at least one on each worker: replace the fifth until so */
    for (i = k = 0; i < 5 && k < 30; k++) {
        snprintf(name, sizeof(name), "ip%d", k);
        ck_assert_int_eq(join_retry(&c[i], lim.port, name), 101);
        w[i] = fx_user_slot(lim.log, name);
        ck_assert_msg(w[i] >= 0, "%s: no join line in %s", name, lim.log);
        for (j = 0; j < i && w[j] == w[i]; j++)
            ;
        if (i < 4 || j < i)
            i++;
        else
            wsc_free(&c[i]);
    }
    ck_assert_msg(i == 5, "the five clients kept landing on one worker");
    /* the sixth, on whichever worker, is refused: a chat or any request */
    ck_assert_int_eq(wsc_connect(&extra, lim.port, "/chat/ip5", NULL, T_MSG_MS), 429);
    wsc_free(&extra);
    ck_assert_int_eq(wsc_connect_raw(&extra, lim.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                     T_MSG_MS), 429);
    wsc_free(&extra);
    for (i = 0; i < 5; i++)
        wsc_free(&c[i]);
    /* all gone: five new ones fit again, and only five */
    for (i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "again%d", i);
        ck_assert_int_eq(join_retry(&c[i], lim.port, name), 101);
    }
    ck_assert_int_eq(wsc_connect(&extra, lim.port, "/chat/again5", NULL, T_MSG_MS), 429);
    wsc_free(&extra);
    for (i = 0; i < 5; i++)
        wsc_free(&c[i]);
    h_chat_free(&lim);
}
END_TEST

START_TEST(test_max_connections)
{
    struct h_chat lim;
    struct wsc c[4], extra;
    char path[32];
    int fds[4], i;

    inst_start(&lim, 2, "maxconn", "max-connections 4\n");
    for (i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "/chat/mc%d", i);
        ck_assert_int_eq(wsc_connect(&c[i], lim.port, path, NULL, T_MSG_MS), 101);
    }
    ck_assert_int_eq(wsc_connect(&extra, lim.port, "/chat/mc4", NULL, T_MSG_MS), 503);
    wsc_free(&extra);
    for (i = 0; i < 4; i++) {
        wsc_free(&c[i]);
        snprintf(path, sizeof(path), "user=mc%d: closed:", i);
        ck_assert(h_wait_count(lim.log, path, 1, T_MSG_MS));
    }
    /* handshakes count too: four silent sockets, all admitted, fill it */
    for (i = 0; i < 4; i++)
        fds[i] = tcp_open(lim.port);
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(fd_status(fds[i], 100), -1);
    ck_assert_int_eq(wsc_connect(&extra, lim.port, "/chat/mc5", NULL, T_MSG_MS), 503);
    wsc_free(&extra);
    for (i = 0; i < 4; i++)
        close(fds[i]);
    ck_assert_int_eq(join_retry(&extra, lim.port, "mc6"), 101);
    wsc_free(&extra);
    h_chat_free(&lim);
}
END_TEST

/* ---- rate limit -------------------------------------------------------------- */

/* calm reads until talker's `tick`, counting flood messages on the way;
 * returns the time it took from `sent`. */
static long long calm_wait(struct wsc *calm, const char *tick, long long sent, int *spam)
{
    char text[256];

    for (;;) {
        int r = wsc_recv_text(calm, text, sizeof(text), T_MSG_MS);
        ck_assert_msg(r > 0, "calm: \"%s\" did not come", tick);
        if (strcmp(text, tick) == 0)
            return h_now_ms() - sent;
        ck_assert_msg(strncmp(text, "flood: spam ", 12) == 0, "calm: unexpected \"%s\"", text);
        (*spam)++;
    }
}

START_TEST(test_rate_limit)
{
    struct h_chat rl;
    struct wsc calm, talker, flood;
    char text[256];
    int i, k, spam = 0, warned = 0;
    long long t;

    inst_start(&rl, 2, "rate", "rate-limit 5\nrate-limit-burst 5\n");
    JOIN(&calm, rl.port, "calm");
    JOIN(&talker, rl.port, "talker");
    JOIN(&flood, rl.port, "flood");
    EXPECT(&calm, "talker: has joined the chat!");
    EXPECT(&calm, "flood: has joined the chat!");
    EXPECT(&talker, "flood: has joined the chat!");

    /* a tick before, then 50 messages at once, and the others chat on at
     * their pace with no delay */
    for (i = 0; i <= 5; i++) {
        for (k = 0; i == 1 && k < 50; k++) {
            snprintf(text, sizeof(text), "spam %d", k);
            SEND(&flood, text);
        }
        snprintf(text, sizeof(text), "tick %d", i);
        SEND(&talker, text);
        snprintf(text, sizeof(text), "talker: tick %d", i);
        t = calm_wait(&calm, text, h_now_ms(), &spam);
        ck_assert_msg(t < T_LATENCY_MS, "tick %d took %lld ms", i, t);
        h_sleep_ms(250);
    }
    QUIET(&calm);
    /* a full bucket let the first five through, not more */
    ck_assert_msg(spam >= 5 && spam <= 6, "%d flood messages got through", spam);
    /* the flooder: one warning, then 1008 */
    while (wsc_recv_text(&flood, text, sizeof(text), T_MSG_MS) > 0)
        warned += strcmp(text, "message not delivered: rate limit exceeded, slow down") == 0;
    ck_assert_int_eq(warned, 1);
    ck_assert_msg(flood.close_received, "no close for the flooder");
    ck_assert_int_eq(flood.close_code, 1008);
    ck_assert_str_eq(flood.close_reason, "rate limit exceeded");
    ck_assert(wsc_wait_eof(&flood, T_MSG_MS));
    EXPECT(&calm, "flood: has left the chat!");
    ASSERT_LOG(h_file_contains(rl.log, "user=flood: over rate-limit, warned"), rl.log);
    wsc_free(&flood);
    wsc_free(&talker);
    wsc_free(&calm);
    h_chat_free(&rl);
}
END_TEST

/* ---- memory bounds --------------------------------------------------------------- */

/* A client that never reads is dropped at max-pending-bytes while a sender
 * goes on; its worker's memory stays bounded meanwhile. */
START_TEST(test_slow_reader_memory)
{
    static char msg[SLOW_MSG_BYTES + 1], text[SLOW_MSG_BYTES + 64];
    struct h_chat m;
    struct wsc fast, sink, snd;
    struct rss r;
    int sent = 0, got = 0, dropped_at = -1, i;
    long worst = 0;

    inst_start(&m, 2, "mem",
               "max-pending-bytes 256k\nrate-limit 100000\nrate-limit-burst 100000\n");
    JOIN(&fast, m.port, "fast");
    /* sink never reads a byte after its 101, not even its welcome */
    ck_assert_int_eq(wsc_connect(&sink, m.port, "/chat/sink", NULL, T_MSG_MS), 101);
    EXPECT(&fast, "sink: has joined the chat!");
    JOIN(&snd, m.port, "snd");
    EXPECT(&fast, "snd: has joined the chat!");
    rss_begin(&r, &m, 2);
    memset(msg, 'z', SLOW_MSG_BYTES);
    while (sent < SLOW_MAX_MSGS && (dropped_at < 0 || sent < dropped_at + 200)) {
        for (i = 0; i < 20; i++, sent++)
            SEND(&snd, msg);
        while (got < sent) { /* fast keeps up, so only sink falls behind */
            ck_assert_msg(wsc_recv_text(&fast, text, sizeof(text), T_MSG_MS) > 0,
                          "fast: message %d of %d did not come", got, sent);
            got += strncmp(text, "snd: zzz", 8) == 0;
        }
        worst = rss_sample(&r);
        ck_assert_msg(worst < SLOW_RSS_BOUND_KB, "a worker grew by %ld kB after %d messages",
                      worst, sent);
        if (dropped_at < 0 && h_file_contains(m.log, "user=sink: slow reader"))
            dropped_at = sent;
    }
    ASSERT_LOG(dropped_at >= 0, m.log);
    /* what the kernel still held for sink, then EOF: the server hung up */
    ASSERT_LOG(wsc_wait_eof(&sink, 5000), m.log);
    wsc_free(&sink);
    wsc_free(&snd);
    wsc_free(&fast);
    h_chat_free(&m);
}
END_TEST

/* Frames too big for max-message-size (4k here) close with 1009 without
 * buffering anything. wslay looks at a frame's length once the first payload
 * byte is there, so the header comes with one byte of payload; a header
 * alone holds no memory either (the RSS check) and ends at the next ping. */
START_TEST(test_huge_frame_header)
{
    /* FIN text, masked, a 64-bit length of 2 GiB or 2^63 - 1, mask key; no payload */
    static const char heads[2][15] = { "\x81\xff\0\0\0\0\x80\0\0\0\x01\x02\x03\x04",
                                       "\x81\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x01\x02\x03\x04" };
    static char part[3001];
    struct wsc c;
    struct rss r;
    long long t0;
    int got, i;

    rss_begin(&r, &plain, 2);
    for (i = 0; i < 2; i++) {
        JOIN(&c, plain.port, i == 0 ? "huge0" : "huge1");
        t0 = h_now_ms();
        ck_assert_int_eq(wsc_send_raw(&c, heads[i], 14), 0);
        ck_assert_int_eq(wsc_send_raw(&c, "x", 1), 0);
        got = wsc_wait_close(&c, 1000);
        ck_assert_msg(got == 1009, "%s frame: got %d within 1 s, want close 1009",
                      i == 0 ? "2 GiB" : "2^63 - 1 bytes", got);
        ck_assert_int_lt(h_now_ms() - t0, 1000);
        wsc_free(&c);
    }
    /* the limit is on the message: two 3000-byte fragments exceed it */
    memset(part, 'f', 3000);
    JOIN(&c, plain.port, "huge3");
    ck_assert_int_eq(wsc_send_frame(&c, 0, 0, WSC_OP_TEXT, part, 3000, 1), 0);
    ck_assert_int_eq(wsc_send_frame(&c, 1, 0, WSC_OP_CONT, part, 3000, 1), 0);
    ck_assert_int_eq(wsc_wait_close(&c, T_MSG_MS), 1009);
    wsc_free(&c);
    ck_assert_msg(rss_sample(&r) < HUGE_RSS_BOUND_KB, "a worker grew by %ld kB", rss_sample(&r));
}
END_TEST

/* Thousands of half-sent request heads: bounded memory, the chat goes on,
 * and every one is closed at handshake-timeout. */
START_TEST(test_half_handshakes)
{
    static const char half[] = "GET /chat/x HTTP/1.1\r\n";
    static int fds[HALF_N];
    struct h_chat h;
    struct rlimit lim;
    struct wsc a, b;
    struct rss r;
    long long first, last;
    char junk[8];
    int i;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &lim), 0);
    lim.rlim_cur = lim.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
    ck_assert_msg(lim.rlim_cur >= HALF_N + 200, "RLIMIT_NOFILE hard limit %lu too low",
                  (unsigned long)lim.rlim_max);
    inst_start(&h, 2, "half",
               "max-connections-per-ip 0\nmax-connections 100000\nhandshake-timeout 3s\n");
    rss_begin(&r, &h, 2);
    first = h_now_ms();
    for (i = 0; i < HALF_N; i++) {
        fds[i] = tcp_open(h.port);
        ck_assert_int_eq(send(fds[i], half, sizeof(half) - 1, MSG_NOSIGNAL),
                         (ssize_t)sizeof(half) - 1);
    }
    last = h_now_ms();
    /* meanwhile, two users join and chat */
    JOIN(&a, h.port, "half_a");
    JOIN(&b, h.port, "half_b");
    EXPECT(&a, "half_b: has joined the chat!");
    SEND(&b, "through the crowd");
    EXPECT(&a, "half_b: through the crowd");
    ck_assert_msg(rss_sample(&r) < HALF_RSS_BOUND_KB, "%d half handshakes: a worker grew by %ld kB",
                  HALF_N, rss_sample(&r));

    /* none is closed before handshake-timeout, every one soon after it */
    ck_assert_msg(h_now_ms() < first + HALF_TIMEOUT_MS - 300, "the set-up took too long");
    h_sleep_ms((int)(first + HALF_TIMEOUT_MS - 300 - h_now_ms()));
    for (i = 0; i < HALF_N; i++)
        ck_assert_msg(recv(fds[i], junk, 1, MSG_DONTWAIT) == -1 && errno == EAGAIN,
                      "half handshake %d closed before handshake-timeout", i);
    h_sleep_ms((int)(last + HALF_TIMEOUT_MS + 1500 - h_now_ms()));
    for (i = 0; i < HALF_N; i++) {
        ssize_t n = recv(fds[i], junk, 1, MSG_DONTWAIT);
        ck_assert_msg(n == 0 || (n == -1 && errno != EAGAIN),
                      "half handshake %d still open 1.5 s after handshake-timeout", i);
        close(fds[i]);
    }
    ck_assert_int_ge(h_count_in_file(h.log, "handshake timeout"), HALF_N);
    /* the users outlive them */
    SEND(&a, "still here");
    if (!wsc_expect_text(&b, "half_a: still here", T_MSG_MS)) {
        char g0[] = "grep", g1[] = "user=half_", out[2048];
        char *grep[] = { g0, g1, h.log, NULL };
        h_run(out, sizeof(out), 3000, grep);
        ck_abort_msg("a chat user was dropped after the half handshakes timed out:\n%s", out);
    }
    wsc_free(&a);
    wsc_free(&b);
    h_chat_free(&h);
}
END_TEST

/* ---- access ------------------------------------------------------------------------ */

START_TEST(test_allowed_origins)
{
    static const char *const bad[] = {
        "https://evil.example", "https://good.example.evil.example", "http://good.example",
        "https://good.exampl", "null",
    };
    struct h_chat o;
    struct wsc c;
    char hdr[128];
    size_t i;

    inst_start(&o, 2, "origin", "allowed-origins \"https://good.example\"\n");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(hdr, sizeof(hdr), "Origin: %s", bad[i]);
        ck_assert_msg(wsc_connect(&c, o.port, "/chat/o1", hdr, T_MSG_MS) == 403,
                      "%s: HTTP %d, want 403", bad[i], c.status);
        wsc_free(&c);
    }
    fx_join(&c, o.port, "o1", "Origin: https://good.example", __LINE__);
    wsc_free(&c);
    JOIN(&c, o.port, "o2"); /* no Origin: not a browser */
    wsc_free(&c);
    h_chat_free(&o);
}
END_TEST

static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i, k = 0;

    for (i = 0; i < n; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16 | (i + 1 < n ? in[i + 1] << 8 : 0) |
                          (i + 2 < n ? in[i + 2] : 0);
        out[k++] = tab[v >> 18];
        out[k++] = tab[(v >> 12) & 63];
        if (i + 1 < n)
            out[k++] = tab[(v >> 6) & 63];
        if (i + 2 < n)
            out[k++] = tab[v & 63];
    }
    out[k] = '\0';
    return k;
}

/* "/chat/user?token=<HS256 JWT for sub, expiring at exp, signed with secret>" */
static const char *tok_path(const char *user, const char *sub, const char *secret, long long exp)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    static char path[600];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char claims[256], *jwt;
    size_t n;

    snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":%lld}", sub, exp);
    jwt = path + snprintf(path, sizeof(path), "/chat/%s?token=", user);
    n = b64url((const unsigned char *)header, strlen(header), jwt);
    jwt[n++] = '.';
    n += b64url((const unsigned char *)claims, strlen(claims), jwt + n);
    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), secret, (int)strlen(secret),
                               (const unsigned char *)jwt, n, mac, &maclen));
    jwt[n++] = '.';
    b64url(mac, maclen, jwt + n);
    return path;
}

/* Upgraded, then closed with 4401 and `why`, without a welcome. */
static void token_refused(int port, const char *path, const char *why)
{
    char text[256];
    struct wsc c;
    int r;

    ck_assert_int_eq(wsc_connect(&c, port, path, NULL, T_MSG_MS), 101);
    r = wsc_recv_text(&c, text, sizeof(text), T_MSG_MS);
    ck_assert_msg(r == -1 && c.close_received, "%s: got %d \"%s\" instead of a close", path, r,
                  text);
    ck_assert_int_eq(c.close_code, 4401);
    ck_assert_str_eq(c.close_reason, why);
    ck_assert(wsc_wait_eof(&c, T_MSG_MS));
    wsc_free(&c);
}

START_TEST(test_token_auth)
{
    struct h_chat au;
    struct wsc c;
    char req[1200], want[700];
    const char *tok;
    long long now = (long long)time(NULL);

    inst_start(&au, 2, "auth", "auth-secret \"" SECRET "\"\n");
    ck_assert_int_eq(wsc_connect(&c, au.port, tok_path("tk_q", "tk_q", SECRET, now + 3600), NULL,
                                 T_MSG_MS), 101);
    EXPECT(&c, "Welcome tk_q!");
    wsc_free(&c);
    /* from a browser: the token as the subprotocol, echoed back */
    tok = strchr(tok_path("tk_p", "tk_p", SECRET, now + 3600), '=') + 1;
    snprintf(req, sizeof(req),
             "GET /chat/tk_p HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n", tok);
    ck_assert_int_eq(wsc_connect_raw(&c, au.port, req, T_MSG_MS), 101);
    snprintf(want, sizeof(want), "\r\nSec-WebSocket-Protocol: %s\r\n", tok);
    ck_assert_msg(strstr(c.head, want) != NULL, "protocol not echoed:\n%s", c.head);
    EXPECT(&c, "Welcome tk_p!");
    wsc_free(&c);

    token_refused(au.port, "/chat/tk_x", "token required");
    token_refused(au.port, tok_path("tk_x", "tk_x", SECRET, now - 3600), "token expired");
    token_refused(au.port, tok_path("tk_x", "tk_x", SECRET "-not", now + 3600),
                  "token signature invalid");
    token_refused(au.port, tok_path("tk_x", "tk_q", SECRET, now + 3600),
                  "token is for another user");
    /* none of the refusals took the name */
    ck_assert_int_eq(wsc_connect(&c, au.port, tok_path("tk_x", "tk_x", SECRET, now + 3600), NULL,
                                 T_MSG_MS), 101);
    EXPECT(&c, "Welcome tk_x!");
    wsc_free(&c);
    h_chat_free(&au);

    /* without auth-secret the chat stays open: no token needed */
    JOIN(&c, plain.port, "tk_open");
    wsc_free(&c);
}
END_TEST

/* ---- spoofing ------------------------------------------------------------------------ */

START_TEST(test_spoofing)
{
    static const char *const bad[] = {
        "hi\nalice: send me your password", "hi\r", "cr\rlf\n", "\xe2\x80\xae" "txt.exe",
        "line\xe2\x80\xa8separator", "esc \x1b[2J", "nel \xc2\x85", "del \x7f",
        "isolate \xe2\x81\xa6x",
    };
    static const char refusal[] =
        "message not delivered: line breaks and control characters are not allowed";
    struct wsc alice, bob, carol;
    size_t i;

    JOIN(&alice, plain.port, "alice");
    JOIN(&bob, plain.port, "bob");
    JOIN(&carol, plain.port, "carol");
    EXPECT(&alice, "bob: has joined the chat!");
    EXPECT(&alice, "carol: has joined the chat!");
    EXPECT(&bob, "carol: has joined the chat!");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        SEND(&bob, bad[i]);
        ck_assert_msg(wsc_expect_text(&bob, refusal, T_MSG_MS), "\"%s\" not refused", bad[i]);
    }
    ck_assert_int_eq(wsc_send_frame(&bob, 1, 0, WSC_OP_TEXT, "nul\0byte", 8, 1), 0);
    EXPECT(&bob, refusal);
    /* nothing reached the others; the sender's name is the server's: a fake
     * prefix stays part of the text */
    SEND(&bob, "alice: hi");
    EXPECT(&alice, "bob: alice: hi");
    EXPECT(&carol, "bob: alice: hi");
    QUIET(&bob);
    wsc_free(&alice);
    wsc_free(&bob);
    wsc_free(&carol);
}
END_TEST

/* CPU seconds (user + system) a process has used so far. */
static double cpu_s(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
    fclose(f);
    p = strrchr(buf, ')'); /* the name may hold spaces */
    ck_assert(p != NULL && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                                  &ut, &st) == 2);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

#define FD_LIMIT 48     /* the worker's RLIMIT_NOFILE in this test */
#define FD_CLIENTS 120  /* connections thrown at it: far past the limit */

/* Out of descriptors: the master warns that max-connections cannot fit, the
 * worker pauses accepting instead of spinning on EMFILE, and once clients
 * leave it serves again. */
START_TEST(test_out_of_descriptors)
{
    struct h_chat tight = { 0 };
    struct rlimit lim = { FD_LIMIT, FD_LIMIT };
    int fds[FD_CLIENTS], i;
    pid_t worker;
    double c0, used;
    struct wsc ok;

    inst_start(&tight, 1, "tight", "max-connections 10000000\n");
    ASSERT_LOG(h_file_contains(tight.log, "max-connections 10000000 cannot fit"), tight.log);
    worker = h_child_titled(tight.pid, "redis-chat: worker 0");
    ck_assert_msg(worker > 0, "no worker");
    /* a running worker with few descriptors left (it holds about ten) */
    ck_assert_msg(prlimit(worker, RLIMIT_NOFILE, &lim, NULL) == 0, "prlimit: %s", strerror(errno));

    for (i = 0; i < FD_CLIENTS; i++)
        fds[i] = tcp_open(tight.port); /* the kernel completes them: backlog */
    ck_assert_msg(h_wait_log(tight.log, "accept: pausing", 3000), "no EMFILE pause logged");
    c0 = cpu_s(worker);
    h_sleep_ms(1000);
    used = cpu_s(worker) - c0;
    ck_assert_msg(used < 0.2, "worker used %.2f s of CPU in 1 s at EMFILE: spinning", used);
    ck_assert(h_alive(worker));

    for (i = 0; i < FD_CLIENTS; i++)
        close(fds[i]);
    /* the accepted ones see EOF, the queued ones are accepted and see EOF */
    JOIN(&ok, tight.port, "after-emfile");
    wsc_free(&ok);
    ck_assert_int_eq(h_chat_stop(&tight), 0);
    h_chat_free(&tight);
}
END_TEST

static Suite *abuse_suite(void)
{
    Suite *s = suite_create("abuse");
    TCase *tc = tcase_create("abuse");

    tcase_add_unchecked_fixture(tc, abuse_setup, abuse_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_request_heads);
    tcase_add_test(tc, test_request_framing);
    tcase_add_test(tc, test_slowloris);
    tcase_add_test(tc, test_connections_per_ip);
    tcase_add_test(tc, test_max_connections);
    tcase_add_test(tc, test_rate_limit);
    tcase_add_test(tc, test_slow_reader_memory);
    tcase_add_test(tc, test_huge_frame_header);
    tcase_add_test(tc, test_half_handshakes);
    tcase_add_test(tc, test_allowed_origins);
    tcase_add_test(tc, test_token_auth);
    tcase_add_test(tc, test_spoofing);
    tcase_add_test(tc, test_out_of_descriptors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(abuse_suite());
}
