/* privdrop.h -- the `user` and `group` directives: look the names up, and
 * let a master started as root give up root once its listeners, pidfile
 * and logfile are open, before it forks the broker and the workers (so every
 * process of the instance, the master too, runs as that user). */
#ifndef RC_PRIVDROP_H
#define RC_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"

#define PRIV_NAME_MAX 256

struct priv_ids {
    char user[PRIV_NAME_MAX];
    uid_t uid;
    gid_t gid;
};

/* Look cfg->user and cfg->group up (the group defaults to the user's primary
 * group). Returns 1 with ids filled, 0 when cfg sets no user, -1 with err
 * filled ("user: no such user 'x'") when a name does not exist. */
int priv_lookup(const struct cfg *cfg, struct priv_ids *ids, char *err, size_t errlen);

/* Become ids: initgroups, setgid, setuid, in that order, each checked, then
 * check that root cannot be regained. As root only; a process that is not
 * root may only "become" itself (same uid and gid: nothing to do), else
 * -1 with err filled. Returns 1 when it changed user, 0 when there was
 * nothing to do, -1 with err filled. */
int priv_drop(const struct priv_ids *ids, char *err, size_t errlen);

#endif
