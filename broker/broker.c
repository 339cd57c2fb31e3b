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

#include "hiredis_compat.h"

#include "broker_fill.h"
#include "broker_replay.h"
#include "broker_rooms.h"
#include "chat_payload.h"
#include "dict.h"
#include "history.h"
#include "ipc.h"
#include "ipc_link.h"
#include "log.h"
#include "metrics.h"
#include "master.h"
#include "net.h"
#include "outbox.h"
#include "presence.h"
#include "redis_link.h"
#include "replica_wait.h"
#include "room.h"
#include "stream_id.h"
#include "util.h"

#define BROKER_USER_MAX 128         /* bytes; workers validate names, we only bound them */
#define BROKER_STOP_EXTRA_MS 2000   /* past shutdown-timeout, for the last leaves */
#define BROKER_OUTBOX_TICK_MS 200   /* how often held messages are checked for expiry */
#define BROKER_WORKERS_WAIT_MS 2000 /* after a start, for every worker to say HELLO */
#define BROKER_LAST_REPLIES_MS 1000 /* unregistered at the stop timeout: Redis's last answers */

/* A name a worker holds in a room: the key of its users dict. */
struct broker_held {
    struct broker_room *room; /* holds one of the room's references */
    size_t keylen;
    char key[]; /* room, NUL, user */
};

/* A room one worker has members in: the value of its rooms dict. */
struct broker_worker_room {
    struct broker_room *room;
    long n;
};

/* One connected worker. Owned by the broker's list. */
struct broker_worker {
    struct broker_worker *prev, *next;
    struct ipc_link *link;
    uint64_t id;       /* never reused: pending Redis replies find their worker by it */
    int slot;          /* -1 until HELLO */
    pid_t pid;         /* from the socket (SO_PEERCRED): whom the master kills if it falls behind */
    struct dict users; /* "room\0user" -> struct broker_held */
    struct dict rooms; /* room name -> struct broker_worker_room: who gets a room's messages */
};

/* A request waiting for Redis: which worker asked, in which room, about
 * whom. A granted join may then wait for its room's subscription. */
struct broker_req {
    struct broker_wait wait; /* first: brooms frees what waits at exit */
    uint64_t worker_id;
    uint32_t reqid;
    struct broker_room *room; /* joins: the reference the join holds */
    uint16_t flags;           /* publishes: IPC_PUBLISH_F_ACK */
    enum ipc_join_mode mode;  /* joins: the history asked for, in `hist` */
    char hist[STREAM_ID_MAX];
    size_t histlen;
    char roomname[ROOM_NAME_MAX + 1];
    size_t roomlen, userlen;
    char user[]; /* NUL-terminated */
};

#define BROKER_KEY_MAX (ROOM_NAME_MAX + 1 + BROKER_USER_MAX)

static struct {
    struct event_base *base;
    const struct cfg *cfg;
    struct rlink *redis;
    struct presence *presence;
    struct history *history;
    struct rwait *wait; /* redis-wait-replicas > 0: acks wait for the replicas */
    struct broker_rooms rooms;
    struct bfill fill;
    struct breplay replay;
    char feed[ROOM_KEY_MAX]; /* the default room's feed channel (history on) */
    size_t feed_len;
    /* the seed line that follows a default-room message on the feed: our
     * own copy for seed-era instances, not delivered twice */
    char *echo;
    size_t echo_len;
    int echo_pending;
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
    uint8_t *scratch;   /* formats payloads and encodes DELIVER frames */
    size_t scratch_cap;
    char direct[ROOM_KEY_MAX]; /* the direct messages' channel */
    size_t direct_len;
    long inflight;     /* Redis commands not answered yet */
    int workers_ready; /* every worker has said HELLO (or the wait is over) */
    int hellos;        /* HELLOs received since start */
    int told_master;   /* the last "redis usable" state the master heard */
    struct event *ready_ev;
    int stopping;
    int unregistered; /* stop: the instance is gone from Redis */
} B;

static void broker_set_ready(const char *why);
static void broker_send_seen(struct broker_worker *w, const struct broker_room *room);
static void broker_on_seen(struct broker_worker *w, const struct ipc_msg *m);

/* Redis is up and every worker is here to hear what we publish: a broker
 * that just (re)started holds messages and leaves (in the outbox) until its
 * workers have reconnected, so none of them misses those announcements. */
static int broker_redis_usable(void)
{
    /* and, after a reconnect, every room subscribed again: what is
     * published before would miss this instance's members */
    return B.workers_ready && rlink_is_up(B.redis) && B.rooms.resubscribing == 0;
}

static struct broker_worker *broker_find_worker(uint64_t id)
{
    struct broker_worker *w;

    for (w = B.workers; w != NULL; w = w->next)
        if (w->id == id)
            return w;
    return NULL;
}

static struct broker_req *broker_req_new(uint64_t worker_id, uint32_t reqid, const void *room,
                                         size_t roomlen, const void *user, size_t len)
{
    struct broker_req *q = malloc(sizeof(*q) + len + 1);

    if (q == NULL)
        return NULL;
    memset(q, 0, sizeof(*q));
    q->worker_id = worker_id;
    q->reqid = reqid;
    q->roomlen = roomlen < ROOM_NAME_MAX ? roomlen : ROOM_NAME_MAX;
    memcpy(q->roomname, room, q->roomlen);
    q->roomname[q->roomlen] = '\0';
    q->userlen = len;
    memcpy(q->user, user, len);
    q->user[len] = '\0';
    return q;
}

