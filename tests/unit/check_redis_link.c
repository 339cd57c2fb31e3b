/* check_redis_link.c -- unit tests for the broker's Redis heartbeat rule
 * (broker/redis_link.c, rlink_ping_overdue): a PING is waited for up to its
 * timeout; past it, a Redis that sent any other reply meanwhile is busy
 * working through the commands queued before the PING (a join storm), not
 * gone, and only one silent for the whole wait is dropped. Before the rule,
 * a million joins on one machine had the broker drop a Redis that was
 * answering every command, and refuse joins while it reconnected. */
#include "redis_link.h"

#include <check.h>
#include <stdint.h>

#include "check_run.h"

#define T0 1000000u

START_TEST(test_waits_within_timeout)
{
    ck_assert_int_eq(rlink_ping_overdue(T0, T0, 0), RLINK_PING_WAIT);
    ck_assert_int_eq(rlink_ping_overdue(T0, T0 + 1, 0), RLINK_PING_WAIT);
    ck_assert_int_eq(rlink_ping_overdue(T0, T0 + 2999, 0), RLINK_PING_WAIT);
    ck_assert_int_eq(rlink_ping_overdue(T0, T0 + 2999, 1), RLINK_PING_WAIT);
}
END_TEST

START_TEST(test_silent_past_timeout_is_dead)
{
    ck_assert_int_eq(rlink_ping_overdue(T0, T0 + 3000, 0), RLINK_PING_DEAD);
    ck_assert_int_eq(rlink_ping_overdue(T0, T0 + 60000, 0), RLINK_PING_DEAD);
}
END_TEST

START_TEST(test_answering_past_timeout_is_busy)
{
    ck_assert_int_eq(rlink_ping_overdue(T0, T0 + 3000, 1), RLINK_PING_BUSY);
    ck_assert_int_eq(rlink_ping_overdue(T0, T0 + 60000, 1), RLINK_PING_BUSY);
}
END_TEST

static Suite *redis_link_suite(void)
{
    Suite *s = suite_create("redis_link");
    TCase *tc = tcase_create("heartbeat");

    tcase_add_test(tc, test_waits_within_timeout);
    tcase_add_test(tc, test_silent_past_timeout_is_dead);
    tcase_add_test(tc, test_answering_past_timeout_is_busy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(redis_link_suite());
}
