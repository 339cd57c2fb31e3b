/* config.c -- directive table, parser (buffer or file), environment
 * overrides, derived defaults and validation.
 *
 * One table (nginx ngx_command_t, redis static_configs[]) says, for every
 * directive, its type, where it lives in struct cfg, its range and default;
 * cfg_init, the parser, cfg_finalize and cfg_free all walk it, so a new
 * directive is one line here plus one field in config.h. The text is split
 * into lines and each line into words redis.conf style (cfg_line_split).
 * Pure: no logging, no exit(); errors go to the caller's err buffer.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

#include "room.h"
#include "util.h"

enum cfg_type {
    CFG_STR = 0, /* char *; min/max: length in bytes; min 0 = optional, "" = NULL */
    CFG_UINT,    /* int */
    CFG_LONG,    /* long */
    CFG_BOOL,    /* int, yes/no */
    CFG_SIZE,    /* long, bytes; k/kb/m/mb/g/gb suffixes */
    CFG_MSEC,    /* long, milliseconds; ms/s/m/h suffixes */
    CFG_LEVEL,   /* enum cfg_log_level */
};

#define CFG_F_ZERO_OFF 0x1u /* 0 is accepted besides min..max ("off") */
#define CFG_F_NOCTRL 0x2u   /* string must not hold control characters */
#define CFG_F_ADDRS 0x4u    /* string: 1 .. CFG_ADDRS_MAX blank-separated host:port words */

struct cfg_directive {
    const char *name;
    enum cfg_type type;
    size_t off;          /* offsetof(struct cfg, field) */
    long min, max;       /* range, or string length range */
    unsigned int flags;  /* CFG_F_* */
    long def;            /* numeric default */
    const char *def_str; /* string default, NULL = not set */
};

#define CFG_OFF(field) offsetof(struct cfg, field)
#define CFG_HOST_MAX 255L
#define CFG_PATH_MAX 4096L
#define CFG_SUN_PATH_MAX ((long)sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define CFG_HOUR_MS 3600000L
#define CFG_DAY_MS (24 * CFG_HOUR_MS)
#define CFG_MIB (1024L * 1024)
#define CFG_WORKERS_MAX 256
#define CFG_AUTH_SECRET_MIN 32
#define CFG_FILE_MAX (1024 * 1024) /* a config file larger than this is a mistake */
#define CFG_ARGV_MAX (CFG_ADDRS_MAX + 2) /* directive, values, and one to see "too many" */

