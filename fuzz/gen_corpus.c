/* gen_corpus.c -- writes the seed corpora of the fuzz targets.
 *
 * Run once from the top of the tree (the seeds are kept in git):
 *
 *   clang -Isrc -o /tmp/gen_corpus fuzz/gen_corpus.c src/ipc.c src/base64.c -lcrypto
 *   /tmp/gen_corpus fuzz/corpus
 *
 * IPC seeds are produced by ipc_encode itself; WebSocket seeds are masked
 * client frames behind the fuzz_ws_frames mode bytes (see that file);
 * HTTP and config seeds are small meaningful texts; JWT seeds are tokens
 * signed with fuzz_jwt's key, or JSON for the target to sign (fuzz_jwt.h).
 * The sample config (etc/redis-chat.conf) is copied into the config corpus
 * by hand.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base64.h"
#include "fuzz_jwt.h"
#include "ipc.h"

static const char *gen_top;

static void gen_write(const char *target, const char *name, const void *p, size_t n)
{
    char dir[4096], path[4096];
    FILE *f;

    snprintf(dir, sizeof(dir), "%s/%s", gen_top, target);
    if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
        perror(dir);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void gen_text(const char *target, const char *name, const char *s)
{
    gen_write(target, name, s, strlen(s));
}

/* ---- fuzz_ipc ----------------------------------------------------------- */

static size_t gen_ipc(uint8_t *out, size_t cap, enum ipc_type type, uint32_t id, uint16_t flags,
                      const char *f0, const char *f1, const char *f2)
{
    struct ipc_msg m;
    ssize_t n;

    ipc_msg_set(&m, type, id, flags, f0, f0 ? strlen(f0) : 0, f1, f1 ? strlen(f1) : 0, f2,
                f2 ? strlen(f2) : 0);
    n = ipc_encode(out, cap, &m);
    if (n < 0) {
        fprintf(stderr, "ipc_encode %s: %zd\n", ipc_type_name(type), n);
        exit(1);
    }
    return (size_t)n;
}

static void gen_ipc_corpus(void)
{
    static uint8_t buf[65536];
    static char big[5000];
    size_t n, total = 0;

    n = gen_ipc(buf, sizeof(buf), IPC_HELLO, 2, 0, "chat", "4711", NULL);
    gen_write("fuzz_ipc", "hello", buf, n);
    n = gen_ipc(buf, sizeof(buf), IPC_JOIN, 1, 0, "chat", "foo", NULL);
    gen_write("fuzz_ipc", "join", buf, n);
    n = gen_ipc(buf, sizeof(buf), IPC_JOIN_REPLY, 1, IPC_JOIN_ACCEPTED, "chat", "foo", NULL);
    gen_write("fuzz_ipc", "join_reply_accepted", buf, n);
    n = gen_ipc(buf, sizeof(buf), IPC_JOIN_REPLY, 3, IPC_JOIN_UNAVAILABLE, "chat", "foo", NULL);
    gen_write("fuzz_ipc", "join_reply_unavailable", buf, n);
    n = gen_ipc(buf, sizeof(buf), IPC_LEAVE, 0, 0, "chat", "foo", NULL);
    gen_write("fuzz_ipc", "leave", buf, n);
    n = gen_ipc(buf, sizeof(buf), IPC_PUBLISH, 9, 0, "chat", "foo", "hello bar");
    gen_write("fuzz_ipc", "publish", buf, n);
    n = gen_ipc(buf, sizeof(buf), IPC_PUBLISH_FAIL, 9, 0, "chat", "foo", "redis down");
    gen_write("fuzz_ipc", "publish_fail", buf, n);
    n = gen_ipc(buf, sizeof(buf), IPC_DELIVER, 0, 0, "chat", "foo: hello bar", NULL);
    gen_write("fuzz_ipc", "deliver", buf, n);
    n = gen_ipc(buf, sizeof(buf), IPC_LINK, 0, IPC_LINK_UP, "chat", NULL, NULL);
    gen_write("fuzz_ipc", "link_up", buf, n);
    n = gen_ipc(buf, sizeof(buf), IPC_PING, 0xdeadbeef, 0, "chat", NULL, NULL);
    gen_write("fuzz_ipc", "ping", buf, n);
    n = gen_ipc(buf, sizeof(buf), IPC_PONG, 0xdeadbeef, 0, "", NULL, NULL);
    gen_write("fuzz_ipc", "pong_empty_room", buf, n);
    /* a message over a worker's 4k limit (ipc_frame_max_for(4096) + a bit) */
    memset(big, 'x', sizeof(big) - 1);
    memcpy(big, "foo: ", 5);
    n = gen_ipc(buf, sizeof(buf), IPC_DELIVER, 0, 0, "chat", big, NULL);
    gen_write("fuzz_ipc", "deliver_big", buf, n);
    /* a stream: several frames back to back, the last one cut short */
    total += gen_ipc(buf + total, sizeof(buf) - total, IPC_LINK, 0, IPC_LINK_UP, "chat", NULL,
                     NULL);
    total += gen_ipc(buf + total, sizeof(buf) - total, IPC_JOIN_REPLY, 1, IPC_JOIN_TAKEN, "chat",
                     "foo", NULL);
    total += gen_ipc(buf + total, sizeof(buf) - total, IPC_DELIVER, 0, 0, "chat",
                     "bar: has joined the chat!", NULL);
    n = gen_ipc(buf + total, sizeof(buf) - total, IPC_PUBLISH, 2, 0, "chat", "bar", "hi");
    total += n - 3;
    gen_write("fuzz_ipc", "stream", buf, total);
}

