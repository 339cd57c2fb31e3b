/* check_chat_payload.c -- unit tests for the channel payload format
 * (src/chat_payload.c): byte-exact seed texts, buffer bounds, and where the
 * sender's name ends. Outputs go into exact-size heap buffers, so ASan or
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
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(chat_payload_suite());
}
