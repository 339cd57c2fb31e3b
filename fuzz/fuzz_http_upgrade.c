/* fuzz_http_upgrade.c -- libFuzzer target for the HTTP request-head parser.
 *
 * The input is the bytes a client sent. upg_parse() runs over them, and the
 * result is checked against the parser's contract (http_upgrade.h): head_len
 * within the input and UPG_HEAD_MAX, every view inside the head, names that
 * are tokens, values without surrounding blanks or control bytes, and the
 * incremental promise (a prefix of a head is AGAIN, a prefix that is BAD
 * stays BAD, an OK head is found again in any longer input). A parsed head
 * then goes through everything the worker does with one: header lookup,
 * token lists, the key check and accept key, the framing check, routing,
 * percent-decoding and the user-name check. Any broken invariant abort()s.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "http_route.h"
#include "http_upgrade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int fuzz_is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static unsigned char fuzz_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static int fuzz_ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (fuzz_lower((unsigned char)a[i]) != fuzz_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* v lies inside [base, base + len). Empty views may sit at the end. */
static void fuzz_check_view(const struct upg_str *v, const char *base, size_t len)
{
    FUZZ_CHECK(v->p != NULL);
    FUZZ_CHECK(v->p >= base && v->p <= base + len);
    FUZZ_CHECK(v->len <= len && (size_t)(v->p - base) <= len - v->len);
}

static void fuzz_check_request(const char *buf, size_t len, const struct upg_request *req)
{
    size_t hl = req->head_len;

    FUZZ_CHECK(hl > 0 && hl <= len && hl <= UPG_HEAD_MAX);
    FUZZ_CHECK(buf[hl - 1] == '\n');
    FUZZ_CHECK(req->nheaders <= UPG_HEADERS_MAX);

    fuzz_check_view(&req->method, buf, hl);
    FUZZ_CHECK(req->method.len > 0);
    for (size_t i = 0; i < req->method.len; i++)
        FUZZ_CHECK(fuzz_is_tchar((unsigned char)req->method.p[i]));
    FUZZ_CHECK(req->method.p[req->method.len] == ' ');

    fuzz_check_view(&req->target, buf, hl);
    FUZZ_CHECK(req->target.len > 0 && req->target.p[0] == '/');
    FUZZ_CHECK(req->target.p == req->method.p + req->method.len + 1);
    for (size_t i = 0; i < req->target.len; i++) {
        unsigned char c = (unsigned char)req->target.p[i];
        FUZZ_CHECK(c >= 0x21 && c <= 0x7e);
    }

    fuzz_check_view(&req->version, buf, hl);
    FUZZ_CHECK(req->version.len == 8);
    FUZZ_CHECK(memcmp(req->version.p, "HTTP/1.", 7) == 0);
    FUZZ_CHECK(req->version.p[7] == '0' || req->version.p[7] == '1');
    FUZZ_CHECK(req->version.p == req->target.p + req->target.len + 1);

    for (size_t i = 0; i < req->nheaders; i++) {
        const struct upg_header *h = &req->h[i];

        fuzz_check_view(&h->name, buf, hl);
        fuzz_check_view(&h->value, buf, hl);
        FUZZ_CHECK(h->name.len > 0);
        for (size_t j = 0; j < h->name.len; j++)
            FUZZ_CHECK(fuzz_is_tchar((unsigned char)h->name.p[j]));
        FUZZ_CHECK(h->name.p[h->name.len] == ':');
        FUZZ_CHECK(h->value.p > h->name.p + h->name.len);
        if (i > 0) /* after the previous header's value and its line end */
            FUZZ_CHECK(req->h[i - 1].value.p + req->h[i - 1].value.len < h->name.p);
        if (h->value.len > 0) {
            FUZZ_CHECK(h->value.p[0] != ' ' && h->value.p[0] != '\t');
            FUZZ_CHECK(h->value.p[h->value.len - 1] != ' ' &&
                       h->value.p[h->value.len - 1] != '\t');
        }
        for (size_t j = 0; j < h->value.len; j++) {
            unsigned char c = (unsigned char)h->value.p[j];
            FUZZ_CHECK((c >= 0x20 || c == '\t') && c != 0x7f);
        }
    }
}

