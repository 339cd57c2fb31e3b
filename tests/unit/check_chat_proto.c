/* check_chat_proto.c -- unit tests for the typed protocol redis-chat.v1
 * (worker/chat_proto.c): every request type and every parse error that
 * docs/protocol.md lists, the "id" echo rules, and each event encoder,
 * whose output is read back with jansson and checked field by field
 * (exactly the fields the table of events names, no more). */
#include "chat_proto.h"

#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#define REASON_OBJECT "a request must be a JSON object with a string \"type\""
#define REASON_UNKNOWN "unknown request type"
#define TS 1764950400123ULL

#define LIT(s) (s), (sizeof(s) - 1)

/* ---- requests ------------------------------------------------------------------ */

/* Parse text (as a frame: a length, no NUL needed) from an exact-size heap
 * copy, so a read past the frame is caught by ASan or valgrind. */
static int parse(const char *text, struct chat_req *r, char *reason, size_t cap)
{
    size_t len = strlen(text);
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, text, len);
    rc = chat_req_parse(copy, len, r, reason, cap);
    free(copy); /* the views point into r->root, never into the frame */
    return rc;
}

static void expect_view(const char *p, size_t len, const char *want)
{
    if (want == NULL) {
        ck_assert_ptr_null(p);
        ck_assert_uint_eq(len, 0);
        return;
    }
    ck_assert_ptr_nonnull(p);
    ck_assert_msg(len == strlen(want) && memcmp(p, want, len) == 0, "'%.*s', want '%s'",
                  (int)len, p, want);
}

/* A good request: type, room, text, to as given (NULL: absent). */
static void expect_ok(const char *text, enum chat_req_type type, const char *room,
                      const char *body, const char *to)
{
    struct chat_req r;
    char reason[256] = "";

    ck_assert_msg(parse(text, &r, reason, sizeof(reason)) == 0, "%s: %s", text, reason);
    ck_assert_int_eq(r.type, type);
    ck_assert_str_eq(r.type_name, chat_req_type_name(type));
    expect_view(r.room, r.room_len, room);
    expect_view(r.text, r.text_len, body);
    expect_view(r.to, r.to_len, to);
    ck_assert_ptr_nonnull(r.root);
    chat_req_free(&r);
    ck_assert_ptr_null(r.root);
}

/* A refused request: the reason (exact, or its prefix when want ends in
 * "..."), the type name as read (NULL: none). */
static void expect_fail(const char *text, const char *want, const char *type_name)
{
    struct chat_req r;
    char reason[256];
    size_t wl = strlen(want);

    memset(reason, 'X', sizeof(reason));
    ck_assert_msg(parse(text, &r, reason, sizeof(reason)) == -1, "%s: accepted", text);
    ck_assert_msg(memchr(reason, '\0', sizeof(reason)) != NULL, "%s: reason not terminated", text);
    if (wl > 3 && strcmp(want + wl - 3, "...") == 0)
        ck_assert_msg(strncmp(reason, want, wl - 3) == 0 && strlen(reason) > wl - 3,
                      "%s: reason '%s', want '%s'", text, reason, want);
    else
        ck_assert_msg(strcmp(reason, want) == 0, "%s: reason '%s', want '%s'", text, reason,
                      want);
    if (type_name == NULL)
        ck_assert_ptr_null(r.type_name);
    else
        ck_assert_msg(r.type_name != NULL && strcmp(r.type_name, type_name) == 0,
                      "%s: type_name '%s', want '%s'", text, r.type_name ? r.type_name : "(null)",
                      type_name);
    chat_req_free(&r);
    ck_assert_ptr_null(r.root);
}

START_TEST(test_req_each_type)
{
    expect_ok("{\"type\":\"send\",\"room\":\"lobby\",\"text\":\"hi\"}", CHAT_REQ_SEND, "lobby",
              "hi", NULL);
    expect_ok("{\"type\":\"send\",\"text\":\"hello, lobby\"}", CHAT_REQ_SEND, NULL,
              "hello, lobby", NULL);
    expect_ok("{\"type\":\"join\",\"room\":\"games\"}", CHAT_REQ_JOIN, "games", NULL, NULL);
    /* room may be left out (the handler decides what that means for a join) */
    expect_ok("{\"type\":\"join\"}", CHAT_REQ_JOIN, NULL, NULL, NULL);
    expect_ok("{\"type\":\"leave\",\"room\":\"games\"}", CHAT_REQ_LEAVE, "games", NULL, NULL);
    expect_ok("{\"type\":\"leave\"}", CHAT_REQ_LEAVE, NULL, NULL, NULL);
    expect_ok("{\"type\":\"who\",\"room\":\"lobby\"}", CHAT_REQ_WHO, "lobby", NULL, NULL);
    expect_ok("{\"type\":\"who\"}", CHAT_REQ_WHO, NULL, NULL, NULL);
    expect_ok("{\"type\":\"direct\",\"room\":\"lobby\",\"to\":\"bob\",\"text\":\"psst\"}",
              CHAT_REQ_DIRECT, "lobby", "psst", "bob");
    expect_ok("{\"to\":\"bob\",\"text\":\"psst\",\"type\":\"direct\"}", CHAT_REQ_DIRECT, NULL,
              "psst", "bob");
    /* the default room is "" */
    expect_ok("{\"type\":\"send\",\"room\":\"\",\"text\":\"x\"}", CHAT_REQ_SEND, "", "x", NULL);
    /* whitespace around and inside is JSON's business */
    expect_ok(" \n{ \"type\" : \"who\" }\t", CHAT_REQ_WHO, NULL, NULL, NULL);
}
END_TEST

START_TEST(test_req_fields_ignored_and_kept)
{
    /* unknown fields are ignored; text and to only matter where used */
    expect_ok("{\"type\":\"send\",\"text\":\"a\",\"x\":[1,{\"y\":null}],\"extra\":true}",
              CHAT_REQ_SEND, NULL, "a", NULL);
    expect_ok("{\"type\":\"join\",\"room\":\"r\",\"text\":5,\"to\":[]}", CHAT_REQ_JOIN, "r", NULL,
              NULL);
    expect_ok("{\"type\":\"who\",\"to\":\"x\",\"text\":\"y\"}", CHAT_REQ_WHO, NULL, NULL, NULL);
    expect_ok("{\"type\":\"send\",\"text\":\"a\",\"to\":7}", CHAT_REQ_SEND, NULL, "a", NULL);
    /* an empty text is a string */
    expect_ok("{\"type\":\"send\",\"text\":\"\"}", CHAT_REQ_SEND, NULL, "", NULL);
    /* escapes are decoded in the views */
    expect_ok("{\"type\":\"send\",\"text\":\"\\u00e9\\n\\\"q\\\"\"}", CHAT_REQ_SEND, NULL,
              "\xc3\xa9\n\"q\"", NULL);
}
END_TEST

