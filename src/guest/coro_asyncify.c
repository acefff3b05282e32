/* Stackful coroutines for wasm32 on Binaryen's asyncify (see coro.h for the
 * interface and the scheme).
 *
 * wasm has no instruction to switch stacks.  Asyncify (a Binaryen pass run
 * on the linked module: `wasm-opt --asyncify`) instruments every function
 * that can reach asyncify_start_unwind so that it can save its locals and
 * position into a buffer and return at once ("unwind"), and later be called
 * again to restore them and jump back to where it was ("rewind").  A
 * coroutine here is such a buffer plus a region of linear memory for its C
 * shadow stack (the __stack_pointer global, where clang keeps locals whose
 * address is taken and large ones):
 *
 *  - hp__coro_resume points __stack_pointer at the coroutine's region (the
 *    top at the first run, where it was at the last yield afterwards),
 *    starts a rewind unless it is the first run, and calls the coroutine's
 *    entry, which rewinds down to the yield;
 *  - hp__coro_yield records __stack_pointer and starts an unwind; every
 *    frame returns up to hp__coro_resume, which stops the unwind and puts
 *    the scheduler's __stack_pointer back.
 *
 * hp__coro_resume calls asyncify_stop_unwind and asyncify_start_rewind,
 * which makes it, for the pass, the runtime at the bottom of every unwind:
 * it is left uninstrumented, and so is every scheduler frame above it (no
 * removelist needed).  Both this and hp__coro_yield (which calls
 * start_unwind and stop_rewind, the top of the runtime, also left alone)
 * must reach the pass as functions of their own: an optimizer that inlined
 * them into their callers before it would move those roles to the callers.
 * That is why a component is linked without clang's own post-link wasm-opt
 * (-O0 at the link, cmake/wasm32-toolchain.cmake) and optimized after the
 * pass.
 *
 * Overflow: linear memory has no guard pages, and Binaryen's stack check
 * needs its limits set from outside the module.  So every function of the
 * process and the runtime is compiled with -finstrument-function-entry-bare
 * (cmake/wasm32-toolchain.cmake: after inlining), and its entry hook below
 * compares the stack pointer, once the function's frame is made and before
 * it is written, with the running coroutine's lower bound: a task that
 * would run past its stack stops there, with a trap in
 * task_stack_overflow() (the process ends; on-exit applies).  C library
 * functions are not instrumented: for their frames, a red zone of
 * HP__CORO_REDZONE bytes lies below each stack, filled with a pattern and
 * checked at a yield and when the coroutine ends -- when the coroutine's
 * frames have come near its stack's end since the last check.  Reading
 * the red zone (8 KiB) at every switch was 6-8% of a wasm host's CPU per
 * message at 64 in flight (docs/benchmarks.md); the entry hook tells when
 * it is due at no extra cost: it compares the stack pointer with a limit
 * NEAR bytes above the stack's end, and only below that one looks at the
 * real end and marks the coroutine.  A C library call made from a frame
 * above that limit would need more than NEAR bytes of frames to reach the
 * red zone, twice the red zone's own size, which the red zone would not
 * hold either. */
#include "coro.h"

#include "hyperc/abi.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__wasm32__)
#error "coro_asyncify.c is the wasm32 coroutine backend"
#endif

/* Nothing here is checked by the stack check it implements (the switch is
 * where its bounds change). */
#define UNCHECKED __attribute__((no_instrument_function))

/* The asyncify intrinsics: imports that wasm-opt replaces by its own
 * functions (no import of module "asyncify" survives the pass). */
#define ASYNCIFY(name)                                                         \
    __attribute__((import_module("asyncify"), import_name(name)))
ASYNCIFY("start_unwind") void asyncify_start_unwind(void *data);
ASYNCIFY("stop_unwind") void asyncify_stop_unwind(void);
ASYNCIFY("start_rewind") void asyncify_start_rewind(void *data);
ASYNCIFY("stop_rewind") void asyncify_stop_rewind(void);

UNCHECKED static void *sp_get(void)
{
    void *sp;
    __asm__ volatile(".globaltype __stack_pointer, i32\n\t"
                     "global.get __stack_pointer\n\t"
                     "local.set %0"
                     : "=r"(sp));
    return sp;
}

UNCHECKED static void sp_set(void *sp)
{
    __asm__ volatile(".globaltype __stack_pointer, i32\n\t"
                     "local.get %0\n\t"
                     "global.set __stack_pointer" ::"r"(sp));
}

