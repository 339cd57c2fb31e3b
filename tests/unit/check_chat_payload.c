/* check_chat_payload.c -- unit tests for the channel payload format
 * (src/chat_payload.c): byte-exact seed texts, buffer bounds, and where the
 * sender's name ends; a room's tagged form, the parse of both forms,
 * and direct messages. Outputs go into exact-size heap buffers, so ASan or
 * valgrind catch a write past cap; a canary byte behind cap catches it too. */
#include "chat_payload.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#define CANARY 0xA5

/* Build with `build` into a heap buffer of exactly cap bytes (+1 canary),
 * compare with want (NULL: must not fit) and check the canary. */
typedef ssize_t (*notice_fn)(enum chat_payload_form form, char *out, size_t cap,
                             const char *user, size_t ulen);

static void expect_notice(notice_fn build, const char *user, size_t cap, const char *want)
{
    char *buf = malloc(cap + 1);
    ssize_t n;

    ck_assert_ptr_nonnull(buf);
    buf[cap] = (char)CANARY;
    n = build(CHAT_PAYLOAD_SEED, buf, cap, user, strlen(user));
    if (want == NULL) {
        ck_assert_msg(n == -1, "'%s' in %zu bytes: got %zd, want -1", user, cap, n);
    } else {
        ck_assert_msg(n == (ssize_t)strlen(want), "'%s': length %zd, want %zu", user, n,
                      strlen(want));
        ck_assert_mem_eq(buf, want, strlen(want));
    }
    ck_assert_int_eq((unsigned char)buf[cap], CANARY);
    free(buf);
}

static void expect_message(const char *user, const char *text, size_t cap, const char *want)
{
    char *buf = malloc(cap + 1);
    ssize_t n;

    ck_assert_ptr_nonnull(buf);
    buf[cap] = (char)CANARY;
    n = chat_payload_message(CHAT_PAYLOAD_SEED, buf, cap, user, strlen(user), text, strlen(text));
    if (want == NULL) {
        ck_assert_msg(n == -1, "'%s' + '%s' in %zu bytes: got %zd, want -1", user, text, cap, n);
    } else {
        ck_assert_msg(n == (ssize_t)strlen(want), "length %zd, want %zu", n, strlen(want));
        ck_assert_mem_eq(buf, want, strlen(want));
    }
    ck_assert_int_eq((unsigned char)buf[cap], CANARY);
    free(buf);
}

/* ---- the seed's texts, byte for byte ------------------------------------ */

START_TEST(test_seed_texts)
{
    expect_notice(chat_payload_joined, "foo", 64, "foo: has joined the chat!");
    expect_notice(chat_payload_left, "foo", 64, "foo: has left the chat!");
    expect_message("foo", "hello", 64, "foo: hello");
    /* the Lua scripts append this to each name they announce */
    ck_assert_str_eq(CHAT_PAYLOAD_LEFT_SUFFIX, ": has left the chat!");
    ck_assert_str_eq(CHAT_PAYLOAD_SEP, ": ");
}
END_TEST

START_TEST(test_message_kept_as_is)
{
    /* a ':' or ": " in the text is text: the sender part is the server's */
    expect_message("bob", "alice: hi", 64, "bob: alice: hi");
    expect_message("bob", "", 64, "bob: ");
    expect_message("\xc3\xa9l\xc3\xa8ve", "\xe2\x82\xac 5", 64,
                   "\xc3\xa9l\xc3\xa8ve: \xe2\x82\xac 5");
}
END_TEST

START_TEST(test_message_bytes)
{
    /* the text is bytes with a length: NULs pass through */
    static const char text[] = { 'a', '\0', 'b' };
    char buf[16];
    ssize_t n = chat_payload_message(CHAT_PAYLOAD_SEED, buf, sizeof(buf), "u", 1, text, sizeof(text));

    ck_assert_int_eq(n, 6);
    ck_assert_mem_eq(buf, "u: a\0b", 6);
    /* an empty text may come without a buffer */
    ck_assert_int_eq(chat_payload_message(CHAT_PAYLOAD_SEED, buf, sizeof(buf), "u", 1, NULL, 0), 3);
    ck_assert_mem_eq(buf, "u: ", 3);
}
END_TEST

/* ---- bounds ----------------------------------------------------------- */

START_TEST(test_exact_fit_and_one_short)
{
    expect_notice(chat_payload_joined, "foo", strlen("foo: has joined the chat!"),
                  "foo: has joined the chat!");
    expect_notice(chat_payload_joined, "foo", strlen("foo: has joined the chat!") - 1, NULL);
    expect_notice(chat_payload_left, "foo", strlen("foo: has left the chat!"),
                  "foo: has left the chat!");
    expect_notice(chat_payload_left, "foo", strlen("foo: has left the chat!") - 1, NULL);
    expect_message("foo", "hello", 10, "foo: hello");
    expect_message("foo", "hello", 9, NULL);
    /* short of the name, of the separator, of the text */
    expect_message("foo", "hello", 2, NULL);
    expect_message("foo", "hello", 4, NULL);
    expect_message("foo", "hello", 0, NULL);
}
END_TEST

START_TEST(test_huge_lengths_do_not_wrap)
{
    char buf[32];

    /* lengths whose sum wraps around SIZE_MAX must not look small */
    ck_assert_int_eq(chat_payload_message(CHAT_PAYLOAD_SEED, buf, sizeof(buf), "u", 1, "x", SIZE_MAX - 1), -1);
    ck_assert_int_eq(chat_payload_message(CHAT_PAYLOAD_SEED, buf, sizeof(buf), "u", SIZE_MAX, "x", 3), -1);
    ck_assert_int_eq(chat_payload_left(CHAT_PAYLOAD_SEED, buf, sizeof(buf), "u", SIZE_MAX - 2), -1);
}
END_TEST

