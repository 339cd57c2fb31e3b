/* bcast_log.h -- a worker's broadcast stream: every chat message for this
 * worker's sessions, frame-encoded once, in Redis order.
 *
 * Each joined session reads the stream through a cursor (a node and an
 * offset into its frame). Fanning a message out costs nothing per
 * recipient: no copy, no allocation, no queue entry; the recipients'
 * writes pick it up. A node is freed when no cursor can reach it any more:
 * it is referenced by the cursors on it and by the node before it, and the
 * tail (an empty slot the next message fills) by the log itself. */
#ifndef RC_BCAST_LOG_H
#define RC_BCAST_LOG_H

#include <stdint.h>

struct ws_frame;

struct bcast_node {
    struct bcast_node *next; /* NULL on the tail */
    struct ws_frame *frame;  /* NULL on the tail */
    uint64_t pos;            /* stream bytes before this message */
    uint64_t sender;         /* connection id of a sender on this worker, 0 if none */
    unsigned refs;
};

/* A cursor's holder, listed in the log it reads: a message then costs a
 * visit to its readers only, not to every connection of the worker. */
struct bcast_reader {
    struct bcast_reader *next, **pprev;
};

struct bcast_log {
    struct bcast_node *tail;
    uint64_t end; /* stream bytes so far */
    struct bcast_reader *readers;
    /* on its owner's list of logs appended to since their readers were
     * last written to (bcast_mark_dirty) */
    struct bcast_log *dirty_next, **dirty_pprev;
};

/* 0, or -1 out of memory. */
int bcast_init(struct bcast_log *l);
/* Free the log's hold on the stream (its readers must have left). */
void bcast_deinit(struct bcast_log *l);

/* Append a frame (the log takes a reference) sent by connection `sender`
 * (whose own cursor skips it). 0, or -1 out of memory. */
int bcast_append(struct bcast_log *l, struct ws_frame *f, uint64_t sender);

/* A cursor at the end of the stream: it sees messages appended from now. */
struct bcast_node *bcast_subscribe(struct bcast_log *l);

/* List r among l's readers / take it off (no-op when not listed). */
void bcast_reader_add(struct bcast_log *l, struct bcast_reader *r);
void bcast_reader_remove(struct bcast_reader *r);

/* Put l on the list *head (once); take the first log off it (NULL when
 * empty). bcast_deinit takes a log off whatever list it is on. */
void bcast_mark_dirty(struct bcast_log *l, struct bcast_log **head);
struct bcast_log *bcast_pop_dirty(struct bcast_log **head);

void bcast_ref(struct bcast_node *n);
/* Drop a cursor's (or a link's) reference; frees what nobody can reach. */
void bcast_release(struct bcast_node *n);

#endif
