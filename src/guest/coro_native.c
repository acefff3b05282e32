/* Native coroutines (coro.h) for x86_64 and aarch64: stacks, the initial
 * frame each architecture's switch (coro_switch_<arch>.S) expects, guard
 * registration and the sanitizer annotations (ASan's stack switches,
 * TSan's fibers).
 *
 * A coroutine is one mapping: the guard (PROT_NONE) at the bottom, the stack
 * above it, and the hp__coro record in the stack's top bytes, so creating one
 * allocates nothing else.  Freed stacks are kept in a small cache (mapping,
 * guard and its registration included) and handed to the next create of the
 * same size, which then costs no system call.
 *
 * State is the instance's (hp__inst()): the guest is single-threaded, and
 * one copy of this code serves every instance in a node. */
#include "coro.h"
#include "rt_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "hyperc coroutines: x86_64 and aarch64 only"
#endif

#ifdef HP_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#endif
#ifdef HP_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* Defined in coro_switch_<arch>.S. */
void hp__coro_switch(void **save_sp, void *to_sp);
void hp__coro_trampoline(void);

struct hp__coro {
    void *sp; /* saved stack pointer while not running */
    hp__coro_fn fn;
    void *arg;
    char *map;         /* the whole mapping: guard, then stack */
    size_t map_len;    /* guard + stack */
    size_t stack_size; /* usable bytes: from map + guard up to the top */
    int guard;         /* handle from the guard_add hook, or -1 */
    bool done;
    hp__coro *next_free; /* in the cache */
#ifdef HP_ASAN
    void *fake_stack; /* ASan's fake stack of the coroutine while away */
#endif
#ifdef HP_TSAN
    void *tsan;      /* TSan's context for this stack (kept in the cache) */
    void *tsan_from; /* the context that resumed it */
#endif
};

/* Freed coroutines kept for reuse: enough for a process with a hundred
 * calls in flight to create and free its tasks without a system call (an
 * munmap in a threaded node makes every CPU flush its TLB).  The cache
 * never holds more than were live at once; what a burst leaves beyond
 * this is unmapped. */
#define CACHE_MAX 128

/* The scheduler's state is the instance's (rt_int.h, hp__coro_state):
 * the running coroutine, the scheduler's stack pointer while one runs, the
 * cache, the guard hooks and, with ASan, the scheduler's stack as ASan
 * knows it (learnt at each switch into a coroutine and handed back at each
 * switch out of it).  The page size is the system's. */
#define current (hp__inst()->coro.current)
#define sched_sp (hp__inst()->coro.sched_sp)
#define cache (hp__inst()->coro.cache)
#define ncache (hp__inst()->coro.ncache)
#define guard_add (hp__inst()->coro.guard_add)
#define guard_remove (hp__inst()->coro.guard_remove)
#define sched_stack_lo (hp__inst()->coro.sched_stack_lo)
#define sched_stack_size (hp__inst()->coro.sched_stack_size)
static _Atomic size_t page; /* set by the first thread that asks */

void hp__coro_set_guard_hooks(hp__coro_guard_add_fn add,
                              hp__coro_guard_remove_fn remove)
{
    guard_add = add;
    guard_remove = remove;
}