static const struct cfg_directive cfg_directives[] = {
    /* listening */
    { "bind", CFG_STR, CFG_OFF(bind), 1, CFG_HOST_MAX, CFG_F_NOCTRL, 0, "0.0.0.0" },
    { "port", CFG_UINT, CFG_OFF(port), 0, 65535, 0, 8080, NULL },
    { "workers", CFG_UINT, CFG_OFF(workers), 1, CFG_WORKERS_MAX, 0, 1, NULL },
    { "broker-socket", CFG_STR, CFG_OFF(broker_socket), 1, CFG_SUN_PATH_MAX, 0, 0, NULL },
    { "tls-port", CFG_UINT, CFG_OFF(tls_port), 1, 65535, CFG_F_ZERO_OFF, 0, NULL },
    { "tls-cert", CFG_STR, CFG_OFF(tls_cert), 0, CFG_PATH_MAX, 0, 0, NULL },
    { "tls-key", CFG_STR, CFG_OFF(tls_key), 0, CFG_PATH_MAX, 0, 0, NULL },
    { "tls-ca-cert", CFG_STR, CFG_OFF(tls_ca_cert), 0, CFG_PATH_MAX, 0, 0, NULL },
    { "deflate", CFG_BOOL, CFG_OFF(deflate), 0, 1, 0, 0, NULL },
    { "deflate-threshold", CFG_SIZE, CFG_OFF(deflate_threshold), 0, CFG_MIB, 0, 256, NULL },
    { "metrics-port", CFG_UINT, CFG_OFF(metrics_port), 1, 65535, CFG_F_ZERO_OFF, 0, NULL },
    { "metrics-bind", CFG_STR, CFG_OFF(metrics_bind), 1, CFG_HOST_MAX, CFG_F_NOCTRL, 0,
      "127.0.0.1" },
    /* process */
    { "pidfile", CFG_STR, CFG_OFF(pidfile), 0, CFG_PATH_MAX, 0, 0, NULL },
    { "daemonize", CFG_BOOL, CFG_OFF(daemonize), 0, 1, 0, 0, NULL },
    { "log-level", CFG_LEVEL, CFG_OFF(log_level), CFG_LOG_DEBUG, CFG_LOG_ERROR, 0, CFG_LOG_INFO,
      NULL },
    { "logfile", CFG_STR, CFG_OFF(logfile), 0, CFG_PATH_MAX, 0, 0, NULL },
    { "user", CFG_STR, CFG_OFF(user), 0, CFG_HOST_MAX, CFG_F_NOCTRL, 0, NULL },
    { "group", CFG_STR, CFG_OFF(group), 0, CFG_HOST_MAX, CFG_F_NOCTRL, 0, NULL },
    /* redis */
    { "redis-host", CFG_STR, CFG_OFF(redis_host), 1, CFG_HOST_MAX, CFG_F_NOCTRL, 0, "127.0.0.1" },
    { "redis-port", CFG_UINT, CFG_OFF(redis_port), 1, 65535, 0, 6379, NULL },
    { "redis-password", CFG_STR, CFG_OFF(redis_password), 0, CFG_PATH_MAX, 0, 0, NULL },
    { "redis-db", CFG_UINT, CFG_OFF(redis_db), 0, 1000000, 0, 0, NULL },
    { "redis-tls", CFG_BOOL, CFG_OFF(redis_tls), 0, 1, 0, 0, NULL },
    { "redis-tls-ca-cert", CFG_STR, CFG_OFF(redis_tls_ca_cert), 0, CFG_PATH_MAX, 0, 0, NULL },
    { "redis-tls-cert", CFG_STR, CFG_OFF(redis_tls_cert), 0, CFG_PATH_MAX, 0, 0, NULL },
    { "redis-tls-key", CFG_STR, CFG_OFF(redis_tls_key), 0, CFG_PATH_MAX, 0, 0, NULL },
    { "redis-tls-server-name", CFG_STR, CFG_OFF(redis_tls_server_name), 0, CFG_HOST_MAX,
      CFG_F_NOCTRL, 0, NULL },
    { "redis-sentinel", CFG_STR, CFG_OFF(redis_sentinel), 0, CFG_PATH_MAX,
      CFG_F_NOCTRL | CFG_F_ADDRS, 0, NULL },
    { "redis-sentinel-master", CFG_STR, CFG_OFF(redis_sentinel_master), 0, CFG_NAME_MAX,
      CFG_F_NOCTRL, 0, NULL },
    { "redis-sentinel-password", CFG_STR, CFG_OFF(redis_sentinel_password), 0, CFG_PATH_MAX, 0, 0,
      NULL },
    { "redis-cluster", CFG_BOOL, CFG_OFF(redis_cluster), 0, 1, 0, 0, NULL },
    { "redis-cluster-nodes", CFG_STR, CFG_OFF(redis_cluster_nodes), 0, CFG_PATH_MAX,
      CFG_F_NOCTRL | CFG_F_ADDRS, 0, NULL },
    { "redis-wait-replicas", CFG_UINT, CFG_OFF(redis_wait_replicas), 0, 16, 0, 0, NULL },
    { "redis-wait-timeout", CFG_MSEC, CFG_OFF(redis_wait_timeout), 1, 60000, 0, 1000, NULL },
    /* chat */
    { "channel", CFG_STR, CFG_OFF(channel), 1, CFG_NAME_MAX, CFG_F_NOCTRL, 0, "chat" },
    { "users-key", CFG_STR, CFG_OFF(users_key), 1, CFG_NAME_MAX, CFG_F_NOCTRL, 0, "chat-users" },
    { "announce", CFG_BOOL, CFG_OFF(announce), 0, 1, 0, 1, NULL },
    { "max-rooms-per-connection", CFG_LONG, CFG_OFF(max_rooms_per_connection), 1, 1024, 0, 16,
      NULL },
    { "max-rooms", CFG_LONG, CFG_OFF(max_rooms), 1, 1000000, 0, 10000, NULL },
    { "presence-max", CFG_LONG, CFG_OFF(presence_max), 1, CFG_PRESENCE_MAX, 0, 100, NULL },
    /* history */
    { "history-size", CFG_LONG, CFG_OFF(history_size), 0, 10000000, 0, 1000, NULL },
    { "history-ttl", CFG_MSEC, CFG_OFF(history_ttl), 1000, 366 * CFG_DAY_MS, CFG_F_ZERO_OFF, 0,
      NULL },
    { "history-on-join", CFG_LONG, CFG_OFF(history_on_join), 0, 100000, 0, 50, NULL },
    { "history-on-join-max", CFG_LONG, CFG_OFF(history_on_join_max), 0, 100000, 0, 1000, NULL },
    /* limits and timers */
    { "max-message-size", CFG_SIZE, CFG_OFF(max_message_size), 64, 16 * CFG_MIB, 0, 4096, NULL },
    { "max-connections", CFG_LONG, CFG_OFF(max_connections), 1, 10000000, 0, 10000, NULL },
    { "max-pending-bytes", CFG_SIZE, CFG_OFF(max_pending_bytes), 1024, 1024 * CFG_MIB, 0, CFG_MIB,
      NULL },
    { "max-worker-backlog", CFG_SIZE, CFG_OFF(max_worker_backlog), 64 * 1024, 1024 * CFG_MIB, 0,
      16 * CFG_MIB, NULL },
    { "handshake-timeout", CFG_MSEC, CFG_OFF(handshake_timeout), 100, CFG_HOUR_MS, 0, 10000, NULL },
    { "ping-interval", CFG_MSEC, CFG_OFF(ping_interval), 100, CFG_HOUR_MS, CFG_F_ZERO_OFF, 30000,
      NULL },
    { "shutdown-timeout", CFG_MSEC, CFG_OFF(shutdown_timeout), 0, CFG_HOUR_MS, 0, 10000, NULL },
    /* abuse limits and access */
    { "max-connections-per-ip", CFG_LONG, CFG_OFF(max_connections_per_ip), 1, 1000000,
      CFG_F_ZERO_OFF, 256, NULL },
    { "rate-limit", CFG_LONG, CFG_OFF(rate_limit), 1, 100000, CFG_F_ZERO_OFF, 20, NULL },
    { "rate-limit-burst", CFG_LONG, CFG_OFF(rate_limit_burst), 1, 100000, 0, 40, NULL },
    { "allowed-origins", CFG_STR, CFG_OFF(allowed_origins), 0, CFG_PATH_MAX, CFG_F_NOCTRL, 0,
      NULL },
    { "auth-secret", CFG_STR, CFG_OFF(auth_secret), 0, CFG_PATH_MAX, 0, 0, NULL },
    { "echo-endpoint", CFG_BOOL, CFG_OFF(echo_endpoint), 0, 1, 0, 0, NULL },
    /* performance */
    { "io-uring", CFG_BOOL, CFG_OFF(io_uring), 0, 1, 0, 1, NULL },
    { "flush-interval", CFG_MSEC, CFG_OFF(flush_interval), 1, 1000, CFG_F_ZERO_OFF, 2,
      NULL },
    /* faults */
    { "outbox-size", CFG_LONG, CFG_OFF(outbox_size), 0, 10000000, 0, 1000, NULL },
    { "outbox-timeout", CFG_MSEC, CFG_OFF(outbox_timeout), 100, CFG_HOUR_MS, 0, 10000, NULL },
    { "instance-ttl", CFG_MSEC, CFG_OFF(instance_ttl), 1000, CFG_HOUR_MS, 0, 10000, NULL },
};

