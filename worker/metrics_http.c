/* metrics_http.c -- see metrics_http.h. */
#include "metrics_http.h"

#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_upgrade.h"
#include "metrics.h"
#include "util.h"

#define MH_PREFIX "redis_chat_"
#define MH_CONNS_MAX 16    /* scrapes in progress per worker; more are closed */
#define MH_TIMEOUT_MS 5000 /* a whole request and answer */
#define MH_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- the exposition ------------------------------------------------------------ */

struct mh_buf {
    char *p;
    size_t len, cap;
    int failed;
};

static void mh_printf(struct mh_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void mh_printf(struct mh_buf *b, const char *fmt, ...)
{
    va_list ap;
    char *grown;
    size_t room;
    int n;

    if (b->failed)
        return;
    for (;;) {
        room = b->cap - b->len;
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        grown = realloc(b->p, b->cap * 2 + (size_t)n);
        if (grown == NULL) {
            b->failed = 1;
            return;
        }
        b->p = grown;
        b->cap = b->cap * 2 + (size_t)n;
    }
}

static void mh_head(struct mh_buf *b, const char *name, const struct metrics_family *f,
                    const char *whose)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};

    mh_printf(b, "# HELP %s %s%s\n# TYPE %s %s\n", name, f->help, whose, name, types[f->type]);
}

/* One family's samples from values[f->first ...]; `worker` is the worker
 * label's value, or -1 for none. */
static void mh_samples(struct mh_buf *b, const char *name, const struct metrics_family *f,
                       const uint64_t *v, int worker)
{
    char wl[32] = "";
    int i;

    if (worker >= 0)
        snprintf(wl, sizeof(wl), "worker=\"%d\"", worker);
    if (f->type == MT_HISTOGRAM) {
        uint64_t cum = 0;
        for (i = 0; i < METRICS_LATENCY_BUCKETS; i++) {
            cum += v[f->first + i];
            mh_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, wl, wl[0] ? "," : "",
                      metrics_latency_le[i], (unsigned long long)cum);
        }
        /* the sum is kept in microseconds */
        mh_printf(b, "%s_sum%s%s%s %llu.%06llu\n", name, wl[0] ? "{" : "", wl, wl[0] ? "}" : "",
                  (unsigned long long)(v[f->first + METRICS_LATENCY_BUCKETS] / 1000000),
                  (unsigned long long)(v[f->first + METRICS_LATENCY_BUCKETS] % 1000000));
        mh_printf(b, "%s_count%s%s%s %llu\n", name, wl[0] ? "{" : "", wl, wl[0] ? "}" : "",
                  (unsigned long long)v[f->first + METRICS_LATENCY_BUCKETS + 1]);
        return;
    }
    for (i = 0; i < f->n; i++) {
        const char *l = f->labels != NULL ? f->labels[i] : "";
        int any = wl[0] || l[0];
        if (f->type == MT_GAUGE) /* a gauge's row may be read mid-update: never print 2^64 - 1 */
            mh_printf(b, "%s%s%s%s%s%s %lld\n", name, any ? "{" : "", wl, wl[0] && l[0] ? "," : "",
                      l, any ? "}" : "", (long long)v[f->first + i]);
        else
            mh_printf(b, "%s%s%s%s%s%s %llu\n", name, any ? "{" : "", wl, wl[0] && l[0] ? "," : "",
                      l, any ? "}" : "", (unsigned long long)v[f->first + i]);
    }
}

