/* replica_wait.c -- batches of acknowledgements, each released by one WAIT.
 *
 * The batch covered by the WAIT in flight lives on the heap and is the
 * reply's private data: a waiter freed before the reply (the broker's
 * exit) leaves it behind, emptied, for the reply to free.
 */
#include "replica_wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_link.h"

struct rwait_item {
    struct rwait_item *next;
    rwait_done_fn fn;
    void *pd;
};

struct rwait_batch {
    struct rwait *w; /* NULL once the waiter is gone */
    struct rwait_item *head, **tail;
};

struct rwait {
    struct rlink *redis;
    int replicas;
    char nreplicas[24], timeout[24]; /* WAIT's arguments */
    struct rwait_batch next;  /* added since the WAIT in flight was sent */
    struct rwait_batch *sent; /* covered by the WAIT in flight, NULL when none */
};

static void rwait_batch_init(struct rwait_batch *b, struct rwait *w)
{
    b->w = w;
    b->head = NULL;
    b->tail = &b->head;
}

static void rwait_batch_done(struct rwait_batch *b, int replicated, long long replicas)
{
    struct rwait_item *it;

    while ((it = b->head) != NULL) {
        b->head = it->next;
        it->fn(replicated, replicas, it->pd);
        free(it);
    }
    b->tail = &b->head;
}

static void rwait_send(struct rwait *w);

static void rwait_on_reply(long long result, void *pd)
{
    struct rwait_batch *b = pd;
    struct rwait *w = b->w;

    if (w != NULL)
        w->sent = NULL;
    rwait_batch_done(b, result >= 0 && w != NULL && result >= w->replicas, result);
    free(b);
    if (w != NULL && w->next.head != NULL)
        rwait_send(w);
}

/* Everything in next goes into a WAIT now (or fails at once: link down). */
static void rwait_send(struct rwait *w)
{
    const char *argv[3] = {"WAIT", w->nreplicas, w->timeout};
    size_t lens[3] = {4, strlen(w->nreplicas), strlen(w->timeout)};
    struct rwait_batch *b = malloc(sizeof(*b));

    if (b == NULL) {
        rwait_batch_done(&w->next, 0, -1);
        return;
    }
    rwait_batch_init(b, w);
    b->head = w->next.head;
    b->tail = w->next.tail == &w->next.head ? &b->head : w->next.tail;
    rwait_batch_init(&w->next, w);
    if (rlink_command(w->redis, rwait_on_reply, b, 3, argv, lens) == -1) {
        rwait_batch_done(b, 0, -1);
        free(b);
        return;
    }
    w->sent = b;
}

struct rwait *rwait_new(struct rlink *redis, int replicas, long timeout_ms)
{
    struct rwait *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->redis = redis;
    w->replicas = replicas;
    snprintf(w->nreplicas, sizeof(w->nreplicas), "%d", replicas);
    snprintf(w->timeout, sizeof(w->timeout), "%ld", timeout_ms);
    rwait_batch_init(&w->next, w);
    return w;
}

void rwait_free(struct rwait *w)
{
    if (w == NULL)
        return;
    if (w->sent != NULL) {
        rwait_batch_done(w->sent, 0, -1);
        w->sent->w = NULL; /* its reply frees it */
    }
    rwait_batch_done(&w->next, 0, -1);
    free(w);
}

int rwait_add(struct rwait *w, rwait_done_fn fn, void *pd)
{
    struct rwait_item *it = malloc(sizeof(*it));

    if (it == NULL)
        return -1;
    it->next = NULL;
    it->fn = fn;
    it->pd = pd;
    *w->next.tail = it;
    w->next.tail = &it->next;
    if (w->sent == NULL)
        rwait_send(w);
    return 0;
}
