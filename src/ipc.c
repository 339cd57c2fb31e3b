/* ipc.c -- worker <-> broker frame codec (layout and field table in ipc.h).
 *
 * Pure: no I/O, no allocation, no logging. Integers are read and written
 * byte by byte in network order, so the buffers need no alignment and the
 * host's endianness never matters. The decoder is incremental and strict: it
 * answers "need more" only while the bytes it has are a valid prefix of some
 * frame, and refuses a bad length, version, type, flag value or field length
 * as soon as the bytes that carry it have arrived.
 */
#include "ipc.h"

#include <string.h>

/* Slack on top of the chat text in ipc_frame_max_for: room (256), user (128),
 * frame and field headers (24), the "user: " prefix and a stream id (42) use
 * about 460 bytes. */
#define IPC_FRAME_SLACK 4096u

struct ipc_type_info {
    const char *name;
    int nfields;
    uint16_t flags_max; /* largest flags value the type allows */
};

/* Indexed by enum ipc_type; slot 0 is the invalid type. */
static const struct ipc_type_info ipc_types[IPC_TYPE_LAST + 1] = {
    [IPC_HELLO] = { "HELLO", 2, 0 },
    [IPC_JOIN] = { "JOIN", 3, IPC_JOIN_AFTER },
    [IPC_JOIN_REPLY] = { "JOIN_REPLY", 2, IPC_JOIN_ROOMS_FULL },
    [IPC_LEAVE] = { "LEAVE", 2, IPC_LEAVE_F_ORPHAN },
    [IPC_PUBLISH] = { "PUBLISH", 3, IPC_PUBLISH_F_ACK },
    [IPC_PUBLISH_FAIL] = { "PUBLISH_FAIL", 3, IPC_FAIL_F_DIRECT },
    [IPC_DELIVER] = { "DELIVER", 2, IPC_DELIVER_F_TAGGED },
    [IPC_LINK] = { "LINK", 1, IPC_LINK_UP },
    [IPC_PING] = { "PING", 1, 0 },
    [IPC_PONG] = { "PONG", 1, 0 },
    [IPC_DIRECT] = { "DIRECT", 4, 0 },
    [IPC_DELIVER_DIRECT] = { "DELIVER_DIRECT", 4, 0 },
    [IPC_WHO] = { "WHO", 2, 0 },
    [IPC_WHO_REPLY] = { "WHO_REPLY", 4, IPC_WHO_UNAVAILABLE },
    [IPC_PUBLISH_OK] = { "PUBLISH_OK", 3, 0 },
    [IPC_HISTORY] = { "HISTORY", 3, 0 },
    [IPC_HISTORY_END] = { "HISTORY_END", 3, IPC_HISTORY_F_TRUNCATED | IPC_HISTORY_F_UNAVAILABLE },
    [IPC_SEEN] = { "SEEN", 2, 0 },
};

/* The table entry of a known type, NULL otherwise. */
static const struct ipc_type_info *ipc_type_info_get(unsigned type)
{
    if (type == 0 || type > IPC_TYPE_LAST)
        return NULL;
    return &ipc_types[type];
}

static uint16_t ipc_rd16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | (unsigned)p[1]);
}

static uint32_t ipc_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void ipc_wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void ipc_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* a + b, saturated at SIZE_MAX (field lengths are u32: three of them
 * overflow a 32-bit size_t). */
static size_t ipc_size_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

int ipc_type_nfields(unsigned type)
{
    const struct ipc_type_info *ti = ipc_type_info_get(type);

    return ti != NULL ? ti->nfields : -1;
}

const char *ipc_type_name(unsigned type)
{
    const struct ipc_type_info *ti = ipc_type_info_get(type);

    return ti != NULL ? ti->name : "?";
}

/* Counts at most IPC_FIELDS_MAX fields whatever m->nfields says, so a bad
 * count never reads past m->f; the result saturates at SIZE_MAX. */
size_t ipc_encoded_size(const struct ipc_msg *m)
{
    size_t n = IPC_HEADER_LEN;
    uint32_t nf = m->nfields < IPC_FIELDS_MAX ? m->nfields : IPC_FIELDS_MAX;

    for (uint32_t i = 0; i < nf; i++) {
        n = ipc_size_add(n, IPC_FIELD_HDR_LEN);
        n = ipc_size_add(n, m->f[i].len);
    }
    return n;
}

/* Everything is validated and the size checked against cap before the first
 * byte is written, so a failed call leaves buf untouched. */
ssize_t ipc_encode(uint8_t *buf, size_t cap, const struct ipc_msg *m)
{
    const struct ipc_type_info *ti = ipc_type_info_get(m->type);
    size_t total, off;

    if (ti == NULL || m->nfields != (uint32_t)ti->nfields || m->flags > ti->flags_max)
        return -IPC_EINVAL;
    for (uint32_t i = 0; i < m->nfields; i++) {
        if (m->f[i].p == NULL && m->f[i].len > 0)
            return -IPC_EINVAL;
    }
    total = ipc_encoded_size(m);
    if (total > IPC_FRAME_MAX)
        return -IPC_EINVAL;
    if (total > cap)
        return -IPC_ENOSPC;

    ipc_wr32(buf, (uint32_t)total);
    buf[4] = IPC_VERSION;
    buf[5] = m->type;
    ipc_wr16(buf + 6, m->flags);
    ipc_wr32(buf + 8, m->id);
    off = IPC_HEADER_LEN;
    for (uint32_t i = 0; i < m->nfields; i++) {
        ipc_wr32(buf + off, m->f[i].len);
        off += IPC_FIELD_HDR_LEN;
        /* memcpy with a NULL source is undefined even for 0 bytes. */
        if (m->f[i].len > 0)
            memcpy(buf + off, m->f[i].p, m->f[i].len);
        off += m->f[i].len;
    }
    return (ssize_t)total;
}

