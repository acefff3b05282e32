/* The links that carry worker frames (src/worker/link.c): frames of every
 * size through the shared-memory rings to a forked peer and back (with
 * and without spinning, many wraps of each ring, frames several times the
 * ring's size), the memfd sealed against shrinking, a peer that writes
 * impossible ring positions, a wait given up by the watch function (read
 * and write), a fd that is no link, the socket link, the node's wait with
 * kicks, the stream read of the wasm host's addon (hcw_link_read_some),
 * and the watch of a CPU taken by other work (hcw_link_cpu_watch). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_helpers.h"

#include "worker/link.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The peer: echo every frame's one bin argument back as a REPLY until
 * DONE; exit 0 if all went well. */
static _Noreturn void echo_peer(int fd)
{
    char err[160];
    hcw_link *l = hcw_link_shm_open(fd, err, sizeof err);
    if (l == NULL)
        _exit(2);
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    for (;;) {
        if (hcw_link_recv(l, &in, err, sizeof err) != 1)
            _exit(3);
        if (in.op == HCW_DONE)
            break;
        hw_bytes b;
        if (in.op != HCW_SET_STATE || !hcw_get_bin(&in, &b))
            _exit(4);
        hcw_frame_begin(f, HCW_REPLY, 1);
        hcw_put_bin(f, b.ptr, b.len);
        hw_bytes_fini(&b);
        if (hcw_link_send(l, f) != 0)
            _exit(5);
    }
    hcw_in_fini(&in);
    hcw_frame_free(f);
    hcw_link_free(l);
    _exit(0);
}

static pid_t start_peer(hcw_link **node, uint32_t spin_us)
{
    int fd = -1;
    *node = hcw_link_shm_new(spin_us, &fd);
    assert_non_null(*node);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        echo_peer(fd);
    close(fd);
    return pid;
}

