/* A component's code as a native process (docs/wasm-native.md): the entry
 * point and the imports of a component's core module once wasm2c has
 * translated it to C under the module name "component".  Linked, with
 * cabi.c (the canonical ABI of interface `standard`), wabt's runtime and
 * the translated module, into one shared object (src/wasm/translate.mjs
 * makes it) that hyperc-worker loads as any native process: it exports
 * hwn_entry alone (src/abi/native.h) and carries no libhyperc of the host's
 * (the guest runtime is inside the module, compiled to wasm32).
 *
 * One instance a shared object and a process: the imports' state is this
 * file's.  The module's own code runs on the worker's main thread; an
 * access outside its memory faults on wabt's guard pages and the worker
 * reports the fault as any native crash (wabt's signal handler is not
 * installed: WASM_RT_SKIP_SIGNAL_RECOVERY); the other traps (unreachable,
 * an integer division by zero, a bad indirect call) reach wabt's
 * wasm_rt_trap, whose handler is hcx_trap_handler here (the library is
 * built with WASM_RT_TRAP_HANDLER), which ends the process with TRAP at
 * once, the place of the trap in its stack: "native-pcs <base> <pc>..."
 * (hex; base this shared object's load address, only the frames in it),
 * which the node symbolizes with the shared object's file. */
#include "cabi.h"
#include "wabt_trap.h"

#include "../common/abi_types.h"
#include "../worker/binding.h"

#include <wasm-rt.h>

#include <dlfcn.h>
#include <execinfo.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* ------------------------------------------- the translated module */

/* What wasm2c 1.0.32 writes for module "component" (its header is the
 * component's, not known when this file is compiled): the instance, whose
 * layout only the generated glue knows, and the exports hyperc's guests
 * have. */
typedef struct Z_component_instance_t Z_component_instance_t;
wasm_rt_memory_t *Z_componentZ_memory(Z_component_instance_t *i);
void Z_componentZ__initialize(Z_component_instance_t *i);
uint32_t Z_componentZ_cabi_realloc(Z_component_instance_t *i, uint32_t old,
                                   uint32_t old_size, uint32_t align,
                                   uint32_t size);
void Z_componentZ_init(Z_component_instance_t *i, uint32_t our,
                       uint32_t our_len);
/* The generated glue (translate.mjs): instantiates the module with
 * hcx_import_instance's instance for each interface it imports. */
Z_component_instance_t *hcx_component_instantiate(void);

/* ------------------------------------------------ the imports' state */

/* The instances of the interfaces the module may import: one object, the
 * component's; each import function gets it under its interface's type. */
static struct {
    hca_guest g;
    Z_component_instance_t *inst;
    /* wasi:io/poll pollables: a deadline each (monotonic ns), by handle
     * (1-based; 0 a free slot) */
    uint64_t *polls;
    uint32_t npolls;
} cx;

/* The instance to pass for interface `module`, or NULL when this file
 * serves none of that name (translate.mjs refuses such a module first). */
void *hcx_import_instance(const char *module);
void *hcx_import_instance(const char *module)
{
    static const char *const served[] = {
        "hyperware:process/standard@1.0.0", "wasi:clocks/monotonic-clock@0.2.0",
        "wasi:clocks/wall-clock@0.2.0",     "wasi:io/poll@0.2.0",
        "wasi:random/random@0.2.0",
    };
    for (size_t i = 0; i < sizeof served / sizeof served[0]; i++)
        if (strcmp(module, served[i]) == 0)
            return &cx;
    return NULL;
}

/* ------------------------------------------------------------- traps */

EXPORT int hwn_entry(const hwn_host *host, const char *our);

/* End the process with a trap of the component's: TRAP through the host
 * when it has the entry (hyperc-worker), with the stack here, else the
 * message on stderr and abort().  Never returns.  (backtrace() works under
 * the worker's sandbox: fault.c loads its unwinder before.) */
_Noreturn static void trap_end(const char *msg)
{
    void *pcs[48];
    int n = backtrace(pcs, 48);
    char stack[48 * 19 + 40];
    size_t at = 0;
    Dl_info di;
    if (n > 1 && dladdr((void *)hwn_entry, &di) != 0) {
        void *self = di.dli_fbase;
        at = (size_t)snprintf(stack, sizeof stack, "native-pcs %#llx",
                              (unsigned long long)(uintptr_t)self);
        /* (not this frame; only this shared object's: the node symbolizes
         * them with its file alone) */
        for (int i = 1; i < n && at < sizeof stack; i++) {
            Dl_info fi;
            if (dladdr(pcs[i], &fi) == 0 || fi.dli_fbase != self)
                continue;
            at += (size_t)snprintf(stack + at, sizeof stack - at, " %#llx",
                                   (unsigned long long)(uintptr_t)pcs[i]);
        }
    }
    if (at >= sizeof stack)
        at = 0;
    stack[at] = '\0';
    const hwn_host *h = cx.g.host;
    if (h != NULL && HWN_HAS(h, trap) && h->trap != NULL)
        h->trap(h->ctx, msg, stack);
    fprintf(stderr, "hyperc component: wasm trap: %s\n", msg);
    abort();
}

