/* sentinel.c -- asking Redis Sentinel for the primary, and listening for
 * its failovers.
 *
 * An ask is one short connection at a time: connect, AUTH (when a sentinel
 * password is set), SENTINEL GET-MASTER-ADDR-BY-NAME, disconnect; a sentinel
 * that cannot be reached, refuses us or does not know the master is logged
 * and the next one is tried. Every outcome is handled in the context's
 * disconnect (or failed-connect) callback, after hiredis is done with it, so
 * the owner may do anything in on_primary.
 *
 * The watcher is one subscriber connection, SUBSCRIBE +switch-master, to
 * one sentinel; when it is lost the next sentinel takes its place after a
 * pause.
 */
#include "sentinel.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "redis_conn.h"
#include "util.h"

#define SENTINEL_CONNECT_TIMEOUT_MS 1000
#define SENTINEL_REPLY_TIMEOUT_MS 1000
#define SENTINEL_WATCH_RETRY_MS 1000
#define SENTINEL_HOST_MAX 256

struct sentinel_addr {
    char host[SENTINEL_HOST_MAX];
    int port;
};

struct sentinel {
    struct event_base *base;
    const struct cfg *cfg;
    SSL_CTX *ssl_ctx;
    struct sentinel_handlers h;
    struct sentinel_addr addrs[CFG_ADDRS_MAX];
    int n;
    /* the ask under way */
    redisAsyncContext *ask_ac;
    int asking;
    int first;   /* the sentinel asked first: the last one that answered */
    int tried;   /* sentinels tried in this ask */
    int current; /* index being asked */
    char found_host[SENTINEL_HOST_MAX];
    int found_port; /* 0: no answer from the current one */
    /* the +switch-master watcher */
    redisAsyncContext *watch_ac;
    int watch_idx;
    struct event *watch_retry;
    int stopping;
};

static void sentinel_ask_next(struct sentinel *s);

static void sentinel_on_auth(redisAsyncContext *ac, void *reply_, void *pd)
{
    const struct sentinel_addr *a = pd;
    const redisReply *reply = reply_;

    (void)ac;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        log_msg(LOG_WARN, "sentinel %s:%d: AUTH (redis-sentinel-password) failed: %s", a->host,
                a->port, reply->str);
}

static redisAsyncContext *sentinel_connect(struct sentinel *s, int i, const char *what)
{
    const struct sentinel_addr *a = &s->addrs[i];
    struct timeval tv = util_ms_tv(SENTINEL_REPLY_TIMEOUT_MS);
    char err[256];
    redisAsyncContext *ac;

    ac = redis_conn_open(s->base, a->host, a->port, SENTINEL_CONNECT_TIMEOUT_MS, s->ssl_ctx,
                         s->cfg, err, sizeof(err));
    if (ac == NULL) {
        log_msg(LOG_WARN, "sentinel %s:%d: cannot connect (%s): %s", a->host, a->port, what, err);
        return NULL;
    }
    ac->data = s;
    if (strcmp(what, "watch") != 0)
        redisAsyncSetTimeout(ac, tv); /* a subscriber waits for messages as long as it takes */
    if (s->cfg->redis_sentinel_password != NULL)
        redisAsyncCommand(ac, sentinel_on_auth, (void *)a, "AUTH %s",
                          s->cfg->redis_sentinel_password);
    return ac;
}

/* ---- asking ------------------------------------------------------------------ */

static void sentinel_ask_done(struct sentinel *s)
{
    const struct sentinel_addr *a = &s->addrs[s->current];

    s->ask_ac = NULL;
    if (s->stopping)
        return;
    if (s->found_port != 0) {
        s->asking = 0;
        s->first = s->current;
        log_msg(LOG_DEBUG, "sentinel %s:%d: primary '%s' is %s:%d", a->host, a->port,
                s->cfg->redis_sentinel_master, s->found_host, s->found_port);
        s->h.on_primary(s->found_host, s->found_port, s->h.arg);
        return;
    }
    sentinel_ask_next(s);
}

static void sentinel_on_ask_connect(const redisAsyncContext *ac, int status)
{
    struct sentinel *s = ac->data;
    const struct sentinel_addr *a = &s->addrs[s->current];

    if (status == REDIS_OK)
        return;
    log_msg(LOG_WARN, "sentinel %s:%d: cannot connect: %s", a->host, a->port, ac->errstr);
    sentinel_ask_done(s); /* hiredis frees the context after this */
}

