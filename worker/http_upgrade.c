/* http_upgrade.c -- the HTTP/1.1 side of a WebSocket connection (see http_upgrade.h).
 *
 * Pure: no I/O, no logging. The request-head parser never allocates: it fills
 * struct upg_request with views into the caller's buffer. It is a byte-at-a-time
 * state machine that re-scans from the start on every call (heads are at most
 * UPG_HEAD_MAX bytes), refuses a byte as soon as it cannot start or continue a
 * valid head, and answers AGAIN only while the shortest possible completion of
 * what it has seen would still fit in UPG_HEAD_MAX bytes. Everything is
 * ASCII-only and locale-independent.
 */
#include "http_upgrade.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "base64.h"
#include "utf8.h"
#include "util.h"

/* RFC 7230 3.5: a server SHOULD ignore at least one empty line received before
 * the request line. We ignore up to two and refuse a third as BAD, so a stream
 * of empty lines cannot keep a connection in AGAIN. */
#define UPG_EMPTY_LINES_MAX 2

#define UPG_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define UPG_KEY_LEN 24 /* base64 of 16 bytes: 22 characters and "==" */
#define UPG_KEY_BYTES 16
#define UPG_SHA1_LEN 20

/* Parser states; the comment is the shortest input that completes a head. */
enum upg_state {
    UPG_S_START = 0,   /* "M / HTTP/1.1\n\n" (start of the request line) */
    UPG_S_START_CR,    /* "\n" + the above (CR of an empty leading line) */
    UPG_S_METHOD,      /* " / HTTP/1.1\n\n" */
    UPG_S_TARGET0,     /* "/ HTTP/1.1\n\n" */
    UPG_S_TARGET,      /* " HTTP/1.1\n\n" */
    UPG_S_VERSION,     /* the rest of "HTTP/1.1" + "\n\n" */
    UPG_S_VERSION_END, /* "\n\n" */
    UPG_S_LINE_CR,     /* "\n\n" (CR ending the request line or a header line) */
    UPG_S_LINE_START,  /* "\n" (a header line or the final empty line) */
    UPG_S_NAME,        /* ":\n\n" */
    UPG_S_VALUE_LEAD,  /* "\n\n" */
    UPG_S_VALUE,       /* "\n\n" */
    UPG_S_END_CR,      /* "\n" (CR of the final empty line) */
};

static const char upg_version_prefix[] = "HTTP/1."; /* then '0' or '1' */
#define UPG_VERSION_PREFIX_LEN (sizeof(upg_version_prefix) - 1)
#define UPG_VERSION_LEN (UPG_VERSION_PREFIX_LEN + 1)

static int upg_is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 7230 3.2.6 tchar. */
static int upg_is_tchar(unsigned char c)
{
    return upg_is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int upg_is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static unsigned char upg_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Case-insensitive (ASCII) comparison of n bytes. */
static int upg_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (upg_lower((unsigned char)a[i]) != upg_lower((unsigned char)b[i]))
            return 0;
    }
    return 1;
}

/* Fewest bytes that can still complete a head from state st (k = version
 * characters matched so far). See enum upg_state. */
static size_t upg_state_need(enum upg_state st, size_t k)
{
    switch (st) {
    case UPG_S_START:
        return 14;
    case UPG_S_START_CR:
        return 15;
    case UPG_S_METHOD:
        return 13;
    case UPG_S_TARGET0:
        return 12;
    case UPG_S_TARGET:
        return 11;
    case UPG_S_VERSION:
        return UPG_VERSION_LEN - k + 2;
    case UPG_S_NAME:
        return 3;
    case UPG_S_LINE_START:
    case UPG_S_END_CR:
        return 1;
    case UPG_S_VERSION_END:
    case UPG_S_LINE_CR:
    case UPG_S_VALUE_LEAD:
    case UPG_S_VALUE:
        break;
    }
    return 2;
}

/* Only the first UPG_HEAD_MAX bytes are looked at: a byte past them can never
 * be part of an acceptable head. Views are set as soon as their start is
 * known and their length when they end; req->nheaders counts finished header
 * lines. On a result other than OK, *req holds partial garbage. */
