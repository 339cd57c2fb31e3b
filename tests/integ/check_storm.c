/* check_storm.c -- a reconnect storm end to end: 2000 clients connect and
 * join one instance at once, from one non-blocking thread, and each gets
 * its 101 and welcome or an HTTP error, never silence; the users SET then
 * holds exactly the welcomed names, and is empty once they close. Runs its
 * own redis-server (TLS + password). */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define USERS_KEY "chat-users"

#define STORM_CLIENTS 2000
#define STORM_BOUND_MS 30000
#define STORM_KEY "dGhlIHNhbXBsZSBub25jZQ==" /* RFC 6455 1.3, and its answer: */
#define STORM_ACCEPT "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define JOIN(c, port, name) fx_join((c), (port), (name), NULL, __LINE__)

enum storm_state { ST_CONNECTING = 0, ST_HEAD, ST_FRAMES, ST_WELCOMED, ST_REFUSED, ST_FAILED };

struct storm_client {
    int fd;
    enum storm_state st;
    int status;
    size_t len;
    char buf[1024];
    char why[80];
};

static void storm_fail(struct storm_client *c, const char *why)
{
    c->st = ST_FAILED;
    snprintf(c->why, sizeof(c->why), "%s", why);
}

/* Connected (or not): send the upgrade of /chat/s<i>. */
static void storm_send(struct storm_client *c, int i)
{
    char req[512];
    int err = 0, n;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err != 0) {
        storm_fail(c, strerror(err != 0 ? err : errno));
        return;
    }
    n = snprintf(req, sizeof(req),
                 "GET /chat/s%d HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: " STORM_KEY "\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 i);
    if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        storm_fail(c, "could not send the request");
    else
        c->st = ST_HEAD;
}

/* Go as far as the bytes received allow: the head, then frames up to the
 * first text, which must be the welcome. */
static void storm_parse(struct storm_client *c, int i)
{
    if (c->st == ST_HEAD) {
        const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        size_t head;

        if (end == NULL) {
            if (c->len == sizeof(c->buf))
                storm_fail(c, "response head too large");
            return;
        }
        head = (size_t)(end + 4 - c->buf);
        if (sscanf(c->buf, "HTTP/1.1 %d ", &c->status) != 1) {
            storm_fail(c, "no status line");
            return;
        }
        if (c->status != 101) {
            c->st = c->status >= 400 && c->status <= 599 ? ST_REFUSED : ST_FAILED;
            snprintf(c->why, sizeof(c->why), "HTTP %d", c->status);
            return;
        }
        if (memmem(c->buf, head, STORM_ACCEPT, strlen(STORM_ACCEPT)) == NULL) {
            storm_fail(c, "101 without the right Sec-WebSocket-Accept");
            return;
        }
        memmove(c->buf, c->buf + head, c->len - head);
        c->len -= head;
        c->st = ST_FRAMES;
    }
    while (c->st == ST_FRAMES && c->len >= 2) {
        const uint8_t *b = (const uint8_t *)c->buf;
        size_t plen = b[1] & 0x7f, hdr = 2;
        char welcome[32];

        if ((b[1] & 0x80) || plen > 125) {
            storm_fail(c, "masked or long frame before the welcome");
            return;
        }
        if (c->len < hdr + plen)
            return;
        if ((b[0] & 0x0f) == WSC_OP_CLOSE) {
            storm_fail(c, "close frame instead of the welcome");
            return;
        }
        if ((b[0] & 0x0f) == WSC_OP_TEXT) {
            snprintf(welcome, sizeof(welcome), "Welcome s%d!", i);
            if (plen == strlen(welcome) && memcmp(c->buf + hdr, welcome, plen) == 0) {
                c->st = ST_WELCOMED;
            } else {
                char text[48];

                snprintf(text, sizeof(text), "%.*s", (int)plen, c->buf + hdr);
                c->st = ST_FAILED;
                snprintf(c->why, sizeof(c->why), "first text \"%.40s\"", text);
            }
            return;
        }
        memmove(c->buf, c->buf + hdr + plen, c->len - hdr - plen); /* ping, pong */
        c->len -= hdr + plen;
    }
}

/* 2000 clients connect and join at once, non-blocking, from one thread:
 * each gets 101 and its welcome, or an HTTP error status; none hangs past
 * 30 s, none is dropped without an answer. The set then holds exactly the
 * welcomed names, and all of them are gone once the clients close. */
