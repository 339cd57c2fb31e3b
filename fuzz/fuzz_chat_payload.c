/* fuzz_chat_payload.c -- libFuzzer target for what travels on the Redis
 * channels (src/chat_payload.c) and the room names and channels
 * (src/room.c): the bytes a broker gets from Redis, from any publisher.
 *
 * The whole input is parsed in every way (from an exact-size heap copy, so
 * ASan sees any read past it):
 *   - chat_payload_parse, seed form: always 0; the views lie inside the
 *     payload; a message or notice is "user: text" with no ':' in the
 *     user, a notice exactly when the text is the seed's; a LINE has no
 *     "user: "; building the parsed event again gives the same bytes.
 *   - chat_payload_parse, tagged form: 0 exactly when the first byte is
 *     m/j/l with a name behind it ("user: text" for m), or M with a
 *     non-empty id, a '\n' and "user: text"; the views inside; building it
 *     again gives the same bytes (for M also through the template).
 *   - chat_payload_sender agrees with the first ':'.
 *   - chat_payload_direct_parse: 0 exactly when there are three '\n' and
 *     from and to are not empty; building it again gives the same bytes.
 *   - chat_payload_direct_line of two halves: the exact bytes, -1 when one
 *     byte short, nothing written past cap.
 *   - room_name_check against the alphabet; room_of_channel against an
 *     oracle, for the default directives and a short channel "c"; a room
 *     it finds gives the same channel back through room_key.
 * abort() on any violation.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_payload.h"
#include "config.h"
#include "fuzz_check.h"
#include "room.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cfg fz_cfg_default, fz_cfg_short;

static void fz_cfg_make(struct cfg *c, const char *text)
{
    char err[CFG_ERR_LEN];

    cfg_init(c);
    if (cfg_parse_buffer(c, text, strlen(text), "fuzz", err, sizeof(err)) != 0 ||
        cfg_finalize(c, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_chat_payload: cfg: %s\n", err);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_cfg_make(&fz_cfg_default, "");
    fz_cfg_make(&fz_cfg_short, "channel c\nusers-key u\n");
    return 0;
}

static int fz_inside(const char *v, size_t n, const char *p, size_t len)
{
    return v >= p && n <= len && v + n <= p + len;
}

#define FZ_IS(p, len, lit) ((len) == sizeof(lit) - 1 && memcmp((p), (lit), (len)) == 0)

/* Build into a buffer of exactly `want` bytes (+ a canary): the same bytes
 * as orig; and one byte short: -1 with the canary intact. */
#define FZ_REBUILD(call_cap, buf, orig, want)                                                    \
    do {                                                                                         \
        char *buf = malloc((want) + 1);                                                          \
        ssize_t n_;                                                                              \
        FUZZ_CHECK(buf != NULL);                                                                 \
        buf[(want)] = (char)0xa5;                                                                \
        { size_t cap_ = (want); n_ = call_cap; }                                                 \
        FUZZ_CHECK(n_ == (ssize_t)(want) && memcmp(buf, (orig), (want)) == 0);                   \
        FUZZ_CHECK((unsigned char)buf[(want)] == 0xa5);                                          \
        if ((want) > 0) {                                                                        \
            buf[(want)-1] = (char)0xa5;                                                          \
            { size_t cap_ = (want)-1; n_ = call_cap; }                                           \
            FUZZ_CHECK(n_ == -1);                                                                \
            FUZZ_CHECK((unsigned char)buf[(want)] == 0xa5);                                      \
        }                                                                                        \
        free(buf);                                                                               \
    } while (0)