static int peer_status(pid_t pid)
{
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static void echo_sizes(uint32_t spin_us, bool yield)
{
    hcw_link *l;
    pid_t pid = start_peer(&l, spin_us);
    hcw_link_spin_yield(l, yield);
    static const size_t sizes[] = {0,
                                   1,
                                   100,
                                   HCW_LINK_RING_BYTES - 64,
                                   HCW_LINK_RING_BYTES,
                                   3 * HCW_LINK_RING_BYTES + 7,
                                   1u << 20};
    size_t max = 1u << 20;
    uint8_t *buf = malloc(max);
    assert_non_null(buf);
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    char err[160] = "";
    /* every size, then many small frames: the rings wrap many times */
    for (size_t round = 0; round < 2000; round++) {
        size_t n = round < sizeof sizes / sizeof sizes[0]
                       ? sizes[round]
                       : (round * 7919) % 3000;
        ut_fill(buf, n, (uint32_t)round);
        hcw_frame_begin(f, HCW_SET_STATE, 1);
        hcw_put_bin(f, buf, n);
        assert_int_equal(hcw_link_send(l, f), 0);
        assert_int_equal(hcw_link_recv(l, &in, err, sizeof err), 1);
        assert_int_equal(in.op, HCW_REPLY);
        hw_bytes b;
        assert_true(hcw_get_bin(&in, &b));
        assert_int_equal(b.len, n);
        if (n)
            assert_memory_equal(b.ptr, buf, n);
        hw_bytes_fini(&b);
    }
    hcw_frame_begin(f, HCW_DONE, 1);
    hcw_put_i64(f, 0);
    assert_int_equal(hcw_link_send(l, f), 0);
    assert_int_equal(peer_status(pid), 0);
    hcw_in_fini(&in);
    hcw_frame_free(f);
    free(buf);
    hcw_link_free(l);
}

static void echo_spinning(void **state)
{
    (void)state;
    echo_sizes(50, true);
}

/* The same with the node's end spinning without giving up its CPU. */
static void echo_spinning_no_yield(void **state)
{
    (void)state;
    echo_sizes(50, false);
}

static void echo_sleeping(void **state)
{
    (void)state;
    echo_sizes(0, true);
}

/* The worker cannot shrink (or grow) the mapping under the node. */
static void sealed(void **state)
{
    (void)state;
    int fd = -1;
    hcw_link *l = hcw_link_shm_new(0, &fd);
    assert_non_null(l);
    errno = 0;
    assert_int_equal(ftruncate(fd, 0), -1);
    assert_int_equal(errno, EPERM);
    close(fd);
    hcw_link_free(l);
}

/* A peer that writes impossible positions into its half: the reader
 * refuses them with a sentence, and a writer too. */
static void hostile_positions(void **state)
{
    (void)state;
    int fd = -1;
    hcw_link *l = hcw_link_shm_new(0, &fd);
    assert_non_null(l);
    uint8_t *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    /* the calls ring's tail (the worker's to write) at offset 64 */
    _Atomic uint32_t *calls_tail = (_Atomic uint32_t *)(map + 64);
    atomic_store(calls_tail, HCW_LINK_RING_BYTES + 1);
    hcw_in in;
    hcw_in_init(&in);
    char err[160] = "";
    errno = 0;
    assert_int_equal(hcw_link_recv(l, &in, err, sizeof err), -1);
    assert_int_equal(errno, EPROTO);
    assert_non_null(strstr(err, "impossible"));
    /* the replies ring's head (the worker's to write) at 64 + 128 + 64 */
    _Atomic uint32_t *replies_head = (_Atomic uint32_t *)(map + 256);
    atomic_store(replies_head, 12345);
    hcw_frame *f = hcw_frame_new();
    hcw_frame_begin(f, HCW_CLEAR_STATE, 0);
    errno = 0;
    assert_int_equal(hcw_link_send(l, f), -1);
    assert_int_equal(errno, EPROTO);
    hcw_frame_free(f);
    munmap(map, 4096);
    close(fd);
    hcw_link_free(l);
}

static int watch_calls;

static bool give_up_after_two(void *ctx)
{
    (void)ctx;
    return ++watch_calls < 2;
}

/* Nobody writes: the read gives up when the watch says so; nobody reads:
 * a frame larger than the ring gives up the same way (EPIPE). */
static void watch_gives_up(void **state)
{
    (void)state;
    int fd = -1;
    hcw_link *l = hcw_link_shm_new(10, &fd);
    assert_non_null(l);
    hcw_link_watch(l, give_up_after_two, NULL);
    hcw_in in;
    hcw_in_init(&in);
    char err[160] = "";
    watch_calls = 0;
    assert_int_equal(hcw_link_recv(l, &in, err, sizeof err), 0);
    assert_int_equal(watch_calls, 2);
    size_t n = 2 * HCW_LINK_RING_BYTES;
    uint8_t *big = calloc(1, n);
    assert_non_null(big);
    hcw_frame *f = hcw_frame_new();
    hcw_frame_begin(f, HCW_SET_STATE, 1);
    hcw_put_bin(f, big, n);
    watch_calls = 0;
    errno = 0;
    assert_int_equal(hcw_link_send(l, f), -1);
    assert_int_equal(errno, EPIPE);
    assert_int_equal(watch_calls, 2);
    free(big);
    hcw_frame_free(f);
    close(fd);
    hcw_link_free(l);
}

/* Delivering ahead: hcw_link_try_send writes a frame only when it fits
 * whole in the room there is (never waiting), the reader sees it pending,
 * and after reading, room is there again; a socket link sends ahead
 * what its socket takes at once, never part of a frame. */
static void try_send(void **state)
{
    (void)state;
    int fd = -1;
    hcw_link *node = hcw_link_shm_new(0, &fd);
    assert_non_null(node);
    char err[160] = "";
    hcw_link *worker = hcw_link_shm_open(dup(fd), err, sizeof err);
    assert_non_null(worker);
    assert_true(hcw_link_is_shm(node));
    assert_false(hcw_link_pending(worker));
    uint8_t body[1000];
    ut_fill(body, sizeof body, 7);
    hcw_frame *f = hcw_frame_new();
    size_t sent = 0;
    for (;;) {
        hcw_frame_begin(f, HCW_DELIVER, 1);
        hcw_put_bin(f, body, sizeof body);
        int r = hcw_link_try_send(node, f);
        assert_true(r == 0 || r == 1);
        if (r == 0)
            break;
        sent++;
    }
    /* as many whole frames as the ring holds, and nothing of the next */
    size_t one = 4 + 1 + 1 + 3 + sizeof body;
    assert_int_equal(sent, HCW_LINK_RING_BYTES / one);
    assert_true(hcw_link_pending(worker));
    hcw_in in;
    hcw_in_init(&in);
    for (size_t i = 0; i < sent; i++) {
        assert_int_equal(hcw_link_recv(worker, &in, err, sizeof err), 1);
        assert_int_equal(in.op, HCW_DELIVER);
        hw_bytes b;
        assert_true(hcw_get_bin(&in, &b));
        assert_memory_equal(b.ptr, body, sizeof body);
        hw_bytes_fini(&b);
    }
    assert_false(hcw_link_pending(worker));
    hcw_frame_begin(f, HCW_DELIVER, 1);
    hcw_put_bin(f, body, sizeof body);
    assert_int_equal(hcw_link_try_send(node, f), 1);
    assert_int_equal(hcw_link_recv(worker, &in, err, sizeof err), 1);
    /* a frame larger than the ring never goes ahead */
    uint8_t *big = calloc(1, HCW_LINK_RING_BYTES);
    assert_non_null(big);
    hcw_frame_begin(f, HCW_DELIVER, 1);
    hcw_put_bin(f, big, HCW_LINK_RING_BYTES);
    assert_int_equal(hcw_link_try_send(node, f), 0);
    assert_false(hcw_link_pending(worker));
    free(big);
    /* the worker's head put where it cannot be: a protocol error, once
     * the node looks at it again (when the room it knew of is used up;
     * until then it writes only where the last good head said it may) */
    uint8_t *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    atomic_store((_Atomic uint32_t *)(map + 256), 0x80000000u);
    hcw_frame_begin(f, HCW_DELIVER, 1);
    hcw_put_bin(f, body, 10);
    errno = 0;
    int rc;
    size_t more = 0;
    while ((rc = hcw_link_try_send(node, f)) == 1)
        more++;
    assert_int_equal(rc, -1);
    assert_int_equal(errno, EPROTO);
    assert_true(more < HCW_LINK_RING_BYTES / (4 + 1 + 1 + 2 + 10) + 1);
    munmap(map, 4096);
    /* a socket link: whole frames while the socket takes them at once,
     * then none (nothing half sent), and none over HCW_LINK_SOCKET_AHEAD */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    hcw_link *a = hcw_link_socket(sv[0]);
    hcw_link *b = hcw_link_socket(sv[1]);
    assert_false(hcw_link_is_shm(a));
    assert_false(hcw_link_pending(a));
    size_t socket_sent = 0;
    for (;;) {
        hcw_frame_begin(f, HCW_DELIVER, 1);
        hcw_put_bin(f, body, sizeof body);
        int r = hcw_link_try_send(a, f);
        assert_true(r == 0 || r == 1);
        if (r == 0)
            break;
        socket_sent++;
    }
    assert_true(socket_sent > 8);
    int queued = -1;
    assert_int_equal(ioctl(sv[1], FIONREAD, &queued), 0);
    assert_int_equal((size_t)queued, socket_sent * one);
    for (size_t i = 0; i < socket_sent; i++) {
        assert_int_equal(hcw_link_recv(b, &in, err, sizeof err), 1);
        assert_int_equal(in.op, HCW_DELIVER);
        hw_bytes got;
        assert_true(hcw_get_bin(&in, &got));
        assert_memory_equal(got.ptr, body, sizeof body);
        hw_bytes_fini(&got);
    }
    big = calloc(1, HCW_LINK_SOCKET_AHEAD);
    assert_non_null(big);
    hcw_frame_begin(f, HCW_DELIVER, 1);
    hcw_put_bin(f, big, HCW_LINK_SOCKET_AHEAD);
    assert_int_equal(hcw_link_try_send(a, f), 0);
    free(big);
    hcw_frame_begin(f, HCW_DELIVER, 1);
    hcw_put_bin(f, body, sizeof body);
    assert_int_equal(hcw_link_try_send(a, f), 1);
    assert_int_equal(hcw_link_recv(b, &in, err, sizeof err), 1);
    assert_int_equal(in.op, HCW_DELIVER);
    /* the peer gone: an error, not a signal */
    hcw_link_free(b);
    assert_int_equal(hcw_link_try_send(a, f), -1);
    assert_int_equal(errno, EPIPE);
    hcw_link_free(a);
    hcw_in_fini(&in);
    hcw_frame_free(f);
    close(fd);
    hcw_link_free(worker);
    hcw_link_free(node);
}

/* A file that is not a link is refused with a sentence. */
static void not_a_link(void **state)
{
    (void)state;
    char path[] = "/tmp/hyperc-link-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(ftruncate(fd, 8192), 0);
    char err[160] = "";
    assert_null(hcw_link_shm_open(fd, err, sizeof err));
    assert_non_null(strstr(err, "not a worker link"));
    close(fd);
}

/* The socket link: frames both ways, then the peer's close is a 0. */
static void socket_link(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    hcw_link *a = hcw_link_socket(sv[0]);
    hcw_link *b = hcw_link_socket(sv[1]);
    hcw_frame *f = hcw_frame_new();
    hcw_frame_begin(f, HCW_PRINT, 2);
    hcw_put_u64(f, 1);
    hcw_put_str(f, "hi");
    assert_int_equal(hcw_link_send(a, f), 0);
    hcw_in in;
    hcw_in_init(&in);
    char err[160] = "";
    assert_int_equal(hcw_link_recv(b, &in, err, sizeof err), 1);
    assert_int_equal(in.op, HCW_PRINT);
    hcw_link_free(a);
    assert_int_equal(hcw_link_recv(b, &in, err, sizeof err), 0);
    hcw_in_fini(&in);
    hcw_frame_free(f);
    hcw_link_free(b);
}

/* A socket link reads as many frames as have come at once: frames of
 * every size around its input buffer's, sent back to back by another
 * process, each come whole and in order; a stream that ends inside a
 * length is a broken frame. */
static void socket_link_batches(void **state)
{
    (void)state;
    static const size_t sizes[] = {0,     1,         100,          65531,
                                   65532, 64 * 1024, 200000,       1u << 20,
                                   3,     70000,     64 * 1024 - 9};
    const size_t nsizes = sizeof sizes / sizeof sizes[0];
    const size_t rounds = nsizes + 3000;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    uint8_t *buf = malloc(1u << 20);
    assert_non_null(buf);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[1]);
        hcw_link *a = hcw_link_socket(sv[0]);
        hcw_frame *f = hcw_frame_new();
        for (size_t round = 0; round < rounds; round++) {
            size_t n = round < nsizes ? sizes[round] : (round * 7919) % 300;
            ut_fill(buf, n, (uint32_t)round);
            hcw_frame_begin(f, HCW_SET_STATE, 1);
            hcw_put_bin(f, buf, n);
            if (hcw_link_send(a, f) != 0)
                _exit(1);
        }
        /* two bytes of a length, then the end */
        static const uint8_t half[2] = {9, 0};
        _exit(hcw_link_send_bytes(a, half, sizeof half) == 0 ? 0 : 1);
    }
    close(sv[0]);
    hcw_link *b = hcw_link_socket(sv[1]);
    hcw_in in;
    hcw_in_init(&in);
    char err[160] = "";
    uint8_t *want = malloc(1u << 20);
    assert_non_null(want);
    for (size_t round = 0; round < rounds; round++) {
        size_t n = round < nsizes ? sizes[round] : (round * 7919) % 300;
        assert_int_equal(hcw_link_recv(b, &in, err, sizeof err), 1);
        assert_int_equal(in.op, HCW_SET_STATE);
        hw_bytes got;
        assert_true(hcw_get_bin(&in, &got));
        assert_int_equal(got.len, n);
        ut_fill(want, n, (uint32_t)round);
        if (n)
            assert_memory_equal(got.ptr, want, n);
        hw_bytes_fini(&got);
    }
    assert_int_equal(peer_status(pid), 0);
    errno = 0;
    assert_int_equal(hcw_link_recv(b, &in, err, sizeof err), -1);
    assert_int_equal(errno, EPROTO);
    assert_non_null(strstr(err, "in a length"));
    hcw_in_fini(&in);
    free(want);
    free(buf);
    hcw_link_free(b);
}

