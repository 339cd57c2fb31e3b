/* ipc.h -- the worker <-> broker frame format, and nothing else.
 *
 * Both the worker and the broker link ipc.c; no other file knows byte
 * offsets. The codec is pure: no I/O, no allocation, no logging.
 *
 * Frame layout (all integers in network byte order):
 *
 *   u32 length     whole frame, these 4 bytes included
 *   u8  version    IPC_VERSION
 *   u8  type       enum ipc_type
 *   u16 flags      per type (see below): a value in the type's range, else 0
 *   u32 id         request id (JOIN/PUBLISH and their replies), worker slot
 *                  (HELLO), echo token (PING/PONG), else 0
 *   then exactly ipc_type_nfields(type) fields, each: u32 length, bytes
 *
 * The first field of every message is the room.
 *
 *   type              dir   fields                    flags / id
 *   IPC_HELLO         w->b  room, pid (decimal)       id = worker slot
 *   IPC_JOIN          w->b  room, user, history       id = request id,
 *                                                     flags = enum ipc_join_mode
 *                                                     (history: see there)
 *   IPC_JOIN_REPLY    b->w  room, user                id = request id,
 *                                                     flags = enum ipc_join_status
 *   IPC_LEAVE         w->b  room, user                flags: IPC_LEAVE_F_ORPHAN
 *   IPC_PUBLISH       w->b  room, user, text          id = request id,
 *                                                     flags: IPC_PUBLISH_F_ACK
 *   IPC_PUBLISH_OK    b->w  room, user, msg id        id = request id (asked for
 *                                                     with IPC_PUBLISH_F_ACK; msg
 *                                                     id "" without history)
 *   IPC_PUBLISH_FAIL  b->w  room, user, reason        id = request id,
 *                                                     flags: IPC_FAIL_F_DIRECT
 *   IPC_DELIVER       b->w  room, payload             (payload as published
 *                                                     to Redis: "user: text");
 *                                                     flags: IPC_DELIVER_F_TAGGED
 *   IPC_LINK          b->w  room                      flags = enum ipc_link_state
 *   IPC_PING/IPC_PONG both  room                      id = echo token
 *   IPC_DIRECT        w->b  room, from, to, text      id = request id
 *   IPC_DELIVER_DIRECT b->w room, to, from, text      (to the worker holding `to`)
 *   IPC_WHO           w->b  room, user                id = request id
 *   IPC_WHO_REPLY     b->w  room, user, count, names  id = request id; count in
 *                                                     decimal, names '\n'-separated;
 *                                                     flags: IPC_WHO_UNAVAILABLE
 *   IPC_HISTORY       b->w  room, user, payload       id = the join's request id;
 *                                                     payload: a stored message
 *                                                     (chat_payload.h), replayed
 *                                                     to that member only
 *   IPC_HISTORY_END   b->w  room, user, last id       id = the join's request id;
 *                                                     flags: IPC_HISTORY_F_*; last
 *                                                     id: the replay's (or "")
 *   IPC_SEEN          both  room, msg id              b->w: where the room's stream
 *                                                     was when its subscription began;
 *                                                     w->b (to a new broker): the
 *                                                     last id the worker has seen
 *
 * The room is "" for the default room (the seed's chat), else its name.
 */
#ifndef RC_IPC_H
#define RC_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IPC_VERSION 1
#define IPC_HEADER_LEN 12      /* length + version + type + flags + id */
#define IPC_FIELD_HDR_LEN 4    /* u32 length before each field */
#define IPC_FIELDS_MAX 4
/* Room names, a user name and a presence list of presence-max names of at
 * most 128 bytes each must fit in any frame, however small max-message-size. */
#define IPC_NAMES_MAX (1000u * 129u + 1024u)
/* Hard ceiling for any frame; callers pass a smaller max derived from
 * max-message-size (see ipc_frame_max_for). */
#define IPC_FRAME_MAX (64u * 1024 * 1024)

enum ipc_type {
    IPC_HELLO = 1,
    IPC_JOIN,
    IPC_JOIN_REPLY,
    IPC_LEAVE,
    IPC_PUBLISH,
    IPC_PUBLISH_FAIL,
    IPC_DELIVER,
    IPC_LINK,
    IPC_PING,
    IPC_PONG,
    IPC_DIRECT,
    IPC_DELIVER_DIRECT,
    IPC_WHO,
    IPC_WHO_REPLY,
    IPC_PUBLISH_OK,
    IPC_HISTORY,
    IPC_HISTORY_END,
    IPC_SEEN,
    IPC_TYPE_LAST = IPC_SEEN,
};

