/* fuzz_chat_proto.c -- libFuzzer target for the typed protocol redis-chat.v1
 * (worker/chat_proto.c): what a client sends, and the events built from
 * what other instances publish.
 *
 * Input: byte 0 selects, the rest is the data.
 *
 *   byte 0 bit 0 clear: the data is one request frame. chat_req_parse never
 *          crashes or leaks; on success the type is in range and named, and
 *          room / text / to are exactly the strings of the frame's fields
 *          (jansson's view: same pointer and length, no NUL inside), text
 *          present for send and direct, to for direct; the id, when kept, is
 *          the frame's "id", a string of at most 64 bytes or an integer. On
 *          failure the reason is one of docs/protocol.md's, NUL-terminated
 *          within its buffer. Either way the error event for it is valid
 *          JSON that says the same (request, reason, id).
 *   byte 0 bit 0 set: the data is strings for the events: five fields, each
 *          a length byte and that many bytes (room, user, text, to, names),
 *          then 8 bytes of count. Every chat_ev_* gives NULL or JSON that
 *          parses back to the same strings, with exactly the fields of its
 *          type; NULL exactly when a string is not valid UTF-8. The presence
 *          list is the names split on '\n'.
 *
 * FUZZ_PROTO_VALID_NAMES=1 keeps room, user and the error's request valid
 * UTF-8 (see fuzz/README.md: chat_ev_new leaks one of room and user when
 * the other is not; chat_ev_error leaks the reason when the request is
 * not).
 * abort() on any violation.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_proto.h"
#include "fuzz_check.h"
#include "fuzz_utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_TS 1764950400000ULL
#define FZ_USER "fuzzer"

/* Read an event back: an object with exactly nkeys members, its type, the
 * room (NULL: JSON null), user and ts. Frees text. */
static json_t *fz_read(char *text, size_t nkeys, const char *type, const char *room, size_t rlen,
                       const char *user, size_t ulen)
{
    json_error_t err;
    json_t *o, *v;

    FUZZ_CHECK(text != NULL);
    FUZZ_CHECK(strchr(text, '\n') == NULL); /* one compact line */
    o = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (o == NULL)
        fprintf(stderr, "not JSON: %s: %s\n", err.text, text);
    FUZZ_CHECK(o != NULL && json_is_object(o));
    FUZZ_CHECK(json_object_size(o) == nkeys);
    free(text);
    v = json_object_get(o, "type");
    FUZZ_CHECK(json_is_string(v) && strcmp(json_string_value(v), type) == 0);
    v = json_object_get(o, "room");
    if (room == NULL)
        FUZZ_CHECK(json_is_null(v));
    else
        FUZZ_CHECK(json_is_string(v) && json_string_length(v) == rlen &&
                   memcmp(json_string_value(v), room, rlen) == 0);
    v = json_object_get(o, "user");
    FUZZ_CHECK(json_is_string(v) && json_string_length(v) == ulen &&
               memcmp(json_string_value(v), user, ulen) == 0);
    v = json_object_get(o, "ts");
    FUZZ_CHECK(json_is_integer(v) && json_integer_value(v) == (json_int_t)FZ_TS);
    return o;
}

static int fz_str_is(json_t *o, const char *key, const char *p, size_t len)
{
    json_t *v = json_object_get(o, key);

    return json_is_string(v) && json_string_length(v) == len &&
           memcmp(json_string_value(v), p, len) == 0;
}

/* A string field of the request's root, as the view must show it. */
static void fz_check_view(json_t *root, const char *key, const char *p, size_t len, int required)
{
    json_t *v = json_object_get(root, key);

    if (p == NULL) {
        FUZZ_CHECK(len == 0 && !required && v == NULL);
        return;
    }
    FUZZ_CHECK(json_is_string(v));
    FUZZ_CHECK(p == json_string_value(v) && len == json_string_length(v));
    FUZZ_CHECK(memchr(p, '\0', len) == NULL); /* NULs are refused as bad JSON */
    FUZZ_CHECK(fz_utf8_valid((const uint8_t *)p, len));
}

