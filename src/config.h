/* config.h -- redis-chat configuration: directives, defaults, parser.
 *
 * The file format follows redis.conf: one `directive value...` per line,
 * `#` at the start of a word starts a comment (so `pass#word` is one word),
 * values may be "double" or 'single' quoted ("..." understands \n \t \r \\
 * \" \xHH; '...' is literal). Directive names are case-insensitive; sizes
 * take k/kb/m/mb/g/gb (1k = 1024), durations are ms or take ms/s/m/h; CRLF
 * line ends are fine. The parser is pure: it never logs and never touches
 * the process; errors come back as "FILE:LINE: directive: what is wrong".
 *
 * Call order (each step returns 0, or -1 with err filled):
 *
 *   cfg_init(&cfg);                                  defaults
 *   cfg_load_file(&cfg, path, err, sizeof err);      or cfg_parse_buffer()
 *   cfg_apply_env(&cfg, cfg_getenv, err, sizeof err); REDIS_HOST, REDIS_PASSWORD, PORT
 *   cfg_finalize(&cfg, err, sizeof err);             derived defaults, cross checks
 *   ...
 *   cfg_free(&cfg);                                  also after any failure above
 *
 * Only cfg_finalize knows the final port, so broker_socket is right only
 * after it.
 */
#ifndef RC_CONFIG_H
#define RC_CONFIG_H

#include <stddef.h>

#define CFG_ERR_LEN 256
#define CFG_NAME_MAX 256       /* channel, users-key: bytes */
#define CFG_PRESENCE_MAX 1000  /* presence-max: the names must fit one IPC frame */
#define CFG_DIRECTIVES_MAX 64  /* size of the private set_line[] table */
#define CFG_ADDRS_MAX 8        /* host:port words in one list directive (redis-sentinel) */

enum cfg_log_level { CFG_LOG_DEBUG = 0, CFG_LOG_INFO, CFG_LOG_WARN, CFG_LOG_ERROR };

/* All strings are heap copies owned by the struct (cfg_free releases them);
 * NULL means "not set". */
struct cfg {
    /* listening */
    char *bind;                  /* "0.0.0.0" */
    int port;                    /* 8080; 0 = let the kernel pick (tests) */
    int workers;                 /* 1..256; default: number of online CPUs */
    char *broker_socket;         /* default "/tmp/redis-chat-<port>.sock", set by
                                  * cfg_finalize from the final port; with port 0
                                  * "/tmp/redis-chat-<pid>.sock"; <= 107 bytes */
    int tls_port;                /* 0 = no wss:// listener */
    char *tls_cert;              /* PEM chain, leaf first; needed with tls_port */
    char *tls_key;               /* PEM private key; needed with tls_port */
    char *tls_ca_cert;           /* NULL; set: clients must present a certificate it signed */
    int deflate;                 /* 0: permessage-deflate is not negotiated */
    long deflate_threshold;      /* 256: shorter broadcasts go uncompressed */
    int metrics_port;            /* 0 = no /metrics listener */
    char *metrics_bind;          /* "127.0.0.1": metrics are for the local scraper */
    /* process */
    char *pidfile;               /* NULL */
    int daemonize;               /* 0 */
    enum cfg_log_level log_level;/* info */
    char *logfile;               /* NULL = stderr only */
    char *user;                  /* NULL = keep the user we were started as; else a
                                  * master started as root drops to it (privdrop.h) */
    char *group;                 /* NULL = the user's primary group; needs user */
    /* redis */
    char *redis_host;            /* "127.0.0.1" */
    int redis_port;              /* 6379 */
    char *redis_password;        /* NULL */
    int redis_db;                /* 0 */
    int redis_tls;               /* 0 (see cfg_apply_env for port 6380) */
    char *redis_tls_ca_cert;     /* NULL = system default CA store */
    char *redis_tls_cert;        /* NULL; needs redis_tls_key */
    char *redis_tls_key;         /* NULL; needs redis_tls_cert */
    char *redis_tls_server_name; /* NULL = redis_host */
    char *redis_sentinel;        /* NULL; else "host:port host:port ...": ask these
                                  * sentinels for the primary (redis-host unused) */
    char *redis_sentinel_master; /* the name the sentinels monitor; needs redis_sentinel */
    char *redis_sentinel_password; /* NULL = the sentinels ask for none */
    int redis_cluster;           /* 0; yes: redis-host:redis-port (and
                                  * redis_cluster_nodes) are seeds of a Redis Cluster */
    char *redis_cluster_nodes;   /* NULL; more seeds, "host:port host:port ..." */
    int redis_wait_replicas;     /* 0; N: an acknowledged send waits (WAIT) until N
                                  * replicas have it */
    long redis_wait_timeout;     /* ms WAIT waits for them, 1000 */
    /* chat */
    char *channel;               /* "chat" */
    size_t channel_len;          /* strlen(channel), set by cfg_finalize */
    char *users_key;             /* "chat-users" */
    int announce;                /* 1: publish join/leave notices (the seed's way);
                                  * 0: none, for large rooms (N joins cost N^2 frames) */
    long max_rooms_per_connection; /* rooms one typed connection may be in, 16 (1 .. 1024) */
    long max_rooms;              /* rooms with members on this instance, 10000 */
    long presence_max;           /* names in a presence event, 100 (1 .. CFG_PRESENCE_MAX) */
    long history_size;           /* messages kept per room, 1000 (0 = no history) */
    long history_ttl;            /* ms a room's history outlives its last message, 0 = forever */
    long history_on_join;        /* messages a join replays when it does not say, 50 */
    long history_on_join_max;    /* the most a join may ask for, 1000 */
    /* limits and timers */
    long max_message_size;       /* bytes, 4096 (64 .. 16 MiB) */
    long max_connections;        /* per instance, 10000 (1 .. 10000000) */
    long max_pending_bytes;      /* per session output cap, 1 MiB (1 KiB .. 1 GiB) */
    long max_worker_backlog;     /* deliveries the broker holds for a worker that does
                                  * not read them, 16 MiB (64 KiB .. 1 GiB); past it the
                                  * worker is dropped and restarted */
    long handshake_timeout;      /* ms, 10000 (100 .. 3600000) */
    long ping_interval;          /* ms, 30000 (0 = off, else 100 .. 3600000) */
    long shutdown_timeout;       /* ms, 10000 (0 .. 3600000) */
    /* abuse limits and access */
    long max_connections_per_ip; /* 256 (0 = off, else 1 .. 1000000), instance-wide */
    long rate_limit;             /* messages per second per connection, 20 (0 = off) */
    long rate_limit_burst;       /* messages allowed in a burst, 40 (1 .. 100000) */
    char *allowed_origins;       /* NULL = any; else Origin values separated by blanks
                                  * or commas ("https://a.example https://b.example") */
    char *auth_secret;           /* NULL = open chat; else HS256 key for JWT tokens */
    int echo_endpoint;           /* 0; yes = /echo echoes text back (conformance tests) */
    /* performance */
    int io_uring;                /* 1: a broadcast's writes go out in one io_uring call
                                  * where the kernel and build allow; 0: one writev each */
    long flush_interval;         /* ms between broadcast write passes, 2
                                  * (0 = write each message at once, else 1 .. 1000) */
    /* faults */
    long outbox_size;            /* messages held while Redis is down, 1000 (0 = none) */
    long outbox_timeout;         /* ms a held message may wait, 10000 */
    long instance_ttl;           /* ms, 10000: an instance silent this long is dead */

