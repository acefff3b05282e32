/* Task stack overflow: the guard ranges of a guest's coroutine stacks, and
 * the SIGSEGV/SIGBUS handler that turns a fault in one of them into the stop
 * of that process alone.
 *
 * The guest runtime installs no signal handlers (a native process is a
 * shared object inside the node); it registers the PROT_NONE guard below
 * each coroutine stack through the host table (guard_add/guard_remove), and
 * the node keeps the ranges in the process's host state.  Every process
 * thread runs with an alternate signal stack, so the handler can run when
 * the coroutine stack is exhausted.  On a fault the handler looks only at
 * the faulting thread's own guards:
 *
 * - the fault is in guest code (the instance's own text): the handler
 *   jumps (siglongjmp) to the process thread's kill point in run_instance,
 *   which logs "process X: task stack overflow (guard page hit)" at level 0
 *   and ends the instance; on-exit applies as for an exit.
 * - the fault is in a library or host call (libc, the node) made from the
 *   task: jumping out now could leave a lock of that code held (malloc's,
 *   a mutex of the node) and hang the node later.  So the handler opens the
 *   upper half of the guard as an emergency stack, makes the instance's
 *   text inaccessible and returns; the call finishes, and the first
 *   instruction back in guest code faults and stops the process as above.
 *   A second guard fault before that (the emergency half ran out too)
 *   stops it at once.
 * - anything else (another address, another thread, no process thread):
 *   the previous handler runs, as if ours were not there: AddressSanitizer's
 *   report under ASan, the default action (core dump) otherwise.
 *
 * The handler calls only async-signal-safe functions (mprotect,
 * sigaction, raise); the log line is written after the jump.  The guard
 * table is only changed by the thread that owns it and is published so that
 * the handler, interrupting that same thread, always reads a consistent
 * array. */
#include "kernel_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#ifdef HCN_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

/* Size of the alternate signal stack we give a process thread that has
 * none (or one too small), and the smallest we accept from someone else
 * (AddressSanitizer gives each thread one of about 53 KiB). */
#define ALT_SIZE ((size_t)64 * 1024)
#define ALT_MIN ((size_t)32 * 1024)

/* The process thread's own state: its host while a guest runs, its stack
 * and its alternate signal stack. */
static _Thread_local struct {
    hcn_host *host;
    char *alt_map; /* our alternate stack mapping (guard page + stack), or
                    * NULL when the thread had a usable one */
    size_t alt_len;
    stack_t alt_old;
    void *stack_lo; /* the thread's own stack, or the running fiber's */
    size_t stack_size;
    void *thread_stack_lo; /* the thread's own while a fiber runs */
    size_t thread_stack_size;
} tl;

static pthread_mutex_t install_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction prev_segv, prev_bus;
static size_t pagesz; /* set before the handler is installed */

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

/* ------------------------------------------------------------ the guards */

int hcn_fault_guard_add(hcn_host *h, const void *lo, size_t len)
{
    uintptr_t a = (uintptr_t)lo;
    if (a == 0 || len == 0 || a + len < a)
        return -1;
    size_t i;
    if (h->guard_free > 0) {
        i = (size_t)h->guard_free - 1;
        h->guard_free = h->guards[i].next_free;
    } else {
        if (h->nguards == h->guards_cap) {
            /* Copy, publish, then free: a handler running on this thread
             * (a fault inside this very call) reads either array whole. */
            size_t cap = h->guards_cap ? 2 * h->guards_cap : 4;
            if (cap > INT32_MAX)
                return -1;
            hcn_guard *g = hcn_xmalloc(cap * sizeof *g);
            if (h->nguards)
                memcpy(g, h->guards, h->nguards * sizeof *g);
            hcn_guard *old = h->guards;
            h->guards = g;
            atomic_signal_fence(memory_order_seq_cst);
            h->guards_cap = cap;
            free(old);
        }
        i = h->nguards;
        h->guards[i].lo = 0;
        h->guards[i].hi = 0;
        atomic_signal_fence(memory_order_seq_cst);
        h->nguards++;
    }
    h->guards[i].next_free = 0;
    h->guards[i].hi = a + len;
    atomic_signal_fence(memory_order_seq_cst);
    h->guards[i].lo = a;
    return (int)i;
}

