/* master.c -- supervise one broker and N workers.
 *
 * The nginx model without an event loop: the master owns one SO_REUSEPORT
 * listening socket per worker slot (closing such a socket drops the
 * connections queued on it, so a respawned worker inherits the same one),
 * blocks its signals and takes them synchronously with sigtimedwait(), so
 * no work ever runs inside a signal handler. Children get a clean signal
 * state after fork and build their own event loops.
 */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include "broker.h"
#include "conn_count.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "privdrop.h"
#include "proctitle.h"
#include "service_notify.h"
#include "tls_server.h"
#include "util.h"
#include "worker.h"

#define MASTER_SLOTS_MAX 256
#define MASTER_QUICK_DEATH_MS 2000   /* died this soon after start: a start failure */
#define MASTER_GIVE_UP_AFTER 5       /* consecutive start failures of one process */
#define MASTER_BACKOFF_BASE_MS 100
#define MASTER_BACKOFF_MAX_MS 5000
#define MASTER_KILL_GRACE_MS 5000    /* after shutdown-timeout, before SIGKILL */
/* The broker's request to kill a worker: a queued real-time signal carrying
 * the worker's pid (real-time signals queue, so requests at once all count) */
#define MASTER_SIG_KILL_WORKER SIGRTMIN
/* The broker's news about Redis: 1 = usable (connected, every worker
 * there), 0 = lost. Queued too, so an up right after a down is not lost. */
#define MASTER_SIG_BROKER_STATE (SIGRTMIN + 1)

enum master_role { ROLE_BROKER = 0, ROLE_WORKER };

/* One supervised child slot. pid 0 = not running. */
struct master_proc {
    enum master_role role;
    int slot;
    pid_t pid;
    uint64_t started_ms;
    uint64_t respawn_at_ms; /* 0 = no respawn pending */
    int quick_deaths;       /* consecutive deaths soon after start */
    int row;                /* worker's row in the shared connection counts, -1 none */
    int ever_up;            /* survived its first MASTER_QUICK_DEATH_MS once */
    int killed_behind;      /* killed for max-worker-backlog: not a start failure */
};

/* A worker replaced by a reload, draining; its socket is closed when it
 * exits if no slot uses it any more. */
struct master_retired {
    pid_t pid;
    int close_fd, close_tls_fd; /* -1: still a slot's */
    int row;
};

static struct {
    struct cfg *cfg;
    const char *conf_path;
    int listen_fd[MASTER_SLOTS_MAX];
    int tls_fd[MASTER_SLOTS_MAX]; /* the wss:// listener beside it, -1 without tls-port */
    int nslots;
    int metrics_fd;        /* the /metrics listener every worker shares; -1 without */
    struct ccount *ccount; /* shared with the workers */
    struct metrics_shm *metrics; /* shared with every child */
    struct master_proc broker;
    struct master_proc workers[MASTER_SLOTS_MAX];
    struct master_retired retired[MASTER_SLOTS_MAX * 4];
    int nretired;
    int stopping;
    uint64_t kill_at_ms;
    int exit_code;
    pid_t pid;
    int redis_up;   /* the current broker said Redis is usable */
    int ready_sent; /* READY=1 went to systemd: the first start is done */
    char instance_id[33]; /* names this instance in Redis; kept across broker restarts */
} M;

int master_load_config(struct cfg *cfg, const char *conf_path, char *err, size_t errlen)
{
    struct priv_ids ids;

    cfg_init(cfg);
    if (conf_path != NULL && cfg_load_file(cfg, conf_path, err, errlen) == -1)
        return -1;
    if (cfg_apply_env(cfg, cfg_getenv, err, errlen) == -1)
        return -1;
    if (cfg_finalize(cfg, err, errlen) == -1)
        return -1;
    if (priv_lookup(cfg, &ids, err, errlen) == -1)
        return -1;
    /* a certificate that does not load fails here, not at the first handshake */
    if (cfg->tls_port != 0) {
        struct tls_server *t = tls_server_new(cfg, err, errlen);
        if (t == NULL)
            return -1;
        tls_server_free(t);
    }
    return 0;
}

static const char *master_role_name(const struct master_proc *p, char *buf, size_t cap)
{
    if (p->role == ROLE_BROKER)
        snprintf(buf, cap, "broker");
    else
        snprintf(buf, cap, "worker %d", p->slot);
    return buf;
}

