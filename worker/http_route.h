/* http_route.h -- what the server answers to a request head: which
 * application a WebSocket upgrade goes to, or which HTTP status.
 *
 * Pure: it decides, the session layer writes the answer. The table of
 * routes is the worker's (worker/routes.c); here are the rules every route
 * shares: GET only, the RFC 6455 upgrade checks, the allowed origins, the
 * health answer for load balancers. */
#ifndef RC_HTTP_ROUTE_H
#define RC_HTTP_ROUTE_H

#include <stddef.h>

#include "http_upgrade.h"

struct cfg;
struct ws_app;
struct web_asset;

enum http_route_kind {
    HTTP_ROUTE_TEXT,   /* a plain 200 answer (body) */
    HTTP_ROUTE_HEALTH, /* 200 "ok", or 503 with why the server cannot serve */
    HTTP_ROUTE_WS,     /* a WebSocket endpoint of app */
    HTTP_ROUTE_ASSET,  /* a file of the web page (asset) */
};

struct http_route {
    const char *path; /* exact (query ignored); ending in '/': a prefix whose rest is the param */
    enum http_route_kind kind;
    const char *body;         /* TEXT */
    const struct ws_app *app; /* WS */
    const struct web_asset *asset; /* ASSET; TEXT: what a browser asking for a page gets */
};

/* What routing needs to know about the server. */
struct http_site {
    const struct http_route *routes;
    size_t nroutes;
    const char *ws_not_found; /* 404 body for an upgrade to a path with no endpoint */
    const struct cfg *cfg;    /* allowed-origins */
    /* NULL when the server can serve; otherwise the 503 body saying why it
     * cannot ("unavailable: broker not connected"). Asked for /healthz only. */
    const char *(*unavailable)(void *arg);
    void *arg;
    int closing; /* shutting down: upgrades are refused with 503 */
};

/* The decision: app set, upgrade to it with param; asset set, answer
 * with that file (or 304 when not_modified); else answer status, with
 * `extra` header lines (or NULL) and body. */
struct http_answer {
    const struct ws_app *app;
    struct upg_str param;
    const struct web_asset *asset;
    int not_modified;
    int status;
    const char *extra;
    const char *body;
};

/* The route whose path matches target (query string ignored), or NULL;
 * *param gets the rest of a prefix route's path. */
const struct http_route *http_route_find(const struct http_site *site,
                                         const struct upg_str *target, struct upg_str *param);

void http_route_request(const struct http_site *site, const struct upg_request *req,
                        struct http_answer *a);

#endif
