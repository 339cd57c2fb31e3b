/* check_config.c -- unit tests for src/config.c.
 *
 * Config text is parsed from memory (cfg_parse_buffer) except in the two
 * cfg_load_file tests; the environment comes from a fake getenv. Every
 * error case asserts the whole message, "FILE:LINE: directive: ..." prefix
 * included, since operators read those.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"

static struct cfg cfg;
static char err[CFG_ERR_LEN];

static void cfg_setup(void)
{
    cfg_init(&cfg);
    err[0] = '\0';
}

static void cfg_teardown(void)
{
    cfg_free(&cfg);
}

static void reset(void)
{
    cfg_free(&cfg);
    cfg_init(&cfg);
}

/* Parse a C string as "t.conf". */
static int parse(const char *text)
{
    return cfg_parse_buffer(&cfg, text, strlen(text), "t.conf", err, sizeof err);
}

/* Parse, failing the test with the parser's message if that fails. */
static void parse_ok(const char *text)
{
    int rc = parse(text);

    ck_assert_msg(rc == 0, "parse failed: %s", err);
}

static void finalize_ok(void)
{
    int rc = cfg_finalize(&cfg, err, sizeof err);

    ck_assert_msg(rc == 0, "finalize failed: %s", err);
}

static char pid_socket[64];

static const char *pid_socket_path(void)
{
    snprintf(pid_socket, sizeof pid_socket, "/tmp/redis-chat-%ld.sock", (long)getpid());
    return pid_socket;
}

/* ---- defaults ---------------------------------------------------------- */

START_TEST(test_defaults_all_fields)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int want_workers = cpus < 1 ? 1 : cpus > 256 ? 256 : (int)cpus;

    finalize_ok();
    ck_assert_str_eq(cfg.bind, "0.0.0.0");
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_int_eq(cfg.workers, want_workers);
    ck_assert_int_eq(cfg.metrics_port, 0); /* no /metrics listener */
    ck_assert_str_eq(cfg.metrics_bind, "127.0.0.1");
    ck_assert_str_eq(cfg.broker_socket, "/tmp/redis-chat-8080.sock");
    ck_assert_ptr_null(cfg.pidfile);
    ck_assert_int_eq(cfg.daemonize, 0);
    ck_assert_ptr_null(cfg.user);
    ck_assert_ptr_null(cfg.group);
    ck_assert_int_eq(cfg.log_level, CFG_LOG_INFO);
    ck_assert_ptr_null(cfg.logfile);
    ck_assert_str_eq(cfg.redis_host, "127.0.0.1");
    ck_assert_int_eq(cfg.redis_port, 6379);
    ck_assert_ptr_null(cfg.redis_password);
    ck_assert_int_eq(cfg.redis_db, 0);
    ck_assert_int_eq(cfg.redis_tls, 0);
    ck_assert_ptr_null(cfg.redis_tls_ca_cert);
    ck_assert_ptr_null(cfg.redis_tls_cert);
    ck_assert_ptr_null(cfg.redis_tls_key);
    ck_assert_ptr_null(cfg.redis_tls_server_name);
    ck_assert_str_eq(cfg.channel, "chat");
    ck_assert_str_eq(cfg.users_key, "chat-users");
    ck_assert_int_eq(cfg.announce, 1);
    ck_assert_int_eq(cfg.max_message_size, 4096);
    ck_assert_int_eq(cfg.max_connections, 10000);
    ck_assert_int_eq(cfg.max_pending_bytes, 1024 * 1024);
    ck_assert_int_eq(cfg.max_worker_backlog, 16 * 1024 * 1024);
    ck_assert_int_eq(cfg.handshake_timeout, 10000);
    ck_assert_int_eq(cfg.ping_interval, 30000);
    ck_assert_int_eq(cfg.shutdown_timeout, 10000);
    ck_assert_int_eq(cfg.max_connections_per_ip, 256);
    ck_assert_int_eq(cfg.rate_limit, 20);
    ck_assert_int_eq(cfg.rate_limit_burst, 40);
    ck_assert_ptr_null(cfg.allowed_origins);
    ck_assert_ptr_null(cfg.auth_secret);
    ck_assert_int_eq(cfg.echo_endpoint, 0);
    ck_assert_int_eq(cfg.io_uring, 1);
    ck_assert_int_eq(cfg.flush_interval, 2);
    ck_assert_int_eq(cfg.outbox_size, 1000);
    ck_assert_int_eq(cfg.outbox_timeout, 10000);
    ck_assert_int_eq(cfg.instance_ttl, 10000);
    ck_assert_int_eq(cfg.history_size, 1000);
    ck_assert_int_eq(cfg.history_ttl, 0);
    ck_assert_int_eq(cfg.history_on_join, 50);
    ck_assert_int_eq(cfg.history_on_join_max, 1000);
}
END_TEST

START_TEST(test_defaults_empty_and_comment_only_text)
{
    ck_assert_int_eq(cfg_parse_buffer(&cfg, NULL, 0, "t.conf", err, sizeof err), 0);
    parse_ok("");
    parse_ok("\n\n   \n\t\n");
    parse_ok("# port 1\n   # workers 0\n#\n");
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_str_eq(cfg.channel, "chat");
    /* a NULL file name is allowed and still gives a usable message */
    ck_assert_int_eq(cfg_parse_buffer(&cfg, "nope 1", 6, NULL, err, sizeof err), -1);
    ck_assert_str_eq(err, "(config):1: unknown directive 'nope'");
}
END_TEST

START_TEST(test_defaults_broker_socket_derived_after_parse)
{
    parse_ok("port 9001\n");
    finalize_ok();
    ck_assert_str_eq(cfg.broker_socket, "/tmp/redis-chat-9001.sock");
    /* finalize again after a change derives again */
    cfg.port = 9002;
    finalize_ok();
    ck_assert_str_eq(cfg.broker_socket, "/tmp/redis-chat-9002.sock");
    /* port 0: the port is not known yet, the pid is unique */
    cfg.port = 0;
    finalize_ok();
    ck_assert_str_eq(cfg.broker_socket, pid_socket_path());
    /* set by the file: kept whatever the port */
    reset();
    parse_ok("broker-socket /run/rc.sock\nport 9001\n");
    finalize_ok();
    ck_assert_str_eq(cfg.broker_socket, "/run/rc.sock");
}
END_TEST

