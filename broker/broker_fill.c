/* broker_fill.c -- see broker_fill.h. */
#include "broker_fill.h"

#include <stdlib.h>
#include <string.h>

#include "chat_payload.h"
#include "history.h"
#include "log.h"

#define BFILL_PAGE 500 /* entries per read of a gap */

/* A live message that arrived while the gap was read. */
struct bfill_held {
    struct bfill_held *next;
    size_t len;
    int tagged;
    int has_id;
    struct stream_id id;
    char payload[];
};

/* A gap read in flight: the room by name (it may be gone by the answer). */
struct bfill_read {
    struct bfill *f;
    unsigned gen;
    size_t rlen;
    char room[ROOM_NAME_MAX + 1];
};

/* Deliver unless it is a copy of a message delivered already; 1 when
 * delivered. */
static int bfill_pass(struct bfill *f, struct broker_room *r, const char *payload, size_t len,
                      int tagged, const struct stream_id *id)
{
    if (id != NULL) {
        if (r->have_last && stream_id_cmp(id, &r->last) <= 0)
            return 0;
        r->last = r->pos = *id;
        r->have_last = r->have_pos = 1;
    }
    f->deliver(r, payload, len, tagged, f->arg);
    return 1;
}

/* The gap is read (or given up): what waited goes out, copies dropped. */
static void bfill_end(struct bfill *f, struct broker_room *r)
{
    struct bfill_held *h;

    r->filling = 0;
    r->holding = 0;
    r->fill_gen++;
    while ((h = r->held) != NULL) {
        r->held = h->next;
        bfill_pass(f, r, h->payload, h->len, h->tagged, h->has_id ? &h->id : NULL);
        free(h);
    }
    r->held_tail = &r->held;
    r->held_bytes = 0;
}

void bfill_on_message(struct bfill *f, struct broker_room *r, const char *payload, size_t len,
                      int tagged, const struct stream_id *id)
{
    struct bfill_held *h;

    if (!r->filling && !r->holding) {
        bfill_pass(f, r, payload, len, tagged, id);
        return;
    }
    if (r->held_bytes + len > f->max_held || (h = malloc(sizeof(*h) + len)) == NULL) {
        log_msg(LOG_ERROR,
                "room '%s': over %zu bytes arrived while its gap was read: delivering them "
                "now, the gap may stay open",
                r->name, f->max_held);
        bfill_end(f, r);
        bfill_pass(f, r, payload, len, tagged, id);
        return;
    }
    h->next = NULL;
    h->len = len;
    h->tagged = tagged;
    h->has_id = id != NULL;
    if (id != NULL)
        h->id = *id;
    memcpy(h->payload, payload, len);
    *r->held_tail = h;
    r->held_tail = &h->next;
    r->held_bytes += len;
}

static struct bfill_read *bfill_read_new(struct bfill *f, const struct broker_room *r)
{
    struct bfill_read *q = malloc(sizeof(*q));

    if (q == NULL)
        return NULL;
    q->f = f;
    q->gen = r->fill_gen;
    q->rlen = r->len;
    memcpy(q->room, r->name, r->len + 1);
    return q;
}

/* The room a read is about, or NULL when it is gone or the read is stale. */
static struct broker_room *bfill_read_room(struct bfill_read *q)
{
    struct broker_room *r = brooms_get(q->f->rooms, q->room, q->rlen);

    return r != NULL && r->fill_gen == q->gen ? r : NULL;
}

static void bfill_read_gap(struct bfill *f, struct broker_room *r);

