/* fuzz_rsub_reply.c -- libFuzzer target for what the broker's own
 * subscriber connection (broker/rsub.c) reads from Redis: bytes through
 * the reader rsub_reader_new makes (hiredis's, arrays capped), each reply
 * through rsub_reply_parse (broker/rsub_reply.c).
 *
 * Input: one byte giving the chunk size the stream is fed in (0: all at
 * once), then the stream. The same stream is also fed whole to a second
 * reader; abort() when:
 *   - the two readers disagree (reply count, each reply's kind, error);
 *   - a kind does not match an oracle written from the shapes Redis sends
 *     (3-element array or push: "message"/"smessage" + bulk channel + bulk
 *     payload, "(s)subscribe"/"(s)unsubscribe" + bulk channel + integer;
 *     ["pong", x]; +PONG; an error; another status; else OTHER);
 *   - a view is not exactly the reply's own element (channel, payload,
 *     error or status text), or OTHER leaves anything set;
 *   - an array wider than RSUB_REPLY_ELEMENTS_MAX is accepted.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "rsub_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_REPLIES_MAX 256 /* compared between the two readers */

static int fz_is(const redisReply *e, const char *lit)
{
    return e->type == REDIS_REPLY_STRING && e->len == strlen(lit) &&
           memcmp(e->str, lit, e->len) == 0;
}

/* The kind (and sharded) the reply must get, written independently of
 * rsub_reply.c's table. */
static enum rsub_reply_kind fz_oracle(const redisReply *r, int *sharded)
{
    const redisReply *k, *c, *x;

    *sharded = 0;
    if (r->type == REDIS_REPLY_ERROR)
        return RSUB_REPLY_ERROR;
    if (r->type == REDIS_REPLY_STATUS)
        return r->len == 4 && memcmp(r->str, "PONG", 4) == 0 ? RSUB_REPLY_PONG : RSUB_REPLY_STATUS;
    if (r->type != REDIS_REPLY_ARRAY && r->type != REDIS_REPLY_PUSH)
        return RSUB_REPLY_OTHER;
    if (r->elements == 2)
        return fz_is(r->element[0], "pong") ? RSUB_REPLY_PONG : RSUB_REPLY_OTHER;
    if (r->elements != 3)
        return RSUB_REPLY_OTHER;
    k = r->element[0];
    c = r->element[1];
    x = r->element[2];
    if (c->type != REDIS_REPLY_STRING)
        return RSUB_REPLY_OTHER;
    *sharded = fz_is(k, "smessage") || fz_is(k, "ssubscribe") || fz_is(k, "sunsubscribe");
    if ((fz_is(k, "message") || fz_is(k, "smessage")) && x->type == REDIS_REPLY_STRING)
        return RSUB_REPLY_MESSAGE;
    if (x->type != REDIS_REPLY_INTEGER)
        return RSUB_REPLY_OTHER;
    if (fz_is(k, "subscribe") || fz_is(k, "ssubscribe"))
        return RSUB_REPLY_SUBSCRIBED;
    if (fz_is(k, "unsubscribe") || fz_is(k, "sunsubscribe"))
        return RSUB_REPLY_UNSUBSCRIBED;
    return RSUB_REPLY_OTHER;
}

/* No array anywhere in the reply is wider than the cap. */
static void fz_check_width(const redisReply *r)
{
    size_t i;

    if (r->type != REDIS_REPLY_ARRAY && r->type != REDIS_REPLY_PUSH && r->type != REDIS_REPLY_SET &&
        r->type != REDIS_REPLY_MAP && r->type != REDIS_REPLY_ATTR)
        return;
    /* a map's elements are its pairs' keys and values */
    FUZZ_CHECK(r->elements <= (r->type == REDIS_REPLY_MAP || r->type == REDIS_REPLY_ATTR ? 2 : 1) *
                                  (size_t)RSUB_REPLY_ELEMENTS_MAX);
    for (i = 0; i < r->elements; i++)
        fz_check_width(r->element[i]);
}

static enum rsub_reply_kind fz_check_reply(const redisReply *r)
{
    struct rsub_reply rr;
    int sharded;
    enum rsub_reply_kind want = fz_oracle(r, &sharded);

    memset(&rr, 0x5a, sizeof(rr));
    FUZZ_CHECK(rsub_reply_parse(r, &rr) == rr.kind);
    FUZZ_CHECK(rr.kind == want);
    fz_check_width(r);
    switch (rr.kind) {
    case RSUB_REPLY_MESSAGE:
        FUZZ_CHECK(rr.payload == r->element[2]->str && rr.len == r->element[2]->len);
        /* fall through */
    case RSUB_REPLY_SUBSCRIBED:
    case RSUB_REPLY_UNSUBSCRIBED:
        FUZZ_CHECK(rr.sharded == sharded);
        FUZZ_CHECK(rr.channel == r->element[1]->str && rr.chlen == r->element[1]->len);
        if (rr.kind != RSUB_REPLY_MESSAGE)
            FUZZ_CHECK(rr.payload == NULL && rr.len == 0);
        break;
    case RSUB_REPLY_ERROR:
    case RSUB_REPLY_STATUS:
        FUZZ_CHECK(rr.payload == r->str && rr.len == r->len && rr.channel == NULL);
        FUZZ_CHECK(rr.sharded == 0);
        break;
    case RSUB_REPLY_PONG:
    case RSUB_REPLY_OTHER:
        FUZZ_CHECK(rr.channel == NULL && rr.chlen == 0 && rr.payload == NULL && rr.len == 0);
        FUZZ_CHECK(rr.sharded == 0);
        break;
    }
    return rr.kind;
}

/* Feed p in chunks of `chunk` (0: whole), taking replies out after each;
 * record up to FZ_REPLIES_MAX kinds. Returns the reply count, -1 after a
 * protocol error. */
static long fz_run(const char *p, size_t len, size_t chunk, enum rsub_reply_kind *kinds)
{
    redisReader *rd = rsub_reader_new();
    size_t off = 0;
    long n = 0;
    void *reply;

    FUZZ_CHECK(rd != NULL);
    if (chunk == 0)
        chunk = len > 0 ? len : 1;
    while (off < len) {
        size_t k = len - off < chunk ? len - off : chunk;

        FUZZ_CHECK(redisReaderFeed(rd, p + off, k) == REDIS_OK);
        off += k;
        for (;;) {
            if (redisReaderGetReply(rd, &reply) != REDIS_OK) {
                redisReaderFree(rd);
                return -1;
            }
            if (reply == NULL)
                break;
            if (n < FZ_REPLIES_MAX)
                kinds[n] = fz_check_reply(reply);
            n++;
            freeReplyObject(reply);
        }
    }
    redisReaderFree(rd);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static enum rsub_reply_kind split[FZ_REPLIES_MAX], whole[FZ_REPLIES_MAX];
    char *p;
    long ns, nw;

    if (size < 1)
        return 0;
    p = malloc(size > 1 ? size - 1 : 1); /* exact size, for ASan */
    FUZZ_CHECK(p != NULL);
    memcpy(p, data + 1, size - 1);
    ns = fz_run(p, size - 1, data[0], split);
    nw = fz_run(p, size - 1, 0, whole);
    /* the reader never decides on part of a line: both see the same
     * replies, and a protocol error at the same place */
    FUZZ_CHECK(ns == nw);
    if (ns > 0)
        FUZZ_CHECK(memcmp(split, whole,
                          (size_t)(ns < FZ_REPLIES_MAX ? ns : FZ_REPLIES_MAX) * sizeof(split[0])) ==
                   0);
    free(p);
    return 0;
}