START_TEST(test_defaults_log_level_name)
{
    ck_assert_str_eq(cfg_log_level_name(CFG_LOG_DEBUG), "debug");
    ck_assert_str_eq(cfg_log_level_name(CFG_LOG_INFO), "info");
    ck_assert_str_eq(cfg_log_level_name(CFG_LOG_WARN), "warn");
    ck_assert_str_eq(cfg_log_level_name(CFG_LOG_ERROR), "error");
    ck_assert_str_eq(cfg_log_level_name((enum cfg_log_level)42), "?");
}
END_TEST

START_TEST(test_defaults_free_then_init_again)
{
    parse_ok("port 1\nredis-password secret\n");
    cfg_free(&cfg);
    ck_assert_ptr_null(cfg.bind);
    ck_assert_ptr_null(cfg.redis_password);
    ck_assert_ptr_null(cfg.broker_socket);
    cfg_free(&cfg); /* twice is harmless */
    cfg_init(&cfg);
    /* the set_line bookkeeping is reset: port may be given again */
    parse_ok("port 2\n");
    ck_assert_int_eq(cfg.port, 2);
}
END_TEST

/* ---- values ------------------------------------------------------------ */

static const char full_conf[] = "# every directive, none at its default\n"
                                "bind 127.0.0.2\n"
                                "port 9000\n"
                                "workers 3\n"
                                "broker-socket /tmp/rc-test.sock\n"
                                "pidfile /run/rc.pid\n"
                                "daemonize yes\n"
                                "log-level debug\n"
                                "logfile /var/log/rc.log\n"
                                "user chat\n"
                                "group chatters\n"
                                "redis-host redis.internal\n"
                                "redis-port 6390\n"
                                "redis-password s3cret\n"
                                "redis-db 7\n"
                                "redis-tls yes\n"
                                "redis-tls-ca-cert /etc/ca.pem\n"
                                "redis-tls-cert /etc/client.pem\n"
                                "redis-tls-key /etc/client.key\n"
                                "redis-tls-server-name redis.example\n"
                                "channel room1\n"
                                "users-key room1-users\n"
                                "announce no\n"
                                "max-message-size 8k\n"
                                "max-connections 500\n"
                                "max-pending-bytes 2mb\n"
                                "max-worker-backlog 4m\n"
                                "handshake-timeout 5s\n"
                                "ping-interval 1m\n"
                                "shutdown-timeout 0\n"
                                "max-connections-per-ip 0\n"
                                "rate-limit 100\n"
                                "rate-limit-burst 200\n"
                                "allowed-origins \"https://a.example https://b.example\"\n"
                                "auth-secret an-auth-secret-of-at-least-32-bytes-0123\n"
                                "echo-endpoint yes\n"
                                "io-uring no\n"
                                "flush-interval 20ms\n"
                                "outbox-size 0\n"
                                "outbox-timeout 30s\n"
                                "instance-ttl 1m\n"
                                "history-size 5000\n"
                                "history-ttl 7d\n"
                                "history-on-join 20\n"
                                "history-on-join-max 200\n"
                                "metrics-port 9100\n"
                                "metrics-bind ::1\n";

START_TEST(test_values_every_directive)
{
    parse_ok(full_conf);
    finalize_ok();
    ck_assert_str_eq(cfg.bind, "127.0.0.2");
    ck_assert_int_eq(cfg.port, 9000);
    ck_assert_int_eq(cfg.workers, 3);
    ck_assert_str_eq(cfg.broker_socket, "/tmp/rc-test.sock");
    ck_assert_str_eq(cfg.pidfile, "/run/rc.pid");
    ck_assert_int_eq(cfg.daemonize, 1);
    ck_assert_int_eq(cfg.log_level, CFG_LOG_DEBUG);
    ck_assert_str_eq(cfg.logfile, "/var/log/rc.log");
    ck_assert_str_eq(cfg.user, "chat");
    ck_assert_str_eq(cfg.group, "chatters");
    ck_assert_str_eq(cfg.redis_host, "redis.internal");
    ck_assert_int_eq(cfg.redis_port, 6390);
    ck_assert_str_eq(cfg.redis_password, "s3cret");
    ck_assert_int_eq(cfg.redis_db, 7);
    ck_assert_int_eq(cfg.redis_tls, 1);
    ck_assert_str_eq(cfg.redis_tls_ca_cert, "/etc/ca.pem");
    ck_assert_str_eq(cfg.redis_tls_cert, "/etc/client.pem");
    ck_assert_str_eq(cfg.redis_tls_key, "/etc/client.key");
    ck_assert_str_eq(cfg.redis_tls_server_name, "redis.example");
    ck_assert_str_eq(cfg.channel, "room1");
    ck_assert_str_eq(cfg.users_key, "room1-users");
    ck_assert_int_eq(cfg.announce, 0);
    ck_assert_int_eq(cfg.max_message_size, 8192);
    ck_assert_int_eq(cfg.max_connections, 500);
    ck_assert_int_eq(cfg.max_pending_bytes, 2 * 1024 * 1024);
    ck_assert_int_eq(cfg.max_worker_backlog, 4 * 1024 * 1024);
    ck_assert_int_eq(cfg.handshake_timeout, 5000);
    ck_assert_int_eq(cfg.ping_interval, 60000);
    ck_assert_int_eq(cfg.shutdown_timeout, 0);
    ck_assert_int_eq(cfg.max_connections_per_ip, 0);
    ck_assert_int_eq(cfg.rate_limit, 100);
    ck_assert_int_eq(cfg.rate_limit_burst, 200);
    ck_assert_str_eq(cfg.allowed_origins, "https://a.example https://b.example");
    ck_assert_str_eq(cfg.auth_secret, "an-auth-secret-of-at-least-32-bytes-0123");
    ck_assert_int_eq(cfg.echo_endpoint, 1);
    ck_assert_int_eq(cfg.io_uring, 0);
    ck_assert_int_eq(cfg.flush_interval, 20);
    ck_assert_int_eq(cfg.outbox_size, 0);
    ck_assert_int_eq(cfg.outbox_timeout, 30000);
    ck_assert_int_eq(cfg.instance_ttl, 60000);
    ck_assert_int_eq(cfg.history_size, 5000);
    ck_assert_int_eq(cfg.history_ttl, 7L * 86400000);
    ck_assert_int_eq(cfg.history_on_join, 20);
    ck_assert_int_eq(cfg.history_on_join_max, 200);
    ck_assert_int_eq(cfg.metrics_port, 9100);
    ck_assert_str_eq(cfg.metrics_bind, "::1");
}
END_TEST

struct num_case {
    const char *text;
    long want;
};

