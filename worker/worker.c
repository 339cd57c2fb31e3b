/* worker.c -- a worker process: its slot's listening socket, its sessions,
 * one link to the broker.
 *
 * The broker link is not fatal: when it drops, the worker keeps its
 * sessions and reconnects with backoff (the master restarts the broker).
 * SIGTERM stops gracefully: no more accepts, every session gets a 1001
 * close, output is flushed, and the worker exits once all are gone or
 * shutdown-timeout has passed. SIGINT stops at once.
 */
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn_count.h"
#include "echo.h"
#include "ipc.h"
#include "ipc_link.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "net.h"
#include "util.h"
#include "web.h"
#include "ws_session.h"

#define WORKER_ACCEPT_BATCH 64
#define WORKER_ACCEPT_RETRY_MS 100 /* after EMFILE: let sessions close first */
#define WORKER_BROKER_RETRY_MIN_MS 20
#define WORKER_BROKER_FAST_TRIES 100 /* 2 s of retries every 20 ms */
#define WORKER_BROKER_RETRY_MAX_MS 1000

static struct worker W;

static void worker_broker_connect(void);

/* The chat application's way to the broker. */
static int worker_send_broker(const struct ipc_msg *m, void *arg)
{
    (void)arg;
    if (W.broker == NULL)
        return -1;
    return ipc_link_send(W.broker, m);
}

static void worker_timer_add(struct event *ev, long ms)
{
    struct timeval tv = util_ms_tv(ms);

    evtimer_add(ev, &tv);
}

static void worker_maybe_exit(void)
{
    if (W.stopping && W.srv.sessions == NULL)
        event_base_loopexit(W.base, NULL);
}

/* A session was freed: the last one of a stopping worker ends it. */
static void worker_on_session_gone(void *arg)
{
    (void)arg;
    worker_maybe_exit();
}

/* ---- accept ----------------------------------------------------------------- */

static void worker_peer_name(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
    }
    snprintf(out, cap, "%s:%d", host, port);
}

/* Instance-wide limits, checked before a byte is read: every connection,
 * mid-handshake or chatting, counts (that bounds the memory half-open
 * handshakes can hold). A refused client gets a status line, not silence. */
static void worker_admit(int fd, const struct sockaddr *sa, const char *peer, int tls)
{
    const struct cfg *cfg = W.cfg;
    uint32_t bucket = ccount_bucket(sa);

    if (W.stopping) {
        metrics_inc(MS_REFUSED + MREF_SHUTTING_DOWN);
        wss_refuse(&W.srv, fd, peer, 503, "server is shutting down, please reconnect", tls);
    } else if (ccount_total(W.srv.ccount) >= (uint32_t)cfg->max_connections) {
        metrics_inc(MS_REFUSED + MREF_MAX_CONNECTIONS);
        wss_refuse(&W.srv, fd, peer, 503, "server is full: too many connections, retry later",
                   tls);
    } else if (cfg->max_connections_per_ip > 0 &&
               ccount_ip(W.srv.ccount, bucket) >= (uint32_t)cfg->max_connections_per_ip) {
        metrics_inc(MS_REFUSED + MREF_PER_IP);
        wss_refuse(&W.srv, fd, peer, 429, "too many connections from your address", tls);
    } else {
        metrics_inc(MS_ACCEPTED + (tls != 0));
        ccount_add(W.srv.ccount, W.srv.ccount_row, bucket, 1);
        wss_accept(&W.srv, fd, peer, bucket, tls);
    }
}

/* Both listeners (ws:// and wss://) on or off. */
static void worker_accepting(int on)
{
    if (on) {
        event_add(W.accept_ev, NULL);
        if (W.tls_accept_ev != NULL)
            event_add(W.tls_accept_ev, NULL);
    } else {
        event_del(W.accept_ev);
        if (W.tls_accept_ev != NULL)
            event_del(W.tls_accept_ev);
    }
}

/* arg: non-NULL for the wss:// listener */
static void worker_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    int i;

    (void)what;
    for (i = 0; i < WORKER_ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char peer[64];
        int cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (cfd == -1) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* out of descriptors: stop accepting for a moment instead of spinning */
                log_errno(LOG_WARN, errno, "accept: pausing for %d ms", WORKER_ACCEPT_RETRY_MS);
                worker_accepting(0);
                worker_timer_add(W.accept_retry_ev, WORKER_ACCEPT_RETRY_MS);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                       errno != ECONNABORTED) {
                log_errno(LOG_WARN, errno, "accept");
            }
            return;
        }
        worker_peer_name(&ss, peer, sizeof(peer));
        worker_admit(cfd, (struct sockaddr *)&ss, peer, arg != NULL);
    }
}

