/* chat_proto.c -- see chat_proto.h. */
#include "chat_proto.h"

#include <stdio.h>
#include <string.h>

#include "stream_id.h"

static const char *const chat_req_names[] = {
    [CHAT_REQ_SEND] = "send", [CHAT_REQ_JOIN] = "join",     [CHAT_REQ_LEAVE] = "leave",
    [CHAT_REQ_WHO] = "who",   [CHAT_REQ_DIRECT] = "direct",
};

#define CHAT_REQ_NTYPES (sizeof(chat_req_names) / sizeof(chat_req_names[0]))

const char *chat_req_type_name(enum chat_req_type t)
{
    return (size_t)t < CHAT_REQ_NTYPES ? chat_req_names[t] : "?";
}

static int chat_req_fail(char *reason, size_t cap, const char *why, const char *detail)
{
    snprintf(reason, cap, "%s%s", why, detail);
    return -1;
}

static int chat_req_bad_field(char *reason, size_t cap, const char *field)
{
    snprintf(reason, cap, "field \"%s\" must be a string", field);
    return -1;
}

/* An optional string field: 0 (absent: *p NULL, or a string), -1 (not a string). */
static int chat_req_string(json_t *root, const char *name, const char **p, size_t *len)
{
    json_t *v = json_object_get(root, name);

    *p = NULL;
    *len = 0;
    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return -1;
    *p = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

/* A join's "history" (a count) or "after" (a msg id): one of them at most. */
static int chat_req_join_fields(struct chat_req *r, char *reason, size_t cap)
{
    json_t *h = json_object_get(r->root, "history");
    struct stream_id id;

    if (h != NULL) {
        if (!json_is_integer(h) || json_integer_value(h) < 0 ||
            json_integer_value(h) > CHAT_PROTO_HISTORY_MAX)
            return chat_req_fail(reason, cap, CHAT_PROTO_BAD_HISTORY, "");
        r->history = (long)json_integer_value(h);
    }
    if (chat_req_string(r->root, "after", &r->after, &r->after_len) == -1 ||
        (r->after != NULL && stream_id_parse(r->after, r->after_len, &id) == -1)) {
        r->after = NULL;
        return chat_req_fail(reason, cap, "field \"after\" must be a message id", "");
    }
    if (h != NULL && r->after != NULL)
        return chat_req_fail(reason, cap, "\"history\" and \"after\" exclude each other", "");
    return 0;
}

int chat_req_parse(const char *text, size_t len, struct chat_req *r, char *reason, size_t cap)
{
    json_error_t err;
    json_t *type, *id;
    size_t i;

    memset(r, 0, sizeof(*r));
    /* a NUL inside a string cannot pass for the end of a name or a room */
    r->root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (r->root == NULL)
        return chat_req_fail(reason, cap, "bad JSON: ", err.text);
    type = json_object_get(r->root, "type");
    if (!json_is_object(r->root) || !json_is_string(type))
        return chat_req_fail(reason, cap, "a request must be a JSON object with a string \"type\"",
                             "");
    r->type_name = json_string_value(type);
    id = json_object_get(r->root, "id");
    if ((json_is_string(id) && json_string_length(id) <= CHAT_PROTO_ID_MAX) || json_is_integer(id))
        r->id = id;
    for (i = 0; i < CHAT_REQ_NTYPES; i++)
        if (strcmp(r->type_name, chat_req_names[i]) == 0 &&
            json_string_length(type) == strlen(chat_req_names[i]))
            break;
    if (i == CHAT_REQ_NTYPES)
        return chat_req_fail(reason, cap, "unknown request type", "");
    r->type = (enum chat_req_type)i;
    if (chat_req_string(r->root, "room", &r->room, &r->room_len) == -1)
        return chat_req_bad_field(reason, cap, "room");
    if (r->type == CHAT_REQ_SEND || r->type == CHAT_REQ_DIRECT) {
        if (chat_req_string(r->root, "text", &r->text, &r->text_len) == -1 || r->text == NULL)
            return chat_req_bad_field(reason, cap, "text");
    }
    if (r->type == CHAT_REQ_DIRECT) {
        if (chat_req_string(r->root, "to", &r->to, &r->to_len) == -1 || r->to == NULL)
            return chat_req_bad_field(reason, cap, "to");
    }
    r->history = -1;
    if (r->type == CHAT_REQ_JOIN)
        return chat_req_join_fields(r, reason, cap);
    return 0;
}

void chat_req_free(struct chat_req *r)
{
    json_decref(r->root);
    r->root = NULL;
}

/* ---- events ------------------------------------------------------------------- */

/* The fields every event has; NULL when a string is not valid UTF-8. */
static json_t *chat_ev_new(const char *type, const char *room, size_t rlen, const char *user,
                           size_t ulen, uint64_t ts)
{
    json_t *o = json_object();
    json_t *r = room != NULL ? json_stringn(room, rlen) : json_null();
    json_t *u = json_stringn(user, ulen);

    if (o == NULL || r == NULL || u == NULL) {
        json_decref(o);
        json_decref(r);
        json_decref(u);
        return NULL;
    }
    /* each set takes its value, even when it fails */
    if (json_object_set_new(o, "type", json_string(type)) != 0 ||
        json_object_set_new(o, "room", r) != 0 || json_object_set_new(o, "user", u) != 0 ||
        json_object_set_new(o, "ts", json_integer((json_int_t)ts)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static char *chat_ev_dump(json_t *o)
{
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    json_decref(o);
    return s;
}

/* Set a string field; on failure (bad UTF-8, memory) the event is dropped. */
static json_t *chat_ev_set(json_t *o, const char *key, const char *p, size_t len)
{
    json_t *v;

    if (o == NULL)
        return NULL;
    v = json_stringn(p, len);
    if (v == NULL || json_object_set_new(o, key, v) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *chat_ev_welcome(const char *room, size_t rlen, const char *user, size_t ulen, uint64_t ts)
{
    return chat_ev_dump(chat_ev_new("welcome", room, rlen, user, ulen, ts));
}

char *chat_ev_message(const char *room, size_t rlen, const char *user, size_t ulen,
                      const char *text, size_t tlen, const char *to, size_t tolen, uint64_t ts)
{
    json_t *o = chat_ev_new("message", room, rlen, user, ulen, ts);

    if (to != NULL)
        o = chat_ev_set(o, "to", to, tolen);
    return chat_ev_dump(chat_ev_set(o, "text", text, tlen));
}

char *chat_ev_message_stored(const char *room, size_t rlen, const char *user, size_t ulen,
                             const char *text, size_t tlen, const char *msg_id, size_t idlen,
                             uint64_t ts)
{
    json_t *o = chat_ev_new("message", room, rlen, user, ulen, ts);

    o = chat_ev_set(o, "msg_id", msg_id, idlen);
    return chat_ev_dump(chat_ev_set(o, "text", text, tlen));
}

char *chat_ev_ack(const char *room, size_t rlen, const char *user, size_t ulen, const char *msg_id,
                  size_t idlen, json_t *id, uint64_t ts)
{
    json_t *o = chat_ev_new("ack", room, rlen, user, ulen, ts);

    o = chat_ev_set(o, "request", "send", 4);
    if (o != NULL && msg_id == NULL && json_object_set_new(o, "msg_id", json_null()) != 0) {
        json_decref(o);
        o = NULL;
    } else if (msg_id != NULL) {
        o = chat_ev_set(o, "msg_id", msg_id, idlen);
    }
    if (o != NULL && id != NULL && json_object_set(o, "id", id) != 0) {
        json_decref(o);
        o = NULL;
    }
    return chat_ev_dump(o);
}

char *chat_ev_history(const char *room, size_t rlen, const char *user, size_t ulen, long count,
                      int truncated, uint64_t ts)
{
    json_t *o = chat_ev_new("history", room, rlen, user, ulen, ts);

    if (o != NULL && (json_object_set_new(o, "count", json_integer(count)) != 0 ||
                      json_object_set_new(o, "truncated", json_boolean(truncated)) != 0)) {
        json_decref(o);
        o = NULL;
    }
    return chat_ev_dump(o);
}

char *chat_ev_joined(const char *room, size_t rlen, const char *user, size_t ulen, uint64_t ts)
{
    return chat_ev_dump(chat_ev_new("joined", room, rlen, user, ulen, ts));
}

char *chat_ev_left(const char *room, size_t rlen, const char *user, size_t ulen, uint64_t ts)
{
    return chat_ev_dump(chat_ev_new("left", room, rlen, user, ulen, ts));
}

char *chat_ev_presence(const char *room, size_t rlen, const char *user, size_t ulen,
                       long long count, const char *names, size_t nameslen, uint64_t ts)
{
    json_t *o = chat_ev_new("presence", room, rlen, user, ulen, ts);
    json_t *list = json_array();
    size_t n = 0, at = 0;

    if (o == NULL || list == NULL)
        goto fail;
    while (at < nameslen) { /* names separated by '\n'; empty ones skipped */
        const char *nl = memchr(names + at, '\n', nameslen - at);
        size_t len = nl != NULL ? (size_t)(nl - (names + at)) : nameslen - at;
        if (len > 0) {
            json_t *v = json_stringn(names + at, len);
            if (v == NULL || json_array_append_new(list, v) != 0)
                goto fail;
            n++;
        }
        at += len + 1;
    }
    if (json_object_set_new(o, "count", json_integer(count)) != 0)
        goto fail;
    if (json_object_set_new(o, "users", list) != 0) /* takes list, even when it fails */
        goto fail_list_owned;
    if (json_object_set_new(o, "truncated", json_boolean((long long)n < count)) != 0)
        goto fail_list_owned;
    return chat_ev_dump(o);
fail:
    json_decref(list);
fail_list_owned:
    json_decref(o);
    return NULL;
}

char *chat_ev_error(const char *request, const char *room, size_t rlen, const char *user,
                    size_t ulen, const char *reason, json_t *id, uint64_t ts)
{
    json_t *o = chat_ev_new("error", room, rlen, user, ulen, ts);
    json_t *req = request != NULL ? json_string(request) : json_null();
    json_t *why = json_string(reason);

    if (why == NULL) /* a parser's message quoting bytes that are not UTF-8 */
        why = json_string("bad JSON");
    if (o == NULL || req == NULL || why == NULL) {
        json_decref(o);
        json_decref(req);
        json_decref(why);
        return NULL;
    }
    if (json_object_set_new(o, "request", req) != 0 || json_object_set_new(o, "reason", why) != 0 ||
        (id != NULL && json_object_set(o, "id", id) != 0)) {
        json_decref(o);
        return NULL;
    }
    return chat_ev_dump(o);
}