/* ---- the sender ----------------------------------------------------------- */

START_TEST(test_sender)
{
    static const char nul_text[] = { 'a', 'b', ':', ' ', '\0', ':' };

    ck_assert_int_eq(chat_payload_sender("foo: hello", 10), 3);
    ck_assert_int_eq(chat_payload_sender("foo: has joined the chat!", 25), 3);
    /* the first ':' ends the name, whatever the text holds */
    ck_assert_int_eq(chat_payload_sender("bob: alice: hi", 14), 3);
    ck_assert_int_eq(chat_payload_sender(nul_text, sizeof(nul_text)), 2);
    /* a name is never empty, but the parse does not judge */
    ck_assert_int_eq(chat_payload_sender(": x", 3), 0);
    /* no ':' within len: no sender, even when one follows */
    ck_assert_int_eq(chat_payload_sender("plain line", 10), -1);
    ck_assert_int_eq(chat_payload_sender("foo: hi", 3), -1);
    ck_assert_int_eq(chat_payload_sender("", 0), -1);
    ck_assert_int_eq(chat_payload_sender(NULL, 0), -1);
}
END_TEST

START_TEST(test_sender_of_what_was_built)
{
    char buf[64];
    ssize_t n = chat_payload_message(CHAT_PAYLOAD_SEED, buf, sizeof(buf), "\xc3\xa9l\xc3\xa8ve", 7, "a: b", 4);

    ck_assert_int_eq(n, 13);
    ck_assert_int_eq(chat_payload_sender(buf, (size_t)n), 7);
    n = chat_payload_left(CHAT_PAYLOAD_SEED, buf, sizeof(buf), "x-1.y_z", 7);
    ck_assert_int_eq(chat_payload_sender(buf, (size_t)n), 7);
}
END_TEST

/* ---- the tagged form (a room's channel) ------------------------------------ */

/* Build with fn in `form` into an exact-size heap buffer (+1 canary);
 * want NULL: must not fit. wlen: want's length (it may hold NULs). */
static void expect_built(ssize_t n, const char *buf, size_t cap, const char *want, size_t wlen)
{
    if (want == NULL) {
        ck_assert_msg(n == -1, "in %zu bytes: got %zd, want -1", cap, n);
    } else {
        ck_assert_msg(n == (ssize_t)wlen, "length %zd, want %zu", n, wlen);
        ck_assert_mem_eq(buf, want, wlen);
    }
    ck_assert_int_eq((unsigned char)buf[cap], CANARY);
}

static void expect_tagged(int kind, const char *user, const char *text, size_t cap,
                          const char *want)
{
    char *buf = malloc(cap + 1);
    ssize_t n;

    ck_assert_ptr_nonnull(buf);
    buf[cap] = (char)CANARY;
    if (kind == 'm')
        n = chat_payload_message(CHAT_PAYLOAD_TAGGED, buf, cap, user, strlen(user), text,
                                 strlen(text));
    else if (kind == 'j')
        n = chat_payload_joined(CHAT_PAYLOAD_TAGGED, buf, cap, user, strlen(user));
    else
        n = chat_payload_left(CHAT_PAYLOAD_TAGGED, buf, cap, user, strlen(user));
    expect_built(n, buf, cap, want, want ? strlen(want) : 0);
    free(buf);
}

START_TEST(test_tagged_texts)
{
    ck_assert_int_eq(CHAT_PAYLOAD_TAG_MESSAGE, 'm');
    ck_assert_int_eq(CHAT_PAYLOAD_TAG_JOINED, 'j');
    ck_assert_int_eq(CHAT_PAYLOAD_TAG_LEFT, 'l');
    expect_tagged('m', "foo", "hello", 64, "mfoo: hello");
    expect_tagged('m', "foo", "", 64, "mfoo: ");
    expect_tagged('m', "bob", "has joined the chat!", 64, "mbob: has joined the chat!");
    /* notices: the tag and the name, no text */
    expect_tagged('j', "foo", NULL, 64, "jfoo");
    expect_tagged('l', "foo", NULL, 64, "lfoo");
    /* the form of a room */
    ck_assert_int_eq(chat_payload_form_of(0), CHAT_PAYLOAD_SEED);
    ck_assert_int_eq(chat_payload_form_of(1), CHAT_PAYLOAD_TAGGED);
    ck_assert_int_eq(chat_payload_form_of(64), CHAT_PAYLOAD_TAGGED);
}
END_TEST

START_TEST(test_tagged_bounds)
{
    expect_tagged('m', "foo", "hello", 11, "mfoo: hello");
    expect_tagged('m', "foo", "hello", 10, NULL);
    expect_tagged('m', "foo", "hello", 1, NULL);
    expect_tagged('m', "foo", "hello", 0, NULL);
    expect_tagged('j', "foo", NULL, 4, "jfoo");
    expect_tagged('j', "foo", NULL, 3, NULL);
    expect_tagged('j', "foo", NULL, 0, NULL);
    expect_tagged('l', "foo", NULL, 4, "lfoo");
    expect_tagged('l', "foo", NULL, 3, NULL);
    expect_tagged('l', "foo", NULL, 1, NULL);
}
END_TEST

