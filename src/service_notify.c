/* service_notify.c -- sd_notify(3) messages of the master (see service_notify.h).
 * Compiled only with libsystemd. */
#include "service_notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* A failed notification is logged once: systemd then times the start out
 * by itself, and the log says why. */
static void service_notify_send(const char *msg)
{
    static int warned;
    int rc = sd_notify(0, msg);

    if (rc < 0 && !warned) {
        warned = 1;
        log_errno(LOG_WARN, -rc, "sd_notify to systemd failed");
    }
}

void service_notify_ready(const char *status)
{
    char msg[512];

    snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%ld\nSTATUS=%s", (long)getpid(), status);
    service_notify_send(msg);
}

void service_notify_reloading(void)
{
    struct timespec ts;
    char msg[128];

    /* systemd (Type=notify-reload, 253+) pairs RELOADING=1 with the clock
     * reading to tell this reload from an earlier one */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg),
             "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    service_notify_send(msg);
}

void service_notify_stopping(void)
{
    service_notify_send("STOPPING=1\nSTATUS=stopping: draining the connections");
}

void service_notify_status(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    int n;

    n = snprintf(msg, sizeof(msg), "STATUS=");
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    service_notify_send(msg);
}