static void fz_seed(const char *p, size_t len)
{
    struct chat_event ev;
    const char *colon = len > 0 ? memchr(p, ':', len) : NULL;
    ssize_t sender = chat_payload_sender(p, len);
    int split;

    FUZZ_CHECK(sender == (colon != NULL ? colon - p : -1));
    split = colon != NULL && colon > p && (size_t)(colon - p) + 2 <= len && colon[1] == ' ';
    memset(&ev, 0x5a, sizeof(ev));
    FUZZ_CHECK(chat_payload_parse(CHAT_PAYLOAD_SEED, p, len, &ev) == 0);
    FUZZ_CHECK(ev.line == p && ev.line_len == len);
    if (!split) {
        FUZZ_CHECK(ev.kind == CHAT_EV_LINE && ev.user == NULL && ev.ulen == 0);
        FUZZ_CHECK(ev.text == p && ev.tlen == len);
        return;
    }
    FUZZ_CHECK(ev.user == p && ev.ulen == (size_t)(colon - p));
    FUZZ_CHECK(ev.text == colon + 2 && ev.tlen == len - ev.ulen - 2);
    FUZZ_CHECK(fz_inside(ev.text, ev.tlen, p, len));
    if (FZ_IS(ev.text, ev.tlen, "has joined the chat!"))
        FUZZ_CHECK(ev.kind == CHAT_EV_JOINED);
    else if (FZ_IS(ev.text, ev.tlen, "has left the chat!"))
        FUZZ_CHECK(ev.kind == CHAT_EV_LEFT);
    else
        FUZZ_CHECK(ev.kind == CHAT_EV_MESSAGE);
    FZ_REBUILD(chat_payload_message(CHAT_PAYLOAD_SEED, b, cap_, ev.user, ev.ulen, ev.text, ev.tlen),
               b, p, len);
    if (ev.kind == CHAT_EV_JOINED)
        FZ_REBUILD(chat_payload_joined(CHAT_PAYLOAD_SEED, b, cap_, ev.user, ev.ulen), b, p, len);
    if (ev.kind == CHAT_EV_LEFT)
        FZ_REBUILD(chat_payload_left(CHAT_PAYLOAD_SEED, b, cap_, ev.user, ev.ulen), b, p, len);
}

/* 'M' id '\n' "user: text": 0 exactly when the id is not empty and the
 * rest is "user: text"; rebuilt by chat_payload_stored, and by the template
 * with the id put in at *id_at. */
static void fz_stored(const char *p, size_t len, int rc, const struct chat_event *ev)
{
    const char *nl = memchr(p + 1, '\n', len - 1), *line, *colon;
    size_t llen;
    int want;

    line = nl != NULL ? nl + 1 : NULL;
    llen = nl != NULL ? len - (size_t)(line - p) : 0;
    colon = line != NULL && llen > 0 ? memchr(line, ':', llen) : NULL;
    want = nl != NULL && nl > p + 1 && colon != NULL && colon > line &&
                   (size_t)(colon - line) + 2 <= llen && colon[1] == ' '
               ? 0
               : -1;
    FUZZ_CHECK(rc == want);
    if (rc == -1)
        return;
    FUZZ_CHECK(ev->kind == CHAT_EV_MESSAGE);
    FUZZ_CHECK(ev->id == p + 1 && ev->idlen == (size_t)(nl - p - 1));
    FUZZ_CHECK(ev->line == line && ev->line_len == llen);
    FUZZ_CHECK(ev->user == line && ev->ulen == (size_t)(colon - line));
    FUZZ_CHECK(ev->text == colon + 2 && ev->tlen == llen - ev->ulen - 2);
    FUZZ_CHECK(fz_inside(ev->text, ev->tlen, p, len));
    FZ_REBUILD(chat_payload_stored(b, cap_, ev->id, ev->idlen, ev->user, ev->ulen, ev->text,
                                   ev->tlen),
               b, p, len);
    {
        size_t tlen = len - ev->idlen, at = 0;
        char *t = malloc(tlen);
        ssize_t n;

        FUZZ_CHECK(t != NULL);
        n = chat_payload_stored_template(t, tlen, ev->user, ev->ulen, ev->text, ev->tlen, &at);
        FUZZ_CHECK(n == (ssize_t)tlen && at == 1);
        FUZZ_CHECK(memcmp(t, p, at) == 0 && memcmp(t + at, p + at + ev->idlen, tlen - at) == 0);
        free(t);
    }
}

