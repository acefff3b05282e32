/* Lanes (src/worker/lane.c on link.c's rings, docs/lane-design.md): frames
 * echoed both ways between two processes over a lane whose memfd went
 * through a SOCK_SEQPACKET socket as SCM_RIGHTS; impossible positions, an
 * over-long length and bodies that do not decode refused with a sentence;
 * a full ring and a frame over a quarter of it refused at once, never
 * waited on; the wait over several rings (a link's and a lane's) woken by
 * either, by the node closing the lane, and timing out at its deadline;
 * the descriptor's message checked (its lane number, one descriptor, the
 * header and the size of the mapping) with every refused descriptor
 * closed; the node's end of the socket shut for reading, so that a
 * worker cannot queue anything for the node; and each direction's request
 * counters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_helpers.h"

#include "worker/lane.h"
#include "worker/link.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define R HCW_LANE_RING_BYTES
#define NUM 7u
/* The mapping's layout (lane.h): the rings' lines, then their bytes. */
#define TAIL0 64
#define HEAD0 128
#define TAIL1 192
#define HEAD1 256
#define DATA0 4096
#define MAP_BYTES (4096 + 2 * (size_t)R)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void bin_frame(hcw_frame *f, int op, const uint8_t *p, size_t n)
{
    hcw_frame_begin(f, op, 1);
    hcw_put_bin(f, p, n);
}

static size_t frame_len(hcw_frame *f)
{
    size_t n = 0;
    assert_non_null(hcw_frame_finish(f, &n));
    return n;
}

/* The payload of a bin frame of `total` bytes, length included. */
static size_t payload_for(hcw_frame *f, size_t total)
{
    static uint8_t zero[R];
    bin_frame(f, HCW_SET_STATE, zero, 1000);
    size_t n = total - (frame_len(f) - 1000);
    bin_frame(f, HCW_SET_STATE, zero, n);
    assert_int_equal(frame_len(f), total);
    return n;
}

/* The sizes of the echo's frames, many of them so that the rings wrap. */
static size_t echo_size(size_t round, size_t max)
{
    static const size_t first[] = {0, 1, 100, 4000};
    if (round < sizeof first / sizeof first[0])
        return first[round];
    if (round == 4)
        return max;
    return (round * 7919) % (max + 1);
}

#define ROUNDS 3000

/* Take one frame from a lane (or any shared-memory link), waiting in
 * hcw_link_wait_any: 1, or what hcw_link_try_recv said otherwise (-1),
 * or -2 after 10 s without one. */
static int recv_wait(hcw_link *l, hcw_in *in, char *err, size_t errlen)
{
    int64_t give_up = now_ns() + 10000000000LL;
    for (;;) {
        int rc = hcw_link_try_recv(l, in, err, errlen);
        if (rc != 0)
            return rc;
        if (now_ns() > give_up)
            return -2;
        bool ready;
        if (hcw_link_wait_any(&l, 1, now_ns() + 1000000000LL, &ready) < 0)
            return -1;
    }
}

/* Echo every bin frame back as a REPLY until DONE: 0, or why not. */
static int echo_back(hcw_link *l, hcw_frame *f, hcw_in *in)
{
    char err[160];
    for (;;) {
        if (recv_wait(l, in, err, sizeof err) != 1)
            return 10;
        if (in->op == HCW_DONE)
            return 0;
        hw_bytes b;
        if (in->op != HCW_SET_STATE || !hcw_get_bin(in, &b))
            return 11;
        bin_frame(f, HCW_REPLY, b.ptr, b.len);
        hw_bytes_fini(&b);
        /* one frame in flight: there is room */
        if (hcw_link_try_send(l, f) != 1)
            return 12;
    }
}

