/* check_history.c -- history, acknowledgements and resume (docs/protocol.md,
 * "History, acknowledgements and resume"; issue 12) end to end: real TLS
 * redis-servers with a password, real redis-chat instances of 2 workers,
 * real WebSocket clients, the streams read back with redis-cli.
 *
 *   history: one Redis, instances a and b (history-on-join 5,
 *            history-on-join-max 100): the replay on join (URL room, join
 *            request, default and asked sizes, plain ?history=N), the seam
 *            under a steady stream from the other instance, resume on the
 *            same and the other instance, acks, the seed channel, bad input
 *   small:   one Redis, an instance with history-size 5 and history-ttl 60s
 *            (trimming, truncated resume, PTTL) and one with history-ttl 1s
 *            (an expired history)
 *   off:     one Redis, two instances with history-size 0
 *
 * Events are read with jansson, not with the server's code. */
#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define PROTO "redis-chat.v1"
#define PROTO_HEADER "Sec-WebSocket-Protocol: " PROTO
#define USERS_KEY "chat-users"
#define TS_SLACK_MS 60000 /* ts against this host's clock */
#define EV_MAX 8192
#define SPY_MAX 65536
#define ID_MAX 48
#define TEXT_MAX 128
#define SEQ_MAX 1000
#define CLI_MAX (SEQ_MAX * 96)

#define XSTR(x) STR(x)
#define STR(x) #x
#define HIST_DEFAULT 5 /* history-on-join of the history fixture */
#define HIST_MAX 100   /* its history-on-join-max */
#define HIST_OVER 101  /* one past it */
/* the history fixture's instances (HIST_DEFAULT, HIST_MAX) */
#define CONF_MAIN "history-on-join 5\nhistory-on-join-max 100\nrate-limit 0\n"
#define SMALL_SIZE 5
#define CONF_SMALL "history-size " XSTR(SMALL_SIZE) "\nhistory-ttl 60s\nrate-limit 0\n"
#define CONF_EXPIRE "history-ttl 1s\nrate-limit 0\n"
#define CONF_OFF "history-size 0\nrate-limit 0\n"

#define HISTORY_REASON "field \"history\" must be an integer from 0 to "
#define AFTER_REASON "field \"after\" must be a message id"
#define BOTH_REASON "\"history\" and \"after\" exclude each other"

static struct h_redis redis; /* history: a and b */
static struct h_chat chat_a, chat_b;
static struct h_redis redis_s; /* small: s (history-size 5, ttl 60s) and e (ttl 1s) */
static struct h_chat chat_s, chat_e;
static struct h_redis redis_o; /* off: o1 and o2 (history-size 0) */
static struct h_chat chat_o1, chat_o2;

static void main_setup(void)
{
    fx_tmp_enter();
    ck_assert_int_eq(h_redis_start(&redis, 1, "s3cret"), 0);
    fx_chat_ready(&chat_a, &redis, 2, CONF_MAIN);
    fx_chat_ready(&chat_b, &redis, 2, CONF_MAIN);
}

static void main_teardown(void)
{
    h_chat_free(&chat_a);
    h_chat_free(&chat_b);
    h_redis_free(&redis);
    fx_tmp_leave();
}

static void small_setup(void)
{
    fx_tmp_enter();
    ck_assert_int_eq(h_redis_start(&redis_s, 1, "s3cret"), 0);
    fx_chat_ready(&chat_s, &redis_s, 2, CONF_SMALL);
    fx_chat_ready(&chat_e, &redis_s, 1, CONF_EXPIRE);
}

static void small_teardown(void)
{
    h_chat_free(&chat_s);
    h_chat_free(&chat_e);
    h_redis_free(&redis_s);
    fx_tmp_leave();
}

static void off_setup(void)
{
    fx_tmp_enter();
    ck_assert_int_eq(h_redis_start(&redis_o, 1, "s3cret"), 0);
    fx_chat_ready(&chat_o1, &redis_o, 2, CONF_OFF);
    fx_chat_ready(&chat_o2, &redis_o, 2, CONF_OFF);
}

static void off_teardown(void)
{
    h_chat_free(&chat_o1);
    h_chat_free(&chat_o2);
    h_redis_free(&redis_o);
    fx_tmp_leave();
}

/* ---- message ids ------------------------------------------------------------- */

/* "ms-seq" with both parts decimal: 1, else 0. */
static int id_parse(const char *s, unsigned long long *ms, unsigned long long *seq)
{
    char *end;

    if (s == NULL || *s < '0' || *s > '9')
        return 0;
    *ms = strtoull(s, &end, 10);
    if (*end != '-' || end[1] < '0' || end[1] > '9')
        return 0;
    *seq = strtoull(end + 1, &end, 10);
    return *end == '\0';
}

/* <0, 0, >0 as stream ids compare (both valid). */
static int id_cmp(const char *a, const char *b)
{
    unsigned long long am, as, bm, bs;

    ck_assert_msg(id_parse(a, &am, &as) && id_parse(b, &bm, &bs), "bad ids %s, %s", a, b);
    if (am != bm)
        return am < bm ? -1 : 1;
    return as < bs ? -1 : as > bs;
}

/* ---- events ------------------------------------------------------------------ */

static char last_text[EV_MAX]; /* the text of the last event read, for messages */

static long long epoch_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The next text on c as a JSON object (json_decref it), or NULL: timeout
 * (c->timed_out), or with the reason on stderr. */
static json_t *ev_next(struct wsc *c, int timeout_ms)
{
    json_error_t err;
    json_t *ev;
    int n = wsc_recv_text(c, last_text, sizeof(last_text), timeout_ms);

    if (n < 0)
        fprintf(stderr, "ev_next: connection closed (close code %d)\n", c->close_code);
    if (n <= 0) {
        snprintf(last_text, sizeof(last_text), "(%s)", n == 0 ? "timeout" : "closed");
        return NULL;
    }
    ev = json_loads(last_text, JSON_REJECT_DUPLICATES, &err);
    if (ev == NULL || !json_is_object(ev)) {
        fprintf(stderr, "ev_next: not a JSON object: %s\n", last_text);
        json_decref(ev);
        return NULL;
    }
    return ev;
}

/* 1 when field key of ev is the string want, or JSON null when want is NULL. */
static int ev_field_is(const json_t *ev, const char *key, const char *want)
{
    const json_t *v = json_object_get(ev, key);

    if (want == NULL)
        return json_is_null(v);
    return json_is_string(v) && strcmp(json_string_value(v), want) == 0;
}

/* The next event on c that is not another user's joined or left notice
 * (those come whenever users come and go; check_typed.c is about them). */
static json_t *ev_skip(struct wsc *c, const char *me, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    json_t *ev;

    for (;;) {
        long long left = end - h_now_ms();

        ev = ev_next(c, left > 0 ? (int)left : 1);
        if (ev == NULL)
            return NULL;
        if ((!ev_field_is(ev, "type", "joined") && !ev_field_is(ev, "type", "left")) ||
            ev_field_is(ev, "user", me))
            return ev;
        json_decref(ev);
    }
}

/* ev is `type` in room from user, with a ts of the server's clock. */
static void ev_check(const json_t *ev, const char *type, const char *room, const char *user,
                     int line)
{
    const json_t *ts = json_object_get(ev, "ts");

    ck_assert_msg(ev_field_is(ev, "type", type), "line %d: want %s, got %s", line, type, last_text);
    ck_assert_msg(ev_field_is(ev, "room", room), "line %d: want room \"%s\", got %s", line,
                  room != NULL ? room : "(null)", last_text);
    ck_assert_msg(ev_field_is(ev, "user", user), "line %d: want user %s, got %s", line, user,
                  last_text);
    ck_assert_msg(json_is_integer(ts) && llabs(json_integer_value(ts) - epoch_ms()) < TS_SLACK_MS,
                  "line %d: bad ts in %s", line, last_text);
}

/* The next event (others' notices skipped) is `type` in room for me. */
static json_t *ev_expect(struct wsc *c, const char *me, const char *type, const char *room,
                         int line)
{
    json_t *ev = ev_skip(c, me, T_MSG_MS);

    ck_assert_msg(ev != NULL, "line %d: %s: no %s event: %s", line, me, type, last_text);
    ev_check(ev, type, room, me, line);
    return ev;
}

/* ev_error's room when it may be `room` or null: a join whose field is
 * malformed, refused while the request is parsed (the server names no room
 * then, as for every field of the wrong type). */
static const char EV_BX[] = "bx";

/* The next event is an error for me about request in room whose reason
 * starts with `reason`; id: the JSON it must repeat, NULL for none. */
