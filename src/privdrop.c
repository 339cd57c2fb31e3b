/* privdrop.c -- look up `user`/`group` and switch to them (see privdrop.h). */
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int priv_lookup(const struct cfg *cfg, struct priv_ids *ids, char *err, size_t errlen)
{
    struct passwd *pw;
    struct group *gr;

    if (cfg->user == NULL)
        return 0;
    errno = 0;
    if ((pw = getpwnam(cfg->user)) == NULL) {
        snprintf(err, errlen, "user: no such user '%s'%s%s", cfg->user, errno ? ": " : "",
                 errno ? strerror(errno) : "");
        return -1;
    }
    snprintf(ids->user, sizeof(ids->user), "%s", pw->pw_name);
    ids->uid = pw->pw_uid;
    ids->gid = pw->pw_gid;
    if (cfg->group != NULL) {
        errno = 0;
        if ((gr = getgrnam(cfg->group)) == NULL) {
            snprintf(err, errlen, "group: no such group '%s'%s%s", cfg->group, errno ? ": " : "",
                     errno ? strerror(errno) : "");
            return -1;
        }
        ids->gid = gr->gr_gid;
    }
    return 1;
}

int priv_drop(const struct priv_ids *ids, char *err, size_t errlen)
{
    if (geteuid() != 0) {
        /* `user` naming the user we already are (as under systemd's User=)
         * is fine; anything else needs root */
        if (geteuid() == ids->uid && getuid() == ids->uid && getegid() == ids->gid &&
            getgid() == ids->gid)
            return 0;
        snprintf(err, errlen,
                 "user: cannot switch to %s (uid %d, gid %d): not started as root (uid %d, gid %d)",
                 ids->user, (int)ids->uid, (int)ids->gid, (int)geteuid(), (int)getegid());
        return -1;
    }
    /* the supplementary groups first (they need root), then the group, then
     * the user, after which nothing of root is left to change them */
    if (initgroups(ids->user, ids->gid) == -1) {
        snprintf(err, errlen, "initgroups(%s, %d): %s", ids->user, (int)ids->gid, strerror(errno));
        return -1;
    }
    if (setgid(ids->gid) == -1) {
        snprintf(err, errlen, "setgid(%d): %s", (int)ids->gid, strerror(errno));
        return -1;
    }
    if (setuid(ids->uid) == -1) {
        snprintf(err, errlen, "setuid(%d) for user %s: %s", (int)ids->uid, ids->user,
                 strerror(errno));
        return -1;
    }
    if (getuid() != ids->uid || geteuid() != ids->uid || getgid() != ids->gid ||
        getegid() != ids->gid) {
        snprintf(err, errlen, "user %s: the ids did not change as asked", ids->user);
        return -1;
    }
    if (ids->uid != 0 && setuid(0) != -1) {
        snprintf(err, errlen, "user %s: root could be regained after setuid", ids->user);
        return -1;
    }
    return 1;
}