/* What a JOIN asks for besides the name. */
enum ipc_join_mode {
    IPC_JOIN_PLAIN = 0,      /* no history (history field "") */
    IPC_JOIN_REREGISTER = 1, /* a user the worker holds already, sent again to a
                              * broker that restarted; no reply, no announcement */
    IPC_JOIN_LAST = 2,       /* replay the last N messages: history = N in decimal */
    IPC_JOIN_AFTER = 3,      /* replay every message after history (a msg id) */
};
/* LEAVE: the user left while the broker was away, so this broker never saw
 * the join; remove the name all the same. */
#define IPC_LEAVE_F_ORPHAN 1

enum ipc_join_status {
    IPC_JOIN_ACCEPTED = 0,
    IPC_JOIN_TAKEN = 1,      /* the name is in the users set already */
    IPC_JOIN_UNAVAILABLE = 2, /* Redis unreachable: try again later */
    IPC_JOIN_ROOMS_FULL = 3   /* a new room, and max-rooms are in use already */
};

/* PUBLISH: answer with PUBLISH_OK once Redis has the message. */
#define IPC_PUBLISH_F_ACK 1
/* DELIVER: the payload is in the tagged form whatever the room (the default
 * room's feed channel carries that form). */
#define IPC_DELIVER_F_TAGGED 1
/* HISTORY_END: messages after the asked id are no longer kept; the history
 * could not be read (Redis down, an error). */
#define IPC_HISTORY_F_TRUNCATED 1
#define IPC_HISTORY_F_UNAVAILABLE 2
/* PUBLISH_FAIL: the request that failed was a DIRECT. */
#define IPC_FAIL_F_DIRECT 1
/* WHO_REPLY: Redis could not be asked (count and names are empty). */
#define IPC_WHO_UNAVAILABLE 1

enum ipc_link_state { IPC_LINK_DOWN = 0, IPC_LINK_UP = 1 };

/* Error codes, returned negated. */
enum ipc_err {
    IPC_EPROTO = 1, /* malformed frame: the stream cannot be trusted any more */
    IPC_ETOOBIG,    /* length header above the caller's maximum */
    IPC_ENOSPC,     /* encode: output buffer too small */
    IPC_EINVAL,     /* encode: bad message (type, field count, flags) */
};

struct ipc_field {
    const uint8_t *p; /* decode: view into the input buffer */
    uint32_t len;
};

struct ipc_msg {
    uint8_t type;   /* enum ipc_type */
    uint16_t flags;
    uint32_t id;
    uint32_t nfields; /* set by the decoder; the encoder checks it */
    struct ipc_field f[IPC_FIELDS_MAX];
};

/* Number of fields a type carries, or -1 for an unknown type. */
int ipc_type_nfields(unsigned type);

/* Name of a type for logs ("JOIN"), "?" if unknown. */
const char *ipc_type_name(unsigned type);

/* Encoded size of m (no validation). */
size_t ipc_encoded_size(const struct ipc_msg *m);

/* Encode m into buf[0..cap). Returns bytes written, or -IPC_EINVAL
 * (unknown type, wrong nfields, flags out of range, NULL field with len > 0,
 * frame above IPC_FRAME_MAX) or -IPC_ENOSPC. Never writes past cap. */
ssize_t ipc_encode(uint8_t *buf, size_t cap, const struct ipc_msg *m);

/* Decode one frame from buf[0..len). Returns the frame's size in bytes (> 0)
 * with *m filled, 0 when more bytes are needed (nothing consumed), or a
 * negative ipc_err. The length header is checked against max_frame as soon
 * as its 4 bytes are there, so an oversized frame is refused before its body
 * arrives. Field views point into buf: valid until the caller drains it. */
ssize_t ipc_decode(const uint8_t *buf, size_t len, size_t max_frame,
                   struct ipc_msg *m);

/* The length header of a frame (its first 4 bytes): the whole frame's size.
 * For readers that must know how many bytes to gather before decoding. */
uint32_t ipc_frame_length(const uint8_t hdr[4]);

/* Largest frame a link must accept when chat messages may be up to
 * max_message bytes and names/rooms are short. */
size_t ipc_frame_max_for(size_t max_message);

/* Convenience: fill m with type, id, flags and up to 3 fields given as
 * (pointer, length) pairs; nfields from the type. A fourth field is set
 * with ipc_msg_set_field. */
void ipc_msg_set(struct ipc_msg *m, enum ipc_type type, uint32_t id, uint16_t flags,
                 const void *f0, size_t l0, const void *f1, size_t l1,
                 const void *f2, size_t l2);
void ipc_msg_set_field(struct ipc_msg *m, unsigned i, const void *p, size_t len);

#endif