/* "room\0user", the key of a held name; -1 when too long. */
static ssize_t broker_key(char *out, const void *room, size_t rlen, const void *user, size_t ulen)
{
    if (rlen > ROOM_NAME_MAX || ulen > BROKER_USER_MAX)
        return -1;
    memcpy(out, room, rlen);
    out[rlen] = '\0';
    memcpy(out + rlen + 1, user, ulen);
    return (ssize_t)(rlen + 1 + ulen);
}

static const char *broker_held_user(const struct broker_held *h)
{
    return h->key + h->room->len + 1;
}

static size_t broker_held_ulen(const struct broker_held *h)
{
    return h->keylen - h->room->len - 1;
}

static struct broker_held *broker_held_get(const struct broker_worker *w, const void *room,
                                           size_t rlen, const void *user, size_t ulen)
{
    char key[BROKER_KEY_MAX];
    ssize_t n = broker_key(key, room, rlen, user, ulen);

    return n < 0 ? NULL : dict_get(&w->users, key, (size_t)n);
}

/* w holds user in room from now on; takes over one reference of room. */
static int broker_hold(struct broker_worker *w, struct broker_room *room, const void *user,
                       size_t ulen)
{
    struct broker_held *h = malloc(sizeof(*h) + room->len + 1 + ulen);
    struct broker_worker_room *wr = dict_get(&w->rooms, room->name, room->len);

    if (h == NULL)
        return -1;
    h->room = room;
    h->keylen = (size_t)broker_key(h->key, room->name, room->len, user, ulen);
    if (wr == NULL) {
        wr = calloc(1, sizeof(*wr));
        if (wr == NULL || dict_add(&w->rooms, room->name, room->len, wr) != 0) {
            free(wr);
            free(h);
            return -1;
        }
        wr->room = room;
        if (room->have_pos && w->slot >= 0)
            broker_send_seen(w, room);
    }
    if (dict_add(&w->users, h->key, h->keylen, h) != 0) {
        if (wr->n == 0)
            free(dict_del(&w->rooms, room->name, room->len));
        free(h);
        return -1;
    }
    wr->n++;
    return 0;
}

/* w no longer holds h's name (h is freed; its room reference is the
 * caller's to give back). */
