/* refcast.c -- the reference point of the benchmark: a trivial broadcaster.
 *
 * One process, epoll, no Redis, no limits: what the table calls "a
 * trivial one-process C broadcaster". It speaks just enough of the chat for
 * bench/loadgen: GET /chat/NAME upgrades and gets "Welcome NAME!", each text
 * from NAME goes to every other connection as "NAME: text", encoded once and
 * written with one write() per recipient as it arrives (no coalescing, no
 * batching). Anything else that is not an upgrade gets "200 OK" (so run.sh's
 * /healthz probe works). Ping gets pong, close gets close.
 *
 * Per-delivery CPU figures move a lot with the host (loopback TCP is most of
 * the cost); running this on the same host as redis-chat gives a ratio that
 * does not.
 *
 *   refcast PORT        (listens on 127.0.0.1; exits on SIGTERM/SIGINT)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_upgrade.h"

#define NAME_MAX_LEN 64
#define IN_MAX 16384 /* a client frame larger than this closes the connection */

struct conn {
    int fd;
    int upgraded;
    int dead; /* closed during this batch of events, freed after it */
    char name[NAME_MAX_LEN + 1];
    size_t namelen;
    uint8_t in[IN_MAX];
    size_t inlen;
    uint8_t *out; /* what a write could not take yet */
    size_t outlen, outcap;
    struct conn *prev, *next; /* upgraded connections */
};

static int ep;
static struct conn *all, *graveyard; /* graveyard: linked through next */

/* Close now, free once the current batch of events is done (a later event
 * of the batch may still name c). */
static void conn_close(struct conn *c)
{
    if (c->dead)
        return;
    if (c->upgraded) {
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            all = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
    }
    close(c->fd);
    c->dead = 1;
    c->next = graveyard;
    graveyard = c;
}

static void graveyard_empty(void)
{
    while (graveyard != NULL) {
        struct conn *c = graveyard;

        graveyard = c->next;
        free(c->out);
        free(c);
    }
}

/* Write p[0..n) now, or keep what the socket did not take and wait for
 * EPOLLOUT. Returns -1 when the connection is gone. */
static int conn_send(struct conn *c, const void *p, size_t n)
{
    ssize_t w = 0;

    if (c->outlen == 0) {
        w = write(c->fd, p, n);
        if (w < 0 && errno != EAGAIN)
            return -1;
        if (w < 0)
            w = 0;
    }
    if ((size_t)w < n) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};

        if (c->outlen + n - (size_t)w > c->outcap) {
            size_t cap = (c->outlen + n - (size_t)w) * 2;
            uint8_t *nb = realloc(c->out, cap);

            if (nb == NULL)
                return -1;
            c->out = nb;
            c->outcap = cap;
        }
        memcpy(c->out + c->outlen, (const uint8_t *)p + w, n - (size_t)w);
        c->outlen += n - (size_t)w;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return 0;
}