START_TEST(test_req_nul_inside_strings)
{
    /* a NUL inside any string (jansson's JSON_ALLOW_NUL is not given) is
     * refused as bad JSON, so none can pass for the end of a type, a room
     * or a name */
    expect_fail("{\"type\":\"direct\",\"room\":\"a\\u0000b\",\"to\":\"bob\",\"text\":\"x\"}",
                "bad JSON: ...", NULL);
    expect_fail("{\"type\":\"direct\",\"to\":\"bo\\u0000b\",\"text\":\"x\"}", "bad JSON: ...",
                NULL);
    expect_fail("{\"type\":\"send\",\"text\":\"x\\u0000y\"}", "bad JSON: ...", NULL);
    expect_fail("{\"type\":\"send\\u0000\",\"text\":\"x\"}", "bad JSON: ...", NULL);
    expect_fail("{\"type\":\"who\",\"x\\u0000\":1}", "bad JSON: ...", NULL);
    expect_fail("{\"type\":\"who\",\"id\":\"a\\u0000\"}", "bad JSON: ...", NULL);
}
END_TEST

START_TEST(test_req_bad_json)
{
    expect_fail("", "bad JSON: ...", NULL);
    expect_fail("{", "bad JSON: ...", NULL);
    expect_fail("nope", "bad JSON: ...", NULL);
    expect_fail("{\"type\":\"send\"", "bad JSON: ...", NULL);
    expect_fail("{\"type\":send}", "bad JSON: ...", NULL);
    expect_fail("{'type':'send'}", "bad JSON: ...", NULL);
    expect_fail("{\"type\":\"who\"} {}", "bad JSON: ...", NULL);  /* one value per frame */
    expect_fail("{\"type\":\"who\"}x", "bad JSON: ...", NULL);
    expect_fail("{\"type\":\"who\",}", "bad JSON: ...", NULL);
    expect_fail("{\"type\":\"\xff\"}", "bad JSON: ...", NULL);     /* not UTF-8 */
    expect_fail("{\"type\":\"\\ud800\"}", "bad JSON: ...", NULL);  /* lone surrogate */
    expect_fail("{\"type\":\"who\",\"id\":123456789012345678901234567890}", "bad JSON: ...",
                NULL); /* an integer jansson cannot hold */
}
END_TEST

START_TEST(test_req_duplicate_keys)
{
    /* a duplicate could make two readers of the frame disagree */
    expect_fail("{\"type\":\"send\",\"type\":\"join\",\"room\":\"a\",\"text\":\"b\"}",
                "bad JSON: ...", NULL);
    expect_fail("{\"type\":\"send\",\"text\":\"a\",\"text\":\"b\"}", "bad JSON: ...", NULL);
    expect_fail("{\"type\":\"join\",\"room\":\"a\",\"room\":\"b\"}", "bad JSON: ...", NULL);
    expect_fail("{\"type\":\"who\",\"id\":1,\"id\":2}", "bad JSON: ...", NULL);
    /* also deeper down, inside ignored fields */
    expect_fail("{\"type\":\"who\",\"x\":{\"a\":1,\"a\":2}}", "bad JSON: ...", NULL);
}
END_TEST

START_TEST(test_req_not_an_object)
{
    struct chat_req r;
    char reason[256];
    static const char *const scalars[] = {"42", "\"send\"", "null", "true"};

    expect_fail("[]", REASON_OBJECT, NULL);
    expect_fail("[{\"type\":\"send\",\"text\":\"a\"}]", REASON_OBJECT, NULL);
    expect_fail("[\"type\",\"send\"]", REASON_OBJECT, NULL);
    /* a top-level scalar is JSON (RFC 8259) but no request: refused either
     * way, with no request type (jansson, without JSON_DECODE_ANY, calls
     * it bad JSON) */
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
        ck_assert_int_eq(parse(scalars[i], &r, reason, sizeof(reason)), -1);
        ck_assert_msg(strncmp(reason, "bad JSON: ", 10) == 0 || strcmp(reason, REASON_OBJECT) == 0,
                      "%s: %s", scalars[i], reason);
        ck_assert_ptr_null(r.type_name);
        ck_assert_ptr_null(r.id);
        chat_req_free(&r);
    }
}
END_TEST

START_TEST(test_req_type_missing_or_not_string)
{
    expect_fail("{}", REASON_OBJECT, NULL);
    expect_fail("{\"room\":\"a\",\"text\":\"b\"}", REASON_OBJECT, NULL);
    expect_fail("{\"Type\":\"send\"}", REASON_OBJECT, NULL);
    expect_fail("{\"type\":1}", REASON_OBJECT, NULL);
    expect_fail("{\"type\":null}", REASON_OBJECT, NULL);
    expect_fail("{\"type\":true}", REASON_OBJECT, NULL);
    expect_fail("{\"type\":[\"send\"]}", REASON_OBJECT, NULL);
    expect_fail("{\"type\":{\"send\":1}}", REASON_OBJECT, NULL);
}
END_TEST

START_TEST(test_req_unknown_type)
{
    expect_fail("{\"type\":\"SEND\"}", REASON_UNKNOWN, "SEND");
    expect_fail("{\"type\":\"\"}", REASON_UNKNOWN, "");
    expect_fail("{\"type\":\"sen\"}", REASON_UNKNOWN, "sen");
    expect_fail("{\"type\":\"sendx\"}", REASON_UNKNOWN, "sendx");
    expect_fail("{\"type\":\" send\"}", REASON_UNKNOWN, " send");
    expect_fail("{\"type\":\"welcome\"}", REASON_UNKNOWN, "welcome"); /* events are no requests */
    expect_fail("{\"type\":\"message\",\"text\":\"x\"}", REASON_UNKNOWN, "message");
}
END_TEST

START_TEST(test_req_wrong_field_types)
{
    static const char *const types[] = {"send", "join", "leave", "who", "direct"};
    static const char *const values[] = {"1", "null", "true", "[]", "{}", "[\"a\"]", "1.5"};
    char text[256];

    /* room: every request type */
    for (size_t t = 0; t < 5; t++)
        for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
            snprintf(text, sizeof(text),
                     "{\"type\":\"%s\",\"room\":%s,\"text\":\"a\",\"to\":\"b\"}", types[t],
                     values[v]);
            expect_fail(text, "field \"room\" must be a string", types[t]);
        }
    /* text: send and direct */
    for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
        snprintf(text, sizeof(text), "{\"type\":\"send\",\"text\":%s}", values[v]);
        expect_fail(text, "field \"text\" must be a string", "send");
        snprintf(text, sizeof(text), "{\"type\":\"direct\",\"to\":\"b\",\"text\":%s}", values[v]);
        expect_fail(text, "field \"text\" must be a string", "direct");
        snprintf(text, sizeof(text), "{\"type\":\"direct\",\"to\":%s,\"text\":\"a\"}", values[v]);
        expect_fail(text, "field \"to\" must be a string", "direct");
    }
}
END_TEST

