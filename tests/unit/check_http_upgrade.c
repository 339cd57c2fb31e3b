/* check_http_upgrade.c -- unit tests for worker/http_upgrade.c.
 *
 * The parser is fed whole heads, every prefix of them (AGAIN until complete)
 * and random chunkings; most inputs are parsed from exact-size heap copies so
 * that ASan or valgrind catch any read past len. Accept keys use the RFC 6455
 * sample; names cover ASCII, multibyte UTF-8 and each class of bad UTF-8;
 * framing covers each header an upgrade may carry once or not at all; the
 * route table lookup (http_route.c) is checked on the worker's table.
 */
#include "http_route.h"
#include "http_upgrade.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* A string literal with its length, so tables may hold NUL bytes. */
struct lit {
    const char *s;
    size_t len;
};
#define LIT(x) { x, sizeof(x) - 1 }

/* Chrome's upgrade request (12 header lines); a masked frame may follow. */
static const char browser_req[] =
    "GET /chat/alice HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://localhost:8080\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";
static const char ws_frame[] = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";

/* Firefox-like, with bare LF line ends. */
static const char lf_req[] = "GET /chat/bob?token=x HTTP/1.1\n"
                             "Host: example.com\n"
                             "Connection: keep-alive, Upgrade\n"
                             "Upgrade: websocket\n"
                             "\n";

/* The view v holds exactly the string s (each evaluated once). */
#define ck_assert_upg_str(v, s)                                                                    \
    do {                                                                                           \
        const struct upg_str *v_ = (v);                                                            \
        const char *s_ = (s);                                                                      \
        ck_assert_ptr_nonnull(v_);                                                                 \
        ck_assert_uint_eq(v_->len, strlen(s_));                                                    \
        ck_assert_mem_eq(v_->p, s_, v_->len);                                                      \
    } while (0)

/* Parse an exact-size heap copy of buf[0..len) and return the result only
 * (the views would dangle). */
static int parse_copy(const char *buf, size_t len)
{
    struct upg_request req;
    char *copy = malloc(len > 0 ? len : 1);
    int r;

    ck_assert_ptr_nonnull(copy);
    if (len > 0)
        memcpy(copy, buf, len);
    r = upg_parse(copy, len, &req);
    free(copy);
    return r;
}

static int parse_str(const char *s)
{
    return parse_copy(s, strlen(s));
}

static int same_view(const struct upg_str *a, const struct upg_str *b)
{
    return a->p == b->p && a->len == b->len;
}

/* Two parses of the same buffer agree down to the view pointers. */
static void assert_same_request(const struct upg_request *a, const struct upg_request *b)
{
    ck_assert(same_view(&a->method, &b->method) && same_view(&a->target, &b->target));
    ck_assert(same_view(&a->version, &b->version));
    ck_assert_uint_eq(a->head_len, b->head_len);
    ck_assert_uint_eq(a->nheaders, b->nheaders);
    for (size_t i = 0; i < a->nheaders; i++)
        ck_assert(same_view(&a->h[i].name, &b->h[i].name)
                  && same_view(&a->h[i].value, &b->h[i].value));
}

START_TEST(test_parse_browser)
{
    char buf[sizeof(browser_req) + sizeof(ws_frame)];
    struct upg_request req;
    size_t n = strlen(browser_req);

    ck_assert_int_eq(upg_parse(browser_req, n, &req), UPG_PARSE_OK);
    ck_assert_upg_str(&req.method, "GET");
    ck_assert_upg_str(&req.target, "/chat/alice");
    ck_assert_upg_str(&req.version, "HTTP/1.1");
    ck_assert_uint_eq(req.head_len, n);
    ck_assert_uint_eq(req.nheaders, 12);
    ck_assert_upg_str(&req.h[0].name, "Host");
    ck_assert_upg_str(&req.h[0].value, "localhost:8080");
    ck_assert_upg_str(&req.h[4].name, "User-Agent");
    ck_assert_upg_str(&req.h[4].value,
                      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                      "Chrome/124.0.0.0 Safari/537.36");
    ck_assert_upg_str(&req.h[11].name, "Sec-WebSocket-Extensions");
    ck_assert_upg_str(&req.h[11].value, "permessage-deflate; client_max_window_bits");
    ck_assert_ptr_eq(req.method.p, browser_req); /* views into the caller's buffer */
    ck_assert_ptr_eq(req.target.p, browser_req + 4);

    ck_assert_upg_str(upg_header_get(&req, "sec-websocket-key"), "dGhlIHNhbXBsZSBub25jZQ==");
    ck_assert_upg_str(upg_header_get(&req, "UPGRADE"), "websocket");
    ck_assert_upg_str(upg_header_get(&req, "Sec-WebSocket-Version"), "13");
    ck_assert_ptr_null(upg_header_get(&req, "Sec-WebSocket-Protocol"));
    ck_assert_ptr_null(upg_header_get(&req, "Sec-WebSocket-Ke"));
    ck_assert_ptr_null(upg_header_get(&req, ""));

    ck_assert_int_eq(parse_copy(browser_req, n), UPG_PARSE_OK);
    /* A frame right behind the head is not part of it. */
    memcpy(buf, browser_req, n);
    memcpy(buf + n, ws_frame, sizeof(ws_frame) - 1);
    ck_assert_int_eq(upg_parse(buf, n + sizeof(ws_frame) - 1, &req), UPG_PARSE_OK);
    ck_assert_uint_eq(req.head_len, n);
    ck_assert_uint_eq(req.nheaders, 12);
}
END_TEST