START_TEST(test_tagged_huge_lengths)
{
    char buf[32];

    ck_assert_int_eq(chat_payload_message(CHAT_PAYLOAD_TAGGED, buf, sizeof(buf), "u", SIZE_MAX,
                                          "x", 1),
                     -1);
    ck_assert_int_eq(chat_payload_message(CHAT_PAYLOAD_TAGGED, buf, sizeof(buf), "u", 1, "x",
                                          SIZE_MAX - 3),
                     -1);
    ck_assert_int_eq(chat_payload_joined(CHAT_PAYLOAD_TAGGED, buf, sizeof(buf), "u", SIZE_MAX), -1);
    ck_assert_int_eq(chat_payload_left(CHAT_PAYLOAD_TAGGED, buf, sizeof(buf), "u", SIZE_MAX - 1),
                     -1);
}
END_TEST

START_TEST(test_left_affixes)
{
    const char *prefix = NULL, *suffix = NULL;
    char buf[64];
    ssize_t n;

    /* what the Lua scripts put around a name is what chat_payload_left writes */
    chat_payload_left_affixes(CHAT_PAYLOAD_SEED, &prefix, &suffix);
    ck_assert_str_eq(prefix, "");
    ck_assert_str_eq(suffix, ": has left the chat!");
    n = chat_payload_left(CHAT_PAYLOAD_SEED, buf, sizeof(buf), "bob", 3);
    ck_assert_int_eq(n, (ssize_t)(strlen(prefix) + 3 + strlen(suffix)));
    ck_assert_mem_eq(buf, prefix, strlen(prefix));
    ck_assert_mem_eq(buf + strlen(prefix), "bob", 3);
    ck_assert_mem_eq(buf + strlen(prefix) + 3, suffix, strlen(suffix));

    chat_payload_left_affixes(CHAT_PAYLOAD_TAGGED, &prefix, &suffix);
    ck_assert_str_eq(prefix, "l");
    ck_assert_str_eq(suffix, "");
    n = chat_payload_left(CHAT_PAYLOAD_TAGGED, buf, sizeof(buf), "bob", 3);
    ck_assert_int_eq(n, (ssize_t)(strlen(prefix) + 3 + strlen(suffix)));
    ck_assert_mem_eq(buf, "lbob", 4);
}
END_TEST

/* ---- parse ------------------------------------------------------------------- */

/* Parse p[0..len) of form from an exact-size heap copy; the views must lie
 * inside it. Returns the result; the views are rebased onto p. */
static int parse_copy(enum chat_payload_form form, const char *p, size_t len,
                      struct chat_event *ev)
{
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, p, len);
    rc = chat_payload_parse(form, copy, len, ev);
#define REBASE(ptr, n)                                                                             \
    do {                                                                                           \
        if ((ptr) != NULL) {                                                                       \
            ck_assert((ptr) >= copy && (ptr) + (n) <= copy + len);                                 \
            (ptr) = p + ((ptr)-copy);                                                              \
        }                                                                                          \
    } while (0)
    if (rc == 0) {
        REBASE(ev->user, ev->ulen);
        REBASE(ev->text, ev->tlen);
        REBASE(ev->line, ev->line_len);
        REBASE(ev->id, ev->idlen);
    }
#undef REBASE
    free(copy);
    return rc;
}

static void expect_view(const char *p, size_t len, const char *want, size_t wlen)
{
    if (want == NULL) {
        ck_assert_ptr_null(p);
        return;
    }
    ck_assert_ptr_nonnull(p);
    ck_assert_msg(len == wlen && memcmp(p, want, wlen) == 0, "'%.*s' (%zu), want '%.*s'",
                  (int)len, p, len, (int)wlen, want);
}

#define V(s) (s), (sizeof(s) - 1)

static void expect_event(enum chat_payload_form form, const char *p, size_t len,
                         enum chat_event_kind kind, const char *user, size_t ulen,
                         const char *text, size_t tlen, const char *line, size_t line_len)
{
    struct chat_event ev;

    memset(&ev, 0x5a, sizeof(ev));
    ck_assert_msg(parse_copy(form, p, len, &ev) == 0, "'%.*s' refused", (int)len, p);
    ck_assert_msg(ev.kind == kind, "'%.*s': kind %d, want %d", (int)len, p, (int)ev.kind,
                  (int)kind);
    expect_view(ev.user, ev.ulen, user, ulen);
    expect_view(ev.text, ev.tlen, text, tlen);
    expect_view(ev.line, ev.line_len, line, line_len);
}

static void expect_refused(enum chat_payload_form form, const char *p, size_t len)
{
    struct chat_event ev;

    ck_assert_msg(parse_copy(form, p, len, &ev) == -1, "'%.*s' accepted", (int)len, p);
}

