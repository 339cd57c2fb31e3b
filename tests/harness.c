/* harness.c -- start, watch and stop the real servers the integration tests talk to.
 *
 * redis-server runs through tests/redis-tls.sh (certificates, config) and
 * redis-chat from $REDIS_CHAT, each in its own temp dir, as children of the
 * calling process so that their pids are ours to signal and reap. Nothing is
 * looked up or killed by name; inspection goes through /proc. Every wait has
 * a deadline. See harness.h for the contract of each helper.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define H_FILE_MAX (64L << 20) /* biggest file h_read_file loads */
#define H_UNIX_PATH_MAX 108    /* sizeof(sockaddr_un.sun_path) */
#define H_KIDS_MAX 300
#define H_CLI_WORDS_MAX 60

enum h_stderr_mode { H_ERR_INHERIT = 0, H_ERR_CAPTURE };

/* execvp's argv is char *const[] for historical reasons; it does not write. */
#define h_unconst(s) ((char *)(uintptr_t)(const char *)(s))

long long h_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

int h_free_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t salen = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd == -1 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
        getsockname(fd, (struct sockaddr *)&sa, &salen) == -1)
        perror("h_free_port");
    else
        port = ntohs(sa.sin_port);
    if (fd != -1)
        close(fd);
    return port;
}

int h_tmpdir(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    char tmpl[PATH_MAX];
    int n;

    if (base == NULL || *base == '\0')
        base = "/tmp";
    n = snprintf(tmpl, sizeof(tmpl), "%s/rchat.XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof(tmpl) || (size_t)n >= cap || mkdtemp(tmpl) == NULL) {
        fprintf(stderr, "h_tmpdir: %s: %s\n", tmpl, n >= 0 ? strerror(errno) : "?");
        return -1;
    }
    memcpy(out, tmpl, (size_t)n + 1);
    return 0;
}

static int h_rmrf_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    if (remove(path) == -1 && errno != ENOENT)
        fprintf(stderr, "h_rmrf: %s: %s\n", path, strerror(errno));
    return 0;
}

