/* presence.c -- see presence.h. */
#include "presence.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hiredis_compat.h"

#include "chat_payload.h"
#include "log.h"
#include "room.h"
#include "util.h"

#define PRESENCE_SCAN_MS 5000 /* how often to look for dead instances */
#define PRESENCE_ID_MAX 64
#define PRESENCE_NOTICE_MAX 256 /* a leave notice for a name of at most 128 bytes */

/* KEYS: room names, instance's names there; ARGV: user */
static const char presence_join_lua[] = "if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then\n"
                                        "  redis.call('SADD', KEYS[2], ARGV[1])\n"
                                        "  return 1\n"
                                        "end\n"
                                        "return 0\n";

/* KEYS: room names, instance's names there; ARGV: user, channel, leave
 * notice ("" with `announce no`). PUB: PUBLISH, or SPUBLISH for a sharded
 * channel (room_publish_command decides). */
#define PRESENCE_LEAVE_LUA(PUB)                                                                    \
    "redis.call('SREM', KEYS[2], ARGV[1])\n"                                                       \
    "if redis.call('SREM', KEYS[1], ARGV[1]) == 1 then\n"                                          \
    "  if ARGV[3] ~= '' then redis.call('" PUB "', ARGV[2], ARGV[3]) end\n"                        \
    "  return 1\n"                                                                                 \
    "end\n"                                                                                        \
    "return 0\n"
static const char presence_leave_lua[] = PRESENCE_LEAVE_LUA("PUBLISH");
static const char presence_leave_sharded_lua[] = PRESENCE_LEAVE_LUA("SPUBLISH");

/* The names an instance held in one room (MINE) leave the room (USERS),
 * each announced once; MINE is deleted. ARGV: channel, notice prefix,
 * notice suffix, announce (1/0). Returns how many were removed. */
#define PRESENCE_REAP_BODY(PUB, USERS, MINE)                                                       \
    "local users = redis.call('SMEMBERS', " MINE ")\n"                                             \
    "local n = 0\n"                                                                                \
    "for _, u in ipairs(users) do\n"                                                               \
    "  if redis.call('SREM', " USERS ", u) == 1 then\n"                                            \
    "    if ARGV[4] == '1' then redis.call('" PUB "', ARGV[1], ARGV[2] .. u .. ARGV[3]) end\n"     \
    "    n = n + 1\n"                                                                              \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "redis.call('DEL', " MINE ")\n"                                                                \
    "return n\n"

/* One room of a dead instance, one Redis. KEYS: its heartbeat, the room's
 * names, its names there. Returns the names removed, or -1 (alive after
 * all). */
static const char presence_reap_room_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end\n" PRESENCE_REAP_BODY(
        "PUBLISH", "KEYS[2]", "KEYS[3]");

/* The same in a cluster, where the heartbeat lives in another slot: the
 * claim (below) checked it. KEYS: the room's names, its names there. */
static const char presence_reap_room_cluster_lua[] =
    PRESENCE_REAP_BODY("PUBLISH", "KEYS[1]", "KEYS[2]");
static const char presence_reap_room_sharded_lua[] =
    PRESENCE_REAP_BODY("SPUBLISH", "KEYS[1]", "KEYS[2]");

/* After its rooms, one Redis: KEYS: instances, its heartbeat, its rooms;
 * ARGV: id. Returns 1 (unregistered), 0 (somebody else did) or -1 (alive
 * after all). */
static const char presence_reap_done_lua[] =
    "if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end\n"
    "redis.call('DEL', KEYS[3])\n"
    "return redis.call('SREM', KEYS[1], ARGV[1])\n";

/* Cluster: before its rooms, claim the dead instance (only the claimer
 * cleans up). KEYS: its heartbeat, instances, its rooms, its reaper;
 * ARGV: id, the claimer's id, how long the claim holds (ms). Returns its
 * rooms (an array), 0 (somebody else is at it) or -1 (alive after all). */