START_TEST(test_req_missing_fields)
{
    expect_fail("{\"type\":\"send\"}", "field \"text\" must be a string", "send");
    expect_fail("{\"type\":\"send\",\"room\":\"lobby\"}", "field \"text\" must be a string",
                "send");
    expect_fail("{\"type\":\"direct\",\"to\":\"bob\"}", "field \"text\" must be a string",
                "direct");
    expect_fail("{\"type\":\"direct\",\"text\":\"psst\"}", "field \"to\" must be a string",
                "direct");
    expect_fail("{\"type\":\"direct\"}", "field \"text\" must be a string", "direct");
    /* the room is checked first */
    expect_fail("{\"type\":\"direct\",\"room\":1}", "field \"room\" must be a string", "direct");
}
END_TEST

/* Parse and return what r.id says (a new reference, or NULL), whatever the
 * outcome. */
static json_t *id_of(const char *text, int *rc)
{
    struct chat_req r;
    char reason[256];
    json_t *id;

    *rc = parse(text, &r, reason, sizeof(reason));
    id = r.id != NULL ? json_incref(r.id) : NULL;
    chat_req_free(&r);
    return id;
}

START_TEST(test_req_id)
{
    char text[512], s64[65], s65[66], e32[70], e33[72];
    json_t *id;
    int rc;

    memset(s64, 'i', 64);
    s64[64] = '\0';
    memset(s65, 'i', 65);
    s65[65] = '\0';
    for (int i = 0; i < 32; i++)
        memcpy(e32 + 2 * i, "\xc3\xa9", 2);
    e32[64] = '\0';
    for (int i = 0; i < 33; i++)
        memcpy(e33 + 2 * i, "\xc3\xa9", 2);
    e33[66] = '\0';

    id = id_of("{\"type\":\"who\",\"id\":\"req-1\"}", &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert(json_is_string(id) && strcmp(json_string_value(id), "req-1") == 0);
    json_decref(id);
    id = id_of("{\"type\":\"who\",\"id\":\"\"}", &rc);
    ck_assert(json_is_string(id) && json_string_length(id) == 0);
    json_decref(id);
    /* up to 64 bytes */
    snprintf(text, sizeof(text), "{\"type\":\"who\",\"id\":\"%s\"}", s64);
    id = id_of(text, &rc);
    ck_assert(json_is_string(id) && json_string_length(id) == 64);
    json_decref(id);
    snprintf(text, sizeof(text), "{\"type\":\"who\",\"id\":\"%s\"}", s65);
    id = id_of(text, &rc);
    ck_assert_int_eq(rc, 0); /* not echoed, but the request stands */
    ck_assert_ptr_null(id);
    /* bytes, not characters */
    snprintf(text, sizeof(text), "{\"type\":\"who\",\"id\":\"%s\"}", e32);
    id = id_of(text, &rc);
    ck_assert(json_is_string(id) && json_string_length(id) == 64);
    json_decref(id);
    snprintf(text, sizeof(text), "{\"type\":\"who\",\"id\":\"%s\"}", e33);
    ck_assert_ptr_null(id_of(text, &rc));
    /* integers */
    id = id_of("{\"type\":\"who\",\"id\":7}", &rc);
    ck_assert(json_is_integer(id) && json_integer_value(id) == 7);
    json_decref(id);
    id = id_of("{\"type\":\"who\",\"id\":-9223372036854775808}", &rc);
    ck_assert(json_is_integer(id) && json_integer_value(id) == INT64_MIN);
    json_decref(id);
    id = id_of("{\"type\":\"who\",\"id\":0}", &rc);
    ck_assert(json_is_integer(id) && json_integer_value(id) == 0);
    json_decref(id);
    /* anything else: not echoed */
    ck_assert_ptr_null(id_of("{\"type\":\"who\",\"id\":1.5}", &rc));
    ck_assert_ptr_null(id_of("{\"type\":\"who\",\"id\":1e3}", &rc));
    ck_assert_ptr_null(id_of("{\"type\":\"who\",\"id\":null}", &rc));
    ck_assert_ptr_null(id_of("{\"type\":\"who\",\"id\":true}", &rc));
    ck_assert_ptr_null(id_of("{\"type\":\"who\",\"id\":[1]}", &rc));
    ck_assert_ptr_null(id_of("{\"type\":\"who\",\"id\":{\"a\":1}}", &rc));
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_null(id_of("{\"type\":\"who\"}", &rc));
}
END_TEST

START_TEST(test_req_id_on_errors)
{
    json_t *id;
    int rc;

    /* read as soon as the request is an object with a string type: the
     * error repeats it */
    id = id_of("{\"type\":\"nope\",\"id\":\"a\"}", &rc);
    ck_assert_int_eq(rc, -1);
    ck_assert(json_is_string(id) && strcmp(json_string_value(id), "a") == 0);
    json_decref(id);
    id = id_of("{\"id\":5,\"type\":\"send\"}", &rc);
    ck_assert_int_eq(rc, -1);
    ck_assert(json_is_integer(id) && json_integer_value(id) == 5);
    json_decref(id);
    id = id_of("{\"type\":\"join\",\"room\":3,\"id\":\"j\"}", &rc);
    ck_assert_int_eq(rc, -1);
    ck_assert(json_is_string(id));
    json_decref(id);
    /* not before */
    ck_assert_ptr_null(id_of("{\"id\":\"a\"}", &rc));
    ck_assert_ptr_null(id_of("{\"id\":\"a\",\"type\":1}", &rc));
    ck_assert_ptr_null(id_of("[{\"id\":\"a\",\"type\":\"who\"}]", &rc));
    ck_assert_ptr_null(id_of("{\"id\":\"a\",\"type\":\"who\"", &rc));
}
END_TEST

START_TEST(test_req_reason_capacity)
{
    struct chat_req r;
    char reason[16];

    /* the reason is cut to cap, NUL-terminated, never past it */
    memset(reason, 'X', sizeof(reason));
    ck_assert_int_eq(chat_req_parse("{\"type\":\"x\"}", 12, &r, reason, 8), -1);
    ck_assert_str_eq(reason, "unknown");
    ck_assert_int_eq(reason[8], 'X');
    chat_req_free(&r);
    memset(reason, 'X', sizeof(reason));
    ck_assert_int_eq(chat_req_parse("{", 1, &r, reason, 5), -1);
    ck_assert_str_eq(reason, "bad ");
    ck_assert_int_eq(reason[5], 'X');
    chat_req_free(&r);
    memset(reason, 'X', sizeof(reason));
    ck_assert_int_eq(chat_req_parse("{\"type\":\"send\"}", 15, &r, reason, 1), -1);
    ck_assert_int_eq(reason[0], '\0');
    ck_assert_int_eq(reason[1], 'X');
    chat_req_free(&r);
}
END_TEST

START_TEST(test_req_len_is_the_frame)
{
    struct chat_req r;
    char reason[128];
    static const char buf[] = "{\"type\":\"who\"}{\"type\":\"send\"}";

    /* only len bytes are read */
    ck_assert_int_eq(chat_req_parse(buf, 14, &r, reason, sizeof(reason)), 0);
    ck_assert_int_eq(r.type, CHAT_REQ_WHO);
    chat_req_free(&r);
    ck_assert_int_eq(chat_req_parse(buf, 13, &r, reason, sizeof(reason)), -1);
    chat_req_free(&r);
    ck_assert_int_eq(chat_req_parse(buf, 0, &r, reason, sizeof(reason)), -1);
    chat_req_free(&r);
}
END_TEST

START_TEST(test_req_type_names)
{
    ck_assert_str_eq(chat_req_type_name(CHAT_REQ_SEND), "send");
    ck_assert_str_eq(chat_req_type_name(CHAT_REQ_JOIN), "join");
    ck_assert_str_eq(chat_req_type_name(CHAT_REQ_LEAVE), "leave");
    ck_assert_str_eq(chat_req_type_name(CHAT_REQ_WHO), "who");
    ck_assert_str_eq(chat_req_type_name(CHAT_REQ_DIRECT), "direct");
    ck_assert_str_eq(chat_req_type_name((enum chat_req_type)5), "?");
    ck_assert_str_eq(chat_req_type_name((enum chat_req_type)-1), "?");
    ck_assert_str_eq(CHAT_PROTO_NAME, "redis-chat.v1");
}
END_TEST

/* ---- join's "history" and "after" ------------------------------------------------ */

#define REASON_AFTER "field \"after\" must be a message id"
#define REASON_EXCLUDE "\"history\" and \"after\" exclude each other"

/* A good join: its history (-1: none) and after (NULL: none). */
static void expect_join(const char *text, long history, const char *after)
{
    struct chat_req r;
    char reason[256] = "";

    ck_assert_msg(parse(text, &r, reason, sizeof(reason)) == 0, "%s: %s", text, reason);
    ck_assert_int_eq(r.type, CHAT_REQ_JOIN);
    ck_assert_msg(r.history == history, "%s: history %ld, want %ld", text, r.history, history);
    expect_view(r.after, r.after_len, after);
    chat_req_free(&r);
}

START_TEST(test_req_join_history)
{
    char text[128];

    ck_assert_int_eq(CHAT_PROTO_HISTORY_MAX, 100000);
    /* absent: -1, never 0 (0 means "none, explicitly") */
    expect_join("{\"type\":\"join\"}", -1, NULL);
    expect_join("{\"type\":\"join\",\"room\":\"lobby\"}", -1, NULL);
    expect_join("{\"type\":\"join\",\"history\":0}", 0, NULL);
    expect_join("{\"type\":\"join\",\"history\":1}", 1, NULL);
    expect_join("{\"type\":\"join\",\"room\":\"r\",\"history\":50}", 50, NULL);
    snprintf(text, sizeof(text), "{\"type\":\"join\",\"history\":%d}", CHAT_PROTO_HISTORY_MAX);
    expect_join(text, CHAT_PROTO_HISTORY_MAX, NULL);
    /* out of range or not an integer */
    snprintf(text, sizeof(text), "{\"type\":\"join\",\"history\":%d}", CHAT_PROTO_HISTORY_MAX + 1);
    expect_fail(text, CHAT_PROTO_BAD_HISTORY, "join");
    expect_fail("{\"type\":\"join\",\"history\":-1}", CHAT_PROTO_BAD_HISTORY, "join");
    expect_fail("{\"type\":\"join\",\"history\":-9223372036854775808}", CHAT_PROTO_BAD_HISTORY,
                "join");
    expect_fail("{\"type\":\"join\",\"history\":9223372036854775807}", CHAT_PROTO_BAD_HISTORY,
                "join");
    expect_fail("{\"type\":\"join\",\"history\":4294967346}", CHAT_PROTO_BAD_HISTORY, "join");
    expect_fail("{\"type\":\"join\",\"history\":1.0}", CHAT_PROTO_BAD_HISTORY, "join");
    expect_fail("{\"type\":\"join\",\"history\":1e2}", CHAT_PROTO_BAD_HISTORY, "join");
    expect_fail("{\"type\":\"join\",\"history\":\"5\"}", CHAT_PROTO_BAD_HISTORY, "join");
    expect_fail("{\"type\":\"join\",\"history\":true}", CHAT_PROTO_BAD_HISTORY, "join");
    expect_fail("{\"type\":\"join\",\"history\":null}", CHAT_PROTO_BAD_HISTORY, "join");
    expect_fail("{\"type\":\"join\",\"history\":[1]}", CHAT_PROTO_BAD_HISTORY, "join");
    expect_fail("{\"type\":\"join\",\"history\":{}}", CHAT_PROTO_BAD_HISTORY, "join");
}
END_TEST

START_TEST(test_req_join_after)
{
    expect_join("{\"type\":\"join\",\"after\":\"1-0\"}", -1, "1-0");
    expect_join("{\"type\":\"join\",\"room\":\"lobby\",\"after\":\"1733448000000-0\"}", -1,
                "1733448000000-0");
    expect_join("{\"type\":\"join\",\"after\":\"0-0\"}", -1, "0-0");
    expect_join("{\"type\":\"join\",\"after\":"
                "\"18446744073709551615-18446744073709551615\"}",
                -1, "18446744073709551615-18446744073709551615");
    /* not a stream id */
    expect_fail("{\"type\":\"join\",\"after\":\"\"}", REASON_AFTER, "join");
    expect_fail("{\"type\":\"join\",\"after\":\"1\"}", REASON_AFTER, "join");
    expect_fail("{\"type\":\"join\",\"after\":\"1-\"}", REASON_AFTER, "join");
    expect_fail("{\"type\":\"join\",\"after\":\"-1\"}", REASON_AFTER, "join");
    expect_fail("{\"type\":\"join\",\"after\":\"$\"}", REASON_AFTER, "join");
    expect_fail("{\"type\":\"join\",\"after\":\" 1-0\"}", REASON_AFTER, "join");
    expect_fail("{\"type\":\"join\",\"after\":\"1-0 \"}", REASON_AFTER, "join");
    expect_fail("{\"type\":\"join\",\"after\":\"1-0-0\"}", REASON_AFTER, "join");
    expect_fail("{\"type\":\"join\",\"after\":\"18446744073709551616-0\"}", REASON_AFTER, "join");
    /* a NUL inside a string is refused by the JSON reader, before "after" is read */
    expect_fail("{\"type\":\"join\",\"after\":\"1-0\\u0000\"}", "bad JSON: ...", NULL);
    /* not a string */
    expect_fail("{\"type\":\"join\",\"after\":10}", REASON_AFTER, "join");
    expect_fail("{\"type\":\"join\",\"after\":null}", REASON_AFTER, "join");
    expect_fail("{\"type\":\"join\",\"after\":[\"1-0\"]}", REASON_AFTER, "join");
    /* a refused after leaves no view behind */
    {
        struct chat_req r;
        char reason[256];

        ck_assert_int_eq(parse("{\"type\":\"join\",\"after\":\"x\"}", &r, reason, sizeof(reason)),
                         -1);
        ck_assert_ptr_null(r.after);
        chat_req_free(&r);
    }
}
END_TEST

START_TEST(test_req_join_history_and_after)
{
    expect_fail("{\"type\":\"join\",\"history\":5,\"after\":\"1-0\"}", REASON_EXCLUDE, "join");
    expect_fail("{\"type\":\"join\",\"after\":\"1-0\",\"history\":0}", REASON_EXCLUDE, "join");
    /* each one's own error comes first */
    expect_fail("{\"type\":\"join\",\"history\":-1,\"after\":\"1-0\"}", CHAT_PROTO_BAD_HISTORY,
                "join");
    expect_fail("{\"type\":\"join\",\"history\":5,\"after\":\"x\"}", REASON_AFTER, "join");
    /* the id is still echoed */
    {
        struct chat_req r;
        char reason[256];

        ck_assert_int_eq(parse("{\"type\":\"join\",\"id\":\"j1\",\"history\":5,\"after\":\"1-0\"}",
                               &r, reason, sizeof(reason)),
                         -1);
        ck_assert(json_is_string(r.id) && strcmp(json_string_value(r.id), "j1") == 0);
        chat_req_free(&r);
    }
}
END_TEST

START_TEST(test_req_history_after_other_types)
{
    /* only a join reads them: elsewhere they are ignored, whatever they hold */
    static const char *const texts[] = {
        "{\"type\":\"send\",\"text\":\"x\",\"history\":-5,\"after\":\"nope\"}",
        "{\"type\":\"send\",\"text\":\"x\",\"history\":5,\"after\":\"1-0\"}",
        "{\"type\":\"leave\",\"history\":\"x\"}",
        "{\"type\":\"who\",\"after\":7}",
        "{\"type\":\"direct\",\"to\":\"b\",\"text\":\"x\",\"history\":1000000}",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct chat_req r;
        char reason[256] = "";

        ck_assert_msg(parse(texts[i], &r, reason, sizeof(reason)) == 0, "%s: %s", texts[i],
                      reason);
        ck_assert_msg(r.history == -1, "%s: history %ld", texts[i], r.history);
        ck_assert_ptr_null(r.after);
        ck_assert_uint_eq(r.after_len, 0);
        chat_req_free(&r);
    }
}
END_TEST

/* ---- events -------------------------------------------------------------------- */

/* Read an event back: a JSON object with exactly nkeys members, the given
 * type, room (NULL: JSON null), user and ts. Frees text. The caller
 * json_decref()s. */
static json_t *ev_read(char *text, size_t nkeys, const char *type, const char *room, size_t rlen,
                       const char *user, size_t ulen)
{
    json_error_t err;
    json_t *o, *v;

    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strchr(text, '\n') == NULL, "one line: %s", text);
    o = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    ck_assert_msg(o != NULL, "%s: %s", text, err.text);
    ck_assert(json_is_object(o));
    ck_assert_msg(json_object_size(o) == nkeys, "%s: %zu keys, want %zu", text,
                  json_object_size(o), nkeys);
    /* type first, as in the examples */
    ck_assert_msg(strncmp(text, "{\"type\":", 8) == 0, "%s", text);
    free(text);
    v = json_object_get(o, "type");
    ck_assert(json_is_string(v) && strcmp(json_string_value(v), type) == 0);
    v = json_object_get(o, "room");
    if (room == NULL) {
        ck_assert(json_is_null(v));
    } else {
        ck_assert(json_is_string(v));
        ck_assert_uint_eq(json_string_length(v), rlen);
        ck_assert_mem_eq(json_string_value(v), room, rlen);
    }
    v = json_object_get(o, "user");
    ck_assert(json_is_string(v));
    ck_assert_uint_eq(json_string_length(v), ulen);
    ck_assert_mem_eq(json_string_value(v), user, ulen);
    v = json_object_get(o, "ts");
    ck_assert(json_is_integer(v));
    ck_assert(json_integer_value(v) == (json_int_t)TS);
    return o;
}