START_TEST(test_parse_lf_and_values)
{
    static const char mixed[] = "\r\n\nOPTIONS /a?b=%20&c HTTP/1.0\r\n"
                                "X-Pad: \t  a \t b  \t\n"
                                "X-Empty:\r\n"
                                "X-Blank:   \t \r\n"
                                "X-Obs-Text: caf\xc3\xa9\r\n"
                                "x-pad: second\r\n"
                                "\n";
    struct upg_request req;

    ck_assert_int_eq(upg_parse(lf_req, strlen(lf_req), &req), UPG_PARSE_OK);
    ck_assert_uint_eq(req.head_len, strlen(lf_req));
    ck_assert_upg_str(&req.target, "/chat/bob?token=x");
    ck_assert_uint_eq(req.nheaders, 3);
    ck_assert_upg_str(upg_header_get(&req, "connection"), "keep-alive, Upgrade");

    /* Mixed line ends, two leading empty lines (consumed: part of head_len). */
    ck_assert_int_eq(upg_parse(mixed, strlen(mixed), &req), UPG_PARSE_OK);
    ck_assert_uint_eq(req.head_len, strlen(mixed));
    ck_assert_upg_str(&req.method, "OPTIONS");
    ck_assert_upg_str(&req.target, "/a?b=%20&c");
    ck_assert_upg_str(&req.version, "HTTP/1.0");
    ck_assert_uint_eq(req.nheaders, 5);
    ck_assert_upg_str(&req.h[0].value, "a \t b");
    ck_assert_upg_str(&req.h[1].value, "");
    ck_assert_upg_str(&req.h[2].value, "");
    ck_assert_upg_str(&req.h[3].value, "caf\xc3\xa9");
    ck_assert_upg_str(upg_header_get(&req, "X-PAD"), "a \t b"); /* first match wins */

    /* A third leading empty line is BAD (at its CR already). */
    ck_assert_int_eq(parse_str("\r\nGET / HTTP/1.1\r\n\r\n"), UPG_PARSE_OK);
    ck_assert_int_eq(parse_str("\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n"), UPG_PARSE_BAD);
    ck_assert_int_eq(parse_str("\n\n\n"), UPG_PARSE_BAD);
    ck_assert_int_eq(parse_str("\r\n\r\n\r"), UPG_PARSE_BAD);
    ck_assert_int_eq(parse_str("\r\n\r\n"), UPG_PARSE_AGAIN);
    ck_assert_int_eq(parse_str("\r\r\n"), UPG_PARSE_BAD);
    ck_assert_int_eq(parse_str(""), UPG_PARSE_AGAIN);
}
END_TEST

START_TEST(test_parse_bad)
{
    /* Request lines: missing, empty, lowercase, HTTP/2, unknown or trailing version. */
    static const struct lit bad_line[] = {
        LIT("GET /\r\n\r\n"), LIT("GET / \r\n\r\n"), LIT("GET / http/1.1\r\n\r\n"),
        LIT("GET / HTTP/2\r\n\r\n"), LIT("GET / HTTP/2.0\r\n\r\n"),
        LIT("GET / HTTP/1.2\r\n\r\n"), LIT("GET / HTTP/1.11\r\n\r\n"),
        LIT("GET / HTTP/1.1 \r\n\r\n"),
        /* Target: a space in it, not starting with '/', asterisk- and absolute-form. */
        LIT("GET /a b HTTP/1.1\r\n\r\n"), LIT("GET chat HTTP/1.1\r\n\r\n"),
        LIT("GET * HTTP/1.1\r\n\r\n"), LIT("GET http://h/ HTTP/1.1\r\n\r\n"),
        LIT("GET /\x7f HTTP/1.1\r\n\r\n"), LIT("GET /\xc3\xa9 HTTP/1.1\r\n\r\n"),
        /* Separators, empty or non-token method, bare CR, NUL bytes. */
        LIT("GET  / HTTP/1.1\r\n\r\n"), LIT(" GET / HTTP/1.1\r\n\r\n"),
        LIT(" / HTTP/1.1\r\n\r\n"), LIT("G(T / HTTP/1.1\r\n\r\n"),
        LIT("GET\t/ HTTP/1.1\r\n\r\n"), LIT("GET / HTTP/1.1\r\r\n\r\n"),
        LIT("GET / HTTP/1.1\rX: y\r\n\r\n"), LIT("G\0T / HTTP/1.1\r\n\r\n"),
        LIT("GET /\0 HTTP/1.1\r\n\r\n"), LIT("GET / HTTP/1\0.1\r\n\r\n"),
    };
    /* Header lines after "GET / HTTP/1.1\r\n": blank before the colon, obs-fold,
     * blank before the first header, CTL/DEL/NUL/CR in a value, empty, non-token or
     * NUL name, no colon, CR without LF. */
    static const struct lit bad_header[] = {
        LIT("Host : x\r\n\r\n"), LIT("Host\t: x\r\n\r\n"), LIT("X: a\r\n b\r\n\r\n"),
        LIT("X: a\r\n\tb\r\n\r\n"), LIT(" Host: x\r\n\r\n"), LIT("X: a\x01z\r\n\r\n"),
        LIT("X: a\x1b[0m\r\n\r\n"), LIT("X: a\x7f\r\n\r\n"), LIT("X: a\0b\r\n\r\n"),
        LIT("X: a\rb\r\n\r\n"), LIT(": x\r\n\r\n"), LIT("Ho(st: x\r\n\r\n"),
        LIT("X\0: ab\r\n\r\n"), LIT("H\xc3\xb6st: x\r\n\r\n"), LIT("Host\r\n\r\n"),
        LIT("Host x\r\n\r\n"), LIT("X: y\r\n\r\r\n"),
    };
    char buf[64] = "GET / HTTP/1.1\r\n";

    for (size_t i = 0; i < NELEM(bad_line); i++)
        ck_assert_msg(parse_copy(bad_line[i].s, bad_line[i].len) == UPG_PARSE_BAD, "line %zu", i);
    for (size_t i = 0; i < NELEM(bad_header); i++) {
        ck_assert_uint_lt(16 + bad_header[i].len, sizeof(buf));
        memcpy(buf + 16, bad_header[i].s, bad_header[i].len);
        ck_assert_msg(parse_copy(buf, 16 + bad_header[i].len) == UPG_PARSE_BAD, "header %zu", i);
    }
}
END_TEST

/* Every proper prefix of a valid head is AGAIN; the whole head is OK and gives
 * the same views as one parse of the complete buffer. */
static void check_every_prefix(const char *head)
{
    struct upg_request whole, part;
    size_t n = strlen(head);

    ck_assert_int_eq(upg_parse(head, n, &whole), UPG_PARSE_OK);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(upg_parse(head, i, &part) == UPG_PARSE_AGAIN, "prefix %zu of %zu", i, n);
        ck_assert_msg(parse_copy(head, i) == UPG_PARSE_AGAIN, "copied prefix %zu of %zu", i, n);
    }
    ck_assert_int_eq(upg_parse(head, n, &part), UPG_PARSE_OK);
    assert_same_request(&whole, &part);
}

