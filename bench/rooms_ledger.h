/* rooms_ledger.h -- the many-rooms plan of bench/loadgen and the check that
 * every delivery arrived exactly once, in the right room.
 *
 * The plan: R rooms of U users; user j of room r is global user r*U + j.
 * Messages are numbered k = 0, 1, 2, ... in send order over all rooms: message
 * k goes to room k % R and is sent by user (k / R) % U of that room, so the
 * rate is spread evenly over the rooms and over the users of each room. Its
 * text is "<k> <send time ns> xxx...", and the server shows it to the others
 * as "<sender name>: <text>".
 *
 * The ledger: each receiver keeps one bit per message of its room (index
 * k / R); with one_room (everyone in the default room, for servers without
 * rooms) one bit per message of the run (index k). A delivery is checked
 * against the plan: the sender named in the line must be the one that sends
 * message k, the message's room must be the receiver's, the receiver must not
 * be the sender, and the bit must not be set yet.
 */
#ifndef ROOMS_LEDGER_H
#define ROOMS_LEDGER_H

#include <stddef.h>
#include <stdint.h>

struct rooms_plan {
    uint32_t rooms;    /* R */
    uint32_t size;     /* U: users per room */
    int one_room;      /* everyone joined the default room: every message reaches every user */
    uint64_t max_msgs; /* messages the run may send at most (bitmap size) */
};

enum rl_verdict {
    RL_OK,     /* first delivery of a message of my room */
    RL_DUP,    /* delivered before */
    RL_CROSS,  /* a message of another room */
    RL_WRONG,  /* sender does not match the plan, or a message number out of range */
    RL_SELF,   /* my own message came back */
    RL_NVERDICTS
};

uint32_t rl_room_of(const struct rooms_plan *p, uint64_t k);
uint32_t rl_sender_of(const struct rooms_plan *p, uint64_t k);

/* The first message number >= k whose room is in [lo, hi) (lo < hi <= rooms). */
uint64_t rl_next_local(const struct rooms_plan *p, uint64_t k, uint32_t lo, uint32_t hi);

/* Bytes of one receiver's bitmap. */
size_t rl_bitmap_bytes(const struct rooms_plan *p);

/* Record that user `user` of room `room` received message k from user
 * `from_user` of room `from_room`; `bits` is the receiver's bitmap. */
enum rl_verdict rl_record(const struct rooms_plan *p, uint8_t *bits, uint32_t room,
                          uint32_t user, uint32_t from_room, uint32_t from_user, uint64_t k);

/* The names bench/loadgen uses: user "<prefix>-r<room>u<user>" (unique over
 * all rooms, so the same names work in the default room too) and room
 * "<prefix>-<room>" (a fresh set of rooms per run). Return the length. */
size_t rl_user_name(char *buf, size_t cap, const char *prefix, uint32_t room, uint32_t user);
size_t rl_room_name(char *buf, size_t cap, const char *prefix, uint32_t room);

/* Parse "<prefix>-r<room>u<user>: <k> <ts> ..." (the prefix without the
 * dash). Returns 0 when the line is not a message of this run (a notice, a
 * server text, another run's line). */
int rl_parse(const char *p, size_t n, const char *prefix, uint32_t *room, uint32_t *user,
             uint64_t *k, uint64_t *ts);

#endif
