/* check_typed.c -- the typed protocol redis-chat.v1 (docs/protocol.md) end to
 * end: one redis-server (TLS + password) and two redis-chat instances of 2
 * workers sharing it (b with presence-max 2 and max-rooms-per-connection 3).
 * The welcome, one connection in several rooms, leave, who and presence,
 * direct messages (checked on the wire by a raw Redis subscriber), every
 * error a request can get and the close after ten bad frames, and plain and
 * typed clients side by side in a room and in the default room. Events are
 * read with jansson, not with the server's code. Rooms with plain clients
 * alone are check_rooms.c. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define PROTO "redis-chat.v1"
#define PROTO_HEADER "Sec-WebSocket-Protocol: " PROTO
#define USERS_KEY "chat-users"
#define TS_SLACK_MS 60000 /* ts against this host's clock */
#define EV_MAX 8192
#define SPY_MAX 16384
#define BAD_FRAMES_MAX 10 /* bad frames in a row closed with 1008 */
#define B_PRESENCE_MAX 2
#define B_ROOMS_MAX 3

static struct h_redis redis;
static struct h_chat chat_a, chat_b; /* two instances, one Redis */

static void typed_setup(void)
{
    char conf[128];

    fx_tmp_enter();
    ck_assert_int_eq(h_redis_start(&redis, 1, "s3cret"), 0);
    fx_chat_ready(&chat_a, &redis, 2, "history-on-join 0\n");
    snprintf(conf, sizeof(conf),
             "history-on-join 0\npresence-max %d\nmax-rooms-per-connection %d\n", B_PRESENCE_MAX,
             B_ROOMS_MAX);
    fx_chat_ready(&chat_b, &redis, 2, conf);
}

static void typed_teardown(void)
{
    h_chat_free(&chat_a);
    h_chat_free(&chat_b);
    h_redis_free(&redis);
    fx_tmp_leave();
}

/* ---- events ------------------------------------------------------------------ */

static long long epoch_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 when text is a send's ack: acks have their own suite (check_history);
 * here they are passed over. */
static int ev_is_ack(const char *text)
{
    static const char ack[] = "{\"type\":\"ack\",";

    return strncmp(text, ack, sizeof(ack) - 1) == 0;
}

/* No text on c for T_QUIET_MS but acks. */
static int ev_quiet(struct wsc *c)
{
    char text[EV_MAX];
    long long end = h_now_ms() + T_QUIET_MS;
    int n;

    while (h_now_ms() < end) {
        n = wsc_recv_text(c, text, sizeof(text), (int)(end - h_now_ms()) + 1);
        if (n == 0)
            return 1;
        if (n < 0 || !ev_is_ack(text))
            return 0;
    }
    return 1;
}
#undef QUIET
#define QUIET(c) ck_assert_msg(ev_quiet(c), "%s: unexpected text or close", #c)

/* The next text on c that is no ack as a JSON object (json_decref it), or
 * NULL: timeout (c->timed_out), or with the reason on stderr. */
static json_t *ev_next(struct wsc *c, int timeout_ms)
{
    char text[EV_MAX];
    json_error_t err;
    json_t *ev;
    int n;

    do
        n = wsc_recv_text(c, text, sizeof(text), timeout_ms);
    while (n > 0 && ev_is_ack(text));

    if (n < 0)
        fprintf(stderr, "ev_next: connection closed (close code %d)\n", c->close_code);
    if (n <= 0)
        return NULL;
    ev = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    if (ev == NULL || !json_is_object(ev)) {
        fprintf(stderr, "ev_next: not a JSON object: %s\n", text);
        json_decref(ev);
        return NULL;
    }
    return ev;
}

/* ev_expect's room when any is fine */
static const char EV_ANY[] = "(any)";

/* 1 when field key of ev is the string want, or JSON null when want is NULL. */
static int ev_field_is(const json_t *ev, const char *key, const char *want)
{
    const json_t *v = json_object_get(ev, key);

    if (want == NULL)
        return json_is_null(v);
    return json_is_string(v) && strcmp(json_string_value(v), want) == 0;
}

/* The next event on c must be `type` in room from user (NULL: JSON null;
 * room EV_ANY: any), with a ts of the server's clock; returned for more
 * checks (decref it). */
static json_t *ev_expect(struct wsc *c, const char *type, const char *room, const char *user,
                         int line)
{
    json_t *ev = ev_next(c, T_MSG_MS);
    const json_t *ts;
    char *dump;

    ck_assert_msg(ev != NULL, "line %d: no %s event", line, type);
    dump = json_dumps(ev, JSON_COMPACT);
    ck_assert_msg(ev_field_is(ev, "type", type), "line %d: want %s, got %s", line, type, dump);
    ck_assert_msg(room == EV_ANY || ev_field_is(ev, "room", room),
                  "line %d: want room \"%s\", got %s", line, room != NULL ? room : "(null)", dump);
    ck_assert_msg(ev_field_is(ev, "user", user), "line %d: want user %s, got %s", line, user, dump);
    ts = json_object_get(ev, "ts");
    ck_assert_msg(json_is_integer(ts) && llabs(json_integer_value(ts) - epoch_ms()) < TS_SLACK_MS,
                  "line %d: bad ts in %s", line, dump);
    free(dump);
    return ev;
}

