/* check_wsclient.c -- the test WebSocket client (tests/wsclient.c) against a
 * real, independent peer: a node `ws` server (the module wscat ships).
 *
 * The server script is written to a temp dir at startup; it echoes text and
 * binary, and obeys a few commands (send a ping, fragment, close, write raw
 * bytes) so both directions of the protocol are exercised, including the
 * client's checks of malformed server frames. Skips (exit 77) without node
 * or the ws module. Links tests/wsclient.c and tests/harness.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../check_run.h"
#include "../harness.h"
#include "../wsclient.h"

#define T_MS 3000

static const char echo_js[] =
    "const WebSocket = require('ws');\n"
    "const wss = new WebSocket.Server({ host: '127.0.0.1', port: +process.argv[2],\n"
    "                                   perMessageDeflate: false });\n"
    "wss.on('listening', () => console.log('listening'));\n"
    "wss.on('connection', (ws, req) => {\n"
    "  ws.send('path:' + req.url + ' x-test:' + (req.headers['x-test'] || '') +\n"
    "          ' x-two:' + (req.headers['x-two'] || ''));\n"
    "  ws.on('pong', (d) => ws.send('pong:' + d.toString()));\n"
    "  ws.on('error', (e) => console.log('error: ' + e.message));\n"
    "  ws.on('close', (code, r) => console.log('closed ' + code + ' ' + r));\n"
    "  ws.on('message', (d, bin) => {\n"
    "    if (bin) return ws.send(d, { binary: true });\n"
    "    const s = d.toString();\n"
    "    if (s === 'ping-me') return ws.ping('hello');\n"
    "    if (s === 'frag-me') {\n"
    "      ws.send('abc', { fin: false }); ws.ping('mid'); ws.send('def', { fin: true });\n"
    "      return;\n"
    "    }\n"
    "    if (s === 'close-me') return ws.close(4001, 'bye');\n"
    "    if (s === 'binary-then-text') {\n"
    "      ws.send(Buffer.from([1, 2, 3]), { binary: true }); return ws.send('after-binary');\n"
    "    }\n"
    "    if (s.startsWith('big:')) return ws.send('x'.repeat(+s.slice(4)));\n"
    "    if (s.startsWith('raw:')) return ws._socket.write(Buffer.from(s.slice(4), 'hex'));\n"
    "    if (s === 'silent') return;\n"
    "    ws.send(s);\n"
    "  });\n"
    "});\n";

static char node_dir[256];
static pid_t node_pid;
static int node_port;

/* Directory holding the ws module (for NODE_PATH), or NULL. */
static const char *find_ws_module(void)
{
    static const char *const dirs[] = {
        "/usr/lib/node_modules/wscat/node_modules",
        "/usr/local/lib/node_modules/wscat/node_modules",
        "/usr/lib/node_modules",
        "/usr/local/lib/node_modules",
    };
    static char found[512];
    char *npm[] = { (char[]){ "npm" }, (char[]){ "root" }, (char[]){ "-g" }, NULL };
    char path[600], out[400];
    size_t i;

    if (getenv("WS_NODE_PATH") != NULL)
        return getenv("WS_NODE_PATH");
    for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/ws/package.json", dirs[i]);
        if (access(path, R_OK) == 0)
            return dirs[i];
    }
    if (h_run(out, sizeof(out), 10000, npm) != 0)
        return NULL;
    out[strcspn(out, "\n")] = '\0';
    snprintf(found, sizeof(found), "%s/wscat/node_modules", out);
    snprintf(path, sizeof(path), "%s/ws/package.json", found);
    return access(path, R_OK) == 0 ? found : NULL;
}

static void node_start(void)
{
    char script[320], log[320], port[16];
    char *version[] = { (char[]){ "node" }, (char[]){ "--version" }, NULL };
    const char *modules = find_ws_module();
    FILE *f;

    if (modules == NULL || h_run(NULL, 0, 10000, version) != 0) {
        fprintf(stderr, "check_wsclient: node or its ws module not found: skipped\n");
        exit(77);
    }
    ck_assert_int_eq(h_tmpdir(node_dir, sizeof(node_dir)), 0);
    snprintf(script, sizeof(script), "%s/echo.js", node_dir);
    snprintf(log, sizeof(log), "%s/node.log", node_dir);
    f = fopen(script, "w");
    ck_assert_ptr_nonnull(f);
    fputs(echo_js, f);
    fclose(f);
    node_port = h_free_port();
    snprintf(port, sizeof(port), "%d", node_port);
    node_pid = fork();
    ck_assert_int_ne(node_pid, -1);
    if (node_pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, 1);
        dup2(fd, 2);
        setenv("NODE_PATH", modules, 1);
        execlp("node", "node", script, port, (char *)NULL);
        _exit(errno == ENOENT ? 77 : 127);
    }
    if (!h_wait_log(log, "listening", 10000)) {
        h_dump_tail(log, 20);
        kill(node_pid, SIGKILL);
        waitpid(node_pid, NULL, 0);
        fprintf(stderr, "check_wsclient: node echo server did not start: skipped\n");
        exit(77);
    }
}

