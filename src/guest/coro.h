/* Internal to libhyperc: stackful coroutines on one thread.
 *
 * The layer under the guest runtime's tasks.  It is asymmetric: a single
 * scheduler context (the thread's own stack, where hw_init runs) resumes a
 * coroutine; the coroutine runs until it yields or its function returns, and
 * control comes back to the resume call.  A coroutine never switches to
 * another coroutine directly, and resume is never called from inside a
 * coroutine.  Nothing here is thread-safe: a process is single-threaded, and
 * every coroutine belongs to the thread that created it.
 *
 *   hp__coro *co = hp__coro_create(0, fn, arg);   // not started yet
 *   while (!hp__coro_done(co))
 *       hp__coro_resume(co);                      // runs fn until it yields
 *   hp__coro_free(co);
 *
 * Native implementation (coro_native.c with coro_switch_<arch>.S, x86_64 and
 * aarch64): a switch saves the callee-saved registers of the ABI (x86_64:
 * rbx, rbp, r12-r15, the MXCSR and x87 control words; aarch64: x19-x29, lr,
 * d8-d15, FPCR) on the current stack and loads the other context's stack
 * pointer.  Each stack is an mmap'd region with a PROT_NONE guard below it
 * (HP__CORO_GUARD bytes): running off the stack faults instead of corrupting
 * memory.  The guard is registered with the host through the hooks below, so
 * that the node reports the fault as a stack overflow of this process and
 * stops only it.  With AddressSanitizer the switches are announced with
 * __sanitizer_start/finish_switch_fiber, and live stacks are LeakSanitizer
 * root regions (memory referenced only from a suspended task is not a leak).
 *
 * A wasm32 implementation (Binaryen asyncify, later) maps onto the same
 * calls without changing callers: a coroutine is an asyncify data buffer
 * (saved locals and call stack, sized by stack_size) plus a slice of linear
 * memory for its C shadow stack.  hp__coro_resume sets __stack_pointer to the
 * coroutine's slice, calls asyncify_start_rewind(buffer) unless it is the
 * first run, and calls the coroutine's entry function directly; the entry
 * rewinds to the yield point.  hp__coro_yield records the coroutine's stack
 * pointer, calls asyncify_start_unwind(buffer) and returns; every frame
 * unwinds up to the resume call, which calls asyncify_stop_unwind() and
 * restores the scheduler's stack pointer.  That is why the interface is
 * asymmetric and resume is only legal from the scheduler: asyncify can only
 * unwind to the frame that called into the coroutine.  Overflow there is
 * caught by Binaryen's --stack-check pass (the shadow stack pointer against
 * the slice's bounds) instead of a guard page, and the hooks below do
 * nothing. */
#ifndef HYPERC_GUEST_CORO_H
#define HYPERC_GUEST_CORO_H

#include <stdbool.h>
#include <stddef.h>

/* HP_ASAN: built with AddressSanitizer (clang's or gcc's spelling), for
 * the runtime's files that announce stack switches or keep freed records
 * (which the sanitizer must see freed). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HP_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(HP_ASAN)
#define HP_ASAN 1
#endif

/* HP_TSAN: built with ThreadSanitizer, which is told of every switch
 * between coroutines (its fiber interface) so that it follows each stack. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HP_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(HP_TSAN)
#define HP_TSAN 1
#endif

/* Default usable stack size: 64 KiB.  Enough for handlers that keep large
 * buffers on the heap or in the per-message arena; deep recursion or big
 * local arrays need a larger stack.  Memory is committed only as the stack
 * is touched: a coroutine that never goes deep costs a few pages. */
#define HP__CORO_STACK_DEFAULT ((size_t)64 * 1024)
/* Smallest usable stack accepted (smaller requests are raised to it). */
#define HP__CORO_STACK_MIN ((size_t)16 * 1024)
/* Size of the PROT_NONE guard below each stack.  Address space only, no
 * memory.  As large as the probing interval of -fstack-clash-protection on
 * aarch64 (64 KiB), so that no frame can step over it; the guest runtime is
 * built with stack-clash protection and passes it on to processes. */
#define HP__CORO_GUARD ((size_t)64 * 1024)

typedef struct hp__coro hp__coro;
typedef void (*hp__coro_fn)(void *arg);

/* A new coroutine that will run fn(arg) on a stack of its own.  stack_size
 * is the usable size in bytes: 0 means HP__CORO_STACK_DEFAULT; it is raised
 * to HP__CORO_STACK_MIN and rounded up to whole pages.  The coroutine does
 * not run until the first hp__coro_resume.  NULL when the memory cannot be
 * mapped (errno says why; the kernel's vm.max_map_count bounds the number of
 * live coroutines, at two mappings each). */
hp__coro *hp__coro_create(size_t stack_size, hp__coro_fn fn, void *arg);

/* From the scheduler only: run co until it yields or its function returns.
 * co must not be done. */
void hp__coro_resume(hp__coro *co);

/* From inside a coroutine only: suspend it and return to the resume call
 * that ran it.  Returns when it is resumed again. */
void hp__coro_yield(void);

/* Whether co's function has returned. */
bool hp__coro_done(const hp__coro *co);

/* The running coroutine, or NULL in the scheduler. */
hp__coro *hp__coro_current(void);

/* The usable stack size of co in bytes (after rounding). */
size_t hp__coro_stack_size(const hp__coro *co);

/* Release co: done, never started, or suspended (from the scheduler).  A
 * suspended coroutine's frames are discarded without running anything in
 * them; whatever they own leaks unless the caller has taken care of it.
 * Freeing NULL does nothing. */
void hp__coro_free(hp__coro *co);

/* Release every freed coroutine kept for reuse (their stacks' memory goes
 * back to the system; the next creates map or allocate new ones).  For
 * after a one-off deep use, such as the app's init: an idle process then
 * holds no stack it touched to start.  Never from inside a coroutine of
 * the cache (none is running: they are all freed ones). */
void hp__coro_cache_release(void);

/* Guard reporting.  The ABI binding (abi_native.c) installs these when the
 * host takes guard ranges; until then, or with NULL, guards are not
 * registered (a fault in one then is an ordinary SIGSEGV).  add returns a
 * handle >= 0 to pass to remove, or -1 if the host refused. */
typedef int (*hp__coro_guard_add_fn)(const void *lo, size_t len);
typedef void (*hp__coro_guard_remove_fn)(int handle);
void hp__coro_set_guard_hooks(hp__coro_guard_add_fn add,
                              hp__coro_guard_remove_fn remove);

#endif
