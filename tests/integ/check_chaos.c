/* check_chaos.c -- history and zero-loss delivery under faults (issue 12,
 * docs/protocol.md "History, acknowledgements and resume"), end to end: one
 * redis-server (TLS, password, AOF on) and two redis-chat instances A and B
 * of 2 workers sharing it. A steady fan-out runs in two rooms, the default
 * room (stream `chat:history`) and `lobby` (stream `chat:{lobby}:history`):
 * per room a typed sender on each instance (numbered texts "m<g>-<seq>" at
 * SEND_RATE a second, each send acked or refused), five typed receivers
 * spread over both instances and two plain receivers (no history parameter)
 * that stay connected. While it runs, in turn:
 *   (a) CLIENT KILL TYPE pubsub: both brokers lose their subscriber;
 *   (b) SIGKILL of instance B's broker (the master starts a new one);
 *   (c) SIGKILL of instance A's worker VICTIM_SLOT: its clients (typed
 *       receivers and the lobby's sender, placed there on purpose) see the
 *       connection drop and reconnect to instance B, the receivers with
 *       `?after=<the last msg_id they saw>` (resume);
 *   (d) a Redis restart with AOF on (the data set survives).
 * Then the senders stop and the traffic settles. Asserted, from the rooms'
 * streams (XRANGE):
 *   - every typed receiver's received msg_ids, replays after a resume
 *     included, are exactly its room's stream (they all joined before the
 *     first message): nothing lost, nothing twice, same order, each with the
 *     stream's text; no resume was truncated;
 *   - every acked msg_id is in the stream, holding the text that was sent;
 *     every send on a connection still open got its answer;
 *   - the plain receivers stay connected and receive every message of the
 *     stream, once and in order, in the windows around (a) (the issue's
 *     chaos test) and (d) (the point 5: connected users lose nothing
 *     across a Redis restart with persistence); across (b) a plain client
 *     has no position the new broker could resume from, so that window is
 *     only reported;
 *   - the clients of the killed worker did reconnect to B.
 * The clients run in one thread (a poll loop, one struct per client) while
 * the test's main thread injects the faults, which block (a Redis restart
 * waits for PING) without pausing the traffic. A summary goes to stderr.
 *
 * Not under valgrind (tests/valgrind-integ.sh): the faults are found by ps
 * titles, which valgrind hides, and timed against a message rate that
 * valgrind cannot keep. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "check_run.h"
#include "fixtures.h"
#include "harness.h"
#include "wsclient.h"

#define PROTO "redis-chat.v1"
#define PROTO_HEADER "Sec-WebSocket-Protocol: " PROTO
#define PASSWORD "s3cret"

#define ROOMS 2
#define SENDERS_PER_ROOM 2 /* one per instance */
#define SENDERS (ROOMS * SENDERS_PER_ROOM)
#define SEND_RATE 25      /* messages a second, per sender */
#define SEQ_MAX 4096      /* sends per sender, at most */
#define GOT_MAX 16384     /* messages one client records, at most */
#define VICTIM_SLOT 1     /* instance A's worker killed in (c) */
#define KEEP_SLOT 0       /* instance A's worker that lives */
#define PLACE_TRIES 26    /* joins to land a client on a given worker */
#define EV_MAX 8192
#define STREAM_OUT_MAX (8 << 20)
#define WINDOW_MIN 20 /* messages a checked window must hold */

#define T_WARMUP_MS 4000    /* traffic before the first fault */
#define T_BETWEEN_MS 7000   /* from one fault to the next */
#define T_TAIL_MS 8000      /* traffic after the last fault is over */
#define T_QUIET_END_MS 2000 /* the end: no message for this long */
#define T_SETTLE_MAX_MS 25000
#define T_LIVE_MS 10000         /* every client joined */
#define T_REDIS_BACK_MS 12000   /* Redis back up: retries back off up to 5 s + jitter */
#define T_BROKER_BACK_MS 10000  /* a new broker and both workers on it */
#define T_WIN_BEFORE_MS 1000    /* a plain client's window: from before the fault */
#define T_WIN_AFTER_MS 4000     /* ... to this long after it is over */
#define T_RETRY_MS 250          /* a refused (re)connection is tried again after */
#define T_CONNECT_MS 2000

/* the instances' config: no rate limit for the senders, room for the whole
 * run in each stream (the test asserts against the whole stream) */
#define CHAT_CONF "rate-limit 0\nhistory-size 20000\n"

enum role { ROLE_TYPED, ROLE_PLAIN, ROLE_SENDER };
enum { INST_A = 0, INST_B = 1 };
enum phase { PH_WAIT = 0, PH_SEND, PH_SETTLE, PH_STOP };
/* a send's fate */
enum { SEQ_UNSENT = 0, SEQ_PENDING, SEQ_ACKED, SEQ_REFUSED, SEQ_UNKNOWN };

static const char *const room_name[ROOMS] = { "", "lobby" };
static const char *const room_tag[ROOMS] = { "D", "L" };
static const char *const stream_key[ROOMS] = { "chat:history", "chat:{lobby}:history" };

struct mid {
    uint64_t ms, seq;
};

/* one message as a client got it: its id (typed; 0-0 when none) and its
 * text's key (sender * SEQ_MAX + seq; -1 when the text is not ours) */
struct got {
    struct mid id;
    int key;
    long long at; /* CLOCK_REALTIME ms when it came */
};

struct client {
    enum role role;
    int room;
    int inst; /* instance it is (or will be) connected to */
    int first_inst, slot; /* where it first joined (worker slot as logged) */
    int moved_to;         /* the instance it went to after its first drop, -1 none */
    char name[24];
    struct wsc ws;
    int connected; /* the WebSocket is open */
    int welcomed;  /* on this connection */
    int live;      /* typed: the history event came; plain: the welcome */
    long long retry_at;
    int connects, drops, refused_joins, last_close;
    char last_error[160];
    /* receivers */
    struct got *got;
    int ngot, got_over;
    struct mid last;
    int has_last;
    int resumes, truncated, hist_unavail, no_id, other_errors, replayed;
    /* senders */
    int sender;  /* index in 0..SENDERS */
    int seq_next;
    long long next_send;
    unsigned char state[SEQ_MAX];
    struct mid ack[SEQ_MAX];
    long long sent_at[SEQ_MAX]; /* CLOCK_REALTIME ms */
    int acks, refusals, dup_answers, stray_answers, unknown;
    char first_refusal[160];
    char first_stray[224]; /* the first answer to no pending send */
};