void hcn_fault_guard_remove(hcn_host *h, int handle)
{
    if (handle < 0 || (size_t)handle >= h->nguards || h->guards[handle].lo == 0)
        return;
    h->guards[handle].lo = 0;
    atomic_signal_fence(memory_order_seq_cst);
    h->guards[handle].hi = 0;
    h->guards[handle].next_free = h->guard_free;
    h->guard_free = handle + 1;
}

void hcn_fault_guards_fini(hcn_host *h)
{
    free(h->guards);
    h->guards = NULL;
    h->nguards = h->guards_cap = 0;
    h->guard_free = 0;
}

/* ----------------------------------------------------- the instance text */

typedef struct text_find {
    uintptr_t base;
    const char *name;
    hcn_host *h;
} text_find;

static int text_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    text_find *f = arg;
    (void)size;
    if (info->dlpi_addr != f->base || info->dlpi_name == NULL ||
        strcmp(info->dlpi_name, f->name) != 0)
        return 0;
    size_t pg = page_size();
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        if (f->h->ntext == sizeof f->h->text / sizeof f->h->text[0])
            break;
        uintptr_t lo = (f->base + ph->p_vaddr) & ~(uintptr_t)(pg - 1);
        uintptr_t hi = (f->base + ph->p_vaddr + ph->p_memsz + pg - 1) &
                       ~(uintptr_t)(pg - 1);
        int prot = PROT_EXEC;
        if (ph->p_flags & PF_R)
            prot |= PROT_READ;
        if (ph->p_flags & PF_W)
            prot |= PROT_WRITE;
        f->h->text[f->h->ntext++] = (hcn_text){lo, hi, prot};
    }
    return 1;
}

void hcn_fault_instance_text(hcn_host *h, void *dl)
{
    h->ntext = 0;
    struct link_map *lm = NULL;
    if (dlinfo(dl, RTLD_DI_LINKMAP, &lm) != 0 || lm == NULL)
        return;
    text_find f = {(uintptr_t)lm->l_addr, lm->l_name, h};
    dl_iterate_phdr(text_cb, &f);
}

static bool in_text(const hcn_host *h, uintptr_t pc)
{
    for (unsigned i = 0; i < h->ntext; i++)
        if (pc >= h->text[i].lo && pc < h->text[i].hi)
            return true;
    return false;
}

/* ----------------------------------------------------------- the handler */

static const hcn_guard *find_guard(const hcn_host *h, uintptr_t a)
{
    const hcn_guard *g = h->guards;
    size_t n = h->nguards;
    for (size_t i = 0; i < n; i++)
        if (a >= g[i].lo && a < g[i].hi && g[i].lo != 0)
            return &g[i];
    return NULL;
}

/* Hand the signal to whoever had it before us. */
static void chain(int sig, siginfo_t *si, void *uc)
{
    const struct sigaction *p = sig == SIGBUS ? &prev_bus : &prev_segv;
    if (p->sa_flags & SA_SIGINFO) {
        p->sa_sigaction(sig, si, uc);
        return;
    }
    if (p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN) {
        p->sa_handler(sig);
        return;
    }
    /* Default action: restore it; a fault recurs when we return, a signal
     * sent by someone is raised again (delivered once we return). */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    if (si->si_code <= 0)
        raise(sig);
}

/* Append text (and a number in hex) to buf without the C library's
 * formatting: the fault handler may not call it. */
static size_t put_text(char *buf, size_t at, size_t cap, const char *t)
{
    while (*t && at + 1 < cap)
        buf[at++] = *t++;
    return at;
}