/* Close a slot's listeners (-1: none). */
static void master_close_listeners(int fd, int tls_fd)
{
    if (fd != -1)
        close(fd);
    if (tls_fd != -1)
        close(tls_fd);
}

/* A child process is gone (or never started): give its row of the shared
 * connection counts back, and fold its counters into its slot's. row is a
 * worker's, or METRICS_BROKER. */
static void master_row_release(int row)
{
    metrics_row_fold(M.metrics, row);
    if (row != METRICS_BROKER)
        ccount_row_release(M.ccount, row);
}

/* The /metrics listener of cfg, or -1 when metrics-port is 0 (err set and
 * -2 on failure). SO_REUSEPORT, so that a reload moving it to another
 * address of the same port can open the new one before the old one goes. */
static int master_open_metrics(const struct cfg *cfg, char *err)
{
    int fd;

    if (cfg->metrics_port == 0)
        return -1;
    fd = net_tcp_listen(cfg->metrics_bind, cfg->metrics_port, err);
    return fd == -1 ? -2 : fd;
}

/* In the child, right after fork: a clean signal state, only our socket. */

static void master_child_setup(const struct master_proc *p)
{
    struct sigaction sa;
    sigset_t none;
    char title[64], name[32];
    int i;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    /* a reload's SIGHUP before the worker's handler is set is not a death */
    sigaction(SIGHUP, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
#if defined(HAVE_SYS_PRCTL_H) && defined(PR_SET_PDEATHSIG)
    /* the master died: stop too (getppid() re-check closes the fork race) */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
    if (getppid() != M.pid)
        _exit(RC_EXIT_RUNTIME);
    for (i = 0; i < M.nslots; i++)
        if (p->role != ROLE_WORKER || i != p->slot)
            master_close_listeners(M.listen_fd[i], M.tls_fd[i]);
    for (i = 0; i < M.nretired; i++)
        master_close_listeners(M.retired[i].close_fd, M.retired[i].close_tls_fd);
    if (p->role != ROLE_WORKER && M.metrics_fd != -1)
        close(M.metrics_fd);
    metrics_attach(M.metrics, p->role == ROLE_BROKER ? METRICS_BROKER : p->row);
    master_role_name(p, name, sizeof(name));
    snprintf(title, sizeof(title), "redis-chat: %s", name);
    proctitle_set(title);
    if (p->role == ROLE_BROKER)
        log_set_role("broker");
    else {
        snprintf(name, sizeof(name), "worker[%d]", p->slot);
        log_set_role(name);
    }
}

static int master_spawn(struct master_proc *p)
{
    char name[32];
    pid_t pid;

    if (p->role == ROLE_WORKER && (p->row = ccount_row_acquire(M.ccount)) == -1) {
        log_msg(LOG_ERROR, "too many worker processes at once; retrying");
        p->respawn_at_ms = util_now_ms() + MASTER_BACKOFF_MAX_MS;
        return -1;
    }
    metrics_row_bind(M.metrics, p->role == ROLE_BROKER ? METRICS_BROKER : p->row, p->slot);
    pid = fork();

    if (pid == -1) {
        log_errno(LOG_ERROR, errno, "fork %s", master_role_name(p, name, sizeof(name)));
        master_row_release(p->role == ROLE_BROKER ? METRICS_BROKER : p->row);
        p->respawn_at_ms = util_now_ms() + MASTER_BACKOFF_MAX_MS;
        return -1;
    }
    if (pid == 0) {
        int rc;

        master_child_setup(p);
        if (p->role == ROLE_BROKER)
            rc = broker_main(M.cfg, M.instance_id);
        else
            rc = worker_main(M.cfg, p->slot, M.listen_fd[p->slot], M.tls_fd[p->slot], M.ccount,
                             p->row, M.metrics_fd, M.metrics);
        log_close();
        exit(rc);
    }
    p->pid = pid;
    p->started_ms = util_now_ms();
    p->respawn_at_ms = 0;
    log_msg(LOG_INFO, "started %s, pid %d", master_role_name(p, name, sizeof(name)), (int)pid);
    return 0;
}

static void master_signal_all(int sig)
{
    int i;

    if (M.broker.pid > 0)
        kill(M.broker.pid, sig);
    for (i = 0; i < M.nslots; i++)
        if (M.workers[i].pid > 0)
            kill(M.workers[i].pid, sig);
    for (i = 0; i < M.nretired; i++)
        kill(M.retired[i].pid, sig);
}

static int master_children_left(void)
{
    int i, n = M.broker.pid > 0;

    for (i = 0; i < M.nslots; i++)
        n += M.workers[i].pid > 0;
    return n + M.nretired;
}

static void master_begin_stop(int sig, int code)
{
    if (M.stopping)
        return;
    M.stopping = 1;
    M.exit_code = code;
    M.kill_at_ms = util_now_ms() + (uint64_t)M.cfg->shutdown_timeout + MASTER_KILL_GRACE_MS;
    if (sig != 0)
        log_msg(LOG_INFO, "received %s, stopping", strsignal(sig));
    service_notify_stopping();
    master_signal_all(SIGTERM);
}

static void master_describe_status(int status, char *buf, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(buf, cap, "exited with code %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, cap, "status 0x%x", status);
}

/* A supervised child died: schedule its respawn, or give up when it keeps
 * dying right at start (bad config, socket in use): no fork storm. */
static void master_on_death(struct master_proc *p, int status)
{
    uint64_t now = util_now_ms(), lived = now - p->started_ms;
    char name[32], how[96];
    int fatal = WIFEXITED(status) && WEXITSTATUS(status) == RC_EXIT_FATAL;

    master_role_name(p, name, sizeof(name));
    master_describe_status(status, how, sizeof(how));
    p->pid = 0;
    /* its connections died with it; its counters live on in its slot's */
    master_row_release(p->role == ROLE_BROKER ? METRICS_BROKER : p->row);
    if (p->role == ROLE_BROKER) {
        M.redis_up = 0; /* the next broker tells again */
        if (!M.stopping)
            service_notify_status("%d worker(s), broker restarting", M.nslots);
    }
    if (M.stopping) {
        log_msg(LOG_INFO, "%s %s", name, how);
        return;
    }
    if (lived < MASTER_QUICK_DEATH_MS && !p->killed_behind)
        p->quick_deaths++;
    else
        p->quick_deaths = 0;
    p->killed_behind = 0;
    if (lived >= MASTER_QUICK_DEATH_MS)
        p->ever_up = 1;
    if ((fatal && !p->ever_up) || p->quick_deaths >= MASTER_GIVE_UP_AFTER) {
        log_msg(LOG_ERROR, "%s %s %d time(s) in a row right after start; giving up", name, how,
                p->quick_deaths);
        master_begin_stop(0, RC_EXIT_RUNTIME);
        return;
    }
    if (p->quick_deaths == 0) {
        p->respawn_at_ms = now;
    } else {
        uint64_t delay = MASTER_BACKOFF_BASE_MS << (p->quick_deaths - 1);
        p->respawn_at_ms = now + (delay > MASTER_BACKOFF_MAX_MS ? MASTER_BACKOFF_MAX_MS : delay);
    }
    log_msg(LOG_WARN, "%s %s; restarting it in %llu ms", name, how,
            (unsigned long long)(p->respawn_at_ms - now));
}

static void master_reap(void)
{
    int status, i;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == M.broker.pid) {
            master_on_death(&M.broker, status);
            continue;
        }
        for (i = 0; i < M.nslots; i++)
            if (pid == M.workers[i].pid)
                break;
        if (i < M.nslots) {
            master_on_death(&M.workers[i], status);
            continue;
        }
        for (i = 0; i < M.nretired; i++) {
            if (M.retired[i].pid != pid)
                continue;
            log_msg(LOG_INFO, "old worker pid %d finished", (int)pid);
            master_row_release(M.retired[i].row);
            master_close_listeners(M.retired[i].close_fd, M.retired[i].close_tls_fd);
            M.retired[i] = M.retired[--M.nretired];
            break;
        }
    }
}

