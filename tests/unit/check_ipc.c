/* check_ipc.c -- unit tests for the worker <-> broker frame codec (src/ipc.c).
 *
 * Frames are built two ways: by ipc_encode, and byte by byte with the raw
 * builder below, which knows the layout of ipc.h independently of the codec
 * (so a codec that agrees with itself but not with the header still fails).
 * Decoder inputs are copied into exact-size heap buffers, so that ASan or
 * valgrind catch any read past the length the decoder was given.
 */
#include "ipc.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#define CANARY 0xA5
#define BUF_MAX 4096

/* The contract of ipc.h, restated independently of ipc.c. */
struct type_spec {
    unsigned type;
    const char *name;
    int nfields;
    uint16_t flags_max;
};

static const struct type_spec specs[] = {
    { IPC_HELLO, "HELLO", 2, 0 },
    { IPC_JOIN, "JOIN", 3, 3 },
    { IPC_JOIN_REPLY, "JOIN_REPLY", 2, 3 },
    { IPC_LEAVE, "LEAVE", 2, 1 },
    { IPC_PUBLISH, "PUBLISH", 3, 1 },
    { IPC_PUBLISH_FAIL, "PUBLISH_FAIL", 3, 1 },
    { IPC_DELIVER, "DELIVER", 2, 1 },
    { IPC_LINK, "LINK", 1, 1 },
    { IPC_PING, "PING", 1, 0 },
    { IPC_PONG, "PONG", 1, 0 },
    { IPC_DIRECT, "DIRECT", 4, 0 },
    { IPC_DELIVER_DIRECT, "DELIVER_DIRECT", 4, 0 },
    { IPC_WHO, "WHO", 2, 0 },
    { IPC_WHO_REPLY, "WHO_REPLY", 4, 1 },
    { IPC_PUBLISH_OK, "PUBLISH_OK", 3, 0 },
    { IPC_HISTORY, "HISTORY", 3, 0 },
    { IPC_HISTORY_END, "HISTORY_END", 3, 3 },
    { IPC_SEEN, "SEEN", 2, 0 },
};
#define NSPECS (sizeof(specs) / sizeof(specs[0]))
#define NVARIANTS 4

static const uint8_t bin_a[] = { 0x00, 'a', 0x00, 0xff, 0x80, 0x00 };
static const uint8_t bin_b[] = { 'x', 0x00, 'y', '\n', 0x7f };
static const uint8_t bin_c[] = { 0x00 };

/* Message number `variant` of a type: 0 = all fields empty, 1 = binary bytes
 * with NULs, 2 = ordinary text. Flags and id vary so that every allowed flag
 * value (variant % (flags_max + 1)) and the high bits of id are exercised. */
_Static_assert(NVARIANTS > IPC_JOIN_ROOMS_FULL, "variants must cover every flag value");
static void make_msg(struct ipc_msg *m, const struct type_spec *s, int variant)
{
    uint16_t flags = (uint16_t)((unsigned)variant % (s->flags_max + 1u));
    uint32_t id = 0xDEADBE00u ^ (s->type << 4) ^ (uint32_t)variant;

    if (variant == 0)
        ipc_msg_set(m, (enum ipc_type)s->type, id, flags, NULL, 0, NULL, 0, NULL, 0);
    else if (variant == 1)
        ipc_msg_set(m, (enum ipc_type)s->type, id, flags, bin_a, sizeof(bin_a), bin_b,
                    sizeof(bin_b), bin_c, sizeof(bin_c));
    else
        ipc_msg_set(m, (enum ipc_type)s->type, id, flags, "chat", 4, "alice", 5, "hello", 5);
    if (s->nfields == 4) /* the fourth field: nothing, bytes, text */
        ipc_msg_set_field(m, 3, variant == 0 ? NULL : variant == 1 ? bin_b : (const void *)"bob",
                          variant == 0 ? 0 : variant == 1 ? sizeof(bin_b) : 3);
}

static size_t encode_ok(uint8_t *buf, size_t cap, const struct ipc_msg *m)
{
    ssize_t r = ipc_encode(buf, cap, m);

    ck_assert_int_gt(r, 0);
    ck_assert_uint_eq((size_t)r, ipc_encoded_size(m));
    return (size_t)r;
}

static void assert_msg_eq(const struct ipc_msg *got, const struct ipc_msg *want)
{
    ck_assert_uint_eq(got->type, want->type);
    ck_assert_uint_eq(got->flags, want->flags);
    ck_assert_uint_eq(got->id, want->id);
    ck_assert_uint_eq(got->nfields, want->nfields);
    for (uint32_t i = 0; i < want->nfields; i++) {
        ck_assert_uint_eq(got->f[i].len, want->f[i].len);
        if (want->f[i].len > 0)
            ck_assert_mem_eq(got->f[i].p, want->f[i].p, want->f[i].len);
    }
}

/* A successfully decoded frame of n bytes at buf: fields in order, inside
 * the frame, back to back, the last one ending at the frame end. */