START_TEST(test_parse_seed)
{
    const enum chat_payload_form f = CHAT_PAYLOAD_SEED;

    expect_event(f, V("foo: hello"), CHAT_EV_MESSAGE, V("foo"), V("hello"), V("foo: hello"));
    expect_event(f, V("foo: "), CHAT_EV_MESSAGE, V("foo"), V(""), V("foo: "));
    expect_event(f, V("bob: alice: hi"), CHAT_EV_MESSAGE, V("bob"), V("alice: hi"),
                 V("bob: alice: hi"));
    /* notices: by their exact text */
    expect_event(f, V("foo: has joined the chat!"), CHAT_EV_JOINED, V("foo"),
                 V("has joined the chat!"), V("foo: has joined the chat!"));
    expect_event(f, V("foo: has left the chat!"), CHAT_EV_LEFT, V("foo"),
                 V("has left the chat!"), V("foo: has left the chat!"));
    /* close is not the same */
    expect_event(f, V("foo: has joined the chat"), CHAT_EV_MESSAGE, V("foo"),
                 V("has joined the chat"), V("foo: has joined the chat"));
    expect_event(f, V("foo: has left the chat!!"), CHAT_EV_MESSAGE, V("foo"),
                 V("has left the chat!!"), V("foo: has left the chat!!"));
    expect_event(f, V("foo: Has left the chat!"), CHAT_EV_MESSAGE, V("foo"),
                 V("Has left the chat!"), V("foo: Has left the chat!"));
    expect_event(f, V("foo:  has left the chat!"), CHAT_EV_MESSAGE, V("foo"),
                 V(" has left the chat!"), V("foo:  has left the chat!"));
    /* no "user: ": a line from another publisher, shown as it is */
    expect_event(f, V("plain line"), CHAT_EV_LINE, NULL, 0, V("plain line"), V("plain line"));
    expect_event(f, V("foo:bar"), CHAT_EV_LINE, NULL, 0, V("foo:bar"), V("foo:bar"));
    expect_event(f, V(": hi"), CHAT_EV_LINE, NULL, 0, V(": hi"), V(": hi")); /* empty name */
    expect_event(f, V("foo:"), CHAT_EV_LINE, NULL, 0, V("foo:"), V("foo:"));
    expect_event(f, V("x"), CHAT_EV_LINE, NULL, 0, V("x"), V("x"));
    expect_event(f, V("mfoo: hi"), CHAT_EV_MESSAGE, V("mfoo"), V("hi"), V("mfoo: hi"));
    /* bytes: a NUL is text */
    expect_event(f, V("u: a\0b"), CHAT_EV_MESSAGE, V("u"), V("a\0b"), V("u: a\0b"));
}
END_TEST

START_TEST(test_parse_seed_empty)
{
    struct chat_event ev;

    ck_assert_int_eq(chat_payload_parse(CHAT_PAYLOAD_SEED, "", 0, &ev), 0);
    ck_assert_int_eq(ev.kind, CHAT_EV_LINE);
    ck_assert_uint_eq(ev.tlen, 0);
    ck_assert_uint_eq(ev.line_len, 0);
    ck_assert_ptr_null(ev.user);
}
END_TEST

START_TEST(test_parse_tagged)
{
    const enum chat_payload_form f = CHAT_PAYLOAD_TAGGED;

    /* a message: the line a plain client sees is the payload without its tag */
    expect_event(f, V("mfoo: hello"), CHAT_EV_MESSAGE, V("foo"), V("hello"), V("foo: hello"));
    expect_event(f, V("mfoo: "), CHAT_EV_MESSAGE, V("foo"), V(""), V("foo: "));
    /* a message that says what a notice says is still a message */
    expect_event(f, V("mfoo: has left the chat!"), CHAT_EV_MESSAGE, V("foo"),
                 V("has left the chat!"), V("foo: has left the chat!"));
    /* notices: the name, no line (it is rendered) */
    expect_event(f, V("jfoo"), CHAT_EV_JOINED, V("foo"), NULL, 0, NULL, 0);
    expect_event(f, V("lfoo"), CHAT_EV_LEFT, V("foo"), NULL, 0, NULL, 0);
    expect_event(f, V("j\xc3\xa9l\xc3\xa8ve"), CHAT_EV_JOINED, V("\xc3\xa9l\xc3\xa8ve"), NULL, 0,
                 NULL, 0);
    /* a notice's name is the rest, whatever it holds */
    expect_event(f, V("lfoo: has left the chat!"), CHAT_EV_LEFT, V("foo: has left the chat!"),
                 NULL, 0, NULL, 0);
}
END_TEST

START_TEST(test_parse_tagged_malformed)
{
    const enum chat_payload_form f = CHAT_PAYLOAD_TAGGED;

    /* too short: no name */
    expect_refused(f, "", 0);
    expect_refused(f, V("m"));
    expect_refused(f, V("j"));
    expect_refused(f, V("l"));
    /* a message without "user: " */
    expect_refused(f, V("mfoo"));
    expect_refused(f, V("mfoo:bar"));
    expect_refused(f, V("m: hi"));
    expect_refused(f, V("mfoo:"));
    /* unknown tags, seed payloads on a room's channel among them */
    expect_refused(f, V("foo: hello"));
    expect_refused(f, V("Mfoo: hi"));
    expect_refused(f, V("Jfoo"));
    expect_refused(f, V("xfoo"));
    expect_refused(f, V("\0foo: hi"));
    expect_refused(f, V(" foo: hi"));
}
END_TEST

