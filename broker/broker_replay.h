/* broker_replay.h -- the history a join asked for, replayed to its member
 * alone: IPC_HISTORY frames, oldest first, then IPC_HISTORY_END with the
 * last id replayed, the seam after which the worker hands the member live
 * messages (it holds them until then). The replay starts when the JOIN_REPLY
 * goes out, so every message after the replay's last one reaches the
 * worker live, after that reply. */
#ifndef RC_BROKER_REPLAY_H
#define RC_BROKER_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ipc.h"

struct history;

struct breplay {
    struct history *history;
    const struct cfg *cfg;
    char *scratch; /* an entry in its stored form */
    size_t scratch_cap;
    /* send m to the worker, -1 when it is gone (the replay ends) */
    int (*send)(uint64_t worker_id, const struct ipc_msg *m, void *arg);
    void *arg;
};

/* Replay to user in room on worker worker_id what `mode` asks: the last N
 * (arg: N in decimal) or everything after an id (arg: the id). The join's
 * request id goes on every frame. */
void breplay_start(struct breplay *b, uint64_t worker_id, uint32_t reqid, const char *room,
                   size_t rlen, const char *user, size_t ulen, enum ipc_join_mode mode,
                   const char *arg, size_t alen);

#endif