/* ---- fuzz_ws_frames ------------------------------------------------------- */

struct gen_buf {
    uint8_t p[70000];
    size_t len;
};

static void gen_put(struct gen_buf *b, const void *p, size_t n)
{
    if (b->len + n > sizeof(b->p))
        exit(1);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* A masked client frame: first byte b0 (FIN, RSV, opcode), payload p[0..n). */
static void gen_frame(struct gen_buf *b, uint8_t b0, const void *p, size_t n)
{
    static const uint8_t key[4] = {0x5b, 0x1e, 0xa7, 0x02};
    uint8_t hdr[14];
    size_t h = 0;

    hdr[h++] = b0;
    if (n < 126) {
        hdr[h++] = (uint8_t)(0x80 | n);
    } else if (n <= 0xffff) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (uint8_t)(n >> 8);
        hdr[h++] = (uint8_t)n;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    memcpy(hdr + h, key, 4);
    h += 4;
    gen_put(b, hdr, h);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = ((const uint8_t *)p)[i] ^ key[i % 4];
        gen_put(b, &c, 1);
    }
}

static void gen_text_frame(struct gen_buf *b, const char *s)
{
    gen_frame(b, 0x81, s, strlen(s));
}

static void gen_close(struct gen_buf *b, unsigned code, const char *reason)
{
    uint8_t p[128];
    size_t n = 2 + strlen(reason);

    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    memcpy(p + 2, reason, strlen(reason));
    gen_frame(b, 0x88, p, n);
}

/* Mode, flags and chunk bytes of fuzz_ws_frames (and the token length
 * byte when flags ask for a protocol token), then the frames. */
static void gen_ws_with(const char *name, uint8_t mode, uint8_t flags, uint8_t chunk,
                        uint8_t toklen, const struct gen_buf *frames)
{
    static struct gen_buf b;

    b.len = 0;
    gen_put(&b, &mode, 1);
    gen_put(&b, &flags, 1);
    gen_put(&b, &chunk, 1);
    if (flags & 0x04)
        gen_put(&b, &toklen, 1);
    gen_put(&b, frames->p, frames->len);
    gen_write("fuzz_ws_frames", name, b.p, b.len);
}

static void gen_ws(const char *name, uint8_t mode, uint8_t flags, uint8_t chunk,
                   const struct gen_buf *frames)
{
    gen_ws_with(name, mode, flags, chunk, 0, frames);
}

