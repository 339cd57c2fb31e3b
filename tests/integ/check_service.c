/* check_service.c -- redis-chat as a service: what the master tells systemd
 * through NOTIFY_SOCKET (a datagram socket of the test's own, as systemd
 * would give it), and the `user`/`group` privilege drop (as root only).
 * The notification tests skip without libsystemd in the build, the drop's
 * without root; with neither the program exits 77. */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define MAX_KIDS 16
#define JOIN(c, port, name) fx_join_settled((c), (port), (name), __LINE__)
#define NOTIFY_LOG_MAX 16384

#ifdef HAVE_LIBSYSTEMD
/* ---- a fake systemd notification socket ------------------------------------ */

struct notify {
    int fd;
    char path[320];
    char log[NOTIFY_LOG_MAX]; /* every datagram so far, each ended by "\n--\n" */
    size_t len;
};

static void notify_open(struct notify *n, const char *dir)
{
    struct sockaddr_un sa;

    memset(n, 0, sizeof(*n));
    snprintf(n->path, sizeof(n->path), "%s/notify.sock", dir);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    ck_assert_uint_lt(strlen(n->path), sizeof(sa.sun_path));
    memcpy(sa.sun_path, n->path, strlen(n->path));
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(n->fd, 0);
    ck_assert_int_eq(bind(n->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

static void notify_close(struct notify *n)
{
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
    unlink(n->path);
}

/* Read datagrams into n->log until the text after offset `from` holds
 * needle, or timeout_ms pass. Returns needle's offset in n->log, or -1. */
static long notify_wait(struct notify *n, size_t from, const char *needle, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;

    for (;;) {
        const char *hit = strstr(n->log + from, needle);
        struct pollfd p = {n->fd, POLLIN, 0};
        long long left = end - h_now_ms();
        char buf[1024];
        ssize_t got;

        if (hit != NULL)
            return hit - n->log;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        got = recv(n->fd, buf, sizeof(buf) - 1, 0);
        if (got <= 0)
            continue;
        buf[got] = '\0';
        ck_assert_uint_lt(n->len + (size_t)got + 4, sizeof(n->log));
        n->len += (size_t)snprintf(n->log + n->len, sizeof(n->log) - n->len, "%s\n--\n", buf);
    }
}

/* The datagram around offset at (which notify_wait returned) */
static void notify_datagram(const struct notify *n, long at, char *out, size_t cap)
{
    const char *start = n->log + at, *endp;

    while (start > n->log && strncmp(start - 4, "\n--\n", 4) != 0)
        start--;
    endp = strstr(start, "\n--\n");
    snprintf(out, cap, "%.*s", (int)(endp != NULL ? endp - start : (long)strlen(start)), start);
}

#define NOTIFY_EXPECT(n, from, needle, ms)                                                         \
    ({                                                                                             \
        long at_ = notify_wait((n), (from), (needle), (ms));                                       \
        ck_assert_msg(at_ >= 0, "no \"%s\" within %d ms; notifications:\n%s", (needle), (ms),      \
                      (n)->log);                                                                   \
        at_;                                                                                       \
    })

START_TEST(test_notify_ready_reload_stop)
{
    struct h_redis redis;
    struct h_chat c;
    struct notify n;
    struct wsc ann, ben;
    char dir[256], want[64], dgram[512];
    long at, reloading, ready;

    ck_assert_int_eq(h_tmpdir(dir, sizeof(dir)), 0);
    notify_open(&n, dir);
    /* Redis's port, then Redis down: the instance starts without it */
    ck_assert_int_eq(h_redis_start(&redis, 0, NULL), 0);
    h_redis_stop(&redis);

    ck_assert_int_eq(setenv("NOTIFY_SOCKET", n.path, 1), 0);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(h_chat_start(&c, &redis, 2, NULL), 0);
    unsetenv("NOTIFY_SOCKET");

    /* listening, Redis down: a status says so, and no READY=1 */
    at = NOTIFY_EXPECT(&n, 0, "waiting for redis", 3000);
    ck_assert_int_eq(notify_wait(&n, 0, "READY=1", 1500), -1);
    ASSERT_LOG(h_alive(c.pid), c.log);

    /* Redis up: READY=1 from the master itself */
    ck_assert_int_eq(h_redis_restart(&redis), 0);
    at = NOTIFY_EXPECT(&n, 0, "READY=1", 10000);
    notify_datagram(&n, at, dgram, sizeof(dgram));
    snprintf(want, sizeof(want), "MAINPID=%d\n", (int)c.pid);
    ck_assert_msg(strstr(dgram, want) != NULL, "READY without %s: %s", want, dgram);
    ck_assert_msg(strstr(dgram, "STATUS=2 worker(s), redis up") != NULL, "%s", dgram);
    ck_assert_int_eq(h_count_in_file(c.log, "ready: 2 worker(s) listening, redis up"), 1);

    /* and the chat works as soon as systemd is told so */
    JOIN(&ann, c.port, "ann");
    JOIN(&ben, c.port, "ben");
    EXPECT(&ann, "ben: has joined the chat!");
    SEND(&ben, "after ready");
    EXPECT(&ann, "ben: after ready");

    /* SIGHUP, nothing changed: RELOADING=1 (with the clock), then READY=1 */
    at = (long)n.len;
    ck_assert_int_eq(kill(c.pid, SIGHUP), 0);
    reloading = NOTIFY_EXPECT(&n, (size_t)at, "RELOADING=1", 5000);
    notify_datagram(&n, reloading, dgram, sizeof(dgram));
    ck_assert_msg(strstr(dgram, "MONOTONIC_USEC=") != NULL, "%s", dgram);
    NOTIFY_EXPECT(&n, (size_t)reloading, "READY=1", 5000);

    /* a reload that replaces the workers: the same pair, in that order */
    fx_conf_rewrite(c.conf, "workers 2", "workers 3");
    at = (long)n.len;
    ck_assert_int_eq(kill(c.pid, SIGHUP), 0);
    reloading = NOTIFY_EXPECT(&n, (size_t)at, "RELOADING=1", 5000);
    ready = notify_wait(&n, (size_t)at, "READY=1", 0);
    ck_assert_msg(ready == -1 || ready > reloading, "READY=1 before RELOADING=1:\n%s", n.log);
    at = NOTIFY_EXPECT(&n, (size_t)reloading, "READY=1", 5000);
    notify_datagram(&n, at, dgram, sizeof(dgram));
    ck_assert_msg(strstr(dgram, "STATUS=3 worker(s)") != NULL, "%s", dgram);

    /* Redis lost and back: the status follows, no second READY=1 for it */
    at = (long)n.len;
    h_redis_stop(&redis);
    NOTIFY_EXPECT(&n, (size_t)at, "STATUS=3 worker(s), redis down", 10000);
    ck_assert_int_eq(h_redis_restart(&redis), 0);
    NOTIFY_EXPECT(&n, (size_t)at, "STATUS=3 worker(s), redis up", 15000);
    ck_assert_int_eq(notify_wait(&n, (size_t)at, "READY=1", 0), -1);

    /* SIGTERM: STOPPING=1 while it drains */
    at = (long)n.len;
    ck_assert_int_eq(kill(c.pid, SIGTERM), 0);
    NOTIFY_EXPECT(&n, (size_t)at, "STOPPING=1", 5000);
    ck_assert_int_eq(h_wait_exit(c.pid, 15000, NULL), 1);
    c.pid = 0;

    wsc_free(&ann);
    wsc_free(&ben);
    h_chat_free(&c);
    h_redis_free(&redis);
    notify_close(&n);
    h_rmrf(dir);
}
END_TEST

/* Without NOTIFY_SOCKET nothing is sent and nothing complains. */
START_TEST(test_notify_without_socket_is_silent)
{
    struct h_redis redis;
    struct h_chat c;

    unsetenv("NOTIFY_SOCKET");
    ck_assert_int_eq(h_redis_start(&redis, 0, NULL), 0);
    fx_chat_ready(&c, &redis, 1, NULL);
    ck_assert(h_wait_log(c.log, "ready: 1 worker(s) listening, redis up", 5000));
    ck_assert_int_eq(h_file_contains(c.log, "sd_notify"), 0);
    h_chat_free(&c);
    h_redis_free(&redis);
}
END_TEST

#endif /* HAVE_LIBSYSTEMD */

/* ---- user and group -------------------------------------------------------- */

/* "Uid:" or "Gid:" of /proc/pid/status: all four ids must be want. */
static int proc_ids_are(pid_t pid, const char *field, unsigned want)
{
    char path[64], line[512];
    unsigned a, b, c, d;
    int ok = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, strlen(field)) == 0 &&
            sscanf(line + strlen(field), "%u %u %u %u", &a, &b, &c, &d) == 4)
            ok = a == want && b == want && c == want && d == want;
    fclose(f);
    return ok;
}

/* The "Groups:" of /proc/pid/status are exactly the user's groups
 * (getgrouplist: its primary group and those listing it in /etc/group). */
static int proc_groups_are_users(pid_t pid, const struct passwd *pw)
{
    gid_t want[64];
    int nwant = 64, ngot = 0, i, j;
    char path[64], line[1024], *p, *endp;
    unsigned long got[64];
    FILE *f;

    if (getgrouplist(pw->pw_name, pw->pw_gid, want, &nwant) == -1)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "Groups:", 7) != 0)
            continue;
        for (p = line + 7; ngot < 64; p = endp) {
            unsigned long v = strtoul(p, &endp, 10);
            if (endp == p)
                break;
            got[ngot++] = v;
        }
    }
    fclose(f);
    for (i = 0; i < ngot; i++) {
        for (j = 0; j < nwant && got[i] != (unsigned long)want[j]; j++)
            ;
        if (j == nwant) {
            fprintf(stderr, "pid %d is in group %lu, which %s is not\n", (int)pid, got[i],
                    pw->pw_name);
            return 0;
        }
    }
    return 1;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* A config in dir for `user` (and group, NULL = the default). */