static const char presence_reap_claim_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end\n"
    "if not redis.call('SET', KEYS[4], ARGV[2], 'NX', 'PX', ARGV[3]) then return 0 end\n"
    "return redis.call('SMEMBERS', KEYS[3])\n";

/* Cluster: after its rooms. KEYS as the claim's; ARGV: id, the claimer's
 * id. The claim ends (the instance, should it be alive, heals once it is
 * gone); unregistered unless it came back meanwhile. Returns 1, 0 (somebody
 * else did) or -1 (alive). */
static const char presence_reap_release_lua[] =
    "if redis.call('GET', KEYS[4]) == ARGV[2] then redis.call('DEL', KEYS[4]) end\n"
    "if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end\n"
    "redis.call('DEL', KEYS[3])\n"
    "return redis.call('SREM', KEYS[2], ARGV[1])\n";

/* The heartbeat. KEYS: its heartbeat, instances, its reaper; ARGV: ttl
 * (ms), id. Returns 1 (it was there), 0 (it had expired: others may have
 * reaped us) or 2 (a cleaner is reaping us right now). */
static const char presence_beat_lua[] = "local was = redis.call('EXISTS', KEYS[1])\n"
                                        "redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])\n"
                                        "redis.call('SADD', KEYS[2], ARGV[2])\n"
                                        "if redis.call('EXISTS', KEYS[3]) == 1 then return 2 end\n"
                                        "return was\n";

/* KEYS: room names; ARGV: max. Returns {count, names (sorted)}. */
static const char presence_who_lua[] =
    "local n = redis.call('SCARD', KEYS[1])\n"
    "local m\n"
    "if n <= tonumber(ARGV[1]) then m = redis.call('SMEMBERS', KEYS[1])\n"
    "else m = redis.call('SRANDMEMBER', KEYS[1], ARGV[1]) end\n"
    "table.sort(m)\n"
    "return {n, m}\n";

/* KEYS: room names; ARGV: to, channel, payload. 1 published, 0 absent.
 * The direct channel is classic pub/sub in a cluster too. */
static const char presence_direct_lua[] =
    "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end\n"
    "redis.call('PUBLISH', ARGV[2], ARGV[3])\n"
    "return 1\n";

/* The keys of a room's script: its names, and those instance id holds
 * there, from key[at] on. */
static int presence_room_keys(struct room_eval *e, int at, const struct cfg *cfg,
                              const char *room, size_t rlen, const char *id)
{
    if (room_key(e->key[at], ROOM_KEY_MAX, cfg, room, rlen, ROOM_KEY_USERS, NULL) < 0 ||
        room_key(e->key[at + 1], ROOM_KEY_MAX, cfg, room, rlen, ROOM_KEY_INSTANCE, id) < 0)
        return -1;
    e->nkeys = at + 2;
    return 0;
}

/* The cluster's claim and release: heartbeat, instances, rooms, reaper. */
static int presence_claim_keys(struct room_eval *e, const struct cfg *cfg, const char *id)
{
    if (room_key_instance_alive(e->key[0], ROOM_KEY_MAX, cfg, id) < 0 ||
        room_key_instances(e->key[1], ROOM_KEY_MAX, cfg) < 0 ||
        room_key_instance_rooms(e->key[2], ROOM_KEY_MAX, cfg, id) < 0 ||
        room_key_instance_reaper(e->key[3], ROOM_KEY_MAX, cfg, id) < 0)
        return -1;
    e->nkeys = 4;
    return 0;
}