/* The result of upg_parse over the prefix buf[0..plen) must agree with the
 * one over buf[0..len) (plen < len). */
static void fuzz_check_prefix(const char *buf, size_t len, int full, const struct upg_request *req,
                              size_t plen)
{
    struct upg_request *pre = malloc(sizeof(*pre));
    int rc;

    FUZZ_CHECK(pre != NULL);
    rc = upg_parse(buf, plen, pre);
    FUZZ_CHECK(rc == UPG_PARSE_OK || rc == UPG_PARSE_AGAIN || rc == UPG_PARSE_BAD ||
               rc == UPG_PARSE_TOO_LARGE);
    if (rc == UPG_PARSE_BAD)
        FUZZ_CHECK(full == UPG_PARSE_BAD);
    if (rc == UPG_PARSE_OK) {
        FUZZ_CHECK(full == UPG_PARSE_OK && pre->head_len == req->head_len);
        FUZZ_CHECK(pre->nheaders == req->nheaders);
    }
    if (full == UPG_PARSE_OK) {
        /* a prefix of an acceptable head can still become that head */
        if (plen >= req->head_len)
            FUZZ_CHECK(rc == UPG_PARSE_OK);
        else
            FUZZ_CHECK(rc == UPG_PARSE_AGAIN);
    }
    if (full == UPG_PARSE_AGAIN)
        FUZZ_CHECK(rc == UPG_PARSE_AGAIN);
    free(pre);
    (void)len;
}

static void fuzz_check_decode(const char *src, size_t len)
{
    char big[UPG_USER_MAX_BYTES + 1], small[4];
    ssize_t n = upg_percent_decode(src, len, big, sizeof(big));
    ssize_t m;
    const char *why;

    FUZZ_CHECK(n >= -1 && n < (ssize_t)sizeof(big));
    if (n == -1) {
        FUZZ_CHECK(big[0] == '\0');
    } else {
        FUZZ_CHECK(big[n] == '\0' && strlen(big) == (size_t)n);
        FUZZ_CHECK((size_t)n <= len);
    }
    /* a smaller buffer gives the same answer or a refusal */
    m = upg_percent_decode(src, len, small, sizeof(small));
    FUZZ_CHECK(m >= -1 && m < (ssize_t)sizeof(small));
    if (m >= 0)
        FUZZ_CHECK(n == m && memcmp(big, small, (size_t)m + 1) == 0);
    else
        FUZZ_CHECK(small[0] == '\0');
    if (n < 0)
        return;
    why = upg_user_name_check(big, (size_t)n);
    if (why == NULL) {
        /* accepted: ASCII bytes are letters, digits, '_', '-' or '.' only */
        FUZZ_CHECK(n > 0 && n <= UPG_USER_MAX_BYTES);
        for (ssize_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)big[i];
            FUZZ_CHECK(c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.');
        }
    } else {
        FUZZ_CHECK(why[0] != '\0');
    }
}