static void node_stop(void)
{
    int st;

    kill(node_pid, SIGTERM);
    if (h_wait_exit(node_pid, 5000, &st) != 1) {
        kill(node_pid, SIGKILL);
        h_wait_exit(node_pid, 5000, &st);
    }
    h_rmrf(node_dir);
}

/* Connect and read the server's greeting. */
static void open_ws(struct wsc *c)
{
    ck_assert_int_eq(wsc_connect(c, node_port, "/chat/alice", NULL, T_MS), 101);
    ck_assert(wsc_expect_text(c, "path:/chat/alice x-test: x-two:", T_MS));
}

START_TEST(test_handshake_headers)
{
    struct wsc c;

    ck_assert_int_eq(wsc_connect(&c, node_port, "/x?y=1", "X-Test: 42\nX-Two: b\r\n", T_MS), 101);
    ck_assert_int_eq(c.status, 101);
    ck_assert_ptr_nonnull(strstr(c.head, "HTTP/1.1 101"));
    /* the greeting follows the head, often in the same segment */
    ck_assert(wsc_expect_text(&c, "path:/x?y=1 x-test:42 x-two:b", T_MS));
    wsc_free(&c);
}
END_TEST

/* ws answers with the first subprotocol offered; none offered, none named */
START_TEST(test_subprotocol)
{
    struct wsc c;

    ck_assert_int_eq(wsc_connect(&c, node_port, "/p", "Sec-WebSocket-Protocol: one.v1, two", T_MS),
                     101);
    ck_assert_str_eq(c.protocol, "one.v1");
    wsc_free(&c);
    ck_assert_int_eq(wsc_connect(&c, node_port, "/p", NULL, T_MS), 101);
    ck_assert_str_eq(c.protocol, "");
    wsc_free(&c);
}
END_TEST

START_TEST(test_echo_text_utf8)
{
    struct wsc c;
    char buf[64];

    open_ws(&c);
    ck_assert_int_eq(wsc_send_text(&c, "hello"), 0);
    ck_assert(wsc_expect_text(&c, "hello", T_MS));
    ck_assert_int_eq(wsc_send_text(&c, "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80"), 0);
    ck_assert_int_eq(wsc_recv_text(&c, buf, sizeof(buf), T_MS), 15);
    ck_assert_str_eq(buf, "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80");
    /* truncated copy, full length returned */
    ck_assert_int_eq(wsc_send_text(&c, "0123456789"), 0);
    ck_assert_int_eq(wsc_recv_text(&c, buf, 5, T_MS), 10);
    ck_assert_str_eq(buf, "0123");
    wsc_free(&c);
}
END_TEST

START_TEST(test_client_fragments)
{
    struct wsc c;

    open_ws(&c);
    ck_assert_int_eq(wsc_send_frame(&c, 0, 0, WSC_OP_TEXT, "hel", 3, 1), 0);
    ck_assert_int_eq(wsc_send_frame(&c, 1, 0, WSC_OP_PING, "mid", 3, 1), 0);
    ck_assert_int_eq(wsc_send_frame(&c, 0, 0, WSC_OP_CONT, "lo ", 3, 1), 0);
    ck_assert_int_eq(wsc_send_frame(&c, 1, 0, WSC_OP_CONT, "world", 5, 1), 0);
    /* the pong for "mid" comes first and is skipped */
    ck_assert(wsc_expect_text(&c, "hello world", T_MS));
    wsc_free(&c);
}
END_TEST

