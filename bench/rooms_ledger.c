/* rooms_ledger.c -- the many-rooms plan and the exactly-once check (see rooms_ledger.h). */
#include "rooms_ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

uint32_t rl_room_of(const struct rooms_plan *p, uint64_t k)
{
    return (uint32_t)(k % p->rooms);
}

uint32_t rl_sender_of(const struct rooms_plan *p, uint64_t k)
{
    return (uint32_t)((k / p->rooms) % p->size);
}

uint64_t rl_next_local(const struct rooms_plan *p, uint64_t k, uint32_t lo, uint32_t hi)
{
    uint32_t r = rl_room_of(p, k);

    if (r < lo)
        return k + (lo - r);
    if (r >= hi)
        return k + (p->rooms - r) + lo;
    return k;
}

/* bits per receiver: messages of its room (or of the run, with one_room) */
static uint64_t nbits(const struct rooms_plan *p)
{
    return p->one_room ? p->max_msgs : (p->max_msgs + p->rooms - 1) / p->rooms;
}

size_t rl_bitmap_bytes(const struct rooms_plan *p)
{
    return (size_t)((nbits(p) + 7) / 8);
}

enum rl_verdict rl_record(const struct rooms_plan *p, uint8_t *bits, uint32_t room,
                          uint32_t user, uint32_t from_room, uint32_t from_user, uint64_t k)
{
    uint64_t i;

    if (k >= p->max_msgs || from_room != rl_room_of(p, k) || from_user != rl_sender_of(p, k))
        return RL_WRONG;
    if (from_room == room && from_user == user)
        return RL_SELF;
    if (!p->one_room && from_room != room)
        return RL_CROSS;
    i = p->one_room ? k : k / p->rooms;
    if (bits[i / 8] & (1u << (i % 8)))
        return RL_DUP;
    bits[i / 8] |= (uint8_t)(1u << (i % 8));
    return RL_OK;
}

size_t rl_user_name(char *buf, size_t cap, const char *prefix, uint32_t room, uint32_t user)
{
    int n = snprintf(buf, cap, "%s-r%" PRIu32 "u%" PRIu32, prefix, room, user);

    return n < 0 ? 0 : (size_t)n;
}

size_t rl_room_name(char *buf, size_t cap, const char *prefix, uint32_t room)
{
    int n = snprintf(buf, cap, "%s-%" PRIu32, prefix, room);

    return n < 0 ? 0 : (size_t)n;
}

static int parse_u64(const char **pp, const char *end, uint64_t *v)
{
    const char *p = *pp;

    *v = 0;
    if (p >= end || *p < '0' || *p > '9')
        return 0;
    while (p < end && *p >= '0' && *p <= '9')
        *v = *v * 10 + (uint64_t)(*p++ - '0');
    *pp = p;
    return 1;
}

int rl_parse(const char *p, size_t n, const char *prefix, uint32_t *room, uint32_t *user,
             uint64_t *k, uint64_t *ts)
{
    const char *e = p + n, *q;
    size_t pl = strlen(prefix);
    uint64_t r, u;

    if (n < pl + 2 || memcmp(p, prefix, pl) != 0 || p[pl] != '-' || p[pl + 1] != 'r')
        return 0;
    q = p + pl + 2;
    if (!parse_u64(&q, e, &r) || q >= e || *q++ != 'u' || !parse_u64(&q, e, &u))
        return 0;
    if (e - q < 2 || q[0] != ':' || q[1] != ' ')
        return 0;
    q += 2;
    if (!parse_u64(&q, e, k) || q >= e || *q++ != ' ' || !parse_u64(&q, e, ts))
        return 0; /* e.g. "P-r3u1: has joined the chat!" */
    if (r > UINT32_MAX || u > UINT32_MAX)
        return 0;
    *room = (uint32_t)r;
    *user = (uint32_t)u;
    return 1;
}
