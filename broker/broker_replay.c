/* broker_replay.c -- see broker_replay.h. */
#include "broker_replay.h"

#include <stdlib.h>
#include <string.h>

#include "chat_payload.h"
#include "history.h"
#include "log.h"
#include "room.h"
#include "stream_id.h"

#define BREPLAY_PAGE 500 /* entries per read of a resume */
#define BREPLAY_USER_MAX 128

/* One replay in flight. */
struct breplay_req {
    struct breplay *b;
    uint64_t worker_id;
    uint32_t reqid;
    enum ipc_join_mode mode;
    int truncated;
    char last[STREAM_ID_MAX]; /* the seam: the last id replayed, or the asked one */
    size_t rlen, ulen;
    char room[ROOM_NAME_MAX + 1];
    char user[BREPLAY_USER_MAX];
};

static int breplay_send(struct breplay_req *q, enum ipc_type type, uint16_t flags, const char *p,
                        size_t len)
{
    struct ipc_msg m;

    ipc_msg_set(&m, type, q->reqid, flags, q->room, q->rlen, q->user, q->ulen, p, len);
    return q->b->send(q->worker_id, &m, q->b->arg);
}

static void breplay_end(struct breplay_req *q, uint16_t flags)
{
    if (q->truncated)
        flags |= IPC_HISTORY_F_TRUNCATED;
    breplay_send(q, IPC_HISTORY_END, flags, q->last, strlen(q->last));
    free(q);
}

static void breplay_on_read(int ok, const struct history_entry *e, size_t n, int truncated,
                            void *pd)
{
    struct breplay_req *q = pd;
    struct breplay *b = q->b;
    size_t i;

    if (!ok) {
        breplay_end(q, IPC_HISTORY_F_UNAVAILABLE);
        return;
    }
    q->truncated |= truncated;
    for (i = 0; i < n; i++) {
        ssize_t len = chat_payload_stored(b->scratch, b->scratch_cap, e[i].id, e[i].idlen,
                                          e[i].user, e[i].ulen, e[i].text, e[i].tlen);
        if (len < 0 || e[i].idlen >= STREAM_ID_MAX)
            continue; /* not ours: over the limits */
        if (breplay_send(q, IPC_HISTORY, 0, b->scratch, (size_t)len) == -1) {
            free(q); /* the worker is gone */
            return;
        }
        memcpy(q->last, e[i].id, e[i].idlen);
        q->last[e[i].idlen] = '\0';
    }
    if (q->mode == IPC_JOIN_AFTER && n == BREPLAY_PAGE) {
        if (history_read_after(b->history, q->room, q->rlen, q->last, strlen(q->last),
                               BREPLAY_PAGE, breplay_on_read, q) == 0)
            return;
        breplay_end(q, IPC_HISTORY_F_UNAVAILABLE);
        return;
    }
    breplay_end(q, 0);
}

void breplay_start(struct breplay *b, uint64_t worker_id, uint32_t reqid, const char *room,
                   size_t rlen, const char *user, size_t ulen, enum ipc_join_mode mode,
                   const char *arg, size_t alen)
{
    struct breplay_req *q = calloc(1, sizeof(*q));
    struct stream_id after;
    long n = 0;
    int rc;

    if (q == NULL || rlen > ROOM_NAME_MAX || ulen > BREPLAY_USER_MAX) {
        free(q);
        return; /* the worker's member waits in vain: its error comes with the link's */
    }
    q->b = b;
    q->worker_id = worker_id;
    q->reqid = reqid;
    q->mode = mode;
    q->rlen = rlen;
    q->ulen = ulen;
    memcpy(q->room, room, rlen);
    memcpy(q->user, user, ulen);
    if (mode == IPC_JOIN_AFTER) {
        if (stream_id_parse(arg, alen, &after) == -1) {
            breplay_end(q, IPC_HISTORY_F_UNAVAILABLE);
            return;
        }
        stream_id_format(&after, q->last);
        if (!history_enabled(b->history)) {
            q->truncated = 1; /* nothing is kept */
            breplay_end(q, 0);
            return;
        }
        rc = history_read_after(b->history, room, rlen, q->last, strlen(q->last), BREPLAY_PAGE,
                                breplay_on_read, q);
    } else {
        for (size_t i = 0; i < alen && i < 8 && arg[i] >= '0' && arg[i] <= '9'; i++)
            n = n * 10 + (arg[i] - '0');
        if (n > b->cfg->history_on_join_max)
            n = b->cfg->history_on_join_max;
        if (n == 0 || !history_enabled(b->history)) {
            breplay_end(q, 0);
            return;
        }
        rc = history_read_last(b->history, room, rlen, n, breplay_on_read, q);
    }
    if (rc == -1)
        breplay_end(q, IPC_HISTORY_F_UNAVAILABLE);
}
