/* check_rsub_reply.c -- unit tests for broker/rsub_reply.c: what a reply
 * on the broker's own subscriber connection means. Replies are made the way
 * the connection makes them, RESP bytes through rsub_reader_new's reader:
 * every kind Redis 7 sends (messages, confirmations, PING's two answers,
 * errors), binary channels and payloads, and shapes no server sends (too
 * few or too many elements, a channel that is an integer or an array, a
 * nested array, a kind in capitals, a nil channel), which must come out as
 * OTHER with nothing to read. An array wider than RSUB_REPLY_ELEMENTS_MAX
 * stops the reader with a protocol error. */
#include "rsub_reply.h"

#include <check.h>
#include <string.h>

#include "check_run.h"

/* Parse the one reply in resp (whole, then again fed one byte at a time:
 * the same result); the reply is kept in *keep for the views to stay valid. */
static enum rsub_reply_kind parse(const char *resp, size_t len, struct rsub_reply *out,
                                  redisReply **keep)
{
    redisReader *rd = rsub_reader_new(), *rd1 = rsub_reader_new();
    void *reply = NULL, *reply1 = NULL;
    struct rsub_reply again;
    size_t i;

    ck_assert_ptr_nonnull(rd);
    ck_assert_ptr_nonnull(rd1);
    ck_assert_int_eq(redisReaderFeed(rd, resp, len), REDIS_OK);
    ck_assert_int_eq(redisReaderGetReply(rd, &reply), REDIS_OK);
    ck_assert_msg(reply != NULL, "incomplete reply: %s", resp);
    for (i = 0; i < len; i++) {
        ck_assert_int_eq(redisReaderFeed(rd1, resp + i, 1), REDIS_OK);
        ck_assert_int_eq(redisReaderGetReply(rd1, &reply1), REDIS_OK);
        ck_assert((reply1 != NULL) == (i == len - 1));
    }
    rsub_reply_parse(reply, out);
    rsub_reply_parse(reply1, &again);
    ck_assert_int_eq(again.kind, out->kind);
    ck_assert_int_eq(again.sharded, out->sharded);
    ck_assert_uint_eq(again.chlen, out->chlen);
    ck_assert_uint_eq(again.len, out->len);
    freeReplyObject(reply1);
    redisReaderFree(rd);
    redisReaderFree(rd1);
    *keep = reply;
    return out->kind;
}

#define PARSE(lit, out, keep) parse((lit), sizeof(lit) - 1, (out), (keep))

static void assert_bytes(const char *p, size_t n, const char *want, size_t wn)
{
    ck_assert_uint_eq(n, wn);
    ck_assert(p != NULL);
    ck_assert(memcmp(p, want, wn) == 0);
}

static void assert_other(const char *resp, size_t len)
{
    struct rsub_reply rr;
    redisReply *keep;

    ck_assert_msg(parse(resp, len, &rr, &keep) == RSUB_REPLY_OTHER, "not OTHER: %s", resp);
    ck_assert_ptr_null(rr.channel);
    ck_assert_ptr_null(rr.payload);
    ck_assert_uint_eq(rr.chlen, 0);
    ck_assert_uint_eq(rr.len, 0);
    ck_assert_int_eq(rr.sharded, 0);
    freeReplyObject(keep);
}

#define OTHER(lit) assert_other((lit), sizeof(lit) - 1)

START_TEST(test_message)
{
    struct rsub_reply rr;
    redisReply *keep;

    ck_assert_int_eq(PARSE("*3\r\n$7\r\nmessage\r\n$4\r\nchat\r\n$5\r\nhello\r\n", &rr, &keep),
                     RSUB_REPLY_MESSAGE);
    ck_assert_int_eq(rr.sharded, 0);
    assert_bytes(rr.channel, rr.chlen, "chat", 4);
    assert_bytes(rr.payload, rr.len, "hello", 5);
    freeReplyObject(keep);

    ck_assert_int_eq(PARSE("*3\r\n$8\r\nsmessage\r\n$8\r\nchat:{R}\r\n$0\r\n\r\n", &rr, &keep),
                     RSUB_REPLY_MESSAGE);
    ck_assert_int_eq(rr.sharded, 1);
    assert_bytes(rr.channel, rr.chlen, "chat:{R}", 8);
    ck_assert_uint_eq(rr.len, 0);
    freeReplyObject(keep);
}
END_TEST