static int fz_starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void fz_request(const uint8_t *data, size_t size)
{
    struct chat_req r;
    char reason[256];
    char *frame = malloc(size > 0 ? size : 1); /* exact size: no NUL after it */
    char *ev;
    json_t *o;
    int rc;

    FUZZ_CHECK(frame != NULL);
    memcpy(frame, data, size);
    memset(reason, 0x5a, sizeof(reason));
    rc = chat_req_parse(frame, size, &r, reason, sizeof(reason));
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (r.id != NULL) {
        FUZZ_CHECK(r.root != NULL && r.id == json_object_get(r.root, "id"));
        FUZZ_CHECK((json_is_string(r.id) && json_string_length(r.id) <= CHAT_PROTO_ID_MAX) ||
                   json_is_integer(r.id));
    } else if (r.root != NULL && json_is_object(r.root) && r.type_name != NULL) {
        /* an id that qualified is never dropped */
        json_t *id = json_object_get(r.root, "id");
        FUZZ_CHECK(!json_is_integer(id) &&
                   !(json_is_string(id) && json_string_length(id) <= CHAT_PROTO_ID_MAX));
    }
    if (r.type_name != NULL) {
        json_t *t = json_object_get(r.root, "type");
        FUZZ_CHECK(json_is_object(r.root) && json_is_string(t) && r.type_name == json_string_value(t));
    }
    if (rc == 0) {
        FUZZ_CHECK(r.root != NULL && json_is_object(r.root));
        FUZZ_CHECK((unsigned)r.type <= CHAT_REQ_DIRECT);
        FUZZ_CHECK(r.type_name != NULL && strcmp(r.type_name, chat_req_type_name(r.type)) == 0);
        fz_check_view(r.root, "room", r.room, r.room_len, 0);
        if (r.type == CHAT_REQ_SEND || r.type == CHAT_REQ_DIRECT) {
            FUZZ_CHECK(r.text != NULL);
            fz_check_view(r.root, "text", r.text, r.text_len, 1);
        } else {
            FUZZ_CHECK(r.text == NULL && r.text_len == 0);
        }
        if (r.type == CHAT_REQ_DIRECT) {
            FUZZ_CHECK(r.to != NULL);
            fz_check_view(r.root, "to", r.to, r.to_len, 1);
        } else {
            FUZZ_CHECK(r.to == NULL && r.to_len == 0);
        }
    } else {
        FUZZ_CHECK(memchr(reason, '\0', sizeof(reason)) != NULL);
        FUZZ_CHECK(fz_starts(reason, "bad JSON: ") ||
                   strcmp(reason, "a request must be a JSON object with a string \"type\"") == 0 ||
                   strcmp(reason, "unknown request type") == 0 ||
                   strcmp(reason, "field \"room\" must be a string") == 0 ||
                   strcmp(reason, "field \"text\" must be a string") == 0 ||
                   strcmp(reason, "field \"to\" must be a string") == 0 ||
                   /* a join's history / after */
                   (r.type == CHAT_REQ_JOIN &&
                    (strcmp(reason, CHAT_PROTO_BAD_HISTORY) == 0 ||
                     strcmp(reason, "field \"after\" must be a message id") == 0 ||
                     strcmp(reason, "\"history\" and \"after\" exclude each other") == 0)));
        /* no request type unless the frame was an object with a string type */
        if (fz_starts(reason, "bad JSON: ") || fz_starts(reason, "a request must"))
            FUZZ_CHECK(r.type_name == NULL);
        else
            FUZZ_CHECK(r.type_name != NULL);
        /* the error event a client gets for it */
        ev = chat_ev_error(r.type_name, NULL, 0, FZ_USER, strlen(FZ_USER), reason, r.id, FZ_TS);
        o = fz_read(ev, r.id != NULL ? 7 : 6, "error", NULL, 0, FZ_USER, strlen(FZ_USER));
        if (r.type_name != NULL)
            FUZZ_CHECK(fz_str_is(o, "request", r.type_name, strlen(r.type_name)));
        else
            FUZZ_CHECK(json_is_null(json_object_get(o, "request")));
        FUZZ_CHECK(fz_str_is(o, "reason", reason, strlen(reason)) ||
                   (!fz_utf8_valid((const uint8_t *)reason, strlen(reason)) &&
                    fz_str_is(o, "reason", "bad JSON", 8)));
        if (r.id != NULL)
            FUZZ_CHECK(json_equal(json_object_get(o, "id"), r.id));
        json_decref(o);
    }
    chat_req_free(&r);
    FUZZ_CHECK(r.root == NULL);
    free(frame);
}

