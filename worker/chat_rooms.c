/* chat_rooms.c -- see chat_rooms.h. */
#include "chat_rooms.h"

#include <stdlib.h>
#include <string.h>

#include "chat_payload.h"
#include "chat_proto.h"
#include "chat_text.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "ws_frame.h"
#include "ws_session.h"

#define CHAT_LABEL_LEN (sizeof("user=") - 1)
#define CHAT_LINE_MAX 512 /* a rendered notice: a name of at most 128 bytes and a fixed text */
#define CHAT_HELD_MAX 10000 /* live messages one member may have waiting during a replay */

/* A live message waiting for a member's replay to end. */
struct chat_held {
    struct ws_frame *f;
    struct stream_id id;
    int has_id;
};

/* A member replaying history: on its room's `catching` list. */
struct chat_catchup {
    struct chat_member *prev, *next;
    struct chat_held *held;
    size_t n, cap;
    long replayed;
    int closed; /* held too much: the connection is closing */
    /* the replay is over but its last message (the seam) has not come live
     * to this worker yet (the broker read the stream ahead of its
     * subscriber): live copies up to the seam are dropped, the rest passes,
     * until the first message after the seam puts the member live */
    int waiting;
    struct stream_id seam;
};

const char *chat_conn_name(const struct chat_conn *c)
{
    return c->label + CHAT_LABEL_LEN;
}

void chat_rooms_init(struct chat_rooms *rs, struct wss_server *srv)
{
    dict_init(&rs->by_name);
    rs->srv = srv;
}

static void chat_room_free_cb(const char *key, size_t keylen, void *val, void *arg)
{
    struct chat_room *r = val;

    (void)key;
    (void)keylen;
    (void)arg;
    bcast_deinit(&r->log);
    dict_deinit(&r->members);
    free(r);
}

void chat_rooms_deinit(struct chat_rooms *rs)
{
    dict_foreach(&rs->by_name, chat_room_free_cb, NULL);
    dict_deinit(&rs->by_name);
}

struct chat_room *chat_rooms_get(const struct chat_rooms *rs, const char *name, size_t len)
{
    return dict_get(&rs->by_name, name, len);
}

static struct chat_room *chat_room_get_or_new(struct chat_rooms *rs, const char *name, size_t len)
{
    struct chat_room *r = chat_rooms_get(rs, name, len);