static void write_user_conf(struct h_chat *c, const char *dir, const struct h_redis *r, int port,
                            const char *user, const char *group)
{
    char text[2048];

    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "%s", dir);
    snprintf(c->conf, sizeof(c->conf), "%s/redis-chat.conf", dir);
    snprintf(c->log, sizeof(c->log), "%s/redis-chat.log", dir);
    c->port = port;
    snprintf(text, sizeof(text),
             "port %d\nbind 127.0.0.1\nworkers 2\nbroker-socket %s/broker.sock\n"
             "logfile %s\npidfile %s/redis-chat.pid\nlog-level debug\n"
             "redis-host 127.0.0.1\nredis-port %d\nuser %s\n%s%s%s",
             port, dir, c->log, dir, r != NULL ? r->port : 6379, user, group ? "group " : "",
             group ? group : "", group ? "\n" : "");
    write_file(c->conf, text);
}

START_TEST(test_user_drops_every_process)
{
    struct passwd *pw = getpwnam("nobody");
    struct h_redis redis;
    struct h_chat c;
    struct wsc ann, ben, cid;
    struct stat st;
    char dir[256], moved[400];
    pid_t kids[MAX_KIDS];
    int i, n;

    ck_assert_ptr_nonnull(pw);
    ck_assert_int_eq(h_redis_start(&redis, 0, NULL), 0);
    /* the user's own directory for what it writes after the drop: the
     * broker's socket, the logfile's reopen */
    ck_assert_int_eq(h_tmpdir(dir, sizeof(dir)), 0);
    ck_assert_int_eq(chown(dir, pw->pw_uid, pw->pw_gid), 0);
    write_user_conf(&c, dir, &redis, h_free_port(), "nobody", NULL);
    ck_assert_int_eq(h_chat_start_conf(&c, c.conf), 0);
    ck_assert_int_eq(h_chat_wait_port(&c, H_START_TIMEOUT_MS), 0);
    ASSERT_LOG(h_wait_log(c.log, "ready: 2 worker(s) listening, redis up", 10000), c.log);
    ASSERT_LOG(h_file_contains(c.log, "running as user nobody"), c.log);

    /* the master's listeners, opened as root, serve the chat */
    JOIN(&ann, c.port, "ann");
    JOIN(&ben, c.port, "ben");
    EXPECT(&ann, "ben: has joined the chat!");
    SEND(&ben, "from nobody's workers");
    EXPECT(&ann, "ben: from nobody's workers");

    /* master, broker and both workers: every uid and gid is nobody's */
    n = h_children(c.pid, kids, MAX_KIDS);
    ck_assert_int_eq(n, 3);
    kids[n++] = c.pid;
    for (i = 0; i < n; i++) {
        ck_assert_msg(proc_ids_are(kids[i], "Uid:", pw->pw_uid), "pid %d: uid", (int)kids[i]);
        ck_assert_msg(proc_ids_are(kids[i], "Gid:", pw->pw_gid), "pid %d: gid", (int)kids[i]);
        ck_assert(proc_groups_are_users(kids[i], pw));
    }
    /* the logfile was handed over: a SIGHUP reopens it as nobody, here a
     * new one in nobody's directory after the old one was moved away */
    ck_assert_int_eq(stat(c.log, &st), 0);
    ck_assert_int_eq(st.st_uid, pw->pw_uid);
    snprintf(moved, sizeof(moved), "%s.1", c.log);
    ck_assert_int_eq(rename(c.log, moved), 0);
    ck_assert_int_eq(kill(c.pid, SIGHUP), 0);
    ASSERT_LOG(h_wait_log(moved, "configuration unchanged", 5000), moved);
    h_sleep_ms(200); /* the workers' reopen follows their SIGHUP */
    JOIN(&cid, c.port, "cid");
    EXPECT(&ann, "cid: has joined the chat!");
    ASSERT_LOG(h_wait_log(c.log, "user=cid: joined", 5000), moved);
    ck_assert_int_eq(stat(c.log, &st), 0);
    ck_assert_int_eq(st.st_uid, pw->pw_uid);

    /* every process runs as nobody: a reload cannot make it someone else */
    fx_conf_rewrite(c.conf, "user nobody", "user daemon");
    ck_assert_int_eq(kill(c.pid, SIGHUP), 0);
    ASSERT_LOG(h_wait_log(c.log, "user and group take a restart to change", 5000), c.log);
    SEND(&ben, "still here");
    EXPECT(&ann, "ben: still here");

    wsc_free(&ann);
    wsc_free(&ben);
    wsc_free(&cid);
    ck_assert_int_eq(h_chat_stop(&c), 0);
    /* the master's last line, and its pidfile gone from nobody's directory */
    ASSERT_LOG(h_file_contains(c.log, "master pid="), c.log);
    snprintf(moved, sizeof(moved), "%s/redis-chat.pid", dir);
    ck_assert_int_eq(access(moved, F_OK), -1);
    h_chat_free(&c);
    h_redis_free(&redis);
}
END_TEST

