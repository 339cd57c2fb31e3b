/* check_web.c -- the web page's files and how they are served: the page
 * for browsers only, the assets, revalidation, the response head, and the
 * reason a browser's refused upgrade can fetch with a plain GET. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "check_run.h"
#include "http_route.h"
#include "http_upgrade.h"
#include "web.h"
#include "ws_app.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *t_check(const struct upg_request *req, const struct upg_str *param, void *arg)
{
    (void)req;
    (void)arg;
    return param->len == 3 && memcmp(param->p, "bad", 3) == 0 ? "user name is bad" : NULL;
}

static const struct ws_app checked_app = {NULL, t_check, NULL, NULL, NULL, NULL};
static const struct ws_app unchecked_app = {NULL, NULL, NULL, NULL, NULL, NULL};

static struct http_route table[4];
static struct http_site site;

static void setup(void)
{
    table[0] = (struct http_route){"/", HTTP_ROUTE_TEXT, "root", NULL, web_asset_find("/index.html")};
    table[1] = (struct http_route){"/chat/", HTTP_ROUTE_WS, NULL, &checked_app, NULL};
    table[2] = (struct http_route){"/echo", HTTP_ROUTE_WS, NULL, &unchecked_app, NULL};
    table[3] = (struct http_route){"/chat.js", HTTP_ROUTE_ASSET, NULL, NULL, web_asset_find("/chat.js")};
    site = (struct http_site){table, NELEM(table), "no such endpoint", NULL, NULL, NULL, 0};
}

/* Route the request head `head` (a full head, "\r\n\r\n" included). */
static void route(const char *head, struct upg_request *req, struct http_answer *a)
{
    ck_assert_int_eq(upg_parse(head, strlen(head), req), UPG_PARSE_OK);
    http_route_request(&site, req, a);
}

START_TEST(test_assets_compiled_in)
{
    const struct web_asset *page = web_asset_find("/index.html");
    const struct web_asset *js = web_asset_find("/chat.js");
    const struct web_asset *css = web_asset_find("/chat.css");

    ck_assert_ptr_nonnull(page);
    ck_assert_ptr_nonnull(js);
    ck_assert_ptr_nonnull(css);
    ck_assert_ptr_null(web_asset_find("/nope.js"));
    ck_assert_ptr_null(web_asset_find("chat.js"));
    ck_assert_str_eq(page->type, "text/html; charset=utf-8");
    ck_assert_str_eq(js->type, "text/javascript; charset=utf-8");
    ck_assert_str_eq(css->type, "text/css; charset=utf-8");
    ck_assert(page->len > 100 && memcmp(page->data, "<!doctype html>", 15) == 0);
    /* the page loads its script from the server, never inline */
    ck_assert_ptr_nonnull(memmem(page->data, page->len, "<script src=\"/chat.js\"", 22));
    ck_assert_ptr_null(memmem(page->data, page->len, "<script>", 8));
    ck_assert_ptr_null(memmem(page->data, page->len, "style=", 6));
    ck_assert(page->etag[0] == '"' && page->etag[strlen(page->etag) - 1] == '"');
    ck_assert_str_ne(page->etag, js->etag);
}
END_TEST

