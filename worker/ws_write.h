/* ws_write.h -- the write engine of a client connection.
 *
 * What a connection has to write is its own output (the 101, texts for it
 * alone, control frames: an evbuffer made on first use and given back once
 * written) followed, frame by frame, by the worker's broadcast stream from
 * its cursor (bcast_log.h), minus the messages it sent itself. A write
 * gathers both into one iovec array, in the order that keeps frames whole,
 * and moves the cursor past what the kernel took. No policy lives here:
 * the caller decides what a full socket or a failed write means.
 */
#ifndef RC_WS_WRITE_H
#define RC_WS_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "bcast_log.h"

struct evbuffer;
struct send_batch;
struct ws_frame;

#define WS_WRITE_IOV 64 /* iovecs per write */

struct ws_out {
    struct evbuffer *own;        /* own output; NULL when none */
    struct bcast_node *cur;      /* its cursor in the broadcast stream, or NULL */
    const struct bcast_log *log; /* the stream cur reads (NULL with cur) */
    struct bcast_reader reader;  /* listed among that stream's readers */
    uint32_t cur_off;            /* bytes of cur's frame already written */
    uint8_t deflate;             /* permessage-deflate: the stream's compressed twins */
    uint64_t self;               /* sender id whose messages it skips */
};

/* Broadcasts shorter than this go uncompressed to deflate sessions too
 * (deflate-threshold; set once per process). */
extern size_t ws_out_deflate_threshold;

/* Results of a write. */
enum {
    WS_OUT_DONE = 0,    /* everything written */
    WS_OUT_MORE = 1,    /* written, but more is pending (more than one write holds) */
    WS_OUT_BLOCKED = 2, /* the socket is full */
};

/* Append to the own output. 0, or -1 out of memory. */
int ws_out_add(struct ws_out *o, const void *data, size_t len);
/* The same for bytes that live as long as the process (no copy). */
int ws_out_add_static(struct ws_out *o, const void *data, size_t len);
/* Append a shared frame to the own output, by reference. 0, or -1. */
int ws_out_add_frame(struct ws_out *o, struct ws_frame *f);
size_t ws_out_own_len(const struct ws_out *o);
/* Bytes of the stream not yet written (its own messages included: an
 * upper bound). */
uint64_t ws_out_behind(const struct ws_out *o);
/* 1 when the stream holds frames past the cursor. */
int ws_out_stream_pending(const struct ws_out *o);

/* Start reading the stream from its end (no-op when already reading). */
void ws_out_subscribe(struct ws_out *o, struct bcast_log *log);
/* Leave the stream. With `keep`, what is not yet written of it moves to the
 * own output first (before or after what is there, whichever keeps frames
 * whole), so that what is queued next comes after it. Returns 0, or -1 when
 * that could not be done whole (out of memory): the output is then
 * corrupt and the connection must be dropped. */
int ws_out_unsubscribe(struct ws_out *o, int keep);

/* Write what is pending to fd until done or the socket is full. With
 * `last`, only close() follows: the bytes are sent with MSG_MORE, so the
 * FIN that close() adds leaves in the same TCP segment. Returns WS_OUT_DONE
 * (the own buffer is given back), WS_OUT_BLOCKED, or -errno when the write
 * failed (EPIPE for a 0-byte write). */
int ws_out_write(struct ws_out *o, int fd, int last);

/* The same through another writer (TLS): it takes iov[0..n) and returns the
 * bytes it took, or -1 with errno (EAGAIN: full, try again later with the
 * same bytes in front). */
typedef ssize_t (*ws_out_writev_fn)(void *arg, const struct iovec *iov, int n);
int ws_out_write_via(struct ws_out *o, ws_out_writev_fn writev_fn, void *arg);

/* One write's iovecs, kept to account for its result later (batches). */
struct ws_out_wr {
    size_t own, stream; /* bytes of each in the iovecs */
    int all_own, all_stream, stream_first;
};

/* Queue o's next write in batch b under tag (the batch must have room).
 * Returns the number of iovecs queued; 0 when nothing was pending. */
int ws_out_batch_add(struct ws_out *o, struct ws_out_wr *wr, struct send_batch *b, int fd,
                     void *tag);
/* Account for a batched send's result: WS_OUT_DONE, WS_OUT_MORE (write the
 * rest with ws_out_write), WS_OUT_BLOCKED, or -errno. */
int ws_out_batch_done(struct ws_out *o, const struct ws_out_wr *wr, ssize_t res);

/* Drop everything pending: leave the stream, free the own buffer. */
void ws_out_release(struct ws_out *o);

#endif
