/* stackhog: a raw-ABI test process that runs each request's work in a
 * coroutine of libhyperc (src/guest/coro.h) and can overflow that
 * coroutine's stack on purpose, for the black-box tests of stack overflow
 * detection.
 *
 *   ping             answer "pong N", N = requests this instance got
 *   deep KIB         use about KIB KiB of the task's 64 KiB stack, answer
 *                    "deep ok"
 *   overflow         recurse in the process's own code until the guard
 *                    below the task's stack is hit; never answers
 *   overflow-host    recurse until under 800 bytes are left, then call
 *                    the host (hw_print_to_terminal), whose own frames
 *                    (the node's logging, libc's stdio and time functions,
 *                    with their locks) run into the guard; never answers
 *   null             write through a null pointer in the task: not an
 *                    overflow, so the node's default behaviour follows
 *                    (it dies; under ASan with ASan's report)
 *   null-inline      the same in a function inlined into the task (always,
 *                    at any optimization): the crash is named by both
 *   abort, fpe       abort(), an integer division by zero (for isolated
 *                    workers: each ends the worker alone)
 *   exit N           exit(N) in the middle of a request
 *   spin             loop for ever without calling the host
 *   open [PATH]      fopen(PATH, "r") (default /etc/passwd): answer "open
 *                    ok" or "open failed: <errno text>" (isolated, the
 *                    sandbox ends the worker first)
 *   socket           socket(AF_INET, SOCK_STREAM, 0), answered likewise
 *   fork             fork(), answered likewise (a child exits at once)
 *   recvmsg FD       recvmsg(FD, ..., MSG_DONTWAIT) with room for a
 *                    descriptor: answer "recvmsg N" (bytes) or "recvmsg
 *                    failed: <errno text>"
 *   send FD          send(FD, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL),
 *                    answered likewise
 *   sort N           qsort N numbers (libc asks the machine's memory size
 *                    for a large one): answer "sorted N"
 *   printf           printf to stdout and flush: answer "printed N"
 *   alloc MIB        malloc and fill 1 MiB blocks up to MIB MiB: answer
 *                    "alloc ok MIB" or "alloc failed after N MiB" when
 *                    malloc returns NULL (the blocks are freed again)
 *
 * The request being handled is kept in a global, not on the thread's
 * stack: the node stops the instance by a jump that discards that stack,
 * and the instance's globals stay mapped (so LeakSanitizer sees the
 * request's memory as reachable, as a scheduler's task table would). */
#include <hyperc/abi.h>

#include "guest/coro.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define TASK_STACK ((size_t)64 * 1024)

static hw_receive_result cur;
static unsigned long requests;
static char task_cmd[64];
static long task_arg;
static uintptr_t task_lo;   /* the lowest address of the task's stack */
static char task_path[512]; /* the command's argument as text */
static char task_answer[128];

static void answer(const char *text)
{
    hw_response r = {0};
    r.body.ptr = (uint8_t *)text;
    r.body.len = strlen(text);
    hw_send_response(&r, NULL);
}

static unsigned deep(long kib)
{
    volatile char pad[1000];
    pad[0] = (char)kib;
    if (kib <= 0)
        return 0;
    return deep(kib - 1) + (unsigned)pad[0] * 0 + 1;
}

static unsigned long runaway(unsigned long n)
{
    volatile char pad[256];
    pad[0] = (char)n;
    if (n == SIZE_MAX) /* never: the guard comes first */
        return 0;
    return runaway(n + 1) + (unsigned long)pad[0];
}

/* Go down in small frames until fewer than `left` bytes of the stack are
 * unused, then make a host call there.  The frame address, not a local's:
 * under ASan locals may live elsewhere. */
static unsigned long to_the_edge(size_t left)
{
    volatile char pad[64];
    pad[0] = 1;
    if ((uintptr_t)__builtin_frame_address(0) - task_lo > left)
        return to_the_edge(left) + (unsigned long)pad[0];
    hw_print_to_terminal(0, "stackhog: host call at the edge of the stack");
    return 0;
}

