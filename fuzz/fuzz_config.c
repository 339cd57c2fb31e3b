/* fuzz_config.c -- libFuzzer target for the configuration parser.
 *
 * The input is a config file: cfg_init, cfg_parse_buffer, cfg_apply_env,
 * cfg_finalize, cfg_free, in the order config.h prescribes, with LeakSanitizer
 * watching every exit path. A line "#ENV" (a comment to the parser) splits
 * the input: what follows it is REDIS_HOST, REDIS_PASSWORD and PORT,
 * separated by NUL bytes, for a fake getenv. Checked: errors are non-empty
 * and name the file and line; a refused environment leaves cfg untouched;
 * a finalized cfg has every value in its documented range and is stable
 * under a second cfg_finalize. abort() on any violation.
 */
#define _GNU_SOURCE 1 /* memmem */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define FUZZ_FNAME "fuzz.conf"
#define FUZZ_ENV_MARK "\n#ENV\n"
#define FUZZ_ENV_N 3

static const char *const fuzz_env_names[FUZZ_ENV_N] = {"REDIS_HOST", "REDIS_PASSWORD", "PORT"};
static char *fuzz_env_values[FUZZ_ENV_N]; /* exact-size heap copies: overreads show */

static const char *fuzz_getenv(const char *name)
{
    for (int i = 0; i < FUZZ_ENV_N; i++)
        if (strcmp(name, fuzz_env_names[i]) == 0)
            return fuzz_env_values[i];
    FUZZ_CHECK(!"cfg_apply_env asked for an unexpected variable");
    return NULL;
}