/* on max-pending-bytes (1 KiB .. 1 GiB) */
static const struct num_case size_cases[] = {
    { "1024", 1024 },    { "0001024", 1024 }, { "1k", 1024 },      { "1K", 1024 },
    { "2kb", 2048 },     { "2KB", 2048 },     { "2kB", 2048 },     { "3m", 3L << 20 },
    { "3MB", 3L << 20 }, { "1g", 1L << 30 },  { "1Gb", 1L << 30 }, { "1023k", 1023L << 10 },
};

START_TEST(test_values_size_suffixes)
{
    char text[64];

    snprintf(text, sizeof text, "max-pending-bytes %s\n", size_cases[_i].text);
    parse_ok(text);
    ck_assert_msg(cfg.max_pending_bytes == size_cases[_i].want, "%s: got %ld want %ld",
                  size_cases[_i].text, cfg.max_pending_bytes, size_cases[_i].want);
}
END_TEST

/* on handshake-timeout (100 ms .. 1 h) */
static const struct num_case msec_cases[] = {
    { "250", 250 },  { "250ms", 250 },   { "250MS", 250 },  { "2s", 2000 }, { "30S", 30000 },
    { "1m", 60000 }, { "60m", 3600000 }, { "1h", 3600000 }, { "100", 100 }, { "3600000", 3600000 },
};

START_TEST(test_values_duration_suffixes)
{
    char text[64];

    snprintf(text, sizeof text, "handshake-timeout %s\n", msec_cases[_i].text);
    parse_ok(text);
    ck_assert_msg(cfg.handshake_timeout == msec_cases[_i].want, "%s: got %ld want %ld",
                  msec_cases[_i].text, cfg.handshake_timeout, msec_cases[_i].want);
}
END_TEST

START_TEST(test_values_ranges_edges)
{
    parse_ok("port 65535\nworkers 256\nredis-port 1\nredis-db 1000000\n"
             "max-message-size 16m\nmax-connections 10000000\nmax-pending-bytes 1k\n"
             "ping-interval 0\nshutdown-timeout 1h\nflush-interval 1s\n");
    ck_assert_int_eq(cfg.port, 65535);
    ck_assert_int_eq(cfg.workers, 256);
    ck_assert_int_eq(cfg.redis_port, 1);
    ck_assert_int_eq(cfg.redis_db, 1000000);
    ck_assert_int_eq(cfg.max_message_size, 16L << 20);
    ck_assert_int_eq(cfg.max_connections, 10000000);
    ck_assert_int_eq(cfg.max_pending_bytes, 1024);
    ck_assert_int_eq(cfg.ping_interval, 0);
    ck_assert_int_eq(cfg.shutdown_timeout, 3600000);
    ck_assert_int_eq(cfg.flush_interval, 1000);
    finalize_ok();
}
END_TEST

START_TEST(test_values_flush_interval_off)
{
    parse_ok("flush-interval 0\n");
    ck_assert_int_eq(cfg.flush_interval, 0);
    finalize_ok();
}
END_TEST

START_TEST(test_values_bool_and_level)
{
    parse_ok("daemonize YES\nredis-tls No\nlog-level warning\n");
    ck_assert_int_eq(cfg.daemonize, 1);
    ck_assert_int_eq(cfg.redis_tls, 0);
    ck_assert_int_eq(cfg.log_level, CFG_LOG_WARN);
    reset();
    parse_ok("log-level ERROR\ndaemonize no\n");
    ck_assert_int_eq(cfg.log_level, CFG_LOG_ERROR);
    ck_assert_int_eq(cfg.daemonize, 0);
    reset();
    parse_ok("log-level warn\n");
    ck_assert_int_eq(cfg.log_level, CFG_LOG_WARN);
}
END_TEST

START_TEST(test_values_quotes_and_escapes)
{
    parse_ok("channel \"room one\"\n"
             "redis-password \"a\\\"b\\\\c\\n\\t\\r\\x41\\x7e#d\"\n"
             "users-key \"\\x4a\\x4B\"\n"
             "logfile 'x\\ny \"z\" #w'\n"
             "pidfile \"\"\nredis-tls-ca-cert ''\n");
    ck_assert_str_eq(cfg.channel, "room one");
    ck_assert_str_eq(cfg.redis_password, "a\"b\\c\n\t\rA~#d");
    ck_assert_str_eq(cfg.users_key, "JK");
    /* single quotes are literal */
    ck_assert_str_eq(cfg.logfile, "x\\ny \"z\" #w");
    /* an empty optional string means "not set" */
    ck_assert_ptr_null(cfg.pidfile);
    ck_assert_ptr_null(cfg.redis_tls_ca_cert);
}
END_TEST

START_TEST(test_values_comments_and_hash_in_word)
{
    parse_ok("port 9000 # trailing comment\n"
             "   # indented comment\n"
             "redis-password pa#ss\n"
             "channel \"#general\" #comment\n");
    ck_assert_int_eq(cfg.port, 9000);
    ck_assert_str_eq(cfg.redis_password, "pa#ss");
    ck_assert_str_eq(cfg.channel, "#general");
}
END_TEST

START_TEST(test_values_whitespace_crlf_bom_case)
{
    parse_ok("\xEF\xBB\xBFPort 9000\r\n"
             "  \t workers \t 4 \t \r\n"
             "\r\n"
             "channel \"x y\"\r\n"
             "\"REDIS-host\" h1\n"
             "users-key last-line-no-newline");
    ck_assert_int_eq(cfg.port, 9000);
    ck_assert_str_eq(cfg.redis_host, "h1"); /* names: any case, may be quoted */
    ck_assert_int_eq(cfg.workers, 4);
    ck_assert_str_eq(cfg.channel, "x y");
    ck_assert_str_eq(cfg.users_key, "last-line-no-newline");
}
END_TEST

START_TEST(test_values_broker_socket_sun_path_limit)
{
    char text[256], path[128];

    memset(path, 'a', sizeof path);
    memcpy(path, "/tmp/", 5);
    path[107] = '\0';
    snprintf(text, sizeof text, "broker-socket %s\n", path);
    parse_ok(text);
    finalize_ok();
    ck_assert_int_eq(strlen(cfg.broker_socket), 107);

    reset();
    path[107] = 'a';
    path[108] = '\0';
    snprintf(text, sizeof text, "\nbroker-socket %s\n", path);
    ck_assert_int_eq(parse(text), -1);
    ck_assert_str_eq(err, "t.conf:2: broker-socket: longer than 107 bytes");
}
END_TEST

static char tmp_path[64];