/* AGAIN before the offending byte s[bad_at] arrives, BAD from then on. */
static void check_bad_at(const char *s, size_t len, size_t bad_at)
{
    for (size_t i = 0; i <= len; i++) {
        int want = i <= bad_at ? UPG_PARSE_AGAIN : UPG_PARSE_BAD;

        ck_assert_msg(parse_copy(s, i) == want, "prefix %zu: want %d", i, want);
    }
}

START_TEST(test_split_every_prefix)
{
    static const char nul[] = "GET / HTTP/1.1\r\nHost: a\0b";

    check_every_prefix(browser_req);
    check_every_prefix(lf_req);
    check_every_prefix("\r\n\nGET / HTTP/1.0\r\nX:\r\n\n");
    /* A bad byte is refused at once, without waiting for the rest. */
    check_bad_at("GE T / HTTP/1.1\r\n\r\n", 19, 3);
    check_bad_at("GET / HTTP/1.2", 14, 13);
    check_bad_at("GET / HTTP/1.1\r\nX : y", 21, 17);
    check_bad_at(nul, sizeof(nul) - 1, 23);
    check_bad_at("GET / HTTP/1.1\r\nX: y\r\n z", 24, 22);
}
END_TEST

START_TEST(test_split_random_chunks)
{
    /* The caller's accumulate-and-retry loop, chunk sizes from a fixed LCG. */
    char buf[sizeof(browser_req) + sizeof(ws_frame)];
    size_t n = strlen(browser_req), total = n + sizeof(ws_frame) - 1;
    struct upg_request whole, req;
    uint32_t seed = 12345;

    memcpy(buf, browser_req, n);
    memcpy(buf + n, ws_frame, sizeof(ws_frame) - 1);
    ck_assert_int_eq(upg_parse(buf, n, &whole), UPG_PARSE_OK);
    for (int round = 0; round < 50; round++) {
        size_t have = 0;

        do {
            seed = seed * 1103515245u + 12345u;
            have += 1 + (seed >> 16) % 97;
            have = have < total ? have : total;
        } while (have < n && upg_parse(buf, have, &req) == UPG_PARSE_AGAIN);
        ck_assert_uint_ge(have, n);
        ck_assert_int_eq(upg_parse(buf, have, &req), UPG_PARSE_OK);
        assert_same_request(&whole, &req);
    }
}
END_TEST

/* "GET / HTTP/1.1\r\nX: aaa..." of exactly total bytes, no terminator. */
static char *make_long_head(size_t total)
{
    static const char start[] = "GET / HTTP/1.1\r\nX: ";
    char *buf = malloc(total);

    ck_assert_ptr_nonnull(buf);
    memcpy(buf, start, sizeof(start) - 1);
    memset(buf + sizeof(start) - 1, 'a', total - (sizeof(start) - 1));
    return buf;
}

/* A head with nheaders "Hn: v" lines, with or without the final empty line. */
static size_t make_many_headers(char *buf, size_t cap, int nheaders, int complete)
{
    size_t o = (size_t)snprintf(buf, cap, "GET /chat/x HTTP/1.1\r\n");

    for (int i = 0; i < nheaders; i++)
        o += (size_t)snprintf(buf + o, cap - o, "H%d: v\r\n", i);
    if (complete)
        o += (size_t)snprintf(buf + o, cap - o, "\r\n");
    ck_assert_uint_lt(o, cap);
    return o;
}

START_TEST(test_limits_head_size)
{
    struct upg_request req;
    char *buf = make_long_head(UPG_HEAD_MAX + 1);

    /* No end of head within UPG_HEAD_MAX + 1 bytes, nor within UPG_HEAD_MAX. */
    ck_assert_int_eq(upg_parse(buf, UPG_HEAD_MAX + 1, &req), UPG_PARSE_TOO_LARGE);
    ck_assert_int_eq(upg_parse(buf, UPG_HEAD_MAX, &req), UPG_PARSE_TOO_LARGE);
    /* Inside a value the shortest completion is "\n\n". */
    ck_assert_int_eq(upg_parse(buf, UPG_HEAD_MAX - 1, &req), UPG_PARSE_TOO_LARGE);
    ck_assert_int_eq(upg_parse(buf, UPG_HEAD_MAX - 2, &req), UPG_PARSE_AGAIN);

    /* A head of exactly UPG_HEAD_MAX bytes is accepted, one more is not. */
    memcpy(buf + UPG_HEAD_MAX - 4, "\r\n\r\n", 4);
    ck_assert_int_eq(upg_parse(buf, UPG_HEAD_MAX, &req), UPG_PARSE_OK);
    ck_assert_uint_eq(req.head_len, UPG_HEAD_MAX);
    ck_assert_uint_eq(req.h[0].value.len, UPG_HEAD_MAX - 4 - strlen("GET / HTTP/1.1\r\nX: "));
    ck_assert_int_eq(upg_parse(buf, UPG_HEAD_MAX + 1, &req), UPG_PARSE_OK); /* + 1 body byte */
    ck_assert_uint_eq(req.head_len, UPG_HEAD_MAX);
    ck_assert_int_eq(upg_parse(buf, UPG_HEAD_MAX - 1, &req), UPG_PARSE_AGAIN);
    memcpy(buf + UPG_HEAD_MAX - 4, "a\r\n\r\n", 5);
    ck_assert_int_eq(upg_parse(buf, UPG_HEAD_MAX + 1, &req), UPG_PARSE_TOO_LARGE);
    /* Bad syntax within the limit is still BAD. */
    buf[100] = '\x01';
    ck_assert_int_eq(upg_parse(buf, UPG_HEAD_MAX + 1, &req), UPG_PARSE_BAD);
    free(buf);
}
END_TEST

START_TEST(test_limits_header_count)
{
    static char buf[4096];
    struct upg_request req;
    size_t n = make_many_headers(buf, sizeof(buf), UPG_HEADERS_MAX, 1);

    ck_assert_int_eq(upg_parse(buf, n, &req), UPG_PARSE_OK);
    ck_assert_uint_eq(req.nheaders, UPG_HEADERS_MAX);
    ck_assert_upg_str(&req.h[UPG_HEADERS_MAX - 1].name, "H63");
    ck_assert_int_eq(upg_parse(buf, n - 1, &req), UPG_PARSE_AGAIN);
    n = make_many_headers(buf, sizeof(buf), UPG_HEADERS_MAX + 1, 1);
    ck_assert_int_eq(parse_copy(buf, n), UPG_PARSE_TOO_LARGE);
    /* Refused as soon as the 65th header starts. */
    n = make_many_headers(buf, sizeof(buf), UPG_HEADERS_MAX, 0);
    ck_assert_int_eq(parse_copy(buf, n), UPG_PARSE_AGAIN);
    buf[n] = 'H';
    ck_assert_int_eq(parse_copy(buf, n + 1), UPG_PARSE_TOO_LARGE);
}
END_TEST

