/* chat_rooms.c -- see chat_rooms.h. */
#include "chat_rooms.h"

#include <stdlib.h>
#include <string.h>

#include "chat_payload.h"
#include "chat_proto.h"
#include "log.h"
#include "util.h"
#include "ws_frame.h"
#include "ws_session.h"

#define CHAT_LABEL_LEN (sizeof("user=") - 1)
#define CHAT_LINE_MAX 512 /* a rendered notice: a name of at most 128 bytes and a fixed text */

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
    return r;
}

static void chat_room_maybe_free(struct chat_rooms *rs, struct chat_room *r)
{
    if (r->members.count > 0)
        return;
    dict_del(&rs->by_name, r->name, r->len);
    chat_room_free_cb(NULL, 0, r, NULL);
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
    return m;
}

void chat_member_joined(struct chat_member *m)
{
    struct chat_room *r = m->room;

    m->joined = 1;
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

void chat_member_free(struct chat_rooms *rs, struct chat_member *m)
{
    struct chat_room *r = m->room;
    struct chat_conn *conn = m->conn;
    struct chat_member **pp;

    if (m->joined && conn->typed) {
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

static char *chat_typed_event(const struct chat_room *r, const struct chat_event *ev)
{
    uint64_t now = util_epoch_ms();

    switch (ev->kind) {
    case CHAT_EV_JOINED:
        return chat_ev_joined(r->name, r->len, ev->user, ev->ulen, now);
    case CHAT_EV_LEFT:
        return chat_ev_left(r->name, r->len, ev->user, ev->ulen, now);
    case CHAT_EV_MESSAGE:
        return chat_ev_message(r->name, r->len, ev->user, ev->ulen, ev->text, ev->tlen, NULL, 0,
                               now);
    case CHAT_EV_LINE: /* an outside publisher's line: a message from nobody */
        return chat_ev_message(r->name, r->len, "", 0, ev->text, ev->tlen, NULL, 0, now);
    }
    return NULL;
}

void chat_rooms_deliver(struct chat_rooms *rs, const char *name, size_t len, const char *payload,
                        size_t plen)
{
    struct chat_room *r = chat_rooms_get(rs, name, len);
    const struct chat_member *sender = NULL, *m;
    struct chat_event ev;
    struct ws_frame *f;
    char *json;

    if (r == NULL)
        return; /* its last member here left meanwhile */
    if (chat_payload_parse(chat_payload_form_of(len), payload, plen, &ev) == -1) {
        log_msg(LOG_WARN, "room '%s': dropping a malformed %zu-byte payload", r->name, plen);
        return;
    }
    if (ev.user != NULL)
        sender = dict_get(&r->members, ev.user, ev.ulen);
    if (sender != NULL && !sender->joined)
        sender = NULL;
    if (r->nplain > 0) {
        f = chat_plain_frame(&ev);
        if (f == NULL ||
            wss_broadcast(rs->srv, &r->log, f,
                          sender && !sender->conn->typed ? sender->conn->s->id : 0) != 0)
            log_msg(LOG_ERROR, "out of memory: a message was not delivered");
        ws_frame_unref(f);
    }
    if (r->ntyped == 0 || (r->ntyped == 1 && sender != NULL && sender->conn->typed))
        return;
    json = chat_typed_event(r, &ev);
    f = json != NULL ? ws_frame_new(WSLAY_TEXT_FRAME, json, strlen(json)) : NULL;
    free(json);
    if (f == NULL) {
        log_msg(LOG_WARN,
                "room '%s': a message could not be given to typed clients "
                "(not UTF-8, or out of memory)",
                r->name);
        return;
    }
    for (m = r->typed; m != NULL; m = m->tnext)
        if (m != sender)
            wss_queue_frame(m->conn->s, f);
    ws_frame_unref(f);
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