    /* private to config.c: line on which the file set each directive (0 =
     * not set by a file). Finds duplicates, and tells an explicit
     * `redis-tls no` or broker-socket from a default. */
    unsigned int set_line[CFG_DIRECTIVES_MAX];
};

/* Fill every field with its default (strings included; broker_socket is a
 * placeholder for port 8080 until cfg_finalize). */
void cfg_init(struct cfg *cfg);

/* Free owned strings; the struct may be cfg_init()ed again. */
void cfg_free(struct cfg *cfg);

/* 1 when every directive has the same value in a and b. */
int cfg_equal(const struct cfg *a, const struct cfg *b);

/* Parse `len` bytes of config text into cfg (which must be cfg_init()ed:
 * values in the text override the defaults). `fname` is used in error
 * messages only. Returns 0, or -1 with err filled ("fname:line: ...").
 * A directive given twice is an error. Each value is checked on its line;
 * redis-tls-cert/redis-tls-key pairing is checked at the end of the text;
 * the other cross-field checks are cfg_finalize's. */
int cfg_parse_buffer(struct cfg *cfg, const char *text, size_t len,
                     const char *fname, char *err, size_t errlen);

/* Read a file and cfg_parse_buffer it. -1 with err ("fname: strerror") when
 * the file cannot be read. */
int cfg_load_file(struct cfg *cfg, const char *fname, char *err, size_t errlen);

/* Apply the seed's environment variables, which override the file:
 * REDIS_HOST ("host:port", "host", "[v6addr]:port", "[v6addr]" or a bare
 * IPv6 address; port 6380 turns TLS on unless the file had a `redis-tls`
 * line), REDIS_PASSWORD, PORT (0..65535). An empty variable counts as unset.
 * `getenv_fn` is cfg_getenv (or NULL, same thing) in production; tests pass
 * their own. Returns 0, or -1 with err ("PORT: must be 0..65535") and cfg
 * unchanged. */
int cfg_apply_env(struct cfg *cfg, const char *(*getenv_fn)(const char *),
                  char *err, size_t errlen);

/* getenv() with the signature cfg_apply_env wants. */
const char *cfg_getenv(const char *name);

/* Last step before use: derive defaults that depend on other fields
 * (broker_socket from the port, unless the file set it) and run the
 * cross-field checks: every value in its range (also values set in code),
 * redis-tls-cert and redis-tls-key together, channel / users-key /
 * redis-host non-empty and free of control characters, broker_socket fits
 * sun_path. Returns 0, or -1 with err ("directive: what is wrong").
 * May be called again after a change. */
int cfg_finalize(struct cfg *cfg, char *err, size_t errlen);

/* Name of directive number i in the table, in the table's order; NULL when
 * i is past the last one. For tests that hold the manual page and the sample
 * configuration to the table. */
const char *cfg_directive_name(size_t i);

/* Address i (from 0) of a host:port list (redis-sentinel) into host (hostcap
 * bytes, IPv6 without brackets) and *port. 0, or -1 past the last one. */
int cfg_addr_at(const char *list, size_t i, char *host, size_t hostcap, int *port);

/* Name of a log level ("debug", "info", ...). */
const char *cfg_log_level_name(enum cfg_log_level l);

#endif