/* Send ROUNDS frames and check each echo, then DONE: 0, or why not. */
static int ping(hcw_link *l, hcw_frame *f, hcw_in *in, size_t max)
{
    char err[160];
    uint8_t *buf = malloc(max);
    if (buf == NULL)
        return 20;
    int rc = 0;
    for (size_t round = 0; rc == 0 && round < ROUNDS; round++) {
        size_t n = echo_size(round, max);
        ut_fill(buf, n, (uint32_t)round);
        bin_frame(f, HCW_SET_STATE, buf, n);
        hw_bytes b = {0};
        if (hcw_link_try_send(l, f) != 1)
            rc = 21;
        else if (recv_wait(l, in, err, sizeof err) != 1)
            rc = 22;
        else if (in->op != HCW_REPLY || !hcw_get_bin(in, &b) || b.len != n ||
                 (n && memcmp(b.ptr, buf, n) != 0))
            rc = 23;
        hw_bytes_fini(&b);
    }
    free(buf);
    hcw_frame_begin(f, HCW_DONE, 1);
    hcw_put_i64(f, 0);
    if (rc == 0 && hcw_link_try_send(l, f) != 1)
        rc = 24;
    return rc;
}

/* The worker of the echo: takes its lane from the socket, as side 1,
 * echoes the node's side, then pings it.  Exits 0 if all went well. */
static _Noreturn void echo_worker(int sock, size_t max)
{
    char err[200];
    struct pollfd pf = {.fd = sock, .events = POLLIN};
    if (poll(&pf, 1, 10000) != 1)
        _exit(2);
    hcw_lane *lane = hcw_lane_receive(sock, NUM, 1, err, sizeof err);
    if (lane == NULL) {
        fprintf(stderr, "echo worker: %s\n", err);
        _exit(3);
    }
    hcw_link *l = hcw_lane_link(lane);
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    int rc = echo_back(l, f, &in);
    if (rc == 0)
        rc = ping(l, f, &in, max);
    hcw_in_fini(&in);
    hcw_frame_free(f);
    hcw_lane_free(lane);
    _exit(rc);
}

static int child_status(pid_t pid)
{
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

/* A SOCK_SEQPACKET pair whose sv[0], the node's, is shut for reading. */
static void lane_socket(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    assert_int_equal(shutdown(sv[0], SHUT_RD), 0);
}

static void echo_both_ways(void **state)
{
    (void)state;
    int sv[2];
    lane_socket(sv);
    hcw_frame *f = hcw_frame_new();
    /* the longest payload whose frame a lane takes */
    size_t max = payload_for(f, HCW_LANE_MAX_FRAME);
    int mfd = -1;
    hcw_lane *lane = hcw_lane_new(NUM, &mfd);
    assert_non_null(lane);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        echo_worker(sv[1], max);
    }
    close(sv[1]);
    /* the node hands the lane over, then plays side 0 itself */
    assert_int_equal(hcw_lane_send(sv[0], NUM, mfd), 0);
    close(mfd);
    hcw_link *l = hcw_lane_view(lane, 0);
    assert_non_null(l);
    assert_null(hcw_lane_link(lane)); /* the node is neither side */
    hcw_in in;
    hcw_in_init(&in);
    assert_int_equal(ping(l, f, &in, max), 0);
    assert_int_equal(echo_back(l, f, &in), 0);
    assert_int_equal(child_status(pid), 0);
    hcw_in_fini(&in);
    hcw_frame_free(f);
    hcw_lane_free(lane);
    close(sv[0]);
}

/* A lane for the tests in one process: the node's, a raw mapping of the
 * same memory to scribble on, and both workers' sides. */
typedef struct lanes {
    hcw_lane *node, *w0, *w1;
    uint8_t *m;
} lanes;