static void gen_ws_corpus(void)
{
    static struct gen_buf f;
    static char big[300];
    static const uint8_t bad_utf8[] = {'h', 'i', 0xc3, 0x28};
    static const uint8_t structured[] = {0x81, 5, 'h', 'e', 'l', 'l', 'o', 0x89, 2, 'p', 'i',
                                         0x01, 3, 'a', 'b', 'c', 0x80, 3, 'd', 'e', 'f',
                                         0x88, 2, 0x03, 0xe8};

    f.len = 0;
    gen_text_frame(&f, "hello everyone");
    gen_close(&f, 1000, "bye");
    gen_ws("chat_text_close", 0x00, 0, 0, &f);
    gen_ws("chat_text_close_with_head", 0x08, 0, 0, &f);
    gen_ws("chat_text_close_bytewise", 0x00, 0, 1, &f);
    gen_ws("chat_text_deliver", 0x40, 0, 7, &f);
    /* a 3880-byte token in Sec-WebSocket-Protocol, echoed in the 101 */
    gen_ws_with("chat_protocol_token", 0x00, 0x04, 0, 0, &f);

    f.len = 0;
    gen_text_frame(&f, "one");
    gen_frame(&f, 0x89, "ping", 4);
    gen_text_frame(&f, "two");
    gen_frame(&f, 0x8a, "pong", 4);
    gen_ws("chat_ping_pong", 0x00, 0, 0, &f);
    gen_ws("chat_taken", 0x01, 0, 0, &f);
    gen_ws("chat_unavailable", 0x02, 0, 0, &f);
    gen_ws("chat_no_answer", 0x03, 0, 0, &f);
    gen_ws("chat_redis_down", 0x04, 0, 0, &f);
    gen_ws("chat_link_down", 0x20, 0, 0, &f);
    gen_ws("chat_eof", 0x80, 0, 0, &f);
    gen_ws("echo_ping_pong", 0x00, 1, 0, &f);

    f.len = 0; /* a fragmented text, a ping between the fragments */
    gen_frame(&f, 0x01, "frag", 4);
    gen_frame(&f, 0x89, "", 0);
    gen_frame(&f, 0x00, "men", 3);
    gen_frame(&f, 0x80, "ted", 3);
    gen_ws("chat_fragmented", 0x00, 0, 3, &f);
    gen_ws("echo_fragmented", 0x00, 1, 0, &f);

    f.len = 0; /* one over max-message-size (256 in the target) */
    memset(big, 'y', sizeof(big));
    gen_frame(&f, 0x81, big, sizeof(big));
    gen_ws("chat_too_big", 0x00, 0, 0, &f);

    f.len = 0;
    gen_frame(&f, 0x81, bad_utf8, sizeof(bad_utf8));
    gen_ws("chat_bad_utf8", 0x00, 0, 0, &f);

    f.len = 0;
    gen_frame(&f, 0x82, "\x00\x01\x02", 3);
    gen_ws("chat_binary", 0x00, 0, 0, &f);

    f.len = 0;
    gen_text_frame(&f, "line one\nbob: fake line");
    gen_text_frame(&f, "ok");
    gen_ws("chat_control_chars", 0x00, 0, 0, &f);

    f.len = 0; /* a burst past the strict cfg's rate limit */
    for (int i = 0; i < 8; i++)
        gen_text_frame(&f, "flood");
    gen_ws("chat_rate_limit", 0x00, 2, 0, &f);
    gen_ws("chat_rate_limit_down", 0x20, 2, 0, &f);

    f.len = 0; /* pings whose pongs pile up past max-pending-bytes 1k */
    memset(big, 'p', 125);
    for (int i = 0; i < 12; i++)
        gen_frame(&f, 0x89, big, 125);
    gen_ws("echo_ping_flood_strict", 0x00, 3, 0, &f);

    f.len = 0; /* a client frame without a mask: protocol error */
    gen_put(&f, "\x81\x02hi", 4);
    gen_ws("chat_unmasked", 0x00, 0, 0, &f);

    f.len = 0; /* the broker goes away after the join, back early or late */
    gen_text_frame(&f, "still there?");
    gen_ws("chat_broker_lost", 0x00, 0x08, 0, &f);
    gen_ws("chat_broker_back_early", 0x00, 0x18, 0, &f);
    gen_ws("chat_broker_lost_pending", 0x03, 0x08, 0, &f);

    /* regressions: findings of this fuzzer, fixed in fb00b3e */
    f.len = 0; /* empty text: wslay passes a NULL message (NULL + 0 in chat.c) */
    gen_frame(&f, 0x81, "", 0);
    gen_ws("regress_empty_text", 0x00, 0, 0, &f);
    f.len = 0; /* a 3942-byte protocol token truncated the 101 (4 KiB buffer) */
    gen_ws_with("regress_101_protocol_3942", 0x00, 0x04, 0, 31, &f);

    f.len = 0;
    gen_put(&f, structured, sizeof(structured));
    gen_ws("chat_structured", 0x10, 0, 0, &f);
    gen_ws("echo_structured", 0x10, 1, 2, &f);
}