/* The translated module's traps (wabt's wasm_rt_trap calls it, the
 * library built with WASM_RT_TRAP_HANDLER=hcx_trap_handler): the process
 * ends here. */
void hcx_trap_handler(wasm_rt_trap_t code)
{
    trap_end(wasm_rt_strerror(code));
}

/* cabi.c's trap: "what: why" ends the process (a trap never returns
 * into the module: its call is not finished). */
static void g_trap(hca_guest *g, const char *what, const char *why)
{
    (void)g;
    char msg[512];
    if (what != NULL)
        snprintf(msg, sizeof msg, "%s: %s", what, why);
    else
        snprintf(msg, sizeof msg, "%s", why);
    trap_end(msg);
}

/* cabi.c and the worker's codec end the process this way when memory runs
 * out or a value cannot fit the 32-bit memory. */
_Noreturn void hcw_die(const char *why)
{
    trap_end(why != NULL ? why : "the host failed");
}

static uint8_t *g_mem(hca_guest *g, size_t *len)
{
    (void)g;
    wasm_rt_memory_t *m = Z_componentZ_memory(cx.inst);
    *len = (size_t)m->size;
    return m->data;
}

static bool g_alloc(hca_guest *g, uint32_t align, uint32_t size, uint32_t *out)
{
    (void)g;
    *out = Z_componentZ_cabi_realloc(cx.inst, 0, 0, align, size);
    return true; /* a trap inside does not come back here */
}

/* ------------------------------------ hyperware:process/standard@1.0.0 */

#define STD(name) Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0Z_##name
typedef struct Z_hyperwareZ3AprocessZ2FstandardZ401Z2E0Z2E0_instance_t std_i;

void STD(receive)(std_i *i, uint32_t ret);
void STD(receive)(std_i *i, uint32_t ret)
{
    (void)i;
    hca_receive(&cx.g, ret);
}

void STD(sendZ2Drequest)(std_i *i, uint32_t params);
void STD(sendZ2Drequest)(std_i *i, uint32_t params)
{
    (void)i;
    hca_send_request(&cx.g, params);
}

void STD(sendZ2Drequests)(std_i *i, uint32_t ptr, uint32_t len);
void STD(sendZ2Drequests)(std_i *i, uint32_t ptr, uint32_t len)
{
    (void)i;
    hca_send_requests(&cx.g, ptr, len);
}

void STD(sendZ2Dresponse)(std_i *i, uint32_t a0, uint32_t a1, uint32_t a2,
                          uint32_t a3, uint32_t a4, uint32_t a5, uint32_t a6,
                          uint32_t a7, uint32_t a8, uint32_t a9, uint32_t a10,
                          uint32_t a11, uint32_t a12, uint32_t a13);
void STD(sendZ2Dresponse)(std_i *i, uint32_t a0, uint32_t a1, uint32_t a2,
                          uint32_t a3, uint32_t a4, uint32_t a5, uint32_t a6,
                          uint32_t a7, uint32_t a8, uint32_t a9, uint32_t a10,
                          uint32_t a11, uint32_t a12, uint32_t a13)
{
    (void)i;
    const uint32_t flat[14] = {a0, a1, a2, a3,  a4,  a5,  a6,
                               a7, a8, a9, a10, a11, a12, a13};
    hca_send_response(&cx.g, flat);
}

void STD(sendZ2DandZ2DawaitZ2Dresponse)(std_i *i, uint32_t params,
                                        uint32_t ret);
void STD(sendZ2DandZ2DawaitZ2Dresponse)(std_i *i, uint32_t params, uint32_t ret)
{
    (void)i;
    hca_send_and_await(&cx.g, params, ret);
}

uint32_t STD(hasZ2Dblob)(std_i *i);
uint32_t STD(hasZ2Dblob)(std_i *i)
{
    (void)i;
    return hca_has_blob(&cx.g);
}

void STD(getZ2Dblob)(std_i *i, uint32_t ret);
void STD(getZ2Dblob)(std_i *i, uint32_t ret)
{
    (void)i;
    hca_get_blob(&cx.g, ret);
}

