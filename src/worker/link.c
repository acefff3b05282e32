/* Links that carry the worker protocol's frames (link.h): a shared-memory
 * channel of two byte rings with futex wake-ups, or a stream socket. */
#include "link.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define HDR 4 /* a frame's length */

/* ------------------------------------------------------------ the mapping
 *
 * One page of header, then the two rings' bytes:
 *
 *   0      magic, layout version, ring size, spin (written once by the node);
 *   16     the guest's live tasks (written by the worker, read by the node)
 *   20     served (the node), 24 taken (the worker), 32 busy_ns (the
 *          worker, a u64): layout 4, for a worker with lanes
 *   64     the calls ring's producer line: tail, reader_sleeps
 *   128    the calls ring's consumer line: head, writer_sleeps
 *   192    the replies ring's producer line
 *   256    the replies ring's consumer line
 *   4096   the calls ring's bytes   (worker -> node)
 *   4096+R the replies ring's bytes (node -> worker)
 *
 * Positions are byte counts modulo 2^32; a ring holds tail - head bytes.
 * A side that sleeps sets its flag (reader_sleeps, writer_sleeps), checks
 * again, then waits on the futex of that flag while it is up; the other
 * side takes the flag down and wakes it.  Waiting on the flag rather than
 * on the position (layout 3) lets a third party wake a sleeping reader
 * without a lost wake-up (hcw_link_kick): a flag taken down before the
 * sleeper's futex call makes that call return at once.
 *
 * A writer publishes tail with a release store and then reads
 * reader_sleeps without a full fence: a locked instruction on the line
 * the reader polls cost a quarter of a worker's time a round trip at 64 in
 * flight (docs/benchmarks.md).  So a writer may miss a flag raised while
 * its own store still waits to be seen (its store buffer), and the reader
 * miss that tail: the reader's first sleep after it raises its flag is
 * therefore at most HCW_LINK_FIRST_SLEEP_US, and it looks again before it
 * sleeps longer with the flag still up (every frame published before the
 * flag was seen is visible by then; every later one sees the flag).
 * head and writer_sleeps keep their full fences: a writer waits for room
 * rarely and a reader's head is a line nobody polls. */

#define LINK_MAGIC 0x6b6e6c77u /* "wlnk" */
#define LINK_LAYOUT 5          /* 5: a reader's first sleep is short (below) */
#define DATA_OFF HCW_LINK_HEADER_BYTES

typedef struct shm_head {
    uint32_t magic;
    uint32_t layout;
    uint32_t ring_bytes;
    uint32_t spin_us;
    _Atomic uint32_t tasks;  /* HCW_LINK_NO_TASKS until the worker sets it */
    _Atomic uint32_t served; /* frames of the worker's the node has served
                                (layout 4; a worker with lanes) */
    _Atomic uint32_t taken;  /* messages the worker has handed its guest
                                (layout 4; a worker with lanes) */
    uint32_t reserved;
    _Atomic int64_t busy_ns; /* since when the guest has its message
                                (CLOCK_MONOTONIC_COARSE), 0 while it waits
                                (layout 4; a worker with lanes) */
} shm_head;

_Static_assert(offsetof(shm_head, busy_ns) == 32, "busy_ns at 32");

typedef struct ring_ctl {
    alignas(64) _Atomic uint32_t tail; /* written by the producer */
    _Atomic uint32_t reader_sleeps;
    alignas(64) _Atomic uint32_t head; /* written by the consumer */
    _Atomic uint32_t writer_sleeps;
} ring_ctl;

_Static_assert(sizeof(ring_ctl) == 128, "one line per side");
_Static_assert(64 + 2 * sizeof(ring_ctl) <= DATA_OFF, "header fits a page");

typedef struct ring {
    ring_ctl *ctl;
    uint8_t *data;
    uint32_t pos;  /* our own position: tail if we write, head if we read */
    uint32_t room; /* a writer's: bytes known free after pos (the reader's
                      head as last read), so that a write that fits reads
                      not the reader's line */
    uint32_t seen; /* a reader's: the writer's tail as last read, so that
                      frames known to be there are taken without reading
                      the writer's line again (rx_avail) */
} ring;

struct hcw_link {
    int fd;       /* the socket, or -1 */
    uint8_t *map; /* the mapping, or NULL */
    size_t map_len;
    uint32_t size; /* bytes per ring */
    ring tx, rx;
    int64_t spin_max_ns;
    int64_t spin_ns;     /* the adaptive budget for reads */
    bool spin_yield;     /* sched_yield before each round of looks */
    bool spin_grow;      /* hcw_link_spin_grow */
    uint32_t grow_holds; /* hcw_link_spin_grow_hold */
    bool spin_lost;      /* the last spin_any lost its CPU (SPIN_LOST_NS) */
    _Atomic bool kicked; /* hcw_link_kick since the last hcw_link_wait */
    hcw_link_watch_fn watch;
    void *watch_ctx;
    bool from_node; /* the worker's end: what it reads comes from the node,
                       which it trusts (hcw_in_decode) */
    bool lane;      /* one side of a lane (hcw_link_lane): its mapping is
                       borrowed, it never waits, frames are at most a
                       quarter of the ring */
    /* a socket link's input: what one read brought, frames and the start
     * of one, taken frame by frame (NULL until the first read) */
    uint8_t *in;
    size_t in_start, in_end;
};

/* Bytes a socket link reads at most in one system call. */
#define SOCKET_IN_BYTES (64u * 1024)

/* Its own copy of proto.c's hcw_seterr: the wasm host's addon builds this
 * file without proto.c (cmake/hyperc-wasm-tools.cmake). */
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Shared (not private) futexes: the two sides are different processes. */
static void futex_wake(_Atomic uint32_t *w)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Sleep while *w == seen, at most ns; interrupted and spurious returns
 * are fine (the callers look again). */
static void futex_wait_ns(_Atomic uint32_t *w, uint32_t seen, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000),
                          .tv_nsec = (long)(ns % 1000000000)};
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, seen, &ts, NULL, 0);
}

static void futex_wait(_Atomic uint32_t *w, uint32_t seen, int ms)
{
    futex_wait_ns(w, seen, (int64_t)ms * 1000000);
}

/* Take a sleeper's flag down and wake it, if it is up. */
static void wake_flag(_Atomic uint32_t *flag)
{
    if (atomic_load(flag) && atomic_exchange(flag, 0))
        futex_wake(flag);
}