static void broker_unhold(struct broker_worker *w, struct broker_held *h)
{
    struct broker_worker_room *wr = dict_get(&w->rooms, h->room->name, h->room->len);

    dict_del(&w->users, h->key, h->keylen);
    if (wr != NULL && --wr->n == 0)
        free(dict_del(&w->rooms, h->room->name, h->room->len));
    free(h);
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

/* Publish a notice on a room's channel. */
static int broker_publish(const char *room, size_t rlen, const char *payload, size_t len,
                          rlink_reply_fn fn, void *pd)
{
    char channel[ROOM_KEY_MAX];
    ssize_t n = room_key(channel, sizeof(channel), B.cfg, room, rlen, ROOM_KEY_CHANNEL, NULL);

    if (n < 0)
        return -1;
    return rlink_publish(B.redis, channel, (size_t)n, payload, len, fn, pd);
}

/* Publish "foo: has joined the chat!" in the room (leaves are presence.c's:
 * Redis announces them only when the name was still listed). */
static void broker_announce_join(const struct broker_room *room, const char *user, size_t ulen)
{
    char *payload = (char *)B.scratch;
    ssize_t len =
        chat_payload_joined(chat_payload_form_of(room->len), payload, B.scratch_cap, user, ulen);

    if (len < 0 || !B.cfg->announce)
        return;
    if (broker_publish(room->name, room->len, payload, (size_t)len, broker_on_cmd_done, NULL) == 0)
        B.inflight++;
    else
        log_msg(LOG_WARN, "redis down: notice '%.*s' not published", (int)len, payload);
}

/* A user left a room: remove the name and tell the room, now or, while
 * Redis is down, as soon as it is back (held in order with the messages). */
static void broker_user_gone(const char *room, size_t rlen, const char *user, size_t len)
{
    if (B.outbox.head == NULL && broker_redis_usable() &&
        presence_leave(B.presence, room, rlen, user, len, broker_on_cmd_done, NULL) == 0) {
        B.inflight++;
        return;
    }
    if (outbox_push(&B.outbox, OUTBOX_LEAVE, 0, 0, room, rlen, user, len, NULL, 0, 0) == NULL)
        log_msg(LOG_ERROR, "out of memory: leave of '%.*s' lost", (int)len, user);
}

/* A held name goes (leave, or its worker went away). */
static void broker_release(struct broker_worker *w, struct broker_held *h)
{
    struct broker_room *room = h->room;

    broker_user_gone(room->name, room->len, broker_held_user(h), broker_held_ulen(h));
    broker_unhold(w, h);
    brooms_unref(&B.rooms, room);
}

static void broker_send_join_reply(struct broker_worker *w, uint32_t reqid, const char *room,
                                   size_t rlen, const char *user, size_t len,
                                   enum ipc_join_status st)
{
    struct ipc_msg m;

    ipc_msg_set(&m, IPC_JOIN_REPLY, reqid, (uint16_t)st, room, rlen, user, len, NULL, 0);
    ipc_link_send(w->link, &m);
}

static void broker_reply_req(const struct broker_req *q, enum ipc_join_status st)
{
    struct broker_worker *w = broker_find_worker(q->worker_id);

    if (w != NULL)
        broker_send_join_reply(w, q->reqid, q->roomname, q->roomlen, q->user, q->userlen, st);
}

/* The user may be welcomed; then the history it asked for follows (what
 * is published from now on reaches its worker live, after the reply). */
static void broker_join_granted(const struct broker_req *q)
{
    broker_reply_req(q, IPC_JOIN_ACCEPTED);
    if (q->mode == IPC_JOIN_LAST || q->mode == IPC_JOIN_AFTER)
        breplay_start(&B.replay, q->worker_id, q->reqid, q->roomname, q->roomlen, q->user,
                      q->userlen, q->mode, q->hist, q->histlen);
}

/* A granted join's room is subscribed: the user may be welcomed. */
static void broker_on_room_ready(struct broker_wait *wait, void *arg)
{
    struct broker_req *q = (struct broker_req *)wait;

    (void)arg;
    broker_join_granted(q);
    free(q);
}

static void broker_on_sadd(long long result, void *pd)
{
    struct broker_req *q = pd;
    struct broker_worker *w = broker_find_worker(q->worker_id);
    struct broker_room *room = q->room;

    B.inflight--;
    if (w == NULL) {
        /* the worker went away while we asked: give the name back */
        if (result == 1)
            broker_user_gone(room->name, room->len, q->user, q->userlen);
        brooms_unref(&B.rooms, room);
    } else if (result == 1) {
        if (broker_hold(w, room, q->user, q->userlen) != 0) {
            broker_reply_req(q, IPC_JOIN_UNAVAILABLE);
            broker_user_gone(room->name, room->len, q->user, q->userlen);
            brooms_unref(&B.rooms, room);
        } else {
            broker_announce_join(room, q->user, q->userlen);
            if (brooms_wait(room, &q->wait))
                return; /* broker_on_room_ready answers */
            broker_join_granted(q);
        }
    } else {
        broker_reply_req(q, result == 0 ? IPC_JOIN_TAKEN : IPC_JOIN_UNAVAILABLE);
        brooms_unref(&B.rooms, room);
    }
    free(q);
    broker_maybe_exit();
}

/* For the replays: a frame to a worker, -1 when it is gone. */
static int broker_send_to(uint64_t worker_id, const struct ipc_msg *m, void *arg)
{
    struct broker_worker *w = broker_find_worker(worker_id);

    (void)arg;
    if (w == NULL)
        return -1;
    ipc_link_send(w->link, m);
    return 0;
}

static void broker_send_publish_fail(struct broker_worker *w, uint32_t reqid, uint16_t flags,
                                     const char *room, size_t rlen, const char *user, size_t len,
                                     const char *reason)
{
    struct ipc_msg m;

    ipc_msg_set(&m, IPC_PUBLISH_FAIL, reqid, flags, room, rlen, user, len, reason, strlen(reason));
    ipc_link_send(w->link, &m);
}

static void broker_fail_req(const struct broker_req *q, uint16_t flags, const char *reason)
{
    struct broker_worker *w = broker_find_worker(q->worker_id);

    if (w != NULL)
        broker_send_publish_fail(w, q->reqid, flags, q->roomname, q->roomlen, q->user, q->userlen,
                                 reason);
}

static void broker_ack(const struct broker_req *q, const char *id, size_t idlen)
{
    struct broker_worker *w = broker_find_worker(q->worker_id);
    struct ipc_msg m;

    if (w == NULL)
        return;
    ipc_msg_set(&m, IPC_PUBLISH_OK, q->reqid, 0, q->roomname, q->roomlen, q->user, q->userlen, id,
                idlen);
    ipc_link_send(w->link, &m);
}

/* WAIT's verdict on a stored send (redis-wait-replicas): the ack, or an
 * error that says the message may not survive a failover. */
static void broker_on_replicated(int replicated, long long replicas, void *pd)
{
    struct broker_req *q = pd;
    char why[128];

    B.inflight--;
    if (replicated) {
        broker_ack(q, q->hist, q->histlen);
    } else {
        snprintf(why, sizeof(why), "not replicated: %lld of %d replica(s) within %ld ms",
                 replicas < 0 ? 0 : replicas, B.cfg->redis_wait_replicas,
                 B.cfg->redis_wait_timeout);
        metrics_inc(MS_REDIS_NOT_REPLICATED);
        broker_fail_req(q, 0, why);
    }
    free(q);
    broker_maybe_exit();
}

static void broker_on_stored(int ok, const char *id, size_t idlen, void *pd)
{
    struct broker_req *q = pd;

    if (ok && (q->flags & IPC_PUBLISH_F_ACK) && B.wait != NULL && idlen < sizeof(q->hist)) {
        memcpy(q->hist, id, idlen);
        q->histlen = idlen;
        if (rwait_add(B.wait, broker_on_replicated, q) == 0)
            return; /* still in flight */
        broker_on_replicated(0, -1, q);
        return;
    }
    B.inflight--;
    if (!ok)
        broker_fail_req(q, 0, "chat service unavailable");
    else if (q->flags & IPC_PUBLISH_F_ACK)
        broker_ack(q, id, idlen);
    free(q);
    broker_maybe_exit();
}

/* Store and publish a message (the room by name: it may be gone from the
 * table by the time an outbox item is sent); q is answered. */
static int broker_store(const char *room, size_t rlen, const char *user, size_t ulen,
                        const void *text, size_t tlen, struct broker_req *q)
{
    if (history_publish(B.history, room, rlen, user, ulen, text, tlen, (char *)B.scratch,
                        B.scratch_cap, broker_on_stored, q) == -1)
        return -1;
    metrics_inc(MS_PUBLISHED);
    B.inflight++;
    return 0;
}

/* The room field of a request: "" or a valid room name. */
static int broker_room_ok(struct broker_worker *w, const struct ipc_field *room)
{
    if (room->len == 0 || room_name_check((const char *)room->p, room->len) == NULL)
        return 1;
    ipc_link_shutdown(w->link, "a bad room name");
    return 0;
}

/* brooms_ref; a new default room is subscribed already (the seed channel
 * is the link's), so where its stream is is read now. */
static struct broker_room *broker_room_ref(const char *name, size_t len, int limited)
{
    int is_new = len == 0 && brooms_get(&B.rooms, "", 0) == NULL;
    struct broker_room *r = brooms_ref(&B.rooms, name, len, limited);

    if (r != NULL && is_new && broker_redis_usable())
        bfill_on_subscribed(&B.fill, r);
    else if (r != NULL && is_new)
        bfill_hold(&B.fill, r); /* until the link is up and its gap read */
    return r;
}

static void broker_on_join(struct broker_worker *w, const struct ipc_msg *m)
{
    const struct ipc_field *rf = &m->f[0], *user = &m->f[1];
    struct broker_room *room;
    struct broker_req *q;

    if (user->len == 0 || user->len > BROKER_USER_MAX) {
        ipc_link_shutdown(w->link, "JOIN with a bad user name");
        return;
    }
    if (!broker_room_ok(w, rf))
        return;
    if (m->flags == IPC_JOIN_REREGISTER) {
        /* a user the worker held before this broker started: take it over
         * (if Redis is down, the restore at link-up re-adds it) */
        if (broker_held_get(w, rf->p, rf->len, user->p, user->len) != NULL)
            return;
        room = broker_room_ref((const char *)rf->p, rf->len, 0);
        if (room == NULL)
            return;
        if (broker_hold(w, room, user->p, user->len) != 0) {
            brooms_unref(&B.rooms, room);
            return;
        }
        if (rlink_is_up(B.redis))
            presence_hold(B.presence, room->name, room->len, (const char *)user->p, user->len);
        return;
    }
    room = broker_room_ref((const char *)rf->p, rf->len, 1);
    if (room == NULL) {
        broker_send_join_reply(
            w, m->id, (const char *)rf->p, rf->len, (const char *)user->p, user->len,
            brooms_get(&B.rooms, (const char *)rf->p, rf->len) == NULL ? IPC_JOIN_ROOMS_FULL
                                                                       : IPC_JOIN_UNAVAILABLE);
        return;
    }
    q = broker_req_new(w->id, m->id, rf->p, rf->len, user->p, user->len);
    if (q != NULL) {
        q->room = room;
        q->mode = (enum ipc_join_mode)m->flags;
        q->histlen = m->f[2].len < sizeof(q->hist) ? m->f[2].len : 0;
        memcpy(q->hist, m->f[2].p, q->histlen);
    }
    if (q == NULL || presence_join(B.presence, room->name, room->len, q->user, q->userlen,
                                   broker_on_sadd, q) == -1) {
        broker_send_join_reply(w, m->id, (const char *)rf->p, rf->len, (const char *)user->p,
                               user->len, IPC_JOIN_UNAVAILABLE);
        free(q);
        brooms_unref(&B.rooms, room);
        return;
    }
    B.inflight++;
}

static void broker_on_leave(struct broker_worker *w, const struct ipc_msg *m)
{
    const struct ipc_field *rf = &m->f[0], *user = &m->f[1];
    struct broker_held *h;

    if (!broker_room_ok(w, rf))
        return;
    h = broker_held_get(w, rf->p, rf->len, user->p, user->len);
    if (h == NULL && (m->flags & IPC_LEAVE_F_ORPHAN)) {
        /* left while no broker ran: the name is still in Redis */
        broker_user_gone((const char *)rf->p, rf->len, (const char *)user->p, user->len);
        return;
    }
    if (h == NULL) {
        log_msg(LOG_WARN, "worker %d: LEAVE for '%.*s' in room '%.*s', which it does not hold",
                w->slot, (int)user->len, (const char *)user->p, (int)rf->len, (const char *)rf->p);
        return;
    }
    broker_release(w, h);
}

/* A request about a name the worker must hold in the room; NULL (logged)
 * when it does not. */
static struct broker_held *broker_held_for(struct broker_worker *w, const struct ipc_msg *m)
{
    const struct ipc_field *rf = &m->f[0], *user = &m->f[1];
    struct broker_held *h = broker_held_get(w, rf->p, rf->len, user->p, user->len);

    if (h == NULL)
        log_msg(LOG_WARN, "worker %d: %s for '%.*s' in room '%.*s', which it does not hold",
                w->slot, ipc_type_name(m->type), (int)user->len, (const char *)user->p,
                (int)rf->len, (const char *)rf->p);
    return h;
}

static void broker_on_publish(struct broker_worker *w, const struct ipc_msg *m)
{
    const struct ipc_field *user = &m->f[1], *text = &m->f[2];
    struct broker_held *h = broker_held_for(w, m);
    struct broker_req *q;
    char *payload = (char *)B.scratch;
    ssize_t len;

    if (h == NULL)
        return;
    len = chat_payload_message(chat_payload_form_of(h->room->len), payload, B.scratch_cap,
                               (const char *)user->p, user->len, text->p, text->len);
    if (len < 0) {
        broker_send_publish_fail(w, m->id, 0, h->room->name, h->room->len, (const char *)user->p,
                                 user->len, "message too large");
        return;
    }
    if (!broker_redis_usable() || B.outbox.head != NULL) {
        /* Redis is away: hold the message, in order, within the limits */
        struct outbox_item *it = NULL;
        if (B.outbox.npublish < (size_t)B.cfg->outbox_size)
            it = outbox_push(&B.outbox, OUTBOX_PUBLISH, w->id, m->id, h->room->name, h->room->len,
                             user->p, user->len, text->p, text->len,
                             util_now_ms() + (uint64_t)B.cfg->outbox_timeout);
        if (it != NULL) {
            it->flags = m->flags;
        } else {
            metrics_inc(MS_OUTBOX_DROPPED);
            broker_send_publish_fail(w, m->id, 0, h->room->name, h->room->len,
                                     (const char *)user->p, user->len, "chat service unavailable");
        }
        return;
    }
    q = broker_req_new(w->id, m->id, h->room->name, h->room->len, user->p, user->len);
    if (q != NULL)
        q->flags = m->flags;
    if (q == NULL || broker_store(h->room->name, h->room->len, (const char *)user->p, user->len,
                                  text->p, text->len, q) == -1) {
        free(q);
        broker_send_publish_fail(w, m->id, 0, h->room->name, h->room->len, (const char *)user->p,
                                 user->len, "chat service unavailable");
    }
}

static void broker_on_direct_sent(long long result, void *pd)
{
    struct broker_req *q = pd;

    B.inflight--;
    if (result == 0)
        broker_fail_req(q, IPC_FAIL_F_DIRECT, "user not present");
    else if (result < 0)
        broker_fail_req(q, IPC_FAIL_F_DIRECT, "chat service unavailable");
    free(q);
    broker_maybe_exit();
}

/* DIRECT(room, from, to, text): published on the direct channel only if
 * `to` is in the room (one script); never held while Redis is away. */
static void broker_on_direct(struct broker_worker *w, const struct ipc_msg *m)
{
    const struct ipc_field *rf = &m->f[0], *from = &m->f[1], *to = &m->f[2], *text = &m->f[3];
    struct broker_held *h = broker_held_for(w, m);
    struct broker_req *q;
    char *payload = (char *)B.scratch;
    ssize_t len;

    if (h == NULL)
        return;
    len = chat_payload_direct(payload, B.scratch_cap, (const char *)rf->p, rf->len,
                              (const char *)from->p, from->len, (const char *)to->p, to->len,
                              text->p, text->len);
    q = broker_req_new(w->id, m->id, rf->p, rf->len, from->p, from->len);
    if (q == NULL || len < 0 || to->len == 0 || to->len > BROKER_USER_MAX ||
        !broker_redis_usable() ||
        presence_direct(B.presence, h->room->name, h->room->len, (const char *)to->p, to->len,
                        payload, (size_t)len, broker_on_direct_sent, q) == -1) {
        free(q);
        broker_send_publish_fail(w, m->id, IPC_FAIL_F_DIRECT, h->room->name, h->room->len,
                                 (const char *)from->p, from->len,
                                 len < 0 ? "message too large" : "chat service unavailable");
        return;
    }
    B.inflight++;
}

static void broker_send_who_reply(struct broker_worker *w, const struct broker_req *q,
                                  uint16_t flags, const char *count, const char *names,
                                  size_t nameslen)
{
    struct ipc_msg m;

    ipc_msg_set(&m, IPC_WHO_REPLY, q->reqid, flags, q->roomname, q->roomlen, q->user, q->userlen,
                count, strlen(count));
    ipc_msg_set_field(&m, 3, names, nameslen);
    ipc_link_send(w->link, &m);
}

/* The who script's answer {count, names}: names joined with '\n'. */
static void broker_on_who(const void *reply_, void *pd)
{
    const redisReply *reply = reply_;
    struct broker_req *q = pd;
    struct broker_worker *w = broker_find_worker(q->worker_id);
    char count[24], *names = (char *)B.scratch;
    size_t i, len = 0;

    B.inflight--;
    if (w == NULL) {
        free(q);
        broker_maybe_exit();
        return;
    }
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        broker_send_who_reply(w, q, IPC_WHO_UNAVAILABLE, "", "", 0);
        free(q);
        broker_maybe_exit();
        return;
    }
    snprintf(count, sizeof(count), "%lld", reply->element[0]->integer);
    for (i = 0; i < reply->element[1]->elements; i++) {
        const redisReply *e = reply->element[1]->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len > BROKER_USER_MAX ||
            memchr(e->str, '\n', e->len) != NULL || len + e->len + 1 > B.scratch_cap)
            continue;
        if (len > 0)
            names[len++] = '\n';
        memcpy(names + len, e->str, e->len);
        len += e->len;
    }
    broker_send_who_reply(w, q, 0, count, names, len);
    free(q);
    broker_maybe_exit();
}

