/* access.h -- who may open a chat session: the Origin allow-list (against
 * cross-site WebSocket hijacking) and optional JWT (HS256) tokens. */
#ifndef RC_ACCESS_H
#define RC_ACCESS_H

#include <stddef.h>

#include "config.h"
#include "http_upgrade.h"

/* 1 when the request's Origin is acceptable: no allow-list configured, no
 * Origin header (not a browser: no ambient credentials to hijack), or an
 * exact (case-insensitive) match with one listed origin. */
int access_origin_allowed(const struct cfg *cfg, const struct upg_request *req);

struct access_token {
    char token[4097];      /* NUL-terminated; empty = none presented */
    size_t len;
    struct upg_str protocol; /* the Sec-WebSocket-Protocol entry it came in, to echo */
};

/* Find the token: query parameter `token=`, or a Sec-WebSocket-Protocol
 * entry that looks like a JWT. Returns 0, or -1 for a malformed one. */
int access_token_find(const struct upg_request *req, struct access_token *t);

/* Check a token against the configured secret for user. NULL when the user
 * may join, else a short reason for the close frame. */
const char *access_token_check(const struct cfg *cfg, const struct access_token *t,
                               const char *user, size_t userlen);

#endif