/* GET /: the page for a browser, the seed's text for everyone else. */
START_TEST(test_root_page_for_browsers_only)
{
    struct upg_request req;
    struct http_answer a;

    route("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &req, &a);
    ck_assert_ptr_null(a.asset);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(a.body, "root");
    route("GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", &req, &a);
    ck_assert_ptr_null(a.asset);
    route("GET / HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n", &req, &a);
    ck_assert_ptr_null(a.asset);
    route("GET / HTTP/1.1\r\nHost: x\r\n"
          "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\r\n",
          &req, &a);
    ck_assert_ptr_eq(a.asset, web_asset_find("/index.html"));
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(a.not_modified, 0);
    route("GET /?x=1 HTTP/1.1\r\nHost: x\r\naccept: TEXT/HTML\r\n\r\n", &req, &a);
    ck_assert_ptr_eq(a.asset, web_asset_find("/index.html"));
    /* only GET */
    route("POST / HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n", &req, &a);
    ck_assert_ptr_null(a.asset);
    ck_assert_int_eq(a.status, 405);
}
END_TEST

START_TEST(test_asset_and_revalidation)
{
    const struct web_asset *js = web_asset_find("/chat.js");
    struct upg_request req;
    struct http_answer a;
    char head[512];

    route("GET /chat.js HTTP/1.1\r\nHost: x\r\n\r\n", &req, &a);
    ck_assert_ptr_eq(a.asset, js);
    ck_assert_int_eq(a.not_modified, 0);
    snprintf(head, sizeof(head), "GET /chat.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n\r\n",
             js->etag);
    route(head, &req, &a);
    ck_assert_ptr_eq(a.asset, js);
    ck_assert_int_eq(a.not_modified, 1);
    ck_assert_int_eq(a.status, 304);
    route("GET /chat.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"0000000000000000\"\r\n\r\n", &req,
          &a);
    ck_assert_int_eq(a.not_modified, 0);
    /* an upgrade to an asset is no WebSocket endpoint */
    route("GET /chat.js HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
          &req, &a);
    ck_assert_ptr_null(a.asset);
    ck_assert_ptr_null(a.app);
    ck_assert_int_eq(a.status, 404);
}
END_TEST

/* A plain GET on a WebSocket route: the app's reason when the URL is bad
 * (what a browser's refused upgrade cannot read), else 426. */
START_TEST(test_plain_get_tells_why)
{
    struct upg_request req;
    struct http_answer a;

    route("GET /chat/bad HTTP/1.1\r\nHost: x\r\n\r\n", &req, &a);
    ck_assert_int_eq(a.status, 400);
    ck_assert_str_eq(a.body, "user name is bad");
    route("GET /chat/good HTTP/1.1\r\nHost: x\r\n\r\n", &req, &a);
    ck_assert_int_eq(a.status, 426);
    route("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &req, &a);
    ck_assert_int_eq(a.status, 426);
}
END_TEST

START_TEST(test_response_head)
{
    const struct web_asset *page = web_asset_find("/index.html");
    char out[2048], want[64];
    size_t n = web_response_head(out, sizeof(out), page, 0);

    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(n, strlen(out));
    ck_assert(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    ck_assert(strcmp(out + n - 4, "\r\n\r\n") == 0);
    snprintf(want, sizeof(want), "Content-Length: %zu\r\n", page->len);
    ck_assert_ptr_nonnull(strstr(out, want));
    ck_assert_ptr_nonnull(strstr(out, "Content-Type: text/html; charset=utf-8\r\n"));
    ck_assert_ptr_nonnull(strstr(out, "Content-Security-Policy: default-src 'none'; "));
    ck_assert_ptr_nonnull(strstr(out, "script-src 'self';"));
    ck_assert_ptr_null(strstr(out, "unsafe"));
    ck_assert_ptr_nonnull(strstr(out, "X-Content-Type-Options: nosniff\r\n"));
    ck_assert_ptr_nonnull(strstr(out, page->etag));

    n = web_response_head(out, sizeof(out), page, 1);
    ck_assert(strncmp(out, "HTTP/1.1 304 Not Modified\r\n", 27) == 0);
    ck_assert_ptr_null(strstr(out, "Content-Length"));
    ck_assert_ptr_nonnull(strstr(out, page->etag));

    /* too small: nothing half-written is used */
    ck_assert_uint_eq(web_response_head(out, 64, page, 0), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("web");
    TCase *tc = tcase_create("web");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_assets_compiled_in);
    tcase_add_test(tc, test_root_page_for_browsers_only);
    tcase_add_test(tc, test_asset_and_revalidation);
    tcase_add_test(tc, test_plain_get_tells_why);
    tcase_add_test(tc, test_response_head);
    suite_add_tcase(s, tc);
    return check_run(s);
}
