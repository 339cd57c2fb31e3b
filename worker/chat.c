/* chat.c -- the chat application in a worker.
 *
 * A connection joins the room of its URL (`/chat/{user}`: the default room,
 * the seed's chat; `/chat/{room}/{user}`) and, when it speaks the typed
 * protocol, more rooms by request. A name in a room is granted by the
 * broker (SADD on the room's set decides cluster-wide); until then the
 * member waits in `pending` under its request id, and a connection whose
 * URL room is not granted yet is upgraded but not read. Delivered payloads
 * go to the room's members through chat_rooms.c.
 */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "chat_payload.h"
#include "chat_proto.h"
#include "chat_text.h"
#include "config.h"
#include "http_upgrade.h"
#include "ipc.h"
#include "log.h"
#include "metrics.h"
#include "room.h"
#include "stream_id.h"
#include "utf8.h"
#include "util.h"
#include "ws_session.h"

#define CHAT_LABEL "user=" /* a session's log label: "user=NAME" */
#define CHAT_LABEL_LEN (sizeof(CHAT_LABEL) - 1)
#define CHAT_BAD_REQUESTS_MAX 10 /* typed: bad frames in a row before a 1008 */
#define CHAT_REASON_MAX 256

static struct chat_conn *chat_conn_of(const struct wss_session *s)
{
    return s->app_data;
}

/* A typed request's "id", kept under the request id it went to the broker
 * with, so that an error the broker answers repeats it. A ring of the
 * last few: a send that succeeds gets no answer to clear its entry. */
static void chat_error(struct chat_conn *conn, const char *request, const char *room, size_t rlen,
                       json_t *id, const char *reason);

struct chat_req_id {
    uint32_t req;
    json_t *id;
    struct chat_member *send; /* a send not answered yet: its member */
};

#define CHAT_REQ_IDS 64 /* sends held while Redis restarts are answered late */

static void chat_remember_req(struct chat_conn *conn, uint32_t req, json_t *id,
                              struct chat_member *send)
{
    struct chat_req_id *e;

    if (id == NULL && send == NULL)
        return;
    if (conn->ids == NULL && (conn->ids = calloc(CHAT_REQ_IDS, sizeof(*conn->ids))) == NULL)
        return;
    e = &conn->ids[conn->ids_next++ % CHAT_REQ_IDS];
    json_decref(e->id);
    e->req = req;
    e->id = json_incref(id);
    e->send = send;
}

/* The ring is full of sends still waiting for their answer (Redis away, or
 * slow): one more would push out the request id of one of them, so its ack
 * could no longer be matched. The client must wait for answers. */
static int chat_ids_full(const struct chat_conn *conn)
{
    return conn->ids != NULL && conn->ids[conn->ids_next % CHAT_REQ_IDS].send != NULL;
}

#define CHAT_REASON_IDS_FULL "too many sends awaiting an answer: wait for their acks"

static void chat_remember_id(struct chat_conn *conn, uint32_t req, json_t *id)
{
    chat_remember_req(conn, req, id, NULL);
}

/* Send req was answered (ack or error). */
static void chat_send_answered(const struct chat_conn *conn, uint32_t req)
{
    size_t i;

    for (i = 0; conn->ids != NULL && i < CHAT_REQ_IDS; i++)
        if (conn->ids[i].send != NULL && conn->ids[i].req == req)
            conn->ids[i].send = NULL;
}

/* The broker went away: the sends it did not answer never will be (they
 * may or may not have been stored: a resume tells). */
static void chat_fail_unanswered(struct chat_conn *conn)
{
    struct chat_member *m;
    size_t i;

    for (i = 0; conn->ids != NULL && i < CHAT_REQ_IDS; i++) {
        struct chat_req_id *e = &conn->ids[i];
        if (e->send == NULL)
            continue;
        for (m = conn->rooms; m != NULL && m != e->send; m = m->conn_next)
            ;
        if (m != NULL)
            chat_error(conn, "send", m->room->name, m->room->len, e->id,
                       "chat service unavailable");
        e->send = NULL;
    }
}

/* The id of request req, or NULL (borrowed: the ring keeps it). */
static json_t *chat_id_of(const struct chat_conn *conn, uint32_t req)
{
    size_t i;

    for (i = 0; conn->ids != NULL && i < CHAT_REQ_IDS; i++)
        if (conn->ids[i].id != NULL && conn->ids[i].req == req)
            return conn->ids[i].id;
    return NULL;
}

static void chat_forget_ids(struct chat_conn *conn)
{
    size_t i;

    for (i = 0; conn->ids != NULL && i < CHAT_REQ_IDS; i++)
        json_decref(conn->ids[i].id);
    free(conn->ids);
    conn->ids = NULL;
}

/* A leave a broker may not have carried out: one that could not be sent,
 * or one sent shortly before the broker link broke (it may have died with
 * the broker). Leaves are idempotent in Redis (a name is announced only if
 * it was still listed), so they are sent again to the next broker. */
struct chat_orphan {
    struct chat_orphan *next;
    uint64_t at_ms;
    uint32_t seq; /* the broker's PONG with this id or later confirms it */
    size_t roomlen, len;
    char data[]; /* room, then user */
};

#define CHAT_LEAVE_KEEP_MS 60000 /* unconfirmed leaves older than this are dropped */

/* A message to the broker about a room. */
static int chat_send_msg(struct chat *c, enum ipc_type type, uint32_t id, uint16_t flags,
                         const char *room, size_t rlen, const void *user, size_t ulen,
                         const void *text, size_t tlen)
{
    struct ipc_msg m;

    ipc_msg_set(&m, type, id, flags, room, rlen, user, ulen, text, tlen);
    return c->send(&m, c->send_arg);
}