static void write_tmp(const char *text)
{
    int fd;

    strcpy(tmp_path, "/tmp/check_config.XXXXXX");
    fd = mkstemp(tmp_path);
    ck_assert_int_ne(fd, -1);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

START_TEST(test_values_load_file)
{
    int rc;

    write_tmp(full_conf);
    rc = cfg_load_file(&cfg, tmp_path, err, sizeof err);
    unlink(tmp_path);
    ck_assert_msg(rc == 0, "load failed: %s", err);
    ck_assert_int_eq(cfg.port, 9000);
    ck_assert_str_eq(cfg.channel, "room1");
    ck_assert_int_eq(cfg.ping_interval, 60000);
}
END_TEST

/* ---- errors ------------------------------------------------------------ */

/* parsed as "x.conf" */
struct err_case {
    const char *text, *msg;
};

static const struct err_case err_cases[] = {
    { "port 1\n\nfoo 1\n", "x.conf:3: unknown directive 'foo'" },
    { "fo\x01o 1\n", "x.conf:1: unknown directive 'fo?o'" },
    { "workers\n", "x.conf:1: workers: missing value" },
    { "workers # 4\n", "x.conf:1: workers: missing value" },
    { "workers 1 2\n", "x.conf:1: workers: too many values (quote a value with blanks)" },
    { "workers abc\n", "x.conf:1: workers: invalid number 'abc'" },
    { "workers 4x\n", "x.conf:1: workers: invalid number '4x'" },
    { "workers +4\n", "x.conf:1: workers: invalid number '+4'" },
    { "workers 257\n", "x.conf:1: workers: must be 1..256" },
    { "workers -1\n", "x.conf:1: workers: must be 1..256" },
    { "workers 99999999999999999999999\n", "x.conf:1: workers: must be 1..256" },
    { "port 65536\n", "x.conf:1: port: must be 0..65535" },
    { "port 80#c\n", "x.conf:1: port: invalid number '80#c'" },
    { "redis-port 0\n", "x.conf:1: redis-port: must be 1..65535" },
    { "redis-db 1000001\n", "x.conf:1: redis-db: must be 0..1000000" },
    { "max-message-size 63\n", "x.conf:1: max-message-size: must be 64..16777216 bytes" },
    { "max-message-size 17m\n", "x.conf:1: max-message-size: must be 64..16777216 bytes" },
    { "max-message-size 99999999999g\n", "x.conf:1: max-message-size: must be 64..16777216 bytes" },
    { "max-message-size 10q\n",
      "x.conf:1: max-message-size: invalid size '10q' (suffixes: k, kb, m, mb, g, gb)" },
    { "max-message-size k\n",
      "x.conf:1: max-message-size: invalid size 'k' (suffixes: k, kb, m, mb, g, gb)" },
    { "max-message-size 1.5k\n",
      "x.conf:1: max-message-size: invalid size '1.5k' (suffixes: k, kb, m, mb, g, gb)" },
    { "max-connections 0\n", "x.conf:1: max-connections: must be 1..10000000" },
    { "max-pending-bytes 1023\n", "x.conf:1: max-pending-bytes: must be 1024..1073741824 bytes" },
    { "max-worker-backlog 65535\n",
      "x.conf:1: max-worker-backlog: must be 65536..1073741824 bytes" },
    { "max-worker-backlog 2g\n", "x.conf:1: max-worker-backlog: must be 65536..1073741824 bytes" },
    { "ping-interval 50\n", "x.conf:1: ping-interval: must be 0 (off) or 100..3600000 ms" },
    { "ping-interval 2h\n", "x.conf:1: ping-interval: must be 0 (off) or 100..3600000 ms" },
    { "handshake-timeout 0\n", "x.conf:1: handshake-timeout: must be 100..3600000 ms" },
    { "flush-interval 1001\n", "x.conf:1: flush-interval: must be 0 (off) or 1..1000 ms" },
    { "handshake-timeout 5x\n",
      "x.conf:1: handshake-timeout: invalid duration '5x' (milliseconds, or suffixes: ms, s, m, "
      "h, d)" },
    { "shutdown-timeout s\n",
      "x.conf:1: shutdown-timeout: invalid duration 's' (milliseconds, or suffixes: ms, s, m, h, d)" },
    { "daemonize maybe\n", "x.conf:1: daemonize: must be yes or no" },
    { "redis-tls 1\n", "x.conf:1: redis-tls: must be yes or no" },
    { "log-level loud\n", "x.conf:1: log-level: must be debug, info, warn or error" },
    { "port 1\nport 2\n", "x.conf:2: port: duplicate directive (first set on line 1)" },
    { "channel a\n\nCHANNEL a\n", "x.conf:3: channel: duplicate directive (first set on line 1)" },
    { "port 1\nchannel \"abc\n", "x.conf:2: unterminated \"quote\"" },
    { "channel \"abc\\\n", "x.conf:1: unterminated \"quote\"" },
    { "channel 'abc\n", "x.conf:1: unterminated 'quote'" },
    { "channel \"a\\qb\"\n",
      "x.conf:1: unknown escape in \"quote\" (use \\n \\t \\r \\\\ \\\" \\xHH)" },
    { "channel \"a\\x4\"\n", "x.conf:1: \\x needs two hex digits" },
    { "channel \"a\\xzz\"\n", "x.conf:1: \\x needs two hex digits" },
    { "channel \"a\\x00b\"\n", "x.conf:1: \\x00 is not allowed" },
    { "channel \"ab\"c\n", "x.conf:1: closing quote must be followed by a blank" },
    { "channel ab\"c\"\n", "x.conf:1: quote inside a word (quote the whole value)" },
    { "channel it's\n", "x.conf:1: quote inside a word (quote the whole value)" },
    { "channel \"\\x01chat\"\n", "x.conf:1: channel: must not contain control characters" },
    { "users-key \"a\\nb\"\n", "x.conf:1: users-key: must not contain control characters" },
    { "redis-host \"a\\tb\"\n", "x.conf:1: redis-host: must not contain control characters" },
    { "channel \"\"\n", "x.conf:1: channel: must not be empty" },
    { "users-key ''\n", "x.conf:1: users-key: must not be empty" },
    { "redis-host \"\"\n", "x.conf:1: redis-host: must not be empty" },
    { "redis-tls-cert /c.pem\n", "x.conf:1: redis-tls-cert: needs redis-tls-key" },
    { "port 1\nredis-tls-key /k.pem\n", "x.conf:2: redis-tls-key: needs redis-tls-cert" },
    { "metrics-port 65536\n", "x.conf:1: metrics-port: must be 0 (off) or 1..65535" },
    { "metrics-port -1\n", "x.conf:1: metrics-port: must be 0 (off) or 1..65535" },
    { "metrics-port http\n", "x.conf:1: metrics-port: invalid number 'http'" },
    { "metrics-bind \"\"\n", "x.conf:1: metrics-bind: must not be empty" },
    { "metrics-bind \"a\\nb\"\n", "x.conf:1: metrics-bind: must not contain control characters" },
};

START_TEST(test_errors_messages)
{
    const struct err_case *c = &err_cases[_i];
    int rc = cfg_parse_buffer(&cfg, c->text, strlen(c->text), "x.conf", err, sizeof err);

    ck_assert_msg(rc == -1, "case %d: parse succeeded", _i);
    ck_assert_msg(strcmp(err, c->msg) == 0, "case %d:\n got  '%s'\n want '%s'", _i, err, c->msg);
}
END_TEST

START_TEST(test_errors_line_number_and_file_name)
{
    static const char text[] = "# sample\n\nport 9000\n#\n#\n#\n#\n#\n#\n#\n\nworkers 0\n";

    ck_assert_int_eq(cfg_parse_buffer(&cfg, text, strlen(text), "redis-chat.conf", err, sizeof err),
                     -1);
    ck_assert_str_eq(err, "redis-chat.conf:12: workers: must be 1..256");
}
END_TEST

START_TEST(test_errors_nul_byte)
{
    static const char text[] = "port 1\nbind a\0b\nworkers 2\n";

    ck_assert_int_eq(cfg_parse_buffer(&cfg, text, sizeof text - 1, "x.conf", err, sizeof err), -1);
    ck_assert_str_eq(err, "x.conf:2: NUL byte in line");
}
END_TEST

START_TEST(test_errors_long_value_cut_in_message)
{
    ck_assert_int_eq(parse("workers 123456789012345678901234567890123456789012345\n"), -1);
    ck_assert_str_eq(err, "t.conf:1: workers: must be 1..256");
    ck_assert_int_eq(parse("a-very-long-unknown-directive-name-that-goes-on-and-on 1\n"), -1);
    ck_assert_str_eq(err, "t.conf:1: unknown directive 'a-very-long-unknown-directive-na...'");
}
END_TEST

START_TEST(test_errors_small_or_null_err_buffer)
{
    char small[12];

    memset(small, 'z', sizeof small);
    ck_assert_int_eq(cfg_parse_buffer(&cfg, "port x", 6, "x.conf", small, sizeof small), -1);
    ck_assert_str_eq(small, "x.conf:1: p");
    ck_assert_int_eq(cfg_parse_buffer(&cfg, "port x", 6, "x.conf", NULL, 0), -1);
    ck_assert_int_eq(cfg_load_file(&cfg, "/nonexistent/x.conf", NULL, 0), -1);
}
END_TEST

START_TEST(test_errors_load_missing_file)
{
    ck_assert_int_eq(cfg_load_file(&cfg, "/nonexistent-dir/x.conf", err, sizeof err), -1);
    ck_assert_str_eq(err, "/nonexistent-dir/x.conf: No such file or directory");
    ck_assert_int_eq(cfg_load_file(&cfg, "/tmp", err, sizeof err), -1);
    ck_assert_str_eq(err, "/tmp: Is a directory");
}
END_TEST

START_TEST(test_errors_load_file_names_file_and_line)
{
    char want[128];
    int rc;

    write_tmp("port 9000\nworkers 0\n");
    rc = cfg_load_file(&cfg, tmp_path, err, sizeof err);
    unlink(tmp_path);
    ck_assert_int_eq(rc, -1);
    snprintf(want, sizeof want, "%s:2: workers: must be 1..256", tmp_path);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_errors_finalize_checks_values_set_in_code)
{
    cfg.workers = 0;
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "workers: must be 1..256");
    cfg.workers = 2;

    cfg.ping_interval = 5;
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "ping-interval: must be 0 (off) or 100..3600000 ms");
    cfg.ping_interval = 0;

    cfg.channel[0] = '\0';
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "channel: must not be empty");
    strcpy(cfg.channel, "c");

    free(cfg.users_key);
    cfg.users_key = NULL;
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "users-key: must not be empty");
    cfg.users_key = strdup("u\x7f");
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "users-key: must not contain control characters");
    cfg.users_key[1] = '\0';

    cfg.redis_tls_key = strdup("/k.pem");
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "redis-tls-key: needs redis-tls-cert");
    cfg.redis_tls_cert = strdup("/c.pem");
    finalize_ok();
}
END_TEST

