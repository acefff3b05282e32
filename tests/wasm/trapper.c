/* trapper: a raw-ABI process for the wasm target's crash handling.  It
 * answers each request: "ping" with "pong <n>" (n counts the requests of
 * this instance), "trap" by executing `unreachable`, "exit" by calling
 * exit(3) (a trap too: src/guest/wasi_shim.c), "print" by printf to stdout
 * and stderr before answering; "deep" and "overflow" run a coroutine of
 * libhyperc (src/guest/coro.h, 16 KiB of stack) that recurses with 512-byte
 * frames, yielding at every level: "deep" 20 levels (within the stack, then
 * it answers "pong <n>"), "overflow" without end (the red zone below the
 * stack is hit, and the process stops with a trap in task_stack_overflow);
 * "redzone" runs a coroutine of 64 KiB that recurses to within a KiB of its
 * stack's end, yields there, then calls a function left uninstrumented (as
 * the C library is) whose 4 KiB frame writes into the red zone below the
 * stack, returns and yields: the red zone's check stops the process there;
 * "busy" answers, then computes for a while (half a billion steps,
 * about half a second) without calling any import before it receives again;
 * "outside" reads a byte 16 bytes below 4 GiB, past the end of its memory. */
#include <hyperc/abi.h>

#include "guest/coro.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void answer(const char *text)
{
    hw_response r = {0};
    r.body.ptr = (uint8_t *)text;
    r.body.len = strlen(text);
    hw_send_response(&r, NULL);
}

__attribute__((noinline)) static void trap_here(void)
{
    __builtin_trap();
}

__attribute__((noinline)) static int recurse(int depth, int limit)
{
    volatile char frame[512];
    memset((char *)frame, depth, sizeof frame);
    hp__coro_yield();
    int below = depth + 1 < limit ? recurse(depth + 1, limit) : 0;
    return below + frame[depth % 512];
}

static void deep(void *arg)
{
    recurse(0, *(int *)arg);
}

/* As a C library function: no entry check of its own. */
__attribute__((noinline, no_instrument_function)) static int
unchecked_frame(void)
{
    volatile char frame[4096];
    for (size_t i = 0; i < sizeof frame; i++)
        frame[i] = 1;
    return frame[7];
}

/* Recurse with small checked frames until less than a KiB of the stack
 * that starts at `top` is left, then yield (the red zone is still clean;
 * the resume enters no function anew) and call unchecked_frame. */
__attribute__((noinline)) static int near_end(uintptr_t top, size_t size)
{
    volatile char frame[128];
    memset((char *)frame, 2, sizeof frame);
    if (top - (uintptr_t)frame < size - 1024)
        return near_end(top, size) + frame[1];
    hp__coro_yield();
    return unchecked_frame() + frame[0];
}

static void into_redzone(void *arg)
{
    volatile char top;
    near_end((uintptr_t)&top, *(size_t *)arg);
    hp__coro_yield();
}

/* A load outside the linear memory (a trap in every runtime). */
__attribute__((noinline)) static int read_outside(void)
{
    volatile const uint8_t *p = (const uint8_t *)(uintptr_t)0xfffffff0u;
    return *p;
}

static void run_coroutine(int limit)
{
    hp__coro *co = hp__coro_create(16 * 1024, deep, &limit);
    while (!hp__coro_done(co))
        hp__coro_resume(co);
    hp__coro_free(co);
}

void hw_init(const char *our)
{
    unsigned n = 0;
    hw_print_to_terminal(0, "trapper: started");
    for (;;) {
        hw_receive_result r;
        hw_receive(&r);
        if (!r.is_err && r.message.kind == HW_MESSAGE_REQUEST) {
            const hw_bytes *b = &r.message.request.body;
            char body[32] = {0};
            memcpy(body, b->ptr,
                   b->len < sizeof body - 1 ? b->len : sizeof body - 1);
            n++;
            if (strcmp(body, "trap") == 0)
                trap_here();
            if (strcmp(body, "exit") == 0)
                exit(3);
            if (strcmp(body, "outside") == 0)
                n += (unsigned)read_outside();
            if (strcmp(body, "deep") == 0)
                run_coroutine(20);
            if (strcmp(body, "overflow") == 0)
                run_coroutine(1 << 30);
            if (strcmp(body, "redzone") == 0) {
                size_t size = 64 * 1024;
                hp__coro *co = hp__coro_create(size, into_redzone, &size);
                while (!hp__coro_done(co))
                    hp__coro_resume(co);
                hp__coro_free(co);
            }
            if (strcmp(body, "print") == 0) {
                printf("trapper: to stdout %u\n", n);
                fprintf(stderr, "trapper: to stderr %u\n", n);
            }
            char reply[64];
            snprintf(reply, sizeof reply, "pong %u", n);
            answer(reply);
            if (strcmp(body, "busy") == 0) {
                volatile uint64_t x = n;
                for (uint64_t i = 0; i < 500000000u; i++)
                    x = x * 6364136223846793005u + 1;
            }
        }
        hw_receive_result_fini(&r);
    }
    (void)our;
}