static void worker_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (!W.stopping)
        worker_accepting(1);
}

/* ---- broker link ------------------------------------------------------------- */

static void worker_on_broker_msg(struct ipc_link *l, const struct ipc_msg *m, void *arg)
{
    (void)l;
    (void)arg;
    chat_on_broker_msg(&W.chat, m);
}

static void worker_on_broker_batch(struct ipc_link *l, void *arg)
{
    (void)l;
    (void)arg;
    wss_flush_dirty(&W.srv); /* one write per session for the whole batch */
}

static void worker_schedule_broker_retry(void)
{
    /* a restarted broker is back within milliseconds: retry at a steady
     * fast pace first (messages published meanwhile miss this worker),
     * then back off */
    long ms = W.broker_failures < WORKER_BROKER_FAST_TRIES
                  ? WORKER_BROKER_RETRY_MIN_MS
                  : WORKER_BROKER_RETRY_MIN_MS << ((W.broker_failures - WORKER_BROKER_FAST_TRIES) < 5
                                                       ? (W.broker_failures - WORKER_BROKER_FAST_TRIES)
                                                       : 5);

    if (ms > WORKER_BROKER_RETRY_MAX_MS)
        ms = WORKER_BROKER_RETRY_MAX_MS;
    W.broker_failures++;
    worker_timer_add(W.broker_retry_ev, ms);
}

static void worker_on_broker_close(struct ipc_link *l, const char *why, void *arg)
{
    (void)arg;
    log_msg(LOG_WARN, "broker link lost (%s); reconnecting", why);
    ipc_link_free(l);
    W.broker = NULL;
    metrics_set(MS_BROKER_LINK_UP, 0);
    chat_on_broker_lost(&W.chat);
    wss_flush_dirty(&W.srv);
    /* even while stopping: the leaves of the last sessions need a broker */
    worker_schedule_broker_retry();
    worker_maybe_exit();
}

static void worker_broker_connect(void)
{
    char err[NET_ERR_LEN], pid[16];
    struct ipc_msg m;
    int fd = net_unix_connect(W.cfg->broker_socket, err);

    if (fd == -1) {
        /* joins waiting for a broker are refused once it stays away */
        if (W.broker_failures == WORKER_BROKER_FAST_TRIES)
            chat_on_broker_lost(&W.chat);
        /* at start the broker may simply not listen yet: only a lasting
         * failure is worth a warning */
        if (W.broker_failures >= WORKER_BROKER_FAST_TRIES && W.broker_failures % 20 == 0)
            log_msg(LOG_WARN, "broker: %s (retrying)", err);
        else
            log_msg(LOG_DEBUG, "broker: %s (retrying)", err);
        worker_schedule_broker_retry();
        return;
    }
    W.broker = ipc_link_new(W.base, fd, W.max_frame, worker_on_broker_msg,
                            worker_on_broker_batch, worker_on_broker_close, NULL);
    if (W.broker == NULL) {
        close(fd);
        worker_schedule_broker_retry();
        return;
    }
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    ipc_msg_set(&m, IPC_HELLO, (uint32_t)W.slot, 0, W.cfg->channel, W.cfg->channel_len, pid,
                strlen(pid), NULL, 0);
    ipc_link_send(W.broker, &m);
    metrics_set(MS_BROKER_LINK_UP, 1);
    chat_on_broker_up(&W.chat);
    log_msg(W.broker_failures ? LOG_INFO : LOG_DEBUG, "connected to the broker");
    W.broker_failures = 0;
}

static void worker_broker_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    worker_broker_connect();
}

/* ---- keepalive ------------------------------------------------------------------ */

static void worker_ping_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    wss_server_ping(&W.srv);
}

/* ---- stop -------------------------------------------------------------------------- */

#define WORKER_CLOSE_GRACE_MS 2000 /* for close handshakes after the last 1001 */

/* Close every session with 1001 (going away); handshakes in progress are
 * dropped. The worker exits when the last session is gone. */
static void worker_close_all(void)
{
    W.srv.site.closing = 1;
    wss_server_close_all(&W.srv, WSLAY_CODE_GOING_AWAY, "server shutting down");
}

