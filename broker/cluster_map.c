/* cluster_map.c -- build a slot map from CLUSTER SHARDS or CLUSTER SLOTS,
 * read MOVED/ASK (see cluster_map.h).
 *
 * Both parsers fill a map under construction and hand it out only when the
 * whole reply was read: a reply from a node that is half way through a
 * change, or from something that is not Redis at all, leaves the caller
 * with its previous map and a reason. The slot table holds node indexes in
 * 16 bits (32 KiB), CLUSTER_MAP_NODES_MAX being far below 0xffff.
 */
#include "cluster_map.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hiredis_compat.h"

#define CM_NONE 0xffffu /* a slot nobody serves */
#define CM_PORT_MAX 65535

struct cluster_map {
    uint16_t owner[CLUSTER_SLOTS]; /* node index, or CM_NONE */
    unsigned covered;
    int count, cap;
    struct cluster_node *nodes;
};

/* An error reason, formatted; always returns NULL for the caller to pass on. */
static void *cm_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void *cm_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

static struct cluster_map *cm_new(void)
{
    struct cluster_map *m = calloc(1, sizeof(*m));
    unsigned s;

    for (s = 0; m != NULL && s < CLUSTER_SLOTS; s++)
        m->owner[s] = CM_NONE;
    return m;
}

void cluster_map_free(struct cluster_map *m)
{
    if (m == NULL)
        return;
    free(m->nodes);
    free(m);
}

/* Append a zeroed node; its index, or -1 past CLUSTER_MAP_NODES_MAX or
 * without memory. */
static int cm_add_node(struct cluster_map *m)
{
    if (m->count == CLUSTER_MAP_NODES_MAX)
        return -1;
    if (m->count == m->cap) {
        int cap = m->cap == 0 ? 8 : m->cap * 2;
        struct cluster_node *n;

        if (cap > CLUSTER_MAP_NODES_MAX)
            cap = CLUSTER_MAP_NODES_MAX;
        n = realloc(m->nodes, (size_t)cap * sizeof(*n));
        if (n == NULL)
            return -1;
        m->nodes = n;
        m->cap = cap;
    }
    memset(&m->nodes[m->count], 0, sizeof(m->nodes[0]));
    m->nodes[m->count].primary = -1;
    return m->count++;
}

/* Give slots start..end to node; 0, or -1 when one of them is taken. */
static int cm_assign(struct cluster_map *m, unsigned start, unsigned end, int node)
{
    unsigned s;

    for (s = start; s <= end; s++)
        if (m->owner[s] != CM_NONE)
            return -1;
    for (s = start; s <= end; s++)
        m->owner[s] = (uint16_t)node;
    m->covered += end - start + 1;
    m->nodes[node].slots += end - start + 1;
    return 0;
}

/* ---- reply reading --------------------------------------------------------- */

static int cm_is_text(const redisReply *r)
{
    return r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
                         r->type == REDIS_REPLY_VERB);
}

/* 1 when r is the text word exactly. */
static int cm_text_is(const redisReply *r, const char *word)
{
    size_t n = strlen(word);

    return cm_is_text(r) && r->len == n && memcmp(r->str, word, n) == 0;
}

/* A non-negative integer up to max: an integer reply or decimal digits (some
 * proxies send numbers as text). 0, or -1. */