static void ev_error(struct wsc *c, const char *me, const char *request, const char *room,
                     const char *reason, const char *id, int line)
{
    json_t *ev = ev_skip(c, me, T_MSG_MS);
    json_t *want = id != NULL ? json_loads(id, JSON_DECODE_ANY, NULL) : NULL;
    const json_t *why;

    ck_assert_msg(ev != NULL, "line %d: %s: no error event: %s", line, me, last_text);
    if (room == EV_BX && json_is_null(json_object_get(ev, "room")))
        ev_check(ev, "error", NULL, me, line);
    else
        ev_check(ev, "error", room, me, line);
    why = json_object_get(ev, "reason");
    ck_assert_msg(ev_field_is(ev, "request", request), "line %d: request: %s", line, last_text);
    ck_assert_msg(json_is_string(why) &&
                      strncmp(json_string_value(why), reason, strlen(reason)) == 0,
                  "line %d: want reason \"%s\", got %s", line, reason, last_text);
    if (want != NULL)
        ck_assert_msg(json_equal(json_object_get(ev, "id"), want), "line %d: want id %s: %s", line,
                      id, last_text);
    else
        ck_assert_msg(json_object_get(ev, "id") == NULL, "line %d: an id: %s", line, last_text);
    json_decref(want);
    json_decref(ev);
}

/* No event but others' joined/left notices on c for T_QUIET_MS. */
static void quiet_events(struct wsc *c, const char *me, int line)
{
    json_t *ev = ev_skip(c, me, T_QUIET_MS);

    ck_assert_msg(ev == NULL && c->timed_out, "line %d: %s: unexpected %s", line, me, last_text);
}

#define QUIET_EV(c, me) quiet_events((c), (me), __LINE__)

#define EV_ERR(c, me, request, room, reason, id)                                                   \
    ev_error((c), (me), (request), (room), (reason), (id), __LINE__)
#define REQ(c, json) SEND((c), (json))

/* ---- messages ------------------------------------------------------------------ */

struct msg {
    char user[40];
    char text[TEXT_MAX];
    char id[ID_MAX]; /* "" when none */
};

struct seq {
    int n;
    struct msg m[SEQ_MAX];
};

/* ev is a room message (no "to") in room; with_id: it carries a msg_id, a
 * stream id whose milliseconds are its ts; else it has none. Appended to s. */
static void msg_parse(const json_t *ev, const char *room, int with_id, struct seq *s, int line)
{
    const json_t *user = json_object_get(ev, "user"), *text = json_object_get(ev, "text");
    const json_t *id = json_object_get(ev, "msg_id");
    unsigned long long ms, sq;
    struct msg *m;

    ck_assert_msg(ev_field_is(ev, "type", "message"), "line %d: want a message, got %s", line,
                  last_text);
    ck_assert_msg(ev_field_is(ev, "room", room), "line %d: want room \"%s\": %s", line, room,
                  last_text);
    ck_assert_msg(json_is_string(user) && json_is_string(text), "line %d: user, text: %s", line,
                  last_text);
    ck_assert_msg(json_object_get(ev, "to") == NULL, "line %d: \"to\" in %s", line, last_text);
    ck_assert_msg(json_is_integer(json_object_get(ev, "ts")), "line %d: ts: %s", line, last_text);
    ck_assert_msg(s->n < SEQ_MAX, "line %d: more than %d messages", line, SEQ_MAX);
    m = &s->m[s->n++];
    snprintf(m->user, sizeof(m->user), "%s", json_string_value(user));
    snprintf(m->text, sizeof(m->text), "%s", json_string_value(text));
    m->id[0] = '\0';
    if (!with_id) {
        ck_assert_msg(id == NULL, "line %d: a msg_id where none can be: %s", line, last_text);
        ck_assert_msg(llabs(json_integer_value(json_object_get(ev, "ts")) - epoch_ms()) <
                          TS_SLACK_MS,
                      "line %d: bad ts in %s", line, last_text);
        return;
    }
    ck_assert_msg(json_is_string(id) && id_parse(json_string_value(id), &ms, &sq),
                  "line %d: no msg_id: %s", line, last_text);
    ck_assert_msg(json_integer_value(json_object_get(ev, "ts")) == (json_int_t)ms,
                  "line %d: ts is not the msg_id's time: %s", line, last_text);
    ck_assert_msg(llabs((long long)ms - epoch_ms()) < TS_SLACK_MS, "line %d: bad ts in %s", line,
                  last_text);
    snprintf(m->id, sizeof(m->id), "%s", json_string_value(id));
}

/* The next event (others' notices skipped) is a message in room, appended to s. */
static struct msg *msg_next(struct wsc *c, const char *me, const char *room, int with_id,
                            struct seq *s, int line)
{
    json_t *ev = ev_skip(c, me, T_MSG_MS);

    ck_assert_msg(ev != NULL, "line %d: %s: no message: %s", line, me, last_text);
    msg_parse(ev, room, with_id, s, line);
    json_decref(ev);
    return &s->m[s->n - 1];
}

/* The next event is user's message text in room (with a msg_id when with_id);
 * its id into id_out (may be NULL). */
static void msg_expect(struct wsc *c, const char *me, const char *room, const char *user,
                       const char *text, int with_id, char *id_out, int line)
{
    static struct seq one;
    struct msg *m;

    one.n = 0;
    m = msg_next(c, me, room, with_id, &one, line);
    ck_assert_msg(strcmp(m->user, user) == 0 && strcmp(m->text, text) == 0,
                  "line %d: %s: want \"%s: %s\", got %s", line, me, user, text, last_text);
    if (id_out != NULL)
        snprintf(id_out, ID_MAX, "%s", m->id);
}

#define MSG(c, me, room, user, text, id_out)                                                       \
    msg_expect((c), (me), (room), (user), (text), 1, (id_out), __LINE__)

/* The replay that follows a join's welcome, up to its history event: the
 * messages (in room, with msg_id when with_id) into s (reset), the event's
 * count returned, its truncated into *truncated. The event must say what
 * came: count is the number of messages replayed. */
static long replay_read(struct wsc *c, const char *me, const char *room, int with_id, struct seq *s,
                        int *truncated, int line)
{
    const json_t *count, *trunc;
    json_t *ev;
    long n;

    s->n = 0;
    for (;;) {
        ev = ev_skip(c, me, T_MSG_MS);
        ck_assert_msg(ev != NULL, "line %d: %s: no history event after %d messages: %s", line, me,
                      s->n, last_text);
        if (ev_field_is(ev, "type", "history"))
            break;
        msg_parse(ev, room, with_id, s, line);
        json_decref(ev);
    }
    ev_check(ev, "history", room, me, line);
    count = json_object_get(ev, "count");
    trunc = json_object_get(ev, "truncated");
    ck_assert_msg(json_is_integer(count) && json_is_boolean(trunc), "line %d: history event %s",
                  line, last_text);
    n = (long)json_integer_value(count);
    *truncated = json_is_true(trunc);
    json_decref(ev);
    ck_assert_msg(n == s->n, "line %d: %s: %d messages replayed, the history event says %ld", line,
                  me, s->n, n);
    return n;
}

/* Connect me as a typed client to room (NULL: the default room, "" in
 * events) with the URL query q (NULL: none), read the welcome and the
 * replay into s. Returns the history event's count. */
static long tconnect(struct wsc *c, int port, const char *room, const char *me, const char *q,
                     struct seq *s, int *truncated, int line)
{
    char path[256];
    json_t *ev;
    int st;

    if (room != NULL)
        snprintf(path, sizeof(path), "/chat/%s/%s%s%s", room, me, q != NULL ? "?" : "",
                 q != NULL ? q : "");
    else
        snprintf(path, sizeof(path), "/chat/%s%s%s", me, q != NULL ? "?" : "", q != NULL ? q : "");
    st = wsc_connect(c, port, path, PROTO_HEADER, T_MSG_MS);
    ck_assert_msg(st == 101, "line %d: %s: HTTP %d, not 101 (%s)", line, path, st, c->body);
    ck_assert_msg(strcmp(c->protocol, PROTO) == 0, "line %d: subprotocol \"%s\"", line,
                  c->protocol);
    ev = ev_next(c, T_MSG_MS);
    ck_assert_msg(ev != NULL, "line %d: %s: no welcome", line, path);
    ev_check(ev, "welcome", room != NULL ? room : "", me, line);
    json_decref(ev);
    return replay_read(c, me, room != NULL ? room : "", 1, s, truncated, line);
}

/* Send the join request req into room, read its welcome and the replay
 * into s. Returns the history event's count. */
static long tjoin_req(struct wsc *c, const char *me, const char *room, const char *req,
                      struct seq *s, int *truncated, int line)
{
    ck_assert_msg(wsc_send_text(c, req) == 0, "line %d: %s: send failed", line, me);
    json_decref(ev_expect(c, me, "welcome", room, line));
    return replay_read(c, me, room, 1, s, truncated, line);
}

#define TCONNECT(c, port, room, me, q, s, tr)                                                      \
    tconnect((c), (port), (room), (me), (q), (s), (tr), __LINE__)
#define TJOIN_REQ(c, me, room, req, s, tr) tjoin_req((c), (me), (room), (req), (s), (tr), __LINE__)

/* The next event is an ack for me in room with a msg_id (into id_out) and
 * the request's id (JSON, NULL: none). */
