/* presence.c -- see presence.h. */
#include "presence.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hiredis_compat.h"

#include "chat_payload.h"
#include "log.h"
#include "util.h"

#define PRESENCE_SCAN_MS 5000 /* how often to look for dead instances */
#define PRESENCE_KEY_MAX 512
#define PRESENCE_NOTICE_MAX 256 /* a leave notice for a name of at most 128 bytes */

/* KEYS: chat-users, instance users; ARGV: user */
static const char presence_join_lua[] =
    "if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then\n"
    "  redis.call('SADD', KEYS[2], ARGV[1])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

/* KEYS: chat-users, instance users; ARGV: user, channel, leave notice
 * ("" with `announce no`) */
static const char presence_leave_lua[] =
    "redis.call('SREM', KEYS[2], ARGV[1])\n"
    "if redis.call('SREM', KEYS[1], ARGV[1]) == 1 then\n"
    "  if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

/* KEYS: instances, dead one's heartbeat, dead one's users, chat-users;
 * ARGV: dead id, channel, CHAT_PAYLOAD_LEFT_SUFFIX ("" with `announce no`).
 * Returns users removed,
 * or -1 (alive after all) / -2 (somebody else cleaned it first). */
static const char presence_reap_lua[] =
    "if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end\n"
    "if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return -2 end\n"
    "local users = redis.call('SMEMBERS', KEYS[3])\n"
    "local n = 0\n"
    "for _, u in ipairs(users) do\n"
    "  if redis.call('SREM', KEYS[4], u) == 1 then\n"
    "    if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[2], u .. ARGV[3]) end\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', KEYS[3])\n"
    "return n\n";

struct presence {
    struct rlink *redis;
    const struct cfg *cfg;
    char id[64];
    char instances_key[PRESENCE_KEY_MAX]; /* <users-key>:instances */
    char users_key[PRESENCE_KEY_MAX];     /* <users-key>:instance:<id> */
    char alive_key[PRESENCE_KEY_MAX + 8]; /* <users-key>:instance:<id>:alive */
    struct event *beat_ev, *scan_ev;
};

/* Length of the leave suffix the reap script appends, or 0: an empty
 * notice tells the scripts not to publish (`announce no`). */
static size_t presence_notice_len(const struct presence *p)
{
    return p->cfg->announce ? sizeof(CHAT_PAYLOAD_LEFT_SUFFIX) - 1 : 0;
}

static void presence_ignore(long long result, void *pd)
{
    (void)result;
    (void)pd;
}

static int presence_eval(struct presence *p, const char *script, int nkeys, const char **keys,
                         int nargs, const char **args, const size_t *arglens, rlink_reply_fn fn,
                         void *pd)
{
    const char *argv[12];
    size_t lens[12];
    char nk[8];
    int i, argc = 0;

    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[argc] = "EVAL", lens[argc++] = 4;
    argv[argc] = script, lens[argc++] = strlen(script);
    argv[argc] = nk, lens[argc++] = strlen(nk);
    for (i = 0; i < nkeys; i++)
        argv[argc] = keys[i], lens[argc++] = strlen(keys[i]);
    for (i = 0; i < nargs; i++)
        argv[argc] = args[i], lens[argc++] = arglens[i];
    return rlink_command(p->redis, fn, pd, argc, argv, lens);
}

int presence_join(struct presence *p, const char *user, size_t len, rlink_reply_fn fn, void *pd)
{
    const char *keys[2] = {p->cfg->users_key, p->users_key};

    return presence_eval(p, presence_join_lua, 2, keys, 1, &user, &len, fn, pd);
}

int presence_hold(struct presence *p, const char *user, size_t len)
{
    const char *a1[3] = {"SADD", p->cfg->users_key, user}, *a2[3] = {"SADD", p->users_key, user};
    size_t l1[3] = {4, strlen(p->cfg->users_key), len}, l2[3] = {4, strlen(p->users_key), len};

    if (rlink_command(p->redis, presence_ignore, NULL, 3, a1, l1) == -1)
        return -1;
    return rlink_command(p->redis, presence_ignore, NULL, 3, a2, l2);
}