static void fz_tagged(const char *p, size_t len)
{
    struct chat_event ev;
    int rc, want;
    const char *colon = len > 1 ? memchr(p + 1, ':', len - 1) : NULL;

    memset(&ev, 0x5a, sizeof(ev));
    rc = chat_payload_parse(CHAT_PAYLOAD_TAGGED, p, len, &ev);
    if (len >= 2 && p[0] == CHAT_PAYLOAD_TAG_STORED) {
        fz_stored(p, len, rc, &ev);
        return;
    }
    if (len < 2)
        want = -1;
    else if (p[0] == 'j' || p[0] == 'l')
        want = 0;
    else if (p[0] == 'm')
        want = colon != NULL && colon > p + 1 && (size_t)(colon - p) + 2 <= len && colon[1] == ' '
                   ? 0
                   : -1;
    else
        want = -1;
    FUZZ_CHECK(rc == want);
    if (rc == -1)
        return;
    FUZZ_CHECK(fz_inside(ev.user, ev.ulen, p, len));
    if (p[0] == 'm') {
        FUZZ_CHECK(ev.kind == CHAT_EV_MESSAGE); /* whatever the text says */
        FUZZ_CHECK(ev.user == p + 1 && ev.ulen == (size_t)(colon - p - 1));
        FUZZ_CHECK(ev.text == colon + 2 && ev.tlen == len - 1 - ev.ulen - 2);
        FUZZ_CHECK(ev.line == p + 1 && ev.line_len == len - 1);
        FZ_REBUILD(chat_payload_message(CHAT_PAYLOAD_TAGGED, b, cap_, ev.user, ev.ulen, ev.text,
                                        ev.tlen),
                   b, p, len);
        return;
    }
    FUZZ_CHECK(ev.kind == (p[0] == 'j' ? CHAT_EV_JOINED : CHAT_EV_LEFT));
    FUZZ_CHECK(ev.user == p + 1 && ev.ulen == len - 1);
    FUZZ_CHECK(ev.line == NULL);
    if (p[0] == 'j')
        FZ_REBUILD(chat_payload_joined(CHAT_PAYLOAD_TAGGED, b, cap_, ev.user, ev.ulen), b, p, len);
    else
        FZ_REBUILD(chat_payload_left(CHAT_PAYLOAD_TAGGED, b, cap_, ev.user, ev.ulen), b, p, len);
}

static void fz_direct(const char *p, size_t len)
{
    struct chat_direct d;
    const char *nl[3] = {NULL, NULL, NULL}, *s = p, *end = p + len;
    int want = 0, rc;

    for (int i = 0; i < 3; i++) {
        nl[i] = s < end ? memchr(s, '\n', (size_t)(end - s)) : NULL;
        if (nl[i] == NULL) {
            want = -1;
            break;
        }
        s = nl[i] + 1;
    }
    if (want == 0 && (nl[1] == nl[0] + 1 || nl[2] == nl[1] + 1))
        want = -1; /* an empty from or to */
    rc = chat_payload_direct_parse(p, len, &d);
    FUZZ_CHECK(rc == want);
    if (rc == -1)
        return;
    FUZZ_CHECK(d.room == p && d.rlen == (size_t)(nl[0] - p));
    FUZZ_CHECK(d.from == nl[0] + 1 && d.flen == (size_t)(nl[1] - nl[0] - 1));
    FUZZ_CHECK(d.to == nl[1] + 1 && d.tolen == (size_t)(nl[2] - nl[1] - 1));
    FUZZ_CHECK(d.text == nl[2] + 1 && d.tlen == (size_t)(end - nl[2] - 1));
    FUZZ_CHECK(fz_inside(d.text, d.tlen, p, len));
    FZ_REBUILD(chat_payload_direct(b, cap_, d.room, d.rlen, d.from, d.flen, d.to, d.tolen, d.text,
                                   d.tlen),
               b, p, len);
}