/* hcw_link_wait on the node's end: 1 once bytes are in the calls ring (a
 * frame the worker wrote, read afterwards as usual); 0 after a kick, both
 * a kick before the wait and one from another thread while it sleeps; 0
 * at a deadline already past.  The deadlines of the kicked waits are a
 * minute away: a lost kick fails the test by the clock, not by a hang. */
static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *kick_later(void *arg)
{
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
    hcw_link_kick(arg);
    return NULL;
}

static void wait_and_kick(void **state)
{
    (void)state;
    int fd = -1;
    hcw_link *node = hcw_link_shm_new(0, &fd);
    assert_non_null(node);
    char err[160];
    hcw_link *worker = hcw_link_shm_open(fd, err, sizeof err);
    assert_non_null(worker);
    int64_t minute = 60LL * 1000000000;
    /* nothing there, a deadline passed */
    assert_int_equal(hcw_link_wait(node, mono_ns() - 1), 0);
    /* a kick before the wait */
    hcw_link_kick(node);
    int64_t t0 = mono_ns();
    assert_int_equal(hcw_link_wait(node, t0 + minute), 0);
    assert_true(mono_ns() - t0 < minute / 2);
    /* a kick while it sleeps */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, kick_later, node), 0);
    t0 = mono_ns();
    assert_int_equal(hcw_link_wait(node, t0 + minute), 0);
    assert_true(mono_ns() - t0 < minute / 2);
    pthread_join(th, NULL);
    /* a frame */
    hcw_frame *f = hcw_frame_new();
    hcw_frame_begin(f, HCW_DONE, 1);
    hcw_put_i64(f, 5);
    assert_int_equal(hcw_link_send(worker, f), 0);
    assert_int_equal(hcw_link_wait(node, mono_ns() + minute), 1);
    hcw_in in;
    hcw_in_init(&in);
    assert_int_equal(hcw_link_recv(node, &in, err, sizeof err), 1);
    assert_int_equal(in.op, HCW_DONE);
    hcw_in_fini(&in);
    hcw_frame_free(f);
    hcw_link_free(worker);
    hcw_link_free(node);
}