START_TEST(test_accept_rfc_sample)
{
    char out[UPG_ACCEPT_LEN + 1];

    memset(out, 'X', sizeof(out));
    upg_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    upg_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, out);
    ck_assert_str_eq(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    upg_accept_key("dGhlIHNhbXBsZSBub25jZQ==garbage", 24, out); /* only keylen bytes */
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

START_TEST(test_accept_key)
{
    static const struct lit good[] = {
        LIT("dGhlIHNhbXBsZSBub25jZQ=="), LIT("x3JJHMbDL1EzLkh9GBhXDw=="),
        LIT("AAAAAAAAAAAAAAAAAAAAAA=="), LIT("/+/+/+/+/+/+/+/+/+/+/w=="),
    };
    /* 15, 17 and 18 bytes; URL-safe and other bad characters; non-zero padding
     * bits; bad padding; blanks; empty. */
    static const struct lit bad[] = {
        LIT("MDEyMzQ1Njc4OWFiY2Rl"), LIT("MDEyMzQ1Njc4OWFiY2RlZmc="),
        LIT("MDEyMzQ1Njc4OWFiY2RlZmdo"), LIT("dGhlIHNhbXBsZSBub25-ZQ=="),
        LIT("dGhlIHNhbXBsZSBub25_ZQ=="), LIT("dGhlIHNhbXBsZSBub25 ZQ=="),
        LIT("dGhlIHNhbXBsZSBub25.ZQ=="), LIT("dGhlIHNhbXBsZSBub25\xc3\xa9Q="),
        LIT("dGhlIHNhbXBsZSBub2\0jZQ=="), LIT("dGhlIHNhbXBsZSBub25jZR=="),
        LIT("dGhlIHNhbXBsZSBub25jZQ="), LIT("dGhlIHNhbXBsZSBub25jZQ"),
        LIT("dGhlIHNhbXBsZSBub25jZQ=A"), LIT("dGhlIHNhbXBsZSBub25jZ==="),
        LIT("dGhlIHNhbXBsZSBub25j=Q=="), LIT("dGhlIHNhbXBsZSBub25jZQ==="),
        LIT(" dGhlIHNhbXBsZSBub25jZQ=="), LIT(""),
    };
    struct upg_str k = { NULL, 24 };

    ck_assert_int_eq(upg_key_valid(&k), 0);
    ck_assert_int_eq(upg_key_valid(NULL), 0);
    for (size_t i = 0; i < NELEM(good); i++) {
        k = (struct upg_str){ good[i].s, good[i].len };
        ck_assert_msg(upg_key_valid(&k), "good[%zu] refused", i);
    }
    for (size_t i = 0; i < NELEM(bad); i++) {
        k = (struct upg_str){ bad[i].s, bad[i].len };
        ck_assert_msg(!upg_key_valid(&k), "bad[%zu] accepted", i);
    }
}
END_TEST

START_TEST(test_accept_has_token)
{
    static const struct {
        const char *value, *token;
        int want;
    } cases[] = {
        { "Upgrade", "upgrade", 1 },           { "keep-alive, Upgrade", "upgrade", 1 },
        { "keep-alive,Upgrade", "Upgrade", 1 }, { "Upgrade, keep-alive", "keep-alive", 1 },
        { " \tUPGRADE\t ,x", "upgrade", 1 },    { ",, ,upgrade,", "upgrade", 1 },
        { "websocket", "WebSocket", 1 },        { "keep-alive", "upgrade", 0 },
        { "upgraded", "upgrade", 0 },           { "x-upgrade", "upgrade", 0 },
        { "up grade", "upgrade", 0 },           { "upgrade;q=1", "upgrade", 0 },
        { "", "upgrade", 0 },                   { ", ,", "upgrade", 0 },
        { "a, b", "", 0 },
    };
    struct upg_str cut = { "close, upgrade", 5 };

    for (size_t i = 0; i < NELEM(cases); i++) {
        struct upg_str v = { cases[i].value, strlen(cases[i].value) };

        ck_assert_msg(!!upg_has_token(&v, cases[i].token) == cases[i].want, "case %zu", i);
    }
    ck_assert_int_eq(upg_has_token(&cut, "upgrade"), 0); /* only value->len bytes count */
    ck_assert_int_ne(upg_has_token(&cut, "close"), 0);
    ck_assert_int_eq(upg_has_token(NULL, "upgrade"), 0);
}
END_TEST

static char *repeat(const char *unit, int times)
{
    size_t ulen = strlen(unit);
    char *s = malloc(ulen * (size_t)times + 1);

    ck_assert_ptr_nonnull(s);
    for (int i = 0; i < times; i++)
        memcpy(s + ulen * (size_t)i, unit, ulen);
    s[ulen * (size_t)times] = '\0';
    return s;
}

/* Characters of 1, 3 and 4 bytes. */
static const char *const name_units[] = { "a", "\xe6\x97\xa5", "\xf0\x9f\x98\x80" };

/* upg_user_name_check on an exact-size heap copy. */
static const char *name_check(const char *s, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);
    const char *why;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, s, len);
    why = upg_user_name_check(copy, len);
    free(copy);
    return why;
}

START_TEST(test_names_valid)
{
    /* ASCII; Zoë, 日本語, 😀; U+00A1 (just above NBSP), U+0800 (smallest 3-byte),
     * U+D7FF and U+E000 (around the surrogates), U+2010, U+FFFD, U+10000, U+10FFFF. */
    static const char *const ok[] = {
        "foo", "a.b-c_d", "A", "123", "...", "Zo\xc3\xab", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
        "\xf0\x9f\x98\x80", "\xc2\xa1", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",
        "\xe2\x80\x90", "\xef\xbf\xbd", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf",
    };

    for (size_t i = 0; i < NELEM(ok); i++) {
        const char *why = name_check(ok[i], strlen(ok[i]));

        ck_assert_msg(why == NULL, "ok[%zu] refused: %s", i, why);
    }
    /* Exactly 32 characters: 32, 96 and UPG_USER_MAX_BYTES bytes. */
    for (size_t i = 0; i < NELEM(name_units); i++) {
        char *s = repeat(name_units[i], UPG_USER_MAX_CHARS);

        ck_assert_ptr_null(name_check(s, strlen(s)));
        free(s);
    }
}
END_TEST