/* A real division (the trap, SIGFPE), not the sanitizer's check. */
__attribute__((no_sanitize("integer-divide-by-zero"), noinline)) static int
divide(volatile int num, volatile int den)
{
    return num / den;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Sort n numbers in descending order into ascending. */
static void sort(long n)
{
    int *v = malloc((n > 0 ? (size_t)n : 1) * sizeof *v);
    for (long i = 0; v && i < n; i++)
        v[i] = (int)(n - i);
    if (v)
        qsort(v, (size_t)n, sizeof *v, cmp_int);
    bool ok = v != NULL;
    for (long i = 1; ok && i < n; i++)
        ok = v[i - 1] <= v[i];
    snprintf(task_answer, sizeof task_answer, ok ? "sorted %ld" : "unsorted",
             n);
    free(v);
}

/* Fill 1 MiB blocks up to mib MiB, then free them. */
static void alloc(long mib)
{
    void **blocks = calloc(mib > 0 ? (size_t)mib : 1, sizeof *blocks);
    long got = 0;
    while (blocks && got < mib) {
        void *b = malloc((size_t)1 << 20);
        if (b == NULL)
            break;
        memset(b, 0x5a, (size_t)1 << 20);
        blocks[got++] = b;
    }
    if (blocks && got == mib)
        snprintf(task_answer, sizeof task_answer, "alloc ok %ld", mib);
    else
        snprintf(task_answer, sizeof task_answer, "alloc failed after %ld MiB",
                 got);
    for (long i = 0; i < got; i++)
        free(blocks[i]);
    free(blocks);
}

/* null-inline's write, inlined into task even without optimization. */
static inline __attribute__((always_inline)) void poke_null(void)
{
    volatile int *volatile nowhere = NULL;
    *nowhere = 1;
}

static void task(void *arg)
{
    (void)arg;
    /* The task's frame is in the top page of its stack (the coroutine's
     * record and first frames are all that is above it), and the stack is
     * TASK_STACK bytes, a whole number of pages (coro_native.c). */
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t top = ((uintptr_t)__builtin_frame_address(0) + pg) & ~(pg - 1);
    task_lo = top - TASK_STACK;
    if (strcmp(task_cmd, "deep") == 0) {
        deep(task_arg);
        snprintf(task_answer, sizeof task_answer, "deep ok");
    } else if (strcmp(task_cmd, "overflow") == 0) {
        runaway(0);
        snprintf(task_answer, sizeof task_answer, "no overflow?");
    } else if (strcmp(task_cmd, "null") == 0) {
        volatile int *volatile nowhere = NULL;
        *nowhere = 1;
        snprintf(task_answer, sizeof task_answer, "no fault?");
    } else if (strcmp(task_cmd, "null-inline") == 0) {
        poke_null();
        snprintf(task_answer, sizeof task_answer, "no fault?");
    } else if (strcmp(task_cmd, "abort") == 0) {
        abort();
    } else if (strcmp(task_cmd, "fpe") == 0) {
        snprintf(task_answer, sizeof task_answer, "%d", divide(7, 0));
    } else if (strcmp(task_cmd, "exit") == 0) {
        exit((int)task_arg);
    } else if (strcmp(task_cmd, "spin") == 0) {
        for (volatile unsigned long i = 0;; i++)
            ;
    } else if (strcmp(task_cmd, "open") == 0) {
        FILE *f = fopen(task_path[0] ? task_path : "/etc/passwd", "r");
        if (f)
            fclose(f);
        snprintf(task_answer, sizeof task_answer, "open %s%s",
                 f ? "ok" : "failed: ", f ? "" : strerror(errno));
    } else if (strcmp(task_cmd, "socket") == 0) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd >= 0)
            close(fd);
        snprintf(task_answer, sizeof task_answer, "socket %s%s",
                 fd >= 0 ? "ok" : "failed: ", fd >= 0 ? "" : strerror(errno));
    } else if (strcmp(task_cmd, "fork") == 0) {
        pid_t child = fork();
        if (child == 0)
            _exit(0);
        if (child > 0)
            waitpid(child, NULL, 0);
        snprintf(
            task_answer, sizeof task_answer, "fork %s%s",
            child > 0 ? "ok" : "failed: ", child > 0 ? "" : strerror(errno));
    } else if (strcmp(task_cmd, "recvmsg") == 0) {
        char b[16];
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int))];
        } cm;
        struct iovec iov = {.iov_base = b, .iov_len = sizeof b};
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = cm.buf,
                           .msg_controllen = sizeof cm.buf};
        ssize_t n = recvmsg((int)task_arg, &m, MSG_DONTWAIT);
        if (n >= 0)
            snprintf(task_answer, sizeof task_answer, "recvmsg %zd", n);
        else
            snprintf(task_answer, sizeof task_answer, "recvmsg failed: %s",
                     strerror(errno));
    } else if (strcmp(task_cmd, "send") == 0) {
        ssize_t n = send((int)task_arg, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0)
            snprintf(task_answer, sizeof task_answer, "send %zd", n);
        else
            snprintf(task_answer, sizeof task_answer, "send failed: %s",
                     strerror(errno));
    } else if (strcmp(task_cmd, "alloc") == 0) {
        alloc(task_arg);
    } else if (strcmp(task_cmd, "sort") == 0) {
        sort(task_arg);
    } else if (strcmp(task_cmd, "printf") == 0) {
        int n = printf("stackhog: printf from a worker\n");
        fflush(stdout);
        snprintf(task_answer, sizeof task_answer, "printed %d", n);
    } else if (strcmp(task_cmd, "overflow-host") == 0) {
        to_the_edge(800);
        snprintf(task_answer, sizeof task_answer, "no overflow?");
    } else {
        snprintf(task_answer, sizeof task_answer, "unknown command '%.64s'",
                 task_cmd);
    }
}

static void on_request(const hw_bytes *body)
{
    requests++;
    char line[640];
    size_t n = body->len < sizeof line - 1 ? body->len : sizeof line - 1;
    memcpy(line, body->ptr, n);
    line[n] = 0;
    if (strcmp(line, "ping") == 0) {
        snprintf(line, sizeof line, "pong %lu", requests);
        answer(line);
        return;
    }
    char *sp = strchr(line, ' ');
    task_arg = sp ? strtol(sp + 1, NULL, 10) : 0;
    snprintf(task_path, sizeof task_path, "%s", sp ? sp + 1 : "");
    if (sp)
        *sp = 0;
    snprintf(task_cmd, sizeof task_cmd, "%.63s", line);
    hp__coro *co = hp__coro_create(TASK_STACK, task, NULL);
    if (co == NULL) {
        answer("cannot create a task");
        return;
    }
    hp__coro_resume(co);
    hp__coro_free(co);
    answer(task_answer);
}

void hw_init(const char *our)
{
    (void)our;
    for (;;) {
        hw_receive(&cur);
        if (!cur.is_err && cur.message.kind == HW_MESSAGE_REQUEST)
            on_request(&cur.message.request.body);
        hw_receive_result_fini(&cur);
    }
}