static int chat_send(struct chat *c, enum ipc_type type, uint32_t id, uint16_t flags,
                     const struct chat_member *m, const void *text, size_t len)
{
    return chat_send_msg(c, type, id, flags, m->room->name, m->room->len, chat_conn_name(m->conn),
                         m->conn->len, text, len);
}

/* ---- what a client is told ---------------------------------------------------- */

/* An error for a typed client: the request's type, the room it named. */
static void chat_error(struct chat_conn *conn, const char *request, const char *room, size_t rlen,
                       json_t *id, const char *reason)
{
    chat_queue_event(conn->s, chat_ev_error(request, room, rlen, chat_conn_name(conn), conn->len,
                                            reason, id, util_epoch_ms()));
}

static void chat_refuse(struct wss_session *s, const char *text, uint16_t code, const char *reason)
{
    wss_queue_text(s, text, strlen(text));
    wss_close(s, code, reason);
}

/* The URL's room could not be joined: the connection ends, as in the seed
 * (a typed client gets the error event's reason first). */
static void chat_refuse_url_room(struct chat_member *m, uint16_t code, const char *reason,
                                 const char *event_reason, const char *plain_text)
{
    struct chat_conn *conn = m->conn;

    if (conn->typed) {
        chat_error(conn, "join", m->room->name, m->room->len, NULL, event_reason);
        wss_close(conn->s, code, reason);
    } else {
        chat_refuse(conn->s, plain_text, code, reason);
    }
}

static void chat_refuse_unavailable(struct wss_session *s)
{
    chat_refuse(s, CHAT_TEXT_JOIN_UNAVAILABLE, CHAT_CLOSE_TRY_AGAIN_LATER,
                "chat service unavailable");
}

/* ---- joining and leaving --------------------------------------------------------- */

/* The history a join asks for: IPC_JOIN_PLAIN, or the last N / everything
 * after an id, with N or the id in `arg`. */
struct chat_hist {
    enum ipc_join_mode mode;
    char arg[STREAM_ID_MAX];
};

/* A typed join that names no history gets the last history-on-join (none
 * when that is 0: then no history event either). */
static void chat_hist_default(const struct chat *c, const struct chat_conn *conn,
                              struct chat_hist *h)
{
    if (h->mode == IPC_JOIN_PLAIN && conn->typed && c->cfg->history_on_join > 0) {
        h->mode = IPC_JOIN_LAST;
        snprintf(h->arg, sizeof(h->arg), "%ld", c->cfg->history_on_join);
    }
}

static void chat_send_join(struct chat *c, const struct chat_member *m)
{
    const char *arg = m->join_arg != NULL ? m->join_arg : "";

    chat_send_msg(c, IPC_JOIN, m->join_req, m->join_mode, m->room->name, m->room->len,
                  chat_conn_name(m->conn), m->conn->len, arg, strlen(arg));
}

static void chat_ask_join(struct chat *c, struct chat_member *m)
{
    m->join_req = ++c->next_req;
    if (dict_add(&c->pending, (const char *)&m->join_req, sizeof(m->join_req), m) != 0)
        return; /* out of memory: chat_join refuses it */
    m->join_pending = 1;
    /* the broker decides (it knows whether Redis is up); with no broker yet
     * (a worker just started, or the broker restarts) the join waits for
     * one: chat_on_broker_up sends it, chat_on_broker_lost refuses it */
    chat_send_join(c, m);
}

/* Ask for conn's name in a room. 0, or -1 with the connection told why
 * (a typed join request's error, or the URL room's refusal). */
static int chat_join(struct chat *c, struct chat_conn *conn, const char *room, size_t rlen,
                     int url_room, json_t *id, struct chat_hist *h)
{
    int taken;
    struct chat_member *m = chat_member_new(&c->rooms, conn, room, rlen, &taken);
    char text[sizeof(CHAT_TEXT_TAKEN_FMT) + UPG_USER_MAX_BYTES];

    chat_hist_default(c, conn, h);
    if (m != NULL && h->mode != IPC_JOIN_PLAIN && (m->join_arg = strdup(h->arg)) == NULL) {
        chat_member_free(&c->rooms, m);
        m = NULL;
    }
    if (m != NULL) {
        m->url_room = url_room ? 1 : 0;
        m->join_mode = h->mode;
        chat_ask_join(c, m);
        if (m->join_pending) {
            chat_remember_id(conn, m->join_req, id);
            return 0;
        }
        chat_member_free(&c->rooms, m);
    }
    if (!url_room) {
        chat_error(conn, "join", room, rlen, id,
                   taken ? "name taken in that room" : "chat service unavailable");
    } else if (taken) {
        snprintf(text, sizeof(text), CHAT_TEXT_TAKEN_FMT, chat_conn_name(conn));
        if (conn->typed)
            chat_error(conn, "join", room, rlen, NULL, "name taken in that room");
        else
            wss_queue_text(conn->s, text, strlen(text));
        metrics_inc(MS_REFUSED + MREF_NAME_TAKEN);
        wss_close(conn->s, CHAT_CLOSE_NAME_TAKEN, CHAT_CLOSE_NAME_TAKEN_REASON);
    } else {
        chat_refuse_unavailable(conn->s);
    }
    return -1;
}

/* Keep a leave until the broker confirms Redis has carried it out: after
 * the LEAVE the worker sends PING(seq), which the broker answers only once
 * a Redis round trip behind the leave is done. Newest first. */
