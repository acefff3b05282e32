/* ring_bridge CMD [ARGS...]: run CMD as a worker on the node's end of a
 * new shared-memory link (its fd 3, a memfd with the rings, as the node
 * gives one), and carry the frames between that link and the stream socket
 * this program has as fd 3, unchanged, both ways.  So a test that plays
 * the node over a socket (tests/blackbox/test_wasm_host.py) can play it for
 * a wasm host on the rings, where the host's addon serves the calls.
 *
 * The socket sees the worker's frames as they come; what the test writes
 * goes into the link as it comes.  When the worker has exited and its
 * frames are read, the socket is shut down and this program exits with the
 * worker's status (128 + the signal when killed).  Its stderr is the
 * worker's. */
#include "worker/link.h"
#include "worker/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t child;
static _Atomic int status = -1; /* the worker's, once it has exited */
static int sock;
static hcw_link *link_;

static bool child_alive(void *ctx)
{
    (void)ctx;
    if (status >= 0)
        return false;
    int st;
    pid_t w = waitpid(child, &st, WNOHANG);
    if (w == child) {
        status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return false;
    }
    return w == 0; /* (-1: the other thread took it) */
}

static bool read_all(uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t got = read(sock, p, n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        p += got;
        n -= (size_t)got;
    }
    return true;
}

static bool write_all(const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t put = write(sock, p, n);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return false;
        p += put;
        n -= (size_t)put;
    }
    return true;
}

/* The test's frames into the link, until the socket ends. */
static void *to_worker(void *arg)
{
    (void)arg;
    for (;;) {
        uint8_t head[4];
        uint32_t n;
        if (!read_all(head, 4))
            return NULL;
        memcpy(&n, head, 4);
        if (n > HCW_MAX_FRAME)
            return NULL;
        uint8_t *f = malloc(4 + (size_t)n);
        if (f == NULL)
            return NULL;
        memcpy(f, head, 4);
        if (!read_all(f + 4, n) || hcw_link_send_bytes(link_, f, 4 + n) != 0) {
            free(f);
            return NULL;
        }
        free(f);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ring_bridge CMD [ARGS...]\n");
        return 2;
    }
    sock = fcntl(3, F_DUPFD_CLOEXEC, 10);
    if (sock < 0) {
        perror("ring_bridge: fd 3");
        return 2;
    }
    close(3);
    int memfd;
    link_ = hcw_link_shm_new(50, &memfd);
    if (link_ == NULL) {
        perror("ring_bridge: the link");
        return 2;
    }
    child = fork();
    if (child < 0) {
        perror("ring_bridge: fork");
        return 2;
    }
    if (child == 0) {
        /* (dup2 onto itself would keep close-on-exec) */
        if (memfd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(memfd, 3) < 0)
            _exit(127);
        execvp(argv[1], argv + 1);
        perror("ring_bridge: exec");
        _exit(127);
    }
    close(memfd);
    hcw_link_watch(link_, child_alive, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, to_worker, NULL) != 0)
        return 2;
    pthread_detach(t);
    hcw_in in;
    hcw_in_init(&in);
    char err[256];
    for (;;) {
        int rc = hcw_link_recv(link_, &in, err, sizeof err);
        if (rc != 1) {
            if (rc < 0)
                fprintf(stderr, "ring_bridge: %s\n", err);
            break;
        }
        size_t n;
        const uint8_t *body = hcw_in_raw(&in, &n);
        uint32_t len = (uint32_t)n;
        uint8_t head[4];
        memcpy(head, &len, 4);
        if (!write_all(head, 4) || !write_all(body, n))
            break;
    }
    hcw_in_fini(&in);
    shutdown(sock, SHUT_RDWR);
    while (status < 0) {
        int st;
        pid_t w = waitpid(child, &st, 0);
        if (w == child)
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        else if (w < 0 && errno != EINTR)
            usleep(1000); /* the other thread took it: its status comes */
    }
    return status;
}
