/* chat.h -- the chat application of a worker: rooms, names granted by the
 * broker, the plain protocol (the seed's text lines) and the typed one
 * (redis-chat.v1, chat_proto.h), and the fan-out of delivered messages to
 * this worker's sessions (chat_rooms.h). It reaches the broker only
 * through the send function it is given. */
#ifndef RC_CHAT_H
#define RC_CHAT_H

#include <stddef.h>

#include "chat_rooms.h"
#include "dict.h"
#include "ws_app.h"

struct cfg;
struct ipc_msg;
struct wss_server;
struct chat_orphan;

/* Send a message to the broker: 0, or -1 when it is not connected. */
typedef int (*chat_send_fn)(const struct ipc_msg *m, void *arg);

struct chat {
    struct ws_app app; /* the route's application: arg is this struct */
    const struct cfg *cfg;
    struct wss_server *srv;
    chat_send_fn send;
    void *send_arg;
    int redis_up; /* last IPC_LINK state from the broker */
    struct chat_rooms rooms;
    struct dict pending;         /* join request id (4 bytes) -> struct chat_member */
    struct chat_orphan *orphans; /* leaves not yet confirmed by the broker */
    uint32_t leave_seq;
    uint32_t next_req;
};

void chat_init(struct chat *c, const struct cfg *cfg, struct wss_server *srv, chat_send_fn send,
               void *send_arg);
/* Free what chat keeps besides sessions (after they are gone). */
void chat_deinit(struct chat *c);

/* 1 when a message holds no line breaks, controls or bidi overrides (which
 * could fake another user's line on a reader's screen). */
int chat_text_allowed(const char *text, size_t len);

/* A message from the broker. */
void chat_on_broker_msg(struct chat *c, const struct ipc_msg *m);
/* The broker link dropped: pending joins cannot be answered any more. */
void chat_on_broker_lost(struct chat *c);
/* Connected to a (maybe new) broker: tell it which users this worker holds
 * and who left while it was away, so nobody is lost or left behind. */
void chat_on_broker_up(struct chat *c);

#endif