static void assert_fields_inside(const uint8_t *buf, size_t n, const struct ipc_msg *m)
{
    const uint8_t *at = buf + IPC_HEADER_LEN;

    ck_assert_int_eq(ipc_type_nfields(m->type), (int)m->nfields);
    ck_assert_uint_le(m->nfields, IPC_FIELDS_MAX);
    for (uint32_t i = 0; i < m->nfields; i++) {
        at += IPC_FIELD_HDR_LEN;
        ck_assert_ptr_eq(m->f[i].p, at);
        ck_assert_uint_le(m->f[i].len, (size_t)(buf + n - at));
        at += m->f[i].len;
    }
    ck_assert_ptr_eq(at, buf + n);
}

/* Decode the first n bytes of src from an exact-size heap copy. A frame it
 * accepts must lie inside the input and be canonical: it encodes back to the
 * same bytes. The copy is freed on return, so only the header members of *m
 * (type, flags, id, nfields, field lengths) may be used afterwards. */
static ssize_t decode_copy(const uint8_t *src, size_t n, size_t max_frame, struct ipc_msg *m)
{
    uint8_t *copy = malloc(n > 0 ? n : 1);
    uint8_t again[BUF_MAX];
    ssize_t r;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, src, n);
    r = ipc_decode(copy, n, max_frame, m);
    if (r > 0) {
        ck_assert_uint_le((size_t)r, n);
        ck_assert_uint_le((size_t)r, max_frame);
        assert_fields_inside(copy, (size_t)r, m);
        if ((size_t)r <= sizeof(again)) {
            ck_assert_int_eq(ipc_encode(again, sizeof(again), m), r);
            ck_assert_mem_eq(again, copy, (size_t)r);
        }
    }
    free(copy);
    return r;
}

/* Raw frame builder: the layout of ipc.h, written out by hand. */
struct raw {
    uint8_t b[BUF_MAX];
    size_t n;
};

static void raw_u8(struct raw *w, unsigned v)
{
    w->b[w->n++] = (uint8_t)v;
}

static void raw_u32(struct raw *w, uint32_t v)
{
    for (int shift = 24; shift >= 0; shift -= 8)
        raw_u8(w, v >> shift & 0xff);
}

/* Overwrite the u32 at offset `at` (inside what is written already). */
static void raw_set32(struct raw *w, size_t at, uint32_t v)
{
    size_t end = w->n;

    w->n = at;
    raw_u32(w, v);
    w->n = end;
}

static void raw_field(struct raw *w, const char *s)
{
    raw_u32(w, (uint32_t)strlen(s));
    memcpy(w->b + w->n, s, strlen(s));
    w->n += strlen(s);
}

static void raw_header(struct raw *w, uint32_t flen, unsigned ver, unsigned type,
                       unsigned flags, uint32_t id)
{
    w->n = 0;
    raw_u32(w, flen);
    raw_u8(w, ver);
    raw_u8(w, type);
    raw_u8(w, flags >> 8 & 0xff);
    raw_u8(w, flags & 0xff);
    raw_u32(w, id);
}

static const char *const raw_vals[IPC_FIELDS_MAX] = { "chat", "bob", "hi", "eve" };

/* A well-formed frame of the given type whose fields are raw_vals (as many as
 * the type has); the caller then breaks one thing. */
static void raw_valid(struct raw *w, unsigned type, unsigned flags)
{
    int nf = ipc_type_nfields(type);

    raw_header(w, 0, IPC_VERSION, type, flags, 7);
    for (int i = 0; i < nf; i++)
        raw_field(w, raw_vals[i]);
    raw_set32(w, 0, (uint32_t)w->n);
}

/* Decoding w must give `want` (an error, or the frame size) with the whole
 * frame and with every prefix of at least `from` bytes; shorter prefixes must
 * answer "need more". */
static void assert_decodes_from(const struct raw *w, size_t from, ssize_t want)
{
    struct ipc_msg m;

    for (size_t k = 0; k <= w->n; k++) {
        ssize_t r = decode_copy(w->b, k, IPC_FRAME_MAX, &m);

        if (k < from)
            ck_assert_msg(r == 0, "prefix %zu of %zu: got %zd, want 0", k, w->n, r);
        else
            ck_assert_msg(r == want, "prefix %zu of %zu: got %zd, want %zd", k, w->n, r, want);
    }
}

/* Every variant of every type, encoded back to back into stream; want[]
 * gets the messages in order. Returns the stream length. */
static size_t build_stream(uint8_t *stream, size_t cap, struct ipc_msg *want, size_t *count)
{
    size_t len = 0;

    *count = 0;
    for (size_t i = 0; i < NSPECS; i++) {
        for (int v = 0; v < NVARIANTS; v++) {
            make_msg(&want[*count], &specs[i], v);
            len += encode_ok(stream + len, cap - len, &want[*count]);
            (*count)++;
        }
    }
    return len;
}

/* ---- roundtrip ---------------------------------------------------------- */

START_TEST(test_type_table)
{
    static const unsigned unknown[] = { 0, IPC_TYPE_LAST + 1, 255, 0x101, 0xffffffffu };

    for (size_t i = 0; i < NSPECS; i++) {
        ck_assert_int_eq(ipc_type_nfields(specs[i].type), specs[i].nfields);
        ck_assert_str_eq(ipc_type_name(specs[i].type), specs[i].name);
    }
    ck_assert_uint_eq(NSPECS, IPC_TYPE_LAST);
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        ck_assert_int_eq(ipc_type_nfields(unknown[i]), -1);
        ck_assert_str_eq(ipc_type_name(unknown[i]), "?");
    }
}
END_TEST

