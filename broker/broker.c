/* broker.c -- the broker process: workers on a Unix socket, Redis behind.
 *
 * Workers send JOIN / LEAVE / PUBLISH; the broker turns them into SADD /
 * SREM / PUBLISH with exactly the seed's keys and payloads and answers
 * joins and failed publishes. Every message from the Redis channel is
 * encoded once into a DELIVER frame and the same bytes go to each worker;
 * a worker that leaves max-worker-backlog of them unread is dropped and
 * restarted (broker_drop_behind), so the broker's memory stays bounded.
 * The broker remembers which users each worker holds, so a worker that
 * dies without saying goodbye does not leave ghost users behind.
 */
#include "broker.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "chat_payload.h"
#include "dict.h"
#include "ipc.h"
#include "ipc_link.h"
#include "log.h"
#include "master.h"
#include "net.h"
#include "outbox.h"
#include "presence.h"
#include "redis_link.h"
#include "util.h"

#define BROKER_USER_MAX 128       /* bytes; workers validate names, we only bound them */
#define BROKER_STOP_EXTRA_MS 2000 /* past shutdown-timeout, for the last leaves */
#define BROKER_OUTBOX_TICK_MS 200 /* how often held messages are checked for expiry */
#define BROKER_WORKERS_WAIT_MS 2000 /* after a start, for every worker to say HELLO */
#define BROKER_LAST_REPLIES_MS 1000 /* unregistered at the stop timeout: Redis's last answers */

/* One connected worker. Owned by the broker's list; its users dict owns
 * the name strings (key == value). */
struct broker_worker {
    struct broker_worker *prev, *next;
    struct ipc_link *link;
    uint64_t id; /* never reused: pending Redis replies find their worker by it */
    int slot;    /* -1 until HELLO */
    pid_t pid;   /* from the socket (SO_PEERCRED): whom the master kills if it falls behind */
    struct dict users;
};

/* A request waiting for Redis: which worker asked, and about whom. */
struct broker_req {
    uint64_t worker_id;
    uint32_t reqid;
    size_t userlen;
    char user[]; /* NUL-terminated */
};

static struct {
    struct event_base *base;
    const struct cfg *cfg;
    struct rlink *redis;
    struct presence *presence;
    struct outbox outbox;
    struct event *outbox_ev;
    const char *instance_id;
    int listen_fd;
    struct event *accept_ev;
    struct event *term_ev, *int_ev;
    struct event *stop_timer;
    struct broker_worker *workers;
    uint64_t next_worker_id;
    size_t max_frame;
    size_t max_backlog; /* max-worker-backlog */
    uint8_t *scratch; /* formats payloads and encodes DELIVER frames */
    size_t scratch_cap;
    long inflight;     /* Redis commands not answered yet */
    int workers_ready; /* every worker has said HELLO (or the wait is over) */
    int hellos;        /* HELLOs received since start */
    struct event *ready_ev;
    int stopping;
    int unregistered; /* stop: the instance is gone from Redis */
} B;

static void broker_set_ready(const char *why);

/* Redis is up and every worker is here to hear what we publish: a broker
 * that just (re)started holds messages and leaves (in the outbox) until its
 * workers have reconnected, so none of them misses those announcements. */
static int broker_redis_usable(void)
{
    return B.workers_ready && rlink_is_up(B.redis);
}

static struct broker_worker *broker_find_worker(uint64_t id)
{
    struct broker_worker *w;

    for (w = B.workers; w != NULL; w = w->next)
        if (w->id == id)
            return w;
    return NULL;
}

static struct broker_req *broker_req_new(uint64_t worker_id, uint32_t reqid, const void *user,
                                         size_t len)
{
    struct broker_req *q = malloc(sizeof(*q) + len + 1);

    if (q == NULL)
        return NULL;
    q->worker_id = worker_id;
    q->reqid = reqid;
    q->userlen = len;
    memcpy(q->user, user, len);
    q->user[len] = '\0';
    return q;
}

