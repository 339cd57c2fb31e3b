/* rsub_reply.h -- what a reply on a subscriber connection means.
 *
 * Pure, no I/O, never logs: given one reply from hiredis's reader, say
 * whether it is a published message, a (un)subscribe confirmation, a PING's
 * answer, an error or a status, and point at its channel and payload. Any
 * other shape (wrong element count, a channel that is not a bulk string, a
 * nested array, a kind we never asked for) is RSUB_REPLY_OTHER, so bytes
 * from the server can never make the caller read past a reply. Used by
 * broker/rsub.c; kept apart so that it can be unit-tested and fuzzed
 * without a connection.
 */
#ifndef RC_RSUB_REPLY_H
#define RC_RSUB_REPLY_H

#include <stddef.h>

#include "hiredis_compat.h"

/* An array wider than any reply a subscriber gets (3 elements) by far is a
 * protocol error: the reader stops at it instead of allocating for a
 * peer's "*4294967295". */
#define RSUB_REPLY_ELEMENTS_MAX 16

enum rsub_reply_kind {
    RSUB_REPLY_OTHER = 0,    /* a shape we do not know: ignore it */
    RSUB_REPLY_MESSAGE,      /* "message"/"smessage": channel, payload */
    RSUB_REPLY_SUBSCRIBED,   /* "subscribe"/"ssubscribe": channel */
    RSUB_REPLY_UNSUBSCRIBED, /* "unsubscribe"/"sunsubscribe": channel */
    RSUB_REPLY_PONG,         /* ["pong", x] when subscribed, +PONG before */
    RSUB_REPLY_ERROR,        /* an error reply: text in payload */
    RSUB_REPLY_STATUS,       /* any other status (+OK): text in payload */
};

/* Views into the reply: valid while the reply lives. */
struct rsub_reply {
    enum rsub_reply_kind kind;
    int sharded;         /* smessage, ssubscribe, sunsubscribe */
    const char *channel; /* MESSAGE, (UN)SUBSCRIBED; else NULL */
    size_t chlen;
    const char *payload; /* MESSAGE: the message; ERROR, STATUS: the text; else NULL */
    size_t len;
};

/* Interpret reply (NULL gives OTHER) into *out; returns out->kind. */
enum rsub_reply_kind rsub_reply_parse(const redisReply *reply, struct rsub_reply *out);

/* A RESP2 reader for a subscriber connection (hiredis's default reply
 * objects, arrays capped at RSUB_REPLY_ELEMENTS_MAX). NULL when out of
 * memory; free with redisReaderFree. */
redisReader *rsub_reader_new(void);

#endif