static void ack_expect(struct wsc *c, const char *me, const char *room, const char *id,
                       char *id_out, int line)
{
    json_t *ev = ev_expect(c, me, "ack", room, line);
    json_t *want = id != NULL ? json_loads(id, JSON_DECODE_ANY, NULL) : NULL;
    const json_t *mid = json_object_get(ev, "msg_id");
    unsigned long long ms, sq;

    ck_assert_msg(ev_field_is(ev, "request", "send"), "line %d: %s", line, last_text);
    ck_assert_msg(json_is_string(mid) && id_parse(json_string_value(mid), &ms, &sq),
                  "line %d: ack without a msg_id: %s", line, last_text);
    if (want != NULL)
        ck_assert_msg(json_equal(json_object_get(ev, "id"), want), "line %d: want id %s: %s", line,
                      id, last_text);
    else
        ck_assert_msg(json_object_get(ev, "id") == NULL, "line %d: an id: %s", line, last_text);
    snprintf(id_out, ID_MAX, "%s", json_string_value(mid));
    json_decref(want);
    json_decref(ev);
}

#define ACK(c, me, room, id, id_out) ack_expect((c), (me), (room), (id), (id_out), __LINE__)

/* ---- streams ------------------------------------------------------------------ */

/* The stream of room (NULL: the default room's). */
static const char *skey(char *out, size_t cap, const char *room)
{
    if (room != NULL)
        snprintf(out, cap, "chat:{%s}:history", room);
    else
        snprintf(out, cap, "chat:history");
    return out;
}

/* Entries of the stream key into s: each id, u and t, no other field. */
static void stream_read(const struct h_redis *r, const char *key, struct seq *s, int line)
{
    static char out[CLI_MAX];
    char *p, *nl, *f[5];
    int k;

    ck_assert_int_eq(h_redis_cli(r, out, sizeof(out), "XRANGE %s - +", key), 0);
    ck_assert_msg(strlen(out) < sizeof(out) - 1, "line %d: XRANGE %s too long", line, key);
    s->n = 0;
    if (strcmp(out, "\n") == 0 || out[0] == '\0')
        return;
    for (p = out; *p != '\0';) {
        for (k = 0; k < 5; k++) {
            nl = strchr(p, '\n');
            ck_assert_msg(nl != NULL, "line %d: XRANGE %s: cut entry: %s", line, key, out);
            *nl = '\0';
            f[k] = p;
            p = nl + 1;
        }
        ck_assert_msg(strcmp(f[1], "u") == 0 && strcmp(f[3], "t") == 0,
                      "line %d: %s: entry %s has fields %s, %s (want u, t)", line, key, f[0], f[1],
                      f[3]);
        ck_assert_int_lt(s->n, SEQ_MAX);
        snprintf(s->m[s->n].id, ID_MAX, "%s", f[0]);
        snprintf(s->m[s->n].user, sizeof(s->m[0].user), "%s", f[2]);
        snprintf(s->m[s->n].text, TEXT_MAX, "%s", f[4]);
        s->n++;
    }
}

/* got is exactly the entries st[from .. from + n): ids, users, texts. */
static void seq_is(const struct seq *got, const struct seq *st, int from, int n, int line)
{
    int i;

    ck_assert_msg(from >= 0 && from + n <= st->n, "line %d: the stream has %d entries, not %d",
                  line, st->n, from + n);
    ck_assert_msg(got->n == n, "line %d: %d messages, want %d", line, got->n, n);
    for (i = 0; i < n; i++) {
        const struct msg *g = &got->m[i], *w = &st->m[from + i];

        ck_assert_msg(strcmp(g->id, w->id) == 0 && strcmp(g->user, w->user) == 0 &&
                          strcmp(g->text, w->text) == 0,
                      "line %d: message %d is %s %s: %s, the stream's %s %s: %s", line, i, g->id,
                      g->user, g->text, w->id, w->user, w->text);
    }
}

#define SEQ_IS(got, st, from, n) seq_is((got), (st), (from), (n), __LINE__)

/* Text of the stream's last entry into out ("" when empty). */
static void stream_last_text(const struct h_redis *r, const char *key, char *out, size_t cap)
{
    char raw[512], *p = raw;
    int k;

    ck_assert_int_eq(h_redis_cli(r, raw, sizeof(raw), "XREVRANGE %s + - COUNT 1", key), 0);
    out[0] = '\0';
    for (k = 0; k < 4 && p != NULL; k++)
        if ((p = strchr(p, '\n')) != NULL)
            p++;
    if (p != NULL)
        snprintf(out, cap, "%.*s", (int)strcspn(p, "\n"), p);
}

/* Wait until the stream's last entry is text. */
static void stream_wait_last(const struct h_redis *r, const char *key, const char *text, int line)
{
    long long end = h_now_ms() + T_MSG_MS;
    char out[TEXT_MAX];

    for (;;) {
        stream_last_text(r, key, out, sizeof(out));
        if (strcmp(out, text) == 0)
            return;
        ck_assert_msg(h_now_ms() < end, "line %d: %s ends with \"%s\", not \"%s\"", line, key, out,
                      text);
        h_sleep_ms(20);
    }
}

#define STREAM_WAIT_LAST(r, key, text) stream_wait_last((r), (key), (text), __LINE__)

/* Wait until the integer reply of cmd is at least min; returns the last one. */
static long redis_int_wait_ge(const struct h_redis *r, const char *cmd, long min, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    long v;

    while ((v = fx_redis_int(r, cmd)) < min && h_now_ms() < end)
        h_sleep_ms(20);
    return v;
}

/* Wait until the stream of room holds n entries (no trimming meanwhile). */
static void xlen_wait(const struct h_redis *r, const char *room, long n, int line)
{
    char cmd[128], key[96];

    snprintf(cmd, sizeof(cmd), "XLEN %s", skey(key, sizeof(key), room));
    ck_assert_msg(fx_redis_int_wait(r, cmd, n, T_MSG_MS), "line %d: %s is %ld, not %ld", line, cmd,
                  fx_redis_int(r, cmd), n);
}

#define XLEN_WAIT(r, room, n) xlen_wait((r), (room), (n), __LINE__)

static long xlen(const struct h_redis *r, const char *room)
{
    char cmd[128], key[96];

    snprintf(cmd, sizeof(cmd), "XLEN %s", skey(key, sizeof(key), room));
    return fx_redis_int(r, cmd);
}

/* Close c and wait until user has left the SET key. */
static void bye(struct wsc *c, const struct h_redis *r, const char *key, const char *user)
{
    wsc_free(c);
    ck_assert_msg(fx_set_wait(r, key, user, 0, T_MSG_MS), "%s still in %s", user, key);
}

/* Non-overlapping occurrences of needle in hay. */
static int count_in(const char *hay, const char *needle)
{
    int n = 0;

    while ((hay = strstr(hay, needle)) != NULL) {
        n++;
        hay += strlen(needle);
    }
    return n;
}

#define PJOIN(c, port, room, user) fx_join_room((c), (port), (room), (user), __LINE__)

/* ---- history on join ------------------------------------------------------------- */

/* A typed join replays the room's last messages, oldest first, each with the
 * msg_id the stream has, then one history event (count, truncated false),
 * then live ones: the URL room by default (history-on-join 5) and with
 * ?history=N, a join request by default and with "history": N; asking more
 * than there is gives what there is. */
