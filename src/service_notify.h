/* service_notify.h -- tell systemd (Type=notify) how the instance is doing,
 * through sd_notify(3): READY=1 once the workers listen and the broker has
 * Redis, RELOADING=1 ... READY=1 around a SIGHUP reload, STOPPING=1, and a
 * STATUS= line for `systemctl status`. Only the master calls these (the unit
 * says NotifyAccess=main). Without NOTIFY_SOCKET in the environment each call
 * does nothing; built without libsystemd (--without-systemd) they compile to
 * nothing. */
#ifndef RC_SERVICE_NOTIFY_H
#define RC_SERVICE_NOTIFY_H

#ifdef HAVE_LIBSYSTEMD

/* READY=1 with MAINPID=<our pid> and STATUS=status. */
void service_notify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC=<now> and a STATUS line. */
void service_notify_reloading(void);
/* STOPPING=1 with a STATUS line. */
void service_notify_stopping(void);
/* STATUS=<printf-formatted text> alone. */
void service_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#else

static inline void service_notify_ready(const char *status)
{
    (void)status;
}
static inline void service_notify_reloading(void)
{
}
static inline void service_notify_stopping(void)
{
}
__attribute__((format(printf, 1, 2))) static inline void service_notify_status(const char *fmt, ...)
{
    (void)fmt;
}

#endif

#endif