#define CFG_NDIRECTIVES (sizeof cfg_directives / sizeof cfg_directives[0])

_Static_assert(CFG_NDIRECTIVES <= CFG_DIRECTIVES_MAX, "grow CFG_DIRECTIVES_MAX in config.h");

struct cfg_unit {
    const char *suffix; /* compared case-insensitively */
    long long mult;
};

static const struct cfg_unit cfg_units_plain[] = { { "", 1 }, { NULL, 0 } };
static const struct cfg_unit cfg_units_size[] = {
    { "", 1 },          { "k", 1L << 10 }, { "kb", 1L << 10 }, { "m", 1L << 20 },
    { "mb", 1L << 20 }, { "g", 1L << 30 }, { "gb", 1L << 30 }, { NULL, 0 },
};
static const struct cfg_unit cfg_units_msec[] = {
    { "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
    { "d", CFG_DAY_MS }, { NULL, 0 },
};

static const char *const cfg_level_names[] = { "debug", "info", "warn", "error" };

__attribute__((format(printf, 3, 4))) static void cfg_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Copy s into buf (n >= 8) for an error message: at most ~32 bytes, control
 * and non-ASCII bytes shown as '?', "..." when cut. Returns buf. */
static const char *cfg_quote(const char *s, char *buf, size_t n)
{
    size_t i, keep = n - 4 < 32 ? n - 4 : 32;

    for (i = 0; s[i] != '\0' && i < keep; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
    }
    if (s[i] != '\0') {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

static int cfg_host_port_split(const char *s, char **host, int *port, char *why, size_t whylen);

/* Word i (from 0) of a blank-separated list into out (cap bytes): 0, -1
 * past the last word, -2 when it does not fit. */
static int cfg_word_at(const char *list, size_t i, char *out, size_t cap)
{
    const char *p = list;
    size_t n;

    for (;;) {
        p += strspn(p, " ");
        if (*p == '\0')
            return -1;
        n = strcspn(p, " ");
        if (i-- == 0)
            break;
        p += n;
    }
    if (n >= cap)
        return -2;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* A CFG_F_ADDRS value: 1 .. CFG_ADDRS_MAX words, each host:port. */
static int cfg_addrs_check(const char *s, char *why, size_t whylen)
{
    char word[CFG_HOST_MAX + 16], *host;
    size_t i;
    int port, rc;

    for (i = 0; (rc = cfg_word_at(s, i, word, sizeof word)) != -1; i++) {
        if (rc == -2) {
            cfg_err(why, whylen, "address %zu is too long", i + 1);
            return -1;
        }
        if (i == CFG_ADDRS_MAX) {
            cfg_err(why, whylen, "more than %d addresses", CFG_ADDRS_MAX);
            return -1;
        }
        if (cfg_host_port_split(word, &host, &port, why, whylen) == -1)
            return -1;
        free(host);
        if (port == 0) {
            cfg_err(why, whylen, "'%.40s' names no port (host:port)", word);
            return -1;
        }
    }
    if (i == 0) {
        cfg_err(why, whylen, "expected host:port words");
        return -1;
    }
    return 0;
}

int cfg_addr_at(const char *list, size_t i, char *host, size_t hostcap, int *port)
{
    char word[CFG_HOST_MAX + 16], why[CFG_ERR_LEN], *h;

    if (list == NULL || cfg_word_at(list, i, word, sizeof word) != 0 ||
        cfg_host_port_split(word, &h, port, why, sizeof why) == -1)
        return -1;
    if (strlen(h) >= hostcap) {
        free(h);
        return -1;
    }
    strcpy(host, h);
    free(h);
    return 0;
}

static int cfg_has_ctrl(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static char **cfg_str_at(struct cfg *cfg, const struct cfg_directive *d)
{
    return (char **)(void *)((char *)cfg + d->off);
}

/* Numeric fields are int, long or the log-level enum: read and write them
 * through long long so range checks are written once. */
static long long cfg_num_get(const struct cfg *cfg, const struct cfg_directive *d)
{
    const char *base = (const char *)cfg + d->off;

    switch (d->type) {
    case CFG_UINT:
    case CFG_BOOL: return *(const int *)(const void *)base;
    case CFG_LEVEL: return *(const enum cfg_log_level *)(const void *)base;
    default: return *(const long *)(const void *)base;
    }
}

static void cfg_num_set(struct cfg *cfg, const struct cfg_directive *d, long long v)
{
    char *base = (char *)cfg + d->off;

    switch (d->type) {
    case CFG_UINT:
    case CFG_BOOL: *(int *)(void *)base = (int)v; break;
    case CFG_LEVEL: *(enum cfg_log_level *)(void *)base = (enum cfg_log_level)v; break;
    default: *(long *)(void *)base = (long)v; break;
    }
}

static int cfg_num_in_range(const struct cfg_directive *d, long long v)
{
    if (v == 0 && (d->flags & CFG_F_ZERO_OFF))
        return 1;
    return v >= d->min && v <= d->max;
}

/* The "what is wrong" text for a number out of d's range. */
static void cfg_range_why(const struct cfg_directive *d, char *why, size_t whylen)
{
    const char *unit = d->type == CFG_SIZE ? " bytes" : d->type == CFG_MSEC ? " ms" : "";

    if (d->type == CFG_BOOL)
        cfg_err(why, whylen, "must be yes or no");
    else if (d->type == CFG_LEVEL)
        cfg_err(why, whylen, "must be debug, info, warn or error");
    else if (d->flags & CFG_F_ZERO_OFF)
        cfg_err(why, whylen, "must be 0 (off) or %ld..%ld%s", d->min, d->max, unit);
    else
        cfg_err(why, whylen, "must be %ld..%ld%s", d->min, d->max, unit);
}

/* Check a string value against d (NULL counts as empty). Returns 0, or -1
 * with why filled. */
static int cfg_str_check(const struct cfg_directive *d, const char *s, char *why, size_t whylen)
{
    size_t len = s != NULL ? strlen(s) : 0;

    if (len == 0) {
        if (d->min > 0) {
            cfg_err(why, whylen, "must not be empty");
            return -1;
        }
        return 0;
    }
    if (len > (size_t)d->max) {
        cfg_err(why, whylen, "longer than %ld bytes", d->max);
        return -1;
    }
    if ((d->flags & CFG_F_NOCTRL) && cfg_has_ctrl(s)) {
        cfg_err(why, whylen, "must not contain control characters");
        return -1;
    }
    if ((d->flags & CFG_F_ADDRS) && cfg_addrs_check(s, why, whylen) == -1)
        return -1;
    return 0;
}

/* Replace *slot with a copy of s (NULL or "" store NULL). -1 on ENOMEM,
 * leaving *slot as it was. */
static int cfg_str_replace(char **slot, const char *s)
{
    char *copy = NULL;

    if (s != NULL && *s != '\0' && (copy = strdup(s)) == NULL)
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

/* Parse an optional '-' and decimal digits at s into *v, saturating at the
 * long long limits (the caller's range check refuses those); *end gets the
 * first byte after the digits. -1 when there are no digits. */
static int cfg_parse_decimal(const char *s, long long *v, const char **end)
{
    int neg = *s == '-';
    long long n = 0;
    const char *p = s + neg;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        int digit = *p - '0';
        n = n > (LLONG_MAX - digit) / 10 ? LLONG_MAX : n * 10 + digit;
    }
    *v = neg ? -n : n;
    *end = p;
    return 0;
}

/* A number with an optional unit suffix from units. -1 when malformed. */
static int cfg_parse_number(const char *s, const struct cfg_unit *units, long long *v)
{
    const char *end;
    long long n;

    if (cfg_parse_decimal(s, &n, &end) == -1)
        return -1;
    for (; units->suffix != NULL; units++) {
        long long lim = LLONG_MAX / units->mult;
        if (strcasecmp(end, units->suffix) != 0)
            continue;
        *v = n > lim ? LLONG_MAX : n < -lim ? -LLONG_MAX : n * units->mult;
        return 0;
    }
    return -1;
}

/* Convert the text v for directive d and store it in cfg (the old string is
 * freed). Returns 0, or -1 with why filled ("must be 1..256"). */
static int cfg_value_set(struct cfg *cfg, const struct cfg_directive *d, const char *v, char *why,
                         size_t whylen)
{
    const struct cfg_unit *units = cfg_units_plain;
    const char *what = "number", *hint = "";
    char q[40];
    long long n;
    size_t i;

    switch (d->type) {
    case CFG_STR:
        if (cfg_str_check(d, v, why, whylen) == -1)
            return -1;
        if (cfg_str_replace(cfg_str_at(cfg, d), v) == -1) {
            cfg_err(why, whylen, "out of memory");
            return -1;
        }
        return 0;
    case CFG_BOOL:
        if (strcasecmp(v, "yes") == 0)
            n = 1;
        else if (strcasecmp(v, "no") == 0)
            n = 0;
        else
            goto range;
        break;
    case CFG_LEVEL:
        n = strcasecmp(v, "warning") == 0 ? CFG_LOG_WARN : -1;
        for (i = 0; i < sizeof cfg_level_names / sizeof cfg_level_names[0]; i++)
            if (strcasecmp(v, cfg_level_names[i]) == 0)
                n = (long long)i;
        if (n == -1)
            goto range;
        break;
    default:
        if (d->type == CFG_SIZE) {
            units = cfg_units_size;
            what = "size";
            hint = " (suffixes: k, kb, m, mb, g, gb)";
        } else if (d->type == CFG_MSEC) {
            units = cfg_units_msec;
            what = "duration";
            hint = " (milliseconds, or suffixes: ms, s, m, h, d)";
        }
        if (cfg_parse_number(v, units, &n) == -1) {
            cfg_err(why, whylen, "invalid %s '%s'%s", what, cfg_quote(v, q, sizeof q), hint);
            return -1;
        }
        if (!cfg_num_in_range(d, n))
            goto range;
        break;
    }
    cfg_num_set(cfg, d, n);
    return 0;
range:
    cfg_range_why(d, why, whylen);
    return -1;
}

static const struct cfg_directive *cfg_directive_find(const char *name)
{
    size_t i;

    for (i = 0; i < CFG_NDIRECTIVES; i++)
        if (strcasecmp(name, cfg_directives[i].name) == 0)
            return &cfg_directives[i];
    return NULL;
}

/* Line on which the file set the directive stored at offset off; 0 if the
 * file did not set it. */
static unsigned int cfg_line_of(const struct cfg *cfg, size_t off)
{
    size_t i;

    for (i = 0; i < CFG_NDIRECTIVES; i++)
        if (cfg_directives[i].off == off)
            return cfg->set_line[i];
    return 0;
}

static int cfg_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Decode the quoted word at p[*i] (its opening quote) into *out and move
 * both past it: "..." takes \n \t \r \\ \" \xHH, '...' is literal. The
 * closing quote must end the word. Returns NULL, or what is wrong. */
static const char *cfg_word_unquote(const char *p, size_t len, size_t *i, char **out)
{
    size_t j = *i;
    char quote = p[j++], c, *o = *out;
    int hi, lo;

    for (;;) {
        if (j == len)
            return quote == '"' ? "unterminated \"quote\"" : "unterminated 'quote'";
        if ((c = p[j++]) == quote)
            break;
        if (c == '\\' && quote == '"') {
            if (j == len)
                return "unterminated \"quote\"";
            switch ((c = p[j++])) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case '\\':
            case '"': break;
            case 'x':
                if (len - j < 2 || (hi = util_hex_digit((unsigned char)p[j])) == -1 ||
                    (lo = util_hex_digit((unsigned char)p[j + 1])) == -1)
                    return "\\x needs two hex digits";
                j += 2;
                if ((c = (char)(hi << 4 | lo)) == '\0')
                    return "\\x00 is not allowed";
                break;
            default: return "unknown escape in \"quote\" (use \\n \\t \\r \\\\ \\\" \\xHH)";
            }
        }
        *o++ = c;
    }
    if (j < len && !cfg_is_space(p[j]))
        return "closing quote must be followed by a blank";
    *i = j;
    *out = o;
    return NULL;
}

/* Split one line p[0..len) (no '\n', no NUL) into words, redis.conf style:
 * blanks separate words, '#' where a word would start ends the line, quoted
 * words as cfg_word_unquote says, and no quote inside a bare word. Decoded
 * words go to out, which needs len + 1 bytes (a word never decodes longer
 * than its source, and its NUL takes the place of the blank after it), one
 * after another; argv[i] points at word i. Words past argv_max are decoded
 * and counted, not stored. Returns the word count, or -1 with *why set. */
static int cfg_line_split(const char *p, size_t len, char *out, char **argv, int argv_max,
                          const char **why)
{
    size_t i = 0;
    int n = 0;

    for (;;) {
        char *word = out;

        while (i < len && cfg_is_space(p[i]))
            i++;
        if (i == len || p[i] == '#')
            return n;
        if (p[i] == '"' || p[i] == '\'') {
            if ((*why = cfg_word_unquote(p, len, &i, &out)) != NULL)
                return -1;
        } else {
            for (; i < len && !cfg_is_space(p[i]); i++) {
                if (p[i] == '"' || p[i] == '\'') {
                    *why = "quote inside a word (quote the whole value)";
                    return -1;
                }
                *out++ = p[i];
            }
        }
        *out++ = '\0';
        if (n < argv_max)
            argv[n] = word;
        n++;
    }
}

/* Join n words that cfg_line_split left one after another in its output
 * buffer: each NUL between them becomes a blank. */
static void cfg_words_join(char **words, int n)
{
    int i;

    for (i = 0; i + 1 < n; i++)
        words[i][strlen(words[i])] = ' ';
}

/* End-of-text check: a key without a cert (or the reverse) is a typo that
 * would only show at the first TLS handshake. Reported on the line that
 * set the one that is there; pairs set in code are cfg_finalize's. */
static int cfg_parse_tls_pair(const struct cfg *cfg, const char *fname, char *err, size_t errlen)
{
    unsigned int cert_line = cfg_line_of(cfg, CFG_OFF(redis_tls_cert));
    unsigned int key_line = cfg_line_of(cfg, CFG_OFF(redis_tls_key));

    if (cfg->redis_tls_cert != NULL && cfg->redis_tls_key == NULL && cert_line != 0) {
        cfg_err(err, errlen, "%s:%u: redis-tls-cert: needs redis-tls-key", fname, cert_line);
        return -1;
    }
    if (cfg->redis_tls_key != NULL && cfg->redis_tls_cert == NULL && key_line != 0) {
        cfg_err(err, errlen, "%s:%u: redis-tls-key: needs redis-tls-cert", fname, key_line);
        return -1;
    }
    return 0;
}

int cfg_parse_buffer(struct cfg *cfg, const char *text, size_t len, const char *fname, char *err,
                     size_t errlen)
{
    char why[CFG_ERR_LEN], q[40], *scratch, *argv[CFG_ARGV_MAX];
    const struct cfg_directive *d;
    const char *what;
    unsigned int lineno = 0;
    size_t pos = 0, idx;
    int n, rc = -1;

    if (fname == NULL)
        fname = "(config)";
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3; /* UTF-8 byte order mark from a Windows editor */
    /* one scratch buffer big enough for the longest possible line */
    if ((scratch = malloc(len + 1)) == NULL) {
        cfg_err(err, errlen, "%s: out of memory", fname);
        return -1;
    }
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t llen = nl != NULL ? (size_t)(nl - line) : len - pos;

        pos += llen + (nl != NULL);
        lineno++;
        if (memchr(line, '\0', llen) != NULL) {
            cfg_err(err, errlen, "%s:%u: NUL byte in line", fname, lineno);
            goto out;
        }
        if ((n = cfg_line_split(line, llen, scratch, argv, CFG_ARGV_MAX, &what)) == -1) {
            cfg_err(err, errlen, "%s:%u: %s", fname, lineno, what);
            goto out;
        }
        if (n == 0)
            continue;
        if ((d = cfg_directive_find(argv[0])) == NULL) {
            cfg_err(err, errlen, "%s:%u: unknown directive '%s'", fname, lineno,
                    cfg_quote(argv[0], q, sizeof q));
            goto out;
        }
        idx = (size_t)(d - cfg_directives);
        if (cfg->set_line[idx] != 0) {
            cfg_err(err, errlen, "%s:%u: %s: duplicate directive (first set on line %u)", fname,
                    lineno, d->name, cfg->set_line[idx]);
            goto out;
        }
        if (n > 2 && (d->flags & CFG_F_ADDRS) && n <= CFG_ARGV_MAX - 1) {
            cfg_words_join(argv + 1, n - 1); /* one value: "a:1 b:2" */
            n = 2;
        }
        if (n != 2) {
            cfg_err(err, errlen, "%s:%u: %s: %s", fname, lineno, d->name,
                    n == 1                       ? "missing value"
                    : (d->flags & CFG_F_ADDRS) ? "too many addresses"
                                                 : "too many values (quote a value with blanks)");
            goto out;
        }
        if (cfg_value_set(cfg, d, argv[1], why, sizeof why) == -1) {
            cfg_err(err, errlen, "%s:%u: %s: %s", fname, lineno, d->name, why);
            goto out;
        }
        cfg->set_line[idx] = lineno;
    }
    rc = cfg_parse_tls_pair(cfg, fname, err, errlen);
out:
    free(scratch);
    return rc;
}

int cfg_load_file(struct cfg *cfg, const char *fname, char *err, size_t errlen)
{
    size_t len = 0, cap = 0;
    char *buf = NULL, *grown;
    int fd, rc = -1;
    ssize_t got;

    if ((fd = open(fname, O_RDONLY | O_CLOEXEC)) == -1) {
        cfg_err(err, errlen, "%s: %s", fname, strerror(errno));
        return -1;
    }
    /* read to EOF rather than trust st_size: -c /dev/stdin must work too */
    for (;;) {
        if (len == cap) {
            cap = cap != 0 ? cap * 2 : 4096;
            if ((grown = realloc(buf, cap)) == NULL) {
                cfg_err(err, errlen, "%s: out of memory", fname);
                goto out;
            }
            buf = grown;
        }
        got = read(fd, buf + len, cap - len);
        if (got == -1) {
            if (errno == EINTR)
                continue;
            cfg_err(err, errlen, "%s: %s", fname, strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        if ((len += (size_t)got) > CFG_FILE_MAX) {
            cfg_err(err, errlen, "%s: larger than %d bytes", fname, CFG_FILE_MAX);
            goto out;
        }
    }
    rc = cfg_parse_buffer(cfg, buf, len, fname, err, errlen);
out:
    free(buf);
    close(fd);
    return rc;
}

/* (Re)derive broker_socket from the current port, or the pid with port 0
 * (several test instances may share port 0 but never a pid). */
static int cfg_broker_socket_derive(struct cfg *cfg)
{
    char path[64];
    long id = cfg->port != 0 ? (long)cfg->port : (long)getpid();

    snprintf(path, sizeof path, "/tmp/redis-chat-%ld.sock", id);
    return cfg_str_replace(&cfg->broker_socket, path);
}

void cfg_init(struct cfg *cfg)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t i;

    memset(cfg, 0, sizeof *cfg);
    /* a failed strdup leaves NULL, which cfg_finalize reports */
    for (i = 0; i < CFG_NDIRECTIVES; i++) {
        const struct cfg_directive *d = &cfg_directives[i];
        if (d->type == CFG_STR)
            (void)cfg_str_replace(cfg_str_at(cfg, d), d->def_str);
        else
            cfg_num_set(cfg, d, d->def);
    }
    cfg->workers = cpus < 1 ? 1 : cpus > CFG_WORKERS_MAX ? CFG_WORKERS_MAX : (int)cpus;
    (void)cfg_broker_socket_derive(cfg);
}

int cfg_equal(const struct cfg *a, const struct cfg *b)
{
    size_t i;

    for (i = 0; i < CFG_NDIRECTIVES; i++) {
        const struct cfg_directive *d = &cfg_directives[i];
        if (d->type == CFG_STR) {
            const char *x = *cfg_str_at((struct cfg *)a, d), *y = *cfg_str_at((struct cfg *)b, d);
            if ((x == NULL) != (y == NULL) || (x != NULL && strcmp(x, y) != 0))
                return 0;
        } else if (cfg_num_get(a, d) != cfg_num_get(b, d)) {
            return 0;
        }
    }
    return 1;
}

void cfg_free(struct cfg *cfg)
{
    size_t i;

    for (i = 0; i < CFG_NDIRECTIVES; i++) {
        if (cfg_directives[i].type == CFG_STR) {
            char **slot = cfg_str_at(cfg, &cfg_directives[i]);
            free(*slot);
            *slot = NULL;
        }
    }
    memset(cfg->set_line, 0, sizeof cfg->set_line);
}

const char *cfg_getenv(const char *name)
{
    return getenv(name);
}

/* Split a REDIS_HOST value: "host", "host:port", "[v6]", "[v6]:port", or a
 * bare IPv6 address (two or more ':', no port). *host gets a heap copy
 * without brackets; *port is 0 when the value names none. Returns 0, or -1
 * with why filled. */
static int cfg_host_port_split(const char *s, char **host, int *port, char *why, size_t whylen)
{
    const struct cfg_directive *d = cfg_directive_find("redis-host");
    const char *h = s, *hend, *p = NULL, *colon;
    char q[40];
    long long n;

    if (*s == '[') {
        if ((hend = strchr(s, ']')) == NULL) {
            cfg_err(why, whylen, "missing ']' after an IPv6 address");
            return -1;
        }
        h = s + 1;
        if (hend[1] == ':') {
            p = hend + 2;
        } else if (hend[1] != '\0') {
            cfg_err(why, whylen, "expected ':port' after ']'");
            return -1;
        }
    } else if ((colon = strchr(s, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
        hend = colon;
        p = colon + 1;
    } else {
        hend = s + strlen(s);
    }
    *port = 0;
    if (p != NULL) {
        const struct cfg_directive *dp = cfg_directive_find("redis-port");
        if (cfg_parse_number(p, cfg_units_plain, &n) == -1) {
            cfg_err(why, whylen, "invalid port '%s'", cfg_quote(p, q, sizeof q));
            return -1;
        }
        if (!cfg_num_in_range(dp, n)) {
            cfg_err(why, whylen, "port must be %ld..%ld", dp->min, dp->max);
            return -1;
        }
        *port = (int)n;
    }
    if ((*host = strndup(h, (size_t)(hend - h))) == NULL) {
        cfg_err(why, whylen, "out of memory");
        return -1;
    }
    if (cfg_str_check(d, *host, why, whylen) == -1) {
        free(*host);
        *host = NULL;
        return -1;
    }
    return 0;
}

/* getenv_fn(name), with "" read as unset. */
static const char *cfg_env(const char *(*getenv_fn)(const char *), const char *name)
{
    const char *v = getenv_fn(name);

    return v != NULL && *v != '\0' ? v : NULL;
}

int cfg_apply_env(struct cfg *cfg, const char *(*getenv_fn)(const char *), char *err, size_t errlen)
{
    const struct cfg_directive *dport = cfg_directive_find("port");
    const char *env_host, *env_pass, *env_port;
    char why[CFG_ERR_LEN], q[40], *host = NULL, *pass = NULL;
    long long port = -1;
    int redis_port = 0;

    if (getenv_fn == NULL)
        getenv_fn = cfg_getenv;
    env_host = cfg_env(getenv_fn, "REDIS_HOST");
    env_pass = cfg_env(getenv_fn, "REDIS_PASSWORD");
    env_port = cfg_env(getenv_fn, "PORT");

    /* check everything first, so a bad variable leaves cfg untouched */
    if (env_port != NULL) {
        if (cfg_parse_number(env_port, cfg_units_plain, &port) == -1) {
            cfg_err(err, errlen, "PORT: invalid number '%s'", cfg_quote(env_port, q, sizeof q));
            return -1;
        }
        if (!cfg_num_in_range(dport, port)) {
            cfg_range_why(dport, why, sizeof why);
            cfg_err(err, errlen, "PORT: %s", why);
            return -1;
        }
    }
    if (env_host != NULL &&
        cfg_host_port_split(env_host, &host, &redis_port, why, sizeof why) == -1) {
        cfg_err(err, errlen, "REDIS_HOST: %s", why);
        return -1;
    }
    if (env_pass != NULL && (pass = strdup(env_pass)) == NULL) {
        free(host);
        cfg_err(err, errlen, "REDIS_PASSWORD: out of memory");
        return -1;
    }

    if (host != NULL) {
        free(cfg->redis_host);
        cfg->redis_host = host;
    }
    if (redis_port != 0) {
        cfg->redis_port = redis_port;
        /* the seed's convention: 6380 is Redis's TLS port */
        if (redis_port == 6380 && cfg_line_of(cfg, CFG_OFF(redis_tls)) == 0)
            cfg->redis_tls = 1;
    }
    if (pass != NULL) {
        free(cfg->redis_password);
        cfg->redis_password = pass;
    }
    if (port != -1)
        cfg->port = (int)port;
    return 0;
}

int cfg_finalize(struct cfg *cfg, char *err, size_t errlen)
{
    char why[CFG_ERR_LEN];
    size_t i;

    if (cfg_line_of(cfg, CFG_OFF(broker_socket)) == 0 && cfg_broker_socket_derive(cfg) == -1) {
        cfg_err(err, errlen, "broker-socket: out of memory");
        return -1;
    }
    /* every value again: env and code may have set fields behind the parser */
    for (i = 0; i < CFG_NDIRECTIVES; i++) {
        const struct cfg_directive *d = &cfg_directives[i];
        if (d->type == CFG_STR) {
            if (cfg_str_check(d, *cfg_str_at(cfg, d), why, sizeof why) == 0)
                continue;
        } else {
            if (cfg_num_in_range(d, cfg_num_get(cfg, d)))
                continue;
            cfg_range_why(d, why, sizeof why);
        }
        cfg_err(err, errlen, "%s: %s", d->name, why);
        return -1;
    }
    if ((cfg->redis_tls_cert == NULL) != (cfg->redis_tls_key == NULL)) {
        cfg_err(err, errlen, "%s",
                cfg->redis_tls_cert != NULL ? "redis-tls-cert: needs redis-tls-key"
                                            : "redis-tls-key: needs redis-tls-cert");
        return -1;
    }
    if (cfg->tls_port != 0 && (cfg->tls_cert == NULL || cfg->tls_key == NULL)) {
        cfg_err(err, errlen, "tls-port: needs tls-cert and tls-key");
        return -1;
    }
    if (cfg->tls_port != 0 && cfg->tls_port == cfg->port) {
        cfg_err(err, errlen, "tls-port: %d is also the plain port", cfg->tls_port);
        return -1;
    }
    if (cfg->metrics_port != 0 &&
        (cfg->metrics_port == cfg->port || cfg->metrics_port == cfg->tls_port)) {
        cfg_err(err, errlen, "metrics-port: %d is also a chat port", cfg->metrics_port);
        return -1;
    }
    if (cfg->tls_port == 0 && (cfg->tls_cert != NULL || cfg->tls_key != NULL ||
                               cfg->tls_ca_cert != NULL)) {
        cfg_err(err, errlen, "tls-cert, tls-key and tls-ca-cert need tls-port");
        return -1;
    }
    if ((cfg->redis_sentinel == NULL) != (cfg->redis_sentinel_master == NULL)) {
        cfg_err(err, errlen, "%s",
                cfg->redis_sentinel != NULL ? "redis-sentinel: needs redis-sentinel-master"
                                            : "redis-sentinel-master: needs redis-sentinel");
        return -1;
    }
    if (cfg->redis_sentinel_password != NULL && cfg->redis_sentinel == NULL) {
        cfg_err(err, errlen, "redis-sentinel-password: needs redis-sentinel");
        return -1;
    }
    if (cfg->redis_cluster_nodes != NULL && !cfg->redis_cluster) {
        cfg_err(err, errlen, "redis-cluster-nodes: needs redis-cluster yes");
        return -1;
    }
    if (cfg->redis_cluster && cfg->redis_sentinel != NULL) {
        cfg_err(err, errlen, "redis-cluster and redis-sentinel exclude each other");
        return -1;
    }
    /* WAIT counts one node's replicas: in a cluster each shard has its own */
    if (cfg->redis_cluster && cfg->redis_wait_replicas > 0) {
        cfg_err(err, errlen, "redis-wait-replicas: not supported with redis-cluster");
        return -1;
    }
    /* its per-instance keys are {<users-key>}:...: they must hash alike */
    if (cfg->redis_cluster && !room_users_key_fits_cluster(cfg->users_key)) {
        cfg_err(err, errlen, "users-key: with redis-cluster, a '}' must close a hash tag "
                             "(\"{x}\", not \"x}\" or \"{}\")");
        return -1;
    }
    if (cfg->redis_cluster && cfg->redis_db != 0) {
        cfg_err(err, errlen, "redis-db: a cluster has only database 0");
        return -1;
    }
    /* the sentinels name the primary: an address beside them is a mistake */
    if (cfg->redis_sentinel != NULL && (cfg_line_of(cfg, CFG_OFF(redis_host)) != 0 ||
                                        cfg_line_of(cfg, CFG_OFF(redis_port)) != 0)) {
        cfg_err(err, errlen, "redis-host and redis-port: not used with redis-sentinel "
                             "(the sentinels name the primary)");
        return -1;
    }
    /* a group alone would leave the process root with another gid */
    if (cfg->group != NULL && cfg->user == NULL) {
        cfg_err(err, errlen, "group: needs user");
        return -1;
    }
    cfg->channel_len = strlen(cfg->channel);
    if (cfg->history_on_join > cfg->history_on_join_max) {
        cfg_err(err, errlen, "history-on-join: %ld is above history-on-join-max %ld",
                cfg->history_on_join, cfg->history_on_join_max);
        return -1;
    }
    /* a short HMAC key can be brute-forced from one token */
    if (cfg->auth_secret != NULL && strlen(cfg->auth_secret) < CFG_AUTH_SECRET_MIN) {
        cfg_err(err, errlen, "auth-secret: must be at least %d bytes", CFG_AUTH_SECRET_MIN);
        return -1;
    }
    return 0;
}

const char *cfg_log_level_name(enum cfg_log_level l)
{
    if ((unsigned)l < sizeof cfg_level_names / sizeof cfg_level_names[0])
        return cfg_level_names[l];
    return "?";
}

const char *cfg_directive_name(size_t i)
{
    return i < CFG_NDIRECTIVES ? cfg_directives[i].name : NULL;
}