/* A writer that misses the reader's flag (its look at the flag passed
 * its own publication: link.c's writers look without a full fence): the
 * reader still sees the bytes after its short first sleep, not at its
 * deadline.  The miss is made here by moving tail in the mapping with no
 * wake-up the moment the reader's flag goes up.  Only a move within the
 * first sleep is such a miss (a real writer that comes later sees the
 * flag): a round whose move came later than half of it after the wait
 * began (a loaded machine) wakes the reader properly and does not count;
 * the test is skipped if no round counts.  The deadlines are a minute
 * away, so a missed look fails the test by the clock. */
typedef struct flag_poke {
    uint8_t *map;
    size_t tail_off; /* the ring's tail; its reader_sleeps follows it, its
                        head 64 bytes on */
    hcw_link *reader;
    _Atomic bool looking;  /* the poking thread runs */
    _Atomic int64_t began; /* when the reader's wait began */
    bool late;
} flag_poke;

static void *poke_after_flag(void *arg)
{
    flag_poke *p = arg;
    _Atomic uint32_t *tail = (_Atomic uint32_t *)(p->map + p->tail_off);
    _Atomic uint32_t *flag = tail + 1;
    _Atomic uint32_t *head = (_Atomic uint32_t *)(p->map + p->tail_off + 64);
    int64_t end = mono_ns() + 10LL * 1000000000;
    atomic_store(&p->looking, true);
    while (atomic_load(flag) == 0 && mono_ns() < end)
        ;
    uint32_t t = atomic_load(tail) + 1;
    atomic_store(tail, t);
    p->late = mono_ns() - atomic_load(&p->began) >
              HCW_LINK_FIRST_SLEEP_US * 1000LL / 2;
    atomic_store(head, t); /* the byte taken: the next round starts empty */
    if (p->late)
        hcw_link_kick(p->reader);
    return NULL;
}

