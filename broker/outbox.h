/* outbox.h -- what the broker holds while Redis is away: messages (bounded
 * by outbox-size and outbox-timeout; their senders are told when one is
 * dropped) and leaves (never dropped: a lost leave is a ghost user). */
#ifndef RC_OUTBOX_H
#define RC_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

enum outbox_kind { OUTBOX_PUBLISH = 0, OUTBOX_LEAVE };

struct outbox_item {
    struct outbox_item *next;
    enum outbox_kind kind;
    uint64_t deadline_ms; /* PUBLISH only */
    uint64_t worker_id;   /* who to tell if it is dropped */
    uint32_t reqid;
    uint16_t flags;       /* PUBLISH: the request's (IPC_PUBLISH_F_ACK) */
    size_t roomlen, userlen, textlen;
    char data[]; /* room, NUL, user, then text (PUBLISH) */
};

struct outbox {
    struct outbox_item *head, *tail;
    size_t npublish; /* messages held (leaves are not counted) */
};

void outbox_init(struct outbox *o);

/* Append; NULL on ENOMEM. The caller checks the size limit first. */
struct outbox_item *outbox_push(struct outbox *o, enum outbox_kind kind, uint64_t worker_id,
                                uint32_t reqid, const void *room, size_t roomlen,
                                const void *user, size_t userlen, const void *text,
                                size_t textlen, uint64_t deadline_ms);

/* Take the oldest item (the caller frees it), NULL when empty. */
struct outbox_item *outbox_pop(struct outbox *o);

/* Take the first message past its deadline, NULL when none. */
struct outbox_item *outbox_pop_expired(struct outbox *o, uint64_t now_ms);

static inline const char *outbox_room(const struct outbox_item *it) { return it->data; }
static inline const char *outbox_user(const struct outbox_item *it)
{
    return it->data + it->roomlen + 1;
}
static inline const char *outbox_text(const struct outbox_item *it)
{
    return it->data + it->roomlen + 1 + it->userlen;
}

#endif