static void lanes_open(lanes *t)
{
    char err[200];
    int fd = -1;
    t->node = hcw_lane_new(NUM, &fd);
    assert_non_null(t->node);
    t->m = mmap(NULL, MAP_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(t->m != MAP_FAILED);
    t->w0 = hcw_lane_map(dup(fd), NUM, 0, err, sizeof err);
    assert_non_null(t->w0);
    t->w1 = hcw_lane_map(fd, NUM, 1, err, sizeof err);
    assert_non_null(t->w1);
}

static void lanes_close(lanes *t)
{
    hcw_lane_free(t->w0);
    hcw_lane_free(t->w1);
    hcw_lane_free(t->node);
    munmap(t->m, MAP_BYTES);
}

static void put32(uint8_t *p, uint32_t v)
{
    atomic_store((_Atomic uint32_t *)(void *)p, v);
}

/* What side 1 makes of ring 0 as the raw mapping has it now. */
static int read_ring0(lanes *t, char *err, size_t errlen)
{
    hcw_in in;
    hcw_in_init(&in);
    err[0] = '\0';
    errno = 0;
    int rc = hcw_link_try_recv(hcw_lane_link(t->w1), &in, err, errlen);
    int e = errno;
    hcw_in_fini(&in);
    errno = e;
    return rc;
}

/* A frame of `len` declared bytes at the start of ring 0, `have` of them
 * published. */
static void scribble_frame(lanes *t, uint32_t len, const uint8_t *body,
                           uint32_t have)
{
    put32(t->m + DATA0, len);
    if (have)
        memcpy(t->m + DATA0 + 4, body, have);
    put32(t->m + TAIL0, 4 + have);
}

static void hostile_positions_and_lengths(void **state)
{
    (void)state;
    char err[200];
    bool ready[2];
    lanes t;

    /* more than the ring holds */
    lanes_open(&t);
    put32(t.m + TAIL0, R + 1);
    assert_int_equal(read_ring0(&t, err, sizeof err), -1);
    assert_int_equal(errno, EPROTO);
    assert_non_null(strstr(err, "positions are impossible"));
    /* the wait reports it (for the reader to refuse), without sleeping */
    hcw_link *l1 = hcw_lane_link(t.w1);
    assert_int_equal(hcw_link_wait_any(&l1, 1, now_ns() + 5000000000LL, ready),
                     1);
    assert_true(ready[0]);
    /* a writer whose reader's head is past what it wrote */
    put32(t.m + HEAD0, 5);
    hcw_frame *f = hcw_frame_new();
    bin_frame(f, HCW_SET_STATE, (const uint8_t *)"x", 1);
    errno = 0;
    assert_int_equal(hcw_link_try_send(hcw_lane_link(t.w0), f), -1);
    assert_int_equal(errno, EPROTO);
    /* side 0's inbound ring, alike */
    put32(t.m + TAIL1, 0x80000000u);
    hcw_in in;
    hcw_in_init(&in);
    assert_int_equal(
        hcw_link_try_recv(hcw_lane_link(t.w0), &in, err, sizeof err), -1);
    assert_non_null(strstr(err, "lane: the ring's positions are impossible"));
    hcw_in_fini(&in);
    lanes_close(&t);

    /* a length over a quarter of the ring: one byte over, and far over */
    static const uint32_t longs[] = {HCW_LANE_MAX_FRAME - 4 + 1, R - 4,
                                     0xfffffff0u};
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++) {
        lanes_open(&t);
        scribble_frame(&t, longs[i], NULL, 0);
        assert_int_equal(read_ring0(&t, err, sizeof err), -1);
        assert_int_equal(errno, EMSGSIZE);
        char want[96];
        snprintf(want, sizeof want, "lane: a frame of %u bytes, over the limit",
                 longs[i]);
        assert_non_null(strstr(err, want));
        lanes_close(&t);
    }

    /* the start of a frame: nothing yet, and the wait is not woken by it */
    lanes_open(&t);
    uint8_t body[100] = {0x91, 0x06}; /* [6] ... */
    scribble_frame(&t, sizeof body, body, 50);
    assert_int_equal(read_ring0(&t, err, sizeof err), 0);
    l1 = hcw_lane_link(t.w1);
    int64_t t0 = now_ns();
    assert_int_equal(hcw_link_wait_any(&l1, 1, t0 + 50000000, ready), 0);
    assert_false(ready[0]);
    assert_true(now_ns() - t0 >= 45000000);
    lanes_close(&t);

    /* bodies that do not decode, or would make a trusting decoder
     * believe a declared length: refused by the untrusted decoder */
    static const uint8_t bad[][5] = {
        {0xc1, 0xc1, 0xc1},             /* never used in msgpack */
        {0xdd, 0xff, 0xff, 0xff, 0xff}, /* an array of 2^32 - 1 */
        {0x91, 0xdb, 0xff, 0xff, 0xff}, /* [str of 4 GiB] */
    };
    static const uint32_t bad_len[] = {3, 5, 5};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lanes_open(&t);
        scribble_frame(&t, bad_len[i], bad[i], bad_len[i]);
        assert_int_equal(read_ring0(&t, err, sizeof err), -1);
        assert_non_null(strstr(err, "not one well-formed msgpack value"));
        lanes_close(&t);
    }

    /* and a well-formed frame scribbled the same way is read */
    lanes_open(&t);
    size_t n;
    const uint8_t *p = hcw_frame_finish(f, &n);
    scribble_frame(&t, (uint32_t)(n - 4), p + 4, (uint32_t)(n - 4));
    hcw_in_init(&in);
    assert_int_equal(
        hcw_link_try_recv(hcw_lane_link(t.w1), &in, err, sizeof err), 1);
    assert_int_equal(in.op, HCW_SET_STATE);
    lanes_close(&t);
    hcw_in_fini(&in);
    hcw_frame_free(f);
}

