/* presence.h -- who is in which room, kept true in Redis through crashes.
 *
 * Each room has its SET of names (the default room's is the seed's
 * `chat-users`); besides, each instance keeps (room.h has the key names):
 *   <users-key>:instances                SET of live instance ids
 *   <users-key>:instance:<id>:alive      heartbeat, expires after instance-ttl
 *   <users-key>:instance:<id>:rooms      SET of the rooms it has members in
 *   the room's :instance:<id> SET        the names it holds in that room
 * A broker refreshes its heartbeat and, every few seconds, looks for
 * instances whose heartbeat expired: per room of such an instance a Lua
 * script (atomic, over that room's keys, so two cleaners never announce
 * twice) removes its names from the room and announces each leave there;
 * then the instance is unregistered. With redis-cluster the heartbeat and
 * the rooms live in different slots, so one script cannot check the one
 * and edit the others: a script in the registry's slot claims the dead
 * instance first, and only the claimer cleans up (presence.c). An instance
 * wrongly presumed dead (partitioned for longer than instance-ttl) sees it
 * in its next heartbeat's reply and has the broker re-add all its users.
 *
 * Rooms are given as (name, length); "" is the default room.
 */
#ifndef RC_PRESENCE_H
#define RC_PRESENCE_H

#include <stddef.h>

#include "config.h"
#include "redis_link.h"
#include "room.h"

struct event_base;
struct presence;

/* This instance was presumed dead and its users removed from Redis
 * (announced as left): the broker re-adds every user it holds, in every
 * room, and every room to the instance's rooms (presence_room_add,
 * presence_hold), as after a Redis restart. */
typedef void (*presence_lost_fn)(void *arg);

/* id: this instance's id (stable across broker restarts). on_lost may be
 * NULL. */
struct presence *presence_new(struct event_base *base, struct rlink *redis, const struct cfg *cfg,
                              const char *id, presence_lost_fn on_lost, void *arg);
void presence_free(struct presence *p);

/* This instance has members in room from now on (listed for crash
 * cleanup; send it before the first join), or no more. -1 when Redis is down. */
int presence_room_add(struct presence *p, const char *room, size_t rlen);
int presence_room_drop(struct presence *p, const char *room, size_t rlen);

/* Join: add user to the room's names if absent (and to this instance's
 * set there). fn gets 1 (added), 0 (taken) or -1 (failed). -1 when Redis
 * is down. */
int presence_join(struct presence *p, const char *room, size_t rlen, const char *user, size_t len,
                  rlink_reply_fn fn, void *pd);

/* A user this instance holds already (re-registration, restore after a
 * Redis restart): add it again, silently. -1 when Redis is down. */
int presence_hold(struct presence *p, const char *room, size_t rlen, const char *user, size_t len);

/* Leave: remove user and, if it was there, publish the leave notice in the
 * room. fn gets 1 (announced), 0 (already gone) or -1. -1 when Redis is down. */
int presence_leave(struct presence *p, const char *room, size_t rlen, const char *user, size_t len,
                   rlink_reply_fn fn, void *pd);

/* Who is in the room: fn gets the reply of the script, an array
 * {count, {up to max names, sorted}} (or NULL). -1 when Redis is down. */
int presence_who(struct presence *p, const char *room, size_t rlen, long max, rlink_raw_fn fn,
                 void *pd);

/* Publish a direct message payload if `to` is in the room's names. fn
 * gets 1 (published), 0 (not present) or -1. -1 when Redis is down. */
int presence_direct(struct presence *p, const char *room, size_t rlen, const char *to, size_t tolen,
                    const char *payload, size_t len, rlink_reply_fn fn, void *pd);

/* The Redis link came up: register the instance and start the heartbeat. */
void presence_on_link_up(struct presence *p);

/* Orderly stop: unregister the instance; users it still lists (normally
 * none) are removed and announced. fn (may be NULL) is called once when
 * Redis has answered (or -1). */
int presence_stop(struct presence *p, rlink_reply_fn fn, void *pd);

/* The scripts, as presence sends them (the tests check their keys and
 * run them against a cluster). */
enum presence_script {
    PRESENCE_JOIN,      /* a room's: names, instance's names there */
    PRESENCE_LEAVE,     /* the same; publishes on the room's channel */
    PRESENCE_WHO,       /* a room's names */
    PRESENCE_DIRECT,    /* the same; publishes on <channel>:direct */
    PRESENCE_REAP_ROOM, /* one room of a dead instance (with one Redis, its
                         * heartbeat first); publishes on the room's channel */
    PRESENCE_REAP_CLAIM, /* cluster only: heartbeat, instances, rooms, reaper */
    PRESENCE_REAP_DONE,  /* unregistering (cluster: the claim's release) */
    PRESENCE_BEAT,       /* heartbeat, instances, reaper */
};
#define PRESENCE_SCRIPTS (PRESENCE_BEAT + 1)

/* Fill e with script `which` for room[0..rlen) ("" for the per-instance
 * ones) and instance id. 0, or -1 when a key does not fit or the script is
 * not used in this mode. */
int presence_script(const struct cfg *cfg, enum presence_script which, const char *room,
                    size_t rlen, const char *id, struct room_eval *e);

#endif