START_TEST(test_join_history)
{
    static struct seq st, st2, s;
    struct wsc hs, hs2, t[4];
    char req[128], live[ID_MAX];
    int tr, i;

    PJOIN(&hs, chat_b.port, "hj", "hs");
    for (i = 1; i <= 8; i++) {
        snprintf(req, sizeof(req), "m%d", i);
        SEND(&hs, req);
    }
    XLEN_WAIT(&redis, "hj", 8);
    stream_read(&redis, "chat:{hj}:history", &st, __LINE__);
    for (i = 0; i < 8; i++) {
        snprintf(req, sizeof(req), "m%d", i + 1);
        ck_assert_str_eq(st.m[i].user, "hs");
        ck_assert_str_eq(st.m[i].text, req);
        ck_assert(i == 0 || id_cmp(st.m[i - 1].id, st.m[i].id) < 0);
    }

    /* the URL's room: by default, and asked for */
    ck_assert_int_eq(TCONNECT(&t[0], chat_a.port, "hj", "t0", NULL, &s, &tr), HIST_DEFAULT);
    ck_assert(!tr);
    SEQ_IS(&s, &st, 8 - HIST_DEFAULT, HIST_DEFAULT);
    ck_assert_int_eq(TCONNECT(&t[1], chat_b.port, "hj", "t1", "history=2", &s, &tr), 2);
    ck_assert(!tr);
    SEQ_IS(&s, &st, 6, 2);
    ck_assert_int_eq(TCONNECT(&t[2], chat_a.port, "hj", "t2", "history=0", &s, &tr), 0);
    ck_assert(!tr);
    ck_assert_int_eq(TCONNECT(&t[3], chat_b.port, "hj", "t3", "history=" XSTR(HIST_MAX), &s, &tr),
                     8);
    ck_assert(!tr);
    SEQ_IS(&s, &st, 0, 8);

    /* then live, once each, with the id the stream gives it */
    SEND(&hs, "m9");
    XLEN_WAIT(&redis, "hj", 9);
    stream_read(&redis, "chat:{hj}:history", &st, __LINE__);
    for (i = 0; i < 4; i++) {
        char me[8];

        snprintf(me, sizeof(me), "t%d", i);
        MSG(&t[i], me, "hj", "hs", "m9", live);
        ck_assert_str_eq(live, st.m[8].id);
    }
    for (i = 0; i < 4; i++)
        QUIET(&t[i]);

    /* join requests into a room with seven messages */
    PJOIN(&hs2, chat_b.port, "hj2", "hs2");
    for (i = 1; i <= 7; i++) {
        snprintf(req, sizeof(req), "n%d", i);
        SEND(&hs2, req);
    }
    XLEN_WAIT(&redis, "hj2", 7);
    stream_read(&redis, "chat:{hj2}:history", &st2, __LINE__);
    ck_assert_int_eq(TJOIN_REQ(&t[0], "t0", "hj2", "{\"type\":\"join\",\"room\":\"hj2\"}", &s, &tr),
                     HIST_DEFAULT);
    ck_assert(!tr);
    SEQ_IS(&s, &st2, 7 - HIST_DEFAULT, HIST_DEFAULT);
    ck_assert_int_eq(TJOIN_REQ(&t[1], "t1", "hj2",
                               "{\"type\":\"join\",\"room\":\"hj2\",\"history\":3,\"id\":\"j\"}",
                               &s, &tr),
                     3);
    ck_assert(!tr);
    SEQ_IS(&s, &st2, 4, 3);
    ck_assert_int_eq(TJOIN_REQ(&t[2], "t2", "hj2",
                               "{\"type\":\"join\",\"room\":\"hj2\",\"history\":0}", &s, &tr),
                     0);
    ck_assert(!tr);
    ck_assert_int_eq(
        TJOIN_REQ(&t[3], "t3", "hj2",
                  "{\"type\":\"join\",\"room\":\"hj2\",\"history\":" XSTR(HIST_MAX) "}", &s, &tr),
        7);
    ck_assert(!tr);
    SEQ_IS(&s, &st2, 0, 7);
    SEND(&hs2, "n8");
    for (i = 0; i < 4; i++) {
        char me[8];

        snprintf(me, sizeof(me), "t%d", i);
        MSG(&t[i], me, "hj2", "hs2", "n8", NULL);
        QUIET(&t[i]);
    }
    for (i = 0; i < 4; i++)
        wsc_free(&t[i]);
    wsc_free(&hs);
    wsc_free(&hs2);
}
END_TEST

/* ---- the seam ------------------------------------------------------------------- */

#define SEAM_MIN 60    /* messages in the stream before the first join */
#define SEAM_AFTER 30  /* messages after the last join, before the sender stops */
#define SEAM_CAP 900   /* the sender stops here at the latest (history-size is 1000) */
#define SEAM_PACE_MS 3 /* between two messages */
#define SEAM_TYPED 4   /* typed joiners */

/* "q<N>": N, else -1. */
static int qnum(const char *text)
{
    char *end;
    long n;

    if (text[0] != 'q')
        return -1;
    n = strtol(text + 1, &end, 10);
    return *end == '\0' && n > 0 ? (int)n : -1;
}

/* got (replay, then live) is q<first>..q<last> once each, in order, each with
 * the msg_id the stream st (q1..qK) gave it. On failure, the end of both
 * instances' logs is shown. */
static void seam_check(const struct seq *got, int replayed, const struct seq *st, int last,
                       const char *who)
{
    char why[256] = "";
    int i, first = got->n > 0 ? qnum(got->m[0].text) : -1;

    if (first < 1)
        snprintf(why, sizeof(why), "%s: first message %s", who,
                 got->n > 0 ? got->m[0].text : "(none)");
    for (i = 0; why[0] == '\0' && i < got->n; i++) {
        int want = first + i;

        if (qnum(got->m[i].text) != want)
            snprintf(why, sizeof(why), "%s: message %d is \"%s\", want q%d (a %s)", who, i,
                     got->m[i].text, want, qnum(got->m[i].text) < want ? "duplicate" : "gap");
        else if (strcmp(got->m[i].id, st->m[want - 1].id) != 0)
            snprintf(why, sizeof(why), "%s: q%d has id %s, the stream's is %s", who, want,
                     got->m[i].id, st->m[want - 1].id);
    }
    if (why[0] == '\0' && first + got->n - 1 != last)
        snprintf(why, sizeof(why), "%s: ends at q%d, want q%d", who, first + got->n - 1, last);
    if (why[0] != '\0') {
        h_dump_tail(chat_a.log, 60);
        h_dump_tail(chat_b.log, 60);
        ck_abort_msg("%s (%d replayed, up to %s)", why, replayed,
                     replayed > 0 ? got->m[replayed - 1].text : "none");
    }
}

/* While a sender on instance b says q1, q2, ... every few ms, typed clients
 * join the room on both instances, by URL and by join request, with the
 * default and asked replay sizes, and a plain one with ?history=10: each
 * gets exactly the size asked, and replay + live is consecutive, no
 * duplicate, no gap, with the stream's ids, up to the last message. */
START_TEST(test_join_seam)
{
    static struct seq got[SEAM_TYPED], st, s;
    static const int asked[SEAM_TYPED] = {HIST_DEFAULT, 50, 20, HIST_DEFAULT};
    struct wsc snd, j[SEAM_TYPED], pj;
    char me[8], line[256], cmd[64], lastq[32];
    int stop[2], res[2], i, tr, k = 0, status, plain_first = -1, plain_n = 0;
    long n0;
    pid_t pid;

    PJOIN(&snd, chat_b.port, "seam", "qs");
    ck_assert_int_eq(pipe(stop), 0);
    ck_assert_int_eq(pipe(res), 0);
    pid = fork();
    ck_assert_int_ne(pid, -1);
    if (pid == 0) { /* the sender: until told to stop (or the cap) */
        char text[32], b;
        int n = 0;

        close(stop[1]);
        close(res[0]);
        if (fcntl(stop[0], F_SETFL, O_NONBLOCK) != 0)
            _exit(3);
        while (n < SEAM_CAP && read(stop[0], &b, 1) != 1) {
            snprintf(text, sizeof(text), "q%d", ++n);
            if (wsc_send_text(&snd, text) != 0)
                _exit(1);
            h_sleep_ms(SEAM_PACE_MS);
        }
        if (write(res[1], &n, sizeof(n)) != (ssize_t)sizeof(n))
            _exit(2);
        _exit(0);
    }
    close(res[1]);  /* stop[0] stays open: no SIGPIPE if the sender stopped at the cap */
    wsc_free(&snd); /* the child's now */

    snprintf(cmd, sizeof(cmd), "XLEN chat:{seam}:history");
    ck_assert_int_ge(redis_int_wait_ge(&redis, cmd, SEAM_MIN, 10000), SEAM_MIN);
    ck_assert_int_eq(TCONNECT(&j[0], chat_a.port, "seam", "j0", NULL, &got[0], &tr), asked[0]);
    ck_assert(!tr);
    ck_assert_int_eq(TCONNECT(&j[1], chat_b.port, "seam", "j1", "history=50", &got[1], &tr),
                     asked[1]);
    ck_assert(!tr);
    ck_assert_int_eq(TCONNECT(&j[2], chat_a.port, "seamx", "j2", "history=0", &s, &tr), 0);
    ck_assert_int_eq(TJOIN_REQ(&j[2], "j2", "seam",
                               "{\"type\":\"join\",\"room\":\"seam\",\"history\":20}", &got[2],
                               &tr),
                     asked[2]);
    ck_assert(!tr);
    ck_assert_int_eq(TCONNECT(&j[3], chat_b.port, "seamy", "j3", "history=0", &s, &tr), 0);
    ck_assert_int_eq(
        TJOIN_REQ(&j[3], "j3", "seam", "{\"type\":\"join\",\"room\":\"seam\"}", &got[3], &tr),
        asked[3]);
    ck_assert(!tr);
    ck_assert_int_eq(wsc_connect(&pj, chat_a.port, "/chat/seam/pj?history=10", NULL, T_MSG_MS),
                     101);
    EXPECT(&pj, "Welcome pj!");

    /* some more live traffic, then stop the sender */
    n0 = fx_redis_int(&redis, cmd);
    ck_assert_int_ge(redis_int_wait_ge(&redis, cmd, n0 + SEAM_AFTER, 10000), n0 + SEAM_AFTER);
    ck_assert_int_eq(write(stop[1], "x", 1), 1);
    ck_assert_int_eq(read(res[0], &k, sizeof(k)), (ssize_t)sizeof(k));
    ck_assert_int_eq(h_wait_exit(pid, T_MSG_MS, &status), 1);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "sender: status %d", status);
    close(stop[0]);
    close(stop[1]);
    close(res[0]);
    XLEN_WAIT(&redis, "seam", k);
    stream_read(&redis, "chat:{seam}:history", &st, __LINE__);
    for (i = 0; i < k; i++) {
        snprintf(line, sizeof(line), "q%d", i + 1);
        ck_assert_msg(strcmp(st.m[i].text, line) == 0, "stream entry %d: %s", i, st.m[i].text);
    }
    snprintf(lastq, sizeof(lastq), "q%d", k);

    for (i = 0; i < SEAM_TYPED; i++) {
        int replayed = got[i].n;

        ck_assert_msg(replayed > 0 && qnum(got[i].m[replayed - 1].text) < k - SEAM_AFTER / 2,
                      "j%d: joined after the sender stopped", i);
        snprintf(me, sizeof(me), "j%d", i);
        while (strcmp(got[i].m[got[i].n - 1].text, lastq) != 0)
            msg_next(&j[i], me, "seam", 1, &got[i], __LINE__);
        seam_check(&got[i], replayed, &st, k, me);
        QUIET_EV(&j[i], me); /* the sender's leave may come */
    }
    /* the plain one: "qs: qN" lines, consecutive (notices skipped) */
    snprintf(cmd, sizeof(cmd), "qs: q%d", k);
    for (;;) {
        int r = wsc_recv_text(&pj, line, sizeof(line), T_MSG_MS), n;

        ck_assert_msg(r > 0, "pj: nothing more after %d lines from q%d", plain_n, plain_first);
        if (strstr(line, ": has joined the chat!") != NULL ||
            strstr(line, ": has left the chat!") != NULL)
            continue;
        ck_assert_msg(strncmp(line, "qs: ", 4) == 0 && (n = qnum(line + 4)) > 0, "pj: \"%s\"",
                      line);
        if (plain_first < 0)
            plain_first = n;
        ck_assert_msg(n == plain_first + plain_n, "pj: \"%s\" after q%d", line,
                      plain_first + plain_n - 1);
        plain_n++;
        if (strcmp(line, cmd) == 0)
            break;
    }
    ck_assert_int_gt(plain_n, 10);
    for (i = 0; i < SEAM_TYPED; i++)
        wsc_free(&j[i]);
    wsc_free(&pj);
}
END_TEST