static void chat_remember_leave(struct chat *c, const char *room, size_t rlen, const char *user,
                                size_t len)
{
    uint64_t now = util_now_ms();
    struct chat_orphan *o, **pp;

    for (pp = &c->orphans; *pp != NULL; pp = &(*pp)->next)
        if (now - (*pp)->at_ms > CHAT_LEAVE_KEEP_MS)
            break;
    while ((o = *pp) != NULL) { /* the tail is older still */
        *pp = o->next;
        free(o);
    }
    o = malloc(sizeof(*o) + rlen + len);
    if (o == NULL) {
        log_msg(LOG_ERROR, "out of memory: leave of '%.*s' not kept", (int)len, user);
        return;
    }
    o->at_ms = now;
    o->seq = ++c->leave_seq;
    o->roomlen = rlen;
    o->len = len;
    memcpy(o->data, room, rlen);
    memcpy(o->data + rlen, user, len);
    o->next = c->orphans;
    c->orphans = o;
    chat_send_msg(c, IPC_PING, o->seq, 0, "", 0, NULL, 0, NULL, 0);
}

/* PONG(seq): every leave up to seq is done in Redis. */
static void chat_on_leaves_confirmed(struct chat *c, uint32_t seq)
{
    struct chat_orphan *o, **pp = &c->orphans;

    while ((o = *pp) != NULL) {
        if ((int32_t)(o->seq - seq) <= 0) {
            *pp = o->next;
            free(o);
        } else {
            pp = &o->next;
        }
    }
}

/* A member goes (leave request, or its connection is gone): release the
 * name, or the request for it. */
static void chat_leave(struct chat *c, struct chat_member *m)
{
    struct chat_conn *conn = m->conn;

    if (m->join_pending)
        dict_del(&c->pending, (const char *)&m->join_req, sizeof(m->join_req));
    if (m->joined) {
        if (chat_send(c, IPC_LEAVE, 0, 0, m, NULL, 0) == -1)
            log_msg(LOG_INFO, "broker away: leave of '%s' is sent when it is back",
                    chat_conn_name(conn));
        chat_remember_leave(c, m->room->name, m->room->len, chat_conn_name(conn), conn->len);
    }
    chat_member_free(&c->rooms, m);
}

/* ---- opening a connection ------------------------------------------------------ */

/* The path after /chat/: "{user}" or "{room}/{user}". Returns NULL with
 * the room and user decoded, else the reason for a 400. */
static const char *chat_parse_path(const struct upg_str *param, char *room, size_t *rlen,
                                   char *user, size_t *ulen)
{
    const char *slash = memchr(param->p, '/', param->len);
    const char *u = param->p, *why;
    size_t ul = param->len;
    ssize_t n;

    *rlen = 0;
    room[0] = '\0';
    if (slash != NULL) {
        size_t raw = (size_t)(slash - param->p);
        n = upg_percent_decode(param->p, raw, room, ROOM_NAME_MAX * 3 + 1);
        if (n < 0)
            return "room name: bad percent-encoding or too long";
        why = room_name_check(room, (size_t)n);
        if (why != NULL)
            return why;
        *rlen = (size_t)n;
        u = slash + 1;
        ul = param->len - raw - 1;
    }
    n = upg_percent_decode(u, ul, user, UPG_USER_MAX_BYTES + 1);
    if (n < 0)
        return "user name: bad percent-encoding or too long";
    *ulen = (size_t)n;
    return upg_user_name_check(user, (size_t)n);
}

static const struct upg_str chat_proto_str = {CHAT_PROTO_NAME, sizeof(CHAT_PROTO_NAME) - 1};

/* `?history=N` or `?after=ID` on the URL: NULL with h filled, else the
 * reason for a 400. */
static const char *chat_parse_hist(const struct chat *c, const struct upg_request *req,
                                   struct chat_hist *h)
{
    struct upg_str n, after;
    int has_n = upg_query_param(&req->target, "history", &n);
    int has_after = upg_query_param(&req->target, "after", &after);
    struct stream_id id;
    long v = 0;
    size_t i;

    memset(h, 0, sizeof(*h));
    if (has_n && has_after)
        return "history and after exclude each other";
    if (has_after) {
        if (stream_id_parse(after.p, after.len, &id) == -1)
            return "after: must be a message id";
        h->mode = IPC_JOIN_AFTER;
        stream_id_format(&id, h->arg);
    } else if (has_n) {
        for (i = 0; i < n.len && i < 7 && n.p[i] >= '0' && n.p[i] <= '9'; i++)
            v = v * 10 + (n.p[i] - '0');
        if (n.len == 0 || i != n.len || v > c->cfg->history_on_join_max)
            return "history: must be an integer from 0 to history-on-join-max";
        h->mode = IPC_JOIN_LAST;
        snprintf(h->arg, sizeof(h->arg), "%ld", v);
    }
    return NULL;
}

/* What is wrong with a chat URL (room, name, history parameters), or NULL. */
static const char *chat_check_url(struct chat *c, const struct upg_request *req,
                                  const struct upg_str *param, char *room, size_t *rlen,
                                  char *user, size_t *ulen, struct chat_hist *hist)
{
    const char *why = chat_parse_path(param, room, rlen, user, ulen);

    return why != NULL ? why : chat_parse_hist(c, req, hist);
}

static const char *chat_check(const struct upg_request *req, const struct upg_str *param,
                              void *arg)
{
    char room[ROOM_NAME_MAX * 3 + 1], user[UPG_USER_MAX_BYTES + 1];
    size_t rlen, ulen;
    struct chat_hist hist;

    return chat_check_url(arg, req, param, room, &rlen, user, &ulen, &hist);
}

/* GET /chat/[{room}/]{user}: the room, the name and the token are checked
 * before the 101 where HTTP can say what is wrong; a token refused after
 * it, with a close code, since browsers can read a close code but not a
 * status. */
