/* hyperc-worker: one process's instance in an OS process of its own.  The
 * node starts it with a link as fd 3 (link.h: shared memory, or a stream
 * socket), a socket for lanes as fd 4 (lane.h, lane_table.c) and, with
 * --state-slot, its process's state slot as fd 5 (slot.h), and speaks
 * the worker protocol over the link (docs/worker-protocol.md):
 * HELLO names the binary; the worker loads it, closes itself in its sandbox
 * (sandbox.c), answers READY and calls its entry with a host table whose every
 * entry carries the call to the node (binding.c, of the library binding.h
 * describes: this file gives it the link, hcw_w, and hcw_die).  A fatal
 * signal or exit() in the guest is told to the node (CRASH, EXIT) before the
 * worker dies; the node classifies the end by the frame and the wait status.
 */
#include "worker_int.h"
#include "slot.h"

#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* What the binding (binding.h) needs of its process: the link, and hcw_die. */
struct hcw_worker hcw_w;
bool hcw_in_guest;
/* The guest's host table: the binding's, with fault.c's task-stack guards. */
static hwn_host table;

/* Die quietly: the node has gone or broke the protocol, and a worker never
 * outlives its node's interest. */
_Noreturn void hcw_die(const char *why)
{
    if (why)
        fprintf(stderr, "hyperc-worker: %s\n", why);
    _exit(HCW_EXIT_PROTOCOL);
}

static int w_guard_add(void *ctx, const void *lo, size_t len)
{
    return hcw_guard_add(lo, len);
}

static void w_guard_remove(void *ctx, int handle)
{
    hcw_guard_remove(handle);
}

static void say_fail(hcw_frame *f, const char *why)
{
    hcw_frame_begin(f, HCW_FAIL, 1);
    hcw_put_str(f, why);
    hcw_link_send(hcw_w.link, f);
}

/* A translated component's trap (hwn_host.trap): TRAP, as the wasm host
 * tells one, and the end. */
_Noreturn static void w_trap(void *ctx, const char *message, const char *stack)
{
    (void)ctx;
    hcw_in_guest = false;
    hcw_frame_begin(hcw_w.out, HCW_TRAP, 2);
    hcw_put_str(hcw_w.out, message);
    hcw_put_str(hcw_w.out, stack != NULL ? stack : "");
    hcw_link_send(hcw_w.link, hcw_w.out);
    _exit(1);
}

typedef struct sched_attr_v1 { /* the kernel's struct sched_attr, size 56
                                * (<linux/sched/types.h> clashes with
                                * <sched.h> in glibc 2.36) */
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
    uint32_t sched_util_min, sched_util_max;
} sched_attr_v1;
/* the kernel's SCHED_FLAG_RESET_ON_FORK */
#define SCHED_FLAG_RESET_ON_FORK_V1 0x01

/* Ask the kernel for short turns on a CPU: sched_setattr's sched_runtime
 * for a SCHED_OTHER task, the time slice its scheduler (EEVDF, Linux 6.12
 * and later) gives it.  The same share of CPU, in shorter turns with
 * earlier deadlines, so that a worker woken by a message from its peer runs
 * before CPU-bound work that shares its CPU runs out its own turn; a
 * worker's work between two waits is short.  On a busy machine this is
 * what keeps two isolated processes exchanging at 64 in flight
 * (docs/architecture.md, "Isolated processes on a busy machine").
 * HYPERC_WORKER_SLICE_US in the node's environment sets it: digits only,
 * 0 leaves the kernel's, 1 to 100000 (the kernel takes 100 to 100000 and
 * clamps the rest); anything else is the default, 100 (the least the kernel
 * takes).  Older kernels ignore the field; the policy, the nice value and
 * reset-on-fork are kept; a refusal changes nothing. */
