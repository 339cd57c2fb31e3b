/* check_access.c -- Origin allow-list, token lookup (query and subprotocol),
 * query parameters and the 101 with a chosen subprotocol. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "check_run.h"
#include "config.h"
#include "http_upgrade.h"

static struct upg_request req;
static char head[4096];

static void parse(const char *text)
{
    snprintf(head, sizeof(head), "%s", text);
    ck_assert_int_eq(upg_parse(head, strlen(head), &req), UPG_PARSE_OK);
}

static void cfg_with_origins(struct cfg *cfg, const char *origins)
{
    char err[CFG_ERR_LEN];
    char text[512];

    cfg_init(cfg);
    snprintf(text, sizeof(text), "allowed-origins \"%s\"\n", origins);
    ck_assert_int_eq(cfg_parse_buffer(cfg, text, strlen(text), "t.conf", err, sizeof(err)), 0);
    ck_assert_int_eq(cfg_finalize(cfg, err, sizeof(err)), 0);
}

START_TEST(test_origin)
{
    struct cfg cfg;

    cfg_init(&cfg); /* no list: anything goes */
    parse("GET /chat/a HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n");
    ck_assert(access_origin_allowed(&cfg, &req));
    cfg_free(&cfg);

    cfg_with_origins(&cfg, "https://good.example, https://also.example");
    parse("GET /chat/a HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n");
    ck_assert(!access_origin_allowed(&cfg, &req));
    parse("GET /chat/a HTTP/1.1\r\nHost: x\r\nOrigin: https://good.example.evil\r\n\r\n");
    ck_assert(!access_origin_allowed(&cfg, &req));
    parse("GET /chat/a HTTP/1.1\r\nHost: x\r\nOrigin: https://good.exampl\r\n\r\n");
    ck_assert(!access_origin_allowed(&cfg, &req));
    parse("GET /chat/a HTTP/1.1\r\nHost: x\r\nOrigin: https://also.example\r\n\r\n");
    ck_assert(access_origin_allowed(&cfg, &req));
    parse("GET /chat/a HTTP/1.1\r\nHost: x\r\nOrigin: HTTPS://GOOD.EXAMPLE\r\n\r\n");
    ck_assert(access_origin_allowed(&cfg, &req));
    parse("GET /chat/a HTTP/1.1\r\nHost: x\r\n\r\n"); /* not a browser */
    ck_assert(access_origin_allowed(&cfg, &req));
    cfg_free(&cfg);
}
END_TEST

START_TEST(test_query_param)
{
    struct upg_str t, v;

    t = (struct upg_str){"/chat/a?x=1&token=abc.def&y", 27};
    ck_assert(upg_query_param(&t, "token", &v));
    ck_assert_int_eq((int)v.len, 7);
    ck_assert(memcmp(v.p, "abc.def", 7) == 0);
    ck_assert(upg_query_param(&t, "x", &v) && v.len == 1 && v.p[0] == '1');
    ck_assert(!upg_query_param(&t, "y", &v)); /* no '=' */
    ck_assert(!upg_query_param(&t, "tok", &v));
    t = (struct upg_str){"/chat/a", 7};
    ck_assert(!upg_query_param(&t, "token", &v));
    t = (struct upg_str){"/chat/a?xtoken=1", 16};
    ck_assert(!upg_query_param(&t, "token", &v));
}
END_TEST

START_TEST(test_token_find)
{
    struct access_token *t = malloc(sizeof(*t));

    parse("GET /chat/a?token=aa.bb.cc HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(access_token_find(&req, t), 0);
    ck_assert_str_eq(t->token, "aa.bb.cc");
    ck_assert_ptr_null(t->protocol.p);

    parse("GET /chat/a HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Protocol: chat, aa.bb.cc \r\n\r\n");
    ck_assert_int_eq(access_token_find(&req, t), 0);
    ck_assert_str_eq(t->token, "aa.bb.cc");
    ck_assert_int_eq((int)t->protocol.len, 8);
    ck_assert(memcmp(t->protocol.p, "aa.bb.cc", 8) == 0);

    parse("GET /chat/a HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Protocol: chat\r\n\r\n");
    ck_assert_int_eq(access_token_find(&req, t), 0);
    ck_assert_int_eq((int)t->len, 0);

    parse("GET /chat/a?token=%zz HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(access_token_find(&req, t), -1);
    free(t);
}
END_TEST

START_TEST(test_token_check_requires_secret)
{
    struct cfg cfg;
    struct access_token *t = calloc(1, sizeof(*t));
    char err[CFG_ERR_LEN];
    const char *text = "auth-secret 0123456789abcdef0123456789abcdef\n";

    cfg_init(&cfg);
    ck_assert_ptr_null(access_token_check(&cfg, t, "a", 1)); /* open chat */
    ck_assert_int_eq(cfg_parse_buffer(&cfg, text, strlen(text), "t", err, sizeof(err)), 0);
    ck_assert_str_eq(access_token_check(&cfg, t, "a", 1), "token required");
    strcpy(t->token, "aa.bb.cc");
    t->len = 8;
    ck_assert_ptr_nonnull(access_token_check(&cfg, t, "a", 1));
    cfg_free(&cfg);
    free(t);
}
END_TEST

START_TEST(test_101_protocol)
{
    char out[512];
    const char acc[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    size_t n = upg_response_101_protocol(out, sizeof(out), acc, "aa.bb.cc", 8);

    ck_assert_uint_eq(n, strlen(out));
    ck_assert_str_eq(out, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: "
                          "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: aa.bb.cc\r\n\r\n");
    n = upg_response_101_protocol(out, sizeof(out), acc, NULL, 0);
    ck_assert(strstr(out, "Sec-WebSocket-Protocol") == NULL);
    ck_assert(strcmp(out + n - 4, "\r\n\r\n") == 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("access");
    TCase *tc = tcase_create("access");

    tcase_add_test(tc, test_origin);
    tcase_add_test(tc, test_query_param);
    tcase_add_test(tc, test_token_find);
    tcase_add_test(tc, test_token_check_requires_secret);
    tcase_add_test(tc, test_101_protocol);
    suite_add_tcase(s, tc);
    return check_run(s);
}