static void master_respawn_due(void)
{
    uint64_t now = util_now_ms();
    int i;

    if (M.stopping)
        return;
    if (M.broker.pid == 0 && M.broker.respawn_at_ms != 0 && M.broker.respawn_at_ms <= now)
        master_spawn(&M.broker);
    for (i = 0; i < M.nslots; i++) {
        struct master_proc *w = &M.workers[i];
        if (w->pid == 0 && w->respawn_at_ms != 0 && w->respawn_at_ms <= now)
            master_spawn(w);
    }
}

/* Milliseconds until the master must wake up by itself. */
static long master_next_wakeup_ms(void)
{
    uint64_t now = util_now_ms(), next = now + 1000;
    int i;

    if (M.stopping)
        next = M.kill_at_ms < next ? M.kill_at_ms : next;
    if (M.broker.respawn_at_ms != 0 && M.broker.respawn_at_ms < next)
        next = M.broker.respawn_at_ms;
    for (i = 0; i < M.nslots; i++)
        if (M.workers[i].respawn_at_ms != 0 && M.workers[i].respawn_at_ms < next)
            next = M.workers[i].respawn_at_ms;
    return next <= now ? 0 : (long)(next - now);
}

int master_request_worker_kill(pid_t pid)
{
    union sigval v = {.sival_int = (int)pid};

    /* M is the master's, copied at fork: its pid is our parent's unless the
     * master died (then the parent is init, which must never get this) */
    if (getppid() != M.pid) {
        errno = ESRCH;
        return -1;
    }
    return sigqueue(M.pid, MASTER_SIG_KILL_WORKER, v);
}

