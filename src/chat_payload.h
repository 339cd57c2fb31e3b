/* chat_payload.h -- what travels on the Redis channel, and nothing else.
 *
 * A message is "user: text"; the join and leave notices are the same with
 * a fixed text ("foo: has joined the chat!", "foo: has left the chat!").
 * That is the seed's format byte for byte (seed-era instances share the
 * channel), so it is built here and parsed here, nowhere else. Pure: no
 * I/O, no allocation, no logging.
 */
#ifndef RC_CHAT_PAYLOAD_H
#define RC_CHAT_PAYLOAD_H

#include <stddef.h>
#include <sys/types.h>

#include "chat_text.h"

/* between the sender's name and the text */
#define CHAT_PAYLOAD_SEP ": "
/* what follows the name in a leave notice; the Redis scripts that announce
 * the leaves of a whole instance get it as an argument */
#define CHAT_PAYLOAD_LEFT_SUFFIX CHAT_PAYLOAD_SEP CHAT_TEXT_LEFT

/* Write "user: text" into out. Returns its length, or -1 when it does not
 * fit in cap bytes (out is then left unspecified). Not NUL-terminated. */
ssize_t chat_payload_message(char *out, size_t cap, const char *user, size_t ulen,
                             const void *text, size_t tlen);

/* "user: has joined the chat!" / "user: has left the chat!", as above. */
ssize_t chat_payload_joined(char *out, size_t cap, const char *user, size_t ulen);
ssize_t chat_payload_left(char *out, size_t cap, const char *user, size_t ulen);

/* The sender's name is the start of a payload up to the first ':' (names
 * cannot contain one). Returns its length, or -1 when there is no ':' (a
 * line some other publisher wrote: nobody's own message). */
ssize_t chat_payload_sender(const void *payload, size_t len);

#endif
