/* master.h -- the supervising process: owns the listening sockets, forks
 * the broker and the workers, respawns them, stops and reloads them. */
#ifndef RC_MASTER_H
#define RC_MASTER_H

#include "config.h"

/* Run the master until it is told to stop. Takes ownership of cfg, which must
 * come from malloc (it is replaced on reload). conf_path is NULL when no file was given (defaults
 * and environment only). Returns the process exit code. */
int master_run(struct cfg *cfg, const char *conf_path);

/* Load and validate a config the way the master does at start and on
 * SIGHUP: defaults, file (if any), environment, derived values. */
int master_load_config(struct cfg *cfg, const char *conf_path, char *err, size_t errlen);

#endif