static void sentinel_on_ask_disconnect(const redisAsyncContext *ac, int status)
{
    struct sentinel *s = ac->data;
    const struct sentinel_addr *a = &s->addrs[s->current];

    if (status != REDIS_OK && s->found_port == 0 && !s->stopping)
        log_msg(LOG_WARN, "sentinel %s:%d: %s", a->host, a->port,
                ac->errstr[0] ? ac->errstr : "connection lost");
    sentinel_ask_done(s);
}

static void sentinel_on_addr(redisAsyncContext *ac, void *reply_, void *pd)
{
    struct sentinel *s = pd;
    const struct sentinel_addr *a = &s->addrs[s->current];
    const redisReply *reply = reply_, *h, *p;
    long port;
    char *end;

    if (reply == NULL)
        return; /* freed or lost: the disconnect callback goes on */
    if (reply->type == REDIS_REPLY_ERROR) {
        log_msg(LOG_WARN, "sentinel %s:%d: %s", a->host, a->port, reply->str);
    } else if (reply->type == REDIS_REPLY_NIL) {
        log_msg(LOG_WARN, "sentinel %s:%d: does not monitor a master named '%s'", a->host,
                a->port, s->cfg->redis_sentinel_master);
    } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
               (h = reply->element[0])->type != REDIS_REPLY_STRING ||
               (p = reply->element[1])->type != REDIS_REPLY_STRING || h->len == 0 ||
               h->len >= sizeof(s->found_host) || (port = strtol(p->str, &end, 10)) < 1 ||
               port > 65535 || *end != '\0') {
        log_msg(LOG_WARN, "sentinel %s:%d: unexpected answer to GET-MASTER-ADDR-BY-NAME", a->host,
                a->port);
    } else {
        memcpy(s->found_host, h->str, h->len);
        s->found_host[h->len] = '\0';
        s->found_port = (int)port;
    }
    redisAsyncDisconnect(ac);
}

static void sentinel_ask_next(struct sentinel *s)
{
    while (s->tried < s->n) {
        s->current = (s->first + s->tried++) % s->n;
        s->found_port = 0;
        s->ask_ac = sentinel_connect(s, s->current, "ask");
        if (s->ask_ac == NULL)
            continue;
        redisAsyncSetConnectCallback(s->ask_ac, sentinel_on_ask_connect);
        redisAsyncSetDisconnectCallback(s->ask_ac, sentinel_on_ask_disconnect);
        redisAsyncCommand(s->ask_ac, sentinel_on_addr, s, "SENTINEL GET-MASTER-ADDR-BY-NAME %s",
                          s->cfg->redis_sentinel_master);
        return;
    }
    s->asking = 0;
    log_msg(LOG_WARN, "sentinel: none of %d sentinel(s) named the primary '%s'", s->n,
            s->cfg->redis_sentinel_master);
    s->h.on_primary(NULL, 0, s->h.arg);
}

void sentinel_ask(struct sentinel *s)
{
    if (s->asking)
        return;
    s->asking = 1;
    s->tried = 0;
    sentinel_ask_next(s);
}

/* ---- watching ---------------------------------------------------------------- */

int sentinel_switch_parse(const char *msg, size_t len, const char *master, char *host,
                          size_t cap, int *port)
{
    const char *w[5], *end = msg + len;
    size_t wl[5], mlen = strlen(master);
    const char *p = msg;
    char num[8];
    long v;
    char *e;
    int i;

    for (i = 0; i < 5; i++) {
        while (p < end && *p == ' ')
            p++;
        w[i] = p;
        while (p < end && *p != ' ')
            p++;
        wl[i] = (size_t)(p - w[i]);
        if (wl[i] == 0)
            return -1;
    }
    while (p < end && *p == ' ')
        p++;
    if (p != end || wl[0] != mlen || memcmp(w[0], master, mlen) != 0 || wl[3] >= cap ||
        wl[4] >= sizeof(num))
        return -1;
    memcpy(num, w[4], wl[4]);
    num[wl[4]] = '\0';
    v = strtol(num, &e, 10);
    if (*e != '\0' || v < 1 || v > 65535)
        return -1;
    memcpy(host, w[3], wl[3]);
    host[wl[3]] = '\0';
    *port = (int)v;
    return 0;
}

static void sentinel_watch_later(struct sentinel *s)
{
    struct timeval tv = util_ms_tv(SENTINEL_WATCH_RETRY_MS);

    if (s->stopping)
        return;
    s->watch_idx = (s->watch_idx + 1) % s->n;
    evtimer_add(s->watch_retry, &tv);
}