/* `group` sets the gid; the supplementary groups are still the user's. */
START_TEST(test_group_directive)
{
    struct passwd *pw = getpwnam("nobody");
    struct group *gr = getgrnam("daemon");
    struct h_chat c;
    pid_t kids[MAX_KIDS];
    char dir[256];
    int i, n;

    ck_assert_ptr_nonnull(pw);
    ck_assert_ptr_nonnull(gr);
    ck_assert_int_eq(h_tmpdir(dir, sizeof(dir)), 0);
    ck_assert_int_eq(chown(dir, pw->pw_uid, gr->gr_gid), 0);
    /* no Redis: the processes are up all the same */
    write_user_conf(&c, dir, NULL, h_free_port(), "nobody", "daemon");
    ck_assert_int_eq(h_chat_start_conf(&c, c.conf), 0);
    ck_assert_int_eq(h_chat_wait_port(&c, H_START_TIMEOUT_MS), 0);
    ASSERT_LOG(h_wait_count(c.log, "connected (pid", 2, 5000), c.log);
    n = h_children(c.pid, kids, MAX_KIDS);
    ck_assert_int_eq(n, 3);
    kids[n++] = c.pid;
    for (i = 0; i < n; i++) {
        ck_assert(proc_ids_are(kids[i], "Uid:", pw->pw_uid));
        ck_assert(proc_ids_are(kids[i], "Gid:", gr->gr_gid));
    }
    h_chat_free(&c);
}
END_TEST

