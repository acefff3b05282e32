/* The WebSocket load client of bench/http/run: CONNS connections, each
 * sending a text message and waiting for its echo before sending the next
 * (closed loop), on one thread (epoll), with wslay framing the messages.
 * It does what ws_load.js does, at a fraction of its CPU per message, so
 * that on a machine whose cores the client shares with the server the
 * server, not the client, sets the pace; both servers face the same client.
 *
 *   ws_load URL [CONNS [WARMUP [SECS [SIZE]]]]
 *
 * URL is ws://HOST:PORT/PATH (HOST an IPv4 address or localhost).  After
 * WARMUP seconds it counts for SECS seconds, then prints one line of JSON
 * with the fields of ws_load.js: messages/s, latency percentiles
 * (microseconds, from the send to the echo, 1 us histogram), errors (an
 * echo not equal to what was sent), and the client's own CPU use (1.0 = one
 * core busy).  The handshake's Sec-WebSocket-Accept is checked.  A failure
 * prints {"error": ...} and exits 1; so does any error counted. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "ws_io.h"

enum { MAX_US = 1000000, READ_BUF = 65536 };

typedef struct conn {
    ws_io io; /* first: wslay's callbacks take the connection as a ws_io */
    int fd;
    uint32_t id;
    uint64_t seq;
    wslay_event_context_ptr ws;
    bool want_out; /* EPOLLOUT is on: out has bytes the socket refused */
    char *expect;  /* the message in flight */
    size_t expect_len;
    double sent;
    bool waiting;
} conn;

static uint32_t *hist;
static bool measuring, stopping;
static uint64_t msgs, errors, outstanding;
static double sum_us, max_us;
static size_t size;
static int epfd;
static uint64_t mask_state = 0x9e3779b97f4a7c15ull;

static void fail(const char *fmt, ...)
{
    char m[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    /* the message is ours: no quote or backslash to escape but errno's */
    for (char *p = m; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = ' ';
    printf("{\"error\":\"%s\"}\n", m);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                         void *user)
{
    (void)ctx;
    (void)user;
    for (size_t i = 0; i < len; i++) {
        mask_state ^= mask_state << 13;
        mask_state ^= mask_state >> 7;
        mask_state ^= mask_state << 17;
        buf[i] = (uint8_t)mask_state;
    }
    return 0;
}

static void send_next(conn *c);

static void ws_msg_cb(wslay_event_context_ptr ctx,
                      const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    conn *c = user;
    (void)ctx;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        if (!stopping)
            fail("connection %u closed by the server (status %u)", c->id,
                 arg->status_code);
        return;
    }
    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
        return; /* a ping (wslay answers it) or a pong */
    if (!c->waiting) {
        errors++; /* an echo nobody asked for */
        return;
    }
    double us = (now_s() - c->sent) * 1e6;
    c->waiting = false;
    outstanding--;
    if (arg->opcode != WSLAY_TEXT_FRAME || arg->msg_length != c->expect_len ||
        memcmp(arg->msg, c->expect, c->expect_len) != 0)
        errors++;
    if (measuring) {
        msgs++;
        sum_us += us;
        if (us > max_us)
            max_us = us;
        hist[us >= MAX_US ? MAX_US : (uint32_t)(us + 0.5)]++;
    }
    if (!stopping)
        send_next(c);
}

/* The message ws_load.js sends: "id:seq:" padded with 'x' to SIZE bytes. */
static void send_next(conn *c)
{
    int n = snprintf(c->expect, size + 64, "%u:%llu:", c->id,
                     (unsigned long long)c->seq++);
    size_t l = (size_t)n;
    if (l < size) {
        memset(c->expect + l, 'x', size - l);
        l = size;
    }
    c->expect_len = l;
    struct wslay_event_msg m = {.opcode = WSLAY_TEXT_FRAME,
                                .msg = (const uint8_t *)c->expect,
                                .msg_length = l};
    if (wslay_event_queue_msg(c->ws, &m) != 0)
        fail("connection %u: wslay_event_queue_msg failed", c->id);
    c->waiting = true;
    outstanding++;
    c->sent = now_s();
}

static void set_out(conn *c, bool on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0),
                             .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        fail("epoll_ctl: %s", strerror(errno));
    c->want_out = on;
}