static size_t put_hex(char *buf, size_t at, size_t cap, uintptr_t v)
{
    char tmp[2 + 2 * sizeof v];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    at = put_text(buf, at, cap, "0x");
    while (n > 0 && at + 1 < cap)
        buf[at++] = tmp[--n];
    return at;
}

/* A fault in an in-process guest that is not an overflow ends the node:
 * first say which process and where, to stderr and the node's log, with
 * the raw backtrace (function names where the objects export them).
 * Async-signal-safe: write(2) and backtrace_symbols_fd only. */
static void say_crash(hcn_host *h, int sig, uintptr_t addr, uintptr_t pc)
{
    char line[512];
    size_t at = put_text(line, 0, sizeof line, "process ");
    at = put_text(line, at, sizeof line, h->proc->id);
    at = put_text(line, at, sizeof line,
                  sig == SIGBUS ? " crashed: SIGBUS at "
                                : " crashed: SIGSEGV at ");
    at = put_hex(line, at, sizeof line, addr);
    at = put_text(line, at, sizeof line, ", instruction ");
    at = put_hex(line, at, sizeof line, pc);
    at = put_text(line, at, sizeof line,
                  " (in-process: the node stops); backtrace:\n");
    int fds[2] = {2, h->node->log.file ? fileno(h->node->log.file) : -1};
    void *pcs[48];
    int n = backtrace(pcs, 48);
    for (int i = 0; i < 2; i++) {
        if (fds[i] < 0)
            continue;
        ssize_t w = write(fds[i], line, at);
        (void)w;
        backtrace_symbols_fd(pcs, n, fds[i]);
    }
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    int saved_errno = errno;
    hcn_host *h = tl.host;
    if (h != NULL && si->si_code > 0) {
        uintptr_t addr = (uintptr_t)si->si_addr;
        uintptr_t pc = hcc_signal_pc(uc);
        bool guest = pc == 0 || in_text(h, pc);
        if (h->ovf_state == HCN_OVF_OPENED && guest) {
            /* Back in guest code after the call that overflowed. */
            h->ovf_state = HCN_OVF_STOPPED;
            hcn_kill_jump(h, HCN_KILL_OVERFLOW);
        }
        const hcn_guard *g = find_guard(h, addr);
        if (g != NULL) {
            if (h->ovf_state == HCN_OVF_NONE) {
                h->ovf_addr = addr;
                h->ovf_outside = !guest;
            }
            uintptr_t mid = (g->lo + (g->hi - g->lo) / 2) & ~(pagesz - 1);
            if (h->ovf_state == HCN_OVF_NONE && !guest && mid > g->lo &&
                addr >= mid && h->ntext > 0) {
                bool ok = mprotect((void *)mid, g->hi - mid,
                                   PROT_READ | PROT_WRITE) == 0;
                for (unsigned i = 0; ok && i < h->ntext; i++)
                    ok =
                        mprotect((void *)h->text[i].lo,
                                 h->text[i].hi - h->text[i].lo, PROT_NONE) == 0;
                if (ok) {
                    h->ovf_state = HCN_OVF_OPENED;
                    errno = saved_errno;
                    return; /* the call goes on in the opened half */
                }
            }
            h->ovf_state = HCN_OVF_STOPPED;
            hcn_kill_jump(h, HCN_KILL_OVERFLOW);
        }
        static volatile sig_atomic_t said;
        if (!said) {
            said = 1;
            say_crash(h, sig, addr, pc);
        }
    }
    chain(sig, si, uc);
    errno = saved_errno;
}

/* Install on_fault for SIGSEGV and SIGBUS unless it is already there (a
 * test harness may have put its own back since). */
static void install(void)
{
    pthread_mutex_lock(&install_mu);
    if (pagesz == 0)
        pagesz = page_size();
    struct sigaction cur;
    if (sigaction(SIGSEGV, NULL, &cur) == 0 &&
        !((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_fault)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, NULL, &prev_segv);
        sigaction(SIGBUS, NULL, &prev_bus);
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
    }
    pthread_mutex_unlock(&install_mu);
}