/* The next event is exactly {type, room, user, ts}: welcome, joined, left. */
static void ev_plain(struct wsc *c, const char *type, const char *room, const char *user, int line)
{
    json_t *ev = ev_expect(c, type, room, user, line);

    ck_assert_msg(json_object_size(ev) == 4, "line %d: %s has %zu fields", line, type,
                  json_object_size(ev));
    json_decref(ev);
}

/* The next event is user's message text in room; to: direct to whom, or
 * NULL for a room message (then no "to" at all). */
static void ev_message(struct wsc *c, const char *room, const char *user, const char *text,
                       const char *to, int line)
{
    json_t *ev = ev_expect(c, "message", room, user, line);

    ck_assert_msg(ev_field_is(ev, "text", text), "line %d: text is not \"%s\"", line, text);
    if (to != NULL)
        ck_assert_msg(ev_field_is(ev, "to", to), "line %d: \"to\" is not %s", line, to);
    else
        ck_assert_msg(json_object_get(ev, "to") == NULL, "line %d: a room message with \"to\"",
                      line);
    json_decref(ev);
}

/* The next event is an error of c's user about request (NULL: null) in room
 * (NULL: null) whose reason starts with `reason`; id: the JSON it must
 * repeat ("\"x\"", "7"), NULL for none. */
static void ev_error(struct wsc *c, const char *user, const char *request, const char *room,
                     const char *reason, const char *id, int line)
{
    json_t *ev = ev_expect(c, "error", room, user, line);
    const json_t *why = json_object_get(ev, "reason");
    json_t *want = id != NULL ? json_loads(id, JSON_DECODE_ANY, NULL) : NULL;
    char *dump = json_dumps(ev, JSON_COMPACT);

    ck_assert_msg(ev_field_is(ev, "request", request), "line %d: request: %s", line, dump);
    ck_assert_msg(json_is_string(why) &&
                      strncmp(json_string_value(why), reason, strlen(reason)) == 0,
                  "line %d: want reason \"%s\", got %s", line, reason, dump);
    if (want != NULL)
        ck_assert_msg(json_equal(json_object_get(ev, "id"), want), "line %d: want id %s: %s", line,
                      id, dump);
    else
        ck_assert_msg(json_object_get(ev, "id") == NULL, "line %d: an id: %s", line, dump);
    json_decref(want);
    free(dump);
    json_decref(ev);
}

#define EV_WELCOME(c, room, user) ev_plain((c), "welcome", (room), (user), __LINE__)
#define EV_JOINED(c, room, user) ev_plain((c), "joined", (room), (user), __LINE__)
#define EV_LEFT(c, room, user) ev_plain((c), "left", (room), (user), __LINE__)
#define EV_MSG(c, room, user, text) ev_message((c), (room), (user), (text), NULL, __LINE__)
#define EV_DM(c, room, user, to, text) ev_message((c), (room), (user), (text), (to), __LINE__)
#define EV_ERR(c, user, request, room, reason, id)                                                 \
    ev_error((c), (user), (request), (room), (reason), (id), __LINE__)

/* ---- users -------------------------------------------------------------------- */

/* Connect user as a typed client to room (NULL: the default room, "" in
 * events), read its welcome, then let other users' joined events pass for
 * FX_JOIN_SETTLE_MS (published just before this user's join, they may
 * follow its welcome). */
static void tjoin(struct wsc *c, int port, const char *room, const char *user, int line)
{
    char path[160];
    long long end;
    json_t *ev;
    int st;

    if (room != NULL)
        snprintf(path, sizeof(path), "/chat/%s/%s", room, user);
    else
        snprintf(path, sizeof(path), "/chat/%s", user);
    st = wsc_connect(c, port, path, PROTO_HEADER, T_MSG_MS);
    ck_assert_msg(st == 101, "line %d: %s: HTTP %d, not 101", line, path, st);
    ck_assert_msg(strcmp(c->protocol, PROTO) == 0, "line %d: subprotocol \"%s\"", line,
                  c->protocol);
    ev_plain(c, "welcome", room != NULL ? room : "", user, line);
    for (end = h_now_ms() + FX_JOIN_SETTLE_MS; h_now_ms() < end;) {
        ev = ev_next(c, (int)(end - h_now_ms()));
        if (ev == NULL && c->timed_out)
            break;
        ck_assert_msg(
            ev != NULL && ev_field_is(ev, "type", "joined") && !ev_field_is(ev, "user", user),
            "line %d: %s: something else than a joined right after its welcome", line, user);
        json_decref(ev);
    }
}

#define TJOIN(c, port, room, user) tjoin((c), (port), (room), (user), __LINE__)
#define PJOIN(c, port, room, user) fx_join_room((c), (port), (room), (user), __LINE__)

/* A request, sent as it is. */
#define REQ(c, json) SEND((c), (json))

/* Close c with a close frame, answered by the server. */
static void leave(struct wsc *c)
{
    ck_assert_int_eq(wsc_send_close(c, 1000, NULL), 0);
    ck_assert_int_eq(wsc_wait_close(c, T_MSG_MS), 1000);
    wsc_free(c);
}

/* ---- welcome, rooms, leave ------------------------------------------------------ */

