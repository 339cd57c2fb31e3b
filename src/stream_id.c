/* stream_id.c -- see stream_id.h. */
#include "stream_id.h"

#include <stdio.h>

/* One decimal number of s[*i..len) up to `stop` or the end; -1 when empty,
 * not digits or above 64 bits. */
static int stream_id_number(const char *s, size_t len, size_t *i, char stop, uint64_t *out)
{
    size_t start = *i;
    uint64_t v = 0;

    for (; *i < len && s[*i] != stop; (*i)++) {
        unsigned d = (unsigned char)s[*i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (*i == start)
        return -1;
    *out = v;
    return 0;
}

int stream_id_parse(const char *s, size_t len, struct stream_id *id)
{
    size_t i = 0;

    if (s == NULL || stream_id_number(s, len, &i, '-', &id->ms) == -1 || i == len)
        return -1;
    i++; /* the '-' */
    return stream_id_number(s, len, &i, '\0', &id->seq) == -1 || i != len ? -1 : 0;
}

int stream_id_cmp(const struct stream_id *a, const struct stream_id *b)
{
    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return 0;
}

size_t stream_id_format(const struct stream_id *id, char out[STREAM_ID_MAX])
{
    int n = snprintf(out, STREAM_ID_MAX, "%llu-%llu", (unsigned long long)id->ms,
                     (unsigned long long)id->seq);

    return n > 0 ? (size_t)n : 0;
}