static void bfill_on_gap(int ok, const struct history_entry *e, size_t n, int truncated, void *pd)
{
    struct bfill_read *q = pd;
    struct bfill *f = q->f;
    struct broker_room *r = bfill_read_room(q);
    size_t i, delivered = 0;

    free(q);
    if (r == NULL || !r->filling)
        return;
    if (!ok) {
        log_msg(LOG_WARN, "room '%s': the gap could not be read: delivering live messages",
                r->name);
        bfill_end(f, r);
        return;
    }
    if (truncated)
        log_msg(LOG_WARN, "room '%s': part of the gap is no longer in its history (trimmed by "
                          "history-size, expired by history-ttl, or the stream was deleted)",
                r->name);
    for (i = 0; i < n; i++) {
        struct stream_id id;
        ssize_t len = chat_payload_stored(f->scratch, f->scratch_cap, e[i].id, e[i].idlen,
                                          e[i].user, e[i].ulen, e[i].text, e[i].tlen);
        if (len < 0 || stream_id_parse(e[i].id, e[i].idlen, &id) == -1) {
            log_msg(LOG_WARN, "room '%s': skipping a history entry: over the size limit or "
                              "with a bad id", r->name);
            continue;
        }
        delivered += (size_t)bfill_pass(f, r, f->scratch, (size_t)len, 1, &id);
    }
    if (delivered > 0)
        log_msg(LOG_INFO, "room '%s': %zu message(s) of the gap delivered", r->name, delivered);
    if (n == BFILL_PAGE && stream_id_parse(e[n - 1].id, e[n - 1].idlen, &r->pos) == 0)
        bfill_read_gap(f, r); /* more */
    else
        bfill_end(f, r);
}

static void bfill_read_gap(struct bfill *f, struct broker_room *r)
{
    char after[STREAM_ID_MAX];
    size_t alen = stream_id_format(&r->pos, after);
    struct bfill_read *q = bfill_read_new(f, r);

    r->filling = 1;
    if (q == NULL || history_read_after(f->history, r->name, r->len, after, alen, BFILL_PAGE,
                                        bfill_on_gap, q) == -1) {
        free(q);
        bfill_end(f, r); /* Redis went away: the next subscription tries again */
    }
}

static void bfill_on_tail(int ok, const struct history_entry *e, size_t n, int truncated, void *pd)
{
    struct bfill_read *q = pd;
    struct bfill *f = q->f;
    struct broker_room *r = bfill_read_room(q);
    struct stream_id id;

    (void)truncated;
    free(q);
    if (r == NULL || !ok || n != 1 || stream_id_parse(e[0].id, e[0].idlen, &id) == -1 ||
        r->have_last)
        return; /* a message came meanwhile: it is the position */
    if (r->have_pos) {
        /* a restarted broker's worker said where it was meanwhile: the gap
         * since then is read now */
        bfill_read_gap(f, r);
        return;
    }
    r->pos = id;
    r->have_pos = 1;
    f->pos_known(r, f->arg);
}

void bfill_on_subscribed(struct bfill *f, struct broker_room *r)
{
    struct bfill_read *q;

    if (!history_enabled(f->history) || r->filling)
        return;
    if (r->have_pos) {
        bfill_read_gap(f, r);
        return;
    }
    if (r->holding)
        bfill_end(f, r); /* nothing was delivered before: no gap to read */
    /* the first subscription: live messages go out as they come; only
     * where the stream is now is needed, should the link break before the
     * first message (a live message racing this read is not dropped: the
     * answer sets pos only, never last) */
    q = bfill_read_new(f, r);
    if (q != NULL && history_read_tail(f->history, r->name, r->len, bfill_on_tail, q) == -1)
        free(q);
}

void bfill_on_link_down(struct bfill *f, struct broker_room *r)
{
    r->fill_gen++; /* whatever read is out answers into nothing */
    if (r->filling)
        bfill_end(f, r);
    bfill_hold(f, r);
}

void bfill_hold(struct bfill *f, struct broker_room *r)
{
    if (history_enabled(f->history))
        r->holding = 1;
}

void bfill_seen(struct broker_room *r, const struct stream_id *id)
{
    if (!r->have_pos || stream_id_cmp(id, &r->pos) < 0) {
        r->pos = *id;
        r->have_pos = 1;
    }
}

void bfill_room_free(struct broker_room *r)
{
    struct bfill_held *h;

    while ((h = r->held) != NULL) {
        r->held = h->next;
        free(h);
    }
}
