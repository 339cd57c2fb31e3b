/* check_metrics.c -- GET /metrics on metrics-port against the real binary:
 * the exposition passes `promtool check metrics`, counters move with
 * traffic, never go down nor double when a worker is killed or a reload
 * replaces the workers, the Redis link gauge follows Redis, other paths and
 * methods are refused, and metrics-port 0 opens no listener. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define JOIN(c, port, name) fx_join_settled((c), (port), (name), __LINE__)
#define BODY_MAX (256 * 1024)
#define POLL_MS 10000

/* ---- scraping ---------------------------------------------------------------- */

/* Send request (raw) to 127.0.0.1:port and read the answer until EOF into
 * out. Returns the HTTP status, or -1 (no connection, no answer). */
static int http_raw(int port, const char *request, char *out, size_t cap)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {5, 0};
    size_t len = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;
    ssize_t n;

    out[0] = '\0';
    if (fd == -1)
        return -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
        send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t)strlen(request)) {
        close(fd);
        return -1;
    }
    while (len + 1 < cap && (n = recv(fd, out + len, cap - 1 - len, 0)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(fd);
    if (sscanf(out, "HTTP/1.1 %d ", &status) != 1)
        return -1;
    return status;
}

/* GET /metrics: the body (after the head) in body, the status returned. */
static int scrape(int port, char *body, size_t cap)
{
    static char raw[BODY_MAX + 1024];
    const char *p;
    int st = http_raw(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n", raw,
                      sizeof(raw));

    body[0] = '\0';
    if (st != 200)
        return st;
    ck_assert_msg(strstr(raw, "\r\nContent-Type: text/plain; version=0.0.4") != NULL,
                  "no 0.0.4 Content-Type:\n%.300s", raw);
    p = strstr(raw, "\r\n\r\n");
    ck_assert_ptr_nonnull(p);
    snprintf(body, cap, "%s", p + 4);
    return st;
}

/* The value of the sample named exactly `sample` (name plus labels, as
 * written), or -1 when it is not there. */
static double metric(const char *body, const char *sample)
{
    size_t n = strlen(sample);
    const char *p = body;

    while ((p = strstr(p, sample)) != NULL) {
        if ((p == body || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p += n;
    }
    return -1;
}

static double scrape_metric(int port, const char *sample)
{
    static char body[BODY_MAX];

    ck_assert_int_eq(scrape(port, body, sizeof(body)), 200);
    return metric(body, sample);
}

/* Poll until sample has value want (POLL_MS at most). */
static int wait_metric(int port, const char *sample, double want)
{
    long long end = h_now_ms() + POLL_MS;

    do {
        if (scrape_metric(port, sample) == want)
            return 1;
        h_sleep_ms(50);
    } while (h_now_ms() < end);
    return 0;
}

/* `promtool check metrics` on body: 0 when it passes; its output in out. */
static int promtool_check(const char *body, char *out, size_t cap)
{
    char path[] = "/tmp/rchat-metrics.XXXXXX", cmd[128];
    int fd = mkstemp(path), rc;
    FILE *f;

    ck_assert_int_ne(fd, -1);
    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs(body, f);
    fclose(f);
    /* promtool reads the exposition from stdin; a missing promtool is a
     * failure (127), never a skip: CI installs it */
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
    {
        char sh[] = "sh", dash_c[] = "-c";
        rc = h_run(out, cap, 20000, (char *const[]){sh, dash_c, cmd, NULL});
    }
    unlink(path);
    return rc;
}

/* Every counter sample of `before` (names ending in _total, _bucket, _count,
 * _sum) is in `after` with a value at least as large. */
static void assert_no_counter_went_down(const char *before, const char *after, const char *when)
{
    char line[512];
    const char *p = before, *nl;

    for (; *p != '\0'; p = nl + 1) {
        char *sp, *name_end;
        double was, now;

        nl = strchr(p, '\n');
        if (nl == NULL)
            break;
        if (*p == '#' || (size_t)(nl - p) >= sizeof(line))
            continue;
        memcpy(line, p, (size_t)(nl - p));
        line[nl - p] = '\0';
        sp = strrchr(line, ' ');
        if (sp == NULL)
            continue;
        *sp = '\0';
        name_end = strchr(line, '{');
        if (name_end == NULL)
            name_end = line + strlen(line);
        if (!((name_end - line > 6 && memcmp(name_end - 6, "_total", 6) == 0) ||
              (name_end - line > 7 && memcmp(name_end - 7, "_bucket", 7) == 0) ||
              (name_end - line > 6 && memcmp(name_end - 6, "_count", 6) == 0) ||
              (name_end - line > 4 && memcmp(name_end - 4, "_sum", 4) == 0)))
            continue;
        was = strtod(sp + 1, NULL);
        now = metric(after, line);
        ck_assert_msg(now >= was, "%s: %s went from %g to %g", when, line, was, now);
    }
}

/* ---- the instance -------------------------------------------------------------- */

static struct h_redis redis;

static void redis_setup(void)
{
    fx_tmp_enter();
    ck_assert_int_eq(h_redis_start(&redis, 0, NULL), 0);
}

static void redis_teardown(void)
{
    h_redis_free(&redis);
    fx_tmp_leave();
}

/* An instance with `workers` workers and /metrics on a free port (returned). */
static int start_with_metrics(struct h_chat *c, int workers, const char *extra)
{
    char conf[512];
    int mport;

    do
        mport = h_free_port();
    while (mport <= 0);
    snprintf(conf, sizeof(conf), "metrics-port %d\n%s", mport, extra ? extra : "");
    fx_chat_ready(c, &redis, workers, conf);
    return mport;
}

/* ---- tests ------------------------------------------------------------------------ */

START_TEST(test_exposition_and_traffic)
{
    static char body[BODY_MAX], out[8192];
    struct h_chat c;
    struct wsc alice, bob;
    int mport = start_with_metrics(&c, 2, NULL), i;
    double joins0, msgs0, deliveries0, published0;

    ck_assert_int_eq(scrape(mport, body, sizeof(body)), 200);
    ck_assert_msg(promtool_check(body, out, sizeof(out)) == 0, "promtool check metrics:\n%s", out);
    ck_assert(strstr(body, "# TYPE redis_chat_joins_total counter\n") != NULL);
    ck_assert(strstr(body, "# TYPE redis_chat_worker_joins_total counter\n") != NULL);
    ck_assert(strstr(body, "# TYPE redis_chat_redis_command_duration_seconds histogram\n") != NULL);
    ck_assert_double_eq(metric(body, "redis_chat_redis_up"), 1);
    ck_assert_double_eq(metric(body, "redis_chat_worker_slots"), 2);
    ck_assert_double_eq(metric(body, "redis_chat_broker_workers"), 2);
    joins0 = metric(body, "redis_chat_joins_total");
    msgs0 = metric(body, "redis_chat_messages_received_total");
    deliveries0 = metric(body, "redis_chat_deliveries_total");
    published0 = metric(body, "redis_chat_messages_published_total");
    ck_assert(joins0 == 0 && msgs0 == 0 && published0 == 0);

    JOIN(&alice, c.port, "alice");
    JOIN(&bob, c.port, "bob");
    fx_drain(&alice);
    for (i = 0; i < 3; i++)
        SEND(&alice, "hello");
    for (i = 0; i < 3; i++)
        EXPECT(&bob, "alice: hello");

    ck_assert_int_eq(scrape(mport, body, sizeof(body)), 200);
    ck_assert_msg(promtool_check(body, out, sizeof(out)) == 0, "promtool check metrics:\n%s", out);
    ck_assert_double_eq(metric(body, "redis_chat_joins_total"), 2);
    ck_assert_double_eq(metric(body, "redis_chat_messages_received_total"), 3);
    ck_assert_double_eq(metric(body, "redis_chat_messages_published_total"), 3);
    /* bob's three, alice's welcome, bob's welcome and alice's notice of bob */
    ck_assert_msg(metric(body, "redis_chat_deliveries_total") >= deliveries0 + 3, "deliveries %g",
                  metric(body, "redis_chat_deliveries_total"));
    ck_assert_double_eq(metric(body, "redis_chat_connections{state=\"open\",transport=\"ws\"}"), 2);
    ck_assert_double_eq(metric(body, "redis_chat_room_members"), 2);
    ck_assert_double_eq(metric(body, "redis_chat_broker_rooms"), 1);
    ck_assert_double_eq(metric(body, "redis_chat_worker_joins_total{worker=\"0\"}") +
                            metric(body, "redis_chat_worker_joins_total{worker=\"1\"}"),
                        2);
    ck_assert_double_eq(metric(body, "redis_chat_connections_accepted_total{transport=\"ws\"}"), 2);
    ck_assert_msg(metric(body, "redis_chat_redis_command_duration_seconds_count") >= 3,
                  "redis commands %g",
                  metric(body, "redis_chat_redis_command_duration_seconds_count"));

    /* bob leaves with a close: counted once the worker saw it */
    ck_assert_int_eq(wsc_send_close(&bob, 1000, "bye"), 0);
    ck_assert(wsc_wait_close(&bob, T_MSG_MS));
    ck_assert(wait_metric(mport, "redis_chat_leaves_total", 1));
    ck_assert(wait_metric(mport, "redis_chat_connections{state=\"open\",transport=\"ws\"}", 1));
    wsc_free(&alice);
    wsc_free(&bob);
    h_chat_free(&c);
}
END_TEST

START_TEST(test_not_metrics)
{
    static char out[8192];
    struct h_chat c;
    pid_t old;
    int mport = start_with_metrics(&c, 1, NULL);

    ck_assert_int_eq(http_raw(mport, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out)), 404);
    ck_assert_int_eq(http_raw(mport, "GET /metricsx HTTP/1.1\r\n\r\n", out, sizeof(out)), 404);
    ck_assert_int_eq(
        http_raw(mport, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", out, sizeof(out)),
        405);
    ck_assert(strstr(out, "\r\nAllow: GET\r\n") != NULL);
    ck_assert_int_eq(http_raw(mport, "HEAD /metrics HTTP/1.1\r\n\r\n", out, sizeof(out)), 405);
    ck_assert_int_eq(http_raw(mport, "GET /metrics\r\n\r\n", out, sizeof(out)), 400);
    ck_assert_int_eq(http_raw(mport, "\x01\x02 junk\r\n\r\n", out, sizeof(out)), 400);
    /* a query string is still /metrics; HTTP/1.0 too */
    ck_assert_int_eq(http_raw(mport, "GET /metrics?x=1 HTTP/1.0\r\n\r\n", out, sizeof(out)), 200);
    /* the chat port does not serve it */
    ck_assert_int_eq(http_raw(c.port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out)),
                     404);
    /* the refused requests on the chat port are counted there */
    ck_assert(wait_metric(mport, "redis_chat_handshakes_refused_total{reason=\"not_found\"}", 1));
    /* the only worker killed: the one started in its place answers */
    old = h_child_titled(c.pid, "redis-chat: worker 0");
    ck_assert_int_ne(old, 0);
    ck_assert_int_eq(kill(old, SIGKILL), 0);
    ck_assert_int_ne(h_wait_new_child(c.pid, "redis-chat: worker 0", old, 10000), 0);
    ck_assert(wait_metric(mport, "redis_chat_handshakes_refused_total{reason=\"not_found\"}", 1));
    h_chat_free(&c);
}
END_TEST

/* TCP ports that process pid listens on (from its socket inodes and
 * /proc/net/tcp). Returns how many distinct ones, stored in ports. */
static int listen_ports(pid_t pid, int *ports, int max)
{
    char path[64], link[64], line[512];
    unsigned long inodes[256];
    int ninodes = 0, nports = 0, i;
    FILE *f;

    for (i = 0; i < 1024 && ninodes < 256; i++) {
        ssize_t n;
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, i);
        n = readlink(path, link, sizeof(link) - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (sscanf(link, "socket:[%lu]", &inodes[ninodes]) == 1)
            ninodes++;
    }
    f = fopen("/proc/net/tcp", "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned int port, st;
        unsigned long inode;
        int j, seen = 0;

        if (sscanf(line, " %*d: %*8x:%x %*8x:%*x %x %*x:%*x %*x:%*x %*x %*d %*d %lu", &port, &st,
                   &inode) != 3 ||
            st != 0x0A)
            continue;
        for (i = 0; i < ninodes && inodes[i] != inode; i++)
            ;
        if (i == ninodes)
            continue;
        for (j = 0; j < nports; j++)
            seen |= ports[j] == (int)port;
        if (!seen && nports < max)
            ports[nports++] = (int)port;
    }
    fclose(f);
    return nports;
}

START_TEST(test_off_by_default)
{
    static char out[8192];
    struct h_chat c;
    int ports[8], n, mport;

    /* the default: only the chat port */
    fx_chat_ready(&c, &redis, 2, NULL);
    n = listen_ports(c.pid, ports, 8);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(ports[0], c.port);
    h_chat_free(&c);
    /* metrics-port 0 said in so many words: the same */
    fx_chat_ready(&c, &redis, 2, "metrics-port 0\n");
    ck_assert_int_eq(listen_ports(c.pid, ports, 8), 1);
    h_chat_free(&c);
    /* and on: a second port, on 127.0.0.1 (metrics-bind's default) */
    mport = start_with_metrics(&c, 2, NULL);
    n = listen_ports(c.pid, ports, 8);
    ck_assert_int_eq(n, 2);
    ck_assert(ports[0] == mport || ports[1] == mport);
    ck_assert_int_eq(http_raw(mport, "GET /metrics HTTP/1.1\r\n\r\n", out, sizeof(out)), 200);
    h_chat_free(&c);
}
END_TEST

/* Counters survive a worker killed with SIGKILL: nothing goes down, and the
 * dead worker's counts are not added twice. */
START_TEST(test_worker_killed)
{
    static char before[BODY_MAX], after[BODY_MAX];
    struct h_chat c;
    struct wsc u[6];
    char name[16];
    int mport = start_with_metrics(&c, 2, NULL), i;
    pid_t old, fresh;

    for (i = 0; i < 6; i++) {
        snprintf(name, sizeof(name), "u%d", i);
        JOIN(&u[i], c.port, name);
    }
    fx_drain(&u[1]);
    SEND(&u[0], "one");
    SEND(&u[5], "two");
    ck_assert(fx_expect_unordered(&u[1], (const char *const[]){"u0: one", "u5: two"}, 2, T_MSG_MS));
    ck_assert_int_eq(scrape(mport, before, sizeof(before)), 200);
    ck_assert_double_eq(metric(before, "redis_chat_joins_total"), 6);

    old = h_child_titled(c.pid, "redis-chat: worker 0");
    ck_assert_int_ne(old, 0);
    ck_assert_int_eq(kill(old, SIGKILL), 0);
    fresh = h_wait_new_child(c.pid, "redis-chat: worker 0", old, 10000);
    ck_assert_int_ne(fresh, 0);
    ck_assert(h_wait_count(c.log, "chat service available", 3, 10000));

    ck_assert_int_eq(scrape(mport, after, sizeof(after)), 200);
    assert_no_counter_went_down(before, after, "after the kill");
    /* nothing joined or was sent since: the same counts, not twice them */
    ck_assert_double_eq(metric(after, "redis_chat_joins_total"), 6);
    ck_assert_double_eq(metric(after, "redis_chat_messages_received_total"), 2);
    ck_assert_double_eq(metric(after, "redis_chat_worker_joins_total{worker=\"0\"}"),
                        metric(before, "redis_chat_worker_joins_total{worker=\"0\"}"));
    /* the dead worker's gauges went with it */
    ck_assert_double_eq(metric(after, "redis_chat_worker_connections{worker=\"0\",state=\"open\","
                                      "transport=\"ws\"}"),
                        0);
    ck_assert_double_eq(metric(after, "redis_chat_room_members"),
                        metric(after, "redis_chat_worker_room_members{worker=\"1\"}"));
    /* the broker's counters are its own */
    ck_assert_double_eq(metric(after, "redis_chat_messages_published_total"), 2);
    for (i = 0; i < 6; i++)
        wsc_free(&u[i]);
    h_chat_free(&c);
}
END_TEST

/* SIGHUP with a changed file (a third worker; _i == 1: metrics on another
 * port too): the old workers drain and go, the counters carry on, during
 * the drain too; a moved metrics port closes and the new one serves. */
START_TEST(test_reload)
{
    static char before[BODY_MAX], during[BODY_MAX], after[BODY_MAX];
    char from[64], to[64];
    struct h_chat c;
    struct wsc a, b;
    int mport = start_with_metrics(&c, 2, "shutdown-timeout 1s\n"), mport2 = mport;
    pid_t old0, old1;

    JOIN(&a, c.port, "ann");
    JOIN(&b, c.port, "ben");
    SEND(&a, "hi");
    EXPECT(&b, "ann: hi");
    ck_assert_int_eq(scrape(mport, before, sizeof(before)), 200);
    old0 = h_child_titled(c.pid, "redis-chat: worker 0");
    old1 = h_child_titled(c.pid, "redis-chat: worker 1");
    ck_assert(old0 != 0 && old1 != 0);

    if (_i == 1) {
        do
            mport2 = h_free_port();
        while (mport2 <= 0 || mport2 == mport);
        snprintf(from, sizeof(from), "metrics-port %d", mport);
        snprintf(to, sizeof(to), "metrics-port %d", mport2);
        fx_conf_rewrite(c.conf, from, to);
    }
    fx_conf_rewrite(c.conf, "workers 2", "workers 3");
    ck_assert_int_eq(kill(c.pid, SIGHUP), 0);
    ASSERT_LOG(h_wait_log(c.log, "reloaded: 3 worker(s)", 5000), c.log);
    /* the old workers still drain: their rows and the new ones' both count */
    ck_assert_int_eq(scrape(mport2, during, sizeof(during)), 200);
    assert_no_counter_went_down(before, during, "during the drain");
    ck_assert_double_eq(metric(during, "redis_chat_joins_total"), 2);
    /* the old workers close their sessions after shutdown-timeout and exit */
    ASSERT_LOG(h_wait_gone(old0, 10000) && h_wait_gone(old1, 10000), c.log);

    ck_assert_int_eq(scrape(mport2, after, sizeof(after)), 200);
    assert_no_counter_went_down(before, after, "after the reload");
    ck_assert_double_eq(metric(after, "redis_chat_joins_total"), 2);
    ck_assert_double_eq(metric(after, "redis_chat_messages_received_total"), 1);
    ck_assert_double_eq(metric(after, "redis_chat_worker_slots"), 3);
    ck_assert_double_eq(metric(after, "redis_chat_worker_joins_total{worker=\"2\"}"), 0);
    /* the drained sessions were closed with 1001 and left */
    ck_assert_double_eq(metric(after, "redis_chat_close_codes_sent_total{code=\"1001\"}"), 2);
    ck_assert_double_eq(metric(after, "redis_chat_leaves_total"), 2);
    ck_assert_double_eq(metric(after, "redis_chat_connections{state=\"open\",transport=\"ws\"}"),
                        0);
    assert_no_counter_went_down(during, after, "after the drain");
    if (_i == 1) /* the old port is closed */
        ck_assert_int_eq(http_raw(mport, "GET /metrics HTTP/1.1\r\n\r\n", after, sizeof(after)),
                         -1);
    wsc_free(&a);
    wsc_free(&b);
    h_chat_free(&c);
}
END_TEST

/* A TCP connection to port that says nothing (-1 on failure). */
static int tcp_open(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd != -1 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* ws:// and wss:// connections are told apart; refusals are counted by
 * reason: the per-address limit, a silent client's handshake timeout. */
START_TEST(test_transports_and_refusals)
{
    struct h_redis tr;
    struct h_chat c;
    struct wsc w, p, extra;
    char conf[1024], cert[320], key[320];
    int mport, tport, fd;

    /* its certificate is the TLS Redis's */
    ck_assert_int_eq(h_redis_start(&tr, 1, NULL), 0);
    snprintf(cert, sizeof(cert), "%s/tls/redis.crt", tr.dir);
    snprintf(key, sizeof(key), "%s/tls/redis.key", tr.dir);
    do
        tport = h_free_port();
    while (tport <= 0);
    do
        mport = h_free_port();
    while (mport <= 0 || mport == tport);
    snprintf(conf, sizeof(conf),
             "metrics-port %d\ntls-port %d\ntls-cert %s\ntls-key %s\n"
             "max-connections-per-ip 2\nhandshake-timeout 300ms\n",
             mport, tport, cert, key);
    fx_chat_ready(&c, &tr, 1, conf);

    ck_assert_int_eq(wsc_tls(tr.ca), 0);
    JOIN(&w, tport, "secure");
    wsc_tls(NULL);
    JOIN(&p, c.port, "plain");
    ck_assert_double_eq(
        scrape_metric(mport, "redis_chat_connections{state=\"open\",transport=\"wss\"}"), 1);
    ck_assert_double_eq(
        scrape_metric(mport, "redis_chat_connections{state=\"open\",transport=\"ws\"}"), 1);
    ck_assert_double_eq(
        scrape_metric(mport, "redis_chat_connections_accepted_total{transport=\"wss\"}"), 1);

    /* a third connection from 127.0.0.1 is over max-connections-per-ip */
    ck_assert_int_eq(wsc_connect(&extra, c.port, "/chat/third", NULL, T_MSG_MS), 429);
    wsc_free(&extra);
    ck_assert(
        wait_metric(mport, "redis_chat_handshakes_refused_total{reason=\"per_ip_limit\"}", 1));
    /* one that says nothing is dropped at handshake-timeout */
    wsc_free(&p);
    ck_assert(wait_metric(mport, "redis_chat_connections{state=\"open\",transport=\"ws\"}", 0));
    fd = tcp_open(c.port);
    ck_assert_int_ne(fd, -1);
    ck_assert(
        wait_metric(mport, "redis_chat_connections{state=\"handshaking\",transport=\"ws\"}", 1));
    ck_assert(wait_metric(mport, "redis_chat_handshakes_refused_total{reason=\"timeout\"}", 1));
    ck_assert_double_eq(
        scrape_metric(mport, "redis_chat_connections{state=\"handshaking\",transport=\"ws\"}"), 0);
    close(fd);
    wsc_free(&w);
    h_chat_free(&c);
    h_redis_free(&tr);
}
END_TEST

/* A client that never reads is dropped at max-pending-bytes: one
 * slow-reader drop, while the sender and a reader go on. */
START_TEST(test_slow_reader_drop)
{
    static char msg[4001], text[4096];
    struct h_chat c;
    struct wsc fast, sink, snd;
    int mport =
            start_with_metrics(&c, 1, "max-pending-bytes 64k\nmax-message-size 8k\nrate-limit 0\n"),
        sent = 0, got = 0, i;

    JOIN(&fast, c.port, "fast");
    ck_assert_int_eq(wsc_connect(&sink, c.port, "/chat/sink", NULL, T_MSG_MS), 101);
    EXPECT(&fast, "sink: has joined the chat!");
    JOIN(&snd, c.port, "snd");
    EXPECT(&fast, "snd: has joined the chat!");
    memset(msg, 'z', sizeof(msg) - 1);
    /* 20 MB at most: far past any socket buffer */
    while (sent < 5000 && !h_file_contains(c.log, "user=sink: slow reader")) {
        for (i = 0; i < 20; i++, sent++)
            SEND(&snd, msg);
        while (got < sent) { /* fast keeps up: only sink falls behind */
            ck_assert_msg(wsc_recv_text(&fast, text, sizeof(text), T_MSG_MS) > 0,
                          "fast: message %d of %d did not come", got, sent);
            got += strncmp(text, "snd: zzz", 8) == 0;
        }
    }
    ASSERT_LOG(h_file_contains(c.log, "user=sink: slow reader"), c.log);
    ck_assert(wait_metric(mport, "redis_chat_drops_total{reason=\"slow_reader\"}", 1));
    ck_assert_double_eq(scrape_metric(mport, "redis_chat_messages_received_total"), sent);
    ck_assert_msg(scrape_metric(mport, "redis_chat_deliveries_total") >= sent,
                  "fast got %d messages", sent);
    wsc_free(&sink);
    wsc_free(&snd);
    wsc_free(&fast);
    h_chat_free(&c);
}
END_TEST

/* The broker's Redis link gauge follows Redis down and up again. */
START_TEST(test_redis_link)
{
    struct h_chat c;
    int mport = start_with_metrics(&c, 1, NULL);
    double reconnects;

    ck_assert_double_eq(scrape_metric(mport, "redis_chat_redis_up"), 1);
    reconnects = scrape_metric(mport, "redis_chat_redis_reconnects_total");
    h_redis_stop(&redis);
    ASSERT_LOG(wait_metric(mport, "redis_chat_redis_up", 0), c.log);
    ck_assert_double_eq(scrape_metric(mport, "redis_chat_worker_broker_link_up{worker=\"0\"}"), 1);
    ck_assert_int_eq(h_redis_restart(&redis), 0);
    ASSERT_LOG(wait_metric(mport, "redis_chat_redis_up", 1), c.log);
    ck_assert_msg(scrape_metric(mport, "redis_chat_redis_reconnects_total") > reconnects,
                  "no reconnect counted");
    h_chat_free(&c);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");

    tcase_add_unchecked_fixture(tc, redis_setup, redis_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_exposition_and_traffic);
    tcase_add_test(tc, test_not_metrics);
    tcase_add_test(tc, test_off_by_default);
    tcase_add_test(tc, test_worker_killed);
    tcase_add_loop_test(tc, test_reload, 0, 2);
    tcase_add_test(tc, test_transports_and_refusals);
    tcase_add_test(tc, test_slow_reader_drop);
    tcase_add_test(tc, test_redis_link);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(metrics_suite());
}