struct fault {
    char what[64];
    long long start, end; /* CLOCK_REALTIME ms (the clock of Redis's ids) */
};

enum { F_SUBKILL = 0, F_BROKER, F_WORKER, F_REDIS, FAULTS };

struct stream_entry {
    struct mid id;
    int key;
    char user[40];
};

struct stream {
    struct stream_entry *e;
    int n;
    int *index; /* key -> first entry, -1 none (SENDERS * SEQ_MAX) */
    int dup_texts, foreign;
};

#define CLIENTS_MAX 24

static struct chaos {
    struct h_redis redis;
    struct h_chat chat[2];
    struct client cl[CLIENTS_MAX];
    int ncl;
    struct client *sender_of[SENDERS];
    atomic_int phase;
    long long settle_deadline; /* set before PH_SETTLE */
    long long last_rx;         /* monotonic ms of the last message anybody got */
    int settled;               /* the settle condition held (else the deadline) */
    struct fault fault[FAULTS];
    struct stream st[ROOMS];
} X;

static long long epoch_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "1733448000000-0" */
static int mid_parse(const char *s, struct mid *out)
{
    char *end;
    unsigned long long ms, seq;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    ms = strtoull(s, &end, 10);
    if (errno != 0 || *end != '-' || end[1] < '0' || end[1] > '9')
        return -1;
    seq = strtoull(end + 1, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    out->ms = ms;
    out->seq = seq;
    return 0;
}

static int mid_cmp(struct mid a, struct mid b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    return a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0;
}

static const char *mid_str(struct mid m, char *buf, size_t cap)
{
    snprintf(buf, cap, "%" PRIu64 "-%" PRIu64, m.ms, m.seq);
    return buf;
}

/* Text "m<g>-<seq>" -> key g * SEQ_MAX + seq, else -1. */
static int text_key(const char *t)
{
    char *end;
    long g, seq;

    if (t == NULL || t[0] != 'm' || t[1] < '0' || t[1] > '9')
        return -1;
    g = strtol(t + 1, &end, 10);
    if (*end != '-' || end[1] < '0' || end[1] > '9' || g >= SENDERS)
        return -1;
    seq = strtol(end + 1, &end, 10);
    if (*end != '\0' || seq < 0 || seq >= SEQ_MAX)
        return -1;
    return (int)(g * SEQ_MAX + seq);
}

static const char *key_str(int key, char *buf, size_t cap)
{
    if (key < 0)
        snprintf(buf, cap, "(not ours)");
    else
        snprintf(buf, cap, "m%d-%d", key / SEQ_MAX, key % SEQ_MAX);
    return buf;
}

/* The fault whose window holds ms, for diagnostics: "after (b) +1234 ms". */
static const char *when_str(long long ms, char *buf, size_t cap)
{
    int i, best = -1;

    for (i = 0; i < FAULTS; i++)
        if (X.fault[i].start > 0 && X.fault[i].start - T_WIN_BEFORE_MS <= ms)
            best = i;
    if (best < 0)
        snprintf(buf, cap, "before the faults");
    else
        snprintf(buf, cap, "%+lld ms from the start of %s", ms - X.fault[best].start,
                 X.fault[best].what);
    return buf;
}

/* ---- the clients ------------------------------------------------------------ */

static int port_of(int inst)
{
    return X.chat[inst].port;
}

static void path_of(const struct client *c, const char *query, char *out, size_t cap)
{
    if (c->room == 0)
        snprintf(out, cap, "/chat/%s%s", c->name, query);
    else
        snprintf(out, cap, "/chat/%s/%s%s", room_name[c->room], c->name, query);
}

/* Open c's connection (path with query) on c->inst. Returns 0 or -1. */
static int cl_open(struct client *c, const char *query)
{
    char path[160];
    int st;

    path_of(c, query, path, sizeof(path));
    st = wsc_connect(&c->ws, port_of(c->inst), path, c->role == ROLE_PLAIN ? NULL : PROTO_HEADER,
                     T_CONNECT_MS);
    c->connects++;
    if (st != 101) {
        wsc_free(&c->ws);
        snprintf(c->last_error, sizeof(c->last_error), "%.100s on %c: HTTP %d", path,
                 'A' + c->inst, st);
        return -1;
    }
    c->connected = 1;
    c->welcomed = c->live = 0;
    return 0;
}

/* A reconnection, in the traffic thread: a typed receiver resumes after the
 * last id it saw, a sender asks for no replay, a plain client for nothing. */
static void cl_reconnect(struct client *c, long long now)
{
    char query[64] = "", idbuf[48];

    if (c->role == ROLE_TYPED)
        snprintf(query, sizeof(query), "?after=%s",
                 c->has_last ? mid_str(c->last, idbuf, sizeof(idbuf)) : "0-0");
    else if (c->role == ROLE_SENDER)
        snprintf(query, sizeof(query), "?history=0");
    if (cl_open(c, query) == -1)
        c->retry_at = now + T_RETRY_MS;
    else if (c->role == ROLE_TYPED)
        c->resumes++;
}

/* The connection ended. After a live connection a client goes to the other
 * instance; a refused one (name still taken, Redis down) tries the same again. */
static void cl_dropped(struct client *c, long long now)
{
    int i;

    c->last_close = c->ws.close_code;
    wsc_free(&c->ws);
    c->connected = 0;
    if (c->welcomed) {
        c->drops++;
        c->inst = 1 - c->inst;
        if (c->moved_to < 0)
            c->moved_to = c->inst;
        c->retry_at = now + 50;
    } else {
        c->refused_joins++;
        c->retry_at = now + T_RETRY_MS;
    }
    c->welcomed = c->live = 0;
    if (c->role == ROLE_SENDER)
        for (i = 0; i < c->seq_next; i++)
            if (c->state[i] == SEQ_PENDING) {
                c->state[i] = SEQ_UNKNOWN;
                c->unknown++;
            }
}

static void cl_record(struct client *c, struct mid id, int key)
{
    if (c->ngot == GOT_MAX) {
        c->got_over++;
        return;
    }
    c->got[c->ngot].id = id;
    c->got[c->ngot].key = key;
    c->got[c->ngot].at = epoch_ms();
    c->ngot++;
}

/* A sender's ack or refusal of send `id`. */
static void cl_answer(struct client *c, const json_t *ev, int ok, const char *text)
{
    const json_t *id = json_object_get(ev, "id");
    struct mid m = { 0, 0 };
    json_int_t seq = json_is_integer(id) ? json_integer_value(id) : -1;

    if (seq < 0 || seq >= c->seq_next) {
        if (c->stray_answers++ == 0)
            snprintf(c->first_stray, sizeof(c->first_stray), "%.200s", text);
        return;
    }
    if (c->state[seq] != SEQ_PENDING) {
        if (c->dup_answers++ == 0)
            snprintf(c->first_stray, sizeof(c->first_stray), "%.200s", text);
        return;
    }
    if (ok) {
        if (mid_parse(json_string_value(json_object_get(ev, "msg_id")), &m) == -1) {
            if (c->stray_answers++ == 0)
                snprintf(c->first_stray, sizeof(c->first_stray), "%.200s", text);
            return;
        }
        c->state[seq] = SEQ_ACKED;
        c->ack[seq] = m;
        c->acks++;
    } else {
        c->state[seq] = SEQ_REFUSED;
        if (c->refusals++ == 0)
            snprintf(c->first_refusal, sizeof(c->first_refusal), "m%d-%d at %lld (sent %lld): %.80s",
                     c->sender, (int)seq, epoch_ms(), c->sent_at[seq],
                     json_string_value(json_object_get(ev, "reason")));
    }
}

static void cl_event(struct client *c, const char *text)
{
    json_t *ev = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *req, *why;
    struct mid m;

    if (type == NULL) {
        snprintf(c->last_error, sizeof(c->last_error), "not an event: %.100s", text);
        c->other_errors++;
    } else if (strcmp(type, "welcome") == 0) {
        c->welcomed = 1;
    } else if (strcmp(type, "history") == 0) {
        c->live = 1;
        c->replayed += (int)json_integer_value(json_object_get(ev, "count"));
        if (json_is_true(json_object_get(ev, "truncated")))
            c->truncated++;
    } else if (strcmp(type, "message") == 0) {
        X.last_rx = h_now_ms();
        if (mid_parse(json_string_value(json_object_get(ev, "msg_id")), &m) == -1) {
            m.ms = m.seq = 0;
            c->no_id++;
        }
        if (c->role == ROLE_TYPED) {
            cl_record(c, m, text_key(json_string_value(json_object_get(ev, "text"))));
            if (m.ms != 0) {
                c->last = m;
                c->has_last = 1;
            }
        }
    } else if (strcmp(type, "ack") == 0 && c->role == ROLE_SENDER) {
        cl_answer(c, ev, 1, text);
    } else if (strcmp(type, "error") == 0) {
        req = json_string_value(json_object_get(ev, "request"));
        why = json_string_value(json_object_get(ev, "reason"));
        if (c->role == ROLE_SENDER && req != NULL && strcmp(req, "send") == 0) {
            cl_answer(c, ev, 0, text);
        } else if (why != NULL && strcmp(why, "history unavailable") == 0) {
            c->hist_unavail++;
        } else if (c->welcomed) {
            c->other_errors++;
            snprintf(c->last_error, sizeof(c->last_error), "%.150s", text);
        } else { /* a join refused (name not yet free, Redis down): tried again */
            snprintf(c->last_error, sizeof(c->last_error), "%.150s", text);
        }
    }
    json_decref(ev);
}

/* A plain client's line: "Welcome NAME!", "user: m<g>-<seq>", notices. */
static void cl_line(struct client *c, const char *text)
{
    const char *sep = strstr(text, ": ");
    struct mid none = { 0, 0 };
    int key;

    if (strncmp(text, "Welcome ", 8) == 0) {
        c->welcomed = c->live = 1;
        return;
    }
    if (sep == NULL || (key = text_key(sep + 2)) < 0)
        return; /* a notice */
    X.last_rx = h_now_ms();
    cl_record(c, none, key);
}

/* Everything c has to read now. */
static void cl_read(struct client *c, long long now)
{
    char text[EV_MAX];
    int n;

    while (c->connected) {
        n = wsc_recv_text(&c->ws, text, sizeof(text), 0);
        if (n < 0) {
            cl_dropped(c, now);
            return;
        }
        if (n == 0 && c->ws.timed_out)
            return;
        if (c->role == ROLE_PLAIN)
            cl_line(c, text);
        else
            cl_event(c, text);
    }
}

static void cl_send_due(struct client *c, long long now)
{
    char req[160];

    if (!c->live)
        return;
    if (c->next_send < now - 200) /* no burst after a pause */
        c->next_send = now;
    while (c->next_send <= now && c->seq_next < SEQ_MAX) {
        int seq = c->seq_next;

        snprintf(req, sizeof(req), "{\"type\":\"send\",\"text\":\"m%d-%d\",\"id\":%d}", c->sender,
                 seq, seq);
        c->next_send += 1000 / SEND_RATE;
        if (wsc_send_text(&c->ws, req) == -1) {
            cl_dropped(c, now);
            return;
        }
        c->state[seq] = SEQ_PENDING;
        c->sent_at[seq] = epoch_ms();
        c->seq_next++;
    }
}

/* The end: every typed client live again, every send answered, and
 * nothing received for T_QUIET_END_MS. */
static int settled(long long now)
{
    int i, j;

    if (now - X.last_rx < T_QUIET_END_MS)
        return 0;
    for (i = 0; i < X.ncl; i++) {
        const struct client *c = &X.cl[i];

        if (!c->live)
            return 0;
        for (j = 0; c->role == ROLE_SENDER && j < c->seq_next; j++)
            if (c->state[j] == SEQ_PENDING)
                return 0;
    }
    return 1;
}

static void *traffic(void *arg)
{
    struct pollfd pfd[CLIENTS_MAX];
    (void)arg;

    for (;;) {
        long long now = h_now_ms();
        int ph = atomic_load(&X.phase), i, n = 0;

        if (ph == PH_STOP)
            break;
        if (ph == PH_SETTLE && (settled(now) || now >= X.settle_deadline)) {
            X.settled = settled(now);
            break;
        }
        for (i = 0; i < X.ncl; i++) {
            struct client *c = &X.cl[i];

            if (!c->connected && now >= c->retry_at)
                cl_reconnect(c, now);
            if (c->connected)
                cl_read(c, now);
            if (c->connected && c->role == ROLE_SENDER && ph == PH_SEND)
                cl_send_due(c, now);
            if (c->connected)
                pfd[n++] = (struct pollfd){ c->ws.fd, POLLIN, 0 };
        }
        poll(pfd, (nfds_t)n, 5);
    }
    return NULL;
}

/* ---- setup ------------------------------------------------------------------ */

/* A client joined for good on inst, on worker `slot` there (-1: any): its
 * name is base plus a letter, a new one for each try (a closed try's name may
 * still be held for a moment). */
static struct client *place(enum role role, int room, int inst, int slot, const char *base)
{
    struct client *c = &X.cl[X.ncl];
    int try;

    ck_assert_int_lt(X.ncl, CLIENTS_MAX);
    memset(c, 0, sizeof(*c));
    c->role = role;
    c->room = room;
    c->inst = c->first_inst = inst;
    c->moved_to = -1;
    c->ws.fd = -1;
    if (role == ROLE_TYPED) {
        c->got = calloc(GOT_MAX, sizeof(*c->got));
        ck_assert_ptr_nonnull(c->got);
    } else if (role == ROLE_PLAIN) {
        c->got = calloc(GOT_MAX, sizeof(*c->got));
        ck_assert_ptr_nonnull(c->got);
    }
    for (try = 0; try < PLACE_TRIES; try++) {
        snprintf(c->name, sizeof(c->name), "%s%c", base, 'a' + try);
        ck_assert_msg(cl_open(c, "") == 0, "%s", c->last_error);
        c->slot = fx_user_slot(X.chat[inst].log, c->name);
        ck_assert_msg(c->slot == 0 || c->slot == 1, "%s: no join line in %s", c->name,
                      X.chat[inst].log);
        if (slot < 0 || c->slot == slot)
            break;
        wsc_free(&c->ws);
        c->connected = 0;
    }
    ck_assert_msg(try < PLACE_TRIES, "%s: never on worker %d of %c", base, slot, 'A' + inst);
    X.ncl++;
    return c;
}

static void setup_clients(void)
{
    char base[16];
    int room, k;

    for (room = 0; room < ROOMS; room++) {
        const char *tag = room_tag[room];
        /* typed receivers: two on the worker to be killed, one on the other
         * worker of A, two on B */
        static const int t_inst[] = { INST_A, INST_A, INST_A, INST_B, INST_B };
        static const int t_slot[] = { VICTIM_SLOT, VICTIM_SLOT, KEEP_SLOT, -1, -1 };

        for (k = 0; k < 5; k++) {
            snprintf(base, sizeof(base), "t%s%d", tag, k);
            place(ROLE_TYPED, room, t_inst[k], t_slot[k], base);
        }
        /* plain receivers stay connected: none on the worker to be killed */
        snprintf(base, sizeof(base), "p%s0", tag);
        place(ROLE_PLAIN, room, INST_A, KEEP_SLOT, base);
        snprintf(base, sizeof(base), "p%s1", tag);
        place(ROLE_PLAIN, room, INST_B, -1, base);
        /* senders: one per instance; the lobby's on A is on the victim worker */
        for (k = 0; k < SENDERS_PER_ROOM; k++) {
            struct client *s;

            snprintf(base, sizeof(base), "s%s%d", tag, k);
            s = place(ROLE_SENDER, room, k == 0 ? INST_A : INST_B,
                      k == 0 ? (room == 1 ? VICTIM_SLOT : KEEP_SLOT) : -1, base);
            s->sender = room * SENDERS_PER_ROOM + k;
            X.sender_of[s->sender] = s;
        }
    }
}

/* ---- faults (the main thread) --------------------------------------------------- */

static void fault_begin(int f, const char *what)
{
    snprintf(X.fault[f].what, sizeof(X.fault[f].what), "%s", what);
    X.fault[f].start = epoch_ms();
    fprintf(stderr, "chaos: %s at %lld\n", what, X.fault[f].start);
}

static void fault_subscriber_kill(void)
{
    char out[256] = "";

    fault_begin(F_SUBKILL, "(a) CLIENT KILL TYPE pubsub");
    ck_assert_int_eq(h_redis_cli(&X.redis, out, sizeof(out), "CLIENT KILL TYPE pubsub"), 0);
    ck_assert_msg(atoi(out) >= 2, "CLIENT KILL TYPE pubsub killed \"%s\" (want both brokers')",
                  out);
    X.fault[F_SUBKILL].end = epoch_ms();
}

static void fault_broker_kill(struct h_chat *c)
{
    int avail = h_count_in_file(c->log, "chat service available");
    pid_t old = h_child_titled(c->pid, "redis-chat: broker");

    fault_begin(F_BROKER, "(b) SIGKILL of instance B's broker");
    ck_assert_int_ne(old, 0);
    ck_assert_int_eq(kill(old, SIGKILL), 0);
    ck_assert_msg(h_wait_new_child(c->pid, "redis-chat: broker", old, 3000) != 0, "no new broker");
    ASSERT_LOG(h_wait_count(c->log, "chat service available", avail + 2, T_BROKER_BACK_MS), c->log);
    X.fault[F_BROKER].end = epoch_ms();
}

static void fault_worker_kill(struct h_chat *c)
{
    char title[64];
    pid_t old;

    snprintf(title, sizeof(title), "redis-chat: worker %d", VICTIM_SLOT);
    old = h_child_titled(c->pid, title);
    fault_begin(F_WORKER, "(c) SIGKILL of instance A's worker");
    ck_assert_int_ne(old, 0);
    ck_assert_int_eq(kill(old, SIGKILL), 0);
    ck_assert_msg(h_wait_new_child(c->pid, title, old, 3000) != 0, "no new %s", title);
    X.fault[F_WORKER].end = epoch_ms();
}

static void fault_redis_restart(void)
{
    int up[2], i;

    for (i = 0; i < 2; i++)
        up[i] = h_count_in_file(X.chat[i].log, "redis link up");
    fault_begin(F_REDIS, "(d) Redis restarted (AOF)");
    ck_assert_int_eq(h_redis_restart_keep(&X.redis), 0);
    for (i = 0; i < 2; i++)
        ASSERT_LOG(h_wait_count(X.chat[i].log, "redis link up", up[i] + 1, T_REDIS_BACK_MS),
                   X.chat[i].log);
    X.fault[F_REDIS].end = epoch_ms();
}

/* Sleep ms while the traffic runs. */
static void run_for(int ms)
{
    h_sleep_ms(ms);
}

/* ---- the streams ---------------------------------------------------------------- */

static void stream_read(int room)
{
    struct stream *s = &X.st[room];
    char *out = malloc(STREAM_OUT_MAX), *line, *save = NULL;
    struct stream_entry *cur = NULL;
    const char *field = NULL;
    int cap = 1024, i;

    ck_assert_ptr_nonnull(out);
    s->e = calloc((size_t)cap, sizeof(*s->e));
    s->index = malloc(sizeof(int) * SENDERS * SEQ_MAX);
    ck_assert(s->e != NULL && s->index != NULL);
    for (i = 0; i < SENDERS * SEQ_MAX; i++)
        s->index[i] = -1;
    ck_assert_int_eq(h_redis_cli(&X.redis, out, STREAM_OUT_MAX, "XRANGE %s - +", stream_key[room]),
                     0);
    ck_assert_msg(strlen(out) < STREAM_OUT_MAX - 1, "XRANGE %s: output truncated",
                  stream_key[room]);
    /* raw output: an id line, then field and value lines; only ids start
     * with a digit (user names and texts here never do) */
    for (line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        struct mid m;

        if (line[0] >= '0' && line[0] <= '9' && mid_parse(line, &m) == 0) {
            if (s->n == cap) {
                cap *= 2;
                s->e = realloc(s->e, sizeof(*s->e) * (size_t)cap);
                ck_assert_ptr_nonnull(s->e);
            }
            cur = &s->e[s->n++];
            memset(cur, 0, sizeof(*cur));
            cur->id = m;
            cur->key = -1;
            field = NULL;
        } else if (cur == NULL) {
            ck_abort_msg("XRANGE %s: unexpected \"%s\"", stream_key[room], line);
        } else if (field == NULL) {
            field = line;
        } else {
            if (strcmp(field, "t") == 0)
                cur->key = text_key(line);
            else if (strcmp(field, "u") == 0)
                snprintf(cur->user, sizeof(cur->user), "%s", line);
            field = NULL;
        }
    }
    free(out);
    for (i = 0; i < s->n; i++) {
        const struct stream_entry *e = &s->e[i];
        const struct client *snd = e->key >= 0 ? X.sender_of[e->key / SEQ_MAX] : NULL;

        if (snd == NULL || snd->room != room || strcmp(snd->name, e->user) != 0) {
            s->foreign++;
            continue;
        }
        if (s->index[e->key] >= 0)
            s->dup_texts++;
        else
            s->index[e->key] = i;
    }
}

/* The entry with id m, or -1. */
static int stream_find(const struct stream *s, struct mid m)
{
    int lo = 0, hi = s->n - 1;

    while (lo <= hi) {
        int at = (lo + hi) / 2, c = mid_cmp(s->e[at].id, m);

        if (c == 0)
            return at;
        if (c < 0)
            lo = at + 1;
        else
            hi = at - 1;
    }
    return -1;
}

/* ---- checks --------------------------------------------------------------------- */

/* a failed check: said, counted, asserted at the end (so that all are shown) */
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "chaos: FAIL: " __VA_ARGS__);                                             \
        failures++;                                                                                \
    } while (0)