static void worker_stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (W.stopping == WORKER_DRAINING) {
        /* drain time is over: ask the rest to go, then give them a moment */
        log_msg(LOG_INFO, "drain timeout: closing %zu remaining connection(s)", W.srv.nsessions);
        W.stopping = WORKER_CLOSING;
        worker_timer_add(W.stop_ev, WORKER_CLOSE_GRACE_MS);
        worker_close_all();
        worker_maybe_exit();
        return;
    }
    log_msg(LOG_WARN, "shutdown timeout: dropping %zu remaining connection(s)", W.srv.nsessions);
    while (W.srv.sessions != NULL) {
        metrics_inc(MS_DROPS + MDROP_SHUTDOWN_TIMEOUT);
        wss_destroy(W.srv.sessions, "shutdown timeout");
    }
    event_base_loopexit(W.base, NULL);
}

/* SIGTERM: the instance stops; sessions are closed now with 1001.
 * SIGQUIT: this worker is being replaced (reload): stop accepting, let the
 * sessions go on until shutdown-timeout, then close them with 1001.
 * SIGINT: stop at once. */
static void worker_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    if (sig == SIGINT || W.stopping == WORKER_CLOSING) {
        event_base_loopexit(W.base, NULL);
        return;
    }
    if (W.stopping == 0) {
        worker_accepting(0);
        metrics_http_stop(W.metrics); /* scrapes go to the workers that stay */
        event_del(W.accept_retry_ev);
        worker_timer_add(W.stop_ev, W.cfg->shutdown_timeout);
    }
    if (sig == SIGQUIT) {
        if (W.stopping == 0) {
            W.stopping = WORKER_DRAINING;
            log_msg(LOG_INFO, "draining: %zu connection(s) may stay up to %ld ms", W.srv.nsessions,
                    W.cfg->shutdown_timeout);
        }
        worker_maybe_exit();
        return;
    }
    W.stopping = WORKER_CLOSING;
    event_del(W.ping_ev);
    log_msg(LOG_INFO, "stopping: closing %zu connection(s)", W.srv.nsessions);
    worker_close_all();
    worker_maybe_exit();
}

/* SIGHUP from the master: the config is unchanged, the certificate may
 * have been renewed. */
static void worker_signal_reload_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    log_open((enum log_level)W.cfg->log_level, W.cfg->logfile);
    wss_server_reload_tls(&W.srv);
}

/* ---- main ------------------------------------------------------------------------------- */

/* GET /healthz: why this worker cannot chat, or NULL when it can. */
static const char *worker_unavailable(void *arg)
{
    (void)arg;
    if (W.broker == NULL)
        return "unavailable: broker not connected";
    if (!W.chat.redis_up)
        return "unavailable: redis not reachable";
    if (W.stopping)
        return "unavailable: shutting down";
    return NULL;
}

/* The worker's routes, the only place that knows which path serves what. */
static void worker_routes(void)
{
    size_t n = 0;

    size_t i;

    /* a browser asking for / gets the chat page; anything else the seed's text */
    W.routes[n++] = (struct http_route){"/", HTTP_ROUTE_TEXT, "you are good to go!", NULL,
                                        web_asset_find("/index.html")};
    W.routes[n++] = (struct http_route){"/healthz", HTTP_ROUTE_HEALTH, NULL, NULL, NULL};
    W.routes[n++] = (struct http_route){"/chat/", HTTP_ROUTE_WS, NULL, &W.chat.app, NULL};
    if (W.cfg->echo_endpoint)
        W.routes[n++] = (struct http_route){"/echo", HTTP_ROUTE_WS, NULL, &echo_app, NULL};
    for (i = 0; i < web_nassets && n < WORKER_ROUTES_MAX; i++)
        if (strcmp(web_assets[i].path, "/index.html") != 0)
            W.routes[n++] =
                (struct http_route){web_assets[i].path, HTTP_ROUTE_ASSET, NULL, NULL, &web_assets[i]};
    W.srv.site.routes = W.routes;
    W.srv.site.nroutes = n;
    W.srv.site.ws_not_found = "not found: chat endpoints are /chat/{user}";
    W.srv.site.cfg = W.cfg;
    W.srv.site.unavailable = worker_unavailable;
}

