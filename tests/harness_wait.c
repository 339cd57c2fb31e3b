/* harness_wait.c -- waiting for what the tests watch: lines in a log,
 * a server's child processes by title, a process gone. Every wait is
 * bounded. */
#include <string.h>

#include "harness.h"

#define H_KIDS_MAX 256

int h_wait_count(const char *path, const char *needle, int n, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;

    while (h_count_in_file(path, needle) < n) {
        if (h_now_ms() >= end)
            return 0;
        h_sleep_ms(20);
    }
    return 1;
}

pid_t h_child_titled(pid_t parent, const char *title)
{
    pid_t kids[H_KIDS_MAX];
    char cmd[256];
    int i, n = h_children(parent, kids, H_KIDS_MAX);

    for (i = 0; i < n && i < H_KIDS_MAX; i++)
        if (h_cmdline(kids[i], cmd, sizeof(cmd)) > 0 && strcmp(cmd, title) == 0)
            return kids[i];
    return 0;
}

pid_t h_wait_new_child(pid_t parent, const char *title, pid_t old, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;

    do {
        pid_t p = h_child_titled(parent, title);
        if (p != 0 && p != old)
            return p;
        h_sleep_ms(10);
    } while (h_now_ms() < end);
    return 0;
}

int h_wait_gone(pid_t pid, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;

    while (h_alive(pid)) {
        if (h_now_ms() >= end)
            return 0;
        h_sleep_ms(10);
    }
    return 1;
}
