/* outbox.c -- a FIFO of held commands; see outbox.h. */
#include "outbox.h"

#include <stdlib.h>
#include <string.h>

#include "metrics.h"

void outbox_init(struct outbox *o)
{
    memset(o, 0, sizeof(*o));
}

struct outbox_item *outbox_push(struct outbox *o, enum outbox_kind kind, uint64_t worker_id,
                                uint32_t reqid, const void *room, size_t roomlen,
                                const void *user, size_t userlen, const void *text,
                                size_t textlen, uint64_t deadline_ms)
{
    struct outbox_item *it = malloc(sizeof(*it) + roomlen + 1 + userlen + textlen);

    if (it == NULL)
        return NULL;
    it->next = NULL;
    it->kind = kind;
    it->deadline_ms = deadline_ms;
    it->worker_id = worker_id;
    it->reqid = reqid;
    it->flags = 0;
    it->roomlen = roomlen;
    it->userlen = userlen;
    it->textlen = textlen;
    if (roomlen > 0)
        memcpy(it->data, room, roomlen);
    it->data[roomlen] = '\0';
    memcpy(it->data + roomlen + 1, user, userlen);
    if (textlen > 0)
        memcpy(it->data + roomlen + 1 + userlen, text, textlen);
    if (o->tail != NULL)
        o->tail->next = it;
    else
        o->head = it;
    o->tail = it;
    if (kind == OUTBOX_PUBLISH)
        metrics_set(MS_OUTBOX_DEPTH, ++o->npublish);
    return it;
}

struct outbox_item *outbox_pop(struct outbox *o)
{
    struct outbox_item *it = o->head;

    if (it == NULL)
        return NULL;
    o->head = it->next;
    if (o->head == NULL)
        o->tail = NULL;
    if (it->kind == OUTBOX_PUBLISH)
        metrics_set(MS_OUTBOX_DEPTH, --o->npublish);
    it->next = NULL;
    return it;
}

struct outbox_item *outbox_pop_expired(struct outbox *o, uint64_t now_ms)
{
    struct outbox_item **pp, *prev = NULL;

    /* deadlines grow along the queue: the first message decides */
    for (pp = &o->head; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
        struct outbox_item *it = *pp;
        if (it->kind != OUTBOX_PUBLISH)
            continue;
        if (it->deadline_ms > now_ms)
            return NULL;
        *pp = it->next;
        if (o->tail == it)
            o->tail = prev;
        metrics_set(MS_OUTBOX_DEPTH, --o->npublish);
        it->next = NULL;
        return it;
    }
    return NULL;
}