/* No `pause`: under virtualization pause-loop exiting deschedules a vCPU
 * (see the node's mailbox.c). */
#define cpu_relax() __asm__ __volatile__("" ::: "memory")

/* Looks before a spinner first yields its CPU: an answer from a peer
 * running on another CPU often comes within them (about 0.6 µs here), and
 * a yield (a system call, 0.3 to 0.5 µs in a VM) would only delay taking
 * it.  Measured (docs/benchmarks.md, "the first yield"): an isolated round
 * trip by lane at 1 in flight took 1.7 µs p50 instead of 2.8 with a yield
 * first on a quiet machine, and 14 µs instead of 11.4 beside a CPU-bound
 * loop (where the peer often waits for this very CPU). */
#define SPIN_FIRST_POLLS 2048

/* A round of a spin's looks (a yield and 256 looks, a few µs at most) that
 * took longer than this lost the CPU to another thread: a CPU-bound one,
 * or the peer's turn.  Such a spin does not grow the budget
 * (spin_adapt_slept): a longer spin would hand the CPU away more often. */
#define SPIN_LOST_NS 30000

/* ------------------------------------------------------ CPU contention */

/* The share of a period this thread spent runnable but waiting for a CPU
 * (the kernel's schedstat run_delay) above which a batch's wait does not
 * spin (cpu_busy): every CPU is taken by other work, so a spin uses up
 * this thread's fair share on nothing (the peer it waits for is itself
 * waiting for a CPU) and each yield hands a CPU-bound process a whole time
 * slice.  Measured on 2 vCPUs (docs/benchmarks.md, "Spinning when every
 * CPU is taken"): an isolated pair's run_delay was 1-7% of the time quiet
 * (its yields to the peer included) and 48-75% beside three CPU-bound
 * loops, where holding the spin made 17% more round trips at 64 in
 * flight. */
#define CPU_BUSY_SHARE_PCT 25
/* How often the share is read (a pread of /proc and its parse: ~1 µs). */
#define CPU_LOOK_NS 10000000
/* Frames taken since the last wait over which a wait is a batch's (below,
 * cpu_busy). */
#define CPU_BUSY_BATCH 8

static struct {
    int fd;                  /* /proc/thread-self/schedstat; -1: not watched */
    int64_t at_ns;           /* when run_delay was last read */
    uint64_t delay_ns;       /* run_delay then */
    bool busy;               /* the last period's share was over the bound */
    uint64_t frames;         /* frames taken whole (take_whole), all links */
    uint64_t frames_at_wait; /* frames at the last wait's start */
} cpu = {.fd = -1};

int hcw_link_cpu_watch(void)
{
    if (cpu.fd >= 0)
        return 0;
    int fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fd < 5) {
        /* above the link (3) and the lane socket (4): fd 4 is the one on
         * which the sandbox allows recvmsg, even when no socket is there */
        int high = fcntl(fd, F_DUPFD_CLOEXEC, 5);
        close(fd);
        if (high < 0)
            return -1;
        fd = high;
    }
    cpu.fd = fd;
    cpu.at_ns = 0;
    return 0;
}

/* Whether every CPU seems taken by other work (above), as of the last
 * look, looking again when CPU_LOOK_NS have passed since (now: the
 * caller's clock reading). */
static bool cpu_busy_now(int64_t now)
{
    if (cpu.fd < 0 || now - cpu.at_ns < CPU_LOOK_NS)
        return cpu.busy;
    /* "<on-CPU ns> <run delay ns> <slices>\n"; read by hand, as a crash
     * report's write (fault.c, a signal handler) may come through here */
    char buf[96];
    ssize_t n = pread(cpu.fd, buf, sizeof buf - 1, 0);
    uint64_t delay = 0;
    ssize_t i = 0;
    while (i < n && buf[i] >= '0' && buf[i] <= '9')
        i++;
    bool ok = i > 0 && i < n && buf[i] == ' ';
    ssize_t d = ++i;
    while (ok && i < n && buf[i] >= '0' && buf[i] <= '9' && i - d < 19)
        delay = delay * 10 + (uint64_t)(buf[i++] - '0');
    if (!ok || i == d || (i < n && buf[i] != ' ' && buf[i] != '\n')) {
        cpu.busy = false;
        return false;
    }
    if (cpu.at_ns != 0 && delay >= cpu.delay_ns)
        cpu.busy = (delay - cpu.delay_ns) * 100 >
                   (uint64_t)(now - cpu.at_ns) * CPU_BUSY_SHARE_PCT;
    cpu.at_ns = now;
    cpu.delay_ns = delay;
    return cpu.busy;
}

/* Whether a wait starting now holds its spin: every CPU taken (above)
 * and more than CPU_BUSY_BATCH frames taken since the last wait began (a
 * batch: the peer is at work on more, and a sleep costs little beside the
 * batch).  A lone exchange keeps its spin, which catches a peer that runs
 * on another CPU: without it, one in flight beside three CPU-bound loops
 * had a p50 of 23 µs instead of 1.6. */
static bool cpu_busy(int64_t now)
{
    if (cpu.fd < 0)
        return false; /* (the node's threads: no writes to the state) */
    uint64_t since = cpu.frames - cpu.frames_at_wait;
    cpu.frames_at_wait = cpu.frames;
    return cpu_busy_now(now) && since > CPU_BUSY_BATCH;
}

bool hcw_link_cpu_busy(void)
{
    return cpu_busy_now(now_ns());
}

/* Spin up to ns for *w to differ from seen: 1 if it did, 0 if not, -1
 * when the CPU watch held the spin (cpu_busy: the budget is left as it
 * is, the wait told nothing about it).  After a first
 * round of SPIN_FIRST_POLLS looks, each round starts by giving up the CPU
 * (sched_yield): with more busy threads than CPUs (two workers and their
 * node threads on two vCPUs), the peer that is to write is often runnable
 * on this very CPU, and yielding lets it run now, rather than after this
 * spin, a futex sleep and a wake-up (docs/benchmarks.md, "Isolated
 * processes: yielding in the link's spin").  With nothing else to run, a
 * yield returns at once. */
static int spin_for(_Atomic uint32_t *w, uint32_t seen, int64_t ns, bool yield)
{
    if (ns <= 0)
        return 0;
    int64_t end = now_ns();
    if (cpu_busy(end))
        return -1;
    end += ns;
    for (int polls = SPIN_FIRST_POLLS;; polls = 256) {
        for (int i = 0; i < polls; i++) {
            if (atomic_load_explicit(w, memory_order_acquire) != seen)
                return 1;
            cpu_relax();
        }
        if (now_ns() >= end)
            return 0;
        if (yield)
            sched_yield();
    }
}