/* ---- history ----------------------------------------------------------- */

#define DAY_MS 86400000L

/* on history-ttl (0 = off, or 1 s .. 366 d) */
static const struct num_case ttl_cases[] = {
    { "0", 0 },
    { "0ms", 0 },
    { "0d", 0 },
    { "1000", 1000 },
    { "1000ms", 1000 },
    { "1s", 1000 },
    { "90s", 90000 },
    { "30m", 1800000 },
    { "2h", 7200000 },
    { "1d", DAY_MS },
    { "1D", DAY_MS },
    { "7d", 7 * DAY_MS },
    { "366d", 366 * DAY_MS },
    { "8784h", 366 * DAY_MS },
    { "31622400000", 366 * DAY_MS },
};

START_TEST(test_history_ttl_values)
{
    char text[64];

    snprintf(text, sizeof text, "history-ttl %s\n", ttl_cases[_i].text);
    parse_ok(text);
    ck_assert_msg(cfg.history_ttl == ttl_cases[_i].want, "%s: got %ld want %ld",
                  ttl_cases[_i].text, cfg.history_ttl, ttl_cases[_i].want);
    finalize_ok();
}
END_TEST

static const struct err_case history_err_cases[] = {
    { "history-ttl 999\n", "x.conf:1: history-ttl: must be 0 (off) or 1000..31622400000 ms" },
    { "history-ttl 999ms\n", "x.conf:1: history-ttl: must be 0 (off) or 1000..31622400000 ms" },
    { "history-ttl 1\n", "x.conf:1: history-ttl: must be 0 (off) or 1000..31622400000 ms" },
    { "history-ttl 367d\n", "x.conf:1: history-ttl: must be 0 (off) or 1000..31622400000 ms" },
    { "history-ttl 31622400001\n",
      "x.conf:1: history-ttl: must be 0 (off) or 1000..31622400000 ms" },
    { "history-ttl 99999999999999999d\n",
      "x.conf:1: history-ttl: must be 0 (off) or 1000..31622400000 ms" },
    { "history-ttl -1d\n", "x.conf:1: history-ttl: must be 0 (off) or 1000..31622400000 ms" },
    { "history-size -1\n", "x.conf:1: history-size: must be 0..10000000" },
    { "history-size 10000001\n", "x.conf:1: history-size: must be 0..10000000" },
    { "history-size 1k\n", "x.conf:1: history-size: invalid number '1k'" },
    { "history-on-join -1\n", "x.conf:1: history-on-join: must be 0..100000" },
    { "history-on-join 100001\n", "x.conf:1: history-on-join: must be 0..100000" },
    { "history-on-join-max -1\n", "x.conf:1: history-on-join-max: must be 0..100000" },
    { "history-on-join-max 100001\n", "x.conf:1: history-on-join-max: must be 0..100000" },
    /* the day suffix is a duration's: not a count's */
    { "history-on-join 1d\n", "x.conf:1: history-on-join: invalid number '1d'" },
    /* and it does not stretch other durations past their bounds */
    { "instance-ttl 1d\n", "x.conf:1: instance-ttl: must be 1000..3600000 ms" },
};

