/* harness_cluster.c -- start, inspect, disturb and stop a test Redis Cluster.
 *
 * tests/redis-cluster.sh does the starting and stopping; this file finds
 * free ports for it, keeps a watcher that stops the nodes should the test
 * die, and answers questions about the cluster by running redis-cli
 * (CLUSTER NODES, CLUSTER INFO) so that nothing here shares code with the
 * broker's own cluster map, which the tests check against it. See
 * harness_cluster.h for the contract of each helper.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "harness_cluster.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define HC_WORDS_MAX 60
#define HC_NODES_OUT 65536 /* CLUSTER NODES of up to 32 nodes, with slot lists */
#define HC_PORT_LOW 10000  /* node ports, and bus ports (+10000) below the */
#define HC_PORT_HIGH 22700 /* ephemeral range (32768...) */
#define HC_PORT_TRIES 50
#define HC_BUS_OFFSET 10000

#define hc_unconst(s) ((char *)(uintptr_t)(const char *)(s))

static void hc_script(char *out, size_t cap)
{
    const char *srcdir = getenv("SRCDIR");

    snprintf(out, cap, "%s/tests/redis-cluster.sh",
             srcdir != NULL && *srcdir != '\0' ? srcdir : ".");
}

/* 1 when port can be bound on 127.0.0.1; the socket stays open in *fd so
 * that the next probes of the same run cannot pick it. */
static int hc_port_free(int port, int *fd)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*fd == -1)
        return 0;
    if (bind(*fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        close(*fd);
        *fd = -1;
        return 0;
    }
    return 1;
}

/* A first port such that n ports from it and their bus ports were free a
 * moment ago, or -1. */
static int hc_free_range(int n)
{
    int fds[2 * H_CLUSTER_NODES_MAX], tries, i;

    srandom((unsigned)getpid() ^ (unsigned)h_now_ms());
    for (tries = 0; tries < HC_PORT_TRIES; tries++) {
        int base = HC_PORT_LOW + (int)(random() % (HC_PORT_HIGH - HC_PORT_LOW - n)), ok = 1, k = 0;

        for (i = 0; i < n && ok; i++) {
            ok = hc_port_free(base + i, &fds[k]);
            k += ok;
            ok = ok && hc_port_free(base + i + HC_BUS_OFFSET, &fds[k]);
            k += ok;
        }
        while (k > 0)
            close(fds[--k]);
        if (ok)
            return base;
    }
    fprintf(stderr, "h_cluster_start: no %d free ports (and bus ports) after %d tries\n", n,
            HC_PORT_TRIES);
    return -1;
}

/* Run the script with these arguments (NULL-terminated, after the script),
 * REDIS_TLS set from c; its output (both streams) goes to stderr when it
 * fails. Returns its exit status. */
static int hc_run_script(const struct h_cluster *c, int timeout_ms, char *const args[])
{
    char script[PATH_MAX], out[8192], *argv[16];
    int n = 0, rc;

    hc_script(script, sizeof(script));
    argv[n++] = hc_unconst("env");
    argv[n++] = hc_unconst(c->tls ? "REDIS_TLS=yes" : "REDIS_TLS=no");
    argv[n++] = hc_unconst("bash");
    argv[n++] = script;
    while (*args != NULL && n < 15)
        argv[n++] = *args++;
    argv[n] = NULL;
    rc = h_run(out, sizeof(out), timeout_ms, argv);
    if (rc != 0)
        fprintf(stderr, "harness: redis-cluster.sh %s: exit %d:\n%s\n", argv[4], rc, out);
    return rc;
}

/* SIGKILL every process that runs in one of dir's node directories, even
 * one removed meanwhile (the test's fixture may delete the whole tree
 * before the watcher wakes up, pid files and all): found by the working
 * directory the kernel still shows, "DIR/node-PORT" or "... (deleted)". */
