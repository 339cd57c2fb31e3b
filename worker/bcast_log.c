/* bcast_log.c -- see bcast_log.h. */
#include "bcast_log.h"

#include <stdlib.h>

#include "ws_frame.h"

static struct bcast_node *bcast_node_new(uint64_t pos)
{
    struct bcast_node *n = calloc(1, sizeof(*n));

    if (n != NULL) {
        n->pos = pos;
        n->refs = 1; /* the log's, as the tail */
    }
    return n;
}

int bcast_init(struct bcast_log *l)
{
    l->end = 0;
    l->readers = NULL;
    l->dirty_next = NULL;
    l->dirty_pprev = NULL;
    l->tail = bcast_node_new(0);
    return l->tail != NULL ? 0 : -1;
}

static void bcast_unmark_dirty(struct bcast_log *l)
{
    if (l->dirty_pprev == NULL)
        return;
    *l->dirty_pprev = l->dirty_next;
    if (l->dirty_next != NULL)
        l->dirty_next->dirty_pprev = l->dirty_pprev;
    l->dirty_next = NULL;
    l->dirty_pprev = NULL;
}

void bcast_mark_dirty(struct bcast_log *l, struct bcast_log **head)
{
    if (l->dirty_pprev != NULL)
        return;
    l->dirty_next = *head;
    if (*head != NULL)
        (*head)->dirty_pprev = &l->dirty_next;
    l->dirty_pprev = head;
    *head = l;
}

struct bcast_log *bcast_pop_dirty(struct bcast_log **head)
{
    struct bcast_log *l = *head;

    if (l != NULL)
        bcast_unmark_dirty(l);
    return l;
}

void bcast_reader_add(struct bcast_log *l, struct bcast_reader *r)
{
    r->next = l->readers;
    if (l->readers != NULL)
        l->readers->pprev = &r->next;
    r->pprev = &l->readers;
    l->readers = r;
}

void bcast_reader_remove(struct bcast_reader *r)
{
    if (r->pprev == NULL)
        return;
    *r->pprev = r->next;
    if (r->next != NULL)
        r->next->pprev = r->pprev;
    r->next = NULL;
    r->pprev = NULL;
}

void bcast_deinit(struct bcast_log *l)
{
    bcast_unmark_dirty(l);
    if (l->tail != NULL)
        bcast_release(l->tail);
    l->tail = NULL;
}

int bcast_append(struct bcast_log *l, struct ws_frame *f, uint64_t sender)
{
    struct bcast_node *slot = l->tail, *next = bcast_node_new(l->end + f->len);

    if (next == NULL)
        return -1;
    ws_frame_ref(f);
    slot->frame = f;
    slot->sender = sender;
    slot->next = next; /* the link's reference is the one next was born with */
    next->refs++;      /* and the log's, as the new tail */
    l->end += f->len;
    l->tail = next;
    bcast_release(slot); /* the log's old one: only cursors keep it now */
    return 0;
}

struct bcast_node *bcast_subscribe(struct bcast_log *l)
{
    l->tail->refs++;
    return l->tail;
}

void bcast_ref(struct bcast_node *n)
{
    n->refs++;
}

void bcast_release(struct bcast_node *n)
{
    /* iterative: a long unread stretch frees without deep recursion */
    while (n != NULL && --n->refs == 0) {
        struct bcast_node *next = n->next;
        ws_frame_unref(n->frame);
        free(n);
        n = next;
    }
}
