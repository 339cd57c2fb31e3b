/* log.c -- leveled logger with a role/pid prefix on every line.
 *
 * One write(2) per line, so lines from several processes sharing a file or
 * a terminal never interleave mid-line (O_APPEND keeps them whole).
 *
 * With no log file and stderr not a terminal, stderr is taken to be a
 * journal stream (systemd, or any collector that stamps lines itself): each
 * line starts with its syslog priority, "<4>", which journald strips and
 * files as the priority, and carries no timestamp of our own.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

enum log_level log_min_level = LOG_INFO;

static char log_role[32] = "master";
static int log_fd = -1;
static int log_journal; /* stderr is a journal stream: "<N>" prefix, no time */

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};
/* syslog priorities (sd-daemon.h's SD_DEBUG .. SD_ERR) of the levels above */
static const char *const log_level_priorities[] = {"<7>", "<6>", "<4>", "<3>"};

void log_set_role(const char *role)
{
    snprintf(log_role, sizeof(log_role), "%s", role);
}

int log_open(enum log_level min, const char *logfile)
{
    log_min_level = min;
    if (log_fd != -1) {
        close(log_fd);
        log_fd = -1;
    }
    log_journal = logfile == NULL && !isatty(STDERR_FILENO);
    if (logfile == NULL)
        return 0;
    log_fd = open(logfile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return log_fd == -1 ? -1 : 0;
}

void log_close(void)
{
    if (log_fd != -1)
        close(log_fd);
    log_fd = -1;
}

static void log_emit(const char *line, size_t len)
{
    /* stderr may be /dev/null (daemonized); the file is what matters then */
    if (write(STDERR_FILENO, line, len) == -1) {
        /* nothing sensible to do */
    }
    if (log_fd != -1 && write(log_fd, line, len) == -1) {
        /* nothing sensible to do */
    }
}

static void log_vformat(enum log_level level, int err, const char *fmt, va_list ap)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int r;

    if (log_journal) {
        r = snprintf(line, sizeof(line), "%s%s %s pid=%d: ", log_level_priorities[level],
                     log_level_names[level], log_role, (int)getpid());
        n = (size_t)r;
    } else {
        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
        r = snprintf(line + n, sizeof(line) - n, ".%03dZ %s %s pid=%d: ", (int)(tv.tv_usec / 1000),
                     log_level_names[level], log_role, (int)getpid());
        n += (size_t)r;
    }
    r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    n = r < 0 ? n : n + (size_t)r;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    if (err != 0) {
        r = snprintf(line + n, sizeof(line) - n, ": %s", strerror(err));
        n = r < 0 ? n : n + (size_t)r;
        if (n > sizeof(line) - 2)
            n = sizeof(line) - 2;
    }
    line[n++] = '\n';
    log_emit(line, n);
}

void log_msg_(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    int saved = errno;

    va_start(ap, fmt);
    log_vformat(level, 0, fmt, ap);
    va_end(ap);
    errno = saved;
}

void log_errno_(enum log_level level, int err, const char *fmt, ...)
{
    va_list ap;
    int saved = errno;

    va_start(ap, fmt);
    log_vformat(level, err, fmt, ap);
    va_end(ap);
    errno = saved;
}

void log_raw(const char *msg)
{
    size_t len = strlen(msg);

    log_emit(msg, len);
    log_emit("\n", 1);
}