static void hc_kill_nodes_in(const char *dir)
{
    char prefix[PATH_MAX], path[300], cwd[PATH_MAX];
    struct dirent *e;
    DIR *proc = opendir("/proc");
    size_t plen;
    ssize_t n;

    snprintf(prefix, sizeof(prefix), "%s/node-", dir);
    plen = strlen(prefix);
    while (proc != NULL && (e = readdir(proc)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cwd", e->d_name);
        n = readlink(path, cwd, sizeof(cwd) - 1);
        if (n <= 0)
            continue;
        cwd[n] = '\0';
        if (strncmp(cwd, prefix, plen) == 0)
            kill((pid_t)strtol(e->d_name, NULL, 10), SIGKILL);
    }
    if (proc != NULL)
        closedir(proc);
}

/* The watcher: waits for the owner's death (PR_SET_PDEATHSIG), then kills
 * the nodes, runs the script's stop for good measure and removes the dir.
 * h_cluster_stop kills it first. */
static pid_t hc_watcher_start(const struct h_cluster *c)
{
    pid_t parent = getpid(), pid;
    char script[PATH_MAX];
    sigset_t set;
    int sig;

    hc_script(script, sizeof(script));
    fflush(NULL);
    pid = fork();
    if (pid != 0) {
        if (pid == -1)
            perror("h_cluster_start: fork");
        return pid > 0 ? pid : 0;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != parent)
        _exit(0);
    /* out of the test's process group: check kills that group when a test
     * ends (failed or not), and the nodes (daemons) would outlive us */
    setpgid(0, 0);
    /* the test's sockets must not stay open here */
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == -1)
        for (int fd = 3; fd < 65536; fd++)
            close(fd);
    while (sigwait(&set, &sig) != 0)
        ;
    hc_kill_nodes_in(c->dir);
    /* the temp dir goes too: no one else will remove it */
    execlp("bash", "bash", "-c", "bash \"$1\" --stop \"$2\"; rm -rf -- \"$2\"", "watcher", script,
           c->dir, (char *)NULL);
    _exit(127);
}

int h_cluster_start(struct h_cluster *c, int primaries, int replicas, int tls, const char *password)
{
    char first[16], np[16], nr[16];
    char *args[] = {c->dir, first, np, nr, c->password, NULL};
    long long t0 = h_now_ms();

    memset(c, 0, sizeof(*c));
    c->owner = getpid();
    c->tls = tls ? 1 : 0;
    c->primaries = primaries;
    c->replicas = replicas;
    c->nodes = primaries * (1 + replicas);
    if (primaries < 3 || replicas < 0 || c->nodes > H_CLUSTER_NODES_MAX) {
        fprintf(stderr,
                "h_cluster_start: %d primaries, %d replicas each: need >= 3 primaries "
                "and at most %d nodes\n",
                primaries, replicas, H_CLUSTER_NODES_MAX);
        return -1;
    }
    if (password != NULL && (strlen(password) >= sizeof(c->password) || strchr(password, ' '))) {
        fprintf(stderr, "h_cluster_start: password too long or has a space\n");
        return -1;
    }
    snprintf(c->password, sizeof(c->password), "%s", password != NULL ? password : "");
    if (h_tmpdir(c->dir, sizeof(c->dir)) == -1)
        return -1;
    if (c->tls)
        snprintf(c->ca, sizeof(c->ca), "%s/tls/ca.crt", c->dir);
    c->first_port = hc_free_range(c->nodes);
    c->watcher = hc_watcher_start(c);
    snprintf(first, sizeof(first), "%d", c->first_port);
    snprintf(np, sizeof(np), "%d", primaries);
    snprintf(nr, sizeof(nr), "%d", replicas);
    if (c->first_port == -1 || c->watcher == 0 || hc_run_script(c, H_CLUSTER_START_MS, args) != 0) {
        h_cluster_free(c);
        return -1;
    }
    if (getenv("H_CLUSTER_VERBOSE") != NULL)
        fprintf(stderr, "h_cluster_start: %d nodes on %d.. ready in %lld ms\n", c->nodes,
                c->first_port, h_now_ms() - t0);
    return 0;
}

