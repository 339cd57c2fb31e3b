/* chat.c -- chat rules in a worker.
 *
 * A name is granted by the broker (SADD decides cluster-wide); until then
 * the session waits in `pending` under its request id. Delivered messages
 * carry the seed's payload "user: text": the sender is the part before the
 * first ':' (names cannot contain ':'), found once per message, and every
 * other open session gets the same encoded frame.
 */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_text.h"
#include "ipc.h"
#include "log.h"
#include "util.h"
#include "ws_session.h"

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

static int chat_send(struct worker *w, enum ipc_type type, uint32_t id, const struct wss_session *s,
                     const void *text, size_t len)
{
    struct ipc_msg m;

    ipc_msg_set(&m, type, id, 0, w->cfg->channel, w->cfg->channel_len, s->user, s->userlen, text,
                len);
    return worker_send_broker(w, &m);
}

static void chat_refuse(struct wss_session *s, const char *text, uint16_t code, const char *reason)
{
    wss_queue_text(s, text, strlen(text));
    wss_close(s, code, reason);
}

void chat_on_upgraded(struct wss_session *s)
{
    struct worker *w = s->w;

    s->join_req = ++w->next_req;
    if (dict_add(&w->pending, (const char *)&s->join_req, sizeof(s->join_req), s) != 0) {
        chat_refuse(s, CHAT_TEXT_JOIN_UNAVAILABLE, CHAT_CLOSE_TRY_AGAIN_LATER,
                    "chat service unavailable");
        return;
    }
    s->join_pending = 1;
    /* the broker decides (it knows whether Redis is up); with no broker yet
     * (a worker just started, or the broker restarts) the join waits for
     * one: chat_on_broker_up sends it, chat_on_broker_lost refuses it */
    chat_send(w, IPC_JOIN, s->join_req, s, NULL, 0);
}

/* Token bucket: rate-limit messages per second, bursts up to
 * rate-limit-burst. A client over the limit is told once per episode; one
 * that keeps going for another whole burst is closed with 1008. */
static int chat_rate_ok(struct wss_session *s)
{
    const struct cfg *cfg = s->w->cfg;
    uint64_t now = util_now_ms(), cap = (uint64_t)cfg->rate_limit_burst * 1000;
    uint64_t tokens;

    if (cfg->rate_limit == 0)
        return 1;
    if (s->rl_last_ms == 0)
        tokens = cap; /* a new session starts with a full bucket */
    else
        tokens = s->rl_tokens + (now - s->rl_last_ms) * (uint64_t)cfg->rate_limit;
    s->rl_last_ms = now;
    if (tokens > cap)
        tokens = cap;
    if (tokens >= 1000) {
        s->rl_tokens = (uint32_t)(tokens - 1000);
        s->rl_dropped = 0;
        return 1;
    }
    s->rl_tokens = (uint32_t)tokens;
    if (s->rl_dropped++ == 0) {
        log_msg(LOG_INFO, "c=%llu %s user=%s: over rate-limit, warned", (unsigned long long)s->id,
                s->peer, s->user);
        wss_queue_text(s, CHAT_TEXT_RATE_LIMITED, strlen(CHAT_TEXT_RATE_LIMITED));
    } else if (s->rl_dropped > (uint32_t)cfg->rate_limit_burst) {
        log_msg(LOG_WARN, "c=%llu %s user=%s: flooding past the warning: closing",
                (unsigned long long)s->id, s->peer, s->user);
        wss_close(s, WSLAY_CODE_POLICY_VIOLATION, "rate limit exceeded");
    }
    return 0;
}

/* Line breaks and controls would let a user print a line that looks like
 * another user's message or a join notice ("hi\nalice: ..."); bidi
 * overrides could reorder the "user:" prefix on screen. The text is valid
 * UTF-8 already (wslay checked it). Returns 1 when acceptable. */