START_TEST(test_parse_what_was_built)
{
    static const char *const users[] = {"a", "foo", "x-1.y_z", "\xc3\xa9l\xc3\xa8ve"};
    static const char *const texts[] = {"", "hello", "a: b", "has joined the chat!", "\xe2\x82\xac"};
    char buf[128];
    struct chat_event ev;
    ssize_t n;

    for (int form = CHAT_PAYLOAD_SEED; form <= CHAT_PAYLOAD_TAGGED; form++)
        for (size_t u = 0; u < sizeof(users) / sizeof(users[0]); u++) {
            size_t ul = strlen(users[u]);

            for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
                size_t tl = strlen(texts[t]);

                n = chat_payload_message((enum chat_payload_form)form, buf, sizeof(buf),
                                         users[u], ul, texts[t], tl);
                ck_assert_int_gt(n, 0);
                ck_assert_int_eq(chat_payload_parse((enum chat_payload_form)form, buf, (size_t)n,
                                                    &ev),
                                 0);
                /* the seed cannot tell a notice's text from a message */
                if (form == CHAT_PAYLOAD_TAGGED || strcmp(texts[t], "has joined the chat!") != 0)
                    ck_assert_int_eq(ev.kind, CHAT_EV_MESSAGE);
                ck_assert_uint_eq(ev.ulen, ul);
                ck_assert_mem_eq(ev.user, users[u], ul);
                ck_assert_uint_eq(ev.tlen, tl);
                ck_assert_mem_eq(ev.text, texts[t], tl);
                ck_assert_uint_eq(ev.line_len, ul + 2 + tl);
            }
            n = chat_payload_joined((enum chat_payload_form)form, buf, sizeof(buf), users[u], ul);
            ck_assert_int_eq(chat_payload_parse((enum chat_payload_form)form, buf, (size_t)n, &ev),
                             0);
            ck_assert_int_eq(ev.kind, CHAT_EV_JOINED);
            ck_assert_uint_eq(ev.ulen, ul);
            ck_assert_mem_eq(ev.user, users[u], ul);
            n = chat_payload_left((enum chat_payload_form)form, buf, sizeof(buf), users[u], ul);
            ck_assert_int_eq(chat_payload_parse((enum chat_payload_form)form, buf, (size_t)n, &ev),
                             0);
            ck_assert_int_eq(ev.kind, CHAT_EV_LEFT);
            ck_assert_uint_eq(ev.ulen, ul);
            ck_assert_mem_eq(ev.user, users[u], ul);
        }
}
END_TEST

/* ---- the stored form: 'M' id '\n' "user: text" -------------------------------- */

static void expect_stored(const char *id, const char *user, const char *text, size_t tlen,
                          size_t cap, const char *want, size_t wlen)
{
    char *buf = malloc(cap + 1);
    ssize_t n;

    ck_assert_ptr_nonnull(buf);
    buf[cap] = (char)CANARY;
    n = chat_payload_stored(buf, cap, id, strlen(id), user, strlen(user), text, tlen);
    expect_built(n, buf, cap, want, wlen);
    free(buf);
}

START_TEST(test_stored_build)
{
    ck_assert_int_eq(CHAT_PAYLOAD_TAG_STORED, 'M');
    expect_stored("1-0", "foo", V("hello"), 64, V("M1-0\nfoo: hello"));
    expect_stored("1526919030474-55", "bob", V(""), 64, V("M1526919030474-55\nbob: "));
    expect_stored("18446744073709551615-18446744073709551615", "u", V("a\0b"), 128,
                  V("M18446744073709551615-18446744073709551615\nu: a\0b"));
    /* a text with line breaks and what a notice says stays as it is */
    expect_stored("2-3", "foo", V("has left the chat!\nx"), 64,
                  V("M2-3\nfoo: has left the chat!\nx"));
    /* bounds: exact fit, then every shorter cap fails without writing past it */
    {
        static const char want[] = "M1-0\nfoo: hello";
        size_t wlen = sizeof(want) - 1;

        expect_stored("1-0", "foo", V("hello"), wlen, want, wlen);
        for (size_t cap = 0; cap < wlen; cap++)
            expect_stored("1-0", "foo", V("hello"), cap, NULL, 0);
    }
}
END_TEST

START_TEST(test_stored_huge_lengths)
{
    char buf[32];
    size_t at = 12345;

    ck_assert_int_eq(chat_payload_stored(buf, sizeof(buf), "1-0", SIZE_MAX, "u", 1, "x", 1), -1);
    ck_assert_int_eq(chat_payload_stored(buf, sizeof(buf), "1-0", 3, "u", SIZE_MAX, "x", 1), -1);
    ck_assert_int_eq(chat_payload_stored(buf, sizeof(buf), "1-0", 3, "u", 1, "x", SIZE_MAX - 5),
                     -1);
    ck_assert_int_eq(chat_payload_stored_template(buf, sizeof(buf), "u", SIZE_MAX, "x", 1, &at),
                     -1);
    ck_assert_int_eq(chat_payload_stored_template(buf, sizeof(buf), "u", 1, "x", SIZE_MAX - 4, &at),
                     -1);
}
END_TEST

/* The template with an id inserted at *id_at is exactly chat_payload_stored's
 * output; and the template's own bounds. */
START_TEST(test_stored_template)
{
    static const char *const ids[] = {"0-1", "1526919030474-55",
                                      "18446744073709551615-18446744073709551615"};
    static const char *const users[] = {"a", "foo", "\xc3\xa9l\xc3\xa8ve"};
    static const char *const texts[] = {"", "hello", "a: b\nc", "has joined the chat!"};

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        for (size_t u = 0; u < sizeof(users) / sizeof(users[0]); u++)
            for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
                char tpl[128], full[192], want[192];
                size_t il = strlen(ids[i]), ul = strlen(users[u]), tl = strlen(texts[t]);
                size_t at = (size_t)-1;
                ssize_t n = chat_payload_stored_template(tpl, sizeof(tpl), users[u], ul,
                                                         texts[t], tl, &at);
                ssize_t w = chat_payload_stored(want, sizeof(want), ids[i], il, users[u], ul,
                                                texts[t], tl);

                ck_assert_int_eq(n, (ssize_t)(1 + 1 + ul + 2 + tl));
                ck_assert_uint_eq(at, 1); /* right after the tag */
                ck_assert_int_eq(w, n + (ssize_t)il);
                memcpy(full, tpl, at);
                memcpy(full + at, ids[i], il);
                memcpy(full + at + il, tpl + at, (size_t)n - at);
                ck_assert_mem_eq(full, want, (size_t)w);
            }
    /* exact fit and one short, canary intact */
    {
        static const char want[] = "M\nfoo: hi";
        size_t wlen = sizeof(want) - 1;

        for (size_t cap = 0; cap <= wlen; cap++) {
            char *buf = malloc(cap + 1);
            size_t at = 0;
            ssize_t n;

            ck_assert_ptr_nonnull(buf);
            buf[cap] = (char)CANARY;
            n = chat_payload_stored_template(buf, cap, "foo", 3, "hi", 2, &at);
            expect_built(n, buf, cap, cap == wlen ? want : NULL, wlen);
            free(buf);
        }
    }
}
END_TEST