int upg_parse(const char *buf, size_t len, struct upg_request *req)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t n = len < UPG_HEAD_MAX ? len : UPG_HEAD_MAX;
    enum upg_state st = UPG_S_START;
    struct upg_header *h = NULL;
    size_t k = 0;       /* version characters matched */
    size_t vend = 0;    /* end of the value's last non-blank byte */
    unsigned empty = 0; /* empty lines before the request line */

    req->nheaders = 0;
    req->head_len = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];

        if (st == UPG_S_VALUE_LEAD) {
            if (upg_is_blank(c))
                continue;
            /* c is the value's first byte or its line end. */
            h->value.p = buf + i;
            vend = i;
            st = UPG_S_VALUE;
        }
        switch (st) {
        case UPG_S_START:
            /* A CR here can only start one more empty line. */
            if (c == '\r' || c == '\n') {
                if (empty == UPG_EMPTY_LINES_MAX)
                    return UPG_PARSE_BAD;
                if (c == '\r')
                    st = UPG_S_START_CR;
                else
                    empty++;
                break;
            }
            if (!upg_is_tchar(c))
                return UPG_PARSE_BAD;
            req->method.p = buf + i;
            st = UPG_S_METHOD;
            break;
        case UPG_S_START_CR:
            if (c != '\n')
                return UPG_PARSE_BAD;
            empty++;
            st = UPG_S_START;
            break;
        case UPG_S_METHOD:
            if (c == ' ') {
                req->method.len = (size_t)(buf + i - req->method.p);
                st = UPG_S_TARGET0;
            } else if (!upg_is_tchar(c)) {
                return UPG_PARSE_BAD;
            }
            break;
        case UPG_S_TARGET0:
            /* origin-form only: no "*", no absolute URI. */
            if (c != '/')
                return UPG_PARSE_BAD;
            req->target.p = buf + i;
            st = UPG_S_TARGET;
            break;
        case UPG_S_TARGET:
            if (c == ' ') {
                req->target.len = (size_t)(buf + i - req->target.p);
                req->version.p = buf + i + 1;
                req->version.len = UPG_VERSION_LEN;
                st = UPG_S_VERSION;
            } else if (c < 0x21 || c > 0x7e) {
                return UPG_PARSE_BAD;
            }
            break;
        case UPG_S_VERSION:
            if (k < UPG_VERSION_PREFIX_LEN) {
                if (c != (unsigned char)upg_version_prefix[k])
                    return UPG_PARSE_BAD;
            } else if (c != '0' && c != '1') {
                return UPG_PARSE_BAD;
            }
            if (++k == UPG_VERSION_LEN)
                st = UPG_S_VERSION_END;
            break;
        case UPG_S_VERSION_END:
            if (c == '\r')
                st = UPG_S_LINE_CR;
            else if (c == '\n')
                st = UPG_S_LINE_START;
            else
                return UPG_PARSE_BAD;
            break;
        case UPG_S_LINE_CR:
            if (c != '\n')
                return UPG_PARSE_BAD;
            st = UPG_S_LINE_START;
            break;
        case UPG_S_LINE_START:
            if (c == '\r') {
                st = UPG_S_END_CR;
                break;
            }
            if (c == '\n') {
                req->head_len = i + 1;
                return UPG_PARSE_OK;
            }
            /* A blank here is obs-fold, or whitespace between the request
             * line and the first header (RFC 7230 3: reject). */
            if (upg_is_blank(c))
                return UPG_PARSE_BAD;
            if (req->nheaders == UPG_HEADERS_MAX)
                return UPG_PARSE_TOO_LARGE;
            /* ':' here is an empty name. */
            if (!upg_is_tchar(c))
                return UPG_PARSE_BAD;
            h = &req->h[req->nheaders];
            h->name.p = buf + i;
            st = UPG_S_NAME;
            break;
        case UPG_S_NAME:
            if (c == ':') {
                h->name.len = (size_t)(buf + i - h->name.p);
                st = UPG_S_VALUE_LEAD;
            } else if (!upg_is_tchar(c)) {
                return UPG_PARSE_BAD; /* includes a blank before the colon */
            }
            break;
        case UPG_S_VALUE_LEAD: /* handled above the switch */
        case UPG_S_VALUE:
            if (c == '\r' || c == '\n') {
                h->value.len = vend - (size_t)(h->value.p - buf);
                req->nheaders++;
                st = c == '\r' ? UPG_S_LINE_CR : UPG_S_LINE_START;
                break;
            }
            /* field-vchar (with obs-text) and blanks; no CTL but HTAB. */
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return UPG_PARSE_BAD;
            if (!upg_is_blank(c))
                vend = i + 1;
            break;
        case UPG_S_END_CR:
            if (c != '\n')
                return UPG_PARSE_BAD;
            req->head_len = i + 1;
            return UPG_PARSE_OK;
        }
    }
    /* Incomplete. n <= UPG_HEAD_MAX, so the sum cannot wrap. */
    if (n + upg_state_need(st, k) > UPG_HEAD_MAX)
        return UPG_PARSE_TOO_LARGE;
    return UPG_PARSE_AGAIN;
}