/* ---- fuzz_http_upgrade ---------------------------------------------------------- */

static void gen_http_corpus(void)
{
    const char *t = "fuzz_http_upgrade";

    gen_text(t, "upgrade_chat",
             "GET /chat/foo HTTP/1.1\r\n"
             "Host: localhost:8080\r\n"
             "Upgrade: websocket\r\n"
             "Connection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n"
             "\r\n");
    gen_text(t, "upgrade_browser",
             "GET /chat/J%C3%BCrgen?token=abc.def.ghi HTTP/1.1\r\n"
             "Host: chat.example\r\n"
             "Connection: keep-alive, Upgrade\r\n"
             "Pragma: no-cache\r\n"
             "Upgrade: WebSocket\r\n"
             "Origin: https://chat.example\r\n"
             "Sec-WebSocket-Version: 13\r\n"
             "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
             "Sec-WebSocket-Protocol: chat, eyJhbGciOiJIUzI1NiJ9.e30.sig\r\n"
             "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
             "\r\n"
             "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x4d\x58");
    gen_text(t, "upgrade_lf_only",
             "\r\nGET /chat/a.b-c_d HTTP/1.1\n"
             "host:x\n"
             "upgrade:\twebsocket \n"
             "connection: upgrade\n"
             "sec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA==\n"
             "sec-websocket-version: 13\n"
             "\n");
    gen_text(t, "echo", "GET /echo?x=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n");
    gen_text(t, "health", "GET / HTTP/1.0\r\n\r\n");
    gen_text(t, "post", "POST /chat/foo HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    gen_text(t, "bad_name", "GET /chat/a%3Ab%2Fc%00 HTTP/1.1\r\nHost: h\r\n\r\n");
    gen_text(t, "partial", "GET /chat/foo HTTP/1.1\r\nHost: lo");
    gen_text(t, "obs_fold", "GET / HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n");
}

/* ---- fuzz_config --------------------------------------------------------------- */

static void gen_config_corpus(void)
{
    const char *t = "fuzz_config";
    static const char env[] = "port 0\n#ENV\n[::1]:6380\0s3cret\0" "8081";

    gen_text(t, "minimal", "port 8081\nworkers 2\n");
    gen_text(t, "quoted",
             "redis-password \"pa\\\"ss word\\x21\"   # comment\r\n"
             "logfile '/var/log/redis chat.log'\n"
             "channel \"room\\t1\"\n");
    gen_text(t, "units",
             "max-message-size 64kb\nmax-pending-bytes 1G\nhandshake-timeout 2s\n"
             "ping-interval 0\nshutdown-timeout 1h\nlog-level WARNING\n");
    gen_text(t, "tls",
             "redis-tls yes\nredis-tls-cert /etc/c.crt\nredis-tls-key /etc/c.key\n"
             "redis-tls-ca-cert /etc/ca.crt\nredis-tls-server-name cache.example\n");
    gen_text(t, "tls_unpaired", "redis-tls-key /etc/c.key\n");
    gen_text(t, "duplicate", "port 1\nPORT 2\n");
    gen_text(t, "bom_and_errors", "\xef\xbb\xbf" "bind \"127.0.0.1\nworkers 0\n");
    gen_text(t, "access",
             "max-connections-per-ip 16\nrate-limit 5\nrate-limit-burst 10\n"
             "allowed-origins \"https://a.example, https://b.example\"\n"
             "auth-secret 'k3y'\necho-endpoint yes\n");
    gen_write(t, "env", env, sizeof(env) - 1);
}

/* ---- fuzz_jwt ------------------------------------------------------------------ */

/* A token as a client sends it: the mode byte, then
 * b64url(header).b64url(payload).b64url(HMAC-SHA256 under key). */
static void gen_jwt_token(const char *name, int mode, const char *header, const char *payload,
                          const char *key)
{
    static char tok[8192];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t n = 0;

    tok[n++] = (char)mode;
    n += base64_encode(BASE64_URL, header, strlen(header), tok + n);
    tok[n++] = '.';
    n += base64_encode(BASE64_URL, payload, strlen(payload), tok + n);
    if (HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)tok + 1, n - 1, md, &mdlen) ==
        NULL)
        exit(1);
    tok[n++] = '.';
    n += base64_encode(BASE64_URL, md, mdlen, tok + n);
    gen_write("fuzz_jwt", name, tok, n);
}