static int cm_uint(const redisReply *r, long long max, long long *out)
{
    long long v = 0;
    size_t i;

    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_INTEGER) {
        if (r->integer < 0 || r->integer > max)
            return -1;
        *out = r->integer;
        return 0;
    }
    if (!cm_is_text(r) || r->len == 0 || r->len > 10)
        return -1;
    for (i = 0; i < r->len; i++) {
        if (r->str[i] < '0' || r->str[i] > '9')
            return -1;
        v = v * 10 + (r->str[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* A list of key/value pairs: a RESP3 map (hiredis keeps keys and values
 * alternating in element) or a RESP2 array of even length. */
static int cm_is_pairs(const redisReply *r)
{
    return r != NULL &&
           (r->type == REDIS_REPLY_MAP || (r->type == REDIS_REPLY_ARRAY && r->elements % 2 == 0));
}

static int cm_is_list(const redisReply *r)
{
    return r != NULL && (r->type == REDIS_REPLY_ARRAY || r->type == REDIS_REPLY_SET);
}

/* The value of key in a pair list, NULL when absent; *dup set when the key
 * is there more than once (a reply that contradicts itself). */
static const redisReply *cm_get(const redisReply *pairs, const char *key, int *dup)
{
    const redisReply *found = NULL;
    size_t i;

    for (i = 0; i + 1 < pairs->elements; i += 2)
        if (cm_text_is(pairs->element[i], key)) {
            if (found != NULL)
                *dup = 1;
            found = pairs->element[i + 1];
        }
    return found;
}

/* Copy a text reply into out (cap bytes with the NUL): printable ASCII
 * without spaces only, as hosts and ids are. 0, or -1. */
static int cm_copy_word(const redisReply *r, char *out, size_t cap)
{
    size_t i;

    if (!cm_is_text(r) || r->len >= cap)
        return -1;
    for (i = 0; i < r->len; i++)
        if ((unsigned char)r->str[i] <= ' ' || (unsigned char)r->str[i] >= 0x7f)
            return -1;
    memcpy(out, r->str, r->len);
    out[r->len] = '\0';
    return 0;
}

/* A node id: 1..40 of [0-9a-zA-Z] (Redis makes 40 hex digits). */
static int cm_copy_id(const redisReply *r, char *out)
{
    size_t i;

    if (!cm_is_text(r) || r->len == 0 || r->len > CLUSTER_NODE_ID_MAX)
        return -1;
    for (i = 0; i < r->len; i++) {
        char ch = r->str[i];

        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')))
            return -1;
    }
    memcpy(out, r->str, r->len);
    out[r->len] = '\0';
    return 0;
}

/* ---- CLUSTER SHARDS ---------------------------------------------------------- */

enum cm_role { CM_ROLE_PRIMARY, CM_ROLE_REPLICA };

/* Read one node of a shard into a new map node; its role into *role.
 * Returns the index, or -1 with err filled. */
static int cm_shard_node(struct cluster_map *m, const redisReply *r, int tls, enum cm_role *role,
                         char *err, size_t errlen)
{
    static const char *const host_keys[] = {"ip", "endpoint", "hostname"};
    const redisReply *v;
    struct cluster_node *nd;
    long long port;
    int dup = 0, i;
    size_t k;

    if (!cm_is_pairs(r)) {
        cm_fail(err, errlen, "a node is not a list of fields");
        return -1;
    }
    if ((i = cm_add_node(m)) < 0) {
        cm_fail(err, errlen, "more than %d nodes", CLUSTER_MAP_NODES_MAX);
        return -1;
    }
    nd = &m->nodes[i];
    v = cm_get(r, "id", &dup);
    if (v == NULL || cm_copy_id(v, nd->id) == -1) {
        cm_fail(err, errlen, "node %d: %s id", i, v == NULL ? "no" : "bad");
        return -1;
    }
    for (k = 0; k < (size_t)i; k++)
        if (strcmp(m->nodes[k].id, nd->id) == 0) {
            cm_fail(err, errlen, "node %s listed twice", nd->id);
            return -1;
        }
    v = cm_get(r, tls ? "tls-port" : "port", &dup);
    if (v == NULL || cm_uint(v, CM_PORT_MAX, &port) == -1 || port == 0) {
        cm_fail(err, errlen, "node %s: %s %s", nd->id, v == NULL ? "no" : "bad",
                tls ? "tls-port" : "port");
        return -1;
    }
    nd->port = (int)port;
    /* the first address it has of ip, endpoint, hostname ("?" is Redis's
     * word for an endpoint it does not know) */
    for (k = 0; k < sizeof(host_keys) / sizeof(host_keys[0]) && nd->host[0] == '\0'; k++) {
        v = cm_get(r, host_keys[k], &dup);
        if (v == NULL || v->type == REDIS_REPLY_NIL || (cm_is_text(v) && v->len == 0) ||
            cm_text_is(v, "?"))
            continue;
        if (cm_copy_word(v, nd->host, sizeof(nd->host)) == -1) {
            cm_fail(err, errlen, "node %s: bad %s", nd->id, host_keys[k]);
            return -1;
        }
    }
    if (nd->host[0] == '\0') {
        cm_fail(err, errlen, "node %s: no address", nd->id);
        return -1;
    }
    v = cm_get(r, "role", &dup);
    if (cm_text_is(v, "master") || cm_text_is(v, "primary")) {
        *role = CM_ROLE_PRIMARY;
    } else if (cm_text_is(v, "replica") || cm_text_is(v, "slave")) {
        *role = CM_ROLE_REPLICA;
    } else {
        cm_fail(err, errlen, "node %s: %s role", nd->id, v == NULL ? "no" : "unknown");
        return -1;
    }
    v = cm_get(r, "health", &dup);
    if (v != NULL && !cm_is_text(v)) {
        cm_fail(err, errlen, "node %s: bad health", nd->id);
        return -1;
    }
    /* Redis documents "failed"; Redis 7.0 and Valkey 8 send "fail" */
    nd->health = cm_text_is(v, "online")                            ? CLUSTER_HEALTH_ONLINE
                 : cm_text_is(v, "failed") || cm_text_is(v, "fail") ? CLUSTER_HEALTH_FAILED
                 : cm_text_is(v, "loading")                         ? CLUSTER_HEALTH_LOADING
                                                                    : CLUSTER_HEALTH_UNKNOWN;
    if (dup) {
        cm_fail(err, errlen, "node %s: a field given twice", nd->id);
        return -1;
    }
    return i;
}

/* One shard: its nodes into the map, its slots to its primary. 0 or -1. */
static int cm_shard(struct cluster_map *m, const redisReply *shard, size_t index, int tls,
                    char *err, size_t errlen)
{
    const redisReply *slots, *nodes;
    int first = m->count, owner = -1, i, dup = 0;
    size_t k;

    if (!cm_is_pairs(shard)) {
        cm_fail(err, errlen, "shard %zu: not a list of fields", index);
        return -1;
    }
    slots = cm_get(shard, "slots", &dup);
    nodes = cm_get(shard, "nodes", &dup);
    if (dup || slots == NULL || nodes == NULL || !cm_is_list(slots) || !cm_is_list(nodes) ||
        slots->elements % 2 != 0) {
        cm_fail(err, errlen, "shard %zu: %s", index,
                dup                                        ? "a field given twice"
                : slots == NULL || nodes == NULL           ? "no slots or no nodes"
                : !cm_is_list(slots) || !cm_is_list(nodes) ? "slots or nodes not a list"
                                                           : "an odd number of slot bounds");
        return -1;
    }
    for (k = 0; k < nodes->elements; k++) {
        enum cm_role role;

        i = cm_shard_node(m, nodes->element[k], tls, &role, err, errlen);
        if (i < 0)
            return -1;
        if (role == CM_ROLE_REPLICA) {
            m->nodes[i].primary = -2; /* attached below */
        } else if (owner < 0 || (m->nodes[owner].health == CLUSTER_HEALTH_FAILED &&
                                 m->nodes[i].health != CLUSTER_HEALTH_FAILED)) {
            owner = i;
        } else if (m->nodes[i].health != CLUSTER_HEALTH_FAILED) {
            cm_fail(err, errlen, "shard %zu: two primaries not failed", index);
            return -1;
        }
    }
    if (owner < 0) {
        cm_fail(err, errlen, "shard %zu: no primary", index);
        return -1;
    }
    for (i = first; i < m->count; i++)
        if (m->nodes[i].primary == -2)
            m->nodes[i].primary = owner;
    for (k = 0; k < slots->elements; k += 2) {
        long long a, b;

        if (cm_uint(slots->element[k], CLUSTER_SLOTS - 1, &a) == -1 ||
            cm_uint(slots->element[k + 1], CLUSTER_SLOTS - 1, &b) == -1 || a > b) {
            cm_fail(err, errlen, "shard %zu: bad slot range", index);
            return -1;
        }
        if (cm_assign(m, (unsigned)a, (unsigned)b, owner) == -1) {
            cm_fail(err, errlen, "shard %zu: slots %lld-%lld overlap another range", index, a, b);
            return -1;
        }
    }
    return 0;
}

struct cluster_map *cluster_map_from_shards(const void *arg, int tls, char *err, size_t errlen)
{
    const redisReply *reply = arg;
    struct cluster_map *m;
    size_t k;

    if (!cm_is_list(reply))
        return cm_fail(err, errlen, "CLUSTER SHARDS: %s",
                       reply != NULL && reply->type == REDIS_REPLY_ERROR ? "an error reply"
                                                                         : "not a list");
    if ((m = cm_new()) == NULL)
        return cm_fail(err, errlen, "out of memory");
    for (k = 0; k < reply->elements; k++)
        if (cm_shard(m, reply->element[k], k, tls, err, errlen) == -1) {
            cluster_map_free(m);
            return NULL;
        }
    return m;
}

/* ---- CLUSTER SLOTS ------------------------------------------------------------ */

/* The map's node for [host, port, id?, ...]: an existing one with the same
 * id (or address, without ids), else a new one. role_primary says how this
 * entry lists it; a node listed both ways is refused. Index or -1. */
static int cm_slots_node(struct cluster_map *m, const redisReply *r, int primary, char *err,
                         size_t errlen)
{
    struct cluster_node tmp = {.primary = -1};
    long long port;
    int i;

    if (!cm_is_list(r) || r->elements < 2) {
        cm_fail(err, errlen, "a node is not [host, port, ...]");
        return -1;
    }
    /* nil or "" is an endpoint Redis does not know: the node asked */
    if (r->element[0]->type != REDIS_REPLY_NIL &&
        !(cm_is_text(r->element[0]) && r->element[0]->len == 0) &&
        (cm_text_is(r->element[0], "?") ||
         cm_copy_word(r->element[0], tmp.host, sizeof(tmp.host)) == -1)) {
        cm_fail(err, errlen, "a node with a bad host");
        return -1;
    }
    if (cm_uint(r->element[1], CM_PORT_MAX, &port) == -1 || port == 0) {
        cm_fail(err, errlen, "node %s: bad port", tmp.host);
        return -1;
    }
    tmp.port = (int)port;
    if (r->elements >= 3 && cm_copy_id(r->element[2], tmp.id) == -1) {
        cm_fail(err, errlen, "node %s:%d: bad id", tmp.host, tmp.port);
        return -1;
    }
    for (i = 0; i < m->count; i++) {
        const struct cluster_node *o = &m->nodes[i];

        if (tmp.id[0] != '\0' ? strcmp(o->id, tmp.id) == 0
                              : o->port == tmp.port && strcmp(o->host, tmp.host) == 0) {
            if (strcmp(o->host, tmp.host) != 0 || o->port != tmp.port) {
                cm_fail(err, errlen, "node %s at two addresses", tmp.id);
                return -1;
            }
            if ((o->primary == -1) != primary) {
                cm_fail(err, errlen, "node %s:%d both primary and replica", tmp.host, tmp.port);
                return -1;
            }
            return i;
        }
    }
    if ((i = cm_add_node(m)) < 0) {
        cm_fail(err, errlen, "more than %d nodes", CLUSTER_MAP_NODES_MAX);
        return -1;
    }
    m->nodes[i] = tmp;
    return i;
}

struct cluster_map *cluster_map_from_slots(const void *arg, char *err, size_t errlen)
{
    const redisReply *reply = arg;
    struct cluster_map *m;
    size_t k, j;

    if (!cm_is_list(reply))
        return cm_fail(err, errlen, "CLUSTER SLOTS: %s",
                       reply != NULL && reply->type == REDIS_REPLY_ERROR ? "an error reply"
                                                                         : "not a list");
    if ((m = cm_new()) == NULL)
        return cm_fail(err, errlen, "out of memory");
    for (k = 0; k < reply->elements; k++) {
        const redisReply *e = reply->element[k];
        long long a, b;
        int owner;

        if (!cm_is_list(e) || e->elements < 3 || cm_uint(e->element[0], CLUSTER_SLOTS - 1, &a) ||
            cm_uint(e->element[1], CLUSTER_SLOTS - 1, &b) || a > b) {
            cm_fail(err, errlen, "entry %zu: not [start, end, primary, ...] with a slot range", k);
            goto fail;
        }
        if ((owner = cm_slots_node(m, e->element[2], 1, err, errlen)) < 0)
            goto fail;
        for (j = 3; j < e->elements; j++) {
            int r = cm_slots_node(m, e->element[j], 0, err, errlen);

            if (r < 0)
                goto fail;
            if (m->nodes[r].primary != -1 && m->nodes[r].primary != owner) {
                cm_fail(err, errlen, "entry %zu: a replica of two primaries", k);
                goto fail;
            }
            m->nodes[r].primary = owner;
        }
        if (cm_assign(m, (unsigned)a, (unsigned)b, owner) == -1) {
            cm_fail(err, errlen, "entry %zu: slots %lld-%lld overlap another range", k, a, b);
            goto fail;
        }
    }
    return m;
fail:
    cluster_map_free(m);
    return NULL;
}

/* ---- lookups ------------------------------------------------------------------ */

int cluster_map_count(const struct cluster_map *m)
{
    return m->count;
}

const struct cluster_node *cluster_map_node(const struct cluster_map *m, int i)
{
    return i >= 0 && i < m->count ? &m->nodes[i] : NULL;
}

int cluster_map_slot_owner(const struct cluster_map *m, unsigned slot)
{
    return slot < CLUSTER_SLOTS && m->owner[slot] != CM_NONE ? m->owner[slot] : -1;
}

unsigned cluster_map_covered(const struct cluster_map *m)
{
    return m->covered;
}

int cluster_map_next_primary(const struct cluster_map *m, int after)
{
    int i;

    for (i = after < 0 ? 0 : after + 1; i < m->count; i++)
        if (m->nodes[i].primary == -1)
            return i;
    return -1;
}

int cluster_map_next_replica(const struct cluster_map *m, int primary, int after)
{
    int i;

    for (i = after < 0 ? 0 : after + 1; primary >= 0 && i < m->count; i++)
        if (m->nodes[i].primary == primary)
            return i;
    return -1;
}

int cluster_map_find(const struct cluster_map *m, const char *host, int port)
{
    int i;

    for (i = 0; i < m->count; i++)
        if (m->nodes[i].port == port && strcmp(m->nodes[i].host, host) == 0)
            return i;
    return -1;
}

/* ---- MOVED / ASK ---------------------------------------------------------------- */

/* Decimal digits s[0..len) without sign or leading zeros (but "0"), at most
 * max. 0, or -1. */
static int cm_digits(const char *s, size_t len, long max, long *out)
{
    long v = 0;
    size_t i;

    if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
        return -1;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

int cluster_redirect_parse(const char *s, size_t len, struct cluster_redirect *out)
{
    const char *p, *end = s + len, *sp, *host, *colon;
    size_t hlen;
    long slot, port;

    memset(out, 0, sizeof(*out));
    if (len > 6 && memcmp(s, "MOVED ", 6) == 0) {
        p = s + 6;
    } else if (len > 4 && memcmp(s, "ASK ", 4) == 0) {
        p = s + 4;
    } else {
        return -1;
    }
    sp = memchr(p, ' ', (size_t)(end - p));
    if (sp == NULL || cm_digits(p, (size_t)(sp - p), CLUSTER_SLOTS - 1, &slot) == -1)
        return -1;
    host = sp + 1;
    if (host < end && *host == '[') {
        /* [v6]:port */
        const char *rb = memchr(host, ']', (size_t)(end - host));

        if (rb == NULL || rb == host + 1 || rb + 1 >= end || rb[1] != ':')
            return -1;
        colon = rb + 1;
        hlen = (size_t)(rb - host - 1);
        host++;
    } else {
        /* the port follows the last ':', so a bare IPv6 address keeps its own */
        for (colon = end; colon > host && colon[-1] != ':'; colon--)
            ;
        if (colon == host)
            return -1;
        colon--;
        hlen = (size_t)(colon - host);
    }
    if (hlen > CLUSTER_HOST_MAX ||
        cm_digits(colon + 1, (size_t)(end - colon - 1), CM_PORT_MAX, &port) == -1 || port == 0)
        return -1;
    for (p = host; p < host + hlen; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == '[' || *p == ']')
            return -1;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->slot = (unsigned)slot;
    out->port = (int)port;
    out->kind = s[0] == 'M' ? CLUSTER_REDIRECT_MOVED : CLUSTER_REDIRECT_ASK;
    return 0;
}