static bool still_waiting(hcw_link *l)
{
    return l->watch == NULL || l->watch(l->watch_ctx);
}

/* ------------------------------------------------------------- creation */

static void place(hcw_link *l, uint8_t *map, uint32_t size, bool node)
{
    ring_ctl *calls = (ring_ctl *)(map + 64);
    ring_ctl *replies = (ring_ctl *)(map + 64 + sizeof(ring_ctl));
    uint8_t *calls_data = map + DATA_OFF;
    uint8_t *replies_data = map + DATA_OFF + size;
    l->map = map;
    l->size = size;
    l->fd = -1;
    l->spin_yield = true;
    if (node) {
        l->rx = (ring){calls, calls_data, 0, 0, 0};
        l->tx = (ring){replies, replies_data, 0, 0, 0};
    } else {
        l->rx = (ring){replies, replies_data, 0, 0, 0};
        l->tx = (ring){calls, calls_data, 0, 0, 0};
        l->from_node = true;
    }
}

uint8_t *hcw_shm_sealed(const char *name, size_t len, int *fd_out)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return NULL;
    /* Sealed at its size: a peer cannot shrink it under another side
     * (which would then fault on its own mapping). */
    uint8_t *map = MAP_FAILED;
    if (ftruncate(fd, (off_t)len) != 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) !=
            0 ||
        (map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
            MAP_FAILED) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    *fd_out = fd;
    return map;
}

hcw_link *hcw_link_shm_new(uint32_t spin_us, int *fd_out)
{
    uint32_t size = HCW_LINK_RING_BYTES;
    size_t len = DATA_OFF + 2 * (size_t)size;
    int fd;
    uint8_t *map = hcw_shm_sealed("hyperc-worker-link", len, &fd);
    if (map == NULL)
        return NULL;
    hcw_link *l = calloc(1, sizeof *l);
    if (l == NULL) {
        munmap(map, len);
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    shm_head *h = (shm_head *)map;
    h->magic = LINK_MAGIC;
    h->layout = LINK_LAYOUT;
    h->ring_bytes = size;
    h->spin_us = spin_us;
    atomic_init(&h->tasks, HCW_LINK_NO_TASKS);
    place(l, map, size, true);
    l->map_len = len;
    l->spin_max_ns = l->spin_ns = (int64_t)spin_us * 1000;
    *fd_out = fd;
    return l;
}

hcw_link *hcw_link_shm_open(int fd, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        seterr(err, errlen, "no link on fd %d: %s", fd, strerror(errno));
        return NULL;
    }
    if (st.st_size < (off_t)DATA_OFF || st.st_size > (off_t)(1u << 30)) {
        seterr(err, errlen, "fd %d is not a worker link (%lld bytes)", fd,
               (long long)st.st_size);
        return NULL;
    }
    size_t len = (size_t)st.st_size;
    uint8_t *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        seterr(err, errlen, "cannot map the link: %s", strerror(errno));
        return NULL;
    }
    shm_head *h = (shm_head *)map;
    uint32_t size = h->ring_bytes;
    if (h->magic != LINK_MAGIC || h->layout != LINK_LAYOUT || size == 0 ||
        (size & (size - 1)) != 0 || DATA_OFF + 2 * (size_t)size != len) {
        munmap(map, len);
        seterr(err, errlen, "fd %d is not a worker link of layout %d", fd,
               LINK_LAYOUT);
        return NULL;
    }
    hcw_link *l = calloc(1, sizeof *l);
    if (l == NULL) {
        munmap(map, len);
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    place(l, map, size, false);
    l->map_len = len;
    /* positions as they are now (a fresh link: 0) */
    l->tx.pos = atomic_load(&l->tx.ctl->tail);
    l->rx.pos = l->rx.seen = atomic_load(&l->rx.ctl->head);
    uint32_t spin = h->spin_us > 1000000 ? 1000000 : h->spin_us;
    l->spin_max_ns = l->spin_ns = (int64_t)spin * 1000;
    close(fd);
    return l;
}

hcw_link *hcw_link_socket(int fd)
{
    hcw_link *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->fd = fd;
    return l;
}

void hcw_link_socket_spin(hcw_link *l, uint32_t spin_us)
{
    if (spin_us > 1000000)
        spin_us = 1000000;
    l->spin_max_ns = l->spin_ns = (int64_t)spin_us * 1000;
}

void hcw_link_spin_grow(hcw_link *l, bool grow)
{
    l->spin_grow = grow;
}

int64_t hcw_link_spin_budget_ns(const hcw_link *l)
{
    return l->spin_ns;
}

void hcw_link_spin_grow_hold(hcw_link *l, bool hold)
{
    if (hold)
        l->grow_holds++;
    else if (l->grow_holds > 0)
        l->grow_holds--;
}

void hcw_link_spin_yield(hcw_link *l, bool yield)
{
    l->spin_yield = yield;
}

void hcw_link_free(hcw_link *l)
{
    if (l == NULL)
        return;
    if (l->map && !l->lane)
        munmap(l->map, l->map_len);
    if (l->fd >= 0)
        close(l->fd);
    free(l->in);
    free(l);
}

void hcw_link_watch(hcw_link *l, hcw_link_watch_fn fn, void *ctx)
{
    l->watch = fn;
    l->watch_ctx = ctx;
}

void hcw_link_set_tasks(hcw_link *l, uint32_t live)
{
    if (l && l->map)
        atomic_store_explicit(&((shm_head *)l->map)->tasks, live,
                              memory_order_relaxed);
}

void hcw_link_set_served(hcw_link *l, uint32_t n)
{
    if (l && l->map)
        atomic_store_explicit(&((shm_head *)l->map)->served, n,
                              memory_order_release);
}

uint32_t hcw_link_served(const hcw_link *l)
{
    if (l == NULL || l->map == NULL)
        return 0;
    return atomic_load_explicit(&((shm_head *)l->map)->served,
                                memory_order_acquire);
}

void hcw_link_set_taken(hcw_link *l, uint32_t n)
{
    if (l && l->map)
        atomic_store_explicit(&((shm_head *)l->map)->taken, n,
                              memory_order_relaxed);
}

uint32_t hcw_link_taken(const hcw_link *l)
{
    if (l == NULL || l->map == NULL)
        return 0;
    return atomic_load_explicit(&((shm_head *)l->map)->taken,
                                memory_order_relaxed);
}

