/* broker_rooms.c -- see broker_rooms.h. */
#include "broker_rooms.h"

#include <stdlib.h>
#include <string.h>

#include "broker_fill.h"
#include "log.h"
#include "metrics.h"
#include "presence.h"
#include "redis_link.h"

void brooms_init(struct broker_rooms *rs, const struct cfg *cfg, struct rlink *redis,
                 struct presence *presence, void (*ready)(struct broker_wait *, void *),
                 void (*all_subscribed)(void *), void (*subscribed)(struct broker_room *, void *),
                 void *arg)
{
    memset(rs, 0, sizeof(*rs));
    rs->cfg = cfg;
    rs->redis = redis;
    rs->presence = presence;
    rs->ready = ready;
    rs->all_subscribed = all_subscribed;
    rs->subscribed = subscribed;
    rs->arg = arg;
    dict_init(&rs->by_name);
}

static void brooms_free_waiting(const char *key, size_t keylen, void *val, void *arg)
{
    struct broker_room *r = val;
    struct broker_wait *w;

    (void)key;
    (void)keylen;
    (void)arg;
    while ((w = r->waiting) != NULL) {
        r->waiting = w->next;
        free(w);
    }
}

static void brooms_free_one(const char *key, size_t keylen, void *val, void *arg)
{
    (void)key;
    (void)keylen;
    (void)arg;
    bfill_room_free(val);
    free(val);
}

void brooms_deinit(struct broker_rooms *rs)
{
    dict_foreach(&rs->by_name, brooms_free_waiting, NULL);
    dict_foreach(&rs->by_name, brooms_free_one, NULL);
    dict_deinit(&rs->by_name);
}

struct broker_room *brooms_get(const struct broker_rooms *rs, const char *name, size_t len)
{
    return dict_get(&rs->by_name, name, len);
}

struct broker_room *brooms_of_channel(const struct broker_rooms *rs, const char *ch, size_t len)
{
    const char *name;
    ssize_t n = room_of_channel(rs->cfg, ch, len, &name);

    return n < 0 ? NULL : brooms_get(rs, name, (size_t)n);
}

static void brooms_release_waiting(struct broker_rooms *rs, struct broker_room *r)
{
    struct broker_wait *w;

    while ((w = r->waiting) != NULL) {
        r->waiting = w->next;
        w->next = NULL;
        rs->ready(w, rs->arg);
    }
    r->waiting_tail = &r->waiting;
}

static void brooms_subscribe(struct broker_rooms *rs, struct broker_room *r, int on)
{
    const char *ch = r->channel;

    if (rlink_subscribe(rs->redis, on, 1, &ch, &r->chlen) == 0)
        r->sub = on ? BROKER_SUB_ASKED : BROKER_SUB_LEAVING;
    else
        r->sub = BROKER_SUB_OFF; /* Redis is down: the link-up resubscribes */
}

/* r is out of the reconnect batch (confirmed, freed, or Redis went down). */
static void brooms_resub_done(struct broker_rooms *rs, struct broker_room *r, int notify)
{
    if (!r->resub)
        return;
    r->resub = 0;
    if (--rs->resubscribing == 0 && notify)
        rs->all_subscribed(rs->arg);
}

static void brooms_free(struct broker_rooms *rs, struct broker_room *r)
{
    brooms_resub_done(rs, r, 1);
    dict_del(&rs->by_name, r->name, r->len);
    metrics_set(MS_BROKER_ROOMS, rs->by_name.count);
    bfill_room_free(r);
    free(r);
}

struct broker_room *brooms_ref(struct broker_rooms *rs, const char *name, size_t len, int limited)
{
    struct broker_room *r = brooms_get(rs, name, len);

    if (r != NULL) {
        if (r->refs++ == 0 && r->len > 0 && rlink_is_up(rs->redis))
            presence_room_add(rs->presence, r->name, r->len); /* it was leaving */
        return r;
    }
    if (len > ROOM_NAME_MAX || (limited && rs->by_name.count >= (size_t)rs->cfg->max_rooms))
        return NULL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    memcpy(r->name, name, len);
    r->name[len] = '\0';
    r->len = len;
    r->waiting_tail = &r->waiting;
    r->held_tail = &r->held;
    if (room_key(r->channel, sizeof(r->channel), rs->cfg, name, len, ROOM_KEY_CHANNEL, NULL) < 0 ||
        dict_add(&rs->by_name, r->name, r->len, r) != 0) {
        free(r);
        return NULL;
    }
    r->chlen = strlen(r->channel);
    r->refs = 1;
    metrics_set(MS_BROKER_ROOMS, rs->by_name.count);
    if (len == 0) {
        r->sub = BROKER_SUB_ON; /* the seed channel: subscribed with the link */
        return r;
    }
    if (rs->live) {
        /* listed before the first join's script runs (same connection):
         * a crash after it leaves nobody behind */
        presence_room_add(rs->presence, r->name, r->len);
        brooms_subscribe(rs, r, 1);
    }
    return r;
}

