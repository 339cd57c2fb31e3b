/* check_bcast_log.c -- the worker's broadcast stream: cursors see what is
 * appended after they subscribe, in order, and every message is freed once
 * no cursor can reach it (ws_frame_ref and ws_frame_unref are ours here, to count frees). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "bcast_log.h"
#include "check_run.h"
#include "ws_frame.h"

static int frees;

void ws_frame_ref(struct ws_frame *f)
{
    f->refs++;
}

void ws_frame_unref(struct ws_frame *f)
{
    if (f != NULL && --f->refs == 0) {
        frees++;
        free(f);
    }
}

static struct ws_frame *frame(size_t len)
{
    struct ws_frame *f = calloc(1, sizeof(*f) + len);

    ck_assert_ptr_nonnull(f);
    f->refs = 1;
    f->len = len;
    return f;
}

/* append a new frame of len bytes; the log keeps the only reference
 * (compare the pointer returned, do not follow it) */
static struct ws_frame *append(struct bcast_log *l, size_t len, uint64_t sender)
{
    struct ws_frame *f = frame(len);

    ck_assert_int_eq(bcast_append(l, f, sender), 0);
    ws_frame_unref(f); /* freed here already when no cursor can reach it */
    return f;
}

START_TEST(test_order_and_positions)
{
    struct bcast_log l;
    struct bcast_node *a, *b, *n;
    struct ws_frame *f1, *f2, *f3;

    ck_assert_int_eq(bcast_init(&l), 0);
    frees = 0;
    a = bcast_subscribe(&l);
    f1 = append(&l, 10, 0);
    b = bcast_subscribe(&l); /* sees f2, f3 only */
    f2 = append(&l, 20, 7);
    f3 = append(&l, 30, 0);
    ck_assert_uint_eq(l.end, 60);
    ck_assert_ptr_eq(a->frame, f1);
    ck_assert_ptr_eq(a->next->frame, f2);
    ck_assert_uint_eq(a->next->sender, 7);
    ck_assert_ptr_eq(a->next->next->frame, f3);
    ck_assert_ptr_eq(b->frame, f2);
    ck_assert_uint_eq(b->pos, 10);
    ck_assert_uint_eq(b->next->pos, 30);
    ck_assert_ptr_null(b->next->next->frame); /* the tail */

    /* a moves to f3: f1 is unreachable now, f2 is still b's */
    n = a->next->next;
    bcast_ref(n);
    bcast_release(a);
    ck_assert_int_eq(frees, 1);
    bcast_release(b); /* f2 goes; f3 is still the moved cursor's */
    ck_assert_int_eq(frees, 2);
    bcast_release(n);
    ck_assert_int_eq(frees, 3);
    bcast_deinit(&l);
}
END_TEST

START_TEST(test_no_cursor_frees_at_once)
{
    struct bcast_log l;
    int i;

    ck_assert_int_eq(bcast_init(&l), 0);
    frees = 0;
    for (i = 0; i < 1000; i++)
        append(&l, 5, 0);
    ck_assert_int_eq(frees, 1000);
    ck_assert_uint_eq(l.end, 5000);
    bcast_deinit(&l);
}
END_TEST

/* A cursor that stays behind keeps a long stretch; its release frees it
 * all (iteratively: no deep recursion). */
START_TEST(test_long_stretch)
{
    struct bcast_log l;
    struct bcast_node *c;
    int i;

    ck_assert_int_eq(bcast_init(&l), 0);
    frees = 0;
    c = bcast_subscribe(&l);
    for (i = 0; i < 200000; i++)
        append(&l, 1, 0);
    ck_assert_int_eq(frees, 0);
    bcast_release(c);
    ck_assert_int_eq(frees, 200000);
    bcast_deinit(&l);
}
END_TEST

/* Readers are listed in their log; a log is on its owner's dirty list at
 * most once, comes off it in order, and leaves it when freed. */
START_TEST(test_readers_and_dirty_list)
{
    struct bcast_log a, b, c;
    struct bcast_reader r1 = {NULL, NULL}, r2 = {NULL, NULL};
    struct bcast_log *dirty = NULL;

    ck_assert_int_eq(bcast_init(&a), 0);
    ck_assert_int_eq(bcast_init(&b), 0);
    ck_assert_int_eq(bcast_init(&c), 0);
    bcast_reader_add(&a, &r1);
    bcast_reader_add(&a, &r2);
    ck_assert_ptr_eq(a.readers, &r2);
    ck_assert_ptr_eq(r2.next, &r1);
    bcast_reader_remove(&r2);
    ck_assert_ptr_eq(a.readers, &r1);
    ck_assert_ptr_null(r1.next);
    bcast_reader_remove(&r2); /* not listed any more: nothing happens */
    ck_assert_ptr_eq(a.readers, &r1);
    bcast_reader_remove(&r1);
    ck_assert_ptr_null(a.readers);

    bcast_mark_dirty(&a, &dirty);
    bcast_mark_dirty(&b, &dirty);
    bcast_mark_dirty(&a, &dirty); /* already on it */
    bcast_mark_dirty(&c, &dirty);
    bcast_deinit(&b); /* freed while dirty: taken off */
    ck_assert_ptr_eq(bcast_pop_dirty(&dirty), &c);
    ck_assert_ptr_eq(bcast_pop_dirty(&dirty), &a);
    ck_assert_ptr_null(bcast_pop_dirty(&dirty));
    bcast_mark_dirty(&a, &dirty); /* popped: may be marked again */
    ck_assert_ptr_eq(dirty, &a);
    bcast_deinit(&a);
    ck_assert_ptr_null(dirty);
    bcast_deinit(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bcast_log");
    TCase *tc = tcase_create("bcast_log");

    tcase_add_test(tc, test_order_and_positions);
    tcase_add_test(tc, test_no_cursor_frees_at_once);
    tcase_add_test(tc, test_long_stretch);
    tcase_add_test(tc, test_readers_and_dirty_list);
    suite_add_tcase(s, tc);
    return check_run(s);
}