/* ---- plain ?history=N ---------------------------------------------------------------- */

/* A plain client with ?history=N gets its welcome, then the last N lines as
 * they were shown (plain and typed senders alike, no notices), then the
 * live chat; without it nothing is replayed. In the default room too. */
START_TEST(test_plain_history)
{
    struct wsc pa, ts, pl, pm, pn, nn, dd, pd;
    static struct seq s, st;
    char id[ID_MAX], line[160];
    int tr;

    fx_users_quiesce(&redis, USERS_KEY);
    PJOIN(&pa, chat_a.port, "ph", "pa");
    ck_assert_int_eq(TCONNECT(&ts, chat_b.port, "ph", "ts", NULL, &s, &tr), 0);
    SEND(&pa, "one");
    MSG(&ts, "ts", "ph", "pa", "one", NULL);
    REQ(&ts, "{\"type\":\"send\",\"text\":\"two\"}");
    ACK(&ts, "ts", "ph", NULL, id);
    SEND(&pa, "three");
    MSG(&ts, "ts", "ph", "pa", "three", NULL);
    REQ(&ts, "{\"type\":\"send\",\"text\":\"four\"}");
    ACK(&ts, "ts", "ph", NULL, id);
    PJOIN(&nn, chat_b.port, "ph", "nn"); /* notices: not part of the history */
    bye(&nn, &redis, "chat:{ph}:users", "nn");
    XLEN_WAIT(&redis, "ph", 4);

    ck_assert_int_eq(wsc_connect(&pl, chat_a.port, "/chat/ph/pl?history=3", NULL, T_MSG_MS), 101);
    EXPECT(&pl, "Welcome pl!");
    EXPECT(&pl, "ts: two");
    EXPECT(&pl, "pa: three");
    EXPECT(&pl, "ts: four");
    QUIET(&pl);
    ck_assert_int_eq(wsc_connect(&pm, chat_b.port, "/chat/ph/pm?history=10", NULL, T_MSG_MS), 101);
    EXPECT(&pm, "Welcome pm!");
    EXPECT(&pm, "pa: one");
    EXPECT(&pm, "ts: two");
    EXPECT(&pm, "pa: three");
    EXPECT(&pm, "ts: four");
    QUIET(&pm);
    EXPECT(&pl, "pm: has joined the chat!");
    PJOIN(&pn, chat_a.port, "ph", "pn"); /* no ?history: nothing replayed */
    QUIET(&pn);
    EXPECT(&pl, "pn: has joined the chat!");
    EXPECT(&pm, "pn: has joined the chat!");

    SEND(&pa, "five");
    EXPECT(&pl, "pa: five");
    EXPECT(&pm, "pa: five");
    EXPECT(&pn, "pa: five");
    QUIET(&pl);
    QUIET(&pm);
    QUIET(&pn);

    /* the default room: its stream is chat:history */
    PJOIN(&dd, chat_b.port, NULL, "ph_dd");
    SEND(&dd, "default last");
    STREAM_WAIT_LAST(&redis, "chat:history", "default last");
    ck_assert_int_eq(wsc_connect(&pd, chat_a.port, "/chat/ph_pd?history=1", NULL, T_MSG_MS), 101);
    EXPECT(&pd, "Welcome ph_pd!");
    stream_read(&redis, "chat:history", &st, __LINE__);
    ck_assert_int_ge(st.n, 1);
    snprintf(line, sizeof(line), "%s: %s", st.m[st.n - 1].user, st.m[st.n - 1].text);
    ck_assert_str_eq(line, "ph_dd: default last");
    EXPECT(&pd, "ph_dd: default last");
    QUIET(&pd);
    SEND(&dd, "default live");
    EXPECT(&pd, "ph_dd: default live");
    wsc_free(&pa);
    wsc_free(&ts);
    wsc_free(&pl);
    wsc_free(&pm);
    wsc_free(&pn);
    wsc_free(&dd);
    wsc_free(&pd);
}
END_TEST

/* ---- resume ----------------------------------------------------------------------- */

/* A typed client records the last msg_id it saw, says one message itself,
 * disconnects; three messages are said meanwhile; it comes back with that id
 * (?after= on the URL, or "after" in a join request; on the same instance
 * and on the other one; in a room and in the default room) and gets exactly
 * its own message and the three, with the stream's ids, then the history
 * event (count 4, truncated false), then live messages. Resuming from the
 * last id gets nothing. */
START_TEST(test_resume)
{
    static const struct {
        int join;         /* 1: a join request; 0: ?after= */
        int other;        /* 1: back on instance b, else a */
        const char *room; /* NULL: the default room */
    } v[] = {{0, 0, "rs"}, {0, 1, "rs"}, {1, 0, "rs"}, {1, 1, "rs"}, {0, 1, NULL}};
    static struct seq s, st;
    struct wsc rsp, rsd, r;
    char text[64], last[ID_MAX], own[ID_MAX], q[96], req[160], home[16];
    unsigned i;
    int tr, b;
    long n0;

    fx_users_quiesce(&redis, USERS_KEY);
    PJOIN(&rsp, chat_b.port, "rs", "rsp");
    PJOIN(&rsd, chat_b.port, NULL, "rsd");
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        const char *evroom = v[i].room != NULL ? v[i].room : "";
        const char *ukey = v[i].room != NULL ? "chat:{rs}:users" : USERS_KEY;
        struct wsc *snd = v[i].room != NULL ? &rsp : &rsd;
        const char *sname = v[i].room != NULL ? "rsp" : "rsd";
        char key[64];

        skey(key, sizeof(key), v[i].room);
        TCONNECT(&r, chat_a.port, v[i].room, "r1", "history=0", &s, &tr);
        snprintf(text, sizeof(text), "v%u-a", i);
        SEND(snd, text);
        MSG(&r, "r1", evroom, sname, text, last);
        snprintf(req, sizeof(req), "{\"type\":\"send\",\"text\":\"v%u-own\"}", i);
        REQ(&r, req);
        ACK(&r, "r1", evroom, NULL, own);
        ck_assert(id_cmp(own, last) > 0);
        QUIET(&r);
        bye(&r, &redis, ukey, "r1");

        n0 = xlen(&redis, v[i].room);
        for (b = 1; b <= 3; b++) {
            snprintf(text, sizeof(text), "v%u-b%d", i, b);
            SEND(snd, text);
        }
        XLEN_WAIT(&redis, v[i].room, n0 + 3);
        stream_read(&redis, key, &st, __LINE__);

        if (!v[i].join) {
            snprintf(q, sizeof(q), "after=%s", last);
            ck_assert_int_eq(
                TCONNECT(&r, v[i].other ? chat_b.port : chat_a.port, v[i].room, "r1", q, &s, &tr),
                4);
        } else {
            snprintf(home, sizeof(home), "rsh%u", i);
            ck_assert_int_eq(TCONNECT(&r, v[i].other ? chat_b.port : chat_a.port, home, "r1",
                                      "history=0", &s, &tr),
                             0);
            snprintf(req, sizeof(req), "{\"type\":\"join\",\"room\":\"%s\",\"after\":\"%s\"}",
                     v[i].room, last);
            ck_assert_int_eq(TJOIN_REQ(&r, "r1", evroom, req, &s, &tr), 4);
        }
        ck_assert_msg(!tr, "variant %u: truncated", i);
        SEQ_IS(&s, &st, st.n - 4, 4);
        ck_assert_str_eq(s.m[0].id, own);
        ck_assert_str_eq(s.m[0].user, "r1");

        snprintf(text, sizeof(text), "v%u-c", i);
        SEND(snd, text);
        MSG(&r, "r1", evroom, sname, text, last);
        ck_assert(id_cmp(last, st.m[st.n - 1].id) > 0);
        QUIET(&r);
        bye(&r, &redis, ukey, "r1");
    }

    /* from the last id: nothing missed */
    snprintf(q, sizeof(q), "after=%s", last);
    ck_assert_int_eq(TCONNECT(&r, chat_b.port, NULL, "r1", q, &s, &tr), 0);
    ck_assert(!tr);
    QUIET(&r);
    wsc_free(&r);
    wsc_free(&rsp);
    wsc_free(&rsd);
}
END_TEST