static void broker_on_cmd_done(long long result, void *pd);

/* Stopping ends once every worker said goodbye, every held leave reached
 * Redis and Redis answered; then the instance unregisters itself. While
 * Redis is down, held leaves wait for it until shutdown-timeout: if it
 * never returns, the other instances reap our users once our heartbeat
 * expires, so nobody stays listed. */
static void broker_maybe_exit(void)
{
    if (!B.stopping || B.workers != NULL || B.outbox.head != NULL || B.inflight > 0)
        return;
    if (!B.unregistered) {
        B.unregistered = 1;
        if (presence_stop(B.presence, broker_on_cmd_done, NULL) == 0) {
            B.inflight++;
            return;
        }
    }
    event_base_loopexit(B.base, NULL);
}

static void broker_on_cmd_done(long long result, void *pd)
{
    (void)result;
    (void)pd;
    B.inflight--;
    broker_maybe_exit();
}

/* Publish "foo: has joined the chat!" (leaves are presence.c's: Redis
 * announces them only when the name was still listed). */
static void broker_announce_join(const char *user, size_t ulen)
{
    char *payload = (char *)B.scratch;
    ssize_t len = chat_payload_joined(payload, B.scratch_cap, user, ulen);

    if (len < 0 || !B.cfg->announce)
        return;
    if (rlink_publish(B.redis, payload, (size_t)len, broker_on_cmd_done, NULL) == 0)
        B.inflight++;
    else
        log_msg(LOG_WARN, "redis down: notice '%.*s' not published", (int)len, payload);
}

/* A user is gone: remove the name and tell the others, now or, while Redis
 * is down, as soon as it is back (held in order with the messages). */
static void broker_user_gone(const char *user, size_t len)
{
    if (B.outbox.head == NULL && broker_redis_usable() &&
        presence_leave(B.presence, user, len, broker_on_cmd_done, NULL) == 0) {
        B.inflight++;
        return;
    }
    if (outbox_push(&B.outbox, OUTBOX_LEAVE, 0, 0, user, len, NULL, 0, 0) == NULL)
        log_msg(LOG_ERROR, "out of memory: leave of '%.*s' lost", (int)len, user);
}

static void broker_send_join_reply(struct broker_worker *w, uint32_t reqid, const char *user,
                                   size_t len, enum ipc_join_status st)
{
    struct ipc_msg m;

    ipc_msg_set(&m, IPC_JOIN_REPLY, reqid, (uint16_t)st, B.cfg->channel, B.cfg->channel_len, user,
                len, NULL, 0);
    ipc_link_send(w->link, &m);
}

static void broker_on_sadd(long long result, void *pd)
{
    struct broker_req *q = pd;
    struct broker_worker *w = broker_find_worker(q->worker_id);

    B.inflight--;
    if (w == NULL) {
        /* the worker went away while we asked: give the name back */
        if (result == 1)
            broker_user_gone(q->user, q->userlen);
    } else if (result == 1) {
        char *name = strdup(q->user);
        if (name == NULL || dict_add(&w->users, name, q->userlen, name) != 0) {
            free(name);
            broker_send_join_reply(w, q->reqid, q->user, q->userlen, IPC_JOIN_UNAVAILABLE);
            broker_user_gone(q->user, q->userlen);
        } else {
            broker_send_join_reply(w, q->reqid, q->user, q->userlen, IPC_JOIN_ACCEPTED);
            broker_announce_join(q->user, q->userlen);
        }
    } else {
        broker_send_join_reply(w, q->reqid, q->user, q->userlen,
                               result == 0 ? IPC_JOIN_TAKEN : IPC_JOIN_UNAVAILABLE);
    }
    free(q);
    broker_maybe_exit();
}

static void broker_send_publish_fail(struct broker_worker *w, uint32_t reqid, const char *user,
                                     size_t len, const char *reason)
{
    struct ipc_msg m;

    ipc_msg_set(&m, IPC_PUBLISH_FAIL, reqid, 0, B.cfg->channel, B.cfg->channel_len, user, len,
                reason, strlen(reason));
    ipc_link_send(w->link, &m);
}

