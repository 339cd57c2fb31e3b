/* fuzz_cluster_map.c -- libFuzzer target for the slot map's reply parsers
 * (broker/cluster_map.c: cluster_map_from_shards, cluster_map_from_slots).
 *
 * Input: one mode byte (bit 0: TLS ports), then RESP bytes as a node would
 * send them. hiredis's reader turns them into reply trees, as the broker's
 * connection does; every complete reply goes through both parsers. A map
 * that comes back must be consistent: every slot owner is a primary, the
 * primaries' slot counts add up to the covered slots, every replica's
 * primary is a primary, addresses are within their limits and findable. A
 * refusal must give a reason. abort() on any violation.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cluster_map.h"
#include "fuzz_check.h"
#include "hiredis_compat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_REPLIES_MAX 8

static void fuzz_check_map(const struct cluster_map *m)
{
    unsigned covered = 0, sum = 0, s;
    int i, n = cluster_map_count(m);

    FUZZ_CHECK(n >= 0 && n <= CLUSTER_MAP_NODES_MAX);
    FUZZ_CHECK(cluster_map_node(m, n) == NULL && cluster_map_node(m, -1) == NULL);
    for (s = 0; s < CLUSTER_SLOTS; s++) {
        int o = cluster_map_slot_owner(m, s);

        FUZZ_CHECK(o >= -1 && o < n);
        if (o >= 0) {
            FUZZ_CHECK(cluster_map_node(m, o)->primary == -1);
            covered++;
        }
    }
    FUZZ_CHECK(cluster_map_slot_owner(m, CLUSTER_SLOTS) == -1);
    FUZZ_CHECK(covered == cluster_map_covered(m));
    for (i = 0; i < n; i++) {
        const struct cluster_node *nd = cluster_map_node(m, i);
        size_t hl = strnlen(nd->host, sizeof(nd->host));

        FUZZ_CHECK(hl <= CLUSTER_HOST_MAX);
        FUZZ_CHECK(strnlen(nd->id, sizeof(nd->id)) <= CLUSTER_NODE_ID_MAX);
        FUZZ_CHECK(nd->port >= 1 && nd->port <= 65535);
        for (size_t k = 0; k < hl; k++)
            FUZZ_CHECK((unsigned char)nd->host[k] > ' ' && (unsigned char)nd->host[k] < 0x7f);
        FUZZ_CHECK(nd->health >= CLUSTER_HEALTH_UNKNOWN && nd->health <= CLUSTER_HEALTH_LOADING);
        if (nd->primary == -1) {
            sum += nd->slots;
        } else {
            FUZZ_CHECK(nd->primary >= 0 && nd->primary < n);
            FUZZ_CHECK(cluster_map_node(m, nd->primary)->primary == -1);
            FUZZ_CHECK(nd->slots == 0);
        }
        /* the first node at this address is this one or an earlier one */
        {
            int f = cluster_map_find(m, nd->host, nd->port);

            FUZZ_CHECK(f >= 0 && f <= i);
        }
    }
    FUZZ_CHECK(sum == covered);
    /* the iterations visit exactly the primaries, and their replicas */
    for (i = cluster_map_next_primary(m, -1); i >= 0; i = cluster_map_next_primary(m, i)) {
        int r;

        FUZZ_CHECK(cluster_map_node(m, i)->primary == -1);
        for (r = cluster_map_next_replica(m, i, -1); r >= 0; r = cluster_map_next_replica(m, i, r))
            FUZZ_CHECK(r > -1 && cluster_map_node(m, r)->primary == i);
    }
}

static void fuzz_parse(const redisReply *r, int tls)
{
    char err[CLUSTER_MAP_ERR_LEN];
    struct cluster_map *m;

    err[0] = '\0';
    m = cluster_map_from_shards(r, tls, err, sizeof(err));
    if (m != NULL)
        fuzz_check_map(m);
    else
        FUZZ_CHECK(err[0] != '\0');
    cluster_map_free(m);

    err[0] = '\0';
    m = cluster_map_from_slots(r, err, sizeof(err));
    if (m != NULL)
        fuzz_check_map(m);
    else
        FUZZ_CHECK(err[0] != '\0');
    cluster_map_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    redisReader *rd;
    int tls, i;

    if (size < 1)
        return 0;
    tls = data[0] & 1;
    rd = redisReaderCreate();
    FUZZ_CHECK(rd != NULL);
    /* deep nesting is the reader's business; keep trees small */
    rd->maxelements = 4096;
    if (redisReaderFeed(rd, (const char *)data + 1, size - 1) == REDIS_OK) {
        for (i = 0; i < FUZZ_REPLIES_MAX; i++) {
            void *reply = NULL;

            if (redisReaderGetReply(rd, &reply) != REDIS_OK || reply == NULL)
                break;
            fuzz_parse(reply, tls);
            freeReplyObject(reply);
        }
    }
    redisReaderFree(rd);
    return 0;
}