/* The subprotocol is answered and the welcome is exactly {type, room, user,
 * ts}, with "" for the default room; without the subprotocol a client is
 * plain; of several offered, redis-chat.v1 is chosen. */
START_TEST(test_welcome)
{
    struct wsc t, d, p, o;
    long long before = epoch_ms();
    json_t *ev;

    fx_users_quiesce(&redis, USERS_KEY);
    ck_assert_int_eq(wsc_connect(&t, chat_a.port, "/chat/lobby/wel", PROTO_HEADER, T_MSG_MS), 101);
    ck_assert_str_eq(t.protocol, PROTO);
    ev = ev_expect(&t, "welcome", "lobby", "wel", __LINE__);
    ck_assert_int_eq(json_object_size(ev), 4);
    ck_assert(json_integer_value(json_object_get(ev, "ts")) >= before - 1000);
    ck_assert(json_integer_value(json_object_get(ev, "ts")) <= epoch_ms() + 1000);
    json_decref(ev);
    TJOIN(&d, chat_b.port, NULL, "wel");
    ck_assert_int_eq(wsc_connect(&o, chat_b.port, "/chat/other/wel",
                                 "Sec-WebSocket-Protocol: chat, " PROTO, T_MSG_MS),
                     101);
    ck_assert_str_eq(o.protocol, PROTO);
    EV_WELCOME(&o, "other", "wel");
    PJOIN(&p, chat_a.port, "plainroom", "wel");
    ck_assert_str_eq(p.protocol, "");
    QUIET(&t);
    QUIET(&d);
    wsc_free(&t);
    wsc_free(&d);
    wsc_free(&o);
    wsc_free(&p);
}
END_TEST

/* One typed connection in three rooms (its URL's and two joined): each
 * room's messages reach it with that room's name, what it sends reaches the
 * room it names only (the URL's when it names none); after a leave, answered
 * with left, nothing of that room reaches it and it cannot send there. */
START_TEST(test_three_rooms)
{
    struct wsc tri, p1, p2, p3;

    fx_users_quiesce(&redis, USERS_KEY);
    PJOIN(&p1, chat_b.port, "t1", "p1");
    PJOIN(&p2, chat_a.port, "t2", "p2");
    PJOIN(&p3, chat_b.port, "t3", "p3");
    TJOIN(&tri, chat_a.port, "t1", "tri");
    EXPECT(&p1, "tri: has joined the chat!");
    REQ(&tri, "{\"type\":\"join\",\"room\":\"t2\"}");
    EV_WELCOME(&tri, "t2", "tri");
    EXPECT(&p2, "tri: has joined the chat!");
    REQ(&tri, "{\"type\":\"join\",\"room\":\"t3\",\"id\":3}");
    EV_WELCOME(&tri, "t3", "tri");
    EXPECT(&p3, "tri: has joined the chat!");
    QUIET(&p1); /* one join notice, in its room only */
    QUIET(&p2);

    SEND(&p1, "one");
    EV_MSG(&tri, "t1", "p1", "one");
    SEND(&p3, "three");
    EV_MSG(&tri, "t3", "p3", "three");
    SEND(&p2, "two");
    EV_MSG(&tri, "t2", "p2", "two");
    REQ(&tri, "{\"type\":\"send\",\"room\":\"t2\",\"text\":\"to two\"}");
    EXPECT(&p2, "tri: to two");
    REQ(&tri, "{\"type\":\"send\",\"text\":\"to the url room\"}");
    EXPECT(&p1, "tri: to the url room");
    QUIET(&p1);
    QUIET(&p2);
    QUIET(&p3);
    QUIET(&tri); /* no echo */

    REQ(&tri, "{\"type\":\"leave\",\"room\":\"t2\"}");
    EV_LEFT(&tri, "t2", "tri");
    EXPECT(&p2, "tri: has left the chat!");
    SEND(&p2, "anyone?");
    SEND(&p3, "still three");
    EV_MSG(&tri, "t3", "p3", "still three"); /* and not p2's */
    REQ(&tri, "{\"type\":\"send\",\"room\":\"t2\",\"text\":\"back?\",\"id\":\"s1\"}");
    EV_ERR(&tri, "tri", "send", "t2", "not in that room", "\"s1\"");
    QUIET(&p2);
    QUIET(&p1);
    QUIET(&tri);
    ck_assert(!fx_set_has(&redis, "chat:{t2}:users", "tri"));
    ck_assert(fx_set_has(&redis, "chat:{t3}:users", "tri"));

    /* closing leaves every room still joined */
    leave(&tri);
    EXPECT(&p1, "tri: has left the chat!");
    EXPECT(&p3, "tri: has left the chat!");
    QUIET(&p2);
    wsc_free(&p1);
    wsc_free(&p2);
    wsc_free(&p3);
}
END_TEST

/* ---- who ------------------------------------------------------------------------- */

/* The presence event's names: *n of them into names[] (views into ev). */
static void presence_names(const json_t *ev, const char **names, size_t max, size_t *n)
{
    const json_t *users = json_object_get(ev, "users");
    size_t i;

    ck_assert(json_is_array(users));
    *n = json_array_size(users);
    ck_assert_uint_le(*n, max);
    for (i = 0; i < *n; i++) {
        ck_assert(json_is_string(json_array_get(users, i)));
        names[i] = json_string_value(json_array_get(users, i));
    }
}