/* What `systemctl status` shows once started. */
static void master_status_text(char *buf, size_t cap)
{
    snprintf(buf, cap, "%d worker(s), redis %s", M.nslots,
             M.redis_up ? "up" : "down: messages held, waiting for it");
}

static void master_notify_ready(void)
{
    char status[96];

    master_status_text(status, sizeof(status));
    service_notify_ready(status);
}

int master_report_redis_state(int up)
{
    union sigval v = {.sival_int = up};

    if (getppid() != M.pid) {
        errno = ESRCH;
        return -1;
    }
    return sigqueue(M.pid, MASTER_SIG_BROKER_STATE, v);
}

/* The broker's Redis came up or went away: the first up is when the
 * instance can serve chat, so that is the READY=1 for systemd. */
static void master_on_broker_state(const siginfo_t *si)
{
    char status[96];

    if (si->si_code != SI_QUEUE || si->si_pid != M.broker.pid || M.broker.pid <= 0)
        return; /* a broker that has been replaced, or not the broker at all */
    M.redis_up = si->si_value.sival_int != 0;
    if (M.stopping)
        return;
    if (M.redis_up && !M.ready_sent) {
        M.ready_sent = 1;
        log_msg(LOG_INFO, "ready: %d worker(s) listening, redis up", M.nslots);
        master_notify_ready();
        return;
    }
    master_status_text(status, sizeof(status));
    service_notify_status("%s", status);
}

/* Our current worker with this pid, or NULL. Only an unreaped child of ours
 * is looked up, so the pid cannot have been reused. */
static struct master_proc *master_worker_by_pid(pid_t pid)
{
    int i;

    for (i = 0; i < M.nslots; i++)
        if (M.workers[i].pid == pid)
            return &M.workers[i];
    return NULL;
}

/* 1 when pid is a worker of ours draining after a reload (not reaped yet). */
static int master_retired_pid(pid_t pid)
{
    int i;

    for (i = 0; i < M.nretired; i++)
        if (M.retired[i].pid == pid)
            return 1;
    return 0;
}

/* The broker dropped a worker that fell max-worker-backlog behind: it missed
 * messages, so it must not carry on as if nothing happened (once resumed it
 * would re-register its users with the broker, who already announced them as
 * left). Killed, it closes its users' connections; their clients reconnect
 * to the worker started in its place. */
static void master_on_kill_request(const siginfo_t *si)
{
    pid_t pid = (pid_t)si->si_value.sival_int;
    struct master_proc *w = pid > 0 ? master_worker_by_pid(pid) : NULL;
    char name[32];

    if (si->si_code != SI_QUEUE || pid <= 0 || (w == NULL && !master_retired_pid(pid))) {
        log_msg(LOG_INFO, "request from pid %d to kill pid %d ignored: not a running worker",
                (int)si->si_pid, (int)pid);
        return;
    }
    if (w != NULL) {
        w->killed_behind = 1;
        master_role_name(w, name, sizeof(name));
    } else {
        snprintf(name, sizeof(name), "draining worker");
    }
    log_msg(LOG_WARN, "killing %s (pid %d): it fell max-worker-backlog behind the broker", name,
            (int)pid);
    kill(pid, SIGKILL);
}

/* SO_REUSEPORT lets a second server of the same user bind our port too and
 * silently take half the connections: make sure the port is free first, with
 * a socket that does not share. */
