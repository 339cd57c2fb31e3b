/* room.c -- see room.h. */
#include "room.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ROOM_ALPHABET_REASON                                                                       \
    "room name contains a forbidden character (allowed: letters, digits, '-', '_', '.', "          \
    "'~')"

static int room_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

const char *room_name_check(const char *name, size_t len)
{
    size_t i;

    if (name == NULL || len == 0)
        return "room name is empty";
    for (i = 0; i < len; i++)
        if (!room_char_ok((unsigned char)name[i]))
            return ROOM_ALPHABET_REASON;
    if (len > ROOM_NAME_MAX)
        return "room name is longer than 64 characters";
    return NULL;
}

static ssize_t room_fmt(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= cap ? -1 : (ssize_t)n;
}

/* 1 when key holds a hash tag: a '{', later a '}', something between. */
static int room_has_hash_tag(const char *key)
{
    const char *open = strchr(key, '{'), *close;

    if (open == NULL)
        return 0;
    close = strchr(open + 1, '}');
    return close != NULL && close > open + 1;
}

/* The prefix of the per-instance keys: <users-key>, or in a cluster
 * {<users-key>}, so that they share the slot of <users-key> itself (the
 * default room's names, whose name the seed fixed) and one script can touch
 * them together. A users-key with a tag of its own hashes by it already.
 * buf holds at least CFG_NAME_MAX + 3 bytes. */
static const char *room_registry(const struct cfg *cfg, char *buf)
{
    if (!cfg->redis_cluster || room_has_hash_tag(cfg->users_key))
        return cfg->users_key;
    snprintf(buf, CFG_NAME_MAX + 3, "{%s}", cfg->users_key);
    return buf;
}

int room_users_key_fits_cluster(const char *users_key)
{
    return room_has_hash_tag(users_key) || strchr(users_key, '}') == NULL;
}

ssize_t room_key(char *out, size_t cap, const struct cfg *cfg, const char *room, size_t rlen,
                 enum room_key which, const char *id)
{
    char tagged[CFG_NAME_MAX + 3];
    int r = (int)rlen;

    if (rlen > ROOM_NAME_MAX)
        return -1;
    if (rlen == 0) { /* the seed's keys */
        switch (which) {
        case ROOM_KEY_CHANNEL:
            return room_fmt(out, cap, "%s", cfg->channel);
        case ROOM_KEY_USERS:
            return room_fmt(out, cap, "%s", cfg->users_key);
        case ROOM_KEY_INSTANCE:
            return room_fmt(out, cap, "%s:instance:%s", room_registry(cfg, tagged), id);
        case ROOM_KEY_HISTORY:
            return room_fmt(out, cap, "%s:history", cfg->channel);
        case ROOM_KEY_FEED:
            return room_fmt(out, cap, "%s:{}", cfg->channel);
        }
        return -1;
    }
    switch (which) {
    case ROOM_KEY_CHANNEL:
    case ROOM_KEY_FEED:
        return room_fmt(out, cap, "%s:{%.*s}", cfg->channel, r, room);
    case ROOM_KEY_USERS:
        return room_fmt(out, cap, "%s:{%.*s}:users", cfg->channel, r, room);
    case ROOM_KEY_INSTANCE:
        return room_fmt(out, cap, "%s:{%.*s}:instance:%s", cfg->channel, r, room, id);
    case ROOM_KEY_HISTORY:
        return room_fmt(out, cap, "%s:{%.*s}:history", cfg->channel, r, room);
    }
    return -1;
}

ssize_t room_of_channel(const struct cfg *cfg, const char *ch, size_t len, const char **room)
{
    size_t plen = cfg->channel_len;

    if (len == plen && memcmp(ch, cfg->channel, plen) == 0) {
        *room = "";
        return 0;
    }
    /* <channel>:{R}, and <channel>:{} for the default room's feed */
    if (len == plen + 3 && memcmp(ch, cfg->channel, plen) == 0 &&
        memcmp(ch + plen, ":{}", 3) == 0) {
        *room = "";
        return 0;
    }
    if (len < plen + 4 || memcmp(ch, cfg->channel, plen) != 0 || ch[plen] != ':' ||
        ch[plen + 1] != '{' || ch[len - 1] != '}')
        return -1;
    *room = ch + plen + 2;
    if (room_name_check(*room, len - plen - 3) != NULL)
        return -1;
    return (ssize_t)(len - plen - 3);
}

int room_channel_sharded(const struct cfg *cfg, const char *ch, size_t len)
{
    const char *room;

    return cfg->redis_cluster && room_of_channel(cfg, ch, len, &room) > 0;
}

ssize_t room_key_instances(char *out, size_t cap, const struct cfg *cfg)
{
    char tagged[CFG_NAME_MAX + 3];

    return room_fmt(out, cap, "%s:instances", room_registry(cfg, tagged));
}

ssize_t room_key_instance_alive(char *out, size_t cap, const struct cfg *cfg, const char *id)
{
    char tagged[CFG_NAME_MAX + 3];

    return room_fmt(out, cap, "%s:instance:%s:alive", room_registry(cfg, tagged), id);
}

ssize_t room_key_instance_rooms(char *out, size_t cap, const struct cfg *cfg, const char *id)
{
    char tagged[CFG_NAME_MAX + 3];

    return room_fmt(out, cap, "%s:instance:%s:rooms", room_registry(cfg, tagged), id);
}

ssize_t room_key_instance_reaper(char *out, size_t cap, const struct cfg *cfg, const char *id)
{
    char tagged[CFG_NAME_MAX + 3];

    return room_fmt(out, cap, "%s:instance:%s:reaper", room_registry(cfg, tagged), id);
}

const char *room_publish_command(const struct cfg *cfg, const char *ch, size_t len)
{
    return room_channel_sharded(cfg, ch, len) ? "SPUBLISH" : "PUBLISH";
}

ssize_t room_key_direct(char *out, size_t cap, const struct cfg *cfg)
{
    return room_fmt(out, cap, "%s:direct", cfg->channel);
}

void room_eval_init(struct room_eval *e, const char *script)
{
    int i;

    e->script = script;
    e->nkeys = 0;
    for (i = 0; i < ROOM_EVAL_KEYS_MAX; i++) {
        e->key[i][0] = '\0';
        e->keys[i] = e->key[i];
    }
    e->channel[0] = '\0';
}