static void slice_ask(void)
{
    unsigned long us = 100;
    const char *e = getenv("HYPERC_WORKER_SLICE_US");
    size_t n = e != NULL ? strlen(e) : 0;
    if (n > 0 && n <= 6 && strspn(e, "0123456789") == n) {
        unsigned long v = strtoul(e, NULL, 10);
        if (v <= 100000)
            us = v;
    }
    if (us == 0)
        return;
    sched_attr_v1 a;
    _Static_assert(sizeof a == 56, "SCHED_ATTR_SIZE_VER1");
    memset(&a, 0, sizeof a);
    if (syscall(SYS_sched_getattr, 0, &a, sizeof a, 0) != 0 ||
        (a.sched_policy != SCHED_OTHER && a.sched_policy != SCHED_BATCH))
        return;
    a.size = sizeof a;
    a.sched_flags &= SCHED_FLAG_RESET_ON_FORK_V1;
    a.sched_runtime = (uint64_t)us * 1000;
    (void)syscall(SYS_sched_setattr, 0, &a, 0);
}

/* A decimal argument below 2^64: its value in *out, or false. */
static bool arg_u(const char *a, unsigned long long *out)
{
    size_t n = strlen(a);
    if (n == 0 || n > 20 || strspn(a, "0123456789") != n)
        return false;
    errno = 0;
    *out = strtoull(a, NULL, 10);
    return errno == 0;
}

/* Set this worker's resource limits (hcw_limits_set) from `--limits FILES
 * BYTES` (the node's worker_max_files and worker_max_memory; 0: none),
 * before anything of the guest's is loaded.  The worker sets them itself,
 * after the C runtime's start, rather than the node from outside: a
 * sanitizer's start sets RLIMIT_CORE too (read, then written back with the
 * hard limit it read), which a limit lowered from outside meanwhile makes
 * fail.  A malformed argument, or a limit the kernel refuses, ends the
 * worker (stderr says why) rather than running the guest without it. */
static void limits_apply(unsigned long long files, unsigned long long bytes)
{
    char why[96];
    if (hcw_limits_set(0, files, bytes, why, sizeof why) != 0)
        hcw_die(why);
}

/* `--state-slot`: the node's state slot for this process on HCW_SLOT_FD
 * (slot.h), mapped before the sandbox closes; it ends the worker when it is
 * not one. */
static void slot_open(void)
{
    hcw_w.slot = hcw_slot_map(HCW_SLOT_FD);
    if (hcw_w.slot == NULL)
        hcw_die("--state-slot: no state slot on fd 5");
    close(HCW_SLOT_FD);
}

/* The arguments: [--limits FILES BYTES] [--state-slot]. */
static void args_apply(int argc, char **argv)
{
    unsigned long long files = 0, bytes = 0;
    bool slot = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--limits") == 0 && i + 2 < argc &&
            arg_u(argv[i + 1], &files) && arg_u(argv[i + 2], &bytes)) {
            i += 2;
        } else if (strcmp(argv[i], "--state-slot") == 0) {
            slot = true;
        } else {
            hcw_die("usage: hyperc-worker [--limits FILES BYTES] "
                    "[--state-slot] (the node starts it)");
        }
    }
    limits_apply(files, bytes);
    if (slot)
        slot_open();
}