static void broker_on_published(long long result, void *pd)
{
    struct broker_req *q = pd;
    struct broker_worker *w;

    B.inflight--;
    if (result < 0 && (w = broker_find_worker(q->worker_id)) != NULL)
        broker_send_publish_fail(w, q->reqid, q->user, q->userlen, "chat service unavailable");
    free(q);
    broker_maybe_exit();
}

static void broker_on_join(struct broker_worker *w, const struct ipc_msg *m)
{
    const struct ipc_field *user = &m->f[1];
    struct broker_req *q;

    if (user->len == 0 || user->len > BROKER_USER_MAX) {
        ipc_link_shutdown(w->link, "JOIN with a bad user name");
        return;
    }
    if (m->flags & IPC_JOIN_F_REREGISTER) {
        /* a user the worker held before this broker started: take it over
         * (if Redis is down, the restore at link-up re-adds it) */
        char *name = strndup((const char *)user->p, user->len);
        if (name == NULL || dict_add(&w->users, name, user->len, name) != 0) {
            free(name);
            return;
        }
        presence_hold(B.presence, name, user->len);
        return;
    }
    q = broker_req_new(w->id, m->id, user->p, user->len);
    if (q == NULL || presence_join(B.presence, q->user, q->userlen, broker_on_sadd, q) == -1) {
        broker_send_join_reply(w, m->id, (const char *)user->p, user->len, IPC_JOIN_UNAVAILABLE);
        free(q);
        return;
    }
    B.inflight++;
}

static void broker_on_leave(struct broker_worker *w, const struct ipc_msg *m)
{
    char *name = dict_del(&w->users, (const char *)m->f[1].p, m->f[1].len);

    if (name == NULL && (m->flags & IPC_LEAVE_F_ORPHAN)) {
        /* left while no broker ran: the name is still in Redis */
        broker_user_gone((const char *)m->f[1].p, m->f[1].len);
        return;
    }
    if (name == NULL) {
        log_msg(LOG_WARN, "worker %d: LEAVE for '%.*s', which it does not hold", w->slot,
                (int)m->f[1].len, (const char *)m->f[1].p);
        return;
    }
    broker_user_gone(name, m->f[1].len);
    free(name);
}

static void broker_on_publish(struct broker_worker *w, const struct ipc_msg *m)
{
    const struct ipc_field *user = &m->f[1], *text = &m->f[2];
    struct broker_req *q;
    char *payload = (char *)B.scratch;
    ssize_t len;

    if (dict_get(&w->users, (const char *)user->p, user->len) == NULL) {
        log_msg(LOG_WARN, "worker %d: PUBLISH for '%.*s', which it does not hold", w->slot,
                (int)user->len, (const char *)user->p);
        return;
    }
    len = chat_payload_message(payload, B.scratch_cap, (const char *)user->p, user->len, text->p,
                               text->len);
    if (len < 0) {
        broker_send_publish_fail(w, m->id, (const char *)user->p, user->len, "message too large");
        return;
    }
    if (!broker_redis_usable() || B.outbox.head != NULL) {
        /* Redis is away: hold the message, in order, within the limits */
        if (B.outbox.npublish >= (size_t)B.cfg->outbox_size ||
            outbox_push(&B.outbox, OUTBOX_PUBLISH, w->id, m->id, user->p, user->len, text->p,
                        text->len, util_now_ms() + (uint64_t)B.cfg->outbox_timeout) == NULL)
            broker_send_publish_fail(w, m->id, (const char *)user->p, user->len,
                                     "chat service unavailable");
        return;
    }
    q = broker_req_new(w->id, m->id, user->p, user->len);
    if (q == NULL || rlink_publish(B.redis, payload, (size_t)len, broker_on_published, q) == -1) {
        free(q);
        broker_send_publish_fail(w, m->id, (const char *)user->p, user->len,
                                 "chat service unavailable");
        return;
    }
    B.inflight++;
}

