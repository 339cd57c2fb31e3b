/* check_wss.c -- wss:// in the workers (tls-port, tls-cert, tls-key), end
 * to end with a real TLS client (tests/wsclient.c over OpenSSL, checking
 * the certificate against its CA and 127.0.0.1, offering ALPN http/1.1 as
 * browsers do):
 *   - chat across two instances with wss:// and ws:// clients mixed, plain
 *     and typed; /healthz, the page and /echo over https/wss;
 *   - a TLS handshake that never comes is dropped at handshake-timeout and
 *     does not hold up other clients; garbage on the TLS port is dropped at
 *     once; TLS connections count against max-connections-per-ip;
 *   - SIGHUP with an unchanged config re-reads the certificate: a connected
 *     wss client stays and chats on, new handshakes get the new certificate;
 *     a certificate that does not load is logged and the old one kept;
 *   - tls-ca-cert: only clients with a certificate that CA signed get in;
 *   - a config whose certificate does not load is refused at start (-t).
 * The server certificates are the test Redis's (tests/redis-tls.sh: a CA
 * and a certificate for 127.0.0.1) or made here with the openssl CLI. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define PASSWORD "s3cret"
#define PROTO_HEADER "Sec-WebSocket-Protocol: redis-chat.v1"
#define T_MSG_MS 3000
#define TEXT_MAX 512

/* exec argv from literals */
#define U(s) ((char *)(uintptr_t)(const char *)(s))
#define JOIN(c, port, name) fx_join((c), (port), (name), NULL, __LINE__)

/* Start an instance with a wss:// listener on a free port; *tls_port gets it. */
static void start_wss(struct h_chat *c, const struct h_redis *r, const char *cert, const char *key,
                      const char *extra, int *tls_port)
{
    char conf[2048];
    int port = h_free_port();

    /* both ports picked here: two picks of a free port can be the same one */
    do
        *tls_port = h_free_port();
    while (*tls_port == port);
    snprintf(conf, sizeof(conf), "port %d\ntls-port %d\ntls-cert %s\ntls-key %s\n%s", port,
             *tls_port, cert, key, extra ? extra : "");
    fx_chat_ready(c, r, 2, conf);
}

/* A wss:// client in the default room (TLS on for this connection only). */
static void join_wss(struct wsc *c, int tls_port, const char *ca, const char *name,
                     const char *headers)
{
    ck_assert_int_eq(wsc_tls(ca), 0);
    fx_join(c, tls_port, name, headers, __LINE__);
    wsc_tls(NULL);
}

/* A TCP connection to port that says nothing. */
static int tcp_open(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ne(fd, -1);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* ms until the server closes fd (EOF or reset), or -1 when it did not
 * within timeout_ms. */
static long long closed_within(int fd, int timeout_ms)
{
    long long t0 = h_now_ms();
    char junk[256];

    while (h_now_ms() - t0 < timeout_ms) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;

        if (poll(&p, 1, 50) <= 0)
            continue;
        n = recv(fd, junk, sizeof(junk), 0);
        if (n == 0 || (n == -1 && errno == ECONNRESET))
            return h_now_ms() - t0;
    }
    return -1;
}

static int run_openssl(char *const argv[])
{
    char out[2048];
    int rc = h_run(out, sizeof(out), 20000, argv);

    if (rc != 0)
        fprintf(stderr, "openssl failed (%d): %s\n", rc, out);
    return rc;
}

/* A self-signed certificate for IP 127.0.0.1 named cn, into dir/name.{crt,key}. */
static void make_cert(const char *dir, const char *name, const char *cn)
{
    char crt[512], key[512], subj[128];
    char *argv[] = {U("openssl"), U("req"), U("-x509"), U("-newkey"), U("ec"), U("-pkeyopt"),
                    U("ec_paramgen_curve:prime256v1"), U("-nodes"), U("-keyout"), key, U("-out"),
                    crt, U("-days"), U("2"), U("-subj"), subj, U("-addext"),
                    U("subjectAltName=IP:127.0.0.1"), NULL};

    snprintf(crt, sizeof(crt), "%s/%s.crt", dir, name);
    snprintf(key, sizeof(key), "%s/%s.key", dir, name);
    snprintf(subj, sizeof(subj), "/CN=%s", cn);
    ck_assert_int_eq(run_openssl(argv), 0);
}