void STD(lastZ2Dblob)(std_i *i, uint32_t ret);
void STD(lastZ2Dblob)(std_i *i, uint32_t ret)
{
    (void)i;
    hca_last_blob(&cx.g, ret);
}

void STD(our)(std_i *i, uint32_t ret);
void STD(our)(std_i *i, uint32_t ret)
{
    (void)i;
    hca_our(&cx.g, ret);
}

void STD(printZ2DtoZ2Dterminal)(std_i *i, uint32_t level, uint32_t ptr,
                                uint32_t len);
void STD(printZ2DtoZ2Dterminal)(std_i *i, uint32_t level, uint32_t ptr,
                                uint32_t len)
{
    (void)i;
    hca_print(&cx.g, level, ptr, len);
}

void STD(getZ2Dstate)(std_i *i, uint32_t ret);
void STD(getZ2Dstate)(std_i *i, uint32_t ret)
{
    (void)i;
    hca_get_state(&cx.g, ret);
}

void STD(setZ2Dstate)(std_i *i, uint32_t ptr, uint32_t len);
void STD(setZ2Dstate)(std_i *i, uint32_t ptr, uint32_t len)
{
    (void)i;
    hca_set_state(&cx.g, ptr, len);
}

void STD(clearZ2Dstate)(std_i *i);
void STD(clearZ2Dstate)(std_i *i)
{
    (void)i;
    hca_clear_state(&cx.g);
}

void STD(getZ2DonZ2Dexit)(std_i *i, uint32_t ret);
void STD(getZ2DonZ2Dexit)(std_i *i, uint32_t ret)
{
    (void)i;
    hca_get_on_exit(&cx.g, ret);
}

void STD(setZ2DonZ2Dexit)(std_i *i, uint32_t kind, uint32_t ptr, uint32_t len);
void STD(setZ2DonZ2Dexit)(std_i *i, uint32_t kind, uint32_t ptr, uint32_t len)
{
    (void)i;
    hca_set_on_exit(&cx.g, kind, ptr, len);
}

void STD(spawn)(std_i *i, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                uint32_t a4, uint32_t a5, uint32_t a6, uint32_t a7, uint32_t a8,
                uint32_t a9, uint32_t a10, uint32_t a11, uint32_t a12,
                uint32_t a13);
void STD(spawn)(std_i *i, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                uint32_t a4, uint32_t a5, uint32_t a6, uint32_t a7, uint32_t a8,
                uint32_t a9, uint32_t a10, uint32_t a11, uint32_t a12,
                uint32_t a13)
{
    (void)i;
    const uint32_t flat[14] = {a0, a1, a2, a3,  a4,  a5,  a6,
                               a7, a8, a9, a10, a11, a12, a13};
    hca_spawn(&cx.g, flat);
}

void STD(saveZ2Dcapabilities)(std_i *i, uint32_t ptr, uint32_t len);
void STD(saveZ2Dcapabilities)(std_i *i, uint32_t ptr, uint32_t len)
{
    (void)i;
    hca_save_capabilities(&cx.g, ptr, len);
}

void STD(dropZ2Dcapabilities)(std_i *i, uint32_t ptr, uint32_t len);
void STD(dropZ2Dcapabilities)(std_i *i, uint32_t ptr, uint32_t len)
{
    (void)i;
    hca_drop_capabilities(&cx.g, ptr, len);
}

void STD(ourZ2Dcapabilities)(std_i *i, uint32_t ret);
void STD(ourZ2Dcapabilities)(std_i *i, uint32_t ret)
{
    (void)i;
    hca_our_capabilities(&cx.g, ret);
}

/* -------------------------------------------------------------- WASI */

/* The memory's bytes [at, at + n), or a trap (which ends the process). */
static uint8_t *span(const char *what, uint32_t at, uint32_t n)
{
    return hca_result_area(&cx.g, what, at, n);
}

static uint64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

#define MONO(name) Z_wasiZ3AclocksZ2FmonotonicZ2DclockZ400Z2E2Z2E0Z_##name
typedef struct Z_wasiZ3AclocksZ2FmonotonicZ2DclockZ400Z2E2Z2E0_instance_t
    mono_i;

uint64_t MONO(now)(mono_i *i);
uint64_t MONO(now)(mono_i *i)
{
    (void)i;
    return mono_ns();
}