/* Frame what wslay has queued and write it. */
static void flush(conn *c)
{
    if (!c->want_out) {
        if (wslay_event_send(c->ws) != 0)
            fail("connection %u: wslay_event_send failed", c->id);
    }
    while (c->io.out_off < c->io.out_len) {
        ssize_t w = write(c->fd, c->io.out + c->io.out_off,
                          c->io.out_len - c->io.out_off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out(c, true);
            return;
        }
        if (w < 0)
            fail("connection %u: write: %s", c->id, strerror(errno));
        c->io.out_off += (size_t)w;
    }
    c->io.out_len = c->io.out_off = 0;
    if (c->want_out) {
        set_out(c, false);
        if (wslay_event_want_write(c->ws))
            flush(c);
    }
}

static void feed(conn *c, const uint8_t *data, size_t len)
{
    c->io.in = data;
    c->io.in_len = len;
    if (wslay_event_recv(c->ws) != 0)
        fail("connection %u: not a WebSocket stream", c->id);
    c->io.in_len = 0;
    flush(c);
}

static void base64(const uint8_t *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Connect and switch to the WebSocket protocol; bytes after the handshake's
 * answer go to wslay. */
static void open_conn(conn *c, const struct sockaddr_in *sa, const char *host,
                      const char *path)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        fail("socket: %s", strerror(errno));
    if (connect(c->fd, (const struct sockaddr *)sa, sizeof *sa) != 0)
        fail("connection %u: connect: %s", c->id, strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint8_t raw[16];
    ws_genmask_cb(NULL, raw, sizeof raw, NULL);
    char key[32], want[40];
    base64(raw, sizeof raw, key);
    char cat[128];
    int cl = snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
                      key);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdn = 0;
    if (EVP_Digest(cat, (size_t)cl, md, &mdn, EVP_sha1(), NULL) != 1)
        fail("SHA-1 failed");
    base64(md, mdn, want);
    char req[1024];
    int rl = snprintf(req, sizeof req,
                      "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n",
                      path, host, key);
    if (rl < 0 || (size_t)rl >= sizeof req)
        fail("URL too long");
    if (write(c->fd, req, (size_t)rl) != rl)
        fail("connection %u: write: %s", c->id, strerror(errno));
    char resp[4096];
    size_t got = 0;
    char *end = NULL;
    while (end == NULL) {
        if (got == sizeof resp - 1)
            fail("connection %u: handshake answer too long", c->id);
        ssize_t r = read(c->fd, resp + got, sizeof resp - 1 - got);
        if (r <= 0)
            fail("connection %u: handshake: %s", c->id,
                 r == 0 ? "closed" : strerror(errno));
        got += (size_t)r;
        resp[got] = 0;
        end = strstr(resp, "\r\n\r\n");
    }
    size_t head = (size_t)(end + 4 - resp);
    if (strncmp(resp, "HTTP/1.1 101", 12) != 0)
        fail("connection %u: no switch: %.40s", c->id, resp);
    bool ok = false;
    for (char *l = strstr(resp, "\r\n"); l && l < end; l = strstr(l, "\r\n")) {
        l += 2;
        static const char name[] = "sec-websocket-accept:";
        if (strncasecmp(l, name, sizeof name - 1) == 0) {
            const char *v = l + sizeof name - 1;
            while (*v == ' ' || *v == '\t')
                v++;
            ok = strncmp(v, want, strlen(want)) == 0;
        }
    }
    if (!ok)
        fail("connection %u: wrong or no Sec-WebSocket-Accept", c->id);
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = ws_io_recv,
        .send_callback = ws_io_send,
        .genmask_callback = ws_genmask_cb,
        .on_msg_recv_callback = ws_msg_cb,
    };
    if (wslay_event_context_client_init(&c->ws, &cbs, c) != 0)
        fail("wslay_event_context_client_init failed");
    c->expect = malloc(size + 64);
    if (c->expect == NULL)
        fail("out of memory");
    int fl = fcntl(c->fd, F_GETFL);
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0)
        fail("nonblocking: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        fail("epoll_ctl: %s", strerror(errno));
    if (got > head)
        feed(c, (const uint8_t *)resp + head, got - head);
}

static uint32_t pct(double p)
{
    uint64_t want = (uint64_t)(msgs * p + 0.999999), n = 0;
    if (want == 0)
        want = 1;
    for (uint32_t i = 0; i <= MAX_US; i++) {
        n += hist[i];
        if (n >= want)
            return i;
    }
    return MAX_US;
}