static void broker_on_redis_pong(long long result, void *pd)
{
    struct broker_req *q = pd;
    struct broker_worker *w = broker_find_worker(q->worker_id);
    struct ipc_msg pong;

    B.inflight--;
    if (w != NULL && result != -1) {
        ipc_msg_set(&pong, IPC_PONG, q->reqid, 0, B.cfg->channel, B.cfg->channel_len, NULL, 0, NULL,
                    0);
        ipc_link_send(w->link, &pong);
    }
    free(q);
    broker_maybe_exit();
}

/* PING(id) from a worker: answered with PONG(id) once Redis has executed
 * everything this broker sent before it (one connection keeps the order),
 * so the worker knows its earlier leaves are done. While Redis is down (or
 * leaves wait in the outbox) there is no answer: the worker keeps them. */
static void broker_on_ping(struct broker_worker *w, const struct ipc_msg *m)
{
    static const char *argv[1] = {"PING"};
    static const size_t lens[1] = {4};
    struct broker_req *q;

    if (B.outbox.head != NULL || !broker_redis_usable())
        return;
    q = broker_req_new(w->id, m->id, "", 0);
    if (q == NULL || rlink_command(B.redis, broker_on_redis_pong, q, 1, argv, lens) == -1) {
        free(q);
        return;
    }
    B.inflight++;
}

static void broker_send_link_state(struct broker_worker *w)
{
    struct ipc_msg m;

    ipc_msg_set(&m, IPC_LINK, 0, broker_redis_usable() ? IPC_LINK_UP : IPC_LINK_DOWN,
                B.cfg->channel, B.cfg->channel_len, NULL, 0, NULL, 0);
    ipc_link_send(w->link, &m);
}

static void broker_on_ipc(struct ipc_link *l, const struct ipc_msg *m, void *arg)
{
    struct broker_worker *w = arg;

    (void)l;
    if (m->type != IPC_HELLO && w->slot < 0) {
        ipc_link_shutdown(w->link, "message before HELLO");
        return;
    }
    switch (m->type) {
    case IPC_HELLO:
        w->slot = (int)m->id;
        if (!B.workers_ready && ++B.hellos >= B.cfg->workers)
            broker_set_ready("every worker is connected");
        log_msg(LOG_INFO, "worker %d connected (pid %.*s)", w->slot, (int)m->f[1].len,
                (const char *)m->f[1].p);
        broker_send_link_state(w);
        break;
    case IPC_JOIN:
        broker_on_join(w, m);
        break;
    case IPC_LEAVE:
        broker_on_leave(w, m);
        break;
    case IPC_PUBLISH:
        broker_on_publish(w, m);
        break;
    case IPC_PING:
        broker_on_ping(w, m);
        break;
    default:
        ipc_link_shutdown(w->link, "unexpected message type");
        break;
    }
}

static void broker_free_user(const char *key, size_t keylen, void *val, void *arg)
{
    (void)key;
    (void)arg;
    broker_user_gone(val, keylen);
    free(val);
}

static void broker_free_name(const char *key, size_t keylen, void *val, void *arg)
{
    (void)key;
    (void)keylen;
    (void)arg;
    free(val);
}

static void broker_on_ipc_close(struct ipc_link *l, const char *why, void *arg)
{
    struct broker_worker *w = arg;

    (void)l;
    log_msg(w->users.count ? LOG_WARN : LOG_INFO, "worker %d disconnected (%s), %zu user(s) left",
            w->slot, why, w->users.count);
    /* users it still held are gone: a crashed worker must not leave ghosts */
    dict_foreach(&w->users, broker_free_user, NULL);
    dict_deinit(&w->users);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        B.workers = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    ipc_link_free(w->link);
    free(w);
    broker_maybe_exit();
}

