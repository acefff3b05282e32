/* The WebSocket ceiling of bench/http/run: an echo server that does nothing
 * but what every WebSocket server must (TCP, the handshake, wslay's framing)
 * on THREADS event loops (epoll, one listening socket each, SO_REUSEPORT),
 * so that the WebSocket rows have beside them the most a server can do with
 * the same client on the same cores, as "nginx, one worker" is for HTTP.
 *
 *   ws_echo PORT [THREADS]
 *
 * Listens on 127.0.0.1:PORT (THREADS 1 by default) until SIGINT or SIGTERM.
 * The upgrade request is read with http_parser; Sec-WebSocket-Accept is made
 * with OpenSSL (SHA-1, base64).  Every text or binary message is sent back
 * to its sender as one write.  A request that is not a WebSocket upgrade
 * gets 400 and is closed; a connection's error closes that connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "ws_io.h"

enum { READ_BUF = 65536, MAX_HEAD = 8192, MAX_THREADS = 16 };

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef struct conn {
    ws_io io; /* first: wslay's callbacks take the connection as a ws_io */
    int fd;
    int epfd;
    bool upgraded;
    /* handshake */
    http_parser hp;
    bool in_key;   /* the header being read is Sec-WebSocket-Key */
    bool head_end; /* the upgrade request is complete */
    char key[64];
    size_t key_len, head_len;
    /* after it */
    wslay_event_context_ptr ws;
    bool want_out; /* EPOLLOUT is on */
} conn;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    c->in_key = len == 17 && strncasecmp(at, "Sec-WebSocket-Key", 17) == 0;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (!c->in_key)
        return 0;
    if (len > sizeof c->key - 1 - c->key_len)
        return 1; /* no key is this long */
    memcpy(c->key + c->key_len, at, len);
    c->key_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    c->head_end = true; /* an upgrade: http_parser stops after it */
    return 0;
}

static const http_parser_settings head_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_message_complete = on_message_complete,
};

/* Write what out holds; EPOLLOUT while the socket refuses some.  false
 * when the connection is broken. */
static bool flush(conn *c)
{
    while (c->io.out_off < c->io.out_len) {
        ssize_t w = write(c->fd, c->io.out + c->io.out_off,
                          c->io.out_len - c->io.out_off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            if (!c->want_out) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
                                         .data.ptr = c};
                if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
                    return false;
                c->want_out = true;
            }
            return true;
        }
        if (w <= 0)
            return false;
        c->io.out_off += (size_t)w;
    }
    c->io.out_len = c->io.out_off = 0;
    if (c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
            return false;
        c->want_out = false;
    }
    return true;
}

static void on_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    (void)user;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
        struct wslay_event_msg m = {arg->opcode, arg->msg, arg->msg_length};
        wslay_event_queue_msg(ctx, &m); /* wslay copies it */
    }
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_io_recv,
    .send_callback = ws_io_send,
    .on_msg_recv_callback = on_msg,
};

/* The upgrade request ended: answer 101, or 400 (false: close). */
static bool upgrade(conn *c)
{
    if (c->hp.upgrade == 0 || c->key_len == 0) {
        static const char bad[] =
            "HTTP/1.1 400 Bad Request\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n";
        if (write(c->fd, bad, sizeof bad - 1) < 0) {
            /* closed either way */
        }
        return false;
    }
    unsigned char in[sizeof c->key + sizeof WS_GUID], md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    memcpy(in, c->key, c->key_len);
    memcpy(in + c->key_len, WS_GUID, sizeof WS_GUID - 1);
    if (EVP_Digest(in, c->key_len + sizeof WS_GUID - 1, md, &md_len, EVP_sha1(),
                   NULL) != 1)
        return false;
    unsigned char accept[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    EVP_EncodeBlock(accept, md, (int)md_len);
    char head[256];
    int n =
        snprintf(head, sizeof head,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                 (const char *)accept);
    if (n < 0 || (size_t)n >= sizeof head ||
        wslay_event_context_server_init(&c->ws, &ws_callbacks, c) != 0)
        return false;
    c->upgraded = true;
    return ws_io_add(&c->io, head, (size_t)n) && flush(c);
}

static void conn_free(conn *c)
{
    close(c->fd); /* leaves the epoll set */
    if (c->ws != NULL)
        wslay_event_context_free(c->ws);
    free(c->io.out);
    free(c);
}

/* Bytes read from c: false when c is to be closed. */
static bool feed(conn *c, const uint8_t *buf, size_t n)
{
    if (!c->upgraded) {
        size_t used =
            http_parser_execute(&c->hp, &head_settings, (const char *)buf, n);
        c->head_len += used;
        if (c->head_end) {
            if (!upgrade(c))
                return false;
            buf += used;
            n -= used;
        } else if (HTTP_PARSER_ERRNO(&c->hp) != HPE_OK ||
                   c->head_len > MAX_HEAD) {
            c->hp.upgrade = 0; /* 400 */
            upgrade(c);
            return false;
        } else {
            return true;
        }
    }
    c->io.in = buf;
    c->io.in_len = n;
    if (wslay_event_recv(c->ws) != 0 || wslay_event_send(c->ws) != 0 ||
        !flush(c))
        return false;
    return wslay_event_want_read(c->ws) || wslay_event_want_write(c->ws);
}

static void *loop_main(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        perror("ws_echo: epoll");
        exit(1);
    }
    static __thread uint8_t buf[READ_BUF];
    struct epoll_event evs[64];
    while (!stopping) {
        int k = epoll_wait(epfd, evs, 64, 200);
        for (int i = 0; i < k; i++) {
            conn *c = evs[i].data.ptr;
            if (c == NULL) { /* the listener */
                int fd;
                while ((fd = accept4(lfd, NULL, NULL,
                                     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = calloc(1, sizeof *c);
                    if (c == NULL) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    c->epfd = epfd;
                    http_parser_init(&c->hp, HTTP_REQUEST);
                    c->hp.data = c;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &cev) != 0)
                        conn_free(c);
                }
                continue;
            }
            bool keep = true;
            if (evs[i].events & EPOLLOUT)
                keep = flush(c);
            if (keep && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                ssize_t r = read(c->fd, buf, sizeof buf);
                if (r > 0)
                    keep = feed(c, buf, (size_t)r);
                else if (r == 0 || (errno != EAGAIN && errno != EINTR))
                    keep = false;
            }
            if (!keep)
                conn_free(c);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    char *e = NULL;
    long port = argc > 1 ? strtol(argv[1], &e, 10) : 0;
    long threads = argc > 2 ? strtol(argv[2], NULL, 10) : 1;
    if (argc < 2 || argc > 3 || *e || port <= 0 || port > 65535 ||
        threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "usage: ws_echo PORT [THREADS (1-%d)]\n", MAX_THREADS);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_t t[MAX_THREADS];
    for (long i = 0; i < threads; i++) {
        int lfd =
            socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (lfd < 0 ||
            setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
            bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
            listen(lfd, 1024) != 0) {
            perror("ws_echo: listen");
            return 1;
        }
        if (pthread_create(&t[i], NULL, loop_main, (void *)(intptr_t)lfd) !=
            0) {
            perror("ws_echo: thread");
            return 1;
        }
    }
    for (long i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    return 0;
}