/* A token given as text, behind the mode byte. */
static void gen_jwt_text(const char *name, int mode, const char *token)
{
    static char b[8192];
    size_t n = strlen(token);

    if (1 + n > sizeof(b))
        exit(1);
    b[0] = (char)mode;
    memcpy(b + 1, token, n);
    gen_write("fuzz_jwt", name, b, 1 + n);
}

/* Header and payload JSON for fuzz_jwt to sign: the mode byte (with
 * FZJ_SIGN), the header's length, the header, the payload. */
static void gen_jwt_json(const char *name, int mode, const char *header, const char *payload)
{
    static char b[8192];
    size_t hlen = strlen(header), plen = strlen(payload);

    if (hlen > 255 || 2 + hlen + plen > sizeof(b))
        exit(1);
    b[0] = (char)(mode | FZJ_SIGN);
    b[1] = (char)hlen;
    memcpy(b + 2, header, hlen);
    memcpy(b + 2 + hlen, payload, plen);
    gen_write("fuzz_jwt", name, b, 2 + hlen + plen);
}

static void gen_jwt_corpus(void)
{
    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const char *alice = "{\"sub\":\"alice\",\"exp\":2000000000}";
    const int plain = FZJ_MODE(0, FZJ_NOW_FIXED, FZJ_LEEWAY_ZERO);
    static char deep[200];
    size_t n;

    /* tokens as they come */
    gen_jwt_token("token_valid", plain, hdr, alice, FZJ_KEY);
    gen_jwt_token("token_valid_claims", FZJ_MODE(0, FZJ_NOW_FIXED, FZJ_LEEWAY_30),
                  "{\"typ\":\"JWT\",\"kid\":\"k1\",\"alg\":\"HS256\"}",
                  "{\"iss\":\"app\",\"sub\":\"alice\",\"iat\":1699999000,\"nbf\":1699999000,"
                  "\"exp\":1.7e9,\"roles\":[\"user\",{\"x\":null}]}",
                  FZJ_KEY);
    gen_jwt_token("token_expired", FZJ_MODE(0, FZJ_NOW_MAX, FZJ_LEEWAY_ZERO), hdr, alice,
                  FZJ_KEY);
    gen_jwt_token("token_other_key", plain, hdr, alice, "not the fuzzing key");
    gen_jwt_token("token_other_user", plain, hdr, "{\"sub\":\"bob\",\"exp\":2000000000}", FZJ_KEY);
    gen_jwt_token("token_alg_hs512", plain, "{\"alg\":\"HS512\"}", alice, FZJ_KEY);
    /* {"alg":"none"} with an empty signature, four segments, padding, '+' '/' */
    gen_jwt_text("token_alg_none", plain,
                 "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMH0.");
    gen_jwt_text("token_four_segments", plain, "eyJhbGciOiJIUzI1NiJ9.e30.e30.c2ln");
    gen_jwt_text("token_padded", plain, "eyJhbGciOiJIUzI1NiJ9.e30=.c2ln");
    gen_jwt_text("token_bad_chars", plain, "eyJhbGciOiJIUzI1NiJ9.e3+/.c2ln");

    /* JSON for the target to sign */
    gen_jwt_json("json_valid", plain, hdr, alice);
    gen_jwt_json("json_escapes", FZJ_MODE(0, FZJ_NOW_FIXED, FZJ_LEEWAY_NEGATIVE),
                 "{\"alg\":\"HS\\u0032\\u00356\"}",
                 "{\"sub\":\"\\u0061lic\\u0065\",\"exp\":2e9,\"n\":\"\\ud83d\\ude00\"}");
    gen_jwt_json("json_not_yet_valid", FZJ_MODE(0, FZJ_NOW_ZERO, FZJ_LEEWAY_30), hdr,
                 "{\"sub\":\"alice\",\"exp\":2000000000,\"nbf\":1700000000}");
    gen_jwt_json("json_big_numbers", FZJ_MODE(0, FZJ_NOW_MIN, FZJ_LEEWAY_MAX), hdr,
                 "{\"sub\":\"alice\",\"exp\":99999999999999999999999,\"nbf\":-1e300}");
    gen_jwt_json("json_out_of_range", plain, hdr, "{\"sub\":\"alice\",\"exp\":1e400}");
    gen_jwt_json("json_no_subject", plain, hdr, "{\"exp\":2000000000}");
    gen_jwt_json("json_no_expiry", plain, hdr, "{\"sub\":\"alice\"}");
    gen_jwt_json("json_mistyped", plain, hdr, "{\"sub\":[\"alice\"],\"exp\":\"2e9\"}");
    gen_jwt_json("json_duplicate", plain, hdr,
                 "{\"sub\":\"alice\",\"exp\":2e9,\"o\":{\"k\":1,\"\\u006b\":2}}");
    gen_jwt_json("json_crit", plain, "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", alice);
    gen_jwt_json("json_alg_nul", plain, "{\"alg\":\"HS256\\u0000\"}", alice);
    gen_jwt_json("json_sub_nul", plain, hdr, "{\"sub\":\"alice\\u0000\",\"exp\":2e9}");
    /* 40 arrays deep: past JWT_JSON_DEPTH_MAX (32) */
    n = (size_t)snprintf(deep, sizeof(deep), "{\"sub\":\"alice\",\"exp\":2e9,\"d\":");
    memset(deep + n, '[', 40);
    memset(deep + n + 40, ']', 40);
    strcpy(deep + n + 80, "}");
    gen_jwt_json("json_deep", plain, hdr, deep);
}

