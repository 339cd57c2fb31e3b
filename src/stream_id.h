/* stream_id.h -- a Redis Stream entry id, "<ms>-<seq>": the id of a chat
 * message in its room's history. Parsed, compared and written here only.
 * Pure: no I/O, no allocation. */
#ifndef RC_STREAM_ID_H
#define RC_STREAM_ID_H

#include <stddef.h>
#include <stdint.h>

/* "18446744073709551615-18446744073709551615" and a NUL */
#define STREAM_ID_MAX 42

struct stream_id {
    uint64_t ms, seq;
};

/* Parse s[0..len): two decimal numbers (no sign, no spaces, each fits in 64
 * bits) joined by '-'. 0, or -1 when it is no complete id. */
int stream_id_parse(const char *s, size_t len, struct stream_id *id);

/* <0, 0, >0 as a is before, equal to or after b in a stream. */
int stream_id_cmp(const struct stream_id *a, const struct stream_id *b);

/* Write id into out[STREAM_ID_MAX], NUL-terminated; returns its length. */
size_t stream_id_format(const struct stream_id *id, char out[STREAM_ID_MAX]);

#endif