const struct upg_str *upg_header_get(const struct upg_request *req, const char *name)
{
    size_t nlen;

    if (req == NULL || name == NULL)
        return NULL;
    nlen = strlen(name);
    for (size_t i = 0; i < req->nheaders && i < UPG_HEADERS_MAX; i++) {
        const struct upg_header *h = &req->h[i];

        if (h->name.len == nlen && upg_ieq(h->name.p, name, nlen))
            return &h->value;
    }
    return NULL;
}

/* How many headers are named `name` (case-insensitive). */
static size_t upg_header_count(const struct upg_request *req, const char *name)
{
    size_t nlen = strlen(name), count = 0;

    for (size_t i = 0; i < req->nheaders && i < UPG_HEADERS_MAX; i++) {
        const struct upg_header *h = &req->h[i];

        if (h->name.len == nlen && upg_ieq(h->name.p, name, nlen))
            count++;
    }
    return count;
}

/* One Host (RFC 9112 3.2) and one key (RFC 6455 11.3.1). An upgrade GET has
 * no body: what follows its head is WebSocket frames, so a body announced by
 * Transfer-Encoding or Content-Length (RFC 9112 6.3) would be read as frames,
 * and a proxy in front that framed it as a body would see other messages
 * than we do. */
const char *upg_framing_problem(const struct upg_request *req)
{
    const struct upg_str *length;

    if (req == NULL)
        return NULL;
    if (upg_header_count(req, "Host") > 1)
        return "duplicate Host header";
    if (upg_header_count(req, "Sec-WebSocket-Key") > 1)
        return "duplicate Sec-WebSocket-Key header";
    if (upg_header_count(req, "Transfer-Encoding") > 0)
        return "Transfer-Encoding not allowed on an upgrade";
    if (upg_header_count(req, "Content-Length") > 1)
        return "duplicate Content-Length header";
    length = upg_header_get(req, "Content-Length");
    if (length != NULL && (length->len != 1 || length->p[0] != '0'))
        return "Content-Length must be 0 on an upgrade";
    return NULL;
}

/* Empty items (",,") are skipped; an empty token never matches. */
int upg_has_token(const struct upg_str *value, const char *token)
{
    const char *p, *end;
    size_t tlen;

    if (value == NULL || value->p == NULL || token == NULL)
        return 0;
    tlen = strlen(token);
    if (tlen == 0)
        return 0;
    p = value->p;
    end = value->p + value->len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *iend = comma != NULL ? comma : end;

        while (p < iend && upg_is_blank((unsigned char)*p))
            p++;
        while (iend > p && upg_is_blank((unsigned char)iend[-1]))
            iend--;
        if ((size_t)(iend - p) == tlen && upg_ieq(p, token, tlen))
            return 1;
        p = comma != NULL ? comma + 1 : end;
    }
    return 0;
}

/* The strict decoder wants the canonical encoding (the 22nd character's 4
 * unused bits zero, then "=="), as every real client sends. */
int upg_key_valid(const struct upg_str *key)
{
    unsigned char raw[UPG_KEY_BYTES];

    if (key == NULL || key->p == NULL || key->len != UPG_KEY_LEN)
        return 0;
    return base64_decode(BASE64_STD, key->p, key->len, raw, sizeof(raw)) == UPG_KEY_BYTES;
}

/* OpenSSL can fail to allocate or fetch SHA-1; out is then the empty string,
 * which never equals a real accept value (callers may answer 500). */