static int fuzz_streq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int fuzz_has_ctrl(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* A required string: set, 1..max bytes, no control characters. */
static void fuzz_check_name(const char *s, size_t max)
{
    FUZZ_CHECK(s != NULL);
    FUZZ_CHECK(strlen(s) >= 1 && strlen(s) <= max);
    FUZZ_CHECK(!fuzz_has_ctrl(s));
}

static void fuzz_check_err(const char *err, size_t errlen, const char *prefix)
{
    FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
    FUZZ_CHECK(err[0] != '\0');
    if (prefix != NULL)
        FUZZ_CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
}

/* Everything cfg_finalize promises about a cfg it accepted. */
static void fuzz_check_final(const struct cfg *c)
{
    fuzz_check_name(c->bind, 255);
    fuzz_check_name(c->redis_host, 255);
    fuzz_check_name(c->channel, CFG_NAME_MAX);
    fuzz_check_name(c->users_key, CFG_NAME_MAX);
    FUZZ_CHECK(c->broker_socket != NULL);
    FUZZ_CHECK(strlen(c->broker_socket) >= 1 && strlen(c->broker_socket) <= 107);
    if (c->redis_tls_server_name != NULL)
        fuzz_check_name(c->redis_tls_server_name, 255);
    FUZZ_CHECK(c->port >= 0 && c->port <= 65535);
    FUZZ_CHECK(c->workers >= 1 && c->workers <= 256);
    FUZZ_CHECK(c->daemonize == 0 || c->daemonize == 1);
    FUZZ_CHECK(c->log_level >= CFG_LOG_DEBUG && c->log_level <= CFG_LOG_ERROR);
    FUZZ_CHECK(strcmp(cfg_log_level_name(c->log_level), "?") != 0);
    FUZZ_CHECK(c->redis_port >= 1 && c->redis_port <= 65535);
    FUZZ_CHECK(c->redis_db >= 0 && c->redis_db <= 1000000);
    FUZZ_CHECK(c->redis_tls == 0 || c->redis_tls == 1);
    FUZZ_CHECK((c->redis_tls_cert == NULL) == (c->redis_tls_key == NULL));
    FUZZ_CHECK(c->max_message_size >= 64 && c->max_message_size <= 16L * 1024 * 1024);
    FUZZ_CHECK(c->max_connections >= 1 && c->max_connections <= 10000000);
    FUZZ_CHECK(c->max_pending_bytes >= 1024 && c->max_pending_bytes <= 1024L * 1024 * 1024);
    FUZZ_CHECK(c->handshake_timeout >= 100 && c->handshake_timeout <= 3600000);
    FUZZ_CHECK(c->ping_interval == 0 ||
               (c->ping_interval >= 100 && c->ping_interval <= 3600000));
    FUZZ_CHECK(c->shutdown_timeout >= 0 && c->shutdown_timeout <= 3600000);
    /* empty strings are stored as NULL */
    FUZZ_CHECK(c->pidfile == NULL || c->pidfile[0] != '\0');
    FUZZ_CHECK(c->logfile == NULL || c->logfile[0] != '\0');
    FUZZ_CHECK(c->redis_password == NULL || c->redis_password[0] != '\0');
}

/* What cfg_apply_env may change, to prove a refusal changed nothing. */
struct fuzz_env_snap {
    char *redis_host, *redis_password;
    int redis_port, redis_tls, port;
};

static void fuzz_snap_take(struct fuzz_env_snap *s, const struct cfg *c)
{
    s->redis_host = c->redis_host != NULL ? strdup(c->redis_host) : NULL;
    s->redis_password = c->redis_password != NULL ? strdup(c->redis_password) : NULL;
    FUZZ_CHECK((s->redis_host != NULL) == (c->redis_host != NULL));
    FUZZ_CHECK((s->redis_password != NULL) == (c->redis_password != NULL));
    s->redis_port = c->redis_port;
    s->redis_tls = c->redis_tls;
    s->port = c->port;
}

static int fuzz_snap_same(const struct fuzz_env_snap *s, const struct cfg *c)
{
    return fuzz_streq(s->redis_host, c->redis_host) &&
           fuzz_streq(s->redis_password, c->redis_password) && s->redis_port == c->redis_port &&
           s->redis_tls == c->redis_tls && s->port == c->port;
}

static void fuzz_snap_free(struct fuzz_env_snap *s)
{
    free(s->redis_host);
    free(s->redis_password);
}

/* Split the input at the first "#ENV" line into text and variables. */
static size_t fuzz_env_split(const uint8_t *data, size_t size)
{
    const uint8_t *mark = memmem(data, size, FUZZ_ENV_MARK, sizeof(FUZZ_ENV_MARK) - 1);
    size_t text_len, pos;

    for (int i = 0; i < FUZZ_ENV_N; i++)
        fuzz_env_values[i] = NULL;
    if (mark == NULL)
        return size;
    text_len = (size_t)(mark - data);
    pos = text_len + sizeof(FUZZ_ENV_MARK) - 1;
    for (int i = 0; i < FUZZ_ENV_N && pos <= size; i++) {
        const uint8_t *nul = memchr(data + pos, '\0', size - pos);
        size_t vlen = nul != NULL ? (size_t)(nul - (data + pos)) : size - pos;

        fuzz_env_values[i] = malloc(vlen + 1);
        FUZZ_CHECK(fuzz_env_values[i] != NULL);
        memcpy(fuzz_env_values[i], data + pos, vlen);
        fuzz_env_values[i][vlen] = '\0';
        pos += vlen + 1;
    }
    return text_len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg cfg;
    char err[CFG_ERR_LEN];
    size_t text_len = fuzz_env_split(data, size);
    char *text = malloc(text_len + 1); /* exact size (+1 so 0 bytes is not NULL) */
    struct fuzz_env_snap snap;
    int rc;

    FUZZ_CHECK(text != NULL);
    memcpy(text, data, text_len);

    cfg_init(&cfg);
    memset(err, 0, sizeof(err));
    rc = cfg_parse_buffer(&cfg, text, text_len, FUZZ_FNAME, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc == -1) {
        fuzz_check_err(err, sizeof(err), FUZZ_FNAME);
        goto out;
    }

    fuzz_snap_take(&snap, &cfg);
    memset(err, 0, sizeof(err));
    rc = cfg_apply_env(&cfg, fuzz_getenv, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc == -1) {
        fuzz_check_err(err, sizeof(err), NULL);
        FUZZ_CHECK(fuzz_snap_same(&snap, &cfg));
        fuzz_snap_free(&snap);
        goto out;
    }
    fuzz_snap_free(&snap);

    memset(err, 0, sizeof(err));
    rc = cfg_finalize(&cfg, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc == -1) {
        fuzz_check_err(err, sizeof(err), NULL);
        goto out;
    }
    fuzz_check_final(&cfg);
    {
        char *sock = strdup(cfg.broker_socket);

        FUZZ_CHECK(sock != NULL);
        FUZZ_CHECK(cfg_finalize(&cfg, err, sizeof(err)) == 0);
        FUZZ_CHECK(strcmp(sock, cfg.broker_socket) == 0);
        fuzz_check_final(&cfg);
        free(sock);
    }

out:
    cfg_free(&cfg);
    /* cfg_free leaves a struct that cfg_init may fill again */
    cfg_init(&cfg);
    cfg_free(&cfg);
    free(text);
    for (int i = 0; i < FUZZ_ENV_N; i++) {
        free(fuzz_env_values[i]);
        fuzz_env_values[i] = NULL;
    }
    return 0;
}