/* Run redis-chat with up to three arguments (NULL ends them early), its
 * output into out; returns its exit code. */
static int run_chat(char *out, size_t cap, const char *a1, const char *a2, const char *a3)
{
    const char *bin = getenv("REDIS_CHAT");
    char *argv[] = {(char *)(bin != NULL && *bin ? bin : "./redis-chat"), (char *)a1, (char *)a2,
                    (char *)a3, NULL};

    return h_run(out, cap, 15000, argv);
}

/* A user or group that does not exist: -t says so, and so does a start,
 * before anything listens. Needs no root. */
START_TEST(test_unknown_user_or_group)
{
    char dir[256], conf[320], text[256], out[4096];
    int port = h_free_port();

    ck_assert_int_eq(h_tmpdir(dir, sizeof(dir)), 0);
    snprintf(conf, sizeof(conf), "%s/c.conf", dir);
    snprintf(text, sizeof(text), "port %d\nbind 127.0.0.1\nuser no-such-user-rc\n", port);
    write_file(conf, text);
    ck_assert_int_eq(run_chat(out, sizeof(out), "-t", "-c", conf), 1);
    ck_assert_msg(strstr(out, "redis-chat: user: no such user 'no-such-user-rc'") != NULL, "%s",
                  out);
    ck_assert_int_eq(run_chat(out, sizeof(out), "-c", conf, NULL), 1);
    ck_assert_msg(strstr(out, "redis-chat: user: no such user 'no-such-user-rc'") != NULL, "%s",
                  out);

    snprintf(text, sizeof(text), "port %d\nbind 127.0.0.1\nuser root\ngroup no-such-group-rc\n",
             port);
    write_file(conf, text);
    ck_assert_int_eq(run_chat(out, sizeof(out), "-t", "-c", conf), 1);
    ck_assert_msg(strstr(out, "redis-chat: group: no such group 'no-such-group-rc'") != NULL, "%s",
                  out);

    /* and both existing: -t passes */
    snprintf(text, sizeof(text), "port %d\nbind 127.0.0.1\nuser root\ngroup root\n", port);
    write_file(conf, text);
    ck_assert_int_eq(run_chat(out, sizeof(out), "-t", "-c", conf), 0);
    h_rmrf(dir);
}
END_TEST