/* ---- acks ----------------------------------------------------------------------------- */

#define ACK_N 12

/* Every send gets exactly one answer: an ack (request send, the request's id
 * when it had one, a msg_id) in the order sent, with increasing msg_ids that
 * are the stream's and the ones the room's other members get, or an error
 * for a send refused (and then no ack). The sender hears no echo, but a
 * later join's replay has its messages. In the default room too. */
START_TEST(test_acks)
{
    static struct seq s, st, peer;
    static char ids[ACK_N][ID_MAX];
    struct wsc k, kp, kd;
    char req[160], id_json[32], out[512], want[256], did[ID_MAX];
    int i, tr, nack = 0, e1 = 0, e2 = 0;
    unsigned long long ms, sq;

    fx_users_quiesce(&redis, USERS_KEY);
    ck_assert_int_eq(TCONNECT(&k, chat_a.port, "ak", "k", NULL, &s, &tr), 0);
    ck_assert_int_eq(TCONNECT(&kp, chat_b.port, "ak", "kp", NULL, &s, &tr), 0);
    for (i = 0; i < ACK_N; i++) {
        if (i % 3 == 0)
            snprintf(id_json, sizeof(id_json), ",\"id\":\"s%d\"", i);
        else if (i % 3 == 1)
            snprintf(id_json, sizeof(id_json), ",\"id\":%d", 1000 + i);
        else
            id_json[0] = '\0';
        snprintf(req, sizeof(req), "{\"type\":\"send\",\"text\":\"ack-%d\"%s}", i, id_json);
        REQ(&k, req);
        if (i == 4)
            REQ(&k, "{\"type\":\"send\",\"room\":\"nope\",\"text\":\"x\",\"id\":\"e1\"}");
        if (i == 8)
            REQ(&k, "{\"type\":\"send\",\"text\":\"bad\\u0001ctl\",\"id\":\"e2\"}");
    }
    /* the errors may come before acks of earlier sends, the acks in order */
    while (nack + e1 + e2 < ACK_N + 2) {
        json_t *ev = ev_skip(&k, "k", T_MSG_MS);

        ck_assert_msg(ev != NULL, "k: %d acks, %d errors", nack, e1 + e2);
        if (ev_field_is(ev, "type", "error")) {
            ck_assert_msg(ev_field_is(ev, "request", "send"), "%s", last_text);
            if (ev_field_is(ev, "id", "e1")) {
                ev_check(ev, "error", "nope", "k", __LINE__);
                ck_assert_msg(ev_field_is(ev, "reason", "not in that room"), "%s", last_text);
                e1++;
            } else {
                ev_check(ev, "error", "ak", "k", __LINE__);
                ck_assert_msg(ev_field_is(ev, "id", "e2") &&
                                  ev_field_is(ev, "reason",
                                              "line breaks and control characters are not allowed"),
                              "%s", last_text);
                e2++;
            }
            json_decref(ev);
            continue;
        }
        ev_check(ev, "ack", "ak", "k", __LINE__);
        ck_assert_msg(ev_field_is(ev, "request", "send"), "%s", last_text);
        ck_assert_msg(nack < ACK_N, "a 13th ack: %s", last_text);
        if (nack % 3 == 0) {
            snprintf(req, sizeof(req), "s%d", nack);
            ck_assert_msg(ev_field_is(ev, "id", req), "ack %d: %s", nack, last_text);
        } else if (nack % 3 == 1) {
            const json_t *id = json_object_get(ev, "id");
            ck_assert_msg(json_is_integer(id) && json_integer_value(id) == 1000 + nack,
                          "ack %d: %s", nack, last_text);
        } else {
            ck_assert_msg(json_object_get(ev, "id") == NULL, "ack %d: an id: %s", nack, last_text);
        }
        ck_assert_msg(json_is_string(json_object_get(ev, "msg_id")) &&
                          id_parse(json_string_value(json_object_get(ev, "msg_id")), &ms, &sq),
                      "ack %d: no msg_id: %s", nack, last_text);
        snprintf(ids[nack], ID_MAX, "%s", json_string_value(json_object_get(ev, "msg_id")));
        ck_assert_msg(nack == 0 || id_cmp(ids[nack - 1], ids[nack]) < 0, "ack %d: %s after %s",
                      nack, ids[nack], ids[nack - 1]);
        nack++;
        json_decref(ev);
    }
    ck_assert_int_eq(e1, 1);
    ck_assert_int_eq(e2, 1);
    QUIET(&k); /* one answer each, and no echo */

    peer.n = 0;
    for (i = 0; i < ACK_N; i++) {
        snprintf(req, sizeof(req), "ack-%d", i);
        msg_next(&kp, "kp", "ak", 1, &peer, __LINE__);
        ck_assert_str_eq(peer.m[i].user, "k");
        ck_assert_str_eq(peer.m[i].text, req);
        ck_assert_str_eq(peer.m[i].id, ids[i]);
    }
    QUIET(&kp);
    stream_read(&redis, "chat:{ak}:history", &st, __LINE__);
    SEQ_IS(&peer, &st, 0, ACK_N);
    ck_assert_int_eq(fx_redis_int(&redis, "EXISTS chat:{ak}:history"), 1);
    /* no history-ttl: no expiry */
    ck_assert_int_eq(h_redis_cli(&redis, out, sizeof(out), "PTTL chat:{ak}:history"), 0);
    ck_assert_str_eq(out, "-1\n");

    /* the sender's own messages come back in a replay */
    REQ(&k, "{\"type\":\"leave\",\"room\":\"ak\"}");
    json_decref(ev_expect(&k, "k", "left", "ak", __LINE__));
    ck_assert_int_eq(
        TJOIN_REQ(&k, "k", "ak", "{\"type\":\"join\",\"room\":\"ak\",\"history\":3}", &s, &tr), 3);
    SEQ_IS(&s, &st, ACK_N - 3, 3);

    /* the default room: the ack's msg_id is in chat:history */
    ck_assert_int_eq(TCONNECT(&kd, chat_b.port, NULL, "kd", "history=0", &s, &tr), 0);
    REQ(&kd, "{\"type\":\"send\",\"text\":\"ack-default\",\"id\":\"d\"}");
    ACK(&kd, "kd", "", "\"d\"", did);
    QUIET(&kd);
    ck_assert_int_eq(h_redis_cli(&redis, out, sizeof(out), "XRANGE chat:history %s %s", did, did),
                     0);
    snprintf(want, sizeof(want), "%s\nu\nkd\nt\nack-default\n", did);
    ck_assert_str_eq(out, want);
    wsc_free(&k);
    wsc_free(&kp);
    wsc_free(&kd);
}
END_TEST

/* ---- the seed channel ----------------------------------------------------------------- */

/* The default room's messages still reach `chat` as exactly `user: text`,
 * once each (and chat:{} once, with the id); redis-chat clients get each
 * message once (the `chat` copy is dropped). A line PUBLISHed on `chat` from
 * outside reaches typed clients without a msg_id, plain ones as it is, and is
 * not in chat:history. */