/* The next field of the event strings: a length byte and the bytes. */
static const char *fz_field(const uint8_t **p, const uint8_t *end, size_t *len)
{
    const char *s;
    size_t n;

    if (*p >= end) {
        *len = 0;
        return "";
    }
    n = **p;
    (*p)++;
    if (n > (size_t)(end - *p))
        n = (size_t)(end - *p);
    s = (const char *)*p;
    *p += n;
    *len = n;
    return s;
}

static void fz_events(const uint8_t *data, size_t size, int valid_names)
{
    const uint8_t *p = data, *end = data + size;
    size_t rlen, ulen, tlen, tolen, nlen;
    const char *room = fz_field(&p, end, &rlen), *user = fz_field(&p, end, &ulen);
    const char *text = fz_field(&p, end, &tlen), *to = fz_field(&p, end, &tolen);
    const char *names = fz_field(&p, end, &nlen);
    long long count = 0;
    int rok, uok, tok, took, nok;
    char *ev;
    json_t *o, *users, *id;

    for (int i = 0; i < 8 && p < end; i++)
        count = (long long)((unsigned long long)count << 8 | *p++);
    if (valid_names && !fz_utf8_valid((const uint8_t *)room, rlen))
        room = "r", rlen = 1;
    if (valid_names && !fz_utf8_valid((const uint8_t *)user, ulen))
        user = "u", ulen = 1;
    rok = fz_utf8_valid((const uint8_t *)room, rlen);
    uok = fz_utf8_valid((const uint8_t *)user, ulen);
    tok = fz_utf8_valid((const uint8_t *)text, tlen);
    took = fz_utf8_valid((const uint8_t *)to, tolen);
    nok = fz_utf8_valid((const uint8_t *)names, nlen);

    ev = chat_ev_welcome(room, rlen, user, ulen, FZ_TS);
    FUZZ_CHECK((ev != NULL) == (rok && uok));
    if (ev != NULL)
        json_decref(fz_read(ev, 4, "welcome", room, rlen, user, ulen));
    ev = chat_ev_joined(room, rlen, user, ulen, FZ_TS);
    FUZZ_CHECK((ev != NULL) == (rok && uok));
    if (ev != NULL)
        json_decref(fz_read(ev, 4, "joined", room, rlen, user, ulen));
    ev = chat_ev_left(room, rlen, user, ulen, FZ_TS);
    FUZZ_CHECK((ev != NULL) == (rok && uok));
    if (ev != NULL)
        json_decref(fz_read(ev, 4, "left", room, rlen, user, ulen));

    /* a room message, then a direct one */
    ev = chat_ev_message(room, rlen, user, ulen, text, tlen, NULL, 0, FZ_TS);
    FUZZ_CHECK((ev != NULL) == (rok && uok && tok));
    if (ev != NULL) {
        o = fz_read(ev, 5, "message", room, rlen, user, ulen);
        FUZZ_CHECK(fz_str_is(o, "text", text, tlen));
        json_decref(o);
    }
    ev = chat_ev_message(room, rlen, user, ulen, text, tlen, to, tolen, FZ_TS);
    FUZZ_CHECK((ev != NULL) == (rok && uok && tok && took));
    if (ev != NULL) {
        o = fz_read(ev, 6, "message", room, rlen, user, ulen);
        FUZZ_CHECK(fz_str_is(o, "text", text, tlen));
        FUZZ_CHECK(fz_str_is(o, "to", to, tolen));
        json_decref(o);
    }

    /* presence: the names split on '\n', empty ones skipped */
    ev = chat_ev_presence(room, rlen, user, ulen, count, names, nlen, FZ_TS);
    FUZZ_CHECK((ev != NULL) == (rok && uok && nok));
    if (ev != NULL) {
        size_t k = 0, start = 0;

        o = fz_read(ev, 7, "presence", room, rlen, user, ulen);
        FUZZ_CHECK(json_is_integer(json_object_get(o, "count")) &&
                   json_integer_value(json_object_get(o, "count")) == count);
        users = json_object_get(o, "users");
        FUZZ_CHECK(json_is_array(users));
        if (nlen > 0) {
            for (size_t i = 0; i <= nlen; i++) {
                if (i < nlen && names[i] != '\n')
                    continue;
                if (i == start) { /* an empty name is skipped */
                    start = i + 1;
                    continue;
                }
                FUZZ_CHECK(k < json_array_size(users));
                {
                    json_t *v = json_array_get(users, k);
                    FUZZ_CHECK(json_is_string(v) && json_string_length(v) == i - start &&
                               memcmp(json_string_value(v), names + start, i - start) == 0);
                }
                k++;
                start = i + 1;
            }
        }
        FUZZ_CHECK(json_array_size(users) == k);
        FUZZ_CHECK(json_is_boolean(json_object_get(o, "truncated")) &&
                   json_is_true(json_object_get(o, "truncated")) == ((long long)k < count));
        json_decref(o);
    }

    /* an error: the text as the reason (a C string: up to its first NUL),
     * the "to" bytes as the request, with and without the room */
    {
        char *reason = strndup(text, tlen), *req = strndup(to, tolen);
        size_t rl, ql;
        int rsok, qok;

        FUZZ_CHECK(reason != NULL && req != NULL);
        if (valid_names && !fz_utf8_valid((const uint8_t *)req, strlen(req)))
            req[0] = '\0';
        rl = strlen(reason);
        ql = strlen(req);
        rsok = fz_utf8_valid((const uint8_t *)reason, rl);
        qok = fz_utf8_valid((const uint8_t *)req, ql);
        id = (tlen & 1) ? json_integer((json_int_t)count) : json_stringn(user, ulen);
        ev = chat_ev_error(req, room, rlen, user, ulen, reason, id, FZ_TS);
        FUZZ_CHECK((ev != NULL) == (rok && uok && qok));
        if (ev != NULL) {
            o = fz_read(ev, id != NULL ? 7 : 6, "error", room, rlen, user, ulen);
            FUZZ_CHECK(fz_str_is(o, "request", req, ql));
            FUZZ_CHECK(rsok ? fz_str_is(o, "reason", reason, rl)
                            : fz_str_is(o, "reason", "bad JSON", 8));
            if (id != NULL)
                FUZZ_CHECK(json_equal(json_object_get(o, "id"), id));
            json_decref(o);
        }
        ev = chat_ev_error(NULL, NULL, 0, user, ulen, reason, NULL, FZ_TS);
        FUZZ_CHECK((ev != NULL) == uok);
        if (ev != NULL) {
            o = fz_read(ev, 6, "error", NULL, 0, user, ulen);
            FUZZ_CHECK(json_is_null(json_object_get(o, "request")));
            json_decref(o);
        }
        json_decref(id);
        free(reason);
        free(req);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int valid_names = -1;

    if (valid_names == -1)
        valid_names = getenv("FUZZ_PROTO_VALID_NAMES") != NULL;
    if (size == 0)
        return 0;
    if (data[0] & 1)
        fz_events(data + 1, size - 1, valid_names);
    else
        fz_request(data + 1, size - 1);
    return 0;
}