static void broker_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    for (;;) {
        struct broker_worker *w;
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (cfd == -1) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_errno(LOG_WARN, errno, "accept on the broker socket");
            return;
        }
        w = calloc(1, sizeof(*w));
        if (w != NULL)
            w->link =
                ipc_link_new(B.base, cfd, B.max_frame, broker_on_ipc, NULL, broker_on_ipc_close, w);
        if (w == NULL || w->link == NULL) {
            log_msg(LOG_ERROR, "out of memory accepting a worker");
            free(w);
            close(cfd);
            continue;
        }
        w->id = ++B.next_worker_id;
        w->slot = -1;
        w->pid = net_unix_peer_pid(cfd);
        dict_init(&w->users);
        w->next = B.workers;
        if (B.workers != NULL)
            B.workers->prev = w;
        B.workers = w;
    }
}

/* A worker has not read max-worker-backlog bytes of deliveries: it is
 * stopped or stuck. Holding more would grow the broker without bound, and
 * skipping messages would let its users chat on with a hole in what they
 * saw. So the worker goes, with a clear outcome for its users: the link is
 * dropped (what it held is freed now), the close callback removes its users
 * and announces their leaves as after a crash, and the master kills the
 * process, which closes their connections; their clients reconnect to the
 * worker started in its place. The other workers see nothing but the leaves. */
static void broker_drop_behind(struct broker_worker *w)
{
    log_msg(LOG_ERROR,
            "worker %d (pid %d) left %zu bytes unread (max-worker-backlog %zu): dropping it and "
            "its %zu user(s)",
            w->slot, (int)w->pid, ipc_link_pending(w->link), B.max_backlog, w->users.count);
    if (w->pid <= 0)
        log_msg(LOG_ERROR, "worker %d: pid unknown, the master cannot restart it", w->slot);
    else if (master_request_worker_kill(w->pid) == -1)
        log_errno(LOG_ERROR, errno, "worker %d: asking the master to restart it", w->slot);
    ipc_link_shutdown(w->link, "fell behind: max-worker-backlog");
}

static void broker_on_redis_message(const char *payload, size_t len, void *arg)
{
    struct broker_worker *w;
    struct ipc_msg m;
    ssize_t n;

    (void)arg;
    ipc_msg_set(&m, IPC_DELIVER, 0, 0, B.cfg->channel, B.cfg->channel_len, payload, len, NULL, 0);
    n = ipc_encode(B.scratch, B.scratch_cap, &m);
    if (n < 0) {
        log_msg(LOG_WARN, "dropping a %zu-byte message from redis: larger than the limit", len);
        return;
    }
    /* encoded once; the same bytes go to every worker, each first checked
     * against the bound with one comparison (a dropped link holds nothing,
     * so it is not dropped twice) */
    for (w = B.workers; w != NULL; w = w->next) {
        if (w->slot < 0)
            continue;
        if (ipc_link_pending(w->link) > B.max_backlog)
            broker_drop_behind(w);
        else
            ipc_link_send_encoded(w->link, B.scratch, (size_t)n);
    }
}

static void broker_hold_user(const char *key, size_t keylen, void *val, void *arg)
{
    (void)val;
    (void)arg;
    presence_hold(B.presence, key, keylen);
}

/* Send what was held while Redis was away, oldest first. */
static void broker_outbox_flush(void)
{
    struct outbox_item *it;

    while (broker_redis_usable() && (it = outbox_pop(&B.outbox)) != NULL) {
        if (it->kind == OUTBOX_LEAVE) {
            if (presence_leave(B.presence, outbox_user(it), it->userlen, broker_on_cmd_done,
                               NULL) == 0)
                B.inflight++;
        } else {
            struct broker_req *q =
                broker_req_new(it->worker_id, it->reqid, outbox_user(it), it->userlen);
            char *payload = (char *)B.scratch;
            ssize_t len = chat_payload_message(payload, B.scratch_cap, outbox_user(it), it->userlen,
                                               outbox_text(it), it->textlen);
            if (q != NULL && len >= 0 &&
                rlink_publish(B.redis, payload, (size_t)len, broker_on_published, q) == 0) {
                B.inflight++;
            } else {
                struct broker_worker *w = broker_find_worker(it->worker_id);
                free(q);
                if (w != NULL)
                    broker_send_publish_fail(w, it->reqid, outbox_user(it), it->userlen,
                                             "chat service unavailable");
            }
        }
        free(it);
    }
}

