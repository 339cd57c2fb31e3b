/* wsclient.c -- raw blocking WebSocket client for tests: handshake, frame
 * codec and the checks applied to everything the server sends.
 *
 * Input accumulates in c->buf; wsc_parse() decodes one frame in place (server
 * frames are unmasked, so the payload is a view into the buffer) and the
 * frame's bytes are dropped at the start of the next receive call. Text
 * messages are reassembled into c->msg. SHA-1 and base64 are our own, so the
 * Sec-WebSocket-Accept check does not share code with the server.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "wsclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define WSC_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WSC_BUF_INIT (64 * 1024)
#define WSC_BUF_MAX (WSC_FRAME_MAX + 64 * 1024) /* a full frame plus its header */
#define WSC_CHUNK 16384

static long long wsc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wsc_left(long long deadline)
{
    long long left = deadline - wsc_now_ms();

    return left < 0 ? 0 : left > 0x7fffffff ? 0x7fffffff : (int)left;
}

static int wsc_violation(struct wsc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ssize_t wsc_recv_some(struct wsc *c, void *buf, size_t len);
static ssize_t wsc_tls_send(struct wsc *c, const void *p, size_t n);

/* Report a protocol violation by the server; returns -1 for the caller. */
static int wsc_violation(struct wsc *c, const char *fmt, ...)
{
    va_list ap;

    fputs("wsc: protocol violation by the server: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    c->proto_error = 1;
    return -1;
}

/* xorshift64*: masking keys and handshake keys need no cryptographic quality */
static uint32_t wsc_rand32(struct wsc *c)
{
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return (uint32_t)((c->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

/* ---- SHA-1 (FIPS 180-4) and base64, for Sec-WebSocket-Accept --------- */

#define WSC_ROL(x, n) ((uint32_t)((x) << (n)) | ((x) >> (32 - (n))))

static void wsc_sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f, k, t;
    int i;

    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (; i < 80; i++)
        w[i] = WSC_ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (i = 0; i < 80; i++) {
        f = i < 20              ? (b & c) | (~b & d)
            : i >= 40 && i < 60 ? (b & c) | (b & d) | (c & d)
                                : b ^ c ^ d;
        k = i < 20 ? 0x5A827999 : i < 40 ? 0x6ED9EBA1 : i < 60 ? 0x8F1BBCDC : 0xCA62C1D6;
        t = WSC_ROL(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = WSC_ROL(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void wsc_sha1(const void *data, size_t len, uint8_t out[20])
{
    uint32_t h[5] = { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0 };
    const uint8_t *p = data;
    uint8_t tail[128] = { 0 };
    uint64_t bits = (uint64_t)len * 8;
    size_t i, tlen;

    for (; len >= 64; p += 64, len -= 64)
        wsc_sha1_block(h, p);
    memcpy(tail, p, len);
    tail[len] = 0x80;
    tlen = len < 56 ? 64 : 128;
    for (i = 0; i < 8; i++)
        tail[tlen - 1 - i] = (uint8_t)(bits >> (8 * i));
    wsc_sha1_block(h, tail);
    if (tlen == 128)
        wsc_sha1_block(h, tail + 64);
    for (i = 0; i < 20; i++)
        out[i] = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
}

/* NUL-terminated base64 of in[0..n) into out (4 * ceil(n / 3) + 1 bytes). */
static void wsc_base64(const uint8_t *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;

    for (i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);

        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *out++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *out = '\0';
}

/* accept = base64(SHA-1(key GUID)), 29 bytes with the NUL */
static void wsc_accept_for(const char *key, char accept[29])
{
    char cat[256];
    uint8_t digest[20];
    int n = snprintf(cat, sizeof(cat), "%s%s", key, WSC_GUID);

    wsc_sha1(cat, n > 0 && (size_t)n < sizeof(cat) ? (size_t)n : 0, digest);
    wsc_base64(digest, sizeof(digest), accept);
}

static int wsc_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0, j, k;
    uint32_t cp, min;

    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        /* k continuation bytes; the lead byte keeps 6 - k payload bits */
        k = (s[i] & 0xE0) == 0xC0 ? 1 : (s[i] & 0xF0) == 0xE0 ? 2 : (s[i] & 0xF8) == 0xF0 ? 3 : 0;
        if (k == 0 || n - i <= k)
            return 0;
        cp = s[i] & (0x3Fu >> k);
        min = k == 1 ? 0x80 : k == 2 ? 0x800 : 0x10000;
        for (j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* ---- I/O ------------------------------------------------------------- */

/* Read what is available into c->buf, waiting until deadline. Returns 1 when
 * bytes came, 0 on timeout, -1 on EOF (c->eof) or error. */
static int wsc_fill(struct wsc *c, long long deadline)
{
    struct pollfd pfd = { c->fd, POLLIN, 0 };
    ssize_t n;
    int r;

    if (c->fd == -1 || c->eof)
        return -1;
    if (c->cap - c->len < 4096) {
        size_t ncap = c->cap * 2 > WSC_BUF_MAX ? WSC_BUF_MAX : c->cap * 2;
        uint8_t *nb;

        if (ncap - c->len < 4096 || (nb = realloc(c->buf, ncap)) == NULL) {
            fprintf(stderr, "wsc: receive buffer full (%zu bytes)\n", c->len);
            return -1;
        }
        c->buf = nb;
        c->cap = ncap;
    }
    for (;;) {
        /* bytes OpenSSL already decrypted do not show on the socket */
        r = c->ssl != NULL && SSL_pending(c->ssl) > 0 ? 1 : poll(&pfd, 1, wsc_left(deadline));
        if (r == -1 && errno == EINTR)
            continue;
        if (r == 0)
            return 0;
        n = r == -1 ? -1 : wsc_recv_some(c, c->buf + c->len, c->cap - c->len);
        if (n == -1 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n > 0) {
            c->len += (size_t)n;
            return 1;
        }
        if (n == -1 && errno != ECONNRESET)
            fprintf(stderr, "wsc: recv: %s\n", strerror(errno));
        c->eof = 1;
        return -1;
    }
}

static int wsc_write(struct wsc *c, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0 && c->fd != -1) {
        ssize_t w = c->ssl != NULL ? wsc_tls_send(c, b, n) : send(c->fd, b, n, MSG_NOSIGNAL);

        if (w == -1 && errno == EINTR)
            continue;
        if (w <= 0) {
            fprintf(stderr, "wsc: send: %s\n",
                    errno == EAGAIN ? "timed out (the server stopped reading)" : strerror(errno));
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return n == 0 ? 0 : -1;
}

/* ---- wss:// (OpenSSL) ------------------------------------------------- */

static SSL_CTX *wsc_tls_ctx; /* set: every new connection speaks TLS */

int wsc_tls(const char *ca_file)
{
    SSL_CTX *ctx;
    static const unsigned char alpn[] = "\x08http/1.1";

    if (wsc_tls_ctx != NULL)
        SSL_CTX_free(wsc_tls_ctx);
    wsc_tls_ctx = NULL;
    if (ca_file == NULL)
        return 0;
    signal(SIGPIPE, SIG_IGN); /* OpenSSL writes with write(): a closed peer is EPIPE */
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        fprintf(stderr, "wsc: cannot load CA %s\n", ca_file);
        SSL_CTX_free(ctx);
        return -1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1); /* as browsers do */
    wsc_tls_ctx = ctx;
    return 0;
}

int wsc_tls_cert(const char *cert, const char *key)
{
    if (wsc_tls_ctx == NULL || SSL_CTX_use_certificate_chain_file(wsc_tls_ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(wsc_tls_ctx, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "wsc: cannot load client certificate %s / %s\n", cert, key);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* Wait up to the deadline for the socket to be ready for what OpenSSL wants. */
static int wsc_tls_wait(struct wsc *c, int rc, long long deadline)
{
    int e = SSL_get_error(c->ssl, rc), r;
    struct pollfd pfd = { c->fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, 0 };

    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        return -1;
    while ((r = poll(&pfd, 1, wsc_left(deadline))) == -1 && errno == EINTR)
        ;
    return r > 0 ? 0 : -1;
}

/* TLS over c->fd (non-blocking from here on), the server's certificate
 * checked against the CA and 127.0.0.1. */
static int wsc_tls_start(struct wsc *c, int timeout_ms)
{
    long long deadline = wsc_now_ms() + timeout_ms;
    int rc;

    c->ssl = SSL_new(wsc_tls_ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
        return -1;
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), "127.0.0.1");
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    while ((rc = SSL_connect(c->ssl)) != 1) {
        if (wsc_tls_wait(c, rc, deadline) == -1) {
            unsigned long e = ERR_get_error();
            fprintf(stderr, "wsc: TLS handshake failed: %s\n",
                    e ? ERR_reason_error_string(e) : "timeout or closed");
            ERR_clear_error();
            return -1;
        }
    }
    return 0;
}

static ssize_t wsc_tls_send(struct wsc *c, const void *p, size_t n)
{
    long long deadline = wsc_now_ms() + WSC_SEND_TIMEOUT_MS;
    size_t done = 0;
    int rc;

    while ((rc = SSL_write_ex(c->ssl, p, n, &done)) != 1) {
        if (wsc_tls_wait(c, rc, deadline) == -1) {
            ERR_clear_error();
            errno = SSL_get_error(c->ssl, rc) == SSL_ERROR_WANT_WRITE ? EAGAIN : EPIPE;
            return -1;
        }
    }
    return (ssize_t)done;
}

/* recv(MSG_DONTWAIT) for ws:// and wss:// alike (0 = EOF) */
static ssize_t wsc_recv_some(struct wsc *c, void *buf, size_t len)
{
    size_t got = 0;
    int rc, e;

    if (c->ssl == NULL)
        return recv(c->fd, buf, len, MSG_DONTWAIT);
    rc = SSL_read_ex(c->ssl, buf, len, &got);
    if (rc == 1)
        return (ssize_t)got;
    e = SSL_get_error(c->ssl, rc);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
        return 0;
    if (e != SSL_ERROR_SYSCALL)
        errno = EPROTO;
    return -1;
}

int wsc_tls_peer_cn(const struct wsc *c, char *out, size_t cap)
{
    X509 *cert = c->ssl != NULL ? SSL_get1_peer_certificate(c->ssl) : NULL;
    int n;

    if (cert == NULL)
        return -1;
    n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, out, (int)cap);
    X509_free(cert);
    return n < 0 ? -1 : 0;
}

/* ---- handshake ------------------------------------------------------- */

/* Value of the first header line "name:" in head (case-insensitive), blanks
 * trimmed, into out. Returns 1 found, 0 not. */
static int wsc_header(const char *head, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name), n;
    const char *p = head, *v;

    while ((p = strchr(p, '\n')) != NULL) {
        p++;
        if (strncasecmp(p, name, nlen) != 0 || p[nlen] != ':')
            continue;
        v = p + nlen + 1;
        v += strspn(v, " \t");
        n = strcspn(v, "\r\n");
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        n = n < cap - 1 ? n : cap - 1;
        memcpy(out, v, n);
        out[n] = '\0';
        return 1;
    }
    return 0;
}

static int wsc_open(struct wsc *c, int port, int timeout_ms)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { WSC_SEND_TIMEOUT_MS / 1000, 0 };
    struct pollfd pfd;
    int one = 1, err = 0, r;
    socklen_t elen = sizeof(err);

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->status = -1;
    c->close_code = -1;
    if (getrandom(&c->rng, sizeof(c->rng), 0) != (ssize_t)sizeof(c->rng) || c->rng == 0)
        c->rng = (uint64_t)wsc_now_ms() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
    c->buf = malloc(WSC_BUF_INIT);
    if (c->buf == NULL)
        return -1;
    c->cap = WSC_BUF_INIT;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd == -1)
        goto fail;
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        if (errno != EINPROGRESS)
            goto fail;
        pfd = (struct pollfd){ c->fd, POLLOUT, 0 };
        while ((r = poll(&pfd, 1, timeout_ms)) == -1 && errno == EINTR)
            ;
        if (r == 0)
            errno = ETIMEDOUT;
        if (r <= 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) == -1)
            goto fail;
        if (err != 0) {
            errno = err;
            goto fail;
        }
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (wsc_tls_ctx != NULL && wsc_tls_start(c, timeout_ms) == -1) {
        SSL_free(c->ssl);
        c->ssl = NULL;
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
fail:
    fprintf(stderr, "wsc: connect 127.0.0.1:%d: %s\n", port, strerror(errno));
    if (c->fd != -1)
        close(c->fd);
    c->fd = -1;
    return -1;
}

/* 1 when proto is one of the comma-separated tokens of the offered list. */
static int wsc_offered(const char *offered, const char *proto)
{
    size_t plen = strlen(proto), n;
    const char *p = offered;

    while (*p != '\0') {
        p += strspn(p, " \t,");
        n = strcspn(p, " \t,");
        if (n > 0 && n == plen && strncmp(p, proto, n) == 0)
            return 1;
        p += n;
    }
    return 0;
}

/* Read and check the answer to our upgrade request. key: the key we sent
 * (NULL: unknown, no accept check); strict: also reject extensions, and
 * subprotocols that are not one of `offered` (the Sec-WebSocket-Protocol
 * value we sent, "" for none). The chosen one goes into c->protocol.
 * Returns the status or -1. */
static int wsc_read_answer(struct wsc *c, long long deadline, const char *key, int strict,
                           const char *offered)
{
    char val[256], want[29];
    uint8_t *end = NULL;
    size_t need;
    int r;

    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL && c->len < WSC_HEAD_MAX) {
        r = wsc_fill(c, deadline);
        if (r <= 0) {
            fprintf(stderr, "wsc: %s before the response head was complete (%zu bytes)\n",
                    r == 0 ? "timeout" : "connection closed", c->len);
            return -1;
        }
    }
    c->headlen = end != NULL ? (size_t)(end - c->buf) + 4 : c->len;
    if (c->headlen >= WSC_HEAD_MAX) {
        fprintf(stderr, "wsc: response head over %d bytes\n", WSC_HEAD_MAX);
        return -1;
    }
    memcpy(c->head, c->buf, c->headlen);
    c->head[c->headlen] = '\0';
    c->consumed = c->headlen;
    if (sscanf(c->head, "HTTP/1.%*1[01] %3d ", &c->status) != 1 || c->status < 100) {
        c->status = -1;
        fprintf(stderr, "wsc: bad status line: %.80s\n", c->head);
        return -1;
    }
    if (c->status != 101) {
        need = 0;
        if (wsc_header(c->head, "Content-Length", val, sizeof(val)))
            need = strtoul(val, NULL, 10);
        need = need < WSC_BODY_MAX - 1 ? need : WSC_BODY_MAX - 1;
        while (c->len - c->headlen < need && wsc_fill(c, deadline) > 0)
            ;
        c->bodylen = c->len - c->headlen < need ? c->len - c->headlen : need;
        memcpy(c->body, c->buf + c->headlen, c->bodylen);
        c->body[c->bodylen] = '\0';
        c->consumed = c->len; /* no frames on this connection */
        return c->status;
    }
    if (!wsc_header(c->head, "Upgrade", val, sizeof(val)) || strcasecmp(val, "websocket") != 0 ||
        !wsc_header(c->head, "Connection", val, sizeof(val)) || !strcasestr(val, "upgrade"))
        return wsc_violation(c, "101 without Upgrade: websocket / Connection: Upgrade");
    if (key != NULL) {
        wsc_accept_for(key, want);
        if (!wsc_header(c->head, "Sec-WebSocket-Accept", val, sizeof(val)) ||
            strcmp(val, want) != 0)
            return wsc_violation(c, "Sec-WebSocket-Accept is \"%s\", want \"%s\"", val, want);
    }
    if (wsc_header(c->head, "Sec-WebSocket-Extensions", val, sizeof(val))) {
        /* only permessage-deflate, and only when we offered it */
        if (strict && (!c->deflate || strncasecmp(val, "permessage-deflate", 18) != 0))
            return wsc_violation(c, "101 names an extension we did not offer: %s", val);
        c->deflate = strncasecmp(val, "permessage-deflate", 18) == 0;
    } else {
        c->deflate = 0;
    }
    if (wsc_header(c->head, "Sec-WebSocket-Protocol", val, sizeof(val))) {
        if (strict && !wsc_offered(offered, val))
            return wsc_violation(c, "101 names subprotocol \"%s\", we offered \"%s\"", val,
                                 offered);
        snprintf(c->protocol, sizeof(c->protocol), "%s", val);
    }
    c->upgraded = 1;
    return 101;
}

int wsc_connect(struct wsc *c, int port, const char *path, const char *extra_headers,
                int timeout_ms)
{
    long long deadline = wsc_now_ms() + timeout_ms;
    size_t cap = 512 + strlen(path) + (extra_headers ? 2 * strlen(extra_headers) : 0), n;
    size_t len = 0, line;
    uint8_t raw[16];
    char key[25], offered[WSC_PROTOCOL_MAX] = "", *req;
    const char *p;
    int i, rc = -1;

    if (wsc_open(c, port, timeout_ms) == -1)
        return -1;
    /* offered: the answer may accept it (wsc_read_answer) */
    c->deflate = extra_headers != NULL && strcasestr(extra_headers, "permessage-deflate") != NULL;
    for (i = 0; i < 16; i++)
        raw[i] = (uint8_t)wsc_rand32(c);
    wsc_base64(raw, sizeof(raw), key);
    req = malloc(cap);
    if (req == NULL)
        return -1;
    n = (size_t)snprintf(req, cap,
                         "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                         "Sec-WebSocket-Version: 13\r\n",
                         path, port, key);
    /* extra header lines, each ended by CRLF whatever the caller used */
    for (p = extra_headers; p != NULL && *p != '\0'; p += len + (p[len] == '\n')) {
        len = strcspn(p, "\n");
        line = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
        if (line > 0) {
            memcpy(req + n, p, line);
            memcpy(req + n + line, "\r\n", 2);
            n += line + 2;
        }
    }
    memcpy(req + n, "\r\n", 3); /* with a NUL, for wsc_header */
    n += 2;
    /* the subprotocols offered, if any: the only ones the answer may name */
    wsc_header(req, "Sec-WebSocket-Protocol", offered, sizeof(offered));
    if (wsc_write(c, req, n) == 0)
        rc = wsc_read_answer(c, deadline, key, 1, offered);
    free(req);
    return rc;
}

int wsc_connect_raw(struct wsc *c, int port, const char *request, int timeout_ms)
{
    long long deadline = wsc_now_ms() + timeout_ms;
    char key[128];
    int has_key;

    if (wsc_open(c, port, timeout_ms) == -1 || wsc_write(c, request, strlen(request)) == -1)
        return -1;
    has_key = wsc_header(request, "Sec-WebSocket-Key", key, sizeof(key));
    return wsc_read_answer(c, deadline, has_key ? key : NULL, 0, "");
}

/* ---- frames out ------------------------------------------------------ */

int wsc_send_frame(struct wsc *c, int fin, int rsv, int opcode, const void *payload, size_t len,
                   int masked)
{
    uint8_t out[WSC_CHUNK + 14], mask[4] = { 0, 0, 0, 0 };
    const uint8_t *p = payload;
    size_t h = 0, i, off = 0, take;
    uint32_t key = wsc_rand32(c);

    out[h++] = (uint8_t)((fin ? 0x80 : 0) | (rsv & 7) << 4 | (opcode & 0x0F));
    if (len < 126) {
        out[h++] = (uint8_t)((masked ? 0x80 : 0) | len);
    } else if (len <= 0xFFFF) {
        out[h++] = (uint8_t)((masked ? 0x80 : 0) | 126);
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    } else {
        out[h++] = (uint8_t)((masked ? 0x80 : 0) | 127);
        for (i = 0; i < 8; i++)
            out[h++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    if (masked) {
        memcpy(mask, &key, 4);
        memcpy(out + h, mask, 4);
        h += 4;
    }
    /* header and payload in chunks of WSC_CHUNK, masked on the way */
    do {
        take = len - off < WSC_CHUNK ? len - off : WSC_CHUNK;
        for (i = 0; i < take; i++)
            out[h + i] = p[off + i] ^ mask[(off + i) & 3];
        if (wsc_write(c, out, h + take) == -1)
            return -1;
        off += take;
        h = 0;
    } while (off < len);
    return 0;
}

int wsc_send_text(struct wsc *c, const char *s)
{
    return wsc_send_frame(c, 1, 0, WSC_OP_TEXT, s, strlen(s), 1);
}

int wsc_send_raw(struct wsc *c, const void *p, size_t n)
{
    return wsc_write(c, p, n);
}

int wsc_send_close(struct wsc *c, int code, const char *reason)
{
    uint8_t pl[125];
    size_t n = 0, rlen = reason != NULL ? strlen(reason) : 0;

    if (code >= 0) {
        pl[0] = (uint8_t)(code >> 8);
        pl[1] = (uint8_t)code;
        rlen = rlen < 123 ? rlen : 123;
        memcpy(pl + 2, reason != NULL ? reason : "", rlen);
        n = 2 + rlen;
    }
    if (wsc_send_frame(c, 1, 0, WSC_OP_CLOSE, pl, n, 1) == -1)
        return -1;
    c->close_sent = 1;
    return 0;
}

/* ---- frames in ------------------------------------------------------- */

static int wsc_close_code_valid(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* Decode the frame at the start of c->buf. Returns its size in bytes (frame
 * complete, *f filled), 0 when more bytes are needed, -1 on a violation. */
static long wsc_parse(struct wsc *c, struct wsc_frame *f)
{
    const uint8_t *b = c->buf;
    size_t hdr = 2, i;
    uint64_t plen;
    int op;

    if (c->len < 2)
        return 0;
    op = b[0] & 0x0F;
    if ((b[0] & 0x70) == 0x40 && c->deflate && (op == WSC_OP_TEXT || op == WSC_OP_BINARY))
        ; /* RSV1: a compressed message's first frame */
    else if (b[0] & 0x70)
        return wsc_violation(c, "RSV bits 0x%x set on opcode %d%s", b[0] & 0x70, op,
                             c->deflate ? "" : ", no extension negotiated");
    if (b[1] & 0x80)
        return wsc_violation(c, "masked frame (opcode %d)", op);
    if (op != WSC_OP_CONT && op != WSC_OP_TEXT && op != WSC_OP_BINARY && op != WSC_OP_CLOSE &&
        op != WSC_OP_PING && op != WSC_OP_PONG)
        return wsc_violation(c, "reserved opcode %d", op);
    plen = b[1] & 0x7F;
    if (plen == 126) {
        if (c->len < 4)
            return 0;
        hdr = 4;
        plen = (uint64_t)b[2] << 8 | b[3];
        if (plen < 126)
            return wsc_violation(c, "16-bit length %llu fits in 7 bits", (unsigned long long)plen);
    } else if (plen == 127) {
        if (c->len < 10)
            return 0;
        hdr = 10;
        for (plen = 0, i = 2; i < 10; i++)
            plen = plen << 8 | b[i];
        if (plen >> 63 || plen <= 0xFFFF)
            return wsc_violation(c, "64-bit length %llu not minimal", (unsigned long long)plen);
    }
    if (plen > WSC_FRAME_MAX)
        return wsc_violation(c, "frame of %llu bytes (limit %lu)", (unsigned long long)plen,
                             (unsigned long)WSC_FRAME_MAX);
    if (op >= WSC_OP_CLOSE && (!(b[0] & 0x80) || plen > 125))
        return wsc_violation(c, "control frame %d fragmented or over 125 bytes", op);
    if (c->close_received)
        return wsc_violation(c, "frame (opcode %d) after the close frame", op);
    if (op == WSC_OP_CONT && !c->frag_open)
        return wsc_violation(c, "continuation frame outside a fragmented message");
    if ((op == WSC_OP_TEXT || op == WSC_OP_BINARY) && c->frag_open)
        return wsc_violation(c, "new data frame inside a fragmented message");
    if (c->len < hdr + plen)
        return 0;
    f->fin = (b[0] & 0x80) != 0;
    f->opcode = op;
    f->rsv1 = (b[0] & 0x40) != 0;
    f->payload = c->buf + hdr;
    f->len = (size_t)plen;
    f->close_code = -1;
    f->close_reason[0] = '\0';
    if (op < WSC_OP_CLOSE)
        c->frag_open = !f->fin;
    if (op == WSC_OP_CLOSE) {
        if (plen == 1)
            return wsc_violation(c, "close frame with a 1-byte payload");
        if (plen >= 2) {
            f->close_code = f->payload[0] << 8 | f->payload[1];
            if (!wsc_close_code_valid(f->close_code))
                return wsc_violation(c, "close code %d may not be sent", f->close_code);
            if (!wsc_utf8_valid(f->payload + 2, f->len - 2))
                return wsc_violation(c, "close reason is not UTF-8");
            memcpy(f->close_reason, f->payload + 2, f->len - 2);
            f->close_reason[f->len - 2] = '\0';
        }
        c->close_received = 1;
        c->close_code = f->close_code;
        memcpy(c->close_reason, f->close_reason, sizeof(c->close_reason));
    }
    return (long)(hdr + plen);
}

int wsc_recv_frame(struct wsc *c, struct wsc_frame *f, int timeout_ms)
{
    long long deadline = wsc_now_ms() + timeout_ms;
    long r;

    if (c->consumed > 0) {
        memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
        c->len -= c->consumed;
        c->consumed = 0;
    }
    c->timed_out = 0;
    if (!c->upgraded && !c->proto_error && c->buf != NULL)
        fprintf(stderr, "wsc: no WebSocket on this connection (HTTP status %d)\n", c->status);
    if (c->proto_error || !c->upgraded || c->buf == NULL)
        return -1;
    for (;;) {
        r = wsc_parse(c, f);
        if (r > 0) {
            c->consumed = (size_t)r;
            return 1;
        }
        if (r < 0)
            return -1;
        r = wsc_fill(c, deadline);
        if (r == 0)
            c->timed_out = 1;
        if (r <= 0)
            return (int)r;
    }
}

/* Answer the server's close with its code, once. */
static void wsc_echo_close(struct wsc *c)
{
    if (!c->no_close_echo && !c->close_sent && !c->eof)
        wsc_send_close(c, c->close_code >= 0 ? c->close_code : -1, NULL);
}

/* Next complete text message into c->msg[0..msglen). Returns 1, 0 timeout,
 * -1 close/EOF/error. */
/* The assembled compressed message, inflated in place (RFC 7692 7.2.2). */
static int wsc_inflate_msg(struct wsc *c)
{
    static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
    z_stream z;
    uint8_t *out = malloc(WSC_FRAME_MAX + 1);
    int rc, pass;

    memset(&z, 0, sizeof(z));
    if (out == NULL || inflateInit2(&z, -15) != Z_OK) {
        free(out);
        return -1;
    }
    z.next_out = out;
    z.avail_out = WSC_FRAME_MAX;
    for (pass = 0, rc = Z_OK; pass < 2 && rc != Z_STREAM_END; pass++) {
        z.next_in = pass == 0 ? c->msg : (Bytef *)(uintptr_t)tail;
        z.avail_in = (uInt)(pass == 0 ? c->msglen : sizeof(tail));
        rc = inflate(&z, Z_SYNC_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && !(rc == Z_BUF_ERROR && z.avail_in == 0)) {
            inflateEnd(&z);
            free(out);
            return wsc_violation(c, "a compressed message does not inflate (zlib %d)", rc);
        }
    }
    c->msglen = WSC_FRAME_MAX - z.avail_out;
    inflateEnd(&z);
    out[c->msglen] = '\0';
    free(c->msg);
    c->msg = out;
    c->msgcap = WSC_FRAME_MAX + 1;
    c->compressed_in++;
    return 0;
}

int wsc_deflate(const void *data, size_t len, uint8_t **out, size_t *outlen)
{
    z_stream z;
    size_t bound;

    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    bound = deflateBound(&z, len) + 16;
    *out = malloc(bound);
    if (*out == NULL) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = *out;
    z.avail_out = (uInt)bound;
    if (deflate(&z, Z_SYNC_FLUSH) != Z_OK) {
        deflateEnd(&z);
        free(*out);
        return -1;
    }
    *outlen = bound - z.avail_out - 4; /* without the 00 00 ff ff tail */
    deflateEnd(&z);
    return 0;
}

int wsc_send_text_deflated(struct wsc *c, const char *s)
{
    uint8_t *z;
    size_t n;
    int rc;

    if (wsc_deflate(s, strlen(s), &z, &n) == -1)
        return -1;
    rc = wsc_send_frame(c, 1, 4, WSC_OP_TEXT, z, n, 1);
    free(z);
    return rc;
}

static int wsc_next_text(struct wsc *c, int timeout_ms)
{
    long long deadline = wsc_now_ms() + timeout_ms;
    struct wsc_frame f;
    int r;

    if (!c->msg_open)
        c->msglen = 0;
    for (;;) {
        r = wsc_recv_frame(c, &f, wsc_left(deadline));
        if (r <= 0)
            return r;
        if (f.opcode == WSC_OP_PING) {
            wsc_send_frame(c, 1, 0, WSC_OP_PONG, f.payload, f.len, 1);
            continue;
        }
        if (f.opcode == WSC_OP_PONG)
            continue;
        if (f.opcode == WSC_OP_CLOSE) {
            wsc_echo_close(c);
            return -1;
        }
        if (f.opcode != WSC_OP_CONT) {
            c->msg_opcode = f.opcode;
            c->msg_compressed = f.rsv1;
            c->msglen = 0;
        }
        if (c->msglen + f.len > WSC_FRAME_MAX)
            return wsc_violation(c, "message over %lu bytes", (unsigned long)WSC_FRAME_MAX);
        if (c->msglen + f.len + 1 > c->msgcap) {
            size_t ncap = c->msglen + f.len + 1 + 4096;
            uint8_t *nm = realloc(c->msg, ncap);

            if (nm == NULL)
                return -1;
            c->msg = nm;
            c->msgcap = ncap;
        }
        memcpy(c->msg + c->msglen, f.payload, f.len);
        c->msglen += f.len;
        c->msg[c->msglen] = '\0';
        c->msg_open = !f.fin;
        if (!f.fin)
            continue;
        if (c->msg_compressed && wsc_inflate_msg(c) == -1)
            return -1;
        if (c->msg_opcode == WSC_OP_BINARY) {
            fprintf(stderr, "wsc: skipped a binary message of %zu bytes\n", c->msglen);
            c->msglen = 0;
            continue;
        }
        if (!wsc_utf8_valid(c->msg, c->msglen))
            return wsc_violation(c, "text message is not valid UTF-8");
        return 1;
    }
}

int wsc_recv_text(struct wsc *c, char *out, size_t cap, int timeout_ms)
{
    int r = wsc_next_text(c, timeout_ms);
    size_t n = r == 1 ? c->msglen : 0;

    if (out != NULL && cap > 0) {
        n = n < cap - 1 ? n : cap - 1;
        memcpy(out, r == 1 ? (const char *)c->msg : "", n);
        out[n] = '\0';
    }
    return r == 1 ? (int)c->msglen : r;
}

/* Describe why no text came (after wsc_next_text returned r <= 0). */
static void wsc_why(const struct wsc *c, const char *who, int r, int ms)
{
    if (r == 0)
        fprintf(stderr, "%s: no message within %d ms\n", who, ms);
    else if (c->close_received)
        fprintf(stderr, "%s: close frame instead (code %d, reason \"%s\")\n", who, c->close_code,
                c->close_reason);
    else
        fprintf(stderr, "%s: %s instead\n", who,
                c->proto_error ? "protocol violation"
                : c->eof       ? "EOF"
                               : "I/O error");
}

int wsc_expect_text(struct wsc *c, const char *want, int timeout_ms)
{
    int r = wsc_next_text(c, timeout_ms);

    if (r == 1 && c->msglen == strlen(want) && memcmp(c->msg, want, c->msglen) == 0)
        return 1;
    fprintf(stderr, "wsc_expect_text: wanted \"%s\"\n", want);
    if (r == 1)
        fprintf(stderr, "wsc_expect_text: got \"%.*s\"%s\n",
                (int)(c->msglen < 300 ? c->msglen : 300), (const char *)c->msg,
                c->msglen > 300 ? "..." : "");
    else
        wsc_why(c, "wsc_expect_text", r, timeout_ms);
    return 0;
}

int wsc_no_text(struct wsc *c, int ms)
{
    int r = wsc_next_text(c, ms);

    if (r == 0)
        return 1;
    if (r == 1)
        fprintf(stderr, "wsc_no_text: got \"%.*s\"\n", (int)(c->msglen < 300 ? c->msglen : 300),
                (const char *)c->msg);
    else
        wsc_why(c, "wsc_no_text", r, ms);
    return 0;
}

int wsc_wait_eof(struct wsc *c, int timeout_ms)
{
    long long deadline = wsc_now_ms() + timeout_ms;
    struct wsc_frame f;
    int r;

    while (!c->eof && c->fd != -1 && c->buf != NULL) {
        if (!c->proto_error && c->upgraded) {
            r = wsc_recv_frame(c, &f, wsc_left(deadline));
            if (r == 0)
                return 0;
            if (r < 0 && !c->eof && !c->proto_error)
                return 1; /* local failure: nothing more will be read */
            continue;
        }
        /* no handshake, or out of sync after a violation: drop raw bytes */
        c->len = c->consumed = 0;
        if (wsc_fill(c, deadline) == 0)
            return 0;
    }
    return 1;
}

int wsc_wait_close(struct wsc *c, int timeout_ms)
{
    long long deadline = wsc_now_ms() + timeout_ms;
    struct wsc_frame f;
    int r;

    while (!c->close_received) {
        r = wsc_recv_frame(c, &f, wsc_left(deadline));
        if (r == 0)
            return WSC_CLOSE_TIMEOUT;
        if (r < 0)
            return WSC_CLOSE_NONE;
        if (f.opcode == WSC_OP_PING)
            wsc_send_frame(c, 1, 0, WSC_OP_PONG, f.payload, f.len, 1);
    }
    wsc_echo_close(c);
    if (!wsc_wait_eof(c, wsc_left(deadline))) {
        fprintf(stderr, "wsc_wait_close: close frame (code %d) but no EOF within %d ms\n",
                c->close_code, timeout_ms);
        return WSC_CLOSE_TIMEOUT;
    }
    return c->close_code >= 0 ? c->close_code : WSC_CLOSE_NO_CODE;
}

void wsc_free(struct wsc *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd != -1)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    free(c->msg);
    c->buf = c->msg = NULL;
    c->len = c->cap = c->consumed = c->msglen = c->msgcap = 0;
}