size_t metrics_render(const struct metrics_view *v, char **out)
{
    struct mh_buf b = {malloc(16384), 0, 16384, 0};
    uint64_t sum[MS_COUNT];
    char name[128];
    size_t fi;
    int s, i;

    *out = NULL;
    if (b.p == NULL)
        return 0;
    memset(sum, 0, sizeof(sum));
    for (s = 0; s < v->nslots; s++)
        for (i = 0; i < MS_COUNT; i++)
            sum[i] += v->slot[s][i];
    mh_printf(&b,
              "# HELP " MH_PREFIX "build_info The running version.\n"
              "# TYPE " MH_PREFIX "build_info gauge\n" MH_PREFIX "build_info{version=\"%s\"} 1\n",
              PACKAGE_VERSION);
    mh_printf(&b,
              "# HELP " MH_PREFIX "worker_slots Worker slots that ever ran.\n"
              "# TYPE " MH_PREFIX "worker_slots gauge\n" MH_PREFIX "worker_slots %d\n",
              v->nslots);
    for (fi = 0; fi < metrics_nfamilies; fi++) {
        const struct metrics_family *f = &metrics_families[fi];

        if (f->scope == MSCOPE_BROKER) {
            snprintf(name, sizeof(name), MH_PREFIX "%s", f->name);
            mh_head(&b, name, f, "");
            mh_samples(&b, name, f, v->broker, -1);
            continue;
        }
        /* per worker slot, then the instance's sum: sum() over either never counts twice */
        snprintf(name, sizeof(name), MH_PREFIX "worker_%s", f->name);
        mh_head(&b, name, f, " Per worker slot.");
        for (s = 0; s < v->nslots; s++)
            mh_samples(&b, name, f, v->slot[s], s);
        snprintf(name, sizeof(name), MH_PREFIX "%s", f->name);
        mh_head(&b, name, f, " All workers.");
        mh_samples(&b, name, f, sum, -1);
    }
    if (b.failed) {
        free(b.p);
        return 0;
    }
    *out = b.p;
    return b.len;
}

/* ---- serving ---------------------------------------------------------------------- */

struct mh_conn {
    struct mh_conn *prev, *next;
    struct metrics_http *mh;
    int fd;
    struct event *ev;
    uint64_t deadline_ms;
    char head[UPG_HEAD_MAX];
    size_t headlen;
    char *out; /* the answer, once decided */
    size_t outlen, outoff;
};

struct metrics_http {
    struct event_base *base;
    const struct metrics_shm *shm;
    struct metrics_view *view; /* large: kept between scrapes */
    int fd;
    struct event *accept_ev;
    struct mh_conn *conns;
    int nconns;
};

static void mh_conn_free(struct mh_conn *c)
{
    struct metrics_http *mh = c->mh;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        mh->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    mh->nconns--;
    event_free(c->ev);
    close(c->fd);
    free(c->out);
    free(c);
}

/* The answer to a complete head (or a bad one: rc < 0). */
static void mh_answer(struct mh_conn *c, int rc, const struct upg_request *req)
{
    static const char path[] = "/metrics";
    char small[512];
    const char *q;
    size_t plen;

    if (rc == UPG_PARSE_BAD || rc == UPG_PARSE_TOO_LARGE) {
        c->outlen = upg_response(small, sizeof(small), rc == UPG_PARSE_BAD ? 400 : 431, NULL,
                                 rc == UPG_PARSE_BAD ? "malformed HTTP request"
                                                     : "request header fields too large");
    } else if (req->method.len != 3 || memcmp(req->method.p, "GET", 3) != 0) {
        c->outlen =
            upg_response(small, sizeof(small), 405, "Allow: GET\r\n", "only GET is supported");
    } else {
        q = memchr(req->target.p, '?', req->target.len);
        plen = q != NULL ? (size_t)(q - req->target.p) : req->target.len;
        if (plen != sizeof(path) - 1 || memcmp(req->target.p, path, plen) != 0) {
            c->outlen = upg_response(small, sizeof(small), 404, NULL, "not found: try /metrics");
        } else {
            char *body = NULL, head[256];
            size_t blen, hlen;

            metrics_inc(MS_METRICS_SCRAPES);
            metrics_read(c->mh->shm, c->mh->view);
            blen = metrics_render(c->mh->view, &body);
            if (blen == 0) {
                c->outlen = upg_response(small, sizeof(small), 503, NULL, "out of memory");
            } else {
                hlen = (size_t)snprintf(head, sizeof(head),
                                        "HTTP/1.1 200 OK\r\nContent-Type: " MH_CONTENT_TYPE
                                        "\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                                        blen);
                c->out = malloc(hlen + blen);
                if (c->out != NULL) {
                    memcpy(c->out, head, hlen);
                    memcpy(c->out + hlen, body, blen);
                    c->outlen = hlen + blen;
                }
                free(body);
                if (c->out == NULL)
                    c->outlen = upg_response(small, sizeof(small), 503, NULL, "out of memory");
            }
        }
    }
    if (c->out == NULL) {
        c->out = malloc(c->outlen);
        if (c->out != NULL)
            memcpy(c->out, small, c->outlen);
        else
            c->outlen = 0;
    }
}

/* Write what is left; 1 when done (or failed). */
static int mh_write(struct mh_conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n > 0) {
            c->outoff += (size_t)n;
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        return 1;
    }
    /* the answer is whole: say so before closing, so unread input cannot turn
     * the close into a reset that destroys it */
    shutdown(c->fd, SHUT_WR);
    return 1;
}