/* argv[i] as a decimal count (0 only when zero_ok), or def if absent */
static unsigned long arg(int argc, char **argv, int i, unsigned long def,
                         bool zero_ok)
{
    if (argc <= i)
        return def;
    char *e;
    errno = 0;
    unsigned long v = strtoul(argv[i], &e, 10);
    if (*argv[i] < '0' || *argv[i] > '9' || *e || errno || (v == 0 && !zero_ok))
        fail("argument %d: not a %s integer: %s", i,
             zero_ok ? "non-negative" : "positive", argv[i]);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strncmp(argv[1], "ws://", 5) != 0) {
        fprintf(stderr,
                "usage: ws_load ws://HOST:PORT/PATH [CONNS [WARMUP [SECS "
                "[SIZE]]]]\n");
        return 2;
    }
    unsigned long conns = arg(argc, argv, 2, 64, false);
    unsigned long warmup = arg(argc, argv, 3, 2, true);
    unsigned long secs = arg(argc, argv, 4, 10, false);
    size = arg(argc, argv, 5, 32, false);
    if (conns > 10000 || size > 1 << 20)
        fail("too many connections or too large a message");

    char host[256];
    const char *hp = argv[1] + 5, *path = strchr(hp, '/');
    if (path == NULL)
        path = "/";
    size_t hl = strchr(hp, '/') ? (size_t)(strchr(hp, '/') - hp) : strlen(hp);
    if (hl == 0 || hl >= sizeof host)
        fail("bad URL: %s", argv[1]);
    memcpy(host, hp, hl);
    host[hl] = 0;
    char *colon = strrchr(host, ':');
    if (colon == NULL)
        fail("URL without a port: %s", argv[1]);
    *colon = 0;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM},
                    *ai;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
        fail("cannot resolve %s", host);
    struct sockaddr_in sa;
    memcpy(&sa, ai->ai_addr, sizeof sa);
    freeaddrinfo(ai);
    *colon = ':';

    hist = calloc(MAX_US + 1, sizeof *hist);
    conn *cs = calloc(conns, sizeof *cs);
    static uint8_t buf[READ_BUF];
    epfd = epoll_create1(0);
    if (hist == NULL || cs == NULL || epfd < 0)
        fail("setup: %s", strerror(errno));
    mask_state ^= (uint64_t)getpid() << 32 ^ (uint64_t)(now_s() * 1e9);
    for (unsigned long i = 0; i < conns; i++) {
        cs[i].id = (uint32_t)i;
        open_conn(&cs[i], &sa, host, path);
    }

    for (unsigned long i = 0; i < conns; i++) {
        send_next(&cs[i]);
        flush(&cs[i]);
    }
    double t_start = now_s() + (double)warmup, t_stop = 0, t0 = 0, cpu0 = 0;
    double measured = 0, cpu = 0;
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(epfd, evs, 256, 50);
        if (n < 0 && errno != EINTR)
            fail("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT)
                flush(c);
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            ssize_t r = read(c->fd, buf, sizeof buf);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0)
                fail("connection %u %s", c->id,
                     r == 0 ? "closed by the server" : strerror(errno));
            feed(c, buf, (size_t)r);
        }
        double t = now_s();
        if (!measuring && !stopping && t >= t_start) {
            measuring = true;
            t0 = t;
            cpu0 = cpu_s();
        } else if (measuring && t >= t0 + (double)secs) {
            measured = t - t0;
            cpu = cpu_s() - cpu0;
            measuring = false;
            stopping = true;
            t_stop = t;
        }
        if (stopping && outstanding == 0)
            break;
        if (stopping && t > t_stop + 10)
            fail("echoes still missing 10 s after the end: %llu",
                 (unsigned long long)outstanding);
    }
    printf("{\"conns\":%lu,\"size\":%zu,\"secs\":%.3f,\"msgs\":%llu,"
           "\"msgs_per_s\":%.1f,\"p50_us\":%u,\"p90_us\":%u,\"p99_us\":%u,"
           "\"max_us\":%.0f,\"mean_us\":%.1f,\"errors\":%llu,"
           "\"client_cpu\":%.2f}\n",
           conns, size, measured, (unsigned long long)msgs,
           (double)msgs / measured, pct(0.5), pct(0.9), pct(0.99), max_us,
           sum_us / (double)(msgs ? msgs : 1), (unsigned long long)errors,
           cpu / measured);
    fflush(stdout);
    return errors ? 1 : 0;
}
