/* Client-disconnect detection for requests that are not writing.
 *
 * civetweb does not expose a connection's socket, so the socket is found
 * once per request among the process's descriptors (/proc/self/fd) by its
 * address pair: peer = the request's remote address and port, local port =
 * the server port. The connection stays open while its handler runs, so the
 * descriptor cannot be reused meanwhile. Liveness is then a zero-timeout
 * poll: POLLRDHUP / POLLHUP / POLLERR, or a readable socket whose MSG_PEEK
 * returns 0 bytes (EOF), means the peer closed. Pending bytes (a pipelined
 * request) mean it is still there. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "http.h"

static bool addr_of(const struct sockaddr_storage *ss, char *buf, size_t cap, int *port) {
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        *port = ntohs(a->sin_port);
        return inet_ntop(AF_INET, &a->sin_addr, buf, (socklen_t)cap) != NULL;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        *port = ntohs(a->sin6_port);
        return inet_ntop(AF_INET6, &a->sin6_addr, buf, (socklen_t)cap) != NULL;
    }
    return false;
}

static int find_fd(const struct mg_request_info *ri) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -2;
    int found = -2;
    struct dirent *e;
    while (found < 0 && (e = readdir(d))) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name || fd == dirfd(d)) continue;
        struct stat st;
        if (fstat((int)fd, &st) || !S_ISSOCK(st.st_mode)) continue;
        struct sockaddr_storage peer, local;
        socklen_t pl = sizeof peer, ll = sizeof local;
        if (getpeername((int)fd, (struct sockaddr *)&peer, &pl) || getsockname((int)fd, (struct sockaddr *)&local, &ll))
            continue;
        char paddr[INET6_ADDRSTRLEN], laddr[INET6_ADDRSTRLEN];
        int pport, lport;
        if (!addr_of(&peer, paddr, sizeof paddr, &pport) || !addr_of(&local, laddr, sizeof laddr, &lport)) continue;
        if (pport == ri->remote_port && lport == ri->server_port && !strcmp(paddr, ri->remote_addr)) found = (int)fd;
    }
    closedir(d);
    return found;
}

bool srv_client_alive(srv_http_req *r) {
    if (r->client_gone) return false;
    if (r->fd == -1) r->fd = find_fd(r->ri);
    if (r->fd < 0) return true; /* not found: rely on write failures */
    struct pollfd p = {.fd = r->fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) < 0) return true;
    bool gone = (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
    if (!gone && (p.revents & POLLIN)) {
        char c;
        gone = recv(r->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
    }
    if (gone) r->client_gone = true;
    return !gone;
}
