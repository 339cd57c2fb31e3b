/* check_process.c -- the process model against the real binary: the master,
 * its broker and workers, respawns, signals, config errors, ports. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define MAX_KIDS 64

static struct h_redis redis;

static void redis_setup(void)
{
    ck_assert_int_eq(h_redis_start(&redis, 1, "s3cret"), 0);
}

static void redis_teardown(void)
{
    h_redis_free(&redis);
}

/* Wait until `master` has exactly n live children. */
static int wait_children(pid_t master, int n, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    pid_t kids[MAX_KIDS];

    do {
        if (h_children(master, kids, MAX_KIDS) == n)
            return 1;
        h_sleep_ms(20);
    } while (h_now_ms() < end);
    return 0;
}

static int http_status(int port, const char *request)
{
    struct wsc c;
    int st = wsc_connect_raw(&c, port, request, 3000);

    wsc_free(&c);
    return st;
}

START_TEST(test_process_tree)
{
    struct h_chat c;
    char cmd[256];

    ck_assert_int_eq(h_chat_start(&c, &redis, 3, NULL), 0);
    ck_assert(wait_children(c.pid, 4, 3000));
    /* every worker reaches the broker, and the broker reaches Redis over TLS;
     * a child titles itself before that, so after it every title is set (a
     * child can be forked and not yet titled: that failed a distcheck) */
    ck_assert(h_wait_count(c.log, "connected (pid", 3, 5000));
    ck_assert(h_wait_log(c.log, "redis link up", 5000));
    ck_assert_int_gt(h_cmdline(c.pid, cmd, sizeof(cmd)), 0);
    ck_assert_str_eq(cmd, "redis-chat: master");
    ck_assert_int_ne(h_child_titled(c.pid, "redis-chat: broker"), 0);
    ck_assert_int_ne(h_child_titled(c.pid, "redis-chat: worker 0"), 0);
    ck_assert_int_ne(h_child_titled(c.pid, "redis-chat: worker 1"), 0);
    ck_assert_int_ne(h_child_titled(c.pid, "redis-chat: worker 2"), 0);
    ck_assert_int_eq(h_child_titled(c.pid, "redis-chat: worker 3"), 0);
    ck_assert_int_eq(http_status(c.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
    h_chat_free(&c);
}
END_TEST

START_TEST(test_worker_respawn)
{
    struct h_chat c;
    pid_t old, fresh;
    long long t0;

    ck_assert_int_eq(h_chat_start(&c, &redis, 3, NULL), 0);
    ck_assert(wait_children(c.pid, 4, 3000));
    ck_assert(h_wait_count(c.log, "worker 1 connected", 1, 3000));
    old = h_child_titled(c.pid, "redis-chat: worker 1");
    ck_assert_int_ne(old, 0);
    t0 = h_now_ms();
    ck_assert_int_eq(kill(old, SIGKILL), 0);
    fresh = h_wait_new_child(c.pid, "redis-chat: worker 1", old, 1000);
    ck_assert_msg(fresh != 0, "no new worker 1 within a second");
    ck_assert_int_lt(h_now_ms() - t0, 1000);
    ck_assert(h_wait_log(c.log, "worker 1 killed by signal 9", 1000));
    ck_assert(wait_children(c.pid, 4, 1000));
    /* the replacement serves the same port */
    ck_assert(h_wait_count(c.log, "worker 1 connected", 2, 3000));
    ck_assert_int_eq(http_status(c.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
    h_chat_free(&c);
}
END_TEST

START_TEST(test_broker_respawn)
{
    struct h_chat c;
    pid_t old, fresh;

    ck_assert_int_eq(h_chat_start(&c, &redis, 3, NULL), 0);
    ck_assert(h_wait_count(c.log, "connected (pid", 3, 5000));
    /* the first broker must have reached Redis too, or the count of
     * "redis link up" below would miss its line (seen under ASan) */
    ck_assert(h_wait_log(c.log, "redis link up", 5000));
    old = h_child_titled(c.pid, "redis-chat: broker");
    ck_assert_int_ne(old, 0);
    ck_assert_int_eq(kill(old, SIGKILL), 0);
    fresh = h_wait_new_child(c.pid, "redis-chat: broker", old, 1000);
    ck_assert_msg(fresh != 0, "no new broker within a second");
    /* all three workers reconnect to the new broker */
    ck_assert(h_wait_count(c.log, "worker 0 connected", 2, 5000));
    ck_assert(h_wait_count(c.log, "worker 1 connected", 2, 5000));
    ck_assert(h_wait_count(c.log, "worker 2 connected", 2, 5000));
    ck_assert(h_wait_count(c.log, "redis link up", 2, 5000));
    h_chat_free(&c);
}
END_TEST

START_TEST(test_sighup_changes_workers)
{
    struct h_chat c;
    pid_t w0;

    ck_assert_int_eq(h_chat_start(&c, &redis, 3, NULL), 0);
    ck_assert(wait_children(c.pid, 4, 3000));
    w0 = h_child_titled(c.pid, "redis-chat: worker 0");

    /* a broken file is refused and everything keeps running */
    fx_conf_rewrite(c.conf, "workers 3", "workers 0");
    ck_assert_int_eq(kill(c.pid, SIGHUP), 0);
    ck_assert(h_wait_log(c.log, "reload failed", 3000));
    ck_assert(h_file_contains(c.log, "workers"));
    ck_assert_int_eq(h_child_titled(c.pid, "redis-chat: worker 0"), w0);
    ck_assert(wait_children(c.pid, 4, 1000));

    /* a valid one with fewer workers converges to that count */
    fx_conf_rewrite(c.conf, "workers 0", "workers 2");
    ck_assert_int_eq(kill(c.pid, SIGHUP), 0);
    ck_assert(h_wait_log(c.log, "reloaded: 2 worker(s)", 3000));
    ck_assert(wait_children(c.pid, 3, 5000));
    ck_assert_int_ne(h_wait_new_child(c.pid, "redis-chat: worker 0", w0, 3000), 0);
    ck_assert_int_ne(h_wait_new_child(c.pid, "redis-chat: worker 1", 0, 3000), 0);
    ck_assert(wait_children(c.pid, 3, 5000));
    ck_assert_int_eq(h_child_titled(c.pid, "redis-chat: worker 2"), 0);
    ck_assert_int_eq(http_status(c.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 200);

    /* and back up to four */
    fx_conf_rewrite(c.conf, "workers 2", "workers 4");
    ck_assert_int_eq(kill(c.pid, SIGHUP), 0);
    ck_assert(wait_children(c.pid, 5, 5000));
    /* a fresh fork is counted before it has set its title */
    ck_assert_int_ne(h_wait_new_child(c.pid, "redis-chat: worker 3", 0, 3000), 0);
    h_chat_free(&c);
}
END_TEST

START_TEST(test_sigterm_stops_all)
{
    struct h_chat c;
    pid_t kids[MAX_KIDS];
    int n, i, st;

    ck_assert_int_eq(h_chat_start(&c, &redis, 3, NULL), 0);
    ck_assert(wait_children(c.pid, 4, 3000));
    n = h_children(c.pid, kids, MAX_KIDS);
    ck_assert_int_eq(n, 4);
    st = h_chat_stop(&c);
    if (st != -1) { /* our own child: the exit status is known */
        ck_assert(WIFEXITED(st));
        ck_assert_int_eq(WEXITSTATUS(st), 0);
    }
    for (i = 0; i < n; i++)
        ck_assert_msg(!h_alive(kids[i]), "child %d still alive", (int)kids[i]);
    ck_assert(h_file_contains(c.log, "stopped"));
    ck_assert(!h_file_contains(c.log, "SIGKILL"));
    h_chat_free(&c);
}
END_TEST

static int run_chat(char *out, size_t cap, const char *a1, const char *a2, const char *a3)
{
    const char *bin = getenv("REDIS_CHAT") ? getenv("REDIS_CHAT") : "./redis-chat";
    char *argv[] = {(char *)bin, (char *)a1, (char *)a2, (char *)a3, NULL};

    return h_run(out, cap, 10000, argv);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_bad_config)
{
    char dir[256], path[320], out[4096], want[400];

    ck_assert_int_eq(h_tmpdir(dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/bad.conf", dir);

    write_file(path, "# comment\nport 9\nworkers 0\n");
    ck_assert_int_eq(run_chat(out, sizeof(out), "-c", path, NULL), 1);
    snprintf(want, sizeof(want), "%s:3: workers", path);
    ck_assert_msg(strstr(out, want) != NULL, "got: %s", out);

    write_file(path, "port 9\nno-such-directive 1\n");
    ck_assert_int_eq(run_chat(out, sizeof(out), "-t", "-c", path), 1);
    snprintf(want, sizeof(want), "%s:2:", path);
    ck_assert_msg(strstr(out, want) != NULL, "got: %s", out);

    write_file(path, "port 9000\nworkers 2\n");
    ck_assert_int_eq(run_chat(out, sizeof(out), "-t", "-c", path), 0);
    ck_assert_int_eq(run_chat(out, sizeof(out), "-c", "/nonexistent/redis-chat.conf", NULL), 1);
    ck_assert_msg(strstr(out, "/nonexistent/redis-chat.conf") != NULL, "got: %s", out);
    ck_assert_int_eq(run_chat(out, sizeof(out), "-v", NULL, NULL), 0);
    ck_assert_msg(strstr(out, "redis-chat ") != NULL, "got: %s", out);
    h_rmrf(dir);
}
END_TEST

START_TEST(test_port_taken)
{
    struct sockaddr_in sa;
    struct h_chat c;
    char conf[512], errlog[400];
    int fd, on = 1, port = h_free_port(), st;
    long long t0;

    /* someone else (no SO_REUSEPORT) holds the port */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 8), 0);

    snprintf(conf, sizeof(conf), "port %d\n", port);
    t0 = h_now_ms();
    h_chat_start(&c, &redis, 2, conf);
    ck_assert_int_eq(h_wait_exit(c.pid, 5000, &st), 1);
    c.pid = 0;
    if (st != -1)
        ck_assert_int_ne(WEXITSTATUS(st), 0);
    ck_assert_int_lt(h_now_ms() - t0, 5000);
    snprintf(errlog, sizeof(errlog), "%s/stderr.log", c.dir);
    ck_assert(h_file_contains(errlog, "Address already in use"));
    ck_assert(!h_file_contains(errlog, "started worker"));
    h_chat_free(&c);

    /* a redis-chat on the port is refused too (SO_REUSEPORT would share it) */
    close(fd);
    ck_assert_int_eq(h_chat_start(&c, &redis, 1, conf), 0);
    {
        struct h_chat d;
        char conf2[600];
        snprintf(conf2, sizeof(conf2), "port %d\n", port);
        h_chat_start(&d, &redis, 1, conf2);
        ck_assert_int_eq(h_wait_exit(d.pid, 5000, &st), 1);
        d.pid = 0;
        snprintf(errlog, sizeof(errlog), "%s/stderr.log", d.dir);
        ck_assert(h_file_contains(errlog, "Address already in use"));
        h_chat_free(&d);
    }

    /* the broker socket in use: the broker dies at start, the master gives up */
    {
        struct h_chat d;
        char conf2[600];
        snprintf(conf2, sizeof(conf2), "broker-socket %s\n", c.sock);
        t0 = h_now_ms();
        /* the master may give up before or after the start helper saw the port */
        if (h_chat_start(&d, &redis, 1, conf2) == 0) {
            ck_assert_int_eq(h_wait_exit(d.pid, 10000, &st), 1);
            if (st != -1)
                ck_assert_int_ne(WEXITSTATUS(st), 0);
        }
        ck_assert_int_lt(h_now_ms() - t0, 10000);
        ck_assert(h_file_contains(d.log, "in use by another process"));
        ck_assert(h_file_contains(d.log, "giving up"));
        ck_assert_int_le(h_count_in_file(d.log, "started broker"), 5);
        d.pid = 0;
        h_chat_free(&d);
    }
    h_chat_free(&c);
}
END_TEST

START_TEST(test_two_instances)
{
    struct h_chat a, b;
    char dir[256], ca[400], cb[400], text[1024];
    int pa = h_free_port(), pb;

    /* two picks of a free port can be the same one (it failed a distcheck) */
    do
        pb = h_free_port();
    while (pb == pa);
    ck_assert_int_eq(h_tmpdir(dir, sizeof(dir)), 0);
    /* default broker-socket: derived from the port, so the two do not clash */
    snprintf(text, sizeof(text),
             "port %d\nbind 127.0.0.1\nworkers 2\nredis-host 127.0.0.1\nredis-port %d\n"
             "redis-password %s\nredis-tls yes\nredis-tls-ca-cert %s\n"
             "redis-tls-server-name localhost\nlogfile %s/a.log\n",
             pa, redis.port, redis.password, redis.ca, dir);
    snprintf(ca, sizeof(ca), "%s/a.conf", dir);
    write_file(ca, text);
    snprintf(text, sizeof(text),
             "port %d\nbind 127.0.0.1\nworkers 2\nredis-host 127.0.0.1\nredis-port %d\n"
             "redis-password %s\nredis-tls yes\nredis-tls-ca-cert %s\n"
             "redis-tls-server-name localhost\nlogfile %s/b.log\n",
             pb, redis.port, redis.password, redis.ca, dir);
    snprintf(cb, sizeof(cb), "%s/b.conf", dir);
    write_file(cb, text);

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.port = pa;
    b.port = pb;
    ck_assert_int_eq(h_chat_start_conf(&a, ca), 0);
    ck_assert_int_eq(h_chat_start_conf(&b, cb), 0);
    ck_assert_int_eq(h_chat_wait_port(&a, 5000), 0);
    ck_assert_int_eq(h_chat_wait_port(&b, 5000), 0);
    snprintf(text, sizeof(text), "%s/a.log", dir);
    ck_assert(h_wait_log(text, "redis-chat-", 3000));
    ck_assert(h_wait_count(text, "connected (pid", 2, 5000));
    snprintf(text, sizeof(text), "%s/b.log", dir);
    ck_assert(h_wait_count(text, "connected (pid", 2, 5000));
    ck_assert_int_eq(http_status(pa, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
    ck_assert_int_eq(http_status(pb, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
    ck_assert(h_alive(a.pid) && h_alive(b.pid));
    h_chat_free(&a);
    h_chat_free(&b);
    h_rmrf(dir);
}
END_TEST

START_TEST(test_daemonize_pidfile)
{
    char dir[256], conf[320], pidfile[320], logf[320], text[1024], out[4096], cmd[256];
    long long end;
    FILE *f;
    int pid = 0, port = h_free_port();

    ck_assert_int_eq(h_tmpdir(dir, sizeof(dir)), 0);
    snprintf(pidfile, sizeof(pidfile), "%s/rc.pid", dir);
    snprintf(logf, sizeof(logf), "%s/rc.log", dir);
    snprintf(conf, sizeof(conf), "%s/d.conf", dir);
    snprintf(text, sizeof(text),
             "port %d\nbind 127.0.0.1\nworkers 1\ndaemonize yes\npidfile %s\nlogfile %s\n"
             "broker-socket %s/b.sock\nredis-port 1\n",
             port, pidfile, logf, dir);
    write_file(conf, text);
    /* the foreground process returns at once; the daemon keeps running */
    ck_assert_int_eq(run_chat(out, sizeof(out), "-c", conf, NULL), 0);
    end = h_now_ms() + 3000;
    while (h_now_ms() < end && pid == 0) {
        f = fopen(pidfile, "r");
        if (f != NULL) {
            if (fscanf(f, "%d", &pid) != 1)
                pid = 0;
            fclose(f);
        }
        h_sleep_ms(20);
    }
    ck_assert_int_gt(pid, 0);
    ck_assert(h_alive(pid));
    ck_assert_int_gt(h_cmdline(pid, cmd, sizeof(cmd)), 0);
    ck_assert_str_eq(cmd, "redis-chat: master");
    ck_assert(wait_children(pid, 2, 3000));
    ck_assert(h_wait_log(logf, "accepting connections", 3000));
    ck_assert_int_eq(http_status(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    ck_assert_int_eq(h_wait_exit(pid, 10000, NULL), 1);
    ck_assert_msg(access(pidfile, F_OK) == -1, "pidfile left behind");
    ck_assert(h_file_contains(logf, "stopped"));
    h_rmrf(dir);
}
END_TEST

/* 1 when every line of path starts with a syslog priority "<N>" and none
 * carries a timestamp of ours ("2026-..T..Z"). */
static int all_lines_journal(const char *path)
{
    char line[2048];
    FILE *f = fopen(path, "r");
    int ok = f != NULL, lines = 0;

    while (ok && fgets(line, sizeof(line), f) != NULL) {
        lines++;
        ok = line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>' &&
             strstr(line, "Z info") == NULL && strstr(line, "Z warn") == NULL;
        if (!ok)
            fprintf(stderr, "not a journal line: %s", line);
    }
    if (f != NULL)
        fclose(f);
    return ok && lines > 0;
}

/* Run the binary with stderr on a terminal until its output holds needle;
 * what it wrote goes to out. 1 when seen. */
static int run_on_tty(const char *conf, const char *needle, char *out, size_t cap)
{
    const char *bin = getenv("REDIS_CHAT") ? getenv("REDIS_CHAT") : "./redis-chat";
    char *argv[] = { (char *)bin, (char *)"-c", (char *)conf, NULL };
    long long end = h_now_ms() + 5000;
    size_t len = 0;
    int ptm, pts, seen = 0;
    pid_t pid;

    ptm = posix_openpt(O_RDWR | O_NOCTTY);
    if (ptm == -1 || grantpt(ptm) == -1 || unlockpt(ptm) == -1)
        return 0;
    pts = open(ptsname(ptm), O_RDWR | O_NOCTTY);
    if (pts == -1)
        return 0;
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);

        dup2(null, 0);
        dup2(pts, 1);
        dup2(pts, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pts);
    while (pid > 0 && !seen && h_now_ms() < end) {
        struct pollfd p = { .fd = ptm, .events = POLLIN };
        ssize_t n;

        if (poll(&p, 1, 100) <= 0)
            continue;
        n = read(ptm, out + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        out[len] = '\0';
        seen = strstr(out, needle) != NULL || len == cap - 1;
    }
    if (pid > 0) {
        kill(pid, SIGTERM);
        h_wait_exit(pid, 10000, NULL);
    }
    close(ptm);
    return seen && strstr(out, needle) != NULL;
}

/* Under systemd, stderr is the journal: no log file and stderr not a
 * terminal gives "<N>" priorities and no timestamps; a terminal or a log
 * file keeps the timestamped lines. */
START_TEST(test_journal_log_format)
{
    char errlog[320], conf[320], text[1024], tty[8192];
    struct h_chat c;

    /* stderr a file, no logfile: the journal format; warn is <4>, info <6>,
     * debug <7> (the harness sets log-level debug) */
    ck_assert_int_eq(h_chat_start(&c, NULL, 1, "logfile \"\"\nredis-port 1\n"), 0);
    snprintf(errlog, sizeof(errlog), "%s/stderr.log", c.dir);
    ck_assert(h_wait_log(errlog, "<4>warn broker pid=", 5000));
    ck_assert(h_wait_log(errlog, "<6>info worker[0] pid=", 5000));
    ck_assert(h_wait_log(errlog, "cannot connect to 127.0.0.1:1", 5000));
    ck_assert(h_wait_log(errlog, "<7>debug ", 5000));
    ck_assert_int_eq(h_chat_stop(&c), 0);
    ck_assert(all_lines_journal(errlog));

    snprintf(conf, sizeof(conf), "%s", c.conf);
    snprintf(text, sizeof(text), "port 0\nbind 127.0.0.1\nworkers 1\nbroker-socket %s/tty.sock\n"
             "redis-port 1\nlog-level debug\n", c.dir);
    write_file(conf, text);
    /* stderr a terminal: timestamps, no priorities */
    ck_assert(run_on_tty(conf, "accepting connections", tty, sizeof(tty)));
    ck_assert_msg(strstr(tty, "Z info worker[0] pid=") != NULL, "%s", tty);
    ck_assert_msg(strstr(tty, "<6>") == NULL, "%s", tty);
    h_chat_free(&c);

    /* a log file: timestamps in the file and on stderr, as before */
    ck_assert_int_eq(h_chat_start(&c, NULL, 1, "redis-port 1\n"), 0);
    snprintf(errlog, sizeof(errlog), "%s/stderr.log", c.dir);
    ck_assert(h_wait_log(c.log, "Z info worker[0] pid=", 5000));
    ck_assert(h_wait_log(errlog, "Z info worker[0] pid=", 5000));
    ck_assert(!h_file_contains(errlog, "<6>"));
    h_chat_free(&c);
}
END_TEST

static Suite *process_suite(void)
{
    Suite *s = suite_create("process");
    TCase *tc = tcase_create("process");

    tcase_add_unchecked_fixture(tc, redis_setup, redis_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_process_tree);
    tcase_add_test(tc, test_worker_respawn);
    tcase_add_test(tc, test_broker_respawn);
    tcase_add_test(tc, test_sighup_changes_workers);
    tcase_add_test(tc, test_sigterm_stops_all);
    tcase_add_test(tc, test_bad_config);
    tcase_add_test(tc, test_port_taken);
    tcase_add_test(tc, test_two_instances);
    tcase_add_test(tc, test_daemonize_pidfile);
    tcase_add_test(tc, test_journal_log_format);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(process_suite());
}
