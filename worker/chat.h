/* chat.h -- the chat rules inside a worker: join, leave, publish, and the
 * fan-out of delivered messages to the worker's own sessions. */
#ifndef RC_CHAT_H
#define RC_CHAT_H

#include <stddef.h>

struct worker;
struct wss_session;
struct ipc_msg;

/* A session finished its upgrade: ask the broker for the name. */
void chat_on_upgraded(struct wss_session *s);
/* A text message from a joined user. */
void chat_on_text(struct wss_session *s, const char *text, size_t len);
/* 1 when a message holds no line breaks, controls or bidi overrides (which
 * could fake another user's line on a reader's screen). */
int chat_text_allowed(const char *text, size_t len);
/* A session is going away (any state): release its name. */
void chat_on_gone(struct wss_session *s);
/* A message from the broker. */
void chat_on_broker_msg(struct worker *w, const struct ipc_msg *m);
/* The broker link dropped: pending joins cannot be answered any more. */
void chat_on_broker_lost(struct worker *w);
/* Connected to a (maybe new) broker: tell it which users this worker holds
 * and who left while it was away, so nobody is lost or left behind. */
void chat_on_broker_up(struct worker *w);
/* Free what chat keeps besides sessions (at exit). */
void chat_deinit(struct worker *w);

#endif
