/* log.h -- leveled logger.
 *
 * Every line: "2026-05-01T10:00:00.123Z warn worker[2] pid=4711: text".
 * Lines go to stderr and, when set, to the log file (opened O_APPEND, so
 * all processes of an instance can share it). With no log file and stderr
 * not a terminal (journald), lines are "<4>warn worker[2] pid=4711: text":
 * the syslog priority first, no timestamp. log_raw() is the only call
 * that is safe inside a signal handler.
 */
#ifndef RC_LOG_H
#define RC_LOG_H

#include "config.h"

enum log_level {
    LOG_DEBUG = CFG_LOG_DEBUG,
    LOG_INFO = CFG_LOG_INFO,
    LOG_WARN = CFG_LOG_WARN,
    LOG_ERROR = CFG_LOG_ERROR,
};

extern enum log_level log_min_level;

/* Set the role shown on each line ("master", "broker", "worker[2]"). */
void log_set_role(const char *role);

/* Set the minimum level and the log file (NULL = stderr only; then, when
 * stderr is not a terminal, the journal format). Returns 0, or
 * -1 with errno set when the file cannot be opened (stderr keeps working). */
int log_open(enum log_level min, const char *logfile);
void log_close(void);

void log_msg_(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_errno_(enum log_level level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checks the level before any formatting (redis serverLog). */
#define log_msg(level, ...) \
    do { if ((level) >= log_min_level) log_msg_((level), __VA_ARGS__); } while (0)
/* Appends ": strerror(err)". */
#define log_errno(level, err, ...) \
    do { if ((level) >= log_min_level) log_errno_((level), (err), __VA_ARGS__); } while (0)

/* Async-signal-safe: writes msg and a newline to stderr and the log file. */
void log_raw(const char *msg);

#endif