/* One round on reader (its end of the ring at tail_off): whether it
 * counted; fails if the reader did not see the move in time. */
static bool missed_flag_round(uint8_t *map, size_t tail_off, hcw_link *reader,
                              bool any)
{
    int64_t minute = 60LL * 1000000000;
    flag_poke p = {map, tail_off, reader, false, INT64_MAX, false};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, poke_after_flag, &p), 0);
    while (!atomic_load(&p.looking))
        sched_yield();
    int64_t t0 = mono_ns();
    atomic_store(&p.began, t0);
    int rc;
    if (any) {
        bool ready = false;
        hcw_link *const links[1] = {reader};
        do
            rc = hcw_link_wait_any(links, 1, t0 + minute, &ready);
        while (rc == 0 && mono_ns() - t0 < minute);
    } else {
        rc = hcw_link_wait(reader, t0 + minute);
    }
    int64_t took = mono_ns() - t0;
    pthread_join(th, NULL);
    hcw_link_rx_resync(reader);
    if (p.late)
        return false;
    assert_int_equal(rc, 1);
    assert_true(took < 5LL * 1000000000);
    return true;
}

static void missed_flag(void **state)
{
    (void)state;
    int fd = -1;
    hcw_link *node = hcw_link_shm_new(0, &fd);
    assert_non_null(node);
    uint8_t *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    char err[160];
    hcw_link *worker = hcw_link_shm_open(fd, err, sizeof err); /* closes fd */
    assert_non_null(worker);
    /* the node's end in hcw_link_wait on the calls ring (tail at 64), the
     * worker's in hcw_link_wait_any on the replies ring (192) */
    int counted = 0, rounds = 0;
    for (; rounds < 40 && counted < 6; rounds++)
        counted += missed_flag_round(map, rounds % 2 ? 192 : 64,
                                     rounds % 2 ? worker : node, rounds % 2);
    munmap(map, 4096);
    hcw_link_free(worker);
    hcw_link_free(node);
    if (counted == 0)
        skip();
}