void h_rmrf(const char *dir)
{
    if (dir != NULL && dir[0] != '\0' && strcmp(dir, "/") != 0)
        nftw(dir, h_rmrf_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- files ----------------------------------------------------------- */

/* Whole file, NUL-terminated, malloc'ed (caller frees); NULL when unreadable. */
static char *h_read_file(const char *path, size_t *lenp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st = { 0 };
    size_t len = 0;
    ssize_t n = 1;
    char *buf = NULL;

    if (fd != -1 && fstat(fd, &st) == 0 && st.st_size < H_FILE_MAX)
        buf = malloc((size_t)st.st_size + 1);
    while (buf != NULL && len < (size_t)st.st_size && n > 0)
        if ((n = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
            len += (size_t)n;
    if (fd != -1)
        close(fd);
    if (buf != NULL)
        buf[len] = '\0';
    if (lenp != NULL)
        *lenp = len;
    return buf;
}

int h_count_in_file(const char *path, const char *needle)
{
    size_t len, nlen = strlen(needle);
    char *buf = h_read_file(path, &len);
    const char *p = buf;
    int count = 0;

    while (p != NULL && nlen > 0 && (p = memmem(p, len - (size_t)(p - buf), needle, nlen))) {
        count++;
        p += nlen;
    }
    free(buf);
    return count;
}

int h_file_contains(const char *path, const char *needle)
{
    return h_count_in_file(path, needle) > 0;
}

int h_wait_log(const char *path, const char *needle, int timeout_ms)
{
    long long deadline = h_now_ms() + timeout_ms;

    while (!h_file_contains(path, needle)) {
        if (h_now_ms() >= deadline)
            return 0;
        h_sleep_ms(20);
    }
    return 1;
}

void h_dump_tail(const char *path, int lines)
{
    size_t len, i;
    char *buf = h_read_file(path, &len);
    int seen = 0;

    for (i = len > 0 && buf != NULL && buf[len - 1] == '\n' ? len - 1 : len; i > 0; i--)
        if (buf[i - 1] == '\n' && ++seen == lines)
            break;
    fprintf(stderr, "---- end of %s:\n%s%s----\n", path, buf != NULL ? buf + i : "(unreadable)",
            buf == NULL || (len > 0 && buf[len - 1] != '\n') ? "\n" : "");
    free(buf);
}

/* ---- /proc ----------------------------------------------------------- */

/* State letter and ppid of pid from /proc/pid/stat; -1 when gone. */
static int h_stat(pid_t pid, char *state, pid_t *ppid)
{
    char path[64], buf[512] = "";
    const char *p;
    int fd, pp;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -1;
    if (read(fd, buf, sizeof(buf) - 1) < 0)
        buf[0] = '\0';
    close(fd);
    /* comm may hold spaces and parentheses: fields resume after the last ')' */
    p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 1, " %c %d", state, &pp) != 2)
        return -1;
    if (ppid != NULL)
        *ppid = (pid_t)pp;
    return 0;
}

int h_alive(pid_t pid)
{
    char st;

    if (pid <= 0 || h_stat(pid, &st, NULL) == -1)
        return 0;
    return st != 'Z' && st != 'X' && st != 'x';
}

int h_children(pid_t parent, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int count = 0;

    if (d == NULL) {
        perror("h_children: /proc");
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        char *end, st;
        long v = strtol(de->d_name, &end, 10);
        pid_t ppid;

        if (*end != '\0' || v <= 0 || h_stat((pid_t)v, &st, &ppid) == -1 || ppid != parent ||
            st == 'Z' || st == 'X')
            continue;
        if (count < max)
            out[count] = (pid_t)v;
        count++;
    }
    closedir(d);
    return count;
}

int h_cmdline(pid_t pid, char *out, size_t cap)
{
    char path[64];
    ssize_t n = -1, i;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    fd = cap > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd == -1)
        return -1;
    n = read(fd, out, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    for (i = 0; i < n; i++)
        if (out[i] == '\0')
            out[i] = ' ';
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    return (int)n;
}

/* ---- processes ------------------------------------------------------- */

/* 1 when pid has exited (our child: checked without reaping it), else 0. */
static int h_exited(pid_t pid)
{
    siginfo_t si = { 0 };

    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0)
        return si.si_pid == pid;
    return !h_alive(pid);
}

int h_wait_exit(pid_t pid, int timeout_ms, int *status)
{
    long long deadline = h_now_ms() + timeout_ms;
    int st = -1;

    if (pid <= 0)
        return -1;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);

        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1 && errno != ECHILD) {
            perror("h_wait_exit: waitpid");
            return -1;
        }
        /* not our child (e.g. started by the check runner): watch /proc */
        if (w == pid || (w == -1 && !h_alive(pid))) {
            if (status != NULL)
                *status = w == pid ? st : -1;
            return 1;
        }
        if (h_now_ms() >= deadline)
            return 0;
        h_sleep_ms(10);
    }
}

/* In the child after fork(): default signal dispositions and mask, stdin from
 * /dev/null, stdout (and stderr when captured) to out_fd, no other fds open.
 * Never returns. */
