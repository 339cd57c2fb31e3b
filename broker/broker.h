/* broker.h -- the broker process: the only one that talks to Redis. It
 * accepts the workers on a Unix socket and fans Redis messages out to them. */
#ifndef RC_BROKER_H
#define RC_BROKER_H

#include "config.h"

/* Entry point of the broker process (called in the child after fork).
 * instance_id names this instance in Redis and stays the same when the
 * broker is restarted. Returns an RC_EXIT_* code. */
int broker_main(const struct cfg *cfg, const char *instance_id);

#endif