START_TEST(test_history_errors)
{
    const struct err_case *c = &history_err_cases[_i];
    int rc = cfg_parse_buffer(&cfg, c->text, strlen(c->text), "x.conf", err, sizeof err);

    ck_assert_msg(rc == -1, "case %d: parse succeeded", _i);
    ck_assert_msg(strcmp(err, c->msg) == 0, "case %d:\n got  '%s'\n want '%s'", _i, err, c->msg);
}
END_TEST

START_TEST(test_history_edges)
{
    /* 0 is allowed for each count: no history, no replay */
    parse_ok("history-size 0\nhistory-on-join 0\nhistory-on-join-max 0\nhistory-ttl 0\n");
    ck_assert_int_eq(cfg.history_size, 0);
    ck_assert_int_eq(cfg.history_on_join, 0);
    ck_assert_int_eq(cfg.history_on_join_max, 0);
    ck_assert_int_eq(cfg.history_ttl, 0);
    finalize_ok();
    reset();
    parse_ok("history-size 10000000\nhistory-on-join 100000\nhistory-on-join-max 100000\n"
             "history-ttl 1s\n");
    ck_assert_int_eq(cfg.history_size, 10000000);
    ck_assert_int_eq(cfg.history_on_join, 100000);
    ck_assert_int_eq(cfg.history_on_join_max, 100000);
    ck_assert_int_eq(cfg.history_ttl, 1000);
    finalize_ok();
    /* the join bound is the protocol's: CHAT_PROTO_HISTORY_MAX (worker/chat_proto.h) */
}
END_TEST

START_TEST(test_history_on_join_above_max)
{
    /* finalize, not the parser, compares them: the order in the file does not matter */
    parse_ok("history-on-join 1500\nhistory-on-join-max 2000\n");
    finalize_ok();
    reset();
    parse_ok("history-on-join-max 2000\nhistory-on-join 2000\n");
    finalize_ok();
    reset();
    parse_ok("history-on-join 1001\n"); /* above the default max */
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "history-on-join: 1001 is above history-on-join-max 1000");
    reset();
    parse_ok("history-on-join-max 10\n"); /* below the default on-join */
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "history-on-join: 50 is above history-on-join-max 10");
    reset();
    parse_ok("history-on-join-max 0\nhistory-on-join 1\n");
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "history-on-join: 1 is above history-on-join-max 0");
    /* values set in code are checked too */
    reset();
    finalize_ok();
    cfg.history_on_join = 1000;
    cfg.history_on_join_max = 999;
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "history-on-join: 1000 is above history-on-join-max 999");
    cfg.history_on_join_max = 1000;
    finalize_ok();
}
END_TEST

/* metrics-port must not be a chat port; 0 turns it off whatever the others. */
START_TEST(test_metrics_port_not_a_chat_port)
{
    parse_ok("port 9000\nmetrics-port 9000\n");
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "metrics-port: 9000 is also a chat port");
    reset();
    parse_ok("port 9000\ntls-port 9443\ntls-cert /c.pem\ntls-key /k.pem\nmetrics-port 9443\n");
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "metrics-port: 9443 is also a chat port");
    reset();
    parse_ok("port 0\nmetrics-port 0\n");
    finalize_ok();
    reset();
    parse_ok("metrics-port 9100\nmetrics-bind 0.0.0.0\n");
    finalize_ok();
    ck_assert_int_eq(cfg.metrics_port, 9100);
    ck_assert_str_eq(cfg.metrics_bind, "0.0.0.0");
}
END_TEST

/* redis-sentinel: a list of host:port words on one line, read back one by
 * one; the pairings and the clash with redis-host are refused by name. */
START_TEST(test_sentinel_directives)
{
    char host[64];
    int port = 0;

    parse_ok("redis-sentinel 127.0.0.1:26379   [::1]:26380 sentinel.example:26381\n"
             "redis-sentinel-master mymaster\nredis-sentinel-password 's p'\n"
             "redis-wait-replicas 1\nredis-wait-timeout 250ms\n");
    finalize_ok();
    ck_assert_str_eq(cfg.redis_sentinel, "127.0.0.1:26379 [::1]:26380 sentinel.example:26381");
    ck_assert_str_eq(cfg.redis_sentinel_master, "mymaster");
    ck_assert_str_eq(cfg.redis_sentinel_password, "s p");
    ck_assert_int_eq(cfg.redis_wait_replicas, 1);
    ck_assert_int_eq(cfg.redis_wait_timeout, 250);
    ck_assert_int_eq(cfg_addr_at(cfg.redis_sentinel, 0, host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 26379);
    ck_assert_int_eq(cfg_addr_at(cfg.redis_sentinel, 1, host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 26380);
    ck_assert_int_eq(cfg_addr_at(cfg.redis_sentinel, 2, host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "sentinel.example");
    ck_assert_int_eq(cfg_addr_at(cfg.redis_sentinel, 3, host, sizeof host, &port), -1);
    ck_assert_int_eq(cfg_addr_at(cfg.redis_sentinel, 0, host, 4, &port), -1); /* too small */

    reset();
    ck_assert_int_eq(parse("redis-sentinel 127.0.0.1\n"), -1);
    ck_assert_str_eq(err, "t.conf:1: redis-sentinel: '127.0.0.1' names no port (host:port)");
    reset();
    ck_assert_int_eq(parse("redis-sentinel a:1 b:99999\n"), -1);
    ck_assert_str_eq(err, "t.conf:1: redis-sentinel: port must be 1..65535");
    reset();
    ck_assert_int_eq(parse("redis-sentinel a:1 b:2 c:3 d:4 e:5 f:6 g:7 h:8 i:9\n"), -1);
    ck_assert_str_eq(err, "t.conf:1: redis-sentinel: too many addresses");
    reset();
    ck_assert_int_eq(parse("redis-sentinel\n"), -1);
    ck_assert_str_eq(err, "t.conf:1: redis-sentinel: missing value");
    reset();
    ck_assert_int_eq(parse("redis-sentinel-master m n\n"), -1); /* not a list */
    ck_assert_str_eq(err,
                     "t.conf:1: redis-sentinel-master: too many values (quote a value with blanks)");
    reset();
    ck_assert_int_eq(parse("redis-wait-replicas 17\n"), -1);
    reset();
    parse_ok("redis-sentinel a:1\n");
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "redis-sentinel: needs redis-sentinel-master");
    reset();
    parse_ok("redis-sentinel-master m\n");
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "redis-sentinel-master: needs redis-sentinel");
    reset();
    parse_ok("redis-sentinel-password x\n");
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "redis-sentinel-password: needs redis-sentinel");
    reset();
    parse_ok("redis-sentinel a:1\nredis-sentinel-master m\nredis-host b\n");
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "redis-host and redis-port: not used with redis-sentinel "
                          "(the sentinels name the primary)");
    reset();
    /* set behind the parser: finalize checks each address again */
    parse_ok("redis-sentinel-master m\n");
    cfg.redis_sentinel = strdup("a:1 b");
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "redis-sentinel: 'b' names no port (host:port)");
}
END_TEST