static void expect_str(json_t *o, const char *key, const char *want, size_t len)
{
    json_t *v = json_object_get(o, key);

    ck_assert_msg(json_is_string(v), "%s: not a string", key);
    ck_assert_uint_eq(json_string_length(v), len);
    ck_assert_mem_eq(json_string_value(v), want, len);
}

START_TEST(test_ev_welcome_joined_left)
{
    json_t *o;

    o = ev_read(chat_ev_welcome(LIT("lobby"), LIT("alice"), TS), 4, "welcome", LIT("lobby"),
                LIT("alice"));
    json_decref(o);
    o = ev_read(chat_ev_welcome(LIT(""), LIT("alice"), TS), 4, "welcome", LIT(""), LIT("alice"));
    json_decref(o);
    o = ev_read(chat_ev_joined(LIT("lobby"), LIT("carol"), TS), 4, "joined", LIT("lobby"),
                LIT("carol"));
    json_decref(o);
    o = ev_read(chat_ev_left(LIT("lobby"), LIT("carol"), TS), 4, "left", LIT("lobby"),
                LIT("carol"));
    json_decref(o);
    /* non-ASCII names pass as they are */
    o = ev_read(chat_ev_joined(LIT("r"), LIT("\xc3\xa9l\xc3\xa8ve"), TS), 4, "joined", LIT("r"),
                LIT("\xc3\xa9l\xc3\xa8ve"));
    json_decref(o);
}
END_TEST

