/* How a worker tells its end: a fatal signal in the guest (SIGSEGV, SIGBUS,
 * SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP) is caught on an alternate
 * stack, written to the node as a CRASH frame with the return addresses and
 * the loaded objects, and the signal then kills the worker as it would
 * have; exit() called by the guest is written as an EXIT frame from an
 * on_exit hook.  A system call the sandbox refuses (sandbox.c) is a SIGSYS
 * whose CRASH carries the call's number as its address.  The handler
 * allocates nothing: the frame is packed into a
 * static buffer.  The task-stack guards the guest registers live here too,
 * so that a fault in one is told as a stack overflow. */
#include "worker_int.h"

#include "../common/common.h"

#include <execinfo.h>
#include <link.h>
#include <msgpack.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 /* si_code of a SIGSYS from a seccomp filter */
#endif

/* ------------------------------------------------------------- guards */

typedef struct guard {
    uintptr_t lo, hi; /* lo == 0: a free slot */
} guard;

static guard *guards;
static size_t nguards, guards_cap;

int hcw_guard_add(const void *lo, size_t len)
{
    size_t i = 0;
    while (i < nguards && guards[i].lo != 0)
        i++;
    if (i == nguards) {
        if (nguards == guards_cap) {
            size_t cap = guards_cap ? 2 * guards_cap : 64;
            guard *g = realloc(guards, cap * sizeof *g);
            if (g == NULL)
                return -1;
            guards = g;
            guards_cap = cap;
        }
        nguards++;
    }
    guards[i] = (guard){(uintptr_t)lo, (uintptr_t)lo + len};
    return (int)i;
}

void hcw_guard_remove(int handle)
{
    if (handle >= 0 && (size_t)handle < nguards)
        guards[handle].lo = guards[handle].hi = 0;
}

static bool in_guard(uintptr_t a)
{
    for (size_t i = 0; i < nguards; i++)
        if (guards[i].lo != 0 && a >= guards[i].lo && a < guards[i].hi)
            return true;
    return false;
}

/* ------------------------------------------------------ loaded objects */

enum { MAX_MODULES = 64, PATHS_BYTES = 16384, MAX_PCS = 64 };

static struct {
    const char *path;
    uint64_t base;
} modules[MAX_MODULES];
static size_t nmodules;
static char paths[PATHS_BYTES];
static size_t paths_used;

/* The worker's own executable, which dl_iterate_phdr names "" (its path
 * read before the sandbox, by hcw_fault_init): the runtime's frames are
 * its, as the guest's runtime is the worker's code. */
static char exe_path[4096];

static int note_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    const char *name = info->dlpi_name;
    if ((name == NULL || name[0] == '\0') && nmodules == 0 &&
        exe_path[0] != '\0')
        name = exe_path; /* the first is the executable */
    if (name == NULL || name[0] == '\0' || nmodules == MAX_MODULES)
        return 0; /* the vDSO, or no room */
    size_t n = strlen(name) + 1;
    if (paths_used + n > sizeof paths)
        return 0;
    memcpy(paths + paths_used, name, n);
    modules[nmodules].path = paths + paths_used;
    modules[nmodules].base = (uint64_t)info->dlpi_addr;
    paths_used += n;
    nmodules++;
    return 0;
}

/* ----------------------------------------------------- the CRASH frame */

static uint8_t crash_buf[65536];
static size_t crash_len;

static int crash_write(void *data, const char *buf, size_t len)
{
    if (crash_len + len > sizeof crash_buf)
        return -1;
    memcpy(crash_buf + crash_len, buf, len);
    crash_len += len;
    return 0;
}

static void write_all(const uint8_t *p, size_t n)
{
    if (hcw_w.link)
        hcw_link_send_bytes(hcw_w.link, p, n);
}

/* Pack [op, [code, addr, overflow, [pc...], [[path, base]...]]] into the
 * static buffer after a 4-byte length, and write it.  Async-signal-safe:
 * msgpack's packer allocates nothing with this writer. */
static void tell(hcw_op op, int32_t code, uint64_t addr, bool overflow,
                 void *const *pcs, int npcs)
{
    crash_len = 4;
    msgpack_packer pk;
    msgpack_packer_init(&pk, NULL, crash_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int(&pk, op);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_int32(&pk, code);
    msgpack_pack_uint64(&pk, addr);
    if (overflow)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    msgpack_pack_array(&pk, (size_t)npcs);
    for (int i = 0; i < npcs; i++)
        msgpack_pack_uint64(&pk, (uint64_t)(uintptr_t)pcs[i]);
    msgpack_pack_array(&pk, nmodules);
    for (size_t i = 0; i < nmodules; i++) {
        size_t l = strlen(modules[i].path);
        msgpack_pack_array(&pk, 2);
        msgpack_pack_str(&pk, l);
        msgpack_pack_str_body(&pk, modules[i].path, l);
        msgpack_pack_uint64(&pk, modules[i].base);
    }
    if (crash_len > sizeof crash_buf)
        return;
    uint32_t body = (uint32_t)(crash_len - 4);
    crash_buf[0] = (uint8_t)body;
    crash_buf[1] = (uint8_t)(body >> 8);
    crash_buf[2] = (uint8_t)(body >> 16);
    crash_buf[3] = (uint8_t)(body >> 24);
    write_all(crash_buf, crash_len);
}

static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL,
                            SIGABRT, SIGSYS, SIGTRAP};

static void on_fatal(int sig, siginfo_t *si, void *uc)
{
    static volatile sig_atomic_t once;
    if (!once) {
        once = 1;
        void *pcs[MAX_PCS];
        int n = backtrace(pcs, MAX_PCS);
        /* Start at the interrupted instruction: the frames above it are
         * this handler's and the signal trampoline's. */
        uintptr_t at = hcc_signal_pc(uc);
        int from = 0;
        for (int i = 0; at && i < n; i++)
            if ((uintptr_t)pcs[i] == at) {
                from = i;
                break;
            }
        uintptr_t addr = (uintptr_t)si->si_addr;
        bool overflow = (sig == SIGSEGV || sig == SIGBUS) && in_guard(addr);
        bool has_addr =
            sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL;
        uint64_t told = has_addr ? addr : 0;
        /* a call the sandbox refused: its number stands for the address */
        if (sig == SIGSYS && si->si_code == SYS_SECCOMP)
            told = (uint64_t)(unsigned)si->si_syscall;
        tell(HCW_CRASH, sig, told, overflow, pcs + from, n - from);
    }
    /* Die of the signal, as without this handler. */
    signal(sig, SIG_DFL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    raise(sig);
}

/* exit() from the guest (the worker itself ends with _exit). */
static void on_guest_exit(int status, void *arg)
{
    if (!hcw_in_guest)
        return;
    void *pcs[MAX_PCS];
    int n = backtrace(pcs, MAX_PCS);
    /* from the caller of this hook (exit's own frames, then the guest) */
    tell(HCW_EXIT, status, 0, false, pcs + (n > 1), n - (n > 1));
}

void hcw_fault_init(void)
{
    ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
    exe_path[n > 0 ? n : 0] = '\0';
    dl_iterate_phdr(note_module, NULL);
    /* backtrace() loads its unwinder on first use: not in a handler. */
    void *warm[2];
    backtrace(warm, 2);
    static uint8_t altstack[65536];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        sigaction(fatal[i], &sa, NULL);
    on_exit(on_guest_exit, NULL);
}