/* Compare seq[0..n) (stream indexes a client got, -1 for one not in the
 * stream) with lo..hi: 1 when equal, else 0 and the differences on stderr. */
static int seq_check(const char *who, const char *what, int strict, const struct stream *s,
                     const int *seq, int n, int lo, int hi)
{
    int want = hi - lo + 1, i, missing = 0, dups = 0, extra = 0, disorder = 0, first_bad = -1;
    int *seen = calloc((size_t)(s->n > 0 ? s->n : 1), sizeof(int)), prev = -1, shown = 0;
    char b1[48], b2[48], b3[96];

    ck_assert_ptr_nonnull(seen);
    for (i = 0; i < n; i++) {
        int expect = lo + i;

        if (first_bad < 0 && (i >= want || seq[i] != expect))
            first_bad = i;
        if (seq[i] < 0) {
            extra++;
            continue;
        }
        if (seen[seq[i]]++ > 0)
            dups++;
        else if (seq[i] < prev)
            disorder++;
        prev = seq[i] > prev ? seq[i] : prev;
    }
    if (first_bad < 0 && n < want)
        first_bad = n;
    for (i = lo; i <= hi; i++)
        missing += seen[i] == 0;
    if (first_bad < 0) {
        free(seen);
        return 1;
    }
    fprintf(stderr,
            "chaos: %s%s, %s: got %d, want %d (stream entries %d..%d): %d missing, %d twice, "
            "%d out of order, %d not in the stream; first difference at #%d: want %s, got %s\n",
            strict ? "FAIL: " : "(reported only) ", who, what, n, want, lo, hi, missing, dups, disorder, extra, first_bad,
            first_bad < want ? mid_str(s->e[lo + first_bad].id, b1, sizeof(b1)) : "(end)",
            first_bad < n ? (seq[first_bad] >= 0 ? mid_str(s->e[seq[first_bad]].id, b2, sizeof(b2))
                                                 : "(not in the stream)")
                          : "(end)");
    for (i = lo; i <= hi && shown < 12; i++)
        if (seen[i] != 1) {
            fprintf(stderr, "chaos:   %s entry #%d %s (%s) %s: received %d times\n", who, i,
                    mid_str(s->e[i].id, b1, sizeof(b1)), key_str(s->e[i].key, b2, sizeof(b2)),
                    when_str((long long)s->e[i].id.ms, b3, sizeof(b3)), seen[i]);
            shown++;
        }
    free(seen);
    return 0;
}