int presence_script(const struct cfg *cfg, enum presence_script which, const char *room,
                    size_t rlen, const char *id, struct room_eval *e)
{
    int sharded;

    room_eval_init(e, NULL);
    switch (which) {
    case PRESENCE_JOIN:
        e->script = presence_join_lua;
        return presence_room_keys(e, 0, cfg, room, rlen, id);
    case PRESENCE_LEAVE:
    case PRESENCE_REAP_ROOM:
        if (room_key(e->channel, sizeof(e->channel), cfg, room, rlen, ROOM_KEY_CHANNEL, NULL) < 0)
            return -1;
        sharded = room_channel_sharded(cfg, e->channel, strlen(e->channel));
        if (which == PRESENCE_LEAVE) {
            e->script = sharded ? presence_leave_sharded_lua : presence_leave_lua;
            return presence_room_keys(e, 0, cfg, room, rlen, id);
        }
        if (cfg->redis_cluster) {
            e->script = sharded ? presence_reap_room_sharded_lua : presence_reap_room_cluster_lua;
            return presence_room_keys(e, 0, cfg, room, rlen, id);
        }
        e->script = presence_reap_room_lua;
        if (room_key_instance_alive(e->key[0], ROOM_KEY_MAX, cfg, id) < 0)
            return -1;
        return presence_room_keys(e, 1, cfg, room, rlen, id);
    case PRESENCE_WHO:
    case PRESENCE_DIRECT:
        if (which == PRESENCE_DIRECT && room_key_direct(e->channel, sizeof(e->channel), cfg) < 0)
            return -1;
        e->script = which == PRESENCE_WHO ? presence_who_lua : presence_direct_lua;
        e->nkeys = 1;
        return room_key(e->key[0], ROOM_KEY_MAX, cfg, room, rlen, ROOM_KEY_USERS, NULL) < 0 ? -1
                                                                                            : 0;
    case PRESENCE_REAP_CLAIM:
        if (!cfg->redis_cluster)
            return -1; /* one Redis: each room's script checks the heartbeat */
        e->script = presence_reap_claim_lua;
        return presence_claim_keys(e, cfg, id);
    case PRESENCE_REAP_DONE:
        if (cfg->redis_cluster) {
            e->script = presence_reap_release_lua;
            return presence_claim_keys(e, cfg, id);
        }
        e->script = presence_reap_done_lua;
        e->nkeys = 3;
        return room_key_instances(e->key[0], ROOM_KEY_MAX, cfg) < 0 ||
                       room_key_instance_alive(e->key[1], ROOM_KEY_MAX, cfg, id) < 0 ||
                       room_key_instance_rooms(e->key[2], ROOM_KEY_MAX, cfg, id) < 0
                   ? -1
                   : 0;
    case PRESENCE_BEAT:
        e->script = presence_beat_lua;
        e->nkeys = 3;
        return room_key_instance_alive(e->key[0], ROOM_KEY_MAX, cfg, id) < 0 ||
                       room_key_instances(e->key[1], ROOM_KEY_MAX, cfg) < 0 ||
                       room_key_instance_reaper(e->key[2], ROOM_KEY_MAX, cfg, id) < 0
                   ? -1
                   : 0;
    }
    return -1;
}

struct presence {
    struct rlink *redis;
    const struct cfg *cfg;
    char id[PRESENCE_ID_MAX];
    char instances_key[ROOM_KEY_MAX]; /* <users-key>:instances */
    char alive_key[ROOM_KEY_MAX];     /* <users-key>:instance:<id>:alive */
    char rooms_key[ROOM_KEY_MAX];     /* <users-key>:instance:<id>:rooms */
    struct event *beat_ev, *scan_ev;
    presence_lost_fn on_lost;
    void *lost_arg;
    int reaped; /* a cleaner is reaping us: re-add everyone once it is done */
    int fresh;  /* the link just came up: its first beat finds no key
                 * (a new instance, a restarted Redis), and the broker
                 * re-adds everyone anyway */
};

static void presence_ignore(long long result, void *pd)
{
    (void)result;
    (void)pd;
}

static int presence_rooms_cmd(struct presence *p, const char *cmd, const char *room, size_t rlen)
{
    const char *argv[3] = {cmd, p->rooms_key, room};
    size_t lens[3] = {strlen(cmd), strlen(p->rooms_key), rlen};

    return rlink_command(p->redis, presence_ignore, NULL, 3, argv, lens);
}

int presence_room_add(struct presence *p, const char *room, size_t rlen)
{
    return presence_rooms_cmd(p, "SADD", room, rlen);
}

