/* worker.h -- a worker process: accepts WebSocket clients on its slot's
 * listening socket and keeps one link to the broker. */
#ifndef RC_WORKER_H
#define RC_WORKER_H

#include "config.h"

struct ccount;

/* Entry point of worker `slot` (called in the child after fork), serving
 * listen_fd, a SO_REUSEPORT socket owned by the master, counting its
 * connections in row `row` of the shared counts. Returns RC_EXIT_*. */
int worker_main(const struct cfg *cfg, int slot, int listen_fd, struct ccount *ccount, int row);

#endif

/* ---- inside the worker process ---------------------------------------- */
#ifndef RC_WORKER_INTERNAL
#define RC_WORKER_INTERNAL

#include <stddef.h>
#include <stdint.h>

#include "bcast_log.h"
#include "dict.h"

struct event_base;
struct event;
struct ipc_link;
struct ipc_msg;
struct wss_session;
struct chat_orphan;
struct send_batch;

/* The worker's state; one per process. Sessions are owned by `sessions`. */
struct worker {
    struct event_base *base;
    const struct cfg *cfg;
    int slot;
    int listen_fd;
    struct ccount *ccount;   /* instance-wide connection counts (shared memory) */
    int ccount_row;          /* this process's row in it */
    struct event *accept_ev, *accept_retry_ev; /* retry: after EMFILE/ENFILE */
    struct event *broker_retry_ev;
    struct event *ping_ev;
    struct event *term_ev, *int_ev, *quit_ev, *stop_ev;
    struct ipc_link *broker; /* NULL while disconnected */
    int broker_failures;
    int redis_up;            /* last IPC_LINK state from the broker */
    size_t max_frame;        /* IPC frame limit */
    struct dict users;       /* joined user name -> struct wss_session */
    struct dict pending;     /* join request id (4 bytes) -> struct wss_session */
    struct chat_orphan *orphans;  /* leaves not yet confirmed by the broker */
    uint32_t leave_seq;
    struct wss_session *sessions; /* every connection, any state */
    size_t nsessions;
    size_t nupgraded;             /* sessions past the HTTP upgrade */
    struct wss_session *dirty;    /* sessions with output waiting for a flush */
    struct bcast_log log;         /* chat messages for the joined sessions */
    int log_dirty;                /* appended to since the last flush pass */
    uint64_t last_pass_us;        /* when the last stream pass began */
    struct event *pass_ev;        /* a stream pass held back by flush-interval */
    struct send_batch *batch;     /* io_uring sends of a flush pass; NULL: writev */
    uint32_t next_req;
    uint64_t next_conn_id;
    int stopping;            /* 0, WORKER_DRAINING or WORKER_CLOSING */
};

#define WORKER_DRAINING 1 /* replaced by a reload: no accepts, sessions go on */
#define WORKER_CLOSING 2  /* stopping: sessions are being closed */

/* Send a message to the broker. 0, or -1 when the broker is not connected. */
int worker_send_broker(struct worker *w, const struct ipc_msg *m);

/* A session was freed (a stopping worker exits after its last one). */
void worker_on_session_gone(struct worker *w);

#endif