START_TEST(test_ev_exact_text)
{
    char *s = chat_ev_joined(LIT("lobby"), LIT("carol"), 1764950403000ULL);

    /* docs/protocol.md's example, byte for byte */
    ck_assert_str_eq(s, "{\"type\":\"joined\",\"room\":\"lobby\",\"user\":\"carol\",\"ts\":1764950403000}");
    free(s);
    s = chat_ev_message(LIT("lobby"), LIT("bob"), LIT("psst"), LIT("alice"), 1764950402000ULL);
    ck_assert_str_eq(s, "{\"type\":\"message\",\"room\":\"lobby\",\"user\":\"bob\",\"ts\":"
                        "1764950402000,\"to\":\"alice\",\"text\":\"psst\"}");
    free(s);
}
END_TEST

START_TEST(test_ev_message)
{
    json_t *o;

    /* a room message: no "to" */
    o = ev_read(chat_ev_message(LIT("lobby"), LIT("bob"), LIT("hello"), NULL, 0, TS), 5, "message",
                LIT("lobby"), LIT("bob"));
    expect_str(o, "text", LIT("hello"));
    ck_assert_ptr_null(json_object_get(o, "to"));
    json_decref(o);
    /* a direct message: "to" */
    o = ev_read(chat_ev_message(LIT("lobby"), LIT("bob"), LIT("psst"), LIT("alice"), TS), 6,
                "message", LIT("lobby"), LIT("bob"));
    expect_str(o, "text", LIT("psst"));
    expect_str(o, "to", LIT("alice"));
    json_decref(o);
    /* an outside publisher's line: a message from nobody, empty text */
    o = ev_read(chat_ev_message(LIT(""), LIT(""), LIT(""), NULL, 0, TS), 5, "message", LIT(""),
                LIT(""));
    expect_str(o, "text", LIT(""));
    json_decref(o);
    /* what JSON must escape, and a NUL (as \u0000), survive the round trip */
    o = ev_read(chat_ev_message(LIT("r"), LIT("u"), LIT("a\"b\\c\n\t\x01\0z\xe2\x82\xac"), NULL, 0,
                                TS),
                5, "message", LIT("r"), LIT("u"));
    expect_str(o, "text", LIT("a\"b\\c\n\t\x01\0z\xe2\x82\xac"));
    json_decref(o);
}
END_TEST

