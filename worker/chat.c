/* chat.c -- the chat application in a worker.
 *
 * A name is granted by the broker (SADD decides cluster-wide); until then
 * the session waits, upgraded but not reading, in `pending` under its
 * request id. Delivered messages carry the seed's payload "user: text": the
 * sender is the part before the first ':' (names cannot contain ':'), found
 * once per message, and every other subscribed session gets the same
 * encoded frame.
 */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "chat_payload.h"
#include "chat_text.h"
#include "config.h"
#include "ipc.h"
#include "log.h"
#include "utf8.h"
#include "util.h"
#include "ws_frame.h"
#include "ws_session.h"

#define CHAT_LABEL "user=" /* a session's log label: "user=NAME" */
#define CHAT_LABEL_LEN (sizeof(CHAT_LABEL) - 1)

/* What chat keeps per session (its app_data), with the name. */
struct chat_user {
    uint32_t join_req;
    unsigned joined : 1;       /* holds its name in c->users and in Redis */
    unsigned join_pending : 1; /* listed in c->pending under join_req */
    /* rate limit: a token bucket in thousandths of a message */
    uint32_t rl_tokens;
    uint32_t rl_dropped;       /* messages refused since the last one let through */
    uint64_t rl_last_ms;
    size_t len;                /* of the name */
    char label[];              /* CHAT_LABEL, then the name, NUL-terminated */
};

static struct chat_user *chat_user_of(const struct wss_session *s)
{
    return s->app_data;
}

static const char *chat_name(const struct chat_user *u)
{
    return u->label + CHAT_LABEL_LEN;
}

/* A leave a broker may not have carried out: one that could not be sent,
 * or one sent shortly before the broker link broke (it may have died with
 * the broker). Leaves are idempotent in Redis (a name is announced only if
 * it was still listed), so they are sent again to the next broker. */
struct chat_orphan {
    struct chat_orphan *next;
    uint64_t at_ms;
    uint32_t seq; /* the broker's PONG with this id or later confirms it */
    size_t len;
    char user[];
};

#define CHAT_LEAVE_KEEP_MS 60000 /* unconfirmed leaves older than this are dropped */

/* A message to the broker about the configured channel. */
static int chat_send_msg(struct chat *c, enum ipc_type type, uint32_t id, uint16_t flags,
                         const void *user, size_t ulen, const void *text, size_t tlen)
{
    struct ipc_msg m;

    ipc_msg_set(&m, type, id, flags, c->cfg->channel, c->cfg->channel_len, user, ulen, text,
                tlen);
    return c->send(&m, c->send_arg);
}

static int chat_send(struct chat *c, enum ipc_type type, uint32_t id, const struct chat_user *u,
                     const void *text, size_t len)
{
    return chat_send_msg(c, type, id, 0, chat_name(u), u->len, text, len);
}

static void chat_refuse(struct wss_session *s, const char *text, uint16_t code, const char *reason)
{
    wss_queue_text(s, text, strlen(text));
    wss_close(s, code, reason);
}

static void chat_refuse_unavailable(struct wss_session *s)
{
    chat_refuse(s, CHAT_TEXT_JOIN_UNAVAILABLE, CHAT_CLOSE_TRY_AGAIN_LATER,
                "chat service unavailable");
}

/* Upgraded with a valid name: ask the broker for it. */
static void chat_ask_join(struct chat *c, struct wss_session *s)
{
    struct chat_user *u = chat_user_of(s);

    u->join_req = ++c->next_req;
    if (dict_add(&c->pending, (const char *)&u->join_req, sizeof(u->join_req), s) != 0) {
        chat_refuse_unavailable(s);
        return;
    }
    u->join_pending = 1;
    /* the broker decides (it knows whether Redis is up); with no broker yet
     * (a worker just started, or the broker restarts) the join waits for
     * one: chat_on_broker_up sends it, chat_on_broker_lost refuses it */
    chat_send(c, IPC_JOIN, u->join_req, u, NULL, 0);
}

