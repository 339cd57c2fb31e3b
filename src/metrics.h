/* metrics.h -- the instance's counters and gauges, in shared memory.
 *
 * Like conn_count.h: the master maps one table before forking, with a row
 * per live worker process and one for the broker; each process writes only
 * its own row (relaxed 64-bit stores, no locks), and anyone reads every row
 * (a worker answering GET /metrics). When a process dies or a reload retires
 * it, the master folds the row's counters into its slot's "retired" row and
 * zeroes it (gauges simply go), under a sequence counter a reader retries
 * on, so a counter read never goes down, never resets on a respawn and is
 * never counted twice.
 *
 * A metric is a span of value slots (one per label value) in a row; the
 * families table in metrics.c names each family, its type, help text and
 * label values. Increments are one load and one store:
 *     metrics_inc(MS_JOINS);
 *     metrics_add(MS_CLOSE_CODES + i, 1);
 */
#ifndef RC_METRICS_H
#define RC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_ROWS 512  /* worker processes alive at once (as CCOUNT_ROWS) */
#define METRICS_SLOTS 256 /* worker slots (the workers directive's maximum) */

/* Label values of the families with more than one. The connections gauge
 * has these states for ws://, then the same for wss://. */
enum metrics_conn_state { MCONN_HANDSHAKING = 0, MCONN_OPEN, MCONN_CLOSING, MCONN_NSTATES };
enum metrics_refuse {
    MREF_MAX_CONNECTIONS = 0,
    MREF_PER_IP,
    MREF_SHUTTING_DOWN,
    MREF_BAD_REQUEST,
    MREF_ORIGIN,
    MREF_NOT_FOUND,
    MREF_METHOD,
    MREF_VERSION /* 426 */,
    MREF_TOO_LARGE,
    MREF_UNAVAILABLE,
    MREF_TIMEOUT,
    MREF_AUTH,
    MREF_NAME_TAKEN,
    MREF_OTHER,
    MREF_N
};
enum metrics_drop {
    MDROP_SLOW_READER = 0,
    MDROP_PING_TIMEOUT,
    MDROP_CLOSE_TIMEOUT,
    MDROP_SHUTDOWN_TIMEOUT,
    MDROP_SEND_FAILED,
    MDROP_N
};
/* close codes sent: metrics_close_code_index() */
#define METRICS_CLOSE_CODES 13
#define METRICS_LATENCY_BUCKETS 12 /* the last is +Inf */

/* Every value slot of a row. Worker slots first, then the broker's. */
enum metrics_slot {
    /* worker */
    MS_CONNECTIONS = 0,                               /* gauge, state x transport */
    MS_ACCEPTED = MS_CONNECTIONS + 2 * MCONN_NSTATES, /* ws, wss */
    MS_REFUSED = MS_ACCEPTED + 2,
    MS_JOINS = MS_REFUSED + MREF_N,
    MS_LEAVES,
    MS_MESSAGES_IN,
    MS_DELIVERIES,
    MS_DROPS,
    MS_CLOSE_CODES = MS_DROPS + MDROP_N,
    MS_WORKER_ROOMS = MS_CLOSE_CODES + METRICS_CLOSE_CODES, /* gauge */
    MS_WORKER_MEMBERS,                                      /* gauge */
    MS_BROKER_LINK_UP,                                      /* gauge */
    MS_METRICS_SCRAPES,
    /* broker */
    MS_REDIS_UP, /* gauge */
    MS_REDIS_RECONNECTS,
    MS_REDIS_LATENCY, /* histogram: buckets (not cumulative), sum (us), count */
    MS_REDIS_LATENCY_SUM_US = MS_REDIS_LATENCY + METRICS_LATENCY_BUCKETS,
    MS_REDIS_LATENCY_COUNT,
    MS_REDIS_ERRORS,
    MS_REDIS_FAILOVERS,
    MS_REDIS_NOT_REPLICATED,
    MS_PUBLISHED,
    MS_FANNED_OUT,
    MS_OUTBOX_DEPTH, /* gauge */
    MS_OUTBOX_DROPPED,
    MS_BROKER_ROOMS, /* gauge */
    MS_HISTORY_READS,
    MS_WORKERS_CONNECTED, /* gauge */
    MS_WORKERS_BEHIND,
    MS_COUNT
};

/* This process's row (a private dummy one until metrics_attach). */
extern uint64_t *metrics_mine;

static inline void metrics_add(int slot, uint64_t n)
{
    __atomic_store_n(&metrics_mine[slot], metrics_mine[slot] + n, __ATOMIC_RELAXED);
}

static inline void metrics_inc(int slot)
{
    metrics_add(slot, 1);
}

static inline void metrics_sub(int slot, uint64_t n)
{
    __atomic_store_n(&metrics_mine[slot], metrics_mine[slot] - n, __ATOMIC_RELAXED);
}

static inline void metrics_set(int slot, uint64_t v)
{
    __atomic_store_n(&metrics_mine[slot], v, __ATOMIC_RELAXED);
}

/* Index of a close code among MS_CLOSE_CODES' label values. */
int metrics_close_code_index(unsigned code);
/* Index of an HTTP refusal status among MS_REFUSED's. */
enum metrics_refuse metrics_refuse_of_status(int status);
/* Count a Redis command's round trip. */
void metrics_redis_latency(uint64_t us);

/* ---- the table -------------------------------------------------------------- */

enum metrics_type { MT_COUNTER, MT_GAUGE, MT_HISTOGRAM };
enum metrics_scope { MSCOPE_WORKER, MSCOPE_BROKER };

struct metrics_family {
    const char *name; /* after "redis_chat_" (and "worker_" for the per-worker family) */
    enum metrics_type type;
    enum metrics_scope scope;
    int first, n; /* value slots [first, first + n) */
    const char *help;
    const char *const *labels; /* n label sets ("state=\"open\""), NULL when n == 1 */
};

extern const struct metrics_family metrics_families[];
extern const size_t metrics_nfamilies;
/* The bucket bounds of MS_REDIS_LATENCY, in seconds as text ("+Inf" last). */
extern const char *const metrics_latency_le[METRICS_LATENCY_BUCKETS];

/* ---- shared memory ------------------------------------------------------------ */

struct metrics_shm;

/* Master, before forking: the zeroed shared table. NULL on failure. */
struct metrics_shm *metrics_create(void);
void metrics_destroy(struct metrics_shm *m);

/* Master: row `row` (the worker's conn_count row, or METRICS_BROKER) now
 * belongs to a new process of `slot` (METRICS_BROKER for the broker). */
#define METRICS_BROKER (-1)
void metrics_row_bind(struct metrics_shm *m, int row, int slot);
/* Master: that process is gone: fold its counters into its slot's. */
void metrics_row_fold(struct metrics_shm *m, int row);

/* In the child: write into this row from now on (m NULL: into a private
 * row again). */
void metrics_attach(struct metrics_shm *m, int row);

/* A consistent view: per worker slot (retired + live rows of that slot)
 * and the broker's. */
struct metrics_view {
    int nslots; /* slots that ever had a worker */
    uint64_t slot[METRICS_SLOTS][MS_COUNT];
    uint64_t broker[MS_COUNT];
};
/* Fill v (large: allocate it). */
void metrics_read(const struct metrics_shm *m, struct metrics_view *v);

#endif