static void broker_on_who_request(struct broker_worker *w, const struct ipc_msg *m)
{
    struct broker_held *h = broker_held_for(w, m);
    struct broker_req *q;

    if (h == NULL)
        return;
    q = broker_req_new(w->id, m->id, h->room->name, h->room->len, m->f[1].p, m->f[1].len);
    if (q == NULL || !broker_redis_usable() ||
        presence_who(B.presence, h->room->name, h->room->len, B.cfg->presence_max, broker_on_who,
                     q) == -1) {
        if (q != NULL)
            broker_send_who_reply(w, q, IPC_WHO_UNAVAILABLE, "", "", 0);
        free(q);
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
        ipc_msg_set(&pong, IPC_PONG, q->reqid, 0, "", 0, NULL, 0, NULL, 0);
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
    q = broker_req_new(w->id, m->id, "", 0, "", 0);
    if (q == NULL || rlink_command(B.redis, broker_on_redis_pong, q, 1, argv, lens) == -1) {
        free(q);
        return;
    }
    B.inflight++;
}

static void broker_send_link_state(struct broker_worker *w)
{
    struct ipc_msg m;

    ipc_msg_set(&m, IPC_LINK, 0, broker_redis_usable() ? IPC_LINK_UP : IPC_LINK_DOWN, "", 0, NULL,
                0, NULL, 0);
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
    case IPC_DIRECT:
        broker_on_direct(w, m);
        break;
    case IPC_WHO:
        broker_on_who_request(w, m);
        break;
    case IPC_PING:
        broker_on_ping(w, m);
        break;
    case IPC_SEEN:
        broker_on_seen(w, m);
        break;
    default:
        ipc_link_shutdown(w->link, "unexpected message type");
        break;
    }
}