/* GET /chat/{user}: the name and the token are checked before the 101
 * where HTTP can say what is wrong; a token refused after it, with a close
 * code, since browsers can read a close code but not a status. */
static void chat_open(struct wss_session *s, const struct upg_request *req,
                      const struct upg_str *raw_user, void *arg)
{
    static struct access_token tok; /* 4 KiB: not on the stack, one request at a time */
    struct chat *c = arg;
    char user[UPG_USER_MAX_BYTES + 1];
    const char *why;
    struct chat_user *u;
    ssize_t ulen = upg_percent_decode(raw_user->p, raw_user->len, user, sizeof(user));

    if (ulen < 0) {
        wss_http_reply(s, 400, NULL, "user name: bad percent-encoding or too long");
        return;
    }
    why = upg_user_name_check(user, (size_t)ulen);
    if (why != NULL) {
        wss_http_reply(s, 400, NULL, why);
        return;
    }
    if (access_token_find(req, &tok) == -1) {
        wss_http_reply(s, 400, NULL, "token: bad percent-encoding");
        return;
    }
    if (wss_upgrade(s, req, &tok.protocol) == -1)
        return;
    u = calloc(1, sizeof(*u) + CHAT_LABEL_LEN + (size_t)ulen + 1);
    if (u == NULL) {
        wss_close(s, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    memcpy(u->label, CHAT_LABEL, CHAT_LABEL_LEN);
    memcpy(u->label + CHAT_LABEL_LEN, user, (size_t)ulen + 1);
    u->len = (size_t)ulen;
    s->app_data = u;
    s->label = u->label;
    why = access_token_check(c->cfg, &tok, user, (size_t)ulen);
    if (why != NULL) {
        wss_log(LOG_INFO, s, "authentication failed: %s", why);
        wss_close(s, CHAT_CLOSE_UNAUTHORIZED, why);
        return;
    }
    chat_ask_join(c, s);
}

/* Token bucket: rate-limit messages per second, bursts up to
 * rate-limit-burst. A client over the limit is told once per episode; one
 * that keeps going for another whole burst is closed with 1008. */
static int chat_rate_ok(struct chat *c, struct wss_session *s)
{
    const struct cfg *cfg = c->cfg;
    struct chat_user *u = chat_user_of(s);
    uint64_t now = util_now_ms(), cap = (uint64_t)cfg->rate_limit_burst * 1000;
    uint64_t tokens;

    if (cfg->rate_limit == 0)
        return 1;
    if (u->rl_last_ms == 0)
        tokens = cap; /* a new session starts with a full bucket */
    else
        tokens = u->rl_tokens + (now - u->rl_last_ms) * (uint64_t)cfg->rate_limit;
    u->rl_last_ms = now;
    if (tokens > cap)
        tokens = cap;
    if (tokens >= 1000) {
        u->rl_tokens = (uint32_t)(tokens - 1000);
        u->rl_dropped = 0;
        return 1;
    }
    u->rl_tokens = (uint32_t)tokens;
    if (u->rl_dropped++ == 0) {
        wss_log(LOG_INFO, s, "over rate-limit, warned");
        wss_queue_text(s, CHAT_TEXT_RATE_LIMITED, strlen(CHAT_TEXT_RATE_LIMITED));
    } else if (u->rl_dropped > (uint32_t)cfg->rate_limit_burst) {
        wss_log(LOG_WARN, s, "flooding past the warning: closing");
        wss_close(s, WSLAY_CODE_POLICY_VIOLATION, "rate limit exceeded");
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

static void chat_text(struct wss_session *s, const char *text, size_t len, void *arg)
{
    struct chat *c = arg;

    if (!chat_rate_ok(c, s))
        return;
    if (!chat_text_allowed(text, len)) {
        wss_queue_text(s, CHAT_TEXT_BAD_CHARS, strlen(CHAT_TEXT_BAD_CHARS));
        return;
    }
    /* even while Redis is down: the broker holds messages in its outbox */
    if (chat_send(c, IPC_PUBLISH, ++c->next_req, chat_user_of(s), text, len) == -1)
        wss_queue_text(s, CHAT_TEXT_NOT_DELIVERED, strlen(CHAT_TEXT_NOT_DELIVERED));
}

/* Keep a leave until the broker confirms Redis has carried it out: after
 * the LEAVE the worker sends PING(seq), which the broker answers only once
 * a Redis round trip behind the leave is done. Newest first. */
static void chat_remember_leave(struct chat *c, const char *user, size_t len)
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
    o = malloc(sizeof(*o) + len);
    if (o == NULL) {
        log_msg(LOG_ERROR, "out of memory: leave of '%.*s' not kept", (int)len, user);
        return;
    }
    o->at_ms = now;
    o->seq = ++c->leave_seq;
    o->len = len;
    memcpy(o->user, user, len);
    o->next = c->orphans;
    c->orphans = o;
    chat_send_msg(c, IPC_PING, o->seq, 0, NULL, 0, NULL, 0);
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

/* The session is going away (any state): release its name. */
static void chat_gone(struct wss_session *s, void *arg)
{
    struct chat *c = arg;
    struct chat_user *u = chat_user_of(s);

    if (u == NULL)
        return;
    /* not the state: a session closed while it waited is CLOSING, and
     * still listed under its request id (whose key lives in u) */
    if (u->join_pending)
        dict_del(&c->pending, (const char *)&u->join_req, sizeof(u->join_req));
    if (u->joined) {
        dict_del(&c->users, chat_name(u), u->len);
        if (chat_send(c, IPC_LEAVE, 0, u, NULL, 0) == -1)
            log_msg(LOG_INFO, "broker away: leave of '%s' is sent when it is back", chat_name(u));
        chat_remember_leave(c, chat_name(u), u->len);
    }
    s->app_data = NULL;
    s->label = "";
    free(u);
}

static void chat_reregister(const char *key, size_t keylen, void *val, void *arg)
{
    struct chat *c = arg;

    (void)val;
    chat_send_msg(c, IPC_JOIN, 0, IPC_JOIN_F_REREGISTER, key, keylen, NULL, 0);
}

static void chat_send_join(const char *key, size_t keylen, void *val, void *arg)
{
    struct wss_session *s = val;
    struct chat_user *u = chat_user_of(s);

    (void)key;
    (void)keylen;
    chat_send(arg, IPC_JOIN, u->join_req, u, NULL, 0);
}

void chat_on_broker_up(struct chat *c)
{
    struct chat_orphan *o;

    dict_foreach(&c->users, chat_reregister, c);
    /* recent leaves again (a user who rejoined here since is not touched) */
    for (o = c->orphans; o != NULL; o = o->next) {
        if (dict_get(&c->users, o->user, o->len) != NULL)
            continue;
        chat_send_msg(c, IPC_LEAVE, 0, IPC_LEAVE_F_ORPHAN, o->user, o->len, NULL, 0);
    }
    if (c->orphans != NULL) /* confirm them all with one PING */
        chat_send_msg(c, IPC_PING, c->orphans->seq, 0, NULL, 0, NULL, 0);
    dict_foreach(&c->pending, chat_send_join, c); /* joins that waited */
    if (c->users.count > 0 || c->pending.count > 0)
        log_msg(LOG_INFO, "re-registered %zu user(s) with the broker, %zu join(s) sent",
                c->users.count, c->pending.count);
}

static void chat_on_join_reply(struct chat *c, const struct ipc_msg *m)
{
    uint32_t id = m->id;
    struct wss_session *s = dict_del(&c->pending, (const char *)&id, sizeof(id));
    char text[sizeof(CHAT_TEXT_TAKEN_FMT) + UPG_USER_MAX_BYTES];
    struct chat_user *u = s != NULL ? chat_user_of(s) : NULL;
    int n;

    if (u != NULL)
        u->join_pending = 0;
    if (s == NULL || s->state != WSS_UPGRADED) {
        /* the session left, or is closing, before the answer: give a
         * granted name back */
        if (m->flags == IPC_JOIN_ACCEPTED) {
            struct ipc_msg leave;
            ipc_msg_set(&leave, IPC_LEAVE, 0, 0, m->f[0].p, m->f[0].len, m->f[1].p, m->f[1].len,
                        NULL, 0);
            c->send(&leave, c->send_arg);
        }
        return;
    }
    switch (m->flags) {
    case IPC_JOIN_ACCEPTED:
        if (dict_add(&c->users, chat_name(u), u->len, s) != 0) {
            chat_refuse_unavailable(s);
            return;
        }
        u->joined = 1;
        wss_subscribe(s); /* messages from now on, after the welcome */
        n = snprintf(text, sizeof(text), CHAT_TEXT_WELCOME_FMT, chat_name(u));
        wss_queue_text(s, text, (size_t)n);
        wss_open(s);
        wss_log(LOG_INFO, s, "joined");
        break;
    case IPC_JOIN_TAKEN:
        n = snprintf(text, sizeof(text), CHAT_TEXT_TAKEN_FMT, chat_name(u));
        wss_queue_text(s, text, (size_t)n);
        wss_close(s, CHAT_CLOSE_NAME_TAKEN, CHAT_CLOSE_NAME_TAKEN_REASON);
        break;
    default:
        chat_refuse_unavailable(s);
        break;
    }
}

static void chat_deliver(struct chat *c, const struct ipc_msg *m)
{
    const char *payload = (const char *)m->f[1].p;
    size_t len = m->f[1].len;
    ssize_t sender_len = chat_payload_sender(payload, len);
    const struct wss_session *sender = NULL;
    struct ws_frame *f;

    if (sender_len >= 0)
        sender = dict_get(&c->users, payload, (size_t)sender_len);
    f = ws_frame_new(WSLAY_TEXT_FRAME, payload, len);
    if (f == NULL || wss_broadcast(c->srv, f, sender ? sender->id : 0) != 0)
        log_msg(LOG_ERROR, "out of memory: a message was not delivered");
    ws_frame_unref(f);
}

static void chat_on_publish_fail(struct chat *c, const struct ipc_msg *m)
{
    struct wss_session *s = dict_get(&c->users, (const char *)m->f[1].p, m->f[1].len);

    if (s != NULL)
        wss_queue_text(s, CHAT_TEXT_NOT_DELIVERED, strlen(CHAT_TEXT_NOT_DELIVERED));
}

void chat_on_broker_msg(struct chat *c, const struct ipc_msg *m)
{
    switch (m->type) {
    case IPC_DELIVER:
        chat_deliver(c, m);
        break;
    case IPC_JOIN_REPLY:
        chat_on_join_reply(c, m);
        break;
    case IPC_PUBLISH_FAIL:
        chat_on_publish_fail(c, m);
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
    struct wss_session *s;

    c->redis_up = 0;
    /* their JOIN_REPLY will never come: refuse them now */
    while ((s = dict_any(&c->pending)) != NULL) {
        struct chat_user *u = chat_user_of(s);
        dict_del(&c->pending, (const char *)&u->join_req, sizeof(u->join_req));
        u->join_pending = 0;
        chat_refuse_unavailable(s);
    }
}

void chat_init(struct chat *c, const struct cfg *cfg, struct wss_server *srv, chat_send_fn send,
               void *send_arg)
{
    memset(c, 0, sizeof(*c));
    c->app.open = chat_open;
    c->app.text = chat_text;
    c->app.gone = chat_gone;
    c->app.arg = c;
    c->cfg = cfg;
    c->srv = srv;
    c->send = send;
    c->send_arg = send_arg;
    dict_init(&c->users);
    dict_init(&c->pending);
}

void chat_deinit(struct chat *c)
{
    struct chat_orphan *o;

    while ((o = c->orphans) != NULL) {
        c->orphans = o->next;
        free(o);
    }
    dict_deinit(&c->users);
    dict_deinit(&c->pending);
}
