/* harness.h -- process, file and port helpers for the redis-chat integration tests.
 *
 * Everything here is bounded in time and addresses processes by pid (never by
 * name). Helpers print a one-line reason to stderr when they fail, so a test
 * can simply ck_assert_int_eq(h_xxx(...), 0).
 *
 * Environment:
 *   SRCDIR      top source directory, to find tests/redis-tls.sh (default ".")
 *   REDIS_CHAT  the redis-chat binary (default "./redis-chat")
 *   REDIS_CLI   the redis-cli binary (default "redis-cli", looked up in PATH)
 *   REDIS_SERVER is read by tests/redis-tls.sh (default "redis-server")
 *   TMPDIR      where temp dirs go (default "/tmp")
 *
 * Process ownership: a server is a child of the process that started it, with
 * all file descriptors above 2 closed (so a test's client sockets never leak
 * into it) and default signal handling. h_redis_start/h_chat_start record the
 * calling process as the owner. Started by its owner, a server gets
 * PR_SET_PDEATHSIG (SIGKILL for redis, SIGTERM for redis-chat) and dies if the
 * owner dies. With check's default CK_FORK=yes, servers started in an unchecked
 * fixture belong to the runner, and a test body (a forked child) can neither
 * waitpid() them nor keep what it starts: check kills the test's process group
 * when the test ends. The stop helpers then fall back to polling /proc. A
 * redis-server (re)started by a non-owner joins the owner's process group
 * instead (it outlives the test body, no death signal) and h_redis_stop finds
 * it again through dir/redis.pid. A redis-chat started or restarted by a test
 * body always belongs to that test body and ends with it (CK_FORK=yes).
 */
#ifndef RC_TESTS_HARNESS_H
#define RC_TESTS_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#define H_START_TIMEOUT_MS 10000 /* servers must be ready within this */
#define H_STOP_TIMEOUT_MS 10000  /* redis-chat: SIGTERM, then SIGKILL past this */
#define H_REDIS_STOP_MS 5000     /* redis-server: SIGTERM, then SIGKILL past this */
#define H_CLI_TIMEOUT_MS 10000   /* one redis-cli run */

/* Monotonic clock in milliseconds; sleep that resumes after EINTR. */
long long h_now_ms(void);
void h_sleep_ms(int ms);

/* A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, read it,
 * close). Returns the port or -1. */
int h_free_port(void);

/* Create a fresh directory "$TMPDIR/rchat.XXXXXX" (TMPDIR defaults to /tmp)
 * and write its path into out. Returns 0 or -1. */
int h_tmpdir(char *out, size_t cap);

/* Remove dir and everything below it (no symlink following). Refuses "", "/". */
void h_rmrf(const char *dir);

/* ---- redis-server ---------------------------------------------------- */

struct h_redis {
    pid_t pid;         /* redis-server (exec'd by tests/redis-tls.sh), 0 when stopped */
    int port;          /* tls-port, or port when tls == 0 */
    int tls;           /* 1: TLS only; 0: plain TCP */
    int aof;           /* 1: AOF persistence on (h_redis_start_aof) */
    int sentinel;      /* 1: a sentinel (h_redis_start_conf) */
    int extra;         /* 1: dir/extra.conf is added to its config */
    char dir[256];     /* temp dir: redis.conf, redis.log, redis.pid, stderr.log, tls/ */
    char password[64]; /* requirepass; "" = none */
    char ca[320];      /* dir/tls/ca.crt when tls, else "" */
    pid_t owner;       /* process that first started it (see the top of this file) */
};

/* Start redis-server in a new temp dir on a free port: fork + exec
 * `$SRCDIR/tests/redis-tls.sh DIR PORT PASSWORD --foreground` (with
 * REDIS_TLS=no when tls == 0), then wait up to H_START_TIMEOUT_MS until it
 * answers PING. password may be NULL or "" (no requirepass). Returns 0, or -1
 * (the server stopped, the dir removed, its log shown on stderr). */
int h_redis_start(struct h_redis *r, int tls, const char *password);

/* h_redis_start with AOF persistence on (REDIS_APPENDONLY=yes for
 * tests/redis-tls.sh: `appendonly yes`, the AOF files below r->dir), so that
 * h_redis_restart_keep brings the data set back. */