static void sentinel_on_watch_connect(const redisAsyncContext *ac, int status)
{
    struct sentinel *s = ac->data;
    const struct sentinel_addr *a = &s->addrs[s->watch_idx];

    if (status == REDIS_OK)
        return;
    log_msg(LOG_WARN, "sentinel %s:%d: cannot connect to watch for failovers: %s", a->host,
            a->port, ac->errstr);
    s->watch_ac = NULL;
    sentinel_watch_later(s);
}

static void sentinel_on_watch_disconnect(const redisAsyncContext *ac, int status)
{
    struct sentinel *s = ac->data;
    const struct sentinel_addr *a = &s->addrs[s->watch_idx];

    s->watch_ac = NULL;
    if (s->stopping)
        return;
    log_msg(LOG_WARN, "sentinel %s:%d: watch for failovers lost: %s", a->host, a->port,
            status != REDIS_OK && ac->errstr[0] ? ac->errstr : "closed");
    sentinel_watch_later(s);
}

static void sentinel_on_watch(redisAsyncContext *ac, void *reply_, void *pd)
{
    struct sentinel *s = pd;
    const struct sentinel_addr *a = &s->addrs[s->watch_idx];
    const redisReply *reply = reply_, *kind, *msg;
    char host[SENTINEL_HOST_MAX];
    int port;

    if (reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        log_msg(LOG_WARN, "sentinel %s:%d: cannot watch for failovers: %s", a->host, a->port,
                reply->str);
        redisAsyncDisconnect(ac);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        (kind = reply->element[0])->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(kind->str, "subscribe") == 0) {
        log_msg(LOG_INFO, "sentinel %s:%d: watching for failovers of '%s'", a->host, a->port,
                s->cfg->redis_sentinel_master);
        return;
    }
    msg = reply->element[2];
    if (strcmp(kind->str, "message") != 0 || msg->type != REDIS_REPLY_STRING ||
        sentinel_switch_parse(msg->str, msg->len, s->cfg->redis_sentinel_master, host,
                              sizeof(host), &port) == -1)
        return;
    log_msg(LOG_WARN, "sentinel %s:%d: +switch-master: '%s' is now %s:%d", a->host, a->port,
            s->cfg->redis_sentinel_master, host, port);
    s->h.on_switch(host, port, s->h.arg);
}

static void sentinel_watch_start(struct sentinel *s)
{
    if (s->stopping || s->watch_ac != NULL)
        return;
    s->watch_ac = sentinel_connect(s, s->watch_idx, "watch");
    if (s->watch_ac == NULL) {
        sentinel_watch_later(s);
        return;
    }
    redisAsyncSetConnectCallback(s->watch_ac, sentinel_on_watch_connect);
    redisAsyncSetDisconnectCallback(s->watch_ac, sentinel_on_watch_disconnect);
    redisAsyncCommand(s->watch_ac, sentinel_on_watch, s, "SUBSCRIBE +switch-master");
}

static void sentinel_watch_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sentinel_watch_start(arg);
}

/* ---- life -------------------------------------------------------------------- */

struct sentinel *sentinel_new(struct event_base *base, const struct cfg *cfg, SSL_CTX *ssl_ctx,
                              const struct sentinel_handlers *h)
{
    struct sentinel *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->base = base;
    s->cfg = cfg;
    s->ssl_ctx = ssl_ctx;
    s->h = *h;
    while (s->n < CFG_ADDRS_MAX && cfg_addr_at(cfg->redis_sentinel, (size_t)s->n,
                                               s->addrs[s->n].host, sizeof(s->addrs[s->n].host),
                                               &s->addrs[s->n].port) == 0)
        s->n++;
    s->watch_retry = evtimer_new(base, sentinel_watch_retry_cb, s);
    if (s->n == 0 || s->watch_retry == NULL) {
        sentinel_free(s);
        return NULL;
    }
    sentinel_watch_start(s);
    return s;
}

void sentinel_free(struct sentinel *s)
{
    if (s == NULL)
        return;
    s->stopping = 1;
    /* pending callbacks run with NULL replies, then the disconnect callbacks */
    if (s->ask_ac != NULL)
        redisAsyncFree(s->ask_ac);
    if (s->watch_ac != NULL)
        redisAsyncFree(s->watch_ac);
    if (s->watch_retry != NULL)
        event_free(s->watch_retry);
    free(s);
}