/* The hint of an invalid duration names every suffix, "d" too. */
START_TEST(test_history_ttl_hint_names_days)
{
    ck_assert_int_eq(parse("history-ttl 2w\n"), -1);
    ck_assert_msg(strstr(err, "h, d)") != NULL, "%s", err);
}
END_TEST

/* ---- env --------------------------------------------------------------- */

static const char *env_redis_host, *env_redis_password, *env_port;

static const char *fake_getenv(const char *name)
{
    if (strcmp(name, "REDIS_HOST") == 0)
        return env_redis_host;
    if (strcmp(name, "REDIS_PASSWORD") == 0)
        return env_redis_password;
    if (strcmp(name, "PORT") == 0)
        return env_port;
    return NULL;
}

static void env_setup(void)
{
    cfg_setup();
    env_redis_host = env_redis_password = env_port = NULL;
}

static void apply_env_ok(void)
{
    int rc = cfg_apply_env(&cfg, fake_getenv, err, sizeof err);

    ck_assert_msg(rc == 0, "apply_env failed: %s", err);
}

START_TEST(test_env_none_or_empty_changes_nothing)
{
    apply_env_ok();
    env_redis_host = env_redis_password = env_port = "";
    apply_env_ok();
    ck_assert_str_eq(cfg.redis_host, "127.0.0.1");
    ck_assert_int_eq(cfg.redis_port, 6379);
    ck_assert_ptr_null(cfg.redis_password);
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_int_eq(cfg.redis_tls, 0);
}
END_TEST

/* REDIS_HOST forms and the 6380 => TLS rule, after an optional file. */
struct env_host_case {
    const char *file, *redis_host;
    const char *want_host;
    int want_port, want_tls;
};

static const struct env_host_case env_host_cases[] = {
    { "", "redis.example:6380", "redis.example", 6380, 1 },
    { "", "10.0.0.5:6379", "10.0.0.5", 6379, 0 },
    { "redis-host f\nredis-port 7000\n", "env-host", "env-host", 7000, 0 },
    { "redis-port 6380\n", "env-host", "env-host", 6380, 0 }, /* only REDIS_HOST's port counts */
    { "", "[::1]:6380", "::1", 6380, 1 },
    { "", "[fe80::2]", "fe80::2", 6379, 0 },
    { "", "2001:db8::7", "2001:db8::7", 6379, 0 },
    { "redis-tls no\n", "redis.example:6380", "redis.example", 6380, 0 },
    { "redis-tls yes\n", "redis.example:6379", "redis.example", 6379, 1 },
};

START_TEST(test_env_redis_host)
{
    const struct env_host_case *c = &env_host_cases[_i];

    parse_ok(c->file);
    env_redis_host = c->redis_host;
    apply_env_ok();
    ck_assert_str_eq(cfg.redis_host, c->want_host);
    ck_assert_int_eq(cfg.redis_port, c->want_port);
    ck_assert_int_eq(cfg.redis_tls, c->want_tls);
}
END_TEST

START_TEST(test_env_port_drives_broker_socket)
{
    parse_ok("port 9000\n");
    env_port = "9100";
    apply_env_ok();
    finalize_ok();
    ck_assert_int_eq(cfg.port, 9100);
    ck_assert_str_eq(cfg.broker_socket, "/tmp/redis-chat-9100.sock");

    env_port = "0";
    apply_env_ok();
    finalize_ok();
    ck_assert_int_eq(cfg.port, 0);
    ck_assert_str_eq(cfg.broker_socket, pid_socket_path());

    /* a broker-socket from the file stays */
    reset();
    parse_ok("broker-socket /run/rc.sock\n");
    apply_env_ok();
    finalize_ok();
    ck_assert_str_eq(cfg.broker_socket, "/run/rc.sock");
}
END_TEST

START_TEST(test_env_real_getenv)
{
    int rc;

    ck_assert_int_eq(setenv("PORT", "9300", 1), 0);
    ck_assert_str_eq(cfg_getenv("PORT"), "9300");
    rc = cfg_apply_env(&cfg, NULL, err, sizeof err);
    unsetenv("PORT");
    ck_assert_msg(rc == 0, "apply_env failed: %s", err);
    ck_assert_int_eq(cfg.port, 9300);
}
END_TEST

struct env_err_case {
    const char *host, *port;
    const char *msg;
};

static const struct env_err_case env_err_cases[] = {
    { NULL, "http", "PORT: invalid number 'http'" },
    { NULL, "80 ", "PORT: invalid number '80 '" },
    { NULL, "70000", "PORT: must be 0..65535" },
    { NULL, "-1", "PORT: must be 0..65535" },
    { "h:0", NULL, "REDIS_HOST: port must be 1..65535" },
    { "h:65536", NULL, "REDIS_HOST: port must be 1..65535" },
    { "h:x", NULL, "REDIS_HOST: invalid port 'x'" },
    { "h:", NULL, "REDIS_HOST: invalid port ''" },
    { ":6379", NULL, "REDIS_HOST: must not be empty" },
    { "[]:6379", NULL, "REDIS_HOST: must not be empty" },
    { "[::1", NULL, "REDIS_HOST: missing ']' after an IPv6 address" },
    { "[::1]6380", NULL, "REDIS_HOST: expected ':port' after ']'" },
    { "a\tb:6379", NULL, "REDIS_HOST: must not contain control characters" },
};

