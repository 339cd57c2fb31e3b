/* sentinel.h -- where the primary is, asked of Redis Sentinel.
 *
 * Sentinel's client protocol: ask the sentinels in turn (the one that
 * answered last first) SENTINEL GET-MASTER-ADDR-BY-NAME; then make sure the
 * server named is a primary (ROLE, the link's job); ask again whenever the
 * link to it breaks. Besides, one sentinel is kept subscribed to
 * +switch-master, so a failover is heard at once even while the old
 * primary still answers.
 */
#ifndef RC_SENTINEL_H
#define RC_SENTINEL_H

#include <openssl/ssl.h>

#include "config.h"

struct event_base;
struct sentinel;

struct sentinel_handlers {
    /* the answer to sentinel_ask: the primary's address; host is NULL when
     * no sentinel named one (each reason was logged) */
    void (*on_primary)(const char *host, int port, void *arg);
    /* a +switch-master for our master: it is now at host:port */
    void (*on_switch)(const char *host, int port, void *arg);
    void *arg;
};

/* Sentinels from cfg->redis_sentinel, master cfg->redis_sentinel_master,
 * password cfg->redis_sentinel_password, TLS through ssl_ctx (NULL: plain
 * TCP). Starts watching for +switch-master at once. */
struct sentinel *sentinel_new(struct event_base *base, const struct cfg *cfg, SSL_CTX *ssl_ctx,
                              const struct sentinel_handlers *h);
void sentinel_free(struct sentinel *s);

/* Ask for the primary; on_primary follows once. A call while asking
 * changes nothing (the answer under way serves both). */
void sentinel_ask(struct sentinel *s);

/* Parse a +switch-master message: "name old-ip old-port new-ip new-port".
 * 0 with the new address in host (cap bytes) and *port when it is about
 * master, -1 otherwise (another master, or malformed). */
int sentinel_switch_parse(const char *msg, size_t len, const char *master, char *host,
                          size_t cap, int *port);

#endif
