/* broker_rooms.h -- the rooms a broker has members in, and its Redis
 * subscriptions, which follow them.
 *
 * A room is listed from the first join asked in it (any worker) until the
 * last member left. While listed, the broker is SUBSCRIBEd to its channel:
 * SUBSCRIBE at the first member, UNSUBSCRIBE after the last, one of them in
 * flight per room at a time (a room that gets a member again while its
 * UNSUBSCRIBE is out subscribes again once that is confirmed), and after a
 * Redis reconnect every room in one command. The default room ("") is the
 * seed channel, which the Redis link subscribes always.
 *
 * A join granted before its room's subscription is confirmed waits here,
 * so that a user who got the welcome misses no message of the room.
 */
#ifndef RC_BROKER_ROOMS_H
#define RC_BROKER_ROOMS_H

#include <stddef.h>

#include "config.h"
#include "dict.h"
#include "room.h"
#include "stream_id.h"

struct rlink;
struct presence;
struct bfill_held;

enum broker_sub {
    BROKER_SUB_OFF = 0, /* not subscribed (Redis down) */
    BROKER_SUB_ASKED,   /* SUBSCRIBE sent */
    BROKER_SUB_ON,      /* confirmed (the default room: always) */
    BROKER_SUB_LEAVING, /* UNSUBSCRIBE sent */
};

/* Something waiting for a room's subscription: a granted join. It is the
 * first member of a malloc'd block, which brooms_deinit frees. */
struct broker_wait {
    struct broker_wait *next;
};

struct broker_room {
    char name[ROOM_NAME_MAX + 1]; /* NUL-terminated; "" = default room */
    size_t len;
    char channel[ROOM_KEY_MAX];
    size_t chlen;
    long refs; /* names held here and joins asked, in every worker */
    enum broker_sub sub;
    unsigned resub : 1; /* in the batch resubscribed after a reconnect */
    struct broker_wait *waiting, **waiting_tail;
    /* its stored messages, delivered in stream order (broker_fill.c) */
    struct stream_id last; /* the last one delivered */
    struct stream_id pos;  /* a gap fill reads after this: `last`, or where
                            * the subscription began */
    unsigned have_last : 1, have_pos : 1;
    unsigned filling : 1;  /* reading a gap: live messages wait in `held` */
    unsigned holding : 1;  /* a gap is due but not read yet (the link is
                            * coming back): live messages wait too */
    unsigned fill_gen;     /* tells a stale read's answer from the current one */
    struct bfill_held *held, **held_tail;
    size_t held_bytes;
};

struct broker_rooms {
    const struct cfg *cfg;
    struct rlink *redis;
    struct presence *presence;
    struct dict by_name;
    /* the link is up and every worker is here (or waited for): rooms are
     * subscribed from now on; before, a restarted broker would fill a
     * room's gap for the workers registered so far only */
    int live;
    /* rooms of the reconnect batch not confirmed yet: what is published
     * meanwhile would miss this instance's members */
    size_t resubscribing;
    /* a waiting item's room is subscribed now (or Redis went down) */
    void (*ready)(struct broker_wait *w, void *arg);
    /* the reconnect batch is confirmed (resubscribing fell to 0) */
    void (*all_subscribed)(void *arg);
    /* a room's subscription is confirmed (first, or again after a reconnect) */
    void (*subscribed)(struct broker_room *r, void *arg);
    void *arg;
};

void brooms_init(struct broker_rooms *rs, const struct cfg *cfg, struct rlink *redis,
                 struct presence *presence, void (*ready)(struct broker_wait *, void *),
                 void (*all_subscribed)(void *), void (*subscribed)(struct broker_room *, void *),
                 void *arg);
/* Free every room and what waits in it (at exit). */
void brooms_deinit(struct broker_rooms *rs);

struct broker_room *brooms_get(const struct broker_rooms *rs, const char *name, size_t len);
/* The room, listed (and subscribed) if new; one more reference. NULL when
 * out of memory, or when `limited` and a new room would pass max-rooms. */
struct broker_room *brooms_ref(struct broker_rooms *rs, const char *name, size_t len, int limited);
/* One reference less; the last one unsubscribes and unlists the room. */
void brooms_unref(struct broker_rooms *rs, struct broker_room *r);

/* Hold w until r is subscribed: 1 when held, 0 when it is already (w is
 * then the caller's to go on with). */
int brooms_wait(struct broker_room *r, struct broker_wait *w);

/* The room whose channel a message came on, or NULL. */
struct broker_room *brooms_of_channel(const struct broker_rooms *rs, const char *ch, size_t len);

/* From the Redis link: a room channel's (un)subscription is confirmed; the
 * link went down (everything is unsubscribed) or came up (resubscribe,
 * and list the rooms again for crash cleanup). */
void brooms_on_subscribed(struct broker_rooms *rs, const char *ch, size_t len, int on);

/* redis-cluster: the room of channel ch moved to another shard, its
 * subscription with it (asked again there by the link): it counts as asked
 * until that is confirmed. The room, or NULL when none is subscribed on ch. */
struct broker_room *brooms_on_moved(struct broker_rooms *rs, const char *ch, size_t len);
void brooms_on_link(struct broker_rooms *rs, int up);

#endif
