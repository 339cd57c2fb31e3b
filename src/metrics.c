/* metrics.c -- see metrics.h. The one place naming every metric. */
#include "metrics.h"

#include <sched.h>
#include <string.h>
#include <sys/mman.h>

#include "util.h"

/* a cache line of its own: two workers never write to the same one */
struct metrics_row {
    uint64_t v[MS_COUNT];
} __attribute__((aligned(64)));

struct metrics_shm {
    uint64_t seq;                   /* odd while the master folds a row */
    uint32_t nslots;                /* high-water mark of worker slots */
    int32_t row_slot[METRICS_ROWS]; /* slot + 1 of the row's process; 0 = free */
    int32_t broker_live;
    struct metrics_row rows[METRICS_ROWS];
    struct metrics_row broker;
    struct metrics_row retired[METRICS_SLOTS]; /* counters of the slots' dead processes */
    struct metrics_row broker_retired;
};

/* until metrics_attach (the master, unit tests): counts go nowhere shared */
static struct metrics_row metrics_private;
uint64_t *metrics_mine = metrics_private.v;

/* ---- the families ---------------------------------------------------------------- */

static const char *const metrics_conn_labels[2 * MCONN_NSTATES] = {
    "state=\"handshaking\",transport=\"ws\"", "state=\"open\",transport=\"ws\"",
    "state=\"closing\",transport=\"ws\"",     "state=\"handshaking\",transport=\"wss\"",
    "state=\"open\",transport=\"wss\"",       "state=\"closing\",transport=\"wss\"",
};
static const char *const metrics_transport_labels[2] = {"transport=\"ws\"", "transport=\"wss\""};
static const char *const metrics_refuse_labels[MREF_N] = {
    [MREF_MAX_CONNECTIONS] = "reason=\"max_connections\"",
    [MREF_PER_IP] = "reason=\"per_ip_limit\"",
    [MREF_SHUTTING_DOWN] = "reason=\"shutting_down\"",
    [MREF_BAD_REQUEST] = "reason=\"bad_request\"",
    [MREF_ORIGIN] = "reason=\"origin\"",
    [MREF_NOT_FOUND] = "reason=\"not_found\"",
    [MREF_METHOD] = "reason=\"method\"",
    [MREF_VERSION] = "reason=\"upgrade_required\"",
    [MREF_TOO_LARGE] = "reason=\"head_too_large\"",
    [MREF_UNAVAILABLE] = "reason=\"unavailable\"",
    [MREF_TIMEOUT] = "reason=\"timeout\"",
    [MREF_AUTH] = "reason=\"auth\"",
    [MREF_NAME_TAKEN] = "reason=\"name_taken\"",
    [MREF_OTHER] = "reason=\"other\"",
};
static const char *const metrics_drop_labels[MDROP_N] = {
    [MDROP_SLOW_READER] = "reason=\"slow_reader\"",
    [MDROP_PING_TIMEOUT] = "reason=\"ping_timeout\"",
    [MDROP_CLOSE_TIMEOUT] = "reason=\"close_timeout\"",
    [MDROP_SHUTDOWN_TIMEOUT] = "reason=\"shutdown_timeout\"",
    [MDROP_SEND_FAILED] = "reason=\"send_failed\"",
};
/* the codes this server sends (RFC 6455 7.4.1 and the chat's 4xxx), then the rest */
static const unsigned metrics_close_codes[METRICS_CLOSE_CODES - 1] = {
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1013, 4401, 4409,
};
static const char *const metrics_close_labels[METRICS_CLOSE_CODES] = {
    "code=\"1000\"", "code=\"1001\"", "code=\"1002\"",  "code=\"1003\"", "code=\"1007\"",
    "code=\"1008\"", "code=\"1009\"", "code=\"1010\"",  "code=\"1011\"", "code=\"1013\"",
    "code=\"4401\"", "code=\"4409\"", "code=\"other\"",
};
const char *const metrics_latency_le[METRICS_LATENCY_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
    "0.01",   "0.025",   "0.05",   "0.1",   "0.5",    "+Inf",
};
static const uint64_t metrics_latency_us[METRICS_LATENCY_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 500000,
};