/* Byte-exact layout, so both ends agree on offsets and byte order. */
START_TEST(test_golden_bytes)
{
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x1b, IPC_VERSION, IPC_JOIN_REPLY, 0x00, 0x02,
        0x81, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x04, 'c', 'h', 'a', 't',
        0x00, 0x00, 0x00, 0x03, 'b', 'o', 'b',
    };
    uint8_t buf[64];
    struct ipc_msg m, d;

    memset(&m, 0x5a, sizeof(m));
    ipc_msg_set(&m, IPC_JOIN_REPLY, 0x81020304u, IPC_JOIN_UNAVAILABLE, "chat", 4, "bob", 3,
                "ignored", 7);
    ck_assert_uint_eq(m.nfields, 2);
    ck_assert_ptr_null(m.f[2].p); /* the pair beyond nfields is not kept */
    ck_assert_uint_eq(m.f[2].len, 0);
    ck_assert_uint_eq(encode_ok(buf, sizeof(buf), &m), sizeof(want));
    ck_assert_mem_eq(buf, want, sizeof(want));
    ck_assert_int_eq(ipc_decode(want, sizeof(want), IPC_FRAME_MAX, &d), (ssize_t)sizeof(want));
    assert_msg_eq(&d, &m);
    ck_assert_ptr_eq(d.f[0].p, want + 16);
    ck_assert_ptr_eq(d.f[1].p, want + 24);
}
END_TEST

START_TEST(test_roundtrip_all_types)
{
    uint8_t buf[BUF_MAX];
    struct ipc_msg m, d;

    for (size_t i = 0; i < NSPECS; i++) {
        for (int v = 0; v < NVARIANTS; v++) {
            size_t n;

            make_msg(&m, &specs[i], v);
            ck_assert_uint_eq(m.nfields, (uint32_t)specs[i].nfields);
            n = encode_ok(buf, sizeof(buf), &m);
            /* Fields inside the frame, and it encodes back to itself. */
            ck_assert_int_eq(decode_copy(buf, n, n, &d), (ssize_t)n);
            memset(&d, 0x5a, sizeof(d));
            ck_assert_int_eq(ipc_decode(buf, n, IPC_FRAME_MAX, &d), (ssize_t)n);
            assert_msg_eq(&d, &m);
        }
    }
}
END_TEST

START_TEST(test_back_to_back)
{
    uint8_t stream[BUF_MAX];
    struct ipc_msg want[NSPECS * NVARIANTS], d;
    size_t count, off = 0, len = build_stream(stream, sizeof(stream), want, &count);

    for (size_t k = 0; k < count; k++) {
        ssize_t r = ipc_decode(stream + off, len - off, IPC_FRAME_MAX, &d);

        ck_assert_int_eq(r, (ssize_t)ipc_encoded_size(&want[k]));
        assert_msg_eq(&d, &want[k]);
        off += (size_t)r;
    }
    ck_assert_uint_eq(off, len);
    ck_assert_int_eq(ipc_decode(stream + off, 0, IPC_FRAME_MAX, &d), 0);
}
END_TEST

/* ---- split -------------------------------------------------------------- */

START_TEST(test_split_every_byte)
{
    uint8_t buf[BUF_MAX];
    struct ipc_msg m, d, before;

    for (size_t i = 0; i < NSPECS; i++) {
        for (int v = 0; v < NVARIANTS; v++) {
            size_t n;

            make_msg(&m, &specs[i], v);
            n = encode_ok(buf, sizeof(buf), &m);
            for (size_t k = 0; k < n; k++) {
                memset(&d, 0x5a, sizeof(d));
                before = d;
                ck_assert_msg(decode_copy(buf, k, IPC_FRAME_MAX, &d) == 0,
                              "%s variant %d: prefix %zu of %zu not 'need more'",
                              specs[i].name, v, k, n);
                /* "Nothing consumed": the message is left alone too. */
                ck_assert_mem_eq(&d, &before, sizeof(d));
            }
            /* The whole frame, alone or with the next frame's first bytes. */
            ck_assert_int_eq(decode_copy(buf, n, n, &d), (ssize_t)n);
            memcpy(buf + n, buf, 5);
            ck_assert_int_eq(ipc_decode(buf, n + 5, IPC_FRAME_MAX, &d), (ssize_t)n);
            assert_msg_eq(&d, &m);
        }
    }
}
END_TEST

/* A reader as ipc_conn.c will be: append whatever arrived, decode while whole
 * frames are there, drain them. Chunk sizes 1, 2, 3, 7 and pseudo-random. */
START_TEST(test_split_stream_chunks)
{
    static const size_t chunk_sizes[] = { 1, 2, 3, 7, 0 };
    uint8_t stream[BUF_MAX], inbuf[BUF_MAX];
    struct ipc_msg want[NSPECS * NVARIANTS], d;
    size_t count, len = build_stream(stream, sizeof(stream), want, &count);
    uint32_t seed = 12345;

    for (size_t c = 0; c < sizeof(chunk_sizes) / sizeof(chunk_sizes[0]); c++) {
        size_t sent = 0, have = 0, got = 0;

        while (sent < len) {
            size_t chunk = chunk_sizes[c];
            ssize_t r;

            if (chunk == 0) {
                seed = seed * 1103515245u + 12345u;
                chunk = 1 + (seed >> 16) % 40;
            }
            if (chunk > len - sent)
                chunk = len - sent;
            memcpy(inbuf + have, stream + sent, chunk);
            have += chunk;
            sent += chunk;
            while ((r = decode_copy(inbuf, have, 1024, &d)) > 0) {
                ck_assert_uint_lt(got, count);
                ck_assert_uint_eq(d.type, want[got].type);
                ck_assert_uint_eq(d.id, want[got].id);
                got++;
                memmove(inbuf, inbuf + r, have - (size_t)r);
                have -= (size_t)r;
            }
            ck_assert_int_eq(r, 0);
        }
        ck_assert_uint_eq(got, count);
        ck_assert_uint_eq(have, 0);
    }
}
END_TEST