/* Free what a worker held; with `announce`, its names leave their rooms. */
static void broker_worker_clear(struct broker_worker *w, int announce)
{
    struct broker_held *h;
    struct broker_worker_room *wr;

    while ((h = dict_any(&w->users)) != NULL) {
        if (announce) {
            broker_release(w, h);
        } else {
            dict_del(&w->users, h->key, h->keylen);
            free(h);
        }
    }
    while ((wr = dict_any(&w->rooms)) != NULL) {
        dict_del(&w->rooms, wr->room->name, wr->room->len);
        free(wr);
    }
    dict_deinit(&w->users);
    dict_deinit(&w->rooms);
}

static void broker_on_ipc_close(struct ipc_link *l, const char *why, void *arg)
{
    struct broker_worker *w = arg;

    (void)l;
    log_msg(w->users.count ? LOG_WARN : LOG_INFO, "worker %d disconnected (%s), %zu user(s) left",
            w->slot, why, w->users.count);
    /* users it still held are gone: a crashed worker must not leave ghosts */
    broker_worker_clear(w, 1);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        B.workers = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    ipc_link_free(w->link);
    free(w);
    metrics_sub(MS_WORKERS_CONNECTED, 1);
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
        dict_init(&w->rooms);
        w->next = B.workers;
        if (B.workers != NULL)
            B.workers->prev = w;
        B.workers = w;
        metrics_inc(MS_WORKERS_CONNECTED);
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
    metrics_inc(MS_WORKERS_BEHIND);
    if (w->pid <= 0)
        log_msg(LOG_ERROR, "worker %d: pid unknown, the master cannot restart it", w->slot);
    else if (master_request_worker_kill(w->pid) == -1)
        log_errno(LOG_ERROR, errno, "worker %d: asking the master to restart it", w->slot);
    ipc_link_shutdown(w->link, "fell behind: max-worker-backlog");
}