int presence_leave(struct presence *p, const char *user, size_t len, rlink_reply_fn fn,
                   void *pd)
{
    const char *keys[2] = {p->cfg->users_key, p->users_key};
    char notice[PRESENCE_NOTICE_MAX];
    const char *args[3] = {user, p->cfg->channel, notice};
    size_t lens[3] = {len, p->cfg->channel_len, 0};
    ssize_t n = chat_payload_left(notice, sizeof(notice), user, len);

    if (n < 0)
        return -1;
    lens[2] = p->cfg->announce ? (size_t)n : 0;
    return presence_eval(p, presence_leave_lua, 2, keys, 3, args, lens, fn, pd);
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

struct presence_reap {
    struct presence *p;
    char id[64];
};

static void presence_on_reaped(long long result, void *pd)
{
    struct presence_reap *q = pd;

    if (result >= 0)
        log_msg(LOG_WARN, "instance %s stopped sending heartbeats: removed its %lld user(s)",
                q->id, result);
    free(q);
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
        char alive[PRESENCE_KEY_MAX + 8], users[PRESENCE_KEY_MAX];
        const char *keys[4] = {p->instances_key, alive, users, p->cfg->users_key};
        const char *args[3] = {NULL, p->cfg->channel, CHAT_PAYLOAD_LEFT_SUFFIX};
        size_t lens[3] = {0, p->cfg->channel_len, presence_notice_len(p)};
        struct presence_reap *q;

        if (e->type != REDIS_REPLY_STRING || e->len >= sizeof(q->id) ||
            (e->len == strlen(p->id) && memcmp(e->str, p->id, e->len) == 0))
            continue;
        snprintf(users, sizeof(users), "%s:instance:%.*s", p->cfg->users_key, (int)e->len, e->str);
        snprintf(alive, sizeof(alive), "%s:alive", users);
        q = malloc(sizeof(*q));
        if (q == NULL)
            return;
        q->p = p;
        snprintf(q->id, sizeof(q->id), "%.*s", (int)e->len, e->str);
        args[0] = q->id;
        lens[0] = strlen(q->id);
        if (presence_eval(p, presence_reap_lua, 4, keys, 3, args, lens, presence_on_reaped, q) ==
            -1)
            free(q);
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
    const char *keys[4] = {p->instances_key, p->alive_key, p->users_key, p->cfg->users_key};
    const char *args[3] = {p->id, p->cfg->channel, CHAT_PAYLOAD_LEFT_SUFFIX};
    size_t lens[3] = {strlen(p->id), p->cfg->channel_len, presence_notice_len(p)};

    event_del(p->beat_ev);
    event_del(p->scan_ev);
    /* reap ourselves: normally nobody is left; after a timeout, whoever is
     * still listed is removed and announced like after a crash */
    if (rlink_command(p->redis, presence_ignore, NULL, 2, del, dell) == -1)
        return -1;
    return presence_eval(p, presence_reap_lua, 4, keys, 3, args, lens, fn, pd);
}

struct presence *presence_new(struct event_base *base, struct rlink *redis,
                              const struct cfg *cfg, const char *id)
{
    struct presence *p = calloc(1, sizeof(*p));
    long beat = cfg->instance_ttl / 4;
    struct timeval tv;

    if (p == NULL)
        return NULL;
    p->redis = redis;
    p->cfg = cfg;
    snprintf(p->id, sizeof(p->id), "%s", id);
    snprintf(p->instances_key, sizeof(p->instances_key), "%s:instances", cfg->users_key);
    snprintf(p->users_key, sizeof(p->users_key), "%s:instance:%s", cfg->users_key, id);
    snprintf(p->alive_key, sizeof(p->alive_key), "%s:alive", p->users_key);
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
