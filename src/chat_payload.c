/* chat_payload.c -- see chat_payload.h. */
#include "chat_payload.h"

#include <string.h>

static const char chat_payload_joined_suffix[] = CHAT_PAYLOAD_SEP CHAT_TEXT_JOINED;
static const char chat_payload_left_suffix[] = CHAT_PAYLOAD_LEFT_SUFFIX;

/* Appends to an output buffer; each length is checked against what is
 * left, so no sum can wrap. */
struct chat_payload_out {
    char *p;
    size_t cap, len;
    int failed;
};

static void cpo_put(struct chat_payload_out *o, const void *s, size_t n)
{
    if (o->failed || n > o->cap - o->len) {
        o->failed = 1;
        return;
    }
    if (n > 0) /* an empty text may come as a NULL pointer */
        memcpy(o->p + o->len, s, n);
    o->len += n;
}

static ssize_t cpo_end(const struct chat_payload_out *o)
{
    return o->failed ? -1 : (ssize_t)o->len;
}

static void cpo_tag(struct chat_payload_out *o, enum chat_payload_form form, char tag)
{
    if (form == CHAT_PAYLOAD_TAGGED)
        cpo_put(o, &tag, 1);
}

ssize_t chat_payload_message(enum chat_payload_form form, char *out, size_t cap, const char *user,
                             size_t ulen, const void *text, size_t tlen)
{
    struct chat_payload_out o = {out, cap, 0, 0};

    cpo_tag(&o, form, CHAT_PAYLOAD_TAG_MESSAGE);
    cpo_put(&o, user, ulen);
    cpo_put(&o, CHAT_PAYLOAD_SEP, sizeof(CHAT_PAYLOAD_SEP) - 1);
    cpo_put(&o, text, tlen);
    return cpo_end(&o);
}

/* 'M' id '\n' "user: text"; *id_at is where the id starts. */
static ssize_t chat_payload_stored_build(char *out, size_t cap, const char *id, size_t idlen,
                                         const char *user, size_t ulen, const void *text,
                                         size_t tlen, size_t *id_at)
{
    struct chat_payload_out o = {out, cap, 0, 0};
    char tag = CHAT_PAYLOAD_TAG_STORED;

    cpo_put(&o, &tag, 1);
    *id_at = o.len;
    cpo_put(&o, id, idlen);
    cpo_put(&o, "\n", 1);
    cpo_put(&o, user, ulen);
    cpo_put(&o, CHAT_PAYLOAD_SEP, sizeof(CHAT_PAYLOAD_SEP) - 1);
    cpo_put(&o, text, tlen);
    return cpo_end(&o);
}

ssize_t chat_payload_stored(char *out, size_t cap, const char *id, size_t idlen, const char *user,
                            size_t ulen, const void *text, size_t tlen)
{
    size_t at;

    return chat_payload_stored_build(out, cap, id, idlen, user, ulen, text, tlen, &at);
}

ssize_t chat_payload_stored_template(char *out, size_t cap, const char *user, size_t ulen,
                                     const void *text, size_t tlen, size_t *id_at)
{
    return chat_payload_stored_build(out, cap, "", 0, user, ulen, text, tlen, id_at);
}

static ssize_t chat_payload_notice(enum chat_payload_form form, char *out, size_t cap, char tag,
                                   const char *user, size_t ulen, const char *suffix, size_t slen)
{
    struct chat_payload_out o = {out, cap, 0, 0};

    cpo_tag(&o, form, tag);
    cpo_put(&o, user, ulen);
    if (form == CHAT_PAYLOAD_SEED)
        cpo_put(&o, suffix, slen);
    return cpo_end(&o);
}

ssize_t chat_payload_joined(enum chat_payload_form form, char *out, size_t cap, const char *user,
                            size_t ulen)
{
    return chat_payload_notice(form, out, cap, CHAT_PAYLOAD_TAG_JOINED, user, ulen,
                               chat_payload_joined_suffix, sizeof(chat_payload_joined_suffix) - 1);
}

ssize_t chat_payload_left(enum chat_payload_form form, char *out, size_t cap, const char *user,
                          size_t ulen)
{
    return chat_payload_notice(form, out, cap, CHAT_PAYLOAD_TAG_LEFT, user, ulen,
                               chat_payload_left_suffix, sizeof(chat_payload_left_suffix) - 1);
}

void chat_payload_left_affixes(enum chat_payload_form form, const char **prefix,
                               const char **suffix)
{
    static const char tag[2] = {CHAT_PAYLOAD_TAG_LEFT, '\0'};

    *prefix = form == CHAT_PAYLOAD_SEED ? "" : tag;
    *suffix = form == CHAT_PAYLOAD_SEED ? chat_payload_left_suffix : "";
}

ssize_t chat_payload_sender(const void *payload, size_t len)
{
    const char *colon = len > 0 ? memchr(payload, ':', len) : NULL;

    return colon != NULL ? colon - (const char *)payload : -1;
}

