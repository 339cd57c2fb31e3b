/* history.c -- see history.h. */
#include "history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hiredis_compat.h"

#include "chat_payload.h"
#include "log.h"
#include "metrics.h"
#include "room.h"
#include "stream_id.h"

/* The entry fields. */
#define HISTORY_F_USER "u"
#define HISTORY_F_TEXT "t"

/* KEYS: the stream. ARGV: max length, ttl in ms ("0": none), user, text,
 * feed channel, stored form with the id left out, where the id goes, seed
 * channel ("" for a room), seed payload. Returns the id. PUB publishes on
 * the feed: SPUBLISH for a room's channel in a cluster (the seed channel
 * stays classic). */
#define HISTORY_PUBLISH_LUA(PUB)                                                                   \
    "local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', '" HISTORY_F_USER        \
    "', ARGV[3], '" HISTORY_F_TEXT "', ARGV[4])\n"                                                 \
    "if ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end\n"                         \
    "local at = tonumber(ARGV[7])\n"                                                               \
    "redis.call('" PUB "', ARGV[5], string.sub(ARGV[6], 1, at) .. id .. string.sub(ARGV[6], at + " \
    "1))\n"                                                                                        \
    "if ARGV[8] ~= '' then redis.call('PUBLISH', ARGV[8], ARGV[9]) end\n"                          \
    "return id\n"
static const char history_publish_lua[] = HISTORY_PUBLISH_LUA("PUBLISH");
static const char history_publish_sharded_lua[] = HISTORY_PUBLISH_LUA("SPUBLISH");

/* KEYS: the stream. ARGV: after (an id), count. Returns {truncated, entries}:
 * truncated is 1 when entries after `after` may be gone: `after` is older
 * than the oldest entry kept (trimming by MAXLEN ~ does not move Redis 7.0's
 * max-deleted-entry-id, so the first entry is what tells; a client whose
 * very id was the one trimmed is told too), an entry after it was XDELed,
 * or the stream is gone altogether; never when no entry was ever removed
 * (entries-added is the length). */
static const char history_after_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return {1, {}} end\n"
    "local function parse(id)\n"
    "  local ms, seq = string.match(id, '^(%d+)-(%d+)$')\n"
    "  return tonumber(ms), tonumber(seq)\n"
    "end\n"
    "local function before(a, b)\n"
    "  local am, as = parse(a)\n"
    "  local bm, bs = parse(b)\n"
    "  return am < bm or (am == bm and as < bs)\n"
    "end\n"
    "local info = redis.call('XINFO', 'STREAM', KEYS[1])\n"
    "local deleted, first, last, added, len = '0-0', nil, '0-0', 0, 0\n"
    "for i = 1, #info, 2 do\n"
    "  local k, v = info[i], info[i + 1]\n"
    "  if k == 'max-deleted-entry-id' then deleted = v\n"
    "  elseif k == 'entries-added' then added = v\n"
    "  elseif k == 'length' then len = v\n"
    "  elseif k == 'first-entry' and v then first = v[1]\n"
    "  elseif k == 'last-generated-id' then last = v end\n"
    "end\n"
    "local truncated = 0\n"
    "if before(ARGV[1], deleted) or (first and before(ARGV[1], first)) or\n"
    "   (not first and before(ARGV[1], last)) then truncated = 1 end\n"
    "if added == len then truncated = 0 end -- nothing was ever removed\n"
    "return {truncated, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])}\n";

int history_script(const struct cfg *cfg, enum history_script which, const char *room,
                   size_t rlen, struct room_eval *e)
{
    room_eval_init(e, which == HISTORY_AFTER ? history_after_lua : history_publish_lua);
    e->nkeys = 1;
    if (room_key(e->key[0], ROOM_KEY_MAX, cfg, room, rlen, ROOM_KEY_HISTORY, NULL) < 0)
        return -1;
    if (which == HISTORY_AFTER)
        return 0;
    if (room_key(e->channel, sizeof(e->channel), cfg, room, rlen, ROOM_KEY_FEED, NULL) < 0)
        return -1;
    if (room_channel_sharded(cfg, e->channel, strlen(e->channel)))
        e->script = history_publish_sharded_lua;
    return 0;
}

struct history {
    struct rlink *redis;
    const struct cfg *cfg;
    char maxlen[24], ttl[24];
};

struct history *history_new(struct rlink *redis, const struct cfg *cfg)
{
    struct history *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->redis = redis;
    h->cfg = cfg;
    snprintf(h->maxlen, sizeof(h->maxlen), "%ld", cfg->history_size);
    snprintf(h->ttl, sizeof(h->ttl), "%ld", cfg->history_ttl);
    return h;
}