int presence_room_drop(struct presence *p, const char *room, size_t rlen)
{
    return presence_rooms_cmd(p, "SREM", room, rlen);
}

/* EVAL e with nargs arguments. */
static int presence_eval(struct presence *p, const struct room_eval *e, int nargs,
                         const char *const *args, const size_t *lens, rlink_reply_fn fn,
                         rlink_raw_fn raw, void *pd)
{
    return rlink_eval(p->redis, e->script, e->nkeys, e->keys, nargs, args, lens, fn, raw, pd);
}

int presence_join(struct presence *p, const char *room, size_t rlen, const char *user, size_t len,
                  rlink_reply_fn fn, void *pd)
{
    struct room_eval e;

    if (presence_script(p->cfg, PRESENCE_JOIN, room, rlen, p->id, &e) == -1)
        return -1;
    return presence_eval(p, &e, 1, &user, &len, fn, NULL, pd);
}

int presence_hold(struct presence *p, const char *room, size_t rlen, const char *user, size_t len)
{
    struct room_eval e; /* the join's keys, one command each */
    const char *a1[3] = {"SADD", e.key[0], user}, *a2[3] = {"SADD", e.key[1], user};
    size_t l1[3] = {4, 0, len}, l2[3] = {4, 0, len};

    if (presence_script(p->cfg, PRESENCE_JOIN, room, rlen, p->id, &e) == -1)
        return -1;
    l1[1] = strlen(e.key[0]);
    l2[1] = strlen(e.key[1]);
    if (rlink_command(p->redis, presence_ignore, NULL, 3, a1, l1) == -1)
        return -1;
    return rlink_command(p->redis, presence_ignore, NULL, 3, a2, l2);
}

int presence_leave(struct presence *p, const char *room, size_t rlen, const char *user, size_t len,
                   rlink_reply_fn fn, void *pd)
{
    struct room_eval e;
    char notice[PRESENCE_NOTICE_MAX];
    const char *args[3] = {user, e.channel, notice};
    size_t lens[3] = {len, 0, 0};
    ssize_t n = chat_payload_left(chat_payload_form_of(rlen), notice, sizeof(notice), user, len);

    if (n < 0 || presence_script(p->cfg, PRESENCE_LEAVE, room, rlen, p->id, &e) == -1)
        return -1;
    lens[1] = strlen(e.channel);
    lens[2] = p->cfg->announce ? (size_t)n : 0;
    return presence_eval(p, &e, 3, args, lens, fn, NULL, pd);
}

int presence_who(struct presence *p, const char *room, size_t rlen, long max, rlink_raw_fn fn,
                 void *pd)
{
    struct room_eval e;
    char maxs[24];
    const char *args[1] = {maxs};
    size_t lens[1];

    if (presence_script(p->cfg, PRESENCE_WHO, room, rlen, p->id, &e) == -1)
        return -1;
    lens[0] = (size_t)snprintf(maxs, sizeof(maxs), "%ld", max);
    return presence_eval(p, &e, 1, args, lens, NULL, fn, pd);
}

int presence_direct(struct presence *p, const char *room, size_t rlen, const char *to, size_t tolen,
                    const char *payload, size_t len, rlink_reply_fn fn, void *pd)
{
    struct room_eval e;
    const char *args[3] = {to, e.channel, payload};
    size_t lens[3] = {tolen, 0, len};

    if (presence_script(p->cfg, PRESENCE_DIRECT, room, rlen, p->id, &e) == -1)
        return -1;
    lens[1] = strlen(e.channel);
    return presence_eval(p, &e, 3, args, lens, fn, NULL, pd);
}

/* ---- the heartbeat, and healing after being presumed dead --------------------- */