/* A whole frame followed by a truncated one: the first is returned, the
 * rest needs more (it is one byte short). */
START_TEST(test_truncated)
{
    uint8_t buf[BUF_MAX];
    struct ipc_msg m, d;
    size_t n1, n2;

    ipc_msg_set(&m, IPC_PUBLISH, 9, 0, "chat", 4, "alice", 5, "a longer text body", 18);
    n1 = encode_ok(buf, sizeof(buf), &m);
    n2 = encode_ok(buf + n1, sizeof(buf) - n1, &m);
    ck_assert_int_eq(decode_copy(buf, n1 + n2 - 1, IPC_FRAME_MAX, &d), (ssize_t)n1);
    ck_assert_int_eq(decode_copy(buf + n1, n2 - 1, IPC_FRAME_MAX, &d), 0);
    ck_assert_int_eq(ipc_decode(NULL, 0, IPC_FRAME_MAX, &d), 0);
}
END_TEST

/* ---- limits ------------------------------------------------------------- */

/* An oversized length header is refused with only its 4 bytes there. */
START_TEST(test_max_frame)
{
    static const uint8_t hdr_1025[4] = { 0x00, 0x00, 0x04, 0x01 };
    static const uint8_t hdr_1024[4] = { 0x00, 0x00, 0x04, 0x00 };
    static const uint8_t hdr_max1[4] = { 0x04, 0x00, 0x00, 0x01 }; /* IPC_FRAME_MAX + 1 */
    static const uint8_t hdr_huge[4] = { 0xff, 0xff, 0xff, 0xff };
    uint8_t buf[256];
    struct ipc_msg m, d;
    size_t n;

    ck_assert_int_eq(decode_copy(hdr_1025, 4, 1024, &d), -IPC_ETOOBIG);
    ck_assert_int_eq(decode_copy(hdr_1024, 4, 1024, &d), 0);
    ck_assert_int_eq(decode_copy(hdr_1024, 4, 1023, &d), -IPC_ETOOBIG);
    ck_assert_int_eq(decode_copy(hdr_max1, 4, SIZE_MAX, &d), -IPC_ETOOBIG);
    ck_assert_int_eq(decode_copy(hdr_huge, 4, SIZE_MAX, &d), -IPC_ETOOBIG);
    ck_assert_int_eq(decode_copy(hdr_huge, 3, SIZE_MAX, &d), 0);
    /* max_frame is inclusive, and applies to whole frames too. */
    ipc_msg_set(&m, IPC_DELIVER, 0, 0, "chat", 4, "bob: hi", 7, NULL, 0);
    n = encode_ok(buf, sizeof(buf), &m);
    ck_assert_int_eq(decode_copy(buf, n, n, &d), (ssize_t)n);
    ck_assert_int_eq(decode_copy(buf, n, n - 1, &d), -IPC_ETOOBIG);
    ck_assert_int_eq(decode_copy(buf, n, 0, &d), -IPC_ETOOBIG);
}
END_TEST

/* A PUBLISH of a max_message text and the DELIVER of "user: text", with a
 * 256-byte room and a 128-byte user, fit in ipc_frame_max_for(max_message). */
static void check_fits(size_t max_message)
{
    size_t fmax = ipc_frame_max_for(max_message), cap = max_message + 1024, n;
    uint8_t *line = malloc(128 + 2 + max_message), *buf = malloc(cap), room[256];
    struct ipc_msg m, d;

    ck_assert_ptr_nonnull(line);
    ck_assert_ptr_nonnull(buf);
    memset(room, 'r', sizeof(room));
    memset(line, 'u', 128); /* line = user ": " text */
    memcpy(line + 128, ": ", 2);
    memset(line + 130, 't', max_message);
    ipc_msg_set(&m, IPC_PUBLISH, 1, 0, room, 256, line, 128, line + 130, max_message);
    n = encode_ok(buf, cap, &m);
    ck_assert_uint_le(n, fmax);
    ck_assert_int_eq(ipc_decode(buf, n, fmax, &d), (ssize_t)n);
    ipc_msg_set(&m, IPC_DELIVER, 0, 0, room, 256, line, 130 + max_message, NULL, 0);
    n = encode_ok(buf, cap, &m);
    ck_assert_uint_le(n, fmax);
    ck_assert_int_eq(ipc_decode(buf, n, fmax, &d), (ssize_t)n);
    free(buf);
    free(line);
}