/* A typed receiver: what it got is the whole stream of its room. */
static int check_typed(const struct client *c)
{
    const struct stream *s = &X.st[c->room];
    int *seq = malloc(sizeof(int) * (size_t)(c->ngot > 0 ? c->ngot : 1)), i, ok, text_bad = 0;
    char b1[48], b2[48];

    ck_assert_ptr_nonnull(seq);
    for (i = 0; i < c->ngot; i++) {
        seq[i] = stream_find(s, c->got[i].id);
        if (seq[i] >= 0 && s->e[seq[i]].key != c->got[i].key && text_bad++ == 0)
            fprintf(stderr, "chaos: FAIL: %s: id %s came with text %s, the stream has %s\n", c->name,
                    mid_str(c->got[i].id, b1, sizeof(b1)), key_str(c->got[i].key, b2, sizeof(b2)),
                    key_str(s->e[seq[i]].key, b1, sizeof(b1)));
    }
    ok = seq_check(c->name, "typed, whole stream", 1, s, seq, c->ngot, 0, s->n - 1);
    free(seq);
    if (c->no_id > 0 || c->got_over > 0)
        fprintf(stderr, "chaos: FAIL: %s: %d messages without a msg_id, %d past GOT_MAX\n",
                c->name, c->no_id, c->got_over);
    return ok && text_bad == 0 && c->got_over == 0 && c->no_id == 0;
}

