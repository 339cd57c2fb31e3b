/* web.c -- see web.h. */
#include "web.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* 'self' in connect-src covers ws:/wss: to the same host and port. */
#define WEB_CSP                                                                            \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "        \
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const struct web_asset *web_asset_find(const char *path)
{
    size_t i;

    for (i = 0; i < web_nassets; i++)
        if (strcmp(web_assets[i].path, path) == 0)
            return &web_assets[i];
    return NULL;
}

/* Is `needle` in the header value, ignoring case? */
static int web_header_has(const struct upg_str *v, const char *needle)
{
    size_t n = strlen(needle), i;

    if (v == NULL || v->len < n)
        return 0;
    for (i = 0; i + n <= v->len; i++)
        if (strncasecmp(v->p + i, needle, n) == 0)
            return 1;
    return 0;
}

int web_wants_html(const struct upg_request *req)
{
    return web_header_has(upg_header_get(req, "Accept"), "text/html");
}

int web_not_modified(const struct upg_request *req, const struct web_asset *a)
{
    return web_header_has(upg_header_get(req, "If-None-Match"), a->etag);
}

size_t web_response_head(char *out, size_t cap, const struct web_asset *a, int not_modified)
{
    char length[64] = "";
    int n;

    if (!not_modified) /* a 304 has no body, and names no length of its own */
        snprintf(length, sizeof(length), "Content-Length: %zu\r\n", a->len);
    n = snprintf(out, cap,
                 "HTTP/1.1 %s\r\n"
                 "Content-Type: %s\r\n"
                 "%s"
                 "ETag: %s\r\n"
                 "Cache-Control: no-cache\r\n"
                 "Content-Security-Policy: " WEB_CSP "\r\n"
                 "X-Content-Type-Options: nosniff\r\n"
                 "Referrer-Policy: no-referrer\r\n"
                 "Connection: close\r\n"
                 "\r\n",
                 not_modified ? "304 Not Modified" : "200 OK", a->type, length, a->etag);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