#define R_CTL "user name contains a control character"
#define R_SPC "user name contains a Unicode space or separator"
#define R_INV "user name contains an invisible formatting character"
#define R_UTF "user name is not valid UTF-8"

START_TEST(test_names_invalid)
{
    static const struct {
        struct lit name;
        const char *reason;
    } bad[] = {
        { LIT(""), "user name is empty" },
        { LIT("a:b"), "user name contains ':'" },
        { LIT("a/b"), "user name contains '/'" },
        { LIT("%41"), "user name contains '%'" },
        { LIT("a b"), "user name contains a space" },
        { LIT("'"), "user name contains \"'\"" },
        { LIT("\\"), "user name contains '\\'" },
        /* HTAB, DEL, NUL, CR LF, U+0085 */
        { LIT("a\tb"), R_CTL }, { LIT("a\x7f"), R_CTL }, { LIT("a\0b"), R_CTL },
        { LIT("\r\n"), R_CTL }, { LIT("a\xc2\x85"), R_CTL },
        /* U+00A0, U+3000, U+1680, U+2002, U+2028, U+202F, U+205F */
        { LIT("\xc2\xa0"), R_SPC }, { LIT("a\xe3\x80\x80z"), R_SPC },
        { LIT("\xe1\x9a\x80"), R_SPC }, { LIT("\xe2\x80\x82"), R_SPC },
        { LIT("\xe2\x80\xa8"), R_SPC }, { LIT("\xe2\x80\xaf"), R_SPC },
        { LIT("\xe2\x81\x9f"), R_SPC },
        /* U+200B, U+200D, U+202E, U+2060, U+FEFF */
        { LIT("a\xe2\x80\x8b"), R_INV }, { LIT("\xe2\x80\x8d"), R_INV },
        { LIT("\xe2\x80\xae"), R_INV }, { LIT("\xe2\x81\xa0"), R_INV },
        { LIT("\xef\xbb\xbf"), R_INV },
        /* Overlongs (2, 3, 4 bytes), surrogates, above U+10FFFF, 5-byte form. */
        { LIT("\xc0\xaf"), R_UTF }, { LIT("\xc1\xbf"), R_UTF }, { LIT("\xe0\x80\xaf"), R_UTF },
        { LIT("\xe0\x9f\xbf"), R_UTF }, { LIT("\xf0\x80\x80\xaf"), R_UTF },
        { LIT("\xf0\x8f\xbf\xbf"), R_UTF }, { LIT("\xed\xa0\x80"), R_UTF },
        { LIT("\xed\xbf\xbf"), R_UTF }, { LIT("\xf4\x90\x80\x80"), R_UTF },
        { LIT("\xf5\x80\x80\x80"), R_UTF }, { LIT("\xf8\x88\x80\x80\x80"), R_UTF },
        /* Truncated; stray continuation; ASCII or lead byte as continuation; FE, FF. */
        { LIT("\xe6\x97"), R_UTF }, { LIT("ab\xf0\x9f\x98"), R_UTF }, { LIT("a\xe6"), R_UTF },
        { LIT("\x80"), R_UTF }, { LIT("a\xbf" "b"), R_UTF }, { LIT("\xe6\x97" "a"), R_UTF },
        { LIT("\xe6" "a\xa5"), R_UTF }, { LIT("\xc3\xc3\xa9"), R_UTF }, { LIT("\xfe"), R_UTF },
        { LIT("\xff"), R_UTF },
    };

    for (size_t i = 0; i < NELEM(bad); i++) {
        const char *why = name_check(bad[i].name.s, bad[i].name.len);

        ck_assert_msg(why != NULL, "bad[%zu] accepted", i);
        ck_assert_msg(strcmp(why, bad[i].reason) == 0, "bad[%zu]: \"%s\"", i, why);
    }
    /* 33 characters: one too many, whatever their size. */
    for (size_t i = 0; i < NELEM(name_units); i++) {
        char *s = repeat(name_units[i], UPG_USER_MAX_CHARS + 1);

        ck_assert_str_eq(name_check(s, strlen(s)), "user name is longer than 32 characters");
        free(s);
    }
    ck_assert_str_eq(upg_user_name_check(NULL, 0), "user name is empty");
    ck_assert_ptr_null(upg_user_name_check("a:", 1)); /* len bounds the check */
}
END_TEST

START_TEST(test_names_every_ascii)
{
    for (int c = 0; c < 128; c++) {
        char s[3] = { 'x', (char)c, 'y' };
        const char *why = upg_user_name_check(s, sizeof(s));
        int allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                      || c == '_' || c == '-' || c == '.';

        if (allowed) {
            ck_assert_msg(why == NULL, "0x%02x refused: %s", c, why);
            continue;
        }
        ck_assert_msg(why != NULL, "0x%02x accepted", c);
        ck_assert_msg(strncmp(why, "user name contains ", 19) == 0, "0x%02x: %s", c, why);
        if (c > 0x20 && c < 0x7f) /* printable ones are named */
            ck_assert_msg(strchr(why + 19, c) != NULL, "0x%02x: %s", c, why);
        else /* the others are described: "a space", "a control character" */
            ck_assert_msg(strchr(why + 19, ' ') != NULL, "0x%02x: %s", c, why);
    }
}
END_TEST

