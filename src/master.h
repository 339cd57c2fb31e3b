/* master.h -- the supervising process: owns the listening sockets, forks
 * the broker and the workers, respawns them, stops and reloads them. */
#ifndef RC_MASTER_H
#define RC_MASTER_H

#include <sys/types.h>

#include "config.h"

/* Run the master until it is told to stop. Takes ownership of cfg, which must
 * come from malloc (it is replaced on reload). conf_path is NULL when no file was given (defaults
 * and environment only). Returns the process exit code. */
int master_run(struct cfg *cfg, const char *conf_path);

/* Load and validate a config the way the master does at start and on
 * SIGHUP: defaults, file (if any), environment, derived values. */
int master_load_config(struct cfg *cfg, const char *conf_path, char *err, size_t errlen);

/* In the broker: ask the master to SIGKILL worker process `pid`, which fell
 * max-worker-backlog behind. The master kills it only while it is one of its
 * own unreaped workers (so never a reused pid), then restarts the slot as
 * after any crash. Returns 0, or -1 with errno set (ESRCH: the master is
 * gone). */
int master_request_worker_kill(pid_t pid);

/* In the broker: tell the master that Redis became usable (up = 1: both
 * connections ready and every worker connected) or was lost (0). The master
 * sends systemd READY=1 on the first up. 0, or -1 with errno set. */
int master_report_redis_state(int up);

#endif