int main(int argc, char **argv)
{
    /* A worker dies with its node, and the terminal's Ctrl-C is the node's
     * to handle (the node put us in a process group of our own). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        _exit(HCW_EXIT_PROTOCOL);
    args_apply(argc, argv);
    slice_ask();
    /* (a file the sandbox would refuse later; without it, waits spin as
     * on a quiet machine) */
    (void)hcw_link_cpu_watch();
    char err[256];
    struct stat st;
    if (fstat(HCW_FD, &st) != 0)
        hcw_die("no link to the node on fd 3");
    hcw_w.link = S_ISSOCK(st.st_mode)
                     ? hcw_link_socket(HCW_FD)
                     : hcw_link_shm_open(HCW_FD, err, sizeof err);
    if (hcw_w.link == NULL)
        hcw_die(err);
    hcw_w.out = hcw_frame_new();
    hcw_in_init(&hcw_w.in);
    if (hcw_link_recv(hcw_w.link, &hcw_w.in, err, sizeof err) != 1 ||
        hcw_w.in.op != HCW_HELLO)
        hcw_die("no HELLO from the node");
    uint64_t version;
    char *our = NULL, *binary = NULL, *pid = NULL;
    if (!hcw_get_u64(&hcw_w.in, &version) || !hcw_get_str(&hcw_w.in, &our) ||
        !hcw_get_str(&hcw_w.in, &binary) || !hcw_get_str(&hcw_w.in, &pid) ||
        our == NULL || binary == NULL || pid == NULL)
        hcw_die("a malformed HELLO");
    if (version != HCW_PROTO_VERSION) {
        snprintf(err, sizeof err, "protocol version %llu not supported",
                 (unsigned long long)version);
        say_fail(hcw_w.out, err);
        _exit(HCW_EXIT_PROTOCOL);
    }
    hcw_w.pid = pid;
    void *dl = dlopen(binary, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        snprintf(err, sizeof err, "cannot load %s: %s", binary, dlerror());
        say_fail(hcw_w.out, err);
        _exit(HCW_EXIT_PROTOCOL);
    }
    hwn_entry_fn entry;
    *(void **)&entry = dlsym(dl, HWN_ENTRY_SYMBOL);
    if (entry == NULL) {
        snprintf(err, sizeof err,
                 "%s exports no %s (not built against libhyperc?)", binary,
                 HWN_ENTRY_SYMBOL);
        say_fail(hcw_w.out, err);
        _exit(HCW_EXIT_PROTOCOL);
    }
    const uint32_t *rt_abi = dlsym(dl, HWN_RUNTIME_SYMBOL);
    if (rt_abi != NULL && *rt_abi != HWN_RUNTIME_ABI) {
        snprintf(err, sizeof err,
                 "%s was built for libhyperc runtime ABI %u, this worker has "
                 "%u: rebuild it with this hyperc",
                 binary, (unsigned)*rt_abi, (unsigned)HWN_RUNTIME_ABI);
        say_fail(hcw_w.out, err);
        _exit(HCW_EXIT_PROTOCOL);
    }
    hcw_binding_init(&table);
    table.guard_add = w_guard_add;
    table.guard_remove = w_guard_remove;
    table.trap = w_trap;
    hcw_fault_init();
    /* From here on the guest reaches the world through the node only. */
    if (hcw_sandbox_init(!hcw_link_is_shm(hcw_w.link), err, sizeof err) != 0) {
        say_fail(hcw_w.out, err);
        _exit(HCW_EXIT_PROTOCOL);
    }
    /* lanes when the kernel lets the worker wait on several rings
     * (docs/worker-protocol.md, "Versioning"; the node decides whether to
     * open any) */
    const char *features[] = {HCW_FEATURE_LANES};
    bool lanes_ok = hcw_lanes_probe();
    hcw_frame_begin(hcw_w.out, HCW_READY, 2);
    hcw_put_u64(hcw_w.out, HCW_PROTO_VERSION);
    hcw_put_strs(hcw_w.out, features, lanes_ok ? 1 : 0);
    if (hcw_link_send(hcw_w.link, hcw_w.out) != 0)
        hcw_die(NULL);
    hcw_in_guest = true;
    hcw_link_set_busy(hcw_w.link, true); /* in its init until it receives */
    int rc = entry(&table, our);
    hcw_in_guest = false;
    hcw_frame_begin(hcw_w.out, HCW_DONE, 1);
    hcw_put_i64(hcw_w.out, rc);
    hcw_link_send(hcw_w.link, hcw_w.out);
    /* The node may still be answering; what matters is said.  _exit: the
     * guest's own atexit handlers are not ours to run twice. */
    _exit(0);
}