/* Redis came back (or up for the first time): make presence true again
 * (a restarted Redis lost the set), then send what was held. */
static void broker_on_redis_state(int up, void *arg)
{
    struct broker_worker *w;
    size_t held = 0;

    (void)arg;
    up = up && B.workers_ready;
    if (up) {
        presence_on_link_up(B.presence);
        for (w = B.workers; w != NULL; w = w->next) {
            dict_foreach(&w->users, broker_hold_user, NULL);
            held += w->users.count;
        }
        if (held > 0 || B.outbox.head != NULL)
            log_msg(LOG_INFO, "redis back: %zu user(s) re-added, %zu message(s) held to send", held,
                    B.outbox.npublish);
        broker_outbox_flush();
    }
    for (w = B.workers; w != NULL; w = w->next)
        if (w->slot >= 0)
            broker_send_link_state(w);
    broker_maybe_exit();
}

static void broker_set_ready(const char *why)
{
    B.workers_ready = 1;
    log_msg(LOG_DEBUG, "ready: %s", why);
    broker_on_redis_state(rlink_is_up(B.redis), NULL);
}

static void broker_ready_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (!B.workers_ready)
        broker_set_ready("waited long enough for the workers");
}

/* Messages held too long: their senders are told, nothing vanishes. */
static void broker_outbox_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct outbox_item *it;
    uint64_t now = util_now_ms();

    (void)fd;
    (void)what;
    (void)arg;
    while ((it = outbox_pop_expired(&B.outbox, now)) != NULL) {
        struct broker_worker *w = broker_find_worker(it->worker_id);
        if (w != NULL)
            broker_send_publish_fail(w, it->reqid, outbox_user(it), it->userlen,
                                     "chat service unavailable");
        free(it);
    }
}

static void broker_stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (!B.unregistered) {
        /* workers still connected or leaves still held: unregister anyway
         * (whoever is left is reaped by the other instances via the
         * heartbeat) and give Redis a moment to answer */
        struct timeval tv = util_ms_tv(BROKER_LAST_REPLIES_MS);
        log_msg(LOG_WARN, "shutdown timeout: unregistering with %ld redis command(s) pending",
                B.inflight);
        B.unregistered = 1;
        presence_stop(B.presence, NULL, NULL);
        evtimer_add(B.stop_timer, &tv);
        return;
    }
    log_msg(LOG_WARN, "exiting with %ld redis command(s) pending", B.inflight);
    event_base_loopexit(B.base, NULL);
}

/* SIGTERM: keep serving until the workers (stopped by the master too) have
 * said goodbye and Redis has answered, so no user is left in the set. */
static void broker_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct timeval tv = util_ms_tv(B.cfg->shutdown_timeout + BROKER_STOP_EXTRA_MS);

    (void)what;
    (void)arg;
    if (sig == SIGINT || B.stopping) {
        event_base_loopexit(B.base, NULL);
        return;
    }
    log_msg(LOG_INFO, "stopping: waiting for workers to leave");
    B.stopping = 1;
    event_del(B.accept_ev);
    /* the workers have shutdown-timeout for their sessions; leaves follow */
    evtimer_add(B.stop_timer, &tv);
    broker_maybe_exit();
}

