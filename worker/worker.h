/* worker.h -- a worker process: accepts WebSocket clients on its slot's
 * listening socket and keeps one link to the broker. */
#ifndef RC_WORKER_H
#define RC_WORKER_H

#include "config.h"

struct ccount;
struct metrics_shm;

/* Entry point of worker `slot` (called in the child after fork), serving
 * listen_fd and, with tls-port, tls_fd (else -1): SO_REUSEPORT sockets
 * owned by the master; counting its connections in row `row` of the shared
 * counts. metrics_fd (-1: none) is the /metrics listener every worker
 * shares, answered from the shared metrics. SIGHUP re-reads the TLS
 * certificate. Returns RC_EXIT_*. */
int worker_main(const struct cfg *cfg, int slot, int listen_fd, int tls_fd, struct ccount *ccount,
                int row, int metrics_fd, const struct metrics_shm *metrics);

#endif

/* ---- inside the worker process ---------------------------------------- */
#ifndef RC_WORKER_INTERNAL
#define RC_WORKER_INTERNAL

#include <stddef.h>

#include "chat.h"
#include "http_route.h"
#include "ws_session.h"

struct event_base;
struct event;
struct ipc_link;
struct metrics_http;

#define WORKER_ROUTES_MAX 16

/* The worker's state; one per process: the transport with its
 * applications, the broker link, the signals and timers. */
struct worker {
    struct event_base *base;
    const struct cfg *cfg;
    int slot;
    int listen_fd;
    struct event *accept_ev, *accept_retry_ev; /* retry: after EMFILE/ENFILE */
    struct event *tls_accept_ev;               /* the wss:// listener; NULL without */
    struct event *reload_ev;                   /* SIGHUP: re-read the TLS certificate */
    struct event *broker_retry_ev;
    struct event *ping_ev;
    struct event *term_ev, *int_ev, *quit_ev, *stop_ev;
    struct metrics_http *metrics; /* GET /metrics; NULL without metrics-port */
    struct ipc_link *broker; /* NULL while disconnected */
    int broker_failures;
    size_t max_frame;        /* IPC frame limit */
    struct wss_server srv;   /* the WebSocket transport */
    struct chat chat;        /* the chat application */
    struct http_route routes[WORKER_ROUTES_MAX];
    int stopping;            /* 0, WORKER_DRAINING or WORKER_CLOSING */
};

#define WORKER_DRAINING 1 /* replaced by a reload: no accepts, sessions go on */
#define WORKER_CLOSING 2  /* stopping: sessions are being closed */

#endif
