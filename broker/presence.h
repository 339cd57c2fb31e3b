/* presence.h -- who is online, kept true in Redis through crashes.
 *
 * Besides the seed's SET `chat-users`, each instance keeps:
 *   <users-key>:instances            SET of live instance ids
 *   <users-key>:instance:<id>        SET of the users that instance holds
 *   <users-key>:instance:<id>:alive  heartbeat, expires after instance-ttl
 * A broker refreshes its heartbeat and, every few seconds, looks for
 * instances whose heartbeat expired: a Lua script (atomic, so two cleaners
 * never announce twice) removes such an instance's users from `chat-users`
 * and publishes "<user>: has left the chat!" for each.
 */
#ifndef RC_PRESENCE_H
#define RC_PRESENCE_H

#include <stddef.h>

#include "config.h"
#include "redis_link.h"

struct event_base;
struct presence;

/* id: this instance's id (stable across broker restarts). */
struct presence *presence_new(struct event_base *base, struct rlink *redis,
                              const struct cfg *cfg, const char *id);
void presence_free(struct presence *p);

/* Join: add user to `chat-users` if absent (and to this instance's set).
 * fn gets 1 (added), 0 (taken) or -1 (failed). -1 when Redis is down. */
int presence_join(struct presence *p, const char *user, size_t len, rlink_reply_fn fn, void *pd);

/* A user this instance holds already (re-registration, restore after a
 * Redis restart): add it again, silently. -1 when Redis is down. */
int presence_hold(struct presence *p, const char *user, size_t len);

/* Leave: remove user and, if it was there, publish the leave notice.
 * fn gets 1 (announced), 0 (already gone) or -1. -1 when Redis is down. */
int presence_leave(struct presence *p, const char *user, size_t len, rlink_reply_fn fn,
                   void *pd);

/* The Redis link came up: register the instance and start the heartbeat. */
void presence_on_link_up(struct presence *p);

/* Orderly stop: unregister the instance; users it still lists (normally
 * none) are removed and announced. fn (may be NULL) is called once when
 * Redis has answered (or -1). */
int presence_stop(struct presence *p, rlink_reply_fn fn, void *pd);

#endif