/* Registering again each beat heals the registry. The users are another
 * matter: an instance presumed dead (partitioned, or stopped, for longer
 * than instance-ttl) has been, or is being, reaped by another one: its
 * names left the rooms and were announced as gone although its users are
 * still connected. The beat's reply says so: 0 (the heartbeat had expired)
 * or 2 (a cleaner holds the claim on us, cluster mode). Then the broker
 * re-adds every user it holds in every room (on_lost), once no cleaner is
 * at work any more, so that nothing it removes afterwards undoes it: with
 * one Redis each room's script checks the heartbeat (now back) atomically;
 * in a cluster the cleaner's claim ends only after its last room. */
static void presence_on_beat(long long result, void *pd)
{
    struct presence *p = pd;
    int fresh = p->fresh;

    if (result != -1)
        p->fresh = 0;
    if (result == 0 && fresh)
        return;
    if (result == 2) {
        if (!p->reaped)
            log_msg(LOG_WARN, "instance %s: another instance is cleaning up after it (its "
                              "heartbeat expired): re-adding its users once that is done",
                    p->id);
        p->reaped = 1;
        return;
    }
    if (result == 0 && !p->reaped)
        log_msg(LOG_WARN, "instance %s: its heartbeat had expired (Redis unreachable or the "
                          "instance stalled for longer than instance-ttl): re-adding its users",
                p->id);
    if ((result == 0 || (result == 1 && p->reaped)) && p->on_lost != NULL) {
        p->reaped = 0;
        p->on_lost(p->lost_arg);
    }
}

static void presence_beat(struct presence *p)
{
    struct room_eval e;
    char ttl[24];
    const char *args[2] = {ttl, p->id};
    size_t lens[2];

    if (presence_script(p->cfg, PRESENCE_BEAT, "", 0, p->id, &e) == -1)
        return;
    lens[0] = (size_t)snprintf(ttl, sizeof(ttl), "%ld", p->cfg->instance_ttl);
    lens[1] = strlen(p->id);
    presence_eval(p, &e, 2, args, lens, presence_on_beat, NULL, p);
}

static void presence_beat_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    presence_beat(arg);
}

/* ---- reaping an instance that stopped (or this one, at stop) -------------- */

/* One instance being reaped: its rooms first, one script each, then it is
 * unregistered. With one Redis, each room's script checks that the
 * instance's heartbeat is still gone, atomically with its changes. In a
 * cluster the heartbeat lives in another slot than the rooms, so a script
 * in the registry's slot first claims the instance (heartbeat gone, nobody
 * else's claim: a key with a TTL, which frees it should this cleaner die)
 * and lists its rooms; only the claimer goes on, the room scripts remove
 * exactly the names the instance listed there (each announced once: the
 * list goes with them, atomically), and the release ends the claim. An
 * instance that was alive after all heals itself (presence_on_beat). */
struct presence_reap {
    struct presence *p;
    char id[PRESENCE_ID_MAX];
    long long removed;
    int pending; /* room scripts not answered yet */
    int alive_again;
    rlink_reply_fn fn; /* the stop's callback, or NULL */
    void *pd;
};

#define PRESENCE_CLAIM_MS "30000" /* a claim outlives a cleaner by this */

static void presence_reap_end(struct presence_reap *q, long long result)
{
    if (q->removed > 0)
        log_msg(LOG_WARN, "instance %s %s: removed its %lld user(s)", q->id,
                q->fn ? "stopped" : "stopped sending heartbeats", q->removed);
    if (q->fn != NULL)
        q->fn(result, q->pd);
    free(q);
}

static void presence_on_reap_done(long long result, void *pd)
{
    presence_reap_end(pd, result);
}

/* The claim's and release's arguments: the instance's id and ours. */
static int presence_reap_eval(struct presence_reap *q, enum presence_script which,
                              rlink_reply_fn fn, rlink_raw_fn raw)
{
    struct presence *p = q->p;
    struct room_eval e;
    const char *args[3] = {q->id, p->id, PRESENCE_CLAIM_MS};
    size_t lens[3] = {strlen(q->id), strlen(p->id), strlen(PRESENCE_CLAIM_MS)};
    /* the one-Redis unregistering takes the id alone */
    int nargs = !p->cfg->redis_cluster ? 1 : which == PRESENCE_REAP_CLAIM ? 3 : 2;

    if (presence_script(p->cfg, which, "", 0, q->id, &e) == -1)
        return -1;
    return presence_eval(p, &e, nargs, args, lens, fn, raw, q);
}