void history_free(struct history *h)
{
    free(h);
}

int history_enabled(const struct history *h)
{
    return h->cfg->history_size > 0;
}

/* ---- storing ------------------------------------------------------------------- */

struct history_pub {
    history_stored_fn fn;
    void *pd;
};

static void history_on_stored(const void *reply_, void *pd)
{
    const redisReply *reply = reply_;
    struct history_pub *q = pd;

    if (reply == NULL)
        q->fn(0, NULL, 0, q->pd);
    else if (reply->type == REDIS_REPLY_STRING) /* the script: the id */
        q->fn(1, reply->str, reply->len, q->pd);
    else if (reply->type == REDIS_REPLY_INTEGER) /* a plain PUBLISH */
        q->fn(1, "", 0, q->pd);
    else
        q->fn(0, NULL, 0, q->pd);
    free(q);
}

int history_publish(struct history *h, const char *room, size_t rlen, const char *user,
                    size_t ulen, const void *text, size_t tlen, char *scratch, size_t cap,
                    history_stored_fn fn, void *pd)
{
    enum chat_payload_form form = chat_payload_form_of(rlen);
    char seed[ROOM_KEY_MAX], at[24];
    struct room_eval e;
    const char *feed = e.channel;
    struct history_pub *q;
    ssize_t slen, plen = -1;
    size_t id_at;
    int rc;

    if (history_script(h->cfg, HISTORY_PUBLISH, room, rlen, &e) == -1 ||
        room_key(seed, sizeof(seed), h->cfg, room, rlen, ROOM_KEY_CHANNEL, NULL) < 0)
        return -1;
    q = malloc(sizeof(*q));
    if (q == NULL)
        return -1;
    q->fn = fn;
    q->pd = pd;
    if (!history_enabled(h)) {
        const char *pub = room_publish_command(h->cfg, seed, strlen(seed));

        plen = chat_payload_message(form, scratch, cap, user, ulen, text, tlen);
        rc = plen < 0
                 ? -1
                 : rlink_command_raw(h->redis, history_on_stored, q, 3,
                                     (const char *[]){pub, seed, scratch},
                                     (const size_t[]){strlen(pub), strlen(seed), (size_t)plen});
    } else {
        /* the stored form, then (default room) the seed's line, in scratch */
        slen = chat_payload_stored_template(scratch, cap, user, ulen, text, tlen, &id_at);
        if (slen >= 0 && form == CHAT_PAYLOAD_SEED)
            plen = chat_payload_message(form, scratch + slen, cap - (size_t)slen, user, ulen, text,
                                        tlen);
        snprintf(at, sizeof(at), "%zu", id_at);
        {
            const char *args[9] = {h->maxlen, h->ttl, user, (const char *)text, feed,
                                   scratch, at, form == CHAT_PAYLOAD_SEED ? seed : "",
                                   plen > 0 ? scratch + slen : ""};
            size_t lens[9] = {strlen(h->maxlen), strlen(h->ttl), ulen, tlen, strlen(feed),
                              (size_t)slen, strlen(at), strlen(args[7]), plen > 0 ? (size_t)plen : 0};
            rc = slen < 0 || (form == CHAT_PAYLOAD_SEED && plen < 0)
                     ? -1
                     : rlink_eval(h->redis, e.script, e.nkeys, e.keys, 9, args, lens, NULL,
                                  history_on_stored, q);
        }
    }
    if (rc == -1)
        free(q);
    return rc;
}

/* ---- reading ------------------------------------------------------------------- */

struct history_read {
    history_read_fn fn;
    void *pd;
    int reverse; /* XREVRANGE: newest first */
    int tail;    /* only the newest id */
};

/* One stream entry [id, [field, value, ...]]: 0, or -1 when it is not one
 * of ours (no user or text field). */
static int history_entry_of(const redisReply *r, struct history_entry *e)
{
    const redisReply *f;
    size_t i;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY)
        return -1;
    memset(e, 0, sizeof(*e));
    e->id = r->element[0]->str;
    e->idlen = r->element[0]->len;
    f = r->element[1];
    for (i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k->str, HISTORY_F_USER) == 0) {
            e->user = v->str;
            e->ulen = v->len;
        } else if (strcmp(k->str, HISTORY_F_TEXT) == 0) {
            e->text = v->str;
            e->tlen = v->len;
        }
    }
    return e->user != NULL && e->text != NULL ? 0 : -1;
}