void hcw_link_set_busy(hcw_link *l, bool busy)
{
    if (l == NULL || l->map == NULL)
        return;
    int64_t v = 0;
    if (busy) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        v = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        if (v <= 0)
            v = 1; /* (0 says "waiting") */
    }
    atomic_store_explicit(&((shm_head *)l->map)->busy_ns, v,
                          memory_order_relaxed);
}

int64_t hcw_link_busy_ns(const hcw_link *l)
{
    if (l == NULL || l->map == NULL)
        return 0;
    return atomic_load_explicit(&((shm_head *)l->map)->busy_ns,
                                memory_order_relaxed);
}

uint32_t hcw_link_tasks(const hcw_link *l)
{
    if (l == NULL || l->map == NULL)
        return HCW_LINK_NO_TASKS;
    return atomic_load_explicit(&((shm_head *)l->map)->tasks,
                                memory_order_relaxed);
}

/* --------------------------------------------------------------- writing */

/* Write n bytes into the transmit ring, waiting for room.  0, or -1 with
 * errno (EPIPE: gave up waiting; EPROTO: impossible positions). */
static int ring_write(hcw_link *l, const uint8_t *p, size_t n)
{
    ring *r = &l->tx;
    uint32_t size = l->size;
    while (n > 0) {
        uint32_t head = 0, room = r->room;
        if (room < n) {
            head = atomic_load_explicit(&r->ctl->head, memory_order_acquire);
            uint32_t used = r->pos - head;
            if (used > size) {
                errno = EPROTO;
                return -1;
            }
            room = r->room = size - used;
        }
        if (room == 0) {
            if (spin_for(&r->ctl->head, head, l->spin_max_ns, l->spin_yield) >
                0)
                continue;
            atomic_store(&r->ctl->writer_sleeps, 1);
            if (atomic_load(&r->ctl->head) == head)
                futex_wait(&r->ctl->writer_sleeps, 1, HCW_LINK_CHECK_MS);
            atomic_store(&r->ctl->writer_sleeps, 0);
            if (atomic_load(&r->ctl->head) == head && !still_waiting(l)) {
                errno = EPIPE;
                return -1;
            }
            continue;
        }
        uint32_t k = n < room ? (uint32_t)n : room;
        uint32_t at = r->pos & (size - 1);
        uint32_t first = size - at < k ? size - at : k;
        memcpy(r->data + at, p, first);
        memcpy(r->data, p + first, k - first);
        r->pos += k;
        r->room -= k;
        p += k;
        n -= k;
        /* publish, then see whether the reader sleeps (no full fence:
         * the reader's first sleep is short, above).  The flag is taken
         * down with the wake-up, so the frames written until the reader
         * runs again (it may wait for a CPU a while) cost no more system
         * calls; a reader that has not slept yet finds tail moved and
         * does not sleep. */
        atomic_store_explicit(&r->ctl->tail, r->pos, memory_order_release);
        if (atomic_load_explicit(&r->ctl->reader_sleeps, memory_order_relaxed))
            wake_flag(&r->ctl->reader_sleeps);
    }
    return 0;
}

static int write_fd(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == ENOTSOCK)
            w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int hcw_link_send_bytes(hcw_link *l, const uint8_t *p, size_t n)
{
    if (l->lane) { /* a lane's write never waits (hcw_link_try_send) */
        errno = ENOTSUP;
        return -1;
    }
    return l->map ? ring_write(l, p, n) : write_fd(l->fd, p, n);
}

int hcw_link_send(hcw_link *l, hcw_frame *f)
{
    size_t len;
    const uint8_t *p = hcw_frame_finish(f, &len);
    return p ? hcw_link_send_bytes(l, p, len) : -1;
}

/* hcw_link_try_send on a socket: one send that does not wait.  Linux's
 * AF_UNIX stream socket queues a send of at most HCW_LINK_SOCKET_AHEAD
 * bytes as one buffer, whole or not at all (EAGAIN when the peer's queue
 * is full), so no frame is ever left half sent; were one, the rest would
 * be written waiting, as hcw_link_send does. */