void upg_accept_key(const char *key, size_t keylen, char out[UPG_ACCEPT_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;

    out[0] = '\0';
    if (ctx == NULL)
        return;
    ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1
         && (keylen == 0 || EVP_DigestUpdate(ctx, key, keylen) == 1)
         && EVP_DigestUpdate(ctx, UPG_WS_GUID, sizeof(UPG_WS_GUID) - 1) == 1
         && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == UPG_SHA1_LEN;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return;
    /* 20 bytes -> 28 characters and a NUL. */
    base64_encode(BASE64_STD, md, UPG_SHA1_LEN, out);
}

/* A NUL byte in the output is refused whether escaped or literal: the result
 * is used as a C string. On failure dst is the empty string (if dstcap > 0). */
ssize_t upg_percent_decode(const char *src, size_t len, char *dst, size_t dstcap)
{
    size_t o = 0;

    if (dst == NULL || dstcap == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];

        if (c == '%') {
            int hi, lo;

            if (len - i < 3)
                goto fail;
            hi = util_hex_digit((unsigned char)src[i + 1]);
            lo = util_hex_digit((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0)
                goto fail;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        /* Keep one byte for the NUL. */
        if (c == '\0' || o + 1 >= dstcap)
            goto fail;
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return (ssize_t)o;

fail:
    dst[0] = '\0';
    return -1;
}

/* Reasons for the printable ASCII bytes a name may not hold. The apostrophe and
 * the backslash are spelled out because #ch would keep their escapes. */
#define UPG_NAME_PUNCT(ch) [ch] = "user name contains " #ch
static const char *const upg_name_ascii_reason[128] = {
    UPG_NAME_PUNCT('!'), UPG_NAME_PUNCT('"'), UPG_NAME_PUNCT('#'), UPG_NAME_PUNCT('$'),
    UPG_NAME_PUNCT('%'), UPG_NAME_PUNCT('&'), UPG_NAME_PUNCT('('), UPG_NAME_PUNCT(')'),
    UPG_NAME_PUNCT('*'), UPG_NAME_PUNCT('+'), UPG_NAME_PUNCT(','), UPG_NAME_PUNCT('/'),
    UPG_NAME_PUNCT(':'), UPG_NAME_PUNCT(';'), UPG_NAME_PUNCT('<'), UPG_NAME_PUNCT('='),
    UPG_NAME_PUNCT('>'), UPG_NAME_PUNCT('?'), UPG_NAME_PUNCT('@'), UPG_NAME_PUNCT('['),
    UPG_NAME_PUNCT(']'), UPG_NAME_PUNCT('^'), UPG_NAME_PUNCT('`'), UPG_NAME_PUNCT('{'),
    UPG_NAME_PUNCT('|'), UPG_NAME_PUNCT('}'), UPG_NAME_PUNCT('~'),
    ['\''] = "user name contains \"'\"",
    ['\\'] = "user name contains '\\'",
    [' '] = "user name contains a space",
};
#undef UPG_NAME_PUNCT

#define UPG_NAME_CONTROL "user name contains a control character"
#define UPG_NAME_UNI_SPACE "user name contains a Unicode space or separator"
#define UPG_NAME_INVISIBLE "user name contains an invisible formatting character"
#define UPG_NAME_BAD_UTF8 "user name is not valid UTF-8"

/* Code points refused in names (header comment of upg_user_name_check). */
static const struct {
    unsigned lo, hi;
    const char *reason;
} upg_name_refused[] = {
    { 0x0080, 0x009f, UPG_NAME_CONTROL },   /* C1 controls */
    { 0x00a0, 0x00a0, UPG_NAME_UNI_SPACE }, /* no-break space */
    { 0x1680, 0x1680, UPG_NAME_UNI_SPACE }, /* ogham space mark */
    { 0x2000, 0x200a, UPG_NAME_UNI_SPACE }, /* en quad .. hair space */
    { 0x200b, 0x200f, UPG_NAME_INVISIBLE }, /* zero width space/joiners, LRM, RLM */
    { 0x2028, 0x2029, UPG_NAME_UNI_SPACE }, /* line and paragraph separators */
    { 0x202a, 0x202e, UPG_NAME_INVISIBLE }, /* bidi embeddings and overrides */
    { 0x202f, 0x202f, UPG_NAME_UNI_SPACE }, /* narrow no-break space */
    { 0x205f, 0x205f, UPG_NAME_UNI_SPACE }, /* medium mathematical space */
    { 0x2060, 0x2060, UPG_NAME_INVISIBLE }, /* word joiner */
    { 0x3000, 0x3000, UPG_NAME_UNI_SPACE }, /* ideographic space */
    { 0xfeff, 0xfeff, UPG_NAME_INVISIBLE }, /* zero width no-break space (BOM) */
};

/* The first offending character decides the reason; the length is checked
 * once every character is known to be acceptable. */
const char *upg_user_name_check(const char *name, size_t len)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t i = 0, nchars = 0;

    if (name == NULL || len == 0)
        return "user name is empty";
    while (i < len) {
        unsigned char c = s[i];
        uint32_t cp;
        size_t n;

        if (c < 0x80) {
            if (upg_is_alnum(c) || c == '_' || c == '-' || c == '.') {
                i++;
                nchars++;
                continue;
            }
            if (c < 0x20 || c == 0x7f)
                return UPG_NAME_CONTROL;
            return upg_name_ascii_reason[c] != NULL ? upg_name_ascii_reason[c]
                                                    : "user name contains a forbidden character";
        }
        n = utf8_decode(s + i, len - i, &cp);
        if (n == 0)
            return UPG_NAME_BAD_UTF8;
        for (size_t r = 0; r < sizeof(upg_name_refused) / sizeof(upg_name_refused[0]); r++) {
            if (cp >= upg_name_refused[r].lo && cp <= upg_name_refused[r].hi)
                return upg_name_refused[r].reason;
        }
        i += n;
        nchars++;
    }
    if (nchars > UPG_USER_MAX_CHARS)
        return "user name is longer than 32 characters";
    return NULL;
}

static const char *upg_reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

/* snprintf's result clamped to what is in out: the written length, < cap.
 * With cap == 0 nothing is written and 0 is returned. */
static size_t upg_clamp(int n, char *out, size_t cap)
{
    if (cap == 0)
        return 0;
    if (n < 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

/* A NULL body is an empty one (the body is then just "\n"). A status outside
 * 100..599 would make an invalid status line: it is sent as 500. */
size_t upg_response(char *out, size_t cap, int status, const char *extra, const char *body)
{
    int n;

    if (body == NULL)
        body = "";
    if (extra == NULL)
        extra = "";
    if (status < 100 || status > 599)
        status = 500;
    n = snprintf(out, cap,
                 "HTTP/1.1 %d %s\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\n"
                 "Content-Length: %zu\r\n"
                 "Connection: close\r\n"
                 "%s\r\n"
                 "%s\n",
                 status, upg_reason_phrase(status), strlen(body) + 1, extra, body);
    return upg_clamp(n, out, cap);
}

size_t upg_response_101(char *out, size_t cap, const char accept[UPG_ACCEPT_LEN + 1])
{
    return upg_response_101_protocol(out, cap, accept, NULL, 0);
}

size_t upg_response_101_protocol(char *out, size_t cap, const char accept[UPG_ACCEPT_LEN + 1],
                                 const char *protocol, size_t protolen)
{
    return upg_response_101_ext(out, cap, accept, protocol, protolen, NULL);
}

size_t upg_response_101_ext(char *out, size_t cap, const char accept[UPG_ACCEPT_LEN + 1],
                            const char *protocol, size_t protolen, const char *extra)
{
    int n = snprintf(out, cap,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %.*s\r\n"
                     "%s%.*s%s%s"
                     "\r\n",
                     UPG_ACCEPT_LEN, accept, protocol ? "Sec-WebSocket-Protocol: " : "",
                     protocol ? (int)protolen : 0, protocol ? protocol : "", protocol ? "\r\n" : "",
                     extra ? extra : "");

    return upg_clamp(n, out, cap);
}

int upg_query_param(const struct upg_str *target, const char *name, struct upg_str *value)
{
    const char *q = memchr(target->p, '?', target->len), *end = target->p + target->len;
    size_t nlen = strlen(name);

    if (q == NULL)
        return 0;
    for (q++; q < end;) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp != NULL ? amp : end;

        if ((size_t)(stop - q) > nlen && memcmp(q, name, nlen) == 0 && q[nlen] == '=') {
            value->p = q + nlen + 1;
            value->len = (size_t)(stop - value->p);
            return 1;
        }
        q = stop + 1;
    }
    return 0;
}
