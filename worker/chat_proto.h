/* chat_proto.h -- the typed protocol, redis-chat.v1: what a client may ask
 * and the events it gets, each one JSON object in a text frame
 * (docs/protocol.md). Every byte of that format is written and read here.
 * Pure: no I/O, no logging; allocation by jansson. */
#ifndef RC_CHAT_PROTO_H
#define RC_CHAT_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CHAT_PROTO_NAME "redis-chat.v1" /* the WebSocket subprotocol */
#define CHAT_PROTO_ID_MAX 64            /* bytes of a string "id" */
/* a join's "history" out of range (the bound is the configuration's) */
#define CHAT_PROTO_HISTORY_MAX 100000 /* history-on-join-max's own bound */
#define CHAT_PROTO_BAD_HISTORY "field \"history\" must be an integer from 0 to history-on-join-max"

enum chat_req_type {
    CHAT_REQ_SEND = 0,
    CHAT_REQ_JOIN,
    CHAT_REQ_LEAVE,
    CHAT_REQ_WHO,
    CHAT_REQ_DIRECT,
};

/* A parsed request. Strings are views into `root`, valid until
 * chat_req_free. */
struct chat_req {
    enum chat_req_type type;
    const char *type_name; /* the "type" given, when it was a string, else NULL */
    const char *room;      /* NULL when left out: the room of the URL */
    size_t room_len;
    const char *text; /* send, direct */
    size_t text_len;
    const char *to; /* direct */
    size_t to_len;
    long history;      /* join: messages to replay, -1 when not given */
    const char *after; /* join: resume after this msg id (a valid one), or NULL */
    size_t after_len;
    json_t *id; /* a valid "id" to repeat in errors, or NULL */
    json_t *root;
};

/* Parse one request frame. 0 with r filled; -1 with r->type_name / r->id
 * set as far as they could be read (for the error event) and *reason the
 * why ("bad JSON: ...", "unknown request type", "field \"room\" must be a
 * string", ...), written into reason[0..cap). Either way chat_req_free(r). */
int chat_req_parse(const char *text, size_t len, struct chat_req *r, char *reason, size_t cap);
void chat_req_free(struct chat_req *r);

/* The request types' names ("send", ...). */
const char *chat_req_type_name(enum chat_req_type t);

/* Events, as malloc'd NUL-terminated JSON texts (free() them), or NULL out
 * of memory or when a string is not valid UTF-8 (a payload from outside).
 * room is never NULL ("" is the default room); ts in ms since the epoch. */
char *chat_ev_welcome(const char *room, size_t rlen, const char *user, size_t ulen, uint64_t ts);
/* `to` NULL: a room message; else a direct message to `to`. */
char *chat_ev_message(const char *room, size_t rlen, const char *user, size_t ulen,
                      const char *text, size_t tlen, const char *to, size_t tolen, uint64_t ts);
/* A room message kept in its history, with its id. */
char *chat_ev_message_stored(const char *room, size_t rlen, const char *user, size_t ulen,
                             const char *text, size_t tlen, const char *msg_id, size_t idlen,
                             uint64_t ts);
/* A send accepted by Redis: msg_id NULL without history; id: the request's. */
char *chat_ev_ack(const char *room, size_t rlen, const char *user, size_t ulen, const char *msg_id,
                  size_t idlen, json_t *id, uint64_t ts);
/* The replay of a join is over: `count` messages, `truncated` when some
 * asked for are no longer kept. */
char *chat_ev_history(const char *room, size_t rlen, const char *user, size_t ulen, long count,
                      int truncated, uint64_t ts);
char *chat_ev_joined(const char *room, size_t rlen, const char *user, size_t ulen, uint64_t ts);
char *chat_ev_left(const char *room, size_t rlen, const char *user, size_t ulen, uint64_t ts);
/* names: '\n'-separated (nameslen 0: none); count: the room's size. */
char *chat_ev_presence(const char *room, size_t rlen, const char *user, size_t ulen,
                       long long count, const char *names, size_t nameslen, uint64_t ts);
/* request NULL: the frame was no request; room NULL: none named; id NULL: none. */
char *chat_ev_error(const char *request, const char *room, size_t rlen, const char *user,
                    size_t ulen, const char *reason, json_t *id, uint64_t ts);

#endif
