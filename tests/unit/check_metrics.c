/* check_metrics.c -- the shared metrics table (src/metrics.c) and its
 * exposition (worker/metrics_http.c): a dead process's counters are folded
 * into its slot's and its gauges dropped, a reader never sees a counter go
 * down while rows are folded under it, and every family is rendered with
 * HELP and TYPE, per worker and for the instance. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "metrics.h"
#include "metrics_http.h"

static struct metrics_shm *shm;
static struct metrics_view *view;

static void setup(void)
{
    shm = metrics_create();
    view = calloc(1, sizeof(*view));
    ck_assert_ptr_nonnull(shm);
    ck_assert_ptr_nonnull(view);
}

static void teardown(void)
{
    metrics_attach(NULL, 0); /* CK_FORK=no: the next test must not write into a gone mapping */
    metrics_destroy(shm);
    free(view);
}

START_TEST(test_fold_keeps_counters_drops_gauges)
{
    /* slot 1's first process in row 3 */
    metrics_row_bind(shm, 3, 1);
    metrics_attach(shm, 3);
    metrics_add(MS_JOINS, 5);
    metrics_inc(MS_CLOSE_CODES + metrics_close_code_index(1001));
    metrics_set(MS_WORKER_ROOMS, 7);
    metrics_read(shm, view);
    ck_assert_int_eq(view->nslots, 2);
    ck_assert_uint_eq(view->slot[1][MS_JOINS], 5);
    ck_assert_uint_eq(view->slot[1][MS_WORKER_ROOMS], 7);
    ck_assert_uint_eq(view->slot[0][MS_JOINS], 0);

    /* it dies; its successor in row 0 counts on from there */
    metrics_row_fold(shm, 3);
    metrics_read(shm, view);
    ck_assert_uint_eq(view->slot[1][MS_JOINS], 5);
    ck_assert_uint_eq(view->slot[1][MS_CLOSE_CODES + 1], 1);
    ck_assert_uint_eq(view->slot[1][MS_WORKER_ROOMS], 0);
    metrics_row_bind(shm, 0, 1);
    metrics_attach(shm, 0);
    metrics_add(MS_JOINS, 2);
    metrics_read(shm, view);
    ck_assert_uint_eq(view->slot[1][MS_JOINS], 7);

    /* a fold of a row nobody holds (again) changes nothing */
    metrics_row_fold(shm, 3);
    metrics_read(shm, view);
    ck_assert_uint_eq(view->slot[1][MS_JOINS], 7);

    /* the broker's row is its own */
    metrics_row_bind(shm, METRICS_BROKER, 0);
    metrics_attach(shm, METRICS_BROKER);
    metrics_inc(MS_REDIS_RECONNECTS);
    metrics_set(MS_REDIS_UP, 1);
    metrics_row_fold(shm, METRICS_BROKER);
    metrics_row_bind(shm, METRICS_BROKER, 0);
    metrics_read(shm, view);
    ck_assert_uint_eq(view->broker[MS_REDIS_RECONNECTS], 1);
    ck_assert_uint_eq(view->broker[MS_REDIS_UP], 0);
    ck_assert_uint_eq(view->slot[1][MS_REDIS_RECONNECTS], 0);
}
END_TEST

/* A child plays master and workers: a process counts, dies and is folded,
 * over and over, in rows taken in turn, for READ_MS; the reader must see
 * the slot's count only ever grow. */