    if (r != NULL)
        return r;
    if (len > ROOM_NAME_MAX || (r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    memcpy(r->name, name, len);
    r->name[len] = '\0';
    r->len = len;
    dict_init(&r->members);
    if (bcast_init(&r->log) != 0 || dict_add(&rs->by_name, r->name, r->len, r) != 0) {
        bcast_deinit(&r->log);
        free(r);
        return NULL;
    }
    metrics_inc(MS_WORKER_ROOMS);
    return r;
}

static void chat_room_maybe_free(struct chat_rooms *rs, struct chat_room *r)
{
    if (r->members.count > 0)
        return;
    dict_del(&rs->by_name, r->name, r->len);
    chat_room_free_cb(NULL, 0, r, NULL);
    metrics_sub(MS_WORKER_ROOMS, 1);
}

struct chat_member *chat_member_of(const struct chat_conn *conn, const char *name, size_t len)
{
    struct chat_member *m;

    for (m = conn->rooms; m != NULL; m = m->conn_next)
        if (m->room->len == len && memcmp(m->room->name, name, len) == 0)
            return m;
    return NULL;
}

struct chat_member *chat_member_new(struct chat_rooms *rs, struct chat_conn *conn, const char *name,
                                    size_t len, int *taken)
{
    struct chat_room *r = chat_room_get_or_new(rs, name, len);
    struct chat_member *m;

    *taken = 0;
    if (r == NULL)
        return NULL;
    if (dict_get(&r->members, chat_conn_name(conn), conn->len) != NULL) {
        *taken = 1; /* another connection here asked for it or holds it */
        return NULL;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL || dict_add(&r->members, chat_conn_name(conn), conn->len, m) != 0) {
        free(m);
        chat_room_maybe_free(rs, r);
        return NULL;
    }
    m->room = r;
    m->conn = conn;
    m->conn_next = conn->rooms;
    conn->rooms = m;
    conn->nrooms++;
    metrics_inc(MS_WORKER_MEMBERS);
    return m;
}

/* m gets the room's live messages from now on. */
static void chat_member_live(struct chat_member *m)
{
    struct chat_room *r = m->room;

    if (!m->conn->typed) {
        wss_subscribe(m->conn->s, &r->log); /* messages from now on, after the welcome */
        r->nplain++;
        return;
    }
    m->tprev = NULL;
    m->tnext = r->typed;
    if (r->typed != NULL)
        r->typed->tprev = m;
    r->typed = m;
    r->ntyped++;
}

void chat_member_joined(struct chat_member *m)
{
    m->joined = 1;
    metrics_inc(MS_JOINS);
    chat_member_live(m);
}

int chat_member_catch_up(struct chat_member *m)
{
    struct chat_room *r = m->room;
    struct chat_catchup *cu = calloc(1, sizeof(*cu));

    if (cu == NULL)
        return -1;
    m->joined = 1;
    m->cu = cu;
    cu->next = r->catching;
    if (r->catching != NULL)
        r->catching->cu->prev = m;
    r->catching = m;
    return 0;
}

long chat_member_replayed(const struct chat_member *m)
{
    return m->cu != NULL ? m->cu->replayed : 0;
}

/* Off the catching list, what waited dropped. */
static void chat_catchup_free(struct chat_member *m)
{
    struct chat_catchup *cu = m->cu;
    size_t i;

    if (cu->prev != NULL)
        cu->prev->cu->next = cu->next;
    else
        m->room->catching = cu->next;
    if (cu->next != NULL)
        cu->next->cu->prev = cu->prev;
    for (i = 0; i < cu->n; i++)
        ws_frame_unref(cu->held[i].f);
    free(cu->held);
    free(cu);
    m->cu = NULL;
}

void chat_member_caught_up(struct chat_member *m, const struct stream_id *seam)
{
    struct chat_catchup *cu = m->cu;
    const struct chat_room *r = m->room;
    int past = 0; /* a live message after the seam came already */
    size_t i;

    if (cu == NULL)
        return;
    for (i = 0; i < cu->n; i++) {
        const struct chat_held *h = &cu->held[i];
        if (h->has_id && seam != NULL && stream_id_cmp(&h->id, seam) <= 0)
            continue; /* replayed already */
        past |= h->has_id;
        wss_queue_frame(m->conn->s, h->f);
    }
    if (seam != NULL && !past && !(r->have_last && stream_id_cmp(&r->last, seam) >= 0)) {
        for (i = 0; i < cu->n; i++)
            ws_frame_unref(cu->held[i].f);
        cu->n = 0;
        cu->waiting = 1;
        cu->seam = *seam;
        return;
    }
    chat_catchup_free(m);
    chat_member_live(m);
}

/* A live message waits for m's replay to end. */
static void chat_catchup_hold(struct chat_member *m, struct ws_frame *f, const struct stream_id *id)
{
    struct chat_catchup *cu = m->cu;

    if (cu->closed)
        return;
    if (cu->n == cu->cap) {
        size_t cap = cu->cap ? cu->cap * 2 : 16;
        struct chat_held *h = cu->n < CHAT_HELD_MAX ? realloc(cu->held, cap * sizeof(*h)) : NULL;
        if (h == NULL) {
            wss_log(LOG_WARN, m->conn->s, "too many messages while replaying history: closing");
            wss_close(m->conn->s, CHAT_CLOSE_TRY_AGAIN_LATER, "too many messages during replay");
            cu->closed = 1;
            return;
        }
        cu->held = h;
        cu->cap = cap;
    }
    ws_frame_ref(f);
    cu->held[cu->n].f = f;
    cu->held[cu->n].has_id = id != NULL;
    if (id != NULL)
        cu->held[cu->n].id = *id;
    cu->n++;
}

void chat_member_free(struct chat_rooms *rs, struct chat_member *m)
{
    struct chat_room *r = m->room;
    struct chat_conn *conn = m->conn;
    struct chat_member **pp;

    metrics_sub(MS_WORKER_MEMBERS, 1);
    if (m->joined)
        metrics_inc(MS_LEAVES);
    if (m->cu != NULL) {
        chat_catchup_free(m);
    } else if (m->joined && conn->typed) {
        if (m->tprev != NULL)
            m->tprev->tnext = m->tnext;
        else
            r->typed = m->tnext;
        if (m->tnext != NULL)
            m->tnext->tprev = m->tprev;
        r->ntyped--;
    } else if (m->joined) {
        wss_leave_stream(conn->s); /* before the room's stream may go */
        r->nplain--;
    }
    for (pp = &conn->rooms; *pp != NULL; pp = &(*pp)->conn_next)
        if (*pp == m) {
            *pp = m->conn_next;
            conn->nrooms--;
            break;
        }
    dict_del(&r->members, chat_conn_name(conn), conn->len);
    free(m->join_arg);
    free(m);
    chat_room_maybe_free(rs, r);
}

void chat_queue_event(struct wss_session *s, char *json)
{
    if (json == NULL) {
        log_msg(LOG_ERROR, "out of memory: an event was not sent");
        return;
    }
    wss_queue_text(s, json, strlen(json));
    free(json);
}

/* The plain line of an event: the payload's own bytes, or a rendered
 * notice (a room's payloads carry notices without their text). */
static struct ws_frame *chat_plain_frame(const struct chat_event *ev)
{
    char line[CHAT_LINE_MAX];
    ssize_t n;

    if (ev->line != NULL)
        return ws_frame_new(WSLAY_TEXT_FRAME, ev->line, ev->line_len);
    n = ev->kind == CHAT_EV_JOINED
            ? chat_payload_joined(CHAT_PAYLOAD_SEED, line, sizeof(line), ev->user, ev->ulen)
            : chat_payload_left(CHAT_PAYLOAD_SEED, line, sizeof(line), ev->user, ev->ulen);
    return n < 0 ? NULL : ws_frame_new(WSLAY_TEXT_FRAME, line, (size_t)n);
}

/* ts of a stored message: when Redis stored it (its id's milliseconds). */
static uint64_t chat_event_ts(const struct chat_event *ev, const struct stream_id *id)
{
    return ev->id != NULL ? id->ms : util_epoch_ms();
}

static char *chat_typed_event(const struct chat_room *r, const struct chat_event *ev,
                              const struct stream_id *id)
{
    uint64_t now = chat_event_ts(ev, id);

    switch (ev->kind) {
    case CHAT_EV_JOINED:
        return chat_ev_joined(r->name, r->len, ev->user, ev->ulen, now);
    case CHAT_EV_LEFT:
        return chat_ev_left(r->name, r->len, ev->user, ev->ulen, now);
    case CHAT_EV_MESSAGE:
        if (ev->id != NULL)
            return chat_ev_message_stored(r->name, r->len, ev->user, ev->ulen, ev->text, ev->tlen,
                                          ev->id, ev->idlen, now);
        return chat_ev_message(r->name, r->len, ev->user, ev->ulen, ev->text, ev->tlen, NULL, 0,
                               now);
    case CHAT_EV_LINE: /* an outside publisher's line: a message from nobody */
        return chat_ev_message(r->name, r->len, "", 0, ev->text, ev->tlen, NULL, 0, now);
    }
    return NULL;
}

static struct ws_frame *chat_typed_frame(const struct chat_room *r, const struct chat_event *ev,
                                         const struct stream_id *id)
{
    char *json = chat_typed_event(r, ev, id);
    struct ws_frame *f = json != NULL ? ws_frame_new(WSLAY_TEXT_FRAME, json, strlen(json)) : NULL;

    free(json);
    if (f == NULL)
        log_msg(LOG_WARN,
                "room '%s': a message could not be given to typed clients "
                "(not UTF-8, or out of memory)",
                r->name);
    return f;
}

/* Parse a payload and its stored id: 0, or -1 (logged) when malformed. */
static int chat_rooms_parse(const struct chat_room *r, enum chat_payload_form form,
                            const char *payload, size_t plen, struct chat_event *ev,
                            struct stream_id *id)
{
    if (chat_payload_parse(form, payload, plen, ev) == -1 ||
        (ev->id != NULL && stream_id_parse(ev->id, ev->idlen, id) == -1)) {
        log_msg(LOG_WARN, "room '%s': dropping a malformed %zu-byte payload", r->name, plen);
        return -1;
    }
    return 0;
}

void chat_member_replay(struct chat_member *m, const char *payload, size_t len)
{
    struct chat_event ev;
    struct stream_id id;
    struct ws_frame *f;

    if (m->cu == NULL || chat_rooms_parse(m->room, CHAT_PAYLOAD_TAGGED, payload, len, &ev, &id) == -1)
        return;
    f = m->conn->typed ? chat_typed_frame(m->room, &ev, &id) : chat_plain_frame(&ev);
    if (f != NULL) {
        wss_queue_frame(m->conn->s, f);
        ws_frame_unref(f);
        m->cu->replayed++;
    }
}

/* Members replaying history keep the message for later (not its sender);
 * those past their replay but short of the seam take it now, unless it is
 * a copy of what they were replayed. */
static void chat_rooms_hold(struct chat_room *r, const struct chat_member *sender, int typed,
                            struct ws_frame *f, const struct stream_id *id)
{
    struct chat_member *m, *next;

    for (m = r->catching; m != NULL; m = next) {
        next = m->cu->next;
        if (m == sender || (m->conn->typed != 0) != typed)
            continue;
        if (!m->cu->waiting) {
            chat_catchup_hold(m, f, id);
        } else if (id == NULL) {
            wss_queue_frame(m->conn->s, f);
        } else if (stream_id_cmp(id, &m->cu->seam) > 0) {
            wss_queue_frame(m->conn->s, f);
            chat_catchup_free(m);
            chat_member_live(m); /* after this message: it is in the log already */
        }
    }
}

void chat_rooms_deliver(struct chat_rooms *rs, const char *name, size_t len, const char *payload,
                        size_t plen, int tagged)
{
    struct chat_room *r = chat_rooms_get(rs, name, len);
    const struct chat_member *sender = NULL, *m;
    struct chat_event ev;
    struct stream_id sid, *id = NULL;
    struct ws_frame *f;

    if (r == NULL)
        return; /* its last member here left meanwhile */
    if (chat_rooms_parse(r, tagged ? CHAT_PAYLOAD_TAGGED : chat_payload_form_of(len), payload, plen,
                         &ev, &sid) == -1)
        return;
    if (ev.id != NULL) {
        if (r->have_last && stream_id_cmp(&sid, &r->last) <= 0)
            return; /* a copy: a restarted broker filled a gap we had seen */
        r->last = r->pos = sid;
        r->have_last = r->have_pos = 1;
        id = &sid;
    }
    if (ev.user != NULL)
        sender = dict_get(&r->members, ev.user, ev.ulen);
    if (sender != NULL && !sender->joined)
        sender = NULL;
    if (r->nplain > 0 || r->catching != NULL) {
        f = chat_plain_frame(&ev);
        if (f == NULL ||
            (r->nplain > 0 && wss_broadcast(rs->srv, &r->log, f,
                                            sender && !sender->conn->typed ? sender->conn->s->id
                                                                           : 0) != 0))
            log_msg(LOG_ERROR, "out of memory: a message was not delivered");
        else if (r->nplain > 0) /* one frame, read by every plain member but its sender */
            metrics_add(MS_DELIVERIES, r->nplain - (sender != NULL && !sender->conn->typed));
        if (f != NULL && r->catching != NULL)
            chat_rooms_hold(r, sender, 0, f, id);
        ws_frame_unref(f);
    }
    if (r->catching == NULL &&
        (r->ntyped == 0 || (r->ntyped == 1 && sender != NULL && sender->conn->typed)))
        return;
    f = chat_typed_frame(r, &ev, id);
    if (f == NULL)
        return;
    for (m = r->typed; m != NULL; m = m->tnext)
        if (m != sender)
            wss_queue_frame(m->conn->s, f);
    if (r->catching != NULL)
        chat_rooms_hold(r, sender, 1, f, id);
    ws_frame_unref(f);
}

void chat_rooms_seen(struct chat_rooms *rs, const char *name, size_t len, const struct stream_id *id)
{
    struct chat_room *r = chat_rooms_get(rs, name, len);

    if (r != NULL && (!r->have_pos || stream_id_cmp(id, &r->pos) > 0)) {
        r->pos = *id;
        r->have_pos = 1;
    }
}

void chat_rooms_deliver_direct(struct chat_rooms *rs, const char *room, size_t rlen, const char *to,
                               size_t tolen, const char *from, size_t flen, const char *text,
                               size_t tlen)
{
    struct chat_room *r = chat_rooms_get(rs, room, rlen);
    const struct chat_member *m = r != NULL ? dict_get(&r->members, to, tolen) : NULL;
    char line[CHAT_LINE_MAX];
    char *buf;
    size_t need;
    ssize_t n;

    if (m == NULL || !m->joined)
        return; /* left meanwhile */
    if (m->conn->typed) {
        chat_queue_event(m->conn->s, chat_ev_message(r->name, r->len, from, flen, text, tlen, to,
                                                     tolen, util_epoch_ms()));
        return;
    }
    need = flen + sizeof(CHAT_PAYLOAD_DIRECT_SEP) + tlen;
    buf = need <= sizeof(line) ? line : malloc(need);
    n = buf != NULL ? chat_payload_direct_line(buf, need, from, flen, text, tlen) : -1;
    if (n >= 0)
        wss_queue_text(m->conn->s, buf, (size_t)n);
    if (buf != line)
        free(buf);
}