void brooms_unref(struct broker_rooms *rs, struct broker_room *r)
{
    if (--r->refs > 0)
        return;
    if (r->len == 0 || !rlink_is_up(rs->redis)) {
        brooms_release_waiting(rs, r);
        brooms_free(rs, r);
        return;
    }
    /* after the last leave's script (same connection) */
    presence_room_drop(rs->presence, r->name, r->len);
    if (r->sub == BROKER_SUB_ON)
        brooms_subscribe(rs, r, 0);
    else if (r->sub == BROKER_SUB_OFF)
        brooms_free(rs, r);
    /* ASKED or LEAVING: the confirmation decides */
}

int brooms_wait(struct broker_room *r, struct broker_wait *w)
{
    if (r->sub == BROKER_SUB_ON)
        return 0;
    w->next = NULL;
    *r->waiting_tail = w;
    r->waiting_tail = &w->next;
    return 1;
}

void brooms_on_subscribed(struct broker_rooms *rs, const char *ch, size_t len, int on)
{
    struct broker_room *r = brooms_of_channel(rs, ch, len);

    if (r == NULL || r->len == 0)
        return;
    if (on && r->sub == BROKER_SUB_ASKED) {
        r->sub = BROKER_SUB_ON;
        if (r->refs > 0)
            rs->subscribed(r, rs->arg); /* a gap fill holds what comes next */
        brooms_resub_done(rs, r, 1);
        if (r->refs > 0)
            brooms_release_waiting(rs, r);
        else
            brooms_subscribe(rs, r, 0); /* emptied meanwhile */
    } else if (!on && r->sub == BROKER_SUB_LEAVING) {
        r->sub = BROKER_SUB_OFF;
        if (r->refs > 0)
            brooms_subscribe(rs, r, 1); /* joined again meanwhile */
        else
            brooms_free(rs, r);
    }
}

struct broker_room *brooms_on_moved(struct broker_rooms *rs, const char *ch, size_t len)
{
    struct broker_room *r = brooms_of_channel(rs, ch, len);

    if (r == NULL || r->len == 0 || r->sub != BROKER_SUB_ON)
        return NULL;
    r->sub = BROKER_SUB_ASKED; /* its confirmation comes from the new shard */
    return r;
}

static void brooms_collect(const char *key, size_t keylen, void *val, void *arg)
{
    struct broker_room ***end = arg;

    (void)key;
    (void)keylen;
    *(*end)++ = val;
}

void brooms_on_link(struct broker_rooms *rs, int up)
{
    size_t i, n = rs->by_name.count, nsub = 0;
    struct broker_room **rooms, **end, *r;
    const char **chans;
    size_t *lens;

    rs->live = up;
    if (n == 0)
        return;
    rooms = malloc(n * sizeof(*rooms));
    chans = malloc(n * sizeof(*chans));
    lens = malloc(n * sizeof(*lens));
    if (rooms == NULL || chans == NULL || lens == NULL) {
        log_msg(LOG_ERROR, "out of memory resubscribing %zu room(s)", n);
        goto out;
    }
    end = rooms;
    dict_foreach(&rs->by_name, brooms_collect, &end);
    for (i = 0; i < n; i++) {
        r = rooms[i];
        if (r->len == 0)
            continue;
        brooms_resub_done(rs, r, 0); /* a batch before this one */
        if (r->refs == 0) {          /* emptied while an (un)subscribe was out */
            brooms_free(rs, r);
            continue;
        }
        if (up) {
            presence_room_add(rs->presence, r->name, r->len);
            r->sub = BROKER_SUB_ASKED;
            r->resub = 1;
            rs->resubscribing++;
            chans[nsub] = r->channel;
            lens[nsub++] = r->chlen;
        } else {
            r->sub = BROKER_SUB_OFF;
            /* granted joins go ahead: nothing flows until the link is
             * back, for them as for everyone */
            brooms_release_waiting(rs, r);
        }
    }
    if (nsub > 0) {
        if (rlink_subscribe(rs->redis, 1, nsub, chans, lens) == 0) {
            log_msg(LOG_INFO, "redis: resubscribing %zu room(s)", nsub);
        } else {
            for (i = 0; i < nsub; i++) {
                r = brooms_of_channel(rs, chans[i], lens[i]);
                r->sub = BROKER_SUB_OFF;
                brooms_resub_done(rs, r, 0);
            }
        }
    }
out:
    free(rooms);
    free(chans);
    free(lens);
}
