/* rsub_reply.c -- the meaning of one reply on a subscriber connection.
 *
 * In RESP2 a subscribed connection gets arrays whose first element names
 * the kind: [kind, channel, payload] for messages, [kind, channel, count]
 * for confirmations, ["pong", arg] for PING. The kind is compared with its
 * length (a bulk string may hold a NUL), every element's type is checked
 * before it is read, and anything else is OTHER: Redis may grow kinds we do
 * not subscribe to (pmessage), and ignoring them is safer than guessing.
 */
#include "rsub_reply.h"

#include <string.h>

/* The kinds of 3-element arrays we asked for, and the type of their third
 * element (the payload, or the subscription count). */
static const struct rsub_reply_shape {
    const char *name;
    enum rsub_reply_kind kind;
    int sharded;
    int third_type;
} rsub_reply_shapes[] = {
    {"message", RSUB_REPLY_MESSAGE, 0, REDIS_REPLY_STRING},
    {"smessage", RSUB_REPLY_MESSAGE, 1, REDIS_REPLY_STRING},
    {"subscribe", RSUB_REPLY_SUBSCRIBED, 0, REDIS_REPLY_INTEGER},
    {"ssubscribe", RSUB_REPLY_SUBSCRIBED, 1, REDIS_REPLY_INTEGER},
    {"unsubscribe", RSUB_REPLY_UNSUBSCRIBED, 0, REDIS_REPLY_INTEGER},
    {"sunsubscribe", RSUB_REPLY_UNSUBSCRIBED, 1, REDIS_REPLY_INTEGER},
};

static int rsub_reply_is(const redisReply *e, const char *lit)
{
    size_t n = strlen(lit);

    return e->type == REDIS_REPLY_STRING && e->len == n && memcmp(e->str, lit, n) == 0;
}

static enum rsub_reply_kind rsub_reply_array(const redisReply *reply, struct rsub_reply *out)
{
    const redisReply *kind, *ch, *third;
    size_t i;

    if (reply->elements < 2 || reply->element == NULL || reply->element[0] == NULL)
        return RSUB_REPLY_OTHER;
    kind = reply->element[0];
    if (reply->elements == 2)
        return rsub_reply_is(kind, "pong") ? RSUB_REPLY_PONG : RSUB_REPLY_OTHER;
    if (reply->elements != 3 || reply->element[1] == NULL || reply->element[2] == NULL)
        return RSUB_REPLY_OTHER;
    ch = reply->element[1];
    third = reply->element[2];
    if (ch->type != REDIS_REPLY_STRING)
        return RSUB_REPLY_OTHER; /* "unsubscribe" from nothing has a nil channel */
    for (i = 0; i < sizeof(rsub_reply_shapes) / sizeof(rsub_reply_shapes[0]); i++) {
        const struct rsub_reply_shape *sh = &rsub_reply_shapes[i];

        if (!rsub_reply_is(kind, sh->name) || third->type != sh->third_type)
            continue;
        out->kind = sh->kind;
        out->sharded = sh->sharded;
        out->channel = ch->str;
        out->chlen = ch->len;
        if (sh->kind == RSUB_REPLY_MESSAGE) {
            out->payload = third->str;
            out->len = third->len;
        }
        return sh->kind;
    }
    return RSUB_REPLY_OTHER;
}

enum rsub_reply_kind rsub_reply_parse(const redisReply *reply, struct rsub_reply *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = RSUB_REPLY_OTHER;
    if (reply == NULL)
        return out->kind;
    switch (reply->type) {
    case REDIS_REPLY_ARRAY:
    case REDIS_REPLY_PUSH: /* the same arrays, had the server been asked for RESP3 */
        out->kind = rsub_reply_array(reply, out);
        break;
    case REDIS_REPLY_ERROR:
        out->kind = RSUB_REPLY_ERROR;
        out->payload = reply->str;
        out->len = reply->len;
        break;
    case REDIS_REPLY_STATUS:
        out->kind = reply->len == 4 && memcmp(reply->str, "PONG", 4) == 0 ? RSUB_REPLY_PONG
                                                                          : RSUB_REPLY_STATUS;
        if (out->kind == RSUB_REPLY_STATUS) {
            out->payload = reply->str;
            out->len = reply->len;
        }
        break;
    default:
        break;
    }
    if (out->kind == RSUB_REPLY_OTHER)
        memset(out, 0, sizeof(*out));
    return out->kind;
}

redisReader *rsub_reader_new(void)
{
    redisReader *rd = redisReaderCreate();

    if (rd != NULL)
        rd->maxelements = RSUB_REPLY_ELEMENTS_MAX;
    return rd;
}