START_TEST(test_percent_decode)
{
    static const struct {
        const char *src, *want; /* want NULL: -1 */
    } cases[] = {
        { "%66%6F%6F", "foo" }, { "%e6%97%a5", "\xe6\x97\xa5" }, { "%E6%97%A5x", "\xe6\x97\xa5x" },
        { "plain", "plain" }, { "a+b", "a+b" }, { "%2B%25%2f", "+%/" }, { "%2541", "%41" },
        { "", "" }, { "%g1", NULL }, { "%1g", NULL }, { "%4", NULL }, { "%", NULL },
        { "a%", NULL }, { "%%41", NULL }, { "%-1", NULL }, { "% 1", NULL }, { "%00", NULL },
        { "a%00b", NULL },
    };
    char out[64];

    for (size_t i = 0; i < NELEM(cases); i++) {
        ssize_t n;

        strcpy(out, "junk");
        n = upg_percent_decode(cases[i].src, strlen(cases[i].src), out, sizeof(out));
        if (cases[i].want == NULL) {
            ck_assert_msg(n == -1, "case %zu decoded", i);
            ck_assert_msg(out[0] == '\0', "case %zu left output", i);
        } else {
            ck_assert_msg(n == (ssize_t)strlen(cases[i].want), "case %zu: %zd", i, n);
            ck_assert_str_eq(out, cases[i].want);
        }
    }
    ck_assert_int_eq(upg_percent_decode("a\0b", 3, out, sizeof(out)), -1); /* literal NUL */
    ck_assert_int_eq(upg_percent_decode("ab%41", 2, out, sizeof(out)), 2); /* len bounds */
    ck_assert_str_eq(out, "ab");
    ck_assert_int_eq(upg_percent_decode("%41", 2, out, sizeof(out)), -1);

    /* Output limits: the NUL must fit too; nothing is written at dst[dstcap]. */
    memset(out, 'X', sizeof(out));
    ck_assert_int_eq(upg_percent_decode("foo", 3, out, 4), 3);
    ck_assert_str_eq(out, "foo");
    ck_assert_int_eq(out[4], 'X');
    memset(out, 'X', sizeof(out));
    ck_assert_int_eq(upg_percent_decode("foo", 3, out, 3), -1);
    ck_assert_int_eq(out[0], '\0');
    ck_assert_int_eq(out[3], 'X');
    ck_assert_int_eq(upg_percent_decode("%66%6F%6F", 9, out, 3), -1);
    ck_assert_int_eq(upg_percent_decode("%66%6F%6F", 9, out, 4), 3);
    ck_assert_int_eq(upg_percent_decode("", 0, out, 1), 0);
    ck_assert_int_eq(upg_percent_decode("a", 1, out, 1), -1);
    memset(out, 'X', sizeof(out));
    ck_assert_int_eq(upg_percent_decode("", 0, out, 0), -1);
    ck_assert_int_eq(out[0], 'X');
}
END_TEST

/* The worker's table (worker_routes): which route a target finds, and the
 * view of a prefix route's parameter. */
START_TEST(test_route_targets)
{
    enum { NONE, ROOT, HEALTH, CHAT, ECHO };
    static const struct http_route table[] = {
        { "/", HTTP_ROUTE_TEXT, "root", NULL, NULL },
        { "/healthz", HTTP_ROUTE_HEALTH, NULL, NULL, NULL },
        { "/chat/", HTTP_ROUTE_WS, NULL, NULL, NULL },
        { "/echo", HTTP_ROUTE_WS, NULL, NULL, NULL },
    };
    static const struct http_site site = { table, NELEM(table), NULL, NULL, NULL, NULL, 0 };
    static const struct {
        const char *target;
        int want;
        const char *user; /* for CHAT */
    } cases[] = {
        { "/", ROOT, NULL },
        { "/?x=1", ROOT, NULL },
        { "/?", ROOT, NULL },
        { "/chat/foo", CHAT, "foo" },
        { "/chat/foo?token=x", CHAT, "foo" },
        { "/chat/", CHAT, "" },
        { "/chat/?x", CHAT, "" },
        { "/chat/a/b", CHAT, "a/b" },
        { "/chat/%E6%97%A5?a?b", CHAT, "%E6%97%A5" },
        { "/chatx/foo", NONE, NULL },
        { "/chat", NONE, NULL },
        { "/chat?x=/chat/foo", NONE, NULL },
        { "/echo", ECHO, NULL },
        { "/echo?x=1", ECHO, NULL },
        { "/echo/x", NONE, NULL },
        { "/healthz", HEALTH, NULL },
        { "/healthz/x", NONE, NULL },
        { "/CHAT/foo", NONE, NULL },
        { "//", NONE, NULL },
        { "", NONE, NULL },
    };
    struct upg_request req;
    struct upg_str user, t;
    const struct http_route *r;
    char name[UPG_USER_MAX_BYTES + 1];

    for (size_t i = 0; i < NELEM(cases); i++) {
        t = (struct upg_str){ cases[i].target, strlen(cases[i].target) };
        r = http_route_find(&site, &t, &user);
        ck_assert_msg((r == NULL ? NONE : (int)(r - table) + 1) == cases[i].want, "%s",
                      cases[i].target);
        if (cases[i].want == CHAT) {
            ck_assert_upg_str(&user, cases[i].user);
            ck_assert_ptr_eq(user.p, t.p + 6); /* a view into the target */
        } else {
            ck_assert(user.p == NULL && user.len == 0);
        }
    }

    /* From a parsed request to a checked name. */
    ck_assert_int_eq(upg_parse(lf_req, strlen(lf_req), &req), UPG_PARSE_OK);
    ck_assert_ptr_eq(http_route_find(&site, &req.target, &user), &table[2]);
    ck_assert_int_eq(upg_percent_decode(user.p, user.len, name, sizeof(name)), 3);
    ck_assert_str_eq(name, "bob");
    ck_assert_ptr_null(upg_user_name_check(name, 3));
}
END_TEST

/* An upgrade request without any framing problem; tests append header
 * lines and the final empty line. */
#define FRAMING_HEAD                                                                               \
    "GET /chat/x HTTP/1.1\r\n"                                                                     \
    "Host: example.com\r\n"                                                                        \
    "Upgrade: websocket\r\n"                                                                       \
    "Connection: Upgrade\r\n"                                                                      \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                                              \
    "Sec-WebSocket-Version: 13\r\n"

#define R_DUP_HOST "duplicate Host header"
#define R_DUP_KEY "duplicate Sec-WebSocket-Key header"
#define R_TE "Transfer-Encoding not allowed on an upgrade"
#define R_DUP_CL "duplicate Content-Length header"
#define R_CL "Content-Length must be 0 on an upgrade"

struct framing_case {
    const char *extra; /* header lines after FRAMING_HEAD */
    const char *want;  /* NULL: no problem */
};

/* upg_framing_problem of FRAMING_HEAD + extra + the final empty line,
 * parsed from an exact-size heap copy. */
