/* traffic.c -- senders, receivers and streams for the failover tests. */
#include "traffic.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "harness.h"

#define TR_PROTO_HEADER "Sec-WebSocket-Protocol: redis-chat.v1"
#define TR_TEXT_MAX 4096

static json_t *tr_next(struct wsc *c, int timeout_ms)
{
    char text[TR_TEXT_MAX];

    return wsc_recv_text(c, text, sizeof(text), timeout_ms) > 0 ? json_loads(text, 0, NULL)
                                                                 : NULL;
}

static const char *tr_str(const json_t *ev, const char *key)
{
    const json_t *v = json_object_get(ev, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int tr_type_is(const json_t *ev, const char *type)
{
    const char *t = tr_str(ev, "type");

    return t != NULL && strcmp(t, type) == 0;
}

void tr_connect(struct wsc *c, int port, const char *room, const char *me)
{
    char path[160];
    json_t *ev;
    int st;

    snprintf(path, sizeof(path), "/chat/%s/%s?history=0", room, me);
    st = wsc_connect(c, port, path, TR_PROTO_HEADER, T_MSG_MS);
    ck_assert_msg(st == 101, "%s: HTTP %d", path, st);
    ev = tr_next(c, T_MSG_MS);
    ck_assert_msg(ev != NULL && tr_type_is(ev, "welcome"), "%s: no welcome", path);
    json_decref(ev);
}

void tr_send(struct wsc *c, struct tr_sent *s)
{
    char req[128];

    if (s->n - s->answered >= TR_WINDOW)
        return; /* a client that keeps sending without answers is refused */
    ck_assert_int_lt(s->n, TR_MSGS_MAX);
    snprintf(req, sizeof(req), "{\"type\":\"send\",\"id\":\"%d\",\"text\":\"m%d\"}", s->n, s->n);
    ck_assert_int_eq(wsc_send_text(c, req), 0);
    s->n++;
}

void tr_read_answers(struct wsc *c, struct tr_sent *s, int wait_ms)
{
    json_t *ev;

    while ((ev = tr_next(c, wait_ms)) != NULL) {
        const char *id = tr_str(ev, "id");
        int i = id != NULL ? atoi(id) : -1;
        wait_ms = 0;
        if (i >= 0 && i < s->n && tr_type_is(ev, "ack") && tr_str(ev, "msg_id") != NULL) {
            snprintf(s->id[i], sizeof(s->id[i]), "%s", tr_str(ev, "msg_id"));
            s->answered++;
        } else if (i >= 0 && i < s->n && tr_type_is(ev, "error")) {
            s->refused[i] = 1;
            s->answered++;
        }
        json_decref(ev);
    }
}

int tr_all_answered(struct wsc *c, struct tr_sent *s, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;

    while (s->answered < s->n && h_now_ms() < end)
        tr_read_answers(c, s, 200);
    return s->answered == s->n;
}

int tr_acked(const struct tr_sent *s)
{
    int i, n = 0;

    for (i = 0; i < s->n; i++)
        n += s->id[i][0] != '\0';
    return n;
}

int tr_has(const struct tr_ids *g, const char *id)
{
    int i;

    for (i = 0; i < g->n; i++)
        if (strcmp(g->id[i], id) == 0)
            return 1;
    return 0;
}

void tr_receive(struct wsc *c, struct tr_ids *g, const char *who, int quiet_ms)
{
    json_t *ev;

    while ((ev = tr_next(c, quiet_ms)) != NULL) {
        const char *id = tr_str(ev, "msg_id");
        if (tr_type_is(ev, "message") && id != NULL) {
            ck_assert_msg(!tr_has(g, id), "%s: message %s twice", who, id);
            ck_assert_int_lt(g->n, TR_MSGS_MAX);
            snprintf(g->id[g->n++], sizeof(g->id[0]), "%s", id);
        }
        json_decref(ev);
    }
    ck_assert_msg(!c->close_received && !c->eof && c->fd != -1,
                  "%s: disconnected (close code %d %s)", who, c->close_code, c->close_reason);
}

void tr_ids_of_xrange(char *out, struct tr_ids *g)
{
    char *line, *save = NULL;

    for (line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        size_t d1 = strspn(line, "0123456789");
        if (d1 > 0 && line[d1] == '-' &&
            line[d1 + 1 + strspn(line + d1 + 1, "0123456789")] == '\0' && g->n < TR_MSGS_MAX)
            snprintf(g->id[g->n++], sizeof(g->id[0]), "%s", line);
    }
}

int tr_missing(const struct tr_ids *want, const struct tr_ids *got)
{
    int i, n = 0;

    for (i = 0; i < want->n; i++)
        n += !tr_has(got, want->id[i]);
    return n;
}

int tr_lost_acked(const struct tr_sent *s, const struct tr_ids *kept)
{
    int i, n = 0;

    for (i = 0; i < s->n; i++)
        n += s->id[i][0] != '\0' && !tr_has(kept, s->id[i]);
    return n;
}