/* Send the same encoded bytes to every worker with a member in room (each
 * first checked against the bound with one comparison; a dropped link
 * holds nothing, so it is not dropped twice). */
static void broker_fan_out(const struct broker_room *room, size_t n)
{
    struct broker_worker *w, *next;

    for (w = B.workers; w != NULL; w = next) {
        next = w->next;
        if (w->slot < 0 || dict_get(&w->rooms, room->name, room->len) == NULL)
            continue;
        if (ipc_link_pending(w->link) > B.max_backlog)
            broker_drop_behind(w);
        else
            ipc_link_send_encoded(w->link, B.scratch, n);
    }
}

/* A direct message goes to the one worker holding its addressee. */
static void broker_on_direct_message(const char *payload, size_t len)
{
    struct chat_direct d;
    struct broker_worker *w;
    struct ipc_msg m;
    ssize_t n;

    if (chat_payload_direct_parse(payload, len, &d) == -1) {
        log_msg(LOG_WARN, "dropping a malformed %zu-byte direct message from redis", len);
        return;
    }
    for (w = B.workers; w != NULL; w = w->next) {
        if (w->slot < 0 || broker_held_get(w, d.room, d.rlen, d.to, d.tolen) == NULL)
            continue;
        ipc_msg_set(&m, IPC_DELIVER_DIRECT, 0, 0, d.room, d.rlen, d.to, d.tolen, d.from, d.flen);
        ipc_msg_set_field(&m, 3, d.text, d.tlen);
        n = ipc_encode(B.scratch, B.scratch_cap, &m);
        if (n > 0)
            ipc_link_send_encoded(w->link, B.scratch, (size_t)n);
        return;
    }
}

static void broker_on_redis_message(const char *channel, size_t chlen, const char *payload,
                                    size_t len, void *arg)
{
    struct broker_room *room;
    struct stream_id id, *idp = NULL;
    const char *sid, *line;
    size_t sidlen, line_len;
    int seed;

    (void)arg;
    if (chlen == B.direct_len && memcmp(channel, B.direct, chlen) == 0) {
        broker_on_direct_message(payload, len);
        return;
    }
    seed = chlen == B.cfg->channel_len && memcmp(channel, B.cfg->channel, chlen) == 0;
    if (seed && B.echo_pending) {
        B.echo_pending = 0;
        if (len == B.echo_len && memcmp(payload, B.echo, len) == 0)
            return; /* the seed copy of the message the feed just brought */
    } else if (!seed &&
               chat_payload_stored_split(payload, len, &sid, &sidlen, &line, &line_len) == 0 &&
               stream_id_parse(sid, sidlen, &id) == 0) {
        idp = &id;
        if (B.feed_len > 0 && chlen == B.feed_len && memcmp(channel, B.feed, chlen) == 0 &&
            line_len <= B.scratch_cap) {
            /* a default-room message: the same script publishes its seed
             * copy next, to be dropped */
            memcpy(B.echo, line, line_len);
            B.echo_len = line_len;
            B.echo_pending = 1;
        }
    }
    room = brooms_of_channel(&B.rooms, channel, chlen);
    if (room == NULL)
        return; /* the default room with no member here, or a room just left */
    bfill_on_message(&B.fill, room, payload, len, !seed, idp);
}

/* A message for the room's workers (live, or from a gap). */
static void broker_deliver(const struct broker_room *room, const char *payload, size_t len,
                           int tagged, void *arg)
{
    struct ipc_msg m;
    ssize_t n;

    (void)arg;
    ipc_msg_set(&m, IPC_DELIVER, 0, tagged && room->len == 0 ? IPC_DELIVER_F_TAGGED : 0,
                room->name, room->len, payload, len, NULL, 0);
    n = ipc_encode(B.scratch, B.scratch_cap, &m);
    if (n < 0) {
        log_msg(LOG_WARN, "dropping a %zu-byte message from redis: larger than the limit", len);
        return;
    }
    metrics_inc(MS_FANNED_OUT);
    broker_fan_out(room, (size_t)n); /* encoded once */
}