START_TEST(test_reconnect_storm)
{
    static struct storm_client cl[STORM_CLIENTS];
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct epoll_event evs[256];
    struct rlimit rl;
    struct h_redis r;
    struct h_chat c;
    struct wsc late;
    int ep, i, k, n, done = 0, welcomed = 0, refused = 0, failed = 0, first_failed = -1;
    long long t0, launch_ms, ms;
    char cmd[64];

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_msg(rl.rlim_cur >= STORM_CLIENTS + 256, "RLIMIT_NOFILE %lu: too low for %d clients",
                  (unsigned long)rl.rlim_cur, STORM_CLIENTS);
    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    /* joins flood everyone with notices: nobody pings, nobody reads after the
     * welcome (about 60 KB of notices per client fit in the socket buffers) */
    fx_chat_ready(&c, &r, 2, "max-connections-per-ip 0\nping-interval 0\nrate-limit 0\n");

    ep = epoll_create1(EPOLL_CLOEXEC);
    ck_assert_int_ge(ep, 0);
    sa.sin_port = htons((uint16_t)c.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    t0 = h_now_ms();
    for (i = 0; i < STORM_CLIENTS; i++) {
        struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};

        cl[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ck_assert_msg(cl[i].fd >= 0, "socket %d: %s", i, strerror(errno));
        if (connect(cl[i].fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 && errno != EINPROGRESS) {
            storm_fail(&cl[i], strerror(errno));
            done++;
        } else {
            ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, cl[i].fd, &ev), 0);
        }
    }
    launch_ms = h_now_ms() - t0;

    while (done < STORM_CLIENTS && h_now_ms() - t0 < STORM_BOUND_MS) {
        n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 100);
        for (k = 0; k < n; k++) {
            struct storm_client *s = &cl[evs[k].data.u32];
            ssize_t got;

            i = (int)evs[k].data.u32;
            if (s->st == ST_CONNECTING) {
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
                storm_send(s, i);
                if (s->st == ST_HEAD)
                    ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev), 0);
            } else {
                got = recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len, 0);
                if (got > 0) {
                    s->len += (size_t)got;
                    storm_parse(s, i);
                } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                    storm_fail(s, got == 0 ? "closed without an answer" : strerror(errno));
                }
            }
            if (s->st >= ST_WELCOMED) {
                epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
                done++;
            }
        }
    }
    ms = h_now_ms() - t0;
    close(ep);
    for (i = 0; i < STORM_CLIENTS; i++) {
        welcomed += cl[i].st == ST_WELCOMED;
        refused += cl[i].st == ST_REFUSED;
        if (cl[i].st == ST_FAILED && failed++ == 0)
            first_failed = i;
        if (cl[i].st == ST_REFUSED && cl[i].status != 503 && cl[i].status != 429)
            ck_abort_msg("client %d refused with HTTP %d", i, cl[i].status);
    }
    fprintf(stderr,
            "storm: %d clients launched in %lld ms: %d welcomed, %d refused, %d failed, "
            "%d unanswered after %lld ms\n",
            STORM_CLIENTS, launch_ms, welcomed, refused, failed, STORM_CLIENTS - done, ms);
    ck_assert_msg(failed == 0, "%d clients failed; first: s%d: %s", failed, first_failed,
                  first_failed >= 0 ? cl[first_failed].why : "");
    ASSERT_LOG(done == STORM_CLIENTS, c.log);
    ck_assert_int_gt(welcomed, 0);

    /* every welcomed name is in the set, nobody else; all leave on close */
    snprintf(cmd, sizeof(cmd), "SCARD %s", USERS_KEY);
    ck_assert_int_eq(fx_redis_int(&r, cmd), welcomed);
    for (i = 0; i < STORM_CLIENTS; i++)
        close(cl[i].fd);
    ASSERT_LOG(fx_redis_int_wait(&r, cmd, 0, 20000), c.log);
    JOIN(&late, c.port, "late");
    wsc_free(&late);
    h_chat_free(&c);
    h_redis_free(&r);
}
END_TEST

static Suite *storm_suite(void)
{
    Suite *s = suite_create("storm");
    TCase *st = tcase_create("storm");

    /* the test runs its own Redis and instance below the fixture's dir */
    tcase_add_unchecked_fixture(st, fx_tmp_enter, fx_tmp_leave);
    tcase_set_timeout(st, 90);
    tcase_add_test(st, test_reconnect_storm);
    suite_add_tcase(s, st);
    return s;
}

int main(void)
{
    return check_run(storm_suite());
}