static size_t page_size(void)
{
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (p == 0) {
        long s = sysconf(_SC_PAGESIZE);
        p = s > 0 ? (size_t)s : 4096;
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}

#ifdef HP_ASAN
static char *stack_lo(const hp__coro *co)
{
    return co->map + (co->map_len - co->stack_size);
}
#endif

/* The coroutine's first frame: what hp__coro_switch pops to "return" into
 * hp__coro_trampoline, which calls entry(co). */
static void init_frame(hp__coro *co, void (*entry)(hp__coro *))
{
    /* The record sits at the top of the stack; frames start below it,
     * 16-byte aligned as both ABIs want. */
    uintptr_t top = (uintptr_t)co & ~(uintptr_t)15;
    uint64_t *s = (uint64_t *)top;
#if defined(__x86_64__)
    /* After the switch's ret, rsp = top - 16 (16-aligned), so the
     * trampoline's call leaves the entry with rsp + 8 aligned, as after any
     * call.  The two zero words above end backtraces. */
    s[-1] = 0;
    s[-2] = 0;
    s[-3] = (uint64_t)(uintptr_t)hp__coro_trampoline; /* return address */
    s[-4] = 0;                                        /* rbp */
    s[-5] = 0;                                        /* rbx */
    s[-6] = (uint64_t)(uintptr_t)co;                  /* r12: argument */
    s[-7] = (uint64_t)(uintptr_t)entry;               /* r13: entry */
    s[-8] = 0;                                        /* r14 */
    s[-9] = 0;                                        /* r15 */
    /* MXCSR: all exceptions masked, round to nearest; x87 control word:
     * all exceptions masked, double extended precision, round to nearest.
     * The processor's defaults, as a new thread starts with. */
    s[-10] = (uint64_t)0x1F80 | (uint64_t)0x037F << 32;
    co->sp = &s[-10];
#elif defined(__aarch64__)
    /* The 176-byte block of coro_switch_aarch64.S; after it, sp = top. */
    uint64_t *b = s - 22;
    memset(b, 0, 22 * sizeof *b);
    b[0] = (uint64_t)(uintptr_t)co;                   /* x19: argument */
    b[1] = (uint64_t)(uintptr_t)entry;                /* x20: entry */
    b[11] = (uint64_t)(uintptr_t)hp__coro_trampoline; /* x30 */
    /* x29 = 0 ends backtraces; FPCR = 0: round to nearest, no traps. */
    co->sp = b;
#endif
}

/* Where every coroutine starts (through the trampoline) and ends. */
__attribute__((noreturn)) static void coro_main(hp__coro *co)
{
#ifdef HP_ASAN
    __sanitizer_finish_switch_fiber(NULL, &sched_stack_lo, &sched_stack_size);
#endif
    co->fn(co->arg);
    co->done = true;
#ifdef HP_ASAN
    /* No save slot: ASan drops this coroutine's fake stack. */
    __sanitizer_start_switch_fiber(NULL, sched_stack_lo, sched_stack_size);
#endif
#ifdef HP_TSAN
    __tsan_switch_to_fiber(co->tsan_from, 0);
#endif
    hp__coro_switch(&co->sp, sched_sp);
    abort(); /* a done coroutine is never resumed */
}

static hp__coro *cache_take(size_t stack_size)
{
    for (hp__coro **pp = &cache; *pp; pp = &(*pp)->next_free) {
        hp__coro *co = *pp;
        if (co->stack_size == stack_size) {
            *pp = co->next_free;
            ncache--;
            return co;
        }
    }
    return NULL;
}

static void unmap(hp__coro *co)
{
    if (co->guard >= 0 && guard_remove)
        guard_remove(co->guard);
#ifdef HP_TSAN
    __tsan_destroy_fiber(co->tsan);
#endif
    munmap(co->map, co->map_len);
}

hp__coro *hp__coro_create(size_t stack_size, hp__coro_fn fn, void *arg)
{
    size_t pg = page_size();
    if (stack_size == 0)
        stack_size = HP__CORO_STACK_DEFAULT;
    if (stack_size < HP__CORO_STACK_MIN)
        stack_size = HP__CORO_STACK_MIN;
    if (stack_size > SIZE_MAX / 2) {
        errno = ENOMEM;
        return NULL;
    }
    stack_size = (stack_size + pg - 1) & ~(pg - 1);
    hp__coro *co = cache_take(stack_size);
    if (co == NULL) {
        size_t guard = (HP__CORO_GUARD + pg - 1) & ~(pg - 1);
        size_t len = guard + stack_size;
        char *map = mmap(
            NULL, len, PROT_NONE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (map == MAP_FAILED)
            return NULL;
        if (mprotect(map + guard, stack_size, PROT_READ | PROT_WRITE) != 0) {
            int e = errno;
            munmap(map, len);
            errno = e;
            return NULL;
        }
        uintptr_t rec = ((uintptr_t)(map + len) - sizeof *co) & ~(uintptr_t)63;
        co = (hp__coro *)rec;
        memset(co, 0, sizeof *co);
        co->map = map;
        co->map_len = len;
        co->stack_size = stack_size;
        co->guard = guard_add ? guard_add(map, guard) : -1;
#ifdef HP_TSAN
        co->tsan = __tsan_create_fiber(0);
#endif
    }
    co->fn = fn;
    co->arg = arg;
    co->done = false;
    co->next_free = NULL;
#ifdef HP_ASAN
    co->fake_stack = NULL;
    /* Pointers held only by a suspended coroutine's frames (or its
     * record) are live. */
    __lsan_register_root_region(stack_lo(co), co->stack_size);
#endif
    init_frame(co, coro_main);
    return co;
}

void hp__coro_resume(hp__coro *co)
{
    if (current != NULL || co == NULL || co->done)
        abort(); /* resume from a coroutine, or of a done one */
    current = co;
#ifdef HP_ASAN
    void *sched_fake;
    __sanitizer_start_switch_fiber(&sched_fake, stack_lo(co), co->stack_size);
#endif
#ifdef HP_TSAN
    co->tsan_from = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(co->tsan, 0);
#endif
    hp__coro_switch(&sched_sp, co->sp);
#ifdef HP_ASAN
    __sanitizer_finish_switch_fiber(sched_fake, NULL, NULL);
#endif
    current = NULL;
}

void hp__coro_yield(void)
{
    hp__coro *co = current;
    if (co == NULL)
        abort(); /* yield outside a coroutine */
#ifdef HP_ASAN
    __sanitizer_start_switch_fiber(&co->fake_stack, sched_stack_lo,
                                   sched_stack_size);
#endif
#ifdef HP_TSAN
    __tsan_switch_to_fiber(co->tsan_from, 0);
#endif
    hp__coro_switch(&co->sp, sched_sp);
#ifdef HP_ASAN
    __sanitizer_finish_switch_fiber(co->fake_stack, &sched_stack_lo,
                                    &sched_stack_size);
#endif
}

bool hp__coro_done(const hp__coro *co)
{
    return co->done;
}

hp__coro *hp__coro_current(void)
{
    return current;
}

size_t hp__coro_stack_size(const hp__coro *co)
{
    return co->stack_size;
}

void hp__coro_free(hp__coro *co)
{
    if (co == NULL)
        return;
    if (co == current)
        abort(); /* a coroutine cannot free itself */
#ifdef HP_ASAN
    __lsan_unregister_root_region(stack_lo(co), co->stack_size);
    /* Frames that never returned leave their redzones poisoned; the next
     * user of this memory must not inherit them. */
    ASAN_UNPOISON_MEMORY_REGION(stack_lo(co), co->stack_size);
#endif
    if (ncache < CACHE_MAX) {
        co->next_free = cache;
        cache = co;
        ncache++;
        return;
    }
    unmap(co);
}

void hp__coro_cache_release(void)
{
    while (cache != NULL) {
        hp__coro *co = cache;
        cache = co->next_free;
        unmap(co);
    }
    ncache = 0;
}
