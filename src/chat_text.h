/* chat_text.h -- the texts users see. Seed-era clients and scripts match
 * on them, so they stay exactly as the original Go server wrote them. */
#ifndef RC_CHAT_TEXT_H
#define RC_CHAT_TEXT_H

/* published to the channel as "<user>: <notice>" (built by chat_payload.c) */
#define CHAT_TEXT_JOINED "has joined the chat!"
#define CHAT_TEXT_LEFT "has left the chat!"
/* sent to one user only */
#define CHAT_TEXT_WELCOME_FMT "Welcome %s!"
#define CHAT_TEXT_TAKEN_FMT "username %s is already taken. please retry with a different name"
#define CHAT_TEXT_NOT_DELIVERED "message not delivered: chat service unavailable"
#define CHAT_TEXT_RATE_LIMITED "message not delivered: rate limit exceeded, slow down"
#define CHAT_TEXT_BAD_CHARS \
    "message not delivered: line breaks and control characters are not allowed"
#define CHAT_TEXT_JOIN_UNAVAILABLE "chat service unavailable, please retry later"

/* Close codes and reasons for refusals after the upgrade. 4xxx codes are
 * for applications (RFC 6455 7.4.2); 4409 mirrors HTTP 409 Conflict. */
#define CHAT_CLOSE_NAME_TAKEN 4409
#define CHAT_CLOSE_NAME_TAKEN_REASON "username already taken"
/* a token was required and missing or invalid (mirrors HTTP 401) */
#define CHAT_CLOSE_UNAUTHORIZED 4401
/* RFC 6455 registry: 1013 Try Again Later (wslay has no name for it) */
#define CHAT_CLOSE_TRY_AGAIN_LATER 1013

#endif