static size_t frame_head(uint8_t *h, int opcode, size_t len)
{
    h[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        h[1] = (uint8_t)len;
        return 2;
    }
    if (len < 65536) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

static int send_frame(struct conn *c, int opcode, const void *p, size_t len)
{
    uint8_t buf[10 + 256];
    size_t h = frame_head(buf, opcode, len);

    if (len > sizeof(buf) - h)
        return -1;
    memcpy(buf + h, p, len);
    return conn_send(c, buf, h + len);
}

/* "NAME: text" to every upgraded connection but the sender: encoded once */
static void broadcast(struct conn *from, const uint8_t *text, size_t len)
{
    static uint8_t *frame;
    static size_t cap;
    size_t body = from->namelen + 2 + len, need = 10 + body, h;
    struct conn *c, *next;

    if (need > cap) {
        uint8_t *nb = realloc(frame, need);
        if (nb == NULL)
            return;
        frame = nb;
        cap = need;
    }
    h = frame_head(frame, 1, body);
    memcpy(frame + h, from->name, from->namelen);
    memcpy(frame + h + from->namelen, ": ", 2);
    memcpy(frame + h + from->namelen + 2, text, len);
    for (c = all; c != NULL; c = next) {
        next = c->next;
        if (c != from && conn_send(c, frame, h + body) == -1)
            conn_close(c);
    }
}

/* A parsed request head in c->in: GET /chat/NAME with a key upgrades (101,
 * then the welcome); anything else gets 200 and is closed (-1). The head is
 * parsed, the key checked and the answer made by the server's own
 * worker/http_upgrade.c. */
static int upgrade(struct conn *c, const struct upg_request *req)
{
    char resp[256], accept[UPG_ACCEPT_LEN + 1], welcome[NAME_MAX_LEN + 16];
    const struct upg_str *key = upg_header_get(req, "Sec-WebSocket-Key");
    const struct upg_str *t = &req->target;
    size_t n;

    if (t->len <= 6 || t->len - 6 > NAME_MAX_LEN || memcmp(t->p, "/chat/", 6) != 0 ||
        key == NULL || !upg_key_valid(key)) {
        n = upg_response(resp, sizeof(resp), 200, NULL, "ok\n");
        conn_send(c, resp, n);
        return -1;
    }
    c->namelen = t->len - 6;
    memcpy(c->name, t->p + 6, c->namelen);
    upg_accept_key(key->p, key->len, accept);
    n = upg_response_101(resp, sizeof(resp), accept);
    if (conn_send(c, resp, n) == -1)
        return -1;
    c->upgraded = 1;
    c->next = all;
    if (all != NULL)
        all->prev = c;
    all = c;
    n = (size_t)snprintf(welcome, sizeof(welcome), "Welcome %.*s!", (int)c->namelen, c->name);
    return send_frame(c, 1, welcome, n);
}

/* Consume whole client frames from c->in. Returns -1 to close. */
static int frames(struct conn *c)
{
    size_t off = 0;

    while (c->inlen - off >= 2) {
        uint8_t *p = c->in + off, *mask, *data;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;

        if (!(p[1] & 0x80))
            return -1; /* clients mask */
        if (len == 126) {
            if (c->inlen - off < 4)
                break;
            len = (uint64_t)p[2] << 8 | p[3];
            h = 4;
        } else if (len == 127) {
            return -1; /* nothing the benchmark sends */
        }
        if (c->inlen - off < h + 4 + len)
            break;
        mask = p + h;
        data = mask + 4;
        for (uint64_t i = 0; i < len; i++)
            data[i] ^= mask[i & 3];
        switch (p[0] & 0x0f) {
        case 1:
            broadcast(c, data, (size_t)len);
            break;
        case 8:
            send_frame(c, 8, data, len > 125 ? 0 : (size_t)len);
            return -1;
        case 9:
            if (send_frame(c, 10, data, (size_t)len) == -1)
                return -1;
            break;
        default:
            break;
        }
        off += h + 4 + (size_t)len;
    }
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
    return 0;
}

static int on_readable(struct conn *c)
{
    for (;;) {
        ssize_t r = read(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen);

        if (r == 0)
            return -1;
        if (r < 0)
            return errno == EAGAIN ? 0 : -1;
        c->inlen += (size_t)r;
        if (!c->upgraded) {
            struct upg_request req;
            int pr = upg_parse((const char *)c->in, c->inlen, &req);

            if (pr == UPG_PARSE_AGAIN)
                continue;
            if (pr != UPG_PARSE_OK || upgrade(c, &req) == -1)
                return -1;
            memmove(c->in, c->in + req.head_len, c->inlen - req.head_len);
            c->inlen -= req.head_len;
        }
        if (frames(c) == -1 || c->inlen == sizeof(c->in) - 1)
            return -1;
    }
}

static int on_writable(struct conn *c)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    ssize_t w = write(c->fd, c->out, c->outlen);

    if (w < 0)
        return errno == EAGAIN ? 0 : -1;
    memmove(c->out, c->out + w, c->outlen - (size_t)w);
    c->outlen -= (size_t)w;
    if (c->outlen == 0)
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, evs[256];
    struct rlimit rl;
    int lfd, one = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: refcast PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    sin.sin_port = htons((uint16_t)atoi(argv[1]));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (lfd == -1 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(lfd, 4096) == -1) {
        perror("refcast: listen");
        return 1;
    }
    ep = epoll_create1(0);
    if (ep == -1 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == -1) {
        perror("refcast: epoll");
        return 1;
    }
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);

        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            int fd;

            if (c == NULL) {
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) != -1) {
                    struct epoll_event cev = {.events = EPOLLIN};

                    c = calloc(1, sizeof(*c));
                    if (c == NULL) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    cev.data.ptr = c;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            if (c->dead)
                continue;
            if (((evs[i].events & EPOLLOUT) && on_writable(c) == -1) ||
                ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && on_readable(c) == -1))
                conn_close(c);
        }
        graveyard_empty();
    }
}