/* A bad variable fails with its name and leaves cfg exactly as it was,
 * even though the other variables were fine. */
START_TEST(test_env_errors_leave_cfg_untouched)
{
    const struct env_err_case *c = &env_err_cases[_i];

    env_redis_host = c->host != NULL ? c->host : "good:6380";
    env_port = c->port != NULL ? c->port : "9999";
    env_redis_password = "pw";
    ck_assert_int_eq(cfg_apply_env(&cfg, fake_getenv, err, sizeof err), -1);
    ck_assert_msg(strcmp(err, c->msg) == 0, "case %d:\n got  '%s'\n want '%s'", _i, err, c->msg);
    ck_assert_str_eq(cfg.redis_host, "127.0.0.1");
    ck_assert_int_eq(cfg.redis_port, 6379);
    ck_assert_int_eq(cfg.redis_tls, 0);
    ck_assert_ptr_null(cfg.redis_password);
    ck_assert_int_eq(cfg.port, 8080);
}
END_TEST

START_TEST(test_env_whole_call_order)
{
    parse_ok("port 9000\nredis-host file-host\nredis-password file-pw\n");
    env_redis_host = "redis.prod:6380";
    env_redis_password = "env-pw";
    env_port = "9500";
    apply_env_ok();
    finalize_ok();
    ck_assert_str_eq(cfg.redis_host, "redis.prod");
    ck_assert_int_eq(cfg.redis_port, 6380);
    ck_assert_int_eq(cfg.redis_tls, 1);
    ck_assert_str_eq(cfg.redis_password, "env-pw");
    ck_assert_int_eq(cfg.port, 9500);
    ck_assert_str_eq(cfg.broker_socket, "/tmp/redis-chat-9500.sock");
}
END_TEST

/* user and group: names only (config.c never looks them up: that is the
 * master's, privdrop.c); a group needs a user */
START_TEST(test_values_user_group)
{
    parse_ok("user redis-chat\n");
    finalize_ok();
    ck_assert_str_eq(cfg.user, "redis-chat");
    ck_assert_ptr_null(cfg.group);

    reset();
    parse_ok("group nogroup\n");
    ck_assert_int_eq(cfg_finalize(&cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "group: needs user");

    reset();
    ck_assert_int_eq(parse("user\n"), -1);
    ck_assert_str_eq(err, "t.conf:1: user: missing value");
    reset();
    ck_assert_int_eq(parse("user \"a\\tb\"\n"), -1);
    ck_assert_str_eq(err, "t.conf:1: user: must not contain control characters");
    reset();
    ck_assert_int_eq(parse("group 'x'\ngroup y\n"), -1);
    ck_assert_str_eq(err, "t.conf:2: group: duplicate directive (first set on line 1)");
}
END_TEST

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc;

    tc = tcase_create("defaults");
    tcase_add_checked_fixture(tc, cfg_setup, cfg_teardown);
    tcase_add_test(tc, test_defaults_all_fields);
    tcase_add_test(tc, test_defaults_empty_and_comment_only_text);
    tcase_add_test(tc, test_defaults_broker_socket_derived_after_parse);
    tcase_add_test(tc, test_defaults_log_level_name);
    tcase_add_test(tc, test_defaults_free_then_init_again);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_checked_fixture(tc, cfg_setup, cfg_teardown);
    tcase_add_test(tc, test_values_every_directive);
    tcase_add_loop_test(tc, test_values_size_suffixes, 0, NELEM(size_cases));
    tcase_add_loop_test(tc, test_values_duration_suffixes, 0, NELEM(msec_cases));
    tcase_add_test(tc, test_values_ranges_edges);
    tcase_add_test(tc, test_values_flush_interval_off);
    tcase_add_test(tc, test_values_bool_and_level);
    tcase_add_test(tc, test_values_quotes_and_escapes);
    tcase_add_test(tc, test_values_comments_and_hash_in_word);
    tcase_add_test(tc, test_values_whitespace_crlf_bom_case);
    tcase_add_test(tc, test_values_broker_socket_sun_path_limit);
    tcase_add_test(tc, test_values_load_file);
    tcase_add_test(tc, test_values_user_group);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, cfg_setup, cfg_teardown);
    tcase_add_loop_test(tc, test_errors_messages, 0, NELEM(err_cases));
    tcase_add_test(tc, test_errors_line_number_and_file_name);
    tcase_add_test(tc, test_errors_nul_byte);
    tcase_add_test(tc, test_errors_long_value_cut_in_message);
    tcase_add_test(tc, test_errors_small_or_null_err_buffer);
    tcase_add_test(tc, test_errors_load_missing_file);
    tcase_add_test(tc, test_errors_load_file_names_file_and_line);
    tcase_add_test(tc, test_errors_finalize_checks_values_set_in_code);
    tcase_add_test(tc, test_metrics_port_not_a_chat_port);
    tcase_add_test(tc, test_sentinel_directives);
    suite_add_tcase(s, tc);

    tc = tcase_create("history");
    tcase_add_checked_fixture(tc, cfg_setup, cfg_teardown);
    tcase_add_loop_test(tc, test_history_ttl_values, 0, NELEM(ttl_cases));
    tcase_add_loop_test(tc, test_history_errors, 0, NELEM(history_err_cases));
    tcase_add_test(tc, test_history_edges);
    tcase_add_test(tc, test_history_on_join_above_max);
    tcase_add_test(tc, test_history_ttl_hint_names_days);
    suite_add_tcase(s, tc);

    tc = tcase_create("env");
    tcase_add_checked_fixture(tc, env_setup, cfg_teardown);
    tcase_add_test(tc, test_env_none_or_empty_changes_nothing);
    tcase_add_loop_test(tc, test_env_redis_host, 0, NELEM(env_host_cases));
    tcase_add_test(tc, test_env_port_drives_broker_socket);
    tcase_add_test(tc, test_env_real_getenv);
    tcase_add_loop_test(tc, test_env_errors_leave_cfg_untouched, 0, NELEM(env_err_cases));
    tcase_add_test(tc, test_env_whole_call_order);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(config_suite());
}
