/* web.h -- the chat page served by redis-chat itself (web/): its files,
 * compiled into the binary by web/embed.sh, and the HTTP answer that
 * carries one.
 *
 * Every file goes out with a strict Content-Security-Policy (scripts and
 * styles from this server only, no inline code, no frames, no plugins; the
 * page's only connections are to its own origin), nosniff, and an ETag so
 * a browser revalidates cheaply (304) instead of caching a stale page. */
#ifndef RC_WEB_H
#define RC_WEB_H

#include <stddef.h>

#include "http_upgrade.h"

struct web_asset {
    const char *path; /* "/index.html", "/chat.js" ... */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted */
};

/* web_assets.c, generated */
extern const struct web_asset web_assets[];
extern const size_t web_nassets;

/* The file served at path (exact), or NULL. */
const struct web_asset *web_asset_find(const char *path);

/* 1 when the request is a browser's asking for a page (Accept names
 * text/html): GET / then gets the page instead of the seed's text. */
int web_wants_html(const struct upg_request *req);

/* 1 when the request's If-None-Match names the asset's ETag (answer 304). */
int web_not_modified(const struct upg_request *req, const struct web_asset *a);

/* The response head (status line and headers, through the blank line) for
 * a 200 carrying a, or a 304; its length, or 0 when cap is too small. */
size_t web_response_head(char *out, size_t cap, const struct web_asset *a, int not_modified);

#endif
