/* chat_payload.h -- what travels on the Redis channels, and nothing else.
 *
 * The default room's channel carries the seed's format byte for byte (a
 * seed-era instance shares it): a message is "user: text", and the join and
 * leave notices are the same with a fixed text ("foo: has joined the chat!",
 * "foo: has left the chat!"); on it a notice and a message that happens to
 * say the same cannot be told apart, as in the seed.
 *
 * A room's channel carries the same with its kind in a first byte, so a
 * message never passes for a notice: 'm' "user: text", 'j' "user", 'l'
 * "user" (CHAT_PAYLOAD_TAGGED). With history, a message also carries its
 * stream id: 'M' id '\n' "user: text"; it travels in this form on the room's
 * channel and, for the default room, on its feed channel (room.h).
 *
 * Direct messages (their own channel) are "room\nfrom\nto\ntext": none of
 * the four can hold a line break.
 *
 * All of it is built and parsed here, nowhere else. Pure: no I/O, no
 * allocation, no logging.
 */
#ifndef RC_CHAT_PAYLOAD_H
#define RC_CHAT_PAYLOAD_H

#include <stddef.h>
#include <sys/types.h>

#include "chat_text.h"

/* between the sender's name and the text */
#define CHAT_PAYLOAD_SEP ": "
/* what follows the name in a seed leave notice */
#define CHAT_PAYLOAD_LEFT_SUFFIX CHAT_PAYLOAD_SEP CHAT_TEXT_LEFT
/* a room's kind bytes */
#define CHAT_PAYLOAD_TAG_MESSAGE 'm'
#define CHAT_PAYLOAD_TAG_JOINED 'j'
#define CHAT_PAYLOAD_TAG_LEFT 'l'
/* a message kept in the room's history: 'M' id '\n' "user: text" */
#define CHAT_PAYLOAD_TAG_STORED 'M'
/* how a plain client sees a direct message: "from (direct): text" (no name
 * holds a space, so no message can forge it) */
#define CHAT_PAYLOAD_DIRECT_SEP " (direct)" CHAT_PAYLOAD_SEP

enum chat_payload_form {
    CHAT_PAYLOAD_SEED = 0, /* the default room */
    CHAT_PAYLOAD_TAGGED,   /* any other room */
};

/* The form of a room's channel: "" is the default room. */
static inline enum chat_payload_form chat_payload_form_of(size_t room_len)
{
    return room_len == 0 ? CHAT_PAYLOAD_SEED : CHAT_PAYLOAD_TAGGED;
}

/* Write a message / join notice / leave notice of `form` into out. Returns
 * its length, or -1 when it does not fit in cap bytes (out is then left
 * unspecified). Not NUL-terminated. */
ssize_t chat_payload_message(enum chat_payload_form form, char *out, size_t cap, const char *user,
                             size_t ulen, const void *text, size_t tlen);
ssize_t chat_payload_joined(enum chat_payload_form form, char *out, size_t cap, const char *user,
                            size_t ulen);
ssize_t chat_payload_left(enum chat_payload_form form, char *out, size_t cap, const char *user,
                          size_t ulen);

/* A stored message: 'M' id '\n' "user: text" (any room: the stored form is
 * always tagged). Same contract as chat_payload_message. */
ssize_t chat_payload_stored(char *out, size_t cap, const char *id, size_t idlen, const char *user,
                            size_t ulen, const void *text, size_t tlen);
/* The same with the id left out, for the script that learns it only when it
 * stores the message: the id goes at out[*id_at]. */
ssize_t chat_payload_stored_template(char *out, size_t cap, const char *user, size_t ulen,
                                     const void *text, size_t tlen, size_t *id_at);

/* A stored message's id and its seed line ("user: text", not looked
 * into: the broker needs no more). -1 when the payload is not one. */
int chat_payload_stored_split(const void *payload, size_t len, const char **id, size_t *idlen,
                              const char **line, size_t *line_len);

/* What Redis scripts put around a name to announce the leaves of a whole
 * instance: prefix .. user .. suffix. */
void chat_payload_left_affixes(enum chat_payload_form form, const char **prefix,
                               const char **suffix);

enum chat_event_kind {
    CHAT_EV_MESSAGE = 0,
    CHAT_EV_JOINED,
    CHAT_EV_LEFT,
    CHAT_EV_LINE, /* a seed-channel line with no "user: " (another publisher's) */
};

struct chat_event {
    enum chat_event_kind kind;
    const char *user; /* views into the payload */
    size_t ulen;
    const char *text; /* MESSAGE: the text; LINE: the whole line */
    size_t tlen;
    const char *line; /* the seed-format line a plain client is shown, when the */
    size_t line_len;  /* payload holds it as is (MESSAGE, LINE, seed notices); else NULL */
    const char *id;   /* a stored message's stream id, else NULL */
    size_t idlen;
};

/* Parse a payload of `form`. 0, or -1 when it is malformed (a tagged
 * payload with an unknown kind or no "user: ", a stored one without an id). */
int chat_payload_parse(enum chat_payload_form form, const void *payload, size_t len,
                       struct chat_event *ev);

/* The sender's name is the start of a seed payload up to the first ':'
 * (names cannot contain one). Returns its length, or -1 when there is no
 * ':' (a line some other publisher wrote: nobody's own message). */
ssize_t chat_payload_sender(const void *payload, size_t len);

/* Direct messages: build "room\nfrom\nto\ntext", and parse it (views into
 * p; -1 when it does not have four parts). */
ssize_t chat_payload_direct(char *out, size_t cap, const char *room, size_t rlen, const char *from,
                            size_t flen, const char *to, size_t tolen, const void *text,
                            size_t tlen);
struct chat_direct {
    const char *room, *from, *to, *text;
    size_t rlen, flen, tolen, tlen;
};
int chat_payload_direct_parse(const void *p, size_t len, struct chat_direct *d);

/* "from (direct): text" for a plain client. */
ssize_t chat_payload_direct_line(char *out, size_t cap, const char *from, size_t flen,
                                 const void *text, size_t tlen);

#endif
