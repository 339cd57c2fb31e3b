/* check_backpressure.c -- a worker that stops reading under a steady
 * fan-out: the broker holds at most max-worker-backlog for it (measured as
 * the broker's VmRSS), then drops it and the master kills and replaces it;
 * its users' connections close and their names are free again, while the
 * users of the other worker get every message, in order. Real redis-server
 * (TLS + password) and the real binary, on loopback, bounded in time.
 *
 * Processes are found through the master's log, so the test runs under
 * valgrind too (tests/valgrind-integ.sh), where RSS is not checked. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define T_GONE_MS 5000 /* the stuck worker killed, its users told */

#define MAX_USERS 32 /* joins until the other worker holds 2: < 1e-7 to miss by chance */
#define TEXT_MAX 4096

#define BACKLOG_KB 256L    /* max-worker-backlog in the test's config */
#define FLOOD_RATE 1000    /* messages per second */
#define FLOOD_MS 4000      /* 4,000 messages ... */
#define FLOOD_BYTES 3000   /* ... of 3 KB: 12 MB, far past the bound and any socket buffer */
#define FLOOD_TICK_MS 10   /* FLOOD_RATE / 100 messages per tick */
/* the broker's VmRSS may grow by the bound plus this (allocator slack,
 * Redis and TLS buffers); without the bound it grows by the whole 12 MB */
#define RSS_MARGIN_KB (4L << 10)

/* AddressSanitizer keeps freed blocks in quarantine (256 MB by default) and
 * maps its own metadata as it goes, and so does valgrind: there VmRSS says
 * nothing about the bound, which is checked in the plain build only (the
 * rest holds everywhere) */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_CHECKED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_CHECKED 0
#endif
#endif
#ifndef RSS_CHECKED
#define RSS_CHECKED 1
#endif

/* ---- helpers -------------------------------------------------------------- */

/* The flood as the receivers must see it: the sender's messages, all, once,
 * in order; between them, once each, the leaves of the stuck worker's users. */
struct flood {
    char prefix[32]; /* "u3: " */
    size_t plen;
    char leaves[MAX_USERS][64];
    int nleaves;
    const char *log;
};

struct receiver {
    struct wsc *c;
    char name[16];
    int got;  /* flood messages received = the sequence number due next */
    int left; /* leaves received */
    char seen[MAX_USERS];
};

/* Read one text of r's, within timeout_ms, and check it against f. */
static void receive_one(struct receiver *r, struct flood *f, int timeout_ms)
{
    char got[TEXT_MAX];
    int n = wsc_recv_text(r->c, got, sizeof(got), timeout_ms), i;

    if (n <= 0)
        h_dump_tail(f->log, 40);
    ck_assert_msg(n > 0, "%s: after %d messages and %d leaves: %s", r->name, r->got, r->left,
                  n < 0 ? "connection closed" : "nothing more came");
    if (strncmp(got, f->prefix, f->plen) == 0) {
        ck_assert_msg(atoi(got + f->plen) == r->got, "%s: message %d came where %d was due",
                      r->name, atoi(got + f->plen), r->got);
        ck_assert_int_eq(n, (int)f->plen + FLOOD_BYTES);
        r->got++;
        return;
    }
    for (i = 0; i < f->nleaves && strcmp(got, f->leaves[i]) != 0; i++)
        ;
    ck_assert_msg(i < f->nleaves && !r->seen[i], "%s: unexpected or repeated \"%.80s\"", r->name,
                  got);
    r->seen[i] = 1;
    r->left++;
}

/* ---- the test ------------------------------------------------------------ */

/* 2 workers; users until one worker (the victim's) holds one and the other
 * holds two (a sender and a receiver); the victim is stopped with SIGSTOP and
 * FLOOD_RATE messages a second go out for FLOOD_MS. */