static void presence_on_room_reaped(long long result, void *pd)
{
    struct presence_reap *q = pd;

    /* -1: alive after all (one Redis), or the script failed: with the
     * instance still listed, the next scan tries again (in a cluster once
     * the claim has expired) */
    if (result == -1)
        q->alive_again = 1;
    else if (result > 0)
        q->removed += result;
    if (--q->pending > 0)
        return;
    if (q->alive_again ||
        presence_reap_eval(q, PRESENCE_REAP_DONE, presence_on_reap_done, NULL) == -1)
        presence_reap_end(q, -1);
}

static int presence_reap_room(struct presence_reap *q, const char *room, size_t rlen)
{
    struct presence *p = q->p;
    struct room_eval e;
    const char *prefix, *suffix;
    const char *args[4] = {e.channel, NULL, NULL, p->cfg->announce ? "1" : "0"};
    size_t lens[4] = {0, 0, 0, 1};

    if (presence_script(p->cfg, PRESENCE_REAP_ROOM, room, rlen, q->id, &e) == -1)
        return -1;
    chat_payload_left_affixes(chat_payload_form_of(rlen), &prefix, &suffix);
    args[1] = prefix;
    args[2] = suffix;
    lens[0] = strlen(e.channel);
    lens[1] = strlen(prefix);
    lens[2] = strlen(suffix);
    if (presence_eval(p, &e, 4, args, lens, presence_on_room_reaped, NULL, q) == -1)
        return -1;
    q->pending++;
    return 0;
}

/* Its rooms (SMEMBERS, or the cluster's claim): reap the default room and
 * each of them. */
static void presence_on_reap_rooms(const void *reply_, void *pd)
{
    const redisReply *reply = reply_;
    struct presence_reap *q = pd;
    size_t i;

    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER) { /* the claim: not ours */
        presence_reap_end(q, reply->integer);
        return;
    }
    q->pending = 1; /* held until every room script is sent */
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY)
        for (i = 0; i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            if (e->type == REDIS_REPLY_STRING && e->len > 0 &&
                room_name_check(e->str, e->len) == NULL)
                presence_reap_room(q, e->str, e->len);
        }
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || presence_reap_room(q, "", 0) == -1) {
        q->alive_again = 1; /* Redis went away: the next scan tries again */
    }
    presence_on_room_reaped(0, q);
}

static int presence_reap_start(struct presence *p, const char *id, size_t idlen, rlink_reply_fn fn,
                               void *pd)
{
    struct presence_reap *q = calloc(1, sizeof(*q));
    char rooms[ROOM_KEY_MAX];
    const char *argv[2] = {"SMEMBERS", rooms};
    size_t lens[2] = {8, 0};
    int rc;

    if (q == NULL)
        return -1;
    q->p = p;
    q->fn = fn;
    q->pd = pd;
    snprintf(q->id, sizeof(q->id), "%.*s", (int)idlen, id);
    if (p->cfg->redis_cluster)
        rc = presence_reap_eval(q, PRESENCE_REAP_CLAIM, NULL, presence_on_reap_rooms);
    else if ((rc = (int)room_key_instance_rooms(rooms, sizeof(rooms), p->cfg, q->id)) >= 0) {
        lens[1] = strlen(rooms);
        rc = rlink_command_raw(p->redis, presence_on_reap_rooms, q, 2, argv, lens);
    }
    if (rc < 0) {
        free(q);
        return -1;
    }
    return 0;
}

/* EXISTS of an instance's heartbeat: 0 means it stopped. */
struct presence_check {
    struct presence *p;
    size_t len;
    char id[PRESENCE_ID_MAX];
};

