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
 * notice ("" with `announce no`) */
static const char presence_leave_lua[] =
    "redis.call('SREM', KEYS[2], ARGV[1])\n"
    "if redis.call('SREM', KEYS[1], ARGV[1]) == 1 then\n"
    "  if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

/* One room of a dead instance. KEYS: its heartbeat, the room's names, its
 * names there; ARGV: channel, notice prefix, notice suffix, announce (1/0).
 * Returns the names removed, or -1 (alive after all). */
static const char presence_reap_room_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end\n"
    "local users = redis.call('SMEMBERS', KEYS[3])\n"
    "local n = 0\n"
    "for _, u in ipairs(users) do\n"
    "  if redis.call('SREM', KEYS[2], u) == 1 then\n"
    "    if ARGV[4] == '1' then redis.call('PUBLISH', ARGV[1], ARGV[2] .. u .. ARGV[3]) end\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', KEYS[3])\n"
    "return n\n";

/* After its rooms: KEYS: instances, its heartbeat, its rooms; ARGV: id.
 * Returns 1 (unregistered), 0 (somebody else did) or -1 (alive after all). */
static const char presence_reap_done_lua[] =
    "if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end\n"
    "redis.call('DEL', KEYS[3])\n"
    "return redis.call('SREM', KEYS[1], ARGV[1])\n";

/* KEYS: room names; ARGV: max. Returns {count, names (sorted)}. */
static const char presence_who_lua[] =
    "local n = redis.call('SCARD', KEYS[1])\n"
    "local m\n"
    "if n <= tonumber(ARGV[1]) then m = redis.call('SMEMBERS', KEYS[1])\n"
    "else m = redis.call('SRANDMEMBER', KEYS[1], ARGV[1]) end\n"
    "table.sort(m)\n"
    "return {n, m}\n";

/* KEYS: room names; ARGV: to, channel, payload. 1 published, 0 absent. */
static const char presence_direct_lua[] =
    "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end\n"
    "redis.call('PUBLISH', ARGV[2], ARGV[3])\n"
    "return 1\n";

struct presence {
    struct rlink *redis;
    const struct cfg *cfg;
    char id[PRESENCE_ID_MAX];
    char instances_key[ROOM_KEY_MAX]; /* <users-key>:instances */
    char alive_key[ROOM_KEY_MAX];     /* <users-key>:instance:<id>:alive */
    char rooms_key[ROOM_KEY_MAX];     /* <users-key>:instance:<id>:rooms */
    struct event *beat_ev, *scan_ev;
};

static void presence_ignore(long long result, void *pd)
{
    (void)result;
    (void)pd;
}

/* A room's names SET, and the SET of those instance `id` holds there. */
struct presence_room_keys {
    char channel[ROOM_KEY_MAX], users[ROOM_KEY_MAX], mine[ROOM_KEY_MAX];
};

static int presence_keys(const struct presence *p, const char *room, size_t rlen, const char *id,
                         struct presence_room_keys *k)
{
    if (room_key(k->channel, sizeof(k->channel), p->cfg, room, rlen, ROOM_KEY_CHANNEL, NULL) < 0 ||
        room_key(k->users, sizeof(k->users), p->cfg, room, rlen, ROOM_KEY_USERS, NULL) < 0 ||
        room_key(k->mine, sizeof(k->mine), p->cfg, room, rlen, ROOM_KEY_INSTANCE, id) < 0)
        return -1;
    return 0;
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

int presence_join(struct presence *p, const char *room, size_t rlen, const char *user, size_t len,
                  rlink_reply_fn fn, void *pd)
{
    struct presence_room_keys k;
    const char *keys[2] = {k.users, k.mine};

    if (presence_keys(p, room, rlen, p->id, &k) == -1)
        return -1;
    return rlink_eval(p->redis, presence_join_lua, 2, keys, 1, &user, &len, fn, NULL, pd);
}

int presence_hold(struct presence *p, const char *room, size_t rlen, const char *user, size_t len)
{
    struct presence_room_keys k;
    const char *a1[3] = {"SADD", k.users, user}, *a2[3] = {"SADD", k.mine, user};
    size_t l1[3] = {4, 0, len}, l2[3] = {4, 0, len};

    if (presence_keys(p, room, rlen, p->id, &k) == -1)
        return -1;
    l1[1] = strlen(k.users);
    l2[1] = strlen(k.mine);
    if (rlink_command(p->redis, presence_ignore, NULL, 3, a1, l1) == -1)
        return -1;
    return rlink_command(p->redis, presence_ignore, NULL, 3, a2, l2);
}

int presence_leave(struct presence *p, const char *room, size_t rlen, const char *user, size_t len,
                   rlink_reply_fn fn, void *pd)
{
    struct presence_room_keys k;
    const char *keys[2] = {k.users, k.mine};
    char notice[PRESENCE_NOTICE_MAX];
    const char *args[3] = {user, k.channel, notice};
    size_t lens[3] = {len, 0, 0};
    ssize_t n = chat_payload_left(chat_payload_form_of(rlen), notice, sizeof(notice), user, len);

    if (n < 0 || presence_keys(p, room, rlen, p->id, &k) == -1)
        return -1;
    lens[1] = strlen(k.channel);
    lens[2] = p->cfg->announce ? (size_t)n : 0;
    return rlink_eval(p->redis, presence_leave_lua, 2, keys, 3, args, lens, fn, NULL, pd);
}

int presence_who(struct presence *p, const char *room, size_t rlen, long max, rlink_raw_fn fn,
                 void *pd)
{
    struct presence_room_keys k;
    const char *keys[1] = {k.users};
    char maxs[24];
    const char *args[1] = {maxs};
    size_t lens[1];

    if (presence_keys(p, room, rlen, p->id, &k) == -1)
        return -1;
    lens[0] = (size_t)snprintf(maxs, sizeof(maxs), "%ld", max);
    return rlink_eval(p->redis, presence_who_lua, 1, keys, 1, args, lens, NULL, fn, pd);
}

int presence_direct(struct presence *p, const char *room, size_t rlen, const char *to, size_t tolen,
                    const char *payload, size_t len, rlink_reply_fn fn, void *pd)
{
    struct presence_room_keys k;
    const char *keys[1] = {k.users};
    char direct[ROOM_KEY_MAX];
    const char *args[3] = {to, direct, payload};
    size_t lens[3] = {tolen, 0, len};
    ssize_t dl = room_key_direct(direct, sizeof(direct), p->cfg);

    if (dl < 0 || presence_keys(p, room, rlen, p->id, &k) == -1)
        return -1;
    lens[1] = (size_t)dl;
    return rlink_eval(p->redis, presence_direct_lua, 1, keys, 3, args, lens, fn, NULL, pd);
}

static void presence_beat(struct presence *p)
{
    char ttl[24];
    const char *set[5] = {"SET", p->alive_key, "1", "PX", ttl};
    const char *reg[3] = {"SADD", p->instances_key, p->id};
    size_t setl[5], regl[3] = {4, strlen(p->instances_key), strlen(p->id)};
    int i;

    snprintf(ttl, sizeof(ttl), "%ld", p->cfg->instance_ttl);
    for (i = 0; i < 5; i++)
        setl[i] = strlen(set[i]);
    /* registering again each beat heals a cleaner that removed us during a
     * partition longer than the TTL */
    rlink_command(p->redis, presence_ignore, NULL, 5, set, setl);
    rlink_command(p->redis, presence_ignore, NULL, 3, reg, regl);
}

static void presence_beat_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    presence_beat(arg);
}