/* "user: text" into ev (a message), or -1 without a "user: ". */
static int chat_payload_split(const char *p, size_t len, struct chat_event *ev)
{
    ssize_t ulen = chat_payload_sender(p, len);
    size_t seplen = sizeof(CHAT_PAYLOAD_SEP) - 1;

    if (ulen <= 0 || len - (size_t)ulen < seplen || memcmp(p + ulen, CHAT_PAYLOAD_SEP, seplen) != 0)
        return -1;
    ev->kind = CHAT_EV_MESSAGE;
    ev->user = p;
    ev->ulen = (size_t)ulen;
    ev->text = p + ulen + seplen;
    ev->tlen = len - (size_t)ulen - seplen;
    return 0;
}

int chat_payload_stored_split(const void *payload, size_t len, const char **id, size_t *idlen,
                              const char **line, size_t *line_len)
{
    const char *p = payload, *nl;

    if (len < 2 || p[0] != CHAT_PAYLOAD_TAG_STORED || (nl = memchr(p + 1, '\n', len - 1)) == NULL ||
        nl == p + 1)
        return -1;
    *id = p + 1;
    *idlen = (size_t)(nl - (p + 1));
    *line = nl + 1;
    *line_len = len - (size_t)(nl + 1 - p);
    return 0;
}

static int chat_payload_is(const struct chat_event *ev, const char *text)
{
    return ev->tlen == strlen(text) && memcmp(ev->text, text, ev->tlen) == 0;
}

int chat_payload_parse(enum chat_payload_form form, const void *payload, size_t len,
                       struct chat_event *ev)
{
    const char *p = payload;

    memset(ev, 0, sizeof(*ev));
    if (form == CHAT_PAYLOAD_SEED) {
        ev->line = p;
        ev->line_len = len;
        if (chat_payload_split(p, len, ev) == -1) {
            ev->kind = CHAT_EV_LINE;
            ev->text = p;
            ev->tlen = len;
        } else if (chat_payload_is(ev, CHAT_TEXT_JOINED)) {
            ev->kind = CHAT_EV_JOINED;
        } else if (chat_payload_is(ev, CHAT_TEXT_LEFT)) {
            ev->kind = CHAT_EV_LEFT;
        }
        return 0;
    }
    if (len < 2)
        return -1;
    switch (p[0]) {
    case CHAT_PAYLOAD_TAG_STORED:
        if (chat_payload_stored_split(p, len, &ev->id, &ev->idlen, &ev->line, &ev->line_len) == -1)
            return -1;
        return chat_payload_split(ev->line, ev->line_len, ev);
    case CHAT_PAYLOAD_TAG_MESSAGE:
        ev->line = p + 1;
        ev->line_len = len - 1;
        return chat_payload_split(p + 1, len - 1, ev);
    case CHAT_PAYLOAD_TAG_JOINED:
    case CHAT_PAYLOAD_TAG_LEFT:
        ev->kind = p[0] == CHAT_PAYLOAD_TAG_JOINED ? CHAT_EV_JOINED : CHAT_EV_LEFT;
        ev->user = p + 1;
        ev->ulen = len - 1;
        return 0;
    default:
        return -1;
    }
}

ssize_t chat_payload_direct(char *out, size_t cap, const char *room, size_t rlen, const char *from,
                            size_t flen, const char *to, size_t tolen, const void *text,
                            size_t tlen)
{
    struct chat_payload_out o = {out, cap, 0, 0};

    cpo_put(&o, room, rlen);
    cpo_put(&o, "\n", 1);
    cpo_put(&o, from, flen);
    cpo_put(&o, "\n", 1);
    cpo_put(&o, to, tolen);
    cpo_put(&o, "\n", 1);
    cpo_put(&o, text, tlen);
    return cpo_end(&o);
}

/* The part of p[0..len) up to the next '\n': NULL when there is none. */
static const char *chat_payload_part(const char **p, const char *end, size_t *n)
{
    const char *s = *p, *nl = s < end ? memchr(s, '\n', (size_t)(end - s)) : NULL;

    if (nl == NULL)
        return NULL;
    *n = (size_t)(nl - s);
    *p = nl + 1;
    return s;
}

int chat_payload_direct_parse(const void *payload, size_t len, struct chat_direct *d)
{
    const char *p = payload, *end = p + len;

    if ((d->room = chat_payload_part(&p, end, &d->rlen)) == NULL ||
        (d->from = chat_payload_part(&p, end, &d->flen)) == NULL ||
        (d->to = chat_payload_part(&p, end, &d->tolen)) == NULL || d->flen == 0 || d->tolen == 0)
        return -1;
    d->text = p;
    d->tlen = (size_t)(end - p);
    return 0;
}

ssize_t chat_payload_direct_line(char *out, size_t cap, const char *from, size_t flen,
                                 const void *text, size_t tlen)
{
    struct chat_payload_out o = {out, cap, 0, 0};

    cpo_put(&o, from, flen);
    cpo_put(&o, CHAT_PAYLOAD_DIRECT_SEP, sizeof(CHAT_PAYLOAD_DIRECT_SEP) - 1);
    cpo_put(&o, text, tlen);
    return cpo_end(&o);
}
