/* fuzz_cluster_redirect.c -- libFuzzer target for MOVED/ASK and key slots
 * (broker/cluster_map.c: cluster_redirect_parse; src/cluster_slot.c:
 * cluster_key_slot).
 *
 * The input is an error reply's text. cluster_redirect_parse either refuses
 * it (kind NONE) or returns a slot, host and port within their limits that,
 * written out again the way Redis writes them, read back the same; an input
 * without brackets is exactly that text. The same bytes as a key: its slot
 * equals an oracle written differently (a CRC table, the tag found by
 * index). abort() on any violation.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cluster_map.h"
#include "cluster_slot.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t fuzz_table[256];

static void fuzz_table_init(void)
{
    for (unsigned b = 0; b < 256; b++) {
        uint16_t c = (uint16_t)(b << 8);

        for (int k = 0; k < 8; k++)
            c = (uint16_t)(c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1);
        fuzz_table[b] = c;
    }
}

static unsigned fuzz_slot_oracle(const uint8_t *k, size_t n)
{
    size_t from = 0, to = n, i, j;
    uint16_t crc = 0;

    for (i = 0; i < n && k[i] != '{'; i++)
        ;
    for (j = i + 1; i < n && j < n && k[j] != '}'; j++)
        ;
    if (i < n && j < n && j > i + 1) {
        from = i + 1;
        to = j;
    }
    for (i = from; i < to; i++)
        crc = (uint16_t)((crc << 8) ^ fuzz_table[((crc >> 8) ^ k[i]) & 0xff]);
    return crc % 16384;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cluster_redirect r, again;
    char text[512];
    int n;

    if (fuzz_table[1] == 0)
        fuzz_table_init();
    FUZZ_CHECK(cluster_key_slot((const char *)data, size) == fuzz_slot_oracle(data, size));

    memset(&r, 0x5a, sizeof(r));
    if (cluster_redirect_parse((const char *)data, size, &r) == -1) {
        FUZZ_CHECK(r.kind == CLUSTER_REDIRECT_NONE);
        return 0;
    }
    FUZZ_CHECK(r.kind == CLUSTER_REDIRECT_MOVED || r.kind == CLUSTER_REDIRECT_ASK);
    FUZZ_CHECK(r.slot < CLUSTER_SLOTS);
    FUZZ_CHECK(r.port >= 1 && r.port <= 65535);
    FUZZ_CHECK(strlen(r.host) <= CLUSTER_HOST_MAX);
    for (const char *p = r.host; *p != '\0'; p++)
        FUZZ_CHECK((unsigned char)*p > ' ' && (unsigned char)*p < 0x7f && *p != '[' && *p != ']');
    n = snprintf(text, sizeof(text), "%s %u %s:%d",
                 r.kind == CLUSTER_REDIRECT_MOVED ? "MOVED" : "ASK", r.slot, r.host, r.port);
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof(text));
    FUZZ_CHECK(cluster_redirect_parse(text, (size_t)n, &again) == 0);
    FUZZ_CHECK(memcmp(&r, &again, sizeof(r)) == 0 ||
               (again.kind == r.kind && again.slot == r.slot && again.port == r.port &&
                strcmp(again.host, r.host) == 0));
    if (memchr(data, '[', size) == NULL)
        FUZZ_CHECK((size_t)n == size && memcmp(text, data, size) == 0);
    return 0;
}