static void expect_stored_event(const char *p, size_t len, const char *id, size_t idlen,
                                const char *user, size_t ulen, const char *text, size_t tlen,
                                const char *line, size_t line_len)
{
    struct chat_event ev;

    memset(&ev, 0x5a, sizeof(ev));
    ck_assert_msg(parse_copy(CHAT_PAYLOAD_TAGGED, p, len, &ev) == 0, "'%.*s' refused", (int)len,
                  p);
    ck_assert_int_eq(ev.kind, CHAT_EV_MESSAGE);
    expect_view(ev.id, ev.idlen, id, idlen);
    expect_view(ev.user, ev.ulen, user, ulen);
    expect_view(ev.text, ev.tlen, text, tlen);
    expect_view(ev.line, ev.line_len, line, line_len);
}

START_TEST(test_parse_stored)
{
    expect_stored_event(V("M1-0\nfoo: hello"), V("1-0"), V("foo"), V("hello"), V("foo: hello"));
    expect_stored_event(V("M1526919030474-55\nbob: "), V("1526919030474-55"), V("bob"), V(""),
                        V("bob: "));
    /* only the first line break ends the id; the text may hold more */
    expect_stored_event(V("M2-3\nfoo: a\nb: c"), V("2-3"), V("foo"), V("a\nb: c"),
                        V("foo: a\nb: c"));
    /* a stored message that says what a notice says is a message */
    expect_stored_event(V("M9-9\nfoo: has left the chat!"), V("9-9"), V("foo"),
                        V("has left the chat!"), V("foo: has left the chat!"));
    expect_stored_event(V("M1-1\nu: a\0b"), V("1-1"), V("u"), V("a\0b"), V("u: a\0b"));
    /* the other tags carry no id */
    {
        struct chat_event ev;

        memset(&ev, 0x5a, sizeof(ev));
        ck_assert_int_eq(chat_payload_parse(CHAT_PAYLOAD_TAGGED, "mfoo: hi", 8, &ev), 0);
        ck_assert_ptr_null(ev.id);
        ck_assert_uint_eq(ev.idlen, 0);
        memset(&ev, 0x5a, sizeof(ev));
        ck_assert_int_eq(chat_payload_parse(CHAT_PAYLOAD_TAGGED, "jfoo", 4, &ev), 0);
        ck_assert_ptr_null(ev.id);
        memset(&ev, 0x5a, sizeof(ev));
        ck_assert_int_eq(chat_payload_parse(CHAT_PAYLOAD_SEED, "foo: hi", 7, &ev), 0);
        ck_assert_ptr_null(ev.id);
    }
}
END_TEST

START_TEST(test_parse_stored_malformed)
{
    const enum chat_payload_form f = CHAT_PAYLOAD_TAGGED;

    expect_refused(f, V("M"));
    /* no line break after the id */
    expect_refused(f, V("M1-0"));
    expect_refused(f, V("M1-0 foo: hi"));
    expect_refused(f, V("M1-0foo: hi"));
    /* an empty id */
    expect_refused(f, V("M\nfoo: hi"));
    expect_refused(f, V("M\n"));
    /* no "user: " after the id */
    expect_refused(f, V("M1-0\n"));
    expect_refused(f, V("M1-0\nfoo"));
    expect_refused(f, V("M1-0\nfoo:hi"));
    expect_refused(f, V("M1-0\n: hi"));
    expect_refused(f, V("M1-0\nfoo:"));
    /* the tag is case-sensitive */
    expect_refused(f, V("N1-0\nfoo: hi"));
}
END_TEST

/* The broker's reader: the id and the line, the line not looked into. */
START_TEST(test_stored_split)
{
    const char *id, *line;
    size_t idlen, line_len;

    ck_assert_int_eq(chat_payload_stored_split(V("M17-3\nfoo: hi"), &id, &idlen, &line,
                                               &line_len), 0);
    ck_assert_int_eq((int)idlen, 4);
    ck_assert(memcmp(id, "17-3", 4) == 0);
    ck_assert_int_eq((int)line_len, 7);
    ck_assert(memcmp(line, "foo: hi", 7) == 0);
    /* a line that is not "user: text" still has its id */
    ck_assert_int_eq(chat_payload_stored_split(V("M1-0\n"), &id, &idlen, &line, &line_len), 0);
    ck_assert_int_eq((int)line_len, 0);
    ck_assert_int_eq(chat_payload_stored_split(V("M\nfoo: hi"), &id, &idlen, &line, &line_len),
                     -1);
    ck_assert_int_eq(chat_payload_stored_split(V("M1-0"), &id, &idlen, &line, &line_len), -1);
    ck_assert_int_eq(chat_payload_stored_split(V("Mfoo: hi"), &id, &idlen, &line, &line_len), -1);
    ck_assert_int_eq(chat_payload_stored_split(V("mfoo: hi"), &id, &idlen, &line, &line_len), -1);
    ck_assert_int_eq(chat_payload_stored_split(V("M"), &id, &idlen, &line, &line_len), -1);
    ck_assert_int_eq(chat_payload_stored_split(V("1-0\nfoo: hi"), &id, &idlen, &line,
                                               &line_len), -1);
}
END_TEST