static int master_port_free(const char *host, int port, char *err)
{
    int fd = net_tcp_listen_exclusive(host, port, err);

    if (fd == -1)
        return 0;
    close(fd);
    return 1;
}

/* Open the listeners of slots from..to-1: the plain port's and, with
 * tls-port, the wss:// port's (tfds[i] = -1 without). On failure none of
 * them stays open. */
static int master_open_listeners(const struct cfg *cfg, int *fds, int *tfds, int from, int to,
                                 char *err)
{
    int i, port = cfg->port;

    if (from == 0 && cfg->port != 0 && !master_port_free(cfg->bind, cfg->port, err))
        return -1;
    if (from == 0 && cfg->tls_port != 0 && !master_port_free(cfg->bind, cfg->tls_port, err))
        return -1;
    if (port == 0 && from > 0) /* port 0: the kernel picked one for slot 0 */
        port = net_local_port(fds[0]);
    for (i = from; i < to; i++) {
        fds[i] = net_tcp_listen(cfg->bind, port, err);
        if (port == 0 && fds[i] != -1)
            port = net_local_port(fds[i]);
        tfds[i] = -1;
        if (fds[i] != -1 && cfg->tls_port != 0 &&
            (tfds[i] = net_tcp_listen(cfg->bind, cfg->tls_port, err)) == -1) {
            close(fds[i]);
            fds[i] = -1;
        }
        if (fds[i] == -1) {
            while (--i >= from)
                master_close_listeners(fds[i], tfds[i]);
            return -1;
        }
    }
    return 0;
}

static void master_retire(pid_t pid, int close_fd, int close_tls_fd, int row)
{
    if (M.nretired == (int)ARRAY_SIZE(M.retired)) {
        /* too many reloads in flight: stop waiting politely for the oldest */
        kill(M.retired[0].pid, SIGKILL);
        master_row_release(M.retired[0].row);
        M.retired[0] = M.retired[--M.nretired];
    }
    M.retired[M.nretired].pid = pid;
    M.retired[M.nretired].close_fd = close_fd;
    M.retired[M.nretired].close_tls_fd = close_tls_fd;
    M.retired[M.nretired].row = row;
    M.nretired++;
    if (pid > 0)
        kill(pid, SIGQUIT); /* drain: its sessions go on until shutdown-timeout */
}

static int master_str_differs(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a != b;
    return strcmp(a, b) != 0;
}

/* Does the broker have to be restarted to apply `n`? */
static int master_broker_changed(const struct cfg *o, const struct cfg *n)
{
    return master_str_differs(o->broker_socket, n->broker_socket) ||
           master_str_differs(o->redis_host, n->redis_host) || o->redis_port != n->redis_port ||
           master_str_differs(o->redis_password, n->redis_password) ||
           o->redis_db != n->redis_db || o->redis_tls != n->redis_tls ||
           master_str_differs(o->redis_tls_ca_cert, n->redis_tls_ca_cert) ||
           master_str_differs(o->redis_tls_cert, n->redis_tls_cert) ||
           master_str_differs(o->redis_tls_key, n->redis_tls_key) ||
           master_str_differs(o->redis_tls_server_name, n->redis_tls_server_name) ||
           master_str_differs(o->redis_sentinel, n->redis_sentinel) ||
           master_str_differs(o->redis_sentinel_master, n->redis_sentinel_master) ||
           master_str_differs(o->redis_sentinel_password, n->redis_sentinel_password) ||
           o->redis_wait_replicas != n->redis_wait_replicas ||
           o->redis_cluster != n->redis_cluster ||
           master_str_differs(o->redis_cluster_nodes, n->redis_cluster_nodes) ||
           o->redis_wait_timeout != n->redis_wait_timeout ||
           master_str_differs(o->channel, n->channel) ||
           master_str_differs(o->users_key, n->users_key) ||
           o->max_message_size != n->max_message_size ||
           o->max_worker_backlog != n->max_worker_backlog;
}

/* SIGHUP: re-read the config; if valid, start new workers next to the old
 * ones on the same sockets, then retire the old ones, so a listener is up
 * at every moment. */