static int socket_try_send(hcw_link *l, const uint8_t *p, size_t len)
{
    if (len > HCW_LINK_SOCKET_AHEAD)
        return 0;
    ssize_t w;
    do
        w = send(l->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    if ((size_t)w < len && write_fd(l->fd, p + w, len - (size_t)w) != 0)
        return -1;
    return 1;
}

int hcw_link_room_for(hcw_link *l, size_t len)
{
    if (l->map == NULL)
        return 0;
    if (l->lane && len > l->size / 4)
        return 0;
    if (len > l->tx.room) {
        uint32_t head =
            atomic_load_explicit(&l->tx.ctl->head, memory_order_acquire);
        uint32_t used = l->tx.pos - head;
        if (used > l->size) {
            errno = EPROTO;
            return -1;
        }
        l->tx.room = l->size - used;
        if (len > l->tx.room)
            return 0;
    }
    return 1;
}

int hcw_link_try_send(hcw_link *l, hcw_frame *f)
{
    size_t len;
    const uint8_t *p = hcw_frame_finish(f, &len);
    if (p == NULL)
        return -1;
    if (l->map == NULL)
        return socket_try_send(l, p, len);
    int rc = hcw_link_room_for(l, len);
    if (rc != 1)
        return rc;
    return ring_write(l, p, len) == 0 ? 1 : -1;
}

bool hcw_link_is_shm(const hcw_link *l)
{
    return l->map != NULL;
}

/* Bytes readable after our position: what the tail last read says when
 * that is at least need (and possible: a position moved by ring_read past
 * it makes it stale), else what the tail says now.  Frames below a tail
 * read once with acquire stay there, so a reader that takes several needs
 * only one look at the writer's line, which the writer then keeps. */
static uint32_t rx_avail(hcw_link *l, uint32_t need)
{
    ring *r = &l->rx;
    uint32_t avail = r->seen - r->pos;
    if (avail >= need && avail <= l->size)
        return avail;
    r->seen = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
    return r->seen - r->pos;
}

bool hcw_link_pending(hcw_link *l)
{
    if (l->map == NULL)
        return l->in_end > l->in_start;
    return rx_avail(l, 1) != 0;
}

/* --------------------------------------------------------------- reading */

/* Halve or double the read spin budget by how long the wait was. */
static void spin_adapt(hcw_link *l, bool came_while_spinning)
{
    if (came_while_spinning) {
        l->spin_ns *= 2;
        if (l->spin_ns > l->spin_max_ns)
            l->spin_ns = l->spin_max_ns;
    } else {
        l->spin_ns /= 2;
        if (l->spin_ns < l->spin_max_ns / 64)
            l->spin_ns = l->spin_max_ns / 64;
    }
}

/* The budget after a wait that spun it all and then slept for what came
 * `waited_ns` after the wait began.  With spin_grow or a grow hold, a wait
 * within the longest spin, which spinning that long would have caught,
 * sets the budget to twice the wait (hcw_link_spin_grow); otherwise, or
 * when the wait was longer (or none came), or the spin lost its CPU, it
 * halves. */
static void spin_adapt_slept(hcw_link *l, int64_t waited_ns, bool came)
{
    if ((l->spin_grow || l->grow_holds > 0) && came &&
        waited_ns <= l->spin_max_ns && !l->spin_lost) {
        int64_t want = 2 * waited_ns;
        if (want > l->spin_ns)
            l->spin_ns = want > l->spin_max_ns ? l->spin_max_ns : want;
    } else {
        spin_adapt(l, false);
    }
}

/* With reader_sleeps raised: sleep while tail stays `seen` (and, when
 * `kick`, no kick came), until deadline_ns at the latest, the first sleep
 * at most HCW_LINK_FIRST_SLEEP_US (the writer's unfenced look, above). */
static void sleep_raised(hcw_link *l, uint32_t seen, int64_t deadline_ns,
                         bool kick)
{
    ring *r = &l->rx;
    int64_t now = now_ns();
    int64_t first = now + HCW_LINK_FIRST_SLEEP_US * 1000LL;
    for (int phase = 0; phase < 2; phase++) {
        if (atomic_load(&r->ctl->tail) != seen ||
            atomic_load(&r->ctl->reader_sleeps) == 0 ||
            (kick && atomic_load(&l->kicked)))
            return;
        int64_t until = phase == 0 && first < deadline_ns ? first : deadline_ns;
        if (until <= now)
            return;
        futex_wait_ns(&r->ctl->reader_sleeps, 1, until - now);
        if (until == deadline_ns)
            return;
        now = now_ns();
    }
}

/* Wait until the receive ring holds more than it did at tail `seen`.
 * 1 it does, 0 gave up (the watch function). */
static int wait_data(hcw_link *l, uint32_t seen)
{
    ring *r = &l->rx;
    int spun = spin_for(&r->ctl->tail, seen, l->spin_ns, l->spin_yield);
    if (spun > 0) {
        spin_adapt(l, true);
        return 1;
    }
    if (spun == 0 && l->spin_max_ns > 0)
        spin_adapt(l, false);
    for (;;) {
        atomic_store(&r->ctl->reader_sleeps, 1);
        sleep_raised(l, seen, now_ns() + HCW_LINK_CHECK_MS * 1000000LL, false);
        atomic_store(&r->ctl->reader_sleeps, 0);
        if (atomic_load(&r->ctl->tail) != seen)
            return 1;
        /* The other side may write its last frames and end between the
         * look above and the watch function's: what it wrote is read
         * before giving up (a worker's answer just before its exit). */
        if (!still_waiting(l))
            return atomic_load(&r->ctl->tail) != seen;
    }
}

int hcw_link_wait(hcw_link *l, int64_t deadline_ns)
{
    ring *r = &l->rx;
    if (l->map == NULL)
        return -1;
    uint32_t seen = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
    if (seen != r->pos)
        return 1;
    int spun = spin_for(&r->ctl->tail, seen, l->spin_ns, l->spin_yield);
    if (spun > 0) {
        spin_adapt(l, true);
        return 1;
    }
    if (spun == 0 && l->spin_max_ns > 0)
        spin_adapt(l, false);
    atomic_store(&r->ctl->reader_sleeps, 1);
    /* after the flag is up: a kick or a frame from now on takes it down */
    sleep_raised(l, seen, deadline_ns, true);
    atomic_store(&r->ctl->reader_sleeps, 0);
    atomic_store(&l->kicked, false);
    return atomic_load(&r->ctl->tail) != seen;
}

void hcw_link_kick(hcw_link *l)
{
    if (l->map == NULL)
        return;
    atomic_store(&l->kicked, true);
    wake_flag(&l->rx.ctl->reader_sleeps);
}

/* Read exactly n bytes from the receive ring.  1, 0 gave up before any
 * byte (only when at_start), -1 broken (err). */
static int ring_read(hcw_link *l, uint8_t *p, size_t n, bool at_start,
                     char *err, size_t errlen)
{
    ring *r = &l->rx;
    uint32_t size = l->size;
    bool any = false;
    while (n > 0) {
        uint32_t tail =
            atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
        uint32_t avail = tail - r->pos;
        if (avail > size) {
            seterr(err, errlen,
                   "worker link: the ring's positions are "
                   "impossible (%u bytes in a ring of %u)",
                   avail, size);
            errno = EPROTO;
            return -1;
        }
        if (avail == 0) {
            if (wait_data(l, tail) == 1)
                continue;
            if (at_start && !any)
                return 0;
            seterr(err, errlen,
                   "worker link: the other side stopped in the "
                   "middle of a frame");
            errno = EPROTO;
            return -1;
        }
        uint32_t k = n < avail ? (uint32_t)n : avail;
        uint32_t at = r->pos & (size - 1);
        uint32_t first = size - at < k ? size - at : k;
        memcpy(p, r->data + at, first);
        memcpy(p + first, r->data, k - first);
        r->pos += k;
        p += k;
        n -= k;
        any = true;
        atomic_store(&r->ctl->head, r->pos);
        wake_flag(&r->ctl->writer_sleeps);
    }
    return 1;
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Copy n bytes at our read position (pos) out of the receive ring
 * (they are there). */
static void ring_copy_out(const hcw_link *l, uint32_t pos, uint8_t *p,
                          uint32_t n)
{
    uint32_t size = l->size;
    uint32_t at = pos & (size - 1);
    uint32_t first = size - at < n ? size - at : n;
    memcpy(p, l->rx.data + at, first);
    memcpy(p + first, l->rx.data, n - first);
}

/* The longest body a frame may have to be read without waiting: what the
 * ring holds beside the length, or on a lane a quarter of the ring (the
 * most its writer sends, hcw_link_try_send). */
static uint32_t whole_body_max(const hcw_link *l)
{
    return (l->lane ? l->size / 4 : l->size) - HDR;
}

/* The length of the frame at our position if a whole one is there (1), or
 * 0 none or only its start, -1 impossible positions, -2 a length over
 * whole_body_max. */
static int rx_whole(hcw_link *l, uint32_t *len)
{
    ring *r = &l->rx;
    uint32_t avail = rx_avail(l, HDR);
    if (avail > l->size)
        return -1;
    if (avail < HDR)
        return 0;
    uint8_t hdr[HDR];
    ring_copy_out(l, r->pos, hdr, HDR);
    *len = get_le32(hdr);
    if (*len > whole_body_max(l))
        return -2;
    if (*len > avail - HDR) {
        /* looked at again: a hostile writer may have moved tail back */
        avail = rx_avail(l, HDR + *len);
        if (avail > l->size)
            return -1;
    }
    return avail >= HDR && *len <= avail - HDR ? 1 : 0;
}

int hcw_link_frame_ready(hcw_link *l)
{
    if (l->map == NULL)
        return 0;
    uint32_t len;
    int rc = rx_whole(l, &len);
    return rc < 0 ? 2 : rc;
}

_Atomic uint32_t *hcw_link_sleep_word(hcw_link *l)
{
    return l->map ? &l->rx.ctl->reader_sleeps : NULL;
}

/* Take the frame whose body of len bytes follows the length at our read
 * position, whole in the ring: copied out (the peer cannot change what is
 * parsed), its room released, then decoded. */
static int take_whole(hcw_link *l, uint32_t len, hcw_in *in, char *err,
                      size_t errlen)
{
    ring *r = &l->rx;
    uint8_t *body = hcw_in_body(in, len);
    if (body == NULL) {
        seterr(err, errlen, "worker frame: no memory for %u bytes", len);
        errno = ENOMEM;
        return -1;
    }
    ring_copy_out(l, r->pos + HDR, body, len);
    if (cpu.fd >= 0)
        cpu.frames++;
    r->pos += HDR + len;
    atomic_store(&r->ctl->head, r->pos);
    wake_flag(&r->ctl->writer_sleeps);
    return hcw_in_decode(in, len, l->from_node, err, errlen);
}

int hcw_link_try_recv(hcw_link *l, hcw_in *in, char *err, size_t errlen)
{
    if (l->map == NULL) {
        seterr(err, errlen, "worker link: not a shared-memory link");
        errno = EINVAL;
        return -1;
    }
    const char *what = l->lane ? "lane" : "worker link";
    uint32_t len = 0;
    int rc = rx_whole(l, &len);
    if (rc == -1) {
        seterr(err, errlen,
               "%s: the ring's positions are impossible (%u bytes in a ring "
               "of %u)",
               what, l->rx.seen - l->rx.pos, l->size);
        errno = EPROTO;
        return -1;
    }
    if (rc == -2) {
        seterr(err, errlen, "%s: a frame of %u bytes, over the limit of %u",
               what, len, whole_body_max(l));
        errno = EMSGSIZE;
        return -1;
    }
    return rc == 1 ? take_whole(l, len, in, err, errlen) : 0;
}

static int recv_ring(hcw_link *l, hcw_in *in, char *err, size_t errlen)
{
    ring *r = &l->rx;
    uint8_t hdr[HDR];
    uint32_t len = 0;
    uint8_t *body;
    if (l->lane)
        return hcw_link_try_recv(l, in, err, errlen);
    /* A whole frame in the ring already (the common case when frames come
     * faster than they are read): copied out at once, one release of its
     * room.  The length is copied before it is looked at. */
    uint32_t avail = rx_avail(l, HDR);
    if (avail >= HDR && avail <= l->size) {
        ring_copy_out(l, r->pos, hdr, HDR);
        len = get_le32(hdr);
        if (len > avail - HDR && len <= l->size - HDR)
            avail = rx_avail(l, HDR + len); /* (tail may have moved back) */
        if (avail >= HDR && avail <= l->size && len <= avail - HDR)
            return take_whole(l, len, in, err, errlen);
    }
    /* the previous frame is released (a fresh reader has none) */
    if (in->impl != NULL && hcw_in_body(in, 0) == NULL)
        goto nomem;
    int rc = ring_read(l, hdr, HDR, true, err, errlen);
    if (rc != 1)
        return rc;
    len = get_le32(hdr);
    if (len > HCW_MAX_FRAME) {
        seterr(err, errlen, "worker frame: %u bytes, over the limit of %u", len,
               HCW_MAX_FRAME);
        errno = EMSGSIZE;
        return -1;
    }
    body = hcw_in_body(in, len);
    if (body == NULL)
        goto nomem;
    /* copied out before decoding: the peer cannot change what is parsed */
    rc = ring_read(l, body, len, false, err, errlen);
    if (rc != 1)
        return -1;
    return hcw_in_decode(in, len, l->from_node, err, errlen);
nomem:
    seterr(err, errlen, "worker frame: no memory for %u bytes", len);
    errno = ENOMEM;
    return -1;
}

/* Spin up to the read budget for fd to become readable (poll with no
 * timeout: a system call a try, still far cheaper than sleeping and being
 * woken, which is what a peer that answers at once would cost). */
static bool spin_readable(hcw_link *l)
{
    if (l->spin_ns <= 0)
        return false;
    int64_t end = now_ns() + l->spin_ns;
    do {
        struct pollfd pf = {.fd = l->fd, .events = POLLIN};
        if (poll(&pf, 1, 0) > 0)
            return true;
    } while (now_ns() < end);
    return false;
}

/* Wait until fd is readable: 1, 0 the watch function gave up, -1 with
 * err. */
static int wait_readable(hcw_link *l, char *err, size_t errlen)
{
    if (spin_readable(l)) {
        spin_adapt(l, true);
        return 1;
    }
    if (l->spin_max_ns > 0)
        spin_adapt(l, false);
    for (;;) {
        struct pollfd pf = {.fd = l->fd, .events = POLLIN};
        int r = poll(&pf, 1, l->watch ? HCW_LINK_CHECK_MS : -1);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR) {
            seterr(err, errlen, "worker link: poll: %s", strerror(errno));
            return -1;
        }
        if (r == 0 && !still_waiting(l))
            return 0;
    }
}

/* Read what has come (at least a byte, waiting for it) into the input
 * buffer after the bytes of a frame's start that it holds.  1, 0 the peer
 * closed, -1 with errno. */
static int fill_in(hcw_link *l)
{
    if (l->in == NULL) {
        l->in = malloc(SOCKET_IN_BYTES);
        if (l->in == NULL)
            return -1;
    }
    memmove(l->in, l->in + l->in_start, l->in_end - l->in_start);
    l->in_end -= l->in_start;
    l->in_start = 0;
    for (;;) {
        ssize_t r = read(l->fd, l->in + l->in_end, SOCKET_IN_BYTES - l->in_end);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        l->in_end += (size_t)r;
        return r > 0;
    }
}

/* A frame from a socket: taken from the input buffer, which one read
 * fills with as many frames as have come; only a frame larger than what
 * came is read straight into its own memory. */
static int recv_fd(hcw_link *l, hcw_in *in, char *err, size_t errlen)
{
    uint32_t len = 0;
    /* the previous frame is released (a fresh reader has none) */
    if (in->impl != NULL && hcw_in_body(in, 0) == NULL)
        goto nomem;
    while (l->in_end - l->in_start < HDR) {
        int r = wait_readable(l, err, errlen);
        if (r != 1)
            return r; /* the watch function gave up, or poll failed */
        r = fill_in(l);
        if (r == 1)
            continue;
        if (r < 0) {
            seterr(err, errlen, "worker frame: read: %s", strerror(errno));
            return -1;
        }
        if (l->in_end == l->in_start)
            return 0; /* closed between frames */
        seterr(err, errlen, "worker frame: the connection closed in a length");
        errno = EPROTO;
        return -1;
    }
    len = get_le32(l->in + l->in_start);
    if (len > HCW_MAX_FRAME) {
        seterr(err, errlen, "worker frame: %u bytes, over the limit of %u", len,
               HCW_MAX_FRAME);
        errno = EMSGSIZE;
        return -1;
    }
    uint8_t *body = hcw_in_body(in, len);
    if (body == NULL)
        goto nomem;
    size_t have = l->in_end - l->in_start - HDR;
    if (have > len)
        have = len;
    memcpy(body, l->in + l->in_start + HDR, have);
    l->in_start += HDR + have;
    if (l->in_start == l->in_end)
        l->in_start = l->in_end = 0;
    /* the rest, straight into the body */
    if (have < len &&
        hcw_frame_body_read(l->fd, body, have, len, err, errlen) != 0)
        return -1;
    return hcw_in_decode(in, len, l->from_node, err, errlen);
nomem:
    seterr(err, errlen, "worker frame: no memory for %u bytes", len);
    errno = ENOMEM;
    return -1;
}

int hcw_link_recv(hcw_link *l, hcw_in *in, char *err, size_t errlen)
{
    return l->map ? recv_ring(l, in, err, errlen) : recv_fd(l, in, err, errlen);
}

/* hcw_link_read_some on a shared-memory link: what the receive ring holds
 * (up to cap), waiting for a byte as a frame's reader does. */
static long ring_read_some(hcw_link *l, uint8_t *p, size_t cap, char *err,
                           size_t errlen)
{
    ring *r = &l->rx;
    for (;;) {
        uint32_t tail =
            atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
        uint32_t avail = tail - r->pos;
        if (avail > l->size) {
            seterr(err, errlen,
                   "worker link: the ring's positions are "
                   "impossible (%u bytes in a ring of %u)",
                   avail, l->size);
            errno = EPROTO;
            return -1;
        }
        if (avail == 0) {
            if (wait_data(l, tail) != 1)
                return 0;
            continue;
        }
        uint32_t k = cap < avail ? (uint32_t)cap : avail;
        ring_copy_out(l, r->pos, p, k);
        r->pos += k;
        atomic_store(&r->ctl->head, r->pos);
        wake_flag(&r->ctl->writer_sleeps);
        return (long)k;
    }
}

long hcw_link_read_some(hcw_link *l, uint8_t *p, size_t cap, char *err,
                        size_t errlen)
{
    if (cap == 0)
        return 0;
    if (cap > INT32_MAX)
        cap = INT32_MAX;
    if (l->map)
        return ring_read_some(l, p, cap, err, errlen);
    if (l->in_end > l->in_start) { /* what a frame read brought first */
        size_t k =
            l->in_end - l->in_start < cap ? l->in_end - l->in_start : cap;
        memcpy(p, l->in + l->in_start, k);
        l->in_start += k;
        return (long)k;
    }
    for (;;) {
        int w = wait_readable(l, err, errlen);
        if (w != 1)
            return w;
        ssize_t n = read(l->fd, p, cap);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            seterr(err, errlen, "worker link: read: %s", strerror(errno));
        return n;
    }
}

/* ----------------------------------------------------------------- lanes
 *
 * A lane (lane.c, docs/lane-design.md) is a mapping of the same layout
 * between two workers: side 0 writes the ring at 64 (the calls ring's
 * place) and reads the one at 192, side 1 the reverse.  Neither side
 * trusts the other: frames are copied out and decoded untrusted, and
 * positions or lengths no honest writer makes are refused. */

hcw_link *hcw_link_lane(uint8_t *map, uint32_t ring_bytes, int side)
{
    if ((side != 0 && side != 1) || ring_bytes < 64 ||
        (ring_bytes & (ring_bytes - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    hcw_link *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    place(l, map, ring_bytes, side == 1);
    l->from_node = false;
    l->lane = true;
    l->map_len = HCW_LINK_HEADER_BYTES + 2 * (size_t)ring_bytes;
    /* positions as they are now: a fresh lane's are 0; a view opened
     * later (the node's, to drain a ring) starts where its reader was */
    l->tx.pos = atomic_load(&l->tx.ctl->tail);
    l->rx.pos = l->rx.seen = atomic_load(&l->rx.ctl->head);
    return l;
}

uint32_t hcw_link_rx_pos(const hcw_link *l)
{
    return l->rx.pos;
}

uint32_t hcw_link_rx_tail(const hcw_link *l)
{
    return atomic_load_explicit(&l->rx.ctl->tail, memory_order_acquire);
}

uint32_t hcw_link_tx_pos(const hcw_link *l)
{
    return l->tx.pos;
}

int hcw_link_tx_reread(hcw_link *l, uint32_t *pos, hcw_in *in, char *err,
                       size_t errlen)
{
    uint32_t left = l->tx.pos - *pos;
    if (left == 0)
        return 0;
    if (left > l->size || left < HDR) {
        seterr(err, errlen, "lane: nothing whole to read again at %u", *pos);
        return -1;
    }
    uint8_t hdr[HDR];
    uint32_t size = l->size;
    for (uint32_t i = 0; i < HDR; i++)
        hdr[i] = l->tx.data[(*pos + i) & (size - 1)];
    uint32_t len = get_le32(hdr);
    if (len > whole_body_max(l) || len > left - HDR) {
        seterr(err, errlen, "lane: a length of %u at %u", len, *pos);
        return -1;
    }
    uint8_t *body = hcw_in_body(in, len);
    if (body == NULL) {
        seterr(err, errlen, "lane: no memory for %u bytes", len);
        return -1;
    }
    for (uint32_t i = 0; i < len; i++)
        body[i] = l->tx.data[(*pos + HDR + i) & (size - 1)];
    *pos += HDR + len;
    return hcw_in_decode(in, len, false, err, errlen);
}

uint32_t hcw_link_rx_resync(hcw_link *l)
{
    l->rx.pos = l->rx.seen =
        atomic_load_explicit(&l->rx.ctl->head, memory_order_acquire);
    return l->rx.pos;
}

/* Whether links[i] has something for its reader: on a lane, a whole frame
 * or positions to refuse (a lane never streams, so a frame's start alone
 * waits for the rest); on a link, any byte (a frame larger than the ring
 * is read while it streams). */
static bool has_data(hcw_link *l)
{
    return l->lane ? hcw_link_frame_ready(l) != 0 : hcw_link_pending(l);
}

static int look_all(hcw_link *const *links, size_t n, bool *ready)
{
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        ready[i] = has_data(links[i]);
        k += ready[i];
    }
    return k;
}

/* Spin until links[0]'s budget or the deadline is used up, or a ring has
 * something: the count of those that have (then ready[] says which), or
 * 0.  After the first round, each round of looks starts with a yield as
 * spin_for's do (when links[0] yields).  A round that lost the CPU sets
 * links[0]'s spin_lost (which its caller, hcw_link_wait_any, cleared). */
static int spin_any(hcw_link *const *links, size_t n, int64_t deadline_ns,
                    bool *ready)
{
    hcw_link *first = links[0];
    uint32_t seen[HCW_LINK_WAIT_MAX];
    for (size_t i = 0; i < n; i++)
        seen[i] =
            atomic_load_explicit(&links[i]->rx.ctl->tail, memory_order_acquire);
    int64_t last = now_ns();
    int64_t end = last + first->spin_ns;
    if (end > deadline_ns)
        end = deadline_ns;
    for (size_t polls = SPIN_FIRST_POLLS;; polls = 256) {
        for (size_t round = 0; round < polls; round += n) {
            bool moved = false;
            for (size_t i = 0; i < n; i++) {
                uint32_t t = atomic_load_explicit(&links[i]->rx.ctl->tail,
                                                  memory_order_acquire);
                if (t != seen[i]) {
                    seen[i] = t;
                    moved = true;
                }
            }
            /* a tail moved: a whole frame, or only its start (a lane
             * whose writer is hostile; looked at again when it moves) */
            if (moved) {
                int k = look_all(links, n, ready);
                if (k > 0)
                    return k;
            }
            cpu_relax();
        }
        int64_t t = now_ns();
        if (t - last > SPIN_LOST_NS)
            first->spin_lost = true;
        if (t >= end)
            return 0;
        last = t;
        if (first->spin_yield)
            sched_yield();
    }
}

int hcw_link_wait_any(hcw_link *const *links, size_t n, int64_t deadline_ns,
                      bool *ready)
{
    if (n == 0 || n > HCW_LINK_WAIT_MAX) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (links[i]->map == NULL) {
            errno = EINVAL;
            return -1;
        }
    int k = look_all(links, n, ready);
    if (k > 0)
        return k;
    hcw_link *first = links[0];
    int64_t began = now_ns();
    first->spin_lost = false;
    bool held = first->spin_ns > 0 && cpu_busy(began);
    if (first->spin_ns > 0 && !held) {
        k = spin_any(links, n, deadline_ns, ready);
        if (k > 0) {
            spin_adapt(first, true);
            return k;
        }
    }
    struct futex_waitv wv[HCW_LINK_WAIT_MAX];
    memset(wv, 0, n * sizeof wv[0]);
    for (size_t i = 0; i < n; i++) {
        _Atomic uint32_t *w = &links[i]->rx.ctl->reader_sleeps;
        atomic_store(w, 1);
        wv[i].val = 1;
        wv[i].uaddr = (uintptr_t)w;
        wv[i].flags = FUTEX_32; /* shared: the writers are other processes */
    }
    /* after the flags are up: a frame from now on takes its flag down,
     * and the sleep below returns at once */
    k = look_all(links, n, ready);
    bool kicked = false;
    for (size_t i = 0; i < n; i++)
        kicked |= atomic_load(&links[i]->kicked);
    int rc = 0;
    /* the first sleep short (the writers' unfenced look, above), then
     * looked again with the flags still up */
    int64_t now = now_ns();
    int64_t short_end = now + HCW_LINK_FIRST_SLEEP_US * 1000LL;
    for (int phase = 0; phase < 2 && k == 0 && !kicked && rc == 0; phase++) {
        int64_t until =
            phase == 0 && short_end < deadline_ns ? short_end : deadline_ns;
        if (until <= now)
            break;
        struct timespec ts = {.tv_sec = (time_t)(until / 1000000000),
                              .tv_nsec = (long)(until % 1000000000)};
        if (syscall(SYS_futex_waitv, wv, (unsigned)n, 0u, &ts,
                    CLOCK_MONOTONIC) < 0) {
            if (errno == ENOSYS)
                rc = -1;
            else if (errno != ETIMEDOUT)
                break; /* woken (a flag down: EAGAIN) or a signal */
        } else {
            break; /* woken */
        }
        if (until == deadline_ns)
            break;
        k = look_all(links, n, ready);
        for (size_t i = 0; i < n; i++)
            kicked |= atomic_load(&links[i]->kicked);
        now = now_ns();
    }
    for (size_t i = 0; i < n; i++) {
        atomic_store(&links[i]->rx.ctl->reader_sleeps, 0);
        atomic_store(&links[i]->kicked, false);
    }
    if (rc < 0) {
        errno = ENOSYS;
        return -1;
    }
    k = look_all(links, n, ready);
    if (first->spin_max_ns > 0 && !held) /* (a held spin says nothing) */
        spin_adapt_slept(first, now_ns() - began, k > 0);
    return k;
}