/* A grow hold (hcw_link_spin_grow_hold, what a worker takes for a lane to
 * a wasm host): a wait that slept for a frame that came within the longest
 * spin sets the budget to twice that wait; without a hold the budget
 * halves at every sleep and stays at its floor, whatever the waits.  Each
 * frame is sent once the reader's flag is up (it slept) and 10 µs after
 * the wait began.  A round whose wait took longer than 30 µs (a loaded
 * machine: its spin may have lost its CPU, which never grows the budget)
 * does not count for the hold; the test is skipped if none counts. */
typedef struct later {
    hcw_link *node;
    hcw_frame *f;
    _Atomic uint32_t *flag; /* the reader's reader_sleeps */
    _Atomic int64_t began;  /* set by the reader; 0: not yet */
} later;

static void *send_later(void *arg)
{
    later *p = arg;
    int64_t b, end = mono_ns() + 10LL * 1000000000;
    while ((b = atomic_load(&p->began)) == 0 && mono_ns() < end)
        ;
    while ((atomic_load(p->flag) == 0 || mono_ns() < b + 10000) &&
           mono_ns() < end)
        ;
    assert_int_equal(hcw_link_send(p->node, p->f), 0);
    return NULL;
}

/* One frame after the reader slept: how long its wait took (ns). */
static int64_t grow_round(hcw_link *node, hcw_link *worker, uint8_t *map,
                          hcw_frame *f, hcw_in *in)
{
    /* the worker reads the replies ring: its tail at 192, the flag after */
    later p = {node, f, (_Atomic uint32_t *)(map + 192 + 4), 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, send_later, &p), 0);
    hcw_link *const links[1] = {worker};
    bool ready = false;
    int64_t t0 = mono_ns();
    atomic_store(&p.began, t0);
    int rc;
    do
        rc = hcw_link_wait_any(links, 1, mono_ns() + 1000000000, &ready);
    while (rc == 0 && mono_ns() - t0 < 10LL * 1000000000);
    int64_t took = mono_ns() - t0;
    assert_int_equal(rc, 1);
    pthread_join(th, NULL);
    char err[160];
    assert_int_equal(hcw_link_recv(worker, in, err, sizeof err), 1);
    return took;
}

