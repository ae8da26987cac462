/* Refusing new connections while in-flight requests finish.
 *
 * civetweb can only stop as a whole, and once stopping its writes fail, so a
 * graceful shutdown must first stop accepting on its own: the listening
 * socket (found among our descriptors by SO_ACCEPTCONN and its port) is
 * replaced with dup2 by a fresh socket listening on an unused loopback port.
 * The server's port is then closed (clients get "connection refused") while
 * civetweb's accept loop keeps polling a valid, silent descriptor. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"

static int local_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &l)) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

static int idle_listener(void) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 1)) {
        close(s);
        return -1;
    }
    return s;
}

int srv_close_listener(int port) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return lgpu_set_error(LGPU_EIO, "cannot list /proc/self/fd");
    int closed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name || fd == dirfd(d)) continue;
        int acc = 0;
        socklen_t l = sizeof acc;
        if (getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) || !acc || local_port((int)fd) != port) continue;
        int s = idle_listener();
        if (s < 0) continue;
        if (dup2(s, (int)fd) >= 0) closed++;
        close(s);
    }
    closedir(d);
    return closed ? 0 : lgpu_set_error(LGPU_ENOTFOUND, "no listening socket on port %d", port);
}
