/* room.h -- what a room is called and where it lives in Redis.
 *
 * The default room ("" here, `/chat/{user}` on the URL) is the seed's chat:
 * channel `<channel>` and SET `<users-key>`, byte for byte. Room R keeps all
 * its keys under the Cluster hash tag {R}, so it lives on one shard and one
 * Lua script may touch all of them:
 *   <channel>:{R}                    PUBSUB channel
 *   <channel>:{R}:users              SET of the names in the room
 *   <channel>:{R}:instance:<id>      SET of the names instance <id> holds there
 *   <channel>:{R}:history            STREAM of its last messages (history)
 * The default room's per-instance SET is `<users-key>:instance:<id>`, as
 * before rooms; its history is `<channel>:history`, and its messages with
 * their ids travel on `<channel>:{}` besides the seed channel. Per instance: `<users-key>:instances` (live ids),
 * `<users-key>:instance:<id>:alive` (heartbeat) and
 * `<users-key>:instance:<id>:rooms`, the SET of the rooms it has members in
 * (crash cleanup walks it). Direct messages go
 * on `<channel>:direct`. docs/protocol.md describes the same layout.
 *
 * With redis-cluster, a script's keys must share one hash slot. A room's do
 * ({R}); the per-instance keys and the default room's per-instance SET then
 * start with `{<users-key>}` instead of `<users-key>` (`{chat-users}:instances`,
 * `{chat-users}:instance:<id>`, ...), which puts them in the slot of
 * `<users-key>` itself, whose name stays the seed's. Rooms' channels travel
 * on sharded pub/sub there (room_channel_sharded). Without redis-cluster
 * every name is as above, byte for byte.
 */
#ifndef RC_ROOM_H
#define RC_ROOM_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"

#define ROOM_NAME_MAX 64 /* characters (the alphabet is ASCII: bytes too) */
/* Longest key this file builds: prefix, room, suffixes and an instance id. */
#define ROOM_KEY_MAX (CFG_NAME_MAX + ROOM_NAME_MAX + 128)

/* NULL when name[0..len) is a valid room name: 1..64 characters of
 * A-Z a-z 0-9 - _ . ~; else the reason, for a 400 body or an error event. */
const char *room_name_check(const char *name, size_t len);

enum room_key {
    ROOM_KEY_CHANNEL,  /* the room's PUBSUB channel */
    ROOM_KEY_USERS,    /* SET of names */
    ROOM_KEY_INSTANCE, /* SET of the names instance `id` holds */
    ROOM_KEY_HISTORY,  /* STREAM of its last messages */
    ROOM_KEY_FEED,     /* the channel its messages with ids travel on: the
                        * room's channel, or for the default room
                        * <channel>:{} (its seed channel carries them without) */
};

/* Write key `which` of room[0..rlen) ("" = default room) into out, NUL
 * terminated. `id` only for ROOM_KEY_INSTANCE. Returns its length, or -1
 * when it does not fit. */
ssize_t room_key(char *out, size_t cap, const struct cfg *cfg, const char *room, size_t rlen,
                 enum room_key which, const char *id);

/* The room whose channel (or feed) is ch[0..len): *room points into ch (or
 * at "") and its length is returned; -1 when ch is no room's channel. */
ssize_t room_of_channel(const struct cfg *cfg, const char *ch, size_t len, const char **room);

/* 1 when ch[0..len) is a room's channel that travels on sharded pub/sub
 * (SPUBLISH/SSUBSCRIBE): with redis-cluster, every room's but the default
 * room's (whose seed channel and feed stay classic, for seed-era
 * instances); never without. */
int room_channel_sharded(const struct cfg *cfg, const char *ch, size_t len);

/* The command that publishes on ch[0..len): "SPUBLISH" when it is sharded
 * (room_channel_sharded), else "PUBLISH". */
const char *room_publish_command(const struct cfg *cfg, const char *ch, size_t len);

/* 0 when users_key cannot share a slot with keys made from it in a
 * cluster: a '}' without a hash tag before it ("a}b", "a{}b"); 1 otherwise. */
int room_users_key_fits_cluster(const char *users_key);

/* Per instance, as room_key: `<users-key>:instances` (the live ids),
 * `<users-key>:instance:<id>:alive` (the heartbeat),
 * `<users-key>:instance:<id>:rooms`, `<users-key>:instance:<id>:reaper` (who
 * is cleaning up after it, cluster mode only; `{<users-key>}` there); and
 * `<channel>:direct`. */
ssize_t room_key_instances(char *out, size_t cap, const struct cfg *cfg);
ssize_t room_key_instance_alive(char *out, size_t cap, const struct cfg *cfg, const char *id);
ssize_t room_key_instance_rooms(char *out, size_t cap, const struct cfg *cfg, const char *id);
ssize_t room_key_instance_reaper(char *out, size_t cap, const struct cfg *cfg, const char *id);
ssize_t room_key_direct(char *out, size_t cap, const struct cfg *cfg);

/* One Lua script call as it goes to Redis: the script, its keys (with
 * redis-cluster all in one hash slot: Redis refuses others) and the channel
 * it publishes on ("" for none; when it is sharded, in that slot too).
 * broker/presence.c and broker/history.c build every call they send with
 * one of these, and the tests check the same builders. */
#define ROOM_EVAL_KEYS_MAX 4
struct room_eval {
    const char *script;
    int nkeys;
    const char *keys[ROOM_EVAL_KEYS_MAX]; /* keys[i] == key[i] */
    char key[ROOM_EVAL_KEYS_MAX][ROOM_KEY_MAX];
    char channel[ROOM_KEY_MAX];
};

/* Empty e (no keys, no channel) with script s; keys[] pointed at key[]. */
void room_eval_init(struct room_eval *e, const char *script);

#endif