static void mh_conn_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mh_conn *c = arg;
    struct upg_request req;
    uint64_t now = util_now_ms();
    struct timeval tv;
    int rc;

    if ((what & EV_TIMEOUT) || now >= c->deadline_ms) {
        mh_conn_free(c);
        return;
    }
    if (c->out == NULL) {
        ssize_t n = recv(fd, c->head + c->headlen, sizeof(c->head) - c->headlen, 0);
        if (n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            mh_conn_free(c);
            return;
        }
        if (n > 0)
            c->headlen += (size_t)n;
        rc = upg_parse(c->head, c->headlen, &req);
        if (rc == UPG_PARSE_AGAIN && c->headlen == sizeof(c->head))
            rc = UPG_PARSE_TOO_LARGE;
        if (rc == UPG_PARSE_AGAIN)
            goto rearm;
        mh_answer(c, rc, &req);
        if (c->out == NULL) {
            mh_conn_free(c);
            return;
        }
    }
    if (mh_write(c)) {
        mh_conn_free(c);
        return;
    }
rearm:
    /* one event, re-armed for what is awaited next, with the time left */
    event_del(c->ev);
    event_assign(c->ev, c->mh->base, c->fd, c->out == NULL ? EV_READ : EV_WRITE, mh_conn_cb, c);
    tv = util_ms_tv((long)(c->deadline_ms - now));
    event_add(c->ev, &tv);
}

static void mh_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct metrics_http *mh = arg;
    struct mh_conn *c;
    struct timeval tv = util_ms_tv(MH_TIMEOUT_MS);
    int fd;

    (void)what;
    fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd == -1)
        return; /* another worker took it, or out of descriptors: the scraper retries */
    if (mh->nconns >= MH_CONNS_MAX || (c = calloc(1, sizeof(*c))) == NULL) {
        close(fd);
        return;
    }
    c->mh = mh;
    c->fd = fd;
    c->deadline_ms = util_now_ms() + MH_TIMEOUT_MS;
    c->ev = event_new(mh->base, fd, EV_READ, mh_conn_cb, c);
    if (c->ev == NULL) {
        close(fd);
        free(c);
        return;
    }
    c->next = mh->conns;
    if (mh->conns != NULL)
        mh->conns->prev = c;
    mh->conns = c;
    mh->nconns++;
    event_add(c->ev, &tv);
}

struct metrics_http *metrics_http_new(struct event_base *base, int listen_fd,
                                      const struct metrics_shm *shm)
{
    struct metrics_http *mh = calloc(1, sizeof(*mh));

    if (mh == NULL)
        return NULL;
    mh->base = base;
    mh->shm = shm;
    mh->fd = listen_fd;
    mh->view = malloc(sizeof(*mh->view));
    mh->accept_ev = event_new(base, listen_fd, EV_READ | EV_PERSIST, mh_accept_cb, mh);
    if (mh->view == NULL || mh->accept_ev == NULL) {
        if (mh->accept_ev != NULL)
            event_free(mh->accept_ev);
        free(mh->view);
        free(mh);
        return NULL;
    }
    event_add(mh->accept_ev, NULL);
    return mh;
}

void metrics_http_stop(struct metrics_http *mh)
{
    if (mh == NULL || mh->fd == -1)
        return;
    event_del(mh->accept_ev);
    /* our copy of the listener goes: once the master's is closed too (a
     * reload moved it), the old port is free */
    close(mh->fd);
    mh->fd = -1;
}

void metrics_http_free(struct metrics_http *mh)
{
    if (mh == NULL)
        return;
    metrics_http_stop(mh);
    while (mh->conns != NULL)
        mh_conn_free(mh->conns);
    event_free(mh->accept_ev);
    free(mh->view);
    free(mh);
}