static const char *framing(const char *extra)
{
    struct upg_request req;
    size_t n = strlen(FRAMING_HEAD) + strlen(extra) + 2;
    char *head = malloc(n + 1);
    const char *why;

    ck_assert_ptr_nonnull(head);
    snprintf(head, n + 1, "%s%s\r\n", FRAMING_HEAD, extra);
    ck_assert_msg(upg_parse(head, n, &req) == UPG_PARSE_OK, "does not parse: %s", extra);
    why = upg_framing_problem(&req);
    free(head);
    return why;
}

static void check_framing(const struct framing_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *why = framing(cases[i].extra);

        if (cases[i].want == NULL)
            ck_assert_msg(why == NULL, "\"%s\": refused with \"%s\"", cases[i].extra, why);
        else
            ck_assert_msg(why != NULL && strcmp(why, cases[i].want) == 0,
                          "\"%s\": \"%s\", want \"%s\"", cases[i].extra, why ? why : "(none)",
                          cases[i].want);
    }
}

START_TEST(test_framing_fine)
{
    static const struct framing_case cases[] = {
        { "", NULL },
        { "Content-Length: 0\r\n", NULL },
        { "content-length:   0  \r\n", NULL }, /* the parser trims the blanks */
        /* names that only look alike count as other headers */
        { "X-Host: a\r\nHostname: b\r\n", NULL },
        { "Sec-WebSocket-Key2: 12 34\r\nSec-WebSocket-Key1: 56\r\n", NULL },
        { "X-Transfer-Encoding: chunked\r\nContent-Lengths: 5\r\n", NULL },
        /* the same header twice that is not one of the four */
        { "Cookie: a=1\r\nCookie: b=2\r\nOrigin: http://a\r\nOrigin: http://b\r\n", NULL },
    };
    struct upg_request req;

    check_framing(cases, NELEM(cases));
    ck_assert_int_eq(upg_parse(browser_req, strlen(browser_req), &req), UPG_PARSE_OK);
    ck_assert_ptr_null(upg_framing_problem(&req));
    /* a missing Host or key is not this check's to report */
    ck_assert_int_eq(upg_parse(lf_req, strlen(lf_req), &req), UPG_PARSE_OK);
    ck_assert_ptr_null(upg_framing_problem(&req));
    ck_assert_int_eq(upg_parse("GET / HTTP/1.1\r\n\r\n", 18, &req), UPG_PARSE_OK);
    ck_assert_ptr_null(upg_framing_problem(&req));
    ck_assert_ptr_null(upg_framing_problem(NULL));
}
END_TEST

START_TEST(test_framing_duplicates)
{
    static const struct framing_case cases[] = {
        { "Host: other.example\r\n", R_DUP_HOST },
        { "host: example.com\r\n", R_DUP_HOST }, /* the same value, any case */
        { "HOST:\r\n", R_DUP_HOST },
        { "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n", R_DUP_KEY },
        { "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n", R_DUP_KEY },
        { "SEC-WEBSOCKET-KEY: not-a-key\r\n", R_DUP_KEY },
        { "Content-Length: 0\r\nContent-Length: 0\r\n", R_DUP_CL },
        { "Content-Length: 0\r\ncontent-length: 5\r\n", R_DUP_CL },
        /* the order of the checks, not of the lines, picks the reason */
        { "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nHost: b\r\n", R_DUP_HOST },
        { "Content-Length: 0\r\nContent-Length: 1\r\nSec-WebSocket-Key: a\r\n", R_DUP_KEY },
    };
    static char buf[4096];
    struct upg_request req;
    size_t n;

    check_framing(cases, NELEM(cases));
    /* a second Host as the last of UPG_HEADERS_MAX headers is found too */
    n = (size_t)snprintf(buf, sizeof(buf), "GET /chat/x HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < UPG_HEADERS_MAX - 2; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "H%d: v\r\n", i);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "Host: b\r\n\r\n");
    ck_assert_uint_lt(n, sizeof(buf));
    ck_assert_int_eq(upg_parse(buf, n, &req), UPG_PARSE_OK);
    ck_assert_uint_eq(req.nheaders, UPG_HEADERS_MAX);
    ck_assert_str_eq(upg_framing_problem(&req), R_DUP_HOST);
}
END_TEST

/* A body on an upgrade: any Transfer-Encoding, any Content-Length but
 * exactly "0" (strict: no leading zeros, signs or lists). */
START_TEST(test_framing_body)
{
    static const struct framing_case cases[] = {
        { "Transfer-Encoding: chunked\r\n", R_TE },
        { "transfer-encoding: identity\r\n", R_TE },
        { "TRANSFER-ENCODING: gzip, chunked\r\n", R_TE },
        { "Transfer-Encoding:\r\n", R_TE },
        { "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", R_TE },
        { "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", R_TE },
        { "Content-Length: 5\r\n", R_CL },
        { "content-length: 1\r\n", R_CL },
        { "Content-Length: 00\r\n", R_CL },
        { "Content-Length: 000\r\n", R_CL },
        { "Content-Length: +0\r\n", R_CL },
        { "Content-Length: -0\r\n", R_CL },
        { "Content-Length: 0, 0\r\n", R_CL },
        { "Content-Length: 0x0\r\n", R_CL },
        { "Content-Length: 0.0\r\n", R_CL },
        { "Content-Length: 0 0\r\n", R_CL },
        { "Content-Length:\r\n", R_CL },
        { "Content-Length: 18446744073709551616\r\n", R_CL }, /* 2^64: 0 if it wrapped */
    };

    check_framing(cases, NELEM(cases));
}
END_TEST

/* Content-Length equals the number of bytes after the blank line. */
static void assert_content_length(const char *resp, size_t len)
{
    const char *cl = strstr(resp, "\r\nContent-Length: ");
    const char *end = strstr(resp, "\r\n\r\n");

    ck_assert_ptr_nonnull(cl);
    ck_assert_ptr_nonnull(end);
    ck_assert_uint_eq(strtoul(cl + 18, NULL, 10), len - (size_t)(end + 4 - resp));
}

START_TEST(test_responses_exact)
{
    static const char want400[] =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 23\r\nConnection: close\r\n\r\nuser name contains ':'\n";
    static const char want426[] =
        "HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 30\r\nConnection: close\r\nSec-WebSocket-Version: 13\r\n\r\n"
        "unsupported WebSocket version\n";
    static const char want101[] =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    char accept[UPG_ACCEPT_LEN + 1];
    char out[512];
    size_t n;

    n = upg_response(out, sizeof(out), 400, NULL, "user name contains ':'");
    ck_assert_str_eq(out, want400);
    ck_assert_uint_eq(n, sizeof(want400) - 1);
    assert_content_length(out, n);

    n = upg_response(out, sizeof(out), 426, "Sec-WebSocket-Version: 13\r\n",
                     "unsupported WebSocket version");
    ck_assert_str_eq(out, want426);
    ck_assert_uint_eq(n, sizeof(want426) - 1);
    assert_content_length(out, n);

    upg_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, accept);
    n = upg_response_101(out, sizeof(out), accept);
    ck_assert_str_eq(out, want101);
    ck_assert_uint_eq(n, sizeof(want101) - 1);
}
END_TEST