/* who: the room's exact count and its names, sorted, across instances (plain
 * members too); past presence-max (2 on b) the names are cut, truncated is
 * true and the count stays exact. Only a member may ask. */
START_TEST(test_who)
{
    struct wsc wa, wb, wc, wd;
    const char *names[8];
    size_t n, i;
    json_t *ev;

    fx_users_quiesce(&redis, USERS_KEY);
    TJOIN(&wa, chat_a.port, "who", "wa");
    PJOIN(&wb, chat_b.port, "who", "wb");
    TJOIN(&wc, chat_b.port, "who", "wc");
    PJOIN(&wd, chat_a.port, NULL, "wd"); /* the default room: not counted */
    EV_JOINED(&wa, "who", "wb");
    EV_JOINED(&wa, "who", "wc");
    EXPECT(&wb, "wc: has joined the chat!");

    REQ(&wa, "{\"type\":\"who\",\"room\":\"who\"}");
    ev = ev_expect(&wa, "presence", "who", "wa", __LINE__);
    ck_assert_int_eq(json_integer_value(json_object_get(ev, "count")), 3);
    ck_assert(json_is_false(json_object_get(ev, "truncated")));
    presence_names(ev, names, 8, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(names[0], "wa");
    ck_assert_str_eq(names[1], "wb");
    ck_assert_str_eq(names[2], "wc");
    json_decref(ev);

    /* no room: the URL's */
    REQ(&wc, "{\"type\":\"who\"}");
    ev = ev_expect(&wc, "presence", "who", "wc", __LINE__);
    ck_assert_int_eq(json_integer_value(json_object_get(ev, "count")), 3);
    ck_assert(json_is_true(json_object_get(ev, "truncated")));
    presence_names(ev, names, 8, &n);
    ck_assert_uint_eq(n, B_PRESENCE_MAX);
    for (i = 0; i < n; i++)
        ck_assert_msg(strcmp(names[i], "wa") == 0 || strcmp(names[i], "wb") == 0 ||
                          strcmp(names[i], "wc") == 0,
                      "%s is not in the room", names[i]);
    ck_assert_str_ne(names[0], names[1]);
    json_decref(ev);

    REQ(&wa, "{\"type\":\"who\",\"room\":\"elsewhere\",\"id\":\"w\"}");
    EV_ERR(&wa, "wa", "who", "elsewhere", "not in that room", "\"w\"");
    QUIET(&wb); /* a plain member hears nothing of who */
    QUIET(&wd);
    wsc_free(&wa);
    wsc_free(&wb);
    wsc_free(&wc);
    wsc_free(&wd);
}
END_TEST

/* ---- direct messages ------------------------------------------------------------- */

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

/* A direct message reaches its target only, on the other instance too, as
 * a message event with "to" (typed) or "from (direct): text" (plain): not
 * the room, not the sender, not a user of the same name in another room.
 * On the wire it travels on chat:direct alone, never on the room's channel
 * or on `chat` (a raw subscriber to every channel sees it once). A user
 * not in the room is "user not present". */
START_TEST(test_direct)
{
    char *const spy_words[] = {(char *)"PSUBSCRIBE", (char *)"*", NULL};
    struct wsc da, db, dp, other, dflt;
    struct fx_spy spy;
    char out[SPY_MAX];

    fx_users_quiesce(&redis, USERS_KEY);
    fx_spy_start(&spy, &redis, spy_words);
    TJOIN(&da, chat_a.port, "dm", "da");
    TJOIN(&db, chat_b.port, "dm", "db");
    PJOIN(&dp, chat_b.port, "dm", "dp");
    TJOIN(&other, chat_a.port, "dm2", "db"); /* another db, in another room */
    PJOIN(&dflt, chat_a.port, NULL, "db");   /* and one in the default room */
    EV_JOINED(&da, "dm", "db");
    EV_JOINED(&da, "dm", "dp");
    EV_JOINED(&db, "dm", "dp");

    REQ(&da, "{\"type\":\"direct\",\"room\":\"dm\",\"to\":\"db\",\"text\":\"psst-typed\"}");
    EV_DM(&db, "dm", "da", "db", "psst-typed");
    REQ(&da, "{\"type\":\"direct\",\"to\":\"dp\",\"text\":\"psst-plain\"}");
    EXPECT(&dp, "da (direct): psst-plain");
    REQ(&db, "{\"type\":\"direct\",\"room\":\"dm\",\"to\":\"da\",\"text\":\"psst-back\"}");
    EV_DM(&da, "dm", "db", "da", "psst-back");
    REQ(&da, "{\"type\":\"send\",\"room\":\"dm\",\"text\":\"public\"}");
    EV_MSG(&db, "dm", "da", "public");
    EXPECT(&dp, "da: public");
    QUIET(&da);
    QUIET(&db);
    QUIET(&dp);
    QUIET(&other);
    QUIET(&dflt);

    /* absent: nobody of that name in the room (db of dm2 does not count) */
    REQ(&other, "{\"type\":\"direct\",\"room\":\"dm2\",\"to\":\"dp\",\"text\":\"x\"}");
    EV_ERR(&other, "db", "direct", "dm2", "user not present", NULL);
    REQ(&da, "{\"type\":\"direct\",\"room\":\"dm\",\"to\":\"nobody\",\"text\":\"x\"}");
    EV_ERR(&da, "da", "direct", "dm", "user not present", NULL);
    REQ(&da, "{\"type\":\"direct\",\"room\":\"dm2\",\"to\":\"db\",\"text\":\"x\"}");
    EV_ERR(&da, "da", "direct", "dm2", "not in that room", NULL);
    QUIET(&db);
    QUIET(&other);

    fx_spy_stop(&spy, out, sizeof(out));
    ck_assert_msg(count_in(out, "psst-typed") == 1, "spy: %s", out);
    ck_assert_msg(strstr(out, "pmessage\n*\nchat:direct\ndm\nda\ndb\npsst-typed\n") != NULL,
                  "spy: %s", out);
    ck_assert_msg(count_in(out, "psst-plain") == 1, "spy: %s", out);
    ck_assert_msg(strstr(out, "\nchat:direct\ndm\nda\ndp\npsst-plain\n") != NULL, "spy: %s", out);
    ck_assert_msg(count_in(out, "psst-back") == 1, "spy: %s", out);
    /* a stored message: 'M', its id, a line break, "user: text" */
    ck_assert_msg(strstr(out, "\nchat:{dm}\nM") != NULL && strstr(out, "\nda: public\n") != NULL,
                  "spy: %s", out);
    wsc_free(&da);
    wsc_free(&db);
    wsc_free(&dp);
    wsc_free(&other);
    wsc_free(&dflt);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------- */

/* Each bad request gets its error (request, room, reason, id as given) and
 * the connection stays: frames that are no request, wrong field types, and
 * requests the server refuses. */
START_TEST(test_request_errors)
{
    struct wsc e, taken, peer;
    char req[128];
    int i;

    fx_users_quiesce(&redis, USERS_KEY);
    TJOIN(&e, chat_a.port, "err", "ee");
    PJOIN(&taken, chat_b.port, "taken", "ee");

    REQ(&e, "not json");
    EV_ERR(&e, "ee", NULL, NULL, "bad JSON: ", NULL);
    REQ(&e, "[1, 2]");
    EV_ERR(&e, "ee", NULL, NULL, "a request must be a JSON object with a string \"type\"", NULL);
    REQ(&e, "{\"type\":5}");
    EV_ERR(&e, "ee", NULL, NULL, "a request must be a JSON object with a string \"type\"", NULL);
    REQ(&e, "{\"type\":\"dance\",\"id\":\"x1\"}");
    EV_ERR(&e, "ee", "dance", NULL, "unknown request type", "\"x1\"");
    REQ(&e, "{\"type\":\"send\",\"room\":5,\"text\":\"x\"}");
    EV_ERR(&e, "ee", "send", NULL, "field \"room\" must be a string", NULL);
    REQ(&e, "{\"type\":\"send\",\"text\":7,\"id\":42}");
    EV_ERR(&e, "ee", "send", NULL, "field \"text\" must be a string", "42");
    REQ(&e, "{\"type\":\"direct\",\"to\":[],\"text\":\"x\"}");
    EV_ERR(&e, "ee", "direct", NULL, "field \"to\" must be a string", NULL);

    REQ(&e, "{\"type\":\"leave\",\"room\":\"nothere\",\"id\":1}");
    EV_ERR(&e, "ee", "leave", "nothere", "not in that room", "1");
    REQ(&e, "{\"type\":\"join\",\"room\":\"err\",\"id\":\"again\"}");
    EV_ERR(&e, "ee", "join", "err", "already in that room", "\"again\"");
    REQ(&e, "{\"type\":\"join\",\"room\":\"bad{room\"}");
    ev_error(&e, "ee", "join", NULL,
             "room name contains a forbidden character (allowed: letters, digits, '-', '_', "
             "'.', '~')",
             NULL, __LINE__);
    snprintf(req, sizeof(req), "{\"type\":\"join\",\"room\":\"%065d\"}", 0);
    REQ(&e, req);
    EV_ERR(&e, "ee", "join", NULL, "room name is longer than 64 characters", NULL);
    /* the name is ee's in room taken already (a plain user on the other instance) */
    REQ(&e, "{\"type\":\"join\",\"room\":\"taken\"}");
    EV_ERR(&e, "ee", "join", "taken", "name taken in that room", NULL);
    REQ(&e, "{\"type\":\"send\",\"room\":\"taken\",\"text\":\"x\"}");
    EV_ERR(&e, "ee", "send", "taken", "not in that room", NULL);
    REQ(&e, "{\"type\":\"send\",\"text\":\"two\\nlines\",\"id\":\"nl\"}");
    EV_ERR(&e, "ee", "send", "err", "line breaks and control characters are not allowed", "\"nl\"");
    QUIET(&taken); /* the refused join was never announced */
    QUIET(&e);

    /* still a working connection, in its room */
    PJOIN(&peer, chat_b.port, "err", "peer");
    EV_JOINED(&e, "err", "peer");
    REQ(&e, "{\"type\":\"send\",\"text\":\"fine\"}");
    EXPECT(&peer, "ee: fine");
    wsc_free(&e);

    /* max-rooms-per-connection 3 on b: the URL's room and two more */
    TJOIN(&e, chat_b.port, "many0", "mm");
    for (i = 1; i < B_ROOMS_MAX; i++) {
        char room[16];

        snprintf(room, sizeof(room), "many%d", i);
        snprintf(req, sizeof(req), "{\"type\":\"join\",\"room\":\"%s\"}", room);
        REQ(&e, req);
        EV_WELCOME(&e, room, "mm");
    }
    REQ(&e, "{\"type\":\"join\",\"room\":\"many9\",\"id\":\"m\"}");
    EV_ERR(&e, "mm", "join", "many9", "too many rooms on this connection", "\"m\"");
    ck_assert_int_eq(fx_redis_int(&redis, "EXISTS chat:{many9}:users"), 0);
    /* a leave makes room for one more */
    REQ(&e, "{\"type\":\"leave\",\"room\":\"many1\"}");
    EV_LEFT(&e, "many1", "mm");
    REQ(&e, "{\"type\":\"join\",\"room\":\"many9\"}");
    EV_WELCOME(&e, "many9", "mm");
    wsc_free(&e);
    wsc_free(&taken);
    wsc_free(&peer);
}
END_TEST

/* Errors decided by Redis (a name taken, a user absent) come after a round
 * trip through the broker, and still repeat the request's id. */
START_TEST(test_error_ids_from_redis)
{
    struct wsc e, holder;
    json_t *absent, *taken;
    int absent_ok, taken_ok;

    fx_users_quiesce(&redis, USERS_KEY);
    TJOIN(&e, chat_a.port, "ids", "ii");
    PJOIN(&holder, chat_b.port, "ids2", "ii");
    REQ(&e, "{\"type\":\"direct\",\"to\":\"nobody\",\"text\":\"x\",\"id\":9}");
    absent = ev_expect(&e, "error", "ids", "ii", __LINE__);
    ck_assert(ev_field_is(absent, "reason", "user not present"));
    REQ(&e, "{\"type\":\"join\",\"room\":\"ids2\",\"id\":\"j\"}");
    taken = ev_expect(&e, "error", "ids2", "ii", __LINE__);
    ck_assert(ev_field_is(taken, "reason", "name taken in that room"));
    /* both checked before failing, to tell one from both */
    absent_ok = json_integer_value(json_object_get(absent, "id")) == 9;
    taken_ok = ev_field_is(taken, "id", "j");
    ck_assert_msg(absent_ok && taken_ok, "id repeated: user not present %s, name taken %s",
                  absent_ok ? "yes" : "no", taken_ok ? "yes" : "no");
    json_decref(absent);
    json_decref(taken);
    wsc_free(&e);
    wsc_free(&holder);
}
END_TEST

/* Limits of an instance of its own: max-rooms 2 refuses a connection's
 * third room with "too many rooms on this server"; past rate-limit a request
 * is refused with "rate limit exceeded, slow down" (once), and flooding on
 * closes with 1008. */
START_TEST(test_server_limits)
{
    struct h_chat lim;
    struct wsc e;
    char text[EV_MAX];
    json_t *ev;
    int i, n, room_ok, id_ok;

    fx_chat_ready(&lim, &redis, 1,
                  "history-on-join 0\nmax-rooms 2\nrate-limit 1\nrate-limit-burst 4\n");
    fx_users_quiesce(&redis, USERS_KEY);
    TJOIN(&e, lim.port, "lim0", "ll");
    REQ(&e, "{\"type\":\"join\",\"room\":\"lim1\"}");
    EV_WELCOME(&e, "lim1", "ll");
    REQ(&e, "{\"type\":\"join\",\"room\":\"lim2\"}");
    EV_ERR(&e, "ll", "join", "lim2", "too many rooms on this server", NULL);
    ck_assert_int_eq(fx_redis_int(&redis, "EXISTS chat:{lim2}:users"), 0);

    /* the joins took two of the burst of 4: by the fourth send it is spent */
    for (i = 0; i < 4; i++)
        REQ(&e, "{\"type\":\"send\",\"room\":\"lim1\",\"text\":\"x\",\"id\":\"r\"}");
    ev = ev_expect(&e, "error", EV_ANY, "ll", __LINE__);
    ck_assert(ev_field_is(ev, "request", "send"));
    ck_assert(ev_field_is(ev, "reason", "rate limit exceeded, slow down"));
    room_ok = ev_field_is(ev, "room", "lim1");
    id_ok = ev_field_is(ev, "id", "r");
    json_decref(ev);
    /* flooding on: no second warning, then 1008 */
    for (i = 0; i < 8; i++)
        REQ(&e, "{\"type\":\"send\",\"room\":\"lim1\",\"text\":\"flood\"}");
    while ((n = wsc_recv_text(&e, text, sizeof(text), T_MSG_MS)) > 0 && ev_is_ack(text))
        ; /* the sends that went through */
    ck_assert_int_eq(n, -1);
    ck_assert_int_eq(e.close_code, 1008);
    ck_assert_str_eq(e.close_reason, "rate limit exceeded");
    wsc_free(&e);
    ck_assert_int_eq(h_chat_stop(&lim), 0);
    h_chat_free(&lim);
    /* the error names the room and repeats the id, as every request's */
    ck_assert_msg(room_ok && id_ok, "rate limit error: room %s, id %s", room_ok ? "ok" : "not lim1",
                  id_ok ? "ok" : "not repeated");
}
END_TEST

/* Ten bad frames in a row close the connection with 1008; a good request
 * in between starts the count again. */
START_TEST(test_bad_frames_close)
{
    struct wsc e;
    int i, code;

    fx_users_quiesce(&redis, USERS_KEY);
    TJOIN(&e, chat_a.port, "bad", "bb");
    for (i = 0; i < BAD_FRAMES_MAX - 1; i++) {
        REQ(&e, "{\"type\":\"nope\"}");
        EV_ERR(&e, "bb", "nope", NULL, "unknown request type", NULL);
    }
    REQ(&e, "{\"type\":\"who\"}");
    json_decref(ev_expect(&e, "presence", "bad", "bb", __LINE__));
    for (i = 0; i < BAD_FRAMES_MAX - 1; i++) {
        REQ(&e, "{bad");
        EV_ERR(&e, "bb", NULL, NULL, "bad JSON: ", NULL);
    }
    QUIET(&e); /* nine in a row: still open */
    REQ(&e, "{\"type\":\"send\",\"text\":5}");
    code = wsc_wait_close(&e, T_MSG_MS);
    ck_assert_int_eq(code, 1008);
    ck_assert_str_eq(e.close_reason, "too many bad requests");
    ck_assert_msg(fx_set_wait(&redis, "chat:{bad}:users", "bb", 0, T_MSG_MS),
                  "bb still in the room after the close");
    wsc_free(&e);
}
END_TEST

/* The URL's room refuses a name it holds: a typed client gets the error
 * event, then close 4409, and the holder hears nothing. */
START_TEST(test_url_room_taken)
{
    struct wsc holder, dup;
    json_t *ev;
    int code;

    fx_users_quiesce(&redis, USERS_KEY);
    PJOIN(&holder, chat_a.port, "full", "hh");
    ck_assert_int_eq(wsc_connect(&dup, chat_b.port, "/chat/full/hh", PROTO_HEADER, T_MSG_MS), 101);
    ev = ev_expect(&dup, "error", "full", "hh", __LINE__);
    ck_assert(ev_field_is(ev, "request", "join"));
    code = wsc_wait_close(&dup, T_MSG_MS);
    ck_assert_int_eq(code, 4409);
    QUIET(&holder);
    /* the reason of a join refused for a taken name (the close frame has
     * the seed's "username already taken") */
    ck_assert_msg(ev_field_is(ev, "reason", "name taken in that room"), "reason: %s",
                  json_string_value(json_object_get(ev, "reason")));
    json_decref(ev);
    wsc_free(&dup);
    wsc_free(&holder);
}
END_TEST

/* ---- plain and typed together ------------------------------------------------------ */

/* In a room and in the default room alike, plain and typed members see each
 * other's joins, messages and leaves, each in its own format; a line
 * PUBLISHed on `chat` by anyone reaches a typed member of the default room
 * as a message. */
START_TEST(test_mixed_clients)
{
    char *const publish[] = {(char *)"PUBLISH", (char *)"chat", (char *)"seed: hello typed", NULL};
    const char *rooms[] = {"mix", NULL};
    struct wsc pm, tm, pn;
    char out[64];
    int k;

    fx_users_quiesce(&redis, USERS_KEY);
    for (k = 0; k < 2; k++) {
        const char *room = rooms[k];
        const char *ev_room = room != NULL ? room : "";

        PJOIN(&pm, chat_a.port, room, "pm");
        TJOIN(&tm, chat_b.port, room, "tm");
        EXPECT(&pm, "tm: has joined the chat!");
        PJOIN(&pn, chat_b.port, room, "pn");
        EV_JOINED(&tm, ev_room, "pn");
        EXPECT(&pm, "pn: has joined the chat!");

        REQ(&tm, "{\"type\":\"send\",\"text\":\"typed says\"}");
        EXPECT(&pm, "tm: typed says");
        EXPECT(&pn, "tm: typed says");
        SEND(&pm, "plain says");
        EV_MSG(&tm, ev_room, "pm", "plain says");
        EXPECT(&pn, "pm: plain says");
        /* in a room, a message in the text of a notice is still a message
         * (the default room's seed format cannot tell them apart) */
        if (room != NULL) {
            SEND(&pn, "has left the chat!");
            EV_MSG(&tm, ev_room, "pn", "has left the chat!");
            EXPECT(&pm, "pn: has left the chat!");
        }

        leave(&pn);
        EV_LEFT(&tm, ev_room, "pn");
        EXPECT(&pm, "pn: has left the chat!");
        if (room == NULL) {
            ck_assert_int_eq(h_redis_cliv(&redis, out, sizeof(out), publish), 0);
            EV_MSG(&tm, "", "seed", "hello typed");
            EXPECT(&pm, "seed: hello typed");
        }
        wsc_free(&tm);
        EXPECT(&pm, "tm: has left the chat!");
        QUIET(&pm);
        wsc_free(&pm);
    }
}
END_TEST

/* ---- Redis down ------------------------------------------------------------------ */

#define T_REDIS_BACK_MS 12000 /* Redis back up: retries back off up to 5 s + jitter */

/* With Redis down, what needs an answer from Redis (who, direct, join; the
 * URL's room too: close 1013) is refused with "chat service unavailable",
 * while a send is held, not refused, up to 64 sends awaiting an answer: the
 * next is refused at once, so no answer loses its id; once Redis is back,
 * each held send gets its ack with its id, and who works again. Its own
 * Redis. */
START_TEST(test_redis_down)
{
    struct h_redis r;
    struct h_chat c;
    struct wsc t, peer, late;
    char req[96];
    json_t *ev;
    int down, i;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&c, &r, 1, "history-on-join 0\nrate-limit 0\n");
    TJOIN(&t, c.port, "rd", "tt");
    PJOIN(&peer, c.port, "rd", "pp");
    EV_JOINED(&t, "rd", "pp");
    down = h_count_in_file(c.log, "redis link down");
    h_redis_stop(&r);
    ASSERT_LOG(h_wait_count(c.log, "redis link down", down + 1, 5000), c.log);

    REQ(&t, "{\"type\":\"who\"}");
    EV_ERR(&t, "tt", "who", "rd", "chat service unavailable", NULL);
    REQ(&t, "{\"type\":\"direct\",\"to\":\"pp\",\"text\":\"x\"}");
    EV_ERR(&t, "tt", "direct", "rd", "chat service unavailable", NULL);
    REQ(&t, "{\"type\":\"join\",\"room\":\"rd2\"}");
    EV_ERR(&t, "tt", "join", "rd2", "chat service unavailable", NULL);
    REQ(&t, "{\"type\":\"send\",\"text\":\"held\"}");
    QUIET(&t); /* held, not refused */
    for (i = 1; i < 64; i++) {
        snprintf(req, sizeof(req), "{\"type\":\"send\",\"id\":%d,\"text\":\"held %d\"}", i, i);
        REQ(&t, req);
    }
    QUIET(&t);
    REQ(&t, "{\"type\":\"send\",\"id\":\"65th\",\"text\":\"one too many\"}");
    EV_ERR(&t, "tt", "send", "rd", "too many sends awaiting an answer", "\"65th\"");
    QUIET(&peer);
    ck_assert_int_eq(wsc_connect(&late, c.port, "/chat/rd/late", PROTO_HEADER, T_MSG_MS), 101);
    EV_ERR(&late, "late", "join", "rd", "chat service unavailable", NULL);
    ck_assert_int_eq(wsc_wait_close(&late, T_MSG_MS), 1013);
    wsc_free(&late);

    /* (the held message's delivery in a room: check_rooms' test_redis_outbox_rooms) */
    ck_assert_int_eq(h_redis_restart(&r), 0);
    ASSERT_LOG(h_wait_count(c.log, "chat service available", 2, T_REDIS_BACK_MS), c.log);
    for (i = 0; i < 65; i++) { /* one ack each, in order: the first had no id */
        char text[EV_MAX];
        const json_t *id;
        if (i == 64)
            REQ(&t, "{\"type\":\"send\",\"id\":\"after\",\"text\":\"room again\"}");
        ck_assert_msg(wsc_recv_text(&t, text, sizeof(text), T_MSG_MS) > 0, "ack %d: none", i);
        ck_assert_msg(ev_is_ack(text), "ack %d: got %s", i, text);
        ev = json_loads(text, 0, NULL);
        id = json_object_get(ev, "id");
        ck_assert_msg(i == 0    ? id == NULL
                      : i < 64 ? json_is_integer(id) && json_integer_value(id) == i
                               : json_is_string(id) && strcmp(json_string_value(id), "after") == 0,
                      "ack %d: %s", i, text);
        json_decref(ev);
    }
    REQ(&t, "{\"type\":\"who\"}");
    ev = ev_expect(&t, "presence", "rd", "tt", __LINE__);
    ck_assert_int_eq(json_integer_value(json_object_get(ev, "count")), 2);
    json_decref(ev);
    wsc_free(&t);
    wsc_free(&peer);
    h_chat_free(&c);
    h_redis_free(&r);
}
END_TEST

static Suite *typed_suite(void)
{
    Suite *s = suite_create("typed");
    TCase *tc = tcase_create("typed");
    TCase *rd = tcase_create("redis");

    tcase_add_unchecked_fixture(tc, typed_setup, typed_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_welcome);
    tcase_add_test(tc, test_three_rooms);
    tcase_add_test(tc, test_who);
    tcase_add_test(tc, test_direct);
    tcase_add_test(tc, test_request_errors);
    tcase_add_test(tc, test_error_ids_from_redis);
    tcase_add_test(tc, test_server_limits);
    tcase_add_test(tc, test_bad_frames_close);
    tcase_add_test(tc, test_url_room_taken);
    tcase_add_test(tc, test_mixed_clients);
    suite_add_tcase(s, tc);

    /* its own Redis, below the fixture's dir */
    tcase_add_unchecked_fixture(rd, fx_tmp_enter, fx_tmp_leave);
    tcase_set_timeout(rd, 60);
    tcase_add_test(rd, test_redis_down);
    suite_add_tcase(s, rd);
    return s;
}

int main(void)
{
    return check_run(typed_suite());
}