static void copy_file(const char *from, const char *to)
{
    char buf[8192];
    FILE *in = fopen(from, "rb"), *out;
    size_t n;

    ck_assert_ptr_nonnull(in);
    out = fopen(to, "wb");
    ck_assert_ptr_nonnull(out);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

static void append_file(const char *from, FILE *out)
{
    char buf[8192];
    FILE *in = fopen(from, "rb");
    size_t n;

    ck_assert_ptr_nonnull(in);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
}

/* A new wss:// connection as `name`: 1 when the server presented the
 * certificate named cn. */
static int new_conn_sees_cn(int tls_port, const char *ca, const char *name, const char *want)
{
    struct wsc c;
    char path[128], cn[128] = "";
    int ok;

    snprintf(path, sizeof(path), "/chat/%s", name);
    ck_assert_int_eq(wsc_tls(ca), 0);
    ok = wsc_connect(&c, tls_port, path, NULL, T_MSG_MS) == 101 &&
         wsc_tls_peer_cn(&c, cn, sizeof(cn)) == 0 && strcmp(cn, want) == 0;
    if (!ok)
        fprintf(stderr, "%s: certificate \"%s\", want \"%s\"\n", name, cn, want);
    wsc_free(&c);
    wsc_tls(NULL);
    return ok;
}

/* ---- chat over wss:// ---------------------------------------------------------- */

/* Two instances: alice (wss, plain) on A, bob (wss, typed) and carol (ws)
 * on B. Every message reaches the others whatever their transport. */
START_TEST(test_chat_over_wss)
{
    struct h_redis r;
    struct h_chat a, b;
    struct wsc alice, bob, carol;
    char cert[400], key[400], text[TEXT_MAX], cn[128];
    int tls_a, tls_b;

    ck_assert_int_eq(h_redis_start(&r, 1, PASSWORD), 0);
    snprintf(cert, sizeof(cert), "%s/tls/redis.crt", r.dir);
    snprintf(key, sizeof(key), "%s/tls/redis.key", r.dir);
    start_wss(&a, &r, cert, key, NULL, &tls_a);
    start_wss(&b, &r, cert, key, NULL, &tls_b);

    join_wss(&alice, tls_a, r.ca, "alice", NULL);
    ck_assert_int_eq(wsc_tls_peer_cn(&alice, cn, sizeof(cn)), 0);
    ck_assert_ptr_nonnull(alice.ssl);
    ck_assert_int_eq(wsc_tls(r.ca), 0);
    ck_assert_int_eq(wsc_connect(&bob, tls_b, "/chat/bob", PROTO_HEADER, T_MSG_MS), 101);
    wsc_tls(NULL);
    ck_assert_str_eq(bob.protocol, "redis-chat.v1");
    ck_assert_int_gt(wsc_recv_text(&bob, text, sizeof(text), T_MSG_MS), 0);
    ck_assert_msg(strstr(text, "\"type\":\"welcome\"") != NULL, "bob got %s", text);
    JOIN(&carol, b.port, "carol");
    ck_assert_ptr_null(carol.ssl);
    fx_drain(&alice);
    fx_drain(&bob);
    fx_drain(&carol);

    ck_assert_int_eq(wsc_send_text(&alice, "hello over tls"), 0);
    ck_assert(wsc_expect_text(&carol, "alice: hello over tls", T_MSG_MS));
    ck_assert_int_gt(wsc_recv_text(&bob, text, sizeof(text), T_MSG_MS), 0);
    ck_assert_msg(strstr(text, "\"type\":\"message\"") && strstr(text, "\"user\":\"alice\"") &&
                      strstr(text, "hello over tls"),
                  "bob got %s", text);

    ck_assert_int_eq(wsc_send_text(&bob, "{\"type\":\"send\",\"text\":\"typed over tls\"}"),
                     0);
    ck_assert(wsc_expect_text(&alice, "bob: typed over tls", T_MSG_MS));
    ck_assert(wsc_expect_text(&carol, "bob: typed over tls", T_MSG_MS));

    ck_assert_int_eq(wsc_send_text(&carol, "plain to tls"), 0);
    ck_assert(wsc_expect_text(&alice, "carol: plain to tls", T_MSG_MS));

    /* a message of several TLS records' worth of frames arrives whole */
    {
        static char big[4000], got[4200];
        memset(big, 'x', sizeof(big) - 1);
        ck_assert_int_eq(wsc_send_text(&carol, big), 0);
        ck_assert_int_eq(wsc_recv_text(&alice, got, sizeof(got), T_MSG_MS),
                         (int)strlen("carol: ") + (int)sizeof(big) - 1);
        ck_assert(strncmp(got, "carol: xxx", 10) == 0);
    }

    wsc_free(&alice);
    ck_assert(wsc_expect_text(&carol, "alice: has left the chat!", T_MSG_MS));
    wsc_free(&bob);
    wsc_free(&carol);
    h_chat_free(&a);
    h_chat_free(&b);
    h_redis_free(&r);
}
END_TEST

/* The HTTP side over TLS: /healthz, the page, /echo. */
START_TEST(test_http_and_echo_over_wss)
{
    struct h_redis r;
    struct h_chat a;
    struct wsc c;
    char cert[400], key[400], text[TEXT_MAX];
    int tls_a;

    ck_assert_int_eq(h_redis_start(&r, 1, PASSWORD), 0);
    snprintf(cert, sizeof(cert), "%s/tls/redis.crt", r.dir);
    snprintf(key, sizeof(key), "%s/tls/redis.key", r.dir);
    start_wss(&a, &r, cert, key, "echo-endpoint yes\n", &tls_a);

    ck_assert_int_eq(wsc_tls(r.ca), 0);
    ck_assert_int_eq(wsc_connect_raw(&c, tls_a, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", T_MSG_MS),
                     200);
    wsc_free(&c);
    ck_assert_int_eq(wsc_connect_raw(&c, tls_a,
                                     "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n",
                                     T_MSG_MS),
                     200);
    ck_assert_ptr_nonnull(strstr(c.head, "text/html"));
    wsc_free(&c);
    ck_assert_int_eq(wsc_connect(&c, tls_a, "/echo", NULL, T_MSG_MS), 101);
    ck_assert_int_eq(wsc_send_text(&c, "echo through tls"), 0);
    ck_assert_int_gt(wsc_recv_text(&c, text, sizeof(text), T_MSG_MS), 0);
    ck_assert_str_eq(text, "echo through tls");
    wsc_free(&c);
    /* no such route: the status comes over TLS too */
    ck_assert_int_eq(wsc_connect(&c, tls_a, "/nowhere", NULL, T_MSG_MS), 404);
    wsc_free(&c);
    wsc_tls(NULL);
    h_chat_free(&a);
    h_redis_free(&r);
}
END_TEST

/* ---- handshakes ------------------------------------------------------------- */

/* A client that connects to the TLS port and says nothing is dropped at
 * handshake-timeout, and meanwhile others get through; a client that
 * speaks plain HTTP to it is dropped at once. */
START_TEST(test_slow_and_broken_handshakes)
{
    struct h_redis r;
    struct h_chat a;
    struct wsc alice;
    char cert[400], key[400];
    long long ms, t0;
    int tls_a, silent, garbage;

    ck_assert_int_eq(h_redis_start(&r, 1, PASSWORD), 0);
    snprintf(cert, sizeof(cert), "%s/tls/redis.crt", r.dir);
    snprintf(key, sizeof(key), "%s/tls/redis.key", r.dir);
    start_wss(&a, &r, cert, key, "handshake-timeout 3s\n", &tls_a);

    /* (the bounds leave room for valgrind, which slows every handshake) */
    t0 = h_now_ms();
    silent = tcp_open(tls_a);
    join_wss(&alice, tls_a, r.ca, "alice", NULL);
    ck_assert_msg(h_now_ms() - t0 < 2500, "a silent handshake held up another for %lld ms",
                  h_now_ms() - t0);
    ms = closed_within(silent, 8000);
    ck_assert_msg(ms >= 2000 && ms <= 6000, "the silent connection closed after %lld ms", ms);
    ck_assert(h_wait_log(a.log, "TLS handshake timeout", 2000));
    close(silent);

    garbage = tcp_open(tls_a);
    ck_assert_int_eq(send(garbage, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, 0), 27);
    ms = closed_within(garbage, 3000);
    ck_assert_msg(ms >= 0 && ms < 500, "plain HTTP on the TLS port: closed after %lld ms", ms);
    ck_assert(h_wait_log(a.log, "TLS handshake failed", 2000));
    close(garbage);

    /* alice chats on */
    ck_assert_int_eq(wsc_send_text(&alice, "still here"), 0);
    ck_assert(wsc_no_text(&alice, 200));
    ck_assert_int_eq(alice.eof, 0);
    wsc_free(&alice);
    h_chat_free(&a);
    h_redis_free(&r);
}
END_TEST

/* Handshakes in progress count against max-connections-per-ip. */
START_TEST(test_per_ip_limit_counts_tls)
{
    struct h_redis r;
    struct h_chat a;
    struct wsc c;
    char cert[400], key[400];
    int tls_a, s1, s2;

    ck_assert_int_eq(h_redis_start(&r, 1, PASSWORD), 0);
    snprintf(cert, sizeof(cert), "%s/tls/redis.crt", r.dir);
    snprintf(key, sizeof(key), "%s/tls/redis.key", r.dir);
    start_wss(&a, &r, cert, key, "max-connections-per-ip 2\nhandshake-timeout 1s\n", &tls_a);
    s1 = tcp_open(tls_a);
    s2 = tcp_open(tls_a);
    h_sleep_ms(200); /* both accepted */
    ck_assert_int_eq(wsc_tls(r.ca), 0);
    ck_assert_int_lt(wsc_connect(&c, tls_a, "/chat/third", NULL, T_MSG_MS), 0);
    wsc_free(&c);
    ck_assert(h_wait_log(a.log, "wss:// connection refused (429", 2000));
    ck_assert_int_ge(closed_within(s1, 4000), 0); /* at handshake-timeout */
    ck_assert_int_ge(closed_within(s2, 4000), 0);
    close(s1);
    close(s2);
    h_sleep_ms(100);
    ck_assert_int_eq(wsc_connect(&c, tls_a, "/chat/fourth", NULL, T_MSG_MS), 101);
    wsc_free(&c);
    wsc_tls(NULL);
    h_chat_free(&a);
    h_redis_free(&r);
}
END_TEST

/* ---- certificates ------------------------------------------------------------- */

/* SIGHUP, same config, new files: the workers stay, alice stays, new
 * handshakes get the new certificate; a broken one is refused and the
 * last good one stays. */
START_TEST(test_cert_reload)
{
    struct h_redis r;
    struct h_chat a;
    struct wsc alice, bob;
    char dir[256], ca[320], live_crt[320], live_key[320], p1[320], p2[320], cn[128];
    pid_t w0;
    int tls_a;
    FILE *f;

    ck_assert_int_eq(h_redis_start(&r, 0, NULL), 0);
    ck_assert_int_eq(h_tmpdir(dir, sizeof(dir)), 0);
    make_cert(dir, "one", "rc-one");
    make_cert(dir, "two", "rc-two");
    snprintf(ca, sizeof(ca), "%s/both.pem", dir);
    f = fopen(ca, "w");
    ck_assert_ptr_nonnull(f);
    snprintf(p1, sizeof(p1), "%s/one.crt", dir);
    snprintf(p2, sizeof(p2), "%s/two.crt", dir);
    append_file(p1, f);
    append_file(p2, f);
    fclose(f);
    snprintf(live_crt, sizeof(live_crt), "%s/live.crt", dir);
    snprintf(live_key, sizeof(live_key), "%s/live.key", dir);
    copy_file(p1, live_crt);
    snprintf(p1, sizeof(p1), "%s/one.key", dir);
    copy_file(p1, live_key);

    start_wss(&a, &r, live_crt, live_key, NULL, &tls_a);
    w0 = h_child_titled(a.pid, "redis-chat: worker 0");
    join_wss(&alice, tls_a, ca, "alice", NULL);
    ck_assert_int_eq(wsc_tls_peer_cn(&alice, cn, sizeof(cn)), 0);
    ck_assert_str_eq(cn, "rc-one");
    JOIN(&bob, a.port, "bob");
    fx_drain(&alice);

    /* renewed: new files under the same names, SIGHUP */
    copy_file(p2, live_crt);
    snprintf(p2, sizeof(p2), "%s/two.key", dir);
    copy_file(p2, live_key);
    ck_assert_int_eq(kill(a.pid, SIGHUP), 0);
    ck_assert(h_wait_count(a.log, "certificate and key re-read", 2, 3000));
    ck_assert(h_file_contains(a.log, "configuration unchanged"));
    ck_assert_int_eq(h_child_titled(a.pid, "redis-chat: worker 0"), w0);
    ck_assert(new_conn_sees_cn(tls_a, ca, "carol", "rc-two"));
    /* alice, on her old session, chats on */
    fx_drain(&alice);
    fx_drain(&bob);
    ck_assert_int_eq(wsc_send_text(&alice, "after the renewal"), 0);
    ck_assert(wsc_expect_text(&bob, "alice: after the renewal", T_MSG_MS));
    ck_assert_int_eq(wsc_send_text(&bob, "seen"), 0);
    ck_assert(wsc_expect_text(&alice, "bob: seen", T_MSG_MS));

    /* a broken certificate: refused, the last good one stays */
    f = fopen(live_crt, "w");
    ck_assert_ptr_nonnull(f);
    fputs("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    ck_assert_int_eq(kill(a.pid, SIGHUP), 0);
    ck_assert(h_wait_log(a.log, "reload failed, keeping the running configuration: tls-cert", 3000));
    ck_assert(new_conn_sees_cn(tls_a, ca, "dave", "rc-two"));
    fx_drain(&alice);
    fx_drain(&bob);
    ck_assert_int_eq(wsc_send_text(&alice, "still up"), 0);
    ck_assert(wsc_expect_text(&bob, "alice: still up", T_MSG_MS));

    wsc_free(&alice);
    wsc_free(&bob);
    h_chat_free(&a);
    h_redis_free(&r);
    h_rmrf(dir);
}
END_TEST

/* tls-ca-cert: a client without a certificate, or with one another CA
 * signed, fails its handshake; one the CA signed chats. */
START_TEST(test_client_certificates)
{
    struct h_redis r;
    struct h_chat a;
    struct wsc c;
    char dir[256], cert[400], key[400], ca_key[400], csr[320], crt[320], ckey[320], serial[320];
    char extra[600];
    char *req[] = {U("openssl"), U("req"), U("-newkey"), U("ec"), U("-pkeyopt"),
                   U("ec_paramgen_curve:prime256v1"), U("-nodes"), U("-keyout"), ckey,
                   U("-out"), csr, U("-subj"), U("/CN=rc-client"), NULL};
    char *sign[] = {U("openssl"), U("x509"), U("-req"), U("-in"), csr, U("-CA"), r.ca,
                    U("-CAkey"), ca_key, U("-CAserial"), serial, U("-CAcreateserial"), U("-out"),
                    crt, U("-days"), U("2"), NULL};
    char other_crt[320], other_key[320];
    int tls_a;

    ck_assert_int_eq(h_redis_start(&r, 1, PASSWORD), 0);
    ck_assert_int_eq(h_tmpdir(dir, sizeof(dir)), 0);
    snprintf(cert, sizeof(cert), "%s/tls/redis.crt", r.dir);
    snprintf(key, sizeof(key), "%s/tls/redis.key", r.dir);
    snprintf(ca_key, sizeof(ca_key), "%s/tls/ca.key", r.dir);
    snprintf(csr, sizeof(csr), "%s/client.csr", dir);
    snprintf(crt, sizeof(crt), "%s/client.crt", dir);
    snprintf(ckey, sizeof(ckey), "%s/client.key", dir);
    snprintf(serial, sizeof(serial), "%s/ca.srl", dir);
    ck_assert_int_eq(run_openssl(req), 0);
    ck_assert_int_eq(run_openssl(sign), 0);
    make_cert(dir, "other", "rc-other"); /* self-signed: not the CA's */
    snprintf(other_crt, sizeof(other_crt), "%s/other.crt", dir);
    snprintf(other_key, sizeof(other_key), "%s/other.key", dir);
    snprintf(extra, sizeof(extra), "tls-ca-cert %s\n", r.ca);
    start_wss(&a, &r, cert, key, extra, &tls_a);

    ck_assert_int_eq(wsc_tls(r.ca), 0);
    ck_assert_int_lt(wsc_connect(&c, tls_a, "/chat/nocert", NULL, T_MSG_MS), 0);
    wsc_free(&c);
    ck_assert(h_wait_log(a.log, "TLS handshake failed", 2000));
    ck_assert_int_eq(wsc_tls_cert(other_crt, other_key), 0);
    ck_assert_int_lt(wsc_connect(&c, tls_a, "/chat/othercert", NULL, T_MSG_MS), 0);
    wsc_free(&c);
    ck_assert_int_eq(wsc_tls(r.ca), 0);
    ck_assert_int_eq(wsc_tls_cert(crt, ckey), 0);
    ck_assert_int_eq(wsc_connect(&c, tls_a, "/chat/withcert", NULL, T_MSG_MS), 101);
    ck_assert(wsc_expect_text(&c, "Welcome withcert!", T_MSG_MS));
    wsc_free(&c);
    wsc_tls(NULL);
    h_chat_free(&a);
    h_redis_free(&r);
    h_rmrf(dir);
}
END_TEST

/* A certificate that does not load, a key that does not match, tls-port
 * without files: refused before anything starts. */
START_TEST(test_bad_tls_config)
{
    char dir[256], conf[320], out[2048], a_crt[320], b_key[320], line[1200];
    const char *chat = getenv("REDIS_CHAT");
    char *argv[] = {U(chat ? chat : "./redis-chat"), U("-t"), U("-c"), conf, NULL};
    FILE *f;

    ck_assert_int_eq(h_tmpdir(dir, sizeof(dir)), 0);
    make_cert(dir, "a", "rc-a");
    make_cert(dir, "b", "rc-b");
    snprintf(conf, sizeof(conf), "%s/c.conf", dir);
    snprintf(a_crt, sizeof(a_crt), "%s/a.crt", dir);
    snprintf(b_key, sizeof(b_key), "%s/b.key", dir);

    snprintf(line, sizeof(line), "port 1\ntls-port 2\ntls-cert %s/missing.crt\ntls-key %s\n", dir,
             b_key);
    f = fopen(conf, "w");
    fputs(line, f);
    fclose(f);
    ck_assert_int_ne(h_run(out, sizeof(out), 5000, argv), 0);
    ck_assert_msg(strstr(out, "tls-cert") && strstr(out, "cannot load"), "%s", out);

    snprintf(line, sizeof(line), "port 1\ntls-port 2\ntls-cert %s\ntls-key %s\n", a_crt, b_key);
    f = fopen(conf, "w");
    fputs(line, f);
    fclose(f);
    ck_assert_int_ne(h_run(out, sizeof(out), 5000, argv), 0);
    ck_assert_msg(strstr(out, "tls-key") && strstr(out, "mismatch"), "%s", out);

    f = fopen(conf, "w");
    fputs("port 1\ntls-port 2\n", f);
    fclose(f);
    ck_assert_int_ne(h_run(out, sizeof(out), 5000, argv), 0);
    ck_assert_msg(strstr(out, "tls-port: needs tls-cert and tls-key"), "%s", out);
    h_rmrf(dir);
}
END_TEST

static Suite *wss_suite(void)
{
    Suite *s = suite_create("wss");
    TCase *tc = tcase_create("wss");

    tcase_add_unchecked_fixture(tc, fx_tmp_enter, fx_tmp_leave);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_chat_over_wss);
    tcase_add_test(tc, test_http_and_echo_over_wss);
    tcase_add_test(tc, test_slow_and_broken_handshakes);
    tcase_add_test(tc, test_per_ip_limit_counts_tls);
    tcase_add_test(tc, test_cert_reload);
    tcase_add_test(tc, test_client_certificates);
    tcase_add_test(tc, test_bad_tls_config);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(wss_suite());
}
