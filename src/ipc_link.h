/* ipc_link.h -- one worker<->broker connection on libevent: frames in,
 * frames out, backpressure and EOF. Both sides use it; the frame format
 * itself is ipc.c's business. */
#ifndef RC_IPC_LINK_H
#define RC_IPC_LINK_H

#include <stddef.h>

#include "ipc.h"

struct event_base;
struct ipc_link;

/* Called for every decoded frame. Field views are valid during the call
 * only. The callback must not free the link; ipc_link_shutdown() is allowed. */
typedef void (*ipc_link_msg_cb)(struct ipc_link *l, const struct ipc_msg *m, void *arg);
/* Called once when the link is over (EOF, error, protocol error, shutdown);
 * `why` says which. The callback may free the link. */
typedef void (*ipc_link_close_cb)(struct ipc_link *l, const char *why, void *arg);
/* Called after a batch of frames was processed (optional): the place to
 * flush what the frames queued elsewhere. */
typedef void (*ipc_link_batch_cb)(struct ipc_link *l, void *arg);

/* Wrap a connected socket. max_frame bounds incoming frames. NULL on ENOMEM. */
struct ipc_link *ipc_link_new(struct event_base *base, int fd, size_t max_frame,
                              ipc_link_msg_cb on_msg, ipc_link_batch_cb on_batch,
                              ipc_link_close_cb on_close, void *arg);

/* Close the socket and free the link (no close callback). */
void ipc_link_free(struct ipc_link *l);

/* Encode and queue a frame. 0, or -1 when the message cannot be encoded or
 * the link is over. */
int ipc_link_send(struct ipc_link *l, const struct ipc_msg *m);

/* Queue an already encoded frame (fan-out: encode once, send to many). */
int ipc_link_send_encoded(struct ipc_link *l, const void *frame, size_t len);

/* Before exiting: write what is queued, waiting at most timeout_ms.
 * Returns 0 when everything was written. */
int ipc_link_flush_blocking(struct ipc_link *l, int timeout_ms);

/* Bytes queued for sending and not yet written. */
size_t ipc_link_pending(const struct ipc_link *l);

/* Stop reading and writing, free what was queued for the peer (it would
 * never be written), drop the link from the event loop and call the close
 * callback from the loop shortly (never from inside this call). */
void ipc_link_shutdown(struct ipc_link *l, const char *why);

/* The user pointer given to ipc_link_new. */
void *ipc_link_arg(const struct ipc_link *l);

#endif