/* The buffer's header, as asyncify reads it: where the next saved byte
 * goes, and the end of the space. */
typedef struct asyncify_data {
    uint32_t cur;
    uint32_t end;
} asyncify_data;

/* The red zone below each stack, and its pattern. */
#define HP__CORO_REDZONE ((size_t)8 * 1024)
#define REDZONE_WORD 0x5eaf00d5a11edull
/* A frame this near the stack's end makes the red zone's check due. */
#define NEAR (2 * HP__CORO_REDZONE)

struct hp__coro {
    hp__coro_fn fn;
    void *arg;
    char *block;       /* the red zone, then the stack (one malloc) */
    char *stack;       /* the shadow stack's region, above the red zone */
    size_t stack_size; /* its size */
    void *sp;          /* where __stack_pointer was at the last yield */
    asyncify_data *data;
    bool started, done;
    bool unwinding; /* set by yield, seen by resume */
    bool rewinding; /* set by resume, seen by yield */
    bool near;      /* a frame came within NEAR of the stack's end */
    size_t data_size;
    hp__coro *next_free; /* in the cache */
};

/* Freed coroutines kept for reuse (a task per message: no malloc of its
 * stack, and no filling of its red zone, which was checked when it was
 * last left). */
#define CACHE_MAX 16
static hp__coro *cache;
static unsigned ncache;

static hp__coro *current;
/* The running coroutine's lowest stack address (0: the scheduler, whose
 * stack is the module's own, first in memory), and NEAR bytes above it
 * (what the entry hook compares with first). */
static uintptr_t stack_limit;
static uintptr_t near_limit;

UNCHECKED hp__coro *hp__coro_create(size_t stack_size, hp__coro_fn fn,
                                    void *arg)
{
    if (stack_size == 0)
        stack_size = HP__CORO_STACK_DEFAULT;
    if (stack_size < HP__CORO_STACK_MIN)
        stack_size = HP__CORO_STACK_MIN;
    stack_size = (stack_size + 15) & ~(size_t)15;
    /* saved locals: a quarter of the stack's size, as asyncify keeps only
     * what wasm keeps in locals (the rest is on the shadow stack) */
    size_t data_size = stack_size / 4;
    for (hp__coro **pp = &cache; *pp; pp = &(*pp)->next_free) {
        hp__coro *co = *pp;
        if (co->stack_size == stack_size) {
            *pp = co->next_free;
            ncache--;
            co->fn = fn;
            co->arg = arg;
            co->sp = co->stack + stack_size;
            co->started = co->done = co->unwinding = co->rewinding = false;
            co->near = false;
            co->next_free = NULL;
            co->data->cur = (uint32_t)(uintptr_t)(co->data + 1);
            return co;
        }
    }
    hp__coro *co = calloc(1, sizeof *co);
    char *block = malloc(HP__CORO_REDZONE + stack_size);
    asyncify_data *data = malloc(data_size);
    if (co == NULL || block == NULL || data == NULL) {
        free(co);
        free(block);
        free(data);
        return NULL;
    }
    uint64_t *rz = (uint64_t *)block;
    for (size_t i = 0; i < HP__CORO_REDZONE / sizeof *rz; i++)
        rz[i] = REDZONE_WORD;
    char *stack = block + HP__CORO_REDZONE;
    co->fn = fn;
    co->arg = arg;
    co->block = block;
    co->stack = stack;
    co->stack_size = stack_size;
    co->sp = stack + stack_size; /* grows down, 16-aligned */
    co->data = data;
    co->data_size = data_size;
    data->cur = (uint32_t)(uintptr_t)(data + 1);
    data->end = (uint32_t)((uintptr_t)data + data_size);
    return co;
}

/* Where a task that overflowed its stack is stopped: the trap names this
 * function in the node's log.  The entry hook calls it, so it calls nothing
 * that asyncify must assume can unwind (no indirect call: not snprintf,
 * whose stream functions are pointers): else every function, since each
 * calls the hook, would be instrumented for asyncify, leaves included. */
UNCHECKED __attribute__((noinline, noreturn)) static void
task_stack_overflow(const hp__coro *co)
{
    stack_limit = near_limit = 0; /* what runs from here is not checked */
    static const char head[] =
        "task stack overflow: a task used more than its ";
    static const char tail[] =
        " KiB stack (HYPERPROCESS .task_stack_kib sets it)";
    char line[sizeof head + 20 + sizeof tail];
    char digits[20];
    size_t nd = 0;
    for (size_t kib = co->stack_size / 1024; nd == 0 || kib > 0; kib /= 10)
        digits[nd++] = (char)('0' + kib % 10);
    size_t n = sizeof head - 1;
    memcpy(line, head, n);
    while (nd > 0)
        line[n++] = digits[--nd];
    memcpy(line + n, tail, sizeof tail); /* with its NUL */
    hw_print_to_terminal(0, line);
    __builtin_trap();
}