int chat_text_allowed(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text, *end;

    if (len == 0) /* an empty message may come as a NULL pointer */
        return 1;
    end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return 0;
            p++;
            continue;
        }
        if (c == 0xc2 && p + 1 < end && p[1] < 0xa0) /* U+0080..U+009F: C1 controls */
            return 0;
        if (c == 0xe2 && p + 2 < end) {
            unsigned cp = ((c & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);
            if ((cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
                return 0; /* line/paragraph separators, bidi embeddings and isolates */
        }
        p += c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    }
    return 1;
}

void chat_on_text(struct wss_session *s, const char *text, size_t len)
{
    struct worker *w = s->w;

    if (!chat_rate_ok(s))
        return;
    if (!chat_text_allowed(text, len)) {
        wss_queue_text(s, CHAT_TEXT_BAD_CHARS, strlen(CHAT_TEXT_BAD_CHARS));
        return;
    }
    /* even while Redis is down: the broker holds messages in its outbox */
    if (chat_send(w, IPC_PUBLISH, ++w->next_req, s, text, len) == -1)
        wss_queue_text(s, CHAT_TEXT_NOT_DELIVERED, strlen(CHAT_TEXT_NOT_DELIVERED));
}

/* Keep a leave until the broker confirms Redis has carried it out: after
 * the LEAVE the worker sends PING(seq), which the broker answers only once
 * a Redis round trip behind the leave is done. Newest first. */
static void chat_remember_leave(struct worker *w, const char *user, size_t len)
{
    uint64_t now = util_now_ms();
    struct chat_orphan *o, **pp;
    struct ipc_msg m;

    for (pp = &w->orphans; *pp != NULL; pp = &(*pp)->next)
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
    o->seq = ++w->leave_seq;
    o->len = len;
    memcpy(o->user, user, len);
    o->next = w->orphans;
    w->orphans = o;
    ipc_msg_set(&m, IPC_PING, o->seq, 0, w->cfg->channel, w->cfg->channel_len, NULL, 0, NULL, 0);
    worker_send_broker(w, &m);
}

/* PONG(seq): every leave up to seq is done in Redis. */
static void chat_on_leaves_confirmed(struct worker *w, uint32_t seq)
{
    struct chat_orphan *o, **pp = &w->orphans;

    while ((o = *pp) != NULL) {
        if ((int32_t)(o->seq - seq) <= 0) {
            *pp = o->next;
            free(o);
        } else {
            pp = &o->next;
        }
    }
}

void chat_on_gone(struct wss_session *s)
{
    struct worker *w = s->w;

    /* not the state: a session closed while it waited is CLOSING, and
     * still listed under its request id (whose key lives in s) */
    if (s->join_pending)
        dict_del(&w->pending, (const char *)&s->join_req, sizeof(s->join_req));
    s->join_pending = 0;
    if (!s->joined)
        return;
    s->joined = 0;
    dict_del(&w->users, s->user, s->userlen);
    if (chat_send(w, IPC_LEAVE, 0, s, NULL, 0) == -1)
        log_msg(LOG_INFO, "broker away: leave of '%s' is sent when it is back", s->user);
    chat_remember_leave(w, s->user, s->userlen);
}

static void chat_reregister(const char *key, size_t keylen, void *val, void *arg)
{
    struct worker *w = arg;
    struct ipc_msg m;

    (void)val;
    ipc_msg_set(&m, IPC_JOIN, 0, IPC_JOIN_F_REREGISTER, w->cfg->channel, w->cfg->channel_len, key,
                keylen, NULL, 0);
    worker_send_broker(w, &m);
}

static void chat_send_join(const char *key, size_t keylen, void *val, void *arg)
{
    struct wss_session *s = val;

    (void)key;
    (void)keylen;
    (void)arg;
    chat_send(s->w, IPC_JOIN, s->join_req, s, NULL, 0);
}

void chat_on_broker_up(struct worker *w)
{
    struct chat_orphan *o;
    struct ipc_msg m;

    dict_foreach(&w->users, chat_reregister, w);
    /* recent leaves again (a user who rejoined here since is not touched) */
    for (o = w->orphans; o != NULL; o = o->next) {
        if (dict_get(&w->users, o->user, o->len) != NULL)
            continue;
        ipc_msg_set(&m, IPC_LEAVE, 0, IPC_LEAVE_F_ORPHAN, w->cfg->channel, w->cfg->channel_len,
                    o->user, o->len, NULL, 0);
        worker_send_broker(w, &m);
    }
    if (w->orphans != NULL) { /* confirm them all with one PING */
        ipc_msg_set(&m, IPC_PING, w->orphans->seq, 0, w->cfg->channel, w->cfg->channel_len, NULL, 0,
                    NULL, 0);
        worker_send_broker(w, &m);
    }
    dict_foreach(&w->pending, chat_send_join, NULL); /* joins that waited */
    if (w->users.count > 0 || w->pending.count > 0)
        log_msg(LOG_INFO, "re-registered %zu user(s) with the broker, %zu join(s) sent",
                w->users.count, w->pending.count);
}

void chat_deinit(struct worker *w)
{
    struct chat_orphan *o;

    while ((o = w->orphans) != NULL) {
        w->orphans = o->next;
        free(o);
    }
}

static void chat_on_join_reply(struct worker *w, const struct ipc_msg *m)
{
    uint32_t id = m->id;
    struct wss_session *s = dict_del(&w->pending, (const char *)&id, sizeof(id));
    char text[sizeof(CHAT_TEXT_TAKEN_FMT) + UPG_USER_MAX_BYTES];
    int n;

    if (s != NULL)
        s->join_pending = 0;
    if (s == NULL || s->state != WSS_JOINING) {
        /* the session left, or is closing, before the answer: give a
         * granted name back */
        if (m->flags == IPC_JOIN_ACCEPTED) {
            struct ipc_msg leave;
            ipc_msg_set(&leave, IPC_LEAVE, 0, 0, m->f[0].p, m->f[0].len, m->f[1].p, m->f[1].len,
                        NULL, 0);
            worker_send_broker(w, &leave);
        }
        return;
    }
    switch (m->flags) {
    case IPC_JOIN_ACCEPTED:
        if (dict_add(&w->users, s->user, s->userlen, s) != 0) {
            chat_refuse(s, CHAT_TEXT_JOIN_UNAVAILABLE, CHAT_CLOSE_TRY_AGAIN_LATER,
                        "chat service unavailable");
            return;
        }
        s->joined = 1;
        s->state = WSS_OPEN;
        wss_subscribe(s); /* messages from now on, after the welcome */
        n = snprintf(text, sizeof(text), CHAT_TEXT_WELCOME_FMT, s->user);
        wss_queue_text(s, text, (size_t)n);
        wss_resume_reading(s);
        log_msg(LOG_INFO, "c=%llu %s user=%s: joined", (unsigned long long)s->id, s->peer, s->user);
        break;
    case IPC_JOIN_TAKEN:
        n = snprintf(text, sizeof(text), CHAT_TEXT_TAKEN_FMT, s->user);
        wss_queue_text(s, text, (size_t)n);
        wss_close(s, CHAT_CLOSE_NAME_TAKEN, CHAT_CLOSE_NAME_TAKEN_REASON);
        break;
    default:
        chat_refuse(s, CHAT_TEXT_JOIN_UNAVAILABLE, CHAT_CLOSE_TRY_AGAIN_LATER,
                    "chat service unavailable");
        break;
    }
}

static void chat_deliver(struct worker *w, const struct ipc_msg *m)
{
    const char *payload = (const char *)m->f[1].p;
    size_t len = m->f[1].len;
    const char *colon = memchr(payload, ':', len);
    const struct wss_session *sender = NULL;
    struct wss_frame *f;

    if (colon != NULL)
        sender = dict_get(&w->users, payload, (size_t)(colon - payload));
    f = wss_frame_new_text(payload, len);
    if (f == NULL || bcast_append(&w->log, f, sender ? sender->id : 0) != 0)
        log_msg(LOG_ERROR, "out of memory: a message was not delivered");
    else
        w->log_dirty = 1; /* the joined sessions pick it up at the flush */
    wss_frame_unref(f);
}

static void chat_on_publish_fail(struct worker *w, const struct ipc_msg *m)
{
    struct wss_session *s = dict_get(&w->users, (const char *)m->f[1].p, m->f[1].len);

    if (s != NULL)
        wss_queue_text(s, CHAT_TEXT_NOT_DELIVERED, strlen(CHAT_TEXT_NOT_DELIVERED));
}

void chat_on_broker_msg(struct worker *w, const struct ipc_msg *m)
{
    switch (m->type) {
    case IPC_DELIVER:
        chat_deliver(w, m);
        break;
    case IPC_JOIN_REPLY:
        chat_on_join_reply(w, m);
        break;
    case IPC_PUBLISH_FAIL:
        chat_on_publish_fail(w, m);
        break;
    case IPC_PONG:
        chat_on_leaves_confirmed(w, m->id);
        break;
    case IPC_LINK:
        if (w->redis_up != (m->flags == IPC_LINK_UP))
            log_msg(m->flags == IPC_LINK_UP ? LOG_INFO : LOG_WARN, "chat service %s",
                    m->flags == IPC_LINK_UP ? "available" : "unavailable (redis down)");
        w->redis_up = m->flags == IPC_LINK_UP;
        break;
    default:
        break;
    }
}

void chat_on_broker_lost(struct worker *w)
{
    struct wss_session *s;

    w->redis_up = 0;
    /* their JOIN_REPLY will never come: refuse them now */
    while ((s = dict_any(&w->pending)) != NULL) {
        dict_del(&w->pending, (const char *)&s->join_req, sizeof(s->join_req));
        s->join_pending = 0;
        chat_refuse(s, CHAT_TEXT_JOIN_UNAVAILABLE, CHAT_CLOSE_TRY_AGAIN_LATER,
                    "chat service unavailable");
    }
}