int h_redis_start_aof(struct h_redis *r, int tls, const char *password);

/* h_redis_start with the lines of extra added to the config (replicaof,
 * sentinel monitor, ...; NULL for none), as a sentinel when sentinel is set
 * (password is then the sentinel's own requirepass), and, when ca_from is
 * a TLS server, with a certificate from ca_from's CA (one redis-tls-ca-cert
 * then verifies them all). Returns 0 or -1 as h_redis_start. */
int h_redis_start_conf(struct h_redis *r, int tls, const char *password, const char *extra,
                       int sentinel, const struct h_redis *ca_from);

/* Stop the server (h_redis_stop) and start it again on the same port and dir
 * (same certificates, empty data set: the AOF files of an h_redis_start_aof
 * server are removed first). Returns 0 or -1. */
int h_redis_restart(struct h_redis *r);

/* Stop the server (SIGTERM: Redis writes and syncs its AOF as it shuts down)
 * and start it again on the same port and dir with AOF on, keeping the data
 * set: it loads its AOF. Only for an h_redis_start_aof server (else -1 and a
 * message: without persistence the data would be lost). Returns 0 or -1. */
int h_redis_restart_keep(struct h_redis *r);

/* SIGTERM, wait, SIGKILL after H_REDIS_STOP_MS. Also stops the process named
 * in dir/redis.pid when that one is alive and runs in dir (a server restarted
 * by another process). Safe to call when already stopped. */
void h_redis_stop(struct h_redis *r);

/* h_redis_stop, then remove the dir. */
void h_redis_free(struct h_redis *r);

/* Run `redis-cli -h 127.0.0.1 -p PORT [--tls --cacert CA] [-a PW
 * --no-auth-warning] WORDS...` where WORDS is the formatted command split on
 * spaces (so no argument can contain a space; at most 60 words). stdout goes
 * into out (NUL-terminated, truncated to cap - 1; out may be NULL), stderr to
 * ours. Returns the exit status (see h_run). redis-cli exits 0 on an error
 * reply too: check out ("ERR ...", "WRONGTYPE ..."). Output is redis-cli's raw
 * mode: one line per element, "\n" alone for an empty set. */