int broker_main(const struct cfg *cfg, const char *instance_id)
{
    struct rlink_handlers h = {broker_on_redis_message, broker_on_redis_state, NULL};
    char err[NET_ERR_LEN];
    int rc = RC_EXIT_OK;

    memset(&B, 0, sizeof(B));
    B.cfg = cfg;
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    B.max_frame = ipc_frame_max_for((size_t)cfg->max_message_size);
    B.max_backlog = (size_t)cfg->max_worker_backlog;
    B.scratch_cap = B.max_frame;
    B.scratch = malloc(B.scratch_cap);
    B.base = event_base_new();
    if (B.scratch == NULL || B.base == NULL) {
        log_msg(LOG_ERROR, "out of memory");
        return RC_EXIT_RUNTIME;
    }
    B.listen_fd = net_unix_listen(cfg->broker_socket, err);
    if (B.listen_fd == -1) {
        log_msg(LOG_ERROR, "%s", err);
        return RC_EXIT_FATAL;
    }
    B.redis = rlink_new(B.base, cfg, &h, err, sizeof(err));
    if (B.redis == NULL) {
        log_msg(LOG_ERROR, "redis: %s", err);
        unlink(cfg->broker_socket);
        return RC_EXIT_FATAL;
    }
    B.instance_id = instance_id;
    B.presence = presence_new(B.base, B.redis, cfg, instance_id);
    outbox_init(&B.outbox);
    B.outbox_ev = event_new(B.base, -1, EV_PERSIST, broker_outbox_tick_cb, NULL);
    B.ready_ev = evtimer_new(B.base, broker_ready_cb, NULL);
    if (B.presence == NULL || B.outbox_ev == NULL || B.ready_ev == NULL) {
        log_msg(LOG_ERROR, "out of memory");
        return RC_EXIT_RUNTIME;
    }
    {
        struct timeval tv = util_ms_tv(BROKER_OUTBOX_TICK_MS);
        struct timeval wait = util_ms_tv(BROKER_WORKERS_WAIT_MS);
        event_add(B.outbox_ev, &tv);
        event_add(B.ready_ev, &wait);
    }
    B.accept_ev = event_new(B.base, B.listen_fd, EV_READ | EV_PERSIST, broker_accept_cb, NULL);
    B.term_ev = evsignal_new(B.base, SIGTERM, broker_signal_cb, NULL);
    B.int_ev = evsignal_new(B.base, SIGINT, broker_signal_cb, NULL);
    B.stop_timer = evtimer_new(B.base, broker_stop_timer_cb, NULL);
    event_add(B.accept_ev, NULL);
    event_add(B.term_ev, NULL);
    event_add(B.int_ev, NULL);
    log_msg(LOG_INFO, "listening on %s; redis %s:%d%s; instance %s", cfg->broker_socket,
            cfg->redis_host, cfg->redis_port, cfg->redis_tls ? " (TLS)" : "", instance_id);

    if (event_base_dispatch(B.base) == -1)
        rc = RC_EXIT_RUNTIME;
    B.stopping = B.unregistered = 1; /* callbacks run by the cleanup send nothing */

    unlink(cfg->broker_socket);
    close(B.listen_fd);
    while (B.workers != NULL) {
        struct broker_worker *w = B.workers;
        B.workers = w->next;
        dict_foreach(&w->users, broker_free_name, NULL);
        dict_deinit(&w->users);
        ipc_link_free(w->link);
        free(w);
    }
    {
        struct outbox_item *it;
        while ((it = outbox_pop(&B.outbox)) != NULL) {
            if (it->kind == OUTBOX_LEAVE)
                log_msg(LOG_WARN, "exiting with the leave of '%.*s' unsent: redis down",
                        (int)it->userlen, outbox_user(it));
            free(it);
        }
    }
    rlink_free(B.redis);
    presence_free(B.presence);
    event_free(B.outbox_ev);
    event_free(B.ready_ev);
    event_free(B.accept_ev);
    event_free(B.term_ev);
    event_free(B.int_ev);
    event_free(B.stop_timer);
    event_base_free(B.base);
    free(B.scratch);
    log_msg(LOG_INFO, "stopped");
    return rc;
}
