/* The http-server fuzz targets' socket pieces (internal to fuzz/): a client
 * connected to the server over a socketpair, and draining what the server
 * wrote.  A header of static functions, as fuzz_node.h. */
#ifndef HYPERC_FUZZ_HTTP_H
#define HYPERC_FUZZ_HTTP_H

#include "node/http/http_int.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

/* Hand one end of a fresh socketpair to `srv` as a connection from a
 * loopback peer or not; returns the client's end (non-blocking, the
 * caller's to close).  Aborts when the pair cannot be made. */
static int fz_http_client(struct hcn_http *srv, bool loopback)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    if (hcn_http_probe_connect(srv, sv[0], loopback) != 0)
        abort();
    return sv[1];
}

/* Read and drop what the server wrote to client end `fd`, without
 * blocking. */
static void fz_drain_fd(int fd)
{
    char buf[16384];
    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
}

#endif
