/* fixtures.c -- the integration tests' shared fixtures (see fixtures.h):
 * instances, users and Redis keys, on top of harness.c and wsclient.c. */
#include "fixtures.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fixtures ------------------------------------------------------------- */

static char fx_tmp_base[256], fx_tmp_old[256];

void fx_tmp_enter(void)
{
    const char *old = getenv("TMPDIR");

    snprintf(fx_tmp_old, sizeof(fx_tmp_old), "%s", old != NULL ? old : "");
    ck_assert_int_eq(h_tmpdir(fx_tmp_base, sizeof(fx_tmp_base)), 0);
    ck_assert_int_eq(setenv("TMPDIR", fx_tmp_base, 1), 0);
}

void fx_tmp_leave(void)
{
    if (fx_tmp_old[0] != '\0')
        setenv("TMPDIR", fx_tmp_old, 1);
    else
        unsetenv("TMPDIR");
    h_rmrf(fx_tmp_base);
}

void fx_chat_ready(struct h_chat *c, const struct h_redis *r, int workers, const char *extra)
{
    ck_assert_int_eq(h_chat_start(c, r, workers, extra), 0);
    ck_assert_msg(h_wait_count(c->log, "chat service available", workers, 10000),
                  "%s: workers never saw Redis up", c->log);
}

void fx_conf_rewrite(const char *path, const char *from, const char *to)
{
    char buf[8192], out[8192];
    FILE *f = fopen(path, "r");
    size_t n;
    char *p;

    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strstr(buf, from);
    ck_assert_ptr_nonnull(p);
    snprintf(out, sizeof(out), "%.*s%s%s", (int)(p - buf), buf, to, p + strlen(from));
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(out, f);
    fclose(f);
}

/* ---- users ----------------------------------------------------------------- */

/* Upgrade on path as name and read its welcome. */
static void fx_join_path(struct wsc *c, int port, const char *path, const char *name,
                         const char *extra_headers, int line)
{
    char welcome[256];
    int st;

    snprintf(welcome, sizeof(welcome), "Welcome %s!", name);
    st = wsc_connect(c, port, path, extra_headers, T_MSG_MS);
    ck_assert_msg(st == 101, "line %d: %s: HTTP %d, not 101", line, name, st);
    ck_assert_msg(wsc_expect_text(c, welcome, T_MSG_MS), "line %d: %s: no welcome", line, name);
}

void fx_join(struct wsc *c, int port, const char *name, const char *extra_headers, int line)
{
    char path[256];

    snprintf(path, sizeof(path), "/chat/%s", name);
    fx_join_path(c, port, path, name, extra_headers, line);
}

/* 1 when text is the join notice of a user other than name. */
static int fx_other_join(const char *text, const char *name)
{
    static const char joined[] = ": has joined the chat!";
    size_t n = strlen(text), j = strlen(joined), u = strlen(name);

    return n > j && strcmp(text + n - j, joined) == 0 &&
           (n - j != u || strncmp(text, name, u) != 0);
}

/* Let other users' join notices pass for FX_JOIN_SETTLE_MS after a welcome. */
static void fx_settle(struct wsc *c, const char *name, int line)
{
    char text[256];
    long long end;
    int st;

    for (end = h_now_ms() + FX_JOIN_SETTLE_MS; h_now_ms() < end;) {
        st = wsc_recv_text(c, text, sizeof(text), (int)(end - h_now_ms()));
        if (st == 0)
            break;
        ck_assert_msg(st > 0 && fx_other_join(text, name),
                      "line %d: %s got \"%s\" right after its welcome", line, name, text);
        fprintf(stderr, "note: %s got a late \"%s\"\n", name, text);
    }
}

void fx_join_settled(struct wsc *c, int port, const char *name, int line)
{
    fx_join(c, port, name, NULL, line);
    fx_settle(c, name, line);
}

void fx_join_room(struct wsc *c, int port, const char *room, const char *name, int line)
{
    char path[256];

    if (room != NULL)
        snprintf(path, sizeof(path), "/chat/%s/%s", room, name);
    else
        snprintf(path, sizeof(path), "/chat/%s", name);
    fx_join_path(c, port, path, name, NULL, line);
    fx_settle(c, name, line);
}

