/* util.h -- small helpers shared by every process: exit codes, clocks,
 * fd flags, bounded formatting. */
#ifndef RC_UTIL_H
#define RC_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

/* Process exit codes: the master reads them to decide on a respawn. */
#define RC_EXIT_OK 0      /* clean stop */
#define RC_EXIT_RUNTIME 1 /* failed while running: respawn */
#define RC_EXIT_FATAL 2   /* failed at init (config, port in use): do not respawn */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic clock in milliseconds, microseconds. */
uint64_t util_now_ms(void);
uint64_t util_now_us(void);
/* Wall clock: milliseconds since the Unix epoch (timestamps clients see). */
uint64_t util_epoch_ms(void);

/* A duration in milliseconds as a struct timeval (libevent's timeouts). */
struct timeval util_ms_tv(long ms);

/* Value of a hexadecimal digit, or -1 when c is none. */
int util_hex_digit(int c);

/* Set O_NONBLOCK / FD_CLOEXEC. Return 0 or -1 (errno set). */
int util_set_nonblock(int fd);
int util_set_cloexec(int fd);

/* Write all of buf to a blocking fd, retrying on EINTR. 0 or -1. */
int util_write_all(int fd, const void *buf, size_t len);

/* Raise RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft
 * limit (or the old one if it could not be raised). */
long util_raise_nofile(void);

#endif
