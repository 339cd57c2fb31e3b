/* net.c -- see net.h. */
#include "net.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

static int net_tcp_listen_opt(const char *host, int port, int reuseport, char *err)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[16];
    int fd = -1, rc, on = 1, last_errno = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(portstr, sizeof(portstr), "%d", port);
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, NET_ERR_LEN, "resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd == -1) {
            last_errno = errno;
            continue;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
            (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1) ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 || listen(fd, NET_BACKLOG) == -1) {
            last_errno = errno;
            close(fd);
            fd = -1;
            continue;
        }
        /* accepted sockets inherit it: workers coalesce their writes
         * themselves, so Nagle would only add delayed-ACK stalls (40 ms) */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
        break;
    }
    freeaddrinfo(res);
    if (fd == -1)
        snprintf(err, NET_ERR_LEN, "listen on %s:%d: %s", host, port, strerror(last_errno));
    return fd;
}

int net_tcp_listen(const char *host, int port, char *err)
{
    return net_tcp_listen_opt(host, port, 1, err);
}

int net_tcp_listen_exclusive(const char *host, int port, char *err)
{
    return net_tcp_listen_opt(host, port, 0, err);
}

void net_tcp_keepalive(int fd, int idle_s, int count)
{
    int on = 1;

    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle_s, sizeof(idle_s));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

int net_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

static int net_unix_addr(struct sockaddr_un *sa, const char *path, char *err)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path)) {
        snprintf(err, NET_ERR_LEN, "unix socket path too long: %s", path);
        return -1;
    }
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

int net_unix_listen(const char *path, char *err)
{
    struct sockaddr_un sa;
    int fd;

    if (net_unix_addr(&sa, path, err) == -1)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, NET_ERR_LEN, "socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        int probe, live;

        if (errno != EADDRINUSE)
            goto fail;
        /* a live listener answers a connect; a stale file does not */
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        live = probe != -1 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        if (probe != -1)
            close(probe);
        if (live) {
            snprintf(err, NET_ERR_LEN, "broker socket %s is in use by another process", path);
            close(fd);
            return -1;
        }
        unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
            goto fail;
    }
    if (listen(fd, NET_BACKLOG) == -1)
        goto fail;
    return fd;
fail:
    snprintf(err, NET_ERR_LEN, "listen on %s: %s", path, strerror(errno));
    close(fd);
    return -1;
}

int net_unix_connect(const char *path, char *err)
{
    struct sockaddr_un sa;
    int fd;

    if (net_unix_addr(&sa, path, err) == -1)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, NET_ERR_LEN, "socket: %s", strerror(errno));
        return -1;
    }
    /* a Unix stream connect completes at once or fails (EAGAIN: backlog full) */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        snprintf(err, NET_ERR_LEN, "connect to %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

pid_t net_unix_peer_pid(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 || len != sizeof(cred))
        return 0;
    return cred.pid;
}