void fx_drain(struct wsc *c)
{
    char got[512];
    int r;

    do
        r = wsc_recv_text(c, got, sizeof(got), T_QUIET_MS);
    while (r > 0 || (r == 0 && !c->timed_out));
    ck_assert_msg(r == 0, "connection closed while draining (close code %d)", c->close_code);
}

int fx_expect_unordered(struct wsc *c, const char *const *want, int n, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    char got[512], seen[FX_UNORDERED_MAX] = {0};
    int left = n, i, r;

    ck_assert_int_le(n, FX_UNORDERED_MAX);
    while (left > 0) {
        long long ms = end - h_now_ms();

        if (ms <= 0) {
            for (i = 0; i < n; i++)
                if (!seen[i])
                    fprintf(stderr, "expect_unordered: no \"%s\" within %d ms\n", want[i],
                            timeout_ms);
            return 0;
        }
        r = wsc_recv_text(c, got, sizeof(got), (int)ms);
        if (r == 0 && c->timed_out)
            continue;
        if (r < 0) {
            fprintf(stderr, "expect_unordered: connection closed (code %d), %d text(s) missing\n",
                    c->close_code, left);
            return 0;
        }
        for (i = 0; i < n; i++)
            if (!seen[i] && strcmp(got, want[i]) == 0)
                break;
        if (i == n) {
            fprintf(stderr, "expect_unordered: unexpected or repeated \"%s\"\n", got);
            return 0;
        }
        seen[i] = 1;
        left--;
    }
    return 1;
}

int fx_user_slot(const char *log, const char *user)
{
    char needle[160], line[1024];
    int slot = -1;
    FILE *f;

    snprintf(needle, sizeof(needle), "user=%s: joined", user);
    if (!h_wait_log(log, needle, T_MSG_MS))
        return -1;
    f = fopen(log, "r");
    if (f == NULL)
        return -1;
    while (slot < 0 && fgets(line, sizeof(line), f) != NULL) {
        const char *w = strstr(line, " worker[");
        if (strstr(line, needle) != NULL && w != NULL)
            slot = atoi(w + strlen(" worker["));
    }
    fclose(f);
    return slot;
}

const char *fx_slots_text(const int *slot, int n, char *buf, size_t cap)
{
    size_t off = (size_t)snprintf(buf, cap, "slots:");

    for (int i = 0; i < n && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, " %d", slot[i]);
    return buf;
}

int fx_join_spread(struct wsc *u, int *slot, int max, const struct h_chat *c, int min)
{
    int n, on[2] = {0, 0};
    char name[16], text[512];

    for (n = 0; n < max && (n < min || !on[0] || !on[1]); n++) {
        snprintf(name, sizeof(name), "u%d", n);
        fx_join(&u[n], c->port, name, NULL, __LINE__);
        slot[n] = fx_user_slot(c->log, name);
        ck_assert_msg(slot[n] == 0 || slot[n] == 1, "%s: no join line in %s", name, c->log);
        on[slot[n]] = 1;
    }
    ck_assert_msg(on[0] && on[1], "%d users, all on worker %d (%s)", n, slot[0],
                  fx_slots_text(slot, n, text, sizeof(text)));
    return n;
}

/* ---- processes ------------------------------------------------------------- */

pid_t fx_started_pid(const char *log, const char *who, int nth, int timeout_ms)
{
    char needle[64], line[1024];
    pid_t pid = 0;
    int seen = 0;
    FILE *f;

    snprintf(needle, sizeof(needle), "started %s, pid ", who);
    if (!h_wait_count(log, needle, nth, timeout_ms) || (f = fopen(log, "r")) == NULL)
        return 0;
    while (pid == 0 && fgets(line, sizeof(line), f) != NULL) {
        const char *p = strstr(line, needle);
        if (p != NULL && ++seen == nth)
            pid = (pid_t)atoi(p + strlen(needle));
    }
    fclose(f);
    return pid;
}