/* Stream entries [lo, hi] with ids in [from, to] (ms); 0 when none. */
static int window(const struct stream *s, long long from, long long to, int *lo, int *hi)
{
    int i;

    *lo = -1;
    *hi = -2;
    for (i = 0; i < s->n; i++)
        if ((long long)s->e[i].id.ms >= from && (long long)s->e[i].id.ms <= to) {
            if (*lo < 0)
                *lo = i;
            *hi = i;
        }
    return *lo >= 0;
}

/* A plain receiver over fault f's window: every stream message of the window
 * once, in order. Returns 1, or 0 (reason on stderr). */
static int check_plain_window(const struct client *c, int f, int strict, int *count)
{
    const struct stream *s = &X.st[c->room];
    int *seq = malloc(sizeof(int) * (size_t)(c->ngot > 0 ? c->ngot : 1)), n = 0, i, lo, hi, ok;
    char what[96];

    ck_assert_ptr_nonnull(seq);
    *count = 0;
    if (!window(s, X.fault[f].start - T_WIN_BEFORE_MS, X.fault[f].end + T_WIN_AFTER_MS, &lo,
                &hi)) {
        free(seq);
        return 1; /* the window's size is asserted by the caller */
    }
    *count = hi - lo + 1;
    for (i = 0; i < c->ngot; i++) {
        int at = c->got[i].key >= 0 ? s->index[c->got[i].key] : -1;

        if (at >= lo && at <= hi)
            seq[n++] = at;
    }
    snprintf(what, sizeof(what), "plain, window of %s", X.fault[f].what);
    ok = seq_check(c->name, what, strict, s, seq, n, lo, hi);
    free(seq);
    return ok;
}