START_TEST(test_responses_status_lines)
{
    static const struct {
        int status;
        const char *line;
    } cases[] = {
        { 200, "200 OK" }, { 400, "400 Bad Request" }, { 403, "403 Forbidden" },
        { 404, "404 Not Found" }, { 405, "405 Method Not Allowed" },
        { 426, "426 Upgrade Required" }, { 429, "429 Too Many Requests" },
        { 431, "431 Request Header Fields Too Large" }, { 503, "503 Service Unavailable" },
        { 418, "418 Error" }, { 42, "500 Error" }, { 1000, "500 Error" },
    };
    static const char *const bodies[] = { "", "x", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" };
    char out[512], line[64];
    size_t n;

    for (size_t i = 0; i < NELEM(cases); i++) {
        n = upg_response(out, sizeof(out), cases[i].status, NULL, "body");
        snprintf(line, sizeof(line), "HTTP/1.1 %s\r\n", cases[i].line);
        ck_assert_msg(strncmp(out, line, strlen(line)) == 0, "%s", out);
        ck_assert_uint_eq(n, strlen(out));
        assert_content_length(out, n);
    }
    for (size_t i = 0; i < NELEM(bodies); i++) {
        n = upg_response(out, sizeof(out), 404, NULL, bodies[i]);
        assert_content_length(out, n);
        ck_assert_str_eq(strstr(out, "\r\n\r\n") + 4 + strlen(bodies[i]), "\n");
    }
    /* A NULL body is an empty one: just "\n". */
    n = upg_response(out, sizeof(out), 503, NULL, NULL);
    ck_assert_uint_eq(n, strlen(out));
    ck_assert_ptr_nonnull(strstr(out, "Content-Length: 1\r\n"));
    ck_assert_str_eq(out + n - 5, "\r\n\r\n\n");
}
END_TEST

/* out holds n = cap - 1 bytes of full and a NUL; out[cap] is untouched. */
static void assert_cut(const char *out, size_t n, const char *full, size_t cap)
{
    ck_assert_uint_eq(n, cap - 1);
    ck_assert_mem_eq(out, full, n);
    ck_assert_int_eq(out[n], '\0');
    ck_assert_int_eq(out[cap], 'X');
}

START_TEST(test_responses_truncation)
{
    static const char body[] = "user name is empty";
    static const char accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    char full[512], out[512];
    size_t len = upg_response(full, sizeof(full), 400, NULL, body), n;

    memset(out, 'X', sizeof(out));
    n = upg_response(out, 10, 400, NULL, body);
    assert_cut(out, n, full, 10);
    memset(out, 'X', sizeof(out));
    n = upg_response(out, len + 1, 400, NULL, body); /* exact fit */
    assert_cut(out, n, full, len + 1);
    memset(out, 'X', sizeof(out));
    n = upg_response(out, len, 400, NULL, body); /* one byte short */
    assert_cut(out, n, full, len);
    memset(out, 'X', sizeof(out));
    n = upg_response(out, 1, 400, NULL, body);
    assert_cut(out, n, full, 1);
    ck_assert_uint_eq(upg_response(NULL, 0, 400, NULL, body), 0);

    len = upg_response_101(full, sizeof(full), accept);
    memset(out, 'X', sizeof(out));
    n = upg_response_101(out, 20, accept);
    assert_cut(out, n, full, 20);
    memset(out, 'X', sizeof(out));
    n = upg_response_101(out, len + 1, accept); /* exact fit */
    assert_cut(out, n, full, len + 1);
    memset(out, 'X', sizeof(out));
    n = upg_response_101(out, len, accept); /* one byte short */
    assert_cut(out, n, full, len);
    memset(out, 'X', sizeof(out));
    n = upg_response_101(out, 1, accept);
    assert_cut(out, n, full, 1);
}
END_TEST

static TCase *add_tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);

    suite_add_tcase(s, tc);
    return tc;
}

static Suite *http_upgrade_suite(void)
{
    Suite *s = suite_create("http_upgrade");
    TCase *tc;

    tc = add_tcase(s, "parse");
    tcase_add_test(tc, test_parse_browser);
    tcase_add_test(tc, test_parse_lf_and_values);
    tcase_add_test(tc, test_parse_bad);
    tc = add_tcase(s, "split");
    tcase_add_test(tc, test_split_every_prefix);
    tcase_add_test(tc, test_split_random_chunks);
    tc = add_tcase(s, "limits");
    tcase_add_test(tc, test_limits_head_size);
    tcase_add_test(tc, test_limits_header_count);
    tc = add_tcase(s, "accept");
    tcase_add_test(tc, test_accept_rfc_sample);
    tcase_add_test(tc, test_accept_key);
    tcase_add_test(tc, test_accept_has_token);
    tc = add_tcase(s, "names");
    tcase_add_test(tc, test_names_valid);
    tcase_add_test(tc, test_names_invalid);
    tcase_add_test(tc, test_names_every_ascii);
    tc = add_tcase(s, "percent");
    tcase_add_test(tc, test_percent_decode);
    tc = add_tcase(s, "route");
    tcase_add_test(tc, test_route_targets);
    tc = add_tcase(s, "framing");
    tcase_add_test(tc, test_framing_fine);
    tcase_add_test(tc, test_framing_duplicates);
    tcase_add_test(tc, test_framing_body);
    tc = add_tcase(s, "responses");
    tcase_add_test(tc, test_responses_exact);
    tcase_add_test(tc, test_responses_status_lines);
    tcase_add_test(tc, test_responses_truncation);
    return s;
}

int main(void)
{
    return check_run(http_upgrade_suite());
}