static void master_reload_apply(void)
{
    struct cfg *n = malloc(sizeof(*n)), *old = M.cfg;
    char err[CFG_ERR_LEN + NET_ERR_LEN];
    int fds[MASTER_SLOTS_MAX], tfds[MASTER_SLOTS_MAX];
    int i, old_slots = M.nslots, new_sockets;

    log_msg(LOG_INFO, "received SIGHUP, reloading %s", M.conf_path ? M.conf_path : "(no file)");
    if (n == NULL || master_load_config(n, M.conf_path, err, sizeof(err)) == -1) {
        log_msg(LOG_ERROR, "reload failed, keeping the running configuration: %s",
                n ? err : "out of memory");
        if (n != NULL) {
            cfg_free(n);
            free(n);
        }
        return;
    }
    /* every process already runs as the old user: only a restart changes it */
    if (master_str_differs(old->user, n->user) || master_str_differs(old->group, n->group)) {
        log_msg(LOG_ERROR, "reload failed, keeping the running configuration: "
                           "user and group take a restart to change");
        cfg_free(n);
        free(n);
        return;
    }
    if (cfg_equal(old, n)) {
        /* nothing to replace the workers for: they re-read what lives outside
         * the config (the TLS certificate and key, the log file) and every
         * connection stays up */
        log_msg(LOG_INFO, "configuration unchanged: workers re-read the certificate and the log");
        log_open((enum log_level)n->log_level, n->logfile);
        for (i = 0; i < M.nslots; i++)
            if (M.workers[i].pid > 0)
                kill(M.workers[i].pid, SIGHUP);
        cfg_free(n);
        free(n);
        return;
    }
    new_sockets = master_str_differs(old->bind, n->bind) || old->port != n->port ||
                  old->tls_port != n->tls_port;
    if (new_sockets) {
        if (master_open_listeners(n, fds, tfds, 0, n->workers, err) == -1) {
            log_msg(LOG_ERROR, "reload failed, keeping the running configuration: %s", err);
            cfg_free(n);
            free(n);
            return;
        }
    } else {
        memcpy(fds, M.listen_fd, sizeof(int) * (size_t)old_slots);
        memcpy(tfds, M.tls_fd, sizeof(int) * (size_t)old_slots);
        if (n->workers > old_slots &&
            master_open_listeners(n, fds, tfds, old_slots, n->workers, err) == -1) {
            log_msg(LOG_ERROR, "reload failed, keeping the running configuration: %s", err);
            cfg_free(n);
            free(n);
            return;
        }
    }
    if (n->metrics_port != old->metrics_port ||
        master_str_differs(n->metrics_bind, old->metrics_bind)) {
        int mfd = master_open_metrics(n, err);
        if (mfd == -2) {
            log_msg(LOG_ERROR, "reload failed, keeping the running configuration: metrics: %s",
                    err);
            for (i = new_sockets ? 0 : old_slots; i < n->workers; i++)
                master_close_listeners(fds[i], tfds[i]);
            cfg_free(n);
            free(n);
            return;
        }
        /* the old workers close their copies as they begin to drain */
        if (M.metrics_fd != -1)
            close(M.metrics_fd);
        M.metrics_fd = mfd;
    }
    log_open((enum log_level)n->log_level, n->logfile);

    /* the old workers drain; each keeps the socket it inherited */
    for (i = 0; i < old_slots; i++) {
        int gone = new_sockets || i >= n->workers;
        if (M.workers[i].pid > 0)
            master_retire(M.workers[i].pid, gone ? M.listen_fd[i] : -1, gone ? M.tls_fd[i] : -1,
                          M.workers[i].row);
        else if (gone)
            master_close_listeners(M.listen_fd[i], M.tls_fd[i]);
    }
    if (master_broker_changed(old, n) && M.broker.pid > 0) {
        log_msg(LOG_INFO, "broker settings changed: restarting the broker");
        kill(M.broker.pid, SIGTERM); /* respawned with the new config when it exits */
    }
    M.cfg = n;
    M.nslots = n->workers;
    memcpy(M.listen_fd, fds, sizeof(int) * (size_t)M.nslots);
    memcpy(M.tls_fd, tfds, sizeof(int) * (size_t)M.nslots);
    for (i = 0; i < M.nslots; i++) {
        memset(&M.workers[i], 0, sizeof(M.workers[i]));
        M.workers[i].role = ROLE_WORKER;
        M.workers[i].slot = i;
        master_spawn(&M.workers[i]);
    }
    cfg_free(old);
    free(old);
    log_msg(LOG_INFO, "reloaded: %d worker(s)", M.nslots);
}

