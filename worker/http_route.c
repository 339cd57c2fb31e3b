/* http_route.c -- see http_route.h. */
#include "http_route.h"

#include <string.h>

#include "access.h"
#include "web.h"
#include "ws_app.h"

static int http_str_eq(const struct upg_str *a, const char *b)
{
    return a != NULL && a->len == strlen(b) && memcmp(a->p, b, a->len) == 0;
}

const struct http_route *http_route_find(const struct http_site *site,
                                         const struct upg_str *target, struct upg_str *param)
{
    const char *q = memchr(target->p, '?', target->len);
    size_t plen = q != NULL ? (size_t)(q - target->p) : target->len, i;

    param->p = NULL;
    param->len = 0;
    for (i = 0; i < site->nroutes; i++) {
        const struct http_route *r = &site->routes[i];
        size_t n = strlen(r->path);
        int prefix = n > 0 && r->path[n - 1] == '/' && n > 1;

        if (prefix ? plen < n : plen != n)
            continue;
        if (memcmp(target->p, r->path, n) != 0)
            continue;
        if (prefix) {
            param->p = target->p + n;
            param->len = plen - n;
        }
        return r;
    }
    return NULL;
}

static void http_answer(struct http_answer *a, int status, const char *extra, const char *body)
{
    a->status = status;
    a->extra = extra;
    a->body = body;
}

/* The checks every WebSocket upgrade must pass (RFC 6455 4.2.1). Returns
 * 0, or -1 with the error answer set. */
static int http_check_upgrade(const struct http_site *site, const struct upg_request *req,
                              struct http_answer *a)
{
    const struct upg_str *version = upg_header_get(req, "Sec-WebSocket-Version");
    const struct upg_str *key = upg_header_get(req, "Sec-WebSocket-Key");
    const char *framing = upg_framing_problem(req);

    if (!http_str_eq(&req->version, "HTTP/1.1"))
        http_answer(a, 400, NULL, "WebSocket needs HTTP/1.1");
    else if (framing != NULL) /* a body would be read as WebSocket frames */
        http_answer(a, 400, NULL, framing);
    else if (upg_header_get(req, "Host") == NULL)
        http_answer(a, 400, NULL, "missing Host header");
    else if (!http_str_eq(version, "13"))
        http_answer(a, 426, "Sec-WebSocket-Version: 13\r\n",
                    "unsupported WebSocket version: this server speaks version 13");
    else if (key == NULL || !upg_key_valid(key))
        http_answer(a, 400, NULL, "missing or invalid Sec-WebSocket-Key");
    else if (!access_origin_allowed(site->cfg, req))
        http_answer(a, 403, NULL, "origin not allowed");
    else if (site->closing)
        http_answer(a, 503, NULL, "server is shutting down, please reconnect");
    else
        return 0;
    return -1;
}

/* GET /healthz: 200 while this worker can serve, 503 with the reason
 * otherwise, for load balancers. */
static void http_health(const struct http_site *site, struct http_answer *a)
{
    const char *why = site->unavailable(site->arg);

    if (why != NULL)
        http_answer(a, 503, NULL, why);
    else
        http_answer(a, 200, NULL, "ok");
}

static void http_asset(const struct upg_request *req, const struct web_asset *asset,
                       struct http_answer *a)
{
    a->asset = asset;
    a->not_modified = web_not_modified(req, asset);
    a->status = a->not_modified ? 304 : 200;
}

void http_route_request(const struct http_site *site, const struct upg_request *req,
                        struct http_answer *a)
{
    const struct upg_str *upgrade = upg_header_get(req, "Upgrade");
    const struct upg_str *connection = upg_header_get(req, "Connection");
    int is_upgrade = upgrade != NULL && upg_has_token(upgrade, "websocket") &&
                     connection != NULL && upg_has_token(connection, "upgrade");
    const struct http_route *r = http_route_find(site, &req->target, &a->param);

    a->app = NULL;
    a->asset = NULL;
    a->not_modified = 0;
    if (!http_str_eq(&req->method, "GET")) {
        http_answer(a, 405, "Allow: GET\r\n", "only GET is supported");
        return;
    }
    if (!is_upgrade) {
        const char *why;
        if (r == NULL)
            http_answer(a, 404, NULL, "not found");
        else if (r->kind == HTTP_ROUTE_ASSET ||
                 (r->kind == HTTP_ROUTE_TEXT && r->asset != NULL && web_wants_html(req)))
            http_asset(req, r->asset, a);
        else if (r->kind == HTTP_ROUTE_TEXT)
            http_answer(a, 200, NULL, r->body);
        else if (r->kind == HTTP_ROUTE_HEALTH)
            http_health(site, a);
        else if (r->app != NULL && r->app->check != NULL &&
                 (why = r->app->check(req, &a->param, r->app->arg)) != NULL)
            http_answer(a, 400, NULL, why); /* what a browser's refused upgrade cannot read */
        else
            http_answer(a, 426, "Upgrade: websocket\r\n",
                        "this is a WebSocket endpoint: connect with a WebSocket client");
        return;
    }
    if (r == NULL || r->kind != HTTP_ROUTE_WS) {
        http_answer(a, 404, NULL, site->ws_not_found);
        return;
    }
    if (http_check_upgrade(site, req, a) == -1)
        return;
    a->app = r->app;
}
