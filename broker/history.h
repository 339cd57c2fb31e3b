/* history.h -- a room's history in Redis: a Stream, capped at
 * history-size, that holds each message the moment it is published.
 *
 * A message is stored and published by one Lua script (XADD, then PUBLISH
 * of its stored form, with its id, on the room's feed channel; for the
 * default room also the seed's "user: text" on the seed channel), so no
 * instance ever sees a message that is not in the history, nor the
 * reverse. The stream id is the message id. Entries have two fields, `u`
 * (user) and `t` (text); this file is the only one that knows them.
 *
 * With history-size 0 a message is a plain PUBLISH, as before history (a
 * room's is SPUBLISH in a cluster, room_publish_command).
 */
#ifndef RC_HISTORY_H
#define RC_HISTORY_H

#include <stddef.h>

#include "config.h"
#include "redis_link.h"
#include "room.h"

struct history;

struct history *history_new(struct rlink *redis, const struct cfg *cfg);
void history_free(struct history *h);

int history_enabled(const struct history *h);

/* fn gets ok = 1 with the message's id (idlen 0 without history), or ok = 0
 * when Redis refused or the link broke. */
typedef void (*history_stored_fn)(int ok, const char *id, size_t idlen, void *pd);

/* Store and publish "user: text" in room. -1 when Redis is down or the
 * message does not fit (fn is not called then). */
int history_publish(struct history *h, const char *room, size_t rlen, const char *user,
                    size_t ulen, const void *text, size_t tlen, char *scratch, size_t cap,
                    history_stored_fn fn, void *pd);

/* One entry of a read, views into the reply. */
struct history_entry {
    const char *id, *user, *text;
    size_t idlen, ulen, tlen;
};

/* fn gets ok = 0 when the read failed; else the entries oldest first, and
 * `truncated` (AFTER reads): entries after the asked id were trimmed or
 * expired before they could be read. */
typedef void (*history_read_fn)(int ok, const struct history_entry *e, size_t n, int truncated,
                                void *pd);

/* The last n entries of room. -1 when Redis is down. */
int history_read_last(struct history *h, const char *room, size_t rlen, long n,
                      history_read_fn fn, void *pd);

/* Up to n entries after id `after`. -1 when Redis is down. */
int history_read_after(struct history *h, const char *room, size_t rlen, const char *after,
                       size_t alen, long n, history_read_fn fn, void *pd);

/* The id of room's newest entry ("0-0" when the stream is empty or absent):
 * fn gets it as its only entry. -1 when Redis is down. */
int history_read_tail(struct history *h, const char *room, size_t rlen, history_read_fn fn,
                      void *pd);

/* The scripts, as history sends them (the tests check their keys and run
 * them against a cluster): the store-and-publish, whose channel is the
 * room's feed, and the AFTER read. Both take the room's stream alone. */
enum history_script { HISTORY_PUBLISH, HISTORY_AFTER };

/* Fill e with script `which` for room[0..rlen). 0, or -1 when a key does
 * not fit. */
int history_script(const struct cfg *cfg, enum history_script which, const char *room,
                   size_t rlen, struct room_eval *e);

#endif