/* Waits that time out: each halves the budget, to its floor. */
static void to_floor(hcw_link *worker)
{
    hcw_link *const links[1] = {worker};
    bool ready;
    for (int i = 0; i < 8; i++)
        assert_int_equal(
            hcw_link_wait_any(links, 1, mono_ns() + 300000, &ready), 0);
}

static void grow_hold(void **state)
{
    (void)state;
    int fd = -1;
    hcw_link *node = hcw_link_shm_new(50, &fd); /* a 50 µs spin at most */
    assert_non_null(node);
    uint8_t *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    char err[160];
    hcw_link *worker = hcw_link_shm_open(fd, err, sizeof err);
    assert_non_null(worker);
    int64_t max = 50000, floor = max / 64;
    assert_int_equal(hcw_link_spin_budget_ns(worker), max);
    to_floor(worker);
    assert_int_equal(hcw_link_spin_budget_ns(worker), floor);
    hcw_frame *f = hcw_frame_new();
    hcw_frame_begin(f, HCW_SET_STATE, 1);
    hcw_put_bin(f, "ab", 2);
    hcw_in in;
    hcw_in_init(&in);
    /* no hold: every wait sleeps, and the budget stays at its floor */
    for (int i = 0; i < 6; i++) {
        grow_round(node, worker, map, f, &in);
        assert_int_equal(hcw_link_spin_budget_ns(worker), floor);
    }
    /* a hold: a wait of 10 to 30 µs grows the budget to twice it */
    hcw_link_spin_grow_hold(worker, true);
    int counted = 0;
    for (int i = 0; i < 60 && counted < 3; i++) {
        int64_t took = grow_round(node, worker, map, f, &in);
        int64_t after = hcw_link_spin_budget_ns(worker);
        assert_true(after >= floor && after <= max);
        if (took <= 30000) {
            counted++;
            assert_true(after >= 19000);
        }
        /* start again from the floor */
        hcw_link_spin_grow_hold(worker, false);
        to_floor(worker);
        hcw_link_spin_grow_hold(worker, true);
    }
    /* released (one hold taken, given back twice: no underflow), a wait
     * halves it again */
    hcw_link_spin_grow_hold(worker, false);
    hcw_link_spin_grow_hold(worker, false);
    grow_round(node, worker, map, f, &in);
    assert_int_equal(hcw_link_spin_budget_ns(worker), floor);
    hcw_in_fini(&in);
    hcw_frame_free(f);
    munmap(map, 4096);
    hcw_link_free(worker);
    hcw_link_free(node);
    if (counted == 0)
        skip();
}

/* hcw_link_read_some, the stream read of the wasm host's addon: on the
 * rings it takes what has come, at most what it is asked for, across the
 * ring's wrap, and gives up (0) when the watch function does with nothing
 * there; on a socket it first gives what a frame read brought beyond the
 * frame. */