int h_redis_cli(const struct h_redis *r, char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* h_redis_cli with the words given one by one (NULL-terminated), each one
 * argument as it is: spaces allowed ("PUBLISH", "chat", "x: y"). */
int h_redis_cliv(const struct h_redis *r, char *out, size_t cap, char *const words[]);

/* Start redis-cli against r with these words (as h_redis_cliv) in the
 * background, stdout and stderr appended to out_path: for SUBSCRIBE. The
 * caller's child (SIGKILL when the caller dies); stop it with kill() and
 * h_wait_exit(). Returns its pid or -1. */
pid_t h_redis_cli_bg(const struct h_redis *r, const char *out_path, char *const words[]);

/* ---- redis-chat ------------------------------------------------------ */

struct h_chat {
    pid_t pid;      /* the master, 0 when stopped */
    int port;       /* the WebSocket port */
    char dir[256];  /* temp dir */
    char conf[320]; /* config file used */
    char log[320];  /* dir/redis-chat.log (the logfile directive) */
    char sock[320]; /* dir/broker.sock */
    pid_t owner;    /* process that first started it */
};

/* Write dir/redis-chat.conf and start `$REDIS_CHAT -c conf` in a new temp
 * dir, stdout and stderr to dir/stderr.log, then wait up to
 * H_START_TIMEOUT_MS for the port to listen (h_chat_wait_port). The config:
 *
 *   port N / bind 127.0.0.1 / workers W (omitted when W <= 0) /
 *   broker-socket DIR/broker.sock / logfile DIR/redis-chat.log /
 *   log-level debug / redis-host 127.0.0.1 / redis-port / redis-password
 *   (when set) / redis-tls yes|no / redis-tls-ca-cert / redis-tls-server-name
 *   localhost (the last two with TLS only)
 *
 * (no redis-* lines when r is NULL), then extra_conf verbatim (may be NULL).
 * A directive that extra_conf sets is left out of the generated part, so
 * extra_conf can override any of them; an overridden `port` is read back into
 * c->port (when it is 0 nothing is waited for). Returns 0, or -1 (process
 * stopped, stderr.log shown; the dir is kept for h_chat_free). */
int h_chat_start(struct h_chat *c, const struct h_redis *r, int workers, const char *extra_conf);

/* Start `$REDIS_CHAT -c conf_path` without waiting. Uses c->dir when it is
 * non-empty (else makes a temp dir) for stderr.log; c->port and c->log are
 * kept as the caller set them (0 / "" when c was zeroed). Returns 0 or -1. */
int h_chat_start_conf(struct h_chat *c, const char *conf_path);

/* Wait up to timeout_ms until something listens on 127.0.0.1:c->port (read
 * from /proc/net/tcp, so no connection is made and none shows in the server's
 * logs). Fails early when c->pid has exited. Returns 0 or -1. */
int h_chat_wait_port(const struct h_chat *c, int timeout_ms);

/* SIGTERM the master, wait up to H_STOP_TIMEOUT_MS, then SIGKILL it and its
 * remaining children. Returns the wait status (as from waitpid), or -1 when
 * not running / not our child (exit observed through /proc only). */
int h_chat_stop(struct h_chat *c);

/* h_chat_stop (if running), then remove the dir. */
void h_chat_free(struct h_chat *c);

/* ---- processes ------------------------------------------------------- */

/* Wait up to timeout_ms for pid to exit. For our child, reaps it and stores
 * the waitpid status in *status (may be NULL); for another process, polls
 * /proc until it is gone or a zombie and stores -1. Returns 1 exited,
 * 0 still running, -1 error. */
int h_wait_exit(pid_t pid, int timeout_ms, int *status);

/* Live (non-zombie) children of parent, from /proc/<pid>/stat. Stores up to
 * max pids in out; returns how many there are in all (may exceed max), or -1. */
int h_children(pid_t parent, pid_t *out, int max);

/* /proc/pid/cmdline with the NULs turned into spaces (trailing one dropped),
 * NUL-terminated, truncated to cap - 1. Returns the length or -1. */
int h_cmdline(pid_t pid, char *out, size_t cap);

/* 1 when pid exists and is not a zombie, else 0. */
int h_alive(pid_t pid);

/* fork + execvp(argv[0], argv) with stdin from /dev/null and stdout+stderr
 * captured into out (NUL-terminated, truncated to cap - 1; out may be NULL).
 * Returns the exit code, 128 + N when killed by signal N, or -1 when it could
 * not start or ran longer than timeout_ms (then it is killed). */
int h_run(char *out, size_t cap, int timeout_ms, char *const argv[]);

/* ---- files ----------------------------------------------------------- */

/* Poll path (every 20 ms) until it contains needle. Returns 1 found, 0 not
 * within timeout_ms (a missing file counts as empty). */
int h_wait_log(const char *path, const char *needle, int timeout_ms);

/* 1 when path contains needle, 0 when not or unreadable. */
int h_file_contains(const char *path, const char *needle);

/* Non-overlapping occurrences of needle in path (0 when unreadable). */
int h_count_in_file(const char *path, const char *needle);

/* Poll until path holds at least n occurrences of needle: 1, or 0 on timeout. */
int h_wait_count(const char *path, const char *needle, int n, int timeout_ms);

/* ---- children by title, processes gone (harness_wait.c) ------------------ */

/* The child of parent whose /proc cmdline is exactly title
 * ("redis-chat: worker 1"), or 0. */
pid_t h_child_titled(pid_t parent, const char *title);

/* Wait for a child titled `title` that is not `old`; its pid, or 0. */
pid_t h_wait_new_child(pid_t parent, const char *title, pid_t old, int timeout_ms);

/* Wait until pid has exited: gone, or a zombie not reaped yet (h_alive is
 * 0). For processes that are not ours to reap. Returns 1, or 0 on timeout. */
int h_wait_gone(pid_t pid, int timeout_ms);

/* Print the last `lines` lines of path to stderr under a header (diagnostics). */
void h_dump_tail(const char *path, int lines);

#endif