static int worker_setup(const struct cfg *cfg, int slot, int listen_fd, int tls_fd,
                        struct ccount *ccount, int row, int metrics_fd,
                        const struct metrics_shm *metrics)
{
    memset(&W, 0, sizeof(W));
    W.cfg = cfg;
    W.slot = slot;
    W.listen_fd = listen_fd;
    W.max_frame = ipc_frame_max_for((size_t)cfg->max_message_size);
    W.base = event_base_new();
    if (W.base == NULL)
        return -1;
    if (wss_server_init(&W.srv, W.base, cfg, ccount, row) != 0)
        return -1;
    W.srv.on_gone = worker_on_session_gone;
    chat_init(&W.chat, cfg, &W.srv, worker_send_broker, NULL);
    worker_routes();
    W.accept_ev = event_new(W.base, listen_fd, EV_READ | EV_PERSIST, worker_accept_cb, NULL);
    if (tls_fd != -1 && (W.tls_accept_ev = event_new(W.base, tls_fd, EV_READ | EV_PERSIST,
                                                     worker_accept_cb, &W.tls_accept_ev)) == NULL)
        return -1;
    if (metrics_fd != -1 && (W.metrics = metrics_http_new(W.base, metrics_fd, metrics)) == NULL)
        return -1;
    W.reload_ev = evsignal_new(W.base, SIGHUP, worker_signal_reload_cb, NULL);
    W.accept_retry_ev = evtimer_new(W.base, worker_accept_retry_cb, NULL);
    W.broker_retry_ev = evtimer_new(W.base, worker_broker_retry_cb, NULL);
    W.ping_ev = event_new(W.base, -1, EV_PERSIST, worker_ping_cb, NULL);
    W.term_ev = evsignal_new(W.base, SIGTERM, worker_signal_cb, NULL);
    W.int_ev = evsignal_new(W.base, SIGINT, worker_signal_cb, NULL);
    W.quit_ev = evsignal_new(W.base, SIGQUIT, worker_signal_cb, NULL);
    W.stop_ev = evtimer_new(W.base, worker_stop_timer_cb, NULL);
    if (!W.accept_ev || !W.accept_retry_ev || !W.broker_retry_ev || !W.ping_ev || !W.term_ev ||
        !W.int_ev || !W.quit_ev || !W.stop_ev || !W.reload_ev)
        return -1;
    worker_accepting(1);
    event_add(W.reload_ev, NULL);
    event_add(W.term_ev, NULL);
    event_add(W.quit_ev, NULL);
    event_add(W.int_ev, NULL);
    if (cfg->ping_interval > 0) {
        struct timeval tv = util_ms_tv(cfg->ping_interval);
        event_add(W.ping_ev, &tv);
    }
    return 0;
}

int worker_main(const struct cfg *cfg, int slot, int listen_fd, int tls_fd, struct ccount *ccount,
                int row, int metrics_fd, const struct metrics_shm *metrics)
{
    int rc = RC_EXIT_OK;

    if (worker_setup(cfg, slot, listen_fd, tls_fd, ccount, row, metrics_fd, metrics) == -1) {
        log_msg(LOG_ERROR, "cannot start (out of memory, or the TLS certificate)");
        return RC_EXIT_RUNTIME;
    }
    worker_broker_connect();
    log_msg(LOG_INFO, "accepting connections");
    if (event_base_dispatch(W.base) == -1)
        rc = RC_EXIT_RUNTIME;

    /* every session goes, and with it its name: LEAVEs queue for the broker */
    while (W.srv.sessions != NULL)
        wss_destroy(W.srv.sessions, "worker exiting");
    if (W.broker != NULL) {
        /* the LEAVEs just queued must reach the broker, or names stay taken */
        if (ipc_link_flush_blocking(W.broker, 2000) == -1)
            log_msg(LOG_WARN, "could not hand every leave to the broker");
        ipc_link_free(W.broker);
    }
    metrics_http_free(W.metrics);
    wss_server_deinit(&W.srv);
    chat_deinit(&W.chat);
    event_free(W.accept_ev);
    if (W.tls_accept_ev != NULL)
        event_free(W.tls_accept_ev);
    event_free(W.reload_ev);
    event_free(W.accept_retry_ev);
    event_free(W.broker_retry_ev);
    event_free(W.ping_ev);
    event_free(W.term_ev);
    event_free(W.int_ev);
    event_free(W.quit_ev);
    event_free(W.stop_ev);
    event_base_free(W.base);
    close(listen_fd);
    if (tls_fd != -1)
        close(tls_fd);
    log_msg(LOG_INFO, "stopped");
    return rc;
}