static void read_some(void **state)
{
    (void)state;
    int fd = -1;
    hcw_link *node = hcw_link_shm_new(0, &fd);
    assert_non_null(node);
    char err[160] = "";
    hcw_link *host = hcw_link_shm_open(fd, err, sizeof err);
    assert_non_null(host);
    size_t n = 40 * 1024; /* three of them wrap the 64 KiB ring */
    uint8_t *sent = malloc(n), *got = malloc(n);
    assert_non_null(sent);
    assert_non_null(got);
    for (uint32_t round = 0; round < 5; round++) {
        ut_fill(sent, n, round);
        assert_int_equal(hcw_link_send_bytes(node, sent, n), 0);
        size_t have = 0;
        long k = hcw_link_read_some(host, got, 1000, err, sizeof err);
        assert_int_equal(k, 1000); /* no more than asked */
        have += (size_t)k;
        while (have < n) {
            k = hcw_link_read_some(host, got + have, n - have, err, sizeof err);
            assert_true(k > 0);
            have += (size_t)k;
        }
        assert_int_equal(have, n);
        assert_memory_equal(got, sent, n);
        assert_false(hcw_link_pending(host));
    }
    hcw_link_watch(host, give_up_after_two, NULL);
    watch_calls = 0;
    assert_int_equal(hcw_link_read_some(host, got, n, err, sizeof err), 0);
    assert_int_equal(watch_calls, 2);
    hcw_link_free(host);
    hcw_link_free(node);

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    hcw_link *a = hcw_link_socket(sv[0]);
    hcw_link *b = hcw_link_socket(sv[1]);
    hcw_frame *f = hcw_frame_new();
    hcw_frame_begin(f, HCW_SET_STATE, 1);
    hcw_put_bin(f, "ab", 2);
    assert_int_equal(hcw_link_send(a, f), 0);
    static const uint8_t tail[5] = {1, 2, 3, 4, 5};
    assert_int_equal(hcw_link_send_bytes(a, tail, sizeof tail), 0);
    hcw_in in;
    hcw_in_init(&in);
    /* the frame's read may bring the tail too; read_some gives it all */
    assert_int_equal(hcw_link_recv(b, &in, err, sizeof err), 1);
    size_t have = 0;
    while (have < sizeof tail) {
        long k = hcw_link_read_some(b, got + have, 3, err, sizeof err);
        assert_true(k > 0 && k <= 3);
        have += (size_t)k;
    }
    assert_memory_equal(got, tail, sizeof tail);
    hcw_link_free(a);
    assert_int_equal(hcw_link_read_some(b, got, n, err, sizeof err), 0);
    hcw_in_fini(&in);
    hcw_frame_free(f);
    hcw_link_free(b);
    free(sent);
    free(got);
}

static atomic_bool hog_stop;

static void *hog(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&hog_stop, memory_order_relaxed)) {
    }
    return NULL;
}

/* The CPU watch (hcw_link_cpu_watch): this thread and a CPU-bound one held
 * to one CPU, each gets about half of it, and the watch says the thread
 * waits for a CPU (over a quarter of the time). */
static void cpu_watch_sees_a_taken_cpu(void **state)
{
    (void)state;
    if (hcw_link_cpu_watch() != 0)
        skip(); /* no /proc/thread-self/schedstat here */
    cpu_set_t was, one;
    assert_int_equal(sched_getaffinity(0, sizeof was, &was), 0);
    int c = 0;
    while (!CPU_ISSET(c, &was))
        c++;
    CPU_ZERO(&one);
    CPU_SET(c, &one);
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    pthread_attr_t at;
    pthread_attr_init(&at);
    assert_int_equal(pthread_attr_setaffinity_np(&at, sizeof one, &one), 0);
    pthread_t t;
    atomic_store(&hog_stop, false);
    assert_int_equal(pthread_create(&t, &at, hog, NULL), 0);
    pthread_attr_destroy(&at);
    bool busy = false;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        busy = hcw_link_cpu_busy();
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (!busy && now.tv_sec - t0.tv_sec < 3);
    atomic_store(&hog_stop, true);
    pthread_join(t, NULL);
    assert_int_equal(sched_setaffinity(0, sizeof was, &was), 0);
    if (!busy) {
        /* a kernel that keeps no run delay (no schedstats, no delay
         * accounting) shows 0 there: nothing to watch */
        unsigned long long run = 0, delay = 0;
        FILE *f = fopen("/proc/thread-self/schedstat", "r");
        if (f != NULL) {
            if (fscanf(f, "%llu %llu", &run, &delay) != 2)
                delay = 0;
            fclose(f);
        }
        if (delay == 0)
            skip();
    }
    assert_true(busy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(echo_spinning),
        cmocka_unit_test(echo_spinning_no_yield),
        cmocka_unit_test(echo_sleeping),
        cmocka_unit_test(sealed),
        cmocka_unit_test(hostile_positions),
        cmocka_unit_test(watch_gives_up),
        cmocka_unit_test(try_send),
        cmocka_unit_test(wait_and_kick),
        cmocka_unit_test(missed_flag),
        cmocka_unit_test(grow_hold),
        cmocka_unit_test(not_a_link),
        cmocka_unit_test(socket_link),
        cmocka_unit_test(socket_link_batches),
        cmocka_unit_test(read_some),
        /* last: the watch stays on for this thread */
        cmocka_unit_test(cpu_watch_sees_a_taken_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