static void chat_open(struct wss_session *s, const struct upg_request *req,
                      const struct upg_str *param, void *arg)
{
    static struct access_token tok; /* 4 KiB: not on the stack, one request at a time */
    struct chat *c = arg;
    char room[ROOM_NAME_MAX * 3 + 1], user[UPG_USER_MAX_BYTES + 1];
    size_t rlen, ulen;
    const struct upg_str *protos = upg_header_get(req, "Sec-WebSocket-Protocol");
    int typed = protos != NULL && upg_has_token(protos, CHAT_PROTO_NAME);
    struct chat_conn *conn;
    struct chat_hist hist;
    const char *why = chat_check_url(c, req, param, room, &rlen, user, &ulen, &hist);

    if (why != NULL) {
        wss_http_reply(s, 400, NULL, why);
        return;
    }
    if (access_token_find(req, &tok) == -1) {
        wss_http_reply(s, 400, NULL, "token: bad percent-encoding");
        return;
    }
    /* redis-chat.v1 is the protocol named when asked for; otherwise a
     * token that came as a protocol is echoed, as browsers require */
    if (wss_upgrade(s, req, typed ? &chat_proto_str : &tok.protocol) == -1)
        return;
    conn = calloc(1, sizeof(*conn) + CHAT_LABEL_LEN + ulen + 1);
    if (conn == NULL) {
        wss_close(s, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    memcpy(conn->label, CHAT_LABEL, CHAT_LABEL_LEN);
    memcpy(conn->label + CHAT_LABEL_LEN, user, ulen + 1);
    conn->len = ulen;
    conn->s = s;
    conn->typed = typed ? 1 : 0;
    s->app_data = conn;
    s->label = conn->label;
    why = access_token_check(c->cfg, &tok, user, ulen);
    if (why != NULL) {
        wss_log(LOG_INFO, s, "authentication failed: %s", why);
        metrics_inc(MS_REFUSED + MREF_AUTH);
        wss_close(s, CHAT_CLOSE_UNAUTHORIZED, why);
        return;
    }
    chat_join(c, conn, room, rlen, 1, NULL, &hist);
}

/* ---- what a client sends ------------------------------------------------------- */

/* Token bucket: rate-limit messages per second, bursts up to
 * rate-limit-burst. A client over the limit is told once per episode; one
 * that keeps going for another whole burst is closed with 1008. */
static int chat_rate_ok(struct chat *c, struct chat_conn *conn, const struct chat_req *r)
{
    const struct cfg *cfg = c->cfg;
    uint64_t now = util_now_ms(), cap = (uint64_t)cfg->rate_limit_burst * 1000;
    uint64_t tokens;

    if (cfg->rate_limit == 0)
        return 1;
    if (conn->rl_last_ms == 0)
        tokens = cap; /* a new session starts with a full bucket */
    else
        tokens = conn->rl_tokens + (now - conn->rl_last_ms) * (uint64_t)cfg->rate_limit;
    conn->rl_last_ms = now;
    if (tokens > cap)
        tokens = cap;
    if (tokens >= 1000) {
        conn->rl_tokens = (uint32_t)(tokens - 1000);
        conn->rl_dropped = 0;
        return 1;
    }
    conn->rl_tokens = (uint32_t)tokens;
    if (conn->rl_dropped++ == 0) {
        wss_log(LOG_INFO, conn->s, "over rate-limit, warned");
        if (r != NULL)
            chat_error(conn, r->type_name, r->room, r->room_len, r->id,
                       "rate limit exceeded, slow down");
        else
            wss_queue_text(conn->s, CHAT_TEXT_RATE_LIMITED, strlen(CHAT_TEXT_RATE_LIMITED));
    } else if (conn->rl_dropped > (uint32_t)cfg->rate_limit_burst) {
        wss_log(LOG_WARN, conn->s, "flooding past the warning: closing");
        wss_close(conn->s, WSLAY_CODE_POLICY_VIOLATION, "rate limit exceeded");
    }
    return 0;
}

/* Line breaks and controls would let a user print a line that looks like
 * another user's message or a join notice ("hi\nalice: ..."); bidi
 * overrides could reorder the "user:" prefix on screen. wslay checked the
 * UTF-8 already; a sequence utf8_decode refuses is refused here too.
 * Returns 1 when acceptable. */
int chat_text_allowed(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0, n;
    uint32_t cp;

    while (i < len) { /* an empty message may come as a NULL pointer */
        n = utf8_decode(p + i, len - i, &cp);
        if (n == 0)
            return 0;
        if ((cp < 0x20 && cp != '\t') || (cp >= 0x7f && cp <= 0x9f))
            return 0; /* C0 controls but the tab, DEL, C1 controls */
        if ((cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
            return 0; /* line/paragraph separators, bidi embeddings and isolates */
        i += n;
    }
    return 1;
}

static struct chat_member *chat_url_member(const struct chat_conn *conn)
{
    struct chat_member *m;

    for (m = conn->rooms; m != NULL; m = m->conn_next)
        if (m->url_room)
            return m;
    return NULL;
}

/* A plain client's line: a message in its room. */
static void chat_plain_text(struct chat *c, struct chat_conn *conn, const char *text, size_t len)
{
    struct chat_member *m = chat_url_member(conn);

    if (m == NULL || !m->joined || !chat_rate_ok(c, conn, NULL))
        return;
    if (!chat_text_allowed(text, len)) {
        wss_queue_text(conn->s, CHAT_TEXT_BAD_CHARS, strlen(CHAT_TEXT_BAD_CHARS));
        return;
    }
    /* even while Redis is down: the broker holds messages in its outbox */
    if (chat_send(c, IPC_PUBLISH, ++c->next_req, 0, m, text, len) == -1)
        wss_queue_text(conn->s, CHAT_TEXT_NOT_DELIVERED, strlen(CHAT_TEXT_NOT_DELIVERED));
}

/* The joined member a typed request names (its room, or the URL's). NULL
 * with the error sent. */
static struct chat_member *chat_req_member(struct chat_conn *conn, const struct chat_req *r)
{
    struct chat_member *m =
        r->room != NULL ? chat_member_of(conn, r->room, r->room_len) : chat_url_member(conn);

    if (m != NULL && m->joined)
        return m;
    chat_error(conn, r->type_name, r->room, r->room_len, r->id, "not in that room");
    return NULL;
}

/* The text of a send or direct request is fit to go out. */
static int chat_req_text_ok(struct chat_conn *conn, const struct chat_req *r,
                            const struct chat_member *m)
{
    if (!chat_text_allowed(r->text, r->text_len)) {
        chat_error(conn, r->type_name, m->room->name, m->room->len, r->id,
                   "line breaks and control characters are not allowed");
        return 0;
    }
    return 1;
}

static void chat_req_send(struct chat *c, struct chat_conn *conn, const struct chat_req *r)
{
    struct chat_member *m = chat_req_member(conn, r);

    if (m == NULL || !chat_req_text_ok(conn, r, m))
        return;
    if (chat_ids_full(conn)) {
        chat_error(conn, "send", m->room->name, m->room->len, r->id, CHAT_REASON_IDS_FULL);
        return;
    }
    if (chat_send(c, IPC_PUBLISH, ++c->next_req, IPC_PUBLISH_F_ACK, m, r->text, r->text_len) == -1)
        chat_error(conn, "send", m->room->name, m->room->len, r->id, "chat service unavailable");
    else
        chat_remember_req(conn, c->next_req, r->id, m);
}

static void chat_req_join(struct chat *c, struct chat_conn *conn, const struct chat_req *r)
{
    struct chat_hist hist;
    struct stream_id id;
    const char *why;

    if (r->room == NULL) {
        chat_error(conn, "join", NULL, 0, r->id, "field \"room\" must be a string");
        return;
    }
    if (r->room_len > 0 && (why = room_name_check(r->room, r->room_len)) != NULL) {
        chat_error(conn, "join", NULL, 0, r->id, why);
        return;
    }
    if (chat_member_of(conn, r->room, r->room_len) != NULL) {
        chat_error(conn, "join", r->room, r->room_len, r->id, "already in that room");
        return;
    }
    if (conn->nrooms >= (size_t)c->cfg->max_rooms_per_connection) {
        chat_error(conn, "join", r->room, r->room_len, r->id, "too many rooms on this connection");
        return;
    }
    if (r->history > c->cfg->history_on_join_max) {
        chat_error(conn, "join", r->room, r->room_len, r->id, CHAT_PROTO_BAD_HISTORY);
        return;
    }
    memset(&hist, 0, sizeof(hist));
    if (r->after != NULL) {
        hist.mode = IPC_JOIN_AFTER;
        stream_id_parse(r->after, r->after_len, &id); /* checked by the parser */
        stream_id_format(&id, hist.arg);
    } else if (r->history >= 0) {
        hist.mode = IPC_JOIN_LAST;
        snprintf(hist.arg, sizeof(hist.arg), "%ld", r->history);
    }
    chat_join(c, conn, r->room, r->room_len, 0, r->id, &hist);
}

static void chat_req_leave(struct chat *c, struct chat_conn *conn, const struct chat_req *r)
{
    struct chat_member *m =
        r->room != NULL ? chat_member_of(conn, r->room, r->room_len) : chat_url_member(conn);
    char room[ROOM_NAME_MAX + 1];
    size_t rlen;

    if (m == NULL) {
        chat_error(conn, "leave", r->room, r->room_len, r->id, "not in that room");
        return;
    }
    rlen = m->room->len;
    memcpy(room, m->room->name, rlen + 1);
    chat_leave(c, m); /* the room may go with it */
    chat_queue_event(conn->s,
                     chat_ev_left(room, rlen, chat_conn_name(conn), conn->len, util_epoch_ms()));
}

static void chat_req_who(struct chat *c, struct chat_conn *conn, const struct chat_req *r)
{
    struct chat_member *m = chat_req_member(conn, r);

    if (m == NULL)
        return;
    if (r->id != NULL && chat_ids_full(conn)) {
        chat_error(conn, "who", m->room->name, m->room->len, r->id, CHAT_REASON_IDS_FULL);
        return;
    }
    if (chat_send(c, IPC_WHO, ++c->next_req, 0, m, NULL, 0) == -1)
        chat_error(conn, "who", m->room->name, m->room->len, r->id, "chat service unavailable");
    else
        chat_remember_id(conn, c->next_req, r->id);
}

static void chat_req_direct(struct chat *c, struct chat_conn *conn, const struct chat_req *r)
{
    struct chat_member *m = chat_req_member(conn, r);
    struct ipc_msg msg;

    if (m == NULL)
        return;
    if (upg_user_name_check(r->to, r->to_len) != NULL) {
        chat_error(conn, "direct", m->room->name, m->room->len, r->id, "user not present");
        return;
    }
    if (!chat_req_text_ok(conn, r, m))
        return;
    if (r->id != NULL && chat_ids_full(conn)) {
        chat_error(conn, "direct", m->room->name, m->room->len, r->id, CHAT_REASON_IDS_FULL);
        return;
    }
    ipc_msg_set(&msg, IPC_DIRECT, ++c->next_req, 0, m->room->name, m->room->len,
                chat_conn_name(conn), conn->len, r->to, r->to_len);
    ipc_msg_set_field(&msg, 3, r->text, r->text_len);
    if (c->send(&msg, c->send_arg) == -1)
        chat_error(conn, "direct", m->room->name, m->room->len, r->id, "chat service unavailable");
    else
        chat_remember_id(conn, c->next_req, r->id);
}

/* A typed client's frame: one request. */
static void chat_typed_text(struct chat *c, struct chat_conn *conn, const char *text, size_t len)
{
    struct chat_req r;
    char reason[CHAT_REASON_MAX];

    if (chat_req_parse(text, len, &r, reason, sizeof(reason)) == -1) {
        chat_error(conn, r.type_name, NULL, 0, r.id, reason);
        chat_req_free(&r);
        if (++conn->bad_requests >= CHAT_BAD_REQUESTS_MAX) {
            wss_log(LOG_INFO, conn->s, "%u bad requests in a row: closing", conn->bad_requests);
            wss_close(conn->s, WSLAY_CODE_POLICY_VIOLATION, "too many bad requests");
        }
        return;
    }
    conn->bad_requests = 0;
    /* every request counts against the rate limit: a who or a join costs
     * Redis as much as a message */
    if (!chat_rate_ok(c, conn, &r)) {
        chat_req_free(&r);
        return;
    }
    switch (r.type) {
    case CHAT_REQ_SEND:
        chat_req_send(c, conn, &r);
        break;
    case CHAT_REQ_JOIN:
        chat_req_join(c, conn, &r);
        break;
    case CHAT_REQ_LEAVE:
        chat_req_leave(c, conn, &r);
        break;
    case CHAT_REQ_WHO:
        chat_req_who(c, conn, &r);
        break;
    case CHAT_REQ_DIRECT:
        chat_req_direct(c, conn, &r);
        break;
    }
    chat_req_free(&r);
}

static void chat_text(struct wss_session *s, const char *text, size_t len, void *arg)
{
    struct chat_conn *conn = chat_conn_of(s);

    if (conn->typed)
        chat_typed_text(arg, conn, text, len);
    else
        chat_plain_text(arg, conn, text, len);
}

/* The session is going away (any state): release its names. */
static void chat_gone(struct wss_session *s, void *arg)
{
    struct chat *c = arg;
    struct chat_conn *conn = chat_conn_of(s);

    if (conn == NULL)
        return;
    /* not the state: a session closed while it waited is CLOSING, and
     * still listed under its request id */
    while (conn->rooms != NULL)
        chat_leave(c, conn->rooms);
    chat_forget_ids(conn);
    s->app_data = NULL;
    s->label = "";
    free(conn);
}

/* ---- the broker ------------------------------------------------------------------ */

static void chat_reregister_room(const char *key, size_t keylen, void *val, void *arg)
{
    const struct chat_member *m = val;

    if (m->joined)
        chat_send_msg(arg, IPC_JOIN, 0, IPC_JOIN_REREGISTER, m->room->name, m->room->len, key,
                      keylen, "", 0);
}

/* A room's members again, then how far its stream is seen here (where a
 * gap a restarted broker reads starts). */
static void chat_reregister(const char *key, size_t keylen, void *val, void *arg)
{
    const struct chat_room *r = val;
    char id[STREAM_ID_MAX];
    size_t n;

    (void)key;
    (void)keylen;
    dict_foreach(&r->members, chat_reregister_room, arg);
    if (r->have_pos) {
        n = stream_id_format(&r->pos, id);
        chat_send_msg(arg, IPC_SEEN, 0, 0, r->name, r->len, id, n, NULL, 0);
    }
}

static void chat_send_pending_join(const char *key, size_t keylen, void *val, void *arg)
{
    (void)key;
    (void)keylen;
    chat_send_join(arg, val);
}

static int chat_holds(const struct chat *c, const char *room, size_t rlen, const char *user,
                      size_t len)
{
    const struct chat_room *r = chat_rooms_get(&c->rooms, room, rlen);
    const struct chat_member *m = r != NULL ? dict_get(&r->members, user, len) : NULL;

    return m != NULL && m->joined;
}

void chat_on_broker_up(struct chat *c)
{
    struct chat_orphan *o;

    dict_foreach(&c->rooms.by_name, chat_reregister, c);
    /* recent leaves again (a user who rejoined here since is not touched) */
    for (o = c->orphans; o != NULL; o = o->next) {
        if (chat_holds(c, o->data, o->roomlen, o->data + o->roomlen, o->len))
            continue;
        chat_send_msg(c, IPC_LEAVE, 0, IPC_LEAVE_F_ORPHAN, o->data, o->roomlen,
                      o->data + o->roomlen, o->len, NULL, 0);
    }
    if (c->orphans != NULL) /* confirm them all with one PING */
        chat_send_msg(c, IPC_PING, c->orphans->seq, 0, "", 0, NULL, 0, NULL, 0);
    dict_foreach(&c->pending, chat_send_pending_join, c); /* joins that waited */
    if (c->rooms.by_name.count > 0 || c->pending.count > 0)
        log_msg(LOG_INFO, "re-registered %zu room(s) with the broker, %zu join(s) sent",
                c->rooms.by_name.count, c->pending.count);
}

/* A join could not be granted. */
static void chat_join_refused(struct chat *c, struct chat_member *m, enum ipc_join_status st)
{
    struct chat_conn *conn = m->conn;
    char text[sizeof(CHAT_TEXT_TAKEN_FMT) + UPG_USER_MAX_BYTES];
    const char *reason = st == IPC_JOIN_TAKEN        ? "name taken in that room"
                         : st == IPC_JOIN_ROOMS_FULL ? "too many rooms on this server"
                                                     : "chat service unavailable";

    if (!m->url_room) {
        chat_error(conn, "join", m->room->name, m->room->len, chat_id_of(conn, m->join_req),
                   reason);
    } else if (st == IPC_JOIN_TAKEN) {
        snprintf(text, sizeof(text), CHAT_TEXT_TAKEN_FMT, chat_conn_name(conn));
        metrics_inc(MS_REFUSED + MREF_NAME_TAKEN);
        chat_refuse_url_room(m, CHAT_CLOSE_NAME_TAKEN, CHAT_CLOSE_NAME_TAKEN_REASON, reason, text);
    } else {
        chat_refuse_url_room(m, CHAT_CLOSE_TRY_AGAIN_LATER, reason, reason,
                             CHAT_TEXT_JOIN_UNAVAILABLE);
    }
    chat_member_free(&c->rooms, m);
}

static void chat_on_join_reply(struct chat *c, const struct ipc_msg *m)
{
    uint32_t id = m->id;
    struct chat_member *mb = dict_del(&c->pending, (const char *)&id, sizeof(id));
    struct chat_conn *conn;
    char text[sizeof(CHAT_TEXT_WELCOME_FMT) + UPG_USER_MAX_BYTES];

    if (mb != NULL)
        mb->join_pending = 0;
    if (mb == NULL || mb->conn->s->state == WSS_CLOSING || mb->conn->s->state == WSS_FINAL_WRITE) {
        /* the member left, or its connection is closing, before the
         * answer: give a granted name back */
        if (m->flags == IPC_JOIN_ACCEPTED)
            chat_send_msg(c, IPC_LEAVE, 0, 0, (const char *)m->f[0].p, m->f[0].len, m->f[1].p,
                          m->f[1].len, NULL, 0);
        if (mb != NULL)
            chat_member_free(&c->rooms, mb);
        return;
    }
    conn = mb->conn;
    free(mb->join_arg);
    mb->join_arg = NULL;
    if (m->flags != IPC_JOIN_ACCEPTED) {
        chat_join_refused(c, mb, (enum ipc_join_status)m->flags);
        return;
    }
    /* with history asked for, the replay follows the reply: live messages
     * wait for its end */
    if (mb->join_mode == IPC_JOIN_PLAIN || chat_member_catch_up(mb) == -1)
        chat_member_joined(mb);
    if (conn->typed) {
        chat_queue_event(conn->s,
                         chat_ev_welcome(mb->room->name, mb->room->len, chat_conn_name(conn),
                                         conn->len, util_epoch_ms()));
    } else {
        int n = snprintf(text, sizeof(text), CHAT_TEXT_WELCOME_FMT, chat_conn_name(conn));
        wss_queue_text(conn->s, text, (size_t)n);
    }
    if (mb->url_room) {
        wss_open(conn->s);
        wss_log(LOG_INFO, conn->s, "joined%s%s", mb->room->len ? " room " : "", mb->room->name);
    } else {
        wss_log(LOG_INFO, conn->s, "joined room '%s'", mb->room->name);
    }
}

/* The member a broker reply is about (its room and user fields). */
static struct chat_member *chat_member_for(const struct chat *c, const struct ipc_msg *m)
{
    const struct chat_room *r = chat_rooms_get(&c->rooms, (const char *)m->f[0].p, m->f[0].len);
    struct chat_member *mb =
        r != NULL ? dict_get(&r->members, (const char *)m->f[1].p, m->f[1].len) : NULL;

    return mb != NULL && mb->joined ? mb : NULL;
}

static void chat_on_publish_fail(struct chat *c, const struct ipc_msg *m)
{
    struct chat_member *mb = chat_member_for(c, m);
    char reason[CHAT_REASON_MAX];

    if (mb == NULL)
        return;
    if (!mb->conn->typed) {
        wss_queue_text(mb->conn->s, CHAT_TEXT_NOT_DELIVERED, strlen(CHAT_TEXT_NOT_DELIVERED));
        return;
    }
    snprintf(reason, sizeof(reason), "%.*s", (int)m->f[2].len, (const char *)m->f[2].p);
    chat_send_answered(mb->conn, m->id);
    chat_error(mb->conn, m->flags & IPC_FAIL_F_DIRECT ? "direct" : "send", mb->room->name,
               mb->room->len, chat_id_of(mb->conn, m->id), reason);
}

static void chat_on_who_reply(struct chat *c, const struct ipc_msg *m)
{
    struct chat_member *mb = chat_member_for(c, m);
    char count[24];

    if (mb == NULL || !mb->conn->typed)
        return;
    if (m->flags & IPC_WHO_UNAVAILABLE) {
        chat_error(mb->conn, "who", mb->room->name, mb->room->len, chat_id_of(mb->conn, m->id),
                   "chat service unavailable");
        return;
    }
    snprintf(count, sizeof(count), "%.*s", (int)(m->f[2].len < 23 ? m->f[2].len : 23),
             (const char *)m->f[2].p);
    chat_queue_event(mb->conn->s,
                     chat_ev_presence(mb->room->name, mb->room->len, chat_conn_name(mb->conn),
                                      mb->conn->len, strtoll(count, NULL, 10),
                                      (const char *)m->f[3].p, m->f[3].len, util_epoch_ms()));
}

/* The member a replay frame is for: joined, replaying, by that join. */
static struct chat_member *chat_replaying_member(const struct chat *c, const struct ipc_msg *m)
{
    struct chat_member *mb = chat_member_for(c, m);

    return mb != NULL && mb->cu != NULL && mb->join_req == m->id ? mb : NULL;
}

/* The replay is over: a typed client hears how it went, then what waited. */
static void chat_on_history_end(struct chat *c, const struct ipc_msg *m)
{
    struct chat_member *mb = chat_replaying_member(c, m);
    struct chat_conn *conn;
    struct stream_id seam;
    int has_seam;

    if (mb == NULL)
        return;
    conn = mb->conn;
    has_seam = stream_id_parse((const char *)m->f[2].p, m->f[2].len, &seam) == 0;
    if (conn->typed && (m->flags & IPC_HISTORY_F_UNAVAILABLE))
        chat_error(conn, "join", mb->room->name, mb->room->len, chat_id_of(conn, mb->join_req),
                   "history unavailable");
    else if (conn->typed)
        chat_queue_event(conn->s, chat_ev_history(mb->room->name, mb->room->len,
                                                  chat_conn_name(conn), conn->len,
                                                  chat_member_replayed(mb),
                                                  (m->flags & IPC_HISTORY_F_TRUNCATED) != 0,
                                                  util_epoch_ms()));
    chat_member_caught_up(mb, has_seam ? &seam : NULL);
}

/* The broker went away mid-replay: its end will not come. */
static void chat_end_replays(const char *key, size_t keylen, void *val, void *arg)
{
    struct chat_room *r = val;
    struct chat_member *mb;

    (void)key;
    (void)keylen;
    (void)arg;
    for (mb = r->typed; mb != NULL; mb = mb->tnext)
        chat_fail_unanswered(mb->conn);
    while ((mb = r->catching) != NULL) {
        chat_fail_unanswered(mb->conn);
        if (mb->conn->typed)
            chat_error(mb->conn, "join", r->name, r->len, chat_id_of(mb->conn, mb->join_req),
                       "history unavailable");
        chat_member_caught_up(mb, NULL);
    }
}

static void chat_on_publish_ok(struct chat *c, const struct ipc_msg *m)
{
    struct chat_member *mb = chat_member_for(c, m);

    if (mb == NULL || !mb->conn->typed)
        return;
    chat_send_answered(mb->conn, m->id);
    chat_queue_event(mb->conn->s,
                     chat_ev_ack(mb->room->name, mb->room->len, chat_conn_name(mb->conn),
                                 mb->conn->len, m->f[2].len > 0 ? (const char *)m->f[2].p : NULL,
                                 m->f[2].len, chat_id_of(mb->conn, m->id), util_epoch_ms()));
}

void chat_on_broker_msg(struct chat *c, const struct ipc_msg *m)
{
    struct chat_member *mb;
    struct stream_id id;

    switch (m->type) {
    case IPC_DELIVER:
        chat_rooms_deliver(&c->rooms, (const char *)m->f[0].p, m->f[0].len, (const char *)m->f[1].p,
                           m->f[1].len, (m->flags & IPC_DELIVER_F_TAGGED) != 0);
        break;
    case IPC_HISTORY:
        if ((mb = chat_replaying_member(c, m)) != NULL)
            chat_member_replay(mb, (const char *)m->f[2].p, m->f[2].len);
        break;
    case IPC_HISTORY_END:
        chat_on_history_end(c, m);
        break;
    case IPC_PUBLISH_OK:
        chat_on_publish_ok(c, m);
        break;
    case IPC_SEEN:
        if (stream_id_parse((const char *)m->f[1].p, m->f[1].len, &id) == 0)
            chat_rooms_seen(&c->rooms, (const char *)m->f[0].p, m->f[0].len, &id);
        break;
    case IPC_DELIVER_DIRECT:
        chat_rooms_deliver_direct(&c->rooms, (const char *)m->f[0].p, m->f[0].len,
                                  (const char *)m->f[1].p, m->f[1].len, (const char *)m->f[2].p,
                                  m->f[2].len, (const char *)m->f[3].p, m->f[3].len);
        break;
    case IPC_JOIN_REPLY:
        chat_on_join_reply(c, m);
        break;
    case IPC_PUBLISH_FAIL:
        chat_on_publish_fail(c, m);
        break;
    case IPC_WHO_REPLY:
        chat_on_who_reply(c, m);
        break;
    case IPC_PONG:
        chat_on_leaves_confirmed(c, m->id);
        break;
    case IPC_LINK:
        if (c->redis_up != (m->flags == IPC_LINK_UP))
            log_msg(m->flags == IPC_LINK_UP ? LOG_INFO : LOG_WARN, "chat service %s",
                    m->flags == IPC_LINK_UP ? "available" : "unavailable (redis down)");
        c->redis_up = m->flags == IPC_LINK_UP;
        break;
    default:
        break;
    }
}

void chat_on_broker_lost(struct chat *c)
{
    struct chat_member *m;

    c->redis_up = 0;
    dict_foreach(&c->rooms.by_name, chat_end_replays, NULL);
    /* their JOIN_REPLY will never come: refuse them now */
    while ((m = dict_any(&c->pending)) != NULL) {
        dict_del(&c->pending, (const char *)&m->join_req, sizeof(m->join_req));
        m->join_pending = 0;
        chat_join_refused(c, m, IPC_JOIN_UNAVAILABLE);
    }
}

void chat_init(struct chat *c, const struct cfg *cfg, struct wss_server *srv, chat_send_fn send,
               void *send_arg)
{
    memset(c, 0, sizeof(*c));
    c->app.open = chat_open;
    c->app.check = chat_check;
    c->app.text = chat_text;
    c->app.gone = chat_gone;
    c->app.arg = c;
    c->cfg = cfg;
    c->srv = srv;
    c->send = send;
    c->send_arg = send_arg;
    chat_rooms_init(&c->rooms, srv);
    dict_init(&c->pending);
}

void chat_deinit(struct chat *c)
{
    struct chat_orphan *o;

    while ((o = c->orphans) != NULL) {
        c->orphans = o->next;
        free(o);
    }
    chat_rooms_deinit(&c->rooms);
    dict_deinit(&c->pending);
}