static void presence_on_alive_check(long long result, void *pd)
{
    struct presence_check *c = pd;

    if (result == 0)
        presence_reap_start(c->p, c->id, c->len, NULL, NULL);
    free(c);
}

static void presence_on_instances(const void *reply_, void *pd)
{
    const redisReply *reply = reply_;
    struct presence *p = pd;
    size_t i;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        char alive[ROOM_KEY_MAX];
        const char *argv[2] = {"EXISTS", alive};
        ssize_t n;
        size_t lens[2] = {6, 0};
        struct presence_check *c;

        if (e->type != REDIS_REPLY_STRING || e->len >= PRESENCE_ID_MAX ||
            (e->len == strlen(p->id) && memcmp(e->str, p->id, e->len) == 0))
            continue;
        c = malloc(sizeof(*c));
        if (c == NULL)
            return;
        c->p = p;
        c->len = e->len;
        memcpy(c->id, e->str, e->len);
        c->id[e->len] = '\0';
        n = room_key_instance_alive(alive, sizeof(alive), p->cfg, c->id);
        lens[1] = n < 0 ? 0 : (size_t)n;
        if (n < 0 || rlink_command(p->redis, presence_on_alive_check, c, 2, argv, lens) == -1)
            free(c);
    }
}

static void presence_scan_cb(evutil_socket_t fd, short what, void *arg)
{
    struct presence *p = arg;
    const char *argv[2] = {"SMEMBERS", p->instances_key};
    size_t lens[2] = {8, strlen(p->instances_key)};

    (void)fd;
    (void)what;
    rlink_command_raw(p->redis, presence_on_instances, p, 2, argv, lens);
}

void presence_on_link_up(struct presence *p)
{
    p->fresh = 1;
    presence_beat(p);
}

int presence_stop(struct presence *p, rlink_reply_fn fn, void *pd)
{
    const char *del[2] = {"DEL", p->alive_key};
    size_t dell[2] = {3, strlen(p->alive_key)};

    event_del(p->beat_ev);
    event_del(p->scan_ev);
    /* reap ourselves: normally nobody is left; after a timeout, whoever is
     * still listed is removed and announced like after a crash */
    if (rlink_command(p->redis, presence_ignore, NULL, 2, del, dell) == -1)
        return -1;
    return presence_reap_start(p, p->id, strlen(p->id), fn, pd);
}

struct presence *presence_new(struct event_base *base, struct rlink *redis, const struct cfg *cfg,
                              const char *id, presence_lost_fn on_lost, void *arg)
{
    struct presence *p = calloc(1, sizeof(*p));
    long beat = cfg->instance_ttl / 4;
    struct timeval tv;

    if (p == NULL)
        return NULL;
    p->redis = redis;
    p->cfg = cfg;
    snprintf(p->id, sizeof(p->id), "%s", id);
    p->on_lost = on_lost;
    p->lost_arg = arg;
    p->fresh = 1;
    room_key_instances(p->instances_key, sizeof(p->instances_key), cfg);
    room_key_instance_alive(p->alive_key, sizeof(p->alive_key), cfg, p->id);
    room_key_instance_rooms(p->rooms_key, sizeof(p->rooms_key), cfg, id);
    p->beat_ev = event_new(base, -1, EV_PERSIST, presence_beat_cb, p);
    p->scan_ev = event_new(base, -1, EV_PERSIST, presence_scan_cb, p);
    if (p->beat_ev == NULL || p->scan_ev == NULL) {
        presence_free(p);
        return NULL;
    }
    tv = util_ms_tv(beat);
    event_add(p->beat_ev, &tv);
    tv = util_ms_tv(PRESENCE_SCAN_MS);
    event_add(p->scan_ev, &tv);
    return p;
}

void presence_free(struct presence *p)
{
    if (p == NULL)
        return;
    if (p->beat_ev != NULL)
        event_free(p->beat_ev);
    if (p->scan_ev != NULL)
        event_free(p->scan_ev);
    free(p);
}