/* The entry hook of every instrumented function: its frame is made, and
 * must lie within the running coroutine's stack. */
UNCHECKED void __cyg_profile_func_enter_bare(void);

UNCHECKED __attribute__((noinline)) static void near_end(uintptr_t sp)
{
    if (sp < stack_limit)
        task_stack_overflow(current);
    current->near = true;
}

UNCHECKED void __cyg_profile_func_enter_bare(void)
{
    uintptr_t sp = (uintptr_t)sp_get();
    if (sp < near_limit)
        near_end(sp);
}

/* Trap if the red zone below co's stack was written, when a frame came
 * near the stack's end since the last look.  At a yield, the mark stays
 * while the stack is still below the limit: a frame still live there may
 * call the C library again after the resume, and the rewind enters no
 * function anew, so no entry check would mark the task again. */
UNCHECKED static void redzone_check(hp__coro *co, uintptr_t sp)
{
    if (!co->near)
        return;
    co->near = sp < near_limit;
    const uint64_t *rz = (const uint64_t *)co->block;
    for (size_t i = 0; i < HP__CORO_REDZONE / sizeof *rz; i++)
        if (rz[i] != REDZONE_WORD)
            task_stack_overflow(co);
}

/* The coroutine's outermost frame: instrumented (it is on the path of
 * every unwind), unlike hp__coro_resume which calls it. */
UNCHECKED __attribute__((noinline)) static void coro_entry(hp__coro *co)
{
    co->fn(co->arg);
}

UNCHECKED __attribute__((noinline)) void hp__coro_resume(hp__coro *co)
{
    if (current != NULL || co == NULL || co->done)
        abort(); /* resume from a coroutine, or of a done one */
    current = co;
    void *sched_sp = sp_get();
    stack_limit = (uintptr_t)co->stack;
    near_limit = stack_limit + NEAR;
    sp_set(co->sp);
    if (co->started) {
        co->rewinding = true;
        asyncify_start_rewind(co->data);
    }
    co->started = true;
    coro_entry(co);
    if (co->unwinding) {
        asyncify_stop_unwind();
        co->unwinding = false;
    } else {
        co->done = true;
        redzone_check(co, UINTPTR_MAX);
    }
    sp_set(sched_sp);
    stack_limit = near_limit = 0;
    current = NULL;
}

UNCHECKED __attribute__((noinline)) void hp__coro_yield(void)
{
    hp__coro *co = current;
    if (co == NULL)
        abort(); /* yield outside a coroutine */
    if (!co->rewinding) {
        co->sp = sp_get();
        redzone_check(co, (uintptr_t)co->sp);
        co->unwinding = true;
        asyncify_start_unwind(co->data);
    }
    /* Reached when the rewind comes back here (whether asyncify re-enters
     * this function from its start or after the call above). */
    if (co->rewinding) {
        co->rewinding = false;
        asyncify_stop_rewind();
    }
}

UNCHECKED bool hp__coro_done(const hp__coro *co)
{
    return co->done;
}

UNCHECKED hp__coro *hp__coro_current(void)
{
    return current;
}

UNCHECKED size_t hp__coro_stack_size(const hp__coro *co)
{
    return co->stack_size;
}

UNCHECKED void hp__coro_free(hp__coro *co)
{
    if (co == NULL)
        return;
    if (co == current)
        abort(); /* a coroutine cannot free itself */
    if (ncache < CACHE_MAX) {
        co->next_free = cache;
        cache = co;
        ncache++;
        return;
    }
    free(co->data);
    free(co->block);
    free(co);
}

UNCHECKED void hp__coro_cache_release(void)
{
    while (cache != NULL) {
        hp__coro *co = cache;
        cache = co->next_free;
        free(co->data);
        free(co->block);
        free(co);
    }
    ncache = 0;
}

UNCHECKED void hp__coro_set_guard_hooks(hp__coro_guard_add_fn add,
                                        hp__coro_guard_remove_fn remove)
{
    (void)add, (void)remove; /* no guard pages in linear memory */
}