/* ------------------------------------------------- process threads */

void hcn_fault_thread_begin(void)
{
    install();
    /* backtrace() loads its unwinder on first use: not in the handler */
    void *warm[2];
    backtrace(warm, 2);
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &tl.stack_lo, &tl.stack_size);
        pthread_attr_destroy(&attr);
    }
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE) &&
        cur.ss_size >= ALT_MIN)
        return; /* one is there already (AddressSanitizer's) */
    size_t pg = page_size();
    size_t len = pg + ALT_SIZE;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return;
    mprotect(m, pg, PROT_NONE);
    stack_t ss = {.ss_sp = m + pg, .ss_size = ALT_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, &tl.alt_old) != 0) {
        munmap(m, len);
        return;
    }
    tl.alt_map = m;
    tl.alt_len = len;
}

void hcn_fault_thread_end(void)
{
    if (tl.alt_map == NULL)
        return;
    stack_t old = tl.alt_old;
    if (old.ss_flags & SS_DISABLE) {
        old.ss_sp = NULL;
        old.ss_size = 0;
        old.ss_flags = SS_DISABLE;
    }
    sigaltstack(&old, NULL);
    munmap(tl.alt_map, tl.alt_len);
    tl.alt_map = NULL;
}

/* Out of line, so that its frame is below every frame of its caller. */
__attribute__((noinline)) bool hcn_fault_thread_trim(void)
{
#ifdef HCN_ASAN
    return false; /* its fake stacks and shadow are its own business */
#else
    uintptr_t lo = (uintptr_t)tl.stack_lo;
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    if (lo == 0 || here < lo || here >= lo + tl.stack_size)
        return false;
    size_t pg = page_size();
    /* Below this frame, this function's locals and the madvise call's
     * frame (a system call wrapper: its return address), with x86_64's
     * 128-byte red zone below those: 1 KiB of margin covers them, and
     * every page wholly below it goes. */
    uintptr_t hi = (here - 1024) & ~(uintptr_t)(pg - 1);
    if (hi <= lo)
        return false;
    return madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0;
#endif
}

void hcn_fault_fiber_in(hcn_host *h, void *stack_lo, size_t stack_size)
{
    tl.thread_stack_lo = tl.stack_lo;
    tl.thread_stack_size = tl.stack_size;
    tl.stack_lo = stack_lo;
    tl.stack_size = stack_size;
    atomic_signal_fence(memory_order_seq_cst);
    tl.host = h;
}

hcn_host *hcn_fault_fiber_out(void)
{
    hcn_host *h = tl.host;
    tl.host = NULL;
    atomic_signal_fence(memory_order_seq_cst);
    tl.stack_lo = tl.thread_stack_lo;
    tl.stack_size = tl.thread_stack_size;
    return h;
}

void hcn_fault_enter(hcn_host *h)
{
    h->ovf_state = HCN_OVF_NONE;
    atomic_signal_fence(memory_order_seq_cst);
    tl.host = h;
}

void hcn_fault_leave(hcn_host *h, int jumped)
{
    tl.host = NULL;
    atomic_signal_fence(memory_order_seq_cst);
    if (jumped == 0)
        return;
#ifdef HCN_ASAN
    /* The jump may have left a coroutine's stack: tell ASan the thread is
     * on its own stack again (the fake stack is kept as it is). */
    if (tl.stack_lo != NULL) {
        void *fake;
        __sanitizer_start_switch_fiber(&fake, tl.stack_lo, tl.stack_size);
        __sanitizer_finish_switch_fiber(fake, NULL, NULL);
    }
#endif
    if (h->ovf_state == HCN_OVF_NONE)
        return;
    /* The instance stays mapped and never runs again, but its destructors
     * run when the node exits: give its code back its protection. */
    for (unsigned i = 0; i < h->ntext; i++)
        mprotect((void *)h->text[i].lo, h->text[i].hi - h->text[i].lo,
                 h->text[i].prot);
}