static void fuzz_check_helpers(const struct upg_request *req)
{
    static const char *const names[] = {"Upgrade", "Connection", "Sec-WebSocket-Key",
                                         "Sec-WebSocket-Version", "Host", ""};
    static const char *const tokens[] = {"websocket", "upgrade", "keep-alive", ""};
    const struct upg_str *key;
    static const struct http_route table[] = {
        {"/", HTTP_ROUTE_TEXT, "root", NULL, NULL},
        {"/healthz", HTTP_ROUTE_HEALTH, NULL, NULL, NULL},
        {"/chat/", HTTP_ROUTE_WS, NULL, NULL, NULL},
        {"/echo", HTTP_ROUTE_WS, NULL, NULL, NULL},
    };
    static const struct http_site site = {table, 4, NULL, NULL, NULL, NULL, 0};
    const struct http_route *route;
    struct upg_str user;
    char resp[512];
    size_t rn;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const struct upg_str *v = upg_header_get(req, names[i]);
        if (v == NULL)
            continue;
        /* it is the value of the first header of that name */
        for (size_t j = 0; j < req->nheaders; j++) {
            if (fuzz_ieq(req->h[j].name.p, req->h[j].name.len, names[i], strlen(names[i]))) {
                FUZZ_CHECK(v == &req->h[j].value);
                break;
            }
        }
        for (size_t t = 0; t < sizeof(tokens) / sizeof(tokens[0]); t++) {
            int has = upg_has_token(v, tokens[t]);
            size_t tl = strlen(tokens[t]);
            int found = 0;

            FUZZ_CHECK(has == 0 || has == 1);
            if (tl == 0)
                FUZZ_CHECK(!has);
            for (size_t o = 0; has && o + tl <= v->len && !found; o++)
                found = fuzz_ieq(v->p + o, tl, tokens[t], tl);
            FUZZ_CHECK(!has || found);
        }
    }
    for (size_t j = 0; j < req->nheaders; j++) {
        const struct upg_str *v = upg_header_get(req, "");
        FUZZ_CHECK(v == NULL);
        /* every header name finds a header of that name */
        char name[UPG_HEAD_MAX];
        memcpy(name, req->h[j].name.p, req->h[j].name.len);
        name[req->h[j].name.len] = '\0';
        v = upg_header_get(req, name);
        FUZZ_CHECK(v != NULL && v <= &req->h[j].value);
        /* any value may be offered as a key */
        if (upg_key_valid(&req->h[j].value)) {
            FUZZ_CHECK(req->h[j].value.len == 24);
            FUZZ_CHECK(req->h[j].value.p[22] == '=' && req->h[j].value.p[23] == '=');
        }
    }

    key = upg_header_get(req, "Sec-WebSocket-Key");
    if (key != NULL) {
        char accept[UPG_ACCEPT_LEN + 1];
        memset(accept, 'x', sizeof(accept));
        upg_accept_key(key->p, key->len, accept);
        FUZZ_CHECK(strlen(accept) == UPG_ACCEPT_LEN);
        for (size_t i = 0; i < UPG_ACCEPT_LEN; i++) {
            unsigned char c = (unsigned char)accept[i];
            FUZZ_CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                       (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=');
        }
        rn = upg_response_101(resp, sizeof(resp), accept);
        FUZZ_CHECK(rn < sizeof(resp) && resp[rn] == '\0' && strlen(resp) == rn);
        rn = upg_response_101(resp, 16, accept);
        FUZZ_CHECK(rn < 16 && resp[rn] == '\0');
    }

    /* the worker's table: only the prefix route /chat/ carries a parameter */
    route = http_route_find(&site, &req->target, &user);
    if (route == &table[2]) {
        FUZZ_CHECK(user.p == req->target.p + 6);
        FUZZ_CHECK(user.len <= req->target.len - 6);
        FUZZ_CHECK(memchr(user.p, '?', user.len) == NULL);
        fuzz_check_decode(user.p, user.len);
    } else {
        FUZZ_CHECK(user.p == NULL && user.len == 0);
    }

    /* query parameters: a view after the '?', behind "name=", up to a '&' */
    {
        static const char *const params[] = {"token", "x", "t"};
        const char *q = memchr(req->target.p, '?', req->target.len);

        for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
            struct upg_str v = {NULL, 0};
            size_t nl = strlen(params[i]);

            if (!upg_query_param(&req->target, params[i], &v))
                continue;
            FUZZ_CHECK(q != NULL);
            fuzz_check_view(&v, req->target.p, req->target.len);
            FUZZ_CHECK(v.p > q + nl && v.p[-1] == '=' && memcmp(v.p - 1 - nl, params[i], nl) == 0);
            FUZZ_CHECK(v.p - 1 - nl == q + 1 || v.p[-2 - (ptrdiff_t)nl] == '&');
            FUZZ_CHECK(memchr(v.p, '&', v.len) == NULL);
            fuzz_check_decode(v.p, v.len);
        }
    }

    /* a 101 naming any header value as the protocol: complete when it fits */
    {
        const struct upg_str *proto = upg_header_get(req, "Sec-WebSocket-Protocol");
        static char big[UPG_HEAD_MAX + 512];
        char accept[UPG_ACCEPT_LEN + 1];

        if (proto != NULL) {
            memset(accept, 'A', UPG_ACCEPT_LEN);
            accept[UPG_ACCEPT_LEN] = '\0';
            rn = upg_response_101_protocol(big, sizeof(big), accept, proto->p, proto->len);
            FUZZ_CHECK(rn < sizeof(big) && big[rn] == '\0' && rn >= 4);
            FUZZ_CHECK(memcmp(big + rn - 4, "\r\n\r\n", 4) == 0);
            FUZZ_CHECK(memmem(big, rn, proto->p, proto->len) != NULL || proto->len == 0);
            rn = upg_response_101_protocol(resp, sizeof(resp), accept, proto->p, proto->len);
            FUZZ_CHECK(rn < sizeof(resp) && resp[rn] == '\0');
        }
    }

    /* the canned error responses, including a body taken from the request */
    {
        char body[64];
        size_t bl = req->target.len < sizeof(body) - 1 ? req->target.len : sizeof(body) - 1;

        memcpy(body, req->target.p, bl);
        body[bl] = '\0';
        rn = upg_response(resp, sizeof(resp), 400, "X: y\r\n", body);
        FUZZ_CHECK(rn < sizeof(resp) && resp[rn] == '\0' && strlen(resp) == rn);
        rn = upg_response(resp, 32, (int)req->target.len - 1000, NULL, body);
        FUZZ_CHECK(rn < 32 && resp[rn] == '\0');
    }
}