START_TEST(test_seed_channel)
{
    char *const spy_words[] = {(char *)"SUBSCRIBE", (char *)"chat", (char *)"chat:{}", NULL};
    char *const publish[] = {(char *)"PUBLISH", (char *)"chat", (char *)"x: y-outside", NULL};
    static char out[SPY_MAX];
    static struct seq s, st;
    struct fx_spy spy;
    struct wsc dp, dt, dq;
    char id1[ID_MAX], id2[ID_MAX];
    int tr;
    long before;

    fx_users_quiesce(&redis, USERS_KEY);
    fx_spy_start(&spy, &redis, spy_words);
    PJOIN(&dp, chat_a.port, NULL, "sd_p");
    ck_assert_int_eq(TCONNECT(&dt, chat_b.port, NULL, "sd_t", "history=0", &s, &tr), 0);
    PJOIN(&dq, chat_b.port, NULL, "sd_q");
    fx_drain(&dp);
    before = xlen(&redis, NULL);

    SEND(&dp, "seedline-1");
    MSG(&dt, "sd_t", "", "sd_p", "seedline-1", id1);
    EXPECT(&dq, "sd_p: seedline-1");
    REQ(&dt, "{\"type\":\"send\",\"text\":\"seedline-2\",\"id\":\"s2\"}");
    ACK(&dt, "sd_t", "", "\"s2\"", id2);
    EXPECT(&dp, "sd_t: seedline-2");
    EXPECT(&dq, "sd_t: seedline-2");
    QUIET(&dt);
    QUIET(&dp);
    QUIET(&dq);

    ck_assert_int_eq(h_redis_cliv(&redis, out, sizeof(out), publish), 0);
    msg_expect(&dt, "sd_t", "", "x", "y-outside", 0, NULL, __LINE__);
    EXPECT(&dp, "x: y-outside");
    EXPECT(&dq, "x: y-outside");
    QUIET(&dt);
    QUIET(&dp);
    QUIET(&dq);

    ck_assert_int_eq(xlen(&redis, NULL), before + 2);
    stream_read(&redis, "chat:history", &st, __LINE__);
    ck_assert_str_eq(st.m[st.n - 2].id, id1);
    ck_assert_str_eq(st.m[st.n - 2].user, "sd_p");
    ck_assert_str_eq(st.m[st.n - 2].text, "seedline-1");
    ck_assert_str_eq(st.m[st.n - 1].id, id2);
    ck_assert_str_eq(st.m[st.n - 1].user, "sd_t");
    ck_assert_str_eq(st.m[st.n - 1].text, "seedline-2");

    fx_spy_stop(&spy, out, sizeof(out));
    ck_assert_msg(count_in(out, "message\nchat\nsd_p: seedline-1\n") == 1, "spy: %s", out);
    ck_assert_msg(count_in(out, "message\nchat\nsd_t: seedline-2\n") == 1, "spy: %s", out);
    /* the other copy of each, on chat:{}, carries the id */
    ck_assert_msg(count_in(out, "seedline-1") == 2, "spy: %s", out);
    ck_assert_msg(count_in(out, "seedline-2") == 2, "spy: %s", out);
    ck_assert_msg(count_in(out, "message\nchat:{}\n") >= 2, "spy: %s", out);
    ck_assert_msg(strstr(out, id1) != NULL && strstr(out, id2) != NULL, "spy (ids %s %s): %s", id1,
                  id2, out);
    ck_assert_msg(count_in(out, "y-outside") == 1, "spy: %s", out);
    wsc_free(&dp);
    wsc_free(&dt);
    wsc_free(&dq);
}
END_TEST

/* ---- bad input ---------------------------------------------------------------------------- */

/* A bad "history" (negative, not an integer, above history-on-join-max), a
 * bad "after", or both get the error of the table, with the request's id,
 * and join nothing; the limits themselves are fine. On the URL, the same
 * mistakes are refused before the upgrade with 400. */
START_TEST(test_bad_input)
{
    static const char *const bad_urls[] = {"/chat/bad2/e2?history=abc",
                                           "/chat/bad2/e2?history=-1",
                                           "/chat/bad2/e2?history=" XSTR(HIST_OVER),
                                           "/chat/bad2/e2?after=nope",
                                           "/chat/bad2/e2?history=1&after=1-0",
                                           "/chat/e2?history=abc"};
    static struct seq s;
    struct wsc e, u;
    unsigned i;
    int tr;

    fx_users_quiesce(&redis, USERS_KEY);
    ck_assert_int_eq(TCONNECT(&e, chat_a.port, "bad", "e", NULL, &s, &tr), 0);
    REQ(&e, "{\"type\":\"join\",\"room\":\"bx\",\"history\":-1,\"id\":1}");
    EV_ERR(&e, "e", "join", EV_BX, HISTORY_REASON, "1");
    REQ(&e, "{\"type\":\"join\",\"room\":\"bx\",\"history\":\"x\"}");
    EV_ERR(&e, "e", "join", EV_BX, HISTORY_REASON, NULL);
    REQ(&e, "{\"type\":\"join\",\"room\":\"bx\",\"history\":" XSTR(HIST_OVER) ",\"id\":\"big\"}");
    EV_ERR(&e, "e", "join", EV_BX, HISTORY_REASON, "\"big\"");
    REQ(&e, "{\"type\":\"join\",\"room\":\"bx\",\"history\":2.5}");
    EV_ERR(&e, "e", "join", EV_BX, HISTORY_REASON, NULL);
    REQ(&e, "{\"type\":\"who\"}"); /* a good one between: never ten bad in a row */
    json_decref(ev_expect(&e, "e", "presence", "bad", __LINE__));
    REQ(&e, "{\"type\":\"join\",\"room\":\"bx\",\"after\":\"nope\",\"id\":\"a\"}");
    EV_ERR(&e, "e", "join", EV_BX, AFTER_REASON, "\"a\"");
    REQ(&e, "{\"type\":\"join\",\"room\":\"bx\",\"after\":\"12-x\"}");
    EV_ERR(&e, "e", "join", EV_BX, AFTER_REASON, NULL);
    REQ(&e, "{\"type\":\"join\",\"room\":\"bx\",\"history\":2,\"after\":\"1-0\",\"id\":2}");
    EV_ERR(&e, "e", "join", EV_BX, BOTH_REASON, "2");
    QUIET(&e);
    ck_assert_int_eq(fx_redis_int(&redis, "EXISTS chat:{bx}:users"), 0);

    /* the bounds are fine */
    ck_assert_int_eq(TJOIN_REQ(&e, "e", "bx",
                               "{\"type\":\"join\",\"room\":\"bx\",\"history\":" XSTR(HIST_MAX) "}",
                               &s, &tr),
                     0);
    ck_assert_int_eq(
        TJOIN_REQ(&e, "e", "by", "{\"type\":\"join\",\"room\":\"by\",\"history\":0}", &s, &tr), 0);
    ck_assert(fx_set_has(&redis, "chat:{bx}:users", "e"));
    wsc_free(&e);

    for (i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        int st = wsc_connect(&u, chat_b.port, bad_urls[i], PROTO_HEADER, T_MSG_MS);

        ck_assert_msg(st == 400, "typed %s: HTTP %d (%s)", bad_urls[i], st, u.body);
        wsc_free(&u);
        st = wsc_connect(&u, chat_a.port, bad_urls[i], NULL, T_MSG_MS);
        ck_assert_msg(st == 400, "plain %s: HTTP %d (%s)", bad_urls[i], st, u.body);
        wsc_free(&u);
    }
    ck_assert_int_eq(fx_redis_int(&redis, "EXISTS chat:{bad2}:users"), 0);
    /* and a good one on the same URL */
    ck_assert_int_eq(TCONNECT(&u, chat_b.port, "bad2", "e2", "history=" XSTR(HIST_MAX), &s, &tr),
                     0);
    wsc_free(&u);
}
END_TEST

/* ---- trimmed and expired history (history-size 5, history-ttl) ------------------------------ */

#define TRIM_N 250 /* past MAXLEN ~ 5, whole stream nodes (100 entries) go */

/* With history-size 5, a resume from an id trimmed away replays what is kept
 * (the whole stream, in order) and says truncated; so does a join request;
 * a resume from an id still kept is not truncated. history-ttl 60s: the
 * stream has a PTTL of at most a minute, refreshed by each message. */