START_TEST(test_frame_max_for)
{
    static const size_t sizes[] = { 0, 1, 512, 4096, 65536, 1024 * 1024 };

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        check_fits(sizes[i]);
        ck_assert_uint_ge(ipc_frame_max_for(sizes[i]), sizes[i] + 512);
        ck_assert_uint_le(ipc_frame_max_for(sizes[i]), IPC_FRAME_MAX);
    }
    ck_assert_uint_le(ipc_frame_max_for(0), ipc_frame_max_for(1));
    ck_assert_uint_eq(ipc_frame_max_for(IPC_FRAME_MAX), IPC_FRAME_MAX);
    ck_assert_uint_eq(ipc_frame_max_for(IPC_FRAME_MAX - 1), IPC_FRAME_MAX);
    ck_assert_uint_eq(ipc_frame_max_for(SIZE_MAX), IPC_FRAME_MAX);
}
END_TEST

START_TEST(test_encode_too_small)
{
    uint8_t buf[BUF_MAX];
    struct ipc_msg m;

    for (size_t i = 0; i < NSPECS; i++) {
        for (int v = 0; v < NVARIANTS; v++) {
            size_t n;

            make_msg(&m, &specs[i], v);
            n = ipc_encoded_size(&m);
            ck_assert_uint_lt(n + 16, sizeof(buf));
            for (size_t cap = 0; cap < n; cap++) {
                memset(buf, CANARY, sizeof(buf));
                ck_assert_int_eq(ipc_encode(buf, cap, &m), -IPC_ENOSPC);
                for (size_t k = cap; k < n + 16; k++)
                    ck_assert_msg(buf[k] == CANARY, "%s cap %zu: byte %zu written",
                                  specs[i].name, cap, k);
            }
            memset(buf, CANARY, sizeof(buf));
            ck_assert_int_eq(ipc_encode(buf, n, &m), (ssize_t)n);
            ck_assert_uint_eq(buf[n], CANARY);
        }
    }
    ck_assert_int_eq(ipc_encode(NULL, 0, &m), -IPC_ENOSPC);
}
END_TEST

/* Frames above IPC_FRAME_MAX are refused before any field byte is read: the
 * text pointer below covers 1 byte, not the length claimed. */
START_TEST(test_encode_above_frame_max)
{
    static const uint8_t one = 'x';
    uint8_t buf[64];
    struct ipc_msg m;
    size_t fixed = IPC_HEADER_LEN + 3 * IPC_FIELD_HDR_LEN + 4 + 5;

    ipc_msg_set(&m, IPC_PUBLISH, 1, 0, "chat", 4, "alice", 5, &one, IPC_FRAME_MAX - fixed + 1);
    ck_assert_uint_eq(ipc_encoded_size(&m), (size_t)IPC_FRAME_MAX + 1);
    ck_assert_int_eq(ipc_encode(buf, sizeof(buf), &m), -IPC_EINVAL);
    ipc_msg_set(&m, IPC_PUBLISH, 1, 0, "chat", 4, "alice", 5, &one, IPC_FRAME_MAX - fixed);
    ck_assert_int_eq(ipc_encode(buf, sizeof(buf), &m), -IPC_ENOSPC);
    ipc_msg_set(&m, IPC_PUBLISH, 1, 0, "chat", 4, "alice", 5, &one, UINT32_MAX);
    ck_assert_int_eq(ipc_encode(buf, sizeof(buf), &m), -IPC_EINVAL);
#if SIZE_MAX > UINT32_MAX
    /* A size_t length that does not fit the u32 field must not wrap. */
    ipc_msg_set(&m, IPC_PUBLISH, 1, 0, "chat", 4, "alice", 5, &one, (size_t)UINT32_MAX + 2);
    ck_assert_uint_eq(m.f[2].len, UINT32_MAX);
    ck_assert_int_eq(ipc_encode(buf, sizeof(buf), &m), -IPC_EINVAL);
#endif
    /* ipc_encoded_size never reads past f[] whatever nfields says. */
    ipc_msg_set(&m, IPC_PING, 1, 0, "chat", 4, NULL, 0, NULL, 0);
    m.nfields = 1000;
    ck_assert_uint_ge(ipc_encoded_size(&m), IPC_HEADER_LEN + 3 * IPC_FIELD_HDR_LEN);
}
END_TEST

/* ---- malformed ---------------------------------------------------------- */

START_TEST(test_length_below_header)
{
    static const uint32_t lens[] = { 0, 1, 4, IPC_HEADER_LEN - 1 };
    struct raw w;

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        raw_header(&w, lens[i], IPC_VERSION, IPC_PING, 0, 0);
        raw_field(&w, "chat");
        assert_decodes_from(&w, 4, -IPC_EPROTO);
    }
}
END_TEST

/* A bad version or type byte is refused as soon as it is there. */
START_TEST(test_bad_version_or_type)
{
    static const struct {
        size_t at;
        uint8_t val;
    } bad[] = {
        { 4, 0 }, { 4, IPC_VERSION + 1 }, { 4, 255 },
        { 5, 0 }, { 5, IPC_TYPE_LAST + 1 }, { 5, 255 },
    };
    struct raw w;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        raw_valid(&w, IPC_LEAVE, 0);
        w.b[bad[i].at] = bad[i].val;
        assert_decodes_from(&w, bad[i].at + 1, -IPC_EPROTO);
    }
}
END_TEST