/* Walks whatever part of the frame is there, header first, then each field
 * header, and fails on the first byte that cannot start or continue a valid
 * frame. Returns 0 if the frame is valid so far but incomplete. *m is only
 * written when a whole frame is returned. All offsets stay <= the frame
 * length, which is <= IPC_FRAME_MAX, so no sum below can wrap. */
ssize_t ipc_decode(const uint8_t *buf, size_t len, size_t max_frame, struct ipc_msg *m)
{
    const struct ipc_type_info *ti;
    struct ipc_msg out;
    size_t flen, off;
    uint32_t nf;

    if (len < 4)
        return 0;
    flen = ipc_rd32(buf);
    if (flen < IPC_HEADER_LEN)
        return -IPC_EPROTO;
    if (flen > max_frame || flen > IPC_FRAME_MAX)
        return -IPC_ETOOBIG;

    if (len < 5)
        return 0;
    if (buf[4] != IPC_VERSION)
        return -IPC_EPROTO;

    if (len < 6)
        return 0;
    ti = ipc_type_info_get(buf[5]);
    if (ti == NULL)
        return -IPC_EPROTO;
    nf = (uint32_t)ti->nfields;
    /* Too short for the field headers alone. */
    if (flen - IPC_HEADER_LEN < (size_t)nf * IPC_FIELD_HDR_LEN)
        return -IPC_EPROTO;

    if (len < 8)
        return 0;
    out.flags = ipc_rd16(buf + 6);
    if (out.flags > ti->flags_max)
        return -IPC_EPROTO;

    if (len < IPC_HEADER_LEN)
        return 0;
    out.type = buf[5];
    out.id = ipc_rd32(buf + 8);
    out.nfields = nf;

    off = IPC_HEADER_LEN;
    for (uint32_t i = 0; i < nf; i++) {
        /* Invariant: flen - off >= (nf - i) field headers, so the space
         * left for this field's bytes below cannot underflow. */
        size_t later = (size_t)(nf - 1 - i) * IPC_FIELD_HDR_LEN;
        size_t space, field_len;

        if (len < off + IPC_FIELD_HDR_LEN)
            return 0;
        field_len = ipc_rd32(buf + off);
        off += IPC_FIELD_HDR_LEN;
        space = flen - off - later;
        if (field_len > space)
            return -IPC_EPROTO;
        out.f[i].p = buf + off;
        out.f[i].len = (uint32_t)field_len;
        off += field_len;
    }
    /* The fields must end exactly at the frame end (known as soon as the last
     * field's length is there): trailing bytes inside a frame are as suspect
     * as a field running past it. */
    if (off != flen)
        return -IPC_EPROTO;
    if (len < flen)
        return 0;

    for (uint32_t i = nf; i < IPC_FIELDS_MAX; i++) {
        out.f[i].p = NULL;
        out.f[i].len = 0;
    }
    *m = out;
    return (ssize_t)flen;
}

size_t ipc_frame_max_for(size_t max_message)
{
    if (max_message > IPC_FRAME_MAX - IPC_FRAME_SLACK)
        return IPC_FRAME_MAX;
    if (max_message < IPC_NAMES_MAX)
        max_message = IPC_NAMES_MAX; /* a WHO_REPLY's names */
    return max_message + IPC_FRAME_SLACK;
}

/* Pairs beyond the type's field count are ignored and their slots cleared.
 * A length above UINT32_MAX cannot be represented: it is stored as
 * UINT32_MAX, which is above IPC_FRAME_MAX, so ipc_encode refuses the message
 * with -IPC_EINVAL instead of sending a truncated field. An unknown type gets
 * nfields 0 (ipc_encode refuses it too). */
void ipc_msg_set(struct ipc_msg *m, enum ipc_type type, uint32_t id, uint16_t flags,
                 const void *f0, size_t l0, const void *f1, size_t l1,
                 const void *f2, size_t l2)
{
    const void *p[IPC_FIELDS_MAX] = { f0, f1, f2, NULL };
    size_t l[IPC_FIELDS_MAX] = { l0, l1, l2, 0 };
    int nf = ipc_type_nfields((unsigned)type);

    m->type = (uint8_t)type;
    m->id = id;
    m->flags = flags;
    m->nfields = nf > 0 ? (uint32_t)nf : 0;
    for (uint32_t i = 0; i < IPC_FIELDS_MAX; i++) {
        if (i < m->nfields) {
            m->f[i].p = p[i];
            m->f[i].len = l[i] > UINT32_MAX ? UINT32_MAX : (uint32_t)l[i];
        } else {
            m->f[i].p = NULL;
            m->f[i].len = 0;
        }
    }
}

void ipc_msg_set_field(struct ipc_msg *m, unsigned i, const void *p, size_t len)
{
    if (i >= IPC_FIELDS_MAX)
        return;
    m->f[i].p = p;
    m->f[i].len = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
}

uint32_t ipc_frame_length(const uint8_t hdr[4])
{
    return ipc_rd32(hdr);
}