/* A reload is bracketed by RELOADING=1 and READY=1 whatever its outcome
 * (a failed one keeps the running configuration: the service is ready with
 * it). Before the first READY=1 systemd is still waiting for the start, and
 * hears nothing about reloads. */
static void master_reload(void)
{
    int started = M.ready_sent;

    if (started)
        service_notify_reloading();
    master_reload_apply();
    if (started)
        master_notify_ready();
}

/* 16 random bytes as hex: unique among the instances sharing a Redis. */
static void master_new_instance_id(char *out, size_t cap)
{
    unsigned char rnd[16];
    size_t i;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

    if (fd == -1 || read(fd, rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd)) {
        uint64_t seed = util_now_ms() ^ ((uint64_t)getpid() << 32);
        for (i = 0; i < sizeof(rnd); i++)
            rnd[i] = (unsigned char)(seed >> (8 * (i % 8))) ^ (unsigned char)(i * 131);
    }
    if (fd != -1)
        close(fd);
    for (i = 0; i < sizeof(rnd) && 2 * i + 2 < cap; i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
}

static int master_write_pidfile(const char *path)
{
    char buf[32];
    int fd, n;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1)
        return -1;
    n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (util_write_all(fd, buf, (size_t)n) == -1) {
        close(fd);
        return -1;
    }
    return close(fd);
}

/* `user`: give up root now that the listeners, the pidfile and the logfile
 * are open, before any child is forked. The logfile becomes the user's, so
 * the reopen on SIGHUP works; what the user must still be able to read (the
 * config, the TLS certificate and key) is checked here, not at the first
 * reload. Returns 0, or -1 (logged). */
static int master_drop_privileges(const struct cfg *cfg)
{
    char err[CFG_ERR_LEN + 128];
    struct priv_ids ids;
    int rc = priv_lookup(cfg, &ids, err, sizeof(err));

    if (rc == 0)
        return 0;
    if (rc == 1 && geteuid() == 0 && cfg->logfile != NULL &&
        chown(cfg->logfile, ids.uid, ids.gid) == -1)
        log_errno(LOG_WARN, errno, "logfile %s: chown to %s (its reopen on SIGHUP may fail)",
                  cfg->logfile, ids.user);
    if (rc == -1 || (rc = priv_drop(&ids, err, sizeof(err))) == -1) {
        log_msg(LOG_ERROR, "%s", err);
        return -1;
    }
    if (rc == 1)
        log_msg(LOG_INFO, "running as user %s (uid %d, gid %d)", ids.user, (int)ids.uid,
                (int)ids.gid);
    if (cfg->tls_port != 0) {
        struct tls_server *t = tls_server_new(cfg, err, sizeof(err));
        if (t == NULL) {
            log_msg(LOG_ERROR, "as user %s: %s", ids.user, err);
            return -1;
        }
        tls_server_free(t);
    }
    if (M.conf_path != NULL && access(M.conf_path, R_OK) == -1)
        log_errno(LOG_WARN, errno, "as user %s, %s cannot be read again on SIGHUP", ids.user,
                  M.conf_path);
    return 0;
}

/* Remove the pidfile at exit; after a drop of privileges its directory may
 * no longer be ours to write. */
static void master_remove_pidfile(const char *path)
{
    if (unlink(path) == -1 && errno != ENOENT)
        log_errno(LOG_WARN, errno, "cannot remove pidfile %s (put it in a directory the user "
                                   "may write, e.g. /run/redis-chat/)", path);
}

static int master_daemonize(void)
{
    int fd;

    switch (fork()) {
    case -1:
        return -1;
    case 0:
        break;
    default:
        _exit(0);
    }
    if (setsid() == -1)
        return -1;
    switch (fork()) { /* not a session leader: can never get a terminal again */
    case -1:
        return -1;
    case 0:
        break;
    default:
        _exit(0);
    }
    umask(022);
    fd = open("/dev/null", O_RDWR);
    if (fd != -1) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
    return 0;
}