START_TEST(test_ev_message_text_views)
{
    /* lengths, not NULs, end the strings */
    static const char room[] = "lobbyXX", user[] = "bobYY", text[] = "hiZZ", to[] = "alWW";
    json_t *o = ev_read(chat_ev_message(room, 5, user, 3, text, 2, to, 2, TS), 6, "message",
                        LIT("lobby"), LIT("bob"));

    expect_str(o, "text", LIT("hi"));
    expect_str(o, "to", LIT("al"));
    json_decref(o);
}
END_TEST

START_TEST(test_ev_presence)
{
    json_t *o, *users;

    o = ev_read(chat_ev_presence(LIT("lobby"), LIT("alice"), 2, LIT("alice\nbob"), TS), 7,
                "presence", LIT("lobby"), LIT("alice"));
    ck_assert(json_is_integer(json_object_get(o, "count")));
    ck_assert_int_eq(json_integer_value(json_object_get(o, "count")), 2);
    users = json_object_get(o, "users");
    ck_assert(json_is_array(users));
    ck_assert_uint_eq(json_array_size(users), 2);
    ck_assert_str_eq(json_string_value(json_array_get(users, 0)), "alice");
    ck_assert_str_eq(json_string_value(json_array_get(users, 1)), "bob");
    ck_assert(json_is_false(json_object_get(o, "truncated")));
    json_decref(o);

    /* more in the room than listed: truncated, count exact */
    o = ev_read(chat_ev_presence(LIT("lobby"), LIT("alice"), 1000, LIT("a\nb\nc"), TS), 7,
                "presence", LIT("lobby"), LIT("alice"));
    ck_assert_int_eq(json_integer_value(json_object_get(o, "count")), 1000);
    users = json_object_get(o, "users");
    ck_assert_uint_eq(json_array_size(users), 3);
    ck_assert_str_eq(json_string_value(json_array_get(users, 2)), "c");
    ck_assert(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);

    /* one name, no separator */
    o = ev_read(chat_ev_presence(LIT(""), LIT("alice"), 1, LIT("alice"), TS), 7, "presence",
                LIT(""), LIT("alice"));
    users = json_object_get(o, "users");
    ck_assert_uint_eq(json_array_size(users), 1);
    ck_assert_str_eq(json_string_value(json_array_get(users, 0)), "alice");
    ck_assert(json_is_false(json_object_get(o, "truncated")));
    json_decref(o);

    /* none (nameslen 0): an empty list, even with names behind the length */
    o = ev_read(chat_ev_presence(LIT("r"), LIT("u"), 0, "alice", 0, TS), 7, "presence", LIT("r"),
                LIT("u"));
    ck_assert_uint_eq(json_array_size(json_object_get(o, "users")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "count")), 0);
    ck_assert(json_is_false(json_object_get(o, "truncated")));
    json_decref(o);
    o = ev_read(chat_ev_presence(LIT("r"), LIT("u"), 4, NULL, 0, TS), 7, "presence", LIT("r"),
                LIT("u"));
    ck_assert_uint_eq(json_array_size(json_object_get(o, "users")), 0);
    ck_assert(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);

    /* only nameslen bytes are read */
    o = ev_read(chat_ev_presence(LIT("r"), LIT("u"), 2, "ab\ncd\nef", 5, TS), 7, "presence",
                LIT("r"), LIT("u"));
    users = json_object_get(o, "users");
    ck_assert_uint_eq(json_array_size(users), 2);
    ck_assert_str_eq(json_string_value(json_array_get(users, 1)), "cd");
    json_decref(o);
}
END_TEST

START_TEST(test_ev_presence_many)
{
    /* presence-max's ceiling: 1000 names of 128 bytes */
    size_t n = 1000, w = 128, len = n * (w + 1) - 1;
    char *names = malloc(len);
    json_t *o, *users;

    ck_assert_ptr_nonnull(names);
    memset(names, 'n', len);
    for (size_t i = 1; i < n; i++)
        names[i * (w + 1) - 1] = '\n';
    o = ev_read(chat_ev_presence(LIT("r"), LIT("u"), 1000, names, len, TS), 7, "presence",
                LIT("r"), LIT("u"));
    users = json_object_get(o, "users");
    ck_assert_uint_eq(json_array_size(users), n);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(json_string_length(json_array_get(users, i)), w);
    ck_assert(json_is_false(json_object_get(o, "truncated")));
    json_decref(o);
    free(names);
}
END_TEST

