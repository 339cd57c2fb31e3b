/* chat_payload.c -- see chat_payload.h. */
#include "chat_payload.h"

#include <string.h>

static const char chat_payload_joined_suffix[] = CHAT_PAYLOAD_SEP CHAT_TEXT_JOINED;
static const char chat_payload_left_suffix[] = CHAT_PAYLOAD_LEFT_SUFFIX;

/* user, then sep, then text; each length checked against what is left, so
 * no sum can wrap */
static ssize_t chat_payload_build(char *out, size_t cap, const char *user, size_t ulen,
                                  const char *sep, size_t seplen, const void *text, size_t tlen)
{
    if (ulen > cap || seplen > cap - ulen || tlen > cap - ulen - seplen)
        return -1;
    memcpy(out, user, ulen);
    memcpy(out + ulen, sep, seplen);
    if (tlen > 0) /* an empty text may come as a NULL pointer */
        memcpy(out + ulen + seplen, text, tlen);
    return (ssize_t)(ulen + seplen + tlen);
}

ssize_t chat_payload_message(char *out, size_t cap, const char *user, size_t ulen,
                             const void *text, size_t tlen)
{
    return chat_payload_build(out, cap, user, ulen, CHAT_PAYLOAD_SEP,
                              sizeof(CHAT_PAYLOAD_SEP) - 1, text, tlen);
}

ssize_t chat_payload_joined(char *out, size_t cap, const char *user, size_t ulen)
{
    return chat_payload_build(out, cap, user, ulen, chat_payload_joined_suffix,
                              sizeof(chat_payload_joined_suffix) - 1, NULL, 0);
}

ssize_t chat_payload_left(char *out, size_t cap, const char *user, size_t ulen)
{
    return chat_payload_build(out, cap, user, ulen, chat_payload_left_suffix,
                              sizeof(chat_payload_left_suffix) - 1, NULL, 0);
}

ssize_t chat_payload_sender(const void *payload, size_t len)
{
    const char *colon = len > 0 ? memchr(payload, ':', len) : NULL;

    return colon != NULL ? colon - (const char *)payload : -1;
}