static void h_child_exec(char *const argv[], int out_fd, enum h_stderr_mode err_mode, int pdeathsig,
                         pid_t parent)
{
    static const int sigs[] = { SIGPIPE, SIGTERM, SIGINT,  SIGHUP, SIGQUIT,
                                SIGCHLD, SIGALRM, SIGUSR1, SIGUSR2 };
    sigset_t none;
    size_t i;
    int fd;

    if (pdeathsig != 0 && (prctl(PR_SET_PDEATHSIG, pdeathsig) == -1 || getppid() != parent))
        _exit(127);
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    fd = open("/dev/null", O_RDONLY);
    if (fd != -1 && fd != 0) {
        dup2(fd, 0);
        close(fd);
    }
    dup2(out_fd, 1);
    if (err_mode == H_ERR_CAPTURE)
        dup2(out_fd, 2);
    /* the test's own sockets must not stay open in a server: a client's
     * close() would go unnoticed */
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == -1)
        for (fd = 3; fd < 65536; fd++)
            close(fd);
    execvp(argv[0], argv);
    fprintf(stderr, "harness: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Start argv with stdout+stderr appended to out_path. Started by its owner, it
 * gets deathsig should the owner die; started by another process (a check test
 * body), it joins the owner's process group instead, which check does not kill
 * at the end of the test. Returns the pid or -1. */
static pid_t h_spawn(char *const argv[], const char *out_path, pid_t owner, int deathsig)
{
    pid_t parent = getpid(), pgid = owner == parent ? 0 : getpgid(owner), pid;
    int fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

    if (fd == -1) {
        fprintf(stderr, "harness: %s: %s\n", out_path, strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0 && pgid > 0)
        setpgid(0, pgid);
    if (pid == 0)
        h_child_exec(argv, fd, H_ERR_CAPTURE, owner == parent ? deathsig : 0, parent);
    if (pid > 0 && pgid > 0)
        setpgid(pid, pgid); /* either may run first */
    close(fd);
    if (pid == -1)
        perror("harness: fork");
    return pid;
}

static int h_run_ex(char *out, size_t cap, int timeout_ms, char *const argv[],
                    enum h_stderr_mode err_mode)
{
    long long deadline = h_now_ms() + timeout_ms, exited_at = -1, now;
    size_t len = 0;
    int p[2], st = 0;
    pid_t pid;

    if (out != NULL && cap > 0)
        out[0] = '\0';
    if (pipe2(p, O_CLOEXEC) == -1) {
        perror("h_run: pipe");
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0)
        h_child_exec(argv, p[1], err_mode, 0, 0);
    close(p[1]);
    /* read until EOF; a daemonized grandchild may keep the pipe open, so stop
     * 200 ms after the child itself exited */
    while (pid != -1 && (now = h_now_ms()) < deadline) {
        struct pollfd pfd = { p[0], POLLIN, 0 };
        char tmp[4096];
        ssize_t n;

        if (exited_at < 0 && waitpid(pid, &st, WNOHANG) == pid)
            exited_at = now;
        if (exited_at >= 0 && now - exited_at > 200)
            break;
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        n = read(p[0], tmp, sizeof(tmp));
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (out != NULL && cap > 1 && len < cap - 1) {
            size_t take = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;

            memcpy(out + len, tmp, take);
            len += take;
            out[len] = '\0';
        }
    }
    close(p[0]);
    if (pid == -1) {
        perror("h_run: fork");
        return -1;
    }
    if (exited_at < 0 && h_wait_exit(pid, (int)(deadline - h_now_ms()), &st) != 1) {
        fprintf(stderr, "h_run: %s: still running after %d ms: killed\n", argv[0], timeout_ms);
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

int h_run(char *out, size_t cap, int timeout_ms, char *const argv[])
{
    return h_run_ex(out, cap, timeout_ms, argv, H_ERR_CAPTURE);
}

/* Send sig, then SIGKILL past timeout_ms. Returns the waitpid status, or -1
 * when pid is not our child or would not go away. */
static int h_terminate(pid_t pid, int sig, int timeout_ms, const char *what)
{
    int st = -1;

    kill(pid, sig);
    if (h_wait_exit(pid, timeout_ms, &st) == 1)
        return st;
    fprintf(stderr, "harness: %s pid %d still running %d ms after signal %d: SIGKILL\n", what,
            (int)pid, timeout_ms, sig);
    kill(pid, SIGKILL);
    return h_wait_exit(pid, 5000, &st) == 1 ? st : -1;
}

/* ---- redis-server ---------------------------------------------------- */

/* argv of redis-cli against r with the given extra words (port: 16 bytes
 * for the port's text; argv: H_CLI_WORDS_MAX + 16 slots). */
static void h_redis_cli_argv(const struct h_redis *r, char **argv, char *port, char *const *words,
                             int nwords)
{
    const char *cli = getenv("REDIS_CLI");
    int n = 0, i;

    snprintf(port, 16, "%d", r->port);
    argv[n++] = h_unconst(cli != NULL && *cli != '\0' ? cli : "redis-cli");
    argv[n++] = h_unconst("-h");
    argv[n++] = h_unconst("127.0.0.1");
    argv[n++] = h_unconst("-p");
    argv[n++] = port;
    if (r->tls) {
        argv[n++] = h_unconst("--tls");
        argv[n++] = h_unconst("--cacert");
        argv[n++] = h_unconst(r->ca);
    }
    if (r->password[0] != '\0') {
        argv[n++] = h_unconst("-a");
        argv[n++] = h_unconst(r->password);
        argv[n++] = h_unconst("--no-auth-warning");
    }
    for (i = 0; i < nwords && i < H_CLI_WORDS_MAX; i++)
        argv[n++] = words[i];
    argv[n] = NULL;
}

/* Run redis-cli against r with the given extra words. */
static int h_redis_cli_words(const struct h_redis *r, char *out, size_t cap, int timeout_ms,
                             enum h_stderr_mode err_mode, char *const *words, int nwords)
{
    char *argv[H_CLI_WORDS_MAX + 16], port[16];

    h_redis_cli_argv(r, argv, port, words, nwords);
    return h_run_ex(out, cap, timeout_ms, argv, err_mode);
}

/* The number of words up to the NULL, or -1 past H_CLI_WORDS_MAX. */
static int h_words_count(char *const words[])
{
    int n = 0;

    while (words[n] != NULL)
        if (++n > H_CLI_WORDS_MAX) {
            fprintf(stderr, "harness: redis-cli: more than %d words\n", H_CLI_WORDS_MAX);
            return -1;
        }
    return n;
}

int h_redis_cliv(const struct h_redis *r, char *out, size_t cap, char *const words[])
{
    int n = h_words_count(words);

    if (n < 0)
        return -1;
    return h_redis_cli_words(r, out, cap, H_CLI_TIMEOUT_MS, H_ERR_INHERIT, words, n);
}

pid_t h_redis_cli_bg(const struct h_redis *r, const char *out_path, char *const words[])
{
    char *argv[H_CLI_WORDS_MAX + 16], port[16];
    int n = h_words_count(words);

    if (n < 0)
        return -1;
    h_redis_cli_argv(r, argv, port, words, n);
    return h_spawn(argv, out_path, getpid(), SIGKILL);
}

int h_redis_cli(const struct h_redis *r, char *out, size_t cap, const char *fmt, ...)
{
    char cmd[4096], *words[H_CLI_WORDS_MAX], *save = NULL, *w;
    int nwords = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    for (w = strtok_r(cmd, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
        if (nwords == H_CLI_WORDS_MAX) {
            fprintf(stderr, "h_redis_cli: more than %d words\n", H_CLI_WORDS_MAX);
            return -1;
        }
        words[nwords++] = w;
    }
    return h_redis_cli_words(r, out, cap, H_CLI_TIMEOUT_MS, H_ERR_INHERIT, words, nwords);
}

static void h_dump_dir_file(const char *dir, const char *name, int lines)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    h_dump_tail(path, lines);
}

/* Fork tests/redis-tls.sh --foreground for r (dir, port, password already set)
 * and wait until it answers PING. On failure the server is stopped. */
static int h_redis_launch(struct h_redis *r)
{
    const char *srcdir = getenv("SRCDIR");
    char script[PATH_MAX], port[16], out[256] = "", errlog[320], *ping = h_unconst("PING");
    char extra[PATH_MAX + 32];
    char *argv[] = { h_unconst("env"), h_unconst(r->tls ? "REDIS_TLS=yes" : "REDIS_TLS=no"),
                     h_unconst(r->aof ? "REDIS_APPENDONLY=yes" : "REDIS_APPENDONLY=no"),
                     h_unconst(r->sentinel ? "REDIS_SENTINEL=yes" : "REDIS_SENTINEL=no"),
                     extra, h_unconst("bash"), script, r->dir, port, r->password,
                     h_unconst("--foreground"), NULL };
    long long deadline = h_now_ms() + H_START_TIMEOUT_MS;

    snprintf(script, sizeof(script), "%s/tests/redis-tls.sh",
             srcdir != NULL && *srcdir != '\0' ? srcdir : ".");
    if (access(script, R_OK) == -1) {
        fprintf(stderr, "h_redis_start: %s: %s (set SRCDIR)\n", script, strerror(errno));
        return -1;
    }
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(errlog, sizeof(errlog), "%s/stderr.log", r->dir);
    snprintf(extra, sizeof(extra), "REDIS_EXTRA_CONF=%s%s", r->extra ? r->dir : "",
             r->extra ? "/extra.conf" : "");
    r->pid = h_spawn(argv, errlog, r->owner, SIGKILL);
    if (r->pid == -1) {
        r->pid = 0;
        return -1;
    }
    while (h_now_ms() < deadline && !h_exited(r->pid)) {
        if (h_redis_cli_words(r, out, sizeof(out), 2000, H_ERR_CAPTURE, &ping, 1) == 0 &&
            strncmp(out, "PONG", 4) == 0)
            return 0;
        h_sleep_ms(50);
    }
    fprintf(stderr, "h_redis_start: redis-server on 127.0.0.1:%d %s (last answer: %.*s)\n", r->port,
            h_exited(r->pid) ? "exited" : "not answering PING", (int)strcspn(out, "\n"), out);
    h_dump_dir_file(r->dir, "stderr.log", 20);
    h_dump_dir_file(r->dir, "redis.log", 20);
    h_redis_stop(r);
    return -1;
}

/* dir/name with text in it. */
static int h_write_dir_file(const char *dir, const char *name, const char *text, size_t len)
{
    char path[PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "w")) == NULL || fwrite(text, 1, len, f) != len || fclose(f) == EOF) {
        fprintf(stderr, "harness: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The parts of h_redis_start that come before the launch; the start itself
 * is h_redis_start_finish. */
static int h_redis_prepare(struct h_redis *r, int tls, const char *password, int aof)
{
    memset(r, 0, sizeof(*r));
    r->owner = getpid();
    r->tls = tls ? 1 : 0;
    r->aof = aof ? 1 : 0;
    if (password != NULL && (strlen(password) >= sizeof(r->password) || strchr(password, ' '))) {
        fprintf(stderr, "h_redis_start: password too long or has a space\n");
        return -1;
    }
    snprintf(r->password, sizeof(r->password), "%s", password != NULL ? password : "");
    if (h_tmpdir(r->dir, sizeof(r->dir)) == -1)
        return -1;
    if (r->tls)
        snprintf(r->ca, sizeof(r->ca), "%s/tls/ca.crt", r->dir);
    return 0;
}

static int h_redis_start_finish(struct h_redis *r)
{
    r->port = h_free_port();
    if (r->port == -1 || h_redis_launch(r) == -1) {
        h_rmrf(r->dir);
        r->dir[0] = '\0';
        return -1;
    }
    return 0;
}

static int h_redis_start_ex(struct h_redis *r, int tls, const char *password, int aof)
{
    if (h_redis_prepare(r, tls, password, aof) == -1)
        return -1;
    return h_redis_start_finish(r);
}

int h_redis_start_conf(struct h_redis *r, int tls, const char *password, const char *extra,
                       int sentinel, const struct h_redis *ca_from)
{
    static const char *const ca_files[] = { "ca.crt", "ca.key" };
    char tlsdir[PATH_MAX], *text;
    size_t i, len;

    if (h_redis_prepare(r, tls, password, 0) == -1)
        return -1;
    r->sentinel = sentinel ? 1 : 0;
    if (extra != NULL) {
        r->extra = 1;
        if (h_write_dir_file(r->dir, "extra.conf", extra, strlen(extra)) == -1)
            goto fail;
    }
    if (tls && ca_from != NULL && ca_from->tls) {
        snprintf(tlsdir, sizeof(tlsdir), "%s/tls", r->dir);
        if (mkdir(tlsdir, 0700) == -1) {
            fprintf(stderr, "harness: mkdir %s: %s\n", tlsdir, strerror(errno));
            goto fail;
        }
        for (i = 0; i < sizeof(ca_files) / sizeof(ca_files[0]); i++) {
            char from[PATH_MAX];
            snprintf(from, sizeof(from), "%s/tls/%s", ca_from->dir, ca_files[i]);
            text = h_read_file(from, &len);
            if (text == NULL || h_write_dir_file(tlsdir, ca_files[i], text, len) == -1) {
                fprintf(stderr, "harness: cannot copy %s\n", from);
                free(text);
                goto fail;
            }
            free(text);
        }
    }
    return h_redis_start_finish(r);
fail:
    h_rmrf(r->dir);
    r->dir[0] = '\0';
    return -1;
}

int h_redis_start(struct h_redis *r, int tls, const char *password)
{
    return h_redis_start_ex(r, tls, password, 0);
}

int h_redis_start_aof(struct h_redis *r, int tls, const char *password)
{
    return h_redis_start_ex(r, tls, password, 1);
}

int h_redis_restart(struct h_redis *r)
{
    /* the AOF (a directory since Redis 7, a file before) and any RDB snapshot */
    static const char *const data[] = { "appendonlydir", "appendonly.aof", "dump.rdb" };
    char path[PATH_MAX];
    size_t i;

    h_redis_stop(r);
    for (i = 0; r->aof && i < sizeof(data) / sizeof(data[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", r->dir, data[i]);
        h_rmrf(path);
    }
    return h_redis_launch(r);
}

int h_redis_restart_keep(struct h_redis *r)
{
    if (!r->aof) {
        fprintf(stderr, "h_redis_restart_keep: the server on port %d has no persistence "
                        "(start it with h_redis_start_aof)\n", r->port);
        return -1;
    }
    h_redis_stop(r);
    return h_redis_launch(r);
}

void h_redis_stop(struct h_redis *r)
{
    char path[320], cwd[PATH_MAX] = "", real[PATH_MAX], *text;
    long other;

    if (r->pid > 0)
        h_terminate(r->pid, SIGTERM, H_REDIS_STOP_MS, "redis-server");
    r->pid = 0;
    /* A restart from a forked test body leaves the live server's pid only in
     * the pid file; it is ours when it runs in our dir (redis chdirs there). */
    snprintf(path, sizeof(path), "%s/redis.pid", r->dir);
    text = r->dir[0] != '\0' ? h_read_file(path, NULL) : NULL;
    other = text != NULL ? strtol(text, NULL, 10) : 0;
    free(text);
    snprintf(path, sizeof(path), "/proc/%ld/cwd", other);
    if (other > 0 && h_alive((pid_t)other) && realpath(r->dir, real) != NULL &&
        readlink(path, cwd, sizeof(cwd) - 1) > 0 && strcmp(cwd, real) == 0)
        h_terminate((pid_t)other, SIGTERM, H_REDIS_STOP_MS, "redis-server");
}

void h_redis_free(struct h_redis *r)
{
    h_redis_stop(r);
    h_rmrf(r->dir);
    r->dir[0] = '\0';
}

/* ---- redis-chat ------------------------------------------------------ */

/* The value after directive name when conf has a line setting it, else NULL. */
static const char *h_conf_find(const char *conf, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = conf;

    while (p != NULL && *p != '\0') {
        p += strspn(p, " \t");
        if (strncmp(p, name, nlen) == 0 && strchr(" \t\r\n", p[nlen]) != NULL)
            return p + nlen;
        if ((p = strchr(p, '\n')) != NULL)
            p++;
    }
    return NULL;
}

/* Write "name value" unless extra sets name; quote the value when needed. */
static void h_conf_put(FILE *f, const char *extra, const char *name, const char *value)
{
    const char *s;

    if (extra != NULL && h_conf_find(extra, name) != NULL)
        return;
    if (value[0] != '\0' && strpbrk(value, " \t\"'#\\") == NULL) {
        fprintf(f, "%s %s\n", name, value);
        return;
    }
    fprintf(f, "%s \"", name);
    for (s = value; *s != '\0'; s++)
        fprintf(f, *s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
    fputs("\"\n", f);
}

static int h_chat_write_conf(struct h_chat *c, const struct h_redis *r, int workers,
                             const char *extra)
{
    FILE *f = fopen(c->conf, "w");
    char num[16];

    if (f == NULL) {
        fprintf(stderr, "h_chat_start: %s: %s\n", c->conf, strerror(errno));
        return -1;
    }
    fputs("# generated by tests/harness.c\n", f);
    snprintf(num, sizeof(num), "%d", c->port);
    h_conf_put(f, extra, "port", num);
    h_conf_put(f, extra, "bind", "127.0.0.1");
    snprintf(num, sizeof(num), "%d", workers);
    if (workers > 0)
        h_conf_put(f, extra, "workers", num);
    h_conf_put(f, extra, "broker-socket", c->sock);
    h_conf_put(f, extra, "logfile", c->log);
    h_conf_put(f, extra, "log-level", "debug");
    if (r != NULL && (extra == NULL || h_conf_find(extra, "redis-sentinel") == NULL)) {
        h_conf_put(f, extra, "redis-host", "127.0.0.1");
        snprintf(num, sizeof(num), "%d", r->port);
        h_conf_put(f, extra, "redis-port", num);
    }
    if (r != NULL) {
        if (r->password[0] != '\0')
            h_conf_put(f, extra, "redis-password", r->password);
        h_conf_put(f, extra, "redis-tls", r->tls ? "yes" : "no");
        if (r->tls) {
            h_conf_put(f, extra, "redis-tls-ca-cert", r->ca);
            h_conf_put(f, extra, "redis-tls-server-name", "localhost");
        }
    }
    if (extra != NULL && extra[0] != '\0')
        fprintf(f, "%s%s", extra, extra[strlen(extra) - 1] != '\n' ? "\n" : "");
    if (fclose(f) == EOF) {
        fprintf(stderr, "h_chat_start: writing %s: %s\n", c->conf, strerror(errno));
        return -1;
    }
    return 0;
}

int h_chat_start(struct h_chat *c, const struct h_redis *r, int workers, const char *extra_conf)
{
    const char *v = extra_conf != NULL ? h_conf_find(extra_conf, "port") : NULL;

    memset(c, 0, sizeof(*c));
    c->owner = getpid();
    if (h_tmpdir(c->dir, sizeof(c->dir)) == -1)
        return -1;
    snprintf(c->conf, sizeof(c->conf), "%s/redis-chat.conf", c->dir);
    snprintf(c->log, sizeof(c->log), "%s/redis-chat.log", c->dir);
    if (snprintf(c->sock, sizeof(c->sock), "%s/broker.sock", c->dir) >= H_UNIX_PATH_MAX) {
        fprintf(stderr, "h_chat_start: %s: too long for a unix socket (TMPDIR)\n", c->sock);
        return -1;
    }
    c->port = v != NULL ? atoi(v + strspn(v, " \t\"'")) : h_free_port();
    if (c->port == -1 || h_chat_write_conf(c, r, workers, extra_conf) == -1 ||
        h_chat_start_conf(c, c->conf) == -1)
        return -1;
    if (c->port > 0 && h_chat_wait_port(c, H_START_TIMEOUT_MS) == -1) {
        h_dump_dir_file(c->dir, "stderr.log", 30);
        h_dump_tail(c->log, 30);
        h_chat_stop(c);
        return -1;
    }
    return 0;
}

int h_chat_start_conf(struct h_chat *c, const char *conf_path)
{
    const char *bin = getenv("REDIS_CHAT"), *vgdir = getenv("REDIS_CHAT_VALGRIND");
    char errlog[320], conf[PATH_MAX], vglog[PATH_MAX];
    char *argv[] = { NULL, h_unconst("-c"), conf, NULL };
    /* REDIS_CHAT_VALGRIND=DIR: every process under memcheck (the broker
     * and workers are forks: valgrind follows them), one log per pid in
     * DIR, empty unless something is wrong (tests/valgrind-integ.sh) */
    char *vgargv[] = { h_unconst("valgrind"), h_unconst("-q"), h_unconst("--leak-check=full"),
                       h_unconst("--show-leak-kinds=definite,indirect"),
                       h_unconst("--errors-for-leak-kinds=definite,indirect"), vglog,
                       NULL, h_unconst("-c"), conf, NULL };

    bin = bin != NULL && *bin != '\0' ? bin : "./redis-chat";
    argv[0] = h_unconst(bin);
    snprintf(conf, sizeof(conf), "%s", conf_path);
    if (c->conf != conf_path)
        snprintf(c->conf, sizeof(c->conf), "%s", conf_path);
    if (c->owner == 0)
        c->owner = getpid();
    if (c->dir[0] == '\0' && h_tmpdir(c->dir, sizeof(c->dir)) == -1)
        return -1;
    if (access(bin, X_OK) == -1) {
        fprintf(stderr, "h_chat_start: %s: %s (set REDIS_CHAT)\n", bin, strerror(errno));
        return -1;
    }
    snprintf(errlog, sizeof(errlog), "%s/stderr.log", c->dir);
    /* SIGTERM, not SIGKILL: should the test die, the master still stops its
     * children. Always ours, never the owner's: no pid file would find it. */
    if (vgdir != NULL && *vgdir != '\0') {
        snprintf(vglog, sizeof(vglog), "--log-file=%s/vg.%%p.log", vgdir);
        vgargv[6] = h_unconst(bin);
        c->pid = h_spawn(vgargv, errlog, getpid(), SIGTERM);
    } else {
        c->pid = h_spawn(argv, errlog, getpid(), SIGTERM);
    }
    if (c->pid == -1)
        c->pid = 0;
    return c->pid > 0 ? 0 : -1;
}

/* 1 when a socket listens on port (any address) per /proc/net/tcp{,6}. */
static int h_port_listening(int port)
{
    static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
    char line[512];
    int found = 0;
    size_t i;

    for (i = 0; i < 2 && !found; i++) {
        FILE *f = fopen(files[i], "r");
        unsigned lport, state;

        while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
            found =
                sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x", &lport, &state) == 2 &&
                (int)lport == port && state == 0x0A;
        if (f != NULL)
            fclose(f);
    }
    return found;
}

int h_chat_wait_port(const struct h_chat *c, int timeout_ms)
{
    long long deadline = h_now_ms() + timeout_ms;

    while (!h_port_listening(c->port)) {
        if (c->pid > 0 && h_exited(c->pid)) {
            fprintf(stderr, "h_chat_wait_port: redis-chat (pid %d) exited\n", (int)c->pid);
            return -1;
        }
        if (h_now_ms() >= deadline) {
            fprintf(stderr, "h_chat_wait_port: nothing listens on port %d after %d ms\n", c->port,
                    timeout_ms);
            return -1;
        }
        h_sleep_ms(20);
    }
    return 0;
}

int h_chat_stop(struct h_chat *c)
{
    pid_t kids[H_KIDS_MAX];
    long long deadline;
    int nkids, i, st;

    if (c->pid <= 0)
        return -1;
    /* remember the broker and the workers: they must not outlive the master */
    nkids = h_children(c->pid, kids, H_KIDS_MAX);
    st = h_terminate(c->pid, SIGTERM, H_STOP_TIMEOUT_MS, "redis-chat");
    deadline = h_now_ms() + 2000;
    for (i = 0; i < nkids && i < H_KIDS_MAX; i++) {
        while (h_alive(kids[i]) && h_now_ms() < deadline)
            h_sleep_ms(10);
        if (h_alive(kids[i])) {
            fprintf(stderr, "h_chat_stop: pid %d outlived the master: SIGKILL\n", (int)kids[i]);
            kill(kids[i], SIGKILL);
        }
    }
    c->pid = 0;
    return st;
}

void h_chat_free(struct h_chat *c)
{
    h_chat_stop(c); /* no-op when not running */
    h_rmrf(c->dir);
    c->dir[0] = '\0';
}