START_TEST(test_stopped_worker_bounded)
{
    static char msg[FLOOD_BYTES + 1];
    static struct flood f;
    struct h_redis r;
    struct h_chat c;
    struct wsc u[MAX_USERS];
    struct receiver rx[MAX_USERS];
    char name[16], who[32], text[160];
    int slot[MAX_USERS], count[2] = {0, 0}, n, i, victim, sender = -1, nrx = 0, sent = 0;
    int rss_checked;
    pid_t broker, stuck, fresh;
    long base_kb, peak_kb, kb;
    long long t0;

    ck_assert_int_eq(h_redis_start(&r, 1, "s3cret"), 0);
    fx_chat_ready(&c, &r, 2, "max-worker-backlog 256k\nrate-limit 0\n");
    for (n = 0; n < MAX_USERS; n++) {
        snprintf(name, sizeof(name), "u%d", n);
        fx_join(&u[n], c.port, name, NULL, __LINE__);
        slot[n] = fx_user_slot(c.log, name);
        ck_assert_msg(slot[n] == 0 || slot[n] == 1, "%s: no join line in %s", name, c.log);
        /* u0's worker is the victim; the other needs a sender and a receiver */
        count[slot[n]]++;
        if (count[!slot[0]] >= 2)
            break;
    }
    ck_assert_msg(n < MAX_USERS, "%d users, worker %d holds %d", n, !slot[0], count[!slot[0]]);
    n++;
    victim = slot[0];
    memset(&f, 0, sizeof(f));
    f.log = c.log;
    for (i = 0; i < n; i++) {
        fx_drain(&u[i]);
        if (slot[i] == victim) {
            snprintf(f.leaves[f.nleaves++], sizeof(f.leaves[0]), "u%d: has left the chat!", i);
        } else if (sender < 0) {
            sender = i;
        } else {
            memset(&rx[nrx], 0, sizeof(rx[nrx]));
            rx[nrx].c = &u[i];
            snprintf(rx[nrx++].name, sizeof(rx[0].name), "u%d", i);
        }
    }
    f.plen = (size_t)snprintf(f.prefix, sizeof(f.prefix), "u%d: ", sender);

    broker = fx_started_pid(c.log, "broker", 1, 0);
    snprintf(who, sizeof(who), "worker %d", victim);
    stuck = fx_started_pid(c.log, who, 1, 0);
    ck_assert_int_ne(broker, 0);
    ck_assert_int_ne(stuck, 0);
    rss_checked = RSS_CHECKED && getenv("REDIS_CHAT_VALGRIND") == NULL;
    base_kb = peak_kb = fx_rss_kb(broker);
    ck_assert_int_gt(base_kb, 0);
    /* no SIGCONT anywhere: it must be killed below, and if a check fails
     * first, check's SIGKILL to the test's process group takes it too */
    ck_assert_int_eq(kill(stuck, SIGSTOP), 0);

    /* the flood: one sender on the healthy worker, paced to FLOOD_RATE; the
     * receivers keep up, so only the stopped worker falls behind */
    memset(msg, 'z', FLOOD_BYTES);
    t0 = h_now_ms();
    while (sent < FLOOD_RATE * FLOOD_MS / 1000) {
        long long due = t0 + (long long)sent * 1000 / FLOOD_RATE;

        if (h_now_ms() < due)
            h_sleep_ms((int)(due - h_now_ms()));
        for (i = 0; i < FLOOD_RATE * FLOOD_TICK_MS / 1000; i++, sent++) {
            int k = snprintf(text, sizeof(text), "%d ", sent);
            memcpy(msg, text, (size_t)k); /* the sequence number, then z's */
            ck_assert_int_eq(wsc_send_text(&u[sender], msg), 0);
        }
        for (i = 0; i < nrx; i++)
            while (rx[i].got < sent)
                receive_one(&rx[i], &f, T_MSG_MS);
        kb = fx_rss_kb(broker);
        peak_kb = kb > peak_kb ? kb : peak_kb;
        ck_assert_msg(!rss_checked || peak_kb - base_kb < BACKLOG_KB + RSS_MARGIN_KB,
                      "the broker grew by %ld kB after %d messages of %d bytes (bound %ld kB + "
                      "margin %ld kB)",
                      peak_kb - base_kb, sent, FLOOD_BYTES, BACKLOG_KB, RSS_MARGIN_KB);
    }
    fprintf(stderr,
            "check_backpressure: %d messages of %d bytes in %lld ms; broker VmRSS %ld kB before, "
            "peak %ld kB (+%ld kB; bound %ld kB + margin %ld kB%s)\n",
            sent, FLOOD_BYTES, h_now_ms() - t0, base_kb, peak_kb, peak_kb - base_kb, BACKLOG_KB,
            RSS_MARGIN_KB, rss_checked ? "" : "; not checked here");

    /* the stuck worker: dropped by the broker, killed and replaced by the master */
    snprintf(text, sizeof(text), "killing worker %d (pid %d)", victim, (int)stuck);
    ASSERT_LOG(h_wait_log(c.log, text, T_GONE_MS), c.log);
    ASSERT_LOG(h_file_contains(c.log, "(max-worker-backlog 262144): dropping it"), c.log);
    ck_assert_int_eq(h_wait_exit(stuck, T_GONE_MS, NULL), 1);
    fresh = fx_started_pid(c.log, who, 2, T_GONE_MS);
    ck_assert_msg(fresh != 0 && fresh != stuck, "no new %s", who);
    /* at once, even right after its start: falling behind is no start failure */
    snprintf(text, sizeof(text), "worker %d killed by signal %d", victim, SIGKILL);
    ASSERT_LOG(h_file_contains(c.log, text), c.log);
    ASSERT_LOG(h_file_contains(c.log, "; restarting it in 0 ms"), c.log);
    ck_assert_int_eq(h_count_in_file(c.log, "started broker, pid "), 1);
    ck_assert(h_alive(broker));
    /* its users' connections closed; their leaves reached the others once */
    for (i = 0; i < n; i++)
        if (slot[i] == victim)
            ck_assert_msg(wsc_wait_eof(&u[i], T_GONE_MS), "u%d: connection still open", i);
    for (i = 0; i < nrx; i++) {
        while (rx[i].left < f.nleaves)
            receive_one(&rx[i], &f, T_GONE_MS);
        ck_assert_int_eq(rx[i].got, sent);
        ck_assert_msg(wsc_no_text(rx[i].c, T_QUIET_MS), "%s: more after the leaves", rx[i].name);
    }
    /* the names are free again: u0, the victim's first user, rejoins */
    wsc_free(&u[0]);
    fx_join(&u[0], c.port, "u0", NULL, __LINE__);
    for (i = 0; i < nrx; i++)
        ck_assert_msg(wsc_expect_text(rx[i].c, "u0: has joined the chat!", T_MSG_MS),
                      "%s: no join of u0", rx[i].name);

    for (i = 0; i < n; i++)
        wsc_free(&u[i]);
    h_chat_free(&c);
    h_redis_free(&r);
}
END_TEST

static Suite *backpressure_suite(void)
{
    Suite *s = suite_create("backpressure");
    TCase *tc = tcase_create("stuck worker");

    tcase_add_unchecked_fixture(tc, fx_tmp_enter, fx_tmp_leave);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_stopped_worker_bounded);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(backpressure_suite());
}