/* ---- fuzz_chat_proto and fuzz_chat_payload ------------------------------------ */

/* fuzz_chat_proto: byte 0 even, then a request frame */
static void gen_request(const char *name, const char *json)
{
    char buf[1024];

    buf[0] = 0;
    snprintf(buf + 1, sizeof(buf) - 1, "%s", json);
    gen_write("fuzz_chat_proto", name, buf, 1 + strlen(json));
}

/* fuzz_chat_proto: byte 0 odd, then five length-prefixed strings and a count */
static void gen_event(const char *name, const char *const f[5], uint64_t count)
{
    uint8_t buf[1400];
    size_t n = 0;

    buf[n++] = 1;
    for (int i = 0; i < 5; i++) {
        size_t l = strlen(f[i]);
        buf[n++] = (uint8_t)l;
        memcpy(buf + n, f[i], l);
        n += l;
    }
    for (int i = 7; i >= 0; i--)
        buf[n++] = (uint8_t)(count >> (8 * i));
    gen_write("fuzz_chat_proto", name, buf, n);
}

static void gen_chat_corpus(void)
{
    static const char *const ev_plain[5] = {"lobby", "alice", "hello", "bob", "alice\nbob"};
    static const char *const ev_default[5] = {"", "bob", "", "", ""};
    static const char *const ev_escapes[5] = {"r", "\xc3\xa9l\xc3\xa8ve", "a\"b\\c\t\x01", "to",
                                              "a\n\nb\n"};

    gen_request("send", "{\"type\":\"send\",\"room\":\"lobby\",\"text\":\"hi\"}");
    gen_request("send_url_room", "{\"type\":\"send\",\"text\":\"hello, lobby\"}");
    gen_request("join", "{\"type\":\"join\",\"room\":\"games\",\"id\":\"j-1\"}");
    gen_request("leave", "{\"type\":\"leave\",\"room\":\"games\",\"id\":7}");
    gen_request("who", "{\"type\":\"who\",\"room\":\"lobby\"}");
    gen_request("direct", "{\"type\":\"direct\",\"room\":\"lobby\",\"to\":\"bob\",\"text\":\"psst\"}");
    gen_request("unknown", "{\"type\":\"dance\",\"id\":\"x\"}");
    gen_request("not_object", "[{\"type\":\"send\"}]");
    gen_request("duplicate", "{\"type\":\"send\",\"type\":\"join\",\"room\":\"a\"}");
    gen_request("wrong_room", "{\"type\":\"who\",\"room\":[1]}");
    gen_request("missing_to", "{\"type\":\"direct\",\"text\":\"a\"}");
    gen_request("nul", "{\"type\":\"send\",\"text\":\"a\\u0000b\"}");
    gen_request("escapes", "{\"type\":\"send\",\"text\":\"\\u00e9\\n\\\"\",\"id\":-1}");
    gen_request("bad_json", "{\"type\":\"send\",");
    gen_request("join_history", "{\"type\":\"join\",\"room\":\"lobby\",\"history\":50}");
    gen_request("join_after",
                "{\"type\":\"join\",\"room\":\"lobby\",\"after\":\"1733448000000-0\"}");
    gen_event("events", ev_plain, 2);
    gen_event("events_default_room", ev_default, 0);
    gen_event("events_escapes", ev_escapes, 1000);

    gen_text("fuzz_chat_payload", "seed_message", "alice: hello");
    gen_text("fuzz_chat_payload", "seed_joined", "alice: has joined the chat!");
    gen_text("fuzz_chat_payload", "seed_left", "alice: has left the chat!");
    gen_text("fuzz_chat_payload", "seed_line", "a line from another publisher");
    gen_text("fuzz_chat_payload", "tagged_message", "malice: hi: there");
    gen_text("fuzz_chat_payload", "tagged_joined", "jalice");
    gen_text("fuzz_chat_payload", "tagged_left", "lalice");
    gen_text("fuzz_chat_payload", "stored_message", "M1733448000000-0\nalice: hello");
    gen_text("fuzz_chat_payload", "stored_max_id",
             "M18446744073709551615-18446744073709551615\nbob: a\nb: c");
    gen_text("fuzz_chat_payload", "direct", "lobby\nbob\nalice\npsst");
    gen_text("fuzz_chat_payload", "direct_default_room", "\nbob\nalice\n");
    gen_text("fuzz_chat_payload", "channel_room", "chat:{lobby}");
    gen_text("fuzz_chat_payload", "channel_short", "c:{x.y-z_~}");
    gen_text("fuzz_chat_payload", "channel_default", "chat");
    gen_text("fuzz_chat_payload", "room_name", "Room-1_b.c~");
}