START_TEST(test_wrong_flags)
{
    struct raw w;

    for (size_t i = 0; i < NSPECS; i++) {
        const unsigned bad[] = { specs[i].flags_max + 1u, 0x0100, 0x8000, 0xffff };

        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            raw_valid(&w, specs[i].type, bad[k]);
            assert_decodes_from(&w, 8, -IPC_EPROTO);
        }
        raw_valid(&w, specs[i].type, specs[i].flags_max);
        assert_decodes_from(&w, w.n, (ssize_t)w.n);
    }
}
END_TEST

START_TEST(test_field_past_frame)
{
    static const uint32_t bad_lens[] = { 100, 0x7fffffff, 0xfffffff0, 0xffffffff };
    struct raw w;

    for (size_t i = 0; i < sizeof(bad_lens) / sizeof(bad_lens[0]); i++) {
        raw_valid(&w, IPC_LEAVE, 0); /* the first field claims too much */
        raw_set32(&w, 12, bad_lens[i]);
        assert_decodes_from(&w, 16, -IPC_EPROTO);
        raw_valid(&w, IPC_PUBLISH, 0); /* the last one does */
        raw_set32(&w, 12 + 8 + 7, bad_lens[i]);
        assert_decodes_from(&w, 31, -IPC_EPROTO);
    }
    /* One byte too long: the first field eats a byte of the second one's
     * length, which then reads as 0x00000362 and runs past the frame. */
    raw_valid(&w, IPC_LEAVE, 0);
    raw_set32(&w, 12, 5);
    assert_decodes_from(&w, 25, -IPC_EPROTO);
}
END_TEST

START_TEST(test_trailing_garbage)
{
    struct raw w;

    for (size_t i = 0; i < NSPECS; i++) {
        for (uint32_t extra = 1; extra <= 5; extra++) {
            size_t last_end;

            raw_valid(&w, specs[i].type, 0);
            /* Known bad once the last field's length is there. */
            last_end = w.n - strlen(raw_vals[specs[i].nfields - 1]);
            raw_set32(&w, 0, (uint32_t)w.n + extra);
            for (uint32_t k = 0; k < extra; k++)
                raw_u8(&w, 0);
            assert_decodes_from(&w, last_end, -IPC_EPROTO);
        }
    }
}
END_TEST

START_TEST(test_field_count)
{
    struct raw w;

    raw_valid(&w, IPC_PING, 0); /* 20 bytes, one field "chat" */
    w.b[5] = IPC_PUBLISH;       /* too short for 3 field headers: known from the type */
    assert_decodes_from(&w, 6, -IPC_EPROTO);
    w.b[5] = IPC_LEAVE; /* room for 2 headers, but "chat" leaves none for the second */
    assert_decodes_from(&w, 16, -IPC_EPROTO);
    raw_valid(&w, IPC_PUBLISH, 0); /* a LEAVE with three fields */
    w.b[5] = IPC_LEAVE;
    assert_decodes_from(&w, 24, -IPC_EPROTO);
}
END_TEST

START_TEST(test_encode_invalid)
{
    static const unsigned bad_types[] = { 0, IPC_TYPE_LAST + 1, 255 };
    static const uint32_t bad_counts[] = { 0, 1, 2, 4, UINT32_MAX };
    uint8_t buf[256];
    struct ipc_msg m;

    for (size_t i = 0; i < sizeof(bad_counts) / sizeof(bad_counts[0]); i++) {
        ipc_msg_set(&m, IPC_PUBLISH, 1, 0, "chat", 4, "bob", 3, "hi", 2);
        m.nfields = bad_counts[i];
        ck_assert_int_eq(ipc_encode(buf, sizeof(buf), &m), -IPC_EINVAL);
    }
    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
        ipc_msg_set(&m, IPC_PING, 0, 0, "chat", 4, NULL, 0, NULL, 0);
        m.type = (uint8_t)bad_types[i];
        ck_assert_int_eq(ipc_encode(buf, sizeof(buf), &m), -IPC_EINVAL);
    }
    for (size_t i = 0; i < NSPECS; i++) {
        make_msg(&m, &specs[i], 2);
        m.flags = (uint16_t)(specs[i].flags_max + 1u);
        ck_assert_int_eq(ipc_encode(buf, sizeof(buf), &m), -IPC_EINVAL);
        m.flags = 0x8000;
        ck_assert_int_eq(ipc_encode(buf, sizeof(buf), &m), -IPC_EINVAL);
    }
    ipc_msg_set(&m, IPC_LEAVE, 1, 0, "chat", 4, NULL, 1, NULL, 0);
    ck_assert_int_eq(ipc_encode(buf, sizeof(buf), &m), -IPC_EINVAL);
    ipc_msg_set(&m, IPC_LEAVE, 1, 0, "chat", 4, NULL, 0, NULL, 0);
    ck_assert_int_eq(ipc_encode(buf, sizeof(buf), &m), 12 + 8 + 4);
}
END_TEST

static uint64_t rng_state;