/* Plain: messages lost or doubled over the whole run (reported only). */
static void plain_totals(const struct client *c, int *lost, int *twice, int *foreign)
{
    const struct stream *s = &X.st[c->room];
    int *seen = calloc((size_t)(s->n > 0 ? s->n : 1), sizeof(int)), i;

    ck_assert_ptr_nonnull(seen);
    *lost = *twice = *foreign = 0;
    for (i = 0; i < c->ngot; i++) {
        int at = c->got[i].key >= 0 ? s->index[c->got[i].key] : -1;

        if (at < 0)
            (*foreign)++;
        else if (seen[at]++ > 0)
            (*twice)++;
    }
    for (i = 0; i < s->n; i++)
        *lost += seen[i] == 0;
    free(seen);
}

static const char *role_str(enum role r)
{
    return r == ROLE_TYPED ? "typed" : r == ROLE_PLAIN ? "plain" : "sender";
}

/* CHAOS_KEEP=DIR: the servers' logs are copied there once the traffic is
 * over (the test's temp dirs are removed when it ends). */
static void keep_logs(void)
{
    const char *keep = getenv("CHAOS_KEEP");
    char dst[PATH_MAX], *argv[] = { (char *)"cp", NULL, dst, NULL };
    int i;

    if (keep == NULL || *keep == '\0')
        return;
    for (i = 0; i < 3; i++) {
        const char *src = i < 2 ? X.chat[i].log : NULL;
        char redis_log[PATH_MAX];

        if (src == NULL) {
            snprintf(redis_log, sizeof(redis_log), "%s/redis.log", X.redis.dir);
            src = redis_log;
        }
        snprintf(dst, sizeof(dst), "%s/%s", keep, i == 0 ? "a.log" : i == 1 ? "b.log" : "redis.log");
        argv[1] = (char *)src;
        if (h_run(NULL, 0, 10000, argv) != 0)
            fprintf(stderr, "chaos: could not copy %s to %s\n", src, dst);
    }
    fprintf(stderr, "chaos: logs kept in %s (a.log, b.log: instances A and B)\n", keep);
}

/* ---- the test ---------------------------------------------------------------------- */