/* ---- fuzz_rsub_reply ------------------------------------------------------ */

/* A chunk-size byte, then the replies. */
static void gen_rsub(const char *name, uint8_t chunk, const char *resp, size_t n)
{
    char buf[512];

    if (n + 1 > sizeof(buf))
        exit(1);
    buf[0] = (char)chunk;
    memcpy(buf + 1, resp, n);
    gen_write("fuzz_rsub_reply", name, buf, n + 1);
}

#define GEN_RSUB(name, chunk, lit) gen_rsub((name), (chunk), (lit), sizeof(lit) - 1)

static void gen_rsub_corpus(void)
{
    GEN_RSUB("auth_subscribe", 0,
             "+OK\r\n*3\r\n$9\r\nsubscribe\r\n$4\r\nchat\r\n:1\r\n"
             "*3\r\n$10\r\nssubscribe\r\n$5\r\n{R}:a\r\n:1\r\n");
    GEN_RSUB("messages", 3,
             "*3\r\n$7\r\nmessage\r\n$4\r\nchat\r\n$5\r\nhello\r\n"
             "*3\r\n$8\r\nsmessage\r\n$5\r\n{R}:a\r\n$0\r\n\r\n"
             "*3\r\n$8\r\nsmessage\r\n$3\r\na\0b\r\n$4\r\n\r\n\0\xff\r\n");
    GEN_RSUB("unsubscribe", 1,
             "*3\r\n$11\r\nunsubscribe\r\n$4\r\nchat\r\n:0\r\n"
             "*3\r\n$12\r\nsunsubscribe\r\n$5\r\n{R}:a\r\n:0\r\n"
             "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    GEN_RSUB("pong_errors", 0,
             "+PONG\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n-MOVED 1234 127.0.0.1:7001\r\n"
             "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
             "-NOAUTH Authentication required.\r\n");
    GEN_RSUB("odd_shapes", 7,
             "*2\r\n$7\r\nmessage\r\n$1\r\nc\r\n*3\r\n$7\r\nmessage\r\n:5\r\n$1\r\np\r\n"
             "*3\r\n*1\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\np\r\n"
             ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\np\r\n%1\r\n$1\r\nk\r\n$1\r\nv\r\n");
    GEN_RSUB("too_wide", 0, "*17\r\n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    gen_top = argv[1];
    if (mkdir(gen_top, 0755) == -1 && errno != EEXIST) {
        perror(gen_top);
        return 1;
    }
    gen_ipc_corpus();
    gen_ws_corpus();
    gen_http_corpus();
    gen_config_corpus();
    gen_jwt_corpus();
    gen_chat_corpus();
    gen_rsub_corpus();
    return 0;
}
