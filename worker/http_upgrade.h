/* http_upgrade.h -- the HTTP/1.1 side of a WebSocket connection.
 *
 * A small, strict request-head parser (no allocation: views into the
 * caller's buffer), the RFC 6455 accept key, percent-decoding, user-name
 * validation and the canned responses. Pure: no I/O, no logging.
 */
#ifndef RC_HTTP_UPGRADE_H
#define RC_HTTP_UPGRADE_H

#include <stddef.h>
#include <sys/types.h>

#define UPG_HEAD_MAX 8192      /* request head limit (request line + headers) */
#define UPG_HEADERS_MAX 64
#define UPG_ACCEPT_LEN 28      /* base64 of a SHA-1 digest */
#define UPG_USER_MAX_CHARS 32  /* characters, not bytes */
#define UPG_USER_MAX_BYTES (UPG_USER_MAX_CHARS * 4)

struct upg_str {
    const char *p;
    size_t len;
};

struct upg_header {
    struct upg_str name, value; /* value without surrounding blanks */
};

struct upg_request {
    struct upg_str method, target, version;
    size_t nheaders;
    struct upg_header h[UPG_HEADERS_MAX];
    size_t head_len; /* bytes of the head, final CRLFCRLF included */
};

enum upg_parse_result {
    UPG_PARSE_OK = 0,        /* head complete, req filled */
    UPG_PARSE_AGAIN = 1,     /* incomplete: read more (buf is a prefix) */
    UPG_PARSE_BAD = -1,      /* syntax error -> 400 */
    UPG_PARSE_TOO_LARGE = -2,/* head over UPG_HEAD_MAX or too many headers -> 431 */
};

/* Parse the request head at buf[0..len). Lines end in CRLF (a bare LF is
 * accepted too). Request line: METHOD SP TARGET SP HTTP/1.x. Header names are
 * tokens; no obsolete line folding; no NUL or other control bytes except HTAB
 * in values. Returns an enum upg_parse_result. AGAIN only while the bytes seen
 * so far could still be a valid head shorter than UPG_HEAD_MAX. */
int upg_parse(const char *buf, size_t len, struct upg_request *req);

/* Value of the first header named `name` (case-insensitive), or NULL. */
const struct upg_str *upg_header_get(const struct upg_request *req, const char *name);

/* Framing of an upgrade request's head (RFC 9112, RFC 6455 4.2.1): NULL when
 * it is fine, else the reason for the HTTP 400 body. Checked in this order,
 * header names case-insensitively:
 *   "duplicate Host header"                        a second Host
 *   "duplicate Sec-WebSocket-Key header"           a second key
 *   "Transfer-Encoding not allowed on an upgrade"  any Transfer-Encoding
 *   "duplicate Content-Length header"              a second Content-Length,
 *                                                  even "0" both times
 *   "Content-Length must be 0 on an upgrade"       any value but exactly "0"
 *                                                  ("00", "+0", "0, 0" too)
 * A missing Host or key is the caller's check; NULL req gives NULL. */
const char *upg_framing_problem(const struct upg_request *req);

/* Nonzero when the comma-separated header value contains `token`
 * (case-insensitive, blanks around items ignored): "keep-alive, Upgrade". */
int upg_has_token(const struct upg_str *value, const char *token);

/* Nonzero when key is the base64 encoding of exactly 16 bytes. */
int upg_key_valid(const struct upg_str *key);

/* Sec-WebSocket-Accept for key: base64(SHA-1(key + GUID)), NUL-terminated
 * into out[UPG_ACCEPT_LEN + 1]. */
void upg_accept_key(const char *key, size_t keylen, char out[UPG_ACCEPT_LEN + 1]);

/* Percent-decode src into dst (capacity dstcap, NUL-terminated). "%41" ->
 * "A"; '+' is kept as '+'. Returns the decoded length, or -1 for a bad escape
 * (not two hex digits), a decoded NUL byte, or output that does not fit. */
ssize_t upg_percent_decode(const char *src, size_t len, char *dst, size_t dstcap);

/* Check a decoded user name: 1..32 characters of ASCII letters, digits, '_',
 * '-', '.', or non-ASCII UTF-8 characters that are not spaces or controls
 * (U+0080..U+009F, U+00A0, U+1680, U+2000..U+200F, U+2028..U+202F, U+205F,
 * U+2060, U+3000, U+FEFF refused). The UTF-8 must be valid (no overlongs,
 * surrogates or code points above U+10FFFF). Returns NULL when valid, else
 * a short reason ("user name is empty", "user name is longer than 32
 * characters", "user name contains ':'", "user name is not valid UTF-8",
 * ...) for the HTTP 400 body. */
const char *upg_user_name_check(const char *name, size_t len);

/* Write a complete HTTP/1.1 error or plain response into out (NUL-terminated,
 * truncated safely to cap) and return its length:
 *   "HTTP/1.1 <status> <reason>\r\nContent-Type: text/plain; charset=utf-8\r\n"
 *   "Content-Length: N\r\nConnection: close\r\n<extra>\r\n<body>\n"
 * `extra` is zero or more complete header lines ("Sec-WebSocket-Version: 13\r\n")
 * or NULL. The reason phrase comes from the status (200, 400, 403, 404, 405,
 * 426, 429, 431, 503, else "Error"). */
size_t upg_response(char *out, size_t cap, int status, const char *extra, const char *body);

/* The 101 response for an accepted key; returns its length (<= cap). The
 * _protocol variant also names the chosen Sec-WebSocket-Protocol. */
size_t upg_response_101(char *out, size_t cap, const char accept[UPG_ACCEPT_LEN + 1]);
size_t upg_response_101_protocol(char *out, size_t cap, const char accept[UPG_ACCEPT_LEN + 1],
                                 const char *protocol, size_t protolen);
/* ... and complete header lines `extra` (NULL: none), the extensions'. */
size_t upg_response_101_ext(char *out, size_t cap, const char accept[UPG_ACCEPT_LEN + 1],
                            const char *protocol, size_t protolen, const char *extra);

/* Find query parameter `name` in a request target ("/chat/foo?token=abc"):
 * 1 with *value set to its raw (still percent-encoded) value, else 0. */
int upg_query_param(const struct upg_str *target, const char *name, struct upg_str *value);

#endif
