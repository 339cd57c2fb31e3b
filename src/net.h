/* net.h -- socket setup: TCP listeners with SO_REUSEPORT, Unix sockets.
 * Setup helpers fill err[NET_ERR_LEN] with "what: why" (redis anet). */
#ifndef RC_NET_H
#define RC_NET_H

#include <sys/types.h>

#define NET_ERR_LEN 256
#define NET_BACKLOG 4096

/* A non-blocking, close-on-exec TCP listener on host:port with SO_REUSEADDR
 * and SO_REUSEPORT. host may be an IPv4 or IPv6 literal or a name.
 * Returns the fd or -1. */
int net_tcp_listen(const char *host, int port, char *err);

/* The same without SO_REUSEPORT: fails while anyone listens on the port. */
int net_tcp_listen_exclusive(const char *host, int port, char *err);

/* TCP keepalive on a connected socket: probes after idle_s of silence,
 * every idle_s, dropped after count unanswered ones. A peer gone behind a
 * silent network (no RST) is then noticed in about (count + 1) * idle_s
 * instead of the kernel's two hours. Best effort: errors are ignored. */
void net_tcp_keepalive(int fd, int idle_s, int count);

/* Port a bound socket listens on, or -1. */
int net_local_port(int fd);

/* A non-blocking Unix stream listener at path (a stale socket file left by a
 * dead process is replaced; a live one is an error). Returns fd or -1. */
int net_unix_listen(const char *path, char *err);

/* Connect to the Unix socket at path; the fd is non-blocking. Returns the fd
 * or -1 (no listener yet, backlog full, ...). */
int net_unix_connect(const char *path, char *err);

/* The pid of the process that connected a Unix socket (as the kernel saw
 * it at connect time), or 0 when unknown. */
pid_t net_unix_peer_pid(int fd);

#endif