/* NUL, CR LF and high bytes in both the channel and the payload */
START_TEST(test_message_binary)
{
    static const char resp[] = "*3\r\n$8\r\nsmessage\r\n$3\r\na\0b\r\n$6\r\n\r\n\0\xff*$\r\n";
    struct rsub_reply rr;
    redisReply *keep;

    ck_assert_int_eq(parse(resp, sizeof(resp) - 1, &rr, &keep), RSUB_REPLY_MESSAGE);
    assert_bytes(rr.channel, rr.chlen, "a\0b", 3);
    assert_bytes(rr.payload, rr.len, "\r\n\0\xff*$", 6);
    freeReplyObject(keep);
}
END_TEST

START_TEST(test_confirmations)
{
    static const struct {
        const char *resp;
        enum rsub_reply_kind kind;
        int sharded;
    } cases[] = {
        {"*3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:1\r\n", RSUB_REPLY_SUBSCRIBED, 0},
        {"*3\r\n$10\r\nssubscribe\r\n$2\r\nc1\r\n:2\r\n", RSUB_REPLY_SUBSCRIBED, 1},
        {"*3\r\n$11\r\nunsubscribe\r\n$2\r\nc1\r\n:0\r\n", RSUB_REPLY_UNSUBSCRIBED, 0},
        /* also what Redis sends by itself when the slot moves away */
        {"*3\r\n$12\r\nsunsubscribe\r\n$2\r\nc1\r\n:0\r\n", RSUB_REPLY_UNSUBSCRIBED, 1},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rsub_reply rr;
        redisReply *keep;

        ck_assert_int_eq(parse(cases[i].resp, strlen(cases[i].resp), &rr, &keep), cases[i].kind);
        ck_assert_int_eq(rr.sharded, cases[i].sharded);
        assert_bytes(rr.channel, rr.chlen, "c1", 2);
        ck_assert_ptr_null(rr.payload);
        freeReplyObject(keep);
    }
}
END_TEST

START_TEST(test_pong_error_status)
{
    struct rsub_reply rr;
    redisReply *keep;

    ck_assert_int_eq(PARSE("*2\r\n$4\r\npong\r\n$0\r\n\r\n", &rr, &keep), RSUB_REPLY_PONG);
    freeReplyObject(keep);
    ck_assert_int_eq(PARSE("+PONG\r\n", &rr, &keep), RSUB_REPLY_PONG);
    freeReplyObject(keep);
    ck_assert_int_eq(PARSE("-MOVED 1234 127.0.0.1:7001\r\n", &rr, &keep), RSUB_REPLY_ERROR);
    assert_bytes(rr.payload, rr.len, "MOVED 1234 127.0.0.1:7001", 25);
    ck_assert_ptr_null(rr.channel);
    freeReplyObject(keep);
    ck_assert_int_eq(PARSE("+OK\r\n", &rr, &keep), RSUB_REPLY_STATUS);
    assert_bytes(rr.payload, rr.len, "OK", 2);
    freeReplyObject(keep);
}
END_TEST