/* ---- reaping an instance that stopped (or this one, at stop) -------------- */

/* One instance being reaped: its rooms first, one script each, then it is
 * unregistered. */
struct presence_reap {
    struct presence *p;
    char id[PRESENCE_ID_MAX];
    char alive[ROOM_KEY_MAX];
    long long removed;
    int pending; /* room scripts not answered yet */
    int alive_again;
    rlink_reply_fn fn; /* the stop's callback, or NULL */
    void *pd;
};

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

static void presence_on_room_reaped(long long result, void *pd)
{
    struct presence_reap *q = pd;
    struct presence *p = q->p;
    char rooms[ROOM_KEY_MAX];
    const char *keys[3] = {p->instances_key, q->alive, rooms};
    const char *args[1] = {q->id};
    size_t lens[1] = {strlen(q->id)};

    if (result == -1)
        q->alive_again = 1;
    else if (result > 0)
        q->removed += result;
    if (--q->pending > 0)
        return;
    if (q->alive_again || room_key_instance_rooms(rooms, sizeof(rooms), p->cfg, q->id) < 0 ||
        rlink_eval(p->redis, presence_reap_done_lua, 3, keys, 1, args, lens, presence_on_reap_done,
                      NULL, q) == -1)
        presence_reap_end(q, -1);
}

static int presence_reap_room(struct presence_reap *q, const char *room, size_t rlen)
{
    struct presence *p = q->p;
    struct presence_room_keys k;
    const char *keys[3] = {q->alive, k.users, k.mine};
    const char *prefix, *suffix;
    const char *args[4] = {k.channel, NULL, NULL, p->cfg->announce ? "1" : "0"};
    size_t lens[4] = {0, 0, 0, 1};

    if (presence_keys(p, room, rlen, q->id, &k) == -1)
        return -1;
    chat_payload_left_affixes(chat_payload_form_of(rlen), &prefix, &suffix);
    args[1] = prefix;
    args[2] = suffix;
    lens[0] = strlen(k.channel);
    lens[1] = strlen(prefix);
    lens[2] = strlen(suffix);
    if (rlink_eval(p->redis, presence_reap_room_lua, 3, keys, 4, args, lens, presence_on_room_reaped,
                      NULL, q) == -1)
        return -1;
    q->pending++;
    return 0;
}

/* SMEMBERS of its rooms: reap the default room and each of them. */
static void presence_on_reap_rooms(const void *reply_, void *pd)
{
    const redisReply *reply = reply_;
    struct presence_reap *q = pd;
    size_t i;

    q->pending = 1; /* held until every room script is sent */
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY)
        for (i = 0; i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            if (e->type == REDIS_REPLY_STRING && e->len > 0 &&
                room_name_check(e->str, e->len) == NULL)
                presence_reap_room(q, e->str, e->len);
        }
    if (reply == NULL || presence_reap_room(q, "", 0) == -1) {
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

    if (q == NULL)
        return -1;
    q->p = p;
    q->fn = fn;
    q->pd = pd;
    snprintf(q->id, sizeof(q->id), "%.*s", (int)idlen, id);
    if (room_key_instance_alive(q->alive, sizeof(q->alive), p->cfg, q->id) < 0 ||
        room_key_instance_rooms(rooms, sizeof(rooms), p->cfg, q->id) < 0 ||
        (lens[1] = strlen(rooms),
         rlink_command_raw(p->redis, presence_on_reap_rooms, q, 2, argv, lens) == -1)) {
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
                              const char *id)
{
    struct presence *p = calloc(1, sizeof(*p));
    long beat = cfg->instance_ttl / 4;
    struct timeval tv;

    if (p == NULL)
        return NULL;
    p->redis = redis;
    p->cfg = cfg;
    snprintf(p->id, sizeof(p->id), "%s", id);
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