START_TEST(test_ev_error)
{
    json_t *o, *id;

    o = ev_read(chat_ev_error("join", LIT("lobby"), LIT("alice"), "name taken in that room", NULL,
                              TS),
                6, "error", LIT("lobby"), LIT("alice"));
    expect_str(o, "request", LIT("join"));
    expect_str(o, "reason", LIT("name taken in that room"));
    ck_assert_ptr_null(json_object_get(o, "id"));
    json_decref(o);

    /* no request, no room: both null */
    o = ev_read(chat_ev_error(NULL, NULL, 0, LIT("alice"), "bad JSON: x", NULL, TS), 6, "error",
                NULL, 0, LIT("alice"));
    ck_assert(json_is_null(json_object_get(o, "request")));
    expect_str(o, "reason", LIT("bad JSON: x"));
    json_decref(o);

    /* the id as given, string or integer; the caller keeps its reference */
    id = json_string("req-7");
    o = ev_read(chat_ev_error("send", LIT(""), LIT("alice"), "not in that room", id, TS), 7,
                "error", LIT(""), LIT("alice"));
    expect_str(o, "id", LIT("req-7"));
    json_decref(o);
    ck_assert_int_eq(id->refcount, 1);
    json_decref(id);
    id = json_integer(-42);
    o = ev_read(chat_ev_error("who", LIT("r"), LIT("u"), "chat service unavailable", id, TS), 7,
                "error", LIT("r"), LIT("u"));
    ck_assert(json_is_integer(json_object_get(o, "id")));
    ck_assert_int_eq(json_integer_value(json_object_get(o, "id")), -42);
    json_decref(o);
    json_decref(id);

    /* a reason that is not UTF-8 (a parser message quoting the input) */
    o = ev_read(chat_ev_error(NULL, NULL, 0, LIT("u"), "bad JSON: near '\xff'", NULL, TS), 6,
                "error", NULL, 0, LIT("u"));
    expect_str(o, "reason", LIT("bad JSON"));
    json_decref(o);
}
END_TEST

START_TEST(test_ev_error_from_parse)
{
    /* a refused request's error, end to end */
    struct chat_req r;
    char reason[256];
    json_t *o;

    ck_assert_int_eq(chat_req_parse(LIT("{\"type\":\"dance\",\"id\":\"q1\"}"), &r, reason,
                                    sizeof(reason)),
                     -1);
    o = ev_read(chat_ev_error(r.type_name, NULL, 0, LIT("alice"), reason, r.id, TS), 7, "error",
                NULL, 0, LIT("alice"));
    chat_req_free(&r);
    expect_str(o, "request", LIT("dance"));
    expect_str(o, "reason", LIT(REASON_UNKNOWN));
    expect_str(o, "id", LIT("q1"));
    json_decref(o);
    /* a bad JSON reason that quotes bytes that are not UTF-8 */
    ck_assert_int_eq(chat_req_parse(LIT("{\"type\":\"\xc3\x28\"}"), &r, reason, sizeof(reason)),
                     -1);
    o = ev_read(chat_ev_error(r.type_name, NULL, 0, LIT("alice"), reason, r.id, TS), 6, "error",
                NULL, 0, LIT("alice"));
    chat_req_free(&r);
    ck_assert(json_is_null(json_object_get(o, "request")));
    ck_assert(strncmp(json_string_value(json_object_get(o, "reason")), "bad JSON", 8) == 0);
    json_decref(o);
}
END_TEST

START_TEST(test_ev_invalid_utf8)
{
    /* a payload from outside that is not UTF-8: no event (and nothing
     * leaked: run under valgrind) */
    static const char bad[] = "\xff", trunc[] = "a\xc3", sur[] = "\xed\xa0\x80",
                      over[] = "\xc0\xaf";

    ck_assert_ptr_null(chat_ev_welcome(LIT("r"), LIT(bad), TS));
    ck_assert_ptr_null(chat_ev_joined(LIT("r"), LIT(trunc), TS));
    ck_assert_ptr_null(chat_ev_left(LIT("r"), LIT(sur), TS));
    ck_assert_ptr_null(chat_ev_joined(LIT(""), LIT(over), TS));
    ck_assert_ptr_null(chat_ev_message(LIT("r"), LIT(bad), LIT("hi"), NULL, 0, TS));
    ck_assert_ptr_null(chat_ev_message(LIT(""), LIT(over), LIT("hi"), NULL, 0, TS));
    ck_assert_ptr_null(chat_ev_message(LIT("r"), LIT("u"), LIT(bad), NULL, 0, TS));
    ck_assert_ptr_null(chat_ev_message(LIT("r"), LIT("u"), LIT(trunc), LIT("to"), TS));
    ck_assert_ptr_null(chat_ev_message(LIT("r"), LIT("u"), LIT("hi"), LIT(sur), TS));
    ck_assert_ptr_null(chat_ev_presence(LIT("r"), LIT(bad), 1, LIT("a"), TS));
    ck_assert_ptr_null(chat_ev_presence(LIT("r"), LIT("u"), 2, LIT("a\n\xff"), TS));
    ck_assert_ptr_null(chat_ev_error("send", LIT("r"), LIT(bad), "x", NULL, TS));
    /* the room too (never from outside: room names are checked) */
    ck_assert_ptr_null(chat_ev_welcome(LIT(bad), LIT("u"), TS));
    ck_assert_ptr_null(chat_ev_message(LIT(trunc), LIT("u"), LIT("x"), NULL, 0, TS));
    ck_assert_ptr_null(chat_ev_error("send", LIT(bad), LIT("u"), "x", NULL, TS));
    /* and the request (never from outside: a parsed type or a fixed name) */
    ck_assert_ptr_null(chat_ev_error(bad, LIT("r"), LIT("u"), "x", NULL, TS));
}
END_TEST