START_TEST(test_server_fragments_and_pings)
{
    struct wsc c;
    struct wsc_frame f;

    open_ws(&c);
    ck_assert_int_eq(wsc_send_text(&c, "frag-me"), 0);
    /* text(fin=0) ping cont(fin=1): reassembled, the ping answered */
    ck_assert(wsc_expect_text(&c, "abcdef", T_MS));
    ck_assert(wsc_expect_text(&c, "pong:mid", T_MS));
    ck_assert_int_eq(wsc_send_text(&c, "ping-me"), 0);
    ck_assert(wsc_expect_text(&c, "pong:hello", T_MS));
    /* raw frame level: our ping, its pong */
    ck_assert_int_eq(wsc_send_frame(&c, 1, 0, WSC_OP_PING, "p1", 2, 1), 0);
    ck_assert_int_eq(wsc_recv_frame(&c, &f, T_MS), 1);
    ck_assert_int_eq(f.opcode, WSC_OP_PONG);
    ck_assert_int_eq(f.fin, 1);
    ck_assert_uint_eq(f.len, 2);
    ck_assert(memcmp(f.payload, "p1", 2) == 0);
    ck_assert_int_eq(wsc_send_text(&c, "frag-me"), 0);
    ck_assert_int_eq(wsc_recv_frame(&c, &f, T_MS), 1);
    ck_assert_int_eq(f.opcode, WSC_OP_TEXT);
    ck_assert_int_eq(f.fin, 0);
    ck_assert_int_eq(wsc_recv_frame(&c, &f, T_MS), 1);
    ck_assert_int_eq(f.opcode, WSC_OP_PING);
    ck_assert_int_eq(wsc_recv_frame(&c, &f, T_MS), 1);
    ck_assert_int_eq(f.opcode, WSC_OP_CONT);
    ck_assert_int_eq(f.fin, 1);
    wsc_free(&c);
}
END_TEST

START_TEST(test_sizes_and_binary)
{
    static const size_t sizes[] = { 0, 125, 126, 65535, 65536, 1 << 20 };
    struct wsc c;
    char cmd[32], *big = malloc((1 << 20) + 1);
    size_t i;

    ck_assert_ptr_nonnull(big);
    open_ws(&c);
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        snprintf(cmd, sizeof(cmd), "big:%zu", sizes[i]);
        ck_assert_int_eq(wsc_send_text(&c, cmd), 0);
        ck_assert_int_eq(wsc_recv_text(&c, big, (1 << 20) + 1, T_MS), (int)sizes[i]);
        ck_assert_int_eq(c.timed_out, 0);
        ck_assert_uint_eq(strspn(big, "x"), sizes[i]);
    }
    /* client -> server lengths: 16- and 64-bit encodings, echoed */
    memset(big, 'y', 1 << 20);
    big[70000] = '\0';
    ck_assert_int_eq(wsc_send_text(&c, big), 0);
    ck_assert(wsc_expect_text(&c, big, T_MS));
    big[1 << 20] = '\0';
    ck_assert_int_eq(wsc_send_text(&c, big), 0);
    ck_assert(wsc_expect_text(&c, big, T_MS));
    ck_assert_int_eq(wsc_send_text(&c, "binary-then-text"), 0);
    ck_assert(wsc_expect_text(&c, "after-binary", T_MS));
    free(big);
    wsc_free(&c);
}
END_TEST

START_TEST(test_timeouts)
{
    struct wsc c;
    char buf[16];
    long long t0;

    open_ws(&c);
    ck_assert_int_eq(wsc_send_text(&c, "silent"), 0);
    t0 = h_now_ms();
    ck_assert_int_eq(wsc_no_text(&c, 200), 1);
    ck_assert_int_ge(h_now_ms() - t0, 190);
    ck_assert_int_eq(wsc_recv_text(&c, buf, sizeof(buf), 50), 0);
    ck_assert_int_eq(c.timed_out, 1);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(wsc_send_text(&c, "late"), 0);
    ck_assert_int_eq(wsc_no_text(&c, 1000), 0); /* it does come */
    wsc_free(&c);
}
END_TEST

START_TEST(test_close_by_client)
{
    struct wsc c;

    open_ws(&c);
    ck_assert_int_eq(wsc_send_close(&c, 1000, "done"), 0);
    ck_assert_int_eq(wsc_wait_close(&c, T_MS), 1000);
    ck_assert_str_eq(c.close_reason, "done");
    ck_assert_int_eq(c.eof, 1);
    wsc_free(&c);
    open_ws(&c);
    ck_assert_int_eq(wsc_send_close(&c, -1, NULL), 0);
    ck_assert_int_eq(wsc_wait_close(&c, T_MS), WSC_CLOSE_NO_CODE);
    wsc_free(&c);
}
END_TEST