static uint64_t rng_next(void) /* xorshift64 */
{
    uint64_t x = rng_state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* Fill buf with one fuzz input, returns its length: pure noise, noise behind
 * a plausible header, or a valid frame with a few bytes changed. */
static size_t fuzz_input(uint8_t *buf, size_t cap)
{
    uint64_t r = rng_next();
    size_t n = (size_t)(r >> 8) % 72;
    unsigned mode = (unsigned)(r & 3);

    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)rng_next();
    if (mode == 1 && n >= 12) {
        uint32_t flen = (uint32_t)(n - (rng_next() % 4));

        buf[0] = 0;
        buf[1] = 0;
        buf[2] = (uint8_t)(flen >> 8);
        buf[3] = (uint8_t)flen;
        buf[4] = IPC_VERSION;
        buf[5] = (uint8_t)(rng_next() % 12);
        buf[6] = 0;
        buf[7] = (uint8_t)(rng_next() % 3);
        for (size_t i = 12; i + 4 <= n; i += 4 + buf[i + 3]) {
            buf[i] = buf[i + 1] = buf[i + 2] = 0;
            buf[i + 3] = (uint8_t)(rng_next() % 12);
        }
    } else if (mode >= 2) {
        struct ipc_msg m;
        ssize_t e;

        make_msg(&m, &specs[rng_next() % NSPECS], (int)(rng_next() % NVARIANTS));
        e = ipc_encode(buf, cap, &m);
        ck_assert_int_gt(e, 0);
        n = (size_t)e;
        for (uint64_t k = rng_next() % 3; k > 0; k--)
            buf[rng_next() % n] = (uint8_t)rng_next();
        if (mode == 3)
            n -= (size_t)(rng_next() % 2);
    }
    return n;
}

START_TEST(test_garbage_loop)
{
    static const size_t maxes[] = { IPC_FRAME_MAX, SIZE_MAX, 40, 12, 0 };
    uint8_t in[BUF_MAX];
    size_t ok = 0, more = 0, proto = 0, toobig = 0;

    rng_state = 0x9E3779B97F4A7C15ull;
    for (int iter = 0; iter < 100000; iter++) {
        size_t n = fuzz_input(in, sizeof(in));
        size_t max_frame = maxes[rng_next() % 5];
        struct ipc_msg m;
        ssize_t r = decode_copy(in, n, max_frame, &m);

        /* decode_copy checked that an accepted frame lies inside the input,
         * within max_frame, and encodes back to the same bytes. */
        if (r > 0) {
            ok++;
        } else if (r == 0) {
            more++;
        } else if (r == -IPC_EPROTO) {
            proto++;
        } else {
            ck_assert_int_eq(r, -IPC_ETOOBIG);
            toobig++;
        }
        if (iter % 8 != 0)
            continue;
        /* Every prefix agrees: "need more" until the frame or the error. */
        for (size_t k = 0; k < n; k++) {
            ssize_t rk = decode_copy(in, k, max_frame, &m);

            if (r > 0)
                ck_assert_int_eq(rk, (size_t)r <= k ? r : 0);
            else
                ck_assert_msg(rk == 0 || rk == r, "prefix %zu: %zd vs %zd", k, rk, r);
        }
    }
    /* The inputs must reach every outcome, or the loop proves little. */
    ck_assert_uint_gt(ok, 1000);
    ck_assert_uint_gt(more, 1000);
    ck_assert_uint_gt(proto, 1000);
    ck_assert_uint_gt(toobig, 1000);
}
END_TEST

/* ---- history messages ----------------------------------------------------- */

/* m encodes to exactly the bytes of w (written by hand), and decodes back. */
static void assert_golden(const struct ipc_msg *m, const struct raw *w)
{
    uint8_t buf[BUF_MAX];
    struct ipc_msg d;
    size_t n = encode_ok(buf, sizeof(buf), m);

    ck_assert_uint_eq(n, w->n);
    ck_assert_mem_eq(buf, w->b, n);
    ck_assert_int_eq(decode_copy(buf, n, IPC_FRAME_MAX, &d), (ssize_t)n);
    memset(&d, 0x5a, sizeof(d));
    ck_assert_int_eq(ipc_decode(buf, n, IPC_FRAME_MAX, &d), (ssize_t)n);
    assert_msg_eq(&d, m);
}

START_TEST(test_join_after_roundtrip)
{
    static const char msg_id[] = "1733448000000-0";
    struct ipc_msg m;
    struct raw w;

    ck_assert_int_eq(IPC_JOIN_PLAIN, 0);
    ck_assert_int_eq(IPC_JOIN_REREGISTER, 1);
    ck_assert_int_eq(IPC_JOIN_LAST, 2);
    ck_assert_int_eq(IPC_JOIN_AFTER, 3);
    ipc_msg_set(&m, IPC_JOIN, 0x01020304u, IPC_JOIN_AFTER, "lobby", 5, "alice", 5, msg_id,
                strlen(msg_id));
    ck_assert_uint_eq(m.nfields, 3);
    raw_header(&w, 0, IPC_VERSION, IPC_JOIN, IPC_JOIN_AFTER, 0x01020304u);
    raw_field(&w, "lobby");
    raw_field(&w, "alice");
    raw_field(&w, msg_id);
    raw_set32(&w, 0, (uint32_t)w.n);
    ck_assert_uint_eq(w.n, 12 + 4 + 5 + 4 + 5 + 4 + 15);
    assert_golden(&m, &w);
    /* the other modes: a count, and the default room with no history */
    ipc_msg_set(&m, IPC_JOIN, 9, IPC_JOIN_LAST, "", 0, "bob", 3, "50", 2);
    raw_header(&w, 0, IPC_VERSION, IPC_JOIN, IPC_JOIN_LAST, 9);
    raw_field(&w, "");
    raw_field(&w, "bob");
    raw_field(&w, "50");
    raw_set32(&w, 0, (uint32_t)w.n);
    assert_golden(&m, &w);
    ipc_msg_set(&m, IPC_JOIN, 10, IPC_JOIN_PLAIN, "", 0, "bob", 3, "", 0);
    raw_header(&w, 0, IPC_VERSION, IPC_JOIN, IPC_JOIN_PLAIN, 10);
    raw_field(&w, "");
    raw_field(&w, "bob");
    raw_field(&w, "");
    raw_set32(&w, 0, (uint32_t)w.n);
    assert_golden(&m, &w);
}
END_TEST

