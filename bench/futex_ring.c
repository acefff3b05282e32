/* The floor under an isolated round trip: a token passed around a ring of
 * OS processes through shared memory, each waiting for its turn the way the
 * worker link does (docs/benchmarks.md, "Isolated processes: where a round
 * trip goes").
 *
 *   futex_ring [ROUND_TRIPS [PROCESSES [SPIN_US]]]  defaults 20000, 2, 0
 *
 * With 2 processes a round is a ping-pong (two wake-ups); with 4 it has the
 * four hand-overs of an isolated round trip since the direct hand-over
 * (worker A -> A's node thread -> worker B -> B's node thread -> worker A)
 * and with 6 the six of one before it.  SPIN_US is how long a process spins
 * on its word before it sleeps on the futex (0: it sleeps at once), as
 * --spin-us does for the link.  Prints one line of JSON: round trips/s, the
 * p50 and p99 of a round trip, and the futex wake-ups made. */
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 16

/* One cache line per process: whose turn (a counter) and whether it
 * sleeps. */
typedef struct slot {
    _Alignas(64) _Atomic uint32_t turn;
    _Atomic uint32_t sleeps;
} slot;

typedef struct shared {
    slot s[MAX_PROCS];
    _Atomic uint64_t wakes;
} shared;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait until *w differs from seen: spin up to spin_ns, then sleep on the
 * futex with the sleeps flag up (the waker takes it down, as link.c). */
static uint32_t await(slot *sl, uint32_t seen, int64_t spin_ns)
{
    uint32_t v;
    if (spin_ns > 0) {
        int64_t end = now_ns() + spin_ns;
        do {
            for (int i = 0; i < 256; i++)
                if ((v = atomic_load_explicit(&sl->turn,
                                              memory_order_acquire)) != seen)
                    return v;
        } while (now_ns() < end);
    }
    for (;;) {
        atomic_store(&sl->sleeps, 1);
        if ((v = atomic_load(&sl->turn)) != seen) {
            atomic_store(&sl->sleeps, 0);
            return v;
        }
        syscall(SYS_futex, (uint32_t *)&sl->turn, FUTEX_WAIT, seen, NULL, NULL,
                0);
        atomic_store(&sl->sleeps, 0);
        if ((v = atomic_load(&sl->turn)) != seen)
            return v;
    }
}

static void pass(shared *sh, slot *sl)
{
    atomic_fetch_add(&sl->turn, 1);
    if (atomic_load(&sl->sleeps) && atomic_exchange(&sl->sleeps, 0)) {
        syscall(SYS_futex, (uint32_t *)&sl->turn, FUTEX_WAKE, 1, NULL, NULL, 0);
        atomic_fetch_add_explicit(&sh->wakes, 1, memory_order_relaxed);
    }
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000;
    int k = argc > 2 ? atoi(argv[2]) : 2;
    long spin_us = argc > 3 ? atol(argv[3]) : 0;
    if (n < 1 || k < 2 || k > MAX_PROCS || spin_us < 0) {
        fprintf(stderr,
                "usage: futex_ring [ROUND_TRIPS [PROCESSES 2..%d [SPIN_US]]]\n",
                MAX_PROCS);
        return 2;
    }
    shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    int64_t spin_ns = spin_us * 1000;
    long warm = n / 10 + 100;
    /* processes 1..k-1 pass the token on; process 0 times the rounds */
    for (int i = 1; i < k; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            uint32_t seen = 0;
            for (long r = 0; r < n + warm; r++) {
                seen = await(&sh->s[i], seen, spin_ns);
                pass(sh, &sh->s[(i + 1) % k]);
            }
            _exit(0);
        }
    }
    int64_t *lat = malloc((size_t)n * sizeof *lat);
    if (lat == NULL)
        return 1;
    uint32_t seen = 0;
    int64_t t0 = 0;
    for (long r = 0; r < n + warm; r++) {
        if (r == warm) {
            t0 = now_ns();
            atomic_store(&sh->wakes, 0);
        }
        int64_t a = now_ns();
        pass(sh, &sh->s[1]);
        seen = await(&sh->s[0], seen, spin_ns);
        if (r >= warm)
            lat[r - warm] = now_ns() - a;
    }
    int64_t t = now_ns() - t0;
    while (wait(NULL) > 0) {
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("{\"processes\":%d,\"spin_us\":%ld,\"round_trips\":%ld,"
           "\"per_s\":%.0f,\"p50_us\":%.2f,\"p99_us\":%.2f,"
           "\"wakes_per_round\":%.2f}\n",
           k, spin_us, n, (double)n * 1e9 / (double)t, lat[n / 2] / 1e3,
           lat[n * 99 / 100] / 1e3,
           (double)atomic_load(&sh->wakes) / (double)n);
    free(lat);
    return 0;
}