#define READ_MS 1000

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(test_reader_never_sees_a_fold_half_done)
{
    uint64_t last = 0;
    long long end;
    pid_t pid;
    int status, reads = 0;

    pid = fork();
    ck_assert_int_ne(pid, -1);
    if (pid == 0) {
        uint64_t k;
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed assertion ends the reader */
        if (getppid() == 1)
            _exit(0);
        for (k = 0;; k++) {
            int row = (int)(k % 4);
            metrics_row_bind(shm, row, 0);
            metrics_attach(shm, row);
            metrics_add(MS_MESSAGES_IN, 3);
            metrics_row_fold(shm, row);
        }
    }
    for (end = now_ms() + READ_MS; now_ms() < end; reads++) {
        uint64_t now;

        metrics_read(shm, view);
        now = view->nslots > 0 ? view->slot[0][MS_MESSAGES_IN] : 0; /* before the first bind */
        ck_assert_msg(now >= last, "went down from %llu to %llu", (unsigned long long)last,
                      (unsigned long long)now);
        ck_assert_uint_eq(now % 3, 0);
        last = now;
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    ck_assert_uint_gt(last, 0);
    ck_assert_int_gt(reads, 0);
}
END_TEST

START_TEST(test_render_every_family)
{
    char *out = NULL, want[256];
    size_t i, len;

    metrics_row_bind(shm, 0, 0);
    metrics_row_bind(shm, 1, 1);
    metrics_row_bind(shm, METRICS_BROKER, 0);
    metrics_attach(shm, 1);
    metrics_add(MS_DELIVERIES, 40);
    metrics_attach(shm, 0);
    metrics_add(MS_DELIVERIES, 2);
    metrics_attach(shm, METRICS_BROKER);
    metrics_redis_latency(300);     /* the 0.0005 bucket */
    metrics_redis_latency(2000000); /* +Inf only */
    metrics_read(shm, view);
    len = metrics_render(view, &out);
    ck_assert_uint_gt(len, 0);
    ck_assert_uint_eq(strlen(out), len);
    for (i = 0; i < metrics_nfamilies; i++) {
        const struct metrics_family *f = &metrics_families[i];
        snprintf(want, sizeof(want), "\n# TYPE redis_chat_%s ", f->name);
        ck_assert_msg(strstr(out, want) != NULL, "no %s", want);
        snprintf(want, sizeof(want), "\n# HELP redis_chat_worker_%s ", f->name);
        ck_assert_msg((strstr(out, want) != NULL) == (f->scope == MSCOPE_WORKER), "%s", want);
    }
    ck_assert(strstr(out, "\nredis_chat_worker_deliveries_total{worker=\"0\"} 2\n") != NULL);
    ck_assert(strstr(out, "\nredis_chat_worker_deliveries_total{worker=\"1\"} 40\n") != NULL);
    ck_assert(strstr(out, "\nredis_chat_deliveries_total 42\n") != NULL);
    ck_assert(
        strstr(out, "\nredis_chat_redis_command_duration_seconds_bucket{le=\"0.00025\"} 0\n"));
    ck_assert(strstr(out, "\nredis_chat_redis_command_duration_seconds_bucket{le=\"0.0005\"} 1\n"));
    ck_assert(strstr(out, "\nredis_chat_redis_command_duration_seconds_bucket{le=\"0.5\"} 1\n"));
    ck_assert(strstr(out, "\nredis_chat_redis_command_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
    ck_assert(strstr(out, "\nredis_chat_redis_command_duration_seconds_sum 2.000300\n"));
    ck_assert(strstr(out, "\nredis_chat_redis_command_duration_seconds_count 2\n"));
    free(out);
}
END_TEST

START_TEST(test_label_indexes)
{
    ck_assert_int_eq(metrics_close_code_index(1000), 0);
    ck_assert_int_eq(metrics_close_code_index(4409), METRICS_CLOSE_CODES - 2);
    ck_assert_int_eq(metrics_close_code_index(3000), METRICS_CLOSE_CODES - 1);
    ck_assert_int_eq(metrics_refuse_of_status(403), MREF_ORIGIN);
    ck_assert_int_eq(metrics_refuse_of_status(418), MREF_OTHER);
}
END_TEST

/* Every value slot belongs to exactly one family. */
START_TEST(test_families_cover_every_slot)
{
    int owner[MS_COUNT];
    size_t i;
    int j;

    memset(owner, 0, sizeof(owner));
    for (i = 0; i < metrics_nfamilies; i++)
        for (j = metrics_families[i].first; j < metrics_families[i].first + metrics_families[i].n;
             j++) {
            ck_assert_int_lt(j, MS_COUNT);
            owner[j]++;
        }
    for (j = 0; j < MS_COUNT; j++)
        ck_assert_msg(owner[j] == 1, "slot %d in %d families", j, owner[j]);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_fold_keeps_counters_drops_gauges);
    tcase_add_test(tc, test_reader_never_sees_a_fold_half_done);
    tcase_add_test(tc, test_render_every_family);
    tcase_add_test(tc, test_label_indexes);
    tcase_add_test(tc, test_families_cover_every_slot);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(metrics_suite());
}
