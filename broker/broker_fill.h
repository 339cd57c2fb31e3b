/* broker_fill.h -- a room's stored messages reach the workers once each,
 * in stream order, and none is lost while the subscriber was away.
 *
 * PUBSUB drops what is published while a subscriber is disconnected. So
 * each room remembers the id of the last stored message it delivered (or,
 * before the first, the stream's newest id when its subscription began);
 * when the subscription is confirmed again after a reconnect, the broker
 * reads the stream after that id ("the gap") and delivers it, holding the
 * live messages that arrive meanwhile, then those. A stored message whose
 * id is not above the last delivered one is a copy (the gap and the live
 * channel overlap) and is dropped. PUBSUB delivers a room's messages in
 * stream order (each is XADDed and PUBLISHed in one script), so the rule
 * holds for live messages too. Messages without an id (notices, an outside
 * publisher's lines, history off) pass as they come.
 */
#ifndef RC_BROKER_FILL_H
#define RC_BROKER_FILL_H

#include <stddef.h>

#include "broker_rooms.h"
#include "stream_id.h"

struct history;

struct bfill {
    struct history *history;
    struct broker_rooms *rooms;
    size_t max_held; /* bytes held per room during a fill (max-worker-backlog) */
    char *scratch;   /* a gap entry in its stored form */
    size_t scratch_cap;
    /* a payload for the room's workers; `tagged`: in the tagged form */
    void (*deliver)(const struct broker_room *r, const char *payload, size_t len, int tagged,
                    void *arg);
    /* r->pos is known now (the workers keep it for a broker restart) */
    void (*pos_known)(const struct broker_room *r, void *arg);
    void *arg;
};

/* A live message on the room's channel, with its stream id (NULL: it has
 * none): delivered, held (a gap is being read) or dropped (a copy). */
void bfill_on_message(struct bfill *f, struct broker_room *r, const char *payload, size_t len,
                      int tagged, const struct stream_id *id);

/* r's subscription is confirmed (first, or again after a reconnect): read
 * where its stream is, or the gap since r->pos. */
void bfill_on_subscribed(struct bfill *f, struct broker_room *r);

/* The Redis link went down: a gap read in progress is given up (the next
 * subscription reads it again) and what it held is delivered; live
 * messages wait from now until the next subscription's gap is read. */
void bfill_on_link_down(struct bfill *f, struct broker_room *r);

/* Live messages of r wait until its gap is read: the default room's feed
 * is subscribed with the link, and its messages can arrive before the link
 * is up (the subscriber connection is ready before the command one) and
 * the gap read begins; delivered then, they would make the gap's older
 * messages look like copies. No-op with history off. */
void bfill_hold(struct bfill *f, struct broker_room *r);

/* A worker of a restarted broker has seen r's messages up to id: the gap
 * starts there at the latest. */
void bfill_seen(struct broker_room *r, const struct stream_id *id);

/* Free what r holds (the room is going). */
void bfill_room_free(struct broker_room *r);

#endif