static void broker_send_seen(struct broker_worker *w, const struct broker_room *room)
{
    char id[STREAM_ID_MAX];
    size_t n = stream_id_format(&room->pos, id);
    struct ipc_msg m;

    ipc_msg_set(&m, IPC_SEEN, 0, 0, room->name, room->len, id, n, NULL, 0);
    ipc_link_send(w->link, &m);
}

/* Where room's stream was when its subscription began: the workers keep it,
 * to tell a restarted broker where a quiet room's gap starts. */
static void broker_on_pos_known(const struct broker_room *room, void *arg)
{
    struct broker_worker *w;

    (void)arg;
    for (w = B.workers; w != NULL; w = w->next)
        if (w->slot >= 0 && dict_get(&w->rooms, room->name, room->len) != NULL)
            broker_send_seen(w, room);
}

/* SEEN from a worker of this (restarted) broker: it delivered the room up to
 * that id. */
static void broker_on_seen(struct broker_worker *w, const struct ipc_msg *m)
{
    struct broker_room *room = brooms_get(&B.rooms, (const char *)m->f[0].p, m->f[0].len);
    struct stream_id id;

    if (stream_id_parse((const char *)m->f[1].p, m->f[1].len, &id) == -1) {
        ipc_link_shutdown(w->link, "SEEN with a bad id");
        return;
    }
    if (room != NULL)
        bfill_seen(room, &id);
}

static void broker_on_room_subscribed(struct broker_room *room, void *arg)
{
    (void)arg;
    bfill_on_subscribed(&B.fill, room);
}

static void broker_on_redis_subscribed(const char *channel, size_t chlen, int on, void *arg)
{
    (void)arg;
    brooms_on_subscribed(&B.rooms, channel, chlen, on);
}

/* A room's slot moved (redis-cluster resharding): what is published until
 * its new subscription is confirmed is read from its stream then (the gap
 * fill of a reconnect, for this room alone). */
static void broker_on_redis_moved(const char *channel, size_t chlen, void *arg)
{
    struct broker_room *room = brooms_on_moved(&B.rooms, channel, chlen);

    (void)arg;
    if (room != NULL)
        bfill_on_link_down(&B.fill, room);
}

static void broker_hold_user(const char *key, size_t keylen, void *val, void *arg)
{
    const struct broker_held *h = val;

    (void)key;
    (void)keylen;
    (void)arg;
    presence_hold(B.presence, h->room->name, h->room->len, broker_held_user(h),
                  broker_held_ulen(h));
}

/* A room this instance has members in is listed again for crash cleanup. */
static void broker_relist_room(const char *key, size_t keylen, void *val, void *arg)
{
    const struct broker_room *r = val;

    (void)key;
    (void)keylen;
    (void)arg;
    if (r->len > 0 && r->refs > 0)
        presence_room_add(B.presence, r->name, r->len);
}

/* Another instance took this one for dead (its heartbeat expired: a
 * partition or a stall longer than instance-ttl) and removed its users:
 * they are all still here, so they go back, as after a Redis restart. */
static void broker_on_presence_lost(void *arg)
{
    struct broker_worker *w;
    size_t held = 0;

    (void)arg;
    if (!B.workers_ready || !rlink_is_up(B.redis))
        return; /* broker_on_redis_state re-adds them when both are */
    dict_foreach(&B.rooms.by_name, broker_relist_room, NULL);
    for (w = B.workers; w != NULL; w = w->next) {
        dict_foreach(&w->users, broker_hold_user, NULL);
        held += w->users.count;
    }
    log_msg(LOG_WARN, "presumed dead by another instance: %zu user(s) re-added", held);
}

/* Send what was held while Redis was away, oldest first. */
static void broker_outbox_flush(void)
{
    struct outbox_item *it;

    while (broker_redis_usable() && (it = outbox_pop(&B.outbox)) != NULL) {
        if (it->kind == OUTBOX_LEAVE) {
            if (presence_leave(B.presence, outbox_room(it), it->roomlen, outbox_user(it),
                               it->userlen, broker_on_cmd_done, NULL) == 0)
                B.inflight++;
        } else {
            struct broker_req *q = broker_req_new(it->worker_id, it->reqid, outbox_room(it),
                                                  it->roomlen, outbox_user(it), it->userlen);
            if (q != NULL)
                q->flags = it->flags;
            if (q == NULL || broker_store(outbox_room(it), it->roomlen, outbox_user(it),
                                          it->userlen, outbox_text(it), it->textlen, q) == -1) {
                struct broker_worker *w = broker_find_worker(it->worker_id);
                free(q);
                if (w != NULL)
                    broker_send_publish_fail(w, it->reqid, 0, outbox_room(it), it->roomlen,
                                             outbox_user(it), it->userlen,
                                             "chat service unavailable");
            }
        }
        free(it);
    }
}

static void broker_send_link_states(void)
{
    struct broker_worker *w;
    int usable = broker_redis_usable();

    /* the master tells systemd: READY=1 on the first one */
    if (usable != B.told_master && !B.stopping) {
        B.told_master = usable;
        if (master_report_redis_state(usable) == -1)
            log_errno(LOG_WARN, errno, "telling the master that redis is %s",
                      usable ? "up" : "down");
    }

    for (w = B.workers; w != NULL; w = w->next)
        if (w->slot >= 0)
            broker_send_link_state(w);
}

