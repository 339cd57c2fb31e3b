/* fuzz_ipc.c -- libFuzzer target for the worker <-> broker frame decoder.
 *
 * The input is a byte stream as a link would receive it. ipc_decode() runs
 * over it frame by frame, the way ipc_link.c drains its buffer, until it
 * asks for more bytes or refuses the stream. Every decoded frame must be
 * consistent (size = its length header, fields inside it and back to back,
 * field count from the type) and must re-encode with ipc_encode() to exactly
 * the bytes it came from. The decoder's incremental promise is checked too:
 * any prefix of a frame is "need more" (0), never a frame or an error, and
 * an error on a prefix of the stream is the same error or 0. A smaller
 * max_frame refuses exactly the frames above it. abort() on any violation.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* A frame limit such as a worker with max-message-size 4k uses. */
#define FUZZ_SMALL_MAX_MESSAGE 4096

static int fuzz_msg_eq(const struct ipc_msg *a, const struct ipc_msg *b)
{
    if (a->type != b->type || a->flags != b->flags || a->id != b->id ||
        a->nfields != b->nfields)
        return 0;
    for (uint32_t i = 0; i < IPC_FIELDS_MAX; i++)
        if (a->f[i].p != b->f[i].p || a->f[i].len != b->f[i].len)
            return 0;
    return 1;
}

static void fuzz_check_frame(const uint8_t *p, size_t avail, ssize_t n, const struct ipc_msg *m)
{
    size_t flen = (size_t)n, off = IPC_HEADER_LEN, small_max;
    uint8_t *re;
    ssize_t e;
    struct ipc_msg m2;

    FUZZ_CHECK(flen >= IPC_HEADER_LEN && flen <= avail && flen <= IPC_FRAME_MAX);
    FUZZ_CHECK(ipc_frame_length(p) == flen);
    FUZZ_CHECK(ipc_type_nfields(m->type) >= 1);
    FUZZ_CHECK(m->nfields == (uint32_t)ipc_type_nfields(m->type));
    FUZZ_CHECK(m->nfields <= IPC_FIELDS_MAX);
    FUZZ_CHECK(strcmp(ipc_type_name(m->type), "?") != 0);
    FUZZ_CHECK(m->type == p[5] && p[4] == IPC_VERSION);
    /* fields lie back to back inside the frame, each after its length */
    for (uint32_t i = 0; i < m->nfields; i++) {
        off += IPC_FIELD_HDR_LEN;
        FUZZ_CHECK(m->f[i].p == p + off);
        FUZZ_CHECK(m->f[i].len <= flen - off);
        off += m->f[i].len;
    }
    FUZZ_CHECK(off == flen);
    for (uint32_t i = m->nfields; i < IPC_FIELDS_MAX; i++)
        FUZZ_CHECK(m->f[i].p == NULL && m->f[i].len == 0);

    /* re-encode to the identical bytes; one byte short is ENOSPC, untouched */
    FUZZ_CHECK(ipc_encoded_size(m) == flen);
    re = malloc(flen);
    FUZZ_CHECK(re != NULL);
    memset(re, 0xa5, flen);
    FUZZ_CHECK(ipc_encode(re, flen - 1, m) == -IPC_ENOSPC);
    for (size_t i = 0; i < flen; i++)
        FUZZ_CHECK(re[i] == 0xa5);
    e = ipc_encode(re, flen, m);
    FUZZ_CHECK(e == n);
    FUZZ_CHECK(memcmp(re, p, flen) == 0);
    free(re);

    /* ipc_msg_set builds the same message from its parts (a fourth field,
     * as DIRECT, DELIVER_DIRECT and WHO_REPLY have, with ipc_msg_set_field) */
    ipc_msg_set(&m2, (enum ipc_type)m->type, m->id, m->flags, m->f[0].p, m->f[0].len,
                m->f[1].p, m->f[1].len, m->f[2].p, m->f[2].len);
    for (unsigned i = 3; i < m->nfields; i++)
        ipc_msg_set_field(&m2, i, m->f[i].p, m->f[i].len);
    FUZZ_CHECK(fuzz_msg_eq(m, &m2));

    /* the frame alone decodes the same; any prefix asks for more */
    FUZZ_CHECK(ipc_decode(p, flen, IPC_FRAME_MAX, &m2) == n && fuzz_msg_eq(m, &m2));
    for (size_t k = 0; k < flen; k++) {
        if (k > 64 && k != flen / 2 && k != flen - 1 && k % 997 != 0)
            continue; /* every short prefix, a sample of the long ones */
        FUZZ_CHECK(ipc_decode(p, k, IPC_FRAME_MAX, &m2) == 0);
    }

    /* a worker's smaller limit: the same frame, or ETOOBIG */
    small_max = ipc_frame_max_for(FUZZ_SMALL_MAX_MESSAGE);
    e = ipc_decode(p, avail, small_max, &m2);
    if (flen <= small_max)
        FUZZ_CHECK(e == n && fuzz_msg_eq(m, &m2));
    else
        FUZZ_CHECK(e == -IPC_ETOOBIG);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;

    while (pos <= size) {
        const uint8_t *p = data + pos;
        size_t avail = size - pos;
        struct ipc_msg m;
        ssize_t n;

        memset(&m, 0x5a, sizeof(m));
        n = ipc_decode(p, avail, IPC_FRAME_MAX, &m);
        if (n > 0) {
            fuzz_check_frame(p, avail, n, &m);
            pos += (size_t)n;
            continue;
        }
        /* ipc.c: *m is only written when a whole frame is returned */
        {
            struct ipc_msg untouched;
            memset(&untouched, 0x5a, sizeof(untouched));
            FUZZ_CHECK(memcmp(&m, &untouched, sizeof(m)) == 0);
        }
        if (n == 0) {
            /* a valid prefix: no bigger than the frame it announces */
            if (avail >= 4)
                FUZZ_CHECK(ipc_frame_length(p) > avail);
        } else {
            ssize_t pre;

            FUZZ_CHECK(n == -IPC_EPROTO || n == -IPC_ETOOBIG);
            FUZZ_CHECK(avail >= 4);
            if (n == -IPC_ETOOBIG)
                FUZZ_CHECK(ipc_frame_length(p) > IPC_FRAME_MAX);
            /* fewer bytes: the same refusal, or not decided yet */
            pre = ipc_decode(p, avail - 1, IPC_FRAME_MAX, &m);
            FUZZ_CHECK(pre == n || pre == 0);
            pre = ipc_decode(p, avail / 2, IPC_FRAME_MAX, &m);
            FUZZ_CHECK(pre == n || pre == 0);
        }
        break;
    }
    return 0;
}