START_TEST(test_close_by_server)
{
    struct wsc c;
    char buf[16];

    open_ws(&c);
    ck_assert_int_eq(wsc_send_text(&c, "close-me"), 0);
    ck_assert_int_eq(wsc_wait_close(&c, T_MS), 4001);
    ck_assert_str_eq(c.close_reason, "bye");
    ck_assert_int_eq(c.close_sent, 1);
    wsc_free(&c);
    /* through recv_text: -1, code kept, echo sent, then EOF */
    open_ws(&c);
    ck_assert_int_eq(wsc_send_text(&c, "close-me"), 0);
    ck_assert_int_eq(wsc_recv_text(&c, buf, sizeof(buf), T_MS), -1);
    ck_assert_int_eq(c.close_code, 4001);
    ck_assert_int_eq(wsc_wait_eof(&c, T_MS), 1);
    ck_assert_int_eq(wsc_wait_close(&c, T_MS), 4001);
    wsc_free(&c);
    /* not answering: ws closes TCP on its own after its close timeout */
    open_ws(&c);
    c.no_close_echo = 1;
    ck_assert_int_eq(wsc_send_text(&c, "close-me"), 0);
    ck_assert_int_eq(wsc_recv_text(&c, buf, sizeof(buf), T_MS), -1);
    ck_assert_int_eq(c.close_sent, 0);
    ck_assert_int_eq(c.close_code, 4001);
    wsc_free(&c);
}
END_TEST

/* A malformed frame from us: the server must close with `code`. */
static void bad_frame(int fin, int rsv, int op, const void *p, size_t n, int masked, int code)
{
    struct wsc c;

    open_ws(&c);
    ck_assert_int_eq(wsc_send_frame(&c, fin, rsv, op, p, n, masked), 0);
    ck_assert_int_eq(wsc_wait_close(&c, T_MS), code);
    wsc_free(&c);
}

START_TEST(test_malformed_client_frames)
{
    char big[200];

    memset(big, 'z', sizeof(big));
    bad_frame(1, 0, WSC_OP_TEXT, "hi", 2, 0, 1002);          /* unmasked */
    bad_frame(1, 4, WSC_OP_TEXT, "hi", 2, 1, 1002);          /* RSV1 */
    bad_frame(1, 0, 3, "hi", 2, 1, 1002);                    /* reserved opcode */
    bad_frame(1, 0, WSC_OP_PING, big, sizeof(big), 1, 1002); /* control > 125 */
    bad_frame(0, 0, WSC_OP_PING, "x", 1, 1, 1002);           /* fragmented control */
    bad_frame(1, 0, WSC_OP_CONT, "x", 1, 1, 1002);           /* stray continuation */
    bad_frame(1, 0, WSC_OP_TEXT, "\xc3\x28", 2, 1, 1007);    /* invalid UTF-8 */
}
END_TEST

START_TEST(test_raw_bytes_split)
{
    /* one masked "hey" frame, written byte by byte */
    static const unsigned char frame[] = { 0x81, 0x83, 1, 2, 3, 4, 'h' ^ 1, 'e' ^ 2, 'y' ^ 3 };
    struct wsc c;
    size_t i;

    open_ws(&c);
    for (i = 0; i < sizeof(frame); i++) {
        ck_assert_int_eq(wsc_send_raw(&c, frame + i, 1), 0);
        h_sleep_ms(2);
    }
    ck_assert(wsc_expect_text(&c, "hey", T_MS));
    wsc_free(&c);
}
END_TEST

/* The server writes hex bytes raw; the client must flag a violation. */
static void server_violation(const char *hex)
{
    struct wsc c;
    char cmd[128], buf[64];

    open_ws(&c);
    snprintf(cmd, sizeof(cmd), "raw:%s", hex);
    ck_assert_int_eq(wsc_send_text(&c, cmd), 0);
    ck_assert_int_eq(wsc_recv_text(&c, buf, sizeof(buf), T_MS), -1);
    ck_assert_msg(c.proto_error == 1, "no violation flagged for %s", hex);
    ck_assert_int_eq(wsc_recv_text(&c, buf, sizeof(buf), 10), -1);
    wsc_free(&c);
}

START_TEST(test_server_violations)
{
    server_violation("81810102030460");         /* masked */
    server_violation("c10161");                 /* RSV1 */
    server_violation("830161");                 /* reserved opcode 3 */
    server_violation("817e000161");             /* 16-bit length for 1 byte */
    server_violation("817f000000000000000161"); /* 64-bit length for 1 byte */
    server_violation("897e007e");               /* ping over 125 bytes */
    server_violation("0900");                   /* fragmented ping */
    server_violation("800161");                 /* continuation without a start */
    server_violation("010161810162");           /* text inside a fragmented text */
    server_violation("8101ff");                 /* text not UTF-8 */
    server_violation("880203ed");               /* close code 1005 on the wire */
    server_violation("880103");                 /* close payload of 1 byte */
}
END_TEST