void h_cluster_stop(struct h_cluster *c)
{
    char *args[] = {hc_unconst("--stop"), c->dir, NULL};

    if (c->dir[0] != '\0')
        hc_run_script(c, 15000, args);
    if (c->watcher > 0 && getpid() == c->owner) {
        kill(c->watcher, SIGKILL);
        h_wait_exit(c->watcher, 5000, NULL);
    }
    c->watcher = 0;
}

void h_cluster_free(struct h_cluster *c)
{
    h_cluster_stop(c);
    h_rmrf(c->dir);
    c->dir[0] = '\0';
}

pid_t h_cluster_node_pid(const struct h_cluster *c, int port)
{
    char path[PATH_MAX], cwd[PATH_MAX] = "", real[PATH_MAX], text[32] = "";
    long pid = 0;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/node-%d/redis.pid", c->dir, port);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return 0;
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n > 0)
        pid = strtol(text, NULL, 10);
    snprintf(path, sizeof(path), "%s/node-%d", c->dir, port);
    if (pid <= 0 || !h_alive((pid_t)pid) || realpath(path, real) == NULL)
        return 0;
    /* redis-server chdirs to its dir: a recycled pid runs elsewhere */
    snprintf(path, sizeof(path), "/proc/%ld/cwd", pid);
    if (readlink(path, cwd, sizeof(cwd) - 1) <= 0 || strcmp(cwd, real) != 0)
        return 0;
    return (pid_t)pid;
}

int h_cluster_kill_node(const struct h_cluster *c, int port, int sig)
{
    pid_t pid = h_cluster_node_pid(c, port);

    if (pid == 0) {
        fprintf(stderr, "h_cluster_kill_node: no node running on port %d\n", port);
        return -1;
    }
    if (kill(pid, sig) == -1) {
        fprintf(stderr, "h_cluster_kill_node: kill %d: %s\n", (int)pid, strerror(errno));
        return -1;
    }
    if (sig != SIGKILL && sig != SIGTERM && sig != SIGINT)
        return 0;
    if (!h_wait_gone(pid, 5000)) {
        fprintf(stderr,
                "h_cluster_kill_node: node %d (pid %d) still running 5 s after signal "
                "%d\n",
                port, (int)pid, sig);
        return -1;
    }
    return 0;
}

int h_cluster_restart_node(const struct h_cluster *c, int port)
{
    char num[16];
    char *args[] = {hc_unconst("--start-node"), hc_unconst(c->dir), num, NULL};

    snprintf(num, sizeof(num), "%d", port);
    if (hc_run_script(c, 20000, args) != 0)
        return -1;
    return h_cluster_wait_ok(c, H_CLUSTER_OK_MS);
}

/* ---- redis-cli ----------------------------------------------------------- */

/* Run redis-cli against the node on port with words[0..nwords); follow
 * redirections when follow is set. */
static int hc_cli_words(const struct h_cluster *c, int port, int follow, char *out, size_t cap,
                        int timeout_ms, char *const *words, int nwords)
{
    const char *cli = getenv("REDIS_CLI");
    char *argv[HC_WORDS_MAX + 16], num[16];
    int n = 0, i;

    snprintf(num, sizeof(num), "%d", port);
    argv[n++] = hc_unconst(cli != NULL && *cli != '\0' ? cli : "redis-cli");
    if (follow)
        argv[n++] = hc_unconst("-c");
    argv[n++] = hc_unconst("-h");
    argv[n++] = hc_unconst("127.0.0.1");
    argv[n++] = hc_unconst("-p");
    argv[n++] = num;
    if (c->tls) {
        argv[n++] = hc_unconst("--tls");
        argv[n++] = hc_unconst("--cacert");
        argv[n++] = hc_unconst(c->ca);
    }
    if (c->password[0] != '\0') {
        argv[n++] = hc_unconst("-a");
        argv[n++] = hc_unconst(c->password);
        argv[n++] = hc_unconst("--no-auth-warning");
    }
    for (i = 0; i < nwords && i < HC_WORDS_MAX; i++)
        argv[n++] = words[i];
    argv[n] = NULL;
    return h_run(out, cap, timeout_ms, argv);
}