static void full_ring_refused(void **state)
{
    (void)state;
    lanes t;
    lanes_open(&t);
    hcw_link *l0 = hcw_lane_link(t.w0), *l1 = hcw_lane_link(t.w1);
    hcw_frame *f = hcw_frame_new();
    /* over a quarter of the ring: never, even into an empty ring */
    payload_for(f, HCW_LANE_MAX_FRAME + 1);
    assert_int_equal(hcw_link_try_send(l0, f), 0);
    payload_for(f, HCW_LANE_MAX_FRAME);
    assert_int_equal(hcw_link_try_send(l0, f), 1);
    /* a frame that must wait is refused: no blocking send on a lane */
    errno = 0;
    assert_int_equal(hcw_link_send(l0, f), -1);
    assert_int_equal(errno, ENOTSUP);
    /* fill the ring, nobody reading: each send returns at once */
    uint8_t buf[1000];
    ut_fill(buf, sizeof buf, 1);
    bin_frame(f, HCW_SET_STATE, buf, sizeof buf);
    size_t each = frame_len(f), sent = HCW_LANE_MAX_FRAME;
    int64_t t0 = now_ns();
    int rc;
    while ((rc = hcw_link_try_send(l0, f)) == 1)
        sent += each;
    assert_int_equal(rc, 0);
    assert_true(sent <= R && sent + each > R);
    int64_t t1 = now_ns();
    assert_int_equal(hcw_link_try_send(l0, f), 0);
    assert_true(now_ns() - t1 < 20000000);
    assert_true(t1 - t0 < 1000000000);
    /* the reader takes one (the large one): room again */
    hcw_in in;
    hcw_in_init(&in);
    char err[160];
    assert_int_equal(hcw_link_try_recv(l1, &in, err, sizeof err), 1);
    assert_int_equal(hcw_link_try_send(l0, f), 1);
    /* a read on a lane never waits either: its other ring is empty */
    assert_int_equal(hcw_link_recv(l0, &in, err, sizeof err), 0);
    hcw_in_fini(&in);
    hcw_frame_free(f);
    lanes_close(&t);
}

/* The multi-ring wait's peer: on each command byte from `cmd`, sleep 30
 * ms, then write a frame on the node's link ('N'), on the lane's ring 1
 * ('L'), or close the lane ('C'); 'Q' ends it. */