START_TEST(test_truncated)
{
    static struct seq s, st;
    struct wsc t, tp, t2, t3;
    char l1[ID_MAX], text[64], q[96], req[160];
    long pttl;
    int i, tr, tr_url = 0, tr_join = 0;

    ck_assert_int_eq(TCONNECT(&t, chat_s.port, "tr", "t", "history=0", &s, &tr), 0);
    PJOIN(&tp, chat_s.port, "tr", "tp");
    SEND(&tp, "t1");
    MSG(&t, "t", "tr", "tp", "t1", l1);
    bye(&t, &redis_s, "chat:{tr}:users", "t");
    for (i = 2; i <= TRIM_N + 1; i++) {
        snprintf(text, sizeof(text), "t%d", i);
        SEND(&tp, text);
    }
    snprintf(q, sizeof(q), "t%d", TRIM_N + 1);
    STREAM_WAIT_LAST(&redis_s, "chat:{tr}:history", q);
    stream_read(&redis_s, "chat:{tr}:history", &st, __LINE__);
    ck_assert_msg(st.n >= SMALL_SIZE && st.n < TRIM_N, "%d entries kept", st.n);
    ck_assert_msg(id_cmp(st.m[0].id, l1) > 0, "t1 (%s) is still kept", l1);
    for (i = 0; i < st.n; i++) {
        snprintf(text, sizeof(text), "t%d", TRIM_N + 2 - st.n + i);
        ck_assert_str_eq(st.m[i].text, text);
    }

    snprintf(q, sizeof(q), "after=%s", l1);
    ck_assert_int_eq(TCONNECT(&t, chat_s.port, "tr", "t", q, &s, &tr_url), st.n);
    SEQ_IS(&s, &st, 0, st.n);
    ck_assert_int_eq(TCONNECT(&t2, chat_s.port, "trh", "t2", "history=0", &s, &tr), 0);
    snprintf(req, sizeof(req), "{\"type\":\"join\",\"room\":\"tr\",\"after\":\"%s\"}", l1);
    ck_assert_int_eq(TJOIN_REQ(&t2, "t2", "tr", req, &s, &tr_join), st.n);
    SEQ_IS(&s, &st, 0, st.n);
    wsc_free(&t2);
    /* from an id still kept: the rest, not truncated */
    snprintf(req, sizeof(req), "{\"type\":\"join\",\"room\":\"tr\",\"after\":\"%s\"}",
             st.m[st.n - 3].id);
    ck_assert_int_eq(TCONNECT(&t3, chat_s.port, "trh", "t3", "history=0", &s, &tr), 0);
    ck_assert_int_eq(TJOIN_REQ(&t3, "t3", "tr", req, &s, &tr), 2);
    ck_assert(!tr);
    SEQ_IS(&s, &st, st.n - 2, 2);

    /* history-ttl 60s */
    h_sleep_ms(1100);
    pttl = fx_redis_int(&redis_s, "PTTL chat:{tr}:history");
    ck_assert_msg(pttl > 0 && pttl <= 60000 - 1000, "PTTL %ld", pttl);
    SEND(&tp, "refresh");
    MSG(&t, "t", "tr", "tp", "refresh", NULL);
    pttl = fx_redis_int(&redis_s, "PTTL chat:{tr}:history");
    ck_assert_msg(pttl > 60000 - 1000 && pttl <= 60000, "PTTL %ld after a message", pttl);
    wsc_free(&t);
    wsc_free(&t3);
    wsc_free(&tp);
    /* checked last, so that a failure here leaves the rest checked */
    ck_assert_msg(tr_url && tr_join,
                  "resume after %s, trimmed (%d of %d kept, from %s): truncated is false "
                  "(?after: %s, join: %s)",
                  l1, st.n, TRIM_N + 1, st.m[0].id, tr_url ? "true" : "false",
                  tr_join ? "true" : "false");
}
END_TEST

/* history-ttl 1s: once the stream has expired, a resume from before a
 * message that went with it gets nothing, truncated. */
START_TEST(test_expired)
{
    static struct seq s;
    struct wsc t, pe;
    char l1[ID_MAX], q[96];
    long pttl;
    int tr;

    ck_assert_int_eq(TCONNECT(&t, chat_e.port, "ex", "t", NULL, &s, &tr), 0);
    PJOIN(&pe, chat_e.port, "ex", "pe");
    SEND(&pe, "e1");
    MSG(&t, "t", "ex", "pe", "e1", l1);
    pttl = fx_redis_int(&redis_s, "PTTL chat:{ex}:history");
    ck_assert_msg(pttl > 0 && pttl <= 1000, "PTTL %ld", pttl);
    bye(&t, &redis_s, "chat:{ex}:users", "t");
    SEND(&pe, "e2");
    STREAM_WAIT_LAST(&redis_s, "chat:{ex}:history", "e2");
    ck_assert(fx_redis_int_wait(&redis_s, "EXISTS chat:{ex}:history", 0, 5000));
    snprintf(q, sizeof(q), "after=%s", l1);
    ck_assert_int_eq(TCONNECT(&t, chat_e.port, "ex", "t", q, &s, &tr), 0);
    ck_assert_msg(tr, "truncated is false");
    wsc_free(&t);
    wsc_free(&pe);
}
END_TEST

/* ---- history off (history-size 0) ---------------------------------------------------------- */

/* No stream is written; joins still get the history event, count 0 (and
 * truncated when they asked for after); messages have no msg_id; sends are
 * acked with msg_id null; a plain ?history=N replays nothing. */
START_TEST(test_history_off)
{
    static struct seq s;
    struct wsc t, p, t2, d, dp;
    char out[256];
    json_t *ev;
    int tr;

    fx_users_quiesce(&redis_o, USERS_KEY);
    ck_assert_int_eq(TCONNECT(&t, chat_o1.port, "off", "t", NULL, &s, &tr), 0);
    ck_assert(!tr);
    ck_assert_int_eq(wsc_connect(&p, chat_o2.port, "/chat/off/p?history=5", NULL, T_MSG_MS), 101);
    EXPECT(&p, "Welcome p!");
    QUIET(&p);
    SEND(&p, "off1");
    msg_expect(&t, "t", "off", "p", "off1", 0, NULL, __LINE__);
    REQ(&t, "{\"type\":\"send\",\"text\":\"off2\",\"id\":\"k\"}");
    ev = ev_expect(&t, "t", "ack", "off", __LINE__);
    ck_assert_msg(ev_field_is(ev, "request", "send") && ev_field_is(ev, "id", "k") &&
                      json_is_null(json_object_get(ev, "msg_id")),
                  "ack: %s", last_text);
    json_decref(ev);
    EXPECT(&p, "t: off2");
    QUIET(&t);

    ck_assert_int_eq(TJOIN_REQ(&t, "t", "off2",
                               "{\"type\":\"join\",\"room\":\"off2\",\"after\":\"1-0\"}", &s, &tr),
                     0);
    ck_assert_msg(tr, "after, no history: not truncated");
    ck_assert_int_eq(
        TJOIN_REQ(&t, "t", "off3", "{\"type\":\"join\",\"room\":\"off3\",\"history\":5}", &s, &tr),
        0);
    ck_assert(!tr);
    ck_assert_int_eq(TCONNECT(&t2, chat_o2.port, "off", "t2", "after=1-0", &s, &tr), 0);
    ck_assert_msg(tr, "?after, no history: not truncated");

    /* the default room */
    ck_assert_int_eq(TCONNECT(&d, chat_o1.port, NULL, "d", NULL, &s, &tr), 0);
    PJOIN(&dp, chat_o2.port, NULL, "dp");
    SEND(&dp, "off-default");
    msg_expect(&d, "d", "", "dp", "off-default", 0, NULL, __LINE__);
    REQ(&d, "{\"type\":\"send\",\"text\":\"off-default-2\"}");
    ev = ev_expect(&d, "d", "ack", "", __LINE__);
    ck_assert_msg(json_is_null(json_object_get(ev, "msg_id")) && json_object_get(ev, "id") == NULL,
                  "ack: %s", last_text);
    json_decref(ev);
    EXPECT(&dp, "d: off-default-2");
    QUIET(&d);
    QUIET(&dp);

    ck_assert_int_eq(fx_redis_int(&redis_o, "EXISTS chat:{off}:history"), 0);
    ck_assert_int_eq(fx_redis_int(&redis_o, "EXISTS chat:history"), 0);
    ck_assert_int_eq(h_redis_cli(&redis_o, out, sizeof(out), "KEYS *history*"), 0);
    ck_assert_msg(strcmp(out, "\n") == 0 || out[0] == '\0', "keys: %s", out);
    wsc_free(&t);
    wsc_free(&t2);
    wsc_free(&p);
    wsc_free(&d);
    wsc_free(&dp);
}
END_TEST

static Suite *history_suite(void)
{
    Suite *s = suite_create("history");
    TCase *tc = tcase_create("history");
    TCase *sm = tcase_create("small");
    TCase *off = tcase_create("off");

    tcase_add_unchecked_fixture(tc, main_setup, main_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_join_history);
    tcase_add_test(tc, test_join_seam);
    tcase_add_test(tc, test_plain_history);
    tcase_add_test(tc, test_resume);
    tcase_add_test(tc, test_acks);
    tcase_add_test(tc, test_seed_channel);
    tcase_add_test(tc, test_bad_input);
    suite_add_tcase(s, tc);

    tcase_add_unchecked_fixture(sm, small_setup, small_teardown);
    tcase_set_timeout(sm, 60);
    tcase_add_test(sm, test_truncated);
    tcase_add_test(sm, test_expired);
    suite_add_tcase(s, sm);

    tcase_add_unchecked_fixture(off, off_setup, off_teardown);
    tcase_set_timeout(off, 60);
    tcase_add_test(off, test_history_off);
    suite_add_tcase(s, off);
    return s;
}

int main(void)
{
    return check_run(history_suite());
}