START_TEST(test_ev_message_stored)
{
    json_t *o;

    o = ev_read(chat_ev_message_stored(LIT("lobby"), LIT("bob"), LIT("hello"),
                                       LIT("1733448000000-0"), TS),
                6, "message", LIT("lobby"), LIT("bob"));
    expect_str(o, "text", LIT("hello"));
    expect_str(o, "msg_id", LIT("1733448000000-0"));
    ck_assert_ptr_null(json_object_get(o, "to"));
    json_decref(o);
    /* the default room; lengths, not NULs, end the strings */
    o = ev_read(chat_ev_message_stored("", 0, "bobX", 3, "hiYY", 2, "5-6ZZ", 3, TS), 6, "message",
                LIT(""), LIT("bob"));
    expect_str(o, "text", LIT("hi"));
    expect_str(o, "msg_id", LIT("5-6"));
    json_decref(o);
    ck_assert_ptr_null(chat_ev_message_stored(LIT("r"), LIT("u"), LIT("\xff"), LIT("1-0"), TS));
    ck_assert_ptr_null(chat_ev_message_stored(LIT("r"), LIT("\xc3"), LIT("x"), LIT("1-0"), TS));
}
END_TEST

START_TEST(test_ev_ack)
{
    json_t *o, *id;

    /* with history: the message's id; no "id" when the request had none */
    o = ev_read(chat_ev_ack(LIT("lobby"), LIT("alice"), LIT("1733448000000-0"), NULL, TS), 6,
                "ack", LIT("lobby"), LIT("alice"));
    expect_str(o, "request", LIT("send"));
    expect_str(o, "msg_id", LIT("1733448000000-0"));
    ck_assert_ptr_null(json_object_get(o, "id"));
    json_decref(o);
    /* without history: msg_id is there, and null */
    o = ev_read(chat_ev_ack(LIT(""), LIT("alice"), NULL, 0, NULL, TS), 6, "ack", LIT(""),
                LIT("alice"));
    expect_str(o, "request", LIT("send"));
    ck_assert_ptr_nonnull(json_object_get(o, "msg_id"));
    ck_assert(json_is_null(json_object_get(o, "msg_id")));
    json_decref(o);
    /* the request's id as given, string or integer; the caller keeps its reference */
    id = json_string("s-1");
    o = ev_read(chat_ev_ack(LIT("r"), LIT("u"), LIT("1-2"), id, TS), 7, "ack", LIT("r"), LIT("u"));
    expect_str(o, "id", LIT("s-1"));
    expect_str(o, "msg_id", LIT("1-2"));
    json_decref(o);
    ck_assert_int_eq(id->refcount, 1);
    json_decref(id);
    id = json_integer(77);
    o = ev_read(chat_ev_ack(LIT("r"), LIT("u"), NULL, 0, id, TS), 7, "ack", LIT("r"), LIT("u"));
    ck_assert(json_is_integer(json_object_get(o, "id")));
    ck_assert_int_eq(json_integer_value(json_object_get(o, "id")), 77);
    ck_assert(json_is_null(json_object_get(o, "msg_id")));
    json_decref(o);
    ck_assert_int_eq(id->refcount, 1);
    json_decref(id);
    /* lengths end the id */
    o = ev_read(chat_ev_ack(LIT("r"), LIT("u"), "9-9XX", 3, NULL, TS), 6, "ack", LIT("r"),
                LIT("u"));
    expect_str(o, "msg_id", LIT("9-9"));
    json_decref(o);
    ck_assert_ptr_null(chat_ev_ack(LIT("r"), LIT("\xff"), LIT("1-0"), NULL, TS));
    ck_assert_ptr_null(chat_ev_ack(LIT("r"), LIT("\xff"), NULL, 0, NULL, TS));
}
END_TEST

START_TEST(test_ev_history)
{
    json_t *o, *v;

    o = ev_read(chat_ev_history(LIT("lobby"), LIT("alice"), 12, 0, TS), 6, "history",
                LIT("lobby"), LIT("alice"));
    v = json_object_get(o, "count");
    ck_assert(json_is_integer(v));
    ck_assert_int_eq(json_integer_value(v), 12);
    ck_assert(json_is_false(json_object_get(o, "truncated")));
    json_decref(o);
    o = ev_read(chat_ev_history(LIT(""), LIT("alice"), 0, 1, TS), 6, "history", LIT(""),
                LIT("alice"));
    ck_assert_int_eq(json_integer_value(json_object_get(o, "count")), 0);
    ck_assert(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);
    /* any non-zero truncated is true */
    o = ev_read(chat_ev_history(LIT("r"), LIT("u"), 100000, 42, TS), 6, "history", LIT("r"),
                LIT("u"));
    ck_assert_int_eq(json_integer_value(json_object_get(o, "count")), 100000);
    ck_assert(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);
    ck_assert_ptr_null(chat_ev_history(LIT("r"), LIT("\xed\xa0\x80"), 1, 0, TS));
}
END_TEST

static Suite *chat_proto_suite(void)
{
    Suite *s = suite_create("chat_proto");
    TCase *tc = tcase_create("requests");

    tcase_add_test(tc, test_req_each_type);
    tcase_add_test(tc, test_req_fields_ignored_and_kept);
    tcase_add_test(tc, test_req_nul_inside_strings);
    tcase_add_test(tc, test_req_bad_json);
    tcase_add_test(tc, test_req_duplicate_keys);
    tcase_add_test(tc, test_req_not_an_object);
    tcase_add_test(tc, test_req_type_missing_or_not_string);
    tcase_add_test(tc, test_req_unknown_type);
    tcase_add_test(tc, test_req_wrong_field_types);
    tcase_add_test(tc, test_req_missing_fields);
    tcase_add_test(tc, test_req_id);
    tcase_add_test(tc, test_req_id_on_errors);
    tcase_add_test(tc, test_req_reason_capacity);
    tcase_add_test(tc, test_req_len_is_the_frame);
    tcase_add_test(tc, test_req_type_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("history");
    tcase_add_test(tc, test_req_join_history);
    tcase_add_test(tc, test_req_join_after);
    tcase_add_test(tc, test_req_join_history_and_after);
    tcase_add_test(tc, test_req_history_after_other_types);
    tcase_add_test(tc, test_ev_message_stored);
    tcase_add_test(tc, test_ev_ack);
    tcase_add_test(tc, test_ev_history);
    suite_add_tcase(s, tc);

    tc = tcase_create("events");
    tcase_add_test(tc, test_ev_welcome_joined_left);
    tcase_add_test(tc, test_ev_exact_text);
    tcase_add_test(tc, test_ev_message);
    tcase_add_test(tc, test_ev_message_text_views);
    tcase_add_test(tc, test_ev_presence);
    tcase_add_test(tc, test_ev_presence_many);
    tcase_add_test(tc, test_ev_error);
    tcase_add_test(tc, test_ev_error_from_parse);
    tcase_add_test(tc, test_ev_invalid_utf8);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(chat_proto_suite());
}