/* Headers named `name` in req, counted here without the parser's helpers. */
static size_t fuzz_count(const struct upg_request *req, const char *name)
{
    size_t n = 0;

    for (size_t j = 0; j < req->nheaders; j++)
        n += (size_t)fuzz_ieq(req->h[j].name.p, req->h[j].name.len, name, strlen(name));
    return n;
}

/* upg_framing_problem says NULL exactly when the head has at most one Host,
 * key and Content-Length, no Transfer-Encoding, and a Content-Length of "0". */
static void fuzz_check_framing(const struct upg_request *req)
{
    const struct upg_str *cl = upg_header_get(req, "Content-Length");
    int fine = fuzz_count(req, "Host") <= 1 && fuzz_count(req, "Sec-WebSocket-Key") <= 1 &&
               fuzz_count(req, "Transfer-Encoding") == 0 &&
               fuzz_count(req, "Content-Length") <= 1 &&
               (cl == NULL || (cl->len == 1 && cl->p[0] == '0'));
    const char *why = upg_framing_problem(req);

    FUZZ_CHECK((why == NULL) == fine);
    FUZZ_CHECK(why == NULL || why[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct upg_request *req = malloc(sizeof(*req));
    int rc;

    FUZZ_CHECK(req != NULL);
    rc = upg_parse(buf, size, req);
    FUZZ_CHECK(rc == UPG_PARSE_OK || rc == UPG_PARSE_AGAIN || rc == UPG_PARSE_BAD ||
               rc == UPG_PARSE_TOO_LARGE);
    if (rc == UPG_PARSE_AGAIN)
        FUZZ_CHECK(size < UPG_HEAD_MAX);
    if (rc == UPG_PARSE_OK) {
        struct upg_request *again = malloc(sizeof(*again));

        fuzz_check_request(buf, size, req);
        /* the head alone parses to the same head */
        FUZZ_CHECK(again != NULL);
        FUZZ_CHECK(upg_parse(buf, req->head_len, again) == UPG_PARSE_OK);
        FUZZ_CHECK(again->head_len == req->head_len && again->nheaders == req->nheaders);
        free(again);
        fuzz_check_helpers(req);
        fuzz_check_framing(req);
    } else {
        /* not a head: the pure helpers still take any bytes */
        fuzz_check_decode(buf, size < 256 ? size : 256);
        upg_user_name_check(buf, size);
    }
    if (size > 0) {
        fuzz_check_prefix(buf, size, rc, req, size - 1);
        fuzz_check_prefix(buf, size, rc, req, size / 2);
        if (rc == UPG_PARSE_OK && req->head_len > 1)
            fuzz_check_prefix(buf, size, rc, req, req->head_len - 1);
    }
    free(req);
    return 0;
}