START_TEST(test_history_end_roundtrip)
{
    const uint16_t both = IPC_HISTORY_F_TRUNCATED | IPC_HISTORY_F_UNAVAILABLE;
    struct ipc_msg m;
    struct raw w;

    ck_assert_int_eq(IPC_HISTORY_F_TRUNCATED, 1);
    ck_assert_int_eq(IPC_HISTORY_F_UNAVAILABLE, 2);
    ipc_msg_set(&m, IPC_HISTORY_END, 0xfffffffeu, both, "lobby", 5, "alice", 5, "12-3", 4);
    raw_header(&w, 0, IPC_VERSION, IPC_HISTORY_END, 3, 0xfffffffeu);
    raw_field(&w, "lobby");
    raw_field(&w, "alice");
    raw_field(&w, "12-3");
    raw_set32(&w, 0, (uint32_t)w.n);
    ck_assert_uint_eq(w.b[6], 0x00);
    ck_assert_uint_eq(w.b[7], 0x03);
    assert_golden(&m, &w);
    /* no last id (nothing replayed) */
    ipc_msg_set(&m, IPC_HISTORY_END, 1, IPC_HISTORY_F_UNAVAILABLE, "", 0, "bob", 3, "", 0);
    raw_header(&w, 0, IPC_VERSION, IPC_HISTORY_END, 2, 1);
    raw_field(&w, "");
    raw_field(&w, "bob");
    raw_field(&w, "");
    raw_set32(&w, 0, (uint32_t)w.n);
    assert_golden(&m, &w);
}
END_TEST

START_TEST(test_history_types_flags_above_max)
{
    /* each new type's flags one above its max, encoded and decoded */
    static const struct {
        unsigned type;
        unsigned bad;
    } k[] = {
        { IPC_JOIN, IPC_JOIN_AFTER + 1 },
        { IPC_HISTORY_END, (IPC_HISTORY_F_TRUNCATED | IPC_HISTORY_F_UNAVAILABLE) + 1 },
        { IPC_HISTORY_END, 0x8003 },
        { IPC_PUBLISH, IPC_PUBLISH_F_ACK + 1 },
        { IPC_PUBLISH_OK, 1 },
        { IPC_HISTORY, 1 },
        { IPC_SEEN, 1 },
    };
    uint8_t buf[BUF_MAX];
    struct ipc_msg m;
    struct raw w;

    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        ipc_msg_set(&m, (enum ipc_type)k[i].type, 5, (uint16_t)k[i].bad, "r", 1, "u", 1, "1-0", 3);
        ck_assert_msg(ipc_encode(buf, sizeof(buf), &m) == -IPC_EINVAL, "%s flags %u encoded",
                      ipc_type_name(k[i].type), k[i].bad);
        raw_valid(&w, k[i].type, k[i].bad);
        assert_decodes_from(&w, 8, -IPC_EPROTO);
        /* one less is fine */
        ipc_msg_set(&m, (enum ipc_type)k[i].type, 5, (uint16_t)((k[i].bad & 0xff) - 1), "r", 1,
                    "u", 1, "1-0", 3);
        ck_assert_int_gt(ipc_encode(buf, sizeof(buf), &m), 0);
    }
}
END_TEST

static Suite *ipc_suite(void)
{
    Suite *s = suite_create("ipc");
    TCase *tc;

    tc = tcase_create("roundtrip");
    tcase_add_test(tc, test_type_table);
    tcase_add_test(tc, test_golden_bytes);
    tcase_add_test(tc, test_roundtrip_all_types);
    tcase_add_test(tc, test_back_to_back);
    suite_add_tcase(s, tc);

    tc = tcase_create("history");
    tcase_add_test(tc, test_join_after_roundtrip);
    tcase_add_test(tc, test_history_end_roundtrip);
    tcase_add_test(tc, test_history_types_flags_above_max);
    suite_add_tcase(s, tc);

    tc = tcase_create("split");
    tcase_add_test(tc, test_split_every_byte);
    tcase_add_test(tc, test_split_stream_chunks);
    tcase_add_test(tc, test_truncated);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_test(tc, test_max_frame);
    tcase_add_test(tc, test_frame_max_for);
    tcase_add_test(tc, test_encode_too_small);
    tcase_add_test(tc, test_encode_above_frame_max);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_add_test(tc, test_length_below_header);
    tcase_add_test(tc, test_bad_version_or_type);
    tcase_add_test(tc, test_wrong_flags);
    tcase_add_test(tc, test_field_past_frame);
    tcase_add_test(tc, test_trailing_garbage);
    tcase_add_test(tc, test_field_count);
    tcase_add_test(tc, test_encode_invalid);
    tcase_add_test(tc, test_garbage_loop);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(ipc_suite());
}