static void fz_direct_line(const char *p, size_t len)
{
    size_t half = len / 2, want = len + strlen(CHAT_PAYLOAD_DIRECT_SEP);
    char *expect = malloc(want + 1);

    FUZZ_CHECK(expect != NULL);
    memcpy(expect, p, half);
    memcpy(expect + half, CHAT_PAYLOAD_DIRECT_SEP, strlen(CHAT_PAYLOAD_DIRECT_SEP));
    memcpy(expect + half + strlen(CHAT_PAYLOAD_DIRECT_SEP), p + half, len - half);
    FZ_REBUILD(chat_payload_direct_line(b, cap_, p, half, p + half, len - half), b, expect, want);
    free(expect);
}

static int fz_room_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~';
}

static int fz_room_ok(const char *p, size_t len)
{
    if (len == 0 || len > ROOM_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!fz_room_char((unsigned char)p[i]))
            return 0;
    return 1;
}

static void fz_channel(const struct cfg *c, const char *p, size_t len)
{
    const char *room = NULL;
    size_t cl = c->channel_len;
    ssize_t want, n = room_of_channel(c, p, len, &room);
    char key[ROOM_KEY_MAX];

    int feed = len == cl + 3 && memcmp(p, c->channel, cl) == 0 && memcmp(p + cl, ":{}", 3) == 0;

    if (len == cl && memcmp(p, c->channel, cl) == 0)
        want = 0;
    else if (feed) /* the default room's feed channel */
        want = 0;
    else if (len >= cl + 3 && memcmp(p, c->channel, cl) == 0 && p[cl] == ':' &&
             p[cl + 1] == '{' && p[len - 1] == '}' && fz_room_ok(p + cl + 2, len - cl - 3))
        want = (ssize_t)(len - cl - 3);
    else
        want = -1;
    FUZZ_CHECK(n == want);
    if (n < 0)
        return;
    if (n == 0)
        FUZZ_CHECK(room != NULL);
    else
        FUZZ_CHECK(room == p + cl + 2 && fz_inside(room, (size_t)n, p, len));
    /* and back */
    FUZZ_CHECK(room_key(key, sizeof(key), c, room, (size_t)n,
                        feed ? ROOM_KEY_FEED : ROOM_KEY_CHANNEL, NULL) == (ssize_t)len);
    FUZZ_CHECK(memcmp(key, p, len) == 0);
}

static void fz_room_name(const char *p, size_t len)
{
    const char *why = room_name_check(p, len);
    char key[ROOM_KEY_MAX];
    const char *room;
    ssize_t n;

    FUZZ_CHECK((why == NULL) == fz_room_ok(p, len));
    if (why != NULL)
        return;
    /* a valid name's keys: inside ROOM_KEY_MAX, under its hash tag, and
     * its channel names it again */
    for (int k = ROOM_KEY_CHANNEL; k <= ROOM_KEY_INSTANCE; k++) {
        n = room_key(key, sizeof(key), &fz_cfg_default, p, len, (enum room_key)k, "id-1");
        FUZZ_CHECK(n > 0 && (size_t)n < sizeof(key));
        FUZZ_CHECK(key[5] == '{' && memcmp(key + 6, p, len) == 0 && key[6 + len] == '}');
        if (k == ROOM_KEY_CHANNEL) {
            FUZZ_CHECK(room_of_channel(&fz_cfg_default, key, (size_t)n, &room) == (ssize_t)len);
            FUZZ_CHECK(room == key + 6);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size > 0 ? size : 1); /* exact size */

    FUZZ_CHECK(p != NULL);
    memcpy(p, data, size);
    fz_seed(p, size);
    fz_tagged(p, size);
    fz_direct(p, size);
    fz_direct_line(p, size);
    fz_channel(&fz_cfg_default, p, size);
    fz_channel(&fz_cfg_short, p, size);
    fz_room_name(p, size);
    free(p);
    return 0;
}
