/* fixtures.h -- what the integration tests share above the harness: a temp
 * dir per test case, an instance ready on its Redis, users joined (and
 * spread over the worker slots), what they hear, and the keys the chat keeps
 * in Redis.
 *
 * Every helper fails the test with ck_assert_msg on its own; the join
 * helpers take the caller's __LINE__ (through JOIN) so that a failure names
 * the test's line, not this file's. */
#ifndef RC_TESTS_FIXTURES_H
#define RC_TESTS_FIXTURES_H

#include <check.h>
#include <stddef.h>
#include <sys/types.h>

#include "harness.h"
#include "wsclient.h"

#define T_MSG_MS 3000  /* a message that must come */
#define T_QUIET_MS 300 /* silence that must hold */
#define FX_UNORDERED_MAX 64

/* ck_assert_msg at the caller's line, naming what was missing */
#define EXPECT(c, text)                                                                            \
    ck_assert_msg(wsc_expect_text((c), (text), T_MSG_MS), "%s: no \"%s\"", #c, (text))
#define QUIET(c) ck_assert_msg(wsc_no_text((c), T_QUIET_MS), "%s: unexpected text or close", #c)
#define SEND(c, text) ck_assert_msg(wsc_send_text((c), (text)) == 0, "%s: send failed", #c)
/* on failure, show the end of the server's log */
#define ASSERT_LOG(cond, log)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            h_dump_tail((log), 40);                                                                \
            ck_abort_msg("Assertion '%s' failed", #cond);                                          \
        }                                                                                          \
    } while (0)

/* ---- fixtures ------------------------------------------------------------- */

/* Unchecked fixture: the servers of a test case go below a fresh temp dir
 * (TMPDIR), which fx_tmp_leave removes even when a test failed. */
void fx_tmp_enter(void);
void fx_tmp_leave(void);

/* h_chat_start with `workers` workers on r (extra: config lines or NULL),
 * then wait until every worker has logged "chat service available". */
void fx_chat_ready(struct h_chat *c, const struct h_redis *r, int workers, const char *extra);

/* Set `from` to `to` in a config file (the first occurrence), for SIGHUP
 * tests. */
void fx_conf_rewrite(const char *path, const char *from, const char *to);

/* ---- users ----------------------------------------------------------------- */

/* Connect `name` on port (extra headers may be NULL) and read its welcome. */
void fx_join(struct wsc *c, int port, const char *name, const char *extra_headers, int line);

/* fx_join, then let other users' join notices pass for FX_JOIN_SETTLE_MS: a
 * notice published just before this user's own SADD may come after the
 * welcome (notices travel on the broker's subscriber connection, the
 * welcome on its command connection). Anything else fails. */
#define FX_JOIN_SETTLE_MS 100
void fx_join_settled(struct wsc *c, int port, const char *name, int line);

/* fx_join_settled in a room, `/chat/{room}/{name}` (room NULL: the default
 * room, `/chat/{name}`). */
void fx_join_room(struct wsc *c, int port, const char *room, const char *name, int line);

/* Read and drop texts until none came for T_QUIET_MS; the connection must stay. */
void fx_drain(struct wsc *c);

/* Receive exactly the texts want[0..n), in any order, each once and nothing
 * else, within timeout_ms (n <= FX_UNORDERED_MAX). Returns 1, or 0 with the
 * reason on stderr. */
int fx_expect_unordered(struct wsc *c, const char *const *want, int n, int timeout_ms);

/* The worker slot that logged "user=NAME: joined" in log (waiting up to
 * T_MSG_MS for the line), or -1. */
int fx_user_slot(const char *log, const char *user);

/* "slots: 0 1 1 ..." for a failure message: where each of the n users landed. */
const char *fx_slots_text(const int *slot, int n, char *buf, size_t cap);

/* Users "u0", "u1"... on c (2 workers) until both workers hold at least one
 * and there are at least `min`, at most `max`; each one's slot in slot[].
 * Returns how many joined. */
int fx_join_spread(struct wsc *u, int *slot, int max, const struct h_chat *c, int min);

/* ---- processes ------------------------------------------------------------- */

/* The pid the master logged at the nth start (from 1) of `who` ("broker",
 * "worker 1"), waiting up to timeout_ms for it; 0 if none. From the log, not
 * the ps titles, which valgrind hides. */
pid_t fx_started_pid(const char *log, const char *who, int nth, int timeout_ms);

/* The VmRSS of pid in kB (from /proc), or -1. */
long fx_rss_kb(pid_t pid);

/* ---- Redis ------------------------------------------------------------------ */

/* 1 when the SET key on r holds member. */
int fx_set_has(const struct h_redis *r, const char *key, const char *member);

/* Wait until member is in the SET (present = 1) or not (present = 0). */
int fx_set_wait(const struct h_redis *r, const char *key, const char *member, int present,
                int timeout_ms);

/* Wait up to T_MSG_MS until the SET key is empty, else fail the test. Tests
 * that share a Redis start this way, so no late leave notice of a previous
 * test reaches their clients. */
void fx_users_quiesce(const struct h_redis *r, const char *key);

/* Integer reply of a command such as "SCARD key"; -1 when there is none. */
long fx_redis_int(const struct h_redis *r, const char *cmd);

/* Wait until the integer reply of cmd is want. */
int fx_redis_int_wait(const struct h_redis *r, const char *cmd, long want, int timeout_ms);

/* The instance id its broker logged ("...; instance <id>"). */
void fx_instance_id(const char *log, char *out, size_t cap);

/* A raw Redis subscriber: redis-cli with words ("SUBSCRIBE", "chat",
 * NULL) in the background, its output (raw: "message\nchannel\npayload\n"
 * per message) in a file below TMPDIR. Started once Redis has confirmed
 * every channel or pattern. */
struct fx_spy {
    pid_t pid;
    char path[320];
};

void fx_spy_start(struct fx_spy *s, const struct h_redis *r, char *const words[]);

/* Stop the spy and read what it printed into out (truncated to cap - 1). */
void fx_spy_stop(struct fx_spy *s, char *out, size_t cap);

#endif
