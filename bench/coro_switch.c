/* Micro benchmark of the coroutine layer (src/guest/coro.h) beside glibc's
 * ucontext, in the same run:
 *
 * - switch: ns per round trip, the scheduler resuming a coroutine that
 *   yields straight back (two context switches);
 * - create: ns to create a coroutine, run it to its end and free it (the
 *   cost a task per message pays; hp__coro reuses freed stacks);
 * - memory: bytes of resident memory per live coroutine, as the RSS delta
 *   over N coroutines that have each run once and are suspended, stacks of
 *   the default 64 KiB (ucontext: the same stacks, mmap'd the same way).
 *
 *   coro_switch [ROUND_TRIPS [LIVE]]     defaults 10000000 and 10000
 *
 * swapcontext saves and restores the signal mask with a system call on each
 * switch; that is most of the difference, and the reason coroutine libraries
 * do not use it. */
#include "guest/coro.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

/* ------------------------------------------------------------- hp__coro */

static volatile uint64_t sink;

static void yielder(void *arg)
{
    uint64_t n = *(uint64_t *)arg;
    for (uint64_t i = 0; i < n; i++) {
        sink = i;
        hp__coro_yield();
    }
}

static double coro_switch_ns(uint64_t n)
{
    hp__coro *co = hp__coro_create(0, yielder, &n);
    hp__coro_resume(co); /* warm: the stack is touched */
    double t0 = now_ns();
    for (uint64_t i = 1; i < n; i++)
        hp__coro_resume(co);
    double t1 = now_ns();
    hp__coro_resume(co);
    if (!hp__coro_done(co))
        abort();
    hp__coro_free(co);
    return (t1 - t0) / (double)(n - 1);
}

static void noop(void *arg)
{
    sink = (uintptr_t)arg;
}

static double coro_create_ns(uint64_t n)
{
    double t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        hp__coro *co = hp__coro_create(0, noop, NULL);
        hp__coro_resume(co);
        hp__coro_free(co);
    }
    return (now_ns() - t0) / (double)n;
}

static void park(void *arg)
{
    (void)arg;
    hp__coro_yield();
}

static double coro_bytes_per_live(unsigned live)
{
    hp__coro **co = calloc(live, sizeof *co);
    long before = rss_bytes();
    for (unsigned i = 0; i < live; i++) {
        co[i] = hp__coro_create(0, park, NULL);
        if (co[i] == NULL) {
            perror("hp__coro_create");
            exit(1);
        }
        hp__coro_resume(co[i]);
    }
    long after = rss_bytes();
    for (unsigned i = 0; i < live; i++) {
        hp__coro_resume(co[i]);
        hp__coro_free(co[i]);
    }
    free(co);
    return (double)(after - before) / live;
}

/* ------------------------------------------------------- glibc ucontext */

static ucontext_t uc_main, uc_co;
static uint64_t uc_n;

static void uc_yielder(void)
{
    for (uint64_t i = 0; i < uc_n; i++) {
        sink = i;
        swapcontext(&uc_co, &uc_main);
    }
}

/* A stack like hp__coro's: guard page(s) below, mapped on demand. */
static char *uc_stack(size_t *size)
{
    size_t guard = HP__CORO_GUARD, len = HP__CORO_STACK_DEFAULT;
    char *m =
        mmap(NULL, guard + len, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED ||
        mprotect(m + guard, len, PROT_READ | PROT_WRITE) != 0) {
        perror("mmap");
        exit(1);
    }
    *size = len;
    return m + guard;
}

static void uc_unstack(char *stack)
{
    munmap(stack - HP__CORO_GUARD, HP__CORO_GUARD + HP__CORO_STACK_DEFAULT);
}

static double uc_switch_ns(uint64_t n)
{
    size_t size;
    char *stack = uc_stack(&size);
    getcontext(&uc_co);
    uc_co.uc_stack.ss_sp = stack;
    uc_co.uc_stack.ss_size = size;
    uc_co.uc_link = &uc_main;
    uc_n = n;
    makecontext(&uc_co, uc_yielder, 0);
    swapcontext(&uc_main, &uc_co);
    double t0 = now_ns();
    for (uint64_t i = 1; i < n; i++)
        swapcontext(&uc_main, &uc_co);
    double t1 = now_ns();
    swapcontext(&uc_main, &uc_co); /* returns through uc_link */
    uc_unstack(stack);
    return (t1 - t0) / (double)(n - 1);
}

static ucontext_t *uc_live;
static unsigned uc_cur;

static void uc_park(void)
{
    swapcontext(&uc_live[uc_cur], &uc_main);
}

static double uc_bytes_per_live(unsigned live)
{
    uc_live = calloc(live, sizeof *uc_live);
    char **stacks = calloc(live, sizeof *stacks);
    long before = rss_bytes();
    for (unsigned i = 0; i < live; i++) {
        size_t size;
        stacks[i] = uc_stack(&size);
        getcontext(&uc_live[i]);
        uc_live[i].uc_stack.ss_sp = stacks[i];
        uc_live[i].uc_stack.ss_size = size;
        uc_live[i].uc_link = &uc_main;
        makecontext(&uc_live[i], uc_park, 0);
        uc_cur = i;
        swapcontext(&uc_main, &uc_live[i]); /* runs until it parks */
    }
    long after = rss_bytes();
    for (unsigned i = 0; i < live; i++) {
        swapcontext(&uc_main, &uc_live[i]); /* returns through uc_link */
        uc_unstack(stacks[i]);
    }
    free(stacks);
    free(uc_live);
    return (double)(after - before) / live;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
    unsigned live = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 10000;
    if (n < 2 || live < 1) {
        fprintf(stderr, "usage: coro_switch [ROUND_TRIPS>=2 [LIVE>=1]]\n");
        return 2;
    }
    uint64_t uc_trips = n / 20 < 2 ? 2 : n / 20; /* it is that much slower */
    double cs = coro_switch_ns(n);
    double us = uc_switch_ns(uc_trips);
    double cc = coro_create_ns(n / 20 < 1 ? 1 : n / 20);
    double cm = coro_bytes_per_live(live);
    double um = uc_bytes_per_live(live);
    printf("coroutine switch, round trip (resume + yield):\n");
    printf("  hyperc hp__coro      %8.1f ns   (%llu round trips)\n", cs,
           (unsigned long long)n);
    printf("  glibc swapcontext    %8.1f ns   (%llu round trips)\n", us,
           (unsigned long long)uc_trips);
    printf("create + run to end + free:\n");
    printf("  hyperc hp__coro      %8.1f ns\n", cc);
    printf("resident memory per live coroutine (%u live, %zu KiB stacks, "
           "each run once):\n",
           live, HP__CORO_STACK_DEFAULT / 1024);
    printf("  hyperc hp__coro      %8.0f bytes\n", cm);
    printf("  glibc ucontext       %8.0f bytes (its %zu-byte ucontext_t "
           "included)\n",
           um, sizeof(ucontext_t));
    return 0;
}
