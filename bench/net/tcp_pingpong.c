/* The network benchmark's peer (bench/net/run): the same exchanges as two
 * nodes make, over one raw loopback TCP connection with nothing on top — no
 * encryption, no msgpack, no routing.  A thread serves; the client keeps
 * `inflight` requests outstanding on the connection (each message a u32
 * length and its bytes, TCP_NODELAY on both ends).
 *
 *   tcp_pingpong rtt REQ_BYTES REP_BYTES N INFLIGHT WARMUP
 *       -> {"n","inflight","msgs_per_s","p50_us","p99_us"}
 *   tcp_pingpong bulk BYTES COUNT
 *       -> {"bytes","count","secs","mb_per_s"} (a small request, then BYTES
 *          back, one at a time)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "tcp_pingpong: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write");
        p += w;
        n -= (size_t)w;
    }
}

/* false at a clean end of stream before any byte */
static int read_all(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 && got == 0)
            return 0;
        if (r <= 0)
            die("read");
        got += (size_t)r;
    }
    return 1;
}

/* One message: u32 length then `len` bytes of payload. */
static void send_msg(int fd, uint8_t *buf, size_t len)
{
    buf[0] = (uint8_t)(len >> 24);
    buf[1] = (uint8_t)(len >> 16);
    buf[2] = (uint8_t)(len >> 8);
    buf[3] = (uint8_t)len;
    write_all(fd, buf, 4 + len);
}

static int recv_msg(int fd, uint8_t *buf, size_t cap)
{
    uint8_t h[4];
    if (!read_all(fd, h, 4))
        return 0;
    size_t len =
        (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    if (len > cap) {
        fprintf(stderr, "tcp_pingpong: a message of %zu bytes\n", len);
        exit(1);
    }
    read_all(fd, buf, len);
    return 1;
}

typedef struct server {
    int lfd;
    size_t rep_bytes;
} server;

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void *serve(void *arg)
{
    server *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        die("accept");
    nodelay(fd);
    uint8_t *in = malloc(1 << 20), *out = calloc(1, 4 + s->rep_bytes);
    memset(out + 4, 'x', s->rep_bytes);
    while (recv_msg(fd, in, 1 << 20))
        send_msg(fd, out, s->rep_bytes);
    close(fd);
    free(in);
    free(out);
    return NULL;
}

static int connect_pair(server *s, pthread_t *th)
{
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(s->lfd, 1) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&sa, &sl) != 0)
        die("listen");
    if (pthread_create(th, NULL, serve, s) != 0)
        die("thread");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("connect");
    nodelay(fd);
    return fd;
}

/* End the exchange: the server sees the end of the stream and stops. */
static void disconnect_pair(server *s, pthread_t th, int fd)
{
    shutdown(fd, SHUT_WR);
    pthread_join(th, NULL);
    close(fd);
    close(s->lfd);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void rtt(size_t req, size_t rep, size_t n, size_t inflight,
                size_t warmup)
{
    server s = {.rep_bytes = rep};
    pthread_t th;
    int fd = connect_pair(&s, &th);
    uint8_t *out = calloc(1, 4 + req), *in = malloc(4 + rep);
    memset(out + 4, 'y', req);
    size_t total = warmup + n;
    double *sent = calloc(total, sizeof *sent), *lat = calloc(n, sizeof *lat);
    size_t issued = 0, done = 0;
    double t0 = now_s();
    while (issued < total && issued < inflight) {
        sent[issued++] = now_s();
        send_msg(fd, out, req);
    }
    while (done < total) {
        recv_msg(fd, in, rep);
        double t = now_s();
        if (done >= warmup)
            lat[done - warmup] = t - sent[done];
        if (++done == warmup)
            t0 = t; /* the measured phase starts */
        if (issued < total) {
            sent[issued++] = now_s();
            send_msg(fd, out, req);
        }
    }
    double secs = now_s() - t0;
    disconnect_pair(&s, th, fd);
    qsort(lat, n, sizeof *lat, cmp_d);
    printf("{\"n\":%zu,\"inflight\":%zu,\"req_bytes\":%zu,\"rep_bytes\":%zu,"
           "\"secs\":%.6f,\"msgs_per_s\":%.1f,\"p50_us\":%.2f,"
           "\"p99_us\":%.2f}\n",
           n, inflight, req, rep, secs, (double)n / secs, lat[n / 2] * 1e6,
           lat[(size_t)((double)n * 0.99)] * 1e6);
    free(out);
    free(in);
    free(sent);
    free(lat);
}

static void bulk(size_t bytes, size_t count)
{
    server s = {.rep_bytes = bytes};
    pthread_t th;
    int fd = connect_pair(&s, &th);
    uint8_t out[4 + 16] = {0}, *in = malloc(4 + bytes);
    send_msg(fd, out, 16); /* one unmeasured */
    recv_msg(fd, in, bytes);
    double t0 = now_s();
    for (size_t i = 0; i < count; i++) {
        send_msg(fd, out, 16);
        recv_msg(fd, in, bytes);
    }
    double secs = now_s() - t0;
    disconnect_pair(&s, th, fd);
    printf("{\"bytes\":%zu,\"count\":%zu,\"secs\":%.6f,\"mb_per_s\":%.2f}\n",
           bytes, count, secs, (double)bytes * (double)count / secs / 1e6);
    free(in);
}

static size_t arg(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v == 0) {
        fprintf(stderr, "tcp_pingpong: '%s' is not a positive number\n", s);
        exit(2);
    }
    return (size_t)v;
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "rtt") == 0) {
        size_t rep = arg(argv[3]);
        if (rep > (1u << 20) - 4 || arg(argv[2]) > (1u << 20) - 4) {
            fprintf(stderr, "tcp_pingpong: replies up to 1 MiB\n");
            return 2;
        }
        rtt(arg(argv[2]), rep, arg(argv[4]), arg(argv[5]),
            strtoull(argv[6], NULL, 10));
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "bulk") == 0) {
        bulk(arg(argv[2]), arg(argv[3]));
        return 0;
    }
    fprintf(stderr, "usage: tcp_pingpong rtt REQ_BYTES REP_BYTES N INFLIGHT "
                    "WARMUP | bulk BYTES COUNT\n");
    return 2;
}