START_TEST(test_odd_shapes)
{
    /* too few, too many */
    OTHER("*0\r\n");
    OTHER("*1\r\n$7\r\nmessage\r\n");
    OTHER("*2\r\n$7\r\nmessage\r\n$1\r\nc\r\n");
    OTHER("*4\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\np\r\n$1\r\nx\r\n");
    OTHER("*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\nc\r\n$1\r\np\r\n"); /* never asked for */
    /* a channel that is not a bulk string */
    OTHER("*3\r\n$7\r\nmessage\r\n:5\r\n$1\r\np\r\n");
    OTHER("*3\r\n$7\r\nmessage\r\n+c\r\n$1\r\np\r\n");
    OTHER("*3\r\n$7\r\nmessage\r\n*1\r\n$1\r\nc\r\n$1\r\np\r\n");
    OTHER("*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"); /* from nothing: nil channel */
    /* a payload or count of the wrong type */
    OTHER("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n:1\r\n");
    OTHER("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n*-1\r\n");
    OTHER("*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n$1\r\n1\r\n");
    /* nested: the kind itself an array */
    OTHER("*3\r\n*1\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\np\r\n");
    OTHER("*2\r\n*0\r\n*0\r\n");
    /* kinds compared exactly, with their length */
    OTHER("*3\r\n$7\r\nMESSAGE\r\n$1\r\nc\r\n$1\r\np\r\n");
    OTHER("*3\r\n$8\r\nmessage\0\r\n$1\r\nc\r\n$1\r\np\r\n");
    OTHER("*3\r\n$6\r\nmessag\r\n$1\r\nc\r\n$1\r\np\r\n");
    OTHER("*3\r\n+message\r\n$1\r\nc\r\n$1\r\np\r\n");
    OTHER("*2\r\n$4\r\nPONG\r\n$0\r\n\r\n");
    /* not arrays */
    OTHER("$7\r\nmessage\r\n");
    OTHER(":1\r\n");
    OTHER("$-1\r\n");
    OTHER("*-1\r\n");
}
END_TEST

START_TEST(test_null_reply)
{
    struct rsub_reply rr;

    ck_assert_int_eq(rsub_reply_parse(NULL, &rr), RSUB_REPLY_OTHER);
    ck_assert_ptr_null(rr.channel);
}
END_TEST

/* RESP3 push frames carry the same arrays (a server put in RESP3 mode) */
START_TEST(test_push)
{
    struct rsub_reply rr;
    redisReply *keep;

    ck_assert_int_eq(PARSE(">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\np\r\n", &rr, &keep),
                     RSUB_REPLY_MESSAGE);
    assert_bytes(rr.payload, rr.len, "p", 1);
    freeReplyObject(keep);
    OTHER("%1\r\n$7\r\nmessage\r\n$1\r\nc\r\n"); /* a map is not an array */
}
END_TEST

START_TEST(test_too_wide)
{
    redisReader *rd = rsub_reader_new();
    void *reply = NULL;
    char resp[32];

    snprintf(resp, sizeof(resp), "*%d\r\n", RSUB_REPLY_ELEMENTS_MAX + 1);
    ck_assert_int_eq(redisReaderFeed(rd, resp, strlen(resp)), REDIS_OK);
    ck_assert_int_eq(redisReaderGetReply(rd, &reply), REDIS_ERR);
    ck_assert_ptr_null(reply);
    redisReaderFree(rd);

    rd = rsub_reader_new();
    ck_assert_int_eq(redisReaderFeed(rd, "*4294967295\r\n", 13), REDIS_OK);
    ck_assert_int_eq(redisReaderGetReply(rd, &reply), REDIS_ERR);
    redisReaderFree(rd);
}
END_TEST

static Suite *rsub_reply_suite(void)
{
    Suite *s = suite_create("rsub_reply");
    TCase *kinds = tcase_create("kinds");
    TCase *odd = tcase_create("malformed");

    tcase_add_test(kinds, test_message);
    tcase_add_test(kinds, test_message_binary);
    tcase_add_test(kinds, test_confirmations);
    tcase_add_test(kinds, test_pong_error_status);
    tcase_add_test(kinds, test_push);
    suite_add_tcase(s, kinds);
    tcase_add_test(odd, test_odd_shapes);
    tcase_add_test(odd, test_null_reply);
    tcase_add_test(odd, test_too_wide);
    suite_add_tcase(s, odd);
    return s;
}

int main(void)
{
    return check_run(rsub_reply_suite());
}