long fx_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL && sscanf(line, "VmRSS: %ld kB", &kb) != 1)
        ;
    fclose(f);
    return kb;
}

/* ---- Redis ------------------------------------------------------------------ */

/* SMEMBERS key as "\nm1\nm2\n", so that "\nname\n" finds a member. */
static void fx_set_get(const struct h_redis *r, const char *key, char *out, size_t cap)
{
    char raw[4096];

    ck_assert_int_eq(h_redis_cli(r, raw, sizeof(raw), "SMEMBERS %s", key), 0);
    snprintf(out, cap, "\n%s%s", raw, raw[0] != '\0' && raw[strlen(raw) - 1] != '\n' ? "\n" : "");
}

int fx_set_has(const struct h_redis *r, const char *key, const char *member)
{
    char set[4200], want[160];

    fx_set_get(r, key, set, sizeof(set));
    snprintf(want, sizeof(want), "\n%s\n", member);
    return strstr(set, want) != NULL;
}

int fx_set_wait(const struct h_redis *r, const char *key, const char *member, int present,
                int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;

    while (fx_set_has(r, key, member) != present) {
        if (h_now_ms() >= end)
            return 0;
        h_sleep_ms(50);
    }
    return 1;
}

void fx_users_quiesce(const struct h_redis *r, const char *key)
{
    char set[4200];
    long long end = h_now_ms() + T_MSG_MS;

    do {
        fx_set_get(r, key, set, sizeof(set));
        if (strspn(set, "\n") == strlen(set))
            return;
        h_sleep_ms(50);
    } while (h_now_ms() < end);
    ck_abort_msg("users left over from a previous test: %s", set);
}

long fx_redis_int(const struct h_redis *r, const char *cmd)
{
    char out[64];

    if (h_redis_cli(r, out, sizeof(out), "%s", cmd) != 0 || out[0] < '0' || out[0] > '9')
        return -1;
    return strtol(out, NULL, 10);
}

int fx_redis_int_wait(const struct h_redis *r, const char *cmd, long want, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;

    while (fx_redis_int(r, cmd) != want) {
        if (h_now_ms() >= end)
            return 0;
        h_sleep_ms(50);
    }
    return 1;
}

void fx_instance_id(const char *log, char *out, size_t cap)
{
    static const char tag[] = "; instance ";
    char line[1024];
    FILE *f;

    out[0] = '\0';
    ck_assert_msg(h_wait_log(log, tag, 5000), "%s: the broker never logged its instance", log);
    f = fopen(log, "r");
    ck_assert_ptr_nonnull(f);
    while (out[0] == '\0' && fgets(line, sizeof(line), f) != NULL) {
        const char *p = strstr(line, tag);
        if (p != NULL)
            snprintf(out, cap, "%.*s", (int)strspn(p + strlen(tag), "0123456789abcdef"),
                     p + strlen(tag));
    }
    fclose(f);
    ck_assert_msg(out[0] != '\0', "%s: no instance id", log);
}

void fx_spy_start(struct fx_spy *s, const struct h_redis *r, char *const words[])
{
    const char *tmp = getenv("TMPDIR");
    int fd, n = 0;

    snprintf(s->path, sizeof(s->path), "%s/spy.XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    fd = mkstemp(s->path);
    ck_assert_int_ne(fd, -1);
    close(fd);
    while (words[n] != NULL)
        n++;
    s->pid = h_redis_cli_bg(r, s->path, words);
    ck_assert_int_gt(s->pid, 0);
    /* one confirmation per channel or pattern ("subscribe" / "psubscribe") */
    ck_assert_msg(h_wait_count(s->path, "subscribe\n", n - 1, T_MSG_MS),
                  "spy: %s not confirmed", words[0]);
}

void fx_spy_stop(struct fx_spy *s, char *out, size_t cap)
{
    FILE *f;
    size_t n = 0;

    kill(s->pid, SIGTERM);
    ck_assert_int_eq(h_wait_exit(s->pid, T_MSG_MS, NULL), 1);
    f = fopen(s->path, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    unlink(s->path);
}