/* Redis came back (or up for the first time): resubscribe the rooms, make
 * presence true again (a restarted Redis lost the sets), then send what
 * was held. Down: every room is unsubscribed. */
static void broker_room_link_down(const char *key, size_t keylen, void *val, void *arg)
{
    (void)key;
    (void)keylen;
    (void)arg;
    bfill_on_link_down(&B.fill, val);
}

static void broker_on_redis_state(int up, void *arg)
{
    struct broker_room *room;
    struct broker_worker *w;
    size_t held = 0;

    (void)arg;
    up = up && B.workers_ready;
    brooms_on_link(&B.rooms, up);
    if (!up) {
        B.echo_pending = 0;
        dict_foreach(&B.rooms.by_name, broker_room_link_down, NULL);
    } else if ((room = brooms_get(&B.rooms, "", 0)) != NULL) {
        bfill_on_subscribed(&B.fill, room); /* the seed channel came back with the link */
    }
    if (up) {
        presence_on_link_up(B.presence);
        for (w = B.workers; w != NULL; w = w->next) {
            dict_foreach(&w->users, broker_hold_user, NULL);
            held += w->users.count;
        }
        if (held > 0 || B.outbox.head != NULL)
            log_msg(LOG_INFO, "redis back: %zu user(s) re-added, %zu message(s) held to send", held,
                    B.outbox.npublish);
        broker_outbox_flush(); /* once the rooms are subscribed again */
    }
    broker_send_link_states();
    broker_maybe_exit();
}

/* The rooms resubscribed after a reconnect are confirmed: what was held
 * goes out now, and the workers hear that the chat is available. */
static void broker_on_rooms_subscribed(void *arg)
{
    (void)arg;
    broker_outbox_flush();
    broker_send_link_states();
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
        metrics_inc(MS_OUTBOX_DROPPED);
        if (w != NULL)
            broker_send_publish_fail(w, it->reqid, 0, outbox_room(it), it->roomlen, outbox_user(it),
                                     it->userlen, "chat service unavailable");
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
    struct rlink_handlers h = {broker_on_redis_message, broker_on_redis_subscribed,
                               broker_on_redis_state, broker_on_redis_moved, NULL};
    char err[NET_ERR_LEN];
    int rc = RC_EXIT_OK;

    memset(&B, 0, sizeof(B));
    B.cfg = cfg;
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    B.max_frame = ipc_frame_max_for((size_t)cfg->max_message_size);
    B.max_backlog = (size_t)cfg->max_worker_backlog;
    /* a stored message's template and its seed line side by side */
    B.scratch_cap = 2 * B.max_frame;
    B.scratch = malloc(B.scratch_cap);
    B.echo = malloc(B.scratch_cap);
    B.fill.scratch_cap = B.replay.scratch_cap = B.max_frame;
    B.fill.scratch = malloc(B.fill.scratch_cap);
    B.replay.scratch = malloc(B.replay.scratch_cap);
    B.base = event_base_new();
    if (B.scratch == NULL || B.echo == NULL || B.fill.scratch == NULL || B.replay.scratch == NULL ||
        B.base == NULL) {
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
    B.direct_len = (size_t)room_key_direct(B.direct, sizeof(B.direct), cfg);
    B.presence = presence_new(B.base, B.redis, cfg, instance_id, broker_on_presence_lost, NULL);
    B.history = history_new(B.redis, cfg);
    if (cfg->redis_wait_replicas > 0)
        B.wait = rwait_new(B.redis, cfg->redis_wait_replicas, cfg->redis_wait_timeout);
    if (cfg->history_size > 0)
        B.feed_len = (size_t)room_key(B.feed, sizeof(B.feed), cfg, "", 0, ROOM_KEY_FEED, NULL);
    brooms_init(&B.rooms, cfg, B.redis, B.presence, broker_on_room_ready,
                broker_on_rooms_subscribed, broker_on_room_subscribed, NULL);
    B.fill.history = B.replay.history = B.history;
    B.fill.rooms = &B.rooms;
    B.fill.max_held = B.max_backlog;
    B.fill.deliver = broker_deliver;
    B.fill.pos_known = broker_on_pos_known;
    B.replay.cfg = cfg;
    B.replay.send = broker_send_to;
    outbox_init(&B.outbox);
    B.outbox_ev = event_new(B.base, -1, EV_PERSIST, broker_outbox_tick_cb, NULL);
    B.ready_ev = evtimer_new(B.base, broker_ready_cb, NULL);
    if (B.presence == NULL || B.history == NULL || B.outbox_ev == NULL || B.ready_ev == NULL ||
        (cfg->redis_wait_replicas > 0 && B.wait == NULL)) {
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
    if (cfg->redis_sentinel != NULL)
        log_msg(LOG_INFO, "listening on %s; redis: primary '%s' of sentinels %s%s; instance %s",
                cfg->broker_socket, cfg->redis_sentinel_master, cfg->redis_sentinel,
                cfg->redis_tls ? " (TLS)" : "", instance_id);
    else
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
        broker_worker_clear(w, 0);
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
    rwait_free(B.wait);
    rlink_free(B.redis);
    brooms_deinit(&B.rooms);
    presence_free(B.presence);
    history_free(B.history);
    event_free(B.outbox_ev);
    event_free(B.ready_ev);
    event_free(B.accept_ev);
    event_free(B.term_ev);
    event_free(B.int_ev);
    event_free(B.stop_timer);
    event_base_free(B.base);
    free(B.scratch);
    free(B.echo);
    free(B.fill.scratch);
    free(B.replay.scratch);
    log_msg(LOG_INFO, "stopped");
    return rc;
}