START_TEST(test_parse_stored_what_was_built)
{
    static const char *const ids[] = {"0-1", "1526919030474-55"};
    static const char *const users[] = {"a", "x-1.y_z"};
    static const char *const texts[] = {"", "hello", "a: b", "x\ny"};
    char buf[128];
    struct chat_event ev;

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        for (size_t u = 0; u < sizeof(users) / sizeof(users[0]); u++)
            for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
                size_t il = strlen(ids[i]), ul = strlen(users[u]), tl = strlen(texts[t]);
                ssize_t n = chat_payload_stored(buf, sizeof(buf), ids[i], il, users[u], ul,
                                                texts[t], tl);

                ck_assert_int_gt(n, 0);
                ck_assert_int_eq(chat_payload_parse(CHAT_PAYLOAD_TAGGED, buf, (size_t)n, &ev), 0);
                ck_assert_int_eq(ev.kind, CHAT_EV_MESSAGE);
                ck_assert_uint_eq(ev.idlen, il);
                ck_assert_mem_eq(ev.id, ids[i], il);
                ck_assert_uint_eq(ev.ulen, ul);
                ck_assert_mem_eq(ev.user, users[u], ul);
                ck_assert_uint_eq(ev.tlen, tl);
                ck_assert_mem_eq(ev.text, texts[t], tl);
                /* the line is what chat_payload_message writes in the seed form */
                {
                    char line[128];
                    ssize_t ln = chat_payload_message(CHAT_PAYLOAD_SEED, line, sizeof(line),
                                                      users[u], ul, texts[t], tl);

                    ck_assert_int_eq((ssize_t)ev.line_len, ln);
                    ck_assert_mem_eq(ev.line, line, (size_t)ln);
                }
            }
}
END_TEST

/* ---- direct messages ------------------------------------------------------------ */

START_TEST(test_direct_build)
{
    char *buf;
    const char want[] = "lobby\nbob\nalice\npsst";
    size_t wl = sizeof(want) - 1;
    ssize_t n;

    for (size_t cap = 0; cap <= wl + 1; cap++) {
        buf = malloc(cap + 1);
        ck_assert_ptr_nonnull(buf);
        buf[cap] = (char)CANARY;
        n = chat_payload_direct(buf, cap, V("lobby"), V("bob"), V("alice"), V("psst"));
        expect_built(n, buf, cap, cap >= wl ? want : NULL, wl);
        free(buf);
    }
    /* the default room is "", an empty text has no buffer */
    {
        char b[32];

        n = chat_payload_direct(b, sizeof(b), "", 0, V("bob"), V("alice"), NULL, 0);
        ck_assert_int_eq(n, 11);
        ck_assert_mem_eq(b, "\nbob\nalice\n", 11);
    }
}
END_TEST

static void expect_direct(const char *p, size_t len, const char *room, size_t rlen,
                          const char *from, size_t flen, const char *to, size_t tolen,
                          const char *text, size_t tlen)
{
    char *copy = malloc(len > 0 ? len : 1);
    struct chat_direct d;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, p, len);
    ck_assert_msg(chat_payload_direct_parse(copy, len, &d) == 0, "'%.*s' refused", (int)len, p);
    ck_assert(d.room >= copy && d.room + d.rlen <= copy + len);
    ck_assert(d.from >= copy && d.from + d.flen <= copy + len);
    ck_assert(d.to >= copy && d.to + d.tolen <= copy + len);
    ck_assert(d.text >= copy && d.text + d.tlen <= copy + len);
    ck_assert_uint_eq(d.rlen, rlen);
    ck_assert_mem_eq(d.room, room, rlen);
    ck_assert_uint_eq(d.flen, flen);
    ck_assert_mem_eq(d.from, from, flen);
    ck_assert_uint_eq(d.tolen, tolen);
    ck_assert_mem_eq(d.to, to, tolen);
    ck_assert_uint_eq(d.tlen, tlen);
    ck_assert_mem_eq(d.text, text, tlen);
    free(copy);
}

static void expect_direct_refused(const char *p, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);
    struct chat_direct d;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, p, len);
    ck_assert_msg(chat_payload_direct_parse(copy, len, &d) == -1, "'%.*s' accepted", (int)len, p);
    free(copy);
}

START_TEST(test_direct_parse)
{
    expect_direct(V("lobby\nbob\nalice\npsst"), V("lobby"), V("bob"), V("alice"), V("psst"));
    expect_direct(V("\nbob\nalice\npsst"), V(""), V("bob"), V("alice"), V("psst"));
    expect_direct(V("lobby\nbob\nalice\n"), V("lobby"), V("bob"), V("alice"), V(""));
    /* the text is the rest: never cut (the sender cannot send a line break,
     * but the parse does not judge) */
    expect_direct(V("r\nf\nt\na\nb"), V("r"), V("f"), V("t"), V("a\nb"));
    expect_direct(V("r\nf\nt\n\0x"), V("r"), V("f"), V("t"), V("\0x"));
}
END_TEST