START_TEST(test_chaos)
{
    pthread_t th;
    long long t0 = h_now_ms(), t_live;
    int i = 0, j, room, failures = 0;

    memset(&X, 0, sizeof(X));
    ck_assert_int_eq(h_redis_start_aof(&X.redis, 1, PASSWORD), 0);
    fx_chat_ready(&X.chat[INST_A], &X.redis, 2, CHAT_CONF);
    fx_chat_ready(&X.chat[INST_B], &X.redis, 2, CHAT_CONF);
    setup_clients();

    X.last_rx = h_now_ms();
    atomic_store(&X.phase, PH_WAIT);
    ck_assert_int_eq(pthread_create(&th, NULL, traffic, NULL), 0);
    /* every client joined (typed: its history event) before the first send,
     * so each typed receiver's expected sequence is its room's whole stream */
    for (t_live = h_now_ms(); h_now_ms() - t_live < T_LIVE_MS; h_sleep_ms(20)) {
        for (i = 0; i < X.ncl && X.cl[i].live; i++)
            ;
        if (i == X.ncl)
            break;
    }
    if (i < X.ncl) {
        atomic_store(&X.phase, PH_STOP);
        pthread_join(th, NULL);
        ck_abort_msg("%s never live: %s", X.cl[i].name, X.cl[i].last_error);
    }
    fprintf(stderr, "chaos: %d clients live after %lld ms; traffic starts\n", X.ncl,
            h_now_ms() - t0);

    atomic_store(&X.phase, PH_SEND);
    run_for(T_WARMUP_MS);
    fault_subscriber_kill();
    run_for(T_BETWEEN_MS);
    fault_broker_kill(&X.chat[INST_B]);
    run_for(T_BETWEEN_MS);
    fault_worker_kill(&X.chat[INST_A]);
    run_for(T_BETWEEN_MS);
    fault_redis_restart();
    run_for(T_TAIL_MS);

    X.settle_deadline = h_now_ms() + T_SETTLE_MAX_MS;
    atomic_store(&X.phase, PH_SETTLE);
    pthread_join(th, NULL);
    fprintf(stderr, "chaos: traffic %s after %lld ms in all\n",
            X.settled ? "settled" : "did NOT settle (deadline)", h_now_ms() - t0);
    keep_logs();

    /* ---- what happened ---- */
    for (room = 0; room < ROOMS; room++) {
        stream_read(room);
        fprintf(stderr, "chaos: room \"%s\" (%s): %d messages in the stream, %d texts twice, "
                        "%d not from this test's senders\n",
                room_name[room], stream_key[room], X.st[room].n, X.st[room].dup_texts,
                X.st[room].foreign);
    }
    for (i = 0; i < X.ncl; i++) {
        const struct client *c = &X.cl[i];

        fprintf(stderr,
                "chaos:   %-6s %-7s room %-5s first on %c/worker %d, now on %c: connects %d, "
                "drops %d, refused joins %d",
                role_str(c->role), c->name, room_tag[c->room], 'A' + c->first_inst,
                c->slot, 'A' + c->inst, c->connects, c->drops, c->refused_joins);
        if (c->role == ROLE_SENDER)
            fprintf(stderr, "; sent %d, acked %d, refused %d, unknown (connection lost) %d\n",
                    c->seq_next, c->acks, c->refusals, c->unknown);
        else
            fprintf(stderr, "; got %d messages (%d replayed in %d resumes, %d truncated)\n",
                    c->ngot, c->replayed, c->resumes, c->truncated);
        if (c->first_refusal[0] != '\0')
            fprintf(stderr, "chaos:     first refusal: %s\n", c->first_refusal);
        if (c->last_error[0] != '\0')
            fprintf(stderr, "chaos:     last error: %s\n", c->last_error);
    }

    /* ---- the streams and the acks ---- */
    for (room = 0; room < ROOMS; room++) {
        if (X.st[room].n < 300)
            FAIL("room \"%s\": only %d messages in the stream\n", room_name[room], X.st[room].n);
        if (X.st[room].foreign > 0)
            FAIL("room \"%s\": %d stream entries not sent here\n", room_name[room],
                 X.st[room].foreign);
        if (X.st[room].dup_texts > 0)
            fprintf(stderr, "chaos: WARNING room \"%s\": %d texts stored twice (a send retried?)\n",
                    room_name[room], X.st[room].dup_texts);
    }
    for (j = 0; j < SENDERS; j++) {
        const struct client *c = X.sender_of[j];
        const struct stream *s = &X.st[c->room];
        int missing = 0, wrong = 0, pending = 0, refused_stored = 0;
        char b1[48], b2[96];

        for (i = 0; i < c->seq_next; i++) {
            int at;

            if (c->state[i] == SEQ_PENDING && pending++ < 5)
                fprintf(stderr, "chaos: %s: m%d-%d never answered (sent %s)\n", c->name, j, i,
                        when_str(c->sent_at[i], b2, sizeof(b2)));
            if (c->state[i] == SEQ_REFUSED && s->index[j * SEQ_MAX + i] >= 0 &&
                refused_stored++ < 5)
                fprintf(stderr, "chaos: %s: m%d-%d refused, yet in the stream as %s (sent %s)\n",
                        c->name, j, i, mid_str(s->e[s->index[j * SEQ_MAX + i]].id, b1, sizeof(b1)),
                        when_str(c->sent_at[i], b2, sizeof(b2)));
            if (c->state[i] != SEQ_ACKED)
                continue;
            at = stream_find(s, c->ack[i]);
            if (at < 0 && missing++ < 5)
                fprintf(stderr, "chaos: %s: m%d-%d acked as %s (%s), not in the stream\n", c->name,
                        j, i, mid_str(c->ack[i], b1, sizeof(b1)),
                        when_str((long long)c->ack[i].ms, b2, sizeof(b2)));
            if (at >= 0 && s->e[at].key != j * SEQ_MAX + i && wrong++ < 5)
                fprintf(stderr, "chaos: %s: m%d-%d acked as %s, which holds %s\n", c->name, j, i,
                        mid_str(c->ack[i], b1, sizeof(b1)), key_str(s->e[at].key, b2, sizeof(b2)));
        }
        if (refused_stored > 0)
            fprintf(stderr, "chaos: WARNING %s: %d sends refused but stored (first refusal: %s)\n",
                    c->name, refused_stored, c->first_refusal);
        if (c->acks < 100)
            FAIL("%s: only %d sends acked\n", c->name, c->acks);
        if (missing > 0)
            FAIL("%s: %d acked msg_ids not in the stream\n", c->name, missing);
        if (wrong > 0)
            FAIL("%s: %d acked msg_ids hold another text\n", c->name, wrong);
        if (pending > 0)
            FAIL("%s: %d sends never answered on an open connection\n", c->name, pending);
        if (c->dup_answers > 0 || c->stray_answers > 0)
            FAIL("%s: %d sends answered twice, %d answers to no send (first: %s)\n", c->name,
                 c->dup_answers, c->stray_answers, c->first_stray);
    }

    /* ---- typed receivers: the whole stream ---- */
    for (i = 0; i < X.ncl; i++) {
        const struct client *c = &X.cl[i];

        if (c->role != ROLE_TYPED)
            continue;
        if (!check_typed(c))
            failures++;
        if (c->truncated > 0 || c->hist_unavail > 0 || c->other_errors > 0)
            FAIL("%s: %d truncated resumes, %d \"history unavailable\", %d other errors\n",
                 c->name, c->truncated, c->hist_unavail, c->other_errors);
    }
    for (i = 0; i < X.ncl; i++) { /* the killed worker's clients went to B (and resumed) */
        const struct client *c = &X.cl[i];

        if (c->role != ROLE_PLAIN && c->first_inst == INST_A && c->slot == VICTIM_SLOT &&
            c->moved_to != INST_B)
            FAIL("%s: on the killed worker, %s\n", c->name,
                 c->drops == 0 ? "never dropped" : "did not move to B");
    }

    /* ---- plain receivers: connected throughout, complete around (a) and (d) ---- */
    for (i = 0; i < X.ncl; i++) {
        const struct client *c = &X.cl[i];
        int lost, twice, foreign, na, nb, nd;

        if (c->role != ROLE_PLAIN)
            continue;
        plain_totals(c, &lost, &twice, &foreign);
        fprintf(stderr, "chaos: %s (plain): over the whole run %d of %d lost, %d twice, %d not in "
                        "the stream (reported only)\n",
                c->name, lost, X.st[c->room].n, twice, foreign);
        if (c->drops > 0 || c->refused_joins > 0) {
            FAIL("%s (plain): dropped %d times (close %d)\n", c->name, c->drops, c->last_close);
            continue;
        }
        if (!check_plain_window(c, F_SUBKILL, 1, &na))
            failures++;
        if (!check_plain_window(c, F_REDIS, 1, &nd))
            failures++;
        if (na < WINDOW_MIN || nd < WINDOW_MIN)
            FAIL("%s: windows too small to tell (a: %d, d: %d messages)\n", c->name, na, nd);
        /* a new broker has no position to gap-fill a plain client from */
        check_plain_window(c, F_BROKER, 0, &nb);
        fprintf(stderr, "chaos: %s (plain): windows checked: (a) %d messages, (d) %d; (b) %d\n",
                c->name, na, nd, nb);
        if (foreign > 0)
            FAIL("%s (plain): %d lines not in the stream\n", c->name, foreign);
    }
    ck_assert_msg(failures == 0, "%d failures (see above)", failures);
    ck_assert_msg(X.settled, "the traffic did not settle within %d ms", T_SETTLE_MAX_MS);

    for (i = 0; i < X.ncl; i++) {
        wsc_free(&X.cl[i].ws);
        free(X.cl[i].got);
    }
    for (room = 0; room < ROOMS; room++) {
        free(X.st[room].e);
        free(X.st[room].index);
    }
    h_chat_free(&X.chat[INST_A]);
    h_chat_free(&X.chat[INST_B]);
    h_redis_free(&X.redis);
}
END_TEST