int master_run(struct cfg *cfg, const char *conf_path)
{
    char err[NET_ERR_LEN];
    sigset_t set;
    long nofile;
    int i;

    memset(&M, 0, sizeof(M));
    M.metrics_fd = -1;
    M.cfg = cfg;
    M.conf_path = conf_path;
    M.nslots = cfg->workers;
    log_set_role("master");

    nofile = util_raise_nofile();
    if (nofile > 0 && cfg->max_connections + 64 > nofile * cfg->workers)
        log_msg(LOG_WARN, "max-connections %ld cannot fit: %d worker(s) x %ld open files each",
                cfg->max_connections, cfg->workers, nofile);

    if (master_open_listeners(cfg, M.listen_fd, M.tls_fd, 0, M.nslots, err) == -1) {
        log_msg(LOG_ERROR, "%s", err);
        return RC_EXIT_RUNTIME;
    }
    if (cfg->metrics_port != 0 && (!master_port_free(cfg->metrics_bind, cfg->metrics_port, err) ||
                                   (M.metrics_fd = master_open_metrics(cfg, err)) < 0)) {
        log_msg(LOG_ERROR, "metrics: %s", err);
        return RC_EXIT_RUNTIME;
    }
    master_new_instance_id(M.instance_id, sizeof(M.instance_id));
    M.ccount = ccount_create();
    M.metrics = metrics_create();
    if (M.ccount == NULL || M.metrics == NULL) {
        log_errno(LOG_ERROR, errno, "shared connection counts and metrics");
        return RC_EXIT_RUNTIME;
    }
    if (cfg->daemonize && master_daemonize() == -1) {
        log_errno(LOG_ERROR, errno, "daemonize");
        return RC_EXIT_RUNTIME;
    }
    M.pid = getpid();
    if (cfg->pidfile != NULL && master_write_pidfile(cfg->pidfile) == -1) {
        log_errno(LOG_ERROR, errno, "pidfile %s", cfg->pidfile);
        return RC_EXIT_RUNTIME;
    }
    if (master_drop_privileges(cfg) == -1) {
        if (cfg->pidfile != NULL)
            unlink(cfg->pidfile);
        return RC_EXIT_RUNTIME;
    }

    /* every signal we care about is taken synchronously by sigtimedwait() */
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, MASTER_SIG_KILL_WORKER);
    sigaddset(&set, MASTER_SIG_BROKER_STATE);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    proctitle_set("redis-chat: master");
    log_msg(LOG_INFO, "redis-chat %s starting: %s:%d%s%.0d, %d worker(s)", PACKAGE_VERSION,
            cfg->bind, net_local_port(M.listen_fd[0]), cfg->tls_port ? ", wss:// on " : "",
            cfg->tls_port, M.nslots);

    M.broker.role = ROLE_BROKER;
    master_spawn(&M.broker);
    for (i = 0; i < M.nslots; i++) {
        M.workers[i].role = ROLE_WORKER;
        M.workers[i].slot = i;
        master_spawn(&M.workers[i]);
    }
    service_notify_status("%d worker(s) listening, waiting for redis at %s:%d", M.nslots,
                          cfg->redis_host, cfg->redis_port);

    while (!M.stopping || master_children_left() > 0) {
        long ms = master_next_wakeup_ms();
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        siginfo_t si;
        int sig = sigtimedwait(&set, &si, &ts);

        if (sig == MASTER_SIG_KILL_WORKER) /* not a constant: no case label */
            master_on_kill_request(&si);
        else if (sig == MASTER_SIG_BROKER_STATE)
            master_on_broker_state(&si);
        switch (sig) {
        case SIGTERM:
        case SIGINT:
            master_begin_stop(sig, RC_EXIT_OK);
            break;
        case SIGHUP:
            if (!M.stopping)
                master_reload();
            break;
        default:
            break;
        }
        master_reap();
        master_respawn_due();
        if (M.stopping && master_children_left() > 0 && util_now_ms() >= M.kill_at_ms) {
            log_msg(LOG_WARN, "children still running after the grace period: SIGKILL");
            master_signal_all(SIGKILL);
            M.kill_at_ms = util_now_ms() + 60000;
        }
    }
    for (i = 0; i < M.nslots; i++)
        master_close_listeners(M.listen_fd[i], M.tls_fd[i]);
    if (M.metrics_fd != -1)
        close(M.metrics_fd);
    if (M.cfg->pidfile != NULL)
        master_remove_pidfile(M.cfg->pidfile);
    log_msg(LOG_INFO, "stopped");
    ccount_destroy(M.ccount);
    metrics_destroy(M.metrics);
    cfg_free(M.cfg);
    free(M.cfg);
    return M.exit_code;
}