static void history_on_read(const void *reply_, void *pd)
{
    const redisReply *reply = reply_, *list = reply;
    struct history_read *q = pd;
    struct history_entry *e = NULL, tail = {"0-0", NULL, NULL, 3, 0, 0};
    size_t i, n = 0;
    int truncated = 0;

    if (list != NULL && q->tail == 0 && list->type == REDIS_REPLY_ARRAY && list->elements == 2 &&
        list->element[0]->type == REDIS_REPLY_INTEGER) { /* the AFTER script's {truncated, list} */
        truncated = list->element[0]->integer != 0;
        list = list->element[1];
    }
    if (list == NULL || list->type != REDIS_REPLY_ARRAY) {
        q->fn(0, NULL, 0, 0, q->pd);
        free(q);
        return;
    }
    if (q->tail) {
        if (list->elements > 0 && list->element[0]->type == REDIS_REPLY_ARRAY &&
            list->element[0]->elements == 2 &&
            list->element[0]->element[0]->type == REDIS_REPLY_STRING) {
            tail.id = list->element[0]->element[0]->str;
            tail.idlen = list->element[0]->element[0]->len;
        }
        q->fn(1, &tail, 1, 0, q->pd);
        free(q);
        return;
    }
    if (list->elements > 0 && (e = calloc(list->elements, sizeof(*e))) == NULL) {
        log_msg(LOG_ERROR, "out of memory reading %zu history entries", list->elements);
        q->fn(0, NULL, 0, 0, q->pd);
        free(q);
        return;
    }
    for (i = 0; i < list->elements; i++) {
        size_t at = q->reverse ? list->elements - 1 - i : i;
        if (history_entry_of(list->element[at], &e[n]) == 0)
            n++;
        else
            log_msg(LOG_WARN, "history: skipping a stream entry that is not a chat message");
    }
    q->fn(1, e, n, truncated, q->pd);
    free(e);
    free(q);
}

static struct history_read *history_read_new(history_read_fn fn, void *pd, int reverse, int tail)
{
    struct history_read *q = malloc(sizeof(*q));

    if (q != NULL) {
        q->fn = fn;
        q->pd = pd;
        q->reverse = reverse;
        q->tail = tail;
    }
    return q;
}

/* XREVRANGE stream + - COUNT n */
static int history_read_newest(struct history *h, const char *room, size_t rlen, long n, int tail,
                               history_read_fn fn, void *pd)
{
    char stream[ROOM_KEY_MAX], count[24];
    struct history_read *q;

    if (room_key(stream, sizeof(stream), h->cfg, room, rlen, ROOM_KEY_HISTORY, NULL) < 0 ||
        (q = history_read_new(fn, pd, 1, tail)) == NULL)
        return -1;
    snprintf(count, sizeof(count), "%ld", n);
    if (rlink_command_raw(h->redis, history_on_read, q, 6,
                          (const char *[]){"XREVRANGE", stream, "+", "-", "COUNT", count},
                          (const size_t[]){9, strlen(stream), 1, 1, 5, strlen(count)}) == -1) {
        free(q);
        return -1;
    }
    metrics_inc(MS_HISTORY_READS);
    return 0;
}

int history_read_last(struct history *h, const char *room, size_t rlen, long n,
                      history_read_fn fn, void *pd)
{
    return history_read_newest(h, room, rlen, n, 0, fn, pd);
}

int history_read_tail(struct history *h, const char *room, size_t rlen, history_read_fn fn,
                      void *pd)
{
    return history_read_newest(h, room, rlen, 1, 1, fn, pd);
}

int history_read_after(struct history *h, const char *room, size_t rlen, const char *after,
                       size_t alen, long n, history_read_fn fn, void *pd)
{
    char count[24], id[STREAM_ID_MAX];
    struct room_eval e;
    struct stream_id sid;
    struct history_read *q;

    /* the script's pattern match needs the canonical form */
    if (stream_id_parse(after, alen, &sid) == -1 ||
        history_script(h->cfg, HISTORY_AFTER, room, rlen, &e) == -1 ||
        (q = history_read_new(fn, pd, 0, 0)) == NULL)
        return -1;
    stream_id_format(&sid, id);
    snprintf(count, sizeof(count), "%ld", n);
    if (rlink_eval(h->redis, e.script, e.nkeys, e.keys, 2, (const char *[]){id, count},
                   (const size_t[]){strlen(id), strlen(count)}, NULL, history_on_read, q) == -1) {
        free(q);
        return -1;
    }
    metrics_inc(MS_HISTORY_READS);
    return 0;
}