static _Noreturn void poke_peer(int cmd, hcw_link *node_end, hcw_lane *lane)
{
    hcw_frame *f = hcw_frame_new();
    bin_frame(f, HCW_SET_STATE, (const uint8_t *)"poke", 4);
    for (;;) {
        char c;
        if (read(cmd, &c, 1) != 1)
            _exit(2);
        if (c == 'Q')
            break;
        struct timespec ts = {0, 30000000};
        nanosleep(&ts, NULL);
        int rc = 1;
        if (c == 'N')
            rc = hcw_link_send(node_end, f) == 0;
        else if (c == 'L')
            rc = hcw_link_try_send(hcw_lane_view(lane, 1), f);
        else if (c == 'C')
            hcw_lane_set_state(lane, HCW_LANE_STATE_CLOSING);
        if (rc != 1)
            _exit(3);
    }
    hcw_frame_free(f);
    _exit(0);
}

static void wait_over_rings(uint32_t spin_us)
{
    char err[160];
    int lfd = -1;
    hcw_link *node_end = hcw_link_shm_new(spin_us, &lfd);
    assert_non_null(node_end);
    hcw_link *wend = hcw_link_shm_open(lfd, err, sizeof err);
    assert_non_null(wend);
    int mfd = -1;
    hcw_lane *lane = hcw_lane_new(NUM, &mfd);
    assert_non_null(lane);
    hcw_lane *w0 = hcw_lane_map(mfd, NUM, 0, err, sizeof err);
    assert_non_null(w0);
    int cmd[2];
    assert_int_equal(pipe(cmd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(cmd[1]);
        poke_peer(cmd[0], node_end, lane);
    }
    close(cmd[0]);
    hcw_link *rings[2] = {wend, hcw_lane_link(w0)};
    hcw_in in;
    hcw_in_init(&in);
    bool ready[2];
    static const char order[] = "NLLNNL";
    for (size_t i = 0; order[i]; i++) {
        size_t want = order[i] == 'N' ? 0 : 1;
        assert_int_equal(write(cmd[1], &order[i], 1), 1);
        int64_t t0 = now_ns(), deadline = t0 + 5000000000LL;
        int k;
        /* a spurious wake-up returns 0 early: wait again */
        while ((k = hcw_link_wait_any(rings, 2, deadline, ready)) == 0 &&
               now_ns() < deadline)
            ;
        assert_int_equal(k, 1);
        assert_true(ready[want]);
        assert_false(ready[1 - want]);
        assert_true(now_ns() - t0 < 4000000000LL);
        assert_int_equal(hcw_link_try_recv(rings[want], &in, err, sizeof err),
                         1);
        assert_int_equal(in.op, HCW_SET_STATE);
    }
    /* nothing comes: it returns at its deadline, not before, not long
     * after */
    int64_t t0 = now_ns();
    assert_int_equal(hcw_link_wait_any(rings, 2, t0 + 100000000, ready), 0);
    int64_t took = now_ns() - t0;
    assert_true(took >= 99000000);
    assert_true(took < 2000000000);
    /* a deadline already passed: one look, no sleep */
    t0 = now_ns();
    assert_int_equal(hcw_link_wait_any(rings, 2, t0 - 1, ready), 0);
    assert_true(now_ns() - t0 < 50000000);
    /* the node closing the lane wakes its reader, which finds no frame
     * and the state changed */
    assert_int_equal(hcw_lane_state(w0), HCW_LANE_STATE_OPEN);
    assert_int_equal(write(cmd[1], "C", 1), 1);
    t0 = now_ns();
    while (hcw_lane_state(w0) == HCW_LANE_STATE_OPEN &&
           now_ns() - t0 < 5000000000LL)
        assert_int_equal(hcw_link_wait_any(rings, 2, t0 + 5000000000LL, ready),
                         0);
    assert_int_equal(hcw_lane_state(w0), HCW_LANE_STATE_CLOSING);
    assert_true(now_ns() - t0 < 4000000000LL);
    assert_int_equal(write(cmd[1], "Q", 1), 1);
    assert_int_equal(child_status(pid), 0);
    close(cmd[1]);
    hcw_in_fini(&in);
    hcw_lane_free(w0);
    hcw_lane_free(lane);
    hcw_link_free(wend);
    hcw_link_free(node_end);
}

static void wait_over_rings_sleeping(void **state)
{
    (void)state;
    wait_over_rings(0); /* straight to futex_waitv */
}

static void wait_over_rings_spinning(void **state)
{
    (void)state;
    wait_over_rings(200);
}

static void wait_refuses(void **state)
{
    (void)state;
    lanes t;
    lanes_open(&t);
    hcw_link *many[HCW_LINK_WAIT_MAX + 1];
    bool ready[HCW_LINK_WAIT_MAX + 1];
    for (size_t i = 0; i <= HCW_LINK_WAIT_MAX; i++)
        many[i] = hcw_lane_link(t.w1);
    errno = 0;
    assert_int_equal(hcw_link_wait_any(many, 0, now_ns(), ready), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(
        hcw_link_wait_any(many, HCW_LINK_WAIT_MAX + 1, now_ns(), ready), -1);
    assert_int_equal(errno, EINVAL);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    hcw_link *s = hcw_link_socket(sv[0]);
    many[1] = s;
    assert_int_equal(hcw_link_wait_any(many, 2, now_ns(), ready), -1);
    assert_int_equal(errno, EINVAL);
    hcw_link_free(s);
    close(sv[1]);
    /* the state word: what is not a state reads as closed */
    assert_int_equal(hcw_lane_state(t.w1), HCW_LANE_STATE_OPEN);
    put32(t.m + 16, 77);
    assert_int_equal(hcw_lane_state(t.w1), HCW_LANE_STATE_CLOSED);
    hcw_lane_set_state(t.node, HCW_LANE_STATE_CLOSING);
    assert_int_equal(hcw_lane_state(t.w0), HCW_LANE_STATE_CLOSING);
    lanes_close(&t);
}

/* ----------------------------------------------------- the descriptor */

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* A memfd of `size` bytes whose header says magic, layout, ring size,
 * number. */
static int fake_lane(size_t size, uint32_t magic, uint32_t layout,
                     uint32_t ring, uint32_t number)
{
    int fd = memfd_create("fake-lane", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    uint32_t h[4] = {magic, layout, ring, number};
    if (size >= sizeof h)
        assert_int_equal(pwrite(fd, h, sizeof h, 0), (ssize_t)sizeof h);
    return fd;
}

/* Send fd as lane `number` and have the worker's end refuse it with a
 * sentence holding `want`; the descriptor that came is closed. */
static void refused(int sv[2], uint32_t number, int fd, uint32_t expect,
                    const char *want)
{
    char err[200] = "";
    assert_int_equal(hcw_lane_send(sv[0], number, fd), 0);
    close(fd);
    int before = open_fds();
    assert_null(hcw_lane_receive(sv[1], expect, 1, err, sizeof err));
    if (strstr(err, want) == NULL)
        fail_msg("refused with \"%s\", not \"%s\"", err, want);
    assert_int_equal(open_fds(), before);
}

static void descriptor_passing(void **state)
{
    (void)state;
    char err[200];
    int sv[2];
    lane_socket(sv);
    /* the worker cannot queue anything for the node */
    errno = 0;
    assert_int_equal(send(sv[1], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT), -1);
    assert_int_equal(errno, EPIPE);
    /* nothing waits: refused at once */
    int64_t t0 = now_ns();
    assert_null(hcw_lane_receive(sv[1], NUM, 1, err, sizeof err));
    assert_non_null(strstr(err, "no message on fd"));
    assert_true(now_ns() - t0 < 100000000);

    /* a lane, sealed, handed over and mapped; its descriptor closed */
    int mfd = -1;
    hcw_lane *node = hcw_lane_new(NUM, &mfd);
    assert_non_null(node);
    assert_int_equal(fcntl(mfd, F_GET_SEALS),
                     F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    assert_int_not_equal(ftruncate(mfd, 4096), 0);
    assert_int_equal(hcw_lane_send(sv[0], NUM, mfd), 0);
    close(mfd);
    int before = open_fds();
    hcw_lane *w = hcw_lane_receive(sv[1], NUM, 1, err, sizeof err);
    if (w == NULL)
        fail_msg("%s", err);
    assert_int_equal(open_fds(), before);
    assert_int_equal(hcw_lane_number(w), NUM);
    assert_int_equal(hcw_lane_state(w), HCW_LANE_STATE_OPEN);
    hcw_frame *f = hcw_frame_new();
    bin_frame(f, HCW_SET_STATE, (const uint8_t *)"hi", 2);
    assert_int_equal(hcw_link_try_send(hcw_lane_view(node, 0), f), 1);
    hcw_in in;
    hcw_in_init(&in);
    assert_int_equal(hcw_link_try_recv(hcw_lane_link(w), &in, err, sizeof err),
                     1);
    assert_int_equal(in.op, HCW_SET_STATE);
    hcw_in_fini(&in);
    hcw_frame_free(f);
    hcw_lane_free(w);

    /* another lane's message, or memory of another lane */
    int fd = -1;
    hcw_lane *other = hcw_lane_new(NUM + 1, &fd);
    refused(sv, NUM + 1, fd, NUM, "the message of lane 8");
    hcw_lane_free(other);
    other = hcw_lane_new(NUM + 1, &fd);
    refused(sv, NUM, fd, NUM, "the memory is lane 8's");
    hcw_lane_free(other);
    /* a wrong header, or a size the header does not make */
    refused(sv, NUM, fake_lane(MAP_BYTES, 0x6b6e6c77u, 3, R, NUM), NUM,
            "not a lane of layout 3");
    refused(sv, NUM, fake_lane(MAP_BYTES, 0x656e616cu, 2, R, NUM), NUM,
            "not a lane of layout 3"); /* the layout before */
    refused(sv, NUM, fake_lane(MAP_BYTES + 4096, 0x656e616cu, 3, R, NUM), NUM,
            "rings of 65536 bytes do not make a mapping of");
    refused(sv, NUM, fake_lane(4096 + 6 * 4096, 0x656e616cu, 3, 3 * 4096, NUM),
            NUM, "rings of 12288 bytes");
    refused(sv, NUM, fake_lane(100, 0x656e616cu, 3, R, NUM), NUM,
            "not a lane's memory (100 bytes)");
    /* a descriptor that is not memory at all */
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    close(pp[1]);
    refused(sv, NUM, pp[0], NUM, "not a lane's memory");

    /* no descriptor, or two */
    uint8_t num[4] = {NUM, 0, 0, 0};
    assert_int_equal(send(sv[0], num, 4, 0), 4);
    assert_null(hcw_lane_receive(sv[1], NUM, 1, err, sizeof err));
    assert_non_null(strstr(err, "not one descriptor"));
    int a = -1, b = -1;
    hcw_lane *l2 = hcw_lane_new(NUM, &a);
    assert_non_null(l2);
    b = dup(a);
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } cm;
    memset(&cm, 0, sizeof cm);
    struct iovec iov = {.iov_base = num, .iov_len = 4};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = cm.buf,
                         .msg_controllen = sizeof cm.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int two[2] = {a, b};
    memcpy(CMSG_DATA(c), two, sizeof two);
    assert_int_equal(sendmsg(sv[0], &msg, 0), 4);
    close(a);
    close(b);
    before = open_fds();
    assert_null(hcw_lane_receive(sv[1], NUM, 1, err, sizeof err));
    assert_non_null(strstr(err, "not one descriptor"));
    assert_int_equal(open_fds(), before);
    hcw_lane_free(l2);
    /* a longer message */
    uint8_t eight[8] = {NUM};
    assert_int_equal(send(sv[0], eight, 8, 0), 8);
    assert_null(hcw_lane_receive(sv[1], NUM, 1, err, sizeof err));
    assert_non_null(strstr(err, "not 4 bytes"));

    /* the node's end closed */
    close(sv[0]);
    assert_null(hcw_lane_receive(sv[1], NUM, 1, err, sizeof err));
    assert_non_null(strstr(err, "the node closed the socket"));
    close(sv[1]);
    hcw_lane_free(node);
}

static uint32_t word_at(const uint8_t *m, size_t off)
{
    uint32_t v;
    memcpy(&v, m + off, 4);
    return v;
}

/* Each direction's request counters and `full` flag (docs/lane-design.md
 * §6): written by one side, read by the other and by the node, at the
 * header's offsets, apart from the other words; the backlog the node
 * counts is clamped. */
static void direction_counters(void **state)
{
    lanes t;
    lanes_open(&t);
    /* side 1 writes ring 1 (direction 1), side 0 takes from it */
    hcw_lane_set_req_written(t.w1, 1, 5);
    hcw_lane_set_req_taken(t.w0, 1, 2);
    hcw_lane_set_last_seq(t.node, 1, 77);
    hcw_lane_set_read_seq(t.w0, 1, 66);
    assert_int_equal(hcw_lane_req_written(t.node, 1), 5);
    assert_int_equal(hcw_lane_req_taken(t.node, 1), 2);
    assert_int_equal(word_at(t.m, 384 + 8), 5);
    assert_int_equal(word_at(t.m, 512), 2);
    assert_int_equal(hcw_lane_last_seq(t.w1, 1), 77);
    assert_int_equal(hcw_lane_read_seq(t.w1, 1), 66);
    /* the other direction is untouched */
    assert_int_equal(hcw_lane_req_written(t.node, 0), 0);
    assert_int_equal(hcw_lane_req_taken(t.node, 0), 0);
    assert_int_equal(hcw_lane_backlog(t.node, 0, 16), 0);
    /* what waits, clamped to [0, quota] */
    assert_int_equal(hcw_lane_backlog(t.node, 1, 16), 3);
    assert_int_equal(hcw_lane_backlog(t.node, 1, 2), 2);
    hcw_lane_set_req_taken(t.w0, 1, 9); /* taken ahead of written */
    assert_int_equal(hcw_lane_backlog(t.node, 1, 16), 0);
    /* counts wrap */
    hcw_lane_set_req_written(t.w1, 1, 3);
    hcw_lane_set_req_taken(t.w0, 1, UINT32_MAX - 1);
    assert_int_equal(hcw_lane_backlog(t.node, 1, 16), 5);
    /* a scribbled word is only as bad as the quota */
    hcw_lane_set_req_taken(t.w0, 1, 0);
    uint32_t huge = 0x7fffffff;
    memcpy(t.m + 384 + 8, &huge, 4);
    assert_int_equal(hcw_lane_backlog(t.node, 1, 16), 16);
    /* the `full` flag: the node raises it, the writer reads it */
    assert_false(hcw_lane_full(t.w0, 0));
    hcw_lane_set_full(t.node, 0, true);
    assert_true(hcw_lane_full(t.w0, 0));
    assert_int_equal(word_at(t.m, 320 + 12), 1);
    assert_false(hcw_lane_full(t.w1, 1));
    hcw_lane_set_full(t.node, 0, false);
    assert_false(hcw_lane_full(t.w0, 0));
    /* any word but 0 is up */
    uint32_t odd = 0x100;
    memcpy(t.m + 384 + 12, &odd, 4);
    assert_true(hcw_lane_full(t.w1, 1));
    lanes_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(echo_both_ways),
        cmocka_unit_test(hostile_positions_and_lengths),
        cmocka_unit_test(full_ring_refused),
        cmocka_unit_test(wait_over_rings_sleeping),
        cmocka_unit_test(wait_over_rings_spinning),
        cmocka_unit_test(wait_refuses),
        cmocka_unit_test(descriptor_passing),
        cmocka_unit_test(direction_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