/* ---- the harness: AOF restart -------------------------------------------------------- */

/* h_redis_restart_keep brings back what an AOF server held (a stream too);
 * h_redis_restart still starts empty; a server without persistence cannot
 * be restarted keeping its data. */
START_TEST(test_aof_restart_keeps_data)
{
    struct h_redis r, plain;
    char out[512];

    ck_assert_int_eq(h_redis_start_aof(&r, 1, PASSWORD), 0);
    ck_assert_int_eq(h_redis_cli(&r, out, sizeof(out), "SET kept yes"), 0);
    ck_assert_int_eq(h_redis_cli(&r, out, sizeof(out), "XADD s 1-1 u alice t hi"), 0);
    ck_assert_str_eq(out, "1-1\n");
    ck_assert_int_eq(h_redis_restart_keep(&r), 0);
    ck_assert_int_eq(h_redis_cli(&r, out, sizeof(out), "GET kept"), 0);
    ck_assert_str_eq(out, "yes\n");
    ck_assert_int_eq(h_redis_cli(&r, out, sizeof(out), "XRANGE s - +"), 0);
    ck_assert_str_eq(out, "1-1\nu\nalice\nt\nhi\n");
    ck_assert_int_eq(h_redis_cli(&r, out, sizeof(out), "CONFIG GET appendonly"), 0);
    ck_assert_str_eq(out, "appendonly\nyes\n");
    ck_assert_int_eq(h_redis_restart(&r), 0);
    ck_assert_int_eq(h_redis_cli(&r, out, sizeof(out), "DBSIZE"), 0);
    ck_assert_str_eq(out, "0\n");
    h_redis_free(&r);

    ck_assert_int_eq(h_redis_start(&plain, 1, PASSWORD), 0);
    ck_assert_int_eq(h_redis_cli(&plain, out, sizeof(out), "CONFIG GET appendonly"), 0);
    ck_assert_str_eq(out, "appendonly\nno\n");
    fprintf(stderr, "chaos: (the harness is expected to refuse the next restart)\n");
    ck_assert_int_eq(h_redis_restart_keep(&plain), -1);
    h_redis_free(&plain);
}
END_TEST

static Suite *chaos_suite(void)
{
    Suite *s = suite_create("chaos");
    TCase *hc = tcase_create("harness");
    TCase *tc = tcase_create("chaos");

    tcase_add_unchecked_fixture(hc, fx_tmp_enter, fx_tmp_leave);
    tcase_set_timeout(hc, 60);
    tcase_add_test(hc, test_aof_restart_keeps_data);
    suite_add_tcase(s, hc);

    /* its own Redis and instances, below the fixture's dir; ~50 s of traffic
     * and faults, bounded by T_SETTLE_MAX_MS at the end */
    tcase_add_unchecked_fixture(tc, fx_tmp_enter, fx_tmp_leave);
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, test_chaos);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(chaos_suite());
}