#define W MSCOPE_WORKER
#define B MSCOPE_BROKER
const struct metrics_family metrics_families[] = {
    {"connections", MT_GAUGE, W, MS_CONNECTIONS, 2 * MCONN_NSTATES,
     "Client connections now, by state (handshaking: before the WebSocket is open) and transport.",
     metrics_conn_labels},
    {"connections_accepted_total", MT_COUNTER, W, MS_ACCEPTED, 2,
     "Client connections admitted (under the connection limits).", metrics_transport_labels},
    {"handshakes_refused_total", MT_COUNTER, W, MS_REFUSED, MREF_N,
     "Connections answered with an HTTP error or closed before becoming chat sessions, by reason.",
     metrics_refuse_labels},
    {"joins_total", MT_COUNTER, W, MS_JOINS, 1, "Room joins granted.", NULL},
    {"leaves_total", MT_COUNTER, W, MS_LEAVES, 1, "Room leaves of joined members.", NULL},
    {"messages_received_total", MT_COUNTER, W, MS_MESSAGES_IN, 1,
     "WebSocket text and binary messages received from clients.", NULL},
    {"deliveries_total", MT_COUNTER, W, MS_DELIVERIES, 1,
     "Frames queued to clients (a broadcast counts once per reader).", NULL},
    {"drops_total", MT_COUNTER, W, MS_DROPS, MDROP_N,
     "Connections dropped without a close handshake, by reason (slow_reader: over "
     "max-pending-bytes).",
     metrics_drop_labels},
    {"close_codes_sent_total", MT_COUNTER, W, MS_CLOSE_CODES, METRICS_CLOSE_CODES,
     "WebSocket close frames sent, by close code.", metrics_close_labels},
    {"rooms", MT_GAUGE, W, MS_WORKER_ROOMS, 1, "Rooms with members on the worker.", NULL},
    {"room_members", MT_GAUGE, W, MS_WORKER_MEMBERS, 1,
     "Room memberships (joined or asking) on the worker.", NULL},
    {"broker_link_up", MT_GAUGE, W, MS_BROKER_LINK_UP, 1,
     "1 while the worker is connected to the broker (summed: workers connected).", NULL},
    {"metrics_scrapes_total", MT_COUNTER, W, MS_METRICS_SCRAPES, 1, "GET /metrics answered.", NULL},
    {"redis_up", MT_GAUGE, B, MS_REDIS_UP, 1,
     "1 while both of the broker's Redis connections are ready.", NULL},
    {"redis_reconnects_total", MT_COUNTER, B, MS_REDIS_RECONNECTS, 1,
     "Redis connection attempts after a lost or failed connection.", NULL},
    {"redis_command_duration_seconds", MT_HISTOGRAM, B, MS_REDIS_LATENCY,
     METRICS_LATENCY_BUCKETS + 2, "Round trip of the broker's Redis commands.", NULL},
    {"redis_command_errors_total", MT_COUNTER, B, MS_REDIS_ERRORS, 1,
     "Redis commands that failed (error reply or connection lost).", NULL},
    {"redis_primary_changes_total", MT_COUNTER, B, MS_REDIS_FAILOVERS, 1,
     "Times the sentinels named another primary (redis-sentinel).", NULL},
    {"redis_sends_not_replicated_total", MT_COUNTER, B, MS_REDIS_NOT_REPLICATED, 1,
     "Acknowledged sends WAIT did not see on redis-wait-replicas replicas in time.", NULL},
    {"messages_published_total", MT_COUNTER, B, MS_PUBLISHED, 1,
     "Chat messages the broker published to Redis.", NULL},
    {"messages_fanned_out_total", MT_COUNTER, B, MS_FANNED_OUT, 1,
     "Messages from Redis the broker passed on to the workers (once per message).", NULL},
    {"outbox_messages", MT_GAUGE, B, MS_OUTBOX_DEPTH, 1, "Messages held while Redis is away.",
     NULL},
    {"outbox_dropped_total", MT_COUNTER, B, MS_OUTBOX_DROPPED, 1,
     "Held messages dropped (outbox-size or outbox-timeout).", NULL},
    {"broker_rooms", MT_GAUGE, B, MS_BROKER_ROOMS, 1, "Rooms the broker holds for the workers.",
     NULL},
    {"history_reads_total", MT_COUNTER, B, MS_HISTORY_READS, 1,
     "History reads sent to Redis (joins with history, resumes).", NULL},
    {"broker_workers", MT_GAUGE, B, MS_WORKERS_CONNECTED, 1,
     "Worker processes connected to the broker.", NULL},
    {"workers_dropped_behind_total", MT_COUNTER, B, MS_WORKERS_BEHIND, 1,
     "Workers the broker dropped for falling max-worker-backlog behind.", NULL},
};
#undef W
#undef B
const size_t metrics_nfamilies = ARRAY_SIZE(metrics_families);

int metrics_close_code_index(unsigned code)
{
    int i;

    for (i = 0; i < METRICS_CLOSE_CODES - 1; i++)
        if (metrics_close_codes[i] == code)
            return i;
    return METRICS_CLOSE_CODES - 1;
}

enum metrics_refuse metrics_refuse_of_status(int status)
{
    switch (status) {
    case 400:
        return MREF_BAD_REQUEST;
    case 403:
        return MREF_ORIGIN;
    case 404:
        return MREF_NOT_FOUND;
    case 405:
        return MREF_METHOD;
    case 426:
        return MREF_VERSION;
    case 429:
        return MREF_PER_IP;
    case 431:
        return MREF_TOO_LARGE;
    case 503:
        return MREF_UNAVAILABLE;
    default:
        return MREF_OTHER;
    }
}

void metrics_redis_latency(uint64_t us)
{
    int i;

    for (i = 0; i < METRICS_LATENCY_BUCKETS - 1 && us > metrics_latency_us[i]; i++)
        ;
    metrics_inc(MS_REDIS_LATENCY + i);
    metrics_add(MS_REDIS_LATENCY_SUM_US, us);
    metrics_inc(MS_REDIS_LATENCY_COUNT);
}