START_TEST(test_direct_parse_malformed)
{
    /* missing parts */
    expect_direct_refused("", 0);
    expect_direct_refused(V("lobby"));
    expect_direct_refused(V("lobby\n"));
    expect_direct_refused(V("lobby\nbob"));
    expect_direct_refused(V("lobby\nbob\n"));
    expect_direct_refused(V("lobby\nbob\nalice"));
    /* empty names */
    expect_direct_refused(V("lobby\n\nalice\npsst"));
    expect_direct_refused(V("lobby\nbob\n\npsst"));
    expect_direct_refused(V("\n\n\n"));
    expect_direct_refused(V("lobby\n\n\n"));
    /* the length decides, not a NUL */
    expect_direct_refused("r\nf\nt\nx", 5);
}
END_TEST

START_TEST(test_direct_round_trip)
{
    char buf[256];
    struct chat_direct d;
    ssize_t n = chat_payload_direct(buf, sizeof(buf), V("games"), V("\xc3\xa9l\xc3\xa8ve"),
                                    V("bob"), V("a: b (direct): c"));

    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(chat_payload_direct_parse(buf, (size_t)n, &d), 0);
    ck_assert_uint_eq(d.rlen, 5);
    ck_assert_mem_eq(d.room, "games", 5);
    ck_assert_uint_eq(d.flen, 7);
    ck_assert_mem_eq(d.from, "\xc3\xa9l\xc3\xa8ve", 7);
    ck_assert_uint_eq(d.tolen, 3);
    ck_assert_mem_eq(d.to, "bob", 3);
    ck_assert_uint_eq(d.tlen, 16);
    ck_assert_mem_eq(d.text, "a: b (direct): c", 16);
}
END_TEST

START_TEST(test_direct_line)
{
    const char want[] = "bob (direct): psst";
    size_t wl = sizeof(want) - 1;
    char *buf;
    ssize_t n;

    ck_assert_str_eq(CHAT_PAYLOAD_DIRECT_SEP, " (direct): ");
    for (size_t cap = 0; cap <= wl + 1; cap++) {
        buf = malloc(cap + 1);
        ck_assert_ptr_nonnull(buf);
        buf[cap] = (char)CANARY;
        n = chat_payload_direct_line(buf, cap, V("bob"), V("psst"));
        expect_built(n, buf, cap, cap >= wl ? want : NULL, wl);
        free(buf);
    }
    {
        char b[32];

        n = chat_payload_direct_line(b, sizeof(b), V("bob"), NULL, 0);
        ck_assert_int_eq(n, 14);
        ck_assert_mem_eq(b, "bob (direct): ", 14);
        /* the sender is what a seed reader sees before the first ':': no
         * user name holds a space, so no message can pass for it */
        ck_assert_int_eq(chat_payload_sender(b, (size_t)n), 12);
    }
}
END_TEST

START_TEST(test_direct_huge_lengths)
{
    char buf[32];

    ck_assert_int_eq(chat_payload_direct(buf, sizeof(buf), "r", SIZE_MAX, "f", 1, "t", 1, "x", 1),
                     -1);
    ck_assert_int_eq(chat_payload_direct(buf, sizeof(buf), "r", 1, "f", 1, "t", 1, "x",
                                         SIZE_MAX - 6),
                     -1);
    ck_assert_int_eq(chat_payload_direct_line(buf, sizeof(buf), "f", 1, "x", SIZE_MAX - 10), -1);
    ck_assert_int_eq(chat_payload_direct_line(buf, sizeof(buf), "f", SIZE_MAX, "x", 1), -1);
}
END_TEST

static Suite *chat_payload_suite(void)
{
    Suite *s = suite_create("chat_payload");
    TCase *tc = tcase_create("build");

    tcase_add_test(tc, test_seed_texts);
    tcase_add_test(tc, test_message_kept_as_is);
    tcase_add_test(tc, test_message_bytes);
    suite_add_tcase(s, tc);

    tc = tcase_create("bounds");
    tcase_add_test(tc, test_exact_fit_and_one_short);
    tcase_add_test(tc, test_huge_lengths_do_not_wrap);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse");
    tcase_add_test(tc, test_sender);
    tcase_add_test(tc, test_sender_of_what_was_built);
    tcase_add_test(tc, test_parse_seed);
    tcase_add_test(tc, test_parse_seed_empty);
    tcase_add_test(tc, test_parse_tagged);
    tcase_add_test(tc, test_parse_tagged_malformed);
    tcase_add_test(tc, test_parse_what_was_built);
    suite_add_tcase(s, tc);

    tc = tcase_create("tagged");
    tcase_add_test(tc, test_tagged_texts);
    tcase_add_test(tc, test_tagged_bounds);
    tcase_add_test(tc, test_tagged_huge_lengths);
    tcase_add_test(tc, test_left_affixes);
    suite_add_tcase(s, tc);

    tc = tcase_create("stored");
    tcase_add_test(tc, test_stored_build);
    tcase_add_test(tc, test_stored_huge_lengths);
    tcase_add_test(tc, test_stored_template);
    tcase_add_test(tc, test_parse_stored);
    tcase_add_test(tc, test_parse_stored_malformed);
    tcase_add_test(tc, test_parse_stored_what_was_built);
    tcase_add_test(tc, test_stored_split);
    suite_add_tcase(s, tc);

    tc = tcase_create("direct");
    tcase_add_test(tc, test_direct_build);
    tcase_add_test(tc, test_direct_parse);
    tcase_add_test(tc, test_direct_parse_malformed);
    tcase_add_test(tc, test_direct_round_trip);
    tcase_add_test(tc, test_direct_line);
    tcase_add_test(tc, test_direct_huge_lengths);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(chat_payload_suite());
}
