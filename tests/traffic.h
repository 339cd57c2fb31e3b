/* traffic.h -- steady chat traffic for the failover tests: a typed sender
 * that keeps a bounded number of sends awaiting their answers and records
 * each answer (ack with its msg_id, or error), receivers that record the
 * msg_ids they get (a message twice fails the test), and what a room's
 * stream holds, to compare the three. Every helper fails the test on its
 * own (ck_assert). */
#ifndef RC_TESTS_TRAFFIC_H
#define RC_TESTS_TRAFFIC_H

#include "wsclient.h"

#define TR_MSGS_MAX 10000
#define TR_ID_MAX 32
#define TR_WINDOW 32 /* sends awaiting their answer, at most (the server takes 64) */

/* Connect me as a typed client to room on port, no history replay; the
 * welcome is read. */
void tr_connect(struct wsc *c, int port, const char *room, const char *me);

/* What a sender learned: per send, its msg_id once acked, or refused. */
struct tr_sent {
    int n;
    int answered;
    char id[TR_MSGS_MAX][TR_ID_MAX]; /* "" until acked */
    char refused[TR_MSGS_MAX];
};

/* Send "m<n>" (id n) into the connection's room, unless TR_WINDOW sends
 * await their answer. */
void tr_send(struct wsc *c, struct tr_sent *s);
/* Read the acks and errors there are, waiting at most wait_ms for the first. */
void tr_read_answers(struct wsc *c, struct tr_sent *s, int wait_ms);
/* Wait up to timeout_ms until every send has its answer; 1 when so. */
int tr_all_answered(struct wsc *c, struct tr_sent *s, int timeout_ms);
int tr_acked(const struct tr_sent *s);

/* msg_ids, a receiver's or a stream's. */
struct tr_ids {
    int n;
    char id[TR_MSGS_MAX][TR_ID_MAX];
};

int tr_has(const struct tr_ids *g, const char *id);
/* Read messages until none came for quiet_ms; the connection must still be
 * up. who names it in failures. */
void tr_receive(struct wsc *c, struct tr_ids *g, const char *who, int quiet_ms);
/* The entry ids in redis-cli's raw output of an XRANGE (each id on a line
 * of its own, then fields and values). */
void tr_ids_of_xrange(char *out, struct tr_ids *g);
/* How many of want are missing from got. */
int tr_missing(const struct tr_ids *want, const struct tr_ids *got);
/* How many acked sends are missing from kept. */
int tr_lost_acked(const struct tr_sent *s, const struct tr_ids *kept);

#endif