/* ---- shared memory --------------------------------------------------------------- */

struct metrics_shm *metrics_create(void)
{
    void *p = mmap(NULL, sizeof(struct metrics_shm), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

void metrics_destroy(struct metrics_shm *m)
{
    if (m != NULL)
        munmap(m, sizeof(*m));
}

static struct metrics_row *metrics_row_at(struct metrics_shm *m, int row)
{
    if (row == METRICS_BROKER)
        return &m->broker;
    return row >= 0 && row < METRICS_ROWS ? &m->rows[row] : NULL;
}

/* The master's side of the sequence lock around a change of rows. */
static void metrics_write_begin(struct metrics_shm *m)
{
    __atomic_store_n(&m->seq, m->seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void metrics_write_end(struct metrics_shm *m)
{
    __atomic_store_n(&m->seq, m->seq + 1, __ATOMIC_RELEASE);
}

static void metrics_zero(struct metrics_row *r)
{
    size_t i;

    for (i = 0; i < MS_COUNT; i++)
        __atomic_store_n(&r->v[i], 0, __ATOMIC_RELAXED);
}

void metrics_row_bind(struct metrics_shm *m, int row, int slot)
{
    struct metrics_row *r = metrics_row_at(m, row);

    if (r == NULL || (row != METRICS_BROKER && (slot < 0 || slot >= METRICS_SLOTS)))
        return;
    metrics_write_begin(m);
    metrics_zero(r);
    if (row == METRICS_BROKER) {
        __atomic_store_n(&m->broker_live, 1, __ATOMIC_RELAXED);
    } else {
        __atomic_store_n(&m->row_slot[row], slot + 1, __ATOMIC_RELAXED);
        if ((uint32_t)slot >= m->nslots)
            __atomic_store_n(&m->nslots, (uint32_t)slot + 1, __ATOMIC_RELAXED);
    }
    metrics_write_end(m);
}

void metrics_row_fold(struct metrics_shm *m, int row)
{
    struct metrics_row *r = metrics_row_at(m, row), *into;
    size_t f;
    int i;

    if (r == NULL)
        return;
    if (row == METRICS_BROKER) {
        if (!m->broker_live)
            return;
        into = &m->broker_retired;
    } else {
        if (m->row_slot[row] == 0)
            return;
        into = &m->retired[m->row_slot[row] - 1];
    }
    metrics_write_begin(m);
    for (f = 0; f < metrics_nfamilies; f++) {
        const struct metrics_family *fam = &metrics_families[f];
        if (fam->type == MT_GAUGE)
            continue;
        for (i = fam->first; i < fam->first + fam->n; i++)
            __atomic_store_n(&into->v[i], into->v[i] + r->v[i], __ATOMIC_RELAXED);
    }
    metrics_zero(r);
    if (row == METRICS_BROKER)
        __atomic_store_n(&m->broker_live, 0, __ATOMIC_RELAXED);
    else
        __atomic_store_n(&m->row_slot[row], 0, __ATOMIC_RELAXED);
    metrics_write_end(m);
}

void metrics_attach(struct metrics_shm *m, int row)
{
    struct metrics_row *r = m != NULL ? metrics_row_at(m, row) : NULL;

    metrics_mine = r != NULL ? r->v : metrics_private.v;
}

static void metrics_add_row(uint64_t *into, const struct metrics_row *r)
{
    size_t i;

    for (i = 0; i < MS_COUNT; i++)
        into[i] += __atomic_load_n(&r->v[i], __ATOMIC_RELAXED);
}

/* A fold takes microseconds; a master killed in the middle of one must not
 * hang every scrape: after this many tries the view is taken as it is. */
#define METRICS_READ_TRIES 100000

void metrics_read(const struct metrics_shm *m, struct metrics_view *v)
{
    uint64_t seq;
    int i, tries = 0;

    for (;; tries++) {
        while (((seq = __atomic_load_n(&m->seq, __ATOMIC_ACQUIRE)) & 1) &&
               tries++ < METRICS_READ_TRIES)
            sched_yield();
        v->nslots = (int)__atomic_load_n(&m->nslots, __ATOMIC_RELAXED);
        if (v->nslots > METRICS_SLOTS)
            v->nslots = METRICS_SLOTS;
        memset(v->slot, 0, sizeof(v->slot[0]) * (size_t)v->nslots);
        memset(v->broker, 0, sizeof(v->broker));
        for (i = 0; i < v->nslots; i++)
            metrics_add_row(v->slot[i], &m->retired[i]);
        for (i = 0; i < METRICS_ROWS; i++) {
            int slot = __atomic_load_n(&m->row_slot[i], __ATOMIC_RELAXED);
            if (slot > 0 && slot <= v->nslots)
                metrics_add_row(v->slot[slot - 1], &m->rows[i]);
        }
        metrics_add_row(v->broker, &m->broker_retired);
        if (__atomic_load_n(&m->broker_live, __ATOMIC_RELAXED))
            metrics_add_row(v->broker, &m->broker);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&m->seq, __ATOMIC_RELAXED) == seq || tries >= METRICS_READ_TRIES)
            return;
    }
}