static int hc_cli_fmt(const struct h_cluster *c, int port, int follow, char *out, size_t cap,
                      const char *fmt, va_list ap)
{
    char cmd[4096], *words[HC_WORDS_MAX], *save = NULL, *w;
    int nwords = 0;

    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    for (w = strtok_r(cmd, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
        if (nwords == HC_WORDS_MAX) {
            fprintf(stderr, "h_cluster_cli: more than %d words\n", HC_WORDS_MAX);
            return -1;
        }
        words[nwords++] = w;
    }
    return hc_cli_words(c, port, follow, out, cap, H_CLI_TIMEOUT_MS, words, nwords);
}

int h_cluster_cli(const struct h_cluster *c, int port, char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = hc_cli_fmt(c, port, 1, out, cap, fmt, ap);
    va_end(ap);
    return rc;
}

int h_cluster_cli_node(const struct h_cluster *c, int port, char *out, size_t cap, const char *fmt,
                       ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = hc_cli_fmt(c, port, 0, out, cap, fmt, ap);
    va_end(ap);
    return rc;
}

int h_cluster_node_id(const struct h_cluster *c, int port, char *out, size_t cap)
{
    char buf[256];
    size_t n;

    if (h_cluster_cli_node(c, port, buf, sizeof(buf), "CLUSTER MYID") != 0)
        return -1;
    n = strcspn(buf, "\r\n");
    if (n != 40 || strspn(buf, "0123456789abcdef") < 40 || cap <= n) {
        fprintf(stderr, "h_cluster_node_id: node %d: %s\n", port, buf);
        return -1;
    }
    memcpy(out, buf, n);
    out[n] = '\0';
    return 0;
}

/* ---- CLUSTER NODES ------------------------------------------------------- */

struct hc_node {
    char id[41];
    char primary_id[41]; /* "-" for a primary */
    int port;
    int is_primary;
    int failed; /* flags "fail" (not "fail?": one node's suspicion) */
    int nslots;
};

/* Parse CLUSTER NODES text into nodes (up to H_CLUSTER_NODES_MAX); when
 * owners is not NULL, fill each slot's owner port (-1: none). Returns the
 * node count, or -1 on a line it cannot read. */
static int hc_parse_nodes(char *text, struct hc_node *nodes, int *owners)
{
    char *save = NULL, *line;
    int n = 0, i;

    for (i = 0; owners != NULL && i < H_CLUSTER_SLOTS; i++)
        owners[i] = -1;
    for (line = strtok_r(text, "\r\n", &save); line != NULL; line = strtok_r(NULL, "\r\n", &save)) {
        char *f[8], *rest = NULL, *w, *colon, *s2 = NULL;
        struct hc_node *nd = &nodes[n];
        int k;

        if (n == H_CLUSTER_NODES_MAX)
            return -1;
        for (k = 0; k < 8; k++)
            if ((f[k] = strtok_r(k == 0 ? line : NULL, " ", &s2)) == NULL)
                return -1;
        rest = s2;
        memset(nd, 0, sizeof(*nd));
        snprintf(nd->id, sizeof(nd->id), "%s", f[0]);
        snprintf(nd->primary_id, sizeof(nd->primary_id), "%s", f[3]);
        /* ip:port@cport[,hostname] */
        f[1][strcspn(f[1], "@")] = '\0';
        colon = strrchr(f[1], ':');
        nd->port = colon != NULL ? atoi(colon + 1) : 0;
        nd->is_primary = strstr(f[2], "master") != NULL;
        for (w = strtok_r(f[2], ",", &s2); w != NULL; w = strtok_r(NULL, ",", &s2))
            if (strcmp(w, "fail") == 0)
                nd->failed = 1;
        /* slots: "N", "A-B"; "[N->-id]" / "[N-<-id]" are migrations */
        for (w = rest != NULL ? strtok_r(rest, " ", &s2) : NULL; w != NULL;
             w = strtok_r(NULL, " ", &s2)) {
            long a, b;
            char *end;

            if (w[0] == '[')
                continue;
            a = strtol(w, &end, 10);
            b = *end == '-' ? strtol(end + 1, &end, 10) : a;
            if (*end != '\0' || a < 0 || b >= H_CLUSTER_SLOTS || a > b)
                return -1;
            nd->nslots += (int)(b - a + 1);
            for (; owners != NULL && a <= b; a++)
                owners[a] = nd->port;
        }
        n++;
    }
    return n;
}

/* CLUSTER NODES from the node on port (parsed), or from the first running
 * node that answers when port is 0. Returns the count or -1. */
static int hc_nodes(const struct h_cluster *c, int port, struct hc_node *nodes, int *owners)
{
    char *out = malloc(HC_NODES_OUT);
    int i, n = -1;

    for (i = 0; out != NULL && i < c->nodes && n < 0; i++) {
        int p = port != 0 ? port : c->first_port + i;

        if ((port != 0 || h_cluster_node_pid(c, p) != 0) &&
            h_cluster_cli_node(c, p, out, HC_NODES_OUT, "CLUSTER NODES") == 0 &&
            strstr(out, "myself") != NULL)
            n = hc_parse_nodes(out, nodes, owners);
        if (port != 0)
            break;
    }
    free(out);
    return n;
}

static int hc_int_cmp(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

int h_cluster_primaries(const struct h_cluster *c, int *ports, int max)
{
    struct hc_node nodes[H_CLUSTER_NODES_MAX];
    int n = hc_nodes(c, 0, nodes, NULL), i, count = 0;

    for (i = 0; i < n; i++)
        if (nodes[i].is_primary && !nodes[i].failed && nodes[i].nslots > 0) {
            if (count < max)
                ports[count] = nodes[i].port;
            count++;
        }
    if (n >= 0)
        qsort(ports, (size_t)(count < max ? count : max), sizeof(int), hc_int_cmp);
    return n < 0 ? -1 : count;
}

int h_cluster_replicas_of(const struct h_cluster *c, int primary_port, int *ports, int max)
{
    struct hc_node nodes[H_CLUSTER_NODES_MAX];
    int n = hc_nodes(c, 0, nodes, NULL), i, j, count = 0;

    for (i = 0; i < n; i++)
        if (nodes[i].port == primary_port && nodes[i].is_primary)
            break;
    for (j = 0; i < n && j < n; j++)
        if (!nodes[j].is_primary && !nodes[j].failed &&
            strcmp(nodes[j].primary_id, nodes[i].id) == 0) {
            if (count < max)
                ports[count] = nodes[j].port;
            count++;
        }
    if (n >= 0)
        qsort(ports, (size_t)(count < max ? count : max), sizeof(int), hc_int_cmp);
    return n < 0 || i == n ? -1 : count;
}

int h_cluster_slot_table(const struct h_cluster *c, int port, int *owners)
{
    struct hc_node nodes[H_CLUSTER_NODES_MAX];

    return hc_nodes(c, port, nodes, owners) < 0 ? -1 : 0;
}

int h_cluster_slot_owner(const struct h_cluster *c, int slot)
{
    struct hc_node nodes[H_CLUSTER_NODES_MAX];
    int *owners = malloc(H_CLUSTER_SLOTS * sizeof(int)), port = -1;

    if (owners != NULL && slot >= 0 && slot < H_CLUSTER_SLOTS && hc_nodes(c, 0, nodes, owners) >= 0)
        port = owners[slot];
    free(owners);
    return port;
}

/* 1 when every running node says ok and sees the same owner for every slot,
 * each slot owned; else 0 with the reason in why. */
static int hc_all_agree(const struct h_cluster *c, int *first, int *other, char *why, size_t cap)
{
    char info[4096];
    int i, s, seen = 0;

    for (i = 0; i < c->nodes; i++) {
        int p = c->first_port + i;
        struct hc_node nodes[H_CLUSTER_NODES_MAX];

        if (h_cluster_node_pid(c, p) == 0)
            continue;
        if (h_cluster_cli_node(c, p, info, sizeof(info), "CLUSTER INFO") != 0 ||
            strstr(info, "cluster_state:ok") == NULL) {
            snprintf(why, cap, "node %d: not cluster_state:ok", p);
            return 0;
        }
        if (hc_nodes(c, p, nodes, seen ? other : first) < 0) {
            snprintf(why, cap, "node %d: CLUSTER NODES unreadable", p);
            return 0;
        }
        for (s = 0; s < H_CLUSTER_SLOTS; s++)
            if ((seen ? other : first)[s] == -1 || (seen && other[s] != first[s])) {
                snprintf(why, cap, "slot %d: owner %d for node %d, %d for the first node", s,
                         (seen ? other : first)[s], p, first[s]);
                return 0;
            }
        seen = 1;
    }
    if (!seen)
        snprintf(why, cap, "no node running");
    return seen;
}

int h_cluster_wait_ok(const struct h_cluster *c, int timeout_ms)
{
    long long deadline = h_now_ms() + timeout_ms;
    int *first = malloc(2 * H_CLUSTER_SLOTS * sizeof(int)), ok = 0;
    char why[256] = "out of memory";

    while (first != NULL &&
           !(ok = hc_all_agree(c, first, first + H_CLUSTER_SLOTS, why, sizeof(why))) &&
           h_now_ms() < deadline)
        h_sleep_ms(100);
    free(first);
    if (!ok)
        fprintf(stderr, "h_cluster_wait_ok: not within %d ms: %s\n", timeout_ms, why);
    return ok ? 0 : -1;
}

int h_cluster_failover_wait(const struct h_cluster *c, int old_port, int timeout_ms)
{
    long long deadline = h_now_ms() + timeout_ms;
    int *owners = malloc(H_CLUSTER_SLOTS * sizeof(int)), slot = -1, port = -1, s;
    struct hc_node nodes[H_CLUSTER_NODES_MAX];

    /* a slot of old_port's: until the failover, the others still list its
     * slots under it (flagged fail) */
    if (owners != NULL && hc_nodes(c, 0, nodes, owners) >= 0)
        for (s = 0; s < H_CLUSTER_SLOTS && slot < 0; s++)
            if (owners[s] == old_port)
                slot = s;
    free(owners);
    if (slot < 0) {
        fprintf(stderr, "h_cluster_failover_wait: node %d owns no slot\n", old_port);
        return -1;
    }
    while (h_now_ms() < deadline) {
        port = h_cluster_slot_owner(c, slot);
        if (port > 0 && port != old_port)
            break;
        h_sleep_ms(100);
    }
    if (port <= 0 || port == old_port) {
        fprintf(stderr, "h_cluster_failover_wait: slot %d still on %d after %d ms\n", slot,
                old_port, timeout_ms);
        return -1;
    }
    if (h_cluster_wait_ok(c, (int)(deadline > h_now_ms() ? deadline - h_now_ms() : 1)) != 0)
        return -1;
    return h_cluster_slot_owner(c, slot);
}

int h_cluster_reshard(const struct h_cluster *c, int slots, int from_port, int to_port)
{
    char from[41], to[41], addr[64], num[16], *out;
    char *words[] = {hc_unconst("--cluster"),
                     hc_unconst("reshard"),
                     addr,
                     hc_unconst("--cluster-from"),
                     from,
                     hc_unconst("--cluster-to"),
                     to,
                     hc_unconst("--cluster-slots"),
                     num,
                     hc_unconst("--cluster-yes"),
                     NULL};
    int rc;

    if (h_cluster_node_id(c, from_port, from, sizeof(from)) != 0 ||
        h_cluster_node_id(c, to_port, to, sizeof(to)) != 0)
        return -1;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", from_port);
    snprintf(num, sizeof(num), "%d", slots);
    out = malloc(HC_NODES_OUT);
    if (out == NULL)
        return -1;
    rc = hc_cli_words(c, from_port, 0, out, HC_NODES_OUT, H_CLUSTER_RESHARD_MS, words, 10);
    if (rc != 0 || strstr(out, "[ERR]") != NULL) {
        fprintf(stderr, "h_cluster_reshard: %d slots %d -> %d: exit %d:\n%s\n", slots, from_port,
                to_port, rc, out);
        free(out);
        return -1;
    }
    free(out);
    return h_cluster_wait_ok(c, H_CLUSTER_OK_MS);
}
