/* chat_rooms.h -- the rooms of one worker: which of its connections is in
 * which room under which name, and the fan-out of a room's messages to
 * them.
 *
 * A room is here from the first join asked in it to the last member gone.
 * Its plain members read the room's broadcast stream (one frame per
 * message, shared by all of them, as the seed room always did); its typed
 * members get the message's JSON event, encoded once per message and
 * queued to each by reference.
 */
#ifndef RC_CHAT_ROOMS_H
#define RC_CHAT_ROOMS_H

#include <stddef.h>
#include <stdint.h>

#include "bcast_log.h"
#include "dict.h"
#include "room.h"
#include "stream_id.h"

struct wss_server;
struct wss_session;
struct chat_conn;
struct chat_req_id;
struct chat_catchup;

/* One connection's place in one room. */
struct chat_member {
    struct chat_room *room;
    struct chat_conn *conn;
    struct chat_member *conn_next;     /* the connection's other rooms */
    struct chat_member *tprev, *tnext; /* the room's typed members (joined) */
    uint32_t join_req;
    struct chat_catchup *cu;   /* replaying history: live messages wait there */
    unsigned joined : 1;       /* holds its name in the room, here and in Redis */
    unsigned join_pending : 1; /* asked: listed in the chat's pending joins */
    unsigned url_room : 1;     /* the room of the URL: the connection's first */
    unsigned join_mode : 2;    /* enum ipc_join_mode: the history it asks for, */
    char *join_arg;            /* with this argument (malloc'd; until the answer) */
};

struct chat_room {
    char name[ROOM_NAME_MAX + 1]; /* "" = the default room */
    size_t len;
    struct dict members;  /* user name -> struct chat_member, joined or asking */
    struct bcast_log log; /* what its plain members read */
    struct chat_member *typed;
    size_t ntyped, nplain;
    struct chat_member *catching; /* members replaying history */
    /* its stored messages: the last one delivered (copies are dropped),
     * and how far its stream is known to be seen (for a restarted broker) */
    struct stream_id last, pos;
    unsigned have_last : 1, have_pos : 1;
};

/* What a connection is, as far as fan-out cares. */
struct chat_conn {
    struct wss_session *s;
    struct chat_member *rooms; /* joined or asking */
    size_t nrooms;
    unsigned typed : 1; /* redis-chat.v1 */
    /* rate limit: a token bucket in thousandths of a message */
    uint32_t rl_tokens;
    uint32_t rl_dropped; /* messages refused since the last one let through */
    uint64_t rl_last_ms;
    uint32_t bad_requests;   /* typed: bad frames in a row */
    struct chat_req_id *ids; /* typed: the ids of the last requests sent on (chat.c) */
    unsigned ids_next;
    size_t len;   /* of the name */
    char label[]; /* "user=", then the name, NUL-terminated */
};

const char *chat_conn_name(const struct chat_conn *c);

struct chat_rooms {
    struct dict by_name;
    struct wss_server *srv;
};

void chat_rooms_init(struct chat_rooms *rs, struct wss_server *srv);
/* Frees the rooms (after every member is gone). */
void chat_rooms_deinit(struct chat_rooms *rs);

struct chat_room *chat_rooms_get(const struct chat_rooms *rs, const char *name, size_t len);

/* A new member of room `name` for conn (the room is made if new), not yet
 * joined. NULL when out of memory or when the name is already used in that
 * room by another connection of this worker (*taken set). */
struct chat_member *chat_member_new(struct chat_rooms *rs, struct chat_conn *conn, const char *name,
                                    size_t len, int *taken);
/* The member of conn in room name, or NULL. */
struct chat_member *chat_member_of(const struct chat_conn *conn, const char *name, size_t len);
/* The broker granted the name: plain members start reading the room's
 * stream, typed ones get its events. */
void chat_member_joined(struct chat_member *m);
/* The same, but m replays history first: live messages wait until
 * chat_member_caught_up. -1 out of memory (m is then as before). */
int chat_member_catch_up(struct chat_member *m);
/* One replayed message (a stored payload) for m. */
void chat_member_replay(struct chat_member *m, const char *payload, size_t len);
/* Messages replayed to m so far. */
long chat_member_replayed(const struct chat_member *m);
/* The replay is over: what waited goes out but for the messages up to
 * `seam` (the last replayed; NULL: none), then m is live. */
void chat_member_caught_up(struct chat_member *m, const struct stream_id *seam);
/* Remove and free m (the caller has told the broker); the room goes with
 * its last member. */
void chat_member_free(struct chat_rooms *rs, struct chat_member *m);

/* A payload delivered on room's channel: to every member but its sender.
 * `tagged`: in the tagged form even in the default room. */
void chat_rooms_deliver(struct chat_rooms *rs, const char *name, size_t len, const char *payload,
                        size_t plen, int tagged);
/* The broker knows the room's stream is seen up to id at least. */
void chat_rooms_seen(struct chat_rooms *rs, const char *name, size_t len, const struct stream_id *id);
/* A direct message for `to` in room. */
void chat_rooms_deliver_direct(struct chat_rooms *rs, const char *room, size_t rlen, const char *to,
                               size_t tolen, const char *from, size_t flen, const char *text,
                               size_t tlen);

/* Queue a JSON event (from chat_proto) for one session, and free it. */
void chat_queue_event(struct wss_session *s, char *json);

#endif