START_TEST(test_server_frame_after_close)
{
    struct wsc c;
    char buf[16];

    open_ws(&c);
    ck_assert_int_eq(wsc_send_text(&c, "raw:880203e8810161"), 0);
    ck_assert_int_eq(wsc_recv_text(&c, buf, sizeof(buf), T_MS), -1);
    ck_assert_int_eq(c.close_code, 1000);
    ck_assert_int_eq(c.proto_error, 0);
    ck_assert_int_eq(wsc_recv_text(&c, buf, sizeof(buf), T_MS), -1);
    ck_assert_int_eq(c.proto_error, 1);
    ck_assert_int_eq(wsc_wait_eof(&c, T_MS), 1);
    wsc_free(&c);
}
END_TEST

START_TEST(test_bad_handshakes)
{
    struct wsc c;
    int port;

    /* RFC 6455 sample key: our SHA-1/base64 must agree with ws */
    ck_assert_int_eq(wsc_connect_raw(&c, node_port,
                                     "GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                     "Connection: Upgrade\r\n"
                                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                     "Sec-WebSocket-Version: 13\r\n\r\n",
                                     T_MS),
                     101);
    ck_assert_ptr_nonnull(strstr(c.head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    ck_assert(wsc_expect_text(&c, "path:/raw x-test: x-two:", T_MS));
    wsc_free(&c);
    /* no key: 400 with a body */
    ck_assert_int_eq(wsc_connect_raw(&c, node_port,
                                     "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                     "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
                                     T_MS),
                     400);
    ck_assert_uint_gt(c.bodylen, 0);
    ck_assert_int_eq(wsc_wait_eof(&c, T_MS), 1);
    wsc_free(&c);
    /* nobody listening */
    port = h_free_port();
    ck_assert_int_eq(wsc_connect(&c, port, "/", NULL, T_MS), -1);
    wsc_free(&c);
}
END_TEST

/* A one-shot fake server answering any request with `answer`. */
static pid_t fake_server(const char *answer, int *port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), cfd;
    char buf[4096];
    pid_t pid;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    pid = fork();
    if (pid == 0) {
        cfd = accept(fd, NULL, NULL);
        if (cfd != -1 && read(cfd, buf, sizeof(buf)) > 0 && write(cfd, answer, strlen(answer)) > 0)
            h_sleep_ms(500);
        _exit(0);
    }
    close(fd);
    return pid;
}

START_TEST(test_bad_accept)
{
    struct wsc c;
    int port;
    pid_t pid;

    pid = fake_server("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n",
                      &port);
    ck_assert_int_eq(wsc_connect(&c, port, "/", NULL, T_MS), -1);
    ck_assert_int_eq(c.status, 101);
    ck_assert_int_eq(c.proto_error, 1);
    wsc_free(&c);
    ck_assert_int_eq(h_wait_exit(pid, 5000, NULL), 1);
    pid = fake_server("HTTP/1.1 503 Busy\r\nContent-Length: 5\r\n\r\nbusy!extra", &port);
    ck_assert_int_eq(wsc_connect(&c, port, "/", NULL, T_MS), 503);
    ck_assert_str_eq(c.body, "busy!");
    wsc_free(&c);
    ck_assert_int_eq(h_wait_exit(pid, 5000, NULL), 1);
}
END_TEST

static Suite *wsclient_suite(void)
{
    Suite *s = suite_create("wsclient");
    TCase *tc = tcase_create("node-ws");

    tcase_add_unchecked_fixture(tc, node_start, node_stop);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_handshake_headers);
    tcase_add_test(tc, test_subprotocol);
    tcase_add_test(tc, test_echo_text_utf8);
    tcase_add_test(tc, test_client_fragments);
    tcase_add_test(tc, test_server_fragments_and_pings);
    tcase_add_test(tc, test_sizes_and_binary);
    tcase_add_test(tc, test_timeouts);
    tcase_add_test(tc, test_close_by_client);
    tcase_add_test(tc, test_close_by_server);
    tcase_add_test(tc, test_malformed_client_frames);
    tcase_add_test(tc, test_raw_bytes_split);
    tcase_add_test(tc, test_server_violations);
    tcase_add_test(tc, test_server_frame_after_close);
    tcase_add_test(tc, test_bad_handshakes);
    tcase_add_test(tc, test_bad_accept);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(wsclient_suite());
}