/* As nobody (in a child of the test's own, so the runner stays root even
 * with CK_FORK=no): `user daemon` is refused with the reason; `user nobody`,
 * the user it runs as, is fine (as under systemd's User=). Returns the
 * child's exit code: 0 passed, else the step that failed. */
static int not_root_steps(const char *dir, const struct passwd *pw)
{
    char conf[320], out[4096];
    struct h_chat c;

    if (setgroups(0, NULL) == -1 || setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1)
        return 2;
    snprintf(conf, sizeof(conf), "%s/c.conf", dir);
    if (run_chat(out, sizeof(out), "-c", conf, NULL) != 1)
        return 3;
    if (strstr(out, "user: cannot switch to daemon") == NULL ||
        strstr(out, "not started as root") == NULL) {
        fprintf(stderr, "unexpected output: %s\n", out);
        return 4;
    }
    write_user_conf(&c, dir, NULL, h_free_port(), "nobody", NULL);
    if (h_chat_start_conf(&c, c.conf) == -1 || h_chat_wait_port(&c, H_START_TIMEOUT_MS) == -1)
        return 5;
    if (h_chat_stop(&c) != 0)
        return 6;
    return 0;
}

START_TEST(test_not_root_cannot_switch)
{
    struct passwd *pw = getpwnam("nobody");
    char dir[256], conf[320], text[512];
    int status = -1;
    pid_t pid;

    ck_assert_ptr_nonnull(pw);
    ck_assert_int_eq(h_tmpdir(dir, sizeof(dir)), 0);
    ck_assert_int_eq(chown(dir, pw->pw_uid, pw->pw_gid), 0);
    snprintf(conf, sizeof(conf), "%s/c.conf", dir);
    snprintf(text, sizeof(text), "port %d\nbind 127.0.0.1\nuser daemon\n", h_free_port());
    write_file(conf, text);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(not_root_steps(dir, pw));
    ck_assert_int_eq(h_wait_exit(pid, 30000, &status), 1);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "step %d failed",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    h_rmrf(dir);
}
END_TEST

static Suite *service_suite(void)
{
    Suite *s = suite_create("service");
    TCase *tc;

#ifdef HAVE_LIBSYSTEMD
    tc = tcase_create("notify");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_notify_ready_reload_stop);
    tcase_add_test(tc, test_notify_without_socket_is_silent);
    suite_add_tcase(s, tc);
#else
    fprintf(stderr, "built without libsystemd: the sd_notify tests are skipped\n");
#endif
    tc = tcase_create("user");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_unknown_user_or_group);
    if (geteuid() == 0 && getpwnam("nobody") != NULL) {
        tcase_add_test(tc, test_user_drops_every_process);
        tcase_add_test(tc, test_group_directive);
        tcase_add_test(tc, test_not_root_cannot_switch);
    } else {
        fprintf(stderr, "not root (or no user nobody): the privilege drop tests are skipped\n");
    }
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(service_suite());
}