/* own<pollable>: ready ns from now. */
uint32_t MONO(subscribeZ2Dduration)(mono_i *i, uint64_t ns);
uint32_t MONO(subscribeZ2Dduration)(mono_i *i, uint64_t ns)
{
    (void)i;
    uint64_t now = mono_ns();
    uint64_t due = ns > UINT64_MAX - now ? UINT64_MAX : now + ns;
    for (uint32_t h = 0; h < cx.npolls; h++)
        if (cx.polls[h] == 0) {
            cx.polls[h] = due;
            return h + 1;
        }
    uint32_t n = cx.npolls ? 2 * cx.npolls : 4;
    uint64_t *p = realloc(cx.polls, n * sizeof *p);
    if (p == NULL)
        trap_end("subscribe-duration: out of memory");
    memset(p + cx.npolls, 0, (n - cx.npolls) * sizeof *p);
    p[cx.npolls] = due;
    cx.polls = p;
    uint32_t h = cx.npolls + 1;
    cx.npolls = n;
    return h;
}

/* The slot of pollable handle h, or a trap. */
static uint64_t *poll_of(const char *what, uint32_t h)
{
    if (h == 0 || h > cx.npolls || cx.polls[h - 1] == 0) {
        char why[80];
        snprintf(why, sizeof why, "no pollable %u", h);
        g_trap(&cx.g, what, why);
    }
    return &cx.polls[h - 1];
}

#define POLL(name) Z_wasiZ3AioZ2FpollZ400Z2E2Z2E0Z_##name
typedef struct Z_wasiZ3AioZ2FpollZ400Z2E2Z2E0_instance_t poll_i;

/* Sleep until the pollable's deadline (a clock's is the only kind). */
void POLL(Z5BmethodZ5DpollableZ2Eblock)(poll_i *i, uint32_t h);
void POLL(Z5BmethodZ5DpollableZ2Eblock)(poll_i *i, uint32_t h)
{
    (void)i;
    uint64_t due = *poll_of("pollable.block", h);
    for (uint64_t now = mono_ns(); now < due; now = mono_ns()) {
        uint64_t left = due - now;
        struct timespec t = {(time_t)(left / 1000000000u),
                             (long)(left % 1000000000u)};
        nanosleep(&t, NULL);
    }
}

void POLL(Z5BresourceZ2DdropZ5Dpollable)(poll_i *i, uint32_t h);
void POLL(Z5BresourceZ2DdropZ5Dpollable)(poll_i *i, uint32_t h)
{
    (void)i;
    *poll_of("pollable drop", h) = 0;
}

#define WALL(name) Z_wasiZ3AclocksZ2FwallZ2DclockZ400Z2E2Z2E0Z_##name
typedef struct Z_wasiZ3AclocksZ2FwallZ2DclockZ400Z2E2Z2E0_instance_t wall_i;

/* datetime { seconds: u64, nanoseconds: u32 } at ret (align 8). */
void WALL(now)(wall_i *i, uint32_t ret);
void WALL(now)(wall_i *i, uint32_t ret)
{
    (void)i;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    uint64_t s = (uint64_t)t.tv_sec;
    uint32_t ns = (uint32_t)t.tv_nsec;
    uint8_t *p = span("wall-clock now", ret, 16);
    memcpy(p, &s, 8);
    memcpy(p + 8, &ns, 4);
}

#define RANDOM(name) Z_wasiZ3ArandomZ2FrandomZ400Z2E2Z2E0Z_##name
typedef struct Z_wasiZ3ArandomZ2FrandomZ400Z2E2Z2E0_instance_t random_i;

uint64_t RANDOM(getZ2DrandomZ2Du64)(random_i *i);
uint64_t RANDOM(getZ2DrandomZ2Du64)(random_i *i)
{
    (void)i;
    uint64_t v;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        trap_end("get-random-u64: the system gave no random bytes");
    return v;
}

/* ------------------------------------------------------------ entry */

/* The process: instantiate, _initialize, then init(our), which returns
 * only when the component's init does.  Called once, on the worker's main
 * thread (src/abi/native.h). */
EXPORT int hwn_entry(const hwn_host *host, const char *our);
int hwn_entry(const hwn_host *host, const char *our)
{
    if (host->abi_version != HW_ABI_VERSION || host->size < HWN_MIN_SIZE)
        return -1;
    hca_guest_init(&cx.g, host, g_mem, g_alloc, g_trap);
    wasm_rt_init();
    cx.inst = hcx_component_instantiate();
    Z_componentZ__initialize(cx.inst);
    size_t n = strlen(our);
    uint32_t p = Z_componentZ_cabi_realloc(cx.inst, 0, 0, 1, (uint32_t)n);
    memcpy(span("init", p, (uint32_t)n), our, n);
    Z_componentZ_init(cx.inst, p, (uint32_t)n);
    return 0;
}
