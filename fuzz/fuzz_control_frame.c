/* libFuzzer: the control socket protocol (control.c) of a running node.
 * The input is the raw byte stream a client sends: frames of a 4-byte
 * big-endian length and a JSON object.  The harness boots one node (in a
 * temporary home) on first use, then per input connects, sends the bytes,
 * and reads replies until the node closes the connection.  Every reply must
 * be a well-formed frame holding a JSON object with a boolean "ok".
 *
 * An inject that expects a response legitimately waits up to
 * expects_response seconds for a target that never answers, so inputs with
 * an inject frame whose expects_response is above 2 are rejected (-1) to
 * keep the fuzzer fast; tests/unit/test_control.c covers large values. */
#include "hyperc/node.h"

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hc_node *node;
static struct sockaddr_un addr;
static char home_dir[64];

static int rm_cb(const char *path, const struct stat *sb, int flag,
                 struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* At exit: stop the node and remove its home. */
static void cleanup(void)
{
    if (node == NULL)
        return;
    hc_node_shutdown(node);
    hc_node_free(node);
    node = NULL;
    nftw(home_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void boot(void)
{
    snprintf(home_dir, sizeof home_dir, "/tmp/hcfuzz-XXXXXX");
    char *home = mkdtemp(home_dir);
    if (home == NULL)
        abort();
    hc_node_config cfg;
    hc_node_config_default(&cfg);
    cfg.home = home;
    cfg.mailbox_max = 64;
    char err[256];
    node = hc_node_new(&cfg, err, sizeof err);
    if (node == NULL || hc_node_start(node, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_control_frame: %s\n", err);
        abort();
    }
    atexit(cleanup);
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s",
             hc_node_control_path(node));
}

/* Whether the node would wait more than 2 s on some frame of the input. */
static bool slow_input(const uint8_t *d, size_t n)
{
    while (n >= 4) {
        uint32_t len = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
                       (uint32_t)d[2] << 8 | d[3];
        d += 4;
        n -= 4;
        if (len > n)
            return false; /* the node stops at the incomplete frame */
        json_error_t e;
        json_t *j = json_loadb((const char *)d, len, 0, &e);
        json_t *exp = json_object_get(j, "expects_response");
        bool slow = json_is_integer(exp) && json_integer_value(exp) > 2;
        json_decref(j);
        if (slow)
            return true;
        d += len;
        n -= len;
    }
    return false;
}

/* Check the replies received so far; returns bytes consumed. */
static size_t check_replies(const uint8_t *d, size_t n)
{
    size_t used = 0;
    while (n - used >= 4) {
        const uint8_t *h = d + used;
        uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
                       (uint32_t)h[2] << 8 | h[3];
        if (n - used - 4 < len)
            break;
        json_error_t e;
        json_t *j = json_loadb((const char *)h + 4, len, 0, &e);
        if (!json_is_object(j) || !json_is_boolean(json_object_get(j, "ok"))) {
            fprintf(stderr, "bad reply: %.*s\n", (int)len, (const char *)h + 4);
            abort();
        }
        json_decref(j);
        used += 4 + len;
    }
    return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (node == NULL)
        boot();
    if (slow_input(data, size))
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        abort();
    size_t sent = 0, have = 0, cap = 4096;
    uint8_t *in = malloc(cap);
    if (in == NULL)
        abort();
    bool wr_open = true;
    if (size == 0) {
        shutdown(fd, SHUT_WR);
        wr_open = false;
    }
    for (;;) {
        struct pollfd p = {.fd = fd,
                           .events = POLLIN | (wr_open ? POLLOUT : 0)};
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            abort();
        }
        if (wr_open && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w =
                send(fd, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                sent += (size_t)w;
            if (w < 0 && errno != EAGAIN && errno != EINTR)
                wr_open = false; /* the node closed on a bad frame */
            if (sent == size) {
                shutdown(fd, SHUT_WR);
                wr_open = false;
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (have == cap) {
                cap *= 2;
                uint8_t *nb = realloc(in, cap);
                if (nb == NULL)
                    abort();
                in = nb;
            }
            ssize_t r = recv(fd, in + have, cap - have, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
                break; /* the node is done with this connection */
            if (r > 0) {
                have += (size_t)r;
                size_t used = check_replies(in, have);
                memmove(in, in + used, have - used);
                have -= used;
            }
        }
    }
    if (have != 0) {
        fprintf(stderr, "a partial reply frame of %zu bytes\n", have);
        abort();
    }
    free(in);
    close(fd);
    return 0;
}
